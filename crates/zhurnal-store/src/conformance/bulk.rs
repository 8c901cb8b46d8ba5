//! Cases for [`crate::BulkStore`] (area `bench`: the generator of a synthetic region).

use std::sync::Arc;

use chrono::NaiveDate;
use zhurnal_domain::PersonId;

use super::{audit, d, fixture};
use crate::bulk::{BulkRows, BulkTable, BulkValue};
use crate::*;

fn person_row(id: i64, uid: &str, last: &str, birth: NaiveDate, hmac: u8) -> Vec<BulkValue> {
    vec![
        id.into(),
        uid.into(),
        format!("ext-{uid}").into(),
        last.into(),
        "Анна".into(),
        BulkValue::Null,
        birth.into(),
        "F".into(),
        vec![hmac; 32].into(),
        vec![0u8, 92, 9, 10, 255].into(),
        Some("+7 900 000-00-00").into(),
        None::<String>.into(),
        1_000i64.into(),
    ]
}

/// Rows loaded in bulk read back through the ordinary methods (text with tabs, backslashes
/// and newlines, bytes, dates, NULLs intact), and later ordinary inserts get fresh ids.
pub async fn bulk_rows_load_and_ordinary_inserts_continue_after_them(store: Arc<dyn Store>) {
    assert!(store.bulk_is_empty().await.expect("empty"));
    assert_eq!(store.bulk_pending().await.expect("pending"), 0);
    let set_aside = store.bulk_begin().await.expect("begin");
    // Every backend has secondary indexes on the loaded tables (persons by name, marks by
    // student…), so something is set aside, and remembered until the end of the load.
    assert!(set_aside > 5, "only {set_aside} indexes set aside");
    assert_eq!(store.bulk_pending().await.expect("pending"), set_aside);
    let mut rows = BulkRows::default();
    rows.push(BulkTable::Regions, vec![500i64.into(), "bulk-region".into(), "Область".into()]);
    rows.push(
        BulkTable::Municipalities,
        vec![501i64.into(), "bulk-muni".into(), 500i64.into(), "Округ\tс табуляцией".into()],
    );
    rows.push(
        BulkTable::Schools,
        vec![
            502i64.into(),
            "bulk-school".into(),
            501i64.into(),
            "Школа \\ № 1\nвторая строка".into(),
            "СОШ № 1".into(),
        ],
    );
    rows.push(BulkTable::Persons, person_row(900, "bulk-parent", "Иванова", d(1985, 3, 4), 177));
    rows.push(BulkTable::Persons, person_row(901, "bulk-child", "Иванова", d(2015, 5, 6), 178));
    rows.push(BulkTable::Guardianships, vec![900i64.into(), 901i64.into(), 1_000i64.into()]);
    assert_eq!(rows.len(), 6);
    assert_eq!(store.bulk_insert(&rows).await.expect("bulk insert"), 6);
    store.bulk_finish().await.expect("finish");
    assert_eq!(store.bulk_pending().await.expect("pending"), 0, "everything re-created");
    assert!(!store.bulk_is_empty().await.expect("not empty"));
    // The second load of a database sets aside the same indexes: they were all re-created.
    assert_eq!(store.bulk_begin().await.expect("begin again"), set_aside);
    store.bulk_finish().await.expect("finish again");
    assert_eq!(store.bulk_pending().await.expect("pending"), 0);

    let p = store.find_person_by_uid("bulk-parent").await.expect("q").expect("parent");
    assert_eq!(p.id, PersonId(900));
    assert_eq!(p.birth_date, Some(d(1985, 3, 4)));
    assert_eq!(p.middle_name, None);
    assert_eq!(p.snils_cipher, Some(vec![0, 92, 9, 10, 255]));
    assert_eq!(
        store.find_person_by_snils_hmac(&[178; 32]).await.expect("q").map(|c| c.id),
        Some(PersonId(901))
    );
    let children = store.list_children(PersonId(900)).await.expect("children");
    assert_eq!(children.len(), 1);
    let school = store.find_school_by_external_id("bulk-school").await.expect("q").expect("school");
    assert_eq!(school.id.0, 502);
    assert_eq!(school.name, "Школа \\ № 1\nвторая строка");
    let muni = store.find_municipality_by_external_id("bulk-muni").await.expect("q").expect("m");
    assert_eq!(muni.name, "Округ\tс табуляцией");

    // The ordinary path after a bulk load: no id collides with the loaded ones.
    store.apply_batch(&fixture(), audit("batch")).await.expect("batch after bulk");
    let t = store.find_person_by_uid("uid-teacher").await.expect("q").expect("teacher");
    assert!(t.id.0 > 901, "a fresh id after the loaded ones, got {}", t.id.0);
    assert_eq!(store.list_regions().await.expect("regions").len(), 2);
}
