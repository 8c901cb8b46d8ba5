//! Server-rendered pages. Each handler authorizes with the domain policy before reading
//! personal data and audits views of another person's data.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, Duration, NaiveDate};
use serde::Deserialize;
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{Action, AttendanceKind, Role, RoleScope, authorize};
use zhurnal_store::{ClassRow, PersonRow, ScheduledLesson, SchoolRow};

use crate::session::{CurrentUser, MaybeUser};
use crate::{AppState, WebError, html_headers};

/// What every page's header shows.
pub struct Nav {
    pub name: String,
    pub links: Vec<(String, String)>,
    pub csrf: String,
    /// Security notices (banner on every page).
    pub notices: Vec<String>,
}

impl Nav {
    pub(crate) fn for_user(user: &CurrentUser) -> Self {
        let mut links = Vec::new();
        for (role, scope) in &user.actor.grants {
            let link = match (role, scope) {
                (Role::Teacher, _) => ("/teacher/today".to_string(), "Мои уроки".to_string()),
                (Role::SchoolAdmin, RoleScope::School(s)) => {
                    (format!("/schools/{s}"), "Школа".to_string())
                }
                (Role::RegionalAdmin | Role::MunicipalOfficer, _) => {
                    ("/region".to_string(), "Территория".to_string())
                }
                (Role::SecurityOfficer, _) => ("/security".to_string(), "Безопасность".to_string()),
                _ => continue,
            };
            if !links.contains(&link) {
                links.push(link);
            }
        }
        if user.actor.is_student() || user.actor.is_parent() {
            links.push(("/diary".into(), "Дневник".into()));
        }
        Self {
            name: user.person.short_name(),
            links,
            csrf: user.session.csrf_token.clone(),
            notices: user.notices.clone(),
        }
    }
}

pub fn role_codes(user: &CurrentUser) -> Vec<String> {
    let mut roles: Vec<String> =
        user.actor.grants.iter().map(|(r, _)| r.code().to_string()).collect();
    if !user.actor.class_teacher_of.is_empty() {
        roles.push("class-teacher".into());
    }
    if user.actor.is_parent() {
        roles.push("parent".into());
    }
    if user.actor.is_student() {
        roles.push("student".into());
    }
    roles.dedup();
    roles
}

fn render(t: impl Template) -> Result<Response, WebError> {
    Ok((StatusCode::OK, html_headers(), t.render()?).into_response())
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing {
    nav: Option<Nav>,
}

pub async fn landing(user: MaybeUser) -> Result<Response, WebError> {
    render(Landing { nav: user.0.as_ref().map(Nav::for_user) })
}

const STYLE: &str = include_str!("../static/app.css");
const SCRIPT: &str = include_str!("../static/app.js");

pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, mime) = match file.as_str() {
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => return (StatusCode::NOT_FOUND, "not found").into_response(),
    };
    ([(header::CONTENT_TYPE, mime), (header::CACHE_CONTROL, "public, max-age=3600")], body)
        .into_response()
}

/// Each role lands on its own home.
pub async fn home(user: CurrentUser) -> Response {
    let a = &user.actor;
    let to = if a.has_role(Role::SecurityOfficer) {
        "/security".to_string()
    } else if a.has_role(Role::RegionalAdmin) || a.has_role(Role::MunicipalOfficer) {
        "/region".to_string()
    } else if a.has_role(Role::SchoolAdmin) {
        "/admin".to_string()
    } else if a.has_role(Role::Teacher) || !a.teaching.is_empty() {
        "/teacher/today".to_string()
    } else if a.is_parent() || a.is_student() {
        "/diary".to_string()
    } else {
        "/".to_string()
    };
    Redirect::to(&to).into_response()
}

#[derive(Template)]
#[template(path = "teacher_today.html")]
struct TeacherToday {
    nav: Option<Nav>,
    date: String,
    lessons: Vec<ScheduledLesson>,
    class_teacher_of: Vec<ClassRow>,
}

pub async fn teacher_today(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    if !user.actor.has_role(Role::Teacher) && user.actor.teaching.is_empty() {
        return Err(WebError::Denied("Страница «Мои уроки» доступна учителям.".into(), false));
    }
    let today = state.app.today();
    let lessons = state.app.store.list_teacher_day(user.person.id, today).await?;
    let mut class_teacher_of = Vec::new();
    for c in &user.actor.class_teacher_of {
        class_teacher_of.push(state.app.store.get_class(*c).await?);
    }
    render(TeacherToday {
        nav: Some(Nav::for_user(&user)),
        date: russian_date(today),
        lessons,
        class_teacher_of,
    })
}

#[derive(Deserialize)]
pub struct WeekQuery {
    week: Option<NaiveDate>,
}

/// A student sees their own diary; a parent is sent to their first child's.
pub async fn own_diary(
    State(state): State<AppState>,
    user: CurrentUser,
    q: Query<WeekQuery>,
) -> Result<Response, WebError> {
    if user.actor.is_student() {
        return diary_page(&state, &user, user.person.clone(), q.week).await;
    }
    let children = state.app.store.list_children(user.person.id).await?;
    match children.first() {
        Some(c) => Ok(Redirect::to(&format!("/diary/{}", c.person.uid)).into_response()),
        None => Err(WebError::Denied("Дневник доступен ученикам и их родителям.".into(), false)),
    }
}

pub async fn student_diary(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
    q: Query<WeekQuery>,
) -> Result<Response, WebError> {
    let deny = || WebError::Denied("нет доступа к этому дневнику".into(), false);
    // An unknown id and a foreign one answer the same: existence is personal data too.
    let student = state.app.store.find_person_by_uid(&uid).await?.ok_or_else(deny)?;
    diary_page(&state, &user, student, q.week).await
}

struct DiaryDay {
    title: String,
    lessons: Vec<DiaryLesson>,
}

struct DiaryLesson {
    number: u8,
    subject: String,
    teacher: String,
    topic: String,
    homework: String,
    marks: Vec<(String, String, String)>,
    attendance: String,
    substitution: bool,
}

#[derive(Template)]
#[template(path = "diary.html")]
struct DiaryPage {
    nav: Option<Nav>,
    student_name: String,
    class_name: String,
    children: Vec<(String, String, bool)>,
    week_title: String,
    prev_week: String,
    next_week: String,
    base: String,
    days: Vec<DiaryDay>,
    notice: Option<String>,
}

async fn diary_page(
    state: &AppState,
    user: &CurrentUser,
    student: PersonRow,
    week: Option<NaiveDate>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let deny = || WebError::Denied("нет доступа к этому дневнику".into(), false);
    let enrolments = app.store.list_enrolments(student.id).await?;
    let enrolment = enrolments
        .iter()
        .rev()
        .find(|e| e.departed_on.is_none())
        .or_else(|| enrolments.last())
        .ok_or_else(deny)?;
    let school = app.store.get_school(enrolment.school_id).await?;
    let class = app.store.get_class(enrolment.class_id).await?;
    let resource =
        Resource::Student { place: school.place(), class: class.id, student: student.id };
    authorize(&user.actor, Action::ViewDiary, &resource).map_err(|_| deny())?;

    let today = app.today();
    let anchor = week.unwrap_or(today);
    let monday = anchor - Duration::days(i64::from(anchor.weekday().num_days_from_monday()));
    let sunday = monday + Duration::days(6);
    // A parent of a child who left sees history up to the departure date only.
    let visible_until =
        user.actor.children.iter().find(|c| c.child == student.id).and_then(|c| c.visible_until);
    let to = visible_until.map_or(sunday, |v| v.min(sunday));

    if user.person.id != student.id {
        let audit = user
            .audit_context()
            .event(app.now_micros(), "diary.view", "ok")
            .actor(user.person.id.0, user.audit_role())
            .target("student", &student.uid)
            .school(school.id.0)
            .details(serde_json::json!({ "week": monday.to_string() }));
        app.store.append_audit(audit).await?;
    }

    let lessons = if monday <= to {
        app.store.list_student_lessons(student.id, class.id, monday, to).await?
    } else {
        Vec::new()
    };
    let marks = app.store.list_student_marks(student.id, monday, to).await?;
    let attendance = app.store.list_student_attendance(student.id, monday, to).await?;
    let work_types = app.store.list_work_types(school.id).await?;
    let mut days: Vec<DiaryDay> = Vec::new();
    for offset in 0..6 {
        let date = monday + Duration::days(offset);
        let day_lessons: Vec<DiaryLesson> = lessons
            .iter()
            .filter(|l| l.date == date)
            .map(|l| DiaryLesson {
                number: l.lesson_number,
                subject: l.assignment.subject_name.clone(),
                teacher: l.assignment.teacher_name.clone(),
                topic: l.topic.clone().unwrap_or_default(),
                homework: l.homework.clone().unwrap_or_default(),
                marks: marks
                    .iter()
                    .filter(|m| Some(m.lesson_id) == l.lesson_id)
                    .map(|m| {
                        let wt = work_types.iter().find(|w| w.id == m.work_type_id);
                        (
                            m.value.display(),
                            wt.map(|w| w.name.clone()).unwrap_or_default(),
                            format!("вес {}", m.weight),
                        )
                    })
                    .collect(),
                attendance: attendance
                    .iter()
                    .find(|a| Some(a.lesson_id) == l.lesson_id)
                    .map(|a| attendance_label(a.kind))
                    .unwrap_or_default(),
                substitution: l.substitution,
            })
            .collect();
        days.push(DiaryDay { title: russian_date(date), lessons: day_lessons });
    }
    let children = if user.actor.is_parent() {
        app.store
            .list_children(user.person.id)
            .await?
            .into_iter()
            .map(|c| (c.person.uid.clone(), c.person.first_name.clone(), c.person.id == student.id))
            .collect()
    } else {
        Vec::new()
    };
    let base = if user.person.id == student.id {
        "/diary".to_string()
    } else {
        format!("/diary/{}", student.uid)
    };
    render(DiaryPage {
        nav: Some(Nav::for_user(user)),
        student_name: student.full_name(),
        class_name: format!("{} · {}", class.name(), school.short_name),
        children,
        week_title: format!("{} — {}", russian_date(monday), russian_date(sunday)),
        prev_week: (monday - Duration::days(7)).to_string(),
        next_week: (monday + Duration::days(7)).to_string(),
        base,
        days,
        notice: visible_until.map(|d| {
            format!("Ученик выбыл {}: новые данные после этой даты недоступны.", russian_date(d))
        }),
    })
}

fn attendance_label(kind: AttendanceKind) -> String {
    format!("{} ({})", kind.abbreviation(), kind.title())
}

pub fn russian_date(d: NaiveDate) -> String {
    const MONTHS: [&str; 12] = [
        "января",
        "февраля",
        "марта",
        "апреля",
        "мая",
        "июня",
        "июля",
        "августа",
        "сентября",
        "октября",
        "ноября",
        "декабря",
    ];
    const DAYS: [&str; 7] =
        ["понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"];
    format!(
        "{}, {} {} {}",
        DAYS[d.weekday().num_days_from_monday() as usize],
        d.day(),
        MONTHS[d.month0() as usize],
        d.year()
    )
}

#[derive(Template)]
#[template(path = "school.html")]
struct SchoolPage {
    nav: Option<Nav>,
    school: SchoolRow,
    year: String,
    classes: Vec<ClassRow>,
}

pub async fn school(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let deny = || WebError::Denied("нет доступа к этой школе".into(), false);
    let school = match state.app.store.get_school(zhurnal_domain::SchoolId(id)).await {
        Ok(s) => s,
        Err(zhurnal_store::StoreError::NotFound(_)) => return Err(deny()),
        Err(e) => return Err(e.into()),
    };
    authorize(&user.actor, Action::ViewSchool, &Resource::School(school.place()))
        .map_err(|_| deny())?;
    let today = state.app.today();
    let years = state.app.store.list_academic_years(school.id).await?;
    let year = years.iter().find(|y| y.starts_on <= today && today <= y.ends_on).or(years.first());
    let classes = match year {
        Some(y) => state.app.store.list_classes(school.id, y.id).await?,
        None => Vec::new(),
    };
    render(SchoolPage {
        nav: Some(Nav::for_user(&user)),
        school,
        year: year.map(|y| y.name.clone()).unwrap_or_else(|| "учебный год не задан".into()),
        classes,
    })
}

#[derive(Template)]
#[template(path = "class.html")]
struct ClassPage {
    nav: Option<Nav>,
    school: SchoolRow,
    class: ClassRow,
    class_teacher: Option<String>,
    students: Vec<(usize, String, String)>,
}

pub async fn class_roster(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let deny = || WebError::Denied("нет доступа к этому классу".into(), false);
    let class = match app.store.get_class(zhurnal_domain::ClassId(id)).await {
        Ok(c) => c,
        Err(zhurnal_store::StoreError::NotFound(_)) => return Err(deny()),
        Err(e) => return Err(e.into()),
    };
    let school = app.store.get_school(class.school_id).await?;
    authorize(
        &user.actor,
        Action::ViewRoster,
        &Resource::Class { place: school.place(), class: class.id },
    )
    .map_err(|_| deny())?;
    let audit = user
        .audit_context()
        .event(app.now_micros(), "roster.view", "ok")
        .actor(user.person.id.0, user.audit_role())
        .target("class", class.id)
        .school(school.id.0);
    app.store.append_audit(audit).await?;
    let roster = app.store.list_roster(class.id, app.today()).await?;
    let class_teacher = match class.class_teacher_id {
        Some(t) => Some(app.store.get_person(t).await?.full_name()),
        None => None,
    };
    let students = roster
        .iter()
        .enumerate()
        .map(|(i, e)| {
            (
                i + 1,
                e.person.full_name(),
                e.person.birth_date.map(|d| d.format("%d.%m.%Y").to_string()).unwrap_or_default(),
            )
        })
        .collect();
    render(ClassPage { nav: Some(Nav::for_user(&user)), school, class, class_teacher, students })
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct Dashboard {
    nav: Option<Nav>,
    title: String,
    intro: String,
    rows: Vec<(String, String, String)>,
}

pub async fn admin_home(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    let mut rows = Vec::new();
    for (role, scope) in &user.actor.grants {
        if let (Role::SchoolAdmin, RoleScope::School(s)) = (role, scope) {
            let school = state.app.store.get_school(*s).await?;
            authorize(&user.actor, Action::ManageSchool, &Resource::School(school.place()))?;
            rows.push((
                format!("/schools/{}", school.id),
                school.name.clone(),
                "классы и списки".into(),
            ));
        }
    }
    if rows.is_empty() {
        return Err(WebError::Denied("Страница администратора школы.".into(), false));
    }
    rows.push((
        "/admin/reactivation".into(),
        "Разблокировка неактивных учётных записей".into(),
        "класс или вся школа после каникул".into(),
    ));
    render(Dashboard {
        nav: Some(Nav::for_user(&user)),
        title: "Администратор школы".into(),
        intro: "Управление учебным годом, классами, расписанием и сотрудниками появится здесь; пока доступны списки классов.".into(),
        rows,
    })
}

pub async fn region_home(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    let app = &state.app;
    let mut rows = Vec::new();
    for school in app.store.list_schools().await? {
        if authorize(&user.actor, Action::ViewReports, &Resource::School(school.place())).is_ok() {
            let muni = app.store.get_municipality(school.municipality_id).await?;
            rows.push((format!("/schools/{}", school.id), school.name.clone(), muni.name));
        }
    }
    if rows.is_empty()
        && !user.actor.has_role(Role::RegionalAdmin)
        && !user.actor.has_role(Role::MunicipalOfficer)
    {
        return Err(WebError::Denied("Страница органов управления образованием.".into(), false));
    }
    render(Dashboard {
        nav: Some(Nav::for_user(&user)),
        title: "Школы территории".into(),
        intro: "Школы, за которые вы отвечаете. Сводные отчёты и мониторинг появятся здесь.".into(),
        rows,
    })
}
