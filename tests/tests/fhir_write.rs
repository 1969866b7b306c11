//! FHIR writes, versions and history through the real server, on SQLite and PostgreSQL:
//! `POST /fhir/Patient` and `PUT /fhir/Patient/:id` (201/200, `Location` with the
//! version, `ETag`, `Prefer`), the version counter every writer bumps (the standard
//! API's writes as well as FHIR's), `If-Match` (a stale version is a 412 and writes
//! nothing, concurrent updates of one version let exactly one win), `vread` and instance
//! `_history`, the patient's birth sex on both APIs, the CapabilityStatement's
//! interactions, and every refusal (400, 401, 403, 404, 412, 422) leaving the database
//! as it was. Every FHIR document received is validated with `fhir.resources`.

use hearth_tests::fhir::{Documents, fhir};
use hearth_tests::{Reply, TestApp, Value, both, json};

const SCOPES: &str = "openid api:fhir api:oemr user/patient.cruds user/Patient.cruds";

const BIRTH_SEX: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex";
const RACE: &str = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race";

/// Sends `method` to `url` with a token, a raw body and extra headers.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
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

async fn post(app: &TestApp, token: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    send(
        app,
        reqwest::Method::POST,
        &fhir(app, "default", "/Patient"),
        Some(token),
        Some(body.to_string()),
        headers,
    )
    .await
}

async fn put(
    app: &TestApp,
    token: &str,
    id: &str,
    body: &Value,
    headers: &[(&str, &str)],
) -> Reply {
    send(
        app,
        reqwest::Method::PUT,
        &fhir(app, "default", &format!("/Patient/{id}")),
        Some(token),
        Some(body.to_string()),
        headers,
    )
    .await
}

/// A US Core Patient as a client would send it.
fn ann() -> Value {
    json!({
        "resourceType": "Patient",
        "extension": [
            {"url": RACE, "extension": [
                {"url": "ombCategory", "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2028-9", "display": "Asian"}},
                {"url": "text", "valueString": "Asian"}
            ]},
            {"url": BIRTH_SEX, "valueCode": "F"}
        ],
        "identifier": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "value": "FW-1001"}],
        "name": [{"use": "official", "family": "Okafor", "given": ["Ann", "Marie"], "prefix": ["Ms."]}],
        "telecom": [
            {"system": "phone", "value": "555-0101", "use": "home"},
            {"system": "phone", "value": "555-0102", "use": "mobile"},
            {"system": "email", "value": "ann.okafor@example.com"}
        ],
        "gender": "female",
        "birthDate": "1984-07-21",
        "address": [{"use": "home", "line": ["12 Elm St", "Apt 3"], "city": "Salem", "state": "MA", "postalCode": "01970", "country": "US"}]
    })
}

fn etag(reply: &Reply) -> &str {
    reply.header("etag").expect("an ETag")
}

fn outcome(docs: &mut Documents, reply: &Reply, status: u16) -> Value {
    assert_eq!(reply.status, status, "{}", reply.text);
    let body = docs.keep(reply);
    assert_eq!(body["resourceType"], "OperationOutcome", "{}", reply.text);
    body
}

/// How many patients and patient versions the site holds.
async fn counts(app: &TestApp) -> (Value, Value) {
    let patients = app
        .rows("default", "SELECT COUNT(*) AS n FROM patient_data")
        .await;
    let versions = app
        .rows("default", "SELECT COUNT(*) AS n FROM patient_data_history")
        .await;
    (patients[0]["n"].clone(), versions[0]["n"].clone())
}

both! {
    async fn patients_are_created_updated_versioned_and_read_back_on_both_apis(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;

        // Create: 201, Location with the version, ETag, the resource as stored.
        let created = post(app, &token, &ann(), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let patient = docs.keep(&created);
        let id = patient["id"].as_str().expect("an id").to_owned();
        assert_eq!(
            created.header("location"),
            Some(fhir(app, "default", &format!("/Patient/{id}/_history/1")).as_str())
        );
        assert_eq!(etag(&created), "W/\"1\"");
        assert!(created.header("last-modified").is_some_and(|d| d.ends_with(" GMT")));
        assert_eq!(patient["meta"]["versionId"], "1");
        assert_eq!(patient["name"][0]["family"], "Okafor");
        assert_eq!(patient["name"][0]["given"], json!(["Ann", "Marie"]));
        assert_eq!(patient["birthDate"], "1984-07-21");
        assert_eq!(patient["gender"], "female");
        let extensions = patient["extension"].as_array().unwrap();
        assert!(extensions.iter().any(|e| e["url"] == BIRTH_SEX && e["valueCode"] == "F"), "{extensions:?}");
        assert!(extensions.iter().any(|e| e["url"] == RACE && e["extension"][0]["valueCoding"]["code"] == "2028-9"));
        assert_eq!(patient["identifier"][0]["value"], "FW-1001");
        assert_eq!(patient["address"][0]["line"], json!(["12 Elm St", "Apt 3"]));

        // The standard API reads the same row at once.
        let api = app.get(&app.api("default", &format!("/api/patient/{id}")), &token).await;
        assert_eq!(api.status, 200, "{}", api.text);
        let row = &api.json["data"];
        assert_eq!(row["fname"], "Ann");
        assert_eq!(row["mname"], "Marie");
        assert_eq!(row["lname"], "Okafor");
        assert_eq!(row["title"], "Ms.");
        assert_eq!(row["sex"], "Female");
        assert_eq!(row["DOB"], "1984-07-21");
        assert_eq!(row["birth_sex"], "F");
        assert_eq!(row["race"], "asian");
        assert_eq!(row["pubpid"], "FW-1001");
        assert_eq!(row["phone_cell"], "555-0102");
        assert_eq!(row["email"], "ann.okafor@example.com");
        assert_eq!(row["street_line_2"], "Apt 3");

        // A standard API write is a new version too.
        let changed = app
            .put(&app.api("default", &format!("/api/patient/{id}")), &token, json!({"fname": "Annie", "birth_sex": "UNK"}))
            .await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        let read = app.get(&fhir(app, "default", &format!("/Patient/{id}")), &token).await;
        assert_eq!(read.status, 200, "{}", read.text);
        let now = docs.keep(&read);
        assert_eq!(now["meta"]["versionId"], "2");
        assert_eq!(etag(&read), "W/\"2\"");
        assert_eq!(now["name"][0]["given"], json!(["Annie", "Marie"]));
        assert!(now["extension"].as_array().unwrap().iter().any(|e| e["url"] == BIRTH_SEX && e["valueCode"] == "UNK"));

        // If-Match with the version the client read first is stale: 412, nothing written.
        let mut edit = ann();
        edit["id"] = json!(id);
        edit["name"][0]["family"] = json!("Okafor-Reyes");
        let stale = put(app, &token, &id, &edit, &[("if-match", "W/\"1\"")]).await;
        let body = outcome(&mut docs, &stale, 412);
        assert!(body["issue"][0]["diagnostics"].as_str().unwrap().contains("version 2"), "{body}");
        let api = app.get(&app.api("default", &format!("/api/patient/{id}")), &token).await;
        assert_eq!(api.json["data"]["lname"], "Okafor");
        assert_eq!(api.json["data"]["fname"], "Annie");

        // With the current version it applies: 200, version 3; the whole resource is
        // replaced (the given names come from the body again).
        let updated = put(app, &token, &id, &edit, &[("if-match", "W/\"2\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        let body = docs.keep(&updated);
        assert_eq!(etag(&updated), "W/\"3\"");
        assert_eq!(
            updated.header("location"),
            Some(fhir(app, "default", &format!("/Patient/{id}/_history/3")).as_str())
        );
        assert_eq!(body["meta"]["versionId"], "3");
        assert_eq!(body["name"][0]["family"], "Okafor-Reyes");
        let api = app.get(&app.api("default", &format!("/api/patient/{id}")), &token).await;
        assert_eq!(api.json["data"]["lname"], "Okafor-Reyes");
        assert_eq!(api.json["data"]["fname"], "Ann");
        assert_eq!(api.json["data"]["birth_sex"], "F");

        // Without If-Match an update applies to whatever version is current; Prefer
        // chooses the body.
        edit["gender"] = json!("other");
        let minimal = put(app, &token, &id, &edit, &[("prefer", "return=minimal")]).await;
        assert_eq!(minimal.status, 200, "{}", minimal.text);
        assert!(minimal.text.is_empty(), "{}", minimal.text);
        assert_eq!(etag(&minimal), "W/\"4\"");
        edit["gender"] = json!("female");
        let told = put(app, &token, &id, &edit, &[("prefer", "return=OperationOutcome"), ("if-match", "W/\"4\"")]).await;
        let body = outcome(&mut docs, &told, 200);
        assert_eq!(body["issue"][0]["severity"], "information");
        assert_eq!(etag(&told), "W/\"5\"");

        // vread: each version as it was.
        let first = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history/1")), &token).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let v1 = docs.keep(&first);
        assert_eq!(v1["meta"]["versionId"], "1");
        assert_eq!(v1["name"][0]["given"], json!(["Ann", "Marie"]));
        assert_eq!(etag(&first), "W/\"1\"");
        let fourth = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history/4")), &token).await;
        assert_eq!(docs.keep(&fourth)["gender"], "other");
        let missing = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history/9")), &token).await;
        let body = outcome(&mut docs, &missing, 404);
        assert!(body["issue"][0]["diagnostics"].as_str().unwrap().contains("1 to 5"), "{body}");
        for bad in ["0", "x", "-1"] {
            let reply = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history/{bad}")), &token).await;
            outcome(&mut docs, &reply, 404);
        }
        let unknown = app.get(&fhir(app, "default", "/Patient/00000000-0000-4000-8000-000000000000/_history/1"), &token).await;
        outcome(&mut docs, &unknown, 404);

        // Instance history: newest first, with how each version was made; paged.
        let reply = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let bundle = docs.keep(&reply);
        assert_eq!(bundle["type"], "history");
        assert_eq!(bundle["total"], 5);
        let versions: Vec<&str> = bundle["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap()).collect();
        assert_eq!(versions, ["5", "4", "3", "2", "1"]);
        assert_eq!(bundle["entry"][4]["request"]["method"], "POST");
        assert_eq!(bundle["entry"][4]["response"]["status"], "201 Created");
        assert_eq!(bundle["entry"][0]["request"]["method"], "PUT");
        assert_eq!(bundle["entry"][0]["response"]["etag"], "W/\"5\"");
        let page = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history?_count=2")), &token).await;
        let page = docs.keep(&page);
        assert_eq!(page["entry"].as_array().unwrap().len(), 2);
        let next = page["link"].as_array().unwrap().iter()
            .find(|l| l["relation"] == "next").expect("a next link")["url"].as_str().unwrap().to_owned();
        let page = docs.keep(&app.get(&next, &token).await);
        let versions: Vec<&str> = page["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap()).collect();
        assert_eq!(versions, ["3", "2"]);

        // A patient created on the standard API is version 1 on FHIR.
        let other = app.post(&app.api("default", "/api/patient"), &token,
            json!({"fname": "Bo", "lname": "Lin", "sex": "Male", "DOB": "1990-01-02", "birth_sex": "M"})).await;
        assert_eq!(other.status, 201, "{}", other.text);
        let other_id = other.json["data"]["uuid"].as_str().unwrap();
        let read = app.get(&fhir(app, "default", &format!("/Patient/{other_id}")), &token).await;
        let body = docs.keep(&read);
        assert_eq!(body["meta"]["versionId"], "1");
        assert!(body["extension"].as_array().unwrap().iter().any(|e| e["url"] == BIRTH_SEX && e["valueCode"] == "M"));
        // Searches carry the same versions.
        let found = app.get(&fhir(app, "default", &format!("/Patient?_id={id},{other_id}")), &token).await;
        let bundle = docs.keep(&found);
        let mut seen: Vec<(String, String)> = bundle["entry"].as_array().unwrap().iter()
            .map(|e| (e["resource"]["id"].as_str().unwrap().to_owned(), e["resource"]["meta"]["versionId"].as_str().unwrap().to_owned()))
            .collect();
        seen.sort();
        let mut expected = vec![(id.clone(), "5".to_owned()), (other_id.to_owned(), "1".to_owned())];
        expected.sort();
        assert_eq!(seen, expected);

        // The CapabilityStatement lists what the plugin now answers.
        let metadata = app.client.get(fhir(app, "default", "/metadata")).send().await.unwrap();
        let statement = docs.keep(&Reply::from(metadata).await);
        let patient_type = statement["rest"][0]["resource"].as_array().unwrap().iter()
            .find(|r| r["type"] == "Patient").expect("Patient").clone();
        let codes: Vec<&str> = patient_type["interaction"].as_array().unwrap().iter()
            .map(|i| i["code"].as_str().unwrap()).collect();
        for code in ["read", "search-type", "create", "update", "vread", "history-instance"] {
            assert!(codes.contains(&code), "{code} in {codes:?}");
        }
        assert_eq!(patient_type["versioning"], "versioned-update");
        assert_eq!(patient_type["readHistory"], true);
        assert_eq!(patient_type["updateCreate"], false);
        assert_eq!(patient_type["conditionalUpdate"], false);
        docs.validate();
    }

    async fn refused_writes_answer_operation_outcomes_and_write_nothing(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let created = post(app, &token, &ann(), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json["id"].as_str().unwrap().to_owned();
        let before = counts(app).await;
        let url = fhir(app, "default", "/Patient");

        // 400: not a resource, another type, an id that is not the URL's, no id.
        for body in ["{not json", "[1, 2]", "\"Patient\""] {
            let reply = send(app, reqwest::Method::POST, &url, Some(&token), Some(body.to_owned()), &[]).await;
            outcome(&mut docs, &reply, 400);
        }
        let mut practitioner = ann();
        practitioner["resourceType"] = json!("Practitioner");
        outcome(&mut docs, &post(app, &token, &practitioner, &[]).await, 400);
        let mut typeless = ann();
        typeless.as_object_mut().unwrap().remove("resourceType");
        outcome(&mut docs, &post(app, &token, &typeless, &[]).await, 400);
        let mut other = ann();
        other["id"] = json!("00000000-0000-4000-8000-000000000001");
        outcome(&mut docs, &put(app, &token, &id, &other, &[]).await, 400);
        outcome(&mut docs, &put(app, &token, &id, &ann(), &[]).await, 400);
        let mut same = ann();
        same["id"] = json!(id);
        outcome(&mut docs, &put(app, &token, &id, &same, &[("if-match", "version one")]).await, 400);

        // 422: the type's rules, every failure named.
        let mut bare = json!({"resourceType": "Patient", "name": [{"family": "X"}]});
        let body = outcome(&mut docs, &post(app, &token, &bare, &[]).await, 422);
        let named: Vec<&str> = body["issue"].as_array().unwrap().iter()
            .map(|i| i["expression"][0].as_str().unwrap()).collect();
        for expression in ["Patient.name.family", "Patient.name.given", "Patient.gender", "Patient.birthDate"] {
            assert!(named.contains(&expression), "{expression} in {named:?}");
        }
        bare = ann();
        bare["birthDate"] = json!("1984-07");
        outcome(&mut docs, &post(app, &token, &bare, &[]).await, 422);
        bare = ann();
        bare["gender"] = json!("f");
        outcome(&mut docs, &post(app, &token, &bare, &[]).await, 422);
        bare = ann();
        bare["extension"][1]["valueCode"] = json!("X");
        outcome(&mut docs, &post(app, &token, &bare, &[]).await, 422);
        bare = ann();
        bare["generalPractitioner"] = json!([{"reference": "Practitioner/00000000-0000-4000-8000-000000000002"}]);
        outcome(&mut docs, &post(app, &token, &bare, &[]).await, 422);
        bare = ann();
        bare["name"] = json!("Okafor");
        outcome(&mut docs, &post(app, &token, &bare, &[]).await, 422);
        same["telecom"] = json!([{"system": "email", "value": "not-an-address"}]);
        outcome(&mut docs, &put(app, &token, &id, &same, &[]).await, 422);

        // 404: an update cannot create.
        let mut ghost = ann();
        let nobody = "00000000-0000-4000-8000-000000000003";
        ghost["id"] = json!(nobody);
        outcome(&mut docs, &put(app, &token, nobody, &ghost, &[]).await, 404);

        // 401 without a token, 403 without a write scope or the write ACL, and for a
        // patient's own token.
        let reply = send(app, reqwest::Method::POST, &url, None, Some(ann().to_string()), &[]).await;
        outcome(&mut docs, &reply, 401);
        assert!(reply.header("www-authenticate").is_some());
        let reader = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        outcome(&mut docs, &post(app, &reader, &ann(), &[]).await, 403);
        outcome(&mut docs, &put(app, &reader, &id, &same, &[]).await, 403);
        app.user("default", "clerk", "accounting").await;
        let clerk = app.user_token("default", "clerk", SCOPES).await;
        outcome(&mut docs, &post(app, &clerk, &ann(), &[]).await, 403);
        let own = app.patient_token("default", &id, "openid api:fhir patient/Patient.cruds").await;
        outcome(&mut docs, &put(app, &own, &id, &same, &[]).await, 403);
        outcome(&mut docs, &post(app, &own, &ann(), &[]).await, 403);

        assert_eq!(counts(app).await, before, "a refused write changed the database");
        docs.validate();
    }

    async fn concurrent_updates_of_one_version_let_exactly_one_win(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let created = post(app, &token, &ann(), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json["id"].as_str().unwrap().to_owned();
        let mut writers = Vec::new();
        for i in 0..6 {
            let mut edit = ann();
            edit["id"] = json!(id);
            edit["name"][0]["family"] = json!(format!("Writer{i}"));
            let client = app.client.clone();
            let url = fhir(app, "default", &format!("/Patient/{id}"));
            let token = token.clone();
            writers.push(tokio::spawn(async move {
                let reply = client
                    .put(url)
                    .bearer_auth(token)
                    .header("content-type", "application/fhir+json")
                    .header("if-match", "W/\"1\"")
                    .body(edit.to_string())
                    .send()
                    .await
                    .expect("the server answers");
                reply.status().as_u16()
            }));
        }
        let mut statuses = Vec::new();
        for writer in writers {
            statuses.push(writer.await.unwrap());
        }
        statuses.sort();
        assert_eq!(statuses, [200, 412, 412, 412, 412, 412]);
        let read = app.get(&fhir(app, "default", &format!("/Patient/{id}")), &token).await;
        assert_eq!(read.json["meta"]["versionId"], "2");
        let history = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history")), &token).await;
        assert_eq!(history.json["total"], 2, "{}", history.text);
    }

    async fn organizations_are_written_through_fhir_and_every_versioned_type_counts_api_writes(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", "openid api:fhir api:oemr user/patient.cruds \
            user/facility.cruds user/Organization.cruds user/Location.rs user/practitioner.cruds user/Practitioner.rs \
            user/encounter.cruds user/Encounter.rs user/allergy.cruds user/AllergyIntolerance.rs").await;
        let org = json!({
            "resourceType": "Organization",
            "active": true,
            "name": "Harbor Health",
            "identifier": [
                {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"},
                {"system": "urn:oid:2.16.840.1.113883.4.4", "value": "12-3456789"}
            ],
            "telecom": [{"system": "phone", "value": "555-0100"}, {"system": "email", "value": "desk@harbor.example"}],
            "address": [{"line": ["1 Pier Rd"], "city": "Salem", "state": "MA", "postalCode": "01970"}]
        });
        let url = fhir(app, "default", "/Organization");
        let created = send(app, reqwest::Method::POST, &url, Some(&token), Some(org.to_string()), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let body = docs.keep(&created);
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(etag(&created), "W/\"1\"");
        assert_eq!(body["identifier"][0]["value"], "1234567893");
        let api = app.get(&app.api("default", &format!("/api/facility/{id}")), &token).await;
        assert_eq!(api.status, 200, "{}", api.text);
        assert_eq!(api.json["data"]["name"], "Harbor Health");
        assert_eq!(api.json["data"]["facility_npi"], "1234567893");
        assert_eq!(api.json["data"]["federal_ein"], "12-3456789");
        assert_eq!(api.json["data"]["email"], "desk@harbor.example");

        // A standard API write moves the version; a stale If-Match is refused.
        let changed = app.put(&app.api("default", &format!("/api/facility/{id}")), &token, json!({"city": "Lynn"})).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        let mut edit = org.clone();
        edit["id"] = json!(id);
        edit["name"] = json!("Harbor Health North");
        let one = format!("{url}/{id}");
        let stale = send(app, reqwest::Method::PUT, &one, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"1\"")]).await;
        outcome(&mut docs, &stale, 412);
        let api = app.get(&app.api("default", &format!("/api/facility/{id}")), &token).await;
        assert_eq!(api.json["data"]["name"], "Harbor Health");
        assert_eq!(api.json["data"]["city"], "Lynn");
        let updated = send(app, reqwest::Method::PUT, &one, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"2\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(docs.keep(&updated)["meta"]["versionId"], "3");
        let api = app.get(&app.api("default", &format!("/api/facility/{id}")), &token).await;
        assert_eq!(api.json["data"]["name"], "Harbor Health North");
        assert_eq!(api.json["data"]["city"], "Salem");
        let first = app.get(&format!("{one}/_history/1"), &token).await;
        assert_eq!(docs.keep(&first)["name"], "Harbor Health");
        let history = app.get(&format!("{one}/_history"), &token).await;
        let history = docs.keep(&history);
        assert_eq!(history["total"], 3);
        // The Location of the same facility carries the same version.
        let location = app.get(&fhir(app, "default", &format!("/Location/{id}")), &token).await;
        assert_eq!(location.status, 200, "{}", location.text);
        assert_eq!(docs.keep(&location)["meta"]["versionId"], "3");

        // 422: no NPI on create; 403 without the write ACL.
        let mut bare = org.clone();
        bare["identifier"] = json!([]);
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(bare.to_string()), &[]).await, 422);
        app.user("default", "desk", "front_office").await;
        let desk = app.user_token("default", "desk", "openid api:fhir user/Organization.cruds").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&desk), Some(org.to_string()), &[]).await, 403);

        // Practitioners, encounters and allergies count the standard API's writes too.
        let practitioner = app.post(&app.api("default", "/api/practitioner"), &token,
            json!({"fname": "Ana", "lname": "Pereira", "npi": "1122334455"})).await;
        assert_eq!(practitioner.status, 201, "{}", practitioner.text);
        let pr = practitioner.json["data"]["uuid"].as_str().unwrap().to_owned();
        let read = app.get(&fhir(app, "default", &format!("/Practitioner/{pr}")), &token).await;
        assert_eq!(docs.keep(&read)["meta"]["versionId"], "1");
        let changed = app.put(&app.api("default", &format!("/api/practitioner/{pr}")), &token, json!({"city": "Salem"})).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        let read = app.get(&fhir(app, "default", &format!("/Practitioner/{pr}")), &token).await;
        assert_eq!(docs.keep(&read)["meta"]["versionId"], "2");
        assert_eq!(etag(&read), "W/\"2\"");

        let patient = hearth_tests::fhir::patient(app, &token, json!({})).await;
        let encounter = app.post(&app.api("default", &format!("/api/patient/{patient}/encounter")), &token,
            json!({"pc_catid": "5", "class_code": "AMB", "reason": "Checkup", "date": "2024-03-04 10:00:00"})).await;
        assert_eq!(encounter.status, 201, "{}", encounter.text);
        let eu = encounter.json["data"]["euuid"].as_str().unwrap().to_owned();
        let changed = app.put(&app.api("default", &format!("/api/patient/{patient}/encounter/{eu}")), &token,
            json!({"reason": "Follow-up"})).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        let read = app.get(&fhir(app, "default", &format!("/Encounter/{eu}")), &token).await;
        assert_eq!(docs.keep(&read)["meta"]["versionId"], "2");

        let allergy = app.post(&app.api("default", &format!("/api/patient/{patient}/allergy")), &token,
            json!({"title": "Penicillin", "begdate": "2020-01-01"})).await;
        assert!((200..300).contains(&allergy.status), "{}", allergy.text);
        let au = allergy.json["data"]["uuid"].as_str().unwrap().to_owned();
        let read = app.get(&fhir(app, "default", &format!("/AllergyIntolerance/{au}")), &token).await;
        assert_eq!(docs.keep(&read)["meta"]["versionId"], "1");
        let changed = app.put(&app.api("default", &format!("/api/patient/{patient}/allergy/{au}")), &token,
            json!({"title": "Penicillin G"})).await;
        assert!((200..300).contains(&changed.status), "{}", changed.text);
        let read = app.get(&fhir(app, "default", &format!("/AllergyIntolerance/{au}")), &token).await;
        assert_eq!(docs.keep(&read)["meta"]["versionId"], "2");
        docs.validate();
    }
}
