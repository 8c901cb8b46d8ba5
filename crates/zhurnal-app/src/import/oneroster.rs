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
//!
//! The set is read as a stream, like the Zhurnal format: orgs, sessions and courses (a few
//! rows per school) are kept in memory, everything that grows with the region (classes, users,
//! enrolments, line items, results) goes to a private scratch file ([`keys::scratch`]). The
//! files refer to each other in both directions (a class's teacher and the class a subject is
//! taught to come from enrollments, which come after classes and users), so the rows that
//! depend on later files are written from the scratch tables once enrollments are read:
//! persons as users are read, then classes, enrolments, guardianships and assignments, then
//! lessons and marks as line items and results are read. Each part of the load refers only to
//! rows of earlier parts or of itself.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension, params};
use zhurnal_domain::Snils;
use zhurnal_store::batch::*;

use super::keys::{self, ScratchError, SnilsKey};
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

const ROLES: &[&str] =
    &["student", "teacher", "parent", "guardian", "relative", "administrator", "aide"];

/// Lessons of a day, as the Zhurnal format allows (`lessons.csv`, `lesson_number`).
const MAX_LESSONS_A_DAY: u8 = 20;

/// Records written from one scratch query: bounds what a part without a row limit (the
/// whole-set [`read`]) holds between queries.
const PAGE: u64 = 2_000;

/// The scratch tables. Ids are OneRoster `sourcedId`s; no names and no СНИЛС go in (a
/// СНИЛС only as a keyed hash). Row ids keep file order, which is the order rows are written.
const SCHEMA: &str = "
    CREATE TABLE classes (id TEXT NOT NULL UNIQUE, homeroom INTEGER NOT NULL,
        school TEXT NOT NULL, year TEXT, grade INTEGER NOT NULL, letter TEXT NOT NULL,
        course TEXT, line INTEGER NOT NULL, teacher TEXT, home TEXT, homes INTEGER);
    CREATE TABLE users (id TEXT NOT NULL UNIQUE, role TEXT NOT NULL);
    CREATE TABLE snils (hash BLOB PRIMARY KEY, user TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE agents (user TEXT NOT NULL, agent TEXT NOT NULL);
    CREATE TABLE enrols (id TEXT NOT NULL UNIQUE, class TEXT NOT NULL, user TEXT NOT NULL,
        role TEXT NOT NULL, is_primary INTEGER NOT NULL, begin_day INTEGER, end_day INTEGER);
    CREATE TABLE homes (student TEXT PRIMARY KEY, class TEXT NOT NULL) WITHOUT ROWID;
    CREATE TABLE links (parent TEXT NOT NULL, child TEXT NOT NULL, UNIQUE (parent, child));
    CREATE TABLE items (id TEXT NOT NULL UNIQUE, class TEXT NOT NULL, day INTEGER NOT NULL);
    CREATE TABLE lesson_days (class TEXT NOT NULL, day INTEGER NOT NULL, n INTEGER NOT NULL,
        PRIMARY KEY (class, day)) WITHOUT ROWID;
    CREATE TABLE results (id TEXT PRIMARY KEY) WITHOUT ROWID;";

/// What enrollments decide, once all of them are read: each pupil's homeroom class, each
/// class's teacher (the primary one, else the first listed), the homeroom a subject class is
/// taught to (the one all its pupils share; `homes` counts them), and the parent–child links
/// of `agentSourcedIds` (either side may name the other).
const DERIVE: &str = "
    CREATE INDEX enrols_by_class ON enrols (class, role);
    INSERT INTO homes (student, class)
        SELECT e.user, MAX(e.class) FROM enrols e JOIN classes c ON c.id = e.class
        WHERE e.role = 'student' AND c.homeroom = 1 GROUP BY e.user;
    UPDATE classes SET teacher = (
        SELECT e.user FROM enrols e WHERE e.class = classes.id AND e.role = 'teacher'
        ORDER BY e.is_primary DESC, e.rowid LIMIT 1);
    UPDATE classes SET
        homes = (SELECT COUNT(DISTINCT h.class) FROM enrols e JOIN homes h ON h.student = e.user
                 WHERE e.class = classes.id AND e.role = 'student'),
        home = (SELECT MIN(h.class) FROM enrols e JOIN homes h ON h.student = e.user
                WHERE e.class = classes.id AND e.role = 'student')
        WHERE homeroom = 0;
    INSERT OR IGNORE INTO links (parent, child)
        SELECT CASE WHEN u.role = 'student' THEN a.agent ELSE a.user END,
               CASE WHEN u.role = 'student' THEN a.user ELSE a.agent END
        FROM agents a JOIN users u ON u.id = a.user JOIN users o ON o.id = a.agent
        WHERE (u.role = 'student' AND o.role IN ('parent', 'guardian', 'relative'))
           OR (u.role IN ('parent', 'guardian', 'relative') AND o.role = 'student')
        ORDER BY 1, 2;";

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

/// Where the reader is: a file being read, or rows being written from the scratch tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Orgs,
    Sessions,
    Courses,
    Classes,
    Users,
    Enrollments,
    HomeroomClasses,
    Enrolments,
    Guardianships,
    Assignments,
    LineItems,
    Results,
    Done,
}

impl Stage {
    fn next(self) -> Self {
        match self {
            Self::Orgs => Self::Sessions,
            Self::Sessions => Self::Courses,
            Self::Courses => Self::Classes,
            Self::Classes => Self::Users,
            Self::Users => Self::Enrollments,
            Self::Enrollments => Self::HomeroomClasses,
            Self::HomeroomClasses => Self::Enrolments,
            Self::Enrolments => Self::Guardianships,
            Self::Guardianships => Self::Assignments,
            Self::Assignments => Self::LineItems,
            Self::LineItems => Self::Results,
            Self::Results | Self::Done => Self::Done,
        }
    }

    /// The file this stage reads (index into [`FILES`]); `None` for a writing stage.
    fn file(self) -> Option<usize> {
        match self {
            Self::Orgs => Some(0),
            Self::Sessions => Some(1),
            Self::Courses => Some(2),
            Self::Classes => Some(3),
            Self::Users => Some(4),
            Self::Enrollments => Some(5),
            Self::LineItems => Some(6),
            Self::Results => Some(7),
            _ => None,
        }
    }
}

fn list(v: Option<String>) -> Vec<String> {
    v.map(|s| s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect())
        .unwrap_or_default()
}

fn day_of(d: NaiveDate) -> i32 {
    chrono::Datelike::num_days_from_ce(&d)
}

fn date_of(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day).unwrap_or(NaiveDate::MIN)
}

/// The external id of a OneRoster year or term at one school (OneRoster's sessions are
/// region-wide; Zhurnal's years and periods belong to a school).
fn year_ext(year: &str, school: &str) -> String {
    format!("{year}@{school}")
}

/// Reads and checks the whole set; with `keep`, builds the batch (in one part).
pub fn read(
    source: &Source,
    keep: bool,
    progress: &dyn super::Progress,
) -> Result<(Parsed, Issues), SourceError> {
    let mut stream = Stream::new(source, keep)?;
    let mut out = Parsed::default();
    while let Some(part) = stream.next_part(u64::MAX, progress)? {
        out = part;
    }
    out.rows = stream.rows();
    Ok((out, stream.finish()))
}

/// The set read in parts of bounded size (see the module's documentation for the order).
pub struct Stream<'s> {
    source: &'s Source,
    keep: bool,
    stage: Stage,
    /// Whether the current stage's file was looked for already.
    opened: bool,
    table: Option<Table>,
    book: Option<super::xlsx::Book>,
    orgs: BTreeMap<String, Org>,
    sessions: BTreeMap<String, Session>,
    /// Course → (title, school).
    courses: BTreeMap<String, (String, String)>,
    /// School year → its terms.
    terms: BTreeMap<String, Vec<String>>,
    db: Connection,
    snils_key: SnilsKey,
    ops: u32,
    /// The last scratch row written by the current writing stage.
    after: i64,
    issues: Issues,
    rows: u64,
}

impl<'s> Stream<'s> {
    pub fn new(source: &'s Source, keep: bool) -> Result<Self, SourceError> {
        Ok(Self {
            source,
            keep,
            stage: Stage::Orgs,
            opened: false,
            table: None,
            book: None,
            orgs: BTreeMap::new(),
            sessions: BTreeMap::new(),
            courses: BTreeMap::new(),
            terms: BTreeMap::new(),
            db: keys::scratch(SCHEMA)?,
            snils_key: SnilsKey::new(),
            ops: 0,
            after: 0,
            issues: Issues::default(),
            rows: 0,
        })
    }

    /// Rows read so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Problems found so far.
    pub fn issues(&self) -> &Issues {
        &self.issues
    }

    /// Every problem found (call after the last part).
    pub fn finish(self) -> Issues {
        self.issues
    }

    /// The next part: at most `max_rows` rows read and records written (a stage's end may
    /// add the few rows of the territory and years at once), or `None` at the end.
    pub fn next_part(
        &mut self,
        max_rows: u64,
        progress: &dyn super::Progress,
    ) -> Result<Option<Parsed>, SourceError> {
        let mut out = Parsed::default();
        let mut size = 0u64;
        while self.stage != Stage::Done && size < max_rows {
            let Some(index) = self.stage.file() else {
                let written = self.write(&mut out.batch, (max_rows - size).min(PAGE))?;
                size += written;
                if written == 0 {
                    size += self.end_stage(&mut out.batch)?;
                }
                continue;
            };
            let (file, required, mandatory) = FILES[index];
            if !self.opened {
                self.opened = true;
                match self.source.open_in(file, &mut self.book)? {
                    Some(input) => {
                        self.table = Table::open(file, input, required, &mut self.issues)
                    }
                    None if mandatory => self.issues.push(
                        file,
                        0,
                        "",
                        format!("в наборе OneRoster нет файла {file}"),
                    ),
                    None => {}
                }
            }
            let Some(mut t) = self.table.take() else {
                size += self.end_stage(&mut out.batch)?;
                continue;
            };
            if !t.next(&mut self.issues) {
                size += self.end_stage(&mut out.batch)?;
                continue;
            }
            self.rows += 1;
            out.rows += 1;
            size += 1;
            if self.rows.is_multiple_of(super::PROGRESS_STEP) {
                progress.done(self.rows);
            }
            self.read_row(file, &t, &mut out)?;
            self.table = Some(t);
        }
        Ok((size > 0).then_some(out))
    }

    /// Closes the current stage (with the checks and rows that wait for its end) and moves
    /// to the next one; returns the records written.
    fn end_stage(&mut self, b: &mut Batch) -> Result<u64, ScratchError> {
        let mut written = 0;
        match self.stage {
            Stage::Courses => {
                self.check_territory_and_years();
                if self.keep {
                    written = self.write_territory_and_years(b);
                }
            }
            Stage::Enrollments => self.derive()?,
            _ => {}
        }
        self.stage = self.stage.next();
        // The check pass writes nothing, so it skips the writing stages.
        while !self.keep && self.stage != Stage::Done && self.stage.file().is_none() {
            self.stage = self.stage.next();
        }
        self.opened = false;
        self.table = None;
        self.after = 0;
        Ok(written)
    }

    fn read_row(&mut self, file: &str, t: &Table, out: &mut Parsed) -> Result<(), ScratchError> {
        let is = &mut self.issues;
        let Some(id) = t.req(is, "sourcedId") else { return Ok(()) };
        let dup =
            |is: &mut Issues| t.issue(is, "sourcedId", format!("«{id}» встречается второй раз"));
        let db = &self.db;
        match file {
            "orgs.csv" => {
                let (Some(name), Some(kind)) = (
                    t.req(is, "name"),
                    t.one_of(
                        is,
                        "type",
                        &["national", "state", "district", "local", "school", "department"],
                    ),
                ) else {
                    return Ok(());
                };
                let org = Org { kind, parent: t.get("parentSourcedId"), name, line: t.line };
                if self.orgs.insert(id.clone(), org).is_some() {
                    dup(is);
                }
            }
            "academicSessions.csv" => {
                let title = t.req(is, "title");
                let kind =
                    t.one_of(is, "type", &["schoolYear", "term", "semester", "gradingPeriod"]);
                let (from, to) = (t.date(is, "startDate"), t.date(is, "endDate"));
                let (Some(title), Some(kind), Some(from), Some(to)) = (title, kind, from, to)
                else {
                    return Ok(());
                };
                if to < from {
                    t.issue(is, "endDate", "конец периода раньше его начала");
                }
                let session = Session { kind, parent: t.get("parentSourcedId"), title, from, to };
                if self.sessions.insert(id.clone(), session).is_some() {
                    dup(is);
                }
            }
            "courses.csv" => {
                let (Some(title), Some(org)) = (t.req(is, "title"), t.req(is, "orgSourcedId"))
                else {
                    return Ok(());
                };
                if self.orgs.get(&org).is_none_or(|o| o.kind != "school") {
                    t.issue(
                        is,
                        "orgSourcedId",
                        format!("«{org}» — не школа из orgs.csv: предмет относится к школе"),
                    );
                }
                if self.courses.insert(id.clone(), (title, org)).is_some() {
                    dup(is);
                }
            }
            "classes.csv" => {
                let kind = t.one_of(is, "classType", &["homeroom", "scheduled"]);
                let school = t.req(is, "schoolSourcedId");
                let (Some(kind), Some(school)) = (kind, school) else { return Ok(()) };
                if self.orgs.get(&school).is_none_or(|o| o.kind != "school") {
                    t.issue(
                        is,
                        "schoolSourcedId",
                        format!("школа «{school}» не найдена в orgs.csv"),
                    );
                }
                let term = list(t.get("termSourcedIds")).into_iter().next();
                let year = match term.as_ref().and_then(|s| self.sessions.get(s).map(|x| (s, x))) {
                    Some((s, x)) if x.kind == "schoolYear" => Some(s.clone()),
                    Some((_, x)) => x.parent.clone(),
                    None => {
                        t.issue(is, "termSourcedIds", "период не найден в academicSessions.csv");
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
                            is,
                            "grades",
                            format!("«{g}» — нужен класс (параллель) от 01 до 11"),
                        ),
                    }
                    let code = t.get("classCode").unwrap_or_default();
                    letter =
                        code.trim_start_matches(|c: char| c.is_ascii_digit()).trim().to_string();
                    if letter.is_empty() {
                        t.issue(
                            is,
                            "classCode",
                            format!("«{code}» — нужна буква класса, например 5А"),
                        );
                    }
                } else if !course.as_ref().is_some_and(|c| self.courses.contains_key(c)) {
                    t.issue(is, "courseSourcedId", "курс (предмет) не найден в courses.csv");
                }
                let added = db
                    .prepare_cached(
                        "INSERT INTO classes (id, homeroom, school, year, grade, letter, course, line)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![id, homeroom, school, year, grade, letter, course, t.line])?;
                if added == 0 {
                    dup(is);
                }
                keys::tick(db, &mut self.ops)?;
            }
            "users.csv" => {
                let role = t.one_of(is, "role", ROLES);
                let (given, family) = (t.req(is, "givenName"), t.req(is, "familyName"));
                let snils = match t.get("identifier") {
                    None => Some(None),
                    Some(v) => match Snils::parse(&v) {
                        Ok(s) => Some(Some(s)),
                        Err(e) => {
                            t.issue(
                                is,
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
                    return Ok(());
                };
                let orgs = list(t.get("orgSourcedIds"));
                for o in &orgs {
                    if !self.orgs.contains_key(o) {
                        t.issue(
                            is,
                            "orgSourcedIds",
                            format!("организация «{o}» не найдена в orgs.csv"),
                        );
                    }
                }
                if let Some(s) = &snils {
                    let hash = self.snils_key.hash(s.digits());
                    let added = db
                        .prepare_cached(
                            "INSERT INTO snils (hash, user) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                        )?
                        .execute(params![hash, id])?;
                    if added == 0 {
                        let other: String = db
                            .prepare_cached("SELECT user FROM snils WHERE hash = ?1")?
                            .query_row(params![hash], |r| r.get(0))?;
                        t.issue(
                            is,
                            "identifier",
                            format!(
                                "этот СНИЛС уже указан у «{other}»: один человек записан дважды?"
                            ),
                        );
                    }
                }
                let added = db
                    .prepare_cached(
                        "INSERT INTO users (id, role) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![id, role])?;
                keys::tick(db, &mut self.ops)?;
                if added == 0 {
                    dup(is);
                    return Ok(());
                }
                for a in list(t.get("agentSourcedIds")) {
                    db.prepare_cached("INSERT INTO agents (user, agent) VALUES (?1, ?2)")?
                        .execute(params![id, a])?;
                }
                if !self.keep {
                    return Ok(());
                }
                let staff = match role.as_str() {
                    "teacher" => Some("teacher"),
                    "administrator" => Some("school-admin"),
                    _ => None,
                };
                if let Some(staff) = staff {
                    for o in orgs
                        .iter()
                        .filter(|o| self.orgs.get(*o).is_some_and(|x| x.kind == "school"))
                    {
                        out.batch.staff_roles.push(BStaffRole {
                            person: id.clone(),
                            role: staff.into(),
                            scope: o.clone(),
                        });
                    }
                }
                if let Some(s) = snils {
                    out.snils.insert(id.clone(), s);
                }
                out.batch.persons.push(BPerson {
                    external_id: id,
                    uid: String::new(),
                    last_name: family,
                    first_name: given,
                    middle_name: t.get("middleName"),
                    birth_date: None,
                    gender: None,
                    snils_hmac: None,
                    snils_cipher: None,
                    phone: t.get("phone"),
                    email: t.get("email"),
                });
            }
            "enrollments.csv" => {
                let (class, user) = (t.req(is, "classSourcedId"), t.req(is, "userSourcedId"));
                let role = t.one_of(is, "role", ROLES);
                let (begin, end) = (t.date_opt(is, "beginDate"), t.date_opt(is, "endDate"));
                let (Some(class), Some(user), Some(role), Some(begin), Some(end)) =
                    (class, user, role, begin, end)
                else {
                    return Ok(());
                };
                let class_known = db
                    .prepare_cached("SELECT 1 FROM classes WHERE id = ?1")?
                    .exists(params![class])?;
                if !class_known {
                    t.issue(
                        is,
                        "classSourcedId",
                        format!("класс «{class}» не найден в classes.csv"),
                    );
                }
                let user_role: Option<String> = db
                    .prepare_cached("SELECT role FROM users WHERE id = ?1")?
                    .query_row(params![user], |r| r.get(0))
                    .optional()?;
                match user_role {
                    None => t.issue(is, "userSourcedId", format!("пользователь «{user}» не найден в users.csv")),
                    Some(u) if u != role && !(role == "teacher" && u == "administrator") => {
                        t.issue(is, "role", format!("роль «{role}» не совпадает с ролью пользователя в users.csv («{u}»)"))
                    }
                    Some(_) => {}
                }
                let primary = t.get("primary").is_some_and(|p| p == "true");
                let added = db
                    .prepare_cached(
                        "INSERT INTO enrols (id, class, user, role, is_primary, begin_day, end_day)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![
                        id,
                        class,
                        user,
                        role,
                        primary,
                        begin.map(day_of),
                        end.map(day_of)
                    ])?;
                if added == 0 {
                    dup(is);
                }
                keys::tick(db, &mut self.ops)?;
            }
            "lineItems.csv" => {
                let (class, date) = (t.req(is, "classSourcedId"), t.date(is, "assignDate"));
                let (Some(class), Some(date)) = (class, date) else { return Ok(()) };
                let facts: Option<(bool, Option<String>)> = db
                    .prepare_cached("SELECT homeroom, year FROM classes WHERE id = ?1")?
                    .query_row(params![class], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                match facts {
                    Some((false, year)) => {
                        if let Some(y) = year.as_ref().and_then(|y| self.sessions.get(y))
                            && (date < y.from || date > y.to)
                        {
                            t.issue(
                                is,
                                "assignDate",
                                format!("дата {} вне учебного года", date.format("%d.%m.%Y")),
                            );
                        }
                    }
                    _ => t.issue(
                        is,
                        "classSourcedId",
                        format!("«{class}» — не предметный (scheduled) класс из classes.csv"),
                    ),
                }
                let added = db
                    .prepare_cached(
                        "INSERT INTO items (id, class, day) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )?
                    .execute(params![id, class, day_of(date)])?;
                keys::tick(db, &mut self.ops)?;
                if added == 0 {
                    dup(is);
                    return Ok(());
                }
                // Items of one class on one day become its lessons 1, 2, … in file order.
                let n: i64 = db
                    .prepare_cached(
                        "INSERT INTO lesson_days (class, day, n) VALUES (?1, ?2, 1)
                         ON CONFLICT (class, day) DO UPDATE SET n = n + 1 RETURNING n",
                    )?
                    .query_row(params![class, day_of(date)], |r| r.get(0))?;
                let Some(number) = u8::try_from(n).ok().filter(|n| *n <= MAX_LESSONS_A_DAY) else {
                    t.issue(
                        is,
                        "assignDate",
                        format!(
                            "у «{class}» больше {MAX_LESSONS_A_DAY} работ за {}: каждая работа — урок дня, а уроков в дне не больше {MAX_LESSONS_A_DAY}",
                            date.format("%d.%m.%Y")
                        ),
                    );
                    return Ok(());
                };
                if !self.keep {
                    return Ok(());
                }
                out.batch.lessons.push(BLesson {
                    external_id: id,
                    assignment: class,
                    date,
                    lesson_number: number,
                    topic: None,
                    homework: None,
                });
            }
            "results.csv" => {
                let (item, student, score) = (
                    t.req(is, "lineItemSourcedId"),
                    t.req(is, "studentSourcedId"),
                    t.req(is, "score"),
                );
                let (Some(item), Some(student), Some(score)) = (item, student, score) else {
                    return Ok(());
                };
                let lesson: Option<(i32, Option<String>)> = db
                    .prepare_cached(
                        "SELECT i.day, c.teacher FROM items i LEFT JOIN classes c ON c.id = i.class
                         WHERE i.id = ?1",
                    )?
                    .query_row(params![item], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if lesson.is_none() {
                    t.issue(is, "lineItemSourcedId", format!("«{item}» не найден в lineItems.csv"));
                }
                let role: Option<String> = db
                    .prepare_cached("SELECT role FROM users WHERE id = ?1")?
                    .query_row(params![student], |r| r.get(0))
                    .optional()?;
                if role.is_none_or(|r| r != "student") {
                    t.issue(
                        is,
                        "studentSourcedId",
                        format!("ученик «{student}» не найден в users.csv"),
                    );
                }
                let value = score.trim_end_matches(".0").to_string();
                if !matches!(value.as_str(), "1" | "2" | "3" | "4" | "5") {
                    t.issue(is, "score", format!("«{score}» — в журнале отметки от 1 до 5"));
                }
                let added = db
                    .prepare_cached("INSERT INTO results (id) VALUES (?1) ON CONFLICT DO NOTHING")?
                    .execute(params![id])?;
                keys::tick(db, &mut self.ops)?;
                if added == 0 {
                    dup(is);
                    return Ok(());
                }
                let (true, Some((day, teacher))) = (self.keep, lesson) else { return Ok(()) };
                out.batch.marks.push(BMark {
                    external_id: id,
                    lesson: item,
                    student,
                    value,
                    work_type: WORK_TYPE.into(),
                    comment: None,
                    author: teacher.unwrap_or_default(),
                    created_at: date_of(day)
                        .and_hms_opt(9, 0, 0)
                        .map(|d| d.and_utc().timestamp_micros())
                        .unwrap_or(0),
                });
            }
            _ => {}
        }
        Ok(())
    }

    /// The checks of orgs and sessions as a whole: the territory tree and the periods of
    /// each year.
    fn check_territory_and_years(&mut self) {
        let is = &mut self.issues;
        for (id, o) in &self.orgs {
            let parent_kind =
                o.parent.as_ref().and_then(|p| self.orgs.get(p)).map(|p| p.kind.as_str());
            let ok = match o.kind.as_str() {
                "school" => parent_kind == Some("district"),
                "district" => matches!(parent_kind, Some("state" | "national")),
                _ => true,
            };
            if !ok {
                is.push("orgs.csv", o.line, "parentSourcedId", format!("«{id}»: школа должна входить в district (муниципалитет), district — в state (регион)"));
            }
        }
        for (id, s) in &self.sessions {
            if s.kind == "schoolYear" {
                continue;
            }
            match s
                .parent
                .as_ref()
                .filter(|p| self.sessions.get(*p).is_some_and(|y| y.kind == "schoolYear"))
            {
                Some(p) => self.terms.entry(p.clone()).or_default().push(id.clone()),
                None => is.push(
                    "academicSessions.csv",
                    0,
                    "parentSourcedId",
                    format!("«{id}»: период должен входить в учебный год (schoolYear)"),
                ),
            }
        }
        for (year, list) in &self.terms {
            if !(2..=4).contains(&list.len()) {
                is.push("academicSessions.csv", 0, "", format!("в учебном году «{year}» {} периодов: нужно 4 четверти, 3 триместра или 2 полугодия", list.len()));
            }
        }
    }

    fn scheme_of(&self, year: &str) -> &'static str {
        match self.terms.get(year).map_or(0, Vec::len) {
            4 => "quarters",
            3 => "trimesters",
            _ => "half_years",
        }
    }

    /// Regions, municipalities, schools (each with the work type of OneRoster marks), the
    /// years and periods of every school, and subjects.
    fn write_territory_and_years(&self, b: &mut Batch) -> u64 {
        let count = |b: &Batch| {
            (b.regions.len()
                + b.municipalities.len()
                + b.schools.len()
                + b.work_types.len()
                + b.years.len()
                + b.periods.len()
                + b.subjects.len()) as u64
        };
        let before = count(b);
        for (id, o) in &self.orgs {
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
            self.orgs.iter().filter(|(_, o)| o.kind == "school").map(|(id, _)| id).collect();
        for (id, s) in self.sessions.iter().filter(|(_, s)| s.kind == "schoolYear") {
            let mut terms: Vec<(&String, &Session)> = self
                .terms
                .get(id)
                .into_iter()
                .flatten()
                .filter_map(|t| self.sessions.get(t).map(|s| (t, s)))
                .collect();
            terms.sort_by_key(|(_, s)| s.from);
            for school in &schools {
                b.years.push(BYear {
                    external_id: year_ext(id, school),
                    school: (*school).clone(),
                    name: s.title.clone(),
                    starts_on: s.from,
                    ends_on: s.to,
                });
                for (n, (t, s)) in terms.iter().enumerate() {
                    b.periods.push(BPeriod {
                        external_id: year_ext(t, school),
                        year: year_ext(id, school),
                        scheme: self.scheme_of(id).into(),
                        number: u8::try_from(n + 1).unwrap_or(1),
                        starts_on: s.from,
                        ends_on: s.to,
                        closed_on: None,
                    });
                }
            }
        }
        for (id, (title, org)) in &self.courses {
            b.subjects.push(BSubject {
                external_id: id.clone(),
                school: org.clone(),
                name: title.clone(),
                grading: "five_point".into(),
            });
        }
        count(b) - before
    }

    /// Runs [`DERIVE`] and reports the subject classes it could not place: no pupil in a
    /// homeroom, pupils of several homerooms, no teacher.
    fn derive(&mut self) -> Result<(), ScratchError> {
        self.db.execute_batch(DERIVE)?;
        let is = &mut self.issues;
        let mut st = self.db.prepare(
            "SELECT id, line, homes, teacher IS NULL FROM classes
             WHERE homeroom = 0 AND (homes <> 1 OR teacher IS NULL) ORDER BY rowid",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (id, line, homes, no_teacher): (String, u64, i64, bool) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            match homes {
                1 => {}
                0 => is.push("classes.csv", line, "sourcedId", format!("«{id}»: ни один ученик этого предметного класса не записан в классный коллектив (homeroom)")),
                _ => is.push("classes.csv", line, "sourcedId", format!("«{id}»: ученики из разных классов — разделите предмет по классам")),
            }
            if no_teacher {
                is.push(
                    "classes.csv",
                    line,
                    "sourcedId",
                    format!("«{id}»: у предметного класса нет учителя в enrollments.csv"),
                );
            }
        }
        Ok(())
    }

    /// Writes up to `limit` records of the current writing stage from the scratch tables;
    /// 0 when the stage has no more.
    fn write(&mut self, b: &mut Batch, limit: u64) -> Result<u64, ScratchError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut last = self.after;
        let mut n = 0;
        match self.stage {
            Stage::HomeroomClasses => {
                let mut st = self.db.prepare_cached(
                    "SELECT rowid, id, school, year, grade, letter, teacher FROM classes
                     WHERE homeroom = 1 AND rowid > ?1 ORDER BY rowid LIMIT ?2",
                )?;
                let mut rows = st.query(params![self.after, limit])?;
                while let Some(r) = rows.next()? {
                    last = r.get(0)?;
                    n += 1;
                    let (school, year): (String, Option<String>) = (r.get(2)?, r.get(3)?);
                    let year = year.unwrap_or_default();
                    b.classes.push(BClass {
                        external_id: r.get(1)?,
                        year: year_ext(&year, &school),
                        school,
                        grade: r.get(4)?,
                        letter: r.get(5)?,
                        class_teacher: r.get(6)?,
                        period_scheme: self.scheme_of(&year).into(),
                        newly_formed: false,
                    });
                }
            }
            Stage::Enrolments => {
                let mut st = self.db.prepare_cached(
                    "SELECT e.rowid, e.id, e.user, e.class, e.begin_day, e.end_day, c.year
                     FROM enrols e JOIN classes c ON c.id = e.class
                     WHERE e.rowid > ?1 AND e.role = 'student' AND c.homeroom = 1
                     ORDER BY e.rowid LIMIT ?2",
                )?;
                let mut rows = st.query(params![self.after, limit])?;
                while let Some(r) = rows.next()? {
                    last = r.get(0)?;
                    n += 1;
                    let (begin, end): (Option<i32>, Option<i32>) = (r.get(4)?, r.get(5)?);
                    let year: Option<String> = r.get(6)?;
                    let (from, to) = year
                        .and_then(|y| self.sessions.get(&y))
                        .map_or((NaiveDate::MIN, NaiveDate::MAX), |s| (s.from, s.to));
                    let departed = end.map(date_of).filter(|d| *d < to);
                    b.enrolments.push(BEnrolment {
                        external_id: r.get(1)?,
                        student: r.get(2)?,
                        class: r.get(3)?,
                        admitted_on: begin.map_or(from, date_of),
                        departed_on: departed,
                        departure_kind: departed.map(|_| "other".to_string()),
                        departure_reason: None,
                    });
                }
            }
            Stage::Guardianships => {
                let mut st = self.db.prepare_cached(
                    "SELECT rowid, parent, child FROM links WHERE rowid > ?1 ORDER BY rowid LIMIT ?2",
                )?;
                let mut rows = st.query(params![self.after, limit])?;
                while let Some(r) = rows.next()? {
                    last = r.get(0)?;
                    n += 1;
                    b.guardianships.push(BGuardianship { parent: r.get(1)?, child: r.get(2)? });
                }
            }
            Stage::Assignments => {
                let mut st = self.db.prepare_cached(
                    "SELECT rowid, id, teacher, home, course FROM classes
                     WHERE homeroom = 0 AND rowid > ?1 ORDER BY rowid LIMIT ?2",
                )?;
                let mut rows = st.query(params![self.after, limit])?;
                while let Some(r) = rows.next()? {
                    last = r.get(0)?;
                    n += 1;
                    let text =
                        |i: usize| r.get::<_, Option<String>>(i).map(Option::unwrap_or_default);
                    b.assignments.push(BAssignment {
                        external_id: r.get(1)?,
                        teacher: text(2)?,
                        class: text(3)?,
                        group: None,
                        subject: text(4)?,
                    });
                }
            }
            _ => {}
        }
        self.after = last;
        Ok(n)
    }
}
