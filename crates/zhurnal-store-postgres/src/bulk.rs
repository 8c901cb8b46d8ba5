//! [`BulkStore`] on PostgreSQL: `COPY … FROM STDIN` (text format) per table, all tables of one
//! call in one transaction.

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
