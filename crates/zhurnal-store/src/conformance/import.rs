//! Conformance cases of [`ImportStore`](crate::ImportStore): export of a school, retention
//! candidates and purge, compaction, the import register and acts of destruction.

use std::sync::Arc;

use super::{audit, d, loaded, person_id};
use crate::batch::{BAttendance, BGroup, BGroupMember, BGuardianship};
use crate::import::*;
use crate::*;

/// A register entry for the cases that write through [`ImportStore::apply_import`].
fn run() -> NewImportRun {
    NewImportRun {
        at: 1_795_000_000_000_000,
        format: "zhurnal-csv".into(),
        source_name: "school.zip".into(),
        source_sha256: "ab".repeat(32),
        schools: vec!["s1".into()],
        inserted: 0,
        updated: 0,
        unchanged: 0,
        actor_id: None,
    }
}

/// Writes final marks and history alone (an empty batch) as one import.
async fn write(
    store: &Arc<dyn Store>,
    final_marks: &[BFinalMark],
    mark_history: &[BMarkChange],
) -> StoreResult<BatchStats> {
    let batch = Batch::default();
    let w = ImportWrite { batch: &batch, final_marks, mark_history, run: run() };
    store.apply_import(&w, audit("import.apply")).await.map(|a| a.stats)
}

pub async fn import_a_school_exports_and_reloads_unchanged(store: Arc<dyn Store>) {
    loaded(&store).await;
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("school");
    let b = store.export_school(school.id).await.expect("export");
    assert_eq!(b.schools.len(), 1);
    assert!(b.persons.iter().any(|p| p.external_id == "student-b"));
    assert!(!b.enrolments.is_empty() && !b.classes.is_empty() && !b.staff_roles.is_empty());
    let stats = store.apply_batch(&b, audit("import.apply")).await.expect("reload");
    assert!(stats.changed_nothing(), "{stats:?}");
    // A renamed subject is no roster change; a renamed person is (class chats follow rosters).
    let mut subject = b.clone();
    subject.subjects[0].name.push_str(" (углублённый)");
    let stats = store.apply_batch(&subject, audit("import.apply")).await.expect("subject");
    assert_eq!((stats.updated, stats.roster_changes), (1, 0), "{stats:?}");
    let mut person = subject;
    person.persons[0].last_name.push_str("-Иванова");
    let stats = store.apply_batch(&person, audit("import.apply")).await.expect("person");
    assert_eq!((stats.updated, stats.roster_changes), (1, 1), "{stats:?}");
}

pub async fn import_retention_purges_departed_students_with_audit(store: Arc<dyn Store>) {
    loaded(&store).await;
    // student-b left on 2026-11-01; the parent still has student-a at school.
    let early = store.list_retention_candidates(d(2026, 10, 1), d(2026, 10, 1)).await.expect("q");
    assert!(early.is_empty(), "{early:?}");
    let archive = store.list_retention_candidates(d(2026, 12, 1), d(2026, 10, 1)).await.expect("q");
    assert_eq!(archive.len(), 1, "{archive:?}");
    assert_eq!(
        (archive[0].uid.as_str(), archive[0].scope),
        ("uid-student-b", PurgeScope::KeepArchive)
    );
    let b = person_id(&store, "student-b").await;
    let n = store
        .purge_persons(&[(b, PurgeScope::KeepArchive)], audit("purge.test"))
        .await
        .expect("purge");
    assert_eq!(n.persons_archived, 1);
    let kept = store.find_person_by_uid("uid-student-b").await.expect("q").expect("archived");
    assert_eq!((kept.phone, kept.email, kept.snils_cipher), (None, None, None));
    // Already archived: not offered again for the journal, but offered for the full purge.
    let again = store.list_retention_candidates(d(2026, 12, 1), d(2026, 10, 1)).await.expect("q");
    assert!(again.is_empty(), "{again:?}");
    let full = store.list_retention_candidates(d(2026, 12, 1), d(2026, 12, 1)).await.expect("q");
    assert_eq!(full.len(), 1);
    assert_eq!(full[0].scope, PurgeScope::Full);
    let n =
        store.purge_persons(&[(b, PurgeScope::Full)], audit("purge.test")).await.expect("purge");
    assert_eq!((n.persons, n.enrolments), (1, 1));
    assert!(store.find_person_by_uid("uid-student-b").await.expect("q").is_none());
    let method = store.compact_after_purge().await.expect("compact");
    assert!(method.contains("VACUUM"));
    let audits = store.list_audit(0, 10_000).await.expect("audit");
    assert_eq!(audits.iter().filter(|r| r.event.action == "purge.test").count(), 2);
}

pub async fn import_register_and_acts_are_kept(store: Arc<dyn Store>) {
    let run = NewImportRun { inserted: 10, ..run() };
    store.record_import_run(&run).await.expect("run");
    store
        .record_import_run(&NewImportRun { inserted: 0, unchanged: 10, ..run.clone() })
        .await
        .expect("run");
    let runs = store.list_import_runs().await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(!runs[0].is_verification() && runs[1].is_verification());
    assert_eq!(runs[0].schools, vec!["s1".to_string()]);
    let act = NewDestructionAct {
        at: run.at,
        reason: "import_source".into(),
        actor_id: None,
        actor_label: "тест".into(),
        details: serde_json::json!({ "files": [] }),
    };
    let first = store.insert_destruction_act(&act, audit("purge.act")).await.expect("act");
    let second = store.insert_destruction_act(&act, audit("purge.act")).await.expect("act");
    assert_eq!(first.number, "А-2026-0001");
    assert_eq!(second.number, "А-2026-0002");
    assert_eq!(
        store.mark_source_purged(&run.source_sha256, run.at, &first.number).await.expect("mark"),
        2
    );
    assert_eq!(
        store.mark_source_purged(&run.source_sha256, run.at, &first.number).await.expect("mark"),
        0
    );
    let runs = store.list_import_runs().await.expect("runs");
    assert!(runs.iter().all(|r| r.act_number.as_deref() == Some("А-2026-0001")));
    assert_eq!(store.list_destruction_acts().await.expect("acts").len(), 2);
    let found = store.find_destruction_act("А-2026-0002").await.expect("q").expect("act");
    assert_eq!(found, second);
    assert!(store.find_destruction_act("А-1999-0001").await.expect("q").is_none());
}

pub async fn import_final_marks_upsert_by_key_and_export(store: Arc<dyn Store>) {
    loaded(&store).await;
    let fm = |kind: &str, period: Option<&str>, value: &str, at: i64| BFinalMark {
        student: "student-a".into(),
        assignment: "a-math-5a".into(),
        kind: kind.into(),
        period: period.map(Into::into),
        value: value.into(),
        author: "teacher".into(),
        set_at: at,
    };
    let rows = vec![fm("period", Some("s1-q1"), "4", 10), fm("annual", None, "5", 20)];
    let s = write(&store, &rows, &[]).await.expect("apply");
    assert_eq!((s.inserted, s.updated, s.unchanged), (2, 0, 0));
    // Again: nothing changes (the NULL period of an annual mark included).
    let s = write(&store, &rows, &[]).await.expect("again");
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 0, 2));
    let changed = vec![fm("period", Some("s1-q1"), "5", 11), fm("annual", None, "5", 20)];
    let s = write(&store, &changed, &[]).await.expect("upd");
    assert_eq!((s.inserted, s.updated, s.unchanged), (0, 1, 1));
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("school");
    let out = store.export_final_marks(school.id).await.expect("export");
    assert_eq!(out, vec![fm("annual", None, "5", 20), fm("period", Some("s1-q1"), "5", 11)]);
    // An unknown reference writes nothing.
    let bad = vec![
        fm("final", None, "5", 30),
        BFinalMark { student: "nobody".into(), ..fm("final", None, "5", 30) },
    ];
    let err = write(&store, &bad, &[]).await.expect_err("bad");
    assert!(
        matches!(err, StoreError::UnknownReference { ref external_id, .. } if external_id == "nobody"),
        "{err:?}"
    );
    assert_eq!(store.export_final_marks(school.id).await.expect("export").len(), 2);
}

pub async fn import_mark_history_is_added_once_and_exported(store: Arc<dyn Store>) {
    loaded(&store).await;
    let h = |at: i64, reason: &str| BMarkChange {
        mark: "mk-1".into(),
        changed_at: at,
        changed_by: "teacher".into(),
        old_value: Some("4".into()),
        new_value: Some("5".into()),
        old_work_type: Some("answer".into()),
        new_work_type: Some("test".into()),
        reason: Some(reason.into()),
    };
    let rows = vec![h(2_000, "описка"), h(3_000, "пересдача")];
    let s = write(&store, &[], &rows).await.expect("apply");
    assert_eq!((s.inserted, s.unchanged), (2, 0));
    let s = write(&store, &[], &rows).await.expect("again");
    assert_eq!((s.inserted, s.unchanged), (0, 2));
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("school");
    let out = store.export_mark_history(school.id).await.expect("export");
    assert_eq!(out, rows);
    let bad =
        vec![h(4_000, "x"), BMarkChange { new_work_type: Some("no-such".into()), ..h(5_000, "y") }];
    let err = write(&store, &[], &bad).await.expect_err("bad");
    assert!(
        matches!(err, StoreError::UnknownReference { ref external_id, .. } if external_id == "no-such"),
        "{err:?}"
    );
    assert_eq!(store.export_mark_history(school.id).await.expect("export").len(), 2);
}

/// The whole import is one transaction: a correction that cannot be written (an unknown work
/// type) takes back the new person of the batch, the final marks and the register entry.
pub async fn import_is_one_transaction_and_a_late_failure_writes_nothing(store: Arc<dyn Store>) {
    loaded(&store).await;
    let audits_before = store.list_audit(0, 10_000).await.expect("audit").len();
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("school");
    let finals_before = store.export_final_marks(school.id).await.expect("export");
    let mut batch = Batch::default();
    batch.persons.push(super::person("newcomer", "Новиков", "Пётр", d(2015, 3, 1), None));
    let finals = vec![BFinalMark {
        student: "student-a".into(),
        assignment: "a-math-5a".into(),
        kind: "annual".into(),
        period: None,
        value: "5".into(),
        author: "teacher".into(),
        set_at: 10,
    }];
    let history = vec![BMarkChange {
        mark: "mk-1".into(),
        changed_at: 2_000,
        changed_by: "teacher".into(),
        old_value: Some("4".into()),
        new_value: Some("5".into()),
        old_work_type: None,
        new_work_type: Some("no-such".into()),
        reason: None,
    }];
    let w = ImportWrite { batch: &batch, final_marks: &finals, mark_history: &history, run: run() };
    let err = store.apply_import(&w, audit("import.apply")).await.expect_err("must fail");
    assert!(
        matches!(err, StoreError::UnknownReference { ref external_id, .. } if external_id == "no-such"),
        "{err:?}"
    );
    assert!(store.find_person_by_uid("uid-newcomer").await.expect("q").is_none());
    assert_eq!(store.export_final_marks(school.id).await.expect("export"), finals_before);
    assert!(store.list_import_runs().await.expect("runs").is_empty());
    assert_eq!(store.list_audit(0, 10_000).await.expect("audit").len(), audits_before);

    // The same import without the bad line: everything in, counted once, in the register.
    let w = ImportWrite { mark_history: &history[..0], ..w };
    let applied = store.apply_import(&w, audit("import.apply")).await.expect("apply");
    assert_eq!(applied.stats.inserted, 2, "{applied:?}");
    assert!(store.find_person_by_uid("uid-newcomer").await.expect("q").is_some());
    let runs = store.list_import_runs().await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!((runs[0].id, runs[0].inserted), (applied.run_id, 2));
    let audits = store.list_audit(0, 10_000).await.expect("audit");
    assert_eq!(audits.len(), audits_before + 1);
}

/// An import written in parts is still one transaction: a later part sees the rows of the
/// earlier ones (a group, then its members), and a failure in any part, or a session dropped
/// without a commit, leaves nothing of the earlier parts.
pub async fn import_parts_share_one_transaction(store: Arc<dyn Store>) {
    loaded(&store).await;
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("school");
    let mut classes = Vec::new();
    for year in store.list_academic_years(school.id).await.expect("years") {
        classes.extend(store.list_classes(school.id, year.id).await.expect("classes"));
    }
    let class = classes.into_iter().find(|c| c.external_id == "s1-5a").expect("5А");
    let mut first = Batch::default();
    first.persons.push(super::person("newcomer", "Новиков", "Пётр", d(2014, 3, 1), None));
    first.groups.push(BGroup {
        external_id: "g-new".into(),
        class: "s1-5a".into(),
        name: "Английский, 1 группа".into(),
        members: Vec::new(),
    });
    let mut second = Batch::default();
    second.group_members.push(BGroupMember { group: "g-new".into(), student: "newcomer".into() });
    let bad = Batch {
        group_members: vec![BGroupMember {
            group: "no-such-group".into(),
            student: "newcomer".into(),
        }],
        ..Batch::default()
    };

    // A failing third part: the session is left without a commit.
    let mut session = store.begin_import(1).await.expect("begin");
    session.apply(&first, &[], &[]).await.expect("first part");
    session.apply(&second, &[], &[]).await.expect("second part sees the first");
    let err = session.apply(&bad, &[], &[]).await.expect_err("unknown group");
    assert!(matches!(err, StoreError::UnknownReference { .. }), "{err:?}");
    // Half of the failed part is in the transaction: nothing but the rollback is allowed.
    let err = session.apply(&second, &[], &[]).await.expect_err("after a failed part");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let err = session.commit(run(), audit("import.apply")).await.expect_err("no commit");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert!(store.find_person_by_uid("uid-newcomer").await.expect("q").is_none());
    assert!(store.list_groups(class.id).await.expect("groups").is_empty());
    assert!(store.list_import_runs().await.expect("runs").is_empty());

    // The two good parts, committed: both are in, counted in one register entry.
    let mut session = store.begin_import(1).await.expect("begin");
    let a = session.apply(&first, &[], &[]).await.expect("first part");
    let b = session.apply(&second, &[], &[]).await.expect("second part");
    assert_eq!((a.inserted, b.inserted), (2, 1));
    let applied = session.commit(run(), audit("import.apply")).await.expect("commit");
    assert_eq!(applied.stats.inserted, 3);
    let newcomer = person_id(&store, "newcomer").await;
    let groups = store.list_groups(class.id).await.expect("groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].members, vec![newcomer]);
    assert_eq!(store.list_import_runs().await.expect("runs")[0].inserted, 3);
}

/// A batch larger than one statement with keys given twice (within a chunk and across
/// chunks): every row lands, a repeated key ends as its last row says, as row by row, and a
/// batch of that final state then changes nothing.
pub async fn import_a_large_batch_with_repeated_keys_applies_in_order(store: Arc<dyn Store>) {
    loaded(&store).await;
    let mut b = Batch::default();
    for i in 0..1_201 {
        b.persons.push(super::person(
            &format!("bulk-{i}"),
            &format!("Ф{i}"),
            "Имя",
            d(2015, 1, 1),
            None,
        ));
    }
    let mut again_near = b.persons[1_100].clone();
    again_near.last_name = "Позднее".into();
    let mut again_far = b.persons[3].clone();
    again_far.last_name = "Позднее-3".into();
    b.persons.extend([again_near.clone(), again_far.clone()]);
    for i in 1..=600 {
        b.guardianships.push(BGuardianship { parent: "bulk-0".into(), child: format!("bulk-{i}") });
        b.attendance.push(BAttendance {
            lesson: "l-mon".into(),
            student: format!("bulk-{i}"),
            kind: "absent".into(),
            author: "teacher".into(),
        });
    }
    b.guardianships.push(BGuardianship { parent: "bulk-0".into(), child: "bulk-7".into() });
    let late = BAttendance {
        lesson: "l-mon".into(),
        student: "bulk-5".into(),
        kind: "ill".into(),
        author: "teacher".into(),
    };
    b.attendance.push(late.clone());
    let stats = store.apply_batch(&b, audit("import.apply")).await.expect("large batch");
    // Persons 1,201 new + 2 renamed; links 600 + 1 already there; attendance 600 + the
    // changed kind (counted with the inserted, as link rows are).
    assert_eq!((stats.inserted, stats.updated, stats.unchanged), (1_201 + 600 + 601, 2, 1));
    for (uid, last) in [("uid-bulk-1100", "Позднее"), ("uid-bulk-3", "Позднее-3")] {
        let p = store.find_person_by_uid(uid).await.expect("q").expect("person");
        assert_eq!(p.last_name, last);
    }
    let mut fin = b.clone();
    fin.persons.truncate(1_201);
    fin.persons[1_100] = again_near;
    fin.persons[3] = again_far;
    fin.guardianships.pop();
    fin.attendance.pop();
    fin.attendance[4] = late;
    let stats = store.apply_batch(&fin, audit("import.apply")).await.expect("rerun");
    assert!(stats.changed_nothing(), "{stats:?}");
    assert_eq!(stats.unchanged, 1_201 + 600 + 600);
}
