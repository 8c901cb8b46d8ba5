//! Security area of the store: account lifecycle (блокировка, неактивные учётные записи),
//! notices to users, the incident register (реестр инцидентов) and audit search.
//!
//! Every change of account state and of an incident is audited in the same transaction.

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhurnal_domain::{ClassId, PersonId, SchoolId};

use crate::{AccountState, AuditRecord, NewAudit, StoreResult};

/// What lifecycle decisions need about one account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountActivity {
    pub person_id: PersonId,
    pub uid: String,
    pub state: AccountState,
    /// Why the state was set (`dormant`, an administrator's words, …).
    pub state_reason: Option<String>,
    pub state_changed_at: Option<i64>,
    pub last_login_at: Option<i64>,
    /// When the school registered the person.
    pub created_at: i64,
}

impl AccountActivity {
    /// The last sign of life: the last login (or registration, for those who never logged
    /// in), or the last change of state — a re-activation opens a new period.
    pub fn last_activity(&self) -> i64 {
        self.last_login_at.unwrap_or(self.created_at).max(self.state_changed_at.unwrap_or(0))
    }
}

/// A notice in a user's feed (shown as a banner).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoticeRow {
    pub id: i64,
    pub person_id: PersonId,
    pub kind: String,
    pub body: String,
    pub created_at: i64,
}

/// Важность инцидента.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];
    pub fn code(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::Low => "низкая",
            Self::Medium => "средняя",
            Self::High => "высокая",
            Self::Critical => "критическая",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// Состояние работы по инциденту.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    New,
    Investigating,
    Resolved,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 3] = [Self::New, Self::Investigating, Self::Resolved];
    pub fn code(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Investigating => "investigating",
            Self::Resolved => "resolved",
        }
    }
    pub fn title(self) -> &'static str {
        match self {
            Self::New => "новый",
            Self::Investigating => "расследуется",
            Self::Resolved => "закрыт",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// An incident as a detection rule reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewIncident {
    /// Rule id from security.md §5.1 (`D-01`, …).
    pub rule: String,
    pub severity: Severity,
    pub detected_at: i64,
    /// What the incident is about (`person:12`, `ip:10.0.0.1`): repeated hits join one incident.
    pub subject_key: String,
    pub subject_person_id: Option<PersonId>,
    pub subject_ip: Option<String>,
    /// A short description without personal data.
    pub summary: String,
    /// Audit `seq` numbers that show what happened.
    pub evidence: Vec<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRow {
    pub id: i64,
    pub rule: String,
    pub severity: Severity,
    pub detected_at: i64,
    pub subject_key: String,
    pub subject_person_id: Option<PersonId>,
    pub subject_ip: Option<String>,
    pub summary: String,
    pub evidence: Vec<i64>,
    pub status: IncidentStatus,
    pub updated_at: i64,
}

/// A notification an incident may require (security.md §5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NoticeKind {
    /// Первичное уведомление Роскомнадзора (152-ФЗ ст. 21 ч. 3.1): within 24 hours.
    Rkn24h,
    /// Результаты внутреннего расследования для Роскомнадзора: within 72 hours.
    Rkn72h,
    /// Уведомление НКЦКИ (ГосСОПКА).
    Nkcki,
    /// Родители (законные представители) проинформированы.
    Parents,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 4] = [Self::Rkn24h, Self::Rkn72h, Self::Nkcki, Self::Parents];

    pub fn code(self) -> &'static str {
        match self {
            Self::Rkn24h => "rkn_24h",
            Self::Rkn72h => "rkn_72h",
            Self::Nkcki => "nkcki",
            Self::Parents => "parents",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == code)
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::Rkn24h => "Роскомнадзор: уведомление (24 ч)",
            Self::Rkn72h => "Роскомнадзор: результаты расследования (72 ч)",
            Self::Nkcki => "НКЦКИ (ГосСОПКА)",
            Self::Parents => "Родители проинформированы",
        }
    }

    /// The legal deadline after detection, in hours, when the law sets one.
    pub fn deadline_hours(self) -> Option<i64> {
        match self {
            Self::Rkn24h => Some(24),
            Self::Rkn72h => Some(72),
            Self::Nkcki | Self::Parents => None,
        }
    }
}

/// A notification recorded as sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentNoticeRow {
    pub incident_id: i64,
    pub kind: NoticeKind,
    /// When it was sent (microseconds), as the officer states it.
    pub sent_at: i64,
    /// Registration or outgoing number, if any.
    pub reference: Option<String>,
    pub author_id: Option<PersonId>,
    pub recorded_at: i64,
}

/// A measure taken on an incident (принятая мера).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeasureRow {
    pub id: i64,
    pub incident_id: i64,
    pub at: i64,
    pub author_id: Option<PersonId>,
    pub status: IncidentStatus,
    pub text: String,
}

/// Audit search; every field narrows the result.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    /// `login` matches `login.success`, `login.refused`, …
    pub action_prefix: Option<String>,
    pub actor_id: Option<i64>,
    pub source_ip: Option<String>,
    pub reason: Option<String>,
    /// Inclusive, microseconds.
    pub from_at: Option<i64>,
    /// Exclusive, microseconds.
    pub to_at: Option<i64>,
    /// Only records before this `seq` (paging backwards from the newest).
    pub before_seq: Option<i64>,
}

#[async_trait]
pub trait SecurityStore: Send + Sync {
    async fn get_account_activity(&self, person: PersonId) -> StoreResult<AccountActivity>;
    /// Sets the account state with its reason; on any state but active the person's sessions
    /// are deleted in the same transaction. Returns false (and writes nothing, not even the
    /// audit record) when the state and reason are already so.
    async fn set_account_state(
        &self,
        person: PersonId,
        state: AccountState,
        reason: Option<&str>,
        audit: NewAudit,
    ) -> StoreResult<bool>;
    /// Accounts in `state` whose last activity (login, else registration) is before `before`.
    async fn list_inactive_accounts(
        &self,
        state: AccountState,
        before: i64,
    ) -> StoreResult<Vec<AccountActivity>>;
    /// Students enrolled in the class on `on` and their parents.
    async fn list_class_accounts(
        &self,
        class: ClassId,
        on: NaiveDate,
    ) -> StoreResult<Vec<AccountActivity>>;
    /// Students enrolled in the school on `on`, their parents and the school's teachers.
    async fn list_school_accounts(
        &self,
        school: SchoolId,
        on: NaiveDate,
    ) -> StoreResult<Vec<AccountActivity>>;
    async fn list_school_admins(&self, school: SchoolId) -> StoreResult<Vec<PersonId>>;
    /// Persons whose every enrolment ended before `on` (выбывшие), with departure in
    /// `[from, on)` when `from` is given.
    async fn count_departed_students(
        &self,
        from: Option<NaiveDate>,
        on: NaiveDate,
    ) -> StoreResult<i64>;
    async fn count_accounts(&self, state: AccountState, reason: Option<&str>) -> StoreResult<i64>;

    /// Returns false when this notice (person, kind, dedup key) was already written.
    async fn insert_notice(
        &self,
        person: PersonId,
        kind: &str,
        dedup_key: &str,
        body: &str,
        at: i64,
    ) -> StoreResult<bool>;
    /// Notices created at or after `since`, newest first.
    async fn list_notices(&self, person: PersonId, since: i64) -> StoreResult<Vec<NoticeRow>>;

    async fn create_incident(&self, incident: &NewIncident, audit: NewAudit) -> StoreResult<i64>;
    /// The newest unresolved incident of the rule about the subject detected at or after `since`.
    async fn find_open_incident(
        &self,
        rule: &str,
        subject_key: &str,
        since: i64,
    ) -> StoreResult<Option<IncidentRow>>;
    async fn add_incident_evidence(&self, id: i64, seqs: &[i64], at: i64) -> StoreResult<()>;
    async fn get_incident(&self, id: i64) -> StoreResult<IncidentRow>;
    /// Sets a new severity (a rule's escalation), with its audit record in one transaction.
    async fn escalate_incident(
        &self,
        id: i64,
        severity: Severity,
        audit: NewAudit,
    ) -> StoreResult<()>;
    /// Incidents detected in `[from, to)`, newest first.
    async fn list_incidents(&self, from: i64, to: i64) -> StoreResult<Vec<IncidentRow>>;
    /// Records a measure and moves the incident to `status`, audited.
    async fn add_incident_measure(
        &self,
        id: i64,
        status: IncidentStatus,
        text: &str,
        author: Option<PersonId>,
        audit: NewAudit,
    ) -> StoreResult<i64>;
    async fn list_incident_measures(&self, id: i64) -> StoreResult<Vec<MeasureRow>>;

    /// Where the named job stopped in the audit log (0 before its first run).
    async fn get_cursor(&self, name: &str) -> StoreResult<i64>;
    async fn set_cursor(&self, name: &str, seq: i64) -> StoreResult<()>;

    /// Matching audit records, newest first.
    async fn search_audit(&self, filter: &AuditFilter, limit: i64)
    -> StoreResult<Vec<AuditRecord>>;
    async fn count_audit(&self, filter: &AuditFilter) -> StoreResult<i64>;
    /// The last record of the chain, if any.
    async fn audit_head(&self) -> StoreResult<Option<AuditRecord>>;

    /// Records that a notification was sent; a kind is recorded once per incident (`Conflict`
    /// on a second time), with its audit record in the same transaction.
    async fn record_incident_notice(
        &self,
        notice: &IncidentNoticeRow,
        audit: NewAudit,
    ) -> StoreResult<()>;
    async fn list_incident_notices(&self, incident: i64) -> StoreResult<Vec<IncidentNoticeRow>>;

    /// Every person with a stored СНИЛС ciphertext: what `zhurnal keys rotate` re-encrypts.
    async fn list_snils_ciphers(&self) -> StoreResult<Vec<StoredSnils>>;
    /// Replaces the ciphertext and matching hash of every given person in one transaction with
    /// its audit record: a rotation applies whole or not at all. Refused (`Conflict`, nothing
    /// written) unless `rows` covers every person with a stored СНИЛС — someone registered
    /// since the list was read would otherwise keep a ciphertext under the retired key.
    async fn replace_snils_ciphers(
        &self,
        rows: &[StoredSnils],
        audit: NewAudit,
    ) -> StoreResult<u64>;
}

/// A person's СНИЛС as stored: AEAD ciphertext bound to the uid, and the keyed matching hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredSnils {
    pub person: PersonId,
    pub uid: String,
    pub cipher: Vec<u8>,
    pub hmac: Vec<u8>,
}

/// A chain head written outside the database (якорь): `seq` must exist with this hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    pub at: i64,
    pub seq: i64,
    pub hash: Vec<u8>,
}

impl Anchor {
    /// One line of the anchors file: `<at micros> <seq> <hash hex>`.
    pub fn to_line(&self) -> String {
        format!("{} {} {}", self.at, self.seq, hex_encode(&self.hash))
    }
    pub fn parse_line(line: &str) -> Option<Self> {
        let mut it = line.split_whitespace();
        let at = it.next()?.parse().ok()?;
        let seq = it.next()?.parse().ok()?;
        let hash = hex_decode(it.next()?)?;
        Some(Self { at, seq, hash })
    }
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// What the anchors say about the chain.
#[derive(Debug, thiserror::Error)]
pub enum AnchorBreak {
    #[error(
        "журнал аудита усечён: якорь от {at} фиксирует запись #{seq}, а в журнале только {records} записей"
    )]
    Truncated { seq: i64, records: u64, at: String },
    #[error(
        "журнал аудита переписан: запись #{seq} не совпадает с якорем от {at} (хеш в базе другой)"
    )]
    Rewritten { seq: i64, at: String },
    #[error(transparent)]
    Chain(#[from] crate::audit::ChainBreak),
}

/// Full check: the chain links (HMAC with the key outside the database) and every anchor.
pub async fn verify_with_anchors(
    store: &dyn crate::Store,
    sealer: &dyn crate::AuditSealer,
    anchors: &[Anchor],
) -> Result<crate::audit::ChainCheck, AnchorBreak> {
    let check = crate::audit::verify_chain(store, sealer).await?;
    let fmt_at = |at: i64| {
        chrono::DateTime::from_timestamp_micros(at)
            .map(|t| t.format("%d.%m.%Y %H:%M UTC").to_string())
            .unwrap_or_else(|| at.to_string())
    };
    for a in anchors {
        if a.seq as u64 > check.records {
            return Err(AnchorBreak::Truncated {
                seq: a.seq,
                records: check.records,
                at: fmt_at(a.at),
            });
        }
        let rec = store.list_audit(a.seq - 1, 1).await.map_err(crate::audit::ChainBreak::from)?;
        match rec.first() {
            Some(r) if r.seq == a.seq && r.hash == a.hash => {}
            _ => return Err(AnchorBreak::Rewritten { seq: a.seq, at: fmt_at(a.at) }),
        }
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_lines_round_trip() {
        let a = Anchor { at: 17, seq: 42, hash: vec![0, 1, 0xab, 0xff] };
        assert_eq!(Anchor::parse_line(&a.to_line()), Some(a));
        assert_eq!(Anchor::parse_line("garbage"), None);
        assert_eq!(Anchor::parse_line("1 2 abc"), None);
    }
}
