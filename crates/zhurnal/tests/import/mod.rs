//! Area `import` (issue 7): the Zhurnal CSV round trip of the demo school, OneRoster samples
//! (valid and broken), idempotent re-runs, retention with a controllable clock, proven
//! deletion (canary search of the raw database files), the purge ledger after a restore of an
//! older backup, purge of import sources and the act of destruction rendered to PNG.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use zhurnal::config::Config;
use zhurnal::{build_app_with_clock, open_store};
use zhurnal_app::import::{
    Format, ImportOutcome, ImportSummary, ImportedBy, Issue, Source, uid_for_import,
};
use zhurnal_app::purge::{DestroyedBy, Ledger, LedgerWhat, RetentionConfig};
use zhurnal_app::reports::ReportKind;
use zhurnal_app::{App, FixedClock};
use zhurnal_domain::Snils;

use crate::support::{Db, Env, school_day};

/// A fresh, empty database in `dir` with its own keys, on the tests' school day.
async fn empty_app(dir: &Path) -> (Config, Arc<App>) {
    let cfg = Config { data_dir: dir.to_path_buf(), ..Config::default() };
    let keys = cfg.load_keys(true).expect("keys");
    let store =
        open_store(&cfg, Arc::new(keys.sealer().expect("sealer")), true).await.expect("store");
    let app = build_app_with_clock(&cfg, store, &keys, Arc::new(FixedClock::new(school_day())))
        .expect("app");
    (cfg, app)
}

async fn import(app: &App, format: Format, path: &Path) -> ImportOutcome {
    app.import(format, &Source::at(path).expect("source"), ImportedBy::Cli).await.expect("import")
}

fn applied(o: ImportOutcome) -> ImportSummary {
    match o {
        ImportOutcome::Applied(s) => s,
        ImportOutcome::Invalid { issues, .. } => {
            panic!(
                "import refused:\n{}",
                issues.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n")
            )
        }
    }
}

fn refused(o: ImportOutcome) -> Vec<Issue> {
    match o {
        ImportOutcome::Invalid { issues, .. } => issues,
        ImportOutcome::Applied(s) => panic!("a broken input was applied: {s:?}"),
    }
}

fn read_dir_sorted(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let p = e.expect("entry").path();
            (
                p.file_name().expect("name").to_string_lossy().into_owned(),
                std::fs::read_to_string(&p).expect("utf-8"),
            )
        })
        .collect();
    files.sort();
    files
}

async fn reports(app: &App, admin_uid: &str) -> Vec<serde_json::Value> {
    let admin =
        app.store.find_person_by_uid(admin_uid).await.expect("lookup").expect("school admin");
    let actor = app.actor(admin.id).await.expect("actor");
    let school = app
        .store
        .find_school_by_external_id(zhurnal::demo::MAIN_SCHOOL)
        .await
        .expect("q")
        .expect("school");
    let school = app.report_school(&actor, school.id).await.expect("report school");
    let mut out = Vec::new();
    for period in [None, Some(0)] {
        let range = app.report_range(school.clone(), period).await.expect("range");
        for kind in ReportKind::ALL {
            let doc = app.school_report(kind, &range).await.expect("report");
            out.push(serde_json::to_value(&doc).expect("json"));
        }
    }
    out
}

#[tokio::test]
async fn the_demo_school_round_trips_through_the_zhurnal_format_and_a_rerun_changes_nothing() {
    let env = Env::start().await;
    let finals = set_final_marks(&env).await;
    let work = tempfile::tempdir().expect("dir");
    let exported = work.path().join("export");
    let rows =
        env.app.export_school_csv(zhurnal::demo::MAIN_SCHOOL, &exported).await.expect("export");
    assert!(rows > 1000, "the demo school is not small: {rows} rows");
    let persons = std::fs::read_to_string(exported.join("persons.csv")).expect("persons");
    assert!(persons.lines().count() > 100);

    let target = work.path().join("target");
    let (_, app2) = empty_app(&target).await;
    let first = applied(import(&app2, Format::ZhurnalCsv, &exported).await);
    assert!(first.stats.inserted > 1000, "{:?}", first.stats);
    // Every class of the school's year is queued for its Сферум chat with the import (the
    // delivery decides which need one); a re-run that changes nothing queues nothing.
    let chat_syncs = |app: &zhurnal_app::App| {
        let store = app.store.clone();
        async move {
            let events = store.list_outbox(None, None, 100_000).await.expect("outbox");
            events
                .into_iter()
                .filter(|e| e.topic == "sferum.class")
                .map(|e| e.subject)
                .collect::<std::collections::HashSet<_>>()
        }
    };
    let classes = std::fs::read_to_string(exported.join("classes.csv")).expect("classes");
    let queued = chat_syncs(&app2).await;
    assert_eq!(queued.len(), classes.lines().count() - 1, "{queued:?}");
    let second = applied(import(&app2, Format::ZhurnalCsv, &exported).await);
    assert!(second.stats.changed_nothing(), "a re-import changed rows: {:?}", second.stats);
    assert_eq!(chat_syncs(&app2).await.len(), queued.len());
    assert_eq!(
        app2.store.list_outbox(None, None, 100_000).await.expect("outbox").len(),
        queued.len(),
        "one event per class, none added by the re-run"
    );
    assert_eq!(
        second.stats.unchanged,
        first.stats.inserted + first.stats.updated + first.stats.unchanged
    );
    // Each run is audited once, and the second says it changed nothing.
    let mut audits = Vec::new();
    let mut after = 0;
    loop {
        let page = app2.store.list_audit(after, 1000).await.expect("audit");
        let Some(last) = page.last() else { break };
        after = last.seq;
        audits.extend(page.into_iter().filter(|r| r.event.action == "import.apply"));
    }
    assert_eq!(audits.len(), 2);
    assert_eq!(audits[1].event.details["inserted"], 0);
    assert_eq!(audits[1].event.details["updated"], 0);
    let runs = app2.store.list_import_runs().await.expect("runs");
    assert_eq!(runs.len(), 2);
    assert!(runs[1].is_verification() && !runs[0].is_verification());

    // The imported school exports to the very same files: every table came across.
    let again = work.path().join("again");
    app2.export_school_csv(zhurnal::demo::MAIN_SCHOOL, &again).await.expect("re-export");
    let (a, b) = (read_dir_sorted(&exported), read_dir_sorted(&again));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs after the round trip");
    }
    // And the reports (journal figures, attendance, filling) read the same on both.
    let admin = env.persona_uid("school-admin-1");
    assert_eq!(reports(&env.app, &admin).await, reports(&app2, &admin).await);
    // The period, annual and final marks came across (the files above compare them too).
    let fm = std::fs::read_to_string(exported.join("final_marks.csv")).expect("final marks");
    assert_eq!(fm.lines().count(), 1 + finals.len(), "{fm}");
    let school =
        app2.store.find_school_by_external_id(zhurnal::demo::MAIN_SCHOOL).await.expect("q");
    let school_id = school.expect("school").id;
    let got = app2.store.export_final_marks(school_id).await.expect("finals");
    assert_eq!(got.len(), finals.len());
    for (kind, value) in &finals {
        assert!(
            got.iter().any(|f| f.kind == *kind && f.value == *value),
            "{kind} {value}: {got:?}"
        );
    }
    // So did the correction of a mark (mark history), with its reason.
    let history = std::fs::read_to_string(exported.join("mark_history.csv")).expect("history");
    assert!(history.lines().count() >= 2 && history.contains("описка"), "{history}");
    let got = app2.store.export_mark_history(school_id).await.expect("history");
    assert!(got.iter().any(|h| h.reason.as_deref() == Some("описка")), "{got:?}");
    // The diary of a student, as the parent sees it, is the same week with the same marks.
    let parent_uid = env.persona_uid("parent-1");
    let child_uid = env.persona_uid("student-teen-1");
    let mut weeks = Vec::new();
    for app in [&env.app, &app2] {
        let parent = app.store.find_person_by_uid(&parent_uid).await.expect("q").expect("parent");
        let actor = app.actor(parent.id).await.expect("actor");
        let access = app.diary_access(&actor, &child_uid).await.expect("diary access");
        let base = zhurnal_store::NewAudit::new(app.now_micros(), "diary.view", "ok");
        let week = app.diary_week(&access, None, &base).await.expect("week");
        let mut v = serde_json::to_value(&week).expect("json");
        strip_ids(&mut v);
        weeks.push(v);
    }
    assert_eq!(weeks[0], weeks[1]);

    // A corrected mark changes no class chat (Сферум): nothing more is queued. A renamed
    // student changes the rosters: every class of the school is queued again.
    let outbox_len = |app: Arc<App>| async move {
        app.store.list_outbox(None, None, 100_000).await.expect("outbox").len()
    };
    let before = outbox_len(app2.clone()).await;
    edit_first_plain_row(&exported.join("marks.csv"), 3, |v| match v {
        "pass" => "fail",
        "fail" => "pass",
        "5" => "4",
        _ => "5",
    });
    let marks_only = applied(import(&app2, Format::ZhurnalCsv, &exported).await);
    assert_eq!(marks_only.stats.updated, 1, "{:?}", marks_only.stats);
    assert_eq!(marks_only.stats.roster_changes, 0, "{:?}", marks_only.stats);
    assert_eq!(outbox_len(app2.clone()).await, before, "a mark queued chat syncs");
    edit_first_plain_row(&exported.join("persons.csv"), 2, |_| "Переименованная");
    let renamed = applied(import(&app2, Format::ZhurnalCsv, &exported).await);
    assert_eq!(
        (renamed.stats.updated, renamed.stats.roster_changes),
        (1, 1),
        "{:?}",
        renamed.stats
    );
    assert_eq!(outbox_len(app2.clone()).await, before + queued.len());
    println!("import: round trip of the demo school, {rows} rows; re-run changed nothing");
}

/// Sets field `column` of the first data row without quotes in the CSV file at `path`.
fn edit_first_plain_row(path: &Path, column: usize, new: impl Fn(&str) -> &'static str) {
    let text = std::fs::read_to_string(path).expect("csv");
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, line)| {
            if done || i == 0 || line.contains('"') {
                return line.to_string();
            }
            done = true;
            let mut fields: Vec<&str> = line.split(',').collect();
            fields[column] = new(fields[column]);
            fields.join(",")
        })
        .collect();
    assert!(done, "{} has no plain row", path.display());
    std::fs::write(path, lines.join("\n") + "\n").expect("write csv");
}

/// A period mark, an annual and a final mark of student-teen-1 (9А) in the first subject of
/// the class, as the journal stores them; returns (kind, value) of each.
async fn set_final_marks(env: &Env) -> Vec<(String, String)> {
    use zhurnal_store::journal::{FinalMarkKind, FinalMarkWrite};
    let store = &env.app.store;
    let teen = store
        .find_person_by_uid(&env.persona_uid("student-teen-1"))
        .await
        .expect("q")
        .expect("teen");
    let class = store.list_enrolments(teen.id).await.expect("enrolments")[0].class_id;
    let a = store.list_class_assignments(class).await.expect("assignments")[0].clone();
    let ja = store.get_journal_assignment(a.id).await.expect("assignment");
    let period = store.list_periods(ja.academic_year_id).await.expect("periods")[0].period.id;
    let mut out = Vec::new();
    for (kind, code, value) in [
        (FinalMarkKind::Period(period), "period", "4"),
        (FinalMarkKind::Annual, "annual", "5"),
        (FinalMarkKind::Final, "final", "exempt"),
    ] {
        let w = FinalMarkWrite {
            student: teen.id,
            assignment: a.id,
            kind,
            value: Some(value.into()),
            author: a.teacher_id,
            at: env.app.now_micros(),
        };
        let audit = zhurnal_store::NewAudit::new(env.app.now_micros(), "journal.final_mark", "ok");
        store.set_final_mark(&w, audit).await.expect("final mark");
        out.push((code.to_string(), value.to_string()));
    }
    // And a correction of one of the pupil's marks in that subject (mark history).
    let day = |m, d| chrono::NaiveDate::from_ymd_opt(2026, m, d).expect("date");
    let marks =
        store.list_assignment_marks(a.id, day(9, 1), day(12, 31)).await.expect("marks").marks;
    let m = marks.iter().find(|m| m.student_id == teen.id).expect("a mark of the pupil").clone();
    let value = if m.value == zhurnal_domain::MarkValue::Points(5) {
        zhurnal_domain::MarkValue::Points(4)
    } else {
        zhurnal_domain::MarkValue::Points(5)
    };
    let change = zhurnal_store::journal::MarkChange {
        id: m.id,
        value,
        work_type: m.work_type_id,
        weight: m.weight,
        comment: m.comment.clone(),
        by: a.teacher_id,
        at: env.app.now_micros(),
        reason: "описка".into(),
    };
    let audit = zhurnal_store::NewAudit::new(env.app.now_micros(), "journal.mark.update", "ok");
    store.update_mark(&change, audit).await.expect("correction");
    out
}

/// Row ids differ between databases by design; everything else must match.
fn strip_ids(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| k != "id" && !k.ends_with("_id") && k != "lesson" && k != "mark");
            for x in m.values_mut() {
                strip_ids(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_ids),
        _ => {}
    }
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join(name), text).expect("write");
}

fn snils(n: u32) -> String {
    Snils::from_number(n).formatted()
}

/// A small OneRoster 1.1 set: a region, a district, a school, a year of four terms, a
/// homeroom 5А with two pupils and a parent, mathematics taught by a teacher, one graded item.
fn oneroster_sample(dir: &Path) {
    write(
        dir,
        "orgs.csv",
        "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId\n\
        or-region,active,,Тестовая область,state,,\n\
        or-district,active,,Тестовый район,district,,or-region\n\
        or-school,active,,Школа OneRoster,school,,or-district\n",
    );
    write(
        dir,
        "academicSessions.csv",
        "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear\n\
        y2026,active,,2026/2027,schoolYear,2026-09-01,2027-05-31,,2027\n\
        t1,active,,1 четверть,term,2026-09-01,2026-10-25,y2026,2027\n\
        t2,active,,2 четверть,term,2026-11-05,2026-12-28,y2026,2027\n\
        t3,active,,3 четверть,term,2027-01-09,2027-03-21,y2026,2027\n\
        t4,active,,4 четверть,term,2027-04-01,2027-05-31,y2026,2027\n",
    );
    write(
        dir,
        "courses.csv",
        "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,orgSourcedId\n\
        c-math,active,,y2026,Математика,MATH5,05,or-school\n",
    );
    write(
        dir,
        "classes.csv",
        "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,location,schoolSourcedId,termSourcedIds\n\
        hr-5a,active,,5А,05,,5А,homeroom,,or-school,y2026\n\
        math-5a,active,,Математика 5А,05,c-math,M5A,scheduled,,or-school,y2026\n",
    );
    write(
        dir,
        "users.csv",
        &format!(
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds\n\
        u-teacher,active,,true,or-school,teacher,,,Ирина,Орлова,Петровна,{},,,,\n\
        u-s1,active,,true,or-school,student,,,Пётр,Соколов,,{},,,,u-p1\n\
        u-s2,active,,true,or-school,student,,,Анна,Лебедева,,,,,,\n\
        u-p1,active,,true,or-school,parent,,,Ольга,Соколова,,{},,,,u-s1\n",
            snils(700_000_001),
            snils(700_000_002),
            snils(700_000_003)
        ),
    );
    write(
        dir,
        "enrollments.csv",
        "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,primary,beginDate,endDate\n\
        e1,active,,hr-5a,or-school,u-s1,student,false,2026-09-01,\n\
        e2,active,,hr-5a,or-school,u-s2,student,false,2026-09-01,\n\
        e3,active,,hr-5a,or-school,u-teacher,teacher,true,,\n\
        e4,active,,math-5a,or-school,u-s1,student,false,,\n\
        e5,active,,math-5a,or-school,u-s2,student,false,,\n\
        e6,active,,math-5a,or-school,u-teacher,teacher,true,,\n",
    );
    write(
        dir,
        "lineItems.csv",
        "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId,categorySourcedId,gradingPeriodSourcedId,resultValueMin,resultValueMax\n\
        li1,active,,Контрольная,,2026-11-16,2026-11-16,math-5a,,t2,1,5\n",
    );
    write(
        dir,
        "results.csv",
        "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,scoreStatus,score,scoreDate,comment\n\
        r1,active,,li1,u-s1,fully graded,5,2026-11-16,\n\
        r2,active,,li1,u-s2,fully graded,4.0,2026-11-16,\n",
    );
}

#[tokio::test]
async fn a_oneroster_sample_imports_and_a_broken_one_lists_every_error_and_changes_nothing() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let good = work.path().join("good");
    oneroster_sample(&good);
    let s = applied(import(&env.app, Format::OneRoster, &good).await);
    assert!(s.stats.inserted > 10, "{:?}", s.stats);
    assert_eq!(s.schools, vec!["or-school".to_string()]);
    let again = applied(import(&env.app, Format::OneRoster, &good).await);
    assert!(again.stats.changed_nothing(), "{:?}", again.stats);
    // The pupil is matched by СНИЛС (as at ESIA login), linked to the parent, and has a 5.
    let vault = &env.app.vault;
    let pupil = env
        .app
        .store
        .find_person_by_snils_hmac(
            &vault.match_key(&Snils::parse(&snils(700_000_002)).expect("snils")),
        )
        .await
        .expect("q")
        .expect("pupil registered");
    assert_eq!(pupil.last_name, "Соколов");
    let parent = env
        .app
        .store
        .find_person_by_snils_hmac(
            &vault.match_key(&Snils::parse(&snils(700_000_003)).expect("snils")),
        )
        .await
        .expect("q")
        .expect("parent registered");
    let children = env.app.store.list_children(parent.id).await.expect("children");
    assert_eq!(children.len(), 1);
    let marks = env
        .app
        .store
        .list_student_marks(
            pupil.id,
            chrono::NaiveDate::from_ymd_opt(2026, 9, 1).expect("d"),
            chrono::NaiveDate::from_ymd_opt(2027, 5, 31).expect("d"),
        )
        .await
        .expect("marks");
    assert_eq!(marks.len(), 1);
    assert_eq!(marks[0].value.code(), "5");

    // The broken set: a bad СНИЛС checksum, an unknown class, a duplicate person, a date
    // outside the year and a score off the scale — all reported, nothing written.
    let bad = work.path().join("bad");
    oneroster_sample(&bad);
    let users = std::fs::read_to_string(bad.join("users.csv")).expect("users");
    let broken_snils = snils(700_000_009);
    let wrong = format!(
        "{}{}",
        &broken_snils[..broken_snils.len() - 2],
        if broken_snils.ends_with("00") { "01" } else { "00" }
    );
    write(
        &bad,
        "users.csv",
        &format!(
            "{users}u-s3,active,,true,or-school,student,,,Иван,Новый,,{wrong},,,,\nu-s2,active,,true,or-school,student,,,Анна,Дубль,,,,,,\n"
        ),
    );
    let enrol = std::fs::read_to_string(bad.join("enrollments.csv")).expect("enrol");
    write(
        &bad,
        "enrollments.csv",
        &format!("{enrol}e7,active,,hr-9z,or-school,u-s2,student,false,,\n"),
    );
    // 21 works on one day: one more than the lessons of a day (line 23).
    let crowded: String =
        (0..21).map(|k| format!("lx{k},active,,Работа,,2026-11-17,,math-5a\n")).collect();
    write(
        &bad,
        "lineItems.csv",
        &format!(
            "sourcedId,status,dateLastModified,title,description,assignDate,dueDate,classSourcedId\nli1,active,,Контрольная,,2025-01-10,,math-5a\n{crowded}"
        ),
    );
    write(
        &bad,
        "results.csv",
        "sourcedId,status,dateLastModified,lineItemSourcedId,studentSourcedId,scoreStatus,score\nr1,active,,li1,u-s1,,7\n",
    );
    let audit_before = env.app.store.list_audit(0, 1_000_000).await.expect("audit").len();
    let issues = refused(import(&env.app, Format::OneRoster, &bad).await);
    let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    let has = |file: &str, row: u64, column: &str, words: &str| {
        issues.iter().any(|i| {
            i.file == file && i.row == row && i.column == column && i.message.contains(words)
        })
    };
    assert!(has("users.csv", 6, "identifier", "контрольное число"), "{text:#?}");
    assert!(has("users.csv", 7, "sourcedId", "второй раз"), "{text:#?}");
    assert!(has("enrollments.csv", 8, "classSourcedId", "hr-9z"), "{text:#?}");
    assert!(has("lineItems.csv", 2, "assignDate", "вне учебного года"), "{text:#?}");
    assert!(has("results.csv", 2, "score", "от 1 до 5"), "{text:#?}");
    assert!(has("lineItems.csv", 23, "assignDate", "больше 20 работ"), "{text:#?}");
    assert!(!has("lineItems.csv", 22, "assignDate", "больше 20 работ"), "{text:#?}");
    assert_eq!(
        env.app.store.list_audit(0, 1_000_000).await.expect("audit").len(),
        audit_before,
        "nothing written"
    );
    println!(
        "import: OneRoster sample imported, broken sample refused with {} errors",
        issues.len()
    );
}

/// What [`oneroster_region`] writes for each school.
const REGION_PUPILS: usize = 20;
const REGION_ITEMS: usize = 11;

/// A OneRoster region larger than one part of the load: `schools` schools, each with two
/// homerooms 5А and 5Б of [`REGION_PUPILS`] pupils, a parent per pupil (the link named by the
/// pupil for even pupils, by the parent for odd ones), the homeroom teacher teaching
/// mathematics, and [`REGION_ITEMS`] graded items per homeroom (two on the first day), every
/// pupil graded on each.
fn oneroster_region(dir: &Path, schools: usize) {
    let mut orgs = String::from(
        "sourcedId,name,type,parentSourcedId\nrg,Область,state,\nrg-d,Район,district,rg\n",
    );
    let mut courses = String::from("sourcedId,title,orgSourcedId\n");
    let mut classes = String::from(
        "sourcedId,title,grades,courseSourcedId,classCode,classType,schoolSourcedId,termSourcedIds\n",
    );
    let mut users = String::from(
        "sourcedId,orgSourcedIds,role,givenName,familyName,identifier,agentSourcedIds\n",
    );
    let mut enrols =
        String::from("sourcedId,classSourcedId,userSourcedId,role,primary,beginDate\n");
    let mut items = String::from("sourcedId,title,assignDate,classSourcedId\n");
    let mut results = String::from("sourcedId,lineItemSourcedId,studentSourcedId,score\n");
    let mut n = 0u32;
    for s in 0..schools {
        let school = format!("rg-s{s}");
        orgs += &format!("{school},Школа {s},school,rg-d\n");
        courses += &format!("math-{s},Математика,{school}\n");
        for (h, letter) in ["А", "Б"].iter().enumerate() {
            let (hr, math, teacher) =
                (format!("hr-{s}-{h}"), format!("math-{s}-{h}"), format!("t-{s}-{h}"));
            classes += &format!("{hr},5{letter},05,,5{letter},homeroom,{school},y\n");
            classes += &format!("{math},Математика 5{letter},05,math-{s},M,scheduled,{school},y\n");
            users += &format!("{teacher},{school},teacher,Учитель,Номер{s}{h},,\n");
            enrols += &format!("e-{hr}-{teacher},{hr},{teacher},teacher,true,\n");
            enrols += &format!("e-{math}-{teacher},{math},{teacher},teacher,true,\n");
            for i in 0..REGION_PUPILS {
                let (pupil, parent) = (format!("p-{s}-{h}-{i}"), format!("g-{s}-{h}-{i}"));
                n += 1;
                let (to_parent, to_pupil) =
                    if i % 2 == 0 { (parent.as_str(), "") } else { ("", pupil.as_str()) };
                users += &format!(
                    "{pupil},{school},student,Ученик,Фамилия{n},{},{to_parent}\n",
                    snils(800_000_000 + n)
                );
                users += &format!("{parent},{school},parent,Родитель,Фамилия{n},,{to_pupil}\n");
                enrols += &format!("e-{hr}-{pupil},{hr},{pupil},student,false,2026-09-01\n");
                enrols += &format!("e-{math}-{pupil},{math},{pupil},student,false,\n");
            }
            for d in 0..REGION_ITEMS {
                let item = format!("li-{s}-{h}-{d}");
                let day = 7 + d.saturating_sub(1);
                items += &format!("{item},Работа {d},2026-09-{day:02},{math}\n");
                for i in 0..REGION_PUPILS {
                    results += &format!("r-{item}-{i},{item},p-{s}-{h}-{i},{}\n", (i + d) % 5 + 1);
                }
            }
        }
    }
    write(dir, "orgs.csv", &orgs);
    write(
        dir,
        "academicSessions.csv",
        "sourcedId,title,type,startDate,endDate,parentSourcedId\n\
        y,2026/2027,schoolYear,2026-09-01,2027-05-31,\n\
        y1,1 полугодие,semester,2026-09-01,2026-12-28,y\n\
        y2,2 полугодие,semester,2027-01-09,2027-05-31,y\n",
    );
    write(dir, "courses.csv", &courses);
    write(dir, "classes.csv", &classes);
    write(dir, "users.csv", &users);
    write(dir, "enrollments.csv", &enrols);
    write(dir, "lineItems.csv", &items);
    write(dir, "results.csv", &results);
}

/// Every record of a part refers only to rows of earlier parts or of the same part (the
/// load writes part after part, each upserting by the external ids it names).
fn check_part_order(parts: &[zhurnal_app::import::zcsv::Parsed]) {
    use std::collections::HashSet;
    let (mut persons, mut classes, mut assignments, mut lessons) =
        (HashSet::new(), HashSet::new(), HashSet::new(), HashSet::new());
    for (k, part) in parts.iter().enumerate() {
        let b = &part.batch;
        persons.extend(b.persons.iter().map(|p| p.external_id.clone()));
        classes.extend(b.classes.iter().map(|c| c.external_id.clone()));
        assignments.extend(b.assignments.iter().map(|a| a.external_id.clone()));
        lessons.extend(b.lessons.iter().map(|l| l.external_id.clone()));
        let refs = b
            .classes
            .iter()
            .filter_map(|c| c.class_teacher.as_ref().map(|t| (&persons, t)))
            .chain(b.enrolments.iter().flat_map(|e| [(&persons, &e.student), (&classes, &e.class)]))
            .chain(
                b.guardianships.iter().flat_map(|g| [(&persons, &g.parent), (&persons, &g.child)]),
            )
            .chain(b.staff_roles.iter().map(|r| (&persons, &r.person)))
            .chain(
                b.assignments.iter().flat_map(|a| [(&persons, &a.teacher), (&classes, &a.class)]),
            )
            .chain(b.lessons.iter().map(|l| (&assignments, &l.assignment)))
            .chain(b.marks.iter().flat_map(|m| {
                [(&lessons, &m.lesson), (&persons, &m.student), (&persons, &m.author)]
            }));
        for (known, id) in refs {
            assert!(known.contains(id), "part {k} refers to «{id}» before it is written");
        }
    }
}

async fn oneroster_region_case(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("region");
    let schools = 4;
    oneroster_region(&set, schools);
    let source = Source::at(&set).expect("source");

    // Read in small parts, the set arrives in dependency order and whole.
    let mut stream =
        zhurnal_app::import::oneroster::Stream::new(&source, true).expect("scratch file");
    let mut parts = Vec::new();
    while let Some(part) = stream.next_part(250, &zhurnal_app::import::NoProgress).expect("read") {
        parts.push(part);
    }
    assert!(stream.issues().is_empty(), "{:?}", stream.issues().list);
    assert!(parts.len() > 10, "{} parts", parts.len());
    check_part_order(&parts);
    let marks: usize = parts.iter().map(|p| p.batch.marks.len()).sum();
    assert_eq!(marks, schools * 2 * REGION_ITEMS * REGION_PUPILS);

    // Loaded (in more than one part of the real load), every school holds all of it.
    let rows = parts.iter().map(|p| p.rows).sum::<u64>();
    assert!(rows > zhurnal_app::import::PART_ROWS, "{rows} rows fit one part of the load");
    let first = applied(import(&env.app, Format::OneRoster, &set).await);
    assert_eq!(first.rows, rows);
    assert_eq!(first.stats.updated, 0, "{:?}", first.stats);
    for s in 0..schools {
        let out = work.path().join(format!("export-{s}"));
        env.app.export_school_csv(&format!("rg-s{s}"), &out).await.expect("export");
        let count = |file: &str| {
            std::fs::read_to_string(out.join(file)).expect("exported").lines().count() - 1
        };
        assert_eq!(count("classes.csv"), 2, "school {s}");
        assert_eq!(count("enrolments.csv"), 2 * REGION_PUPILS, "school {s}");
        assert_eq!(count("guardianships.csv"), 2 * REGION_PUPILS, "school {s}");
        assert_eq!(count("assignments.csv"), 2, "school {s}");
        assert_eq!(count("lessons.csv"), 2 * REGION_ITEMS, "school {s}");
        assert_eq!(count("marks.csv"), 2 * REGION_ITEMS * REGION_PUPILS, "school {s}");
        // Two items on the first day are that day's lessons 1 and 2.
        let lessons = std::fs::read_to_string(out.join("lessons.csv")).expect("lessons");
        assert!(lessons.lines().any(|l| l.contains("2026-09-07,2")), "{lessons}");
    }
    let again = applied(import(&env.app, Format::OneRoster, &set).await);
    assert!(again.stats.changed_nothing(), "{:?}", again.stats);
    println!(
        "import: OneRoster region of {rows} rows read in {} parts, loaded and re-run unchanged",
        parts.len()
    );
}

#[tokio::test]
async fn a_oneroster_region_streams_in_dependency_order_and_loads_whole() {
    oneroster_region_case(Db::Sqlite).await;
}

#[tokio::test]
async fn a_oneroster_region_streams_and_loads_whole_on_postgres() {
    oneroster_region_case(Db::Postgres).await;
}

#[tokio::test]
async fn zhurnal_csv_errors_name_file_row_and_column_and_nothing_is_written() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let dir = work.path().join("set");
    env.app.export_school_csv(zhurnal::demo::MAIN_SCHOOL, &dir).await.expect("export");
    let persons = std::fs::read_to_string(dir.join("persons.csv")).expect("persons");
    let first_person = persons.lines().nth(1).expect("a person").to_string();
    let n_persons = persons.lines().count() as u64;
    let mut bad_snils = snils(123_456_789);
    bad_snils
        .replace_range(bad_snils.len() - 2.., if bad_snils.ends_with("00") { "01" } else { "00" });
    write(
        &dir,
        "persons.csv",
        &format!("{persons}x-1,,Ошибкин,Иван,,2015-01-01,M,{bad_snils},,\n{first_person}\n"),
    );
    let enrol = std::fs::read_to_string(dir.join("enrolments.csv")).expect("enrolments");
    let n_enrol = enrol.lines().count() as u64;
    write(&dir, "enrolments.csv", &format!("{enrol}x-e,x-1,no-such-class,2026-09-01,,,\n"));
    let lessons = std::fs::read_to_string(dir.join("lessons.csv")).expect("lessons");
    let n_lessons = lessons.lines().count() as u64;
    let assignment =
        lessons.lines().nth(1).expect("lesson").split(',').nth(1).expect("assignment").to_string();
    write(&dir, "lessons.csv", &format!("{lessons}x-l,{assignment},2031-01-01,1,,\n"));
    // A correction whose work type the school does not have (caught in the check, not by
    // the database half-way through the load).
    let marks = std::fs::read_to_string(dir.join("marks.csv")).expect("marks");
    let mark = marks.lines().nth(1).expect("a mark").split(',').next().expect("its id");
    let teacher = first_person.split(',').next().expect("a person's id");
    let history = std::fs::read_to_string(dir.join("mark_history.csv")).expect("history");
    let n_history = history.lines().count() as u64;
    write(
        &dir,
        "mark_history.csv",
        &format!("{history}{mark},2026-10-01T09:00:00Z,{teacher},4,5,,no-such-work,\n"),
    );
    let issues = refused(import(&env.app, Format::ZhurnalCsv, &dir).await);
    let text: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
    let has = |file: &str, row: u64, column: &str, words: &str| {
        issues.iter().any(|i| {
            i.file == file && i.row == row && i.column == column && i.message.contains(words)
        })
    };
    assert!(has("persons.csv", n_persons + 1, "snils", "контрольное число"), "{text:#?}");
    assert!(has("persons.csv", n_persons + 2, "external_id", "второй раз"), "{text:#?}");
    assert!(has("persons.csv", n_persons + 2, "snils", "уже указан"), "{text:#?}");
    assert!(has("enrolments.csv", n_enrol + 1, "class", "no-such-class"), "{text:#?}");
    assert!(has("lessons.csv", n_lessons + 1, "date", "вне учебного года"), "{text:#?}");
    assert!(has("mark_history.csv", n_history + 1, "new_work_type", "no-such-work"), "{text:#?}");
    assert_eq!(issues.len(), 6, "exactly the planted errors: {text:#?}");
    assert!(env.app.store.list_import_runs().await.expect("runs").is_empty());
}

/// A set of its own for retention tests: one school, a class of long ago, and three pupils
/// with canary names: one left 7 years ago (everything goes), one 5½ years ago (the journal
/// goes, the archive's summary stays), one still at school. Two parents.
fn canary_set(dir: &Path) {
    write(dir, "regions.csv", "external_id,name\ncan-r,Канареечный край\n");
    write(dir, "municipalities.csv", "external_id,region,name\ncan-m,can-r,Канареечный район\n");
    write(
        dir,
        "schools.csv",
        "external_id,municipality,name,short_name\ncan-s,can-m,Школа канареек,ШК\n",
    );
    write(
        dir,
        "years.csv",
        "external_id,school,name,starts_on,ends_on\ncan-y18,can-s,2018/2019,2018-09-01,2019-08-31\ncan-y26,can-s,2026/2027,2026-09-01,2027-08-31\n",
    );
    write(
        dir,
        "subjects.csv",
        "external_id,school,name,grading\ncan-math,can-s,Математика,five_point\n",
    );
    write(dir, "work_types.csv", "school,code,name,weight\ncan-s,answer,Ответ на уроке,1\n");
    write(
        dir,
        "persons.csv",
        &format!(
            "external_id,uid,last_name,first_name,middle_name,birth_date,gender,snils,phone,email\n\
        can-t,,Учителева,Нина,,1970-01-01,F,,,\n\
        can-a,,CanaryGoneXq7,Алексей,,2001-02-03,M,{},+7900CANARYPHA,gone@canary.test\n\
        can-b,,CanaryArchiveXq8,Борис,,2002-02-03,M,{},+7900CANARYPHB,arch@canary.test\n\
        can-c,,CanaryStaysXq9,Вера,,2014-02-03,F,,,\n\
        can-pa,,CanaryParentXq6,Павел,,1975-01-01,M,{},+7900CANARYPHP,parent@canary.test\n\
        can-pc,,CanaryParentStaysXq5,Галина,,1980-01-01,F,,,\n",
            snils(810_000_001),
            snils(810_000_002),
            snils(810_000_003)
        ),
    );
    write(
        dir,
        "classes.csv",
        "external_id,school,year,grade,letter,class_teacher,period_scheme,newly_formed\n\
        can-11a,can-s,can-y18,11,А,can-t,half_years,false\n\
        can-6a,can-s,can-y26,6,А,can-t,quarters,false\n",
    );
    write(
        dir,
        "enrolments.csv",
        "external_id,student,class,admitted_on,departed_on,departure_kind,departure_reason\n\
        can-ea,can-a,can-11a,2018-09-01,2019-06-25,graduation,\n\
        can-eb,can-b,can-11a,2018-09-01,2021-03-01,transfer,\n\
        can-ec,can-c,can-6a,2026-09-01,,,\n",
    );
    write(dir, "guardianships.csv", "parent,child\ncan-pa,can-a\ncan-pc,can-c\n");
    write(dir, "staff_roles.csv", "person,role,scope\ncan-t,teacher,can-s\n");
    write(
        dir,
        "assignments.csv",
        "external_id,teacher,class,group,subject\ncan-as,can-t,can-11a,,can-math\n",
    );
    write(
        dir,
        "lessons.csv",
        "external_id,assignment,date,lesson_number,topic,homework\ncan-l1,can-as,2018-10-01,1,Тема,\n",
    );
    write(
        dir,
        "marks.csv",
        "external_id,lesson,student,value,work_type,comment,author,created_at\n\
        can-m1,can-l1,can-a,5,answer,CanaryCommentXq1,can-t,\n\
        can-m2,can-l1,can-b,4,answer,CanaryCommentXq2,can-t,\n",
    );
    write(dir, "attendance.csv", "lesson,student,kind,author\ncan-l1,can-a,ill,can-t\n");
}

/// Every canary found in the files (raw bytes), by file name.
fn canary_hits(files: &[PathBuf], canaries: &[&str]) -> Vec<String> {
    // memmem rather than `windows().any()`: the test crate is unoptimised, and a naive scan of
    // a PostgreSQL database's files took minutes.
    let finders: Vec<_> = canaries.iter().map(memchr::memmem::Finder::new).collect();
    let mut hits = Vec::new();
    for f in files {
        let Ok(bytes) = std::fs::read(f) else { continue };
        for (c, finder) in canaries.iter().zip(&finders) {
            if finder.find(&bytes).is_some() {
                hits.push(format!("{c} in {}", f.display()));
            }
        }
    }
    hits
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

const GONE: &[&str] = &[
    "CanaryGoneXq7",
    "+7900CANARYPHA",
    "gone@canary.test",
    "CanaryParentXq6",
    "+7900CANARYPHP",
    "parent@canary.test",
    "CanaryCommentXq1",
    "CanaryCommentXq2",
    "+7900CANARYPHB",
    "arch@canary.test",
];

fn retention() -> RetentionConfig {
    // 5 years for the journal, 7 for the summary: pupil A (left 2019) goes entirely, pupil B
    // (left 2021) keeps only the archive.
    RetentionConfig { journal_years: 5, archive_years: 7, ..RetentionConfig::default() }
}

async fn retention_case(db: Db) {
    let Some(env) = Env::start_on(db).await else { return };
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("canary");
    canary_set(&set);
    applied(import(&env.app, Format::ZhurnalCsv, &set).await);
    let uid = |ext: &str| zhurnal_app::import::uid_for_import(ext);
    let ledger = Ledger::new(work.path().join("purge-ledger.jsonl"));
    let backup = work.path().join("backup.db");
    if db == Db::Sqlite {
        // An online backup taken before the purge (the older backup to restore later).
        let url = format!("sqlite://{}", env.data_dir().join("zhurnal.db").display());
        let mut conn =
            <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.expect("raw sqlite");
        sqlx::query(&format!("VACUUM INTO '{}'", backup.display()))
            .execute(&mut conn)
            .await
            .expect("backup");
        sqlx::Connection::close(conn).await.expect("close");
    }

    // Nothing is due on an earlier day: the clock decides.
    let by = DestroyedBy::system("тест");
    let mut early = RetentionConfig { journal_years: 8, archive_years: 9, ..retention() };
    early.session_days = 100_000;
    let none = env.app.run_retention(&early, &ledger, None, &by).await.expect("retention");
    assert_eq!((none.students, none.act.clone()), (0, None));

    let run = env.app.run_retention(&retention(), &ledger, None, &by).await.expect("retention");
    assert_eq!((run.students, run.parents), (2, 1), "{run:?}");
    assert_eq!(run.counts.persons, 2, "pupil A and their parent");
    assert_eq!(run.counts.persons_archived, 1, "pupil B");
    assert_eq!(run.counts.marks, 2);
    assert_eq!(run.counts.attendance, 1);
    let store = &env.app.store;
    assert!(store.find_person_by_uid(&uid("can-a")).await.expect("q").is_none());
    assert!(store.find_person_by_uid(&uid("can-pa")).await.expect("q").is_none());
    let b =
        store.find_person_by_uid(&uid("can-b")).await.expect("q").expect("archived pupil stays");
    assert_eq!((b.phone, b.email, b.snils_cipher), (None, None, None));
    assert!(store.find_person_by_uid(&uid("can-c")).await.expect("q").is_some());
    assert!(store.find_person_by_uid(&uid("can-pc")).await.expect("q").is_some());
    // A second run finds nothing new.
    let rerun = env.app.run_retention(&retention(), &ledger, None, &by).await.expect("retention");
    assert_eq!(rerun.act, None, "{rerun:?}");

    // The raw files: no canary of a purged person anywhere in the live database files.
    let (files, where_) = match db {
        Db::Sqlite => {
            let d = env.data_dir();
            (
                vec![d.join("zhurnal.db"), d.join("zhurnal.db-wal"), d.join("zhurnal.db-shm")],
                "SQLite file + WAL",
            )
        }
        Db::Postgres => match std::env::var("ZHURNAL_TEST_POSTGRES_DATADIR") {
            Ok(d) => {
                let mut f = Vec::new();
                // Live relation files: only this test's database ever held the canaries; the
                // cluster's other databases (every other test's, never dropped during a run)
                // are hundreds of megabytes of noise. And pg_wal: the purge retired the
                // segments written before it, and the test cluster runs with wal_recycle=off
                // as production should, so they are gone. Backups are the ledger's job.
                let oid =
                    database_oid(env.database_url.as_deref().expect("a PostgreSQL URL")).await;
                let dir = Path::new(&d).join("base").join(oid.to_string());
                files_under(&dir, &mut f);
                assert!(!f.is_empty(), "no relation files in {}", dir.display());
                let live = f.len();
                files_under(&Path::new(&d).join("pg_wal"), &mut f);
                assert!(f.len() > live, "no WAL segments under {d}/pg_wal");
                (f, "PostgreSQL base/<database>/ and pg_wal/")
            }
            Err(_) => {
                eprintln!(
                    "ZHURNAL_TEST_POSTGRES_DATADIR not set: raw-file search on PostgreSQL skipped"
                );
                (Vec::new(), "none")
            }
        },
    };
    let hits = canary_hits(&files, GONE);
    assert!(hits.is_empty(), "purged data still in {where_}: {hits:#?}");
    if !files.is_empty() {
        // The search itself works: people who stay are found in the same files.
        for c in ["CanaryStaysXq9", "CanaryArchiveXq8"] {
            assert!(!canary_hits(&files, &[c]).is_empty(), "{c} should still be in {where_}");
        }
    }

    // The act: nine fields, the journal extract, rendered.
    let number = run.act.clone().expect("an act");
    let doc = env.app.destruction_act_doc(&number).await.expect("act");
    let fields = &doc.tables[0].rows;
    assert_eq!(fields.iter().filter(|r| r[0].starts_with(char::is_numeric)).count(), 9);
    if db == Db::Postgres {
        let method = fields.iter().find(|r| r[0].starts_with("8.")).expect("method");
        assert!(method[1].contains("удалены из pg_wal (wal_recycle = off)"), "{method:?}");
    }
    assert!(fields.iter().all(|r| !r[1].is_empty()), "{fields:#?}");
    let extract = doc.tables.last().expect("extract");
    assert!(extract.rows.iter().any(|r| r[2] == "purge.retention"), "{:#?}", extract.rows);
    let text = serde_json::to_string(&doc).expect("json");
    for c in GONE {
        assert!(!text.contains(c), "the act names no one: {c}");
    }
    let pdf = zhurnal_app::export::to_pdf(&doc).expect("pdf");
    render_png(&pdf, work.path());
    let entries = ledger.read().expect("ledger");
    assert_eq!(entries.len(), 1);
    assert!(matches!(&entries[0].what, LedgerWhat::Persons { persons } if persons.len() == 3));

    if db == Db::Sqlite {
        // Restore the older backup into a new data directory and start: the ledger is
        // re-applied before anything is served, and the canaries are gone again.
        let restored = work.path().join("restored");
        std::fs::create_dir_all(&restored).expect("dir");
        std::fs::copy(&backup, restored.join("zhurnal.db")).expect("restore");
        std::fs::copy(env.data_dir().join("keys.toml"), restored.join("keys.toml")).expect("keys");
        let cfg = Config {
            data_dir: restored.clone(),
            purge_ledger: Some(ledger.path.clone()),
            ..Config::default()
        };
        let keys = cfg.load_keys(false).expect("keys");
        let store =
            open_store(&cfg, Arc::new(keys.sealer().expect("sealer")), false).await.expect("store");
        let app = build_app_with_clock(
            &cfg,
            store.clone(),
            &keys,
            Arc::new(FixedClock::new(school_day())),
        )
        .expect("app");
        assert!(
            app.store.find_person_by_uid(&uid("can-a")).await.expect("q").is_some(),
            "the backup has them"
        );
        zhurnal::reapply_purge_ledger(&cfg, &app).await.expect("start-up");
        assert!(app.store.find_person_by_uid(&uid("can-a")).await.expect("q").is_none());
        assert!(app.store.find_person_by_uid(&uid("can-pa")).await.expect("q").is_none());
        let b = app.store.find_person_by_uid(&uid("can-b")).await.expect("q").expect("archived");
        assert_eq!(b.email, None);
        let files = vec![restored.join("zhurnal.db"), restored.join("zhurnal.db-wal")];
        let hits = canary_hits(&files, GONE);
        assert!(hits.is_empty(), "after restore + ledger: {hits:#?}");
        println!(
            "purge: 3 persons purged; canary hits in live DB 0, in WAL 0, after restore+ledger 0; act fields 9/9"
        );
    }
}

/// The OID of the database behind `url`: the name of its directory under `base/`.
async fn database_oid(url: &str) -> u32 {
    let mut conn =
        <sqlx::PgConnection as sqlx::Connection>::connect(url).await.expect("raw postgres");
    let (oid,): (sqlx::postgres::types::Oid,) =
        sqlx::query_as("SELECT oid FROM pg_database WHERE datname = current_database()")
            .fetch_one(&mut conn)
            .await
            .expect("database oid");
    sqlx::Connection::close(conn).await.expect("close");
    oid.0
}

/// Renders the first page to PNG with pdftoppm (poppler-utils; `cargo xtask ci` installs it).
fn render_png(pdf: &[u8], dir: &Path) {
    let tool = std::env::var("ZHURNAL_PDFTOPPM").unwrap_or_else(|_| "pdftoppm".into());
    let input = dir.join("act.pdf");
    std::fs::write(&input, pdf).expect("pdf");
    let out = std::process::Command::new(&tool)
        .args(["-png", "-r", "50", "-f", "1", "-l", "1"])
        .arg(&input)
        .arg(dir.join("act"))
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) if std::env::var("ZHURNAL_PDFTOPPM").is_err() => {
            eprintln!(
                "pdftoppm not available ({e}): PNG check skipped; `cargo xtask ci` installs poppler-utils"
            );
            return;
        }
        Err(e) => panic!("{tool}: {e}"),
    };
    assert!(out.status.success(), "pdftoppm: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("a PNG page");
    let bytes = std::fs::read(&png).expect("png");
    assert!(bytes.starts_with(b"\x89PNG"));
    // Ink on the page: a blank render would compress to almost nothing.
    assert!(bytes.len() > 5_000, "the act renders with content ({} bytes)", bytes.len());
}

#[tokio::test]
async fn retention_destroys_what_is_due_proves_it_in_the_raw_files_and_survives_a_restore() {
    retention_case(Db::Sqlite).await;
}

#[tokio::test]
async fn retention_destroys_what_is_due_on_postgres() {
    retention_case(Db::Postgres).await;
}

#[tokio::test]
async fn purge_import_overwrites_the_sources_records_their_hashes_and_marks_the_register() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("canary");
    canary_set(&set);
    let s = applied(import(&env.app, Format::ZhurnalCsv, &set).await);
    let ledger = Ledger::new(work.path().join("purge-ledger.jsonl"));
    let by = DestroyedBy::system("тест");
    let size = std::fs::metadata(set.join("persons.csv")).expect("meta").len();
    let done = env
        .app
        .purge_import_sources(&RetentionConfig::default(), &ledger, std::slice::from_ref(&set), &by)
        .await
        .expect("purge");
    assert!(!set.exists(), "the source is gone");
    assert_eq!(done.files.len(), 15);
    let persons = done.files.iter().find(|f| f.name.ends_with("persons.csv")).expect("persons.csv");
    assert_eq!(persons.size, size);
    assert_eq!(persons.sha256.len(), 64);
    assert_eq!(done.runs_marked, 1);
    let runs = env.app.store.list_import_runs().await.expect("runs");
    let run = runs.iter().find(|r| r.source_sha256 == s.source_sha256).expect("run");
    assert_eq!(run.act_number.as_deref(), Some(done.act.as_str()));
    assert!(run.source_purged_at.is_some());
    let doc = env.app.destruction_act_doc(&done.act).await.expect("act");
    assert!(doc.tables.iter().any(|t| t.rows.iter().any(|r| r.contains(&persons.sha256))));
    // The region's register: the school imported and its source destroyed; the demo school
    // (seeded, never imported) shows nothing.
    let status = env.app.migration_status().await.expect("status");
    let can = status.iter().find(|s| s.external_id == "can-s").expect("the imported school");
    assert!(can.imported_at.is_some());
    assert_eq!(can.verified_at, None, "one run is not a verification");
    assert_eq!(can.source_purged_act.as_deref(), Some(done.act.as_str()));
    let demo = status.iter().find(|s| s.external_id == zhurnal::demo::MAIN_SCHOOL).expect("demo");
    assert_eq!((demo.imported_at, demo.source_purged_act.clone()), (None, None));
    // The ledger is append-only and chained: an edited entry is detected.
    assert_eq!(ledger.read().expect("ledger").len(), 1);
    let text = std::fs::read_to_string(&ledger.path).expect("ledger file");
    std::fs::write(&ledger.path, text.replace("persons.csv", "personz.csv")).expect("tamper");
    let err = ledger.read().expect_err("tampering detected");
    assert!(err.to_string().contains("повреждён"), "{err}");
}

#[test]
fn the_cli_imports_exports_and_refuses_a_broken_set_with_every_error() {
    use std::process::Command;
    let work = tempfile::tempdir().expect("dir");
    let data = work.path().join("data");
    let set = work.path().join("set");
    canary_set(&set);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_zhurnal"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env("ZHURNAL_LOG", "error")
            .output()
            .expect("run zhurnal")
    };
    let d = data.to_str().expect("utf-8");
    let s = set.to_str().expect("utf-8");
    let ok = run(&["import", "--format", "zhurnal-csv", s, "--data-dir", d]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("загружено"));
    // stderr is a pipe here, not a terminal: no progress bar in it.
    let err = String::from_utf8_lossy(&ok.stderr);
    assert!(!err.contains("проверка") && !err.contains("строк"), "{err}");
    let out = work.path().join("out");
    let exp = run(&[
        "export",
        "--format",
        "zhurnal-csv",
        "--school",
        "can-s",
        out.to_str().expect("utf-8"),
        "--data-dir",
        d,
    ]);
    assert!(exp.status.success(), "{}", String::from_utf8_lossy(&exp.stderr));
    assert!(
        std::fs::read_to_string(out.join("persons.csv"))
            .expect("persons")
            .contains("CanaryStaysXq9")
    );
    // Every school at once, each into its own directory; an unknown school writes nothing.
    let all = work.path().join("all");
    let a = all.to_str().expect("utf-8");
    let exp = run(&["export", "--all", a, "--data-dir", d]);
    assert!(exp.status.success(), "{}", String::from_utf8_lossy(&exp.stderr));
    assert!(all.join("can-s").join("persons.csv").is_file());
    let none = work.path().join("none");
    let n = none.to_str().expect("utf-8");
    let exp = run(&["export", "--school", "can-s", "--school", "no-such", n, "--data-dir", d]);
    assert!(!exp.status.success());
    let err = String::from_utf8_lossy(&exp.stderr);
    assert!(err.contains("no-such") && err.contains("ничего не выгружено"), "{err}");
    assert!(!none.exists(), "nothing written for a refused export");
    write(
        &set,
        "classes.csv",
        "external_id,school,year,grade,letter,class_teacher,period_scheme,newly_formed\ncan-11a,can-s,can-y18,12,А,can-t,half_years,false\n",
    );
    let bad = run(&["import", "--format", "zhurnal-csv", s, "--data-dir", d]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("classes.csv, строка 2, столбец «grade»"), "{err}");
    assert!(err.contains("enrolments.csv, строка 4, столбец «class»"), "{err}");
    assert!(err.contains("ничего не записано"), "{err}");
    let help = run(&["--help"]);
    let help = String::from_utf8_lossy(&help.stdout);
    for cmd in ["import", "export", "purge-import", "retention"] {
        assert!(help.lines().any(|l| l.trim_start().starts_with(cmd)), "{cmd} missing:\n{help}");
    }
}

// ---- The web pages of the import area: upload, templates, register, acts. ----

/// A ZIP of every file in `dir` (flat), as the upload page takes it.
fn zip_dir(dir: &Path) -> Vec<u8> {
    use std::io::Write;
    let mut out = Vec::new();
    {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(&mut out));
        for (name, text) in read_dir_sorted(dir) {
            w.start_file(name, zip::write::SimpleFileOptions::default()).expect("entry");
            w.write_all(text.as_bytes()).expect("write");
        }
        w.finish().expect("zip");
    }
    out
}

/// A multipart upload body (format, optional csrf, file) with boundary `zb`.
fn multipart(format: &str, csrf: Option<&str>, zip: &[u8]) -> Vec<u8> {
    multipart_named(format, csrf, "school.zip", zip)
}

/// The same with the file's own name (`*.xlsx` uploads a workbook).
fn multipart_named(format: &str, csrf: Option<&str>, file: &str, bytes: &[u8]) -> Vec<u8> {
    let mut b =
        format!("--zb\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\n{format}\r\n");
    if let Some(t) = csrf {
        b.push_str(&format!(
            "--zb\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{t}\r\n"
        ));
    }
    b.push_str(&format!(
        "--zb\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    ));
    let mut out = b.into_bytes();
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n--zb--\r\n");
    out
}

/// POSTs a multipart form to /import as the browser's session, the token in the form only.
async fn post_upload(env: &Env, b: &crate::support::Browser, body: Vec<u8>) -> (u16, String) {
    let cookies: Vec<String> = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let res = reqwest::Client::new()
        .post(env.url("/import"))
        .header("cookie", cookies.join("; "))
        .header("origin", env.base.as_str())
        .header("content-type", "multipart/form-data; boundary=zb")
        .body(body)
        .send()
        .await
        .expect("upload");
    let status = res.status().as_u16();
    (status, res.text().await.expect("body"))
}

/// The demo school's own export plus one new pupil of 9А (a valid set with something new).
async fn school_set_with_new_pupil(env: &Env, dir: &Path) {
    env.app.export_school_csv(zhurnal::demo::MAIN_SCHOOL, dir).await.expect("export");
    // The school's own roles only: territory roles are the regional admin's to import.
    let roles = std::fs::read_to_string(dir.join("staff_roles.csv")).expect("roles");
    let school_roles: Vec<&str> = roles
        .lines()
        .enumerate()
        .filter(|(i, l)| *i == 0 || l.contains(",teacher,") || l.contains(",school-admin,"))
        .map(|(_, l)| l)
        .collect();
    write(dir, "staff_roles.csv", &format!("{}\n", school_roles.join("\n")));
    let persons = std::fs::read_to_string(dir.join("persons.csv")).expect("persons");
    write(
        dir,
        "persons.csv",
        &format!("{persons}web-new-1,,Новикова,Вера,,2011-03-04,F,{},,\n", snils(777_123_456)),
    );
    let enrol = std::fs::read_to_string(dir.join("enrolments.csv")).expect("enrolments");
    write(
        dir,
        "enrolments.csv",
        &format!("{enrol}web-new-e,web-new-1,demo-school-1-9А,2026-09-01,,,\n"),
    );
}

#[tokio::test]
async fn the_upload_page_imports_a_valid_set_and_refuses_a_form_without_the_token() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("set");
    school_set_with_new_pupil(&env, &set).await;
    let zip = zip_dir(&set);
    let mut b = crate::support::Browser::new();
    assert_eq!(crate::support::login(&env, &mut b, "school-admin-1").await.status, 200);
    let form = b.get(&env.url("/import")).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("enctype=\"multipart/form-data\""), "{}", form.body);
    assert!(form.body.contains("/import/templates.zip"));
    let home = b.get(&env.url("/admin")).await;
    assert!(home.body.contains("href=\"/import\""), "the menu links the page: {}", home.body);
    let token = crate::support::csrf(&env, &mut b).await;

    // No token, a wrong token: refused by the CSRF guard, nothing written.
    let (status, _) = post_upload(&env, &b, multipart("zhurnal-csv", None, &zip)).await;
    assert_eq!(status, 403);
    let (status, _) = post_upload(&env, &b, multipart("zhurnal-csv", Some("forged"), &zip)).await;
    assert_eq!(status, 403);
    assert!(env.app.store.list_import_runs().await.expect("runs").is_empty());
    assert!(
        env.app.store.find_person_by_uid(&uid_for_import("web-new-1")).await.expect("q").is_none()
    );

    // The form's own token: imported, the counts shown, the pupil is there.
    let (status, page) = post_upload(&env, &b, multipart("zhurnal-csv", Some(&token), &zip)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"import-done\""), "{page}");
    assert!(page.contains("id=\"inserted\">2<"), "the pupil and the enrolment: {page}");
    let pupil = env.app.store.find_person_by_uid(&uid_for_import("web-new-1")).await.expect("q");
    assert!(pupil.is_some(), "the new pupil is in the database");
    assert_eq!(env.app.store.list_import_runs().await.expect("runs").len(), 1);

    // The templates download.
    let res = reqwest::Client::new()
        .get(env.url("/import/templates.zip"))
        .header(
            "cookie",
            b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "),
        )
        .send()
        .await
        .expect("templates");
    assert_eq!(res.status().as_u16(), 200);
    let bytes = res.bytes().await.expect("bytes");
    assert!(bytes.starts_with(b"PK"), "a ZIP");
}

#[tokio::test]
async fn the_upload_page_lists_every_error_with_422_and_writes_nothing() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("set");
    school_set_with_new_pupil(&env, &set).await;
    let persons = std::fs::read_to_string(set.join("persons.csv")).expect("persons");
    let n_persons = persons.lines().count() as u64;
    let mut bad = snils(123_456_789);
    bad.replace_range(bad.len() - 2.., if bad.ends_with("00") { "01" } else { "00" });
    write(
        &set,
        "persons.csv",
        &format!("{persons}web-bad-1,,Ошибкин,Иван,,2015-01-01,M,{bad},,\n"),
    );
    let enrol = std::fs::read_to_string(set.join("enrolments.csv")).expect("enrolments");
    let n_enrol = enrol.lines().count() as u64;
    write(
        &set,
        "enrolments.csv",
        &format!("{enrol}web-bad-e,web-bad-1,no-such-class,2026-09-01,,,\n"),
    );
    let mut b = crate::support::Browser::new();
    assert_eq!(crate::support::login(&env, &mut b, "school-admin-1").await.status, 200);
    let token = crate::support::csrf(&env, &mut b).await;
    let (status, page) =
        post_upload(&env, &b, multipart("zhurnal-csv", Some(&token), &zip_dir(&set))).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("ошибок — 2"), "{page}");
    assert!(
        page.contains(&format!("<td>persons.csv</td><td>{}</td><td>snils</td>", n_persons + 1)),
        "{page}"
    );
    assert!(page.contains("контрольное число"), "{page}");
    assert!(
        page.contains(&format!("<td>enrolments.csv</td><td>{}</td><td>class</td>", n_enrol + 1)),
        "{page}"
    );
    assert!(page.contains("no-such-class"), "{page}");
    assert!(env.app.store.list_import_runs().await.expect("runs").is_empty());
    for ext in ["web-new-1", "web-bad-1"] {
        assert!(env.app.store.find_person_by_uid(&uid_for_import(ext)).await.expect("q").is_none());
    }
}

#[tokio::test]
async fn parents_and_teachers_are_refused_the_import_pages() {
    let env = Env::start().await;
    for persona in ["parent-1", "teacher-1"] {
        let mut b = crate::support::Browser::new();
        assert_eq!(crate::support::login(&env, &mut b, persona).await.status, 200);
        assert_eq!(b.get(&env.url("/import")).await.status, 403, "{persona}");
        assert_eq!(b.get(&env.url("/import/region")).await.status, 403, "{persona}");
        let token = crate::support::csrf(&env, &mut b).await;
        let (status, _) =
            post_upload(&env, &b, multipart("zhurnal-csv", Some(&token), b"PK")).await;
        assert_eq!(status, 403, "{persona}");
    }
}

#[tokio::test]
async fn the_regional_page_lists_every_school_and_serves_the_act_as_pdf() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("canary");
    canary_set(&set);
    applied(import(&env.app, Format::ZhurnalCsv, &set).await);
    let ledger = Ledger::new(work.path().join("purge-ledger.jsonl"));
    let done = env
        .app
        .purge_import_sources(
            &RetentionConfig::default(),
            &ledger,
            std::slice::from_ref(&set),
            &DestroyedBy::system("тест"),
        )
        .await
        .expect("purge");
    let mut b = crate::support::Browser::new();
    assert_eq!(crate::support::login(&env, &mut b, "regional-admin-1").await.status, 200);
    let page = b.get(&env.url("/import/region")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    for ext in ["demo-school-1", "demo-school-2"] {
        let school =
            env.app.store.find_school_by_external_id(ext).await.expect("q").expect("school");
        assert!(page.body.contains(&school.name), "{ext} listed: {}", page.body);
    }
    assert!(page.body.contains(&done.act), "the act is listed: {}", page.body);
    let href: String = url::form_urlencoded::byte_serialize(done.act.as_bytes()).collect();
    let cookies: Vec<String> = b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let res = reqwest::Client::new()
        .get(env.url(&format!("/import/acts/{href}")))
        .header("cookie", cookies.join("; "))
        .send()
        .await
        .expect("act");
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(
        res.headers().get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/pdf")
    );
    assert!(res.bytes().await.expect("pdf").starts_with(b"%PDF"));
    // A school admin does not see the region's register.
    let mut a = crate::support::Browser::new();
    assert_eq!(crate::support::login(&env, &mut a, "school-admin-1").await.status, 200);
    assert_eq!(a.get(&env.url("/import/region")).await.status, 403);
}

// ---- XLSX workbooks of the Zhurnal set, and territory roles in a school's upload. ----

#[tokio::test]
async fn the_demo_school_as_a_workbook_imports_exactly_like_the_csv_set() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let exported = work.path().join("export");
    env.app.export_school_csv(zhurnal::demo::MAIN_SCHOOL, &exported).await.expect("export");
    // As a spreadsheet user's workbook: dates and integers typed, the rest text.
    let book = work.path().join("school.xlsx");
    std::fs::write(
        &book,
        zhurnal_app::import::xlsx::workbook_from_csv_dir(&exported, true).expect("workbook"),
    )
    .expect("write");

    let (_, app2) = empty_app(&work.path().join("target")).await;
    let first = applied(import(&app2, Format::ZhurnalCsv, &book).await);
    assert!(first.stats.inserted > 1000, "{:?}", first.stats);
    let second = applied(import(&app2, Format::ZhurnalCsv, &book).await);
    assert!(second.stats.changed_nothing(), "a re-import changed rows: {:?}", second.stats);
    // The CSV set into the same database changes nothing either: the same rows.
    let third = applied(import(&app2, Format::ZhurnalCsv, &exported).await);
    assert!(third.stats.changed_nothing(), "CSV after XLSX changed rows: {:?}", third.stats);
    // The workbook's school exports to the very files the CSV round trip gives.
    let again = work.path().join("again");
    app2.export_school_csv(zhurnal::demo::MAIN_SCHOOL, &again).await.expect("re-export");
    let (a, b) = (read_dir_sorted(&exported), read_dir_sorted(&again));
    assert_eq!(a.len(), b.len());
    for ((name, x), (_, y)) in a.iter().zip(&b) {
        assert!(x == y, "{name} differs after the XLSX round trip");
    }
    let admin = env.persona_uid("school-admin-1");
    assert_eq!(reports(&env.app, &admin).await, reports(&app2, &admin).await);
}

#[tokio::test]
async fn a_workbook_uploads_and_a_broken_one_lists_every_error_by_sheet_row_and_column() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("set");
    school_set_with_new_pupil(&env, &set).await;
    let good = zhurnal_app::import::xlsx::workbook_from_csv_dir(&set, true).expect("workbook");
    // The broken one: a bad СНИЛС checksum, an unknown class, a date that is not one.
    let persons = std::fs::read_to_string(set.join("persons.csv")).expect("persons");
    let n_persons = persons.lines().count() as u64;
    let mut bad = snils(123_456_789);
    bad.replace_range(bad.len() - 2.., if bad.ends_with("00") { "01" } else { "00" });
    write(
        &set,
        "persons.csv",
        &format!("{persons}web-bad-1,,Ошибкин,Иван,,2015-02-30,M,{bad},,\n"),
    );
    let enrol = std::fs::read_to_string(set.join("enrolments.csv")).expect("enrolments");
    let n_enrol = enrol.lines().count() as u64;
    write(
        &set,
        "enrolments.csv",
        &format!("{enrol}web-bad-e,web-bad-1,no-such-class,2026-09-01,,,\n"),
    );
    let broken = zhurnal_app::import::xlsx::workbook_from_csv_dir(&set, true).expect("workbook");

    let mut b = crate::support::Browser::new();
    assert_eq!(crate::support::login(&env, &mut b, "school-admin-1").await.status, 200);
    let form = b.get(&env.url("/import")).await;
    assert!(form.body.contains("/import/templates.xlsx"), "{}", form.body);
    // Upload progress: a vendored script over a form that works without it.
    assert!(form.body.contains("<script src=\"/static/import.js\""), "{}", form.body);
    assert!(form.body.contains("id=\"import-progress\""), "{}", form.body);
    let js = b.get(&env.url("/static/import.js")).await;
    assert_eq!(js.status, 200);
    assert!(js.body.contains("upload.onprogress"), "{}", js.body);
    assert!(form.body.contains(".xlsx"), "the file input takes workbooks: {}", form.body);
    let token = crate::support::csrf(&env, &mut b).await;
    let (status, page) =
        post_upload(&env, &b, multipart_named("zhurnal-csv", Some(&token), "school.xlsx", &broken))
            .await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains("ошибок — 3"), "{page}");
    let row = |sheet: &str, n: u64, col: &str| {
        format!("<td>school.xlsx, лист {sheet}</td><td>{n}</td><td>{col}</td>")
    };
    assert!(page.contains(&row("persons", n_persons + 1, "birth_date")), "{page}");
    assert!(page.contains(&row("persons", n_persons + 1, "snils")), "{page}");
    assert!(page.contains("контрольное число"), "{page}");
    assert!(page.contains(&row("enrolments", n_enrol + 1, "class")), "{page}");
    assert!(env.app.store.list_import_runs().await.expect("runs").is_empty());
    for ext in ["web-new-1", "web-bad-1"] {
        assert!(env.app.store.find_person_by_uid(&uid_for_import(ext)).await.expect("q").is_none());
    }

    // The valid workbook: imported, the new pupil and the enrolment written.
    let (status, page) =
        post_upload(&env, &b, multipart_named("zhurnal-csv", Some(&token), "school.xlsx", &good))
            .await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"inserted\">2<"), "the pupil and the enrolment: {page}");
    assert!(
        env.app.store.find_person_by_uid(&uid_for_import("web-new-1")).await.expect("q").is_some()
    );

    // The template workbook.
    let res = reqwest::Client::new()
        .get(env.url("/import/templates.xlsx"))
        .header(
            "cookie",
            b.jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; "),
        )
        .send()
        .await
        .expect("templates");
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.bytes().await.expect("bytes").starts_with(b"PK"), "an XLSX (a ZIP)");
}

#[tokio::test]
async fn a_school_admin_uploading_territory_roles_gets_each_row_named_not_a_refusal() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("raw");
    // The school's raw export, territory roles included.
    env.app.export_school_csv(zhurnal::demo::MAIN_SCHOOL, &set).await.expect("export");
    let roles = std::fs::read_to_string(set.join("staff_roles.csv")).expect("roles");
    let territory: Vec<(u64, String)> = roles
        .lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.contains(",teacher,") && !l.contains(",school-admin,"))
        .map(|(i, l)| (i as u64 + 1, l.split(',').nth(1).expect("role").to_string()))
        .collect();
    assert!(!territory.is_empty(), "the demo school's export has territory roles: {roles}");
    let mut b = crate::support::Browser::new();
    assert_eq!(crate::support::login(&env, &mut b, "school-admin-1").await.status, 200);
    let token = crate::support::csrf(&env, &mut b).await;
    let (status, page) =
        post_upload(&env, &b, multipart("zhurnal-csv", Some(&token), &zip_dir(&set))).await;
    assert_eq!(status, 422, "{page}");
    assert!(page.contains(&format!("ошибок — {}", territory.len())), "{page}");
    for (line, role) in &territory {
        assert!(
            page.contains(&format!(
                "<td>staff_roles.csv</td><td>{line}</td><td>role</td><td>роль {role} может назначить только региональный администратор; уберите строку или загрузите файл через региональную страницу</td>"
            )),
            "line {line} ({role}): {page}"
        );
    }
    assert!(env.app.store.list_import_runs().await.expect("runs").is_empty());

    // The regional admin may load the same raw export.
    let mut r = crate::support::Browser::new();
    assert_eq!(crate::support::login(&env, &mut r, "regional-admin-1").await.status, 200);
    let token = crate::support::csrf(&env, &mut r).await;
    let (status, page) =
        post_upload(&env, &r, multipart("zhurnal-csv", Some(&token), &zip_dir(&set))).await;
    assert_eq!(status, 200, "{page}");
}

/// One phase as reported: name, total, the steps reported done.
type Phase = (String, Option<u64>, Vec<u64>);

/// Records what an import reports.
#[derive(Default)]
struct Recorded(std::sync::Mutex<Vec<Phase>>);

impl zhurnal_app::import::Progress for Recorded {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.0.lock().expect("lock").push((name.to_string(), total, Vec::new()));
    }
    fn done(&self, steps: u64) {
        if let Some(last) = self.0.lock().expect("lock").last_mut() {
            last.2.push(steps);
        }
    }
}

#[tokio::test]
async fn an_import_reports_rows_checked_and_rows_loaded() {
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let exported = work.path().join("export");
    env.app.export_school_csv(zhurnal::demo::MAIN_SCHOOL, &exported).await.expect("export");
    let (_, app2) = empty_app(&work.path().join("target")).await;
    let progress = Recorded::default();
    let outcome = app2
        .import_with_progress(
            Format::ZhurnalCsv,
            &Source::at(&exported).expect("source"),
            ImportedBy::Cli,
            &progress,
        )
        .await
        .expect("import");
    let summary = applied(outcome);
    let phases = progress.0.into_inner().expect("lock");
    let names: Vec<&str> = phases.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(names, ["проверка", "загрузка"]);
    for (name, total, steps) in &phases {
        assert_eq!(*total, None, "{name}: rows are counted, not known ahead");
        assert!(steps.len() > 2, "{name}: rows reported as they are read: {steps:?}");
        assert!(steps.windows(2).all(|w| w[0] <= w[1]), "{name}: {steps:?}");
        assert_eq!(steps.last(), Some(&summary.rows), "{name}");
    }
}

#[tokio::test]
async fn in_a_browser_the_upload_shows_its_progress_and_then_the_report() {
    let Some(chrome) = crate::support::chrome::Chrome::start().await else { return };
    let env = Env::start().await;
    let work = tempfile::tempdir().expect("dir");
    let set = work.path().join("set");
    school_set_with_new_pupil(&env, &set).await;
    let book = work.path().join("school.xlsx");
    let bytes = zhurnal_app::import::xlsx::workbook_from_csv_dir(&set, true).expect("workbook");
    std::fs::write(&book, &bytes).expect("write");
    chrome.goto(&env.url("/login?login_hint=school-admin-1")).await;
    chrome.wait_for("main").await;
    chrome.goto(&env.url("/import")).await;
    let input = chrome.wait_for("#import-file").await;
    input.send_keys(book.to_str().expect("utf-8")).await.expect("choose the file");
    // A marker that a real navigation (the form posted without the script) would erase.
    chrome.eval("window.stayedOnPage = true; return null").await;
    chrome.click("#import-form button[type=submit]").await;
    // The server imports a whole school: in a debug build on a busy 2-core machine that can
    // take much longer than an ordinary page.
    chrome
        .wait_until_for("return !!document.getElementById('import-done')", "the report", 120)
        .await;
    let state = chrome
        .eval(
            "return [window.stayedOnPage === true, \
             Number(document.documentElement.getAttribute('data-import-sent') || 0), \
             document.activeElement && document.activeElement.id]",
        )
        .await;
    assert_eq!(state[0], true, "sent by the script, not a page load: {state}");
    assert!(state[1].as_u64().unwrap_or(0) >= bytes.len() as u64, "progress reached: {state}");
    assert_eq!(state[2], "import-done", "the report gets the focus: {state}");
    assert!(chrome.text().await.contains("загружен"));
    assert!(
        env.app.store.find_person_by_uid(&uid_for_import("web-new-1")).await.expect("q").is_some()
    );
    chrome.close().await;
}
