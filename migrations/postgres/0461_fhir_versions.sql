-- FHIR versions and history: see sqlite/0461_fhir_versions.sql for what and why.
-- Here the history tables copy their table's columns (LIKE: types and NOT NULL, no
-- keys or defaults), and one trigger function serves every table: it numbers the new
-- version after the newest one recorded (the row lock the write holds serialises
-- concurrent writers of a row; the primary key refuses a duplicate number) and copies
-- the row into the history table by column name. It runs as its owner (SECURITY
-- DEFINER): plugin roles may read the history of the tables they are granted, and only
-- this trigger writes it.

CREATE FUNCTION public.hearth_record_version() RETURNS trigger LANGUAGE plpgsql
    SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    history text := TG_TABLE_NAME || '_history';
    next_version bigint;
BEGIN
    EXECUTE format('SELECT COALESCE(MAX(fhir_version), 0) + 1 FROM public.%I WHERE id = $1', history)
        INTO next_version USING NEW.id;
    EXECUTE format('INSERT INTO public.%I SELECT * FROM jsonb_populate_record(NULL::public.%I, $1)', history, history)
        USING to_jsonb(NEW) || jsonb_build_object('fhir_version', next_version);
    RETURN NULL;
END
$$;


CREATE TABLE patient_data_history (LIKE patient_data);
ALTER TABLE patient_data_history ADD COLUMN fhir_version bigint NOT NULL DEFAULT 1;
ALTER TABLE patient_data_history ADD PRIMARY KEY (id, fhir_version);
INSERT INTO patient_data_history SELECT t.*, 1 FROM patient_data t;
CREATE TRIGGER patient_data_version AFTER INSERT OR UPDATE ON patient_data
    FOR EACH ROW EXECUTE FUNCTION public.hearth_record_version();

CREATE TABLE users_history (LIKE users);
ALTER TABLE users_history ADD COLUMN fhir_version bigint NOT NULL DEFAULT 1;
ALTER TABLE users_history ADD PRIMARY KEY (id, fhir_version);
INSERT INTO users_history SELECT t.*, 1 FROM users t;
CREATE TRIGGER users_version AFTER INSERT OR UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION public.hearth_record_version();

CREATE TABLE facility_history (LIKE facility);
ALTER TABLE facility_history ADD COLUMN fhir_version bigint NOT NULL DEFAULT 1;
ALTER TABLE facility_history ADD PRIMARY KEY (id, fhir_version);
INSERT INTO facility_history SELECT t.*, 1 FROM facility t;
CREATE TRIGGER facility_version AFTER INSERT OR UPDATE ON facility
    FOR EACH ROW EXECUTE FUNCTION public.hearth_record_version();

CREATE TABLE form_encounter_history (LIKE form_encounter);
ALTER TABLE form_encounter_history ADD COLUMN fhir_version bigint NOT NULL DEFAULT 1;
ALTER TABLE form_encounter_history ADD PRIMARY KEY (id, fhir_version);
INSERT INTO form_encounter_history SELECT t.*, 1 FROM form_encounter t;
CREATE TRIGGER form_encounter_version AFTER INSERT OR UPDATE ON form_encounter
    FOR EACH ROW EXECUTE FUNCTION public.hearth_record_version();

CREATE TABLE lists_history (LIKE lists);
ALTER TABLE lists_history ADD COLUMN fhir_version bigint NOT NULL DEFAULT 1;
ALTER TABLE lists_history ADD PRIMARY KEY (id, fhir_version);
INSERT INTO lists_history SELECT t.*, 1 FROM lists t;
CREATE TRIGGER lists_version AFTER INSERT OR UPDATE ON lists
    FOR EACH ROW EXECUTE FUNCTION public.hearth_record_version();
