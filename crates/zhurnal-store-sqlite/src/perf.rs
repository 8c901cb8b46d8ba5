//! Area `bench`: group commit of audit records, the session with its person, and the actor's
//! relations in one statement (see `zhurnal_store::perf`).

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::Row;
use sqlx::SqliteConnection;
use zhurnal_domain::policy::{ChildLink, Teaching};
use zhurnal_domain::{AssignmentId, ClassId, PersonId, SchoolId};
use zhurnal_store::*;

use crate::rows::grant_from;
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
    ) -> StoreResult<Option<SessionWithPerson>> {
        crate::base::find_session_with_person(self, id_hash, notices_since).await
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

/// Everything the policy needs about a person, as one statement: one row per relation, `kind`
/// says which (0 role grant, 1 teaching, 2 class teacher, 3 child, 4 enrolment). Grants use the
/// named columns `role`, `school_id`, `municipality_id`, `region_id`; the other kinds use
/// columns 2–5 positionally as commented in each branch. `k` keeps the order of the separate
/// queries this replaced (by id).
const RELATIONS: &str = "\
SELECT 0 AS kind, role, school_id, municipality_id, region_id, NULL AS on_date, id AS k \
  FROM staff_roles WHERE person_id = $1 AND revoked_at IS NULL \
UNION ALL \
SELECT 1, NULL, t.id, t.class_id, t.school_id, NULL, t.id FROM ( \
  SELECT a.id, a.class_id, c.school_id FROM assignments a JOIN classes c ON c.id = a.class_id \
   WHERE a.teacher_id = $1 \
  UNION SELECT a.id, a.class_id, c.school_id FROM substitutions su \
   JOIN timetable_slots s ON s.id = su.slot_id JOIN assignments a ON a.id = s.assignment_id \
   JOIN classes c ON c.id = a.class_id WHERE su.substitute_id = $1 AND su.on_date = $2) t \
UNION ALL \
SELECT 2, NULL, id, NULL, NULL, NULL, id FROM classes WHERE class_teacher_id = $1 \
UNION ALL \
SELECT 3, NULL, g.child_id, \
  (SELECT COUNT(*) FROM enrolments e WHERE e.student_id = g.child_id \
     AND (e.departed_on IS NULL OR e.departed_on > $2)), NULL, \
  (SELECT MAX(e.departed_on) FROM enrolments e WHERE e.student_id = g.child_id), g.child_id \
  FROM guardianships g WHERE g.parent_id = $1 \
UNION ALL \
SELECT 4, NULL, school_id, class_id, NULL, departed_on, id FROM enrolments \
  WHERE student_id = $1 AND admitted_on <= $2 \
ORDER BY kind, k";

/// [`Store::load_relations`] in one statement instead of five (it runs on every request).
pub(crate) async fn load_relations(
    store: &SqliteStore,
    person: PersonId,
    today: NaiveDate,
) -> StoreResult<ActorRelations> {
    let rows = sqlx::query(RELATIONS)
        .bind(person.0)
        .bind(today)
        .fetch_all(&store.reader)
        .await
        .map_err(map_err)?;
    let mut rel = ActorRelations::default();
    for r in &rows {
        let kind: i64 = r.try_get(0).map_err(map_err)?;
        let int = |i: usize| r.try_get::<Option<i64>, _>(i).map_err(map_err);
        let req = |i: usize| {
            int(i)?.ok_or_else(|| StoreError::Corrupt(format!("relations: пустой столбец {i}")))
        };
        match kind {
            0 => rel.grants.push(grant_from(r)?),
            // 2 assignment, 3 class, 4 school.
            1 => rel.teaching.push(Teaching {
                assignment: AssignmentId(req(2)?),
                class: ClassId(req(3)?),
                school: SchoolId(req(4)?),
            }),
            // 2 class.
            2 => rel.class_teacher_of.push(ClassId(req(2)?)),
            // 2 child, 3 active enrolments, 5 last departure.
            3 => {
                let last: Option<NaiveDate> = r.try_get(5).map_err(map_err)?;
                rel.children.push(ChildLink {
                    child: PersonId(req(2)?),
                    visible_until: if req(3)? > 0 { None } else { last },
                });
            }
            // 2 school, 3 class, 5 departure.
            _ => {
                let school = SchoolId(req(2)?);
                let departed: Option<NaiveDate> = r.try_get(5).map_err(map_err)?;
                match departed {
                    Some(d) if d <= today => rel.departed_from.push((school, d)),
                    _ => rel.enrolled_in.push((school, ClassId(req(3)?))),
                }
            }
        }
    }
    Ok(rel)
}
