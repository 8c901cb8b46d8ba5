//! The bundled ESIA simulator (`zhurnal esia-sim`): the same paths and wire format as ESIA v2
//! on loopback, so the demo and the tests log in with no internet and the production client
//! code runs unchanged (`esia.md` §8, `esia-protocol.md` §6).
//!
//! | endpoint | behaviour |
//! |---|---|
//! | `GET /aas/oauth2/v2/ac` | validates every parameter and the `client_secret` signature against the registered certificate; shows the person picker, or with `login_hint=<persona id>` redirects straight back with a code |
//! | `POST /sim/consent` | the picker's form: «Разрешить» issues a code, «Отказаться» returns `access_denied` / ESIA-007004 |
//! | `POST /aas/oauth2/v3/te` | one-use, short-lived code bound to client and redirect_uri; PKCE S256; signature incl. `code`; issues GOST-signed tokens |
//! | `GET /rs/prns/{oid}`, `/ctts`, `/kids` (+ `/{id}`) | Bearer-checked, fields filtered by scope; `?embed=(elements)` inlines |
//! | `GET /idp/ext/Logout` | back to a registered `redirect_url`, else a «вы вышли» page |
//! | `GET /sim/esia-cert.pem`, `GET /sim/health`, `GET`/`POST /sim/faults` | helpers |
//!
//! Faults ([`Fault`]) are set globally with `POST /sim/faults`, [`Simulator::set_fault`] or
//! the CLI's `--fault NAME`. The clock is injectable ([`Simulator::set_clock`]).
//!
//! This is a development tool: it binds to loopback, keeps everything in memory and trusts
//! the `Host` header when it writes element URLs. A production configuration must never
//! point at it (`security.md` T-02).

mod html;
mod persons;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;
use zhurnal_gost::{Certificate, ParamSet, SigningKey, base64url_decode};

use crate::codes::{self, EsiaCode};
use crate::jwt;
use crate::wire::{ct_eq, parse_timestamp, pkce_challenge};
use crate::{EsiaConfig, EsiaError};

pub use persons::{
    SimPerson, default_persons, load_persons, snils_check_digits, snils_is_valid, snils_with_check,
    validate_persons,
};

/// The simulator's default `iss`; deliberately not ESIA's, so a production RP configuration
/// refuses simulator tokens.
pub const DEFAULT_ISSUER: &str = "http://esia-sim.local/";
/// The JWT `alg` the simulator writes (the RP's default accepted value).
pub const TOKEN_ALG: &str = crate::config::DEFAULT_JWT_ALG;
/// Scopes the simulator knows; anything else is `invalid_scope`.
pub const KNOWN_SCOPES: &[&str] = &[
    "openid",
    "fullname",
    "birthdate",
    "gender",
    "snils",
    "inn",
    "email",
    "mobile",
    "contacts",
    "id_doc",
    "birthplace",
    "kid_fullname",
    "kid_birthdate",
    "kid_gender",
    "kid_snils",
    "kid_inn",
];
/// How long the `slow` fault delays the token endpoint.
pub const SLOW_DELAY: Duration = Duration::from_secs(3);
/// Pending picker requests and unexchanged codes kept at most (a loopback tool, but bounded).
const MAX_PENDING: usize = 10_000;

/// A relying party registered with the simulator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimClient {
    /// The mnemonic.
    pub client_id: String,
    /// Exact `redirect_uri` values accepted.
    pub redirect_uris: Vec<String>,
    /// Exact `redirect_url` values the logout may return to.
    pub logout_redirect_uris: Vec<String>,
    /// The client's certificate (PEM): verifies `client_secret`, gives the expected hash.
    pub certificate_pem: String,
}

impl SimClient {
    /// Registers the relying party described by an [`EsiaConfig`]: its certificate file, its
    /// callback and logout return address.
    pub fn for_relying_party(config: &EsiaConfig) -> Result<SimClient, EsiaError> {
        let path = config.signer.certificate_path();
        let certificate_pem = std::fs::read_to_string(path).map_err(|e| {
            EsiaError::Config(format!("cannot read certificate {}: {e}", path.display()))
        })?;
        Ok(SimClient {
            client_id: config.client_id.clone(),
            redirect_uris: vec![config.redirect_uri.to_string()],
            logout_redirect_uris: vec![config.logout_redirect_uri.to_string()],
            certificate_pem,
        })
    }
}

/// Everything the simulator is started with.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// `iss` of the tokens.
    pub issuer: String,
    /// Seeded people.
    pub persons: Vec<SimPerson>,
    /// Registered relying parties.
    pub clients: Vec<SimClient>,
    /// The key that signs tokens.
    pub signing_key: SigningKey,
    /// Its certificate, published at `/sim/esia-cert.pem`.
    pub certificate: Certificate,
    /// Lifetime of an authorization code.
    pub code_ttl_seconds: i64,
    /// Lifetime of the tokens (`expires_in`).
    pub token_ttl_seconds: i64,
    /// Accepted distance between a request's `timestamp` and the simulator's clock.
    pub timestamp_skew_seconds: i64,
}

impl SimConfig {
    /// Defaults around `persons` and `clients`: a fresh CryptoPro-A key with a self-signed
    /// certificate, [`DEFAULT_ISSUER`], 300 s codes, 3600 s tokens, 600 s timestamp skew.
    pub fn new(persons: Vec<SimPerson>, clients: Vec<SimClient>) -> Result<SimConfig, EsiaError> {
        validate_persons(&persons)?;
        let signing_key = SigningKey::generate(ParamSet::CryptoProA);
        let certificate = Certificate::self_signed(&signing_key, "ЕСИА (симулятор Журнала)", 3650)
            .map_err(|e| EsiaError::Config(format!("simulator certificate: {e}")))?;
        Ok(SimConfig {
            issuer: DEFAULT_ISSUER.to_owned(),
            persons,
            clients,
            signing_key,
            certificate,
            code_ttl_seconds: 300,
            token_ttl_seconds: 3600,
            timestamp_skew_seconds: 600,
        })
    }
}

/// Error injection (`esia-protocol.md` §6.5). Names are snake_case for `--fault NAME` and
/// `POST /sim/faults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// The token endpoint treats every code as expired (ESIA-007011).
    ExpiredCode,
    /// The token endpoint accepts an already-used code, so the RP's own replay defence shows.
    ReusedCode,
    /// The callback carries a different `state`.
    WrongState,
    /// The token response echoes a different `state`.
    StateMismatchToken,
    /// `client_secret` is refused as if the signature were wrong (ESIA-007053).
    BadSignature,
    /// Tokens are signed with a key other than the published one.
    TokenBadSig,
    /// Tokens are already expired when issued.
    TokenExpired,
    /// Tokens carry another `iss`.
    WrongIss,
    /// Tokens are issued for another client (`aud` / `client_id`).
    WrongAud,
    /// The id_token's `sub` names another person.
    WrongSub,
    /// Tokens are unsigned (`alg: none`).
    TokenAlgNone,
    /// The person presses «Отказаться» (access_denied, ESIA-007004).
    UserCancel,
    /// ESIA is overloaded: ESIA-007008 at the callback, HTTP 503 from the token and REST
    /// endpoints.
    ServerError,
    /// Every person is treated as unconfirmed (no `is_tru`, `trusted: false`).
    UnconfirmedAccount,
    /// The token endpoint answers after [`SLOW_DELAY`] (timeouts).
    Slow,
}

impl Fault {
    /// Every fault.
    pub const ALL: &'static [Fault] = &[
        Fault::ExpiredCode,
        Fault::ReusedCode,
        Fault::WrongState,
        Fault::StateMismatchToken,
        Fault::BadSignature,
        Fault::TokenBadSig,
        Fault::TokenExpired,
        Fault::WrongIss,
        Fault::WrongAud,
        Fault::WrongSub,
        Fault::TokenAlgNone,
        Fault::UserCancel,
        Fault::ServerError,
        Fault::UnconfirmedAccount,
        Fault::Slow,
    ];

    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Fault::ExpiredCode => "expired_code",
            Fault::ReusedCode => "reused_code",
            Fault::WrongState => "wrong_state",
            Fault::StateMismatchToken => "state_mismatch_token",
            Fault::BadSignature => "bad_signature",
            Fault::TokenBadSig => "token_bad_sig",
            Fault::TokenExpired => "token_expired",
            Fault::WrongIss => "wrong_iss",
            Fault::WrongAud => "wrong_aud",
            Fault::WrongSub => "wrong_sub",
            Fault::TokenAlgNone => "token_alg_none",
            Fault::UserCancel => "user_cancel",
            Fault::ServerError => "server_error",
            Fault::UnconfirmedAccount => "unconfirmed_account",
            Fault::Slow => "slow",
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fault {
    type Err = EsiaError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::ALL.iter().copied().find(|f| f.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
            EsiaError::Config(format!("unknown fault {s:?}; known: {}", names.join(", ")))
        })
    }
}

struct RegisteredClient {
    client: SimClient,
    certificate: Option<Certificate>,
}

/// A validated authorization request waiting for the picker.
#[derive(Clone)]
struct Pending {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    state: String,
    code_challenge: Option<String>,
    expires_at: i64,
}

struct CodeGrant {
    client_id: String,
    redirect_uri: String,
    scopes: Vec<String>,
    person: usize,
    code_challenge: Option<String>,
    expires_at: i64,
    used: bool,
    sid: String,
}

#[derive(Default)]
struct Mutable {
    fault: Option<Fault>,
    clock: Option<DateTime<Utc>>,
    pending: HashMap<String, Pending>,
    codes: HashMap<String, CodeGrant>,
}

struct Inner {
    config: SimConfig,
    clients: Vec<RegisteredClient>,
    /// Signs tokens under the `token_bad_sig` fault.
    wrong_key: SigningKey,
    state: Mutex<Mutable>,
}

/// The simulator. Cheap to clone; clones share state, so a test can keep one to inject faults
/// while [`serve`] runs another.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("issuer", &self.inner.config.issuer)
            .field("persons", &self.inner.config.persons.len())
            .field("clients", &self.inner.clients.len())
            .finish_non_exhaustive()
    }
}

fn random_token() -> String {
    use rand::RngCore as _;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    zhurnal_gost::base64url_nopad(&b)
}

/// Query or form pairs; a repeated name is refused (it is ambiguous which one ESIA would use).
fn parse_pairs(raw: &str) -> Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(k.into_owned());
        }
    }
    Ok(out)
}

fn esia_date(d: chrono::NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

/// `fullname?oid=…` → `fullname`, as the simulator writes granted scopes into tokens.
fn bare_scope(s: &str) -> &str {
    s.split('?').next().unwrap_or(s)
}

fn json_response(status: StatusCode, body: Value) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn redirect(to: &Url) -> Response {
    match HeaderValue::from_str(to.as_str()) {
        Ok(v) => (StatusCode::SEE_OTHER, [(header::LOCATION, v)]).into_response(),
        Err(_) => html::error_page(StatusCode::BAD_REQUEST, "Неверный адрес возврата", ""),
    }
}

/// Back to the client with `error`, `error_description` = `ESIA-0070xx: …`, `state`.
fn redirect_error(
    redirect_uri: &str,
    code: &EsiaCode,
    detail: &str,
    state: Option<&str>,
) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return html::error_page(StatusCode::BAD_REQUEST, "Неверный адрес возврата", "");
    };
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("error", code.oauth_error);
        q.append_pair("error_description", &code.description_with(detail));
        if let Some(s) = state {
            q.append_pair("state", s);
        }
    }
    redirect(&url)
}

fn te_error(status: StatusCode, code: &EsiaCode, detail: &str, state: Option<&str>) -> Response {
    let mut body = json!({
        "error": code.oauth_error,
        "error_description": code.description_with(detail),
    });
    if let Some(s) = state {
        body["state"] = json!(s);
    }
    json_response(status, body)
}

fn rest_error(status: StatusCode, message: &str) -> Response {
    json_response(status, json!({"code": status.as_u16(), "message": message}))
}

impl Simulator {
    /// Builds the simulator. Clients whose certificate does not parse are kept (so their
    /// requests get a proper ESIA-007002) and logged.
    pub fn new(config: SimConfig) -> Self {
        if let Err(e) = validate_persons(&config.persons) {
            tracing::warn!(error = %e, "simulator persons are inconsistent");
        }
        let clients = config
            .clients
            .iter()
            .map(|c| {
                let certificate = match Certificate::from_pem(&c.certificate_pem) {
                    Ok(cert) => Some(cert),
                    Err(e) => {
                        tracing::warn!(client_id = %c.client_id, error = %e, "client certificate unusable");
                        None
                    }
                };
                RegisteredClient {
                    client: c.clone(),
                    certificate,
                }
            })
            .collect();
        let wrong_key = SigningKey::generate(ParamSet::CryptoProA);
        Simulator {
            inner: Arc::new(Inner {
                config,
                clients,
                wrong_key,
                state: Mutex::new(Mutable::default()),
            }),
        }
    }

    /// All routes.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/aas/oauth2/v2/ac", get(authorize))
            .route("/sim/consent", post(consent))
            .route("/aas/oauth2/v3/te", post(token))
            .route("/rs/prns/{oid}", get(prns))
            .route("/rs/prns/{oid}/ctts", get(contacts))
            .route("/rs/prns/{oid}/ctts/{id}", get(contact))
            .route("/rs/prns/{oid}/kids", get(kids))
            .route("/rs/prns/{oid}/kids/{id}", get(kid))
            .route("/idp/ext/Logout", get(logout))
            .route("/sim/esia-cert.pem", get(certificate))
            .route("/sim/health", get(health))
            .route("/sim/faults", get(get_fault).post(post_fault))
            .with_state(self.clone())
    }

    /// Sets (or clears) the global fault.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.lock().fault = fault;
        tracing::info!(fault = ?fault.map(Fault::name), "simulator fault set");
    }

    /// The global fault.
    pub fn fault(&self) -> Option<Fault> {
        self.lock().fault
    }

    /// Freezes the simulator's clock at `now` (`None`: the system clock again).
    pub fn set_clock(&self, now: Option<DateTime<Utc>>) {
        self.lock().clock = now;
    }

    /// The simulator's idea of now.
    pub fn now(&self) -> DateTime<Utc> {
        self.lock().clock.unwrap_or_else(Utc::now)
    }

    /// The token-signing certificate (PEM) an RP must be configured with.
    pub fn certificate_pem(&self) -> String {
        self.inner.config.certificate.to_pem()
    }

    /// The `iss` of the simulator's tokens.
    pub fn issuer(&self) -> &str {
        &self.inner.config.issuer
    }

    fn lock(&self) -> MutexGuard<'_, Mutable> {
        match self.inner.state.lock() {
            Ok(g) => g,
            // Every critical section leaves the maps consistent; a panic cannot half-update.
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn client(&self, client_id: &str) -> Option<&RegisteredClient> {
        self.inner.clients.iter().find(|c| c.client.client_id == client_id)
    }

    fn person_by_id(&self, id: &str) -> Option<usize> {
        self.inner.config.persons.iter().position(|p| p.id == id)
    }

    fn person_by_oid(&self, oid: &str) -> Option<usize> {
        self.inner.config.persons.iter().position(|p| p.oid == oid)
    }

    fn trusted(&self, person: usize) -> bool {
        self.inner.config.persons[person].trusted && self.fault() != Some(Fault::UnconfirmedAccount)
    }

    /// Checks `timestamp`: shape and distance from our clock.
    fn check_timestamp(&self, ts: &str) -> Result<(), String> {
        let t = parse_timestamp(ts).map_err(|_| "формат timestamp".to_owned())?;
        let skew = (t.timestamp() - self.now().timestamp()).abs();
        if skew > self.inner.config.timestamp_skew_seconds {
            return Err(format!("расхождение часов {skew} с"));
        }
        Ok(())
    }

    /// Checks `client_certificate_hash` and the `client_secret` signature over `message`.
    fn check_client_signature(
        &self,
        client: &RegisteredClient,
        params: &HashMap<String, String>,
        message: &str,
    ) -> Result<(), &'static EsiaCode> {
        let Some(cert) = &client.certificate else {
            return Err(&codes::CERTIFICATE_MISMATCH);
        };
        let hash = params.get("client_certificate_hash").map(String::as_str).unwrap_or("");
        if !hash.eq_ignore_ascii_case(&cert.streebog_hash_hex()) {
            return Err(&codes::CLIENT_SECRET_WRONG);
        }
        if self.fault() == Some(Fault::BadSignature) {
            return Err(&codes::CLIENT_SECRET_WRONG);
        }
        let secret = params.get("client_secret").map(String::as_str).unwrap_or("");
        let sig = base64url_decode(secret).map_err(|_| &codes::CLIENT_SECRET_WRONG)?;
        cert.public_key().verify(message.as_bytes(), &sig).map_err(|_| &codes::CLIENT_SECRET_WRONG)
    }

    /// Issues a one-time code and sends the browser back.
    fn approve(&self, pending: &Pending, person: usize) -> Response {
        if self.fault() == Some(Fault::UserCancel) {
            return redirect_error(
                &pending.redirect_uri,
                &codes::USER_CANCELLED,
                "пользователь отказался",
                Some(&pending.state),
            );
        }
        let now = self.now().timestamp();
        let code = random_token();
        {
            let mut st = self.lock();
            st.codes.retain(|_, c| c.expires_at > now);
            if st.codes.len() >= MAX_PENDING {
                drop(st);
                return redirect_error(
                    &pending.redirect_uri,
                    &codes::OVERLOADED,
                    "слишком много кодов",
                    Some(&pending.state),
                );
            }
            st.codes.insert(
                code.clone(),
                CodeGrant {
                    client_id: pending.client_id.clone(),
                    redirect_uri: pending.redirect_uri.clone(),
                    scopes: pending.scopes.clone(),
                    person,
                    code_challenge: pending.code_challenge.clone(),
                    expires_at: now + self.inner.config.code_ttl_seconds,
                    used: false,
                    sid: uuid::Uuid::new_v4().to_string(),
                },
            );
        }
        let state = if self.fault() == Some(Fault::WrongState) {
            uuid::Uuid::new_v4().to_string()
        } else {
            pending.state.clone()
        };
        let Ok(mut url) = Url::parse(&pending.redirect_uri) else {
            return html::error_page(StatusCode::BAD_REQUEST, "Неверный адрес возврата", "");
        };
        url.query_pairs_mut().append_pair("code", &code).append_pair("state", &state);
        redirect(&url)
    }

    fn issue_tokens(&self, grant: &CodeGrant, scopes: &[String]) -> (String, String) {
        let cfg = &self.inner.config;
        let fault = self.fault();
        let person = &cfg.persons[grant.person];
        let now = self.now().timestamp();
        let (iat, exp) = if fault == Some(Fault::TokenExpired) {
            (now - 2 * cfg.token_ttl_seconds, now - cfg.token_ttl_seconds)
        } else {
            (now, now + cfg.token_ttl_seconds)
        };
        let iss = if fault == Some(Fault::WrongIss) {
            "http://evil.example/".to_owned()
        } else {
            cfg.issuer.clone()
        };
        let aud = if fault == Some(Fault::WrongAud) {
            "OTHER_SYSTEM".to_owned()
        } else {
            grant.client_id.clone()
        };
        let oid_num: Value = person
            .oid
            .parse::<u64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::from(person.oid.clone()));
        // ESIA writes person-data scopes with the subject, e.g. `fullname?oid=1000…`.
        let scope_claim = scopes
            .iter()
            .map(|s| if s == "openid" { s.clone() } else { format!("{s}?oid={}", person.oid) })
            .collect::<Vec<_>>()
            .join(" ");
        let access = json!({
            "iss": iss,
            "client_id": aud,
            "urn:esia:sbj_id": oid_num,
            "urn:esia:sid": grant.sid,
            "scope": scope_claim,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
        });
        let mut sbj = json!({
            "urn:esia:sbj:typ": "P",
            "urn:esia:sbj:oid": oid_num,
            "urn:esia:sbj:nam": format!("OID.{}", person.oid),
        });
        if self.trusted(grant.person) {
            sbj["urn:esia:sbj:is_tru"] = json!(true);
        }
        let sub =
            if fault == Some(Fault::WrongSub) { json!(9_999_999_999u64) } else { oid_num.clone() };
        let id = json!({
            "iss": iss,
            "aud": aud,
            "sub": sub,
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "auth_time": iat,
            "amr": "PWD",
            "urn:esia:amd": "PWD",
            "urn:esia:sid": grant.sid,
            "urn:esia:sbj": sbj,
        });
        if fault == Some(Fault::TokenAlgNone) {
            return (jwt::unsigned(&access), jwt::unsigned(&id));
        }
        let key = if fault == Some(Fault::TokenBadSig) {
            &self.inner.wrong_key
        } else {
            &cfg.signing_key
        };
        let header = |sbt: &str| json!({"alg": TOKEN_ALG, "typ": "JWT", "sbt": sbt, "ver": 1});
        (jwt::sign(&header("access"), &access, key), jwt::sign(&header("id"), &id, key))
    }

    /// Verifies a REST call's bearer token; returns the person and the granted scopes, or
    /// the status and message to refuse with.
    fn bearer(
        &self,
        headers: &HeaderMap,
        oid: &str,
    ) -> Result<(usize, HashSet<String>), (StatusCode, &'static str)> {
        if self.fault() == Some(Fault::ServerError) {
            return Err((StatusCode::SERVICE_UNAVAILABLE, "ESIA-007008"));
        }
        const UNAUTHORIZED: (StatusCode, &str) = (StatusCode::UNAUTHORIZED, "invalid token");
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(UNAUTHORIZED)?;
        let claims = jwt::verify(
            token,
            &self.inner.config.signing_key.verifying_key(),
            &[TOKEN_ALG.to_owned()],
        )
        .map_err(|_| UNAUTHORIZED)?;
        if claims.str("iss") != Some(self.inner.config.issuer.as_str())
            || claims.check_times(self.now().timestamp(), 0).is_err()
            || claims.str("client_id").is_none_or(|c| self.client(c).is_none())
        {
            return Err(UNAUTHORIZED);
        }
        if claims.id("urn:esia:sbj_id").as_deref() != Some(oid) {
            return Err((StatusCode::FORBIDDEN, "oid mismatch"));
        }
        let person = self.person_by_oid(oid).ok_or((StatusCode::NOT_FOUND, "no such person"))?;
        let scopes = claims
            .str("scope")
            .unwrap_or("")
            .split_whitespace()
            .map(|s| bare_scope(s).to_owned())
            .collect();
        Ok((person, scopes))
    }

    fn person_json(&self, person: usize, scopes: &HashSet<String>) -> Value {
        let p = &self.inner.config.persons[person];
        let mut v = json!({
            "trusted": self.trusted(person),
            "status": "Registered",
            "verifying": false,
        });
        if scopes.contains("fullname") {
            v["lastName"] = json!(p.last_name);
            v["firstName"] = json!(p.first_name);
            if let Some(m) = &p.middle_name {
                v["middleName"] = json!(m);
            }
        }
        if scopes.contains("birthdate") {
            v["birthDate"] = json!(esia_date(p.birth_date));
        }
        if scopes.contains("gender") {
            v["gender"] = json!(p.gender);
        }
        if scopes.contains("snils")
            && let Some(s) = &p.snils
        {
            v["snils"] = json!(s);
        }
        v
    }

    /// Contacts visible with `scopes`, with their ids.
    fn contact_list(&self, person: usize, scopes: &HashSet<String>) -> Vec<(String, Value)> {
        let p = &self.inner.config.persons[person];
        let mut out = Vec::new();
        let any = scopes.contains("contacts");
        if let Some(e) = &p.email
            && (any || scopes.contains("email"))
        {
            out.push((
                "1".to_owned(),
                json!({"id": 1, "type": "EML", "vrfStu": "VERIFIED", "value": e}),
            ));
        }
        if let Some(m) = &p.mobile
            && (any || scopes.contains("mobile"))
        {
            out.push((
                "2".to_owned(),
                json!({"id": 2, "type": "MBT", "vrfStu": "VERIFIED", "value": m}),
            ));
        }
        out
    }

    /// Kid records visible with `scopes`. The record id is the parent's oid with a two-digit
    /// suffix: like ESIA, not the child's own login oid.
    fn kid_list(&self, person: usize, scopes: &HashSet<String>) -> Vec<(String, Value)> {
        let cfg = &self.inner.config;
        let parent = &cfg.persons[person];
        let mut out = Vec::new();
        for (i, kid_id) in parent.kids.iter().enumerate() {
            let Some(k) = self.person_by_id(kid_id) else {
                continue;
            };
            let k = &cfg.persons[k];
            let id = format!("{}{:02}", parent.oid, i + 1);
            let mut v = json!({"id": id});
            if scopes.contains("kid_fullname") {
                v["lastName"] = json!(k.last_name);
                v["firstName"] = json!(k.first_name);
                if let Some(m) = &k.middle_name {
                    v["middleName"] = json!(m);
                }
            }
            if scopes.contains("kid_birthdate") {
                v["birthDate"] = json!(esia_date(k.birth_date));
            }
            if scopes.contains("kid_gender") {
                v["gender"] = json!(k.gender);
            }
            if scopes.contains("kid_snils")
                && let Some(s) = &k.snils
            {
                v["snils"] = json!(s);
            }
            out.push((id, v));
        }
        out
    }
}

async fn authorize(State(sim): State<Simulator>, RawQuery(raw): RawQuery) -> Response {
    let params = match parse_pairs(raw.as_deref().unwrap_or("")) {
        Ok(p) => p,
        Err(dup) => {
            return html::error_page(
                StatusCode::BAD_REQUEST,
                "Повторяющийся параметр запроса",
                &codes::BAD_PARAMETER.description_with(&dup),
            );
        }
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());

    // Until client_id and redirect_uri check out, the browser stays here: redirecting to an
    // unverified address would make us an open redirector.
    let Some(client) = get("client_id").and_then(|c| sim.client(c)) else {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "Неизвестная система",
            &codes::CERTIFICATE_MISMATCH.description_with("client_id не зарегистрирован"),
        );
    };
    let Some(redirect_uri) = get("redirect_uri")
        .filter(|r| client.client.redirect_uris.iter().any(|u| u == r))
        .map(str::to_owned)
    else {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "Адрес возврата не зарегистрирован",
            &codes::REDIRECT_URI_NOT_REGISTERED.description(),
        );
    };
    let state = get("state").map(str::to_owned);
    let fail = |code: &EsiaCode, detail: &str| {
        redirect_error(&redirect_uri, code, detail, state.as_deref())
    };

    for name in
        ["response_type", "scope", "timestamp", "state", "client_secret", "client_certificate_hash"]
    {
        if get(name).is_none() {
            return fail(&codes::MISSING_PARAMETER, name);
        }
    }
    if get("response_type") != Some("code") {
        return fail(&codes::UNSUPPORTED_RESPONSE_TYPE, "");
    }
    let state_value = state.clone().unwrap_or_default();
    if uuid::Uuid::parse_str(&state_value).is_err() {
        return fail(&codes::BAD_PARAMETER, "state должен быть UUID");
    }
    if let Some(a) = get("access_type")
        && a != "online"
        && a != "offline"
    {
        return fail(&codes::BAD_PARAMETER, "access_type");
    }
    let timestamp = get("timestamp").unwrap_or("");
    if let Err(detail) = sim.check_timestamp(timestamp) {
        return fail(&codes::BAD_TIMESTAMP, &detail);
    }
    let scope = get("scope").unwrap_or("");
    let scope_org = params.get("scope_org").map(String::as_str).unwrap_or("");
    let message = format!(
        "{}{scope}{scope_org}{timestamp}{state_value}{redirect_uri}",
        client.client.client_id
    );
    if let Err(code) = sim.check_client_signature(client, &params, &message) {
        return fail(code, "");
    }
    let scopes: Vec<String> = scope.split(' ').map(str::to_owned).collect();
    if scopes.iter().any(|s| !KNOWN_SCOPES.contains(&s.as_str()))
        || !scopes.iter().any(|s| s == "openid")
    {
        return fail(&codes::INVALID_SCOPE, scope);
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (Some(c), Some("S256")) if c.len() == 43 => Some(c.to_owned()),
        _ => return fail(&codes::PKCE_CHALLENGE_INVALID, "нужен S256"),
    };
    if sim.fault() == Some(Fault::ServerError) {
        return fail(&codes::OVERLOADED, "");
    }
    let now = sim.now().timestamp();
    let pending = Pending {
        client_id: client.client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scopes,
        state: state_value,
        code_challenge,
        expires_at: now + sim.inner.config.code_ttl_seconds,
    };

    if let Some(hint) = get("login_hint") {
        return match sim.person_by_id(hint) {
            Some(p) => sim.approve(&pending, p),
            None => html::error_page(
                StatusCode::BAD_REQUEST,
                "Неизвестная персона в login_hint",
                &format!(
                    "Известные персоны: {}",
                    sim.inner
                        .config
                        .persons
                        .iter()
                        .map(|p| p.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        };
    }

    let request_id = random_token();
    {
        let mut st = sim.lock();
        st.pending.retain(|_, p| p.expires_at > now);
        if st.pending.len() >= MAX_PENDING {
            drop(st);
            return fail(&codes::OVERLOADED, "");
        }
        st.pending.insert(request_id.clone(), pending.clone());
    }
    html::picker(&request_id, &pending.client_id, &pending.scopes, &sim.inner.config.persons)
}

#[derive(Deserialize)]
struct ConsentForm {
    request_id: String,
    #[serde(default)]
    person: Option<String>,
    decision: String,
}

async fn consent(
    State(sim): State<Simulator>,
    axum::Form(form): axum::Form<ConsentForm>,
) -> Response {
    let now = sim.now().timestamp();
    // Single use: a second submit of the same picker finds nothing.
    let pending = sim.lock().pending.remove(&form.request_id);
    let Some(pending) = pending.filter(|p| p.expires_at > now) else {
        return html::error_page(
            StatusCode::BAD_REQUEST,
            "Запрос на вход устарел",
            "Вернитесь на сайт системы и начните вход заново.",
        );
    };
    match form.decision.as_str() {
        "deny" => redirect_error(
            &pending.redirect_uri,
            &codes::USER_CANCELLED,
            "пользователь отказался",
            Some(&pending.state),
        ),
        "allow" => match form.person.as_deref().and_then(|p| sim.person_by_id(p)) {
            Some(p) => sim.approve(&pending, p),
            None => {
                // Put it back so the person can choose again.
                sim.lock().pending.insert(form.request_id, pending.clone());
                html::error_page(
                    StatusCode::BAD_REQUEST,
                    "Не выбран пользователь",
                    "Вернитесь назад и выберите, кем войти.",
                )
            }
        },
        _ => html::error_page(StatusCode::BAD_REQUEST, "Неверный ответ формы", ""),
    }
}

async fn token(State(sim): State<Simulator>, headers: HeaderMap, body: String) -> Response {
    if sim.fault() == Some(Fault::Slow) {
        tokio::time::sleep(SLOW_DELAY).await;
    }
    if sim.fault() == Some(Fault::ServerError) {
        return te_error(StatusCode::SERVICE_UNAVAILABLE, &codes::OVERLOADED, "", None);
    }
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form_type {
        return te_error(
            StatusCode::BAD_REQUEST,
            &codes::BAD_PARAMETER,
            "нужен application/x-www-form-urlencoded",
            None,
        );
    }
    let params = match parse_pairs(&body) {
        Ok(p) => p,
        Err(dup) => return te_error(StatusCode::BAD_REQUEST, &codes::BAD_PARAMETER, &dup, None),
    };
    let get = |k: &str| params.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let state = get("state");
    let fail =
        |code: &EsiaCode, detail: &str| te_error(StatusCode::BAD_REQUEST, code, detail, state);

    if get("grant_type") != Some("authorization_code") {
        return fail(&codes::UNSUPPORTED_GRANT_TYPE, "");
    }
    for name in [
        "client_id",
        "code",
        "client_secret",
        "state",
        "redirect_uri",
        "scope",
        "timestamp",
        "client_certificate_hash",
    ] {
        if get(name).is_none() {
            return fail(&codes::MISSING_PARAMETER, name);
        }
    }
    if get("token_type").is_some_and(|t| t != "Bearer") {
        return fail(&codes::BAD_PARAMETER, "token_type");
    }
    let Some(client) = get("client_id").and_then(|c| sim.client(c)) else {
        return fail(&codes::CERTIFICATE_MISMATCH, "client_id не зарегистрирован");
    };
    let timestamp = get("timestamp").unwrap_or("");
    if let Err(detail) = sim.check_timestamp(timestamp) {
        return fail(&codes::BAD_TIMESTAMP, &detail);
    }
    let scope = get("scope").unwrap_or("");
    let scope_org = params.get("scope_org").map(String::as_str).unwrap_or("");
    let redirect_uri = get("redirect_uri").unwrap_or("");
    let code = get("code").unwrap_or("");
    let message = format!(
        "{}{scope}{scope_org}{timestamp}{}{redirect_uri}{code}",
        client.client.client_id,
        state.unwrap_or("")
    );
    if let Err(c) = sim.check_client_signature(client, &params, &message) {
        return fail(c, "");
    }

    let now = sim.now().timestamp();
    let fault = sim.fault();
    let grant = {
        let mut st = sim.lock();
        let Some(grant) = st.codes.get_mut(code) else {
            return fail(&codes::CODE_INVALID, "код не найден");
        };
        if grant.client_id != client.client.client_id || grant.redirect_uri != redirect_uri {
            return fail(&codes::CODE_INVALID, "код выдан другой системе или адресу");
        }
        if grant.expires_at <= now || fault == Some(Fault::ExpiredCode) {
            return fail(&codes::CODE_INVALID, "код просрочен");
        }
        if grant.used && fault != Some(Fault::ReusedCode) {
            return fail(&codes::CODE_INVALID, "код уже использован");
        }
        // Consumed even if a later check fails: a code gets one attempt.
        grant.used = true;
        CodeGrant {
            client_id: grant.client_id.clone(),
            redirect_uri: grant.redirect_uri.clone(),
            scopes: grant.scopes.clone(),
            person: grant.person,
            code_challenge: grant.code_challenge.clone(),
            expires_at: grant.expires_at,
            used: true,
            sid: grant.sid.clone(),
        }
    };
    if let Some(challenge) = &grant.code_challenge {
        match get("code_verifier") {
            Some(v) if ct_eq(&pkce_challenge(v), challenge) => {}
            _ => return fail(&codes::PKCE_VERIFIER_MISMATCH, ""),
        }
    }
    let requested: Vec<String> = scope.split(' ').map(str::to_owned).collect();
    if requested.iter().any(|s| !grant.scopes.contains(s)) {
        return fail(&codes::INVALID_SCOPE, "scope шире выданного");
    }
    let (access_token, id_token) = sim.issue_tokens(&grant, &requested);
    let echoed = if fault == Some(Fault::StateMismatchToken) {
        uuid::Uuid::new_v4().to_string()
    } else {
        state.unwrap_or("").to_owned()
    };
    json_response(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "id_token": id_token,
            "token_type": "Bearer",
            "expires_in": sim.inner.config.token_ttl_seconds,
            "state": echoed,
        }),
    )
}

fn host_base(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn wants_embed(raw: Option<&str>) -> bool {
    raw.is_some_and(|q| {
        url::form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "embed" && v == "(elements)")
    })
}

fn collection(
    headers: &HeaderMap,
    path: &str,
    items: Vec<(String, Value)>,
    embed: bool,
) -> Response {
    let base = host_base(headers);
    let elements: Vec<Value> = items
        .into_iter()
        .map(|(id, v)| if embed { v } else { json!(format!("{base}{path}/{id}")) })
        .collect();
    json_response(
        StatusCode::OK,
        json!({"stateFacts": ["hasSize"], "size": elements.len(), "elements": elements}),
    )
}

async fn prns(
    State(sim): State<Simulator>,
    Path(oid): Path<String>,
    headers: HeaderMap,
) -> Response {
    match sim.bearer(&headers, &oid) {
        Ok((p, scopes)) => json_response(StatusCode::OK, sim.person_json(p, &scopes)),
        Err((status, message)) => rest_error(status, message),
    }
}

async fn contacts(
    State(sim): State<Simulator>,
    Path(oid): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match sim.bearer(&headers, &oid) {
        Ok((p, scopes)) => collection(
            &headers,
            &format!("/rs/prns/{oid}/ctts"),
            sim.contact_list(p, &scopes),
            wants_embed(q.as_deref()),
        ),
        Err((status, message)) => rest_error(status, message),
    }
}

async fn contact(
    State(sim): State<Simulator>,
    Path((oid, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match sim.bearer(&headers, &oid) {
        Ok((p, scopes)) => match sim.contact_list(p, &scopes).into_iter().find(|(i, _)| *i == id) {
            Some((_, v)) => json_response(StatusCode::OK, v),
            None => rest_error(StatusCode::NOT_FOUND, "no such contact"),
        },
        Err((status, message)) => rest_error(status, message),
    }
}

fn has_kid_scope(scopes: &HashSet<String>) -> bool {
    scopes.iter().any(|s| s.starts_with("kid_"))
}

async fn kids(
    State(sim): State<Simulator>,
    Path(oid): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    match sim.bearer(&headers, &oid) {
        Ok((_, scopes)) if !has_kid_scope(&scopes) => {
            rest_error(StatusCode::FORBIDDEN, "no kid_* scope granted")
        }
        Ok((p, scopes)) => collection(
            &headers,
            &format!("/rs/prns/{oid}/kids"),
            sim.kid_list(p, &scopes),
            wants_embed(q.as_deref()),
        ),
        Err((status, message)) => rest_error(status, message),
    }
}

async fn kid(
    State(sim): State<Simulator>,
    Path((oid, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match sim.bearer(&headers, &oid) {
        Ok((_, scopes)) if !has_kid_scope(&scopes) => {
            rest_error(StatusCode::FORBIDDEN, "no kid_* scope granted")
        }
        Ok((p, scopes)) => match sim.kid_list(p, &scopes).into_iter().find(|(i, _)| *i == id) {
            Some((_, v)) => json_response(StatusCode::OK, v),
            None => rest_error(StatusCode::NOT_FOUND, "no such kid"),
        },
        Err((status, message)) => rest_error(status, message),
    }
}

async fn logout(State(sim): State<Simulator>, RawQuery(raw): RawQuery) -> Response {
    let params = parse_pairs(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let target = params.get("client_id").and_then(|c| sim.client(c)).and_then(|c| {
        let r = params.get("redirect_url")?;
        c.client.logout_redirect_uris.iter().any(|u| u == r).then(|| Url::parse(r).ok()).flatten()
    });
    match target {
        Some(url) => redirect(&url),
        None => html::page(
            StatusCode::OK,
            "Вы вышли",
            "<p>Вы вышли из симулятора ЕСИА. Окно можно закрыть.</p>",
        ),
    }
}

async fn certificate(State(sim): State<Simulator>) -> Response {
    ([(header::CONTENT_TYPE, "application/x-pem-file")], sim.certificate_pem()).into_response()
}

async fn health(State(sim): State<Simulator>) -> Response {
    json_response(
        StatusCode::OK,
        json!({"status": "ok", "issuer": sim.issuer(), "fault": sim.fault().map(Fault::name)}),
    )
}

async fn get_fault(State(sim): State<Simulator>) -> Response {
    json_response(StatusCode::OK, json!({"fault": sim.fault().map(Fault::name)}))
}

async fn post_fault(State(sim): State<Simulator>, body: String) -> Response {
    let parsed: Result<Option<Fault>, String> = serde_json::from_str::<Value>(&body)
        .map_err(|e| e.to_string())
        .and_then(|v| match v.get("fault") {
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s.parse().map(Some).map_err(|e: EsiaError| e.to_string()),
            _ => Err("expected {\"fault\": \"name\" | null}".to_owned()),
        });
    match parsed {
        Ok(f) => {
            sim.set_fault(f);
            json_response(StatusCode::OK, json!({"fault": f.map(Fault::name)}))
        }
        Err(e) => json_response(StatusCode::BAD_REQUEST, json!({"error": e})),
    }
}

/// Serves `sim` on `listener` until the task is dropped or the listener fails.
pub async fn serve(listener: tokio::net::TcpListener, sim: Simulator) -> std::io::Result<()> {
    axum::serve(listener, sim.router()).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn faults_parse_from_their_names() {
        for f in Fault::ALL {
            assert_eq!(f.name().parse::<Fault>().unwrap(), *f);
            assert_eq!(f.to_string(), f.name());
            assert_eq!(serde_json::to_value(f).unwrap(), json!(f.name()));
        }
        assert!("nope".parse::<Fault>().is_err());
        assert!("ExpiredCode".parse::<Fault>().is_err());
        // Every fault the brief names is there.
        for name in [
            "expired_code",
            "reused_code",
            "wrong_state",
            "state_mismatch_token",
            "bad_signature",
            "token_bad_sig",
            "token_expired",
            "wrong_iss",
            "wrong_aud",
            "user_cancel",
            "server_error",
            "unconfirmed_account",
        ] {
            assert!(name.parse::<Fault>().is_ok(), "{name}");
        }
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        assert_eq!(parse_pairs("a=1&b=2").unwrap().len(), 2);
        assert_eq!(parse_pairs("a=1&a=2").unwrap_err(), "a");
        assert_eq!(parse_pairs("t=a%2Bb+c").unwrap()["t"], "a+b c");
    }

    #[test]
    fn scopes_lose_their_subject_suffix() {
        assert_eq!(bare_scope("fullname?oid=1"), "fullname");
        assert_eq!(bare_scope("openid"), "openid");
    }
}
