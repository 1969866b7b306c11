//! Immunizations through the real server, on both databases: the standard API's
//! read-only routes (filters, sorting, paging, the envelope), FHIR `Immunization` (US Core)
//! read and search over the same rows with their Provenance, every FHIR document
//! validated with `fhir.resources`; scopes, ACLs, the patient compartment, site isolation
//! and the OpenEMR compatibility setting. Immunizations have no write route (OpenEMR's are
//! read-only), so the rows are written in SQL, as OpenEMR's own screens write them.

use hearth_tests::fhir::{Documents, fhir, ids};
use hearth_tests::*;

const SCOPES: &str = "openid api:oemr api:fhir user/patient.crus user/practitioner.crus \
    user/immunization.rs user/Immunization.rs user/Provenance.rs";

const FLU: &str = "90cde167-0000-4000-8000-0000000000b1";
const REFUSED: &str = "90cde167-0000-4000-8000-0000000000b2";
const ERROR: &str = "90cde167-0000-4000-8000-0000000000b3";
const OTHER: &str = "90cde167-0000-4000-8000-0000000000b4";
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

/// Patient A's three immunizations (a flu shot given by the practitioner, a refused
/// dose, one recorded in error) and patient B's COVID-19 dose; answers (puuid A, puuid B).
async fn immunize(app: &TestApp, token: &str) -> (String, String) {
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
    let rows = [
        format!(
            "('{FLU}', {pid_a}, '2024-10-01 09:00:00', '140', 'Sanofi Pasteur', 'FLU-22', {doctor}, 'Dr. House', 0.5, 'ml', '2025-06-30', 'intramuscular', 'left_deltoid', 0, 'Completed', '', '', 'Tolerated well', '2024-10-01 09:05:00', '2024-10-01 09:05:00')"
        ),
        format!(
            "('{REFUSED}', {pid_a}, '2024-11-02 10:00:00', '121', '', '', NULL, '', NULL, '', NULL, '', '', 0, 'Refused', '', 'religious_objection', '', '2024-11-02 10:05:00', '2024-11-02 10:05:00')"
        ),
        format!(
            "('{ERROR}', {pid_a}, '2023-01-05 10:00:00', '03', 'Merck', 'MMR-1', NULL, '', 0.5, 'ml', NULL, 'subcutaneous', 'right_arm', 1, 'Completed', 'hist_inf_src_unspecified', '', '', '2023-01-05 10:05:00', '2023-01-06 11:00:00')"
        ),
        format!(
            "('{OTHER}', {pid_b}, '2024-03-03 08:30:00', '208', 'Pfizer', 'CV-9', {doctor}, '', 0.3, 'ml', NULL, 'intramuscular', 'right_deltoid', 0, 'Completed', '', '', '', '2024-03-03 08:35:00', '2024-03-03 08:35:00')"
        ),
    ];
    for row in rows {
        sql(app, "default", format!(
            "INSERT INTO immunizations (uuid, patient_id, administered_date, cvx_code, manufacturer, \
             lot_number, administered_by_id, administered_by, amount_administered, amount_administered_unit, \
             expiration_date, route, administration_site, added_erroneously, completion_status, \
             information_source, refusal_reason, note, create_date, update_date) VALUES {row}"
        ))
        .await;
    }
    (puuid_a, puuid_b)
}

both! {
    async fn the_standard_api_serves_immunizations_read_only(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (puuid_a, puuid_b) = immunize(app, &token).await;
        let url = |path: &str| app.api("default", path);

        let reply = app.get(&url("/api/immunization"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let data = reply.json["data"].as_array().expect("the envelope's data").clone();
        let uuids: Vec<&str> = data.iter().map(|i| i["uuid"].as_str().unwrap()).collect();
        assert_eq!(uuids, [REFUSED, FLU, OTHER, ERROR], "newest first");
        let flu = &data[1];
        assert_eq!(flu["puuid"], json!(puuid_a));
        assert_eq!(flu["cvx_code"], "140");
        assert_eq!(flu["cvx_code_text"], "Influenza, seasonal, injectable, preservative free");
        assert_eq!(flu["route_display"], "Intramuscular");
        assert_eq!(flu["route_code"], "IM");
        assert_eq!(flu["site_display"], "Left Deltoid");
        assert_eq!(flu["lot_number"], "FLU-22");
        assert_eq!(flu["refusal"], 0);
        assert_eq!(flu["amount_administered"], 0.5);
        assert!(flu["administered_by_uuid"].is_string(), "{flu}");
        assert_eq!(data[0]["refusal"], 1);
        assert_eq!(data[0]["refusal_reason_code"], "RELIG");

        // Filters: OpenEMR's columns, and the patient's uuid.
        for (query, expected) in [
            (format!("?puuid={puuid_a}"), vec![REFUSED, FLU, ERROR]),
            (format!("?puuid={puuid_b}"), vec![OTHER]),
            ("?cvx_code=140".to_owned(), vec![FLU]),
            ("?completion_status=Refused".to_owned(), vec![REFUSED]),
            ("?added_erroneously=1".to_owned(), vec![ERROR]),
            ("?_sort=cvx_code".to_owned(), vec![ERROR, REFUSED, FLU, OTHER]),
            ("?_sort=-administered_date&_limit=2&_offset=1".to_owned(), vec![FLU, OTHER]),
            ("?lot_number=nope".to_owned(), vec![]),
        ] {
            let reply = app.get(&url(&format!("/api/immunization{query}")), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let got: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|i| i["uuid"].as_str().unwrap()).collect();
            assert_eq!(got, expected, "{query}");
        }
        for (query, field) in [("?patient_id=abc", "patient_id"), ("?puuid=nope", "puuid"), ("?_sort=bogus", "_sort"), ("?_limit=ten", "_limit")] {
            let reply = app.get(&url(&format!("/api/immunization{query}")), &token).await;
            assert_eq!(reply.status, 400, "{query}: {}", reply.text);
            assert!(reply.json["validationErrors"][field].is_object(), "{query}: {}", reply.text);
        }
        let reply = app.get(&url(&format!("/api/immunization/{FLU}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["data"]["uuid"], FLU);
        assert_eq!(app.get(&url(&format!("/api/immunization/{MISSING}")), &token).await.status, 404);
        assert_eq!(app.get(&url("/api/immunization/nope"), &token).await.status, 400);
        // Read-only: no write route exists.
        let reply = app.post(&url("/api/immunization"), &token, json!({"cvx_code": "140"})).await;
        assert_eq!(reply.status, 405, "{}", reply.text);

        // Scopes and ACLs.
        let narrow = app.user_token("default", "admin", "openid api:oemr user/immunization.s").await;
        assert_eq!(app.get(&url("/api/immunization"), &narrow).await.status, 200);
        let reply = app.get(&url(&format!("/api/immunization/{FLU}")), &narrow).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        assert!(reply.json["message"].as_str().unwrap().contains("user/immunization.r"));
        let v1 = app.user_token("default", "admin", "openid api:oemr user/immunization.read").await;
        assert_eq!(app.get(&url(&format!("/api/immunization/{FLU}")), &v1).await.status, 200);
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&url("/api/immunization"), &front).await.status, 403, "front office has no patients/med");

        // The other site has none of them; in OpenEMR compatibility a miss is a 200.
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/immunization"), &second).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])));
        let reply = app.get(&app.api("second", &format!("/api/immunization/{FLU}")), &second).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])), "OpenEMR's lost 404");
    }

    async fn fhir_serves_us_core_immunizations_with_their_provenance(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (puuid_a, puuid_b) = immunize(app, &token).await;
        let mut docs = Documents::default();
        let get = |path: String, token: String| async move {
            app.get(&fhir(app, "default", &path), &token).await
        };

        let reply = get(format!("/Immunization/{FLU}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let flu = docs.keep(&reply);
        assert_eq!(flu["status"], "completed");
        assert_eq!(flu["vaccineCode"]["coding"][0], json!({"system": "http://hl7.org/fhir/sid/cvx", "code": "140", "display": "Influenza, seasonal, injectable, preservative free"}));
        assert_eq!(flu["patient"]["reference"], json!(format!("Patient/{puuid_a}")));
        assert_eq!(flu["occurrenceDateTime"], "2024-10-01T09:00:00Z");
        assert_eq!(flu["primarySource"], true);
        assert_eq!(flu["lotNumber"], "FLU-22");
        assert_eq!(flu["expirationDate"], "2025-06-30");
        assert_eq!(flu["route"]["coding"][0]["code"], "IM");
        assert_eq!(flu["site"]["coding"][0]["code"], "LD");
        assert_eq!(flu["doseQuantity"], json!({"value": 0.5, "unit": "ml", "system": "http://unitsofmeasure.org", "code": "mL"}));
        assert_eq!(flu["performer"][0]["function"]["coding"][0]["code"], "AP");
        assert!(flu["performer"][0]["actor"]["reference"].as_str().unwrap().starts_with("Practitioner/"));
        assert!(flu["meta"]["profile"].as_array().unwrap().iter().any(|p| p == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-immunization|7.0.0"));
        let refused = docs.keep(&get(format!("/Immunization/{REFUSED}"), token.clone()).await);
        assert_eq!(refused["status"], "not-done");
        assert_eq!(refused["statusReason"]["coding"][0]["code"], "RELIG");
        let error = docs.keep(&get(format!("/Immunization/{ERROR}"), token.clone()).await);
        assert_eq!(error["status"], "entered-in-error");
        assert_eq!(error["primarySource"], false);

        // Searches.
        for (query, expected) in [
            (format!("?patient={puuid_a}&_sort=date"), vec![ERROR, FLU, REFUSED]),
            (format!("?patient=Patient/{puuid_b}"), vec![OTHER]),
            ("?vaccine-code=http://hl7.org/fhir/sid/cvx|140".to_owned(), vec![FLU]),
            ("?vaccine-code=208,03&_sort=-date".to_owned(), vec![OTHER, ERROR]),
            ("?date=ge2024-10-01&date=lt2024-11-01".to_owned(), vec![FLU]),
            ("?lot-number=cv-9".to_owned(), vec![OTHER]),
            (format!("?_id={FLU}"), vec![FLU]),
        ] {
            let reply = get(format!("/Immunization{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(ids(&docs.keep(&reply)), expected, "{query}");
        }
        let reply = get("/Immunization?date=someday".to_owned(), token.clone()).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(get(format!("/Immunization/{MISSING}"), token.clone()).await.status, 404);

        // Provenance: read, and with _revinclude.
        let reply = get(format!("/Provenance/{FLU}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let provenance = docs.keep(&reply);
        assert_eq!(provenance["target"][0]["reference"], json!(format!("Immunization/{FLU}")));
        let reply = get(format!("/Immunization?patient={puuid_a}&_revinclude=Provenance:target"), token.clone()).await;
        let bundle = docs.keep(&reply);
        let included: Vec<&Value> = bundle["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").collect();
        assert_eq!(included.len(), 3, "{}", reply.text);
        assert!(included.iter().all(|e| e["resource"]["resourceType"] == "Provenance"));

        // The patient compartment and scopes.
        let bound = app.patient_token("default", &puuid_b, "openid api:fhir patient/Immunization.rs").await;
        let reply = app.get(&fhir(app, "default", "/Immunization"), &bound).await;
        assert_eq!(ids(&docs.keep(&reply)), vec![OTHER.to_owned()], "{}", reply.text);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Immunization/{FLU}")), &bound).await.status, 404);
        let v1 = app.patient_token("default", &puuid_b, "openid api:fhir patient/Immunization.read").await;
        assert_eq!(app.get(&fhir(app, "default", &format!("/Immunization/{OTHER}")), &v1).await.status, 200);
        let none = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        assert_eq!(app.get(&fhir(app, "default", "/Immunization"), &none).await.status, 403);
        // Another site has none.
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", &format!("/Immunization/{FLU}")), &second).await.status, 404);
        docs.validate();
    }

    async fn demo_seed_gives_cvx_coded_immunizations_the_plugins_serve(app) {
        let site = app.state.sites.get("second").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 40, seed: 3, batch: 15 };
        let summary = hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        let rows = app.rows("second", "SELECT COUNT(*) AS n, COUNT(DISTINCT cvx_code) AS vaccines FROM immunizations").await;
        assert_eq!(rows[0]["n"].as_u64(), Some(summary.immunizations));
        assert!(summary.immunizations >= 20 && rows[0]["vaccines"].as_i64().unwrap() >= 3, "{summary:?} {rows:?}");
        let unknown = app.rows("second", "SELECT COUNT(*) AS n FROM immunizations i LEFT JOIN codes c ON c.code_type = 100 AND c.code = i.cvx_code WHERE c.id IS NULL").await;
        assert_eq!(unknown[0]["n"], json!(0), "every seeded vaccine is a known CVX code");
        let token = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/immunization?_limit=200"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let data = reply.json["data"].as_array().unwrap();
        assert_eq!(data.len() as u64, summary.immunizations.min(200));
        assert!(data.iter().all(|i| i["cvx_code_text"].is_string() && i["puuid"].is_string()), "{}", reply.text);
        let bundle = app.get(&fhir(app, "second", "/Immunization?_count=200"), &token).await;
        assert_eq!(bundle.status, 200, "{}", bundle.text);
        assert_eq!(bundle.json["total"].as_u64(), Some(summary.immunizations));
        let mut docs = Documents::default();
        docs.keep(&bundle);
        docs.validate();
        // API reads after a seed see the seeded ids continue.
        let next = app.rows("second", "SELECT MAX(id) AS m FROM immunizations").await;
        assert_eq!(next[0]["m"].as_u64(), Some(summary.immunizations));
    }
}
