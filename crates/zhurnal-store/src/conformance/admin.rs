//! Conformance cases of [`AdminStore`](crate::AdminStore): school administration, roles,
//! rollover and report reads.

use std::sync::Arc;

use zhurnal_domain::{AttendanceKind, Grading, PeriodScheme, PersonId, Role, RoleScope, SubjectId};

use super::{audit, class_id, d, loaded, person_id};
use crate::*;

async fn school_and_year(
    store: &Arc<dyn Store>,
) -> (zhurnal_domain::SchoolId, zhurnal_domain::AcademicYearId) {
    let school = store.find_school_by_external_id("s1").await.expect("query").expect("school");
    let year = store.list_academic_years(school.id).await.expect("years")[0].id;
    (school.id, year)
}

async fn audit_count(store: &Arc<dyn Store>, action: &str) -> usize {
    store
        .list_audit(0, 10_000)
        .await
        .expect("audit")
        .iter()
        .filter(|r| r.event.action == action)
        .count()
}

pub async fn admin_calendar_classes_and_groups_are_written_with_audit(store: Arc<dyn Store>) {
    loaded(&store).await;
    let (school, year) = school_and_year(&store).await;
    store
        .upsert_period(
            year,
            &NewPeriod {
                scheme: PeriodScheme::Quarters,
                number: 2,
                starts_on: d(2026, 11, 6),
                ends_on: d(2026, 12, 27),
            },
            audit("period.update"),
        )
        .await
        .expect("period");
    let periods = store.list_periods(year).await.expect("periods");
    assert_eq!(periods.len(), 2, "an upsert keeps one row per number");
    assert_eq!(periods[1].period.ends_on, d(2026, 12, 27));
    assert_eq!(store.find_year_archived_at(year).await.expect("year"), None);
    assert_eq!(store.get_year(year).await.expect("year").name, "2026/2027");

    let teacher = person_id(&store, "teacher").await;
    let new = NewClass {
        school,
        year,
        external_id: "s1-6v".into(),
        grade: 6,
        letter: "В".into(),
        class_teacher: None,
        scheme: PeriodScheme::Quarters,
        newly_formed: true,
    };
    let class = store.create_class(&new, audit("class.create")).await.expect("class");
    let dup = store.create_class(&new, audit("class.create")).await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "{dup:?}");
    store.update_class(class, "Г", Some(teacher), audit("class.update")).await.expect("update");
    let c = store.get_class(class).await.expect("class");
    assert_eq!((c.name(), c.class_teacher_id), ("6Г".to_string(), Some(teacher)));

    let group =
        store.create_group(class, "Английский, 1 группа", audit("group.create")).await.expect("g");
    let a = person_id(&store, "student-a").await;
    let cst = person_id(&store, "student-c").await;
    store.set_group_members(group, &[a, cst], audit("group.members")).await.expect("members");
    store.set_group_members(group, &[cst], audit("group.members")).await.expect("members");
    let groups = store.list_groups(class).await.expect("groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].members, vec![cst]);

    let subject = store
        .create_subject(school, "Информатика", Grading::FivePoint, audit("subject.create"))
        .await
        .expect("s");
    store
        .upsert_work_type(school, "test", "Контрольная", 4, audit("work_type.update"))
        .await
        .expect("wt");
    let wt = store.list_work_types(school).await.expect("wt");
    assert_eq!(wt.iter().find(|w| w.code == "test").map(|w| w.weight), Some(4));
    let assignment = store
        .create_assignment(teacher, class, Some(group), subject, audit("assignment.create"))
        .await
        .expect("assignment");
    let list = store.list_assignments(school, year).await.expect("assignments");
    let row = list.iter().find(|x| x.id == assignment).expect("listed");
    assert_eq!((row.class_name.as_str(), row.subject_name.as_str()), ("6Г", "Информатика"));
    for action in [
        "period.update",
        "class.create",
        "class.update",
        "group.create",
        "group.members",
        "subject.create",
        "work_type.update",
        "assignment.create",
    ] {
        assert!(audit_count(&store, action).await >= 1, "{action} audited");
    }
    // The refused duplicate wrote no audit record.
    assert_eq!(audit_count(&store, "class.create").await, 1);
}

pub async fn admin_timetable_refuses_double_booking(store: Arc<dyn Store>) {
    loaded(&store).await;
    let (school, year) = school_and_year(&store).await;
    let assignments = store.list_assignments(school, year).await.expect("assignments");
    let math = assignments.iter().find(|a| a.external_id == "a-math-5a").expect("math").id;
    let pe = assignments.iter().find(|a| a.external_id == "a-pe-5a").expect("pe").id;
    // Monday lesson 1 is math in 5А: the teacher and the class are both busy.
    let busy_teacher = store.create_slot(math, 1, 1, None, audit("slot.create")).await;
    assert!(
        matches!(&busy_teacher, Err(StoreError::Conflict { constraint }) if constraint == "timetable_teacher_busy"),
        "{busy_teacher:?}"
    );
    let busy_class = store.create_slot(pe, 1, 1, None, audit("slot.create")).await;
    assert!(
        matches!(&busy_class, Err(StoreError::Conflict { constraint }) if constraint == "timetable_class_busy"),
        "{busy_class:?}"
    );
    let slot =
        store.create_slot(pe, 3, 4, Some("спортзал"), audit("slot.create")).await.expect("free");
    let slots = store.list_slots(school, year).await.expect("slots");
    let s = slots.iter().find(|s| s.id == slot).expect("listed");
    assert_eq!((s.weekday, s.lesson_number, s.room.as_deref()), (3, 4, Some("спортзал")));
    assert_eq!(slots.len(), 4);

    let substitute = person_id(&store, "substitute").await;
    store
        .set_substitution(
            slot,
            d(2026, 11, 25),
            substitute,
            Some("курсы"),
            audit("substitution.set"),
        )
        .await
        .expect("sub");
    store
        .set_substitution(
            slot,
            d(2026, 11, 25),
            substitute,
            Some("болезнь"),
            audit("substitution.set"),
        )
        .await
        .expect("sub");
    let subs =
        store.list_substitutions(school, d(2026, 11, 23), d(2026, 11, 29)).await.expect("subs");
    let mine: Vec<_> = subs.iter().filter(|x| x.slot_id == slot).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].reason.as_deref(), Some("болезнь"));
    assert_eq!(mine[0].substitute_name, "Кузнецов И. И.");
    store.delete_slot(slot, audit("slot.delete")).await.expect("delete");
    assert_eq!(store.list_slots(school, year).await.expect("slots").len(), 3);
    assert_eq!(audit_count(&store, "slot.create").await, 1, "refused slots are not audited");
}

pub async fn admin_students_are_admitted_transferred_and_departed(store: Arc<dyn Store>) {
    loaded(&store).await;
    let a5 = class_id(&store, "5А").await;
    let b5 = class_id(&store, "5Б").await;
    let new = NewPerson {
        uid: "uid-new".into(),
        external_id: "new-student".into(),
        last_name: "Новикова".into(),
        first_name: "Ника".into(),
        middle_name: None,
        birth_date: Some(d(2015, 1, 2)),
        gender: Some("F".into()),
        snils_hmac: Some(vec![42; 32]),
        snils_cipher: Some(vec![1, 2, 3]),
    };
    let (person, enrolment) = store
        .admit_student(&Admission::New(new.clone()), a5, d(2026, 11, 23), audit("student.admit"))
        .await
        .expect("admit");
    assert_eq!(
        store.find_person_by_snils_hmac(&[42; 32]).await.expect("q").map(|p| p.id),
        Some(person)
    );
    assert!(
        store
            .list_roster(a5, d(2026, 11, 23))
            .await
            .expect("roster")
            .iter()
            .any(|e| e.person.id == person)
    );
    // A second admission of someone already enrolled is refused and writes nothing.
    let again = store
        .admit_student(&Admission::Existing(person), b5, d(2026, 11, 24), audit("student.admit"))
        .await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    let dup = store
        .admit_student(&Admission::New(new), b5, d(2026, 11, 24), audit("student.admit"))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict { .. })), "same СНИЛС twice: {dup:?}");

    let moved = store
        .transfer_student(enrolment, b5, d(2026, 11, 25), audit("student.transfer"))
        .await
        .expect("transfer");
    assert!(
        !store
            .list_roster(a5, d(2026, 11, 25))
            .await
            .expect("r")
            .iter()
            .any(|e| e.person.id == person)
    );
    assert!(
        store
            .list_roster(b5, d(2026, 11, 25))
            .await
            .expect("r")
            .iter()
            .any(|e| e.person.id == person)
    );
    assert_eq!(store.get_enrolment(moved).await.expect("e").class_id, b5);
    let closed =
        store.transfer_student(enrolment, a5, d(2026, 11, 26), audit("student.transfer")).await;
    assert!(matches!(closed, Err(StoreError::Conflict { .. })), "a closed enrolment: {closed:?}");

    store
        .depart_student(
            moved,
            d(2026, 12, 1),
            DepartureKind::Transfer,
            "переезд в другой город",
            audit("student.depart"),
        )
        .await
        .expect("depart");
    let e = store.get_enrolment(moved).await.expect("e");
    assert_eq!(
        (e.departed_on, e.departure_kind),
        (Some(d(2026, 12, 1)), Some(DepartureKind::Transfer))
    );
    assert_eq!(e.departure_reason.as_deref(), Some("переезд в другой город"));
    assert_eq!(audit_count(&store, "student.admit").await, 1);
    assert_eq!(audit_count(&store, "student.transfer").await, 1);
    assert_eq!(audit_count(&store, "student.depart").await, 1);
}

pub async fn admin_roles_are_listed_and_revoked(store: Arc<dyn Store>) {
    loaded(&store).await;
    let (school, _) = school_and_year(&store).await;
    let staff = store.list_school_staff(school).await.expect("staff");
    assert_eq!(staff.len(), 4, "three teachers and the admin");
    let region = store.find_region_by_external_id("r1").await.expect("q").expect("region").id;
    let all = store.list_region_staff(region).await.expect("region staff");
    assert_eq!(all.len(), 6);
    let teachers = store.list_people_with_role(school, Role::Teacher).await.expect("teachers");
    assert_eq!(teachers.len(), 3);
    let person = NewPerson {
        uid: "uid-hired".into(),
        external_id: "hired".into(),
        last_name: "Новый".into(),
        first_name: "Учитель".into(),
        middle_name: None,
        birth_date: None,
        gender: None,
        snils_hmac: Some(vec![77; 32]),
        snils_cipher: None,
    };
    let hired = store.create_person(&person, audit("person.create")).await.expect("person");
    let grant = store
        .grant_role(hired, Role::Teacher, RoleScope::School(school), None, audit("role.grant"))
        .await
        .expect("grant");
    assert_eq!(store.get_role_grant(grant).await.expect("grant").person_id, hired);
    store.revoke_role(grant, audit("role.revoke")).await.expect("revoke");
    assert!(matches!(store.get_role_grant(grant).await, Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.revoke_role(grant, audit("role.revoke")).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.list_role_grants(hired).await.expect("grants").is_empty());
    assert_eq!(audit_count(&store, "role.revoke").await, 1);
}

pub async fn admin_rollover_promotes_graduates_and_archives_in_one_go(store: Arc<dyn Store>) {
    loaded(&store).await;
    let (school, year) = school_and_year(&store).await;
    let a5 = class_id(&store, "5А").await;
    let b5 = class_id(&store, "5Б").await;
    let student_a = person_id(&store, "student-a").await;
    let student_c = person_id(&store, "student-c").await;
    let ea = store.list_enrolments(student_a).await.expect("e")[0].id;
    let ec = store.list_enrolments(student_c).await.expect("e")[0].id;
    let class = |grade: u8, letter: &str| NewClass {
        school,
        year,
        external_id: format!("s1-y2027-{grade}{letter}"),
        grade,
        letter: letter.into(),
        class_teacher: None,
        scheme: PeriodScheme::Quarters,
        newly_formed: false,
    };
    let write = RolloverWrite {
        old_year: year,
        new_year: NewYear {
            school,
            external_id: "s1-y2027".into(),
            name: "2027/2028".into(),
            starts_on: d(2027, 9, 1),
            ends_on: d(2028, 8, 31),
            periods: vec![NewPeriod {
                scheme: PeriodScheme::Quarters,
                number: 1,
                starts_on: d(2027, 9, 1),
                ends_on: d(2027, 10, 24),
            }],
        },
        classes: vec![(a5, class(6, "А"))],
        moves: vec![(ea, a5)],
        departures: vec![(ec, DepartureKind::Other, "выбыл после 9 класса".into())],
        leave_on: d(2027, 8, 31),
    };
    let english = store
        .create_subject(school, "Английский язык", Grading::FivePoint, audit("subject.create"))
        .await
        .expect("subject");
    let half = store.create_group(a5, "1 подгруппа", audit("group.create")).await.expect("group");
    let group_teacher = person_id(&store, "substitute").await;
    store
        .create_assignment(group_teacher, a5, Some(half), english, audit("assignment.create"))
        .await
        .expect("group assignment");
    let group_load = (group_teacher, english);
    let new_year = store.apply_rollover(&write, audit("rollover.apply")).await.expect("rollover");
    assert!(store.find_year_archived_at(year).await.expect("y").is_some());
    assert_eq!(store.list_periods(new_year).await.expect("p").len(), 1);
    let new_classes = store.list_classes(school, new_year).await.expect("classes");
    assert_eq!(new_classes.iter().map(|c| c.name()).collect::<Vec<_>>(), ["6А"]);
    // The class's teaching load follows it into the new year; the group's does not.
    let load = |year, class| {
        let store = store.clone();
        async move {
            let mut v: Vec<(PersonId, SubjectId)> = store
                .list_assignments(school, year)
                .await
                .expect("assignments")
                .iter()
                .filter(|a| a.class_id == class)
                .map(|a| (a.teacher_id, a.subject_id))
                .collect();
            v.sort();
            v
        }
    };
    let mut before = load(year, a5).await;
    before.retain(|a| *a != group_load);
    assert_eq!(before.len(), 2, "the fixture gives 5А mathematics and PE");
    assert_eq!(load(new_year, new_classes[0].id).await, before);
    let roster = store.list_roster(new_classes[0].id, d(2027, 9, 1)).await.expect("roster");
    assert_eq!(roster.iter().map(|e| e.person.id).collect::<Vec<_>>(), [student_a]);
    assert!(
        store
            .list_roster(a5, d(2027, 8, 31))
            .await
            .expect("r")
            .iter()
            .any(|e| e.person.id == student_a)
    );
    let c = store.list_enrolments(student_c).await.expect("e");
    assert_eq!(c[0].departed_on, Some(d(2027, 8, 31)));
    let _ = b5;
    // A second rollover of an archived year is refused and changes nothing.
    let again = store.apply_rollover(&write, audit("rollover.apply")).await;
    assert!(matches!(again, Err(StoreError::Conflict { .. })), "{again:?}");
    assert_eq!(store.list_academic_years(school).await.expect("years").len(), 2);
    assert_eq!(audit_count(&store, "rollover.apply").await, 1);
}

pub async fn admin_report_reads_cover_marks_attendance_and_lessons(store: Arc<dyn Store>) {
    loaded(&store).await;
    let (school, year) = school_and_year(&store).await;
    let a5 = class_id(&store, "5А").await;
    let from = d(2026, 9, 1);
    let to = d(2026, 12, 31);
    let marks = store.list_report_marks(school, from, to).await.expect("marks");
    assert_eq!(marks.len(), 1);
    assert_eq!((marks[0].class_id, marks[0].weight, marks[0].date), (a5, 3, d(2026, 11, 23)));
    assert_eq!(marks[0].student_id, person_id(&store, "student-a").await);
    assert!(
        store
            .list_report_marks(school, d(2026, 9, 1), d(2026, 11, 22))
            .await
            .expect("m")
            .is_empty()
    );
    let att = store.list_report_attendance(school, from, to).await.expect("attendance");
    assert_eq!(att.len(), 1);
    assert_eq!(att[0].kind, AttendanceKind::Ill);
    let lessons = store.list_report_lessons(school, from, to).await.expect("lessons");
    assert_eq!(lessons.len(), 1);
    assert_eq!(lessons[0].topic.as_deref(), Some("Дроби"));
    assert_eq!(lessons[0].teacher_id, person_id(&store, "teacher").await);
    assert!(store.list_report_final_marks(school, year).await.expect("final").is_empty());
    let other = store.find_school_by_external_id("s2").await.expect("q").expect("s2").id;
    assert!(store.list_report_lessons(other, from, to).await.expect("l").is_empty());
    let _: Option<PersonId> = None;
}
