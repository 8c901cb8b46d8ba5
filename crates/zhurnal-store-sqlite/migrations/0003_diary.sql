-- Diary feed visits and announcements (SQLite). Paired with
-- zhurnal-store-postgres/migrations/0003_diary.sql: same tables, columns and constraint names.

-- When a viewer (parent or student) last opened a student's feed of new marks and homework,
-- and which lessons of that day had homework then (lessons carry no entry time: homework added
-- later the same day must still show once). `seen_lessons` is a JSON array of lesson ids.
CREATE TABLE diary_visits (
    viewer_id INTEGER NOT NULL REFERENCES persons(id),
    student_id INTEGER NOT NULL REFERENCES persons(id),
    visited_at INTEGER NOT NULL,
    seen_lessons TEXT NOT NULL,
    PRIMARY KEY (viewer_id, student_id)
);

-- Объявления: the journal's own channel to the students and parents of classes.
CREATE TABLE announcements (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL CONSTRAINT announcements_uid_key UNIQUE,
    school_id INTEGER NOT NULL REFERENCES schools(id),
    sender_id INTEGER NOT NULL REFERENCES persons(id),
    body TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('delivered', 'held', 'recalled')),
    recipient_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    reviewed_by INTEGER REFERENCES persons(id),
    reviewed_at INTEGER
);
CREATE INDEX announcements_sender_idx ON announcements (sender_id, created_at);
CREATE INDEX announcements_school_idx ON announcements (school_id, created_at);

CREATE TABLE announcement_classes (
    announcement_id INTEGER NOT NULL REFERENCES announcements(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    PRIMARY KEY (announcement_id, class_id)
);
CREATE INDEX announcement_classes_class_idx ON announcement_classes (class_id);
