//! Sites, routes, tokens, scopes, isolation and the audit log, on both databases.

use hearth_tests::*;

const SCOPE: &str = "openid api:oemr user/patient.crus";

both! {
    async fn unknown_sites_routes_and_methods_answer_json(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let reply = app.get(&app.api("nosuchsite", "/api/patient"), &token).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json["error"], "unknown_site");
        assert!(reply.json["message"].as_str().unwrap().contains("nosuchsite"));

        let reply = app.get(&app.api("default", "/api/nothing/here"), &token).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json["error"], "route_not_found");
        let reply = app.get(&app.api("default", "/fhir/NoSuchType"), &token).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json["resourceType"], "OperationOutcome", "FHIR errors are OperationOutcomes");
        let reply = app.get(&format!("{}/elsewhere", app.base), &token).await;
        assert_eq!(reply.status, 404);
        assert!(reply.json["error"].is_string());

        let reply = app.delete(&app.api("default", "/api/patient"), &token).await;
        assert_eq!(reply.status, 405);
        assert_eq!(reply.header("allow"), Some("GET, POST"));
        assert_eq!(reply.json["error"], "method_not_allowed");
    }

    async fn missing_and_bad_tokens_are_401_missing_scopes_403(app) {
        let url = app.api("default", "/api/patient");
        let reply = app.send(reqwest::Method::GET, &url, None, None).await;
        assert_eq!(reply.status, 401);
        assert!(reply.header("www-authenticate").unwrap().starts_with("Bearer"));
        assert!(reply.json["message"].is_string());

        for bad in ["garbage", "a.b.c", ""] {
            let reply = app.client.get(&url).header("authorization", format!("Bearer {bad}")).send().await.unwrap();
            let reply = Reply::from(reply).await;
            assert_eq!(reply.status, 401, "{bad}");
            assert!(reply.header("www-authenticate").unwrap().contains("invalid_token"), "{:?}", reply.header("www-authenticate"));
        }

        let read_only = app.user_token("default", "admin", "api:oemr user/patient.read").await;
        assert_eq!(app.get(&url, &read_only).await.status, 200, "v1 read grants s");
        let reply = app.post(&url, &read_only, json!({"fname": "A", "lname": "Bc", "sex": "Female", "DOB": "2000-01-01"})).await;
        assert_eq!(reply.status, 403);
        assert_eq!(reply.json["error"], "insufficient_scope");
        assert!(reply.json["message"].as_str().unwrap().contains("user/patient.c"), "{}", reply.text);
        assert!(reply.header("www-authenticate").unwrap().contains("insufficient_scope"));

        let no_api = app.user_token("default", "admin", "user/patient.read").await;
        let reply = app.get(&url, &no_api).await;
        assert_eq!(reply.status, 403);
        assert!(reply.json["message"].as_str().unwrap().contains("api:oemr"));

        let expired = app
            .issue("default", hearth::auth::tokens::Grant {
                client_id: "test-client".into(),
                subject: "nobody".into(),
                role: hearth::auth::tokens::Role::User,
                username: Some("admin".into()),
                acl_role: Some("admin".into()),
                scope: SCOPE.into(),
                patient: None,
                context: json!({}),
                lifetime: -10,
            })
            .await;
        let reply = app.get(&url, &expired).await;
        assert_eq!(reply.status, 401);
        assert!(reply.json["message"].as_str().unwrap().contains("expired"));
    }

    async fn a_token_of_one_site_is_rejected_on_the_other(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        assert_eq!(app.get(&app.api("default", "/api/patient"), &token).await.status, 200);
        let reply = app.get(&app.api("second", "/api/patient"), &token).await;
        assert_eq!(reply.status, 401);
        assert_eq!(reply.json["error"], "invalid_token");
        assert!(reply.json["message"].as_str().unwrap().contains("not signed by this site"), "{}", reply.text);
    }

    async fn patients_of_one_site_are_invisible_to_the_other(app) {
        let first = app.user_token("default", "admin", SCOPE).await;
        let second = app.user_token("second", "admin", SCOPE).await;
        let (pid, uuid) = app.create_patient("default", &first, "Ann", "Smith").await;
        let (other_pid, _) = app.create_patient("second", &second, "Zed", "Zulu").await;
        assert_eq!((pid, other_pid), (1, 1), "each site has its own pid sequence");
        let reply = app.get(&app.api("second", &format!("/api/patient/{uuid}")), &second).await;
        assert_eq!(reply.status, 404);
        let reply = app.get(&app.api("second", "/api/patient"), &second).await;
        let names: Vec<&str> = reply.json["data"].as_array().unwrap().iter().map(|p| p["fname"].as_str().unwrap()).collect();
        assert_eq!(names, ["Zed"]);
    }

    async fn revoked_tokens_are_refused_at_once(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let url = app.api("default", "/api/patient");
        assert_eq!(app.get(&url, &token).await.status, 200);
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE api_token SET revoked = 1").execute(pool).await.unwrap();
        });
        let reply = app.get(&url, &token).await;
        assert_eq!(reply.status, 401);
        assert!(reply.json["message"].as_str().unwrap().contains("revoked"));
    }

    async fn acl_roles_limit_staff_users(app) {
        app.user("default", "clerk", "accounting").await;
        let token = app.user_token("default", "clerk", SCOPE).await;
        let url = app.api("default", "/api/patient");
        assert_eq!(app.get(&url, &token).await.status, 200, "accounting may read demographics");
        let reply = app.post(&url, &token, json!({"fname": "A", "lname": "Bc", "sex": "Female", "DOB": "2000-01-01"})).await;
        assert_eq!(reply.status, 403);
        assert!(reply.json["message"].as_str().unwrap().contains("patients/demo:write"), "{}", reply.text);
    }

    async fn every_request_writes_one_audit_row(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let (_, uuid) = app.create_patient("default", &token, "Ann", "Smith").await;
        app.get(&app.api("default", &format!("/api/patient/{uuid}")), &token).await;
        app.get(&app.api("default", "/api/patient/not-a-uuid"), &token).await;
        app.send(reqwest::Method::GET, &app.api("default", "/api/patient"), None, None).await;
        app.flush_audit().await;
        let rows = app.rows("default", "SELECT site, method, path, status, user_id, client_id, patient_id, plugin, duration_us, request_body FROM api_log ORDER BY id").await;
        assert_eq!(rows.len(), 4, "{rows:#?}");
        assert_eq!(rows[0]["method"], "POST");
        assert_eq!(rows[0]["status"], 201);
        assert_eq!(rows[0]["site"], "default");
        assert_eq!(rows[0]["client_id"], "test-client");
        assert!(rows[0]["user_id"].as_str().unwrap().len() == 36);
        assert_eq!(rows[1]["path"], format!("/apis/default/api/patient/{uuid}"));
        assert_eq!(rows[1]["patient_id"], uuid.as_str(), "the patient is recorded when known");
        assert_eq!(rows[1]["plugin"], "patient");
        assert_eq!(rows[2]["status"], 400);
        assert_eq!(rows[3]["status"], 401);
        assert_eq!(rows[3]["user_id"], Value::Null);
        assert!(rows.iter().all(|r| r["request_body"].is_null()), "bodies are not stored by default");
        assert!(rows.iter().all(|r| r["duration_us"].as_i64().unwrap() > 0));
        let second = app.rows("second", "SELECT id FROM api_log").await;
        assert!(second.is_empty(), "audit rows stay in their site's database");
    }

    async fn oversized_bodies_are_refused_with_413(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let big = "x".repeat(3 * 1024 * 1024);
        let reply = app.post(&app.api("default", "/api/patient"), &token, json!({"fname": big})).await;
        assert_eq!(reply.status, 413);
        assert_eq!(reply.json["error"], "body_too_large");
    }

    async fn the_token_is_checked_before_the_route_so_paths_cannot_be_probed(app) {
        for path in ["/api/no/such/path", "/api/patient/x/y/z", "/fhir/NoSuchType", "/nosuchfamily/x", ""] {
            let reply = app.send(reqwest::Method::GET, &app.api("default", path), None, None).await;
            assert_eq!(reply.status, 401, "{path}: {}", reply.text);
            assert!(reply.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{path}");
            if path.starts_with("/fhir") {
                assert_eq!(reply.json["resourceType"], "OperationOutcome", "{path}");
            } else {
                assert_eq!((reply.json["error"].as_str(), reply.json["code"].as_i64()), (Some("unauthorized"), Some(0)), "{path}: OpenEMR's keys");
                assert!(reply.json["message"].is_string());
            }
        }
        let reply = app.send(reqwest::Method::DELETE, &app.api("default", "/api/patient"), None, None).await;
        assert_eq!(reply.status, 401, "a known path with another method: {}", reply.text);
        let token = app.user_token("default", "admin", SCOPE).await;
        for path in ["/api/no/such/path", "/nosuchfamily/x", ""] {
            let reply = app.get(&app.api("default", path), &token).await;
            assert_eq!(reply.status, 404, "{path}: {}", reply.text);
        }
    }

    async fn lists_answer_every_row_up_to_the_sites_cap_then_ask_to_page(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        for name in ["Ann", "Bea", "Cid"] {
            app.create_patient("default", &token, name, "Smith").await;
        }
        let url = app.api("default", "/api/patient");
        let every = app.get(&url, &token).await;
        assert_eq!(every.status, 200);
        assert_eq!(every.json["data"].as_array().unwrap().len(), 3, "no limit: every row");
        let site = app.state.sites.get("default").await.unwrap();
        hearth::oauth::settings::set(&site, "api.list_cap", "2").await.unwrap();
        // Each process reads the site's settings again within a second.
        let mut refused = every;
        for _ in 0..30 {
            refused = app.get(&url, &token).await;
            if refused.status != 200 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(refused.status, 400, "{}", refused.text);
        let message = refused.json["validationErrors"]["_limit"]["Paging::TOO_MANY_ROWS"].as_str().unwrap();
        assert!(message.contains("more than 2 rows") && message.contains("_offset"), "{message}");
        let page = app.get(&format!("{url}?_limit=2"), &token).await;
        assert_eq!(page.status, 200, "paging works past the cap");
        assert_eq!(page.json["data"].as_array().unwrap().len(), 2);
        let next = page.json["links"]["next"].as_str().unwrap().replace(&app.state.base_url, &app.base);
        let rest = app.get(&next, &token).await;
        assert_eq!(rest.json["data"].as_array().unwrap().len(), 1);
        assert!(rest.json["links"].get("next").is_none());
    }

    async fn the_jwks_publishes_each_sites_own_key(app) {
        let first = Reply::from(app.client.get(format!("{}/oauth2/default/jwks", app.base)).send().await.unwrap()).await;
        let second = Reply::from(app.client.get(format!("{}/oauth2/second/jwks", app.base)).send().await.unwrap()).await;
        assert_eq!(first.status, 200);
        let key = &first.json["keys"][0];
        assert_eq!(key["kty"], "RSA");
        assert_eq!(key["alg"], "RS256");
        assert!(key["kid"].is_string() && key["n"].is_string());
        assert_ne!(first.json["keys"][0]["kid"], second.json["keys"][0]["kid"]);
        let missing = Reply::from(app.client.get(format!("{}/oauth2/nosite/jwks", app.base)).send().await.unwrap()).await;
        assert_eq!(missing.status, 404);
        let openemr_path = Reply::from(app.client.get(format!("{}/oauth2/default/jwk", app.base)).send().await.unwrap()).await;
        assert_eq!(openemr_path.status, 200);
        assert_eq!(openemr_path.json, first.json, "OpenEMR's /jwk answers the same keys");
        assert_eq!(openemr_path.header("access-control-allow-origin"), Some("*"));
    }
}
