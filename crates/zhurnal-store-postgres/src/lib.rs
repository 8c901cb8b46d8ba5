//! The PostgreSQL backend: one `PgPool` for reads and writes (PostgreSQL has row locks and MVCC,
//! so there is no single-writer pool as in SQLite) and write transactions opened with a plain
//! `BEGIN` (READ COMMITTED).
//!
//! The SQL mirrors `zhurnal-store-sqlite` statement by statement; where the text differs, the
//! dialect forced it: `IS [NOT] DISTINCT FROM` for SQLite's `IS [NOT]` (batch keys use `=` or
//! `IS NULL` instead, which an index can serve), `= ANY($1)` with an array for `json_each`,
//! `NULLS FIRST` where SQLite sorts NULLs first by default.
//!
//! What SQLite gets from its single writer, this crate takes with explicit locks, each held to
//! commit: the audit chain head (advisory lock, taken last in every transaction that appends),
//! batches (advisory lock, so re-imports running side by side stay idempotent), and the person
//! row in `grant_role` (so concurrent grants do not duplicate).

#[path = "../../zhurnal-store-sql/admin.rs"]
mod admin;
#[path = "../../zhurnal-store-sql/base.rs"]
mod base;
#[path = "../../zhurnal-store-sql/batch.rs"]
mod batch;
mod bulk;
#[path = "../../zhurnal-store-sql/diary.rs"]
mod diary;
#[path = "../../zhurnal-store-sql/import.rs"]
mod import;
#[path = "../../zhurnal-store-sql/integration.rs"]
mod integration;
#[path = "../../zhurnal-store-sql/journal.rs"]
mod journal;
mod perf;
#[path = "../../zhurnal-store-sql/rows.rs"]
mod rows;
#[path = "../../zhurnal-store-sql/security.rs"]
mod security;

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, Transaction};
use zhurnal_store::*;

pub(crate) use base::{ASSIGNMENT_COLS, ASSIGNMENT_JOINS, PERSON_COLS, scope_columns};
pub(crate) use perf::append_audits_in;

/// The names the shared modules in `crates/zhurnal-store-sql` compile against.
pub(crate) mod backend {
    use zhurnal_store::StoreResult;

    pub(crate) type Db = sqlx::Postgres;
    pub(crate) type DbRow = sqlx::postgres::PgRow;
    pub(crate) type DbConn = sqlx::PgConnection;
    pub(crate) type DbStore = crate::PgStore;

    /// Workers that claim outbox events at once take disjoint rows.
    pub(crate) const SKIP_LOCKED: &str = " FOR UPDATE SKIP LOCKED";

    /// Two concurrent slot writers serialise on the teacher and the class, so both cannot
    /// pass the clash check of `create_slot`.
    pub(crate) async fn lock_slot_owners(
        conn: &mut DbConn,
        teacher: i64,
        class: i64,
    ) -> StoreResult<()> {
        for (sql, id) in [
            ("SELECT id FROM persons WHERE id = $1 FOR UPDATE", teacher),
            ("SELECT id FROM classes WHERE id = $1 FOR UPDATE", class),
        ] {
            sqlx::query(sql).bind(id).execute(&mut *conn).await.map_err(crate::map_err)?;
        }
        Ok(())
    }

    pub(crate) const BACKEND: zhurnal_store::Backend = zhurnal_store::Backend::Postgres;

    /// PostgreSQL knows only `$n` parameters.
    pub(crate) const NUMBERED_PARAMS: bool = true;

    /// `column {ANY_OF_1}` matches any id of the array bound as `$1`.
    pub(crate) const ANY_OF_1: &str = "= ANY($1)";

    pub(crate) fn id_list(ids: &[i64]) -> StoreResult<Vec<i64>> {
        Ok(ids.to_vec())
    }

    /// Two imports of the same rows would both miss and both insert, and one would fail on a
    /// unique key (SQLite runs batches one after another): queue them.
    pub(crate) async fn lock_batch(conn: &mut DbConn) -> StoreResult<()> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(crate::BATCH_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(crate::map_err)?;
        Ok(())
    }

    /// No unique key covers an active grant (NULL scopes), so the person's row is locked: two
    /// concurrent grants of the same role then see each other instead of both inserting.
    pub(crate) async fn lock_person(conn: &mut DbConn, person: i64) -> StoreResult<()> {
        sqlx::query("SELECT id FROM persons WHERE id = $1 FOR UPDATE")
            .bind(person)
            .execute(&mut *conn)
            .await
            .map_err(crate::map_err)?;
        Ok(())
    }
}

/// Every table a purge touches.
const PG_VACUUM: &str = "VACUUM (FULL) persons, marks, mark_history, attendance, final_marks, \
    group_members, guardianships, enrolments, sessions, diary_visits, security_notices, \
    staff_roles, security_incidents";

impl PgStore {
    /// After a purge: VACUUM FULL writes each table anew and drops the old files with their
    /// dead tuples; CHECKPOINT flushes the new files; then the WAL that still holds the
    /// deleted rows is retired ([`Self::retire_wal`]). Backups and WAL archives keep the old
    /// content until they age out: the purge ledger re-applies the purge after a restore.
    pub(crate) async fn compact(&self) -> StoreResult<String> {
        sqlx::query(PG_VACUUM).execute(&self.pool).await.map_err(map_err)?;
        sqlx::query("CHECKPOINT").execute(&self.pool).await.map_err(map_err)?;
        let wal = self.retire_wal().await?;
        Ok(format!("PostgreSQL: {PG_VACUUM}; CHECKPOINT; {wal}"))
    }

    /// Makes every WAL segment written before the purge unneeded, so the checkpoint takes it
    /// out of `pg_wal`: the segment in use is closed (`pg_switch_wal`) and a checkpoint moves
    /// the redo point past it — twice, because a segment is kept while the redo point of the
    /// latest checkpoint lies in it. What then happens to the old segments is the server's
    /// configuration, so the answer (for the act) says what was done and what the settings
    /// leave behind. Missing privileges are reported, not fatal: the rows are already gone
    /// from the tables, and the act must say that the WAL was not retired.
    async fn retire_wal(&self) -> StoreResult<String> {
        for _ in 0..2 {
            for sql in ["SELECT pg_switch_wal()::text", "CHECKPOINT"] {
                let Err(e) = sqlx::query(sql).execute(&self.pool).await else { continue };
                // 42501 insufficient_privilege; anything else is a failure like any query's.
                if e.as_database_error().and_then(|d| d.code()).as_deref() == Some("42501") {
                    return Ok(format!(
                        "WAL не выведен из работы ({sql}: {e}); роли нужны EXECUTE на \
                         pg_switch_wal() и роль pg_checkpoint — сегменты с удалёнными данными \
                         остаются в pg_wal до их замены"
                    ));
                }
                return Err(map_err(e));
            }
        }
        let (recycle, archive, keep, slots): (String, String, String, i64) = sqlx::query_as(
            "SELECT current_setting('wal_recycle'), current_setting('archive_mode'), \
             current_setting('wal_keep_size'), (SELECT count(*) FROM pg_replication_slots)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let mut out = String::from("pg_switch_wal() и CHECKPOINT дважды: сегменты WAL до очистки ");
        out.push_str(if recycle == "off" {
            "удалены из pg_wal (wal_recycle = off)"
        } else {
            "выведены из работы, но при wal_recycle = on переименованы для повторного \
             использования и хранят содержимое до перезаписи (задайте wal_recycle = off)"
        });
        if keep != "0" && keep != "0kB" {
            out.push_str(&format!("; wal_keep_size = {keep} удерживает последние сегменты"));
        }
        if slots > 0 {
            out.push_str(&format!("; {slots} слот(ов) репликации удерживают сегменты"));
        }
        if archive != "off" {
            out.push_str("; архив WAL (archive_mode) хранит копии до истечения срока хранения");
        }
        Ok(out)
    }

    /// One pool serves reads and writes; the shared modules name the two roles apart
    /// because SQLite needs them apart.
    pub(crate) fn reader(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn writer(&self) -> &PgPool {
        &self.pool
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The default number of pooled connections (see [`PgStore::connect_with_pool_size`]).
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// A pooled connection idle this long is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(5);

/// How long a caller waits for a pooled connection (and, at start, for the server to accept
/// one) before the store reports [`StoreError::Unavailable`]; sqlx's default is 30 s, longer
/// than anyone waits for a page.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Key of the advisory lock that serialises audit appends (any constant unique to Zhurnal:
/// "ZHURNAL" in ASCII). Every transaction that appends to the audit log takes it, with
/// `pg_advisory_xact_lock`, right before reading the chain head; it is released at commit or
/// rollback, so two writers can never both chain onto the same head.
const AUDIT_CHAIN_LOCK: i64 = 0x005A_4855_524E_414C;

/// Key of the advisory lock that queues [`Store::apply_batch`] calls ("ZHBATCH").
const BATCH_LOCK: i64 = 0x005A_4842_4154_4348;

pub struct PgStore {
    pool: PgPool,
    sealer: Arc<dyn AuditSealer>,
}

impl PgStore {
    /// Connects with [`DEFAULT_POOL_SIZE`] connections and applies pending migrations.
    pub async fn connect(url: &str, sealer: Arc<dyn AuditSealer>) -> StoreResult<Self> {
        Self::connect_with_pool_size(url, DEFAULT_POOL_SIZE, sealer).await
    }

    /// Connects with at most `size` pooled connections and applies pending migrations
    /// (sqlx takes an advisory lock of its own, so concurrent starts migrate once).
    pub async fn connect_with_pool_size(
        url: &str,
        size: u32,
        sealer: Arc<dyn AuditSealer>,
    ) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse().map_err(map_err)?;
        let pool = PgPoolOptions::new()
            .max_connections(size.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            // sqlx pings a pooled connection before every acquire by default: a round trip
            // per statement, doubling the round trips of a page. A connection that has been
            // idle a while is still pinged (and replaced if the server went away meanwhile);
            // one in steady use is not, so after a server restart under load each pooled
            // connection fails one statement and is then replaced.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_AFTER_IDLE {
                        conn.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
            .map_err(map_err)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Self { pool, sealer })
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(map_err)
    }

    /// Closes the pool, waiting for checked-out connections to come back.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates an empty database named `zt_<random hex>` on the server of `admin_url` (a URL of a
/// maintenance database, e.g. `postgres://postgres@127.0.0.1:5432/postgres`) and returns the
/// URL of the new database. For tests: each test owns its database.
#[doc(hidden)]
pub async fn create_test_database(admin_url: &str) -> StoreResult<String> {
    create_test_database_from(admin_url, None).await
}

/// Like [`create_test_database`], as a copy of `template` (a test database nobody is connected
/// to): seeding once and copying is much faster than seeding every test's database.
#[doc(hidden)]
pub async fn create_test_database_from(
    admin_url: &str,
    template: Option<&str>,
) -> StoreResult<String> {
    let name = format!("zt_{:016x}", rand::random::<u64>());
    let mut conn = admin_connection(admin_url).await?;
    // CREATE DATABASE takes no bind parameters; names are ours (`zt_` + hex), not input.
    let sql = match template {
        Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{}\"", test_name(t)?),
        None => format!("CREATE DATABASE \"{name}\""),
    };
    sqlx::query(&sql).execute(&mut conn).await.map_err(map_err)?;
    conn.close().await.map_err(map_err)?;
    Ok(with_database(admin_url, &name))
}

/// Whether a test database called `name` exists on the server of `admin_url`.
#[doc(hidden)]
pub async fn test_database_exists(admin_url: &str, name: &str) -> StoreResult<bool> {
    let mut conn = admin_connection(admin_url).await?;
    let found = sqlx::query("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(test_name(name)?)
        .fetch_optional(&mut conn)
        .await
        .map_err(map_err)?;
    conn.close().await.map_err(map_err)?;
    Ok(found.is_some())
}

/// Renames the test database of `database_url` to `name` (publishing a finished template
/// atomically) and returns the new URL.
#[doc(hidden)]
pub async fn rename_test_database(
    admin_url: &str,
    database_url: &str,
    name: &str,
) -> StoreResult<String> {
    let from = test_name(database_name(database_url))?;
    let to = test_name(name)?;
    let mut conn = admin_connection(admin_url).await?;
    sqlx::query(&format!("ALTER DATABASE \"{from}\" RENAME TO \"{to}\""))
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
    conn.close().await.map_err(map_err)?;
    Ok(with_database(admin_url, &to))
}

/// Only names this module makes (`zt_` + letters, digits, `_`) are ever put into SQL.
fn test_name(name: &str) -> StoreResult<String> {
    if name.starts_with("zt_") && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(name.to_string())
    } else {
        Err(StoreError::Other(format!("{name:?} is not a test database").into()))
    }
}

/// Drops a database made by [`create_test_database`], disconnecting whoever is still on it.
#[doc(hidden)]
pub async fn drop_test_database(admin_url: &str, database_url: &str) -> StoreResult<()> {
    let name = test_name(database_name(database_url))?;
    let mut conn = admin_connection(admin_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .map_err(map_err)?;
    conn.close().await.map_err(map_err)?;
    Ok(())
}

async fn admin_connection(admin_url: &str) -> StoreResult<PgConnection> {
    let options: PgConnectOptions = admin_url.parse().map_err(map_err)?;
    options.connect().await.map_err(map_err)
}

/// `url` with its database (the path) replaced by `name`, query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// The database (path) of a URL.
fn database_name(url: &str) -> &str {
    let base = url.split_once('?').map_or(url, |(b, _)| b);
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    base[authority_start..].find('/').map_or("", |i| &base[authority_start + i + 1..])
}

pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound("строка".into()),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            if code.starts_with("23") {
                // Class 23, integrity constraint violation: unique, foreign key, check, not null.
                let constraint =
                    db.constraint().map_or_else(|| db.message().to_string(), str::to_string);
                StoreError::Conflict { constraint }
            } else if code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") {
                // Connection exceptions, insufficient resources, server shutting down.
                StoreError::Unavailable(db.message().to_string())
            } else {
                StoreError::Other(Box::new(sqlx::Error::Database(db)))
            }
        }
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Other(Box::new(other)),
    }
}

/// Appends one audit record inside the caller's transaction, chaining it to the last one.
///
/// Call it last in the transaction: it takes the chain lock, which is then held until commit,
/// and a transaction that holds it and waited for row locks afterwards could deadlock with one
/// that holds those rows and waits for the chain. READ COMMITTED gives the head query a fresh
/// snapshot taken after the lock, so it sees the previous holder's committed record.
pub(crate) async fn append_audit_in(
    conn: &mut PgConnection,
    sealer: &dyn AuditSealer,
    a: &NewAudit,
) -> StoreResult<i64> {
    let seqs = perf::append_audits_in(conn, sealer, std::slice::from_ref(a)).await?;
    seqs.first()
        .copied()
        .ok_or_else(|| StoreError::Corrupt("an audit append returned no sequence number".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "zt_1"),
            "postgres://postgres@127.0.0.1:5432/zt_1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/postgres?sslmode=disable", "zt_1"),
            "postgresql://u:p@h/zt_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "zt_1"), "postgres://h:1/zt_1");
        assert_eq!(
            with_database("postgres:///postgres?host=/run/postgresql", "zt_1"),
            "postgres:///zt_1?host=/run/postgresql"
        );
    }

    #[test]
    fn the_database_of_a_url_is_read() {
        assert_eq!(database_name("postgres://u@h:5/zt_ab?x=1"), "zt_ab");
        assert_eq!(database_name("postgres://u@h:5/zt_ab"), "zt_ab");
        assert_eq!(database_name("postgres://u@h:5"), "");
    }

    #[tokio::test]
    async fn only_test_databases_are_dropped() {
        let err = drop_test_database("postgres://u@127.0.0.1:1/postgres", "postgres://u@h/prod")
            .await
            .expect_err("refused before connecting");
        assert!(err.to_string().contains("not a test database"), "{err}");
    }
}
