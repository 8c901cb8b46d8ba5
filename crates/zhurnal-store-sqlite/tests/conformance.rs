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
