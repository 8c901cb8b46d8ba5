//! The class journal's JSON API under `/api/v1` (session cookie; writes also need
//! `X-CSRF-Token`). Each handler is one use case of `zhurnal_app::journal`, which authorizes
//! with the domain policy; this module only parses input and shapes output.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};
use zhurnal_app::journal::{Caller, JournalView, MarkEntry};
use zhurnal_domain::journal::MAX_ATTACHMENT_BYTES;
use zhurnal_domain::{AssignmentId, AttendanceKind, MarkId, PeriodId, PeriodMarkValue, WorkTypeId};
use zhurnal_store::journal::{AttachmentRow, FinalMarkKind, LessonKey};
use zhurnal_store::{LessonRow, MarkRow};

use crate::session::CurrentUser;
use crate::{AppState, WebError};

/// The journal's part of the OpenAPI document (merged in `openapi.rs`).
#[derive(OpenApi)]
#[openapi(
    paths(
        journal_grid,
        create_mark,
        update_mark,
        delete_mark,
        set_attendance,
        update_lesson,
        upload_attachment,
        download_attachment,
        set_final_mark,
        set_period_state
    ),
    components(schemas(
        Grid,
        GridAssignment,
        GridPeriod,
        GridWorkType,
        GridLesson,
        GridAttachment,
        GridStudent,
        GridCell,
        GridMark,
        GridHistory,
        MarkInput,
        MarkChangeInput,
        ReasonInput,
        AttendanceInput,
        LessonInput,
        FinalMarkInput,
        PeriodStateInput,
        MarkOut,
        AttendanceOut,
        LessonOut,
        FinalMarkOut,
        Problem
    )),
    tags((name = "journal", description = "Классный журнал: отметки, посещаемость, темы, домашние задания, итоговые отметки"))
)]
pub struct JournalApi;

pub(crate) fn caller(user: &CurrentUser) -> Caller<'_> {
    Caller { actor: &user.actor, audit: user.audit_context(), role: user.audit_role() }
}

/// The `Idempotency-Key` header, when sent.
fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(str::to_string)
}

fn api_err(e: zhurnal_app::AppError) -> WebError {
    WebError::from_app(e, true)
}

/// An error as `application/problem+json` (RFC 9457).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// Stable code: `forbidden`, `invalid`, `not_found`, `csrf`, `unauthenticated`, …
    pub code: String,
    /// What was wrong and how to fix it, in Russian.
    pub detail: String,
    pub request_id: String,
}

#[derive(Serialize, ToSchema)]
pub struct GridAssignment {
    pub id: i64,
    pub subject: String,
    pub class_name: String,
    pub group: Option<String>,
    pub teacher: String,
    pub grade: u8,
    /// `five_point` or `pass_fail`.
    pub grading: String,
}

#[derive(Serialize, ToSchema)]
pub struct GridPeriod {
    pub id: i64,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Set when the period is closed (locked for edits).
    pub closed_on: Option<NaiveDate>,
}

#[derive(Serialize, ToSchema)]
pub struct GridWorkType {
    pub id: i64,
    pub code: String,
    pub name: String,
    pub weight: u8,
}

#[derive(Serialize, ToSchema)]
pub struct GridAttachment {
    pub uid: String,
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct GridLesson {
    pub date: NaiveDate,
    pub number: u8,
    /// Absent until something is written for the lesson.
    pub lesson_id: Option<i64>,
    pub topic: Option<String>,
    pub homework: Option<String>,
    /// The lesson is given by a substitute (замена).
    pub substitution: bool,
    pub attachments: Vec<GridAttachment>,
}

#[derive(Serialize, ToSchema)]
pub struct GridMark {
    pub id: i64,
    /// Code: `1`–`5`, `pass`, `fail`.
    pub value: String,
    /// As shown: `5`, `зач`, `незач`.
    pub display: String,
    pub work_type_id: i64,
    pub work_type: String,
    pub weight: u8,
    pub comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GridHistory {
    pub mark_id: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub by: String,
    pub old: Option<String>,
    pub new: Option<String>,
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct GridCell {
    pub date: NaiveDate,
    pub number: u8,
    pub marks: Vec<GridMark>,
    /// `absent`, `ill`, `valid_reason` or `late`.
    pub attendance: Option<String>,
    /// Н, Б, УП, ОП.
    pub attendance_short: Option<String>,
    pub history: Vec<GridHistory>,
}

#[derive(Serialize, ToSchema)]
pub struct GridStudent {
    /// The student's public id.
    pub id: String,
    pub name: String,
    /// Weighted average of the period's marks.
    pub average: Option<f64>,
    /// «(5×2 + 3×1) / (2 + 1)».
    pub formula: String,
    /// Suggested period mark by the configured rounding rule.
    pub suggested: Option<u8>,
    pub period_mark: Option<String>,
    pub annual_mark: Option<String>,
    pub final_mark: Option<String>,
    pub suggested_annual: Option<u8>,
    /// One cell per lesson, in the order of `lessons`.
    pub cells: Vec<GridCell>,
}

/// The class journal of an assignment for a period.
#[derive(Serialize, ToSchema)]
pub struct Grid {
    pub assignment: GridAssignment,
    pub period: GridPeriod,
    pub periods: Vec<GridPeriod>,
    pub can_edit: bool,
    pub can_set_period_marks: bool,
    pub can_reopen: bool,
    /// The rounding rule behind the suggested marks, in words.
    pub rounding_rule: String,
    pub work_types: Vec<GridWorkType>,
    pub lessons: Vec<GridLesson>,
    pub students: Vec<GridStudent>,
}

fn period_out(p: &zhurnal_domain::Period) -> GridPeriod {
    GridPeriod {
        id: p.id.0,
        name: p.name(),
        starts_on: p.starts_on,
        ends_on: p.ends_on,
        closed_on: p.closed_on,
    }
}

fn final_display(v: &Option<String>) -> Option<String> {
    v.as_deref().map(|v| PeriodMarkValue::parse(v).map(|p| p.display()).unwrap_or(v.to_string()))
}

fn attachment_out(a: &AttachmentRow) -> GridAttachment {
    GridAttachment {
        uid: a.uid.clone(),
        name: a.file_name.clone(),
        content_type: a.content_type.clone(),
        size_bytes: a.size_bytes,
        url: format!("/api/v1/attachments/{}", a.uid),
    }
}

pub(crate) fn grid_from(v: &JournalView) -> Grid {
    let a = &v.ctx.assignment;
    let wt_name = |id: WorkTypeId| {
        v.ctx.work_types.iter().find(|w| w.id == id).map(|w| w.name.clone()).unwrap_or_default()
    };
    let mark_out = |m: &MarkRow| GridMark {
        id: m.id.0,
        value: m.value.code(),
        display: m.value.display(),
        work_type_id: m.work_type_id.0,
        work_type: wt_name(m.work_type_id),
        weight: m.weight,
        comment: m.comment.clone(),
    };
    Grid {
        assignment: GridAssignment {
            id: a.assignment.id.0,
            subject: a.assignment.subject_name.clone(),
            class_name: a.assignment.class_name.clone(),
            group: a.group_name.clone(),
            teacher: a.assignment.teacher_name.clone(),
            grade: a.grade,
            grading: a.grading.code().to_string(),
        },
        period: period_out(&v.period),
        periods: v.ctx.periods.iter().map(period_out).collect(),
        can_edit: v.can_edit,
        can_set_period_marks: v.can_set_period_marks,
        can_reopen: v.can_reopen,
        rounding_rule: v.rule.clone(),
        work_types: v
            .ctx
            .work_types
            .iter()
            .map(|w| GridWorkType {
                id: w.id.0,
                code: w.code.clone(),
                name: w.name.clone(),
                weight: w.weight,
            })
            .collect(),
        lessons: v
            .lessons
            .iter()
            .map(|l| GridLesson {
                date: l.date,
                number: l.lesson_number,
                lesson_id: l.lesson_id.map(|i| i.0),
                topic: l.topic.clone(),
                homework: l.homework.clone(),
                substitution: l.substitution,
                attachments: v
                    .attachments
                    .iter()
                    .filter(|f| Some(f.lesson_id) == l.lesson_id)
                    .map(attachment_out)
                    .collect(),
            })
            .collect(),
        students: v
            .students
            .iter()
            .map(|s| GridStudent {
                id: s.student.person.uid.clone(),
                name: s.student.person.short_name(),
                average: s.average.average.map(|a| (a * 100.0).round() / 100.0),
                formula: s.average.formula.clone(),
                suggested: s.average.suggested,
                period_mark: final_display(&s.period_mark),
                annual_mark: final_display(&s.annual_mark),
                final_mark: final_display(&s.final_mark),
                suggested_annual: s.suggested_annual,
                cells: s
                    .cells
                    .iter()
                    .zip(&v.lessons)
                    .map(|(c, l)| GridCell {
                        date: l.date,
                        number: l.lesson_number,
                        marks: c.marks.iter().map(mark_out).collect(),
                        attendance: c.attendance.map(|k| k.code().to_string()),
                        attendance_short: c.attendance.map(|k| k.abbreviation().to_string()),
                        history: c
                            .history
                            .iter()
                            .map(|h| GridHistory {
                                mark_id: h.mark_id.0,
                                at: chrono::DateTime::from_timestamp_micros(h.changed_at)
                                    .map(|t| t.to_rfc3339())
                                    .unwrap_or_default(),
                                by: h.changed_by_name.clone(),
                                old: h.old_value.map(|v| v.display()),
                                new: h.new_value.map(|v| v.display()),
                                reason: h.reason.clone(),
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct PeriodQuery {
    /// The period's id; by default the period containing today.
    pub period: Option<i64>,
}

/// The class journal grid (students × lessons) of an assignment for a period.
#[utoipa::path(
    get,
    path = "/api/v1/journal/{assignment}",
    tag = "journal",
    params(("assignment" = i64, Path, description = "Нагрузка (teaching assignment) id"), PeriodQuery),
    responses(
        (status = 200, description = "The grid", body = Grid),
        (status = 401, description = "No session", body = Problem),
        (status = 403, description = "Not the caller's journal", body = Problem)
    )
)]
pub async fn journal_grid(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(assignment): Path<i64>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<Grid>, WebError> {
    let view = state
        .app
        .journal_view(&caller(&user), AssignmentId(assignment), q.period.map(PeriodId))
        .await
        .map_err(api_err)?;
    Ok(Json(grid_from(&view)))
}

/// A new mark in a lesson cell.
#[derive(Deserialize, ToSchema)]
pub struct MarkInput {
    pub date: NaiveDate,
    pub lesson_number: u8,
    /// The student's public id.
    pub student: String,
    /// `1`–`5`, `зач`/`pass`, `незач`/`fail`.
    pub value: String,
    pub work_type_id: i64,
    pub comment: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct MarkOut {
    pub id: i64,
    pub lesson_id: i64,
    pub student_id: i64,
    pub value: String,
    pub display: String,
    pub work_type_id: i64,
    pub weight: u8,
    pub comment: Option<String>,
    pub updated_at: i64,
}

fn mark_json(m: &MarkRow) -> MarkOut {
    MarkOut {
        id: m.id.0,
        lesson_id: m.lesson_id.0,
        student_id: m.student_id.0,
        value: m.value.code(),
        display: m.value.display(),
        work_type_id: m.work_type_id.0,
        weight: m.weight,
        comment: m.comment.clone(),
        updated_at: m.updated_at,
    }
}

/// Puts a mark (another mark in the same cell is allowed: 5/4).
#[utoipa::path(
    post,
    path = "/api/v1/journal/{assignment}/marks",
    tag = "journal",
    params(
        ("assignment" = i64, Path, description = "Нагрузка id"),
        ("X-CSRF-Token" = String, Header, description = "The session's CSRF token"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client key of this entry: a retried request returns the first mark instead of creating another")
    ),
    request_body = MarkInput,
    responses(
        (status = 201, description = "Created", body = MarkOut),
        (status = 403, description = "Not the caller's assignment", body = Problem),
        (status = 422, description = "Bad input or a closed period", body = Problem)
    )
)]
pub async fn create_mark(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path(assignment): Path<i64>,
    Json(input): Json<MarkInput>,
) -> Result<Response, WebError> {
    let entry = MarkEntry {
        lesson: LessonKey {
            assignment: AssignmentId(assignment),
            date: input.date,
            lesson_number: input.lesson_number,
        },
        student: input.student,
        value: input.value,
        work_type: WorkTypeId(input.work_type_id),
        comment: input.comment,
        client_key: idempotency_key(&headers),
    };
    let mark = state.app.journal_create_mark(&caller(&user), &entry).await.map_err(api_err)?;
    Ok((StatusCode::CREATED, Json(mark_json(&mark))).into_response())
}

/// A correction of a mark: the reason is required and kept in the history.
#[derive(Deserialize, ToSchema)]
pub struct MarkChangeInput {
    pub value: String,
    pub work_type_id: i64,
    pub comment: Option<String>,
    pub reason: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct ReasonInput {
    pub reason: Option<String>,
}

/// Corrects a mark (old → new, who, when and why go to the mark's history).
#[utoipa::path(
    put,
    path = "/api/v1/marks/{mark}",
    tag = "journal",
    params(("mark" = i64, Path, description = "Mark id"), ("X-CSRF-Token" = String, Header, description = "CSRF token")),
    request_body = MarkChangeInput,
    responses(
        (status = 200, description = "Corrected", body = MarkOut),
        (status = 403, description = "Not the caller's journal", body = Problem),
        (status = 422, description = "No reason, bad value or a closed period", body = Problem)
    )
)]
pub async fn update_mark(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(mark): Path<i64>,
    Json(input): Json<MarkChangeInput>,
) -> Result<Json<MarkOut>, WebError> {
    let m = state
        .app
        .journal_update_mark(
            &caller(&user),
            MarkId(mark),
            &input.value,
            WorkTypeId(input.work_type_id),
            input.comment,
            input.reason.as_deref(),
        )
        .await
        .map_err(api_err)?;
    Ok(Json(mark_json(&m)))
}

/// Deletes a mark; the reason is required and kept in the history.
#[utoipa::path(
    delete,
    path = "/api/v1/marks/{mark}",
    tag = "journal",
    params(("mark" = i64, Path, description = "Mark id"), ("X-CSRF-Token" = String, Header, description = "CSRF token")),
    request_body = ReasonInput,
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "Not the caller's journal", body = Problem),
        (status = 422, description = "No reason or a closed period", body = Problem)
    )
)]
pub async fn delete_mark(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(mark): Path<i64>,
    Json(input): Json<ReasonInput>,
) -> Result<StatusCode, WebError> {
    state
        .app
        .journal_delete_mark(&caller(&user), MarkId(mark), input.reason.as_deref())
        .await
        .map_err(api_err)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct AttendanceInput {
    pub date: NaiveDate,
    pub lesson_number: u8,
    pub student: String,
    /// `absent` (Н), `ill` (Б), `valid_reason` (УП), `late` (ОП) or the letters themselves;
    /// null clears the mark.
    pub kind: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AttendanceOut {
    pub kind: Option<String>,
    pub short: Option<String>,
    pub previous: Option<String>,
}

/// Sets or clears a student's attendance mark on a lesson.
#[utoipa::path(
    put,
    path = "/api/v1/journal/{assignment}/attendance",
    tag = "journal",
    params(("assignment" = i64, Path, description = "Нагрузка id"), ("X-CSRF-Token" = String, Header, description = "CSRF token")),
    request_body = AttendanceInput,
    responses(
        (status = 200, description = "Saved", body = AttendanceOut),
        (status = 403, description = "Not the caller's assignment", body = Problem),
        (status = 422, description = "Bad input or a closed period", body = Problem)
    )
)]
pub async fn set_attendance(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(assignment): Path<i64>,
    Json(input): Json<AttendanceInput>,
) -> Result<Json<AttendanceOut>, WebError> {
    let kind = match input.kind.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
        None => None,
        Some(k) => Some(
            AttendanceKind::from_code(k)
                .or_else(|| AttendanceKind::from_abbreviation(k))
                .ok_or_else(|| {
                    WebError::BadRequest(
                        format!(
                            "отметка посещаемости «{k}» не распознана: используйте Н, Б, УП или ОП"
                        ),
                        true,
                    )
                })?,
        ),
    };
    let key = LessonKey {
        assignment: AssignmentId(assignment),
        date: input.date,
        lesson_number: input.lesson_number,
    };
    let previous = state
        .app
        .journal_set_attendance(&caller(&user), key, &input.student, kind)
        .await
        .map_err(api_err)?;
    Ok(Json(AttendanceOut {
        kind: kind.map(|k| k.code().to_string()),
        short: kind.map(|k| k.abbreviation().to_string()),
        previous: previous.map(|k| k.code().to_string()),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct LessonInput {
    pub topic: Option<String>,
    pub homework: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LessonOut {
    pub lesson_id: i64,
    pub date: NaiveDate,
    pub number: u8,
    pub topic: Option<String>,
    pub homework: Option<String>,
}

fn lesson_json(l: &LessonRow) -> LessonOut {
    LessonOut {
        lesson_id: l.id.0,
        date: l.date,
        number: l.lesson_number,
        topic: l.topic.clone(),
        homework: l.homework.clone(),
    }
}

/// Sets the lesson's topic and homework text.
#[utoipa::path(
    put,
    path = "/api/v1/journal/{assignment}/lessons/{date}/{number}",
    tag = "journal",
    params(
        ("assignment" = i64, Path, description = "Нагрузка id"),
        ("date" = String, Path, description = "Lesson date, YYYY-MM-DD"),
        ("number" = u8, Path, description = "Lesson number in the day"),
        ("X-CSRF-Token" = String, Header, description = "CSRF token")
    ),
    request_body = LessonInput,
    responses(
        (status = 200, description = "Saved", body = LessonOut),
        (status = 403, description = "Not the caller's assignment", body = Problem),
        (status = 422, description = "Too long, no such lesson or a closed period", body = Problem)
    )
)]
pub async fn update_lesson(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((assignment, date, number)): Path<(i64, NaiveDate, u8)>,
    Json(input): Json<LessonInput>,
) -> Result<Json<LessonOut>, WebError> {
    let key = LessonKey { assignment: AssignmentId(assignment), date, lesson_number: number };
    let l = state
        .app
        .journal_update_lesson(&caller(&user), key, input.topic, input.homework)
        .await
        .map_err(api_err)?;
    Ok(Json(lesson_json(&l)))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct UploadQuery {
    /// The file's name with its extension (decides the type together with the content).
    pub name: String,
}

/// The largest request body of an upload: one byte over the limit, so the use case (not the
/// framework) reports an oversized file with a clear message.
pub const UPLOAD_BODY_LIMIT: usize = MAX_ATTACHMENT_BYTES + 1;

/// Attaches a homework file (the request body is the file itself). Allowed: PDF, PNG, JPEG,
/// TXT, DOCX, XLSX, PPTX, ODT, ODS, ODP up to 10 MB.
#[utoipa::path(
    post,
    path = "/api/v1/journal/{assignment}/lessons/{date}/{number}/attachments",
    tag = "journal",
    params(
        ("assignment" = i64, Path, description = "Нагрузка id"),
        ("date" = String, Path, description = "Lesson date, YYYY-MM-DD"),
        ("number" = u8, Path, description = "Lesson number in the day"),
        UploadQuery,
        ("X-CSRF-Token" = String, Header, description = "CSRF token"),
        ("Idempotency-Key" = Option<String>, Header, description = "Client key: a retried upload stores the file once")
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses(
        (status = 201, description = "Attached", body = GridAttachment),
        (status = 403, description = "Not the caller's assignment", body = Problem),
        (status = 422, description = "Too large, forbidden type or a closed period", body = Problem)
    )
)]
pub async fn upload_attachment(
    State(state): State<AppState>,
    user: CurrentUser,
    headers: HeaderMap,
    Path((assignment, date, number)): Path<(i64, NaiveDate, u8)>,
    Query(q): Query<UploadQuery>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, WebError> {
    let body = body.map_err(|_| {
        WebError::BadRequest(
            format!(
                "файл «{}» слишком большой: допускается не более {MAX_ATTACHMENT_BYTES} байт (10 МБ)",
                q.name
            ),
            true,
        )
    })?;
    let key = LessonKey { assignment: AssignmentId(assignment), date, lesson_number: number };
    let row = state
        .app
        .journal_upload(
            &caller(&user),
            key,
            &q.name,
            body.to_vec(),
            idempotency_key(&headers).as_deref(),
        )
        .await
        .map_err(api_err)?;
    Ok((StatusCode::CREATED, Json(attachment_out(&row))).into_response())
}

/// Downloads a homework file: for the teacher of the assignment, the class's students and
/// their parents, the class teacher and the school admin.
#[utoipa::path(
    get,
    path = "/api/v1/attachments/{uid}",
    tag = "journal",
    params(("uid" = String, Path, description = "The file's public id")),
    responses(
        (status = 200, description = "The file", content_type = "application/octet-stream"),
        (status = 403, description = "Not the caller's class or child", body = Problem)
    )
)]
pub async fn download_attachment(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    let (row, content) = state.app.journal_download(&caller(&user), &uid).await.map_err(api_err)?;
    let encoded: String = url::form_urlencoded::byte_serialize(row.file_name.as_bytes())
        .collect::<String>()
        .replace('+', "%20");
    let disposition = format!("attachment; filename=\"file\"; filename*=UTF-8''{encoded}");
    Ok((
        [
            (header::CONTENT_TYPE, row.content_type.clone()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        content,
    )
        .into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct FinalMarkInput {
    pub student: String,
    /// `period`, `annual` or `final`.
    pub kind: String,
    /// Required for `period`.
    pub period_id: Option<i64>,
    /// `1`–`5`, `зач`, `незач`, `осв`, `н/а`; null or empty removes the mark.
    pub value: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct FinalMarkOut {
    pub value: Option<String>,
    pub previous: Option<String>,
}

/// Sets or removes a period (четвертная/полугодовая), annual or final mark.
#[utoipa::path(
    put,
    path = "/api/v1/journal/{assignment}/final-marks",
    tag = "journal",
    params(("assignment" = i64, Path, description = "Нагрузка id"), ("X-CSRF-Token" = String, Header, description = "CSRF token")),
    request_body = FinalMarkInput,
    responses(
        (status = 200, description = "Saved", body = FinalMarkOut),
        (status = 403, description = "Not the caller's assignment", body = Problem),
        (status = 422, description = "Bad value or a closed period", body = Problem)
    )
)]
pub async fn set_final_mark(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(assignment): Path<i64>,
    Json(input): Json<FinalMarkInput>,
) -> Result<Json<FinalMarkOut>, WebError> {
    let kind = match (input.kind.as_str(), input.period_id) {
        ("period", Some(p)) => FinalMarkKind::Period(PeriodId(p)),
        ("annual", _) => FinalMarkKind::Annual,
        ("final", _) => FinalMarkKind::Final,
        _ => {
            return Err(WebError::BadRequest(
                "вид отметки: «period» (с period_id), «annual» или «final»".into(),
                true,
            ));
        }
    };
    let previous = state
        .app
        .journal_set_final_mark(
            &caller(&user),
            AssignmentId(assignment),
            &input.student,
            kind,
            input.value.as_deref(),
        )
        .await
        .map_err(api_err)?;
    let value = input
        .value
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| PeriodMarkValue::parse(v).ok())
        .map(|v| v.display());
    Ok(Json(FinalMarkOut { value, previous: final_display(&previous) }))
}

#[derive(Deserialize, ToSchema)]
pub struct PeriodStateInput {
    /// true reopens a closed period, false closes it today.
    pub open: bool,
    pub reason: Option<String>,
}

/// Reopens or closes a period (school admin; audited with the reason).
#[utoipa::path(
    put,
    path = "/api/v1/periods/{period}",
    tag = "journal",
    params(("period" = i64, Path, description = "Period id"), ("X-CSRF-Token" = String, Header, description = "CSRF token")),
    request_body = PeriodStateInput,
    responses(
        (status = 200, description = "Saved", body = GridPeriod),
        (status = 403, description = "Not a school admin of the period's school", body = Problem),
        (status = 422, description = "No reason", body = Problem)
    )
)]
pub async fn set_period_state(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(period): Path<i64>,
    Json(input): Json<PeriodStateInput>,
) -> Result<Json<GridPeriod>, WebError> {
    let p = state
        .app
        .set_period_open(&caller(&user), PeriodId(period), input.open, input.reason.as_deref())
        .await
        .map_err(api_err)?;
    Ok(Json(period_out(&p)))
}
