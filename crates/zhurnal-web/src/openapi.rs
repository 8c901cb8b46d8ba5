//! The OpenAPI document of `/api/v1`, served at `GET /api/openapi.json`.
//!
//! Each API module describes its own endpoints with one `#[derive(OpenApi)]` (e.g.
//! [`crate::journal_api::JournalApi`]); [`document`] merges them. A module adds its paths by
//! adding one `merge` line below. The e2e tests check that every `/api/v1` route of
//! [`crate::ROUTES`] is described.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The base document: info, the session cookie scheme and the endpoints of `api.rs`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Zhurnal API",
        description = "Электронный журнал и дневник. Вход через Госуслуги создаёт сессию (cookie); \
                       изменяющие запросы требуют заголовок X-CSRF-Token со значением csrf_token \
                       из GET /api/v1/me. Ошибки — application/problem+json с русским описанием.",
        license(name = "AGPL-3.0-or-later")
    ),
    paths(crate::api::me),
    components(schemas(crate::api::Me, crate::api::MeChild)),
    modifiers(&SessionCookie),
    security(("session" = []))
)]
struct BaseApi;

struct SessionCookie;

impl Modify for SessionCookie {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "__Host-zh_session",
                "Сессия после входа через Госуслуги (zh_session без HTTPS в демо-режиме)",
            ))),
        );
    }
}

/// The whole document.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = BaseApi::openapi();
    doc.merge(crate::journal_api::JournalApi::openapi());
    doc.merge(crate::diary::DiaryApi::openapi());
    doc.merge(crate::announcements::AnnouncementsApi::openapi());
    doc
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
