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
    assert!(
        denied.contains("Код ответа 403") && denied.contains("нет доступа к этому дневнику"),
        "{denied}"
    );
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
