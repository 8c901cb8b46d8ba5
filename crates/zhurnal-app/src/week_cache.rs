//! Diary weeks built recently, kept while the database says nothing they show has changed
//! (area `bench`, docs/performance.md, tenth round), and the parts of a week that a class or a
//! school shares (eleventh and twelfth rounds): the class's lessons (every group's) and files,
//! its announcements, and the school's work types.
//!
//! A student's week is built from the class's part (two statements, read once for the class
//! and shared by its ~25 students) and the student's own statement (marks, absences, and the
//! class's groups the student is not in, whose lessons are dropped). An entry is used only under the [`WeekStamp`] it was built under, which the
//! diary's access check reads on every request in the same statement as the student's class.
//! The database's own triggers bump the stamp in the transaction of every change a week shows,
//! whoever writes (this server, another instance, the CLI, an import), so an entry is never
//! served after such a change has committed. Authorization and the view's audit record happen
//! on every request, cached or not.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use tokio::sync::OnceCell;
use zhurnal_domain::{ClassId, PersonId};
use zhurnal_store::{ClassWeek, WeekStamp};

use crate::diary::DiaryWeek;

/// Weeks kept unless configured (`[web] diary_weeks_in_memory`); the oldest built goes first.
/// A week took ~16 KB of the server's memory in the benchmark, so 2,048 cost ~32 MB.
pub(crate) const DEFAULT_CAPACITY: usize = 2048;

/// Classes' parts kept for `weeks` students' weeks: a class has ~25 students, so a quarter as
/// many leaves room for the classes of every kept student's week several times over. A
/// class's part took ~20 KB.
pub(crate) fn class_capacity(weeks: usize) -> usize {
    weeks.div_ceil(4)
}

/// Whose week, of which class, from which Monday, and up to which date the viewer may see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct WeekKey {
    pub student: PersonId,
    pub class: ClassId,
    pub monday: NaiveDate,
    pub visible_until: Option<NaiveDate>,
}

/// The diary weeks kept.
pub(crate) type WeekCache = StampedCache<WeekKey, DiaryWeek>;

/// Which class, from which Monday, up to which date (a viewer who may see less than the whole
/// week, a former student's, reads up to the day they left).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClassWeekKey {
    pub class: ClassId,
    pub monday: NaiveDate,
    pub to: NaiveDate,
}

/// The classes' parts of weeks kept.
pub(crate) type ClassWeekCache = StampedCache<ClassWeekKey, ClassWeek>;

struct Inner<K, V> {
    weeks: HashMap<K, (WeekStamp, Arc<V>)>,
    /// Keys in the order they were first stored, for eviction.
    order: VecDeque<K>,
}

/// Values kept under the stamp they were built under; the oldest stored goes first.
pub(crate) struct StampedCache<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
    /// Values being built, by key and stamp: requests that miss the same value at the same
    /// time wait for one build instead of each reading the database (the families of a class
    /// opening the same week at once).
    building: Mutex<HashMap<(K, WeekStamp), Build<V>>>,
}

/// A value being built, which the requests that wait for it share.
type Build<V> = Arc<OnceCell<Arc<V>>>;

/// Forgets a build when the first of its requests finishes or goes away (a client that
/// disconnects drops its request at any await): later requests find the value stored, or,
/// after a failure, start a build of their own. Without it, a build whose requests all went
/// away would stay in the map for good.
struct Forget<'a, K: Copy + Eq + Hash, V> {
    building: &'a Mutex<HashMap<(K, WeekStamp), Build<V>>>,
    key: (K, WeekStamp),
    cell: Build<V>,
}

impl<K: Copy + Eq + Hash, V> Drop for Forget<'_, K, V> {
    fn drop(&mut self) {
        let mut building = self.building.lock().unwrap_or_else(PoisonError::into_inner);
        if building.get(&self.key).is_some_and(|c| Arc::ptr_eq(c, &self.cell)) {
            building.remove(&self.key);
        }
    }
}

impl<K: Copy + Eq + Hash, V> StampedCache<K, V> {
    /// `capacity` 0 keeps nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner { weeks: HashMap::new(), order: VecDeque::new() }),
            building: Mutex::new(HashMap::new()),
        }
    }

    /// The value stored for `key` under `stamp`, else built by `build` and stored. Requests
    /// that ask for the same key and stamp while it is built wait for that build; if it fails
    /// (or its request goes away), the next of them builds. With capacity 0 every request
    /// builds its own.
    pub(crate) async fn get_or_build<E, F>(
        &self,
        key: K,
        stamp: WeekStamp,
        build: impl FnOnce() -> F,
    ) -> Result<Arc<V>, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.get(&key, stamp) {
            return Ok(value);
        }
        if self.capacity == 0 {
            return Ok(Arc::new(build().await?));
        }
        let cell = {
            let mut building = self.building.lock().unwrap_or_else(PoisonError::into_inner);
            building.entry((key, stamp)).or_default().clone()
        };
        let _forget = Forget { building: &self.building, key: (key, stamp), cell: cell.clone() };
        cell.get_or_try_init(|| async {
            let value = Arc::new(build().await?);
            self.put(key, stamp, value.clone());
            Ok(value)
        })
        .await
        .cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        // A panic elsewhere cannot leave the map half-changed: each method changes it in
        // steps that are each whole.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The value stored for `key`, if it was built under `stamp`.
    pub(crate) fn get(&self, key: &K, stamp: WeekStamp) -> Option<Arc<V>> {
        let inner = self.lock();
        inner.weeks.get(key).filter(|(s, _)| *s == stamp).map(|(_, w)| w.clone())
    }

    /// Stores a value built under `stamp`, replacing an older one of the same key. A value
    /// built under an older stamp than the one stored (a slow request overtaken by a fast
    /// one) does not replace it.
    pub(crate) fn put(&self, key: K, stamp: WeekStamp, week: Arc<V>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if let Some((old, w)) = inner.weeks.get_mut(&key) {
            // Both parts only grow, so a stamp read later is at least as large in each.
            if stamp.class >= old.class && stamp.region >= old.region {
                *old = stamp;
                *w = week;
            }
            return;
        }
        while inner.weeks.len() >= self.capacity {
            let Some(oldest) = inner.order.pop_front() else { break };
            inner.weeks.remove(&oldest);
        }
        inner.order.push_back(key);
        inner.weeks.insert(key, (stamp, week));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().weeks.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn week(n: i64) -> Arc<String> {
        Arc::new(format!("w{n}"))
    }

    fn key(class: i64) -> ClassWeekKey {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        ClassWeekKey { class: ClassId(class), monday, to: monday + chrono::Duration::days(6) }
    }

    type Cache = StampedCache<ClassWeekKey, String>;

    const S1: WeekStamp = WeekStamp { class: 1, region: 0 };
    const S2: WeekStamp = WeekStamp { class: 2, region: 0 };

    #[test]
    fn a_week_is_served_only_under_the_stamp_it_was_built_under() {
        let cache = Cache::new(8);
        cache.put(key(1), S1, week(1));
        assert_eq!(*cache.get(&key(1), S1).unwrap(), "w1");
        assert!(cache.get(&key(1), S2).is_none(), "a newer stamp: the class changed");
        assert!(cache.get(&key(1), WeekStamp { class: 1, region: 1 }).is_none());
        assert!(cache.get(&key(2), S1).is_none(), "another class");
        let shorter = ClassWeekKey { to: NaiveDate::from_ymd_opt(2026, 11, 25).unwrap(), ..key(1) };
        assert!(cache.get(&shorter, S1).is_none(), "a viewer who sees less");
    }

    #[test]
    fn a_newer_week_replaces_an_older_one_and_not_the_other_way() {
        let cache = Cache::new(8);
        cache.put(key(1), S2, week(2));
        cache.put(key(1), S1, week(1));
        assert_eq!(*cache.get(&key(1), S2).unwrap(), "w2");
        cache.put(key(1), WeekStamp { class: 3, region: 0 }, week(3));
        assert!(cache.get(&key(1), S2).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn requests_missing_the_same_week_at_once_share_one_build() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let cache = Cache::new(8);
        let builds = AtomicUsize::new(0);
        let build = |n: i64| {
            let builds = &builds;
            move || async move {
                builds.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok::<_, &str>(format!("w{n}"))
            }
        };
        let (a, b, c) = tokio::join!(
            cache.get_or_build(key(1), S1, build(1)),
            cache.get_or_build(key(1), S1, build(2)),
            cache.get_or_build(key(1), S1, build(3)),
        );
        for built in [a, b, c] {
            assert_eq!(*built.unwrap(), "w1");
        }
        assert_eq!(builds.load(Ordering::SeqCst), 1, "one build for the three");
        assert_eq!(*cache.get(&key(1), S1).unwrap(), "w1", "and it is kept");
        let (_, newer) = tokio::join!(
            cache.get_or_build(key(1), S1, build(4)),
            cache.get_or_build(key(1), S2, build(5)),
        );
        assert_eq!(*newer.unwrap(), "w5", "another stamp is another build");
        assert_eq!(builds.load(Ordering::SeqCst), 2);

        let failed = cache.get_or_build(key(2), S1, || async { Err::<String, _>("down") }).await;
        assert_eq!(failed.unwrap_err(), "down");
        assert_eq!(*cache.get_or_build(key(2), S1, build(6)).await.unwrap(), "w6", "built again");
        assert!(cache.building.lock().unwrap().is_empty(), "nothing left being built");
    }

    #[tokio::test]
    async fn a_build_whose_request_went_away_is_forgotten() {
        let cache = Cache::new(8);
        let slow = || async {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            Ok::<_, &str>("never".to_string())
        };
        let gone = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            cache.get_or_build(key(1), S1, slow),
        )
        .await;
        assert!(gone.is_err(), "the request went away while building");
        assert!(cache.building.lock().unwrap().is_empty(), "its build is forgotten");
        let next = cache.get_or_build(key(1), S1, || async { Ok::<_, &str>("w1".to_string()) });
        assert_eq!(*next.await.unwrap(), "w1", "the next request builds");
    }

    #[test]
    fn the_oldest_stored_week_goes_first_when_full() {
        let cache = Cache::new(2);
        cache.put(key(1), S1, week(1));
        cache.put(key(2), S1, week(2));
        cache.put(key(1), S2, week(1));
        cache.put(key(3), S1, week(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key(1), S2).is_none(), "stored first, gone first");
        assert!(cache.get(&key(2), S1).is_some());
        assert!(cache.get(&key(3), S1).is_some());
        let none = Cache::new(0);
        none.put(key(1), S1, week(1));
        assert!(none.get(&key(1), S1).is_none());
    }
}
