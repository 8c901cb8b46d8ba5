//! Area `bench` (issue 6, second round): store methods that exist to cut the work per request.
//!
//! - [`PerfStore::append_audit_batch`] seals many audit records in one transaction (group
//!   commit): the application's audit appender hands it every read-audit record that queued
//!   while the previous batch was committing, so one fsync (SQLite) or one commit under the
//!   chain lock (PostgreSQL) serves them all.
//! - [`PerfStore::find_session_with_person`] reads a session, its person and the person's
//!   relations (what the policy needs) in one statement: all are needed by every authenticated
//!   request. It also says whether the person has recent security notices, so that the notices
//!   are read only for the few who have any.

use async_trait::async_trait;

use chrono::NaiveDate;

use crate::{ActorRelations, NewAudit, PersonRow, SessionRow, StoreResult};

#[async_trait]
pub trait PerfStore: Send + Sync {
    /// Appends `audits` in order, in ONE transaction, each chained to the one before exactly as
    /// [`crate::Store::append_audit`] chains a single record; returns their `seq`s (consecutive).
    /// All or nothing: on error no record of the batch is stored. An empty slice writes nothing.
    async fn append_audit_batch(&self, audits: &[NewAudit]) -> StoreResult<Vec<i64>>;

    /// The session with this id hash and the person it belongs to, in one statement, with
    /// whether the person has security notices created at or after `notices_since` and the
    /// person's relations on `today` exactly as [`crate::Store::load_relations`] returns them.
    async fn find_session_with_person(
        &self,
        id_hash: &str,
        notices_since: i64,
        today: NaiveDate,
    ) -> StoreResult<Option<SessionWithPerson>>;
}

/// A session as every authenticated request reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionWithPerson {
    pub session: SessionRow,
    pub person: PersonRow,
    /// Whether [`crate::Store::list_notices`] has anything for this person since the time asked
    /// (most people have no notices: their requests skip that read).
    pub has_notices: bool,
    /// What the authorization policy needs about the person today.
    pub relations: ActorRelations,
}
