//! Места для построения отчётов (area `bench`): how many reports are built at once.
//!
//! A school report reads a term of the school's marks into memory, and its XLSX or PDF is
//! built in memory too. Building many at once makes none of them faster and multiplies the
//! memory: 32 concurrent XLSX reports (2 s each, waiting on one another) took the SQLite
//! server past 300 MB in the bench's tenth round. So a request waits for a place,
//! and after `wait` it is told to come back instead of piling up.

use std::num::NonZeroUsize;
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::AppError;

/// Places unless configured (`[web] reports_at_once`): twice the bench machine's cores. A
/// report alternates between the database and computing, so with one per core the cores idle
/// (SQLite, 20,000 students: 18 reports/s with 2 places, 16–23 with 4, ~30 with 32).
pub const DEFAULT_AT_ONCE: NonZeroUsize = NonZeroUsize::new(4).expect("4 is not zero");
/// How long a request waits for a place unless configured (`[web] report_wait_seconds`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

pub(crate) struct ReportPlaces {
    places: Semaphore,
    at_once: NonZeroUsize,
    wait: Duration,
}

impl ReportPlaces {
    pub(crate) fn new(at_once: NonZeroUsize, wait: Duration) -> Self {
        Self { places: Semaphore::new(at_once.get()), at_once, wait }
    }

    /// Waits for a place; the report is built while the returned permit lives.
    pub(crate) async fn enter(&self) -> Result<SemaphorePermit<'_>, AppError> {
        match tokio::time::timeout(self.wait, self.places.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; if it were, no report could be built either.
            Ok(Err(_)) | Err(_) => Err(AppError::Busy(format!(
                "Сейчас строится слишком много отчётов (одновременно не больше {}), а ваш ждал \
                 очереди {} с. Повторите запрос через минуту.",
                self.at_once,
                self.wait.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_report_waits_for_a_free_place_and_gives_up_after_the_wait() {
        let places = ReportPlaces::new(NonZeroUsize::MIN, Duration::from_millis(50));
        let first = places.enter().await.expect("a free place");
        match places.enter().await {
            Err(AppError::Busy(msg)) => assert!(msg.contains("не больше 1"), "{msg}"),
            other => panic!("expected Busy, got {:?}", other.map(|_| ())),
        }
        // A place freed while a request waits goes to that request.
        let free_soon = async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            drop(first);
        };
        let (waited, ()) = tokio::join!(places.enter(), free_soon);
        assert!(waited.is_ok(), "the freed place is taken");
    }

    #[tokio::test]
    async fn places_are_counted_not_shared_out_one_at_a_time() {
        let places = ReportPlaces::new(NonZeroUsize::new(2).expect("2"), Duration::from_millis(50));
        let _a = places.enter().await.expect("first place");
        let _b = places.enter().await.expect("second place");
        assert!(matches!(places.enter().await, Err(AppError::Busy(_))));
    }
}
