//! Отчёты: успеваемость и качество знаний, students with 2s, attendance, the teacher's journal
//! filling, territory aggregates and the class journal archive. Each report is built once as a
//! [`ReportDoc`] and shown on screen, as XLSX and as PDF from the same tables.
//!
//! Успеваемость = share of students with a result and no «2»; качество знаний = share whose
//! results are all «4» and «5». A student's result in a subject is the period (or annual) mark
//! when the teacher has set it, otherwise the mark suggested from the weighted average by the
//! region's rounding rule — so a report during the period already shows where things go.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::NaiveDate;
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{
    Action, Actor, AttendanceKind, ClassId, MarkValue, PeriodMarkValue, PersonId, SubjectId,
    WeightedMark, authorize, weighted_average,
};
use zhurnal_store::{AcademicYearRow, PeriodRow, ReportMark, SchoolRow};

use crate::export::{ReportDoc, Table};
use crate::{App, AppError};

/// The four school reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReportKind {
    Progress,
    Failing,
    Attendance,
    Filling,
}

impl ReportKind {
    pub const ALL: [ReportKind; 4] =
        [Self::Progress, Self::Failing, Self::Attendance, Self::Filling];

    pub fn code(self) -> &'static str {
        match self {
            Self::Progress => "progress",
            Self::Failing => "failing",
            Self::Attendance => "attendance",
            Self::Filling => "filling",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::Progress => "Успеваемость и качество знаний",
            Self::Failing => "Ученики, имеющие «2»",
            Self::Attendance => "Посещаемость",
            Self::Filling => "Заполнение журнала учителями",
        }
    }
    /// Lists of named students are for the school's own administration only; officials of the
    /// territory see aggregates.
    pub fn names_students(self) -> bool {
        matches!(self, Self::Failing)
    }
}

/// The school, year and date range a report covers.
#[derive(Clone, Debug)]
pub struct ReportRange {
    pub school: SchoolRow,
    pub year: AcademicYearRow,
    /// `None`: the whole year.
    pub period: Option<PeriodRow>,
    pub periods: Vec<PeriodRow>,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl ReportRange {
    pub fn title(&self) -> String {
        let what = match &self.period {
            Some(p) => p.period.name(),
            None => "учебный год".to_string(),
        };
        format!(
            "{} · {} {} ({} — {})",
            self.school.name,
            what,
            self.year.name,
            self.from.format("%d.%m.%Y"),
            self.to.format("%d.%m.%Y")
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Points(u8),
    Pass,
    Fail,
}

impl Outcome {
    fn bad(self) -> bool {
        matches!(self, Self::Points(p) if p <= 2) || self == Self::Fail
    }
    fn good(self) -> bool {
        matches!(self, Self::Points(p) if p >= 4) || self == Self::Pass
    }
    fn label(self) -> String {
        match self {
            Self::Points(p) => p.to_string(),
            Self::Pass => "зачёт".into(),
            Self::Fail => "незачёт".into(),
        }
    }
}

/// One student's standing in one subject of one class.
#[derive(Clone, Debug)]
struct Standing {
    class: ClassId,
    subject: SubjectId,
    student: PersonId,
    average: Option<f64>,
    twos: usize,
    outcome: Option<Outcome>,
}

/// Share as a percentage with one decimal, «—» when nobody counts.
fn percent(part: usize, whole: usize) -> String {
    if whole == 0 { "—".into() } else { format!("{:.1}", part as f64 * 100.0 / whole as f64) }
}

/// Counts for one group of standings: students with a result, without 2s, with only 4s and 5s.
fn tally(standings: &[&Standing]) -> (usize, usize, usize) {
    let mut by_student: BTreeMap<PersonId, Vec<Outcome>> = BTreeMap::new();
    for s in standings {
        if let Some(o) = s.outcome {
            by_student.entry(s.student).or_default().push(o);
        }
    }
    let total = by_student.len();
    let passing = by_student.values().filter(|v| !v.iter().any(|o| o.bad())).count();
    let quality = by_student.values().filter(|v| v.iter().all(|o| o.good())).count();
    (total, passing, quality)
}

impl App {
    /// The school when the actor may see its reports (admin of it, or an official above it).
    pub async fn report_school(
        &self,
        actor: &Actor,
        school: zhurnal_domain::SchoolId,
    ) -> Result<SchoolRow, AppError> {
        let school = self.store.get_school(school).await?;
        authorize(actor, Action::ViewReports, &Resource::School(school.place()))?;
        Ok(school)
    }

    /// The year containing today (or the latest one) and the requested period: `Some(id)` for a
    /// period, `None` for the period of today (or the whole year when today is in none),
    /// `Some(0)` for the whole year.
    pub async fn report_range(
        &self,
        school: SchoolRow,
        period: Option<i64>,
    ) -> Result<ReportRange, AppError> {
        let today = self.today();
        let years = self.store.list_academic_years(school.id).await?;
        let year = years
            .iter()
            .find(|y| y.starts_on <= today && today <= y.ends_on)
            .or_else(|| years.iter().filter(|y| y.starts_on <= today).max_by_key(|y| y.starts_on))
            .or(years.first())
            .cloned()
            .ok_or_else(|| {
                AppError::Invalid("В школе не задан учебный год: отчёты строить не по чему.".into())
            })?;
        let periods = self.store.list_periods(year.id).await?;
        let chosen = match period {
            Some(0) => None,
            Some(id) => Some(
                periods
                    .iter()
                    .find(|p| p.period.id.0 == id)
                    .cloned()
                    .ok_or_else(|| AppError::Invalid(format!("Период {id} не относится к текущему учебному году школы: выберите период из списка.")))?,
            ),
            None => periods
                .iter()
                .find(|p| p.period.contains(today) && p.period.scheme == zhurnal_domain::PeriodScheme::Quarters)
                .or_else(|| periods.iter().find(|p| p.period.contains(today)))
                .cloned(),
        };
        let (from, to) = match &chosen {
            Some(p) => (p.period.starts_on, p.period.ends_on),
            None => (year.starts_on, year.ends_on),
        };
        Ok(ReportRange { school, year, period: chosen, periods, from, to })
    }

    async fn standings(&self, range: &ReportRange) -> Result<Vec<Standing>, AppError> {
        let marks = self.store.list_report_marks(range.school.id, range.from, range.to).await?;
        let finals = self.store.list_report_final_marks(range.school.id, range.year.id).await?;
        let mut grouped: BTreeMap<(ClassId, SubjectId, PersonId), Vec<&ReportMark>> =
            BTreeMap::new();
        for m in &marks {
            grouped.entry((m.class_id, m.subject_id, m.student_id)).or_default().push(m);
        }
        // The teacher's own mark wins over the suggestion.
        let mut set: HashMap<(ClassId, SubjectId, PersonId), Outcome> = HashMap::new();
        for f in &finals {
            let relevant = match &range.period {
                Some(p) => f.kind == "period" && f.period_id == Some(p.period.id.0),
                None => f.kind == "annual",
            };
            if !relevant {
                continue;
            }
            let outcome = match PeriodMarkValue::parse(&f.value) {
                Ok(PeriodMarkValue::Points(p)) => Outcome::Points(p),
                Ok(PeriodMarkValue::Pass) => Outcome::Pass,
                Ok(PeriodMarkValue::Fail) => Outcome::Fail,
                _ => continue,
            };
            set.insert((f.class_id, f.subject_id, f.student_id), outcome);
            grouped.entry((f.class_id, f.subject_id, f.student_id)).or_default();
        }
        let rule = self.rules.rounding;
        Ok(grouped
            .into_iter()
            .map(|(key, ms)| {
                let weighted: Vec<WeightedMark> =
                    ms.iter().map(|m| WeightedMark { value: m.value, weight: m.weight }).collect();
                let average = weighted_average(&weighted);
                let point_count = ms.iter().filter(|m| m.value.points().is_some()).count();
                let suggested = match average {
                    Some(avg) => rule.suggest(avg, point_count).map(Outcome::Points),
                    // A pass/fail subject: any «незачёт» without a later «зачёт» counts as a fail.
                    None => ms.last().map(|m| {
                        if m.value == MarkValue::Fail { Outcome::Fail } else { Outcome::Pass }
                    }),
                };
                Standing {
                    class: key.0,
                    subject: key.1,
                    student: key.2,
                    average,
                    twos: ms
                        .iter()
                        .filter(|m| matches!(m.value.points(), Some(p) if p <= 2))
                        .count(),
                    outcome: set.get(&key).copied().or(suggested),
                }
            })
            .collect())
    }

    /// Builds one school report.
    pub async fn school_report(
        &self,
        kind: ReportKind,
        range: &ReportRange,
    ) -> Result<ReportDoc, AppError> {
        let classes = self.store.list_classes(range.school.id, range.year.id).await?;
        let class_name: HashMap<ClassId, String> =
            classes.iter().map(|c| (c.id, c.name())).collect();
        let subjects = self.store.list_subjects(range.school.id).await?;
        let subject_name: HashMap<SubjectId, String> =
            subjects.iter().map(|s| (s.id, s.name.clone())).collect();
        let name_of_class =
            |id: &ClassId| class_name.get(id).cloned().unwrap_or_else(|| format!("класс {id}"));
        let mut tables = Vec::new();
        match kind {
            ReportKind::Progress => {
                let standings = self.standings(range).await?;
                let mut by_class = Table::new(
                    "По классам",
                    &[
                        "Класс",
                        "Аттестовано",
                        "Без «2»",
                        "Успеваемость, %",
                        "Только «4» и «5»",
                        "Качество, %",
                    ],
                )
                .widths(&[1.0, 1.2, 1.0, 1.4, 1.4, 1.2]);
                let mut all: Vec<&Standing> = Vec::new();
                for c in &classes {
                    let mine: Vec<&Standing> =
                        standings.iter().filter(|s| s.class == c.id).collect();
                    all.extend(mine.iter().copied());
                    let (total, passing, quality) = tally(&mine);
                    if total == 0 {
                        continue;
                    }
                    by_class.push(vec![
                        c.name(),
                        total.to_string(),
                        passing.to_string(),
                        percent(passing, total),
                        quality.to_string(),
                        percent(quality, total),
                    ]);
                }
                let (total, passing, quality) = tally(&all);
                by_class.push(vec![
                    "Итого по школе".into(),
                    total.to_string(),
                    passing.to_string(),
                    percent(passing, total),
                    quality.to_string(),
                    percent(quality, total),
                ]);
                let mut by_subject = Table::new(
                    "По предметам",
                    &["Предмет", "Аттестовано", "Успеваемость, %", "Качество, %", "Средний балл"],
                )
                .widths(&[2.0, 1.0, 1.2, 1.2, 1.0]);
                for s in &subjects {
                    let mine: Vec<&Standing> =
                        standings.iter().filter(|x| x.subject == s.id).collect();
                    let (total, passing, quality) = tally(&mine);
                    if total == 0 {
                        continue;
                    }
                    let avgs: Vec<f64> = mine.iter().filter_map(|x| x.average).collect();
                    let avg = if avgs.is_empty() {
                        "—".to_string()
                    } else {
                        format!("{:.2}", avgs.iter().sum::<f64>() / avgs.len() as f64)
                    };
                    by_subject.push(vec![
                        s.name.clone(),
                        total.to_string(),
                        percent(passing, total),
                        percent(quality, total),
                        avg,
                    ]);
                }
                tables.push(by_class);
                tables.push(by_subject);
            }
            ReportKind::Failing => {
                let standings = self.standings(range).await?;
                let mut t = Table::new(
                    "Ученики с итогом или прогнозом «2»",
                    &["Класс", "Ученик", "Предмет", "Средний балл", "Итог / прогноз", "Число «2»"],
                )
                .widths(&[0.8, 2.6, 2.0, 1.0, 1.0, 0.8]);
                let mut names: HashMap<PersonId, String> = HashMap::new();
                let mut rows = Vec::new();
                for s in standings.iter().filter(|s| s.outcome.is_some_and(Outcome::bad)) {
                    let name = match names.get(&s.student) {
                        Some(n) => n.clone(),
                        None => {
                            let n = self.store.get_person(s.student).await?.full_name();
                            names.insert(s.student, n.clone());
                            n
                        }
                    };
                    let grade = classes
                        .iter()
                        .find(|c| c.id == s.class)
                        .map(|c| (c.grade, c.letter.clone()));
                    rows.push((
                        grade,
                        name,
                        vec![
                            name_of_class(&s.class),
                            String::new(),
                            subject_name.get(&s.subject).cloned().unwrap_or_default(),
                            s.average.map(|a| format!("{a:.2}")).unwrap_or_else(|| "—".into()),
                            s.outcome.map(Outcome::label).unwrap_or_default(),
                            s.twos.to_string(),
                        ],
                    ));
                }
                rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
                for (_, name, mut row) in rows {
                    row[1] = name;
                    t.push(row);
                }
                tables.push(t);
            }
            ReportKind::Attendance => {
                let rows = self
                    .store
                    .list_report_attendance(range.school.id, range.from, range.to)
                    .await?;
                let mut t = Table::new(
                    "Пропуски уроков по классам",
                    &[
                        "Класс",
                        "Н",
                        "Б",
                        "УП",
                        "ОП",
                        "Пропущено уроков",
                        "По уважительной",
                        "Пропущено дней",
                    ],
                )
                .widths(&[1.0, 0.7, 0.7, 0.7, 0.7, 1.4, 1.4, 1.3]);
                let mut totals = [0usize; 7];
                for c in &classes {
                    let mine: Vec<_> = rows.iter().filter(|r| r.class_id == c.id).collect();
                    if mine.is_empty() {
                        continue;
                    }
                    let count = |k: AttendanceKind| mine.iter().filter(|r| r.kind == k).count();
                    let missed = mine.iter().filter(|r| r.kind.is_missed()).count();
                    let excused = mine.iter().filter(|r| r.kind.is_excused()).count();
                    let days: BTreeSet<(PersonId, NaiveDate)> = mine
                        .iter()
                        .filter(|r| r.kind.is_missed())
                        .map(|r| (r.student_id, r.date))
                        .collect();
                    let v = [
                        count(AttendanceKind::Absent),
                        count(AttendanceKind::Ill),
                        count(AttendanceKind::ValidReason),
                        count(AttendanceKind::Late),
                        missed,
                        excused,
                        days.len(),
                    ];
                    for (t, x) in totals.iter_mut().zip(v) {
                        *t += x;
                    }
                    let mut row = vec![c.name()];
                    row.extend(v.iter().map(|x| x.to_string()));
                    t.push(row);
                }
                let mut row = vec!["Итого по школе".to_string()];
                row.extend(totals.iter().map(|x| x.to_string()));
                t.push(row);
                tables.push(t);
            }
            ReportKind::Filling => {
                let today = self.today();
                let lessons = self
                    .store
                    .list_report_lessons(range.school.id, range.from, range.to.min(today))
                    .await?;
                let mut per: BTreeMap<PersonId, (usize, usize, usize, usize)> = BTreeMap::new();
                for l in &lessons {
                    let e = per.entry(l.teacher_id).or_default();
                    let no_topic = l.topic.as_deref().is_none_or(|s| s.trim().is_empty());
                    let no_homework = l.homework.as_deref().is_none_or(|s| s.trim().is_empty());
                    e.0 += 1;
                    e.1 += usize::from(no_topic);
                    e.2 += usize::from(no_homework);
                    e.3 += usize::from(!no_topic && !no_homework);
                }
                let mut t = Table::new(
                    "Уроки без темы или домашнего задания",
                    &[
                        "Учитель",
                        "Уроков в журнале",
                        "Без темы",
                        "Без ДЗ",
                        "Заполнено полностью, %",
                    ],
                )
                .widths(&[2.6, 1.2, 1.0, 1.0, 1.6]);
                let mut rows = Vec::new();
                for (teacher, (n, no_topic, no_hw, full)) in per {
                    let name = self.store.get_person(teacher).await?.short_name();
                    rows.push(vec![
                        name,
                        n.to_string(),
                        no_topic.to_string(),
                        no_hw.to_string(),
                        percent(full, n),
                    ]);
                }
                rows.sort();
                for r in rows {
                    t.push(r);
                }
                tables.push(t);
            }
        }
        Ok(ReportDoc { title: kind.title().to_string(), subtitle: range.title(), tables })
    }

    /// Aggregates per school of the actor's territory (no personal data): успеваемость,
    /// качество and missed lessons for each school's current period.
    pub async fn territory_report(&self, actor: &Actor) -> Result<ReportDoc, AppError> {
        let mut t = Table::new(
            "Школы территории",
            &[
                "Школа",
                "Муниципалитет",
                "Аттестовано",
                "Успеваемость, %",
                "Качество, %",
                "Пропущено уроков",
            ],
        )
        .widths(&[2.4, 1.8, 1.0, 1.2, 1.0, 1.2]);
        let mut any = false;
        for school in self.store.list_schools().await? {
            if authorize(actor, Action::ViewReports, &Resource::School(school.place())).is_err() {
                continue;
            }
            any = true;
            let muni = self.store.get_municipality(school.municipality_id).await?.name;
            let range = match self.report_range(school.clone(), None).await {
                Ok(r) => r,
                Err(AppError::Invalid(_)) => {
                    t.push(vec![
                        school.name.clone(),
                        muni,
                        "—".into(),
                        "—".into(),
                        "—".into(),
                        "—".into(),
                    ]);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let standings = self.standings(&range).await?;
            let (total, passing, quality) = tally(&standings.iter().collect::<Vec<_>>());
            let missed = self
                .store
                .list_report_attendance(school.id, range.from, range.to)
                .await?
                .iter()
                .filter(|a| a.kind.is_missed())
                .count();
            t.push(vec![
                school.name.clone(),
                muni,
                total.to_string(),
                percent(passing, total),
                percent(quality, total),
                missed.to_string(),
            ]);
        }
        if !any {
            return Err(AppError::Denied(zhurnal_domain::Denied {
                action: Action::ViewReports,
                action_title: Action::ViewReports.title(),
                reason: "отчёты доступны администрации школы и органам управления своей территории",
            }));
        }
        Ok(ReportDoc {
            title: "Сводка по территории".into(),
            subtitle: format!(
                "на {} · текущий период каждой школы",
                self.today().format("%d.%m.%Y")
            ),
            tables: vec![t],
        })
    }

    /// The year's archive of a class journal (архив журнала): per subject, every student's
    /// marks by period with the weighted average and period marks, then the lessons with
    /// topics and homework. School admins only (it names students).
    pub async fn class_archive(
        &self,
        actor: &Actor,
        class: ClassId,
    ) -> Result<(SchoolRow, ReportDoc), AppError> {
        let class = self.store.get_class(class).await?;
        let school = self.store.get_school(class.school_id).await?;
        authorize(
            actor,
            Action::ManageSchool,
            &Resource::Class { place: school.place(), class: class.id },
        )?;
        let year = self.store.get_year(class.academic_year_id).await?;
        let periods: Vec<PeriodRow> = self
            .store
            .list_periods(year.id)
            .await?
            .into_iter()
            .filter(|p| p.period.scheme == class.period_scheme)
            .collect();
        let marks: Vec<ReportMark> = self
            .store
            .list_report_marks(school.id, year.starts_on, year.ends_on)
            .await?
            .into_iter()
            .filter(|m| m.class_id == class.id)
            .collect();
        let finals = self.store.list_report_final_marks(school.id, year.id).await?;
        let lessons =
            self.store.list_report_lessons(school.id, year.starts_on, year.ends_on).await?;
        let on = self.today().clamp(year.starts_on, year.ends_on);
        let mut students: Vec<(PersonId, String)> = self
            .store
            .list_roster(class.id, on)
            .await?
            .into_iter()
            .map(|e| (e.person.id, e.person.full_name()))
            .collect();
        for m in &marks {
            if !students.iter().any(|(id, _)| *id == m.student_id) {
                let p = self.store.get_person(m.student_id).await?;
                students.push((p.id, p.full_name()));
            }
        }
        students.sort_by(|a, b| a.1.cmp(&b.1));
        let assignments: Vec<_> = self
            .store
            .list_assignments(school.id, year.id)
            .await?
            .into_iter()
            .filter(|a| a.class_id == class.id)
            .collect();
        let mut tables = Vec::new();
        for a in &assignments {
            let mut headers: Vec<String> = vec!["Ученик".into()];
            headers.extend(periods.iter().map(|p| p.period.name()));
            headers.extend(["Средний балл".to_string(), "Отметки за периоды".to_string()]);
            let mut widths = vec![2.4];
            widths.extend(periods.iter().map(|_| 2.0));
            widths.extend([0.9, 1.4]);
            let mut t = Table {
                title: format!("{} — {}", a.subject_name, a.teacher_name),
                headers,
                rows: Vec::new(),
                widths,
            };
            for (student, name) in &students {
                let mine: Vec<&ReportMark> = marks
                    .iter()
                    .filter(|m| m.subject_id == a.subject_id && m.student_id == *student)
                    .collect();
                let mut row = vec![name.clone()];
                for p in &periods {
                    let s: Vec<String> = mine
                        .iter()
                        .filter(|m| p.period.contains(m.date))
                        .map(|m| m.value.display())
                        .collect();
                    row.push(s.join(" "));
                }
                let avg = weighted_average(
                    &mine
                        .iter()
                        .map(|m| WeightedMark { value: m.value, weight: m.weight })
                        .collect::<Vec<_>>(),
                );
                row.push(avg.map(|v| format!("{v:.2}")).unwrap_or_default());
                let period_marks: Vec<String> = periods
                    .iter()
                    .filter_map(|p| {
                        finals
                            .iter()
                            .find(|f| {
                                f.student_id == *student
                                    && f.subject_id == a.subject_id
                                    && f.class_id == class.id
                                    && f.period_id == Some(p.period.id.0)
                            })
                            .map(|f| f.value.clone())
                    })
                    .collect();
                row.push(period_marks.join(" / "));
                t.push(row);
            }
            tables.push(t);
            let mut l = Table::new(
                format!("{}: темы уроков и домашние задания", a.subject_name),
                &["Дата", "Урок", "Тема", "Домашнее задание"],
            )
            .widths(&[0.9, 0.5, 3.5, 3.5]);
            for lesson in lessons.iter().filter(|x| x.assignment_id == a.id) {
                l.push(vec![
                    lesson.date.format("%d.%m.%Y").to_string(),
                    lesson.lesson_number.to_string(),
                    lesson.topic.clone().unwrap_or_default(),
                    lesson.homework.clone().unwrap_or_default(),
                ]);
            }
            tables.push(l);
        }
        let doc = ReportDoc {
            title: format!("Журнал класса {} — {}", class.name(), year.name),
            subtitle: format!(
                "{} · архивная копия на {}",
                school.name,
                self.today().format("%d.%m.%Y")
            ),
            tables,
        };
        Ok((school, doc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(student: i64, outcome: Option<Outcome>) -> Standing {
        Standing {
            class: ClassId(1),
            subject: SubjectId(1),
            student: PersonId(student),
            average: None,
            twos: 0,
            outcome,
        }
    }

    #[test]
    fn progress_and_quality_follow_their_definitions() {
        let s = [
            st(1, Some(Outcome::Points(5))),
            st(1, Some(Outcome::Points(4))),
            st(2, Some(Outcome::Points(3))),
            st(3, Some(Outcome::Points(2))),
            st(3, Some(Outcome::Points(5))),
            st(4, Some(Outcome::Pass)),
            st(5, None),
        ];
        let refs: Vec<&Standing> = s.iter().collect();
        // Students 1..4 have results; 3 has a «2»; 1 and 4 have only good results.
        assert_eq!(tally(&refs), (4, 3, 2));
        assert_eq!(percent(3, 4), "75.0");
        assert_eq!(percent(0, 0), "—");
    }

    #[test]
    fn report_codes_round_trip() {
        for k in ReportKind::ALL {
            assert_eq!(ReportKind::from_code(k.code()), Some(k));
        }
        assert!(ReportKind::Failing.names_students());
        assert!(!ReportKind::Progress.names_students());
    }
}
