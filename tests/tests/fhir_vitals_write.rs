//! FHIR writes and versions of vital signs, and versions of encounter diagnoses, through
//! the real server on SQLite and PostgreSQL: `POST /fhir/Observation` and
//! `PUT /fhir/Observation/:id` for every US Core vital-sign profile (LOINC codes, UCUM
//! units, metric units converted to OpenEMR's), `If-Match` (a stale version is a 412 and
//! writes nothing), `vread` and instance `_history` over `form_vitals_history`, the
//! standard API's vitals routes reading FHIR's writes and bumping FHIR's versions, every
//! refusal (400, 403, 404, 412, 422) writing nothing, encounter-diagnosis Conditions'
//! versions over `issue_encounter_history`, OpenEMR's `generalPractitioner` Patient
//! parameter, and the CapabilityStatement. Every FHIR document received is validated with
//! `fhir.resources`.

use hearth_tests::fhir::{Documents, fhir, ids, link, only, patient};
use hearth_tests::{Reply, TestApp, Value, both, json};

const SCOPES: &str = "openid api:fhir api:oemr user/Observation.cruds user/Condition.rs \
    user/Patient.rs user/patient.crus user/encounter.crus user/vital.crus \
    user/medical_problem.cruds user/practitioner.crus";

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const US_CORE: &str = "http://hl7.org/fhir/us/core/StructureDefinition/";

/// Sends `method` to `url` with a token, a raw body and extra headers.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.request(method, url).bearer_auth(token);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::from(request.send().await.expect("the server answers")).await
}

async fn create(app: &TestApp, token: &str, body: &Value) -> Reply {
    send(
        app,
        reqwest::Method::POST,
        &fhir(app, "default", "/Observation"),
        token,
        Some(body.to_string()),
        &[],
    )
    .await
}

async fn update(
    app: &TestApp,
    token: &str,
    id: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    send(
        app,
        reqwest::Method::PUT,
        &fhir(app, "default", &format!("/Observation/{id}")),
        token,
        Some(body.to_string()),
        headers,
    )
    .await
}

fn outcome(docs: &mut Documents, reply: &Reply, status: u16, naming: &str) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    let body = docs.keep(reply);
    assert_eq!(body["resourceType"], "OperationOutcome", "{}", reply.text);
    assert!(
        reply.text.contains(naming),
        "the outcome names {naming}: {}",
        reply.text
    );
    body
}

fn quantity(value: f64, code: &str) -> Value {
    json!({"value": value, "unit": code, "system": UCUM, "code": code})
}

fn component(code: &str, value: Value) -> Value {
    json!({"code": {"coding": [{"system": LOINC, "code": code}]}, "valueQuantity": value})
}

/// A vital-sign Observation as a client sends it.
fn observation(
    puuid: &str,
    euuid: &str,
    code: &str,
    value: Option<Value>,
    components: Vec<Value>,
) -> Value {
    let mut o = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": format!("Patient/{puuid}")},
        "encounter": {"reference": format!("Encounter/{euuid}")},
        "effectiveDateTime": "2024-03-04T10:05:00Z",
    });
    if let Some(value) = value {
        o["valueQuantity"] = value;
    }
    if !components.is_empty() {
        o["component"] = Value::Array(components);
    }
    o
}

/// One profile's case: the LOINC code, the profile, the value sent, the components sent,
/// the `form_vitals` column and value the standard API reads back, and the value and
/// UCUM code FHIR reads back.
struct Case {
    code: &'static str,
    profile: &'static str,
    value: Option<Value>,
    components: Vec<Value>,
    column: &'static str,
    stored: Value,
    read: Option<(f64, &'static str)>,
}

fn cases() -> Vec<Case> {
    let case = |code,
                profile,
                value: Option<Value>,
                column,
                stored: Value,
                read: Option<(f64, &'static str)>| Case {
        code,
        profile,
        value,
        components: Vec::new(),
        column,
        stored,
        read,
    };
    vec![
        Case {
            components: vec![
                component("8480-6", quantity(120.0, "mm[Hg]")),
                component("8462-4", quantity(80.0, "mm[Hg]")),
            ],
            ..case(
                "85354-9",
                "us-core-blood-pressure",
                None,
                "bps",
                json!("120"),
                None,
            )
        },
        case(
            "8867-4",
            "us-core-heart-rate",
            Some(quantity(72.0, "/min")),
            "pulse",
            json!(72.0),
            Some((72.0, "/min")),
        ),
        case(
            "9279-1",
            "us-core-respiratory-rate",
            Some(quantity(16.0, "/min")),
            "respiration",
            json!(16.0),
            Some((16.0, "/min")),
        ),
        case(
            "8310-5",
            "us-core-body-temperature",
            Some(quantity(37.0, "Cel")),
            "temperature",
            json!(98.6),
            Some((98.6, "[degF]")),
        ),
        case(
            "8302-2",
            "us-core-body-height",
            Some(quantity(170.0, "cm")),
            "height",
            json!(66.93),
            Some((66.93, "[in_i]")),
        ),
        case(
            "29463-7",
            "us-core-body-weight",
            Some(quantity(70.0, "kg")),
            "weight",
            json!(154.32),
            Some((154.32, "[lb_av]")),
        ),
        case(
            "39156-5",
            "us-core-bmi",
            Some(quantity(24.2, "kg/m2")),
            "BMI",
            json!(24.2),
            Some((24.2, "kg/m2")),
        ),
        Case {
            components: vec![component("3151-8", quantity(2.0, "L/min"))],
            ..case(
                "59408-5",
                "us-core-pulse-oximetry",
                Some(quantity(97.0, "%")),
                "oxygen_saturation",
                json!(97.0),
                Some((97.0, "%")),
            )
        },
        case(
            "9843-4",
            "us-core-head-circumference",
            Some(quantity(18.0, "[in_i]")),
            "head_circ",
            json!(18.0),
            Some((18.0, "[in_i]")),
        ),
        case(
            "59576-9",
            "pediatric-bmi-for-age",
            Some(quantity(55.0, "%")),
            "ped_bmi",
            json!(55.0),
            Some((55.0, "%")),
        ),
        case(
            "77606-2",
            "pediatric-weight-for-height",
            Some(quantity(40.0, "%")),
            "ped_weight_height",
            json!(40.0),
            Some((40.0, "%")),
        ),
        case(
            "8289-1",
            "head-occipital-frontal-circumference-percentile",
            Some(quantity(35.0, "%")),
            "ped_head_circ",
            json!(35.0),
            Some((35.0, "%")),
        ),
    ]
}

async fn pid_of(app: &TestApp, token: &str, puuid: &str) -> i64 {
    let reply = app
        .get(&app.api("default", &format!("/api/patient/{puuid}")), token)
        .await;
    reply.json["data"]["pid"].as_i64().expect("pid")
}

/// A new encounter of the patient through the standard API: its number and uuid.
async fn encounter(app: &TestApp, token: &str, puuid: &str) -> (i64, String) {
    let reply = app
        .post(
            &app.api("default", &format!("/api/patient/{puuid}/encounter")),
            token,
            json!({"pc_catid": "5", "class_code": "AMB", "reason": "Checkup", "date": "2024-03-04 10:00:00"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let data = &reply.json["data"];
    (
        data["eid"].as_i64().expect("eid"),
        data["uuid"].as_str().expect("uuid").to_owned(),
    )
}

/// The standard API's record of the vitals row behind an Observation id.
async fn vital_of(app: &TestApp, token: &str, pid: i64, eid: i64, id: &str) -> Value {
    let row_uuid = format!("{}4{}", &id[..14], &id[15..]);
    let reply = app
        .get(
            &app.api(
                "default",
                &format!("/api/patient/{pid}/encounter/{eid}/vital"),
            ),
            token,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let list = reply
        .json
        .as_array()
        .cloned()
        .or_else(|| reply.json["data"].as_array().cloned())
        .expect("a list");
    let listed = list
        .into_iter()
        .find(|v| v["uuid"] == row_uuid)
        .unwrap_or_else(|| panic!("the vitals row {row_uuid} is listed: {}", reply.text));
    let vid = listed["id"].as_i64().expect("the vitals id");
    let one = app
        .get(
            &app.api(
                "default",
                &format!("/api/patient/{pid}/encounter/{eid}/vital/{vid}"),
            ),
            token,
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.text);
    if one.json.get("data").is_some_and(|d| d.is_object()) {
        one.json["data"].clone()
    } else {
        one.json.clone()
    }
}

fn close(value: &Value, expected: &Value) -> bool {
    match (value.as_f64(), expected.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() < 0.005,
        _ => value == expected,
    }
}

/// Rows that a refused write must leave as they were.
async fn counts(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for sql in [
        "SELECT COUNT(*) AS n FROM form_vitals",
        "SELECT COUNT(*) AS n FROM form_vitals_history",
        "SELECT COUNT(*) AS n FROM forms",
    ] {
        out.push(app.rows("default", sql).await[0]["n"].clone());
    }
    out
}

both! {
    async fn every_vital_sign_is_created_updated_versioned_and_read_on_both_apis(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let puuid = patient(app, &token, json!({"fname": "Vera", "lname": "Vitals"})).await;
        let pid = pid_of(app, &token, &puuid).await;
        let (eid, euuid) = encounter(app, &token, &puuid).await;

        let mut weight = String::new();
        for case in cases() {
            let body = observation(&puuid, &euuid, case.code, case.value.clone(), case.components.clone());
            let created = create(app, &token, &body).await;
            assert_eq!(created.status, 201, "{}: {}", case.code, created.text);
            let o = docs.keep(&created);
            let id = o["id"].as_str().expect("an id").to_owned();
            assert_eq!(
                created.header("location"),
                Some(fhir(app, "default", &format!("/Observation/{id}/_history/1")).as_str()),
                "{}", case.code
            );
            assert_eq!(created.header("etag"), Some("W/\"1\""), "{}", case.code);
            assert_eq!(o["meta"]["versionId"], "1", "{}", case.code);
            assert!(o["meta"]["lastUpdated"].is_string(), "{}", case.code);
            let profiles = o["meta"]["profile"].to_string();
            assert!(profiles.contains(&format!("{US_CORE}{}", case.profile)), "{}: {profiles}", case.code);
            assert_eq!(o["code"]["coding"][0]["code"], case.code);
            assert_eq!(o["category"][0]["coding"][0]["code"], "vital-signs");
            assert_eq!(o["subject"]["reference"], format!("Patient/{puuid}"));
            assert_eq!(o["encounter"]["reference"], format!("Encounter/{euuid}"));
            assert_eq!(o["effectiveDateTime"], "2024-03-04T10:05:00Z");
            match case.read {
                Some((value, code)) => {
                    assert!(close(&o["valueQuantity"]["value"], &json!(value)), "{}: {}", case.code, o["valueQuantity"]);
                    assert_eq!(o["valueQuantity"]["code"], code, "{}", case.code);
                    assert_eq!(o["valueQuantity"]["system"], UCUM);
                }
                None => {
                    assert_eq!(o["component"][0]["valueQuantity"]["value"], 120.0);
                    assert_eq!(o["component"][1]["valueQuantity"]["value"], 80.0);
                }
            }
            if case.code == "59408-5" {
                assert_eq!(o["component"][0]["code"]["coding"][0]["code"], "3151-8");
                assert_eq!(o["component"][0]["valueQuantity"]["value"], 2.0);
            }
            // The same row on the standard API, in the encounter the Observation names.
            let vital = vital_of(app, &token, pid, eid, &id).await;
            assert!(close(&vital[case.column], &case.stored), "{}: {} is {}", case.code, case.column, vital[case.column]);
            // And read back by FHIR.
            let read = app.get(&fhir(app, "default", &format!("/Observation/{id}")), &token).await;
            assert_eq!(read.status, 200, "{}", read.text);
            assert_eq!(read.header("etag"), Some("W/\"1\""));
            docs.keep(&read);
            if case.code == "29463-7" {
                weight = id;
            }
        }

        // Update with If-Match: version 2, shown at once on the standard API.
        let vital = vital_of(app, &token, pid, eid, &weight).await;
        let vid = vital["id"].as_i64().expect("vid");
        let mut body = observation(&puuid, &euuid, "29463-7", Some(quantity(160.0, "[lb_av]")), vec![]);
        body["id"] = json!(weight);
        let updated = update(app, &token, &weight, &body, &[("if-match", "W/\"1\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(updated.header("etag"), Some("W/\"2\""));
        assert_eq!(updated.header("location"), Some(fhir(app, "default", &format!("/Observation/{weight}/_history/2")).as_str()));
        let o = docs.keep(&updated);
        assert_eq!(o["meta"]["versionId"], "2");
        assert_eq!(o["valueQuantity"]["value"], 160.0);
        assert!(close(&vital_of(app, &token, pid, eid, &weight).await["weight"], &json!(160.0)));

        // Without If-Match (metric, converted): version 3.
        body["valueQuantity"] = quantity(75.0, "kg");
        let updated = update(app, &token, &weight, &body, &[]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(updated.header("etag"), Some("W/\"3\""));
        assert!(close(&docs.keep(&updated)["valueQuantity"]["value"], &json!(165.35)));

        // A stale If-Match: 412, nothing written.
        let before = counts(app).await;
        body["valueQuantity"] = quantity(1.0, "[lb_av]");
        outcome(&mut docs, &update(app, &token, &weight, &body, &[("if-match", "W/\"1\"")]).await, 412, "version 3");
        assert_eq!(counts(app).await, before);
        assert!(close(&vital_of(app, &token, pid, eid, &weight).await["weight"], &json!(165.35)));

        // The standard API's write of the row bumps the same version.
        let put = app
            .put(&app.api("default", &format!("/api/patient/{pid}/encounter/{eid}/vital/{vid}")), &token, json!({"weight": 170}))
            .await;
        assert_eq!(put.status, 200, "{}", put.text);
        let read = app.get(&fhir(app, "default", &format!("/Observation/{weight}")), &token).await;
        assert_eq!(read.header("etag"), Some("W/\"4\""));
        let o = docs.keep(&read);
        assert_eq!(o["meta"]["versionId"], "4");
        assert_eq!(o["valueQuantity"]["value"], 170.0);

        // vread: each version as it was; an unknown version is a 404.
        for (version, value) in [(1, 154.32), (2, 160.0), (3, 165.35), (4, 170.0)] {
            let old = app.get(&fhir(app, "default", &format!("/Observation/{weight}/_history/{version}")), &token).await;
            assert_eq!(old.status, 200, "{}", old.text);
            assert_eq!(old.header("etag"), Some(format!("W/\"{version}\"").as_str()));
            let o = docs.keep(&old);
            assert_eq!(o["meta"]["versionId"], version.to_string());
            assert!(close(&o["valueQuantity"]["value"], &json!(value)), "version {version}: {}", o["valueQuantity"]);
        }
        outcome(&mut docs, &app.get(&fhir(app, "default", &format!("/Observation/{weight}/_history/9")), &token).await, 404, "versions are 1 to 4");

        // _history: newest first, with the requests that made each version.
        let history = app.get(&fhir(app, "default", &format!("/Observation/{weight}/_history")), &token).await;
        assert_eq!(history.status, 200, "{}", history.text);
        let bundle = docs.keep(&history);
        assert_eq!(bundle["type"], "history");
        assert_eq!(bundle["total"], 4);
        let versions: Vec<&Value> = bundle["entry"].as_array().unwrap().iter().map(|e| &e["resource"]["meta"]["versionId"]).collect();
        assert_eq!(versions, vec!["4", "3", "2", "1"]);
        assert_eq!(bundle["entry"][3]["request"]["method"], "POST");
        assert_eq!(bundle["entry"][0]["request"]["method"], "PUT");

        // A vitals row the standard API writes is an Observation FHIR updates.
        let reply = app
            .post(&app.api("default", &format!("/api/patient/{pid}/encounter/{eid}/vital")), &token,
                json!({"date": "2024-03-05 09:00:00", "pulse": 64, "bps": "130", "bpd": "85"}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let search = app.get(&fhir(app, "default", &format!("/Observation?patient={puuid}&code=85354-9&date=2024-03-05")), &token).await;
        let bundle = docs.keep(&search);
        assert_eq!(bundle["total"], 1, "{}", search.text);
        let bp = bundle["entry"][0]["resource"]["id"].as_str().unwrap().to_owned();
        assert_eq!(bundle["entry"][0]["resource"]["meta"]["versionId"], "1");
        let mut body = observation(&puuid, &euuid, "85354-9", None, vec![
            component("8480-6", quantity(125.0, "mm[Hg]")),
            component("8462-4", quantity(82.5, "mm[Hg]")),
        ]);
        body["id"] = json!(bp);
        body.as_object_mut().unwrap().remove("effectiveDateTime");
        let updated = update(app, &token, &bp, &body, &[("if-match", "W/\"1\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(docs.keep(&updated)["component"][1]["valueQuantity"]["value"], 82.5);
        let vital = vital_of(app, &token, pid, eid, &bp).await;
        assert_eq!(vital["bps"], "125");
        assert_eq!(vital["bpd"], "82.5");
        assert!(close(&vital["pulse"], &json!(64.0)), "the row's other measurements stay");

        // The CapabilityStatement lists the writes and versions of Observation.
        let metadata = app.get(&fhir(app, "default", "/metadata"), &token).await;
        assert_eq!(metadata.status, 200, "{}", metadata.text);
        let statement = docs.keep(&metadata);
        let resource = statement["rest"][0]["resource"].as_array().unwrap().iter()
            .find(|r| r["type"] == "Observation").expect("Observation is listed").clone();
        let interactions: Vec<&str> = resource["interaction"].as_array().unwrap().iter().filter_map(|i| i["code"].as_str()).collect();
        for code in ["read", "search-type", "create", "update", "vread", "history-instance"] {
            assert!(interactions.contains(&code), "{code}: {interactions:?}");
        }
        assert_eq!(resource["versioning"], "versioned-update");
        docs.validate();
    }

    async fn refused_writes_write_nothing(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let puuid = patient(app, &token, json!({"fname": "Rita", "lname": "Refused"})).await;
        let other = patient(app, &token, json!({"fname": "Otto", "lname": "Other"})).await;
        let (_, euuid) = encounter(app, &token, &puuid).await;
        let (_, other_encounter) = encounter(app, &token, &other).await;
        let weight = |value: Value| observation(&puuid, &euuid, "29463-7", Some(value), vec![]);
        let created = create(app, &token, &weight(quantity(150.0, "[lb_av]"))).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = docs.keep(&created)["id"].as_str().unwrap().to_owned();
        let before = counts(app).await;

        // 422: each rule failure names what is wrong.
        outcome(&mut docs, &create(app, &token, &weight(quantity(10.0, "[stone]"))).await, 422, "[stone]");
        outcome(&mut docs, &create(app, &token, &weight(json!({"value": 10, "system": "http://example.org/units", "code": "kg"}))).await, 422, "UCUM");
        outcome(&mut docs, &create(app, &token, &weight(quantity(-3.0, "kg"))).await, 422, "greater than 0");
        outcome(&mut docs, &create(app, &token, &observation(&puuid, &euuid, "1234-5", Some(quantity(1.0, "%")), vec![])).await, 422, "LOINC 1234-5");
        let smoking = json!({"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "72166-2"}]},
            "subject": {"reference": format!("Patient/{puuid}")},
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "8517006"}]}});
        outcome(&mut docs, &create(app, &token, &smoking).await, 422, "72166-2");
        let mut no_encounter = weight(quantity(150.0, "[lb_av]"));
        no_encounter.as_object_mut().unwrap().remove("encounter");
        outcome(&mut docs, &create(app, &token, &no_encounter).await, 422, "Observation.encounter");
        outcome(&mut docs, &create(app, &token, &observation(&puuid, &other_encounter, "29463-7", Some(quantity(150.0, "[lb_av]")), vec![])).await, 422, "not an encounter of the subject");
        let mut lab = weight(quantity(150.0, "[lb_av]"));
        lab["category"] = json!([{"coding": [{"system": CATEGORY, "code": "laboratory"}]}]);
        outcome(&mut docs, &create(app, &token, &lab).await, 422, "laboratory");
        outcome(&mut docs, &create(app, &token, &observation(&puuid, &euuid, "85354-9", None, vec![component("8480-6", quantity(120.0, "mm[Hg]"))])).await, 422, "8462-4");
        let mut moved = weight(quantity(150.0, "[lb_av]"));
        moved["id"] = json!(id);
        moved["subject"] = json!({"reference": format!("Patient/{other}")});
        outcome(&mut docs, &update(app, &token, &id, &moved, &[]).await, 422, "another patient");
        let mut recoded = observation(&puuid, &euuid, "8867-4", Some(quantity(70.0, "/min")), vec![]);
        recoded["id"] = json!(id);
        outcome(&mut docs, &update(app, &token, &id, &recoded, &[]).await, 422, "another vital sign");

        // 400: not an Observation, or an id that is not the URL's.
        let mut patient_body = weight(quantity(150.0, "[lb_av]"));
        patient_body["resourceType"] = json!("Patient");
        outcome(&mut docs, &create(app, &token, &patient_body).await, 400, "resourceType");
        outcome(&mut docs, &update(app, &token, &id, &weight(quantity(150.0, "[lb_av]")), &[]).await, 400, "id");
        outcome(&mut docs, &update(app, &token, &id, &{ let mut b = weight(quantity(150.0, "[lb_av]")); b["id"] = json!(id); b }, &[("if-match", "soon")]).await, 400, "If-Match");

        // 404: an update cannot create.
        let unknown = "90cde167-0000-6000-8000-00000000dead";
        let mut ghost = weight(quantity(150.0, "[lb_av]"));
        ghost["id"] = json!(unknown);
        outcome(&mut docs, &update(app, &token, unknown, &ghost, &[]).await, 404, unknown);

        // 403: a patient-bound token, a granular scope without vital signs, a user whose
        // ACL does not write encounter notes; 401 without a token.
        let own = app.patient_token("default", &puuid, "openid api:fhir patient/Observation.cruds").await;
        outcome(&mut docs, &create(app, &own, &weight(quantity(150.0, "[lb_av]"))).await, 403, "");
        let labs = app.user_token("default", "admin", &format!("openid api:fhir user/Observation.crus?category={CATEGORY}|laboratory")).await;
        outcome(&mut docs, &create(app, &labs, &weight(quantity(150.0, "[lb_av]"))).await, 403, "vital-signs");
        app.user("default", "clerk", "accounting").await;
        let clerk = app.user_token("default", "clerk", SCOPES).await;
        let refused = create(app, &clerk, &weight(quantity(150.0, "[lb_av]"))).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        let anonymous = app.client.post(fhir(app, "default", "/Observation"))
            .header("content-type", "application/fhir+json")
            .body(weight(quantity(150.0, "[lb_av]")).to_string()).send().await.unwrap();
        assert_eq!(anonymous.status(), 401);

        assert_eq!(counts(app).await, before, "a refused write changed the database");
        let read = docs.keep(&app.get(&fhir(app, "default", &format!("/Observation/{id}")), &token).await);
        assert_eq!(read["meta"]["versionId"], "1");
        assert_eq!(read["valueQuantity"]["value"], 150.0);

        // A granular scope that admits vital signs writes.
        let vitals = app.user_token("default", "admin", &format!("openid api:fhir user/Observation.crus?category={CATEGORY}|vital-signs")).await;
        let made = create(app, &vitals, &weight(quantity(151.0, "[lb_av]"))).await;
        assert_eq!(made.status, 201, "{}", made.text);
        docs.keep(&made);
        docs.validate();
    }

    async fn encounter_diagnoses_have_versions(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let puuid = patient(app, &token, json!({"fname": "Dina", "lname": "Diagnosed"})).await;
        let (eid, euuid) = encounter(app, &token, &puuid).await;
        let problem = app
            .post(&app.api("default", &format!("/api/patient/{puuid}/medical_problem")), &token,
                json!({"title": "Hypertension", "begdate": "2020-01-02", "diagnosis": "ICD10:I10"}))
            .await;
        assert_eq!(problem.status, 201, "{}", problem.text);
        let problem = problem.json["data"]["uuid"].as_str().unwrap().to_owned();
        // The problem addressed in the encounter (what the standard API has no route for).
        let site = app.state.sites.get("default").await.unwrap();
        let linking = format!(
            "INSERT INTO issue_encounter (pid, list_id, encounter, resolved) \
             SELECT pid, id, {eid}, 0 FROM lists WHERE CAST(uuid AS TEXT) = '{problem}'"
        );
        hearth::on_db!(&site.db, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(linking.clone())).execute(pool).await.expect("linking");
        });
        let search = app.get(&fhir(app, "default", &format!("/Condition?patient={puuid}&category=encounter-diagnosis")), &token).await;
        let bundle = docs.keep(&search);
        assert_eq!(bundle["total"], 1, "{}", search.text);
        let diagnosis = bundle["entry"][0]["resource"]["id"].as_str().unwrap().to_owned();
        assert_eq!(bundle["entry"][0]["resource"]["meta"]["versionId"], "1");
        assert_eq!(bundle["entry"][0]["resource"]["encounter"]["reference"], format!("Encounter/{euuid}"));

        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE issue_encounter SET resolved = 1").execute(pool).await.expect("resolving");
        });
        let read = app.get(&fhir(app, "default", &format!("/Condition/{diagnosis}")), &token).await;
        assert_eq!(read.header("etag"), Some("W/\"2\""));
        assert_eq!(docs.keep(&read)["clinicalStatus"]["coding"][0]["code"], "resolved");
        let first = app.get(&fhir(app, "default", &format!("/Condition/{diagnosis}/_history/1")), &token).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let first = docs.keep(&first);
        assert_eq!(first["id"], diagnosis.as_str());
        assert_eq!(first["clinicalStatus"]["coding"][0]["code"], "active");
        assert_eq!(first["category"][0]["coding"][0]["code"], "encounter-diagnosis");
        let history = app.get(&fhir(app, "default", &format!("/Condition/{diagnosis}/_history")), &token).await;
        assert_eq!(history.status, 200, "{}", history.text);
        let bundle = docs.keep(&history);
        assert_eq!(bundle["total"], 2);
        assert_eq!(ids(&bundle), vec![diagnosis.clone(), diagnosis.clone()]);
        // The problem itself keeps its own versions.
        let own = app.get(&fhir(app, "default", &format!("/Condition/{problem}/_history")), &token).await;
        assert_eq!(docs.keep(&own)["total"], 1, "{}", own.text);
        docs.validate();
    }

    async fn patients_search_by_openemrs_general_practitioner(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let made = app
            .post(&app.api("default", "/api/practitioner"), &token,
                json!({"fname": "Gina", "lname": "Practice", "npi": "1231231231"}))
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
        let uuid = made.json["data"]["uuid"].as_str().unwrap().to_owned();
        let id = made.json["data"]["id"].as_i64().unwrap();
        let mine = patient(app, &token, json!({"lname": "Cared", "providerID": id})).await;
        patient(app, &token, json!({"lname": "Elsewhere"})).await;
        let base = fhir(app, "default", "");
        for value in [format!("Practitioner/{uuid}"), uuid.clone(), format!("{base}/Practitioner/{uuid}")] {
            let url = reqwest::Url::parse_with_params(&fhir(app, "default", "/Patient"), &[("generalPractitioner", value.as_str())]).unwrap();
            let reply = app.get(url.as_str(), &token).await;
            assert_eq!(reply.status, 200, "{value}: {}", reply.text);
            let bundle = docs.keep(&reply);
            assert_eq!(ids(&bundle), only(&mine), "{value}");
            let own = link(&bundle, "self").expect("a self link");
            assert!(own.contains("generalPractitioner"), "self lists the parameter: {own}");
        }
        let none = app.get(&fhir(app, "default", "/Patient?generalPractitioner=Practitioner/90cde167-0000-4000-8000-00000000dead"), &token).await;
        assert_eq!(docs.keep(&none)["total"], 0);
        let statement = docs.keep(&app.get(&fhir(app, "default", "/metadata"), &token).await);
        let patient_type = statement["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Patient").unwrap().clone();
        let param = patient_type["searchParam"].as_array().unwrap().iter().find(|p| p["name"] == "generalPractitioner").expect("listed").clone();
        assert_eq!(param["type"], "reference");
        docs.validate();
    }
}
