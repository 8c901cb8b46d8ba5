//! Rows as the use cases see them. Identifiers are the domain's typed ids; dates are
//! `NaiveDate` (school dates have no time zone), instants are Unix microseconds (UTC).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhurnal_domain::{
    AcademicYearId, AssignmentId, AttendanceKind, ClassId, Grading, LessonId, MarkId, MarkValue,
    MunicipalityId, Period, PeriodScheme, PersonId, RegionId, Role, RoleScope, SchoolId, SubjectId,
    WorkTypeId,
};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionRow {
    pub id: RegionId,
    pub external_id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MunicipalityRow {
    pub id: MunicipalityId,
    pub region_id: RegionId,
    pub external_id: String,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolRow {
    pub id: SchoolId,
    pub municipality_id: MunicipalityId,
    pub region_id: RegionId,
    pub external_id: String,
    pub name: String,
    pub short_name: String,
}

impl SchoolRow {
    pub fn place(&self) -> zhurnal_domain::policy::Place {
        zhurnal_domain::policy::Place {
            region: self.region_id,
            municipality: self.municipality_id,
            school: self.id,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcademicYearRow {
    pub id: AcademicYearId,
    pub school_id: SchoolId,
    pub external_id: String,
    pub name: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodRow {
    pub academic_year_id: AcademicYearId,
    pub external_id: String,
    pub period: Period,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassRow {
    pub id: ClassId,
    pub school_id: SchoolId,
    pub academic_year_id: AcademicYearId,
    pub external_id: String,
    pub grade: u8,
    pub letter: String,
    pub class_teacher_id: Option<PersonId>,
    pub period_scheme: PeriodScheme,
    /// A class formed this year (not promoted from last year): Sferum needs a chat for it.
    pub newly_formed: bool,
    /// Number of currently enrolled students (filled by list queries).
    pub student_count: i64,
}

impl ClassRow {
    /// "5А".
    pub fn name(&self) -> String {
        format!("{}{}", self.grade, self.letter)
    }
}

/// Account state of a person who can log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Active,
    /// Blocked for inactivity (более 3 месяцев без входа).
    Dormant,
    /// Blocked by an administrator or a security measure.
    Blocked,
}

impl AccountState {
    pub fn code(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Dormant => "dormant",
            Self::Blocked => "blocked",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Active, Self::Dormant, Self::Blocked].into_iter().find(|s| s.code() == code)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonRow {
    pub id: PersonId,
    /// Public identifier used in URLs (never the sequential id).
    pub uid: String,
    pub external_id: String,
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    /// `M` or `F`.
    pub gender: Option<String>,
    pub esia_oid: Option<String>,
    pub account_state: AccountState,
    pub last_login_at: Option<i64>,
    /// The СНИЛС ciphertext (AEAD; decrypted only where a duty requires it).
    pub snils_cipher: Option<Vec<u8>>,
    /// Phone and e-mail as the person gave them (contacts for the class teacher).
    pub phone: Option<String>,
    pub email: Option<String>,
}

impl PersonRow {
    /// «Иванова Мария Петровна».
    pub fn full_name(&self) -> String {
        match &self.middle_name {
            Some(m) if !m.is_empty() => format!("{} {} {}", self.last_name, self.first_name, m),
            _ => format!("{} {}", self.last_name, self.first_name),
        }
    }
    /// «Иванова М. П.» — the journal's short form.
    pub fn short_name(&self) -> String {
        let initial = |s: &str| s.chars().next().map(|c| format!("{c}.")).unwrap_or_default();
        match &self.middle_name {
            Some(m) if !m.is_empty() => {
                format!("{} {} {}", self.last_name, initial(&self.first_name), initial(m))
            }
            _ => format!("{} {}", self.last_name, initial(&self.first_name)),
        }
    }
}

/// One line of a class roster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterEntry {
    pub enrolment_id: i64,
    pub person: PersonRow,
    pub admitted_on: NaiveDate,
    pub departed_on: Option<NaiveDate>,
}

/// Why an enrolment ended (выбытие).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DepartureKind {
    /// Перевод в другую школу.
    Transfer,
    /// Выпуск.
    Graduation,
    /// Отчисление.
    Expulsion,
    Other,
}

impl DepartureKind {
    pub fn code(self) -> &'static str {
        match self {
            Self::Transfer => "transfer",
            Self::Graduation => "graduation",
            Self::Expulsion => "expulsion",
            Self::Other => "other",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        [Self::Transfer, Self::Graduation, Self::Expulsion, Self::Other]
            .into_iter()
            .find(|k| k.code() == code)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentRow {
    pub id: i64,
    pub student_id: PersonId,
    pub school_id: SchoolId,
    pub class_id: ClassId,
    pub admitted_on: NaiveDate,
    pub departed_on: Option<NaiveDate>,
    pub departure_kind: Option<DepartureKind>,
    pub departure_reason: Option<String>,
}

/// A child as the parent's home page lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildRow {
    pub person: PersonRow,
    /// The child's current (or last) class and school.
    pub class_id: Option<ClassId>,
    pub class_name: Option<String>,
    pub school_id: Option<SchoolId>,
    /// Set when the child left: the parent sees history up to that date only.
    pub departed_on: Option<NaiveDate>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleGrantRow {
    pub id: i64,
    pub person_id: PersonId,
    pub role: Role,
    pub scope: RoleScope,
    pub granted_at: i64,
    pub granted_by: Option<PersonId>,
}

/// Everything the authorization policy needs about one person on one day.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ActorRelations {
    pub grants: Vec<(Role, RoleScope)>,
    pub teaching: Vec<zhurnal_domain::policy::Teaching>,
    pub class_teacher_of: Vec<ClassId>,
    pub children: Vec<zhurnal_domain::policy::ChildLink>,
    pub enrolled_in: Vec<(SchoolId, ClassId)>,
    /// Enrolments that ended (the person is a former student somewhere).
    pub departed_from: Vec<(SchoolId, NaiveDate)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectRow {
    pub id: SubjectId,
    pub school_id: SchoolId,
    pub external_id: String,
    pub name: String,
    pub grading: Grading,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkTypeRow {
    pub id: WorkTypeId,
    pub school_id: SchoolId,
    pub code: String,
    pub name: String,
    pub weight: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub id: AssignmentId,
    pub external_id: String,
    pub teacher_id: PersonId,
    pub class_id: ClassId,
    pub subject_id: SubjectId,
    pub subject_name: String,
    pub class_name: String,
    pub teacher_name: String,
}

/// A lesson of someone's day, from the timetable with substitutions applied.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledLesson {
    pub date: NaiveDate,
    pub lesson_number: u8,
    pub assignment: AssignmentRow,
    pub room: Option<String>,
    /// The teacher who actually takes it (differs from the assignment's under a substitution).
    pub teacher_id: PersonId,
    pub substitution: bool,
    pub lesson_id: Option<LessonId>,
    pub topic: Option<String>,
    pub homework: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LessonRow {
    pub id: LessonId,
    pub assignment_id: AssignmentId,
    pub date: NaiveDate,
    pub lesson_number: u8,
    pub topic: Option<String>,
    pub homework: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarkRow {
    pub id: MarkId,
    pub lesson_id: LessonId,
    pub student_id: PersonId,
    pub value: MarkValue,
    pub work_type_id: WorkTypeId,
    pub weight: u8,
    pub comment: Option<String>,
    pub author_id: PersonId,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceRow {
    pub lesson_id: LessonId,
    pub student_id: PersonId,
    pub kind: AttendanceKind,
}

/// Server-side state of one login attempt (pre-login session), keyed by the hash of `state`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginAttempt {
    pub state_hash: String,
    /// Hash of the pre-login cookie the attempt is bound to.
    pub browser_hash: String,
    pub code_verifier: String,
    pub created_at: i64,
    pub next: Option<String>,
    pub login_hint: Option<String>,
}

/// A server-side session; the browser holds only the random id, the database only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRow {
    pub id_hash: String,
    pub person_id: PersonId,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub csrf_token: String,
    pub source_ip: Option<String>,
    /// Which of the person's roles the session acts in (a parent who is also a teacher).
    pub active_role: Option<String>,
}
