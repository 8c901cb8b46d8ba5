-- Change stamps of what a diary week shows (docs/performance.md, tenth round).
--
-- The server keeps recently built diary weeks in memory and serves one again only while the
-- stamps it was built under are unchanged. The stamps are bumped here, by triggers, so every
-- writer bumps them: the server, the CLI, imports, purges and other server instances alike.
-- A row per class (`scope_id` = the class's id) for what one class's weeks show, and row 0 for
-- what any class's may show (names of people, subjects, classes; work types). A missing row
-- reads as 0. Rows are never deleted: a stamp that restarted could match a week built before.

-- PostgreSQL runs writers side by side. A change only notes its scopes (`diary_touched`, by
-- transaction); when the transaction commits, a deferred trigger bumps them once each, in the
-- order of their ids. Bumping at commit keeps a long import from holding a class's stamp (and
-- every mark writer behind it) until it ends; bumping in id order keeps two committing
-- transactions from waiting on each other's stamps. An update that changes nothing (an upsert
-- that only returns its row, as a new mark's lesson does) notes nothing.
CREATE TABLE diary_stamps (
    scope_id BIGINT PRIMARY KEY,
    stamp BIGINT NOT NULL
);

CREATE TABLE diary_touched (
    tx BIGINT NOT NULL,
    scope_id BIGINT NOT NULL,
    PRIMARY KEY (tx, scope_id)
);

CREATE FUNCTION diary_flush() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The first of the transaction's notes bumps them all; the others find none left.
    WITH mine AS (DELETE FROM diary_touched WHERE tx = txid_current() RETURNING scope_id)
    INSERT INTO diary_stamps (scope_id, stamp)
    SELECT DISTINCT scope_id, 1 FROM mine ORDER BY scope_id
    ON CONFLICT (scope_id) DO UPDATE SET stamp = diary_stamps.stamp + 1;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER diary_flush AFTER INSERT ON diary_touched
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION diary_flush();

CREATE FUNCTION diary_region_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO diary_touched (tx, scope_id) VALUES (txid_current(), 0) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- A row of assignments, class_groups, announcement_classes: its class by `class_id`.
CREATE FUNCTION diary_class_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.class_id IS DISTINCT FROM NEW.class_id) THEN
        INSERT INTO diary_touched (tx, scope_id) VALUES (txid_current(), OLD.class_id) ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO diary_touched (tx, scope_id) VALUES (txid_current(), NEW.class_id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON assignments
    FOR EACH ROW EXECUTE FUNCTION diary_class_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON assignments
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_class_row_changed();

-- A row of timetable_slots, lessons: its class by `assignment_id`.
CREATE FUNCTION diary_assignment_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.assignment_id IS DISTINCT FROM NEW.assignment_id) THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), class_id FROM assignments WHERE id = OLD.assignment_id
            ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), class_id FROM assignments WHERE id = NEW.assignment_id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON timetable_slots
    FOR EACH ROW EXECUTE FUNCTION diary_assignment_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON timetable_slots
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_assignment_row_changed();

-- A row of substitutions: its class by `slot_id`.
CREATE FUNCTION diary_slot_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.slot_id IS DISTINCT FROM NEW.slot_id) THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), a.class_id
            FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id WHERE s.id = OLD.slot_id
            ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), a.class_id
            FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id WHERE s.id = NEW.slot_id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON substitutions
    FOR EACH ROW EXECUTE FUNCTION diary_slot_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON substitutions
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_slot_row_changed();

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON lessons
    FOR EACH ROW EXECUTE FUNCTION diary_assignment_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON lessons
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_assignment_row_changed();

-- A row of attachments, marks, attendance: its class by `lesson_id`.
CREATE FUNCTION diary_lesson_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.lesson_id IS DISTINCT FROM NEW.lesson_id) THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), a.class_id
            FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = OLD.lesson_id
            ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), a.class_id
            FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = NEW.lesson_id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON attachments
    FOR EACH ROW EXECUTE FUNCTION diary_lesson_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON attachments
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_lesson_row_changed();

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON marks
    FOR EACH ROW EXECUTE FUNCTION diary_lesson_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON marks
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_lesson_row_changed();

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON attendance
    FOR EACH ROW EXECUTE FUNCTION diary_lesson_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON attendance
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_lesson_row_changed();

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON class_groups
    FOR EACH ROW EXECUTE FUNCTION diary_class_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON class_groups
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_class_row_changed();

-- A row of group_members: its class by `group_id`.
CREATE FUNCTION diary_group_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.group_id IS DISTINCT FROM NEW.group_id) THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), class_id FROM class_groups WHERE id = OLD.group_id
            ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), class_id FROM class_groups WHERE id = NEW.group_id
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON group_members
    FOR EACH ROW EXECUTE FUNCTION diary_group_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON group_members
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_group_row_changed();

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON announcement_classes
    FOR EACH ROW EXECUTE FUNCTION diary_class_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON announcement_classes
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_class_row_changed();

-- A row of announcements: its class by `id`.
CREATE FUNCTION diary_announcement_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.id IS DISTINCT FROM NEW.id) THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), class_id FROM announcement_classes
            WHERE announcement_id = OLD.id ON CONFLICT DO NOTHING;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        INSERT INTO diary_touched (tx, scope_id) SELECT txid_current(), class_id FROM announcement_classes
            WHERE announcement_id = NEW.id ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON announcements
    FOR EACH ROW EXECUTE FUNCTION diary_announcement_row_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON announcements
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_announcement_row_changed();

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON subjects
    FOR EACH ROW EXECUTE FUNCTION diary_region_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON subjects
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_region_changed();

CREATE TRIGGER diary_changed AFTER INSERT OR DELETE ON work_types
    FOR EACH ROW EXECUTE FUNCTION diary_region_changed();
CREATE TRIGGER diary_updated AFTER UPDATE ON work_types
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION diary_region_changed();

CREATE TRIGGER diary_changed AFTER UPDATE OF grade, letter ON classes
    FOR EACH ROW WHEN (OLD.grade IS DISTINCT FROM NEW.grade OR OLD.letter IS DISTINCT FROM NEW.letter)
    EXECUTE FUNCTION diary_region_changed();

CREATE TRIGGER diary_changed AFTER UPDATE OF last_name, first_name, middle_name ON persons
    FOR EACH ROW WHEN (OLD.last_name IS DISTINCT FROM NEW.last_name OR OLD.first_name IS DISTINCT FROM NEW.first_name OR OLD.middle_name IS DISTINCT FROM NEW.middle_name)
    EXECUTE FUNCTION diary_region_changed();
