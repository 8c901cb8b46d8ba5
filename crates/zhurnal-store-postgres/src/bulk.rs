//! [`BulkStore`] on PostgreSQL: `COPY … FROM STDIN` (text format) per table, all tables of one
//! call in one transaction, into tables whose secondary indexes and foreign keys are set aside
//! until the load ends (PostgreSQL's advice for populating a database: a foreign key checked
//! per row and indexes maintained row by row cost more than building them once at the end).

use std::fmt::Write as _;

use async_trait::async_trait;
use sqlx::Row;
use zhurnal_store::bulk::{BulkRows, BulkStore, BulkTable, BulkValue};
use zhurnal_store::*;

use crate::{PgStore, map_err};

/// Bytes buffered before a chunk goes to the server.
const CHUNK: usize = 1 << 20;

/// Appends `v` in COPY text format (backslash escapes, `\N` for NULL).
fn encode(out: &mut String, v: &BulkValue) {
    match v {
        BulkValue::Null => out.push_str("\\N"),
        BulkValue::Int(i) => {
            let _ = write!(out, "{i}");
        }
        BulkValue::Bool(b) => out.push(if *b { 't' } else { 'f' }),
        BulkValue::Date(d) => {
            let _ = write!(out, "{}", d.format("%Y-%m-%d"));
        }
        BulkValue::Bytes(b) => {
            // bytea hex input `\x…`, its backslash escaped for COPY.
            out.push_str("\\\\x");
            for byte in b {
                let _ = write!(out, "{byte:02x}");
            }
        }
        BulkValue::Text(t) => {
            for c in t.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
}

#[async_trait]
impl BulkStore for PgStore {
    async fn bulk_is_empty(&self) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT EXISTS(SELECT 1 FROM regions) OR EXISTS(SELECT 1 FROM schools) \
             OR EXISTS(SELECT 1 FROM persons)",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        let any: bool = row.try_get(0).map_err(map_err)?;
        Ok(!any)
    }

    async fn bulk_begin(&self) -> StoreResult<u64> {
        let tables: Vec<String> =
            BulkTable::ALL.into_iter().map(|t| t.name().to_string()).collect();
        let mut tx = self.write_tx().await?;
        // Indexes that back no constraint (primary keys and unique constraints stay).
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid
             WHERE t.relnamespace = current_schema()::regnamespace AND t.relname = ANY($1)
               AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
             ORDER BY 1",
        )
        .bind(&tables)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT c.conrelid::regclass::text, quote_ident(c.conname), pg_get_constraintdef(c.oid)
             FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
             WHERE c.contype = 'f' AND t.relnamespace = current_schema()::regnamespace
               AND t.relname = ANY($1)
             ORDER BY 1, 2",
        )
        .bind(&tables)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        // The diary's change stamps (migration 0011): a load into an empty database has no
        // diary weeks built before it to invalidate, and a trigger per copied row would cost
        // more than the load.
        let triggers: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT g.tgrelid::regclass::text, quote_ident(g.tgname), pg_get_triggerdef(g.oid)
             FROM pg_trigger g JOIN pg_class t ON t.oid = g.tgrelid
             WHERE NOT g.tgisinternal AND t.relnamespace = current_schema()::regnamespace
               AND t.relname = ANY($1)
             ORDER BY 1, 2",
        )
        .bind(&tables)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        // Re-created in this order: indexes, then the foreign keys (each checked in one pass
        // over its table, which the indexes make cheaper), then the triggers.
        let ddl = indexes
            .iter()
            .map(|(_, def)| def.clone())
            .chain(foreign_keys.iter().map(|(table, name, def)| {
                format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def}")
            }))
            .chain(triggers.iter().map(|(_, _, def)| def.clone()));
        for d in ddl {
            sqlx::query("INSERT INTO bulk_deferred (ddl) VALUES ($1)")
                .bind(d)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for (table, name, _) in &foreign_keys {
            sqlx::query(&format!("ALTER TABLE {table} DROP CONSTRAINT {name}"))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for (index, _) in &indexes {
            sqlx::query(&format!("DROP INDEX {index}")).execute(&mut *tx).await.map_err(map_err)?;
        }
        for (table, name, _) in &triggers {
            sqlx::query(&format!("DROP TRIGGER {name} ON {table}"))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok((indexes.len() + foreign_keys.len() + triggers.len()) as u64)
    }

    async fn bulk_pending(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bulk_deferred")
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn bulk_insert(&self, rows: &BulkRows) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let mut written = 0u64;
        for (table, table_rows) in rows.ordered() {
            let sql = format!("COPY {} ({}) FROM STDIN", table.name(), table.columns().join(", "));
            let mut copy = tx.copy_in_raw(&sql).await.map_err(map_err)?;
            let mut buf = String::with_capacity(CHUNK + 4096);
            for row in table_rows {
                for (i, v) in row.iter().enumerate() {
                    if i > 0 {
                        buf.push('\t');
                    }
                    encode(&mut buf, v);
                }
                buf.push('\n');
                if buf.len() >= CHUNK {
                    copy.send(buf.as_bytes()).await.map_err(map_err)?;
                    buf.clear();
                }
            }
            if !buf.is_empty() {
                copy.send(buf.as_bytes()).await.map_err(map_err)?;
            }
            written += copy.finish().await.map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(written)
    }

    async fn bulk_finish(&self) -> StoreResult<()> {
        // One connection, so that the index builds get more sort memory than a request does.
        let mut conn = self.pool.acquire().await.map_err(map_err)?;
        sqlx::query("SET maintenance_work_mem = '256MB'")
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
        while let Some((seq, ddl)) = sqlx::query_as::<_, (i64, String)>(
            "SELECT seq, ddl FROM bulk_deferred ORDER BY seq LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?
        {
            // Each re-creation leaves the table in the same transaction: a stop in between
            // leaves exactly the rest pending.
            let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(map_err)?;
            sqlx::query(&ddl).execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query("DELETE FROM bulk_deferred WHERE seq = $1")
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
        }
        sqlx::query("RESET maintenance_work_mem").execute(&mut *conn).await.map_err(map_err)?;
        drop(conn);
        for table in BulkTable::ALL.into_iter().filter(|t| t.has_id()) {
            let t = table.name();
            sqlx::query(&format!(
                "SELECT setval(pg_get_serial_sequence('{t}', 'id'), \
                 COALESCE((SELECT max(id) FROM {t}), 0) + 1, false)"
            ))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        }
        sqlx::query("ANALYZE").execute(&self.pool).await.map_err(map_err)?;
        Ok(())
    }
}
