//! [`SecurityStore`] on both backends: account lifecycle, incidents, notices and the audit trail.

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::{QueryBuilder, Row};
use zhurnal_domain::{ClassId, PersonId, SchoolId};
use zhurnal_store::security::{
    AccountActivity, AuditFilter, IncidentNoticeRow, IncidentRow, IncidentStatus, MeasureRow,
    NewIncident, NoticeKind, NoticeRow, SecurityStore, Severity, StoredSnils,
};
use zhurnal_store::{AccountState, AuditRecord, NewAudit, StoreError, StoreResult};

use crate::backend::{Db, DbRow, DbStore};
use crate::rows::{audit_from, corrupt};
use crate::{append_audit_in, map_err};

const ACTIVITY_COLS: &str = "p.id, p.uid, p.account_state, p.state_reason, p.state_changed_at, p.last_login_at, p.created_at";

const INCIDENT_COLS: &str = "id, rule, severity, detected_at, subject_key, subject_person_id, \
    subject_ip, summary, evidence, status, updated_at";

const AUDIT_COLS: &str = "seq, at, actor_id, actor_role, session_hash, source_ip, action, target_type, \
    target_id, school_id, result, reason, details, prev_hash, hash";

fn activity_from(r: &DbRow) -> StoreResult<AccountActivity> {
    let state: String = r.try_get("account_state").map_err(map_err)?;
    Ok(AccountActivity {
        person_id: PersonId(r.try_get("id").map_err(map_err)?),
        uid: r.try_get("uid").map_err(map_err)?,
        state: AccountState::from_code(&state)
            .ok_or_else(|| corrupt("persons.account_state", &state))?,
        state_reason: r.try_get("state_reason").map_err(map_err)?,
        state_changed_at: r.try_get("state_changed_at").map_err(map_err)?,
        last_login_at: r.try_get("last_login_at").map_err(map_err)?,
        created_at: r.try_get("created_at").map_err(map_err)?,
    })
}

fn incident_from(r: &DbRow) -> StoreResult<IncidentRow> {
    let severity: String = r.try_get("severity").map_err(map_err)?;
    let status: String = r.try_get("status").map_err(map_err)?;
    let evidence: String = r.try_get("evidence").map_err(map_err)?;
    Ok(IncidentRow {
        id: r.try_get("id").map_err(map_err)?,
        rule: r.try_get("rule").map_err(map_err)?,
        severity: Severity::from_code(&severity)
            .ok_or_else(|| corrupt("security_incidents.severity", &severity))?,
        detected_at: r.try_get("detected_at").map_err(map_err)?,
        subject_key: r.try_get("subject_key").map_err(map_err)?,
        subject_person_id: r
            .try_get::<Option<i64>, _>("subject_person_id")
            .map_err(map_err)?
            .map(PersonId),
        subject_ip: r.try_get("subject_ip").map_err(map_err)?,
        summary: r.try_get("summary").map_err(map_err)?,
        evidence: serde_json::from_str(&evidence)
            .map_err(|_| corrupt("security_incidents.evidence", &evidence))?,
        status: IncidentStatus::from_code(&status)
            .ok_or_else(|| corrupt("security_incidents.status", &status))?,
        updated_at: r.try_get("updated_at").map_err(map_err)?,
    })
}

fn measure_from(r: &DbRow) -> StoreResult<MeasureRow> {
    let status: String = r.try_get("status").map_err(map_err)?;
    Ok(MeasureRow {
        id: r.try_get("id").map_err(map_err)?,
        incident_id: r.try_get("incident_id").map_err(map_err)?,
        at: r.try_get("at").map_err(map_err)?,
        author_id: r.try_get::<Option<i64>, _>("author_id").map_err(map_err)?.map(PersonId),
        status: IncidentStatus::from_code(&status)
            .ok_or_else(|| corrupt("security_incident_measures.status", &status))?,
        text: r.try_get("text").map_err(map_err)?,
    })
}

/// `LIKE` pattern matching values that start with `prefix` literally.
fn like_prefix(prefix: &str) -> String {
    let mut s = String::new();
    for c in prefix.chars() {
        if matches!(c, '\\' | '%' | '_') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

fn push_filter(q: &mut QueryBuilder<'_, Db>, f: &AuditFilter) {
    q.push(" WHERE 1 = 1");
    if let Some(p) = &f.action_prefix {
        q.push(" AND action LIKE ").push_bind(like_prefix(p)).push(" ESCAPE '\\'");
    }
    if let Some(a) = f.actor_id {
        q.push(" AND actor_id = ").push_bind(a);
    }
    if let Some(ip) = &f.source_ip {
        q.push(" AND source_ip = ").push_bind(ip.clone());
    }
    if let Some(r) = &f.reason {
        q.push(" AND reason = ").push_bind(r.clone());
    }
    if let Some(t) = f.from_at {
        q.push(" AND at >= ").push_bind(t);
    }
    if let Some(t) = f.to_at {
        q.push(" AND at < ").push_bind(t);
    }
    if let Some(s) = f.before_seq {
        q.push(" AND seq < ").push_bind(s);
    }
}

#[async_trait]
impl SecurityStore for DbStore {
    async fn get_account_activity(&self, person: PersonId) -> StoreResult<AccountActivity> {
        let row = sqlx::query(&format!("SELECT {ACTIVITY_COLS} FROM persons p WHERE p.id = $1"))
            .bind(person.0)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("человек {person}")))?;
        activity_from(&row)
    }

    async fn set_account_state(
        &self,
        person: PersonId,
        state: AccountState,
        reason: Option<&str>,
        audit: NewAudit,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE persons SET account_state = $1, state_reason = $2, state_changed_at = $3 \
             WHERE id = $4 AND (account_state <> $1 OR state_reason IS DISTINCT FROM $2)",
        )
        .bind(state.code())
        .bind(reason)
        .bind(audit.at)
        .bind(person.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query("SELECT 1 FROM persons WHERE id = $1")
                .bind(person.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
            if exists.is_none() {
                return Err(StoreError::NotFound(format!("человек {person}")));
            }
            return Ok(false);
        }
        if state != AccountState::Active {
            sqlx::query("DELETE FROM sessions WHERE person_id = $1")
                .bind(person.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn list_inactive_accounts(
        &self,
        state: AccountState,
        before: i64,
    ) -> StoreResult<Vec<AccountActivity>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACTIVITY_COLS} FROM persons p WHERE p.account_state = $1 \
             AND COALESCE(p.last_login_at, p.created_at) < $2 AND COALESCE(p.state_changed_at, 0) < $2 ORDER BY p.id"
        ))
        .bind(state.code())
        .bind(before)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(activity_from).collect()
    }

    async fn list_class_accounts(
        &self,
        class: ClassId,
        on: NaiveDate,
    ) -> StoreResult<Vec<AccountActivity>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACTIVITY_COLS} FROM persons p WHERE p.id IN ( \
               SELECT e.student_id FROM enrolments e WHERE e.class_id = $1 AND e.admitted_on <= $2 \
                 AND (e.departed_on IS NULL OR e.departed_on > $2) \
               UNION SELECT g.parent_id FROM guardianships g JOIN enrolments e ON e.student_id = g.child_id \
                 WHERE e.class_id = $1 AND e.admitted_on <= $2 AND (e.departed_on IS NULL OR e.departed_on > $2)) \
             ORDER BY p.id"
        ))
        .bind(class.0)
        .bind(on)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(activity_from).collect()
    }

    async fn list_school_accounts(
        &self,
        school: SchoolId,
        on: NaiveDate,
    ) -> StoreResult<Vec<AccountActivity>> {
        let rows = sqlx::query(&format!(
            "SELECT {ACTIVITY_COLS} FROM persons p WHERE p.id IN ( \
               SELECT e.student_id FROM enrolments e WHERE e.school_id = $1 AND e.admitted_on <= $2 \
                 AND (e.departed_on IS NULL OR e.departed_on > $2) \
               UNION SELECT g.parent_id FROM guardianships g JOIN enrolments e ON e.student_id = g.child_id \
                 WHERE e.school_id = $1 AND e.admitted_on <= $2 AND (e.departed_on IS NULL OR e.departed_on > $2) \
               UNION SELECT r.person_id FROM staff_roles r WHERE r.school_id = $1 AND r.role = 'teacher' \
                 AND r.revoked_at IS NULL) \
             ORDER BY p.id"
        ))
        .bind(school.0)
        .bind(on)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(activity_from).collect()
    }

    async fn list_school_admins(&self, school: SchoolId) -> StoreResult<Vec<PersonId>> {
        let rows = sqlx::query(
            "SELECT DISTINCT person_id FROM staff_roles WHERE school_id = $1 AND role = 'school-admin' \
             AND revoked_at IS NULL ORDER BY person_id",
        )
        .bind(school.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(|r| Ok(PersonId(r.try_get(0).map_err(map_err)?))).collect()
    }

    async fn count_departed_students(
        &self,
        from: Option<NaiveDate>,
        on: NaiveDate,
    ) -> StoreResult<i64> {
        let from = from.unwrap_or(NaiveDate::from_ymd_opt(1900, 1, 1).unwrap_or_default());
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM persons p WHERE EXISTS (SELECT 1 FROM enrolments e \
               WHERE e.student_id = p.id AND e.departed_on IS NOT NULL AND e.departed_on <= $1 \
               AND e.departed_on >= $2) \
             AND NOT EXISTS (SELECT 1 FROM enrolments e WHERE e.student_id = p.id \
               AND (e.departed_on IS NULL OR e.departed_on > $1))",
        )
        .bind(on)
        .bind(from)
        .fetch_one(self.reader())
        .await
        .map_err(map_err)
    }

    async fn count_accounts(&self, state: AccountState, reason: Option<&str>) -> StoreResult<i64> {
        let mut q = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM persons WHERE account_state = ");
        q.push_bind(state.code());
        if let Some(r) = reason {
            q.push(" AND state_reason = ").push_bind(r.to_string());
        }
        q.build_query_scalar().fetch_one(self.reader()).await.map_err(map_err)
    }

    async fn insert_notice(
        &self,
        person: PersonId,
        kind: &str,
        dedup_key: &str,
        body: &str,
        at: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO security_notices (person_id, kind, dedup_key, body, created_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(person.0)
        .bind(kind)
        .bind(dedup_key)
        .bind(body)
        .bind(at)
        .execute(self.writer())
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_notices(&self, person: PersonId, since: i64) -> StoreResult<Vec<NoticeRow>> {
        let rows = sqlx::query(
            "SELECT id, person_id, kind, body, created_at FROM security_notices \
             WHERE person_id = $1 AND created_at >= $2 ORDER BY created_at DESC, id DESC",
        )
        .bind(person.0)
        .bind(since)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(NoticeRow {
                    id: r.try_get("id").map_err(map_err)?,
                    person_id: PersonId(r.try_get("person_id").map_err(map_err)?),
                    kind: r.try_get("kind").map_err(map_err)?,
                    body: r.try_get("body").map_err(map_err)?,
                    created_at: r.try_get("created_at").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn create_incident(&self, i: &NewIncident, audit: NewAudit) -> StoreResult<i64> {
        let mut tx = self.write_tx().await?;
        let evidence =
            serde_json::to_string(&i.evidence).map_err(|e| StoreError::Other(e.into()))?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO security_incidents (rule, severity, detected_at, subject_key, subject_person_id, \
             subject_ip, summary, evidence, status, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'new', $3) RETURNING id",
        )
        .bind(&i.rule)
        .bind(i.severity.code())
        .bind(i.detected_at)
        .bind(&i.subject_key)
        .bind(i.subject_person_id.map(|p| p.0))
        .bind(&i.subject_ip)
        .bind(&i.summary)
        .bind(evidence)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let audit = NewAudit {
            target_type: Some("incident".into()),
            target_id: Some(id.to_string()),
            ..audit
        };
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(id)
    }

    async fn find_open_incident(
        &self,
        rule: &str,
        subject_key: &str,
        since: i64,
    ) -> StoreResult<Option<IncidentRow>> {
        let row = sqlx::query(&format!(
            "SELECT {INCIDENT_COLS} FROM security_incidents WHERE rule = $1 AND subject_key = $2 \
             AND detected_at >= $3 AND status <> 'resolved' ORDER BY detected_at DESC, id DESC LIMIT 1"
        ))
        .bind(rule)
        .bind(subject_key)
        .bind(since)
        .fetch_optional(self.writer())
        .await
        .map_err(map_err)?;
        row.as_ref().map(incident_from).transpose()
    }

    async fn add_incident_evidence(&self, id: i64, seqs: &[i64], at: i64) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let current: String =
            sqlx::query_scalar("SELECT evidence FROM security_incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?
                .ok_or_else(|| StoreError::NotFound(format!("инцидент {id}")))?;
        let mut ev: Vec<i64> = serde_json::from_str(&current)
            .map_err(|_| corrupt("security_incidents.evidence", &current))?;
        for s in seqs {
            if !ev.contains(s) {
                ev.push(*s);
            }
        }
        let ev = serde_json::to_string(&ev).map_err(|e| StoreError::Other(e.into()))?;
        sqlx::query("UPDATE security_incidents SET evidence = $1, updated_at = $2 WHERE id = $3")
            .bind(ev)
            .bind(at)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn escalate_incident(
        &self,
        id: i64,
        severity: Severity,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query(
            "UPDATE security_incidents SET severity = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(severity.code())
        .bind(audit.at)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("инцидент {id}")));
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn get_incident(&self, id: i64) -> StoreResult<IncidentRow> {
        let row =
            sqlx::query(&format!("SELECT {INCIDENT_COLS} FROM security_incidents WHERE id = $1"))
                .bind(id)
                .fetch_optional(self.reader())
                .await
                .map_err(map_err)?
                .ok_or_else(|| StoreError::NotFound(format!("инцидент {id}")))?;
        incident_from(&row)
    }

    async fn list_incidents(&self, from: i64, to: i64) -> StoreResult<Vec<IncidentRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {INCIDENT_COLS} FROM security_incidents WHERE detected_at >= $1 AND detected_at < $2 \
             ORDER BY detected_at DESC, id DESC"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(incident_from).collect()
    }

    async fn add_incident_measure(
        &self,
        id: i64,
        status: IncidentStatus,
        text: &str,
        author: Option<PersonId>,
        audit: NewAudit,
    ) -> StoreResult<i64> {
        let mut tx = self.write_tx().await?;
        let done =
            sqlx::query("UPDATE security_incidents SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status.code())
                .bind(audit.at)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound(format!("инцидент {id}")));
        }
        let mid: i64 = sqlx::query_scalar(
            "INSERT INTO security_incident_measures (incident_id, at, author_id, status, text) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(id)
        .bind(audit.at)
        .bind(author.map(|a| a.0))
        .bind(status.code())
        .bind(text)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(mid)
    }

    async fn list_incident_measures(&self, id: i64) -> StoreResult<Vec<MeasureRow>> {
        let rows = sqlx::query(
            "SELECT id, incident_id, at, author_id, status, text FROM security_incident_measures \
             WHERE incident_id = $1 ORDER BY at, id",
        )
        .bind(id)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(measure_from).collect()
    }

    async fn get_cursor(&self, name: &str) -> StoreResult<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT last_seq FROM security_cursors WHERE name = $1")
                .bind(name)
                .fetch_optional(self.writer())
                .await
                .map_err(map_err)?;
        Ok(v.unwrap_or(0))
    }

    async fn set_cursor(&self, name: &str, seq: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO security_cursors (name, last_seq) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_seq = excluded.last_seq",
        )
        .bind(name)
        .bind(seq)
        .execute(self.writer())
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn search_audit(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> StoreResult<Vec<AuditRecord>> {
        let mut q = QueryBuilder::<Db>::new(format!("SELECT {AUDIT_COLS} FROM audit_log"));
        push_filter(&mut q, filter);
        q.push(" ORDER BY seq DESC LIMIT ").push_bind(limit);
        let rows = q.build().fetch_all(self.reader()).await.map_err(map_err)?;
        rows.iter().map(audit_from).collect()
    }

    async fn count_audit(&self, filter: &AuditFilter) -> StoreResult<i64> {
        let mut q = QueryBuilder::<Db>::new("SELECT COUNT(*) FROM audit_log");
        push_filter(&mut q, filter);
        q.build_query_scalar().fetch_one(self.reader()).await.map_err(map_err)
    }

    async fn audit_head(&self) -> StoreResult<Option<AuditRecord>> {
        let row =
            sqlx::query(&format!("SELECT {AUDIT_COLS} FROM audit_log ORDER BY seq DESC LIMIT 1"))
                .fetch_optional(self.writer())
                .await
                .map_err(map_err)?;
        row.as_ref().map(audit_from).transpose()
    }

    async fn record_incident_notice(
        &self,
        notice: &IncidentNoticeRow,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let exists = sqlx::query("SELECT 1 FROM security_incidents WHERE id = $1")
            .bind(notice.incident_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("инцидент {}", notice.incident_id)));
        }
        sqlx::query(
            "INSERT INTO security_incident_notices \
             (incident_id, kind, sent_at, reference, author_id, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(notice.incident_id)
        .bind(notice.kind.code())
        .bind(notice.sent_at)
        .bind(notice.reference.as_deref())
        .bind(notice.author_id.map(|a| a.0))
        .bind(notice.recorded_at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(())
    }

    async fn list_incident_notices(&self, incident: i64) -> StoreResult<Vec<IncidentNoticeRow>> {
        let rows = sqlx::query(
            "SELECT incident_id, kind, sent_at, reference, author_id, recorded_at \
             FROM security_incident_notices WHERE incident_id = $1 ORDER BY sent_at, id",
        )
        .bind(incident)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind").map_err(map_err)?;
                Ok(IncidentNoticeRow {
                    incident_id: r.try_get("incident_id").map_err(map_err)?,
                    kind: NoticeKind::from_code(&kind)
                        .ok_or_else(|| corrupt("security_incident_notices.kind", &kind))?,
                    sent_at: r.try_get("sent_at").map_err(map_err)?,
                    reference: r.try_get("reference").map_err(map_err)?,
                    author_id: r
                        .try_get::<Option<i64>, _>("author_id")
                        .map_err(map_err)?
                        .map(PersonId),
                    recorded_at: r.try_get("recorded_at").map_err(map_err)?,
                })
            })
            .collect()
    }

    async fn list_snils_ciphers(&self) -> StoreResult<Vec<StoredSnils>> {
        let rows = sqlx::query(
            "SELECT id, uid, snils_cipher, snils_hmac FROM persons \
             WHERE snils_cipher IS NOT NULL ORDER BY id",
        )
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(StoredSnils {
                    person: PersonId(r.try_get("id").map_err(map_err)?),
                    uid: r.try_get("uid").map_err(map_err)?,
                    cipher: r.try_get("snils_cipher").map_err(map_err)?,
                    hmac: r
                        .try_get::<Option<Vec<u8>>, _>("snils_hmac")
                        .map_err(map_err)?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    async fn replace_snils_ciphers(
        &self,
        rows: &[StoredSnils],
        audit: NewAudit,
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let stored: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM persons WHERE snils_cipher IS NOT NULL")
                .fetch_one(&mut *tx)
                .await
                .map_err(map_err)?;
        if usize::try_from(stored).ok() != Some(rows.len()) {
            // Someone was registered since the list was read: their СНИЛС would stay under
            // the retired key.
            return Err(StoreError::Conflict { constraint: "snils_rotation_incomplete".into() });
        }
        let mut changed = 0;
        for r in rows {
            let done = sqlx::query(
                "UPDATE persons SET snils_cipher = $1, snils_hmac = $2 \
                 WHERE id = $3 AND snils_cipher IS NOT NULL",
            )
            .bind(&r.cipher)
            .bind(&r.hmac)
            .bind(r.person.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound(format!("СНИЛС человека {}", r.uid)));
            }
            changed += 1;
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(changed)
    }
}
