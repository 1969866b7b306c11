-- The chart's care records, as OpenEMR keeps them: care plans and goals (`form_care_plan`,
-- filed in an encounter by a `forms` row of formdir `care_plan`), care teams
-- (`care_teams` and their `care_team_member` rows), questionnaires and their responses
-- (`questionnaire_repository`, `questionnaire_response`), patient messages (`pnotes`) and
-- transactions (`transactions` with the layout form's fields in `lbt_data`).
-- Hearth adds `row_key` and `uuid` to `form_care_plan` (OpenEMR keys a goal through
-- `uuid_mapping`; Hearth stores the goal's uuid on its row). Implantable devices are
-- `lists` rows of type `medical_device` (`udi`), value sets are the lists of
-- `list_options`: both tables exist already.
-- Same tables as postgres/0540_care.sql.
CREATE TABLE form_care_plan (
    row_key INTEGER PRIMARY KEY,
    id INTEGER NOT NULL,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT,
    pid INTEGER NOT NULL,
    encounter INTEGER,
    "user" TEXT NOT NULL DEFAULT '',
    groupname TEXT NOT NULL DEFAULT '',
    authorized INTEGER NOT NULL DEFAULT 0,
    activity INTEGER NOT NULL DEFAULT 1,
    code TEXT NOT NULL DEFAULT '',
    codetext TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    external_id TEXT NOT NULL DEFAULT '',
    care_plan_type TEXT NOT NULL DEFAULT '',
    note_related_to TEXT NOT NULL DEFAULT '',
    date_end TEXT,
    reason_code TEXT NOT NULL DEFAULT '',
    reason_description TEXT NOT NULL DEFAULT '',
    reason_date_low TEXT,
    reason_date_high TEXT,
    reason_status TEXT NOT NULL DEFAULT ''
);
CREATE INDEX form_care_plan_form ON form_care_plan (id);
CREATE INDEX form_care_plan_pid ON form_care_plan (pid, care_plan_type);

CREATE TABLE care_teams (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    pid INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    team_name TEXT NOT NULL DEFAULT '',
    note TEXT NOT NULL DEFAULT '',
    date_created TEXT,
    date_updated TEXT,
    created_by INTEGER,
    updated_by INTEGER
);
CREATE INDEX care_teams_pid ON care_teams (pid);

CREATE TABLE care_team_member (
    id INTEGER PRIMARY KEY,
    care_team_id INTEGER NOT NULL,
    user_id INTEGER,
    contact_id INTEGER,
    role TEXT NOT NULL DEFAULT '',
    facility_id INTEGER,
    provider_since TEXT,
    status TEXT NOT NULL DEFAULT 'active',
    note TEXT NOT NULL DEFAULT '',
    date_created TEXT,
    date_updated TEXT,
    created_by INTEGER,
    updated_by INTEGER
);
CREATE INDEX care_team_member_team ON care_team_member (care_team_id);

CREATE TABLE questionnaire_repository (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    questionnaire_id TEXT,
    provider INTEGER,
    version INTEGER NOT NULL DEFAULT 1,
    created_date TEXT,
    modified_date TEXT,
    name TEXT NOT NULL DEFAULT '',
    type TEXT NOT NULL DEFAULT 'Questionnaire',
    profile TEXT NOT NULL DEFAULT '',
    active INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'active',
    source_url TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL DEFAULT '',
    code_display TEXT NOT NULL DEFAULT '',
    questionnaire TEXT NOT NULL,
    lform TEXT,
    category TEXT NOT NULL DEFAULT ''
);

CREATE TABLE questionnaire_response (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    response_id TEXT,
    questionnaire_foreign_id INTEGER,
    questionnaire_id TEXT,
    questionnaire_name TEXT NOT NULL DEFAULT '',
    patient_id INTEGER NOT NULL,
    encounter INTEGER,
    audit_user_id INTEGER,
    creator_user_id INTEGER,
    create_time TEXT,
    last_updated TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'completed',
    questionnaire TEXT,
    questionnaire_response TEXT NOT NULL,
    form_response TEXT,
    form_score INTEGER,
    tscore REAL,
    error TEXT
);
CREATE INDEX questionnaire_response_patient ON questionnaire_response (patient_id);

CREATE TABLE pnotes (
    id INTEGER PRIMARY KEY,
    date TEXT,
    body TEXT,
    pid INTEGER NOT NULL,
    "user" TEXT NOT NULL DEFAULT '',
    groupname TEXT NOT NULL DEFAULT '',
    activity INTEGER NOT NULL DEFAULT 1,
    authorized INTEGER NOT NULL DEFAULT 0,
    title TEXT NOT NULL DEFAULT '',
    assigned_to TEXT NOT NULL DEFAULT '',
    deleted INTEGER NOT NULL DEFAULT 0,
    message_status TEXT NOT NULL DEFAULT 'New',
    portal_relation TEXT,
    is_msg_encrypted INTEGER NOT NULL DEFAULT 0,
    update_by INTEGER,
    update_date TEXT
);
CREATE INDEX pnotes_pid ON pnotes (pid);

CREATE TABLE transactions (
    id INTEGER PRIMARY KEY,
    date TEXT,
    title TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL,
    "user" TEXT NOT NULL DEFAULT '',
    groupname TEXT NOT NULL DEFAULT '',
    authorized INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX transactions_pid ON transactions (pid);

CREATE TABLE lbt_data (
    form_id INTEGER NOT NULL,
    field_id TEXT NOT NULL,
    field_value TEXT,
    PRIMARY KEY (form_id, field_id)
);

INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('lists', 'Care_Team_Status', 'Care Team Status', 1),
    ('lists', 'care_team_roles', 'Care Team Roles', 1),
    ('lists', 'Plan_of_Care_Type', 'Plan of Care Type', 1),
    ('lists', 'message_status', 'Message Status', 1),
    ('lists', 'note_type', 'Patient Note Types', 1),
    ('lists', 'transactions', 'Layout-Based Transaction Forms', 1);
INSERT INTO list_options (list_id, option_id, title, seq, notes) VALUES
    ('Care_Team_Status', 'active', 'Active', 10, ''),
    ('Care_Team_Status', 'inactive', 'Inactive', 20, ''),
    ('Care_Team_Status', 'suspended', 'Suspended', 30, ''),
    ('Care_Team_Status', 'proposed', 'Proposed', 40, ''),
    ('Care_Team_Status', 'entered-in-error', 'Entered in Error', 50, ''),
    ('care_team_roles', 'primary_care_provider', 'Primary Care Provider', 10, '446050000'),
    ('care_team_roles', 'physician', 'Physician', 20, '309343006'),
    ('care_team_roles', 'nurse', 'Nurse', 30, '106292003'),
    ('care_team_roles', 'case_manager', 'Case Manager', 40, '768730001'),
    ('care_team_roles', 'pharmacist', 'Pharmacist', 50, '46255001'),
    ('care_team_roles', 'dietitian', 'Dietitian', 60, '159033005'),
    ('care_team_roles', 'caregiver', 'Caregiver', 70, '133932002'),
    ('Plan_of_Care_Type', 'goal', 'Goal', 10, ''),
    ('Plan_of_Care_Type', 'plan_of_care', 'Plan of Care', 20, ''),
    ('Plan_of_Care_Type', 'instruction', 'Instruction', 30, ''),
    ('Plan_of_Care_Type', 'intervention', 'Intervention', 40, ''),
    ('message_status', 'New', 'New', 5, ''),
    ('message_status', 'Read', 'Read', 10, ''),
    ('message_status', 'Forwarded', 'Forwarded', 15, ''),
    ('message_status', 'Done', 'Done', 20, ''),
    ('note_type', 'Unassigned', 'Unassigned', 1, ''),
    ('note_type', 'Chart Note', 'Chart Note', 2, ''),
    ('note_type', 'Insurance', 'Insurance', 3, ''),
    ('note_type', 'New Document', 'New Document', 4, ''),
    ('note_type', 'Pharmacy', 'Pharmacy', 5, ''),
    ('note_type', 'Prior Auth', 'Prior Auth', 6, ''),
    ('note_type', 'Referral', 'Referral', 7, ''),
    ('note_type', 'Test Scheduling', 'Test Scheduling', 8, ''),
    ('note_type', 'Bill/Collect', 'Bill/Collect', 9, ''),
    ('note_type', 'Other', 'Other', 10, ''),
    ('transactions', 'LBTref', 'Referral', 10, ''),
    ('transactions', 'LBTptreq', 'Patient Request', 20, ''),
    ('transactions', 'LBTphreq', 'Physician Request', 30, ''),
    ('transactions', 'LBTlegal', 'Legal', 40, ''),
    ('transactions', 'LBTbill', 'Billing', 50, '');
