//! SQLite's heap bound (`sqlite_heap_mib`): plugin SQL that makes SQLite allocate past it
//! is stopped and its request answered 503 naming the limit, and the server goes on
//! serving. A test binary of its own, because the bound is process-wide.

use hearth_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_sql_that_grows_sqlites_heap_past_its_bound_gets_503_naming_it() {
    let options = Options {
        sqlite_heap_mib: Some(96),
        ..Options::with_plugins(
            r#"
[plugins.patient]
file = "patient.wasm"

[plugins.test-probe]
file = "test-probe.wasm"

[sites."*"]
plugins = ["patient", "test-probe"]
"#,
        )
    };
    let app = TestApp::spawn_with(Backend::Sqlite, options).await.unwrap();
    let token = app
        .user_token("default", "admin", "openid api:oemr user/patient.crus")
        .await;
    // Each column is an 8 MiB string (under the 16 MiB length limit); twenty of them in
    // one row need 160 MiB of SQLite's heap at once.
    let big = "replace(replace(replace(replace(replace(replace(replace('xxxxxxxxxxxxxxxx', 'x', 'xxxxxxxx'), 'x', 'xxxxxxxx'), 'x', 'xxxxxxxx'), 'x', 'xxxxxxxx'), 'x', 'xxxxxxxx'), 'x', 'xxxxxxxx'), 'x', 'xx')";
    let columns: Vec<String> = (0..20).map(|i| format!("{big} || '{i}' AS c{i}")).collect();
    let sql = format!("SELECT {}", columns.join(", "));
    let reply = app
        .post(
            &app.api("default", "/api/probe"),
            &token,
            json!({ "sql": sql }),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(
        reply.json["error"], "plugin_database_limit",
        "{}",
        reply.text
    );
    let message = reply.json["message"].as_str().unwrap();
    assert!(
        message.contains("limit of 96 MiB (sqlite_heap_mib)"),
        "{message}"
    );
    // The heap went back down: the same plugin and the server serve on.
    let reply = app
        .post(
            &app.api("default", "/api/probe"),
            &token,
            json!({ "sql": "SELECT COUNT(*) AS n FROM patient_data" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["data"]["results"][0]["rows"][0]["n"], 0);
    app.stop().await;
}
