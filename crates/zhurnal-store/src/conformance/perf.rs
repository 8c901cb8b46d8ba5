//! Cases for [`crate::PerfStore`] and the one-statement `load_relations` (area `bench`).

use std::sync::Arc;

use zhurnal_domain::{Role, RoleScope};

use super::{TestSealer, audit, class_id, d, loaded, person_id};
use crate::audit::verify_chain;
use crate::*;

fn event(i: i64) -> NewAudit {
    NewAudit::new(2_000_000 + i, "diary.view", "ok")
        .actor(i, "parent")
        .target("student", format!("uid-{i}"))
        .school(1)
        .session(Some(format!("s{i}")))
        .ip(Some("127.0.0.1".into()))
        .details(serde_json::json!({ "week": "2026-11-23", "i": i }))
}

/// A batch continues the chain of single appends and is continued by them: seqs are
/// consecutive, every link verifies, the records read back as written.
pub async fn perf_audit_batches_continue_the_chain(store: Arc<dyn Store>) {
    assert_eq!(store.append_audit_batch(&[]).await.expect("empty batch"), Vec::<i64>::new());
    assert_eq!(store.append_audit(event(0)).await.expect("single"), 1);
    let batch: Vec<NewAudit> = (1..=7).map(event).collect();
    assert_eq!(store.append_audit_batch(&batch).await.expect("batch"), (2..=8).collect::<Vec<_>>());
    assert_eq!(store.append_audit(event(8)).await.expect("single after"), 9);
    assert_eq!(store.append_audit_batch(&[event(9)]).await.expect("batch of one"), vec![10]);
    let check = verify_chain(store.as_ref(), &TestSealer).await.expect("the chain verifies");
    assert_eq!(check.records, 10);
    let records = store.list_audit(0, 100).await.expect("list");
    let seqs: Vec<i64> = records.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.event, event(i as i64), "record {} reads back as written", r.seq);
    }
}

/// Batches and single appends racing each other still make one chain without gaps or forks.
pub async fn perf_concurrent_audit_batches_make_one_chain(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for t in 0..6i64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for round in 0..5i64 {
                let base = t * 1000 + round * 10;
                if t % 2 == 0 {
                    let batch: Vec<NewAudit> = (0..4).map(|i| event(base + i)).collect();
                    let got = store.append_audit_batch(&batch).await.expect("batch");
                    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "consecutive: {got:?}");
                    seqs.extend(got);
                } else {
                    seqs.push(store.append_audit(event(base)).await.expect("single"));
                }
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort_unstable();
    let expected: Vec<i64> = (1..=all.len() as i64).collect();
    assert_eq!(all, expected, "every seq handed out once, no gaps");
    let check = verify_chain(store.as_ref(), &TestSealer).await.expect("the chain verifies");
    assert_eq!(check.records, all.len() as u64);
}

/// The session comes with its person; an unknown hash finds nothing.
pub async fn perf_a_session_is_found_with_its_person(store: Arc<dyn Store>) {
    loaded(&store).await;
    let p = person_id(&store, "parent").await;
    let s = SessionRow {
        id_hash: "h-perf".into(),
        person_id: p,
        created_at: 5_000,
        last_seen_at: 6_000,
        csrf_token: "csrf".into(),
        source_ip: Some("10.0.0.1".into()),
        active_role: Some("parent".into()),
    };
    store.create_session(&s, audit("login.success")).await.expect("create");
    let today = d(2026, 11, 23);
    let found =
        store.find_session_with_person("h-perf", 0, today).await.expect("query").expect("found");
    assert_eq!(found.session, s);
    assert_eq!(found.person, store.get_person(p).await.expect("person"));
    assert!(!found.has_notices, "no notice yet");
    assert!(store.find_session_with_person("nope", 0, today).await.expect("query").is_none());

    // A notice counts from its creation time on, and only for its own person.
    let other = person_id(&store, "teacher").await;
    assert!(
        store
            .insert_notice(other, "reactivated", "k-other", "другому", 7_000)
            .await
            .expect("notice")
    );
    assert!(store.insert_notice(p, "reactivated", "k-own", "вам", 7_000).await.expect("notice"));
    let has = |since| {
        let store = store.clone();
        async move {
            store
                .find_session_with_person("h-perf", since, d(2026, 11, 23))
                .await
                .expect("query")
                .expect("found")
                .has_notices
        }
    };
    assert!(has(7_000).await, "a notice created at the moment asked for counts");
    assert!(!has(7_001).await, "an older notice does not");
    assert_eq!(store.list_notices(p, 7_000).await.expect("notices").len(), 1);
}

/// The relations that come with a session are the person's relations as `load_relations`
/// reads them, for every kind of person (several relation rows share one session), and a
/// person with none still has their session.
pub async fn perf_a_session_comes_with_the_relations_of_its_person(store: Arc<dyn Store>) {
    loaded(&store).await;
    let today = d(2026, 11, 23);
    let officer = person_id(&store, "officer").await;
    for grant in store.list_role_grants(officer).await.expect("grants") {
        store.revoke_role(grant.id, audit("role.revoke")).await.expect("revoke");
    }
    let mut kinds = [false; 6];
    for who in ["teacher", "class-teacher", "parent", "student-a", "admin", "regional", "officer"] {
        let p = person_id(&store, who).await;
        let hash = format!("h-{who}");
        let s = SessionRow {
            id_hash: hash.clone(),
            person_id: p,
            created_at: 5_000,
            last_seen_at: 6_000,
            csrf_token: "csrf".into(),
            source_ip: None,
            active_role: None,
        };
        store.create_session(&s, audit("login.success")).await.expect("create");
        let found =
            store.find_session_with_person(&hash, 0, today).await.expect("query").expect(who);
        assert_eq!((found.session, &found.person.uid), (s, &format!("uid-{who}")), "{who}");
        let rel = store.load_relations(p, today).await.expect("rel");
        assert_eq!(found.relations, rel, "{who}: the same relations as load_relations");
        for (i, present) in [
            !rel.grants.is_empty(),
            !rel.teaching.is_empty(),
            !rel.class_teacher_of.is_empty(),
            !rel.children.is_empty(),
            !rel.enrolled_in.is_empty(),
            rel == ActorRelations::default(),
        ]
        .into_iter()
        .enumerate()
        {
            kinds[i] |= present;
        }
    }
    assert_eq!(kinds, [true; 6], "grants, teaching, class, children, enrolment and none all seen");
}

/// Relations are read fresh on every call: a revoked role, a new class-teacher assignment
/// and a new child link show on the very next call (no cache can make them stale).
pub async fn perf_relations_follow_every_change_at_once(store: Arc<dyn Store>) {
    loaded(&store).await;
    let today = d(2026, 11, 23);
    let school = store.find_school_by_external_id("s1").await.expect("q").expect("s1");
    let p = person_id(&store, "student-c").await;
    let before = store.load_relations(p, today).await.expect("rel");
    assert!(before.grants.is_empty());
    let grant = store
        .grant_role(p, Role::SchoolAdmin, RoleScope::School(school.id), None, audit("role.grant"))
        .await
        .expect("grant");
    let granted = store.load_relations(p, today).await.expect("rel");
    assert_eq!(granted.grants, vec![(Role::SchoolAdmin, RoleScope::School(school.id))]);
    assert_eq!(granted.enrolled_in, before.enrolled_in, "other relations unchanged");
    store.revoke_role(grant, audit("role.revoke")).await.expect("revoke");
    assert!(store.load_relations(p, today).await.expect("rel").grants.is_empty());
    // A parent with two children, one departed; the order is by child id.
    let parent = person_id(&store, "parent").await;
    let rel = store.load_relations(parent, today).await.expect("rel");
    let ids: Vec<i64> = rel.children.iter().map(|c| c.child.0).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted);
    let c = person_id(&store, "student-c").await;
    store.link_guardian(parent, c, audit("guardian.link")).await.expect("link");
    let rel = store.load_relations(parent, today).await.expect("rel");
    assert!(rel.children.iter().any(|l| l.child == c && l.visible_until.is_none()));
    assert_eq!(rel.children.len(), ids.len() + 1);
    // The class teacher's class and a teacher's assignment come in the same statement.
    let ct = store.load_relations(person_id(&store, "class-teacher").await, today).await;
    assert_eq!(ct.expect("rel").class_teacher_of, vec![class_id(&store, "5А").await]);
}
