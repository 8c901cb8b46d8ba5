//! Bulk loading for `zhurnal generate` (the region-scale benchmark): rows with ids chosen by the
//! loader, written table by table without the per-row lookups of [`crate::Batch`].
//!
//! Only an empty database is loaded this way (the generator checks [`BulkStore::bulk_is_empty`]):
//! there is nothing to upsert against, so PostgreSQL takes `COPY` and SQLite multi-row
//! `INSERT`s in large transactions. Nothing is audited row by row — the generator writes one
//! audit record for the whole load through the ordinary path.

use async_trait::async_trait;
use chrono::NaiveDate;

use crate::StoreResult;

/// A table the bulk loader may write, with its columns in the order of [`BulkRow`] values.
/// A closed list: the table and column names never come from input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BulkTable {
    Regions,
    Municipalities,
    Schools,
    AcademicYears,
    Periods,
    Persons,
    Classes,
    ClassGroups,
    GroupMembers,
    Enrolments,
    Guardianships,
    StaffRoles,
    Subjects,
    WorkTypes,
    Assignments,
    TimetableSlots,
    Substitutions,
    Lessons,
    Marks,
    /// История отметки: the creation of each generated mark, as mark entry records it.
    MarkHistory,
    Attendance,
    /// Объявления: class teachers' weekly notes and the school's notes to every class.
    Announcements,
    AnnouncementClasses,
}

impl BulkTable {
    /// Every table, parents before children (the order the generator writes them in).
    pub const ALL: [BulkTable; 23] = [
        BulkTable::Regions,
        BulkTable::Municipalities,
        BulkTable::Schools,
        BulkTable::AcademicYears,
        BulkTable::Periods,
        BulkTable::Persons,
        BulkTable::Classes,
        BulkTable::ClassGroups,
        BulkTable::GroupMembers,
        BulkTable::Enrolments,
        BulkTable::Guardianships,
        BulkTable::StaffRoles,
        BulkTable::Subjects,
        BulkTable::WorkTypes,
        BulkTable::Assignments,
        BulkTable::TimetableSlots,
        BulkTable::Substitutions,
        BulkTable::Lessons,
        BulkTable::Marks,
        BulkTable::MarkHistory,
        BulkTable::Attendance,
        BulkTable::Announcements,
        BulkTable::AnnouncementClasses,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BulkTable::Regions => "regions",
            BulkTable::Municipalities => "municipalities",
            BulkTable::Schools => "schools",
            BulkTable::AcademicYears => "academic_years",
            BulkTable::Periods => "periods",
            BulkTable::Persons => "persons",
            BulkTable::Classes => "classes",
            BulkTable::ClassGroups => "class_groups",
            BulkTable::GroupMembers => "group_members",
            BulkTable::Enrolments => "enrolments",
            BulkTable::Guardianships => "guardianships",
            BulkTable::StaffRoles => "staff_roles",
            BulkTable::Subjects => "subjects",
            BulkTable::WorkTypes => "work_types",
            BulkTable::Assignments => "assignments",
            BulkTable::TimetableSlots => "timetable_slots",
            BulkTable::Substitutions => "substitutions",
            BulkTable::Lessons => "lessons",
            BulkTable::Marks => "marks",
            BulkTable::MarkHistory => "mark_history",
            BulkTable::Attendance => "attendance",
            BulkTable::Announcements => "announcements",
            BulkTable::AnnouncementClasses => "announcement_classes",
        }
    }

    pub fn columns(self) -> &'static [&'static str] {
        match self {
            BulkTable::Regions => &["id", "external_id", "name"],
            BulkTable::Municipalities => &["id", "external_id", "region_id", "name"],
            BulkTable::Schools => &["id", "external_id", "municipality_id", "name", "short_name"],
            BulkTable::AcademicYears => {
                &["id", "external_id", "school_id", "name", "starts_on", "ends_on"]
            }
            BulkTable::Periods => &[
                "id",
                "external_id",
                "academic_year_id",
                "scheme",
                "number",
                "starts_on",
                "ends_on",
                "closed_on",
            ],
            BulkTable::Persons => &[
                "id",
                "uid",
                "external_id",
                "last_name",
                "first_name",
                "middle_name",
                "birth_date",
                "gender",
                "snils_hmac",
                "snils_cipher",
                "phone",
                "email",
                "created_at",
            ],
            BulkTable::Classes => &[
                "id",
                "external_id",
                "school_id",
                "academic_year_id",
                "grade",
                "letter",
                "class_teacher_id",
                "period_scheme",
                "newly_formed",
            ],
            BulkTable::ClassGroups => &["id", "external_id", "class_id", "name"],
            BulkTable::GroupMembers => &["group_id", "student_id"],
            BulkTable::Enrolments => &[
                "id",
                "external_id",
                "student_id",
                "school_id",
                "class_id",
                "admitted_on",
                "departed_on",
                "departure_kind",
                "departure_reason",
            ],
            BulkTable::Guardianships => &["parent_id", "child_id", "confirmed_at"],
            BulkTable::StaffRoles => &[
                "id",
                "person_id",
                "role",
                "school_id",
                "municipality_id",
                "region_id",
                "granted_at",
            ],
            BulkTable::Subjects => &["id", "external_id", "school_id", "name", "grading"],
            BulkTable::WorkTypes => &["id", "school_id", "code", "name", "weight"],
            BulkTable::Assignments => {
                &["id", "external_id", "teacher_id", "class_id", "group_id", "subject_id"]
            }
            BulkTable::TimetableSlots => {
                &["id", "external_id", "assignment_id", "weekday", "lesson_number", "room"]
            }
            BulkTable::Substitutions => &["id", "slot_id", "on_date", "substitute_id", "reason"],
            BulkTable::Lessons => &[
                "id",
                "external_id",
                "assignment_id",
                "on_date",
                "lesson_number",
                "topic",
                "homework",
            ],
            BulkTable::Marks => &[
                "id",
                "external_id",
                "lesson_id",
                "student_id",
                "value",
                "work_type_id",
                "weight",
                "comment",
                "author_id",
                "created_at",
                "updated_at",
            ],
            BulkTable::MarkHistory => &[
                "mark_id",
                "changed_at",
                "changed_by",
                "old_value",
                "new_value",
                "old_work_type_id",
                "new_work_type_id",
                "reason",
            ],
            BulkTable::Attendance => {
                &["lesson_id", "student_id", "kind", "author_id", "updated_at"]
            }
            BulkTable::Announcements => &[
                "id",
                "uid",
                "school_id",
                "sender_id",
                "body",
                "status",
                "recipient_count",
                "created_at",
            ],
            BulkTable::AnnouncementClasses => &["announcement_id", "class_id"],
        }
    }

    /// Whether the table has an `id` identity column (its sequence is moved past the loaded
    /// ids by [`BulkStore::bulk_finish`]).
    pub fn has_id(self) -> bool {
        self.columns().first() == Some(&"id")
    }
}

/// One value of a bulk row.
#[derive(Clone, Debug, PartialEq)]
pub enum BulkValue {
    Null,
    Int(i64),
    Bool(bool),
    Text(String),
    Date(NaiveDate),
    Bytes(Vec<u8>),
}

impl From<i64> for BulkValue {
    fn from(v: i64) -> Self {
        BulkValue::Int(v)
    }
}
impl From<bool> for BulkValue {
    fn from(v: bool) -> Self {
        BulkValue::Bool(v)
    }
}
impl From<String> for BulkValue {
    fn from(v: String) -> Self {
        BulkValue::Text(v)
    }
}
impl From<&str> for BulkValue {
    fn from(v: &str) -> Self {
        BulkValue::Text(v.to_string())
    }
}
impl From<NaiveDate> for BulkValue {
    fn from(v: NaiveDate) -> Self {
        BulkValue::Date(v)
    }
}
impl From<Vec<u8>> for BulkValue {
    fn from(v: Vec<u8>) -> Self {
        BulkValue::Bytes(v)
    }
}
impl<T: Into<BulkValue>> From<Option<T>> for BulkValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(BulkValue::Null, Into::into)
    }
}

/// A row: one value per column of its [`BulkTable`], in that order.
pub type BulkRow = Vec<BulkValue>;

/// Rows for many tables, collected per school and written together.
#[derive(Clone, Debug, Default)]
pub struct BulkRows {
    pub tables: Vec<(BulkTable, Vec<BulkRow>)>,
}

impl BulkRows {
    pub fn push(&mut self, table: BulkTable, row: BulkRow) {
        debug_assert_eq!(row.len(), table.columns().len(), "row shape of {}", table.name());
        match self.tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, rows)) => rows.push(row),
            None => self.tables.push((table, vec![row])),
        }
    }

    /// Rows in the parents-before-children order of [`BulkTable::ALL`].
    pub fn ordered(&self) -> impl Iterator<Item = (BulkTable, &[BulkRow])> {
        BulkTable::ALL.into_iter().filter_map(|t| {
            self.tables.iter().find(|(x, _)| *x == t).map(|(t, rows)| (*t, rows.as_slice()))
        })
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(|(_, r)| r.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Bulk loading into an empty database (see the module docs).
#[async_trait]
pub trait BulkStore: Send + Sync {
    /// No school, person or audit record yet: the only state bulk loading accepts.
    async fn bulk_is_empty(&self) -> StoreResult<bool>;

    /// Before the first [`BulkStore::bulk_insert`] into an empty database: sets aside the
    /// secondary indexes of the loaded tables (on PostgreSQL also their foreign keys) and
    /// their triggers (the diary's change stamps), keeping the statements that re-create them
    /// in the database, so that rows go in without index maintenance, per-row reference checks
    /// and per-row triggers. Returns how many were set aside. Primary keys
    /// and unique constraints stay. Until [`BulkStore::bulk_finish`] the database is not fit
    /// for anything else.
    async fn bulk_begin(&self) -> StoreResult<u64>;

    /// Indexes, foreign keys and triggers set aside by [`BulkStore::bulk_begin`] and not yet
    /// re-created
    /// (more than 0 after a generation stopped halfway).
    async fn bulk_pending(&self) -> StoreResult<u64>;

    /// Writes `rows` (all tables, in dependency order) in one transaction; returns the number
    /// of rows written. The ids in the rows are final.
    async fn bulk_insert(&self, rows: &BulkRows) -> StoreResult<u64>;

    /// After the last [`BulkStore::bulk_insert`]: re-creates what [`BulkStore::bulk_begin`]
    /// set aside (indexes first, then foreign keys, each checked over the whole table; a
    /// violation is an error and leaves the rest pending), moves id sequences past the loaded
    /// ids (so the application's own inserts do not collide) and refreshes the planner's
    /// statistics.
    async fn bulk_finish(&self) -> StoreResult<()>;
}
