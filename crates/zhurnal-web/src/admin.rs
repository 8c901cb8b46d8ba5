//! School administration pages (Action::ManageSchool, own school only): calendar, classes and
//! groups, subjects and work types, assignments, timetable and substitutions, students
//! (admission, transfer, departure), staff roles and the year rollover. Every form parses its
//! fields here and answers a bad value with a Russian message and no change. Form fields all
//! default to empty, so a request from someone without the right is refused by the policy
//! (403) before any field is looked at; the fields are checked only for those allowed.

use std::collections::BTreeSet;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use zhurnal_app::admin::{AdmissionForm, Caller};
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{
    AcademicYearId, Action, AssignmentId, ClassId, Grading, GroupId, PeriodScheme, PersonId, Role,
    RoleScope, SchoolId, SubjectId, TimetableSlotId, authorize,
};
use zhurnal_store::{
    AssignmentRow, ClassRow, DepartureKind, EnrolmentRow, GroupRow, NewClass, NewPeriod, NewYear,
    PeriodRow, PersonRow, SchoolRow, SlotInfo, StaffRow, StoreError, SubjectRow, SubstitutionRow,
    WorkTypeRow,
};

use crate::pages::Nav;
use crate::session::CurrentUser;
use crate::{AppState, WebError, html_headers};

fn render(t: impl Template) -> Result<Response, WebError> {
    Ok((axum::http::StatusCode::OK, html_headers(), t.render()?).into_response())
}

pub(crate) fn caller(user: &CurrentUser) -> Caller {
    Caller {
        actor: user.actor.clone(),
        role: user.audit_role().to_string(),
        ctx: user.audit_context(),
    }
}

fn bad(msg: impl Into<String>) -> WebError {
    WebError::BadRequest(msg.into(), false)
}

fn date(value: &str, field: &str) -> Result<NaiveDate, WebError> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        bad(format!(
            "Поле «{field}»: «{}» — не дата; укажите дату в формате ГГГГ-ММ-ДД.",
            value.trim()
        ))
    })
}

fn number<T: std::str::FromStr>(value: &str, field: &str, hint: &str) -> Result<T, WebError> {
    value.trim().parse().map_err(|_| bad(format!("Поле «{field}»: «{}» — {hint}.", value.trim())))
}

fn optional_id(value: &str) -> Option<i64> {
    value.trim().parse().ok().filter(|v: &i64| *v > 0)
}

fn scheme(value: &str) -> Result<PeriodScheme, WebError> {
    PeriodScheme::from_code(value)
        .ok_or_else(|| bad("Выберите деление года: четверти, триместры или полугодия."))
}

fn back(path: &str, message: &str) -> Response {
    let to = format!(
        "{path}?ok={}",
        url::form_urlencoded::byte_serialize(message.as_bytes()).collect::<String>()
    );
    Redirect::to(&to).into_response()
}

/// Maps a store conflict of a form write to a clear message.
fn conflict(e: zhurnal_app::AppError, what: &str) -> WebError {
    match e {
        zhurnal_app::AppError::Store(StoreError::Conflict { .. }) => bad(format!(
            "{what}: такая запись уже есть или ссылается на несуществующие данные; ничего не изменено."
        )),
        other => other.into(),
    }
}

#[derive(Deserialize, Default)]
pub struct OkQuery {
    ok: Option<String>,
}

pub struct PeriodView {
    pub name: String,
    pub starts_on: String,
    pub ends_on: String,
    pub closed: bool,
}

#[derive(Template)]
#[template(path = "admin_school.html")]
struct SchoolAdminPage {
    nav: Option<Nav>,
    ok: Option<String>,
    school: SchoolRow,
    year_name: String,
    year_id: i64,
    archived: bool,
    periods: Vec<PeriodView>,
    classes: Vec<ClassRow>,
    teachers: Vec<PersonRow>,
    subjects: Vec<SubjectRow>,
    work_types: Vec<WorkTypeRow>,
    assignments: Vec<AssignmentRow>,
    slots: Vec<SlotInfo>,
    substitutions: Vec<SubstitutionRow>,
    weekdays: Vec<(u8, &'static str)>,
}

const WEEKDAYS: [(u8, &str); 6] = [
    (1, "понедельник"),
    (2, "вторник"),
    (3, "среда"),
    (4, "четверг"),
    (5, "пятница"),
    (6, "суббота"),
];

pub fn weekday_name(n: &u8) -> &'static str {
    WEEKDAYS.iter().find(|(d, _)| d == n).map_or("воскресенье", |(_, name)| name)
}

/// GET /admin/schools/{school}: the whole school on one page.
pub async fn school_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    q: Query<OkQuery>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let year = app.current_year(school.id).await?;
    let (year_name, year_id, archived, periods, classes, assignments, slots) = match &year {
        Some(y) => {
            let periods: Vec<PeriodRow> = app.store.list_periods(y.id).await?;
            (
                y.name.clone(),
                y.id.0,
                app.store.find_year_archived_at(y.id).await?.is_some(),
                periods
                    .iter()
                    .map(|p| PeriodView {
                        name: p.period.name(),
                        starts_on: p.period.starts_on.to_string(),
                        ends_on: p.period.ends_on.to_string(),
                        closed: p.period.closed_on.is_some(),
                    })
                    .collect(),
                app.store.list_classes(school.id, y.id).await?,
                app.store.list_assignments(school.id, y.id).await?,
                app.store.list_slots(school.id, y.id).await?,
            )
        }
        None => ("не задан".into(), 0, false, Vec::new(), Vec::new(), Vec::new(), Vec::new()),
    };
    let today = app.today();
    render(SchoolAdminPage {
        nav: Some(Nav::for_user(&user)),
        ok: q.0.ok,
        teachers: app.store.list_people_with_role(school.id, Role::Teacher).await?,
        subjects: app.store.list_subjects(school.id).await?,
        work_types: app.store.list_work_types(school.id).await?,
        substitutions: app
            .store
            .list_substitutions(school.id, today, today + chrono::Duration::days(14))
            .await?,
        school,
        year_name,
        year_id,
        archived,
        periods,
        classes,
        assignments,
        slots,
        weekdays: WEEKDAYS.to_vec(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct YearForm {
    name: String,
    starts_on: String,
    ends_on: String,
    scheme: String,
}

/// POST /admin/schools/{school}/years: a new academic year with its periods split evenly.
pub async fn create_year(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<YearForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let starts = date(&f.starts_on, "Начало года")?;
    let ends = date(&f.ends_on, "Конец года")?;
    if ends <= starts {
        return Err(bad("Конец учебного года должен быть позже начала."));
    }
    let scheme = scheme(&f.scheme)?;
    let name = f.name.trim();
    if name.is_empty() {
        return Err(bad("Укажите название учебного года, например «2027/2028»."));
    }
    // Periods split the year evenly; the admin moves the dates afterwards.
    let days = (ends - starts).num_days() + 1;
    let n = i64::from(scheme.count());
    let periods = (0..n)
        .map(|i| NewPeriod {
            scheme,
            number: (i + 1) as u8,
            starts_on: starts + chrono::Duration::days(days * i / n),
            ends_on: starts + chrono::Duration::days(days * (i + 1) / n - 1),
        })
        .collect();
    let year = NewYear {
        school: school.id,
        external_id: format!("{}-year-{}", school.external_id, starts.format("%Y")),
        name: name.into(),
        starts_on: starts,
        ends_on: ends,
        periods,
    };
    let audit = caller(&user).audit(app.now_micros(), "year.create").school(school.id.0);
    app.store.create_year(&year, audit).await.map_err(|e| conflict(e.into(), "Учебный год"))?;
    Ok(back(&format!("/admin/schools/{id}"), "Учебный год создан"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct PeriodForm {
    scheme: String,
    number: String,
    starts_on: String,
    ends_on: String,
}

/// POST /admin/schools/{school}/periods: creates or moves a period of the current year.
pub async fn save_period(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<PeriodForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let year =
        app.current_year(school.id).await?.ok_or_else(|| bad("Сначала создайте учебный год."))?;
    app.ensure_year_open(year.id).await?;
    let scheme = scheme(&f.scheme)?;
    let number: u8 = number(&f.number, "Номер периода", "номер от 1 до 4")?;
    if number == 0 || number > scheme.count() {
        return Err(bad(format!("Номер периода должен быть от 1 до {}.", scheme.count())));
    }
    let p = NewPeriod {
        scheme,
        number,
        starts_on: date(&f.starts_on, "Начало")?,
        ends_on: date(&f.ends_on, "Конец")?,
    };
    if p.ends_on < p.starts_on || p.starts_on < year.starts_on || p.ends_on > year.ends_on {
        return Err(bad(format!(
            "Период должен начинаться раньше, чем заканчивается, и лежать внутри учебного года ({} — {}).",
            year.starts_on.format("%d.%m.%Y"),
            year.ends_on.format("%d.%m.%Y")
        )));
    }
    let audit = caller(&user)
        .audit(app.now_micros(), "period.update")
        .school(school.id.0)
        .details(serde_json::json!({ "scheme": scheme.code(), "number": number }));
    app.store.upsert_period(year.id, &p, audit).await?;
    Ok(back(&format!("/admin/schools/{id}"), "Период сохранён"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ClassForm {
    grade: String,
    letter: String,
    class_teacher: String,
    scheme: String,
}

fn letter(value: &str) -> Result<String, WebError> {
    let l = value.trim().to_uppercase();
    if l.is_empty() || l.chars().count() > 3 || !l.chars().all(|c| c.is_alphabetic()) {
        return Err(bad("Литера класса — одна-три буквы, например «А»."));
    }
    Ok(l)
}

/// POST /admin/schools/{school}/classes
pub async fn create_class(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<ClassForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let year =
        app.current_year(school.id).await?.ok_or_else(|| bad("Сначала создайте учебный год."))?;
    app.ensure_year_open(year.id).await?;
    let grade: u8 = number(&f.grade, "Параллель", "номер класса от 1 до 11")?;
    if !(1..=11).contains(&grade) {
        return Err(bad("Параллель — число от 1 до 11."));
    }
    let letter = letter(&f.letter)?;
    let teacher = optional_id(&f.class_teacher).map(PersonId);
    let scheme = if f.scheme.is_empty() {
        PeriodScheme::default_for_grade(grade)
    } else {
        scheme(&f.scheme)?
    };
    let class = NewClass {
        school: school.id,
        year: year.id,
        external_id: format!(
            "{}-{}-{grade}{letter}-{}",
            school.external_id,
            year.id,
            app.now_micros()
        ),
        grade,
        letter: letter.clone(),
        class_teacher: teacher,
        scheme,
        newly_formed: true,
    };
    let audit = caller(&user)
        .audit(app.now_micros(), "class.create")
        .school(school.id.0)
        .details(serde_json::json!({ "class": format!("{grade}{letter}") }));
    app.store
        .create_class(&class, audit)
        .await
        .map_err(|e| conflict(e.into(), &format!("Класс {grade}{letter}")))?;
    Ok(back(&format!("/admin/schools/{id}"), &format!("Класс {grade}{letter} создан")))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ClassEditForm {
    letter: String,
    class_teacher: String,
}

/// POST /admin/classes/{class}: rename the letter, set the class teacher.
pub async fn update_class(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<ClassEditForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let (school, class) = app.managed_class(&user.actor, ClassId(id)).await?;
    app.ensure_year_open(class.academic_year_id).await?;
    let letter = letter(&f.letter)?;
    let audit = caller(&user)
        .audit(app.now_micros(), "class.update")
        .target("class", class.id)
        .school(school.id.0)
        .details(
            serde_json::json!({ "from": class.name(), "to": format!("{}{letter}", class.grade) }),
        );
    app.store
        .update_class(class.id, &letter, optional_id(&f.class_teacher).map(PersonId), audit)
        .await
        .map_err(|e| conflict(e.into(), "Класс"))?;
    Ok(back(&format!("/admin/classes/{id}"), "Класс сохранён"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SubjectForm {
    name: String,
    grading: String,
}

/// POST /admin/schools/{school}/subjects
pub async fn create_subject(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<SubjectForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let name = f.name.trim();
    if name.is_empty() {
        return Err(bad("Укажите название предмета."));
    }
    let grading = Grading::from_code(&f.grading)
        .ok_or_else(|| bad("Выберите систему оценивания: пятибалльная или зачёт."))?;
    let audit = caller(&user).audit(app.now_micros(), "subject.create").school(school.id.0);
    app.store.create_subject(school.id, name, grading, audit).await?;
    Ok(back(&format!("/admin/schools/{id}"), "Предмет добавлен"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct WorkTypeForm {
    code: String,
    name: String,
    weight: String,
}

/// POST /admin/schools/{school}/work-types: a work type and its weight.
pub async fn save_work_type(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<WorkTypeForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let code = f.code.trim();
    if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(bad("Код вида работы — латинские буквы, цифры, дефис (например, «test»)."));
    }
    let weight: i64 = number(&f.weight, "Вес", "целое число от 1 до 10")?;
    let weight =
        zhurnal_domain::mark::parse_weight(weight).map_err(|e| bad(format!("Вес: {e}.")))?;
    let name = f.name.trim();
    if name.is_empty() {
        return Err(bad("Укажите название вида работы."));
    }
    let audit = caller(&user)
        .audit(app.now_micros(), "work_type.update")
        .school(school.id.0)
        .details(serde_json::json!({ "code": code, "weight": weight }));
    app.store.upsert_work_type(school.id, code, name, weight, audit).await?;
    Ok(back(&format!("/admin/schools/{id}"), "Вид работы сохранён"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AssignmentForm {
    teacher: String,
    class: String,
    subject: String,
    group: String,
}

/// POST /admin/schools/{school}/assignments: педагогическая нагрузка.
pub async fn create_assignment(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<AssignmentForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let teacher = PersonId(number(&f.teacher, "Учитель", "выберите учителя из списка")?);
    let class = ClassId(number(&f.class, "Класс", "выберите класс из списка")?);
    let subject = SubjectId(number(&f.subject, "Предмет", "выберите предмет из списка")?);
    let (cschool, c) = app.managed_class(&user.actor, class).await?;
    app.ensure_year_open(c.academic_year_id).await?;
    let teachers = app.store.list_people_with_role(school.id, Role::Teacher).await?;
    let subjects = app.store.list_subjects(school.id).await?;
    if cschool.id != school.id
        || !teachers.iter().any(|t| t.id == teacher)
        || !subjects.iter().any(|s| s.id == subject)
    {
        return Err(bad("Учитель, класс и предмет должны быть из этой школы."));
    }
    let group = optional_id(&f.group).map(GroupId);
    if let Some(g) = group
        && !app.store.list_groups(class).await?.iter().any(|x| x.id == g)
    {
        return Err(bad("Группа должна принадлежать выбранному классу."));
    }
    let audit = caller(&user).audit(app.now_micros(), "assignment.create").school(school.id.0);
    app.store.create_assignment(teacher, class, group, subject, audit).await?;
    Ok(back(&format!("/admin/schools/{id}"), "Нагрузка добавлена"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SlotForm {
    assignment: String,
    weekday: String,
    lesson_number: String,
    room: String,
}

/// POST /admin/schools/{school}/slots: a lesson of the timetable; double-booking refused.
pub async fn create_slot(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<SlotForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let year =
        app.current_year(school.id).await?.ok_or_else(|| bad("Сначала создайте учебный год."))?;
    app.ensure_year_open(year.id).await?;
    let assignment =
        AssignmentId(number(&f.assignment, "Нагрузка", "выберите нагрузку из списка")?);
    let weekday: u8 = number(&f.weekday, "День недели", "выберите день недели")?;
    let lesson: u8 = number(&f.lesson_number, "Номер урока", "число от 1 до 10")?;
    if !(1..=6).contains(&weekday) || !(1..=10).contains(&lesson) {
        return Err(bad("День недели — с понедельника по субботу, номер урока — от 1 до 10."));
    }
    let assignments = app.store.list_assignments(school.id, year.id).await?;
    let a = assignments
        .iter()
        .find(|a| a.id == assignment)
        .ok_or_else(|| bad("Нагрузка не найдена в текущем учебном году этой школы."))?;
    let room = Some(f.room.trim()).filter(|r| !r.is_empty());
    let audit = caller(&user)
        .audit(app.now_micros(), "timetable.slot.create")
        .school(school.id.0)
        .details(serde_json::json!({ "assignment": a.id, "weekday": weekday, "lesson": lesson }));
    let when = format!("{}, {} урок", weekday_name(&weekday), lesson);
    match app.store.create_slot(assignment, weekday, lesson, room, audit).await {
        Ok(_) => Ok(back(&format!("/admin/schools/{id}"), &format!("Урок добавлен: {when}"))),
        Err(StoreError::Conflict { constraint }) => {
            let slots = app.store.list_slots(school.id, year.id).await?;
            let other = slots.iter().find(|s| {
                s.weekday == weekday
                    && s.lesson_number == lesson
                    && (s.assignment.teacher_id == a.teacher_id
                        || s.assignment.class_id == a.class_id)
            });
            let busy = other
                .map(|s| {
                    format!(
                        " (уже стоит: {} в {}, {})",
                        s.assignment.subject_name,
                        s.assignment.class_name,
                        s.assignment.teacher_name
                    )
                })
                .unwrap_or_default();
            let who = if constraint == "timetable_teacher_busy" {
                format!("учитель {} уже ведёт урок", a.teacher_name)
            } else {
                format!("у класса {} уже есть урок", a.class_name)
            };
            Err(bad(format!(
                "Накладка в расписании: {when} — {who}{busy}. Выберите другой день или номер урока; расписание не изменено."
            )))
        }
        Err(e) => Err(e.into()),
    }
}

/// POST /admin/schools/{school}/slots/{slot}/delete
pub async fn delete_slot(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, slot)): Path<(i64, i64)>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let year = app.current_year(school.id).await?.ok_or_else(|| bad("Нет учебного года."))?;
    app.ensure_year_open(year.id).await?;
    if !app.store.list_slots(school.id, year.id).await?.iter().any(|s| s.id.0 == slot) {
        return Err(WebError::NotFound("урок расписания".into(), false));
    }
    let audit = caller(&user)
        .audit(app.now_micros(), "timetable.slot.delete")
        .target("slot", slot)
        .school(school.id.0);
    app.store.delete_slot(TimetableSlotId(slot), audit).await?;
    Ok(back(&format!("/admin/schools/{id}"), "Урок удалён из расписания"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SubstitutionForm {
    slot: String,
    date: String,
    substitute: String,
    reason: String,
}

/// POST /admin/schools/{school}/substitutions: замена on a date.
pub async fn set_substitution(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<SubstitutionForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let school = app.managed_school(&user.actor, SchoolId(id)).await?;
    let year = app.current_year(school.id).await?.ok_or_else(|| bad("Нет учебного года."))?;
    let slot: i64 = number(&f.slot, "Урок", "выберите урок из расписания")?;
    let on = date(&f.date, "Дата замены")?;
    let substitute = PersonId(number(&f.substitute, "Замещающий учитель", "выберите учителя")?);
    let slots = app.store.list_slots(school.id, year.id).await?;
    let s = slots
        .iter()
        .find(|s| s.id.0 == slot)
        .ok_or_else(|| bad("Урок не найден в расписании этой школы."))?;
    use chrono::Datelike;
    if u32::from(s.weekday) != on.weekday().number_from_monday() {
        return Err(bad(format!(
            "Дата {} — не {}: замена ставится на день этого урока.",
            on.format("%d.%m.%Y"),
            weekday_name(&s.weekday)
        )));
    }
    if !app
        .store
        .list_people_with_role(school.id, Role::Teacher)
        .await?
        .iter()
        .any(|t| t.id == substitute)
    {
        return Err(bad("Замещающий должен быть учителем этой школы."));
    }
    let audit = caller(&user)
        .audit(app.now_micros(), "substitution.set")
        .target("slot", slot)
        .school(school.id.0)
        .details(serde_json::json!({ "date": on.to_string(), "substitute": substitute }));
    let reason = Some(f.reason.trim()).filter(|r| !r.is_empty());
    app.store.set_substitution(s.id, on, substitute, reason, audit).await?;
    Ok(back(&format!("/admin/schools/{id}"), "Замена назначена"))
}

pub struct RosterView {
    pub enrolment_id: i64,
    pub person_id: i64,
    pub name: String,
    pub birth: String,
    pub admitted: String,
}

#[derive(Template)]
#[template(path = "admin_class.html")]
struct ClassAdminPage {
    nav: Option<Nav>,
    ok: Option<String>,
    school: SchoolRow,
    class: ClassRow,
    roster: Vec<RosterView>,
    other_classes: Vec<ClassRow>,
    teachers: Vec<PersonRow>,
    groups: Vec<(GroupRow, Vec<String>)>,
    today: String,
}

/// GET /admin/classes/{class}: roster with admission, transfer, departure; groups.
pub async fn class_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    q: Query<OkQuery>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let (school, class) = app.managed_class(&user.actor, ClassId(id)).await?;
    let roster = app.store.list_roster(class.id, app.today()).await?;
    let names: std::collections::HashMap<PersonId, String> =
        roster.iter().map(|e| (e.person.id, e.person.short_name())).collect();
    let groups = app
        .store
        .list_groups(class.id)
        .await?
        .into_iter()
        .map(|g| {
            let members = g.members.iter().filter_map(|m| names.get(m).cloned()).collect();
            (g, members)
        })
        .collect();
    render(ClassAdminPage {
        nav: Some(Nav::for_user(&user)),
        ok: q.0.ok,
        roster: roster
            .iter()
            .map(|e| RosterView {
                enrolment_id: e.enrolment_id,
                person_id: e.person.id.0,
                name: e.person.full_name(),
                birth: e
                    .person
                    .birth_date
                    .map(|d| d.format("%d.%m.%Y").to_string())
                    .unwrap_or_default(),
                admitted: e.admitted_on.format("%d.%m.%Y").to_string(),
            })
            .collect(),
        other_classes: app
            .store
            .list_classes(school.id, class.academic_year_id)
            .await?
            .into_iter()
            .filter(|c| c.id != class.id)
            .collect(),
        teachers: app.store.list_people_with_role(school.id, Role::Teacher).await?,
        groups,
        today: app.today().to_string(),
        school,
        class,
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct AdmitForm {
    last_name: String,
    first_name: String,
    middle_name: String,
    birth_date: String,
    gender: String,
    snils: String,
    admitted_on: String,
}

/// POST /admin/classes/{class}/students: зачисление.
pub async fn admit(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<AdmitForm>,
) -> Result<Response, WebError> {
    state.app.managed_class(&user.actor, ClassId(id)).await?;
    let form = AdmissionForm {
        last_name: f.last_name,
        first_name: f.first_name,
        middle_name: f.middle_name,
        birth_date: Some(date(&f.birth_date, "Дата рождения")?),
        gender: f.gender,
        snils: f.snils,
        admitted_on: if f.admitted_on.trim().is_empty() {
            None
        } else {
            Some(date(&f.admitted_on, "Дата зачисления")?)
        },
    };
    state.app.admit_student(&caller(&user), ClassId(id), &form).await?;
    Ok(back(&format!("/admin/classes/{id}"), "Ученик зачислен"))
}

/// The enrolment when the user administers its class (asked before any form field is read).
async fn managed_enrolment(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
) -> Result<EnrolmentRow, WebError> {
    let e = state.app.store.get_enrolment(id).await.map_err(|e| match e {
        StoreError::NotFound(_) => WebError::NotFound("зачисление".into(), false),
        other => other.into(),
    })?;
    state.app.managed_class(&user.actor, e.class_id).await?;
    Ok(e)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TransferForm {
    to_class: String,
    date: String,
}

/// POST /admin/enrolments/{enrolment}/transfer
pub async fn transfer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<TransferForm>,
) -> Result<Response, WebError> {
    let from = managed_enrolment(&state, &user, id).await?;
    let to = ClassId(number(&f.to_class, "Класс", "выберите класс из списка")?);
    let on = date(&f.date, "Дата перевода")?;
    state.app.transfer_student(&caller(&user), id, to, on).await?;
    Ok(back(&format!("/admin/classes/{}", from.class_id), "Ученик переведён"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DepartForm {
    date: String,
    kind: String,
    reason: String,
}

/// POST /admin/enrolments/{enrolment}/depart: выбытие.
pub async fn depart(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<DepartForm>,
) -> Result<Response, WebError> {
    let e = managed_enrolment(&state, &user, id).await?;
    let on = date(&f.date, "Дата выбытия")?;
    let kind =
        DepartureKind::from_code(&f.kind).ok_or_else(|| bad("Выберите вид выбытия из списка."))?;
    state.app.depart_student(&caller(&user), id, on, kind, &f.reason).await?;
    Ok(back(&format!("/admin/classes/{}", e.class_id), "Выбытие оформлено"))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GroupForm {
    name: String,
}

/// POST /admin/classes/{class}/groups
pub async fn create_group(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
    Form(f): Form<GroupForm>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let (school, class) = app.managed_class(&user.actor, ClassId(id)).await?;
    app.ensure_year_open(class.academic_year_id).await?;
    let name = f.name.trim();
    if name.is_empty() {
        return Err(bad("Укажите название группы, например «Английский, 1 группа»."));
    }
    let audit = caller(&user).audit(app.now_micros(), "group.create").school(school.id.0);
    app.store.create_group(class.id, name, audit).await?;
    Ok(back(&format!("/admin/classes/{id}"), "Группа создана"))
}

/// POST /admin/classes/{class}/groups/{group}/members: the form lists `member` checkboxes.
pub async fn group_members(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((id, group)): Path<(i64, i64)>,
    body: String,
) -> Result<Response, WebError> {
    let app = &state.app;
    let (school, class) = app.managed_class(&user.actor, ClassId(id)).await?;
    app.ensure_year_open(class.academic_year_id).await?;
    if !app.store.list_groups(class.id).await?.iter().any(|g| g.id.0 == group) {
        return Err(WebError::NotFound("группа".into(), false));
    }
    let roster: BTreeSet<PersonId> =
        app.store.list_roster(class.id, app.today()).await?.iter().map(|e| e.person.id).collect();
    let mut members = Vec::new();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        if k == "member" {
            let p = PersonId(number(&v, "Ученик", "выберите учеников из списка класса")?);
            if !roster.contains(&p) {
                return Err(bad("В группу можно включить только учеников этого класса."));
            }
            members.push(p);
        }
    }
    let audit = caller(&user)
        .audit(app.now_micros(), "group.members")
        .target("group", group)
        .school(school.id.0)
        .details(serde_json::json!({ "members": members.len() }));
    app.store.set_group_members(GroupId(group), &members, audit).await?;
    Ok(back(&format!("/admin/classes/{id}"), "Состав группы сохранён"))
}

pub struct GrantView {
    pub id: i64,
    pub person: String,
    pub role: String,
    pub scope: String,
    pub revocable: bool,
}

#[derive(Template)]
#[template(path = "admin_roles.html")]
struct RolesPage {
    nav: Option<Nav>,
    ok: Option<String>,
    grants: Vec<GrantView>,
    /// (value, title) of scopes the actor may grant at, with the roles for each.
    scopes: Vec<(String, String)>,
    roles: Vec<(String, String)>,
}

async fn scope_title(state: &AppState, scope: RoleScope) -> Result<String, WebError> {
    let app = &state.app;
    Ok(match scope {
        RoleScope::School(s) => app.store.get_school(s).await?.short_name,
        RoleScope::Municipality(m) => app.store.get_municipality(m).await?.name,
        RoleScope::Region(r) => app
            .store
            .list_regions()
            .await?
            .into_iter()
            .find(|x| x.id == r)
            .map_or(format!("регион {r}"), |x| x.name),
    })
}

fn scope_code(scope: RoleScope) -> String {
    match scope {
        RoleScope::School(s) => format!("school:{s}"),
        RoleScope::Municipality(m) => format!("municipality:{m}"),
        RoleScope::Region(r) => format!("region:{r}"),
    }
}

fn parse_scope(value: &str) -> Result<RoleScope, WebError> {
    let err = || bad("Выберите, где действует роль: школа, муниципалитет или регион.");
    let (kind, id) = value.split_once(':').ok_or_else(err)?;
    let id: i64 = id.parse().map_err(|_| err())?;
    Ok(match kind {
        "school" => RoleScope::School(SchoolId(id)),
        "municipality" => RoleScope::Municipality(zhurnal_domain::MunicipalityId(id)),
        "region" => RoleScope::Region(zhurnal_domain::RegionId(id)),
        _ => return Err(err()),
    })
}

/// GET /admin/roles: staff roles the actor manages, with grant and revoke forms.
pub async fn roles_page(
    State(state): State<AppState>,
    user: CurrentUser,
    q: Query<OkQuery>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let mut rows: Vec<StaffRow> = Vec::new();
    let mut scopes: Vec<(String, String)> = Vec::new();
    let mut roles: Vec<Role> = Vec::new();
    for (role, scope) in user.actor.grants.clone() {
        match (role, scope) {
            (Role::SchoolAdmin, RoleScope::School(s)) => {
                let school = app.managed_school(&user.actor, s).await?;
                authorize(&user.actor, Action::GrantRole, &Resource::School(school.place()))?;
                rows.extend(app.store.list_school_staff(s).await?);
                scopes.push((scope_code(scope), school.short_name.clone()));
                roles.extend([Role::Teacher, Role::SchoolAdmin]);
            }
            (Role::RegionalAdmin, RoleScope::Region(r)) => {
                authorize(&user.actor, Action::GrantRole, &Resource::Region(r))?;
                rows.extend(app.store.list_region_staff(r).await?);
                scopes.push((scope_code(scope), scope_title(&state, scope).await?));
                for m in app.store.list_municipalities(r).await? {
                    scopes.push((scope_code(RoleScope::Municipality(m.id)), m.name.clone()));
                }
                for s in app.store.list_schools().await? {
                    if s.region_id == r {
                        scopes.push((scope_code(RoleScope::School(s.id)), s.short_name.clone()));
                    }
                }
                roles.extend(Role::ALL);
            }
            _ => {}
        }
    }
    if scopes.is_empty() {
        return Err(WebError::Denied(
            "Назначать роли могут администратор школы (в своей школе) и администратор региона."
                .into(),
            false,
        ));
    }
    let mut seen = BTreeSet::new();
    let mut grants = Vec::new();
    for s in rows {
        if !seen.insert(s.grant.id) {
            continue;
        }
        let resource = app.scope_resource(s.grant.scope).await?;
        grants.push(GrantView {
            id: s.grant.id,
            person: s.person.full_name(),
            role: s.grant.role.title().into(),
            scope: scope_title(&state, s.grant.scope).await?,
            revocable: zhurnal_domain::grants::authorize_grant(
                &user.actor,
                s.grant.role,
                &resource,
            )
            .is_ok()
                && s.person.id != user.person.id,
        });
    }
    roles.sort_by_key(|r| r.code());
    roles.dedup();
    render(RolesPage {
        nav: Some(Nav::for_user(&user)),
        ok: q.0.ok,
        grants,
        scopes,
        roles: roles.into_iter().map(|r| (r.code().to_string(), r.title().to_string())).collect(),
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct GrantForm {
    snils: String,
    role: String,
    scope: String,
    last_name: String,
    first_name: String,
}

/// POST /admin/roles/grant
pub async fn grant(
    State(state): State<AppState>,
    user: CurrentUser,
    Form(f): Form<GrantForm>,
) -> Result<Response, WebError> {
    zhurnal_domain::grants::may_grant_some_role(&user.actor)?;
    let role = Role::from_code(&f.role).ok_or_else(|| bad("Выберите роль из списка."))?;
    let scope = parse_scope(&f.scope)?;
    state
        .app
        .grant_role_by_snils(
            &caller(&user),
            &f.snils,
            Some((&f.last_name, &f.first_name)),
            role,
            scope,
        )
        .await?;
    Ok(back("/admin/roles", &format!("Роль «{}» назначена", role.title())))
}

/// POST /admin/roles/{grant}/revoke
pub async fn revoke(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    state.app.revoke_role(&caller(&user), id).await?;
    Ok(back("/admin/roles", "Роль снята"))
}

pub struct RolloverClassView {
    pub title: String,
    pub moving: usize,
    pub leaving: usize,
    pub ninth: bool,
    pub students: Vec<(i64, String, bool)>,
}

#[derive(Template)]
#[template(path = "admin_rollover.html")]
struct RolloverPage {
    nav: Option<Nav>,
    ok: Option<String>,
    school: SchoolRow,
    year: String,
    new_year: String,
    new_dates: String,
    leave_on: String,
    opens_on: String,
    can_apply: bool,
    promoted: usize,
    graduates: usize,
    leavers: usize,
    classes: Vec<RolloverClassView>,
}

#[derive(Deserialize, Default)]
pub struct RolloverQuery {
    school: Option<i64>,
    ok: Option<String>,
}

fn own_school(user: &CurrentUser, requested: Option<i64>) -> Result<SchoolId, WebError> {
    if let Some(s) = requested {
        return Ok(SchoolId(s));
    }
    user.actor
        .grants
        .iter()
        .find_map(|(r, s)| match (r, s) {
            (Role::SchoolAdmin, RoleScope::School(id)) => Some(*id),
            _ => None,
        })
        .ok_or_else(|| {
            WebError::Denied(
                "Переход на новый учебный год выполняет администратор школы.".into(),
                false,
            )
        })
}

fn leaving_from(body: &str) -> Result<BTreeSet<PersonId>, WebError> {
    let mut out = BTreeSet::new();
    for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
        if k == "leaving" {
            out.insert(PersonId(number(
                &v,
                "Выбывающие после 9 класса",
                "отметьте учеников в списке",
            )?));
        }
    }
    Ok(out)
}

async fn rollover_view(
    state: &AppState,
    user: &CurrentUser,
    school: SchoolId,
    leaving: &BTreeSet<PersonId>,
    ok: Option<String>,
) -> Result<Response, WebError> {
    let app = &state.app;
    let (school, year, plan) = app.rollover_plan(&user.actor, school, leaving).await?;
    let opens = app.rollover_opens_on(&year).await?;
    let mut classes = Vec::new();
    for c in &plan.classes {
        let ninth = c.class.grade == 9;
        let mut students = Vec::new();
        if ninth {
            for s in c.moving.iter().chain(&c.leaving) {
                let p = app.store.get_person(s.student).await?;
                students.push((s.student.0, p.full_name(), leaving.contains(&s.student)));
            }
            students.sort_by(|a, b| a.1.cmp(&b.1));
        }
        classes.push(RolloverClassView {
            title: c.title(),
            moving: c.moving.len(),
            leaving: c.leaving.len(),
            ninth,
            students,
        });
    }
    render(RolloverPage {
        nav: Some(Nav::for_user(user)),
        ok,
        year: year.name.clone(),
        new_year: plan.new_year_name.clone(),
        new_dates: format!(
            "{} — {}",
            plan.new_starts_on.format("%d.%m.%Y"),
            plan.new_ends_on.format("%d.%m.%Y")
        ),
        leave_on: plan.leave_on.format("%d.%m.%Y").to_string(),
        opens_on: opens.format("%d.%m.%Y").to_string(),
        can_apply: app.today() > opens,
        promoted: plan.promoted_students(),
        graduates: plan.graduates(),
        leavers: plan.leavers_after_nine(),
        classes,
        school,
    })
}

/// GET /admin/rollover?school=: the plan (preview).
pub async fn rollover_preview(
    State(state): State<AppState>,
    user: CurrentUser,
    q: Query<RolloverQuery>,
) -> Result<Response, WebError> {
    let school = own_school(&user, q.school)?;
    rollover_view(&state, &user, school, &BTreeSet::new(), q.0.ok).await
}

/// POST /admin/rollover: `school`, `leaving` (9th-graders), and `confirm=yes` to apply;
/// without `confirm` it re-shows the plan with the chosen leavers.
pub async fn rollover_apply(
    State(state): State<AppState>,
    user: CurrentUser,
    body: String,
) -> Result<Response, WebError> {
    let field = |name: &str| {
        url::form_urlencoded::parse(body.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let school = match field("school") {
        Some(s) => own_school(&user, Some(number(&s, "Школа", "неверный номер школы")?))?,
        None => own_school(&user, None)?,
    };
    let leaving = leaving_from(&body)?;
    if field("confirm").as_deref() != Some("yes") {
        return rollover_view(&state, &user, school, &leaving, None).await;
    }
    let year = state.app.apply_rollover(&caller(&user), school, &leaving).await?;
    let _: AcademicYearId = year;
    Ok(back(
        &format!("/admin/schools/{school}"),
        "Переход на новый учебный год выполнен, прошлый год в архиве",
    ))
}
