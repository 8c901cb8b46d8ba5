//! The core [`Store`] methods (places, people, sessions, the audit log, the teacher's day and
//! the student's lessons), shared by both backends like the other modules of this directory.
//! The dialect differences it needs are names of the backend module: the batch and person
//! locks PostgreSQL takes (SQLite has one writer), and how a list of ids is bound.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::Row;
use zhurnal_domain::policy::{ChildLink, Teaching};
use zhurnal_domain::{
    AcademicYearId, AssignmentId, ClassId, MunicipalityId, PersonId, RegionId, Role, RoleScope,
    SchoolId,
};
use zhurnal_store::schedule::{self, HeldLesson, SlotRow};
use zhurnal_store::*;

use crate::backend::{ANY_OF_1, BACKEND, DbConn, DbRow, DbStore, id_list, lock_batch, lock_person};
use crate::rows::*;
use crate::{append_audit_in, batch, map_err};

pub(crate) const PERSON_COLS: &str = "p.id, p.uid, p.external_id, p.last_name, p.first_name, p.middle_name, \
    p.birth_date, p.gender, p.esia_oid, p.account_state, p.last_login_at, p.snils_cipher, p.phone, p.email";

pub(crate) const SCHOOL_SELECT: &str = "SELECT s.id, s.municipality_id, m.region_id, s.external_id, s.name, s.short_name \
    FROM schools s JOIN municipalities m ON m.id = s.municipality_id";

pub(crate) const CLASS_SELECT: &str = "SELECT c.id, c.school_id, c.academic_year_id, c.external_id, c.grade, c.letter, \
    c.class_teacher_id, c.period_scheme, c.newly_formed, \
    (SELECT COUNT(*) FROM enrolments e WHERE e.class_id = c.id AND e.departed_on IS NULL) AS student_count \
    FROM classes c";

pub(crate) const ASSIGNMENT_COLS: &str = "a.id, a.external_id, a.teacher_id, a.class_id, a.subject_id, sj.name AS subject_name, \
    c.grade, c.letter, tp.last_name AS t_last, tp.first_name AS t_first, tp.middle_name AS t_middle";

pub(crate) const ASSIGNMENT_JOINS: &str = "JOIN subjects sj ON sj.id = a.subject_id JOIN classes c ON c.id = a.class_id \
    JOIN persons tp ON tp.id = a.teacher_id";

/// [`Store::apply_batch`] inside the caller's transaction (an import writes its parts, final
/// marks, history and register entry in the same one): batches queue on the batch lock.
pub(crate) async fn apply_batch_in(conn: &mut DbConn, b: &Batch) -> StoreResult<BatchStats> {
    lock_batch(conn).await?;
    batch::apply(conn, b).await
}

/// Stamps the persons a batch registered (their `created_at` is 0 until then) as registered at
/// `at`: dormancy of those who never log in counts from here. Once per transaction, not per
/// part of an import (it scans the persons).
pub(crate) async fn stamp_new_persons(conn: &mut DbConn, at: i64) -> StoreResult<()> {
    sqlx::query("UPDATE persons SET created_at = $1 WHERE created_at = 0")
        .bind(at)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl Store for DbStore {
    fn backend(&self) -> Backend {
        BACKEND
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.reader()).await.map_err(map_err)?;
        Ok(())
    }

    async fn close(&self) {
        DbStore::close(self).await;
    }

    async fn apply_batch(&self, b: &Batch, audit: NewAudit) -> StoreResult<BatchStats> {
        let mut tx = self.write_tx().await?;
        let stats = apply_batch_in(&mut tx, b).await?;
        stamp_new_persons(&mut tx, audit.at).await?;
        let audit = NewAudit {
            details: serde_json::json!({ "inserted": stats.inserted, "updated": stats.updated, "extra": audit.details }),
            ..audit
        };
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(stats)
    }

    async fn list_regions(&self) -> StoreResult<Vec<RegionRow>> {
        let rows = sqlx::query("SELECT id, external_id, name FROM regions ORDER BY name")
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.iter().map(region_from).collect()
    }

    async fn list_municipalities(&self, region: RegionId) -> StoreResult<Vec<MunicipalityRow>> {
        let rows = sqlx::query(
            "SELECT id, region_id, external_id, name FROM municipalities WHERE region_id = $1 ORDER BY name",
        )
        .bind(region.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(municipality_from).collect()
    }

    async fn list_schools(&self) -> StoreResult<Vec<SchoolRow>> {
        let rows = sqlx::query(&format!("{SCHOOL_SELECT} ORDER BY s.name"))
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.iter().map(school_from).collect()
    }

    async fn get_school(&self, id: SchoolId) -> StoreResult<SchoolRow> {
        let row = sqlx::query(&format!("{SCHOOL_SELECT} WHERE s.id = $1"))
            .bind(id.0)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("школа {id}")))?;
        school_from(&row)
    }

    async fn find_region_by_external_id(
        &self,
        external_id: &str,
    ) -> StoreResult<Option<RegionRow>> {
        let row = sqlx::query("SELECT id, external_id, name FROM regions WHERE external_id = $1")
            .bind(external_id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.as_ref().map(region_from).transpose()
    }

    async fn find_municipality_by_external_id(
        &self,
        external_id: &str,
    ) -> StoreResult<Option<MunicipalityRow>> {
        let row = sqlx::query(
            "SELECT id, region_id, external_id, name FROM municipalities WHERE external_id = $1",
        )
        .bind(external_id)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.as_ref().map(municipality_from).transpose()
    }

    async fn find_school_by_external_id(
        &self,
        external_id: &str,
    ) -> StoreResult<Option<SchoolRow>> {
        let row = sqlx::query(&format!("{SCHOOL_SELECT} WHERE s.external_id = $1"))
            .bind(external_id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.as_ref().map(school_from).transpose()
    }

    async fn get_municipality(&self, id: MunicipalityId) -> StoreResult<MunicipalityRow> {
        let row = sqlx::query(
            "SELECT id, region_id, external_id, name FROM municipalities WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("муниципалитет {id}")))?;
        municipality_from(&row)
    }

    async fn list_academic_years(&self, school: SchoolId) -> StoreResult<Vec<AcademicYearRow>> {
        let rows = sqlx::query(
            "SELECT id, school_id, external_id, name, starts_on, ends_on FROM academic_years \
             WHERE school_id = $1 ORDER BY starts_on DESC",
        )
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(year_from).collect()
    }

    async fn list_periods(&self, year: AcademicYearId) -> StoreResult<Vec<PeriodRow>> {
        let rows = sqlx::query(
            "SELECT id, academic_year_id, external_id, scheme, number, starts_on, ends_on, closed_on \
             FROM periods WHERE academic_year_id = $1 ORDER BY scheme, number",
        )
        .bind(year.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(period_from).collect()
    }

    async fn list_classes(
        &self,
        school: SchoolId,
        year: AcademicYearId,
    ) -> StoreResult<Vec<ClassRow>> {
        let rows = sqlx::query(&format!(
            "{CLASS_SELECT} WHERE c.school_id = $1 AND c.academic_year_id = $2 ORDER BY c.grade, c.letter"
        ))
        .bind(school.0)
        .bind(year.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(class_from).collect()
    }

    async fn get_class(&self, id: ClassId) -> StoreResult<ClassRow> {
        let row = sqlx::query(&format!("{CLASS_SELECT} WHERE c.id = $1"))
            .bind(id.0)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("класс {id}")))?;
        class_from(&row)
    }

    async fn list_roster(&self, class: ClassId, on: NaiveDate) -> StoreResult<Vec<RosterEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT e.id AS enrolment_id, e.admitted_on, e.departed_on, {PERSON_COLS} FROM enrolments e \
             JOIN persons p ON p.id = e.student_id \
             WHERE e.class_id = $1 AND e.admitted_on <= $2 AND (e.departed_on IS NULL OR e.departed_on > $2) \
             ORDER BY p.last_name, p.first_name, p.id"
        ))
        .bind(class.0)
        .bind(on)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(RosterEntry {
                    enrolment_id: r.try_get("enrolment_id").map_err(map_err)?,
                    admitted_on: r.try_get("admitted_on").map_err(map_err)?,
                    departed_on: r.try_get("departed_on").map_err(map_err)?,
                    person: person_from(r)?,
                })
            })
            .collect()
    }

    async fn list_enrolments(&self, student: PersonId) -> StoreResult<Vec<EnrolmentRow>> {
        let rows = sqlx::query(
            "SELECT id, student_id, school_id, class_id, admitted_on, departed_on, departure_kind, departure_reason \
             FROM enrolments WHERE student_id = $1 ORDER BY admitted_on",
        )
        .bind(student.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(enrolment_from).collect()
    }

    async fn list_subjects(&self, school: SchoolId) -> StoreResult<Vec<SubjectRow>> {
        let rows = sqlx::query(
            "SELECT id, school_id, external_id, name, grading FROM subjects WHERE school_id = $1 ORDER BY name",
        )
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(subject_from).collect()
    }

    async fn list_work_types(&self, school: SchoolId) -> StoreResult<Vec<WorkTypeRow>> {
        let rows = sqlx::query(
            "SELECT id, school_id, code, name, weight FROM work_types WHERE school_id = $1 ORDER BY weight, name",
        )
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(work_type_from).collect()
    }

    async fn get_person(&self, id: PersonId) -> StoreResult<PersonRow> {
        let row = sqlx::query(&format!("SELECT {PERSON_COLS} FROM persons p WHERE p.id = $1"))
            .bind(id.0)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("человек {id}")))?;
        person_from(&row)
    }

    async fn find_person_by_uid(&self, uid: &str) -> StoreResult<Option<PersonRow>> {
        let row = sqlx::query(&format!("SELECT {PERSON_COLS} FROM persons p WHERE p.uid = $1"))
            .bind(uid)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?;
        row.as_ref().map(person_from).transpose()
    }

    async fn find_person_by_snils_hmac(&self, hmac: &[u8]) -> StoreResult<Option<PersonRow>> {
        let row =
            sqlx::query(&format!("SELECT {PERSON_COLS} FROM persons p WHERE p.snils_hmac = $1"))
                .bind(hmac)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
        row.as_ref().map(person_from).transpose()
    }

    async fn find_person_by_esia_oid(&self, oid: &str) -> StoreResult<Option<PersonRow>> {
        let row =
            sqlx::query(&format!("SELECT {PERSON_COLS} FROM persons p WHERE p.esia_oid = $1"))
                .bind(oid)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?;
        row.as_ref().map(person_from).transpose()
    }

    async fn link_esia_oid(&self, person: PersonId, oid: &str, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE persons SET esia_oid = $1 WHERE id = $2 AND (esia_oid IS NULL OR esia_oid = $1)")
            .bind(oid)
            .bind(person.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict { constraint: "persons_esia_oid_rebind".into() });
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn load_relations(
        &self,
        person: PersonId,
        today: NaiveDate,
    ) -> StoreResult<ActorRelations> {
        let rows = sqlx::query(&RELATIONS_OF_PERSON)
            .bind(person.0)
            .bind(today)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        relations_from(&rows, today)
    }

    async fn list_children(&self, parent: PersonId) -> StoreResult<Vec<ChildRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {PERSON_COLS}, e.class_id, c.grade, c.letter, e.school_id, e.departed_on \
             FROM guardianships g JOIN persons p ON p.id = g.child_id \
             LEFT JOIN enrolments e ON e.id = (SELECT e2.id FROM enrolments e2 WHERE e2.student_id = p.id \
                ORDER BY (e2.departed_on IS NULL) DESC, e2.admitted_on DESC LIMIT 1) \
             LEFT JOIN classes c ON c.id = e.class_id \
             WHERE g.parent_id = $1 ORDER BY p.birth_date IS NOT NULL, p.birth_date, p.id"
        ))
        .bind(parent.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(child_from).collect()
    }

    async fn link_guardian(
        &self,
        parent: PersonId,
        child: PersonId,
        audit: NewAudit,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "INSERT INTO guardianships (parent_id, child_id, confirmed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (parent_id, child_id) DO UPDATE SET confirmed_at = excluded.confirmed_at \
             WHERE guardianships.confirmed_at IS NULL",
        )
        .bind(parent.0)
        .bind(child.0)
        .bind(audit.at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        // Area `integrations`: a linked parent joins the child's class chats.
        if done.rows_affected() > 0 {
            crate::integration::outbox_child_classes_in(&mut tx, child.0, audit.at).await?;
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn grant_role(
        &self,
        person: PersonId,
        role: Role,
        scope: RoleScope,
        granted_by: Option<PersonId>,
        audit: NewAudit,
    ) -> StoreResult<i64> {
        let (school, muni, region) = scope_columns(scope);
        let mut tx = self.write_tx().await?;
        lock_person(&mut tx, person.0).await?;
        let existing = sqlx::query(
            "SELECT id FROM staff_roles WHERE person_id = $1 AND role = $2 AND revoked_at IS NULL \
             AND school_id IS NOT DISTINCT FROM $3 AND municipality_id IS NOT DISTINCT FROM $4 \
             AND region_id IS NOT DISTINCT FROM $5",
        )
        .bind(person.0)
        .bind(role.code())
        .bind(school)
        .bind(muni)
        .bind(region)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let id = match existing {
            Some(r) => r.try_get(0).map_err(map_err)?,
            None => sqlx::query(
                "INSERT INTO staff_roles (person_id, role, school_id, municipality_id, region_id, granted_at, granted_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(person.0)
            .bind(role.code())
            .bind(school)
            .bind(muni)
            .bind(region)
            .bind(audit.at)
            .bind(granted_by.map(|p| p.0))
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?
            .try_get(0)
            .map_err(map_err)?,
        };
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn list_role_grants(&self, person: PersonId) -> StoreResult<Vec<RoleGrantRow>> {
        let rows = sqlx::query(
            "SELECT id, person_id, role, school_id, municipality_id, region_id, granted_at, granted_by \
             FROM staff_roles WHERE person_id = $1 AND revoked_at IS NULL ORDER BY id",
        )
        .bind(person.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let (role, scope) = grant_from(r)?;
                Ok(RoleGrantRow {
                    id: r.try_get("id").map_err(map_err)?,
                    person_id: PersonId(r.try_get("person_id").map_err(map_err)?),
                    role,
                    scope,
                    granted_at: r.try_get("granted_at").map_err(map_err)?,
                    granted_by: r
                        .try_get::<Option<i64>, _>("granted_by")
                        .map_err(map_err)?
                        .map(PersonId),
                })
            })
            .collect()
    }

    async fn insert_login_attempt(&self, a: &LoginAttempt) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO login_attempts (state_hash, browser_hash, code_verifier, created_at, next, login_hint) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&a.state_hash)
        .bind(&a.browser_hash)
        .bind(&a.code_verifier)
        .bind(a.created_at)
        .bind(&a.next)
        .bind(&a.login_hint)
        .execute(self.writer())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn take_login_attempt(&self, state_hash: &str) -> StoreResult<Option<LoginAttempt>> {
        let row = sqlx::query(
            "DELETE FROM login_attempts WHERE state_hash = $1 \
             RETURNING state_hash, browser_hash, code_verifier, created_at, next, login_hint",
        )
        .bind(state_hash)
        .fetch_optional(self.writer())
        .await
        .map_err(map_err)?;
        row.as_ref().map(login_attempt_from).transpose()
    }

    async fn delete_login_attempts_before(&self, created_before: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM login_attempts WHERE created_at < $1")
            .bind(created_before)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn create_session(&self, s: &SessionRow, audit: NewAudit) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, person_id, created_at, last_seen_at, csrf_token, source_ip, active_role) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id_hash)
        .bind(s.person_id.0)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(&s.csrf_token)
        .bind(&s.source_ip)
        .bind(&s.active_role)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("UPDATE persons SET last_login_at = $1 WHERE id = $2")
            .bind(s.created_at)
            .bind(s.person_id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn find_session(&self, id_hash: &str) -> StoreResult<Option<SessionRow>> {
        let row = sqlx::query(
            "SELECT id_hash, person_id, created_at, last_seen_at, csrf_token, source_ip, active_role \
             FROM sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.as_ref().map(session_from).transpose()
    }

    async fn touch_session(&self, id_hash: &str, at: i64) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(id_hash)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str, audit: Option<NewAudit>) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if let Some(a) = audit {
            append_audit_in(&mut tx, self.sealer.as_ref(), &a).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn delete_sessions_before(&self, last_seen_before: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1")
            .bind(last_seen_before)
            .execute(self.writer())
            .await
            .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn append_audit(&self, audit: NewAudit) -> StoreResult<i64> {
        let mut tx = self.write_tx().await?;
        let seq = append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(seq)
    }

    async fn list_audit(&self, after_seq: i64, limit: i64) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor_id, actor_role, session_hash, source_ip, action, target_type, target_id, \
             school_id, result, reason, details, prev_hash, hash FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after_seq)
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(audit_from).collect()
    }

    async fn list_teacher_day(
        &self,
        teacher: PersonId,
        date: NaiveDate,
    ) -> StoreResult<Vec<ScheduledLesson>> {
        use chrono::Datelike;
        let weekday = i64::from(date.weekday().number_from_monday());
        let rows = sqlx::query(&format!(
            "SELECT s.id AS slot_id, s.weekday, s.lesson_number, s.room, {ASSIGNMENT_COLS} \
             FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id {ASSIGNMENT_JOINS} \
             LEFT JOIN substitutions su ON su.slot_id = s.id AND su.on_date = $2 \
             WHERE s.weekday = $3 AND ((a.teacher_id = $1 AND su.id IS NULL) OR su.substitute_id = $1)"
        ))
        .bind(teacher.0)
        .bind(date)
        .bind(weekday)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        let slots: Vec<SlotRow> = rows.iter().map(slot_from).collect::<StoreResult<_>>()?;
        let assignment_ids: Vec<i64> = slots.iter().map(|s| s.assignment.id.0).collect();
        let held = self.held_lessons(&assignment_ids, date, date).await?;
        let subs = self.substitutions_for(&slots, date, date).await?;
        Ok(schedule::expand(&slots, &held, &subs, date, date))
    }

    async fn list_student_lessons(
        &self,
        student: PersonId,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ScheduledLesson>> {
        let rows = sqlx::query(STUDENT_WEEK.as_str())
            .bind(class.0)
            .bind(student.0)
            .bind(from)
            .bind(to)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let w = lesson_rows(&rows)?;
        Ok(schedule::expand(&w.slots, &w.held, &w.subs, from, to))
    }

    async fn list_student_marks(
        &self,
        student: PersonId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<MarkRow>> {
        let rows = sqlx::query(
            "SELECT m.id, m.lesson_id, m.student_id, m.value, m.work_type_id, m.weight, m.comment, m.author_id, \
             m.created_at, m.updated_at FROM marks m JOIN lessons l ON l.id = m.lesson_id \
             WHERE m.student_id = $1 AND l.on_date BETWEEN $2 AND $3 AND m.deleted_at IS NULL \
             ORDER BY l.on_date, m.id",
        )
        .bind(student.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(mark_from).collect()
    }

    async fn list_student_attendance(
        &self,
        student: PersonId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttendanceRow>> {
        let rows = sqlx::query(
            "SELECT a.lesson_id, a.student_id, a.kind FROM attendance a JOIN lessons l ON l.id = a.lesson_id \
             WHERE a.student_id = $1 AND l.on_date BETWEEN $2 AND $3 ORDER BY l.on_date",
        )
        .bind(student.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(attendance_from).collect()
    }
}

/// Dated lessons as one statement instead of three (the diary's week and the class journal run
/// it on every request): one row per timetable slot of the assignments matching `asg_where`
/// (`kind` 0), per lesson of those assignments held between `from` and `to` (1; with
/// `held_needs_slot`, only of the assignments that have a slot), and per substitution in the
/// dates on one of their slots (2). Slot and held rows carry the assignment's columns (as
/// ASSIGNMENT_COLS names them); every row has the slot, held-lesson and substitution columns,
/// NULL where its kind has no value (cast, so PostgreSQL types the union the same whatever
/// comes first). `asg_where` sees `a` (assignment).
///
/// Two texts, one per backend (docs/performance.md, seventh round). PostgreSQL runs a generic
/// plan of a prepared statement; for the joins of the plain form it hashed the whole `subjects`
/// table on every call and resolved the class's assignments three times, so there the
/// assignments are resolved once (`asg`), their slots once (`sl`), and the subject's name is a
/// lookup by key. SQLite plans every join as a loop over an index already, and the CTE form
/// made SQLite 3.40 (Debian 12's system library) seventy times slower: SQLite keeps the plain
/// form.
fn lessons_sql(asg_where: &str, held_needs_slot: bool, from: &str, to: &str) -> String {
    if BACKEND == zhurnal_store::Backend::Postgres {
        lessons_sql_postgres(asg_where, held_needs_slot, from, to)
    } else {
        lessons_sql_plain(asg_where, held_needs_slot, from, to)
    }
}

fn lessons_sql_plain(asg_where: &str, held_needs_slot: bool, from: &str, to: &str) -> String {
    let slots = format!(
        "FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id WHERE {asg_where}"
    );
    let held_where = if held_needs_slot {
        format!("l.assignment_id IN (SELECT s.assignment_id {slots})")
    } else {
        format!("l.assignment_id IN (SELECT a.id FROM assignments a WHERE {asg_where})")
    };
    format!(
        "SELECT CAST(0 AS BIGINT) AS kind, s.id AS slot_id, s.weekday, s.lesson_number, s.room, \
           {ASSIGNMENT_COLS}, CAST(NULL AS BIGINT) AS lesson_id, CAST(NULL AS DATE) AS on_date, \
           CAST(NULL AS TEXT) AS topic, CAST(NULL AS TEXT) AS homework, \
           CAST(NULL AS BIGINT) AS substitute_id \
         FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id {ASSIGNMENT_JOINS} \
         WHERE {asg_where} \
         UNION ALL \
         SELECT 1, NULL, NULL, l.lesson_number, NULL, {ASSIGNMENT_COLS}, \
           l.id, l.on_date, l.topic, l.homework, NULL \
         FROM lessons l JOIN assignments a ON a.id = l.assignment_id {ASSIGNMENT_JOINS} \
         WHERE l.on_date BETWEEN {from} AND {to} AND {held_where} \
         UNION ALL \
         SELECT 2, su.slot_id, NULL, NULL, NULL, \
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
           NULL, su.on_date, NULL, NULL, su.substitute_id \
         FROM substitutions su WHERE su.on_date BETWEEN {from} AND {to} \
           AND su.slot_id IN (SELECT s.id {slots})"
    )
}

fn lessons_sql_postgres(asg_where: &str, held_needs_slot: bool, from: &str, to: &str) -> String {
    let held_slot =
        if held_needs_slot { "AND asg.id IN (SELECT sl.assignment_id FROM sl)" } else { "" };
    format!(
        "WITH asg AS (SELECT a.id, a.external_id, a.teacher_id, a.class_id, a.subject_id, \
           (SELECT sj.name FROM subjects sj WHERE sj.id = a.subject_id) AS subject_name, \
           c.grade, c.letter, tp.last_name AS t_last, tp.first_name AS t_first, \
           tp.middle_name AS t_middle \
           FROM assignments a JOIN classes c ON c.id = a.class_id \
           JOIN persons tp ON tp.id = a.teacher_id WHERE {asg_where}), \
         sl AS (SELECT s.id, s.weekday, s.lesson_number, s.room, s.assignment_id \
           FROM timetable_slots s WHERE s.assignment_id IN (SELECT asg.id FROM asg)) \
         SELECT CAST(0 AS BIGINT) AS kind, sl.id AS slot_id, sl.weekday, sl.lesson_number, sl.room, \
           asg.id, asg.external_id, asg.teacher_id, asg.class_id, asg.subject_id, asg.subject_name, \
           asg.grade, asg.letter, asg.t_last, asg.t_first, asg.t_middle, \
           CAST(NULL AS BIGINT) AS lesson_id, CAST(NULL AS DATE) AS on_date, \
           CAST(NULL AS TEXT) AS topic, CAST(NULL AS TEXT) AS homework, \
           CAST(NULL AS BIGINT) AS substitute_id \
         FROM sl JOIN asg ON asg.id = sl.assignment_id \
         UNION ALL \
         SELECT 1, NULL, NULL, l.lesson_number, NULL, \
           asg.id, asg.external_id, asg.teacher_id, asg.class_id, asg.subject_id, asg.subject_name, \
           asg.grade, asg.letter, asg.t_last, asg.t_first, asg.t_middle, \
           l.id, l.on_date, l.topic, l.homework, NULL \
         FROM asg JOIN lessons l ON l.assignment_id = asg.id \
         WHERE l.on_date BETWEEN {from} AND {to} {held_slot} \
         UNION ALL \
         SELECT 2, su.slot_id, NULL, NULL, NULL, \
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
           NULL, su.on_date, NULL, NULL, su.substitute_id \
         FROM sl JOIN substitutions su ON su.slot_id = sl.id \
         WHERE su.on_date BETWEEN {from} AND {to}"
    )
}

/// The student's week: `$1` class, `$2` student (groups: only their own), `$3`..`$4` dates.
/// Held lessons count for the assignments that have a slot the student attends.
static STUDENT_WEEK: LazyLock<String> = LazyLock::new(|| {
    lessons_sql(
        "a.class_id = $1 AND (a.group_id IS NULL OR EXISTS \
         (SELECT 1 FROM group_members gm WHERE gm.group_id = a.group_id AND gm.student_id = $2))",
        true,
        "$3",
        "$4",
    )
});

/// A class's week for all its students ([`DiaryStore::read_class_week`]): `$1` class, `$2`..`$3`
/// dates. Held lessons count for the assignments that have a slot, the groups' included.
pub(crate) static CLASS_WEEK_LESSONS: LazyLock<String> =
    LazyLock::new(|| lessons_sql("a.class_id = $1", true, "$2", "$3"));

/// An assignment's lessons: `$1` assignment, `$2`..`$3` dates; every held lesson counts.
pub(crate) static ASSIGNMENT_LESSONS: LazyLock<String> =
    LazyLock::new(|| lessons_sql("a.id = $1", false, "$2", "$3"));

/// The rows of a [`lessons_sql`] statement, sorted by kind.
pub(crate) struct LessonRows {
    pub slots: Vec<SlotRow>,
    pub held: Vec<HeldLesson>,
    /// The assignment of the first held lesson (all of them, for one assignment).
    pub held_assignment: Option<AssignmentRow>,
    pub subs: Vec<(i64, NaiveDate, PersonId)>,
}

pub(crate) fn lesson_rows(rows: &[DbRow]) -> StoreResult<LessonRows> {
    let mut out =
        LessonRows { slots: Vec::new(), held: Vec::new(), held_assignment: None, subs: Vec::new() };
    for r in rows {
        match get::<i64>(r, "kind")? {
            0 => out.slots.push(slot_from(r)?),
            1 => {
                let assignment = assignment_from(r)?;
                let number: i64 = get(r, "lesson_number")?;
                out.held.push(HeldLesson {
                    id: zhurnal_domain::LessonId(get(r, "lesson_id")?),
                    assignment_id: assignment.id.0,
                    date: get(r, "on_date")?,
                    lesson_number: u8::try_from(number)
                        .map_err(|_| corrupt("lessons.lesson_number", &number.to_string()))?,
                    topic: get(r, "topic")?,
                    homework: get(r, "homework")?,
                });
                out.held_assignment.get_or_insert(assignment);
            }
            _ => out.subs.push((
                get(r, "slot_id")?,
                get(r, "on_date")?,
                PersonId(get(r, "substitute_id")?),
            )),
        }
    }
    Ok(out)
}

impl DbStore {
    pub(crate) async fn held_lessons(
        &self,
        assignment_ids: &[i64],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<HeldLesson>> {
        if assignment_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT id, assignment_id, on_date, lesson_number, topic, homework FROM lessons \
             WHERE assignment_id {ANY_OF_1} AND on_date BETWEEN $2 AND $3"
        );
        let rows = sqlx::query(&sql)
            .bind(id_list(assignment_ids)?)
            .bind(from)
            .bind(to)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.iter().map(held_from).collect()
    }

    pub(crate) async fn substitutions_for(
        &self,
        slots: &[SlotRow],
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<(i64, NaiveDate, PersonId)>> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = slots.iter().map(|s| s.slot_id).collect();
        let sql = format!(
            "SELECT slot_id, on_date, substitute_id FROM substitutions \
             WHERE slot_id {ANY_OF_1} AND on_date BETWEEN $2 AND $3"
        );
        let rows = sqlx::query(&sql)
            .bind(id_list(&ids)?)
            .bind(from)
            .bind(to)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0).map_err(map_err)?,
                    r.try_get(1).map_err(map_err)?,
                    PersonId(r.try_get(2).map_err(map_err)?),
                ))
            })
            .collect()
    }
}

pub(crate) fn scope_columns(scope: RoleScope) -> (Option<i64>, Option<i64>, Option<i64>) {
    match scope {
        RoleScope::School(s) => (Some(s.0), None, None),
        RoleScope::Municipality(m) => (None, Some(m.0), None),
        RoleScope::Region(r) => (None, None, Some(r.0)),
    }
}

/// [`Store::load_relations`]: the backend's relations statement (one instead of five: it runs
/// on every login) for `$1` on `$2`.
static RELATIONS_OF_PERSON: LazyLock<String> =
    LazyLock::new(|| format!("{} ORDER BY kind, k", crate::perf::relations_sql("$1", "$2")));

/// [`PerfStore::find_session_with_person`]: the session of `$1` with its person (whether they
/// have notices since `$2`) and, one row each, the person's relations on `$3` (`kind` NULL when
/// there are none). One statement, because every authenticated request needs all three
/// (docs/performance.md, eighth round). `me` is materialized so the session is found once.
static SESSION_WITH_PERSON: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH me AS MATERIALIZED (SELECT s.id_hash, s.person_id, s.created_at, s.last_seen_at, \
         s.csrf_token, s.source_ip, s.active_role, {PERSON_COLS}, \
         EXISTS (SELECT 1 FROM security_notices n \
                 WHERE n.person_id = s.person_id AND n.created_at >= $2) AS has_notices \
         FROM sessions s JOIN persons p ON p.id = s.person_id WHERE s.id_hash = $1) \
         SELECT me.*, r.kind, r.role, r.school_id, r.municipality_id, r.region_id, r.on_date \
         FROM me LEFT JOIN ({}) r ON 1 = 1 ORDER BY r.kind, r.k",
        crate::perf::relations_sql("(SELECT person_id FROM me)", "$3")
    )
});

/// The rows of the relations statement (the columns `kind`, `role`, `school_id`,
/// `municipality_id`, `region_id`, `on_date`; `kind` NULL for none) as the policy's relations.
pub(crate) fn relations_from(rows: &[DbRow], today: NaiveDate) -> StoreResult<ActorRelations> {
    let mut rel = ActorRelations::default();
    for r in rows {
        let Some(kind) = get::<Option<i64>>(r, "kind")? else {
            continue;
        };
        let req = |column: &str| {
            get::<Option<i64>>(r, column)?
                .ok_or_else(|| StoreError::Corrupt(format!("relations: пустой столбец {column}")))
        };
        match kind {
            0 => rel.grants.push(grant_from(r)?),
            // school_id the assignment, municipality_id its class, region_id its school.
            1 => rel.teaching.push(Teaching {
                assignment: AssignmentId(req("school_id")?),
                class: ClassId(req("municipality_id")?),
                school: SchoolId(req("region_id")?),
            }),
            // school_id the class.
            2 => rel.class_teacher_of.push(ClassId(req("school_id")?)),
            // school_id the child, municipality_id their active enrolments, on_date the last
            // departure.
            3 => {
                let last: Option<NaiveDate> = get(r, "on_date")?;
                rel.children.push(ChildLink {
                    child: PersonId(req("school_id")?),
                    visible_until: if req("municipality_id")? > 0 { None } else { last },
                });
            }
            // school_id the school, municipality_id the class, on_date the departure.
            4 => {
                let school = SchoolId(req("school_id")?);
                let departed: Option<NaiveDate> = get(r, "on_date")?;
                match departed {
                    Some(d) if d <= today => rel.departed_from.push((school, d)),
                    _ => rel.enrolled_in.push((school, ClassId(req("municipality_id")?))),
                }
            }
            other => return Err(corrupt("relations.kind", &other.to_string())),
        }
    }
    Ok(rel)
}

/// [`PerfStore::find_session_with_person`], the same statement on both backends.
pub(crate) async fn find_session_with_person(
    store: &DbStore,
    id_hash: &str,
    notices_since: i64,
    today: NaiveDate,
) -> StoreResult<Option<SessionWithPerson>> {
    let rows = sqlx::query(&SESSION_WITH_PERSON)
        .bind(id_hash)
        .bind(notices_since)
        .bind(today)
        .fetch_all(store.reader())
        .await
        .map_err(map_err)?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    Ok(Some(SessionWithPerson {
        session: session_from(first)?,
        person: person_from(first)?,
        has_notices: get(first, "has_notices")?,
        relations: relations_from(&rows, today)?,
    }))
}
