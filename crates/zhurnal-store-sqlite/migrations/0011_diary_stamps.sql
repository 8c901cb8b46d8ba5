-- Change stamps of what a diary week shows (docs/performance.md, tenth round).
--
-- The server keeps recently built diary weeks in memory and serves one again only while the
-- stamps it was built under are unchanged. The stamps are bumped here, by triggers, so every
-- writer bumps them: the server, the CLI, imports, purges and other server instances alike.
-- A row per class (`scope_id` = the class's id) for what one class's weeks show, and row 0 for
-- what any class's may show (names of people, subjects, classes; work types). A missing row
-- reads as 0. Rows are never deleted: a stamp that restarted could match a week built before.

-- SQLite has one writer: each change bumps its scopes at once.
CREATE TABLE diary_stamps (
    scope_id INTEGER PRIMARY KEY,
    stamp INTEGER NOT NULL
);

CREATE TRIGGER diary_assignments_insert AFTER INSERT ON assignments BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT NEW.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_assignments_update AFTER UPDATE ON assignments BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT OLD.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT NEW.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_assignments_delete AFTER DELETE ON assignments BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT OLD.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_timetable_slots_insert AFTER INSERT ON timetable_slots BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = NEW.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_timetable_slots_update AFTER UPDATE ON timetable_slots BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = OLD.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = NEW.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_timetable_slots_delete AFTER DELETE ON timetable_slots BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = OLD.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_substitutions_insert AFTER INSERT ON substitutions BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id WHERE s.id = NEW.slot_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_substitutions_update AFTER UPDATE ON substitutions BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id WHERE s.id = OLD.slot_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id WHERE s.id = NEW.slot_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_substitutions_delete AFTER DELETE ON substitutions BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM timetable_slots s JOIN assignments a ON a.id = s.assignment_id WHERE s.id = OLD.slot_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_lessons_insert AFTER INSERT ON lessons BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = NEW.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_lessons_update AFTER UPDATE ON lessons BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = OLD.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = NEW.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_lessons_delete AFTER DELETE ON lessons BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM assignments WHERE id = OLD.assignment_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_attachments_insert AFTER INSERT ON attachments BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = NEW.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_attachments_update AFTER UPDATE ON attachments BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = OLD.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = NEW.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_attachments_delete AFTER DELETE ON attachments BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = OLD.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_marks_insert AFTER INSERT ON marks BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = NEW.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_marks_update AFTER UPDATE ON marks BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = OLD.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = NEW.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_marks_delete AFTER DELETE ON marks BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = OLD.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_attendance_insert AFTER INSERT ON attendance BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = NEW.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_attendance_update AFTER UPDATE ON attendance BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = OLD.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = NEW.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_attendance_delete AFTER DELETE ON attendance BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT a.class_id AS scope FROM lessons l JOIN assignments a ON a.id = l.assignment_id WHERE l.id = OLD.lesson_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_class_groups_insert AFTER INSERT ON class_groups BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT NEW.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_class_groups_update AFTER UPDATE ON class_groups BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT OLD.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT NEW.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_class_groups_delete AFTER DELETE ON class_groups BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT OLD.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_group_members_insert AFTER INSERT ON group_members BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM class_groups WHERE id = NEW.group_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_group_members_update AFTER UPDATE ON group_members BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM class_groups WHERE id = OLD.group_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM class_groups WHERE id = NEW.group_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_group_members_delete AFTER DELETE ON group_members BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM class_groups WHERE id = OLD.group_id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_announcement_classes_insert AFTER INSERT ON announcement_classes BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT NEW.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_announcement_classes_update AFTER UPDATE ON announcement_classes BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT OLD.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT NEW.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_announcement_classes_delete AFTER DELETE ON announcement_classes BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT OLD.class_id AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_announcements_insert AFTER INSERT ON announcements BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM announcement_classes WHERE announcement_id = NEW.id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_announcements_update AFTER UPDATE ON announcements BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM announcement_classes WHERE announcement_id = OLD.id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM announcement_classes WHERE announcement_id = NEW.id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_announcements_delete AFTER DELETE ON announcements BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT class_id AS scope FROM announcement_classes WHERE announcement_id = OLD.id) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_subjects_insert AFTER INSERT ON subjects BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_subjects_update AFTER UPDATE ON subjects BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_subjects_delete AFTER DELETE ON subjects BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_work_types_insert AFTER INSERT ON work_types BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_work_types_update AFTER UPDATE ON work_types BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_work_types_delete AFTER DELETE ON work_types BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_classes_update AFTER UPDATE OF grade, letter ON classes
WHEN OLD.grade IS NOT NEW.grade OR OLD.letter IS NOT NEW.letter BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;

CREATE TRIGGER diary_persons_update AFTER UPDATE OF last_name, first_name, middle_name ON persons
WHEN OLD.last_name IS NOT NEW.last_name OR OLD.first_name IS NOT NEW.first_name OR OLD.middle_name IS NOT NEW.middle_name BEGIN
    INSERT INTO diary_stamps (scope_id, stamp) SELECT scope, 1 FROM (SELECT 0 AS scope) WHERE scope IS NOT NULL
    ON CONFLICT (scope_id) DO UPDATE SET stamp = stamp + 1;
END;
