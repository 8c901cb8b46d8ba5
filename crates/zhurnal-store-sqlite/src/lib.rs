//! The embedded SQLite backend: one file in the data directory, WAL, foreign keys on,
//! `synchronous=FULL` (a committed mark survives power loss), one writer connection that
//! opens every write transaction with `BEGIN IMMEDIATE` and a pool of readers.

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

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteSynchronous,
};
use sqlx::{Row, Transaction};
use zhurnal_store::*;

pub(crate) use base::{ASSIGNMENT_COLS, ASSIGNMENT_JOINS, PERSON_COLS, scope_columns};
pub(crate) use perf::append_audits_in;

/// The names the shared modules in `crates/zhurnal-store-sql` compile against.
pub(crate) mod backend {
    use zhurnal_store::StoreResult;

    pub(crate) type Db = sqlx::Sqlite;
    pub(crate) type DbRow = sqlx::sqlite::SqliteRow;
    pub(crate) type DbConn = sqlx::SqliteConnection;
    pub(crate) type DbStore = crate::SqliteStore;

    /// One writer: outbox claims cannot overlap, and SQLite has no row locks to skip.
    pub(crate) const SKIP_LOCKED: &str = "";

    /// SQLite's single writer already serialises slot writers, so there is nothing to lock.
    pub(crate) async fn lock_slot_owners(_: &mut DbConn, _: i64, _: i64) -> StoreResult<()> {
        Ok(())
    }

    pub(crate) const BACKEND: zhurnal_store::Backend = zhurnal_store::Backend::Sqlite;

    /// Multi-row statements use anonymous `?`: for each parameter sqlx binds, SQLite finds
    /// a `$n` by a linear scan of the statement's parameter names, which made a 5,000-parameter
    /// upsert quadratic (39 % of an import's time in `sqlite3VListNumToName`).
    pub(crate) const NUMBERED_PARAMS: bool = false;

    /// `column {ANY_OF_1}` matches any id of the list bound as `$1` (a JSON array keeps the
    /// statement text fixed whatever the number of ids).
    pub(crate) const ANY_OF_1: &str = "IN (SELECT value FROM json_each($1))";

    pub(crate) fn id_list(ids: &[i64]) -> StoreResult<String> {
        serde_json::to_string(ids).map_err(|e| zhurnal_store::StoreError::Other(Box::new(e)))
    }

    /// One writer (`BEGIN IMMEDIATE`): batches already run one after another.
    pub(crate) async fn lock_batch(_: &mut DbConn) -> StoreResult<()> {
        Ok(())
    }

    /// One writer: two grants of the same role cannot interleave.
    pub(crate) async fn lock_person(_: &mut DbConn, _: i64) -> StoreResult<()> {
        Ok(())
    }
}

impl SqliteStore {
    /// After a purge: `secure_delete` is on for every connection (see `open`), so freed pages
    /// are zeroed; VACUUM rebuilds the file without free pages; the checkpoint empties the WAL.
    pub(crate) async fn compact(&self) -> StoreResult<String> {
        for sql in ["PRAGMA secure_delete = ON", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"] {
            sqlx::query(sql).execute(&self.writer).await.map_err(map_err)?;
        }
        Ok("SQLite: PRAGMA secure_delete=ON, VACUUM, PRAGMA wal_checkpoint(TRUNCATE)".into())
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
    sealer: Arc<dyn AuditSealer>,
}

impl SqliteStore {
    /// Opens (creating if `create` is set) the database file and applies pending migrations.
    pub async fn open(
        path: &Path,
        create: bool,
        sealer: Arc<dyn AuditSealer>,
    ) -> StoreResult<Self> {
        if !create && !path.exists() {
            return Err(StoreError::NotFound(format!(
                "файл базы данных {} не существует (для новой базы используйте zhurnal migrate)",
                path.display()
            )));
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(map_err)?
            .filename(path)
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            // Freed pages are zeroed, so a deleted person leaves no copy in the file (T-16).
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(10));
        // No ping before each acquire (sqlx's default): a connection here is a thread of this
        // process, not a socket that can go stale, and the ping was a round trip to that
        // thread per statement — ~4 % of the server's CPU in the fourth round's profile.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await
            .map_err(map_err)?;
        MIGRATOR.run(&writer).await.map_err(|e| StoreError::Other(Box::new(e)))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(8)
            .test_before_acquire(false)
            .connect_with(options.read_only(true))
            .await
            .map_err(map_err)?;
        Ok(Self { writer, reader, sealer })
    }

    async fn write_tx(&self) -> StoreResult<Transaction<'static, sqlx::Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)
    }

    /// Closes both pools; the last connection to close checkpoints and removes the WAL, so
    /// the database file alone is then a complete copy.
    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Runs raw maintenance SQL on the writer (VACUUM, checkpoints); used by purge.
    pub async fn execute_maintenance(&self, sql: &'static str) -> StoreResult<()> {
        sqlx::query(sql).execute(&self.writer).await.map_err(map_err)?;
        Ok(())
    }
}

pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound("строка".into()),
        sqlx::Error::Database(db) => {
            let msg = db.message().to_string();
            if msg.contains("UNIQUE constraint failed")
                || msg.contains("FOREIGN KEY constraint failed")
                || msg.contains("CHECK constraint failed")
            {
                StoreError::Conflict { constraint: msg }
            } else if is_busy(db.code().as_deref()) {
                // Another writer (an import, a purge, another process) held the file past the
                // busy timeout: the request may be repeated, nothing is wrong with it or the data.
                StoreError::Unavailable(format!("база данных занята другой записью: {msg}"))
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

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code (e.g. 517, BUSY_SNAPSHOT):
/// sqlx reports the extended result code, whose low byte is the primary one.
fn is_busy(code: Option<&str>) -> bool {
    code.and_then(|c| c.parse::<i32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// Appends one audit record inside the caller's transaction, chaining it to the last one.
pub(crate) async fn append_audit_in(
    conn: &mut SqliteConnection,
    sealer: &dyn AuditSealer,
    a: &NewAudit,
) -> StoreResult<i64> {
    let (seq, prev) = audit_head(conn).await?;
    let hash = sealer.seal(&prev, &a.canonical(seq));
    insert_audit(conn, seq, a, &prev, &hash).await?;
    Ok(seq)
}

/// The `seq` the next audit record takes and the hash it chains to. Inside a write transaction
/// (SQLite has one writer), so nobody else can append between this read and the insert.
pub(crate) async fn audit_head(conn: &mut SqliteConnection) -> StoreResult<(i64, Vec<u8>)> {
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(match head {
        Some(r) => (
            r.try_get::<i64, _>(0).map_err(map_err)? + 1,
            r.try_get::<Vec<u8>, _>(1).map_err(map_err)?,
        ),
        None => (1, zhurnal_store::audit::GENESIS_HASH.to_vec()),
    })
}

/// Inserts one sealed audit row.
pub(crate) async fn insert_audit(
    conn: &mut SqliteConnection,
    seq: i64,
    a: &NewAudit,
    prev: &[u8],
    hash: &[u8],
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_id, actor_role, session_hash, source_ip, action, \
         target_type, target_id, school_id, result, reason, details, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(seq)
    .bind(a.at)
    .bind(a.actor_id)
    .bind(&a.actor_role)
    .bind(&a.session_hash)
    .bind(&a.source_ip)
    .bind(&a.action)
    .bind(&a.target_type)
    .bind(&a.target_id)
    .bind(a.school_id)
    .bind(&a.result)
    .bind(&a.reason)
    .bind(a.details.to_string())
    .bind(prev)
    .bind(hash)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}
