//! What every PostgreSQL test file needs: the server from the environment and a database
//! of its own.
//!
//! The server comes from `ZHURNAL_TEST_POSTGRES_URL` (a maintenance-database URL such as
//! `postgres://postgres@127.0.0.1:5432/postgres`; `cargo xtask ci` starts a throwaway cluster
//! and sets it, `cargo xtask pg-shell` starts one by hand). Each test creates `zt_<hex>` on that
//! server and drops it when the test passes; a failing test leaves its database behind for
//! inspection. Without the variable the tests skip, unless `ZHURNAL_REQUIRE_POSTGRES=1` (set by
//! the xtask) makes that a failure.

#![allow(dead_code)]

use zhurnal_store_postgres::{PgStore, create_test_database, drop_test_database};

pub const URL_VAR: &str = "ZHURNAL_TEST_POSTGRES_URL";
pub const REQUIRE_VAR: &str = "ZHURNAL_REQUIRE_POSTGRES";

/// The maintenance-database URL, or `None` when the tests should skip.
pub fn admin_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                "{REQUIRE_VAR}=1 but {URL_VAR} is not set: these tests need a PostgreSQL server \
                 (cargo xtask pg-shell starts one)"
            );
            println!("skipping: {URL_VAR} not set (cargo xtask ci starts a throwaway cluster)");
            None
        }
    }
}

/// A database owned by one test.
pub struct TestDb {
    pub admin_url: String,
    pub url: String,
}

impl TestDb {
    /// Creates an empty database, or `None` when the tests skip.
    pub async fn create() -> Option<Self> {
        let admin_url = admin_url()?;
        let url = create_test_database(&admin_url).await.expect("create test database");
        Some(Self { admin_url, url })
    }

    /// A migrated store on this database. A small pool: tests run side by side on one server.
    pub async fn store(&self, pool_size: u32) -> PgStore {
        PgStore::connect_with_pool_size(&self.url, pool_size, zhurnal_store::conformance::sealer())
            .await
            .expect("connect and migrate")
    }

    pub async fn drop_database(self) {
        drop_test_database(&self.admin_url, &self.url).await.expect("drop test database");
    }
}
