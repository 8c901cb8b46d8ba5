//! The storage boundary: one async trait, [`Store`], implemented once per backend
//! (`zhurnal-store-sqlite`, `zhurnal-store-postgres`), and one conformance suite
//! ([`conformance`], feature `conformance`) that every backend runs in its tests.
//!
//! Methods are shaped by use case, not by table: a write receives everything that must commit
//! together (the change and its audit record) and the backend owns the transaction. Naming:
//! `get_*` → `Result<T>` (absent = [`StoreError::NotFound`]), `find_*` → `Result<Option<T>>`,
//! `list_*` → `Result<Vec<T>>`. A failed query is an error, never an absence.

pub mod admin;
pub mod audit;
pub mod batch;
pub mod bulk;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
pub mod conformance_diary;
pub mod diary;
mod error;
pub mod import;
pub mod integration;
pub mod journal;
pub mod model;
pub mod perf;
pub mod schedule;
pub mod security;
mod store;

pub use admin::*;
pub use audit::{AuditRecord, AuditSealer, NewAudit};
pub use batch::{Batch, BatchStats};
pub use bulk::BulkStore;
pub use diary::*;
pub use error::{StoreError, StoreResult};
pub use import::ImportStore;
pub use integration::IntegrationStore;
pub use journal::JournalStore;
pub use model::*;
pub use perf::{PerfStore, SessionWithPerson};
pub use security::SecurityStore;
pub use store::{Backend, Store};
