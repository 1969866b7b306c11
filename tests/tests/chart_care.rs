//! The chart's care records through the real server, on both databases: FHIR CarePlan,
//! Goal and CareTeam (US Core) over the care plan form and care teams, Device (US Core
//! Implantable Device) with its UDI read in each issuing agency's format, Questionnaire
//! and QuestionnaireResponse over the stored FHIR documents, ValueSet over OpenEMR's
//! lists; and the standard API's messages (`pnotes`) and transactions (`transactions` +
//! `lbt_data`) with their rules, writes and refusals. Every FHIR document received is
//! validated with `fhir.resources`; scopes, ACLs, the patient compartment, site
//! isolation and the OpenEMR compatibility setting are checked on each; a refused
//! request writes nothing. FHIR's care records have no write route (OpenEMR's are
//! read-only), so their rows are written in SQL, as OpenEMR's own screens write them.

use hearth_tests::fhir::{Documents, fhir, ids};
use hearth_tests::*;

const SCOPES: &str = "openid api:oemr api:fhir user/patient.crus user/practitioner.crus \
    user/facility.crus user/medical_problem.crus user/encounter.crus user/CarePlan.rs user/CareTeam.rs user/Goal.rs user/Device.rs \
    user/Questionnaire.rs user/QuestionnaireResponse.rs user/ValueSet.rs user/Provenance.rs \
    user/message.cud user/transaction.crus";

const PLAN_A: &str = "90cde167-0000-4000-8000-0000000000c1";
const PLAN_B: &str = "90cde167-0000-4000-8000-0000000000c2";
const GOAL_1: &str = "90cde167-0000-4000-8000-0000000000d1";
const GOAL_2: &str = "90cde167-0000-4000-8000-0000000000d2";
const STEP_1: &str = "90cde167-0000-4000-8000-0000000000d3";
const STEP_2: &str = "90cde167-0000-4000-8000-0000000000d4";
const GOAL_B: &str = "90cde167-0000-4000-8000-0000000000d5";
const TEAM_A: &str = "90cde167-0000-4000-8000-0000000000e1";
const TEAM_B: &str = "90cde167-0000-4000-8000-0000000000e2";
const GS1: &str = "90cde167-0000-4000-8000-0000000000f1";
const HIBCC: &str = "90cde167-0000-4000-8000-0000000000f2";
const ICCBBA: &str = "90cde167-0000-4000-8000-0000000000f3";
const REMOVED: &str = "90cde167-0000-4000-8000-0000000000f4";
const PHQ: &str = "90cde167-0000-4000-8000-0000000000a1";
const RESPONSE_A: &str = "90cde167-0000-4000-8000-0000000000a2";
const RESPONSE_B: &str = "90cde167-0000-4000-8000-0000000000a3";
const MISSING: &str = "90cde167-0000-4000-8000-00000000dead";

async fn sql(app: &TestApp, site: &str, statement: String) {
    let site = app.state.sites.get(site).await.unwrap();
    hearth::on_db!(&site.db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(pool)
            .await
            .expect(&statement);
    });
}

/// Rows of a query built at run time.
async fn rows(app: &TestApp, site: &str, statement: String) -> Vec<Value> {
    app.rows(site, Box::leak(statement.into_boxed_str())).await
}

/// The chart of patients A and B: care plans, goals, care teams, devices and PHQ-2
/// responses. Answers (pid A, puuid A, pid B, puuid B, practitioner uuid).
async fn chart(app: &TestApp, token: &str) -> (i64, String, i64, String, String) {
    let practitioner = app
        .post(
            &app.api("default", "/api/practitioner"),
            token,
            json!({"fname": "Gregory", "lname": "House", "npi": "1234567890"}),
        )
        .await;
    assert_eq!(practitioner.status, 201, "{}", practitioner.text);
    let doctor = practitioner.json["data"]["id"].as_i64().unwrap();
    let doctor_uuid = practitioner.json["data"]["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let facility = app
        .post(
            &app.api("default", "/api/facility"),
            token,
            json!({"name": "Main Clinic", "facility_npi": "1234567893"}),
        )
        .await;
    assert_eq!(facility.status, 201, "{}", facility.text);
    let facility = facility.json["data"]["id"].as_i64().unwrap();
    let (pid_a, puuid_a) = app.create_patient("default", token, "Ann", "Adams").await;
    let (pid_b, puuid_b) = app.create_patient("default", token, "Bob", "Baker").await;
    let encounter = app
        .post(
            &app.api("default", &format!("/api/patient/{puuid_a}/encounter")),
            token,
            json!({"pc_catid": "5", "class_code": "AMB"}),
        )
        .await;
    assert_eq!(encounter.status, 201, "{}", encounter.text);
    let eid = encounter.json["data"]["eid"].as_i64().unwrap();
    let statements = [
        // Patient A's care plan (form 71) in the encounter: two goals, two steps; B's
        // plan (form 72) was deleted.
        format!(
            "INSERT INTO forms (uuid, date, encounter, form_name, form_id, pid, \"user\", groupname, \
             authorized, deleted, formdir, provider_id) VALUES \
             ('{PLAN_A}', '2024-04-01 09:00:00', {eid}, 'Care Plan', 71, {pid_a}, 'admin', 'Default', 1, 0, 'care_plan', {doctor}), \
             ('{PLAN_B}', '2024-05-01 09:00:00', 0, 'Care Plan', 72, {pid_b}, 'admin', 'Default', 1, 1, 'care_plan', 0)"
        ),
        format!(
            "INSERT INTO form_care_plan (id, uuid, date, pid, encounter, \"user\", groupname, activity, \
             code, codetext, description, care_plan_type, date_end, note_related_to) VALUES \
             (71, '{GOAL_1}', '2024-04-01 09:00:00', {pid_a}, {eid}, 'admin', 'Default', 1, '', '', 'Lose 10 pounds in 6 months', 'goal', '2024-10-01 00:00:00', 'Agreed with the patient'), \
             (71, '{GOAL_2}', '2024-04-01 09:00:00', {pid_a}, {eid}, 'admin', 'Default', 0, '', '', 'Quit smoking', 'goal', '2025-01-15 00:00:00', ''), \
             (71, '{STEP_1}', '2024-04-01 09:00:00', {pid_a}, {eid}, 'admin', 'Default', 1, 'SNOMED-CT:11816003', 'Diet education', 'Diet education', 'intervention', NULL, ''), \
             (71, '{STEP_2}', '2024-04-01 09:00:00', {pid_a}, {eid}, 'admin', 'Default', 1, 'SNOMED-CT:229065009', 'Exercise therapy', 'Exercise <3x> a week & log it', 'plan_of_care', '2024-05-01 00:00:00', ''), \
             (72, '{GOAL_B}', '2024-05-01 09:00:00', {pid_b}, 0, 'admin', 'Default', 1, '', '', 'Walk daily', 'goal', NULL, '')"
        ),
        format!(
            "INSERT INTO care_teams (id, uuid, pid, status, team_name, note, date_created, date_updated) VALUES \
             (81, '{TEAM_A}', {pid_a}, 'active', 'Primary care team', 'Weekly huddle', '2024-02-01 08:00:00', '2024-03-01 08:00:00'), \
             (82, '{TEAM_B}', {pid_b}, 'inactive', 'Old team', '', '2023-02-01 08:00:00', NULL)"
        ),
        format!(
            "INSERT INTO care_team_member (care_team_id, user_id, role, facility_id, provider_since, status) VALUES \
             (81, {doctor}, 'primary_care_provider', {facility}, '2024-02-01', 'active'), \
             (81, NULL, 'caregiver', NULL, NULL, 'active')"
        ),
        format!(
            "INSERT INTO lists (uuid, date, modifydate, type, title, udi, begdate, enddate, activity, \
             diagnosis, comments, pid) VALUES \
             ('{GS1}', '2024-01-10 10:00:00', '2024-01-10 10:00:00', 'medical_device', 'Cardiac pacemaker', \
              '(01)00844588003288(11)141231(17)291120(10)7654321D(21)10987654d321', '2024-01-10 10:00:00', NULL, 1, \
              'SNOMED-CT:14106009', 'Dual chamber', {pid_a}), \
             ('{HIBCC}', '2024-01-11 10:00:00', '2024-01-11 10:00:00', 'medical_device', 'Knee prosthesis', \
              '+B066000325011NS1/$$420020216LOT123456789012345/SXYZ456789012345678/16D20130202C', '2024-01-11 10:00:00', NULL, 1, '', NULL, {pid_a}), \
             ('{ICCBBA}', '2024-01-12 10:00:00', '2024-01-12 10:00:00', 'medical_device', 'Tissue graft', \
              '=/A9999XYZ100T0944=,000025=A99971312345600=>014032=}}013032&,1000000000000XYZ123', '2024-01-12 10:00:00', NULL, 1, '', NULL, {pid_b}), \
             ('{REMOVED}', '2020-01-12 10:00:00', '2021-01-12 10:00:00', 'medical_device', 'Insulin pump', \
              NULL, '2020-01-12 10:00:00', '2021-01-12 10:00:00', 1, '', NULL, {pid_a})"
        ),
        format!(
            "INSERT INTO questionnaire_repository (id, uuid, questionnaire_id, name, type, status, source_url, \
             questionnaire, created_date, modified_date) VALUES (91, '{PHQ}', '55757-9', 'PHQ-2 quick depression assessment', \
             'Questionnaire', 'active', 'http://loinc.org/q/55757-9', \
             '{{\"resourceType\":\"Questionnaire\",\"url\":\"http://loinc.org/q/55757-9\",\"name\":\"PHQ2\",\"status\":\"active\",\"item\":[{{\"linkId\":\"/44250-9\",\"text\":\"Little interest or pleasure in doing things\",\"type\":\"choice\"}}]}}', \
             '2024-01-01 00:00:00', '2024-01-02 00:00:00')"
        ),
        format!(
            "INSERT INTO questionnaire_response (uuid, questionnaire_foreign_id, questionnaire_id, patient_id, \
             encounter, create_time, last_updated, status, questionnaire_response) VALUES \
             ('{RESPONSE_A}', 91, '55757-9', {pid_a}, {eid}, '2024-04-01 09:30:00', '2024-04-01 09:30:00', 'completed', \
              '{{\"resourceType\":\"QuestionnaireResponse\",\"questionnaire\":\"http://loinc.org/q/55757-9\",\"status\":\"completed\",\"item\":[{{\"linkId\":\"/44250-9\",\"answer\":[{{\"valueCoding\":{{\"system\":\"http://loinc.org\",\"code\":\"LA6569-3\",\"display\":\"Several days\"}}}}]}}]}}'), \
             ('{RESPONSE_B}', 91, '55757-9', {pid_b}, NULL, '2024-06-01 09:30:00', NULL, 'in-progress', '{{}}')"
        ),
    ];
    for statement in statements {
        sql(app, "default", statement).await;
    }
    (pid_a, puuid_a, pid_b, puuid_b, doctor_uuid)
}

/// The production identifiers a UDI gives: lot, serial, manufacture and expiry dates,
/// distinct identifier.
type Udi = [Option<&'static str>; 5];

/// A message request: method, path, body, status, the field and rule of a refusal.
type MessageCase = (
    reqwest::Method,
    String,
    Option<Value>,
    u16,
    Option<(&'static str, &'static str)>,
);

/// A transaction request: method, path, body, status, the refused field.
type TransactionCase = (reqwest::Method, String, Value, u16, Option<&'static str>);

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn owned(ids: &[&str]) -> Vec<String> {
    sorted(ids.iter().map(|s| (*s).to_owned()).collect())
}

both! {
    async fn fhir_serves_care_plans_goals_and_care_teams(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (_, puuid_a, _, puuid_b, doctor) = chart(app, &token).await;
        let mut docs = Documents::default();
        let get = |path: String, token: String| async move {
            app.get(&fhir(app, "default", &path), &token).await
        };

        // A care plan: the form's activities, its goals, the US Core category.
        let reply = get(format!("/CarePlan/{PLAN_A}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let plan = docs.keep(&reply);
        assert_eq!(plan["status"], "active");
        assert_eq!(plan["intent"], "plan");
        assert_eq!(plan["category"][0]["coding"][0], json!({"system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category", "code": "assess-plan", "display": "Assessment and Plan of Treatment"}));
        assert_eq!(plan["subject"]["reference"], json!(format!("Patient/{puuid_a}")));
        assert!(plan["encounter"]["reference"].as_str().unwrap().starts_with("Encounter/"));
        assert_eq!(plan["author"]["reference"], json!(format!("Practitioner/{doctor}")));
        let goals: Vec<&str> = plan["goal"].as_array().unwrap().iter().map(|g| g["reference"].as_str().unwrap()).collect();
        assert_eq!(goals, [format!("Goal/{GOAL_1}"), format!("Goal/{GOAL_2}")]);
        let activities = plan["activity"].as_array().unwrap();
        assert_eq!(activities.len(), 2);
        assert_eq!(activities[0]["detail"]["code"]["coding"][0], json!({"system": "http://snomed.info/sct", "code": "11816003"}));
        assert_eq!(activities[0]["detail"]["status"], "in-progress");
        assert_eq!(activities[1]["detail"]["status"], "completed", "its end has passed");
        assert_eq!(plan["text"]["status"], "generated");
        assert!(plan["text"]["div"].as_str().unwrap().contains("Exercise &lt;3x&gt; a week &amp; log it"), "{}", plan["text"]);
        assert!(plan["meta"]["profile"].as_array().unwrap().iter().any(|p| p == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan|3.1.1"));
        let revoked = docs.keep(&get(format!("/CarePlan/{PLAN_B}"), token.clone()).await);
        assert_eq!(revoked["status"], "revoked");

        // A goal: its description, lifecycle and target date.
        let goal = docs.keep(&get(format!("/Goal/{GOAL_1}"), token.clone()).await);
        assert_eq!(goal["lifecycleStatus"], "active");
        assert_eq!(goal["description"]["text"], "Lose 10 pounds in 6 months");
        assert_eq!(goal["target"][0]["dueDate"], "2024-10-01");
        assert_eq!(goal["startDate"], "2024-04-01");
        assert_eq!(goal["note"][0]["text"], "Agreed with the patient");
        let cancelled = docs.keep(&get(format!("/Goal/{GOAL_2}"), token.clone()).await);
        assert_eq!(cancelled["lifecycleStatus"], "cancelled");
        assert_eq!(get(format!("/Goal/{STEP_1}"), token.clone()).await.status, 404, "an intervention is no goal");

        // A care team: its members with their SNOMED CT roles.
        let team = docs.keep(&get(format!("/CareTeam/{TEAM_A}"), token.clone()).await);
        assert_eq!(team["status"], "active");
        assert_eq!(team["name"], "Primary care team");
        let members = team["participant"].as_array().unwrap();
        assert_eq!(members.len(), 1, "a member who is no user has no reference: {team}");
        assert_eq!(members[0]["member"]["reference"], json!(format!("Practitioner/{doctor}")));
        assert_eq!(members[0]["role"][0]["coding"][0]["code"], "446050000");
        assert!(members[0]["onBehalfOf"]["reference"].as_str().unwrap().starts_with("Organization/"));
        assert_eq!(members[0]["period"]["start"], "2024-02-01");
        let empty = docs.keep(&get(format!("/CareTeam/{TEAM_B}"), token.clone()).await);
        assert_eq!(empty["status"], "inactive");
        assert_eq!(empty["participant"][0]["role"][0]["coding"][0]["code"], "unknown");

        // Searches, table-driven.
        for (path, expected) in [
            (format!("/CarePlan?patient={puuid_a}"), owned(&[PLAN_A])),
            ("/CarePlan?category=http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan".to_owned(), owned(&[PLAN_A, PLAN_B])),
            ("/CarePlan?category=assess-plan&status=revoked".to_owned(), owned(&[PLAN_B])),
            ("/CarePlan?category=http://example.org|assess-plan".to_owned(), vec![]),
            (format!("/CarePlan?_id={PLAN_B}"), owned(&[PLAN_B])),
            (format!("/Goal?patient={puuid_a}"), owned(&[GOAL_1, GOAL_2])),
            (format!("/Goal?patient=Patient/{puuid_a}&lifecycle-status=active"), owned(&[GOAL_1])),
            ("/Goal?target-date=lt2024-12-31".to_owned(), owned(&[GOAL_1])),
            ("/Goal?description:text=walk".to_owned(), owned(&[GOAL_B])),
            (format!("/CareTeam?patient={puuid_b}"), owned(&[TEAM_B])),
            ("/CareTeam?status=active".to_owned(), owned(&[TEAM_A])),
        ] {
            let reply = get(path.clone(), token.clone()).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{path}");
        }
        for path in ["/Goal?target-date=someday", "/CarePlan?date=someday"] {
            let reply = app.send(reqwest::Method::GET, &fhir(app, "default", path), Some(&token), None).await;
            assert_eq!(reply.status, 400, "{path}: {}", reply.text);
        }
        for path in [format!("/CarePlan/{MISSING}"), format!("/Goal/{MISSING}"), format!("/CareTeam/{MISSING}"), "/CareTeam/nope".to_owned()] {
            assert_eq!(get(path.clone(), token.clone()).await.status, 404, "{path}");
        }

        // Provenance of each.
        for (kind, id) in [("CarePlan", PLAN_A), ("Goal", GOAL_1), ("CareTeam", TEAM_A)] {
            let reply = get(format!("/Provenance/{id}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(docs.keep(&reply)["target"][0]["reference"], json!(format!("{kind}/{id}")));
            let reply = get(format!("/{kind}?patient={puuid_a}&_revinclude=Provenance:target"), token.clone()).await;
            let bundle = docs.keep(&reply);
            let included = bundle["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").count();
            let matched = bundle["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "match").count();
            assert_eq!(included, matched, "{kind}: {}", reply.text);
        }

        // The patient compartment, scopes, ACLs and site isolation.
        let bound = app.patient_token("default", &puuid_b, "openid api:fhir patient/CarePlan.rs patient/Goal.rs patient/CareTeam.rs").await;
        for (path, expected) in [("/CarePlan", owned(&[PLAN_B])), ("/Goal", owned(&[GOAL_B])), ("/CareTeam", owned(&[TEAM_B]))] {
            let reply = app.get(&fhir(app, "default", path), &bound).await;
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{path}: {}", reply.text);
        }
        assert_eq!(app.get(&fhir(app, "default", &format!("/CarePlan/{PLAN_A}")), &bound).await.status, 404);
        let v1 = app.patient_token("default", &puuid_b, "openid api:fhir patient/Goal.read").await;
        assert_eq!(app.get(&fhir(app, "default", &format!("/Goal/{GOAL_B}")), &v1).await.status, 200);
        let none = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        for path in ["/CarePlan", "/Goal", "/CareTeam"] {
            assert_eq!(app.get(&fhir(app, "default", path), &none).await.status, 403, "{path}");
        }
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "default", "/CarePlan"), &front).await.status, 403, "front office has no patients/med");
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", &format!("/CarePlan/{PLAN_A}")), &second).await.status, 404);
        let reply = app.get(&fhir(app, "second", "/Goal"), &second).await;
        assert_eq!(docs.keep(&reply)["total"], 0);
        docs.validate();
    }

    async fn fhir_devices_read_each_agencys_udi(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (_, puuid_a, _, puuid_b, _) = chart(app, &token).await;
        let mut docs = Documents::default();
        let get = |path: String| {
            let token = token.clone();
            async move { app.get(&fhir(app, "default", &path), &token).await }
        };
        // (device, issuer, device identifier, [lot, serial, made, expires, distinct id])
        let table: [(&str, &str, &str, Udi); 3] = [
            (GS1, "http://hl7.org/fhir/NamingSystem/gs1-di", "00844588003288", [Some("7654321D"), Some("10987654d321"), Some("2014-12-31"), Some("2029-11-20"), None]),
            (HIBCC, "http://hl7.org/fhir/NamingSystem/hibcc-dI", "B066000325011NS1", [Some("LOT123456789012345"), Some("XYZ456789012345678"), Some("2013-02-02"), Some("2020-02-02"), None]),
            (ICCBBA, "http://hl7.org/fhir/NamingSystem/iccbba-other-di", "A9999XYZ100T0944", [Some("1000000000000XYZ123"), Some("000025"), Some("2013-02-01"), Some("2014-02-01"), Some("A999713123456")]),
        ];
        for (id, issuer, di, [lot, serial, made, expires, distinct]) in table {
            let reply = get(format!("/Device/{id}")).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let device = docs.keep(&reply);
            let carrier = &device["udiCarrier"][0];
            assert_eq!(carrier["issuer"], issuer, "{device}");
            assert_eq!(carrier["deviceIdentifier"], di, "{device}");
            assert_eq!(carrier["jurisdiction"], "http://hl7.org/fhir/NamingSystem/fda-udi");
            assert!(carrier["carrierHRF"].is_string());
            assert_eq!(device["lotNumber"].as_str(), lot, "{id}");
            assert_eq!(device["serialNumber"].as_str(), serial, "{id}");
            assert_eq!(device["manufactureDate"].as_str(), made, "{id}");
            assert_eq!(device["expirationDate"].as_str(), expires, "{id}");
            assert_eq!(device["distinctIdentifier"].as_str(), distinct, "{id}");
            assert_eq!(device["status"], "active");
            assert!(device["meta"]["profile"].as_array().unwrap().iter().any(|p| p == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-implantable-device|7.0.0"));
        }
        let pacemaker = docs.keep(&get(format!("/Device/{GS1}")).await);
        assert_eq!(pacemaker["type"]["coding"][0], json!({"system": "http://snomed.info/sct", "code": "14106009"}));
        assert_eq!(pacemaker["deviceName"][0], json!({"name": "Cardiac pacemaker", "type": "user-friendly-name"}));
        assert_eq!(pacemaker["patient"]["reference"], json!(format!("Patient/{puuid_a}")));
        let removed = docs.keep(&get(format!("/Device/{REMOVED}")).await);
        assert_eq!(removed["status"], "inactive");
        assert!(removed.get("udiCarrier").is_none());
        assert_eq!(removed["type"]["text"], "Insulin pump");

        for (path, expected) in [
            (format!("/Device?patient={puuid_a}"), owned(&[GS1, HIBCC, REMOVED])),
            (format!("/Device?patient={puuid_b}"), owned(&[ICCBBA])),
            ("/Device?type=knee".to_owned(), owned(&[HIBCC])),
            (format!("/Device?_id={ICCBBA},{GS1}"), owned(&[GS1, ICCBBA])),
        ] {
            let reply = get(path.clone()).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{path}");
        }
        // Other `lists` rows are no devices.
        let reply = app.post(&app.api("default", &format!("/api/patient/{puuid_a}/medical_problem")), &token, json!({"title": "Hypertension"})).await;
        let problem = reply.json["data"]["uuid"].as_str().unwrap_or(MISSING).to_owned();
        assert_eq!(get(format!("/Device/{problem}")).await.status, 404);
        let reply = get(format!("/Provenance/{GS1}")).await;
        assert_eq!(docs.keep(&reply)["target"][0]["reference"], json!(format!("Device/{GS1}")));

        let bound = app.patient_token("default", &puuid_b, "openid api:fhir patient/Device.rs").await;
        let reply = app.get(&fhir(app, "default", "/Device"), &bound).await;
        assert_eq!(sorted(ids(&docs.keep(&reply))), owned(&[ICCBBA]));
        assert_eq!(app.get(&fhir(app, "default", &format!("/Device/{GS1}")), &bound).await.status, 404);
        app.user("default", "nurse", "clinician").await;
        let clinician = app.user_token("default", "nurse", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "default", "/Device"), &clinician).await.status, 403, "OpenEMR's ACL admin/super");
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", &format!("/Device/{GS1}")), &second).await.status, 404);
        docs.validate();
    }

    async fn fhir_serves_questionnaires_responses_and_value_sets(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (_, puuid_a, _, puuid_b, _) = chart(app, &token).await;
        let mut docs = Documents::default();
        let get = |path: String| {
            let token = token.clone();
            async move { app.get(&fhir(app, "default", &path), &token).await }
        };

        let reply = get("/Questionnaire".to_owned()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let bundle = docs.keep(&reply);
        assert_eq!(ids(&bundle), [PHQ.to_owned()]);
        let questionnaire = &bundle["entry"][0]["resource"];
        assert_eq!(questionnaire["url"], "http://loinc.org/q/55757-9");
        assert_eq!(questionnaire["status"], "active");
        assert_eq!(questionnaire["item"][0]["linkId"], "/44250-9");
        for (path, expected) in [
            (format!("/Questionnaire?_id={PHQ}"), owned(&[PHQ])),
            ("/Questionnaire?name=phq".to_owned(), owned(&[PHQ])),
            ("/Questionnaire?_lastUpdated=gt2024-06-01".to_owned(), vec![]),
            (format!("/QuestionnaireResponse?patient={puuid_a}"), owned(&[RESPONSE_A])),
            ("/QuestionnaireResponse?status=in-progress".to_owned(), owned(&[RESPONSE_B])),
            ("/QuestionnaireResponse?authored=ge2024-05-01".to_owned(), owned(&[RESPONSE_B])),
        ] {
            let reply = get(path.clone()).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{path}");
        }
        let reply = get(format!("/QuestionnaireResponse/{RESPONSE_A}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let response = docs.keep(&reply);
        assert_eq!(response["questionnaire"], "http://loinc.org/q/55757-9");
        assert_eq!(response["status"], "completed");
        assert_eq!(response["subject"]["reference"], json!(format!("Patient/{puuid_a}")));
        assert_eq!(response["authored"], "2024-04-01T09:30:00Z");
        assert_eq!(response["item"][0]["answer"][0]["valueCoding"]["code"], "LA6569-3");
        assert!(response["encounter"]["reference"].as_str().unwrap().starts_with("Encounter/"));
        // A stored document without its questionnaire gets the repository's url.
        let draft = docs.keep(&get(format!("/QuestionnaireResponse/{RESPONSE_B}")).await);
        assert_eq!(draft["questionnaire"], "http://loinc.org/q/55757-9");
        assert_eq!(draft["status"], "in-progress");
        assert_eq!(get(format!("/QuestionnaireResponse/{MISSING}")).await.status, 404);
        // OpenEMR has no Questionnaire read, nor has Hearth.
        assert_eq!(get(format!("/Questionnaire/{PHQ}")).await.status, 404);

        // Value sets: OpenEMR's lists and the appointment categories.
        let reply = get("/ValueSet/Care-Team-Status".to_owned()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let statuses = docs.keep(&reply);
        assert_eq!(statuses["id"], "Care-Team-Status");
        assert_eq!(statuses["status"], "active");
        assert_eq!(statuses["title"], "Care Team Status");
        let codes: Vec<&str> = statuses["compose"]["include"][0]["concept"].as_array().unwrap().iter().map(|c| c["code"].as_str().unwrap()).collect();
        assert_eq!(codes, ["active", "inactive", "suspended", "proposed", "entered-in-error"]);
        let types = docs.keep(&get("/ValueSet/appointment-type".to_owned()).await);
        assert!(types["compose"]["include"][0]["concept"].as_array().unwrap().iter().any(|c| c["display"] == "Office Visit"), "{types}");
        for (path, expected) in [
            ("/ValueSet?_id=appointment-type".to_owned(), vec!["appointment-type".to_owned()]),
            ("/ValueSet?_id=Care-Team-Status,drug-route".to_owned(), vec!["Care-Team-Status".to_owned(), "drug-route".to_owned()]),
            ("/ValueSet?name=care team".to_owned(), vec!["Care-Team-Status".to_owned(), "care-team-roles".to_owned()]),
        ] {
            let reply = get(path.clone()).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), sorted(expected), "{path}");
        }
        let all = docs.keep(&get("/ValueSet?_count=5".to_owned()).await);
        assert!(all["total"].as_u64().unwrap() >= 10, "{all}");
        assert_eq!(all["entry"].as_array().unwrap().len(), 5);
        assert!(all["link"].as_array().unwrap().iter().any(|l| l["relation"] == "next"));
        for path in ["/ValueSet/Care_Team_Status", "/ValueSet/no-such-list", "/ValueSet/a%20b"] {
            assert_eq!(get(path.to_owned()).await.status, 404, "{path}");
        }

        // Compartments and access: patients see their own responses; Questionnaire needs
        // no ACL, ValueSet OpenEMR's admin/super.
        let bound = app.patient_token("default", &puuid_b, "openid api:fhir patient/QuestionnaireResponse.rs patient/Questionnaire.rs").await;
        let reply = app.get(&fhir(app, "default", "/QuestionnaireResponse"), &bound).await;
        assert_eq!(sorted(ids(&docs.keep(&reply))), owned(&[RESPONSE_B]));
        assert_eq!(app.get(&fhir(app, "default", &format!("/QuestionnaireResponse/{RESPONSE_A}")), &bound).await.status, 404);
        assert_eq!(app.get(&fhir(app, "default", "/Questionnaire"), &bound).await.status, 200);
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "default", "/Questionnaire"), &front).await.status, 200, "no ACL");
        assert_eq!(app.get(&fhir(app, "default", "/ValueSet"), &front).await.status, 403);
        let v1 = app.user_token("default", "admin", "openid api:fhir user/ValueSet.read").await;
        assert_eq!(app.get(&fhir(app, "default", "/ValueSet/drug-route"), &v1).await.status, 200);
        let none = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        assert_eq!(app.get(&fhir(app, "default", "/QuestionnaireResponse"), &none).await.status, 403);
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", &format!("/QuestionnaireResponse/{RESPONSE_A}")), &second).await.status, 404);
        docs.validate();
    }

    async fn messages_are_written_updated_and_deleted_by_the_rules(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (pid, _) = app.create_patient("default", &token, "Ann", "Adams").await;
        let (other, _) = app.create_patient("default", &token, "Bob", "Baker").await;
        let url = |path: String| app.api("default", &path);
        let valid = json!({"body": "Please call back about the results", "to": "drhouse", "from": "admin",
            "groupname": "Default", "title": "Chart Note", "message_status": "New"});
        let reply = app.post(&url(format!("/api/patient/{pid}/message")), &token, valid.clone()).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let mid = reply.json["mid"].as_i64().expect("mid");
        let stored = rows(app, "default", format!("SELECT body, \"user\", assigned_to, title, message_status, deleted, pid FROM pnotes WHERE id = {mid}")).await;
        assert!(stored[0]["body"].as_str().unwrap().ends_with(" (admin to drhouse) Please call back about the results"), "{stored:?}");
        assert_eq!(stored[0]["assigned_to"], "drhouse");
        assert_eq!(stored[0]["user"], "admin");
        assert_eq!(stored[0]["pid"], json!(pid));
        let snapshot = || rows(app, "default", "SELECT id, body, title, assigned_to, message_status, deleted, pid FROM pnotes ORDER BY id".to_owned());

        // (method, path, body, status, the field and rule of a refusal)
        let missing = json!({"body": "Hello there"});
        let short = json!({"body": "x", "to": "drhouse", "from": "admin", "groupname": "Default", "title": "Chart Note", "message_status": "New"});
        let long_status = json!({"body": "Hello", "to": "drhouse", "from": "admin", "groupname": "Default", "title": "Chart Note", "message_status": "A status far too long"});
        let cases: Vec<MessageCase> = vec![
            (reqwest::Method::POST, format!("/api/patient/{pid}/message"), Some(missing), 400, Some(("to", "Required::NON_EXISTENT_KEY"))),
            (reqwest::Method::POST, format!("/api/patient/{pid}/message"), Some(short), 400, Some(("body", "LengthBetween::TOO_SHORT"))),
            (reqwest::Method::POST, format!("/api/patient/{pid}/message"), Some(long_status), 400, Some(("message_status", "LengthBetween::TOO_LONG"))),
            (reqwest::Method::POST, "/api/patient/999999/message".to_owned(), Some(valid.clone()), 404, None),
            (reqwest::Method::POST, "/api/patient/abc/message".to_owned(), Some(valid.clone()), 400, None),
            (reqwest::Method::PUT, format!("/api/patient/{pid}/message/{mid}"), Some(json!({"title": "x"})), 400, Some(("title", "LengthBetween::TOO_SHORT"))),
            (reqwest::Method::PUT, format!("/api/patient/{other}/message/{mid}"), Some(json!({"message_status": "Read"})), 404, None),
            (reqwest::Method::PUT, format!("/api/patient/{pid}/message/999999"), Some(json!({"message_status": "Read"})), 404, None),
            (reqwest::Method::DELETE, format!("/api/patient/{other}/message/{mid}"), None, 404, None),
            (reqwest::Method::DELETE, format!("/api/patient/{pid}/message/abc"), None, 400, None),
        ];
        for (method, path, body, status, rule) in cases {
            let before = snapshot().await;
            let reply = app.send(method.clone(), &url(path.clone()), Some(&token), body).await;
            assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
            if let Some((field, rule)) = rule {
                assert!(reply.json[field][rule].is_string(), "{method} {path}: {}", reply.text);
            }
            assert_eq!(snapshot().await, before, "{method} {path} wrote nothing");
        }

        // An update changes what it names; the stored line follows the new text.
        let reply = app.put(&url(format!("/api/patient/{pid}/message/{mid}")), &token, json!({"message_status": "Read", "body": "Called back, all fine", "to": "nurse1"})).await;
        assert_eq!((reply.status, reply.json.clone()), (200, json!({"mid": mid})), "{}", reply.text);
        let stored = rows(app, "default", format!("SELECT body, assigned_to, message_status, title FROM pnotes WHERE id = {mid}")).await;
        assert_eq!(stored[0]["message_status"], "Read");
        assert_eq!(stored[0]["assigned_to"], "nurse1");
        assert_eq!(stored[0]["title"], "Chart Note");
        assert!(stored[0]["body"].as_str().unwrap().ends_with("(admin to nurse1) Called back, all fine"), "{stored:?}");
        // Delete marks it deleted, once.
        let reply = app.delete(&url(format!("/api/patient/{pid}/message/{mid}")), &token).await;
        assert_eq!((reply.status, reply.json.clone()), (200, json!(true)), "{}", reply.text);
        assert_eq!(rows(app, "default", format!("SELECT deleted FROM pnotes WHERE id = {mid}")).await[0]["deleted"], json!(1));
        assert_eq!(app.delete(&url(format!("/api/patient/{pid}/message/{mid}")), &token).await.status, 404);
        assert_eq!(app.put(&url(format!("/api/patient/{pid}/message/{mid}")), &token, json!({"title": "Again"})).await.status, 404);

        // Scopes and ACLs: front office has no patients/notes; a token without message.c.
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        let before = snapshot().await;
        assert_eq!(app.post(&url(format!("/api/patient/{pid}/message")), &front, valid.clone()).await.status, 403);
        let narrow = app.user_token("default", "admin", "openid api:oemr user/message.d").await;
        let reply = app.post(&url(format!("/api/patient/{pid}/message")), &narrow, valid.clone()).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        let v1 = app.user_token("default", "admin", "openid api:oemr user/message.write").await;
        assert_eq!(app.post(&url(format!("/api/patient/{pid}/message")), &v1, valid.clone()).await.status, 201);
        assert_eq!(snapshot().await.len(), before.len() + 1);
        assert_eq!(app.get(&url(format!("/api/patient/{pid}/message")), &token).await.status, 405, "OpenEMR lists no messages");

        // OpenEMR compatibility: a refused message answers 200 with the map, and writes nothing.
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let second = app.user_token("second", "admin", SCOPES).await;
        let (pid2, _) = app.create_patient("second", &second, "Cy", "Compat").await;
        let reply = app.post(&app.api("second", &format!("/api/patient/{pid2}/message")), &second, json!({"body": "x"})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(reply.json["body"]["LengthBetween::TOO_SHORT"].is_string(), "{}", reply.text);
        assert_eq!(app.rows("second", "SELECT COUNT(*) AS n FROM pnotes").await[0]["n"], json!(0));
        // Site isolation: the first site's message is not the second's.
        assert_eq!(app.delete(&app.api("second", &format!("/api/patient/{pid2}/message/{mid}")), &second).await.status, 404);
    }

    async fn transactions_are_referrals_with_their_fields(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        for (fname, npi) in [("Gregory", "1234567890"), ("Lisa", "1234567891")] {
            let reply = app.post(&app.api("default", "/api/practitioner"), &token, json!({"fname": fname, "lname": "Doctor", "npi": npi})).await;
            assert_eq!(reply.status, 201, "{}", reply.text);
        }
        let from_id = rows(app, "default", "SELECT id FROM users WHERE npi = '1234567890'".to_owned()).await[0]["id"].clone();
        let to_id = rows(app, "default", "SELECT id FROM users WHERE npi = '1234567891'".to_owned()).await[0]["id"].clone();
        let (pid, _) = app.create_patient("default", &token, "Ann", "Adams").await;
        let url = |path: String| app.api("default", &path);
        let referral = json!({"type": "LBTref", "groupname": "Default", "referralDate": "2024-05-01",
            "body": "Cardiology consult for chest pain", "referByNpi": "1234567890", "referToNpi": "1234567891",
            "referDiagnosis": "ICD10:R07.9", "riskLevel": "High", "includeVitals": "1", "visits": "3"});
        let reply = app.post(&url(format!("/api/patient/{pid}/transaction")), &token, referral.clone()).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let tid = reply.json["data"][0]["id"].as_i64().expect("the transaction id");
        assert_eq!(reply.json["data"][0]["form_id"], json!(tid));
        let reply = app.get(&url(format!("/api/patient/{pid}/transaction")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let item = reply.json["data"][0].clone();
        assert_eq!(item["id"], json!(tid));
        assert_eq!(item["title"], "LBTref");
        assert_eq!(item["body"], "Cardiology consult for chest pain");
        assert_eq!(item["refer_date"], "2024-05-01");
        assert_eq!(item["refer_diag"], "ICD10:R07.9");
        assert_eq!(item["refer_from"], json!(text(&from_id)));
        assert_eq!(item["refer_to"], json!(text(&to_id)));
        assert_eq!(item["refer_risk_level"], "high", "lower case, as OpenEMR stores it");
        assert_eq!(item["refer_vitals"], "1");
        assert_eq!(item["refer_visits"], "3");
        assert_eq!(item["refer_validFrom"], "");
        assert_eq!(item["user"], "admin");

        let counts = || rows(app, "default", "SELECT (SELECT COUNT(*) FROM transactions) AS t, (SELECT COUNT(*) FROM lbt_data) AS d, (SELECT COUNT(*) FROM lbt_data WHERE field_value = 'Changed') AS c".to_owned());
        let with = |key: &str, value: Value| {
            let mut body = referral.clone();
            body[key] = value;
            body
        };
        let without = |key: &str| {
            let mut body = referral.clone();
            body.as_object_mut().unwrap().remove(key);
            body
        };
        // (method, path, body, status, the refused field)
        let cases: Vec<TransactionCase> = vec![
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), without("referralDate"), 400, Some("referralDate")),
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), with("referralDate", json!("05/01/2024")), 400, Some("referralDate")),
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), with("body", json!("x")), 400, Some("body")),
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), without("referByNpi"), 400, Some("referByNpi")),
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), with("referByNpi", json!("9999999999")), 400, Some("referByNpi")),
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), with("referToNpi", json!("9999999999")), 400, Some("referToNpi")),
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), with("type", json!("Bogus")), 400, Some("type")),
            (reqwest::Method::POST, format!("/api/patient/{pid}/transaction"), without("type"), 400, Some("type")),
            (reqwest::Method::POST, "/api/patient/999999/transaction".to_owned(), referral.clone(), 404, None),
            (reqwest::Method::PUT, format!("/api/transaction/{tid}"), json!({"body": "Changed", "validFrom": "someday"}), 400, Some("validFrom")),
            (reqwest::Method::PUT, "/api/transaction/999999".to_owned(), json!({"body": "Changed"}), 404, None),
            (reqwest::Method::PUT, "/api/transaction/abc".to_owned(), json!({"body": "Changed"}), 400, None),
        ];
        for (method, path, body, status, field) in cases {
            let before = counts().await;
            let reply = app.send(method.clone(), &url(path.clone()), Some(&token), Some(body)).await;
            assert_eq!(reply.status, status, "{method} {path}: {}", reply.text);
            if let Some(field) = field {
                assert!(reply.json["validationErrors"][field].is_object(), "{method} {path}: {}", reply.text);
            }
            assert_eq!(counts().await, before, "{method} {path} wrote nothing");
        }
        // Another type needs no referral fields.
        let reply = app.post(&url(format!("/api/patient/{pid}/transaction")), &token, json!({"type": "LBTptreq", "body": "Copy of records"})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let request = reply.json["data"][0]["id"].as_i64().unwrap();

        // An update rewrites the fields it names and adds those the transaction lacked.
        let reply = app.put(&url(format!("/api/transaction/{tid}")), &token, json!({"body": "Changed", "validFrom": "2024-06-01", "riskLevel": "Low"})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let updated = &reply.json["data"][0];
        assert_eq!(updated["body"], "Changed");
        assert_eq!(updated["refer_validFrom"], "2024-06-01");
        assert_eq!(updated["refer_risk_level"], "low");
        assert_eq!(updated["refer_diag"], "ICD10:R07.9", "untouched");

        // Sorting and paging.
        for (query, expected) in [
            ("?_sort=id", vec![tid, request]),
            ("?_sort=-id", vec![request, tid]),
            ("?_sort=id&_limit=1&_offset=1", vec![request]),
        ] {
            let reply = app.get(&url(format!("/api/patient/{pid}/transaction{query}")), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let got: Vec<i64> = reply.json["data"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
            assert_eq!(got, expected, "{query}");
        }
        assert_eq!(app.get(&url(format!("/api/patient/{pid}/transaction?_sort=bogus")), &token).await.status, 400);

        // ACLs: front office reads transactions but writes none; scopes.
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&url(format!("/api/patient/{pid}/transaction")), &front).await.status, 200);
        let before = counts().await;
        assert_eq!(app.post(&url(format!("/api/patient/{pid}/transaction")), &front, referral.clone()).await.status, 403);
        assert_eq!(app.put(&url(format!("/api/transaction/{tid}")), &front, json!({"body": "Sneaky"})).await.status, 403);
        let narrow = app.user_token("default", "admin", "openid api:oemr user/transaction.s").await;
        assert_eq!(app.post(&url(format!("/api/patient/{pid}/transaction")), &narrow, referral.clone()).await.status, 403);
        assert_eq!(counts().await, before);
        let v1 = app.user_token("default", "admin", "openid api:oemr user/transaction.read").await;
        assert_eq!(app.get(&url(format!("/api/patient/{pid}/transaction")), &v1).await.status, 200);

        // OpenEMR compatibility: statuses are lost (200) but a refused body still writes nothing.
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let second = app.user_token("second", "admin", SCOPES).await;
        let (pid2, _) = app.create_patient("second", &second, "Cy", "Compat").await;
        let reply = app.post(&app.api("second", &format!("/api/patient/{pid2}/transaction")), &second, without("referralDate")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(app.rows("second", "SELECT COUNT(*) AS n FROM transactions").await[0]["n"], json!(0));
        let reply = app.get(&app.api("second", &format!("/api/patient/{pid2}/transaction")), &second).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])));
        // Site isolation: the first site's transaction is unknown here.
        let reply = app.put(&app.api("second", &format!("/api/transaction/{tid}")), &second, json!({"body": "Changed"})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["data"], json!([]), "OpenEMR's lost 404: {}", reply.text);
    }

    async fn demo_seed_fills_the_care_records_the_plugins_serve(app) {
        let site = app.state.sites.get("second").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 60, seed: 5, batch: 25 };
        let summary = hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        let counts = app.rows("second", "SELECT \
            (SELECT COUNT(*) FROM forms WHERE formdir = 'care_plan') AS plans, \
            (SELECT COUNT(*) FROM form_care_plan WHERE care_plan_type = 'goal') AS goals, \
            (SELECT COUNT(*) FROM care_teams) AS teams, \
            (SELECT COUNT(*) FROM care_team_member) AS members, \
            (SELECT COUNT(*) FROM lists WHERE type = 'medical_device') AS devices, \
            (SELECT COUNT(*) FROM questionnaire_response) AS responses, \
            (SELECT COUNT(*) FROM questionnaire_repository) AS questionnaires, \
            (SELECT COUNT(*) FROM pnotes) AS messages, \
            (SELECT COUNT(*) FROM transactions) AS transactions, \
            (SELECT COUNT(*) FROM lbt_data) AS fields").await;
        let c = &counts[0];
        assert_eq!(c["plans"].as_u64(), Some(summary.care_plans), "{c} {summary:?}");
        assert_eq!(c["goals"].as_u64(), Some(summary.goals));
        assert_eq!(c["teams"].as_u64(), Some(summary.care_teams));
        assert_eq!(c["members"].as_u64(), Some(summary.care_teams * 2));
        assert_eq!(c["devices"].as_u64(), Some(summary.devices));
        assert_eq!(c["responses"].as_u64(), Some(summary.questionnaire_responses));
        assert_eq!(c["messages"].as_u64(), Some(summary.messages));
        assert_eq!(c["transactions"].as_u64(), Some(summary.transactions));
        assert_eq!(c["fields"].as_u64(), Some(summary.transactions * 7));
        assert_eq!(c["questionnaires"], json!(1));
        assert!(summary.care_plans >= 15 && summary.care_teams >= 15 && summary.messages >= 30, "{summary:?}");
        assert!(summary.questionnaire_responses >= 5 && summary.transactions >= 1, "{summary:?}");

        // The plugins serve what the seed wrote; every device's UDI parses.
        let token = app.user_token("second", "admin", SCOPES).await;
        let mut docs = Documents::default();
        for (kind, expected) in [("CarePlan", summary.care_plans), ("Goal", summary.goals), ("CareTeam", summary.care_teams), ("QuestionnaireResponse", summary.questionnaire_responses)] {
            let reply = app.get(&fhir(app, "second", &format!("/{kind}?_count=5")), &token).await;
            assert_eq!(reply.status, 200, "{kind}: {}", reply.text);
            let bundle = docs.keep(&reply);
            assert_eq!(bundle["total"].as_u64(), Some(expected), "{kind}");
        }
        let reply = app.get(&fhir(app, "second", "/Device?_count=100"), &token).await;
        let bundle = docs.keep(&reply);
        let devices = bundle["entry"].as_array().cloned().unwrap_or_default();
        assert_eq!(devices.len() as u64, summary.devices);
        for device in &devices {
            let carrier = &device["resource"]["udiCarrier"][0];
            assert!(carrier["deviceIdentifier"].is_string(), "{device}");
            assert!(device["resource"]["expirationDate"].is_string(), "{device}");
        }
        let some_pid = app.rows("second", "SELECT MIN(pid) AS pid FROM transactions").await[0]["pid"].clone();
        if let Some(pid) = some_pid.as_i64() {
            let reply = app.get(&app.api("second", &format!("/api/patient/{pid}/transaction")), &token).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(reply.json["data"][0]["title"], "LBTref");
        }
        docs.validate();
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
