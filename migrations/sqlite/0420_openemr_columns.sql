-- Columns OpenEMR 8.2 has and answers that the first schema lacked: the patient's
-- preferred name, pronoun, reported sex, interpreter need, nationality, tribal
-- affiliations and advance-directive authenticator (and `interpreter`, which the first
-- schema spelled `interpretter` as older OpenEMR releases did); the facility's Weno id,
-- organization type and creation date; and every `users` column of OpenEMR's that the
-- practitioner routes answer. Same columns as postgres/0420_openemr_columns.sql.

ALTER TABLE patient_data RENAME COLUMN interpretter TO interpreter;
ALTER TABLE patient_data ADD COLUMN interpreter_needed TEXT;
ALTER TABLE patient_data ADD COLUMN preferred_name TEXT;
ALTER TABLE patient_data ADD COLUMN nationality_country TEXT;
ALTER TABLE patient_data ADD COLUMN tribal_affiliations TEXT;
ALTER TABLE patient_data ADD COLUMN sex_identified TEXT;
ALTER TABLE patient_data ADD COLUMN pronoun TEXT;
ALTER TABLE patient_data ADD COLUMN advance_directive_user_authenticator INTEGER;

ALTER TABLE facility ADD COLUMN weno_id TEXT;
ALTER TABLE facility ADD COLUMN date_created TEXT;
ALTER TABLE facility ADD COLUMN organization_type TEXT NOT NULL DEFAULT 'prov';
UPDATE facility SET date_created = last_updated WHERE date_created IS NULL;

ALTER TABLE users ADD COLUMN source INTEGER;
ALTER TABLE users ADD COLUMN see_auth INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN google_signin_email TEXT;
ALTER TABLE users ADD COLUMN country_code TEXT;
ALTER TABLE users ADD COLUMN street2 TEXT;
ALTER TABLE users ADD COLUMN streetb2 TEXT;
ALTER TABLE users ADD COLUMN city2 TEXT;
ALTER TABLE users ADD COLUMN state2 TEXT;
ALTER TABLE users ADD COLUMN zip2 TEXT;
ALTER TABLE users ADD COLUMN country_code2 TEXT;
ALTER TABLE users ADD COLUMN phonew2 TEXT;
ALTER TABLE users ADD COLUMN cal_ui INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN taxonomy TEXT NOT NULL DEFAULT '207Q00000X';
ALTER TABLE users ADD COLUMN calendar INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN default_warehouse TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN irnpool TEXT NOT NULL DEFAULT '';
ALTER TABLE users ADD COLUMN weno_prov_id TEXT;
ALTER TABLE users ADD COLUMN newcrop_user_role TEXT;
ALTER TABLE users ADD COLUMN cpoe INTEGER;
ALTER TABLE users ADD COLUMN physician_type TEXT;
ALTER TABLE users ADD COLUMN main_menu_role TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE users ADD COLUMN patient_menu_role TEXT NOT NULL DEFAULT 'standard';
ALTER TABLE users ADD COLUMN portal_user INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN supervisor_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN billing_facility TEXT;
ALTER TABLE users ADD COLUMN billing_facility_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN date_created TEXT;
UPDATE users SET date_created = last_updated WHERE date_created IS NULL;

-- Physician types (`users.physician_type`), whose title and code practitioners answer as
-- `physician_title` and `physician_code`: the common ones OpenEMR ships, with their
-- SNOMED CT codes. Sites add their own.
INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('lists', 'physician_type', 'Physician Type', 1);
INSERT INTO list_options (list_id, option_id, title, codes, seq) VALUES
    ('physician_type', 'attending_physician', 'Attending physician', 'SNOMED-CT:405279007', 10),
    ('physician_type', 'consultant_physician', 'Consultant physician', 'SNOMED-CT:158967008', 50),
    ('physician_type', 'general_physician', 'General physician', 'SNOMED-CT:59058001', 60),
    ('physician_type', 'physician', 'Physician', 'SNOMED-CT:309343006', 100),
    ('physician_type', 'resident_physician', 'Resident physician', 'SNOMED-CT:405277009', 130),
    ('physician_type', 'specialized_physician', 'Specialized physician', 'SNOMED-CT:69280009', 140);
