-- Area bench: indexes the region-scale benchmark asked for (docs/performance.md). Both
-- predicates run on every authenticated request (loading the actor's relations) and were
-- full scans: of all classes of the region, of all substitutions.
CREATE INDEX classes_class_teacher_idx ON classes (class_teacher_id);
CREATE INDEX substitutions_substitute_idx ON substitutions (substitute_id, on_date);
