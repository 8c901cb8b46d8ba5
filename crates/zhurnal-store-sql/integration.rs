//! [`IntegrationStore`] on both backends, and the outbox
//! inserts the other write paths call inside their own transactions.

use async_trait::async_trait;
use chrono::NaiveDate;
use zhurnal_domain::{AssignmentId, ClassId, PeriodId, PersonId, SchoolId};
use zhurnal_store::integration::{
    ChatMember, ChatRow, IntegrationStore, OutboxEvent, OutboxOutcome, OutboxStatus,
    PortfolioRecordRow, SchoolAdoption, SchoolCommunication, topics,
};
use zhurnal_store::journal::{FinalMarkKind, FinalMarkRow, FinalMarkWrite};
use zhurnal_store::{NewAudit, StoreError, StoreResult};

use crate::backend::{DbConn, DbRow, DbStore, SKIP_LOCKED};
use crate::rows::{corrupt, get};
use crate::{append_audit_in, map_err};

const OUTBOX_COLS: &str = "id, topic, subject, school_id, payload, status, attempts, \
    next_attempt_at, last_error, created_at, done_at";

fn outbox_from(r: &DbRow) -> StoreResult<OutboxEvent> {
    let status: String = get(r, "status")?;
    let payload: String = get(r, "payload")?;
    Ok(OutboxEvent {
        id: get(r, "id")?,
        topic: get(r, "topic")?,
        subject: get(r, "subject")?,
        school_id: get::<Option<i64>>(r, "school_id")?.map(SchoolId),
        payload: serde_json::from_str(&payload)
            .map_err(|_| corrupt("outbox_events.payload", &payload))?,
        status: OutboxStatus::from_code(&status)
            .ok_or_else(|| corrupt("outbox_events.status", &status))?,
        attempts: get(r, "attempts")?,
        next_attempt_at: get(r, "next_attempt_at")?,
        last_error: get(r, "last_error")?,
        created_at: get(r, "created_at")?,
        done_at: get(r, "done_at")?,
    })
}

fn final_mark_from(r: &DbRow) -> StoreResult<FinalMarkRow> {
    let kind: String = get(r, "kind")?;
    let period: Option<i64> = get(r, "period_id")?;
    let kind = match (kind.as_str(), period) {
        ("period", Some(p)) => FinalMarkKind::Period(PeriodId(p)),
        ("annual", _) => FinalMarkKind::Annual,
        ("final", _) => FinalMarkKind::Final,
        _ => return Err(corrupt("final_marks.kind", &kind)),
    };
    Ok(FinalMarkRow {
        student_id: PersonId(get(r, "student_id")?),
        assignment_id: AssignmentId(get(r, "assignment_id")?),
        kind,
        value: get(r, "value")?,
        author_id: PersonId(get(r, "author_id")?),
        set_at: get(r, "set_at")?,
    })
}

fn chat_from(r: &DbRow) -> StoreResult<ChatRow> {
    Ok(ChatRow {
        class_id: ClassId(get(r, "class_id")?),
        school_id: SchoolId(get(r, "school_id")?),
        chat_id: get(r, "chat_id")?,
        members_required: get(r, "members_required")?,
        members_joined: get(r, "members_joined")?,
        synced_at: get(r, "synced_at")?,
    })
}

// --- Outbox inserts for the other write paths (area `integrations`) ---------------------------

/// Enqueues the chat sync of a class inside the caller's transaction.
pub(crate) async fn outbox_class_in(conn: &mut DbConn, class: i64, at: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_events (topic, subject, school_id, created_at) \
         SELECT $1, 'class:' || c.id, c.school_id, $2 FROM classes c WHERE c.id = $3",
    )
    .bind(topics::SFERUM_CLASS)
    .bind(at)
    .bind(class)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Enqueues the chat sync of every class of `schools` whose year has not ended on `on` (an
/// import changed rows of those schools). The delivery decides which of them need a chat at all, as
/// for any other class event.
pub(crate) async fn outbox_school_classes_in(
    conn: &mut DbConn,
    schools: &[i64],
    on: NaiveDate,
    at: i64,
) -> StoreResult<u64> {
    let sql = format!(
        "INSERT INTO outbox_events (topic, subject, school_id, created_at) \
         SELECT $2, 'class:' || c.id, c.school_id, $3 FROM classes c \
         JOIN academic_years y ON y.id = c.academic_year_id \
         WHERE c.school_id {} AND y.ends_on >= $4",
        crate::backend::ANY_OF_1
    );
    let done = sqlx::query(&sql)
        .bind(crate::backend::id_list(schools)?)
        .bind(topics::SFERUM_CLASS)
        .bind(at)
        .bind(on)
        .execute(&mut *conn)
        .await
        .map_err(map_err)?;
    Ok(done.rows_affected())
}

/// Enqueues the chat sync of the class of an enrolment (admission, transfer, departure).
pub(crate) async fn outbox_enrolment_in(
    conn: &mut DbConn,
    enrolment: i64,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_events (topic, subject, school_id, created_at) \
         SELECT $1, 'class:' || e.class_id, e.school_id, $2 FROM enrolments e WHERE e.id = $3",
    )
    .bind(topics::SFERUM_CLASS)
    .bind(at)
    .bind(enrolment)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Enqueues the chat sync of every class the student is enrolled in now (a parent link
/// changes those chats).
pub(crate) async fn outbox_child_classes_in(
    conn: &mut DbConn,
    child: i64,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_events (topic, subject, school_id, created_at) \
         SELECT $1, 'class:' || e.class_id, e.school_id, $2 FROM enrolments e \
         WHERE e.student_id = $3 AND e.departed_on IS NULL",
    )
    .bind(topics::SFERUM_CLASS)
    .bind(at)
    .bind(child)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Enqueues the portfolio update of one period, annual or final mark.
pub(crate) async fn outbox_final_mark_in(conn: &mut DbConn, w: &FinalMarkWrite) -> StoreResult<()> {
    let payload = serde_json::json!({
        "assignment": w.assignment.0,
        "kind": w.kind.code(),
        "period": w.kind.period().map(|p| p.0),
    });
    sqlx::query(
        "INSERT INTO outbox_events (topic, subject, school_id, payload, created_at) \
         SELECT $1, $2, c.school_id, $3, $4 FROM assignments a JOIN classes c ON c.id = a.class_id \
         WHERE a.id = $5",
    )
    .bind(topics::PORTFOLIO_MARK)
    .bind(format!("student:{}", w.student.0))
    .bind(payload.to_string())
    .bind(w.at)
    .bind(w.assignment.0)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Enqueues the portfolio delivery of a closed period.
pub(crate) async fn outbox_period_closed_in(
    conn: &mut DbConn,
    period: i64,
    at: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox_events (topic, subject, school_id, created_at) \
         SELECT $1, 'period:' || p.id, y.school_id, $2 FROM periods p \
         JOIN academic_years y ON y.id = p.academic_year_id WHERE p.id = $3",
    )
    .bind(topics::PORTFOLIO_PERIOD)
    .bind(at)
    .bind(period)
    .execute(&mut *conn)
    .await
    .map_err(map_err)?;
    Ok(())
}

#[async_trait]
impl IntegrationStore for DbStore {
    async fn claim_outbox(
        &self,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEvent>> {
        // A cheap read first: an idle worker polls often and must not take the write lock.
        let due = sqlx::query(
            "SELECT id FROM outbox_events WHERE status = 'pending' AND next_attempt_at <= $1 LIMIT 1",
        )
        .bind(now)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.write_tx().await?;
        let rows = sqlx::query(&format!(
            "UPDATE outbox_events SET attempts = attempts + 1, next_attempt_at = $1 \
             WHERE id IN (SELECT id FROM outbox_events WHERE status = 'pending' \
                          AND next_attempt_at <= $2 ORDER BY id LIMIT $3{SKIP_LOCKED}) \
             RETURNING {OUTBOX_COLS}"
        ))
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        let mut events = rows.iter().map(outbox_from).collect::<StoreResult<Vec<_>>>()?;
        events.sort_by_key(|e| e.id);
        Ok(events)
    }

    async fn finish_outbox(&self, id: i64, outcome: &OutboxOutcome, now: i64) -> StoreResult<()> {
        let q = match outcome {
            OutboxOutcome::Delivered => sqlx::query(
                "UPDATE outbox_events SET status = 'delivered', done_at = $2, last_error = NULL \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now),
            OutboxOutcome::Skipped(why) => sqlx::query(
                "UPDATE outbox_events SET status = 'skipped', done_at = $2, last_error = $3 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .bind(why),
            OutboxOutcome::Retry { at, error } => sqlx::query(
                "UPDATE outbox_events SET next_attempt_at = $2, last_error = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(at)
            .bind(error),
            OutboxOutcome::Dead(error) => sqlx::query(
                "UPDATE outbox_events SET status = 'dead', done_at = $2, last_error = $3 \
                 WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .bind(error),
        };
        let mut tx = self.write_tx().await?;
        let done = q.execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("исходящее событие {id}")));
        }
        tx.commit().await.map_err(map_err)
    }

    async fn get_outbox(&self, id: i64) -> StoreResult<OutboxEvent> {
        let row = sqlx::query(&format!("SELECT {OUTBOX_COLS} FROM outbox_events WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("исходящее событие {id}")))?;
        outbox_from(&row)
    }

    async fn list_outbox(
        &self,
        status: Option<OutboxStatus>,
        school: Option<SchoolId>,
        limit: i64,
    ) -> StoreResult<Vec<OutboxEvent>> {
        let rows = sqlx::query(&format!(
            "SELECT {OUTBOX_COLS} FROM outbox_events \
             WHERE ($1 IS NULL OR status = $1) AND ($2 IS NULL OR school_id = $2) \
             ORDER BY id DESC LIMIT $3"
        ))
        .bind(status.map(|s| s.code()))
        .bind(school.map(|s| s.0))
        .bind(limit)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(outbox_from).collect()
    }

    async fn count_outbox(&self) -> StoreResult<Vec<(OutboxStatus, i64)>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM outbox_events GROUP BY status ORDER BY status",
        )
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let s: String = get(r, "status")?;
                let status = OutboxStatus::from_code(&s)
                    .ok_or_else(|| corrupt("outbox_events.status", &s))?;
                Ok((status, get(r, "n")?))
            })
            .collect()
    }

    async fn replay_outbox(&self, id: Option<i64>, audit: NewAudit) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE outbox_events SET status = 'pending', attempts = 0, next_attempt_at = 0, \
             done_at = NULL WHERE status = 'dead' AND ($1 IS NULL OR id = $1)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let n = done.rows_affected();
        let mut audit = audit;
        if let Some(obj) = audit.details.as_object_mut() {
            obj.insert("replayed".into(), serde_json::json!(n));
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(n)
    }

    async fn enqueue_class_syncs(&self, classes: &[ClassId], at: i64) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        for c in classes {
            outbox_class_in(&mut tx, c.0, at).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(classes.len() as u64)
    }

    async fn list_chat_members(
        &self,
        class: ClassId,
        on: NaiveDate,
    ) -> StoreResult<Vec<ChatMember>> {
        const P: &str = "p.id AS id, p.uid AS uid, p.esia_oid AS esia_oid, p.last_name AS last_name, \
                          p.first_name AS first_name, p.middle_name AS middle_name";
        const ACTIVE: &str = "e.class_id = $1 AND e.admitted_on <= $2 \
                              AND (e.departed_on IS NULL OR e.departed_on > $2)";
        let rows = sqlx::query(&format!(
            "SELECT {P}, 'class_teacher' AS role, 0 AS ord FROM classes c \
               JOIN persons p ON p.id = c.class_teacher_id WHERE c.id = $1 \
             UNION ALL SELECT {P}, 'teacher' AS role, 1 AS ord FROM assignments a \
               JOIN persons p ON p.id = a.teacher_id WHERE a.class_id = $1 \
             UNION ALL SELECT {P}, 'student' AS role, 2 AS ord FROM enrolments e \
               JOIN persons p ON p.id = e.student_id WHERE {ACTIVE} \
             UNION ALL SELECT {P}, 'parent' AS role, 3 AS ord FROM enrolments e \
               JOIN guardianships g ON g.child_id = e.student_id \
               JOIN persons p ON p.id = g.parent_id WHERE {ACTIVE} \
             ORDER BY ord, last_name, first_name, id"
        ))
        .bind(class.0)
        .bind(on)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for r in &rows {
            let id: i64 = get(r, "id")?;
            if !seen.insert(id) {
                continue;
            }
            let last: String = get(r, "last_name")?;
            let first: String = get(r, "first_name")?;
            let middle: Option<String> = get(r, "middle_name")?;
            let mut name = format!("{last} {first}");
            if let Some(m) = middle.filter(|m| !m.is_empty()) {
                name.push(' ');
                name.push_str(&m);
            }
            out.push(ChatMember {
                person_id: PersonId(id),
                uid: get(r, "uid")?,
                esia_oid: get(r, "esia_oid")?,
                name,
                role: get(r, "role")?,
            });
        }
        Ok(out)
    }

    async fn upsert_chat(&self, c: &ChatRow) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO sferum_chats (class_id, school_id, chat_id, members_required, \
             members_joined, synced_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (class_id) DO UPDATE SET chat_id = excluded.chat_id, \
             members_required = excluded.members_required, \
             members_joined = excluded.members_joined, synced_at = excluded.synced_at",
        )
        .bind(c.class_id.0)
        .bind(c.school_id.0)
        .bind(&c.chat_id)
        .bind(c.members_required)
        .bind(c.members_joined)
        .bind(c.synced_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_chats(&self, school: Option<SchoolId>) -> StoreResult<Vec<ChatRow>> {
        let rows = sqlx::query(
            "SELECT class_id, school_id, chat_id, members_required, members_joined, synced_at \
             FROM sferum_chats WHERE ($1 IS NULL OR school_id = $1) ORDER BY class_id",
        )
        .bind(school.map(|s| s.0))
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(chat_from).collect()
    }

    async fn list_period_final_marks(&self, period: PeriodId) -> StoreResult<Vec<FinalMarkRow>> {
        let rows = sqlx::query(
            "SELECT student_id, assignment_id, kind, period_id, value, author_id, set_at \
             FROM final_marks WHERE kind = 'period' AND period_id = $1 \
             ORDER BY student_id, assignment_id",
        )
        .bind(period.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(final_mark_from).collect()
    }

    async fn upsert_portfolio_record(&self, r: &PortfolioRecordRow) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO portfolio_records (record_key, student_id, school_id, value, status, \
             event_id, delivered_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (record_key) DO UPDATE SET value = excluded.value, \
             status = excluded.status, event_id = excluded.event_id, \
             delivered_at = excluded.delivered_at",
        )
        .bind(&r.record_key)
        .bind(r.student_id.0)
        .bind(r.school_id.0)
        .bind(&r.value)
        .bind(&r.status)
        .bind(r.event_id)
        .bind(r.delivered_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_portfolio_records(
        &self,
        school: SchoolId,
    ) -> StoreResult<Vec<PortfolioRecordRow>> {
        let rows = sqlx::query(
            "SELECT record_key, student_id, school_id, value, status, event_id, delivered_at \
             FROM portfolio_records WHERE school_id = $1 ORDER BY student_id, record_key",
        )
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(PortfolioRecordRow {
                    record_key: get(r, "record_key")?,
                    student_id: PersonId(get(r, "student_id")?),
                    school_id: SchoolId(get(r, "school_id")?),
                    value: get(r, "value")?,
                    status: get(r, "status")?,
                    event_id: get(r, "event_id")?,
                    delivered_at: get(r, "delivered_at")?,
                })
            })
            .collect()
    }

    async fn get_school_communication(
        &self,
        school: SchoolId,
    ) -> StoreResult<Option<SchoolCommunication>> {
        let row = sqlx::query(
            "SELECT services, responsible, updated_at FROM school_communication WHERE school_id = $1",
        )
        .bind(school.0)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        let Some(r) = row else { return Ok(None) };
        let services: String = get(&r, "services")?;
        let responsible: String = get(&r, "responsible")?;
        Ok(Some(SchoolCommunication {
            services: serde_json::from_str(&services)
                .map_err(|_| corrupt("school_communication.services", &services))?,
            responsible: serde_json::from_str(&responsible)
                .map_err(|_| corrupt("school_communication.responsible", &responsible))?,
            updated_at: get(&r, "updated_at")?,
        }))
    }

    async fn set_school_communication(
        &self,
        school: SchoolId,
        c: &SchoolCommunication,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let services =
            serde_json::to_string(&c.services).map_err(|e| StoreError::Other(Box::new(e)))?;
        let responsible =
            serde_json::to_string(&c.responsible).map_err(|e| StoreError::Other(Box::new(e)))?;
        sqlx::query(
            "INSERT INTO school_communication (school_id, services, responsible, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (school_id) DO UPDATE SET \
             services = excluded.services, responsible = excluded.responsible, \
             updated_at = excluded.updated_at",
        )
        .bind(school.0)
        .bind(services)
        .bind(responsible)
        .bind(c.updated_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_school_adoption(
        &self,
        on: NaiveDate,
        logged_in_since: i64,
    ) -> StoreResult<Vec<SchoolAdoption>> {
        let cutoff = on.checked_sub_months(chrono::Months::new(14 * 12)).unwrap_or(on);
        // One row per school; each figure is a COUNT over people, never over messages.
        let rows = sqlx::query(
            "WITH act AS (SELECT e.school_id, e.student_id, p.birth_date, p.last_login_at \
                 FROM enrolments e JOIN persons p ON p.id = e.student_id \
                 WHERE e.admitted_on <= $1 AND (e.departed_on IS NULL OR e.departed_on > $1)), \
             staff AS (SELECT DISTINCT g.school_id, p.id, p.last_login_at FROM staff_roles g \
                 JOIN persons p ON p.id = g.person_id \
                 WHERE g.school_id IS NOT NULL AND g.revoked_at IS NULL), \
             par AS (SELECT DISTINCT a.school_id, p.id, p.last_login_at FROM act a \
                 JOIN guardianships g ON g.child_id = a.student_id JOIN persons p ON p.id = g.parent_id) \
             SELECT s.id, \
               (SELECT COUNT(*) FROM staff x WHERE x.school_id = s.id) AS staff, \
               (SELECT COUNT(*) FROM staff x WHERE x.school_id = s.id AND x.last_login_at >= $3) AS staff_in, \
               (SELECT COUNT(*) FROM act a WHERE a.school_id = s.id AND a.birth_date <= $2) AS st14, \
               (SELECT COUNT(*) FROM act a WHERE a.school_id = s.id AND a.birth_date <= $2 \
                  AND a.last_login_at >= $3) AS st14_in, \
               (SELECT COUNT(*) FROM par x WHERE x.school_id = s.id) AS parents, \
               (SELECT COUNT(*) FROM par x WHERE x.school_id = s.id AND x.last_login_at >= $3) AS parents_in, \
               (SELECT COUNT(*) FROM act a WHERE a.school_id = s.id \
                  AND (a.birth_date IS NULL OR a.birth_date > $2)) AS children, \
               (SELECT COUNT(*) FROM act a WHERE a.school_id = s.id \
                  AND (a.birth_date IS NULL OR a.birth_date > $2) AND EXISTS (SELECT 1 FROM guardianships g \
                  WHERE g.child_id = a.student_id AND g.confirmed_at IS NOT NULL)) AS children_linked, \
               (SELECT COUNT(*) FROM persons p WHERE p.account_state = 'dormant' AND (p.id IN (SELECT student_id FROM act a WHERE a.school_id = s.id) \
                  OR p.id IN (SELECT id FROM staff x WHERE x.school_id = s.id) \
                  OR p.id IN (SELECT id FROM par x WHERE x.school_id = s.id))) AS dormant, \
               (SELECT COUNT(*) FROM portfolio_records r WHERE r.school_id = s.id \
                  AND r.status = 'delivered') AS pf_ok, \
               (SELECT COUNT(*) FROM portfolio_records r WHERE r.school_id = s.id \
                  AND r.status <> 'delivered') AS pf_bad \
             FROM schools s ORDER BY s.id",
        )
        .bind(on)
        .bind(cutoff)
        .bind(logged_in_since)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(SchoolAdoption {
                    school_id: SchoolId(get(r, "id")?),
                    staff: get(r, "staff")?,
                    staff_logged_in: get(r, "staff_in")?,
                    students_14: get(r, "st14")?,
                    students_14_logged_in: get(r, "st14_in")?,
                    parents: get(r, "parents")?,
                    parents_logged_in: get(r, "parents_in")?,
                    children: get(r, "children")?,
                    children_linked: get(r, "children_linked")?,
                    dormant_blocked: get(r, "dormant")?,
                    portfolio_delivered: get(r, "pf_ok")?,
                    portfolio_failed: get(r, "pf_bad")?,
                })
            })
            .collect()
    }
}
