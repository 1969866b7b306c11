-- Indexes for the FHIR search parameters (issue 15: searches over 100k patients use
-- indexes). Each serves a parameter's column, or the join a parameter's reference takes;
-- tests/tests/fhir_plans.rs runs EXPLAIN on the SQL of every parameter and
-- docs/benchmarks.md lists the plans. String parameters use folded_text (0480). Same
-- indexes as postgres/0481_search_indexes.sql.
CREATE INDEX patient_data_sex ON patient_data (sex);
CREATE INDEX patient_data_dob ON patient_data ("DOB");
CREATE INDEX patient_data_pubpid ON patient_data (pubpid);
CREATE INDEX patient_data_ss ON patient_data (ss);
CREATE INDEX patient_data_provider ON patient_data ("providerID");
CREATE INDEX patient_data_phone_home ON patient_data (phone_home);
CREATE INDEX patient_data_phone_biz ON patient_data (phone_biz);
CREATE INDEX patient_data_phone_cell ON patient_data (phone_cell);
CREATE INDEX patient_data_phone_contact ON patient_data (phone_contact);
CREATE INDEX patient_data_email ON patient_data (email);
CREATE INDEX patient_data_last_updated ON patient_data (last_updated);
CREATE INDEX form_encounter_date ON form_encounter (date);
-- The end of a period search (`Target::Period`): an encounter without an end is the
-- instant of its start.
CREATE INDEX form_encounter_period_end ON form_encounter ((COALESCE(date_end, date)));
CREATE INDEX form_encounter_last_update ON form_encounter (last_update);
CREATE INDEX form_encounter_class ON form_encounter (class_code);
CREATE INDEX form_encounter_type ON form_encounter (encounter_type_code);
CREATE INDEX form_encounter_provider ON form_encounter (provider_id);
CREATE INDEX form_encounter_facility ON form_encounter (facility_id);
CREATE INDEX form_vitals_date ON form_vitals (date);
CREATE INDEX history_data_date ON history_data (date);
CREATE INDEX lists_type_begdate ON lists (type, begdate);
CREATE INDEX lists_type_date ON lists (type, date);
CREATE INDEX lists_type_enddate ON lists (type, enddate);
CREATE INDEX lists_type_period_end ON lists (type, (COALESCE(enddate, begdate)));
CREATE INDEX lists_type_verification ON lists (type, verification);
CREATE INDEX issue_encounter_pid_encounter ON issue_encounter (pid, encounter);
