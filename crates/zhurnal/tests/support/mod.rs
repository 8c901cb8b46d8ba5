//! Test environment: a fresh database (SQLite file or a PostgreSQL database of its own), the
//! demo school seeded for a fixed day, the simulator and the journal on free loopback ports.

pub mod chrome;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{TimeZone, Utc};
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use zhurnal::config::Config;
use zhurnal::{build_app_with_clock, open_store, seed};
use zhurnal_app::{App, FixedClock};
use zhurnal_esia::sim::Simulator;
use zhurnal_store::Store;

pub struct Env {
    pub base: String,
    pub app: Arc<App>,
    pub clock: Arc<FixedClock>,
    pub sim: Simulator,
    pub data: zhurnal::demo::DemoData,
    /// The data directory (database, keys): for driving the CLI against the same data.
    pub data_dir: PathBuf,
    /// The PostgreSQL database of this test, if on PostgreSQL (raw access for tamper tests).
    pub database_url: Option<String>,
    /// Area `integrations`: the local Сферум and portfolio this test's worker delivers to.
    pub sims: seed::IntegrationSims,
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
        Self::start_with(db, |_| {}).await
    }

    /// With the configuration adjusted first (e.g. rate limits for a test that makes
    /// hundreds of requests as one account).
    pub async fn start_with(db: Db, adjust: impl FnOnce(&mut Config)) -> Option<Env> {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let base = format!("http://{addr}");
        let mut cfg =
            Config { data_dir: dir.path().to_path_buf(), listen: addr, ..Config::default() };
        // Area `integrations`: fast worker rounds and retries, so tests wait milliseconds.
        cfg.integrations.worker = zhurnal_app::integrations::WorkerConfig {
            poll_ms: 50,
            lease_seconds: 5,
            backoff_base_ms: 100,
            backoff_max_ms: 800,
            ..Default::default()
        };
        adjust(&mut cfg);
        let sims = seed::start_integration_sims(&mut cfg).await.expect("integration simulators");
        let template = Template::get(db).await?;
        std::fs::copy(template.root.join("keys.toml"), cfg.keys_path()).expect("copy keys");
        match &template.pg_template {
            Some((admin, name)) => {
                let url = zhurnal_store_postgres::create_test_database_from(admin, Some(name))
                    .await
                    .expect("test database from template");
                cfg.database_url = Some(url);
            }
            None => {
                std::fs::copy(template.root.join("zhurnal.db"), dir.path().join("zhurnal.db"))
                    .expect("copy template database");
            }
        }
        let keys = cfg.load_keys(false).expect("keys");
        let store =
            open_store(&cfg, Arc::new(keys.sealer().expect("sealer")), false).await.expect("store");
        let clock = Arc::new(FixedClock::new(school_day()));
        let app = build_app_with_clock(&cfg, store, &keys, clock.clone()).expect("app");
        let data = zhurnal::demo::generate(app.today());
        let rt = seed::start_simulator(&mut cfg, &data.personas, &base).await.expect("simulator");
        // The simulator checks token expiry against its own clock: keep it with ours.
        rt.simulator.set_clock(Some(school_day()));
        let sim = rt.simulator.clone();
        let router = seed::web_router(&cfg, app.clone(), Arc::new(rt.idp), rt.idp_origin);
        seed::spawn_outbox_worker(app.clone());
        tokio::spawn(async move {
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .expect("serve");
        });
        let data_dir = dir.path().to_path_buf();
        let database_url = cfg.database_url.clone();
        Some(Env { base, app, clock, sim, data, data_dir, database_url, sims, _dir: dir })
    }

    pub fn clock_now(&self) -> chrono::DateTime<Utc> {
        zhurnal_app::Clock::now(self.clock.as_ref())
    }

    /// The data directory (SQLite file `zhurnal.db`, keys, anchors).
    pub fn data_dir(&self) -> &Path {
        self._dir.path()
    }

    /// The demo school (the one `data` describes).
    pub async fn school(&self) -> zhurnal_store::SchoolRow {
        self.app
            .store
            .find_school_by_external_id(&self.data.school_external_id)
            .await
            .expect("query")
            .expect("the demo school")
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

/// The demo seeded once per test binary and backend, then copied for each test (a file copy on
/// SQLite, `CREATE DATABASE … TEMPLATE` on PostgreSQL): seeding takes seconds, copying
/// milliseconds. Keyed by the test binary, so a rebuilt binary (new schema, new demo) seeds
/// afresh; processes of one run (nextest) share it under a file lock.
struct Template {
    /// Holds `keys.toml` and, for SQLite, `zhurnal.db`.
    root: PathBuf,
    /// (admin URL, template database name) on PostgreSQL.
    pg_template: Option<(String, String)>,
}

impl Template {
    async fn get(db: Db) -> Option<Template> {
        let admin = match db {
            Db::Sqlite => None,
            Db::Postgres => match std::env::var("ZHURNAL_TEST_POSTGRES_URL") {
                Ok(admin) => Some(admin),
                Err(_) if std::env::var("ZHURNAL_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
                    panic!("ZHURNAL_REQUIRE_POSTGRES=1 but ZHURNAL_TEST_POSTGRES_URL is not set")
                }
                Err(_) => {
                    eprintln!(
                        "skipping PostgreSQL variant: ZHURNAL_TEST_POSTGRES_URL not set (cargo xtask ci starts a cluster)"
                    );
                    return None;
                }
            },
        };
        let exe = std::env::current_exe().expect("test binary");
        let modified = std::fs::metadata(&exe).and_then(|m| m.modified()).expect("mtime");
        let key = Sha256::digest(format!("{}{modified:?}", exe.display()).as_bytes());
        let key = hex::encode(&key[..8]);
        let root = std::env::temp_dir().join(format!("zhurnal-e2e-{key}"));
        remove_stale_templates();
        std::fs::create_dir_all(&root).expect("template dir");
        let lock = |name: &str| {
            let lock = std::fs::File::create(root.join(name)).expect("lock file");
            lock.lock().expect("template lock");
            lock
        };
        // A lock per backend: SQLite tests need not wait while a PostgreSQL test seeds its
        // template (half a minute in a debug build), and can use the other core meanwhile.
        let sqlite = lock("lock");
        if !root.join("zhurnal.db").exists() {
            Self::seed_sqlite(&root).await;
        }
        drop(sqlite);
        let pg_template = match admin {
            None => None,
            Some(admin) => {
                let pg = lock("lock-pg");
                // The cluster is per CI run, so the template is looked up there, not on disk.
                let name = format!("zt_tmpl_{key}");
                if !zhurnal_store_postgres::test_database_exists(&admin, &name)
                    .await
                    .expect("pg template lookup")
                {
                    Self::seed_postgres(&root, &admin, &name).await;
                }
                drop(pg);
                Some((admin, name))
            }
        };
        Some(Template { root, pg_template })
    }

    async fn seeded(cfg: &Config, store: Arc<dyn Store>) {
        let keys = cfg.load_keys(false).expect("keys");
        let clock = Arc::new(FixedClock::new(school_day()));
        let app = build_app_with_clock(cfg, store, &keys, clock).expect("app");
        seed::seed_demo(&app, &keys).await.expect("seed");
    }

    async fn seed_sqlite(root: &Path) {
        let work = tempfile::tempdir_in(root).expect("seed dir");
        let cfg = Config { data_dir: work.path().to_path_buf(), ..Config::default() };
        let keys = cfg.load_keys(true).expect("keys");
        let sealer = Arc::new(keys.sealer().expect("sealer"));
        let path = work.path().join("zhurnal.db");
        let store = Arc::new(
            zhurnal_store_sqlite::SqliteStore::open(&path, true, sealer).await.expect("store"),
        );
        Self::seeded(&cfg, store.clone()).await;
        store.close().await;
        std::fs::copy(cfg.keys_path(), root.join("keys.toml")).expect("keys");
        // Renamed last, so a crash mid-seed never leaves a half-made template behind.
        std::fs::rename(&path, root.join("zhurnal.db")).expect("publish template");
    }

    async fn seed_postgres(root: &Path, admin: &str, name: &str) {
        let work = tempfile::tempdir_in(root).expect("seed dir");
        let cfg = Config { data_dir: work.path().to_path_buf(), ..Config::default() };
        std::fs::copy(root.join("keys.toml"), cfg.keys_path()).expect("keys");
        let keys = cfg.load_keys(false).expect("keys");
        let url = zhurnal_store_postgres::create_test_database(admin).await.expect("database");
        let store = Arc::new(
            zhurnal_store_postgres::PgStore::connect(
                &url,
                Arc::new(keys.sealer().expect("sealer")),
            )
            .await
            .expect("store"),
        );
        Self::seeded(&cfg, store.clone()).await;
        store.close().await;
        zhurnal_store_postgres::rename_test_database(admin, &url, name)
            .await
            .expect("publish template");
    }
}

/// Templates of binaries rebuilt more than a day ago (14 MB each) are removed.
fn remove_stale_templates() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let stale = e.metadata().and_then(|m| m.modified()).ok().and_then(|m| m.elapsed().ok());
        if e.file_name().to_string_lossy().starts_with("zhurnal-e2e-")
            && stale.is_some_and(|age| age > std::time::Duration::from_secs(86_400))
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
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
