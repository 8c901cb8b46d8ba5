//! `zhurnal`: the one binary — server, demo, migrations, ESIA simulator and admin commands.

use zhurnal::{build_app, config, open_store, seed};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use zhurnal_domain::{Role, RoleScope, Snils};
use zhurnal_store::{NewAudit, Store};

use config::{Config, Overrides};
pub(crate) use zhurnal::seed::SimArgs;

#[derive(Parser)]
#[command(
    name = "zhurnal",
    version,
    about = "Zhurnal — электронный журнал и дневник для региона (вход только через ЕСИА)"
)]
struct Cli {
    /// Configuration file (default: ./zhurnal.toml if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (needs [esia] in the configuration and a keys file).
    Serve {
        #[arg(long)]
        listen: Option<SocketAddr>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run a demo school with the bundled ESIA simulator on this machine (SQLite, no internet).
    Demo {
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Create the database or apply pending migrations, then exit.
    Migrate {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Run the ESIA simulator alone (for tests and integrators).
    EsiaSim(SimArgs),
    /// Administrative commands.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Key management.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print or check the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Account lifecycle: block, unblock, block dormant accounts (for cron).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Run the local Сферум simulator alone (chats in memory; for tests and integrators).
    SferumSim {
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: SocketAddr,
    },
    /// Run the local «Школьное портфолио» simulator alone.
    PortfolioSim {
        #[arg(long, default_value = "127.0.0.1:8092")]
        listen: SocketAddr,
    },
    /// The integrations outbox: status, replay of dead letters, chat sync of a school.
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Area `bench`: generate a synthetic region (schools, people, a term of lessons, marks and
    /// attendance) into an empty database, plus the ESIA simulator's accounts for the benchmark.
    Generate(zhurnal::generate::GenerateArgs),
    // Area `import`: import, export, purge, retention.
    /// Load data from the old journal: validates everything first, writes nothing unless all
    /// is valid; a second run of the same input changes nothing.
    Import {
        /// zhurnal-csv (the documented set) or oneroster (OneRoster 1.1 CSV).
        #[arg(long)]
        format: String,
        /// A directory of CSV files, a ZIP of them, or (zhurnal-csv) one `.xlsx` workbook
        /// with a sheet per file.
        path: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Export schools in the Zhurnal CSV format (contains personal data, СНИЛС included): one
    /// `--school` into DIR; several, or `--all`, each into DIR/<school's external id>/.
    Export {
        #[arg(long, default_value = "zhurnal-csv")]
        format: String,
        /// The school's external id; repeat the flag for several schools.
        #[arg(long = "school", required_unless_present = "all")]
        schools: Vec<String>,
        /// Every school in the database (a region's move, school by school).
        #[arg(long, conflicts_with = "schools")]
        all: bool,
        /// Output directory.
        dir: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Overwrite and delete imported source files; names, sizes and SHA-256 go to an act of
    /// destruction and the purge ledger.
    PurgeImport {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// The migration register: every school imported, verified (a re-run changed nothing),
    /// source purged (with the act's number).
    MigrationStatus {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Retention: destroy personal data past its period (the server also runs it daily).
    #[command(subcommand)]
    Retention(RetentionCommand),
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// Counts per status and the latest dead letters.
    Status {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Make dead-lettered events pending again (all, or one with --id); the idempotency key
    /// stays, so the receiver applies each at most once.
    Replay {
        #[arg(long)]
        id: Option<i64>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Queue a chat sync for every class that needs a Сферум chat and has none (a school
    /// newly connected to Сферум).
    SyncChats {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum RetentionCommand {
    /// Destroy what is past retention, compact the database, write the act and the ledger.
    Run {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Write an act of destruction as PDF.
    Act {
        /// The act's number, e.g. А-2026-0001.
        number: String,
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Re-apply the purge ledger now (start-up does it too).
    Reapply {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AccountsCommand {
    /// Block an account (its sessions end at once); the reason goes to the audit log.
    Block {
        /// The person's public id (uid), as shown in the journal.
        #[arg(long)]
        uid: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Lift a block (administrator's or dormancy); a new inactivity period starts now.
    Unblock {
        #[arg(long)]
        uid: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Block accounts without a login for longer than `security.dormant_after_days` and warn
    /// those a week before (the server also does this every hour).
    BlockDormant {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Bind a staff role to the person registered with this СНИЛС (the first regional admin).
    Grant {
        #[arg(long)]
        snils: String,
        /// teacher, school-admin, municipal-officer, regional-admin, security-officer
        #[arg(long)]
        role: String,
        /// External id of the school, municipality or region; default: the only region.
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Write a new keys file (audit chain and СНИЛС keys).
    Generate {
        #[arg(long)]
        out: PathBuf,
    },
    /// New СНИЛС encryption and matching keys: every stored СНИЛС is re-encrypted in one
    /// transaction, then the keys file is replaced (the old one is kept as `.retired-…` for
    /// reading older backups). Stop the server first.
    Rotate {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print an annotated example configuration.
    Example,
    /// Load the configuration (file, environment) and report problems.
    Check,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute the hash chain, check it against the anchors file and report the first
    /// record that does not match.
    Verify {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Append the current chain head to the anchors file (`<data_dir>/audit-anchors.log`);
    /// the server does it every `security.anchor_interval_minutes`. Copy the file elsewhere too.
    Anchor {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// The server's rows are built on SQLite's and sqlx's worker threads and freed on tokio's: glibc's
/// allocator spent ~20 % of the journal page's CPU on that (docs/performance.md, fifth round).
/// `override` gives the bundled SQLite the same allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ZHURNAL_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("ошибка: не удалось запустить среду выполнения: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ошибка: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let file = cli.config.as_deref();
    match cli.command {
        Command::Serve { listen, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen, data_dir })?;
            serve(cfg).await
        }
        Command::Demo { listen, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: Some(listen), data_dir })?;
            seed::run_demo(cfg).await
        }
        Command::Migrate { data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let keys = cfg.load_keys(false).or_else(|_| cfg.load_keys(true))?;
            let store = open_store(&cfg, Arc::new(keys.sealer()?), true).await?;
            println!("миграции применены ({})", store.backend().name());
            // Without it the process may exit before SQLite checkpoints its WAL.
            store.close().await;
            Ok(())
        }
        Command::EsiaSim(args) => seed::run_sim(args).await,
        Command::Admin(AdminCommand::Grant { snils, role, scope, data_dir }) => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            admin_grant(cfg, &snils, &role, scope.as_deref()).await
        }
        Command::Keys(KeysCommand::Generate { out }) => {
            if out.exists() {
                bail!(
                    "файл {} уже существует: новые ключи сделали бы старые данные нечитаемыми",
                    out.display()
                );
            }
            config::write_private(&out, &config::toml_keys(&zhurnal_app::Keys::generate())?)?;
            println!(
                "ключи записаны в {} (права 0600); храните их отдельно от базы данных",
                out.display()
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate { data_dir }) => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            rotate_keys(&cfg).await
        }
        Command::Config(ConfigCommand::Example) => {
            print!("{}", config::EXAMPLE);
            Ok(())
        }
        Command::Config(ConfigCommand::Check) => {
            let cfg = Config::load(file, &Overrides::default())?;
            cfg.validate_for_serve()?;
            println!(
                "конфигурация в порядке: listen={} data_dir={}",
                cfg.listen,
                cfg.data_dir.display()
            );
            Ok(())
        }
        Command::Audit(AuditCommand::Verify { data_dir }) => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            audit_verify(cfg).await
        }
        Command::Audit(AuditCommand::Anchor { data_dir }) => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            match app.anchor_audit_head(&cfg.anchors_path()).await? {
                Some(a) => println!(
                    "якорь записан в {}: запись #{}, хеш {}",
                    cfg.anchors_path().display(),
                    a.seq,
                    hex::encode(&a.hash)
                ),
                None => println!(
                    "якорь не нужен: журнал пуст или его голова не изменилась с последнего якоря"
                ),
            }
            Ok(())
        }
        Command::Accounts(cmd) => accounts(file, cmd).await,
        Command::SferumSim { listen } => seed::run_integration_sim("sferum", listen).await,
        Command::PortfolioSim { listen } => seed::run_integration_sim("portfolio", listen).await,
        Command::Outbox(cmd) => outbox(file, cmd).await,
        // Area `bench`.
        Command::Generate(args) => zhurnal::generate::run(file, args).await,
        Command::Import { format, path, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            import(&cfg, &format, &path).await
        }
        Command::Export { format, schools, all, dir, data_dir } => {
            if format != "zhurnal-csv" {
                bail!("--format: поддерживается только zhurnal-csv");
            }
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let known: Vec<String> =
                app.store.list_schools().await?.into_iter().map(|s| s.external_id).collect();
            let schools = if all { known.clone() } else { schools };
            // Every name is checked before anything is written: a typo in the third school
            // must not leave two exports of personal data behind.
            let unknown: Vec<&String> =
                schools.iter().filter(|s| !all && !known.contains(s)).collect();
            if !unknown.is_empty() {
                bail!(
                    "--school: нет школ с кодами {unknown:?}; коды школ: `zhurnal migration-status` (ничего не выгружено)"
                );
            }
            if schools.is_empty() {
                bail!("в базе нет школ: выгружать нечего");
            }
            let apart = all || schools.len() > 1;
            let mut total = 0;
            for school in &schools {
                let out = if apart { dir.join(school) } else { dir.clone() };
                let rows = app.export_school_csv(school, &out).await?;
                println!("{school}: выгружено строк: {rows} в {}", out.display());
                total += rows;
            }
            println!(
                "всего строк: {total}, школ: {}; файлы содержат персональные данные и СНИЛС — храните и уничтожайте их как таковые",
                schools.len()
            );
            Ok(())
        }
        Command::PurgeImport { paths, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let ledger = zhurnal_app::purge::Ledger::new(cfg.ledger_path());
            let by =
                zhurnal_app::purge::DestroyedBy::system("командная строка (zhurnal purge-import)");
            let done = app.purge_import_sources(&cfg.retention, &ledger, &paths, &by).await?;
            for f in &done.files {
                println!("уничтожен {} ({} байт, SHA-256 {})", f.name, f.size, f.sha256);
            }
            println!(
                "акт № {}; отмечено загрузок: {}; запись в журнале уничтожения {}",
                done.act,
                done.runs_marked,
                cfg.ledger_path().display()
            );
            Ok(())
        }
        Command::Retention(cmd) => retention(file, cmd).await,
        Command::MigrationStatus { data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let day = |t: Option<i64>| {
                t.and_then(chrono::DateTime::from_timestamp_micros)
                    .map(|d| d.format("%d.%m.%Y").to_string())
                    .unwrap_or_else(|| "—".into())
            };
            println!("школа\tзагружена\tсверена\tисточник уничтожен");
            for s in app.migration_status().await? {
                println!(
                    "{} ({})\t{}\t{}\t{}",
                    s.name,
                    s.external_id,
                    day(s.imported_at),
                    day(s.verified_at),
                    s.source_purged_act.map_or("—".to_string(), |a| format!("акт № {a}"))
                );
            }
            Ok(())
        }
    }
}

async fn import(cfg: &Config, format: &str, path: &std::path::Path) -> anyhow::Result<()> {
    use zhurnal_app::import::{Format, ImportOutcome, ImportedBy, Source};
    let format = Format::from_code(format).ok_or_else(|| {
        anyhow::anyhow!(
            "--format: неизвестный формат «{format}»; допустимы: zhurnal-csv, oneroster"
        )
    })?;
    let source = Source::at(path)?;
    let keys = cfg.load_keys(false).or_else(|_| cfg.load_keys(true))?;
    let store = open_store(cfg, Arc::new(keys.sealer()?), true).await?;
    let app = build_app(cfg, store, &keys)?;
    let bar = BarProgress::new(std::fs::metadata(path).map(|m| m.len()).ok());
    let outcome = app.import_with_progress(format, &source, ImportedBy::Cli, &bar).await;
    bar.bar.finish_and_clear();
    match outcome? {
        ImportOutcome::Applied(s) => {
            println!(
                "загружено: строк {}, новых записей {}, изменено {}, без изменений {}; школы: {}",
                s.rows,
                s.stats.inserted,
                s.stats.updated,
                s.stats.unchanged,
                s.schools.join(", ")
            );
            println!(
                "SHA-256 источника: {} (после проверки: zhurnal purge-import {})",
                s.source_sha256,
                path.display()
            );
            Ok(())
        }
        ImportOutcome::Invalid { issues, total } => {
            for i in &issues {
                eprintln!("{i}");
            }
            if total > issues.len() as u64 {
                eprintln!("… и ещё {} ошибок", total - issues.len() as u64);
            }
            bail!(
                "найдено ошибок: {total}; ничего не записано — исправьте данные и запустите загрузку снова"
            )
        }
    }
}

/// The import's progress on stderr: rows read while checking and reading, then schools
/// written. Hidden when stderr is not a terminal (a log file, CI).
struct BarProgress {
    bar: indicatif::ProgressBar,
    /// The size of the source file (a ZIP or a workbook), shown beside the row count.
    size: Option<u64>,
}

impl BarProgress {
    fn new(size: Option<u64>) -> Self {
        use std::io::IsTerminal;
        let bar = if std::io::stderr().is_terminal() {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        Self { bar, size }
    }
}

impl zhurnal_app::import::Progress for BarProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        let template = match total {
            Some(_) => "{msg}: {bar:40} {pos}/{len} [{elapsed_precise}]".to_string(),
            None => {
                let size = self
                    .size
                    .map(|b| format!(" (файл {})", indicatif::HumanBytes(b)))
                    .unwrap_or_default();
                format!("{{spinner}} {{msg}}: {{human_pos}} строк{size} [{{elapsed_precise}}]")
            }
        };
        self.bar.set_style(
            indicatif::ProgressStyle::with_template(&template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        self.bar.set_length(total.unwrap_or(0));
        self.bar.set_position(0);
        self.bar.set_message(name.to_string());
    }
    fn done(&self, steps: u64) {
        self.bar.set_position(steps);
    }
}

async fn retention(file: Option<&std::path::Path>, cmd: RetentionCommand) -> anyhow::Result<()> {
    use zhurnal_app::purge::{DestroyedBy, Ledger};
    match cmd {
        RetentionCommand::Run { data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let by = DestroyedBy::system("командная строка (zhurnal retention run)");
            let run = app
                .run_retention(
                    &cfg.retention,
                    &Ledger::new(cfg.ledger_path()),
                    Some(&cfg.staging_dir()),
                    &by,
                )
                .await?;
            println!(
                "уничтожено: учеников {}, родителей {}, отметок {}, записей посещаемости {}, сеансов {}, файлов загрузки {}; акт: {}",
                run.students,
                run.parents,
                run.counts.marks,
                run.counts.attendance,
                run.sessions,
                run.staged_files,
                run.act
                    .as_deref()
                    .unwrap_or("не нужен (персональных данных с истёкшим сроком нет)")
            );
        }
        RetentionCommand::Act { number, out, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let doc = app.destruction_act_doc(&number).await?;
            let pdf = zhurnal_app::export::to_pdf(&doc)?;
            std::fs::write(&out, pdf).with_context(|| format!("запись {}", out.display()))?;
            println!("акт № {number} записан в {}", out.display());
        }
        RetentionCommand::Reapply { data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let r = app.reapply_ledger(&Ledger::new(cfg.ledger_path())).await?;
            println!(
                "записей в журнале уничтожения: {}; повторно уничтожено людей: {}",
                r.entries, r.persons
            );
        }
    }
    Ok(())
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    cfg.validate_for_serve()?;
    let Some(esia) = cfg.esia.clone() else {
        bail!(
            "для `zhurnal serve` нужен раздел [esia] в конфигурации (см. `zhurnal config example`); для пробы используйте `zhurnal demo`"
        );
    };
    let keys = cfg.load_keys(false)?;
    let store = open_store(&cfg, Arc::new(keys.sealer()?), true).await?;
    let app = build_app(&cfg, store, &keys)?;
    let idp = zhurnal_esia::EsiaClient::new(esia).context("настройка ЕСИА")?;
    seed::serve_web(&cfg, app, Arc::new(idp)).await
}

async fn admin_grant(
    cfg: Config,
    snils: &str,
    role: &str,
    scope: Option<&str>,
) -> anyhow::Result<()> {
    let snils = Snils::parse(snils).map_err(|e| anyhow::anyhow!("--snils: {e}"))?;
    let role = Role::from_code(role).ok_or_else(|| {
        anyhow::anyhow!("--role: неизвестная роль «{role}»; допустимы: teacher, school-admin, municipal-officer, regional-admin, security-officer")
    })?;
    let keys = cfg.load_keys(false)?;
    let store = open_store(&cfg, Arc::new(keys.sealer()?), false).await?;
    let vault = keys.vault()?;
    let person =
        store.find_person_by_snils_hmac(&vault.match_key(&snils)).await?.ok_or_else(|| {
            anyhow::anyhow!(
                "человек с этим СНИЛС не зарегистрирован: сначала внесите его (импорт или школа)"
            )
        })?;
    let scope = resolve_scope(store.as_ref(), role, scope).await?;
    let audit = NewAudit::new(chrono::Utc::now().timestamp_micros(), "role.grant", "ok")
        .actor(0, "cli")
        .target("person", &person.uid)
        .details(serde_json::json!({ "role": role.code(), "scope": scope, "via": "zhurnal admin grant" }));
    store.grant_role(person.id, role, scope, None, audit).await?;
    println!("роль «{}» выдана: {} ({})", role.title(), person.short_name(), person.uid);
    Ok(())
}

async fn resolve_scope(
    store: &dyn Store,
    role: Role,
    scope: Option<&str>,
) -> anyhow::Result<RoleScope> {
    match role.scope_kind() {
        "school" => {
            let ext = scope.ok_or_else(|| anyhow::anyhow!("--scope: укажите внешний код школы"))?;
            let s = store
                .find_school_by_external_id(ext)
                .await?
                .ok_or_else(|| anyhow::anyhow!("школа «{ext}» не найдена"))?;
            Ok(RoleScope::School(s.id))
        }
        "municipality" => {
            let ext = scope
                .ok_or_else(|| anyhow::anyhow!("--scope: укажите внешний код муниципалитета"))?;
            let m = store
                .find_municipality_by_external_id(ext)
                .await?
                .ok_or_else(|| anyhow::anyhow!("муниципалитет «{ext}» не найден"))?;
            Ok(RoleScope::Municipality(m.id))
        }
        _ => match scope {
            Some(ext) => {
                let r = store
                    .find_region_by_external_id(ext)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("регион «{ext}» не найден"))?;
                Ok(RoleScope::Region(r.id))
            }
            None => {
                let regions = store.list_regions().await?;
                match regions.as_slice() {
                    [only] => Ok(RoleScope::Region(only.id)),
                    [] => bail!("в базе нет ни одного региона: сначала загрузите данные"),
                    _ => bail!("регионов несколько: укажите --scope с внешним кодом региона"),
                }
            }
        },
    }
}

async fn audit_verify(cfg: Config) -> anyhow::Result<()> {
    let keys = cfg.load_keys(false)?;
    let sealer = keys.sealer()?;
    let store = open_store(&cfg, Arc::new(keys.sealer()?), false).await?;
    let anchors = zhurnal_app::security::read_anchors(&cfg.anchors_path())?;
    let check =
        zhurnal_store::security::verify_with_anchors(store.as_ref(), &sealer, &anchors).await?;
    println!(
        "журнал аудита цел: {} записей, хеш последней {}; якорей проверено: {}",
        check.records,
        hex::encode(&check.last_hash),
        anchors.len()
    );
    if anchors.is_empty() {
        println!(
            "внимание: якорей нет — усечение хвоста журнала не обнаружить; запустите `zhurnal audit anchor`"
        );
    }
    Ok(())
}

/// The application for a CLI command (system clock, existing database).
/// Stages the new keys next to the old file, re-encrypts, then swaps the files: a failure
/// before the swap leaves the database and the keys file as they were.
async fn rotate_keys(cfg: &Config) -> anyhow::Result<()> {
    if cfg.keys.is_some() {
        bail!(
            "ключи заданы в настройках напрямую, а ротация заменяет файл ключей: перенесите их в файл (keys_file) и повторите"
        );
    }
    let path = cfg.keys_path();
    let old = cfg.load_keys(false)?;
    // The audit chain key stays: records already sealed with it must keep verifying.
    let new =
        zhurnal_app::Keys { audit_hmac: old.audit_hmac.clone(), ..zhurnal_app::Keys::generate() };
    let staged = PathBuf::from(format!("{}.new", path.display()));
    if staged.exists() {
        bail!(
            "{} уже существует: прошлая ротация прервалась. Если она успела сообщить «перешифровано», поставьте этот файл на место {}; иначе удалите его и повторите",
            staged.display(),
            path.display()
        );
    }
    config::write_private(&staged, &config::toml_keys(&new)?)?;
    let app = cli_app(cfg).await?;
    let by = zhurnal_app::security::ChangedBy::system("cli");
    let n = match app.rotate_snils_keys(&new.vault()?, &by).await {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e.into());
        }
    };
    println!("перешифровано СНИЛС: {n}");
    let retired = PathBuf::from(format!(
        "{}.retired-{}",
        path.display(),
        chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
    ));
    std::fs::rename(&path, &retired)
        .with_context(|| format!("переименование {} в {}", path.display(), retired.display()))?;
    std::fs::rename(&staged, &path)
        .with_context(|| format!("переименование {} в {}", staged.display(), path.display()))?;
    println!(
        "новые ключи в {}; старые — в {}: они нужны только для резервных копий, сделанных до ротации, — храните их отдельно или уничтожьте по регламенту. Запустите сервер.",
        path.display(),
        retired.display()
    );
    Ok(())
}

async fn cli_app(cfg: &Config) -> anyhow::Result<Arc<zhurnal_app::App>> {
    let keys = cfg.load_keys(false)?;
    let store = open_store(cfg, Arc::new(keys.sealer()?), false).await?;
    zhurnal::build_app(cfg, store, &keys)
}

async fn accounts(file: Option<&std::path::Path>, cmd: AccountsCommand) -> anyhow::Result<()> {
    use zhurnal_app::security::ChangedBy;
    let by = ChangedBy::system("cli");
    match cmd {
        AccountsCommand::Block { uid, reason, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            if app.block_account(&uid, &reason, &by).await? {
                println!("учётная запись {uid} заблокирована; её сеансы завершены");
            } else {
                println!("учётная запись {uid} уже заблокирована с этой причиной");
            }
        }
        AccountsCommand::Unblock { uid, reason, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            if app.unblock_account(&uid, &reason, &by).await? {
                println!("учётная запись {uid} разблокирована");
            } else {
                println!("учётная запись {uid} не была заблокирована");
            }
        }
        AccountsCommand::BlockDormant { data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let run = app.run_dormancy().await?;
            println!(
                "заблокировано за неактивность: {}; предупреждений отправлено: {}",
                run.blocked, run.notices
            );
        }
    }
    Ok(())
}

async fn outbox(file: Option<&std::path::Path>, cmd: OutboxCommand) -> anyhow::Result<()> {
    use zhurnal_store::integration::OutboxStatus;
    match cmd {
        OutboxCommand::Status { data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            for (status, n) in app.store.count_outbox().await? {
                println!("{:<20} {n}", status.title());
            }
            for ev in app.store.list_outbox(Some(OutboxStatus::Dead), None, 20).await? {
                println!(
                    "  #{} {} {} попыток: {} ошибка: {}",
                    ev.id,
                    ev.topic,
                    ev.subject,
                    ev.attempts,
                    ev.last_error.unwrap_or_default()
                );
            }
        }
        OutboxCommand::Replay { id, data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let n = app.replay_outbox(id, "cli").await?;
            match (id, n) {
                (Some(id), 0) => bail!(
                    "событие #{id} не в списке недоставленных (проверьте номер: `zhurnal outbox status`)"
                ),
                _ => println!("возвращено в очередь: {n}; сервер доставит их в ближайшие секунды"),
            }
        }
        OutboxCommand::SyncChats { data_dir } => {
            let cfg = Config::load(file, &Overrides { listen: None, data_dir })?;
            let app = cli_app(&cfg).await?;
            let n = app.enqueue_missing_chats().await?;
            println!("поставлено в очередь синхронизаций чатов: {n}");
        }
    }
    Ok(())
}
