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

#[derive(Serialize)]
pub struct MeChild {
    id: String,
    name: String,
    class: Option<String>,
    departed_on: Option<chrono::NaiveDate>,
}

#[derive(Serialize)]
pub struct Me {
    id: String,
    name: String,
    roles: Vec<String>,
    children: Vec<MeChild>,
    csrf_token: String,
}

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
