//! Insurance, employers, lists, users, version and product through the real server, on
//! both databases: insurance companies and types (bare payloads), a patient's policies
//! with CoverageValidator's rules and `$swap-insurance` (the legacy envelope), FHIR
//! `Coverage` and `RelatedPerson` (US Core) over the same rows with their Provenance,
//! every FHIR document validated with `fhir.resources`; scopes, ACLs, the patient
//! compartment, site isolation, nothing written on a refused request, and the OpenEMR
//! compatibility setting.

use hearth_tests::fhir::{Documents, fhir, ids};
use hearth_tests::*;

const SCOPES: &str = "openid api:oemr api:fhir user/patient.crus user/insurance_company.crus \
    user/insurance_type.s user/insurance.crus user/insurance.$swap-insurance user/employer.s \
    user/list.r user/user.rs user/version.s user/product.s user/Coverage.rs \
    user/RelatedPerson.rs user/Provenance.rs";

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

async fn count(app: &TestApp, site: &str, table: &'static str) -> i64 {
    let sql: &'static str = match table {
        "insurance_companies" => "SELECT COUNT(*) AS n FROM insurance_companies",
        "insurance_data" => "SELECT COUNT(*) AS n FROM insurance_data",
        _ => panic!("no count for {table}"),
    };
    app.rows(site, sql).await[0]["n"].as_i64().unwrap()
}

/// Adds an insurance company of claim type 11 (a PPO); answers its id.
async fn company(app: &TestApp, site: &str, token: &str, name: &str) -> i64 {
    let reply = app
        .post(
            &app.api(site, "/api/insurance_company"),
            token,
            json!({"name": name, "attn": "Claims", "cms_id": "AET60", "ins_type_code": 11,
                   "line1": "151 Farmington Ave", "city": "Hartford", "state": "CT", "zip": "06156"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json["iid"].as_i64().expect("iid")
}

/// A valid policy body for patient "Ann Adams" with company `iid`.
fn policy(iid: i64, kind: &str, date: &str) -> Value {
    json!({"type": kind, "provider": iid, "plan_name": "Gold", "policy_number": "XJ-1001",
        "group_number": "G-7", "subscriber_lname": "Adams", "subscriber_fname": "Ann",
        "subscriber_relationship": "self", "subscriber_DOB": "1980-05-06",
        "subscriber_street": "1 Main St", "subscriber_postal_code": "02110",
        "subscriber_city": "Boston", "subscriber_state": "MA", "subscriber_sex": "Female",
        "accept_assignment": "TRUE", "date": date, "copay": "20"})
}

both! {
    async fn insurance_companies_are_listed_added_and_changed(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let url = |path: &str| app.api("default", path);

        let reply = app.get(&url("/api/insurance_type"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["1"], "Other HCFA");
        assert_eq!(reply.json["11"], "Preferred Provider Organization (PPO)");
        assert_eq!(reply.json.as_object().unwrap().len(), 26);

        // Bad bodies: a bare map naming the field, nothing written.
        for (body, field) in [
            (json!({"attn": "Claims"}), "name"),
            (json!({"name": "A"}), "name"),
            (json!({"name": "Acme", "cms_id": "X"}), "cms_id"),
            (json!({"name": "Acme", "ins_type_code": 99}), "ins_type_code"),
            (json!({"name": "Acme", "ins_type_code": "PPO"}), "ins_type_code"),
            (json!({"name": "Acme", "x12_receiver_id": "1"}), "x12_receiver_id"),
            (json!({"name": "Acme", "inactive": 5}), "inactive"),
        ] {
            let reply = app.post(&url("/api/insurance_company"), &token, body.clone()).await;
            assert_eq!(reply.status, 400, "{body}: {}", reply.text);
            assert!(reply.json[field].is_object(), "{body}: {}", reply.text);
        }
        let reply = app.send(reqwest::Method::POST, &url("/api/insurance_company"), Some(&token), None).await;
        assert_eq!(reply.status, 400, "no body: {}", reply.text);
        assert_eq!(count(app, "default", "insurance_companies").await, 0, "nothing written");

        let aetna = company(app, "default", &token, "Aetna PPO").await;
        let cigna = company(app, "default", &token, "Cigna Open Access").await;
        let reply = app.get(&url(&format!("/api/insurance_company/{aetna}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["name"], "Aetna PPO");
        assert_eq!(reply.json["city"], "Hartford");
        assert_eq!(reply.json["ins_type_code"], 11);
        assert!(reply.json["uuid"].is_string());

        for (query, expected) in [
            ("", vec!["Aetna PPO", "Cigna Open Access"]),
            ("?_sort=-name", vec!["Cigna Open Access", "Aetna PPO"]),
            ("?name=Cigna%20Open%20Access", vec!["Cigna Open Access"]),
            ("?_limit=1&_offset=1", vec!["Cigna Open Access"]),
            ("?inactive=1", vec![]),
        ] {
            let reply = app.get(&url(&format!("/api/insurance_company{query}")), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let names: Vec<&str> = reply.json.as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
            assert_eq!(names, expected, "{query}");
        }
        for (query, field) in [("?_sort=bogus", "_sort"), ("?id=abc", "id"), ("?_limit=ten", "_limit")] {
            let reply = app.get(&url(&format!("/api/insurance_company{query}")), &token).await;
            assert_eq!(reply.status, 400, "{query}: {}", reply.text);
            assert!(reply.json[field].is_object(), "{query}: {}", reply.text);
        }

        // Changes: the given fields only; a bad one writes nothing.
        let reply = app.put(&url(&format!("/api/insurance_company/{cigna}")), &token, json!({"attn": "Provider Services", "city": "Bloomfield"})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["iid"], cigna);
        let reply = app.put(&url(&format!("/api/insurance_company/{cigna}")), &token, json!({"attn": "X", "name": "Renamed"})).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        let reply = app.get(&url(&format!("/api/insurance_company/{cigna}")), &token).await;
        assert_eq!((reply.json["attn"].as_str(), reply.json["city"].as_str(), reply.json["name"].as_str()),
            (Some("Provider Services"), Some("Bloomfield"), Some("Cigna Open Access")));
        assert_eq!(app.put(&url("/api/insurance_company/999999"), &token, json!({"attn": "Claims"})).await.status, 404);
        assert_eq!(app.get(&url("/api/insurance_company/999999"), &token).await.status, 404);
        assert_eq!(app.get(&url("/api/insurance_company/abc"), &token).await.status, 400);
        assert_eq!(app.delete(&url(&format!("/api/insurance_company/{cigna}")), &token).await.status, 405);

        // ACLs (acct/bill; write to change) and scopes.
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&url("/api/insurance_company"), &front).await.status, 403, "front office has no acct/bill");
        app.user("default", "doctor", "physician").await;
        let doctor = app.user_token("default", "doctor", SCOPES).await;
        assert_eq!(app.get(&url("/api/insurance_company"), &doctor).await.status, 200);
        let reply = app.post(&url("/api/insurance_company"), &doctor, json!({"name": "Humana"})).await;
        assert_eq!(reply.status, 403, "physicians read billing, not write it: {}", reply.text);
        app.user("default", "biller", "accounting").await;
        let biller = app.user_token("default", "biller", SCOPES).await;
        assert_eq!(app.post(&url("/api/insurance_company"), &biller, json!({"name": "Humana"})).await.status, 201);
        assert_eq!(count(app, "default", "insurance_companies").await, 3);
        let narrow = app.user_token("default", "admin", "openid api:oemr user/insurance_company.s").await;
        assert_eq!(app.get(&url("/api/insurance_company"), &narrow).await.status, 200);
        assert_eq!(app.get(&url(&format!("/api/insurance_company/{aetna}")), &narrow).await.status, 403);
        assert_eq!(app.get(&url("/api/insurance_type"), &narrow).await.status, 403);
        let v1 = app.user_token("default", "admin", "openid api:oemr user/insurance_company.read user/insurance_type.read").await;
        assert_eq!(app.get(&url(&format!("/api/insurance_company/{aetna}")), &v1).await.status, 200);
        assert_eq!(app.post(&url("/api/insurance_company"), &v1, json!({"name": "Kaiser"})).await.status, 403);

        // The other site has none; in OpenEMR compatibility a miss is an empty 404.
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", &format!("/api/insurance_company/{aetna}")), &second).await;
        assert_eq!((reply.status, reply.text.as_str()), (404, ""));
        let reply = app.get(&app.api("second", "/api/insurance_company"), &second).await;
        assert_eq!((reply.status, reply.text.as_str()), (404, ""), "OpenEMR's empty list");
        let reply = app.post(&app.api("second", "/api/insurance_company"), &second, json!({"attn": "x"})).await;
        assert_eq!(reply.status, 200, "OpenEMR's bare validation map: {}", reply.text);
        assert!(reply.json["name"].is_object());
    }

    async fn a_patients_policies_follow_the_coverage_rules_and_swap(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let iid = company(app, "default", &token, "Aetna PPO").await;
        let (_, ann) = app.create_patient("default", &token, "Ann", "Adams").await;
        let (_, bob) = app.create_patient("default", &token, "Bob", "Baker").await;
        let url = |path: String| app.api("default", &path);
        let policies = url(format!("/api/patient/{ann}/insurance"));

        // Every rule of CoverageValidator: a 400 naming the field, nothing written.
        let with = |key: &str, value: Value| {
            let mut body = policy(iid, "primary", "2024-01-01");
            match value {
                Value::Null => { body.as_object_mut().unwrap().remove(key); }
                value => { body[key] = value; }
            }
            body
        };
        for (body, field) in [
            (with("provider", Value::Null), "provider"),
            (with("provider", json!(999999)), "provider"),
            (with("provider", json!("Aetna")), "provider"),
            (with("policy_number", json!("X")), "policy_number"),
            (with("subscriber_lname", Value::Null), "subscriber_lname"),
            (with("subscriber_relationship", json!("cousin")), "subscriber_relationship"),
            (with("subscriber_DOB", json!("05/06/1980")), "subscriber_DOB"),
            (with("subscriber_state", json!("ZZ")), "subscriber_state"),
            (with("subscriber_sex", json!("Alien")), "subscriber_sex"),
            (with("accept_assignment", json!("maybe")), "accept_assignment"),
            (with("date", json!("2024-13-01")), "date"),
            (with("date", Value::Null), "date"),
            (with("type", json!("fourth")), "type"),
            (with("subscriber_fname", json!("Zed")), "subscriber_relationship"),
            (with("date_end", json!("2023-01-01")), "date_end"),
            (with("copay", json!("twenty")), "copay"),
        ] {
            let reply = app.post(&policies, &token, body.clone()).await;
            assert_eq!(reply.status, 400, "{field}: {}", reply.text);
            assert!(reply.json["validationErrors"][field].is_object(), "{field}: {}", reply.text);
        }
        assert_eq!(count(app, "default", "insurance_data").await, 0, "nothing written");

        let reply = app.post(&policies, &token, policy(iid, "primary", "2024-01-01")).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let primary = reply.json["data"]["uuid"].as_str().unwrap().to_owned();
        assert_eq!(reply.json["data"]["puuid"], json!(ann));
        assert_eq!(reply.json["data"]["type"], "primary");
        assert_eq!(reply.json["data"]["provider"], iid);
        assert!(reply.json["data"]["insureruuid"].is_string());
        // OpenEMR's key: one policy of a type starting on a day.
        let reply = app.post(&policies, &token, policy(iid, "primary", "2024-01-01")).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert!(reply.json["validationErrors"]["date"].is_object());
        let mut body = policy(iid, "secondary", "2023-06-01");
        body["subscriber_relationship"] = json!("spouse");
        body["subscriber_fname"] = json!("Al");
        body.as_object_mut().unwrap().remove("type");
        let reply = app.post(&policies, &token, body.clone()).await;
        assert_eq!(reply.json["data"]["type"], "primary", "type defaults to primary: {}", reply.text);
        let older = reply.json["data"]["uuid"].as_str().unwrap().to_owned();
        body["type"] = json!("secondary");
        body["date"] = json!("2024-02-01");
        let reply = app.post(&policies, &token, body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let secondary = reply.json["data"]["uuid"].as_str().unwrap().to_owned();

        for (query, expected) in [
            ("", vec![primary.as_str(), older.as_str(), secondary.as_str()]),
            ("?type=secondary", vec![secondary.as_str()]),
            ("?_sort=date", vec![older.as_str(), primary.as_str(), secondary.as_str()]),
            ("?_limit=1&_offset=2", vec![secondary.as_str()]),
        ] {
            let reply = app.get(&format!("{policies}{query}"), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let got: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|p| p["uuid"].as_str().unwrap()).collect();
            assert_eq!(got, expected, "{query}");
        }
        assert_eq!(app.get(&format!("{policies}?_sort=nope"), &token).await.status, 400);
        let reply = app.get(&format!("{policies}/{primary}"), &token).await;
        assert_eq!((reply.status, reply.json["data"]["policy_number"].as_str()), (200, Some("XJ-1001")));
        let other = url(format!("/api/patient/{bob}/insurance/{primary}"));
        assert_eq!(app.get(&other, &token).await.status, 404, "another patient's policy");
        assert_eq!(app.put(&other, &token, json!({"plan_name": "Stolen"})).await.status, 404);
        assert_eq!(app.get(&format!("{policies}/{MISSING}"), &token).await.status, 404);
        assert_eq!(app.get(&format!("{policies}/nope"), &token).await.status, 400);
        assert_eq!(app.get(&url(format!("/api/patient/{MISSING}/insurance")), &token).await.status, 404);
        assert_eq!(app.post(&url(format!("/api/patient/{MISSING}/insurance")), &token, policy(iid, "primary", "2024-01-01")).await.status, 404);

        // Updates change the fields sent, by the same rules.
        let reply = app.put(&format!("{policies}/{primary}"), &token, json!({"plan_name": "Platinum", "copay": "30"})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!((reply.json["data"]["plan_name"].as_str(), reply.json["data"]["policy_number"].as_str()), (Some("Platinum"), Some("XJ-1001")));
        for (body, field) in [
            (json!({"subscriber_state": "ZZ"}), "subscriber_state"),
            (json!({"date": "2024-02-01", "type": "secondary"}), "date"),
            (json!({"subscriber_lname": "Other"}), "subscriber_relationship"),
        ] {
            let reply = app.put(&format!("{policies}/{primary}"), &token, body.clone()).await;
            assert_eq!(reply.status, 400, "{body}: {}", reply.text);
            assert!(reply.json["validationErrors"][field].is_object(), "{body}: {}", reply.text);
        }
        assert_eq!(app.get(&format!("{policies}/{primary}"), &token).await.json["data"]["type"], "primary");

        // $swap-insurance: a GET, as OpenEMR routes it; its own scope, the write ACL.
        let swap = |kind: &str, uuid: &str| format!("{policies}/$swap-insurance?type={kind}&uuid={uuid}");
        let reply = app.get(&swap("primary", &secondary), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.json["data"]["src"]["uuid"], json!(secondary));
        assert_eq!(reply.json["data"]["src"]["type"], "primary");
        assert_eq!(reply.json["data"]["target"]["uuid"], json!(primary), "the newest primary");
        assert_eq!(reply.json["data"]["target"]["type"], "secondary");
        assert_eq!(reply.json["data"]["target"]["date"].as_str().map(|d| &d[..10]), Some("2024-01-01"));
        let reply = app.get(&swap("primary", &secondary), &token).await;
        assert_eq!((reply.status, &reply.json["data"]["target"]), (200, &Value::Null), "a repeated swap changes nothing");
        let reply = app.get(&policies, &token).await;
        let types: Vec<(&str, &str)> = reply.json["data"].as_array().unwrap().iter().map(|p| (p["uuid"].as_str().unwrap(), p["type"].as_str().unwrap())).collect();
        assert!(types.contains(&(secondary.as_str(), "primary")) && types.contains(&(primary.as_str(), "secondary")), "{types:?}");
        // The older primary becomes the secondary; the current secondary is primary again.
        let reply = app.get(&swap("secondary", &older), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!((reply.json["data"]["src"]["type"].as_str(), reply.json["data"]["target"]["uuid"].as_str()), (Some("secondary"), Some(primary.as_str())));
        for (query, status) in [
            (swap("fourth", &older), 400),
            (format!("{policies}/$swap-insurance?type=primary"), 400),
            (swap("primary", MISSING), 404),
        ] {
            assert_eq!(app.get(&query, &token).await.status, status, "{query}");
        }
        let plain = app.user_token("default", "admin", "openid api:oemr user/insurance.crus").await;
        assert_eq!(app.get(&swap("tertiary", &older), &plain).await.status, 403, "no operation scope");
        app.user("default", "biller", "accounting").await;
        let biller = app.user_token("default", "biller", SCOPES).await;
        assert_eq!(app.get(&policies, &biller).await.status, 200, "accounting reads demographics");
        assert_eq!(app.get(&swap("tertiary", &older), &biller).await.status, 403, "but does not write them");
        assert_eq!(app.post(&policies, &biller, policy(iid, "tertiary", "2024-03-01")).await.status, 403);
        let after: Vec<Value> = app.get(&policies, &token).await.json["data"].as_array().unwrap().clone();
        assert!(after.iter().all(|p| p["type"] != "tertiary"), "nothing written by refused requests");

        // Employers: OpenEMR's rows of the patient, newest first.
        let pid = app.get(&url(format!("/api/patient/{ann}")), &token).await.json["data"]["pid"].as_i64().unwrap();
        for (uuid, name, date) in [("90cde167-0000-4000-8000-0000000000e1", "Northwind Traders", "2020-01-01 00:00:00"), ("90cde167-0000-4000-8000-0000000000e2", "Contoso", "2023-05-01 00:00:00")] {
            sql(app, "default", format!("INSERT INTO employer_data (uuid, name, city, state, pid, date, occupation) VALUES ('{uuid}', '{name}', 'Boston', 'MA', {pid}, '{date}', 'Nurse')")).await;
        }
        let reply = app.get(&url(format!("/api/patient/{ann}/employer")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let names: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|e| e["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Contoso", "Northwind Traders"]);
        assert_eq!(reply.json["data"][0]["puuid"], json!(ann));
        let reply = app.get(&url(format!("/api/patient/{bob}/employer")), &token).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])));
        assert_eq!(app.get(&url("/api/patient/nope/employer".into()), &token).await.status, 400);
        assert_eq!(app.get(&url(format!("/api/patient/{MISSING}/employer")), &token).await.status, 404);

        // The other site: none of it; OpenEMR compatibility answers the legacy 200.
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", &format!("/api/patient/{ann}/insurance/{primary}")), &second).await;
        assert_eq!((reply.status, reply.json["data"].clone()), (200, json!([])), "OpenEMR's lost 404");
    }

    async fn lists_users_version_and_product_are_served(app) {
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let token = app.user_token("default", "admin", SCOPES).await;
        let url = |path: &str| app.api("default", path);
        let reply = app.get(&url("/api/list/sub_relation"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let options: Vec<&str> = reply.json.as_array().unwrap().iter().map(|o| o["option_id"].as_str().unwrap()).collect();
        assert_eq!(options, ["self", "spouse", "child", "other"]);
        assert_eq!(reply.json[0]["title"], "Self");
        for (query, expected) in [
            ("?_sort=title", vec!["child", "other", "self", "spouse"]),
            ("?_limit=2&_offset=1", vec!["spouse", "child"]),
        ] {
            let reply = app.get(&url(&format!("/api/list/sub_relation{query}")), &token).await;
            let got: Vec<&str> = reply.json.as_array().unwrap().iter().map(|o| o["option_id"].as_str().unwrap()).collect();
            assert_eq!(got, expected, "{query}");
        }
        assert_eq!(app.get(&url("/api/list/state"), &token).await.json.as_array().unwrap().len(), 51);
        let reply = app.get(&url("/api/list/nosuchlist"), &token).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(app.get(&url("/api/list/sub_relation?_sort=nope"), &token).await.status, 400);

        let reply = app.get(&url("/api/user"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let users = reply.json["data"].as_array().unwrap().clone();
        let admin = users.iter().find(|u| u["username"] == "admin").expect("the admin user").clone();
        assert!(users.iter().all(|u| u.get("password").is_none()));
        let reply = app.get(&url("/api/user?username=admin"), &token).await;
        assert_eq!(reply.json["data"].as_array().unwrap().len(), 1);
        let uuid = admin["uuid"].as_str().unwrap();
        let reply = app.get(&url(&format!("/api/user/{uuid}")), &token).await;
        assert_eq!((reply.status, reply.json["data"]["username"].as_str()), (200, Some("admin")));
        assert_eq!(app.get(&url(&format!("/api/user/{MISSING}")), &token).await.status, 404);
        assert_eq!(app.get(&url("/api/user/nope"), &token).await.status, 400);
        assert_eq!(app.get(&url("/api/user?id=abc"), &token).await.status, 400);
        app.user("default", "nurse", "clinician").await;
        let nurse = app.user_token("default", "nurse", SCOPES).await;
        assert_eq!(app.get(&url("/api/user"), &nurse).await.status, 403, "admin/users only");
        assert_eq!(app.get(&url("/api/list/sub_relation"), &nurse).await.status, 200, "clinicians read lists");
        let narrow = app.user_token("default", "admin", "openid api:oemr user/user.s").await;
        assert_eq!(app.get(&url("/api/list/sex"), &narrow).await.status, 403);
        assert_eq!(app.get(&url(&format!("/api/user/{uuid}")), &narrow).await.status, 403);

        // Anonymous, as in OpenEMR.
        let reply = app.send(reqwest::Method::GET, &url("/api/version"), None, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!((reply.json["v_major"].as_i64(), reply.json["v_minor"].as_i64(), reply.json["v_tag"].as_str()), (Some(8), Some(2), Some("-dev")));
        assert_eq!(reply.json["v_database"], 541);
        let reply = app.send(reqwest::Method::GET, &url("/api/product"), None, None).await;
        assert_eq!((reply.status, reply.json["status"].as_str()), (200, Some("UNREGISTERED")));
        sql(app, "default", "INSERT INTO product_registration (email, opt_out) VALUES ('', 1)".into()).await;
        let reply = app.send(reqwest::Method::GET, &url("/api/product"), None, None).await;
        assert_eq!(reply.json["status"], "OPT_OUT");
        let reply = app.send(reqwest::Method::GET, &app.api("second", "/api/product"), None, None).await;
        assert_eq!(reply.json["status"], "UNREGISTERED", "a site's registration is its own");
        assert_eq!(app.send(reqwest::Method::POST, &url("/api/version"), None, None).await.status, 401, "only the GET is anonymous");

        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/list/nosuchlist"), &second).await;
        assert_eq!((reply.status, reply.text.as_str()), (404, ""), "OpenEMR's empty 404");
    }

    async fn fhir_serves_coverage_and_related_persons_with_provenance(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let mut docs = Documents::default();
        let iid = company(app, "default", &token, "Aetna PPO").await;
        let (_, ann) = app.create_patient("default", &token, "Ann", "Adams").await;
        let (bob_pid, bob) = app.create_patient("default", &token, "Bob", "Baker").await;
        let post = |puuid: &str, body: Value| {
            let url = app.api("default", &format!("/api/patient/{puuid}/insurance"));
            let token = token.clone();
            async move {
                let reply = app.post(&url, &token, body).await;
                assert_eq!(reply.status, 201, "{}", reply.text);
                reply.json["data"]["uuid"].as_str().unwrap().to_owned()
            }
        };
        let primary = post(&ann, policy(iid, "primary", "2024-01-01")).await;
        let mut ended = policy(iid, "secondary", "2023-01-01");
        ended["date_end"] = json!("2023-12-31");
        ended["subscriber_relationship"] = json!("spouse");
        ended["subscriber_fname"] = json!("Al");
        let ended = post(&ann, ended).await;
        let mut bobs = policy(iid, "primary", "2024-03-01");
        bobs["subscriber_fname"] = json!("Bob");
        bobs["subscriber_lname"] = json!("Baker");
        let bobs = post(&bob, bobs).await;
        let payor = app.get(&app.api("default", &format!("/api/insurance_company/{iid}")), &token).await.json["uuid"].as_str().unwrap().to_owned();
        let get = |path: String, token: String| async move { app.get(&fhir(app, "default", &path), &token).await };

        let reply = get(format!("/Coverage/{primary}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let coverage = docs.keep(&reply);
        assert_eq!(coverage["status"], "active");
        assert_eq!(coverage["beneficiary"]["reference"], json!(format!("Patient/{ann}")));
        assert_eq!(coverage["subscriber"]["reference"], json!(format!("Patient/{ann}")));
        assert_eq!(coverage["subscriberId"], "XJ-1001");
        assert_eq!(coverage["identifier"][0]["type"]["coding"][0]["code"], "MB");
        assert_eq!(coverage["relationship"]["coding"][0], json!({"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self", "display": "Self"}));
        assert_eq!(coverage["payor"][0]["reference"], json!(format!("Organization/{payor}")));
        assert_eq!(coverage["type"]["coding"][0]["code"], "512");
        assert_eq!(coverage["period"]["start"], "2024-01-01");
        assert_eq!(coverage["order"], 1);
        assert_eq!(coverage["class"][0]["value"], "G-7");
        assert!(coverage["meta"]["profile"].as_array().unwrap().iter().any(|p| p == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-coverage|7.0.0"));
        let old = docs.keep(&get(format!("/Coverage/{ended}"), token.clone()).await);
        assert_eq!((old["status"].as_str(), old["period"]["end"].as_str()), (Some("cancelled"), Some("2023-12-31")));
        assert!(old.get("subscriber").is_none());

        for (query, expected) in [
            (format!("?patient={ann}"), vec![&primary, &ended]),
            (format!("?patient=Patient/{bob}"), vec![&bobs]),
            ("?status=cancelled".to_owned(), vec![&ended]),
            (format!("?payor=Organization/{payor}&status=active"), vec![&primary, &bobs]),
            ("?type=urn:oid:2.16.840.1.113883.3.221.5|512".to_owned(), vec![&primary, &ended, &bobs]),
            ("?type=urn:oid:2.16.840.1.113883.3.221.5|1".to_owned(), vec![]),
            (format!("?_id={bobs}"), vec![&bobs]),
        ] {
            let reply = get(format!("/Coverage{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let mut got = ids(&docs.keep(&reply));
            got.sort();
            let mut expected: Vec<String> = expected.into_iter().cloned().collect();
            expected.sort();
            assert_eq!(got, expected, "{query}");
        }
        assert_eq!(get("/Coverage?_lastUpdated=someday".into(), token.clone()).await.status, 400);
        assert_eq!(get(format!("/Coverage/{MISSING}"), token.clone()).await.status, 404);
        let reply = get(format!("/Coverage?patient={ann}&_revinclude=Provenance:target"), token.clone()).await;
        let bundle = docs.keep(&reply);
        let included = bundle["entry"].as_array().unwrap_or_else(|| panic!("{}", reply.text)).iter().filter(|e| e["resource"]["resourceType"] == "Provenance").count();
        assert_eq!(included, 2, "{}", reply.text);
        let reply = get(format!("/Provenance/{primary}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(docs.keep(&reply)["target"][0]["reference"], json!(format!("Coverage/{primary}")));

        // Related persons: OpenEMR's person, contact and relation rows.
        let relations = [
            ("90cde167-0000-4000-8000-0000000000f1", 1, "Mary", "Adams", "MTH", "Female"),
            ("90cde167-0000-4000-8000-0000000000f2", 2, "Tom", "Baker", "SPS", "Male"),
        ];
        let ann_pid = app.get(&app.api("default", &format!("/api/patient/{ann}")), &token).await.json["data"]["pid"].as_i64().unwrap();
        for (n, (uuid, id, first, last, code, gender)) in relations.iter().enumerate() {
            let pid = if n == 0 { ann_pid } else { bob_pid };
            let statements = [
                format!("INSERT INTO person (id, uuid, first_name, last_name, gender, birth_date, created_date) VALUES ({id}, '90cde167-0000-4000-8000-0000000001{id:02}', '{first}', '{last}', '{gender}', '1955-02-03', '2024-01-01 10:00:00')"),
                format!("INSERT INTO contact (id, foreign_table_name, foreign_id) VALUES ({id}, 'person', {id})"),
                format!("INSERT INTO contact_relation (id, uuid, contact_id, target_table, target_id, relationship, is_emergency_contact, created_date) VALUES ({id}, '{uuid}', {id}, 'patient_data', {pid}, '{code}', 1, '2024-01-01 10:00:00')"),
                format!("INSERT INTO contact_telecom (contact_id, system, \"use\", value) VALUES ({id}, 'phone', 'home', '617-555-010{id}')"),
                format!("INSERT INTO addresses (id, line1, city, state, zip, country) VALUES ({}, '9 Elm St', 'Boston', 'MA', '02110', 'USA')", 100 + id),
                format!("INSERT INTO contact_address (contact_id, address_id) VALUES ({id}, {})", 100 + id),
            ];
            for statement in statements {
                sql(app, "default", statement).await;
            }
        }
        let mother = relations[0].0;
        let reply = get(format!("/RelatedPerson/{mother}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let person = docs.keep(&reply);
        assert_eq!(person["active"], true);
        assert_eq!(person["patient"]["reference"], json!(format!("Patient/{ann}")));
        assert_eq!(person["relationship"][0]["coding"][0], json!({"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH", "display": "Mother"}));
        assert_eq!(person["name"][0]["family"], "Adams");
        assert_eq!(person["telecom"][0]["value"], "617-555-0101");
        assert_eq!(person["address"][0]["city"], "Boston");
        assert_eq!((person["gender"].as_str(), person["birthDate"].as_str()), (Some("female"), Some("1955-02-03")));
        for (query, expected) in [
            (format!("?patient={ann}"), vec![mother]),
            ("?relationship=SPS".to_owned(), vec![relations[1].0]),
            ("?name=tom".to_owned(), vec![relations[1].0]),
        ] {
            let reply = get(format!("/RelatedPerson{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(ids(&docs.keep(&reply)), expected, "{query}");
        }
        let reply = get(format!("/RelatedPerson?patient={ann}&_revinclude=Provenance:target"), token.clone()).await;
        assert_eq!(docs.keep(&reply)["entry"].as_array().unwrap().len(), 2, "{}", reply.text);

        // The patient compartment, scopes and sites.
        let bound = app.patient_token("default", &bob, "openid api:fhir patient/Coverage.rs patient/RelatedPerson.rs").await;
        let reply = app.get(&fhir(app, "default", "/Coverage"), &bound).await;
        assert_eq!(ids(&docs.keep(&reply)), vec![bobs.clone()], "{}", reply.text);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Coverage/{primary}")), &bound).await.status, 404);
        let reply = app.get(&fhir(app, "default", "/RelatedPerson"), &bound).await;
        assert_eq!(ids(&docs.keep(&reply)), vec![relations[1].0.to_owned()]);
        assert_eq!(app.get(&fhir(app, "default", &format!("/RelatedPerson/{mother}")), &bound).await.status, 404);
        let none = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        assert_eq!(app.get(&fhir(app, "default", "/Coverage"), &none).await.status, 403);
        assert_eq!(app.get(&fhir(app, "default", "/RelatedPerson"), &none).await.status, 403);
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "default", "/Coverage"), &front).await.status, 403, "OpenEMR's admin/super");
        assert_eq!(app.get(&fhir(app, "default", "/RelatedPerson"), &front).await.status, 200, "patients/demo");
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&fhir(app, "second", &format!("/Coverage/{primary}")), &second).await.status, 404);
        assert_eq!(app.get(&fhir(app, "second", &format!("/RelatedPerson/{mother}")), &second).await.status, 404);
        docs.validate();
    }

    async fn demo_seed_gives_policies_employers_and_related_persons_the_plugins_serve(app) {
        let site = app.state.sites.get("second").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 30, seed: 5, batch: 12 };
        let summary = hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        assert_eq!(summary.insurance_companies, 8);
        assert!(summary.insurance_policies >= 30 && summary.insurance_policies <= 60, "{summary:?}");
        assert!(summary.employers > 0 && summary.related_persons > 0, "{summary:?}");
        let token = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/insurance_company"), &token).await;
        assert_eq!(reply.json.as_array().map(Vec::len), Some(8), "{}", reply.text);
        let mut docs = Documents::default();
        for (path, total) in [
            ("/Coverage?_count=200", summary.insurance_policies),
            ("/RelatedPerson?_count=200", summary.related_persons),
        ] {
            let reply = app.get(&fhir(app, "second", path), &token).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            assert_eq!(docs.keep(&reply)["total"].as_u64(), Some(total), "{path}");
        }
        docs.validate();
        // API writes after a seed take the ids after the seeded ones.
        let iid = company(app, "second", &token, "Kaiser Permanente").await;
        assert_eq!(iid, 9);
    }
}
