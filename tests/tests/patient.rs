//! The patient plugin over HTTP, on both databases.

use hearth_tests::*;

const SCOPE: &str = "openid api:oemr api:port user/patient.crus";

both! {
    async fn creating_a_patient_answers_201_with_pid_and_uuid(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app
            .post(&app.api("default", "/api/patient"), &token,
                  json!({"fname": "Ann", "lname": "Smith", "sex": "Female", "DOB": "1990-02-03",
                         "email": "ann@example.org", "city": "Springfield", "unknown_key": "ignored"}))
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.json["data"]["pid"], 1);
        let uuid = reply.json["data"]["uuid"].as_str().unwrap().to_owned();
        assert_eq!(uuid.len(), 36);
        assert_eq!(reply.json["validationErrors"], json!([]));

        let reply = app.get(&app.api("default", &format!("/api/patient/{uuid}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let data = &reply.json["data"];
        assert_eq!(data["fname"], "Ann");
        assert_eq!(data["DOB"], "1990-02-03");
        assert_eq!(data["pubpid"], "1", "pubpid defaults to the pid");
        assert_eq!(data["city"], "Springfield");
        assert_eq!(data["uuid"], uuid.as_str());
        assert!(data.get("unknown_key").is_none());
        assert_eq!(data["addresses"][0]["city"], "Springfield");
        assert_eq!(data["previous_names"], json!([]));
        assert!(data["date"].as_str().unwrap().len() == 19, "server-set date {}", data["date"]);

        let (pid, _) = app.create_patient("default", &token, "Bob", "Jones").await;
        assert_eq!(pid, 2, "pids are a per-site sequence");
    }

    async fn every_validation_rule_is_reported_by_field(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app
            .post(&app.api("default", "/api/patient"), &token,
                  json!({"fname": "", "lname": "S", "sex": "F", "DOB": "1990-02-30", "email": "not-an-email"}))
            .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        let errors = &reply.json["validationErrors"];
        assert_eq!(errors["fname"]["NotEmpty::EMPTY_VALUE"], "First Name must not be empty");
        assert_eq!(errors["lname"]["LengthBetween::TOO_SHORT"], "Last Name must be 2 characters or longer");
        assert_eq!(errors["sex"]["LengthBetween::TOO_SHORT"], "Gender must be 4 characters or longer");
        assert_eq!(errors["DOB"]["DateTime::INVALID_VALUE"], "Date of Birth must be a valid date");
        assert_eq!(errors["email"]["email"], "Email is not a valid email", "OpenEMR's text");

        let reply = app.post(&app.api("default", "/api/patient"), &token, json!({})).await;
        assert_eq!(reply.status, 400);
        for field in ["fname", "lname", "sex", "DOB"] {
            assert_eq!(
                reply.json["validationErrors"][field]["Required::NON_EXISTENT_KEY"],
                format!("{field} must be provided, but does not exist")
            );
        }
        let long = "x".repeat(256);
        let reply = app
            .post(&app.api("default", "/api/patient"), &token,
                  json!({"fname": long, "lname": "Smith", "sex": "Female", "DOB": "1990-02-03"}))
            .await;
        assert_eq!(reply.json["validationErrors"]["fname"]["LengthBetween::TOO_LONG"], "First Name must be 255 characters or shorter");

        let reply = app
            .send(reqwest::Method::POST, &app.api("default", "/api/patient"), Some(&token), None)
            .await;
        assert_eq!(reply.status, 400);
        assert!(reply.json["validationErrors"]["body"]["Json::INVALID"].is_string(), "{}", reply.text);
        let reply = app.post(&app.api("default", "/api/patient"), &token, json!([1, 2])).await;
        assert_eq!(reply.status, 400);
        assert!(reply.json["validationErrors"]["body"].is_object());
        let reply = app
            .post(&app.api("default", "/api/patient"), &token,
                  json!({"fname": "Ann", "lname": "Smith", "sex": "Female", "DOB": "1990-02-03", "pharmacy_id": "many"}))
            .await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json["validationErrors"]["pharmacy_id"]["Numeric::NOT_NUMERIC"], "pharmacy_id must be numeric");

        assert!(app.rows("default", "SELECT pid FROM patient_data").await.is_empty(), "nothing was written");
    }

    async fn updating_a_patient_answers_the_whole_record(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let (_, uuid) = app.create_patient("default", &token, "Ann", "Smith").await;
        let url = app.api("default", &format!("/api/patient/{uuid}"));
        let reply = app.put(&url, &token, json!({"lname": "Jones", "phone_home": "555-1234", "uuid": "ignored", "pid": 99})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["data"]["lname"], "Jones");
        assert_eq!(reply.json["data"]["fname"], "Ann", "fields not sent are kept");
        assert_eq!(reply.json["data"]["phone_home"], "555-1234");
        assert_eq!(reply.json["data"]["pid"], 1, "pid in the body is ignored");
        assert_eq!(reply.json["data"]["uuid"], uuid.as_str());

        let reply = app.put(&url, &token, json!({"lname": ""})).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json["validationErrors"]["lname"]["NotEmpty::EMPTY_VALUE"], "Last Name must not be empty");
        let reply = app.get(&url, &token).await;
        assert_eq!(reply.json["data"]["lname"], "Jones", "a failed update changes nothing");

        let missing = app.api("default", "/api/patient/01a22501-0000-4000-8000-00000000dead");
        let reply = app.put(&missing, &token, json!({"lname": "Nobody"})).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.json["data"], json!([]));
    }

    async fn missing_patients_are_404_and_malformed_uuids_400(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app.get(&app.api("default", "/api/patient/01a22501-0000-4000-8000-00000000dead"), &token).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.json["data"], json!([]));
        for bad in ["not-a-uuid", "01a22501-0000-4000-8000-00000000dea", "zza22501-0000-4000-8000-00000000dead"] {
            let reply = app.get(&app.api("default", &format!("/api/patient/{bad}")), &token).await;
            assert_eq!(reply.status, 400, "{bad}");
            let errors = reply.json["validationErrors"].as_object().unwrap();
            assert_eq!(errors.len(), 1, "exactly one validation error");
            assert!(errors.contains_key("puuid"));
        }
    }

    async fn lists_filter_sort_and_page_like_openemr(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        for (fname, lname) in [("Ann", "Smith"), ("Bea", "Smithers"), ("Cid", "Jones"), ("Dee", "SMITH")] {
            app.create_patient("default", &token, fname, lname).await;
        }
        let list = |query: &str| app.api("default", &format!("/api/patient{query}"));
        let reply = app.get(&list("?lname=smith"), &token).await;
        assert_eq!(reply.status, 200);
        let names: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|p| p["fname"].as_str().unwrap()).collect();
        assert_eq!(names, ["Ann", "Bea", "Dee"], "lname matches as a case-insensitive contains");

        let reply = app.get(&list("?fname=Cid&sex=Female"), &token).await;
        assert_eq!(reply.json["data"].as_array().unwrap().len(), 1);
        let reply = app.get(&list("?sex=Fem"), &token).await;
        assert_eq!(reply.json["data"].as_array().unwrap().len(), 0, "sex matches exactly");

        let reply = app.get(&list("?_sort=-fname"), &token).await;
        let names: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|p| p["fname"].as_str().unwrap()).collect();
        assert_eq!(names, ["Dee", "Cid", "Bea", "Ann"]);

        let reply = app.get(&list("?_sort=fname&_limit=2&_offset=1"), &token).await;
        let names: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|p| p["fname"].as_str().unwrap()).collect();
        assert_eq!(names, ["Bea", "Cid"]);
        let links = &reply.json["links"];
        assert!(links["next"].as_str().unwrap().contains("_offset=3"), "{links}");
        assert!(links["previous"].as_str().unwrap().contains("_offset=0"), "{links}");
        assert!(links["first"].as_str().unwrap().starts_with(&app.base), "{links}");

        let reply = app.get(&list("?_limit=abc"), &token).await;
        assert_eq!(reply.status, 400);
    }

    async fn the_portal_returns_the_patients_own_record(app) {
        let staff = app.user_token("default", "admin", SCOPE).await;
        let (_, uuid) = app.create_patient("default", &staff, "Ann", "Smith").await;
        app.create_patient("default", &staff, "Bob", "Other").await;
        let patient = app.patient_token("default", &uuid, "openid api:port patient/patient.s").await;
        let reply = app.get(&app.api("default", "/portal/patient"), &patient).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["data"]["uuid"], uuid.as_str());
        assert_eq!(reply.json["data"]["fname"], "Ann");

        let reply = app.get(&app.api("default", "/api/patient"), &patient).await;
        assert_eq!(reply.status, 403, "a patient token cannot call the standard API");
        let reply = app.get(&app.api("default", "/portal/patient"), &staff).await;
        assert_eq!(reply.status, 403, "a staff token cannot call the portal");
    }
}
