//! School administration, role grants, the year rollover and reports, over HTTP.

use std::io::Read;

use chrono::{TimeZone, Utc};
use zhurnal_domain::{Role, SchoolId};

use crate::support::{Browser, Db, Env, Page, csrf, login};

async fn school(env: &Env, ext: &str) -> SchoolId {
    env.app.store.find_school_by_external_id(ext).await.expect("query").expect("school").id
}

async fn post(env: &Env, b: &mut Browser, path: &str, fields: &[(&str, &str)]) -> Page {
    let token = csrf(env, b).await;
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &token));
    b.request(reqwest::Method::POST, &env.url(path), Some(&form), &[]).await
}

/// Raw bytes of a download, with the browser's cookies.
async fn download(env: &Env, b: &Browser, path: &str) -> (u16, String, Vec<u8>) {
    let cookies = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
    let res = reqwest::Client::new()
        .get(env.url(path))
        .header("cookie", cookies)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    let mime = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, mime, res.bytes().await.expect("body").to_vec())
}

async fn class_named(env: &Env, school: SchoolId, name: &str) -> Option<zhurnal_store::ClassRow> {
    let year = env.app.current_year(school).await.expect("year").expect("a year");
    env.app
        .store
        .list_classes(school, year.id)
        .await
        .expect("classes")
        .into_iter()
        .find(|c| c.name() == name)
}

#[tokio::test]
async fn a_school_admin_runs_classes_students_and_the_timetable() {
    school_administration(Db::Sqlite).await;
}

#[tokio::test]
async fn a_school_admin_runs_classes_students_and_the_timetable_on_postgres() {
    school_administration(Db::Postgres).await;
}

async fn school_administration(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let s1 = school(&env, "demo-school-1").await;
    let s2 = school(&env, "demo-school-2").await;
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let page = b.get(&env.url(&format!("/admin/schools/{s1}"))).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Расписание") && page.body.contains("9А"));
    // Another school is refused, for reading and for writing.
    assert_eq!(b.get(&env.url(&format!("/admin/schools/{s2}"))).await.status, 403);
    let foreign = post(
        &env,
        &mut b,
        &format!("/admin/schools/{s2}/classes"),
        &[("grade", "5"), ("letter", "Я")],
    )
    .await;
    assert_eq!(foreign.status, 403, "{}", foreign.body);
    assert!(class_named(&env, s2, "5Я").await.is_none());

    // A class.
    let created = post(
        &env,
        &mut b,
        &format!("/admin/schools/{s1}/classes"),
        &[("grade", "5"), ("letter", "я")],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert!(created.body.contains("Класс 5Я создан"), "{}", created.body);
    let class = class_named(&env, s1, "5Я").await.expect("created");
    assert_eq!(env.audit("class.create").await.len(), 1);

    // Admission with a valid СНИЛС; the number is stored as HMAC + ciphertext only.
    let snils = zhurnal_domain::Snils::from_number(765_432_101);
    let admit = |snils: String| {
        vec![
            ("last_name".to_string(), "Новикова".to_string()),
            ("first_name".to_string(), "Ника".to_string()),
            ("birth_date".to_string(), "2015-03-04".to_string()),
            ("gender".to_string(), "F".to_string()),
            ("snils".to_string(), snils),
        ]
    };
    let fields = admit(snils.formatted());
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ok = post(&env, &mut b, &format!("/admin/classes/{}/students", class.id), &refs).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains("Новикова Ника"), "{}", ok.body);
    let person = env
        .app
        .store
        .find_person_by_snils_hmac(&env.app.vault.match_key(&snils))
        .await
        .expect("query")
        .expect("admitted person");
    let cipher = person.snils_cipher.clone().expect("ciphertext");
    assert_eq!(env.app.vault.decrypt(&cipher, &person.uid).expect("decrypts"), snils);
    let admits = env.audit("student.admit").await;
    assert_eq!(admits.len(), 1);
    assert!(!admits[0].event.details.to_string().contains(snils.digits()));

    // A bad checksum: a clear message and nothing written.
    let mut digits = snils.digits().to_string();
    let last = if digits.ends_with('0') { '1' } else { '0' };
    digits.pop();
    digits.push(last);
    let fields = admit(digits);
    let refs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = post(&env, &mut b, &format!("/admin/classes/{}/students", class.id), &refs).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    assert!(refused.body.contains("контрольное число СНИЛС не сходится"), "{}", refused.body);
    assert_eq!(env.audit("student.admit").await.len(), 1);
    let today = env.app.today();
    assert_eq!(env.app.store.list_roster(class.id, today).await.expect("roster").len(), 1);

    // Transfer to 5А and then departure.
    let a5 = class_named(&env, s1, "5А").await.expect("5А");
    let enrolment = env.app.store.list_enrolments(person.id).await.expect("enrolments")[0].id;
    let moved = post(
        &env,
        &mut b,
        &format!("/admin/enrolments/{enrolment}/transfer"),
        &[("to_class", &a5.id.to_string()), ("date", &today.to_string())],
    )
    .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert!(moved.body.contains("Ученик переведён"));
    let roster = env.app.store.list_roster(a5.id, today).await.expect("roster");
    let new_enrolment =
        roster.iter().find(|e| e.person.id == person.id).expect("in 5А").enrolment_id;
    let gone = post(
        &env,
        &mut b,
        &format!("/admin/enrolments/{new_enrolment}/depart"),
        &[("date", &today.to_string()), ("kind", "transfer"), ("reason", "переезд в другой город")],
    )
    .await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    let e = env.app.store.get_enrolment(new_enrolment).await.expect("enrolment");
    assert_eq!(e.departed_on, Some(today));
    assert_eq!(e.departure_kind, Some(zhurnal_store::DepartureKind::Transfer));
    assert_eq!(env.audit("student.transfer").await.len(), 1);
    assert_eq!(env.audit("student.depart").await.len(), 1);

    // Timetable: a free slot is added, a double-booking is refused with a clear message.
    let year = env.app.current_year(s1).await.expect("y").expect("year");
    let assignments = env.app.store.list_assignments(s1, year.id).await.expect("assignments");
    let first = assignments[0].clone();
    let same_teacher = assignments
        .iter()
        .find(|a| a.teacher_id == first.teacher_id && a.class_id != first.class_id)
        .or_else(|| assignments.iter().find(|a| a.class_id == first.class_id && a.id != first.id))
        .expect("another assignment that clashes")
        .clone();
    let slots_before = env.app.store.list_slots(s1, year.id).await.expect("slots").len();
    let added = post(
        &env,
        &mut b,
        &format!("/admin/schools/{s1}/slots"),
        &[
            ("assignment", &first.id.to_string()),
            ("weekday", "6"),
            ("lesson_number", "9"),
            ("room", "101"),
        ],
    )
    .await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert!(added.body.contains("Урок добавлен"), "{}", added.body);
    let clash = post(
        &env,
        &mut b,
        &format!("/admin/schools/{s1}/slots"),
        &[("assignment", &same_teacher.id.to_string()), ("weekday", "6"), ("lesson_number", "9")],
    )
    .await;
    assert_eq!(clash.status, 422, "{}", clash.body);
    assert!(clash.body.contains("Накладка в расписании"), "{}", clash.body);
    assert_eq!(env.app.store.list_slots(s1, year.id).await.expect("slots").len(), slots_before + 1);
}

#[tokio::test]
async fn role_grants_stay_within_the_grantors_scope() {
    let env = Env::start().await;
    let s1 = school(&env, "demo-school-1").await;
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let page = b.get(&env.url("/admin/roles")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let snils = zhurnal_domain::Snils::from_number(765_000_111).formatted();
    let scope = format!("school:{s1}");
    let granted = post(
        &env,
        &mut b,
        "/admin/roles/grant",
        &[
            ("snils", &snils),
            ("role", "teacher"),
            ("scope", &scope),
            ("last_name", "Смирнова"),
            ("first_name", "Ольга"),
        ],
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert!(granted.body.contains("Смирнова Ольга"), "{}", granted.body);
    let teachers = env.app.store.list_people_with_role(s1, Role::Teacher).await.expect("teachers");
    let hired = teachers.iter().find(|p| p.last_name == "Смирнова").expect("granted");
    let grants = env.audit("role.grant").await;
    assert_eq!(grants.last().expect("audited").event.target_id, Some(hired.id.to_string()));

    // Above one's own scope: refused and nothing written.
    let region = env.app.store.list_regions().await.expect("regions")[0].id;
    let regional = post(
        &env,
        &mut b,
        "/admin/roles/grant",
        &[("snils", &snils), ("role", "regional-admin"), ("scope", &format!("region:{region}"))],
    )
    .await;
    assert_eq!(regional.status, 403, "{}", regional.body);
    let sneaky = post(
        &env,
        &mut b,
        "/admin/roles/grant",
        &[("snils", &snils), ("role", "regional-admin"), ("scope", &scope)],
    )
    .await;
    assert_eq!(sneaky.status, 403, "{}", sneaky.body);
    assert_eq!(env.audit("role.grant").await.len(), grants.len());

    let grant = env.app.store.list_role_grants(hired.id).await.expect("grants")[0].id;
    let revoked = post(&env, &mut b, &format!("/admin/roles/{grant}/revoke"), &[]).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert!(env.app.store.list_role_grants(hired.id).await.expect("grants").is_empty());
    assert_eq!(env.audit("role.revoke").await.len(), 1);

    // A teacher grants nothing.
    let mut t = Browser::new();
    login(&env, &mut t, "teacher-1").await;
    assert_eq!(t.get(&env.url("/admin/roles")).await.status, 403);
}

#[tokio::test]
async fn the_year_rollover_is_previewed_then_applied() {
    // The test leaps from November to July; in life the staff log in all spring, so the
    // dormancy block (3 months without a login) must not catch them in between.
    let env = Env::start_with(Db::Sqlite, |cfg| cfg.security.dormant_after_days = 365)
        .await
        .expect("SQLite");
    let s1 = school(&env, "demo-school-1").await;
    // Before the year ends the plan is shown but cannot be applied.
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let early = b.get(&env.url("/admin/rollover")).await;
    assert_eq!(early.status, 200, "{}", early.body);
    assert!(
        early.body.contains("11А: выпуск") && early.body.contains("9А → 10А"),
        "{}",
        early.body
    );
    let refused =
        post(&env, &mut b, "/admin/rollover", &[("school", &s1.to_string()), ("confirm", "yes")])
            .await;
    assert_eq!(refused.status, 422, "{}", refused.body);

    // In July the year is over.
    let july = Utc.with_ymd_and_hms(2027, 7, 1, 9, 0, 0).single().expect("instant");
    env.clock.set(july);
    env.sim.set_clock(Some(july));
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let old_year = env.app.current_year(s1).await.expect("y").expect("year");
    let teen = env
        .app
        .store
        .find_person_by_uid(&env.persona_uid("student-teen-1"))
        .await
        .expect("q")
        .expect("teen");
    let preview = post(
        &env,
        &mut b,
        "/admin/rollover",
        &[("school", &s1.to_string()), ("leaving", &teen.id.to_string()), ("confirm", "no")],
    )
    .await;
    assert_eq!(preview.status, 200, "{}", preview.body);
    assert!(preview.body.contains("Подтвердить переход"));
    assert!(preview.body.contains("<strong id=\"leavers\">1</strong>"), "{}", preview.body);
    let applied = post(
        &env,
        &mut b,
        "/admin/rollover",
        &[("school", &s1.to_string()), ("leaving", &teen.id.to_string()), ("confirm", "yes")],
    )
    .await;
    assert_eq!(applied.status, 200, "{}", applied.body);
    assert!(applied.body.contains("Переход на новый учебный год выполнен"), "{}", applied.body);
    assert!(env.app.store.find_year_archived_at(old_year.id).await.expect("y").is_some());
    let years = env.app.store.list_academic_years(s1).await.expect("years");
    let new_year = years.iter().find(|y| y.name == "2027/2028").expect("new year");
    let classes = env.app.store.list_classes(s1, new_year.id).await.expect("classes");
    assert!(classes.iter().any(|c| c.name() == "10А"));
    // The teaching load of 9А goes with it into 10А, except its groups' (re-formed in September).
    let load = |year, name: &'static str| {
        let store = env.app.store.clone();
        async move {
            let mut v = Vec::new();
            for a in store.list_assignments(s1, year).await.expect("assignments") {
                if a.class_name == name {
                    let whole_class =
                        store.get_journal_assignment(a.id).await.expect("a").group_id.is_none();
                    v.push((a.teacher_id, a.subject_id, whole_class));
                }
            }
            v.sort();
            v
        }
    };
    let nine_a = load(old_year.id, "9А").await;
    assert!(nine_a.iter().any(|a| !a.2), "the demo's 9А has group lessons");
    let whole_class: Vec<_> = nine_a.into_iter().filter(|a| a.2).collect();
    assert!(!whole_class.is_empty());
    assert_eq!(load(new_year.id, "10А").await, whole_class);
    assert!(!classes.iter().any(|c| c.grade == 1), "nobody is promoted into grade 1");
    let teen_enrolments = env.app.store.list_enrolments(teen.id).await.expect("e");
    assert_eq!(teen_enrolments.len(), 1, "a leaver gets no new enrolment");
    assert_eq!(teen_enrolments[0].departure_kind, Some(zhurnal_store::DepartureKind::Graduation));
    assert_eq!(env.audit("rollover.apply").await.len(), 1);
    // The archived year is the school's record: its journals show but take no more marks.
    let teacher = env
        .app
        .store
        .find_person_by_uid(&env.persona_uid("teacher-1"))
        .await
        .expect("q")
        .expect("teacher");
    let assignment = env
        .app
        .store
        .list_assignments(s1, old_year.id)
        .await
        .expect("assignments")
        .into_iter()
        .find(|a| a.teacher_id == teacher.id)
        .expect("an assignment of teacher-1 in the old year");
    let mut t = Browser::new();
    login(&env, &mut t, "teacher-1").await;
    let grid = t.get(&env.url(&format!("/api/v1/journal/{}", assignment.id))).await;
    assert_eq!(grid.status, 200, "the old journal still reads: {}", grid.body);
    let grid: serde_json::Value = serde_json::from_str(&grid.body).expect("json");
    let student = grid["students"][0]["id"].as_str().expect("a student").to_string();
    let token = csrf(&env, &mut t).await;
    let refused = reqwest::Client::new()
        .put(env.url(&format!("/api/v1/journal/{}/final-marks", assignment.id)))
        .header(
            "cookie",
            t.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "),
        )
        .header("x-csrf-token", token)
        .header("origin", env.base.as_str())
        .json(&serde_json::json!({ "student": student, "kind": "annual", "value": "5" }))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status().as_u16(), 422);
    let body: serde_json::Value = refused.json().await.expect("problem");
    assert!(body["detail"].as_str().is_some_and(|d| d.contains("в архиве")), "{body}");
    // The administration now works in the new year (classes for it can be created in July).
    let page = b.get(&env.url(&format!("/admin/schools/{s1}"))).await;
    assert!(page.body.contains("Учебный год: 2027/2028"), "{}", page.body);
    let first = post(
        &env,
        &mut b,
        &format!("/admin/schools/{s1}/classes"),
        &[("grade", "1"), ("letter", "А")],
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        env.app
            .store
            .list_classes(s1, new_year.id)
            .await
            .expect("classes")
            .iter()
            .any(|c| c.name() == "1А")
    );
    // Applying twice is refused.
    let again =
        post(&env, &mut b, "/admin/rollover", &[("school", &s1.to_string()), ("confirm", "yes")])
            .await;
    assert_ne!(again.status, 200);
}

#[tokio::test]
async fn reports_render_download_and_refuse_outsiders() {
    let env = Env::start().await;
    let s1 = school(&env, "demo-school-1").await;
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    for kind in ["progress", "failing", "attendance", "filling"] {
        let page = b.get(&env.url(&format!("/reports?school={s1}&kind={kind}"))).await;
        assert_eq!(page.status, 200, "{kind}: {}", page.body);
        assert!(page.body.contains("<table>"), "{kind}");
    }
    let progress = b.get(&env.url(&format!("/reports?school={s1}&kind=progress"))).await;
    assert!(
        progress.body.contains("Успеваемость, %") && progress.body.contains("9А"),
        "{}",
        progress.body
    );
    let year = b.get(&env.url(&format!("/reports?school={s1}&kind=attendance&period=0"))).await;
    assert!(year.body.contains("учебный год"), "{}", year.body);

    let (status, mime, xlsx) = download(&env, &b, &format!("/reports/{s1}/progress/xlsx")).await;
    assert_eq!(status, 200);
    assert!(mime.contains("spreadsheetml"), "{mime}");
    assert_eq!(&xlsx[..4], b"PK\x03\x04");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).expect("a zip");
    let mut strings = String::new();
    zip.by_name("xl/sharedStrings.xml")
        .expect("shared strings")
        .read_to_string(&mut strings)
        .expect("utf-8");
    assert!(strings.contains("9А") && strings.contains("Успеваемость"), "{strings}");

    // A list that names students leaves only with a stated purpose and a recent login.
    let (status, _, _) = download(&env, &b, &format!("/reports/{s1}/failing/pdf")).await;
    assert_eq!(status, 422, "no purpose given");
    for kind in ["progress", "failing", "attendance", "filling"] {
        let (status, mime, pdf) =
            download(&env, &b, &format!("/reports/{s1}/{kind}/pdf?reason=педсовет%2025.11")).await;
        assert_eq!(status, 200, "{kind}");
        assert_eq!(mime, "application/pdf");
        assert!(pdf.starts_with(b"%PDF"), "{kind}");
        assert!(String::from_utf8_lossy(&pdf).contains("/Type/Page/"), "{kind} has pages");
    }
    let nine_a = class_named(&env, s1, "9А").await.expect("9А");
    let archive_url = format!("/reports/classes/{}/archive.pdf?reason=архив%20школы", nine_a.id);
    let (status, _, archive) = download(&env, &b, &archive_url).await;
    assert_eq!(status, 200);
    assert!(archive.starts_with(b"%PDF"));
    assert!(
        String::from_utf8_lossy(&archive).matches("/Type/Page/").count() >= 2,
        "a multi-page archive"
    );
    let exports = env.audit("report.export").await;
    assert_eq!(exports.len(), 6);
    let archived = exports.iter().find(|r| r.event.target_id.as_deref() == Some("class_archive"));
    let details = &archived.expect("the archive export").event.details;
    assert_eq!(details["reason"], "архив школы");
    assert!(details["persons"].as_i64().is_some_and(|n| n >= 20), "{details}");
    // A login older than the configured 15 minutes is not enough for personal data.
    env.clock.set(env.clock_now() + chrono::Duration::minutes(16));
    let (status, _, body) = download(&env, &b, &archive_url).await;
    assert_eq!(status, 403, "a stale login");
    assert!(String::from_utf8_lossy(&body).contains("недавний вход"));
    let (status, _, _) = download(&env, &b, &format!("/reports/{s1}/progress/pdf")).await;
    assert_eq!(status, 200, "aggregates need no fresh login");
    env.clock.set(env.clock_now() - chrono::Duration::minutes(16));

    // Officials see aggregates of their territory, never the named lists.
    let mut r = Browser::new();
    login(&env, &mut r, "regional-admin-1").await;
    let territory = r.get(&env.url("/reports")).await;
    assert_eq!(territory.status, 200, "{}", territory.body);
    assert!(territory.body.contains("Сводка по территории"));
    assert_eq!(r.get(&env.url(&format!("/reports?school={s1}&kind=progress"))).await.status, 200);
    assert_eq!(r.get(&env.url(&format!("/reports?school={s1}&kind=failing"))).await.status, 403);
    let (status, _, _) = download(&env, &r, &format!("/reports/{s1}/failing/xlsx")).await;
    assert_eq!(status, 403);
    let (status, _, pdf) = download(&env, &r, "/reports/territory/pdf").await;
    assert_eq!(status, 200);
    assert!(pdf.starts_with(b"%PDF"));

    // Parents and teachers get no reports.
    for persona in ["parent-1", "teacher-1"] {
        let mut p = Browser::new();
        login(&env, &mut p, persona).await;
        assert_eq!(p.get(&env.url("/reports")).await.status, 403, "{persona}");
        assert_eq!(
            p.get(&env.url(&format!("/reports?school={s1}"))).await.status,
            403,
            "{persona}"
        );
        let (status, _, _) = download(&env, &p, &format!("/reports/{s1}/progress/pdf")).await;
        assert_eq!(status, 403, "{persona}");
        let (status, _, _) =
            download(&env, &p, &format!("/reports/classes/{}/archive.pdf", nine_a.id)).await;
        assert_eq!(status, 403, "{persona}");
    }
}

#[tokio::test]
async fn a_report_waits_for_a_free_place_and_then_is_told_to_come_back() {
    let env = Env::start_with(Db::Sqlite, |cfg| {
        cfg.web.reports_at_once = std::num::NonZeroUsize::MIN;
        cfg.web.report_wait_seconds = 1;
    })
    .await
    .expect("SQLite");
    let s1 = school(&env, "demo-school-1").await;
    let mut b = Browser::new();
    login(&env, &mut b, "school-admin-1").await;
    let export = format!("/reports/{s1}/progress/xlsx");

    // The one place is taken (as by another admin's long report): a request waits for the
    // configured second, then gets 503 and a message saying to come back, not an error page.
    let place = env.app.report_place().await.expect("the free place");
    let page = b.get(&env.url(&format!("/reports?school={s1}&kind=progress"))).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("Повторите запрос через минуту"), "{}", page.body);
    let (status, _, body) = download(&env, &b, &export).await;
    assert_eq!(status, 503);
    assert!(String::from_utf8_lossy(&body).contains("не больше 1"));
    assert!(env.audit("report.export").await.is_empty(), "nothing left the system");

    // A request that arrives while the place is taken gets it as soon as it frees.
    let waiting = download(&env, &b, &export);
    let free_soon = async move {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(place);
    };
    let ((status, mime, _), ()) = tokio::join!(waiting, free_soon);
    assert_eq!(status, 200);
    assert!(mime.contains("spreadsheetml"), "{mime}");
    assert_eq!(env.audit("report.export").await.len(), 1);
}
