//! FHIR writes, versions and history through the real server, on SQLite and PostgreSQL:
//! `POST /fhir/Patient` and `PUT /fhir/Patient/:id` (201/200, `Location` with the
//! version, `ETag`, `Prefer`), the version counter every writer bumps (the standard
//! API's writes as well as FHIR's), `If-Match` (a stale version is a 412 and writes
//! nothing, concurrent updates of one version let exactly one win, one that loses the
//! race to a committed write is a 409 on PostgreSQL), `vread` and instance
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
        // SQLite lets one writer in at a time, so each loser finds version 2 when it
        // checks If-Match: 412. On PostgreSQL a loser that checked before the winner
        // committed waits for its row lock and finds the conflict after its write: 409.
        assert_eq!(statuses[0], 200, "{statuses:?}");
        match app.backend {
            hearth_tests::Backend::Sqlite => assert_eq!(statuses, [200, 412, 412, 412, 412, 412]),
            hearth_tests::Backend::Postgres => {
                assert!(statuses[1..].iter().all(|s| *s == 409 || *s == 412), "{statuses:?}");
            }
        }
        let read = app.get(&fhir(app, "default", &format!("/Patient/{id}")), &token).await;
        assert_eq!(read.json["meta"]["versionId"], "2");
        let history = app.get(&fhir(app, "default", &format!("/Patient/{id}/_history")), &token).await;
        assert_eq!(history.json["total"], 2, "{}", history.text);
    }

    async fn an_if_match_update_that_loses_the_race_to_a_committed_write_is_a_conflict(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let created = post(app, &token, &ann(), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json["id"].as_str().unwrap().to_owned();
        let site = app.state.sites.get("default").await.unwrap();
        // Another writer holds the row while the update runs, then commits version 2.
        // With If-Match naming version 1, the update checked a version that was current
        // when it looked (PostgreSQL: then waits for the row and loses, 409) or finds
        // version 2 once SQLite lets it in (412). Either way nothing of it is written.
        // Without If-Match the update asked for no check and applies over version 2.
        for (if_match, family) in [(Some("W/\"1\""), "Loser"), (None, "Lastwriter")] {
            let mut edit = ann();
            edit["id"] = json!(id);
            edit["name"][0]["family"] = json!(family);
            let client = app.client.clone();
            let url = fhir(app, "default", &format!("/Patient/{id}"));
            let bearer = token.clone();
            let racer = format!("Racer{family}");
            let update = hearth::on_db!(&site.db, |pool| {
                let mut tx = pool.begin().await.unwrap();
                sqlx::query("UPDATE patient_data SET fname = $1 WHERE CAST(uuid AS TEXT) = $2")
                    .bind(&racer)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                let update = tokio::spawn(async move {
                    let mut request = client
                        .put(url)
                        .bearer_auth(bearer)
                        .header("content-type", "application/fhir+json")
                        .body(edit.to_string());
                    if let Some(tag) = if_match {
                        request = request.header("if-match", tag);
                    }
                    Reply::from(request.send().await.expect("the server answers")).await
                });
                tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                assert!(!update.is_finished(), "the update waits for the other writer");
                tx.commit().await.unwrap();
                update.await.unwrap()
            });
            let read = app.get(&fhir(app, "default", &format!("/Patient/{id}")), &token).await;
            let now = docs.keep(&read);
            match if_match {
                Some(_) => {
                    let expected = match app.backend {
                        hearth_tests::Backend::Sqlite => 412,
                        hearth_tests::Backend::Postgres => 409,
                    };
                    let body = outcome(&mut docs, &update, expected);
                    assert_eq!(body["issue"][0]["code"], "conflict", "{body}");
                    assert_eq!(now["meta"]["versionId"], "2", "the losing update wrote nothing");
                    assert_eq!(now["name"][0]["given"][0], "RacerLoser");
                    assert_eq!(now["name"][0]["family"], "Okafor");
                }
                None => {
                    assert_eq!(update.status, 200, "{}", update.text);
                    assert_eq!(docs.keep(&update)["meta"]["versionId"], "4");
                    assert_eq!(now["meta"]["versionId"], "4");
                    assert_eq!(now["name"][0]["family"], "Lastwriter");
                }
            }
        }
        // Other version conflicts the specification names: a create ignores any id it is
        // given (a new resource, never a clash with the existing one), and an update whose
        // body names another id than the URL's is a 400.
        let mut again = ann();
        again["id"] = json!(id);
        let made = post(app, &token, &again, &[]).await;
        assert_eq!(made.status, 201, "{}", made.text);
        assert_ne!(docs.keep(&made)["id"], id.as_str());
        let mut other = ann();
        other["id"] = made.json["id"].clone();
        outcome(&mut docs, &put(app, &token, &id, &other, &[("if-match", "W/\"4\"")]).await, 400);
        docs.validate();
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
    async fn practitioners_are_created_updated_versioned_and_read_back_on_both_apis(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", "openid api:fhir api:oemr \
            user/practitioner.cruds user/Practitioner.cruds").await;
        let npi = "http://hl7.org/fhir/sid/us-npi";
        let ana = json!({
            "resourceType": "Practitioner",
            "active": true,
            "identifier": [{"system": npi, "value": "1922334455"}],
            "name": [{"use": "official", "family": "Pereira", "given": ["Ana", "Luisa"], "prefix": ["Dr."], "suffix": ["MD"]}],
            "telecom": [
                {"system": "phone", "value": "555-0201", "use": "work"},
                {"system": "phone", "value": "555-0202", "use": "mobile"},
                {"system": "fax", "value": "555-0203", "use": "work"},
                {"system": "email", "value": "ana@clinic.example", "use": "work"}
            ],
            "address": [{"use": "work", "line": ["5 Main St", "Suite 2"], "city": "Salem", "state": "MA", "postalCode": "01970"}]
        });
        let url = fhir(app, "default", "/Practitioner");
        let users = || async {
            let n = app.rows("default", "SELECT COUNT(*) AS n FROM users").await;
            let v = app.rows("default", "SELECT COUNT(*) AS n FROM users_history").await;
            (n[0]["n"].clone(), v[0]["n"].clone())
        };

        // Create: 201, Location with the version, the resource as stored.
        let created = send(app, reqwest::Method::POST, &url, Some(&token), Some(ana.to_string()), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let body = docs.keep(&created);
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(created.header("location"), Some(format!("{url}/{id}/_history/1").as_str()));
        assert_eq!(etag(&created), "W/\"1\"");
        assert_eq!(body["meta"]["versionId"], "1");
        assert_eq!(body["identifier"][0]["value"], "1922334455");
        assert_eq!(body["name"][0]["given"], json!(["Ana", "Luisa"]));
        assert_eq!(body["name"][0]["prefix"], json!(["Dr."]));
        assert!(body["telecom"].as_array().unwrap().iter().any(|t| t["system"] == "fax" && t["value"] == "555-0203"));

        // The standard API reads the same row at once.
        let one = app.api("default", &format!("/api/practitioner/{id}"));
        let api = app.get(&one, &token).await;
        assert_eq!(api.status, 200, "{}", api.text);
        let row = &api.json["data"];
        assert_eq!(row["fname"], "Ana");
        assert_eq!(row["mname"], "Luisa");
        assert_eq!(row["lname"], "Pereira");
        assert_eq!(row["title"], "Dr.");
        assert_eq!(row["suffix"], "MD");
        assert_eq!(row["npi"], "1922334455");
        assert_eq!(row["phone"], "555-0201");
        assert_eq!(row["phonecell"], "555-0202");
        assert_eq!(row["fax"], "555-0203");
        assert_eq!(row["email"], "ana@clinic.example");
        assert_eq!(row["street"], "5 Main St");
        assert_eq!(row["streetb"], "Suite 2");
        assert_eq!(row["zip"], "01970");
        assert!(row["username"].is_null(), "{row}");

        // A standard API write is version 2; a stale If-Match is refused, nothing written.
        let changed = app.put(&one, &token, json!({"city": "Lynn", "specialty": "Cardiology"})).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        let mut edit = ana.clone();
        edit["id"] = json!(id);
        edit["name"][0]["family"] = json!("Pereira-Costa");
        let own = format!("{url}/{id}");
        let before = users().await;
        let stale = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"1\"")]).await;
        let outcome_body = outcome(&mut docs, &stale, 412);
        assert!(outcome_body["issue"][0]["diagnostics"].as_str().unwrap().contains("version 2"), "{outcome_body}");
        assert_eq!(users().await, before);
        assert_eq!(app.get(&one, &token).await.json["data"]["lname"], "Pereira");

        // With the current version the update applies; unmapped columns keep their values.
        let updated = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"2\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(etag(&updated), "W/\"3\"");
        assert_eq!(updated.header("location"), Some(format!("{own}/_history/3").as_str()));
        assert_eq!(docs.keep(&updated)["name"][0]["family"], "Pereira-Costa");
        let api = app.get(&one, &token).await;
        assert_eq!(api.json["data"]["lname"], "Pereira-Costa");
        assert_eq!(api.json["data"]["city"], "Salem");
        assert_eq!(api.json["data"]["specialty"], "Cardiology");

        // vread and history.
        let first = app.get(&format!("{own}/_history/1"), &token).await;
        assert_eq!(first.status, 200, "{}", first.text);
        let v1 = docs.keep(&first);
        assert_eq!(v1["name"][0]["family"], "Pereira");
        assert_eq!(v1["address"][0]["city"], "Salem");
        let second = app.get(&format!("{own}/_history/2"), &token).await;
        assert_eq!(docs.keep(&second)["address"][0]["city"], "Lynn");
        let missing = app.get(&format!("{own}/_history/7"), &token).await;
        let body = outcome(&mut docs, &missing, 404);
        assert!(body["issue"][0]["diagnostics"].as_str().unwrap().contains("1 to 3"), "{body}");
        let history = app.get(&format!("{own}/_history"), &token).await;
        assert_eq!(history.status, 200, "{}", history.text);
        let history = docs.keep(&history);
        assert_eq!(history["type"], "history");
        assert_eq!(history["total"], 3);
        let versions: Vec<&str> = history["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["meta"]["versionId"].as_str().unwrap()).collect();
        assert_eq!(versions, ["3", "2", "1"]);
        assert_eq!(history["entry"][2]["request"]["method"], "POST");

        // Refusals: 400, 422 (every rule named), 404 (an unknown id, a user who is not
        // a practitioner), 401, 403; none writes anything.
        let desk_uuid = app.user("default", "desk", "front_office").await;
        let before = users().await;
        for bad in ["{", "[]"] {
            outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(bad.to_owned()), &[]).await, 400);
        }
        let mut wrong = ana.clone();
        wrong["resourceType"] = json!("Person");
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(wrong.to_string()), &[]).await, 400);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&token), Some(ana.to_string()), &[]).await, 400);
        let bare = json!({"resourceType": "Practitioner", "name": [{"family": "X"}],
            "identifier": [{"system": npi, "value": "12x"}], "telecom": [{"system": "email", "value": "nope"}]});
        let body = outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(bare.to_string()), &[]).await, 422);
        let named: Vec<&str> = body["issue"].as_array().unwrap().iter()
            .map(|i| i["expression"][0].as_str().unwrap()).collect();
        for expression in ["Practitioner.name.family", "Practitioner.name.given", "Practitioner.identifier[0].value", "Practitioner.telecom[0].value"] {
            assert!(named.contains(&expression), "{expression} in {named:?}");
        }
        let mut no_npi = edit.clone();
        no_npi["identifier"] = json!([]);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&token), Some(no_npi.to_string()), &[]).await, 422);
        let nobody = "00000000-0000-4000-8000-000000000004";
        let mut ghost = ana.clone();
        ghost["id"] = json!(nobody);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &format!("{url}/{nobody}"), Some(&token), Some(ghost.to_string()), &[]).await, 404);
        // A user who is not a practitioner (no NPI) is not updated as one.
        let mut staff = ana.clone();
        staff["id"] = json!(desk_uuid);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &format!("{url}/{desk_uuid}"), Some(&token), Some(staff.to_string()), &[]).await, 404);
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, None, Some(ana.to_string()), &[]).await, 401);
        let reader = app.user_token("default", "admin", "openid api:fhir user/Practitioner.rs").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&reader), Some(ana.to_string()), &[]).await, 403);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&reader), Some(edit.to_string()), &[]).await, 403);
        let desk = app.user_token("default", "desk", "openid api:fhir user/Practitioner.cruds").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&desk), Some(ana.to_string()), &[]).await, 403);
        assert_eq!(users().await, before, "a refused write changed the database");

        // A practitioner created on the standard API is updated through FHIR.
        let other = app.post(&app.api("default", "/api/practitioner"), &token,
            json!({"fname": "Ben", "lname": "Okoro", "npi": "1822334455"})).await;
        assert_eq!(other.status, 201, "{}", other.text);
        let other_id = other.json["data"]["uuid"].as_str().unwrap().to_owned();
        let mut ben = json!({"resourceType": "Practitioner", "id": other_id,
            "identifier": [{"system": npi, "value": "1822334455"}],
            "name": [{"family": "Okoro", "given": ["Benjamin"]}]});
        let reply = send(app, reqwest::Method::PUT, &format!("{url}/{other_id}"), Some(&token), Some(ben.to_string()), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        docs.keep(&reply);
        let api = app.get(&app.api("default", &format!("/api/practitioner/{other_id}")), &token).await;
        assert_eq!(api.json["data"]["fname"], "Benjamin");
        ben["active"] = json!(false);
        let reply = send(app, reqwest::Method::PUT, &format!("{url}/{other_id}"), Some(&token), Some(ben.to_string()), &[("prefer", "return=minimal")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(etag(&reply), "W/\"3\"");
        let read = app.get(&format!("{url}/{other_id}"), &token).await;
        assert_eq!(docs.keep(&read)["active"], false);

        // The CapabilityStatement lists the interactions.
        let metadata = app.client.get(fhir(app, "default", "/metadata")).send().await.unwrap();
        let statement = docs.keep(&Reply::from(metadata).await);
        let kind = statement["rest"][0]["resource"].as_array().unwrap().iter()
            .find(|r| r["type"] == "Practitioner").expect("Practitioner").clone();
        let codes: Vec<&str> = kind["interaction"].as_array().unwrap().iter()
            .map(|i| i["code"].as_str().unwrap()).collect();
        for code in ["read", "search-type", "create", "update", "vread", "history-instance"] {
            assert!(codes.contains(&code), "{code} in {codes:?}");
        }
        assert_eq!(kind["versioning"], "versioned-update");
        docs.validate();
    }
    async fn allergies_are_created_updated_versioned_and_read_back_on_both_apis(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", "openid api:fhir api:oemr user/patient.cruds \
            user/allergy.cruds user/medical_problem.cruds user/AllergyIntolerance.cruds").await;
        let patient = hearth_tests::fhir::patient(app, &token, json!({})).await;
        let clinical = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
        let verification = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";
        let allergy = json!({
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": clinical, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": verification, "code": "confirmed"}]},
            "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "7980", "display": "Penicillin G"}], "text": "Penicillin"},
            "patient": {"reference": format!("Patient/{patient}")},
            "onsetDateTime": "2020-01-02",
            "reaction": [{"manifestation": [{"coding": [{"system": "http://snomed.info/sct", "code": "247472004"}], "text": "Hives"}], "severity": "severe"}],
            "note": [{"text": "Since childhood"}]
        });
        let url = fhir(app, "default", "/AllergyIntolerance");
        let lists = || async {
            let n = app.rows("default", "SELECT COUNT(*) AS n FROM lists").await;
            let v = app.rows("default", "SELECT COUNT(*) AS n FROM lists_history").await;
            (n[0]["n"].clone(), v[0]["n"].clone())
        };

        let created = send(app, reqwest::Method::POST, &url, Some(&token), Some(allergy.to_string()), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let body = docs.keep(&created);
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(created.header("location"), Some(format!("{url}/{id}/_history/1").as_str()));
        assert_eq!(etag(&created), "W/\"1\"");
        assert_eq!(body["code"]["coding"][0]["code"], "7980");
        assert_eq!(body["code"]["text"], "Penicillin");
        assert_eq!(body["verificationStatus"]["coding"][0]["code"], "confirmed");
        assert_eq!(body["clinicalStatus"]["coding"][0]["code"], "active");
        assert_eq!(body["reaction"][0]["manifestation"][0]["coding"][0]["code"], "247472004");
        assert_eq!(body["reaction"][0]["severity"], "severe");
        assert_eq!(body["patient"]["reference"], format!("Patient/{patient}"));
        assert!(body["onsetDateTime"].as_str().unwrap().starts_with("2020-01-02"), "{body}");

        // The standard API reads the same row at once.
        let one = app.api("default", &format!("/api/patient/{patient}/allergy/{id}"));
        let api = app.get(&one, &token).await;
        assert_eq!(api.status, 200, "{}", api.text);
        let row = &api.json["data"][0];
        assert_eq!(row["title"], "Penicillin");
        assert_eq!(row["reaction_title"], "Hives");
        assert_eq!(row["verification"], "confirmed");
        assert_eq!(row["comments"], "Since childhood");
        assert!(row["begdate"].as_str().unwrap().starts_with("2020-01-02"), "{row}");
        assert!(row["enddate"].is_null(), "{row}");

        // A standard API write is version 2; a stale If-Match writes nothing.
        let changed = app.put(&one, &token, json!({"title": "Penicillin V"})).await;
        assert!((200..300).contains(&changed.status), "{}", changed.text);
        let mut edit = allergy.clone();
        edit["id"] = json!(id);
        edit["clinicalStatus"]["coding"][0]["code"] = json!("resolved");
        let own = format!("{url}/{id}");
        let before = lists().await;
        let stale = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"1\"")]).await;
        outcome(&mut docs, &stale, 412);
        assert_eq!(lists().await, before);
        assert_eq!(app.get(&one, &token).await.json["data"][0]["title"], "Penicillin V");
        let updated = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"2\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(etag(&updated), "W/\"3\"");
        let body = docs.keep(&updated);
        assert_eq!(body["clinicalStatus"]["coding"][0]["code"], "resolved");
        let api = app.get(&one, &token).await;
        assert_eq!(api.json["data"][0]["title"], "Penicillin");
        assert!(api.json["data"][0]["enddate"].is_string(), "{}", api.text);

        // vread and history.
        let second = app.get(&format!("{own}/_history/2"), &token).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(docs.keep(&second)["code"]["text"], "Penicillin V");
        let history = app.get(&format!("{own}/_history"), &token).await;
        let history = docs.keep(&history);
        assert_eq!(history["total"], 3);
        let states: Vec<&str> = history["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["clinicalStatus"]["coding"][0]["code"].as_str().unwrap()).collect();
        assert_eq!(states, ["resolved", "active", "active"]);
        outcome(&mut docs, &app.get(&format!("{own}/_history/4"), &token).await, 404);

        // Refusals write nothing.
        let other = hearth_tests::fhir::patient(app, &token, json!({"fname": "Bea"})).await;
        let problem = app.post(&app.api("default", &format!("/api/patient/{patient}/medical_problem")), &token,
            json!({"title": "Asthma", "begdate": "2019-01-01"})).await;
        assert!((200..300).contains(&problem.status), "{}", problem.text);
        let problem = problem.json["data"]["uuid"].as_str().unwrap().to_owned();
        let before = lists().await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some("{".to_owned()), &[]).await, 400);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&token), Some(allergy.to_string()), &[]).await, 400);
        let bare = json!({"resourceType": "AllergyIntolerance", "code": {"text": "X"},
            "clinicalStatus": {"coding": [{"system": clinical, "code": "gone"}]}, "onsetDateTime": "yesterday"});
        let body = outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(bare.to_string()), &[]).await, 422);
        let named: Vec<&str> = body["issue"].as_array().unwrap().iter()
            .map(|i| i["expression"][0].as_str().unwrap()).collect();
        for expression in ["AllergyIntolerance.patient", "AllergyIntolerance.code.text",
            "AllergyIntolerance.clinicalStatus", "AllergyIntolerance.onsetDateTime"] {
            assert!(named.contains(&expression), "{expression} in {named:?}");
        }
        let mut unknown = allergy.clone();
        unknown["patient"]["reference"] = json!("Patient/00000000-0000-4000-8000-000000000005");
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(unknown.to_string()), &[]).await, 422);
        let mut rash = allergy.clone();
        rash["reaction"][0]["manifestation"][0] = json!({"text": "Purple spots"});
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(rash.to_string()), &[]).await, 422);
        let mut moved = edit.clone();
        moved["patient"]["reference"] = json!(format!("Patient/{other}"));
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&token), Some(moved.to_string()), &[]).await, 422);
        let mut not_allergy = allergy.clone();
        not_allergy["id"] = json!(problem);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &format!("{url}/{problem}"), Some(&token), Some(not_allergy.to_string()), &[]).await, 404);
        let reader = app.user_token("default", "admin", "openid api:fhir user/AllergyIntolerance.rs").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&reader), Some(allergy.to_string()), &[]).await, 403);
        let own_token = app.patient_token("default", &patient, "openid api:fhir patient/AllergyIntolerance.cruds").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&own_token), Some(allergy.to_string()), &[]).await, 403);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&own_token), Some(edit.to_string()), &[]).await, 403);
        assert_eq!(lists().await, before, "a refused write changed the database");

        // An allergy made on the standard API is updated through FHIR.
        let made = app.post(&app.api("default", &format!("/api/patient/{patient}/allergy")), &token,
            json!({"title": "Peanuts", "begdate": "2018-03-04"})).await;
        assert!((200..300).contains(&made.status), "{}", made.text);
        let made = made.json["data"]["uuid"].as_str().unwrap().to_owned();
        let peanuts = json!({"resourceType": "AllergyIntolerance", "id": made,
            "code": {"text": "Peanuts"}, "patient": {"reference": format!("Patient/{patient}")},
            "verificationStatus": {"coding": [{"system": verification, "code": "unconfirmed"}]}});
        let reply = send(app, reqwest::Method::PUT, &format!("{url}/{made}"), Some(&token), Some(peanuts.to_string()), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(etag(&reply), "W/\"2\"");
        docs.keep(&reply);
        let api = app.get(&app.api("default", &format!("/api/patient/{patient}/allergy/{made}")), &token).await;
        assert_eq!(api.json["data"][0]["verification"], "unconfirmed");
        docs.validate();
    }
    async fn encounters_are_created_updated_versioned_and_read_back_on_both_apis(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", "openid api:fhir api:oemr user/patient.cruds \
            user/encounter.cruds user/practitioner.cruds user/facility.cruds user/Encounter.cruds").await;
        let patient = hearth_tests::fhir::patient(app, &token, json!({})).await;
        let practitioner = app.post(&app.api("default", "/api/practitioner"), &token,
            json!({"fname": "Ana", "lname": "Pereira", "npi": "1122334455"})).await;
        assert_eq!(practitioner.status, 201, "{}", practitioner.text);
        let pr = practitioner.json["data"]["uuid"].as_str().unwrap().to_owned();
        let facility = app.post(&app.api("default", "/api/facility"), &token,
            json!({"name": "Harbor Clinic", "facility_npi": "1234567893"})).await;
        assert!((200..300).contains(&facility.status), "{}", facility.text);
        let fa = facility.json["data"]["uuid"].as_str().unwrap().to_owned();
        let visit = json!({
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003", "display": "Encounter for check up"}]}],
            "subject": {"reference": format!("Patient/{patient}")},
            "participant": [{"individual": {"reference": format!("Practitioner/{pr}")}}],
            "period": {"start": "2024-03-04T10:00:00Z", "end": "2024-03-04T10:30:00Z"},
            "reasonCode": [{"text": "Annual checkup"}],
            "serviceProvider": {"reference": format!("Organization/{fa}")}
        });
        let url = fhir(app, "default", "/Encounter");
        let counts = || async {
            let e = app.rows("default", "SELECT COUNT(*) AS n FROM form_encounter").await;
            let f = app.rows("default", "SELECT COUNT(*) AS n FROM forms").await;
            let v = app.rows("default", "SELECT COUNT(*) AS n FROM form_encounter_history").await;
            (e[0]["n"].clone(), f[0]["n"].clone(), v[0]["n"].clone())
        };

        let created = send(app, reqwest::Method::POST, &url, Some(&token), Some(visit.to_string()), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let body = docs.keep(&created);
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(created.header("location"), Some(format!("{url}/{id}/_history/1").as_str()));
        assert_eq!(etag(&created), "W/\"1\"");
        assert_eq!(body["class"]["code"], "AMB");
        assert_eq!(body["type"][0]["coding"][0]["code"], "185349003");
        assert_eq!(body["participant"][0]["individual"]["reference"], format!("Practitioner/{pr}"));
        assert_eq!(body["serviceProvider"]["reference"], format!("Organization/{fa}"));
        assert_eq!(body["period"]["start"], "2024-03-04T10:00:00Z");
        assert_eq!(body["reasonCode"][0]["text"], "Annual checkup");

        // The standard API reads the same row, and the encounter is registered in forms.
        let one = app.api("default", &format!("/api/patient/{patient}/encounter/{id}"));
        let api = app.get(&one, &token).await;
        assert_eq!(api.status, 200, "{}", api.text);
        let row = &api.json["data"];
        assert_eq!(row["reason"], "Annual checkup");
        assert_eq!(row["class_code"], "AMB");
        assert_eq!(row["facility_uuid"], fa.as_str());
        assert_eq!(row["facility_name"], "Harbor Clinic");
        assert_eq!(row["provider_uuid"], pr.as_str());
        let stored = app.rows("default", "SELECT facility FROM form_encounter WHERE reason = 'Annual checkup'").await;
        assert_eq!(stored[0]["facility"], "Harbor Clinic");
        assert!(row["date"].as_str().unwrap().starts_with("2024-03-04"), "{row}");
        let registered = app.rows("default", "SELECT COUNT(*) AS n FROM forms WHERE formdir = 'newpatient'").await;
        assert!(registered[0]["n"].as_i64().unwrap() >= 1);

        // A standard API write is version 2; a stale If-Match writes nothing.
        let changed = app.put(&one, &token, json!({"reason": "Follow-up"})).await;
        assert_eq!(changed.status, 200, "{}", changed.text);
        let mut edit = visit.clone();
        edit["id"] = json!(id);
        edit["reasonCode"] = json!([{"text": "Blood pressure check"}]);
        let own = format!("{url}/{id}");
        let before = counts().await;
        let stale = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"1\"")]).await;
        outcome(&mut docs, &stale, 412);
        assert_eq!(counts().await, before);
        assert_eq!(app.get(&one, &token).await.json["data"]["reason"], "Follow-up");
        let updated = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"2\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(etag(&updated), "W/\"3\"");
        assert_eq!(docs.keep(&updated)["reasonCode"][0]["text"], "Blood pressure check");
        assert_eq!(app.get(&one, &token).await.json["data"]["reason"], "Blood pressure check");

        // vread and history.
        let second = app.get(&format!("{own}/_history/2"), &token).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(docs.keep(&second)["reasonCode"][0]["text"], "Follow-up");
        let history = docs.keep(&app.get(&format!("{own}/_history"), &token).await);
        assert_eq!(history["total"], 3);
        assert_eq!(history["entry"][0]["resource"]["meta"]["versionId"], "3");

        // Refusals write nothing.
        let other = hearth_tests::fhir::patient(app, &token, json!({"fname": "Bea"})).await;
        let before = counts().await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some("[]".to_owned()), &[]).await, 400);
        let bare = json!({"resourceType": "Encounter", "status": "in-progress",
            "class": {"code": "XYZ"}, "period": {"start": "2024-03-04T10:00:00Z", "end": "2024-03-03"},
            "participant": [{"individual": {"reference": "Practitioner/00000000-0000-4000-8000-000000000006"}}]});
        let body = outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(bare.to_string()), &[]).await, 422);
        let named: Vec<&str> = body["issue"].as_array().unwrap().iter()
            .map(|i| i["expression"][0].as_str().unwrap()).collect();
        for expression in ["Encounter.subject", "Encounter.status", "Encounter.class.code",
            "Encounter.period.end", "Encounter.participant[0].individual"] {
            assert!(named.contains(&expression), "{expression} in {named:?}");
        }
        let mut moved = edit.clone();
        moved["subject"]["reference"] = json!(format!("Patient/{other}"));
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&token), Some(moved.to_string()), &[]).await, 422);
        let nobody = "00000000-0000-4000-8000-000000000007";
        let mut ghost = visit.clone();
        ghost["id"] = json!(nobody);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &format!("{url}/{nobody}"), Some(&token), Some(ghost.to_string()), &[]).await, 404);
        let reader = app.user_token("default", "admin", "openid api:fhir user/Encounter.rs").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&reader), Some(visit.to_string()), &[]).await, 403);
        let own_token = app.patient_token("default", &patient, "openid api:fhir patient/Encounter.cruds").await;
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&own_token), Some(edit.to_string()), &[]).await, 403);
        assert_eq!(counts().await, before, "a refused write changed the database");
        docs.validate();
    }
    async fn problem_list_conditions_are_created_updated_versioned_and_read_back_on_both_apis(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", "openid api:fhir api:oemr user/patient.cruds \
            user/medical_problem.cruds user/allergy.cruds user/Condition.cruds").await;
        let patient = hearth_tests::fhir::patient(app, &token, json!({})).await;
        let clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical";
        let category = "http://terminology.hl7.org/CodeSystem/condition-category";
        let problem = json!({
            "resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": clinical, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}]},
            "category": [{"coding": [{"system": category, "code": "problem-list-item"}]}],
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10", "display": "Essential hypertension"}], "text": "Hypertension"},
            "subject": {"reference": format!("Patient/{patient}")},
            "onsetDateTime": "2019-05-06",
            "note": [{"text": "Diet first"}]
        });
        let url = fhir(app, "default", "/Condition");
        let lists = || async {
            let n = app.rows("default", "SELECT COUNT(*) AS n FROM lists").await;
            let v = app.rows("default", "SELECT COUNT(*) AS n FROM lists_history").await;
            (n[0]["n"].clone(), v[0]["n"].clone())
        };

        let created = send(app, reqwest::Method::POST, &url, Some(&token), Some(problem.to_string()), &[]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let body = docs.keep(&created);
        let id = body["id"].as_str().unwrap().to_owned();
        assert_eq!(created.header("location"), Some(format!("{url}/{id}/_history/1").as_str()));
        assert_eq!(etag(&created), "W/\"1\"");
        assert_eq!(body["meta"]["versionId"], "1");
        assert_eq!(body["code"]["coding"][0]["code"], "I10");
        assert_eq!(body["category"][0]["coding"][0]["code"], "problem-list-item");
        assert_eq!(body["verificationStatus"]["coding"][0]["code"], "confirmed");
        // The read over problems and encounter diagnoses carries the same version.
        let read = app.get(&format!("{url}/{id}"), &token).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(docs.keep(&read)["meta"]["versionId"], "1");
        assert_eq!(etag(&read), "W/\"1\"");

        // The standard API reads the same row at once.
        let one = app.api("default", &format!("/api/patient/{patient}/medical_problem/{id}"));
        let api = app.get(&one, &token).await;
        assert_eq!(api.status, 200, "{}", api.text);
        let row = if api.json["data"].is_array() { api.json["data"][0].clone() } else { api.json["data"].clone() };
        assert_eq!(row["title"], "Hypertension");
        assert_eq!(row["comments"], "Diet first");
        assert!(row["begdate"].as_str().unwrap().starts_with("2019-05-06"), "{row}");

        // A standard API write is version 2; a stale If-Match writes nothing.
        let changed = app.put(&one, &token, json!({"title": "High blood pressure"})).await;
        assert!((200..300).contains(&changed.status), "{}", changed.text);
        let mut edit = problem.clone();
        edit["id"] = json!(id);
        edit["clinicalStatus"]["coding"][0]["code"] = json!("resolved");
        edit["abatementDateTime"] = json!("2024-01-02");
        let own = format!("{url}/{id}");
        let before = lists().await;
        let stale = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"1\"")]).await;
        outcome(&mut docs, &stale, 412);
        assert_eq!(lists().await, before);
        let updated = send(app, reqwest::Method::PUT, &own, Some(&token), Some(edit.to_string()), &[("if-match", "W/\"2\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(etag(&updated), "W/\"3\"");
        let body = docs.keep(&updated);
        assert_eq!(body["clinicalStatus"]["coding"][0]["code"], "resolved");
        assert!(body["abatementDateTime"].as_str().unwrap().starts_with("2024-01-02"), "{body}");
        let api = app.get(&one, &token).await;
        let row = if api.json["data"].is_array() { api.json["data"][0].clone() } else { api.json["data"].clone() };
        assert_eq!(row["title"], "Hypertension");
        assert!(row["enddate"].as_str().unwrap().starts_with("2024-01-02"), "{row}");

        // vread and history.
        let second = app.get(&format!("{own}/_history/2"), &token).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(docs.keep(&second)["code"]["text"], "High blood pressure");
        let history = docs.keep(&app.get(&format!("{own}/_history"), &token).await);
        assert_eq!(history["total"], 3);
        let states: Vec<&str> = history["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["clinicalStatus"]["coding"][0]["code"].as_str().unwrap()).collect();
        assert_eq!(states, ["resolved", "active", "active"]);
        outcome(&mut docs, &app.get(&format!("{own}/_history/4"), &token).await, 404);

        // Refusals write nothing.
        let other = hearth_tests::fhir::patient(app, &token, json!({"fname": "Bea"})).await;
        let allergy = app.post(&app.api("default", &format!("/api/patient/{patient}/allergy")), &token,
            json!({"title": "Peanuts"})).await;
        assert!((200..300).contains(&allergy.status), "{}", allergy.text);
        let allergy = allergy.json["data"]["uuid"].as_str().unwrap().to_owned();
        let before = lists().await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some("{".to_owned()), &[]).await, 400);
        let bare = json!({"resourceType": "Condition", "code": {"text": "X"},
            "category": [{"coding": [{"system": category, "code": "encounter-diagnosis"}]}],
            "clinicalStatus": {"coding": [{"system": clinical, "code": "relapse"}]}});
        let body = outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(bare.to_string()), &[]).await, 422);
        let named: Vec<&str> = body["issue"].as_array().unwrap().iter()
            .map(|i| i["expression"][0].as_str().unwrap()).collect();
        for expression in ["Condition.subject", "Condition.code.text", "Condition.category[0]", "Condition.clinicalStatus"] {
            assert!(named.contains(&expression), "{expression} in {named:?}");
        }
        let mut abated = problem.clone();
        abated["abatementDateTime"] = json!("2024-01-02");
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&token), Some(abated.to_string()), &[]).await, 422);
        let mut moved = edit.clone();
        moved["subject"]["reference"] = json!(format!("Patient/{other}"));
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &own, Some(&token), Some(moved.to_string()), &[]).await, 422);
        let mut not_problem = problem.clone();
        not_problem["id"] = json!(allergy);
        outcome(&mut docs, &send(app, reqwest::Method::PUT, &format!("{url}/{allergy}"), Some(&token), Some(not_problem.to_string()), &[]).await, 404);
        outcome(&mut docs, &app.get(&format!("{url}/{allergy}/_history/1"), &token).await, 404);
        let reader = app.user_token("default", "admin", "openid api:fhir user/Condition.rs").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&reader), Some(problem.to_string()), &[]).await, 403);
        let own_token = app.patient_token("default", &patient, "openid api:fhir patient/Condition.cruds").await;
        outcome(&mut docs, &send(app, reqwest::Method::POST, &url, Some(&own_token), Some(problem.to_string()), &[]).await, 403);
        assert_eq!(lists().await, before, "a refused write changed the database");

        // A problem made on the standard API is updated through FHIR.
        let made = app.post(&app.api("default", &format!("/api/patient/{patient}/medical_problem")), &token,
            json!({"title": "Asthma", "begdate": "2018-03-04"})).await;
        assert!((200..300).contains(&made.status), "{}", made.text);
        let made = made.json["data"]["uuid"].as_str().unwrap().to_owned();
        let asthma = json!({"resourceType": "Condition", "id": made, "code": {"text": "Asthma"},
            "subject": {"reference": format!("Patient/{patient}")}});
        let reply = send(app, reqwest::Method::PUT, &format!("{url}/{made}"), Some(&token), Some(asthma.to_string()), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(etag(&reply), "W/\"2\"");
        docs.keep(&reply);
        docs.validate();
    }
}
