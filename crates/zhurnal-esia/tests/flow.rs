//! End-to-end: the real `EsiaClient` against the bundled simulator over loopback HTTP.
//!
//! One test binary on purpose (link time on a 2-core machine). Each test starts its own
//! simulator on 127.0.0.1:0, so faults and clocks never leak between tests.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use tempfile::TempDir;
use url::Url;
use zhurnal_esia::sim::{self, Fault, SimClient, SimConfig, Simulator};
use zhurnal_esia::{
    AuthorizationRequest, EsiaClient, EsiaConfig, EsiaError, GostFileSigner, IdentityProvider,
    SignerConfig, VerifiedLogin,
};
use zhurnal_gost::{Certificate, ParamSet, SigningKey, base64url_decode};

const CLIENT_ID: &str = "ZHURNAL";
const REDIRECT: &str = "http://127.0.0.1:8080/auth/callback";
const LOGOUT_BACK: &str = "http://127.0.0.1:8080/";

struct Env {
    sim: Simulator,
    base: Url,
    dir: TempDir,
    cert: Certificate,
}

async fn start() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::generate(ParamSet::CryptoProA);
    let cert = Certificate::self_signed(&key, "Журнал (тест)", 30).unwrap();
    std::fs::write(dir.path().join("key.pem"), key.to_pkcs8_pem()).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.to_pem()).unwrap();
    let client = SimClient {
        client_id: CLIENT_ID.into(),
        redirect_uris: vec![REDIRECT.into()],
        logout_redirect_uris: vec![LOGOUT_BACK.into()],
        certificate_pem: cert.to_pem(),
    };
    let sim = Simulator::new(SimConfig::new(sim::default_persons(), vec![client]).unwrap());
    std::fs::write(dir.path().join("esia.pem"), sim.certificate_pem()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    tokio::spawn(sim::serve(listener, sim.clone()));
    Env { sim, base, dir, cert }
}

impl Env {
    fn config(&self) -> EsiaConfig {
        EsiaConfig {
            base_url: self.base.clone(),
            client_id: CLIENT_ID.into(),
            redirect_uri: Url::parse(REDIRECT).unwrap(),
            logout_redirect_uri: Url::parse(LOGOUT_BACK).unwrap(),
            signer: SignerConfig::KeyFile {
                key_path: self.dir.path().join("key.pem"),
                certificate_path: self.dir.path().join("cert.pem"),
            },
            esia_certificate_path: self.dir.path().join("esia.pem"),
            issuer: sim::DEFAULT_ISSUER.into(),
            ..EsiaConfig::default()
        }
    }

    fn client(&self) -> EsiaClient {
        EsiaClient::new(self.config()).unwrap()
    }

    /// A full login as `persona`: authorization URL → simulated browser → callback → exchange.
    async fn login(
        &self,
        rp: &EsiaClient,
        persona: &str,
        kids: bool,
    ) -> Result<VerifiedLogin, EsiaError> {
        let (req, code) = self.code_for(rp, persona, kids).await?;
        rp.exchange_code(&code, &req.code_verifier, Utc::now()).await
    }

    /// Steps 1–2 only: the authorization request and the parsed callback.
    async fn code_for(
        &self,
        rp: &EsiaClient,
        persona: &str,
        kids: bool,
    ) -> Result<(AuthorizationRequest, String), EsiaError> {
        let req = rp.authorization_request(Some(persona), kids, Utc::now())?;
        let query = callback(&req.url).await;
        let code = rp.parse_callback(&query, &req.state)?;
        Ok((req, code))
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap()
    }
}

/// A browser that does not follow redirects, so the test can read where ESIA sends it.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// GETs the authorization URL (with `login_hint`) and returns the callback's query pairs.
async fn callback(url: &Url) -> HashMap<String, String> {
    let resp = browser().get(url.clone()).send().await.unwrap();
    location_query(resp).await
}

async fn location_query(resp: reqwest::Response) -> HashMap<String, String> {
    let status = resp.status();
    let location = resp.headers().get("location").map(|l| l.to_str().unwrap().to_owned());
    let Some(location) = location else {
        panic!("expected a redirect, got {status}: {}", resp.text().await.unwrap());
    };
    assert_eq!(status, 303);
    let loc = Url::parse(&location).unwrap();
    assert!(loc.as_str().starts_with(REDIRECT), "redirected to {loc}, not the registered callback");
    loc.query_pairs().into_owned().collect()
}

fn reason(r: Result<impl std::fmt::Debug, EsiaError>) -> (&'static str, EsiaError) {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(e) => (e.reason_code(), e),
    }
}

fn query_of(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn authorization_url_is_encoded_and_signed() {
    let env = start().await;
    let rp = env.client();
    let req = rp.authorization_request(Some("parent"), true, Utc::now()).unwrap();
    assert_eq!(req.url.path(), "/aas/oauth2/v2/ac");
    let raw = req.url.query().unwrap();
    // The offset's `+` is percent-encoded; no literal `+` anywhere (it would decode to a space).
    assert!(raw.contains("%2B0000"), "{raw}");
    assert!(!raw.contains('+'), "{raw}");
    let q = query_of(&req.url);
    let ts = &q["timestamp"];
    assert!(ts.ends_with(" +0000") && ts.len() == 25, "{ts}");
    zhurnal_esia::wire::parse_timestamp(ts).unwrap();
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_uri"], REDIRECT);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["access_type"], "online");
    assert_eq!(q["login_hint"], "parent");
    assert_eq!(q["state"], req.state);
    let state = uuid::Uuid::parse_str(&req.state).unwrap();
    assert_eq!(state.get_version_num(), 4);
    assert_eq!(
        q["scope"],
        "openid fullname birthdate gender snils email mobile \
         kid_fullname kid_birthdate kid_snils kid_gender"
    );
    assert_eq!(q["client_certificate_hash"], env.cert.streebog_hash_hex());
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"], zhurnal_esia::wire::pkce_challenge(&req.code_verifier));
    // client_secret = base64url(GOST signature over client_id+scope+scope_org+timestamp+state+redirect_uri).
    let msg = format!("{CLIENT_ID}{}{}{}{REDIRECT}", q["scope"], ts, req.state);
    let sig = base64url_decode(&q["client_secret"]).unwrap();
    assert_eq!(sig.len(), 64);
    env.cert.public_key().verify(msg.as_bytes(), &sig).unwrap();
    assert!(env.cert.public_key().verify(format!("{msg}x").as_bytes(), &sig).is_err());
    // Without the kid flag and hint: base scopes only, no login_hint.
    let req = rp.authorization_request(None, false, Utc::now()).unwrap();
    let q = query_of(&req.url);
    assert_eq!(q["scope"], "openid fullname birthdate gender snils email mobile");
    assert!(!q.contains_key("login_hint"));
}

#[tokio::test]
async fn unencoded_plus_in_timestamp_is_refused_by_the_simulator() {
    let env = start().await;
    let rp = env.client();
    let req = rp.authorization_request(Some("teacher"), false, Utc::now()).unwrap();
    let mut bad = req.url.clone();
    bad.set_query(Some(&req.url.query().unwrap().replace("%2B0000", "+0000")));
    let q = callback(&bad).await;
    let (r, e) = reason(rp.parse_callback(&q, &req.state));
    assert_eq!(r, "bad_timestamp", "{e:?}");
    // The correctly encoded URL works.
    let q = callback(&req.url).await;
    assert!(rp.parse_callback(&q, &req.state).is_ok());
}

#[tokio::test]
async fn happy_path_trusted_teacher() {
    let env = start().await;
    let rp = env.client();
    let before = Utc::now();
    let login = env.login(&rp, "teacher", false).await.unwrap();
    assert_eq!(login.oid, "1000000001");
    assert!(login.trusted);
    for s in ["openid", "fullname", "snils", "email", "mobile"] {
        assert!(login.scopes.iter().any(|g| g == s), "{s} in {:?}", login.scopes);
    }
    assert!(login.expires_at > before + Duration::seconds(3500));
    assert!(login.expires_at <= Utc::now() + Duration::seconds(3601));
    assert!(!format!("{login:?}").contains(&login.access_token));

    let p = rp.person(&login).await.unwrap();
    assert_eq!(p.oid, "1000000001");
    assert_eq!(p.last_name, "Смирнова");
    assert_eq!(p.first_name, "Анна");
    assert_eq!(p.middle_name.as_deref(), Some("Викторовна"));
    assert_eq!(p.birth_date, chrono::NaiveDate::from_ymd_opt(1986, 3, 14));
    assert_eq!(p.gender.as_deref(), Some("F"));
    assert_eq!(p.snils.as_deref(), Some("112-233-445 95"));
    assert!(p.trusted);

    let c = rp.contacts(&login).await.unwrap();
    assert_eq!(c.len(), 2);
    let eml = c.iter().find(|c| c.kind == "EML").unwrap();
    assert_eq!(eml.value, "a.smirnova@example.ru");
    assert!(eml.verified);
    assert!(c.iter().any(|c| c.kind == "MBT" && c.value == "+7(900)0000001"));

    // No kid scopes requested: /kids is refused by ESIA, which the RP reports.
    let (r, _) = reason(rp.kids(&login).await);
    assert_eq!(r, "protocol_error");
    // With kid scopes, a person without children has an empty list.
    let login = env.login(&rp, "teacher", true).await.unwrap();
    assert!(rp.kids(&login).await.unwrap().is_empty());
}

#[tokio::test]
async fn parent_sees_two_kids() {
    let env = start().await;
    let rp = env.client();
    let login = env.login(&rp, "parent", true).await.unwrap();
    assert!(login.trusted);
    assert!(login.scopes.iter().any(|s| s == "kid_snils"));
    let kids = rp.kids(&login).await.unwrap();
    assert_eq!(kids.len(), 2);
    let ivan = kids.iter().find(|k| k.first_name == "Иван").unwrap();
    assert_eq!(ivan.last_name, "Кузнецов");
    assert_eq!(ivan.middle_name.as_deref(), Some("Дмитриевич"));
    assert_eq!(ivan.birth_date, chrono::NaiveDate::from_ymd_opt(2016, 9, 1));
    assert_eq!(ivan.gender.as_deref(), Some("M"));
    assert!(sim::snils_is_valid(ivan.snils.as_deref().unwrap()));
    // The kid record id is the parent's record, not the child's own login oid.
    assert_ne!(ivan.id, "1000000005");
    let maria = kids.iter().find(|k| k.first_name == "Мария").unwrap();
    assert_eq!(maria.birth_date, chrono::NaiveDate::from_ymd_opt(2011, 5, 20));
    assert_ne!(maria.id, ivan.id);
    let p = rp.person(&login).await.unwrap();
    assert_eq!(p.last_name, "Кузнецов");
}

#[tokio::test]
async fn fields_are_filtered_by_scope() {
    let env = start().await;
    let rp = EsiaClient::new(EsiaConfig {
        scopes: ["openid", "fullname", "mobile"].map(String::from).to_vec(),
        kid_scopes: ["kid_fullname", "kid_birthdate"].map(String::from).to_vec(),
        ..env.config()
    })
    .unwrap();
    let login = env.login(&rp, "parent", true).await.unwrap();
    assert!(!login.scopes.iter().any(|s| s == "snils"));
    let p = rp.person(&login).await.unwrap();
    assert_eq!(p.first_name, "Дмитрий");
    assert_eq!(p.snils, None);
    assert_eq!(p.birth_date, None);
    assert_eq!(p.gender, None);
    let c = rp.contacts(&login).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, "MBT");
    let kids = rp.kids(&login).await.unwrap();
    assert_eq!(kids.len(), 2);
    for k in &kids {
        assert_eq!(k.snils, None, "kid_snils not granted");
        assert_eq!(k.gender, None);
        assert!(k.birth_date.is_some());
        assert!(!k.first_name.is_empty());
    }
}

#[tokio::test]
async fn unconfirmed_accounts_are_not_trusted() {
    let env = start().await;
    let rp = env.client();
    let login = env.login(&rp, "unconfirmed", false).await.unwrap();
    assert!(!login.trusted);
    let p = rp.person(&login).await.unwrap();
    assert!(!p.trusted);
    assert_eq!(p.snils, None);

    // The fault makes even a confirmed persona unconfirmed, in the token and in /rs/prns.
    env.sim.set_fault(Some(Fault::UnconfirmedAccount));
    let login = env.login(&rp, "teacher", false).await.unwrap();
    assert!(!login.trusted);
    assert!(!rp.person(&login).await.unwrap().trusted);
    env.sim.set_fault(None);
    let login = env.login(&rp, "teacher", false).await.unwrap();
    assert!(login.trusted);
}

#[tokio::test]
async fn token_faults_are_refused_with_stable_reasons() {
    let env = start().await;
    let rp = env.client();
    for (fault, expected) in [
        (Fault::TokenBadSig, "bad_signature"),
        (Fault::TokenAlgNone, "alg_not_allowed"),
        (Fault::WrongIss, "wrong_issuer"),
        (Fault::WrongAud, "wrong_audience"),
        (Fault::TokenExpired, "expired"),
        (Fault::StateMismatchToken, "state_mismatch"),
        (Fault::WrongSub, "subject_mismatch"),
    ] {
        env.sim.set_fault(Some(fault));
        let (r, e) = reason(env.login(&rp, "teacher", false).await);
        assert_eq!(r, expected, "{fault}: {e:?}");
        assert!(
            matches!(e, EsiaError::InvalidToken { reason } if reason == expected),
            "{fault}: {e:?}"
        );
        assert!(!e.user_message_ru().is_empty());
    }
    // The same client logs in fine once the fault is gone: the fault was the cause.
    env.sim.set_fault(None);
    assert!(env.login(&rp, "teacher", false).await.is_ok());
}

#[tokio::test]
async fn callback_state_must_match() {
    let env = start().await;
    let rp = env.client();
    let req = rp.authorization_request(Some("teacher"), false, Utc::now()).unwrap();
    let q = callback(&req.url).await;
    // Another browser's state (login CSRF).
    let other = rp.authorization_request(None, false, Utc::now()).unwrap();
    let (r, e) = reason(rp.parse_callback(&q, &other.state));
    assert_eq!(r, "state_mismatch");
    assert!(matches!(e, EsiaError::StateMismatch));
    // Missing state.
    let mut no_state = q.clone();
    no_state.remove("state");
    assert!(matches!(rp.parse_callback(&no_state, &req.state), Err(EsiaError::StateMismatch)));
    assert!(rp.parse_callback(&q, &req.state).is_ok());

    // The simulator sends back a different state.
    env.sim.set_fault(Some(Fault::WrongState));
    let req = rp.authorization_request(Some("teacher"), false, Utc::now()).unwrap();
    let q = callback(&req.url).await;
    assert_ne!(q["state"], req.state);
    assert!(matches!(rp.parse_callback(&q, &req.state), Err(EsiaError::StateMismatch)));
}

#[tokio::test]
async fn user_cancel_is_a_callback_error() {
    let env = start().await;
    let rp = env.client();
    env.sim.set_fault(Some(Fault::UserCancel));
    let (r, e) = reason(env.code_for(&rp, "teacher", false).await);
    assert_eq!(r, "user_cancelled");
    match &e {
        EsiaError::Callback { code, error, description } => {
            assert_eq!(code.as_deref(), Some("ESIA-007004"));
            assert_eq!(error, "access_denied");
            assert!(description.starts_with("ESIA-007004:"));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.user_message_ru().contains("Разрешить"));
}

#[tokio::test]
async fn esia_overload_is_unavailable_everywhere() {
    let env = start().await;
    let rp = env.client();
    // Get a code and a login before the outage.
    let login = env.login(&rp, "teacher", false).await.unwrap();
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();

    env.sim.set_fault(Some(Fault::ServerError));
    let (r, e) = reason(env.code_for(&rp, "teacher", false).await);
    assert_eq!(r, "esia_unavailable", "callback: {e:?}");
    assert!(matches!(e, EsiaError::Unavailable(_)));
    let (_, e) = reason(rp.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert!(matches!(e, EsiaError::Unavailable(_)), "token: {e:?}");
    assert_eq!(e.reason_code(), "esia_unavailable");
    let (_, e) = reason(rp.person(&login).await);
    assert!(matches!(e, EsiaError::Unavailable(_)), "rest: {e:?}");
    assert!(e.user_message_ru().contains("несколько минут"));
}

#[tokio::test]
async fn unreachable_esia_is_unavailable() {
    let env = start().await;
    // A port nobody listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    drop(listener);
    let rp = EsiaClient::new(EsiaConfig { base_url: dead, ..env.config() }).unwrap();
    let (_, e) = reason(rp.exchange_code("abc", "verifier", Utc::now()).await);
    assert!(matches!(e, EsiaError::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn slow_token_endpoint_times_out() {
    let env = start().await;
    let rp = EsiaClient::new(EsiaConfig { http_timeout_seconds: 1, ..env.config() }).unwrap();
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    env.sim.set_fault(Some(Fault::Slow));
    let (_, e) = reason(rp.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert!(matches!(e, EsiaError::Unavailable(_)), "{e:?}");
}

#[tokio::test]
async fn bad_signature_is_esia_007053() {
    let env = start().await;
    let rp = env.client();
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    env.sim.set_fault(Some(Fault::BadSignature));
    // At the authorization endpoint: back to the callback with the error.
    let (r, e) = reason(env.code_for(&rp, "teacher", false).await);
    assert_eq!(r, "client_secret_wrong");
    assert!(matches!(&e, EsiaError::Callback { code: Some(c), .. } if c == "ESIA-007053"));
    // At the token endpoint: HTTP 400 with the JSON error.
    let (r, e) = reason(rp.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert_eq!(r, "client_secret_wrong");
    match e {
        EsiaError::TokenEndpoint { status, error, description } => {
            assert_eq!(status, 400);
            assert_eq!(error, "invalid_client");
            assert!(description.starts_with("ESIA-007053"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_client_with_another_key_is_rejected() {
    let env = start().await;
    let other_key = SigningKey::generate(ParamSet::CryptoProA);
    let other_cert = Certificate::self_signed(&other_key, "чужой", 30).unwrap();

    // Right hash (copied from the registered certificate), wrong key: the signature fails.
    let signer = Arc::new(
        GostFileSigner::new(other_key.clone(), &other_cert, Some(&env.cert.streebog_hash_hex()))
            .unwrap(),
    );
    let esia_cert = Certificate::from_pem(&env.sim.certificate_pem()).unwrap();
    let rp = EsiaClient::from_parts(env.config(), signer, &esia_cert).unwrap();
    let (r, e) = reason(env.code_for(&rp, "teacher", false).await);
    assert_eq!(r, "client_secret_wrong", "{e:?}");

    // Its own certificate: the hash does not match the registered one.
    let signer = Arc::new(GostFileSigner::new(other_key, &other_cert, None).unwrap());
    let rp = EsiaClient::from_parts(env.config(), signer, &esia_cert).unwrap();
    let (r, _) = reason(env.code_for(&rp, "teacher", false).await);
    assert_eq!(r, "client_secret_wrong");

    // A tampered client_secret from the genuine client.
    let good = env.client();
    let req = good.authorization_request(Some("teacher"), false, Utc::now()).unwrap();
    let mut q = query_of(&req.url);
    let mut sig = base64url_decode(&q["client_secret"]).unwrap();
    sig[10] ^= 1;
    q.insert("client_secret".into(), zhurnal_gost::base64url_nopad(&sig));
    let mut tampered = req.url.clone();
    tampered.set_query(Some(&zhurnal_esia::wire::encode_pairs(
        q.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )));
    let cb = callback(&tampered).await;
    let (r, _) = reason(good.parse_callback(&cb, &req.state));
    assert_eq!(r, "client_secret_wrong");
}

#[tokio::test]
async fn a_code_is_redeemed_once() {
    let env = start().await;
    let a = env.client();
    let (req, code) = env.code_for(&a, "teacher", false).await.unwrap();
    a.exchange_code(&code, &req.code_verifier, Utc::now()).await.unwrap();
    // A second process without our replay memory: the simulator refuses.
    let b = env.client();
    let (r, e) = reason(b.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert_eq!(r, "code_invalid");
    assert!(matches!(e, EsiaError::TokenEndpoint { status: 400, .. }));
    // The same process refuses before asking ESIA.
    let (r, _) = reason(a.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert_eq!(r, "code_replayed");
}

#[tokio::test]
async fn replay_is_refused_by_the_relying_party_itself() {
    let env = start().await;
    env.sim.set_fault(Some(Fault::ReusedCode));
    let a = env.client();
    let (req, code) = env.code_for(&a, "teacher", false).await.unwrap();
    a.exchange_code(&code, &req.code_verifier, Utc::now()).await.unwrap();
    let (r, e) = reason(a.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert_eq!(r, "code_replayed");
    assert!(matches!(e, EsiaError::InvalidToken { .. }));
    // The simulator really does accept the replay under this fault (so the refusal above is ours).
    let b = env.client();
    assert!(b.exchange_code(&code, &req.code_verifier, Utc::now()).await.is_ok());
}

#[tokio::test]
async fn pkce_verifier_must_match() {
    let env = start().await;
    let rp = env.client();
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    let wrong = zhurnal_esia::wire::pkce_verifier();
    let (r, e) = reason(rp.exchange_code(&code, &wrong, Utc::now()).await);
    assert_eq!(r, "pkce_verifier_mismatch", "{e:?}");
    // The failed attempt consumed the code at the simulator too.
    let other = env.client();
    let (r, _) = reason(other.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert_eq!(r, "code_invalid");
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let env = start().await;
    let rp = env.client();
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    env.sim.set_fault(Some(Fault::ExpiredCode));
    let (r, _) = reason(rp.exchange_code(&code, &req.code_verifier, Utc::now()).await);
    assert_eq!(r, "code_invalid");
    env.sim.set_fault(None);

    // Real expiry with the injectable clock: 400 s later (TTL 300 s), both clocks agreeing.
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    let later = Utc::now() + Duration::seconds(400);
    env.sim.set_clock(Some(later));
    let (r, e) = reason(rp.exchange_code(&code, &req.code_verifier, later).await);
    assert_eq!(r, "code_invalid", "{e:?}");
    // Just within the TTL it works.
    env.sim.set_clock(None);
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    let soon = Utc::now() + Duration::seconds(200);
    env.sim.set_clock(Some(soon));
    assert!(rp.exchange_code(&code, &req.code_verifier, soon).await.is_ok());
}

#[tokio::test]
async fn tokens_are_checked_against_the_relying_partys_clock() {
    let env = start().await;
    let rp = env.client();
    // The simulator issues at `issued`; an RP whose clock is 500 s behind (within ESIA's
    // timestamp window, beyond our 60 s leeway) sees `nbf` in the future.
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    let issued = Utc::now();
    env.sim.set_clock(Some(issued));
    let rp_past = issued - Duration::seconds(500);
    let (r, e) = reason(rp.exchange_code(&code, &req.code_verifier, rp_past).await);
    assert_eq!(r, "not_yet_valid", "{e:?}");
    // An RP clock beyond the simulator's skew window is refused by ESIA (ESIA-007015).
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    let rp_ahead = issued + Duration::hours(2);
    let (r, _) = reason(rp.exchange_code(&code, &req.code_verifier, rp_ahead).await);
    assert_eq!(r, "bad_timestamp");
    // At the authorization endpoint too.
    let req =
        rp.authorization_request(Some("teacher"), false, issued - Duration::hours(1)).unwrap();
    let q = callback(&req.url).await;
    let (r, _) = reason(rp.parse_callback(&q, &req.state));
    assert_eq!(r, "bad_timestamp");
}

#[tokio::test]
async fn untrusted_redirect_uri_gets_an_error_page_not_a_redirect() {
    let env = start().await;
    let rp = EsiaClient::new(EsiaConfig {
        redirect_uri: Url::parse("https://evil.example/cb").unwrap(),
        ..env.config()
    })
    .unwrap();
    let req = rp.authorization_request(Some("teacher"), false, Utc::now()).unwrap();
    let resp = browser().get(req.url.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
    let body = resp.text().await.unwrap();
    assert!(body.contains("ESIA-007023"), "{body}");

    let rp = EsiaClient::new(EsiaConfig { client_id: "UNKNOWN".into(), ..env.config() }).unwrap();
    let req = rp.authorization_request(None, false, Utc::now()).unwrap();
    let resp = browser().get(req.url.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());

    // A duplicated parameter is ambiguous: refused, no redirect.
    let rp = env.client();
    let req = rp.authorization_request(Some("teacher"), false, Utc::now()).unwrap();
    let mut dup = req.url.clone();
    dup.set_query(Some(&format!("{}&state=x", req.url.query().unwrap())));
    let resp = browser().get(dup).send().await.unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.headers().get("location").is_none());
}

fn hidden_request_id(html: &str) -> String {
    let marker = "name=\"request_id\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
}

#[tokio::test]
async fn person_picker_allows_and_denies() {
    let env = start().await;
    let rp = env.client();
    let req = rp.authorization_request(None, true, Utc::now()).unwrap();
    let resp = browser().get(req.url.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let html = resp.text().await.unwrap();
    for needle in [
        "Разрешить",
        "Отказаться",
        "lang=\"ru\"",
        "Кузнецов Дмитрий Сергеевич",
        "value=\"child13\"",
        "Родитель двоих детей",
        "неподтверждённая учётная запись",
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    assert!(!html.contains("<script"));
    let request_id = hidden_request_id(&html);
    let consent = env.url("sim/consent");
    let form = |person: &str, decision: &str| {
        zhurnal_esia::wire::encode_pairs([
            ("request_id", request_id.as_str()),
            ("person", person),
            ("decision", decision),
        ])
    };
    let post = |body: String| {
        browser()
            .post(consent.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let q = location_query(post(form("parent", "allow")).await.unwrap()).await;
    let code = rp.parse_callback(&q, &req.state).unwrap();
    let login = rp.exchange_code(&code, &req.code_verifier, Utc::now()).await.unwrap();
    assert_eq!(login.oid, "1000000002");
    assert_eq!(rp.kids(&login).await.unwrap().len(), 2);
    // The picker request is single use.
    let resp = post(form("parent", "allow")).await.unwrap();
    assert_eq!(resp.status(), 400);

    // «Отказаться».
    let req = rp.authorization_request(None, false, Utc::now()).unwrap();
    let html = browser().get(req.url.clone()).send().await.unwrap().text().await.unwrap();
    let request_id = hidden_request_id(&html);
    let body = zhurnal_esia::wire::encode_pairs([
        ("request_id", request_id.as_str()),
        ("person", "teacher"),
        ("decision", "deny"),
    ]);
    let resp = browser()
        .post(consent.clone())
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let q = location_query(resp).await;
    assert_eq!(q["error"], "access_denied");
    let (r, _) = reason(rp.parse_callback(&q, &req.state));
    assert_eq!(r, "user_cancelled");
}

#[tokio::test]
async fn rest_endpoints_check_the_bearer_token() {
    let env = start().await;
    let rp = env.client();
    let login = env.login(&rp, "teacher", false).await.unwrap();
    let http = browser();
    let me = env.url("rs/prns/1000000001");
    assert_eq!(http.get(me.clone()).send().await.unwrap().status(), 401);
    let resp = http.get(me.clone()).bearer_auth("x.y.z").send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let resp = http
        .get(env.url("rs/prns/1000000002"))
        .bearer_auth(&login.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "another person's data");
    let resp = http.get(me.clone()).bearer_auth(&login.access_token).send().await.unwrap();
    assert_eq!(resp.status(), 200);

    // Without embed, collections are URLs, and the URLs resolve.
    let v: serde_json::Value = http
        .get(env.url("rs/prns/1000000001/ctts"))
        .bearer_auth(&login.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["size"], 2);
    let first = v["elements"][0].as_str().unwrap();
    assert!(first.starts_with(env.base.as_str()), "{first}");
    let el: serde_json::Value = http
        .get(first)
        .bearer_auth(&login.access_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(el["type"], "EML");

    // An expired token is refused once the simulator's clock passes `exp`.
    env.sim.set_clock(Some(login.expires_at + Duration::seconds(1)));
    let resp = http.get(me).bearer_auth(&login.access_token).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}

#[tokio::test]
async fn token_endpoint_validates_the_request() {
    let env = start().await;
    let rp = env.client();
    let (req, code) = env.code_for(&rp, "teacher", false).await.unwrap();
    let http = browser();
    let te = env.url("aas/oauth2/v3/te");
    let post = |pairs: Vec<(&str, &str)>| {
        http.post(te.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(zhurnal_esia::wire::encode_pairs(pairs))
            .send()
    };
    let esia_code = |v: serde_json::Value| {
        zhurnal_esia::codes::code_in(v["error_description"].as_str().unwrap()).unwrap()
    };
    // Without client_certificate_hash: ESIA-007014.
    let resp = post(vec![
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", &code),
        ("client_secret", "AA"),
        ("state", "s"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("timestamp", "2026.11.22 16:05:31 +0000"),
        ("code_verifier", &req.code_verifier),
    ])
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(esia_code(resp.json().await.unwrap()), "ESIA-007014");
    // Wrong grant type.
    let resp = post(vec![("grant_type", "password")]).await.unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(esia_code(resp.json().await.unwrap()), "ESIA-007012");
    // The code is still good for the genuine request.
    assert!(rp.exchange_code(&code, &req.code_verifier, Utc::now()).await.is_ok());
}

#[tokio::test]
async fn logout_returns_to_the_registered_address() {
    let env = start().await;
    let rp = env.client();
    let url = rp.logout_url();
    assert_eq!(url.path(), "/idp/ext/Logout");
    let q = query_of(&url);
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["redirect_url"], LOGOUT_BACK);
    let resp = browser().get(url).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], LOGOUT_BACK);
    let mut evil = env.url("idp/ext/Logout");
    evil.set_query(Some("client_id=ZHURNAL&redirect_url=https%3A%2F%2Fevil.example%2F"));
    let resp = browser().get(evil).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("Вы вышли"));
}

#[tokio::test]
async fn helper_endpoints() {
    let env = start().await;
    let http = browser();
    let health: serde_json::Value =
        http.get(env.url("sim/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["issuer"], sim::DEFAULT_ISSUER);
    let pem = http.get(env.url("sim/esia-cert.pem")).send().await.unwrap().text().await.unwrap();
    assert_eq!(pem, env.sim.certificate_pem());
    Certificate::from_pem(&pem).unwrap();

    let set = |body: &'static str| {
        http.post(env.url("sim/faults"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(set(r#"{"fault": "user_cancel"}"#).await.unwrap().status(), 200);
    assert_eq!(env.sim.fault(), Some(Fault::UserCancel));
    assert_eq!(set(r#"{"fault": "bogus"}"#).await.unwrap().status(), 400);
    assert_eq!(env.sim.fault(), Some(Fault::UserCancel));
    assert_eq!(set(r#"{"fault": null}"#).await.unwrap().status(), 200);
    assert_eq!(env.sim.fault(), None);
}

#[tokio::test]
async fn simulator_client_from_relying_party_config() {
    let env = start().await;
    let c = SimClient::for_relying_party(&env.config()).unwrap();
    assert_eq!(c.client_id, CLIENT_ID);
    assert_eq!(c.redirect_uris, vec![REDIRECT.to_owned()]);
    assert_eq!(c.logout_redirect_uris, vec![LOGOUT_BACK.to_owned()]);
    assert_eq!(
        Certificate::from_pem(&c.certificate_pem).unwrap().streebog_hash_hex(),
        env.cert.streebog_hash_hex()
    );
}
