//! Area `bench`: `zhurnal generate` loads a region with the demo's proportions into an empty
//! database (SQLite and PostgreSQL), keeps the audit chain intact, refuses a non-empty one; the
//! baseline endpoint exists only on a benchmark server. (`cargo xtask ci bench-smoke` drives
//! the whole benchmark — server, simulator logins, wrk — on a small region.)

use std::path::Path;
use std::process::{Command, Output};

use sqlx::Row;

use crate::support::{Browser, Db, Env};

fn zhurnal(args: &[&str], database_url: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_zhurnal"));
    cmd.args(args).env_remove("DATABASE_URL").env("ZHURNAL_LOG", "error");
    if let Some(url) = database_url {
        cmd.env("DATABASE_URL", url);
    }
    cmd.output().expect("run zhurnal")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Generates 500 students in 2 schools into `dir` (and `url` when PostgreSQL), checks the
/// command's report, the plan for the load generator, the audit chain and the refusal of a
/// second load.
fn generate_and_check(dir: &Path, url: Option<&str>) {
    let d = dir.to_str().expect("utf-8 path");
    let out = zhurnal(&["generate", "--students", "500", "--schools", "2", "--data-dir", d], url);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("строк/с"), "a rows/s figure: {stdout}");
    let plan = std::fs::read_to_string(dir.join("bench-plan.tsv")).expect("plan");
    for kind in ["load\t", "regional\t", "parent\t", "teacher\t", "admin\t", "uids\t"] {
        assert!(plan.lines().any(|l| l.starts_with(kind)), "plan has {kind:?} lines:\n{plan}");
    }
    // The Mondays of the quarters, September to May, one week apart.
    let weeks: Vec<&str> = plan
        .lines()
        .find_map(|l| l.strip_prefix("weeks\t"))
        .expect("a weeks line")
        .split(',')
        .collect();
    assert!((33..=40).contains(&weeks.len()), "{weeks:?}");
    let mondays: Vec<chrono::NaiveDate> =
        weeks.iter().map(|w| w.parse().expect("a date")).collect();
    assert!(mondays.iter().all(|m| m.format("%a").to_string() == "Mon"), "{weeks:?}");
    assert!(mondays.windows(2).all(|p| (p[1] - p[0]).num_days() == 7), "{weeks:?}");
    let persons = std::fs::read_to_string(dir.join("esia/persons.json")).expect("persons");
    let persons: serde_json::Value = serde_json::from_str(&persons).expect("json");
    assert!(persons.as_array().expect("array").len() > 20);
    assert!(dir.join("esia/rp-key.pem").exists() && dir.join("esia/sim-cert.pem").exists());

    // The bulk load plus its one audit record leave a chain `audit verify` accepts.
    let verify = zhurnal(&["audit", "verify", "--data-dir", d], url);
    assert!(verify.status.success(), "{}", text(&verify.stderr));

    // A second load into the same database is refused, with what to do instead.
    let again = zhurnal(&["generate", "--students", "10", "--data-dir", d], url);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("не пуста"), "{}", text(&again.stderr));
}

/// The demo's proportions: ~1.7 parents and ~12 students per teacher, marks on most days.
fn check_shape(students: i64, guardians: i64, teachers: i64, marks: i64, lessons: i64) {
    assert!((450..=560).contains(&students), "about 500 students, got {students}");
    let per_student = guardians as f64 / students as f64;
    assert!((1.4..=2.0).contains(&per_student), "guardians per student {per_student}");
    let per_teacher = students as f64 / teachers as f64;
    assert!((6.0..=20.0).contains(&per_teacher), "students per teacher {per_teacher}");
    assert!(marks > students * 20, "a term of marks: {marks} for {students}");
    assert!(lessons > 1000, "a term of lessons: {lessons}");
}

const SHAPE: &str = "SELECT (SELECT count(*) FROM enrolments), (SELECT count(*) FROM guardianships), \
     (SELECT count(DISTINCT person_id) FROM staff_roles WHERE role = 'teacher'), \
     (SELECT count(*) FROM marks), (SELECT count(*) FROM lessons)";

#[tokio::test]
async fn generate_loads_a_region_into_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    generate_and_check(dir.path(), None);
    let url = format!("sqlite://{}?mode=ro", dir.path().join("zhurnal.db").display());
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.expect("db");
    let r = sqlx::query(SHAPE).fetch_one(&mut conn).await.expect("shape");
    check_shape(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
}

#[tokio::test]
async fn generate_loads_a_region_into_postgres() {
    let admin = match std::env::var("ZHURNAL_TEST_POSTGRES_URL") {
        Ok(u) => u,
        Err(_) if std::env::var("ZHURNAL_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("ZHURNAL_REQUIRE_POSTGRES=1 but ZHURNAL_TEST_POSTGRES_URL is not set")
        }
        Err(_) => return,
    };
    let url = zhurnal_store_postgres::create_test_database(&admin).await.expect("database");
    let dir = tempfile::tempdir().expect("dir");
    let u = url.clone();
    let d = dir.path().to_path_buf();
    tokio::task::spawn_blocking(move || generate_and_check(&d, Some(&u))).await.expect("run");
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&url).await.expect("db");
    let r = sqlx::query(SHAPE).fetch_one(&mut conn).await.expect("shape");
    check_shape(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
    // Sequences continue after the loaded ids: the next ordinary insert does not collide.
    let next: i64 = sqlx::query_scalar("SELECT nextval(pg_get_serial_sequence('marks', 'id'))")
        .fetch_one(&mut conn)
        .await
        .expect("nextval");
    let max: i64 =
        sqlx::query_scalar("SELECT max(id) FROM marks").fetch_one(&mut conn).await.expect("max");
    assert!(next > max, "marks sequence {next} after max id {max}");
}

#[tokio::test]
async fn the_baseline_exists_only_on_a_benchmark_server() {
    let env = Env::start().await;
    let mut b = Browser::new();
    assert_eq!(b.get(&env.url("/bench/baseline?uid=x")).await.status, 404);

    let env = Env::start_with(Db::Sqlite, |cfg| cfg.bench.enabled = true).await.expect("SQLite");
    let known = zhurnal::demo::uid_for("demo-school-1-9А-s0");
    let page = b.get(&env.url(&format!("/bench/baseline?uid={known}"))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.body, r#"{"found":true}"#);
    let page = b.get(&env.url("/bench/baseline?uid=nobody")).await;
    assert_eq!(page.body, r#"{"found":false}"#);
}

// ----- Second round of issue 6: group commit of read audits, fewer statements per request ---

/// The app's chain key, to verify the chain the way `zhurnal audit verify` does.
pub(crate) fn sealer(env: &Env) -> zhurnal_app::HmacSealer {
    zhurnal::config::Config { data_dir: env.data_dir().to_path_buf(), ..Default::default() }
        .load_keys(false)
        .expect("keys")
        .sealer()
        .expect("sealer")
}

/// Many diary views at once (page and API, one parent): every answer is 200, every view has
/// its own `diary.view` record (group-committed, not merged or lost), and the chain verifies.
async fn concurrent_diary_views_are_each_audited(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let mut b = Browser::new();
    crate::support::login(&env, &mut b, "parent-1").await;
    let child = env.persona_uid("student-teen-1");
    let before = env.audit("diary.view").await.len();
    let mut tasks = tokio::task::JoinSet::new();
    const VIEWS: usize = 24;
    for i in 0..VIEWS {
        let mut other = Browser::new();
        other.jar = b.jar.clone();
        let url = if i % 2 == 0 {
            env.url(&format!("/diary/{child}"))
        } else {
            env.url(&format!("/api/v1/diary/{child}/week"))
        };
        tasks.spawn(async move {
            let page = other.get(&url).await;
            (page.status, page.body)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.expect("task");
        assert_eq!(status, 200, "{body}");
    }
    let views = env.audit("diary.view").await;
    assert_eq!(views.len() - before, VIEWS, "one record per view");
    let mut seqs: Vec<i64> = views.iter().map(|r| r.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), views.len(), "no seq handed out twice");
    let check = zhurnal_store::audit::verify_chain(env.app.store.as_ref(), &sealer(&env))
        .await
        .expect("the chain verifies after concurrent views");
    assert!(check.records as usize >= views.len());
}

#[tokio::test]
async fn concurrent_diary_views_are_each_audited_on_sqlite() {
    concurrent_diary_views_are_each_audited(Db::Sqlite).await;
}

#[tokio::test]
async fn concurrent_diary_views_are_each_audited_on_postgres() {
    concurrent_diary_views_are_each_audited(Db::Postgres).await;
}

/// The actor's relations are read on every request, not cached: a role revoked between two
/// requests of the same session refuses the second one.
async fn a_revoked_role_bites_on_the_next_request(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let mut b = Browser::new();
    crate::support::login(&env, &mut b, "school-admin-1").await;
    let uid = env.persona_uid("school-admin-1");
    let person = env.app.store.find_person_by_uid(&uid).await.expect("q").expect("admin");
    let grants = env.app.store.list_role_grants(person.id).await.expect("grants");
    let grant = grants.iter().find(|g| g.role == zhurnal_domain::Role::SchoolAdmin).expect("grant");
    let zhurnal_domain::RoleScope::School(school) = grant.scope else { panic!("school scope") };
    let page = format!("/admin/schools/{school}");
    let first = b.get(&env.url(&page)).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let audit = zhurnal_store::NewAudit::new(env.app.now_micros(), "role.revoke", "ok");
    env.app.store.revoke_role(grant.id, audit).await.expect("revoke");
    let second = b.get(&env.url(&page)).await;
    assert_eq!(second.status, 403, "revoked a moment ago: {}", second.body);
}

#[tokio::test]
async fn a_revoked_role_bites_on_the_next_request_on_sqlite() {
    a_revoked_role_bites_on_the_next_request(Db::Sqlite).await;
}

#[tokio::test]
async fn a_revoked_role_bites_on_the_next_request_on_postgres() {
    a_revoked_role_bites_on_the_next_request(Db::Postgres).await;
}
