//! The FHIR R4 server through the real server: the CapabilityStatement built from the
//! site's plugins, Patient read and search (every parameter kind, paging, strict
//! handling), SMART scopes v1 and v2, the patient compartment, and errors as
//! OperationOutcome. Every resource and Bundle received is validated with the PyPI
//! package `fhir.resources` (R4B models) through `tests/py/validate_fhir.py`.

use hearth_tests::fhir::{Documents, fhir, get_with, ids, link, only, patient};
use hearth_tests::{Reply, both, json};

const FHIR_SCOPES: &str = "openid api:fhir api:oemr user/Patient.read user/patient.cruds \
    user/Practitioner.rs user/practitioner.cruds";

both! {
    async fn metadata_lists_what_the_sites_plugins_declare(app) {
        let mut docs = Documents::default();
        let reply = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
        let statement = docs.keep(&reply);
        assert_eq!(statement["resourceType"], "CapabilityStatement");
        assert_eq!(statement["fhirVersion"], "4.0.1");
        let rest = &statement["rest"][0];
        let patient = rest["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "Patient")
            .expect("Patient is served");
        let codes: Vec<&str> = patient["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert!(codes.contains(&"read") && codes.contains(&"search-type"), "{codes:?}");
        assert!(!codes.contains(&"delete"));
        let birthdate = patient["searchParam"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "birthdate")
            .expect("birthdate is declared");
        assert_eq!(birthdate["type"], "date");
        assert_eq!(birthdate["documentation"], "FHIRPath: Patient.birthDate");
        assert!(patient["supportedProfile"]
            .as_array()
            .unwrap()
            .contains(&json!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient")));
        let security = &rest["security"];
        assert_eq!(security["service"][0]["coding"][0]["code"], "SMART-on-FHIR");
        let oauth = security["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"].as_str().unwrap().ends_with("oauth-uris"))
            .expect("oauth-uris");
        assert_eq!(
            oauth["extension"][0]["valueUri"],
            format!("{}/oauth2/default/authorize", app.base)
        );
        let smart = app
            .send(reqwest::Method::GET, &fhir(app, "default", "/.well-known/smart-configuration"), None, None)
            .await;
        assert_eq!(smart.status, 200);
        assert_eq!(smart.json["authorization_endpoint"], oauth["extension"][0]["valueUri"]);

        let unknown = app.send(reqwest::Method::GET, &app.api("nowhere", "/fhir/metadata"), None, None).await;
        assert_eq!(unknown.status, 404);
        docs.keep(&unknown);
        assert_eq!(unknown.json["resourceType"], "OperationOutcome");
        docs.validate();
    }

    async fn patient_reads_as_us_core_with_meta_and_etag(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", FHIR_SCOPES).await;
        let uuid = patient(app, &token, json!({
            "fname": "Maria", "mname": "", "lname": "Lopez", "DOB": "1975-11-30",
            "race": "white", "ethnicity": "hisp_or_latin", "street": "12 Elm St",
            "city": "Springfield", "state": "IL", "postal_code": "62701",
            "phone_cell": "555-0101", "email": "maria@example.org", "ss": "123-45-6789",
            "title": "Mrs."
        })).await;
        let reply = app.get(&fhir(app, "default", &format!("/Patient/{uuid}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("content-type"), Some("application/fhir+json"));
        let p = docs.keep(&reply);
        assert_eq!(p["id"], uuid.as_str());
        assert_eq!(p["name"][0]["family"], "Lopez");
        assert_eq!(p["name"][0]["given"], json!(["Maria"]));
        assert_eq!(p["name"][0]["prefix"], json!(["Mrs."]));
        assert_eq!(p["gender"], "female");
        assert_eq!(p["birthDate"], "1975-11-30");
        assert_eq!(p["address"][0]["city"], "Springfield");
        assert_eq!(p["address"][0]["postalCode"], "62701");
        let race = &p["extension"][0];
        assert_eq!(race["url"], "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race");
        assert_eq!(race["extension"][0]["valueCoding"]["code"], "2106-3");
        assert_eq!(p["extension"][1]["extension"][0]["valueCoding"]["code"], "2135-2");
        let ssn = p["identifier"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["system"] == "http://hl7.org/fhir/sid/us-ssn")
            .expect("the SSN");
        assert_eq!(ssn["value"], "123-45-6789");
        assert!(p["telecom"].as_array().unwrap().contains(&json!({"system": "email", "value": "maria@example.org", "use": "home"})));
        let version = p["meta"]["versionId"].as_str().expect("versionId");
        assert_eq!(reply.header("etag"), Some(format!("W/\"{version}\"").as_str()));
        assert!(p["meta"]["lastUpdated"].as_str().unwrap().ends_with('Z'));

        // The same row read through the standard API: one chart.
        let standard = app.get(&app.api("default", &format!("/api/patient/{uuid}")), &token).await;
        assert_eq!(standard.json["data"]["lname"], p["name"][0]["family"]);
        docs.validate();
    }

    async fn search_parameters_of_every_kind_find_the_right_patients(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", FHIR_SCOPES).await;
        let smith = patient(app, &token, json!({"fname": "Ann", "lname": "Smith", "DOB": "1980-05-06", "city": "Boston", "email": "ann@example.org", "pubpid": "MRN-1"})).await;
        let smithers = patient(app, &token, json!({"fname": "Bob", "lname": "Smithers", "sex": "Male", "DOB": "1980-12-31", "city": "Austin", "phone_home": "555-0199"})).await;
        let jones = patient(app, &token, json!({"fname": "Carla", "mname": "Ann", "lname": "Jones", "DOB": "1992-02-29", "city": "Boston"})).await;
        let search = |query: &str| fhir(app, "default", &format!("/Patient?{query}"));
        let mut total = async |query: &str| -> (u64, Vec<String>) {
            let reply = app.get(&search(query), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let bundle = docs.keep(&reply);
            assert_eq!(bundle["type"], "searchset");
            (bundle["total"].as_u64().expect("total"), ids(&bundle))
        };
        assert_eq!(total("family=smi").await.0, 2, "starts with, any case");
        assert_eq!(total("family=SMITH").await.0, 2);
        assert_eq!(total("family:exact=Smith").await.1, only(&smith));
        assert_eq!(total("family:exact=smith").await.0, 0, ":exact is case-sensitive");
        assert_eq!(total("family:contains=ther").await.1, only(&smithers));
        assert_eq!(total("given=ann").await.0, 2, "first or middle name");
        assert_eq!(total("name=jon").await.1, only(&jones));
        assert_eq!(total("family=smith,jones").await.0, 3, "commas are OR");
        assert_eq!(total("family=smi&given=bob").await.1, only(&smithers), "repeats are AND");
        assert_eq!(total("gender=male").await.1, only(&smithers));
        assert_eq!(total("gender=http://hl7.org/fhir/administrative-gender|female").await.0, 2);
        assert_eq!(total("gender:not=female").await.1, only(&smithers));
        assert_eq!(total("birthdate=1980").await.0, 2, "a year is the whole year");
        assert_eq!(total("birthdate=1980-12").await.1, only(&smithers));
        assert_eq!(total("birthdate=ge1980-12-31").await.0, 2);
        assert_eq!(total("birthdate=gt1980-12-31").await.1, only(&jones));
        assert_eq!(total("birthdate=lt1980-05-07&birthdate=ge1980-05-06").await.1, only(&smith));
        assert_eq!(total("birthdate=ne1980").await.1, only(&jones));
        assert_eq!(total("birthdate=eb1992").await.0, 2);
        assert_eq!(total("address-city=boston").await.0, 2);
        assert_eq!(total("address=austin").await.1, only(&smithers));
        assert_eq!(total("email=ann@example.org").await.1, only(&smith));
        assert_eq!(total("phone=555-0199").await.1, only(&smithers));
        assert_eq!(total("telecom=555-0199").await.1, only(&smithers));
        assert_eq!(total("identifier=MRN-1").await.1, only(&smith));
        assert_eq!(total("identifier=http://terminology.hl7.org/CodeSystem/v2-0203|MRN-1").await.1, only(&smith));
        assert_eq!(total("identifier=urn:other|MRN-1").await.0, 0);
        assert_eq!(total(&format!("_id={jones}")).await.1, only(&jones));
        assert_eq!(total(&format!("_id={jones},{smith}")).await.0, 2);
        assert_eq!(total("_id=not-a-uuid").await.0, 0);
        assert_eq!(total("email:missing=true").await.0, 2);
        assert_eq!(total("email:missing=false").await.1, only(&smith));
        assert_eq!(total("_lastUpdated=ge2000-01-01").await.0, 3);
        assert_eq!(total("_lastUpdated=lt2000-01-01").await.0, 0);
        assert_eq!(total("general-practitioner:missing=true").await.0, 3);
        let sorted = total("_sort=-birthdate").await.1;
        assert_eq!(sorted, [jones.clone(), smithers.clone(), smith.clone()]);
        let sorted = total("_sort=family,given").await.1;
        assert_eq!(sorted, [jones.clone(), smith.clone(), smithers.clone()]);

        // Unknown parameters are ignored and left out of `self`.
        let reply = app.get(&search("family=smith&bogus=1&_sort=nonsense"), &token).await;
        let bundle = docs.keep(&reply);
        assert_eq!(bundle["total"], 2);
        let own = link(&bundle, "self").unwrap();
        assert!(own.ends_with("/fhir/Patient?family=smith"), "{own}");
        // … unless the client asks for strict handling.
        let reply = get_with(app, &search("family=smith&bogus=1"), &token, &[("prefer", "handling=strict")]).await;
        assert_eq!(reply.status, 400);
        let outcome = docs.keep(&reply);
        assert_eq!(outcome["resourceType"], "OperationOutcome");
        assert!(outcome["issue"][0]["diagnostics"].as_str().unwrap().contains("bogus"));

        // POST _search takes the parameters in a form body.
        let reply = Reply::from(
            app.client
                .post(fhir(app, "default", "/Patient/_search"))
                .bearer_auth(&token)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("family=smith&gender=male")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(ids(&docs.keep(&reply)), only(&smithers));

        // `_count=0` and `_summary=count` answer only the total.
        for query in ["_count=0", "_summary=count"] {
            let reply = app.get(&search(query), &token).await;
            let bundle = docs.keep(&reply);
            assert_eq!(bundle["total"], 3, "{query}");
            assert!(bundle.get("entry").is_none());
        }
        docs.validate();
    }

    async fn pages_follow_a_stable_cursor_while_rows_are_added(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", FHIR_SCOPES).await;
        let mut made = Vec::new();
        for i in 0..5 {
            made.push(patient(app, &token, json!({"lname": format!("Page{i}")})).await);
        }
        let first = app.get(&fhir(app, "default", "/Patient?family=page&_count=2"), &token).await;
        let first = docs.keep(&first);
        assert_eq!(first["total"], 5, "total counts every match, not the page");
        assert_eq!(ids(&first), made[..2]);
        assert!(link(&first, "previous").is_none());
        let next = link(&first, "next").expect("a next link");
        assert!(next.contains("_count=2") && next.contains("_cursor="), "{next}");
        assert_eq!(first["entry"][0]["search"]["mode"], "match");
        assert_eq!(
            first["entry"][0]["fullUrl"],
            fhir(app, "default", &format!("/Patient/{}", made[0]))
        );

        // A row added between pages does not shift them.
        patient(app, &token, json!({"lname": "Page-late"})).await;
        let second = docs.keep(&app.get(&next, &token).await);
        assert_eq!(second["total"], 5);
        assert_eq!(ids(&second), made[2..4]);
        let third = docs.keep(&app.get(&link(&second, "next").unwrap(), &token).await);
        assert_eq!(ids(&third), made[4..]);
        assert!(link(&third, "next").is_none());
        let back = docs.keep(&app.get(&link(&third, "previous").unwrap(), &token).await);
        assert_eq!(ids(&back), made[2..4]);

        // A fresh search sees the new row.
        let fresh = docs.keep(&app.get(&fhir(app, "default", "/Patient?family=page"), &token).await);
        assert_eq!(fresh["total"], 6);

        let bad = app.get(&fhir(app, "default", "/Patient?_cursor=12"), &token).await;
        assert_eq!(bad.status, 400);
        docs.keep(&bad);
        let big = docs.keep(&app.get(&fhir(app, "default", "/Patient?_count=1000"), &token).await);
        assert!(link(&big, "self").unwrap().contains("_count=200"), "at most 200 a page");
        docs.validate();
    }

    async fn errors_are_operation_outcomes_with_the_right_status(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", FHIR_SCOPES).await;
        let url = fhir(app, "default", "/Patient");

        let anonymous = app.send(reqwest::Method::GET, &url, None, None).await;
        assert_eq!(anonymous.status, 401);
        assert!(anonymous.header("www-authenticate").unwrap().starts_with("Bearer"));
        assert_eq!(docs.keep(&anonymous)["resourceType"], "OperationOutcome");

        let unscoped = app.user_token("default", "admin", "openid api:fhir user/Encounter.read").await;
        let forbidden = app.get(&url, &unscoped).await;
        assert_eq!(forbidden.status, 403);
        assert_eq!(docs.keep(&forbidden)["issue"][0]["code"], "forbidden");

        let missing = app.get(&format!("{url}/90cde167-0000-4000-8000-00000000dead"), &token).await;
        assert_eq!(missing.status, 404);
        assert_eq!(missing.header("content-type"), Some("application/fhir+json"));
        assert_eq!(docs.keep(&missing)["issue"][0]["code"], "not-found");
        let junk = app.get(&format!("{url}/not-an-id"), &token).await;
        assert_eq!(junk.status, 404);
        docs.keep(&junk);

        let wrong_method = app.delete(&format!("{url}/90cde167-0000-4000-8000-00000000dead"), &token).await;
        assert_eq!(wrong_method.status, 405);
        docs.keep(&wrong_method);

        for query in ["birthdate=1980-02-30", "birthdate=gt", "_count=x", "family:below=x", "gender:missing=maybe"] {
            let reply = app.get(&format!("{url}?{query}"), &token).await;
            assert_eq!(reply.status, 400, "{query}: {}", reply.text);
            assert_eq!(docs.keep(&reply)["issue"][0]["code"], "invalid", "{query}");
        }
        let no_type = app.get(&fhir(app, "default", "/Nothing"), &token).await;
        assert_eq!(no_type.status, 404);
        docs.keep(&no_type);
        docs.validate();
    }

    async fn patient_bound_tokens_see_only_their_own_patient(app) {
        let mut docs = Documents::default();
        let admin = app.user_token("default", "admin", FHIR_SCOPES).await;
        let mine = patient(app, &admin, json!({"lname": "Own"})).await;
        let other = patient(app, &admin, json!({"lname": "Other"})).await;
        for scope in ["openid api:fhir patient/Patient.read", "openid api:fhir patient/Patient.rs"] {
            let token = app.patient_token("default", &mine, scope).await;
            let own = app.get(&fhir(app, "default", &format!("/Patient/{mine}")), &token).await;
            assert_eq!(own.status, 200, "{scope}: {}", own.text);
            docs.keep(&own);
            let theirs = app.get(&fhir(app, "default", &format!("/Patient/{other}")), &token).await;
            assert_eq!(theirs.status, 404, "{scope}");
            docs.keep(&theirs);
            let all = app.get(&fhir(app, "default", "/Patient"), &token).await;
            let bundle = docs.keep(&all);
            assert_eq!(bundle["total"], 1, "{scope}");
            assert_eq!(ids(&bundle), only(&mine));
        }
        // A read-only v2 scope does not search.
        let read_only = app.patient_token("default", &mine, "openid api:fhir patient/Patient.r").await;
        assert_eq!(app.get(&fhir(app, "default", "/Patient"), &read_only).await.status, 403);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Patient/{mine}")), &read_only).await.status, 200);

        // A staff token with only patient/ scopes is confined to its launch patient.
        let site = app.state.sites.get("default").await.unwrap();
        let user: String = hearth::on_db!(&site.db, |pool| {
            use sqlx::Row;
            sqlx::query("SELECT CAST(uuid AS TEXT) AS uuid FROM users WHERE username = 'admin'")
                .fetch_one(pool)
                .await
                .unwrap()
                .get("uuid")
        });
        let launched = app
            .issue("default", hearth::auth::tokens::Grant {
                client_id: "test-client".into(),
                subject: user,
                role: hearth::auth::tokens::Role::User,
                username: Some("admin".into()),
                acl_role: Some("admin".into()),
                scope: "openid api:fhir launch patient/Patient.rs".into(),
                patient: Some(mine.clone()),
                context: json!({}),
                lifetime: 3600,
            })
            .await;
        let bundle = docs.keep(&app.get(&fhir(app, "default", "/Patient"), &launched).await);
        assert_eq!(ids(&bundle), only(&mine));
        // The same user with user/ scopes sees everyone.
        let bundle = docs.keep(&app.get(&fhir(app, "default", "/Patient"), &admin).await);
        assert_eq!(bundle["total"], 2);
        docs.validate();
    }

    async fn practitioners_are_the_users_with_an_npi_for_every_caller_with_the_scope(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", FHIR_SCOPES).await;
        let made = app
            .post(&app.api("default", "/api/practitioner"), &token, json!({
                "fname": "Meredith", "lname": "Grey", "npi": "1122334455", "city": "Seattle",
                "email": "grey@example.org", "title": "Dr."
            }))
            .await;
        assert_eq!(made.status, 201, "{}", made.text);
        let uuid = made.json["data"]["uuid"].as_str().unwrap().to_owned();
        let reply = app.get(&fhir(app, "default", &format!("/Practitioner/{uuid}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let p = docs.keep(&reply);
        assert_eq!(p["identifier"][0], json!({"system": "http://hl7.org/fhir/sid/us-npi", "value": "1122334455"}));
        assert_eq!(p["name"][0]["prefix"], json!(["Dr."]));
        assert_eq!(p["active"], true);
        // The staff user `admin` has no NPI: not a practitioner.
        let all = docs.keep(&app.get(&fhir(app, "default", "/Practitioner"), &token).await);
        assert_eq!(ids(&all), only(&uuid));
        let found = docs.keep(&app.get(&fhir(app, "default", "/Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|1122334455&address-city=seat"), &token).await);
        assert_eq!(found["total"], 1);
        let none = docs.keep(&app.get(&fhir(app, "default", "/Practitioner?active=false"), &token).await);
        assert_eq!(none["total"], 0);
        // A patient's general practitioner is a reference to the Practitioner.
        let id = made.json["data"]["id"].as_i64().expect("the practitioner's id");
        let puuid = patient(app, &token, json!({"lname": "Reader", "providerID": id})).await;
        let p = docs.keep(&app.get(&fhir(app, "default", &format!("/Patient/{puuid}")), &token).await);
        assert_eq!(p["generalPractitioner"][0]["reference"], format!("Practitioner/{uuid}"));
        assert_eq!(p["generalPractitioner"][0]["display"], "Meredith Grey");
        let by_gp = docs.keep(&app.get(&fhir(app, "default", &format!("/Patient?general-practitioner=Practitioner/{uuid}")), &token).await);
        assert_eq!(ids(&by_gp), only(&puuid));
        // A patient's app reads its care team's practitioners: not in any compartment.
        let patient_token = app.patient_token("default", &puuid, "openid api:fhir patient/Practitioner.read").await;
        let reply = app.get(&fhir(app, "default", &format!("/Practitioner/{uuid}")), &patient_token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        docs.keep(&reply);
        docs.validate();
    }

    async fn a_sites_patients_are_invisible_to_another_site(app) {
        let token = app.user_token("default", "admin", FHIR_SCOPES).await;
        let uuid = patient(app, &token, json!({"lname": "Sited"})).await;
        let second = app.user_token("second", "admin", FHIR_SCOPES).await;
        let reply = app.get(&fhir(app, "second", &format!("/Patient/{uuid}")), &second).await;
        assert_eq!(reply.status, 404);
        let reply = app.get(&fhir(app, "second", "/Patient"), &second).await;
        assert_eq!(reply.json["total"], 0);
    }
}

/// Site `second` loads no FHIR plugin.
const WITHOUT_FHIR_ON_SECOND: &str = r#"
[plugins.patient]
file = "patient.wasm"
version = "^1.0"

[plugins.fhir-patient]
file = "fhir-patient.wasm"
version = "^1.0"

[sites."*"]
plugins = ["patient", "fhir-patient"]

[sites.second]
plugins = ["patient"]
"#;

both! {
    options = hearth_tests::Options::with_plugins(WITHOUT_FHIR_ON_SECOND);

    async fn a_site_without_the_plugin_lists_no_such_type(app) {
        let types = |statement: &serde_json::Value| -> Vec<String> {
            statement["rest"][0]["resource"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["type"].as_str().unwrap().to_owned())
                .collect()
        };
        let first = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        assert_eq!(types(&first.json), ["OperationDefinition", "Patient"]);
        let second = app.send(reqwest::Method::GET, &fhir(app, "second", "/metadata"), None, None).await;
        assert_eq!(second.status, 200);
        assert_eq!(types(&second.json), ["OperationDefinition"], "only what the host serves itself");
        let token = app.user_token("second", "admin", FHIR_SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", "/Patient"), &token).await.status, 404);
    }
}
