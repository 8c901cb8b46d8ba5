//! OneRoster 1.1 CSV (IMS Global roster interchange): orgs, academicSessions, courses,
//! classes, users, enrollments; lineItems and results where present.
//!
//! Mapping to the Russian school (docs/import-format.md): org `state`/`national` → region,
//! `district` → municipality, `school` → school; a `schoolYear` session → the academic year of
//! every school, its `term`/`semester`/`gradingPeriod` children → periods (4 → quarters,
//! 3 → trimesters, 2 → half-years); a `homeroom` class → class (grade from `grades`, letter
//! from `classCode`), a `scheduled` class → teaching assignment of the class all its students
//! share; `identifier` of a user → СНИЛС when filled; lineItems → lessons, results → marks
//! (scores 1–5).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::NaiveDate;
use zhurnal_domain::Snils;
use zhurnal_store::batch::*;

use super::rows::{Issues, Table};
use super::source::{Source, SourceError};
use super::zcsv::Parsed;

pub const FILES: &[(&str, &[&str], bool)] = &[
    ("orgs.csv", &["sourcedId", "name", "type"], true),
    ("academicSessions.csv", &["sourcedId", "title", "type", "startDate", "endDate"], true),
    ("courses.csv", &["sourcedId", "title", "orgSourcedId"], true),
    (
        "classes.csv",
        &["sourcedId", "title", "classType", "schoolSourcedId", "termSourcedIds"],
        true,
    ),
    ("users.csv", &["sourcedId", "role", "givenName", "familyName", "orgSourcedIds"], true),
    ("enrollments.csv", &["sourcedId", "classSourcedId", "userSourcedId", "role"], true),
    ("lineItems.csv", &["sourcedId", "title", "assignDate", "classSourcedId"], false),
    ("results.csv", &["sourcedId", "lineItemSourcedId", "studentSourcedId", "score"], false),
];

/// Work type given to marks from OneRoster results (the school may re-weight it later).
pub const WORK_TYPE: &str = "oneroster";

struct Org {
    kind: String,
    parent: Option<String>,
    name: String,
    line: u64,
}

struct Session {
    kind: String,
    parent: Option<String>,
    title: String,
    from: NaiveDate,
    to: NaiveDate,
}

struct Class {
    homeroom: bool,
    school: String,
    year: Option<String>,
    grade: u8,
    letter: String,
    course: Option<String>,
    line: u64,
}

struct User {
    role: String,
    given: String,
    family: String,
    middle: Option<String>,
    orgs: Vec<String>,
    agents: Vec<String>,
    snils: Option<Snils>,
    email: Option<String>,
    phone: Option<String>,
}

struct Enrol {
    id: String,
    class: String,
    user: String,
    role: String,
    primary: bool,
    begin: Option<NaiveDate>,
    end: Option<NaiveDate>,
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default()
}

/// Reads and checks the whole set; with `keep`, builds the batch.
pub fn read(
    source: &Source,
    keep: bool,
    progress: &dyn super::Progress,
) -> Result<(Parsed, Issues), SourceError> {
    let mut is = Issues::default();
    let mut out = Parsed::default();
    let mut orgs: BTreeMap<String, Org> = BTreeMap::new();
    let mut sessions: BTreeMap<String, Session> = BTreeMap::new();
    let mut courses: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut classes: BTreeMap<String, Class> = BTreeMap::new();
    let mut users: BTreeMap<String, User> = BTreeMap::new();
    let mut enrols: Vec<Enrol> = Vec::new();
    let mut line_items: BTreeMap<String, (String, NaiveDate, u64)> = BTreeMap::new();
    let mut results: Vec<(String, String, String, String, u64)> = Vec::new();
    let mut snils_seen: HashMap<String, String> = HashMap::new();
    let mut book = None;
    for (file, required, mandatory) in FILES {
        let Some(input) = source.open_in(file, &mut book)? else {
            if *mandatory {
                is.push(file, 0, "", format!("в наборе OneRoster нет файла {file}"));
            }
            continue;
        };
        let Some(mut t) = Table::open(file, input, required, &mut is) else { continue };
        while t.next(&mut is) {
            out.rows += 1;
            if out.rows % super::PROGRESS_STEP == 0 {
                progress.done(out.rows);
            }
            let Some(id) = t.req(&mut is, "sourcedId") else { continue };
            let line = t.line;
            let dup = |t: &Table, is: &mut Issues| {
                t.issue(is, "sourcedId", format!("«{id}» встречается второй раз"))
            };
            match *file {
                "orgs.csv" => {
                    let (Some(name), Some(kind)) = (
                        t.req(&mut is, "name"),
                        t.one_of(
                            &mut is,
                            "type",
                            &["national", "state", "district", "local", "school", "department"],
                        ),
                    ) else {
                        continue;
                    };
                    if orgs
                        .insert(
                            id.clone(),
                            Org { kind, parent: t.get("parentSourcedId"), name, line },
                        )
                        .is_some()
                    {
                        dup(&t, &mut is);
                    }
                }
                "academicSessions.csv" => {
                    let title = t.req(&mut is, "title");
                    let kind = t.one_of(
                        &mut is,
                        "type",
                        &["schoolYear", "term", "semester", "gradingPeriod"],
                    );
                    let (from, to) = (t.date(&mut is, "startDate"), t.date(&mut is, "endDate"));
                    let (Some(title), Some(kind), Some(from), Some(to)) = (title, kind, from, to)
                    else {
                        continue;
                    };
                    if to < from {
                        t.issue(&mut is, "endDate", "конец периода раньше его начала");
                    }
                    if sessions
                        .insert(
                            id.clone(),
                            Session { kind, parent: t.get("parentSourcedId"), title, from, to },
                        )
                        .is_some()
                    {
                        dup(&t, &mut is);
                    }
                }
                "courses.csv" => {
                    let (Some(title), Some(org)) =
                        (t.req(&mut is, "title"), t.req(&mut is, "orgSourcedId"))
                    else {
                        continue;
                    };
                    if orgs.get(&org).is_none_or(|o| o.kind != "school") {
                        t.issue(
                            &mut is,
                            "orgSourcedId",
                            format!("«{org}» — не школа из orgs.csv: предмет относится к школе"),
                        );
                    }
                    if courses.insert(id.clone(), (title, org)).is_some() {
                        dup(&t, &mut is);
                    }
                }
                "classes.csv" => {
                    let kind = t.one_of(&mut is, "classType", &["homeroom", "scheduled"]);
                    let school = t.req(&mut is, "schoolSourcedId");
                    let (Some(kind), Some(school)) = (kind, school) else { continue };
                    if orgs.get(&school).is_none_or(|o| o.kind != "school") {
                        t.issue(
                            &mut is,
                            "schoolSourcedId",
                            format!("школа «{school}» не найдена в orgs.csv"),
                        );
                    }
                    let term = list(t.get("termSourcedIds")).into_iter().next();
                    let year = match term.as_ref().and_then(|s| sessions.get(s).map(|x| (s, x))) {
                        Some((s, x)) if x.kind == "schoolYear" => Some(s.clone()),
                        Some((_, x)) => x.parent.clone(),
                        None => {
                            t.issue(
                                &mut is,
                                "termSourcedIds",
                                "период не найден в academicSessions.csv",
                            );
                            None
                        }
                    };
                    let homeroom = kind == "homeroom";
                    let mut grade = 0;
                    let mut letter = String::new();
                    let course = t.get("courseSourcedId");
                    if homeroom {
                        let g = list(t.get("grades")).into_iter().next().unwrap_or_default();
                        match g.trim_start_matches('0').parse::<u8>() {
                            Ok(n) if (1..=11).contains(&n) => grade = n,
                            _ => t.issue(
                                &mut is,
                                "grades",
                                format!("«{g}» — нужен класс (параллель) от 01 до 11"),
                            ),
                        }
                        let code = t.get("classCode").unwrap_or_default();
                        letter = code
                            .trim_start_matches(|c: char| c.is_ascii_digit())
                            .trim()
                            .to_string();
                        if letter.is_empty() {
                            t.issue(
                                &mut is,
                                "classCode",
                                format!("«{code}» — нужна буква класса, например 5А"),
                            );
                        }
                    } else if !course.as_ref().is_some_and(|c| courses.contains_key(c)) {
                        t.issue(
                            &mut is,
                            "courseSourcedId",
                            "курс (предмет) не найден в courses.csv",
                        );
                    }
                    if classes
                        .insert(
                            id.clone(),
                            Class { homeroom, school, year, grade, letter, course, line },
                        )
                        .is_some()
                    {
                        dup(&t, &mut is);
                    }
                }
                "users.csv" => {
                    let role = t.one_of(
                        &mut is,
                        "role",
                        &[
                            "student",
                            "teacher",
                            "parent",
                            "guardian",
                            "relative",
                            "administrator",
                            "aide",
                        ],
                    );
                    let (given, family) =
                        (t.req(&mut is, "givenName"), t.req(&mut is, "familyName"));
                    let snils = match t.get("identifier") {
                        None => Some(None),
                        Some(v) => match Snils::parse(&v) {
                            Ok(s) => Some(Some(s)),
                            Err(e) => {
                                t.issue(
                                    &mut is,
                                    "identifier",
                                    format!("{e} (в identifier ожидается СНИЛС)"),
                                );
                                None
                            }
                        },
                    };
                    let (Some(role), Some(given), Some(family), Some(snils)) =
                        (role, given, family, snils)
                    else {
                        continue;
                    };
                    let uorgs = list(t.get("orgSourcedIds"));
                    for o in &uorgs {
                        if !orgs.contains_key(o) {
                            t.issue(
                                &mut is,
                                "orgSourcedIds",
                                format!("организация «{o}» не найдена в orgs.csv"),
                            );
                        }
                    }
                    if let Some(s) = &snils
                        && let Some(other) = snils_seen.insert(s.digits().to_string(), id.clone())
                    {
                        t.issue(
                            &mut is,
                            "identifier",
                            format!(
                                "этот СНИЛС уже указан у «{other}»: один человек записан дважды?"
                            ),
                        );
                    }
                    let u = User {
                        role,
                        given,
                        family,
                        middle: t.get("middleName"),
                        orgs: uorgs,
                        agents: list(t.get("agentSourcedIds")),
                        snils,
                        email: t.get("email"),
                        phone: t.get("phone"),
                    };
                    if users.insert(id.clone(), u).is_some() {
                        dup(&t, &mut is);
                    }
                }
                "enrollments.csv" => {
                    let (class, user) =
                        (t.req(&mut is, "classSourcedId"), t.req(&mut is, "userSourcedId"));
                    let role = t.one_of(
                        &mut is,
                        "role",
                        &[
                            "student",
                            "teacher",
                            "parent",
                            "guardian",
                            "relative",
                            "administrator",
                            "aide",
                        ],
                    );
                    let (begin, end) =
                        (t.date_opt(&mut is, "beginDate"), t.date_opt(&mut is, "endDate"));
                    let (Some(class), Some(user), Some(role), Some(begin), Some(end)) =
                        (class, user, role, begin, end)
                    else {
                        continue;
                    };
                    if !classes.contains_key(&class) {
                        t.issue(
                            &mut is,
                            "classSourcedId",
                            format!("класс «{class}» не найден в classes.csv"),
                        );
                    }
                    match users.get(&user) {
                        None => t.issue(&mut is, "userSourcedId", format!("пользователь «{user}» не найден в users.csv")),
                        Some(u) if u.role != role && !(role == "teacher" && u.role == "administrator") => {
                            t.issue(&mut is, "role", format!("роль «{role}» не совпадает с ролью пользователя в users.csv («{}»)", u.role))
                        }
                        Some(_) => {}
                    }
                    let primary = t.get("primary").is_some_and(|p| p == "true");
                    enrols.push(Enrol { id: id.clone(), class, user, role, primary, begin, end });
                }
                "lineItems.csv" => {
                    let (class, date) =
                        (t.req(&mut is, "classSourcedId"), t.date(&mut is, "assignDate"));
                    let (Some(class), Some(date)) = (class, date) else { continue };
                    match classes.get(&class) {
                        Some(c) if !c.homeroom => {
                            if let Some(y) = c.year.as_ref().and_then(|y| sessions.get(y))
                                && (date < y.from || date > y.to)
                            {
                                t.issue(
                                    &mut is,
                                    "assignDate",
                                    format!("дата {} вне учебного года", date.format("%d.%m.%Y")),
                                );
                            }
                        }
                        _ => t.issue(
                            &mut is,
                            "classSourcedId",
                            format!("«{class}» — не предметный (scheduled) класс из classes.csv"),
                        ),
                    }
                    if line_items.insert(id.clone(), (class, date, line)).is_some() {
                        dup(&t, &mut is);
                    }
                }
                "results.csv" => {
                    let (item, student, score) = (
                        t.req(&mut is, "lineItemSourcedId"),
                        t.req(&mut is, "studentSourcedId"),
                        t.req(&mut is, "score"),
                    );
                    let (Some(item), Some(student), Some(score)) = (item, student, score) else {
                        continue;
                    };
                    if !line_items.contains_key(&item) {
                        t.issue(
                            &mut is,
                            "lineItemSourcedId",
                            format!("«{item}» не найден в lineItems.csv"),
                        );
                    }
                    if users.get(&student).is_none_or(|u| u.role != "student") {
                        t.issue(
                            &mut is,
                            "studentSourcedId",
                            format!("ученик «{student}» не найден в users.csv"),
                        );
                    }
                    let value = score.trim_end_matches(".0").to_string();
                    if !matches!(value.as_str(), "1" | "2" | "3" | "4" | "5") {
                        t.issue(
                            &mut is,
                            "score",
                            format!("«{score}» — в журнале отметки от 1 до 5"),
                        );
                    }
                    results.push((id.clone(), item, student, value, line));
                }
                _ => {}
            }
        }
    }

    // Cross-file checks: the territory tree, the periods of each year, class of each subject class.
    for (id, o) in &orgs {
        let parent_kind = o.parent.as_ref().and_then(|p| orgs.get(p)).map(|p| p.kind.as_str());
        let ok = match o.kind.as_str() {
            "school" => parent_kind == Some("district"),
            "district" => matches!(parent_kind, Some("state" | "national")),
            _ => true,
        };
        if !ok {
            is.push("orgs.csv", o.line, "parentSourcedId", format!("«{id}»: школа должна входить в district (муниципалитет), district — в state (регион)"));
        }
    }
    let mut terms: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, s) in &sessions {
        if s.kind != "schoolYear" {
            match s
                .parent
                .as_ref()
                .filter(|p| sessions.get(*p).is_some_and(|y| y.kind == "schoolYear"))
            {
                Some(p) => terms.entry(p.clone()).or_default().push(id.clone()),
                None => is.push(
                    "academicSessions.csv",
                    0,
                    "parentSourcedId",
                    format!("«{id}»: период должен входить в учебный год (schoolYear)"),
                ),
            }
        }
    }
    for (year, list) in &terms {
        if !(2..=4).contains(&list.len()) {
            is.push("academicSessions.csv", 0, "", format!("в учебном году «{year}» {} периодов: нужно 4 четверти, 3 триместра или 2 полугодия", list.len()));
        }
    }
    let mut homeroom_of: HashMap<&str, &str> = HashMap::new();
    for e in &enrols {
        if e.role == "student" && classes.get(&e.class).is_some_and(|c| c.homeroom) {
            homeroom_of.insert(&e.user, &e.class);
        }
    }
    let mut subject_class: HashMap<&str, &str> = HashMap::new();
    let mut teacher_of: HashMap<&str, &str> = HashMap::new();
    for (id, c) in &classes {
        if c.homeroom {
            continue;
        }
        let homerooms: HashSet<&str> = enrols
            .iter()
            .filter(|e| e.class == *id && e.role == "student")
            .filter_map(|e| homeroom_of.get(e.user.as_str()).copied())
            .collect();
        match homerooms.len() {
            1 => {
                subject_class.insert(id, homerooms.into_iter().next().unwrap_or_default());
            }
            0 => is.push("classes.csv", c.line, "sourcedId", format!("«{id}»: ни один ученик этого предметного класса не записан в классный коллектив (homeroom)")),
            _ => is.push("classes.csv", c.line, "sourcedId", format!("«{id}»: ученики из разных классов — разделите предмет по классам")),
        }
        let teachers: Vec<&Enrol> =
            enrols.iter().filter(|e| e.class == *id && e.role == "teacher").collect();
        match teachers.iter().find(|e| e.primary).or(teachers.first()) {
            Some(e) => {
                teacher_of.insert(id, &e.user);
            }
            None => is.push(
                "classes.csv",
                c.line,
                "sourcedId",
                format!("«{id}»: у предметного класса нет учителя в enrollments.csv"),
            ),
        }
    }
    if !is.is_empty() || !keep {
        return Ok((out, is));
    }

    // Build the batch.
    let b = &mut out.batch;
    for (id, o) in &orgs {
        match o.kind.as_str() {
            "state" | "national" => {
                b.regions.push(BRegion { external_id: id.clone(), name: o.name.clone() })
            }
            "district" => b.municipalities.push(BMunicipality {
                external_id: id.clone(),
                region: o.parent.clone().unwrap_or_default(),
                name: o.name.clone(),
            }),
            "school" => {
                b.schools.push(BSchool {
                    external_id: id.clone(),
                    municipality: o.parent.clone().unwrap_or_default(),
                    name: o.name.clone(),
                    short_name: o.name.chars().take(40).collect(),
                });
                b.work_types.push(BWorkType {
                    school: id.clone(),
                    code: WORK_TYPE.into(),
                    name: "Отметка (OneRoster)".into(),
                    weight: 1,
                });
            }
            _ => {}
        }
    }
    let schools: Vec<&String> =
        orgs.iter().filter(|(_, o)| o.kind == "school").map(|(id, _)| id).collect();
    let year_ext = |year: &str, school: &str| format!("{year}@{school}");
    let scheme_of = |year: &str| match terms.get(year).map_or(0, |l| l.len()) {
        4 => "quarters",
        3 => "trimesters",
        _ => "half_years",
    };
    for (id, s) in sessions.iter().filter(|(_, s)| s.kind == "schoolYear") {
        for school in &schools {
            b.years.push(BYear {
                external_id: year_ext(id, school),
                school: (*school).clone(),
                name: s.title.clone(),
                starts_on: s.from,
                ends_on: s.to,
            });
            let mut list: Vec<(&String, &Session)> = terms
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|t| sessions.get(t).map(|s| (t, s)))
                .collect();
            list.sort_by_key(|(_, s)| s.from);
            for (n, (t, s)) in list.into_iter().enumerate() {
                b.periods.push(BPeriod {
                    external_id: year_ext(t, school),
                    year: year_ext(id, school),
                    scheme: scheme_of(id).into(),
                    number: u8::try_from(n + 1).unwrap_or(1),
                    starts_on: s.from,
                    ends_on: s.to,
                    closed_on: None,
                });
            }
        }
    }
    for (id, (title, org)) in &courses {
        b.subjects.push(BSubject {
            external_id: id.clone(),
            school: org.clone(),
            name: title.clone(),
            grading: "five_point".into(),
        });
    }
    for (id, u) in &users {
        if let Some(s) = &u.snils {
            out.snils.insert(id.clone(), s.clone());
        }
        b.persons.push(BPerson {
            external_id: id.clone(),
            uid: String::new(),
            last_name: u.family.clone(),
            first_name: u.given.clone(),
            middle_name: u.middle.clone(),
            birth_date: None,
            gender: None,
            snils_hmac: None,
            snils_cipher: None,
            phone: u.phone.clone(),
            email: u.email.clone(),
        });
        let role = match u.role.as_str() {
            "teacher" => Some("teacher"),
            "administrator" => Some("school-admin"),
            _ => None,
        };
        if let Some(role) = role {
            for o in u.orgs.iter().filter(|o| orgs.get(*o).is_some_and(|x| x.kind == "school")) {
                b.staff_roles.push(BStaffRole {
                    person: id.clone(),
                    role: role.into(),
                    scope: o.clone(),
                });
            }
        }
    }
    let mut links: HashSet<(String, String)> = HashSet::new();
    for (id, u) in &users {
        for a in &u.agents {
            let Some(other) = users.get(a) else { continue };
            match (u.role.as_str(), other.role.as_str()) {
                ("student", "parent" | "guardian" | "relative") => {
                    links.insert((a.clone(), id.clone()))
                }
                ("parent" | "guardian" | "relative", "student") => {
                    links.insert((id.clone(), a.clone()))
                }
                _ => false,
            };
        }
    }
    let mut links: Vec<_> = links.into_iter().collect();
    links.sort();
    b.guardianships =
        links.into_iter().map(|(parent, child)| BGuardianship { parent, child }).collect();
    for (id, c) in classes.iter().filter(|(_, c)| c.homeroom) {
        let year = c.year.clone().unwrap_or_default();
        let teacher = enrols
            .iter()
            .find(|e| e.class == *id && e.role == "teacher" && e.primary)
            .or_else(|| enrols.iter().find(|e| e.class == *id && e.role == "teacher"))
            .map(|e| e.user.clone());
        b.classes.push(BClass {
            external_id: id.clone(),
            school: c.school.clone(),
            year: year_ext(&year, &c.school),
            grade: c.grade,
            letter: c.letter.clone(),
            class_teacher: teacher,
            period_scheme: scheme_of(&year).into(),
            newly_formed: false,
        });
        let (from, to) = c
            .year
            .as_ref()
            .and_then(|y| sessions.get(y))
            .map_or((NaiveDate::MIN, NaiveDate::MAX), |s| (s.from, s.to));
        for e in enrols.iter().filter(|e| e.class == *id && e.role == "student") {
            let departed = e.end.filter(|d| *d < to);
            b.enrolments.push(BEnrolment {
                external_id: e.id.clone(),
                student: e.user.clone(),
                class: id.clone(),
                admitted_on: e.begin.unwrap_or(from),
                departed_on: departed,
                departure_kind: departed.map(|_| "other".to_string()),
                departure_reason: None,
            });
        }
    }
    for (id, c) in classes.iter().filter(|(_, c)| !c.homeroom) {
        b.assignments.push(BAssignment {
            external_id: id.clone(),
            teacher: teacher_of.get(id.as_str()).map(|s| s.to_string()).unwrap_or_default(),
            class: subject_class.get(id.as_str()).map(|s| s.to_string()).unwrap_or_default(),
            group: None,
            subject: c.course.clone().unwrap_or_default(),
        });
    }
    let mut per_day: HashMap<(String, NaiveDate), u8> = HashMap::new();
    for (id, (class, date, _)) in &line_items {
        let n = per_day.entry((class.clone(), *date)).or_insert(0);
        *n += 1;
        b.lessons.push(BLesson {
            external_id: id.clone(),
            assignment: class.clone(),
            date: *date,
            lesson_number: *n,
            topic: None,
            homework: None,
        });
    }
    for (id, item, student, value, _) in &results {
        let Some((class, date, _)) = line_items.get(item) else { continue };
        b.marks.push(BMark {
            external_id: id.clone(),
            lesson: item.clone(),
            student: student.clone(),
            value: value.clone(),
            work_type: WORK_TYPE.into(),
            comment: None,
            author: teacher_of.get(class.as_str()).map(|s| s.to_string()).unwrap_or_default(),
            created_at: date
                .and_hms_opt(9, 0, 0)
                .map(|d| d.and_utc().timestamp_micros())
                .unwrap_or(0),
        });
    }
    Ok((out, is))
}
