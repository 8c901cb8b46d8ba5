//! Browser tests: headless Chromium against the real server and simulator on 127.0.0.1.

use crate::support::Env;
use crate::support::chrome::Chrome;

/// The whole visible path of a parent: landing → «Войти через Госуслуги» → the simulator's
/// person picker → back with a session → the child's diary; another family's child → 403.
#[tokio::test]
async fn a_parent_logs_in_by_clicking_through_the_simulator() {
    let Some(chrome) = Chrome::start().await else { return };
    let env = Env::start().await;
    chrome.goto(&env.url("/")).await;
    chrome.click("a.esia").await;
    chrome.wait_for("input[name=person][value=parent-1]").await;
    chrome.click("input[name=person][value=parent-1]").await;
    chrome.click("button[value=allow]").await;
    chrome.wait_for("main").await;
    let url = chrome.url().await;
    assert!(url.starts_with(&env.url("/diary/")), "{url}");
    let text = chrome.text().await;
    assert!(text.contains("Дневник"), "{text}");
    assert!(text.contains("понедельник, 23 ноября 2026"), "{text}");

    let school2_student = {
        let school =
            env.app.store.find_school_by_external_id("demo-school-2").await.unwrap().unwrap();
        let year = env.app.store.list_academic_years(school.id).await.unwrap()[0].id;
        let class = env.app.store.list_classes(school.id, year).await.unwrap()[0].id;
        env.app.store.list_roster(class, env.app.today()).await.unwrap()[0].person.uid.clone()
    };
    chrome.goto(&env.url(&format!("/diary/{school2_student}"))).await;
    let denied = chrome.text().await;
    assert!(denied.contains("Код ответа 403") && denied.contains("нет доступа"), "{denied}");
    chrome.close().await;
}

/// Pages fit a 360 px phone: nothing scrolls sideways.
#[tokio::test]
async fn pages_fit_a_phone_screen() {
    let Some(chrome) = Chrome::start_with_width(360).await else { return };
    let env = Env::start().await;
    for (persona, _) in [("parent-1", "/diary"), ("teacher-1", "/teacher/today")] {
        chrome.goto(&env.url(&format!("/login?login_hint={persona}"))).await;
        chrome.wait_for("main").await;
        let overflow = chrome
            .eval("return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            .await;
        assert!(overflow.as_i64().unwrap_or(1) <= 0, "{persona}: page is {overflow} px too wide");
        chrome.client.delete_all_cookies().await.expect("cookies");
    }
    chrome.close().await;
}

/// Issue 4's main path in a real browser: the class teacher of 9А enters a mark and an absence
/// from the keyboard, sets a topic, homework and a file; then the parent logs in and sees
/// exactly those in the son's diary, the file downloads, and the average moved.
#[tokio::test]
async fn what_a_teacher_enters_is_what_the_parent_sees() {
    use fantoccini::actions::{InputSource, KeyAction, KeyActions};
    let Some(chrome) = Chrome::start().await else { return };
    let env = Env::start().await;
    let store = &env.app.store;
    let teen = env.persona_uid("student-teen-1");
    let teacher =
        store.find_person_by_uid(&env.persona_uid("class-teacher-1")).await.unwrap().unwrap();
    let teen_row = store.find_person_by_uid(&teen).await.unwrap().unwrap();
    let class = store.list_enrolments(teen_row.id).await.unwrap()[0].class_id;
    let assignment = store
        .list_class_assignments(class)
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.teacher_id == teacher.id)
        .expect("the class teacher of 9А teaches it");
    let lessons = store
        .list_assignment_lessons(
            assignment.id,
            env.app.today() - chrono::Duration::days(7),
            env.app.today(),
        )
        .await
        .unwrap();
    let lesson = lessons.last().expect("a lesson this week").clone();
    let (date, number) = (lesson.date, lesson.lesson_number);
    let diary_marks = || async {
        let mut b = crate::support::Browser::new();
        crate::support::login(&env, &mut b, "parent-1").await;
        let page = b.get(&env.url(&format!("/api/v1/diary/{teen}/marks"))).await;
        let v: serde_json::Value = serde_json::from_str(&page.body).expect("marks json");
        v
    };
    let before = diary_marks().await;

    chrome.goto(&env.url("/login?login_hint=class-teacher-1")).await;
    chrome.wait_for("main").await;
    // The lesson's anchor opens its form (topic, homework, files).
    chrome.goto(&env.url(&format!("/journal/{}#lesson-{date}-{number}", assignment.id.0))).await;
    chrome.wait_for("#jtools:not([hidden])").await;
    let cell =
        format!("tr[data-student='{teen}'] td.jc[data-date='{date}'][data-number='{number}']");
    chrome.click(&cell).await;
    let keys = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: '2' })
        .then(KeyAction::Up { value: '2' })
        .then(KeyAction::Down { value: '\u{E007}' })
        .then(KeyAction::Up { value: '\u{E007}' });
    chrome.client.perform_actions(keys).await.expect("keys");
    chrome
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(fantoccini::Locator::XPath(
            "//*[@id='jstatus' and text()='Все изменения сохранены']",
        ))
        .await
        .expect("saved");
    let form = format!("#lesson-{date}-{number} .jlesson-form");
    chrome
        .eval(&format!(
            "document.querySelector(\"{form} input[name=topic]\").value = 'Сложное предложение';\
             document.querySelector(\"{form} textarea[name=homework]\").value = 'Упр. 321, выучить правило';\
             return true;"
        ))
        .await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("Правило.pdf");
    std::fs::write(&file, b"%PDF-1.4 rule").expect("file");
    chrome
        .wait_for(&format!("{form} input[name=file]"))
        .await
        .send_keys(file.to_str().expect("path"))
        .await
        .expect("choose file");
    chrome.click(&format!("{form} button[type=submit]")).await;
    chrome
        .client
        .wait()
        .at_most(std::time::Duration::from_secs(10))
        .for_element(fantoccini::Locator::XPath(&format!(
            "//*[@id='lesson-{date}-{number}']//*[contains(@class,'jlesson-status') and text()='Сохранено, файл прикреплён']"
        )))
        .await
        .expect("lesson saved");

    chrome.client.delete_all_cookies().await.expect("log out");
    chrome.goto(&env.url("/login?login_hint=parent-1")).await;
    chrome.wait_for("main").await;
    let monday = date
        - chrono::Duration::days(i64::from(
            chrono::Datelike::weekday(&date).num_days_from_monday(),
        ));
    chrome.goto(&env.url(&format!("/diary/{teen}?week={monday}"))).await;
    let text = chrome.text().await;
    assert!(text.contains("Упр. 321, выучить правило"), "homework in the diary:\n{text}");
    assert!(text.contains("Сложное предложение"), "topic in the diary");
    assert!(text.contains("Правило.pdf"), "the file in the diary");
    let href = chrome
        .eval("return [...document.querySelectorAll('a')].find(a => a.textContent.includes('Правило.pdf')).href")
        .await;
    let cookies: Vec<String> = chrome
        .client
        .get_all_cookies()
        .await
        .expect("cookies")
        .iter()
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect();
    let download = reqwest::Client::new()
        .get(href.as_str().expect("link"))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .expect("download");
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.bytes().await.expect("bytes").as_ref(), b"%PDF-1.4 rule");

    // The 2 counts in the subject's weighted average, on the page the parent reads.
    let after = diary_marks().await;
    let subject = assignment.subject_name.as_str();
    let of = |v: &serde_json::Value, key: &str| {
        v["subjects"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["subject"] == subject))
            .map(|s| s[key].clone())
            .unwrap_or(serde_json::Value::Null)
    };
    let count = |v: &serde_json::Value| of(v, "marks").as_array().map_or(0, Vec::len);
    assert_eq!(count(&after), count(&before) + 1, "one new mark in {subject}");
    let new_average = of(&after, "average");
    assert_ne!(of(&before, "average"), new_average, "a 2 moves the average");
    chrome.goto(&env.url(&format!("/diary/{teen}/marks"))).await;
    let marks_page = chrome.text().await;
    let shown = new_average.as_str().expect("an average");
    assert!(marks_page.contains(shown), "the average {shown} on the marks page:\n{marks_page}");
    chrome.close().await;
}
