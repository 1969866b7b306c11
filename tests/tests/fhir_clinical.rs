//! The clinical FHIR types through the real server, on the rows the standard API writes:
//! Condition (problem-list items and encounter diagnoses), AllergyIntolerance and
//! Observation (every vital sign of `form_vitals`, smoking status from `history_data`),
//! with their search parameters, paging across the tables behind one type, SMART scopes
//! v1, v2 and granular (`?category=`), the patient compartment and staff ACLs. Every
//! resource and Bundle received is validated with `fhir.resources`.

use hearth_tests::fhir::{Documents, fhir, ids, link, only, patient};
use hearth_tests::{TestApp, Value, both, json};

const SCOPES: &str = "openid api:fhir api:oemr user/Condition.rs user/AllergyIntolerance.rs \
    user/Observation.rs user/MedicationRequest.rs user/Procedure.rs user/Provenance.rs \
    user/Patient.rs user/patient.crus user/encounter.crus user/vital.crus \
    user/medical_problem.cruds user/allergy.cruds user/medication.cruds user/surgery.cruds \
    user/facility.crus";

const VITAL_SIGNS: &str = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";
const PROBLEMS: &str = "http://terminology.hl7.org/CodeSystem/condition-category|problem-list-item";

/// Runs SQL the standard API has no route for (links of problems to encounters, social
/// history, allergy details), on the site's database.
async fn sql(app: &TestApp, statement: String) {
    let site = app.state.sites.get("default").await.unwrap();
    hearth::on_db!(&site.db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(pool)
            .await
            .expect(&statement);
    });
}

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let reply = app.post(&app.api("default", path), token, body).await;
    assert_eq!(reply.status, 201, "POST {path}: {}", reply.text);
    match reply.json.get("data") {
        Some(data) => data.clone(),
        None => reply.json.clone(),
    }
}

async fn pid_of(app: &TestApp, token: &str, puuid: &str) -> i64 {
    let reply = app
        .get(&app.api("default", &format!("/api/patient/{puuid}")), token)
        .await;
    reply.json["data"]["pid"].as_i64().expect("pid")
}

/// An encounter of the patient: its number (`eid`) and uuid.
async fn new_encounter(app: &TestApp, token: &str, puuid: &str) -> (i64, String) {
    let e = created(
        app,
        token,
        &format!("/api/patient/{puuid}/encounter"),
        json!({"pc_catid": "5", "class_code": "AMB", "reason": "Checkup", "date": "2024-03-04 10:00:00"}),
    )
    .await;
    (
        e["eid"].as_i64().expect("eid"),
        e["uuid"].as_str().expect("uuid").to_owned(),
    )
}

async fn search(app: &TestApp, docs: &mut Documents, token: &str, path: &str) -> Value {
    let reply = app.get(&fhir(app, "default", path), token).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    let bundle = docs.keep(&reply);
    assert_eq!(bundle["type"], "searchset", "{path}");
    bundle
}

fn total(bundle: &Value) -> u64 {
    bundle["total"].as_u64().expect("total")
}

fn codes(bundle: &Value) -> Vec<String> {
    let mut out: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| {
                    e["resource"]["code"]["coding"][0]["code"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned()
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Patient A: an encounter with a full set of vitals, a smoking status, a problem linked
/// to the encounter and an allergy; patient B: a resolved problem and one weight.
struct Chart {
    a: String,
    b: String,
    encounter: String,
    problem: String,
    resolved: String,
    allergy: String,
}

impl Chart {
    async fn build(app: &TestApp, token: &str) -> Chart {
        let a = patient(app, token, json!({"fname": "Ann", "lname": "Adams"})).await;
        let b = patient(
            app,
            token,
            json!({"fname": "Bob", "lname": "Baker", "sex": "Male"}),
        )
        .await;
        let (pid_a, pid_b) = (pid_of(app, token, &a).await, pid_of(app, token, &b).await);
        let (eid, encounter) = new_encounter(app, token, &a).await;
        created(
            app,
            token,
            &format!("/api/patient/{pid_a}/encounter/{eid}/vital"),
            json!({"date": "2024-03-04 10:05:00", "bps": "120", "bpd": "80", "weight": 150.5, "height": 66,
                   "temperature": 98.6, "temp_method": "Oral", "pulse": 70, "respiration": 16,
                   "BMI": 24.3, "oxygen_saturation": 98, "oxygen_flow_rate": 2, "head_circ": 22,
                   "ped_bmi": 50, "ped_weight_height": 45, "ped_head_circ": 40, "note": "seated"}),
        )
        .await;
        let (eid_b, _) = new_encounter(app, token, &b).await;
        created(
            app,
            token,
            &format!("/api/patient/{pid_b}/encounter/{eid_b}/vital"),
            json!({"date": "2023-01-01 09:00:00", "weight": 180}),
        )
        .await;
        let problem = created(
            app,
            token,
            &format!("/api/patient/{a}/medical_problem"),
            json!({"title": "Hypertension", "begdate": "2020-01-02", "diagnosis": "ICD10:I10;SNOMED-CT:38341003"}),
        )
        .await["uuid"]
            .as_str()
            .unwrap()
            .to_owned();
        let resolved = created(
            app,
            token,
            &format!("/api/patient/{b}/medical_problem"),
            json!({"title": "Sprained ankle", "begdate": "2021-06-01", "enddate": "2021-07-01", "diagnosis": "ICD10:S93.401A"}),
        )
        .await["uuid"]
            .as_str()
            .unwrap()
            .to_owned();
        let allergy = created(
            app,
            token,
            &format!("/api/patient/{a}/allergy"),
            json!({"title": "Penicillin", "begdate": "2019-05-06 00:00:00", "diagnosis": "RXNORM:7980"}),
        )
        .await["uuid"]
            .as_str()
            .unwrap()
            .to_owned();
        // What the standard API does not write: the problem addressed in the encounter,
        // OpenEMR's allergy details, and tobacco use.
        sql(
            app,
            format!(
                "INSERT INTO issue_encounter (pid, list_id, encounter, resolved) \
             SELECT pid, id, {eid}, 0 FROM lists WHERE CAST(uuid AS TEXT) = '{problem}'"
            ),
        )
        .await;
        sql(app, format!(
            "UPDATE lists SET verification = 'confirmed', reaction = 'hives', severity_al = 'severe', outcome = 0 \
             WHERE CAST(uuid AS TEXT) = '{allergy}'"
        ))
        .await;
        sql(app, format!(
            "UPDATE lists SET verification = 'confirmed', outcome = 1 WHERE CAST(uuid AS TEXT) = '{resolved}'"
        ))
        .await;
        sql(app, format!(
            "INSERT INTO history_data (uuid, date, pid, tobacco, last_updated) VALUES \
             ('90cde167-aaaa-4bbb-8ccc-000000000001', '2024-03-04 10:10:00', {pid_a}, 'half a pack a day|2|2024-03-04', '2024-03-04 10:10:00')"
        ))
        .await;
        Chart {
            a,
            b,
            encounter,
            problem,
            resolved,
            allergy,
        }
    }
}

both! {
    async fn conditions_are_problems_and_encounter_diagnoses(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let chart = Chart::build(app, &token).await;

        let reply = app.get(&fhir(app, "default", &format!("/Condition/{}", chart.problem)), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
        let c = docs.keep(&reply);
        assert_eq!(c["id"], chart.problem.as_str());
        assert!(c["meta"]["profile"].as_array().unwrap().contains(&json!(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-problems-health-concerns|7.0.0"
        )));
        assert_eq!(c["category"][0]["coding"][0]["code"], "problem-list-item");
        assert_eq!(c["clinicalStatus"]["coding"][0]["code"], "active");
        assert_eq!(c["code"]["coding"][0], json!({"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}));
        assert_eq!(c["code"]["coding"][1]["system"], "http://snomed.info/sct");
        assert_eq!(c["code"]["text"], "Hypertension");
        assert_eq!(c["subject"]["reference"], format!("Patient/{}", chart.a));
        assert_eq!(c["onsetDateTime"], "2020-01-02T00:00:00Z");
        assert!(reply.header("etag").is_some());

        let resolved = docs.keep(&app.get(&fhir(app, "default", &format!("/Condition/{}", chart.resolved)), &token).await);
        assert_eq!(resolved["clinicalStatus"]["coding"][0]["code"], "resolved");
        assert_eq!(resolved["verificationStatus"]["coding"][0]["code"], "confirmed");
        assert_eq!(resolved["abatementDateTime"], "2021-07-01T00:00:00Z");

        // The problem addressed in the encounter is also an encounter diagnosis.
        let mine = search(app, &mut docs, &token, &format!("/Condition?patient={}", chart.a)).await;
        assert_eq!(total(&mine), 2);
        let diagnosis = search(app, &mut docs, &token, &format!("/Condition?patient=Patient/{}&category=encounter-diagnosis", chart.a)).await;
        assert_eq!(total(&diagnosis), 1);
        let d = &diagnosis["entry"][0]["resource"];
        assert_eq!(d["encounter"]["reference"], format!("Encounter/{}", chart.encounter));
        assert_eq!(d["category"][0]["coding"][0]["code"], "encounter-diagnosis");
        assert!(d["meta"]["profile"].as_array().unwrap().contains(&json!(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-condition-encounter-diagnosis|7.0.0"
        )));
        let d_id = d["id"].as_str().unwrap().to_owned();
        assert_ne!(d_id, chart.problem);
        assert_eq!(&d_id[..14], &chart.problem[..14], "the diagnosis id shows its problem");
        let again = docs.keep(&app.get(&fhir(app, "default", &format!("/Condition/{d_id}")), &token).await);
        assert_eq!(again["id"], d_id.as_str(), "the id reads back");
        let by_encounter = search(app, &mut docs, &token, &format!("/Condition?encounter=Encounter/{}", chart.encounter)).await;
        assert_eq!(ids(&by_encounter), only(&d_id));

        let mut found = async |query: &str| total(&search(app, &mut docs, &token, &format!("/Condition?{query}")).await);
        assert_eq!(found(&format!("category={PROBLEMS}")).await, 2);
        assert_eq!(found("code=http://hl7.org/fhir/sid/icd-10-cm|I10").await, 2, "the problem and its diagnosis");
        assert_eq!(found("code=http://snomed.info/sct|38341003").await, 2);
        assert_eq!(found("code=I10").await, 2);
        assert_eq!(found("code=http://snomed.info/sct|I10").await, 0, "another system");
        assert_eq!(found("code=S93.401A").await, 1);
        assert_eq!(found("clinical-status=resolved").await, 1);
        assert_eq!(found("clinical-status=http://terminology.hl7.org/CodeSystem/condition-clinical|active").await, 2);
        assert_eq!(found("verification-status=confirmed").await, 1);
        assert_eq!(found("onset-date=2020").await, 2);
        assert_eq!(found("onset-date=ge2021-01-01").await, 1);
        assert_eq!(found("abatement-date:missing=false").await, 1);
        assert_eq!(found("_lastUpdated=ge2000-01-01").await, 3);
        docs.validate();
    }

    async fn allergies_read_as_us_core(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let chart = Chart::build(app, &token).await;
        let reply = app.get(&fhir(app, "default", &format!("/AllergyIntolerance/{}", chart.allergy)), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let a = docs.keep(&reply);
        assert!(a["meta"]["profile"].as_array().unwrap().contains(&json!(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-allergyintolerance"
        )));
        assert_eq!(a["clinicalStatus"]["coding"][0]["code"], "active");
        assert_eq!(a["verificationStatus"]["coding"][0]["code"], "confirmed");
        assert_eq!(a["code"]["coding"][0], json!({"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7980"}));
        assert_eq!(a["patient"]["reference"], format!("Patient/{}", chart.a));
        assert_eq!(a["reaction"][0]["manifestation"][0]["coding"][0]["code"], "247472004");
        assert_eq!(a["reaction"][0]["manifestation"][0]["text"], "Hives");
        assert_eq!(a["reaction"][0]["severity"], "severe");
        let mine = search(app, &mut docs, &token, &format!("/AllergyIntolerance?patient={}", chart.a)).await;
        assert_eq!(ids(&mine), only(&chart.allergy));
        let theirs = search(app, &mut docs, &token, &format!("/AllergyIntolerance?patient={}", chart.b)).await;
        assert_eq!(total(&theirs), 0);
        assert_eq!(total(&search(app, &mut docs, &token, "/AllergyIntolerance?clinical-status=active&code=7980").await), 1);
        assert_eq!(total(&search(app, &mut docs, &token, "/AllergyIntolerance?clinical-status=inactive").await), 0);
        // A problem is not an allergy.
        let wrong = app.get(&fhir(app, "default", &format!("/AllergyIntolerance/{}", chart.problem)), &token).await;
        assert_eq!(wrong.status, 404);
        docs.keep(&wrong);
        docs.validate();
    }

    async fn observations_are_every_vital_sign_and_smoking_status(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let chart = Chart::build(app, &token).await;
        let all = search(app, &mut docs, &token, &format!("/Observation?patient={}&_count=200", chart.a)).await;
        assert_eq!(
            codes(&all),
            ["29463-7", "39156-5", "59408-5", "59576-9", "72166-2", "77606-2", "8289-1", "8302-2", "8310-5", "85354-9", "8867-4", "9279-1", "9843-4"],
            "one Observation per measured value, the panel for both pressures, and smoking status"
        );
        assert_eq!(total(&all), 13);
        let resources: Vec<&Value> = all["entry"].as_array().unwrap().iter().map(|e| &e["resource"]).collect();
        let by_code = |code: &str| *resources.iter().find(|r| r["code"]["coding"][0]["code"] == code).unwrap();
        let bp = by_code("85354-9");
        assert_eq!(bp["component"][0]["code"]["coding"][0]["code"], "8480-6");
        let systolic = &bp["component"][0]["valueQuantity"];
        assert_eq!(systolic["value"].as_f64(), Some(120.0));
        assert_eq!((&systolic["unit"], &systolic["system"], &systolic["code"]), (&json!("mm[Hg]"), &json!("http://unitsofmeasure.org"), &json!("mm[Hg]")));
        assert_eq!(bp["component"][1]["valueQuantity"]["value"].as_f64(), Some(80.0));
        assert_eq!(bp["category"][0]["coding"][0]["code"], "vital-signs");
        assert_eq!(bp["encounter"]["reference"], format!("Encounter/{}", chart.encounter));
        assert_eq!(bp["effectiveDateTime"], "2024-03-04T10:05:00Z");
        assert!(bp["meta"]["profile"].as_array().unwrap().contains(&json!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-blood-pressure")));
        let weight = by_code("29463-7");
        assert_eq!(weight["valueQuantity"]["value"].as_f64(), Some(150.5));
        assert_eq!(weight["valueQuantity"]["code"], "[lb_av]");
        assert!(weight["meta"]["profile"].as_array().unwrap().contains(&json!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-body-weight")));
        assert_eq!(by_code("8310-5")["valueQuantity"]["code"], "[degF]");
        let ox = by_code("59408-5");
        assert_eq!(ox["code"]["coding"][1]["code"], "2708-6");
        assert_eq!(ox["component"][0]["code"]["coding"][0]["code"], "3151-8");
        assert_eq!(ox["component"][0]["valueQuantity"]["value"].as_f64(), Some(2.0));
        let smoking = by_code("72166-2");
        assert_eq!(smoking["category"][0]["coding"][0]["code"], "social-history");
        assert_eq!(smoking["valueCodeableConcept"]["coding"][0], json!({"system": "http://snomed.info/sct", "code": "428041000124106", "display": "Current some day smoker"}));
        assert!(smoking["meta"]["profile"].as_array().unwrap().contains(&json!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-smokingstatus")));

        // Every id is distinct and reads back as the same resource.
        let mut every: Vec<String> = ids(&all);
        every.sort();
        every.dedup();
        assert_eq!(every.len(), 13);
        for id in &every {
            let reply = app.get(&fhir(app, "default", &format!("/Observation/{id}")), &token).await;
            assert_eq!(reply.status, 200, "{id}: {}", reply.text);
            let one = docs.keep(&reply);
            let listed = resources.iter().find(|r| r["id"] == id.as_str()).unwrap();
            assert_eq!(&&one, listed, "{id}");
        }

        // Pages of two walk the vitals and the smoking status together, each once.
        let mut walked = Vec::new();
        let mut page = search(app, &mut docs, &token, &format!("/Observation?patient={}&_count=2", chart.a)).await;
        loop {
            assert_eq!(total(&page), 13, "total counts both tables");
            walked.extend(ids(&page));
            let Some(next) = link(&page, "next") else { break };
            let reply = app.get(&next, &token).await;
            page = docs.keep(&reply);
        }
        walked.sort();
        assert_eq!(walked, every);

        let mut found = async |query: &str| search(app, &mut docs, &token, &format!("/Observation?{query}")).await;
        assert_eq!(total(&found(&format!("patient={}&category={VITAL_SIGNS}", chart.a)).await), 12);
        assert_eq!(total(&found("category=social-history").await), 1);
        assert_eq!(total(&found("code=http://loinc.org|29463-7").await), 2, "both patients' weights");
        assert_eq!(total(&found("code=2708-6").await), 1, "the second coding of pulse oximetry");
        assert_eq!(total(&found("code=http://loinc.org|85354-9,http://loinc.org|8867-4").await), 2);
        assert_eq!(total(&found("code=urn:other|29463-7").await), 0);
        assert_eq!(total(&found("code=29463-7&date=2023").await), 1);
        assert_eq!(total(&found("code=29463-7&date=ge2024-03-04T10:00:00Z").await), 1);
        assert_eq!(total(&found(&format!("encounter={}", chart.encounter)).await), 12);
        let sorted = found("code=29463-7&_sort=-date").await;
        assert_eq!(sorted["entry"][0]["resource"]["subject"]["reference"], format!("Patient/{}", chart.a));
        assert_eq!(total(&found("status=final").await), 14);
        docs.validate();
    }

    async fn scopes_compartments_and_acls_decide_what_is_seen(app) {
        let mut docs = Documents::default();
        let admin = app.user_token("default", "admin", SCOPES).await;
        let chart = Chart::build(app, &admin).await;

        // A patient's token (v1 and v2) sees its own chart only.
        for scope in ["openid api:fhir patient/Observation.read patient/Condition.read", "openid api:fhir patient/Observation.rs patient/Condition.rs"] {
            let token = app.patient_token("default", &chart.a, scope).await;
            let own = search(app, &mut docs, &token, "/Observation").await;
            assert_eq!(total(&own), 13, "{scope}");
            let conditions = search(app, &mut docs, &token, "/Condition").await;
            assert_eq!(total(&conditions), 2, "{scope}");
            let theirs = app.get(&fhir(app, "default", &format!("/Condition/{}", chart.resolved)), &token).await;
            assert_eq!(theirs.status, 404, "{scope}");
            docs.keep(&theirs);
            let asked = search(app, &mut docs, &token, &format!("/Observation?patient={}", chart.b)).await;
            assert_eq!(total(&asked), 0, "{scope}: another patient's chart is out of reach");
        }
        // v2 `.r` reads but does not search.
        let read_only = app.patient_token("default", &chart.a, "openid api:fhir patient/Condition.r").await;
        assert_eq!(app.get(&fhir(app, "default", "/Condition"), &read_only).await.status, 403);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Condition/{}", chart.problem)), &read_only).await.status, 200);
        // No scope for the type: 403 with an OperationOutcome.
        let other = app.patient_token("default", &chart.a, "openid api:fhir patient/Condition.rs").await;
        let refused = app.get(&fhir(app, "default", "/AllergyIntolerance"), &other).await;
        assert_eq!(refused.status, 403);
        assert_eq!(docs.keep(&refused)["resourceType"], "OperationOutcome");

        // A staff user needs the patients/med ACL (front office staff lack it).
        app.user("default", "frontdesk", "front_office").await;
        let clerk = app.user_token("default", "frontdesk", SCOPES).await;
        for path in ["/Observation", "/Condition", "/AllergyIntolerance"] {
            let reply = app.get(&fhir(app, "default", path), &clerk).await;
            assert_eq!(reply.status, 403, "{path}: {}", reply.text);
            docs.keep(&reply);
        }
        app.user("default", "doctor", "physician").await;
        let doctor = app.user_token("default", "doctor", SCOPES).await;
        assert_eq!(total(&search(app, &mut docs, &doctor, "/Observation").await), 14);

        // Granular: vital signs only. Smoking status is never returned, by search or read.
        let vitals = app
            .patient_token("default", &chart.a, &format!("openid api:fhir patient/Observation.rs?category={VITAL_SIGNS}"))
            .await;
        let seen = search(app, &mut docs, &vitals, "/Observation").await;
        assert_eq!(total(&seen), 12);
        assert!(!codes(&seen).contains(&"72166-2".to_owned()));
        assert_eq!(total(&search(app, &mut docs, &vitals, "/Observation?category=social-history").await), 0);
        assert_eq!(total(&search(app, &mut docs, &vitals, "/Observation?code=72166-2").await), 0);
        let all = search(app, &mut docs, &admin, &format!("/Observation?patient={}&code=72166-2", chart.a)).await;
        let smoking = ids(&all).remove(0);
        let hidden = app.get(&fhir(app, "default", &format!("/Observation/{smoking}")), &vitals).await;
        assert_eq!(hidden.status, 404, "outside the granted category: as if absent");
        docs.keep(&hidden);
        let weight = ids(&search(app, &mut docs, &admin, &format!("/Observation?patient={}&code=29463-7", chart.a)).await).remove(0);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Observation/{weight}")), &vitals).await.status, 200);
        // Nor is its Provenance, which would tell that it exists.
        let with_provenance = app
            .patient_token("default", &chart.a, &format!("openid api:fhir patient/Observation.rs?category={VITAL_SIGNS} patient/Provenance.rs"))
            .await;
        let hidden = app.get(&fhir(app, "default", &format!("/Provenance/{smoking}")), &with_provenance).await;
        assert_eq!(hidden.status, 404, "{}", hidden.text);
        docs.keep(&hidden);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Provenance/{weight}")), &with_provenance).await.status, 200);
        let listed = ids(&search(app, &mut docs, &with_provenance, "/Provenance?_count=200").await);
        assert!(listed.contains(&weight) && !listed.contains(&smoking), "{listed:?}");
        assert_eq!(listed.len(), 17, "the patient, 1 encounter, 2 conditions, 1 allergy, 12 vital signs");
        // Granular with the system left out, and two granted categories.
        let two = app
            .patient_token("default", &chart.a, "openid api:fhir patient/Observation.rs?category=vital-signs patient/Observation.rs?category=social-history")
            .await;
        assert_eq!(total(&search(app, &mut docs, &two, "/Observation").await), 13);
        // An unconstrained scope next to a constrained one grants everything.
        let wide = app
            .patient_token("default", &chart.a, &format!("openid api:fhir patient/Observation.rs?category={VITAL_SIGNS} patient/Observation.read"))
            .await;
        assert_eq!(total(&search(app, &mut docs, &wide, "/Observation").await), 13);

        // Granular Condition: problem-list items only, never the encounter diagnosis.
        let problems = app
            .patient_token("default", &chart.a, &format!("openid api:fhir patient/Condition.rs?category={PROBLEMS}"))
            .await;
        let seen = search(app, &mut docs, &problems, "/Condition").await;
        assert_eq!(ids(&seen), only(&chart.problem));
        assert_eq!(total(&search(app, &mut docs, &problems, "/Condition?category=encounter-diagnosis").await), 0);
        // A user's granular user/ scope works on every patient, within its category.
        let staff = app
            .user_token("default", "doctor", &format!("openid api:fhir user/Condition.rs?category={PROBLEMS}"))
            .await;
        let seen = search(app, &mut docs, &staff, "/Condition").await;
        assert_eq!(total(&seen), 2, "both patients' problems, no diagnosis");
        docs.validate();
    }

    async fn errors_are_operation_outcomes(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        for (path, status) in [
            ("/Observation/90cde167-0000-4000-8000-00000000dead", 404),
            ("/Observation/not-an-id", 404),
            ("/Condition/90cde167-0000-4000-8000-00000000dead", 404),
            ("/AllergyIntolerance/nope", 404),
            ("/Observation?date=2024-13", 400),
            ("/Condition?onset-date=x", 400),
            ("/Observation?code:below=x", 400),
            ("/AllergyIntolerance?clinical-status:missing=maybe", 400),
            ("/Condition?_count=x", 400),
        ] {
            let reply = app.get(&fhir(app, "default", path), &token).await;
            assert_eq!(reply.status, status, "{path}: {}", reply.text);
            assert_eq!(reply.header("content-type"), Some("application/fhir+json"), "{path}");
            assert_eq!(docs.keep(&reply)["resourceType"], "OperationOutcome", "{path}");
        }
        let metadata = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        let types: Vec<&str> = metadata.json["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect();
        for served in ["AllergyIntolerance", "Condition", "Observation"] {
            assert!(types.contains(&served), "{types:?}");
        }
        docs.keep(&metadata);
        docs.validate();
    }

    async fn medications_procedures_and_their_provenance(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let chart = Chart::build(app, &token).await;
        let pid_a = pid_of(app, &token, &chart.a).await;
        created(app, &token, &format!("/api/patient/{pid_a}/medication"),
            json!({"title": "Lisinopril 10 mg", "begdate": "2024-01-01", "diagnosis": "RXNORM:314076"})).await;
        created(app, &token, &format!("/api/patient/{pid_a}/medication"),
            json!({"title": "Amoxicillin", "begdate": "2023-01-01", "enddate": "2023-01-10"})).await;
        created(app, &token, &format!("/api/patient/{pid_a}/surgery"),
            json!({"title": "Appendectomy", "begdate": "2010-03-04", "diagnosis": "CPT4:44950"})).await;
        created(app, &token, &format!("/api/patient/{pid_a}/surgery"), json!({"title": "Tonsillectomy"})).await;

        let meds = search(app, &mut docs, &token, &format!("/MedicationRequest?patient={}", chart.a)).await;
        assert_eq!(total(&meds), 2);
        let lisinopril = meds["entry"].as_array().unwrap().iter().map(|e| &e["resource"])
            .find(|r| r["medicationCodeableConcept"]["text"] == "Lisinopril 10 mg").unwrap();
        assert_eq!(lisinopril["intent"], "plan");
        assert_eq!(lisinopril["status"], "active");
        assert_eq!(lisinopril["medicationCodeableConcept"]["coding"][0]["code"], "314076");
        assert!(lisinopril["meta"]["profile"].as_array().unwrap().contains(&json!(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-medicationrequest"
        )));
        assert_eq!(total(&search(app, &mut docs, &token, "/MedicationRequest?status=completed").await), 1);
        assert_eq!(total(&search(app, &mut docs, &token, "/MedicationRequest?intent=plan&code=314076").await), 1);
        assert_eq!(total(&search(app, &mut docs, &token, "/MedicationRequest?intent=order").await), 0);

        let procedures = search(app, &mut docs, &token, &format!("/Procedure?patient={}", chart.a)).await;
        assert_eq!(total(&procedures), 2);
        let appendectomy = search(app, &mut docs, &token, "/Procedure?code=http://www.ama-assn.org/go/cpt|44950&date=2010").await;
        assert_eq!(total(&appendectomy), 1);
        let p = &appendectomy["entry"][0]["resource"];
        assert_eq!(p["status"], "completed");
        assert_eq!(p["performedDateTime"], "2010-03-04T00:00:00Z");
        let undated = search(app, &mut docs, &token, "/Procedure?status=unknown").await;
        assert_eq!(total(&undated), 1, "no date: not claimed completed");
        assert!(undated["entry"][0]["resource"].get("performedDateTime").is_none());

        // Provenance: every resource of a search, with the organization as author.
        let facility = created(app, &token, "/api/facility", json!({"name": "Springfield Clinic", "facility_npi": "1234567890"})).await;
        let org = facility["uuid"].as_str().unwrap().to_owned();
        for path in [
            format!("/Condition?patient={}&_revinclude=Provenance:target", chart.a),
            format!("/Observation?patient={}&_revinclude=Provenance:target&_count=5", chart.a),
            format!("/AllergyIntolerance?patient={}&_revinclude=Provenance:target", chart.a),
            format!("/MedicationRequest?patient={}&_revinclude=Provenance:target", chart.a),
            format!("/Procedure?patient={}&_revinclude=Provenance:target", chart.a),
            format!("/Patient?_id={}&_revinclude=Provenance:target", chart.a),
        ] {
            let bundle = search(app, &mut docs, &token, &path).await;
            let entries = bundle["entry"].as_array().unwrap();
            let (matches, included): (Vec<&Value>, Vec<&Value>) =
                entries.iter().partition(|e| e["search"]["mode"] == "match");
            assert!(!matches.is_empty(), "{path}");
            assert_eq!(matches.len(), included.len(), "{path}: one Provenance per match");
            for (m, p) in matches.iter().zip(&included) {
                let r = &m["resource"];
                let target = format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap());
                assert_eq!(p["resource"]["resourceType"], "Provenance", "{path}");
                assert_eq!(p["resource"]["target"][0]["reference"], target.as_str(), "{path}");
                assert_eq!(p["resource"]["agent"][0]["who"]["reference"], format!("Organization/{org}"));
                assert_eq!(p["resource"]["recorded"], r["meta"]["lastUpdated"], "{path}");
            }
            assert!(link(&bundle, "self").unwrap().contains("_revinclude=Provenance"), "{path}");
            assert_eq!(total(&bundle), matches.len() as u64 + if path.contains("_count=5") { 8 } else { 0 }, "{path}: total counts matches only");
        }
        // Each Provenance reads on its own, by the target's id.
        let reply = app.get(&fhir(app, "default", &format!("/Provenance/{}", chart.problem)), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let p = docs.keep(&reply);
        assert_eq!(p["target"][0]["reference"], format!("Condition/{}", chart.problem));
        assert!(p["meta"]["profile"].as_array().unwrap().contains(&json!(
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"
        )));
        let by_id = search(app, &mut docs, &token, &format!("/Provenance?_id={},{}", chart.allergy, chart.a)).await;
        assert_eq!(total(&by_id), 2);
        let weight = ids(&search(app, &mut docs, &token, &format!("/Observation?patient={}&code=29463-7", chart.a)).await).remove(0);
        let reply = app.get(&fhir(app, "default", &format!("/Provenance/{weight}")), &token).await;
        assert_eq!(docs.keep(&reply)["target"][0]["reference"], format!("Observation/{weight}"));
        // A patient reads its own resources' Provenance, not another's.
        let own = app.patient_token("default", &chart.a, "openid api:fhir patient/Provenance.rs").await;
        assert_eq!(app.get(&fhir(app, "default", &format!("/Provenance/{}", chart.problem)), &own).await.status, 200);
        let theirs = app.get(&fhir(app, "default", &format!("/Provenance/{}", chart.resolved)), &own).await;
        assert_eq!(theirs.status, 404);
        docs.keep(&theirs);
        docs.validate();
    }

    async fn a_smart_client_reads_the_chart_after_a_standalone_launch(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let chart = Chart::build(app, &token).await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::oauth::accounts::set_portal_login(&site, &chart.a, "ann", "ann@example.org", "patient password")
            .await
            .unwrap();
        let reply = hearth_tests::register(app, "default", json!({
            "client_name": "fhirclient chart reader",
            "redirect_uris": [REDIRECT],
            "scope": format!("{CLIENT_SCOPE} launch launch/patient"),
        }))
        .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
        assert!(reply.json.get("client_secret").is_none(), "a public client");
        hearth_tests::enable(app, "default", &client_id).await;

        let output = tokio::process::Command::new(hearth_tests::python())
            .arg(hearth_tests::workspace().join("tests/py/smart_client.py"))
            .env("HEARTH_FHIR_BASE", fhir(app, "default", ""))
            .env("HEARTH_CLIENT_ID", &client_id)
            .env("HEARTH_REDIRECT", REDIRECT)
            .env("HEARTH_SCOPE", CLIENT_SCOPE)
            .env("HEARTH_LOGIN", json!({"user_role": "patient", "username": "ann", "password": "patient password", "email": "ann@example.org"}).to_string())
            .env("HEARTH_EXPECT", json!({"patient": chart.a, "family": "Adams", "Observation": 13, "Condition": 2, "AllergyIntolerance": 1, "Encounter": 1}).to_string())
            .output()
            .await
            .expect("running tests/py/smart_client.py (scripts/setup-py-tests installs fhirclient)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let result = stdout
            .lines()
            .find_map(|line| line.strip_prefix("HEARTH-RESULT "))
            .unwrap_or_else(|| panic!("no result line:\n{stdout}\n{stderr}"));
        let result: Value = serde_json::from_str(result).unwrap();
        assert_eq!(result["failed"], json!([]), "{stdout}\n{stderr}");
        assert_eq!(result["passed"].as_array().unwrap().len(), 9, "{stdout}");
        assert!(output.status.success(), "{stdout}\n{stderr}");
    }
}

const REDIRECT: &str = "https://app.example/callback";

/// What the SMART app asks for (fhirclient adds `launch/patient` for a standalone launch).
const CLIENT_SCOPE: &str = "openid fhirUser patient/Patient.rs patient/Observation.rs \
    patient/Condition.rs patient/AllergyIntolerance.rs patient/Encounter.rs";
