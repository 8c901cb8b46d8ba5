//! Storage of the class journal (классный журнал): lessons, marks with their correction
//! history, attendance, homework files and period/annual/final marks. Every write takes the
//! audit record and commits it in the same transaction as the change.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhurnal_domain::{
    AcademicYearId, AssignmentId, AttendanceKind, ClassId, Grading, GroupId, LessonId, MarkId,
    MarkValue, PeriodId, PeriodScheme, PersonId, SchoolId, WorkTypeId,
};

use crate::{AssignmentRow, AttendanceRow, LessonRow, MarkRow, NewAudit, RosterEntry, StoreResult};

/// An assignment with everything the journal needs to place and check it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalAssignment {
    pub assignment: AssignmentRow,
    pub school_id: SchoolId,
    pub academic_year_id: AcademicYearId,
    pub group_id: Option<GroupId>,
    pub group_name: Option<String>,
    pub grade: u8,
    pub period_scheme: PeriodScheme,
    pub grading: Grading,
}

/// Identifies a lesson of an assignment by date and number; writes create the lesson row on
/// first use (a timetable slot becomes a held lesson when something is written for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonKey {
    pub assignment: AssignmentId,
    pub date: NaiveDate,
    pub lesson_number: u8,
}

/// An assignment with what the policy and the journal's rules need about it, as
/// [`JournalStore::get_journal_context`] reads it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalContextRows {
    pub assignment: JournalAssignment,
    pub school: crate::SchoolRow,
    /// Every period of the class's academic year (all schemes), by scheme and number.
    pub periods: Vec<crate::PeriodRow>,
    /// The school's work types, by weight and name.
    pub work_types: Vec<crate::WorkTypeRow>,
}

/// What a journal write checks after the policy allowed it, read in one statement (mark entry
/// runs it on every request): see [`JournalStore::check_journal_entry`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryFacts {
    /// When the academic year of the assignment's class was archived (Unix µs): archived years
    /// are read-only. `None` while it is open (and for an unknown assignment).
    pub year_archived_at: Option<i64>,
    /// The lesson exists: a timetable slot of the assignment on that weekday with that number,
    /// or a held lesson on that date with that number (an extra or moved lesson).
    pub lesson_exists: bool,
    /// The student asked for, when they are on the assignment's roster (the class, or the
    /// group's members) on the lesson's date; `None` otherwise or when none was asked for.
    pub student: Option<PersonId>,
}

/// A mark with the lesson it belongs to (for authorization and period checks).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalMark {
    pub mark: MarkRow,
    pub assignment_id: AssignmentId,
    pub date: NaiveDate,
    pub lesson_number: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMark {
    /// An idempotency key: a second create with the same key returns the first mark and
    /// writes nothing (a retried request whose response was lost).
    pub external_id: Option<String>,
    pub lesson: LessonKey,
    pub student: PersonId,
    pub value: MarkValue,
    pub work_type: WorkTypeId,
    pub weight: u8,
    pub comment: Option<String>,
    pub author: PersonId,
    pub at: i64,
}

/// A correction of a mark; `reason` goes to `mark_history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkChange {
    pub id: MarkId,
    pub value: MarkValue,
    pub work_type: WorkTypeId,
    pub weight: u8,
    pub comment: Option<String>,
    pub by: PersonId,
    pub at: i64,
    pub reason: String,
}

/// One line of a mark's history: old → new, who, when, why. A creation has no old value, a
/// deletion no new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkHistoryRow {
    pub mark_id: MarkId,
    pub lesson_id: LessonId,
    pub student_id: PersonId,
    pub changed_at: i64,
    pub changed_by: PersonId,
    pub changed_by_name: String,
    pub old_value: Option<MarkValue>,
    pub new_value: Option<MarkValue>,
    pub old_work_type_id: Option<WorkTypeId>,
    pub new_work_type_id: Option<WorkTypeId>,
    pub reason: Option<String>,
}

/// An assignment's marks over some days and their history: what the journal's cells show.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssignmentMarks {
    /// Live (not deleted) marks, by date, lesson number and id.
    pub marks: Vec<MarkRow>,
    /// Creations, corrections and deletions of the marks on those lessons, oldest first.
    pub history: Vec<MarkHistoryRow>,
}

/// A homework file's metadata (the content is read only on download).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRow {
    pub uid: String,
    pub lesson_id: LessonId,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub uploaded_by: PersonId,
    pub uploaded_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAttachment {
    pub uid: String,
    pub file_name: String,
    pub content_type: String,
    pub sha256: String,
    pub content: Vec<u8>,
    pub by: PersonId,
    pub at: i64,
}

/// Which итоговая отметка: for a period (четвертная/триместровая/полугодовая), the year
/// (годовая) or the final one (итоговая, grades 9 and 11).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "period_id")]
pub enum FinalMarkKind {
    Period(PeriodId),
    Annual,
    Final,
}

impl FinalMarkKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Period(_) => "period",
            Self::Annual => "annual",
            Self::Final => "final",
        }
    }
    pub fn period(self) -> Option<PeriodId> {
        match self {
            Self::Period(p) => Some(p),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalMarkRow {
    pub student_id: PersonId,
    pub assignment_id: AssignmentId,
    pub kind: FinalMarkKind,
    /// The code of a `PeriodMarkValue` ("5", "pass", "exempt", …).
    pub value: String,
    pub author_id: PersonId,
    pub set_at: i64,
}

/// Sets (`value: Some`) or removes (`None`) one period, annual or final mark.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalMarkWrite {
    pub student: PersonId,
    pub assignment: AssignmentId,
    pub kind: FinalMarkKind,
    pub value: Option<String>,
    pub author: PersonId,
    pub at: i64,
}

/// Storage of the class journal. See the module docs.
#[async_trait]
pub trait JournalStore: Send + Sync {
    async fn get_journal_assignment(&self, id: AssignmentId) -> StoreResult<JournalAssignment>;
    /// The assignment with its school, the periods of its year and the school's work types, in
    /// one statement (every journal request reads them before the policy decides): what
    /// `get_journal_assignment`, `get_school`, `list_periods` and `list_work_types` answer.
    /// [`crate::StoreError::NotFound`] for an unknown assignment.
    async fn get_journal_context(&self, id: AssignmentId) -> StoreResult<JournalContextRows>;
    /// The year, lesson and roster facts of a write on the lesson `key` (about the student with
    /// public id `student_uid` if given), in one statement: what `find_year_archived_at`,
    /// `list_assignment_lessons` for the day and `list_journal_students` answered in five.
    async fn check_journal_entry(
        &self,
        key: LessonKey,
        student_uid: Option<&str>,
    ) -> StoreResult<EntryFacts>;
    /// Students of the assignment (the class, or the group's members) enrolled on `on`.
    async fn list_journal_students(
        &self,
        assignment: AssignmentId,
        on: NaiveDate,
    ) -> StoreResult<Vec<RosterEntry>>;
    /// The assignment's lessons over the dates: timetable slots (with substitutions applied)
    /// and held lessons outside the timetable, by date and number.
    async fn list_assignment_lessons(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<crate::ScheduledLesson>>;
    /// A teacher's day including lessons given away to a substitute (`teacher_id` is then the
    /// substitute's, `substitution` is set).
    async fn list_teacher_day_all(
        &self,
        teacher: PersonId,
        date: NaiveDate,
    ) -> StoreResult<Vec<crate::ScheduledLesson>>;
    /// The live marks on the assignment's lessons in the dates, with the history of every
    /// mark on those lessons (deleted ones too), in one statement: the journal page shows both.
    async fn list_assignment_marks(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<AssignmentMarks>;
    async fn list_assignment_attendance(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttendanceRow>>;
    async fn get_lesson(&self, id: LessonId) -> StoreResult<LessonRow>;
    /// A live (not deleted) mark with its lesson.
    async fn get_journal_mark(&self, id: MarkId) -> StoreResult<JournalMark>;
    /// Creates the mark (and the lesson if needed) with a history line and the audit record;
    /// with an `external_id` already used, returns that mark and writes nothing.
    async fn create_mark(&self, mark: &NewMark, audit: NewAudit) -> StoreResult<MarkRow>;
    /// Group commit of mark entry (area `bench`, issue 6): creates every mark as
    /// [`JournalStore::create_mark`] would, in ONE transaction. A mark refused for a data
    /// reason (unknown student or lesson, a conflict) gets its error in its slot of the answer
    /// and its neighbours are still committed (the backends write the batch without savepoints
    /// first and, on a refusal, again with one per mark); each created mark's audit record is written in the same transaction, chained
    /// in the order of `marks`. The outer `Err` means nothing of the batch was stored (the
    /// database is unreachable, or the commit failed). The answer has one slot per mark, in
    /// order; an empty slice writes nothing.
    async fn create_marks(
        &self,
        marks: &[(NewMark, NewAudit)],
    ) -> StoreResult<Vec<StoreResult<MarkRow>>>;
    /// Corrects a mark, keeping old → new, who, when and why in `mark_history`.
    async fn update_mark(&self, change: &MarkChange, audit: NewAudit) -> StoreResult<MarkRow>;
    /// Deletes a mark (kept as deleted) with a history line.
    async fn delete_mark(
        &self,
        id: MarkId,
        by: PersonId,
        at: i64,
        reason: &str,
        audit: NewAudit,
    ) -> StoreResult<()>;
    /// Sets (`Some`) or clears (`None`) a student's attendance mark; returns the previous one.
    async fn set_attendance(
        &self,
        lesson: LessonKey,
        student: PersonId,
        kind: Option<AttendanceKind>,
        author: PersonId,
        at: i64,
        audit: NewAudit,
    ) -> StoreResult<Option<AttendanceKind>>;
    /// Sets the lesson's topic and homework (creating the lesson if needed).
    async fn update_lesson(
        &self,
        lesson: LessonKey,
        topic: Option<String>,
        homework: Option<String>,
        audit: NewAudit,
    ) -> StoreResult<LessonRow>;
    /// Stores a file; a `uid` already used returns the stored file and writes nothing.
    async fn add_attachment(
        &self,
        lesson: LessonKey,
        file: &NewAttachment,
        audit: NewAudit,
    ) -> StoreResult<AttachmentRow>;
    async fn list_assignment_attachments(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttachmentRow>>;
    /// The file with its content and the assignment of its lesson.
    async fn find_attachment(
        &self,
        uid: &str,
    ) -> StoreResult<Option<(AttachmentRow, AssignmentId, Vec<u8>)>>;
    async fn list_assignment_final_marks(
        &self,
        assignment: AssignmentId,
    ) -> StoreResult<Vec<FinalMarkRow>>;
    /// Sets (`Some`) or removes (`None`) a period, annual or final mark; returns the old value.
    async fn set_final_mark(
        &self,
        w: &FinalMarkWrite,
        audit: NewAudit,
    ) -> StoreResult<Option<String>>;
    /// Closes (`Some(date)`) or reopens (`None`) a period.
    async fn set_period_closed(
        &self,
        period: PeriodId,
        closed_on: Option<NaiveDate>,
        audit: NewAudit,
    ) -> StoreResult<()>;
    /// The class an assignment belongs to, for callers that only know the class.
    async fn list_class_assignments(&self, class: ClassId) -> StoreResult<Vec<AssignmentRow>>;
}
