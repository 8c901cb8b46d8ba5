//! The shared conformance suite on SQLite: a fresh database file per test.

use std::sync::Arc;

use zhurnal_store::Store;
use zhurnal_store_sqlite::SqliteStore;

async fn fresh() -> Arc<dyn Store> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("zhurnal.db");
    // The directory must outlive the store; the OS cleans /tmp, tests stay parallel-safe.
    std::mem::forget(dir);
    Arc::new(
        SqliteStore::open(&path, true, zhurnal_store::conformance::sealer()).await.expect("open"),
    )
}

zhurnal_store::conformance_suite!(fresh());

// Area `diary`: the DiaryStore cases.
mod diary {
    use super::fresh;
    zhurnal_store::diary_conformance_suite!(fresh());
}

/// A write that cannot get the file because another process holds it (a long `zhurnal import`
/// next to the server) is "unavailable, try again" (HTTP 503), not a broken request or a lost
/// session.
#[tokio::test]
async fn a_write_kept_waiting_by_another_writer_is_unavailable_not_an_error() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("zhurnal.db");
    let store =
        SqliteStore::open(&path, true, zhurnal_store::conformance::sealer()).await.expect("open");
    // The store's one writer connection waits 10 s for the file; a tenth is enough here.
    store.execute_maintenance("PRAGMA busy_timeout = 100").await.expect("shorter wait");
    let mut other = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("a second connection");
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.expect("the other writer");
    match store.touch_session("h", 1).await {
        Err(zhurnal_store::StoreError::Unavailable(why)) => {
            assert!(why.contains("занята"), "{why}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    sqlx::query("ROLLBACK").execute(&mut other).await.expect("the other writer done");
    store.touch_session("h", 1).await.expect("the write goes through once the file is free");
}
