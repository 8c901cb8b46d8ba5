-- Zhurnal schema v1 (SQLite). Paired with zhurnal-store-postgres/migrations/0001_schema.sql:
-- same tables, columns and constraint names. Instants are INTEGER Unix microseconds (UTC),
-- school dates are TEXT 'YYYY-MM-DD'. Never edit an applied migration: add a new one.

CREATE TABLE regions (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT regions_external_id_key UNIQUE,
    name TEXT NOT NULL
);

CREATE TABLE municipalities (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT municipalities_external_id_key UNIQUE,
    region_id INTEGER NOT NULL REFERENCES regions(id),
    name TEXT NOT NULL
);

CREATE TABLE schools (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT schools_external_id_key UNIQUE,
    municipality_id INTEGER NOT NULL REFERENCES municipalities(id),
    name TEXT NOT NULL,
    short_name TEXT NOT NULL
);

CREATE TABLE academic_years (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT academic_years_external_id_key UNIQUE,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    name TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    archived_at INTEGER
);

CREATE TABLE periods (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT periods_external_id_key UNIQUE,
    academic_year_id INTEGER NOT NULL REFERENCES academic_years(id),
    scheme TEXT NOT NULL CHECK (scheme IN ('quarters', 'trimesters', 'half_years')),
    number INTEGER NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    closed_on TEXT,
    CONSTRAINT periods_year_scheme_number_key UNIQUE (academic_year_id, scheme, number)
);

CREATE TABLE persons (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL CONSTRAINT persons_uid_key UNIQUE,
    external_id TEXT NOT NULL CONSTRAINT persons_external_id_key UNIQUE,
    last_name TEXT NOT NULL,
    first_name TEXT NOT NULL,
    middle_name TEXT,
    birth_date TEXT,
    gender TEXT,
    snils_hmac BLOB CONSTRAINT persons_snils_hmac_key UNIQUE,
    snils_cipher BLOB,
    esia_oid TEXT CONSTRAINT persons_esia_oid_key UNIQUE,
    account_state TEXT NOT NULL DEFAULT 'active' CHECK (account_state IN ('active', 'dormant', 'blocked')),
    last_login_at INTEGER,
    phone TEXT,
    email TEXT,
    created_at INTEGER NOT NULL
);

CREATE TABLE classes (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT classes_external_id_key UNIQUE,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    academic_year_id INTEGER NOT NULL REFERENCES academic_years(id),
    grade INTEGER NOT NULL CHECK (grade BETWEEN 1 AND 11),
    letter TEXT NOT NULL,
    class_teacher_id INTEGER REFERENCES persons(id),
    period_scheme TEXT NOT NULL CHECK (period_scheme IN ('quarters', 'trimesters', 'half_years')),
    newly_formed INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT classes_year_grade_letter_key UNIQUE (academic_year_id, grade, letter)
);

CREATE TABLE class_groups (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT class_groups_external_id_key UNIQUE,
    class_id INTEGER NOT NULL REFERENCES classes(id),
    name TEXT NOT NULL
);

CREATE TABLE group_members (
    group_id INTEGER NOT NULL REFERENCES class_groups(id),
    student_id INTEGER NOT NULL REFERENCES persons(id),
    PRIMARY KEY (group_id, student_id)
);

CREATE TABLE enrolments (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT enrolments_external_id_key UNIQUE,
    student_id INTEGER NOT NULL REFERENCES persons(id),
    school_id INTEGER NOT NULL REFERENCES schools(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    admitted_on TEXT NOT NULL,
    departed_on TEXT,
    departure_kind TEXT CHECK (departure_kind IN ('transfer', 'graduation', 'expulsion', 'other')),
    departure_reason TEXT
);
CREATE INDEX enrolments_class_idx ON enrolments (class_id);
CREATE INDEX enrolments_student_idx ON enrolments (student_id);

CREATE TABLE guardianships (
    parent_id INTEGER NOT NULL REFERENCES persons(id),
    child_id INTEGER NOT NULL REFERENCES persons(id),
    confirmed_at INTEGER,
    PRIMARY KEY (parent_id, child_id)
);
CREATE INDEX guardianships_child_idx ON guardianships (child_id);

CREATE TABLE staff_roles (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id),
    role TEXT NOT NULL CHECK (role IN ('teacher', 'school-admin', 'municipal-officer', 'regional-admin', 'security-officer')),
    school_id INTEGER REFERENCES schools(id),
    municipality_id INTEGER REFERENCES municipalities(id),
    region_id INTEGER REFERENCES regions(id),
    granted_at INTEGER NOT NULL,
    granted_by INTEGER REFERENCES persons(id),
    revoked_at INTEGER,
    CONSTRAINT staff_roles_one_scope CHECK (
        (school_id IS NOT NULL) + (municipality_id IS NOT NULL) + (region_id IS NOT NULL) = 1)
);
CREATE INDEX staff_roles_person_idx ON staff_roles (person_id);

CREATE TABLE subjects (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT subjects_external_id_key UNIQUE,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    name TEXT NOT NULL,
    grading TEXT NOT NULL CHECK (grading IN ('five_point', 'pass_fail'))
);

CREATE TABLE work_types (
    id INTEGER PRIMARY KEY,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    weight INTEGER NOT NULL CHECK (weight BETWEEN 1 AND 10),
    CONSTRAINT work_types_school_code_key UNIQUE (school_id, code)
);

CREATE TABLE assignments (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT assignments_external_id_key UNIQUE,
    teacher_id INTEGER NOT NULL REFERENCES persons(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    group_id INTEGER REFERENCES class_groups(id),
    subject_id INTEGER NOT NULL REFERENCES subjects(id)
);
CREATE INDEX assignments_teacher_idx ON assignments (teacher_id);
CREATE INDEX assignments_class_idx ON assignments (class_id);

CREATE TABLE timetable_slots (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL CONSTRAINT timetable_slots_external_id_key UNIQUE,
    assignment_id INTEGER NOT NULL REFERENCES assignments(id),
    weekday INTEGER NOT NULL CHECK (weekday BETWEEN 1 AND 7),
    lesson_number INTEGER NOT NULL,
    room TEXT
);
CREATE INDEX timetable_slots_assignment_idx ON timetable_slots (assignment_id);

CREATE TABLE substitutions (
    id INTEGER PRIMARY KEY,
    slot_id INTEGER NOT NULL REFERENCES timetable_slots(id),
    on_date TEXT NOT NULL,
    substitute_id INTEGER NOT NULL REFERENCES persons(id),
    reason TEXT,
    CONSTRAINT substitutions_slot_date_key UNIQUE (slot_id, on_date)
);

CREATE TABLE lessons (
    id INTEGER PRIMARY KEY,
    external_id TEXT CONSTRAINT lessons_external_id_key UNIQUE,
    assignment_id INTEGER NOT NULL REFERENCES assignments(id),
    on_date TEXT NOT NULL,
    lesson_number INTEGER NOT NULL,
    topic TEXT,
    homework TEXT,
    CONSTRAINT lessons_assignment_date_number_key UNIQUE (assignment_id, on_date, lesson_number)
);

CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL CONSTRAINT attachments_uid_key UNIQUE,
    lesson_id INTEGER NOT NULL REFERENCES lessons(id),
    file_name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content BLOB NOT NULL,
    uploaded_by INTEGER NOT NULL REFERENCES persons(id),
    uploaded_at INTEGER NOT NULL
);
CREATE INDEX attachments_lesson_idx ON attachments (lesson_id);

CREATE TABLE marks (
    id INTEGER PRIMARY KEY,
    external_id TEXT CONSTRAINT marks_external_id_key UNIQUE,
    lesson_id INTEGER NOT NULL REFERENCES lessons(id),
    student_id INTEGER NOT NULL REFERENCES persons(id),
    value TEXT NOT NULL CHECK (value IN ('1', '2', '3', '4', '5', 'pass', 'fail')),
    work_type_id INTEGER NOT NULL REFERENCES work_types(id),
    weight INTEGER NOT NULL,
    comment TEXT,
    author_id INTEGER NOT NULL REFERENCES persons(id),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX marks_student_idx ON marks (student_id, lesson_id);
CREATE INDEX marks_lesson_idx ON marks (lesson_id);

CREATE TABLE mark_history (
    id INTEGER PRIMARY KEY,
    mark_id INTEGER NOT NULL REFERENCES marks(id),
    changed_at INTEGER NOT NULL,
    changed_by INTEGER NOT NULL REFERENCES persons(id),
    old_value TEXT,
    new_value TEXT,
    old_work_type_id INTEGER,
    new_work_type_id INTEGER,
    reason TEXT
);
CREATE INDEX mark_history_mark_idx ON mark_history (mark_id);

CREATE TABLE attendance (
    lesson_id INTEGER NOT NULL REFERENCES lessons(id),
    student_id INTEGER NOT NULL REFERENCES persons(id),
    kind TEXT NOT NULL CHECK (kind IN ('absent', 'ill', 'valid_reason', 'late')),
    author_id INTEGER NOT NULL REFERENCES persons(id),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (lesson_id, student_id)
);
CREATE INDEX attendance_student_idx ON attendance (student_id);

CREATE TABLE final_marks (
    id INTEGER PRIMARY KEY,
    student_id INTEGER NOT NULL REFERENCES persons(id),
    assignment_id INTEGER NOT NULL REFERENCES assignments(id),
    kind TEXT NOT NULL CHECK (kind IN ('period', 'annual', 'final')),
    period_id INTEGER REFERENCES periods(id),
    value TEXT NOT NULL,
    author_id INTEGER NOT NULL REFERENCES persons(id),
    set_at INTEGER NOT NULL,
    CONSTRAINT final_marks_unique_key UNIQUE (student_id, assignment_id, kind, period_id)
);

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor_id INTEGER,
    actor_role TEXT,
    session_hash TEXT,
    source_ip TEXT,
    action TEXT NOT NULL,
    target_type TEXT,
    target_id TEXT,
    school_id INTEGER,
    result TEXT NOT NULL,
    reason TEXT,
    details TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash BLOB NOT NULL
);
CREATE INDEX audit_log_action_idx ON audit_log (action, at);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at);

-- Append-only: the application never rewrites history (PostgreSQL also revokes the grants).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;

CREATE TABLE login_attempts (
    state_hash TEXT PRIMARY KEY,
    browser_hash TEXT NOT NULL,
    code_verifier TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    next TEXT,
    login_hint TEXT
);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id),
    created_at INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    csrf_token TEXT NOT NULL,
    source_ip TEXT,
    active_role TEXT
);
CREATE INDEX sessions_person_idx ON sessions (person_id);
