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
    /// Recompute the hash chain and report the first record that does not match.
    Verify {
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

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
    }
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
    let check = zhurnal_store::audit::verify_chain(store.as_ref(), &sealer).await?;
    println!(
        "журнал аудита цел: {} записей, хеш последней {}",
        check.records,
        hex::encode(&check.last_hash)
    );
    Ok(())
}
