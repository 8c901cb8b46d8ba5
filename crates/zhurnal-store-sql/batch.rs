//! Applying a [`Batch`] inside one write transaction, upserting by external id.

use std::collections::HashMap;

use chrono::NaiveDate;
use sqlx::Row;
use zhurnal_domain::{Role, RoleScope};
use zhurnal_store::batch::*;
use zhurnal_store::{StoreError, StoreResult};

use crate::backend::{Db, DbConn};
use crate::map_err;

/// A bindable value; lets one upsert routine serve every table.
#[derive(Clone, Debug)]
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

struct Ctx<'c> {
    conn: &'c mut DbConn,
    ids: HashMap<(&'static str, String), i64>,
    school_of_assignment: HashMap<i64, i64>,
    work_types: HashMap<(i64, String), (i64, i64)>,
    stats: BatchStats,
}

impl Ctx<'_> {
    /// Upserts one row keyed by `key` columns; only `set` columns change on a re-run.
    /// Table and column names are compile-time constants of this module, never input.
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
        let params: Vec<String> = (1..=all.len()).map(|i| format!("${i}")).collect();
        let insert = format!(
            "INSERT INTO {table} ({}) VALUES ({}) RETURNING id",
            cols.join(", "),
            params.join(", ")
        );
        let mut q = sqlx::query(&insert);
        for (_, v) in &all {
            q = bind(q, v);
        }
        let row = q.fetch_one(&mut *self.conn).await.map_err(map_err)?;
        self.stats.inserted += 1;
        row.try_get(0).map_err(map_err)
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

    fn remember(&mut self, table: &'static str, external_id: &str, id: i64) {
        self.ids.insert((table, external_id.to_string()), id);
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

pub(crate) async fn apply(conn: &mut DbConn, b: &Batch) -> StoreResult<BatchStats> {
    let mut cx = Ctx {
        conn,
        ids: HashMap::new(),
        school_of_assignment: HashMap::new(),
        work_types: HashMap::new(),
        stats: BatchStats::default(),
    };
    for r in &b.regions {
        let id = cx
            .upsert(
                "regions",
                &[("external_id", V::T(r.external_id.clone()))],
                &[("name", V::T(r.name.clone()))],
                &[],
            )
            .await?;
        cx.remember("regions", &r.external_id, id);
    }
    for m in &b.municipalities {
        let region = cx.id_of("regions", "регион", &m.region).await?;
        let id = cx
            .upsert(
                "municipalities",
                &[("external_id", V::T(m.external_id.clone()))],
                &[("region_id", V::I(region)), ("name", V::T(m.name.clone()))],
                &[],
            )
            .await?;
        cx.remember("municipalities", &m.external_id, id);
    }
    for s in &b.schools {
        let muni = cx.id_of("municipalities", "муниципалитет", &s.municipality).await?;
        let id = cx
            .upsert(
                "schools",
                &[("external_id", V::T(s.external_id.clone()))],
                &[
                    ("municipality_id", V::I(muni)),
                    ("name", V::T(s.name.clone())),
                    ("short_name", V::T(s.short_name.clone())),
                ],
                &[],
            )
            .await?;
        cx.remember("schools", &s.external_id, id);
    }
    for y in &b.years {
        let school = cx.id_of("schools", "школа", &y.school).await?;
        let id = cx
            .upsert(
                "academic_years",
                &[("external_id", V::T(y.external_id.clone()))],
                &[
                    ("school_id", V::I(school)),
                    ("name", V::T(y.name.clone())),
                    ("starts_on", V::D(y.starts_on)),
                    ("ends_on", V::D(y.ends_on)),
                ],
                &[],
            )
            .await?;
        cx.remember("academic_years", &y.external_id, id);
    }
    for p in &b.periods {
        let year = cx.id_of("academic_years", "учебный год", &p.year).await?;
        let id = cx
            .upsert(
                "periods",
                &[("external_id", V::T(p.external_id.clone()))],
                &[
                    ("academic_year_id", V::I(year)),
                    ("scheme", V::T(p.scheme.clone())),
                    ("number", V::I(i64::from(p.number))),
                    ("starts_on", V::D(p.starts_on)),
                    ("ends_on", V::D(p.ends_on)),
                    ("closed_on", V::OD(p.closed_on)),
                ],
                &[],
            )
            .await?;
        cx.remember("periods", &p.external_id, id);
    }
    for s in &b.subjects {
        let school = cx.id_of("schools", "школа", &s.school).await?;
        let id = cx
            .upsert(
                "subjects",
                &[("external_id", V::T(s.external_id.clone()))],
                &[
                    ("school_id", V::I(school)),
                    ("name", V::T(s.name.clone())),
                    ("grading", V::T(s.grading.clone())),
                ],
                &[],
            )
            .await?;
        cx.remember("subjects", &s.external_id, id);
    }
    for w in &b.work_types {
        let school = cx.id_of("schools", "школа", &w.school).await?;
        cx.upsert(
            "work_types",
            &[("school_id", V::I(school)), ("code", V::T(w.code.clone()))],
            &[("name", V::T(w.name.clone())), ("weight", V::I(i64::from(w.weight)))],
            &[],
        )
        .await?;
    }
    for p in &b.persons {
        let id = cx
            .upsert(
                "persons",
                &[("external_id", V::T(p.external_id.clone()))],
                &[
                    ("last_name", V::T(p.last_name.clone())),
                    ("first_name", V::T(p.first_name.clone())),
                    ("middle_name", V::OT(p.middle_name.clone())),
                    ("birth_date", V::OD(p.birth_date)),
                    ("gender", V::OT(p.gender.clone())),
                    ("snils_hmac", V::OBy(p.snils_hmac.clone())),
                    ("snils_cipher", V::OBy(p.snils_cipher.clone())),
                    ("phone", V::OT(p.phone.clone())),
                    ("email", V::OT(p.email.clone())),
                ],
                &[("uid", V::T(p.uid.clone())), ("created_at", V::I(0))],
            )
            .await?;
        cx.remember("persons", &p.external_id, id);
    }
    for c in &b.classes {
        let school = cx.id_of("schools", "школа", &c.school).await?;
        let year = cx.id_of("academic_years", "учебный год", &c.year).await?;
        let teacher = match &c.class_teacher {
            Some(t) => Some(cx.id_of("persons", "классный руководитель", t).await?),
            None => None,
        };
        let id = cx
            .upsert(
                "classes",
                &[("external_id", V::T(c.external_id.clone()))],
                &[
                    ("school_id", V::I(school)),
                    ("academic_year_id", V::I(year)),
                    ("grade", V::I(i64::from(c.grade))),
                    ("letter", V::T(c.letter.clone())),
                    ("class_teacher_id", V::OI(teacher)),
                    ("period_scheme", V::T(c.period_scheme.clone())),
                    ("newly_formed", V::B(c.newly_formed)),
                ],
                &[],
            )
            .await?;
        cx.remember("classes", &c.external_id, id);
    }
    for g in &b.groups {
        let class = cx.id_of("classes", "класс", &g.class).await?;
        let id = cx
            .upsert(
                "class_groups",
                &[("external_id", V::T(g.external_id.clone()))],
                &[("class_id", V::I(class)), ("name", V::T(g.name.clone()))],
                &[],
            )
            .await?;
        cx.remember("class_groups", &g.external_id, id);
        for m in &g.members {
            let student = cx.id_of("persons", "ученик", m).await?;
            let done = sqlx::query("INSERT INTO group_members (group_id, student_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(student)
                .execute(&mut *cx.conn)
                .await
                .map_err(map_err)?;
            count_plain(&mut cx.stats, done.rows_affected());
        }
    }
    for m in &b.group_members {
        let group = cx.id_of("class_groups", "группа", &m.group).await?;
        let student = cx.id_of("persons", "ученик", &m.student).await?;
        let done = sqlx::query(
            "INSERT INTO group_members (group_id, student_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(group)
        .bind(student)
        .execute(&mut *cx.conn)
        .await
        .map_err(map_err)?;
        count_plain(&mut cx.stats, done.rows_affected());
    }
    for e in &b.enrolments {
        let student = cx.id_of("persons", "ученик", &e.student).await?;
        let class = cx.id_of("classes", "класс", &e.class).await?;
        let school: i64 = sqlx::query("SELECT school_id FROM classes WHERE id = $1")
            .bind(class)
            .fetch_one(&mut *cx.conn)
            .await
            .map_err(map_err)?
            .try_get(0)
            .map_err(map_err)?;
        cx.upsert(
            "enrolments",
            &[("external_id", V::T(e.external_id.clone()))],
            &[
                ("student_id", V::I(student)),
                ("school_id", V::I(school)),
                ("class_id", V::I(class)),
                ("admitted_on", V::D(e.admitted_on)),
                ("departed_on", V::OD(e.departed_on)),
                ("departure_kind", V::OT(e.departure_kind.clone())),
                ("departure_reason", V::OT(e.departure_reason.clone())),
            ],
            &[],
        )
        .await?;
    }
    for g in &b.guardianships {
        let parent = cx.id_of("persons", "родитель", &g.parent).await?;
        let child = cx.id_of("persons", "ребёнок", &g.child).await?;
        let done = sqlx::query("INSERT INTO guardianships (parent_id, child_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(parent)
            .bind(child)
            .execute(&mut *cx.conn)
            .await
            .map_err(map_err)?;
        count_plain(&mut cx.stats, done.rows_affected());
    }
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
    for a in &b.assignments {
        let teacher = cx.id_of("persons", "учитель", &a.teacher).await?;
        let class = cx.id_of("classes", "класс", &a.class).await?;
        let subject = cx.id_of("subjects", "предмет", &a.subject).await?;
        let group = match &a.group {
            Some(g) => Some(cx.id_of("class_groups", "группа", g).await?),
            None => None,
        };
        let id = cx
            .upsert(
                "assignments",
                &[("external_id", V::T(a.external_id.clone()))],
                &[
                    ("teacher_id", V::I(teacher)),
                    ("class_id", V::I(class)),
                    ("group_id", V::OI(group)),
                    ("subject_id", V::I(subject)),
                ],
                &[],
            )
            .await?;
        cx.remember("assignments", &a.external_id, id);
    }
    for s in &b.timetable {
        let assignment = cx.id_of("assignments", "нагрузка", &s.assignment).await?;
        cx.upsert(
            "timetable_slots",
            &[("external_id", V::T(s.external_id.clone()))],
            &[
                ("assignment_id", V::I(assignment)),
                ("weekday", V::I(i64::from(s.weekday))),
                ("lesson_number", V::I(i64::from(s.lesson_number))),
                ("room", V::OT(s.room.clone())),
            ],
            &[],
        )
        .await?;
    }
    for s in &b.substitutions {
        let slot = cx.id_of("timetable_slots", "слот расписания", &s.slot).await?;
        let substitute = cx.id_of("persons", "заменяющий учитель", &s.substitute).await?;
        cx.upsert(
            "substitutions",
            &[("slot_id", V::I(slot)), ("on_date", V::D(s.date))],
            &[("substitute_id", V::I(substitute)), ("reason", V::OT(s.reason.clone()))],
            &[],
        )
        .await?;
    }
    for l in &b.lessons {
        let assignment = cx.id_of("assignments", "нагрузка", &l.assignment).await?;
        let id = cx
            .upsert(
                "lessons",
                &[("external_id", V::T(l.external_id.clone()))],
                &[
                    ("assignment_id", V::I(assignment)),
                    ("on_date", V::D(l.date)),
                    ("lesson_number", V::I(i64::from(l.lesson_number))),
                    ("topic", V::OT(l.topic.clone())),
                    ("homework", V::OT(l.homework.clone())),
                ],
                &[],
            )
            .await?;
        cx.remember("lessons", &l.external_id, id);
        let school = cx.school_of_assignment(assignment).await?;
        cx.school_of_assignment.insert(-id, school);
    }
    for m in &b.marks {
        let lesson = cx.id_of("lessons", "урок", &m.lesson).await?;
        let school = match cx.school_of_assignment.get(&-lesson) {
            Some(s) => *s,
            None => {
                let a: i64 = sqlx::query("SELECT assignment_id FROM lessons WHERE id = $1")
                    .bind(lesson)
                    .fetch_one(&mut *cx.conn)
                    .await
                    .map_err(map_err)?
                    .try_get(0)
                    .map_err(map_err)?;
                cx.school_of_assignment(a).await?
            }
        };
        let (work_type, weight) = cx.work_type(school, &m.work_type).await?;
        let student = cx.id_of("persons", "ученик", &m.student).await?;
        let author = cx.id_of("persons", "автор отметки", &m.author).await?;
        cx.upsert(
            "marks",
            &[("external_id", V::T(m.external_id.clone()))],
            &[
                ("lesson_id", V::I(lesson)),
                ("student_id", V::I(student)),
                ("value", V::T(m.value.clone())),
                ("work_type_id", V::I(work_type)),
                ("weight", V::I(weight)),
                ("comment", V::OT(m.comment.clone())),
                ("author_id", V::I(author)),
            ],
            &[("created_at", V::I(m.created_at)), ("updated_at", V::I(m.created_at))],
        )
        .await?;
    }
    for a in &b.attendance {
        let lesson = cx.id_of("lessons", "урок", &a.lesson).await?;
        let student = cx.id_of("persons", "ученик", &a.student).await?;
        let author = cx.id_of("persons", "автор отметки", &a.author).await?;
        let done = sqlx::query(
            "INSERT INTO attendance (lesson_id, student_id, kind, author_id, updated_at) VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (lesson_id, student_id) DO UPDATE SET kind = excluded.kind WHERE attendance.kind IS DISTINCT FROM excluded.kind",
        )
        .bind(lesson)
        .bind(student)
        .bind(&a.kind)
        .bind(author)
        .execute(&mut *cx.conn)
        .await
        .map_err(map_err)?;
        count_plain(&mut cx.stats, done.rows_affected());
    }
    Ok(cx.stats)
}

fn count_plain(stats: &mut BatchStats, affected: u64) {
    if affected > 0 {
        stats.inserted += 1;
    } else {
        stats.unchanged += 1;
    }
}
