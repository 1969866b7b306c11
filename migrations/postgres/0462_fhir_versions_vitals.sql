-- FHIR versions for form_vitals (Observation vital signs) and issue_encounter
-- (encounter-diagnosis Conditions): see sqlite/0462_fhir_versions_vitals.sql for what
-- and why. The history tables and triggers are those of 0461 (LIKE copies, the SECURITY
-- DEFINER function public.hearth_record_version()).

CREATE TABLE form_vitals_history (LIKE form_vitals);
ALTER TABLE form_vitals_history ADD COLUMN fhir_version bigint NOT NULL DEFAULT 1;
ALTER TABLE form_vitals_history ADD PRIMARY KEY (id, fhir_version);
INSERT INTO form_vitals_history SELECT t.*, 1 FROM form_vitals t;
CREATE TRIGGER form_vitals_version AFTER INSERT OR UPDATE ON form_vitals
    FOR EACH ROW EXECUTE FUNCTION public.hearth_record_version();

CREATE TABLE issue_encounter_history (LIKE issue_encounter);
ALTER TABLE issue_encounter_history ADD COLUMN fhir_version bigint NOT NULL DEFAULT 1;
ALTER TABLE issue_encounter_history ADD PRIMARY KEY (id, fhir_version);
INSERT INTO issue_encounter_history SELECT t.*, 1 FROM issue_encounter t;
CREATE TRIGGER issue_encounter_version AFTER INSERT OR UPDATE ON issue_encounter
    FOR EACH ROW EXECUTE FUNCTION public.hearth_record_version();
