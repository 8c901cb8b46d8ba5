//! The check's ids on disk: what validation remembers of persons, lessons, marks and the other
//! kinds that grow with the region, kept in a private temporary SQLite file with a bounded page
//! cache, so the import of a region holds a fixed amount of memory however large the set is.
//! The OneRoster reader keeps its own tables in the same kind of scratch file ([`scratch`]).
//!
//! SQLite deletes the file when the connection closes (and unlinks it right after creating it,
//! so a crash leaves nothing behind). No personal data goes in: СНИЛС are stored as a keyed
//! hash whose key lives only in this process.

use hmac::{Hmac, Mac};
use rand::RngCore;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Sha256;

/// Pages of the scratch file kept in memory: 16 MiB (SQLite counts a negative size in KiB).
const CACHE_KIB: i64 = 16 * 1024;
/// Inserts per scratch transaction: the file is private and needs no durability, but one
/// transaction per row would write a page per row.
const OPS_PER_COMMIT: u32 = 50_000;

/// What a key names. The number is stored; do not renumber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Person = 1,
    /// Keyed hash of a СНИЛС → the person it was first given to.
    Snils = 2,
    GroupMember = 3,
    Enrolment = 4,
    Guardianship = 5,
    /// Assignment → its school, year and grading.
    Assignment = 6,
    /// Timetable slot → its year.
    Slot = 7,
    Substitution = 8,
    /// Lesson → its school, date and grading.
    Lesson = 9,
    LessonSlot = 10,
    /// Mark → its school.
    Mark = 11,
    Attendance = 12,
    FinalMark = 13,
    MarkChange = 14,
}

/// A key of several parts, each length-prefixed, so that ("a", "bc") and ("ab", "c") differ.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn of(part: &str) -> Self {
        Self::default().str(part)
    }

    pub fn str(mut self, part: &str) -> Self {
        self.0.extend_from_slice(&(part.len() as u32).to_le_bytes());
        self.0.extend_from_slice(part.as_bytes());
        self
    }

    pub fn int(mut self, n: i64) -> Self {
        self.0.extend_from_slice(&8u32.to_le_bytes());
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
}

/// The scratch file could not be created or written (disk full, temporary directory missing).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ScratchError(pub String);

impl From<rusqlite::Error> for ScratchError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

/// The ids seen so far, by kind.
///
/// Every method answers even after a failure of the file, so that the row checks read as
/// plain set operations; the first failure is kept and [`Keys::take_error`] hands it to the
/// reader, which stops the import with it. Until then a failed lookup answers "present", so a
/// broken scratch file cannot add false "not found" errors.
pub struct Keys {
    conn: Option<Connection>,
    snils_key: SnilsKey,
    ops: u32,
    error: Option<ScratchError>,
}

impl Default for Keys {
    fn default() -> Self {
        Self::open()
    }
}

impl Keys {
    /// A fresh scratch file (see [`scratch`]).
    pub fn open() -> Self {
        let mut keys = Self { conn: None, snils_key: SnilsKey::new(), ops: 0, error: None };
        match Self::connect() {
            Ok(conn) => keys.conn = Some(conn),
            Err(e) => keys.error = Some(e),
        }
        keys
    }

    fn connect() -> Result<Connection, ScratchError> {
        scratch(
            "CREATE TABLE k (kind INTEGER NOT NULL, key BLOB NOT NULL, val BLOB NOT NULL,
                             PRIMARY KEY (kind, key)) WITHOUT ROWID;",
        )
    }

    /// The first failure of the scratch file, if any (then the import must stop).
    pub fn take_error(&mut self) -> Option<ScratchError> {
        self.error.take()
    }

    /// Adds `key` with `val`. `None` when it is new; the value it already had otherwise
    /// (which stays: the first row with an id is the one the others are checked against).
    pub fn insert(&mut self, kind: Kind, key: &Key, val: &[u8]) -> Option<Vec<u8>> {
        let Some(conn) = self.conn.as_ref() else { return Some(Vec::new()) };
        let added = conn
            .prepare_cached(
                "INSERT INTO k (kind, key, val) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            )
            .and_then(|mut st| st.execute(params![kind as u8, key.0, val]));
        match added {
            Ok(0) => Some(self.get(kind, key).unwrap_or_default()),
            Ok(_) => {
                if let Err(e) = tick(conn, &mut self.ops) {
                    fail(&mut self.error, e);
                }
                None
            }
            Err(e) => {
                fail(&mut self.error, e);
                Some(Vec::new())
            }
        }
    }

    /// Adds `key` without a value: `true` when it is new.
    pub fn add(&mut self, kind: Kind, key: &Key) -> bool {
        self.insert(kind, key, &[]).is_none()
    }

    /// The value stored with `key`, `None` when absent.
    pub fn get(&mut self, kind: Kind, key: &Key) -> Option<Vec<u8>> {
        let conn = self.conn.as_ref()?;
        let found = conn.prepare_cached("SELECT val FROM k WHERE kind = ?1 AND key = ?2").and_then(
            |mut st| {
                st.query_row(params![kind as u8, key.0], |r| r.get::<_, Vec<u8>>(0)).optional()
            },
        );
        found.unwrap_or_else(|e| {
            fail(&mut self.error, e);
            None
        })
    }

    pub fn contains(&mut self, kind: Kind, key: &Key) -> bool {
        let Some(conn) = self.conn.as_ref() else { return true };
        let found = conn
            .prepare_cached("SELECT 1 FROM k WHERE kind = ?1 AND key = ?2")
            .and_then(|mut st| st.exists(params![kind as u8, key.0]));
        found.unwrap_or_else(|e| {
            fail(&mut self.error, e);
            true
        })
    }

    /// The key a СНИЛС is stored under: a keyed hash, so the file holds no СНИЛС.
    pub fn snils(&self, digits: &str) -> Key {
        Key(self.snils_key.hash(digits))
    }
}

/// A fresh private scratch database with the given tables, a transaction already open (the
/// owner commits every so often, see [`OPS_PER_COMMIT`]). It lives in SQLite's temporary
/// directory (`SQLITE_TMPDIR`, `TMPDIR`, then `/var/tmp`, which is on disk where `/tmp` may be
/// memory) and is gone when the connection closes.
pub(super) fn scratch(schema: &str) -> Result<Connection, ScratchError> {
    let conn = Connection::open("")?;
    // The file is private and thrown away: no journal, no fsync, one writer.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = OFF;
         PRAGMA synchronous = OFF;
         PRAGMA locking_mode = EXCLUSIVE;
         PRAGMA temp_store = FILE;
         PRAGMA cache_size = -{CACHE_KIB};
         {schema}
         BEGIN;"
    ))?;
    Ok(conn)
}

/// Commits the scratch transaction after every [`OPS_PER_COMMIT`] counted writes.
pub(super) fn tick(conn: &Connection, ops: &mut u32) -> Result<(), ScratchError> {
    *ops += 1;
    if *ops >= OPS_PER_COMMIT {
        *ops = 0;
        conn.execute_batch("COMMIT; BEGIN;")?;
    }
    Ok(())
}

/// The per-import key that hides СНИЛС in a scratch file: a keyed hash tells two numbers
/// apart (a person entered twice) without storing them; the key lives only in this process.
pub(super) struct SnilsKey([u8; 32]);

impl SnilsKey {
    pub(super) fn new() -> Self {
        let mut key = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut key);
        Self(key)
    }

    pub(super) fn hash(&self, digits: &str) -> Vec<u8> {
        // A key of any length is accepted by HMAC.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(digits.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

fn fail(slot: &mut Option<ScratchError>, e: impl Into<ScratchError>) {
    slot.get_or_insert(e.into());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_keys_by_kind_and_keeps_the_first_value() {
        let mut k = Keys::open();
        assert_eq!(k.insert(Kind::Lesson, &Key::of("l-1"), b"first"), None);
        assert_eq!(k.insert(Kind::Lesson, &Key::of("l-1"), b"second"), Some(b"first".to_vec()));
        assert_eq!(k.get(Kind::Lesson, &Key::of("l-1")), Some(b"first".to_vec()));
        // The same id of another kind is another key.
        assert!(!k.contains(Kind::Mark, &Key::of("l-1")));
        assert!(k.add(Kind::Mark, &Key::of("l-1")));
        assert!(!k.add(Kind::Mark, &Key::of("l-1")));
        assert_eq!(k.get(Kind::Person, &Key::of("nobody")), None);
        assert!(k.take_error().is_none());
    }

    #[test]
    fn parts_of_a_key_do_not_run_into_each_other() {
        let mut k = Keys::open();
        assert!(k.add(Kind::Guardianship, &Key::of("a").str("bc")));
        assert!(k.add(Kind::Guardianship, &Key::of("ab").str("c")));
        assert!(k.add(Kind::LessonSlot, &Key::of("x").int(1)));
        assert!(!k.add(Kind::LessonSlot, &Key::of("x").int(1)));
        assert!(k.add(Kind::LessonSlot, &Key::of("x").int(2)));
    }

    #[test]
    fn holds_more_than_one_commit_of_keys() {
        let mut k = Keys::open();
        let n = OPS_PER_COMMIT + 10;
        for i in 0..n {
            assert!(k.add(Kind::Mark, &Key::of(&format!("m-{i}"))));
        }
        for i in [0, OPS_PER_COMMIT - 1, OPS_PER_COMMIT, n - 1] {
            assert!(k.contains(Kind::Mark, &Key::of(&format!("m-{i}"))), "m-{i}");
        }
        assert!(!k.add(Kind::Mark, &Key::of("m-0")));
        assert!(k.take_error().is_none());
    }

    #[test]
    fn a_snils_key_hides_the_number_and_tells_numbers_apart() {
        let k = Keys::open();
        let a = k.snils("11223344595");
        assert_eq!(a, k.snils("11223344595"));
        assert_ne!(a, k.snils("11223344596"));
        assert!(!a.0.windows(11).any(|w| w == b"11223344595"));
        // Another import hashes with another key.
        assert_ne!(a, Keys::open().snils("11223344595"));
    }
}
