//! Wiring of the demo (database, keys, ESIA simulator, server) and of the standalone simulator.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use zhurnal_app::App;
use zhurnal_esia::sim::{SimClient, SimConfig, SimPerson, Simulator};
use zhurnal_esia::{EsiaConfig, IdentityProvider, SignerConfig};
use zhurnal_gost::{Certificate, ParamSet, SigningKey};
use zhurnal_store::NewAudit;

use crate::config::{Config, write_private};
use crate::{build_app, demo, open_store};
use std::net::SocketAddr;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct SimArgs {
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// JSON array of persons (see `zhurnal_esia::sim::SimPerson`).
    #[arg(long)]
    pub persons: PathBuf,
    /// The relying party's mnemonic.
    #[arg(long)]
    pub client_id: String,
    /// Registered redirect URI of the relying party (repeatable).
    #[arg(long, required = true)]
    pub redirect_uri: Vec<String>,
    /// Registered logout return URI (repeatable).
    #[arg(long)]
    pub logout_redirect_uri: Vec<String>,
    /// The relying party's certificate (PEM).
    #[arg(long)]
    pub client_cert: PathBuf,
    /// The simulator's own GOST key (PKCS#8 PEM); generated when absent and saved here.
    #[arg(long)]
    pub key: PathBuf,
    /// Inject a fault into every login (e.g. token_bad_sig, user_cancel).
    #[arg(long)]
    pub fault: Option<String>,
}

/// The simulator's client id for the demo journal.
const DEMO_CLIENT_ID: &str = "ZHURNAL-DEMO";
const SIM_ISSUER: &str = "http://esia-sim.local/";

/// Loads a GOST key and its self-signed certificate from `dir`, creating both on first use.
pub(crate) fn key_pair(
    dir: &Path,
    name: &str,
    common_name: &str,
) -> anyhow::Result<(SigningKey, Certificate)> {
    let key_path = dir.join(format!("{name}-key.pem"));
    let cert_path = dir.join(format!("{name}-cert.pem"));
    if key_path.exists() && cert_path.exists() {
        let key = SigningKey::from_pkcs8_pem(&std::fs::read_to_string(&key_path)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", key_path.display()))?;
        let cert = Certificate::from_pem(&std::fs::read_to_string(&cert_path)?)
            .map_err(|e| anyhow::anyhow!("{}: {e}", cert_path.display()))?;
        return Ok((key, cert));
    }
    let key = SigningKey::generate(ParamSet::CryptoProA);
    let cert =
        Certificate::self_signed(&key, common_name, 3650).map_err(|e| anyhow::anyhow!("{e}"))?;
    write_private(&key_path, &key.to_pkcs8_pem())?;
    std::fs::write(&cert_path, cert.to_pem())?;
    Ok((key, cert))
}

fn persona_to_sim(p: &demo::Persona, oid: &str) -> SimPerson {
    SimPerson {
        id: p.id.clone(),
        title: p.title.clone(),
        oid: oid.to_string(),
        last_name: p.last_name.clone(),
        first_name: p.first_name.clone(),
        middle_name: p.middle_name.clone(),
        birth_date: p.birth_date,
        gender: p.gender.clone(),
        snils: p.snils.as_ref().map(|s| s.formatted()),
        trusted: p.trusted,
        email: p.email.clone(),
        mobile: p.mobile.clone(),
        kids: p.kids.clone(),
    }
}

/// What the demo needs at run time besides the database: the ESIA client and the simulator.
pub struct DemoRuntime {
    pub idp: zhurnal_esia::EsiaClient,
    /// Origin of the simulator (allowed as a redirect target by the CSP).
    pub idp_origin: String,
    pub personas: Vec<SimPerson>,
    pub simulator: Simulator,
}

/// Seeds the demo school for the app's "today" (idempotently) and returns the number of rows
/// inserted/updated/unchanged.
pub async fn seed_demo(
    app: &Arc<App>,
    keys: &zhurnal_app::Keys,
) -> anyhow::Result<(demo::DemoData, zhurnal_store::BatchStats)> {
    let store = &app.store;
    let data = demo::generate(app.today());
    let vault = keys.vault()?;
    let snils: HashMap<&str, &zhurnal_domain::Snils> =
        data.snils.iter().map(|(e, s)| (e.as_str(), s)).collect();
    let mut batch = data.batch.clone();
    // Existing ciphertexts are kept so a re-run leaves rows untouched (AEAD nonces are random).
    for p in &mut batch.persons {
        if let Some(s) = snils.get(p.external_id.as_str()) {
            p.snils_hmac = Some(vault.match_key(s));
            p.snils_cipher = match store.find_person_by_uid(&p.uid).await? {
                Some(existing)
                    if existing
                        .snils_cipher
                        .as_ref()
                        .is_some_and(|c| vault.decrypt(c, &p.uid).ok().as_ref() == Some(*s)) =>
                {
                    existing.snils_cipher
                }
                _ => Some(vault.encrypt(s, &p.uid)),
            };
        }
    }
    let audit = NewAudit::new(app.now_micros(), "demo.seed", "ok").actor(0, "cli");
    let stats = store.apply_batch(&batch, audit).await.context("загрузка демо-школы")?;
    seed_security(app, &data).await.context("демо: блокировки и инцидент")?;
    Ok((data, stats))
}

/// The demo's security picture: a few dormant accounts and one ready incident about one of
/// them, with the dormancy block as its evidence. Idempotent. (It writes no `login.refused`
/// record: the login tests count those.)
async fn seed_security(app: &Arc<App>, data: &demo::DemoData) -> anyhow::Result<()> {
    use zhurnal_app::security::{ChangedBy, reasons};
    use zhurnal_store::AccountState;
    use zhurnal_store::security::{AuditFilter, NewIncident, Severity};
    let by = ChangedBy::system("system");
    let mut last = None;
    for ext in &data.dormant {
        let Some(p) = app.store.find_person_by_uid(&demo::uid_for(ext)).await? else { continue };
        app.set_account_state(p.id, AccountState::Dormant, reasons::DORMANT, None, &by).await?;
        last = Some(p);
    }
    if let Some(p) = last
        && app.store.list_incidents(0, i64::MAX).await?.is_empty()
    {
        let filter =
            AuditFilter { action_prefix: Some("account.state".into()), ..AuditFilter::default() };
        let evidence = app.store.search_audit(&filter, 1).await?.iter().map(|r| r.seq).collect();
        let incident = NewIncident {
            rule: "D-01".into(),
            severity: Severity::Medium,
            detected_at: app.now_micros(),
            subject_key: format!("person:{}", p.id.0),
            subject_person_id: Some(p.id),
            subject_ip: Some("198.51.100.23".into()),
            summary:
                "Демонстрационный пример: попытка входа в учётную запись, не использовавшуюся \
                      более 3 месяцев, с адреса 198.51.100.23."
                    .into(),
            evidence,
        };
        let audit = NewAudit::new(app.now_micros(), "incident.created", "ok")
            .reason("D-01")
            .details(serde_json::json!({ "demo": true }));
        app.store.create_incident(&incident, audit).await?;
    }
    Ok(())
}

/// Starts the simulator on a free loopback port with the demo personas, registered for the
/// journal at `base` (e.g. `http://127.0.0.1:8080`), and configures the journal to use it.
pub async fn start_simulator(
    cfg: &mut Config,
    personas: &[demo::Persona],
    base: &str,
) -> anyhow::Result<DemoRuntime> {
    let esia_dir = cfg.data_dir.join("esia");
    let (_rp_key, rp_cert) = key_pair(&esia_dir, "rp", "Zhurnal demo relying party")?;
    let (sim_key, sim_cert) = key_pair(&esia_dir, "sim", "ESIA simulator")?;
    let personas: Vec<SimPerson> = personas
        .iter()
        .enumerate()
        .map(|(i, p)| persona_to_sim(p, &(1_000_001 + i).to_string()))
        .collect();
    std::fs::write(esia_dir.join("persons.json"), serde_json::to_string_pretty(&personas)?)?;
    let sim_listener =
        TcpListener::bind("127.0.0.1:0").await.context("порт для симулятора ЕСИА")?;
    let sim_addr = sim_listener.local_addr()?;
    let mut sim_config = SimConfig::new(
        personas.clone(),
        vec![SimClient {
            client_id: DEMO_CLIENT_ID.to_string(),
            redirect_uris: vec![format!("{base}/auth/callback")],
            logout_redirect_uris: vec![format!("{base}/")],
            certificate_pem: rp_cert.to_pem(),
        }],
    )
    .map_err(|e| anyhow::anyhow!("персонажи симулятора: {e}"))?;
    sim_config.issuer = SIM_ISSUER.to_string();
    sim_config.signing_key = sim_key;
    sim_config.certificate = sim_cert;
    let simulator = Simulator::new(sim_config);
    let served = simulator.clone();
    tokio::spawn(async move {
        if let Err(e) = zhurnal_esia::sim::serve(sim_listener, served).await {
            tracing::error!(error = %e, "ESIA simulator stopped");
        }
    });
    let esia = EsiaConfig {
        base_url: url::Url::parse(&format!("http://{sim_addr}/"))?,
        client_id: DEMO_CLIENT_ID.to_string(),
        redirect_uri: url::Url::parse(&format!("{base}/auth/callback"))?,
        logout_redirect_uri: url::Url::parse(&format!("{base}/"))?,
        scopes: zhurnal_esia::default_scopes(),
        kid_scopes: zhurnal_esia::default_kid_scopes(),
        signer: SignerConfig::KeyFile {
            key_path: esia_dir.join("rp-key.pem"),
            certificate_path: esia_dir.join("rp-cert.pem"),
        },
        certificate_hash: None,
        esia_certificate_path: esia_dir.join("sim-cert.pem"),
        issuer: SIM_ISSUER.to_string(),
        leeway_seconds: 60,
        http_timeout_seconds: 10,
        jwt_algorithms: zhurnal_esia::default_jwt_algorithms(),
    };
    cfg.web.secure_cookies = false;
    cfg.web.allow_login_hint = true;
    cfg.esia = Some(esia.clone());
    cfg.validate_for_serve()?;
    let idp = zhurnal_esia::EsiaClient::new(esia).context("настройка клиента ЕСИА")?;
    Ok(DemoRuntime { idp, idp_origin: format!("http://{sim_addr}"), personas, simulator })
}

pub async fn run_demo(mut cfg: Config) -> anyhow::Result<()> {
    if !cfg.listen.ip().is_loopback() {
        bail!("демо работает только на 127.0.0.1: в нём вход без пароля через симулятор ЕСИА");
    }
    if cfg.database_url.is_some() {
        bail!("демо использует встроенную SQLite: уберите database_url/DATABASE_URL");
    }
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("каталог {}", cfg.data_dir.display()))?;
    let keys = cfg.load_keys(true)?;
    let store = open_store(&cfg, Arc::new(keys.sealer()?), true).await?;
    // Area `integrations`: local Сферум and portfolio unless the configuration names real ones.
    let sims = start_integration_sims(&mut cfg).await?;
    let app = build_app(&cfg, store, &keys)?;
    let listener = TcpListener::bind(cfg.listen).await.with_context(|| {
        format!(
            "адрес {} занят или недоступен (укажите другой: --listen 127.0.0.1:8081)",
            cfg.listen
        )
    })?;
    let base = format!("http://{}", cfg.listen);

    let started = std::time::Instant::now();
    let (data, stats) = seed_demo(&app, &keys).await?;
    println!(
        "демо-школа готова за {:.1} с: добавлено {}, изменено {}, без изменений {}",
        started.elapsed().as_secs_f64(),
        stats.inserted,
        stats.updated,
        stats.unchanged
    );
    let rt = start_simulator(&mut cfg, &data.personas, &base).await?;
    let chats = app.enqueue_missing_chats().await.context("демо: чаты классов в Сферуме")?;
    println!("\nZhurnal (демо) работает: откройте {base}/");
    println!("Симулятор ЕСИА: {}/ (выбор персонажа вместо логина и пароля)", rt.idp_origin);
    println!("Войти сразу под персонажем: {base}/login?login_hint=<персонаж>");
    for p in &rt.personas {
        println!("  {:<20} {}", p.id, p.title);
    }
    println!("Пример: curl -L -c jar -b jar '{base}/login?login_hint=parent-1'");
    for line in sims.describe() {
        println!("{line}");
    }
    println!("Чатов классов поставлено в очередь Сферума: {chats}");
    println!(
        "Данные: {} (повторный запуск ничего не дублирует). Остановка: Ctrl+C.\n",
        cfg.data_dir.display()
    );
    serve_on(&cfg, listener, app, Arc::new(rt.idp), rt.idp_origin).await
}

pub async fn serve_web(
    cfg: &Config,
    app: Arc<App>,
    idp: Arc<dyn IdentityProvider>,
) -> anyhow::Result<()> {
    let listener =
        TcpListener::bind(cfg.listen).await.with_context(|| format!("адрес {}", cfg.listen))?;
    let origin =
        cfg.esia.as_ref().map(|e| e.base_url.origin().ascii_serialization()).unwrap_or_default();
    println!("Zhurnal слушает http://{}", cfg.listen);
    serve_on(cfg, listener, app, idp, origin).await
}

/// The journal's router for a configuration (used by `serve`, `demo` and the tests).
pub fn web_router(
    cfg: &Config,
    app: Arc<App>,
    idp: Arc<dyn IdentityProvider>,
    idp_origin: String,
) -> axum::Router {
    let state = zhurnal_web::AppState { app, idp, config: Arc::new(cfg.web.clone()), idp_origin };
    zhurnal_web::router_with(
        state,
        zhurnal_web::RouterOptions { bench_baseline: cfg.bench.enabled },
    )
}

pub async fn serve_on(
    cfg: &Config,
    listener: TcpListener,
    app: Arc<App>,
    idp: Arc<dyn IdentityProvider>,
    idp_origin: String,
) -> anyhow::Result<()> {
    crate::reapply_purge_ledger(cfg, &app).await?;
    spawn_housekeeping(app.clone(), cfg.web.session_idle_minutes, cfg.web.login_attempt_minutes);
    spawn_security_jobs(app.clone(), cfg.anchors_path());
    spawn_outbox_worker(app.clone());
    spawn_retention_job(app.clone(), cfg);
    let router = web_router(cfg, app, idp, idp_origin);
    axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .context("HTTP-сервер")
}

/// Removes expired sessions and login attempts every minute.
fn spawn_housekeeping(app: Arc<App>, idle_minutes: i64, attempt_minutes: i64) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            let now = app.now_micros();
            if let Err(e) = app.store.delete_sessions_before(now - idle_minutes * 60_000_000).await
            {
                tracing::warn!(error = %e, "session cleanup failed");
            }
            if let Err(e) =
                app.store.delete_login_attempts_before(now - attempt_minutes * 60_000_000).await
            {
                tracing::warn!(error = %e, "login attempt cleanup failed");
            }
        }
    });
}

/// Security jobs inside the server: detection rules every minute, the dormancy job every hour
/// (login and every request enforce dormancy anyway), the audit chain anchor as configured.
fn spawn_security_jobs(app: Arc<App>, anchors: std::path::PathBuf) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        let anchor_every = app.security.anchor_interval_minutes.max(1);
        let mut minute: i64 = 0;
        loop {
            tick.tick().await;
            if let Err(e) = app.run_detection().await {
                tracing::warn!(error = %e, "detection rules failed");
            }
            if minute % 60 == 0 {
                match app.run_dormancy().await {
                    Ok(run) if run.blocked + run.notices > 0 => {
                        tracing::info!(
                            blocked = run.blocked,
                            notices = run.notices,
                            "dormancy job"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "dormancy job failed"),
                }
            }
            if minute % anchor_every == 0
                && let Err(e) = app.anchor_audit_head(&anchors).await
            {
                tracing::warn!(error = %e, "audit anchor failed");
            }
            minute += 1;
        }
    });
}

// --- Area `integrations` ------------------------------------------------------------------------

/// The simulators the demo and the tests start (absent when the configuration names a real
/// service).
#[derive(Clone, Default)]
pub struct IntegrationSims {
    pub sferum: Option<(zhurnal_integrations::sferum::SferumSim, String)>,
    pub portfolio: Option<(zhurnal_integrations::portfolio::PortfolioSim, String)>,
}

impl IntegrationSims {
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, url)) = &self.sferum {
            out.push(format!("Симулятор Сферума: {url}/_sim/state (чаты и участники)"));
        }
        if let Some((_, url)) = &self.portfolio {
            out.push(format!("Симулятор портфолио: {url}/_sim/state (принятые отметки)"));
        }
        out
    }
}

/// Starts local simulators for the systems the configuration leaves unset and points the
/// configuration at them.
pub async fn start_integration_sims(cfg: &mut Config) -> anyhow::Result<IntegrationSims> {
    use zhurnal_integrations::{portfolio, sferum};
    let mut sims = IntegrationSims::default();
    if cfg.integrations.sferum.is_none() {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.context("порт для симулятора Сферума")?;
        let url = format!("http://{}", listener.local_addr()?);
        let sim = sferum::SferumSim::new();
        let served = sim.clone();
        tokio::spawn(async move {
            if let Err(e) = sferum::serve(listener, served).await {
                tracing::error!(error = %e, "Sferum simulator stopped");
            }
        });
        cfg.integrations.sferum = Some(sferum::SferumConfig {
            base_url: url.clone(),
            token: "demo-token".into(),
            ..sferum::SferumConfig::default()
        });
        sims.sferum = Some((sim, url));
    }
    if cfg.integrations.portfolio.is_none() {
        let listener =
            TcpListener::bind("127.0.0.1:0").await.context("порт для симулятора портфолио")?;
        let url = format!("http://{}", listener.local_addr()?);
        let sim = portfolio::PortfolioSim::new();
        let served = sim.clone();
        tokio::spawn(async move {
            if let Err(e) = portfolio::serve(listener, served).await {
                tracing::error!(error = %e, "portfolio simulator stopped");
            }
        });
        cfg.integrations.portfolio = Some(portfolio::PortfolioConfig {
            base_url: url.clone(),
            token: "demo-token".into(),
            ..portfolio::PortfolioConfig::default()
        });
        sims.portfolio = Some((sim, url));
    }
    Ok(sims)
}

/// The outbox worker: delivers due events, sleeping `poll_ms` when there are none.
pub fn spawn_outbox_worker(app: Arc<App>) -> tokio::task::JoinHandle<()> {
    let conn = zhurnal_app::integrations::Connectors::from_config(&app.integrations);
    let poll = Duration::from_millis(app.integrations.worker.poll_ms.max(10));
    tokio::spawn(async move {
        loop {
            match app.deliver_outbox(&conn).await {
                Ok(round) if round.claimed > 0 => {
                    tracing::debug!(?round, "outbox round");
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "outbox round failed"),
            }
            tokio::time::sleep(poll).await;
        }
    })
}

/// `zhurnal sferum-sim` / `zhurnal portfolio-sim`.
pub async fn run_integration_sim(which: &str, listen: std::net::SocketAddr) -> anyhow::Result<()> {
    use zhurnal_integrations::{portfolio, sferum};
    if !listen.ip().is_loopback() {
        bail!("симулятор слушает только 127.0.0.1");
    }
    let listener = TcpListener::bind(listen).await.with_context(|| format!("адрес {listen}"))?;
    println!("Симулятор слушает http://{listen} (состояние: /_sim/state, режим: POST /_sim/mode)");
    if which == "sferum" {
        sferum::serve(listener, sferum::SferumSim::new()).await?;
    } else {
        portfolio::serve(listener, portfolio::PortfolioSim::new()).await?;
    }
    Ok(())
}

/// The retention job once a day (area `import`); the first run an hour after start-up.
fn spawn_retention_job(app: Arc<App>, cfg: &Config) {
    let retention = cfg.retention.clone();
    let ledger = zhurnal_app::purge::Ledger::new(cfg.ledger_path());
    let staging = cfg.staging_dir();
    tokio::spawn(async move {
        let day = Duration::from_secs(86_400);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(3600), day);
        let by = zhurnal_app::purge::DestroyedBy::system("плановое задание сервера (ежедневно)");
        loop {
            tick.tick().await;
            match app.run_retention(&retention, &ledger, Some(&staging), &by).await {
                Ok(run) if run.act.is_some() => {
                    tracing::info!(students = run.students, parents = run.parents, act = ?run.act, "retention job");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "retention job failed"),
            }
        }
    });
}

pub async fn run_sim(args: SimArgs) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() {
        bail!("симулятор ЕСИА слушает только 127.0.0.1");
    }
    let persons =
        zhurnal_esia::sim::load_persons(&args.persons).map_err(|e| anyhow::anyhow!("{e}"))?;
    let client_cert = std::fs::read_to_string(&args.client_cert)
        .with_context(|| format!("{}", args.client_cert.display()))?;
    let dir = args.key.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = args
        .key
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sim")
        .trim_end_matches("-key")
        .to_string();
    let (key, cert) = key_pair(&dir, &stem, "ESIA simulator")?;
    let mut sim_config = SimConfig::new(
        persons,
        vec![SimClient {
            client_id: args.client_id,
            redirect_uris: args.redirect_uri,
            logout_redirect_uris: args.logout_redirect_uri,
            certificate_pem: client_cert,
        }],
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    sim_config.issuer = SIM_ISSUER.to_string();
    sim_config.signing_key = key;
    sim_config.certificate = cert;
    let sim = Simulator::new(sim_config);
    if let Some(f) = args.fault {
        let fault = f.parse().map_err(|e| anyhow::anyhow!("--fault: {e}"))?;
        sim.set_fault(Some(fault));
    }
    let listener = TcpListener::bind(args.listen).await?;
    println!("Симулятор ЕСИА: http://{}/ (сертификат: /sim/esia-cert.pem)", args.listen);
    zhurnal_esia::sim::serve(listener, sim).await.context("симулятор ЕСИА")
}
