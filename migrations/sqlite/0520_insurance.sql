-- Insurance as OpenEMR keeps it: the companies (`insurance_companies`, their address in
-- `addresses` keyed by the company id), the claim types a company files under
-- (`insurance_type_codes`), the patients' policies (`insurance_data`, one current policy per
-- type and start date) and employers (`employer_data`), with the lists CoverageValidator
-- checks a policy against: `sub_relation`, `sex` and `state`. Same tables as
-- postgres/0520_insurance.sql.
CREATE TABLE insurance_companies (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    attn TEXT NOT NULL DEFAULT '',
    cms_id TEXT NOT NULL DEFAULT '',
    ins_type_code INTEGER,
    x12_receiver_id TEXT NOT NULL DEFAULT '',
    x12_default_partner_id INTEGER,
    alt_cms_id TEXT NOT NULL DEFAULT '',
    inactive INTEGER NOT NULL DEFAULT 0,
    cqm_sop INTEGER,
    date_created TEXT,
    last_updated TEXT
);

-- Addresses of insurance companies (`foreign_id` = `insurance_companies.id`).
CREATE TABLE addresses (
    id INTEGER PRIMARY KEY,
    line1 TEXT NOT NULL DEFAULT '',
    line2 TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    zip TEXT NOT NULL DEFAULT '',
    plus_four TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    foreign_id INTEGER
);
CREATE INDEX addresses_foreign ON addresses (foreign_id);

-- Hearth adds each type's code in the Source of Payment Typology (PHDSC, the value set US
-- Core's Coverage.type binds to), for FHIR Coverage.
CREATE TABLE insurance_type_codes (
    id INTEGER PRIMARY KEY,
    type TEXT NOT NULL,
    claim_type TEXT NOT NULL DEFAULT '',
    sop_code TEXT NOT NULL DEFAULT '',
    sop_display TEXT NOT NULL DEFAULT ''
);
INSERT INTO insurance_type_codes (id, type, claim_type, sop_code, sop_display) VALUES
    (1, 'Other HCFA', '16', '9', 'MISCELLANEOUS/OTHER'),
    (2, 'Medicare Part B', 'MB', '1', 'MEDICARE'),
    (3, 'Medicaid', 'MC', '2', 'MEDICAID'),
    (4, 'ChampUSVA', 'CH', '32', 'Department of Veterans Affairs'),
    (5, 'ChampUS', 'CH', '311', 'TRICARE (CHAMPUS)'),
    (6, 'Blue Cross Blue Shield', 'BL', '6', 'BLUE CROSS/BLUE SHIELD'),
    (7, 'FECA', '16', '3', 'OTHER GOVERNMENT (Federal/State/Local) (excluding Department of Corrections)'),
    (8, 'Self Pay', '09', '81', 'Self-pay'),
    (9, 'Central Certification', '10', '9', 'MISCELLANEOUS/OTHER'),
    (10, 'Other Non-Federal Programs', '11', '9', 'MISCELLANEOUS/OTHER'),
    (11, 'Preferred Provider Organization (PPO)', '12', '512', 'Commercial Managed Care - PPO'),
    (12, 'Point of Service (POS)', '13', '513', 'Commercial Managed Care - POS'),
    (13, 'Exclusive Provider Organization (EPO)', '14', '51', 'Managed Care (Private)'),
    (14, 'Indemnity Insurance', '15', '52', 'Private Health Insurance - Indemnity'),
    (15, 'Health Maintenance Organization (HMO) Medicare Risk', '16', '111', 'Medicare HMO'),
    (16, 'Automobile Medical', 'AM', '9', 'MISCELLANEOUS/OTHER'),
    (17, 'Commercial Insurance Co.', 'CI', '5', 'PRIVATE HEALTH INSURANCE'),
    (18, 'Disability', 'DS', '9', 'MISCELLANEOUS/OTHER'),
    (19, 'Health Maintenance Organization', 'HM', '511', 'Commercial Managed Care - HMO'),
    (20, 'Liability', 'LI', '9', 'MISCELLANEOUS/OTHER'),
    (21, 'Liability Medical', 'LM', '9', 'MISCELLANEOUS/OTHER'),
    (22, 'Other Federal Program', 'OF', '3', 'OTHER GOVERNMENT (Federal/State/Local) (excluding Department of Corrections)'),
    (23, 'Title V', 'TV', '3', 'OTHER GOVERNMENT (Federal/State/Local) (excluding Department of Corrections)'),
    (24, 'Veterans Administration Plan', 'VA', '32', 'Department of Veterans Affairs'),
    (25, 'Workers Compensation Health Plan', 'WC', '95', 'Worker''s Compensation'),
    (26, 'Mutually Defined', 'ZZ', '9', 'MISCELLANEOUS/OTHER');

-- A patient's policies. OpenEMR's unique key (pid, type, date): one policy of a type
-- starts on a day; the newest start date of a type is the current policy.
CREATE TABLE insurance_data (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL DEFAULT 'primary' CHECK (type IN ('primary', 'secondary', 'tertiary')),
    provider INTEGER,
    plan_name TEXT NOT NULL DEFAULT '',
    policy_number TEXT NOT NULL DEFAULT '',
    group_number TEXT NOT NULL DEFAULT '',
    subscriber_lname TEXT NOT NULL DEFAULT '',
    subscriber_mname TEXT NOT NULL DEFAULT '',
    subscriber_fname TEXT NOT NULL DEFAULT '',
    subscriber_relationship TEXT NOT NULL DEFAULT '',
    subscriber_ss TEXT NOT NULL DEFAULT '',
    "subscriber_DOB" TEXT,
    subscriber_street TEXT NOT NULL DEFAULT '',
    subscriber_postal_code TEXT NOT NULL DEFAULT '',
    subscriber_city TEXT NOT NULL DEFAULT '',
    subscriber_state TEXT NOT NULL DEFAULT '',
    subscriber_country TEXT NOT NULL DEFAULT '',
    subscriber_phone TEXT NOT NULL DEFAULT '',
    subscriber_employer TEXT NOT NULL DEFAULT '',
    subscriber_employer_street TEXT NOT NULL DEFAULT '',
    subscriber_employer_postal_code TEXT NOT NULL DEFAULT '',
    subscriber_employer_state TEXT NOT NULL DEFAULT '',
    subscriber_employer_country TEXT NOT NULL DEFAULT '',
    subscriber_employer_city TEXT NOT NULL DEFAULT '',
    copay TEXT NOT NULL DEFAULT '',
    date TEXT,
    pid INTEGER NOT NULL,
    subscriber_sex TEXT NOT NULL DEFAULT '',
    accept_assignment TEXT NOT NULL DEFAULT 'TRUE',
    policy_type TEXT NOT NULL DEFAULT '',
    date_end TEXT,
    last_updated TEXT,
    UNIQUE (pid, type, date)
);

-- A patient's employers (OpenEMR keeps one row per change, the newest is current).
CREATE TABLE employer_data (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    street TEXT NOT NULL DEFAULT '',
    street_line_2 TEXT NOT NULL DEFAULT '',
    postal_code TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    country TEXT NOT NULL DEFAULT '',
    date TEXT,
    pid INTEGER NOT NULL,
    start_date TEXT,
    end_date TEXT,
    occupation TEXT NOT NULL DEFAULT '',
    industry TEXT NOT NULL DEFAULT ''
);
CREATE INDEX employer_data_pid ON employer_data (pid);

INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('lists', 'sub_relation', 'Subscriber Relationship', 1),
    ('lists', 'sex', 'Sex', 1),
    ('lists', 'state', 'State', 1);
INSERT INTO list_options (list_id, option_id, title, seq, is_default) VALUES
    ('sub_relation', 'self', 'Self', 1, 1),
    ('sub_relation', 'spouse', 'Spouse', 2, 0),
    ('sub_relation', 'child', 'Child', 3, 0),
    ('sub_relation', 'other', 'Other', 4, 0),
    ('sex', 'Female', 'Female', 1, 0),
    ('sex', 'Male', 'Male', 2, 0),
    ('sex', 'UNK', 'Unknown', 3, 0);
INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('state', 'AL', 'Alabama', 1), ('state', 'AK', 'Alaska', 2), ('state', 'AZ', 'Arizona', 3),
    ('state', 'AR', 'Arkansas', 4), ('state', 'CA', 'California', 5), ('state', 'CO', 'Colorado', 6),
    ('state', 'CT', 'Connecticut', 7), ('state', 'DE', 'Delaware', 8),
    ('state', 'DC', 'District of Columbia', 9), ('state', 'FL', 'Florida', 10),
    ('state', 'GA', 'Georgia', 11), ('state', 'HI', 'Hawaii', 12), ('state', 'ID', 'Idaho', 13),
    ('state', 'IL', 'Illinois', 14), ('state', 'IN', 'Indiana', 15), ('state', 'IA', 'Iowa', 16),
    ('state', 'KS', 'Kansas', 17), ('state', 'KY', 'Kentucky', 18), ('state', 'LA', 'Louisiana', 19),
    ('state', 'ME', 'Maine', 20), ('state', 'MD', 'Maryland', 21), ('state', 'MA', 'Massachusetts', 22),
    ('state', 'MI', 'Michigan', 23), ('state', 'MN', 'Minnesota', 24), ('state', 'MS', 'Mississippi', 25),
    ('state', 'MO', 'Missouri', 26), ('state', 'MT', 'Montana', 27), ('state', 'NE', 'Nebraska', 28),
    ('state', 'NV', 'Nevada', 29), ('state', 'NH', 'New Hampshire', 30), ('state', 'NJ', 'New Jersey', 31),
    ('state', 'NM', 'New Mexico', 32), ('state', 'NY', 'New York', 33), ('state', 'NC', 'North Carolina', 34),
    ('state', 'ND', 'North Dakota', 35), ('state', 'OH', 'Ohio', 36), ('state', 'OK', 'Oklahoma', 37),
    ('state', 'OR', 'Oregon', 38), ('state', 'PA', 'Pennsylvania', 39), ('state', 'RI', 'Rhode Island', 40),
    ('state', 'SC', 'South Carolina', 41), ('state', 'SD', 'South Dakota', 42), ('state', 'TN', 'Tennessee', 43),
    ('state', 'TX', 'Texas', 44), ('state', 'UT', 'Utah', 45), ('state', 'VT', 'Vermont', 46),
    ('state', 'VA', 'Virginia', 47), ('state', 'WA', 'Washington', 48), ('state', 'WV', 'West Virginia', 49),
    ('state', 'WI', 'Wisconsin', 50), ('state', 'WY', 'Wyoming', 51);
