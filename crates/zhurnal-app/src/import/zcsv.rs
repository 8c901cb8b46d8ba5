//! The Zhurnal exchange format: one CSV file per kind of record, UTF-8, header row of column
//! names, references by external id (docs/import-format.md). The same set is what
//! `zhurnal export --format zhurnal-csv` writes, so an export imports back unchanged.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat};
use zhurnal_domain::Snils;
use zhurnal_store::batch::*;

use super::keys::{Key, Keys, Kind};
use super::rows::{Issues, Table};
use super::source::{Source, SourceError};

/// Every file of the set with its columns, in the order they are read (references point
/// only backwards). The templates the app offers are these headers.
pub const FILES: &[(&str, &[&str])] = &[
    ("regions.csv", &["external_id", "name"]),
    ("municipalities.csv", &["external_id", "region", "name"]),
    ("schools.csv", &["external_id", "municipality", "name", "short_name"]),
    ("years.csv", &["external_id", "school", "name", "starts_on", "ends_on"]),
    (
        "periods.csv",
        &["external_id", "year", "scheme", "number", "starts_on", "ends_on", "closed_on"],
    ),
    ("subjects.csv", &["external_id", "school", "name", "grading"]),
    ("work_types.csv", &["school", "code", "name", "weight"]),
    (
        "persons.csv",
        &[
            "external_id",
            "uid",
            "last_name",
            "first_name",
            "middle_name",
            "birth_date",
            "gender",
            "snils",
            "phone",
            "email",
        ],
    ),
    (
        "classes.csv",
        &[
            "external_id",
            "school",
            "year",
            "grade",
            "letter",
            "class_teacher",
            "period_scheme",
            "newly_formed",
        ],
    ),
    ("groups.csv", &["external_id", "class", "name"]),
    ("group_members.csv", &["group", "student"]),
    (
        "enrolments.csv",
        &[
            "external_id",
            "student",
            "class",
            "admitted_on",
            "departed_on",
            "departure_kind",
            "departure_reason",
        ],
    ),
    ("guardianships.csv", &["parent", "child"]),
    ("staff_roles.csv", &["person", "role", "scope"]),
    ("assignments.csv", &["external_id", "teacher", "class", "group", "subject"]),
    ("timetable.csv", &["external_id", "assignment", "weekday", "lesson_number", "room"]),
    ("substitutions.csv", &["slot", "date", "substitute", "reason"]),
    ("lessons.csv", &["external_id", "assignment", "date", "lesson_number", "topic", "homework"]),
    (
        "marks.csv",
        &[
            "external_id",
            "lesson",
            "student",
            "value",
            "work_type",
            "comment",
            "author",
            "created_at",
        ],
    ),
    ("attendance.csv", &["lesson", "student", "kind", "author"]),
    ("final_marks.csv", &["student", "assignment", "kind", "period", "value", "author", "set_at"]),
    (
        "mark_history.csv",
        &[
            "mark",
            "changed_at",
            "changed_by",
            "old_value",
            "new_value",
            "old_work_type",
            "new_work_type",
            "reason",
        ],
    ),
];

/// Columns that may be left out of a file entirely (all others must be in the header).
const OPTIONAL_COLUMNS: &[&str] = &[
    "uid",
    "middle_name",
    "birth_date",
    "gender",
    "snils",
    "phone",
    "email",
    "closed_on",
    "class_teacher",
    "newly_formed",
    "departed_on",
    "departure_kind",
    "departure_reason",
    "group",
    "room",
    "reason",
    "topic",
    "homework",
    "comment",
    "created_at",
    "period",
    "set_at",
    "old_value",
    "new_value",
    "old_work_type",
    "new_work_type",
];

fn required(columns: &[&str]) -> Vec<&'static str> {
    FILES
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .filter(|c| columns.contains(c) && !OPTIONAL_COLUMNS.contains(c))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect()
}

/// The result of reading a set: the batch (empty in validation mode) and the plain СНИЛС of
/// persons, for the caller to encrypt.
#[derive(Debug, Default)]
pub struct Parsed {
    pub batch: Batch,
    pub snils: HashMap<String, Snils>,
    pub rows: u64,
    /// Where each of `batch.staff_roles` came from (file or sheet, line), in the same order,
    /// so a refusal can name the row; empty when the format has no such rows.
    pub staff_role_rows: Vec<(String, u64)>,
    /// Period, annual and final marks (final_marks.csv), written after the batch in its
    /// transaction.
    pub final_marks: Vec<zhurnal_store::import::BFinalMark>,
    /// Corrections of marks (mark_history.csv), written last in the same transaction.
    pub mark_history: Vec<zhurnal_store::import::BMarkChange>,
}

/// What validation keeps: ids and the few facts later rows are checked against. The kinds
/// that scale with a school (regions to groups) stay in memory; the ones that scale with the
/// number of students and lessons are in [`Keys`], on disk.
#[derive(Default)]
struct Known {
    regions: HashSet<String>,
    municipalities: HashSet<String>,
    schools: HashSet<String>,
    years: HashMap<String, Span>,
    periods: HashSet<(String, String, u8)>,
    period_ids: HashSet<String>,
    /// subject → grading.
    subjects: HashMap<String, String>,
    work_types: HashSet<(String, String)>,
    /// class → (school, year).
    classes: HashMap<String, (String, String)>,
    class_letters: HashSet<(String, u8, String)>,
    groups: HashMap<String, String>,
    /// Schools by index: the facts kept on disk name a school by its index.
    school_names: Vec<String>,
    school_index: HashMap<String, u32>,
    keys: Keys,
}

/// A school that is not in schools.csv (that row is reported already).
const UNKNOWN_SCHOOL: u32 = u32::MAX;

/// Учебный год: its first and last day.
type Span = (NaiveDate, NaiveDate);

fn put_date(v: &mut Vec<u8>, d: NaiveDate) {
    v.extend_from_slice(&d.num_days_from_ce().to_le_bytes());
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn date_at(b: &[u8], at: usize) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(u32_at(b, at)? as i32)
}

/// A year span, or none when the year is unknown: a flag byte and two dates.
fn put_span(v: &mut Vec<u8>, span: Option<Span>) {
    match span {
        Some((from, to)) => {
            v.push(1);
            put_date(v, from);
            put_date(v, to);
        }
        None => v.extend_from_slice(&[0; 9]),
    }
}

fn span_at(b: &[u8], at: usize) -> Option<Span> {
    (*b.get(at)? == 1).then_some(())?;
    Some((date_at(b, at + 1)?, date_at(b, at + 5)?))
}

/// Оценивание предмета, as the facts store it: 1 five-point, 2 pass/fail, 0 unknown subject.
fn grading_code(g: &str) -> u8 {
    match g {
        "five_point" => 1,
        "pass_fail" => 2,
        _ => 0,
    }
}

/// What an assignment row leaves for later rows.
struct AssignmentFacts {
    school: u32,
    year: Option<Span>,
    grading: u8,
}

impl AssignmentFacts {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.school.to_le_bytes().to_vec();
        put_span(&mut v, self.year);
        v.push(self.grading);
        v
    }

    fn decode(b: &[u8]) -> Self {
        Self {
            school: u32_at(b, 0).unwrap_or(UNKNOWN_SCHOOL),
            year: span_at(b, 4),
            grading: b.get(13).copied().unwrap_or(0),
        }
    }
}

/// What a lesson row leaves for marks and attendance.
struct LessonFacts {
    school: u32,
    date: NaiveDate,
    grading: u8,
}

impl LessonFacts {
    fn encode(&self) -> Vec<u8> {
        let mut v = self.school.to_le_bytes().to_vec();
        put_date(&mut v, self.date);
        v.push(self.grading);
        v
    }

    fn decode(b: &[u8]) -> Option<Self> {
        Some(Self { school: u32_at(b, 0)?, date: date_at(b, 4)?, grading: *b.get(8)? })
    }
}

impl Known {
    fn person(&mut self, id: &str) -> bool {
        self.keys.contains(Kind::Person, &Key::of(id))
    }

    /// Whether `code` is a work type of the school with index `school`.
    fn work_type(&self, school: u32, code: &str) -> bool {
        self.school_names
            .get(school as usize)
            .is_some_and(|s| self.work_types.contains(&(s.clone(), code.to_owned())))
    }
}

fn dup(t: &Table, issues: &mut Issues, column: &str, id: &str) {
    t.issue(
        issues,
        column,
        format!("«{id}» встречается второй раз: у каждой записи свой код (повторная строка или опечатка)"),
    );
}

fn unknown(t: &Table, issues: &mut Issues, column: &str, what: &str, id: &str, file: &str) {
    t.issue(
        issues,
        column,
        format!("{what} «{id}» не найден(а) в {file}: добавьте его туда или исправьте код"),
    );
}

fn within(
    t: &Table,
    issues: &mut Issues,
    column: &str,
    d: NaiveDate,
    year: Option<&(NaiveDate, NaiveDate)>,
) {
    if let Some((from, to)) = year
        && (d < *from || d > *to)
    {
        t.issue(
            issues,
            column,
            format!(
                "дата {} вне учебного года ({} — {})",
                d.format("%d.%m.%Y"),
                from.format("%d.%m.%Y"),
                to.format("%d.%m.%Y")
            ),
        );
    }
}

/// Attendance codes: the stored ones and the journal's letters.
fn attendance_kind(v: &str) -> Option<&'static str> {
    match v {
        "absent" | "Н" | "н" => Some("absent"),
        "ill" | "Б" | "б" => Some("ill"),
        "valid_reason" | "УП" | "уп" => Some("valid_reason"),
        "late" | "ОП" | "оп" => Some("late"),
        _ => None,
    }
}

fn mark_value(v: &str) -> Option<&'static str> {
    match v {
        "1" => Some("1"),
        "2" => Some("2"),
        "3" => Some("3"),
        "4" => Some("4"),
        "5" => Some("5"),
        "pass" | "зачёт" | "зачет" | "зач" => Some("pass"),
        "fail" | "незачёт" | "незачет" | "незач" => Some("fail"),
        _ => None,
    }
}

/// Reads the whole set, checking everything; with `keep` the rows are collected too.
/// Validation mode (`keep = false`) holds only ids in memory.
pub fn read(
    source: &Source,
    keep: bool,
    progress: &dyn super::Progress,
) -> Result<(Parsed, Issues), SourceError> {
    let mut stream = Stream::new(source, keep);
    let mut out = Parsed::default();
    while let Some(part) = stream.next_part(u64::MAX, progress)? {
        out = part;
    }
    let rows = stream.rows();
    out.rows = rows;
    Ok((out, stream.finish()))
}

/// The set read in parts of bounded size, in file order (so a part only refers to rows of
/// earlier parts or of itself): what the load writes part by part inside one transaction,
/// without holding the whole set. Checking goes on across parts; the ids it keeps are the
/// only thing that grows with the set.
pub struct Stream<'s> {
    source: &'s Source,
    /// The workbook, opened once for all its sheets (XLSX sources only).
    book: Option<super::xlsx::Book>,
    keep: bool,
    next_file: usize,
    table: Option<(&'static str, Table)>,
    known: Known,
    issues: Issues,
    rows: u64,
    any: bool,
}

impl<'s> Stream<'s> {
    pub fn new(source: &'s Source, keep: bool) -> Self {
        Self {
            source,
            book: None,
            keep,
            next_file: 0,
            table: None,
            known: Known::default(),
            issues: Issues::default(),
            rows: 0,
            any: false,
        }
    }

    /// The next part of at most `max_rows` rows (its `rows` counts them), or `None` at the
    /// end of the set.
    pub fn next_part(
        &mut self,
        max_rows: u64,
        progress: &dyn super::Progress,
    ) -> Result<Option<Parsed>, SourceError> {
        let mut out = Parsed::default();
        loop {
            if self.table.is_none() {
                let Some((file, columns)) = FILES.get(self.next_file) else { break };
                self.next_file += 1;
                let Some(input) = self.source.open_in(file, &mut self.book)? else { continue };
                self.any = true;
                let req = required(columns);
                self.table = Table::open(file, input, &req, &mut self.issues).map(|t| (*file, t));
                continue;
            }
            let Some((file, t)) = self.table.as_mut() else { continue };
            if !t.next(&mut self.issues) {
                self.table = None;
                continue;
            }
            self.rows += 1;
            out.rows += 1;
            if self.rows.is_multiple_of(super::PROGRESS_STEP) {
                progress.done(self.rows);
            }
            read_row(file, t, &mut self.known, &mut out, &mut self.issues, self.keep);
            if let Some(e) = self.known.keys.take_error() {
                return Err(e.into());
            }
            if out.rows >= max_rows {
                return Ok(Some(out));
            }
        }
        Ok((out.rows > 0).then_some(out))
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
    pub fn finish(mut self) -> Issues {
        if !self.any {
            self.issues.push(
                &self.source.display_name(),
                0,
                "",
                "не найдено ни одного файла набора Zhurnal (regions.csv, schools.csv, persons.csv …): проверьте каталог или архив",
            );
        }
        self.issues
    }
}

fn read_row(file: &str, t: &Table, k: &mut Known, out: &mut Parsed, is: &mut Issues, keep: bool) {
    let b = &mut out.batch;
    match file {
        "regions.csv" => {
            let (Some(id), Some(name)) = (t.req(is, "external_id"), t.req(is, "name")) else {
                return;
            };
            if !k.regions.insert(id.clone()) {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.regions.push(BRegion { external_id: id, name });
            }
        }
        "municipalities.csv" => {
            let (Some(id), Some(region), Some(name)) =
                (t.req(is, "external_id"), t.req(is, "region"), t.req(is, "name"))
            else {
                return;
            };
            if !k.regions.contains(&region) {
                unknown(t, is, "region", "регион", &region, "regions.csv");
            }
            if !k.municipalities.insert(id.clone()) {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.municipalities.push(BMunicipality { external_id: id, region, name });
            }
        }
        "schools.csv" => {
            let (Some(id), Some(m), Some(name), Some(short)) = (
                t.req(is, "external_id"),
                t.req(is, "municipality"),
                t.req(is, "name"),
                t.req(is, "short_name"),
            ) else {
                return;
            };
            if !k.municipalities.contains(&m) {
                unknown(t, is, "municipality", "муниципалитет", &m, "municipalities.csv");
            }
            if !k.school_index.contains_key(&id) {
                k.school_index.insert(id.clone(), k.school_names.len() as u32);
                k.school_names.push(id.clone());
            }
            if !k.schools.insert(id.clone()) {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.schools.push(BSchool {
                    external_id: id,
                    municipality: m,
                    name,
                    short_name: short,
                });
            }
        }
        "years.csv" => {
            let (id, school, name) =
                (t.req(is, "external_id"), t.req(is, "school"), t.req(is, "name"));
            let (from, to) = (t.date(is, "starts_on"), t.date(is, "ends_on"));
            let (Some(id), Some(school), Some(name), Some(from), Some(to)) =
                (id, school, name, from, to)
            else {
                return;
            };
            if !k.schools.contains(&school) {
                unknown(t, is, "school", "школа", &school, "schools.csv");
            }
            if to <= from {
                t.issue(is, "ends_on", "конец учебного года раньше его начала");
            }
            if k.years.insert(id.clone(), (from, to)).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.years.push(BYear { external_id: id, school, name, starts_on: from, ends_on: to });
            }
        }
        "periods.csv" => {
            let id = t.req(is, "external_id");
            let year = t.req(is, "year");
            let scheme = t.one_of(is, "scheme", &["quarters", "trimesters", "half_years"]);
            let number = t.number(is, "number", 1, 4);
            let (from, to) = (t.date(is, "starts_on"), t.date(is, "ends_on"));
            let closed = t.date_opt(is, "closed_on");
            let (
                Some(id),
                Some(year),
                Some(scheme),
                Some(number),
                Some(from),
                Some(to),
                Some(closed),
            ) = (id, year, scheme, number, from, to, closed)
            else {
                return;
            };
            let y = k.years.get(&year).copied();
            if y.is_none() {
                unknown(t, is, "year", "учебный год", &year, "years.csv");
            }
            within(t, is, "starts_on", from, y.as_ref());
            within(t, is, "ends_on", to, y.as_ref());
            if to < from {
                t.issue(is, "ends_on", "конец периода раньше его начала");
            }
            let max = match scheme.as_str() {
                "quarters" => 4,
                "trimesters" => 3,
                _ => 2,
            };
            if number > max {
                t.issue(is, "number", format!("в схеме {scheme} не больше {max} периодов"));
            }
            if !k.period_ids.insert(id.clone())
                || !k.periods.insert((year.clone(), scheme.clone(), number))
            {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.periods.push(BPeriod {
                    external_id: id,
                    year,
                    scheme,
                    number,
                    starts_on: from,
                    ends_on: to,
                    closed_on: closed,
                });
            }
        }
        "subjects.csv" => {
            let (id, school, name) =
                (t.req(is, "external_id"), t.req(is, "school"), t.req(is, "name"));
            let grading = t.one_of(is, "grading", &["five_point", "pass_fail"]);
            let (Some(id), Some(school), Some(name), Some(grading)) = (id, school, name, grading)
            else {
                return;
            };
            if !k.schools.contains(&school) {
                unknown(t, is, "school", "школа", &school, "schools.csv");
            }
            if k.subjects.insert(id.clone(), grading.clone()).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.subjects.push(BSubject { external_id: id, school, name, grading });
            }
        }
        "work_types.csv" => {
            let (school, code, name) = (t.req(is, "school"), t.req(is, "code"), t.req(is, "name"));
            let weight = t.number(is, "weight", 1, 10);
            let (Some(school), Some(code), Some(name), Some(weight)) = (school, code, name, weight)
            else {
                return;
            };
            if !k.schools.contains(&school) {
                unknown(t, is, "school", "школа", &school, "schools.csv");
            }
            if !k.work_types.insert((school.clone(), code.clone())) {
                return dup(t, is, "code", &code);
            }
            if keep {
                b.work_types.push(BWorkType { school, code, name, weight });
            }
        }
        "persons.csv" => {
            let (id, last, first) =
                (t.req(is, "external_id"), t.req(is, "last_name"), t.req(is, "first_name"));
            let birth = t.date_opt(is, "birth_date");
            let gender = t.get("gender");
            if let Some(g) = &gender
                && g != "M"
                && g != "F"
            {
                t.issue(is, "gender", format!("«{g}» — пишите M или F"));
            }
            let snils = match t.get("snils") {
                None => Some(None),
                Some(v) => match Snils::parse(&v) {
                    Ok(s) => Some(Some(s)),
                    Err(e) => {
                        t.issue(is, "snils", format!("{e}; проверьте номер по документу"));
                        None
                    }
                },
            };
            // The id counts as defined even when another cell is wrong, so references to
            // this person do not add a cascade of "not found" errors.
            let Some(id) = id else { return };
            if let Some(Some(s)) = &snils
                && let Some(other) =
                    k.keys.insert(Kind::Snils, &k.keys.snils(s.digits()), id.as_bytes())
            {
                let other = String::from_utf8_lossy(&other);
                t.issue(
                    is,
                    "snils",
                    format!("этот СНИЛС уже указан у «{other}»: один человек записан дважды или СНИЛС перепутан"),
                );
            }
            if !k.keys.add(Kind::Person, &Key::of(&id)) {
                return dup(t, is, "external_id", &id);
            }
            let (Some(last), Some(first), Some(birth), Some(snils)) = (last, first, birth, snils)
            else {
                return;
            };
            if keep {
                if let Some(s) = snils {
                    out.snils.insert(id.clone(), s);
                }
                b.persons.push(BPerson {
                    uid: t.get("uid").unwrap_or_default(),
                    external_id: id,
                    last_name: last,
                    first_name: first,
                    middle_name: t.get("middle_name"),
                    birth_date: birth,
                    gender,
                    snils_hmac: None,
                    snils_cipher: None,
                    phone: t.get("phone"),
                    email: t.get("email"),
                });
            }
        }
        "classes.csv" => {
            let (id, school, year) =
                (t.req(is, "external_id"), t.req(is, "school"), t.req(is, "year"));
            let grade = t.number(is, "grade", 1, 11);
            let letter = t.req(is, "letter");
            let scheme = t.one_of(is, "period_scheme", &["quarters", "trimesters", "half_years"]);
            let newly = t.bool_opt(is, "newly_formed");
            let teacher = t.get("class_teacher");
            let (
                Some(id),
                Some(school),
                Some(year),
                Some(grade),
                Some(letter),
                Some(scheme),
                Some(newly),
            ) = (id, school, year, grade, letter, scheme, newly)
            else {
                return;
            };
            if !k.schools.contains(&school) {
                unknown(t, is, "school", "школа", &school, "schools.csv");
            }
            if !k.years.contains_key(&year) {
                unknown(t, is, "year", "учебный год", &year, "years.csv");
            }
            if let Some(p) = &teacher
                && !k.person(p)
            {
                unknown(t, is, "class_teacher", "классный руководитель", p, "persons.csv");
            }
            if !k.class_letters.insert((year.clone(), grade, letter.clone())) {
                t.issue(
                    is,
                    "letter",
                    format!("класс {grade}{letter} в этом учебном году уже есть"),
                );
            }
            if k.classes.insert(id.clone(), (school.clone(), year.clone())).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.classes.push(BClass {
                    external_id: id,
                    school,
                    year,
                    grade,
                    letter,
                    class_teacher: teacher,
                    period_scheme: scheme,
                    newly_formed: newly,
                });
            }
        }
        "groups.csv" => {
            let (Some(id), Some(class), Some(name)) =
                (t.req(is, "external_id"), t.req(is, "class"), t.req(is, "name"))
            else {
                return;
            };
            if !k.classes.contains_key(&class) {
                unknown(t, is, "class", "класс", &class, "classes.csv");
            }
            if k.groups.insert(id.clone(), class.clone()).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.groups.push(BGroup { external_id: id, class, name, members: Vec::new() });
            }
        }
        "group_members.csv" => {
            let (Some(group), Some(student)) = (t.req(is, "group"), t.req(is, "student")) else {
                return;
            };
            if !k.groups.contains_key(&group) {
                unknown(t, is, "group", "группа", &group, "groups.csv");
            }
            if !k.person(&student) {
                unknown(t, is, "student", "ученик", &student, "persons.csv");
            }
            if !k.keys.add(Kind::GroupMember, &Key::of(&group).str(&student)) {
                return dup(t, is, "student", &student);
            }
            if keep {
                b.group_members.push(BGroupMember { group, student });
            }
        }
        "enrolments.csv" => {
            let (id, student, class) =
                (t.req(is, "external_id"), t.req(is, "student"), t.req(is, "class"));
            let (admitted, departed) = (t.date(is, "admitted_on"), t.date_opt(is, "departed_on"));
            let kind = t.get("departure_kind");
            if let Some(kd) = &kind
                && !["transfer", "graduation", "expulsion", "other"].contains(&kd.as_str())
            {
                t.issue(
                    is,
                    "departure_kind",
                    format!("«{kd}» — допустимы: transfer, graduation, expulsion, other"),
                );
            }
            let (Some(id), Some(student), Some(class), Some(admitted), Some(departed)) =
                (id, student, class, admitted, departed)
            else {
                return;
            };
            if !k.person(&student) {
                unknown(t, is, "student", "ученик", &student, "persons.csv");
            }
            if !k.classes.contains_key(&class) {
                unknown(t, is, "class", "класс", &class, "classes.csv");
            }
            if let Some(d) = departed
                && d < admitted
            {
                t.issue(is, "departed_on", "дата выбытия раньше даты зачисления");
            }
            if departed.is_some() != kind.is_some() {
                t.issue(
                    is,
                    "departure_kind",
                    "укажите и дату, и вид выбытия (или ни то ни другое)",
                );
            }
            if !k.keys.add(Kind::Enrolment, &Key::of(&id)) {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.enrolments.push(BEnrolment {
                    external_id: id,
                    student,
                    class,
                    admitted_on: admitted,
                    departed_on: departed,
                    departure_kind: kind,
                    departure_reason: t.get("departure_reason"),
                });
            }
        }
        "guardianships.csv" => {
            let (Some(parent), Some(child)) = (t.req(is, "parent"), t.req(is, "child")) else {
                return;
            };
            for (col, p) in [("parent", &parent), ("child", &child)] {
                if !k.person(p) {
                    unknown(t, is, col, "человек", p, "persons.csv");
                }
            }
            if parent == child {
                t.issue(is, "child", "человек не может быть родителем самого себя");
            }
            if !k.keys.add(Kind::Guardianship, &Key::of(&parent).str(&child)) {
                return dup(t, is, "child", &child);
            }
            if keep {
                b.guardianships.push(BGuardianship { parent, child });
            }
        }
        "staff_roles.csv" => {
            let person = t.req(is, "person");
            let role = t.one_of(
                is,
                "role",
                &[
                    "teacher",
                    "school-admin",
                    "municipal-officer",
                    "regional-admin",
                    "security-officer",
                ],
            );
            let scope = t.req(is, "scope");
            let (Some(person), Some(role), Some(scope)) = (person, role, scope) else { return };
            if !k.person(&person) {
                unknown(t, is, "person", "сотрудник", &person, "persons.csv");
            }
            let ok = match role.as_str() {
                "teacher" | "school-admin" => k.schools.contains(&scope),
                "municipal-officer" => k.municipalities.contains(&scope),
                _ => k.regions.contains(&scope),
            };
            if !ok {
                t.issue(
                    is,
                    "scope",
                    format!(
                        "«{scope}» не найден(а) среди {} для роли {role}",
                        match role.as_str() {
                            "teacher" | "school-admin" => "школ (schools.csv)",
                            "municipal-officer" => "муниципалитетов (municipalities.csv)",
                            _ => "регионов (regions.csv)",
                        }
                    ),
                );
            }
            if keep {
                b.staff_roles.push(BStaffRole { person, role, scope });
                out.staff_role_rows.push((t.file.clone(), t.line));
            }
        }
        "assignments.csv" => {
            let (id, teacher, class, subject) = (
                t.req(is, "external_id"),
                t.req(is, "teacher"),
                t.req(is, "class"),
                t.req(is, "subject"),
            );
            let group = t.get("group");
            let (Some(id), Some(teacher), Some(class), Some(subject)) =
                (id, teacher, class, subject)
            else {
                return;
            };
            if !k.person(&teacher) {
                unknown(t, is, "teacher", "учитель", &teacher, "persons.csv");
            }
            let c = k.classes.get(&class).cloned();
            if c.is_none() {
                unknown(t, is, "class", "класс", &class, "classes.csv");
            }
            let grading = k.subjects.get(&subject).cloned();
            if grading.is_none() {
                unknown(t, is, "subject", "предмет", &subject, "subjects.csv");
            }
            if let Some(g) = &group {
                match k.groups.get(g) {
                    None => unknown(t, is, "group", "группа", g, "groups.csv"),
                    Some(gc) if *gc != class => {
                        t.issue(is, "group", format!("группа «{g}» принадлежит другому классу"))
                    }
                    Some(_) => {}
                }
            }
            let facts = AssignmentFacts {
                school: c
                    .as_ref()
                    .and_then(|(s, _)| k.school_index.get(s).copied())
                    .unwrap_or(UNKNOWN_SCHOOL),
                year: c.as_ref().and_then(|(_, y)| k.years.get(y).copied()),
                grading: grading.as_deref().map_or(0, grading_code),
            };
            if k.keys.insert(Kind::Assignment, &Key::of(&id), &facts.encode()).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.assignments.push(BAssignment { external_id: id, teacher, class, group, subject });
            }
        }
        "timetable.csv" => {
            let (id, assignment) = (t.req(is, "external_id"), t.req(is, "assignment"));
            let weekday = t.number(is, "weekday", 1, 7);
            let number = t.number(is, "lesson_number", 0, 20);
            let (Some(id), Some(assignment), Some(weekday), Some(number)) =
                (id, assignment, weekday, number)
            else {
                return;
            };
            let Some(a) = k.keys.get(Kind::Assignment, &Key::of(&assignment)) else {
                return unknown(t, is, "assignment", "нагрузка", &assignment, "assignments.csv");
            };
            let mut year = Vec::new();
            put_span(&mut year, AssignmentFacts::decode(&a).year);
            if k.keys.insert(Kind::Slot, &Key::of(&id), &year).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.timetable.push(BSlot {
                    external_id: id,
                    assignment,
                    weekday,
                    lesson_number: number,
                    room: t.get("room"),
                });
            }
        }
        "substitutions.csv" => {
            let (slot, date, sub) =
                (t.req(is, "slot"), t.date(is, "date"), t.req(is, "substitute"));
            let (Some(slot), Some(date), Some(sub)) = (slot, date, sub) else { return };
            match k.keys.get(Kind::Slot, &Key::of(&slot)) {
                None => unknown(t, is, "slot", "урок расписания", &slot, "timetable.csv"),
                Some(year) => within(t, is, "date", date, span_at(&year, 0).as_ref()),
            }
            if !k.person(&sub) {
                unknown(t, is, "substitute", "заменяющий учитель", &sub, "persons.csv");
            }
            if !k.keys.add(Kind::Substitution, &Key::of(&slot).int(date.num_days_from_ce().into()))
            {
                return dup(t, is, "date", &date.to_string());
            }
            if keep {
                b.substitutions.push(BSubstitution {
                    slot,
                    date,
                    substitute: sub,
                    reason: t.get("reason"),
                });
            }
        }
        "lessons.csv" => {
            let (id, assignment, date) =
                (t.req(is, "external_id"), t.req(is, "assignment"), t.date(is, "date"));
            let number = t.number(is, "lesson_number", 0, 20);
            let (Some(id), Some(assignment), Some(date), Some(number)) =
                (id, assignment, date, number)
            else {
                return;
            };
            let Some(a) = k.keys.get(Kind::Assignment, &Key::of(&assignment)) else {
                return unknown(t, is, "assignment", "нагрузка", &assignment, "assignments.csv");
            };
            let a = AssignmentFacts::decode(&a);
            within(t, is, "date", date, a.year.as_ref());
            let slot = Key::of(&assignment).int(date.num_days_from_ce().into()).int(number.into());
            if !k.keys.add(Kind::LessonSlot, &slot) {
                t.issue(
                    is,
                    "lesson_number",
                    format!("урок №{number} этой нагрузки {date} уже есть"),
                );
            }
            let facts = LessonFacts { school: a.school, date, grading: a.grading };
            if k.keys.insert(Kind::Lesson, &Key::of(&id), &facts.encode()).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep {
                b.lessons.push(BLesson {
                    external_id: id,
                    assignment,
                    date,
                    lesson_number: number,
                    topic: t.get("topic"),
                    homework: t.get("homework"),
                });
            }
        }
        "marks.csv" => {
            let (id, lesson, student) =
                (t.req(is, "external_id"), t.req(is, "lesson"), t.req(is, "student"));
            let (value, work_type, author) =
                (t.req(is, "value"), t.req(is, "work_type"), t.req(is, "author"));
            let created = match t.get("created_at") {
                None => Some(None),
                Some(v) => match DateTime::parse_from_rfc3339(&v) {
                    Ok(d) => Some(Some(d.timestamp_micros())),
                    Err(_) => {
                        t.issue(
                            is,
                            "created_at",
                            format!("«{v}» — пишите время как 2026-09-14T09:30:00Z"),
                        );
                        None
                    }
                },
            };
            let (
                Some(id),
                Some(lesson),
                Some(student),
                Some(value),
                Some(work_type),
                Some(author),
                Some(created),
            ) = (id, lesson, student, value, work_type, author, created)
            else {
                return;
            };
            let l =
                k.keys.get(Kind::Lesson, &Key::of(&lesson)).and_then(|b| LessonFacts::decode(&b));
            let v = mark_value(&value);
            match (&l, v) {
                (None, _) => unknown(t, is, "lesson", "урок", &lesson, "lessons.csv"),
                (_, None) => t.issue(
                    is,
                    "value",
                    format!("«{value}» — не отметка; допустимы 1–5, зачёт, незачёт"),
                ),
                (Some(l), Some(v)) => {
                    let five = v.len() == 1;
                    if (l.grading == 1) != five {
                        t.issue(
                            is,
                            "value",
                            format!(
                                "«{value}» не подходит предмету: {}",
                                if five {
                                    "он оценивается зачётом"
                                } else {
                                    "он оценивается по пятибалльной шкале"
                                }
                            ),
                        );
                    }
                }
            }
            if let Some(l) = &l
                && !k.work_type(l.school, &work_type)
            {
                unknown(t, is, "work_type", "вид работы", &work_type, "work_types.csv");
            }
            for (col, p) in [("student", &student), ("author", &author)] {
                if !k.person(p) {
                    unknown(t, is, col, "человек", p, "persons.csv");
                }
            }
            let school = l.as_ref().map_or(UNKNOWN_SCHOOL, |l| l.school);
            if k.keys.insert(Kind::Mark, &Key::of(&id), &school.to_le_bytes()).is_some() {
                return dup(t, is, "external_id", &id);
            }
            if keep && let (Some(LessonFacts { date, .. }), Some(v)) = (l, v) {
                let at = created.unwrap_or_else(|| {
                    date.and_hms_opt(9, 0, 0).map(|d| d.and_utc().timestamp_micros()).unwrap_or(0)
                });
                b.marks.push(BMark {
                    external_id: id,
                    lesson,
                    student,
                    value: v.to_string(),
                    work_type,
                    comment: t.get("comment"),
                    author,
                    created_at: at,
                });
            }
        }
        "attendance.csv" => {
            let (lesson, student, kind, author) =
                (t.req(is, "lesson"), t.req(is, "student"), t.req(is, "kind"), t.req(is, "author"));
            let (Some(lesson), Some(student), Some(kind), Some(author)) =
                (lesson, student, kind, author)
            else {
                return;
            };
            let code = attendance_kind(&kind);
            if code.is_none() {
                t.issue(
                    is,
                    "kind",
                    format!("«{kind}» — допустимы Н, Б, УП, ОП (absent, ill, valid_reason, late)"),
                );
            }
            if !k.keys.contains(Kind::Lesson, &Key::of(&lesson)) {
                unknown(t, is, "lesson", "урок", &lesson, "lessons.csv");
            }
            for (col, p) in [("student", &student), ("author", &author)] {
                if !k.person(p) {
                    unknown(t, is, col, "человек", p, "persons.csv");
                }
            }
            if !k.keys.add(Kind::Attendance, &Key::of(&lesson).str(&student)) {
                return dup(t, is, "student", &student);
            }
            if keep && let Some(code) = code {
                b.attendance.push(BAttendance { lesson, student, kind: code.to_string(), author });
            }
        }
        "final_marks.csv" => {
            let (student, assignment, author) =
                (t.req(is, "student"), t.req(is, "assignment"), t.req(is, "author"));
            let kind = t.one_of(is, "kind", &["period", "annual", "final"]);
            let period = t.get("period");
            let value =
                t.req(is, "value").and_then(
                    |v| match zhurnal_domain::mark::PeriodMarkValue::parse(&v) {
                        Ok(m) => Some(m.code()),
                        Err(e) => {
                            t.issue(is, "value", format!("«{v}»: {e}"));
                            None
                        }
                    },
                );
            let set_at = match t.get("set_at") {
                None => Some(0),
                Some(v) => match DateTime::parse_from_rfc3339(&v) {
                    Ok(d) => Some(d.timestamp_micros()),
                    Err(_) => {
                        t.issue(
                            is,
                            "set_at",
                            format!("«{v}» — пишите время как 2026-12-25T09:30:00Z"),
                        );
                        None
                    }
                },
            };
            let (Some(student), Some(assignment), Some(author), Some(kind)) =
                (student, assignment, author, kind)
            else {
                return;
            };
            for (col, p) in [("student", &student), ("author", &author)] {
                if !k.person(p) {
                    unknown(t, is, col, "человек", p, "persons.csv");
                }
            }
            if !k.keys.contains(Kind::Assignment, &Key::of(&assignment)) {
                unknown(t, is, "assignment", "нагрузка", &assignment, "assignments.csv");
            }
            match (kind.as_str(), &period) {
                ("period", None) => {
                    t.issue(is, "period", "для отметки за период укажите период (periods.csv)")
                }
                ("period", Some(p)) if !k.period_ids.contains(p) => {
                    unknown(t, is, "period", "период", p, "periods.csv")
                }
                ("annual" | "final", Some(_)) => t.issue(
                    is,
                    "period",
                    "у годовой и итоговой отметки период не указывается: оставьте ячейку пустой",
                ),
                _ => {}
            }
            let key = Key::of(&student).str(&assignment).str(&kind);
            let key = match &period {
                None => key.int(0),
                Some(p) => key.int(1).str(p),
            };
            if !k.keys.add(Kind::FinalMark, &key) {
                return dup(t, is, "kind", &kind);
            }
            if keep && let (Some(value), Some(set_at)) = (value, set_at) {
                out.final_marks.push(zhurnal_store::import::BFinalMark {
                    student,
                    assignment,
                    kind,
                    period,
                    value,
                    author,
                    set_at,
                });
            }
        }
        "mark_history.csv" => {
            let (mark, by) = (t.req(is, "mark"), t.req(is, "changed_by"));
            let at = t.req(is, "changed_at").and_then(|v| match DateTime::parse_from_rfc3339(&v) {
                Ok(d) => Some(d.timestamp_micros()),
                Err(_) => {
                    t.issue(
                        is,
                        "changed_at",
                        format!("«{v}» — пишите время как 2026-09-14T09:30:00Z"),
                    );
                    None
                }
            });
            let mut values = [None, None];
            let mut ok = true;
            for (slot, col) in values.iter_mut().zip(["old_value", "new_value"]) {
                if let Some(v) = t.get(col) {
                    match mark_value(&v) {
                        Some(m) => *slot = Some(m.to_string()),
                        None => {
                            ok = false;
                            t.issue(is, col, format!("«{v}» — допустимы 1–5, pass, fail"));
                        }
                    }
                }
            }
            let (Some(mark), Some(by), Some(at)) = (mark, by, at) else { return };
            match k.keys.get(Kind::Mark, &Key::of(&mark)).map(|b| u32_at(&b, 0)) {
                None => unknown(t, is, "mark", "отметка", &mark, "marks.csv"),
                // The mark's own lesson is unknown: that row is reported already.
                Some(None | Some(UNKNOWN_SCHOOL)) => {}
                Some(Some(school)) => {
                    for col in ["old_work_type", "new_work_type"] {
                        if let Some(code) = t.get(col)
                            && !k.work_type(school, &code)
                        {
                            unknown(t, is, col, "вид работы", &code, "work_types.csv");
                        }
                    }
                }
            }
            if !k.person(&by) {
                unknown(t, is, "changed_by", "человек", &by, "persons.csv");
            }
            if !k.keys.add(Kind::MarkChange, &Key::of(&mark).int(at).str(&by)) {
                return dup(t, is, "changed_at", &format!("{mark} {at}"));
            }
            if keep && ok {
                let [old_value, new_value] = values;
                out.mark_history.push(zhurnal_store::import::BMarkChange {
                    mark,
                    changed_at: at,
                    changed_by: by,
                    old_value,
                    new_value,
                    old_work_type: t.get("old_work_type"),
                    new_work_type: t.get("new_work_type"),
                    reason: t.get("reason"),
                });
            }
        }
        _ => {}
    }
}

fn d(v: &NaiveDate) -> String {
    v.format("%Y-%m-%d").to_string()
}

fn od(v: &Option<NaiveDate>) -> String {
    v.as_ref().map(d).unwrap_or_default()
}

fn o(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

/// Writes the batch as a Zhurnal CSV set into `dir` (created if absent). `snils` gives the
/// plain СНИЛС of a person (the export is a document with personal data: keep it as such).
pub fn write(
    dir: &Path,
    b: &Batch,
    final_marks: &[zhurnal_store::import::BFinalMark],
    mark_history: &[zhurnal_store::import::BMarkChange],
    snils: &dyn Fn(&BPerson) -> Option<String>,
) -> std::io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let mut rows = 0u64;
    for (file, columns) in FILES {
        let mut w = csv::Writer::from_path(dir.join(file))?;
        w.write_record(*columns)?;
        let mut put = |r: Vec<String>| -> std::io::Result<()> {
            rows += 1;
            w.write_record(&r).map_err(std::io::Error::other)
        };
        match *file {
            "regions.csv" => {
                for x in &b.regions {
                    put(vec![x.external_id.clone(), x.name.clone()])?
                }
            }
            "municipalities.csv" => {
                for x in &b.municipalities {
                    put(vec![x.external_id.clone(), x.region.clone(), x.name.clone()])?
                }
            }
            "schools.csv" => {
                for x in &b.schools {
                    put(vec![
                        x.external_id.clone(),
                        x.municipality.clone(),
                        x.name.clone(),
                        x.short_name.clone(),
                    ])?
                }
            }
            "years.csv" => {
                for x in &b.years {
                    put(vec![
                        x.external_id.clone(),
                        x.school.clone(),
                        x.name.clone(),
                        d(&x.starts_on),
                        d(&x.ends_on),
                    ])?
                }
            }
            "periods.csv" => {
                for x in &b.periods {
                    put(vec![
                        x.external_id.clone(),
                        x.year.clone(),
                        x.scheme.clone(),
                        x.number.to_string(),
                        d(&x.starts_on),
                        d(&x.ends_on),
                        od(&x.closed_on),
                    ])?
                }
            }
            "subjects.csv" => {
                for x in &b.subjects {
                    put(vec![
                        x.external_id.clone(),
                        x.school.clone(),
                        x.name.clone(),
                        x.grading.clone(),
                    ])?
                }
            }
            "work_types.csv" => {
                for x in &b.work_types {
                    put(vec![
                        x.school.clone(),
                        x.code.clone(),
                        x.name.clone(),
                        x.weight.to_string(),
                    ])?
                }
            }
            "persons.csv" => {
                for x in &b.persons {
                    put(vec![
                        x.external_id.clone(),
                        x.uid.clone(),
                        x.last_name.clone(),
                        x.first_name.clone(),
                        o(&x.middle_name),
                        od(&x.birth_date),
                        o(&x.gender),
                        snils(x).unwrap_or_default(),
                        o(&x.phone),
                        o(&x.email),
                    ])?
                }
            }
            "classes.csv" => {
                for x in &b.classes {
                    put(vec![
                        x.external_id.clone(),
                        x.school.clone(),
                        x.year.clone(),
                        x.grade.to_string(),
                        x.letter.clone(),
                        o(&x.class_teacher),
                        x.period_scheme.clone(),
                        x.newly_formed.to_string(),
                    ])?
                }
            }
            "groups.csv" => {
                for x in &b.groups {
                    put(vec![x.external_id.clone(), x.class.clone(), x.name.clone()])?
                }
            }
            "group_members.csv" => {
                for x in &b.groups {
                    for m in &x.members {
                        put(vec![x.external_id.clone(), m.clone()])?
                    }
                }
            }
            "enrolments.csv" => {
                for x in &b.enrolments {
                    put(vec![
                        x.external_id.clone(),
                        x.student.clone(),
                        x.class.clone(),
                        d(&x.admitted_on),
                        od(&x.departed_on),
                        o(&x.departure_kind),
                        o(&x.departure_reason),
                    ])?
                }
            }
            "guardianships.csv" => {
                for x in &b.guardianships {
                    put(vec![x.parent.clone(), x.child.clone()])?
                }
            }
            "staff_roles.csv" => {
                for x in &b.staff_roles {
                    put(vec![x.person.clone(), x.role.clone(), x.scope.clone()])?
                }
            }
            "assignments.csv" => {
                for x in &b.assignments {
                    put(vec![
                        x.external_id.clone(),
                        x.teacher.clone(),
                        x.class.clone(),
                        o(&x.group),
                        x.subject.clone(),
                    ])?
                }
            }
            "timetable.csv" => {
                for x in &b.timetable {
                    put(vec![
                        x.external_id.clone(),
                        x.assignment.clone(),
                        x.weekday.to_string(),
                        x.lesson_number.to_string(),
                        o(&x.room),
                    ])?
                }
            }
            "substitutions.csv" => {
                for x in &b.substitutions {
                    put(vec![x.slot.clone(), d(&x.date), x.substitute.clone(), o(&x.reason)])?
                }
            }
            "lessons.csv" => {
                for x in &b.lessons {
                    put(vec![
                        x.external_id.clone(),
                        x.assignment.clone(),
                        d(&x.date),
                        x.lesson_number.to_string(),
                        o(&x.topic),
                        o(&x.homework),
                    ])?
                }
            }
            "marks.csv" => {
                for x in &b.marks {
                    let at = DateTime::from_timestamp_micros(x.created_at)
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                        .unwrap_or_default();
                    put(vec![
                        x.external_id.clone(),
                        x.lesson.clone(),
                        x.student.clone(),
                        x.value.clone(),
                        x.work_type.clone(),
                        o(&x.comment),
                        x.author.clone(),
                        at,
                    ])?
                }
            }
            "final_marks.csv" => {
                for x in final_marks {
                    let at = DateTime::from_timestamp_micros(x.set_at)
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                        .unwrap_or_default();
                    put(vec![
                        x.student.clone(),
                        x.assignment.clone(),
                        x.kind.clone(),
                        o(&x.period),
                        x.value.clone(),
                        x.author.clone(),
                        at,
                    ])?
                }
            }
            "mark_history.csv" => {
                for x in mark_history {
                    let at = DateTime::from_timestamp_micros(x.changed_at)
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                        .unwrap_or_default();
                    put(vec![
                        x.mark.clone(),
                        at,
                        x.changed_by.clone(),
                        o(&x.old_value),
                        o(&x.new_value),
                        o(&x.old_work_type),
                        o(&x.new_work_type),
                        o(&x.reason),
                    ])?
                }
            }
            "attendance.csv" => {
                for x in &b.attendance {
                    put(vec![
                        x.lesson.clone(),
                        x.student.clone(),
                        x.kind.clone(),
                        x.author.clone(),
                    ])?
                }
            }
            _ => {}
        }
        w.flush()?;
    }
    Ok(rows)
}

/// A template: the header row of one file (downloadable from the app).
pub fn template(file: &str) -> Option<String> {
    FILES.iter().find(|(f, _)| *f == file).map(|(_, c)| format!("{}\n", c.join(",")))
}

/// Writes every template into a ZIP (one download for the whole set).
pub fn templates_zip() -> std::io::Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default();
    for (file, columns) in FILES {
        zip.start_file(*file, opts).map_err(std::io::Error::other)?;
        zip.write_all(format!("{}\n", columns.join(",")).as_bytes())?;
    }
    Ok(zip.finish().map_err(std::io::Error::other)?.into_inner())
}
