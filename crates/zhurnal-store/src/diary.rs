//! Storage for the diary, the class teacher's summary and announcements (area `diary`,
//! migration `0003_diary.sql` in both backends).

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhurnal_domain::{
    AnnouncementStatus, AssignmentId, AttendanceKind, ClassId, LessonId, MarkValue, PeriodId,
    PeriodMarkValue, PersonId, SchoolId, SubjectId, WorkTypeId,
};

use crate::{
    AttendanceRow, ClassRow, NewAudit, PersonRow, ScheduledLesson, SchoolRow, StoreResult,
};

/// A student found by public id, with the school and class of the enrolment their diary shows:
/// the latest active one, else the latest (a child who left).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiaryStudent {
    pub person: PersonRow,
    /// `None` for a person never enrolled (a parent's or a teacher's id).
    pub placement: Option<(SchoolRow, ClassRow)>,
    /// The change stamps of the class shown, read in the same statement.
    pub stamp: WeekStamp,
}

/// Отметка изменений дневника: the change stamps a diary week of a class depends on
/// (migration `0011_diary_stamps.sql`). Triggers in the database bump them in the transaction
/// of every change a week shows, whoever writes: the class's stamp for its lessons, timetable,
/// substitutions, files, marks, absences, groups and announcements; the region's for names of
/// people, subjects and classes and for work types. A week built under a stamp is still what
/// the database would return for as long as the stamp reads the same. Both only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WeekStamp {
    pub class: i64,
    pub region: i64,
}

/// A homework file of a lesson, without its content (the download route reads that).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    pub uid: String,
    pub lesson_id: LessonId,
    pub file_name: String,
    pub content_type: String,
    pub size_bytes: i64,
}

/// A student's marks and attendance on the lessons of a class over some days: what the
/// diary's week shows besides the lessons.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WeekEntries {
    /// By date, lesson number and id.
    pub marks: Vec<SubjectMarkRow>,
    /// Пропуски и опоздания, by date and lesson number.
    pub attendance: Vec<AttendanceRow>,
    /// The class's assignments taught to a group the student is not in (чужая подгруппа),
    /// by id: their lessons are not the student's (see [`ClassWeek::lessons_of`]).
    pub other_groups: Vec<AssignmentId>,
}

/// Неделя класса: what the diary weeks of every student of a class share between two dates,
/// read once for the whole class (the diary keeps it and picks each student's lessons in
/// memory); each student's marks, absences and groups are read apart
/// ([`DiaryStore::list_student_week_entries`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassWeek {
    /// Every lesson of the class's assignments, those taught to its groups included, by date
    /// and lesson number (as [`crate::Store::list_student_lessons`] orders them).
    pub lessons: Vec<ScheduledLesson>,
    /// The files of those lessons, by date.
    pub files: Vec<AttachmentMeta>,
}

impl ClassWeek {
    /// A student's lessons, given the class's assignments taught to groups the student is not
    /// in ([`WeekEntries::other_groups`], sorted): what [`crate::Store::list_student_lessons`]
    /// returns for the class and dates.
    pub fn lessons_of<'a>(
        &'a self,
        other_groups: &'a [AssignmentId],
    ) -> impl Iterator<Item = &'a ScheduledLesson> {
        self.lessons.iter().filter(|l| other_groups.binary_search(&l.assignment.id).is_err())
    }
}

/// A mark with the subject and date it belongs to (diary by subject, class summary, feed).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectMarkRow {
    pub student_id: PersonId,
    pub assignment_id: AssignmentId,
    pub subject_id: SubjectId,
    pub subject_name: String,
    pub lesson_id: LessonId,
    pub date: NaiveDate,
    pub value: MarkValue,
    pub work_type_id: WorkTypeId,
    pub weight: u8,
    pub comment: Option<String>,
    pub created_at: i64,
}

/// An attendance mark with its student and date (class summary).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassAttendanceRow {
    pub student_id: PersonId,
    pub date: NaiveDate,
    pub kind: AttendanceKind,
}

/// Четвертная (period), годовая (annual) or итоговая (final) mark as set by the teacher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentFinalMark {
    pub student_id: PersonId,
    pub assignment_id: AssignmentId,
    /// `period`, `annual` or `final`.
    pub kind: String,
    pub period_id: Option<PeriodId>,
    pub value: PeriodMarkValue,
    pub set_at: i64,
}

/// A parent of a student of a class, with the contacts the class teacher may see.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianContact {
    pub child_id: PersonId,
    pub parent: PersonRow,
}

/// A viewer's last visit to a student's feed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiaryVisit {
    /// Unix µs.
    pub at: i64,
    /// Lessons of the visit's day whose homework was already there (shown or seen).
    pub seen_lessons: Vec<LessonId>,
}

/// An announcement to store. `uid` is the public id used in URLs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAnnouncement {
    pub uid: String,
    pub school_id: SchoolId,
    pub sender_id: PersonId,
    pub body: String,
    pub status: AnnouncementStatus,
    pub recipient_count: i64,
    pub created_at: i64,
    pub classes: Vec<ClassId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementRow {
    pub id: i64,
    pub uid: String,
    pub school_id: SchoolId,
    pub sender_id: PersonId,
    /// «Петров П. И.».
    pub sender_name: String,
    pub body: String,
    pub status: AnnouncementStatus,
    pub recipient_count: i64,
    pub created_at: i64,
    pub reviewed_by: Option<PersonId>,
    pub reviewed_at: Option<i64>,
    /// Recipient classes with their names («9А»), by name.
    pub classes: Vec<(ClassId, String)>,
}

/// The diary's storage. A supertrait of [`crate::Store`]; bring it into scope to call these
/// methods on `dyn Store`.
#[async_trait]
pub trait DiaryStore: Send + Sync {
    /// Everything the diary's access check reads about a student, in one statement (it runs
    /// on every diary request): the person by public id with the school and class of the
    /// enrolment shown (see [`DiaryStudent`]). `None` for an unknown id.
    async fn find_diary_student(&self, uid: &str) -> StoreResult<Option<DiaryStudent>>;
    /// Files attached to the lessons of a class's assignments held between the dates.
    async fn list_class_attachments(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttachmentMeta>>;
    /// What the diary weeks of the class's students share between the dates (see
    /// [`ClassWeek`]): the class's lessons, its groups' included, and their files. Two
    /// statements, each starting from the class's lessons of those days.
    async fn read_class_week(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<ClassWeek>;
    /// The student's marks and attendance on the held lessons of a class's week (read by
    /// [`DiaryStore::read_class_week`] for `class`), and the class's group assignments the
    /// student is not in, in one statement. It probes the student's rows of those lessons, so
    /// its cost does not grow with the marks of the year as a search by student would, and
    /// takes each mark's subject and date from the lessons.
    async fn list_student_week_entries(
        &self,
        student: PersonId,
        class: ClassId,
        week: &ClassWeek,
    ) -> StoreResult<WeekEntries>;
    /// A student's marks between the dates with subject and date, by date.
    async fn list_student_subject_marks(
        &self,
        student: PersonId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SubjectMarkRow>>;
    /// All marks of the class's assignments between the dates (class teacher's summary).
    async fn list_class_marks(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SubjectMarkRow>>;
    /// Attendance marks of the class's lessons between the dates.
    async fn list_class_attendance(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ClassAttendanceRow>>;
    /// Period, annual and final marks of a student.
    async fn list_student_final_marks(
        &self,
        student: PersonId,
    ) -> StoreResult<Vec<StudentFinalMark>>;
    /// Parents of the students enrolled in the class on `on`.
    async fn list_class_guardians(
        &self,
        class: ClassId,
        on: NaiveDate,
    ) -> StoreResult<Vec<GuardianContact>>;

    /// When `viewer` last opened the feed of `student`, and what they saw then.
    async fn find_diary_visit(
        &self,
        viewer: PersonId,
        student: PersonId,
    ) -> StoreResult<Option<DiaryVisit>>;
    /// Remembers this visit (replacing the previous one).
    async fn record_diary_visit(
        &self,
        viewer: PersonId,
        student: PersonId,
        visit: &DiaryVisit,
    ) -> StoreResult<()>;

    /// Stores an announcement with its audit record (send or hold) in one transaction.
    async fn insert_announcement(
        &self,
        a: &NewAnnouncement,
        audit: NewAudit,
    ) -> StoreResult<AnnouncementRow>;
    async fn get_announcement(&self, uid: &str) -> StoreResult<AnnouncementRow>;
    /// How many announcements the sender stored at or after `since` (any status).
    async fn count_announcements_since(&self, sender: PersonId, since: i64) -> StoreResult<i64>;
    /// Delivered announcements addressed to the class, newest first.
    async fn list_class_announcements(
        &self,
        class: ClassId,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementRow>>;
    /// Every announcement of the school (the admin's review list), newest first.
    async fn list_school_announcements(
        &self,
        school: SchoolId,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementRow>>;
    /// The sender's own announcements, newest first.
    async fn list_sender_announcements(
        &self,
        sender: PersonId,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementRow>>;
    /// Moves an announcement from `from` to `to` (release: held → delivered; recall:
    /// delivered/held → recalled) with its audit record; [`crate::StoreError::Conflict`] when
    /// it is no longer in `from`.
    async fn review_announcement(
        &self,
        id: i64,
        from: &[AnnouncementStatus],
        to: AnnouncementStatus,
        by: PersonId,
        at: i64,
        audit: NewAudit,
    ) -> StoreResult<()>;
}

/// «Петров П. И.» from the parts of a name (as [`PersonRow::short_name`]).
pub fn short_name(last: &str, first: &str, middle: Option<&str>) -> String {
    let initial = |s: &str| s.chars().next().map(|c| format!("{c}.")).unwrap_or_default();
    match middle {
        Some(m) if !m.is_empty() => format!("{last} {} {}", initial(first), initial(m)),
        _ => format!("{last} {}", initial(first)),
    }
}
