//! Server-side sessions. The browser holds a random id in an HttpOnly cookie; the database holds
//! only its SHA-256, so a leaked table cannot be replayed. Extractors only authenticate: a
//! present but invalid session is an error (the cookie is cleared), never an anonymous user.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use rand::RngCore;
use sha2::{Digest, Sha256};
use zhurnal_app::App;
use zhurnal_domain::Actor;
use zhurnal_store::{PersonRow, SessionRow, SessionWithPerson, StoreResult};

use crate::{AppState, WebError};

/// A fresh 256-bit random token, URL-safe.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b)
}

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Reads one cookie from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

impl AppState {
    pub fn session_cookie_name(&self) -> &'static str {
        if self.config.secure_cookies { "__Host-zh_session" } else { "zh_session" }
    }

    pub fn prelogin_cookie_name(&self) -> &'static str {
        if self.config.secure_cookies { "__Host-zh_prelogin" } else { "zh_prelogin" }
    }

    /// `Set-Cookie` value; `max_age` None means a browser-session cookie, Some(0) deletes it.
    pub fn set_cookie(&self, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.config.secure_cookies {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        HeaderValue::from_str(&c)
            .unwrap_or_else(|_| HeaderValue::from_static("zh_invalid=; Max-Age=0"))
    }
}

/// The client address, from the socket or — only behind a configured proxy — `X-Forwarded-For`.
pub fn client_ip(state: &AppState, parts: &Parts) -> Option<String> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    client_ip_from_headers(state, &parts.headers, peer)
}

pub fn client_ip_from_headers(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
) -> Option<String> {
    let peer = peer.map(|p| p.ip());
    if let Some(peer) = peer
        && state.config.trusted_proxies.iter().any(|p| p == &peer.to_string())
        && let Some(fwd) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok())
        && let Some(last) = fwd.rsplit(',').next()
    {
        return Some(last.trim().to_string());
    }
    peer.map(|p| p.to_string())
}

/// An authenticated user with what the policy needs.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub person: PersonRow,
    pub session: SessionRow,
    pub actor: Actor,
    pub source_ip: Option<String>,
    /// Security notices for the person (dormancy warning, re-activation), shown as a banner.
    pub notices: Vec<String>,
}

impl CurrentUser {
    pub fn audit_context(&self) -> zhurnal_app::login::AuditContext {
        zhurnal_app::login::AuditContext {
            source_ip: self.source_ip.clone(),
            session_hash: Some(self.session.id_hash.chars().take(16).collect()),
        }
    }

    /// The role name written to the audit log for this user's actions.
    pub fn audit_role(&self) -> &'static str {
        if let Some((r, _)) = self.actor.grants.first() {
            r.code()
        } else if self.actor.is_parent() {
            "parent"
        } else if self.actor.is_student() {
            "student"
        } else {
            "person"
        }
    }
}

/// The session and its person as read once for this request (by the rate limiter, which runs
/// first), so the extractor does not read them again. Keyed by the id hash it was read for.
#[derive(Clone)]
pub(crate) struct SessionLookup {
    pub id_hash: String,
    pub found: Option<SessionWithPerson>,
}

impl SessionLookup {
    /// Reads the session of `id_hash` with its person and their relations, in one statement.
    pub(crate) async fn read(state: &AppState, id_hash: String) -> StoreResult<Self> {
        let app = &state.app;
        let found =
            app.store.find_session_with_person(&id_hash, app.notices_since(), app.today()).await?;
        Ok(Self { id_hash, found })
    }
}

fn is_api(parts: &Parts) -> bool {
    parts.uri.path().starts_with("/api/")
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<CurrentUser>() {
            return Ok(user.clone());
        }
        let api = is_api(parts);
        let token = cookie(&parts.headers, state.session_cookie_name())
            .ok_or(WebError::Unauthenticated { api })?;
        let id_hash = hash_token(&token);
        let app = &state.app;
        let lookup = match parts.extensions.remove::<SessionLookup>() {
            Some(l) if l.id_hash == id_hash => l,
            _ => SessionLookup::read(state, id_hash.clone()).await?,
        };
        let SessionWithPerson { session, person, has_notices, relations } =
            lookup.found.ok_or(WebError::Unauthenticated { api })?;
        let now = app.now_micros();
        let idle = state.config.session_idle_minutes * 60 * 1_000_000;
        let absolute = state.config.session_absolute_hours * 3600 * 1_000_000;
        if now - session.last_seen_at > idle || now - session.created_at > absolute {
            let audit = zhurnal_store::NewAudit::new(now, "session.expired", "ok")
                .actor(session.person_id.0, "person")
                .session(Some(id_hash.chars().take(16).collect()));
            app.store.delete_session(&id_hash, Some(audit)).await?;
            return Err(WebError::Unauthenticated { api });
        }
        // Blocking takes effect on the next request, not at the next login; so does dormancy,
        // computed here even if the dormancy job has not run.
        if let Some(reason) = app.session_refusal(&person) {
            let audit = zhurnal_store::NewAudit::new(now, "session.revoked", "ok")
                .actor(person.id.0, "person")
                .reason(reason);
            app.store.delete_session(&id_hash, Some(audit)).await?;
            return Err(WebError::Unauthenticated { api });
        }
        // One write a minute per session is enough to measure idleness.
        if now - session.last_seen_at > 60 * 1_000_000 {
            app.store.touch_session(&id_hash, now).await?;
        }
        // The relations were read with the session, fresh on every request (a revoked role or
        // a block bites at once); the notices only when the session's read found some.
        let actor = App::actor_from(person.id, relations);
        let notices = if has_notices {
            app.recent_notices(person.id).await.map_err(|e| WebError::from_app(e, api))?
        } else {
            Vec::new()
        };
        let user =
            CurrentUser { person, session, actor, source_ip: client_ip(state, parts), notices };
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

/// `Option<CurrentUser>` for pages that also serve anonymous visitors (the landing page).
pub struct MaybeUser(pub Option<CurrentUser>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = WebError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match CurrentUser::from_request_parts(parts, state).await {
            Ok(u) => Ok(MaybeUser(Some(u))),
            Err(WebError::Unauthenticated { .. }) => Ok(MaybeUser(None)),
            Err(e) => Err(e),
        }
    }
}

/// The client address as [`client_ip`] determines it; absent when the server runs without
/// connection info (in-process tests).
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(state, parts)))
    }
}
