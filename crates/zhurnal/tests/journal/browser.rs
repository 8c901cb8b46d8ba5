//! The journal in headless Chromium: keyboard entry, saving without reload, surviving a
//! network drop, and a topic with homework and a file. Driven through chromedriver's WebDriver
//! HTTP API (no client crate needed for a handful of commands). Skips when
//! `ZHURNAL_CHROMEDRIVER` / `ZHURNAL_CHROMIUM` are not set (`cargo xtask ci` sets them).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use zhurnal_domain::{AttendanceKind, MarkValue};

use super::teacher_lesson;
use crate::support::Env;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const ENTER: &str = "\u{E007}";

struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Driver {
    async fn start() -> Option<Driver> {
        let (Ok(driver), Ok(chromium)) =
            (std::env::var("ZHURNAL_CHROMEDRIVER"), std::env::var("ZHURNAL_CHROMIUM"))
        else {
            eprintln!("skipping browser test: ZHURNAL_CHROMEDRIVER/ZHURNAL_CHROMIUM not set");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{root}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1400,1000"]
            }
        }}});
        let res: Value = http
            .post(format!("{root}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("json");
        let session = res["value"]["sessionId"].as_str().expect("session id").to_string();
        Some(Driver { child, base: format!("{root}/session/{session}"), http })
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.expect("webdriver").json().await.expect("json");
        assert!(v["value"]["error"].is_null(), "webdriver {path}: {v}");
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url }))).await;
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT].as_str().unwrap_or_else(|| panic!("element {css}: {v}")).to_string()
    }

    async fn click(&self, element: &str) {
        self.cmd(reqwest::Method::POST, &format!("/element/{element}/click"), Some(json!({})))
            .await;
    }

    async fn type_into(&self, element: &str, text: &str) {
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    /// Key presses to whatever has the focus, like a teacher's keyboard.
    async fn keys(&self, keys: &[&str]) {
        let actions: Vec<Value> = keys
            .iter()
            .flat_map(|k| {
                [json!({ "type": "keyDown", "value": k }), json!({ "type": "keyUp", "value": k })]
            })
            .collect();
        self.cmd(
            reqwest::Method::POST,
            "/actions",
            Some(json!({ "actions": [{ "type": "key", "id": "keyboard", "actions": actions }] })),
        )
        .await;
    }

    async fn exec(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
        .await
    }

    async fn offline(&self, offline: bool) {
        self.cmd(
            reqwest::Method::POST,
            "/chromium/network_conditions",
            Some(json!({ "network_conditions": {
                "offline": offline, "latency": 0,
                "download_throughput": 1_000_000, "upload_throughput": 1_000_000
            }})),
        )
        .await;
    }

    /// Polls `script` until it returns true (10 s at most).
    async fn wait_for(&self, script: &str, what: &str) {
        for _ in 0..100 {
            if self.exec(script).await == json!(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let status = self.exec("return document.getElementById('jstatus').textContent").await;
        panic!("timed out waiting for {what}; status: {status}");
    }

    async fn quit(mut self) {
        let _ = self.http.delete(&self.base).send().await;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

const SAVED: &str = "return document.getElementById('jstatus').textContent === 'Все изменения сохранены' \
    && document.querySelectorAll('.pending').length === 0";

#[tokio::test]
async fn a_teacher_enters_marks_with_the_keyboard_and_survives_a_network_drop() {
    let env = Env::start().await;
    let Some(d) = Driver::start().await else { return };
    let l = teacher_lesson(&env).await;
    let a = l.assignment;
    let today = env.app.today();
    d.goto(&env.url("/login?login_hint=teacher-1")).await;
    assert_eq!(d.exec("return location.pathname").await, "/teacher/today");
    let anchor = format!("lesson-{today}-{}", l.number);
    d.goto(&env.url(&format!("/journal/{a}#{anchor}"))).await;
    d.wait_for("return !document.getElementById('jtools').hidden", "the script").await;

    let cell = |i: usize| {
        format!(
            "tr[data-student='{}'] td.jc[data-date='{today}'][data-number='{}']",
            l.students[i], l.number
        )
    };
    // The demo already has marks today: only new ones count.
    let store = &env.app.store;
    let seen: Vec<_> = store
        .list_assignment_marks(a, today, today)
        .await
        .expect("marks")
        .iter()
        .map(|m| m.id)
        .collect();
    let new_marks = |student| {
        let seen = seen.clone();
        async move {
            let mut v: Vec<MarkValue> = store
                .list_assignment_marks(a, today, today)
                .await
                .expect("marks")
                .into_iter()
                .filter(|m| m.student_id == student && !seen.contains(&m.id))
                .map(|m| m.value)
                .collect();
            v.sort_by_key(|v| v.code());
            v
        }
    };
    // 5 and 4 in one cell, Enter moves down; "n" (Н) marks the next student absent.
    let first = d.find(&cell(0)).await;
    d.click(&first).await;
    d.keys(&["5", "4", ENTER]).await;
    d.keys(&["n", ENTER]).await;
    d.wait_for(SAVED, "the first entries to be saved").await;
    let s0 = person_by_uid(&env, &l.students[0]).await;
    assert_eq!(new_marks(s0).await, [MarkValue::Points(4), MarkValue::Points(5)]);
    let s1 = person_by_uid(&env, &l.students[1]).await;
    let att = store.list_assignment_attendance(a, today, today).await.expect("attendance");
    assert!(att.iter().any(|r| r.student_id == s1 && r.kind == AttendanceKind::Absent));
    assert_eq!(
        d.exec(&format!("return document.querySelectorAll(\"{} .mark.pending\").length", cell(0)))
            .await,
        0
    );

    // A click on the 5 opens the correction dialog; the reason is required and kept.
    let five = d.find(&format!("{} .mark[data-value='5']", cell(0))).await;
    d.click(&five).await;
    d.exec("document.getElementById('jd-value').value = '4'").await;
    let update = d.find("#jd-update").await;
    d.click(&update).await;
    assert_eq!(
        d.exec("return document.getElementById('jdialog-error').textContent.length > 0").await,
        true,
        "without a reason the dialog stays open with a message"
    );
    let reason = d.find("#jd-reason").await;
    d.type_into(&reason, "ошибка ввода").await;
    d.click(&update).await;
    d.wait_for(SAVED, "the correction").await;
    assert_eq!(new_marks(s0).await, [MarkValue::Points(4), MarkValue::Points(4)]);
    let history = store.list_assignment_mark_history(a, today, today).await.expect("history");
    assert!(history.iter().any(|h| h.student_id == s0
        && h.old_value == Some(MarkValue::Points(5))
        && h.new_value == Some(MarkValue::Points(4))
        && h.reason.as_deref() == Some("ошибка ввода")));
    assert!(
        d.exec(&format!("return document.querySelector(\"{}\").title", cell(0)))
            .await
            .as_str()
            .is_some_and(|t| t.contains("ошибка ввода")),
        "the history shows on the cell"
    );
    let down = d.find(&cell(1)).await;
    d.click(&down).await;
    d.keys(&["\u{E015}"]).await;

    // The network drops: the entry waits in memory, visibly, and goes out when it is back.
    d.offline(true).await;
    d.keys(&["3", ENTER]).await;
    d.wait_for(
        "return document.getElementById('jstatus').textContent.startsWith('Нет связи')",
        "the offline state",
    )
    .await;
    let s2 = person_by_uid(&env, &l.students[2]).await;
    d.offline(false).await;
    d.wait_for(SAVED, "the retry after the network is back").await;
    // Saved exactly once, even if a request went out before its answer was lost.
    assert_eq!(new_marks(s2).await, [MarkValue::Points(3)]);

    // Topic, homework and a file for the lesson, from its form.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("Задание.pdf");
    std::fs::write(&path, b"%PDF-1.4 browser upload").expect("file");
    let form = format!("#{anchor} .jlesson-form");
    let topic = d.find(&format!("{form} input[name=topic]")).await;
    d.exec(&format!("document.querySelector(\"{form} input[name=topic]\").value = ''")).await;
    d.type_into(&topic, "Решение задач").await;
    let hw = d.find(&format!("{form} textarea[name=homework]")).await;
    d.exec(&format!("document.querySelector(\"{form} textarea[name=homework]\").value = ''")).await;
    d.type_into(&hw, "№ 7, 8").await;
    let file = d.find(&format!("{form} input[name=file]")).await;
    d.type_into(&file, path.to_str().expect("path")).await;
    let submit = d.find(&format!("{form} button[type=submit]")).await;
    d.click(&submit).await;
    d.wait_for(
        &format!(
            "return document.querySelector(\"#{anchor} .jlesson-status\").textContent === 'Сохранено, файл прикреплён'"
        ),
        "the lesson form",
    )
    .await;
    let lessons = store.list_assignment_lessons(a, today, today).await.expect("lessons");
    let lesson = lessons.iter().find(|x| x.lesson_number == l.number).expect("lesson");
    assert_eq!(lesson.topic.as_deref(), Some("Решение задач"));
    assert_eq!(lesson.homework.as_deref(), Some("№ 7, 8"));
    let files = store.list_assignment_attachments(a, today, today).await.expect("files");
    assert_eq!(files.iter().map(|f| f.file_name.as_str()).collect::<Vec<_>>(), ["Задание.pdf"]);
    assert_eq!(env.audit("mark.create").await.len(), 3);
    d.quit().await;
}

async fn person_by_uid(env: &Env, uid: &str) -> zhurnal_domain::PersonId {
    env.app.store.find_person_by_uid(uid).await.expect("query").expect("person").id
}
