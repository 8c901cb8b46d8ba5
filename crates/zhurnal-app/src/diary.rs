//! The student's and parent's diary (week, marks by subject with explained averages and the
//! target planner, the feed of what is new) and the class teacher's summary. Every entry point
//! authorizes with the domain policy first and audits views of another person's data.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use zhurnal_domain::mark::{TargetStep, format_average, plan_options};
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{
    Action, Actor, AttendanceKind, AverageExplanation, ClassId, LessonId, MarkValue, PeriodId,
    PersonId, WeightedMark, authorize,
};
use zhurnal_store::{
    AnnouncementRow, ClassRow, ClassWeek, DiaryVisit, NewAudit, PeriodRow, PersonRow,
    ScheduledLesson, SchoolRow, SubjectMarkRow, WeekEntries, WeekStamp, WorkTypeRow,
};

use crate::week_cache::{ClassWeekKey, WeekKey};
use crate::{App, AppError};

/// Announcements the week view shows (the newest; read no more than that).
const WEEK_ANNOUNCEMENTS: usize = 5;

/// Whose diary, where, and up to which date the viewer may see it.
#[derive(Clone, Debug)]
pub struct DiaryAccess {
    pub student: PersonRow,
    pub school: SchoolRow,
    pub class: ClassRow,
    /// The departure date for a parent of a child who left: nothing later is shown.
    pub visible_until: Option<NaiveDate>,
    /// The viewer is not the student (a parent, the class teacher, the school admin).
    pub on_behalf: bool,
    /// The class's change stamps, read with the student (see [`WeekStamp`]).
    pub stamp: WeekStamp,
}

#[derive(Clone, Debug, Serialize)]
pub struct StudentCard {
    pub id: String,
    pub name: String,
    pub class: String,
    pub school: String,
    pub visible_until: Option<NaiveDate>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MarkView {
    pub date: NaiveDate,
    pub value: String,
    pub work_type: String,
    pub weight: u8,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttachmentView {
    pub id: String,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    /// Download link (served by the journal's attachment route).
    pub url: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttendanceView {
    pub code: &'static str,
    pub abbreviation: &'static str,
    pub title: &'static str,
}

#[derive(Clone, Debug, Serialize)]
pub struct WeekLesson {
    pub number: u8,
    pub subject: String,
    pub teacher: String,
    pub substitution: bool,
    pub room: Option<String>,
    pub topic: Option<String>,
    pub homework: Option<String>,
    pub attachments: Vec<AttachmentView>,
    pub marks: Vec<MarkView>,
    pub attendance: Option<AttendanceView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct WeekDay {
    pub date: NaiveDate,
    pub lessons: Vec<WeekLesson>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AnnouncementView {
    pub id: String,
    pub sender: String,
    pub body: String,
    /// Unix µs.
    pub created_at: i64,
    pub classes: Vec<String>,
    pub status: &'static str,
}

impl From<&AnnouncementRow> for AnnouncementView {
    fn from(a: &AnnouncementRow) -> Self {
        Self {
            id: a.uid.clone(),
            sender: a.sender_name.clone(),
            body: a.body.clone(),
            created_at: a.created_at,
            classes: a.classes.iter().map(|(_, n)| n.clone()).collect(),
            status: a.status.code(),
        }
    }
}

/// Дневник за неделю.
#[derive(Clone, Debug, Serialize)]
pub struct DiaryWeek {
    pub student: StudentCard,
    pub monday: NaiveDate,
    pub sunday: NaiveDate,
    pub previous_week: NaiveDate,
    pub next_week: NaiveDate,
    pub days: Vec<WeekDay>,
    pub announcements: Vec<AnnouncementView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PeriodView {
    pub id: i64,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

/// One line of the target planner.
#[derive(Clone, Debug, Serialize)]
pub struct PlanLine {
    pub count: usize,
    pub value: u8,
    pub weight: u8,
    pub work_types: String,
    pub resulting_average: f64,
    /// «две пятёрки веса 2 поднимут средний балл до 4,50».
    pub text: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct SubjectMarks {
    pub subject: String,
    pub marks: Vec<MarkView>,
    pub explanation: AverageExplanation,
    /// «4,33» or empty without point marks.
    pub average: Option<String>,
    /// The period mark set by the teacher, if any.
    pub period_mark: Option<String>,
    pub suggested: Option<u8>,
    /// The planner's target for this subject (asked or the next mark up).
    pub target: Option<u8>,
    pub plan: Vec<PlanLine>,
}

/// Отметки по предметам за период.
#[derive(Clone, Debug, Serialize)]
pub struct DiaryMarks {
    pub student: StudentCard,
    pub periods: Vec<PeriodView>,
    pub period: Option<PeriodView>,
    pub rule: String,
    pub subjects: Vec<SubjectMarks>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FeedHomework {
    pub date: NaiveDate,
    pub subject: String,
    pub homework: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct FeedMark {
    pub subject: String,
    #[serde(flatten)]
    pub mark: MarkView,
}

/// Новое с прошлого визита.
#[derive(Clone, Debug, Serialize)]
pub struct DiaryFeed {
    pub student: StudentCard,
    /// The previous visit (Unix µs); `None` on the first one (the last week is shown).
    pub since: Option<i64>,
    pub marks: Vec<FeedMark>,
    pub homework: Vec<FeedHomework>,
    pub announcements: Vec<AnnouncementView>,
}

/// Absences of one student by kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AbsenceCounts {
    pub absent: usize,
    pub ill: usize,
    pub valid_reason: usize,
    pub late: usize,
}

impl AbsenceCounts {
    pub fn missed(&self) -> usize {
        self.absent + self.ill + self.valid_reason
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct SummaryRow {
    pub student: String,
    pub student_id: String,
    /// Weighted average per subject, in the order of [`ClassSummary::subjects`].
    pub averages: Vec<Option<String>>,
    pub twos: usize,
    pub absences: AbsenceCounts,
}

#[derive(Clone, Debug, Serialize)]
pub struct ContactRow {
    pub student: String,
    pub parent: String,
    pub phone: Option<String>,
    pub email: Option<String>,
}

/// Сводка классного руководителя.
#[derive(Clone, Debug, Serialize)]
pub struct ClassSummary {
    pub class: String,
    pub school: String,
    pub period: Option<PeriodView>,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub subjects: Vec<String>,
    pub rows: Vec<SummaryRow>,
}

fn event(base: &NewAudit, at: i64, action: &str) -> NewAudit {
    NewAudit { at, action: action.into(), result: "ok".into(), ..base.clone() }
}

fn monday_of(date: NaiveDate) -> NaiveDate {
    date - Duration::days(i64::from(date.weekday().num_days_from_monday()))
}

fn mark_view(m: &SubjectMarkRow, work_types: &[WorkTypeRow]) -> MarkView {
    MarkView {
        date: m.date,
        value: m.value.display(),
        work_type: work_types
            .iter()
            .find(|w| w.id == m.work_type_id)
            .map(|w| w.name.clone())
            .unwrap_or_default(),
        weight: m.weight,
        comment: m.comment.clone(),
    }
}

fn period_view(p: &PeriodRow) -> PeriodView {
    PeriodView {
        id: p.period.id.0,
        name: p.period.name(),
        starts_on: p.period.starts_on,
        ends_on: p.period.ends_on,
    }
}

impl DiaryAccess {
    pub fn card(&self) -> StudentCard {
        StudentCard {
            id: self.student.uid.clone(),
            name: self.student.full_name(),
            class: self.class.name(),
            school: self.school.short_name.clone(),
            visible_until: self.visible_until,
        }
    }

    /// The last date the viewer may see, capped at `to`.
    pub fn cap(&self, to: NaiveDate) -> NaiveDate {
        self.visible_until.map_or(to, |v| v.min(to))
    }
}

impl App {
    /// Resolves a student by public id and authorizes `ViewDiary`. An unknown id and a foreign
    /// child are refused alike: existence is personal data too.
    pub async fn diary_access(&self, actor: &Actor, uid: &str) -> Result<DiaryAccess, AppError> {
        let denied = || {
            AppError::Denied(zhurnal_domain::Denied {
                action: Action::ViewDiary,
                action_title: Action::ViewDiary.title(),
                reason: if actor.is_parent() {
                    "родитель видит дневники только своих детей"
                } else if actor.is_student() {
                    "ученик видит только свой дневник"
                } else {
                    "этот дневник не относится к вашему классу или школе"
                },
            })
        };
        // One statement: the student, and the school and class of the enrolment shown (the
        // latest active one, else the latest). Read on every request, never cached, so a
        // transfer or a departure shows on the next click.
        let found = self.store.find_diary_student(uid).await?.ok_or_else(denied)?;
        let (student, stamp) = (found.person, found.stamp);
        let (school, class) = found.placement.ok_or_else(denied)?;
        let resource =
            Resource::Student { place: school.place(), class: class.id, student: student.id };
        authorize(actor, Action::ViewDiary, &resource).map_err(|_| denied())?;
        let visible_until =
            actor.children.iter().find(|c| c.child == student.id).and_then(|c| c.visible_until);
        let on_behalf = actor.person != student.id;
        Ok(DiaryAccess { student, school, class, visible_until, on_behalf, stamp })
    }

    async fn audit_view(
        &self,
        access: &DiaryAccess,
        base: &NewAudit,
        action: &str,
        details: serde_json::Value,
    ) -> Result<(), AppError> {
        if access.on_behalf {
            let e = event(base, self.now_micros(), action)
                .target("student", &access.student.uid)
                .school(access.school.id.0)
                .details(details);
            self.audit_read(e).await?;
        }
        Ok(())
    }

    /// The newest `limit` announcements of the student's class the viewer may see (before a
    /// departure only).
    async fn class_announcements(
        &self,
        access: &DiaryAccess,
        limit: usize,
    ) -> Result<Vec<AnnouncementRow>, AppError> {
        // A departed child's newest announcements are dropped below: read further back then.
        let read = if access.visible_until.is_some() { limit.max(50) } else { limit };
        let key = (access.class.id, read);
        // The class's stamp covers its announcements, the region's their senders' names.
        let kept = self
            .class_news
            .get_or_build(key, access.stamp, || {
                self.store.list_class_announcements(access.class.id, read.try_into().unwrap_or(50))
            })
            .await?;
        let mut list = (*kept).clone();
        if let Some(until) = access.visible_until {
            let offset = self.offset();
            list.retain(|a| {
                chrono::DateTime::from_timestamp_micros(a.created_at)
                    .is_some_and(|t| t.with_timezone(&offset).date_naive() <= until)
            });
        }
        list.truncate(limit);
        Ok(list)
    }

    /// The school's work types (their names and weights), kept under the region's stamp,
    /// which every change of a work type moves.
    async fn school_work_types(
        &self,
        access: &DiaryAccess,
    ) -> Result<Arc<Vec<WorkTypeRow>>, AppError> {
        let stamp = WeekStamp { class: 0, region: access.stamp.region };
        let school = access.school.id;
        Ok(self
            .work_types
            .get_or_build(school, stamp, || self.store.list_work_types(school))
            .await?)
    }

    /// The week containing `date` (today by default).
    pub async fn diary_week(
        &self,
        access: &DiaryAccess,
        date: Option<NaiveDate>,
        base: &NewAudit,
    ) -> Result<DiaryWeek, AppError> {
        let monday = monday_of(date.unwrap_or_else(|| self.today()));
        let sunday = monday + Duration::days(6);
        let audit = self.audit_view(
            access,
            base,
            "diary.view",
            serde_json::json!({ "week": monday.to_string() }),
        );
        let to = access.cap(sunday);
        let (student, class) = (access.student.id, access.class.id);
        let key = WeekKey { student, class, monday, visible_until: access.visible_until };
        if let Some(week) = self.diary_weeks.get(&key, access.stamp) {
            audit.await?;
            // The card (the school's name, the viewer's limit) is not part of the week's stamp.
            return Ok(DiaryWeek { student: access.card(), ..(*week).clone() });
        }
        let reads = async {
            let (class_week, WeekEntries { marks, attendance, other_groups }) = if monday <= to {
                // The student's statement probes the lessons of the class's part.
                let class_week = self.class_week(access, monday, to).await?;
                let entries =
                    self.store.list_student_week_entries(student, class, &class_week).await?;
                (class_week, entries)
            } else {
                Default::default()
            };
            let work_types = self.school_work_types(access).await?;
            let announcements = self.class_announcements(access, WEEK_ANNOUNCEMENTS).await?;
            Ok::<_, AppError>((
                class_week,
                marks,
                attendance,
                other_groups,
                work_types,
                announcements,
            ))
        };
        // The audit record commits (group commit, see `audit_appender`) while the week is
        // read; nothing is returned unless both succeeded.
        let ((), (class_week, marks, attendance, other_groups, work_types, announcements)) =
            tokio::try_join!(audit, reads)?;
        let lessons: Vec<&ScheduledLesson> = class_week.lessons_of(&other_groups).collect();
        let files = &class_week.files;
        let mut days = Vec::new();
        for offset in 0..7 {
            let date = monday + Duration::days(offset);
            let day: Vec<WeekLesson> = lessons
                .iter()
                .filter(|l| l.date == date)
                .map(|l| WeekLesson {
                    number: l.lesson_number,
                    subject: l.assignment.subject_name.clone(),
                    teacher: l.assignment.teacher_name.clone(),
                    substitution: l.substitution,
                    room: l.room.clone(),
                    topic: l.topic.clone(),
                    homework: l.homework.clone(),
                    attachments: files
                        .iter()
                        .filter(|f| Some(f.lesson_id) == l.lesson_id)
                        .map(|f| AttachmentView {
                            id: f.uid.clone(),
                            file_name: f.file_name.clone(),
                            content_type: f.content_type.clone(),
                            size_bytes: f.size_bytes,
                            url: format!("/api/v1/attachments/{}", f.uid),
                        })
                        .collect(),
                    marks: marks
                        .iter()
                        .filter(|m| Some(m.lesson_id) == l.lesson_id)
                        .map(|m| mark_view(m, &work_types))
                        .collect(),
                    attendance: attendance.iter().find(|a| Some(a.lesson_id) == l.lesson_id).map(
                        |a| AttendanceView {
                            code: a.kind.code(),
                            abbreviation: a.kind.abbreviation(),
                            title: a.kind.title(),
                        },
                    ),
                })
                .collect();
            // Sunday only when something happens on it.
            if offset < 6 || !day.is_empty() {
                days.push(WeekDay { date, lessons: day });
            }
        }
        let announcements = announcements.iter().map(Into::into).collect();
        let week = DiaryWeek {
            student: access.card(),
            monday,
            sunday,
            previous_week: monday - Duration::days(7),
            next_week: monday + Duration::days(7),
            days,
            announcements,
        };
        // Stored under the stamp read before the week's reads: a change that committed in
        // between is in the week already, and moves the stamp on for the next request.
        self.diary_weeks.put(key, access.stamp, Arc::new(week.clone()));
        Ok(week)
    }

    /// The class's part of a week (see [`week_cache`](crate::week_cache)), read from the
    /// database only when none built under the access check's stamp is kept or being read.
    async fn class_week(
        &self,
        access: &DiaryAccess,
        monday: NaiveDate,
        to: NaiveDate,
    ) -> Result<Arc<ClassWeek>, AppError> {
        let key = ClassWeekKey { class: access.class.id, monday, to };
        // Stored under the stamp read before the week's reads: a change that committed in
        // between is in the week already, and moves the stamp on for the next request.
        let week = self
            .class_weeks
            .get_or_build(key, access.stamp, || self.store.read_class_week(key.class, monday, to))
            .await?;
        Ok(week)
    }

    /// The periods of the student's class (its scheme) this year.
    async fn class_periods(&self, class: &ClassRow) -> Result<Vec<PeriodRow>, AppError> {
        let mut periods = self.store.list_periods(class.academic_year_id).await?;
        periods.retain(|p| p.period.scheme == class.period_scheme);
        periods.sort_by_key(|p| p.period.number);
        Ok(periods)
    }

    /// The period containing today, else the last one that started, else the first.
    fn current_period<'a>(&self, periods: &'a [PeriodRow]) -> Option<&'a PeriodRow> {
        let today = self.today();
        periods
            .iter()
            .find(|p| p.period.contains(today))
            .or_else(|| periods.iter().rev().find(|p| p.period.starts_on <= today))
            .or(periods.first())
    }

    /// Marks by subject for a period, with the weighted average explained and, per subject,
    /// the planner's fewest marks to reach `target` (or the next mark up).
    pub async fn diary_marks(
        &self,
        access: &DiaryAccess,
        period: Option<PeriodId>,
        target: Option<u8>,
        base: &NewAudit,
    ) -> Result<DiaryMarks, AppError> {
        if let Some(t) = target
            && !(2..=5).contains(&t)
        {
            return Err(AppError::Invalid(format!(
                "цель «{t}» не подходит: укажите отметку от 2 до 5"
            )));
        }
        let periods = self.class_periods(&access.class).await?;
        let chosen = match period {
            Some(id) => Some(periods.iter().find(|p| p.period.id == id).ok_or_else(|| {
                AppError::Invalid(format!(
                    "период {} не найден среди периодов класса {}: выберите период из списка",
                    id.0,
                    access.class.name()
                ))
            })?),
            None => self.current_period(&periods),
        };
        self.audit_view(
            access,
            base,
            "diary.marks.view",
            serde_json::json!({ "period": chosen.map(|p| p.period.id.0) }),
        )
        .await?;
        let rule = &self.rules.rounding;
        let mut subjects = Vec::new();
        if let Some(p) = chosen {
            let to = access.cap(p.period.ends_on);
            let marks = if p.period.starts_on <= to {
                self.store
                    .list_student_subject_marks(access.student.id, p.period.starts_on, to)
                    .await?
            } else {
                Vec::new()
            };
            let finals = self.store.list_student_final_marks(access.student.id).await?;
            let work_types = self.school_work_types(access).await?;
            let mut weights: Vec<u8> = work_types.iter().map(|w| w.weight).collect();
            weights.sort_unstable();
            weights.dedup();
            let mut by_subject: BTreeMap<String, Vec<&SubjectMarkRow>> = BTreeMap::new();
            for m in &marks {
                by_subject.entry(m.subject_name.clone()).or_default().push(m);
            }
            // Subjects from the timetable too, so one without marks still shows.
            let lessons = self
                .store
                .list_student_lessons(
                    access.student.id,
                    access.class.id,
                    monday_of(self.today()),
                    monday_of(self.today()) + Duration::days(6),
                )
                .await?;
            for l in &lessons {
                by_subject.entry(l.assignment.subject_name.clone()).or_default();
            }
            for (subject, list) in by_subject {
                let weighted: Vec<WeightedMark> = list
                    .iter()
                    .map(|m| WeightedMark { value: m.value, weight: m.weight })
                    .collect();
                let explanation = AverageExplanation::explain(&weighted, rule);
                let period_mark = list.first().and_then(|first| {
                    finals
                        .iter()
                        .find(|f| {
                            f.assignment_id == first.assignment_id
                                && f.kind == "period"
                                && f.period_id == Some(p.period.id)
                        })
                        .map(|f| f.value.display())
                });
                let wanted = target.or_else(|| {
                    explanation.suggested.filter(|s| *s < 5).map(|s| s + 1).or(
                        if explanation.suggested.is_none() && explanation.average.is_some() {
                            Some(5)
                        } else {
                            None
                        },
                    )
                });
                let plan = match wanted {
                    Some(t) if explanation.average.is_some() => {
                        plan_options(&weighted, rule, t, 5, &weights, 20)
                            .into_iter()
                            .map(|s| plan_line(&s, &work_types))
                            .collect()
                    }
                    _ => Vec::new(),
                };
                subjects.push(SubjectMarks {
                    subject,
                    marks: list.iter().map(|m| mark_view(m, &work_types)).collect(),
                    average: explanation.average.map(format_average),
                    suggested: explanation.suggested,
                    explanation,
                    period_mark,
                    target: wanted,
                    plan,
                });
            }
        }
        Ok(DiaryMarks {
            student: access.card(),
            periods: periods.iter().map(period_view).collect(),
            period: chosen.map(period_view),
            rule: rule.describe(),
            subjects,
        })
    }

    /// What is new since the viewer's last visit to this student's feed (the last week on the
    /// first visit); then remembers this visit.
    pub async fn diary_feed(
        &self,
        viewer: PersonId,
        access: &DiaryAccess,
        base: &NewAudit,
    ) -> Result<DiaryFeed, AppError> {
        let now = self.now_micros();
        let visit = self.store.find_diary_visit(viewer, access.student.id).await?;
        let since = visit.as_ref().map(|v| v.at);
        let threshold = since.unwrap_or(now - 7 * 24 * 3600 * 1_000_000);
        let offset = self.offset();
        let day_of = |micros: i64| {
            chrono::DateTime::from_timestamp_micros(micros)
                .map(|t| t.with_timezone(&offset).date_naive())
        };
        let since_date = day_of(threshold).unwrap_or_else(|| self.today());
        self.audit_view(access, base, "diary.feed.view", serde_json::json!({})).await?;
        let today = self.today();
        let to = access.cap(today);
        let work_types = self.school_work_types(access).await?;
        let (mut marks, mut homework) = (Vec::new(), Vec::new());
        // Marks are new by when they were entered, whatever the lesson's date.
        let year_start = self
            .store
            .list_academic_years(access.school.id)
            .await?
            .into_iter()
            .find(|y| y.id == access.class.academic_year_id)
            .map_or(since_date, |y| y.starts_on);
        if year_start <= to {
            for m in
                self.store.list_student_subject_marks(access.student.id, year_start, to).await?
            {
                if m.created_at > threshold {
                    marks.push(FeedMark {
                        subject: m.subject_name.clone(),
                        mark: mark_view(&m, &work_types),
                    });
                }
            }
        }
        // Lessons carry no entry time: homework of lessons held since the last visit's day,
        // less those of that day already there at the last visit.
        let seen: HashSet<LessonId> =
            visit.map(|v| v.seen_lessons.into_iter().collect()).unwrap_or_default();
        let mut seen_today = Vec::new();
        if since_date <= to {
            for l in self
                .store
                .list_student_lessons(access.student.id, access.class.id, since_date, to)
                .await?
            {
                let Some(h) = l.homework.filter(|h| !h.trim().is_empty()) else { continue };
                let Some(id) = l.lesson_id else { continue };
                if l.date == today {
                    seen_today.push(id);
                }
                if seen.contains(&id) && l.date == since_date {
                    continue;
                }
                homework.push(FeedHomework {
                    date: l.date,
                    subject: l.assignment.subject_name,
                    homework: h,
                });
            }
        }
        let announcements = self
            .class_announcements(access, 20)
            .await?
            .iter()
            // A held send reaches the recipients when the admin releases it.
            .filter(|a| a.reviewed_at.unwrap_or(a.created_at) > threshold)
            .map(Into::into)
            .collect();
        self.store
            .record_diary_visit(
                viewer,
                access.student.id,
                &DiaryVisit { at: now, seen_lessons: seen_today },
            )
            .await?;
        Ok(DiaryFeed { student: access.card(), since, marks, homework, announcements })
    }

    async fn summary_class(
        &self,
        actor: &Actor,
        class: ClassId,
        action: Action,
    ) -> Result<(ClassRow, SchoolRow), AppError> {
        let class = match self.store.get_class(class).await {
            Ok(c) => c,
            Err(zhurnal_store::StoreError::NotFound(_)) => {
                return Err(AppError::Denied(zhurnal_domain::Denied {
                    action,
                    action_title: action.title(),
                    reason: "этот класс не относится к вам",
                }));
            }
            Err(e) => return Err(e.into()),
        };
        let school = self.store.get_school(class.school_id).await?;
        authorize(actor, action, &Resource::Class { place: school.place(), class: class.id })?;
        Ok((class, school))
    }

    /// Сводка: per student the weighted average of every subject in the current period, the
    /// count of 2s and absences by kind. Audited.
    pub async fn class_summary(
        &self,
        actor: &Actor,
        class: ClassId,
        base: &NewAudit,
    ) -> Result<ClassSummary, AppError> {
        let (class, school) = self.summary_class(actor, class, Action::ViewClassSummary).await?;
        let periods = self.class_periods(&class).await?;
        let period = self.current_period(&periods);
        let today = self.today();
        let (from, to) = period.map_or((today - Duration::days(30), today), |p| {
            (p.period.starts_on, p.period.ends_on.min(today))
        });
        let e = event(base, self.now_micros(), "class_summary.view")
            .target("class", class.id)
            .school(school.id.0)
            .details(serde_json::json!({ "from": from.to_string(), "to": to.to_string() }));
        self.audit_read(e).await?;
        let roster = self.store.list_roster(class.id, today).await?;
        let marks = self.store.list_class_marks(class.id, from, to).await?;
        let attendance = self.store.list_class_attendance(class.id, from, to).await?;
        let mut subjects: Vec<String> = marks.iter().map(|m| m.subject_name.clone()).collect();
        subjects.sort();
        subjects.dedup();
        let rows = roster
            .iter()
            .map(|e| {
                let own: Vec<&SubjectMarkRow> =
                    marks.iter().filter(|m| m.student_id == e.person.id).collect();
                let averages = subjects
                    .iter()
                    .map(|s| {
                        let w: Vec<WeightedMark> = own
                            .iter()
                            .filter(|m| &m.subject_name == s)
                            .map(|m| WeightedMark { value: m.value, weight: m.weight })
                            .collect();
                        zhurnal_domain::weighted_average(&w).map(format_average)
                    })
                    .collect();
                let mut absences = AbsenceCounts::default();
                for a in attendance.iter().filter(|a| a.student_id == e.person.id) {
                    match a.kind {
                        AttendanceKind::Absent => absences.absent += 1,
                        AttendanceKind::Ill => absences.ill += 1,
                        AttendanceKind::ValidReason => absences.valid_reason += 1,
                        AttendanceKind::Late => absences.late += 1,
                    }
                }
                SummaryRow {
                    student: e.person.full_name(),
                    student_id: e.person.uid.clone(),
                    averages,
                    twos: own.iter().filter(|m| m.value == MarkValue::Points(2)).count(),
                    absences,
                }
            })
            .collect();
        Ok(ClassSummary {
            class: class.name(),
            school: school.short_name.clone(),
            period: period.map(period_view),
            from,
            to,
            subjects,
            rows,
        })
    }

    /// Parents' contacts of the class (Action::ViewContacts), audited as `contacts.view`.
    pub async fn class_contacts(
        &self,
        actor: &Actor,
        class: ClassId,
        base: &NewAudit,
    ) -> Result<Vec<ContactRow>, AppError> {
        let (class, school) = self.summary_class(actor, class, Action::ViewContacts).await?;
        let today = self.today();
        let roster = self.store.list_roster(class.id, today).await?;
        let guardians = self.store.list_class_guardians(class.id, today).await?;
        let e = event(base, self.now_micros(), "contacts.view")
            .target("class", class.id)
            .school(school.id.0)
            .details(serde_json::json!({ "parents": guardians.len() }));
        self.audit_read(e).await?;
        let mut seen = HashSet::new();
        let mut rows = Vec::new();
        for e in &roster {
            for g in guardians.iter().filter(|g| g.child_id == e.person.id) {
                if seen.insert((e.person.id, g.parent.id)) {
                    rows.push(ContactRow {
                        student: e.person.full_name(),
                        parent: g.parent.full_name(),
                        phone: g.parent.phone.clone(),
                        email: g.parent.email.clone(),
                    });
                }
            }
        }
        Ok(rows)
    }
}

fn plan_line(s: &TargetStep, work_types: &[WorkTypeRow]) -> PlanLine {
    let names: Vec<String> =
        work_types.iter().filter(|w| w.weight == s.weight).map(|w| w.name.to_lowercase()).collect();
    PlanLine {
        count: s.count,
        value: s.value,
        weight: s.weight,
        work_types: names.join(", "),
        resulting_average: s.resulting_average,
        text: s.describe(),
    }
}
