//! Import area of the store: export of a school as a [`Batch`] (the Zhurnal exchange format),
//! the import register (what was loaded, verified, whose source was destroyed), retention
//! candidates, purge of persons, compaction that makes deleted rows unrecoverable from the
//! live files, and acts of destruction (акты об уничтожении персональных данных).

use async_trait::async_trait;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use zhurnal_domain::{PersonId, SchoolId};

use crate::{Batch, NewAudit, StoreResult};

/// How much of a person a purge removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PurgeScope {
    /// Everything: the person row and every row about them.
    Full,
    /// The journal (marks, attendance, history, diary traces, contacts, СНИЛС, links) goes;
    /// the name, enrolments and period/final marks stay for the archive's summary
    /// (сводная ведомость, kept longer than the journal).
    KeepArchive,
}

impl PurgeScope {
    pub fn code(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::KeepArchive => "keep_archive",
        }
    }
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "full" => Some(Self::Full),
            "keep_archive" => Some(Self::KeepArchive),
            _ => None,
        }
    }
}

/// A person due for deletion under the retention policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeCandidate {
    pub person_id: PersonId,
    pub uid: String,
    /// `student` or `parent`.
    pub kind: String,
    pub scope: PurgeScope,
}

/// Rows removed by a purge, by kind (what the act of destruction lists).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurgeCounts {
    pub persons: u64,
    pub persons_archived: u64,
    pub marks: u64,
    pub attendance: u64,
    pub enrolments: u64,
    pub links: u64,
    pub sessions: u64,
    pub other: u64,
}

impl PurgeCounts {
    pub fn total(&self) -> u64 {
        self.persons
            + self.persons_archived
            + self.marks
            + self.attendance
            + self.enrolments
            + self.links
            + self.sessions
            + self.other
    }
}

/// One run of an importer (the register behind the region's migration page).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewImportRun {
    pub at: i64,
    pub format: String,
    /// File or directory name as given (no path of the server's disk is shown to users).
    pub source_name: String,
    /// SHA-256 of the source (the same hash `purge-import` records).
    pub source_sha256: String,
    /// External ids of the schools the input covers.
    pub schools: Vec<String>,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub actor_id: Option<PersonId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRunRow {
    pub id: i64,
    pub at: i64,
    pub format: String,
    pub source_name: String,
    pub source_sha256: String,
    pub schools: Vec<String>,
    pub inserted: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub source_purged_at: Option<i64>,
    pub act_number: Option<String>,
}

impl ImportRunRow {
    /// A run that found everything already in place proves the earlier load (сверка).
    pub fn is_verification(&self) -> bool {
        self.inserted == 0 && self.updated == 0
    }
}

/// Акт об уничтожении персональных данных, as stored (the PDF is rendered from it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestructionAct {
    pub id: i64,
    /// «А-2026-0001».
    pub number: String,
    pub at: i64,
    /// `retention`, `import_source`, `manual`.
    pub reason: String,
    /// Who ordered it (person id; `None` for the scheduled job or the CLI).
    pub actor_id: Option<PersonId>,
    pub actor_label: String,
    /// What was destroyed and how: a JSON object with counts, methods and file hashes.
    pub details: serde_json::Value,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewDestructionAct {
    pub at: i64,
    pub reason: String,
    pub actor_id: Option<PersonId>,
    pub actor_label: String,
    pub details: serde_json::Value,
}

/// Четвертная (за период), годовая или итоговая отметка, по внешним кодам (final_marks.csv).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BFinalMark {
    pub student: String,
    pub assignment: String,
    /// `period`, `annual` or `final`.
    pub kind: String,
    /// The period's external id (for `period` only).
    pub period: Option<String>,
    /// The code of the value ("5", "pass", "exempt", …).
    pub value: String,
    pub author: String,
    pub set_at: i64,
}

/// One line of a mark's history (исправление отметки), by external ids (mark_history.csv).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BMarkChange {
    /// The mark's external id (`zhurnal-mark-N` for marks entered in Zhurnal).
    pub mark: String,
    pub changed_at: i64,
    pub changed_by: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    /// Work type codes (of the mark's school).
    pub old_work_type: Option<String>,
    pub new_work_type: Option<String>,
    pub reason: Option<String>,
}

/// One import as it is written (see [`ImportStore::apply_import`]).
#[derive(Clone, Debug)]
pub struct ImportWrite<'a> {
    pub batch: &'a Batch,
    /// Четвертные, годовые и итоговые отметки; they reference the batch's rows.
    pub final_marks: &'a [BFinalMark],
    /// Исправления отметок; they reference the batch's marks.
    pub mark_history: &'a [BMarkChange],
    /// The register entry; its counts are replaced by what was written.
    pub run: NewImportRun,
}

/// What [`ImportStore::apply_import`] wrote: the counts over the batch, the final marks and
/// the history together, and the register entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportApplied {
    pub stats: crate::BatchStats,
    pub run_id: i64,
}

/// An import being written: its parts go into one open transaction, in the order they are
/// read (a part refers only to rows of earlier parts or of itself), so a set of any size is
/// written without holding it whole, and still all or nothing. Dropping the session without
/// [`ImportSession::commit`] rolls everything back; after a part failed, further parts and the
/// commit are refused (conflict `import_part_failed`) and only the rollback remains.
#[async_trait]
pub trait ImportSession: Send {
    /// Writes one part: its batch, then its final marks, then its corrections.
    async fn apply(
        &mut self,
        batch: &Batch,
        final_marks: &[BFinalMark],
        mark_history: &[BMarkChange],
    ) -> StoreResult<crate::BatchStats>;

    /// Adds the run to the register (with the counts of every part) and the audit record,
    /// and commits.
    async fn commit(
        self: Box<Self>,
        run: NewImportRun,
        audit: NewAudit,
    ) -> StoreResult<ImportApplied>;
}

#[async_trait]
pub trait ImportStore: Send + Sync {
    /// Everything of one school as a batch keyed by external ids, with its region and
    /// municipality and every person it mentions. СНИЛС stays ciphertext (the app decrypts).
    async fn export_school(&self, school: SchoolId) -> StoreResult<Batch>;

    /// Students whose every enrolment ended before `journal_before` (journal data due), with
    /// [`PurgeScope::Full`] when it ended before `archive_before` too; then the parents of
    /// fully purged students left without any other child and without a staff role.
    /// Persons whose journal was already purged are not offered again for `KeepArchive`.
    async fn list_retention_candidates(
        &self,
        journal_before: NaiveDate,
        archive_before: NaiveDate,
    ) -> StoreResult<Vec<PurgeCandidate>>;

    /// Deletes the persons (or their journal, per scope) and every row about them, in one
    /// transaction with the audit record. Refuses (conflict) a person still referenced as
    /// the author of others' records (a teacher is never purged by this).
    async fn purge_persons(
        &self,
        persons: &[(PersonId, PurgeScope)],
        audit: NewAudit,
    ) -> StoreResult<PurgeCounts>;

    /// Makes deleted content unrecoverable from the live database files: SQLite
    /// `secure_delete` + `VACUUM` + `wal_checkpoint(TRUNCATE)`; PostgreSQL `VACUUM FULL` of the
    /// affected tables + `CHECKPOINT`. Returns the method, for the act.
    async fn compact_after_purge(&self) -> StoreResult<String>;

    async fn record_import_run(&self, run: &NewImportRun) -> StoreResult<i64>;
    /// Marks the runs loaded from this source as purged by the act; returns how many.
    async fn mark_source_purged(
        &self,
        source_sha256: &str,
        at: i64,
        act_number: &str,
    ) -> StoreResult<u64>;
    async fn list_import_runs(&self) -> StoreResult<Vec<ImportRunRow>>;

    /// Stores the act with the next number of its year, with the audit record.
    async fn insert_destruction_act(
        &self,
        act: &NewDestructionAct,
        audit: NewAudit,
    ) -> StoreResult<DestructionAct>;
    async fn list_destruction_acts(&self) -> StoreResult<Vec<DestructionAct>>;
    async fn find_destruction_act(&self, number: &str) -> StoreResult<Option<DestructionAct>>;

    /// The period, annual and final marks of one school's assignments, by external ids, in
    /// a stable order (assignment, student, kind, period).
    async fn export_final_marks(&self, school: SchoolId) -> StoreResult<Vec<BFinalMark>>;

    /// The history of every mark of one school's lessons, by external ids, ordered by mark,
    /// time and entry.
    async fn export_mark_history(&self, school: SchoolId) -> StoreResult<Vec<BMarkChange>>;

    /// Opens the one transaction an import is written in (see [`ImportSession`]); `at` is
    /// when the persons it registers count as registered.
    async fn begin_import(&self, at: i64) -> StoreResult<Box<dyn ImportSession>>;

    /// Writes one import in ONE transaction: the batch (upserted by external ids), then the
    /// period, annual and final marks (upserted by student, assignment, kind and period), then
    /// the mark corrections not yet stored (a line is identified by mark, time and who changed
    /// it), then the run in the register with the counts, and the audit record. An unknown
    /// external id is [`crate::StoreError::UnknownReference`] and nothing at all is written.
    async fn apply_import(
        &self,
        import: &ImportWrite<'_>,
        audit: NewAudit,
    ) -> StoreResult<ImportApplied> {
        let mut session = self.begin_import(audit.at).await?;
        session.apply(import.batch, import.final_marks, import.mark_history).await?;
        session.commit(import.run.clone(), audit).await
    }
}
