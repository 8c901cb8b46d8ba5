//! [`DiaryStore`] on both backends: diary reads, the class summary, feed visits and announcements.

use std::collections::HashMap;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::NaiveDate;
use zhurnal_domain::{
    AnnouncementStatus, AssignmentId, ClassId, LessonId, MarkValue, PeriodId, PeriodMarkValue,
    PersonId, SchoolId, SubjectId, WorkTypeId,
};
use zhurnal_store::*;

use crate::backend::{ANY_OF_1, BACKEND, DbRow, DbStore, id_list};
use crate::base::{CLASS_WEEK_LESSONS, lesson_rows};
use crate::rows::{attendance_kind, class_from_as, corrupt, get, person_from, school_from_as};
use crate::{PERSON_COLS, append_audit_in, map_err};

const SUBJECT_MARK_SELECT: &str = "SELECT m.student_id, l.assignment_id, a.subject_id, sj.name AS subject_name, \
    m.lesson_id, l.on_date, m.value, m.work_type_id, m.weight, m.comment, m.created_at \
    FROM marks m JOIN lessons l ON l.id = m.lesson_id JOIN assignments a ON a.id = l.assignment_id \
    JOIN subjects sj ON sj.id = a.subject_id";

/// [`DiaryStore::list_student_week_entries`]: `$1` the ids of the week's held lessons (a list,
/// see `ANY_OF_1`), `$2` student, `$3` class. `entry` 0 is a mark, 1 an attendance entry (both
/// by `lesson_id`), 2 a group assignment of the class the student is not in (by
/// `assignment_id`). The lessons come from the class's part of the week the diary read or
/// kept before, so the marks and absences are probes of the student's rows of those lessons
/// (`marks_student_idx`, the attendance indexes), with nothing joined: what a lesson is and
/// what it teaches is in the class's part already. Starting from the class's assignments and
/// their lessons instead cost PostgreSQL twice as much (docs/performance.md, thirteenth
/// round), and a search by student alone would read every mark of the year to keep a week's.
static WEEK_ENTRIES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT CAST(0 AS BIGINT) AS entry, m.lesson_id, m.id AS mark_id, m.value, \
           m.work_type_id, m.weight, m.comment, m.created_at, CAST(NULL AS TEXT) AS kind, \
           CAST(NULL AS BIGINT) AS assignment_id \
           FROM marks m \
           WHERE m.student_id = $2 AND m.lesson_id {ANY_OF_1} AND m.deleted_at IS NULL \
         UNION ALL \
         SELECT 1, t.lesson_id, NULL, NULL, NULL, NULL, NULL, NULL, t.kind, NULL \
           FROM attendance t WHERE t.student_id = $2 AND t.lesson_id {ANY_OF_1} \
         UNION ALL \
         SELECT 2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, a.id \
           FROM assignments a WHERE a.class_id = $3 AND a.group_id IS NOT NULL AND NOT EXISTS \
           (SELECT 1 FROM group_members gm WHERE gm.group_id = a.group_id AND gm.student_id = $2) \
         ORDER BY entry, lesson_id, mark_id, assignment_id"
    )
});

/// The value and weight of a mark row, checked.
fn mark_value_weight(r: &DbRow) -> StoreResult<(MarkValue, u8)> {
    let value: String = get(r, "value")?;
    let weight: i64 = get(r, "weight")?;
    Ok((
        MarkValue::parse(&value).map_err(|_| corrupt("marks.value", &value))?,
        u8::try_from(weight).map_err(|_| corrupt("marks.weight", &weight.to_string()))?,
    ))
}

fn subject_mark_from(r: &DbRow) -> StoreResult<SubjectMarkRow> {
    let (value, weight) = mark_value_weight(r)?;
    Ok(SubjectMarkRow {
        student_id: PersonId(get(r, "student_id")?),
        assignment_id: AssignmentId(get(r, "assignment_id")?),
        subject_id: SubjectId(get(r, "subject_id")?),
        subject_name: get(r, "subject_name")?,
        lesson_id: LessonId(get(r, "lesson_id")?),
        date: get(r, "on_date")?,
        value,
        work_type_id: WorkTypeId(get(r, "work_type_id")?),
        weight,
        comment: get(r, "comment")?,
        created_at: get(r, "created_at")?,
    })
}

/// The student by uid with the school (`sc_` columns) and class (`c_` columns) of the enrolment
/// the diary shows: active ones first, then the latest admission (`id` breaks ties the same way
/// every time).
const DIARY_STUDENT_SELECT: &str = "SELECT p.id, p.uid, p.external_id, p.last_name, p.first_name, \
    p.middle_name, p.birth_date, p.gender, p.esia_oid, p.account_state, p.last_login_at, \
    p.snils_cipher, p.phone, p.email, \
    sc.id AS sc_id, sc.municipality_id AS sc_municipality_id, m.region_id AS sc_region_id, \
    sc.external_id AS sc_external_id, sc.name AS sc_name, sc.short_name AS sc_short_name, \
    c.id AS c_id, c.school_id AS c_school_id, c.academic_year_id AS c_academic_year_id, \
    c.external_id AS c_external_id, c.grade AS c_grade, c.letter AS c_letter, \
    c.class_teacher_id AS c_class_teacher_id, c.period_scheme AS c_period_scheme, \
    c.newly_formed AS c_newly_formed, \
    (SELECT COUNT(*) FROM enrolments e3 WHERE e3.class_id = c.id AND e3.departed_on IS NULL) \
      AS c_student_count, \
    COALESCE((SELECT ds.stamp FROM diary_stamps ds WHERE ds.scope_id = c.id), 0) AS class_stamp, \
    COALESCE((SELECT ds.stamp FROM diary_stamps ds WHERE ds.scope_id = 0), 0) AS region_stamp \
    FROM persons p \
    LEFT JOIN enrolments e ON e.id = (SELECT e2.id FROM enrolments e2 WHERE e2.student_id = p.id \
       ORDER BY (e2.departed_on IS NULL) DESC, e2.admitted_on DESC, e2.id DESC LIMIT 1) \
    LEFT JOIN schools sc ON sc.id = e.school_id \
    LEFT JOIN municipalities m ON m.id = sc.municipality_id \
    LEFT JOIN classes c ON c.id = e.class_id \
    WHERE p.uid = $1";

/// Announcements chosen by `condition` (`$1` its key), the newest `limit_sql` first, each with
/// its sender and its classes as a JSON array of `[id, grade, letter]` (`classes`). One row per
/// announcement: the classes used to be read announcement by announcement (up to 21 statements
/// for a diary page), and a row per class repeated a school-wide announcement once per class
/// (docs/performance.md, eighth round).
fn announcements_sql(condition: &str, limit_sql: &str) -> String {
    let classes = match BACKEND {
        Backend::Postgres => "json_agg(json_build_array(c.id, c.grade, c.letter))",
        Backend::Sqlite => "json_group_array(json_array(c.id, c.grade, c.letter))",
    };
    // The classes are aggregated for the chosen announcements only, after the limit: SQLite
    // computed them for every candidate before sorting (420 against 220 µs for five).
    format!(
        "SELECT an.*, sp.last_name AS s_last, sp.first_name AS s_first, \
         sp.middle_name AS s_middle, \
         (SELECT CAST({classes} AS TEXT) FROM announcement_classes ac \
          JOIN classes c ON c.id = ac.class_id WHERE ac.announcement_id = an.id) AS classes \
         FROM (SELECT an.id, an.uid, an.school_id, an.sender_id, an.body, an.status, \
               an.recipient_count, an.created_at, an.reviewed_by, an.reviewed_at \
               FROM announcements an WHERE {condition} \
               ORDER BY an.created_at DESC, an.id DESC LIMIT {limit_sql}) an \
         JOIN persons sp ON sp.id = an.sender_id ORDER BY an.created_at DESC, an.id DESC"
    )
}

fn announcement_from(r: &DbRow) -> StoreResult<AnnouncementRow> {
    let status: String = get(r, "status")?;
    let last: String = get(r, "s_last")?;
    let first: String = get(r, "s_first")?;
    let middle: Option<String> = get(r, "s_middle")?;
    // PostgreSQL aggregates no rows to NULL, SQLite to an empty array.
    let json: Option<String> = get(r, "classes")?;
    let mut classes: Vec<(i64, i64, String)> = match json {
        Some(j) => serde_json::from_str(&j).map_err(|_| corrupt("announcement_classes", &j))?,
        None => Vec::new(),
    };
    classes.sort_by(|a, b| (a.1, &a.2).cmp(&(b.1, &b.2)));
    Ok(AnnouncementRow {
        id: get(r, "id")?,
        uid: get(r, "uid")?,
        school_id: SchoolId(get(r, "school_id")?),
        sender_id: PersonId(get(r, "sender_id")?),
        sender_name: short_name(&last, &first, middle.as_deref()),
        body: get(r, "body")?,
        status: AnnouncementStatus::from_code(&status)
            .ok_or_else(|| corrupt("announcements.status", &status))?,
        recipient_count: get(r, "recipient_count")?,
        created_at: get(r, "created_at")?,
        reviewed_by: get::<Option<i64>>(r, "reviewed_by")?.map(PersonId),
        reviewed_at: get(r, "reviewed_at")?,
        classes: classes
            .into_iter()
            .map(|(id, grade, letter)| (ClassId(id), format!("{grade}{letter}")))
            .collect(),
    })
}

impl DbStore {
    async fn announcements_where(
        &self,
        condition: &str,
        key: i64,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementRow>> {
        let rows = sqlx::query(&announcements_sql(condition, "$2"))
            .bind(key)
            .bind(limit)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        rows.iter().map(announcement_from).collect()
    }
}

#[async_trait]
impl DiaryStore for DbStore {
    async fn list_class_attachments(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<AttachmentMeta>> {
        let rows = sqlx::query(
            "SELECT f.uid, f.lesson_id, f.file_name, f.content_type, f.size_bytes FROM attachments f \
             JOIN lessons l ON l.id = f.lesson_id JOIN assignments a ON a.id = l.assignment_id \
             WHERE a.class_id = $1 AND l.on_date BETWEEN $2 AND $3 ORDER BY l.on_date, f.id",
        )
        .bind(class.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(AttachmentMeta {
                    uid: get(r, "uid")?,
                    lesson_id: LessonId(get(r, "lesson_id")?),
                    file_name: get(r, "file_name")?,
                    content_type: get(r, "content_type")?,
                    size_bytes: get(r, "size_bytes")?,
                })
            })
            .collect()
    }

    async fn find_diary_student(&self, uid: &str) -> StoreResult<Option<DiaryStudent>> {
        let Some(r) = sqlx::query(DIARY_STUDENT_SELECT)
            .bind(uid)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
        else {
            return Ok(None);
        };
        let enrolled: Option<i64> = get(&r, "c_id")?;
        let placement = match enrolled {
            Some(_) => Some((school_from_as(&r, "sc_")?, class_from_as(&r, "c_")?)),
            None => None,
        };
        let stamp = WeekStamp { class: get(&r, "class_stamp")?, region: get(&r, "region_stamp")? };
        Ok(Some(DiaryStudent { person: person_from(&r)?, placement, stamp }))
    }

    async fn read_class_week(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<ClassWeek> {
        let rows = sqlx::query(CLASS_WEEK_LESSONS.as_str())
            .bind(class.0)
            .bind(from)
            .bind(to)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let w = lesson_rows(&rows)?;
        let lessons = schedule::expand(&w.slots, &w.held, &w.subs, from, to);
        let files = self.list_class_attachments(class, from, to).await?;
        Ok(ClassWeek { lessons, files })
    }

    async fn list_student_week_entries(
        &self,
        student: PersonId,
        class: ClassId,
        week: &ClassWeek,
    ) -> StoreResult<WeekEntries> {
        let held: HashMap<LessonId, &ScheduledLesson> =
            week.lessons.iter().filter_map(|l| Some((l.lesson_id?, l))).collect();
        let ids: Vec<i64> = held.keys().map(|l| l.0).collect();
        let rows = sqlx::query(WEEK_ENTRIES.as_str())
            .bind(id_list(&ids)?)
            .bind(student.0)
            .bind(class.0)
            .fetch_all(self.reader())
            .await
            .map_err(map_err)?;
        let lesson_of = |r: &DbRow| -> StoreResult<(LessonId, &ScheduledLesson)> {
            let id = LessonId(get(r, "lesson_id")?);
            let lesson = held.get(&id).ok_or_else(|| corrupt("lessons.id", &id.0.to_string()))?;
            Ok((id, lesson))
        };
        // Sorted below as the trait promises (by date and lesson number), which the lesson ids
        // the statement sorts by do not follow.
        let (mut marks, mut attendance) = (Vec::new(), Vec::new());
        let mut other_groups = Vec::new();
        for r in &rows {
            match get::<i64>(r, "entry")? {
                0 => {
                    let (lesson_id, lesson) = lesson_of(r)?;
                    let (value, weight) = mark_value_weight(r)?;
                    let mark_id: i64 = get(r, "mark_id")?;
                    let row = SubjectMarkRow {
                        student_id: student,
                        assignment_id: lesson.assignment.id,
                        subject_id: lesson.assignment.subject_id,
                        subject_name: lesson.assignment.subject_name.clone(),
                        lesson_id,
                        date: lesson.date,
                        value,
                        work_type_id: WorkTypeId(get(r, "work_type_id")?),
                        weight,
                        comment: get(r, "comment")?,
                        created_at: get(r, "created_at")?,
                    };
                    marks.push(((lesson.date, lesson.lesson_number, mark_id), row));
                }
                1 => {
                    let (lesson_id, lesson) = lesson_of(r)?;
                    let row =
                        AttendanceRow { lesson_id, student_id: student, kind: attendance_kind(r)? };
                    attendance.push(((lesson.date, lesson.lesson_number, row.lesson_id), row));
                }
                _ => other_groups.push(AssignmentId(get(r, "assignment_id")?)),
            }
        }
        marks.sort_unstable_by_key(|(key, _)| *key);
        attendance.sort_unstable_by_key(|(key, _)| *key);
        Ok(WeekEntries {
            marks: marks.into_iter().map(|(_, m)| m).collect(),
            attendance: attendance.into_iter().map(|(_, a)| a).collect(),
            other_groups,
        })
    }

    async fn list_student_subject_marks(
        &self,
        student: PersonId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SubjectMarkRow>> {
        let rows = sqlx::query(&format!(
            "{SUBJECT_MARK_SELECT} WHERE m.student_id = $1 AND l.on_date BETWEEN $2 AND $3 \
             AND m.deleted_at IS NULL ORDER BY l.on_date, l.lesson_number, m.id"
        ))
        .bind(student.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(subject_mark_from).collect()
    }

    async fn list_class_marks(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<SubjectMarkRow>> {
        let rows = sqlx::query(&format!(
            "{SUBJECT_MARK_SELECT} WHERE a.class_id = $1 AND l.on_date BETWEEN $2 AND $3 \
             AND m.deleted_at IS NULL ORDER BY m.student_id, l.on_date, l.lesson_number, m.id"
        ))
        .bind(class.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter().map(subject_mark_from).collect()
    }

    async fn list_class_attendance(
        &self,
        class: ClassId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> StoreResult<Vec<ClassAttendanceRow>> {
        let rows = sqlx::query(
            "SELECT t.student_id, l.on_date, t.kind FROM attendance t \
             JOIN lessons l ON l.id = t.lesson_id JOIN assignments a ON a.id = l.assignment_id \
             WHERE a.class_id = $1 AND l.on_date BETWEEN $2 AND $3 \
             ORDER BY t.student_id, l.on_date, l.lesson_number",
        )
        .bind(class.0)
        .bind(from)
        .bind(to)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(ClassAttendanceRow {
                    student_id: PersonId(get(r, "student_id")?),
                    date: get(r, "on_date")?,
                    kind: attendance_kind(r)?,
                })
            })
            .collect()
    }

    async fn list_student_final_marks(
        &self,
        student: PersonId,
    ) -> StoreResult<Vec<StudentFinalMark>> {
        let rows = sqlx::query(
            "SELECT student_id, assignment_id, kind, period_id, value, set_at FROM final_marks \
             WHERE student_id = $1 ORDER BY assignment_id, kind, period_id",
        )
        .bind(student.0)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                let value: String = get(r, "value")?;
                Ok(StudentFinalMark {
                    student_id: PersonId(get(r, "student_id")?),
                    assignment_id: AssignmentId(get(r, "assignment_id")?),
                    kind: get(r, "kind")?,
                    period_id: get::<Option<i64>>(r, "period_id")?.map(PeriodId),
                    value: PeriodMarkValue::parse(&value)
                        .map_err(|_| corrupt("final_marks.value", &value))?,
                    set_at: get(r, "set_at")?,
                })
            })
            .collect()
    }

    async fn list_class_guardians(
        &self,
        class: ClassId,
        on: NaiveDate,
    ) -> StoreResult<Vec<GuardianContact>> {
        let rows = sqlx::query(&format!(
            "SELECT g.child_id, {PERSON_COLS} FROM enrolments e \
             JOIN guardianships g ON g.child_id = e.student_id JOIN persons p ON p.id = g.parent_id \
             WHERE e.class_id = $1 AND e.admitted_on <= $2 AND (e.departed_on IS NULL OR e.departed_on > $2) \
             ORDER BY g.child_id, p.last_name, p.first_name, p.id"
        ))
        .bind(class.0)
        .bind(on)
        .fetch_all(self.reader())
        .await
        .map_err(map_err)?;
        rows.iter()
            .map(|r| {
                Ok(GuardianContact {
                    child_id: PersonId(get(r, "child_id")?),
                    parent: person_from(r)?,
                })
            })
            .collect()
    }

    async fn find_diary_visit(
        &self,
        viewer: PersonId,
        student: PersonId,
    ) -> StoreResult<Option<DiaryVisit>> {
        let row = sqlx::query(
            "SELECT visited_at, seen_lessons FROM diary_visits WHERE viewer_id = $1 AND student_id = $2",
        )
        .bind(viewer.0)
        .bind(student.0)
        .fetch_optional(self.reader())
        .await
        .map_err(map_err)?;
        row.map(|r| {
            let seen: String = get(&r, "seen_lessons")?;
            let ids: Vec<i64> = serde_json::from_str(&seen)
                .map_err(|_| corrupt("diary_visits.seen_lessons", &seen))?;
            Ok(DiaryVisit {
                at: get(&r, "visited_at")?,
                seen_lessons: ids.into_iter().map(LessonId).collect(),
            })
        })
        .transpose()
    }

    async fn record_diary_visit(
        &self,
        viewer: PersonId,
        student: PersonId,
        visit: &DiaryVisit,
    ) -> StoreResult<()> {
        let seen =
            serde_json::to_string(&visit.seen_lessons.iter().map(|l| l.0).collect::<Vec<_>>())
                .map_err(|e| StoreError::Other(Box::new(e)))?;
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "INSERT INTO diary_visits (viewer_id, student_id, visited_at, seen_lessons) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (viewer_id, student_id) DO UPDATE SET visited_at = excluded.visited_at, \
             seen_lessons = excluded.seen_lessons",
        )
        .bind(viewer.0)
        .bind(student.0)
        .bind(visit.at)
        .bind(seen)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn insert_announcement(
        &self,
        a: &NewAnnouncement,
        audit: NewAudit,
    ) -> StoreResult<AnnouncementRow> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO announcements (uid, school_id, sender_id, body, status, recipient_count, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&a.uid)
        .bind(a.school_id.0)
        .bind(a.sender_id.0)
        .bind(&a.body)
        .bind(a.status.code())
        .bind(a.recipient_count)
        .bind(a.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
        for class in &a.classes {
            sqlx::query(
                "INSERT INTO announcement_classes (announcement_id, class_id) VALUES ($1, $2)",
            )
            .bind(id)
            .bind(class.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        let audit = audit.target("announcement", &a.uid);
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)?;
        self.get_announcement(&a.uid).await
    }

    async fn get_announcement(&self, uid: &str) -> StoreResult<AnnouncementRow> {
        let row = sqlx::query(&announcements_sql("an.uid = $1", "1"))
            .bind(uid)
            .fetch_optional(self.reader())
            .await
            .map_err(map_err)?
            .ok_or_else(|| StoreError::NotFound(format!("объявление {uid}")))?;
        announcement_from(&row)
    }

    async fn count_announcements_since(&self, sender: PersonId, since: i64) -> StoreResult<i64> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM announcements WHERE sender_id = $1 AND created_at >= $2",
        )
        .bind(sender.0)
        .bind(since)
        .fetch_one(self.reader())
        .await
        .map_err(map_err)
    }

    async fn list_class_announcements(
        &self,
        class: ClassId,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementRow>> {
        self.announcements_where(
            "an.status = 'delivered' AND an.id IN \
             (SELECT ac.announcement_id FROM announcement_classes ac WHERE ac.class_id = $1)",
            class.0,
            limit,
        )
        .await
    }

    async fn list_school_announcements(
        &self,
        school: SchoolId,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementRow>> {
        self.announcements_where("an.school_id = $1", school.0, limit).await
    }

    async fn list_sender_announcements(
        &self,
        sender: PersonId,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementRow>> {
        self.announcements_where("an.sender_id = $1", sender.0, limit).await
    }

    async fn review_announcement(
        &self,
        id: i64,
        from: &[AnnouncementStatus],
        to: AnnouncementStatus,
        by: PersonId,
        at: i64,
        audit: NewAudit,
    ) -> StoreResult<()> {
        let placeholders: Vec<String> = (0..from.len()).map(|i| format!("${}", i + 5)).collect();
        if placeholders.is_empty() {
            return Err(StoreError::Conflict { constraint: "announcements_status".into() });
        }
        let mut tx = self.write_tx().await?;
        let sql = format!(
            "UPDATE announcements SET status = $1, reviewed_by = $2, reviewed_at = $3 \
             WHERE id = $4 AND status IN ({})",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(to.code()).bind(by.0).bind(at).bind(id);
        for s in from {
            q = q.bind(s.code());
        }
        let done = q.execute(&mut *tx).await.map_err(map_err)?;
        if done.rows_affected() != 1 {
            return Err(StoreError::Conflict { constraint: "announcements_status".into() });
        }
        append_audit_in(&mut tx, self.sealer.as_ref(), &audit).await?;
        tx.commit().await.map_err(map_err)
    }
}
