//! Area `bench`: group commit of audit records, the session with its person, and the actor's
//! relations in one statement (see `zhurnal_store::perf`).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use zhurnal_store::journal::NewMark;
use zhurnal_store::*;

use crate::{SqliteStore, audit_head, insert_audit, map_err};

#[async_trait]
impl PerfStore for SqliteStore {
    async fn append_audit_batch(&self, audits: &[NewAudit]) -> StoreResult<Vec<i64>> {
        if audits.is_empty() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        let seqs = append_audits_in(&mut tx, self.sealer.as_ref(), audits).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(seqs)
    }

    async fn find_session_with_person(
        &self,
        id_hash: &str,
        notices_since: i64,
        today: NaiveDate,
    ) -> StoreResult<Option<SessionWithPerson>> {
        crate::base::find_session_with_person(self, id_hash, notices_since, today).await
    }
}

/// Appends `audits` in order inside the caller's transaction, chained record by record as
/// [`crate::append_audit_in`] chains one. The chain head is read once: the writer connection
/// (`BEGIN IMMEDIATE`) is the caller's until commit, so nobody can append in between.
pub(crate) async fn append_audits_in(
    conn: &mut SqliteConnection,
    sealer: &dyn AuditSealer,
    audits: &[NewAudit],
) -> StoreResult<Vec<i64>> {
    let (mut seq, mut prev) = audit_head(conn).await?;
    let mut seqs = Vec::with_capacity(audits.len());
    for a in audits {
        let hash = sealer.seal(&prev, &a.canonical(seq));
        insert_audit(conn, seq, a, &prev, &hash).await?;
        seqs.push(seq);
        prev = hash;
        seq += 1;
    }
    Ok(seqs)
}

/// Everything the policy needs about a person, as one statement (the person is `{person}`, the day
/// `{today}`; `relations_sql` fills them in): one row per relation, `kind` says which (0 role
/// grant, 1 teaching, 2 class teacher, 3 child, 4 enrolment). Every kind uses the columns
/// `school_id`, `municipality_id`, `region_id` and `on_date` for its own values (see
/// `relations_from`, which reads them). `k` keeps the order of the separate queries this replaced
/// (by id).
const RELATIONS: &str = "\
SELECT 0 AS kind, role, school_id, municipality_id, region_id, NULL AS on_date, id AS k \
  FROM staff_roles WHERE person_id = {person} AND revoked_at IS NULL \
UNION ALL \
SELECT 1, NULL, t.id, t.class_id, t.school_id, NULL, t.id FROM ( \
  SELECT a.id, a.class_id, c.school_id FROM assignments a JOIN classes c ON c.id = a.class_id \
   WHERE a.teacher_id = {person} \
  UNION SELECT a.id, a.class_id, c.school_id FROM substitutions su \
   JOIN timetable_slots s ON s.id = su.slot_id JOIN assignments a ON a.id = s.assignment_id \
   JOIN classes c ON c.id = a.class_id WHERE su.substitute_id = {person} AND su.on_date = {today}) t \
UNION ALL \
SELECT 2, NULL, id, NULL, NULL, NULL, id FROM classes WHERE class_teacher_id = {person} \
UNION ALL \
SELECT 3, NULL, g.child_id, \
  (SELECT COUNT(*) FROM enrolments e WHERE e.student_id = g.child_id \
     AND (e.departed_on IS NULL OR e.departed_on > {today})), NULL, \
  (SELECT MAX(e.departed_on) FROM enrolments e WHERE e.student_id = g.child_id), g.child_id \
  FROM guardianships g WHERE g.parent_id = {person} \
UNION ALL \
SELECT 4, NULL, school_id, class_id, NULL, departed_on, id FROM enrolments \
  WHERE student_id = {person} AND admitted_on <= {today} \
";

/// [`RELATIONS`] for the person and day given as SQL expressions (parameters or subqueries),
/// unordered: callers order by `kind, k`.
pub(crate) fn relations_sql(person: &str, today: &str) -> String {
    RELATIONS.replace("{person}", person).replace("{today}", today)
}

/// A new mark, its lesson (created by the lesson's first mark) and the history record of its
/// creation. SQLite has no data-modifying CTEs, so these are three statements (PostgreSQL runs
/// one); the mark comes back from its `INSERT … RETURNING` instead of a fourth.
pub(crate) async fn insert_mark(
    conn: &mut SqliteConnection,
    m: &NewMark,
) -> StoreResult<SqliteRow> {
    let lesson = crate::journal::ensure_lesson(conn, m.lesson).await?;
    let row = sqlx::query(
        "INSERT INTO marks (lesson_id, student_id, value, work_type_id, weight, comment, author_id, \
         created_at, updated_at, external_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) \
         RETURNING id, lesson_id, student_id, value, work_type_id, weight, comment, author_id, \
         created_at, updated_at",
    )
    .bind(lesson)
    .bind(m.student.0)
    .bind(m.value.code())
    .bind(m.work_type.0)
    .bind(i64::from(m.weight))
    .bind(&m.comment)
    .bind(m.author.0)
    .bind(m.at)
    .bind(&m.external_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?;
    let id: i64 = sqlx::Row::try_get(&row, "id").map_err(map_err)?;
    sqlx::query(
        "INSERT INTO mark_history (mark_id, changed_at, changed_by, old_value, new_value, \
         old_work_type_id, new_work_type_id, reason) VALUES ($1, $2, $3, NULL, $4, NULL, $5, NULL)",
    )
    .bind(id)
    .bind(m.at)
    .bind(m.author.0)
    .bind(m.value.code())
    .bind(m.work_type.0)
    .execute(conn)
    .await
    .map_err(map_err)?;
    Ok(row)
}
