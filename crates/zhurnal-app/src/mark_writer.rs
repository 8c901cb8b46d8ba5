//! Group commit of mark entry (area `bench`, issue 6, third round).
//!
//! A new mark is a write whose audit record must be in the same transaction as the mark
//! (security.md: every change of a mark is audited with the change). One transaction per mark
//! meant one fsync per mark on SQLite (`synchronous=FULL`) and one commit under the audit chain
//! lock on PostgreSQL, which capped mark entry at a few hundred per second. The writer has the
//! shape of the [`audit_appender`](crate::audit_appender): one task owns the receiving end of
//! a bounded channel, takes the first queued mark, drains whatever else is already queued (no
//! timer: a lone mark adds no latency, batches grow with the load) and writes them all with
//! [`zhurnal_store::JournalStore::create_marks`] — ONE transaction, a savepoint per mark, each
//! mark's audit record in that transaction.
//!
//! Durability is unchanged: a caller awaits the answer for **its own** mark, which comes only
//! after the commit; a mark refused for a data reason fails alone; a failed commit fails every
//! waiter (nothing of the batch was stored). Authorization and validation happen before a mark
//! is queued (`App::journal_create_mark`), exactly as before.
//!
//! Shutdown: the task ends when the last sender is gone (the [`App`](crate::App) dropped), after
//! writing every mark still queued; a caller whose request was cancelled after queueing still
//! gets its mark written, as a mark sent just before a dropped connection always could be.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use zhurnal_store::journal::NewMark;
use zhurnal_store::{MarkRow, NewAudit, Store, StoreError, StoreResult};

/// The most marks written in one transaction. Smaller than the audit appender's batch: each
/// mark is several statements (lesson, mark, history, savepoint), so a batch of this size
/// already takes longer than the fsync it shares, and a larger one would only add latency.
pub const MAX_BATCH: usize = 128;

/// How many marks may wait for the writer before callers wait to queue (back-pressure).
pub const QUEUE: usize = 4 * MAX_BATCH;

type Job = (NewMark, NewAudit, oneshot::Sender<StoreResult<MarkRow>>);

pub struct MarkWriter {
    store: Arc<dyn Store>,
    /// Started on first use, so that [`crate::App::new`] needs no runtime.
    sender: OnceLock<mpsc::Sender<Job>>,
}

impl MarkWriter {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, sender: OnceLock::new() }
    }

    /// Creates `mark` with its audit record and returns the stored row once it is committed
    /// (or, for a reused idempotency key, the mark that key created).
    pub async fn create(&self, mark: NewMark, audit: NewAudit) -> StoreResult<MarkRow> {
        let sender = match self.sender.get() {
            Some(sender) => sender,
            None => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    // Outside a tokio runtime there is nowhere to run the task: write directly.
                    return self.store.create_mark(&mark, audit).await;
                };
                self.sender.get_or_init(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    runtime.spawn(run(self.store.clone(), rx));
                    tx
                })
            }
        };
        let (ack, done) = oneshot::channel();
        if let Err(mpsc::error::SendError((mark, audit, _))) = sender.send((mark, audit, ack)).await
        {
            // The task is gone (the runtime that started it shut down): write directly, which
            // is just as durable, only not batched.
            return self.store.create_mark(&mark, audit).await;
        }
        done.await.map_err(|_| {
            StoreError::Unavailable("запись отметки прервана (сервер останавливается)".into())
        })?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>) {
    let mut marks = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::with_capacity(MAX_BATCH);
    while let Some((mark, audit, ack)) = rx.recv().await {
        marks.push((mark, audit));
        acks.push(ack);
        while marks.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((mark, audit, ack)) => {
                    marks.push((mark, audit));
                    acks.push(ack);
                }
                Err(_) => break,
            }
        }
        match store.create_marks(&marks).await {
            Ok(results) if results.len() == acks.len() => {
                for (ack, result) in acks.drain(..).zip(results) {
                    // A caller that went away does not need the row; the mark is written.
                    let _ = ack.send(result);
                }
            }
            Ok(results) => {
                // Committed, but the answer does not pair up with the waiters: a backend bug.
                // Nobody can be told which row is theirs, so everyone is told it failed —
                // never a row that may be somebody else's.
                tracing::error!(
                    marks = marks.len(),
                    answers = results.len(),
                    "mark batch answer mismatch"
                );
                for ack in acks.drain(..) {
                    let _ = ack.send(Err(StoreError::Corrupt(
                        "пакет отметок: ответ не совпал с запросом".into(),
                    )));
                }
            }
            Err(e) => {
                // Nothing of the batch was stored (unreachable database, failed commit): every
                // waiter gets the error and no mark is shown as saved.
                tracing::error!(error = %e, marks = marks.len(), "mark batch failed");
                for ack in acks.drain(..) {
                    let _ = ack.send(Err(for_every_waiter(&e)));
                }
            }
        }
        marks.clear();
    }
}

/// A copy of a batch-wide error for each waiter (`StoreError` cannot be cloned: `Other` holds a
/// boxed driver error, which is passed on as its message).
fn for_every_waiter(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound(what) => StoreError::NotFound(what.clone()),
        StoreError::Conflict { constraint } => {
            StoreError::Conflict { constraint: constraint.clone() }
        }
        StoreError::UnknownReference { kind, external_id } => {
            StoreError::UnknownReference { kind, external_id: external_id.clone() }
        }
        StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
        StoreError::Corrupt(what) => StoreError::Corrupt(what.clone()),
        StoreError::Other(e) => StoreError::Other(e.to_string().into()),
    }
}
