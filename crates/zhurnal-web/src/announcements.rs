//! Объявления: the page where teachers write to their classes, recipients read, and the school
//! admin reviews held sends and recalls; plus `/api/v1/announcements`.
//!
//! JSON endpoints:
//! - `GET /api/v1/announcements` → `{received: [Announcement], sent: [Announcement],
//!   review: [Announcement]}` where `Announcement` is `{id, sender, body, created_at, classes[],
//!   status}` (`status`: `delivered`, `held`, `recalled`); `review` is filled for a school admin.
//! - `POST /api/v1/announcements` with `X-CSRF-Token` and `{"classes": [class id…], "text":
//!   "…"}` → `201 {announcement}`; `422 problem+json` with a Russian `detail` when refused
//!   (link outside the allow-list, rate limit, empty text), `403` for a class not one's own.

use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use zhurnal_app::announce::Moderation;
use zhurnal_app::diary::AnnouncementView;
use zhurnal_domain::{ClassId, Role, RoleScope, SchoolId};
use zhurnal_store::{AnnouncementRow, NewAudit};

use crate::pages::Nav;
use crate::session::CurrentUser;
use crate::{AppState, WebError, html_headers};

fn base_audit(user: &CurrentUser) -> NewAudit {
    user.audit_context().event(0, "", "ok").actor(user.person.id.0, user.audit_role())
}

/// Classes the user may write to: where they teach or lead (the policy decides again on send).
async fn own_classes(
    state: &AppState,
    user: &CurrentUser,
) -> Result<Vec<(ClassId, String)>, WebError> {
    let mut ids: Vec<ClassId> = user.actor.class_teacher_of.clone();
    ids.extend(user.actor.teaching.iter().map(|t| t.class));
    ids.sort();
    ids.dedup();
    let mut out = Vec::new();
    for id in ids {
        let c = state.app.store.get_class(id).await?;
        out.push((c.id, c.name()));
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

fn admin_schools(user: &CurrentUser) -> Vec<SchoolId> {
    user.actor
        .grants
        .iter()
        .filter_map(|(r, s)| match (r, s) {
            (Role::SchoolAdmin, RoleScope::School(id)) => Some(*id),
            _ => None,
        })
        .collect()
}

struct Item {
    view: AnnouncementView,
    at: String,
    status_title: &'static str,
    held: bool,
    recallable: bool,
}

fn item(state: &AppState, a: &AnnouncementRow) -> Item {
    let offset = chrono::FixedOffset::east_opt(state.app.rules.utc_offset_hours * 3600)
        .unwrap_or_else(|| chrono::FixedOffset::east_opt(0).expect("zero offset is valid"));
    Item {
        view: a.into(),
        at: chrono::DateTime::from_timestamp_micros(a.created_at)
            .map(|t| t.with_timezone(&offset).format("%d.%m.%Y %H:%M").to_string())
            .unwrap_or_default(),
        status_title: a.status.title(),
        held: a.status == zhurnal_domain::AnnouncementStatus::Held,
        recallable: a.status != zhurnal_domain::AnnouncementStatus::Recalled,
    }
}

#[derive(Template)]
#[template(path = "announce.html")]
struct AnnouncePage {
    nav: Option<Nav>,
    classes: Vec<(ClassId, String, bool)>,
    text: String,
    error: Option<String>,
    done: Option<String>,
    received: Vec<Item>,
    sent: Vec<Item>,
    review: Vec<Item>,
    allowed: String,
    max_per_hour: u32,
    /// Students and parents read what they received; staff do not get a "received" list.
    show_received: bool,
}

async fn page(
    state: &AppState,
    user: &CurrentUser,
    chosen: &[ClassId],
    text: String,
    error: Option<String>,
    done: Option<String>,
) -> Result<AnnouncePage, WebError> {
    let app = &state.app;
    let classes = own_classes(state, user)
        .await?
        .into_iter()
        .map(|(id, name)| (id, name, chosen.contains(&id)))
        .collect::<Vec<_>>();
    let received =
        app.received_announcements(&user.actor).await?.iter().map(|a| item(state, a)).collect();
    let sent = if classes.is_empty() {
        Vec::new()
    } else {
        app.store
            .list_sender_announcements(user.person.id, 50)
            .await?
            .iter()
            .map(|a| item(state, a))
            .collect()
    };
    let mut review = Vec::new();
    for s in admin_schools(user) {
        review
            .extend(app.school_announcements(&user.actor, s).await?.iter().map(|a| item(state, a)));
    }
    if classes.is_empty()
        && review.is_empty()
        && !user.actor.is_parent()
        && !user.actor.is_student()
    {
        return Err(WebError::Denied(
            "Объявления доступны учителям, ученикам, родителям и администрации школы.".into(),
            false,
        ));
    }
    let rules = &app.rules.announcements;
    Ok(AnnouncePage {
        nav: Some(Nav::for_user(user)),
        classes,
        text,
        error,
        done,
        received,
        sent,
        review,
        allowed: rules.allowed_domains.join(", "),
        max_per_hour: rules.max_per_hour,
        show_received: user.actor.is_parent() || user.actor.is_student(),
    })
}

fn html(status: StatusCode, t: &AnnouncePage) -> Result<Response, WebError> {
    Ok((status, html_headers(), t.render()?).into_response())
}

/// `GET /announcements`
pub async fn list(State(state): State<AppState>, user: CurrentUser) -> Result<Response, WebError> {
    let p = page(&state, &user, &[], String::new(), None, None).await?;
    html(StatusCode::OK, &p)
}

/// `POST /announcements` (form: `class` repeated, `text`, `csrf`).
pub async fn post_form(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> Result<Response, WebError> {
    let mut classes = Vec::new();
    let mut text = String::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "class" => match v.trim().parse::<i64>() {
                Ok(id) => classes.push(ClassId(id)),
                Err(_) => {
                    let p = page(
                        &state,
                        &user,
                        &classes,
                        text,
                        Some(format!("класс «{v}» не распознан: выберите класс из списка")),
                        None,
                    )
                    .await?;
                    return html(StatusCode::UNPROCESSABLE_ENTITY, &p);
                }
            },
            "text" => text = v.into_owned(),
            _ => {}
        }
    }
    match state.app.post_announcement(&user.actor, &classes, &text, &base_audit(&user)).await {
        Ok(a) => {
            let done = match a.status {
                zhurnal_domain::AnnouncementStatus::Held => {
                    "Объявление задержано до проверки администратором школы: массовые рассылки в ночные часы не доставляются сразу."
                }
                _ => "Объявление отправлено.",
            };
            let p = page(&state, &user, &[], String::new(), None, Some(done.into())).await?;
            html(StatusCode::OK, &p)
        }
        Err(zhurnal_app::AppError::Invalid(msg)) => {
            let p = page(&state, &user, &classes, text, Some(msg), None).await?;
            html(StatusCode::UNPROCESSABLE_ENTITY, &p)
        }
        // The text is kept so the teacher can send it when the hour has passed.
        Err(zhurnal_app::AppError::RateLimited(msg)) => {
            let p = page(&state, &user, &classes, text, Some(msg), None).await?;
            html(StatusCode::TOO_MANY_REQUESTS, &p)
        }
        Err(e) => Err(e.into()),
    }
}

async fn moderate(
    state: &AppState,
    user: &CurrentUser,
    uid: &str,
    op: Moderation,
) -> Result<Response, WebError> {
    state.app.moderate_announcement(&user.actor, uid, op, &base_audit(user)).await?;
    Ok(Redirect::to("/announcements").into_response())
}

/// `POST /announcements/{id}/release` (school admin).
pub async fn release(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    moderate(&state, &user, &uid, Moderation::Release).await
}

/// `POST /announcements/{id}/recall` (school admin).
pub async fn recall(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(uid): Path<String>,
) -> Result<Response, WebError> {
    moderate(&state, &user, &uid, Moderation::Recall).await
}

#[derive(Serialize)]
pub struct AnnouncementList {
    received: Vec<AnnouncementView>,
    sent: Vec<AnnouncementView>,
    review: Vec<AnnouncementView>,
}

/// `GET /api/v1/announcements`
#[utoipa::path(
    get,
    path = "/api/v1/announcements",
    tag = "announcements",
    responses((status = 200, description = "Received, sent and (for the school admin) held announcements"))
)]
pub async fn api_list(
    State(state): State<AppState>,
    user: CurrentUser,
) -> Result<Json<AnnouncementList>, WebError> {
    let api = |e| WebError::from_app(e, true);
    let app = &state.app;
    let received = app
        .received_announcements(&user.actor)
        .await
        .map_err(api)?
        .iter()
        .map(Into::into)
        .collect();
    let sent = app
        .store
        .list_sender_announcements(user.person.id, 50)
        .await
        .map_err(|e| api(e.into()))?
        .iter()
        .map(Into::into)
        .collect();
    let mut review = Vec::new();
    for s in admin_schools(&user) {
        review.extend(
            app.school_announcements(&user.actor, s)
                .await
                .map_err(api)?
                .iter()
                .map(AnnouncementView::from),
        );
    }
    Ok(Json(AnnouncementList { received, sent, review }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostAnnouncement {
    classes: Vec<i64>,
    text: String,
}

/// `POST /api/v1/announcements`
#[utoipa::path(
    post,
    path = "/api/v1/announcements",
    tag = "announcements",
    params(("X-CSRF-Token" = String, Header, description = "CSRF token")),
    request_body(content = String, description = "{\"classes\": [class ids], \"text\": \"...\"}", content_type = "application/json"),
    responses(
        (status = 201, description = "Delivered, or held for review when sent in bulk at night"),
        (status = 403, description = "Not a class you teach or lead", body = crate::journal_api::Problem),
        (status = 422, description = "Rate limit, link outside the allow-list or empty text", body = crate::journal_api::Problem)
    )
)]
pub async fn api_post(
    State(state): State<AppState>,
    user: CurrentUser,
    body: Bytes,
) -> Result<Response, WebError> {
    let req: PostAnnouncement = serde_json::from_slice(&body).map_err(|e| {
        WebError::BadRequest(
            format!(
                "тело запроса не разобрано ({e}): ожидается {{\"classes\": [номера классов], \"text\": \"текст\"}}"
            ),
            true,
        )
    })?;
    let classes: Vec<ClassId> = req.classes.into_iter().map(ClassId).collect();
    let a = state
        .app
        .post_announcement(&user.actor, &classes, &req.text, &base_audit(&user))
        .await
        .map_err(|e| WebError::from_app(e, true))?;
    Ok((StatusCode::CREATED, Json(AnnouncementView::from(&a))).into_response())
}

/// The announcements' part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(api_list, api_post))]
pub struct AnnouncementsApi;
