//! Server-rendered pages. Each handler authorizes with the domain policy before reading
//! personal data and audits views of another person's data.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{Datelike, NaiveDate};
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{Action, Role, RoleScope, authorize};
use zhurnal_store::{ClassRow, ScheduledLesson, SchoolRow};

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
        // Area `integrations`: the territory officials' monitoring.
        if user.actor.has_role(Role::RegionalAdmin) || user.actor.has_role(Role::MunicipalOfficer) {
            links.push(("/monitoring".into(), "Мониторинг".into()));
        }
        // Area `diary`: announcements for senders, recipients and the school admin.
        if !links.is_empty() || !user.actor.teaching.is_empty() {
            links.push(("/announcements".into(), "Объявления".into()));
        }
        // import area: loading data from the old journal (school and regional admins).
        if user.actor.has_role(Role::SchoolAdmin) || user.actor.has_role(Role::RegionalAdmin) {
            links.push(("/import".into(), "Загрузка данных".into()));
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

pub(crate) fn render(t: impl Template) -> Result<Response, WebError> {
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
const JOURNAL_STYLE: &str = include_str!("../static/journal.css");
const JOURNAL_SCRIPT: &str = include_str!("../static/journal.js");
const IMPORT_SCRIPT: &str = include_str!("../static/import.js");

pub async fn static_file(Path(file): Path<String>) -> Response {
    let (body, mime) = match file.as_str() {
        "app.css" => (STYLE, "text/css; charset=utf-8"),
        "app.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "journal.css" => (JOURNAL_STYLE, "text/css; charset=utf-8"),
        "journal.js" => (JOURNAL_SCRIPT, "text/javascript; charset=utf-8"),
        "import.js" => (IMPORT_SCRIPT, "text/javascript; charset=utf-8"),
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
    /// The teacher's own id: a substituted lesson shows who takes it.
    me: zhurnal_domain::PersonId,
    /// Journals of the classes the teacher leads (class teacher): link and title.
    class_journals: Vec<(String, String)>,
    /// The teacher's own journals (assignments): link and title.
    journals: Vec<(String, String)>,
}

pub async fn teacher_today(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    if !user.actor.has_role(Role::Teacher) && user.actor.teaching.is_empty() {
        return Err(WebError::Denied("Страница «Мои уроки» доступна учителям.".into(), false));
    }
    let today = state.app.today();
    // Substituted lessons stay on the absent teacher's day, marked as given away.
    let lessons = state.app.store.list_teacher_day_all(user.person.id, today).await?;
    // Every journal the teacher keeps, for days without lessons.
    let mut journals = Vec::new();
    for t in &user.actor.teaching {
        let a = state.app.store.get_journal_assignment(t.assignment).await?;
        let title = match &a.group_name {
            Some(g) => format!("{}, {} ({g})", a.assignment.subject_name, a.assignment.class_name),
            None => format!("{}, {}", a.assignment.subject_name, a.assignment.class_name),
        };
        let link = (format!("/journal/{}", a.assignment.id), title);
        if !journals.contains(&link) {
            journals.push(link);
        }
    }
    journals.sort_by(|a, b| a.1.cmp(&b.1));
    let mut class_teacher_of = Vec::new();
    let mut class_journals = Vec::new();
    for c in &user.actor.class_teacher_of {
        let class = state.app.store.get_class(*c).await?;
        for a in state.app.store.list_class_assignments(*c).await? {
            class_journals.push((
                format!("/journal/{}", a.id),
                format!("{}, {} — {}", a.subject_name, class.name(), a.teacher_name),
            ));
        }
        class_teacher_of.push(class);
    }
    render(TeacherToday {
        nav: Some(Nav::for_user(&user)),
        date: russian_date(today),
        lessons,
        class_teacher_of,
        me: user.person.id,
        class_journals,
        journals,
    })
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
    app.audit_read(audit).await?;
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
                format!("/admin/schools/{}", school.id),
                school.name.clone(),
                "учебный год, классы, расписание, ученики".into(),
            ));
            rows.push((
                "/admin/roles".into(),
                "Сотрудники и роли".into(),
                "назначение ролей".into(),
            ));
            rows.push((
                format!("/reports?school={}", school.id),
                "Отчёты".into(),
                "успеваемость, посещаемость, заполнение журнала".into(),
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
        intro: "Управление учебным годом, классами, расписанием, учениками и сотрудниками; отчёты школы.".into(),
        rows,
    })
}

pub async fn region_home(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Response, WebError> {
    // A school admin also passes ViewReports for their own school; this page is for the
    // territory's officials only.
    if !user.actor.has_role(Role::RegionalAdmin) && !user.actor.has_role(Role::MunicipalOfficer) {
        return Err(WebError::Denied("Страница органов управления образованием.".into(), false));
    }
    let app = &state.app;
    let mut rows = Vec::new();
    for school in app.store.list_schools().await? {
        if authorize(&user.actor, Action::ViewReports, &Resource::School(school.place())).is_ok() {
            let muni = app.store.get_municipality(school.municipality_id).await?;
            rows.push((format!("/schools/{}", school.id), school.name.clone(), muni.name));
        }
    }
    render(Dashboard {
        nav: Some(Nav::for_user(&user)),
        title: "Школы территории".into(),
        intro: "Школы, за которые вы отвечаете. Сводные отчёты и мониторинг появятся здесь.".into(),
        rows,
    })
}
