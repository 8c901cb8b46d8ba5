//! Дневник (week, marks by subject, feed of what is new) and the class teacher's summary:
//! pages and the JSON API under `/api/v1/diary`. Every handler goes through `zhurnal_app`,
//! which authorizes with the domain policy before it reads personal data.
//!
//! JSON endpoints (same policy as the pages; a refusal is `403 application/problem+json`):
//! - `GET /api/v1/diary/{student}/week?date=YYYY-MM-DD` → [`DiaryWeek`]: `student`
//!   `{id, name, class, school, visible_until}`, `monday`, `sunday`, `previous_week`,
//!   `next_week`, `days[] {date, lessons[] {number, subject, teacher, substitution, room, topic,
//!   homework, attachments[] {id, file_name, content_type, size_bytes, url}, marks[] {date,
//!   value, work_type, weight, comment}, attendance {code, abbreviation, title}?}}`,
//!   `announcements[] {id, sender, body, created_at, classes[], status}`.
//! - `GET /api/v1/diary/{student}/marks?period=ID&target=2..5` → [`DiaryMarks`]: `periods[]`,
//!   `period`, `rule`, `subjects[] {subject, marks[], explanation {formula, weighted_sum,
//!   total_weight, average, mark_count, suggested, rule}, average, period_mark, suggested,
//!   target, plan[] {count, value, weight, work_types, resulting_average, text}}`.
//! - `GET /api/v1/diary/{student}/feed` → [`DiaryFeed`] (and remembers the visit).
//!
//! `{student}` is the student's public id (UUID), never the internal number.

use askama::Template;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use serde::Deserialize;
use zhurnal_app::diary::{ClassSummary, ContactRow, DiaryAccess, DiaryFeed, DiaryMarks, DiaryWeek};
use zhurnal_domain::{ClassId, PeriodId};
use zhurnal_store::NewAudit;

use crate::pages::{Nav, russian_date};
use crate::session::CurrentUser;
use crate::{AppState, WebError, html_headers};

fn render(t: impl Template) -> Result<Response, WebError> {
    Ok((StatusCode::OK, html_headers(), t.render()?).into_response())
}

fn base_audit(user: &CurrentUser) -> NewAudit {
    user.audit_context().event(0, "", "ok").actor(user.person.id.0, user.audit_role())
}

/// `?week=` / `?date=`: any day of the wanted week.
#[derive(Deserialize)]
pub struct WeekQuery {
    week: Option<String>,
    date: Option<String>,
}

fn parse_date(raw: Option<&str>, api: bool) -> Result<Option<NaiveDate>, WebError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| {
            WebError::BadRequest(
                format!(
                    "дата «{s}» не распознана: укажите её в виде ГГГГ-ММ-ДД, например 2026-11-23"
                ),
                api,
            )
        }),
    }
}

#[derive(Deserialize)]
pub struct MarksQuery {
    period: Option<String>,
    target: Option<String>,
}

fn parse_marks_query(
    q: &MarksQuery,
    api: bool,
) -> Result<(Option<PeriodId>, Option<u8>), WebError> {
    let period = match q.period.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(PeriodId(s.parse().map_err(|_| {
            WebError::BadRequest(
                format!("период «{s}» не распознан: выберите период из списка"),
                api,
            )
        })?)),
    };
    let target = match q.target.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse::<u8>().ok().filter(|t| (2..=5).contains(t)).ok_or_else(|| {
            WebError::BadRequest(format!("цель «{s}» не подходит: укажите отметку от 2 до 5"), api)
        })?),
    };
    Ok((period, target))
}

/// The parent's children for the picker: (public id, "first name (class)", current).
/// A parent of one child is looking at that child's diary, and the access check has just read
/// all the picker shows (the same enrolment `list_children` picks), so only a parent of several
/// children costs a statement; the children themselves come from the session's relations.
async fn child_picker(
    state: &AppState,
    user: &CurrentUser,
    access: &DiaryAccess,
) -> Result<Vec<(String, String, bool)>, WebError> {
    if !user.actor.is_parent() {
        return Ok(Vec::new());
    }
    let label = |first_name: &str, class: Option<&str>| match class {
        Some(class) => format!("{first_name} ({class})"),
        None => first_name.to_string(),
    };
    if let [only] = user.actor.children.as_slice()
        && only.child == access.student.id
    {
        let student = &access.student;
        let name = label(&student.first_name, Some(&access.class.name()));
        return Ok(vec![(student.uid.clone(), name, true)]);
    }
    Ok(state
        .app
        .store
        .list_children(user.person.id)
        .await?
        .into_iter()
        .map(|c| {
            let name = label(&c.person.first_name, c.class_name.as_deref());
            (c.person.uid.clone(), name, c.person.uid == access.student.uid)
        })
        .collect())
}

fn size_label(bytes: i64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} МБ", bytes as f64 / (1024.0 * 1024.0)).replace('.', ",")
    } else {
        format!("{} КБ", (bytes + 1023) / 1024)
    }
}

fn instant_label(offset_hours: i32, micros: i64) -> String {
    let offset = chrono::FixedOffset::east_opt(offset_hours * 3600)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset is valid"));
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|t| t.with_timezone(&offset).format("%d.%m.%Y %H:%M").to_string())
        .unwrap_or_default()
}

#[derive(Template)]
#[template(path = "diary.html")]
struct WeekPage {
    nav: Option<Nav>,
    week: DiaryWeek,
    children: Vec<(String, String, bool)>,
    base: String,
    uid: String,
    week_title: String,
    notice: Option<String>,
    offset_hours: i32,
}

impl WeekPage {
    fn day_title(&self, d: &NaiveDate) -> String {
        russian_date(*d)
    }
    fn size(&self, bytes: &i64) -> String {
        size_label(*bytes)
    }
    fn at(&self, micros: &i64) -> String {
        instant_label(self.offset_hours, *micros)
    }
}

/// A student sees their own diary; a parent is sent to their first child's.
pub async fn own_diary(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(q): Query<WeekQuery>,
) -> Result<Response, WebError> {
    if user.actor.is_student() {
        let uid = user.person.uid.clone();
        return week_page(&state, &user, &uid, q).await;
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
    Query(q): Query<WeekQuery>,
) -> Result<Response, WebError> {
    week_page(&state, &user, &uid, q).await
}

async fn week_page(
    state: &AppState,
    user: &CurrentUser,
    uid: &str,
    q: WeekQuery,
) -> Result<Response, WebError> {
    let date = parse_date(q.week.as_deref().or(q.date.as_deref()), false)?;
    let access = state.app.diary_access(&user.actor, uid).await?;
    let base_audit = base_audit(user);
    let week = async { Ok::<_, WebError>(state.app.diary_week(&access, date, &base_audit).await?) };
    let (week, children) = tokio::try_join!(week, child_picker(state, user, &access))?;
    let base = if access.on_behalf { format!("/diary/{uid}") } else { "/diary".to_string() };
    render(WeekPage {
        nav: Some(Nav::for_user(user)),
        children,
        base,
        uid: uid.to_string(),
        offset_hours: state.app.rules.utc_offset_hours,
        week_title: format!("{} — {}", russian_date(week.monday), russian_date(week.sunday)),
        notice: access.visible_until.map(|d| {
            format!("Ученик выбыл {}: данные после этой даты недоступны.", d.format("%d.%m.%Y"))
        }),
        week,
    })
}

#[derive(Template)]
#[template(path = "diary_marks.html")]
struct MarksPage {
    nav: Option<Nav>,
    marks: DiaryMarks,
    children: Vec<(String, String, bool)>,
    uid: String,
    period_id: i64,
    target: u8,
    targets: Vec<u8>,
    min_marks: usize,
}

pub async fn marks_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
    Query(q): Query<MarksQuery>,
) -> Result<Response, WebError> {
    let (period, target) = parse_marks_query(&q, false)?;
    let access = state.app.diary_access(&user.actor, &uid).await?;
    let marks = state.app.diary_marks(&access, period, target, &base_audit(&user)).await?;
    let children = child_picker(&state, &user, &access).await?;
    render(MarksPage {
        nav: Some(Nav::for_user(&user)),
        period_id: marks.period.as_ref().map_or(0, |p| p.id),
        target: target.unwrap_or(5),
        targets: vec![5, 4, 3],
        min_marks: state.app.rules.rounding.min_marks,
        marks,
        children,
        uid,
    })
}

#[derive(Template)]
#[template(path = "diary_feed.html")]
struct FeedPage {
    nav: Option<Nav>,
    feed: DiaryFeed,
    children: Vec<(String, String, bool)>,
    uid: String,
    since: String,
    offset_hours: i32,
}

impl FeedPage {
    fn day_title(&self, d: &NaiveDate) -> String {
        russian_date(*d)
    }
    fn at(&self, micros: &i64) -> String {
        instant_label(self.offset_hours, *micros)
    }
}

pub async fn feed_page(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    let access = state.app.diary_access(&user.actor, &uid).await?;
    let feed = state.app.diary_feed(user.person.id, &access, &base_audit(&user)).await?;
    let children = child_picker(&state, &user, &access).await?;
    render(FeedPage {
        nav: Some(Nav::for_user(&user)),
        since: feed.since.map_or_else(
            || "за последнюю неделю".into(),
            |s| format!("с {}", instant_label(state.app.rules.utc_offset_hours, s)),
        ),
        offset_hours: state.app.rules.utc_offset_hours,
        feed,
        children,
        uid,
    })
}

/// `GET /api/v1/diary/{student}/week?date=YYYY-MM-DD`
#[utoipa::path(
    get,
    path = "/api/v1/diary/{student}/week",
    tag = "diary",
    params(("student" = String, Path, description = "Public id (uid) of the student"), ("date" = Option<String>, Query, description = "Any day of the week, YYYY-MM-DD (default: today)")),
    responses((status = 200, description = "The week: lessons, topics, homework with files, marks, attendance"), (status = 403, description = "Not your child, class or school", body = crate::journal_api::Problem))
)]
pub async fn api_week(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
    Query(q): Query<WeekQuery>,
) -> Result<Json<DiaryWeek>, WebError> {
    let api = |e| WebError::from_app(e, true);
    let date = parse_date(q.date.as_deref().or(q.week.as_deref()), true)?;
    let access = state.app.diary_access(&user.actor, &uid).await.map_err(api)?;
    Ok(Json(state.app.diary_week(&access, date, &base_audit(&user)).await.map_err(api)?))
}

/// `GET /api/v1/diary/{student}/marks?period=ID&target=5`
#[utoipa::path(
    get,
    path = "/api/v1/diary/{student}/marks",
    tag = "diary",
    params(("student" = String, Path, description = "Public id (uid) of the student"), ("period" = Option<i64>, Query, description = "Period id (default: the current one)"), ("target" = Option<String>, Query, description = "Target average for the planner, e.g. 4.5")),
    responses((status = 200, description = "Marks by subject with weighted averages, their formula, period marks and the planner"), (status = 403, description = "Not your child, class or school", body = crate::journal_api::Problem))
)]
pub async fn api_marks(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
    Query(q): Query<MarksQuery>,
) -> Result<Json<DiaryMarks>, WebError> {
    let api = |e| WebError::from_app(e, true);
    let (period, target) = parse_marks_query(&q, true)?;
    let access = state.app.diary_access(&user.actor, &uid).await.map_err(api)?;
    Ok(Json(state.app.diary_marks(&access, period, target, &base_audit(&user)).await.map_err(api)?))
}

/// `GET /api/v1/diary/{student}/feed`
#[utoipa::path(
    get,
    path = "/api/v1/diary/{student}/feed",
    tag = "diary",
    params(("student" = String, Path, description = "Public id (uid) of the student")),
    responses((status = 200, description = "New marks and homework since the viewer's last visit"), (status = 403, description = "Not your child, class or school", body = crate::journal_api::Problem))
)]
pub async fn api_feed(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
) -> Result<Json<DiaryFeed>, WebError> {
    let api = |e| WebError::from_app(e, true);
    let access = state.app.diary_access(&user.actor, &uid).await.map_err(api)?;
    Ok(Json(state.app.diary_feed(user.person.id, &access, &base_audit(&user)).await.map_err(api)?))
}

#[derive(Template)]
#[template(path = "diary_summary.html")]
struct SummaryPage {
    nav: Option<Nav>,
    summary: ClassSummary,
    contacts: Vec<ContactRow>,
    period_title: String,
}

/// `GET /classes/{class}/summary`: the class teacher's (or school admin's) summary with the
/// parents' contacts; both views are audited.
pub async fn class_summary(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<i64>,
) -> Result<Response, WebError> {
    let base = base_audit(&user);
    let summary = state.app.class_summary(&user.actor, ClassId(id), &base).await?;
    let contacts = state.app.class_contacts(&user.actor, ClassId(id), &base).await?;
    let period_title = match &summary.period {
        Some(p) => format!(
            "{}: {} — {}",
            p.name,
            summary.from.format("%d.%m.%Y"),
            summary.to.format("%d.%m.%Y")
        ),
        None => format!("{} — {}", summary.from.format("%d.%m.%Y"), summary.to.format("%d.%m.%Y")),
    };
    render(SummaryPage { nav: Some(Nav::for_user(&user)), summary, contacts, period_title })
}

/// The diary's part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(api_week, api_marks, api_feed))]
pub struct DiaryApi;
