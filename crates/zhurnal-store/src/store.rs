use async_trait::async_trait;
use chrono::NaiveDate;
use zhurnal_domain::{
    AcademicYearId, ClassId, MunicipalityId, PersonId, RegionId, Role, RoleScope, SchoolId,
};

use crate::{
    AcademicYearRow, ActorRelations, AttendanceRow, AuditRecord, Batch, BatchStats, ChildRow,
    ClassRow, EnrolmentRow, LoginAttempt, MarkRow, MunicipalityRow, NewAudit, PeriodRow, PersonRow,
    RegionRow, RoleGrantRow, RosterEntry, ScheduledLesson, SchoolRow, SessionRow, StoreResult,
    SubjectRow, WorkTypeRow,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Everything Zhurnal keeps. One implementation per backend; see the crate docs for naming.
#[async_trait]
pub trait Store:
    Send
    + Sync
    + 'static
    + crate::AdminStore
    + crate::BulkStore
    + crate::DiaryStore
    + crate::ImportStore
    + crate::JournalStore
    + crate::PerfStore
    + crate::SecurityStore
    + crate::IntegrationStore
{
    fn backend(&self) -> Backend;
    async fn ping(&self) -> StoreResult<()>;

    /// Closes the connections. On SQLite the last one checkpoints and removes the WAL, so a
    /// command that ends with it leaves the database file complete on its own.
    async fn close(&self);

    /// Applies a batch in one transaction, upserting by external id; writes `audit` with it.
    async fn apply_batch(&self, batch: &Batch, audit: NewAudit) -> StoreResult<BatchStats>;

    // Territory and school structure.
    async fn list_regions(&self) -> StoreResult<Vec<RegionRow>>;
    async fn list_municipalities(&self, region: RegionId) -> StoreResult<Vec<MunicipalityRow>>;
    async fn list_schools(&self) -> StoreResult<Vec<SchoolRow>>;
    async fn get_school(&self, id: SchoolId) -> StoreResult<SchoolRow>;
    async fn find_region_by_external_id(&self, external_id: &str)
    -> StoreResult<Option<RegionRow>>;
    async fn find_municipality_by_external_id(
        &self,
        external_id: &str,
    ) -> StoreResult<Option<MunicipalityRow>>;
    async fn find_school_by_external_id(&self, external_id: &str)
    -> StoreResult<Option<SchoolRow>>;
    async fn get_municipality(&self, id: MunicipalityId) -> StoreResult<MunicipalityRow>;
    async fn list_academic_years(&self, school: SchoolId) -> StoreResult<Vec<AcademicYearRow>>;
    async fn list_periods(&self, year: AcademicYearId) -> StoreResult<Vec<PeriodRow>>;
    async fn list_classes(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<ClassRow>>;
    async fn get_class(&self, id: ClassId) -> StoreResult<ClassRow>;
    /// Students enrolled in the class on `on` (admitted on or before, not departed before).
    async fn list_roster(&self, class: ClassId, on: NaiveDate) -> StoreResult<Vec<RosterEntry>>;
    async fn list_enrolments(&self, student: PersonId) -> StoreResult<Vec<EnrolmentRow>>;
    async fn list_subjects(&self, school: SchoolId) -> StoreResult<Vec<SubjectRow>>;
    async fn list_work_types(&self, school: SchoolId) -> StoreResult<Vec<WorkTypeRow>>;

    // People and identity.
    async fn get_person(&self, id: PersonId) -> StoreResult<PersonRow>;
    async fn find_person_by_uid(&self, uid: &str) -> StoreResult<Option<PersonRow>>;
    async fn find_person_by_snils_hmac(&self, hmac: &[u8]) -> StoreResult<Option<PersonRow>>;
    async fn find_person_by_esia_oid(&self, oid: &str) -> StoreResult<Option<PersonRow>>;
    /// Binds the ESIA object id to a person at first login; refuses to rebind another oid.
    async fn link_esia_oid(&self, person: PersonId, oid: &str, audit: NewAudit) -> StoreResult<()>;
    async fn load_relations(
        &self,
        person: PersonId,
        today: NaiveDate,
    ) -> StoreResult<ActorRelations>;
    async fn list_children(&self, parent: PersonId) -> StoreResult<Vec<ChildRow>>;
    /// Creates or confirms a parent–child link; returns true when it was new.
    async fn link_guardian(
        &self,
        parent: PersonId,
        child: PersonId,
        audit: NewAudit,
    ) -> StoreResult<bool>;
    async fn grant_role(
        &self,
        person: PersonId,
        role: Role,
        scope: RoleScope,
        granted_by: Option<PersonId>,
        audit: NewAudit,
    ) -> StoreResult<i64>;
    async fn list_role_grants(&self, person: PersonId) -> StoreResult<Vec<RoleGrantRow>>;

    // Login and sessions.
    async fn insert_login_attempt(&self, attempt: &LoginAttempt) -> StoreResult<()>;
    /// Removes and returns the attempt, so a `state` works once.
    async fn take_login_attempt(&self, state_hash: &str) -> StoreResult<Option<LoginAttempt>>;
    async fn delete_login_attempts_before(&self, created_before: i64) -> StoreResult<u64>;
    /// Creates the session and stamps the person's last login, with the audit record.
    async fn create_session(&self, session: &SessionRow, audit: NewAudit) -> StoreResult<()>;
    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRow>>;
    async fn touch_session(&self, id_hash: &str, at: i64) -> StoreResult<()>;
    async fn delete_session(&self, id_hash: &str, audit: Option<NewAudit>) -> StoreResult<()>;
    async fn delete_sessions_before(&self, last_seen_before: i64) -> StoreResult<u64>;

    // Audit.
    async fn append_audit(&self, audit: NewAudit) -> StoreResult<i64>;
    async fn list_audit(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditRecord>>;

    // The day and the diary.
    /// A teacher's lessons on `date` from the timetable, with substitutions applied both ways.
    async fn list_teacher_day(
        &self,
        teacher: PersonId,
        date: NaiveDate,
    ) -> StoreResult<Vec<ScheduledLesson>>;
    /// A student's timetable for the dates, with held lessons' topics and homework.
    async fn list_student_lessons(
        &self,
        student: PersonId,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ScheduledLesson>>;
    async fn list_student_marks(
        &self,
        student: PersonId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<MarkRow>>;
    async fn list_student_attendance(
        &self,
        student: PersonId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttendanceRow>>;
}
