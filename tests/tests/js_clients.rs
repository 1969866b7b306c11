//! Third-party clients against the real server, on both databases: the npm package
//! `openid-client` (a certified OpenID Connect relying party) runs every grant
//! (`tests/js/openid-client-flows.mjs`); headless Chromium driven by `playwright-core`
//! walks sign-in, the patient picker and consent (`tests/js/browser-flow.mjs`), saving a
//! screenshot of each page under `target/test-artifacts/browser/{sqlite,postgres}/`, and
//! calls `/apis` from a page of another origin, through real CORS preflights
//! (`tests/js/cors-preflight.mjs`).
//!
//! This side starts the server, seeds a staff user and patients, runs `node` with the
//! server's URL in `HEARTH_*` variables, streams its output, and does what an
//! administrator would when the script asks (a `HEARTH-ASK {json}` line on its stdout,
//! answered with one JSON line on its stdin): enabling a registered client through
//! [`hearth::oauth::clients::set_enabled`], as `hearth client enable` does. The script
//! ends with `HEARTH-RESULT {"passed": [...], "failed": [...]}`; every expected step must
//! have passed.
//!
//! Needs Node.js 20+, `npm ci` in `tests/js` and Debian's `chromium`:
//! `scripts/setup-js-tests` installs what is missing (`scripts/test` runs it first). When
//! something is missing these tests fail and say so; they never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hearth_tests::*;
use sha2::Digest as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

/// The password [`TestApp::user`] gives every user.
const PASSWORD: &str = "correct horse battery";
/// The staff user who signs in.
const STAFF: &str = "clinician";
/// Longest a script may run before it is killed and the test fails (a hang guard, not a
/// speed check: the scripts take a few seconds).
const SCRIPT_LIMIT: Duration = Duration::from_secs(300);

/// The steps `openid-client-flows.mjs` must report passed, in order.
const OPENID_CLIENT_STEPS: &[&str] = &[
    "discovery: the issuer and every endpoint derive from the public URL, per site",
    "dynamic registration of a confidential client (client_secret_basic)",
    "authorization code + PKCE: sign-in and consent forms over HTTP, ID token validated",
    "userinfo answers the ID token subject",
    "refresh: a new access token and a rotated refresh token",
    "introspection reports the live tokens of this client",
    "revocation: introspection turns inactive and the API answers 401",
    "client_credentials with private_key_jwt, RS384 and ES384 keys registered as jwks",
];

/// The steps `browser-flow.mjs` must report passed, in order.
const BROWSER_STEPS: &[&str] = &[
    "a confidential client registers with openid-client and is enabled",
    "the sign-in page renders without JavaScript and refuses framing",
    "a wrong password keeps the page with one vague error",
    "signing in as staff with launch/patient shows the patient picker",
    "searching the picker narrows the list",
    "choosing the patient leads to consent with every scope ticked; one is unticked",
    "allowing redirects to the app with code, state and iss",
    "the code redeems for the ticked scopes and the chosen patient",
];

/// The steps `cors-preflight.mjs` must report passed, in order.
const CORS_STEPS: &[&str] = &[
    "a preflight from the app origin is answered for any path, without a token",
    "Chromium reads the API from another origin with a bearer token (preflighted)",
    "Chromium writes JSON across origins and reads the 201",
    "error answers reach the page too: 401 with WWW-Authenticate, 404 with a JSON body",
    "a site that allows only registered origins keeps its answers from an unknown origin",
    "once a client registered with the app origin is enabled, the page may read the site",
];

fn js_dir() -> PathBuf {
    workspace().join("tests").join("js")
}

const SETUP_HINT: &str = "run scripts/setup-js-tests (scripts/test runs it before the tests)";

/// Fails, saying how to fix it, unless Node.js 20+ and `tests/js/node_modules` as locked
/// by `package-lock.json` are there.
fn require_node_and_packages() {
    let version = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("node cannot run ({e}); install Node.js 20 or newer"));
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        major >= 20,
        "node {version} is too old: Node.js 20+ is needed"
    );
    let lock =
        std::fs::read(js_dir().join("package-lock.json")).expect("tests/js/package-lock.json");
    let expected = hex(&sha2::Sha256::digest(&lock));
    let stamp = js_dir().join("node_modules").join(".hearth-lock-sha256");
    let installed = std::fs::read_to_string(&stamp).unwrap_or_default();
    assert_eq!(
        installed.trim(),
        expected,
        "tests/js/node_modules is missing or was not installed from the current \
         package-lock.json: {SETUP_HINT}"
    );
}

/// The Chromium to drive (`HEARTH_CHROMIUM`, default Debian's `/usr/bin/chromium`); fails
/// unless it is there.
fn require_chromium() -> PathBuf {
    let path = std::env::var_os("HEARTH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.is_file(),
        "Chromium is not installed at {}: {SETUP_HINT}",
        path.display()
    );
    path
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The staff user and patients every script signs in with and looks for.
struct Seed {
    user_uuid: String,
    patient_uuid: String,
}

/// A physician who signs in, and three patients on `default` (Ann Smith is the one the
/// scripts pick); one patient on `second`, which must never show up.
async fn seed(app: &TestApp) -> Seed {
    let user_uuid = app.user("default", STAFF, "physician").await;
    let admin = app
        .user_token("default", "admin", "openid api:oemr user/patient.crus")
        .await;
    let (_, patient_uuid) = app.create_patient("default", &admin, "Ann", "Smith").await;
    app.create_patient("default", &admin, "Bob", "Jones").await;
    app.create_patient("default", &admin, "Cara", "Lopez").await;
    let other = app
        .user_token("second", "admin", "openid api:oemr user/patient.crus")
        .await;
    app.create_patient("second", &other, "Dora", "Other").await;
    Seed {
        user_uuid,
        patient_uuid,
    }
}

fn common_env(app: &TestApp, seed: &Seed) -> Vec<(&'static str, String)> {
    vec![
        ("HEARTH_BASE", app.base.clone()),
        ("HEARTH_SITE", "default".to_owned()),
        ("HEARTH_OTHER_SITE", "second".to_owned()),
        ("HEARTH_USERNAME", STAFF.to_owned()),
        ("HEARTH_PASSWORD", PASSWORD.to_owned()),
        ("HEARTH_USER_UUID", seed.user_uuid.clone()),
        ("HEARTH_PATIENT_UUID", seed.patient_uuid.clone()),
        ("HEARTH_PATIENT_NAME", "Ann Smith".to_owned()),
        (
            "HEARTH_OTHER_PATIENT_NAMES",
            "Bob Jones,Cara Lopez".to_owned(),
        ),
        ("HEARTH_FOREIGN_PATIENT_NAME", "Dora Other".to_owned()),
    ]
}

/// Does what a script asks an administrator to do; answers the JSON line to send back.
async fn answer(app: &TestApp, request: &Value) -> Value {
    let Some(enable) = request.get("enable") else {
        return json!({"ok": false, "error": format!("unknown request {request}")});
    };
    let (Some(site), Some(client_id)) = (enable["site"].as_str(), enable["client_id"].as_str())
    else {
        return json!({"ok": false, "error": "enable needs site and client_id"});
    };
    let Some(site) = app.state.sites.get(site).await else {
        return json!({"ok": false, "error": format!("no site {site}")});
    };
    match hearth::oauth::clients::set_enabled(&site, client_id, true).await {
        Ok(true) => json!({"ok": true}),
        Ok(false) => json!({"ok": false, "error": format!("no client {client_id}")}),
        Err(error) => json!({"ok": false, "error": error.to_string()}),
    }
}

/// What a script reported.
#[derive(Debug, Default)]
struct Outcome {
    passed: Vec<String>,
    failed: Vec<String>,
    reported: bool,
}

/// Runs `node script` in `tests/js` with `env`, streaming its output (shown with
/// `--nocapture` or when the test fails), answering its requests, and asserts it exits 0
/// having passed exactly `expected`.
async fn run_script(
    app: &TestApp,
    script: &str,
    env: &[(&'static str, String)],
    expected: &[&str],
) {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(js_dir())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting node {script}: {e}"));
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut outcome = Outcome::default();
    let conversation = async {
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                line = stdout.next_line(), if out_open => match line.expect("reading node's stdout") {
                    None => out_open = false,
                    Some(line) => {
                        println!("[{script}] {line}");
                        if let Some(request) = line.strip_prefix("HEARTH-ASK ") {
                            let request: Value = serde_json::from_str(request).expect("a JSON request");
                            let reply = answer(app, &request).await;
                            stdin.write_all(format!("{reply}\n").as_bytes()).await.expect("answering node");
                            stdin.flush().await.expect("answering node");
                        } else if let Some(result) = line.strip_prefix("HEARTH-RESULT ") {
                            let result: Value = serde_json::from_str(result).expect("a JSON result");
                            let names = |key: &str| -> Vec<String> {
                                result[key].as_array().into_iter().flatten()
                                    .filter_map(|v| v.as_str().map(str::to_owned)).collect()
                            };
                            outcome.passed = names("passed");
                            outcome.failed = names("failed");
                            outcome.reported = true;
                        }
                    }
                },
                line = stderr.next_line(), if err_open => match line.expect("reading node's stderr") {
                    None => err_open = false,
                    Some(line) => println!("[{script} stderr] {line}"),
                },
            }
        }
        child.wait().await.expect("waiting for node")
    };
    let status = tokio::time::timeout(SCRIPT_LIMIT, conversation)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within {SCRIPT_LIMIT:?}"));
    assert!(
        outcome.reported,
        "{script} ended ({status}) without reporting its steps"
    );
    assert!(
        outcome.failed.is_empty(),
        "{script}: failed {:?} (its output is above)",
        outcome.failed
    );
    assert!(status.success(), "{script} exited with {status}");
    assert_eq!(
        outcome.passed, expected,
        "{script} must pass every step, in order"
    );
}

fn artifacts(backend: Backend) -> PathBuf {
    let name = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    workspace()
        .join("target")
        .join("test-artifacts")
        .join("browser")
        .join(name)
}

fn screenshots(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

both! {
    async fn openid_client_discovers_registers_and_runs_every_grant(app) {
        require_node_and_packages();
        let seed = seed(app).await;
        let env = common_env(app, &seed);
        run_script(app, "openid-client-flows.mjs", &env, OPENID_CLIENT_STEPS).await;
    }

    async fn chromium_calls_the_api_from_another_origin_through_cors_preflights(app) {
        require_node_and_packages();
        let chromium = require_chromium();
        let scope = "openid api:oemr user/patient.crus";
        let token = app.user_token("default", "admin", scope).await;
        app.create_patient("default", &token, "Ann", "Smith").await;
        let other = app.user_token("second", "admin", scope).await;
        app.create_patient("second", &other, "Dora", "Other").await;
        let second = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&second, "api.cors_origins", "registered").await.unwrap();
        // Creating Dora read the site's `/apis` settings; a server sees a change once its
        // copy is older than the documented TTL, as after `hearth client settings set`.
        tokio::time::sleep(hearth::api::settings::TTL + std::time::Duration::from_millis(100)).await;
        let env = vec![
            ("HEARTH_BASE", app.base.clone()),
            ("HEARTH_SITE", "default".to_owned()),
            ("HEARTH_OTHER_SITE", "second".to_owned()),
            ("HEARTH_TOKEN", token),
            ("HEARTH_OTHER_TOKEN", other),
            ("HEARTH_CHROMIUM", chromium.display().to_string()),
        ];
        run_script(app, "cors-preflight.mjs", &env, CORS_STEPS).await;
    }

    async fn chromium_signs_in_picks_a_patient_consents_and_gets_a_code(app) {
        require_node_and_packages();
        let chromium = require_chromium();
        let seed = seed(app).await;
        let dir = artifacts(app.backend);
        let mut env = common_env(app, &seed);
        env.push(("HEARTH_ARTIFACTS", dir.display().to_string()));
        env.push(("HEARTH_CHROMIUM", chromium.display().to_string()));
        run_script(app, "browser-flow.mjs", &env, BROWSER_STEPS).await;
        let saved = screenshots(&dir);
        assert_eq!(
            saved,
            [
                "01-sign-in.png",
                "02-sign-in-error.png",
                "03-patient-picker.png",
                "04-patient-search.png",
                "05-consent.png",
                "06-redirect-with-code.png",
            ],
            "a screenshot of each page in {}",
            dir.display()
        );
        for name in &saved {
            let bytes = std::fs::read(dir.join(name)).expect("a screenshot");
            assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 5_000, "{name} is a real PNG");
        }
    }
}
