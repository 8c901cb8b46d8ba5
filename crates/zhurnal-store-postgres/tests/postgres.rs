//! What only PostgreSQL can get wrong: the audit chain under concurrent writers, the
//! append-only rule at trigger and grant level, and the driver-error mapping.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::TestDb;
use sqlx::{Connection, PgConnection};
use zhurnal_store::conformance::{TestSealer, fixture};
use zhurnal_store::{AuditSealer, NewAudit, Store, StoreError};
use zhurnal_store_postgres::PgStore;

fn audit(action: &str) -> NewAudit {
    NewAudit::new(1_000_000, action, "ok")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_extend_one_chain() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = Arc::new(db.store(8).await);
    const TASKS: i64 = 8;
    const EACH: i64 = 12;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        handles.push(tokio::spawn(async move {
            for i in 0..EACH {
                let a = NewAudit::new(t * 1000 + i, "test.concurrent", "ok")
                    .details(serde_json::json!({ "task": t, "i": i }));
                if i % 3 == 0 {
                    // Another method that appends inside its own transaction.
                    store
                        .delete_session(&format!("none-{t}-{i}"), Some(a))
                        .await
                        .expect("delete_session");
                } else {
                    store.append_audit(a).await.expect("append");
                }
            }
        }));
    }
    for h in handles {
        h.await.expect("task");
    }
    let records = store.list_audit(0, 10_000).await.expect("list");
    assert_eq!(records.len() as i64, TASKS * EACH);
    let mut prev = vec![0u8; 32];
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1, "no gaps, no duplicates");
        assert_eq!(r.prev_hash, prev, "record {} forks the chain", r.seq);
        assert_eq!(r.hash, TestSealer.seal(&prev, &r.event.canonical(r.seq)));
        prev = r.hash.clone();
    }
    store.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_audit_log_refuses_rewrites_even_by_its_owner() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store(2).await;
    store.append_audit(audit("test.one")).await.expect("append");
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    for sql in [
        "UPDATE audit_log SET action = 'forged'",
        "UPDATE audit_log SET action = 'forged' WHERE seq = 999",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let err = sqlx::query(sql).execute(&mut conn).await.expect_err("must be refused");
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    assert_eq!(store.list_audit(0, 10).await.expect("list").len(), 1);
    conn.close().await.expect("close");
    store.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn the_application_role_can_only_read_and_append_audit() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store(2).await;
    store.append_audit(audit("test.one")).await.expect("append");
    let role = format!("zt_app_{:08x}", rand_suffix());
    let mut conn = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query(&format!("CREATE ROLE {role} NOLOGIN"))
        .execute(&mut conn)
        .await
        .expect("create role");
    let outcome = async {
        sqlx::query("SELECT zhurnal_restrict_audit_log($1::regrole)")
            .bind(&role)
            .execute(&mut conn)
            .await
            .expect("restrict");
        sqlx::query(&format!("SET ROLE {role}")).execute(&mut conn).await.expect("set role");
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
            .fetch_one(&mut conn)
            .await
            .expect("the app reads the log");
        assert_eq!(count, 1);
        for sql in [
            "UPDATE audit_log SET action = 'forged'",
            "DELETE FROM audit_log",
            "TRUNCATE audit_log",
        ] {
            let err = sqlx::query(sql).execute(&mut conn).await.expect_err("must be refused");
            let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
            assert_eq!(
                code.as_deref(),
                Some("42501"),
                "{sql}: refused by privileges, before any trigger: {err}"
            );
        }
        sqlx::query("RESET ROLE").execute(&mut conn).await.expect("reset role");
    }
    .await;
    conn.close().await.expect("close");
    store.close().await;
    db.drop_database().await;
    // The role's grants lived in the dropped database; now the role can go.
    let admin = db_admin().expect("admin url");
    let mut admin = PgConnection::connect(&admin).await.expect("admin connect");
    sqlx::query(&format!("DROP ROLE {role}")).execute(&mut admin).await.expect("drop role");
    outcome
}

#[tokio::test]
async fn constraint_violations_name_the_constraint() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store(2).await;
    store.apply_batch(&fixture(), audit("test.seed")).await.expect("fixture");
    let teacher = store.find_person_by_uid("uid-teacher").await.expect("q").expect("teacher").id;
    let parent = store.find_person_by_uid("uid-parent").await.expect("q").expect("parent").id;
    store.link_esia_oid(teacher, "1000", audit("login.link")).await.expect("link");
    match store.link_esia_oid(parent, "1000", audit("login.link")).await {
        Err(StoreError::Conflict { constraint }) => assert_eq!(constraint, "persons_esia_oid_key"),
        other => panic!("expected a conflict, got {other:?}"),
    }
    // The refused transaction wrote no audit record.
    let actions: Vec<String> = store
        .list_audit(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(actions, ["test.seed", "login.link"]);
    store.close().await;
    db.drop_database().await;
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // Port 1 on loopback: nothing listens there. Needs no server, so it never skips.
    let result = PgStore::connect(
        "postgres://postgres@127.0.0.1:1/postgres",
        zhurnal_store::conformance::sealer(),
    )
    .await;
    assert!(matches!(result, Err(StoreError::Unavailable(_))), "{:?}", result.err());
}

fn db_admin() -> Option<String> {
    common::admin_url()
}

fn rand_suffix() -> u32 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::process::id()) as u32
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_imports_and_grants_behave_as_if_serial() {
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = Arc::new(db.store(8).await);
    let imports: Vec<_> = (0..3)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.apply_batch(&fixture(), audit("test.seed")).await })
        })
        .collect();
    let mut stats = Vec::new();
    for h in imports {
        stats.push(h.await.expect("task").expect("every import succeeds"));
    }
    assert_eq!(
        stats.iter().filter(|s| !s.changed_nothing()).count(),
        1,
        "one import loads, the others find everything in place: {stats:?}"
    );
    let parent = store.find_person_by_uid("uid-parent").await.expect("q").expect("parent").id;
    let region = store.find_region_by_external_id("r1").await.expect("q").expect("r1").id;
    let grants: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .grant_role(
                        parent,
                        zhurnal_domain::Role::RegionalAdmin,
                        zhurnal_domain::RoleScope::Region(region),
                        None,
                        audit("role.grant"),
                    )
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for h in grants {
        ids.push(h.await.expect("task").expect("grant"));
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one grant, returned to every caller");
    assert_eq!(store.list_role_grants(parent).await.expect("grants").len(), 1);
    store.close().await;
    db.drop_database().await;
}

/// A bulk load sets the foreign keys aside; re-creating them checks every loaded row, so a
/// row that points nowhere stops the finish with the constraint's name, and what is left
/// stays pending (the database is not passed off as whole).
#[tokio::test]
async fn a_bulk_load_that_breaks_a_reference_does_not_finish() {
    use zhurnal_store::bulk::{BulkRows, BulkStore, BulkTable};
    let Some(db) = TestDb::create().await else {
        return;
    };
    let store = db.store(2).await;
    let set_aside = store.bulk_begin().await.expect("begin");
    let mut rows = BulkRows::default();
    rows.push(BulkTable::Regions, vec![1i64.into(), "r".into(), "Область".into()]);
    // Municipality 2 of region 99, which does not exist.
    rows.push(
        BulkTable::Municipalities,
        vec![2i64.into(), "m".into(), 99i64.into(), "Округ".into()],
    );
    assert_eq!(store.bulk_insert(&rows).await.expect("no per-row check while loading"), 2);
    let err = store.bulk_finish().await.expect_err("the reference is checked at the end");
    assert!(err.to_string().contains("municipalities"), "{err}");
    let pending = store.bulk_pending().await.expect("pending");
    assert!(pending > 0 && pending < set_aside, "{pending} of {set_aside} left");
    store.close().await;
    db.drop_database().await;
}
