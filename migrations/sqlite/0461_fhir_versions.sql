-- FHIR versions and history (meta.versionId, ETag, If-Match, vread, _history) for the
-- tables behind the writable FHIR types: patient_data (Patient), users (Practitioner,
-- PractitionerRole, Person), facility (Organization, Location), form_encounter
-- (Encounter) and lists (AllergyIntolerance, Condition).
--
-- Each table gets a history table `<table>_history`: one row per version of a row, a
-- full snapshot of its columns after the write plus `fhir_version` (1 for the row as
-- inserted, then +1 for every UPDATE). Triggers fill it, so every writer (the standard
-- API plugins, the FHIR plugins, the host) bumps the version and no writer can forget.
-- A row's current version is MAX(fhir_version) of its id. Rows present before this
-- migration start at version 1 (their snapshot as of now).
--
-- A plugin that writes a versioned table must also be granted its history table for
-- writing (the trigger's insert runs with the plugin's grants); the FHIR plugins read
-- it. A later migration that adds a column to a versioned table adds it to the history
-- table and recreates the two triggers with it (SQLite lists the columns; PostgreSQL's
-- trigger copies by name, so there only the history table needs the column).
-- Same tables as postgres/0461_fhir_versions.sql. Generated column lists.


CREATE TABLE patient_data_history (
    fhir_version INTEGER NOT NULL,
    id INTEGER,
    uuid TEXT,
    title TEXT,
    language TEXT,
    financial TEXT,
    fname TEXT,
    lname TEXT,
    mname TEXT,
    "DOB" TEXT,
    street TEXT,
    postal_code TEXT,
    city TEXT,
    state TEXT,
    country_code TEXT,
    drivers_license TEXT,
    ss TEXT,
    occupation TEXT,
    phone_home TEXT,
    phone_biz TEXT,
    phone_contact TEXT,
    phone_cell TEXT,
    pharmacy_id INTEGER,
    status TEXT,
    contact_relationship TEXT,
    "date" TEXT,
    sex TEXT,
    referrer TEXT,
    "referrerID" TEXT,
    "providerID" INTEGER,
    "ref_providerID" INTEGER,
    email TEXT,
    email_direct TEXT,
    ethnoracial TEXT,
    race TEXT,
    ethnicity TEXT,
    religion TEXT,
    interpreter TEXT,
    migrantseasonal TEXT,
    family_size TEXT,
    monthly_income TEXT,
    billing_note TEXT,
    homeless TEXT,
    financial_review TEXT,
    pubpid TEXT,
    pid INTEGER,
    genericname1 TEXT,
    genericval1 TEXT,
    genericname2 TEXT,
    genericval2 TEXT,
    hipaa_mail TEXT,
    hipaa_voice TEXT,
    hipaa_notice TEXT,
    hipaa_message TEXT,
    hipaa_allowsms TEXT,
    hipaa_allowemail TEXT,
    squad TEXT,
    fitness INTEGER,
    referral_source TEXT,
    usertext1 TEXT,
    usertext2 TEXT,
    usertext3 TEXT,
    usertext4 TEXT,
    usertext5 TEXT,
    usertext6 TEXT,
    usertext7 TEXT,
    usertext8 TEXT,
    userlist1 TEXT,
    userlist2 TEXT,
    userlist3 TEXT,
    userlist4 TEXT,
    userlist5 TEXT,
    userlist6 TEXT,
    userlist7 TEXT,
    pricelevel TEXT,
    regdate TEXT,
    contrastart TEXT,
    completed_ad TEXT,
    ad_reviewed TEXT,
    vfc TEXT,
    mothersname TEXT,
    guardiansname TEXT,
    allow_imm_reg_use TEXT,
    allow_imm_info_share TEXT,
    allow_health_info_ex TEXT,
    allow_patient_portal TEXT,
    deceased_date TEXT,
    deceased_reason TEXT,
    soap_import_status INTEGER,
    cmsportal_login TEXT,
    care_team_provider TEXT,
    care_team_facility TEXT,
    care_team_status TEXT,
    county TEXT,
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
    dupscore INTEGER,
    name_history TEXT,
    suffix TEXT,
    street_line_2 TEXT,
    patient_groups TEXT,
    prevent_portal_apps TEXT,
    provider_since_date TEXT,
    created_by INTEGER,
    updated_by INTEGER,
    last_updated TEXT,
    interpreter_needed TEXT,
    preferred_name TEXT,
    nationality_country TEXT,
    tribal_affiliations TEXT,
    sex_identified TEXT,
    pronoun TEXT,
    advance_directive_user_authenticator INTEGER,
    birth_sex TEXT,
    PRIMARY KEY (id, fhir_version)
);

INSERT INTO patient_data_history (fhir_version, id, uuid, title, language, financial, fname, lname, mname, "DOB", street, postal_code, city, state, country_code, drivers_license, ss, occupation, phone_home, phone_biz, phone_contact, phone_cell, pharmacy_id, status, contact_relationship, "date", sex, referrer, "referrerID", "providerID", "ref_providerID", email, email_direct, ethnoracial, race, ethnicity, religion, interpreter, migrantseasonal, family_size, monthly_income, billing_note, homeless, financial_review, pubpid, pid, genericname1, genericval1, genericname2, genericval2, hipaa_mail, hipaa_voice, hipaa_notice, hipaa_message, hipaa_allowsms, hipaa_allowemail, squad, fitness, referral_source, usertext1, usertext2, usertext3, usertext4, usertext5, usertext6, usertext7, usertext8, userlist1, userlist2, userlist3, userlist4, userlist5, userlist6, userlist7, pricelevel, regdate, contrastart, completed_ad, ad_reviewed, vfc, mothersname, guardiansname, allow_imm_reg_use, allow_imm_info_share, allow_health_info_ex, allow_patient_portal, deceased_date, deceased_reason, soap_import_status, cmsportal_login, care_team_provider, care_team_facility, care_team_status, county, industry, imm_reg_status, imm_reg_stat_effdate, publicity_code, publ_code_eff_date, protect_indicator, prot_indi_effdate, guardianrelationship, guardiansex, guardianaddress, guardiancity, guardianstate, guardianpostalcode, guardiancountry, guardianphone, guardianworkphone, guardianemail, sexual_orientation, gender_identity, birth_fname, birth_lname, birth_mname, dupscore, name_history, suffix, street_line_2, patient_groups, prevent_portal_apps, provider_since_date, created_by, updated_by, last_updated, interpreter_needed, preferred_name, nationality_country, tribal_affiliations, sex_identified, pronoun, advance_directive_user_authenticator, birth_sex)
    SELECT 1, id, uuid, title, language, financial, fname, lname, mname, "DOB", street, postal_code, city, state, country_code, drivers_license, ss, occupation, phone_home, phone_biz, phone_contact, phone_cell, pharmacy_id, status, contact_relationship, "date", sex, referrer, "referrerID", "providerID", "ref_providerID", email, email_direct, ethnoracial, race, ethnicity, religion, interpreter, migrantseasonal, family_size, monthly_income, billing_note, homeless, financial_review, pubpid, pid, genericname1, genericval1, genericname2, genericval2, hipaa_mail, hipaa_voice, hipaa_notice, hipaa_message, hipaa_allowsms, hipaa_allowemail, squad, fitness, referral_source, usertext1, usertext2, usertext3, usertext4, usertext5, usertext6, usertext7, usertext8, userlist1, userlist2, userlist3, userlist4, userlist5, userlist6, userlist7, pricelevel, regdate, contrastart, completed_ad, ad_reviewed, vfc, mothersname, guardiansname, allow_imm_reg_use, allow_imm_info_share, allow_health_info_ex, allow_patient_portal, deceased_date, deceased_reason, soap_import_status, cmsportal_login, care_team_provider, care_team_facility, care_team_status, county, industry, imm_reg_status, imm_reg_stat_effdate, publicity_code, publ_code_eff_date, protect_indicator, prot_indi_effdate, guardianrelationship, guardiansex, guardianaddress, guardiancity, guardianstate, guardianpostalcode, guardiancountry, guardianphone, guardianworkphone, guardianemail, sexual_orientation, gender_identity, birth_fname, birth_lname, birth_mname, dupscore, name_history, suffix, street_line_2, patient_groups, prevent_portal_apps, provider_since_date, created_by, updated_by, last_updated, interpreter_needed, preferred_name, nationality_country, tribal_affiliations, sex_identified, pronoun, advance_directive_user_authenticator, birth_sex FROM patient_data;

CREATE TRIGGER hearth_version_patient_data_insert AFTER INSERT ON patient_data BEGIN
    INSERT INTO patient_data_history (fhir_version, id, uuid, title, language, financial, fname, lname, mname, "DOB", street, postal_code, city, state, country_code, drivers_license, ss, occupation, phone_home, phone_biz, phone_contact, phone_cell, pharmacy_id, status, contact_relationship, "date", sex, referrer, "referrerID", "providerID", "ref_providerID", email, email_direct, ethnoracial, race, ethnicity, religion, interpreter, migrantseasonal, family_size, monthly_income, billing_note, homeless, financial_review, pubpid, pid, genericname1, genericval1, genericname2, genericval2, hipaa_mail, hipaa_voice, hipaa_notice, hipaa_message, hipaa_allowsms, hipaa_allowemail, squad, fitness, referral_source, usertext1, usertext2, usertext3, usertext4, usertext5, usertext6, usertext7, usertext8, userlist1, userlist2, userlist3, userlist4, userlist5, userlist6, userlist7, pricelevel, regdate, contrastart, completed_ad, ad_reviewed, vfc, mothersname, guardiansname, allow_imm_reg_use, allow_imm_info_share, allow_health_info_ex, allow_patient_portal, deceased_date, deceased_reason, soap_import_status, cmsportal_login, care_team_provider, care_team_facility, care_team_status, county, industry, imm_reg_status, imm_reg_stat_effdate, publicity_code, publ_code_eff_date, protect_indicator, prot_indi_effdate, guardianrelationship, guardiansex, guardianaddress, guardiancity, guardianstate, guardianpostalcode, guardiancountry, guardianphone, guardianworkphone, guardianemail, sexual_orientation, gender_identity, birth_fname, birth_lname, birth_mname, dupscore, name_history, suffix, street_line_2, patient_groups, prevent_portal_apps, provider_since_date, created_by, updated_by, last_updated, interpreter_needed, preferred_name, nationality_country, tribal_affiliations, sex_identified, pronoun, advance_directive_user_authenticator, birth_sex)
    VALUES (1, NEW.id, NEW.uuid, NEW.title, NEW.language, NEW.financial, NEW.fname, NEW.lname, NEW.mname, NEW."DOB", NEW.street, NEW.postal_code, NEW.city, NEW.state, NEW.country_code, NEW.drivers_license, NEW.ss, NEW.occupation, NEW.phone_home, NEW.phone_biz, NEW.phone_contact, NEW.phone_cell, NEW.pharmacy_id, NEW.status, NEW.contact_relationship, NEW."date", NEW.sex, NEW.referrer, NEW."referrerID", NEW."providerID", NEW."ref_providerID", NEW.email, NEW.email_direct, NEW.ethnoracial, NEW.race, NEW.ethnicity, NEW.religion, NEW.interpreter, NEW.migrantseasonal, NEW.family_size, NEW.monthly_income, NEW.billing_note, NEW.homeless, NEW.financial_review, NEW.pubpid, NEW.pid, NEW.genericname1, NEW.genericval1, NEW.genericname2, NEW.genericval2, NEW.hipaa_mail, NEW.hipaa_voice, NEW.hipaa_notice, NEW.hipaa_message, NEW.hipaa_allowsms, NEW.hipaa_allowemail, NEW.squad, NEW.fitness, NEW.referral_source, NEW.usertext1, NEW.usertext2, NEW.usertext3, NEW.usertext4, NEW.usertext5, NEW.usertext6, NEW.usertext7, NEW.usertext8, NEW.userlist1, NEW.userlist2, NEW.userlist3, NEW.userlist4, NEW.userlist5, NEW.userlist6, NEW.userlist7, NEW.pricelevel, NEW.regdate, NEW.contrastart, NEW.completed_ad, NEW.ad_reviewed, NEW.vfc, NEW.mothersname, NEW.guardiansname, NEW.allow_imm_reg_use, NEW.allow_imm_info_share, NEW.allow_health_info_ex, NEW.allow_patient_portal, NEW.deceased_date, NEW.deceased_reason, NEW.soap_import_status, NEW.cmsportal_login, NEW.care_team_provider, NEW.care_team_facility, NEW.care_team_status, NEW.county, NEW.industry, NEW.imm_reg_status, NEW.imm_reg_stat_effdate, NEW.publicity_code, NEW.publ_code_eff_date, NEW.protect_indicator, NEW.prot_indi_effdate, NEW.guardianrelationship, NEW.guardiansex, NEW.guardianaddress, NEW.guardiancity, NEW.guardianstate, NEW.guardianpostalcode, NEW.guardiancountry, NEW.guardianphone, NEW.guardianworkphone, NEW.guardianemail, NEW.sexual_orientation, NEW.gender_identity, NEW.birth_fname, NEW.birth_lname, NEW.birth_mname, NEW.dupscore, NEW.name_history, NEW.suffix, NEW.street_line_2, NEW.patient_groups, NEW.prevent_portal_apps, NEW.provider_since_date, NEW.created_by, NEW.updated_by, NEW.last_updated, NEW.interpreter_needed, NEW.preferred_name, NEW.nationality_country, NEW.tribal_affiliations, NEW.sex_identified, NEW.pronoun, NEW.advance_directive_user_authenticator, NEW.birth_sex);
END;

CREATE TRIGGER hearth_version_patient_data_update AFTER UPDATE ON patient_data BEGIN
    INSERT INTO patient_data_history (fhir_version, id, uuid, title, language, financial, fname, lname, mname, "DOB", street, postal_code, city, state, country_code, drivers_license, ss, occupation, phone_home, phone_biz, phone_contact, phone_cell, pharmacy_id, status, contact_relationship, "date", sex, referrer, "referrerID", "providerID", "ref_providerID", email, email_direct, ethnoracial, race, ethnicity, religion, interpreter, migrantseasonal, family_size, monthly_income, billing_note, homeless, financial_review, pubpid, pid, genericname1, genericval1, genericname2, genericval2, hipaa_mail, hipaa_voice, hipaa_notice, hipaa_message, hipaa_allowsms, hipaa_allowemail, squad, fitness, referral_source, usertext1, usertext2, usertext3, usertext4, usertext5, usertext6, usertext7, usertext8, userlist1, userlist2, userlist3, userlist4, userlist5, userlist6, userlist7, pricelevel, regdate, contrastart, completed_ad, ad_reviewed, vfc, mothersname, guardiansname, allow_imm_reg_use, allow_imm_info_share, allow_health_info_ex, allow_patient_portal, deceased_date, deceased_reason, soap_import_status, cmsportal_login, care_team_provider, care_team_facility, care_team_status, county, industry, imm_reg_status, imm_reg_stat_effdate, publicity_code, publ_code_eff_date, protect_indicator, prot_indi_effdate, guardianrelationship, guardiansex, guardianaddress, guardiancity, guardianstate, guardianpostalcode, guardiancountry, guardianphone, guardianworkphone, guardianemail, sexual_orientation, gender_identity, birth_fname, birth_lname, birth_mname, dupscore, name_history, suffix, street_line_2, patient_groups, prevent_portal_apps, provider_since_date, created_by, updated_by, last_updated, interpreter_needed, preferred_name, nationality_country, tribal_affiliations, sex_identified, pronoun, advance_directive_user_authenticator, birth_sex)
    VALUES ((SELECT COALESCE(MAX(h.fhir_version), 0) + 1 FROM patient_data_history h WHERE h.id = NEW.id), NEW.id, NEW.uuid, NEW.title, NEW.language, NEW.financial, NEW.fname, NEW.lname, NEW.mname, NEW."DOB", NEW.street, NEW.postal_code, NEW.city, NEW.state, NEW.country_code, NEW.drivers_license, NEW.ss, NEW.occupation, NEW.phone_home, NEW.phone_biz, NEW.phone_contact, NEW.phone_cell, NEW.pharmacy_id, NEW.status, NEW.contact_relationship, NEW."date", NEW.sex, NEW.referrer, NEW."referrerID", NEW."providerID", NEW."ref_providerID", NEW.email, NEW.email_direct, NEW.ethnoracial, NEW.race, NEW.ethnicity, NEW.religion, NEW.interpreter, NEW.migrantseasonal, NEW.family_size, NEW.monthly_income, NEW.billing_note, NEW.homeless, NEW.financial_review, NEW.pubpid, NEW.pid, NEW.genericname1, NEW.genericval1, NEW.genericname2, NEW.genericval2, NEW.hipaa_mail, NEW.hipaa_voice, NEW.hipaa_notice, NEW.hipaa_message, NEW.hipaa_allowsms, NEW.hipaa_allowemail, NEW.squad, NEW.fitness, NEW.referral_source, NEW.usertext1, NEW.usertext2, NEW.usertext3, NEW.usertext4, NEW.usertext5, NEW.usertext6, NEW.usertext7, NEW.usertext8, NEW.userlist1, NEW.userlist2, NEW.userlist3, NEW.userlist4, NEW.userlist5, NEW.userlist6, NEW.userlist7, NEW.pricelevel, NEW.regdate, NEW.contrastart, NEW.completed_ad, NEW.ad_reviewed, NEW.vfc, NEW.mothersname, NEW.guardiansname, NEW.allow_imm_reg_use, NEW.allow_imm_info_share, NEW.allow_health_info_ex, NEW.allow_patient_portal, NEW.deceased_date, NEW.deceased_reason, NEW.soap_import_status, NEW.cmsportal_login, NEW.care_team_provider, NEW.care_team_facility, NEW.care_team_status, NEW.county, NEW.industry, NEW.imm_reg_status, NEW.imm_reg_stat_effdate, NEW.publicity_code, NEW.publ_code_eff_date, NEW.protect_indicator, NEW.prot_indi_effdate, NEW.guardianrelationship, NEW.guardiansex, NEW.guardianaddress, NEW.guardiancity, NEW.guardianstate, NEW.guardianpostalcode, NEW.guardiancountry, NEW.guardianphone, NEW.guardianworkphone, NEW.guardianemail, NEW.sexual_orientation, NEW.gender_identity, NEW.birth_fname, NEW.birth_lname, NEW.birth_mname, NEW.dupscore, NEW.name_history, NEW.suffix, NEW.street_line_2, NEW.patient_groups, NEW.prevent_portal_apps, NEW.provider_since_date, NEW.created_by, NEW.updated_by, NEW.last_updated, NEW.interpreter_needed, NEW.preferred_name, NEW.nationality_country, NEW.tribal_affiliations, NEW.sex_identified, NEW.pronoun, NEW.advance_directive_user_authenticator, NEW.birth_sex);
END;

CREATE TABLE users_history (
    fhir_version INTEGER NOT NULL,
    id INTEGER,
    uuid TEXT,
    username TEXT,
    title TEXT,
    fname TEXT,
    mname TEXT,
    lname TEXT,
    suffix TEXT,
    federaltaxid TEXT,
    federaldrugid TEXT,
    upin TEXT,
    facility TEXT,
    npi TEXT,
    specialty TEXT,
    billname TEXT,
    email TEXT,
    email_direct TEXT,
    url TEXT,
    assistant TEXT,
    organization TEXT,
    valedictory TEXT,
    street TEXT,
    streetb TEXT,
    city TEXT,
    state TEXT,
    zip TEXT,
    phone TEXT,
    fax TEXT,
    phonew1 TEXT,
    phonecell TEXT,
    notes TEXT,
    state_license_number TEXT,
    abook_type TEXT,
    info TEXT,
    facility_id INTEGER,
    active INTEGER,
    authorized INTEGER,
    role TEXT,
    last_updated TEXT,
    source INTEGER,
    see_auth INTEGER,
    google_signin_email TEXT,
    country_code TEXT,
    street2 TEXT,
    streetb2 TEXT,
    city2 TEXT,
    state2 TEXT,
    zip2 TEXT,
    country_code2 TEXT,
    phonew2 TEXT,
    cal_ui INTEGER,
    taxonomy TEXT,
    calendar INTEGER,
    default_warehouse TEXT,
    irnpool TEXT,
    weno_prov_id TEXT,
    newcrop_user_role TEXT,
    cpoe INTEGER,
    physician_type TEXT,
    main_menu_role TEXT,
    patient_menu_role TEXT,
    portal_user INTEGER,
    supervisor_id INTEGER,
    billing_facility TEXT,
    billing_facility_id INTEGER,
    date_created TEXT,
    PRIMARY KEY (id, fhir_version)
);

INSERT INTO users_history (fhir_version, id, uuid, username, title, fname, mname, lname, suffix, federaltaxid, federaldrugid, upin, facility, npi, specialty, billname, email, email_direct, url, assistant, organization, valedictory, street, streetb, city, state, zip, phone, fax, phonew1, phonecell, notes, state_license_number, abook_type, info, facility_id, active, authorized, role, last_updated, source, see_auth, google_signin_email, country_code, street2, streetb2, city2, state2, zip2, country_code2, phonew2, cal_ui, taxonomy, calendar, default_warehouse, irnpool, weno_prov_id, newcrop_user_role, cpoe, physician_type, main_menu_role, patient_menu_role, portal_user, supervisor_id, billing_facility, billing_facility_id, date_created)
    SELECT 1, id, uuid, username, title, fname, mname, lname, suffix, federaltaxid, federaldrugid, upin, facility, npi, specialty, billname, email, email_direct, url, assistant, organization, valedictory, street, streetb, city, state, zip, phone, fax, phonew1, phonecell, notes, state_license_number, abook_type, info, facility_id, active, authorized, role, last_updated, source, see_auth, google_signin_email, country_code, street2, streetb2, city2, state2, zip2, country_code2, phonew2, cal_ui, taxonomy, calendar, default_warehouse, irnpool, weno_prov_id, newcrop_user_role, cpoe, physician_type, main_menu_role, patient_menu_role, portal_user, supervisor_id, billing_facility, billing_facility_id, date_created FROM users;

CREATE TRIGGER hearth_version_users_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_history (fhir_version, id, uuid, username, title, fname, mname, lname, suffix, federaltaxid, federaldrugid, upin, facility, npi, specialty, billname, email, email_direct, url, assistant, organization, valedictory, street, streetb, city, state, zip, phone, fax, phonew1, phonecell, notes, state_license_number, abook_type, info, facility_id, active, authorized, role, last_updated, source, see_auth, google_signin_email, country_code, street2, streetb2, city2, state2, zip2, country_code2, phonew2, cal_ui, taxonomy, calendar, default_warehouse, irnpool, weno_prov_id, newcrop_user_role, cpoe, physician_type, main_menu_role, patient_menu_role, portal_user, supervisor_id, billing_facility, billing_facility_id, date_created)
    VALUES (1, NEW.id, NEW.uuid, NEW.username, NEW.title, NEW.fname, NEW.mname, NEW.lname, NEW.suffix, NEW.federaltaxid, NEW.federaldrugid, NEW.upin, NEW.facility, NEW.npi, NEW.specialty, NEW.billname, NEW.email, NEW.email_direct, NEW.url, NEW.assistant, NEW.organization, NEW.valedictory, NEW.street, NEW.streetb, NEW.city, NEW.state, NEW.zip, NEW.phone, NEW.fax, NEW.phonew1, NEW.phonecell, NEW.notes, NEW.state_license_number, NEW.abook_type, NEW.info, NEW.facility_id, NEW.active, NEW.authorized, NEW.role, NEW.last_updated, NEW.source, NEW.see_auth, NEW.google_signin_email, NEW.country_code, NEW.street2, NEW.streetb2, NEW.city2, NEW.state2, NEW.zip2, NEW.country_code2, NEW.phonew2, NEW.cal_ui, NEW.taxonomy, NEW.calendar, NEW.default_warehouse, NEW.irnpool, NEW.weno_prov_id, NEW.newcrop_user_role, NEW.cpoe, NEW.physician_type, NEW.main_menu_role, NEW.patient_menu_role, NEW.portal_user, NEW.supervisor_id, NEW.billing_facility, NEW.billing_facility_id, NEW.date_created);
END;

CREATE TRIGGER hearth_version_users_update AFTER UPDATE ON users BEGIN
    INSERT INTO users_history (fhir_version, id, uuid, username, title, fname, mname, lname, suffix, federaltaxid, federaldrugid, upin, facility, npi, specialty, billname, email, email_direct, url, assistant, organization, valedictory, street, streetb, city, state, zip, phone, fax, phonew1, phonecell, notes, state_license_number, abook_type, info, facility_id, active, authorized, role, last_updated, source, see_auth, google_signin_email, country_code, street2, streetb2, city2, state2, zip2, country_code2, phonew2, cal_ui, taxonomy, calendar, default_warehouse, irnpool, weno_prov_id, newcrop_user_role, cpoe, physician_type, main_menu_role, patient_menu_role, portal_user, supervisor_id, billing_facility, billing_facility_id, date_created)
    VALUES ((SELECT COALESCE(MAX(h.fhir_version), 0) + 1 FROM users_history h WHERE h.id = NEW.id), NEW.id, NEW.uuid, NEW.username, NEW.title, NEW.fname, NEW.mname, NEW.lname, NEW.suffix, NEW.federaltaxid, NEW.federaldrugid, NEW.upin, NEW.facility, NEW.npi, NEW.specialty, NEW.billname, NEW.email, NEW.email_direct, NEW.url, NEW.assistant, NEW.organization, NEW.valedictory, NEW.street, NEW.streetb, NEW.city, NEW.state, NEW.zip, NEW.phone, NEW.fax, NEW.phonew1, NEW.phonecell, NEW.notes, NEW.state_license_number, NEW.abook_type, NEW.info, NEW.facility_id, NEW.active, NEW.authorized, NEW.role, NEW.last_updated, NEW.source, NEW.see_auth, NEW.google_signin_email, NEW.country_code, NEW.street2, NEW.streetb2, NEW.city2, NEW.state2, NEW.zip2, NEW.country_code2, NEW.phonew2, NEW.cal_ui, NEW.taxonomy, NEW.calendar, NEW.default_warehouse, NEW.irnpool, NEW.weno_prov_id, NEW.newcrop_user_role, NEW.cpoe, NEW.physician_type, NEW.main_menu_role, NEW.patient_menu_role, NEW.portal_user, NEW.supervisor_id, NEW.billing_facility, NEW.billing_facility_id, NEW.date_created);
END;

CREATE TABLE facility_history (
    fhir_version INTEGER NOT NULL,
    id INTEGER,
    uuid TEXT,
    name TEXT,
    phone TEXT,
    fax TEXT,
    street TEXT,
    city TEXT,
    state TEXT,
    postal_code TEXT,
    country_code TEXT,
    federal_ein TEXT,
    website TEXT,
    email TEXT,
    service_location INTEGER,
    billing_location INTEGER,
    accepts_assignment INTEGER,
    pos_code INTEGER,
    x12_sender_id TEXT,
    attn TEXT,
    domain_identifier TEXT,
    facility_npi TEXT,
    facility_taxonomy TEXT,
    tax_id_type TEXT,
    color TEXT,
    primary_business_entity INTEGER,
    facility_code TEXT,
    extra_validation INTEGER,
    mail_street TEXT,
    mail_street2 TEXT,
    mail_city TEXT,
    mail_state TEXT,
    mail_zip TEXT,
    oid TEXT,
    iban TEXT,
    info TEXT,
    inactive INTEGER,
    last_updated TEXT,
    weno_id TEXT,
    date_created TEXT,
    organization_type TEXT,
    PRIMARY KEY (id, fhir_version)
);

INSERT INTO facility_history (fhir_version, id, uuid, name, phone, fax, street, city, state, postal_code, country_code, federal_ein, website, email, service_location, billing_location, accepts_assignment, pos_code, x12_sender_id, attn, domain_identifier, facility_npi, facility_taxonomy, tax_id_type, color, primary_business_entity, facility_code, extra_validation, mail_street, mail_street2, mail_city, mail_state, mail_zip, oid, iban, info, inactive, last_updated, weno_id, date_created, organization_type)
    SELECT 1, id, uuid, name, phone, fax, street, city, state, postal_code, country_code, federal_ein, website, email, service_location, billing_location, accepts_assignment, pos_code, x12_sender_id, attn, domain_identifier, facility_npi, facility_taxonomy, tax_id_type, color, primary_business_entity, facility_code, extra_validation, mail_street, mail_street2, mail_city, mail_state, mail_zip, oid, iban, info, inactive, last_updated, weno_id, date_created, organization_type FROM facility;

CREATE TRIGGER hearth_version_facility_insert AFTER INSERT ON facility BEGIN
    INSERT INTO facility_history (fhir_version, id, uuid, name, phone, fax, street, city, state, postal_code, country_code, federal_ein, website, email, service_location, billing_location, accepts_assignment, pos_code, x12_sender_id, attn, domain_identifier, facility_npi, facility_taxonomy, tax_id_type, color, primary_business_entity, facility_code, extra_validation, mail_street, mail_street2, mail_city, mail_state, mail_zip, oid, iban, info, inactive, last_updated, weno_id, date_created, organization_type)
    VALUES (1, NEW.id, NEW.uuid, NEW.name, NEW.phone, NEW.fax, NEW.street, NEW.city, NEW.state, NEW.postal_code, NEW.country_code, NEW.federal_ein, NEW.website, NEW.email, NEW.service_location, NEW.billing_location, NEW.accepts_assignment, NEW.pos_code, NEW.x12_sender_id, NEW.attn, NEW.domain_identifier, NEW.facility_npi, NEW.facility_taxonomy, NEW.tax_id_type, NEW.color, NEW.primary_business_entity, NEW.facility_code, NEW.extra_validation, NEW.mail_street, NEW.mail_street2, NEW.mail_city, NEW.mail_state, NEW.mail_zip, NEW.oid, NEW.iban, NEW.info, NEW.inactive, NEW.last_updated, NEW.weno_id, NEW.date_created, NEW.organization_type);
END;

CREATE TRIGGER hearth_version_facility_update AFTER UPDATE ON facility BEGIN
    INSERT INTO facility_history (fhir_version, id, uuid, name, phone, fax, street, city, state, postal_code, country_code, federal_ein, website, email, service_location, billing_location, accepts_assignment, pos_code, x12_sender_id, attn, domain_identifier, facility_npi, facility_taxonomy, tax_id_type, color, primary_business_entity, facility_code, extra_validation, mail_street, mail_street2, mail_city, mail_state, mail_zip, oid, iban, info, inactive, last_updated, weno_id, date_created, organization_type)
    VALUES ((SELECT COALESCE(MAX(h.fhir_version), 0) + 1 FROM facility_history h WHERE h.id = NEW.id), NEW.id, NEW.uuid, NEW.name, NEW.phone, NEW.fax, NEW.street, NEW.city, NEW.state, NEW.postal_code, NEW.country_code, NEW.federal_ein, NEW.website, NEW.email, NEW.service_location, NEW.billing_location, NEW.accepts_assignment, NEW.pos_code, NEW.x12_sender_id, NEW.attn, NEW.domain_identifier, NEW.facility_npi, NEW.facility_taxonomy, NEW.tax_id_type, NEW.color, NEW.primary_business_entity, NEW.facility_code, NEW.extra_validation, NEW.mail_street, NEW.mail_street2, NEW.mail_city, NEW.mail_state, NEW.mail_zip, NEW.oid, NEW.iban, NEW.info, NEW.inactive, NEW.last_updated, NEW.weno_id, NEW.date_created, NEW.organization_type);
END;

CREATE TABLE form_encounter_history (
    fhir_version INTEGER NOT NULL,
    id INTEGER,
    uuid TEXT,
    "date" TEXT,
    reason TEXT,
    facility TEXT,
    facility_id INTEGER,
    pid INTEGER,
    encounter INTEGER,
    onset_date TEXT,
    sensitivity TEXT,
    billing_note TEXT,
    pc_catid INTEGER,
    last_level_billed INTEGER,
    last_level_closed INTEGER,
    last_stmt_date TEXT,
    stmt_count INTEGER,
    provider_id INTEGER,
    supervisor_id INTEGER,
    invoice_refno TEXT,
    referral_source TEXT,
    billing_facility INTEGER,
    external_id TEXT,
    pos_code INTEGER,
    parent_encounter_id INTEGER,
    class_code TEXT,
    discharge_disposition TEXT,
    referring_provider_id INTEGER,
    ordering_provider_id INTEGER,
    encounter_type_code TEXT,
    encounter_type_description TEXT,
    in_collection INTEGER,
    date_end TEXT,
    last_update TEXT,
    PRIMARY KEY (id, fhir_version)
);

INSERT INTO form_encounter_history (fhir_version, id, uuid, "date", reason, facility, facility_id, pid, encounter, onset_date, sensitivity, billing_note, pc_catid, last_level_billed, last_level_closed, last_stmt_date, stmt_count, provider_id, supervisor_id, invoice_refno, referral_source, billing_facility, external_id, pos_code, parent_encounter_id, class_code, discharge_disposition, referring_provider_id, ordering_provider_id, encounter_type_code, encounter_type_description, in_collection, date_end, last_update)
    SELECT 1, id, uuid, "date", reason, facility, facility_id, pid, encounter, onset_date, sensitivity, billing_note, pc_catid, last_level_billed, last_level_closed, last_stmt_date, stmt_count, provider_id, supervisor_id, invoice_refno, referral_source, billing_facility, external_id, pos_code, parent_encounter_id, class_code, discharge_disposition, referring_provider_id, ordering_provider_id, encounter_type_code, encounter_type_description, in_collection, date_end, last_update FROM form_encounter;

CREATE TRIGGER hearth_version_form_encounter_insert AFTER INSERT ON form_encounter BEGIN
    INSERT INTO form_encounter_history (fhir_version, id, uuid, "date", reason, facility, facility_id, pid, encounter, onset_date, sensitivity, billing_note, pc_catid, last_level_billed, last_level_closed, last_stmt_date, stmt_count, provider_id, supervisor_id, invoice_refno, referral_source, billing_facility, external_id, pos_code, parent_encounter_id, class_code, discharge_disposition, referring_provider_id, ordering_provider_id, encounter_type_code, encounter_type_description, in_collection, date_end, last_update)
    VALUES (1, NEW.id, NEW.uuid, NEW."date", NEW.reason, NEW.facility, NEW.facility_id, NEW.pid, NEW.encounter, NEW.onset_date, NEW.sensitivity, NEW.billing_note, NEW.pc_catid, NEW.last_level_billed, NEW.last_level_closed, NEW.last_stmt_date, NEW.stmt_count, NEW.provider_id, NEW.supervisor_id, NEW.invoice_refno, NEW.referral_source, NEW.billing_facility, NEW.external_id, NEW.pos_code, NEW.parent_encounter_id, NEW.class_code, NEW.discharge_disposition, NEW.referring_provider_id, NEW.ordering_provider_id, NEW.encounter_type_code, NEW.encounter_type_description, NEW.in_collection, NEW.date_end, NEW.last_update);
END;

CREATE TRIGGER hearth_version_form_encounter_update AFTER UPDATE ON form_encounter BEGIN
    INSERT INTO form_encounter_history (fhir_version, id, uuid, "date", reason, facility, facility_id, pid, encounter, onset_date, sensitivity, billing_note, pc_catid, last_level_billed, last_level_closed, last_stmt_date, stmt_count, provider_id, supervisor_id, invoice_refno, referral_source, billing_facility, external_id, pos_code, parent_encounter_id, class_code, discharge_disposition, referring_provider_id, ordering_provider_id, encounter_type_code, encounter_type_description, in_collection, date_end, last_update)
    VALUES ((SELECT COALESCE(MAX(h.fhir_version), 0) + 1 FROM form_encounter_history h WHERE h.id = NEW.id), NEW.id, NEW.uuid, NEW."date", NEW.reason, NEW.facility, NEW.facility_id, NEW.pid, NEW.encounter, NEW.onset_date, NEW.sensitivity, NEW.billing_note, NEW.pc_catid, NEW.last_level_billed, NEW.last_level_closed, NEW.last_stmt_date, NEW.stmt_count, NEW.provider_id, NEW.supervisor_id, NEW.invoice_refno, NEW.referral_source, NEW.billing_facility, NEW.external_id, NEW.pos_code, NEW.parent_encounter_id, NEW.class_code, NEW.discharge_disposition, NEW.referring_provider_id, NEW.ordering_provider_id, NEW.encounter_type_code, NEW.encounter_type_description, NEW.in_collection, NEW.date_end, NEW.last_update);
END;

CREATE TABLE lists_history (
    fhir_version INTEGER NOT NULL,
    id INTEGER,
    uuid TEXT,
    "date" TEXT,
    "type" TEXT,
    subtype TEXT,
    title TEXT,
    udi TEXT,
    udi_data TEXT,
    begdate TEXT,
    enddate TEXT,
    returndate TEXT,
    occurrence INTEGER,
    classification INTEGER,
    referredby TEXT,
    extrainfo TEXT,
    diagnosis TEXT,
    activity INTEGER,
    comments TEXT,
    pid INTEGER,
    "user" TEXT,
    groupname TEXT,
    outcome INTEGER,
    destination TEXT,
    reinjury_id INTEGER,
    injury_part TEXT,
    injury_type TEXT,
    injury_grade TEXT,
    reaction TEXT,
    verification TEXT,
    external_allergyid TEXT,
    erx_source TEXT,
    erx_uploaded TEXT,
    modifydate TEXT,
    severity_al TEXT,
    external_id TEXT,
    list_option_id TEXT,
    PRIMARY KEY (id, fhir_version)
);

INSERT INTO lists_history (fhir_version, id, uuid, "date", "type", subtype, title, udi, udi_data, begdate, enddate, returndate, occurrence, classification, referredby, extrainfo, diagnosis, activity, comments, pid, "user", groupname, outcome, destination, reinjury_id, injury_part, injury_type, injury_grade, reaction, verification, external_allergyid, erx_source, erx_uploaded, modifydate, severity_al, external_id, list_option_id)
    SELECT 1, id, uuid, "date", "type", subtype, title, udi, udi_data, begdate, enddate, returndate, occurrence, classification, referredby, extrainfo, diagnosis, activity, comments, pid, "user", groupname, outcome, destination, reinjury_id, injury_part, injury_type, injury_grade, reaction, verification, external_allergyid, erx_source, erx_uploaded, modifydate, severity_al, external_id, list_option_id FROM lists;

CREATE TRIGGER hearth_version_lists_insert AFTER INSERT ON lists BEGIN
    INSERT INTO lists_history (fhir_version, id, uuid, "date", "type", subtype, title, udi, udi_data, begdate, enddate, returndate, occurrence, classification, referredby, extrainfo, diagnosis, activity, comments, pid, "user", groupname, outcome, destination, reinjury_id, injury_part, injury_type, injury_grade, reaction, verification, external_allergyid, erx_source, erx_uploaded, modifydate, severity_al, external_id, list_option_id)
    VALUES (1, NEW.id, NEW.uuid, NEW."date", NEW."type", NEW.subtype, NEW.title, NEW.udi, NEW.udi_data, NEW.begdate, NEW.enddate, NEW.returndate, NEW.occurrence, NEW.classification, NEW.referredby, NEW.extrainfo, NEW.diagnosis, NEW.activity, NEW.comments, NEW.pid, NEW."user", NEW.groupname, NEW.outcome, NEW.destination, NEW.reinjury_id, NEW.injury_part, NEW.injury_type, NEW.injury_grade, NEW.reaction, NEW.verification, NEW.external_allergyid, NEW.erx_source, NEW.erx_uploaded, NEW.modifydate, NEW.severity_al, NEW.external_id, NEW.list_option_id);
END;

CREATE TRIGGER hearth_version_lists_update AFTER UPDATE ON lists BEGIN
    INSERT INTO lists_history (fhir_version, id, uuid, "date", "type", subtype, title, udi, udi_data, begdate, enddate, returndate, occurrence, classification, referredby, extrainfo, diagnosis, activity, comments, pid, "user", groupname, outcome, destination, reinjury_id, injury_part, injury_type, injury_grade, reaction, verification, external_allergyid, erx_source, erx_uploaded, modifydate, severity_al, external_id, list_option_id)
    VALUES ((SELECT COALESCE(MAX(h.fhir_version), 0) + 1 FROM lists_history h WHERE h.id = NEW.id), NEW.id, NEW.uuid, NEW."date", NEW."type", NEW.subtype, NEW.title, NEW.udi, NEW.udi_data, NEW.begdate, NEW.enddate, NEW.returndate, NEW.occurrence, NEW.classification, NEW.referredby, NEW.extrainfo, NEW.diagnosis, NEW.activity, NEW.comments, NEW.pid, NEW."user", NEW.groupname, NEW.outcome, NEW.destination, NEW.reinjury_id, NEW.injury_part, NEW.injury_type, NEW.injury_grade, NEW.reaction, NEW.verification, NEW.external_allergyid, NEW.erx_source, NEW.erx_uploaded, NEW.modifydate, NEW.severity_al, NEW.external_id, NEW.list_option_id);
END;
