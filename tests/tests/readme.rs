//! The requests new users copy, run as written apart from the base URL, on both
//! databases:
//!
//! - the README's "First requests": its shell block is read from `README.md`, each
//!   `cargo run --release -- …` line is parsed by the `hearth` command's own parser and
//!   run by the functions the command runs, and each `curl` line is sent with its
//!   headers and body to the test server instead of `https://localhost:9300`;
//! - the requests of OpenEMR's own API documentation (its API_README, restated in
//!   `shared/reference/api-readme-examples.md`): registration, refresh, the password
//!   grant for staff and patients, logout, the standard and portal APIs, and client
//!   credentials. Where a request depends on an OpenEMR defect (a confidential client
//!   refreshing or signing in without its secret) it runs on a site whose
//!   `api.compatibility` is `openemr`, and the same request is shown refused by default.

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clap::Parser as _;
use hearth::cli::{Cli, Command, TokenCommand, UserCommand};
use hearth::crypto::jwt::{Alg, Signer};
use hearth_tests::*;

/// The base URL the README's requests name.
const README_BASE: &str = "https://localhost:9300";

/// The lines of the README's "First requests" shell block, continuation lines joined.
fn first_requests() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let section = readme
        .split("## First requests")
        .nth(1)
        .expect("a First requests section");
    let block = section
        .split("```sh")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a sh block");
    let mut lines = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
}

/// Splits a shell command line into words: single and double quotes group, `$NAME`
/// expands from `vars` (outside single quotes).
fn words(line: &str, vars: &HashMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (Some('\''), c) => word.push(c),
            (_, '$') => {
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                word.push_str(vars.get(&name).map(String::as_str).unwrap_or_default());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The `hearth` arguments after `cargo run --release [-q] --`.
fn hearth_args(words: &[String]) -> Vec<String> {
    let at = words
        .iter()
        .position(|w| w == "--")
        .expect("cargo run … -- ARGS");
    let mut args = vec!["hearth".to_owned()];
    args.extend(words[at + 1..].iter().cloned());
    args
}

both! {
    async fn the_readme_first_requests_work_as_written(app) {
        let mut vars = HashMap::new();
        let mut replies = Vec::new();
        for line in first_requests() {
            if let Some((left, right)) = line.split_once(" | ") {
                // `echo 'PASSWORD' | cargo run --release -- user add …`
                let echoed = words(left, &vars);
                assert_eq!(echoed[0], "echo", "{line}");
                let cli = Cli::try_parse_from(hearth_args(&words(right, &vars))).expect("the README's arguments parse");
                let Command::User(UserCommand::Add(args)) = cli.command else { panic!("{line}") };
                assert!(args.password_stdin);
                let site = app.state.sites.get(&args.site).await.expect("the README's site");
                hearth::cli::add_user(&site, &args, &echoed[1]).await.expect("user add");
            } else if let Some((name, command)) = line.split_once("=$(") {
                // `TOKEN=$(cargo run --release -q -- token issue …)`
                let command = command.strip_suffix(')').expect("$( … )");
                let cli = Cli::try_parse_from(hearth_args(&words(command, &vars))).expect("the README's arguments parse");
                let Command::Token(TokenCommand::Issue(args)) = cli.command else { panic!("{line}") };
                let site = app.state.sites.get(&args.site).await.expect("the README's site");
                let token = hearth::cli::issue_token(&site, &app.base, &args).await.expect("token issue");
                vars.insert(name.trim().to_owned(), token);
            } else {
                let words = words(&line, &vars);
                assert_eq!(words[0], "curl", "{line}");
                let mut headers = Vec::new();
                let mut data = None;
                let mut url = None;
                let mut i = 1;
                while i < words.len() {
                    match words[i].as_str() {
                        "-k" => {}
                        "-H" => {
                            i += 1;
                            headers.push(words[i].clone());
                        }
                        "-d" => {
                            i += 1;
                            data = Some(words[i].clone());
                        }
                        other => url = Some(other.replace(README_BASE, &app.base)),
                    }
                    i += 1;
                }
                let url = url.expect("a URL");
                assert!(url.starts_with(&app.base), "{line}");
                let mut request = match &data {
                    Some(body) => app.client.post(&url).body(body.clone()),
                    None => app.client.get(&url),
                };
                for header in headers {
                    let (name, value) = header.split_once(':').expect("Name: value");
                    request = request.header(name.trim(), value.trim());
                }
                replies.push(Reply::from(request.send().await.expect("the server answers")).await);
            }
        }
        assert_eq!(replies.len(), 2, "the README lists patients, then creates one");
        assert_eq!(replies[0].status, 200, "{}", replies[0].text);
        assert!(replies[0].json["data"].is_array());
        assert_eq!(replies[1].status, 201, "{}", replies[1].text);
        assert!(replies[1].json["data"]["pid"].is_i64() && replies[1].json["data"]["uuid"].is_string(), "{}", replies[1].text);
    }

    async fn the_requests_of_openemrs_api_documentation_work_on_a_compatible_site(app) {
        let site = "second";
        let site_ref = app.state.sites.get(site).await.unwrap();
        hearth::oauth::settings::set(&site_ref, "api.compatibility", "openemr").await.unwrap();
        hearth::oauth::settings::set(&site_ref, "oauth.password_grant", "both").await.unwrap();
        let default_ref = app.state.sites.get("default").await.unwrap();
        hearth::oauth::settings::set(&default_ref, "oauth.password_grant", "both").await.unwrap();
        let oauth = |site: &str, path: &str| format!("{}/oauth2/{site}{path}", app.base);

        // 1. Registration of a confidential client, with the documentation's scopes.
        let registration = json!({
            "application_type": "private",
            "redirect_uris": ["https://client.example.org/callback"],
            "post_logout_redirect_uris": ["https://client.example.org/logout/callback"],
            "client_name": "A Private App",
            "token_endpoint_auth_method": "client_secret_post",
            "contacts": ["me@example.org", "them@example.org"],
            "scope": registration_scope(),
        });
        let mut clients = HashMap::new();
        for name in SITES {
            let reply = app.send(reqwest::Method::POST, &oauth(name, "/registration"), None, Some(registration.clone())).await;
            let expected = if name == site { 200 } else { 201 };
            assert_eq!(reply.status, expected, "registration on {name}: {}", reply.text);
            for key in ["client_id", "client_secret", "registration_access_token", "registration_client_uri", "client_id_issued_at"] {
                assert!(reply.json[key].is_string() || reply.json[key].is_number(), "{key}: {}", reply.text);
            }
            assert_eq!(reply.json["client_secret_expires_at"], 0);
            for key in ["contacts", "application_type", "client_name", "redirect_uris", "token_endpoint_auth_method", "scope"] {
                assert_eq!(reply.json[key], registration[key], "{key} is echoed");
            }
            let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
            assert!(reply.json["registration_client_uri"].as_str().unwrap().starts_with(&oauth(name, "/client/")));
            // user/ scopes: an administrator enables the client, as in OpenEMR.
            let site_ref = app.state.sites.get(name).await.unwrap();
            assert!(hearth::oauth::clients::set_enabled(&site_ref, &client_id, true).await.unwrap());
            clients.insert(name, client_id);
        }

        // 3. The password grant for staff, with the client_id and no secret.
        app.user("default", "admin", "admin").await;
        app.user(site, "admin", "admin").await;
        let staff_form = |client_id: &str| -> Vec<(String, String)> {
            [("grant_type", "password"), ("client_id", client_id), ("scope", &staff_scope()),
             ("user_role", "users"), ("username", "admin"), ("password", "correct horse battery")]
                .iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let refused = post_form(app, &oauth("default", "/token"), &staff_form(&clients["default"])).await;
        assert_eq!(refused.status, 401, "by default a confidential client must authenticate: {}", refused.text);
        assert_eq!(refused.json["error"], "invalid_client");
        let staff = post_form(app, &oauth(site, "/token"), &staff_form(&clients[site])).await;
        assert_eq!(staff.status, 200, "{}", staff.text);
        for key in ["access_token", "refresh_token", "id_token"] {
            assert!(staff.json[key].is_string(), "{key}: {}", staff.text);
        }
        assert_eq!(staff.json["token_type"], "Bearer");

        // 2. Refresh with the client_id and no secret.
        let refresh = |client_id: &str, token: &str| -> Vec<(String, String)> {
            vec![("grant_type".into(), "refresh_token".into()), ("client_id".into(), client_id.into()), ("refresh_token".into(), token.into())]
        };
        let refreshed = post_form(app, &oauth(site, "/token"), &refresh(&clients[site], staff.json["refresh_token"].as_str().unwrap())).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        for key in ["id_token", "access_token", "refresh_token"] {
            assert!(refreshed.json[key].is_string(), "{key}: {}", refreshed.text);
        }
        assert_eq!(refreshed.json["token_type"], "Bearer");
        let expires_in = refreshed.json["expires_in"].as_i64().unwrap();
        assert!((3590..=3600).contains(&expires_in), "an hour: {expires_in}");
        let bogus = post_form(app, &oauth("default", "/token"), &refresh(&clients["default"], "not-a-token")).await;
        assert_eq!(bogus.status, 401, "by default the secret is asked for first: {}", bogus.text);
        let access = refreshed.json["access_token"].as_str().unwrap().to_owned();

        // 6. The standard API, with the documentation's `1` where the route takes a uuid.
        let problems = app.get(&app.api(site, "/api/patient/1/medical_problem"), &access).await;
        assert_eq!(problems.status, 200, "OpenEMR's status on a legacy route: {}", problems.text);
        assert!(problems.json["validationErrors"]["puuid"].is_object(), "{}", problems.text);
        let admin = app.user_token("default", "admin", ALL_USER_SCOPES).await;
        let problems = app.get(&app.api("default", "/api/patient/1/medical_problem"), &admin).await;
        assert_eq!(problems.status, 400, "a real status by default: {}", problems.text);
        let (_, puuid) = app.create_patient(site, &access, "Ann", "Smith").await;
        let problems = app.get(&app.api(site, &format!("/api/patient/{puuid}/medical_problem")), &access).await;
        assert_eq!(problems.status, 200, "{}", problems.text);
        assert_eq!(problems.json["data"], json!([]));

        // 4. The password grant for a patient, with the portal e-mail.
        let site_ref = app.state.sites.get(site).await.unwrap();
        hearth::oauth::accounts::set_portal_login(&site_ref, &puuid, "ann", "ann@example.org", "patient password").await.unwrap();
        let patient_form: Vec<(String, String)> = [
            ("grant_type", "password"), ("client_id", clients[site].as_str()), ("scope", &patient_scope()),
            ("user_role", "patient"), ("username", "ann"), ("password", "patient password"), ("email", "ann@example.org"),
        ].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let patient = post_form(app, &oauth(site, "/token"), &patient_form).await;
        assert_eq!(patient.status, 200, "{}", patient.text);
        let patient_access = patient.json["access_token"].as_str().unwrap();

        // 7. The portal API with the patient's token.
        let me = app.get(&app.api(site, "/portal/patient"), patient_access).await;
        assert_eq!(me.status, 200, "{}", me.text);
        assert_eq!(me.json["data"]["uuid"], puuid.as_str());

        // 5. Logout with the ID token; the client's tokens for that user stop working.
        let no_redirects = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let logout = no_redirects
            .get(oauth(site, "/logout"))
            .query(&[
                ("id_token_hint", refreshed.json["id_token"].as_str().unwrap()),
                ("post_logout_redirect_uri", "https://client.example.org/logout/callback"),
                ("state", "abc123"),
            ])
            .send()
            .await
            .unwrap();
        assert!(logout.status().is_redirection(), "{}", logout.status());
        assert_eq!(logout.headers()["location"], "https://client.example.org/logout/callback?state=abc123");
        let after = app.get(&app.api(site, "/api/patient"), &access).await;
        assert_eq!(after.status, 401, "{}", after.text);

        // 8. Client credentials: an RS384 key registered inline, system scopes, no refresh.
        let (kid, der, jwk) = hearth::crypto::keys::generate(Alg::Rs384).unwrap();
        let signer = Signer::from_pkcs8(&kid, Alg::Rs384, &der).unwrap();
        let service = app.send(reqwest::Method::POST, &oauth(site, "/registration"), None, Some(json!({
            "application_type": "private", "client_name": "Bulk export", "redirect_uris": ["https://client.example.org/none"],
            "token_endpoint_auth_method": "private_key_jwt", "jwks": {"keys": [jwk]},
            "scope": "system/Patient.read system/*.$export system/*.$bulkdata-status system/Group.$export system/Patient.$export",
        }))).await;
        assert_eq!(service.status, 200, "{}", service.text);
        let service_id = service.json["client_id"].as_str().unwrap();
        assert!(hearth::oauth::clients::set_enabled(&site_ref, service_id, true).await.unwrap());
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let assertion = signer
            .sign(&json!({"iss": service_id, "sub": service_id, "aud": oauth(site, "/token"), "exp": now + 60, "jti": "readme-1"}))
            .unwrap();
        let form: Vec<(String, String)> = [
            ("grant_type", "client_credentials"),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", assertion.as_str()),
            ("scope", "system/*.$export system/Patient.read"),
        ].iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let system = post_form(app, &oauth(site, "/token"), &form).await;
        assert_eq!(system.status, 200, "{}", system.text);
        assert!(system.json["access_token"].is_string());
        assert!(system.json.get("refresh_token").is_none(), "{}", system.text);
        assert_eq!(system.json["expires_in"], 300, "OpenEMR's code issues 300 s (its docs say 60)");
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(system.json["access_token"].as_str().unwrap().split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert!(claims["scope"].as_str().unwrap().contains("system/*.$export"), "{claims}");
    }
}

async fn post_form(app: &TestApp, url: &str, pairs: &[(String, String)]) -> Reply {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        body.append_pair(name, value);
    }
    let request = app
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.finish());
    Reply::from(request.send().await.expect("the server answers")).await
}

/// The standard API resources the documentation registers, and whether it asks for
/// `.write` too.
const STANDARD: &[(&str, bool, bool)] = &[
    // (resource, read, write)
    ("allergy", true, true),
    ("appointment", true, true),
    ("dental_issue", true, true),
    ("document", true, true),
    ("drug", true, false),
    ("encounter", true, true),
    ("facility", true, true),
    ("immunization", true, false),
    ("insurance", true, true),
    ("insurance_company", true, true),
    ("insurance_type", true, false),
    ("list", true, false),
    ("medical_problem", true, true),
    ("medication", true, true),
    ("message", false, true),
    ("patient", true, true),
    ("practitioner", true, true),
    ("prescription", true, false),
    ("procedure", true, false),
    ("soap_note", true, true),
    ("surgery", true, true),
    ("vital", true, true),
];

const FHIR_USER_READ: &[&str] = &[
    "AllergyIntolerance",
    "CareTeam",
    "Condition",
    "Coverage",
    "Encounter",
    "Immunization",
    "Location",
    "Medication",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
];
const FHIR_USER_WRITE: &[&str] = &["Organization", "Patient", "Practitioner"];
const FHIR_PATIENT_READ: &[&str] = &[
    "AllergyIntolerance",
    "CareTeam",
    "Condition",
    "Encounter",
    "Immunization",
    "MedicationRequest",
    "Observation",
    "Patient",
    "Procedure",
];

fn standard_scopes() -> Vec<String> {
    let mut scopes = Vec::new();
    for (resource, read, write) in STANDARD {
        if *read {
            scopes.push(format!("user/{resource}.read"));
        }
        if *write {
            scopes.push(format!("user/{resource}.write"));
        }
    }
    scopes.extend(FHIR_USER_READ.iter().map(|t| format!("user/{t}.read")));
    scopes.extend(FHIR_USER_WRITE.iter().map(|t| format!("user/{t}.write")));
    scopes
}

fn patient_scopes() -> Vec<String> {
    let mut scopes = vec![
        "patient/encounter.read".to_owned(),
        "patient/patient.read".to_owned(),
    ];
    scopes.extend(
        FHIR_PATIENT_READ
            .iter()
            .map(|t| format!("patient/{t}.read")),
    );
    scopes
}

/// The registration's scope: OIDC and API scopes, then the staff and patient scopes.
fn registration_scope() -> String {
    let mut scopes: Vec<String> = "openid offline_access api:oemr api:fhir api:port"
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.extend(standard_scopes());
    scopes.extend(patient_scopes());
    scopes.join(" ")
}

/// The staff password grant's scope: the registration's without `api:port` and the
/// `patient/` scopes.
fn staff_scope() -> String {
    let mut scopes: Vec<String> = "openid offline_access api:oemr api:fhir"
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.extend(standard_scopes());
    scopes.join(" ")
}

/// The patient password grant's scope.
fn patient_scope() -> String {
    let mut scopes: Vec<String> = "openid offline_access api:port api:fhir"
        .split(' ')
        .map(str::to_owned)
        .collect();
    scopes.extend(patient_scopes());
    scopes.join(" ")
}

#[test]
fn shell_words_keep_quotes_and_expand_variables() {
    let vars = HashMap::from([("TOKEN".to_owned(), "t0k".to_owned())]);
    assert_eq!(
        words(
            r#"curl -k -H "Authorization: Bearer $TOKEN" -d '{"a":"$b"}' https://x/y"#,
            &vars
        ),
        [
            "curl",
            "-k",
            "-H",
            "Authorization: Bearer t0k",
            "-d",
            r#"{"a":"$b"}"#,
            "https://x/y"
        ]
    );
    assert_eq!(
        first_requests().len(),
        4,
        "user add, token issue, two curl requests"
    );
}
