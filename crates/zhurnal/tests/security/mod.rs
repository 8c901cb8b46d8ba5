//! Security area (issue 5; security.md T-04, T-14, T-17): account lifecycle with the
//! controllable clock, audit chain tampering on both backends, detection rules, the security
//! officer's workspace and bulk re-activation.

use chrono::Duration;
use zhurnal_app::security::{ChangedBy, read_anchors};
use zhurnal_store::security::{AnchorBreak, verify_with_anchors};
use zhurnal_store::{AccountState, NewAudit, audit::ChainBreak};

use crate::support::{Browser, Db, Env, csrf, login, school_day};

/// Moves the journal's clock and the simulator's together (tokens are checked against both).
fn set_time(env: &Env, at: chrono::DateTime<chrono::Utc>) {
    env.clock.set(at);
    env.sim.set_clock(Some(at));
}

async fn person_id(env: &Env, persona: &str) -> zhurnal_domain::PersonId {
    let uid = env.persona_uid(persona);
    env.app.store.find_person_by_uid(&uid).await.expect("lookup").expect("persona exists").id
}

async fn state_of(env: &Env, persona: &str) -> AccountState {
    let id = person_id(env, persona).await;
    env.app.store.get_account_activity(id).await.expect("activity").state
}

/// Raw SQL on the test's database, as an attacker with database access would run it.
async fn raw_sql(env: &Env, statements: &[&str]) {
    match &env.database_url {
        Some(url) => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(url).await.expect("pg connect");
            for s in statements {
                sqlx::query(s).execute(&mut c).await.unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
        None => {
            use sqlx::Connection;
            let url = format!("sqlite://{}", env.data_dir().join("zhurnal.db").display());
            let mut c = sqlx::SqliteConnection::connect(&url).await.expect("sqlite connect");
            for s in statements {
                sqlx::query(s).execute(&mut c).await.unwrap_or_else(|e| panic!("{s}: {e}"));
            }
        }
    }
}

// ----- Account state (issue 3) --------------------------------------------------------

async fn blocked_account_is_refused_and_its_session_dies(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "student-teen-1").await.status, 200);
    assert_eq!(b.get(&env.url("/api/v1/me")).await.status, 200);

    // Blocking through the use case ends the sessions in the same transaction.
    let uid = env.persona_uid("student-teen-1");
    let by = ChangedBy::system("cli");
    assert!(env.app.block_account(&uid, "компрометация учётной записи", &by).await.expect("block"));
    assert!(
        !env.app.block_account(&uid, "компрометация учётной записи", &by).await.expect("again")
    );
    assert_eq!(b.get(&env.url("/api/v1/me")).await.status, 401, "session must die with the block");
    let state = env.audit("account.state").await;
    assert!(state.iter().any(|r| r.event.reason.as_deref() == Some("admin_block")));

    // A refused ESIA login: a page saying whom to contact, no session, an audit record.
    let mut again = Browser::new();
    let page = login(&env, &mut again, "student-teen-1").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("заблокирована"), "{}", page.body);
    assert!(page.body.contains("администратору вашей школы"), "{}", page.body);
    assert!(again.session().is_none(), "a refused login must not set a session");
    assert_eq!(again.get(&env.url("/api/v1/me")).await.status, 401);
    let refused = env.audit("login.refused").await;
    assert!(refused.iter().any(|r| r.event.reason.as_deref() == Some("blocked_account")));

    // The per-request check: a state set behind the application's back (no session deletion)
    // still stops a live session on its next request.
    let mut parent = Browser::new();
    assert_eq!(login(&env, &mut parent, "parent-1").await.status, 200);
    let pid = person_id(&env, "parent-1").await;
    raw_sql(&env, &[&format!("UPDATE persons SET account_state = 'blocked' WHERE id = {}", pid.0)])
        .await;
    assert_eq!(parent.get(&env.url("/api/v1/me")).await.status, 401);
    let revoked = env.audit("session.revoked").await;
    assert!(
        revoked.iter().any(
            |r| r.event.actor_id == Some(pid.0) && r.event.reason.as_deref() == Some("blocked")
        )
    );

    // Unblocking needs a reason and lets the person in again.
    assert!(env.app.unblock_account(&uid, "  ", &by).await.is_err());
    assert!(env.app.unblock_account(&uid, "проверка завершена", &by).await.expect("unblock"));
    let mut back = Browser::new();
    assert_eq!(login(&env, &mut back, "student-teen-1").await.status, 200);
    println!(
        "lifecycle ({db:?}): block → session revoked, refused login audited, per-request check, unblock; sessions of blocked accounts alive after block: 0"
    );
}

#[tokio::test]
async fn blocked_account_is_refused_and_its_session_dies_on_sqlite() {
    blocked_account_is_refused_and_its_session_dies(Db::Sqlite).await;
}

#[tokio::test]
async fn blocked_account_is_refused_and_its_session_dies_on_postgres() {
    blocked_account_is_refused_and_its_session_dies(Db::Postgres).await;
}

// ----- Dormancy with the clock (issue 5 item 1) ------------------------------------------

#[tokio::test]
async fn dormancy_notice_block_and_summer_reactivation() {
    let env = Env::start().await;
    let day0 = school_day();
    // Everyone logs in on day 0 (the last day before the "summer").
    for p in ["teacher-1", "student-teen-1", "parent-1", "school-admin-1"] {
        let mut b = Browser::new();
        assert_eq!(login(&env, &mut b, p).await.status, 200, "{p}");
    }
    let teacher = person_id(&env, "teacher-1").await;

    set_time(&env, day0 + Duration::days(82));
    env.app.run_dormancy().await.expect("job");
    assert!(
        env.app.recent_notices(teacher).await.expect("notices").is_empty(),
        "no notice at 82 days"
    );

    set_time(&env, day0 + Duration::days(83) + Duration::hours(1));
    let run = env.app.run_dormancy().await.expect("job");
    let notices = env.app.recent_notices(teacher).await.expect("notices");
    assert_eq!(notices.len(), 1, "notice at 83 days");
    assert!(notices[0].contains("будет заблокирована"), "{notices:?}");
    assert_eq!(run.blocked, 0);
    assert_eq!(env.app.run_dormancy().await.expect("again").notices, 0, "notices are written once");

    set_time(&env, day0 + Duration::days(89));
    let run89 = env.app.run_dormancy().await.expect("job");
    assert_eq!(state_of(&env, "teacher-1").await, AccountState::Active, "89 days → active");

    // Day 91, the job has NOT run: the login itself enforces dormancy. Staff are refused.
    set_time(&env, day0 + Duration::days(91));
    let mut t = Browser::new();
    let page = login(&env, &mut t, "teacher-1").await;
    assert_eq!(page.status, 403, "91 days → blocked at login");
    assert!(page.body.contains("долгого отсутствия") && page.body.contains("администратору"));
    assert!(t.session().is_none());
    assert_eq!(state_of(&env, "teacher-1").await, AccountState::Dormant);
    let refused = env.audit("login.refused").await;
    assert!(refused.iter().any(|r| r.event.reason.as_deref() == Some("dormant_account")));

    // A student with a confirmed ESIA account and an active enrolment is re-activated at login,
    // told so, and the school admin gets a notice.
    let mut s = Browser::new();
    let page = login(&env, &mut s, "student-teen-1").await;
    assert_eq!(page.status, 200, "student re-activated at login: {}", page.url);
    assert!(page.body.contains("разблокирована автоматически"), "banner shown to the student");
    assert_eq!(state_of(&env, "student-teen-1").await, AccountState::Active);
    let admin = person_id(&env, "school-admin-1").await;
    let admin_notices = env.app.recent_notices(admin).await.expect("admin notices");
    assert!(
        admin_notices.iter().any(|n| n.contains("разблокирована при входе")),
        "{admin_notices:?}"
    );

    // The job now blocks the rest; a second run changes nothing.
    let run91 = env.app.run_dormancy().await.expect("job");
    assert!(run91.blocked > 0);
    assert_eq!(env.app.run_dormancy().await.expect("again").blocked, 0, "idempotent");
    assert_eq!(state_of(&env, "school-admin-1").await, AccountState::Dormant);

    // 1 September: the admin (unblocked by the regional operator) re-activates class 9А in bulk.
    let by = ChangedBy::system("cli");
    env.app
        .unblock_account(&env.persona_uid("school-admin-1"), "начало учебного года", &by)
        .await
        .expect("unblock admin");
    let mut a = Browser::new();
    assert_eq!(login(&env, &mut a, "school-admin-1").await.status, 200);
    let form = a.get(&env.url("/admin/reactivation")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    let class_value = form
        .body
        .split("<option value=\"")
        .skip(1)
        .find(|o| o.contains("Класс 9А"))
        .and_then(|o| o.split('"').next())
        .expect("class 9А in the form")
        .to_string();
    let token = csrf(&env, &mut a).await;
    let empty = a
        .request(
            reqwest::Method::POST,
            &env.url("/admin/reactivation"),
            Some(&[("csrf", token.as_str()), ("scope", class_value.as_str()), ("reason", "")]),
            &[],
        )
        .await;
    assert_eq!(empty.status, 422, "a reason is required");
    assert!(empty.body.contains("Укажите причину"));
    let done = a
        .request(
            reqwest::Method::POST,
            &env.url("/admin/reactivation"),
            Some(&[
                ("csrf", token.as_str()),
                ("scope", class_value.as_str()),
                ("reason", "начало учебного года"),
            ]),
            &[],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Разблокировано учётных записей"), "{}", done.body);
    let bulk = env.audit("account.bulk_reactivation").await;
    let reactivated =
        bulk.last().expect("bulk audit").event.details["reactivated"].as_i64().expect("n");
    assert!(reactivated > 10, "a whole class and its parents: {reactivated}");
    // parent-1 has a child in 9А: re-activated in bulk.
    assert_eq!(state_of(&env, "parent-1").await, AccountState::Active);
    // Staff stay blocked until an administrator acts on them individually.
    assert_eq!(state_of(&env, "teacher-1").await, AccountState::Dormant);
    println!(
        "dormancy: notice at 83 d ({} notices), 89 d blocked {}, 91 d blocked {} (job), at-login refusal for staff, at-login re-activation for a student, bulk re-activation of 9А: {reactivated} accounts",
        run.notices, run89.blocked, run91.blocked
    );
}

// ----- Audit chain tampering (T-14) ----------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Tamper {
    ChangedRow,
    DeletedRow,
    SwappedRows,
    ForgedRow,
    TruncatedTail,
    RewrittenWithoutKey,
}

async fn tamper_case(db: Db, case: Tamper) -> Option<String> {
    let env = Env::start_on(db).await?;
    let app = &env.app;
    for i in 0..6 {
        app.store
            .append_audit(NewAudit::new(app.now_micros() + i, "test.event", "ok").reason("case"))
            .await
            .expect("append");
    }
    let anchors_path = env.data_dir().join("audit-anchors.log");
    app.anchor_audit_head(&anchors_path).await.expect("anchor");
    let keys =
        zhurnal::config::Config { data_dir: env.data_dir().to_path_buf(), ..Default::default() }
            .load_keys(false)
            .expect("keys");
    let sealer = keys.sealer().expect("sealer");
    let anchors = read_anchors(&anchors_path).expect("anchors");
    let intact = verify_with_anchors(app.store.as_ref(), &sealer, &anchors).await;
    let head = intact.as_ref().expect("no false alarm on an intact chain").records as i64;
    let k = head - 3;
    let pg = env.database_url.is_some();
    let unlock: &[&str] = if pg {
        &["ALTER TABLE audit_log DISABLE TRIGGER USER"]
    } else {
        &["DROP TRIGGER audit_log_no_update", "DROP TRIGGER audit_log_no_delete"]
    };
    raw_sql(&env, unlock).await;
    let expected_seq;
    match case {
        Tamper::ChangedRow => {
            raw_sql(&env, &[&format!("UPDATE audit_log SET reason = 'other' WHERE seq = {k}")])
                .await;
            expected_seq = k;
        }
        Tamper::DeletedRow => {
            raw_sql(&env, &[&format!("DELETE FROM audit_log WHERE seq = {k}")]).await;
            expected_seq = k;
        }
        Tamper::SwappedRows => {
            // Swap the contents (and links) of k and k+1, keeping the sequence numbers.
            let tmp = 1_000_000_000i64;
            raw_sql(
                &env,
                &[
                    &format!("UPDATE audit_log SET seq = {tmp} WHERE seq = {k}"),
                    &format!("UPDATE audit_log SET seq = {k} WHERE seq = {}", k + 1),
                    &format!("UPDATE audit_log SET seq = {} WHERE seq = {tmp}", k + 1),
                ],
            )
            .await;
            expected_seq = k;
        }
        Tamper::ForgedRow => {
            let hash_fn = if pg { "sha256(prev_hash)" } else { "randomblob(32)" };
            raw_sql(
                &env,
                &[&format!(
                    "INSERT INTO audit_log (seq, at, actor_id, actor_role, action, result, details, prev_hash, hash) \
                     SELECT seq + 1, at + 1, 1, 'regional-admin', 'role.grant', 'ok', '{{}}', hash, {hash_fn} \
                     FROM audit_log WHERE seq = {head}"
                )],
            )
            .await;
            expected_seq = head + 1;
        }
        Tamper::TruncatedTail => {
            raw_sql(&env, &[&format!("DELETE FROM audit_log WHERE seq > {k}")]).await;
            expected_seq = head;
        }
        Tamper::RewrittenWithoutKey => {
            // Recompute every link with a key of the attacker's own.
            let forged = zhurnal_app::Keys::generate().sealer().expect("sealer");
            let mut prev = zhurnal_store::audit::GENESIS_HASH.to_vec();
            let mut after = 0;
            let mut updates = Vec::new();
            loop {
                let page = app.store.list_audit(after, 1000).await.expect("page");
                let Some(last) = page.last() else { break };
                after = last.seq;
                for r in &page {
                    use zhurnal_store::AuditSealer;
                    let h = forged.seal(&prev, &r.event.canonical(r.seq));
                    updates.push(format!(
                        "UPDATE audit_log SET prev_hash = {}, hash = {} WHERE seq = {}",
                        blob(&prev, pg),
                        blob(&h, pg),
                        r.seq
                    ));
                    prev = h;
                }
            }
            let refs: Vec<&str> = updates.iter().map(String::as_str).collect();
            raw_sql(&env, &refs).await;
            expected_seq = 1;
        }
    }
    let result = verify_with_anchors(app.store.as_ref(), &sealer, &anchors).await;
    let err = result.expect_err(&format!("{case:?} must be detected on {db:?}"));
    let found = match &err {
        AnchorBreak::Chain(ChainBreak::Altered(s)) => *s,
        AnchorBreak::Chain(ChainBreak::Gap { expected, .. }) => *expected,
        AnchorBreak::Truncated { seq, .. } | AnchorBreak::Rewritten { seq, .. } => *seq,
        AnchorBreak::Chain(other) => panic!("{case:?}: unexpected {other}"),
    };
    assert_eq!(found, expected_seq, "{case:?} on {db:?}: first bad seq ({err})");
    Some(format!("{case:?}: {err}"))
}

fn blob(b: &[u8], pg: bool) -> String {
    if pg { format!("'\\x{}'::bytea", hex::encode(b)) } else { format!("X'{}'", hex::encode(b)) }
}

async fn every_tamper_case_is_detected(db: Db) {
    let cases = [
        Tamper::ChangedRow,
        Tamper::DeletedRow,
        Tamper::SwappedRows,
        Tamper::ForgedRow,
        Tamper::TruncatedTail,
        Tamper::RewrittenWithoutKey,
    ];
    let mut detected = 0;
    for case in cases {
        let Some(msg) = tamper_case(db, case).await else { return };
        println!("  {msg}");
        detected += 1;
    }
    println!(
        "audit ({db:?}): {detected} of {} tamper cases detected (first bad seq exact); 0 false alarms",
        cases.len()
    );
}

#[tokio::test]
async fn every_tamper_case_is_detected_on_sqlite() {
    every_tamper_case_is_detected(Db::Sqlite).await;
}

#[tokio::test]
async fn every_tamper_case_is_detected_on_postgres() {
    every_tamper_case_is_detected(Db::Postgres).await;
}

// ----- Detection rules (T-17) ----------------------------------------------------------

async fn incidents_by_rule(env: &Env) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for i in env.app.store.list_incidents(0, i64::MAX).await.expect("incidents") {
        *m.entry(i.rule).or_insert(0) += 1;
    }
    m
}

#[tokio::test]
async fn detection_rules_fire_on_their_scenarios_and_stay_quiet_on_a_normal_day() {
    let env = Env::start().await;
    let app = &env.app;
    let now = || app.now_micros();
    // The demo comes with one ready incident (D-01 on a dormant account).
    let demo = incidents_by_rule(&env).await;
    assert_eq!(demo.get("D-01"), Some(&1), "the demo's ready incident: {demo:?}");

    // A normal day: everyone logs in (twice for the officer), a class teacher reads the diaries
    // of the class, one export, one mistyped login.
    for p in [
        "teacher-1",
        "class-teacher-1",
        "school-admin-1",
        "parent-1",
        "student-teen-1",
        "security-officer-1",
        "security-officer-1",
        "regional-admin-1",
    ] {
        let mut b = Browser::new();
        assert_eq!(login(&env, &mut b, p).await.status, 200, "{p}");
    }
    let ct = person_id(&env, "class-teacher-1").await.0;
    for s in 0..25 {
        app.store
            .append_audit(
                NewAudit::new(now(), "diary.view", "ok")
                    .actor(ct, "teacher")
                    .target("person", format!("s{s}")),
            )
            .await
            .expect("view");
    }
    app.store
        .append_audit(
            NewAudit::new(now(), "report.export", "ok")
                .actor(ct, "teacher")
                .details(serde_json::json!({"persons": 25})),
        )
        .await
        .expect("export");
    let mut anon = Browser::new();
    anon.get(&env.url("/auth/callback?state=x&code=y")).await;
    let quiet = app.run_detection().await.expect("detection");
    let normal = incidents_by_rule(&env).await;
    assert_eq!(normal, demo, "false positives on a normal day");
    println!("detection: normal day {} audit records, 0 incidents", quiet.records);

    // D-01: a blocked account tries to log in.
    env.app
        .block_account(&env.persona_uid("student-teen-1"), "проверка", &ChangedBy::system("cli"))
        .await
        .expect("block");
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "student-teen-1").await.status, 403);
    // D-02: a departed student tries to log in.
    let mut d = Browser::new();
    assert_eq!(login(&env, &mut d, "departed-1").await.status, 403);
    // D-10: one account opens 61+ different diaries within an hour.
    let teacher = person_id(&env, "teacher-1").await.0;
    for s in 0..70 {
        app.store
            .append_audit(
                NewAudit::new(now(), "diary.view", "ok")
                    .actor(teacher, "teacher")
                    .target("person", format!("p{s}")),
            )
            .await
            .expect("view");
    }
    // D-05: four exports in a day by one account.
    let admin = person_id(&env, "school-admin-1").await.0;
    for _ in 0..4 {
        app.store
            .append_audit(
                NewAudit::new(now(), "report.export", "ok")
                    .actor(admin, "school-admin")
                    .details(serde_json::json!({"persons": 30})),
            )
            .await
            .expect("export");
    }
    // D-06: 20 failed ESIA callbacks from one address.
    let mut attacker = Browser::new();
    for i in 0..20 {
        attacker.get(&env.url(&format!("/auth/callback?state=forged{i}&code=c"))).await;
    }
    // D-07: the security officer's role used from a network never seen before.
    let so = person_id(&env, "security-officer-1").await.0;
    app.store
        .append_audit(
            NewAudit::new(now(), "login.success", "ok")
                .actor(so, "person")
                .ip(Some("203.0.113.9".into())),
        )
        .await
        .expect("login from afar");
    let run = app.run_detection().await.expect("detection");
    let fired = incidents_by_rule(&env).await;
    for rule in ["D-01", "D-02", "D-05", "D-06", "D-07", "D-10"] {
        let before = demo.get(rule).copied().unwrap_or(0);
        assert_eq!(fired.get(rule), Some(&(before + 1)), "{rule} must fire once: {fired:?}");
    }
    // Re-running over nothing new changes nothing.
    assert_eq!(app.run_detection().await.expect("again").records, 0);
    let d10 = app
        .store
        .list_incidents(0, i64::MAX)
        .await
        .expect("list")
        .into_iter()
        .find(|i| i.rule == "D-10")
        .expect("D-10");
    assert!(d10.evidence.len() >= 10, "evidence is the audit seq numbers: {:?}", d10.evidence);
    // D-01 escalates: two more attempts on the blocked account the same day make it high.
    let teen_key = format!("person:{}", person_id(&env, "student-teen-1").await.0);
    let d01 = |list: Vec<zhurnal_store::security::IncidentRow>| {
        list.into_iter().find(|i| i.rule == "D-01" && i.subject_key == teen_key).expect("D-01")
    };
    let first = d01(app.store.list_incidents(0, i64::MAX).await.expect("list"));
    assert_eq!(first.severity, zhurnal_store::security::Severity::Medium);
    for _ in 0..2 {
        let mut again = Browser::new();
        assert_eq!(login(&env, &mut again, "student-teen-1").await.status, 403);
    }
    app.run_detection().await.expect("detection");
    let escalated = d01(app.store.list_incidents(0, i64::MAX).await.expect("list"));
    assert_eq!(
        (escalated.id, escalated.severity),
        (first.id, zhurnal_store::security::Severity::High)
    );
    assert_eq!(env.audit("incident.escalated").await.len(), 1);
    println!(
        "detection: {} of 6 rules fire on their scenario ({} records, {} incidents, {} joined); false positives on normal day 0",
        fired.len(),
        run.records,
        run.incidents,
        run.updated
    );
}

// ----- The security officer's workspace ------------------------------------------------

#[tokio::test]
async fn the_security_officer_works_an_incident_and_gets_the_report() {
    let env = Env::start().await;
    // An incident to work on: a blocked account tries to log in.
    env.app
        .block_account(&env.persona_uid("student-teen-1"), "проверка", &ChangedBy::system("cli"))
        .await
        .expect("block");
    let mut x = Browser::new();
    login(&env, &mut x, "student-teen-1").await;
    env.app.run_detection().await.expect("detection");
    for i in 0..60 {
        let e = NewAudit::new(env.app.now_micros(), "roster.view", "ok").target("class", i);
        env.app.store.append_audit(e).await.expect("filler");
    }

    let mut so = Browser::new();
    let home = login(&env, &mut so, "security-officer-1").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("Журнал событий безопасности"));
    assert!(home.body.contains("D-01"), "{}", home.body);
    let id = env.app.store.list_incidents(0, i64::MAX).await.expect("list")[0].id;
    let card = so.get(&env.url(&format!("/security/incidents/{id}"))).await;
    assert_eq!(card.status, 200);
    assert!(card.body.contains("записи журнала аудита #"));
    let token = csrf(&env, &mut so).await;
    let bad = so
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/security/incidents/{id}")),
            Some(&[("csrf", token.as_str()), ("status", "investigating"), ("text", "")]),
            &[],
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("Опишите принятую меру"));
    let ok = so
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/security/incidents/{id}")),
            Some(&[
                ("csrf", token.as_str()),
                ("status", "resolved"),
                ("text", "Родители уведомлены, учётная запись остаётся заблокированной"),
            ]),
            &[],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("Родители уведомлены") && ok.body.contains("закрыт"));
    assert_eq!(env.audit("incident.measure").await.len(), 1);

    // Notifications: the 24-hour deadline shows, a sending is recorded once, bad input explained.
    let card = so.get(&env.url(&format!("/security/incidents/{id}"))).await;
    assert!(card.body.contains("Роскомнадзор: уведомление (24 ч)"));
    assert!(card.body.contains("не отмечено, осталось"), "{}", card.body);
    let future = post_notice(&env, &mut so, &token, id, "rkn_24h", "2027-01-01T10:00", "").await;
    assert_eq!(future.status, 422);
    assert!(future.body.contains("в будущем"), "{}", future.body);
    let garbled = post_notice(&env, &mut so, &token, id, "rkn_24h", "вчера", "").await;
    assert_eq!(garbled.status, 422);
    assert!(garbled.body.contains("не дата и время"));
    let sent_local = (env.clock_now() + Duration::hours(3)).format("%Y-%m-%dT%H:%M").to_string();
    let ok = post_notice(&env, &mut so, &token, id, "rkn_24h", &sent_local, "РКН-77-0042").await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("№ РКН-77-0042"), "{}", ok.body);
    let twice = post_notice(&env, &mut so, &token, id, "rkn_24h", &sent_local, "РКН-77-0043").await;
    assert_eq!(twice.status, 422, "the 24-hour notice is not an option any more");
    assert_eq!(env.audit("incident.notice").await.len(), 1);

    // Audit search, paged.
    let page1 = so.get(&env.url("/security/audit?action=login")).await;
    assert_eq!(page1.status, 200);
    assert!(page1.body.contains("login.refused"));
    let all = so.get(&env.url("/security/audit")).await;
    assert!(all.body.contains("Более ранние записи"), "paged");
    let bad_actor = so.get(&env.url("/security/audit?actor=%3Cscript%3E")).await;
    assert_eq!(bad_actor.status, 422, "{}", bad_actor.body);
    assert!(!bad_actor.body.contains("<script>"));

    // The ministry report on screen and as CSV, with the chain head.
    let report = so.get(&env.url("/security/report?from=2026-11-01&to=2026-11-30")).await;
    assert_eq!(report.status, 200);
    assert!(report.body.contains("Голова цепочки журнала аудита"));
    assert!(report.body.contains("Родители уведомлены"));
    assert!(report.body.contains("Роскомнадзор: уведомление (24 ч)"), "the report lists it");
    let csv = so.get(&env.url("/security/report.csv?from=2026-11-01&to=2026-11-30")).await;
    assert_eq!(csv.status, 200);
    assert!(csv.body.contains("\"Инциденты\""));
    for (ext, magic, mime) in [
        ("pdf", &b"%PDF"[..], "application/pdf"),
        ("xlsx", &b"PK"[..], "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ] {
        let res = reqwest::Client::new()
            .get(env.url(&format!("/security/report.{ext}?from=2026-11-01&to=2026-11-30")))
            .header(
                "cookie",
                so.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "),
            )
            .send()
            .await
            .expect("download");
        assert_eq!(res.status().as_u16(), 200, "{ext}");
        assert_eq!(res.headers()["content-type"].to_str().expect("mime"), mime);
        let bytes = res.bytes().await.expect("bytes");
        assert!(bytes.starts_with(magic) && bytes.len() > 1000, "{ext}: {} bytes", bytes.len());
        if ext == "xlsx" {
            // The measure taken is in the spreadsheet's shared strings.
            let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("zip");
            let mut strings = String::new();
            std::io::Read::read_to_string(
                &mut zip.by_name("xl/sharedStrings.xml").expect("shared strings"),
                &mut strings,
            )
            .expect("xml");
            assert!(strings.contains("Родители уведомлены"), "{strings}");
            assert!(strings.contains("Голова цепочки журнала аудита"));
        }
    }
    assert_eq!(env.audit("report.security").await.len(), 4, "html, csv, pdf, xlsx");
    let bad_date = so.get(&env.url("/security/report?from=вчера")).await;
    assert_eq!(bad_date.status, 422);
    assert!(bad_date.body.contains("не дата"));

    // Others are not let in.
    for p in ["teacher-1", "school-admin-1", "parent-1"] {
        let mut b = Browser::new();
        login(&env, &mut b, p).await;
        for path in [
            "/security",
            "/security/audit",
            "/security/report",
            &format!("/security/incidents/{id}"),
        ] {
            assert_eq!(b.get(&env.url(path)).await.status, 403, "{p} {path}");
        }
    }
    let mut teacher = Browser::new();
    login(&env, &mut teacher, "teacher-1").await;
    assert_eq!(teacher.get(&env.url("/admin/reactivation")).await.status, 403);
    println!(
        "security workspace: incident worked (new → resolved, audited), audit search paged, report html+csv"
    );
}

// ----- Rate limits (T-11, small) --------------------------------------------------------

#[tokio::test]
async fn rate_limits_per_account_and_per_address_ignore_spoofed_forwarding() {
    let env = Env::start().await;
    let per_account = env.app.security.requests_per_minute_per_account as usize;
    let per_address = env.app.security.requests_per_minute_per_address as usize;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "student-teen-1").await.status, 200);
    // A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    let mut allowed = 0;
    let mut limited = None;
    let started = std::time::Instant::now();
    // The quota refills while the loop runs (GCRA): allowed ≤ burst + rate × elapsed.
    for i in 0..per_account * 3 {
        let xff = format!("10.{}.{}.1", i / 250, i % 250);
        let p = b
            .request(
                reqwest::Method::GET,
                &env.url("/api/v1/me"),
                None,
                &[("x-forwarded-for", &xff)],
            )
            .await;
        if p.status == 200 {
            allowed += 1;
        } else {
            limited = Some(p);
            break;
        }
    }
    let limited = limited.expect("the account quota must bite");
    assert_eq!(limited.status, 429);
    // Right after a refusal the next request is refused too, unless a token had time to
    // refill (a slow machine): that is the quota working, not a bypass.
    let refused_at = std::time::Instant::now();
    let again = b.get(&env.url("/api/v1/me")).await.status;
    if refused_at.elapsed().as_secs_f64() < 60.0 / per_account as f64 {
        assert_eq!(again, 429);
    }
    assert!(limited.body.contains("Слишком много запросов"), "{}", limited.body);
    // The refusal is audited once per account and minute, not once per refused request.
    let teen = person_id(&env, "student-teen-1").await;
    let hits = env.audit("rate_limit.hit").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].event.target_type.as_deref(), Some("person"));
    assert_eq!(hits[0].event.target_id, Some(teen.0.to_string()));
    assert_eq!(hits[0].event.result, "refused");
    assert_eq!(env.audit("rate_limit.hit").await.len(), 1, "one record per key and minute");
    let refill = (started.elapsed().as_secs_f64() * per_account as f64 / 60.0).ceil() as usize;
    assert!(allowed <= per_account + refill, "allowed {allowed} > quota {per_account} + {refill}");
    assert!(allowed >= per_account - 5, "the quota admits its burst: {allowed}");
    // Another account behind the same address (a school's NAT) is not affected.
    let mut other = Browser::new();
    assert_eq!(login(&env, &mut other, "parent-1").await.status, 200);
    assert_eq!(other.get(&env.url("/api/v1/me")).await.status, 200);

    // The address quota: generous, but it holds, also with spoofed headers.
    let client = reqwest::Client::new();
    let mut anon_allowed = 0;
    let mut retry_after = None;
    let started = std::time::Instant::now();
    for i in 0..per_address * 3 {
        let res = client
            .get(env.url("/"))
            .header("x-forwarded-for", format!("192.0.2.{}", i % 250))
            .send()
            .await
            .expect("request");
        if res.status() == 429 {
            retry_after =
                res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
            break;
        }
        anon_allowed += 1;
    }
    let retry_after: u64 =
        retry_after.expect("the address quota must bite").parse().expect("seconds");
    let hits = env.audit("rate_limit.hit").await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[1].event.target_type.as_deref(), Some("address"));
    assert!(retry_after >= 1);
    let refill = (started.elapsed().as_secs_f64() * per_address as f64 / 60.0).ceil() as usize;
    assert!(
        anon_allowed <= per_address + refill,
        "address: {anon_allowed} > {per_address} + {refill}"
    );
    println!(
        "rate limit: account quota {per_account}/min admitted {allowed} then 429; address quota {per_address}/min admitted {anon_allowed} (+{} by the logins) then 429, Retry-After {retry_after} s; XFF spoof bypass 0; NAT neighbour admitted",
        per_address.saturating_sub(anon_allowed)
    );
}

// ----- Transfer between schools (issue 5, item 2) ------------------------------------------

#[tokio::test]
async fn a_student_who_moves_to_another_school_leaves_the_first_one_behind() {
    use zhurnal_app::admin::{AdmissionForm, Caller};
    let env = Env::start().await;
    let store = &env.app.store;
    let teen_uid = env.persona_uid("student-teen-1");
    let teen = store.find_person_by_uid(&teen_uid).await.expect("q").expect("teen");
    let diary = env.url(&format!("/diary/{teen_uid}"));
    let mut class_teacher = Browser::new();
    login(&env, &mut class_teacher, "class-teacher-1").await;
    assert_eq!(class_teacher.get(&diary).await.status, 200, "9А's class teacher, before");

    // School A records the departure by transfer today.
    let old = store
        .list_enrolments(teen.id)
        .await
        .expect("enrolments")
        .into_iter()
        .find(|e| e.departed_on.is_none())
        .expect("an active enrolment");
    let mut admin_a = Browser::new();
    login(&env, &mut admin_a, "school-admin-1").await;
    let token = csrf(&env, &mut admin_a).await;
    let today = env.app.today();
    let departed = admin_a
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/admin/enrolments/{}/depart", old.id)),
            Some(&[
                ("csrf", token.as_str()),
                ("date", &today.to_string()),
                ("kind", "transfer"),
                ("reason", "переезд в другой район"),
            ]),
            &[],
        )
        .await;
    assert_eq!(departed.status, 200, "{}", departed.body);

    // School B admits the same child by СНИЛС: the same person gets a new enrolment.
    let s2 = store.find_school_by_external_id("demo-school-2").await.expect("q").expect("school 2");
    let year = env.app.current_year(s2.id).await.expect("q").expect("year");
    let class_b = store.list_classes(s2.id, year.id).await.expect("classes")[0].clone();
    let admin_b = store.list_school_admins(s2.id).await.expect("admins")[0];
    let caller = Caller {
        actor: env.app.actor(admin_b).await.expect("actor"),
        role: "school-admin".into(),
        ctx: Default::default(),
    };
    let persona = env.data.personas.iter().find(|p| p.id == "student-teen-1").expect("persona");
    let form = AdmissionForm {
        last_name: teen.last_name.clone(),
        first_name: teen.first_name.clone(),
        middle_name: String::new(),
        birth_date: teen.birth_date,
        gender: String::new(),
        snils: persona.snils.as_ref().expect("snils").formatted(),
        admitted_on: Some(today),
    };
    let admitted = env.app.admit_student(&caller, class_b.id, &form).await.expect("admitted");
    assert_eq!(admitted, teen.id, "matched by СНИЛС, not a second person");
    let enrolments = store.list_enrolments(teen.id).await.expect("enrolments");
    let left = enrolments.iter().find(|e| e.id == old.id).expect("old");
    assert_eq!(
        (left.departed_on, left.departure_kind),
        (Some(today), Some(zhurnal_store::DepartureKind::Transfer))
    );
    assert!(enrolments.iter().any(|e| e.class_id == class_b.id && e.departed_on.is_none()));

    // School A's staff no longer reach the child; the child and the parent carry on at B.
    let mut class_teacher = Browser::new();
    login(&env, &mut class_teacher, "class-teacher-1").await;
    assert_eq!(class_teacher.get(&diary).await.status, 403, "9А's class teacher, after");
    assert_eq!(admin_a.get(&diary).await.status, 403, "school A's admin, after");
    let mut student = Browser::new();
    let home = login(&env, &mut student, "student-teen-1").await;
    assert_eq!(home.status, 200, "a transferred student is not a departed one: {}", home.body);
    assert_eq!(student.get(&diary).await.status, 200);
    let mut parent = Browser::new();
    login(&env, &mut parent, "parent-1").await;
    let page = parent.get(&diary).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&class_b.name()), "the diary shows the new class");
    println!(
        "transfer between schools: A's staff 403 from the departure date; student and parent at B 200"
    );
}

async fn post_notice(
    env: &Env,
    so: &mut Browser,
    token: &str,
    id: i64,
    kind: &str,
    sent_at: &str,
    reference: &str,
) -> crate::support::Page {
    so.request(
        reqwest::Method::POST,
        &env.url(&format!("/security/incidents/{id}/notices")),
        Some(&[("csrf", token), ("kind", kind), ("sent_at", sent_at), ("reference", reference)]),
        &[],
    )
    .await
}

/// The CSRF guard reads form bodies before any handler: only the import upload may make it
/// buffer more than a megabyte, so a logged-in user cannot pin 64 MiB of memory per request
/// on an ordinary form.
#[tokio::test]
async fn oversized_form_bodies_are_refused_before_buffering_except_the_import_upload() {
    let env = Env::start().await;
    let mut b = Browser::new();
    login(&env, &mut b, "parent-1").await;
    let token = csrf(&env, &mut b).await;
    let cookies: Vec<String> = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let client = reqwest::Client::new();
    let two_mib = "x".repeat(2 * 1024 * 1024);

    let mut multipart =
        format!("--zb\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n");
    multipart.push_str("--zb\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n");
    multipart.push_str(&two_mib);
    multipart.push_str("\r\n--zb--\r\n");
    for (content_type, body) in [
        ("multipart/form-data; boundary=zb", multipart.clone()),
        ("application/x-www-form-urlencoded", format!("csrf={token}&note={two_mib}")),
    ] {
        let res = client
            .post(env.url("/admin/roles/grant"))
            .header("cookie", cookies.join("; "))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(res.status().as_u16(), 413, "{content_type}");
        let page = res.text().await.expect("body");
        assert!(page.contains("больше 1 МБ"), "{content_type}: {page}");
    }

    // The same body to the import upload passes the guard and reaches the importer, which
    // refuses it for what it is (not a ZIP or a workbook), not for its size.
    let res = client
        .post(env.url("/import"))
        .header("cookie", cookies.join("; "))
        .header("content-type", "multipart/form-data; boundary=zb")
        .body(multipart)
        .send()
        .await
        .expect("post");
    assert_ne!(res.status().as_u16(), 413);
}
