-- A patient's related persons as OpenEMR keeps them for FHIR RelatedPerson: the person
-- (`person`), its contact entity (`contact`, `foreign_table_name = 'person'`), the
-- relation of that contact to the patient (`contact_relation`, `target_table =
-- 'patient_data'`, `target_id` the pid, `relationship` an HL7 v3 RoleCode of the list
-- `related_person_relationship`), and the contact's telecoms (`contact_telecom`) and
-- addresses (`contact_address` to `addresses`). Hearth gives each relation a `uuid`, the
-- RelatedPerson's id: one person may be related to several patients. Same tables as
-- postgres/0522_related_persons.sql.
CREATE TABLE person (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    first_name TEXT NOT NULL DEFAULT '',
    middle_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    preferred_name TEXT NOT NULL DEFAULT '',
    gender TEXT NOT NULL DEFAULT '',
    birth_date TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    notes TEXT NOT NULL DEFAULT '',
    created_date TEXT,
    updated_date TEXT
);

CREATE TABLE contact (
    id INTEGER PRIMARY KEY,
    foreign_table_name TEXT NOT NULL DEFAULT '',
    foreign_id INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX contact_foreign ON contact (foreign_table_name, foreign_id);

CREATE TABLE contact_relation (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    contact_id INTEGER NOT NULL,
    target_table TEXT NOT NULL DEFAULT '',
    target_id INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    role TEXT NOT NULL DEFAULT '',
    relationship TEXT NOT NULL DEFAULT '',
    contact_priority INTEGER NOT NULL DEFAULT 1,
    is_primary_contact INTEGER NOT NULL DEFAULT 0,
    is_emergency_contact INTEGER NOT NULL DEFAULT 0,
    can_make_medical_decisions INTEGER NOT NULL DEFAULT 0,
    can_receive_medical_info INTEGER NOT NULL DEFAULT 0,
    start_date TEXT,
    end_date TEXT,
    notes TEXT NOT NULL DEFAULT '',
    created_date TEXT,
    updated_date TEXT
);
CREATE INDEX contact_relation_target ON contact_relation (target_table, target_id);

CREATE TABLE contact_telecom (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    rank INTEGER NOT NULL DEFAULT 1,
    system TEXT NOT NULL DEFAULT 'phone',
    "use" TEXT NOT NULL DEFAULT 'home',
    value TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL DEFAULT 'A',
    is_primary TEXT NOT NULL DEFAULT 'N'
);
CREATE INDEX contact_telecom_contact ON contact_telecom (contact_id);

CREATE TABLE contact_address (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL,
    address_id INTEGER NOT NULL,
    priority INTEGER NOT NULL DEFAULT 1,
    type TEXT NOT NULL DEFAULT 'both',
    "use" TEXT NOT NULL DEFAULT 'home',
    status TEXT NOT NULL DEFAULT 'A',
    is_primary TEXT NOT NULL DEFAULT 'Y'
);
CREATE INDEX contact_address_contact ON contact_address (contact_id);

INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('lists', 'related_person_relationship', 'Related Person Relationship', 1);
INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('related_person_relationship', 'MTH', 'Mother', 10),
    ('related_person_relationship', 'FTH', 'Father', 20),
    ('related_person_relationship', 'SPS', 'Spouse', 30),
    ('related_person_relationship', 'DOMPART', 'Domestic Partner', 40),
    ('related_person_relationship', 'CHILD', 'Child', 50),
    ('related_person_relationship', 'SIB', 'Sibling', 60),
    ('related_person_relationship', 'GRPRN', 'Grandparent', 70),
    ('related_person_relationship', 'GUARD', 'Guardian', 80),
    ('related_person_relationship', 'FRND', 'Friend', 90),
    ('related_person_relationship', 'NBOR', 'Neighbor', 100),
    ('related_person_relationship', 'FAMMEMB', 'Family Member', 110);
