-- Integrations area (Сферум, «Школьное портфолио»): the transactional outbox, what the external
-- systems acknowledged, and the school's published communication services. Paired with the
-- PostgreSQL migration of the same name (same tables, columns and index names).

-- Исходящие события: written in the same transaction as the change they report; a worker
-- delivers them. `subject` names what the event is about ('class:12', 'student:5',
-- 'period:3'); the delivery reads the current state of it, so a late retry sends fresh data.
CREATE TABLE outbox_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    subject TEXT NOT NULL,
    school_id INTEGER REFERENCES schools(id),
    payload TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'skipped', 'dead')),
    attempts INTEGER NOT NULL DEFAULT 0,
    -- Wall-clock microseconds; a claimed event is pushed forward by the lease, so one whose
    -- worker died becomes due again by itself.
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    done_at INTEGER
);
CREATE INDEX outbox_events_due_idx ON outbox_events (status, next_attempt_at);
CREATE INDEX outbox_events_subject_idx ON outbox_events (subject);

-- The class chat as Сферум last confirmed it.
CREATE TABLE sferum_chats (
    class_id INTEGER PRIMARY KEY REFERENCES classes(id),
    school_id INTEGER NOT NULL REFERENCES schools(id),
    chat_id TEXT NOT NULL,
    members_required INTEGER NOT NULL,
    members_joined INTEGER NOT NULL,
    synced_at INTEGER NOT NULL
);

-- A period, annual or final mark as the portfolio last acknowledged it (status 'delivered'),
-- or why it could not be sent ('no_identifier': neither ESIA oid nor СНИЛС).
CREATE TABLE portfolio_records (
    record_key TEXT PRIMARY KEY,
    student_id INTEGER NOT NULL REFERENCES persons(id),
    school_id INTEGER NOT NULL REFERENCES schools(id),
    value TEXT,
    status TEXT NOT NULL CHECK (status IN ('delivered', 'no_identifier')),
    event_id INTEGER NOT NULL,
    delivered_at INTEGER NOT NULL
);
CREATE INDEX portfolio_records_student_idx ON portfolio_records (student_id);
CREATE INDEX portfolio_records_school_idx ON portfolio_records (school_id);

-- Сервисы коммуникации и ответственные лица (published on the school's public page).
CREATE TABLE school_communication (
    school_id INTEGER PRIMARY KEY REFERENCES schools(id),
    services TEXT NOT NULL,
    responsible TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
