//! [`AdminStore`] on both backends: the school's structure, staff, roles, timetable and rollover.

use async_trait::async_trait;
use chrono::NaiveDate;
use zhurnal_domain::{
    AcademicYearId, AssignmentId, ClassId, Grading, GroupId, MarkValue, PersonId, RegionId, Role,
    SchoolId, SubjectId, TimetableSlotId,
};
use zhurnal_store::*;

use crate::backend::{DbConn, DbRow, DbStore, lock_slot_owners};
use crate::rows::*;
use crate::{ASSIGNMENT_COLS, ASSIGNMENT_JOINS, PERSON_COLS, append_audit_in, map_err};

fn small(r: &DbRow, col: &str) -> StoreResult<u8> {
    let v: i64 = get(r, col)?;
    u8::try_from(v).map_err(|_| corrupt(col, &v.to_string()))
}

const GRANT_COLS: &str = "g.id AS grant_id, g.person_id, g.role, g.school_id, g.municipality_id, \
    g.region_id, g.granted_at, g.granted_by";

fn staff_from(r: &DbRow) -> StoreResult<StaffRow> {
    let (role, scope) = grant_from(r)?;
    Ok(StaffRow {
        grant: RoleGrantRow {
            id: get(r, "grant_id")?,
            person_id: PersonId(get(r, "person_id")?),
            role,
            scope,
            granted_at: get(r, "granted_at")?,
            granted_by: get::<Option<i64>>(r, "granted_by")?.map(PersonId),
        },
        person: person_from(r)?,
    })
}

fn enrolment_ext(prefix: &str, at: i64, n: i64) -> String {
    format!("{prefix}-{at}-{n}")
}

/// Inserts a class inside a transaction.
async fn insert_class(conn: &mut DbConn, c: &NewClass) -> StoreResult<ClassId> {
    let row = sqlx::query(
        "INSERT INTO classes (external_id, school_id, academic_year_id, grade, letter, class_teacher_id, \
         period_scheme, newly_formed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
    )
    .bind(&c.external_id)
    .bind(c.school.0)
    .bind(c.year.0)
    .bind(i64::from(c.grade))
    .bind(&c.letter)
    .bind(c.class_teacher.map(|p| p.0))
    .bind(c.scheme.code())
    .bind(c.newly_formed)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(ClassId(get(&row, "id")?))
}

/// A new school year with its periods.
async fn insert_year(conn: &mut DbConn, y: &NewYear) -> StoreResult<AcademicYearId> {
    let row = sqlx::query(
        "INSERT INTO academic_years (external_id, school_id, name, starts_on, ends_on) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
    )
    .bind(&y.external_id)
    .bind(y.school.0)
    .bind(&y.name)
    .bind(y.starts_on)
    .bind(y.ends_on)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    let id = AcademicYearId(get(&row, "id")?);
    for p in &y.periods {
        insert_period(conn, id, &y.external_id, p).await?;
    }
    Ok(id)
}

async fn insert_period(
    conn: &mut DbConn,
    year: AcademicYearId,
    year_ext: &str,
    p: &NewPeriod,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO periods (external_id, academic_year_id, scheme, number, starts_on, ends_on) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (academic_year_id, scheme, number) DO UPDATE SET starts_on = excluded.starts_on, \
         ends_on = excluded.ends_on",
    )
    .bind(format!("{year_ext}-{}-{}", p.scheme.code(), p.number))
    .bind(year.0)
    .bind(p.scheme.code())
    .bind(i64::from(p.number))
    .bind(p.starts_on)
    .bind(p.ends_on)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_enrolment(
    conn: &mut DbConn,
    external_id: &str,
    student: PersonId,
    class: ClassId,
    admitted_on: NaiveDate,
) -> StoreResult<i64> {
    let row = sqlx::query(
        "INSERT INTO enrolments (external_id, student_id, school_id, class_id, admitted_on) \
         SELECT $1, $2, c.school_id, c.id, $4 FROM classes c WHERE c.id = $3 RETURNING id",
    )
    .bind(external_id)
    .bind(student.0)
    .bind(class.0)
    .bind(admitted_on)
    .fetch_optional(&mut *conn)
    .await
    .map_err(map_err)?
    .ok_or_else(|| StoreError::NotFound(format!("класс {class}")))?;
    get(&row, "id")
}

#[async_trait]
impl AdminStore for DbStore {
    async fn get_year(&self, id: AcademicYearId) -> StoreResult<AcademicYearRow> {
        let row = sqlx::query(
            "SELECT id, school_id, external_id, name, starts_on, ends_on FROM academic_years WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("учебный год {id}")))?;
        year_from(&row)
    }

    async fn find_year_archived_at(&self, id: AcademicYearId) -> StoreResult<Option<i64>> {
        let row = sqlx::query("SELECT archived_at FROM academic_years WHERE id = $1")
            .bind(id.0)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("учебный год {id}")))?;
        get(&row, "archived_at")
    }

    async fn create_year(&self, y: &NewYear, audit: NewAudit) -> StoreResult<AcademicYearId> {
        let mut tx = self.write_tx().await?;
        let id = insert_year(&mut tx, y).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn upsert_period(
        &self,
        year: AcademicYearId,
        period: &NewPeriod,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query("SELECT external_id FROM academic_years WHERE id = $1")
            .bind(year.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("учебный год {year}")))?;
        let ext: String = get(&row, "external_id")?;
        insert_period(&mut tx, year, &ext, period).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_class(&self, class: &NewClass, audit: NewAudit) -> StoreResult<ClassId> {
        let mut tx = self.write_tx().await?;
        let id = insert_class(&mut tx, class).await?;
        // Area `integrations`: a new class may need its Сферум chat.
        crate::integration::outbox_class_in(&mut tx, id.0, audit.at).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit.target("class", id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn update_class(
        &self,
        class: ClassId,
        letter: &str,
        class_teacher: Option<PersonId>,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE classes SET letter = $1, class_teacher_id = $2 WHERE id = $3")
                .bind(letter)
                .bind(class_teacher.map(|p| p.0))
                .bind(class.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("класс {class}")));
        }
        // Area `integrations`: the class teacher is a chat member.
        crate::integration::outbox_class_in(&mut tx, class.0, audit.at).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_groups(&self, class: ClassId) -> StoreResult<Vec<GroupRow>> {
        let rows = sqlx::query(
            "SELECT g.id, g.class_id, g.name, gm.student_id FROM class_groups g \
             LEFT JOIN group_members gm ON gm.group_id = g.id WHERE g.class_id = $1 \
             ORDER BY g.name, g.id, gm.student_id",
        )
        .bind(class.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        let mut out: Vec<GroupRow> = Vec::new();
        for r in &rows {
            let id = GroupId(get(r, "id")?);
            if out.last().is_none_or(|g| g.id != id) {
                out.push(GroupRow {
                    id,
                    class_id: ClassId(get(r, "class_id")?),
                    name: get(r, "name")?,
                    members: Vec::new(),
                });
            }
            if let (Some(g), Some(s)) = (out.last_mut(), get::<Option<i64>>(r, "student_id")?) {
                g.members.push(PersonId(s));
            }
        }
        Ok(out)
    }

    async fn create_group(
        &self,
        class: ClassId,
        name: &str,
        audit: NewAudit,
    ) -> StoreResult<GroupId> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "INSERT INTO class_groups (external_id, class_id, name) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(format!("group-{class}-{}", audit.at))
        .bind(class.0)
        .bind(name)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let id = GroupId(get(&row, "id")?);
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit.target("group", id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn set_group_members(
        &self,
        group: GroupId,
        members: &[PersonId],
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(group.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for m in members {
            sqlx::query("INSERT INTO group_members (group_id, student_id) VALUES ($1, $2)")
                .bind(group.0)
                .bind(m.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_subject(
        &self,
        school: SchoolId,
        name: &str,
        grading: Grading,
        audit: NewAudit,
    ) -> StoreResult<SubjectId> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "INSERT INTO subjects (external_id, school_id, name, grading) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(format!("subject-{school}-{}", audit.at))
        .bind(school.0)
        .bind(name)
        .bind(grading.code())
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let id = SubjectId(get(&row, "id")?);
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit.target("subject", id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn upsert_work_type(
        &self,
        school: SchoolId,
        code: &str,
        name: &str,
        weight: u8,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO work_types (school_id, code, name, weight) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (school_id, code) DO UPDATE SET name = excluded.name, weight = excluded.weight",
        )
        .bind(school.0)
        .bind(code)
        .bind(name)
        .bind(i64::from(weight))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_assignments(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<AssignmentRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ASSIGNMENT_COLS} FROM assignments a {ASSIGNMENT_JOINS} \
             WHERE c.school_id = $1 AND c.academic_year_id = $2 ORDER BY c.grade, c.letter, sj.name, a.id"
        ))
        .bind(school.0)
        .bind(year.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(assignment_from).collect()
    }

    async fn create_assignment(
        &self,
        teacher: PersonId,
        class: ClassId,
        group: Option<GroupId>,
        subject: SubjectId,
        audit: NewAudit,
    ) -> StoreResult<AssignmentId> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "INSERT INTO assignments (external_id, teacher_id, class_id, group_id, subject_id) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(format!("assignment-{class}-{}", audit.at))
        .bind(teacher.0)
        .bind(class.0)
        .bind(group.map(|g| g.0))
        .bind(subject.0)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let id = AssignmentId(get(&row, "id")?);
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit.target("assignment", id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn list_slots(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<SlotInfo>> {
        let rows = sqlx::query(&format!(
            "SELECT s.id AS slot_id, s.weekday, s.lesson_number, s.room, a.group_id, {ASSIGNMENT_COLS} \
             FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id {ASSIGNMENT_JOINS} \
             WHERE c.school_id = $1 AND c.academic_year_id = $2 \
             ORDER BY s.weekday, s.lesson_number, c.grade, c.letter, s.id"
        ))
        .bind(school.0)
        .bind(year.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(SlotInfo {
                    id: TimetableSlotId(get(r, "slot_id")?),
                    assignment: assignment_from(r)?,
                    group_id: get::<Option<i64>>(r, "group_id")?.map(GroupId),
                    weekday: small(r, "weekday")?,
                    lesson_number: small(r, "lesson_number")?,
                    room: get(r, "room")?,
                })
            })
            .collect()
    }

    async fn create_slot(
        &self,
        assignment: AssignmentId,
        weekday: u8,
        lesson_number: u8,
        room: Option<&str>,
        audit: NewAudit,
    ) -> StoreResult<TimetableSlotId> {
        let mut tx = self.write_tx().await?;
        let a = sqlx::query("SELECT teacher_id, class_id, group_id FROM assignments WHERE id = $1")
            .bind(assignment.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("нагрузка {assignment}")))?;
        let teacher: i64 = get(&a, "teacher_id")?;
        let class: i64 = get(&a, "class_id")?;
        let group: Option<i64> = get(&a, "group_id")?;
        lock_slot_owners(&mut tx, teacher, class).await?;
        let busy = sqlx::query(
            "SELECT a.teacher_id, a.class_id, a.group_id FROM timetable_slots s \
             JOIN assignments a ON a.id = s.assignment_id \
             WHERE s.weekday = $1 AND s.lesson_number = $2 AND (a.teacher_id = $3 OR a.class_id = $4)",
        )
        .bind(i64::from(weekday))
        .bind(i64::from(lesson_number))
        .bind(teacher)
        .bind(class)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        for b in &busy {
            if get::<i64>(b, "teacher_id")? == teacher {
                return Err(StoreError::Conflict { constraint: "timetable_teacher_busy".into() });
            }
            let other_group: Option<i64> = get(b, "group_id")?;
            // Two groups of one split class may have lessons at the same time.
            let split = matches!((group, other_group), (Some(g1), Some(g2)) if g1 != g2);
            if get::<i64>(b, "class_id")? == class && !split {
                return Err(StoreError::Conflict { constraint: "timetable_class_busy".into() });
            }
        }
        let row = sqlx::query(
            "INSERT INTO timetable_slots (external_id, assignment_id, weekday, lesson_number, room) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(format!("slot-{assignment}-{weekday}-{lesson_number}-{}", audit.at))
        .bind(assignment.0)
        .bind(i64::from(weekday))
        .bind(i64::from(lesson_number))
        .bind(room)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let id = TimetableSlotId(get(&row, "id")?);
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit.target("slot", id)).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn delete_slot(&self, slot: TimetableSlotId, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM substitutions WHERE slot_id = $1")
            .bind(slot.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let done = sqlx::query("DELETE FROM timetable_slots WHERE id = $1")
            .bind(slot.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("урок расписания {slot}")));
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_substitutions(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SubstitutionRow>> {
        let rows = sqlx::query(&format!(
            "SELECT su.id AS sub_id, su.slot_id, su.on_date, su.substitute_id, su.reason, {PERSON_COLS} \
             FROM substitutions su JOIN timetable_slots s ON s.id = su.slot_id \
             JOIN assignments a ON a.id = s.assignment_id JOIN classes c ON c.id = a.class_id \
             JOIN persons p ON p.id = su.substitute_id \
             WHERE c.school_id = $1 AND su.on_date BETWEEN $2 AND $3 ORDER BY su.on_date, s.lesson_number"
        ))
        .bind(school.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(SubstitutionRow {
                    id: get(r, "sub_id")?,
                    slot_id: TimetableSlotId(get(r, "slot_id")?),
                    date: get(r, "on_date")?,
                    substitute_id: PersonId(get(r, "substitute_id")?),
                    substitute_name: person_from(r)?.short_name(),
                    reason: get(r, "reason")?,
                })
            })
            .collect()
    }

    async fn set_substitution(
        &self,
        slot: TimetableSlotId,
        date: NaiveDate,
        substitute: PersonId,
        reason: Option<&str>,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO substitutions (slot_id, on_date, substitute_id, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (slot_id, on_date) DO UPDATE SET substitute_id = excluded.substitute_id, \
             reason = excluded.reason",
        )
        .bind(slot.0)
        .bind(date)
        .bind(substitute.0)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn create_person(&self, p: &NewPerson, audit: NewAudit) -> StoreResult<PersonId> {
        let mut tx = self.write_tx().await?;
        let id = insert_person(&mut tx, p, audit.at).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn admit_student(
        &self,
        admission: &Admission,
        class: ClassId,
        admitted_on: NaiveDate,
        audit: NewAudit,
    ) -> StoreResult<(PersonId, i64)> {
        let mut tx = self.write_tx().await?;
        let person = match admission {
            Admission::New(p) => insert_person(&mut tx, p, audit.at).await?,
            Admission::Existing(id) => *id,
        };
        let active = sqlx::query(
            "SELECT COUNT(*) AS n FROM enrolments WHERE student_id = $1 AND (departed_on IS NULL OR departed_on > $2)",
        )
        .bind(person.0)
        .bind(admitted_on)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        if get::<i64>(&active, "n")? > 0 {
            return Err(StoreError::Conflict { constraint: "enrolments_already_active".into() });
        }
        let ext = enrolment_ext("admission", audit.at, person.0);
        let enrolment = insert_enrolment(&mut tx, &ext, person, class, admitted_on).await?;
        // Area `integrations`: the class chat gains the student and parents.
        crate::integration::outbox_enrolment_in(&mut tx, enrolment, audit.at).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok((person, enrolment))
    }

    async fn get_enrolment(&self, id: i64) -> StoreResult<EnrolmentRow> {
        let row = sqlx::query(
            "SELECT id, student_id, school_id, class_id, admitted_on, departed_on, departure_kind, departure_reason \
             FROM enrolments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("зачисление {id}")))?;
        enrolment_from(&row)
    }

    async fn transfer_student(
        &self,
        enrolment: i64,
        to_class: ClassId,
        on: NaiveDate,
        audit: NewAudit,
    ) -> StoreResult<i64> {
        let mut tx = self.write_tx().await?;
        let row = sqlx::query(
            "UPDATE enrolments SET departed_on = $1, departure_reason = $2 \
             WHERE id = $3 AND departed_on IS NULL AND admitted_on <= $1 RETURNING student_id",
        )
        .bind(on)
        .bind(format!("перевод в другой класс (зачисление в класс {to_class})"))
        .bind(enrolment)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::Conflict { constraint: "enrolments_not_active".into() })?;
        let student = PersonId(get(&row, "student_id")?);
        let ext = enrolment_ext("transfer", audit.at, enrolment);
        let id = insert_enrolment(&mut tx, &ext, student, to_class, on).await?;
        // Area `integrations`: both class chats change.
        crate::integration::outbox_enrolment_in(&mut tx, enrolment, audit.at).await?;
        crate::integration::outbox_enrolment_in(&mut tx, id, audit.at).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn depart_student(
        &self,
        enrolment: i64,
        on: NaiveDate,
        kind: DepartureKind,
        reason: &str,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE enrolments SET departed_on = $1, departure_kind = $2, departure_reason = $3 \
             WHERE id = $4 AND departed_on IS NULL AND admitted_on <= $1",
        )
        .bind(on)
        .bind(kind.code())
        .bind(reason)
        .bind(enrolment)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict { constraint: "enrolments_not_active".into() });
        }
        // Area `integrations`: the student and their parents leave the class chat.
        crate::integration::outbox_enrolment_in(&mut tx, enrolment, audit.at).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_school_staff(&self, school: SchoolId) -> StoreResult<Vec<StaffRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLS}, {PERSON_COLS} FROM staff_roles g JOIN persons p ON p.id = g.person_id \
             WHERE g.school_id = $1 AND g.revoked_at IS NULL ORDER BY p.last_name, p.first_name, g.id"
        ))
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(staff_from).collect()
    }

    async fn list_region_staff(&self, region: RegionId) -> StoreResult<Vec<StaffRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLS}, {PERSON_COLS} FROM staff_roles g JOIN persons p ON p.id = g.person_id \
             WHERE g.revoked_at IS NULL AND (g.region_id = $1 \
               OR g.municipality_id IN (SELECT id FROM municipalities WHERE region_id = $1) \
               OR g.school_id IN (SELECT s.id FROM schools s JOIN municipalities m ON m.id = s.municipality_id \
                                  WHERE m.region_id = $1)) \
             ORDER BY g.role, p.last_name, p.first_name, g.id"
        ))
        .bind(region.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(staff_from).collect()
    }

    async fn get_role_grant(&self, id: i64) -> StoreResult<RoleGrantRow> {
        let row = sqlx::query(
            "SELECT id, person_id, role, school_id, municipality_id, region_id, granted_at, granted_by \
             FROM staff_roles WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(id)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("роль {id}")))?;
        let (role, scope) = grant_from(&row)?;
        Ok(RoleGrantRow {
            id: get(&row, "id")?,
            person_id: PersonId(get(&row, "person_id")?),
            role,
            scope,
            granted_at: get(&row, "granted_at")?,
            granted_by: get::<Option<i64>>(&row, "granted_by")?.map(PersonId),
        })
    }

    async fn revoke_role(&self, id: i64, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE staff_roles SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(audit.at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("роль {id}")));
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_people_with_role(
        &self,
        school: SchoolId,
        role: Role,
    ) -> StoreResult<Vec<PersonRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {PERSON_COLS} FROM persons p WHERE p.id IN \
             (SELECT person_id FROM staff_roles WHERE school_id = $1 AND role = $2 AND revoked_at IS NULL) \
             ORDER BY p.last_name, p.first_name, p.id"
        ))
        .bind(school.0)
        .bind(role.code())
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(person_from).collect()
    }

    async fn apply_rollover(
        &self,
        r: &RolloverWrite,
        audit: NewAudit,
    ) -> StoreResult<AcademicYearId> {
        let mut tx = self.write_tx().await?;
        let archived = sqlx::query(
            "UPDATE academic_years SET archived_at = $1 WHERE id = $2 AND archived_at IS NULL",
        )
        .bind(audit.at)
        .bind(r.old_year.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if archived.rows_affected() != 1 {
            return Err(StoreError::Conflict {
                constraint: "academic_years_already_archived".into(),
            });
        }
        let y = &r.new_year;
        let year = insert_year(&mut tx, y).await?;
        let mut map = std::collections::HashMap::new();
        for (old, new) in &r.classes {
            let new = NewClass { year, ..new.clone() };
            map.insert(*old, insert_class(&mut tx, &new).await?);
        }
        // The teaching load carries over with the class (the same teacher keeps the subject,
        // as schools usually do); the admin edits it afterwards. Group assignments do not:
        // groups are re-formed each September.
        for (old, new) in &map {
            sqlx::query(
                "INSERT INTO assignments (external_id, teacher_id, class_id, subject_id) \
                 SELECT $1 || CAST(id AS TEXT), teacher_id, $2, subject_id FROM assignments \
                 WHERE class_id = $3 AND group_id IS NULL ORDER BY id",
            )
            .bind(format!("{}-a", y.external_id))
            .bind(new.0)
            .bind(old.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        // Area `integrations`: the new year's classes get their chats (grades 1, 5, 10…).
        for c in map.values() {
            crate::integration::outbox_class_in(&mut tx, c.0, audit.at).await?;
        }
        for (enrolment, old_class) in &r.moves {
            let to = *map.get(old_class).ok_or_else(|| {
                StoreError::NotFound(format!("класс {old_class} в плане перехода"))
            })?;
            let row = sqlx::query(
                "UPDATE enrolments SET departed_on = $1, departure_reason = $2 \
                 WHERE id = $3 AND departed_on IS NULL RETURNING student_id",
            )
            .bind(y.starts_on)
            .bind("переведён в следующий класс")
            .bind(enrolment)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::Conflict { constraint: "enrolments_not_active".into() })?;
            let student = PersonId(get(&row, "student_id")?);
            let ext = format!("{}-e{enrolment}", y.external_id);
            insert_enrolment(&mut tx, &ext, student, to, y.starts_on).await?;
        }
        for (enrolment, kind, reason) in &r.departures {
            let done = sqlx::query(
                "UPDATE enrolments SET departed_on = $1, departure_kind = $2, departure_reason = $3 \
                 WHERE id = $4 AND departed_on IS NULL",
            )
            .bind(r.leave_on)
            .bind(kind.code())
            .bind(reason)
            .bind(enrolment)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict { constraint: "enrolments_not_active".into() });
            }
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(year)
    }

    async fn list_report_marks(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ReportMark>> {
        let rows = sqlx::query(
            "SELECT a.class_id, a.subject_id, m.student_id, l.on_date, m.value, m.weight \
             FROM marks m JOIN lessons l ON l.id = m.lesson_id JOIN assignments a ON a.id = l.assignment_id \
             JOIN classes c ON c.id = a.class_id \
             WHERE c.school_id = $1 AND l.on_date BETWEEN $2 AND $3 AND m.deleted_at IS NULL",
        )
        .bind(school.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let value: String = get(r, "value")?;
                Ok(ReportMark {
                    class_id: ClassId(get(r, "class_id")?),
                    subject_id: SubjectId(get(r, "subject_id")?),
                    student_id: PersonId(get(r, "student_id")?),
                    date: get(r, "on_date")?,
                    value: MarkValue::parse(&value).map_err(|_| corrupt("marks.value", &value))?,
                    weight: small(r, "weight")?,
                })
            })
            .collect()
    }

    async fn list_report_final_marks(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<ReportFinalMark>> {
        let rows = sqlx::query(
            "SELECT a.class_id, a.subject_id, f.student_id, f.kind, f.period_id, f.value \
             FROM final_marks f JOIN assignments a ON a.id = f.assignment_id JOIN classes c ON c.id = a.class_id \
             WHERE c.school_id = $1 AND c.academic_year_id = $2",
        )
        .bind(school.0)
        .bind(year.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(ReportFinalMark {
                    class_id: ClassId(get(r, "class_id")?),
                    subject_id: SubjectId(get(r, "subject_id")?),
                    student_id: PersonId(get(r, "student_id")?),
                    kind: get(r, "kind")?,
                    period_id: get(r, "period_id")?,
                    value: get(r, "value")?,
                })
            })
            .collect()
    }

    async fn list_report_attendance(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ReportAttendance>> {
        let rows = sqlx::query(
            "SELECT a.class_id, t.student_id, l.on_date, t.kind \
             FROM attendance t JOIN lessons l ON l.id = t.lesson_id JOIN assignments a ON a.id = l.assignment_id \
             JOIN classes c ON c.id = a.class_id \
             WHERE c.school_id = $1 AND l.on_date BETWEEN $2 AND $3",
        )
        .bind(school.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(ReportAttendance {
                    class_id: ClassId(get(r, "class_id")?),
                    student_id: PersonId(get(r, "student_id")?),
                    date: get(r, "on_date")?,
                    kind: attendance_kind(r)?,
                })
            })
            .collect()
    }

    async fn list_report_lessons(
        &self,
        school: SchoolId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ReportLesson>> {
        let rows = sqlx::query(
            "SELECT l.assignment_id, a.teacher_id, a.class_id, a.subject_id, l.on_date, l.lesson_number, \
             l.topic, l.homework FROM lessons l JOIN assignments a ON a.id = l.assignment_id \
             JOIN classes c ON c.id = a.class_id \
             WHERE c.school_id = $1 AND l.on_date BETWEEN $2 AND $3 ORDER BY l.on_date, l.lesson_number",
        )
        .bind(school.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(ReportLesson {
                    assignment_id: AssignmentId(get(r, "assignment_id")?),
                    teacher_id: PersonId(get(r, "teacher_id")?),
                    class_id: ClassId(get(r, "class_id")?),
                    subject_id: SubjectId(get(r, "subject_id")?),
                    date: get(r, "on_date")?,
                    lesson_number: small(r, "lesson_number")?,
                    topic: get(r, "topic")?,
                    homework: get(r, "homework")?,
                })
            })
            .collect()
    }
}

async fn insert_person(conn: &mut DbConn, p: &NewPerson, at: i64) -> StoreResult<PersonId> {
    let row = sqlx::query(
        "INSERT INTO persons (uid, external_id, last_name, first_name, middle_name, birth_date, gender, \
         snils_hmac, snils_cipher, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(&p.uid)
    .bind(&p.external_id)
    .bind(&p.last_name)
    .bind(&p.first_name)
    .bind(&p.middle_name)
    .bind(p.birth_date)
    .bind(&p.gender)
    .bind(&p.snils_hmac)
    .bind(&p.snils_cipher)
    .bind(at)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(PersonId(get(&row, "id")?))
}
