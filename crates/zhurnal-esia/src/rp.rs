//! The relying party: builds the authorization request, checks the callback, exchanges the code,
//! verifies the tokens and reads the person's data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone as _, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use url::Url;
use zhurnal_gost::{Certificate, base64url_nopad};

use crate::jwt::{self, VerifiedClaims};
use crate::signer::{Signer, signer_from_config};
use crate::wire::{self, ct_eq, encode_pairs, format_timestamp};
use crate::{EsiaConfig, EsiaError, codes};

/// Path of the v2 authorization endpoint.
pub const AUTHORIZE_PATH: &str = "aas/oauth2/v2/ac";
/// Path of the v3 token endpoint.
pub const TOKEN_PATH: &str = "aas/oauth2/v3/te";
/// Path of ESIA's logout.
pub const LOGOUT_PATH: &str = "idp/ext/Logout";

/// Responses larger than this are refused (ESIA's are a few kilobytes).
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// Callback `code`s longer than this are not ESIA's (they are a few hundred characters).
const MAX_CODE_LEN: usize = 4096;
/// How long an exchanged code is remembered to refuse a replay before calling ESIA. Longer
/// than any code lifetime ESIA could allow (ASVS caps it at 10 minutes).
const CONSUMED_CODE_TTL_SECONDS: i64 = 15 * 60;
/// Marker appended to the PKCE verifier when the parent's kid scopes were requested (see
/// [`AuthorizationRequest::code_verifier`]). `~` never occurs in base64url, so it is unambiguous.
const KID_SCOPES_MARKER: &str = "~kids";

/// What the login flow must remember server-side until the callback.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// Where to send the browser.
    pub url: Url,
    /// The `state` sent to ESIA; compare with the callback's via
    /// [`IdentityProvider::parse_callback`]. Single use.
    pub state: String,
    /// The PKCE verifier. Opaque: store it verbatim and pass it to
    /// [`IdentityProvider::exchange_code`]. It also records whether the kid scopes were
    /// requested, so the token request can repeat the same `scope`; it never reaches the
    /// browser (only its S256 hash does).
    pub code_verifier: String,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url.path())
            .field("state", &self.state)
            .field("code_verifier", &"…")
            .finish()
    }
}

/// A verified code exchange. Built only from tokens whose signature, issuer, audience, times,
/// state and subject have been checked.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedLogin {
    /// ESIA object id of the person.
    pub oid: String,
    /// `urn:esia:sbj:is_tru` was present and true in the id_token: a confirmed account.
    pub trusted: bool,
    /// For the REST calls; keep it server-side.
    pub access_token: String,
    /// The access token's `exp`.
    pub expires_at: DateTime<Utc>,
    /// Granted scopes from the access token (normalised: `fullname?oid=…` → `fullname`); the
    /// requested scopes when the token carries none.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for VerifiedLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedLogin")
            .field("oid", &self.oid)
            .field("trusted", &self.trusted)
            .field("access_token", &"…")
            .field("expires_at", &self.expires_at)
            .field("scopes", &self.scopes)
            .finish()
    }
}

/// `/rs/prns/{oid}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsiaPerson {
    /// ESIA object id.
    pub oid: String,
    /// Фамилия.
    pub last_name: String,
    /// Имя.
    pub first_name: String,
    /// Отчество.
    pub middle_name: Option<String>,
    /// From `dd.MM.yyyy`; `None` without the `birthdate` scope.
    pub birth_date: Option<NaiveDate>,
    /// `M`/`F` as ESIA sends it.
    pub gender: Option<String>,
    /// As ESIA sends it, `XXX-XXX-XXX YY`; `None` without the `snils` scope.
    pub snils: Option<String>,
    /// Confirmed account: the id_token **and** `/rs/prns` both say so.
    pub trusted: bool,
}

/// One element of `/rs/prns/{oid}/ctts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsiaContact {
    /// `EML` (e-mail), `MBT` (mobile), `PHN`, `CEM`…
    pub kind: String,
    /// The address or number.
    pub value: String,
    /// `vrfStu` = `VERIFIED`.
    pub verified: bool,
}

/// One element of `/rs/prns/{oid}/kids`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EsiaKid {
    /// The child record's id in the parent's profile — not necessarily the child's own oid.
    pub id: String,
    /// Фамилия.
    pub last_name: String,
    /// Имя.
    pub first_name: String,
    /// Отчество.
    pub middle_name: Option<String>,
    /// From `dd.MM.yyyy`.
    pub birth_date: Option<NaiveDate>,
    /// `M`/`F`.
    pub gender: Option<String>,
    /// `XXX-XXX-XXX YY`; `None` without the `kid_snils` scope.
    pub snils: Option<String>,
}

/// ESIA as the web crate sees it; [`EsiaClient`] is the real one, tests may fake it.
#[async_trait::async_trait]
pub trait IdentityProvider: Send + Sync + 'static {
    /// Builds the v2 authorization URL: PKCE S256, a fresh UUID v4 `state`, `client_secret`
    /// signed over `client_id + scope + scope_org + timestamp + state + redirect_uri`,
    /// `timestamp` as `yyyy.MM.dd HH:mm:ss +0000` percent-encoded. `login_hint` is passed
    /// through (OIDC); `with_kid_scopes` adds the parent's kid scopes.
    ///
    /// Signing may block briefly (an external signer runs a process).
    fn authorization_request(
        &self,
        login_hint: Option<&str>,
        with_kid_scopes: bool,
        now: DateTime<Utc>,
    ) -> Result<AuthorizationRequest, EsiaError>;

    /// Parses the callback query: `Ok(code)`, or [`EsiaError::Callback`] for
    /// `error`/`error_description`, [`EsiaError::Unavailable`] for ESIA-007008, and
    /// [`EsiaError::StateMismatch`] when `state` is missing or differs from `expected_state`
    /// (compared in constant time). An error callback without any `state` is reported as the
    /// error (ESIA may omit it); with a wrong `state` it is a mismatch.
    fn parse_callback(
        &self,
        query: &HashMap<String, String>,
        expected_state: &str,
    ) -> Result<String, EsiaError>;

    /// The v3/te exchange and the verification of both tokens.
    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedLogin, EsiaError>;

    /// `GET /rs/prns/{oid}`.
    async fn person(&self, login: &VerifiedLogin) -> Result<EsiaPerson, EsiaError>;

    /// `GET /rs/prns/{oid}/ctts?embed=(elements)`.
    async fn contacts(&self, login: &VerifiedLogin) -> Result<Vec<EsiaContact>, EsiaError>;

    /// `GET /rs/prns/{oid}/kids?embed=(elements)`; an empty list when the person has no kids.
    async fn kids(&self, login: &VerifiedLogin) -> Result<Vec<EsiaKid>, EsiaError>;

    /// `{base}/idp/ext/Logout?client_id=…&redirect_url=…`.
    fn logout_url(&self) -> Url;
}

/// The real ESIA (or the simulator) over HTTP.
pub struct EsiaClient {
    config: EsiaConfig,
    signer: Arc<dyn Signer>,
    esia_key: zhurnal_gost::VerifyingKey,
    http: reqwest::Client,
    /// SHA-256 of exchanged codes → when to forget them.
    consumed_codes: Mutex<HashMap<[u8; 32], i64>>,
}

impl std::fmt::Debug for EsiaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EsiaClient")
            .field("base_url", &self.config.base_url.as_str())
            .field("client_id", &self.config.client_id)
            .finish_non_exhaustive()
    }
}

fn join(base: &Url, path: &str) -> Result<Url, EsiaError> {
    base.join(path).map_err(|e| EsiaError::Config(format!("cannot join {path} to {base}: {e}")))
}

fn timestamp_of(secs: i64) -> Result<DateTime<Utc>, EsiaError> {
    Utc.timestamp_opt(secs, 0).single().ok_or(EsiaError::InvalidToken { reason: "malformed" })
}

/// `fullname?oid=1000…` and `http://esia.gosuslugi.ru/fullname` → `fullname`. ESIA's exact
/// spelling of granted scopes in the token is unconfirmed; both forms appear in clients.
fn normalise_scope(s: &str) -> String {
    let s = s.split('?').next().unwrap_or(s);
    s.rsplit('/').next().unwrap_or(s).to_owned()
}

fn parse_esia_date(v: Option<&Value>) -> Result<Option<NaiveDate>, EsiaError> {
    match v.and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%d.%m.%Y")
            .map(Some)
            .map_err(|_| EsiaError::Protocol(format!("birthDate {s:?} is not dd.MM.yyyy"))),
    }
}

fn opt_str(v: &Value, name: &str) -> Option<String> {
    v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn req_str(v: &Value, name: &str, what: &str) -> Result<String, EsiaError> {
    opt_str(v, name).ok_or_else(|| EsiaError::Protocol(format!("{what} has no {name}")))
}

async fn read_limited(mut resp: reqwest::Response) -> Result<Vec<u8>, EsiaError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| EsiaError::Unavailable(format!("reading ESIA response: {e}")))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(EsiaError::Protocol("ESIA response too large".into()));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    id_token: String,
    state: String,
    #[serde(default)]
    token_type: Option<String>,
}

#[derive(Deserialize, Default)]
struct OAuthErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

impl EsiaClient {
    /// Loads the signer and ESIA's certificate named by `config` and prepares the HTTP client.
    pub fn new(config: EsiaConfig) -> Result<Self, EsiaError> {
        let signer = signer_from_config(&config.signer, config.certificate_hash.as_deref())?;
        let path = &config.esia_certificate_path;
        let pem = std::fs::read_to_string(path).map_err(|e| {
            EsiaError::Config(format!("cannot read ESIA certificate {}: {e}", path.display()))
        })?;
        let cert = Certificate::from_pem(&pem).map_err(|e| {
            EsiaError::Config(format!("cannot parse ESIA certificate {}: {e}", path.display()))
        })?;
        Self::from_parts(config, signer, &cert)
    }

    /// Like [`Self::new`] with the signer and ESIA's certificate supplied directly (tests,
    /// tooling). `config.signer` and `config.esia_certificate_path` are ignored.
    pub fn from_parts(
        config: EsiaConfig,
        signer: Arc<dyn Signer>,
        esia_certificate: &Certificate,
    ) -> Result<Self, EsiaError> {
        if config.client_id.trim().is_empty() {
            return Err(EsiaError::Config("client_id is empty".into()));
        }
        if !config.scopes.iter().any(|s| s == "openid") {
            return Err(EsiaError::Config(
                "scopes must include openid (the id_token carries the confirmation flag)".into(),
            ));
        }
        if config
            .scopes
            .iter()
            .chain(&config.kid_scopes)
            .any(|s| s.is_empty() || s.contains(char::is_whitespace))
        {
            return Err(EsiaError::Config("a scope is empty or contains a space".into()));
        }
        if config.jwt_algorithms.is_empty()
            || config.jwt_algorithms.iter().any(|a| a.eq_ignore_ascii_case("none"))
        {
            return Err(EsiaError::Config(
                "jwt_algorithms must be non-empty and must not contain none".into(),
            ));
        }
        if config.issuer.is_empty() {
            return Err(EsiaError::Config("issuer is empty".into()));
        }
        if !(0..=600).contains(&config.leeway_seconds) {
            return Err(EsiaError::Config("leeway_seconds must be 0..=600".into()));
        }
        if config.base_url.cannot_be_a_base() {
            return Err(EsiaError::Config("base_url cannot be a base URL".into()));
        }
        if !config.base_url.path().ends_with('/') {
            // Url::join would drop the last path segment.
            return Err(EsiaError::Config("base_url must end with /".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.http_timeout_seconds.max(1)))
            // ESIA's API does not redirect; following one would send our bearer token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("zhurnal-esia/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EsiaError::Config(format!("HTTP client: {e}")))?;
        Ok(EsiaClient {
            esia_key: esia_certificate.public_key().clone(),
            config,
            signer,
            http,
            consumed_codes: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EsiaConfig {
        &self.config
    }

    fn scope_string(&self, with_kid_scopes: bool) -> String {
        let mut scopes: Vec<&str> = self.config.scopes.iter().map(String::as_str).collect();
        if with_kid_scopes {
            for s in &self.config.kid_scopes {
                if !scopes.contains(&s.as_str()) {
                    scopes.push(s);
                }
            }
        }
        scopes.join(" ")
    }

    /// Records `code` as exchanged; false if it already was (within the TTL).
    fn consume_code(&self, code: &str, now: i64) -> bool {
        let digest: [u8; 32] = Sha256::digest(code.as_bytes()).into();
        let mut seen = match self.consumed_codes.lock() {
            Ok(g) => g,
            // A panic elsewhere while holding the lock leaves a still-valid map.
            Err(poisoned) => poisoned.into_inner(),
        };
        seen.retain(|_, forget_at| *forget_at > now);
        if seen.contains_key(&digest) {
            return false;
        }
        seen.insert(digest, now + CONSUMED_CODE_TTL_SECONDS);
        true
    }

    fn check_common(&self, claims: &VerifiedClaims, now: i64) -> Result<(), EsiaError> {
        // Exact match: one issuer per deployment is our mix-up defence.
        if claims.str("iss") != Some(self.config.issuer.as_str()) {
            return Err(EsiaError::InvalidToken { reason: "wrong_issuer" });
        }
        claims.check_times(now, self.config.leeway_seconds)
    }

    fn verify_access_token(&self, token: &str, now: i64) -> Result<VerifiedClaims, EsiaError> {
        let claims = jwt::verify(token, &self.esia_key, &self.config.jwt_algorithms)?;
        self.check_common(&claims, now)?;
        if claims.str("client_id") != Some(self.config.client_id.as_str()) {
            return Err(EsiaError::InvalidToken { reason: "wrong_audience" });
        }
        Ok(claims)
    }

    fn verify_id_token(&self, token: &str, now: i64) -> Result<VerifiedClaims, EsiaError> {
        let claims = jwt::verify(token, &self.esia_key, &self.config.jwt_algorithms)?;
        self.check_common(&claims, now)?;
        let ours = self.config.client_id.as_str();
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => a == ours,
            // RFC 7519 allows an array; then we must be in it, and alone or named by azp.
            Some(Value::Array(list)) => {
                list.iter().any(|a| a.as_str() == Some(ours))
                    && (list.len() == 1 || claims.str("azp") == Some(ours))
            }
            _ => false,
        };
        if !aud_ok {
            return Err(EsiaError::InvalidToken { reason: "wrong_audience" });
        }
        Ok(claims)
    }

    async fn exchange_inner(
        &self,
        code: &str,
        code_verifier: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedLogin, EsiaError> {
        let with_kids = code_verifier.ends_with(KID_SCOPES_MARKER);
        let scope = self.scope_string(with_kids);
        let state = uuid::Uuid::new_v4().to_string();
        let timestamp = format_timestamp(now);
        let redirect_uri = self.config.redirect_uri.as_str();
        let message =
            format!("{}{scope}{timestamp}{state}{redirect_uri}{code}", self.config.client_id);
        let signer = Arc::clone(&self.signer);
        let (sig, hash) = tokio::task::spawn_blocking(move || {
            signer.sign(message.as_bytes()).map(|s| (s, signer.certificate_hash()))
        })
        .await
        .map_err(|e| EsiaError::Signer(format!("signing task failed: {e}")))??;
        let client_secret = base64url_nopad(&sig);
        let body = encode_pairs([
            ("client_id", self.config.client_id.as_str()),
            ("code", code),
            ("grant_type", "authorization_code"),
            ("client_secret", client_secret.as_str()),
            ("state", state.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", scope.as_str()),
            ("timestamp", timestamp.as_str()),
            ("token_type", "Bearer"),
            ("client_certificate_hash", hash.as_str()),
            ("code_verifier", code_verifier),
        ]);
        let url = join(&self.config.base_url, TOKEN_PATH)?;
        let resp = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| EsiaError::Unavailable(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let bytes = read_limited(resp).await?;
        if status.is_server_error() {
            return Err(EsiaError::Unavailable(format!(
                "token endpoint answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let err: OAuthErrorBody = serde_json::from_slice(&bytes).unwrap_or_default();
            if codes::code_in(&err.error_description)
                .as_deref()
                .and_then(codes::lookup)
                .is_some_and(|c| c.transient)
            {
                return Err(EsiaError::Unavailable(err.error_description));
            }
            return Err(EsiaError::TokenEndpoint {
                status: status.as_u16(),
                error: err.error,
                description: err.error_description,
            });
        }
        let tokens: TokenResponse = serde_json::from_slice(&bytes)
            .map_err(|e| EsiaError::Protocol(format!("token response: {e}")))?;
        if tokens.token_type.as_deref().is_some_and(|t| !t.eq_ignore_ascii_case("bearer")) {
            return Err(EsiaError::Protocol("token_type is not Bearer".into()));
        }
        if !ct_eq(&tokens.state, &state) {
            return Err(EsiaError::InvalidToken { reason: "state_mismatch" });
        }

        let now_s = now.timestamp();
        let access = self.verify_access_token(&tokens.access_token, now_s)?;
        let id = self.verify_id_token(&tokens.id_token, now_s)?;
        let oid =
            access.id("urn:esia:sbj_id").ok_or(EsiaError::InvalidToken { reason: "malformed" })?;
        if oid.len() > 64 || !oid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(EsiaError::InvalidToken { reason: "malformed" });
        }
        if id.id("sub").as_deref() != Some(oid.as_str()) {
            return Err(EsiaError::InvalidToken { reason: "subject_mismatch" });
        }
        let sbj = id.get("urn:esia:sbj");
        if let Some(sbj_oid) = sbj.and_then(|s| s.get("urn:esia:sbj:oid")).and_then(jwt::id_value)
            && sbj_oid != oid
        {
            return Err(EsiaError::InvalidToken { reason: "subject_mismatch" });
        }
        // Whether ESIA writes the flag as a boolean or a string is unconfirmed; accept both.
        let trusted =
            matches!(sbj.and_then(|s| s.get("urn:esia:sbj:is_tru")), Some(Value::Bool(true)))
                || sbj
                    .and_then(|s| s.get("urn:esia:sbj:is_tru"))
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("true"));
        let exp =
            access.numeric_date("exp")?.ok_or(EsiaError::InvalidToken { reason: "malformed" })?;
        let scopes = match access.str("scope") {
            Some(s) if !s.trim().is_empty() => s.split_whitespace().map(normalise_scope).collect(),
            _ => scope.split(' ').map(str::to_owned).collect(),
        };
        Ok(VerifiedLogin {
            oid,
            trusted,
            access_token: tokens.access_token,
            expires_at: timestamp_of(exp)?,
            scopes,
        })
    }

    fn rest_url(&self, oid: &str, tail: &[&str], embed: bool) -> Result<Url, EsiaError> {
        let mut url = join(&self.config.base_url, "rs/prns/")?;
        {
            let mut segs = url
                .path_segments_mut()
                .map_err(|_| EsiaError::Config("base_url cannot be a base URL".into()))?;
            segs.pop_if_empty().push(oid);
            for t in tail {
                segs.push(t);
            }
        }
        if embed {
            url.set_query(Some("embed=(elements)"));
        }
        Ok(url)
    }

    async fn get_json(&self, login: &VerifiedLogin, url: Url) -> Result<Value, EsiaError> {
        let path = url.path().to_owned();
        let resp = self
            .http
            .get(url)
            .bearer_auth(&login.access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| EsiaError::Unavailable(format!("{path}: {e}")))?;
        let status = resp.status();
        let bytes = read_limited(resp).await?;
        if status.is_server_error() {
            return Err(EsiaError::Unavailable(format!(
                "{path} answered HTTP {}",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            let hint = match status.as_u16() {
                401 => " (access token refused)",
                403 => " (scope not granted)",
                _ => "",
            };
            return Err(EsiaError::Protocol(format!(
                "{path} answered HTTP {}{hint}",
                status.as_u16()
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| EsiaError::Protocol(format!("{path}: {e}")))
    }

    /// The objects of a collection: inline with `embed=(elements)`, or fetched one by one when
    /// ESIA sends element URLs anyway — only from ESIA's own origin, since a URL in a response
    /// must not make us send the bearer token elsewhere.
    async fn collection(
        &self,
        login: &VerifiedLogin,
        tail: &[&str],
    ) -> Result<Vec<Value>, EsiaError> {
        let url = self.rest_url(&login.oid, tail, true)?;
        let body = self.get_json(login, url).await?;
        let elements = match body.get("elements") {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(a)) => a.clone(),
            Some(_) => return Err(EsiaError::Protocol("elements is not an array".into())),
        };
        let mut out = Vec::with_capacity(elements.len());
        for e in elements {
            match e {
                Value::Object(_) => out.push(e),
                Value::String(u) => {
                    let url = Url::parse(&u)
                        .or_else(|_| self.config.base_url.join(&u))
                        .map_err(|_| EsiaError::Protocol(format!("bad element URL {u:?}")))?;
                    if url.origin() != self.config.base_url.origin() {
                        return Err(EsiaError::Protocol(format!(
                            "element URL {u:?} is not on ESIA's origin"
                        )));
                    }
                    out.push(self.get_json(login, url).await?);
                }
                _ => return Err(EsiaError::Protocol("bad collection element".into())),
            }
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl IdentityProvider for EsiaClient {
    fn authorization_request(
        &self,
        login_hint: Option<&str>,
        with_kid_scopes: bool,
        now: DateTime<Utc>,
    ) -> Result<AuthorizationRequest, EsiaError> {
        let scope = self.scope_string(with_kid_scopes);
        let state = uuid::Uuid::new_v4().to_string();
        let timestamp = format_timestamp(now);
        let redirect_uri = self.config.redirect_uri.as_str();
        let scope_org = "";
        let message =
            format!("{}{scope}{scope_org}{timestamp}{state}{redirect_uri}", self.config.client_id);
        let client_secret = base64url_nopad(&self.signer.sign(message.as_bytes())?);
        let mut code_verifier = wire::pkce_verifier();
        if with_kid_scopes {
            code_verifier.push_str(KID_SCOPES_MARKER);
        }
        let code_challenge = wire::pkce_challenge(&code_verifier);
        let hash = self.signer.certificate_hash();
        let mut pairs = vec![
            ("client_id", self.config.client_id.as_str()),
            ("client_secret", client_secret.as_str()),
            ("redirect_uri", redirect_uri),
            ("scope", scope.as_str()),
            ("response_type", "code"),
            ("state", state.as_str()),
            ("timestamp", timestamp.as_str()),
            ("access_type", "online"),
            ("client_certificate_hash", hash.as_str()),
            ("code_challenge", code_challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        if let Some(hint) = login_hint {
            pairs.push(("login_hint", hint));
        }
        let mut url = join(&self.config.base_url, AUTHORIZE_PATH)?;
        url.set_query(Some(&encode_pairs(pairs)));
        Ok(AuthorizationRequest { url, state, code_verifier })
    }

    fn parse_callback(
        &self,
        query: &HashMap<String, String>,
        expected_state: &str,
    ) -> Result<String, EsiaError> {
        let state = query.get("state");
        if let Some(error) = query.get("error") {
            if let Some(s) = state
                && !ct_eq(s, expected_state)
            {
                return Err(EsiaError::StateMismatch);
            }
            let description = query.get("error_description").cloned().unwrap_or_default();
            let code = codes::code_in(&description);
            if code.as_deref().and_then(codes::lookup).is_some_and(|c| c.transient) {
                return Err(EsiaError::Unavailable(description));
            }
            return Err(EsiaError::Callback { code, error: error.clone(), description });
        }
        match state {
            Some(s) if !expected_state.is_empty() && ct_eq(s, expected_state) => {}
            _ => return Err(EsiaError::StateMismatch),
        }
        match query.get("code") {
            Some(c) if !c.is_empty() && c.len() <= MAX_CODE_LEN => Ok(c.clone()),
            _ => Err(EsiaError::Protocol("callback carries no usable code".into())),
        }
    }

    async fn exchange_code(
        &self,
        code: &str,
        code_verifier: &str,
        now: DateTime<Utc>,
    ) -> Result<VerifiedLogin, EsiaError> {
        if code.is_empty() || code.len() > MAX_CODE_LEN || code_verifier.is_empty() {
            return Err(EsiaError::Protocol("empty or oversized code".into()));
        }
        // Refuse a replay before ESIA sees it; a failed exchange also consumes the code, as
        // ESIA does.
        if !self.consume_code(code, now.timestamp()) {
            return Err(EsiaError::InvalidToken { reason: "code_replayed" });
        }
        let result = self.exchange_inner(code, code_verifier, now).await;
        match &result {
            Ok(login) => {
                tracing::info!(oid = %login.oid, trusted = login.trusted, "ESIA login verified")
            }
            Err(e) => {
                tracing::info!(reason = e.reason_code(), error = %e, "ESIA code exchange failed")
            }
        }
        result
    }

    async fn person(&self, login: &VerifiedLogin) -> Result<EsiaPerson, EsiaError> {
        let url = self.rest_url(&login.oid, &[], false)?;
        let v = self.get_json(login, url).await?;
        let prns_trusted = v.get("trusted").and_then(Value::as_bool).unwrap_or(false);
        if login.trusted != prns_trusted {
            tracing::warn!(
                oid = %login.oid,
                id_token = login.trusted,
                prns = prns_trusted,
                "ESIA id_token and /rs/prns disagree on account confirmation"
            );
        }
        Ok(EsiaPerson {
            oid: login.oid.clone(),
            last_name: req_str(&v, "lastName", "person")?,
            first_name: req_str(&v, "firstName", "person")?,
            middle_name: opt_str(&v, "middleName"),
            birth_date: parse_esia_date(v.get("birthDate"))?,
            gender: opt_str(&v, "gender"),
            snils: opt_str(&v, "snils"),
            // Both sources must agree before the journal treats the account as confirmed.
            trusted: login.trusted && prns_trusted,
        })
    }

    async fn contacts(&self, login: &VerifiedLogin) -> Result<Vec<EsiaContact>, EsiaError> {
        let elements = self.collection(login, &["ctts"]).await?;
        elements
            .iter()
            .map(|e| {
                Ok(EsiaContact {
                    kind: req_str(e, "type", "contact")?,
                    value: req_str(e, "value", "contact")?,
                    verified: e.get("vrfStu").and_then(Value::as_str) == Some("VERIFIED"),
                })
            })
            .collect()
    }

    async fn kids(&self, login: &VerifiedLogin) -> Result<Vec<EsiaKid>, EsiaError> {
        let elements = self.collection(login, &["kids"]).await?;
        elements
            .iter()
            .map(|e| {
                Ok(EsiaKid {
                    id: e
                        .get("id")
                        .and_then(jwt::id_value)
                        .ok_or_else(|| EsiaError::Protocol("kid has no id".into()))?,
                    last_name: req_str(e, "lastName", "kid")?,
                    first_name: req_str(e, "firstName", "kid")?,
                    middle_name: opt_str(e, "middleName"),
                    birth_date: parse_esia_date(e.get("birthDate"))?,
                    gender: opt_str(e, "gender"),
                    snils: opt_str(e, "snils"),
                })
            })
            .collect()
    }

    fn logout_url(&self) -> Url {
        // The constructor checked that base_url is a base ending in `/`, so join succeeds.
        let mut url =
            self.config.base_url.join(LOGOUT_PATH).unwrap_or_else(|_| self.config.base_url.clone());
        url.set_query(Some(&encode_pairs([
            ("client_id", self.config.client_id.as_str()),
            ("redirect_url", self.config.logout_redirect_uri.as_str()),
        ])));
        url
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::signer::GostFileSigner;
    use zhurnal_gost::{ParamSet, SigningKey};

    fn client() -> EsiaClient {
        let key = SigningKey::generate(ParamSet::CryptoProA);
        let cert = Certificate::self_signed(&key, "rp", 1).unwrap();
        let signer = Arc::new(GostFileSigner::new(key, &cert, None).unwrap());
        let config = EsiaConfig { client_id: "ZHURNAL".into(), ..EsiaConfig::default() };
        EsiaClient::from_parts(config, signer, &cert).unwrap()
    }

    #[test]
    fn scopes_are_normalised() {
        assert_eq!(normalise_scope("fullname?oid=1000"), "fullname");
        assert_eq!(normalise_scope("http://esia.gosuslugi.ru/usr_inf"), "usr_inf");
        assert_eq!(normalise_scope("openid"), "openid");
    }

    #[test]
    fn kid_scopes_are_added_once_and_remembered_in_the_verifier() {
        let c = client();
        assert_eq!(c.scope_string(false), "openid fullname birthdate gender snils email mobile");
        assert!(
            c.scope_string(true)
                .ends_with("mobile kid_fullname kid_birthdate kid_snils kid_gender")
        );
        let r = c.authorization_request(None, true, Utc::now()).unwrap();
        assert!(r.code_verifier.ends_with(KID_SCOPES_MARKER));
        let r = c.authorization_request(None, false, Utc::now()).unwrap();
        assert!(!r.code_verifier.contains('~'));
        assert!(!format!("{r:?}").contains(&r.code_verifier));
    }

    #[test]
    fn consumed_codes_are_refused_until_forgotten() {
        let c = client();
        assert!(c.consume_code("abc", 100));
        assert!(!c.consume_code("abc", 101));
        assert!(c.consume_code("abd", 101));
        assert!(c.consume_code("abc", 100 + CONSUMED_CODE_TTL_SECONDS + 1));
    }

    #[test]
    fn constructor_refuses_unsafe_configuration() {
        let key = SigningKey::generate(ParamSet::CryptoProA);
        let cert = Certificate::self_signed(&key, "rp", 1).unwrap();
        let signer: Arc<dyn Signer> = Arc::new(GostFileSigner::new(key, &cert, None).unwrap());
        let ok = EsiaConfig { client_id: "ZHURNAL".into(), ..EsiaConfig::default() };
        let bad = [
            EsiaConfig::default(),
            EsiaConfig { jwt_algorithms: vec!["none".into()], ..ok.clone() },
            EsiaConfig { jwt_algorithms: vec![], ..ok.clone() },
            EsiaConfig { scopes: vec!["fullname".into()], ..ok.clone() },
            EsiaConfig { kid_scopes: vec!["kid fullname".into()], ..ok.clone() },
            EsiaConfig { base_url: Url::parse("http://127.0.0.1:1/esia").unwrap(), ..ok.clone() },
        ];
        for cfg in bad {
            assert!(matches!(
                EsiaClient::from_parts(cfg, Arc::clone(&signer), &cert),
                Err(EsiaError::Config(_))
            ));
        }
        assert!(EsiaClient::from_parts(ok, signer, &cert).is_ok());
    }

    #[test]
    fn logout_url_names_client_and_return_address() {
        let c = client();
        assert_eq!(
            c.logout_url().as_str(),
            "https://esia.gosuslugi.ru/idp/ext/Logout?client_id=ZHURNAL\
             &redirect_url=http%3A%2F%2F127.0.0.1%3A8080%2F"
        );
    }

    #[test]
    fn callback_parsing() {
        let c = client();
        let q = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        assert_eq!(c.parse_callback(&q(&[("code", "C"), ("state", "S")]), "S").unwrap(), "C");
        for bad in [
            q(&[("code", "C"), ("state", "T")]),
            q(&[("code", "C")]),
            q(&[("code", "C"), ("state", "")]),
        ] {
            assert!(matches!(c.parse_callback(&bad, "S"), Err(EsiaError::StateMismatch)));
        }
        // An empty expected state never matches.
        assert!(matches!(
            c.parse_callback(&q(&[("code", "C"), ("state", "")]), ""),
            Err(EsiaError::StateMismatch)
        ));
        assert!(matches!(
            c.parse_callback(&q(&[("state", "S")]), "S"),
            Err(EsiaError::Protocol(_))
        ));
        let cancel = q(&[
            ("error", "access_denied"),
            ("error_description", "ESIA-007004: отказ"),
            ("state", "S"),
        ]);
        match c.parse_callback(&cancel, "S") {
            Err(e @ EsiaError::Callback { .. }) => {
                assert_eq!(e.reason_code(), "user_cancelled");
                let EsiaError::Callback { code, error, .. } = e else { unreachable!() };
                assert_eq!(code.as_deref(), Some("ESIA-007004"));
                assert_eq!(error, "access_denied");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.parse_callback(&cancel, "other"), Err(EsiaError::StateMismatch)));
        let overloaded =
            q(&[("error", "temporarily_unavailable"), ("error_description", "ESIA-007008: busy")]);
        assert!(matches!(c.parse_callback(&overloaded, "S"), Err(EsiaError::Unavailable(_))));
    }
}
