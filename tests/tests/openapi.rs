//! The API description, on both databases: an OpenAPI 3.1 document per site and family
//! built from the loaded plugins' declarations (`/apis/{site}/{api,portal,fhir}/openapi.json`),
//! with the OAuth2 scheme and each operation's scopes; a site without a plugin has none
//! of its paths; a hot reload of a plugin with another schema changes the document; every
//! document passes `@redocly/cli lint` (npm, pinned in `tests/js`); Swagger UI at
//! `/apis/{site}/docs` is served from the host alone; and headless Chromium
//! (`tests/js/docs-flow.mjs`) authorizes in Swagger UI through Hearth's sign-in and
//! consent pages with PKCE and calls a route from it. A plugin whose API description is
//! broken is refused on reload, saying why, while the last good version and its document
//! stay.
//!
//! The npm and Chromium parts need what `tests/js_clients.rs` needs:
//! `scripts/setup-js-tests` installs it. They fail, saying so, when it is missing.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use hearth_tests::*;
use serde_json::{Value, json};

const SCOPE: &str = "openid api:oemr user/patient.cruds";

async fn document(app: &TestApp, site: &str, family: &str) -> Value {
    let url = format!("{}/apis/{site}/{family}/openapi.json", app.base);
    let reply = app.send(reqwest::Method::GET, &url, None, None).await;
    assert_eq!(reply.status, 200, "{url}: {}", reply.text);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    reply.json
}

fn js_dir() -> PathBuf {
    workspace().join("tests").join("js")
}

fn artifacts(name: &str) -> PathBuf {
    let dir = workspace().join("target").join("test-artifacts").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The backend an app runs on, for artifact folders.
fn backend_name(app: &TestApp) -> &'static str {
    match app.backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Runs `node args…` in `tests/js` with `env`; answers (exit success, stdout + stderr).
async fn node(args: &[&str], env: &[(&str, String)], limit: Duration) -> (bool, String) {
    let modules = js_dir().join("node_modules");
    assert!(
        modules.join("@redocly").is_dir() && modules.join("playwright-core").is_dir(),
        "tests/js/node_modules is missing: run scripts/setup-js-tests"
    );
    let mut command = tokio::process::Command::new("node");
    command
        .current_dir(js_dir())
        .args(args)
        .env("REDOCLY_TELEMETRY", "off")
        .env("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = tokio::time::timeout(limit, command.output())
        .await
        .unwrap_or_else(|_| panic!("node {args:?} ran longer than {limit:?}"))
        .unwrap_or_else(|e| panic!("node cannot run ({e}): install Node.js 20+"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn operation<'a>(doc: &'a Value, path: &str, method: &str) -> &'a Value {
    let found = &doc["paths"][path][method];
    assert!(found.is_object(), "no {method} {path} in {}", doc["paths"]);
    found
}

both! {
    async fn each_family_has_a_document_of_the_sites_plugins_with_their_schemas(app) {
        let api = document(app, "default", "api").await;
        assert_eq!(api["openapi"], "3.1.0");
        assert_eq!(api["servers"][0]["url"], format!("{}/apis/default/api", app.base));
        let read = operation(&api, "/patient/{puuid}", "get");
        assert_eq!(read["summary"], "Read a patient");
        assert_eq!(read["tags"], json!(["patient"]));
        assert_eq!(read["parameters"][0]["name"], "puuid");
        assert_eq!(read["parameters"][0]["in"], "path");
        assert_eq!(read["parameters"][0]["schema"]["format"], "uuid");
        let record = &read["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(record["properties"]["data"]["properties"]["fname"]["type"], json!(["string", "null"]));
        assert_eq!(record["properties"]["data"]["properties"]["DOB"]["format"], "date");
        let create = operation(&api, "/patient", "post");
        let body = &create["requestBody"]["content"]["application/json"]["schema"];
        assert_eq!(body["required"], json!(["fname", "lname", "sex", "DOB"]));
        assert!(body["properties"]["street"].is_object(), "{body}");
        assert!(create["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["data"]["properties"]["pid"].is_object());
        assert_eq!(create["responses"]["400"]["$ref"], "#/components/responses/BadRequest");
        let list = operation(&api, "/patient", "get");
        let params: Vec<&str> = list["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(params.contains(&"_sort") && params.contains(&"_limit"), "{params:?}");
        let facilities = operation(&api, "/facility", "get");
        let params: Vec<&str> = facilities["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(params.contains(&"facility_npi"), "filters are query parameters: {params:?}");
        // Bare routes answer the payload itself.
        let vitals = operation(&api, "/patient/{pid}/encounter/{eid}/vital", "post");
        assert!(vitals["responses"]["201"]["content"]["application/json"]["schema"]["properties"]["vid"].is_object(), "{vitals}");
        assert!(api["paths"].get("/Patient").is_none(), "no FHIR paths in the standard API");

        let portal = document(app, "default", "portal").await;
        assert!(operation(&portal, "/patient/encounter", "get").is_object());
        assert!(portal["paths"].get("/facility").is_none());

        let fhir = document(app, "default", "fhir").await;
        let search = operation(&fhir, "/Patient", "get");
        let bundle = &search["responses"]["200"]["content"]["application/fhir+json"]["schema"];
        assert_eq!(bundle["properties"]["resourceType"]["const"], "Bundle");
        assert_eq!(bundle["properties"]["entry"]["items"]["properties"]["resource"]["properties"]["gender"]["enum"], json!(["male", "female", "other", "unknown"]));
        let names: Vec<&str> = search["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(names.contains(&"birthdate") && names.contains(&"_count"), "{names:?}");
        assert!(operation(&fhir, "/Patient/_search", "post")["requestBody"]["content"]["application/x-www-form-urlencoded"].is_object());
    }

    async fn operations_name_the_scopes_they_need_and_the_oauth2_scheme_its_urls(app) {
        let issuer = format!("{}/oauth2/default", app.base);
        let api = document(app, "default", "api").await;
        assert_eq!(operation(&api, "/patient/{puuid}", "get")["security"], json!([{"oauth2": ["api:oemr", "user/patient.r"]}]));
        assert_eq!(operation(&api, "/facility", "post")["security"], json!([{"oauth2": ["api:oemr", "user/facility.c"]}]));
        let flows = &api["components"]["securitySchemes"]["oauth2"]["flows"];
        assert_eq!(flows["authorizationCode"]["authorizationUrl"], format!("{issuer}/authorize"));
        assert_eq!(flows["authorizationCode"]["tokenUrl"], format!("{issuer}/token"));
        assert_eq!(flows["authorizationCode"]["scopes"]["user/patient.r"], "Read patients' demographics");
        assert_eq!(flows["authorizationCode"]["scopes"]["api:oemr"], "Use the standard API");
        assert!(flows.get("clientCredentials").is_none(), "no system tokens on /api");

        let portal = document(app, "default", "portal").await;
        assert_eq!(operation(&portal, "/patient", "get")["security"], json!([{"oauth2": ["api:port", "patient/patient.s"]}]));

        let fhir = document(app, "default", "fhir").await;
        assert_eq!(
            operation(&fhir, "/Patient/{id}", "get")["security"],
            json!([{"oauth2": ["user/Patient.r"]}, {"oauth2": ["patient/Patient.r"]}, {"oauth2": ["system/Patient.r"]}])
        );
        let flows = &fhir["components"]["securitySchemes"]["oauth2"]["flows"];
        assert_eq!(flows["clientCredentials"]["tokenUrl"], format!("{issuer}/token"));
        assert!(flows["clientCredentials"]["scopes"]["system/Patient.s"].is_string(), "{flows}");

        // A token with the scope the document names is what the route takes.
        let token = app.user_token("default", "admin", "openid api:oemr user/patient.r").await;
        let (_, puuid) = app.create_patient("default", &app.user_token("default", "admin", SCOPE).await, "Ann", "Scope").await;
        assert_eq!(app.get(&app.api("default", &format!("/api/patient/{puuid}")), &token).await.status, 200);
        assert_eq!(app.get(&app.api("default", "/api/facility"), &token).await.status, 403);
    }

    async fn every_document_passes_redocly_lint(app) {
        let dir = artifacts(&format!("openapi/{}", backend_name(app)));
        let mut files = Vec::new();
        for family in ["api", "portal", "fhir"] {
            let doc = document(app, "default", family).await;
            let file = dir.join(format!("{family}.json"));
            std::fs::write(&file, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
            files.push(file.display().to_string());
        }
        let mut args = vec!["node_modules/@redocly/cli/bin/cli.js", "lint", "--format", "stylish"];
        args.extend(files.iter().map(String::as_str));
        let (ok, output) = node(&args, &[], Duration::from_secs(180)).await;
        eprintln!("{output}");
        assert!(ok, "redocly lint reported errors:\n{output}");
        assert!(!output.contains(" error "), "{output}");
    }

    async fn swagger_ui_is_served_from_the_host_with_its_assets_and_no_external_url(app) {
        let reply = app.send(reqwest::Method::GET, &format!("{}/apis/default/docs", app.base), None, None).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.header("content-type"), Some("text/html; charset=utf-8"));
        let csp = reply.header("content-security-policy").unwrap();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-eval") && csp.contains("default-src 'none'"), "{csp}");
        let html = &reply.text;
        assert!(html.contains("data-client-id=\"hearth-api-docs\""), "{html}");
        assert!(!html.contains("<script>"), "no inline script");
        // Every URL on the page is the host's own (relative, or under its base URL).
        for url in html.split(['"', '&']).filter(|s| s.starts_with("http")) {
            assert!(url.starts_with(&app.base), "an external URL {url} in {html}");
        }
        for asset in ["swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css", "hearth-docs.js", "oauth2-redirect.html", "oauth2-redirect.js", "LICENSE.txt"] {
            if !asset.starts_with("oauth2-redirect") && !asset.ends_with(".txt") {
                assert!(html.contains(&format!("docs/{asset}")), "{asset} is linked");
            }
            let reply = app.send(reqwest::Method::GET, &format!("{}/apis/default/docs/{asset}", app.base), None, None).await;
            assert_eq!(reply.status, 200, "{asset}");
            assert!(reply.text.len() > 100, "{asset} has content");
            let kind = reply.header("content-type").unwrap();
            let expected = match asset.rsplit('.').next().unwrap() {
                "js" => "text/javascript",
                "css" => "text/css",
                "html" => "text/html",
                _ => "text/plain",
            };
            assert!(kind.starts_with(expected), "{asset}: {kind}");
        }
        let missing = app.send(reqwest::Method::GET, &format!("{}/apis/default/docs/index.html", app.base), None, None).await;
        assert_eq!(missing.status, 404);
        let unknown = app.send(reqwest::Method::GET, &format!("{}/apis/nowhere/docs", app.base), None, None).await;
        assert_eq!(unknown.status, 404);
        let unknown = app.send(reqwest::Method::GET, &format!("{}/apis/nowhere/api/openapi.json", app.base), None, None).await;
        assert_eq!(unknown.status, 404);
    }

    async fn swagger_ui_authorizes_through_hearth_with_pkce_and_calls_a_route_in_chromium(app) {
        let chromium = std::env::var_os("HEARTH_CHROMIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
        assert!(chromium.is_file(), "Chromium is not at {}: run scripts/setup-js-tests", chromium.display());
        app.user("default", "clinician", "physician").await;
        let admin = app.user_token("default", "admin", SCOPE).await;
        app.create_patient("default", &admin, "Ann", "Smith").await;
        let dir = artifacts(&format!("docs-browser/{}", backend_name(app)));
        let env = [
            ("HEARTH_BASE", app.base.clone()),
            ("HEARTH_SITE", "default".to_owned()),
            ("HEARTH_USERNAME", "clinician".to_owned()),
            ("HEARTH_PASSWORD", "correct horse battery".to_owned()),
            ("HEARTH_PATIENT_NAME", "Ann Smith".to_owned()),
            ("HEARTH_ARTIFACTS", dir.display().to_string()),
            ("HEARTH_CHROMIUM", chromium.display().to_string()),
        ];
        let (ok, output) = node(&["docs-flow.mjs"], &env, Duration::from_secs(300)).await;
        eprintln!("{output}");
        assert!(ok, "docs-flow.mjs failed:\n{output}");
        for step in [
            "the docs page loads Swagger UI from the host alone, under its CSP",
            "Authorize opens Hearth sign-in in a popup with the docs client and PKCE",
            "signing in shows consent with the scopes in words and raw on a detail line",
            "allowing returns to Swagger UI authorized",
            "Try it out calls GET /patient with the token and shows a 200 with the patient",
        ] {
            assert!(output.contains(&format!("ok - {step}")), "{step} did not pass:\n{output}");
        }
        assert!(Path::new(&dir).join("06-try-it-out.png").is_file(), "the last screenshot is saved");
        // The docs client the page used is the site's own public client.
        let site = app.state.sites.get("default").await.unwrap();
        let client = hearth::oauth::clients::find(&site, "hearth-api-docs").await.unwrap().unwrap();
        assert!(!client.confidential());
        assert_eq!(client.redirect_uris, [format!("{}/apis/default/docs/oauth2-redirect.html", app.base)]);
    }
}

const WITHOUT_FACILITY_ON_SECOND: &str = r#"
[plugins.patient]
file = "patient.wasm"
version = "^1.0"

[plugins.facility]
file = "facility.wasm"
version = "^1.0"

[sites."*"]
plugins = ["patient", "facility"]

[sites.second]
plugins = ["patient"]
"#;

both! {
    options = hearth_tests::Options::with_plugins(WITHOUT_FACILITY_ON_SECOND);

    async fn a_site_without_a_plugin_has_none_of_its_paths_or_scopes(app) {
        let first = document(app, "default", "api").await;
        assert!(first["paths"]["/facility"]["get"].is_object());
        assert!(first["tags"].as_array().unwrap().iter().any(|t| t["name"] == "facility"));
        let second = document(app, "second", "api").await;
        assert!(second["paths"].get("/facility").is_none(), "{}", second["paths"]);
        assert!(second["paths"]["/patient"]["get"].is_object());
        assert!(!second["tags"].as_array().unwrap().iter().any(|t| t["name"] == "facility"));
        let scopes = &second["components"]["securitySchemes"]["oauth2"]["flows"]["authorizationCode"]["scopes"];
        assert!(scopes.get("user/facility.s").is_none(), "{scopes}");
        let fhir = document(app, "second", "fhir").await;
        assert_eq!(fhir["paths"], json!({}));
    }
}

/// The patient plugin swapped for version 2 (whose list answers another schema) changes
/// the document within the reload bound; swapping back restores it.
async fn a_hot_reload_with_another_schema_changes_the_document(backend: Backend) {
    let plugins = PluginDir::new();
    let Some(app) = TestApp::spawn_with(
        backend,
        Options {
            plugins_toml: Some(plugins.manifest()),
            watch_plugins: Some(true),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let list_item = |doc: &Value| {
        doc["paths"]["/patient"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["properties"]["data"]["items"]
            .clone()
    };
    let before = document(&app, "default", "api").await;
    assert!(
        list_item(&before)["properties"]["DOB"].is_object(),
        "{before}"
    );
    assert!(before["paths"]["/patient/{puuid}"].is_object());

    plugins.replace(&std::fs::read(dist().join("patient-v2.wasm")).unwrap());
    let started = Instant::now();
    let after = loop {
        let doc = document(&app, "default", "api").await;
        if doc["info"] != Value::Null && list_item(&doc)["properties"]["served_by"].is_object() {
            break doc;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the document never changed: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let item = list_item(&after);
    assert_eq!(item["required"], json!(["uuid", "pid", "served_by"]));
    assert_eq!(
        item["properties"]["served_by"]["description"],
        "The plugin version that answered"
    );
    assert!(item["properties"].get("DOB").is_none());
    assert!(
        after["paths"].get("/patient/{puuid}").is_none(),
        "version 2 serves the list only"
    );
    assert_eq!(
        operation(&after, "/patient", "get")["summary"],
        "List patients (version 2)"
    );

    plugins.replace(&std::fs::read(dist().join("patient.wasm")).unwrap());
    let started = Instant::now();
    loop {
        let doc = document(&app, "default", "api").await;
        if doc["paths"]["/patient/{puuid}"].is_object() {
            assert!(list_item(&doc)["properties"]["DOB"].is_object());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "version 1 never came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.stop().await;
}

mod a_hot_reload_with_another_schema_changes_the_document {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_hot_reload_with_another_schema_changes_the_document(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_hot_reload_with_another_schema_changes_the_document(Backend::Postgres).await;
    }
}

/// `bytes` with the first `from` inside the `hearth:api-docs` section replaced by `to` (of
/// the same length, so the sections around it keep their sizes): a way to break one
/// declaration of a built component. (The same JSON is also in the plugin's data, which
/// the host never reads; the section's name comes right before its content.)
fn edited(bytes: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "an edit in place keeps the length");
    let find = |needle: &[u8], from: usize| {
        bytes[from..]
            .windows(needle.len())
            .position(|w| w == needle)
            .map(|at| at + from)
    };
    let section = find(b"hearth:api-docs", 0).expect("the component has the section");
    let at =
        find(from.as_bytes(), section).unwrap_or_else(|| panic!("the section holds no {from:?}"));
    let mut out = bytes.to_vec();
    out[at..at + to.len()].copy_from_slice(to.as_bytes());
    out
}

/// Each way of breaking the patient plugin's `hearth:api-docs` section is refused on a hot
/// reload with an error that says what is wrong; the last good version keeps serving and
/// the document stays as it was.
async fn a_broken_api_description_is_refused_on_reload(backend: Backend) {
    let plugins = PluginDir::new();
    let Some(app) = TestApp::spawn_with(
        backend,
        Options {
            plugins_toml: Some(plugins.manifest()),
            watch_plugins: Some(true),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let token = app.user_token("default", "admin", SCOPE).await;
    let good = std::fs::read(dist().join("patient.wasm")).unwrap();
    let before = document(&app, "default", "api").await;
    assert!(before["paths"]["/patient/{puuid}"].is_object(), "{before}");

    let cases: [(&str, &str, &str); 4] = [
        // Not JSON at all.
        ("{\"format\":1", "[\"format\":1", "is not valid JSON"),
        // A format this host does not read.
        ("\"format\":1", "\"format\":7", "this host reads format 1"),
        // A schema whose type is no JSON Schema type.
        (
            "\"type\":\"string\"",
            "\"type\":\"strinq\"",
            "is not a JSON Schema type",
        ),
        // A path parameter the route's template does not have (JSON allows the space).
        (
            "\"name\":\"_sort\",\"in\":\"query\"",
            "\"name\":\"_sort\",\"in\":\"path\" ",
            "path parameter _sort, which its template does not have",
        ),
    ];
    for (from, to, says) in cases {
        plugins.replace(&edited(&good, from, to));
        let started = Instant::now();
        let status = loop {
            let statuses = app.state.registry.statuses("default");
            let status = statuses
                .iter()
                .find(|s| s.name == "patient")
                .unwrap()
                .clone();
            if status
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains(says))
            {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{to}: no error saying {says:?}: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let error = status.last_error.clone().unwrap();
        assert!(error.contains("hearth:api-docs"), "{to}: {error}");
        assert_eq!(
            status.state,
            hearth::plugins::PluginState::Stale,
            "{to}: the last good version serves"
        );
        let reply = app.get(&app.api("default", "/api/patient"), &token).await;
        assert_eq!(reply.status, 200, "{to}: {}", reply.text);
        assert_eq!(
            document(&app, "default", "api").await,
            before,
            "{to}: the document is the last good version's"
        );
    }

    // The good file again: serving, no error, the same document.
    plugins.replace(&good);
    let started = Instant::now();
    loop {
        let statuses = app.state.registry.statuses("default");
        let status = statuses.iter().find(|s| s.name == "patient").unwrap();
        if status.last_error.is_none() {
            assert_eq!(status.state, hearth::plugins::PluginState::Serving);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the good file never loaded: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(document(&app, "default", "api").await, before);
    app.stop().await;
}

mod a_broken_api_description_is_refused_on_reload {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::a_broken_api_description_is_refused_on_reload(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::a_broken_api_description_is_refused_on_reload(Backend::Postgres).await;
    }
}
