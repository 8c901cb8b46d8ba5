//! JSON endpoints. Reads go through the same policy as pages; writes need `X-CSRF-Token`.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use crate::session::CurrentUser;
use crate::{AppState, WebError};

pub async fn healthz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, WebError> {
    state.app.store.ping().await?;
    Ok(Json(serde_json::json!({ "status": "ok", "database": state.app.store.backend().name() })))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeChild {
    id: String,
    name: String,
    class: Option<String>,
    departed_on: Option<chrono::NaiveDate>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    id: String,
    name: String,
    roles: Vec<String>,
    children: Vec<MeChild>,
    csrf_token: String,
}

/// The signed-in person, their roles and children, and the CSRF token for writes.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "me",
    responses(
        (status = 200, description = "The current user", body = Me),
        (status = 401, description = "No session")
    )
)]
pub async fn me(State(state): State<AppState>, user: CurrentUser) -> Result<Json<Me>, WebError> {
    let children = state
        .app
        .store
        .list_children(user.person.id)
        .await
        .map_err(|e| WebError::from_app(e.into(), true))?
        .into_iter()
        .map(|c| MeChild {
            id: c.person.uid.clone(),
            name: c.person.full_name(),
            class: c.class_name,
            departed_on: c.departed_on,
        })
        .collect();
    Ok(Json(Me {
        id: user.person.uid.clone(),
        name: user.person.full_name(),
        roles: crate::pages::role_codes(&user),
        children,
        csrf_token: user.session.csrf_token.clone(),
    }))
}
