-- Import area (SQLite). Paired with zhurnal-store-postgres/migrations/0007_import.sql: same
-- tables, columns and constraint names.

-- When the retention job removed a departed student's journal but kept the archive's summary.
ALTER TABLE persons ADD COLUMN journal_purged_at INTEGER;

-- Реестр загрузок: every importer run, for the region's migration page (imported, verified,
-- source destroyed). `schools` is a JSON array of school external ids. No foreign key to
-- persons: the register outlives a purge of the person who ran it.
CREATE TABLE import_runs (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    format TEXT NOT NULL,
    source_name TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    schools TEXT NOT NULL,
    inserted INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    unchanged INTEGER NOT NULL,
    actor_id INTEGER,
    source_purged_at INTEGER,
    act_number TEXT
);
CREATE INDEX import_runs_sha_idx ON import_runs (source_sha256);

-- Акты об уничтожении персональных данных. `details` is JSON (counts, methods, file hashes;
-- never names).
CREATE TABLE destruction_acts (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL CONSTRAINT destruction_acts_number_key UNIQUE,
    at INTEGER NOT NULL,
    reason TEXT NOT NULL,
    actor_id INTEGER,
    actor_label TEXT NOT NULL,
    details TEXT NOT NULL
);
