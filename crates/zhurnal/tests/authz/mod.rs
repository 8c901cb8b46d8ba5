//! The authorization matrix: every route of `zhurnal_web::ROUTES` × every persona × a target
//! of their own and a target of someone else (another school, class, family) → allowed or
//! denied, as the rules of the product say. The expectations are written here, apart from the
//! policy code, and a route without an expectation fails the test: a new route cannot be
//! forgotten.

use std::collections::BTreeMap;

use zhurnal_domain::ClassId;
use zhurnal_web::ROUTES;

use crate::support::{Browser, Env, csrf, login};

/// Personas with a session in the matrix (plus the anonymous visitor).
const PERSONAS: &[&str] = &[
    "teacher-1",
    "class-teacher-1",
    "school-admin-1",
    "parent-1",
    "student-teen-1",
    "student-child-1",
    "regional-admin-1",
    "security-officer-1",
];

/// Who may use a route.
enum Rule {
    /// Anyone, without a session (never 401/403 for that reason).
    Public,
    /// Anyone with a session.
    Session,
    /// These personas; the route has no target in its path.
    Personas(&'static [&'static str]),
    /// (allowed on a target of their own, allowed on someone else's target).
    Target(&'static [&'static str], &'static [&'static str]),
}

const TEACHERS: &[&str] = &["teacher-1", "class-teacher-1"];
const FAMILY: &[&str] = &["parent-1", "student-teen-1", "student-child-1"];

/// The rules, one per route. Keep in the order of `ROUTES`.
fn rule(method: &str, path: &str) -> Option<Rule> {
    use Rule::*;
    Some(match (method, path) {
        ("GET", "/" | "/healthz" | "/static/{file}" | "/login" | "/auth/callback") => Public,
        // Area `bench`: only on a benchmark server; answers whether a uid exists, nothing more.
        ("GET", "/bench/baseline") => Public,
        ("POST", "/logout") | ("GET", "/home" | "/api/v1/me") => Session,
        ("GET", "/teacher/today") => Personas(TEACHERS),
        ("GET", "/diary") => Personas(FAMILY),
        // Own diary or child's; the class teacher and the school admin of the student's school.
        ("GET", "/diary/{student}") => Target(
            &["parent-1", "student-teen-1", "student-child-1", "class-teacher-1", "school-admin-1"],
            &[],
        ),
        // Staff of the school; the regional admin for every school of the region.
        ("GET", "/schools/{school}") => Target(
            &["teacher-1", "class-teacher-1", "school-admin-1", "regional-admin-1"],
            &["regional-admin-1"],
        ),
        // Rosters: who teaches or leads the class, and the school admin. Never officials.
        ("GET", "/classes/{class}") => {
            Target(&["teacher-1", "class-teacher-1", "school-admin-1"], &[])
        }
        (
            "GET",
            "/diary/{student}/marks"
            | "/diary/{student}/feed"
            | "/api/v1/diary/{student}/week"
            | "/api/v1/diary/{student}/marks"
            | "/api/v1/diary/{student}/feed",
        ) => Target(
            &["parent-1", "student-teen-1", "student-child-1", "class-teacher-1", "school-admin-1"],
            &[],
        ),
        // Averages of every subject and the parents' contacts: the class teacher and the admin.
        ("GET", "/classes/{class}/summary") => Target(&["class-teacher-1", "school-admin-1"], &[]),
        // The page is for people of a school; the API answers everyone (an empty list).
        ("GET", "/announcements") => Personas(&[
            "teacher-1",
            "class-teacher-1",
            "school-admin-1",
            "parent-1",
            "student-teen-1",
            "student-child-1",
        ]),
        ("GET", "/api/v1/announcements") => Session,
        // Teachers post to the classes they teach or lead; the admin to the school's classes.
        ("POST", "/announcements" | "/api/v1/announcements") => {
            Target(&["teacher-1", "class-teacher-1", "school-admin-1"], &[])
        }
        ("POST", "/announcements/{id}/release" | "/announcements/{id}/recall") => {
            Target(&["school-admin-1"], &[])
        }
        // Journal: the teacher of the assignment writes; the class teacher and the school admin
        // read; reopening a closed period is the admin's.
        ("GET", "/journal/{assignment}" | "/api/v1/journal/{assignment}") => {
            Target(&["teacher-1", "class-teacher-1", "school-admin-1"], &[])
        }
        ("POST", "/journal/{assignment}/periods/{period}")
        | ("PUT", "/api/v1/periods/{period}") => Target(&["school-admin-1"], &[]),
        ("GET", "/api/openapi.json") => Public,
        ("POST", "/api/v1/journal/{assignment}/marks")
        | ("PUT", "/api/v1/marks/{mark}")
        | ("DELETE", "/api/v1/marks/{mark}")
        | ("PUT", "/api/v1/journal/{assignment}/attendance")
        | ("PUT", "/api/v1/journal/{assignment}/lessons/{date}/{number}")
        | ("POST", "/api/v1/journal/{assignment}/lessons/{date}/{number}/attachments")
        | ("PUT", "/api/v1/journal/{assignment}/final-marks") => Target(&["teacher-1"], &[]),
        // A homework file: the teacher, the school admin, and the class with its parents (none
        // of the family personas is in teacher-1's class chosen below).
        ("GET", "/api/v1/attachments/{uid}") => Target(&["teacher-1", "school-admin-1"], &[]),
        // School administration: the admin of this school only (officials do not edit schools).
        (_, p)
            if p.starts_with("/admin/schools/{school}")
                || p.starts_with("/admin/classes/{class}")
                || p.starts_with("/admin/enrolments/") =>
        {
            Target(&["school-admin-1"], &[])
        }
        ("GET" | "POST", "/admin/rollover" | "/admin/reactivation") => {
            Personas(&["school-admin-1"])
        }
        // Roles: the school admin within the school, the regional admin within the region.
        ("GET", "/admin/roles") | ("POST", "/admin/roles/grant") => {
            Personas(&["school-admin-1", "regional-admin-1"])
        }
        ("POST", "/admin/roles/{grant}/revoke") => {
            Target(&["school-admin-1", "regional-admin-1"], &["school-admin-1", "regional-admin-1"])
        }
        // Reports: the school's admin; officials see aggregates of their territory.
        ("GET", "/reports") => Personas(&["school-admin-1", "regional-admin-1"]),
        // The summary covers what the viewer may see: the region, or the admin's own school.
        ("GET", "/reports/territory/{format}") => {
            Target(&["school-admin-1", "regional-admin-1"], &["school-admin-1", "regional-admin-1"])
        }
        ("GET", "/reports/classes/{class}/archive.pdf") => Target(&["school-admin-1"], &[]),
        ("GET", "/reports/{school}/{report}/{format}") => {
            Target(&["school-admin-1", "regional-admin-1"], &["regional-admin-1"])
        }
        // The security officer's workspace.
        ("GET" | "POST", "/security/incidents/{incident}")
        | ("POST", "/security/incidents/{incident}/notices") => {
            Target(&["security-officer-1"], &["security-officer-1"])
        }
        (
            "GET",
            "/security/audit"
            | "/security/report"
            | "/security/report.csv"
            | "/security/report.pdf"
            | "/security/report.xlsx",
        ) => Personas(&["security-officer-1"]),
        // import area: school admin (own school) and regional admin (region) load data; the
        // region's migration register and acts are the regional admin's.
        ("GET" | "POST", "/import")
        | ("GET", "/import/templates.zip" | "/import/templates.xlsx") => {
            Personas(&["school-admin-1", "regional-admin-1"])
        }
        ("GET", "/import/region") => Personas(&["regional-admin-1"]),
        ("GET", "/import/acts/{act}") => Target(&["regional-admin-1"], &["regional-admin-1"]),
        ("GET", "/admin") => Personas(&["school-admin-1"]),
        ("GET", "/region") => Personas(&["regional-admin-1"]),
        ("GET", "/security") => Personas(&["security-officer-1"]),
        // Area `integrations`: monitoring for officials; the class chat page for those who
        // may read the roster; the school's communication services are public.
        ("GET", "/monitoring" | "/monitoring/weekly.xlsx") => Personas(&["regional-admin-1"]),
        ("GET", "/classes/{class}/chat") => {
            Target(&["teacher-1", "class-teacher-1", "school-admin-1"], &[])
        }
        ("GET", "/schools/{school}/communication") => Public,
        _ => return None,
    })
}

/// Concrete ids for each kind of path parameter, per persona: (own, other).
struct Targets {
    by_persona: BTreeMap<&'static str, BTreeMap<&'static str, (String, String)>>,
    journal: JournalTargets,
}

/// A lesson, student, work type and period of teacher-1's journal, for write bodies.
struct JournalTargets {
    date: String,
    number: u64,
    student: String,
    work_type: i64,
    current_period: i64,
}

impl Targets {
    async fn load(env: &Env) -> Targets {
        let store = &env.app.store;
        let data = &env.data;
        let school1 = store.find_school_by_external_id("demo-school-1").await.unwrap().unwrap();
        let school2 = store.find_school_by_external_id("demo-school-2").await.unwrap().unwrap();
        let mut classes = BTreeMap::new();
        for school in [&school1, &school2] {
            let year = store.list_academic_years(school.id).await.unwrap()[0].id;
            for c in store.list_classes(school.id, year).await.unwrap() {
                classes.insert(c.external_id.clone(), c.id);
            }
        }
        let class_id =
            |ext: &str| -> ClassId { *classes.get(ext).unwrap_or_else(|| panic!("class {ext}")) };
        let persona_ext = |p: &str| {
            data.personas.iter().find(|x| x.id == p).and_then(|x| x.external_id.clone()).unwrap()
        };
        let teacher1 = persona_ext("teacher-1");
        // A class of teacher-1's where none of the family personas studies.
        let taught = data
            .batch
            .assignments
            .iter()
            .find(|a| {
                a.teacher == teacher1 && !a.class.ends_with("-9А") && !a.class.ends_with("-3А")
            })
            .unwrap();
        let taught_class = class_id(&taught.class);
        let class_9a = class_id("demo-school-1-9А");
        let class_3a = class_id("demo-school-1-3А");
        let other_class = class_id("demo-school-2-5А");
        let first_student = |class: ClassId| async move {
            store.list_roster(class, env.app.today()).await.unwrap()[0].person.uid.clone()
        };
        let other_student = first_student(other_class).await;
        let teen = env.persona_uid("student-teen-1");
        let child = env.persona_uid("student-child-1");
        let taught_student = first_student(taught_class).await;

        // An announcement of the persona's school to moderate; someone else's is made up.
        let mut ct = Browser::new();
        assert_eq!(login(env, &mut ct, "class-teacher-1").await.status, 200);
        let token = csrf(env, &mut ct).await;
        let class_field = class_9a.0.to_string();
        let posted = ct
            .request(
                reqwest::Method::POST,
                &env.url("/announcements"),
                Some(&[
                    ("class", &class_field),
                    ("text", "Классный час в пятницу."),
                    ("csrf", &token),
                ]),
                &[("origin", env.base.as_str())],
            )
            .await;
        assert_eq!(posted.status, 200, "{}", posted.body);
        let list: serde_json::Value =
            serde_json::from_str(&ct.get(&env.url("/api/v1/announcements")).await.body).unwrap();
        let announcement = list["sent"][0]["id"].as_str().expect("announcement id").to_string();

        // Journal targets: teacher-1's assignment, and for everyone else an assignment of their
        // class taught by someone else (the class teacher reads it, nobody else writes it).
        let t1 = store.find_person_by_uid(&env.persona_uid("teacher-1")).await.unwrap().unwrap();
        let ct1 =
            store.find_person_by_uid(&env.persona_uid("class-teacher-1")).await.unwrap().unwrap();
        let own_assignment = store
            .list_class_assignments(taught_class)
            .await
            .unwrap()
            .into_iter()
            .find(|a| a.teacher_id == t1.id && a.external_id == taught.external_id)
            .expect("teacher-1's assignment")
            .id;
        let foreign_assignment = |class: ClassId| async move {
            store
                .list_class_assignments(class)
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.teacher_id != t1.id && a.teacher_id != ct1.id)
                .expect("an assignment of another teacher")
                .id
        };
        let assignment_9a = foreign_assignment(class_9a).await;
        let assignment_3a = foreign_assignment(class_3a).await;
        let assignment_other = foreign_assignment(other_class).await;
        let mut t = Browser::new();
        assert_eq!(login(env, &mut t, "teacher-1").await.status, 200);
        let grid: serde_json::Value = serde_json::from_str(
            &t.get(&env.url(&format!("/api/v1/journal/{}", own_assignment.0))).await.body,
        )
        .unwrap();
        let lesson = grid["lessons"]
            .as_array()
            .unwrap()
            .iter()
            .rfind(|l| !l["lesson_id"].is_null())
            .expect("a held lesson")
            .clone();
        let mark = grid["students"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|st| st["cells"].as_array().unwrap().iter())
            .flat_map(|c| c["marks"].as_array().unwrap().iter())
            .map(|m| m["id"].as_i64().unwrap())
            .next()
            .expect("a mark in the current period");
        let periods = grid["periods"].as_array().unwrap();
        let closed = periods.iter().find(|p| !p["closed_on"].is_null()).expect("a closed period");
        let journal = JournalTargets {
            date: lesson["date"].as_str().unwrap().to_string(),
            number: lesson["number"].as_u64().unwrap(),
            student: grid["students"][0]["id"].as_str().unwrap().to_string(),
            work_type: grid["work_types"][0]["id"].as_i64().unwrap(),
            current_period: grid["period"]["id"].as_i64().unwrap(),
        };
        let t_token = csrf(env, &mut t).await;
        let upload = reqwest::Client::new()
            .post(env.url(&format!(
                "/api/v1/journal/{}/lessons/{}/{}/attachments?name=task.pdf",
                own_assignment.0, journal.date, journal.number
            )))
            .header(
                "cookie",
                t.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "),
            )
            .header("x-csrf-token", t_token)
            .header("origin", env.base.as_str())
            .header("content-type", "application/pdf")
            .body(b"%PDF-1.4 homework".to_vec())
            .send()
            .await
            .unwrap();
        assert!(upload.status().is_success(), "{}", upload.status());
        let upload: serde_json::Value = upload.json().await.unwrap();
        let attachment = upload["uid"].as_str().expect("attachment uid").to_string();
        let school2_year = store.list_academic_years(school2.id).await.unwrap()[0].id;
        let school2_period = store.list_periods(school2_year).await.unwrap()[0].period.id;

        let teen_row = store.find_person_by_uid(&teen).await.unwrap().unwrap();
        let teen_enrolment = store.list_enrolments(teen_row.id).await.unwrap()[0].id.to_string();
        let other_row = store.find_person_by_uid(&other_student).await.unwrap().unwrap();
        let other_enrolment = store.list_enrolments(other_row.id).await.unwrap()[0].id.to_string();

        let mut by_persona = BTreeMap::new();
        for &p in PERSONAS {
            let (own_class, own_student) = match p {
                "teacher-1" => (taught_class, taught_student.clone()),
                "student-child-1" => (class_3a, child.clone()),
                _ => (class_9a, teen.clone()),
            };
            let mut m = BTreeMap::new();
            m.insert("school", (school1.id.0.to_string(), school2.id.0.to_string()));
            m.insert("class", (own_class.0.to_string(), other_class.0.to_string()));
            m.insert("student", (own_student, other_student.clone()));
            m.insert("file", ("app.css".to_string(), "app.js".to_string()));
            m.insert("id", (announcement.clone(), "00000000-0000-0000-0000-000000000000".into()));
            let assignment = match p {
                "teacher-1" => own_assignment,
                "student-child-1" => assignment_3a,
                _ => assignment_9a,
            };
            m.insert("assignment", (assignment.0.to_string(), assignment_other.0.to_string()));
            m.insert("period", (closed["id"].to_string(), school2_period.0.to_string()));
            m.insert("mark", (mark.to_string(), "999999999".into()));
            m.insert("date", (journal.date.clone(), journal.date.clone()));
            m.insert("number", (journal.number.to_string(), journal.number.to_string()));
            m.insert("uid", (attachment.clone(), "00000000-0000-0000-0000-000000000000".into()));
            m.insert("enrolment", (teen_enrolment.clone(), other_enrolment.clone()));
            // Made-up ids: an allowed persona gets 404 or 422, a denied one 403 (or 404).
            for k in ["slot", "group", "grant", "incident", "event"] {
                m.insert(k, ("999999".into(), "999998".into()));
            }
            // import area: no act exists in the demo; an allowed persona gets 404.
            m.insert("act", ("А-2026-9999".into(), "А-2026-9998".into()));
            m.insert("format", ("xlsx".into(), "pdf".into()));
            m.insert("report", ("progress".into(), "attendance".into()));
            by_persona.insert(p, m);
        }
        by_persona.insert("anonymous", by_persona["teacher-1"].clone());
        Targets { by_persona, journal }
    }

    /// The path with every `{param}` replaced by the persona's own or other target.
    fn fill(&self, persona: &str, path: &str, own: bool) -> String {
        let renamed = path.replace("/security/incidents/{id}", "/security/incidents/{incident}");
        let path = renamed.as_str();
        let mut out = String::new();
        let mut rest = path;
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').map(|e| start + e).expect("closing brace");
            let name = &rest[start + 1..end];
            let (mine, theirs) = self.by_persona[persona].get(name).unwrap_or_else(|| {
                panic!(
                    "route {path} has a parameter {{{name}}} the authorization matrix does not know: add own/other targets for it in tests/authz"
                )
            });
            out.push_str(&rest[..start]);
            out.push_str(if own { mine } else { theirs });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// Route paths with their parameters named by kind (the incident page calls its id `{id}`).
fn canonical(path: &str) -> String {
    path.replace("/security/incidents/{id}", "/security/incidents/{incident}")
}

fn has_params(path: &str) -> bool {
    path.contains('{')
}

#[tokio::test]
async fn every_route_allows_and_denies_as_specified() {
    // Hundreds of requests per persona within a minute: not what the rate limit is tested on.
    let env = Env::start_with(crate::support::Db::Sqlite, |cfg| {
        cfg.security.requests_per_minute_per_account = 100_000;
        // Area `bench`: mount the benchmark's baseline so its row of the matrix is probed.
        cfg.bench.enabled = true;
    })
    .await
    .expect("SQLite");
    let targets = Targets::load(&env).await;
    let missing: Vec<String> = ROUTES
        .iter()
        .filter(|r| rule(r.method, &canonical(r.path)).is_none())
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(missing.is_empty(), "routes without an authorization rule: {missing:?}");

    let mut browsers = BTreeMap::new();
    for &p in PERSONAS {
        let mut b = Browser::new();
        assert_eq!(login(&env, &mut b, p).await.status, 200, "{p} logs in");
        browsers.insert(p, b);
    }

    let mut writers = BTreeMap::new();
    let mut cells = 0;
    let mut failures = Vec::new();
    for route in ROUTES {
        let rule = rule(route.method, &canonical(route.path)).expect("checked above");
        if route.public != matches!(rule, Rule::Public) {
            failures.push(format!(
                "{} {}: ROUTES says public={}",
                route.method, route.path, route.public
            ));
        }
        let scopes: &[bool] = if has_params(route.path) { &[true, false] } else { &[true] };
        for persona in std::iter::once("anonymous").chain(PERSONAS.iter().copied()) {
            for &own in scopes {
                let expected = match (&rule, persona) {
                    (Rule::Public, _) => true,
                    (_, "anonymous") => false,
                    (Rule::Session, _) => true,
                    (Rule::Personas(who), p) => who.contains(&p),
                    (Rule::Target(mine, theirs), p) => {
                        if own {
                            mine.contains(&p)
                        } else {
                            theirs.contains(&p)
                        }
                    }
                };
                let path = targets.fill(persona, route.path, own);
                let body = body(&targets, persona, route.method, route.path, own);
                let status =
                    probe(&env, &mut browsers, &mut writers, persona, route.method, &path, body)
                        .await;
                cells += 1;
                // A public route may still refuse (a callback without a state is a 403 refusal
                // page); it must just never ask for a session.
                let allowed = match rule {
                    Rule::Public => status != 401,
                    _ => status != 401 && status != 403,
                };
                // Without a session a GET is 401; a write is stopped by the CSRF guard first.
                let denied_right = match persona {
                    "anonymous" if route.method == "GET" => status == 401,
                    "anonymous" => status == 401 || status == 403,
                    // Someone else's object may be one that does not exist (a made-up id), and
                    // an own one may be gone (a mark deleted by an earlier probe): never shown.
                    _ => status == 403 || status == 404,
                };
                let whose = if own { "own" } else { "other" };
                if status >= 500 {
                    failures
                        .push(format!("{} {path} as {persona} ({whose}): {status}", route.method));
                } else if expected && !allowed {
                    failures.push(format!(
                        "{} {path} as {persona} ({whose}): expected allowed, got {status}",
                        route.method
                    ));
                } else if !expected && !denied_right {
                    failures.push(format!(
                        "{} {path} as {persona} ({whose}): expected denied, got {status}",
                        route.method
                    ));
                }
            }
        }
    }
    // The policy answers before any form field is read, so an empty form is enough to prove a
    // refusal on every write route; an allowed persona gets 422 with what is missing.
    println!("authorization matrix: {cells} cells over {} routes", ROUTES.len());
    assert!(failures.is_empty(), "authorization matrix mismatches:\n{}", failures.join("\n"));
}

/// A valid request body for a write route, aimed at the persona's own or someone else's
/// target, so that only the policy can refuse it.
enum Body {
    Form(Vec<(String, String)>),
    Json(serde_json::Value),
    /// A file upload: query string, content type, bytes.
    Raw(String, &'static str, Vec<u8>),
}

fn body(targets: &Targets, persona: &str, method: &str, path: &str, own: bool) -> Body {
    let j = &targets.journal;
    let class = || {
        let (mine, theirs) = &targets.by_persona[persona]["class"];
        if own { mine.clone() } else { theirs.clone() }
    };
    match path {
        "/announcements" => Body::Form(vec![
            ("class".into(), class()),
            ("text".into(), "Завтра экскурсия, сбор в 9:00.".into()),
        ]),
        "/api/v1/announcements" => Body::Json(serde_json::json!({
            "classes": [class().parse::<i64>().expect("class id")],
            "text": "Родительское собрание в четверг в 18:00.",
        })),
        "/journal/{assignment}/periods/{period}" => Body::Form(vec![
            ("open".into(), "1".into()),
            ("reason".into(), "Исправление ошибки в четвертных отметках".into()),
        ]),
        "/api/v1/periods/{period}" => {
            Body::Json(serde_json::json!({ "open": true, "reason": "Исправление ошибки" }))
        }
        "/api/v1/journal/{assignment}/marks" => Body::Json(serde_json::json!({
            "date": j.date, "lesson_number": j.number, "student": j.student,
            "value": "5", "work_type_id": j.work_type,
        })),
        "/api/v1/marks/{mark}" if method == "PUT" => Body::Json(serde_json::json!({
            "value": "4", "work_type_id": j.work_type, "reason": "Пересдача",
        })),
        "/api/v1/marks/{mark}" => {
            Body::Json(serde_json::json!({ "reason": "Ошибочно выставлена" }))
        }
        "/api/v1/journal/{assignment}/attendance" => Body::Json(serde_json::json!({
            "date": j.date, "lesson_number": j.number, "student": j.student, "kind": "late",
        })),
        "/api/v1/journal/{assignment}/lessons/{date}/{number}" => {
            Body::Json(serde_json::json!({ "topic": "Повторение", "homework": "№ 10, 11" }))
        }
        "/api/v1/journal/{assignment}/lessons/{date}/{number}/attachments" => {
            Body::Raw("?name=zadanie.pdf".into(), "application/pdf", b"%PDF-1.4 test".to_vec())
        }
        "/api/v1/journal/{assignment}/final-marks" => Body::Json(serde_json::json!({
            "student": j.student, "kind": "period", "period_id": j.current_period, "value": "5",
        })),
        // import area: a multipart upload of an empty ZIP (a valid request the importer
        // refuses with 422), so only the policy can answer 403.
        "/import" => Body::Raw(
            String::new(),
            "multipart/form-data; boundary=zhurnal-authz",
            import_upload_body(),
        ),
        _ => Body::Form(Vec::new()),
    }
}

/// A multipart form with `format` and an empty ZIP as `file`.
fn import_upload_body() -> Vec<u8> {
    let mut zip = Vec::new();
    zip::ZipWriter::new(std::io::Cursor::new(&mut zip)).finish().expect("empty zip");
    let mut out = b"--zhurnal-authz\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\nzhurnal-csv\r\n--zhurnal-authz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"empty.zip\"\r\nContent-Type: application/zip\r\n\r\n".to_vec();
    out.extend_from_slice(&zip);
    out.extend_from_slice(b"\r\n--zhurnal-authz--\r\n");
    out
}

/// A session of `persona` that is still alive, with its CSRF token: the one kept in `writers`
/// if the server still knows it, else a new login. State-changing requests get a session apart
/// from the one reads use, since they may end it (logout); a login through the simulator is
/// the slowest step of a probe, so it is repeated only when the session is gone.
async fn writer<'a>(
    env: &Env,
    writers: &'a mut BTreeMap<String, Browser>,
    persona: &str,
) -> (&'a mut Browser, String) {
    let alive = match writers.get_mut(persona) {
        Some(b) => b.get(&env.url("/api/v1/me")).await.status == 200,
        None => false,
    };
    if !alive {
        let mut b = Browser::new();
        assert_eq!(login(env, &mut b, persona).await.status, 200);
        writers.insert(persona.to_string(), b);
    }
    let b = writers.get_mut(persona).expect("inserted above");
    let token = csrf(env, b).await;
    (b, token)
}

/// One request as `persona`. State-changing requests carry a live session of their own and a
/// valid CSRF token, so only the policy can refuse them.
async fn probe(
    env: &Env,
    browsers: &mut BTreeMap<&str, Browser>,
    writers: &mut BTreeMap<String, Browser>,
    persona: &str,
    method: &str,
    path: &str,
    body: Body,
) -> u16 {
    let url = env.url(path);
    if method == "GET" {
        return match browsers.get_mut(persona) {
            Some(b) => b.request(reqwest::Method::GET, &url, None, &[]).await.hops[0].0,
            None => Browser::new().request(reqwest::Method::GET, &url, None, &[]).await.hops[0].0,
        };
    }
    let mut anonymous = Browser::new();
    let (b, token) = if persona == "anonymous" {
        (&mut anonymous, String::new())
    } else {
        writer(env, writers, persona).await
    };
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    match body {
        Body::Form(mut fields) => {
            fields.push(("csrf".into(), token));
            let fields: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let page =
                b.request(method, &url, Some(&fields), &[("origin", env.base.as_str())]).await;
            page.hops[0].0
        }
        Body::Raw(query, content_type, bytes) => {
            let cookies: Vec<String> = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            reqwest::Client::new()
                .request(method, format!("{url}{query}"))
                .header("cookie", cookies.join("; "))
                .header("x-csrf-token", token)
                .header("origin", env.base.as_str())
                .header("content-type", content_type)
                .body(bytes)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
        Body::Json(json) => {
            let cookies: Vec<String> = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
            reqwest::Client::new()
                .request(method, &url)
                .header("cookie", cookies.join("; "))
                .header("x-csrf-token", token)
                .header("origin", env.base.as_str())
                .json(&json)
                .send()
                .await
                .expect("request")
                .status()
                .as_u16()
        }
    }
}
