//! Orders and medications through the real server, on both databases: the standard
//! API's procedure orders (`/api/procedure`, read-only, with their reports and results),
//! drugs (`/api/drug`) and prescriptions (`/api/prescription`: list, read, create and
//! OpenEMR's soft delete); FHIR ServiceRequest, DiagnosticReport, Specimen, laboratory
//! Observations (one type with the vital signs: one `total`, one paging), Medication,
//! MedicationDispense and MedicationRequest over both the medication list and the
//! prescriptions, every FHIR document validated with `fhir.resources`; scopes, ACLs, the
//! patient compartment, granular scopes, site isolation, nothing written on a refused
//! request, and the demo seed. Orders, results, drugs and dispenses have no write route
//! (OpenEMR's are read-only), so those rows are written in SQL, as OpenEMR's own screens
//! and lab interfaces write them.

use hearth_tests::fhir::{Documents, fhir, ids};
use hearth_tests::*;

const SCOPES: &str = "openid api:oemr api:fhir user/patient.crus user/practitioner.crus \
    user/encounter.crus user/vital.crus user/medication.crus user/procedure.rs user/drug.rs \
    user/prescription.crds user/ServiceRequest.rs user/DiagnosticReport.rs user/Specimen.rs \
    user/Observation.rs user/Medication.rs user/MedicationDispense.rs \
    user/MedicationRequest.rs user/Provenance.rs user/Practitioner.rs";

// Orders (ServiceRequest), reports, results (Observation) and specimens of the fixture.
const LIPIDS: &str = "90cde167-0000-4000-8000-00000000a001";
const CBC: &str = "90cde167-0000-4000-8000-00000000a002";
const A1C: &str = "90cde167-0000-4000-8000-00000000a003";
const LIPIDS_REPORT: &str = "90cde167-0000-4000-8000-00000000b001";
const A1C_REPORT: &str = "90cde167-0000-4000-8000-00000000b003";
const CHOLESTEROL: &str = "90cde167-0000-4000-8000-00000000c001";
const HDL: &str = "90cde167-0000-4000-8000-00000000c002";
const NOT_DONE: &str = "90cde167-0000-4000-8000-00000000c003";
const HBA1C: &str = "90cde167-0000-4000-8000-00000000c004";
const COLOR: &str = "90cde167-0000-4000-8000-00000000c005";
const BLOOD: &str = "90cde167-0000-4000-8000-00000000d001";
const SERUM: &str = "90cde167-0000-4000-8000-00000000d002";
// Drugs (Medication) and dispenses.
const LISINOPRIL: &str = "90cde167-0000-4000-8000-00000000e001";
const AMOXICILLIN: &str = "90cde167-0000-4000-8000-00000000e002";
const FIRST_FILL: &str = "90cde167-0000-4000-8000-00000000f001";
const REFILL: &str = "90cde167-0000-4000-8000-00000000f002";
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

/// What the fixtures made: the patients, A's encounter, the practitioner.
struct Chart {
    pid_a: i64,
    puuid_a: String,
    pid_b: i64,
    puuid_b: String,
    eid: i64,
    euuid: String,
    doctor: i64,
}

/// Two patients, A's encounter (with two vital signs), and the practitioner.
async fn chart(app: &TestApp, token: &str) -> Chart {
    let practitioner = app
        .post(
            &app.api("default", "/api/practitioner"),
            token,
            json!({"fname": "Gregory", "lname": "House", "npi": "1234567890"}),
        )
        .await;
    assert_eq!(practitioner.status, 201, "{}", practitioner.text);
    let doctor = practitioner.json["data"]["id"].as_i64().unwrap();
    let (pid_a, puuid_a) = app.create_patient("default", token, "Ann", "Adams").await;
    let (pid_b, puuid_b) = app.create_patient("default", token, "Bob", "Baker").await;
    let encounter = app
        .post(
            &app.api("default", &format!("/api/patient/{puuid_a}/encounter")),
            token,
            json!({"pc_catid": "5", "class_code": "AMB", "date": "2024-03-01 09:00:00"}),
        )
        .await;
    assert!((200..300).contains(&encounter.status), "{}", encounter.text);
    let eid = encounter.json["data"]["eid"].as_i64().unwrap();
    let euuid = encounter.json["data"]["euuid"].as_str().unwrap().to_owned();
    let vital = app
        .post(
            &app.api(
                "default",
                &format!("/api/patient/{pid_a}/encounter/{eid}/vital"),
            ),
            token,
            json!({"bps": "120", "bpd": "80", "pulse": "72"}),
        )
        .await;
    assert_eq!(vital.status, 201, "{}", vital.text);
    Chart {
        pid_a,
        puuid_a,
        pid_b,
        puuid_b,
        eid,
        euuid,
        doctor,
    }
}

/// A's lipid panel (reported: cholesterol high, HDL normal, one result not done) and
/// pending CBC; B's HbA1c (preliminary) with a urine colour in words; their specimens.
async fn lab(app: &TestApp, c: &Chart) {
    let order =
        |uuid: &str, pid: i64, eid: i64, ordered: &str, status: &str, code: &str, name: &str| {
            [
                format!(
                    "INSERT INTO procedure_order (uuid, provider_id, patient_id, encounter_id, \
                 date_ordered, date_collected, order_priority, order_status, order_diagnosis, \
                 clinical_hx, patient_instructions) VALUES ('{uuid}', {doctor}, {pid}, {eid}, \
                 '{ordered}', '{ordered}', 'normal', '{status}', 'ICD10:E78.5', 'Fasting', \
                 'Do not eat after midnight')",
                    doctor = c.doctor
                ),
                format!(
                    "INSERT INTO procedure_order_code (procedure_order_id, procedure_order_seq, \
                 procedure_code, procedure_name) SELECT procedure_order_id, 1, '{code}', '{name}' \
                 FROM procedure_order WHERE uuid = '{uuid}'"
                ),
            ]
        };
    let report = |uuid: &str, order: &str, at: &str, status: &str| {
        format!(
            "INSERT INTO procedure_report (uuid, procedure_order_id, procedure_order_seq, \
             date_collected, date_report, report_status, report_notes) SELECT '{uuid}', \
             procedure_order_id, 1, '{at}', '{at}', '{status}', 'Reviewed with the patient' \
             FROM procedure_order WHERE uuid = '{order}'"
        )
    };
    let result = |uuid: &str,
                  report: &str,
                  code: &str,
                  text: &str,
                  value: &str,
                  units: &str,
                  range: &str,
                  flag: &str| {
        format!(
            "INSERT INTO procedure_result (uuid, procedure_report_id, result_code, result_text, \
             date, units, result, \"range\", abnormal, result_status, comments) SELECT '{uuid}', \
             procedure_report_id, '{code}', '{text}', date_report, '{units}', '{value}', \
             '{range}', '{flag}', 'final', '' FROM procedure_report WHERE uuid = '{report}'"
        )
    };
    let specimen = |uuid: &str, order: &str, id: &str, code: &str, kind: &str, at: &str| {
        format!(
            "INSERT INTO procedure_specimen (uuid, procedure_order_id, specimen_identifier, \
             accession_identifier, specimen_type_code, specimen_type, collection_method_code, \
             collection_method, collected_date, created_at, updated_at) SELECT '{uuid}', \
             procedure_order_id, '{id}', 'ACC-{id}', '{code}', '{kind}', '28520004', \
             'Venipuncture', '{at}', '{at}', '{at}' FROM procedure_order WHERE uuid = '{order}'"
        )
    };
    let mut statements = Vec::new();
    statements.extend(order(
        LIPIDS,
        c.pid_a,
        c.eid,
        "2024-03-01 09:00:00",
        "complete",
        "57698-3",
        "Lipid panel",
    ));
    statements.extend(order(
        CBC,
        c.pid_a,
        0,
        "2024-05-01 10:00:00",
        "pending",
        "58410-2",
        "CBC panel",
    ));
    statements.extend(order(
        A1C,
        c.pid_b,
        0,
        "2024-04-01 11:00:00",
        "complete",
        "4548-4",
        "Hemoglobin A1c",
    ));
    statements.push(report(
        LIPIDS_REPORT,
        LIPIDS,
        "2024-03-02 08:00:00",
        "final",
    ));
    statements.push(report(A1C_REPORT, A1C, "2024-04-02 08:00:00", "prelim"));
    statements.push(result(
        CHOLESTEROL,
        LIPIDS_REPORT,
        "2093-3",
        "Cholesterol",
        "212",
        "mg/dL",
        "125-200",
        "high",
    ));
    statements.push(result(
        HDL,
        LIPIDS_REPORT,
        "2085-9",
        "HDL Cholesterol",
        "55",
        "mg/dL",
        "40-60",
        "no",
    ));
    statements.push(result(
        NOT_DONE,
        LIPIDS_REPORT,
        "13457-7",
        "LDL Cholesterol",
        "DNR",
        "",
        "",
        "",
    ));
    statements.push(result(
        HBA1C,
        A1C_REPORT,
        "4548-4",
        "Hemoglobin A1c",
        "6.1",
        "%",
        "4.0-5.6",
        "high",
    ));
    statements.push(result(
        COLOR,
        A1C_REPORT,
        "5778-6",
        "Color of Urine",
        "yellow",
        "",
        "yellow",
        "",
    ));
    statements.push(specimen(
        BLOOD,
        LIPIDS,
        "SP-1",
        "119297000",
        "Blood specimen",
        "2024-03-01 09:20:00",
    ));
    statements.push(specimen(
        SERUM,
        A1C,
        "SP-3",
        "119364003",
        "Serum specimen",
        "2024-04-01 11:20:00",
    ));
    for statement in statements {
        sql(app, "default", statement).await;
    }
}

/// The formulary: Lisinopril (active, a lot of 500 in stock) and Amoxicillin (inactive).
async fn formulary(app: &TestApp) {
    for statement in [
        format!(
            "INSERT INTO drugs (uuid, name, ndc_number, form, size, unit, route, drug_code, \
             related_code, active, date_created, last_updated) VALUES ('{LISINOPRIL}', \
             'Lisinopril 10 MG Oral Tablet', '68180-0513-01', '2', '10', '1', '1', '314076', \
             'RXCUI:314076', 1, '2024-01-01 08:00:00', '2024-01-01 08:00:00')"
        ),
        format!(
            "INSERT INTO drugs (uuid, name, ndc_number, form, size, unit, route, drug_code, \
             related_code, active, date_created, last_updated) VALUES ('{AMOXICILLIN}', \
             'Amoxicillin 500 MG Oral Capsule', '65862-0015-01', '3', '500', '1', '1', '308191', \
             'RXCUI:308191', 0, '2024-01-02 08:00:00', '2024-01-02 08:00:00')"
        ),
        format!(
            "INSERT INTO drug_inventory (drug_id, lot_number, expiration, manufacturer, on_hand) \
             SELECT drug_id, 'L123', '2026-12-31', 'Lupin', 500 FROM drugs WHERE uuid = '{LISINOPRIL}'"
        ),
    ] {
        sql(app, "default", statement).await;
    }
}

/// The uuids of an envelope list's `data`.
fn uuids(reply: &Reply) -> Vec<String> {
    reply.json["data"]
        .as_array()
        .unwrap_or_else(|| panic!("a list: {}", reply.text))
        .iter()
        .map(|row| row["uuid"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn owned(ids: &[&str]) -> Vec<String> {
    sorted(ids.iter().map(|s| (*s).to_owned()).collect())
}

both! {
    async fn the_standard_api_serves_procedure_orders_with_their_reports_and_results(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let c = chart(app, &token).await;
        lab(app, &c).await;
        let url = |path: &str| app.api("default", path);

        let reply = app.get(&url("/api/procedure"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(uuids(&reply), [CBC, A1C, LIPIDS], "newest first, the pending order too");
        let lipids = reply.json["data"][2].clone();
        assert_eq!(lipids["name"], "Lipid panel");
        assert_eq!(lipids["code"], "57698-3");
        assert_eq!(lipids["standard_code"], "LOINC:57698-3");
        assert_eq!(lipids["diagnosis"], "ICD10:E78.5");
        assert_eq!(lipids["patient"], json!({"pid": c.pid_a, "uuid": c.puuid_a}));
        assert_eq!(lipids["encounter"]["uuid"], json!(c.euuid));
        assert_eq!(lipids["provider"]["npi"], "1234567890");
        let reports = lipids["reports"].as_array().unwrap();
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0]["uuid"], LIPIDS_REPORT);
        let results = reports[0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "not the result not done (DNR), as OpenEMR");
        assert_eq!(results[0]["uuid"], CHOLESTEROL);
        assert_eq!((results[0]["result"].clone(), results[0]["units"].clone(), results[0]["range"].clone(), results[0]["abnormal"].clone()), (json!("212"), json!("mg/dL"), json!("125-200"), json!("high")));
        assert_eq!(reply.json["data"][0]["reports"], json!([]), "the pending order has none yet");

        for (query, expected) in [
            (format!("?puuid={}", c.puuid_a), vec![CBC, LIPIDS]),
            (format!("?puuid={}", c.puuid_b), vec![A1C]),
            ("?order_status=pending".to_owned(), vec![CBC]),
            (format!("?patient_id={}&_sort=date_ordered", c.pid_a), vec![LIPIDS, CBC]),
            ("?_sort=date_ordered&_limit=2&_offset=1".to_owned(), vec![A1C, CBC]),
            ("?order_status=canceled".to_owned(), vec![]),
        ] {
            let reply = app.get(&url(&format!("/api/procedure{query}")), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(uuids(&reply), expected, "{query}");
        }
        let reply = app.get(&url("/api/procedure?_limit=1"), &token).await;
        assert!(reply.json["links"]["next"].is_string(), "{}", reply.text);
        for (query, field) in [("?patient_id=abc", "patient_id"), ("?puuid=nope", "puuid"), ("?_sort=bogus", "_sort"), ("?_limit=ten", "_limit")] {
            let reply = app.get(&url(&format!("/api/procedure{query}")), &token).await;
            assert_eq!(reply.status, 400, "{query}: {}", reply.text);
            assert!(reply.json["validationErrors"][field].is_object(), "{query}: {}", reply.text);
        }
        let reply = app.get(&url(&format!("/api/procedure/{A1C}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["data"]["uuid"], A1C);
        assert_eq!(reply.json["data"]["reports"][0]["results"][1]["result"], "yellow");
        assert_eq!(app.get(&url(&format!("/api/procedure/{MISSING}")), &token).await.status, 404);
        assert_eq!(app.get(&url("/api/procedure/nope"), &token).await.status, 400);
        let reply = app.post(&url("/api/procedure"), &token, json!({"code": "57698-3"})).await;
        assert_eq!(reply.status, 405, "read-only: {}", reply.text);

        // Scopes and ACLs.
        let narrow = app.user_token("default", "admin", "openid api:oemr user/procedure.s").await;
        assert_eq!(app.get(&url("/api/procedure"), &narrow).await.status, 200);
        assert_eq!(app.get(&url(&format!("/api/procedure/{A1C}")), &narrow).await.status, 403);
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&url("/api/procedure"), &front).await.status, 403, "front office has no patients/med");

        // Another site has none; in OpenEMR compatibility a miss is a 200.
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/procedure"), &second).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])));
        let reply = app.get(&app.api("second", &format!("/api/procedure/{A1C}")), &second).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])), "OpenEMR's lost 404");
    }

    async fn the_standard_api_serves_drugs_and_prescriptions_with_a_soft_delete(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let c = chart(app, &token).await;
        formulary(app).await;
        let url = |path: &str| app.api("default", path);

        // Drugs: the formulary, read-only.
        let reply = app.get(&url("/api/drug"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(uuids(&reply), [AMOXICILLIN, LISINOPRIL], "by name");
        let lisinopril = reply.json["data"][1].clone();
        assert_eq!(lisinopril["ndc_number"], "68180-0513-01");
        assert_eq!(lisinopril["drug_code"], "314076");
        assert_eq!(lisinopril["on_hand"], 500);
        let drug_id = lisinopril["drug_id"].as_i64().unwrap();
        for (query, expected) in [
            ("?active=1", vec![LISINOPRIL]),
            ("?drug_code=308191", vec![AMOXICILLIN]),
            ("?_sort=-name", vec![LISINOPRIL, AMOXICILLIN]),
            ("?name=nope", vec![]),
        ] {
            let reply = app.get(&url(&format!("/api/drug{query}")), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(uuids(&reply), expected, "{query}");
        }
        assert_eq!(app.get(&url("/api/drug?active=yes"), &token).await.status, 400);
        let reply = app.get(&url(&format!("/api/drug/{LISINOPRIL}")), &token).await;
        assert_eq!((reply.status, reply.json["data"]["name"].clone()), (200, json!("Lisinopril 10 MG Oral Tablet")));
        assert_eq!(app.get(&url(&format!("/api/drug/{MISSING}")), &token).await.status, 404);

        // Prescriptions: create.
        let lisinopril_rx = json!({"patient_id": c.pid_a, "drug": "Lisinopril 10 MG Oral Tablet",
            "drug_id": drug_id, "rxnorm_drugcode": "314076", "dosage": "1", "form": "2",
            "route": "1", "interval": "9", "quantity": "30", "refills": 2,
            "start_date": "2024-02-01", "provider_id": c.doctor, "encounter": c.eid,
            "note": "Take in the morning", "color": "ignored"});
        let reply = app.post(&url("/api/prescription"), &token, lisinopril_rx).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let rx_a = reply.json["data"]["uuid"].as_str().unwrap().to_owned();
        assert!(reply.json["data"]["id"].is_i64(), "{}", reply.text);
        let reply = app.post(&url("/api/prescription"), &token, json!({"patient_id": c.pid_b, "drug": "Amoxicillin 500 MG", "start_date": "2024-03-01"})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let rx_b = reply.json["data"]["uuid"].as_str().unwrap().to_owned();

        // Bad bodies: a 400 naming each field, and nothing written.
        for (body, fields) in [
            (json!({}), vec!["drug", "patient_id"]),
            (json!({"drug": "X", "patient_id": 999999}), vec!["patient_id"]),
            (json!({"drug": "X", "patient_id": c.pid_a, "start_date": "03/01/2024"}), vec!["start_date"]),
            (json!({"drug": "X", "patient_id": c.pid_a, "drug_id": 999999}), vec!["drug_id"]),
            (json!({"drug": "X", "patient_id": c.pid_a, "provider_id": 999999}), vec!["provider_id"]),
            (json!({"drug": "X", "patient_id": c.pid_a, "refills": "many"}), vec!["refills"]),
            (json!({"drug": "X", "patient_id": c.pid_a, "start_date": "2024-03-01", "end_date": "2024-02-01"}), vec!["end_date"]),
            (json!({"drug": "X", "patient_id": c.pid_b, "encounter": c.eid}), vec!["encounter"]),
            (json!({"drug": "", "patient_id": c.pid_a}), vec!["drug"]),
            (json!(["not", "an", "object"]), vec!["body"]),
        ] {
            let reply = app.post(&url("/api/prescription"), &token, body.clone()).await;
            assert_eq!(reply.status, 400, "{body}: {}", reply.text);
            for field in fields {
                assert!(reply.json["validationErrors"][field].is_object(), "{body}: {field}: {}", reply.text);
            }
        }
        let count = app.rows("default", "SELECT COUNT(*) AS n FROM prescriptions").await;
        assert_eq!(count[0]["n"], json!(2), "no refused request wrote a row");

        // Read and list.
        let reply = app.get(&url(&format!("/api/prescription/{rx_a}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let rx = reply.json["data"].clone();
        assert_eq!(rx["puuid"], json!(c.puuid_a));
        assert_eq!(rx["euuid"], json!(c.euuid));
        assert_eq!(rx["drug_uuid"], LISINOPRIL);
        assert_eq!((rx["form_title"].clone(), rx["route_title"].clone(), rx["interval_title"].clone()), (json!("tablet"), json!("Per Oris"), json!("daily")));
        assert_eq!(rx["active"], 1);
        assert_eq!(rx["refills"], 2);
        assert_eq!(rx["user"], "admin");
        assert!(rx.get("color").is_none());
        for (query, expected) in [
            (format!("?patient.uuid={}", c.puuid_a), vec![rx_a.clone()]),
            (format!("?puuid={}", c.puuid_b), vec![rx_b.clone()]),
            ("?rxnorm_drugcode=314076".to_owned(), vec![rx_a.clone()]),
            ("?_sort=start_date".to_owned(), vec![rx_a.clone(), rx_b.clone()]),
            ("?_sort=-start_date&_limit=1".to_owned(), vec![rx_b.clone()]),
            ("?active=0".to_owned(), vec![]),
        ] {
            let reply = app.get(&url(&format!("/api/prescription{query}")), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(uuids(&reply), expected, "{query}");
        }
        for (query, field) in [("?patient.uuid=nope", "patient.uuid"), ("?active=x", "active"), ("?_sort=bogus", "_sort")] {
            let reply = app.get(&url(&format!("/api/prescription{query}")), &token).await;
            assert_eq!(reply.status, 400, "{query}: {}", reply.text);
            assert!(reply.json["validationErrors"][field].is_object(), "{query}: {}", reply.text);
        }
        assert_eq!(app.get(&url(&format!("/api/prescription/{MISSING}")), &token).await.status, 404);
        assert_eq!(app.get(&url("/api/prescription/nope"), &token).await.status, 400);

        // Delete: a token without the scope, or a user without the ACL, changes nothing.
        let no_delete = app.user_token("default", "admin", "openid api:oemr user/prescription.rs").await;
        assert_eq!(app.delete(&url(&format!("/api/prescription/{rx_a}")), &no_delete).await.status, 403);
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.delete(&url(&format!("/api/prescription/{rx_a}")), &front).await.status, 403);
        assert_eq!(app.post(&url("/api/prescription"), &front, json!({"drug": "X", "patient_id": c.pid_a})).await.status, 403);
        let active = app.rows("default", "SELECT COUNT(*) AS n FROM prescriptions WHERE active = 1").await;
        assert_eq!(active[0]["n"], json!(2), "both still active, none added");
        // OpenEMR's soft delete: the row stays, inactive.
        let reply = app.delete(&url(&format!("/api/prescription/{rx_a}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["data"], json!({"message": "record deleted"}));
        let reply = app.get(&url(&format!("/api/prescription/{rx_a}")), &token).await;
        assert_eq!(reply.json["data"]["active"], 0, "{}", reply.text);
        let reply = app.get(&url("/api/prescription?active=1"), &token).await;
        assert_eq!(uuids(&reply), vec![rx_b.clone()]);
        assert_eq!(app.delete(&url(&format!("/api/prescription/{MISSING}")), &token).await.status, 404);
        assert_eq!(app.delete(&url("/api/prescription/nope"), &token).await.status, 400);

        // Another site has none; in OpenEMR compatibility deleting an unknown uuid is OpenEMR's 400.
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/prescription"), &second).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])));
        assert_eq!(app.get(&app.api("second", &format!("/api/prescription/{rx_b}")), &second).await.status, 404, "OpenEMR's own 404 here");
        assert_eq!(app.delete(&app.api("second", &format!("/api/prescription/{rx_b}")), &second).await.status, 400);
        assert_eq!(app.get(&app.api("second", "/api/drug"), &second).await.json["data"], json!([]));
        let reply = app.get(&url(&format!("/api/prescription/{rx_b}")), &token).await;
        assert_eq!(reply.json["data"]["active"], 1, "the other site's delete changed nothing here");
    }

    async fn fhir_serves_orders_reports_specimens_and_laboratory_observations(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let c = chart(app, &token).await;
        lab(app, &c).await;
        let mut docs = Documents::default();
        let get = |path: String, token: String| async move {
            app.get(&fhir(app, "default", &path), &token).await
        };

        // ServiceRequest.
        let reply = get(format!("/ServiceRequest/{LIPIDS}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let sr = docs.keep(&reply);
        assert_eq!((sr["status"].clone(), sr["intent"].clone()), (json!("completed"), json!("order")));
        assert_eq!(sr["code"]["coding"][0], json!({"system": "http://loinc.org", "code": "57698-3", "display": "Lipid panel"}));
        assert_eq!(sr["category"][0]["coding"][0]["code"], "108252007");
        assert_eq!(sr["subject"]["reference"], json!(format!("Patient/{}", c.puuid_a)));
        assert_eq!(sr["encounter"]["reference"], json!(format!("Encounter/{}", c.euuid)));
        assert_eq!(sr["authoredOn"], "2024-03-01T09:00:00Z");
        assert_eq!(sr["reasonCode"][0]["coding"][0]["code"], "E78.5");
        assert_eq!(sr["priority"], "routine");
        assert!(sr["requester"]["reference"].as_str().unwrap().starts_with("Practitioner/"));
        assert!(sr["meta"]["profile"].as_array().unwrap().iter().any(|p| p == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-servicerequest|7.0.0"));
        for (query, expected) in [
            (format!("?patient={}", c.puuid_a), owned(&[LIPIDS, CBC])),
            ("?status=active".to_owned(), owned(&[CBC])),
            ("?code=http://loinc.org|58410-2".to_owned(), owned(&[CBC])),
            ("?category=http://snomed.info/sct|108252007".to_owned(), owned(&[LIPIDS, CBC, A1C])),
            ("?authored=ge2024-04-01".to_owned(), owned(&[CBC, A1C])),
        ] {
            let reply = get(format!("/ServiceRequest{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{query}");
        }
        let reply = get("/ServiceRequest?intent=order&_count=2".to_owned(), token.clone()).await;
        assert_eq!(reply.json["total"], 3, "{}", reply.text);
        assert_eq!(ids(&docs.keep(&reply)).len(), 2);

        // DiagnosticReport.
        let reply = get(format!("/DiagnosticReport/{LIPIDS_REPORT}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let dr = docs.keep(&reply);
        assert_eq!(dr["status"], "final");
        assert_eq!(dr["category"][0]["coding"][0]["code"], "LAB");
        assert_eq!(dr["code"]["coding"][0]["code"], "57698-3");
        assert_eq!(dr["basedOn"][0]["reference"], json!(format!("ServiceRequest/{LIPIDS}")));
        assert_eq!(dr["result"], json!([{"reference": format!("Observation/{CHOLESTEROL}")}, {"reference": format!("Observation/{HDL}")}]), "not the result not done");
        assert_eq!(dr["specimen"][0]["reference"], json!(format!("Specimen/{BLOOD}")));
        assert_eq!(dr["effectiveDateTime"], "2024-03-02T08:00:00Z");
        assert_eq!(dr["issued"], "2024-03-02T08:00:00Z");
        assert_eq!(dr["conclusion"], "Reviewed with the patient");
        for (query, expected) in [
            (format!("?patient={}", c.puuid_b), owned(&[A1C_REPORT])),
            ("?status=preliminary".to_owned(), owned(&[A1C_REPORT])),
            ("?code=57698-3".to_owned(), owned(&[LIPIDS_REPORT])),
            ("?category=http://terminology.hl7.org/CodeSystem/v2-0074|LAB".to_owned(), owned(&[LIPIDS_REPORT, A1C_REPORT])),
            ("?date=ge2024-03-02&date=lt2024-03-03".to_owned(), owned(&[LIPIDS_REPORT])),
            (format!("?based-on=ServiceRequest/{A1C}"), owned(&[A1C_REPORT])),
        ] {
            let reply = get(format!("/DiagnosticReport{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{query}");
        }

        // Specimen.
        let reply = get(format!("/Specimen/{BLOOD}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let sp = docs.keep(&reply);
        assert_eq!(sp["status"], "available");
        assert_eq!(sp["type"]["coding"][0], json!({"system": "http://snomed.info/sct", "code": "119297000", "display": "Blood specimen"}));
        assert_eq!(sp["identifier"][0]["value"], "SP-1");
        assert_eq!(sp["accessionIdentifier"]["value"], "ACC-SP-1");
        assert_eq!(sp["request"][0]["reference"], json!(format!("ServiceRequest/{LIPIDS}")));
        assert_eq!(sp["collection"]["collectedDateTime"], "2024-03-01T09:20:00Z");
        assert_eq!(sp["collection"]["method"]["coding"][0]["code"], "28520004");
        for (query, expected) in [
            (format!("?patient={}", c.puuid_a), owned(&[BLOOD])),
            ("?identifier=SP-3".to_owned(), owned(&[SERUM])),
            ("?accession=ACC-SP-1".to_owned(), owned(&[BLOOD])),
            ("?type=http://snomed.info/sct|119364003".to_owned(), owned(&[SERUM])),
            ("?collected=lt2024-04-01".to_owned(), owned(&[BLOOD])),
            ("?status=available".to_owned(), owned(&[BLOOD, SERUM])),
        ] {
            let reply = get(format!("/Specimen{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{query}");
        }

        // Laboratory Observations, one type with the vital signs.
        let reply = get(format!("/Observation/{CHOLESTEROL}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let o = docs.keep(&reply);
        assert_eq!(o["category"][0]["coding"][0]["code"], "laboratory");
        assert_eq!(o["code"]["coding"][0], json!({"system": "http://loinc.org", "code": "2093-3", "display": "Cholesterol"}));
        assert_eq!(o["valueQuantity"]["value"], 212.0);
        assert_eq!((o["valueQuantity"]["system"].clone(), o["valueQuantity"]["code"].clone()), (json!("http://unitsofmeasure.org"), json!("mg/dL")));
        assert_eq!(o["interpretation"][0]["coding"][0]["code"], "H");
        assert_eq!(o["referenceRange"][0]["low"]["value"], 125.0);
        assert_eq!(o["referenceRange"][0]["high"]["value"], 200.0);
        assert_eq!(o["status"], "final");
        assert_eq!(o["encounter"]["reference"], json!(format!("Encounter/{}", c.euuid)));
        assert!(o["meta"]["profile"].as_array().unwrap().iter().any(|p| p == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-observation-lab|3.1.1"));
        let color = docs.keep(&get(format!("/Observation/{COLOR}"), token.clone()).await);
        assert_eq!(color["valueString"], "yellow");
        assert_eq!(color["referenceRange"][0]["text"], "yellow");
        assert_eq!(get(format!("/Observation/{NOT_DONE}"), token.clone()).await.status, 404, "OpenEMR leaves DNR results out");
        for (query, expected) in [
            (format!("?patient={}&category=laboratory", c.puuid_a), owned(&[CHOLESTEROL, HDL])),
            (format!("?patient={}&category=laboratory", c.puuid_b), owned(&[HBA1C, COLOR])),
            ("?code=http://loinc.org|2093-3".to_owned(), owned(&[CHOLESTEROL])),
            ("?category=laboratory&date=ge2024-04-01".to_owned(), owned(&[HBA1C, COLOR])),
            (format!("?_id={HDL}"), owned(&[HDL])),
        ] {
            let reply = get(format!("/Observation{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{query}");
        }
        // Patient A: two vital signs and two results, one total and paging across both.
        let reply = get(format!("/Observation?patient={}&_count=3", c.puuid_a), token.clone()).await;
        let page = docs.keep(&reply);
        assert_eq!(page["total"], 4, "{}", reply.text);
        let mut seen = ids(&page);
        assert_eq!(seen.len(), 3);
        let next = hearth_tests::fhir::link(&page, "next").expect("a next page");
        let reply = app.get(&next, &token).await;
        seen.extend(ids(&docs.keep(&reply)));
        assert_eq!(seen.len(), 4);
        assert!(seen.contains(&CHOLESTEROL.to_owned()) && seen.contains(&HDL.to_owned()), "{seen:?}");
        let categories = get(format!("/Observation?patient={}&category=vital-signs", c.puuid_a), token.clone()).await;
        assert_eq!(docs.keep(&categories)["total"], 2);

        // Provenance, read and by _revinclude.
        let reply = get(format!("/Provenance/{LIPIDS_REPORT}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(docs.keep(&reply)["target"][0]["reference"], json!(format!("DiagnosticReport/{LIPIDS_REPORT}")));
        for path in [
            format!("/DiagnosticReport?patient={}&_revinclude=Provenance:target", c.puuid_a),
            format!("/ServiceRequest?patient={}&_revinclude=Provenance:target", c.puuid_a),
            format!("/Specimen?patient={}&_revinclude=Provenance:target", c.puuid_a),
        ] {
            let reply = get(path.clone(), token.clone()).await;
            let bundle = docs.keep(&reply);
            let matches = bundle["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "match").count();
            let included = bundle["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").count();
            assert!(matches > 0 && included == matches, "{path}: {}", reply.text);
        }

        // Provenance by its target's last change: a report's is its own report time
        // (narrowed through the report's and its order's time indexes, migration 0580).
        let reply = get("/Provenance?_lastUpdated=ge2024-03-02&_lastUpdated=lt2024-03-03&_count=200".to_owned(), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let changed = ids(&docs.keep(&reply));
        assert!(changed.contains(&LIPIDS_REPORT.to_owned()), "{changed:?}");
        assert!(!changed.contains(&A1C_REPORT.to_owned()), "{changed:?}");
        let reply = get("/Provenance?_lastUpdated=ge2024-04-02&_lastUpdated=lt2024-04-03&_count=200".to_owned(), token.clone()).await;
        let changed = ids(&docs.keep(&reply));
        assert!(changed.contains(&A1C_REPORT.to_owned()) && !changed.contains(&LIPIDS_REPORT.to_owned()), "{changed:?}");

        // Errors, the compartment, scopes and ACLs.
        assert_eq!(get(format!("/ServiceRequest/{MISSING}"), token.clone()).await.status, 404);
        assert_eq!(get("/DiagnosticReport?date=someday".to_owned(), token.clone()).await.status, 400);
        assert_eq!(get("/Specimen?collected=x".to_owned(), token.clone()).await.status, 400);
        let bound = app.patient_token("default", &c.puuid_b, "openid api:fhir patient/ServiceRequest.rs patient/DiagnosticReport.rs patient/Specimen.rs patient/Observation.rs").await;
        for (path, expected) in [
            ("/ServiceRequest", owned(&[A1C])),
            ("/DiagnosticReport", owned(&[A1C_REPORT])),
            ("/Specimen", owned(&[SERUM])),
            ("/Observation?category=laboratory", owned(&[HBA1C, COLOR])),
        ] {
            let reply = app.get(&fhir(app, "default", path), &bound).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{path}");
        }
        for path in [format!("/ServiceRequest/{LIPIDS}"), format!("/DiagnosticReport/{LIPIDS_REPORT}"), format!("/Specimen/{BLOOD}"), format!("/Observation/{CHOLESTEROL}")] {
            assert_eq!(app.get(&fhir(app, "default", &path), &bound).await.status, 404, "{path}");
        }
        let granular = app.patient_token("default", &c.puuid_a, "openid api:fhir patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory").await;
        let reply = app.get(&fhir(app, "default", "/Observation"), &granular).await;
        assert_eq!(sorted(ids(&docs.keep(&reply))), owned(&[CHOLESTEROL, HDL]), "only the laboratory category: {}", reply.text);
        let none = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        assert_eq!(app.get(&fhir(app, "default", "/ServiceRequest"), &none).await.status, 403);
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "default", "/DiagnosticReport"), &front).await.status, 403, "admin/super");
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", &format!("/DiagnosticReport/{LIPIDS_REPORT}")), &second).await.status, 404);
        assert_eq!(app.get(&fhir(app, "second", "/Specimen"), &second).await.json["total"], 0);
        docs.validate();
    }

    async fn fhir_serves_medications_dispenses_and_both_kinds_of_medication_request(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let c = chart(app, &token).await;
        formulary(app).await;
        let url = |path: &str| app.api("default", path);
        let listed = app
            .post(
                &url(&format!("/api/patient/{}/medication", c.pid_a)),
                &token,
                json!({"title": "Aspirin 81 MG", "diagnosis": "RXNORM:243670", "begdate": "2023-01-01 00:00:00"}),
            )
            .await;
        assert_eq!(listed.status, 201, "{}", listed.text);
        let listed_id = listed.json["id"].as_i64().unwrap();
        let drugs = app.get(&url("/api/drug?active=1"), &token).await;
        let drug_id = drugs.json["data"][0]["drug_id"].as_i64().unwrap();
        let reply = app
            .post(
                &url("/api/prescription"),
                &token,
                json!({"patient_id": c.pid_a, "drug": "Lisinopril 10 MG Oral Tablet",
                    "drug_id": drug_id, "rxnorm_drugcode": "314076", "dosage": "1", "form": "2",
                    "route": "1", "interval": "9", "quantity": "30", "refills": 2,
                    "start_date": "2024-02-01", "provider_id": c.doctor, "encounter": c.eid}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let rx = reply.json["data"]["uuid"].as_str().unwrap().to_owned();
        let rx_id = reply.json["data"]["id"].as_i64().unwrap();
        // Two fills at the clinic's dispensary, and a purchase for stock (not a dispense).
        for (uuid, at, kind) in [(FIRST_FILL, "2024-02-01 10:00:00", 1), (REFILL, "2024-03-02 10:00:00", 1), ("90cde167-0000-4000-8000-00000000f003", "2024-01-15 10:00:00", 2)] {
            sql(app, "default", format!(
                "INSERT INTO drug_sales (uuid, drug_id, inventory_id, prescription_id, pid, encounter, \
                 \"user\", sale_date, quantity, trans_type, last_updated) SELECT '{uuid}', drug_id, \
                 inventory_id, {rx_id}, {pid}, 0, 'admin', '{at}', 30, {kind}, '{at}' FROM drug_inventory \
                 WHERE drug_id = {drug_id}",
                pid = if kind == 1 { c.pid_a } else { 0 }
            ))
            .await;
        }
        let listed_uuid = app.rows("default", "SELECT CAST(uuid AS TEXT) AS uuid, id FROM lists WHERE type = 'medication'").await;
        assert_eq!(listed_uuid[0]["id"], json!(listed_id));
        let listed_uuid = listed_uuid[0]["uuid"].as_str().unwrap().to_owned();
        let mut docs = Documents::default();
        let get = |path: String, token: String| async move {
            app.get(&fhir(app, "default", &path), &token).await
        };

        // Medication: the formulary, outside the patient compartment.
        let reply = get(format!("/Medication/{LISINOPRIL}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let m = docs.keep(&reply);
        assert_eq!(m["code"]["coding"][0], json!({"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "314076", "display": "Lisinopril 10 MG Oral Tablet"}));
        assert_eq!(m["code"]["coding"][1]["system"], "http://hl7.org/fhir/sid/ndc");
        assert_eq!(m["form"]["text"], "tablet");
        assert_eq!(docs.keep(&get(format!("/Medication/{AMOXICILLIN}"), token.clone()).await)["status"], "inactive");
        for (query, expected) in [
            ("".to_owned(), owned(&[LISINOPRIL, AMOXICILLIN])),
            (format!("?_id={AMOXICILLIN}"), owned(&[AMOXICILLIN])),
            ("?code=http://www.nlm.nih.gov/research/umls/rxnorm|314076".to_owned(), owned(&[LISINOPRIL])),
        ] {
            let reply = get(format!("/Medication{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{query}");
        }

        // MedicationRequest: the listed medication (plan) and the prescription (order).
        let reply = get(format!("/MedicationRequest?patient={}", c.puuid_a), token.clone()).await;
        let bundle = docs.keep(&reply);
        assert_eq!(bundle["total"], 2, "{}", reply.text);
        assert_eq!(sorted(ids(&bundle)), sorted(vec![listed_uuid.clone(), rx.clone()]));
        let reply = get(format!("/MedicationRequest/{rx}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let order = docs.keep(&reply);
        assert_eq!((order["intent"].clone(), order["status"].clone()), (json!("order"), json!("active")));
        assert_eq!(order["medicationCodeableConcept"]["coding"][0]["code"], "314076");
        assert_eq!(order["dosageInstruction"][0]["text"], "1 tablet Per Oris daily");
        assert_eq!(order["dosageInstruction"][0]["route"]["coding"][0]["code"], "PO");
        assert_eq!(order["dispenseRequest"]["numberOfRepeatsAllowed"], 2);
        assert_eq!(order["dispenseRequest"]["quantity"]["value"], 30.0);
        assert_eq!(order["dispenseRequest"]["validityPeriod"]["start"], "2024-02-01T00:00:00Z");
        assert_eq!(order["encounter"]["reference"], json!(format!("Encounter/{}", c.euuid)));
        assert_eq!(order["category"][0]["coding"][0]["code"], "community");
        assert!(order["requester"]["reference"].as_str().unwrap().starts_with("Practitioner/"));
        let plan = docs.keep(&get(format!("/MedicationRequest/{listed_uuid}"), token.clone()).await);
        assert_eq!((plan["intent"].clone(), plan["reportedBoolean"].clone()), (json!("plan"), json!(true)));
        for (query, expected) in [
            ("?intent=order".to_owned(), vec![rx.clone()]),
            ("?intent=plan".to_owned(), vec![listed_uuid.clone()]),
            ("?code=http://www.nlm.nih.gov/research/umls/rxnorm|314076".to_owned(), vec![rx.clone()]),
            ("?code=243670".to_owned(), vec![listed_uuid.clone()]),
            (format!("?encounter={}", c.euuid), vec![rx.clone()]),
            (format!("?encounter=Encounter/{}&intent=order", c.euuid), vec![rx.clone()]),
            (format!("?encounter={}&intent=plan", c.euuid), vec![]),
            ("?status=active".to_owned(), sorted(vec![listed_uuid.clone(), rx.clone()])),
            // `intent` leaves out the branch it cannot match before the SQL is built
            // (hearth_fhir::branches): each form of a token reads as the search reads it.
            ("?intent=plan,order".to_owned(), sorted(vec![listed_uuid.clone(), rx.clone()])),
            ("?intent=http://hl7.org/fhir/CodeSystem/medicationrequest-intent|order".to_owned(), vec![rx.clone()]),
            ("?intent=http://hl7.org/fhir/CodeSystem/medicationrequest-intent|".to_owned(), sorted(vec![listed_uuid.clone(), rx.clone()])),
            ("?intent=|order".to_owned(), vec![]),
            ("?intent:not=plan".to_owned(), vec![rx.clone()]),
            ("?intent=plan&intent=order".to_owned(), vec![]),
            ("?intent=proposal".to_owned(), vec![]),
            ("?intent:missing=false".to_owned(), sorted(vec![listed_uuid.clone(), rx.clone()])),
            ("?intent:missing=true".to_owned(), vec![]),
        ] {
            let reply = get(format!("/MedicationRequest{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{query}");
        }
        for (form, expected) in [("intent=order", vec![rx.clone()]), ("intent=plan", vec![listed_uuid.clone()])] {
            let reply = Reply::from(
                app.client
                    .post(fhir(app, "default", "/MedicationRequest/_search"))
                    .bearer_auth(&token)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form)
                    .send()
                    .await
                    .unwrap(),
            )
            .await;
            assert_eq!(reply.status, 200, "POST {form}: {}", reply.text);
            assert_eq!(ids(&docs.keep(&reply)), expected, "POST {form}");
        }
        let reply = get(format!("/MedicationRequest?patient={}&_revinclude=Provenance:target", c.puuid_a), token.clone()).await;
        let included = docs.keep(&reply)["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").count();
        assert_eq!(included, 2, "{}", reply.text);
        // `_include=MedicationRequest:requester` adds the prescribing practitioner once;
        // `requester` finds the prescriptions a practitioner wrote.
        let requester = order["requester"]["reference"].as_str().unwrap().to_owned();
        let reply = get(format!("/MedicationRequest?patient={}&_include=MedicationRequest:requester", c.puuid_a), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let bundle = docs.keep(&reply);
        let included: Vec<String> = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["search"]["mode"] == "include")
            .map(|e| format!("{}/{}", e["resource"]["resourceType"].as_str().unwrap(), e["resource"]["id"].as_str().unwrap()))
            .collect();
        assert_eq!(included, vec![requester.clone()], "{}", reply.text);
        let reply = get(format!("/MedicationRequest?requester={requester}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(ids(&docs.keep(&reply)).contains(&rx), "{}", reply.text);

        // MedicationDispense.
        let reply = get(format!("/MedicationDispense/{REFILL}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let d = docs.keep(&reply);
        assert_eq!(d["status"], "completed");
        assert_eq!(d["type"]["coding"][0]["code"], "RF");
        assert_eq!(d["authorizingPrescription"][0]["reference"], json!(format!("MedicationRequest/{rx}")));
        assert_eq!(d["whenHandedOver"], "2024-03-02T10:00:00Z");
        assert_eq!(d["quantity"]["value"], 30);
        assert_eq!(d["medicationCodeableConcept"]["coding"][0]["code"], "314076");
        for (query, expected) in [
            (format!("?patient={}", c.puuid_a), owned(&[FIRST_FILL, REFILL])),
            ("?type=FF".to_owned(), owned(&[FIRST_FILL])),
            ("?status=completed".to_owned(), owned(&[FIRST_FILL, REFILL])),
            (format!("?prescription={rx}"), owned(&[FIRST_FILL, REFILL])),
        ] {
            let reply = get(format!("/MedicationDispense{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(sorted(ids(&docs.keep(&reply))), expected, "{query}");
        }
        assert_eq!(get("/MedicationDispense/90cde167-0000-4000-8000-00000000f003".to_owned(), token.clone()).await.status, 404, "a purchase is no dispense");

        // The soft delete reads back at once: the order is stopped.
        assert_eq!(app.delete(&url(&format!("/api/prescription/{rx}")), &token).await.status, 200);
        let stopped = docs.keep(&get(format!("/MedicationRequest/{rx}"), token.clone()).await);
        assert_eq!(stopped["status"], "stopped");
        let reply = get("/MedicationRequest?status=stopped".to_owned(), token.clone()).await;
        assert_eq!(ids(&docs.keep(&reply)), vec![rx.clone()]);

        // The compartment and scopes.
        let bound = app.patient_token("default", &c.puuid_b, "openid api:fhir patient/MedicationRequest.rs patient/MedicationDispense.rs patient/Medication.read").await;
        for path in ["/MedicationRequest", "/MedicationDispense"] {
            let reply = app.get(&fhir(app, "default", path), &bound).await;
            assert_eq!((reply.status, reply.json["total"].clone()), (200, json!(0)), "{path}: {}", reply.text);
        }
        assert_eq!(app.get(&fhir(app, "default", &format!("/MedicationDispense/{REFILL}")), &bound).await.status, 404);
        let reply = app.get(&fhir(app, "default", &format!("/Medication/{LISINOPRIL}")), &bound).await;
        assert_eq!(reply.status, 200, "a formulary drug is no patient's data: {}", reply.text);
        let none = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        assert_eq!(app.get(&fhir(app, "default", "/MedicationDispense"), &none).await.status, 403);
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", &format!("/Medication/{LISINOPRIL}")), &second).await.status, 404);
        docs.validate();
    }

    async fn demo_seed_gives_lab_orders_prescriptions_and_dispenses_the_plugins_serve(app) {
        let site = app.state.sites.get("second").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 40, seed: 3, batch: 15 };
        let summary = hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        assert!(summary.procedure_orders >= 15 && summary.lab_results >= 20, "{summary:?}");
        assert!(summary.prescriptions >= 15 && summary.dispenses >= summary.prescriptions / 2 && summary.drugs >= 5, "{summary:?}");
        let rows = app.rows("second", "SELECT COUNT(*) AS n, COUNT(DISTINCT result_code) AS codes FROM procedure_result").await;
        assert_eq!(rows[0]["n"].as_u64(), Some(summary.lab_results));
        assert!(rows[0]["codes"].as_i64().unwrap() >= 5, "{rows:?}");
        let orphans = app.rows("second", "SELECT COUNT(*) AS n FROM drug_sales s LEFT JOIN prescriptions p ON p.id = s.prescription_id WHERE p.id IS NULL").await;
        assert_eq!(orphans[0]["n"], json!(0), "every dispense fills a seeded prescription");
        let token = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/procedure?_limit=200"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["data"].as_array().unwrap().len() as u64, summary.procedure_orders.min(200));
        let reply = app.get(&app.api("second", "/api/prescription?_limit=200"), &token).await;
        assert_eq!(reply.json["data"].as_array().unwrap().len() as u64, summary.prescriptions.min(200));
        let mut docs = Documents::default();
        for (path, expected) in [
            ("/ServiceRequest?_count=50", summary.procedure_orders),
            ("/Observation?category=laboratory&_count=50", summary.lab_results),
            ("/MedicationDispense?_count=50", summary.dispenses),
            ("/Medication?_count=50", summary.drugs),
            ("/MedicationRequest?intent=order&_count=50", summary.prescriptions),
        ] {
            let bundle = app.get(&fhir(app, "second", path), &token).await;
            assert_eq!(bundle.status, 200, "{path}: {}", bundle.text);
            assert_eq!(bundle.json["total"].as_u64(), Some(expected), "{path}");
            docs.keep(&bundle);
        }
        let reports = app.get(&fhir(app, "second", "/DiagnosticReport?_count=50"), &token).await;
        docs.keep(&reports);
        let specimens = app.get(&fhir(app, "second", "/Specimen?_count=50"), &token).await;
        docs.keep(&specimens);
        docs.validate();
        // API writes after a seed continue the seeded ids.
        let (pid, _) = app.create_patient("second", &token, "Sam", "Seed").await;
        let reply = app.post(&app.api("second", "/api/prescription"), &token, json!({"patient_id": pid, "drug": "Aspirin"})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.json["data"]["id"].as_u64(), Some(summary.prescriptions + 1));
    }
}
