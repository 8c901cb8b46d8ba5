//! [`BulkStore`] on SQLite: multi-row `INSERT`s of a few hundred rows each, one transaction per
//! call on the single writer connection. sqlx caches the prepared statement per SQL text, so
//! every full chunk of a table reuses one statement.

use async_trait::async_trait;
use sqlx::Row;
use zhurnal_store::bulk::{BulkRow, BulkRows, BulkStore, BulkTable, BulkValue};
use zhurnal_store::*;

use crate::{SqliteStore, map_err};

/// SQLite's default limit of bound parameters per statement (SQLITE_MAX_VARIABLE_NUMBER).
const MAX_PARAMS: usize = 32_766;
/// Rows per statement: large enough to amortise the statement, small enough for the limit.
const MAX_ROWS: usize = 500;

fn insert_sql(table: BulkTable, rows: usize) -> String {
    let cols = table.columns();
    let one = format!("({})", vec!["?"; cols.len()].join(", "));
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name(),
        cols.join(", "),
        vec![one.as_str(); rows].join(", ")
    )
}

#[async_trait]
impl BulkStore for SqliteStore {
    async fn bulk_is_empty(&self) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT EXISTS(SELECT 1 FROM regions) OR EXISTS(SELECT 1 FROM schools) \
             OR EXISTS(SELECT 1 FROM persons)",
        )
        .fetch_one(&self.writer)
        .await
        .map_err(map_err)?;
        let any: i64 = row.try_get(0).map_err(map_err)?;
        Ok(any == 0)
    }

    async fn bulk_begin(&self) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        // Indexes written by CREATE INDEX (`sql` is NULL for those of primary keys and unique
        // constraints, which stay). Foreign keys stay checked: SQLite checks one by a lookup
        // of the parent's primary key, and cannot drop one without rebuilding the table.
        // And the triggers of the diary's change stamps (migration 0011): a load into an empty
        // database has no diary weeks built before it to invalidate.
        let indexes: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT type, name, tbl_name, sql FROM sqlite_schema
             WHERE type IN ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name",
        )
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let loaded: Vec<&str> = BulkTable::ALL.into_iter().map(BulkTable::name).collect();
        let mut n = 0;
        for (kind, name, _, sql) in
            indexes.iter().filter(|(_, _, t, _)| loaded.contains(&t.as_str()))
        {
            sqlx::query("INSERT INTO bulk_deferred (ddl) VALUES (?)")
                .bind(sql)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            let quoted = name.replace('"', "\"\"");
            let what = if kind == "trigger" { "TRIGGER" } else { "INDEX" };
            sqlx::query(&format!("DROP {what} \"{quoted}\""))
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            n += 1;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn bulk_pending(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bulk_deferred")
            .fetch_one(&self.writer)
            .await
            .map_err(map_err)?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn bulk_insert(&self, rows: &BulkRows) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let mut written = 0u64;
        for (table, table_rows) in rows.ordered() {
            let per = (MAX_PARAMS / table.columns().len()).clamp(1, MAX_ROWS);
            for chunk in table_rows.chunks(per) {
                let sql = insert_sql(table, chunk.len());
                let mut q = sqlx::query(&sql);
                for row in chunk {
                    q = bind_row(q, row);
                }
                written += q.execute(&mut *tx).await.map_err(map_err)?.rows_affected();
            }
        }
        tx.commit().await.map_err(map_err)?;
        Ok(written)
    }

    async fn bulk_finish(&self) -> StoreResult<()> {
        loop {
            let mut tx = self.write_tx().await?;
            let Some((seq, ddl)) = sqlx::query_as::<_, (i64, String)>(
                "SELECT seq, ddl FROM bulk_deferred ORDER BY seq LIMIT 1",
            )
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            else {
                break;
            };
            // Each re-creation leaves the table in the same transaction: a stop in between
            // leaves exactly the rest pending.
            sqlx::query(&ddl).execute(&mut *tx).await.map_err(map_err)?;
            sqlx::query("DELETE FROM bulk_deferred WHERE seq = ?")
                .bind(seq)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
            tx.commit().await.map_err(map_err)?;
        }
        // INTEGER PRIMARY KEY continues after the largest id by itself: only statistics.
        sqlx::query("ANALYZE").execute(&self.writer).await.map_err(map_err)?;
        // Keep the per-index row counts (sqlite_stat1), drop the samples (sqlite_stat4, the
        // bundled SQLite is built with STAT4): with samples, a statement whose plan could
        // depend on a bound value is re-parsed and re-planned every time it is bound anew,
        // i.e. on every request. That was 20-29 % of the server's CPU in the fourth round's
        // profile (docs/performance.md); a database never analysed, as in production, has no
        // samples either.
        let stat4: Option<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name = 'sqlite_stat4'",
        )
        .fetch_optional(&self.writer)
        .await
        .map_err(map_err)?;
        if stat4.is_some() {
            sqlx::query("DELETE FROM sqlite_stat4").execute(&self.writer).await.map_err(map_err)?;
        }
        Ok(())
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

fn bind_row<'q>(mut q: Query<'q>, row: &'q BulkRow) -> Query<'q> {
    for v in row {
        q = match v {
            BulkValue::Null => q.bind(None::<i64>),
            BulkValue::Int(i) => q.bind(*i),
            BulkValue::Bool(b) => q.bind(*b),
            BulkValue::Text(t) => q.bind(t.as_str()),
            BulkValue::Date(d) => q.bind(*d),
            BulkValue::Bytes(b) => q.bind(b.as_slice()),
        };
    }
    q
}
