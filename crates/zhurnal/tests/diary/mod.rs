//! Area `diary`: the diary (week, marks with explained averages and the planner, the feed),
//! the class teacher's summary with audited contacts, and announcements with their abuse
//! controls — driven over HTTP like a browser, checked against the domain and the store.

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use zhurnal_domain::mark::{format_average, plan_options};
use zhurnal_domain::{AverageExplanation, ClassId, PersonId, WeightedMark};
use zhurnal_store::batch::{BLesson, BMark};
use zhurnal_store::import::PurgeScope;
use zhurnal_store::{Batch, NewAudit};

use crate::support::{Browser, Env, csrf, login};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).expect("date")
}

async fn person(env: &Env, persona: &str) -> PersonId {
    env.app
        .store
        .find_person_by_uid(&env.persona_uid(persona))
        .await
        .expect("query")
        .expect("persona registered")
        .id
}

async fn class_named(env: &Env, name: &str) -> ClassId {
    let school = env.school().await;
    let year = env.app.store.list_academic_years(school.id).await.expect("years")[0].id;
    env.app
        .store
        .list_classes(school.id, year)
        .await
        .expect("classes")
        .into_iter()
        .find(|c| c.name() == name)
        .expect("class")
        .id
}

/// Moves the journal's and the simulator's clocks together (before logging in).
fn set_time(env: &Env, at: chrono::DateTime<Utc>) {
    env.clock.set(at);
    env.sim.set_clock(Some(at));
}

async fn json(b: &mut Browser, url: &str) -> (u16, serde_json::Value) {
    let page = b.get(url).await;
    let v = serde_json::from_str(&page.body).unwrap_or(serde_json::Value::Null);
    (page.status, v)
}

/// Adds one mark through the import path (the journal's editing API is another area's).
async fn add_mark(env: &Env, ext: &str, lesson: &str, student_ext: &str, value: &str, at: i64) {
    let author = {
        let l = env.data.batch.lessons.iter().find(|l| l.external_id == lesson).expect("lesson");
        let a = env
            .data
            .batch
            .assignments
            .iter()
            .find(|a| a.external_id == l.assignment)
            .expect("assignment");
        a.teacher.clone()
    };
    let batch = Batch {
        marks: vec![BMark {
            external_id: ext.into(),
            lesson: lesson.into(),
            student: student_ext.into(),
            value: value.into(),
            work_type: "answer".into(),
            comment: None,
            author,
            created_at: at,
        }],
        ..Batch::default()
    };
    env.app.store.apply_batch(&batch, NewAudit::new(at, "test.mark", "ok")).await.expect("mark");
}

fn persona_ext(env: &Env, persona: &str) -> String {
    env.data
        .personas
        .iter()
        .find(|p| p.id == persona)
        .and_then(|p| p.external_id.clone())
        .expect("registered persona")
}

/// The external id of 9А of the demo school (student-teen-1's class).
fn class_9a(env: &Env) -> String {
    env.data
        .batch
        .classes
        .iter()
        .find(|c| c.grade == 9 && c.letter == "А" && c.school == env.data.school_external_id)
        .expect("9А")
        .external_id
        .clone()
}

/// The seeded lessons of `class`'s assignments that teach the whole class (no group), in the
/// order seeded.
fn lessons_of_whole_class<'a>(env: &'a Env, class: &str) -> Vec<&'a BLesson> {
    let batch = &env.data.batch;
    batch
        .lessons
        .iter()
        .filter(|l| {
            batch
                .assignments
                .iter()
                .any(|a| a.external_id == l.assignment && a.class == class && a.group.is_none())
        })
        .collect()
}

#[tokio::test]
async fn a_parent_switches_between_children_and_not_into_another_family() {
    let env = Env::start().await;
    let mut b = Browser::new();
    let home = login(&env, &mut b, "parent-1").await;
    assert_eq!(home.status, 200);
    let teen = env.persona_uid("student-teen-1");
    let child = env.persona_uid("student-child-1");
    // The picker lists both children on each child's page, the current one marked.
    for (uid, other) in [(&teen, &child), (&child, &teen)] {
        let page = b.get(&env.url(&format!("/diary/{uid}"))).await;
        assert_eq!(page.status, 200);
        assert!(page.body.contains(&format!("href=\"/diary/{uid}\" aria-current=\"page\"")));
        assert!(
            page.body.contains(&format!("href=\"/diary/{other}\">")),
            "picker offers the other child"
        );
        let (status, week) =
            json(&mut b, &env.url(&format!("/api/v1/diary/{uid}/week?date=2026-11-25"))).await;
        assert_eq!(status, 200);
        assert_eq!(week["student"]["id"], uid.as_str());
        assert_eq!(week["monday"], "2026-11-23");
        assert_eq!(week["previous_week"], "2026-11-16");
        assert!(week["days"][0]["lessons"].as_array().is_some_and(|l| !l.is_empty()));
    }
    assert!(home.body.contains("Дневник:"), "/diary leads a parent to a child's diary");
    // Another family's child: every diary route refuses, page and API alike.
    let class9 = class_named(&env, "9А").await;
    let roster = env.app.store.list_roster(class9, env.app.today()).await.expect("roster");
    let foreign =
        roster.iter().find(|e| e.person.uid != teen).expect("classmate").person.uid.clone();
    for path in [
        format!("/diary/{foreign}"),
        format!("/diary/{foreign}/marks"),
        format!("/diary/{foreign}/feed"),
    ] {
        let page = b.get(&env.url(&path)).await;
        assert_eq!(page.status, 403, "{path}");
        assert!(page.body.contains("родитель видит дневники только своих детей"), "{path}");
    }
    for path in [
        format!("/api/v1/diary/{foreign}/week"),
        format!("/api/v1/diary/{foreign}/marks"),
        format!("/api/v1/diary/{foreign}/feed"),
    ] {
        let (status, v) = json(&mut b, &env.url(&path)).await;
        assert_eq!((status, v["code"].as_str()), (403, Some("forbidden")), "{path}");
    }
    // Bad input is named, not guessed.
    let (status, v) =
        json(&mut b, &env.url(&format!("/api/v1/diary/{teen}/week?date=23.11.2026"))).await;
    assert_eq!(status, 422);
    assert!(v["detail"].as_str().is_some_and(|d| d.contains("ГГГГ-ММ-ДД")), "{v}");
    // A student sees only their own diary.
    let mut s = Browser::new();
    assert_eq!(login(&env, &mut s, "student-teen-1").await.status, 200);
    assert_eq!(s.get(&env.url(&format!("/diary/{teen}"))).await.status, 200);
    assert_eq!(s.get(&env.url(&format!("/diary/{child}"))).await.status, 403);
}

/// A parent of one child gets the picker from the diary's access check (no statement of its
/// own): it must read as the one of several children does, name and class, marked current.
#[tokio::test]
async fn a_parent_of_one_child_sees_that_child_in_the_picker() {
    let env = Env::start().await;
    let child = person(&env, "student-child-1").await;
    env.app
        .store
        .purge_persons(&[(child, PurgeScope::Full)], NewAudit::new(0, "test.purge", "ok"))
        .await
        .expect("purge the second child");
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "parent-1").await.status, 200);
    let teen = env.persona_uid("student-teen-1");
    let gone = format!("/diary/{}", env.persona_uid("student-child-1"));
    let teen_persona = env.data.personas.iter().find(|p| p.id == "student-teen-1").expect("teen");
    let picker = format!(
        "<a href=\"/diary/{teen}\" aria-current=\"page\">{} (9А)</a>",
        teen_persona.first_name
    );
    for path in
        [format!("/diary/{teen}"), format!("/diary/{teen}/marks"), format!("/diary/{teen}/feed")]
    {
        let page = b.get(&env.url(&path)).await;
        assert_eq!(page.status, 200, "{path}");
        assert!(page.body.contains(&picker), "{path}: {picker}");
        assert!(!page.body.contains(&gone), "{path}: the purged child is not offered");
    }
}

#[tokio::test]
async fn a_departed_childs_diary_ends_at_the_departure_date() {
    let env = Env::start().await;
    let parent = person(&env, "parent-1").await;
    let departed = person(&env, "departed-1").await;
    env.app
        .store
        .link_guardian(parent, departed, NewAudit::new(0, "test.guardian", "ok"))
        .await
        .expect("link");
    let departed_on = d(2026, 10, 15);
    // A mark in November on a lesson of the class the student left: it must stay hidden.
    let class8 = env
        .data
        .batch
        .classes
        .iter()
        .find(|c| c.grade == 8 && c.letter == "А" && c.school == env.data.school_external_id)
        .expect("8А")
        .external_id
        .clone();
    let late_lesson = env
        .data
        .batch
        .lessons
        .iter()
        .find(|l| {
            l.date >= d(2026, 11, 16)
                && l.date <= d(2026, 11, 20)
                && env
                    .data
                    .batch
                    .assignments
                    .iter()
                    .any(|a| a.external_id == l.assignment && a.class == class8)
        })
        .expect("a November lesson of 8А")
        .clone();
    add_mark(&env, "late-mark", &late_lesson.external_id, &persona_ext(&env, "departed-1"), "2", 1)
        .await;
    let stored = env
        .app
        .store
        .list_student_marks(departed, late_lesson.date, late_lesson.date)
        .await
        .expect("marks");
    assert_eq!(stored.len(), 1, "the hidden mark exists");

    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "parent-1").await.status, 200);
    let uid = env.persona_uid("departed-1");
    let (status, week) =
        json(&mut b, &env.url(&format!("/api/v1/diary/{uid}/week?date=2026-10-14"))).await;
    assert_eq!(status, 200);
    assert_eq!(week["student"]["visible_until"], "2026-10-15");
    for day in week["days"].as_array().expect("days") {
        let date: NaiveDate = day["date"].as_str().expect("date").parse().expect("date");
        let lessons = day["lessons"].as_array().expect("lessons");
        if date <= departed_on && date.format("%u").to_string() != "7" {
            assert!(!lessons.is_empty() || date > d(2026, 10, 17), "{date} is visible");
        } else {
            assert!(lessons.is_empty(), "{date} is after the departure");
        }
    }
    let (_, november) =
        json(&mut b, &env.url(&format!("/api/v1/diary/{uid}/week?date={}", late_lesson.date)))
            .await;
    assert!(
        november["days"]
            .as_array()
            .expect("days")
            .iter()
            .all(|d| d["lessons"].as_array().is_some_and(|l| l.is_empty()))
    );
    let (_, marks) = json(&mut b, &env.url(&format!("/api/v1/diary/{uid}/marks"))).await;
    for s in marks["subjects"].as_array().expect("subjects") {
        for m in s["marks"].as_array().expect("marks") {
            let date: NaiveDate = m["date"].as_str().expect("date").parse().expect("date");
            assert!(date <= departed_on, "{date}");
        }
    }
    let page = b.get(&env.url(&format!("/diary/{uid}?week=2026-10-12"))).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Ученик выбыл 15.10.2026"), "the page says why it ends");
}

#[tokio::test]
async fn averages_explanations_and_the_planner_match_the_domain() {
    let env = Env::start().await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "parent-1").await.status, 200);
    let uid = env.persona_uid("student-teen-1");
    let teen = person(&env, "student-teen-1").await;
    let (status, report) =
        json(&mut b, &env.url(&format!("/api/v1/diary/{uid}/marks?target=5"))).await;
    assert_eq!(status, 200, "{report}");
    let period = &report["period"];
    let from: NaiveDate = period["starts_on"].as_str().expect("from").parse().expect("date");
    let to: NaiveDate = period["ends_on"].as_str().expect("to").parse().expect("date");
    assert!(from <= env.app.today() && env.app.today() <= to, "the current period by default");
    let marks = env.app.store.list_student_subject_marks(teen, from, to).await.expect("marks");
    let rule = &env.app.rules.rounding;
    let school = env.school().await;
    let weights: Vec<u8> = env
        .app
        .store
        .list_work_types(school.id)
        .await
        .expect("wt")
        .iter()
        .map(|w| w.weight)
        .collect();
    let subjects = report["subjects"].as_array().expect("subjects");
    let mut checked = 0;
    let mut planned = 0;
    for s in subjects {
        let name = s["subject"].as_str().expect("name");
        let own: Vec<WeightedMark> = marks
            .iter()
            .filter(|m| m.subject_name == name)
            .map(|m| WeightedMark { value: m.value, weight: m.weight })
            .collect();
        assert_eq!(s["marks"].as_array().expect("marks").len(), own.len(), "{name}");
        let e = AverageExplanation::explain(&own, rule);
        assert_eq!(s["explanation"]["formula"], e.formula.as_str(), "{name}");
        assert_eq!(s["explanation"]["mark_count"], e.mark_count, "{name}");
        assert_eq!(s["suggested"], serde_json::json!(e.suggested), "{name}");
        assert_eq!(s["average"], serde_json::json!(e.average.map(format_average)), "{name}");
        if e.average.is_some() {
            checked += 1;
            let expected = plan_options(&own, rule, 5, 5, &weights, 20);
            let got = s["plan"].as_array().expect("plan");
            assert_eq!(got.len(), expected.len(), "{name}");
            for (g, x) in got.iter().zip(&expected) {
                assert_eq!(g["text"], x.describe().as_str());
                // The answer is right: that many fives of that weight reach 5, one fewer not.
                let mut with = own.clone();
                with.extend(std::iter::repeat_n(
                    WeightedMark { value: zhurnal_domain::MarkValue::Points(5), weight: x.weight },
                    x.count,
                ));
                let avg = zhurnal_domain::weighted_average(&with).expect("avg");
                assert_eq!(rule.suggest(avg, with.len()), Some(5), "{name}: {}", x.describe());
                if x.count > 0 {
                    with.pop();
                    let fewer = zhurnal_domain::weighted_average(&with).expect("avg");
                    assert_ne!(rule.suggest(fewer, with.len()), Some(5), "{name}: not the fewest");
                    planned += 1;
                }
            }
        }
    }
    assert!(checked >= 3, "the demo gives the teen marks in several subjects ({checked})");
    assert!(planned >= 1, "at least one subject needs marks to reach 5");
    // The page shows the same: formula, rule and the planner's sentence.
    let page = b.get(&env.url(&format!("/diary/{uid}/marks?target=5"))).await;
    assert_eq!(page.status, 200);
    let first =
        subjects.iter().find(|s| !s["plan"].as_array().expect("plan").is_empty()).expect("plan");
    assert!(page.body.contains(first["explanation"]["formula"].as_str().expect("formula")));
    assert!(page.body.contains(first["plan"][0]["text"].as_str().expect("text")));
    assert!(page.body.contains("округляется вверх"));
    // Wrong input is explained.
    let bad = b.get(&env.url(&format!("/diary/{uid}/marks?target=7"))).await;
    assert_eq!(bad.status, 422);
    assert!(bad.body.contains("укажите отметку от 2 до 5"));
}

#[tokio::test]
async fn the_feed_shows_only_what_is_new_since_the_last_visit() {
    let env = Env::start().await;
    // 20:00 in the region: every lesson of the day is over and marked.
    let evening = Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 0).single().expect("instant");
    set_time(&env, evening);
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "parent-1").await.status, 200);
    let uid = env.persona_uid("student-teen-1");
    let url = env.url(&format!("/api/v1/diary/{uid}/feed"));
    let (status, first) = json(&mut b, &url).await;
    assert_eq!(status, 200, "{first}");
    assert!(first["since"].is_null(), "first visit");
    assert!(!first["marks"].as_array().expect("marks").is_empty(), "the last week's marks");
    let (_, second) = json(&mut b, &url).await;
    assert!(second["since"].is_i64());
    assert!(second["marks"].as_array().expect("marks").is_empty(), "{second}");
    assert!(second["homework"].as_array().expect("homework").is_empty(), "{second}");
    // A new mark entered after the visit appears once.
    let teen_ext = persona_ext(&env, "student-teen-1");
    let class9 = class_9a(&env);
    let lesson = BLesson::clone(lessons_of_whole_class(&env, &class9).last().expect("9А's"));
    env.clock.advance(Duration::minutes(1));
    add_mark(&env, "feed-mark", &lesson.external_id, &teen_ext, "4", env.app.now_micros()).await;
    let (_, third) = json(&mut b, &url).await;
    let marks = third["marks"].as_array().expect("marks");
    assert_eq!(marks.len(), 1, "{third}");
    assert_eq!(marks[0]["value"], "4");
    assert_eq!(marks[0]["date"], lesson.date.to_string());
    // Homework set later the same day on a lesson held today shows once too.
    let today = env.app.today();
    let of_class = lessons_of_whole_class(&env, &class9);
    let today_lesson = of_class.iter().find(|l| l.date == today).expect("a lesson of 9А today");
    let mut changed = BLesson::clone(today_lesson);
    changed.homework = Some("Новое задание: № 101–105".into());
    let batch = Batch { lessons: vec![changed], ..Batch::default() };
    env.app
        .store
        .apply_batch(&batch, NewAudit::new(0, "test.homework", "ok"))
        .await
        .expect("homework");
    env.clock.advance(Duration::minutes(1));
    let (_, fourth) = json(&mut b, &url).await;
    let hw = fourth["homework"].as_array().expect("homework");
    assert_eq!(hw.len(), 1, "{fourth}");
    assert_eq!(hw[0]["homework"], "Новое задание: № 101–105");
    assert!(fourth["marks"].as_array().expect("marks").is_empty());
    env.clock.advance(Duration::minutes(1));
    let page = b.get(&env.url(&format!("/diary/{uid}/feed"))).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Ничего нового с прошлого визита"), "{}", page.body);
    // Visits are per viewer: the student's own feed still starts from scratch.
    let mut s = Browser::new();
    assert_eq!(login(&env, &mut s, "student-teen-1").await.status, 200);
    let (_, own) = json(&mut s, &url).await;
    assert!(own["since"].is_null());
    assert!(own["marks"].as_array().expect("marks").len() >= marks.len());
}

/// Every mark and every homework of `week`, as (lesson date, number, text) lines.
fn week_lines(week: &serde_json::Value) -> Vec<String> {
    let mut lines = Vec::new();
    for day in week["days"].as_array().into_iter().flatten() {
        for l in day["lessons"].as_array().into_iter().flatten() {
            for m in l["marks"].as_array().into_iter().flatten() {
                lines.push(format!("{} {} mark {}", day["date"], l["number"], m["value"]));
            }
            if let Some(hw) = l["homework"].as_str() {
                lines.push(format!("{} {} homework {hw}", day["date"], l["number"]));
            }
        }
    }
    lines
}

/// The server keeps the weeks it built (docs/performance.md, tenth round). A week asked for
/// again shows what changed in between even when the change did not go through this server
/// (here: the store directly, as the CLI or an import writes), and every view is audited,
/// served from memory or not.
#[tokio::test]
async fn a_week_asked_for_again_shows_what_changed_meanwhile_whoever_wrote_it() {
    let env = Env::start().await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "parent-1").await.status, 200);
    let uid = env.persona_uid("student-teen-1");
    let teen_ext = persona_ext(&env, "student-teen-1");
    let class9 = class_9a(&env);
    let lesson = BLesson::clone(lessons_of_whole_class(&env, &class9).first().expect("9А's"));
    let url = env.url(&format!("/api/v1/diary/{uid}/week?date={}", lesson.date));
    let views_before = week_views(&env, &uid).await;
    let (status, first) = json(&mut b, &url).await;
    assert_eq!(status, 200, "{first}");
    let (_, again) = json(&mut b, &url).await;
    assert_eq!(again, first, "nothing changed: the same week");

    let at = env.app.now_micros();
    add_mark(&env, "cache-mark", &lesson.external_id, &teen_ext, "2", at).await;
    let (_, marked) = json(&mut b, &url).await;
    let added: Vec<String> =
        week_lines(&marked).into_iter().filter(|l| !week_lines(&first).contains(l)).collect();
    let day = format!("\"{}\"", lesson.date);
    assert_eq!(added, [format!("{day} {} mark \"2\"", lesson.lesson_number)], "{marked}");

    let mut changed = lesson.clone();
    changed.homework = Some("Параграф 12, вопросы 1–3".into());
    let batch = Batch { lessons: vec![changed], ..Batch::default() };
    env.app.store.apply_batch(&batch, NewAudit::new(at, "test.homework", "ok")).await.expect("hw");
    let (_, homework) = json(&mut b, &url).await;
    let hw = format!("{day} {} homework Параграф 12, вопросы 1–3", lesson.lesson_number);
    assert!(week_lines(&homework).contains(&hw), "{homework}");
    // The page shows the same week as the API.
    let page = b.get(&env.url(&format!("/diary/{uid}?date={}", lesson.date))).await;
    assert!(page.body.contains("Параграф 12, вопросы 1–3"), "{}", page.body);

    assert_eq!(week_views(&env, &uid).await - views_before, 5, "every view is audited");
}

/// What a class's weeks share is kept too (docs/performance.md, eleventh round): its newest
/// announcements and the school's work types. A week never asked for before, built from them,
/// still shows a change made meanwhile straight in the store (as the CLI or an import does).
#[tokio::test]
async fn a_new_week_shows_the_announcements_and_work_types_changed_meanwhile() {
    let env = Env::start().await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "parent-1").await.status, 200);
    let uid = env.persona_uid("student-teen-1");
    let teen_ext = persona_ext(&env, "student-teen-1");
    let lessons = lessons_of_whole_class(&env, &class_9a(&env));
    let first = *lessons.first().expect("9А's lessons");
    let later = |after: &BLesson| {
        let l = lessons.iter().find(|l| l.date >= after.date + Duration::days(14));
        BLesson::clone(l.expect("a lesson two weeks later"))
    };
    let (second, third) = (later(first), later(&later(first)));
    let week = |l: &BLesson| env.url(&format!("/api/v1/diary/{uid}/week?date={}", l.date));
    let at = env.app.now_micros();
    add_mark(&env, "shared-parts-mark", &second.external_id, &teen_ext, "5", at).await;

    // The first week fills what the class's weeks share.
    let (status, a) = json(&mut b, &week(first)).await;
    assert_eq!(status, 200, "{a}");
    let school = env.school().await;
    let answer = env.app.store.list_work_types(school.id).await.expect("work types");
    let answer = answer.iter().find(|w| w.code == "answer").expect("the answer work type");
    env.app
        .store
        .upsert_work_type(
            school.id,
            "answer",
            "Ответ у доски",
            answer.weight,
            NewAudit::new(at, "test.work_type", "ok"),
        )
        .await
        .expect("renamed");
    let (_, b2) = json(&mut b, &week(&second)).await;
    let work_types: Vec<&str> = b2["days"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| d["lessons"].as_array().into_iter().flatten())
        .flat_map(|l| l["marks"].as_array().into_iter().flatten())
        .filter_map(|m| m["work_type"].as_str())
        .collect();
    assert!(work_types.contains(&"Ответ у доски"), "{b2}");
    assert!(!work_types.contains(&answer.name.as_str()), "the old name: {b2}");
    assert_eq!(b2["announcements"], a["announcements"], "nothing new for the class");

    let announcement = zhurnal_store::NewAnnouncement {
        uid: "shared-parts-news".into(),
        school_id: school.id,
        sender_id: person(&env, "class-teacher-1").await,
        body: "Родительское собрание в четверг в 18:00".into(),
        status: zhurnal_domain::AnnouncementStatus::Delivered,
        recipient_count: 1,
        created_at: at,
        classes: vec![class_named(&env, "9А").await],
    };
    env.app
        .store
        .insert_announcement(&announcement, NewAudit::new(at, "test.announcement", "ok"))
        .await
        .expect("sent");
    let (_, c) = json(&mut b, &week(&third)).await;
    let bodies: Vec<&str> = c["announcements"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["body"].as_str())
        .collect();
    assert!(bodies.contains(&"Родительское собрание в четверг в 18:00"), "{c}");
}

/// A class's lessons and files of a week are read once for all its students
/// (docs/performance.md, twelfth round), and each student's lessons are picked from them: a
/// student's week shows only their own marks, and of the groups' lessons only their own
/// group's (the demo teaches English in two groups at once).
#[tokio::test]
async fn a_week_read_for_the_whole_class_shows_each_student_only_their_own() {
    let env = Env::start().await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "parent-1").await.status, 200);
    let uid = env.persona_uid("student-teen-1");
    let teen_ext = persona_ext(&env, "student-teen-1");
    let teen = person(&env, "student-teen-1").await;
    let class9 = class_9a(&env);
    let batch = &env.data.batch;
    let other_group = batch
        .groups
        .iter()
        .find(|g| g.class == class9 && !g.members.contains(&teen_ext))
        .expect("a group of 9А without the teen");
    let classmate = other_group.members.first().expect("a member").clone();
    let group_lesson = batch
        .lessons
        .iter()
        .find(|l| {
            batch.assignments.iter().any(|a| {
                a.external_id == l.assignment && a.group.as_ref() == Some(&other_group.external_id)
            })
        })
        .expect("a lesson of that group");
    let lesson = lessons_of_whole_class(&env, &class9)
        .into_iter()
        .find(|l| monday_of(l.date) == monday_of(group_lesson.date))
        .expect("a whole-class lesson that week");
    let url = env.url(&format!("/api/v1/diary/{uid}/week?date={}", lesson.date));
    let (status, first) = json(&mut b, &url).await;
    assert_eq!(status, 200, "{first}");

    // The week's lessons are the teen's own: the store's read for the teen alone.
    let monday = monday_of(lesson.date);
    let class = class_named(&env, "9А").await;
    let own = env
        .app
        .store
        .list_student_lessons(teen, class, monday, monday + Duration::days(6))
        .await
        .expect("the teen's lessons");
    let expected: Vec<String> = own
        .iter()
        .map(|l| format!("{} {} {}", l.date, l.lesson_number, l.assignment.teacher_name))
        .collect();
    let shown: Vec<String> = first["days"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|d| {
            d["lessons"].as_array().into_iter().flatten().map(move |l| {
                format!(
                    "{} {} {}",
                    d["date"].as_str().unwrap_or(""),
                    l["number"],
                    l["teacher"].as_str().unwrap_or("")
                )
            })
        })
        .collect();
    assert_eq!(shown, expected, "{first}");

    // A classmate's new marks move the class's stamp, so the teen's week is built again, from
    // the class's part read again; it does not show them.
    let at = env.app.now_micros();
    add_mark(&env, "classmates-mark", &lesson.external_id, &classmate, "2", at).await;
    add_mark(&env, "classmates-group-mark", &group_lesson.external_id, &classmate, "3", at).await;
    let (_, after) = json(&mut b, &url).await;
    assert_eq!(week_lines(&after), week_lines(&first), "{after}");
    assert_eq!(after["days"], first["days"], "the classmate's marks are not the teen's");
}

fn monday_of(date: NaiveDate) -> NaiveDate {
    use chrono::Datelike;
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

async fn week_views(env: &Env, uid: &str) -> usize {
    let log = env.app.store.list_audit(0, 100_000).await.expect("audit");
    log.iter()
        .filter(|r| r.event.action == "diary.view" && r.event.target_id.as_deref() == Some(uid))
        .count()
}

#[tokio::test]
async fn the_class_teacher_sees_the_summary_and_audited_contacts_of_their_class_only() {
    let env = Env::start().await;
    let class9 = class_named(&env, "9А").await;
    let mut b = Browser::new();
    assert_eq!(login(&env, &mut b, "class-teacher-1").await.status, 200);
    let page = b.get(&env.url(&format!("/classes/{}/summary", class9.0))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Сводка по классу 9А"));
    let today = env.app.today();
    let roster = env.app.store.list_roster(class9, today).await.expect("roster");
    assert!(page.body.contains(&roster[0].person.full_name()));
    let guardians = env.app.store.list_class_guardians(class9, today).await.expect("guardians");
    let phone = guardians.iter().find_map(|g| g.parent.phone.clone()).expect("a parent's phone");
    assert!(page.body.contains(&phone), "contacts are listed");
    // One student's averages as the domain computes them.
    let summary = env
        .app
        .class_summary(
            &env.app.actor(person(&env, "class-teacher-1").await).await.expect("actor"),
            class9,
            &NewAudit::default(),
        )
        .await
        .expect("summary");
    let marks =
        env.app.store.list_class_marks(class9, summary.from, summary.to).await.expect("marks");
    let student = &roster[0].person;
    for (i, subject) in summary.subjects.iter().enumerate() {
        let w: Vec<WeightedMark> = marks
            .iter()
            .filter(|m| m.student_id == student.id && &m.subject_name == subject)
            .map(|m| WeightedMark { value: m.value, weight: m.weight })
            .collect();
        let row = summary.rows.iter().find(|r| r.student_id == student.uid).expect("row");
        assert_eq!(row.averages[i], zhurnal_domain::weighted_average(&w).map(format_average));
        if let Some(a) = &row.averages[i] {
            assert!(page.body.contains(a.as_str()));
        }
    }
    let views = env.audit("contacts.view").await;
    assert_eq!(views.len(), 1, "the page's view of contacts is audited");
    assert_eq!(views[0].event.target_id.as_deref(), Some(class9.0.to_string().as_str()));
    assert_eq!(views[0].event.actor_role.as_deref(), Some("teacher"));
    assert_eq!(env.audit("class_summary.view").await.len(), 2);
    // Another class: refused, nothing shown, nothing logged as a view.
    let class9b = class_named(&env, "9Б").await;
    assert_eq!(b.get(&env.url(&format!("/classes/{}/summary", class9b.0))).await.status, 403);
    let mut t = Browser::new();
    assert_eq!(login(&env, &mut t, "teacher-1").await.status, 200);
    let refused = t.get(&env.url(&format!("/classes/{}/summary", class9.0))).await;
    assert_eq!(refused.status, 403);
    assert!(!refused.body.contains(&phone));
    let mut p = Browser::new();
    assert_eq!(login(&env, &mut p, "parent-1").await.status, 200);
    assert_eq!(p.get(&env.url(&format!("/classes/{}/summary", class9.0))).await.status, 403);
    assert_eq!(env.audit("contacts.view").await.len(), 1);
}

async fn post_announcement(
    env: &Env,
    b: &mut Browser,
    classes: &[ClassId],
    text: &str,
) -> crate::support::Page {
    let token = csrf(env, b).await;
    let ids: Vec<String> = classes.iter().map(|c| c.0.to_string()).collect();
    let mut form: Vec<(&str, &str)> = vec![("csrf", &token), ("text", text)];
    for id in &ids {
        form.push(("class", id));
    }
    b.request(reqwest::Method::POST, &env.url("/announcements"), Some(&form), &[]).await
}

#[tokio::test]
async fn announcements_reach_the_class_and_the_admin_recalls_them() {
    let env = Env::start().await;
    let class9 = class_named(&env, "9А").await;
    let teen = env.persona_uid("student-teen-1");
    let mut ct = Browser::new();
    assert_eq!(login(&env, &mut ct, "class-teacher-1").await.status, 200);
    let sent = post_announcement(
        &env,
        &mut ct,
        &[class9],
        "Родительское собрание в четверг в 18:00. Запись: https://www.gosuslugi.ru/600",
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(sent.body.contains("Объявление отправлено."));
    assert_eq!(env.audit("announcement.send").await.len(), 1);
    let mut p = Browser::new();
    assert_eq!(login(&env, &mut p, "parent-1").await.status, 200);
    let diary = p.get(&env.url(&format!("/diary/{teen}"))).await;
    assert!(diary.body.contains("Родительское собрание в четверг"), "in the child's diary");
    let (_, list) = json(&mut p, &env.url("/api/v1/announcements")).await;
    let received = list["received"].as_array().expect("received");
    assert_eq!(received.len(), 1);
    let id = received[0]["id"].as_str().expect("id").to_string();
    // The other child's class did not get it.
    let child = env.persona_uid("student-child-1");
    let other = p.get(&env.url(&format!("/diary/{child}"))).await;
    assert!(!other.body.contains("Родительское собрание в четверг"));
    // Only the school admin recalls; then the recipients no longer see it.
    let token = csrf(&env, &mut p).await;
    let refused = p
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/announcements/{id}/recall")),
            Some(&[("csrf", &token)]),
            &[],
        )
        .await;
    assert_eq!(refused.status, 403);
    let mut admin = Browser::new();
    assert_eq!(login(&env, &mut admin, "school-admin-1").await.status, 200);
    let token = csrf(&env, &mut admin).await;
    let recalled = admin
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/announcements/{id}/recall")),
            Some(&[("csrf", &token)]),
            &[],
        )
        .await;
    assert_eq!(recalled.status, 200, "{}", recalled.body);
    assert!(recalled.body.contains("отозвано администратором"));
    let recall_audit = env.audit("announcement.recall").await;
    assert_eq!(recall_audit.len(), 1);
    assert_eq!(recall_audit[0].event.target_id.as_deref(), Some(id.as_str()));
    let diary = p.get(&env.url(&format!("/diary/{teen}"))).await;
    assert!(!diary.body.contains("Родительское собрание в четверг"), "hidden after recall");
    let (_, list) = json(&mut p, &env.url("/api/v1/announcements")).await;
    assert!(list["received"].as_array().expect("received").is_empty());
    // A teacher cannot write to a class they neither teach nor lead; bad JSON is explained.
    let actor = env.app.actor(person(&env, "class-teacher-1").await).await.expect("actor");
    let school = env.school().await;
    let year = env.app.store.list_academic_years(school.id).await.expect("years")[0].id;
    let foreign = env
        .app
        .store
        .list_classes(school.id, year)
        .await
        .expect("classes")
        .into_iter()
        .find(|c| {
            !actor.class_teacher_of.contains(&c.id)
                && actor.teaching.iter().all(|t| t.class != c.id)
        })
        .expect("a class class-teacher-1 has nothing to do with");
    let token = csrf(&env, &mut ct).await;
    let body = serde_json::json!({ "classes": [foreign.id.0], "text": "Привет" }).to_string();
    let res = reqwest::Client::new()
        .post(env.url("/api/v1/announcements"))
        .header("cookie", format!("zh_session={}", ct.session().expect("session")))
        .header("x-csrf-token", &token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 403);
    let problem: serde_json::Value = res.json().await.expect("problem");
    assert!(problem["detail"].as_str().is_some_and(|d| d.contains("своим классам")), "{problem}");
    let refused = env.audit("announcement.refused").await;
    assert_eq!(refused.last().and_then(|r| r.event.reason.as_deref()), Some("not_own_class"));
    let res = reqwest::Client::new()
        .post(env.url("/api/v1/announcements"))
        .header("cookie", format!("zh_session={}", ct.session().expect("session")))
        .header("x-csrf-token", &token)
        .body("{\"text\": 1}")
        .send()
        .await
        .expect("post");
    assert_eq!(res.status().as_u16(), 422);
    let ok = reqwest::Client::new()
        .post(env.url("/api/v1/announcements"))
        .header("cookie", format!("zh_session={}", ct.session().expect("session")))
        .header("x-csrf-token", &token)
        .body(serde_json::json!({ "classes": [class9.0], "text": "Через API" }).to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(ok.status().as_u16(), 201);
    let created: serde_json::Value = ok.json().await.expect("json");
    assert_eq!(
        (created["status"].as_str(), created["classes"][0].as_str()),
        (Some("delivered"), Some("9А"))
    );
}

#[tokio::test]
async fn the_rate_limit_the_link_allow_list_and_the_night_hold_protect_recipients() {
    let env = Env::start().await;
    let class9 = class_named(&env, "9А").await;
    let mut ct = Browser::new();
    assert_eq!(login(&env, &mut ct, "class-teacher-1").await.status, 200);
    // A link outside the allow-list: refused with the reason, nothing stored.
    let bad = post_announcement(
        &env,
        &mut ct,
        &[class9],
        "Срочно! Проверьте оценки: http://gosuslugi.ru.evil.example/login",
    )
    .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body.contains("ссылка на «gosuslugi.ru.evil.example» не разрешена"),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("Проверьте оценки"), "the text is kept for correction");
    let refused = env.audit("announcement.refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].event.reason.as_deref(), Some("link_not_allowed"));
    assert!(env.app.store.list_class_announcements(class9, 50).await.expect("list").is_empty());
    // The rate limit: ten an hour, the eleventh is refused.
    let limit = env.app.rules.announcements.max_per_hour;
    for i in 0..limit {
        let ok = post_announcement(&env, &mut ct, &[class9], &format!("Объявление № {i}")).await;
        assert_eq!(ok.status, 200, "{i}");
    }
    let over = post_announcement(&env, &mut ct, &[class9], "Ещё одно").await;
    assert_eq!(over.status, 429);
    assert!(over.body.contains("Ещё одно"), "the text is kept for later");
    assert!(over.body.contains(&format!("не более {limit} объявлений в час")));
    assert_eq!(
        env.app.store.list_class_announcements(class9, 50).await.expect("list").len(),
        limit as usize
    );

    // At 23:00 local time a send to two classes is held for the school admin.
    let night = Utc.with_ymd_and_hms(2026, 11, 23, 20, 0, 0).single().expect("instant");
    set_time(&env, night);
    let teacher = env.app.actor(person(&env, "teacher-1").await).await.expect("actor");
    let mut classes: Vec<ClassId> = teacher.teaching.iter().map(|t| t.class).collect();
    classes.sort();
    classes.dedup();
    assert!(classes.len() >= 2, "teacher-1 teaches several classes");
    let two = &classes[..2];
    let mut t = Browser::new();
    assert_eq!(login(&env, &mut t, "teacher-1").await.status, 200);
    let held = post_announcement(&env, &mut t, two, "Завтра контрольная работа по алгебре").await;
    assert_eq!(held.status, 200, "{}", held.body);
    assert!(held.body.contains("задержано до проверки администратором"));
    assert_eq!(env.audit("announcement.hold").await.len(), 1);
    for c in two {
        let delivered = env.app.store.list_class_announcements(*c, 50).await.expect("list");
        assert!(delivered.iter().all(|a| !a.body.contains("контрольная работа по алгебре")));
    }
    // One class at night is not a bulk send: delivered at once.
    let single = post_announcement(&env, &mut t, &two[..1], "Не забудьте учебники").await;
    assert!(single.body.contains("Объявление отправлено."), "{}", single.body);
    // The school admin sees the held one and releases it.
    let mut admin = Browser::new();
    assert_eq!(login(&env, &mut admin, "school-admin-1").await.status, 200);
    let (_, list) = json(&mut admin, &env.url("/api/v1/announcements")).await;
    let review = list["review"].as_array().expect("review");
    let held_item = review.iter().find(|a| a["status"] == "held").expect("held in review");
    let id = held_item["id"].as_str().expect("id");
    let token = csrf(&env, &mut admin).await;
    let released = admin
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/announcements/{id}/release")),
            Some(&[("csrf", &token)]),
            &[],
        )
        .await;
    assert_eq!(released.status, 200, "{}", released.body);
    assert_eq!(env.audit("announcement.release").await.len(), 1);
    for c in two {
        let delivered = env.app.store.list_class_announcements(*c, 50).await.expect("list");
        assert!(delivered.iter().any(|a| a.body.contains("контрольная работа по алгебре")));
    }
    // Releasing twice is explained, not repeated.
    let again = admin
        .request(
            reqwest::Method::POST,
            &env.url(&format!("/announcements/{id}/release")),
            Some(&[("csrf", &token)]),
            &[],
        )
        .await;
    assert_eq!(again.status, 422);
    assert_eq!(env.audit("announcement.release").await.len(), 1);
}

/// The same paths on PostgreSQL (skipped without `ZHURNAL_TEST_POSTGRES_URL`).
#[tokio::test]
async fn the_diary_summary_and_announcements_work_on_postgres() {
    let Some(env) = Env::start_on(crate::support::Db::Postgres).await else { return };
    let class9 = class_named(&env, "9А").await;
    let teen = env.persona_uid("student-teen-1");
    let mut ct = Browser::new();
    assert_eq!(login(&env, &mut ct, "class-teacher-1").await.status, 200);
    let summary = ct.get(&env.url(&format!("/classes/{}/summary", class9.0))).await;
    assert_eq!(summary.status, 200);
    assert_eq!(env.audit("contacts.view").await.len(), 1);
    let sent = post_announcement(&env, &mut ct, &[class9], "Собрание в пятницу").await;
    assert!(sent.body.contains("Объявление отправлено."), "{}", sent.body);
    let mut p = Browser::new();
    assert_eq!(login(&env, &mut p, "parent-1").await.status, 200);
    let (status, week) = json(&mut p, &env.url(&format!("/api/v1/diary/{teen}/week"))).await;
    assert_eq!(status, 200);
    assert_eq!(week["announcements"][0]["body"], "Собрание в пятницу");
    let (status, marks) = json(&mut p, &env.url(&format!("/api/v1/diary/{teen}/marks"))).await;
    assert_eq!(status, 200);
    assert!(marks["subjects"].as_array().is_some_and(|s| !s.is_empty()));
    let (status, feed) = json(&mut p, &env.url(&format!("/api/v1/diary/{teen}/feed"))).await;
    assert_eq!(status, 200);
    assert!(feed["since"].is_null());
    let (_, again) = json(&mut p, &env.url(&format!("/api/v1/diary/{teen}/feed"))).await;
    assert!(again["since"].is_i64());
}
