-- Immunizations, as OpenEMR keeps them (`immunizations`), vaccines coded in CVX through
-- OpenEMR's `codes` table (code type `CVX`), and the lists the immunization screens and
-- the API read: routes, administration sites, completion statuses and refusal reasons.
-- Same tables as postgres/0491_immunizations.sql.
CREATE TABLE immunizations (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    patient_id INTEGER NOT NULL,
    administered_date TEXT,
    immunization_id INTEGER,
    cvx_code TEXT NOT NULL DEFAULT '',
    manufacturer TEXT NOT NULL DEFAULT '',
    lot_number TEXT NOT NULL DEFAULT '',
    administered_by_id INTEGER,
    administered_by TEXT NOT NULL DEFAULT '',
    education_date TEXT,
    vis_date TEXT,
    note TEXT NOT NULL DEFAULT '',
    create_date TEXT,
    update_date TEXT,
    created_by INTEGER,
    updated_by INTEGER,
    amount_administered REAL,
    amount_administered_unit TEXT NOT NULL DEFAULT '',
    expiration_date TEXT,
    route TEXT NOT NULL DEFAULT '',
    administration_site TEXT NOT NULL DEFAULT '',
    added_erroneously INTEGER NOT NULL DEFAULT 0,
    external_id TEXT NOT NULL DEFAULT '',
    completion_status TEXT NOT NULL DEFAULT 'Completed',
    information_source TEXT NOT NULL DEFAULT '',
    refusal_reason TEXT NOT NULL DEFAULT '',
    ordering_provider INTEGER,
    reason_code TEXT NOT NULL DEFAULT '',
    reason_description TEXT NOT NULL DEFAULT '',
    encounter_id INTEGER
);
CREATE INDEX immunizations_patient ON immunizations (patient_id);

-- OpenEMR's code types and codes, with the CVX vaccines sites use most (CDC's CVX table).
CREATE TABLE code_types (
    ct_key TEXT PRIMARY KEY,
    ct_id INTEGER NOT NULL UNIQUE,
    ct_seq INTEGER NOT NULL DEFAULT 0,
    ct_label TEXT NOT NULL DEFAULT '',
    ct_active INTEGER NOT NULL DEFAULT 1
);
INSERT INTO code_types (ct_key, ct_id, ct_seq, ct_label) VALUES ('CVX', 100, 100, 'CVX');

CREATE TABLE codes (
    id INTEGER PRIMARY KEY,
    code_text TEXT NOT NULL DEFAULT '',
    code_text_short TEXT NOT NULL DEFAULT '',
    code TEXT NOT NULL DEFAULT '',
    code_type INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX codes_type_code ON codes (code_type, code);
INSERT INTO codes (code_type, code, code_text_short, code_text) VALUES
    (100, '03', 'MMR', 'measles, mumps and rubella virus vaccine'),
    (100, '08', 'Hep B, adolescent or pediatric', 'hepatitis B vaccine, pediatric or pediatric/adolescent dosage'),
    (100, '10', 'IPV', 'poliovirus vaccine, inactivated'),
    (100, '20', 'DTaP', 'diphtheria, tetanus toxoids and acellular pertussis vaccine'),
    (100, '21', 'varicella', 'varicella virus vaccine'),
    (100, '33', 'pneumococcal polysaccharide PPV23', 'pneumococcal polysaccharide vaccine, 23 valent'),
    (100, '43', 'Hep B, adult', 'hepatitis B vaccine, adult dosage'),
    (100, '49', 'Hib (PRP-OMP)', 'Haemophilus influenzae type b vaccine, PRP-OMP conjugate'),
    (100, '62', 'HPV, quadrivalent', 'human papilloma virus vaccine, quadrivalent'),
    (100, '83', 'Hep A, ped/adol, 2 dose', 'hepatitis A vaccine, pediatric/adolescent dosage, 2 dose schedule'),
    (100, '88', 'influenza, unspecified formulation', 'influenza virus vaccine, unspecified formulation'),
    (100, '115', 'Tdap', 'tetanus toxoid, reduced diphtheria toxoid, and acellular pertussis vaccine, adsorbed'),
    (100, '121', 'zoster live', 'zoster vaccine, live'),
    (100, '133', 'Pneumococcal conjugate PCV 13', 'pneumococcal conjugate vaccine, 13 valent'),
    (100, '140', 'Influenza, seasonal, injectable, preservative free', 'Influenza, seasonal, injectable, preservative free'),
    (100, '141', 'Influenza, seasonal, injectable', 'Influenza, seasonal, injectable'),
    (100, '150', 'Influenza, injectable, quadrivalent, preservative free', 'Influenza, injectable, quadrivalent, preservative free'),
    (100, '187', 'zoster recombinant', 'zoster vaccine recombinant, adjuvanted'),
    (100, '207', 'COVID-19, mRNA, LNP-S, PF, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose', 'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 100 mcg/0.5mL dose or 50 mcg/0.25mL dose'),
    (100, '208', 'COVID-19, mRNA, LNP-S, PF, 30 mcg/0.3 mL dose', 'SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, 30 mcg/0.3mL dose');

-- The immunization lists (option ids as OpenEMR ships them; `notes` hold the HL7 codes the
-- FHIR server answers: v3 RouteOfAdministration, v3 ActSite, v3 ActReason).
INSERT INTO list_options (list_id, option_id, title, seq) VALUES
    ('lists', 'drug_route', 'Medication Usage Route', 1),
    ('lists', 'immunization_administered_site', 'Immunization Administered Site', 1),
    ('lists', 'Immunization_Completion_Status', 'Immunization Completion Status', 1),
    ('lists', 'immunization_refusal_reason', 'Immunization Refusal Reason', 1);
INSERT INTO list_options (list_id, option_id, title, notes, seq) VALUES
    ('drug_route', 'intramuscular', 'Intramuscular', 'IM', 10),
    ('drug_route', 'subcutaneous', 'Subcutaneous', 'SQ', 20),
    ('drug_route', 'intradermal', 'Intradermal', 'IDINJ', 30),
    ('drug_route', 'intranasal', 'Intranasal', 'NASINHLC', 40),
    ('drug_route', 'oral', 'Oral', 'PO', 50),
    ('immunization_administered_site', 'left_deltoid', 'Left Deltoid', 'LD', 10),
    ('immunization_administered_site', 'right_deltoid', 'Right Deltoid', 'RD', 20),
    ('immunization_administered_site', 'left_arm', 'Left Arm', 'LA', 30),
    ('immunization_administered_site', 'right_arm', 'Right Arm', 'RA', 40),
    ('immunization_administered_site', 'left_thigh', 'Left Thigh', 'LT', 50),
    ('immunization_administered_site', 'right_thigh', 'Right Thigh', 'RT', 60),
    ('Immunization_Completion_Status', 'Completed', 'completed', 'CP', 10),
    ('Immunization_Completion_Status', 'Refused', 'Refused', 'RE', 20),
    ('Immunization_Completion_Status', 'Not_Administered', 'Not Administered', 'NA', 30),
    ('Immunization_Completion_Status', 'Partially_Administered', 'Partially Administered', 'PA', 40),
    ('immunization_refusal_reason', 'patient_objection', 'Patient objection', 'PATOBJ', 10),
    ('immunization_refusal_reason', 'religious_objection', 'Religious objection', 'RELIG', 20),
    ('immunization_refusal_reason', 'philosophical_objection', 'Philosophical objection', 'PHILISOP', 30),
    ('immunization_refusal_reason', 'immunity', 'Immunity', 'IMMUNE', 40),
    ('immunization_refusal_reason', 'medical_precaution', 'Medical precaution', 'MEDPREC', 50),
    ('immunization_refusal_reason', 'out_of_stock', 'Product out of stock', 'OSTOCK', 60);
