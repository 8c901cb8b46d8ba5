//! Area `bench`: group commit of audit records, the session with its person, and the actor's
//! relations in one statement (see `zhurnal_store::perf`).

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::Row;
use sqlx::postgres::{PgConnection, PgRow};
use zhurnal_store::journal::NewMark;
use zhurnal_store::*;

use crate::{AUDIT_CHAIN_LOCK, PgStore, map_err};

#[async_trait]
impl PerfStore for PgStore {
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
/// [`crate::append_audit_in`] chains one. Takes the chain lock once, before reading the head;
/// the lock is transaction-scoped, so it is held until the caller commits. Call it outside any
/// savepoint (a lock taken inside one is released when it is rolled back) and last in the
/// transaction (see `append_audit_in` on deadlocks).
pub(crate) async fn append_audits_in(
    conn: &mut PgConnection,
    sealer: &dyn AuditSealer,
    audits: &[NewAudit],
) -> StoreResult<Vec<i64>> {
    if audits.is_empty() {
        return Ok(Vec::new());
    }
    // The chain lock (see `append_audit_in`), taken once for the whole batch.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(AUDIT_CHAIN_LOCK)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await
        .map_err(map_err)?;
    let (mut seq, mut prev) = match head {
        Some(r) => (
            r.try_get::<i64, _>(0).map_err(map_err)? + 1,
            r.try_get::<Vec<u8>, _>(1).map_err(map_err)?,
        ),
        None => (1, zhurnal_store::audit::GENESIS_HASH.to_vec()),
    };
    let n = audits.len();
    let mut seqs = Vec::with_capacity(n);
    let mut prevs = Vec::with_capacity(n);
    let mut hashes = Vec::with_capacity(n);
    for a in audits {
        let hash = sealer.seal(&prev, &a.canonical(seq));
        seqs.push(seq);
        prevs.push(std::mem::replace(&mut prev, hash.clone()));
        hashes.push(hash);
        seq += 1;
    }
    let col = |f: fn(&NewAudit) -> Option<String>| audits.iter().map(f).collect::<Vec<_>>();
    // One statement for the whole batch: its text does not depend on the batch size, so it
    // stays one prepared statement.
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor_id, actor_role, session_hash, source_ip, action, \
         target_type, target_id, school_id, result, reason, details, prev_hash, hash) \
         SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
         $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], $11::text[], $12::text[], \
         $13::text[], $14::bytea[], $15::bytea[])",
    )
    .bind(&seqs)
    .bind(audits.iter().map(|a| a.at).collect::<Vec<_>>())
    .bind(audits.iter().map(|a| a.actor_id).collect::<Vec<_>>())
    .bind(col(|a| a.actor_role.clone()))
    .bind(col(|a| a.session_hash.clone()))
    .bind(col(|a| a.source_ip.clone()))
    .bind(audits.iter().map(|a| a.action.clone()).collect::<Vec<_>>())
    .bind(col(|a| a.target_type.clone()))
    .bind(col(|a| a.target_id.clone()))
    .bind(audits.iter().map(|a| a.school_id).collect::<Vec<_>>())
    .bind(audits.iter().map(|a| a.result.clone()).collect::<Vec<_>>())
    .bind(col(|a| a.reason.clone()))
    .bind(audits.iter().map(|a| a.details.to_string()).collect::<Vec<_>>())
    .bind(prevs)
    .bind(hashes)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(seqs)
}

/// Everything the policy needs about a person, as one statement (the person is `{person}`, the day
/// `{today}`; `relations_sql` fills them in): one row per relation, `kind` says which (0 role
/// grant, 1 teaching, 2 class teacher, 3 child, 4 enrolment). Every kind uses the columns
/// `school_id`, `municipality_id`, `region_id` and `on_date` for its own values (see
/// `relations_from`, which reads them). `k` keeps the order of the separate queries this replaced
/// (by id). The first branch casts every column: PostgreSQL resolves the types of a UNION pairwise,
/// and two bare NULLs would become `text`. The school of a taught class is a lookup by primary key,
/// not a join: the generic plan of the join hashed the whole `classes` table on every request of a
/// teacher (docs/performance.md, seventh round).
const RELATIONS: &str = "\
SELECT 0::bigint AS kind, role, school_id, municipality_id, region_id, NULL::date AS on_date, id AS k \
  FROM staff_roles WHERE person_id = {person} AND revoked_at IS NULL \
UNION ALL \
SELECT 1, NULL, t.id, t.class_id, t.school_id, NULL, t.id FROM ( \
  SELECT a.id, a.class_id, (SELECT c.school_id FROM classes c WHERE c.id = a.class_id) \
   FROM assignments a WHERE a.teacher_id = {person} \
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
/// creation, in one statement. The mark writer runs its batch's marks one after another on one
/// connection, so each round trip saved per mark is throughput (it was four: lesson, mark,
/// history, and reading the mark back).
static INSERT_MARK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH l AS (INSERT INTO lessons (assignment_id, on_date, lesson_number) VALUES ($1, $2, $3) \
         ON CONFLICT (assignment_id, on_date, lesson_number) DO UPDATE SET lesson_number = excluded.lesson_number \
         RETURNING id), \
         m AS (INSERT INTO marks (lesson_id, student_id, value, work_type_id, weight, comment, author_id, \
         created_at, updated_at, external_id) VALUES ((SELECT id FROM l), $4, $5, $6, $7, $8, $9, $10, $10, $11) \
         RETURNING *), \
         h AS (INSERT INTO mark_history (mark_id, changed_at, changed_by, old_value, new_value, \
         old_work_type_id, new_work_type_id, reason) SELECT id, created_at, author_id, CAST(NULL AS TEXT), \
         value, CAST(NULL AS BIGINT), work_type_id, CAST(NULL AS TEXT) FROM m) \
         SELECT {} FROM m",
        crate::journal::MARK_COLS
    )
});

/// See [`INSERT_MARK`]; the row has the columns of `MARK_COLS`.
pub(crate) async fn insert_mark(conn: &mut PgConnection, m: &NewMark) -> StoreResult<PgRow> {
    sqlx::query(INSERT_MARK.as_str())
        .bind(m.lesson.assignment.0)
        .bind(m.lesson.date)
        .bind(i64::from(m.lesson.lesson_number))
        .bind(m.student.0)
        .bind(m.value.code())
        .bind(m.work_type.0)
        .bind(i64::from(m.weight))
        .bind(&m.comment)
        .bind(m.author.0)
        .bind(m.at)
        .bind(&m.external_id)
        .fetch_one(conn)
        .await
        .map_err(map_err)
}
