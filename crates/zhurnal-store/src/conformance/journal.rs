//! Conformance cases of [`JournalStore`](crate::JournalStore): the class journal.

use std::sync::Arc;

use zhurnal_domain::{AssignmentId, AttendanceKind, MarkValue, PeriodId, WorkTypeId};

use super::{audit, class_id, d, loaded, person_id};
use crate::journal::*;
use crate::*;

async fn math(store: &Arc<dyn Store>) -> AssignmentId {
    let class = class_id(store, "5А").await;
    store
        .list_class_assignments(class)
        .await
        .expect("assignments")
        .into_iter()
        .find(|a| a.external_id == "a-math-5a")
        .expect("math")
        .id
}

async fn work_type(store: &Arc<dyn Store>, code: &str) -> WorkTypeId {
    let s1 = store.find_school_by_external_id("s1").await.expect("q").expect("s1");
    store
        .list_work_types(s1.id)
        .await
        .expect("work types")
        .into_iter()
        .find(|w| w.code == code)
        .expect("work type")
        .id
}

async fn audit_count(store: &Arc<dyn Store>) -> usize {
    store.list_audit(0, 10_000).await.expect("audit").len()
}

async fn periods(store: &Arc<dyn Store>) -> Vec<PeriodRow> {
    let s1 = store.find_school_by_external_id("s1").await.expect("q").expect("s1");
    let year = store.list_academic_years(s1.id).await.expect("years")[0].id;
    store.list_periods(year).await.expect("periods")
}

fn key(a: AssignmentId, day: u32, n: u8) -> LessonKey {
    LessonKey { assignment: a, date: d(2026, 11, day), lesson_number: n }
}

pub async fn a_journal_assignment_knows_its_class_and_students(store: Arc<dyn Store>) {
    loaded(&store).await;
    let class = class_id(&store, "5А").await;
    let all = store.list_class_assignments(class).await.expect("assignments");
    assert_eq!(
        all.iter().map(|a| a.subject_name.as_str()).collect::<Vec<_>>(),
        ["Математика", "Физкультура"]
    );
    let a = math(&store).await;
    let j = store.get_journal_assignment(a).await.expect("assignment");
    assert_eq!(
        (j.grade, j.period_scheme, j.grading),
        (5, zhurnal_domain::PeriodScheme::Quarters, zhurnal_domain::Grading::FivePoint)
    );
    assert_eq!(j.assignment.class_name, "5А");
    assert_eq!(j.group_id, None);
    assert!(matches!(
        store.get_journal_assignment(AssignmentId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));
    let students = store.list_journal_students(a, d(2026, 11, 23)).await.expect("students");
    assert_eq!(
        students.iter().map(|s| s.person.external_id.as_str()).collect::<Vec<_>>(),
        ["student-a"],
        "the student who left on 1 November is no longer in the journal"
    );
    let september = store.list_journal_students(a, d(2026, 9, 15)).await.expect("students");
    assert_eq!(september.len(), 2);
}

pub async fn assignment_lessons_follow_the_timetable_and_keep_extra_ones(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = math(&store).await;
    let week =
        store.list_assignment_lessons(a, d(2026, 11, 23), d(2026, 11, 29)).await.expect("lessons");
    assert_eq!(
        week.iter().map(|l| (l.date, l.lesson_number)).collect::<Vec<_>>(),
        [(d(2026, 11, 23), 1), (d(2026, 11, 24), 2)]
    );
    assert_eq!(week[0].topic.as_deref(), Some("Дроби"));
    assert!(week[1].substitution && week[1].lesson_id.is_none());
    // An extra lesson outside the timetable appears once it is held.
    store
        .update_lesson(key(a, 26, 6), Some("Консультация".into()), None, audit("lesson.update"))
        .await
        .expect("extra lesson");
    let week =
        store.list_assignment_lessons(a, d(2026, 11, 23), d(2026, 11, 29)).await.expect("lessons");
    assert_eq!(week.len(), 3);
    assert_eq!((week[2].date, week[2].lesson_number), (d(2026, 11, 26), 6));
    assert_eq!(week[2].topic.as_deref(), Some("Консультация"));
}

pub async fn the_full_teacher_day_shows_lessons_given_to_a_substitute(store: Arc<dyn Store>) {
    loaded(&store).await;
    let teacher = person_id(&store, "teacher").await;
    let substitute = person_id(&store, "substitute").await;
    let tuesday = store.list_teacher_day_all(teacher, d(2026, 11, 24)).await.expect("tuesday");
    assert_eq!(tuesday.len(), 1, "the absent teacher still sees the lesson");
    assert!(tuesday[0].substitution);
    assert_eq!(tuesday[0].teacher_id, substitute);
    let sub = store.list_teacher_day_all(substitute, d(2026, 11, 24)).await.expect("substitute");
    assert_eq!(sub.len(), 1);
    assert_eq!(sub[0].teacher_id, substitute);
    let monday = store.list_teacher_day_all(teacher, d(2026, 11, 23)).await.expect("monday");
    assert_eq!(monday.len(), 1);
    assert!(!monday[0].substitution);
}

pub async fn marks_are_created_corrected_and_deleted_with_history(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = math(&store).await;
    let student = person_id(&store, "student-a").await;
    let teacher = person_id(&store, "teacher").await;
    let answer = work_type(&store, "answer").await;
    let test = work_type(&store, "test").await;
    let before = audit_count(&store).await;
    let new = NewMark {
        external_id: None,
        lesson: key(a, 24, 2),
        student,
        value: MarkValue::Points(4),
        work_type: answer,
        weight: 1,
        comment: Some("у доски".into()),
        author: teacher,
        at: 2_000,
    };
    let m = store.create_mark(&new, audit("mark.create")).await.expect("create");
    assert_eq!(
        (m.value, m.weight, m.comment.as_deref()),
        (MarkValue::Points(4), 1, Some("у доски"))
    );
    let jm = store.get_journal_mark(m.id).await.expect("mark");
    assert_eq!((jm.assignment_id, jm.date, jm.lesson_number), (a, d(2026, 11, 24), 2));
    let lesson = store.get_lesson(m.lesson_id).await.expect("lesson created on first mark");
    assert_eq!(lesson.date, d(2026, 11, 24));
    // A second mark in the same cell.
    let second = store
        .create_mark(&NewMark { value: MarkValue::Points(5), ..new.clone() }, audit("mark.create"))
        .await
        .expect("second mark");
    assert_eq!(second.lesson_id, m.lesson_id);
    let change = MarkChange {
        id: m.id,
        value: MarkValue::Points(3),
        work_type: test,
        weight: 3,
        comment: None,
        by: teacher,
        at: 3_000,
        reason: "ошибка ввода".into(),
    };
    let updated = store.update_mark(&change, audit("mark.update")).await.expect("update");
    assert_eq!(
        (updated.value, updated.work_type_id, updated.weight),
        (MarkValue::Points(3), test, 3)
    );
    assert_eq!(updated.updated_at, 3_000);
    store
        .delete_mark(second.id, teacher, 4_000, "поставлена не тому", audit("mark.delete"))
        .await
        .expect("delete");
    assert!(matches!(store.get_journal_mark(second.id).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.delete_mark(second.id, teacher, 5_000, "ещё раз", audit("mark.delete")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .update_mark(&MarkChange { id: second.id, ..change.clone() }, audit("mark.update"))
            .await,
        Err(StoreError::NotFound(_))
    ));
    let marks = store
        .list_assignment_marks(a, d(2026, 11, 23), d(2026, 11, 29))
        .await
        .expect("marks")
        .marks;
    assert_eq!(
        marks.iter().map(|m| m.value).collect::<Vec<_>>(),
        [
            MarkValue::Points(5), // the fixture's mark of 23 November
            MarkValue::Points(3)
        ]
    );
    let history = store
        .list_assignment_marks(a, d(2026, 11, 24), d(2026, 11, 24))
        .await
        .expect("history")
        .history;
    // Oldest first across the cell's marks (the deleted one's included), not mark by mark.
    assert_eq!(
        history.iter().map(|h| (h.mark_id, h.changed_at)).collect::<Vec<_>>(),
        [(m.id, 2_000), (second.id, 2_000), (m.id, 3_000), (second.id, 4_000)]
    );
    let of_first: Vec<_> = history.iter().filter(|h| h.mark_id == m.id).collect();
    assert_eq!(of_first.len(), 2);
    assert_eq!((of_first[0].old_value, of_first[0].new_value), (None, Some(MarkValue::Points(4))));
    assert_eq!(
        (of_first[1].old_value, of_first[1].new_value, of_first[1].reason.as_deref()),
        (Some(MarkValue::Points(4)), Some(MarkValue::Points(3)), Some("ошибка ввода"))
    );
    assert_eq!(
        (of_first[1].old_work_type_id, of_first[1].new_work_type_id),
        (Some(answer), Some(test))
    );
    assert_eq!(of_first[1].changed_by, teacher);
    assert_eq!(of_first[1].changed_by_name, "Петров Пётр");
    assert_eq!(of_first[1].student_id, student);
    let deletion = history.iter().find(|h| h.mark_id == second.id && h.new_value.is_none());
    assert_eq!(deletion.and_then(|h| h.reason.as_deref()), Some("поставлена не тому"));
    // create ×2, update, delete: one audit record each, written with the change.
    assert_eq!(audit_count(&store).await, before + 4);
    // A retried create with the same idempotency key returns the first mark, once.
    let keyed = NewMark { external_id: Some("client:1:abc".into()), ..new.clone() };
    let once = store.create_mark(&keyed, audit("mark.create")).await.expect("keyed");
    let twice = store.create_mark(&keyed, audit("mark.create")).await.expect("retried");
    assert_eq!(once, twice);
    assert_eq!(audit_count(&store).await, before + 5);
    let before = before + 1;
    // A refused write leaves neither the change nor its audit record.
    let ghost = NewMark { student: zhurnal_domain::PersonId(999_999), ..new };
    assert!(store.create_mark(&ghost, audit("mark.create")).await.is_err());
    assert_eq!(audit_count(&store).await, before + 4);
}

pub async fn attendance_is_set_changed_and_cleared(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = math(&store).await;
    let student = person_id(&store, "student-a").await;
    let teacher = person_id(&store, "teacher").await;
    let k = key(a, 23, 1);
    let set =
        |kind| store.set_attendance(k, student, kind, teacher, 2_000, audit("attendance.set"));
    assert_eq!(set(Some(AttendanceKind::Absent)).await.expect("set"), None);
    assert_eq!(set(Some(AttendanceKind::Ill)).await.expect("change"), Some(AttendanceKind::Absent));
    let rows = store
        .list_assignment_attendance(a, d(2026, 11, 23), d(2026, 11, 23))
        .await
        .expect("attendance");
    assert!(rows.iter().any(|r| r.student_id == student && r.kind == AttendanceKind::Ill));
    assert_eq!(set(None).await.expect("clear"), Some(AttendanceKind::Ill));
    let rows = store
        .list_assignment_attendance(a, d(2026, 11, 23), d(2026, 11, 23))
        .await
        .expect("attendance");
    assert!(rows.iter().all(|r| r.student_id != student));
    let records = store.list_audit(0, 10_000).await.expect("audit");
    let last = records.last().expect("audited");
    assert_eq!(last.event.details["old"], "ill");
    assert_eq!(last.event.details["new"], serde_json::Value::Null);
}

pub async fn lesson_topic_homework_and_files_are_kept(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = math(&store).await;
    let teacher = person_id(&store, "teacher").await;
    let lesson = store
        .update_lesson(
            key(a, 24, 2),
            Some("Уравнения".into()),
            Some("№ 5".into()),
            audit("lesson.update"),
        )
        .await
        .expect("update");
    assert_eq!(store.get_lesson(lesson.id).await.expect("lesson"), lesson);
    let again = store
        .update_lesson(key(a, 24, 2), Some("Уравнения".into()), None, audit("lesson.update"))
        .await
        .expect("update again");
    assert_eq!((again.id, again.homework), (lesson.id, None));
    let file = NewAttachment {
        uid: "file-1".into(),
        file_name: "задание.pdf".into(),
        content_type: "application/pdf".into(),
        sha256: "00ff".into(),
        content: b"%PDF-1.4 test".to_vec(),
        by: teacher,
        at: 2_000,
    };
    let row =
        store.add_attachment(key(a, 24, 2), &file, audit("attachment.upload")).await.expect("add");
    assert_eq!((row.lesson_id, row.size_bytes), (lesson.id, 13));
    let listed =
        store.list_assignment_attachments(a, d(2026, 11, 23), d(2026, 11, 29)).await.expect("list");
    assert_eq!(listed, std::slice::from_ref(&row));
    let (found, assignment, content) =
        store.find_attachment("file-1").await.expect("find").expect("present");
    assert_eq!((found, assignment, content), (row, a, file.content.clone()));
    assert!(store.find_attachment("nope").await.expect("find").is_none());
    // The same uid again (a retried upload) returns the stored file and writes nothing.
    let before = audit_count(&store).await;
    let again = NewAttachment { content: b"other".to_vec(), ..file.clone() };
    let retried = store
        .add_attachment(key(a, 24, 2), &again, audit("attachment.upload"))
        .await
        .expect("retry");
    assert_eq!((retried.uid.as_str(), retried.size_bytes), ("file-1", 13));
    assert_eq!(audit_count(&store).await, before);
    assert!(matches!(
        store.get_lesson(zhurnal_domain::LessonId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));
}

pub async fn final_marks_are_set_replaced_and_removed(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = math(&store).await;
    let student = person_id(&store, "student-a").await;
    let teacher = person_id(&store, "teacher").await;
    let q2 = periods(&store).await.into_iter().find(|p| p.external_id == "s1-q2").expect("q2");
    let q2 = FinalMarkKind::Period(q2.period.id);
    let store = &store;
    let set = |kind, v: Option<&str>| {
        let w = FinalMarkWrite {
            student,
            assignment: a,
            kind,
            value: v.map(str::to_string),
            author: teacher,
            at: 2_000,
        };
        async move { store.set_final_mark(&w, audit("final_mark.set")).await }
    };
    assert_eq!(set(q2, Some("5")).await.expect("set"), None);
    assert_eq!(set(q2, Some("4")).await.expect("replace"), Some("5".into()));
    assert_eq!(set(FinalMarkKind::Annual, Some("4")).await.expect("annual"), None);
    assert_eq!(set(FinalMarkKind::Annual, Some("5")).await.expect("annual"), Some("4".into()));
    let all = store.list_assignment_final_marks(a).await.expect("list");
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|f| f.kind == q2 && f.value == "4"));
    assert!(all.iter().any(|f| f.kind == FinalMarkKind::Annual && f.value == "5"));
    assert_eq!(set(q2, None).await.expect("remove"), Some("4".into()));
    assert_eq!(store.list_assignment_final_marks(a).await.expect("list").len(), 1);
}

pub async fn a_period_is_reopened_and_closed_again(store: Arc<dyn Store>) {
    loaded(&store).await;
    let q1 = periods(&store).await.into_iter().find(|p| p.external_id == "s1-q1").expect("q1");
    assert!(q1.period.closed_on.is_some());
    store.set_period_closed(q1.period.id, None, audit("period.reopen")).await.expect("reopen");
    let now = periods(&store).await.into_iter().find(|p| p.external_id == "s1-q1").expect("q1");
    assert_eq!(now.period.closed_on, None);
    store
        .set_period_closed(q1.period.id, Some(d(2026, 11, 25)), audit("period.close"))
        .await
        .expect("close");
    let now = periods(&store).await.into_iter().find(|p| p.external_id == "s1-q1").expect("q1");
    assert_eq!(now.period.closed_on, Some(d(2026, 11, 25)));
    let before = audit_count(&store).await;
    assert!(matches!(
        store.set_period_closed(PeriodId(999_999), None, audit("period.reopen")).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(audit_count(&store).await, before);
}

/// Group commit of mark entry (area `bench`): a batch with refused marks among good ones. The
/// good marks are committed with their history line and their own audit record (naming the
/// mark, chained in batch order), each refused mark fails alone and leaves nothing, a reused
/// idempotency key in the batch writes nothing, and the chain verifies. On PostgreSQL a
/// refused mark after which the others still commit shows the savepoint is rolled back.
pub async fn a_mark_batch_commits_all_but_the_refused_marks(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = math(&store).await;
    let teacher = person_id(&store, "teacher").await;
    let (sa, sb, sc) = (
        person_id(&store, "student-a").await,
        person_id(&store, "student-b").await,
        person_id(&store, "student-c").await,
    );
    let answer = work_type(&store, "answer").await;
    assert!(store.create_marks(&[]).await.expect("empty batch").is_empty());
    let new = |student, points: u8, lesson: LessonKey| NewMark {
        external_id: None,
        lesson,
        student,
        value: MarkValue::Points(points),
        work_type: answer,
        weight: 1,
        comment: None,
        author: teacher,
        at: 2_000,
    };
    let cell = key(a, 24, 2);
    let before = audit_count(&store).await;
    let keyed = NewMark { external_id: Some("client:batch:1".into()), ..new(sc, 2, cell) };
    let batch = vec![
        (new(sa, 4, cell), audit("mark.create")),
        // Unknown student: refused by the foreign key.
        (new(zhurnal_domain::PersonId(999_999), 3, cell), audit("mark.create")),
        (new(sb, 5, cell), audit("mark.create")),
        // Unknown assignment: the lesson cannot be created.
        (new(sa, 3, key(AssignmentId(999_999), 24, 2)), audit("mark.create")),
        (keyed.clone(), audit("mark.create")),
        // The same key again in the same batch: the first mark, nothing written.
        (keyed, audit("mark.create")),
    ];
    let results = store.create_marks(&batch).await.expect("the batch commits");
    assert_eq!(results.len(), batch.len(), "one answer per mark");
    assert!(results[1].is_err(), "unknown student refused: {:?}", results[1]);
    assert!(results[3].is_err(), "unknown assignment refused: {:?}", results[3]);
    let ok: Vec<&MarkRow> = [0, 2, 4, 5]
        .iter()
        .map(|&i| results[i].as_ref().unwrap_or_else(|e| panic!("mark {i} refused: {e}")))
        .collect();
    assert_eq!(
        ok.iter().map(|m| (m.student_id, m.value)).collect::<Vec<_>>(),
        [
            (sa, MarkValue::Points(4)),
            (sb, MarkValue::Points(5)),
            (sc, MarkValue::Points(2)),
            (sc, MarkValue::Points(2))
        ]
    );
    assert_eq!(ok[2].id, ok[3].id, "a reused key answers with the mark it created");
    let created = [ok[0].id, ok[1].id, ok[2].id];
    // Committed: another connection reads the marks and their history.
    let AssignmentMarks { marks, history } =
        store.list_assignment_marks(a, d(2026, 11, 24), d(2026, 11, 24)).await.expect("marks");
    assert_eq!(marks.iter().map(|m| m.id).collect::<Vec<_>>(), created);
    assert_eq!(history.iter().map(|h| h.mark_id).collect::<Vec<_>>(), created);
    // Each creation record carries what its mark was created with, and nothing old.
    for (h, m) in history.iter().zip(&ok) {
        assert_eq!(
            (h.changed_at, h.changed_by, h.new_value, h.new_work_type_id),
            (m.created_at, m.author_id, Some(m.value), Some(m.work_type_id))
        );
        assert_eq!((h.old_value, h.old_work_type_id, h.reason.as_deref()), (None, None, None));
    }
    // One audit record per created mark, naming it, chained in the order of the batch.
    assert_eq!(audit_count(&store).await, before + 3);
    let records = store.list_audit(0, 10_000).await.expect("audit");
    let named: Vec<(i64, String)> = records[before..]
        .iter()
        .map(|r| (r.seq, r.event.target_id.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        named.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
        created.iter().map(|m| m.0.to_string()).collect::<Vec<_>>()
    );
    assert!(named.windows(2).all(|w| w[1].0 == w[0].0 + 1), "consecutive seqs: {named:?}");
    let check = crate::audit::verify_chain(store.as_ref(), &super::TestSealer)
        .await
        .expect("the chain verifies");
    assert_eq!(check.records as usize, before + 3);
    // A single create after the batch continues the same chain.
    store.create_mark(&new(sa, 5, cell), audit("mark.create")).await.expect("single after");
    crate::audit::verify_chain(store.as_ref(), &super::TestSealer).await.expect("still verifies");
}

pub async fn journal_entry_facts_follow_the_timetable_roster_and_year(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = math(&store).await;
    let student_a = person_id(&store, "student-a").await;
    let student_b = person_id(&store, "student-b").await;
    // An extra lesson outside the timetable: Wednesday 25 November, lesson 5.
    let extra = crate::batch::Batch {
        lessons: vec![crate::batch::BLesson {
            external_id: "l-extra".into(),
            assignment: "a-math-5a".into(),
            date: d(2026, 11, 25),
            lesson_number: 5,
            topic: None,
            homework: None,
        }],
        ..Default::default()
    };
    store.apply_batch(&extra, audit("test.extra")).await.expect("extra lesson");
    let facts = |k: LessonKey, uid: Option<&'static str>| {
        let store = store.clone();
        async move { store.check_journal_entry(k, uid).await.expect("facts") }
    };

    // Monday lesson 1 (a slot, held), about a student of the class.
    assert_eq!(
        facts(key(a, 23, 1), Some("uid-student-a")).await,
        EntryFacts { year_archived_at: None, lesson_exists: true, student: Some(student_a) }
    );
    // The timetable alone makes a lesson (next Monday, nothing held yet); the weekday counts.
    assert!(facts(key(a, 30, 1), None).await.lesson_exists);
    assert!(facts(key(a, 24, 2), None).await.lesson_exists);
    assert!(!facts(key(a, 25, 2), None).await.lesson_exists, "no math slot on Wednesdays");
    assert!(!facts(key(a, 23, 2), None).await.lesson_exists, "Monday has lesson 1, not 2");
    // A held lesson outside the timetable counts, on its own date only.
    assert!(facts(key(a, 25, 5), None).await.lesson_exists);
    assert!(!facts(key(a, 26, 5), None).await.lesson_exists);

    // The roster on the lesson's date: student-b left on 1 November, student-c is in 5Б.
    assert_eq!(facts(key(a, 23, 1), Some("uid-student-b")).await.student, None);
    let october = LessonKey { assignment: a, date: d(2026, 10, 5), lesson_number: 1 };
    assert_eq!(facts(october, Some("uid-student-b")).await.student, Some(student_b));
    assert_eq!(facts(key(a, 23, 1), Some("uid-student-c")).await.student, None);
    assert_eq!(facts(key(a, 23, 1), Some("uid-nobody")).await.student, None);
    assert_eq!(facts(key(a, 23, 1), None).await.student, None);

    // An unknown assignment has nothing.
    assert_eq!(
        facts(key(AssignmentId(999_999), 23, 1), Some("uid-student-a")).await,
        EntryFacts { year_archived_at: None, lesson_exists: false, student: None }
    );

    // Once the year is archived (by a rollover), every entry of it says so.
    let s1 = store.find_school_by_external_id("s1").await.expect("q").expect("s1");
    let year = store.list_academic_years(s1.id).await.expect("years")[0].id;
    let rollover = RolloverWrite {
        old_year: year,
        new_year: NewYear {
            school: s1.id,
            external_id: "s1-y2027".into(),
            name: "2027/2028".into(),
            starts_on: d(2027, 9, 1),
            ends_on: d(2028, 8, 31),
            periods: Vec::new(),
        },
        classes: Vec::new(),
        moves: Vec::new(),
        departures: Vec::new(),
        leave_on: d(2027, 8, 31),
    };
    store.apply_rollover(&rollover, audit("rollover.apply")).await.expect("rollover");
    let archived = store.find_year_archived_at(year).await.expect("year");
    assert!(archived.is_some());
    assert_eq!(facts(key(a, 23, 1), None).await.year_archived_at, archived);
}

pub async fn a_journal_context_is_the_assignment_school_periods_and_work_types(
    store: Arc<dyn Store>,
) {
    loaded(&store).await;
    let a = math(&store).await;
    let ctx = store.get_journal_context(a).await.expect("context");
    // Exactly what the four separate reads answer, in their order.
    let j = store.get_journal_assignment(a).await.expect("assignment");
    assert_eq!(ctx.assignment, j);
    assert_eq!(ctx.school, store.get_school(j.school_id).await.expect("school"));
    assert_eq!(ctx.periods, store.list_periods(j.academic_year_id).await.expect("periods"));
    assert_eq!(ctx.work_types, store.list_work_types(j.school_id).await.expect("work types"));
    assert_eq!((ctx.periods.len(), ctx.work_types.len()), (2, 2), "school 2's are not included");
    assert_eq!(
        ctx.work_types.iter().map(|w| w.code.as_str()).collect::<Vec<_>>(),
        ["answer", "test"]
    );
    assert!(matches!(
        store.get_journal_context(AssignmentId(999_999)).await,
        Err(StoreError::NotFound(_))
    ));
}
