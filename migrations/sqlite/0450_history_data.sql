-- A patient's social history, as OpenEMR keeps it: one row per revision (the newest is
-- current). Hearth holds the part the FHIR server answers: tobacco use, which becomes the
-- US Core smoking-status Observation. `tobacco` has OpenEMR's layout
-- `note|status|date`, where status is an option of the `smoking_status` list (below,
-- with OpenEMR's SNOMED CT codes). Same table as postgres/0450_history_data.sql.
CREATE TABLE history_data (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT,
    pid INTEGER NOT NULL,
    tobacco TEXT NOT NULL DEFAULT '',
    "user" TEXT NOT NULL DEFAULT '',
    last_updated TEXT
);
CREATE INDEX history_data_pid ON history_data (pid);

INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('lists', 'smoking_status', 'Smoking Status', 1);
INSERT INTO list_options (list_id, option_id, title, codes, seq) VALUES
    ('smoking_status', '1', 'Current every day smoker', 'SNOMED-CT:449868002', 10),
    ('smoking_status', '2', 'Current some day smoker', 'SNOMED-CT:428041000124106', 20),
    ('smoking_status', '3', 'Former smoker', 'SNOMED-CT:8517006', 30),
    ('smoking_status', '4', 'Never smoker', 'SNOMED-CT:266919005', 40),
    ('smoking_status', '5', 'Smoker, current status unknown', 'SNOMED-CT:77176002', 50),
    ('smoking_status', '9', 'Unknown if ever smoked', 'SNOMED-CT:266927001', 60),
    ('smoking_status', '15', 'Heavy tobacco smoker', 'SNOMED-CT:428071000124103', 70),
    ('smoking_status', '16', 'Light tobacco smoker', 'SNOMED-CT:428061000124105', 80);
