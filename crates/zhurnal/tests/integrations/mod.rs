//! Area `integrations`: Сферум chats and the portfolio through the outbox, against the local
//! simulators; the dead letters and replay; the monitoring; the class chat page; the public
//! communication page; and a kill -9 of the real binary mid-delivery.

use std::time::{Duration, Instant};

use zhurnal_domain::{ClassId, PersonId, SchoolId};
use zhurnal_integrations::portfolio::PortfolioSim;
use zhurnal_integrations::sferum::{SferumSim, SimChat};
use zhurnal_integrations::sim::SimMode;
use zhurnal_store::NewAudit;
use zhurnal_store::integration::OutboxStatus;
use zhurnal_store::journal::{FinalMarkKind, FinalMarkWrite};

use crate::support::{Browser, Db, Env, Page, csrf, login};

async fn post(env: &Env, b: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Page {
    let token = csrf(env, b).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &token));
    b.request(reqwest::Method::POST, &env.url(path), Some(&form), &[]).await
}

fn sferum(env: &Env) -> SferumSim {
    env.sims.sferum.as_ref().expect("Сферум simulator").0.clone()
}

fn portfolio(env: &Env) -> PortfolioSim {
    env.sims.portfolio.as_ref().expect("portfolio simulator").0.clone()
}

async fn school(env: &Env, ext: &str) -> zhurnal_store::SchoolRow {
    env.app.store.find_school_by_external_id(ext).await.expect("query").expect("school")
}

async fn class_named(env: &Env, school: SchoolId, name: &str) -> Option<zhurnal_store::ClassRow> {
    let year = env.app.store.list_academic_years(school).await.expect("years")[0].id;
    env.app
        .store
        .list_classes(school, year)
        .await
        .expect("classes")
        .into_iter()
        .find(|c| c.name() == name)
}

/// Polls `check` every 50 ms for up to `secs` seconds.
async fn eventually<T>(secs: u64, what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pending(env: &Env) -> i64 {
    env.app
        .store
        .count_outbox()
        .await
        .expect("count")
        .into_iter()
        .find(|(s, _)| *s == OutboxStatus::Pending)
        .map_or(0, |(_, n)| n)
}

fn audit(env: &Env, action: &str) -> NewAudit {
    NewAudit::new(env.app.now_micros(), action, "ok").actor(0, "test")
}

#[tokio::test]
async fn a_new_grade_5_class_gets_its_chat_and_a_departure_removes_student_and_parents() {
    a_new_grade_5_class_gets_its_chat_and_a_departure_removes_student_and_parents_on(Db::Sqlite)
        .await;
}

#[tokio::test]
async fn a_new_grade_5_class_gets_its_chat_and_a_departure_removes_student_and_parents_on_postgres()
{
    a_new_grade_5_class_gets_its_chat_and_a_departure_removes_student_and_parents_on(Db::Postgres)
        .await;
}

async fn a_new_grade_5_class_gets_its_chat_and_a_departure_removes_student_and_parents_on(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let s1 = school(&env, "demo-school-1").await;
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let created = post(
        &env,
        &mut b,
        &format!("/admin/schools/{}/classes", s1.id),
        &[("grade", "5"), ("letter", "Я")],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let class = class_named(&env, s1.id, "5Я").await.expect("created");
    let sim = sferum(&env);
    let chat =
        eventually(10, "the chat of 5Я", async || sim.chat(&s1.external_id, &class.external_id))
            .await;
    assert!(chat.members.is_empty(), "a class without people has an empty chat");
    assert_eq!(chat.profile, "max", "the default profile is Сферум in MAX");

    // A student admitted with a parent already known: the student and the parent join.
    let teen = env.app.store.find_person_by_uid(&env.persona_uid("student-teen-1")).await;
    let teen = teen.expect("query").expect("teen");
    let enrolment = env.app.store.list_enrolments(teen.id).await.expect("enrolments");
    let active = enrolment.iter().find(|e| e.departed_on.is_none()).expect("active").id;
    let moved = post(
        &env,
        &mut b,
        &format!("/admin/enrolments/{active}/transfer"),
        &[("to_class", &class.id.0.to_string()), ("date", "2026-11-23")],
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let parent_uid = env.persona_uid("parent-1");
    let teen_uid = teen.uid.clone();
    let chat = eventually(10, "teen and parent in 5Я", async || {
        sim.chat(&s1.external_id, &class.external_id)
            .filter(|c| c.members.contains_key(&teen_uid) && c.members.contains_key(&parent_uid))
    })
    .await;
    assert_eq!(chat.members[&teen_uid].role, "student");
    assert_eq!(chat.members[&parent_uid].role, "parent");

    // Departure: the student and the parent leave the chat.
    let new_enrolment = env
        .app
        .store
        .list_enrolments(teen.id)
        .await
        .expect("enrolments")
        .into_iter()
        .find(|e| e.departed_on.is_none())
        .expect("in 5Я")
        .id;
    let left = post(
        &env,
        &mut b,
        &format!("/admin/enrolments/{new_enrolment}/depart"),
        &[("date", "2026-11-23"), ("kind", "other"), ("reason", "переезд")],
    )
    .await;
    assert_eq!(left.status, 200, "{}", left.body);
    let chat: SimChat = eventually(10, "teen and parent removed", async || {
        sim.chat(&s1.external_id, &class.external_id).filter(|c| c.members.is_empty())
    })
    .await;
    assert!(chat.removed.contains(&teen_uid) && chat.removed.contains(&parent_uid));
    eventually(10, "outbox drained", async || (pending(&env).await == 0).then_some(())).await;
    let snap = sim.snapshot();
    let mut keys = snap.applied_keys.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), snap.applied_keys.len(), "no key applied twice");
}

#[tokio::test]
async fn sferum_down_for_a_while_loses_nothing_and_applies_nothing_twice() {
    sferum_down_for_a_while_loses_nothing_and_applies_nothing_twice_on(Db::Sqlite).await;
}

#[tokio::test]
async fn sferum_down_for_a_while_loses_nothing_and_applies_nothing_twice_on_postgres() {
    sferum_down_for_a_while_loses_nothing_and_applies_nothing_twice_on(Db::Postgres).await;
}

async fn sferum_down_for_a_while_loses_nothing_and_applies_nothing_twice_on(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let sim = sferum(&env);
    sim.set_mode(SimMode::Down, 0);
    let queued = env.app.enqueue_missing_chats().await.expect("enqueue");
    assert!(queued >= 5, "grades 1, 5, 10 in two demo schools: {queued}");
    // Down: attempts are refused and retried; nothing is lost, nothing dead.
    eventually(20, "refusals while down", async || {
        (sim.snapshot().stats.refused >= queued * 2).then_some(())
    })
    .await;
    assert_eq!(pending(&env).await as u64, queued, "every event still pending");
    assert!(sim.snapshot().chats.is_empty());
    let dead = env.app.store.list_outbox(Some(OutboxStatus::Dead), None, 10).await.expect("dead");
    assert!(dead.is_empty(), "{dead:?}");
    let retried = env.app.store.list_outbox(Some(OutboxStatus::Pending), None, 1).await.expect("p");
    assert!(
        retried[0].attempts >= 2 && retried[0].last_error.as_deref().unwrap_or("").contains("503")
    );

    sim.set_mode(SimMode::Ok, 0);
    eventually(30, "all delivered after the service returned", async || {
        (pending(&env).await == 0).then_some(())
    })
    .await;
    let snap = sim.snapshot();
    assert_eq!(snap.chats.len() as u64, queued, "one chat per class");
    assert_eq!(snap.stats.applied, queued, "each event applied once");
    let mut keys = snap.applied_keys.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len() as u64, queued, "no key applied twice");
    let chats = env.app.store.list_chats(None).await.expect("chats");
    assert_eq!(chats.len() as u64, queued);
    assert!(chats.iter().any(|c| c.members_required > 10), "chats carry the class's people");
}

#[tokio::test]
async fn dead_letters_are_listed_for_the_admin_and_replayed_once() {
    let env = Env::start_with(Db::Sqlite, |cfg| cfg.integrations.worker.max_attempts = 2)
        .await
        .expect("sqlite");
    let sim = sferum(&env);
    sim.set_mode(SimMode::Error, 0);
    let s1 = school(&env, "demo-school-1").await;
    let class = class_named(&env, s1.id, "5А").await.expect("5А");
    env.app.store.enqueue_class_syncs(&[class.id], env.app.now_micros()).await.expect("enqueue");
    let dead = eventually(20, "dead letter", async || {
        let d = env.app.store.list_outbox(Some(OutboxStatus::Dead), None, 10).await.expect("dead");
        d.into_iter().next()
    })
    .await;
    assert_eq!(dead.attempts, 2);
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let page = b.get(&env.url(&format!("/admin/schools/{}/integrations", s1.id))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Недоставленные события") && page.body.contains("HTTP 500"));
    // Another school's admin page is refused to this admin; a teacher sees nothing.
    let s2 = school(&env, "demo-school-2").await;
    assert_eq!(
        b.get(&env.url(&format!("/admin/schools/{}/integrations", s2.id))).await.status,
        403
    );
    let mut t = Browser::new();
    login(&env, &mut t, "teacher-1").await;
    assert_eq!(
        t.get(&env.url(&format!("/admin/schools/{}/integrations", s1.id))).await.status,
        403
    );

    sim.set_mode(SimMode::Ok, 0);
    let replayed = post(
        &env,
        &mut b,
        &format!("/admin/schools/{}/integrations/replay/{}", s1.id, dead.id),
        &[],
    )
    .await;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(env.audit("outbox.replay").await.len(), 1);
    eventually(10, "replayed and delivered", async || {
        let ev = env.app.store.get_outbox(dead.id).await.expect("event");
        (ev.status == OutboxStatus::Delivered).then_some(())
    })
    .await;
    assert!(sim.chat(&s1.external_id, &class.external_id).is_some());
    assert_eq!(sim.snapshot().stats.applied, 1);
    // The CLI replays too (nothing is dead now).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_zhurnal"))
        .args(["outbox", "replay", "--data-dir"])
        .arg(env.data_dir())
        .output()
        .expect("run zhurnal");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("возвращено в очередь: 0"));
}

#[tokio::test]
async fn the_portfolio_gets_period_marks_after_closing_and_a_correction_again() {
    the_portfolio_gets_period_marks_after_closing_and_a_correction_again_on(Db::Sqlite).await;
}

#[tokio::test]
async fn the_portfolio_gets_period_marks_after_closing_and_a_correction_again_on_postgres() {
    the_portfolio_gets_period_marks_after_closing_and_a_correction_again_on(Db::Postgres).await;
}

async fn the_portfolio_gets_period_marks_after_closing_and_a_correction_again_on(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let sim = portfolio(&env);
    let teen = env.app.store.find_person_by_uid(&env.persona_uid("student-teen-1")).await;
    let teen = teen.expect("query").expect("teen");
    let s1 = school(&env, "demo-school-1").await;
    let class = class_named(&env, s1.id, "9А").await.expect("9А");
    let assignment = env.app.store.list_class_assignments(class.id).await.expect("a")[0].clone();
    let year = env.app.store.list_academic_years(s1.id).await.expect("years")[0].id;
    let period = env
        .app
        .store
        .list_periods(year)
        .await
        .expect("periods")
        .into_iter()
        .find(|p| p.period.closed_on.is_none() && p.period.scheme == class.period_scheme)
        .expect("an open period")
        .period;
    let write = |value: &str| FinalMarkWrite {
        student: teen.id,
        assignment: assignment.id,
        kind: FinalMarkKind::Period(period.id),
        value: Some(value.into()),
        author: assignment.teacher_id,
        at: env.app.now_micros(),
    };
    env.app.store.set_final_mark(&write("5"), audit(&env, "final_mark.set")).await.expect("mark");
    eventually(10, "the open-period mark skipped", async || {
        (pending(&env).await == 0).then_some(())
    })
    .await;
    assert!(sim.snapshot().records.is_empty(), "nothing is sent while the period is open");

    env.app
        .store
        .set_period_closed(period.id, Some(env.app.today()), audit(&env, "period.close"))
        .await
        .expect("close");
    let rec = eventually(10, "the period's marks in the portfolio", async || {
        sim.snapshot().records.into_iter().find(|r| r.record.record_key.starts_with(&teen.uid))
    })
    .await;
    assert_eq!(rec.record.value.as_deref(), Some("5"));
    assert_eq!(rec.record.subject, assignment.subject_name);
    assert_eq!(rec.record.period, Some(period.number));
    assert!(
        rec.record.student.esia_oid.is_some() || rec.record.student.snils.is_some(),
        "identified by ЕСИА oid or СНИЛС"
    );

    // A correction after closing is sent again under the same record key.
    env.app.store.set_final_mark(&write("4"), audit(&env, "final_mark.set")).await.expect("fix");
    let rec = eventually(10, "the corrected mark", async || {
        sim.snapshot()
            .records
            .into_iter()
            .find(|r| r.record.record_key == rec.record.record_key && r.versions == 2)
    })
    .await;
    assert_eq!(rec.record.value.as_deref(), Some("4"));

    // The school admin sees the student's status.
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let page = b.get(&env.url(&format!("/admin/schools/{}/integrations", s1.id))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let status = env.app.integration_status(&admin_actor(&env).await, s1.id).await.expect("status");
    let row = status.students.iter().find(|s| s.name == teen.short_name()).expect("teen row");
    assert_eq!(row.delivered, 1, "one record, corrected in place");
    assert!(page.body.contains(&teen.short_name()));
}

async fn admin_actor(env: &Env) -> zhurnal_domain::Actor {
    let p = env.app.store.find_person_by_uid(&env.persona_uid("school-admin-1")).await;
    env.app.actor(p.expect("q").expect("admin").id).await.expect("actor")
}

#[tokio::test]
async fn the_monitoring_counts_real_logins_links_and_chats_for_officials_only() {
    let env = Env::start().await;
    // Real logins: two staff members of the main school log in through the ESIA simulator.
    for who in ["teacher-1", "class-teacher-1"] {
        let mut b = Browser::new();
        login(&env, &mut b, who).await;
    }
    env.app.enqueue_missing_chats().await.expect("enqueue");
    eventually(30, "chats created", async || (pending(&env).await == 0).then_some(())).await;

    let mut b = Browser::new();
    login(&env, &mut b, "regional-admin-1").await;
    let page = b.get(&env.url("/monitoring")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("<svg") && page.body.contains("Чаты классов созданы"));
    let actor = {
        let p = env.app.store.find_person_by_uid(&env.persona_uid("regional-admin-1")).await;
        env.app.actor(p.expect("q").expect("p").id).await.expect("actor")
    };
    let m = env.app.monitoring(&actor).await.expect("monitoring");
    assert!(m.total.staff_logged_in >= 2, "{:?}", m.total);
    assert!(m.total.staff > m.total.staff_logged_in);
    assert!(m.total.chats_required > 0 && m.total.chats_created == m.total.chats_required);
    assert!(m.total.chat_members_required > m.total.chats_required);
    assert!(m.total.children > 0 && m.total.parents > 0);
    assert!(m.total.dormant_blocked > 0, "the demo blocks a few dormant accounts");
    let expected = format!("{} из {}", m.total.chats_created, m.total.chats_required);
    assert!(page.body.contains(&expected), "the table shows {expected}");

    let cookies = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let res = reqwest::Client::new()
        .get(env.url("/monitoring/weekly.xlsx"))
        .header("cookie", cookies)
        .send()
        .await
        .expect("xlsx");
    assert_eq!(res.status().as_u16(), 200);
    let bytes = res.bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"PK"), "an XLSX (zip) file");

    for who in ["teacher-1", "school-admin-1", "parent-1"] {
        let mut o = Browser::new();
        login(&env, &mut o, who).await;
        assert_eq!(o.get(&env.url("/monitoring")).await.status, 403, "{who}");
    }
}

#[tokio::test]
async fn a_class_teacher_without_integration_gets_instructions_and_the_class_list() {
    let env = Env::start_with(Db::Sqlite, |cfg| {
        cfg.integrations.sferum = Some(zhurnal_integrations::sferum::SferumConfig {
            base_url: "http://127.0.0.1:9".into(),
            schools: vec!["no-such-school".into()],
            ..Default::default()
        });
    })
    .await
    .expect("sqlite");
    let s1 = school(&env, "demo-school-1").await;
    let class = class_named(&env, s1.id, "9А").await.expect("9А");
    let mut b = Browser::new();
    login(&env, &mut b, "class-teacher-1").await;
    let page = b.get(&env.url(&format!("/classes/{}/chat", class.id))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("sferum.ru/?p=instructions"), "{}", page.body);
    let roster = env.app.store.list_roster(class.id, env.app.today()).await.expect("roster");
    assert!(roster.iter().all(|r| page.body.contains(&r.person.last_name)), "the class list");
    // A parent may not read it; another class's teacher neither.
    let mut p = Browser::new();
    login(&env, &mut p, "parent-1").await;
    assert_eq!(p.get(&env.url(&format!("/classes/{}/chat", class.id))).await.status, 403);
    let s2 = school(&env, "demo-school-2").await;
    let other = class_named(&env, s2.id, "5А").await.expect("5А of school 2");
    let mut t = Browser::new();
    login(&env, &mut t, "class-teacher-1").await;
    let refused = t.get(&env.url(&format!("/classes/{}/chat", ClassId(other.id.0)))).await;
    assert_eq!(refused.status, 403);
    let _ = PersonId(0);
}

#[tokio::test]
async fn the_school_publishes_its_communication_services() {
    let env = Env::start().await;
    let s1 = school(&env, "demo-school-1").await;
    let public = Browser::new().get(&env.url(&format!("/schools/{}/communication", s1.id))).await;
    assert_eq!(public.status, 200, "{}", public.body);
    assert!(public.body.contains("ещё не опубликовала"));
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let path = format!("/admin/schools/{}/communication", s1.id);
    let bad = post(
        &env,
        &mut b,
        &path,
        &[("service_name", "Сферум"), ("service_purpose", "чаты"), ("service_url", "sferum.ru")],
    )
    .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body.contains("должен начинаться с https://"));
    let ok = post(
        &env,
        &mut b,
        &path,
        &[
            ("service_name", "Сферум"),
            ("service_purpose", "чаты классов"),
            ("service_url", "https://sferum.ru"),
            ("person_name", "Орлова Ольга Петровна"),
            ("person_position", "заместитель директора"),
            ("person_contact", "+7 800 000-00-00"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(env.audit("school.communication").await.len(), 1);
    let public = Browser::new().get(&env.url(&format!("/schools/{}/communication", s1.id))).await;
    assert!(
        public.body.contains("Орлова Ольга Петровна") && public.body.contains("https://sferum.ru")
    );
    let mut t = Browser::new();
    login(&env, &mut t, "teacher-1").await;
    let refused = post(&env, &mut t, &path, &[("service_name", "WhatsApp")]).await;
    assert_eq!(refused.status, 403);
}

/// The server process is killed (SIGKILL) while a chat request is in flight; after a restart
/// every chat is delivered and none applied twice.
#[tokio::test]
async fn kill_9_mid_delivery_loses_nothing() {
    let sim = SferumSim::new();
    sim.set_mode(SimMode::Slow, 3_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim_url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(zhurnal_integrations::sferum::serve(listener, sim.clone()));
    let dir = tempfile::tempdir().expect("dir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        l.local_addr().expect("addr").port()
    };
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_zhurnal"))
            .args(["demo", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir.path())
            .env("ZHURNAL_INTEGRATIONS__SFERUM__BASE_URL", &sim_url)
            .env("ZHURNAL_INTEGRATIONS__SFERUM__TOKEN", "test-token")
            .env("ZHURNAL_INTEGRATIONS__WORKER__LEASE_SECONDS", "2")
            .env("ZHURNAL_INTEGRATIONS__WORKER__POLL_MS", "100")
            .env("ZHURNAL_INTEGRATIONS__WORKER__BATCH", "3")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn zhurnal demo")
    };
    let mut server = spawn();
    let until = Instant::now() + Duration::from_secs(300);
    while sim.snapshot().stats.requests == 0 {
        assert!(Instant::now() < until, "the demo never called Сферум");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A request is in flight (the simulator answers after 3 s): kill -9 now.
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    sim.set_mode(SimMode::Ok, 0);
    let mut server = spawn();
    let db = dir.path().join("zhurnal.db");
    let until = Instant::now() + Duration::from_secs(300);
    let (delivered, chats) = loop {
        assert!(Instant::now() < until, "not everything was delivered after the restart");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Ok(pool) =
            sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await
        else {
            continue;
        };
        let row: Result<(i64, i64), _> = sqlx::query_as(
            "SELECT COALESCE(SUM(status = 'pending'), 0), COALESCE(SUM(status = 'delivered'), 0) \
             FROM outbox_events WHERE topic = 'sferum.class'",
        )
        .fetch_one(&pool)
        .await;
        let subjects: Result<Vec<(String,)>, _> = sqlx::query_as(
            "SELECT DISTINCT subject FROM outbox_events WHERE topic = 'sferum.class' AND status = 'delivered'",
        )
        .fetch_all(&pool)
        .await;
        pool.close().await;
        if let (Ok((0, delivered)), Ok(subjects)) = (row, subjects)
            && delivered > 0
        {
            break (delivered, subjects.len());
        }
    };
    server.kill().expect("SIGKILL");
    server.wait().expect("reaped");
    let snap = sim.snapshot();
    assert_eq!(snap.chats.len(), chats, "every class needing a chat has one");
    assert_eq!(snap.stats.applied as i64, delivered, "each delivered event applied once");
    let mut keys = snap.applied_keys.clone();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), snap.applied_keys.len(), "no key applied twice");
}
