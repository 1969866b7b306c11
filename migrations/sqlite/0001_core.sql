-- Hearth core schema: what the host owns (settings, keys, users, tokens, audit) and the
-- patient tables of the first plugin. Column names follow OpenEMR so responses look like
-- OpenEMR's; the host's own tables can never be granted to a plugin.

-- Per-site settings (name = value), e.g. `oauth.password_grant`.
CREATE TABLE site_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The site's token signing keys. The newest active key signs; every active key verifies.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    alg TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 1
);

-- Staff users, address-book entries and practitioners (users with an NPI), as OpenEMR's
-- `users` table. `role` decides which ACL sections a user passes.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    username TEXT UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    fname TEXT NOT NULL DEFAULT '',
    mname TEXT NOT NULL DEFAULT '',
    lname TEXT NOT NULL DEFAULT '',
    suffix TEXT NOT NULL DEFAULT '',
    federaltaxid TEXT NOT NULL DEFAULT '',
    federaldrugid TEXT NOT NULL DEFAULT '',
    upin TEXT NOT NULL DEFAULT '',
    facility TEXT NOT NULL DEFAULT '',
    npi TEXT NOT NULL DEFAULT '',
    specialty TEXT NOT NULL DEFAULT '',
    billname TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    email_direct TEXT NOT NULL DEFAULT '',
    url TEXT NOT NULL DEFAULT '',
    assistant TEXT NOT NULL DEFAULT '',
    organization TEXT NOT NULL DEFAULT '',
    valedictory TEXT NOT NULL DEFAULT '',
    street TEXT NOT NULL DEFAULT '',
    streetb TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    zip TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    fax TEXT NOT NULL DEFAULT '',
    phonew1 TEXT NOT NULL DEFAULT '',
    phonecell TEXT NOT NULL DEFAULT '',
    notes TEXT NOT NULL DEFAULT '',
    state_license_number TEXT NOT NULL DEFAULT '',
    abook_type TEXT NOT NULL DEFAULT '',
    info TEXT NOT NULL DEFAULT '',
    facility_id INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    authorized INTEGER NOT NULL DEFAULT 0,
    role TEXT NOT NULL DEFAULT 'clinician',
    last_updated TEXT
);

-- Credentials live apart from `users`, so plugins that read users never see them.
CREATE TABLE users_secure (
    id INTEGER PRIMARY KEY REFERENCES users(id),
    username TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    last_update TEXT NOT NULL
);

-- Counters for OpenEMR's numeric ids (pid, encounter numbers, ...). Plugins take the next
-- value with `UPDATE sequences SET value = value + 1 WHERE name = $1 RETURNING value`,
-- which serialises concurrent writers on both databases.
CREATE TABLE sequences (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO sequences (name, value) VALUES ('pid', 0);

-- Access tokens issued for this site (by the CLI or the authorization server). The JWT is
-- verified by signature; this row answers "revoked?" at once for every host process.
CREATE TABLE api_token (
    jti TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    context TEXT NOT NULL DEFAULT '{}',
    expires_at INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX api_token_client_user ON api_token (client_id, user_id);

-- One row per /apis request. Bodies are not stored unless the site asks for it.
CREATE TABLE api_log (
    id INTEGER PRIMARY KEY,
    site TEXT NOT NULL,
    created_at TEXT NOT NULL,
    user_id TEXT,
    client_id TEXT,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    status INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    patient_id TEXT,
    plugin TEXT,
    ip_address TEXT,
    request_body TEXT,
    response_body TEXT
);
CREATE INDEX api_log_created_at ON api_log (created_at);

-- Patient demographics, as OpenEMR's `patient_data` (every column it has).
CREATE TABLE patient_data (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    financial TEXT NOT NULL DEFAULT '',
    fname TEXT NOT NULL DEFAULT '',
    lname TEXT NOT NULL DEFAULT '',
    mname TEXT NOT NULL DEFAULT '',
    "DOB" TEXT,
    street TEXT NOT NULL DEFAULT '',
    postal_code TEXT NOT NULL DEFAULT '',
    city TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT '',
    country_code TEXT NOT NULL DEFAULT '',
    drivers_license TEXT NOT NULL DEFAULT '',
    ss TEXT NOT NULL DEFAULT '',
    occupation TEXT NOT NULL DEFAULT '',
    phone_home TEXT NOT NULL DEFAULT '',
    phone_biz TEXT NOT NULL DEFAULT '',
    phone_contact TEXT NOT NULL DEFAULT '',
    phone_cell TEXT NOT NULL DEFAULT '',
    pharmacy_id INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT '',
    contact_relationship TEXT NOT NULL DEFAULT '',
    date TEXT,
    sex TEXT NOT NULL DEFAULT '',
    referrer TEXT NOT NULL DEFAULT '',
    "referrerID" TEXT NOT NULL DEFAULT '',
    "providerID" INTEGER,
    "ref_providerID" INTEGER,
    email TEXT NOT NULL DEFAULT '',
    email_direct TEXT NOT NULL DEFAULT '',
    ethnoracial TEXT NOT NULL DEFAULT '',
    race TEXT NOT NULL DEFAULT '',
    ethnicity TEXT NOT NULL DEFAULT '',
    religion TEXT NOT NULL DEFAULT '',
    interpretter TEXT NOT NULL DEFAULT '',
    migrantseasonal TEXT NOT NULL DEFAULT '',
    family_size TEXT NOT NULL DEFAULT '',
    monthly_income TEXT NOT NULL DEFAULT '',
    billing_note TEXT,
    homeless TEXT NOT NULL DEFAULT '',
    financial_review TEXT,
    pubpid TEXT NOT NULL DEFAULT '',
    pid INTEGER NOT NULL UNIQUE,
    genericname1 TEXT NOT NULL DEFAULT '',
    genericval1 TEXT NOT NULL DEFAULT '',
    genericname2 TEXT NOT NULL DEFAULT '',
    genericval2 TEXT NOT NULL DEFAULT '',
    hipaa_mail TEXT NOT NULL DEFAULT '',
    hipaa_voice TEXT NOT NULL DEFAULT '',
    hipaa_notice TEXT NOT NULL DEFAULT '',
    hipaa_message TEXT NOT NULL DEFAULT '',
    hipaa_allowsms TEXT NOT NULL DEFAULT 'NO',
    hipaa_allowemail TEXT NOT NULL DEFAULT 'NO',
    squad TEXT NOT NULL DEFAULT '',
    fitness INTEGER NOT NULL DEFAULT 0,
    referral_source TEXT NOT NULL DEFAULT '',
    usertext1 TEXT NOT NULL DEFAULT '',
    usertext2 TEXT NOT NULL DEFAULT '',
    usertext3 TEXT NOT NULL DEFAULT '',
    usertext4 TEXT NOT NULL DEFAULT '',
    usertext5 TEXT NOT NULL DEFAULT '',
    usertext6 TEXT NOT NULL DEFAULT '',
    usertext7 TEXT NOT NULL DEFAULT '',
    usertext8 TEXT NOT NULL DEFAULT '',
    userlist1 TEXT NOT NULL DEFAULT '',
    userlist2 TEXT NOT NULL DEFAULT '',
    userlist3 TEXT NOT NULL DEFAULT '',
    userlist4 TEXT NOT NULL DEFAULT '',
    userlist5 TEXT NOT NULL DEFAULT '',
    userlist6 TEXT NOT NULL DEFAULT '',
    userlist7 TEXT NOT NULL DEFAULT '',
    pricelevel TEXT NOT NULL DEFAULT 'standard',
    regdate TEXT,
    contrastart TEXT,
    completed_ad TEXT NOT NULL DEFAULT 'NO',
    ad_reviewed TEXT,
    vfc TEXT NOT NULL DEFAULT '',
    mothersname TEXT NOT NULL DEFAULT '',
    guardiansname TEXT,
    allow_imm_reg_use TEXT NOT NULL DEFAULT '',
    allow_imm_info_share TEXT NOT NULL DEFAULT '',
    allow_health_info_ex TEXT NOT NULL DEFAULT '',
    allow_patient_portal TEXT NOT NULL DEFAULT '',
    deceased_date TEXT,
    deceased_reason TEXT NOT NULL DEFAULT '',
    soap_import_status INTEGER,
    cmsportal_login TEXT NOT NULL DEFAULT '',
    care_team_provider TEXT,
    care_team_facility TEXT,
    care_team_status TEXT,
    county TEXT NOT NULL DEFAULT '',
    industry TEXT,
    imm_reg_status TEXT,
    imm_reg_stat_effdate TEXT,
    publicity_code TEXT,
    publ_code_eff_date TEXT,
    protect_indicator TEXT,
    prot_indi_effdate TEXT,
    guardianrelationship TEXT,
    guardiansex TEXT,
    guardianaddress TEXT,
    guardiancity TEXT,
    guardianstate TEXT,
    guardianpostalcode TEXT,
    guardiancountry TEXT,
    guardianphone TEXT,
    guardianworkphone TEXT,
    guardianemail TEXT,
    sexual_orientation TEXT,
    gender_identity TEXT,
    birth_fname TEXT,
    birth_lname TEXT,
    birth_mname TEXT,
    dupscore INTEGER NOT NULL DEFAULT -9,
    name_history TEXT,
    suffix TEXT,
    street_line_2 TEXT,
    patient_groups TEXT,
    prevent_portal_apps TEXT,
    provider_since_date TEXT,
    created_by INTEGER,
    updated_by INTEGER,
    last_updated TEXT
);
CREATE INDEX patient_data_lname ON patient_data (lname);

-- Previous names and other history of a patient.
CREATE TABLE patient_history (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    date TEXT NOT NULL,
    pid INTEGER NOT NULL,
    history_type_key TEXT,
    previous_name_prefix TEXT,
    previous_name_first TEXT,
    previous_name_middle TEXT,
    previous_name_last TEXT,
    previous_name_suffix TEXT,
    previous_name_enddate TEXT,
    created_by INTEGER
);
CREATE INDEX patient_history_pid ON patient_history (pid);
