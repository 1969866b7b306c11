//! FHIR Organization, Location, PractitionerRole, Person and Encounter through the real
//! server: reads and every search parameter kind over the rows the standard API writes,
//! accent-insensitive strings, `:text` on tokens, `_include` (resolved by the host with
//! the caller's own scopes and compartment), `_total`, SMART scopes v1 and v2, staff ACLs,
//! the patient compartment, and errors as OperationOutcome. Every resource and Bundle
//! received is validated with `fhir.resources` through `Documents`.

use hearth_tests::fhir::{Documents, fhir, ids, link, only, patient};
use hearth_tests::{TestApp, Value, both, json};

const SCOPES: &str = "openid api:fhir api:oemr user/patient.cruds user/practitioner.cruds \
    user/facility.cruds user/encounter.cruds user/Patient.rs user/Practitioner.rs \
    user/PractitionerRole.rs user/Person.rs user/Organization.rs user/Location.rs \
    user/Encounter.rs";

/// The standard API's `data` of a 201.
async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let reply = app.post(&app.api("default", path), token, body).await;
    assert_eq!(reply.status, 201, "POST {path}: {}", reply.text);
    reply.json["data"].clone()
}

/// A facility, a practitioner working there, a patient and two of the patient's
/// encounters with that practitioner at that facility, all made through `/api`.
struct Clinic {
    facility: String,
    practitioner: String,
    patient: String,
    encounters: Vec<String>,
}

impl Clinic {
    async fn build(app: &TestApp, token: &str) -> Clinic {
        let facility = created(
            app,
            token,
            "/api/facility",
            json!({
                "name": "Clínica São José", "facility_npi": "1234567893", "federal_ein": "12-3456789",
                "phone": "555-0100", "email": "desk@saojose.example", "street": "1 Rua Main",
                "city": "Fall River", "state": "MA", "postal_code": "02720"
            }),
        )
        .await;
        let practitioner = created(
            app,
            token,
            "/api/practitioner",
            json!({
                "fname": "Ana", "lname": "Pereira", "npi": "1122334455", "facility_id": facility["id"],
                "specialty": "Family Medicine", "phone": "555-0111", "email": "ana@saojose.example"
            }),
        )
        .await;
        let patient = patient(app, token, json!({"fname": "Joana", "lname": "Silva"})).await;
        let mut encounters = Vec::new();
        for (date, class, reason) in [
            ("2024-03-04 10:00:00", "AMB", "Checkup"),
            ("2024-06-01 08:30:00", "EMER", "Fall"),
        ] {
            let made = created(
                app,
                token,
                &format!("/api/patient/{patient}/encounter"),
                json!({"pc_catid": "5", "class_code": class, "reason": reason, "date": date,
                       "facility_id": facility["id"], "provider_id": practitioner["id"]}),
            )
            .await;
            encounters.push(made["euuid"].as_str().expect("euuid").to_owned());
        }
        Clinic {
            facility: facility["uuid"].as_str().expect("uuid").to_owned(),
            practitioner: practitioner["uuid"].as_str().expect("uuid").to_owned(),
            patient,
            encounters,
        }
    }
}

/// Searches `path?query` and answers the Bundle, kept for validation.
async fn search(app: &TestApp, docs: &mut Documents, token: &str, path: &str) -> Value {
    let reply = app.get(&fhir(app, "default", path), token).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    let bundle = docs.keep(&reply);
    assert_eq!(bundle["type"], "searchset", "{path}");
    bundle
}

/// `Type/id` of each entry with `search.mode` `mode`.
fn entries(bundle: &Value, mode: &str) -> Vec<String> {
    bundle["entry"]
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
        .unwrap_or_default()
}

both! {
    async fn facilities_read_as_us_core_organizations_and_locations(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let clinic = Clinic::build(app, &token).await;
        let other = created(app, &token, "/api/facility", json!({"name": "Harbor Labs", "facility_npi": "1987654325", "city": "Boston", "state": "MA", "postal_code": "02110"})).await;
        let other = other["uuid"].as_str().unwrap().to_owned();

        let reply = app.get(&fhir(app, "default", &format!("/Organization/{}", clinic.facility)), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let org = docs.keep(&reply);
        assert_eq!(org["name"], "Clínica São José");
        assert_eq!(org["active"], true);
        assert!(org["meta"]["profile"].as_array().unwrap().contains(&json!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-organization")));
        assert!(org["identifier"].as_array().unwrap().contains(&json!({"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"})));
        assert!(org["telecom"].as_array().unwrap().contains(&json!({"system": "phone", "value": "555-0100", "use": "work"})));
        assert_eq!(org["address"][0]["postalCode"], "02720");
        assert_eq!(org["type"][0]["coding"][0]["code"], "prov");
        let version = org["meta"]["versionId"].as_str().unwrap();
        assert_eq!(reply.header("etag"), Some(format!("W/\"{version}\"").as_str()));

        let loc = docs.keep(&app.get(&fhir(app, "default", &format!("/Location/{}", clinic.facility)), &token).await);
        assert_eq!(loc["resourceType"], "Location");
        assert_eq!(loc["status"], "active");
        assert_eq!(loc["name"], "Clínica São José");
        assert_eq!(loc["address"]["city"], "Fall River");
        assert_eq!(loc["managingOrganization"]["reference"], format!("Organization/{}", clinic.facility));

        let mine = only(&clinic.facility);
        for (path, expected) in [
            ("/Organization?name=clinica%20sao", mine.clone()),
            ("/Organization?name=CLÍNICA", mine.clone()),
            ("/Organization?name:contains=jose", mine.clone()),
            ("/Organization?name:exact=Clinica%20Sao%20Jose", vec![]),
            ("/Organization?address-city=fall", mine.clone()),
            ("/Organization?address-state=MA&address-postalcode=021", only(&other)),
            ("/Organization?address=rua", vec![]),
            ("/Organization?address:contains=rua", mine.clone()),
            ("/Organization?address=fall%20riv", mine.clone()),
            ("/Organization?email=desk@saojose.example", mine.clone()),
            ("/Organization?phone=555-0100", mine.clone()),
            ("/Organization?telecom=desk@saojose.example", mine.clone()),
            ("/Organization?identifier=http://hl7.org/fhir/sid/us-npi%7C1234567893", mine.clone()),
            ("/Organization?identifier=urn:oid:2.16.840.1.113883.4.4%7C12-3456789", mine.clone()),
            ("/Organization?active=false", vec![]),
            ("/Organization?email:missing=true", only(&other)),
            ("/Location?name=harbor", only(&other)),
            ("/Location?address-postalcode=02720", mine.clone()),
            ("/Location?address-city=boston,fall&_sort=-name", vec![other.clone(), clinic.facility.clone()]),
            ("/Location?status=active&name=clin", mine.clone()),
            (&format!("/Location?organization=Organization/{other}"), only(&other)),
        ] {
            let bundle = search(app, &mut docs, &token, path).await;
            assert_eq!(ids(&bundle), expected, "{path}");
        }
        docs.validate();
    }

    async fn practitioner_roles_link_the_practitioner_facility_and_specialty(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let clinic = Clinic::build(app, &token).await;
        // The standard API does not write the physician type; OpenEMR's admin pages do.
        let site = app.state.sites.get("default").await.unwrap();
        let practitioner = clinic.practitioner.clone();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE users SET physician_type = 'attending_physician' WHERE npi = '1122334455'")
                .execute(pool)
                .await
                .unwrap();
        });
        let reply = app.get(&fhir(app, "default", &format!("/PractitionerRole/{practitioner}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let role = docs.keep(&reply);
        assert_eq!(role["practitioner"]["reference"], format!("Practitioner/{practitioner}"));
        assert_eq!(role["practitioner"]["display"], "Ana Pereira");
        assert_eq!(role["organization"]["reference"], format!("Organization/{}", clinic.facility));
        assert_eq!(role["location"][0]["reference"], format!("Location/{}", clinic.facility));
        assert_eq!(role["code"][0]["coding"][0], json!({"system": "http://snomed.info/sct", "code": "405279007", "display": "Attending physician"}));
        assert_eq!(role["specialty"][0]["coding"][0]["system"], "http://nucc.org/provider-taxonomy");
        assert_eq!(role["specialty"][0]["text"], "Family Medicine");
        assert!(role["telecom"].as_array().unwrap().contains(&json!({"system": "email", "value": "ana@saojose.example", "use": "work"})));

        // A practitioner without a facility holds no role.
        let loose = created(app, &token, "/api/practitioner", json!({"fname": "Leo", "lname": "Loose", "npi": "2233445566"})).await;
        let loose = loose["uuid"].as_str().unwrap().to_owned();
        assert_eq!(app.get(&fhir(app, "default", &format!("/PractitionerRole/{loose}")), &token).await.status, 404);

        let mine = only(&practitioner);
        for (path, expected) in [
            ("/PractitionerRole".to_owned(), mine.clone()),
            ("/PractitionerRole?specialty=http://nucc.org/provider-taxonomy%7C207Q00000X".to_owned(), mine.clone()),
            ("/PractitionerRole?specialty=urn:other%7C207Q00000X".to_owned(), vec![]),
            ("/PractitionerRole?specialty:text=family%20med".to_owned(), mine.clone()),
            ("/PractitionerRole?specialty:text=surgery".to_owned(), vec![]),
            (format!("/PractitionerRole?practitioner=Practitioner/{practitioner}"), mine.clone()),
            (format!("/PractitionerRole?practitioner={loose}"), vec![]),
            (format!("/PractitionerRole?organization={}", clinic.facility), mine.clone()),
        ] {
            let bundle = search(app, &mut docs, &token, &path).await;
            assert_eq!(ids(&bundle), expected, "{path}");
        }

        let bundle = search(app, &mut docs, &token, "/PractitionerRole?_include=PractitionerRole:practitioner&_include=PractitionerRole:organization,PractitionerRole:location").await;
        assert_eq!(entries(&bundle, "match"), [format!("PractitionerRole/{practitioner}")]);
        let mut included = entries(&bundle, "include");
        included.sort();
        assert_eq!(included, [
            format!("Location/{}", clinic.facility),
            format!("Organization/{}", clinic.facility),
            format!("Practitioner/{practitioner}"),
        ]);
        assert_eq!(bundle["total"], 1, "included resources are not counted");
        let own = link(&bundle, "self").unwrap();
        assert!(own.contains("_include=PractitionerRole%3Apractitioner") || own.contains("_include=PractitionerRole:practitioner"), "{own}");
        docs.validate();
    }

    async fn persons_are_the_staff_users_who_are_not_practitioners(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let clinic = Clinic::build(app, &token).await;
        let clerk = app.user("default", "frontdesk", "front_office").await;
        let all = search(app, &mut docs, &token, "/Person").await;
        let people = ids(&all);
        assert!(people.contains(&clerk), "{people:?}");
        assert!(!people.contains(&clinic.practitioner), "practitioners are not Persons");
        let reply = app.get(&fhir(app, "default", &format!("/Person/{clerk}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let person = docs.keep(&reply);
        assert_eq!(person["name"][0]["family"], "frontdesk");
        assert_eq!(person["active"], true);
        let found = search(app, &mut docs, &token, "/Person?family=frontd&active=true").await;
        assert_eq!(ids(&found), only(&clerk));
        let none = search(app, &mut docs, &token, "/Person?given=nobody").await;
        assert_eq!(none["total"], 0);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Person/{}", clinic.practitioner)), &token).await.status, 404);
        docs.validate();
    }

    async fn encounters_search_by_patient_date_class_and_their_references(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let clinic = Clinic::build(app, &token).await;
        let (first, second) = (clinic.encounters[0].clone(), clinic.encounters[1].clone());
        let other = patient(app, &token, json!({"lname": "Other"})).await;

        let reply = app.get(&fhir(app, "default", &format!("/Encounter/{first}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let e = docs.keep(&reply);
        assert!(e["meta"]["profile"].as_array().unwrap().contains(&json!("http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter")));
        assert_eq!(e["status"], "finished");
        assert_eq!(e["class"], json!({"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "Outpatient"}));
        assert_eq!(e["subject"]["reference"], format!("Patient/{}", clinic.patient));
        assert_eq!(e["period"]["start"], "2024-03-04T10:00:00Z");
        assert_eq!(e["participant"][0]["individual"]["reference"], format!("Practitioner/{}", clinic.practitioner));
        assert_eq!(e["serviceProvider"]["reference"], format!("Organization/{}", clinic.facility));
        assert_eq!(e["location"][0]["location"]["reference"], format!("Location/{}", clinic.facility));
        assert_eq!(e["reasonCode"][0]["text"], "Checkup");
        assert!(e["type"].as_array().is_some_and(|t| !t.is_empty()), "US Core requires a type");

        let both = vec![first.clone(), second.clone()];
        for (path, expected) in [
            (format!("/Encounter?patient={}", clinic.patient), both.clone()),
            (format!("/Encounter?patient=Patient/{other}"), vec![]),
            (format!("/Encounter?subject={}", clinic.patient), both.clone()),
            ("/Encounter?date=2024-03-04".to_owned(), only(&first)),
            ("/Encounter?date=ge2024-05&date=lt2025".to_owned(), only(&second)),
            ("/Encounter?class=AMB".to_owned(), only(&first)),
            ("/Encounter?class=http://terminology.hl7.org/CodeSystem/v3-ActCode%7CEMER".to_owned(), only(&second)),
            ("/Encounter?class:text=outpat".to_owned(), only(&first)),
            ("/Encounter?class:not=AMB".to_owned(), only(&second)),
            (format!("/Encounter?practitioner=Practitioner/{}", clinic.practitioner), both.clone()),
            (format!("/Encounter?participant={}", clinic.practitioner), both.clone()),
            (format!("/Encounter?service-provider=Organization/{}", clinic.facility), both.clone()),
            (format!("/Encounter?location={}", clinic.facility), both.clone()),
            ("/Encounter?_sort=-date".to_owned(), vec![second.clone(), first.clone()]),
            (format!("/Encounter?_id={second}"), only(&second)),
        ] {
            let bundle = search(app, &mut docs, &token, &path).await;
            assert_eq!(ids(&bundle), expected, "{path}");
        }

        // `_include` adds each referenced resource once.
        let bundle = search(app, &mut docs, &token, "/Encounter?_include=Encounter:patient&_include=Encounter:practitioner&_include=Encounter:service-provider").await;
        assert_eq!(entries(&bundle, "match").len(), 2);
        let mut included = entries(&bundle, "include");
        included.sort();
        assert_eq!(included, [
            format!("Organization/{}", clinic.facility),
            format!("Patient/{}", clinic.patient),
            format!("Practitioner/{}", clinic.practitioner),
        ]);
        let all = search(app, &mut docs, &token, "/Encounter?_include=Encounter:*").await;
        assert_eq!(entries(&all, "include").len(), 4, "patient, practitioner, organization, location");
        let none = search(app, &mut docs, &token, "/Encounter?_include=Patient:general-practitioner").await;
        assert!(entries(&none, "include").is_empty(), "an include for another type is ignored");

        // `_total`: accurate and estimate count; none leaves the total out and still pages.
        for total in ["accurate", "estimate"] {
            let bundle = search(app, &mut docs, &token, &format!("/Encounter?_total={total}&_count=1")).await;
            assert_eq!(bundle["total"], 2, "{total}");
        }
        let page = search(app, &mut docs, &token, "/Encounter?_total=none&_count=1").await;
        assert!(page.get("total").is_none());
        assert_eq!(ids(&page), only(&first));
        let next = link(&page, "next").expect("a next page without a total");
        assert!(next.contains("_total=none"), "{next}");
        let last = docs.keep(&app.get(&next, &token).await);
        assert_eq!(ids(&last), only(&second));
        assert!(link(&last, "next").is_none());
        docs.validate();
    }

    async fn scopes_acls_and_the_patient_compartment_bound_the_new_types_and_includes(app) {
        let mut docs = Documents::default();
        let admin = app.user_token("default", "admin", SCOPES).await;
        let clinic = Clinic::build(app, &admin).await;
        let other = patient(app, &admin, json!({"lname": "Other"})).await;
        created(app, &admin, &format!("/api/patient/{other}/encounter"), json!({"pc_catid": "5", "class_code": "AMB"})).await;

        // SMART v1 `.read` and v2 `.rs` both read and search.
        for scope in ["user/Encounter.read user/Organization.read user/Location.read user/PractitionerRole.read user/Person.read",
                      "user/Encounter.rs user/Organization.rs user/Location.rs user/PractitionerRole.rs user/Person.rs"] {
            let token = app.user_token("default", "admin", &format!("openid api:fhir {scope}")).await;
            for path in ["/Encounter", "/Organization", "/Location", "/PractitionerRole", "/Person"] {
                let bundle = search(app, &mut docs, &token, path).await;
                assert!(bundle["total"].as_u64().unwrap() >= 1, "{scope} {path}");
            }
        }
        // A v2 read-only scope does not search.
        let read_only = app.user_token("default", "admin", "openid api:fhir user/Encounter.r").await;
        assert_eq!(app.get(&fhir(app, "default", "/Encounter"), &read_only).await.status, 403);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Encounter/{}", clinic.encounters[0])), &read_only).await.status, 200);

        // Staff ACLs: the front office holds neither encounters/auth_a nor admin/users;
        // Location needs none, as in OpenEMR.
        app.user("default", "frontdesk", "front_office").await;
        let clerk = app.user_token("default", "frontdesk", SCOPES).await;
        for path in ["/Encounter", "/Organization", "/PractitionerRole", "/Person"] {
            let reply = app.get(&fhir(app, "default", path), &clerk).await;
            assert_eq!(reply.status, 403, "{path}");
            assert_eq!(docs.keep(&reply)["issue"][0]["code"], "forbidden");
        }
        search(app, &mut docs, &clerk, "/Location").await;

        // A patient sees only their own encounters; practitioners and organizations are in
        // no compartment.
        let scope = "openid api:fhir patient/Encounter.rs patient/Practitioner.rs patient/Organization.rs";
        let token = app.patient_token("default", &clinic.patient, scope).await;
        let bundle = search(app, &mut docs, &token, "/Encounter").await;
        assert_eq!(bundle["total"], 2);
        let theirs = search(app, &mut docs, &token, &format!("/Encounter?patient={other}")).await;
        assert_eq!(theirs["total"], 0);
        let org = app.get(&fhir(app, "default", &format!("/Organization/{}", clinic.facility)), &token).await;
        assert_eq!(org.status, 200, "{}", org.text);
        docs.keep(&org);
        // Includes pass the same checks: the practitioner and organization are within the
        // token's scopes, the patient is not (no patient/Patient scope).
        let bundle = search(app, &mut docs, &token, "/Encounter?_include=Encounter:*").await;
        let mut included = entries(&bundle, "include");
        included.sort();
        assert_eq!(included, [
            format!("Organization/{}", clinic.facility),
            format!("Practitioner/{}", clinic.practitioner),
        ]);
        // With the Patient scope, only the token's own patient is ever included.
        let token = app.patient_token("default", &clinic.patient, &format!("{scope} patient/Patient.rs")).await;
        let bundle = search(app, &mut docs, &token, "/Encounter?_include=Encounter:patient").await;
        assert_eq!(entries(&bundle, "include"), [format!("Patient/{}", clinic.patient)]);
        docs.validate();
    }

    async fn errors_of_the_new_types_are_operation_outcomes(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let missing = "90cde167-0000-4000-8000-00000000dead";
        for path in ["/Encounter", "/Organization", "/Location", "/PractitionerRole", "/Person"] {
            let reply = app.get(&fhir(app, "default", &format!("{path}/{missing}")), &token).await;
            assert_eq!(reply.status, 404, "{path}");
            assert_eq!(docs.keep(&reply)["issue"][0]["code"], "not-found");
            let anonymous = app.send(reqwest::Method::GET, &fhir(app, "default", path), None, None).await;
            assert_eq!(anonymous.status, 401, "{path}");
            docs.keep(&anonymous);
            let wrong = app.delete(&fhir(app, "default", &format!("{path}/{missing}")), &token).await;
            assert_eq!(wrong.status, 405, "{path}");
            docs.keep(&wrong);
        }
        let unscoped = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        let forbidden = app.get(&fhir(app, "default", "/Encounter"), &unscoped).await;
        assert_eq!(forbidden.status, 403);
        docs.keep(&forbidden);
        for query in ["_total=some", "_include=patient", "date=2024-13", "class:below=x", "patient:Practitioner=x"] {
            let reply = app.get(&fhir(app, "default", &format!("/Encounter?{query}")), &token).await;
            assert_eq!(reply.status, 400, "{query}: {}", reply.text);
            assert_eq!(docs.keep(&reply)["issue"][0]["code"], "invalid", "{query}");
        }
        let strict = hearth_tests::fhir::get_with(app, &fhir(app, "default", "/Encounter?_include=Encounter:nothing"), &token, &[("prefer", "handling=strict")]).await;
        assert_eq!(strict.status, 400);
        docs.keep(&strict);
        docs.validate();
    }

    async fn metadata_lists_the_new_types_with_their_parameters(app) {
        let reply = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        assert_eq!(reply.status, 200);
        let mut docs = Documents::default();
        let statement = docs.keep(&reply);
        let resources = statement["rest"][0]["resource"].as_array().unwrap();
        let params = |ty: &str| -> Vec<String> {
            let resource = resources.iter().find(|r| r["type"] == ty).unwrap_or_else(|| panic!("{ty} is served"));
            resource["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
        };
        for (ty, wanted) in [
            ("Organization", &["name", "email", "phone", "telecom", "address", "address-city", "address-postalcode", "address-state"][..]),
            ("Location", &["name", "address", "address-city", "address-state", "address-postalcode"][..]),
            ("PractitionerRole", &["specialty", "practitioner"][..]),
            ("Person", &["active", "email", "phone", "telecom", "address", "address-city", "address-postalcode", "address-state", "family", "given", "name"][..]),
            ("Encounter", &["patient", "date", "_id", "_lastUpdated"][..]),
        ] {
            let have = params(ty);
            for name in wanted {
                assert!(have.iter().any(|h| h == name), "{ty} lacks {name}: {have:?}");
            }
        }
        let encounter = resources.iter().find(|r| r["type"] == "Encounter").unwrap();
        let includes = encounter["searchInclude"].as_array().expect("searchInclude");
        for name in ["Encounter:patient", "Encounter:practitioner", "Encounter:service-provider"] {
            assert!(includes.contains(&json!(name)), "{includes:?}");
        }
        docs.validate();
    }
}

both! {
    async fn demo_data_reads_as_valid_us_core_roles_and_encounters(app) {
        let site = app.state.sites.get("default").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 10, seed: 7, batch: 10 };
        hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let roles = search(app, &mut docs, &token, "/PractitionerRole?_count=50&_include=PractitionerRole:organization").await;
        let matched: Vec<&Value> = roles["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "match").collect();
        assert!(!matched.is_empty());
        for entry in &matched {
            let role = &entry["resource"];
            assert_eq!(role["code"][0]["coding"][0]["system"], "http://snomed.info/sct", "{role}");
            let specialty = &role["specialty"][0];
            assert_eq!(specialty["coding"][0]["system"], "http://nucc.org/provider-taxonomy");
            assert!(specialty["text"].is_string(), "{role}");
        }
        assert!(!entries(&roles, "include").is_empty());
        let encounters = search(app, &mut docs, &token, "/Encounter?_count=50&_include=Encounter:*").await;
        assert!(encounters["total"].as_u64().unwrap() > 0);
        search(app, &mut docs, &token, "/Organization").await;
        search(app, &mut docs, &token, "/Location").await;
        docs.validate();
    }
}
