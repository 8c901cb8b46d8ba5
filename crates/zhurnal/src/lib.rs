//! The `zhurnal` binary's library half: configuration, wiring and the demo, shared by
//! `main.rs` and the end-to-end tests (the same code path the demo runs).

pub mod config;
pub mod demo;
pub mod generate;
pub mod seed;

use std::sync::Arc;

use anyhow::{Context, bail};
use zhurnal_app::{App, Clock, SystemClock};
use zhurnal_store::{AuditSealer, Store};

use config::Config;

/// Opens the configured backend: PostgreSQL for `postgres://` URLs, else the SQLite file in the
/// data directory. An unknown scheme is refused rather than guessed.
pub async fn open_store(
    cfg: &Config,
    sealer: Arc<dyn AuditSealer>,
    create: bool,
) -> anyhow::Result<Arc<dyn Store>> {
    match cfg.database_url.as_deref() {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let store = zhurnal_store_postgres::PgStore::connect(url, sealer)
                .await
                .context("подключение к PostgreSQL")?;
            Ok(Arc::new(store))
        }
        Some(other) => {
            let scheme = other.split(':').next().unwrap_or_default();
            bail!(
                "database_url со схемой «{scheme}» не поддерживается: используйте postgres://… или уберите параметр для встроенной SQLite"
            )
        }
        None => {
            std::fs::create_dir_all(&cfg.data_dir)
                .with_context(|| format!("создание каталога данных {}", cfg.data_dir.display()))?;
            let path = cfg.data_dir.join("zhurnal.db");
            let store = zhurnal_store_sqlite::SqliteStore::open(&path, create, sealer)
                .await
                .with_context(|| format!("открытие базы {}", path.display()))?;
            Ok(Arc::new(store))
        }
    }
}

pub fn build_app(
    cfg: &Config,
    store: Arc<dyn Store>,
    keys: &zhurnal_app::Keys,
) -> anyhow::Result<Arc<App>> {
    build_app_with_clock(cfg, store, keys, Arc::new(SystemClock))
}

pub fn build_app_with_clock(
    cfg: &Config,
    store: Arc<dyn Store>,
    keys: &zhurnal_app::Keys,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Arc<App>> {
    Ok(Arc::new(
        App::new(store, clock, keys.vault()?, cfg.rules.clone())
            .with_security(cfg.security.clone())
            .with_integrations(cfg.integrations.clone())
            .with_diary_weeks_in_memory(cfg.web.diary_weeks_in_memory)
            .with_report_places(
                cfg.web.reports_at_once,
                std::time::Duration::from_secs(cfg.web.report_wait_seconds),
            ),
    ))
}

/// Re-applies the purge ledger before the server takes requests: persons a restore of an
/// older backup brought back are destroyed again (area `import`).
pub async fn reapply_purge_ledger(cfg: &Config, app: &Arc<App>) -> anyhow::Result<()> {
    let ledger = zhurnal_app::purge::Ledger::new(cfg.ledger_path());
    let r = app.reapply_ledger(&ledger).await.context("журнал уничтожения")?;
    if r.persons > 0 {
        tracing::warn!(
            persons = r.persons,
            entries = r.entries,
            "purge ledger re-applied after a restore"
        );
    }
    Ok(())
}
