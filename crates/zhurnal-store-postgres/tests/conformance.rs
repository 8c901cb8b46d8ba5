//! The shared conformance suite on PostgreSQL: a fresh database per test (see `common` for
//! where the server comes from and when the tests skip).
//!
//! `zhurnal_store::conformance_suite!` cannot skip (it awaits a store unconditionally), so this
//! file repeats its case list in `pg_conformance_suite!`; `the_case_list_matches_upstream`
//! fails when the two lists drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::TestDb;
use zhurnal_store::Store;

async fn fresh() -> Option<(Arc<dyn Store>, TestDb)> {
    let db = TestDb::create().await?;
    let store = db.store(4).await;
    Some((Arc::new(store), db))
}

/// One test per case, skipping without a server. Keep the list equal to the one in
/// `zhurnal_store::conformance_suite!` (checked by `the_case_list_matches_upstream`).
macro_rules! pg_conformance_suite {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let Some((store, db)) = fresh().await else { return };
                zhurnal_store::conformance::$case(store).await;
                db.drop_database().await;
            }
        )*

        const CASES: &[&str] = &[$(stringify!($case)),*];
    };
}

pg_conformance_suite!(
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
    import_a_large_batch_with_repeated_keys_applies_in_order,
);

/// The case names listed in `conformance_suite!`, between `@cases $fresh;` and `);`.
fn upstream_cases() -> Vec<String> {
    let source = include_str!("../../zhurnal-store/src/conformance.rs");
    let start = source
        .find("@cases $fresh;")
        .expect("conformance_suite! lists its cases after `@cases $fresh;`")
        + "@cases $fresh;".len();
    let len = source[start..].find(");").expect("the case list ends with `);`");
    source[start..start + len]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_case_list_matches_upstream() {
    let upstream = upstream_cases();
    assert!(upstream.len() >= 18, "parsed too few cases: {upstream:?}");
    assert!(
        upstream.iter().all(|c| c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_')),
        "the case list did not parse into identifiers: {upstream:?}"
    );
    let ours: Vec<String> = CASES.iter().map(|c| c.to_string()).collect();
    assert_eq!(
        ours, upstream,
        "tests/conformance.rs must list the same cases as zhurnal_store::conformance_suite!"
    );
}

// Area `diary`: the DiaryStore cases, skipping without a server like the others.
mod diary {
    use super::fresh;

    macro_rules! pg_diary_suite {
        ($($case:ident),* $(,)?) => {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some((store, db)) = fresh().await else { return };
                    zhurnal_store::conformance_diary::$case(store).await;
                    db.drop_database().await;
                }
            )*

            #[test]
            fn the_diary_case_list_matches_upstream() {
                assert_eq!([$(stringify!($case)),*], zhurnal_store::conformance_diary::CASES);
            }
        };
    }

    pg_diary_suite!(
        diary_marks_carry_subject_and_date_for_student_and_class,
        class_guardians_are_the_parents_of_current_students,
        diary_visits_are_remembered_per_viewer_and_student,
        announcements_are_stored_counted_listed_and_reviewed,
        a_diary_student_comes_with_the_school_and_class_shown,
        week_entries_are_the_students_marks_and_absences_on_the_class_lessons,
        a_class_week_holds_every_students_week,
        every_change_a_week_shows_moves_its_stamp,
    );
}
