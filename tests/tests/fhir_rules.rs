//! Rules of the FHIR server (issue 15) that the per-type test files do not prove, through
//! the real server on SQLite and PostgreSQL: date prefixes `eq ne gt lt ge le sa eb ap`
//! against periods (with and without an end) and dates, reference parameters given as
//! full URLs (this server's only), tokens without a system, `_count`'s default, `_format`
//! and `application/json`, 406 for a `_format` or `Accept` admitting no JSON, the
//! Provenance of Locations and PractitionerRoles (and `Provenance?target=`), `fhirUser`
//! resolving to a resource the token reads (a physician's own Practitioner despite the
//! ACL), granular scopes bounding what `_include` adds, `system/` tokens reading, US Core
//! profiles on every resource of the demo data, no 5xx for any malformed search of any
//! type, and the CapabilityStatement following a hot reload of a site's plugins. Every
//! FHIR document received is validated with `fhir.resources` (R4B).

use hearth_tests::fhir::{Documents, fhir, get_with, ids, link, only, patient};
use hearth_tests::{Reply, TestApp, Value, both, json};

const SCOPES: &str = "openid api:fhir api:oemr user/patient.cruds user/practitioner.cruds \
    user/encounter.cruds user/Patient.cruds user/Practitioner.rs user/Person.rs \
    user/Encounter.cruds";

/// Searches `path` (below the FHIR base) and answers the Bundle, kept for validation.
async fn search(app: &TestApp, docs: &mut Documents, token: &str, path: &str) -> Value {
    let reply = app.get(&fhir(app, "default", path), token).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    let bundle = docs.keep(&reply);
    assert_eq!(bundle["type"], "searchset", "{path}");
    bundle
}

/// The ids of a Bundle's entries, sorted.
fn sorted(bundle: &Value) -> Vec<String> {
    let mut out = ids(bundle);
    out.sort();
    out
}

/// `Type/id` of each entry with `search.mode` `mode`, sorted.
fn entries(bundle: &Value, mode: &str) -> Vec<String> {
    let mut out: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter(|e| e["search"]["mode"] == mode)
                .map(|e| {
                    format!(
                        "{}/{}",
                        e["resource"]["resourceType"].as_str().unwrap(),
                        e["resource"]["id"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A request with a token, a raw body of `content_type`, and extra headers.
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    body: Option<(&str, String)>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = app.client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some((content_type, body)) = body {
        request = request.header("content-type", content_type).body(body);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::from(request.send().await.expect("the server answers")).await
}

/// An Encounter of `patient` created through FHIR over `period`; answers its id.
async fn encounter(app: &TestApp, token: &str, patient: &str, period: Value) -> String {
    let body = json!({
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]}],
        "subject": {"reference": format!("Patient/{patient}")},
        "period": period,
    });
    let reply = send(
        app,
        reqwest::Method::POST,
        &fhir(app, "default", "/Encounter"),
        Some(token),
        Some(("application/fhir+json", body.to_string())),
        &[],
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json["id"].as_str().expect("id").to_owned()
}

both! {
    async fn date_prefixes_compare_periods_and_dates_as_fhir_defines(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let person = patient(app, &token, json!({"lname": "Periods", "DOB": "1980-05-06"})).await;
        // Three days in March 2024; half an hour in 2020; an instant (no end) in 2022.
        let long = encounter(app, &token, &person, json!({"start": "2024-03-04T10:00:00Z", "end": "2024-03-06T10:00:00Z"})).await;
        let short = encounter(app, &token, &person, json!({"start": "2020-01-01T08:00:00Z", "end": "2020-01-01T08:30:00Z"})).await;
        let open = encounter(app, &token, &person, json!({"start": "2022-01-01T12:00:00Z"})).await;
        let read = docs.keep(&app.get(&fhir(app, "default", &format!("/Encounter/{long}")), &token).await);
        assert_eq!(read["period"]["end"], "2024-03-06T10:00:00Z");

        let set = |found: &[&String]| -> Vec<String> {
            let mut out: Vec<String> = found.iter().map(|s| (*s).clone()).collect();
            out.sort();
            out
        };
        for (date, expected) in [
            // eq: the search range holds the whole period.
            ("2024-03", set(&[&long])),
            ("2024-03-05", set(&[])),
            ("eq2024-03-04", set(&[])),
            ("2022-01-01", set(&[&open])),
            ("2022-01-01T12:00:00Z", set(&[&open])),
            ("2020", set(&[&short])),
            // ne: it does not.
            ("ne2024-03", set(&[&short, &open])),
            ("ne2024-03-05", set(&[&long, &short, &open])),
            // gt / lt: the period reaches past the range's end / before its start.
            ("gt2024-03-05", set(&[&long])),
            ("gt2024-03-06", set(&[])),
            ("gt2024-03-07", set(&[])),
            ("lt2024-03-05", set(&[&long, &short, &open])),
            ("lt2024-03-04", set(&[&short, &open])),
            ("lt2020-01-01", set(&[])),
            // ge / le: into or past it.
            ("ge2024-03-06", set(&[&long])),
            ("ge2024-03-07", set(&[])),
            ("le2020-01-01", set(&[&short])),
            ("le2022-01-01", set(&[&short, &open])),
            // sa / eb: the period lies wholly after / before the range.
            ("sa2024-03-05", set(&[])),
            ("sa2022", set(&[&long])),
            ("sa2021-12-31", set(&[&long, &open])),
            ("eb2024-03-05", set(&[&short, &open])),
            ("eb2024-03-06", set(&[&short, &open])),
            ("eb2024-03-07", set(&[&long, &short, &open])),
            ("eb2022-01-01", set(&[&short])),
            ("eb2020-01-01", set(&[])),
            // ap: overlaps the range widened by a tenth of its distance from now.
            ("ap2024-03-10", set(&[&long])),
            ("ap2024-03-05", set(&[&long])),
        ] {
            let bundle = search(app, &mut docs, &token, &format!("/Encounter?patient={person}&date={date}")).await;
            assert_eq!(sorted(&bundle), expected, "date={date}");
        }
        // Two prefixes are AND, commas OR.
        let bundle = search(app, &mut docs, &token, &format!("/Encounter?patient={person}&date=ge2021&date=lt2023")).await;
        assert_eq!(ids(&bundle), only(&open));
        let bundle = search(app, &mut docs, &token, &format!("/Encounter?patient={person}&date=2020,2022")).await;
        assert_eq!(sorted(&bundle), set(&[&short, &open]));

        // A date (a day): sa / eb / ap at the value's precision.
        let birth = |prefixed: &str| format!("/Patient?_id={person}&birthdate={prefixed}");
        for (value, found) in [
            ("sa1980-05-05", true),
            ("sa1980-05-06", false),
            ("sa1980-04", true),
            ("sa1980", false),
            ("eb1980-05-07", true),
            ("eb1980-05-06", false),
            ("eb1980-06", true),
            ("eb1981", true),
            ("ap1980-05-06", true),
            ("ap1980-04-20", true),
            ("eq1980-04-20", false),
            ("ap1950", false),
        ] {
            let bundle = search(app, &mut docs, &token, &birth(value)).await;
            assert_eq!(bundle["total"], u64::from(found), "birthdate={value}");
        }
        docs.validate();
    }

    async fn reference_parameters_take_a_type_and_id_an_id_or_a_full_url(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let person = patient(app, &token, json!({"lname": "Referenced"})).await;
        let other = patient(app, &token, json!({"lname": "Elsewhere"})).await;
        let visit = encounter(app, &token, &person, json!({"start": "2024-01-02T09:00:00Z"})).await;
        encounter(app, &token, &other, json!({"start": "2024-01-03T09:00:00Z"})).await;
        let full = fhir(app, "default", &format!("/Patient/{person}"));
        for value in [person.clone(), format!("Patient/{person}"), full.clone()] {
            let query = hearth_tests::encode(&[("patient", &value)]);
            let bundle = search(app, &mut docs, &token, &format!("/Encounter?{query}")).await;
            assert_eq!(ids(&bundle), only(&visit), "patient={value}");
            let query = hearth_tests::encode(&[("subject", &value)]);
            let bundle = search(app, &mut docs, &token, &format!("/Encounter?{query}")).await;
            assert_eq!(ids(&bundle), only(&visit), "subject={value}");
        }
        // A full URL names a resource here only under this site's FHIR base (the base of
        // every fullUrl): another server's URL, or the other site's, with the same id
        // matches nothing, and is no error.
        let visits = search(app, &mut docs, &token, &format!("/Encounter?patient={person}")).await;
        assert_eq!(visits["entry"][0]["fullUrl"], fhir(app, "default", &format!("/Encounter/{visit}")));
        for value in [
            format!("https://other.example/fhir/Patient/{person}"),
            format!("http://other.example/apis/default/fhir/Patient/{person}"),
            fhir(app, "second", &format!("/Patient/{person}")),
            format!("{full}/_history/1"),
            format!("urn:uuid:{person}"),
        ] {
            for name in ["patient", "subject"] {
                let query = hearth_tests::encode(&[(name, &value)]);
                let bundle = search(app, &mut docs, &token, &format!("/Encounter?{query}")).await;
                assert_eq!(bundle["total"], 0, "{name}={value}");
            }
            // OR'd with a local reference, only the local one matches.
            let query = hearth_tests::encode(&[("patient", &format!("{value},Patient/{person}"))]);
            let bundle = search(app, &mut docs, &token, &format!("/Encounter?{query}")).await;
            assert_eq!(ids(&bundle), only(&visit), "patient={value},Patient/…");
        }
        // A reference of another type finds nothing.
        for value in [format!("Practitioner/{person}")] {
            let query = hearth_tests::encode(&[("patient", &value)]);
            let reply = app.get(&fhir(app, "default", &format!("/Encounter?{query}")), &token).await;
            assert!(reply.status == 200 || reply.status == 400, "patient={value}: {}", reply.text);
            let answer = docs.keep(&reply);
            if reply.status == 200 {
                assert_eq!(answer["total"], 0, "patient={value}");
            } else {
                assert_eq!(answer["resourceType"], "OperationOutcome");
            }
        }
        docs.validate();
    }

    async fn a_search_without_count_pages_twenty_at_a_time(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        for i in 0..21 {
            patient(app, &token, json!({"lname": format!("Twenty{i:02}")})).await;
        }
        let first = search(app, &mut docs, &token, "/Patient?family=twenty").await;
        assert_eq!(first["total"], 21);
        assert_eq!(ids(&first).len(), 20);
        let next = link(&first, "next").expect("a next link");
        let second = docs.keep(&app.get(&next, &token).await);
        assert_eq!(ids(&second).len(), 1);
        docs.validate();
    }

    async fn tokens_without_a_system_match_codes_without_one(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", &format!("{SCOPES} user/facility.cruds user/Organization.rs")).await;
        let person = patient(app, &token, json!({"lname": "Tokens", "sex": "Female"})).await;
        // `|code`: a code without a system. Gender has a system, `active` has none.
        let query = |q: &str| format!("/Patient?_id={person}&{}", hearth_tests::encode(&[("gender", q)]));
        assert_eq!(search(app, &mut docs, &token, &query("female")).await["total"], 1);
        assert_eq!(search(app, &mut docs, &token, &query("http://hl7.org/fhir/administrative-gender|female")).await["total"], 1);
        assert_eq!(search(app, &mut docs, &token, &query("|female")).await["total"], 0, "female has a system");
        let facility = app.post(&app.api("default", "/api/facility"), &token, json!({"name": "Token Clinic", "facility_npi": "1234567893"})).await;
        assert_eq!(facility.status, 201, "{}", facility.text);
        let org = facility.json["data"]["uuid"].as_str().unwrap().to_owned();
        let found = search(app, &mut docs, &token, &format!("/Organization?_id={org}&active=%7Ctrue")).await;
        assert_eq!(ids(&found), only(&org), "active has no system");
        docs.validate();
    }

    async fn format_and_plain_json_are_honoured(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let person = patient(app, &token, json!({"lname": "Formatted"})).await;
        for format in ["json", "application/json", "application/fhir+json"] {
            let query = hearth_tests::encode(&[("family", "formatted"), ("_format", format)]);
            let reply = app.get(&fhir(app, "default", &format!("/Patient?{query}")), &token).await;
            assert_eq!(reply.status, 200, "_format={format}: {}", reply.text);
            assert_eq!(reply.header("content-type"), Some("application/fhir+json"), "_format={format}");
            let bundle = docs.keep(&reply);
            assert_eq!(ids(&bundle), only(&person), "_format={format}");
            let own = link(&bundle, "self").unwrap();
            assert!(own.ends_with("/fhir/Patient?family=formatted"), "{own}");
            let query = hearth_tests::encode(&[("_format", format)]);
            let read = app.get(&fhir(app, "default", &format!("/Patient/{person}?{query}")), &token).await;
            assert_eq!(read.status, 200, "_format={format}: {}", read.text);
            assert_eq!(docs.keep(&read)["id"], person.as_str());
        }
        // A client that accepts or sends plain `application/json`.
        for accept in ["application/json", "application/fhir+json", "application/json, */*;q=0.1"] {
            let reply = get_with(app, &fhir(app, "default", &format!("/Patient/{person}")), &token, &[("accept", accept)]).await;
            assert_eq!(reply.status, 200, "Accept: {accept}: {}", reply.text);
            docs.keep(&reply);
        }
        let body = json!({
            "resourceType": "Patient",
            "name": [{"family": "Plainjson", "given": ["Ann"]}],
            "gender": "female",
            "birthDate": "1990-01-02",
        });
        let created = send(app, reqwest::Method::POST, &fhir(app, "default", "/Patient"), Some(&token),
            Some(("application/json", body.to_string())), &[("accept", "application/json")]).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let made = docs.keep(&created);
        let id = made["id"].as_str().unwrap().to_owned();
        let mut edit = made.clone();
        edit["name"][0]["family"] = json!("Plainer");
        let updated = send(app, reqwest::Method::PUT, &fhir(app, "default", &format!("/Patient/{id}")), Some(&token),
            Some(("application/json; charset=utf-8", edit.to_string())), &[("if-match", "W/\"1\"")]).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(docs.keep(&updated)["name"][0]["family"], "Plainer");
        // A body in another media type is refused as such, not misread.
        let refused = send(app, reqwest::Method::POST, &fhir(app, "default", "/Patient"), Some(&token),
            Some(("text/plain", body.to_string())), &[]).await;
        assert!(refused.status == 415 || refused.status == 400, "{}", refused.text);
        assert_eq!(docs.keep(&refused)["resourceType"], "OperationOutcome");
        docs.validate();
    }

    async fn a_format_or_accept_admitting_no_json_is_not_acceptable(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let person = patient(app, &token, json!({"lname": "Xmlwanted"})).await;
        let read = fhir(app, "default", &format!("/Patient/{person}"));
        let found = fhir(app, "default", "/Patient?family=xmlwanted");
        let metadata = fhir(app, "default", "/metadata");
        let refused = |reply: &Reply, what: &str| {
            assert_eq!(reply.status, 406, "{what}: {}", reply.text);
            assert_eq!(reply.header("content-type"), Some("application/fhir+json"), "{what}");
            assert_eq!(reply.json["resourceType"], "OperationOutcome", "{what}");
            assert_eq!(reply.json["issue"][0]["code"], "not-supported", "{what}");
        };
        // `_format` naming anything but JSON, on a read, a search and the anonymous
        // CapabilityStatement.
        for format in ["xml", "application/fhir+xml", "text/xml", "application/xml", "ttl", "html"] {
            let query = hearth_tests::encode(&[("_format", format)]);
            for url in [format!("{read}?{query}"), format!("{found}&{query}")] {
                let reply = app.get(&url, &token).await;
                refused(&reply, &url);
                docs.keep(&reply);
            }
            let reply = app.send(reqwest::Method::GET, &format!("{metadata}?{query}"), None, None).await;
            refused(&reply, &format!("metadata _format={format}"));
        }
        // An unencoded `+` is read as the media type it names.
        let reply = app.get(&format!("{read}?_format=application/fhir+xml"), &token).await;
        refused(&reply, "unencoded +");
        let reply = app.get(&format!("{read}?_format=application/fhir+json"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        // An Accept header that admits no JSON.
        for accept in ["application/fhir+xml", "application/xml, text/xml", "application/fhir+json;q=0, application/fhir+xml", "text/html"] {
            for url in [&read, &found] {
                let reply = get_with(app, url, &token, &[("accept", accept)]).await;
                refused(&reply, &format!("Accept: {accept} {url}"));
                docs.keep(&reply);
            }
            let reply = app.client.get(&metadata).header("accept", accept).send().await.unwrap();
            assert_eq!(reply.status(), 406, "metadata Accept: {accept}");
        }
        // What admits JSON is served: `*/*`, `application/*`, the JSON types, a list that
        // names one among others, no Accept, and `_format=json` over any Accept.
        for accept in ["*/*", "application/*", "application/json", "application/fhir+json",
                       "application/fhir+json; fhirVersion=4.0", "application/fhir+xml, application/fhir+json;q=0.5",
                       "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"] {
            let reply = get_with(app, &read, &token, &[("accept", accept)]).await;
            assert_eq!(reply.status, 200, "Accept: {accept}: {}", reply.text);
            assert_eq!(docs.keep(&reply)["id"], person.as_str());
            let reply = app.client.get(&metadata).header("accept", accept).send().await.unwrap();
            assert_eq!(reply.status(), 200, "metadata Accept: {accept}");
        }
        let reply = get_with(app, &format!("{found}&_format=json"), &token, &[("accept", "application/fhir+xml")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(ids(&docs.keep(&reply)), only(&person));
        // A Binary read answers a document's bytes in their own type: any Accept will do.
        let binary = app.user_token("default", "admin", "openid api:fhir user/Binary.read").await;
        let unknown = fhir(app, "default", "/Binary/00000000-0000-4000-8000-000000000000");
        let reply = get_with(app, &unknown, &binary, &[("accept", "application/pdf")]).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        // A write that asks for XML back is refused before anything is written.
        let body = json!({"resourceType": "Patient", "name": [{"family": "Neverwritten"}], "gender": "female"});
        let reply = send(app, reqwest::Method::POST, &fhir(app, "default", "/Patient"), Some(&token),
            Some(("application/fhir+json", body.to_string())), &[("accept", "application/fhir+xml")]).await;
        refused(&reply, "create");
        let none = search(app, &mut docs, &token, "/Patient?family=neverwritten").await;
        assert_eq!(none["total"], 0);
        // The compatibility setting leaves FHIR alone: a site answering as OpenEMR does
        // refuses XML too (OpenEMR answers JSON whatever was asked).
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        tokio::time::sleep(hearth::api::settings::TTL + std::time::Duration::from_millis(200)).await;
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = get_with(app, &fhir(app, "second", "/Patient"), &second, &[("accept", "application/fhir+xml")]).await;
        refused(&reply, "second site");
        docs.validate();
    }

    async fn locations_and_practitioner_roles_have_a_provenance_of_their_own(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", "openid api:fhir api:oemr user/facility.cruds \
            user/Location.rs user/Organization.rs user/PractitionerRole.rs user/Practitioner.rs user/Provenance.rs").await;
        let facility = app.post(&app.api("default", "/api/facility"), &token, json!({"name": "Provenance Clinic", "facility_npi": "1234567893"})).await;
        assert_eq!(facility.status, 201, "{}", facility.text);
        let place = facility.json["data"]["uuid"].as_str().unwrap().to_owned();
        let doctor = app.user("default", "provdoc", "physician").await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE users SET npi = '1234567893', \
                         facility_id = (SELECT id FROM facility WHERE CAST(uuid AS TEXT) = $1) WHERE username = 'provdoc'")
                .bind(&place)
                .execute(pool)
                .await
                .unwrap();
        });
        let metadata = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        let provenance = metadata.json["rest"][0]["resource"].as_array().unwrap().iter()
            .find(|r| r["type"] == "Provenance").unwrap().clone();
        assert!(provenance["searchParam"].as_array().unwrap().iter().any(|p| p["name"] == "target" && p["type"] == "reference"), "{provenance}");
        assert_eq!(provenance["searchInclude"], json!(["Provenance:target"]));
        // A Location shares its id with its Organization (one facility), a
        // PractitionerRole with its Practitioner (one user): each has a Provenance of
        // its own, under an id of its own.
        for (kind, id, twin) in [("Location", &place, "Organization"), ("PractitionerRole", &doctor, "Practitioner")] {
            let bundle = search(app, &mut docs, &token, &format!("/{kind}?_id={id}&_revinclude=Provenance:target")).await;
            assert_eq!(entries(&bundle, "match"), [format!("{kind}/{id}")]);
            let included: Vec<&Value> = bundle["entry"].as_array().unwrap().iter()
                .filter(|e| e["search"]["mode"] == "include").map(|e| &e["resource"]).collect();
            assert_eq!(included.len(), 1, "{bundle}");
            assert_eq!(included[0]["resourceType"], "Provenance");
            assert_eq!(included[0]["target"][0]["reference"], format!("{kind}/{id}"));
            let own = included[0]["id"].as_str().unwrap().to_owned();
            assert_ne!(&own, id, "{kind}'s Provenance is not its {twin}'s");
            let bundle = search(app, &mut docs, &token, &format!("/{twin}?_id={id}&_revinclude=Provenance:target")).await;
            assert_eq!(entries(&bundle, "include"), [format!("Provenance/{id}")]);
            // Each reads at its id, naming its own target.
            for (pid, target) in [(own.clone(), format!("{kind}/{id}")), (id.to_string(), format!("{twin}/{id}"))] {
                let read = app.get(&fhir(app, "default", &format!("/Provenance/{pid}")), &token).await;
                assert_eq!(read.status, 200, "{}", read.text);
                let read = docs.keep(&read);
                assert_eq!(read["id"], pid.as_str());
                assert_eq!(read["target"][0]["reference"], target.as_str());
            }
            // `target` searches by type and id, id alone, this server's full URL, or a
            // type modifier; another server's URL finds nothing.
            let both = { let mut b = vec![own.clone(), id.to_string()]; b.sort(); b };
            for (value, expected) in [
                (format!("target={kind}/{id}"), vec![own.clone()]),
                (format!("target={twin}/{id}"), vec![id.to_string()]),
                (format!("target={id}"), both.clone()),
                (hearth_tests::encode(&[("target", &fhir(app, "default", &format!("/{kind}/{id}")))]), vec![own.clone()]),
                (hearth_tests::encode(&[("target", &format!("https://other.example/fhir/{kind}/{id}"))]), vec![]),
                (format!("target:{kind}={id}"), vec![own.clone()]),
                (format!("target={kind}/{id},{twin}/{id}"), both.clone()),
                (format!("target={kind}/{id}&target={twin}/{id}"), vec![]),
            ] {
                let bundle = search(app, &mut docs, &token, &format!("/Provenance?{value}")).await;
                assert_eq!(sorted(&bundle), expected, "{value}");
            }
            // And `_include` adds the target.
            let bundle = search(app, &mut docs, &token, &format!("/Provenance?target={kind}/{id}&_include=Provenance:target")).await;
            assert_eq!(entries(&bundle, "include"), [format!("{kind}/{id}")]);
            // A Provenance read needs the Provenance scope, whatever the target's.
            let narrow = app.user_token("default", "admin", &format!("openid api:fhir user/{kind}.rs")).await;
            let refused = app.get(&fhir(app, "default", &format!("/Provenance/{own}")), &narrow).await;
            assert_eq!(refused.status, 403, "{}", refused.text);
            docs.keep(&refused);
        }
        docs.validate();
    }

    async fn fhir_user_resolves_to_the_practitioner_person_or_patient_the_token_reads(app) {
        let mut docs = Documents::default();
        let admin = app.user_token("default", "admin", SCOPES).await;
        // Staff users with an NPI are Practitioners, those without Persons. Reading
        // another's needs the ACL admin/users, as in OpenEMR: both are administrators here.
        let doctor = app.user("default", "doctor", "admin").await;
        let physician = app.user("default", "physician", "physician").await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE users SET npi = '1234567893' WHERE username IN ('doctor', 'physician')")
                .execute(pool)
                .await
                .unwrap();
        });
        let person = patient(app, &admin, json!({"lname": "Selfreader"})).await;
        let userinfo = hearth_tests::oauth(app, "default", "/userinfo");
        let cases = [
            (app.user_token("default", "doctor", "openid fhirUser api:fhir user/Practitioner.rs").await, format!("Practitioner/{doctor}")),
            (app.user_token("default", "admin", "openid fhirUser api:fhir user/Person.rs").await, format!("Person/{}", users_uuid(app, "admin").await)),
            (app.patient_token("default", &person, "openid fhirUser api:fhir patient/Patient.rs").await, format!("Patient/{person}")),
        ];
        for (token, expected) in cases {
            let claims = app.get(&userinfo, &token).await;
            assert_eq!(claims.status, 200, "{}", claims.text);
            let url = claims.json["fhirUser"].as_str().expect("fhirUser").to_owned();
            assert_eq!(url, fhir(app, "default", &format!("/{expected}")));
            // The URL resolves, for the token it names.
            let reply = app.get(&url, &token).await;
            assert_eq!(reply.status, 200, "{url}: {}", reply.text);
            let resource = docs.keep(&reply);
            assert_eq!(format!("{}/{}", resource["resourceType"].as_str().unwrap(), resource["id"].as_str().unwrap()), expected);
        }
        // A physician's fhirUser names their Practitioner too. Their role lacks the ACL
        // admin/users, yet they read their own Practitioner (SMART apps resolve
        // fhirUser), with the v1 or the v2 read scope; any other practitioner, and a
        // search, keep the ACL's 403.
        for scope in ["user/Practitioner.rs", "user/Practitioner.read"] {
            let token = app.user_token("default", "physician", &format!("openid fhirUser api:fhir {scope}")).await;
            let claims = app.get(&userinfo, &token).await;
            let own = claims.json["fhirUser"].as_str().expect("fhirUser").to_owned();
            assert_eq!(own, fhir(app, "default", &format!("/Practitioner/{physician}")));
            let reply = app.get(&own, &token).await;
            assert_eq!(reply.status, 200, "{scope}: {}", reply.text);
            assert_eq!(docs.keep(&reply)["id"], physician.as_str());
            for other in [format!("/Practitioner/{doctor}"), "/Practitioner".to_owned(), format!("/Practitioner?_id={physician}")] {
                let reply = app.get(&fhir(app, "default", &other), &token).await;
                assert_eq!(reply.status, 403, "{scope} {other}: {}", reply.text);
                docs.keep(&reply);
            }
        }
        // Without a Practitioner scope the scope's 403 stands, own resource or not.
        let token = app.user_token("default", "physician", "openid fhirUser api:fhir user/Patient.rs").await;
        let reply = app.get(&fhir(app, "default", &format!("/Practitioner/{physician}")), &token).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        // A clinician without an NPI is a Person: they read their own, not another's.
        let nurse = app.user("default", "nurse", "clinician").await;
        let token = app.user_token("default", "nurse", "openid fhirUser api:fhir user/Person.rs").await;
        let claims = app.get(&userinfo, &token).await;
        assert_eq!(claims.json["fhirUser"], fhir(app, "default", &format!("/Person/{nurse}")));
        let reply = app.get(&fhir(app, "default", &format!("/Person/{nurse}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(docs.keep(&reply)["id"], nurse.as_str());
        let admin_person = users_uuid(app, "admin").await;
        let reply = app.get(&fhir(app, "default", &format!("/Person/{admin_person}")), &token).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        docs.validate();
    }

    async fn granular_scopes_bound_what_include_adds(app) {
        let mut docs = Documents::default();
        let admin = app.user_token("default", "admin", SCOPES).await;
        let ann = patient(app, &admin, json!({"fname": "Ann", "lname": "Granular", "sex": "Female"})).await;
        let bob = patient(app, &admin, json!({"fname": "Bob", "lname": "Granular", "sex": "Male"})).await;
        let hers = encounter(app, &admin, &ann, json!({"start": "2024-02-01T09:00:00Z"})).await;
        let his = encounter(app, &admin, &bob, json!({"start": "2024-02-02T09:00:00Z"})).await;

        // Patients granted only when female: Bob is never read, searched or included.
        let token = app.user_token("default", "admin", "openid api:fhir user/Encounter.rs user/Patient.rs?gender=female").await;
        let bundle = search(app, &mut docs, &token, "/Encounter?_include=Encounter:patient&_count=50").await;
        let matched = entries(&bundle, "match");
        assert!(matched.contains(&format!("Encounter/{hers}")) && matched.contains(&format!("Encounter/{his}")), "{matched:?}");
        let included = entries(&bundle, "include");
        assert!(included.contains(&format!("Patient/{ann}")), "{included:?}");
        assert!(!included.contains(&format!("Patient/{bob}")), "{included:?}");
        let bundle = search(app, &mut docs, &token, "/Patient?family=granular").await;
        assert_eq!(ids(&bundle), only(&ann));
        let hidden = app.get(&fhir(app, "default", &format!("/Patient/{bob}")), &token).await;
        assert_eq!(hidden.status, 404, "{}", hidden.text);
        docs.keep(&hidden);

        // The same for a patient token whose Encounter scope is constrained: an encounter
        // of another class is neither matched nor included.
        let emergency = json!({
            "resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
            "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003"}]}],
            "subject": {"reference": format!("Patient/{ann}")},
            "period": {"start": "2024-02-03T09:00:00Z"},
        });
        let made = send(app, reqwest::Method::POST, &fhir(app, "default", "/Encounter"), Some(&admin),
            Some(("application/fhir+json", emergency.to_string())), &[]).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let urgent = made.json["id"].as_str().unwrap().to_owned();
        let token = app.patient_token("default", &ann, "openid api:fhir patient/Encounter.rs?class=AMB patient/Patient.rs").await;
        let bundle = search(app, &mut docs, &token, "/Encounter").await;
        assert_eq!(ids(&bundle), only(&hers));
        let bundle = search(app, &mut docs, &token, &format!("/Encounter?_id={urgent}&_include=Encounter:patient")).await;
        assert_eq!(bundle["total"], 0);
        assert!(entries(&bundle, "include").is_empty(), "nothing included for what was not matched");
        let hidden = app.get(&fhir(app, "default", &format!("/Encounter/{urgent}")), &token).await;
        assert_eq!(hidden.status, 404, "{}", hidden.text);
        docs.keep(&hidden);
        docs.validate();
    }

    async fn system_tokens_read_and_search_every_type_they_are_granted(app) {
        let mut docs = Documents::default();
        let admin = app.user_token("default", "admin", SCOPES).await;
        let person = patient(app, &admin, json!({"lname": "Systemread"})).await;
        encounter(app, &admin, &person, json!({"start": "2024-01-02T09:00:00Z"})).await;
        let token = hearth_tests::bulk::system_token(app, "default", "backend-client", "system/*.read").await;
        let metadata = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        let types: Vec<String> = metadata.json["rest"][0]["resource"].as_array().unwrap().iter()
            .filter(|r| r["interaction"].as_array().unwrap().iter().any(|i| i["code"] == "search-type"))
            .map(|r| r["type"].as_str().unwrap().to_owned())
            .collect();
        assert!(types.len() >= 13, "{types:?}");
        for t in &types {
            let reply = app.get(&fhir(app, "default", &format!("/{t}?_count=1")), &token).await;
            assert_eq!(reply.status, 200, "{t}: {}", reply.text);
            docs.keep(&reply);
        }
        let bundle = search(app, &mut docs, &token, &format!("/Encounter?patient={person}&_include=Encounter:patient")).await;
        assert_eq!(entries(&bundle, "include"), [format!("Patient/{person}")]);
        let read = app.get(&fhir(app, "default", &format!("/Patient/{person}")), &token).await;
        assert_eq!(read.status, 200, "{}", read.text);
        docs.keep(&read);
        // A narrower system scope: that type only; and a read scope does not write.
        let narrow = hearth_tests::bulk::system_token(app, "default", "backend-client", "system/Patient.rs").await;
        assert_eq!(app.get(&fhir(app, "default", "/Patient"), &narrow).await.status, 200);
        let refused = app.get(&fhir(app, "default", "/Encounter"), &narrow).await;
        assert_eq!(refused.status, 403, "{}", refused.text);
        docs.keep(&refused);
        let body = json!({"resourceType": "Patient", "name": [{"family": "Written", "given": ["By"]}], "gender": "female", "birthDate": "1990-01-02"});
        let write = send(app, reqwest::Method::POST, &fhir(app, "default", "/Patient"), Some(&token),
            Some(("application/fhir+json", body.to_string())), &[]).await;
        assert_eq!(write.status, 403, "{}", write.text);
        docs.keep(&write);
        docs.validate();
    }

    async fn no_malformed_search_or_read_of_any_type_is_a_server_error(app) {
        let admin = app.user_token("default", "admin", SCOPES).await;
        patient(app, &admin, json!({"lname": "Junk"})).await;
        let token = app.user_token("default", "admin", "openid api:fhir user/*.rs").await;
        let metadata = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        // Every declared parameter gets each of these; with a modifier, the first three.
        let junk = [
            "", "x", "%", "'", "\\", "|", "a|b|c", "ge", "sa2024-13-01", "2024-02-30",
            "-1", "99999999999999999999", "Patient/", "http://", "Ж", "\u{0}", ",,,",
        ];
        let mut urls = Vec::new();
        for resource in metadata.json["rest"][0]["resource"].as_array().unwrap() {
            let t = resource["type"].as_str().unwrap();
            let declared: Vec<String> = resource["searchParam"].as_array().map(|ps| {
                ps.iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
            }).unwrap_or_default();
            for name in &declared {
                for modifier in ["", ":missing", ":not", ":exact", ":contains", ":text", ":below", ":Patient"] {
                    let values = if modifier.is_empty() { &junk[..] } else { &junk[..3] };
                    for value in values {
                        urls.push(format!("/{t}?{}", hearth_tests::encode(&[(format!("{name}{modifier}").as_str(), *value)])));
                    }
                }
            }
            for name in ["_count", "_sort", "_total", "_summary", "_include", "_revinclude", "_cursor", "_elements"] {
                for value in junk {
                    urls.push(format!("/{t}?{}", hearth_tests::encode(&[(name, value)])));
                }
            }
            let long = "a".repeat(300);
            for id in ["x", "%25", "..", "Patient", "00000000-0000-0000-0000-000000000000", long.as_str()] {
                urls.push(format!("/{t}/{id}"));
                urls.push(format!("/{t}/{id}/_history"));
                urls.push(format!("/{t}/{id}/_history/x"));
            }
        }
        assert!(urls.len() > 2000, "{}", urls.len());
        // Eight at a time.
        let mut running = tokio::task::JoinSet::new();
        let mut fail = Vec::new();
        let mut answered = 0;
        let checked = urls.len();
        for path in urls {
            if running.len() >= 8
                && let Some(done) = running.join_next().await
            {
                let (ok, bad) = done.unwrap();
                answered += usize::from(ok);
                fail.extend(bad);
            }
            let (client, url, token) = (app.client.clone(), fhir(app, "default", &path), token.clone());
            running.spawn(async move {
                let reply = Reply::from(client.get(&url).bearer_auth(&token).send().await.expect("the server answers")).await;
                let bad = reply.status >= 500 || (reply.status >= 400 && reply.json["resourceType"] != "OperationOutcome");
                (reply.status == 200, bad.then(|| format!("{} {path}: {}", reply.status, reply.text)))
            });
        }
        while let Some(done) = running.join_next().await {
            let (ok, bad) = done.unwrap();
            answered += usize::from(ok);
            fail.extend(bad);
        }
        // The token reaches the types: many of these searches are answered.
        assert!(answered > checked / 4, "only {answered} of {checked} answered 200");
        assert!(fail.is_empty(), "{} of {checked} answers failed:\n{}", fail.len(), fail.join("\n"));
    }
}

both! {
    async fn every_resource_of_the_demo_data_claims_its_us_core_profiles(app) {
        let site = app.state.sites.get("default").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 8, seed: 11, batch: 8 };
        hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", "openid api:fhir user/*.rs").await;
        let metadata = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        let unversioned = |url: &str| url.split('|').next().unwrap().to_owned();
        let us_core = [
            "Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Encounter",
            "Observation", "Condition", "AllergyIntolerance", "MedicationRequest", "Procedure", "Provenance",
        ];
        let mut seen = Vec::new();
        for resource in metadata.json["rest"][0]["resource"].as_array().unwrap() {
            let t = resource["type"].as_str().unwrap();
            let Some(supported) = resource["supportedProfile"].as_array() else { continue };
            let supported: Vec<String> = supported.iter().map(|p| unversioned(p.as_str().unwrap())).collect();
            let bundle = search(app, &mut docs, &token, &format!("/{t}?_count=200")).await;
            let matches: Vec<&Value> = bundle["entry"].as_array().map(|e| e.iter().map(|e| &e["resource"]).collect()).unwrap_or_default();
            if us_core.contains(&t) {
                assert!(!matches.is_empty(), "the demo data has {t}");
                seen.push(t.to_owned());
            }
            for r in matches {
                let claimed = r["meta"]["profile"].as_array().unwrap_or_else(|| panic!("{t}/{}: no meta.profile", r["id"]));
                assert!(!claimed.is_empty(), "{t}/{}", r["id"]);
                // Every US Core profile claimed is one the statement lists (the FHIR core
                // vital-sign profiles US Core 3.1.1 builds on are claimed beside them).
                for profile in claimed.iter().filter(|p| p.as_str().unwrap().contains("/us/core/")) {
                    let profile = unversioned(profile.as_str().unwrap());
                    assert!(supported.contains(&profile), "{t}/{}: {profile} is not in the statement's {supported:?}", r["id"]);
                }
                if us_core.contains(&t) {
                    assert!(claimed.iter().any(|p| p.as_str().unwrap().contains("/us/core/")), "{t}/{}: {claimed:?}", r["id"]);
                    assert!(r["meta"]["versionId"].is_string() && r["meta"]["lastUpdated"].is_string(), "{t}/{}", r["id"]);
                }
            }
        }
        assert_eq!(seen.len(), us_core.len(), "{seen:?}");
        // Patients carry what US Core asks of them, from the seeded rows.
        let patients = search(app, &mut docs, &token, "/Patient?_count=200").await;
        for entry in patients["entry"].as_array().unwrap() {
            let p = &entry["resource"];
            assert!(p["identifier"].as_array().is_some_and(|i| !i.is_empty()), "{p}");
            assert!(p["name"][0]["family"].is_string() && p["gender"].is_string() && p["birthDate"].is_string(), "{p}");
            let extensions: Vec<&str> = p["extension"].as_array().map(|e| e.iter().map(|x| x["url"].as_str().unwrap()).collect()).unwrap_or_default();
            for wanted in ["us-core-race", "us-core-ethnicity", "us-core-birthsex"] {
                assert!(extensions.iter().any(|u| u.ends_with(wanted)), "{wanted}: {p}");
            }
        }
        docs.validate();
    }
}

/// The staff user's uuid.
async fn users_uuid(app: &TestApp, username: &str) -> String {
    let site = app.state.sites.get("default").await.unwrap();
    let name = username.to_owned();
    hearth::on_db!(&site.db, |pool| {
        use sqlx::Row;
        sqlx::query("SELECT CAST(uuid AS TEXT) AS uuid FROM users WHERE username = $1")
            .bind(&name)
            .fetch_one(pool)
            .await
            .unwrap()
            .get("uuid")
    })
}

/// Site `second` loads no FHIR plugin, until the file says otherwise.
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

/// The resource types a CapabilityStatement lists.
fn types(statement: &Value) -> Vec<String> {
    statement["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_owned())
        .collect()
}

/// Reloads the plugins through the admin API and waits until `site` lists `expected`.
async fn reload_until(app: &TestApp, site: &str, expected: &[&str]) -> Value {
    let admin = app
        .user_token(site, "admin", "openid api:oemr user/hearth-admin.ru")
        .await;
    let reload = app
        .post(&app.api(site, "/admin/plugins/reload"), &admin, json!({}))
        .await;
    assert_eq!(reload.status, 200, "{}", reload.text);
    assert_eq!(
        reload.json["report"]["errors"],
        json!([]),
        "{}",
        reload.text
    );
    let mut last = Value::Null;
    for _ in 0..100 {
        let reply = app
            .send(
                reqwest::Method::GET,
                &fhir(app, site, "/metadata"),
                None,
                None,
            )
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        if types(&reply.json) == expected {
            return reply.json;
        }
        last = reply.json;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{site} still lists {:?}", types(&last));
}

both! {
    options = hearth_tests::Options::with_plugins(WITHOUT_FHIR_ON_SECOND);

    async fn the_capability_statement_follows_a_hot_reload_of_the_sites_plugins(app) {
        let mut docs = Documents::default();
        let token = app.user_token("second", "admin", SCOPES).await;
        let first = app.send(reqwest::Method::GET, &fhir(app, "second", "/metadata"), None, None).await;
        assert_eq!(types(&first.json), ["OperationDefinition"]);
        let refused = app.get(&fhir(app, "second", "/Patient"), &token).await;
        assert_eq!(refused.status, 404);
        docs.keep(&refused);

        // The file now gives site `second` the FHIR Patient plugin: after the reload its
        // statement lists Patient with its parameters, and Patient is served.
        let manifest = app.data_dir.join("plugins.toml");
        let with = WITHOUT_FHIR_ON_SECOND.replace("plugins = [\"patient\"]\n", "plugins = [\"patient\", \"fhir-patient\"]\n");
        assert_ne!(with, WITHOUT_FHIR_ON_SECOND);
        std::fs::write(&manifest, &with).unwrap();
        let statement = reload_until(app, "second", &["OperationDefinition", "Patient"]).await;
        let patient_type = statement["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Patient").unwrap();
        assert!(patient_type["searchParam"].as_array().unwrap().iter().any(|p| p["name"] == "birthdate"));
        docs.keep_value(statement.clone());
        let served = app.get(&fhir(app, "second", "/Patient"), &token).await;
        assert_eq!(served.status, 200, "{}", served.text);
        docs.keep(&served);
        // The other site is untouched.
        let default = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        assert_eq!(types(&default.json), ["OperationDefinition", "Patient"]);

        // And taken away again.
        std::fs::write(&manifest, WITHOUT_FHIR_ON_SECOND).unwrap();
        reload_until(app, "second", &["OperationDefinition"]).await;
        let refused = app.get(&fhir(app, "second", "/Patient"), &token).await;
        assert_eq!(refused.status, 404);
        docs.keep(&refused);
        docs.validate();
    }
}
