//! Background services through the real server, on both databases: OpenEMR's four routes
//! (`/api/background_service`, `/:name`, `/:name/run`, `/$run`) with each of their
//! statuses, the scopes (grantable, in the catalogue) and ACLs, refused requests writing
//! nothing, each service doing its job (expired OAuth rows, expired Bulk Data files, audit
//! rows past the site's retention), and the lease: two `hearth serve` processes on the same
//! databases run each due service once.

use std::collections::BTreeMap;
use std::time::Duration;

use hearth_tests::*;
use reqwest::Method;

/// Every scope the routes need, and a patient scope the tests need to make a patient.
const SCOPES: &str = "openid api:oemr user/patient.crus user/background_service.rs \
    user/run.c user/background_service.$run";

/// The services the host registers.
const SERVICES: [&str; 3] = [
    "oauth_token_cleanup",
    "bulk_file_expiry",
    "audit_log_retention",
];

async fn exec(app: &TestApp, site: &str, sql: &'static str, binds: &[Bind]) {
    let site = app.state.sites.get(site).await.expect("the site");
    hearth::on_db!(&site.db, |pool| {
        let mut query = sqlx::query(sql);
        for bind in binds {
            query = match bind {
                Bind::Int(n) => query.bind(*n),
                Bind::Text(t) => query.bind(t.clone()),
            };
        }
        query.execute(pool).await.expect(sql);
    });
}

/// A value bound to a statement.
#[derive(Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

fn text(value: &str) -> Bind {
    Bind::Text(value.to_owned())
}

/// One service's row as the test reads it: (active, next_run, execute_interval,
/// lock_expires_at, run_count, last_status).
async fn service(app: &TestApp, site: &str, name: &str) -> Value {
    app.rows(site, "SELECT name, active, next_run, execute_interval, lock_expires_at, run_count, last_status, last_message, lease_owner FROM background_services ORDER BY name")
        .await
        .into_iter()
        .find(|row| row["name"] == name)
        .unwrap_or_else(|| panic!("no row for {name}"))
}

async fn runs(app: &TestApp, site: &str) -> Vec<Value> {
    app.rows(
        site,
        "SELECT name, runner, status, message FROM background_service_runs ORDER BY id",
    )
    .await
}

fn url(app: &TestApp, site: &str, path: &str) -> String {
    app.api(site, &format!("/api/background_service{path}"))
}

/// Sends `method` with a raw body.
async fn raw(app: &TestApp, method: Method, url: &str, token: &str, body: &str) -> Reply {
    let reply = app
        .client
        .request(method, url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("the server answers");
    Reply::from(reply).await
}

both! {
    options = Options { bulk_jobs: Some(0), scheduler_tick_ms: Some(0), ..Options::default() };

    async fn the_routes_answer_each_status(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        // The list: OpenEMR's fields, never the function, in run order.
        let list = app.get(&url(app, "default", ""), &token).await;
        assert_eq!(list.status, 200, "{}", list.text);
        let names: Vec<&str> = list.json.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names, SERVICES);
        for item in list.json.as_array().unwrap() {
            for key in ["name", "title", "active", "running", "execute_interval", "next_run"] {
                assert!(item.get(key).is_some(), "{key} in {item}");
            }
            assert!(item.get("function").is_none(), "the function is not shown");
            assert_eq!(item["active"], true);
            assert_eq!(item["running"], false);
            assert!(item["next_run"].as_str().unwrap().len() == 19, "YYYY-MM-DD hh:mm:ss: {item}");
        }
        // Sorting and paging, table-driven.
        for (query, expected) in [
            ("?_sort=-name", vec!["oauth_token_cleanup", "bulk_file_expiry", "audit_log_retention"]),
            ("?_sort=name", vec!["audit_log_retention", "bulk_file_expiry", "oauth_token_cleanup"]),
            ("?_sort=execute_interval", vec!["bulk_file_expiry", "oauth_token_cleanup", "audit_log_retention"]),
            ("?_sort=name&_limit=1&_offset=1", vec!["bulk_file_expiry"]),
            ("?_limit=2", vec!["oauth_token_cleanup", "bulk_file_expiry"]),
            ("?_offset=5", vec![]),
        ] {
            let reply = app.get(&url(app, "default", query), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let names: Vec<&str> = reply.json.as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
            assert_eq!(names, expected, "{query}");
        }
        for (query, field) in [("?_sort=function", "_sort"), ("?_limit=ten", "_limit"), ("?_offset=-1", "_offset")] {
            let reply = app.get(&url(app, "default", query), &token).await;
            assert_eq!(reply.status, 400, "{query}: {}", reply.text);
            assert!(reply.json[field].is_object(), "{query}: {}", reply.text);
        }
        // One service, and none.
        let one = app.get(&url(app, "default", "/bulk_file_expiry"), &token).await;
        assert_eq!(one.status, 200, "{}", one.text);
        assert_eq!(one.json["name"], "bulk_file_expiry");
        assert_eq!(one.json["execute_interval"], 5);
        assert_eq!(one.json["run_count"], 0);
        for path in ["/nosuch", "/$run", "/%27%20OR%201=1"] {
            let reply = app.get(&url(app, "default", path), &token).await;
            assert_eq!(reply.status, 404, "{path}: {}", reply.text);
            assert_eq!(reply.json["error"], "Service not found");
        }

        // Runs: (body, setup, expected status, expected body status), in order.
        let now = hearth_tests::now();
        let before = service(app, "default", "oauth_token_cleanup").await;
        let cases: &[(&str, &str, u16, &str)] = &[
            ("", "oauth_token_cleanup", 409, "not_due"),
            ("{}", "oauth_token_cleanup", 409, "not_due"),
            (r#"{"force":false}"#, "oauth_token_cleanup", 409, "not_due"),
            ("{not json", "oauth_token_cleanup", 400, "Invalid JSON payload"),
            ("[true]", "oauth_token_cleanup", 400, "Invalid JSON payload"),
            (r#"{"force":"yes"}"#, "oauth_token_cleanup", 400, "Invalid JSON payload"),
            (r#"{"force":true}"#, "nosuch", 404, "Service not found"),
        ];
        for (body, name, status, said) in cases {
            let reply = raw(app, Method::POST, &url(app, "default", &format!("/{name}/run")), &token, body).await;
            assert_eq!(reply.status, *status, "{name} {body}: {}", reply.text);
            let field = if *status == 409 { "status" } else { "error" };
            assert_eq!(reply.json[field], *said, "{name} {body}: {}", reply.text);
        }
        assert_eq!(service(app, "default", "oauth_token_cleanup").await, before, "refused runs change nothing");
        assert!(runs(app, "default").await.is_empty());

        // A forced run executes and records itself; the next run is one interval on.
        let reply = raw(app, Method::POST, &url(app, "default", "/oauth_token_cleanup/run"), &token, r#"{"force":true}"#).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json, json!({"service": "oauth_token_cleanup", "status": "executed"}));
        let after = service(app, "default", "oauth_token_cleanup").await;
        assert_eq!(after["run_count"], 1);
        assert_eq!(after["last_status"], "executed");
        assert_eq!(after["lock_expires_at"], Value::Null, "the lease ends with the run");
        assert!(after["next_run"].as_i64().unwrap() >= now + 3600);
        let shown = app.get(&url(app, "default", "/oauth_token_cleanup"), &token).await;
        assert_eq!(shown.json["last_status"], "executed");
        assert!(shown.json["last_message"].as_str().unwrap().starts_with("removed "));
        assert_eq!(runs(app, "default").await.len(), 1);

        // A live lease held elsewhere: already running, forced or not.
        exec(app, "default", "UPDATE background_services SET lock_expires_at = $1, next_run = $2 WHERE name = $3", &[Bind::Int(now + 600), Bind::Int(now - 5), text("audit_log_retention")]).await;
        for body in ["", r#"{"force":true}"#] {
            let reply = raw(app, Method::POST, &url(app, "default", "/audit_log_retention/run"), &token, body).await;
            assert_eq!((reply.status, reply.json["status"].as_str()), (409, Some("already_running")), "{body}: {}", reply.text);
        }
        // An expired lease (a process died mid-run) is taken over.
        exec(app, "default", "UPDATE background_services SET lock_expires_at = $1 WHERE name = $2", &[Bind::Int(now - 1), text("audit_log_retention")]).await;
        let reply = raw(app, Method::POST, &url(app, "default", "/audit_log_retention/run"), &token, "").await;
        assert_eq!((reply.status, reply.json["status"].as_str()), (200, Some("executed")), "{}", reply.text);

        // Inactive: skipped even when forced; manual (interval 0): skipped unless forced.
        exec(app, "default", "UPDATE background_services SET active = 0 WHERE name = $1", &[text("bulk_file_expiry")]).await;
        let reply = raw(app, Method::POST, &url(app, "default", "/bulk_file_expiry/run"), &token, r#"{"force":true}"#).await;
        assert_eq!((reply.status, reply.json["status"].as_str()), (409, Some("skipped")), "{}", reply.text);
        exec(app, "default", "UPDATE background_services SET active = 1, execute_interval = 0, next_run = $1 WHERE name = $2", &[Bind::Int(now - 5), text("bulk_file_expiry")]).await;
        let reply = raw(app, Method::POST, &url(app, "default", "/bulk_file_expiry/run"), &token, "").await;
        assert_eq!((reply.status, reply.json["status"].as_str()), (409, Some("skipped")), "{}", reply.text);
        let reply = raw(app, Method::POST, &url(app, "default", "/bulk_file_expiry/run"), &token, r#"{"force":true}"#).await;
        assert_eq!((reply.status, reply.json["status"].as_str()), (200, Some("executed")), "{}", reply.text);
        exec(app, "default", "UPDATE background_services SET execute_interval = 5 WHERE name = $1", &[text("bulk_file_expiry")]).await;

        // `$run`: only the due ones run; every service with an interval says how it went.
        exec(app, "default", "UPDATE background_services SET next_run = $1 WHERE name = $2", &[Bind::Int(now - 5), text("bulk_file_expiry")]).await;
        let count = runs(app, "default").await.len();
        let reply = app.post(&url(app, "default", "/$run"), &token, json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let results: BTreeMap<String, String> = reply.json["results"].as_array().unwrap().iter()
            .map(|r| (r["name"].as_str().unwrap().to_owned(), r["status"].as_str().unwrap().to_owned()))
            .collect();
        assert_eq!(results.get("bulk_file_expiry").map(String::as_str), Some("executed"), "{}", reply.text);
        assert_eq!(results.get("oauth_token_cleanup").map(String::as_str), Some("not_due"));
        assert_eq!(results.get("audit_log_retention").map(String::as_str), Some("not_due"));
        assert_eq!(runs(app, "default").await.len(), count + 1, "one run");
        let reply = app.post(&url(app, "default", "/$run"), &token, json!({})).await;
        assert!(reply.json["results"].as_array().unwrap().iter().all(|r| r["status"] == "not_due"), "{}", reply.text);
        assert_eq!(runs(app, "default").await.len(), count + 1, "nothing due, nothing run");

        // Methods the paths do not answer: 405 naming the allowed ones.
        for (method, path, allow) in [
            (Method::DELETE, "", "GET"),
            (Method::POST, "", "GET"),
            (Method::PUT, "/bulk_file_expiry", "GET"),
            (Method::GET, "/bulk_file_expiry/run", "POST"),
            (Method::DELETE, "/$run", "GET, POST"),
        ] {
            let reply = app.send(method.clone(), &url(app, "default", path), Some(&token), None).await;
            assert_eq!(reply.status, 405, "{method} {path}: {}", reply.text);
            assert_eq!(reply.header("allow"), Some(allow), "{method} {path}");
        }
        // Below a service's run there is nothing.
        let reply = app.post(&url(app, "default", "/bulk_file_expiry/run/now"), &token, json!({})).await;
        assert_eq!(reply.status, 404, "{}", reply.text);

        // The other site has its own rows: runs on one site leave the other's alone.
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&url(app, "second", "/oauth_token_cleanup"), &second).await;
        assert_eq!(reply.json["run_count"], 0, "{}", reply.text);
        assert!(runs(app, "second").await.is_empty());
    }

    async fn an_openemr_site_answers_as_openemr(app) {
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let token = app.user_token("second", "admin", SCOPES).await;
        // OpenEMR reads the list's query not at all, a non-boolean force as no force, and
        // has no 405.
        let reply = app.get(&url(app, "second", "?_sort=function&_limit=x"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json.as_array().unwrap().len(), 3);
        for body in [r#"{"force":"yes"}"#, "[true]"] {
            let reply = raw(app, Method::POST, &url(app, "second", "/oauth_token_cleanup/run"), &token, body).await;
            assert_eq!((reply.status, reply.json["status"].as_str()), (409, Some("not_due")), "{body}: {}", reply.text);
        }
        let reply = raw(app, Method::POST, &url(app, "second", "/oauth_token_cleanup/run"), &token, "{nope").await;
        assert_eq!((reply.status, reply.json["error"].as_str()), (400, Some("Invalid JSON payload")));
        let reply = app.send(Method::DELETE, &url(app, "second", ""), Some(&token), None).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        // A missing route scope is OpenEMR's 401.
        let narrow = app.user_token("second", "admin", "openid api:oemr user/patient.r").await;
        let reply = app.get(&url(app, "second", ""), &narrow).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
    }

    async fn scopes_acls_and_roles_refuse_and_write_nothing(app) {
        let admin = app.user_token("default", "admin", SCOPES).await;
        let (_, puuid) = app.create_patient("default", &admin, "Ann", "Refused").await;
        app.user("default", "drhouse", "physician").await;
        let physician = app.user_token("default", "drhouse", SCOPES).await;
        let narrow = app.user_token("default", "admin", "openid api:oemr user/patient.r").await;
        let v1 = app.user_token("default", "admin", "openid api:oemr user/background_service.read user/run.write").await;
        let patient = app.patient_token("default", &puuid, "openid api:port patient/patient.rs").await;
        // Make every service due, so that a request that got through would run one.
        exec(app, "default", "UPDATE background_services SET next_run = 0", &[]).await;
        // (first forcing the rows to exist)
        assert_eq!(app.get(&url(app, "default", ""), &admin).await.status, 200);
        exec(app, "default", "UPDATE background_services SET next_run = 0", &[]).await;
        let before = app.rows("default", "SELECT name, next_run, run_count, lock_expires_at FROM background_services ORDER BY name").await;
        let none = "";
        let table: &[(Method, &str, &str, u16, &str)] = &[
            (Method::GET, "", none, 401, "no token"),
            (Method::POST, "/$run", none, 401, "no token"),
            (Method::POST, "/bulk_file_expiry/run", none, 401, "no token"),
            (Method::GET, "", &narrow, 403, "insufficient_scope"),
            (Method::GET, "/bulk_file_expiry", &narrow, 403, "insufficient_scope"),
            (Method::POST, "/bulk_file_expiry/run", &narrow, 403, "insufficient_scope"),
            (Method::POST, "/$run", &narrow, 403, "insufficient_scope"),
            (Method::POST, "/$run", &v1, 403, "insufficient_scope"),
            (Method::GET, "", &physician, 403, "forbidden"),
            (Method::GET, "/bulk_file_expiry", &physician, 403, "forbidden"),
            (Method::POST, "/bulk_file_expiry/run", &physician, 403, "forbidden"),
            (Method::GET, "", &patient, 403, "forbidden"),
            (Method::POST, "/$run", &patient, 403, "forbidden"),
        ];
        for (method, path, token, status, code) in table {
            let token = (!token.is_empty()).then_some(*token);
            let reply = app.send(method.clone(), &url(app, "default", path), token, Some(json!({"force": true}))).await;
            assert_eq!(reply.status, *status, "{method} {path} ({code}): {}", reply.text);
            if *code != "no token" {
                assert_eq!(reply.json["error"], *code, "{method} {path}: {}", reply.text);
            }
        }
        let after = app.rows("default", "SELECT name, next_run, run_count, lock_expires_at FROM background_services ORDER BY name").await;
        assert_eq!(before, after, "no refused request ran a service");
        assert!(runs(app, "default").await.is_empty());
        // The v1 forms of the scopes grant the reads and the run.
        assert_eq!(app.get(&url(app, "default", "/bulk_file_expiry"), &v1).await.status, 200);
        let reply = app.post(&url(app, "default", "/bulk_file_expiry/run"), &v1, json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        // `$run` needs no ACL: any staff user with the scope.
        let reply = app.post(&url(app, "default", "/$run"), &physician, json!({})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let ran: Vec<&str> = reply.json["results"].as_array().unwrap().iter().filter(|r| r["status"] == "executed").map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(ran, ["oauth_token_cleanup", "audit_log_retention"], "{}", reply.text);
    }

    async fn the_scopes_are_in_the_catalogue(app) {
        let doc = app.send(Method::GET, &app.api("default", "/fhir/.well-known/smart-configuration"), None, None).await;
        let supported = doc.json["scopes_supported"].as_array().expect("scopes_supported");
        for scope in ["user/background_service.rs", "user/background_service.$run", "user/run.c"] {
            assert!(supported.contains(&json!(scope)), "{scope} is offered");
        }
    }

    async fn each_service_does_its_job(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let run = |name: &'static str| {
            let url = url(app, "default", &format!("/{name}/run"));
            let token = token.clone();
            async move {
                let reply = app.post(&url, &token, json!({"force": true})).await;
                assert_eq!(reply.status, 200, "{name}: {}", reply.text);
                assert_eq!(reply.json["status"], "executed");
                app.get(url.trim_end_matches("/run"), &token).await.json["last_message"].as_str().unwrap().to_owned()
            }
        };
        let now = hearth_tests::now();

        // OAuth: expired rows go, live ones stay.
        for (jti, expires) in [("expired-jti", now - 10), ("live-jti", now + 3600)] {
            exec(app, "default", "INSERT INTO api_token (jti, client_id, user_id, scope, context, expires_at, revoked, created_at) VALUES ($1, 'c', 'u', 'openid', '{}', $2, 0, $3)", &[text(jti), Bind::Int(expires), Bind::Int(now - 100)]).await;
            exec(app, "default", "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, client_id, user_id, role, scope, expires_at, created_at) VALUES ($1, 'g', 'c', 'u', 'user', 'openid', $2, $3)", &[text(jti), Bind::Int(expires), Bind::Int(now - 100)]).await;
            exec(app, "default", "INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, user_id, role, scope, expires_at, created_at) VALUES ($1, 'g', 'c', 'https://x', 'u', 'user', 'openid', $2, $3)", &[text(jti), Bind::Int(expires), Bind::Int(now - 100)]).await;
            exec(app, "default", "INSERT INTO oauth_jti (client_id, jti, expires_at) VALUES ('c', $1, $2)", &[text(jti), Bind::Int(expires)]).await;
        }
        let message = run("oauth_token_cleanup").await;
        assert!(message.contains("1 access tokens") && message.contains("1 refresh tokens") && message.contains("1 authorization codes") && message.contains("1 client-assertion ids"), "{message}");
        for sql in [
            "SELECT jti AS k FROM api_token WHERE jti IN ('expired-jti', 'live-jti')",
            "SELECT token_hash AS k FROM oauth_refresh_tokens WHERE token_hash IN ('expired-jti', 'live-jti')",
            "SELECT code_hash AS k FROM oauth_codes",
            "SELECT jti AS k FROM oauth_jti",
        ] {
            assert_eq!(app.rows("default", sql).await, vec![json!({"k": "live-jti"})], "{sql}");
        }
        // The admin's own token still works.
        assert_eq!(app.get(&url(app, "default", ""), &token).await.status, 200);

        // Bulk Data: an expired export's row and files go; a kept one stays.
        for (id, expires) in [("job-expired", now - 10), ("job-kept", now + 3600)] {
            exec(app, "default", "INSERT INTO bulk_jobs (id, client_id, owner, request, plan, progress, status, transaction_time, created_at, finished_at, expires_at) VALUES ($1, 'c', '{}', '{}', '{}', '{}', 'completed', '2026-01-01T00:00:00Z', $2, $2, $3)", &[text(id), Bind::Int(now - 100), Bind::Int(expires)]).await;
            let dir = app.data_dir.join("bulk").join("default").join(id);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("Patient-1.ndjson"), "{\"resourceType\":\"Patient\"}\n").unwrap();
        }
        let message = run("bulk_file_expiry").await;
        assert_eq!(message, "removed 1 expired exports");
        assert!(!app.data_dir.join("bulk/default/job-expired").exists(), "the expired files are gone");
        assert!(app.data_dir.join("bulk/default/job-kept/Patient-1.ndjson").exists(), "the kept files stay");
        assert_eq!(app.rows("default", "SELECT id FROM bulk_jobs").await, vec![json!({"id": "job-kept"})]);

        // Audit: every row is kept by default; past `audit.retention_days` they go.
        app.flush_audit().await;
        for (path, created) in [("/old", "2020-01-02T03:04:05Z"), ("/old", "2021-06-01T00:00:00.5Z")] {
            exec(app, "default", "INSERT INTO api_log (site, created_at, method, path, status, duration_us) VALUES ('default', $1, 'GET', $2, 200, 1)", &[text(created), text(path)]).await;
        }
        let count = |rows: Vec<Value>| rows.len();
        let total = count(app.rows("default", "SELECT id FROM api_log").await);
        let message = run("audit_log_retention").await;
        assert!(message.starts_with("kept every row"), "{message}");
        app.flush_audit().await;
        assert!(count(app.rows("default", "SELECT id FROM api_log").await) >= total);
        let site = app.state.sites.get("default").await.unwrap();
        assert!(hearth::oauth::settings::set(&site, "audit.retention_days", "-1").await.is_err());
        assert!(hearth::oauth::settings::set(&site, "audit.retention_days", "0").await.is_ok(), "0 (keep) may be set");
        hearth::oauth::settings::set(&site, "audit.retention_days", "30").await.unwrap();
        let message = run("audit_log_retention").await;
        assert!(message.starts_with("removed 2 audit rows older than 30 days"), "{message}");
        app.flush_audit().await;
        assert!(app.rows("default", "SELECT id FROM api_log WHERE path = '/old'").await.is_empty());
        assert!(!app.rows("default", "SELECT id FROM api_log").await.is_empty(), "recent rows stay");
        // The other site's log is its own.
        let second = app.user_token("second", "admin", SCOPES).await;
        assert_eq!(app.get(&url(app, "second", ""), &second).await.status, 200);
    }
}

/// A `hearth serve` process of its own on the test server's data folder and databases,
/// listening on `port`. Killed when dropped.
struct Replica {
    child: std::process::Child,
    port: u16,
}

impl Replica {
    fn start(app: &TestApp) -> Replica {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_hearth-child"))
            .arg("--data-dir")
            .arg(&app.data_dir)
            .args([
                "serve",
                "--http",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &app.base,
                "--plugins",
            ])
            .arg(&app.config.plugins_file)
            .env("HEARTH_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting hearth serve");
        Replica { child, port }
    }

    fn url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}/apis/default/api/background_service{path}",
            self.port
        )
    }

    async fn ready(&self, app: &TestApp, token: &str) {
        for _ in 0..300 {
            if let Ok(reply) = app.client.get(self.url("")).bearer_auth(token).send().await
                && reply.status() == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the replica on port {} did not start", self.port);
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

both! {
    options = Options { bulk_jobs: Some(0), scheduler_tick_ms: Some(0), ..Options::default() };

    async fn two_processes_run_each_due_service_once(app) {
        // This process runs no service on its own; the two replicas look every 50 ms.
        let cache = workspace().join("target").join("test-plugin-cache");
        std::fs::write(
            app.data_dir.join("hearth.toml"),
            format!(
                "cache_dir = {:?}\nwatch_plugins = false\nmax_instances = 64\nbulk_jobs = 0\nscheduler_tick_ms = 50\n",
                cache.display().to_string()
            ),
        )
        .unwrap();
        let token = app.user_token("default", "admin", SCOPES).await;
        // One after the other: two processes opening a PostgreSQL site at the same moment
        // race to set up its plugin roles.
        let a = Replica::start(app);
        a.ready(app, &token).await;
        let b = Replica::start(app);
        b.ready(app, &token).await;
        let pids = [a.child.id().to_string(), b.child.id().to_string()];

        // The replicas' own loops: each time the service falls due, one of them runs it.
        let rounds = 6;
        for round in 1..=rounds {
            exec(app, "default", "UPDATE background_services SET next_run = $1 WHERE name = 'audit_log_retention'", &[Bind::Int(hearth_tests::now() - 1)]).await;
            let mut ran = false;
            for _ in 0..200 {
                if service(app, "default", "audit_log_retention").await["run_count"] == round {
                    ran = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(ran, "round {round}: the due run happened");
            // Both keep looking for a while: the run is not repeated.
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(service(app, "default", "audit_log_retention").await["run_count"], round, "round {round}: once");
        }
        let done: Vec<Value> = runs(app, "default").await.into_iter().filter(|r| r["name"] == "audit_log_retention").collect();
        assert_eq!(done.len(), rounds as usize, "one run per round: {done:?}");
        for run in &done {
            let runner = run["runner"].as_str().unwrap();
            assert!(pids.iter().any(|pid| runner.starts_with(&format!("{pid}-"))), "run by a replica: {runner}");
            assert_eq!(run["status"], "executed");
        }
        let by: std::collections::BTreeSet<&str> = done.iter().map(|r| r["runner"].as_str().unwrap()).collect();
        eprintln!("runs by replica: {by:?}");

        // Both replicas asked at once (`$run` on each, while their loops look too): the
        // due service runs once, and at most one answer says it ran it.
        for round in 1..=rounds {
            let before = service(app, "default", "bulk_file_expiry").await["run_count"].as_i64().unwrap();
            exec(app, "default", "UPDATE background_services SET next_run = $1 WHERE name = 'bulk_file_expiry'", &[Bind::Int(hearth_tests::now() - 1)]).await;
            let (ra, rb) = tokio::join!(
                app.client.post(a.url("/$run")).bearer_auth(&token).send(),
                app.client.post(b.url("/$run")).bearer_auth(&token).send(),
            );
            let mut executed = 0;
            for reply in [ra, rb] {
                let reply = Reply::from(reply.expect("the replica answers")).await;
                assert_eq!(reply.status, 200, "{}", reply.text);
                executed += reply.json["results"].as_array().unwrap().iter()
                    .filter(|r| r["name"] == "bulk_file_expiry" && r["status"] == "executed").count();
            }
            assert!(executed <= 1, "round {round}: {executed} answers ran it");
            let mut count = before;
            for _ in 0..100 {
                count = service(app, "default", "bulk_file_expiry").await["run_count"].as_i64().unwrap();
                if count > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let count_now = service(app, "default", "bulk_file_expiry").await["run_count"].as_i64().unwrap();
            assert_eq!((count, count_now), (before + 1, before + 1), "round {round}: run once");
        }
        drop(a);
        drop(b);
    }
}
