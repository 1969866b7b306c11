//! The authorization server over HTTP, on both databases: registration, discovery, the
//! token endpoint's grants and errors, introspection, revocation, userinfo, the admin
//! CLI, and isolation between sites.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hearth::crypto::jwt::{Alg, Signer};
use hearth::crypto::keys;
use hearth_tests::*;

const REDIRECT: &str = "https://app.example/callback";
const STAFF_SCOPE: &str = "openid offline_access api:oemr user/patient.rs fhirUser profile";
const SYSTEM_SCOPE: &str = "system/Patient.rs system/*.$export";

/// POSTs a form, optionally with HTTP Basic client credentials.
async fn post_form(
    app: &TestApp,
    url: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> Reply {
    let mut request = app
        .client
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(pairs));
    if let Some((id, secret)) = basic {
        request = request.header(
            "authorization",
            format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))),
        );
    }
    Reply::from(request.send().await.expect("the server answers")).await
}

async fn client_count(app: &TestApp, site: &str) -> i64 {
    app.rows(site, "SELECT COUNT(*) AS n FROM oauth_clients")
        .await[0]["n"]
        .as_i64()
        .expect("a count")
}

async fn set_setting(app: &TestApp, site: &str, name: &str, value: &str) {
    let site = app.state.sites.get(site).await.expect("site");
    hearth::oauth::settings::set(&site, name, value)
        .await
        .expect("setting");
}

/// A confidential staff client (enabled): answers (client_id, client_secret).
async fn staff_client(app: &TestApp, site: &str) -> (String, String) {
    let reply = register(
        app,
        site,
        json!({"application_type": "private", "client_name": "Staff app", "redirect_uris": [REDIRECT], "scope": STAFF_SCOPE}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.json["client_id"]
        .as_str()
        .expect("client_id")
        .to_owned();
    enable(app, site, &id).await;
    (
        id,
        reply.json["client_secret"]
            .as_str()
            .expect("secret")
            .to_owned(),
    )
}

/// A backend-service key pair.
struct ServiceKey {
    signer: Signer,
    jwk: Value,
}

fn service_key(alg: Alg) -> ServiceKey {
    let (kid, der, jwk) = keys::generate(alg).expect("a key");
    ServiceKey {
        signer: Signer::from_pkcs8(&kid, alg, &der).expect("a signer"),
        jwk,
    }
}

/// A backend-service client with `keys` registered inline, enabled.
async fn service_client(app: &TestApp, site: &str, keys: &[&ServiceKey]) -> String {
    let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
    let reply = register(
        app,
        site,
        json!({"application_type": "private", "client_name": "Bulk", "redirect_uris": [REDIRECT],
               "token_endpoint_auth_method": "private_key_jwt", "scope": SYSTEM_SCOPE,
               "jwks": {"keys": jwks}}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(
        reply.json.get("client_secret").is_none(),
        "private_key_jwt clients get no secret"
    );
    let id = reply.json["client_id"]
        .as_str()
        .expect("client_id")
        .to_owned();
    enable(app, site, &id).await;
    id
}

fn assertion(key: &ServiceKey, client_id: &str, aud: &str, exp_in: i64, jti: &str) -> String {
    key.signer
        .sign(&json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now() + exp_in, "jti": jti}))
        .expect("signing")
}

async fn client_credentials(app: &TestApp, site: &str, assertion: &str, scope: &str) -> Reply {
    post_form(
        app,
        &oauth(app, site, "/token"),
        &[
            ("grant_type", "client_credentials"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
            ("scope", scope),
        ],
        None,
    )
    .await
}

async fn password_grant(
    app: &TestApp,
    site: &str,
    client: &(String, String),
    username: &str,
    password: &str,
    scope: &str,
) -> Reply {
    post_form(
        app,
        &oauth(app, site, "/token"),
        &[
            ("grant_type", "password"),
            ("user_role", "users"),
            ("username", username),
            ("password", password),
            ("scope", scope),
        ],
        Some((&client.0, &client.1)),
    )
    .await
}

fn assert_oauth_error(reply: &Reply, status: u16, error: &str) {
    assert_eq!(reply.status, status, "{}", reply.text);
    assert_eq!(reply.json["error"], error, "{}", reply.text);
    assert!(
        reply.json["error_description"].is_string(),
        "{}",
        reply.text
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
}

both! {
    async fn a_confidential_client_registers_and_reads_its_registration_back(app) {
        let reply = register(app, "default", json!({
            "application_type": "private", "client_name": "Clinic app",
            "redirect_uris": [REDIRECT], "post_logout_redirect_uris": ["https://app.example/bye"],
            "contacts": ["ops@app.example"], "scope": "openid api:oemr user/patient.rs",
            "token_endpoint_auth_method": "client_secret_post"
        })).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let body = &reply.json;
        let client_id = body["client_id"].as_str().unwrap();
        let secret = body["client_secret"].as_str().unwrap();
        assert!(client_id.len() >= 40 && secret.len() >= 80, "{body}");
        assert_eq!(body["client_secret_expires_at"], 0);
        assert!((body["client_id_issued_at"].as_i64().unwrap() - now()).abs() < 60);
        assert_eq!(body["redirect_uris"], json!([REDIRECT]));
        assert_eq!(body["post_logout_redirect_uris"], json!(["https://app.example/bye"]));
        assert_eq!(body["contacts"], json!(["ops@app.example"]));
        assert_eq!(body["scope"], "openid api:oemr user/patient.rs");
        assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
        assert_eq!(body["application_type"], "private");
        let uri = body["registration_client_uri"].as_str().unwrap();
        assert!(uri.starts_with(&format!("{}/oauth2/default/client/", app.base)), "{uri}");

        let stored = app.rows("default", "SELECT client_secret_hash, enabled FROM oauth_clients").await;
        assert_eq!(stored.len(), 1);
        assert_ne!(stored[0]["client_secret_hash"], secret, "the secret is stored hashed");
        assert_eq!(stored[0]["enabled"], 0, "user/ scopes wait for an administrator");

        let token = body["registration_access_token"].as_str().unwrap();
        let read = app.get(uri, token).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.json["client_id"], client_id);
        assert!(read.json.get("client_secret").is_none());
        assert_eq!(app.get(uri, "wrong").await.status, 401);
        assert_eq!(app.get(&format!("{}/oauth2/second/client/{}", app.base, uri.rsplit('/').next().unwrap()), token).await.status, 401);
    }

    async fn a_public_client_gets_no_secret_and_starts_enabled(app) {
        let reply = register(app, "default", json!({
            "client_name": "Patient app", "redirect_uris": ["com.example.app:/cb"],
            "scope": "openid offline_access api:port patient/patient.s"
        })).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert!(reply.json.get("client_secret").is_none());
        assert_eq!(reply.json["token_endpoint_auth_method"], "none");
        assert_eq!(reply.json["client_role"], "patient");
        assert_eq!(app.rows("default", "SELECT enabled FROM oauth_clients").await[0]["enabled"], 1);

        let reply = register(app, "default", json!({"redirect_uris": [REDIRECT]})).await;
        assert_eq!(reply.status, 201);
        assert_eq!(reply.json["scope"], "openid email phone address api:oemr api:fhir api:port", "OpenEMR's default scope");
    }

    async fn bad_registrations_are_refused_precisely_and_store_nothing(app) {
        let url = oauth(app, "default", "/registration");
        let reply = Reply::from(app.client.post(&url).header("content-type", "text/plain").body("{}").send().await.unwrap()).await;
        assert_oauth_error(&reply, 400, "invalid_client_metadata");
        let reply = Reply::from(app.client.post(&url).header("content-type", "application/json").body("{not json").send().await.unwrap()).await;
        assert_oauth_error(&reply, 400, "invalid_client_metadata");
        assert!(reply.json["error_description"].as_str().unwrap().contains("JSON"));
        let cases = [
            (json!([REDIRECT]), "invalid_client_metadata"),
            (json!({"client_name": "x"}), "invalid_redirect_uri"),
            (json!({"redirect_uris": []}), "invalid_redirect_uri"),
            (json!({"redirect_uris": "https://a.example/cb"}), "invalid_client_metadata"),
            (json!({"redirect_uris": ["https://a.example/cb#x"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": ["/relative"]}), "invalid_redirect_uri"),
            (json!({"redirect_uris": [REDIRECT], "scope": "openid user/nothing.rs"}), "invalid_scope"),
            (json!({"redirect_uris": [REDIRECT], "scope": "openid admin"}), "invalid_scope"),
            (json!({"redirect_uris": [REDIRECT], "scope": "openid user/patient.rs"}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "contacts": "me@x.example"}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "client_name": 7}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "application_type": "secret"}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "colour": "blue"}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "application_type": "private", "token_endpoint_auth_method": "none"}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "application_type": "private", "scope": SYSTEM_SCOPE}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "application_type": "private", "jwks": {"keys": [{"kty": "oct", "k": "x"}]}}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "application_type": "private", "jwks": {"keys": []}, "jwks_uri": "https://a.example/jwks"}), "invalid_client_metadata"),
            (json!({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}), "invalid_client_metadata"),
        ];
        for (body, error) in cases {
            let reply = register(app, "default", body.clone()).await;
            assert_eq!(reply.status, 400, "{body}: {}", reply.text);
            assert_eq!(reply.json["error"], error, "{body}: {}", reply.text);
        }
        assert_eq!(client_count(app, "default").await, 0, "nothing was stored");
    }

    async fn registration_can_require_an_initial_access_token(app) {
        let site = app.state.sites.get("default").await.unwrap();
        hearth::oauth::settings::set_raw(&site, hearth::oauth::settings::INITIAL_TOKEN, Some(&hearth::oauth::sha256_hex("let-me-in"))).await.unwrap();
        set_setting(app, "default", "oauth.registration_requires_token", "on").await;
        let body = json!({"redirect_uris": [REDIRECT]});
        let url = oauth(app, "default", "/registration");
        let reply = register(app, "default", body.clone()).await;
        assert_oauth_error(&reply, 401, "invalid_token");
        assert!(reply.header("www-authenticate").unwrap().starts_with("Bearer"));
        assert_eq!(app.post(&url, "wrong", body.clone()).await.status, 401);
        assert_eq!(client_count(app, "default").await, 0);
        assert_eq!(app.post(&url, "let-me-in", body.clone()).await.status, 201);
        assert_eq!(register(app, "second", body).await.status, 201, "the other site is open");
    }

    async fn discovery_documents_advertise_what_is_supported_from_the_public_url(app) {
        let reply = app.send(reqwest::Method::GET, &oauth(app, "default", "/.well-known/openid-configuration"), None, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let doc = &reply.json;
        let issuer = format!("{}/oauth2/default", app.base);
        assert_eq!(doc["issuer"], issuer.as_str());
        assert_eq!(doc["token_endpoint"], format!("{issuer}/token"));
        assert_eq!(doc["jwks_uri"], format!("{issuer}/jwk"), "OpenEMR's path");
        assert_eq!(doc["registration_endpoint"], format!("{issuer}/registration"));
        assert_eq!(doc["introspection_endpoint"], format!("{issuer}/introspect"));
        assert_eq!(doc["revocation_endpoint"], format!("{issuer}/revoke"));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_endpoint"], format!("{issuer}/authorize"));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(doc["id_token_signing_alg_values_supported"], json!(["RS256"]));
        assert_eq!(doc["token_endpoint_auth_signing_alg_values_supported"], json!(["RS384", "ES384"]));
        let grants = doc["grant_types_supported"].as_array().unwrap();
        assert!(grants.contains(&json!("client_credentials")));
        assert!(grants.contains(&json!("authorization_code")));
        assert!(!grants.contains(&json!("password")), "the password grant is off by default");
        assert!(doc["scopes_supported"].as_array().unwrap().contains(&json!("openid")));
        let jwks = app.send(reqwest::Method::GET, doc["jwks_uri"].as_str().unwrap(), None, None).await;
        assert_eq!(jwks.json["keys"][0]["alg"], "RS256");

        set_setting(app, "default", "oauth.password_grant", "users").await;
        let reply = app.send(reqwest::Method::GET, &oauth(app, "default", "/.well-known/openid-configuration"), None, None).await;
        assert!(reply.json["grant_types_supported"].as_array().unwrap().contains(&json!("password")));

        let reply = app.client.get(app.api("second", "/fhir/.well-known/smart-configuration")).header("accept", "text/html").header("origin", "https://app.example").send().await.unwrap();
        let reply = Reply::from(reply).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("content-type"), Some("application/json"), "JSON whatever Accept says");
        assert_eq!(reply.header("access-control-allow-origin"), Some("*"));
        let smart = &reply.json;
        assert_eq!(smart["token_endpoint"], format!("{}/oauth2/second/token", app.base));
        assert_eq!(smart["code_challenge_methods_supported"], json!(["S256"]));
        let capabilities = smart["capabilities"].as_array().unwrap();
        for capability in ["client-confidential-asymmetric", "launch-standalone", "launch-ehr", "client-public", "context-standalone-patient", "sso-openid-connect"] {
            assert!(capabilities.contains(&json!(capability)), "{capability}");
        }
        assert_eq!(smart["authorization_endpoint"], format!("{}/oauth2/second/authorize", app.base));
        assert!(smart["scopes_supported"][0].is_string(), "a flat list");

        let reply = app.send(reqwest::Method::GET, &oauth(app, "nosuch", "/.well-known/openid-configuration"), None, None).await;
        assert_eq!(reply.status, 404);
        assert_eq!(reply.json["error"], "unknown_site");
    }

    async fn cors_preflight_is_answered_on_the_token_endpoint(app) {
        let reply = app.client.request(reqwest::Method::OPTIONS, oauth(app, "default", "/token"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send().await.unwrap();
        assert!(reply.status().is_success(), "{}", reply.status());
        assert_eq!(reply.headers().get("access-control-allow-origin").unwrap(), "*");
        assert!(reply.headers().get("access-control-allow-methods").unwrap().to_str().unwrap().contains("POST"));
    }

    async fn backend_services_get_system_tokens_with_es384_and_rs384_assertions(app) {
        let es = service_key(Alg::Es384);
        let rs = service_key(Alg::Rs384);
        let client_id = service_client(app, "default", &[&es, &rs]).await;
        let aud = oauth(app, "default", "/token");
        for (key, jti) in [(&es, "es-1"), (&rs, "rs-1")] {
            let reply = client_credentials(app, "default", &assertion(key, &client_id, &aud, 240, jti), "system/Patient.rs").await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert_eq!(reply.json["token_type"], "Bearer");
            assert_eq!(reply.json["expires_in"], 300);
            assert_eq!(reply.json["scope"], "system/Patient.rs");
            assert!(reply.json.get("refresh_token").is_none());
            assert!(reply.json.get("id_token").is_none());
            let token = reply.json["access_token"].as_str().unwrap();
            let claims = claims(token);
            assert_eq!(claims["role"], "system");
            assert_eq!(claims["client_id"], client_id.as_str());
            // The resource server knows the token: a system token is refused on the
            // standard API for its role, not for its validity.
            let api = app.get(&app.api("default", "/api/patient"), token).await;
            assert_eq!(api.status, 403, "{}", api.text);
        }
        let reply = client_credentials(app, "default", &assertion(&es, &client_id, &aud, 240, "es-2"), "").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["scope"], SYSTEM_SCOPE, "no scope: every registered system scope");
    }

    async fn bad_client_assertions_are_invalid_client(app) {
        let key = service_key(Alg::Es384);
        let stranger = service_key(Alg::Es384);
        let client_id = service_client(app, "default", &[&key]).await;
        let aud = oauth(app, "default", "/token");
        let now = now();
        let sign = |claims: Value| key.signer.sign(&claims).unwrap();
        let cases = [
            ("wrong audience", assertion(&key, &client_id, "https://elsewhere.example/token", 200, "a1")),
            ("other site's token URL", assertion(&key, &client_id, &oauth(app, "second", "/token"), 200, "a2")),
            ("expired", assertion(&key, &client_id, &aud, -30, "a3")),
            ("more than five minutes", assertion(&key, &client_id, &aud, 900, "a4")),
            ("unregistered key", assertion(&stranger, &client_id, &aud, 200, "a5")),
            ("iss differs", sign(json!({"iss": "someone", "sub": client_id, "aud": aud, "exp": now + 200, "jti": "a6"}))),
            ("no jti", sign(json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 200}))),
            ("no exp", sign(json!({"iss": client_id, "sub": client_id, "aud": aud, "jti": "a7"}))),
            ("unknown client", sign(json!({"iss": "nobody", "sub": "nobody", "aud": aud, "exp": now + 200, "jti": "a8"}))),
            ("not a JWT", "garbage".to_owned()),
        ];
        for (why, jwt) in cases {
            let reply = client_credentials(app, "default", &jwt, "system/Patient.rs").await;
            assert_eq!(reply.status, 401, "{why}: {}", reply.text);
            assert_eq!(reply.json["error"], "invalid_client", "{why}: {}", reply.text);
        }
        // RS256 is not an assertion algorithm; a key without kid in the header is refused.
        let rs256 = {
            let (kid, der, _) = keys::generate(Alg::Rs256).unwrap();
            Signer::from_pkcs8(&kid, Alg::Rs256, &der).unwrap()
        };
        let jwt = rs256.sign(&json!({"iss": client_id, "sub": client_id, "aud": aud, "exp": now + 200, "jti": "a9"})).unwrap();
        assert_eq!(client_credentials(app, "default", &jwt, "system/Patient.rs").await.json["error"], "invalid_client");

        let good = assertion(&key, &client_id, &aud, 200, "once");
        assert_eq!(client_credentials(app, "default", &good, "system/Patient.rs").await.status, 200);
        let replay = client_credentials(app, "default", &good, "system/Patient.rs").await;
        assert_oauth_error(&replay, 401, "invalid_client");
        assert!(replay.json["error_description"].as_str().unwrap().contains("jti"), "{}", replay.text);
        // Requests racing with one assertion: the jti's key decides, one token is issued.
        let raced = assertion(&key, &client_id, &aud, 200, "raced");
        let ask = || client_credentials(app, "default", &raced, "system/Patient.rs");
        let answers = tokio::join!(ask(), ask(), ask(), ask(), ask(), ask());
        let answers = [answers.0, answers.1, answers.2, answers.3, answers.4, answers.5];
        assert_eq!(answers.iter().filter(|a| a.status == 200).count(), 1);
        for refused in answers.iter().filter(|a| a.status != 200) {
            assert_oauth_error(refused, 401, "invalid_client");
        }

        let wrong_type = post_form(app, &aud, &[("grant_type", "client_credentials"), ("client_assertion_type", "urn:other"), ("client_assertion", &assertion(&key, &client_id, &aud, 200, "t1"))], None).await;
        assert_oauth_error(&wrong_type, 401, "invalid_client");
        let user_scope = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "s1"), "user/patient.rs").await;
        assert_oauth_error(&user_scope, 400, "invalid_scope");
        // A verified assertion's jti is spent even when the request fails for another reason.
        let again = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "s1"), "system/Patient.rs").await;
        assert_oauth_error(&again, 401, "invalid_client");
        let catalogue = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "s2"), "system/Nothing.rs").await;
        assert_oauth_error(&catalogue, 400, "invalid_scope");

        let (staff, secret) = staff_client(app, "default").await;
        let reply = post_form(app, &aud, &[("grant_type", "client_credentials"), ("scope", "system/Patient.rs")], Some((&staff, &secret))).await;
        assert_oauth_error(&reply, 400, "unauthorized_client");
        assert_eq!(app.rows("default", "SELECT COUNT(*) AS n FROM api_token").await[0]["n"], 2, "only the good assertion and one of the raced ones issued a token");
    }

    // openid-client (a certified relying party) names the issuer as the assertion's
    // audience, which RFC 7523 §3 allows; it was refused while only the token URL passed.
    async fn a_client_assertion_may_name_the_issuer_as_its_audience(app) {
        let key = service_key(Alg::Rs384);
        let client_id = service_client(app, "default", &[&key]).await;
        let issuer = oauth(app, "default", "");
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &issuer, 60, "iss-1"), "system/Patient.rs").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let listed = key.signer.sign(&json!({"iss": client_id, "sub": client_id, "aud": ["https://other.example", issuer], "exp": now() + 60, "jti": "iss-2"})).unwrap();
        assert_eq!(client_credentials(app, "default", &listed, "system/Patient.rs").await.status, 200, "in an aud array too");
        let introspected = post_form(app, &oauth(app, "default", "/introspect"), &[
            ("token", reply.json["access_token"].as_str().unwrap()),
            ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
            ("client_assertion", &assertion(&key, &client_id, &issuer, 60, "iss-3")),
        ], None).await;
        assert_eq!(introspected.status, 200, "{}", introspected.text);
        assert_eq!(introspected.json["active"], true);

        for (why, aud) in [
            ("the other site's issuer", oauth(app, "second", "")),
            ("the issuer with a trailing slash", format!("{issuer}/")),
            ("the server's origin", app.base.clone()),
        ] {
            let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 60, &format!("bad-{why}")), "system/Patient.rs").await;
            assert_oauth_error(&reply, 401, "invalid_client");
            assert!(reply.json["error_description"].as_str().unwrap().contains("aud"), "{why}: {}", reply.text);
        }
    }

    async fn disabled_clients_are_refused_until_an_administrator_enables_them(app) {
        let key = service_key(Alg::Es384);
        let reply = register(app, "default", json!({"application_type": "private", "redirect_uris": [REDIRECT], "scope": SYSTEM_SCOPE, "jwks": {"keys": [key.jwk.clone()]}})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.json["token_endpoint_auth_method"], "private_key_jwt");
        let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
        let aud = oauth(app, "default", "/token");
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "d1"), "system/Patient.rs").await;
        assert_oauth_error(&reply, 401, "invalid_client");
        assert!(reply.json["error_description"].as_str().unwrap().contains("enable"));

        use hearth::cli::client::{ClientCommand, run_client};
        run_client(&app.data_dir, ClientCommand::Enable { site: "default".into(), client_id: client_id.clone() }).await.unwrap();
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "d2"), "system/Patient.rs").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        run_client(&app.data_dir, ClientCommand::Disable { site: "default".into(), client_id: client_id.clone() }).await.unwrap();
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "d3"), "system/Patient.rs").await;
        assert_oauth_error(&reply, 401, "invalid_client");
        assert!(run_client(&app.data_dir, ClientCommand::Enable { site: "second".into(), client_id: client_id.clone() }).await.is_err(), "the client is not the other site's");
        run_client(&app.data_dir, ClientCommand::List { site: "default".into() }).await.unwrap();
        run_client(&app.data_dir, ClientCommand::Setting { site: "default".into(), name: Some("oauth.password_grant".into()), value: Some("both".into()) }).await.unwrap();
        let site = app.state.sites.get("default").await.unwrap();
        assert_eq!(hearth::oauth::settings::get(&site, "oauth.password_grant").await.unwrap(), "both");
        assert!(run_client(&app.data_dir, ClientCommand::Setting { site: "default".into(), name: Some("oauth.password_grant".into()), value: Some("maybe".into()) }).await.is_err());
        assert!(run_client(&app.data_dir, ClientCommand::Setting { site: "default".into(), name: Some("oauth.nothing".into()), value: Some("1".into()) }).await.is_err());
    }

    async fn the_token_endpoint_refuses_malformed_requests(app) {
        let client = staff_client(app, "default").await;
        let url = oauth(app, "default", "/token");
        let reply = app.post(&url, "x", json!({"grant_type": "password"})).await;
        assert_oauth_error(&reply, 400, "invalid_request");
        let reply = post_form(app, &url, &[("scope", "openid")], Some((&client.0, &client.1))).await;
        assert_oauth_error(&reply, 400, "invalid_request");
        let reply = post_form(app, &url, &[("grant_type", "implicit")], Some((&client.0, &client.1))).await;
        assert_oauth_error(&reply, 400, "unsupported_grant_type");
        let reply = post_form(app, &url, &[("grant_type", "refresh_token"), ("grant_type", "password")], Some((&client.0, &client.1))).await;
        assert_oauth_error(&reply, 400, "invalid_request");
        let reply = post_form(app, &url, &[("grant_type", "refresh_token"), ("refresh_token", "x")], Some(("nobody", "nothing"))).await;
        assert_oauth_error(&reply, 401, "invalid_client");
        assert!(reply.header("www-authenticate").is_some());
        let reply = post_form(app, &url, &[("grant_type", "refresh_token"), ("refresh_token", "x")], Some((&client.0, "wrong"))).await;
        assert_oauth_error(&reply, 401, "invalid_client");
        let reply = post_form(app, &url, &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &client.0)], None).await;
        assert_oauth_error(&reply, 401, "invalid_client");
        let bad_basic = Reply::from(app.client.post(&url).header("content-type", "application/x-www-form-urlencoded").header("authorization", "Basic !!!").body("grant_type=refresh_token&refresh_token=x").send().await.unwrap()).await;
        assert_oauth_error(&bad_basic, 401, "invalid_client");
        let reply = post_form(app, &url, &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_id", &client.0), ("client_secret", &client.1)], None).await;
        assert_oauth_error(&reply, 400, "invalid_grant");
        let reply = post_form(app, &url, &[("grant_type", "refresh_token"), ("refresh_token", "x"), ("client_secret", &client.1)], Some((&client.0, &client.1))).await;
        assert_oauth_error(&reply, 400, "invalid_request");
        assert_eq!(app.rows("default", "SELECT COUNT(*) AS n FROM api_token").await[0]["n"], 0);
    }

    async fn the_password_grant_is_off_by_default_and_signs_in_staff_when_enabled(app) {
        let client = staff_client(app, "default").await;
        let uuid = app.user("default", "doc", "physician").await;
        let reply = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        assert_oauth_error(&reply, 400, "unsupported_grant_type");

        set_setting(app, "default", "oauth.password_grant", "users").await;
        let reply = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        let body = &reply.json;
        assert_eq!(body["scope"], STAFF_SCOPE);
        assert_eq!(body["expires_in"], 3600);
        assert!(body["refresh_token"].is_string(), "offline_access gives a refresh token");
        let id_token = claims(body["id_token"].as_str().unwrap());
        assert_eq!(id_token["iss"], format!("{}/oauth2/default", app.base));
        assert_eq!(id_token["aud"], client.0.as_str());
        assert_eq!(id_token["sub"], uuid.as_str());
        assert_eq!(id_token["fhirUser"], format!("{}/apis/default/fhir/Person/{uuid}", app.base));
        assert_eq!(id_token["preferred_username"], "doc");
        let token = body["access_token"].as_str().unwrap();
        let api = app.get(&app.api("default", "/api/patient"), token).await;
        assert_eq!(api.status, 200, "the resource server accepts the token: {}", api.text);

        let userinfo = app.get(&oauth(app, "default", "/userinfo"), token).await;
        assert_eq!(userinfo.status, 200, "{}", userinfo.text);
        assert_eq!(userinfo.json["sub"], uuid.as_str());
        assert_eq!(userinfo.json["family_name"], "doc");
        assert_eq!(app.get(&oauth(app, "second", "/userinfo"), token).await.status, 401);

        let reply = password_grant(app, "default", &client, "doc", "correct horse battery", "openid api:oemr user/patient.rs").await;
        assert!(reply.json.get("refresh_token").is_none(), "no offline_access, no refresh token");
        let reply = password_grant(app, "default", &client, "doc", "correct horse battery", "openid user/nothing.rs").await;
        assert_oauth_error(&reply, 400, "invalid_scope");
        let reply = password_grant(app, "default", &client, "doc", "correct horse battery", "openid user/encounter.rs").await;
        assert_eq!(reply.json["scope"], "openid", "scopes the client did not register are dropped");
        let reply = password_grant(app, "default", &client, "doc", "correct horse battery", "user/encounter.rs").await;
        assert_oauth_error(&reply, 400, "invalid_scope");
        let reply = post_form(app, &oauth(app, "default", "/token"), &[("grant_type", "password"), ("user_role", "patient"), ("username", "doc"), ("password", "x"), ("email", "a@b.c")], Some((&client.0, &client.1))).await;
        assert_oauth_error(&reply, 400, "unsupported_grant_type");
    }

    async fn failed_sign_ins_look_alike_and_lock_the_account(app) {
        let client = staff_client(app, "default").await;
        app.user("default", "doc", "physician").await;
        set_setting(app, "default", "oauth.password_grant", "users").await;
        let wrong = password_grant(app, "default", &client, "doc", "wrong password", STAFF_SCOPE).await;
        let unknown = password_grant(app, "default", &client, "nobody", "wrong password", STAFF_SCOPE).await;
        assert_oauth_error(&wrong, 400, "invalid_grant");
        assert_eq!(wrong.text, unknown.text, "no account enumeration");
        for _ in 0..4 {
            assert_eq!(password_grant(app, "default", &client, "doc", "wrong password", STAFF_SCOPE).await.status, 400);
        }
        let locked = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        assert_oauth_error(&locked, 400, "invalid_grant");
        assert!(locked.json["error_description"].as_str().unwrap().contains("Too many"), "{}", locked.text);
        app.user("default", "nurse", "clinician").await;
        assert_eq!(password_grant(app, "default", &client, "nurse", "correct horse battery", STAFF_SCOPE).await.status, 200, "other accounts are not locked");
    }

    async fn patients_sign_in_with_the_password_grant_and_reach_the_portal(app) {
        let staff = app.user_token("default", "admin", "openid api:oemr user/patient.crus").await;
        let (_, puuid) = app.create_patient("default", &staff, "Ann", "Smith").await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::oauth::accounts::set_portal_login(&site, &puuid, "ann", "ann@example.org", "patient password").await.unwrap();
        set_setting(app, "default", "oauth.password_grant", "patients").await;
        let public = register(app, "default", json!({"redirect_uris": [REDIRECT], "scope": "openid offline_access api:port patient/patient.s fhirUser"})).await;
        let client_id = public.json["client_id"].as_str().unwrap().to_owned();
        let url = oauth(app, "default", "/token");
        let grant = |email: &'static str, password: &'static str| {
            let client_id = client_id.clone();
            let url = url.clone();
            async move {
                post_form(app, &url, &[("grant_type", "password"), ("user_role", "patient"), ("username", "ann"), ("email", email), ("password", password), ("client_id", &client_id), ("scope", "openid offline_access api:port patient/patient.s fhirUser")], None).await
            }
        };
        assert_oauth_error(&grant("other@example.org", "patient password").await, 400, "invalid_grant");
        let reply = grant("ANN@example.org", "patient password").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["patient"], puuid.as_str());
        assert_eq!(claims(reply.json["id_token"].as_str().unwrap())["fhirUser"], format!("{}/apis/default/fhir/Patient/{puuid}", app.base));
        let token = reply.json["access_token"].as_str().unwrap();
        let portal = app.get(&app.api("default", "/portal/patient"), token).await;
        assert_eq!(portal.status, 200, "{}", portal.text);
        assert_eq!(portal.json["data"]["uuid"], puuid.as_str());
        let missing = post_form(app, &url, &[("grant_type", "password"), ("user_role", "patient"), ("username", "ann"), ("password", "patient password"), ("client_id", &client_id)], None).await;
        assert_oauth_error(&missing, 400, "invalid_request");
    }

    async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_grant(app) {
        let client = staff_client(app, "default").await;
        app.user("default", "doc", "physician").await;
        set_setting(app, "default", "oauth.password_grant", "users").await;
        let first = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        let old_refresh = first.json["refresh_token"].as_str().unwrap().to_owned();
        let url = oauth(app, "default", "/token");
        let refresh = |token: String, scope: Option<&'static str>| {
            let url = url.clone();
            let client = client.clone();
            async move {
                let mut pairs = vec![("grant_type", "refresh_token"), ("refresh_token", token.as_str())];
                if let Some(scope) = scope {
                    pairs.push(("scope", scope));
                }
                post_form(app, &url, &pairs, Some((&client.0, &client.1))).await
            }
        };
        let widened = refresh(old_refresh.clone(), Some("openid offline_access user/patient.crus")).await;
        assert_oauth_error(&widened, 400, "invalid_scope");
        let second = refresh(old_refresh.clone(), Some("openid offline_access api:oemr user/patient.rs")).await;
        assert_eq!(second.status, 200, "{}", second.text);
        assert_eq!(second.json["scope"], "openid offline_access api:oemr user/patient.rs");
        let new_refresh = second.json["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(new_refresh, old_refresh, "rotation");
        let new_access = second.json["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&new_access)["username"], "doc");
        assert_eq!(app.get(&app.api("default", "/api/patient"), &new_access).await.status, 200);

        let other = staff_client(app, "default").await;
        let stolen = post_form(app, &url, &[("grant_type", "refresh_token"), ("refresh_token", &new_refresh)], Some((&other.0, &other.1))).await;
        assert_oauth_error(&stolen, 400, "invalid_grant");

        let reuse = refresh(old_refresh.clone(), None).await;
        assert_oauth_error(&reuse, 400, "invalid_grant");
        let api = app.get(&app.api("default", "/api/patient"), &new_access).await;
        assert_eq!(api.status, 401, "reuse revoked the grant's access tokens at once");
        let first_access = first.json["access_token"].as_str().unwrap();
        assert_eq!(app.get(&app.api("default", "/api/patient"), first_access).await.status, 401);
        assert_oauth_error(&refresh(new_refresh, None).await, 400, "invalid_grant");

        let third = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE oauth_refresh_tokens SET expires_at = 1 WHERE used = 0").execute(pool).await.unwrap();
        });
        let expired = refresh(third.json["refresh_token"].as_str().unwrap().to_owned(), None).await;
        assert_oauth_error(&expired, 400, "invalid_grant");
        assert!(expired.json["error_description"].as_str().unwrap().contains("expired"));
    }

    async fn introspection_tells_a_client_about_its_own_tokens_only(app) {
        let client = staff_client(app, "default").await;
        let other = staff_client(app, "default").await;
        app.user("default", "doc", "physician").await;
        set_setting(app, "default", "oauth.password_grant", "users").await;
        let grant = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        let access = grant.json["access_token"].as_str().unwrap();
        let refresh = grant.json["refresh_token"].as_str().unwrap();
        let url = oauth(app, "default", "/introspect");
        let reply = post_form(app, &url, &[("token", access)], Some((&client.0, &client.1))).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["active"], true);
        assert_eq!(reply.json["scope"], STAFF_SCOPE);
        assert_eq!(reply.json["client_id"], client.0.as_str());
        assert_eq!(reply.json["username"], "doc");
        assert_eq!(reply.json["token_type"], "Bearer");
        assert!(reply.json["exp"].as_i64().unwrap() > now());
        let reply = post_form(app, &url, &[("token", refresh), ("token_type_hint", "refresh_token")], Some((&client.0, &client.1))).await;
        assert_eq!(reply.json["active"], true, "{}", reply.text);
        for token in [access, refresh, "garbage", "a.b.c"] {
            let reply = post_form(app, &url, &[("token", token)], Some((&other.0, &other.1))).await;
            assert_eq!(reply.status, 200);
            assert_eq!(reply.json, json!({"active": false}), "nothing leaks: {}", reply.text);
        }
        assert_oauth_error(&post_form(app, &url, &[("token", access)], None).await, 401, "invalid_client");
        assert_oauth_error(&post_form(app, &url, &[("token", access)], Some((&client.0, "wrong"))).await, 401, "invalid_client");
        assert_oauth_error(&post_form(app, &url, &[], Some((&client.0, &client.1))).await, 400, "invalid_request");
        assert_oauth_error(&post_form(app, &url, &[("token", access), ("token_type_hint", "id_token")], Some((&client.0, &client.1))).await, 400, "unsupported_token_type");
    }

    async fn revocation_takes_effect_on_the_resource_server_at_once(app) {
        let client = staff_client(app, "default").await;
        let other = staff_client(app, "default").await;
        app.user("default", "doc", "physician").await;
        set_setting(app, "default", "oauth.password_grant", "users").await;
        let patients = app.api("default", "/api/patient");
        let url = oauth(app, "default", "/revoke");

        let grant = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        let access = grant.json["access_token"].as_str().unwrap();
        let refresh = grant.json["refresh_token"].as_str().unwrap();
        assert_eq!(app.get(&patients, access).await.status, 200);
        let reply = post_form(app, &url, &[("token", refresh)], Some((&other.0, &other.1))).await;
        assert_eq!(reply.status, 200, "another client's token: 200, nothing changes");
        assert_eq!(app.get(&patients, access).await.status, 200);
        let reply = post_form(app, &url, &[("token", refresh), ("token_type_hint", "refresh_token")], Some((&client.0, &client.1))).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(app.get(&patients, access).await.status, 401, "revoking the refresh token revoked its access tokens");
        let again = post_form(app, &oauth(app, "default", "/token"), &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some((&client.0, &client.1))).await;
        assert_oauth_error(&again, 400, "invalid_grant");

        let grant = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        let access = grant.json["access_token"].as_str().unwrap();
        assert_eq!(app.get(&patients, access).await.status, 200);
        assert_eq!(post_form(app, &url, &[("token", access)], Some((&client.0, &client.1))).await.status, 200);
        let reply = app.get(&patients, access).await;
        assert_eq!(reply.status, 401);
        assert!(reply.json["message"].as_str().unwrap().contains("revoked"));
        let introspected = post_form(app, &oauth(app, "default", "/introspect"), &[("token", access)], Some((&client.0, &client.1))).await;
        assert_eq!(introspected.json, json!({"active": false}));

        assert_eq!(post_form(app, &url, &[("token", "unknown")], Some((&client.0, &client.1))).await.status, 200);
        assert_oauth_error(&post_form(app, &url, &[("token", "unknown")], None).await, 401, "invalid_client");
    }

    async fn revocation_and_refresh_reuse_reach_every_process_sharing_the_database(app) {
        let client = staff_client(app, "default").await;
        let basic = Some((client.0.as_str(), client.1.as_str()));
        app.user("default", "doc", "physician").await;
        set_setting(app, "default", "oauth.password_grant", "users").await;
        let peer = app.peer().await;
        let here = app.api("default", "/api/patient");
        let there = peer.api("default", "/api/patient");

        let grant = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        let access = grant.json["access_token"].as_str().unwrap();
        let refresh = grant.json["refresh_token"].as_str().unwrap();
        assert_eq!(app.get(&there, access).await.status, 200, "the other process accepts the token");
        let reply = post_form(app, &oauth(app, "default", "/revoke"), &[("token", access)], basic).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let reply = app.get(&there, access).await;
        assert_eq!(reply.status, 401, "revoked in one process, refused by the other at once");
        assert!(reply.json["message"].as_str().unwrap().contains("revoked"), "{}", reply.text);

        let token_there = format!("{}/oauth2/default/token", peer.base);
        let rotated = post_form(app, &token_there, &[("grant_type", "refresh_token"), ("refresh_token", refresh)], basic).await;
        assert_eq!(rotated.status, 200, "the other process rotates the refresh token: {}", rotated.text);
        let fresh = rotated.json["access_token"].as_str().unwrap();
        assert_eq!(app.get(&here, fresh).await.status, 200, "this process accepts what the other issued");
        let reused = post_form(app, &oauth(app, "default", "/token"), &[("grant_type", "refresh_token"), ("refresh_token", refresh)], basic).await;
        assert_oauth_error(&reused, 400, "invalid_grant");
        assert_eq!(app.get(&there, fresh).await.status, 401, "reuse in one process revoked the grant in the other");
        assert_eq!(app.get(&here, fresh).await.status, 401);
        peer.stop().await;
    }

    async fn a_lock_out_reached_through_one_process_holds_in_every_process(app) {
        let client = staff_client(app, "default").await;
        app.user("default", "doc", "physician").await;
        set_setting(app, "default", "oauth.password_grant", "users").await;
        let peer = app.peer().await;
        let token_there = format!("{}/oauth2/default/token", peer.base);
        let basic = Some((client.0.as_str(), client.1.as_str()));
        let attempt = |url: String, password: &'static str| {
            let form = [("grant_type", "password"), ("user_role", "users"), ("username", "doc"), ("password", password), ("scope", STAFF_SCOPE)];
            async move { post_form(app, &url, &form, basic).await }
        };
        // Failures alternate between the processes; together they reach the limit.
        for i in 0..5 {
            let url = if i % 2 == 0 { oauth(app, "default", "/token") } else { token_there.clone() };
            assert_oauth_error(&attempt(url, "wrong password").await, 400, "invalid_grant");
        }
        for url in [oauth(app, "default", "/token"), token_there.clone()] {
            let locked = attempt(url, "correct horse battery").await;
            assert_oauth_error(&locked, 400, "invalid_grant");
            assert!(locked.json["error_description"].as_str().unwrap().contains("Too many"), "{}", locked.text);
        }
        // The counts live in the site's database, one row per account.
        let rows = app.rows("default", "SELECT failures FROM oauth_login_failures WHERE login_key = 'default:users:doc'").await;
        assert_eq!(rows[0]["failures"], 5);
        peer.stop().await;
    }

    async fn clients_and_tokens_of_one_site_are_useless_on_the_other(app) {
        let client = staff_client(app, "default").await;
        app.user("default", "doc", "physician").await;
        app.user("second", "doc", "physician").await;
        set_setting(app, "default", "oauth.password_grant", "users").await;
        set_setting(app, "second", "oauth.password_grant", "users").await;
        let reply = password_grant(app, "second", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        assert_oauth_error(&reply, 401, "invalid_client");
        let grant = password_grant(app, "default", &client, "doc", "correct horse battery", STAFF_SCOPE).await;
        let access = grant.json["access_token"].as_str().unwrap();
        let refresh = grant.json["refresh_token"].as_str().unwrap();
        assert_eq!(app.get(&app.api("second", "/api/patient"), access).await.status, 401);

        let second_client = staff_client(app, "second").await;
        let reply = post_form(app, &oauth(app, "second", "/token"), &[("grant_type", "refresh_token"), ("refresh_token", refresh)], Some((&second_client.0, &second_client.1))).await;
        assert_oauth_error(&reply, 400, "invalid_grant");
        let reply = post_form(app, &oauth(app, "second", "/introspect"), &[("token", access)], Some((&second_client.0, &second_client.1))).await;
        assert_eq!(reply.json, json!({"active": false}));
        assert_eq!(post_form(app, &oauth(app, "second", "/revoke"), &[("token", refresh)], Some((&second_client.0, &second_client.1))).await.status, 200);
        assert_eq!(app.get(&app.api("default", "/api/patient"), access).await.status, 200, "the other site cannot revoke it");

        let key = service_key(Alg::Es384);
        let service = service_client(app, "default", &[&key]).await;
        let reply = client_credentials(app, "second", &assertion(&key, &service, &oauth(app, "second", "/token"), 200, "x1"), "system/Patient.rs").await;
        assert_oauth_error(&reply, 401, "invalid_client");
        assert_eq!(client_count(app, "second").await, 1);
    }
}

/// A browser that keeps the sign-in cookie and never follows redirects.
struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn keep(&mut self, response: reqwest::Response) -> Reply {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            if let Some(value) = pair.strip_prefix("hearth_authz=") {
                self.cookie = (!value.is_empty()).then(|| value.to_owned());
            }
        }
        Reply::from(response).await
    }

    async fn get(&mut self, url: &str) -> Reply {
        let mut request = self.http.get(url);
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("hearth_authz={cookie}"));
        }
        let response = request.send().await.unwrap();
        self.keep(response).await
    }

    async fn post(&mut self, url: &str, pairs: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(pairs));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", format!("hearth_authz={cookie}"));
        }
        let response = request.send().await.unwrap();
        self.keep(response).await
    }

    fn absolute(&self, location: &str) -> String {
        if location.starts_with('/') {
            format!("{}{location}", self.app.base)
        } else {
            location.to_owned()
        }
    }
}

fn csrf(page: &Reply) -> String {
    let marker = "name=\"csrf_token\" value=\"";
    let start = page
        .text
        .find(marker)
        .unwrap_or_else(|| panic!("a CSRF field in {}", page.text))
        + marker.len();
    page.text[start..].split('"').next().unwrap().to_owned()
}

fn location(reply: &Reply) -> String {
    assert_eq!(reply.status, 303, "{}", reply.text);
    reply.header("location").expect("a Location").to_owned()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn pkce() -> (String, String) {
    use sha2::Digest;
    let verifier = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn authorize_url(
    app: &TestApp,
    site: &str,
    client_id: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-1"),
    ];
    pairs.extend_from_slice(extra);
    format!("{}?{}", oauth(app, site, "/authorize"), encode(&pairs))
}

/// Signs in on the authorization page; answers the next Location.
async fn sign_in(
    browser: &mut Browser<'_>,
    url: &str,
    role: &str,
    username: &str,
    password: &str,
    email: &str,
) -> String {
    let page = browser.get(url).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let token = csrf(&page);
    let site = url
        .split("/oauth2/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let login = browser.app.base.clone() + &format!("/oauth2/{site}/login");
    let reply = browser
        .post(
            &login,
            &[
                ("csrf_token", &token),
                ("user_role", role),
                ("username", username),
                ("password", password),
                ("email", email),
            ],
        )
        .await;
    location(&reply)
}

/// Allows the consent page with `keep` (None: every scope); answers the redirect to the client.
async fn allow(browser: &mut Browser<'_>, consent: &str, keep: Option<&[&str]>) -> String {
    let url = browser.absolute(consent);
    let page = browser.get(&url).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    let token = csrf(&page);
    let offered: Vec<String> = page
        .text
        .match_indices("name=\"scope\" value=\"")
        .map(|(i, m)| {
            page.text[i + m.len()..]
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut pairs = vec![("csrf_token", token.as_str()), ("action", "allow")];
    let chosen: Vec<String> = match keep {
        None => offered.clone(),
        Some(keep) => keep.iter().map(|s| (*s).to_owned()).collect(),
    };
    for scope in &chosen {
        pairs.push(("scope", scope));
    }
    location(&browser.post(&url, &pairs).await)
}

async fn redeem(
    app: &TestApp,
    site: &str,
    client_id: &str,
    secret: Option<&str>,
    code: &str,
    verifier: Option<&str>,
) -> Reply {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(verifier) = verifier {
        pairs.push(("code_verifier", verifier));
    }
    match secret {
        Some(secret) => {
            post_form(
                app,
                &oauth(app, site, "/token"),
                &pairs,
                Some((client_id, secret)),
            )
            .await
        }
        None => {
            pairs.push(("client_id", client_id));
            post_form(app, &oauth(app, site, "/token"), &pairs, None).await
        }
    }
}

const LAUNCH_SCOPE: &str =
    "openid fhirUser offline_access api:oemr launch/patient user/patient.rs profile";

async fn launch_client(app: &TestApp, site: &str) -> (String, String) {
    let reply = register(app, site, json!({"application_type": "private", "client_name": "Chart <app>", "redirect_uris": [REDIRECT],
        "post_logout_redirect_uris": ["https://app.example/bye"], "scope": format!("{LAUNCH_SCOPE} launch")})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.json["client_id"].as_str().unwrap().to_owned();
    enable(app, site, &id).await;
    (id, reply.json["client_secret"].as_str().unwrap().to_owned())
}

async fn session_count(app: &TestApp, site: &str) -> i64 {
    app.rows(site, "SELECT COUNT(*) AS n FROM oauth_sessions")
        .await[0]["n"]
        .as_i64()
        .unwrap()
}

both! {
    async fn staff_sign_in_pick_a_patient_untick_a_scope_and_redeem_the_code(app) {
        let staff = app.user_token("default", "admin", "openid api:oemr user/patient.crus").await;
        let (_, puuid) = app.create_patient("default", &staff, "Ann", "Smith").await;
        app.create_patient("default", &staff, "Bob", "Jones").await;
        let doc = app.user("default", "doc", "physician").await;
        let (client_id, secret) = launch_client(app, "default").await;
        let (verifier, challenge) = pkce();
        let mut browser = Browser::new(app);
        let url = authorize_url(app, "default", &client_id, LAUNCH_SCOPE, &[("code_challenge", &challenge), ("code_challenge_method", "S256"), ("nonce", "n-42"), ("aud", &app.api("default", "/fhir"))]);
        let page = browser.get(&url).await;
        assert!(page.text.contains("Chart &lt;app&gt;"), "the client name is escaped: {}", page.text);
        let next = sign_in(&mut browser, &url, "users", "doc", "correct horse battery", "").await;
        assert_eq!(next, "/oauth2/default/patient-select");
        let picker = browser.get(&browser.absolute(&format!("{next}?q=smi"))).await;
        assert_eq!(picker.status, 200, "{}", picker.text);
        assert!(picker.text.contains(&puuid) && picker.text.contains("Ann Smith"));
        assert!(!picker.text.contains("Jones"), "the search filters");
        let consent = location(&browser.post(&browser.absolute(&next), &[("csrf_token", &csrf(&picker)), ("patient", &puuid)]).await);
        assert_eq!(consent, "/oauth2/default/consent");
        let granted = ["openid", "fhirUser", "offline_access", "api:oemr", "launch/patient", "user/patient.rs"];
        let back = allow(&mut browser, &consent, Some(&granted[..])).await;
        assert!(back.starts_with(REDIRECT), "{back}");
        let params = query_of(&back);
        assert_eq!(params["state"], "st-1");
        assert_eq!(params["iss"], format!("{}/oauth2/default", app.base), "RFC 9207");
        assert!(browser.cookie.is_none(), "the session cookie is cleared");
        let signed_in = app.rows("default", "SELECT COUNT(*) AS n FROM oauth_sessions WHERE user_id IS NOT NULL").await;
        assert_eq!(signed_in[0]["n"], 0, "the finished session is gone");

        let code = &params["code"];
        let reply = redeem(app, "default", &client_id, Some(&secret), code, Some(&verifier)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = &reply.json;
        assert_eq!(body["scope"], granted.join(" "), "profile was unticked");
        assert_eq!(body["patient"], puuid.as_str());
        assert_eq!(body["need_patient_banner"], true);
        assert_eq!(body["smart_style_url"], format!("{}/oauth2/default/smart-style.json", app.base));
        let id_token = claims(body["id_token"].as_str().unwrap());
        assert_eq!(id_token["nonce"], "n-42");
        assert_eq!(id_token["sub"], doc.as_str());
        assert!(id_token.get("given_name").is_none(), "no profile claims without profile");
        let access = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&access)["patient"], puuid.as_str());
        assert_eq!(app.get(&app.api("default", "/api/patient"), &access).await.status, 200);
        let style = app.send(reqwest::Method::GET, body["smart_style_url"].as_str().unwrap(), None, None).await;
        assert_eq!(style.status, 200);
        assert!(style.json["color_background"].is_string());

        let replay = redeem(app, "default", &client_id, Some(&secret), code, Some(&verifier)).await;
        assert_oauth_error(&replay, 400, "invalid_grant");
        assert_eq!(app.get(&app.api("default", "/api/patient"), &access).await.status, 401, "a replayed code revokes what it issued");
        let refreshed = post_form(app, &oauth(app, "default", "/token"), &[("grant_type", "refresh_token"), ("refresh_token", body["refresh_token"].as_str().unwrap())], Some((&client_id, &secret))).await;
        assert_oauth_error(&refreshed, 400, "invalid_grant");
    }

    async fn public_clients_must_use_pkce_and_the_verifier_must_match(app) {
        let staff = app.user_token("default", "admin", "openid api:oemr user/patient.crus").await;
        let (_, puuid) = app.create_patient("default", &staff, "Ann", "Smith").await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::oauth::accounts::set_portal_login(&site, &puuid, "ann", "ann@example.org", "patient password").await.unwrap();
        let scope = "openid offline_access api:port patient/patient.s";
        let reply = register(app, "default", json!({"redirect_uris": [REDIRECT], "scope": scope})).await;
        let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
        let mut browser = Browser::new(app);
        let (verifier, challenge) = pkce();
        for (extra, why) in [
            (vec![], "no challenge"),
            (vec![("code_challenge", challenge.as_str()), ("code_challenge_method", "plain")], "plain"),
            (vec![("code_challenge", challenge.as_str())], "no method"),
            (vec![("code_challenge_method", "S256")], "method without challenge"),
            (vec![("code_challenge", "short"), ("code_challenge_method", "S256")], "not a S256 value"),
        ] {
            // The client registered itself and was enabled at once: no administrator has
            // vetted it, so its errors are a page, never a redirect (RFC 9700 §4.11).
            let reply = browser.get(&authorize_url(app, "default", &client_id, scope, &extra)).await;
            assert_eq!(reply.status, 400, "{why}: {}", reply.text);
            assert!(reply.header("location").is_none(), "{why}");
            assert!(reply.text.contains("invalid_request"), "{why}: {}", reply.text);
        }
        enable(app, "default", &client_id).await;
        let reply = browser.get(&authorize_url(app, "default", &client_id, scope, &[])).await;
        let params = query_of(&location(&reply));
        assert_eq!(params["error"], "invalid_request", "a vetted client gets its errors back");
        assert_eq!(params["state"], "st-1");
        assert_eq!(params["iss"], format!("{}/oauth2/default", app.base));
        assert_eq!(session_count(app, "default").await, 0, "refused requests store nothing");

        let url = authorize_url(app, "default", &client_id, scope, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
        let consent = sign_in(&mut browser, &url, "patient", "ann", "patient password", "ann@example.org").await;
        assert_eq!(consent, "/oauth2/default/consent", "a patient needs no picker");
        let back = allow(&mut browser, &consent, None).await;
        let code = query_of(&back)["code"].clone();
        assert_oauth_error(&redeem(app, "default", &client_id, None, &code, None).await, 400, "invalid_grant");
        let (wrong, _) = pkce();
        assert_oauth_error(&redeem(app, "default", &client_id, None, &code, Some(&wrong)).await, 400, "invalid_grant");
        assert_oauth_error(&redeem(app, "default", &client_id, None, &code, Some("tooshort")).await, 400, "invalid_grant");
        let wrong_redirect = post_form(app, &oauth(app, "default", "/token"), &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example/other"), ("code_verifier", &verifier), ("client_id", &client_id)], None).await;
        assert_oauth_error(&wrong_redirect, 400, "invalid_grant");
        assert_eq!(app.rows("default", "SELECT COUNT(*) AS n FROM api_token WHERE grant_id IS NOT NULL").await[0]["n"], 0, "failures issued nothing");
        let reply = redeem(app, "default", &client_id, None, &code, Some(&verifier)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["patient"], puuid.as_str());
        let portal = app.get(&app.api("default", "/portal/patient"), reply.json["access_token"].as_str().unwrap()).await;
        assert_eq!(portal.status, 200, "{}", portal.text);
    }

    async fn a_confidential_client_without_pkce_cannot_send_a_verifier_and_codes_expire(app) {
        app.user("default", "doc", "physician").await;
        let (client_id, secret) = staff_client(app, "default").await;
        let mut browser = Browser::new(app);
        let url = authorize_url(app, "default", &client_id, STAFF_SCOPE, &[]);
        let consent = sign_in(&mut browser, &url, "users", "doc", "correct horse battery", "").await;
        let code = query_of(&allow(&mut browser, &consent, None).await)["code"].clone();
        let (verifier, _) = pkce();
        assert_oauth_error(&redeem(app, "default", &client_id, Some(&secret), &code, Some(&verifier)).await, 400, "invalid_grant");
        let other = staff_client(app, "default").await;
        assert_oauth_error(&redeem(app, "default", &other.0, Some(&other.1), &code, None).await, 400, "invalid_grant");
        let second = staff_client(app, "second").await;
        assert_oauth_error(&redeem(app, "second", &second.0, Some(&second.1), &code, None).await, 400, "invalid_grant");
        assert_oauth_error(&redeem(app, "second", &client_id, Some(&secret), &code, None).await, 401, "invalid_client");
        let reply = redeem(app, "default", &client_id, Some(&secret), &code, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert!(reply.json.get("patient").is_none());

        let mut browser = Browser::new(app);
        let consent = sign_in(&mut browser, &url, "users", "doc", "correct horse battery", "").await;
        let code = query_of(&allow(&mut browser, &consent, None).await)["code"].clone();
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE oauth_codes SET expires_at = 1 WHERE used = 0").execute(pool).await.unwrap();
        });
        let expired = redeem(app, "default", &client_id, Some(&secret), &code, None).await;
        assert_oauth_error(&expired, 400, "invalid_grant");
        assert!(expired.json["error_description"].as_str().unwrap().contains("expired"));
        let codes = app.rows("default", "SELECT expires_at - created_at AS lifetime FROM oauth_codes WHERE expires_at > 1").await;
        assert_eq!(codes[0]["lifetime"], 60, "codes live 60 seconds");
    }

    async fn authorization_requests_with_untrusted_redirects_get_a_page_others_a_redirect(app) {
        let (client_id, _) = launch_client(app, "default").await;
        let mut browser = Browser::new(app);
        let unknown = browser.get(&authorize_url(app, "default", "nobody", "openid", &[])).await;
        assert_eq!(unknown.status, 400);
        assert!(unknown.header("location").is_none());
        assert!(unknown.text.contains("not registered"));
        let other_site = browser.get(&authorize_url(app, "second", &client_id, "openid", &[])).await;
        assert_eq!(other_site.status, 400, "the client is not the other site's");
        let url = format!("{}?{}", oauth(app, "default", "/authorize"), encode(&[("response_type", "code"), ("client_id", &client_id), ("redirect_uri", "https://app.example/callback/other"), ("scope", "openid"), ("state", "s")]));
        let mismatched = browser.get(&url).await;
        assert_eq!(mismatched.status, 400);
        assert!(mismatched.header("location").is_none(), "never redirect to an unregistered URI");
        assert_eq!(browser.get(&format!("{}?client_id=x&client_id=y", oauth(app, "default", "/authorize"))).await.status, 400);
        assert_eq!(browser.get(&authorize_url(app, "nosuch", &client_id, "openid", &[])).await.status, 404);

        let error_of = |reply: &Reply| query_of(&location(reply))["error"].clone();
        let mut pairs = vec![("response_type", "token"), ("client_id", client_id.as_str()), ("redirect_uri", REDIRECT), ("scope", "openid")];
        let url = format!("{}?{}", oauth(app, "default", "/authorize"), encode(&pairs));
        assert_eq!(error_of(&browser.get(&url).await), "unsupported_response_type");
        pairs[0] = ("response_type", "code");
        pairs[3] = ("scope", "openid user/nothing.rs");
        let url = format!("{}?{}", oauth(app, "default", "/authorize"), encode(&pairs));
        assert_eq!(error_of(&browser.get(&url).await), "invalid_scope");
        assert_eq!(error_of(&browser.get(&authorize_url(app, "default", &client_id, "openid", &[("aud", "https://elsewhere.example/fhir")])).await), "invalid_request");
        assert_eq!(error_of(&browser.get(&authorize_url(app, "default", &client_id, "openid launch", &[("launch", "forged")])).await), "invalid_request", "launch needs aud");
        assert_eq!(error_of(&browser.get(&authorize_url(app, "default", &client_id, "openid launch", &[("launch", "forged"), ("aud", &app.api("default", "/fhir"))])).await), "invalid_request");
        let site = app.state.sites.get("default").await.unwrap();
        hearth::oauth::clients::set_enabled(&site, &client_id, false).await.unwrap();
        let disabled = browser.get(&authorize_url(app, "default", &client_id, "openid", &[])).await;
        assert_eq!(disabled.status, 400, "a disabled client gets a page: {}", disabled.text);
        assert!(disabled.header("location").is_none(), "never redirect to a client that is not enabled");
        assert!(disabled.text.contains("not enabled"), "{}", disabled.text);
        assert_eq!(session_count(app, "default").await, 0);
    }

    async fn sign_in_failures_are_vague_csrf_protected_and_rate_limited(app) {
        app.user("default", "doc", "physician").await;
        let (client_id, _) = staff_client(app, "default").await;
        let mut browser = Browser::new(app);
        let page = browser.get(&authorize_url(app, "default", &client_id, STAFF_SCOPE, &[])).await;
        let token = csrf(&page);
        let login = oauth(app, "default", "/login");
        let wrong = browser.post(&login, &[("csrf_token", &token), ("user_role", "users"), ("username", "doc"), ("password", "nope")]).await;
        let unknown = browser.post(&login, &[("csrf_token", &token), ("user_role", "users"), ("username", "nobody"), ("password", "nope")]).await;
        assert_eq!(wrong.status, 200);
        assert!(wrong.text.contains("The user name, password or e-mail is wrong."));
        assert_eq!(wrong.text.replace("value=\"doc\"", "value=\"nobody\""), unknown.text, "no account enumeration");
        let stale = browser.post(&login, &[("csrf_token", "forged"), ("user_role", "users"), ("username", "doc"), ("password", "correct horse battery")]).await;
        assert_eq!(stale.status, 403);
        let mut stranger = Browser::new(app);
        let no_session = stranger.post(&login, &[("csrf_token", &token), ("user_role", "users"), ("username", "doc"), ("password", "correct horse battery")]).await;
        assert_eq!(no_session.status, 400, "no cookie, no sign-in");
        assert_eq!(app.rows("default", "SELECT COUNT(*) AS n FROM oauth_sessions WHERE user_id IS NOT NULL").await[0]["n"], 0);
        let consent = browser.get(&oauth(app, "default", "/consent")).await;
        assert_eq!(consent.status, 400, "consent needs a signed-in session");
        for _ in 0..4 {
            browser.post(&login, &[("csrf_token", &token), ("user_role", "users"), ("username", "doc"), ("password", "nope")]).await;
        }
        let locked = browser.post(&login, &[("csrf_token", &token), ("user_role", "users"), ("username", "doc"), ("password", "correct horse battery")]).await;
        assert_eq!(locked.status, 429);
        assert!(locked.text.contains("Too many failed sign-ins"));
        let mut fresh = Browser::new(app);
        let page = fresh.get(&authorize_url(app, "default", &client_id, STAFF_SCOPE, &[])).await;
        let reply = fresh.post(&login, &[("csrf_token", &csrf(&page)), ("user_role", "users"), ("username", "doc"), ("password", "correct horse battery")]).await;
        assert_eq!(reply.status, 429, "the account stays locked in another session");
    }

    async fn denying_consent_redirects_with_access_denied(app) {
        app.user("default", "doc", "physician").await;
        let (client_id, secret) = staff_client(app, "default").await;
        let mut browser = Browser::new(app);
        let consent = sign_in(&mut browser, &authorize_url(app, "default", &client_id, STAFF_SCOPE, &[]), "users", "doc", "correct horse battery", "").await;
        let page = browser.get(&browser.absolute(&consent)).await;
        let back = location(&browser.post(&browser.absolute(&consent), &[("csrf_token", &csrf(&page)), ("action", "deny"), ("scope", "openid")]).await);
        let params = query_of(&back);
        assert_eq!(params["error"], "access_denied");
        assert_eq!(params["state"], "st-1");
        assert!(!params.contains_key("code"));
        assert_eq!(app.rows("default", "SELECT COUNT(*) AS n FROM oauth_codes").await[0]["n"], 0);
        let _ = secret;
    }

    async fn an_ehr_launch_binds_the_patient_without_a_picker(app) {
        let staff = app.user_token("default", "admin", "openid api:oemr user/patient.crus").await;
        let (_, puuid) = app.create_patient("default", &staff, "Ann", "Smith").await;
        app.user("default", "doc", "physician").await;
        let (client_id, secret) = launch_client(app, "default").await;
        let site = app.state.sites.get("default").await.unwrap();
        let launch = hearth::oauth::authorize::launch_token(&app.base, &site, &puuid, Some("enc-1")).unwrap();
        let second = app.state.sites.get("second").await.unwrap();
        let foreign = hearth::oauth::authorize::launch_token(&app.base, &second, &puuid, None).unwrap();
        let mut browser = Browser::new(app);
        let aud = app.api("default", "/fhir");
        let refused = browser.get(&authorize_url(app, "default", &client_id, "openid launch user/patient.rs", &[("launch", &foreign), ("aud", &aud)])).await;
        assert_eq!(query_of(&location(&refused))["error"], "invalid_request", "another site's launch token");
        let url = authorize_url(app, "default", &client_id, "openid launch user/patient.rs api:oemr", &[("launch", &launch), ("aud", &aud)]);
        let consent = sign_in(&mut browser, &url, "users", "doc", "correct horse battery", "").await;
        assert_eq!(consent, "/oauth2/default/consent");
        let code = query_of(&allow(&mut browser, &consent, None).await)["code"].clone();
        let reply = redeem(app, "default", &client_id, Some(&secret), &code, None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["patient"], puuid.as_str());
        assert_eq!(reply.json["encounter"], "enc-1");
        assert_eq!(reply.json["need_patient_banner"], false);
    }

    async fn logout_revokes_the_sessions_tokens_and_returns_to_a_registered_uri(app) {
        app.user("default", "doc", "physician").await;
        let (client_id, secret) = launch_client(app, "default").await;
        let mut browser = Browser::new(app);
        let consent = sign_in(&mut browser, &authorize_url(app, "default", &client_id, "openid api:oemr user/patient.rs offline_access", &[]), "users", "doc", "correct horse battery", "").await;
        let code = query_of(&allow(&mut browser, &consent, None).await)["code"].clone();
        let tokens = redeem(app, "default", &client_id, Some(&secret), &code, None).await.json;
        let access = tokens["access_token"].as_str().unwrap();
        let id_token = tokens["id_token"].as_str().unwrap();
        assert_eq!(app.get(&app.api("default", "/api/patient"), access).await.status, 200);
        let logout = oauth(app, "default", "/logout");
        assert_eq!(browser.get(&logout).await.status, 400, "id_token_hint is required");
        let forged = service_key(Alg::Es384).signer.sign(&claims(id_token)).unwrap();
        assert_eq!(browser.get(&format!("{logout}?{}", encode(&[("id_token_hint", &forged)]))).await.status, 400);
        let elsewhere = browser.get(&format!("{logout}?{}", encode(&[("id_token_hint", id_token), ("post_logout_redirect_uri", "https://evil.example/")]))).await;
        assert_eq!(elsewhere.status, 400);
        assert_eq!(app.get(&app.api("default", "/api/patient"), access).await.status, 200, "refused logouts change nothing");
        let reply = browser.get(&format!("{logout}?{}", encode(&[("id_token_hint", id_token), ("post_logout_redirect_uri", "https://app.example/bye"), ("state", "bye-1")]))).await;
        assert_eq!(location(&reply), "https://app.example/bye?state=bye-1");
        assert_eq!(app.get(&app.api("default", "/api/patient"), access).await.status, 401);
        let refreshed = post_form(app, &oauth(app, "default", "/token"), &[("grant_type", "refresh_token"), ("refresh_token", tokens["refresh_token"].as_str().unwrap())], Some((&client_id, &secret))).await;
        assert_oauth_error(&refreshed, 400, "invalid_grant");
        let plain = browser.get(&format!("{logout}?{}", encode(&[("id_token_hint", id_token)]))).await;
        assert_eq!(plain.status, 200);
        assert!(plain.text.contains("signed out"));
    }
}

/// A JWKS served on a random local port: the document can be replaced, and fetches are
/// counted.
struct JwksServer {
    url: String,
    body: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    fn serve(&self, keys: &[&ServiceKey]) {
        let keys: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        *self.body.lock().unwrap() = json!({ "keys": keys }).to_string();
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

async fn serve_jwks(keys: &[&ServiceKey]) -> JwksServer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = JwksServer {
        url: format!("http://{address}/jwks.json"),
        body: Default::default(),
        fetches: Default::default(),
    };
    server.serve(keys);
    let (body, fetches) = (server.body.clone(), server.fetches.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let body = body.lock().unwrap().clone();
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = vec![0u8; 8192];
                let mut read = 0;
                while read < buffer.len() {
                    match stream.read(&mut buffer[read..]).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => read += n,
                    }
                    if buffer[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    server
}

both! {
    async fn backend_service_keys_are_fetched_from_the_registered_jwks_uri(app) {
        // A refetch interval far longer than the test, so that what is asserted about the
        // kept set does not depend on how fast a loaded machine runs the requests.
        set_setting(app, "default", "oauth.jwks_refetch_interval", "600").await;
        let key = service_key(Alg::Rs384);
        let jwks = serve_jwks(&[&key]).await;
        let (client_id, aud) = jwks_uri_client(app, &jwks.url).await;
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "u1"), "system/Patient.rs").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let stranger = service_key(Alg::Rs384);
        let reply = client_credentials(app, "default", &assertion(&stranger, &client_id, &aud, 200, "u2"), "system/Patient.rs").await;
        assert_oauth_error(&reply, 401, "invalid_client");
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "u3"), "system/Patient.rs").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(jwks.fetches(), 1, "the fetched keys are kept, also after an unknown kid within the refetch interval");
    }

    async fn a_client_that_rotates_its_jwks_uri_keys_is_served_after_the_refetch_interval(app) {
        let key = service_key(Alg::Rs384);
        let jwks = serve_jwks(&[&key]).await;
        let (client_id, aud) = jwks_uri_client(app, &jwks.url).await;
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "u1"), "system/Patient.rs").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(jwks.fetches(), 1);

        // The client rotates its keys: once the default interval (a second) has passed
        // since the last fetch, an assertion with the new kid makes the server fetch the
        // document again, and the retired key stops working.
        let rotated = service_key(Alg::Es384);
        jwks.serve(&[&rotated]);
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let reply = client_credentials(app, "default", &assertion(&rotated, &client_id, &aud, 200, "u4"), "system/Patient.rs").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(jwks.fetches(), 2);
        let reply = client_credentials(app, "default", &assertion(&key, &client_id, &aud, 200, "u5"), "system/Patient.rs").await;
        assert_oauth_error(&reply, 401, "invalid_client");
    }
}

/// Registers and enables a backend service client whose keys are at `uri`: answers its
/// client id and the token URL its assertions name.
async fn jwks_uri_client(app: &TestApp, uri: &str) -> (String, String) {
    let reply = register(
        app,
        "default",
        json!({"application_type": "private", "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "private_key_jwt", "scope": SYSTEM_SCOPE, "jwks_uri": uri}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["jwks_uri"], uri);
    let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
    enable(app, "default", &client_id).await;
    (client_id, oauth(app, "default", "/token"))
}

/// The public URL of a server behind a proxy that strips `/ehr`.
const PROXIED: &str = "https://proxy.example/ehr";

/// What the proxy does: a public URL or path under `/ehr` becomes a URL of the server.
fn through_proxy(app: &TestApp, url: &str) -> String {
    let path = url.strip_prefix("https://proxy.example").unwrap_or(url);
    let rest = path
        .strip_prefix("/ehr")
        .unwrap_or_else(|| panic!("{url} is not under the public URL {PROXIED}"));
    format!("{}{rest}", app.listen)
}

both! {
    options = Options { public_url: Some(PROXIED.to_owned()), ..Options::default() };

    // The pages once posted to `/oauth2/{site}/…` and scoped their cookie there, which a
    // server published under a path (`https://host/ehr`) never receives.
    async fn the_sign_in_pages_live_under_the_public_urls_path(app) {
        let issuer = format!("{PROXIED}/oauth2/default");
        let discovery = app.send(reqwest::Method::GET, &format!("{}/oauth2/default/.well-known/openid-configuration", app.listen), None, None).await;
        assert_eq!(discovery.json["issuer"], issuer.as_str());
        assert_eq!(discovery.json["authorization_endpoint"], format!("{issuer}/authorize"));
        app.user("default", "doc", "physician").await;
        let registered = app.send(reqwest::Method::POST, &through_proxy(app, discovery.json["registration_endpoint"].as_str().unwrap()), None,
            Some(json!({"application_type": "private", "redirect_uris": [REDIRECT], "scope": "openid api:oemr user/patient.rs"}))).await;
        assert_eq!(registered.status, 201, "{}", registered.text);
        let client_id = registered.json["client_id"].as_str().unwrap();
        enable(app, "default", client_id).await;

        let mut browser = Browser::new(app);
        let authorize = format!("{}?{}", through_proxy(app, &format!("{issuer}/authorize")),
            encode(&[("response_type", "code"), ("client_id", client_id), ("redirect_uri", REDIRECT), ("scope", "openid api:oemr"), ("state", "p-1")]));
        let response = browser.http.get(&authorize).send().await.unwrap();
        let cookie = response.headers().get("set-cookie").unwrap().to_str().unwrap().to_owned();
        assert!(cookie.contains("; Path=/ehr/oauth2/default/;"), "{cookie}");
        let page = browser.keep(response).await;
        assert!(page.text.contains("action=\"/ehr/oauth2/default/login\""), "{}", page.text);
        let signed_in = browser.post(&format!("{}/oauth2/default/login", app.listen), &[("csrf_token", &csrf(&page)), ("user_role", "users"), ("username", "doc"), ("password", "correct horse battery")]).await;
        let consent = location(&signed_in);
        assert_eq!(consent, "/ehr/oauth2/default/consent");
        let page = browser.get(&through_proxy(app, &consent)).await;
        assert!(page.text.contains("action=\"/ehr/oauth2/default/consent\""), "{}", page.text);
        let back = location(&browser.post(&through_proxy(app, &consent), &[("csrf_token", &csrf(&page)), ("action", "allow"), ("scope", "openid"), ("scope", "api:oemr")]).await);
        let params = query_of(&back);
        assert!(back.starts_with(REDIRECT), "{back}");
        assert_eq!(params["iss"], issuer.as_str());
        assert_eq!(params["state"], "p-1");
    }
}

/// The default site loads a plugin with a scope of its own; the second site does not.
const WIDGET_PLUGINS: &str = r#"
[plugins.patient]
file = "patient.wasm"

[plugins.test-widget]
file = "test-widget.wasm"

[sites."*"]
plugins = ["patient"]

[sites.default]
plugins = ["patient", "test-widget"]
"#;

both! {
    options = Options::with_plugins(WIDGET_PLUGINS);

    // The catalogue follows the loaded plugins: a scope only a plugin declares is listed by
    // discovery, registered, granted on the consent page and honoured by the route on the
    // site that loads it, and refused by the site that does not.
    async fn a_plugins_own_scope_is_obtained_through_the_authorization_pages(app) {
        const SCOPE: &str = "openid api:oemr user/widget.s";
        for (site, listed) in [("default", true), ("second", false)] {
            let discovery = app.send(reqwest::Method::GET, &oauth(app, site, "/.well-known/openid-configuration"), None, None).await;
            let supported = discovery.json["scopes_supported"].as_array().unwrap();
            assert_eq!(supported.iter().any(|s| s == "user/widget.s"), listed, "{site}");
            let smart = app.send(reqwest::Method::GET, &app.api(site, "/fhir/.well-known/smart-configuration"), None, None).await;
            assert_eq!(smart.status, 200, "{}", smart.text);
            assert_eq!(smart.json["scopes_supported"].as_array().unwrap().iter().any(|s| s == "user/widget.s"), listed, "{site}");
        }
        let refused = register(app, "second", json!({"application_type": "private", "redirect_uris": [REDIRECT], "scope": SCOPE})).await;
        assert_oauth_error(&refused, 400, "invalid_scope");
        assert!(refused.json["error_description"].as_str().unwrap().contains("user/widget.s"), "{}", refused.text);

        let reply = register(app, "default", json!({"application_type": "private", "client_name": "Widgets", "redirect_uris": [REDIRECT], "scope": SCOPE})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
        let secret = reply.json["client_secret"].as_str().unwrap().to_owned();
        enable(app, "default", &client_id).await;
        app.user("default", "doc", "physician").await;
        let (verifier, challenge) = pkce();
        let mut browser = Browser::new(app);
        let url = authorize_url(app, "default", &client_id, SCOPE, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
        let consent = sign_in(&mut browser, &url, "users", "doc", "correct horse battery", "").await;
        assert_eq!(consent, "/oauth2/default/consent");
        let back = allow(&mut browser, &consent, None).await;
        let params = query_of(&back);
        let reply = redeem(app, "default", &client_id, Some(&secret), &params["code"], Some(&verifier)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["scope"], SCOPE);
        let access = reply.json["access_token"].as_str().unwrap();
        let widgets = app.get(&app.api("default", "/api/widget"), access).await;
        assert_eq!(widgets.status, 200, "{}", widgets.text);
        assert_eq!(widgets.json["data"]["widgets"], 3);
        let patients = app.get(&app.api("default", "/api/patient"), access).await;
        assert_eq!(patients.status, 403, "the token holds the widget scope only: {}", patients.text);

        // A reload that adds the plugin to the second site changes its catalogue at once.
        let manifest = app.data_dir.join("plugins.toml");
        let text = std::fs::read_to_string(&manifest).unwrap().replace("[sites.\"*\"]\nplugins = [\"patient\"]", "[sites.\"*\"]\nplugins = [\"patient\", \"test-widget\"]");
        std::fs::write(&manifest, text).unwrap();
        assert_eq!(app.state.registry.reload().await.errors, Vec::<String>::new());
        let discovery = app.send(reqwest::Method::GET, &oauth(app, "second", "/.well-known/openid-configuration"), None, None).await;
        assert!(discovery.json["scopes_supported"].as_array().unwrap().iter().any(|s| s == "user/widget.s"));
        let reply = register(app, "second", json!({"application_type": "private", "redirect_uris": [REDIRECT], "scope": SCOPE})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
}

/// The sites before the plugin made by `hearth plugin new visit-note`
/// (tests/plugins/visit-note, its own table and scopes) is added to one of them.
const VISIT_NOTE_START: &str = r#"[plugins.patient]
file = "patient.wasm"

[sites."*"]
plugins = ["patient"]
"#;

both! {
    options = Options::with_plugins(format!("dir = {:?}\n\n{VISIT_NOTE_START}", dist().display().to_string()));

    // The proof of a plugin that brings its own table and scope: the scaffolded plugin is
    // added to the running site `default` through plugins.toml and a reload (its migration
    // creates its table there), a client registers for its scope, obtains it through the
    // authorization pages (code + PKCE) and calls its routes, which write and read the
    // plugin's own table; the site `second`, which does not load it, refuses the scope at
    // registration and has no such table.
    async fn a_scaffolded_plugin_with_its_own_table_and_scope_joins_a_running_site(app) {
        const SCOPE: &str = "openid api:oemr user/visit_note.c user/visit_note.r";
        let manifest = app.data_dir.join("plugins.toml");
        let text = std::fs::read_to_string(&manifest).unwrap()
            + "\n[plugins.visit-note]\nfile = \"visit-note.wasm\"\n\n[sites.default]\nplugins = [\"patient\", \"visit-note\"]\n";
        std::fs::write(&manifest, text).unwrap();
        assert_eq!(app.state.registry.reload().await.errors, Vec::<String>::new());
        let applied = app.rows("default", "SELECT CAST(version AS BIGINT) AS version, name FROM plugin_migrations WHERE plugin = 'visit-note'").await;
        assert_eq!(applied, vec![json!({"version": 1, "name": "items"})]);
        let elsewhere = app.rows("second", "SELECT COUNT(*) AS n FROM plugin_migrations").await;
        assert_eq!(elsewhere[0]["n"], 0);

        let refused = register(app, "second", json!({"application_type": "private", "redirect_uris": [REDIRECT], "scope": SCOPE})).await;
        assert_oauth_error(&refused, 400, "invalid_scope");
        assert!(refused.json["error_description"].as_str().unwrap().contains("user/visit_note.c"), "{}", refused.text);

        let reply = register(app, "default", json!({"application_type": "private", "client_name": "Visit notes", "redirect_uris": [REDIRECT], "scope": SCOPE})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
        let secret = reply.json["client_secret"].as_str().unwrap().to_owned();
        enable(app, "default", &client_id).await;
        app.user("default", "doc", "physician").await;
        let (verifier, challenge) = pkce();
        let mut browser = Browser::new(app);
        let url = authorize_url(app, "default", &client_id, SCOPE, &[("code_challenge", &challenge), ("code_challenge_method", "S256")]);
        let consent = sign_in(&mut browser, &url, "users", "doc", "correct horse battery", "").await;
        assert_eq!(consent, "/oauth2/default/consent");
        let back = allow(&mut browser, &consent, None).await;
        let params = query_of(&back);
        let reply = redeem(app, "default", &client_id, Some(&secret), &params["code"], Some(&verifier)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["scope"], SCOPE);
        let access = reply.json["access_token"].as_str().unwrap();

        let created = app.post(&app.api("default", "/api/visit-note"), access, json!({"name": "first visit"})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json["data"]["id"].as_i64().unwrap();
        let read = app.get(&app.api("default", &format!("/api/visit-note/{id}")), access).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.json["data"]["name"], "first visit");
        let rows = app.rows("default", "SELECT id, name FROM x_visit_note__items").await;
        assert_eq!(rows, vec![json!({"id": id, "name": "first visit"})]);
        let patients = app.get(&app.api("default", "/api/patient"), access).await;
        assert_eq!(patients.status, 403, "the token holds the visit-note scopes only: {}", patients.text);
        let missing = app.get(&app.api("second", &format!("/api/visit-note/{id}")), access).await;
        assert_ne!(missing.status, 200, "{}", missing.text);
    }
}
