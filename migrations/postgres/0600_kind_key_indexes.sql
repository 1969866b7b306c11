-- The Bulk Data export and every unfiltered FHIR page read a branch's rows in key order
-- after the last key (`l.type = 'medication' AND l.id > ? ORDER BY l.id LIMIT n`). With
-- only an index on the kind and another column, the planner took that index for the
-- equality and sorted every row of the kind on each page, so an export of one kind grew
-- with the square of its rows (MedicationRequest and Provenance at 100,000 patients ran
-- at hundreds of resources per second). These indexes hold each kind's rows in key order:
-- a page is one index range. Same indexes as sqlite/0600_kind_key_indexes.sql.
CREATE INDEX lists_type_id ON lists (type, id);
CREATE INDEX forms_formdir_id ON forms (formdir, id);
CREATE INDEX form_care_plan_type_key ON form_care_plan (care_plan_type, row_key);
CREATE INDEX contact_relation_target_key ON contact_relation (target_table, id);

-- `likely(condition)`: SQLite's planner hint that a condition holds for most rows (so its
-- index is not the one to drive the statement: an encounter diagnosis page reads
-- `issue_encounter` by key, not every problem of `lists` by kind). Plugin SQL is written
-- once for both databases; here it is the identity, inlined by the planner, which reads
-- its statistics instead.
CREATE FUNCTION public.likely(condition boolean) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT condition';
