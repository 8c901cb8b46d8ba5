//! Conformance cases of [`crate::DiaryStore`] (area `diary`), run on every backend by
//! [`diary_conformance_suite!`](crate::diary_conformance_suite).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use chrono::NaiveDate;
use zhurnal_domain::{
    AnnouncementStatus, AttendanceKind, ClassId, Grading, LessonId, MarkValue, PersonId,
};

use crate::conformance::{d, fixture};
use crate::journal::{LessonKey, MarkChange, NewAttachment, NewMark};
use crate::*;

/// Expands into one test per diary case; `$fresh` as in `conformance_suite!`.
#[macro_export]
macro_rules! diary_conformance_suite {
    ($fresh:expr) => {
        $crate::diary_conformance_suite!(@cases $fresh;
            diary_marks_carry_subject_and_date_for_student_and_class,
            class_guardians_are_the_parents_of_current_students,
            diary_visits_are_remembered_per_viewer_and_student,
            announcements_are_stored_counted_listed_and_reviewed,
            a_diary_student_comes_with_the_school_and_class_shown,
            week_entries_are_the_students_marks_and_absences_on_the_class_lessons,
            a_class_week_holds_every_students_week,
            every_change_a_week_shows_moves_its_stamp
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store: std::sync::Arc<dyn $crate::Store> = $fresh.await;
                $crate::conformance_diary::$case(store).await;
            }
        )*
    };
}

/// The case names, for backends that list them again (PostgreSQL skips without a server).
pub const CASES: &[&str] = &[
    "diary_marks_carry_subject_and_date_for_student_and_class",
    "class_guardians_are_the_parents_of_current_students",
    "diary_visits_are_remembered_per_viewer_and_student",
    "announcements_are_stored_counted_listed_and_reviewed",
    "a_diary_student_comes_with_the_school_and_class_shown",
    "week_entries_are_the_students_marks_and_absences_on_the_class_lessons",
    "a_class_week_holds_every_students_week",
    "every_change_a_week_shows_moves_its_stamp",
];

fn audit(action: &str) -> NewAudit {
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

pub async fn diary_marks_carry_subject_and_date_for_student_and_class(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a = person_id(&store, "student-a").await;
    let c = person_id(&store, "student-c").await;
    let a5 = class_id(&store, "5А").await;
    let b5 = class_id(&store, "5Б").await;
    let week = (d(2026, 11, 23), d(2026, 11, 29));
    let marks = store.list_student_subject_marks(a, week.0, week.1).await.expect("marks");
    assert_eq!(marks.len(), 1);
    let m = &marks[0];
    assert_eq!(
        (m.student_id, m.subject_name.as_str(), m.date, m.value, m.weight, m.created_at),
        (a, "Математика", d(2026, 11, 23), MarkValue::Points(5), 3, 1_000)
    );
    assert!(
        store
            .list_student_subject_marks(a, d(2026, 11, 24), d(2026, 12, 31))
            .await
            .expect("later")
            .is_empty()
    );
    let class = store.list_class_marks(a5, week.0, week.1).await.expect("class marks");
    assert_eq!(class, marks);
    assert!(store.list_class_marks(b5, week.0, week.1).await.expect("5Б").is_empty());
    let att = store.list_class_attendance(a5, week.0, week.1).await.expect("attendance");
    assert_eq!(att.len(), 1);
    assert_eq!((att[0].student_id, att[0].date, att[0].kind), (c, week.0, AttendanceKind::Ill));
    assert!(store.list_class_attendance(b5, week.0, week.1).await.expect("5Б").is_empty());
    // The fixture has neither files nor period marks: the queries run and find none.
    assert!(store.list_class_attachments(a5, week.0, week.1).await.expect("files").is_empty());
    assert!(store.list_student_final_marks(a).await.expect("final marks").is_empty());
}

pub async fn class_guardians_are_the_parents_of_current_students(store: Arc<dyn Store>) {
    loaded(&store).await;
    let parent = person_id(&store, "parent").await;
    let a = person_id(&store, "student-a").await;
    let b = person_id(&store, "student-b").await;
    let a5 = class_id(&store, "5А").await;
    let now = store.list_class_guardians(a5, d(2026, 11, 23)).await.expect("guardians");
    assert_eq!(now.len(), 1, "student-b left on 1 November");
    assert_eq!((now[0].child_id, now[0].parent.id), (a, parent));
    assert_eq!(now[0].parent.last_name, "Иванова");
    let before = store.list_class_guardians(a5, d(2026, 10, 1)).await.expect("guardians");
    let mut children: Vec<PersonId> = before.iter().map(|g| g.child_id).collect();
    children.sort();
    let mut expected = vec![a, b];
    expected.sort();
    assert_eq!(children, expected);
    let b5 = class_id(&store, "5Б").await;
    assert!(store.list_class_guardians(b5, d(2026, 11, 23)).await.expect("5Б").is_empty());
}

pub async fn diary_visits_are_remembered_per_viewer_and_student(store: Arc<dyn Store>) {
    loaded(&store).await;
    let parent = person_id(&store, "parent").await;
    let a = person_id(&store, "student-a").await;
    let b = person_id(&store, "student-b").await;
    assert_eq!(store.find_diary_visit(parent, a).await.expect("none"), None);
    let first = DiaryVisit { at: 5_000, seen_lessons: vec![] };
    store.record_diary_visit(parent, a, &first).await.expect("record");
    assert_eq!(store.find_diary_visit(parent, a).await.expect("one"), Some(first));
    let second = DiaryVisit { at: 9_000, seen_lessons: vec![LessonId(3), LessonId(7)] };
    store.record_diary_visit(parent, a, &second).await.expect("again");
    assert_eq!(store.find_diary_visit(parent, a).await.expect("moved"), Some(second));
    assert_eq!(store.find_diary_visit(parent, b).await.expect("other child"), None);
    assert_eq!(store.find_diary_visit(a, a).await.expect("other viewer"), None);
}

pub async fn announcements_are_stored_counted_listed_and_reviewed(store: Arc<dyn Store>) {
    loaded(&store).await;
    let teacher = person_id(&store, "teacher").await;
    let admin = person_id(&store, "admin").await;
    let a5 = class_id(&store, "5А").await;
    let b5 = class_id(&store, "5Б").await;
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("s1").id;
    let new = |uid: &str, status, classes: Vec<ClassId>, at| NewAnnouncement {
        uid: uid.into(),
        school_id: school,
        sender_id: teacher,
        body: format!("Собрание {uid}"),
        status,
        recipient_count: 3,
        created_at: at,
        classes,
    };
    let first = store
        .insert_announcement(
            &new("an-1", AnnouncementStatus::Delivered, vec![a5], 10_000),
            audit("announcement.send"),
        )
        .await
        .expect("insert");
    assert_eq!(first.uid, "an-1");
    assert_eq!(first.sender_name, "Петров П. И.");
    assert_eq!(first.classes, [(a5, "5А".to_string())]);
    assert_eq!(first.status, AnnouncementStatus::Delivered);
    let held = store
        .insert_announcement(
            &new("an-2", AnnouncementStatus::Held, vec![b5, a5], 20_000),
            audit("announcement.hold"),
        )
        .await
        .expect("insert held");
    assert_eq!(held.classes.len(), 2);
    assert!(matches!(
        store
            .insert_announcement(
                &new("an-1", AnnouncementStatus::Delivered, vec![a5], 30_000),
                audit("announcement.send")
            )
            .await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.count_announcements_since(teacher, 10_000).await.expect("count"), 2);
    assert_eq!(store.count_announcements_since(teacher, 10_001).await.expect("count"), 1);
    assert_eq!(store.count_announcements_since(admin, 0).await.expect("count"), 0);
    let uids = |v: Vec<AnnouncementRow>| v.into_iter().map(|a| a.uid).collect::<Vec<_>>();
    assert_eq!(uids(store.list_class_announcements(a5, 10).await.expect("class")), ["an-1"]);
    assert!(store.list_class_announcements(b5, 10).await.expect("class").is_empty());
    assert_eq!(
        uids(store.list_school_announcements(school, 10).await.expect("school")),
        ["an-2", "an-1"]
    );
    assert_eq!(uids(store.list_sender_announcements(teacher, 1).await.expect("own")), ["an-2"]);
    store
        .review_announcement(
            held.id,
            &[AnnouncementStatus::Held],
            AnnouncementStatus::Delivered,
            admin,
            40_000,
            audit("announcement.release"),
        )
        .await
        .expect("release");
    assert_eq!(uids(store.list_class_announcements(b5, 10).await.expect("class")), ["an-2"]);
    // Every listed announcement carries its own classes (ordered), and the limit counts
    // announcements, not their rows per class.
    let classes = |v: Vec<AnnouncementRow>| {
        v.into_iter()
            .map(|a| (a.uid, a.classes.into_iter().map(|(_, n)| n).collect::<Vec<_>>()))
            .collect::<Vec<_>>()
    };
    let both = vec![
        ("an-2".to_string(), vec!["5А".to_string(), "5Б".to_string()]),
        ("an-1".to_string(), vec!["5А".to_string()]),
    ];
    assert_eq!(classes(store.list_class_announcements(a5, 10).await.expect("a5")), both);
    assert_eq!(classes(store.list_school_announcements(school, 10).await.expect("s")), both);
    assert_eq!(classes(store.list_class_announcements(a5, 1).await.expect("one")), both[..1]);
    let released = store.get_announcement("an-2").await.expect("get");
    assert_eq!(released.classes, [(a5, "5А".to_string()), (b5, "5Б".to_string())]);
    assert_eq!((released.reviewed_by, released.reviewed_at), (Some(admin), Some(40_000)));
    assert!(matches!(
        store
            .review_announcement(
                held.id,
                &[AnnouncementStatus::Held],
                AnnouncementStatus::Delivered,
                admin,
                41_000,
                audit("announcement.release"),
            )
            .await,
        Err(StoreError::Conflict { .. })
    ));
    store
        .review_announcement(
            first.id,
            &[AnnouncementStatus::Delivered, AnnouncementStatus::Held],
            AnnouncementStatus::Recalled,
            admin,
            50_000,
            audit("announcement.recall"),
        )
        .await
        .expect("recall");
    assert_eq!(uids(store.list_class_announcements(a5, 10).await.expect("class")), ["an-2"]);
    assert_eq!(
        store.get_announcement("an-1").await.expect("get").status,
        AnnouncementStatus::Recalled
    );
    assert!(matches!(store.get_announcement("nope").await, Err(StoreError::NotFound(_))));
    let actions: Vec<String> = store
        .list_audit(0, 100)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event.action)
        .collect();
    assert_eq!(
        actions,
        [
            "test.seed",
            "announcement.send",
            "announcement.hold",
            "announcement.release",
            "announcement.recall"
        ],
        "every change is audited with it, a refused one not at all"
    );
}

pub async fn a_diary_student_comes_with_the_school_and_class_shown(store: Arc<dyn Store>) {
    loaded(&store).await;
    let s1 = store.find_school_by_external_id("s1").await.expect("query").expect("school");
    let school = store.get_school(s1.id).await.expect("school");
    let a5 = store.get_class(class_id(&store, "5А").await).await.expect("5А");
    let b5 = store.get_class(class_id(&store, "5Б").await).await.expect("5Б");
    // student-c also has a later enrolment in 5А that ended: the active one (5Б) is shown.
    let later = crate::batch::Batch {
        enrolments: vec![crate::batch::BEnrolment {
            external_id: "e-c-old".into(),
            student: "student-c".into(),
            class: "s1-5a".into(),
            admitted_on: d(2026, 10, 1),
            departed_on: Some(d(2026, 10, 15)),
            departure_kind: Some("transfer".into()),
            departure_reason: None,
        }],
        ..Default::default()
    };
    store.apply_batch(&later, audit("test.enrolment")).await.expect("enrolment");
    let find = |uid: &'static str| {
        let store = store.clone();
        async move { store.find_diary_student(uid).await.expect("query") }
    };

    let a = find("uid-student-a").await.expect("student-a");
    assert_eq!(a.person, store.get_person(a.person.id).await.expect("person"));
    // The whole school and class rows, as `get_school` and `get_class` read them (the
    // class's student count included).
    assert_eq!(a.placement, Some((school.clone(), a5.clone())));
    let c = find("uid-student-c").await.expect("student-c");
    assert_eq!(c.placement, Some((school.clone(), b5)));
    // A child who left is shown in the class they left.
    let b = find("uid-student-b").await.expect("student-b");
    assert_eq!(b.placement, Some((school, a5)));
    // Someone never enrolled is found without a place; an unknown id is not found.
    let parent = find("uid-parent").await.expect("parent");
    assert_eq!((parent.person.last_name.as_str(), parent.placement), ("Иванова", None));
    assert_eq!(find("uid-nobody").await, None);
}

/// The week's marks and attendance in one statement equal the separate reads by student,
/// restricted to the class's lessons: nothing of another class, another student, a deleted mark
/// or a day outside the dates.
pub async fn week_entries_are_the_students_marks_and_absences_on_the_class_lessons(
    store: Arc<dyn Store>,
) {
    loaded(&store).await;
    let a = person_id(&store, "student-a").await;
    let c = person_id(&store, "student-c").await;
    let teacher = person_id(&store, "teacher").await;
    let a5 = class_id(&store, "5А").await;
    let b5 = class_id(&store, "5Б").await;
    let math = store
        .list_class_assignments(a5)
        .await
        .expect("assignments")
        .into_iter()
        .find(|x| x.subject_name == "Математика")
        .expect("maths of 5А");
    let work_type = store
        .list_work_types(store.find_school_by_external_id("s1").await.expect("q").expect("s1").id)
        .await
        .expect("work types")[0]
        .id;
    let mark = |student, day, number, value, at| NewMark {
        external_id: None,
        lesson: LessonKey { assignment: math.id, date: d(2026, 11, day), lesson_number: number },
        student,
        value: MarkValue::Points(value),
        work_type,
        weight: 1,
        comment: None,
        author: teacher,
        at,
    };
    // Two more marks of student-a in the week (one later deleted), one of student-c, one of
    // student-a the week after.
    let kept =
        store.create_mark(&mark(a, 24, 2, 4, 2_000), audit("mark.create")).await.expect("kept");
    let gone =
        store.create_mark(&mark(a, 25, 1, 2, 2_100), audit("mark.create")).await.expect("gone");
    store
        .delete_mark(gone.id, teacher, 2_200, "ошибка", audit("mark.delete"))
        .await
        .expect("delete");
    store
        .create_mark(&mark(c, 24, 2, 5, 2_300), audit("mark.create"))
        .await
        .expect("other student");
    store.create_mark(&mark(a, 30, 1, 3, 2_400), audit("mark.create")).await.expect("next week");

    let week = (d(2026, 11, 23), d(2026, 11, 29));
    let own = week_entries(&store, a, a5, week.0, week.1).await.expect("a's week");
    let by_student = store.list_student_subject_marks(a, week.0, week.1).await.expect("marks");
    assert_eq!(own.marks, by_student, "the same marks as the read by student, in its order");
    assert_eq!(own.marks.len(), 2, "the fixture's mark and the kept one");
    assert!(
        own.marks.iter().any(|m| m.lesson_id == kept.lesson_id && m.value == MarkValue::Points(4))
    );
    assert!(own.attendance.is_empty());

    let ill = week_entries(&store, c, a5, week.0, week.1).await.expect("c's week");
    assert_eq!(
        ill.attendance,
        store.list_student_attendance(c, week.0, week.1).await.expect("att")
    );
    assert_eq!(ill.attendance.len(), 1);
    assert_eq!(ill.attendance[0].kind, AttendanceKind::Ill);
    assert_eq!(ill.marks.len(), 1, "student-c's own mark only");
    assert_eq!(ill.marks[0].student_id, c);

    let other_class = week_entries(&store, a, b5, week.0, week.1).await.expect("5Б");
    assert_eq!(other_class, WeekEntries::default(), "5Б's lessons carry none of a's marks");
    let tuesday = week_entries(&store, a, a5, d(2026, 11, 24), d(2026, 11, 24)).await;
    assert_eq!(tuesday.expect("one day").marks.len(), 1, "only the days asked for");
    let sunday = week_entries(&store, a, a5, week.1, week.1).await.expect("no lessons");
    assert_eq!(sunday, WeekEntries::default(), "a day without lessons has nothing");
}

/// A student's entries of a class's week, read as the diary reads them: the class's part
/// first, then the student's rows of its lessons.
async fn week_entries(
    store: &Arc<dyn Store>,
    student: PersonId,
    class: ClassId,
    from: NaiveDate,
    to: NaiveDate,
) -> StoreResult<WeekEntries> {
    let week = store.read_class_week(class, from, to).await?;
    store.list_student_week_entries(student, class, &week).await
}

/// The diary keeps a class's week and picks each student's lessons from it: they must be what
/// the student's own read returns, the lessons of a group only its members', and a group
/// without members leaves its lessons to no one.
pub async fn a_class_week_holds_every_students_week(store: Arc<dyn Store>) {
    use crate::batch::*;
    loaded(&store).await;
    // 5А gets a group of student-a alone, taught on Wednesday (lesson 4, held), and an empty
    // group taught on Thursday (lesson 5).
    let mut b = Batch::default();
    for (group, members, wd, n) in [("g-a", vec!["student-a"], 3, 4), ("g-none", vec![], 4, 5)] {
        b.groups.push(BGroup {
            external_id: group.into(),
            class: "s1-5a".into(),
            name: group.into(),
            members: members.into_iter().map(str::to_string).collect(),
        });
        b.assignments.push(BAssignment {
            external_id: format!("a-{group}"),
            teacher: "teacher".into(),
            class: "s1-5a".into(),
            group: Some(group.into()),
            subject: "s1-math".into(),
        });
        b.timetable.push(BSlot {
            external_id: format!("slot-{group}"),
            assignment: format!("a-{group}"),
            weekday: wd,
            lesson_number: n,
            room: None,
        });
    }
    b.lessons.push(BLesson {
        external_id: "l-group".into(),
        assignment: "a-g-a".into(),
        date: d(2026, 11, 25),
        lesson_number: 4,
        topic: Some("Группа".into()),
        homework: None,
    });
    store.apply_batch(&b, audit("test.groups")).await.expect("groups apply");
    let teacher = person_id(&store, "teacher").await;
    let group_lesson = LessonKey {
        assignment: store
            .list_class_assignments(class_id(&store, "5А").await)
            .await
            .expect("assignments")
            .into_iter()
            .find(|x| x.external_id == "a-g-a")
            .expect("the group's assignment")
            .id,
        date: d(2026, 11, 25),
        lesson_number: 4,
    };
    let file = NewAttachment {
        uid: "group-file".into(),
        file_name: "группа.pdf".into(),
        content_type: "application/pdf".into(),
        sha256: "00".into(),
        content: b"%PDF".to_vec(),
        by: teacher,
        at: 2_500,
    };
    store.add_attachment(group_lesson, &file, audit("file")).await.expect("file");

    let a = person_id(&store, "student-a").await;
    let former = person_id(&store, "student-b").await;
    let c = person_id(&store, "student-c").await;
    let a5 = class_id(&store, "5А").await;
    let (from, to) = (d(2026, 11, 23), d(2026, 11, 29));
    let week = store.read_class_week(a5, from, to).await.expect("class week");
    let mut not_theirs = Vec::new();
    for (student, name) in [(a, "student-a"), (former, "student-b"), (c, "student-c")] {
        let own = store.list_student_lessons(student, a5, from, to).await.expect("lessons");
        let groups = store.list_student_week_entries(student, a5, &week).await.expect("own");
        let picked: Vec<ScheduledLesson> = week.lessons_of(&groups.other_groups).cloned().collect();
        assert_eq!(picked, own, "{name}'s lessons");
        not_theirs.push(groups.other_groups);
    }
    let group = |ext: &str| {
        let store = store.clone();
        let ext = ext.to_string();
        async move {
            let all = store.list_class_assignments(a5).await.expect("assignments");
            all.into_iter().find(|x| x.external_id == ext).expect("assignment").id
        }
    };
    let (only_a, empty) = (group("a-g-a").await, group("a-g-none").await);
    let mut both = vec![only_a, empty];
    both.sort();
    assert_eq!(not_theirs, [vec![empty], both.clone(), both], "a is in one group only");
    let slots = |lessons: Vec<&ScheduledLesson>| {
        lessons.iter().map(|l| (l.date, l.lesson_number)).collect::<Vec<_>>()
    };
    assert_eq!(
        slots(week.lessons.iter().collect()),
        [
            (d(2026, 11, 23), 1),
            (d(2026, 11, 23), 3),
            (d(2026, 11, 24), 2),
            (d(2026, 11, 25), 4),
            (d(2026, 11, 26), 5)
        ],
        "every lesson of the class, both groups' included"
    );
    assert_eq!(
        slots(week.lessons_of(&not_theirs[0]).collect()),
        [(d(2026, 11, 23), 1), (d(2026, 11, 23), 3), (d(2026, 11, 24), 2), (d(2026, 11, 25), 4)],
        "the member has the group's lesson, and no one has the empty group's"
    );
    assert_eq!(week.lessons_of(&not_theirs[1]).count(), 3, "not a member: the whole class's");
    assert_eq!(week.files, store.list_class_attachments(a5, from, to).await.expect("files"));
    assert_eq!(week.files.iter().map(|f| f.uid.as_str()).collect::<Vec<_>>(), ["group-file"]);
    let b5 = class_id(&store, "5Б").await;
    let other = store.read_class_week(b5, from, to).await.expect("5Б");
    assert_eq!(other, ClassWeek::default(), "5Б has no lessons");
}

/// The diary's week cache trusts these stamps (migration 0011): each kind of change a week
/// shows, made through the store as the server, the CLI or an import would make it, moves the
/// stamp of the class it belongs to (and no other class's), or the region's for names and work
/// types; reads move nothing.
pub async fn every_change_a_week_shows_moves_its_stamp(store: Arc<dyn Store>) {
    loaded(&store).await;
    let stamp = |uid: &'static str| {
        let store = store.clone();
        async move { store.find_diary_student(uid).await.expect("query").expect("student").stamp }
    };
    let teacher = person_id(&store, "teacher").await;
    let a = person_id(&store, "student-a").await;
    let a5 = class_id(&store, "5А").await;
    let b5 = class_id(&store, "5Б").await;
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("s1").id;
    let assignments = store.list_class_assignments(a5).await.expect("assignments");
    let math = assignments.iter().find(|x| x.subject_name == "Математика").expect("maths");
    let work_type = store.list_work_types(school).await.expect("work types")[0].id;
    let lesson = LessonKey { assignment: math.id, date: d(2026, 11, 26), lesson_number: 5 };

    // Each step changes 5А's weeks (`true`) or every class's (`false`).
    let mut before = stamp("uid-student-a").await;
    let other_class = stamp("uid-student-c").await;
    let mut step = async |what: &str, class_only: bool| {
        let now = stamp("uid-student-a").await;
        if class_only {
            assert!(now.class > before.class, "{what}: the class's stamp stayed {before:?}");
            assert_eq!(now.region, before.region, "{what}: the region's stamp moved");
        } else {
            assert!(now.region > before.region, "{what}: the region's stamp stayed {before:?}");
        }
        before = now;
    };

    let mark = store
        .create_mark(
            &NewMark {
                external_id: None,
                lesson,
                student: a,
                value: MarkValue::Points(4),
                work_type,
                weight: 1,
                comment: None,
                author: teacher,
                at: 2_000,
            },
            audit("mark.create"),
        )
        .await
        .expect("mark");
    step("a new mark (and its lesson)", true).await;
    let change = MarkChange {
        id: mark.id,
        value: MarkValue::Points(5),
        work_type,
        weight: 1,
        comment: None,
        by: teacher,
        at: 2_100,
        reason: "пересдача".into(),
    };
    store.update_mark(&change, audit("mark.update")).await.expect("update");
    step("a corrected mark", true).await;
    store.delete_mark(mark.id, teacher, 2_200, "ошибка", audit("mark.delete")).await.expect("del");
    step("a deleted mark", true).await;
    let kind = Some(AttendanceKind::Late);
    store.set_attendance(lesson, a, kind, teacher, 2_300, audit("att")).await.expect("late");
    step("an absence", true).await;
    store
        .update_lesson(lesson, Some("Дроби".into()), Some("№ 5".into()), audit("lesson"))
        .await
        .expect("topic");
    step("a topic and homework", true).await;
    let file = NewAttachment {
        uid: "file-1".into(),
        file_name: "задание.pdf".into(),
        content_type: "application/pdf".into(),
        sha256: "00".into(),
        content: b"%PDF".to_vec(),
        by: teacher,
        at: 2_400,
    };
    store.add_attachment(lesson, &file, audit("file")).await.expect("file");
    step("a homework file", true).await;
    let slot = store.create_slot(math.id, 6, 7, Some("5"), audit("slot")).await.expect("slot");
    step("a timetable slot", true).await;
    let (sub_date, reason) = (d(2026, 11, 28), Some("болезнь"));
    store.set_substitution(slot, sub_date, teacher, reason, audit("sub")).await.expect("sub");
    step("a substitution", true).await;
    let group = store.create_group(a5, "1 группа", audit("group")).await.expect("group");
    step("a group", true).await;
    store.set_group_members(group, &[a], audit("members")).await.expect("members");
    step("a group's members", true).await;
    let subject = math.subject_id;
    store.create_assignment(teacher, a5, Some(group), subject, audit("asg")).await.expect("asg");
    step("an assignment", true).await;
    let new = |uid: &str, classes| NewAnnouncement {
        uid: uid.into(),
        school_id: school,
        sender_id: teacher,
        body: "Собрание".into(),
        status: AnnouncementStatus::Delivered,
        recipient_count: 1,
        created_at: 3_000,
        classes,
    };
    let sent = store.insert_announcement(&new("an-a", vec![a5]), audit("an")).await.expect("an");
    step("an announcement", true).await;
    let (delivered, recalled) = (AnnouncementStatus::Delivered, AnnouncementStatus::Recalled);
    store
        .review_announcement(sent.id, &[delivered], recalled, teacher, 3_100, audit("recall"))
        .await
        .expect("recall");
    step("a recalled announcement", true).await;

    store.upsert_work_type(school, "answer", "Устный ответ", 1, audit("wt")).await.expect("wt");
    step("a renamed work type", false).await;
    store.create_subject(school, "Черчение", Grading::FivePoint, audit("subj")).await.expect("s");
    step("a subject", false).await;
    store.update_class(b5, "В", None, audit("class")).await.expect("renamed 5Б");
    step("another class's new name (announcements list classes)", false).await;
    let mut renamed = fixture();
    for p in renamed.persons.iter_mut().filter(|p| p.external_id == "teacher") {
        p.last_name = "Сидоров".into();
    }
    store.apply_batch(&renamed, audit("import")).await.expect("rename by import");
    step("a teacher's new name, by an import", false).await;

    // Nothing of the above belonged to 5Б's weeks but the names and work types.
    let c_now = stamp("uid-student-c").await;
    assert_eq!(c_now.class, other_class.class, "5Б's own stamp moved");
    assert_eq!(c_now.region, before.region, "one region stamp for every class");
    // Reading moves nothing.
    store.read_class_week(a5, d(2026, 11, 23), d(2026, 11, 29)).await.expect("read");
    assert_eq!(stamp("uid-student-a").await, before);
}
