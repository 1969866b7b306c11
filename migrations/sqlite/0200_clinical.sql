-- Hearth clinical core: encounters and their forms (vitals, SOAP notes), patient issues
-- (medical problems, allergies, medications, surgeries, dental issues), facilities and
-- the OpenEMR lists that validation reads. Column names follow OpenEMR so responses
-- look like OpenEMR's. Same tables and columns as postgres/0200_clinical.sql.

-- Facilities (clinics, billing locations), as OpenEMR's `facility`.
CREATE TABLE facility (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    fax TEXT NOT NULL DEFAULT '',
    street TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    postal_code TEXT NOT NULL DEFAULT '',
    country_code TEXT NOT NULL DEFAULT '',
    federal_ein TEXT NOT NULL DEFAULT '',
    website TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    service_location INTEGER NOT NULL DEFAULT 1,
    billing_location INTEGER NOT NULL DEFAULT 1,
    accepts_assignment INTEGER NOT NULL DEFAULT 1,
    pos_code INTEGER,
    x12_sender_id TEXT NOT NULL DEFAULT '',
    attn TEXT NOT NULL DEFAULT '',
    domain_identifier TEXT NOT NULL DEFAULT '',
    facility_npi TEXT NOT NULL DEFAULT '',
    facility_taxonomy TEXT NOT NULL DEFAULT '',
    tax_id_type TEXT NOT NULL DEFAULT '',
    color TEXT NOT NULL DEFAULT '',
    primary_business_entity INTEGER NOT NULL DEFAULT 0,
    facility_code TEXT NOT NULL DEFAULT '',
    extra_validation INTEGER NOT NULL DEFAULT 1,
    mail_street TEXT NOT NULL DEFAULT '',
    mail_street2 TEXT NOT NULL DEFAULT '',
    mail_city TEXT NOT NULL DEFAULT '',
    mail_state TEXT NOT NULL DEFAULT '',
    mail_zip TEXT NOT NULL DEFAULT '',
    oid TEXT NOT NULL DEFAULT '',
    iban TEXT NOT NULL DEFAULT '',
    info TEXT NOT NULL DEFAULT '',
    inactive INTEGER NOT NULL DEFAULT 0,
    last_updated TEXT
);

-- OpenEMR's configurable lists (list_id, option_id): value sets that validation checks
-- codes against and that responses join titles from.
CREATE TABLE list_options (
    list_id TEXT NOT NULL,
    option_id TEXT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    seq INTEGER NOT NULL DEFAULT 0,
    is_default INTEGER NOT NULL DEFAULT 0,
    option_value REAL NOT NULL DEFAULT 0,
    mapping TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    codes TEXT NOT NULL DEFAULT '',
    activity INTEGER NOT NULL DEFAULT 1,
    subtype TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (list_id, option_id)
);

-- The lists the clinical plugins read, as OpenEMR ships them. `_ActEncounterCode` is an
-- encounter's `class_code` (its `notes` are the `class_title`); the verification lists
-- give `verification_title`; `reaction` gives an allergy's reaction title and codes.
INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('lists', '_ActEncounterCode', 'Value Set ActEncounterCode', 1),
    ('lists', 'condition-verification', 'Condition Verification Status', 1),
    ('lists', 'allergyintolerance-verification', 'AllergyIntolerance Verification Status', 1),
    ('lists', 'reaction', 'Reaction', 1),
    ('lists', 'discharge-disposition', 'Discharge Disposition', 1),
    ('lists', 'abook_type', 'Address Book Types', 1);
INSERT INTO list_options (list_id, option_id, title, notes, seq, is_default) VALUES
    ('_ActEncounterCode', 'AMB', 'Outpatient', 'ambulatory', 10, 1),
    ('_ActEncounterCode', 'EMER', 'Emergency Dept', 'emergency', 20, 0),
    ('_ActEncounterCode', 'FLD', 'Out in Field', 'field', 30, 0),
    ('_ActEncounterCode', 'HH', 'Home Health', 'home health', 40, 0),
    ('_ActEncounterCode', 'IMP', 'Inpatient Encounter', 'inpatient encounter', 50, 0),
    ('_ActEncounterCode', 'ACUTE', 'Inpatient Acute', 'inpatient acute', 60, 0),
    ('_ActEncounterCode', 'NONAC', 'Inpatient Non-Acute', 'inpatient non-acute', 70, 0),
    ('_ActEncounterCode', 'OBSENC', 'Observation Encounter', 'observation encounter', 80, 0),
    ('_ActEncounterCode', 'PRENC', 'Pre-Admission', 'pre-admission', 90, 0),
    ('_ActEncounterCode', 'SS', 'Short Stay', 'short stay', 100, 0),
    ('_ActEncounterCode', 'VR', 'Virtual Encounter', 'virtual', 110, 0);
INSERT INTO list_options (list_id, option_id, title, seq, is_default) VALUES
    ('condition-verification', 'unconfirmed', 'Unconfirmed', 10, 1),
    ('condition-verification', 'provisional', 'Provisional', 20, 0),
    ('condition-verification', 'differential', 'Differential', 30, 0),
    ('condition-verification', 'confirmed', 'Confirmed', 40, 0),
    ('condition-verification', 'refuted', 'Refuted', 50, 0),
    ('condition-verification', 'entered-in-error', 'Entered in Error', 60, 0),
    ('allergyintolerance-verification', 'unconfirmed', 'Unconfirmed', 10, 1),
    ('allergyintolerance-verification', 'confirmed', 'Confirmed', 20, 0),
    ('allergyintolerance-verification', 'refuted', 'Refuted', 30, 0),
    ('allergyintolerance-verification', 'entered-in-error', 'Entered in Error', 40, 0);
INSERT INTO list_options (list_id, option_id, title, codes, seq) VALUES
    ('reaction', 'unassessed', 'Unassessed', '', 0),
    ('reaction', 'hives', 'Hives', 'SNOMED-CT:247472004', 10),
    ('reaction', 'nausea', 'Nausea', 'SNOMED-CT:422587007', 20),
    ('reaction', 'shortness_of_breath', 'Shortness of Breath', 'SNOMED-CT:267036007', 30);

-- Visit categories an encounter's `pc_catid` points at (for `pc_catname`), with the ids
-- OpenEMR ships. Sites add their own; encounters do not insist on a known category.
CREATE TABLE openemr_postcalendar_categories (
    pc_catid INTEGER PRIMARY KEY,
    pc_constant_id TEXT,
    pc_catname TEXT,
    pc_catcolor TEXT,
    pc_catdesc TEXT,
    pc_cattype INTEGER NOT NULL DEFAULT 0,
    pc_duration INTEGER NOT NULL DEFAULT 0,
    pc_active INTEGER NOT NULL DEFAULT 1,
    pc_seq INTEGER NOT NULL DEFAULT 0
);
INSERT INTO openemr_postcalendar_categories (pc_catid, pc_constant_id, pc_catname, pc_catcolor, pc_cattype, pc_duration, pc_seq) VALUES
    (1, 'no_show', 'No Show', '#DDDDDD', 0, 0, 1),
    (2, 'in_office', 'In Office', '#99CCFF', 1, 0, 2),
    (3, 'out_of_office', 'Out Of Office', '#99FFFF', 1, 0, 3),
    (4, 'vacation', 'Vacation', '#EFEFEF', 1, 0, 4),
    (5, 'office_visit', 'Office Visit', '#FFFFCC', 0, 900, 5),
    (8, 'lunch', 'Lunch', '#FFFF33', 1, 3600, 8),
    (9, 'established_patient', 'Established Patient', '#CCFF33', 0, 900, 9),
    (10, 'new_patient', 'New Patient', '#CCFFFF', 0, 1800, 10),
    (11, 'reserved', 'Reserved', '#FF7777', 1, 900, 11),
    (12, 'health_and_behavioral_assessment', 'Health and Behavioral Assessment', '#C7C7C7', 0, 900, 12),
    (13, 'preventive_care_services', 'Preventive Care Services', '#CCCCFF', 0, 900, 13),
    (14, 'ophthalmological_services', 'Ophthalmological Services', '#F89219', 0, 900, 14),
    (15, 'group_therapy', 'Group Therapy', '#BFBFBF', 3, 3600, 15);

-- Encounters (visits). `encounter` is the number the API calls `eid`; it comes from
-- the `encounter` sequence below, so it is unique across patients as in OpenEMR.
-- Reference ids are nullable: OpenEMR writes 0 for "none", clients also send null or "".
CREATE TABLE form_encounter (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT,
    reason TEXT NOT NULL DEFAULT '',
    facility TEXT NOT NULL DEFAULT '',
    facility_id INTEGER DEFAULT 0,
    pid INTEGER NOT NULL,
    encounter INTEGER NOT NULL UNIQUE,
    onset_date TEXT,
    sensitivity TEXT NOT NULL DEFAULT '',
    billing_note TEXT NOT NULL DEFAULT '',
    pc_catid INTEGER DEFAULT 5,
    last_level_billed INTEGER DEFAULT 0,
    last_level_closed INTEGER DEFAULT 0,
    last_stmt_date TEXT,
    stmt_count INTEGER DEFAULT 0,
    provider_id INTEGER DEFAULT 0,
    supervisor_id INTEGER DEFAULT 0,
    invoice_refno TEXT NOT NULL DEFAULT '',
    referral_source TEXT NOT NULL DEFAULT '',
    billing_facility INTEGER DEFAULT 0,
    external_id TEXT NOT NULL DEFAULT '',
    pos_code INTEGER,
    parent_encounter_id INTEGER,
    class_code TEXT NOT NULL DEFAULT 'AMB',
    discharge_disposition TEXT,
    referring_provider_id INTEGER DEFAULT 0,
    ordering_provider_id INTEGER DEFAULT 0,
    encounter_type_code TEXT,
    encounter_type_description TEXT,
    in_collection INTEGER,
    date_end TEXT,
    last_update TEXT
);
CREATE INDEX form_encounter_pid_encounter ON form_encounter (pid, encounter);

INSERT INTO sequences (name, value) VALUES ('encounter', 0);

-- The forms of each encounter: one row per form instance, pointing at its row
-- (`form_id`) in `form_<formdir>`. Lists and reads of encounter forms go through it.
CREATE TABLE forms (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT,
    encounter INTEGER NOT NULL,
    form_name TEXT NOT NULL DEFAULT '',
    form_id INTEGER NOT NULL,
    pid INTEGER NOT NULL,
    "user" TEXT NOT NULL DEFAULT '',
    groupname TEXT NOT NULL DEFAULT '',
    authorized INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    formdir TEXT NOT NULL,
    therapy_group_id INTEGER,
    issue_id INTEGER NOT NULL DEFAULT 0,
    provider_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX forms_pid_encounter ON forms (pid, encounter);
CREATE INDEX forms_formdir_form_id ON forms (formdir, form_id);

-- Vital signs (`vid` = id). Measurements are numbers in OpenEMR's US units (lb, in,
-- degF); blood pressures are text as in OpenEMR.
CREATE TABLE form_vitals (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT,
    pid INTEGER NOT NULL,
    "user" TEXT NOT NULL DEFAULT '',
    groupname TEXT NOT NULL DEFAULT '',
    authorized INTEGER NOT NULL DEFAULT 0,
    activity INTEGER NOT NULL DEFAULT 0,
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
    last_updated TEXT
);
CREATE INDEX form_vitals_pid ON form_vitals (pid);

-- SOAP notes (`sid` = id). OpenEMR's table has no uuid or last_updated; Hearth gives
-- every row a uuid and records edits in last_updated instead of rewriting `date`.
CREATE TABLE form_soap (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT,
    pid INTEGER NOT NULL,
    "user" TEXT NOT NULL DEFAULT '',
    groupname TEXT NOT NULL DEFAULT '',
    authorized INTEGER NOT NULL DEFAULT 0,
    activity INTEGER NOT NULL DEFAULT 0,
    subjective TEXT,
    objective TEXT,
    assessment TEXT,
    plan TEXT,
    last_updated TEXT
);
CREATE INDEX form_soap_pid ON form_soap (pid);

-- Patient issues, one `type` per kind: medical_problem, allergy, medication, surgery,
-- dental. `diagnosis` and list codes hold `TYPE:CODE;...` strings. Every row has a
-- uuid (OpenEMR leaves medications, surgeries and dental issues without one).
CREATE TABLE lists (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT,
    type TEXT NOT NULL,
    subtype TEXT NOT NULL DEFAULT '',
    title TEXT NOT NULL DEFAULT '',
    udi TEXT,
    udi_data TEXT,
    begdate TEXT,
    enddate TEXT,
    returndate TEXT,
    occurrence INTEGER NOT NULL DEFAULT 0,
    classification INTEGER NOT NULL DEFAULT 0,
    referredby TEXT NOT NULL DEFAULT '',
    extrainfo TEXT NOT NULL DEFAULT '',
    diagnosis TEXT NOT NULL DEFAULT '',
    activity INTEGER NOT NULL DEFAULT 1,
    comments TEXT,
    pid INTEGER NOT NULL,
    "user" TEXT NOT NULL DEFAULT '',
    groupname TEXT NOT NULL DEFAULT '',
    outcome INTEGER NOT NULL DEFAULT 0,
    destination TEXT,
    reinjury_id INTEGER NOT NULL DEFAULT 0,
    injury_part TEXT NOT NULL DEFAULT '',
    injury_type TEXT NOT NULL DEFAULT '',
    injury_grade TEXT NOT NULL DEFAULT '',
    reaction TEXT NOT NULL DEFAULT '',
    verification TEXT NOT NULL DEFAULT '',
    external_allergyid TEXT,
    erx_source TEXT NOT NULL DEFAULT '0',
    erx_uploaded TEXT NOT NULL DEFAULT '0',
    modifydate TEXT,
    severity_al TEXT,
    external_id TEXT,
    list_option_id TEXT
);
CREATE INDEX lists_pid_type ON lists (pid, type);

-- Which issues were addressed in which encounters (a medical problem's encounter_uuid).
CREATE TABLE issue_encounter (
    id INTEGER PRIMARY KEY,
    pid INTEGER NOT NULL,
    list_id INTEGER NOT NULL,
    encounter INTEGER NOT NULL,
    resolved INTEGER NOT NULL DEFAULT 0,
    UNIQUE (pid, list_id, encounter)
);
CREATE INDEX issue_encounter_list_id ON issue_encounter (list_id);
