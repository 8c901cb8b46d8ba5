//! The teacher's journal over HTTP: marks, attendance, topics, homework files, history,
//! audit, locked periods, refusals and the OpenAPI document.

mod browser;

use serde_json::{Value, json};
use zhurnal_domain::{AssignmentId, MarkId, PersonId};

use crate::support::{Browser, Db, Env, csrf, login};

/// A JSON client riding on a logged-in browser's cookies.
struct Api<'a> {
    env: &'a Env,
    cookies: String,
    csrf: String,
    client: reqwest::Client,
}

struct Reply {
    status: u16,
    body: Value,
    bytes: Vec<u8>,
    content_type: String,
}

impl<'a> Api<'a> {
    async fn new(env: &'a Env, browser: &mut Browser) -> Api<'a> {
        let token = csrf(env, browser).await;
        let cookies =
            browser.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        Api { env, cookies, csrf: token, client: reqwest::Client::new() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Reply {
        self.send_with(method, path, body, &[]).await
    }

    async fn send_with(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let cookies = self.cookies.clone();
        let mut req = self
            .client
            .request(method, self.env.url(path))
            .header("cookie", cookies)
            .header("x-csrf-token", &self.csrf);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        Self::reply(req.send().await.expect("request")).await
    }

    async fn upload(&self, path: &str, bytes: Vec<u8>) -> Reply {
        let cookies = self.cookies.clone();
        let req = self
            .client
            .post(self.env.url(path))
            .header("cookie", cookies)
            .header("x-csrf-token", &self.csrf)
            .header("content-type", "application/octet-stream")
            .body(bytes);
        Self::reply(req.send().await.expect("upload")).await
    }

    async fn reply(res: reqwest::Response) -> Reply {
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = res.bytes().await.expect("body").to_vec();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body, bytes, content_type }
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }
    async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }
    async fn delete(&self, path: &str, body: Value) -> Reply {
        self.send(reqwest::Method::DELETE, path, Some(body)).await
    }
}

/// Teacher-1's first own (not substituted) lesson today.
struct Lesson {
    assignment: AssignmentId,
    number: u8,
    students: Vec<String>,
    work_type: i64,
}

async fn person(env: &Env, persona: &str) -> PersonId {
    env.app
        .store
        .find_person_by_uid(&env.persona_uid(persona))
        .await
        .expect("query")
        .expect("person")
        .id
}

async fn teacher_lesson(env: &Env) -> Lesson {
    let store = &env.app.store;
    let teacher = person(env, "teacher-1").await;
    let today = env.app.today();
    let day = store.list_teacher_day_all(teacher, today).await.expect("day");
    let chosen = day
        .iter()
        .find(|l| l.teacher_id == teacher)
        .expect("teacher-1 has lessons on the demo Monday");
    let students = store
        .list_journal_students(chosen.assignment.id, today)
        .await
        .expect("students")
        .into_iter()
        .map(|s| s.person.uid)
        .collect();
    let a = store.get_journal_assignment(chosen.assignment.id).await.expect("assignment");
    let work_type = store.list_work_types(a.school_id).await.expect("work types")[0].id.0;
    Lesson { assignment: chosen.assignment.id, number: chosen.lesson_number, students, work_type }
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n% Zhurnal test homework\n".to_vec()
}

#[tokio::test]
async fn a_teacher_keeps_the_journal_and_every_change_is_recorded() {
    keep_the_journal(Env::start().await).await;
}

#[tokio::test]
async fn a_teacher_keeps_the_journal_on_postgres() {
    if let Some(env) = Env::start_on(Db::Postgres).await {
        keep_the_journal(env).await;
    }
}

async fn keep_the_journal(env: Env) {
    let l = teacher_lesson(&env).await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "teacher-1").await.status, 200);
    let today = b.get(&env.url("/teacher/today")).await;
    assert!(today.body.contains(&format!("/journal/{}", l.assignment)), "Today links the journal");
    assert!(today.body.contains("Мои журналы"));
    let page = b.get(&env.url(&format!("/journal/{}", l.assignment))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"jgrid\"") && page.body.contains("data-editable=\"true\""));
    assert!(page.body.contains("/static/journal.js"));

    let api = Api::new(&env, &mut b).await;
    let a = l.assignment;
    let date = env.app.today().to_string();
    let (s1, s2) = (l.students[0].clone(), l.students[1].clone());
    let cell = |student: &str, value: &str| {
        json!({ "date": date, "lesson_number": l.number, "student": student, "value": value,
                "work_type_id": l.work_type, "comment": "у доски" })
    };
    let five = api.post(&format!("/api/v1/journal/{a}/marks"), cell(&s1, "5")).await;
    assert_eq!(five.status, 201, "{}", five.body);
    let four = api.post(&format!("/api/v1/journal/{a}/marks"), cell(&s1, "4")).await;
    assert_eq!(four.status, 201, "a second mark in the same cell");
    assert_eq!(five.body["lesson_id"], four.body["lesson_id"]);
    // A retried request (same Idempotency-Key) returns the first mark and adds nothing.
    let key = [("idempotency-key", "retry-1")];
    let path = format!("/api/v1/journal/{a}/marks");
    let r1 = api.send_with(reqwest::Method::POST, &path, Some(cell(&s2, "2")), &key).await;
    let r2 = api.send_with(reqwest::Method::POST, &path, Some(cell(&s2, "2")), &key).await;
    assert_eq!((r1.status, r2.status), (201, 201), "{}", r2.body);
    assert_eq!(r1.body["id"], r2.body["id"]);
    let other = api.send_with(reqwest::Method::POST, &path, Some(cell(&s2, "3")), &key).await;
    assert_eq!(other.status, 422, "a key reused for another mark is refused");
    let id2 = r1.body["id"].as_i64().expect("id");
    let undo = api.delete(&format!("/api/v1/marks/{id2}"), json!({ "reason": "проверка" })).await;
    assert_eq!(undo.status, 204);
    let bad = api.post(&format!("/api/v1/journal/{a}/marks"), cell(&s1, "7")).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["detail"].as_str().unwrap_or("").contains("не распознана"), "{}", bad.body);

    let id5 = five.body["id"].as_i64().expect("id");
    let id4 = four.body["id"].as_i64().expect("id");
    let change = json!({ "value": "3", "work_type_id": l.work_type, "comment": null });
    let no_reason = api.put(&format!("/api/v1/marks/{id5}"), change.clone()).await;
    assert_eq!(no_reason.status, 422);
    assert!(no_reason.body["detail"].as_str().unwrap_or("").contains("причину"));
    let mut with_reason = change.clone();
    with_reason["reason"] = json!("ошибка ввода");
    let fixed = api.put(&format!("/api/v1/marks/{id5}"), with_reason).await;
    assert_eq!((fixed.status, fixed.body["value"].as_str()), (200, Some("3")), "{}", fixed.body);
    assert_eq!(api.delete(&format!("/api/v1/marks/{id4}"), json!({})).await.status, 422);
    let gone = api.delete(&format!("/api/v1/marks/{id4}"), json!({ "reason": "не тому" })).await;
    assert_eq!(gone.status, 204);

    let att = |kind: Value| json!({ "date": date, "lesson_number": l.number, "student": s2, "kind": kind });
    let absent = api.put(&format!("/api/v1/journal/{a}/attendance"), att(json!("Н"))).await;
    assert_eq!((absent.status, absent.body["kind"].as_str()), (200, Some("absent")));
    let late = api.put(&format!("/api/v1/journal/{a}/attendance"), att(json!("late"))).await;
    assert_eq!(late.body["previous"].as_str(), Some("absent"));
    let cleared = api.put(&format!("/api/v1/journal/{a}/attendance"), att(Value::Null)).await;
    assert_eq!((cleared.status, cleared.body["kind"].clone()), (200, Value::Null));
    api.put(&format!("/api/v1/journal/{a}/attendance"), att(json!("ill"))).await;

    let lesson_path = format!("/api/v1/journal/{a}/lessons/{date}/{}", l.number);
    let topic = api
        .put(&lesson_path, json!({ "topic": "Квадратные уравнения", "homework": "№ 101–105" }))
        .await;
    assert_eq!(topic.status, 200, "{}", topic.body);
    let file = api.upload(&format!("{lesson_path}/attachments?name=Задание.pdf"), pdf()).await;
    assert_eq!(file.status, 201, "{}", file.body);
    let url = file.body["url"].as_str().expect("url").to_string();
    let down = api.get(&url).await;
    assert_eq!((down.status, down.content_type.as_str()), (200, "application/pdf"));
    assert_eq!(down.bytes, pdf());

    // The grid shows the result, with the history on the cell.
    let grid = api.get(&format!("/api/v1/journal/{a}")).await;
    assert_eq!(grid.status, 200);
    assert_eq!(grid.body["can_edit"], true);
    let lessons = grid.body["lessons"].as_array().expect("lessons");
    let li = lessons
        .iter()
        .position(|x| x["date"] == json!(date) && x["number"] == json!(l.number))
        .expect("today's lesson in the grid");
    assert_eq!(lessons[li]["topic"], "Квадратные уравнения");
    assert_eq!(lessons[li]["attachments"][0]["name"], "Задание.pdf");
    let students = grid.body["students"].as_array().expect("students");
    let row = students.iter().find(|s| s["id"] == json!(s1)).expect("student row");
    let c = &row["cells"][li];
    assert_eq!(c["marks"].as_array().map(Vec::len), Some(1));
    assert_eq!(c["marks"][0]["value"], "3");
    let history = c["history"].as_array().expect("history");
    assert!(
        history.iter().any(|h| h["old"] == "5" && h["new"] == "3" && h["reason"] == "ошибка ввода"),
        "{history:?}"
    );
    assert!(history.iter().any(|h| h["old"] == "4" && h["new"].is_null()));
    let row2 = students.iter().find(|s| s["id"] == json!(s2)).expect("row");
    assert_eq!(row2["cells"][li]["attendance"], "ill");
    let page = b.get(&env.url(&format!("/journal/{a}"))).await;
    assert!(page.body.contains("Исправления отметок") && page.body.contains("ошибка ввода"));

    // Stored history and audit, written with each change.
    let from = env.app.today();
    let stored = env.app.store.list_assignment_marks(a, from, from).await.expect("history").history;
    assert_eq!(stored.len(), 6, "{stored:?}");
    for (action, n) in [
        ("mark.create", 3),
        ("mark.update", 1),
        ("mark.delete", 2),
        ("attendance.set", 3),
        ("attendance.clear", 1),
        ("lesson.update", 1),
        ("attachment.upload", 1),
    ] {
        assert_eq!(env.audit(action).await.len(), n, "{action}");
    }
    let update = &env.audit("mark.update").await[0];
    assert_eq!(update.event.reason.as_deref(), Some("ошибка ввода"));
    assert_eq!(update.event.details["old"], "5");
    assert_eq!(update.event.actor_role.as_deref(), Some("teacher"));

    // Period and annual marks.
    let pid = grid.body["period"]["id"].as_i64().expect("period");
    let pm = api
        .put(
            &format!("/api/v1/journal/{a}/final-marks"),
            json!({ "student": s1, "kind": "period", "period_id": pid, "value": "4" }),
        )
        .await;
    assert_eq!((pm.status, pm.body["value"].as_str()), (200, Some("4")), "{}", pm.body);
    let grid = api.get(&format!("/api/v1/journal/{a}")).await;
    let row = grid.body["students"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == json!(s1)).cloned())
        .expect("row");
    assert_eq!(row["period_mark"], "4");
    assert!(row["formula"].as_str().unwrap_or("").contains('×'), "{row}");
    assert_eq!(env.audit("final_mark.set").await.len(), 1);

    // A pupil of another class (and her parent's other child) cannot download it.
    let mut child = Browser::new();
    login(&env, &mut child, "student-child-1").await;
    let ca = Api::new(&env, &mut child).await;
    assert_eq!(ca.get(&url).await.status, 403);
}

#[tokio::test]
async fn others_cannot_write_into_teacher_ones_journal() {
    let env = Env::start().await;
    let l = teacher_lesson(&env).await;
    let a = l.assignment;
    let date = env.app.today().to_string();
    let body = json!({ "date": date, "lesson_number": l.number, "student": l.students[0],
                       "value": "5", "work_type_id": l.work_type });
    for persona in ["class-teacher-1", "parent-1", "school-admin-1", "student-teen-1"] {
        let mut b = Browser::new();
        assert_eq!(login(&env, &mut b, persona).await.status, 200, "{persona}");
        let api = Api::new(&env, &mut b).await;
        let post = api.post(&format!("/api/v1/journal/{a}/marks"), body.clone()).await;
        assert_eq!(post.status, 403, "{persona}: {}", post.body);
        assert_eq!(post.body["code"], "forbidden");
        let lesson = api
            .put(
                &format!("/api/v1/journal/{a}/lessons/{date}/{}", l.number),
                json!({ "topic": "чужая тема" }),
            )
            .await;
        assert_eq!(lesson.status, 403, "{persona}");
        let grid = api.get(&format!("/api/v1/journal/{a}")).await;
        match persona {
            "school-admin-1" => {
                assert_eq!(grid.status, 200);
                assert_eq!(grid.body["can_edit"], false);
            }
            "parent-1" | "student-teen-1" => assert_eq!(grid.status, 403, "{persona}"),
            _ => {}
        }
    }
    // Without the CSRF header a write is refused before anything else.
    let mut b = Browser::new();
    login(&env, &mut b, "teacher-1").await;
    let mut api = Api::new(&env, &mut b).await;
    api.csrf = "wrong".into();
    assert_eq!(api.post(&format!("/api/v1/journal/{a}/marks"), body).await.status, 403);
    assert!(env.audit("mark.create").await.is_empty());
    let unknown = Api::new(&env, &mut b).await.get("/api/v1/journal/99999999").await;
    assert_eq!(unknown.status, 403, "an unknown journal answers like a foreign one");
}

#[tokio::test]
async fn a_closed_quarter_refuses_edits_until_the_admin_reopens_it() {
    let env = Env::start().await;
    let l = teacher_lesson(&env).await;
    let a = l.assignment;
    // The same weekday and lesson seven weeks earlier: the first quarter, closed in the demo.
    let date = (env.app.today() - chrono::Duration::weeks(7)).to_string();
    let mut b = Browser::new();
    login(&env, &mut b, "teacher-1").await;
    let api = Api::new(&env, &mut b).await;
    let grid = api.get(&format!("/api/v1/journal/{a}")).await;
    let q1 = grid.body["periods"][0].clone();
    assert!(q1["closed_on"].is_string(), "{q1}");
    let q1_id = q1["id"].as_i64().expect("id");
    let old = api.get(&format!("/api/v1/journal/{a}?period={q1_id}")).await;
    assert_eq!((old.status, old.body["can_edit"].clone()), (200, json!(false)));
    let page = b.get(&env.url(&format!("/journal/{a}?period={q1_id}"))).await;
    assert!(page.body.contains("закрыт") && page.body.contains("data-editable=\"false\""));

    let mark = json!({ "date": date, "lesson_number": l.number, "student": l.students[0],
                       "value": "5", "work_type_id": l.work_type });
    let refused = api.post(&format!("/api/v1/journal/{a}/marks"), mark.clone()).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let detail = refused.body["detail"].as_str().unwrap_or("").to_string();
    assert!(detail.contains("1 четверть") && detail.contains("закрыт"), "{detail}");
    let topic = api
        .put(&format!("/api/v1/journal/{a}/lessons/{date}/{}", l.number), json!({ "topic": "x" }))
        .await;
    assert_eq!(topic.status, 422);
    let pm = api
        .put(
            &format!("/api/v1/journal/{a}/final-marks"),
            json!({ "student": l.students[0], "kind": "period", "period_id": q1_id, "value": "5" }),
        )
        .await;
    assert_eq!(pm.status, 422);
    assert_eq!(
        api.put(&format!("/api/v1/periods/{q1_id}"), json!({ "open": true, "reason": "я хочу" }))
            .await
            .status,
        403,
        "a teacher cannot reopen a period"
    );
    assert!(env.audit("mark.create").await.is_empty());

    let mut admin = Browser::new();
    login(&env, &mut admin, "school-admin-1").await;
    let aa = Api::new(&env, &mut admin).await;
    let no_reason = aa.put(&format!("/api/v1/periods/{q1_id}"), json!({ "open": true })).await;
    assert_eq!(no_reason.status, 422);
    let reopened = aa
        .put(
            &format!("/api/v1/periods/{q1_id}"),
            json!({ "open": true, "reason": "исправление по заявлению родителя" }),
        )
        .await;
    assert_eq!((reopened.status, reopened.body["closed_on"].clone()), (200, Value::Null));
    let audit = env.audit("period.reopen").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].event.reason.as_deref(), Some("исправление по заявлению родителя"));
    let mark_again = mark.clone();
    let accepted = api.post(&format!("/api/v1/journal/{a}/marks"), mark).await;
    assert_eq!(accepted.status, 201, "{}", accepted.body);

    // The admin closes it again from the journal page's form (works without JavaScript).
    let token = csrf(&env, &mut admin).await;
    let closed = admin
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/journal/{a}/periods/{q1_id}")),
            Some(&[("csrf", token.as_str()), ("open", "0"), ("reason", "исправление внесено")]),
            &[],
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert!(closed.url.contains(&format!("period={q1_id}")) && closed.body.contains("закрыт"));
    assert_eq!(env.audit("period.close").await.len(), 1);
    let again = api.post(&format!("/api/v1/journal/{a}/marks"), mark_again).await;
    assert_eq!(again.status, 422);
}

#[tokio::test]
async fn homework_files_are_limited_in_size_and_type() {
    let env = Env::start().await;
    let l = teacher_lesson(&env).await;
    let mut b = Browser::new();
    login(&env, &mut b, "teacher-1").await;
    let api = Api::new(&env, &mut b).await;
    let base = format!(
        "/api/v1/journal/{}/lessons/{}/{}/attachments",
        l.assignment,
        env.app.today(),
        l.number
    );
    let big = api
        .upload(
            &format!("{base}?name=big.pdf"),
            vec![b'%'; zhurnal_domain::journal::MAX_ATTACHMENT_BYTES + 1],
        )
        .await;
    assert_eq!(big.status, 422, "{}", big.body);
    assert!(big.body["detail"].as_str().unwrap_or("").contains("слишком большой"));
    let html = api.upload(&format!("{base}?name=page.html"), b"<script>1</script>".to_vec()).await;
    assert_eq!(html.status, 422);
    assert!(html.body["detail"].as_str().unwrap_or("").contains("не допускается"));
    let fake = api.upload(&format!("{base}?name=fake.pdf"), b"<html>".to_vec()).await;
    assert_eq!(fake.status, 422);
    assert!(env.audit("attachment.upload").await.is_empty());
    let from = env.app.today();
    assert!(
        env.app
            .store
            .list_assignment_attachments(l.assignment, from, from)
            .await
            .expect("list")
            .is_empty()
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_api_route() {
    let env = Env::start().await;
    let res = reqwest::get(env.url("/api/openapi.json")).await.expect("openapi");
    assert_eq!(res.status().as_u16(), 200);
    let doc: Value = res.json().await.expect("the document parses as JSON");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "{}", doc["openapi"]);
    let mut checked = 0;
    for r in zhurnal_web::ROUTES.iter().filter(|r| r.path.starts_with("/api/v1/")) {
        let op = &doc["paths"][r.path][r.method.to_lowercase()];
        assert!(op.is_object(), "{} {} is not in /api/openapi.json", r.method, r.path);
        checked += 1;
    }
    assert!(checked >= 11, "{checked}");
    assert!(doc["components"]["securitySchemes"]["session"].is_object());
    assert!(doc["components"]["schemas"]["Grid"].is_object());
}

#[tokio::test]
async fn homework_files_reach_the_class_and_its_parents_only() {
    let env = Env::start().await;
    let store = &env.app.store;
    let today = env.app.today();
    let teen = person(&env, "student-teen-1").await;
    let class = store
        .list_enrolments(teen)
        .await
        .expect("enrolments")
        .into_iter()
        .find(|e| e.departed_on.is_none())
        .expect("enrolled")
        .class_id;
    // Some lesson of the teen's class this week, uploaded by the teacher of that assignment.
    let mut found = None;
    for a in store.list_class_assignments(class).await.expect("assignments") {
        let week = store
            .list_assignment_lessons(a.id, today, today + chrono::Duration::days(5))
            .await
            .expect("lessons");
        if let Some(l) = week.into_iter().find(|l| !l.substitution) {
            found = Some((a, l));
            break;
        }
    }
    let (a, lesson) = found.expect("the class has lessons this week");
    let actor = env.app.actor(a.teacher_id).await.expect("actor");
    let caller = zhurnal_app::journal::Caller {
        actor: &actor,
        audit: zhurnal_app::login::AuditContext { source_ip: None, session_hash: None },
        role: "teacher",
    };
    let key = zhurnal_store::journal::LessonKey {
        assignment: a.id,
        date: lesson.date,
        lesson_number: lesson.lesson_number,
    };
    let file =
        env.app.journal_upload(&caller, key, "Параграф 12.pdf", pdf(), None).await.expect("upload");
    let url = format!("/api/v1/attachments/{}", file.uid);
    for (persona, status) in [
        ("parent-1", 200),
        ("student-teen-1", 200),
        ("class-teacher-1", 200),
        ("school-admin-1", 200),
        ("student-child-1", 403),
        ("teacher-1", 403),
        ("regional-admin-1", 403),
    ] {
        let mut b = Browser::new();
        assert_eq!(login(&env, &mut b, persona).await.status, 200, "{persona}");
        let got = Api::new(&env, &mut b).await.get(&url).await;
        assert_eq!(got.status, status, "{persona}");
        if status == 200 {
            assert_eq!(got.bytes, pdf(), "{persona}");
            assert_eq!(got.content_type, "application/pdf");
        }
    }
}

// ----- Third round of issue 6: group commit of mark writes ---------------------------------

/// ~50 marks entered at once by one teacher (as a class's marks arrive at the end of a
/// lesson): every request answers 201 with its own mark, every mark is stored with its
/// `mark.create` audit record naming it (written in the mark's transaction, batched with the
/// others by the mark writer), and the audit chain verifies.
async fn concurrent_marks_are_each_stored_and_audited(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let l = teacher_lesson(&env).await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "teacher-1").await.status, 200);
    let api = Api::new(&env, &mut b).await;
    let before = env.audit("mark.create").await.len();
    const MARKS: usize = 50;
    let url = env.url(&format!("/api/v1/journal/{}/marks", l.assignment));
    let date = env.app.today().to_string();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..MARKS {
        let student = l.students[i % l.students.len()].clone();
        let value = ["2", "3", "4", "5"][i % 4];
        let body = json!({ "date": date, "lesson_number": l.number, "student": student,
                           "value": value, "work_type_id": l.work_type, "comment": format!("№{i}") });
        let req = api
            .client
            .post(&url)
            .header("cookie", api.cookies.clone())
            .header("x-csrf-token", &api.csrf)
            .json(&body);
        tasks.spawn(async move {
            let reply = Api::reply(req.send().await.expect("request")).await;
            (i, student, value, reply.status, reply.body)
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (i, student, value, status, body) = done.expect("task");
        assert_eq!(status, 201, "mark {i}: {body}");
        let id = body["id"].as_i64().expect("id");
        // Each caller got its own mark back, not a neighbour's from the same batch.
        let stored = env.app.store.get_journal_mark(MarkId(id)).await.expect("stored");
        assert_eq!(stored.mark.comment.as_deref(), Some(format!("№{i}").as_str()));
        assert_eq!(stored.mark.value.code(), value);
        let person = env.app.store.find_person_by_uid(&student).await.expect("q").expect("p");
        assert_eq!(stored.mark.student_id, person.id);
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), MARKS, "{MARKS} distinct marks");
    let records = env.audit("mark.create").await;
    assert_eq!(records.len() - before, MARKS, "one audit record per mark");
    let mut audited: Vec<i64> = records[before..]
        .iter()
        .map(|r| r.event.target_id.as_deref().and_then(|t| t.parse().ok()).expect("mark id"))
        .collect();
    audited.sort_unstable();
    assert_eq!(audited, ids, "every mark has its own audit record");
    zhurnal_store::audit::verify_chain(env.app.store.as_ref(), &crate::bench::sealer(&env))
        .await
        .expect("the chain verifies after concurrent marks");
}

#[tokio::test]
async fn concurrent_marks_are_each_stored_and_audited_on_sqlite() {
    concurrent_marks_are_each_stored_and_audited(Db::Sqlite).await;
}

#[tokio::test]
async fn concurrent_marks_are_each_stored_and_audited_on_postgres() {
    concurrent_marks_are_each_stored_and_audited(Db::Postgres).await;
}
