//! [`JournalStore`] on both backends: the class journal's reads and audited writes.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::NaiveDate;
use sqlx::Row;
use zhurnal_domain::*;
use zhurnal_store::journal::*;
use zhurnal_store::schedule::{self, SlotRow};
use zhurnal_store::*;

use crate::backend::{DbConn, DbRow, DbStore};
use crate::rows::*;
use crate::{
    ASSIGNMENT_COLS, ASSIGNMENT_JOINS, PERSON_COLS, append_audit_in, append_audits_in, map_err,
};

fn small(what: &str, v: i64) -> StoreResult<u8> {
    u8::try_from(v).map_err(|_| corrupt(what, &v.to_string()))
}

pub(crate) const MARK_COLS: &str = "m.id, m.lesson_id, m.student_id, m.value, m.work_type_id, m.weight, m.comment, \
    m.author_id, m.created_at, m.updated_at";

const ATTACHMENT_COLS: &str = "f.uid, f.lesson_id, f.file_name, f.content_type, f.size_bytes, f.sha256, \
    f.uploaded_by, f.uploaded_at";

/// [`JournalStore::check_journal_entry`]: `$1` assignment, `$2` date, `$3` its weekday
/// (1 = Monday, as `timetable_slots.weekday`), `$4` lesson number, `$5` the student's uid or NULL.
const ENTRY_FACTS: &str = "SELECT \
    (SELECT y.archived_at FROM assignments a JOIN classes c ON c.id = a.class_id \
       JOIN academic_years y ON y.id = c.academic_year_id WHERE a.id = $1) AS archived_at, \
    (EXISTS (SELECT 1 FROM timetable_slots s \
        WHERE s.assignment_id = $1 AND s.weekday = $3 AND s.lesson_number = $4) \
     OR EXISTS (SELECT 1 FROM lessons l \
        WHERE l.assignment_id = $1 AND l.on_date = $2 AND l.lesson_number = $4)) AS lesson_exists, \
    (SELECT p.id FROM persons p JOIN enrolments e ON e.student_id = p.id \
       JOIN assignments a ON a.class_id = e.class_id \
       WHERE p.uid = $5 AND a.id = $1 AND e.admitted_on <= $2 \
         AND (e.departed_on IS NULL OR e.departed_on > $2) \
         AND (a.group_id IS NULL OR EXISTS (SELECT 1 FROM group_members gm \
              WHERE gm.group_id = a.group_id AND gm.student_id = p.id)) \
       LIMIT 1) AS student_id";

/// [`JournalStore::get_journal_context`]: the assignment row (`kind` 0, with the school's
/// columns prefixed `sc_`), then the periods of its year (1) and the school's work types (2).
/// Every branch has every column, NULL where its kind has none (cast, so PostgreSQL types the
/// union the same whatever comes first); the decoders read by name, so a period's and a work
/// type's `id`, `external_id`, `academic_year_id` and `school_id` sit in the assignment's columns
/// of those names.
static JOURNAL_CONTEXT: LazyLock<String> = LazyLock::new(|| {
    // The nine assignment columns after `id` and `external_id`, and the school's six.
    const TAIL_NULLS: &str = "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL";
    const SCHOOL_NULLS: &str = "NULL, NULL, NULL, NULL, NULL, NULL";
    format!(
        "SELECT CAST(0 AS BIGINT) AS kind, {ASSIGNMENT_COLS}, c.school_id, c.academic_year_id, \
           c.period_scheme, a.group_id, g.name AS group_name, sj.grading, \
           sc.id AS sc_id, sc.municipality_id AS sc_municipality_id, m.region_id AS sc_region_id, \
           sc.external_id AS sc_external_id, sc.name AS sc_name, sc.short_name AS sc_short_name, \
           CAST(NULL AS TEXT) AS scheme, CAST(NULL AS BIGINT) AS number, \
           CAST(NULL AS DATE) AS starts_on, CAST(NULL AS DATE) AS ends_on, \
           CAST(NULL AS DATE) AS closed_on, \
           CAST(NULL AS TEXT) AS code, CAST(NULL AS TEXT) AS name, CAST(NULL AS BIGINT) AS weight \
         FROM assignments a {ASSIGNMENT_JOINS} LEFT JOIN class_groups g ON g.id = a.group_id \
         JOIN schools sc ON sc.id = c.school_id JOIN municipalities m ON m.id = sc.municipality_id \
         WHERE a.id = $1 \
         UNION ALL \
         SELECT 1, p.id, p.external_id, {TAIL_NULLS}, NULL, p.academic_year_id, \
           NULL, NULL, NULL, NULL, {SCHOOL_NULLS}, \
           p.scheme, p.number, p.starts_on, p.ends_on, p.closed_on, NULL, NULL, NULL \
         FROM periods p WHERE p.academic_year_id = \
           (SELECT c.academic_year_id FROM assignments a JOIN classes c ON c.id = a.class_id \
            WHERE a.id = $1) \
         UNION ALL \
         SELECT 2, w.id, NULL, {TAIL_NULLS}, w.school_id, NULL, \
           NULL, NULL, NULL, NULL, {SCHOOL_NULLS}, \
           NULL, NULL, NULL, NULL, NULL, w.code, w.name, w.weight \
         FROM work_types w WHERE w.school_id = \
           (SELECT c.school_id FROM assignments a JOIN classes c ON c.id = a.class_id \
            WHERE a.id = $1) \
         ORDER BY kind, scheme, number, weight, name"
    )
});

fn journal_assignment_from(r: &DbRow) -> StoreResult<JournalAssignment> {
    let scheme: String = get(r, "period_scheme")?;
    let grading: String = get(r, "grading")?;
    Ok(JournalAssignment {
        assignment: assignment_from(r)?,
        school_id: SchoolId(get(r, "school_id")?),
        academic_year_id: AcademicYearId(get(r, "academic_year_id")?),
        group_id: get::<Option<i64>>(r, "group_id")?.map(GroupId),
        group_name: get(r, "group_name")?,
        grade: small("classes.grade", get(r, "grade")?)?,
        period_scheme: PeriodScheme::from_code(&scheme)
            .ok_or_else(|| corrupt("classes.period_scheme", &scheme))?,
        grading: Grading::from_code(&grading)
            .ok_or_else(|| corrupt("subjects.grading", &grading))?,
    })
}

fn lesson_from(r: &DbRow) -> StoreResult<LessonRow> {
    Ok(LessonRow {
        id: LessonId(get(r, "id")?),
        assignment_id: AssignmentId(get(r, "assignment_id")?),
        date: get(r, "on_date")?,
        lesson_number: small("lessons.lesson_number", get(r, "lesson_number")?)?,
        topic: get(r, "topic")?,
        homework: get(r, "homework")?,
    })
}

fn opt_mark(what: &str, v: Option<String>) -> StoreResult<Option<MarkValue>> {
    v.map(|s| MarkValue::parse(&s).map_err(|_| corrupt(what, &s))).transpose()
}

fn history_from(r: &DbRow) -> StoreResult<MarkHistoryRow> {
    let last: String = get(r, "last_name")?;
    let first: String = get(r, "first_name")?;
    Ok(MarkHistoryRow {
        mark_id: MarkId(get(r, "mark_id")?),
        lesson_id: LessonId(get(r, "lesson_id")?),
        student_id: PersonId(get(r, "student_id")?),
        changed_at: get(r, "changed_at")?,
        changed_by: PersonId(get(r, "changed_by")?),
        changed_by_name: format!("{last} {first}"),
        old_value: opt_mark("mark_history.old_value", get(r, "old_value")?)?,
        new_value: opt_mark("mark_history.new_value", get(r, "new_value")?)?,
        old_work_type_id: get::<Option<i64>>(r, "old_work_type_id")?.map(WorkTypeId),
        new_work_type_id: get::<Option<i64>>(r, "new_work_type_id")?.map(WorkTypeId),
        reason: get(r, "reason")?,
    })
}

fn attachment_from(r: &DbRow) -> StoreResult<AttachmentRow> {
    Ok(AttachmentRow {
        uid: get(r, "uid")?,
        lesson_id: LessonId(get(r, "lesson_id")?),
        file_name: get(r, "file_name")?,
        content_type: get(r, "content_type")?,
        size_bytes: get(r, "size_bytes")?,
        sha256: get(r, "sha256")?,
        uploaded_by: PersonId(get(r, "uploaded_by")?),
        uploaded_at: get(r, "uploaded_at")?,
    })
}

fn final_mark_from(r: &DbRow) -> StoreResult<FinalMarkRow> {
    let kind: String = get(r, "kind")?;
    let period: Option<i64> = get(r, "period_id")?;
    let kind = match (kind.as_str(), period) {
        ("period", Some(p)) => FinalMarkKind::Period(PeriodId(p)),
        ("annual", _) => FinalMarkKind::Annual,
        ("final", _) => FinalMarkKind::Final,
        _ => return Err(corrupt("final_marks.kind", &kind)),
    };
    Ok(FinalMarkRow {
        student_id: PersonId(get(r, "student_id")?),
        assignment_id: AssignmentId(get(r, "assignment_id")?),
        kind,
        value: get(r, "value")?,
        author_id: PersonId(get(r, "author_id")?),
        set_at: get(r, "set_at")?,
    })
}

/// The lesson's id, creating the lesson row on first write.
pub(crate) async fn ensure_lesson(conn: &mut DbConn, key: LessonKey) -> StoreResult<i64> {
    sqlx::query(
        "INSERT INTO lessons (assignment_id, on_date, lesson_number) VALUES ($1, $2, $3) \
         ON CONFLICT (assignment_id, on_date, lesson_number) DO UPDATE SET lesson_number = excluded.lesson_number \
         RETURNING id",
    )
    .bind(key.assignment.0)
    .bind(key.date)
    .bind(i64::from(key.lesson_number))
    .fetch_one(&mut *conn)
    .await
    .map_err(map_err)?
    .try_get(0)
    .map_err(map_err)
}

async fn mark_in(conn: &mut DbConn, id: i64) -> StoreResult<MarkRow> {
    let row = sqlx::query(&format!("SELECT {MARK_COLS} FROM marks m WHERE m.id = $1"))
        .bind(id)
        .fetch_one(&mut *conn)
        .await
        .map_err(map_err)?;
    mark_from(&row)
}

/// What [`create_mark_in`] did.
enum MarkWrite {
    Created(MarkRow),
    /// The idempotency key was already used: this is the mark it created; nothing was written.
    Existing(MarkRow),
}

/// Writes one new mark (and its lesson on first write) with its creation line in
/// `mark_history`, inside the caller's transaction; the caller appends the audit record.
/// Shared by [`JournalStore::create_mark`] and the batch [`JournalStore::create_marks`].
async fn create_mark_in(conn: &mut DbConn, m: &NewMark) -> StoreResult<MarkWrite> {
    if let Some(key) = &m.external_id {
        let existing =
            sqlx::query(&format!("SELECT {MARK_COLS} FROM marks m WHERE m.external_id = $1"))
                .bind(key)
                .fetch_optional(&mut *conn)
                .await
                .map_err(map_err)?;
        if let Some(row) = existing {
            return Ok(MarkWrite::Existing(mark_from(&row)?));
        }
    }
    // The lesson, the mark and its history record: one statement on PostgreSQL, three on
    // SQLite (no data-modifying CTEs there); see each backend's `perf::insert_mark`.
    let row = crate::perf::insert_mark(conn, m).await?;
    Ok(MarkWrite::Created(mark_from(&row)?))
}

/// Writes `marks` in the caller's transaction and returns an answer per mark written and the
/// audit records of the created ones. With `savepoints`, a refused mark rolls back to its own
/// savepoint and fails alone; without, the first refusal ends the batch (on PostgreSQL the
/// transaction is then unusable and the caller rolls it back). A lost connection fails all.
async fn write_marks(
    conn: &mut DbConn,
    marks: &[(NewMark, NewAudit)],
    savepoints: bool,
) -> StoreResult<(Vec<StoreResult<MarkRow>>, Vec<NewAudit>)> {
    let mut results = Vec::with_capacity(marks.len());
    let mut audits = Vec::with_capacity(marks.len());
    for (m, audit) in marks {
        let written = if savepoints {
            let mut one = sqlx::Connection::begin(&mut *conn).await.map_err(map_err)?;
            let written = create_mark_in(&mut one, m).await;
            match &written {
                Ok(_) => one.commit().await.map_err(map_err)?,
                Err(StoreError::Unavailable(_)) => {}
                Err(_) => one.rollback().await.map_err(map_err)?,
            }
            written
        } else {
            create_mark_in(conn, m).await
        };
        match written {
            Ok(MarkWrite::Created(row)) => {
                audits.push(audit_of(&row, audit.clone()));
                results.push(Ok(row));
            }
            Ok(MarkWrite::Existing(row)) => results.push(Ok(row)),
            // The connection is gone: no later mark can be written and the commit cannot
            // happen, so the whole batch fails (every waiter gets the error).
            Err(StoreError::Unavailable(why)) => return Err(StoreError::Unavailable(why)),
            Err(e) => {
                results.push(Err(e));
                if !savepoints {
                    break;
                }
            }
        }
    }
    Ok((results, audits))
}

/// The audit record of a created mark names the mark (the use case does not know its id yet).
fn audit_of(row: &MarkRow, audit: NewAudit) -> NewAudit {
    NewAudit { target_id: Some(row.id.0.to_string()), ..audit }
}

#[async_trait]
impl JournalStore for DbStore {
    async fn get_journal_context(&self, id: AssignmentId) -> StoreResult<JournalContextRows> {
        let rows = sqlx::query(JOURNAL_CONTEXT.as_str())
            .bind(id.0)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let first = rows
            .first()
            .filter(|r| get::<i64>(r, "kind").is_ok_and(|k| k == 0))
            .ok_or_else(|| StoreError::NotFound(format!("нагрузка {id}")))?;
        let mut ctx = JournalContextRows {
            assignment: journal_assignment_from(first)?,
            school: school_from_as(first, "sc_")?,
            periods: Vec::new(),
            work_types: Vec::new(),
        };
        for r in &rows[1..] {
            match get::<i64>(r, "kind")? {
                1 => ctx.periods.push(period_from(r)?),
                _ => ctx.work_types.push(work_type_from(r)?),
            }
        }
        Ok(ctx)
    }

    async fn check_journal_entry(
        &self,
        key: LessonKey,
        student_uid: Option<&str>,
    ) -> StoreResult<EntryFacts> {
        use chrono::Datelike;
        let r = sqlx::query(ENTRY_FACTS)
            .bind(key.assignment.0)
            .bind(key.date)
            .bind(i64::from(key.date.weekday().number_from_monday()))
            .bind(i64::from(key.lesson_number))
            .bind(student_uid)
            .fetch_one(self.reader())
            .await
            .map_err(map_err)?;
        Ok(EntryFacts {
            year_archived_at: get(&r, "archived_at")?,
            lesson_exists: get(&r, "lesson_exists")?,
            student: get::<Option<i64>>(&r, "student_id")?.map(PersonId),
        })
    }

    async fn get_journal_assignment(&self, id: AssignmentId) -> StoreResult<JournalAssignment> {
        let row = sqlx::query(&format!(
            "SELECT {ASSIGNMENT_COLS}, c.school_id, c.academic_year_id, c.period_scheme, a.group_id, \
             g.name AS group_name, sj.grading FROM assignments a {ASSIGNMENT_JOINS} \
             LEFT JOIN class_groups g ON g.id = a.group_id WHERE a.id = $1"
        ))
        .bind(id.0)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("нагрузка {id}")))?;
        journal_assignment_from(&row)
    }

    async fn list_journal_students(
        &self,
        assignment: AssignmentId,
        on: NaiveDate,
    ) -> StoreResult<Vec<RosterEntry>> {
        let rows = sqlx::query(&format!(
            "SELECT e.id AS enrolment_id, e.admitted_on, e.departed_on, {PERSON_COLS} \
             FROM assignments a JOIN enrolments e ON e.class_id = a.class_id \
             JOIN persons p ON p.id = e.student_id \
             WHERE a.id = $1 AND e.admitted_on <= $2 AND (e.departed_on IS NULL OR e.departed_on > $2) \
             AND (a.group_id IS NULL OR EXISTS (SELECT 1 FROM group_members gm \
                  WHERE gm.group_id = a.group_id AND gm.student_id = e.student_id)) \
             ORDER BY p.last_name, p.first_name, p.id"
        ))
        .bind(assignment.0)
        .bind(on)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(RosterEntry {
                    enrolment_id: get(r, "enrolment_id")?,
                    admitted_on: get(r, "admitted_on")?,
                    departed_on: get(r, "departed_on")?,
                    person: person_from(r)?,
                })
            })
            .collect()
    }

    async fn list_assignment_lessons(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ScheduledLesson>> {
        let rows = sqlx::query(crate::base::ASSIGNMENT_LESSONS.as_str())
            .bind(assignment.0)
            .bind(from)
            .bind(to)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let l = crate::base::lesson_rows(&rows)?;
        let lessons = schedule::expand(&l.slots, &l.held, &l.subs, from, to);
        Ok(match &l.held_assignment {
            Some(a) => schedule::with_unscheduled(lessons, &l.held, a),
            None => lessons,
        })
    }

    async fn list_teacher_day_all(
        &self,
        teacher: PersonId,
        date: NaiveDate,
    ) -> StoreResult<Vec<ScheduledLesson>> {
        use chrono::Datelike;
        let weekday = i64::from(date.weekday().number_from_monday());
        let rows = sqlx::query(&format!(
            "SELECT s.id AS slot_id, s.weekday, s.lesson_number, s.room, {ASSIGNMENT_COLS} \
             FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id {ASSIGNMENT_JOINS} \
             LEFT JOIN substitutions su ON su.slot_id = s.id AND su.on_date = $2 \
             WHERE s.weekday = $3 AND (a.teacher_id = $1 OR su.substitute_id = $1)"
        ))
        .bind(teacher.0)
        .bind(date)
        .bind(weekday)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        let slots: Vec<SlotRow> = rows.iter().map(slot_from).collect::<StoreResult<_>>()?;
        let ids: Vec<i64> = slots.iter().map(|s| s.assignment.id.0).collect();
        let held = self.held_lessons(&ids, date, date).await?;
        let subs = self.substitutions_for(&slots, date, date).await?;
        Ok(schedule::expand(&slots, &held, &subs, date, date))
    }

    async fn list_assignment_marks(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<AssignmentMarks> {
        // A row per history record (a mark without one, e.g. an imported mark, gives one row
        // with NULL history columns): one walk of the lessons and their marks for both lists.
        let rows = sqlx::query(&format!(
            "SELECT {MARK_COLS}, m.deleted_at, h.id AS history_id, h.mark_id, h.changed_at, \
             h.changed_by, p.last_name, p.first_name, h.old_value, h.new_value, h.old_work_type_id, \
             h.new_work_type_id, h.reason \
             FROM lessons l JOIN marks m ON m.lesson_id = l.id \
             LEFT JOIN mark_history h ON h.mark_id = m.id LEFT JOIN persons p ON p.id = h.changed_by \
             WHERE l.assignment_id = $1 AND l.on_date BETWEEN $2 AND $3 \
             ORDER BY l.on_date, l.lesson_number, m.id, h.changed_at, h.id"
        ))
        .bind(assignment.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        let mut out = AssignmentMarks::default();
        let mut history = Vec::new();
        for r in &rows {
            let live = get::<Option<i64>>(r, "deleted_at")?.is_none();
            let id: i64 = get(r, "id")?;
            if live && out.marks.last().is_none_or(|m| m.id.0 != id) {
                out.marks.push(mark_from(r)?);
            }
            if let Some(history_id) = get::<Option<i64>>(r, "history_id")? {
                history.push((history_id, history_from(r)?));
            }
        }
        // Oldest first across marks, as a cell with several marks shows its changes.
        history.sort_by_key(|(id, h)| (h.changed_at, *id));
        out.history = history.into_iter().map(|(_, h)| h).collect();
        Ok(out)
    }

    async fn list_assignment_attendance(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttendanceRow>> {
        let rows = sqlx::query(
            "SELECT a.lesson_id, a.student_id, a.kind FROM attendance a JOIN lessons l ON l.id = a.lesson_id \
             WHERE l.assignment_id = $1 AND l.on_date BETWEEN $2 AND $3 ORDER BY l.on_date, l.lesson_number",
        )
        .bind(assignment.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(attendance_from).collect()
    }

    async fn get_lesson(&self, id: LessonId) -> StoreResult<LessonRow> {
        let row = sqlx::query(
            "SELECT id, assignment_id, on_date, lesson_number, topic, homework FROM lessons WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("урок {id}")))?;
        lesson_from(&row)
    }

    async fn get_journal_mark(&self, id: MarkId) -> StoreResult<JournalMark> {
        let row = sqlx::query(&format!(
            "SELECT {MARK_COLS}, l.assignment_id, l.on_date, l.lesson_number AS l_number \
             FROM marks m JOIN lessons l ON l.id = m.lesson_id WHERE m.id = $1 AND m.deleted_at IS NULL"
        ))
        .bind(id.0)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("отметка {id}")))?;
        Ok(JournalMark {
            mark: mark_from(&row)?,
            assignment_id: AssignmentId(get(&row, "assignment_id")?),
            date: get(&row, "on_date")?,
            lesson_number: small("lessons.lesson_number", get(&row, "l_number")?)?,
        })
    }

    async fn create_mark(&self, m: &NewMark, audit: NewAudit) -> StoreResult<MarkRow> {
        let mut tx = self.write_tx().await?;
        match create_mark_in(&mut tx, m).await? {
            // Nothing was written: dropping the transaction rolls it back.
            MarkWrite::Existing(row) => Ok(row),
            MarkWrite::Created(row) => {
                append_audit_in(&mut tx, self.sealer.as_ref(), &audit_of(&row, audit)).await?;
                tx.commit().await.map_err(map_err)?;
                Ok(row)
            }
        }
    }

    async fn create_marks(
        &self,
        marks: &[(NewMark, NewAudit)],
    ) -> StoreResult<Vec<StoreResult<MarkRow>>> {
        if marks.is_empty() {
            return Ok(Vec::new());
        }
        // First without savepoints: marks are validated before they are queued, so a refusal
        // is rare, and a savepoint costs two round trips per mark on PostgreSQL. A refusal
        // rolls this attempt back (nothing of it is kept) and the batch is written again, each
        // mark in its own savepoint, so that the refused one fails alone.
        let mut tx = self.write_tx().await?;
        let (mut results, mut audits) = write_marks(&mut tx, marks, false).await?;
        if results.len() < marks.len() || results.iter().any(Result::is_err) {
            tx.rollback().await.map_err(map_err)?;
            tx = self.write_tx().await?;
            (results, audits) = write_marks(&mut tx, marks, true).await?;
        }
        // The audit records go last, outside every savepoint: on PostgreSQL the chain lock is
        // taken here once and held to the commit (a lock taken inside a savepoint would be
        // released by its rollback), and taking it after the row writes keeps the lock order
        // of `append_audit_in` (chain lock last), so a batch cannot deadlock with a single
        // write. The records are still in the transaction of their marks.
        append_audits_in(&mut tx, self.sealer.as_ref(), &audits).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(results)
    }

    async fn update_mark(&self, c: &MarkChange, audit: NewAudit) -> StoreResult<MarkRow> {
        let mut tx = self.write_tx().await?;
        let old = sqlx::query(
            "SELECT value, work_type_id FROM marks WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(c.id.0)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("отметка {}", c.id)))?;
        let (old_value, old_wt): (String, i64) = (get(&old, "value")?, get(&old, "work_type_id")?);
        sqlx::query(
            "UPDATE marks SET value = $2, work_type_id = $3, weight = $4, comment = $5, updated_at = $6 \
             WHERE id = $1",
        )
        .bind(c.id.0)
        .bind(c.value.code())
        .bind(c.work_type.0)
        .bind(i64::from(c.weight))
        .bind(&c.comment)
        .bind(c.at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO mark_history (mark_id, changed_at, changed_by, old_value, new_value, \
             old_work_type_id, new_work_type_id, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(c.id.0)
        .bind(c.at)
        .bind(c.by.0)
        .bind(&old_value)
        .bind(c.value.code())
        .bind(old_wt)
        .bind(c.work_type.0)
        .bind(&c.reason)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let row = mark_in(&mut tx, c.id.0).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(row)
    }

    async fn delete_mark(
        &self,
        id: MarkId,
        by: PersonId,
        at: i64,
        reason: &str,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let old = sqlx::query(
            "UPDATE marks SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL \
             RETURNING value, work_type_id",
        )
        .bind(id.0)
        .bind(at)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .ok_or_else(|| StoreError::NotFound(format!("отметка {id}")))?;
        let (old_value, old_wt): (String, i64) = (get(&old, "value")?, get(&old, "work_type_id")?);
        sqlx::query(
            "INSERT INTO mark_history (mark_id, changed_at, changed_by, old_value, new_value, \
             old_work_type_id, new_work_type_id, reason) VALUES ($1, $2, $3, $4, NULL, $5, NULL, $6)",
        )
        .bind(id.0)
        .bind(at)
        .bind(by.0)
        .bind(&old_value)
        .bind(old_wt)
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn set_attendance(
        &self,
        lesson: LessonKey,
        student: PersonId,
        kind: Option<AttendanceKind>,
        author: PersonId,
        at: i64,
        audit: NewAudit,
    ) -> StoreResult<Option<AttendanceKind>> {
        let mut tx = self.write_tx().await?;
        let lesson_id = ensure_lesson(&mut tx, lesson).await?;
        let old =
            sqlx::query("SELECT kind FROM attendance WHERE lesson_id = $1 AND student_id = $2")
                .bind(lesson_id)
                .bind(student.0)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let old = match old {
            Some(r) => Some(attendance_kind(&r)?),
            None => None,
        };
        match kind {
            Some(k) => sqlx::query(
                "INSERT INTO attendance (lesson_id, student_id, kind, author_id, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (lesson_id, student_id) DO UPDATE \
                 SET kind = excluded.kind, author_id = excluded.author_id, updated_at = excluded.updated_at",
            )
            .bind(lesson_id)
            .bind(student.0)
            .bind(k.code())
            .bind(author.0)
            .bind(at),
            None => sqlx::query("DELETE FROM attendance WHERE lesson_id = $1 AND student_id = $2")
                .bind(lesson_id)
                .bind(student.0),
        }
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut audit = audit;
        if let Some(obj) = audit.details.as_object_mut() {
            obj.insert("old".into(), serde_json::json!(old.map(AttendanceKind::code)));
            obj.insert("new".into(), serde_json::json!(kind.map(AttendanceKind::code)));
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(old)
    }

    async fn update_lesson(
        &self,
        lesson: LessonKey,
        topic: Option<String>,
        homework: Option<String>,
        audit: NewAudit,
    ) -> StoreResult<LessonRow> {
        let mut tx = self.write_tx().await?;
        let id = ensure_lesson(&mut tx, lesson).await?;
        let row = sqlx::query(
            "UPDATE lessons SET topic = $2, homework = $3 WHERE id = $1 \
             RETURNING id, assignment_id, on_date, lesson_number, topic, homework",
        )
        .bind(id)
        .bind(topic)
        .bind(homework)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        let out = lesson_from(&row)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(out)
    }

    async fn add_attachment(
        &self,
        lesson: LessonKey,
        f: &NewAttachment,
        audit: NewAudit,
    ) -> StoreResult<AttachmentRow> {
        let mut tx = self.write_tx().await?;
        let existing =
            sqlx::query(&format!("SELECT {ATTACHMENT_COLS} FROM attachments f WHERE f.uid = $1"))
                .bind(&f.uid)
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        if let Some(row) = existing {
            return attachment_from(&row);
        }
        let lesson_id = ensure_lesson(&mut tx, lesson).await?;
        let size = i64::try_from(f.content.len()).map_err(|_| corrupt("size", "too large"))?;
        sqlx::query(
            "INSERT INTO attachments (uid, lesson_id, file_name, content_type, size_bytes, sha256, content, \
             uploaded_by, uploaded_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&f.uid)
        .bind(lesson_id)
        .bind(&f.file_name)
        .bind(&f.content_type)
        .bind(size)
        .bind(&f.sha256)
        .bind(&f.content)
        .bind(f.by.0)
        .bind(f.at)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(AttachmentRow {
            uid: f.uid.clone(),
            lesson_id: LessonId(lesson_id),
            file_name: f.file_name.clone(),
            content_type: f.content_type.clone(),
            size_bytes: size,
            sha256: f.sha256.clone(),
            uploaded_by: f.by,
            uploaded_at: f.at,
        })
    }

    async fn list_assignment_attachments(
        &self,
        assignment: AssignmentId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttachmentRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLS} FROM attachments f JOIN lessons l ON l.id = f.lesson_id \
             WHERE l.assignment_id = $1 AND l.on_date BETWEEN $2 AND $3 ORDER BY l.on_date, f.id"
        ))
        .bind(assignment.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(attachment_from).collect()
    }

    async fn find_attachment(
        &self,
        uid: &str,
    ) -> StoreResult<Option<(AttachmentRow, AssignmentId, Vec<u8>)>> {
        let row = sqlx::query(&format!(
            "SELECT {ATTACHMENT_COLS}, f.content, l.assignment_id FROM attachments f \
             JOIN lessons l ON l.id = f.lesson_id WHERE f.uid = $1"
        ))
        .bind(uid)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.map(|r| {
            Ok((
                attachment_from(&r)?,
                AssignmentId(get(&r, "assignment_id")?),
                get::<Vec<u8>>(&r, "content")?,
            ))
        })
        .transpose()
    }

    async fn list_assignment_final_marks(
        &self,
        assignment: AssignmentId,
    ) -> StoreResult<Vec<FinalMarkRow>> {
        let rows = sqlx::query(
            "SELECT student_id, assignment_id, kind, period_id, value, author_id, set_at FROM final_marks \
             WHERE assignment_id = $1 ORDER BY student_id, kind, period_id",
        )
        .bind(assignment.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(final_mark_from).collect()
    }

    async fn set_final_mark(
        &self,
        w: &FinalMarkWrite,
        audit: NewAudit,
    ) -> StoreResult<Option<String>> {
        let FinalMarkWrite { student, assignment, kind, value, author, at } = w.clone();
        let mut tx = self.write_tx().await?;
        let period = kind.period().map(|p| p.0);
        // The unique key treats NULL periods as distinct, so annual and final marks are
        // replaced by delete + insert rather than an upsert.
        let old: Option<String> = sqlx::query(
            "DELETE FROM final_marks WHERE student_id = $1 AND assignment_id = $2 AND kind = $3 \
             AND period_id IS NOT DISTINCT FROM $4 RETURNING value",
        )
        .bind(student.0)
        .bind(assignment.0)
        .bind(kind.code())
        .bind(period)
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?
        .map(|r| get(&r, "value"))
        .transpose()?;
        if let Some(v) = &value {
            sqlx::query(
                "INSERT INTO final_marks (student_id, assignment_id, kind, period_id, value, author_id, set_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(student.0)
            .bind(assignment.0)
            .bind(kind.code())
            .bind(period)
            .bind(v)
            .bind(author.0)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let mut audit = audit;
        if let Some(obj) = audit.details.as_object_mut() {
            obj.insert("old".into(), serde_json::json!(old));
            obj.insert("new".into(), serde_json::json!(value));
        }
        // Area `integrations`: the portfolio hears of the mark (sent once its period is closed).
        crate::integration::outbox_final_mark_in(&mut tx, w).await?;
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        Ok(old)
    }

    async fn set_period_closed(
        &self,
        period: PeriodId,
        closed_on: Option<NaiveDate>,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        let done = sqlx::query("UPDATE periods SET closed_on = $2 WHERE id = $1")
            .bind(period.0)
            .bind(closed_on)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("период {period}")));
        }
        // Area `integrations`: a closed period's marks go to the portfolio.
        if closed_on.is_some() {
            crate::integration::outbox_period_closed_in(&mut tx, period.0, audit.at).await?;
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn list_class_assignments(&self, class: ClassId) -> StoreResult<Vec<AssignmentRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ASSIGNMENT_COLS} FROM assignments a {ASSIGNMENT_JOINS} WHERE a.class_id = $1 \
             ORDER BY sj.name, a.id"
        ))
        .bind(class.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(assignment_from).collect()
    }
}
