-- Security area: why an account is blocked, notices to users, the incident register and the
-- cursor of the detection rules over the audit log.

ALTER TABLE persons ADD COLUMN state_reason TEXT;
ALTER TABLE persons ADD COLUMN state_changed_at INTEGER;

-- Notices in a user's feed (предупреждение о блокировке, разблокировка при входе).
CREATE TABLE security_notices (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES persons(id),
    kind TEXT NOT NULL,
    -- Makes a notice idempotent: the same warning for the same period of inactivity is written once.
    dedup_key TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    CONSTRAINT security_notices_dedup_key UNIQUE (person_id, kind, dedup_key)
);
CREATE INDEX security_notices_person_idx ON security_notices (person_id, created_at);

-- Реестр инцидентов (ИНЦ).
CREATE TABLE security_incidents (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL CHECK (severity IN ('low', 'medium', 'high', 'critical')),
    detected_at INTEGER NOT NULL,
    subject_key TEXT NOT NULL,
    subject_person_id INTEGER REFERENCES persons(id),
    subject_ip TEXT,
    summary TEXT NOT NULL,
    evidence TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'investigating', 'resolved')),
    updated_at INTEGER NOT NULL
);
CREATE INDEX security_incidents_rule_idx ON security_incidents (rule, subject_key, detected_at);
CREATE INDEX security_incidents_time_idx ON security_incidents (detected_at);

-- Measures taken on an incident, each with its author and time.
CREATE TABLE security_incident_measures (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES security_incidents(id),
    at INTEGER NOT NULL,
    author_id INTEGER REFERENCES persons(id),
    status TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX security_incident_measures_idx ON security_incident_measures (incident_id, at);

-- Where each background job stopped in the audit log.
CREATE TABLE security_cursors (
    name TEXT PRIMARY KEY,
    last_seq INTEGER NOT NULL
);

CREATE INDEX audit_log_ip_idx ON audit_log (source_ip, at);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- Persons registered before this migration carried no registration time: count their
-- inactivity from now, so that nobody is blocked as dormant by the upgrade itself.
UPDATE persons SET created_at = CAST(strftime('%s', 'now') AS INTEGER) * 1000000 WHERE created_at = 0;
