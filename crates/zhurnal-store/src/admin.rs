//! School administration and reports: the calendar, classes and groups, subjects, teaching
//! assignments, the timetable, student admission, transfer and departure, staff roles, the
//! year rollover, and the read models the reports aggregate. Every write takes its
//! [`NewAudit`] and commits it in the same transaction.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhurnal_domain::{
    AcademicYearId, AssignmentId, AttendanceKind, ClassId, Grading, GroupId, MarkValue,
    PeriodScheme, PersonId, RegionId, Role, SchoolId, SubjectId, TimetableSlotId,
};

use crate::{AcademicYearRow, AssignmentRow, DepartureKind, NewAudit, PersonRow, StoreResult};

/// A period to create or (re)date: (year, scheme, number) is its key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPeriod {
    pub scheme: PeriodScheme,
    pub number: u8,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewYear {
    pub school: SchoolId,
    pub external_id: String,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub periods: Vec<NewPeriod>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewClass {
    pub school: SchoolId,
    pub year: AcademicYearId,
    pub external_id: String,
    pub grade: u8,
    pub letter: String,
    pub class_teacher: Option<PersonId>,
    pub scheme: PeriodScheme,
    pub newly_formed: bool,
}

/// A person the school registers (a newly admitted student or a newly hired teacher).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewPerson {
    pub uid: String,
    pub external_id: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub gender: Option<String>,
    /// Keyed hash of the СНИЛС (login matching); never the number itself.
    pub snils_hmac: Option<Vec<u8>>,
    /// AEAD ciphertext of the СНИЛС bound to `uid`.
    pub snils_cipher: Option<Vec<u8>>,
}

/// Зачисление: a new person, or one the journal already knows (returning student).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Admission {
    New(NewPerson),
    Existing(PersonId),
}

/// Группа: part of a class for a subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRow {
    pub id: GroupId,
    pub class_id: ClassId,
    pub name: String,
    pub members: Vec<PersonId>,
}

/// A weekly timetable slot with its assignment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub id: TimetableSlotId,
    pub assignment: AssignmentRow,
    pub group_id: Option<GroupId>,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    pub lesson_number: u8,
    pub room: Option<String>,
}

/// Замена on one date.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubstitutionRow {
    pub id: i64,
    pub slot_id: TimetableSlotId,
    pub date: NaiveDate,
    pub substitute_id: PersonId,
    pub substitute_name: String,
    pub reason: Option<String>,
}

/// A staff role grant with the person who holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRow {
    pub grant: crate::RoleGrantRow,
    pub person: PersonRow,
}

/// The rollover as written: the new year, the promoted classes, who moves and who leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloverWrite {
    pub old_year: AcademicYearId,
    pub new_year: NewYear,
    /// (old class, the class it becomes).
    pub classes: Vec<(ClassId, NewClass)>,
    /// Enrolments that move: (enrolment, old class); each gets a new enrolment in the class
    /// its old class becomes, from the new year's first day.
    pub moves: Vec<(i64, ClassId)>,
    /// Enrolments that end on `leave_on` with a kind and reason (graduation, leaving after 9).
    pub departures: Vec<(i64, DepartureKind, String)>,
    pub leave_on: NaiveDate,
}

/// A current mark as the reports see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMark {
    pub class_id: ClassId,
    pub subject_id: SubjectId,
    pub student_id: PersonId,
    pub date: NaiveDate,
    pub value: MarkValue,
    pub weight: u8,
}

/// A period, annual or final mark as the reports see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportFinalMark {
    pub class_id: ClassId,
    pub subject_id: SubjectId,
    pub student_id: PersonId,
    /// `period`, `annual` or `final`.
    pub kind: String,
    pub period_id: Option<i64>,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAttendance {
    pub class_id: ClassId,
    pub student_id: PersonId,
    pub date: NaiveDate,
    pub kind: AttendanceKind,
}

/// A held lesson with what the teacher filled in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLesson {
    pub assignment_id: AssignmentId,
    pub teacher_id: PersonId,
    pub class_id: ClassId,
    pub subject_id: SubjectId,
    pub date: NaiveDate,
    pub lesson_number: u8,
    pub topic: Option<String>,
    pub homework: Option<String>,
}

/// Administration writes and report reads. A supertrait of [`crate::Store`].
#[async_trait]
pub trait AdminStore: Send + Sync {
    // Calendar.
    async fn get_year(&self, id: AcademicYearId) -> StoreResult<AcademicYearRow>;
    /// When the year was archived (read-only), if it was.
    async fn find_year_archived_at(&self, id: AcademicYearId) -> StoreResult<Option<i64>>;
    async fn create_year(&self, year: &NewYear, audit: NewAudit) -> StoreResult<AcademicYearId>;
    /// Creates the period or moves its dates (key: year, scheme, number).
    async fn upsert_period(
        &self,
        year: AcademicYearId,
        period: &NewPeriod,
        audit: NewAudit,
    ) -> StoreResult<()>;

    // Classes and groups.
    async fn create_class(&self, class: &NewClass, audit: NewAudit) -> StoreResult<ClassId>;
    async fn update_class(
        &self,
        class: ClassId,
        letter: &str,
        class_teacher: Option<PersonId>,
        audit: NewAudit,
    ) -> StoreResult<()>;
    async fn list_groups(&self, class: ClassId) -> StoreResult<Vec<GroupRow>>;
    async fn create_group(
        &self,
        class: ClassId,
        name: &str,
        audit: NewAudit,
    ) -> StoreResult<GroupId>;
    /// Replaces the group's members.
    async fn set_group_members(
        &self,
        group: GroupId,
        members: &[PersonId],
        audit: NewAudit,
    ) -> StoreResult<()>;

    // Subjects, work types, assignments.
    async fn create_subject(
        &self,
        school: SchoolId,
        name: &str,
        grading: Grading,
        audit: NewAudit,
    ) -> StoreResult<SubjectId>;
    /// Creates the work type or changes its name and weight (key: school, code).
    async fn upsert_work_type(
        &self,
        school: SchoolId,
        code: &str,
        name: &str,
        weight: u8,
        audit: NewAudit,
    ) -> StoreResult<()>;
    async fn list_assignments(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<AssignmentRow>>;
    async fn create_assignment(
        &self,
        teacher: PersonId,
        class: ClassId,
        group: Option<GroupId>,
        subject: SubjectId,
        audit: NewAudit,
    ) -> StoreResult<AssignmentId>;

    // Timetable.
    async fn list_slots(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<SlotInfo>>;
    /// Adds a slot unless the teacher or the class (outside groups of one split) is already
    /// busy then: `Conflict { constraint: "timetable_teacher_busy" | "timetable_class_busy" }`.
    async fn create_slot(
        &self,
        assignment: AssignmentId,
        weekday: u8,
        lesson_number: u8,
        room: Option<&str>,
        audit: NewAudit,
    ) -> StoreResult<TimetableSlotId>;
    async fn delete_slot(&self, slot: TimetableSlotId, audit: NewAudit) -> StoreResult<()>;
    async fn list_substitutions(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SubstitutionRow>>;
    /// Sets (or replaces) the substitute of a slot on a date.
    async fn set_substitution(
        &self,
        slot: TimetableSlotId,
        date: NaiveDate,
        substitute: PersonId,
        reason: Option<&str>,
        audit: NewAudit,
    ) -> StoreResult<()>;

    // People and enrolments.
    async fn create_person(&self, person: &NewPerson, audit: NewAudit) -> StoreResult<PersonId>;
    /// Enrols a student (creating the person if new); returns the person and the enrolment.
    async fn admit_student(
        &self,
        admission: &Admission,
        class: ClassId,
        admitted_on: NaiveDate,
        audit: NewAudit,
    ) -> StoreResult<(PersonId, i64)>;
    async fn get_enrolment(&self, id: i64) -> StoreResult<crate::EnrolmentRow>;
    /// Ends the enrolment on `on` and opens one in `to_class` from `on`; returns the new id.
    async fn transfer_student(
        &self,
        enrolment: i64,
        to_class: ClassId,
        on: NaiveDate,
        audit: NewAudit,
    ) -> StoreResult<i64>;
    /// Выбытие: ends the enrolment on `on` with a kind and a reason.
    async fn depart_student(
        &self,
        enrolment: i64,
        on: NaiveDate,
        kind: DepartureKind,
        reason: &str,
        audit: NewAudit,
    ) -> StoreResult<()>;

    // Staff roles.
    /// Active grants scoped to the school.
    async fn list_school_staff(&self, school: SchoolId) -> StoreResult<Vec<StaffRow>>;
    /// Active grants anywhere in the region (schools, municipalities, the region itself).
    async fn list_region_staff(&self, region: RegionId) -> StoreResult<Vec<StaffRow>>;
    async fn get_role_grant(&self, id: i64) -> StoreResult<crate::RoleGrantRow>;
    async fn revoke_role(&self, id: i64, audit: NewAudit) -> StoreResult<()>;
    /// Persons holding `role` at the school (for pickers: teachers, substitutes).
    async fn list_people_with_role(
        &self,
        school: SchoolId,
        role: Role,
    ) -> StoreResult<Vec<PersonRow>>;

    // Year rollover.
    /// Applies the whole rollover in one transaction and archives the old year.
    async fn apply_rollover(
        &self,
        rollover: &RolloverWrite,
        audit: NewAudit,
    ) -> StoreResult<AcademicYearId>;

    // Report reads (a school, a date range).
    async fn list_report_marks(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ReportMark>>;
    async fn list_report_final_marks(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<ReportFinalMark>>;
    async fn list_report_attendance(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ReportAttendance>>;
    async fn list_report_lessons(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ReportLesson>>;
}
