-- FHIR versions (meta.versionId, ETag, If-Match, vread, _history) for two more tables,
-- as 0461_fhir_versions.sql does for the first five: form_vitals (the Observations of
-- vital signs, one version per measurement set: every Observation of a row shares the
-- row's version) and issue_encounter (the encounter diagnoses Condition serves: a
-- problem's link to an encounter). Same history tables and triggers as
-- postgres/0462_fhir_versions_vitals.sql; rows present now start at version 1.

CREATE TABLE form_vitals_history (
    fhir_version INTEGER NOT NULL,
    id INTEGER,
    uuid TEXT,
    "date" TEXT,
    pid INTEGER,
    "user" TEXT,
    groupname TEXT,
    authorized INTEGER,
    activity INTEGER,
    bps TEXT,
    bpd TEXT,
    weight REAL,
    height REAL,
    temperature REAL,
    temp_method TEXT,
    pulse REAL,
    respiration REAL,
    note TEXT,
    "BMI" REAL,
    "BMI_status" TEXT,
    waist_circ REAL,
    head_circ REAL,
    oxygen_saturation REAL,
    oxygen_flow_rate REAL,
    inhaled_oxygen_concentration REAL,
    ped_weight_height REAL,
    ped_bmi REAL,
    ped_head_circ REAL,
    external_id TEXT,
    last_updated TEXT,
    PRIMARY KEY (id, fhir_version)
);

INSERT INTO form_vitals_history (fhir_version, id, uuid, "date", pid, "user", groupname, authorized, activity, bps, bpd, weight, height, temperature, temp_method, pulse, respiration, note, "BMI", "BMI_status", waist_circ, head_circ, oxygen_saturation, oxygen_flow_rate, inhaled_oxygen_concentration, ped_weight_height, ped_bmi, ped_head_circ, external_id, last_updated)
    SELECT 1, id, uuid, "date", pid, "user", groupname, authorized, activity, bps, bpd, weight, height, temperature, temp_method, pulse, respiration, note, "BMI", "BMI_status", waist_circ, head_circ, oxygen_saturation, oxygen_flow_rate, inhaled_oxygen_concentration, ped_weight_height, ped_bmi, ped_head_circ, external_id, last_updated FROM form_vitals;

CREATE TRIGGER hearth_version_form_vitals_insert AFTER INSERT ON form_vitals BEGIN
    INSERT INTO form_vitals_history (fhir_version, id, uuid, "date", pid, "user", groupname, authorized, activity, bps, bpd, weight, height, temperature, temp_method, pulse, respiration, note, "BMI", "BMI_status", waist_circ, head_circ, oxygen_saturation, oxygen_flow_rate, inhaled_oxygen_concentration, ped_weight_height, ped_bmi, ped_head_circ, external_id, last_updated)
    VALUES (1, NEW.id, NEW.uuid, NEW."date", NEW.pid, NEW."user", NEW.groupname, NEW.authorized, NEW.activity, NEW.bps, NEW.bpd, NEW.weight, NEW.height, NEW.temperature, NEW.temp_method, NEW.pulse, NEW.respiration, NEW.note, NEW."BMI", NEW."BMI_status", NEW.waist_circ, NEW.head_circ, NEW.oxygen_saturation, NEW.oxygen_flow_rate, NEW.inhaled_oxygen_concentration, NEW.ped_weight_height, NEW.ped_bmi, NEW.ped_head_circ, NEW.external_id, NEW.last_updated);
END;

CREATE TRIGGER hearth_version_form_vitals_update AFTER UPDATE ON form_vitals BEGIN
    INSERT INTO form_vitals_history (fhir_version, id, uuid, "date", pid, "user", groupname, authorized, activity, bps, bpd, weight, height, temperature, temp_method, pulse, respiration, note, "BMI", "BMI_status", waist_circ, head_circ, oxygen_saturation, oxygen_flow_rate, inhaled_oxygen_concentration, ped_weight_height, ped_bmi, ped_head_circ, external_id, last_updated)
    VALUES ((SELECT COALESCE(MAX(h.fhir_version), 0) + 1 FROM form_vitals_history h WHERE h.id = NEW.id), NEW.id, NEW.uuid, NEW."date", NEW.pid, NEW."user", NEW.groupname, NEW.authorized, NEW.activity, NEW.bps, NEW.bpd, NEW.weight, NEW.height, NEW.temperature, NEW.temp_method, NEW.pulse, NEW.respiration, NEW.note, NEW."BMI", NEW."BMI_status", NEW.waist_circ, NEW.head_circ, NEW.oxygen_saturation, NEW.oxygen_flow_rate, NEW.inhaled_oxygen_concentration, NEW.ped_weight_height, NEW.ped_bmi, NEW.ped_head_circ, NEW.external_id, NEW.last_updated);
END;

CREATE TABLE issue_encounter_history (
    fhir_version INTEGER NOT NULL,
    id INTEGER,
    pid INTEGER,
    list_id INTEGER,
    encounter INTEGER,
    resolved INTEGER,
    PRIMARY KEY (id, fhir_version)
);

INSERT INTO issue_encounter_history (fhir_version, id, pid, list_id, encounter, resolved)
    SELECT 1, id, pid, list_id, encounter, resolved FROM issue_encounter;

CREATE TRIGGER hearth_version_issue_encounter_insert AFTER INSERT ON issue_encounter BEGIN
    INSERT INTO issue_encounter_history (fhir_version, id, pid, list_id, encounter, resolved)
    VALUES (1, NEW.id, NEW.pid, NEW.list_id, NEW.encounter, NEW.resolved);
END;

CREATE TRIGGER hearth_version_issue_encounter_update AFTER UPDATE ON issue_encounter BEGIN
    INSERT INTO issue_encounter_history (fhir_version, id, pid, list_id, encounter, resolved)
    VALUES ((SELECT COALESCE(MAX(h.fhir_version), 0) + 1 FROM issue_encounter_history h WHERE h.id = NEW.id), NEW.id, NEW.pid, NEW.list_id, NEW.encounter, NEW.resolved);
END;
