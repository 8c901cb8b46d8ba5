//! Conformance cases of [`IntegrationStore`](crate::IntegrationStore): the outbox written with
//! the change, claimed with a lease, retried, dead-lettered and replayed; chat members; the
//! delivery read models and the school's communication settings.

use std::sync::Arc;

use zhurnal_domain::{AssignmentId, PeriodId};

use super::{audit, class_id, d, loaded, person_id};
use crate::integration::*;
use crate::journal::{FinalMarkKind, FinalMarkWrite};
use crate::*;

async fn pending(store: &Arc<dyn Store>) -> Vec<OutboxEvent> {
    let mut v =
        store.list_outbox(Some(OutboxStatus::Pending), None, 1000).await.expect("list outbox");
    v.sort_by_key(|e| e.id);
    v
}

pub async fn integration_outbox_is_written_with_the_change_and_delivered_once(
    store: Arc<dyn Store>,
) {
    loaded(&store).await;
    let class = class_id(&store, "5А").await;
    let before = pending(&store).await.len();
    let student = person_id(&store, "student-c").await;
    // A refused change writes no event: student-c is still enrolled in 5Б.
    let refused = store
        .admit_student(&Admission::Existing(student), class, d(2026, 11, 23), audit("x"))
        .await;
    assert!(refused.is_err(), "double enrolment refused");
    assert_eq!(pending(&store).await.len(), before, "no event without the change");

    let enrolment = store.list_enrolments(student).await.expect("enrolments")[0].id;
    store
        .depart_student(enrolment, d(2026, 11, 23), DepartureKind::Other, "переезд", audit("d"))
        .await
        .expect("depart");
    let events = pending(&store).await;
    assert_eq!(events.len(), before + 1, "the departure wrote one event");
    let ev = events.last().expect("event").clone();
    assert_eq!(ev.topic, topics::SFERUM_CLASS);
    assert_eq!(ev.subject, format!("class:{}", class_id(&store, "5Б").await.0));
    assert!(ev.school_id.is_some());

    // Claimed with a lease: a second worker sees nothing until the lease passes.
    let claimed = store.claim_outbox(100, 1_000, 1000).await.expect("claim");
    assert!(claimed.iter().any(|e| e.id == ev.id));
    assert!(claimed.iter().all(|e| e.attempts == 1));
    assert!(store.claim_outbox(500, 1_500, 1000).await.expect("claim").is_empty());
    let again = store.claim_outbox(1_000, 2_000, 1000).await.expect("claim after lease");
    assert!(again.iter().any(|e| e.id == ev.id && e.attempts == 2), "lease expiry re-offers");

    store
        .finish_outbox(ev.id, &OutboxOutcome::Retry { at: 5_000, error: "503".into() }, 1_100)
        .await
        .expect("retry");
    assert!(store.claim_outbox(4_999, 9_000, 1000).await.expect("claim").is_empty());
    store.finish_outbox(ev.id, &OutboxOutcome::Dead("503".into()), 6_000).await.expect("dead");
    let dead = store.get_outbox(ev.id).await.expect("get");
    assert_eq!(dead.status, OutboxStatus::Dead);
    assert_eq!(dead.last_error.as_deref(), Some("503"));
    assert_eq!(store.replay_outbox(Some(ev.id), audit("outbox.replay")).await.expect("replay"), 1);
    let replayed = store.get_outbox(ev.id).await.expect("get");
    assert_eq!((replayed.status, replayed.attempts), (OutboxStatus::Pending, 0));
    assert_eq!(replayed.idempotency_key(), ev.idempotency_key(), "the key survives a replay");
    let claimed = store.claim_outbox(7_000, 8_000, 1000).await.expect("claim");
    assert!(claimed.iter().any(|e| e.id == ev.id));
    store.finish_outbox(ev.id, &OutboxOutcome::Delivered, 7_100).await.expect("delivered");
    assert_eq!(store.get_outbox(ev.id).await.expect("get").status, OutboxStatus::Delivered);
    assert_eq!(store.replay_outbox(None, audit("outbox.replay")).await.expect("replay"), 0);
    assert!(
        store.count_outbox().await.expect("count").contains(&(OutboxStatus::Delivered, 1)),
        "counts per status"
    );
}

pub async fn integration_events_follow_marks_periods_and_links(store: Arc<dyn Store>) {
    loaded(&store).await;
    let before = pending(&store).await.len();
    let student = person_id(&store, "student-a").await;
    let teacher = person_id(&store, "teacher").await;
    let assignment = store
        .list_class_assignments(class_id(&store, "5А").await)
        .await
        .expect("assignments")
        .into_iter()
        .find(|a| a.external_id == "a-math-5a")
        .expect("math")
        .id;
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("s1").id;
    let year = store.list_academic_years(school).await.expect("years")[0].id;
    let q2 = store.list_periods(year).await.expect("periods")[1].period.id;
    store
        .set_final_mark(
            &FinalMarkWrite {
                student,
                assignment,
                kind: FinalMarkKind::Period(q2),
                value: Some("5".into()),
                author: teacher,
                at: 2_000_000,
            },
            audit("final_mark.set"),
        )
        .await
        .expect("final mark");
    store.set_period_closed(q2, Some(d(2026, 12, 28)), audit("period.close")).await.expect("close");
    store.set_period_closed(q2, None, audit("period.reopen")).await.expect("reopen");
    let parent = person_id(&store, "parent").await;
    assert!(store.link_guardian(parent, student, audit("guardian.link")).await.expect("link"));
    let events = pending(&store).await;
    let new: Vec<_> =
        events[before..].iter().map(|e| (e.topic.as_str(), e.subject.clone())).collect();
    assert_eq!(
        new,
        vec![
            (topics::PORTFOLIO_MARK, format!("student:{}", student.0)),
            (topics::PORTFOLIO_PERIOD, format!("period:{}", q2.0)),
            (topics::SFERUM_CLASS, format!("class:{}", class_id(&store, "5А").await.0)),
        ],
        "a mark, a closing (not the reopening) and a link write one event each"
    );
    let mark = &events[before];
    assert_eq!(mark.payload["assignment"], serde_json::json!(assignment.0));
    assert_eq!(mark.payload["period"], serde_json::json!(q2.0));
    let marks = store.list_period_final_marks(q2).await.expect("period marks");
    assert_eq!(marks.len(), 1);
    assert_eq!((marks[0].student_id, marks[0].assignment_id), (student, assignment));
    assert!(store.list_period_final_marks(PeriodId(-1)).await.expect("none").is_empty());
    let _ = AssignmentId(0);
}

pub async fn integration_chat_members_records_and_settings(store: Arc<dyn Store>) {
    loaded(&store).await;
    let class = class_id(&store, "5А").await;
    let members = store.list_chat_members(class, d(2026, 11, 23)).await.expect("members");
    let roles: Vec<(String, String)> =
        members.iter().map(|m| (m.uid.clone(), m.role.clone())).collect();
    assert_eq!(
        roles,
        vec![
            ("uid-class-teacher".to_string(), "class_teacher".to_string()),
            ("uid-teacher".into(), "teacher".into()),
            ("uid-student-a".into(), "student".into()),
            ("uid-parent".into(), "parent".into()),
        ],
        "class teacher once (not again as a teacher), no departed student-b"
    );
    assert_eq!(members[2].name, "Иванов Алексей Иванович");
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("s1").id;
    let chat = ChatRow {
        class_id: class,
        school_id: school,
        chat_id: "chat-1".into(),
        members_required: 4,
        members_joined: 3,
        synced_at: 10,
    };
    store.upsert_chat(&chat).await.expect("chat");
    store.upsert_chat(&ChatRow { members_joined: 4, ..chat.clone() }).await.expect("chat again");
    let chats = store.list_chats(Some(school)).await.expect("chats");
    assert_eq!(chats.len(), 1);
    assert_eq!(chats[0].members_joined, 4);
    assert_eq!(store.list_chats(None).await.expect("all").len(), 1);

    let student = person_id(&store, "student-a").await;
    let rec = PortfolioRecordRow {
        record_key: "k1".into(),
        student_id: student,
        school_id: school,
        value: Some("5".into()),
        status: "delivered".into(),
        event_id: 1,
        delivered_at: 20,
    };
    store.upsert_portfolio_record(&rec).await.expect("record");
    store
        .upsert_portfolio_record(&PortfolioRecordRow { value: Some("4".into()), ..rec.clone() })
        .await
        .expect("record again");
    let recs = store.list_portfolio_records(school).await.expect("records");
    assert_eq!(recs.len(), 1);
    assert_eq!(recs[0].value.as_deref(), Some("4"));

    assert_eq!(store.get_school_communication(school).await.expect("none"), None);
    let comm = SchoolCommunication {
        services: vec![CommService {
            name: "Сферум".into(),
            purpose: "чаты классов".into(),
            url: "https://sferum.ru".into(),
        }],
        responsible: vec![ResponsiblePerson {
            name: "Орлова О.".into(),
            position: "заместитель директора".into(),
            contact: "+7 000 000-00-00".into(),
        }],
        updated_at: 30,
    };
    store
        .set_school_communication(school, &comm, audit("school.communication"))
        .await
        .expect("set");
    assert_eq!(store.get_school_communication(school).await.expect("get"), Some(comm));

    let adoption = store.list_school_adoption(d(2026, 11, 23), 0).await.expect("adoption");
    let s1 = adoption.iter().find(|a| a.school_id == school).expect("s1 row");
    assert_eq!(s1.staff, 4, "teacher, class teacher, substitute, admin");
    assert_eq!((s1.children, s1.students_14), (2, 0), "student-a and student-c are 12");
    assert_eq!(s1.parents, 1);
    assert_eq!(s1.portfolio_delivered, 1);
    assert_eq!(s1.staff_logged_in, 0, "nobody has logged in");
}
