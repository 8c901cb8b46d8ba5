//! The audit log (журнал событий безопасности): append-only, hash-chained.
//!
//! Each record's `hash` = HMAC(key, prev_hash ‖ canonical bytes of the record). The key lives
//! outside the database (configuration), so a database superuser cannot recompute the chain.
//! The backend appends inside the same transaction as the change it records: no audit, no change.

use serde::{Deserialize, Serialize};

/// Computes chain links. Implemented by the application with a key from configuration.
pub trait AuditSealer: Send + Sync + 'static {
    fn seal(&self, prev_hash: &[u8], canonical: &[u8]) -> Vec<u8>;
}

/// An event to append.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAudit {
    /// Microseconds since the Unix epoch, UTC.
    pub at: i64,
    pub actor_id: Option<i64>,
    pub actor_role: Option<String>,
    /// SHA-256 of the session id (never the id itself).
    pub session_hash: Option<String>,
    pub source_ip: Option<String>,
    /// What happened: `login.success`, `login.refused`, `mark.create`, `diary.view`, …
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub school_id: Option<i64>,
    /// `ok`, `denied`, `refused`, `error`.
    pub result: String,
    /// A stable reason code (`unconfirmed_account`, `state_mismatch`, …).
    pub reason: Option<String>,
    /// JSON object with details; never names or СНИЛС.
    pub details: serde_json::Value,
}

impl NewAudit {
    pub fn new(at: i64, action: impl Into<String>, result: impl Into<String>) -> Self {
        Self {
            at,
            action: action.into(),
            result: result.into(),
            details: serde_json::json!({}),
            ..Self::default()
        }
    }
    pub fn actor(mut self, id: i64, role: impl Into<String>) -> Self {
        self.actor_id = Some(id);
        self.actor_role = Some(role.into());
        self
    }
    pub fn target(mut self, kind: impl Into<String>, id: impl ToString) -> Self {
        self.target_type = Some(kind.into());
        self.target_id = Some(id.to_string());
        self
    }
    pub fn school(mut self, id: i64) -> Self {
        self.school_id = Some(id);
        self
    }
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }
    pub fn ip(mut self, ip: Option<String>) -> Self {
        self.source_ip = ip;
        self
    }
    pub fn session(mut self, hash: Option<String>) -> Self {
        self.session_hash = hash;
        self
    }
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The bytes the chain signs: a fixed field order, so both backends and `audit verify`
    /// agree byte for byte.
    pub fn canonical(&self, seq: i64) -> Vec<u8> {
        let v = serde_json::json!([
            seq,
            self.at,
            self.actor_id,
            self.actor_role,
            self.session_hash,
            self.source_ip,
            self.action,
            self.target_type,
            self.target_id,
            self.school_id,
            self.result,
            self.reason,
            self.details.to_string(),
        ]);
        v.to_string().into_bytes()
    }
}

/// A stored record with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub event: NewAudit,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
}

/// The hash a chain starts from (the "previous hash" of record #1).
pub const GENESIS_HASH: [u8; 32] = [0u8; 32];

/// An intact chain: how many records and the hash of the last one (worth writing down
/// elsewhere, so truncating the tail is noticed too).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainCheck {
    pub records: u64,
    pub last_hash: Vec<u8>,
}

/// Where the chain breaks.
#[derive(Debug, thiserror::Error)]
pub enum ChainBreak {
    #[error(
        "журнал аудита нарушен: ожидалась запись #{expected}, найдена #{found} (запись удалена или вставлена)"
    )]
    Gap { expected: i64, found: i64 },
    #[error("журнал аудита нарушен: запись #{0} изменена или подделана (хеш не сходится)")]
    Altered(i64),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

/// Walks the whole audit log in order and recomputes every link with `sealer`.
pub async fn verify_chain(
    store: &dyn crate::Store,
    sealer: &dyn AuditSealer,
) -> Result<ChainCheck, ChainBreak> {
    let mut prev = GENESIS_HASH.to_vec();
    let mut expected = 1;
    let mut after = 0;
    loop {
        let page = store.list_audit(after, 5000).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for r in &page {
            if r.seq != expected {
                return Err(ChainBreak::Gap { expected, found: r.seq });
            }
            if r.prev_hash != prev || r.hash != sealer.seal(&prev, &r.event.canonical(r.seq)) {
                return Err(ChainBreak::Altered(r.seq));
            }
            prev.clone_from(&r.hash);
            expected += 1;
        }
    }
    Ok(ChainCheck { records: (expected - 1) as u64, last_hash: prev })
}
