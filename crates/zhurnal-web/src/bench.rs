//! Area `bench`: the benchmark's baseline, `GET /bench/baseline?uid=…` — one indexed read
//! (a person by `uid`) through the same store, pool and middleware as every page, answering
//! only whether the row exists. Mounted only with `[bench] enabled = true`; without a session,
//! it discloses nothing but the existence of a random id, and only on a benchmark server.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;

use crate::{AppState, WebError};

#[derive(Deserialize)]
pub struct BaselineQuery {
    uid: Option<String>,
}

pub async fn baseline(
    State(state): State<AppState>,
    Query(q): Query<BaselineQuery>,
) -> Result<Json<serde_json::Value>, WebError> {
    let uid = q.uid.unwrap_or_default();
    let found = state.app.store.find_person_by_uid(&uid).await?.is_some();
    Ok(Json(serde_json::json!({ "found": found })))
}
