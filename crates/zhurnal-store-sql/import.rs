//! [`ImportStore`] on both backends (the SQL is the same text
//! apart from the compaction statements).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{Datelike, NaiveDate};
use sqlx::Row;
use zhurnal_domain::{PersonId, SchoolId};
use zhurnal_store::batch::*;
use zhurnal_store::import::{
    BFinalMark, BMarkChange, DestructionAct, ImportApplied, ImportRunRow, ImportSession,
    ImportStore, NewDestructionAct, NewImportRun, PurgeCandidate, PurgeCounts, PurgeScope,
};
use zhurnal_store::{NewAudit, StoreError, StoreResult};

use crate::backend::{Db, DbConn, DbRow, DbStore};
use crate::{append_audit_in, map_err};

fn get<'r, T>(r: &'r DbRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Db> + sqlx::Type<Db>,
{
    r.try_get(col).map_err(map_err)
}

fn small(v: i64, what: &str) -> StoreResult<u8> {
    u8::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what}: {v}")))
}

/// Persons the export of school `$1` mentions (students, their parents, staff, authors).
const SCHOOL_PERSONS: &str = "SELECT student_id AS pid FROM enrolments WHERE school_id = $1 \
    UNION SELECT g.parent_id FROM guardianships g JOIN enrolments e ON e.student_id = g.child_id WHERE e.school_id = $1 \
    UNION SELECT person_id FROM staff_roles sr WHERE sr.revoked_at IS NULL AND (sr.school_id = $1 \
        OR sr.municipality_id = (SELECT municipality_id FROM schools WHERE id = $1) \
        OR sr.region_id = (SELECT m.region_id FROM schools s JOIN municipalities m ON m.id = s.municipality_id WHERE s.id = $1)) \
    UNION SELECT a.teacher_id FROM assignments a JOIN classes c ON c.id = a.class_id WHERE c.school_id = $1 \
    UNION SELECT class_teacher_id FROM classes WHERE school_id = $1 AND class_teacher_id IS NOT NULL \
    UNION SELECT su.substitute_id FROM substitutions su JOIN timetable_slots ts ON ts.id = su.slot_id \
        JOIN assignments a ON a.id = ts.assignment_id JOIN classes c ON c.id = a.class_id WHERE c.school_id = $1 \
    UNION SELECT m.author_id FROM marks m JOIN lessons l ON l.id = m.lesson_id JOIN assignments a ON a.id = l.assignment_id \
        JOIN classes c ON c.id = a.class_id WHERE c.school_id = $1 \
    UNION SELECT at.author_id FROM attendance at JOIN lessons l ON l.id = at.lesson_id JOIN assignments a ON a.id = l.assignment_id \
        JOIN classes c ON c.id = a.class_id WHERE c.school_id = $1";

const LESSONS_OF_SCHOOL: &str = "FROM lessons l JOIN assignments a ON a.id = l.assignment_id \
    JOIN classes c ON c.id = a.class_id WHERE c.school_id = $1";

/// A lesson's exchange id: its own, or one derived from the row for lessons held in Zhurnal.
const LESSON_EXT: &str = "COALESCE(l.external_id, 'zhurnal-lesson-' || l.id)";

async fn count(conn: &mut DbConn, sql: &str, person: i64) -> StoreResult<u64> {
    let done = sqlx::query(sql).bind(person).execute(&mut *conn).await.map_err(map_err)?;
    Ok(done.rows_affected())
}

/// The statements of one person's purge, shared by both scopes where they agree.
async fn purge_one(
    conn: &mut DbConn,
    person: i64,
    scope: PurgeScope,
    at: i64,
    n: &mut PurgeCounts,
) -> StoreResult<()> {
    n.other += count(
        conn,
        "DELETE FROM mark_history WHERE mark_id IN (SELECT id FROM marks WHERE student_id = $1)",
        person,
    )
    .await?;
    n.marks += count(conn, "DELETE FROM marks WHERE student_id = $1", person).await?;
    n.attendance += count(conn, "DELETE FROM attendance WHERE student_id = $1", person).await?;
    n.links += count(conn, "DELETE FROM group_members WHERE student_id = $1", person).await?;
    n.links +=
        count(conn, "DELETE FROM guardianships WHERE parent_id = $1 OR child_id = $1", person)
            .await?;
    n.sessions += count(conn, "DELETE FROM sessions WHERE person_id = $1", person).await?;
    n.other +=
        count(conn, "DELETE FROM diary_visits WHERE viewer_id = $1 OR student_id = $1", person)
            .await?;
    n.other += count(conn, "DELETE FROM security_notices WHERE person_id = $1", person).await?;
    count(
        conn,
        "UPDATE security_incidents SET subject_person_id = NULL WHERE subject_person_id = $1",
        person,
    )
    .await?;
    match scope {
        PurgeScope::Full => {
            n.other += count(conn, "DELETE FROM final_marks WHERE student_id = $1", person).await?;
            n.enrolments +=
                count(conn, "DELETE FROM enrolments WHERE student_id = $1", person).await?;
            count(conn, "UPDATE staff_roles SET granted_by = NULL WHERE granted_by = $1", person)
                .await?;
            n.other += count(conn, "DELETE FROM staff_roles WHERE person_id = $1", person).await?;
            n.persons += count(conn, "DELETE FROM persons WHERE id = $1", person).await?;
        }
        PurgeScope::KeepArchive => {
            let done = sqlx::query(
                "UPDATE persons SET phone = NULL, email = NULL, snils_hmac = NULL, snils_cipher = NULL, \
                 esia_oid = NULL, account_state = 'blocked', state_reason = 'retention', \
                 journal_purged_at = COALESCE(journal_purged_at, $2) WHERE id = $1",
            )
            .bind(person)
            .bind(at)
            .execute(&mut *conn)
            .await
            .map_err(map_err)?;
            n.persons_archived += done.rows_affected();
        }
    }
    Ok(())
}

fn run_from(r: &DbRow) -> StoreResult<ImportRunRow> {
    let schools: String = get(r, "schools")?;
    Ok(ImportRunRow {
        id: get(r, "id")?,
        at: get(r, "at")?,
        format: get(r, "format")?,
        source_name: get(r, "source_name")?,
        source_sha256: get(r, "source_sha256")?,
        schools: serde_json::from_str(&schools)
            .map_err(|e| StoreError::Corrupt(format!("import_runs.schools: {e}")))?,
        inserted: get::<i64>(r, "inserted")?.max(0) as u64,
        updated: get::<i64>(r, "updated")?.max(0) as u64,
        unchanged: get::<i64>(r, "unchanged")?.max(0) as u64,
        source_purged_at: get(r, "source_purged_at")?,
        act_number: get(r, "act_number")?,
    })
}

fn act_from(r: &DbRow) -> StoreResult<DestructionAct> {
    let details: String = get(r, "details")?;
    Ok(DestructionAct {
        id: get(r, "id")?,
        number: get(r, "number")?,
        at: get(r, "at")?,
        reason: get(r, "reason")?,
        actor_id: get::<Option<i64>>(r, "actor_id")?.map(PersonId),
        actor_label: get(r, "actor_label")?,
        details: serde_json::from_str(&details)
            .map_err(|e| StoreError::Corrupt(format!("destruction_acts.details: {e}")))?,
    })
}

const ACT_COLS: &str = "id, number, at, reason, actor_id, actor_label, details";
const RUN_COLS: &str = "id, at, format, source_name, source_sha256, schools, inserted, updated, \
    unchanged, source_purged_at, act_number";

#[async_trait]
impl ImportStore for DbStore {
    async fn export_school(&self, school: SchoolId) -> StoreResult<Batch> {
        let db = self.reader();
        let sid = school.0;
        let mut b = Batch::default();
        let s = sqlx::query(
            "SELECT s.external_id, s.name, s.short_name, m.external_id AS m_ext, m.name AS m_name, \
             r.external_id AS r_ext, r.name AS r_name FROM schools s \
             JOIN municipalities m ON m.id = s.municipality_id JOIN regions r ON r.id = m.region_id \
             WHERE s.id = $1",
        )
        .bind(sid)
        .fetch_one(db)
        .await
        .map_err(map_err)?;
        let school_ext: String = get(&s, "external_id")?;
        b.regions.push(BRegion { external_id: get(&s, "r_ext")?, name: get(&s, "r_name")? });
        b.municipalities.push(BMunicipality {
            external_id: get(&s, "m_ext")?,
            region: get(&s, "r_ext")?,
            name: get(&s, "m_name")?,
        });
        b.schools.push(BSchool {
            external_id: school_ext.clone(),
            municipality: get(&s, "m_ext")?,
            name: get(&s, "name")?,
            short_name: get(&s, "short_name")?,
        });
        for r in sqlx::query(
            "SELECT external_id, name, starts_on, ends_on FROM academic_years WHERE school_id = $1 ORDER BY id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.years.push(BYear {
                external_id: get(&r, "external_id")?,
                school: school_ext.clone(),
                name: get(&r, "name")?,
                starts_on: get(&r, "starts_on")?,
                ends_on: get(&r, "ends_on")?,
            });
        }
        for r in sqlx::query(
            "SELECT p.external_id, y.external_id AS y_ext, p.scheme, p.number, p.starts_on, p.ends_on, p.closed_on \
             FROM periods p JOIN academic_years y ON y.id = p.academic_year_id WHERE y.school_id = $1 ORDER BY p.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.periods.push(BPeriod {
                external_id: get(&r, "external_id")?,
                year: get(&r, "y_ext")?,
                scheme: get(&r, "scheme")?,
                number: small(get(&r, "number")?, "periods.number")?,
                starts_on: get(&r, "starts_on")?,
                ends_on: get(&r, "ends_on")?,
                closed_on: get(&r, "closed_on")?,
            });
        }
        for r in sqlx::query(
            "SELECT external_id, name, grading FROM subjects WHERE school_id = $1 ORDER BY id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.subjects.push(BSubject {
                external_id: get(&r, "external_id")?,
                school: school_ext.clone(),
                name: get(&r, "name")?,
                grading: get(&r, "grading")?,
            });
        }
        for r in sqlx::query(
            "SELECT code, name, weight FROM work_types WHERE school_id = $1 ORDER BY id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.work_types.push(BWorkType {
                school: school_ext.clone(),
                code: get(&r, "code")?,
                name: get(&r, "name")?,
                weight: small(get(&r, "weight")?, "work_types.weight")?,
            });
        }
        let persons_sql = format!(
            "SELECT external_id, uid, last_name, first_name, middle_name, birth_date, gender, \
             snils_hmac, snils_cipher, phone, email FROM persons WHERE id IN ({SCHOOL_PERSONS}) ORDER BY id"
        );
        for r in sqlx::query(&persons_sql).bind(sid).fetch_all(db).await.map_err(map_err)? {
            b.persons.push(BPerson {
                external_id: get(&r, "external_id")?,
                uid: get(&r, "uid")?,
                last_name: get(&r, "last_name")?,
                first_name: get(&r, "first_name")?,
                middle_name: get(&r, "middle_name")?,
                birth_date: get(&r, "birth_date")?,
                gender: get(&r, "gender")?,
                snils_hmac: get(&r, "snils_hmac")?,
                snils_cipher: get(&r, "snils_cipher")?,
                phone: get(&r, "phone")?,
                email: get(&r, "email")?,
            });
        }
        for r in sqlx::query(
            "SELECT c.external_id, y.external_id AS y_ext, c.grade, c.letter, t.external_id AS t_ext, \
             c.period_scheme, c.newly_formed FROM classes c JOIN academic_years y ON y.id = c.academic_year_id \
             LEFT JOIN persons t ON t.id = c.class_teacher_id WHERE c.school_id = $1 ORDER BY c.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.classes.push(BClass {
                external_id: get(&r, "external_id")?,
                school: school_ext.clone(),
                year: get(&r, "y_ext")?,
                grade: small(get(&r, "grade")?, "classes.grade")?,
                letter: get(&r, "letter")?,
                class_teacher: get(&r, "t_ext")?,
                period_scheme: get(&r, "period_scheme")?,
                newly_formed: get(&r, "newly_formed")?,
            });
        }
        let mut members: HashMap<String, Vec<String>> = HashMap::new();
        for r in sqlx::query(
            "SELECT g.external_id AS g_ext, p.external_id AS p_ext FROM group_members gm \
             JOIN class_groups g ON g.id = gm.group_id JOIN classes c ON c.id = g.class_id \
             JOIN persons p ON p.id = gm.student_id WHERE c.school_id = $1 ORDER BY g.id, p.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            members.entry(get(&r, "g_ext")?).or_default().push(get(&r, "p_ext")?);
        }
        for r in sqlx::query(
            "SELECT g.external_id, c.external_id AS c_ext, g.name FROM class_groups g \
             JOIN classes c ON c.id = g.class_id WHERE c.school_id = $1 ORDER BY g.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            let ext: String = get(&r, "external_id")?;
            b.groups.push(BGroup {
                members: members.remove(&ext).unwrap_or_default(),
                external_id: ext,
                class: get(&r, "c_ext")?,
                name: get(&r, "name")?,
            });
        }
        for r in sqlx::query(
            "SELECT e.external_id, p.external_id AS p_ext, c.external_id AS c_ext, e.admitted_on, \
             e.departed_on, e.departure_kind, e.departure_reason FROM enrolments e \
             JOIN persons p ON p.id = e.student_id JOIN classes c ON c.id = e.class_id \
             WHERE e.school_id = $1 ORDER BY e.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.enrolments.push(BEnrolment {
                external_id: get(&r, "external_id")?,
                student: get(&r, "p_ext")?,
                class: get(&r, "c_ext")?,
                admitted_on: get(&r, "admitted_on")?,
                departed_on: get(&r, "departed_on")?,
                departure_kind: get(&r, "departure_kind")?,
                departure_reason: get(&r, "departure_reason")?,
            });
        }
        for r in sqlx::query(
            "SELECT DISTINCT pp.external_id AS parent, cp.external_id AS child, pp.id AS pid, cp.id AS cid \
             FROM guardianships g JOIN persons pp ON pp.id = g.parent_id JOIN persons cp ON cp.id = g.child_id \
             WHERE g.child_id IN (SELECT student_id FROM enrolments WHERE school_id = $1) ORDER BY pp.id, cp.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.guardianships
                .push(BGuardianship { parent: get(&r, "parent")?, child: get(&r, "child")? });
        }
        for r in sqlx::query(
            "SELECT p.external_id AS p_ext, sr.role, s.external_id AS s_ext, m.external_id AS m_ext, \
             rg.external_id AS r_ext FROM staff_roles sr JOIN persons p ON p.id = sr.person_id \
             LEFT JOIN schools s ON s.id = sr.school_id LEFT JOIN municipalities m ON m.id = sr.municipality_id \
             LEFT JOIN regions rg ON rg.id = sr.region_id WHERE sr.revoked_at IS NULL AND (sr.school_id = $1 \
             OR sr.municipality_id = (SELECT municipality_id FROM schools WHERE id = $1) \
             OR sr.region_id = (SELECT mm.region_id FROM schools ss JOIN municipalities mm ON mm.id = ss.municipality_id WHERE ss.id = $1)) \
             ORDER BY sr.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            let scope: Option<String> = get::<Option<String>>(&r, "s_ext")?
                .or(get::<Option<String>>(&r, "m_ext")?)
                .or(get::<Option<String>>(&r, "r_ext")?);
            b.staff_roles.push(BStaffRole {
                person: get(&r, "p_ext")?,
                role: get(&r, "role")?,
                scope: scope.ok_or_else(|| StoreError::Corrupt("staff_roles: без области".into()))?,
            });
        }
        for r in sqlx::query(
            "SELECT a.external_id, t.external_id AS t_ext, c.external_id AS c_ext, g.external_id AS g_ext, \
             sj.external_id AS s_ext FROM assignments a JOIN persons t ON t.id = a.teacher_id \
             JOIN classes c ON c.id = a.class_id LEFT JOIN class_groups g ON g.id = a.group_id \
             JOIN subjects sj ON sj.id = a.subject_id WHERE c.school_id = $1 ORDER BY a.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.assignments.push(BAssignment {
                external_id: get(&r, "external_id")?,
                teacher: get(&r, "t_ext")?,
                class: get(&r, "c_ext")?,
                group: get(&r, "g_ext")?,
                subject: get(&r, "s_ext")?,
            });
        }
        for r in sqlx::query(
            "SELECT ts.external_id, a.external_id AS a_ext, ts.weekday, ts.lesson_number, ts.room \
             FROM timetable_slots ts JOIN assignments a ON a.id = ts.assignment_id \
             JOIN classes c ON c.id = a.class_id WHERE c.school_id = $1 ORDER BY ts.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.timetable.push(BSlot {
                external_id: get(&r, "external_id")?,
                assignment: get(&r, "a_ext")?,
                weekday: small(get(&r, "weekday")?, "timetable_slots.weekday")?,
                lesson_number: small(get(&r, "lesson_number")?, "timetable_slots.lesson_number")?,
                room: get(&r, "room")?,
            });
        }
        for r in sqlx::query(
            "SELECT ts.external_id AS slot, su.on_date, p.external_id AS p_ext, su.reason \
             FROM substitutions su JOIN timetable_slots ts ON ts.id = su.slot_id \
             JOIN assignments a ON a.id = ts.assignment_id JOIN classes c ON c.id = a.class_id \
             JOIN persons p ON p.id = su.substitute_id WHERE c.school_id = $1 ORDER BY su.id",
        )
        .bind(sid)
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            b.substitutions.push(BSubstitution {
                slot: get(&r, "slot")?,
                date: get(&r, "on_date")?,
                substitute: get(&r, "p_ext")?,
                reason: get(&r, "reason")?,
            });
        }
        let lessons_sql = format!(
            "SELECT {LESSON_EXT} AS l_ext, a.external_id AS a_ext, l.on_date, l.lesson_number, l.topic, l.homework \
             {LESSONS_OF_SCHOOL} ORDER BY l.id"
        );
        for r in sqlx::query(&lessons_sql).bind(sid).fetch_all(db).await.map_err(map_err)? {
            b.lessons.push(BLesson {
                external_id: get(&r, "l_ext")?,
                assignment: get(&r, "a_ext")?,
                date: get(&r, "on_date")?,
                lesson_number: small(get(&r, "lesson_number")?, "lessons.lesson_number")?,
                topic: get(&r, "topic")?,
                homework: get(&r, "homework")?,
            });
        }
        let marks_sql = format!(
            "SELECT COALESCE(m.external_id, 'zhurnal-mark-' || m.id) AS m_ext, {LESSON_EXT} AS l_ext, \
             sp.external_id AS s_ext, m.value, wt.code, m.comment, ap.external_id AS a_ext, m.created_at \
             FROM marks m JOIN lessons l ON l.id = m.lesson_id JOIN assignments a ON a.id = l.assignment_id \
             JOIN classes c ON c.id = a.class_id JOIN persons sp ON sp.id = m.student_id \
             JOIN persons ap ON ap.id = m.author_id JOIN work_types wt ON wt.id = m.work_type_id \
             WHERE c.school_id = $1 AND m.deleted_at IS NULL ORDER BY m.id"
        );
        for r in sqlx::query(&marks_sql).bind(sid).fetch_all(db).await.map_err(map_err)? {
            b.marks.push(BMark {
                external_id: get(&r, "m_ext")?,
                lesson: get(&r, "l_ext")?,
                student: get(&r, "s_ext")?,
                value: get(&r, "value")?,
                work_type: get(&r, "code")?,
                comment: get(&r, "comment")?,
                author: get(&r, "a_ext")?,
                created_at: get(&r, "created_at")?,
            });
        }
        let attendance_sql = format!(
            "SELECT {LESSON_EXT} AS l_ext, sp.external_id AS s_ext, at.kind, ap.external_id AS a_ext \
             FROM attendance at JOIN lessons l ON l.id = at.lesson_id JOIN assignments a ON a.id = l.assignment_id \
             JOIN classes c ON c.id = a.class_id JOIN persons sp ON sp.id = at.student_id \
             JOIN persons ap ON ap.id = at.author_id WHERE c.school_id = $1 ORDER BY l.id, sp.id"
        );
        for r in sqlx::query(&attendance_sql).bind(sid).fetch_all(db).await.map_err(map_err)? {
            b.attendance.push(BAttendance {
                lesson: get(&r, "l_ext")?,
                student: get(&r, "s_ext")?,
                kind: get(&r, "kind")?,
                author: get(&r, "a_ext")?,
            });
        }
        Ok(b)
    }

    async fn list_retention_candidates(
        &self,
        journal_before: NaiveDate,
        archive_before: NaiveDate,
    ) -> StoreResult<Vec<PurgeCandidate>> {
        let db = self.reader();
        let rows = sqlx::query(
            "SELECT p.id, p.uid, p.journal_purged_at, \
             CAST(CASE WHEN MAX(e.departed_on) < $2 THEN 1 ELSE 0 END AS BIGINT) AS full_purge \
             FROM persons p JOIN enrolments e ON e.student_id = p.id \
             GROUP BY p.id, p.uid, p.journal_purged_at \
             HAVING COUNT(e.departed_on) = COUNT(*) AND MAX(e.departed_on) < $1 ORDER BY p.id",
        )
        .bind(journal_before)
        .bind(archive_before)
        .fetch_all(db)
        .await
        .map_err(map_err)?;
        let mut out = Vec::new();
        let mut full_students = HashSet::new();
        for r in rows {
            let id: i64 = get(&r, "id")?;
            let full = get::<i64>(&r, "full_purge")? == 1;
            let already: Option<i64> = get(&r, "journal_purged_at")?;
            if full {
                full_students.insert(id);
            } else if already.is_some() {
                continue;
            }
            out.push(PurgeCandidate {
                person_id: PersonId(id),
                uid: get(&r, "uid")?,
                kind: "student".into(),
                scope: if full { PurgeScope::Full } else { PurgeScope::KeepArchive },
            });
        }
        // Parents whose every child goes entirely and who hold no role and no enrolment.
        let mut children_of: HashMap<i64, (String, Vec<i64>)> = HashMap::new();
        for r in sqlx::query(
            "SELECT g.parent_id, p.uid, g.child_id FROM guardianships g JOIN persons p ON p.id = g.parent_id \
             WHERE NOT EXISTS (SELECT 1 FROM staff_roles sr WHERE sr.person_id = g.parent_id) \
             AND NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.student_id = g.parent_id) ORDER BY g.parent_id",
        )
        .fetch_all(db)
        .await
        .map_err(map_err)?
        {
            let entry = children_of
                .entry(get(&r, "parent_id")?)
                .or_insert_with(|| (String::new(), Vec::new()));
            entry.0 = get(&r, "uid")?;
            entry.1.push(get(&r, "child_id")?);
        }
        let mut parents: Vec<(i64, String)> = children_of
            .into_iter()
            .filter(|(_, (_, kids))| kids.iter().all(|k| full_students.contains(k)))
            .map(|(id, (uid, _))| (id, uid))
            .collect();
        parents.sort();
        for (id, uid) in parents {
            out.push(PurgeCandidate {
                person_id: PersonId(id),
                uid,
                kind: "parent".into(),
                scope: PurgeScope::Full,
            });
        }
        Ok(out)
    }

    async fn purge_persons(
        &self,
        persons: &[(PersonId, PurgeScope)],
        audit: NewAudit,
    ) -> StoreResult<PurgeCounts> {
        let mut tx = self.write_tx().await?;
        let mut n = PurgeCounts::default();
        // Parents first would leave nothing to link; order does not matter within one transaction.
        for (p, scope) in persons {
            purge_one(&mut tx, p.0, *scope, audit.at, &mut n).await?;
        }
        let audit = NewAudit {
            details: serde_json::json!({ "counts": n, "extra": audit.details }),
            ..audit
        };
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn compact_after_purge(&self) -> StoreResult<String> {
        self.compact().await
    }

    async fn record_import_run(&self, run: &NewImportRun) -> StoreResult<i64> {
        let mut conn = self.writer().acquire().await.map_err(map_err)?;
        run_in(&mut conn, run).await
    }

    async fn mark_source_purged(
        &self,
        source_sha256: &str,
        at: i64,
        act_number: &str,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE import_runs SET source_purged_at = $2, act_number = $3 \
             WHERE source_sha256 = $1 AND source_purged_at IS NULL",
        )
        .bind(source_sha256)
        .bind(at)
        .bind(act_number)
        .execute(self.writer())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    async fn list_import_runs(&self) -> StoreResult<Vec<ImportRunRow>> {
        let sql = format!("SELECT {RUN_COLS} FROM import_runs ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(self.reader()).await.map_err(map_err)?;
        rows.iter().map(run_from).collect()
    }

    async fn insert_destruction_act(
        &self,
        act: &NewDestructionAct,
        audit: NewAudit,
    ) -> StoreResult<DestructionAct> {
        let mut tx = self.write_tx().await?;
        let year =
            chrono::DateTime::from_timestamp_micros(act.at).map(|d| d.year()).unwrap_or(1970);
        let prefix = format!("А-{year}-");
        let row = sqlx::query("SELECT COUNT(*) AS n FROM destruction_acts WHERE number LIKE $1")
            .bind(format!("{prefix}%"))
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let number = format!("{prefix}{:04}", get::<i64>(&row, "n")? + 1);
        let sql = format!(
            "INSERT INTO destruction_acts (number, at, reason, actor_id, actor_label, details) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {ACT_COLS}"
        );
        let row = sqlx::query(&sql)
            .bind(&number)
            .bind(act.at)
            .bind(&act.reason)
            .bind(act.actor_id.map(|p| p.0))
            .bind(&act.actor_label)
            .bind(act.details.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let stored = act_from(&row)?;
        let audit = audit.target("destruction_act", &number);
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(stored)
    }

    async fn list_destruction_acts(&self) -> StoreResult<Vec<DestructionAct>> {
        let sql = format!("SELECT {ACT_COLS} FROM destruction_acts ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(self.reader()).await.map_err(map_err)?;
        rows.iter().map(act_from).collect()
    }

    async fn find_destruction_act(&self, number: &str) -> StoreResult<Option<DestructionAct>> {
        let sql = format!("SELECT {ACT_COLS} FROM destruction_acts WHERE number = $1");
        let row =
            sqlx::query(&sql).bind(number).fetch_optional(self.reader()).await.map_err(map_err)?;
        row.as_ref().map(act_from).transpose()
    }

    async fn export_final_marks(&self, school: SchoolId) -> StoreResult<Vec<BFinalMark>> {
        let rows = sqlx::query(
            "SELECT p.external_id AS student, a.external_id AS assignment, f.kind, \
             pe.external_id AS period, f.value, au.external_id AS author, f.set_at \
             FROM final_marks f JOIN assignments a ON a.id = f.assignment_id \
             JOIN classes c ON c.id = a.class_id JOIN persons p ON p.id = f.student_id \
             JOIN persons au ON au.id = f.author_id LEFT JOIN periods pe ON pe.id = f.period_id \
             WHERE c.school_id = $1 ORDER BY a.external_id, p.external_id, f.kind, pe.external_id",
        )
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(BFinalMark {
                    student: get(r, "student")?,
                    assignment: get(r, "assignment")?,
                    kind: get(r, "kind")?,
                    period: get(r, "period")?,
                    value: get(r, "value")?,
                    author: get(r, "author")?,
                    set_at: get(r, "set_at")?,
                })
            })
            .collect()
    }

    async fn export_mark_history(&self, school: SchoolId) -> StoreResult<Vec<BMarkChange>> {
        let rows = sqlx::query(
            "SELECT COALESCE(m.external_id, 'zhurnal-mark-' || m.id) AS mark, h.changed_at, \
             p.external_id AS changed_by, h.old_value, h.new_value, ow.code AS old_wt, \
             nw.code AS new_wt, h.reason \
             FROM mark_history h JOIN marks m ON m.id = h.mark_id \
             JOIN lessons l ON l.id = m.lesson_id JOIN assignments a ON a.id = l.assignment_id \
             JOIN classes c ON c.id = a.class_id JOIN persons p ON p.id = h.changed_by \
             LEFT JOIN work_types ow ON ow.id = h.old_work_type_id \
             LEFT JOIN work_types nw ON nw.id = h.new_work_type_id \
             WHERE c.school_id = $1 ORDER BY mark, h.changed_at, h.id",
        )
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(BMarkChange {
                    mark: get(r, "mark")?,
                    changed_at: get(r, "changed_at")?,
                    changed_by: get(r, "changed_by")?,
                    old_value: get(r, "old_value")?,
                    new_value: get(r, "new_value")?,
                    old_work_type: get(r, "old_wt")?,
                    new_work_type: get(r, "new_wt")?,
                    reason: get(r, "reason")?,
                })
            })
            .collect()
    }

    async fn begin_import(&self, at: i64) -> StoreResult<Box<dyn ImportSession>> {
        let tx = self.write_tx().await?;
        Ok(Box::new(Session {
            tx,
            sealer: self.sealer.clone(),
            at,
            batch: BatchStats::default(),
            finals: BatchStats::default(),
            history: BatchStats::default(),
            failed: false,
        }))
    }
}

/// The row id of an external id in `table`; an unknown one is a reference error.
async fn id_of(conn: &mut DbConn, table: &str, kind: &'static str, ext: &str) -> StoreResult<i64> {
    let sql = format!("SELECT id FROM {table} WHERE external_id = $1");
    let row = sqlx::query(&sql).bind(ext).fetch_optional(&mut *conn).await.map_err(map_err)?;
    match row {
        Some(r) => get(&r, "id"),
        None => Err(StoreError::UnknownReference { kind, external_id: ext.to_string() }),
    }
}

/// Adds a run to the import register.
async fn run_in(conn: &mut DbConn, run: &NewImportRun) -> StoreResult<i64> {
    let schools =
        serde_json::to_string(&run.schools).map_err(|e| StoreError::Other(Box::new(e)))?;
    let row = sqlx::query(
        "INSERT INTO import_runs (at, format, source_name, source_sha256, schools, inserted, updated, \
         unchanged, actor_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
    )
    .bind(run.at)
    .bind(&run.format)
    .bind(&run.source_name)
    .bind(&run.source_sha256)
    .bind(schools)
    .bind(run.inserted as i64)
    .bind(run.updated as i64)
    .bind(run.unchanged as i64)
    .bind(run.actor_id.map(|p| p.0))
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    get(&row, "id")
}

/// Upserts period, annual and final marks by (student, assignment, kind, period); a row
/// equal to the stored one counts as unchanged.
async fn final_marks_in(conn: &mut DbConn, rows: &[BFinalMark]) -> StoreResult<BatchStats> {
    let mut stats = BatchStats::default();
    for f in rows {
        let student = id_of(conn, "persons", "человек", &f.student).await?;
        let assignment = id_of(conn, "assignments", "нагрузка", &f.assignment).await?;
        let author = id_of(conn, "persons", "человек", &f.author).await?;
        let period = match &f.period {
            Some(p) => Some(id_of(conn, "periods", "период", p).await?),
            None => None,
        };
        // period_id is NULL for annual and final marks: compare through COALESCE, ids
        // are positive.
        let existing = sqlx::query(
            "SELECT id, value, author_id, set_at FROM final_marks WHERE student_id = $1 \
             AND assignment_id = $2 AND kind = $3 AND COALESCE(period_id, 0) = $4",
        )
        .bind(student)
        .bind(assignment)
        .bind(&f.kind)
        .bind(period.unwrap_or(0))
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        match existing {
            Some(e) => {
                let same = get::<String>(&e, "value")? == f.value
                    && get::<i64>(&e, "author_id")? == author
                    && get::<i64>(&e, "set_at")? == f.set_at;
                if same {
                    stats.unchanged += 1;
                    continue;
                }
                sqlx::query(
                    "UPDATE final_marks SET value = $2, author_id = $3, set_at = $4 WHERE id = $1",
                )
                .bind(get::<i64>(&e, "id")?)
                .bind(&f.value)
                .bind(author)
                .bind(f.set_at)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
                stats.updated += 1;
            }
            None => {
                sqlx::query(
                    "INSERT INTO final_marks (student_id, assignment_id, kind, period_id, value, \
                     author_id, set_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(student)
                .bind(assignment)
                .bind(&f.kind)
                .bind(period)
                .bind(&f.value)
                .bind(author)
                .bind(f.set_at)
                .execute(&mut *conn)
                .await
                .map_err(map_err)?;
                stats.inserted += 1;
            }
        }
    }
    Ok(stats)
}

/// Adds the history lines not yet stored (a line is identified by mark, time and who
/// changed it).
async fn mark_history_in(conn: &mut DbConn, rows: &[BMarkChange]) -> StoreResult<BatchStats> {
    let mut stats = BatchStats::default();
    for h in rows {
        let found = sqlx::query(
            "SELECT m.id, c.school_id FROM marks m JOIN lessons l ON l.id = m.lesson_id \
             JOIN assignments a ON a.id = l.assignment_id JOIN classes c ON c.id = a.class_id \
             WHERE m.external_id = $1",
        )
        .bind(&h.mark)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        let Some(found) = found else {
            return Err(StoreError::UnknownReference {
                kind: "отметка",
                external_id: h.mark.clone(),
            });
        };
        let (mark, school): (i64, i64) = (get(&found, "id")?, get(&found, "school_id")?);
        let by = id_of(conn, "persons", "человек", &h.changed_by).await?;
        let exists = sqlx::query(
            "SELECT id FROM mark_history WHERE mark_id = $1 AND changed_at = $2 AND changed_by = $3",
        )
        .bind(mark)
        .bind(h.changed_at)
        .bind(by)
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
        if exists.is_some() {
            stats.unchanged += 1;
            continue;
        }
        let mut wt = [None, None];
        for (slot, code) in wt.iter_mut().zip([&h.old_work_type, &h.new_work_type]) {
            if let Some(code) = code {
                let r = sqlx::query("SELECT id FROM work_types WHERE school_id = $1 AND code = $2")
                    .bind(school)
                    .bind(code)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(map_err)?;
                let Some(r) = r else {
                    return Err(StoreError::UnknownReference {
                        kind: "вид работы",
                        external_id: code.clone(),
                    });
                };
                *slot = Some(get::<i64>(&r, "id")?);
            }
        }
        sqlx::query(
            "INSERT INTO mark_history (mark_id, changed_at, changed_by, old_value, new_value, \
             old_work_type_id, new_work_type_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(mark)
        .bind(h.changed_at)
        .bind(by)
        .bind(&h.old_value)
        .bind(&h.new_value)
        .bind(wt[0])
        .bind(wt[1])
        .bind(&h.reason)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
        stats.inserted += 1;
    }
    Ok(stats)
}

/// [`ImportSession`]: the open write transaction and the counts so far.
struct Session {
    tx: sqlx::Transaction<'static, Db>,
    sealer: std::sync::Arc<dyn zhurnal_store::AuditSealer>,
    at: i64,
    batch: BatchStats,
    finals: BatchStats,
    history: BatchStats,
    /// A part failed half-way: its earlier statements are in the transaction, so the only way
    /// out is the rollback.
    failed: bool,
}

/// What a session that had a failed part answers to anything but being dropped.
fn failed_session() -> StoreError {
    StoreError::Conflict { constraint: "import_part_failed".into() }
}

fn add(to: &mut BatchStats, s: &BatchStats) {
    to.inserted += s.inserted;
    to.updated += s.updated;
    to.unchanged += s.unchanged;
    to.roster_changes += s.roster_changes;
}

#[async_trait]
impl ImportSession for Session {
    async fn apply(
        &mut self,
        batch: &Batch,
        final_marks: &[BFinalMark],
        mark_history: &[BMarkChange],
    ) -> StoreResult<BatchStats> {
        if self.failed {
            return Err(failed_session());
        }
        // Until all three succeed the part counts as failed (an error returns early).
        self.failed = true;
        let b = crate::base::apply_batch_in(&mut self.tx, batch).await?;
        let f = final_marks_in(&mut self.tx, final_marks).await?;
        let h = mark_history_in(&mut self.tx, mark_history).await?;
        self.failed = false;
        add(&mut self.batch, &b);
        add(&mut self.finals, &f);
        add(&mut self.history, &h);
        let mut part = b;
        add(&mut part, &f);
        add(&mut part, &h);
        Ok(part)
    }

    async fn commit(
        self: Box<Self>,
        run: NewImportRun,
        audit: NewAudit,
    ) -> StoreResult<ImportApplied> {
        let Session { mut tx, sealer, at, batch, finals, history, failed } = *self;
        if failed {
            return Err(failed_session());
        }
        crate::base::stamp_new_persons(&mut tx, at).await?;
        let rosters_changed = batch.roster_changes > 0;
        let mut stats = batch;
        add(&mut stats, &finals);
        add(&mut stats, &history);
        let run = NewImportRun {
            inserted: stats.inserted,
            updated: stats.updated,
            unchanged: stats.unchanged,
            ..run
        };
        let run_id = run_in(&mut tx, &run).await?;
        // A roster changed (people, classes, enrolments, links, assignments): the schools'
        // class chats (Сферум) are synced, queued in this transaction. Marks, lessons and
        // timetables do not change a chat; a re-run that changed nothing queues nothing.
        let mut chat_syncs = 0;
        if rosters_changed {
            let mut schools = Vec::with_capacity(run.schools.len());
            for chunk in run.schools.chunks(crate::batch::MAX_ROWS) {
                let sql = format!(
                    "SELECT id FROM schools WHERE external_id IN ({})",
                    crate::batch::list(chunk.len(), 1)
                );
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for s in chunk {
                    q = q.bind(s);
                }
                schools.extend(q.fetch_all(&mut *tx).await.map_err(map_err)?);
            }
            let on = chrono::DateTime::from_timestamp_micros(at)
                .ok_or_else(|| StoreError::Other(format!("import time {at} out of range").into()))?
                .date_naive();
            chat_syncs =
                crate::integration::outbox_school_classes_in(&mut tx, &schools, on, at).await?;
        }
        let audit = NewAudit {
            details: serde_json::json!({
                "inserted": stats.inserted, "updated": stats.updated, "unchanged": stats.unchanged,
                "final_marks": { "inserted": finals.inserted, "updated": finals.updated, "unchanged": finals.unchanged },
                "mark_history": { "inserted": history.inserted, "unchanged": history.unchanged },
                "run_id": run_id,
                "roster_changes": stats.roster_changes,
                "chat_syncs": chat_syncs,
                "extra": audit.details,
            }),
            ..audit
        };
        append_audit_in(&mut tx, sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(ImportApplied { stats, run_id })
    }
}
