//! The HTTP face of Zhurnal: server-rendered pages (askama, Russian), a small JSON API under
//! `/api/v1`, the ESIA login flow, and the one error → response map ([`WebError`]).
//! Handlers authenticate with [`session::CurrentUser`] and authorize with one call to the
//! domain policy before any personal data is read.

mod admin;
mod announcements;
mod api;
mod auth;
mod bench;
mod diary;
mod error;
mod import;
mod journal;
mod journal_api;
pub mod openapi;
mod pages;
mod reports;
mod security;
// Area `integrations`.
mod integrations;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use zhurnal_app::App;
use zhurnal_esia::IdentityProvider;

pub use error::WebError;

/// Web settings (section `[web]` of the configuration).
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// Mark cookies `Secure` (HTTPS). Only the loopback demo turns this off.
    pub secure_cookies: bool,
    /// A session unused this long ends (УПД.10).
    pub session_idle_minutes: i64,
    /// A session ends this long after login whatever happens.
    pub session_absolute_hours: i64,
    /// How long a login attempt (ESIA `state`) stays valid.
    pub login_attempt_minutes: i64,
    /// Peers whose `X-Forwarded-For` is believed (reverse proxies). Empty: nobody.
    pub trusted_proxies: Vec<String>,
    /// The externally visible origin, e.g. `https://zhurnal.example.ru`; used for Origin checks.
    pub public_origin: Option<String>,
    /// Pass `login_hint` through to the identity provider (the simulator's shortcut). Refused
    /// by configuration validation when the real ESIA is configured.
    pub allow_login_hint: bool,
    /// Diary weeks the server keeps in memory to serve again while nothing they show has
    /// changed (about 16 KB each), and a quarter as many classes' parts of them (about 20 KB
    /// each), which a class's students share; 0 turns both off. See the README's "Benchmark".
    pub diary_weeks_in_memory: usize,
    /// Reports (pages, exports, class archives) built at once; more requests wait. Each reads
    /// a term of a school's marks into memory, so more than the cores only adds memory.
    pub reports_at_once: std::num::NonZeroUsize,
    /// How long a report request waits for a place before it is told to come back (503).
    pub report_wait_seconds: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            secure_cookies: true,
            session_idle_minutes: 30,
            session_absolute_hours: 12,
            login_attempt_minutes: 10,
            trusted_proxies: Vec::new(),
            public_origin: None,
            allow_login_hint: false,
            diary_weeks_in_memory: 2048,
            reports_at_once: zhurnal_app::report_places::DEFAULT_AT_ONCE,
            report_wait_seconds: zhurnal_app::report_places::DEFAULT_WAIT.as_secs(),
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub app: Arc<App>,
    pub idp: Arc<dyn IdentityProvider>,
    pub config: Arc<WebConfig>,
    /// Origin of the identity provider, allowed as a form/redirect target in the CSP.
    pub idp_origin: String,
}

/// A route as the authorization matrix and the pre-auth allowlist see it.
#[derive(Clone, Copy, Debug)]
pub struct RouteInfo {
    pub method: &'static str,
    pub path: &'static str,
    /// Reachable without a session (УПД.11 allowlist).
    pub public: bool,
}

/// Every route of the application. Tests iterate this table, so a new route cannot be
/// forgotten by the authorization matrix or the pre-auth allowlist.
pub const ROUTES: &[RouteInfo] = &[
    RouteInfo { method: "GET", path: "/", public: true },
    RouteInfo { method: "GET", path: "/healthz", public: true },
    RouteInfo { method: "GET", path: "/static/{file}", public: true },
    RouteInfo { method: "GET", path: "/login", public: true },
    RouteInfo { method: "GET", path: "/auth/callback", public: true },
    RouteInfo { method: "POST", path: "/logout", public: false },
    RouteInfo { method: "GET", path: "/home", public: false },
    RouteInfo { method: "GET", path: "/teacher/today", public: false },
    RouteInfo { method: "GET", path: "/schools/{school}", public: false },
    RouteInfo { method: "GET", path: "/classes/{class}", public: false },
    RouteInfo { method: "GET", path: "/admin", public: false },
    RouteInfo { method: "GET", path: "/region", public: false },
    RouteInfo { method: "GET", path: "/api/v1/me", public: false },
    // Area `diary`: diary, class teacher's summary, announcements.
    RouteInfo { method: "GET", path: "/diary", public: false },
    RouteInfo { method: "GET", path: "/diary/{student}", public: false },
    RouteInfo { method: "GET", path: "/diary/{student}/marks", public: false },
    RouteInfo { method: "GET", path: "/diary/{student}/feed", public: false },
    RouteInfo { method: "GET", path: "/classes/{class}/summary", public: false },
    RouteInfo { method: "GET", path: "/announcements", public: false },
    RouteInfo { method: "POST", path: "/announcements", public: false },
    RouteInfo { method: "POST", path: "/announcements/{id}/release", public: false },
    RouteInfo { method: "POST", path: "/announcements/{id}/recall", public: false },
    RouteInfo { method: "GET", path: "/api/v1/diary/{student}/week", public: false },
    RouteInfo { method: "GET", path: "/api/v1/diary/{student}/marks", public: false },
    RouteInfo { method: "GET", path: "/api/v1/diary/{student}/feed", public: false },
    RouteInfo { method: "GET", path: "/api/v1/announcements", public: false },
    RouteInfo { method: "POST", path: "/api/v1/announcements", public: false },
    // Journal (классный журнал): pages, API and the OpenAPI document.
    RouteInfo { method: "GET", path: "/journal/{assignment}", public: false },
    RouteInfo { method: "POST", path: "/journal/{assignment}/periods/{period}", public: false },
    RouteInfo { method: "GET", path: "/api/openapi.json", public: true },
    RouteInfo { method: "GET", path: "/api/v1/journal/{assignment}", public: false },
    RouteInfo { method: "POST", path: "/api/v1/journal/{assignment}/marks", public: false },
    RouteInfo { method: "PUT", path: "/api/v1/marks/{mark}", public: false },
    RouteInfo { method: "DELETE", path: "/api/v1/marks/{mark}", public: false },
    RouteInfo { method: "PUT", path: "/api/v1/journal/{assignment}/attendance", public: false },
    RouteInfo {
        method: "PUT",
        path: "/api/v1/journal/{assignment}/lessons/{date}/{number}",
        public: false,
    },
    RouteInfo {
        method: "POST",
        path: "/api/v1/journal/{assignment}/lessons/{date}/{number}/attachments",
        public: false,
    },
    RouteInfo { method: "GET", path: "/api/v1/attachments/{uid}", public: false },
    RouteInfo { method: "PUT", path: "/api/v1/journal/{assignment}/final-marks", public: false },
    RouteInfo { method: "PUT", path: "/api/v1/periods/{period}", public: false },
    // School administration and reports (area `admin`).
    RouteInfo { method: "GET", path: "/admin/schools/{school}", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/years", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/periods", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/classes", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/subjects", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/work-types", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/assignments", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/slots", public: false },
    RouteInfo {
        method: "POST",
        path: "/admin/schools/{school}/slots/{slot}/delete",
        public: false,
    },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/substitutions", public: false },
    RouteInfo { method: "GET", path: "/admin/classes/{class}", public: false },
    RouteInfo { method: "POST", path: "/admin/classes/{class}", public: false },
    RouteInfo { method: "POST", path: "/admin/classes/{class}/students", public: false },
    RouteInfo { method: "POST", path: "/admin/classes/{class}/groups", public: false },
    RouteInfo {
        method: "POST",
        path: "/admin/classes/{class}/groups/{group}/members",
        public: false,
    },
    RouteInfo { method: "POST", path: "/admin/enrolments/{enrolment}/transfer", public: false },
    RouteInfo { method: "POST", path: "/admin/enrolments/{enrolment}/depart", public: false },
    RouteInfo { method: "GET", path: "/admin/roles", public: false },
    RouteInfo { method: "POST", path: "/admin/roles/grant", public: false },
    RouteInfo { method: "POST", path: "/admin/roles/{grant}/revoke", public: false },
    RouteInfo { method: "GET", path: "/admin/rollover", public: false },
    RouteInfo { method: "POST", path: "/admin/rollover", public: false },
    RouteInfo { method: "GET", path: "/reports", public: false },
    RouteInfo { method: "GET", path: "/reports/territory/{format}", public: false },
    RouteInfo { method: "GET", path: "/reports/classes/{class}/archive.pdf", public: false },
    RouteInfo { method: "GET", path: "/reports/{school}/{report}/{format}", public: false },
    // security area
    RouteInfo { method: "GET", path: "/security", public: false },
    RouteInfo { method: "GET", path: "/security/incidents/{id}", public: false },
    RouteInfo { method: "POST", path: "/security/incidents/{id}", public: false },
    RouteInfo { method: "POST", path: "/security/incidents/{id}/notices", public: false },
    RouteInfo { method: "GET", path: "/security/audit", public: false },
    RouteInfo { method: "GET", path: "/security/report", public: false },
    RouteInfo { method: "GET", path: "/security/report.csv", public: false },
    RouteInfo { method: "GET", path: "/security/report.pdf", public: false },
    RouteInfo { method: "GET", path: "/security/report.xlsx", public: false },
    RouteInfo { method: "GET", path: "/admin/reactivation", public: false },
    RouteInfo { method: "POST", path: "/admin/reactivation", public: false },
    // Area `integrations`: monitoring, deliveries, class chat, communication services.
    RouteInfo { method: "GET", path: "/monitoring", public: false },
    RouteInfo { method: "GET", path: "/monitoring/weekly.xlsx", public: false },
    RouteInfo { method: "GET", path: "/admin/schools/{school}/integrations", public: false },
    RouteInfo {
        method: "POST",
        path: "/admin/schools/{school}/integrations/replay/{event}",
        public: false,
    },
    RouteInfo { method: "GET", path: "/admin/schools/{school}/communication", public: false },
    RouteInfo { method: "POST", path: "/admin/schools/{school}/communication", public: false },
    RouteInfo { method: "GET", path: "/classes/{class}/chat", public: false },
    RouteInfo { method: "GET", path: "/schools/{school}/communication", public: true },
    // Area `bench`: mounted only with `[bench] enabled = true` (see `RouterOptions`).
    RouteInfo { method: "GET", path: "/bench/baseline", public: true },
    // import area: upload, templates, the region's migration register and acts.
    RouteInfo { method: "GET", path: "/import", public: false },
    RouteInfo { method: "POST", path: "/import", public: false },
    RouteInfo { method: "GET", path: "/import/templates.zip", public: false },
    RouteInfo { method: "GET", path: "/import/templates.xlsx", public: false },
    RouteInfo { method: "GET", path: "/import/region", public: false },
    RouteInfo { method: "GET", path: "/import/acts/{act}", public: false },
];

/// What [`router_with`] mounts besides the application.
#[derive(Clone, Copy, Debug, Default)]
pub struct RouterOptions {
    /// `GET /bench/baseline`: one indexed read, the benchmark's reference (`[bench] enabled`).
    pub bench_baseline: bool,
}

pub fn router(state: AppState) -> Router {
    router_with(state, RouterOptions::default())
}

pub fn router_with(state: AppState, options: RouterOptions) -> Router {
    let mut routes = Router::new()
        .route("/", get(pages::landing))
        .route("/healthz", get(api::healthz))
        .route("/static/{file}", get(pages::static_file))
        .route("/login", get(auth::login))
        .route("/auth/callback", get(auth::callback))
        .route("/logout", post(auth::logout))
        .route("/home", get(pages::home))
        .route("/teacher/today", get(pages::teacher_today))
        .route("/schools/{school}", get(pages::school))
        .route("/classes/{class}", get(pages::class_roster))
        .route("/admin", get(pages::admin_home))
        .route("/region", get(pages::region_home))
        .route("/api/v1/me", get(api::me))
        // Area `diary`: diary, class teacher's summary, announcements.
        .route("/diary", get(diary::own_diary))
        .route("/diary/{student}", get(diary::student_diary))
        .route("/diary/{student}/marks", get(diary::marks_page))
        .route("/diary/{student}/feed", get(diary::feed_page))
        .route("/classes/{class}/summary", get(diary::class_summary))
        .route("/announcements", get(announcements::list).post(announcements::post_form))
        .route("/announcements/{id}/release", post(announcements::release))
        .route("/announcements/{id}/recall", post(announcements::recall))
        .route("/api/v1/diary/{student}/week", get(diary::api_week))
        .route("/api/v1/diary/{student}/marks", get(diary::api_marks))
        .route("/api/v1/diary/{student}/feed", get(diary::api_feed))
        .route("/api/v1/announcements", get(announcements::api_list).post(announcements::api_post))
        // Journal (классный журнал): pages, API and the OpenAPI document.
        .route("/journal/{assignment}", get(journal::journal_page))
        .route("/journal/{assignment}/periods/{period}", post(journal::period_form))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/v1/journal/{assignment}", get(journal_api::journal_grid))
        .route("/api/v1/journal/{assignment}/marks", post(journal_api::create_mark))
        .route(
            "/api/v1/marks/{mark}",
            put(journal_api::update_mark).delete(journal_api::delete_mark),
        )
        .route("/api/v1/journal/{assignment}/attendance", put(journal_api::set_attendance))
        .route(
            "/api/v1/journal/{assignment}/lessons/{date}/{number}",
            put(journal_api::update_lesson),
        )
        .route(
            "/api/v1/journal/{assignment}/lessons/{date}/{number}/attachments",
            post(journal_api::upload_attachment)
                .layer(DefaultBodyLimit::max(journal_api::UPLOAD_BODY_LIMIT)),
        )
        .route("/api/v1/attachments/{uid}", get(journal_api::download_attachment))
        .route("/api/v1/journal/{assignment}/final-marks", put(journal_api::set_final_mark))
        .route("/api/v1/periods/{period}", put(journal_api::set_period_state))
        // School administration and reports (area `admin`).
        .route("/admin/schools/{school}", get(admin::school_page))
        .route("/admin/schools/{school}/years", post(admin::create_year))
        .route("/admin/schools/{school}/periods", post(admin::save_period))
        .route("/admin/schools/{school}/classes", post(admin::create_class))
        .route("/admin/schools/{school}/subjects", post(admin::create_subject))
        .route("/admin/schools/{school}/work-types", post(admin::save_work_type))
        .route("/admin/schools/{school}/assignments", post(admin::create_assignment))
        .route("/admin/schools/{school}/slots", post(admin::create_slot))
        .route("/admin/schools/{school}/slots/{slot}/delete", post(admin::delete_slot))
        .route("/admin/schools/{school}/substitutions", post(admin::set_substitution))
        .route("/admin/classes/{class}", get(admin::class_page).post(admin::update_class))
        .route("/admin/classes/{class}/students", post(admin::admit))
        .route("/admin/classes/{class}/groups", post(admin::create_group))
        .route("/admin/classes/{class}/groups/{group}/members", post(admin::group_members))
        .route("/admin/enrolments/{enrolment}/transfer", post(admin::transfer))
        .route("/admin/enrolments/{enrolment}/depart", post(admin::depart))
        .route("/admin/roles", get(admin::roles_page))
        .route("/admin/roles/grant", post(admin::grant))
        .route("/admin/roles/{grant}/revoke", post(admin::revoke))
        .route("/admin/rollover", get(admin::rollover_preview).post(admin::rollover_apply))
        .route("/reports", get(reports::page))
        .route("/reports/territory/{format}", get(reports::territory_export))
        .route("/reports/classes/{class}/archive.pdf", get(reports::class_archive))
        .route("/reports/{school}/{report}/{format}", get(reports::export))
        // security area
        .route("/security", get(security::home))
        .route("/security/incidents/{id}", get(security::incident).post(security::add_measure))
        .route("/security/incidents/{id}/notices", post(security::add_notice))
        .route("/security/audit", get(security::audit))
        .route("/security/report", get(security::report))
        .route("/security/report.csv", get(security::report_csv))
        .route("/security/report.pdf", get(security::report_pdf))
        .route("/security/report.xlsx", get(security::report_xlsx))
        .route("/admin/reactivation", get(security::reactivation).post(security::reactivate))
        // Area `integrations`: monitoring, deliveries, class chat, communication services.
        .route("/monitoring", get(integrations::monitoring))
        .route("/monitoring/weekly.xlsx", get(integrations::monitoring_xlsx))
        .route("/admin/schools/{school}/integrations", get(integrations::status))
        .route("/admin/schools/{school}/integrations/replay/{event}", post(integrations::replay))
        .route(
            "/admin/schools/{school}/communication",
            get(integrations::edit_page).post(integrations::save),
        )
        .route("/classes/{class}/chat", get(integrations::chat))
        .route("/schools/{school}/communication", get(integrations::public_page))
        // import area: upload, templates, the region's migration register and acts.
        .route(
            "/import",
            get(import::upload_page)
                .post(import::upload)
                .layer(DefaultBodyLimit::max(import::UPLOAD_BODY_LIMIT)),
        )
        .route("/import/templates.zip", get(import::templates))
        .route("/import/templates.xlsx", get(import::templates_xlsx))
        .route("/import/region", get(import::region_page))
        .route("/import/acts/{act}", get(import::act_pdf));
    // Area `bench`: behind the same middleware as every route, so the ratio to it is fair.
    if options.bench_baseline {
        routes = routes.route("/bench/baseline", get(bench::baseline));
    }
    routes
        .layer(middleware::from_fn_with_state(state.clone(), csrf_guard))
        // security area: rate limits, per router (each server and each test has its own)
        .layer(middleware::from_fn_with_state(
            (state.clone(), security::RateLimits::new(&state.app.security)),
            security::rate_limit,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .with_state(state)
}

pub(crate) fn html_headers() -> [(header::HeaderName, &'static str); 2] {
    [(header::CONTENT_TYPE, "text/html; charset=utf-8"), (header::CACHE_CONTROL, "no-store")]
}

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let csp = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self' {}",
        state.idp_origin
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if state.config.secure_cookies {
        h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    }
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    res
}

/// Every state-changing request needs the session's CSRF token — in the `X-CSRF-Token`
/// header (API, scripts) or the `csrf` field of a URL-encoded or multipart form — and, when the browser
/// sends one, an `Origin` of this site.
async fn csrf_guard(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, WebError> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(next.run(req).await);
    }
    check_origin(&state, req.headers())?;
    let (mut parts, body) = req.into_parts();
    let user = match <session::CurrentUser as axum::extract::FromRequestParts<AppState>>::from_request_parts(&mut parts, &state).await {
        Ok(u) => u,
        Err(WebError::Unauthenticated { .. }) => return Err(WebError::Csrf("нет сессии")),
        Err(e) => return Err(e),
    };
    let expected = user.session.csrf_token.as_bytes().to_vec();
    let header_token =
        parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let content_type =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    // import area: a no-JS file upload form sends its token as the `csrf` part.
    let is_multipart = content_type.starts_with("multipart/form-data");
    let (ok, body) = if let Some(t) = header_token {
        (constant_time_eq(t.as_bytes(), &expected), body)
    } else if is_multipart {
        let limit = multipart_limit(parts.uri.path());
        let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
            WebError::TooLarge(
                format!(
                    "Файл больше {} МБ. Разделите выгрузку на части (например, по школам) и загрузите их по очереди.",
                    limit / (1024 * 1024)
                ),
                false,
            )
        })?;
        let token = import::multipart_csrf(content_type, bytes.clone()).await;
        (token.is_some_and(|t| constant_time_eq(t.as_bytes(), &expected)), Body::from(bytes))
    } else if is_form {
        let bytes = axum::body::to_bytes(body, FORM_BODY_LIMIT).await.map_err(|_| {
            WebError::TooLarge(
                "Форма больше 1 МБ: сократите текст и отправьте снова.".into(),
                false,
            )
        })?;
        let token = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == "csrf")
            .map(|(_, v)| v.into_owned());
        (token.is_some_and(|t| constant_time_eq(t.as_bytes(), &expected)), Body::from(bytes))
    } else {
        (false, body)
    };
    if !ok {
        let audit = user
            .audit_context()
            .event(state.app.now_micros(), "csrf.rejected", "refused")
            .actor(user.person.id.0, user.audit_role())
            .target("route", parts.uri.path());
        state.app.store.append_audit(audit).await?;
        return Err(WebError::Csrf("неверный или отсутствующий токен"));
    }
    Ok(next.run(Request::from_parts(parts, body)).await)
}

/// URL-encoded forms, and multipart bodies sent anywhere but the import upload.
const FORM_BODY_LIMIT: usize = 1024 * 1024;

/// The CSRF guard reads a multipart body before any handler runs, so the import's 64 MiB
/// allowance must not extend to every route: a logged-in user could otherwise make the
/// server buffer 64 MiB per request on any form.
fn multipart_limit(path: &str) -> usize {
    if path == "/import" { import::UPLOAD_BODY_LIMIT } else { FORM_BODY_LIMIT }
}

fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let same_host =
        origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")) == Some(host);
    let configured = state.config.public_origin.as_deref() == Some(origin);
    if same_host || configured {
        Ok(())
    } else {
        Err(WebError::Csrf("чужой источник запроса"))
    }
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A redirect that also sets cookies.
pub(crate) fn see_other(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut res = axum::response::Redirect::to(location).into_response();
    *res.status_mut() = axum::http::StatusCode::SEE_OTHER;
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}
