-- FHIR Group (`/fhir/Group`, plugin fhir-group): named lists of patients that a Group
-- level Bulk Data export (`/fhir/Group/{id}/$export`) covers. OpenEMR has no table for
-- them; Hearth keeps its own. A group is `person`-typed and `actual`; its members are
-- patients, in the order the Group lists them. Same tables as
-- postgres/0471_fhir_groups.sql.
CREATE TABLE fhir_groups (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1,
    date_created TEXT NOT NULL,
    last_updated TEXT NOT NULL
);
CREATE TABLE fhir_group_members (
    group_id INTEGER NOT NULL REFERENCES fhir_groups (id),
    position INTEGER NOT NULL,
    patient_uuid TEXT NOT NULL,
    PRIMARY KEY (group_id, position)
);
CREATE INDEX fhir_group_members_patient ON fhir_group_members (patient_uuid);
