//! The conformance suite: every [`Store`] method, exercised the same way on every backend.
//!
//! A backend's tests invoke [`conformance_suite!`](crate::conformance_suite) with an async
//! expression that yields a fresh, empty, migrated store; the macro expands into one
//! `#[tokio::test]` per case, so each case owns its database. Adding a store method without a
//! case here leaves it untested on both backends — review rule: no method without a case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use chrono::NaiveDate;
use zhurnal_domain::{AttendanceKind, ClassId, MarkValue, PersonId, Role, RoleScope};

use crate::batch::*;
use crate::*;

mod journal;
pub use journal::*;
mod admin;
pub use admin::*;
mod integration;
pub use integration::*;
mod bulk;
pub use bulk::*;
mod import;
pub use import::*;
mod perf;
pub use perf::*;

/// A deterministic chain function for tests (the application uses HMAC-SHA-256).
pub struct TestSealer;

impl AuditSealer for TestSealer {
    fn seal(&self, prev_hash: &[u8], canonical: &[u8]) -> Vec<u8> {
        let mut h = DefaultHasher::new();
        prev_hash.hash(&mut h);
        canonical.hash(&mut h);
        h.finish().to_be_bytes().to_vec()
    }
}

pub fn sealer() -> Arc<dyn AuditSealer> {
    Arc::new(TestSealer)
}

/// Expands into one test per conformance case. `$fresh` is an async expression returning
/// `Arc<dyn Store>` (a new database each time).
#[macro_export]
macro_rules! conformance_suite {
    ($fresh:expr) => {
        $crate::conformance_suite!(@cases $fresh;
            ping_reports_the_backend,
            a_batch_applied_twice_changes_nothing_the_second_time,
            a_batch_with_an_unknown_reference_writes_nothing,
            territory_lookups_find_what_was_loaded,
            years_periods_and_classes_list_in_order,
            the_roster_excludes_departed_students,
            persons_are_found_by_uid_snils_hmac_and_oid,
            an_esia_oid_cannot_be_rebound,
            relations_cover_every_role,
            a_departed_child_is_visible_until_departure,
            guardian_links_are_created_once,
            role_grants_are_idempotent,
            a_login_state_can_be_taken_once,
            sessions_stamp_the_last_login,
            audit_records_form_a_chain,
            the_teacher_day_applies_substitutions,
            a_student_week_has_lessons_marks_and_attendance,
            subjects_and_work_types_list_per_school,
            a_journal_assignment_knows_its_class_and_students,
            journal_entry_facts_follow_the_timetable_roster_and_year,
            a_journal_context_is_the_assignment_school_periods_and_work_types,
            assignment_lessons_follow_the_timetable_and_keep_extra_ones,
            the_full_teacher_day_shows_lessons_given_to_a_substitute,
            marks_are_created_corrected_and_deleted_with_history,
            a_mark_batch_commits_all_but_the_refused_marks,
            attendance_is_set_changed_and_cleared,
            lesson_topic_homework_and_files_are_kept,
            final_marks_are_set_replaced_and_removed,
            a_period_is_reopened_and_closed_again,
            admin_calendar_classes_and_groups_are_written_with_audit,
            admin_timetable_refuses_double_booking,
            admin_students_are_admitted_transferred_and_departed,
            admin_roles_are_listed_and_revoked,
            admin_rollover_promotes_graduates_and_archives_in_one_go,
            admin_report_reads_cover_marks_attendance_and_lessons,
            account_state_changes_end_sessions_and_are_audited,
            inactive_class_and_school_accounts_are_listed,
            notices_are_written_once,
            incidents_keep_evidence_and_measures,
            audit_search_filters_and_pages,
            snils_ciphers_are_replaced_all_at_once,
            incident_notices_are_recorded_once_each,
            an_incident_is_escalated_with_an_audit_record,
            integration_outbox_is_written_with_the_change_and_delivered_once,
            integration_events_follow_marks_periods_and_links,
            integration_chat_members_records_and_settings,
            bulk_rows_load_and_ordinary_inserts_continue_after_them,
            import_a_school_exports_and_reloads_unchanged,
            import_retention_purges_departed_students_with_audit,
            import_register_and_acts_are_kept,
            perf_audit_batches_continue_the_chain,
            perf_concurrent_audit_batches_make_one_chain,
            perf_a_session_is_found_with_its_person,
            perf_a_session_comes_with_the_relations_of_its_person,
            perf_relations_follow_every_change_at_once,
            import_final_marks_upsert_by_key_and_export,
            import_mark_history_is_added_once_and_exported,
            import_is_one_transaction_and_a_late_failure_writes_nothing,
            import_parts_share_one_transaction,
            import_a_large_batch_with_repeated_keys_applies_in_order
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store: std::sync::Arc<dyn $crate::Store> = $fresh.await;
                $crate::conformance::$case(store).await;
            }
        )*
    };
}

pub fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("valid date")
}

fn person(ext: &str, last: &str, first: &str, birth: NaiveDate, snils_hmac: Option<u8>) -> BPerson {
    BPerson {
        external_id: ext.into(),
        uid: format!("uid-{ext}"),
        last_name: last.into(),
        first_name: first.into(),
        middle_name: Some("Иванович".into()),
        birth_date: Some(birth),
        gender: Some("M".into()),
        snils_hmac: snils_hmac.map(|b| vec![b; 32]),
        snils_cipher: snils_hmac.map(|b| vec![b, 1, 2, 3]),
        phone: None,
        email: None,
    }
}

/// A small region: two schools in two municipalities; school 1 has classes 5А and 5Б, a
/// teacher, a class teacher, a substitute, a parent of two, three students (one departed), an
/// admin; a regional admin and a security officer. The week of 2026-11-23 (Mon) is timetabled.
pub fn fixture() -> Batch {
    let mut b = Batch::default();
    b.regions
        .push(BRegion { external_id: "r1".into(), name: "Тестовая область".into() });
    for (m, name) in [("m1", "Первый район"), ("m2", "Второй район")] {
        b.municipalities.push(BMunicipality {
            external_id: m.into(),
            region: "r1".into(),
            name: name.into(),
        });
    }
    for (s, m, name) in [("s1", "m1", "Школа № 1"), ("s2", "m2", "Школа № 2")] {
        b.schools.push(BSchool {
            external_id: s.into(),
            municipality: m.into(),
            name: name.into(),
            short_name: name.into(),
        });
        b.years.push(BYear {
            external_id: format!("{s}-y2026"),
            school: s.into(),
            name: "2026/2027".into(),
            starts_on: d(2026, 9, 1),
            ends_on: d(2027, 8, 31),
        });
        b.subjects.push(BSubject {
            external_id: format!("{s}-math"),
            school: s.into(),
            name: "Математика".into(),
            grading: "five_point".into(),
        });
        b.work_types.push(BWorkType {
            school: s.into(),
            code: "answer".into(),
            name: "Ответ на уроке".into(),
            weight: 1,
        });
        b.work_types.push(BWorkType {
            school: s.into(),
            code: "test".into(),
            name: "Контрольная работа".into(),
            weight: 3,
        });
    }
    b.subjects.push(BSubject {
        external_id: "s1-pe".into(),
        school: "s1".into(),
        name: "Физкультура".into(),
        grading: "pass_fail".into(),
    });
    b.periods.push(BPeriod {
        external_id: "s1-q1".into(),
        year: "s1-y2026".into(),
        scheme: "quarters".into(),
        number: 1,
        starts_on: d(2026, 9, 1),
        ends_on: d(2026, 10, 24),
        closed_on: Some(d(2026, 10, 30)),
    });
    b.periods.push(BPeriod {
        external_id: "s1-q2".into(),
        year: "s1-y2026".into(),
        scheme: "quarters".into(),
        number: 2,
        starts_on: d(2026, 11, 5),
        ends_on: d(2026, 12, 28),
        closed_on: None,
    });
    b.persons.push(person("teacher", "Петров", "Пётр", d(1980, 1, 1), Some(1)));
    b.persons.push(person("class-teacher", "Сидорова", "Анна", d(1975, 2, 2), Some(2)));
    b.persons.push(person("substitute", "Кузнецов", "Иван", d(1985, 3, 3), Some(3)));
    b.persons.push(person("parent", "Иванова", "Мария", d(1988, 4, 4), Some(4)));
    b.persons.push(person("student-a", "Иванов", "Алексей", d(2014, 5, 5), Some(5)));
    b.persons.push(person("student-b", "Иванова", "Белла", d(2015, 6, 6), Some(6)));
    b.persons.push(person("student-c", "Абрамов", "Виктор", d(2014, 7, 7), Some(7)));
    b.persons.push(person("admin", "Орлова", "Ольга", d(1970, 8, 8), None));
    b.persons.push(person("regional", "Волков", "Глеб", d(1971, 9, 9), None));
    b.persons.push(person("officer", "Зайцев", "Денис", d(1972, 10, 10), None));
    for (ext, letter, teacher) in [("s1-5a", "А", Some("class-teacher")), ("s1-5b", "Б", None)] {
        b.classes.push(BClass {
            external_id: ext.into(),
            school: "s1".into(),
            year: "s1-y2026".into(),
            grade: 5,
            letter: letter.into(),
            class_teacher: teacher.map(str::to_string),
            period_scheme: "quarters".into(),
            newly_formed: true,
        });
    }
    b.enrolments.push(BEnrolment {
        external_id: "e-a".into(),
        student: "student-a".into(),
        class: "s1-5a".into(),
        admitted_on: d(2026, 9, 1),
        departed_on: None,
        departure_kind: None,
        departure_reason: None,
    });
    b.enrolments.push(BEnrolment {
        external_id: "e-b".into(),
        student: "student-b".into(),
        class: "s1-5a".into(),
        admitted_on: d(2026, 9, 1),
        departed_on: Some(d(2026, 11, 1)),
        departure_kind: Some("transfer".into()),
        departure_reason: Some("переезд".into()),
    });
    b.enrolments.push(BEnrolment {
        external_id: "e-c".into(),
        student: "student-c".into(),
        class: "s1-5b".into(),
        admitted_on: d(2026, 9, 1),
        departed_on: None,
        departure_kind: None,
        departure_reason: None,
    });
    for child in ["student-a", "student-b"] {
        b.guardianships.push(BGuardianship { parent: "parent".into(), child: child.into() });
    }
    for (p, role, scope) in [
        ("teacher", "teacher", "s1"),
        ("class-teacher", "teacher", "s1"),
        ("substitute", "teacher", "s1"),
        ("admin", "school-admin", "s1"),
        ("regional", "regional-admin", "r1"),
        ("officer", "security-officer", "r1"),
    ] {
        b.staff_roles.push(BStaffRole { person: p.into(), role: role.into(), scope: scope.into() });
    }
    b.assignments.push(BAssignment {
        external_id: "a-math-5a".into(),
        teacher: "teacher".into(),
        class: "s1-5a".into(),
        group: None,
        subject: "s1-math".into(),
    });
    b.assignments.push(BAssignment {
        external_id: "a-pe-5a".into(),
        teacher: "class-teacher".into(),
        class: "s1-5a".into(),
        group: None,
        subject: "s1-pe".into(),
    });
    // Monday lesson 1 and Tuesday lesson 2: mathematics; Monday lesson 3: physical education.
    for (ext, a, wd, n) in [
        ("slot-mon-1", "a-math-5a", 1, 1),
        ("slot-tue-2", "a-math-5a", 2, 2),
        ("slot-mon-3", "a-pe-5a", 1, 3),
    ] {
        b.timetable.push(BSlot {
            external_id: ext.into(),
            assignment: a.into(),
            weekday: wd,
            lesson_number: n,
            room: Some("12".into()),
        });
    }
    b.substitutions.push(BSubstitution {
        slot: "slot-tue-2".into(),
        date: d(2026, 11, 24),
        substitute: "substitute".into(),
        reason: Some("болезнь".into()),
    });
    b.lessons.push(BLesson {
        external_id: "l-mon".into(),
        assignment: "a-math-5a".into(),
        date: d(2026, 11, 23),
        lesson_number: 1,
        topic: Some("Дроби".into()),
        homework: Some("№ 12, 14".into()),
    });
    b.marks.push(BMark {
        external_id: "mk-1".into(),
        lesson: "l-mon".into(),
        student: "student-a".into(),
        value: "5".into(),
        work_type: "test".into(),
        comment: None,
        author: "teacher".into(),
        created_at: 1_000,
    });
    b.attendance.push(BAttendance {
        lesson: "l-mon".into(),
        student: "student-c".into(),
        kind: "ill".into(),
        author: "teacher".into(),
    });
    b
}

pub(crate) fn audit(action: &str) -> NewAudit {
    NewAudit::new(1_000_000, action, "ok")
}

async fn loaded(store: &Arc<dyn Store>) {
    store.apply_batch(&fixture(), audit("test.seed")).await.expect("fixture applies");
}

async fn person_id(store: &Arc<dyn Store>, ext: &str) -> PersonId {
    store.find_person_by_uid(&format!("uid-{ext}")).await.expect("query").expect("person exists").id
}

async fn class_id(store: &Arc<dyn Store>, name: &str) -> ClassId {
    let school = store.find_school_by_external_id("s1").await.expect("query").expect("school");
    let year = store.list_academic_years(school.id).await.expect("years")[0].id;
    store
        .list_classes(school.id, year)
        .await
        .expect("classes")
        .into_iter()
        .find(|c| c.name() == name)
        .expect("class")
        .id
}

pub async fn ping_reports_the_backend(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    assert!(["sqlite", "postgres"].contains(&store.backend().name()));
}

pub async fn a_batch_applied_twice_changes_nothing_the_second_time(store: Arc<dyn Store>) {
    let first = store.apply_batch(&fixture(), audit("test.seed")).await.expect("first");
    assert!(first.inserted > 30, "{first:?}");
    let second = store.apply_batch(&fixture(), audit("test.seed")).await.expect("second");
    assert!(second.changed_nothing(), "{second:?}");
    assert_eq!(second.unchanged, first.inserted + first.unchanged);
    // A changed name is an update in place, not a new person.
    let mut b = fixture();
    b.persons[0].last_name = "Петров-Водкин".into();
    let third = store.apply_batch(&b, audit("test.seed")).await.expect("third");
    assert_eq!((third.inserted, third.updated), (0, 1));
    let p = store.find_person_by_uid("uid-teacher").await.expect("query").expect("teacher");
    assert_eq!(p.last_name, "Петров-Водкин");
}

pub async fn a_batch_with_an_unknown_reference_writes_nothing(store: Arc<dyn Store>) {
    let mut b = fixture();
    b.enrolments[0].class = "no-such-class".into();
    let err = store.apply_batch(&b, audit("test.seed")).await.expect_err("must fail");
    assert!(
        matches!(err, StoreError::UnknownReference { ref external_id, .. } if external_id == "no-such-class"),
        "{err:?}"
    );
    assert!(store.list_schools().await.expect("schools").is_empty());
    assert!(store.list_audit(0, 10).await.expect("audit").is_empty());
}

pub async fn territory_lookups_find_what_was_loaded(store: Arc<dyn Store>) {
    loaded(&store).await;
    let regions = store.list_regions().await.expect("regions");
    assert_eq!(regions.len(), 1);
    let munis = store.list_municipalities(regions[0].id).await.expect("munis");
    assert_eq!(munis.len(), 2);
    let schools = store.list_schools().await.expect("schools");
    assert_eq!(
        schools.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Школа № 1", "Школа № 2"]
    );
    let s1 = store.get_school(schools[0].id).await.expect("school");
    assert_eq!(s1.region_id, regions[0].id);
    assert_eq!(store.get_municipality(s1.municipality_id).await.expect("muni").external_id, "m1");
    assert!(matches!(
        store.get_school(zhurnal_domain::SchoolId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.find_region_by_external_id("r1").await.expect("q").map(|r| r.name),
        Some("Тестовая область".into())
    );
    assert!(store.find_region_by_external_id("nope").await.expect("q").is_none());
    assert!(store.find_municipality_by_external_id("m2").await.expect("q").is_some());
    assert!(store.find_school_by_external_id("s2").await.expect("q").is_some());
    assert!(store.find_school_by_external_id("s3").await.expect("q").is_none());
}

pub async fn years_periods_and_classes_list_in_order(store: Arc<dyn Store>) {
    loaded(&store).await;
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("school");
    let years = store.list_academic_years(school.id).await.expect("years");
    assert_eq!(years.len(), 1);
    assert_eq!((years[0].starts_on, years[0].ends_on), (d(2026, 9, 1), d(2027, 8, 31)));
    let periods = store.list_periods(years[0].id).await.expect("periods");
    assert_eq!(periods.len(), 2);
    assert_eq!(periods[0].period.closed_on, Some(d(2026, 10, 30)));
    assert!(periods[0].period.ensure_open().is_err());
    assert!(periods[1].period.ensure_open().is_ok());
    let classes = store.list_classes(school.id, years[0].id).await.expect("classes");
    assert_eq!(classes.iter().map(ClassRow::name).collect::<Vec<_>>(), ["5А", "5Б"]);
    assert_eq!(classes[0].student_count, 1, "the departed student is not counted");
    assert!(classes[0].newly_formed);
    assert!(classes[0].class_teacher_id.is_some());
    let c = store.get_class(classes[1].id).await.expect("class");
    assert_eq!(c.name(), "5Б");
    assert!(matches!(store.get_class(ClassId(424_242)).await, Err(StoreError::NotFound(_))));
}

pub async fn the_roster_excludes_departed_students(store: Arc<dyn Store>) {
    loaded(&store).await;
    let class = class_id(&store, "5А").await;
    let before = store.list_roster(class, d(2026, 10, 1)).await.expect("roster");
    assert_eq!(before.len(), 2, "both students before the departure");
    let after = store.list_roster(class, d(2026, 11, 23)).await.expect("roster");
    assert_eq!(after.iter().map(|e| e.person.first_name.as_str()).collect::<Vec<_>>(), ["Алексей"]);
    let b = person_id(&store, "student-b").await;
    let enrolments = store.list_enrolments(b).await.expect("enrolments");
    assert_eq!(enrolments.len(), 1);
    assert_eq!(enrolments[0].departed_on, Some(d(2026, 11, 1)));
    assert_eq!(enrolments[0].departure_kind, Some(DepartureKind::Transfer));
    assert_eq!(enrolments[0].departure_reason.as_deref(), Some("переезд"));
}

pub async fn persons_are_found_by_uid_snils_hmac_and_oid(store: Arc<dyn Store>) {
    loaded(&store).await;
    let t = store.find_person_by_uid("uid-teacher").await.expect("q").expect("teacher");
    assert_eq!(t.full_name(), "Петров Пётр Иванович");
    assert_eq!(t.short_name(), "Петров П. И.");
    assert_eq!(t.birth_date, Some(d(1980, 1, 1)));
    assert_eq!(t.account_state, AccountState::Active);
    assert_eq!(t.snils_cipher, Some(vec![1, 1, 2, 3]));
    assert_eq!(store.get_person(t.id).await.expect("get").uid, "uid-teacher");
    assert_eq!(
        store.find_person_by_snils_hmac(&[1; 32]).await.expect("q").map(|p| p.id),
        Some(t.id)
    );
    assert!(store.find_person_by_snils_hmac(&[99; 32]).await.expect("q").is_none());
    assert!(store.find_person_by_esia_oid("1000").await.expect("q").is_none());
    store.link_esia_oid(t.id, "1000", audit("login.link")).await.expect("link");
    assert_eq!(store.find_person_by_esia_oid("1000").await.expect("q").map(|p| p.id), Some(t.id));
    // Linking the same oid again is harmless.
    store.link_esia_oid(t.id, "1000", audit("login.link")).await.expect("relink same");
    assert!(matches!(store.get_person(PersonId(987_654)).await, Err(StoreError::NotFound(_))));
}

pub async fn an_esia_oid_cannot_be_rebound(store: Arc<dyn Store>) {
    loaded(&store).await;
    let t = person_id(&store, "teacher").await;
    let p = person_id(&store, "parent").await;
    store.link_esia_oid(t, "1000", audit("login.link")).await.expect("link");
    assert!(matches!(
        store.link_esia_oid(t, "2000", audit("login.link")).await,
        Err(StoreError::Conflict { .. })
    ));
    assert!(matches!(
        store.link_esia_oid(p, "1000", audit("login.link")).await,
        Err(StoreError::Conflict { .. })
    ));
}

pub async fn relations_cover_every_role(store: Arc<dyn Store>) {
    loaded(&store).await;
    let today = d(2026, 11, 23);
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("s1");
    let class = class_id(&store, "5А").await;
    let teacher =
        store.load_relations(person_id(&store, "teacher").await, today).await.expect("rel");
    assert_eq!(teacher.grants, vec![(Role::Teacher, RoleScope::School(school.id))]);
    assert_eq!(teacher.teaching.len(), 1);
    assert_eq!(teacher.teaching[0].class, class);
    let ct =
        store.load_relations(person_id(&store, "class-teacher").await, today).await.expect("rel");
    assert_eq!(ct.class_teacher_of, vec![class]);
    let sub = store
        .load_relations(person_id(&store, "substitute").await, d(2026, 11, 24))
        .await
        .expect("rel");
    assert_eq!(
        sub.teaching.len(),
        1,
        "a substitute teaches the class on the day of the substitution"
    );
    let sub_other_day =
        store.load_relations(person_id(&store, "substitute").await, today).await.expect("rel");
    assert!(sub_other_day.teaching.is_empty());
    let student =
        store.load_relations(person_id(&store, "student-a").await, today).await.expect("rel");
    assert_eq!(student.enrolled_in, vec![(school.id, class)]);
    let departed =
        store.load_relations(person_id(&store, "student-b").await, today).await.expect("rel");
    assert!(departed.enrolled_in.is_empty());
    assert_eq!(departed.departed_from, vec![(school.id, d(2026, 11, 1))]);
    let region = store.find_region_by_external_id("r1").await.expect("q").expect("r1");
    let officer =
        store.load_relations(person_id(&store, "officer").await, today).await.expect("rel");
    assert_eq!(officer.grants, vec![(Role::SecurityOfficer, RoleScope::Region(region.id))]);
}

pub async fn a_departed_child_is_visible_until_departure(store: Arc<dyn Store>) {
    loaded(&store).await;
    let parent = person_id(&store, "parent").await;
    let rel = store.load_relations(parent, d(2026, 11, 23)).await.expect("rel");
    assert_eq!(rel.children.len(), 2);
    let a = person_id(&store, "student-a").await;
    let b = person_id(&store, "student-b").await;
    assert!(rel.children.iter().any(|c| c.child == a && c.visible_until.is_none()));
    assert!(rel.children.iter().any(|c| c.child == b && c.visible_until == Some(d(2026, 11, 1))));
    let children = store.list_children(parent).await.expect("children");
    assert_eq!(children.len(), 2);
    let ca = children.iter().find(|c| c.person.id == a).expect("a");
    assert_eq!(ca.class_name.as_deref(), Some("5А"));
    assert_eq!(ca.departed_on, None);
    let cb = children.iter().find(|c| c.person.id == b).expect("b");
    assert_eq!(cb.departed_on, Some(d(2026, 11, 1)));
}

pub async fn guardian_links_are_created_once(store: Arc<dyn Store>) {
    loaded(&store).await;
    let parent = person_id(&store, "parent").await;
    let c = person_id(&store, "student-c").await;
    assert!(store.link_guardian(parent, c, audit("guardian.link")).await.expect("link"));
    assert!(!store.link_guardian(parent, c, audit("guardian.link")).await.expect("again"));
    assert_eq!(store.list_children(parent).await.expect("children").len(), 3);
}

pub async fn role_grants_are_idempotent(store: Arc<dyn Store>) {
    loaded(&store).await;
    let p = person_id(&store, "parent").await;
    let region = store.find_region_by_external_id("r1").await.expect("q").expect("r1");
    let scope = RoleScope::Region(region.id);
    let first = store
        .grant_role(p, Role::RegionalAdmin, scope, None, audit("role.grant"))
        .await
        .expect("grant");
    let second = store
        .grant_role(p, Role::RegionalAdmin, scope, None, audit("role.grant"))
        .await
        .expect("grant");
    assert_eq!(first, second);
    let grants = store.list_role_grants(p).await.expect("grants");
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].role, grants[0].scope), (Role::RegionalAdmin, scope));
}

pub async fn a_login_state_can_be_taken_once(store: Arc<dyn Store>) {
    let attempt = LoginAttempt {
        state_hash: "s1".into(),
        browser_hash: "b1".into(),
        code_verifier: "v".into(),
        created_at: 100,
        next: Some("/diary".into()),
        login_hint: None,
    };
    store.insert_login_attempt(&attempt).await.expect("insert");
    store
        .insert_login_attempt(&LoginAttempt {
            state_hash: "s2".into(),
            created_at: 10,
            ..attempt.clone()
        })
        .await
        .expect("insert");
    assert_eq!(store.take_login_attempt("s1").await.expect("take"), Some(attempt));
    assert_eq!(store.take_login_attempt("s1").await.expect("take again"), None);
    assert_eq!(store.delete_login_attempts_before(50).await.expect("delete"), 1);
    assert_eq!(store.take_login_attempt("s2").await.expect("take"), None);
}

pub async fn sessions_stamp_the_last_login(store: Arc<dyn Store>) {
    loaded(&store).await;
    let p = person_id(&store, "parent").await;
    let s = SessionRow {
        id_hash: "h1".into(),
        person_id: p,
        created_at: 5_000,
        last_seen_at: 5_000,
        csrf_token: "csrf".into(),
        source_ip: Some("127.0.0.1".into()),
        active_role: None,
    };
    store.create_session(&s, audit("login.success")).await.expect("create");
    assert_eq!(store.get_person(p).await.expect("person").last_login_at, Some(5_000));
    assert_eq!(store.find_session("h1").await.expect("find"), Some(s.clone()));
    store.touch_session("h1", 6_000).await.expect("touch");
    assert_eq!(store.find_session("h1").await.expect("find").map(|s| s.last_seen_at), Some(6_000));
    store
        .create_session(
            &SessionRow { id_hash: "h2".into(), last_seen_at: 1, ..s.clone() },
            audit("login.success"),
        )
        .await
        .expect("second");
    assert_eq!(store.delete_sessions_before(2).await.expect("expire"), 1);
    assert!(store.find_session("h2").await.expect("find").is_none());
    store.delete_session("h1", Some(audit("logout"))).await.expect("delete");
    assert!(store.find_session("h1").await.expect("find").is_none());
    let actions: Vec<String> = store
        .list_audit(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(actions, ["test.seed", "login.success", "login.success", "logout"]);
}

pub async fn audit_records_form_a_chain(store: Arc<dyn Store>) {
    let sealer = TestSealer;
    for i in 0..5 {
        let a = NewAudit::new(i, "diary.view", "ok")
            .actor(1, "parent")
            .target("student", 7)
            .school(3)
            .reason("because")
            .ip(Some("127.0.0.1".into()))
            .session(Some("abc".into()))
            .details(serde_json::json!({ "n": i }));
        assert_eq!(store.append_audit(a).await.expect("append"), i + 1);
    }
    let records = store.list_audit(0, 100).await.expect("list");
    assert_eq!(records.len(), 5);
    let mut prev = vec![0u8; 32];
    for r in &records {
        assert_eq!(r.prev_hash, prev);
        assert_eq!(r.hash, sealer.seal(&prev, &r.event.canonical(r.seq)));
        prev = r.hash.clone();
    }
    assert_eq!(records[2].event.details, serde_json::json!({ "n": 2 }));
    assert_eq!(records[2].event.actor_role.as_deref(), Some("parent"));
    assert_eq!(store.list_audit(3, 100).await.expect("tail").len(), 2);
    assert_eq!(store.list_audit(0, 2).await.expect("page").len(), 2);
}

pub async fn the_teacher_day_applies_substitutions(store: Arc<dyn Store>) {
    loaded(&store).await;
    let teacher = person_id(&store, "teacher").await;
    let substitute = person_id(&store, "substitute").await;
    let monday = store.list_teacher_day(teacher, d(2026, 11, 23)).await.expect("monday");
    assert_eq!(monday.len(), 1);
    assert_eq!(monday[0].assignment.subject_name, "Математика");
    assert_eq!(monday[0].assignment.class_name, "5А");
    assert_eq!(monday[0].topic.as_deref(), Some("Дроби"));
    assert!(monday[0].lesson_id.is_some());
    let tuesday = store.list_teacher_day(teacher, d(2026, 11, 24)).await.expect("tuesday");
    assert!(tuesday.is_empty(), "the substituted lesson leaves the teacher's day");
    let sub_day = store.list_teacher_day(substitute, d(2026, 11, 24)).await.expect("substitute");
    assert_eq!(sub_day.len(), 1);
    assert!(sub_day[0].substitution);
    assert_eq!(sub_day[0].teacher_id, substitute);
    assert!(store.list_teacher_day(teacher, d(2026, 11, 29)).await.expect("sunday").is_empty());
}

pub async fn a_student_week_has_lessons_marks_and_attendance(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = person_id(&store, "student-a").await;
    let c = person_id(&store, "student-c").await;
    let class = class_id(&store, "5А").await;
    let week =
        store.list_student_lessons(a, class, d(2026, 11, 23), d(2026, 11, 29)).await.expect("week");
    assert_eq!(
        week.iter().map(|l| (l.date, l.lesson_number)).collect::<Vec<_>>(),
        [(d(2026, 11, 23), 1), (d(2026, 11, 23), 3), (d(2026, 11, 24), 2)]
    );
    assert_eq!(week[0].homework.as_deref(), Some("№ 12, 14"));
    assert!(week[2].substitution);
    let marks = store.list_student_marks(a, d(2026, 11, 23), d(2026, 11, 29)).await.expect("marks");
    assert_eq!(marks.len(), 1);
    assert_eq!((marks[0].value, marks[0].weight), (MarkValue::Points(5), 3));
    assert!(
        store
            .list_student_marks(a, d(2026, 11, 30), d(2026, 12, 6))
            .await
            .expect("marks")
            .is_empty()
    );
    let absences = store
        .list_student_attendance(c, d(2026, 11, 23), d(2026, 11, 29))
        .await
        .expect("attendance");
    assert_eq!(absences.len(), 1);
    assert_eq!(absences[0].kind, AttendanceKind::Ill);
    assert!(
        store
            .list_student_attendance(a, d(2026, 11, 23), d(2026, 11, 29))
            .await
            .expect("none")
            .is_empty()
    );
}

pub async fn subjects_and_work_types_list_per_school(store: Arc<dyn Store>) {
    loaded(&store).await;
    let s1 = store.find_school_by_external_id("s1").await.expect("q").expect("s1");
    let subjects = store.list_subjects(s1.id).await.expect("subjects");
    assert_eq!(
        subjects.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["Математика", "Физкультура"]
    );
    assert_eq!(subjects[1].grading, zhurnal_domain::Grading::PassFail);
    let wts = store.list_work_types(s1.id).await.expect("work types");
    assert_eq!(
        wts.iter().map(|w| (w.code.as_str(), w.weight)).collect::<Vec<_>>(),
        [("answer", 1), ("test", 3)]
    );
}

// ----- Security area (SecurityStore) ---------------------------------------------------

pub async fn account_state_changes_end_sessions_and_are_audited(store: Arc<dyn Store>) {
    loaded(&store).await;
    let p = person_id(&store, "parent").await;
    let act = store.get_account_activity(p).await.expect("activity");
    assert_eq!(act.state, AccountState::Active);
    assert_eq!(act.created_at, 1_000_000, "registered when the batch was applied");
    let s = SessionRow {
        id_hash: "h1".into(),
        person_id: p,
        created_at: 5_000_000,
        last_seen_at: 5_000_000,
        csrf_token: "c".into(),
        source_ip: None,
        active_role: None,
    };
    store.create_session(&s, audit("login.success")).await.expect("session");
    let block = NewAudit::new(6_000_000, "account.state", "ok").reason("admin_block");
    assert!(
        store
            .set_account_state(p, AccountState::Blocked, Some("admin_block"), block.clone())
            .await
            .expect("block")
    );
    assert!(store.find_session("h1").await.expect("find").is_none(), "sessions end with the block");
    assert!(
        !store
            .set_account_state(p, AccountState::Blocked, Some("admin_block"), block)
            .await
            .expect("again")
    );
    let act = store.get_account_activity(p).await.expect("activity");
    assert_eq!(
        (act.state, act.state_reason.as_deref(), act.state_changed_at),
        (AccountState::Blocked, Some("admin_block"), Some(6_000_000))
    );
    assert_eq!(act.last_activity(), 6_000_000);
    assert_eq!(store.count_accounts(AccountState::Blocked, None).await.expect("count"), 1);
    assert_eq!(
        store.count_accounts(AccountState::Blocked, Some("dormant")).await.expect("count"),
        0
    );
    let actions: Vec<String> = store
        .list_audit(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(
        actions,
        ["test.seed", "login.success", "account.state"],
        "one audit record per real change"
    );
    let missing = store
        .set_account_state(PersonId(999_999), AccountState::Blocked, None, audit("account.state"))
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
}

pub async fn inactive_class_and_school_accounts_are_listed(store: Arc<dyn Store>) {
    loaded(&store).await;
    let parent = person_id(&store, "parent").await;
    let s = SessionRow {
        id_hash: "h1".into(),
        person_id: parent,
        created_at: 9_000_000,
        last_seen_at: 9_000_000,
        csrf_token: "c".into(),
        source_ip: None,
        active_role: None,
    };
    store.create_session(&s, audit("login.success")).await.expect("session");
    let inactive =
        store.list_inactive_accounts(AccountState::Active, 2_000_000).await.expect("list");
    assert_eq!(inactive.len(), 9, "everyone but the parent who logged in");
    assert!(inactive.iter().all(|a| a.person_id != parent));
    assert!(
        store
            .list_inactive_accounts(AccountState::Dormant, i64::MAX)
            .await
            .expect("none")
            .is_empty()
    );
    let on = d(2026, 11, 23);
    let class5a = class_id(&store, "5А").await;
    let mut in_class: Vec<String> = store
        .list_class_accounts(class5a, on)
        .await
        .expect("class")
        .into_iter()
        .map(|a| a.uid)
        .collect();
    in_class.sort();
    assert_eq!(
        in_class,
        ["uid-parent", "uid-student-a"],
        "student-b departed; her parent stays through student-a"
    );
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("school");
    let in_school = store.list_school_accounts(school.id, on).await.expect("school");
    assert_eq!(in_school.len(), 6, "2 enrolled students, 1 parent, 3 teachers: {in_school:?}");
    let admins = store.list_school_admins(school.id).await.expect("admins");
    assert_eq!(admins, vec![person_id(&store, "admin").await]);
    assert_eq!(store.count_departed_students(None, on).await.expect("departed"), 1);
    assert_eq!(store.count_departed_students(Some(d(2026, 11, 2)), on).await.expect("departed"), 0);
    assert_eq!(store.count_departed_students(None, d(2026, 10, 1)).await.expect("before"), 0);
}

pub async fn notices_are_written_once(store: Arc<dyn Store>) {
    loaded(&store).await;
    let p = person_id(&store, "parent").await;
    assert!(
        store
            .insert_notice(p, "dormancy.warning", "k1", "Скоро блокировка", 10)
            .await
            .expect("insert")
    );
    assert!(
        !store
            .insert_notice(p, "dormancy.warning", "k1", "Скоро блокировка", 20)
            .await
            .expect("again")
    );
    assert!(
        store.insert_notice(p, "dormancy.warning", "k2", "Снова", 30).await.expect("new period")
    );
    let n = store.list_notices(p, 0).await.expect("list");
    assert_eq!(
        n.iter().map(|n| n.body.as_str()).collect::<Vec<_>>(),
        ["Снова", "Скоро блокировка"]
    );
    assert_eq!(store.list_notices(p, 15).await.expect("recent").len(), 1);
}

pub async fn incidents_keep_evidence_and_measures(store: Arc<dyn Store>) {
    use crate::security::*;
    loaded(&store).await;
    let officer = person_id(&store, "officer").await;
    let inc = NewIncident {
        rule: "D-01".into(),
        severity: Severity::Medium,
        detected_at: 100,
        subject_key: "person:5".into(),
        subject_person_id: Some(person_id(&store, "student-a").await),
        subject_ip: Some("10.0.0.1".into()),
        summary: "Попытка входа".into(),
        evidence: vec![1],
    };
    let id = store.create_incident(&inc, audit("incident.created")).await.expect("create");
    store.add_incident_evidence(id, &[2, 1, 3], 150).await.expect("evidence");
    let found =
        store.find_open_incident("D-01", "person:5", 50).await.expect("find").expect("open");
    assert_eq!(found.id, id);
    assert_eq!(found.evidence, vec![1, 2, 3]);
    assert!(
        store.find_open_incident("D-01", "person:5", 101).await.expect("find").is_none(),
        "outside the window"
    );
    assert!(store.find_open_incident("D-02", "person:5", 0).await.expect("find").is_none());
    store
        .add_incident_measure(
            id,
            IncidentStatus::Resolved,
            "Учётная запись заблокирована",
            Some(officer),
            audit("incident.measure"),
        )
        .await
        .expect("measure");
    let row = store.get_incident(id).await.expect("get");
    assert_eq!(row.status, IncidentStatus::Resolved);
    assert!(
        store.find_open_incident("D-01", "person:5", 0).await.expect("find").is_none(),
        "resolved is not open"
    );
    let m = store.list_incident_measures(id).await.expect("measures");
    assert_eq!(
        (m.len(), m[0].author_id, m[0].text.as_str()),
        (1, Some(officer), "Учётная запись заблокирована")
    );
    assert_eq!(store.list_incidents(0, 1_000).await.expect("list").len(), 1);
    assert!(store.list_incidents(101, 1_000).await.expect("list").is_empty());
    assert!(matches!(store.get_incident(id + 100).await, Err(StoreError::NotFound(_))));
    let audited: Vec<(String, Option<String>)> = store
        .list_audit(1, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| (r.event.action, r.event.target_id))
        .collect();
    assert_eq!(audited[0], ("incident.created".to_string(), Some(id.to_string())));
    assert_eq!(audited[1].0, "incident.measure");
}

pub async fn audit_search_filters_and_pages(store: Arc<dyn Store>) {
    use crate::security::*;
    for i in 0..10 {
        let mut a = NewAudit::new(
            i * 10,
            if i % 2 == 0 { "login.success" } else { "login_x.refused" },
            "ok",
        )
        .actor(i % 3, "person")
        .ip(Some(format!("10.0.0.{}", i % 2)));
        if i == 9 {
            a = a.reason("blocked_account");
        }
        store.append_audit(a).await.expect("append");
    }
    let all = store.search_audit(&AuditFilter::default(), 4).await.expect("page");
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), [10, 9, 8, 7], "newest first");
    let next = AuditFilter { before_seq: Some(7), ..AuditFilter::default() };
    assert_eq!(store.search_audit(&next, 100).await.expect("page").len(), 6);
    let login = AuditFilter { action_prefix: Some("login_".into()), ..AuditFilter::default() };
    assert_eq!(store.count_audit(&login).await.expect("count"), 5, "`_` and `%` are literal");
    let f = AuditFilter {
        actor_id: Some(0),
        source_ip: Some("10.0.0.0".into()),
        from_at: Some(1),
        to_at: Some(90),
        ..AuditFilter::default()
    };
    assert_eq!(
        store
            .search_audit(&f, 100)
            .await
            .expect("f")
            .iter()
            .map(|r| r.event.at)
            .collect::<Vec<_>>(),
        [60]
    );
    let r = AuditFilter { reason: Some("blocked_account".into()), ..AuditFilter::default() };
    assert_eq!(store.count_audit(&r).await.expect("reason"), 1);
    assert_eq!(store.audit_head().await.expect("head").map(|h| h.seq), Some(10));
    assert_eq!(store.get_cursor("detection").await.expect("cursor"), 0);
    store.set_cursor("detection", 7).await.expect("set");
    store.set_cursor("detection", 9).await.expect("set again");
    assert_eq!(store.get_cursor("detection").await.expect("cursor"), 9);
}

pub async fn snils_ciphers_are_replaced_all_at_once(store: Arc<dyn Store>) {
    use crate::security::StoredSnils;
    loaded(&store).await;
    let before = store.list_snils_ciphers().await.expect("list");
    assert!(before.len() >= 3, "the fixture stores several СНИЛС: {}", before.len());
    assert!(before.windows(2).all(|w| w[0].person < w[1].person), "ordered by person");
    let rekeyed: Vec<StoredSnils> = before
        .iter()
        .map(|s| StoredSnils {
            cipher: s.cipher.iter().rev().copied().chain([0xEE]).collect(),
            hmac: s.hmac.iter().map(|b| b ^ 0x5A).collect(),
            ..s.clone()
        })
        .collect();
    // A list that misses someone is refused whole.
    let partial = store
        .replace_snils_ciphers(&rekeyed[1..], NewAudit::new(7_000_000, "keys.rotate", "ok"))
        .await;
    assert!(matches!(partial, Err(StoreError::Conflict { .. })), "{partial:?}");
    assert_eq!(store.list_snils_ciphers().await.expect("list"), before, "nothing changed");
    let n = store
        .replace_snils_ciphers(&rekeyed, NewAudit::new(7_000_000, "keys.rotate", "ok"))
        .await
        .expect("rotate");
    assert_eq!(n, before.len() as u64);
    assert_eq!(store.list_snils_ciphers().await.expect("list"), rekeyed);
    let first = &rekeyed[0];
    let found = store.find_person_by_snils_hmac(&first.hmac).await.expect("q").expect("found");
    assert_eq!(found.id, first.person, "matching works with the new hash");
    assert!(store.find_person_by_snils_hmac(&before[0].hmac).await.expect("q").is_none());
    let actions: Vec<String> = store
        .list_audit(0, 1_000)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event.action)
        .filter(|a| a == "keys.rotate")
        .collect();
    assert_eq!(actions.len(), 1, "one audit record, for the rotation that happened");
}

pub async fn incident_notices_are_recorded_once_each(store: Arc<dyn Store>) {
    use crate::security::*;
    loaded(&store).await;
    let officer = person_id(&store, "officer").await;
    let inc = NewIncident {
        rule: "D-05".into(),
        severity: Severity::High,
        detected_at: 1_000,
        subject_key: "person:9".into(),
        subject_person_id: None,
        subject_ip: None,
        summary: "Массовая выгрузка".into(),
        evidence: vec![1],
    };
    let id = store.create_incident(&inc, audit("incident.created")).await.expect("create");
    assert!(store.list_incident_notices(id).await.expect("list").is_empty());
    let notice = |kind, sent_at, reference: Option<&str>| IncidentNoticeRow {
        incident_id: id,
        kind,
        sent_at,
        reference: reference.map(str::to_string),
        author_id: Some(officer),
        recorded_at: 9_000,
    };
    let rkn = notice(NoticeKind::Rkn24h, 5_000, Some("РКН-77-123"));
    store.record_incident_notice(&rkn, audit("incident.notice")).await.expect("record");
    let parents = notice(NoticeKind::Parents, 4_000, None);
    store.record_incident_notice(&parents, audit("incident.notice")).await.expect("record");
    assert_eq!(store.list_incident_notices(id).await.expect("list"), vec![parents, rkn.clone()]);
    let again = store.record_incident_notice(&rkn, audit("incident.notice")).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    let nowhere = IncidentNoticeRow { incident_id: 999_999, ..rkn };
    let missing = store.record_incident_notice(&nowhere, audit("incident.notice")).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    assert_eq!(store.list_incident_notices(id).await.expect("list").len(), 2);
    let audited = store
        .list_audit(0, 1_000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.event.action == "incident.notice")
        .count();
    assert_eq!(audited, 2, "refused writes leave no audit record");
}

pub async fn an_incident_is_escalated_with_an_audit_record(store: Arc<dyn Store>) {
    use crate::security::*;
    loaded(&store).await;
    let inc = NewIncident {
        rule: "D-01".into(),
        severity: Severity::Medium,
        detected_at: 1_000,
        subject_key: "person:3".into(),
        subject_person_id: None,
        subject_ip: None,
        summary: "Попытки входа".into(),
        evidence: vec![1, 2, 3],
    };
    let id = store.create_incident(&inc, audit("incident.created")).await.expect("create");
    store.escalate_incident(id, Severity::High, audit("incident.escalated")).await.expect("up");
    let row = store.get_incident(id).await.expect("get");
    assert_eq!((row.severity, row.status), (Severity::High, IncidentStatus::New));
    let missing =
        store.escalate_incident(424_242, Severity::High, audit("incident.escalated")).await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))), "{missing:?}");
    let escalations = store
        .list_audit(0, 1_000)
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.event.action == "incident.escalated")
        .count();
    assert_eq!(escalations, 1);
}
