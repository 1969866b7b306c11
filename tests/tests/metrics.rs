//! `/metrics` as Prometheus scrapes it: parsed by the PyPI `prometheus-client` package's
//! OpenMetrics parser (strict: it refuses a malformed exposition), the counters move with
//! requests, plugin calls, limit hits, reloads and token grants, labels name route
//! patterns (never a raw path or an unknown site), and the endpoint is behind its token or
//! on an address of its own.

use std::process::{Command, Stdio};

use hearth_tests::*;

const TOKEN: &str = "metrics-token-0123456789abcdef";
const SCOPE: &str = "openid api:oemr user/patient.crus";

/// The patient plugin and the misbehaving test plugin with tight limits, and the
/// metrics token.
fn options() -> Options {
    Options {
        metrics_token: Some(TOKEN.to_owned()),
        ..Options::with_plugins(
            r#"
[plugins.patient]
file = "patient.wasm"

[plugins.test-bad]
file = "test-bad.wasm"
timeout_ms = 500
memory_mib = 16
max_response_bytes = 1048576

[sites."*"]
plugins = ["patient", "test-bad"]
"#,
        )
    }
}

/// One sample of a scrape.
#[derive(Debug, serde::Deserialize)]
struct Sample {
    name: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

/// Parses an exposition with `prometheus_client.openmetrics.parser`, in the test suite's
/// pinned Python environment; fails the test when the text does not parse.
fn parse(text: &str) -> Vec<Sample> {
    const SCRIPT: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for sample in family.samples:
        samples.append({"name": sample.name, "labels": sample.labels, "value": sample.value})
print(json.dumps(samples))
"#;
    let mut child = Command::new(python())
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test suite's Python runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(text.as_bytes())
            .expect("writing the scrape");
    }
    let output = child.wait_with_output().expect("the parser ends");
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the scrape: {}\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the parser's JSON")
}

/// The sum of the samples called `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

async fn scrape_at(app: &TestApp, url: &str, token: Option<&str>) -> (Reply, Vec<Sample>) {
    let reply = app.send(reqwest::Method::GET, url, token, None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        reply.header("content-type")
    );
    let samples = parse(&reply.text);
    (reply, samples)
}

async fn scrape(app: &TestApp) -> (Reply, Vec<Sample>) {
    scrape_at(app, &format!("{}/metrics", app.base), Some(TOKEN)).await
}

/// A token from the token endpoint by the password grant, for a confidential client.
async fn password_grant(app: &TestApp) -> Reply {
    let registered = register(
        app,
        "default",
        json!({
            "application_type": "private", "client_name": "Metrics check",
            "redirect_uris": ["https://app.example/callback"],
            "scope": "openid api:oemr user/patient.rs",
            "token_endpoint_auth_method": "client_secret_post"
        }),
    )
    .await;
    assert_eq!(registered.status, 201, "{}", registered.text);
    let client_id = registered.json["client_id"].as_str().unwrap().to_owned();
    let secret = registered.json["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    enable(app, "default", &client_id).await;
    let site = app.state.sites.get("default").await.unwrap();
    hearth::oauth::settings::set(&site, "oauth.password_grant", "both")
        .await
        .unwrap();
    app.user("default", "doc", "physician").await;
    let body = encode(&[
        ("grant_type", "password"),
        ("user_role", "users"),
        ("username", "doc"),
        ("password", "correct horse battery"),
        ("scope", "openid api:oemr user/patient.rs"),
        ("client_id", &client_id),
        ("client_secret", &secret),
    ]);
    let response = app
        .client
        .post(oauth(app, "default", "/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

both! {
    options = options();

    async fn counters_move_with_requests_plugin_calls_limits_and_tokens(app) {
        // Behind the token.
        let url = format!("{}/metrics", app.base);
        let bare = app.send(reqwest::Method::GET, &url, None, None).await;
        assert_eq!(bare.status, 401, "{}", bare.text);
        assert!(bare.header("www-authenticate").is_some());
        let wrong = app.send(reqwest::Method::GET, &url, Some("metrics-token-wrong-0000000000"), None).await;
        assert_eq!(wrong.status, 401);

        let token = app.user_token("default", "admin", SCOPE).await;
        let (_, before) = scrape(app).await;
        let (_, uuid) = app.create_patient("default", &token, "Ann", "Metrics").await;
        for _ in 0..3 {
            assert_eq!(app.get(&app.api("default", "/api/patient"), &token).await.status, 200);
        }
        let one = app.get(&app.api("default", &format!("/api/patient/{uuid}")), &token).await;
        assert_eq!(one.status, 200, "{}", one.text);
        assert_eq!(app.get(&app.api("nosuch", "/api/patient"), &token).await.status, 404);
        // Three limits: time, memory, response size.
        assert_eq!(app.get(&app.api("default", "/api/bad/loop"), &token).await.status, 503);
        assert_eq!(app.get(&app.api("default", "/api/bad/memory"), &token).await.status, 500);
        assert_eq!(app.get(&app.api("default", "/api/bad/huge-response"), &token).await.status, 500);
        let granted = password_grant(app).await;
        assert_eq!(granted.status, 200, "{}", granted.text);
        let live = app.send(reqwest::Method::GET, &format!("{}/meta/health/livez", app.base), None, None).await;
        assert!(live.header("x-request-id").is_some(), "every answer has a request id");
        let (text, after) = scrape(app).await;
        let delta = |name: &str, labels: &[(&str, &str)]| {
            value(&after, name, labels) - value(&before, name, labels)
        };

        let list = [("site", "default"), ("family", "api"), ("route", "/api/patient"), ("method", "GET"), ("status", "200")];
        assert_eq!(delta("hearth_http_requests_total", &list), 3.0, "{}", text.text);
        assert_eq!(delta("hearth_http_request_duration_seconds_count", &list), 3.0);
        let mut le_inf = list.to_vec();
        le_inf.push(("le", "+Inf"));
        assert_eq!(delta("hearth_http_request_duration_seconds_bucket", &le_inf), 3.0);
        assert_eq!(
            delta("hearth_http_requests_total", &[("site", "default"), ("route", "/api/patient"), ("method", "POST"), ("status", "201")]),
            1.0
        );
        // The route is the pattern, never the raw path; an unknown site names no series.
        assert!(!text.text.contains(&uuid), "a raw id in a label: {}", text.text);
        assert!(!text.text.contains("nosuch"), "{}", text.text);
        assert!(
            after.iter().any(|s| s.name == "hearth_http_requests_total"
                && s.labels.get("route").is_some_and(|r| r.starts_with("/api/patient/:"))),
            "{}", text.text
        );
        assert_eq!(
            delta("hearth_http_requests_total", &[("site", ""), ("family", "api"), ("route", "unmatched"), ("status", "404")]),
            1.0,
            "{}", text.text
        );
        assert!(delta("hearth_http_requests_total", &[("family", "oauth2"), ("route", "/oauth2/{site}/token"), ("status", "200")]) >= 1.0);
        assert_eq!(delta("hearth_http_requests_total", &[("family", "meta"), ("route", "/meta/health/livez")]), 1.0);

        // Plugins: one instance per call; the limits by name.
        assert_eq!(delta("hearth_plugin_instantiations_total", &[("site", "default"), ("plugin", "patient")]), 5.0);
        assert_eq!(delta("hearth_plugin_instantiations_total", &[("site", "default"), ("plugin", "test-bad")]), 3.0);
        for limit in ["time", "memory", "response_size"] {
            assert_eq!(
                delta("hearth_plugin_limit_hits_total", &[("site", "default"), ("plugin", "test-bad"), ("limit", limit)]),
                1.0,
                "{limit}: {}", text.text
            );
        }
        // Tokens by grant; the database pools of the sites.
        assert_eq!(delta("hearth_tokens_issued_total", &[("site", "default"), ("grant", "password")]), 1.0);
        assert!(value(&after, "hearth_db_pool_max_connections", &[("site", "default")]) >= 1.0);
        assert!(
            after.iter().any(|s| s.name == "hearth_db_pool_connections"
                && s.labels.get("site").map(String::as_str) == Some("default")
                && s.labels.get("state").map(String::as_str) == Some("idle")),
            "{}", text.text
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_an_address_of_their_own_count_plugin_reloads() {
    let plugins = PluginDir::new();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            plugins_toml: Some(plugins.manifest()),
            watch_plugins: Some(false),
            metrics_listen: true,
            ..Options::default()
        },
    )
    .await
    .unwrap();
    // Not on the main address; no token needed on its own one.
    let main = app
        .send(
            reqwest::Method::GET,
            &format!("{}/metrics", app.base),
            None,
            None,
        )
        .await;
    assert_eq!(main.status, 404, "{}", main.text);
    let url = format!("{}/metrics", app.metrics.clone().expect("metrics_listen"));
    let (_, before) = scrape_at(&app, &url, None).await;
    assert_eq!(value(&before, "hearth_plugin_reloads_total", &[]), 0.0);

    plugins.overwrite(b"not a component");
    assert!(!app.state.registry.reload().await.errors.is_empty());
    plugins.replace(&std::fs::read(dist().join("patient-v2.wasm")).unwrap());
    let report = app.state.registry.reload().await;
    assert!(report.errors.is_empty(), "{report:?}");
    let (text, after) = scrape_at(&app, &url, None).await;
    let reloads = |result: &str| {
        value(
            &after,
            "hearth_plugin_reloads_total",
            &[("plugin", "patient"), ("result", result)],
        )
    };
    assert_eq!(reloads("failed"), 1.0, "{}", text.text);
    assert_eq!(reloads("loaded"), 1.0, "{}", text.text);
    app.stop().await;
}
