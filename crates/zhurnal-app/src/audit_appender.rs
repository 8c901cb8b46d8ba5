//! Group commit for audit records of reads (area `bench`, issue 6).
//!
//! Pages that only read personal data still append an audit record (`diary.view`,
//! `journal.view`, …). Appended one by one, each such page paid for its own write transaction
//! under the chain lock — on SQLite an fsync per page — which capped every audited page at a few
//! hundred per second. The appender is one task that owns the receiving end of a bounded
//! channel: it takes the first queued record, drains whatever else is already queued (no timer:
//! a lone request adds no latency, batches grow with the load) and seals them all in ONE
//! transaction with [`zhurnal_store::PerfStore::append_audit_batch`], chained record by record.
//!
//! Durability is unchanged: a caller awaits the acknowledgement of its own record, which comes
//! only after the batch committed, so a page is still shown only once its audit record is
//! durable (security.md, T-12/T-14). Writes of marks, attendance and the like do not come here:
//! their audit record stays in the transaction of the change.
//!
//! Shutdown: the task ends when the last sender is gone (the [`App`](crate::App) dropped), after
//! writing every record still queued; a caller whose request was cancelled after queueing
//! still gets its record written.

use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use zhurnal_store::{NewAudit, Store, StoreError, StoreResult};

/// The most records sealed in one transaction.
pub const MAX_BATCH: usize = 512;

/// How many records may wait for the writer before callers wait to queue (back-pressure).
pub const QUEUE: usize = 4 * MAX_BATCH;

type Job = (NewAudit, oneshot::Sender<StoreResult<i64>>);

pub struct AuditAppender {
    store: Arc<dyn Store>,
    /// Started on first use, so that [`crate::App::new`] needs no runtime.
    sender: OnceLock<mpsc::Sender<Job>>,
}

impl AuditAppender {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, sender: OnceLock::new() }
    }

    /// Appends `audit` to the chain and returns its `seq` once it is committed.
    pub async fn append(&self, audit: NewAudit) -> StoreResult<i64> {
        let sender = match self.sender.get() {
            Some(sender) => sender,
            None => {
                let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                    // Outside a tokio runtime there is nowhere to run the task: append directly.
                    return self.store.append_audit(audit).await;
                };
                self.sender.get_or_init(|| {
                    let (tx, rx) = mpsc::channel(QUEUE);
                    runtime.spawn(run(self.store.clone(), rx));
                    tx
                })
            }
        };
        let (ack, done) = oneshot::channel();
        if let Err(mpsc::error::SendError((audit, _))) = sender.send((audit, ack)).await {
            // The task is gone (the runtime that started it shut down): append directly,
            // which is just as durable, only not batched.
            return self.store.append_audit(audit).await;
        }
        done.await.map_err(|_| {
            StoreError::Unavailable(
                "запись журнала аудита прервана (сервер останавливается)".into(),
            )
        })?
    }
}

async fn run(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Job>) {
    let mut audits = Vec::with_capacity(MAX_BATCH);
    let mut acks = Vec::with_capacity(MAX_BATCH);
    while let Some((audit, ack)) = rx.recv().await {
        audits.push(audit);
        acks.push(ack);
        while audits.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((audit, ack)) => {
                    audits.push(audit);
                    acks.push(ack);
                }
                Err(_) => break,
            }
        }
        match store.append_audit_batch(&audits).await {
            Ok(seqs) => {
                for (ack, seq) in acks.drain(..).zip(seqs) {
                    // A caller that went away does not need its seq; the record is written.
                    let _ = ack.send(Ok(seq));
                }
            }
            Err(StoreError::Unavailable(why)) => {
                // The database is unreachable: nothing of the batch was stored, every waiter
                // gets the error (fail closed — its page is not shown).
                tracing::error!(error = %why, records = audits.len(), "audit batch failed");
                for ack in acks.drain(..) {
                    let _ = ack.send(Err(StoreError::Unavailable(why.clone())));
                }
            }
            Err(e) if audits.len() > 1 => {
                // Something in one record was refused: nothing of the batch was stored. Each
                // record is retried alone, so one bad record cannot fail its neighbours' pages.
                tracing::warn!(error = %e, records = audits.len(), "audit batch refused, retrying one by one");
                for (audit, ack) in audits.drain(..).zip(acks.drain(..)) {
                    let one = store.append_audit_batch(std::slice::from_ref(&audit)).await;
                    let _ = ack.send(one.and_then(|seqs| {
                        seqs.first().copied().ok_or_else(|| {
                            StoreError::Corrupt("журнал аудита: запись не получила номер".into())
                        })
                    }));
                }
            }
            Err(e) => {
                // A batch of one: its waiter gets the error as it is.
                if let Some(ack) = acks.pop() {
                    let _ = ack.send(Err(e));
                }
                acks.clear();
            }
        }
        audits.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use zhurnal_store::audit::verify_chain;
    use zhurnal_store::conformance::{TestSealer, sealer};

    async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let path = dir.path().join("z.db");
        Arc::new(zhurnal_store_sqlite::SqliteStore::open(&path, true, sealer()).await.expect("db"))
    }

    fn event(i: i64) -> NewAudit {
        NewAudit::new(i, "diary.view", "ok").actor(i, "parent").target("student", i)
    }

    /// Many concurrent callers: each gets its own seq, the chain verifies, and the records
    /// are sealed in fewer transactions than records (batches formed under load).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_batched_into_one_chain() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = store(&dir).await;
        let appender = Arc::new(AuditAppender::new(store.clone()));
        let mut tasks = Vec::new();
        for i in 0..300 {
            let appender = appender.clone();
            tasks.push(tokio::spawn(async move { (i, appender.append(event(i)).await) }));
        }
        let mut seqs = Vec::new();
        for t in tasks {
            let (i, seq) = t.await.expect("task");
            let seq = seq.expect("appended");
            let rec = store.list_audit(seq - 1, 1).await.expect("read").remove(0);
            assert_eq!(rec.event, event(i), "the seq acknowledged is the caller's own record");
            seqs.push(seq);
        }
        seqs.sort_unstable();
        assert_eq!(seqs, (1..=300).collect::<Vec<_>>());
        let check = verify_chain(store.as_ref(), &TestSealer).await.expect("chain");
        assert_eq!(check.records, 300);
    }

    /// A lone caller is served at once, and an acknowledged record is already committed:
    /// another connection reads it right after the ack.
    #[tokio::test]
    async fn an_acknowledged_record_is_committed() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = store(&dir).await;
        let appender = AuditAppender::new(store.clone());
        for i in 1..=3 {
            assert_eq!(appender.append(event(i)).await.expect("append"), i);
            assert_eq!(store.list_audit(0, 10).await.expect("read").len() as i64, i);
        }
    }

    /// When the runtime that started the task is gone, appends still work (directly,
    /// unbatched) and the chain stays whole.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_survive_the_runtime_that_started_the_task() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = store(&dir).await;
        let appender = Arc::new(AuditAppender::new(store.clone()));
        let first = appender.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("rt");
            rt.block_on(first.append(event(1))).expect("append");
        })
        .join()
        .expect("thread");
        assert_eq!(appender.append(event(2)).await.expect("append after"), 2);
        verify_chain(store.as_ref(), &TestSealer).await.expect("chain");
    }
}
