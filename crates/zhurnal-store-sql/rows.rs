//! Row → record decoding. A column that does not decode is an error, never a default.

use chrono::NaiveDate;
use sqlx::{Column, ColumnIndex, Row};
use zhurnal_domain::*;
use zhurnal_store::schedule::{HeldLesson, SlotRow};
use zhurnal_store::*;

use crate::backend::{Db, DbRow};
use crate::map_err;

pub(crate) fn get<'r, T: sqlx::Decode<'r, Db> + sqlx::Type<Db>>(
    r: &'r DbRow,
    col: &str,
) -> StoreResult<T> {
    r.try_get(col).map_err(map_err)
}

/// The column `prefix` + `name`, found without building the string: a row that carries two
/// records whose columns share names (a student with their school and class, one statement for
/// the diary's access check) aliases one record's columns with a prefix.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Col(pub &'static str, pub &'static str);

impl ColumnIndex<DbRow> for Col {
    fn index(&self, row: &DbRow) -> Result<usize, sqlx::Error> {
        if self.0.is_empty() {
            return ColumnIndex::index(&self.1, row);
        }
        row.columns()
            .iter()
            .position(|c| c.name().strip_prefix(self.0) == Some(self.1))
            .ok_or_else(|| sqlx::Error::ColumnNotFound(format!("{}{}", self.0, self.1)))
    }
}

fn get_as<'r, T: sqlx::Decode<'r, Db> + sqlx::Type<Db>>(
    r: &'r DbRow,
    prefix: &'static str,
    col: &'static str,
) -> StoreResult<T> {
    r.try_get(Col(prefix, col)).map_err(map_err)
}

pub(crate) fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what}: недопустимое значение «{value}»"))
}

pub(crate) fn region_from(r: &DbRow) -> StoreResult<RegionRow> {
    Ok(RegionRow {
        id: RegionId(get(r, "id")?),
        external_id: get(r, "external_id")?,
        name: get(r, "name")?,
    })
}

pub(crate) fn municipality_from(r: &DbRow) -> StoreResult<MunicipalityRow> {
    Ok(MunicipalityRow {
        id: MunicipalityId(get(r, "id")?),
        region_id: RegionId(get(r, "region_id")?),
        external_id: get(r, "external_id")?,
        name: get(r, "name")?,
    })
}

pub(crate) fn school_from(r: &DbRow) -> StoreResult<SchoolRow> {
    school_from_as(r, "")
}

/// [`school_from`] with every column name prefixed by `p`.
pub(crate) fn school_from_as(r: &DbRow, p: &'static str) -> StoreResult<SchoolRow> {
    Ok(SchoolRow {
        id: SchoolId(get_as(r, p, "id")?),
        municipality_id: MunicipalityId(get_as(r, p, "municipality_id")?),
        region_id: RegionId(get_as(r, p, "region_id")?),
        external_id: get_as(r, p, "external_id")?,
        name: get_as(r, p, "name")?,
        short_name: get_as(r, p, "short_name")?,
    })
}

pub(crate) fn year_from(r: &DbRow) -> StoreResult<AcademicYearRow> {
    Ok(AcademicYearRow {
        id: AcademicYearId(get(r, "id")?),
        school_id: SchoolId(get(r, "school_id")?),
        external_id: get(r, "external_id")?,
        name: get(r, "name")?,
        starts_on: get(r, "starts_on")?,
        ends_on: get(r, "ends_on")?,
    })
}

pub(crate) fn period_from(r: &DbRow) -> StoreResult<PeriodRow> {
    let scheme: String = get(r, "scheme")?;
    let number: i64 = get(r, "number")?;
    Ok(PeriodRow {
        academic_year_id: AcademicYearId(get(r, "academic_year_id")?),
        external_id: get(r, "external_id")?,
        period: Period {
            id: PeriodId(get(r, "id")?),
            scheme: PeriodScheme::from_code(&scheme)
                .ok_or_else(|| corrupt("periods.scheme", &scheme))?,
            number: u8::try_from(number)
                .map_err(|_| corrupt("periods.number", &number.to_string()))?,
            starts_on: get(r, "starts_on")?,
            ends_on: get(r, "ends_on")?,
            closed_on: get(r, "closed_on")?,
        },
    })
}

pub(crate) fn class_from(r: &DbRow) -> StoreResult<ClassRow> {
    class_from_as(r, "")
}

/// [`class_from`] with every column name prefixed by `p`.
pub(crate) fn class_from_as(r: &DbRow, p: &'static str) -> StoreResult<ClassRow> {
    let scheme: String = get_as(r, p, "period_scheme")?;
    let grade: i64 = get_as(r, p, "grade")?;
    Ok(ClassRow {
        id: ClassId(get_as(r, p, "id")?),
        school_id: SchoolId(get_as(r, p, "school_id")?),
        academic_year_id: AcademicYearId(get_as(r, p, "academic_year_id")?),
        external_id: get_as(r, p, "external_id")?,
        grade: u8::try_from(grade).map_err(|_| corrupt("classes.grade", &grade.to_string()))?,
        letter: get_as(r, p, "letter")?,
        class_teacher_id: get_as::<Option<i64>>(r, p, "class_teacher_id")?.map(PersonId),
        period_scheme: PeriodScheme::from_code(&scheme)
            .ok_or_else(|| corrupt("classes.period_scheme", &scheme))?,
        newly_formed: get_as(r, p, "newly_formed")?,
        student_count: get_as(r, p, "student_count")?,
    })
}

pub(crate) fn person_from(r: &DbRow) -> StoreResult<PersonRow> {
    let state: String = get(r, "account_state")?;
    Ok(PersonRow {
        id: PersonId(get(r, "id")?),
        uid: get(r, "uid")?,
        external_id: get(r, "external_id")?,
        last_name: get(r, "last_name")?,
        first_name: get(r, "first_name")?,
        middle_name: get(r, "middle_name")?,
        birth_date: get(r, "birth_date")?,
        gender: get(r, "gender")?,
        esia_oid: get(r, "esia_oid")?,
        account_state: AccountState::from_code(&state)
            .ok_or_else(|| corrupt("persons.account_state", &state))?,
        last_login_at: get(r, "last_login_at")?,
        snils_cipher: get(r, "snils_cipher")?,
        phone: get(r, "phone")?,
        email: get(r, "email")?,
    })
}

pub(crate) fn enrolment_from(r: &DbRow) -> StoreResult<EnrolmentRow> {
    let kind: Option<String> = get(r, "departure_kind")?;
    Ok(EnrolmentRow {
        id: get(r, "id")?,
        student_id: PersonId(get(r, "student_id")?),
        school_id: SchoolId(get(r, "school_id")?),
        class_id: ClassId(get(r, "class_id")?),
        admitted_on: get(r, "admitted_on")?,
        departed_on: get(r, "departed_on")?,
        departure_kind: match kind {
            Some(k) => Some(
                DepartureKind::from_code(&k)
                    .ok_or_else(|| corrupt("enrolments.departure_kind", &k))?,
            ),
            None => None,
        },
        departure_reason: get(r, "departure_reason")?,
    })
}

pub(crate) fn child_from(r: &DbRow) -> StoreResult<ChildRow> {
    let grade: Option<i64> = get(r, "grade")?;
    let letter: Option<String> = get(r, "letter")?;
    Ok(ChildRow {
        person: person_from(r)?,
        class_id: get::<Option<i64>>(r, "class_id")?.map(ClassId),
        class_name: grade.zip(letter).map(|(g, l)| format!("{g}{l}")),
        school_id: get::<Option<i64>>(r, "school_id")?.map(SchoolId),
        departed_on: get(r, "departed_on")?,
    })
}

pub(crate) fn grant_from(r: &DbRow) -> StoreResult<(Role, RoleScope)> {
    let role: String = get(r, "role")?;
    let role = Role::from_code(&role).ok_or_else(|| corrupt("staff_roles.role", &role))?;
    let school: Option<i64> = get(r, "school_id")?;
    let muni: Option<i64> = get(r, "municipality_id")?;
    let region: Option<i64> = get(r, "region_id")?;
    let scope = match (school, muni, region) {
        (Some(s), None, None) => RoleScope::School(SchoolId(s)),
        (None, Some(m), None) => RoleScope::Municipality(MunicipalityId(m)),
        (None, None, Some(g)) => RoleScope::Region(RegionId(g)),
        _ => {
            return Err(corrupt("staff_roles scope", "не ровно одна область действия"));
        }
    };
    Ok((role, scope))
}

pub(crate) fn subject_from(r: &DbRow) -> StoreResult<SubjectRow> {
    let grading: String = get(r, "grading")?;
    Ok(SubjectRow {
        id: SubjectId(get(r, "id")?),
        school_id: SchoolId(get(r, "school_id")?),
        external_id: get(r, "external_id")?,
        name: get(r, "name")?,
        grading: Grading::from_code(&grading)
            .ok_or_else(|| corrupt("subjects.grading", &grading))?,
    })
}

pub(crate) fn work_type_from(r: &DbRow) -> StoreResult<WorkTypeRow> {
    let weight: i64 = get(r, "weight")?;
    Ok(WorkTypeRow {
        id: WorkTypeId(get(r, "id")?),
        school_id: SchoolId(get(r, "school_id")?),
        code: get(r, "code")?,
        name: get(r, "name")?,
        weight: u8::try_from(weight)
            .map_err(|_| corrupt("work_types.weight", &weight.to_string()))?,
    })
}

pub(crate) fn login_attempt_from(r: &DbRow) -> StoreResult<LoginAttempt> {
    Ok(LoginAttempt {
        state_hash: get(r, "state_hash")?,
        browser_hash: get(r, "browser_hash")?,
        code_verifier: get(r, "code_verifier")?,
        created_at: get(r, "created_at")?,
        next: get(r, "next")?,
        login_hint: get(r, "login_hint")?,
    })
}

pub(crate) fn session_from(r: &DbRow) -> StoreResult<SessionRow> {
    Ok(SessionRow {
        id_hash: get(r, "id_hash")?,
        person_id: PersonId(get(r, "person_id")?),
        created_at: get(r, "created_at")?,
        last_seen_at: get(r, "last_seen_at")?,
        csrf_token: get(r, "csrf_token")?,
        source_ip: get(r, "source_ip")?,
        active_role: get(r, "active_role")?,
    })
}

pub(crate) fn audit_from(r: &DbRow) -> StoreResult<AuditRecord> {
    let details: String = get(r, "details")?;
    Ok(AuditRecord {
        seq: get(r, "seq")?,
        event: NewAudit {
            at: get(r, "at")?,
            actor_id: get(r, "actor_id")?,
            actor_role: get(r, "actor_role")?,
            session_hash: get(r, "session_hash")?,
            source_ip: get(r, "source_ip")?,
            action: get(r, "action")?,
            target_type: get(r, "target_type")?,
            target_id: get(r, "target_id")?,
            school_id: get(r, "school_id")?,
            result: get(r, "result")?,
            reason: get(r, "reason")?,
            details: serde_json::from_str(&details)
                .map_err(|_| corrupt("audit_log.details", &details))?,
        },
        prev_hash: get(r, "prev_hash")?,
        hash: get(r, "hash")?,
    })
}

pub(crate) fn assignment_from(r: &DbRow) -> StoreResult<AssignmentRow> {
    let grade: i64 = get(r, "grade")?;
    let letter: String = get(r, "letter")?;
    let last: String = get(r, "t_last")?;
    let first: String = get(r, "t_first")?;
    let middle: Option<String> = get(r, "t_middle")?;
    let initials = [Some(first), middle]
        .into_iter()
        .flatten()
        .filter_map(|n| n.chars().next().map(|c| format!("{c}.")))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(AssignmentRow {
        id: AssignmentId(get(r, "id")?),
        external_id: get(r, "external_id")?,
        teacher_id: PersonId(get(r, "teacher_id")?),
        class_id: ClassId(get(r, "class_id")?),
        subject_id: SubjectId(get(r, "subject_id")?),
        subject_name: get(r, "subject_name")?,
        class_name: format!("{grade}{letter}"),
        teacher_name: format!("{last} {initials}"),
    })
}

pub(crate) fn slot_from(r: &DbRow) -> StoreResult<SlotRow> {
    let weekday: i64 = get(r, "weekday")?;
    let number: i64 = get(r, "lesson_number")?;
    Ok(SlotRow {
        slot_id: get(r, "slot_id")?,
        weekday: u8::try_from(weekday)
            .map_err(|_| corrupt("timetable_slots.weekday", &weekday.to_string()))?,
        lesson_number: u8::try_from(number)
            .map_err(|_| corrupt("timetable_slots.lesson_number", &number.to_string()))?,
        room: get(r, "room")?,
        assignment: assignment_from(r)?,
    })
}

pub(crate) fn held_from(r: &DbRow) -> StoreResult<HeldLesson> {
    let number: i64 = get(r, "lesson_number")?;
    Ok(HeldLesson {
        id: LessonId(get(r, "id")?),
        assignment_id: get(r, "assignment_id")?,
        date: get::<NaiveDate>(r, "on_date")?,
        lesson_number: u8::try_from(number)
            .map_err(|_| corrupt("lessons.lesson_number", &number.to_string()))?,
        topic: get(r, "topic")?,
        homework: get(r, "homework")?,
    })
}

pub(crate) fn mark_from(r: &DbRow) -> StoreResult<MarkRow> {
    let value: String = get(r, "value")?;
    let weight: i64 = get(r, "weight")?;
    Ok(MarkRow {
        id: MarkId(get(r, "id")?),
        lesson_id: LessonId(get(r, "lesson_id")?),
        student_id: PersonId(get(r, "student_id")?),
        value: MarkValue::parse(&value).map_err(|_| corrupt("marks.value", &value))?,
        work_type_id: WorkTypeId(get(r, "work_type_id")?),
        weight: u8::try_from(weight).map_err(|_| corrupt("marks.weight", &weight.to_string()))?,
        comment: get(r, "comment")?,
        author_id: PersonId(get(r, "author_id")?),
        created_at: get(r, "created_at")?,
        updated_at: get(r, "updated_at")?,
    })
}

pub(crate) fn attendance_from(r: &DbRow) -> StoreResult<AttendanceRow> {
    Ok(AttendanceRow {
        lesson_id: LessonId(get(r, "lesson_id")?),
        student_id: PersonId(get(r, "student_id")?),
        kind: attendance_kind(r)?,
    })
}

/// The `kind` column of an attendance row.
pub(crate) fn attendance_kind(r: &DbRow) -> StoreResult<AttendanceKind> {
    let kind: String = get(r, "kind")?;
    AttendanceKind::from_code(&kind).ok_or_else(|| corrupt("attendance.kind", &kind))
}
