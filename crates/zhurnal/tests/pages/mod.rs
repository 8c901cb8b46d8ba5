//! Pages prove the model end to end, and refuse what the policy refuses.

use crate::support::{Browser, Env, login};

#[tokio::test]
async fn health_and_landing_work_without_login() {
    let env = Env::start().await;
    let mut b = Browser::new();
    let health = b.get(&env.url("/healthz")).await;
    assert_eq!(health.status, 200);
    let v: serde_json::Value = serde_json::from_str(&health.body).expect("json");
    assert_eq!(v, serde_json::json!({ "status": "ok", "database": "sqlite" }));
    let landing = b.get(&env.url("/")).await;
    assert_eq!(landing.status, 200);
    assert!(landing.body.contains("Войти через Госуслуги"));
    assert!(!landing.body.contains("password"));
    let css = b.get(&env.url("/static/app.css")).await;
    assert_eq!(css.status, 200);
    assert_eq!(b.get(&env.url("/static/../Cargo.toml")).await.status, 404);
}

#[tokio::test]
async fn private_pages_need_a_session() {
    let env = Env::start().await;
    let mut b = Browser::new();
    for path in [
        "/home",
        "/diary",
        "/teacher/today",
        "/admin",
        "/region",
        "/security",
        "/schools/1",
        "/classes/1",
    ] {
        assert_eq!(b.get(&env.url(path)).await.status, 401, "{path}");
    }
    let api = b.get(&env.url("/api/v1/me")).await;
    assert_eq!(api.status, 401);
    assert!(api.body.contains("\"code\":\"unauthenticated\""), "{}", api.body);
}

#[tokio::test]
async fn a_school_admin_sees_classes_and_rosters_of_the_school() {
    let env = Env::start().await;
    let school = env.school().await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "school-admin-1").await.status, 200);
    let page = b.get(&env.url(&format!("/schools/{}", school.id))).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("11А"), "the class list shows grades 1–11");
    let year = env.app.store.list_academic_years(school.id).await.expect("years")[0].id;
    let classes = env.app.store.list_classes(school.id, year).await.expect("classes");
    assert!((22..=28).contains(&classes.len()), "{}", classes.len());
    let class = &classes[10];
    let roster = b.get(&env.url(&format!("/classes/{}", class.id))).await;
    assert_eq!(roster.status, 200);
    let first = env.app.store.list_roster(class.id, env.app.today()).await.expect("roster");
    assert!(!first.is_empty());
    assert!(roster.body.contains(&first[0].person.last_name));
    assert_eq!(env.audit("roster.view").await.len(), 1);
}

#[tokio::test]
async fn a_parent_cannot_open_rosters_or_another_familys_diary() {
    let env = Env::start().await;
    let school = env.school().await;
    let mut b = Browser::new();
    let own = login(&env, &mut b, "parent-1").await;
    assert_eq!(own.status, 200);
    assert_eq!(b.get(&env.url(&format!("/schools/{}", school.id))).await.status, 403);
    let year = env.app.store.list_academic_years(school.id).await.expect("years")[0].id;
    let class = env.app.store.list_classes(school.id, year).await.expect("classes")[3].id;
    assert_eq!(b.get(&env.url(&format!("/classes/{class}"))).await.status, 403);
    // Another family's child and a made-up id answer the same way.
    let other = env.persona_uid("student-teen-1");
    let roster = env.app.store.list_roster(class, env.app.today()).await.expect("roster");
    let stranger_child =
        roster.iter().find(|e| e.person.uid != other).expect("student").person.uid.clone();
    let foreign = b.get(&env.url(&format!("/diary/{stranger_child}"))).await;
    let missing = b.get(&env.url("/diary/00000000-0000-0000-0000-000000000000")).await;
    assert_eq!((foreign.status, missing.status), (403, 403));
    assert!(
        env.audit("diary.view")
            .await
            .iter()
            .all(|r| r.event.target_id.as_deref() != Some(stranger_child.as_str()))
    );
}

#[tokio::test]
async fn the_diary_shows_the_week_and_its_views_are_audited() {
    let env = Env::start().await;
    let mut b = Browser::new();
    let page = login(&env, &mut b, "parent-1").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("понедельник, 23 ноября 2026"), "the current week is shown");
    assert!(page.body.contains("ДЗ:"), "homework is shown");
    let teen = env.persona_uid("student-teen-1");
    let child = env.persona_uid("student-child-1");
    for uid in [&teen, &child] {
        let d = b.get(&env.url(&format!("/diary/{uid}?week=2026-11-16"))).await;
        assert_eq!(d.status, 200);
        assert!(d.body.contains("16 ноября 2026"));
    }
    let views = env.audit("diary.view").await;
    assert!(views.len() >= 3, "{}", views.len());
    assert!(views.iter().all(|r| r.event.actor_role.as_deref() == Some("parent")));
}

#[tokio::test]
async fn a_teacher_sees_todays_lessons_and_security_headers_are_set() {
    let env = Env::start().await;
    let mut b = Browser::new();
    let page = login(&env, &mut b, "teacher-1").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("понедельник, 23 ноября 2026"));
    assert!(page.body.matches("class=\"num\"").count() >= 1, "teacher-1 has lessons on Monday");
    let res = reqwest::get(env.url("/")).await.expect("landing");
    let h = res.headers();
    assert!(
        h.get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("frame-ancestors 'none'"))
    );
    assert_eq!(h.get("x-content-type-options").and_then(|v| v.to_str().ok()), Some("nosniff"));
    assert_eq!(h.get("referrer-policy").and_then(|v| v.to_str().ok()), Some("no-referrer"));
}
