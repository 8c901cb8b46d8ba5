-- Notifications sent about an incident (security.md §5.2): Роскомнадзор within 24 h and 72 h
-- (152-ФЗ art. 21 part 3.1), НКЦКИ (ГосСОПКА), parents. One row per kind: each is sent once.

CREATE TABLE security_incident_notices (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL REFERENCES security_incidents(id),
    kind TEXT NOT NULL CHECK (kind IN ('rkn_24h', 'rkn_72h', 'nkcki', 'parents')),
    sent_at INTEGER NOT NULL,
    reference TEXT,
    author_id INTEGER REFERENCES persons(id),
    recorded_at INTEGER NOT NULL,
    CONSTRAINT security_incident_notices_kind UNIQUE (incident_id, kind)
);
