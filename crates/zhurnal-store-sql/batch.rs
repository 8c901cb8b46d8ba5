//! Applying a [`Batch`] inside one write transaction, upserting by external id.
//!
//! A batch is written table by table in multi-row statements: the references of a table's rows
//! are resolved in one query per [`MAX_ROWS`] ids, and its rows are upserted in one
//! `INSERT … ON CONFLICT … DO UPDATE … WHERE <a column differs>` per chunk, so a part of an
//! import costs a few dozen statements instead of two per row.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use sqlx::Row;
use zhurnal_domain::{Role, RoleScope};
use zhurnal_store::batch::*;
use zhurnal_store::{StoreError, StoreResult};

use crate::backend::{Db, DbConn};
use crate::map_err;

/// Rows per statement. The parameters of a chunk stay far under SQLite's 32,766 and
/// PostgreSQL's 65,535 (the widest table here has 13 columns).
pub(crate) const MAX_ROWS: usize = 500;

/// A bindable value; lets one upsert routine serve every table.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum V {
    I(i64),
    OI(Option<i64>),
    T(String),
    OT(Option<String>),
    D(NaiveDate),
    OD(Option<NaiveDate>),
    B(bool),
    OBy(Option<Vec<u8>>),
}

type Q<'q> = sqlx::query::Query<'q, Db, <Db as sqlx::Database>::Arguments<'q>>;

impl V {
    fn is_null(&self) -> bool {
        matches!(self, V::OI(None) | V::OT(None) | V::OD(None) | V::OBy(None))
    }
}

fn bind<'q>(q: Q<'q>, v: &V) -> Q<'q> {
    match v.clone() {
        V::I(x) => q.bind(x),
        V::OI(x) => q.bind(x),
        V::T(x) => q.bind(x),
        V::OT(x) => q.bind(x),
        V::D(x) => q.bind(x),
        V::OD(x) => q.bind(x),
        V::B(x) => q.bind(x),
        V::OBy(x) => q.bind(x),
    }
}

/// The columns of an upserted table. Names are compile-time constants of this module, never
/// input, so they can be formatted into SQL.
struct Table {
    name: &'static str,
    /// The unique key `ON CONFLICT` targets; never null in a row.
    key: &'static [&'static str],
    /// Columns a re-run may change.
    set: &'static [&'static str],
    /// Columns written only when the row is created.
    insert_only: &'static [&'static str],
}

impl Table {
    fn by_external_id(&self) -> bool {
        self.key == ["external_id"]
    }
}

/// One row of a [`Table`]: its values in the order of `key`, `set`, `insert_only`.
struct Up {
    key: Vec<V>,
    set: Vec<V>,
    insert_only: Vec<V>,
}

/// Parameter `n` of a generated statement, in the backend's style (parameters always appear
/// in the order they are bound).
fn param(out: &mut String, n: usize) {
    if crate::backend::NUMBERED_PARAMS {
        out.push('$');
        out.push_str(&n.to_string());
    } else {
        out.push('?');
    }
}

/// `($1, $2), ($3, $4), …` for `rows` rows of `width` columns, numbered from `$first`.
fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            param(&mut out, first + r * width + c);
        }
        out.push(')');
    }
    out
}

/// Splits rows into chunks of at most [`MAX_ROWS`] that never hold the same key twice:
/// PostgreSQL refuses to update one row twice in a statement, and a repeated key has to win in
/// file order as it would row by row.
fn chunks<K: Eq + std::hash::Hash>(keys: impl Iterator<Item = K>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut start = 0;
    let mut len = 0;
    for (i, k) in keys.enumerate() {
        if i - start == MAX_ROWS || seen.contains(&k) {
            out.push(start..i);
            start = i;
            seen.clear();
        }
        seen.insert(k);
        len = i + 1;
    }
    if start < len {
        out.push(start..len);
    }
    out
}

/// `$first, $first+1, …` for a list of `n` values.
pub(crate) fn list(n: usize, first: usize) -> String {
    let mut out = String::with_capacity(n * 5);
    for i in first..first + n {
        if i > first {
            out.push_str(", ");
        }
        param(&mut out, i);
    }
    out
}

/// The school column and the joins that reach it from `table` (aliased `t`), for the tables
/// whose referring rows need the school: an enrolment stores its class's school, a lesson's
/// marks take the work types of its assignment's school.
fn school_join(table: &str) -> Option<&'static str> {
    match table {
        "classes" => Some("t.school_id FROM classes t"),
        "assignments" => Some("c.school_id FROM assignments t JOIN classes c ON c.id = t.class_id"),
        "lessons" => Some(
            "c.school_id FROM lessons t JOIN assignments a ON a.id = t.assignment_id \
             JOIN classes c ON c.id = a.class_id",
        ),
        _ => None,
    }
}

struct Ctx<'c> {
    conn: &'c mut DbConn,
    ids: HashMap<(&'static str, String), i64>,
    school_of_assignment: HashMap<i64, i64>,
    school_of_class: HashMap<i64, i64>,
    /// The school of a lesson (by row id), for its marks' work types.
    school_of_lesson: HashMap<i64, i64>,
    work_types: HashMap<(i64, String), (i64, i64)>,
    stats: BatchStats,
}

impl Ctx<'_> {
    /// Upserts one row keyed by `key` columns; only `set` columns change on a re-run. Only for
    /// a key that may hold nulls (a role's scope), which `ON CONFLICT` cannot match.
    async fn upsert(
        &mut self,
        table: &'static str,
        key: &[(&'static str, V)],
        set: &[(&'static str, V)],
        insert_only: &[(&'static str, V)],
    ) -> StoreResult<i64> {
        // `IS NOT DISTINCT FROM` would be null-safe, but PostgreSQL cannot use an index for
        // it, so a null key value becomes `IS NULL` and any other `= $n`: the lookup by
        // external id stays an index scan on both backends.
        let mut where_key: Vec<String> = Vec::with_capacity(key.len());
        let mut params = 0;
        for (c, v) in key {
            if v.is_null() {
                where_key.push(format!("{c} IS NULL"));
            } else {
                params += 1;
                where_key.push(format!("{c} = ${params}"));
            }
        }
        let select = format!("SELECT id FROM {table} WHERE {}", where_key.join(" AND "));
        let mut q = sqlx::query(&select);
        for (_, v) in key.iter().filter(|(_, v)| !v.is_null()) {
            q = bind(q, v);
        }
        let found = q.fetch_optional(&mut *self.conn).await.map_err(map_err)?;
        if let Some(row) = found {
            let id: i64 = row.try_get(0).map_err(map_err)?;
            if set.is_empty() {
                self.stats.unchanged += 1;
                return Ok(id);
            }
            let assigns: Vec<String> =
                set.iter().enumerate().map(|(i, (c, _))| format!("{c} = ${}", i + 1)).collect();
            let differs: Vec<String> = set
                .iter()
                .enumerate()
                .map(|(i, (c, _))| format!("{c} IS DISTINCT FROM ${}", i + 1))
                .collect();
            let update = format!(
                "UPDATE {table} SET {} WHERE id = ${} AND ({})",
                assigns.join(", "),
                set.len() + 1,
                differs.join(" OR ")
            );
            let mut q = sqlx::query(&update);
            for (_, v) in set {
                q = bind(q, v);
            }
            let done = q.bind(id).execute(&mut *self.conn).await.map_err(map_err)?;
            if done.rows_affected() > 0 {
                self.stats.updated += 1;
            } else {
                self.stats.unchanged += 1;
            }
            return Ok(id);
        }
        let all: Vec<&(&'static str, V)> = key.iter().chain(set).chain(insert_only).collect();
        let cols: Vec<&str> = all.iter().map(|(c, _)| *c).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({}) RETURNING id",
            cols.join(", "),
            list(all.len(), 1)
        );
        let mut q = sqlx::query(&insert);
        for (_, v) in &all {
            q = bind(q, v);
        }
        let row = q.fetch_one(&mut *self.conn).await.map_err(map_err)?;
        self.stats.inserted += 1;
        row.try_get(0).map_err(map_err)
    }

    /// Upserts `rows` of `t` in multi-row statements, with the counts and (for a table keyed
    /// by external id) the row ids a row-by-row upsert would give.
    async fn upsert_many(&mut self, t: &Table, rows: &[Up]) -> StoreResult<()> {
        for range in chunks(rows.iter().map(|r| &r.key)) {
            self.upsert_chunk(t, &rows[range]).await?;
        }
        Ok(())
    }

    async fn upsert_chunk(&mut self, t: &Table, rows: &[Up]) -> StoreResult<()> {
        let n = rows.len();
        // The keys already stored: what the upsert leaves unchanged returns no row, so they
        // give the counts, and the ids of the unchanged rows.
        let existing = if t.by_external_id() {
            let sql = format!(
                "SELECT external_id, id FROM {} WHERE external_id IN ({})",
                t.name,
                list(n, 1)
            );
            let mut q = sqlx::query(&sql);
            for r in rows {
                q = bind(q, &r.key[0]);
            }
            let found = q.fetch_all(&mut *self.conn).await.map_err(map_err)?;
            for row in &found {
                let external_id: String = row.try_get(0).map_err(map_err)?;
                let id: i64 = row.try_get(1).map_err(map_err)?;
                self.ids.insert((t.name, external_id), id);
            }
            found.len()
        } else {
            let sql = format!(
                "SELECT count(*) FROM {} WHERE ({}) IN (VALUES {})",
                t.name,
                t.key.join(", "),
                placeholders(n, t.key.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for v in rows.iter().flat_map(|r| &r.key) {
                q = bind(q, v);
            }
            let count: i64 =
                q.fetch_one(&mut *self.conn).await.map_err(map_err)?.try_get(0).map_err(map_err)?;
            usize::try_from(count).unwrap_or(0)
        };
        let cols: Vec<&str> = t.key.iter().chain(t.set).chain(t.insert_only).copied().collect();
        let on_conflict = if t.set.is_empty() {
            "DO NOTHING".to_string()
        } else {
            let assigns: Vec<String> =
                t.set.iter().map(|c| format!("{c} = excluded.{c}")).collect();
            let differs: Vec<String> = t
                .set
                .iter()
                .map(|c| format!("{}.{c} IS DISTINCT FROM excluded.{c}", t.name))
                .collect();
            format!("DO UPDATE SET {} WHERE {}", assigns.join(", "), differs.join(" OR "))
        };
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {} ON CONFLICT ({}) {on_conflict} RETURNING {}",
            t.name,
            cols.join(", "),
            placeholders(n, cols.len(), 1),
            t.key.join(", "),
            if t.by_external_id() { "external_id, id" } else { "id" },
        );
        let mut q = sqlx::query(&sql);
        for r in rows {
            for v in r.key.iter().chain(&r.set).chain(&r.insert_only) {
                q = bind(q, v);
            }
        }
        let written = q.fetch_all(&mut *self.conn).await.map_err(map_err)?;
        if t.by_external_id() {
            for row in &written {
                let external_id: String = row.try_get(0).map_err(map_err)?;
                let id: i64 = row.try_get(1).map_err(map_err)?;
                self.ids.insert((t.name, external_id), id);
            }
        }
        // Rows come back only when inserted or changed (`WHERE` of `DO UPDATE`).
        let inserted = n.saturating_sub(existing);
        let updated = written.len().saturating_sub(inserted);
        self.stats.inserted += inserted as u64;
        self.stats.updated += updated as u64;
        self.stats.unchanged += existing.saturating_sub(updated) as u64;
        Ok(())
    }

    /// Inserts link rows (`cols`, the first `key_len` of them the conflict key) in multi-row
    /// statements; `on_conflict` says what a stored key does. A row that inserted or changed
    /// counts as inserted, as the row-by-row statements counted it.
    async fn insert_many(
        &mut self,
        table: &'static str,
        cols: &[&str],
        key_len: usize,
        on_conflict: &str,
        rows: &[Vec<V>],
    ) -> StoreResult<()> {
        for range in chunks(rows.iter().map(|r| &r[..key_len])) {
            let chunk = &rows[range];
            let sql = format!(
                "INSERT INTO {table} ({}) VALUES {} ON CONFLICT {on_conflict}",
                cols.join(", "),
                placeholders(chunk.len(), cols.len(), 1)
            );
            let mut q = sqlx::query(&sql);
            for v in chunk.iter().flatten() {
                q = bind(q, v);
            }
            let done = q.execute(&mut *self.conn).await.map_err(map_err)?;
            let affected = usize::try_from(done.rows_affected()).unwrap_or(chunk.len());
            self.stats.inserted += affected as u64;
            self.stats.unchanged += chunk.len().saturating_sub(affected) as u64;
        }
        Ok(())
    }

    /// Loads the ids of the external ids not resolved yet, a chunk per statement, so the rows
    /// that refer to them find them in [`Self::id_of`]'s map. An id not found stays unresolved
    /// and is reported by `id_of`, with the kind of reference. For the tables whose referring
    /// rows need the school (see [`school_join`]) the same statement brings it.
    async fn prefetch<'a>(
        &mut self,
        table: &'static str,
        external_ids: impl Iterator<Item = &'a str>,
    ) -> StoreResult<()> {
        let mut wanted: Vec<&str> = Vec::new();
        let mut seen = HashSet::new();
        for e in external_ids {
            if seen.insert(e) && !self.ids.contains_key(&(table, e.to_string())) {
                wanted.push(e);
            }
        }
        let school = school_join(table);
        for chunk in wanted.chunks(MAX_ROWS) {
            let sql = match school {
                Some(join) => format!(
                    "SELECT t.external_id, t.id, {join} WHERE t.external_id IN ({})",
                    list(chunk.len(), 1)
                ),
                None => format!(
                    "SELECT external_id, id FROM {table} WHERE external_id IN ({})",
                    list(chunk.len(), 1)
                ),
            };
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q.bind(*e);
            }
            for row in q.fetch_all(&mut *self.conn).await.map_err(map_err)? {
                let external_id: String = row.try_get(0).map_err(map_err)?;
                let id: i64 = row.try_get(1).map_err(map_err)?;
                if let Some(schools) = self.schools_of(table) {
                    schools.insert(id, row.try_get(2).map_err(map_err)?);
                }
                self.ids.insert((table, external_id), id);
            }
        }
        Ok(())
    }

    /// The cache of the schools of `table`'s rows, for the tables [`school_join`] knows.
    fn schools_of(&mut self, table: &str) -> Option<&mut HashMap<i64, i64>> {
        match table {
            "classes" => Some(&mut self.school_of_class),
            "assignments" => Some(&mut self.school_of_assignment),
            "lessons" => Some(&mut self.school_of_lesson),
            _ => None,
        }
    }

    /// Resolves an external id to the row id, from this batch or from earlier ones.
    async fn id_of(
        &mut self,
        table: &'static str,
        kind: &'static str,
        external_id: &str,
    ) -> StoreResult<i64> {
        if let Some(id) = self.ids.get(&(table, external_id.to_string())) {
            return Ok(*id);
        }
        let sql = format!("SELECT id FROM {table} WHERE external_id = $1");
        let row = sqlx::query(&sql)
            .bind(external_id)
            .fetch_optional(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let id: i64 = match row {
            Some(r) => r.try_get(0).map_err(map_err)?,
            None => {
                return Err(StoreError::UnknownReference {
                    kind,
                    external_id: external_id.to_string(),
                });
            }
        };
        self.ids.insert((table, external_id.to_string()), id);
        Ok(id)
    }

    async fn school_of_assignment(&mut self, assignment: i64) -> StoreResult<i64> {
        if let Some(s) = self.school_of_assignment.get(&assignment) {
            return Ok(*s);
        }
        let row = sqlx::query("SELECT c.school_id FROM assignments a JOIN classes c ON c.id = a.class_id WHERE a.id = $1")
            .bind(assignment)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?;
        let s: i64 = row.try_get(0).map_err(map_err)?;
        self.school_of_assignment.insert(assignment, s);
        Ok(s)
    }

    async fn school_of_class(&mut self, class: i64) -> StoreResult<i64> {
        if let Some(s) = self.school_of_class.get(&class) {
            return Ok(*s);
        }
        let s: i64 = sqlx::query("SELECT school_id FROM classes WHERE id = $1")
            .bind(class)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?
            .try_get(0)
            .map_err(map_err)?;
        self.school_of_class.insert(class, s);
        Ok(s)
    }

    async fn school_of_lesson(&mut self, lesson: i64) -> StoreResult<i64> {
        if let Some(s) = self.school_of_lesson.get(&lesson) {
            return Ok(*s);
        }
        let a: i64 = sqlx::query("SELECT assignment_id FROM lessons WHERE id = $1")
            .bind(lesson)
            .fetch_one(&mut *self.conn)
            .await
            .map_err(map_err)?
            .try_get(0)
            .map_err(map_err)?;
        let s = self.school_of_assignment(a).await?;
        self.school_of_lesson.insert(lesson, s);
        Ok(s)
    }

    async fn work_type(&mut self, school: i64, code: &str) -> StoreResult<(i64, i64)> {
        if let Some(w) = self.work_types.get(&(school, code.to_string())) {
            return Ok(*w);
        }
        let row =
            sqlx::query("SELECT id, weight FROM work_types WHERE school_id = $1 AND code = $2")
                .bind(school)
                .bind(code)
                .fetch_optional(&mut *self.conn)
                .await
                .map_err(map_err)?
                .ok_or_else(|| StoreError::UnknownReference {
                    kind: "вид работы",
                    external_id: code.to_string(),
                })?;
        let w = (row.try_get(0).map_err(map_err)?, row.try_get(1).map_err(map_err)?);
        self.work_types.insert((school, code.to_string()), w);
        Ok(w)
    }
}

fn text(s: &str) -> V {
    V::T(s.to_string())
}

pub(crate) async fn apply(conn: &mut DbConn, b: &Batch) -> StoreResult<BatchStats> {
    let mut cx = Ctx {
        conn,
        ids: HashMap::new(),
        school_of_assignment: HashMap::new(),
        school_of_class: HashMap::new(),
        school_of_lesson: HashMap::new(),
        work_types: HashMap::new(),
        stats: BatchStats::default(),
    };
    const REGIONS: Table =
        Table { name: "regions", key: &["external_id"], set: &["name"], insert_only: &[] };
    let rows = b
        .regions
        .iter()
        .map(|r| Up {
            key: vec![text(&r.external_id)],
            set: vec![text(&r.name)],
            insert_only: vec![],
        })
        .collect::<Vec<_>>();
    cx.upsert_many(&REGIONS, &rows).await?;

    const MUNICIPALITIES: Table = Table {
        name: "municipalities",
        key: &["external_id"],
        set: &["region_id", "name"],
        insert_only: &[],
    };
    cx.prefetch("regions", b.municipalities.iter().map(|m| m.region.as_str())).await?;
    let mut rows = Vec::with_capacity(b.municipalities.len());
    for m in &b.municipalities {
        let region = cx.id_of("regions", "регион", &m.region).await?;
        rows.push(Up {
            key: vec![text(&m.external_id)],
            set: vec![V::I(region), text(&m.name)],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&MUNICIPALITIES, &rows).await?;

    const SCHOOLS: Table = Table {
        name: "schools",
        key: &["external_id"],
        set: &["municipality_id", "name", "short_name"],
        insert_only: &[],
    };
    cx.prefetch("municipalities", b.schools.iter().map(|s| s.municipality.as_str())).await?;
    let mut rows = Vec::with_capacity(b.schools.len());
    for s in &b.schools {
        let muni = cx.id_of("municipalities", "муниципалитет", &s.municipality).await?;
        rows.push(Up {
            key: vec![text(&s.external_id)],
            set: vec![V::I(muni), text(&s.name), text(&s.short_name)],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&SCHOOLS, &rows).await?;

    const YEARS: Table = Table {
        name: "academic_years",
        key: &["external_id"],
        set: &["school_id", "name", "starts_on", "ends_on"],
        insert_only: &[],
    };
    cx.prefetch("schools", b.years.iter().map(|y| y.school.as_str())).await?;
    let mut rows = Vec::with_capacity(b.years.len());
    for y in &b.years {
        let school = cx.id_of("schools", "школа", &y.school).await?;
        rows.push(Up {
            key: vec![text(&y.external_id)],
            set: vec![V::I(school), text(&y.name), V::D(y.starts_on), V::D(y.ends_on)],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&YEARS, &rows).await?;

    const PERIODS: Table = Table {
        name: "periods",
        key: &["external_id"],
        set: &["academic_year_id", "scheme", "number", "starts_on", "ends_on", "closed_on"],
        insert_only: &[],
    };
    cx.prefetch("academic_years", b.periods.iter().map(|p| p.year.as_str())).await?;
    let mut rows = Vec::with_capacity(b.periods.len());
    for p in &b.periods {
        let year = cx.id_of("academic_years", "учебный год", &p.year).await?;
        rows.push(Up {
            key: vec![text(&p.external_id)],
            set: vec![
                V::I(year),
                text(&p.scheme),
                V::I(i64::from(p.number)),
                V::D(p.starts_on),
                V::D(p.ends_on),
                V::OD(p.closed_on),
            ],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&PERIODS, &rows).await?;

    const SUBJECTS: Table = Table {
        name: "subjects",
        key: &["external_id"],
        set: &["school_id", "name", "grading"],
        insert_only: &[],
    };
    cx.prefetch("schools", b.subjects.iter().map(|s| s.school.as_str())).await?;
    let mut rows = Vec::with_capacity(b.subjects.len());
    for s in &b.subjects {
        let school = cx.id_of("schools", "школа", &s.school).await?;
        rows.push(Up {
            key: vec![text(&s.external_id)],
            set: vec![V::I(school), text(&s.name), text(&s.grading)],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&SUBJECTS, &rows).await?;

    const WORK_TYPES: Table = Table {
        name: "work_types",
        key: &["school_id", "code"],
        set: &["name", "weight"],
        insert_only: &[],
    };
    cx.prefetch("schools", b.work_types.iter().map(|w| w.school.as_str())).await?;
    let mut rows = Vec::with_capacity(b.work_types.len());
    for w in &b.work_types {
        let school = cx.id_of("schools", "школа", &w.school).await?;
        rows.push(Up {
            key: vec![V::I(school), text(&w.code)],
            set: vec![text(&w.name), V::I(i64::from(w.weight))],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&WORK_TYPES, &rows).await?;

    // From the people to the teaching assignments, the rosters: what the class chats follow.
    let roster_before = cx.stats.inserted + cx.stats.updated;
    const PERSONS: Table = Table {
        name: "persons",
        key: &["external_id"],
        set: &[
            "last_name",
            "first_name",
            "middle_name",
            "birth_date",
            "gender",
            "snils_hmac",
            "snils_cipher",
            "phone",
            "email",
        ],
        insert_only: &["uid", "created_at"],
    };
    let rows = b
        .persons
        .iter()
        .map(|p| Up {
            key: vec![text(&p.external_id)],
            set: vec![
                text(&p.last_name),
                text(&p.first_name),
                V::OT(p.middle_name.clone()),
                V::OD(p.birth_date),
                V::OT(p.gender.clone()),
                V::OBy(p.snils_hmac.clone()),
                V::OBy(p.snils_cipher.clone()),
                V::OT(p.phone.clone()),
                V::OT(p.email.clone()),
            ],
            insert_only: vec![text(&p.uid), V::I(0)],
        })
        .collect::<Vec<_>>();
    cx.upsert_many(&PERSONS, &rows).await?;

    const CLASSES: Table = Table {
        name: "classes",
        key: &["external_id"],
        set: &[
            "school_id",
            "academic_year_id",
            "grade",
            "letter",
            "class_teacher_id",
            "period_scheme",
            "newly_formed",
        ],
        insert_only: &[],
    };
    cx.prefetch("schools", b.classes.iter().map(|c| c.school.as_str())).await?;
    cx.prefetch("academic_years", b.classes.iter().map(|c| c.year.as_str())).await?;
    cx.prefetch("persons", b.classes.iter().filter_map(|c| c.class_teacher.as_deref())).await?;
    let mut rows = Vec::with_capacity(b.classes.len());
    let mut schools = Vec::with_capacity(b.classes.len());
    for c in &b.classes {
        let school = cx.id_of("schools", "школа", &c.school).await?;
        schools.push(school);
        let year = cx.id_of("academic_years", "учебный год", &c.year).await?;
        let teacher = match &c.class_teacher {
            Some(t) => Some(cx.id_of("persons", "классный руководитель", t).await?),
            None => None,
        };
        rows.push(Up {
            key: vec![text(&c.external_id)],
            set: vec![
                V::I(school),
                V::I(year),
                V::I(i64::from(c.grade)),
                text(&c.letter),
                V::OI(teacher),
                text(&c.period_scheme),
                V::B(c.newly_formed),
            ],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&CLASSES, &rows).await?;
    for (c, school) in b.classes.iter().zip(schools) {
        let id = cx.id_of("classes", "класс", &c.external_id).await?;
        cx.school_of_class.insert(id, school);
    }

    const GROUPS: Table = Table {
        name: "class_groups",
        key: &["external_id"],
        set: &["class_id", "name"],
        insert_only: &[],
    };
    const MEMBERS: &[&str] = &["group_id", "student_id"];
    cx.prefetch("classes", b.groups.iter().map(|g| g.class.as_str())).await?;
    let mut rows = Vec::with_capacity(b.groups.len());
    for g in &b.groups {
        let class = cx.id_of("classes", "класс", &g.class).await?;
        rows.push(Up {
            key: vec![text(&g.external_id)],
            set: vec![V::I(class), text(&g.name)],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&GROUPS, &rows).await?;
    cx.prefetch("persons", b.groups.iter().flat_map(|g| g.members.iter().map(String::as_str)))
        .await?;
    let mut members = Vec::new();
    for g in &b.groups {
        let group = cx.id_of("class_groups", "группа", &g.external_id).await?;
        for m in &g.members {
            members.push(vec![V::I(group), V::I(cx.id_of("persons", "ученик", m).await?)]);
        }
    }
    cx.prefetch("class_groups", b.group_members.iter().map(|m| m.group.as_str())).await?;
    cx.prefetch("persons", b.group_members.iter().map(|m| m.student.as_str())).await?;
    for m in &b.group_members {
        let group = cx.id_of("class_groups", "группа", &m.group).await?;
        let student = cx.id_of("persons", "ученик", &m.student).await?;
        members.push(vec![V::I(group), V::I(student)]);
    }
    cx.insert_many("group_members", MEMBERS, 2, "DO NOTHING", &members).await?;

    const ENROLMENTS: Table = Table {
        name: "enrolments",
        key: &["external_id"],
        set: &[
            "student_id",
            "school_id",
            "class_id",
            "admitted_on",
            "departed_on",
            "departure_kind",
            "departure_reason",
        ],
        insert_only: &[],
    };
    cx.prefetch("persons", b.enrolments.iter().map(|e| e.student.as_str())).await?;
    cx.prefetch("classes", b.enrolments.iter().map(|e| e.class.as_str())).await?;
    let mut rows = Vec::with_capacity(b.enrolments.len());
    for e in &b.enrolments {
        let student = cx.id_of("persons", "ученик", &e.student).await?;
        let class = cx.id_of("classes", "класс", &e.class).await?;
        let school = cx.school_of_class(class).await?;
        rows.push(Up {
            key: vec![text(&e.external_id)],
            set: vec![
                V::I(student),
                V::I(school),
                V::I(class),
                V::D(e.admitted_on),
                V::OD(e.departed_on),
                V::OT(e.departure_kind.clone()),
                V::OT(e.departure_reason.clone()),
            ],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&ENROLMENTS, &rows).await?;

    cx.prefetch(
        "persons",
        b.guardianships.iter().flat_map(|g| [g.parent.as_str(), g.child.as_str()]),
    )
    .await?;
    let mut links = Vec::with_capacity(b.guardianships.len());
    for g in &b.guardianships {
        let parent = cx.id_of("persons", "родитель", &g.parent).await?;
        let child = cx.id_of("persons", "ребёнок", &g.child).await?;
        links.push(vec![V::I(parent), V::I(child)]);
    }
    cx.insert_many("guardianships", &["parent_id", "child_id"], 2, "DO NOTHING", &links).await?;

    // Few rows, and a key with nulls that `ON CONFLICT` cannot match: row by row.
    cx.prefetch("persons", b.staff_roles.iter().map(|r| r.person.as_str())).await?;
    for r in &b.staff_roles {
        let person = cx.id_of("persons", "сотрудник", &r.person).await?;
        let role = Role::from_code(&r.role).ok_or_else(|| StoreError::UnknownReference {
            kind: "роль",
            external_id: r.role.clone(),
        })?;
        let scope = match role.scope_kind() {
            "school" => RoleScope::School(zhurnal_domain::SchoolId(
                cx.id_of("schools", "школа", &r.scope).await?,
            )),
            "municipality" => RoleScope::Municipality(zhurnal_domain::MunicipalityId(
                cx.id_of("municipalities", "муниципалитет", &r.scope).await?,
            )),
            _ => RoleScope::Region(zhurnal_domain::RegionId(
                cx.id_of("regions", "регион", &r.scope).await?,
            )),
        };
        let (school, muni, region) = crate::scope_columns(scope);
        cx.upsert(
            "staff_roles",
            &[
                ("person_id", V::I(person)),
                ("role", V::T(role.code().to_string())),
                ("school_id", V::OI(school)),
                ("municipality_id", V::OI(muni)),
                ("region_id", V::OI(region)),
            ],
            &[],
            &[("granted_at", V::I(0))],
        )
        .await?;
    }

    const ASSIGNMENTS: Table = Table {
        name: "assignments",
        key: &["external_id"],
        set: &["teacher_id", "class_id", "group_id", "subject_id"],
        insert_only: &[],
    };
    cx.prefetch("persons", b.assignments.iter().map(|a| a.teacher.as_str())).await?;
    cx.prefetch("classes", b.assignments.iter().map(|a| a.class.as_str())).await?;
    cx.prefetch("subjects", b.assignments.iter().map(|a| a.subject.as_str())).await?;
    cx.prefetch("class_groups", b.assignments.iter().filter_map(|a| a.group.as_deref())).await?;
    let mut rows = Vec::with_capacity(b.assignments.len());
    let mut classes = Vec::with_capacity(b.assignments.len());
    for a in &b.assignments {
        let teacher = cx.id_of("persons", "учитель", &a.teacher).await?;
        let class = cx.id_of("classes", "класс", &a.class).await?;
        classes.push(class);
        let subject = cx.id_of("subjects", "предмет", &a.subject).await?;
        let group = match &a.group {
            Some(g) => Some(cx.id_of("class_groups", "группа", g).await?),
            None => None,
        };
        rows.push(Up {
            key: vec![text(&a.external_id)],
            set: vec![V::I(teacher), V::I(class), V::OI(group), V::I(subject)],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&ASSIGNMENTS, &rows).await?;
    for (a, class) in b.assignments.iter().zip(classes) {
        let id = cx.id_of("assignments", "нагрузка", &a.external_id).await?;
        let school = cx.school_of_class(class).await?;
        cx.school_of_assignment.insert(id, school);
    }
    cx.stats.roster_changes = cx.stats.inserted + cx.stats.updated - roster_before;

    const SLOTS: Table = Table {
        name: "timetable_slots",
        key: &["external_id"],
        set: &["assignment_id", "weekday", "lesson_number", "room"],
        insert_only: &[],
    };
    cx.prefetch("assignments", b.timetable.iter().map(|s| s.assignment.as_str())).await?;
    let mut rows = Vec::with_capacity(b.timetable.len());
    for s in &b.timetable {
        let assignment = cx.id_of("assignments", "нагрузка", &s.assignment).await?;
        rows.push(Up {
            key: vec![text(&s.external_id)],
            set: vec![
                V::I(assignment),
                V::I(i64::from(s.weekday)),
                V::I(i64::from(s.lesson_number)),
                V::OT(s.room.clone()),
            ],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&SLOTS, &rows).await?;

    const SUBSTITUTIONS: Table = Table {
        name: "substitutions",
        key: &["slot_id", "on_date"],
        set: &["substitute_id", "reason"],
        insert_only: &[],
    };
    cx.prefetch("timetable_slots", b.substitutions.iter().map(|s| s.slot.as_str())).await?;
    cx.prefetch("persons", b.substitutions.iter().map(|s| s.substitute.as_str())).await?;
    let mut rows = Vec::with_capacity(b.substitutions.len());
    for s in &b.substitutions {
        let slot = cx.id_of("timetable_slots", "слот расписания", &s.slot).await?;
        let substitute = cx.id_of("persons", "заменяющий учитель", &s.substitute).await?;
        rows.push(Up {
            key: vec![V::I(slot), V::D(s.date)],
            set: vec![V::I(substitute), V::OT(s.reason.clone())],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&SUBSTITUTIONS, &rows).await?;

    const LESSONS: Table = Table {
        name: "lessons",
        key: &["external_id"],
        set: &["assignment_id", "on_date", "lesson_number", "topic", "homework"],
        insert_only: &[],
    };
    cx.prefetch("assignments", b.lessons.iter().map(|l| l.assignment.as_str())).await?;
    let mut rows = Vec::with_capacity(b.lessons.len());
    let mut assignments = Vec::with_capacity(b.lessons.len());
    for l in &b.lessons {
        let assignment = cx.id_of("assignments", "нагрузка", &l.assignment).await?;
        assignments.push(assignment);
        rows.push(Up {
            key: vec![text(&l.external_id)],
            set: vec![
                V::I(assignment),
                V::D(l.date),
                V::I(i64::from(l.lesson_number)),
                V::OT(l.topic.clone()),
                V::OT(l.homework.clone()),
            ],
            insert_only: vec![],
        });
    }
    cx.upsert_many(&LESSONS, &rows).await?;
    for (l, assignment) in b.lessons.iter().zip(assignments) {
        let id = cx.id_of("lessons", "урок", &l.external_id).await?;
        let school = cx.school_of_assignment(assignment).await?;
        cx.school_of_lesson.insert(id, school);
    }

    const MARKS: Table = Table {
        name: "marks",
        key: &["external_id"],
        set: &[
            "lesson_id",
            "student_id",
            "value",
            "work_type_id",
            "weight",
            "comment",
            "author_id",
        ],
        insert_only: &["created_at", "updated_at"],
    };
    cx.prefetch("lessons", b.marks.iter().map(|m| m.lesson.as_str())).await?;
    cx.prefetch("persons", b.marks.iter().flat_map(|m| [m.student.as_str(), m.author.as_str()]))
        .await?;
    let mut rows = Vec::with_capacity(b.marks.len());
    for m in &b.marks {
        let lesson = cx.id_of("lessons", "урок", &m.lesson).await?;
        let school = cx.school_of_lesson(lesson).await?;
        let (work_type, weight) = cx.work_type(school, &m.work_type).await?;
        let student = cx.id_of("persons", "ученик", &m.student).await?;
        let author = cx.id_of("persons", "автор отметки", &m.author).await?;
        rows.push(Up {
            key: vec![text(&m.external_id)],
            set: vec![
                V::I(lesson),
                V::I(student),
                text(&m.value),
                V::I(work_type),
                V::I(weight),
                V::OT(m.comment.clone()),
                V::I(author),
            ],
            insert_only: vec![V::I(m.created_at), V::I(m.created_at)],
        });
    }
    cx.upsert_many(&MARKS, &rows).await?;

    cx.prefetch("lessons", b.attendance.iter().map(|a| a.lesson.as_str())).await?;
    cx.prefetch(
        "persons",
        b.attendance.iter().flat_map(|a| [a.student.as_str(), a.author.as_str()]),
    )
    .await?;
    let mut rows = Vec::with_capacity(b.attendance.len());
    for a in &b.attendance {
        let lesson = cx.id_of("lessons", "урок", &a.lesson).await?;
        let student = cx.id_of("persons", "ученик", &a.student).await?;
        let author = cx.id_of("persons", "автор отметки", &a.author).await?;
        rows.push(vec![V::I(lesson), V::I(student), text(&a.kind), V::I(author), V::I(0)]);
    }
    cx.insert_many(
        "attendance",
        &["lesson_id", "student_id", "kind", "author_id", "updated_at"],
        2,
        "(lesson_id, student_id) DO UPDATE SET kind = excluded.kind \
         WHERE attendance.kind IS DISTINCT FROM excluded.kind",
        &rows,
    )
    .await?;
    Ok(cx.stats)
}
