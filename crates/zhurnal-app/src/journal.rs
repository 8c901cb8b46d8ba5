//! The class journal's use cases: reading the grid of an assignment for a period and every
//! write to it. Each function authorizes with the domain policy first, checks the journal's
//! rules (closed periods, future lessons, substitutes, reasons), then calls one store write
//! that commits the change with its audit record.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use zhurnal_domain::journal::{self, EntryKind};
use zhurnal_domain::period::suggest_annual;
use zhurnal_domain::policy::Resource;
use zhurnal_domain::{
    Action, Actor, AssignmentId, AttendanceKind, AverageExplanation, Grading, LessonId, MarkId,
    MarkValue, Period, PeriodId, PeriodMarkValue, PersonId, Role, RoleScope, WeightedMark,
    WorkTypeId, authorize,
};
use zhurnal_store::journal::*;
use zhurnal_store::{
    AttendanceRow, MarkRow, NewAudit, RosterEntry, ScheduledLesson, SchoolRow, WorkTypeRow,
};

use crate::login::AuditContext;
use crate::{App, AppError};

/// Who acts, as the use cases need it: the policy's actor and what goes to the audit log.
pub struct Caller<'a> {
    pub actor: &'a Actor,
    pub audit: AuditContext,
    pub role: &'static str,
}

impl Caller<'_> {
    fn event(&self, app: &App, action: &str) -> NewAudit {
        self.audit.event(app.now_micros(), action, "ok").actor(self.actor.person.0, self.role)
    }
}

/// The longest topic and homework text kept.
pub const MAX_TOPIC_CHARS: usize = 500;
pub const MAX_HOMEWORK_CHARS: usize = 4000;
pub const MAX_COMMENT_CHARS: usize = 300;

fn invalid(e: impl std::fmt::Display) -> AppError {
    AppError::Invalid(e.to_string())
}

fn not_on_roster(ctx: &JournalContext, date: NaiveDate, student_uid: &str) -> AppError {
    invalid(format!(
        "ученик «{student_uid}» не числится в {} на {}: обновите страницу журнала",
        ctx.assignment.assignment.class_name,
        date.format("%d.%m.%Y")
    ))
}

/// An assignment with where it sits, after the policy allowed `action` on it.
pub struct JournalContext {
    pub assignment: JournalAssignment,
    pub school: SchoolRow,
    /// The periods of the class's scheme, in order.
    pub periods: Vec<Period>,
    pub work_types: Vec<WorkTypeRow>,
}

impl JournalContext {
    pub fn resource(&self) -> Resource {
        Resource::Assignment {
            place: self.school.place(),
            class: self.assignment.assignment.class_id,
            assignment: self.assignment.assignment.id,
        }
    }
    pub fn id(&self) -> AssignmentId {
        self.assignment.assignment.id
    }
    fn target(&self) -> String {
        self.id().to_string()
    }
}

/// One cell of the grid: a student's marks and attendance on one lesson, with its history.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cell {
    pub marks: Vec<MarkRow>,
    pub attendance: Option<AttendanceKind>,
    pub history: Vec<MarkHistoryRow>,
}

#[derive(Clone, Debug, Serialize)]
pub struct StudentLine {
    pub student: RosterEntry,
    /// Cells in the order of [`JournalView::lessons`].
    pub cells: Vec<Cell>,
    pub average: AverageExplanation,
    pub period_mark: Option<String>,
    pub annual_mark: Option<String>,
    pub final_mark: Option<String>,
    /// Suggested annual mark from the period marks set so far.
    pub suggested_annual: Option<u8>,
}

/// The class journal of one assignment for one period.
pub struct JournalView {
    pub ctx: JournalContext,
    pub period: Period,
    pub lessons: Vec<ScheduledLesson>,
    pub attachments: Vec<AttachmentRow>,
    pub students: Vec<StudentLine>,
    /// The caller may enter marks, attendance, topics (and the period is open).
    pub can_edit: bool,
    /// The caller may set period/annual/final marks.
    pub can_set_period_marks: bool,
    /// The caller may reopen (or close) the period: a school admin.
    pub can_reopen: bool,
    pub rule: String,
}

impl App {
    /// Loads an assignment and authorizes `action` on it. An unknown assignment and a foreign
    /// one answer the same (existence is not disclosed).
    pub async fn journal_context(
        &self,
        actor: &Actor,
        assignment: AssignmentId,
        action: Action,
    ) -> Result<JournalContext, AppError> {
        // One statement for the assignment, its school, its year's periods and the work types.
        let rows = match self.store.get_journal_context(assignment).await {
            Ok(rows) => rows,
            Err(zhurnal_store::StoreError::NotFound(_)) => {
                return Err(AppError::Denied(zhurnal_domain::Denied {
                    action,
                    action_title: action.title(),
                    reason: "журнал не найден или не относится к вашим классам",
                }));
            }
            Err(e) => return Err(e.into()),
        };
        let (a, school, work_types) = (rows.assignment, rows.school, rows.work_types);
        let periods: Vec<Period> = rows
            .periods
            .into_iter()
            .map(|p| p.period)
            .filter(|p| p.scheme == a.period_scheme)
            .collect();
        let ctx = JournalContext { assignment: a, school, periods, work_types };
        authorize(actor, action, &ctx.resource())?;
        Ok(ctx)
    }

    /// The period containing `date`, or the nearest one before it, or the first.
    pub fn period_for(periods: &[Period], date: NaiveDate) -> Option<&Period> {
        Period::for_date(periods, date)
            .ok()
            .or_else(|| periods.iter().rev().find(|p| p.ends_on < date))
            .or_else(|| periods.first())
    }

    pub async fn journal_view(
        &self,
        caller: &Caller<'_>,
        assignment: AssignmentId,
        period: Option<PeriodId>,
    ) -> Result<JournalView, AppError> {
        let ctx = self.journal_context(caller.actor, assignment, Action::ViewJournal).await?;
        let today = self.today();
        let period = match period {
            Some(id) => ctx.periods.iter().find(|p| p.id == id).ok_or_else(|| {
                invalid(format!(
                    "период {id} не относится к этому журналу: выберите период из списка"
                ))
            })?,
            None => Self::period_for(&ctx.periods, today)
                .ok_or_else(|| invalid("для класса не заданы учебные периоды"))?,
        }
        .clone();
        let resource = ctx.resource();
        let editable_period = period.closed_on.is_none();
        let can_edit =
            editable_period && authorize(caller.actor, Action::EditJournal, &resource).is_ok();
        let can_set_period_marks =
            editable_period && authorize(caller.actor, Action::SetPeriodMarks, &resource).is_ok();
        let can_reopen =
            authorize(caller.actor, Action::ReopenPeriod, &Resource::School(ctx.school.place()))
                .is_ok();
        let (from, to) = (period.starts_on, period.ends_on);
        let id = ctx.id();
        let store = &self.store;
        let audit = caller
            .event(self, "journal.view")
            .target("assignment", ctx.target())
            .school(ctx.school.id.0)
            .details(serde_json::json!({ "period": period.id.0 }));
        let reads = async {
            let lessons = store.list_assignment_lessons(id, from, to).await?;
            let roster_day = today.clamp(from, to);
            let roster = store.list_journal_students(id, roster_day).await?;
            let AssignmentMarks { marks, history } =
                store.list_assignment_marks(id, from, to).await?;
            let attendance = store.list_assignment_attendance(id, from, to).await?;
            let attachments = store.list_assignment_attachments(id, from, to).await?;
            let finals = store.list_assignment_final_marks(id).await?;
            Ok::<_, zhurnal_store::StoreError>((
                lessons,
                roster,
                marks,
                attendance,
                history,
                attachments,
                finals,
            ))
        };
        // The audit record commits (group commit, see `audit_appender`) while the journal is
        // read; nothing is returned unless both succeeded.
        let (_, (lessons, roster, marks, attendance, history, attachments, finals)) =
            tokio::try_join!(self.audit_read(audit), reads)?;
        let rule = self.rules.rounding;
        let cells = cells_by_lesson_and_student(marks, attendance, history);
        let students = roster
            .into_iter()
            .map(|student| {
                let sid = student.person.id;
                let cells: Vec<Cell> = lessons
                    .iter()
                    .map(|l| {
                        l.lesson_id
                            .and_then(|lesson| cells.get(&(lesson, sid)).cloned())
                            .unwrap_or_default()
                    })
                    .collect();
                let weighted: Vec<WeightedMark> = cells
                    .iter()
                    .flat_map(|c| &c.marks)
                    .map(|m| WeightedMark { value: m.value, weight: m.weight })
                    .collect();
                let final_of = |kind: FinalMarkKind| {
                    finals
                        .iter()
                        .find(|f| f.student_id == sid && f.kind == kind)
                        .map(|f| f.value.clone())
                };
                let period_points: Vec<u8> = ctx
                    .periods
                    .iter()
                    .filter_map(|p| final_of(FinalMarkKind::Period(p.id)))
                    .filter_map(|v| PeriodMarkValue::parse(&v).ok().and_then(|v| v.points()))
                    .collect();
                StudentLine {
                    cells,
                    average: AverageExplanation::explain(&weighted, &rule),
                    period_mark: final_of(FinalMarkKind::Period(period.id)),
                    annual_mark: final_of(FinalMarkKind::Annual),
                    final_mark: final_of(FinalMarkKind::Final),
                    suggested_annual: suggest_annual(&period_points),
                    student,
                }
            })
            .collect();
        Ok(JournalView {
            period,
            lessons,
            attachments,
            students,
            can_edit,
            can_set_period_marks,
            can_reopen,
            rule: rule.describe(),
            ctx,
        })
    }

    /// Checks that the caller may write an entry of `kind` on the lesson and that the lesson
    /// exists in the timetable (or was held); returns the context.
    async fn editable_lesson(
        &self,
        caller: &Caller<'_>,
        key: LessonKey,
        kind: EntryKind,
    ) -> Result<JournalContext, AppError> {
        Ok(self.editable_entry(caller, key, kind, None).await?.0)
    }

    /// [`Self::editable_lesson`] for an entry about the student with public id `student_uid`:
    /// also their id, if they are on the roster on the lesson's date. The policy decides on the
    /// context first; the year, the lesson and the roster are then read in one statement (mark
    /// entry runs this on every request) and checked in that order.
    async fn editable_entry(
        &self,
        caller: &Caller<'_>,
        key: LessonKey,
        kind: EntryKind,
        student_uid: Option<&str>,
    ) -> Result<(JournalContext, Option<PersonId>), AppError> {
        let ctx = self.journal_context(caller.actor, key.assignment, Action::EditJournal).await?;
        let facts = self.store.check_journal_entry(key, student_uid).await?;
        // An archived year is the school's record: read-only for everyone.
        crate::admin::year_open(facts.year_archived_at)?;
        let substitute = ctx.assignment.assignment.teacher_id != caller.actor.person;
        journal::ensure_editable(&ctx.periods, key.date, self.today(), kind, substitute)
            .map_err(invalid)?;
        if !facts.lesson_exists {
            return Err(invalid(format!(
                "урока № {} {} нет в расписании этого класса по предмету: проверьте дату и номер урока",
                key.lesson_number,
                key.date.format("%d.%m.%Y")
            )));
        }
        Ok((ctx, facts.student))
    }

    /// The lesson of `key` for an entry about the student `student_uid`, who must be on the
    /// roster that day: the context and the student's id.
    async fn editable_student_entry(
        &self,
        caller: &Caller<'_>,
        key: LessonKey,
        student_uid: &str,
    ) -> Result<(JournalContext, PersonId), AppError> {
        let (ctx, student) = self
            .editable_entry(caller, key, EntryKind::MarkOrAttendance, Some(student_uid))
            .await?;
        let student = student.ok_or_else(|| not_on_roster(&ctx, key.date, student_uid))?;
        Ok((ctx, student))
    }

    async fn journal_student(
        &self,
        ctx: &JournalContext,
        date: NaiveDate,
        student_uid: &str,
    ) -> Result<PersonId, AppError> {
        self.store
            .list_journal_students(ctx.id(), date)
            .await?
            .into_iter()
            .find(|s| s.person.uid == student_uid)
            .map(|s| s.person.id)
            .ok_or_else(|| not_on_roster(ctx, date, student_uid))
    }

    fn parse_mark(
        ctx: &JournalContext,
        value: &str,
        work_type: WorkTypeId,
        comment: Option<String>,
    ) -> Result<(MarkValue, u8, Option<String>), AppError> {
        let v = MarkValue::parse_for(value, ctx.assignment.grading, ctx.assignment.grade)
            .map_err(invalid)?;
        let wt =
            ctx.work_types.iter().find(|w| w.id == work_type).ok_or_else(|| {
                invalid("вид работы не найден: выберите вид работы из списка школы")
            })?;
        let comment = comment.map(|c| c.trim().to_string()).filter(|c| !c.is_empty());
        if let Some(c) = &comment
            && c.chars().count() > MAX_COMMENT_CHARS
        {
            return Err(invalid(format!(
                "комментарий к отметке слишком длинный: не более {MAX_COMMENT_CHARS} символов"
            )));
        }
        Ok((v, wt.weight, comment))
    }

    pub async fn journal_create_mark(
        &self,
        caller: &Caller<'_>,
        entry: &MarkEntry,
    ) -> Result<MarkRow, AppError> {
        let key = entry.lesson;
        let work_type = entry.work_type;
        let (ctx, student) = self.editable_student_entry(caller, key, &entry.student).await?;
        let (value, weight, comment) =
            Self::parse_mark(&ctx, &entry.value, work_type, entry.comment.clone())?;
        let external_id = entry.client_key.as_deref().map(|k| client_key(caller, k)).transpose()?;
        let audit = caller
            .event(self, "mark.create")
            .target("mark", "new")
            .school(ctx.school.id.0)
            .details(serde_json::json!({
                "assignment": ctx.id().0, "date": key.date, "lesson_number": key.lesson_number,
                "student": student.0, "new": value.code(), "work_type": work_type.0,
            }));
        let mark = NewMark {
            external_id,
            lesson: key,
            student,
            value,
            work_type,
            weight,
            comment,
            author: caller.actor.person,
            at: self.now_micros(),
        };
        // Group-committed with the marks of concurrent requests (`mark_writer`): the row comes
        // back only once the mark and its audit record are committed.
        let row = self.mark_writer.create(mark, audit).await?;
        // A reused key names the mark it created; anything else is a client error.
        if row.student_id != student || row.value != value {
            return Err(invalid(
                "ключ повтора (Idempotency-Key) уже использован для другой отметки: создайте новый",
            ));
        }
        Ok(row)
    }

    async fn editable_mark(
        &self,
        caller: &Caller<'_>,
        id: MarkId,
    ) -> Result<(JournalContext, JournalMark), AppError> {
        let deny = || {
            AppError::Denied(zhurnal_domain::Denied {
                action: Action::EditJournal,
                action_title: Action::EditJournal.title(),
                reason: "отметка не найдена или не относится к вашим журналам",
            })
        };
        let mark = match self.store.get_journal_mark(id).await {
            Ok(m) => m,
            Err(zhurnal_store::StoreError::NotFound(_)) => return Err(deny()),
            Err(e) => return Err(e.into()),
        };
        let key = LessonKey {
            assignment: mark.assignment_id,
            date: mark.date,
            lesson_number: mark.lesson_number,
        };
        let ctx = self.editable_lesson(caller, key, EntryKind::MarkOrAttendance).await?;
        Ok((ctx, mark))
    }

    pub async fn journal_update_mark(
        &self,
        caller: &Caller<'_>,
        id: MarkId,
        value: &str,
        work_type: WorkTypeId,
        comment: Option<String>,
        reason: Option<&str>,
    ) -> Result<MarkRow, AppError> {
        let (ctx, old) = self.editable_mark(caller, id).await?;
        let reason = journal::correction_reason(reason).map_err(invalid)?;
        let (value, weight, comment) = Self::parse_mark(&ctx, value, work_type, comment)?;
        let audit = caller
            .event(self, "mark.update")
            .target("mark", id)
            .school(ctx.school.id.0)
            .reason(reason.clone())
            .details(serde_json::json!({
                "assignment": ctx.id().0, "date": old.date, "student": old.mark.student_id.0,
                "old": old.mark.value.code(), "new": value.code(),
                "old_work_type": old.mark.work_type_id.0, "new_work_type": work_type.0,
            }));
        let change = MarkChange {
            id,
            value,
            work_type,
            weight,
            comment,
            by: caller.actor.person,
            at: self.now_micros(),
            reason,
        };
        Ok(self.store.update_mark(&change, audit).await?)
    }

    pub async fn journal_delete_mark(
        &self,
        caller: &Caller<'_>,
        id: MarkId,
        reason: Option<&str>,
    ) -> Result<(), AppError> {
        let (ctx, old) = self.editable_mark(caller, id).await?;
        let reason = journal::correction_reason(reason).map_err(invalid)?;
        let audit = caller
            .event(self, "mark.delete")
            .target("mark", id)
            .school(ctx.school.id.0)
            .reason(reason.clone())
            .details(serde_json::json!({
                "assignment": ctx.id().0, "date": old.date, "student": old.mark.student_id.0,
                "old": old.mark.value.code(),
            }));
        Ok(self
            .store
            .delete_mark(id, caller.actor.person, self.now_micros(), &reason, audit)
            .await?)
    }

    pub async fn journal_set_attendance(
        &self,
        caller: &Caller<'_>,
        key: LessonKey,
        student_uid: &str,
        kind: Option<AttendanceKind>,
    ) -> Result<Option<AttendanceKind>, AppError> {
        let (ctx, student) = self.editable_student_entry(caller, key, student_uid).await?;
        let action = if kind.is_some() { "attendance.set" } else { "attendance.clear" };
        let audit = caller
            .event(self, action)
            .target("attendance", ctx.target())
            .school(ctx.school.id.0)
            .details(serde_json::json!({
                "assignment": ctx.id().0, "date": key.date, "lesson_number": key.lesson_number,
                "student": student.0,
            }));
        Ok(self
            .store
            .set_attendance(key, student, kind, caller.actor.person, self.now_micros(), audit)
            .await?)
    }

    pub async fn journal_update_lesson(
        &self,
        caller: &Caller<'_>,
        key: LessonKey,
        topic: Option<String>,
        homework: Option<String>,
    ) -> Result<zhurnal_store::LessonRow, AppError> {
        let ctx = self.editable_lesson(caller, key, EntryKind::TopicOrHomework).await?;
        let clean = |s: Option<String>| s.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
        let (topic, homework) = (clean(topic), clean(homework));
        if topic.as_ref().is_some_and(|t| t.chars().count() > MAX_TOPIC_CHARS) {
            return Err(invalid(format!(
                "тема урока слишком длинная: не более {MAX_TOPIC_CHARS} символов"
            )));
        }
        if homework.as_ref().is_some_and(|t| t.chars().count() > MAX_HOMEWORK_CHARS) {
            return Err(invalid(format!(
                "домашнее задание слишком длинное: не более {MAX_HOMEWORK_CHARS} символов; большие задания прикрепите файлом"
            )));
        }
        let audit = caller
            .event(self, "lesson.update")
            .target("assignment", ctx.target())
            .school(ctx.school.id.0)
            .details(serde_json::json!({
                "date": key.date, "lesson_number": key.lesson_number,
                "topic": topic.is_some(), "homework": homework.is_some(),
            }));
        Ok(self.store.update_lesson(key, topic, homework, audit).await?)
    }

    /// Attaches a homework file; a retried upload with the same `client_key` stores it once.
    pub async fn journal_upload(
        &self,
        caller: &Caller<'_>,
        key: LessonKey,
        file_name: &str,
        content: Vec<u8>,
        client: Option<&str>,
    ) -> Result<AttachmentRow, AppError> {
        let ctx = self.editable_lesson(caller, key, EntryKind::TopicOrHomework).await?;
        let checked = journal::check_homework_file(file_name, &content).map_err(invalid)?;
        let sha256 = hex::encode(Sha256::digest(&content));
        let uid = match client {
            // Derived, so the key itself never becomes a public download link.
            Some(k) => hex::encode(&Sha256::digest(client_key(caller, k)?.as_bytes())[..16]),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let audit = caller
            .event(self, "attachment.upload")
            .target("attachment", &uid)
            .school(ctx.school.id.0)
            .details(serde_json::json!({
                "assignment": ctx.id().0, "date": key.date, "lesson_number": key.lesson_number,
                "size": content.len(), "content_type": checked.content_type, "sha256": sha256,
            }));
        let file = NewAttachment {
            uid,
            file_name: checked.name,
            content_type: checked.content_type.to_string(),
            sha256,
            content,
            by: caller.actor.person,
            at: self.now_micros(),
        };
        Ok(self.store.add_attachment(key, &file, audit).await?)
    }

    /// A homework file for the teacher of the assignment, the class's students and their
    /// parents, the class teacher and the school admin.
    pub async fn journal_download(
        &self,
        caller: &Caller<'_>,
        uid: &str,
    ) -> Result<(AttachmentRow, Vec<u8>), AppError> {
        let deny = || {
            AppError::Denied(zhurnal_domain::Denied {
                action: Action::ViewHomework,
                action_title: Action::ViewHomework.title(),
                reason: "файл не найден или не относится к вашим классам",
            })
        };
        let (row, assignment, content) = self.store.find_attachment(uid).await?.ok_or_else(deny)?;
        let a = self.store.get_journal_assignment(assignment).await?;
        let school = self.store.get_school(a.school_id).await?;
        let place = school.place();
        let class = a.assignment.class_id;
        let direct = authorize(
            caller.actor,
            Action::ViewHomework,
            &Resource::Assignment { place, class, assignment },
        );
        if direct.is_err() {
            // A parent reads through a child who studies in this assignment's class now.
            let mut through_child = false;
            for c in &caller.actor.children {
                let enrolled = self
                    .store
                    .list_journal_students(assignment, self.today())
                    .await?
                    .iter()
                    .any(|s| s.person.id == c.child);
                if enrolled
                    && authorize(
                        caller.actor,
                        Action::ViewHomework,
                        &Resource::Student { place, class, student: c.child },
                    )
                    .is_ok()
                {
                    through_child = true;
                    break;
                }
            }
            if !through_child {
                return Err(deny());
            }
        }
        Ok((row, content))
    }

    /// Sets or removes a period, annual or final mark.
    pub async fn journal_set_final_mark(
        &self,
        caller: &Caller<'_>,
        assignment: AssignmentId,
        student_uid: &str,
        kind: FinalMarkKind,
        value: Option<&str>,
    ) -> Result<Option<String>, AppError> {
        let ctx = self.journal_context(caller.actor, assignment, Action::SetPeriodMarks).await?;
        self.ensure_year_open(ctx.assignment.academic_year_id).await?;
        let on = match kind {
            FinalMarkKind::Period(id) => {
                let p =
                    ctx.periods.iter().find(|p| p.id == id).ok_or_else(|| {
                        invalid(format!("период {id} не относится к этому журналу"))
                    })?;
                p.ensure_open().map_err(invalid)?;
                self.today().clamp(p.starts_on, p.ends_on)
            }
            FinalMarkKind::Annual | FinalMarkKind::Final => {
                if kind == FinalMarkKind::Final && !matches!(ctx.assignment.grade, 9 | 11) {
                    return Err(invalid(
                        "итоговая отметка ставится только в 9 и 11 классах; в остальных классах ставится годовая",
                    ));
                }
                self.today()
            }
        };
        let student = self.journal_student(&ctx, on, student_uid).await?;
        let value = match value.map(str::trim).filter(|v| !v.is_empty()) {
            None => None,
            Some(v) => {
                let parsed = PeriodMarkValue::parse(v).map_err(invalid)?;
                let fits = !matches!(
                    (ctx.assignment.grading, parsed),
                    (Grading::FivePoint, PeriodMarkValue::Pass | PeriodMarkValue::Fail)
                        | (Grading::PassFail, PeriodMarkValue::Points(_))
                );
                if !fits {
                    return Err(invalid(format!(
                        "отметка «{v}» не подходит для этого предмета: используйте {}",
                        match ctx.assignment.grading {
                            Grading::FivePoint => "1–5, «осв» или «н/а»",
                            Grading::PassFail => "«зач», «незач», «осв» или «н/а»",
                        }
                    )));
                }
                Some(parsed.code())
            }
        };
        let audit = caller
            .event(self, "final_mark.set")
            .target("assignment", ctx.target())
            .school(ctx.school.id.0)
            .details(serde_json::json!({
                "student": student.0, "kind": kind.code(), "period": kind.period().map(|p| p.0),
            }));
        let w = FinalMarkWrite {
            student,
            assignment,
            kind,
            value,
            author: caller.actor.person,
            at: self.now_micros(),
        };
        Ok(self.store.set_final_mark(&w, audit).await?)
    }

    /// Reopens (`open`) or closes a period of a school: a school admin's audited act.
    pub async fn set_period_open(
        &self,
        caller: &Caller<'_>,
        period: PeriodId,
        open: bool,
        reason: Option<&str>,
    ) -> Result<Period, AppError> {
        let reason = reason.map(str::trim).filter(|r| !r.is_empty()).ok_or_else(|| {
            invalid(
                "укажите причину открытия или закрытия периода: она записывается в журнал событий",
            )
        })?;
        for (role, scope) in &caller.actor.grants {
            let (Role::SchoolAdmin, RoleScope::School(s)) = (role, scope) else { continue };
            let school = self.store.get_school(*s).await?;
            for year in self.store.list_academic_years(school.id).await? {
                let Some(p) = self
                    .store
                    .list_periods(year.id)
                    .await?
                    .into_iter()
                    .map(|p| p.period)
                    .find(|p| p.id == period)
                else {
                    continue;
                };
                authorize(caller.actor, Action::ReopenPeriod, &Resource::School(school.place()))?;
                let closed_on = if open { None } else { Some(self.today()) };
                let audit = caller
                    .event(self, if open { "period.reopen" } else { "period.close" })
                    .target("period", period)
                    .school(school.id.0)
                    .reason(reason.to_string())
                    .details(serde_json::json!({ "name": p.name(), "old_closed_on": p.closed_on }));
                self.store.set_period_closed(period, closed_on, audit).await?;
                return Ok(Period { closed_on, ..p });
            }
        }
        Err(AppError::Denied(zhurnal_domain::Denied {
            action: Action::ReopenPeriod,
            action_title: Action::ReopenPeriod.title(),
            reason: "доступно только администратору этой школы",
        }))
    }
}

/// A mark to create, as the API receives it.
#[derive(Clone, Debug)]
pub struct MarkEntry {
    pub lesson: LessonKey,
    /// The student's public id.
    pub student: String,
    pub value: String,
    pub work_type: WorkTypeId,
    pub comment: Option<String>,
    /// The client's `Idempotency-Key`: a retried request creates nothing new.
    pub client_key: Option<String>,
}

/// The stored form of a client's idempotency key, scoped to the person so keys of different
/// users never meet.
fn client_key(caller: &Caller<'_>, key: &str) -> Result<String, AppError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !ok {
        return Err(invalid(
            "заголовок Idempotency-Key: от 1 до 64 латинских букв, цифр, «-» или «_»",
        ));
    }
    Ok(format!("client:{}:{key}", caller.actor.person))
}

/// The cells of a journal by lesson and student, built in one pass over the period's rows
/// (a quarter of a class holds ~1,000 cells and hundreds of marks: a scan of every row per
/// cell was quadratic). Rows keep their order within a cell; the first attendance row counts.
fn cells_by_lesson_and_student(
    marks: Vec<MarkRow>,
    attendance: Vec<AttendanceRow>,
    history: Vec<MarkHistoryRow>,
) -> HashMap<(LessonId, PersonId), Cell> {
    let mut cells: HashMap<(LessonId, PersonId), Cell> = HashMap::new();
    for m in marks {
        cells.entry((m.lesson_id, m.student_id)).or_default().marks.push(m);
    }
    for a in attendance {
        cells.entry((a.lesson_id, a.student_id)).or_default().attendance.get_or_insert(a.kind);
    }
    for h in history {
        cells.entry((h.lesson_id, h.student_id)).or_default().history.push(h);
    }
    cells
}
