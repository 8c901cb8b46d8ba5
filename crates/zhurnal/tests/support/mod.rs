//! Test environment: a fresh database (SQLite file or a PostgreSQL database of its own), the
//! demo school seeded for a fixed day, the simulator and the journal on free loopback ports.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use tokio::net::TcpListener;
use zhurnal::config::Config;
use zhurnal::{build_app_with_clock, open_store, seed};
use zhurnal_app::{App, FixedClock};
use zhurnal_esia::sim::Simulator;

pub struct Env {
    pub base: String,
    pub app: Arc<App>,
    pub clock: Arc<FixedClock>,
    pub sim: Simulator,
    pub data: zhurnal::demo::DemoData,
    _dir: tempfile::TempDir,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Monday 23 November 2026, 09:00 UTC (12:00 in the region): a school day in the second quarter.
pub fn school_day() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).single().expect("valid instant")
}

impl Env {
    pub async fn start() -> Env {
        Self::start_on(Db::Sqlite).await.expect("SQLite is always available")
    }

    /// `None` when PostgreSQL is not configured and not required (a laptop without it).
    pub async fn start_on(db: Db) -> Option<Env> {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut cfg =
            Config { data_dir: dir.path().to_path_buf(), listen: addr, ..Config::default() };
        if db == Db::Postgres {
            match std::env::var("ZHURNAL_TEST_POSTGRES_URL") {
                Ok(admin) => {
                    let url = zhurnal_store_postgres::create_test_database(&admin)
                        .await
                        .expect("test database");
                    cfg.database_url = Some(url);
                }
                Err(_) if std::env::var("ZHURNAL_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
                    panic!("ZHURNAL_REQUIRE_POSTGRES=1 but ZHURNAL_TEST_POSTGRES_URL is not set")
                }
                Err(_) => {
                    eprintln!(
                        "skipping PostgreSQL variant: ZHURNAL_TEST_POSTGRES_URL not set (cargo xtask ci starts a cluster)"
                    );
                    return None;
                }
            }
        }
        let keys = cfg.load_keys(true).expect("keys");
        let store =
            open_store(&cfg, Arc::new(keys.sealer().expect("sealer")), true).await.expect("store");
        let clock = Arc::new(FixedClock::new(school_day()));
        let app = build_app_with_clock(&cfg, store, &keys, clock.clone()).expect("app");
        let (data, _) = seed::seed_demo(&app, &keys).await.expect("seed");
        let rt = seed::start_simulator(&mut cfg, &data.personas, &base).await.expect("simulator");
        // The simulator checks token expiry against its own clock: keep it with ours.
        rt.simulator.set_clock(Some(school_day()));
        let sim = rt.simulator.clone();
        let router = seed::web_router(&cfg, app.clone(), Arc::new(rt.idp), rt.idp_origin);
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .expect("serve");
        });
        Some(Env { base, app, clock, sim, data, _dir: dir })
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        zhurnal_app::Clock::now(self.clock.as_ref())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn persona_uid(&self, persona: &str) -> String {
        let p = self.data.personas.iter().find(|p| p.id == persona).expect("persona");
        zhurnal::demo::uid_for(p.external_id.as_deref().expect("registered persona"))
    }

    /// Audit records with this action, newest last.
    pub async fn audit(&self, action: &str) -> Vec<zhurnal_store::AuditRecord> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let page = self.app.store.list_audit(after, 1000).await.expect("audit");
            let Some(last) = page.last() else { break };
            after = last.seq;
            out.extend(page.into_iter().filter(|r| r.event.action == action));
        }
        out
    }
}

/// A minimal browser: a cookie jar for 127.0.0.1 (cookies are not port-scoped) and manual
/// redirects so every hop can be inspected.
pub struct Browser {
    client: reqwest::Client,
    pub jar: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub url: String,
    pub body: String,
    pub hops: Vec<(u16, String)>,
}

impl Browser {
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self { client, jar: HashMap::new() }
    }

    fn cookie_header(&self) -> String {
        self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn absorb(&mut self, res: &reqwest::Response) {
        for v in res.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let mut parts = v.split(';');
            let Some((name, value)) = parts.next().and_then(|kv| kv.split_once('=')) else {
                continue;
            };
            let deleted = parts.any(|a| a.trim().eq_ignore_ascii_case("Max-Age=0"));
            if deleted || value.is_empty() {
                self.jar.remove(name.trim());
            } else {
                self.jar.insert(name.trim().to_string(), value.to_string());
            }
        }
    }

    pub async fn get(&mut self, url: &str) -> Page {
        self.request(reqwest::Method::GET, url, None, &[]).await
    }

    pub async fn request(
        &mut self,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut current = url.to_string();
        let mut method = method;
        let mut form =
            form.map(|f| f.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>());
        let mut hops = Vec::new();
        for _ in 0..15 {
            let mut req = self
                .client
                .request(method.clone(), &current)
                .header("cookie", self.cookie_header());
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(f) = &form {
                req = req.header("content-type", "application/x-www-form-urlencoded").body(
                    f.iter()
                        .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
                        .collect::<Vec<_>>()
                        .join("&"),
                );
            }
            let res = req.send().await.expect("request");
            self.absorb(&res);
            let status = res.status().as_u16();
            hops.push((status, current.clone()));
            if (300..400).contains(&status) {
                let loc = res
                    .headers()
                    .get("location")
                    .and_then(|v| v.to_str().ok())
                    .expect("location")
                    .to_string();
                current = reqwest::Url::parse(&current)
                    .expect("url")
                    .join(&loc)
                    .expect("join")
                    .to_string();
                method = reqwest::Method::GET;
                form = None;
                continue;
            }
            let body = res.text().await.expect("body");
            return Page { status, url: current, body, hops };
        }
        panic!("too many redirects: {hops:?}");
    }

    pub fn session(&self) -> Option<&String> {
        self.jar.get("zh_session")
    }
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Logs in as a persona through the simulator; returns the final page.
pub async fn login(env: &Env, browser: &mut Browser, persona: &str) -> Page {
    browser.get(&env.url(&format!("/login?login_hint={persona}"))).await
}

/// The CSRF token of the current session, from `/api/v1/me`.
pub async fn csrf(env: &Env, browser: &mut Browser) -> String {
    let me = browser.get(&env.url("/api/v1/me")).await;
    assert_eq!(me.status, 200, "{}", me.body);
    let v: serde_json::Value = serde_json::from_str(&me.body).expect("json");
    v["csrf_token"].as_str().expect("token").to_string()
}
