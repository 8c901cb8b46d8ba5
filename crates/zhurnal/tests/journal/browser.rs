//! The journal in headless Chromium: keyboard entry, saving without reload, surviving a
//! network drop, and a topic with homework and a file (support/chrome.rs drives it).

use zhurnal_domain::{AttendanceKind, MarkValue};

use super::teacher_lesson;
use crate::support::Env;
use crate::support::chrome::Chrome;

const ENTER: &str = "\u{E007}";

const SAVED: &str = "return document.getElementById('jstatus').textContent === 'Все изменения сохранены' \
    && document.querySelectorAll('.pending').length === 0";

#[tokio::test]
async fn a_teacher_enters_marks_with_the_keyboard_and_survives_a_network_drop() {
    let env = Env::start().await;
    let Some(d) = Chrome::start_with_width(1400).await else { return };
    let l = teacher_lesson(&env).await;
    let a = l.assignment;
    let today = env.app.today();
    d.goto(&env.url("/login?login_hint=teacher-1")).await;
    assert_eq!(d.eval("return location.pathname").await, "/teacher/today");
    let anchor = format!("lesson-{today}-{}", l.number);
    d.goto(&env.url(&format!("/journal/{a}#{anchor}"))).await;
    d.wait_until("return !document.getElementById('jtools').hidden", "the script").await;

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
        .marks
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
                .marks
                .into_iter()
                .filter(|m| m.student_id == student && !seen.contains(&m.id))
                .map(|m| m.value)
                .collect();
            v.sort_by_key(|v| v.code());
            v
        }
    };
    // 5 and 4 in one cell, Enter moves down; "n" (Н) marks the next student absent.
    d.click(&cell(0)).await;
    d.keys(&format!("54{ENTER}")).await;
    d.keys(&format!("n{ENTER}")).await;
    d.wait_until(SAVED, "the first entries to be saved").await;
    let s0 = person_by_uid(&env, &l.students[0]).await;
    assert_eq!(new_marks(s0).await, [MarkValue::Points(4), MarkValue::Points(5)]);
    let s1 = person_by_uid(&env, &l.students[1]).await;
    let att = store.list_assignment_attendance(a, today, today).await.expect("attendance");
    assert!(att.iter().any(|r| r.student_id == s1 && r.kind == AttendanceKind::Absent));
    assert_eq!(
        d.eval(&format!("return document.querySelectorAll(\"{} .mark.pending\").length", cell(0)))
            .await,
        0
    );

    // A click on the 5 opens the correction dialog; the reason is required and kept.
    d.click(&format!("{} .mark[data-value='5']", cell(0))).await;
    d.eval("document.getElementById('jd-value').value = '4'").await;
    d.click("#jd-update").await;
    assert_eq!(
        d.eval("return document.getElementById('jdialog-error').textContent.length > 0").await,
        true,
        "without a reason the dialog stays open with a message"
    );
    d.wait_for("#jd-reason").await.send_keys("ошибка ввода").await.expect("reason typed");
    d.click("#jd-update").await;
    d.wait_until(SAVED, "the correction").await;
    assert_eq!(new_marks(s0).await, [MarkValue::Points(4), MarkValue::Points(4)]);
    let history = store.list_assignment_marks(a, today, today).await.expect("history").history;
    assert!(history.iter().any(|h| h.student_id == s0
        && h.old_value == Some(MarkValue::Points(5))
        && h.new_value == Some(MarkValue::Points(4))
        && h.reason.as_deref() == Some("ошибка ввода")));
    assert!(
        d.eval(&format!("return document.querySelector(\"{}\").title", cell(0)))
            .await
            .as_str()
            .is_some_and(|t| t.contains("ошибка ввода")),
        "the history shows on the cell"
    );
    d.click(&cell(1)).await;
    d.keys("\u{E015}").await;

    // The network drops: the entry waits in memory, visibly, and goes out when it is back.
    d.offline(true).await;
    d.keys(&format!("3{ENTER}")).await;
    d.wait_until(
        "return document.getElementById('jstatus').textContent.startsWith('Нет связи')",
        "the offline state",
    )
    .await;
    let s2 = person_by_uid(&env, &l.students[2]).await;
    d.offline(false).await;
    d.wait_until(SAVED, "the retry after the network is back").await;
    // Saved exactly once, even if a request went out before its answer was lost.
    assert_eq!(new_marks(s2).await, [MarkValue::Points(3)]);

    // Topic, homework and a file for the lesson, from its form.
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("Задание.pdf");
    std::fs::write(&path, b"%PDF-1.4 browser upload").expect("file");
    let form = format!("#{anchor} .jlesson-form");
    let topic = d.wait_for(&format!("{form} input[name=topic]")).await;
    topic.clear().await.expect("topic cleared");
    topic.send_keys("Решение задач").await.expect("topic typed");
    let hw = d.wait_for(&format!("{form} textarea[name=homework]")).await;
    hw.clear().await.expect("homework cleared");
    hw.send_keys("№ 7, 8").await.expect("homework typed");
    let file = d.wait_for(&format!("{form} input[name=file]")).await;
    file.send_keys(path.to_str().expect("path")).await.expect("file chosen");
    d.click(&format!("{form} button[type=submit]")).await;
    d.wait_until(
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
    d.close().await;
}

async fn person_by_uid(env: &Env, uid: &str) -> zhurnal_domain::PersonId {
    env.app.store.find_person_by_uid(uid).await.expect("query").expect("person").id
}
