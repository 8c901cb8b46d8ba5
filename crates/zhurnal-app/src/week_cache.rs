//! Diary weeks built recently, kept while the database says nothing they show has changed
//! (area `bench`, docs/performance.md, tenth round), and the parts of a week that a class or a
//! school shares (eleventh round): the class's announcements and the school's work types.
//!
//! A week is read by five statements; serving it again costs none of them. An entry is used
//! only under the [`WeekStamp`] it was built under, which the diary's access check reads on
//! every request in the same statement as the student's class. The database's own triggers
//! bump the stamp in the transaction of every change a week shows, whoever writes (this
//! server, another instance, the CLI, an import), so an entry is never served after such a
//! change has committed. Authorization and the view's audit record happen on every request,
//! cached or not.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::NaiveDate;
use zhurnal_domain::{ClassId, PersonId};
use zhurnal_store::WeekStamp;

use crate::diary::DiaryWeek;

/// Weeks kept unless configured (`[web] diary_weeks_in_memory`); the oldest built goes first.
/// A week took ~16 KB of the server's memory in the benchmark, so 2,048 cost ~32 MB.
pub(crate) const DEFAULT_CAPACITY: usize = 2048;

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

struct Inner<K, V> {
    weeks: HashMap<K, (WeekStamp, Arc<V>)>,
    /// Keys in the order they were first stored, for eviction.
    order: VecDeque<K>,
}

/// Values kept under the stamp they were built under; the oldest stored goes first.
pub(crate) struct StampedCache<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

impl<K: Copy + Eq + Hash, V> StampedCache<K, V> {
    /// `capacity` 0 keeps nothing.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            inner: Mutex::new(Inner { weeks: HashMap::new(), order: VecDeque::new() }),
        }
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
    use crate::diary::StudentCard;

    fn week(n: i64) -> Arc<DiaryWeek> {
        let monday = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
        Arc::new(DiaryWeek {
            student: StudentCard {
                id: format!("s{n}"),
                name: String::new(),
                class: String::new(),
                school: String::new(),
                visible_until: None,
            },
            monday,
            sunday: monday,
            previous_week: monday,
            next_week: monday,
            days: Vec::new(),
            announcements: Vec::new(),
        })
    }

    fn key(student: i64) -> WeekKey {
        WeekKey {
            student: PersonId(student),
            class: ClassId(1),
            monday: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
            visible_until: None,
        }
    }

    const S1: WeekStamp = WeekStamp { class: 1, region: 0 };
    const S2: WeekStamp = WeekStamp { class: 2, region: 0 };

    #[test]
    fn a_week_is_served_only_under_the_stamp_it_was_built_under() {
        let cache = WeekCache::new(8);
        cache.put(key(1), S1, week(1));
        assert_eq!(cache.get(&key(1), S1).unwrap().student.id, "s1");
        assert!(cache.get(&key(1), S2).is_none(), "a newer stamp: the class changed");
        assert!(cache.get(&key(1), WeekStamp { class: 1, region: 1 }).is_none());
        assert!(cache.get(&key(2), S1).is_none(), "another student");
        let other_viewer =
            WeekKey { visible_until: NaiveDate::from_ymd_opt(2026, 11, 25), ..key(1) };
        assert!(cache.get(&other_viewer, S1).is_none(), "a viewer who sees less");
    }

    #[test]
    fn a_newer_week_replaces_an_older_one_and_not_the_other_way() {
        let cache = WeekCache::new(8);
        cache.put(key(1), S2, week(2));
        cache.put(key(1), S1, week(1));
        assert_eq!(cache.get(&key(1), S2).unwrap().student.id, "s2");
        cache.put(key(1), WeekStamp { class: 3, region: 0 }, week(3));
        assert!(cache.get(&key(1), S2).is_none());
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn the_oldest_stored_week_goes_first_when_full() {
        let cache = WeekCache::new(2);
        cache.put(key(1), S1, week(1));
        cache.put(key(2), S1, week(2));
        cache.put(key(1), S2, week(1));
        cache.put(key(3), S1, week(3));
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&key(1), S2).is_none(), "stored first, gone first");
        assert!(cache.get(&key(2), S1).is_some());
        assert!(cache.get(&key(3), S1).is_some());
        let none = WeekCache::new(0);
        none.put(key(1), S1, week(1));
        assert!(none.get(&key(1), S1).is_none());
    }
}
