//! Clients, accounts and the network (docs/security.md), on both databases: sign-in
//! backoff per address and account behind trusted proxies, redirect URI rules, refresh
//! re-reading the account, tokens checked against their row, the admin reload scoped to
//! its site, caps on unknown sites and declared bodies, and signing keys sealed at rest.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hearth::crypto::jwt::{Alg, Signer};
use hearth::plugins::PluginState;
use hearth_tests::*;

const REDIRECT: &str = "https://app.example/callback";
const STAFF_SCOPE: &str = "openid offline_access api:oemr user/patient.rs";
const PASSWORD: &str = "correct horse battery";

/// A confidential staff client, enabled, with the password grant on: (id, secret).
async fn password_client(app: &TestApp, site: &str, grant: &str) -> (String, String) {
    let reply = register(
        app,
        site,
        json!({"application_type": "private", "client_name": "Staff app", "redirect_uris": [REDIRECT], "scope": STAFF_SCOPE}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.json["client_id"].as_str().unwrap().to_owned();
    enable(app, site, &id).await;
    let site_ref = app.state.sites.get(site).await.unwrap();
    hearth::oauth::settings::set(&site_ref, "oauth.password_grant", grant)
        .await
        .unwrap();
    (id, reply.json["client_secret"].as_str().unwrap().to_owned())
}

/// Sends a form to the token endpoint with client credentials and, when given, an
/// `X-Forwarded-For` header.
async fn token_request(
    app: &TestApp,
    site: &str,
    client: &(String, String),
    pairs: &[(&str, &str)],
    forwarded_for: Option<&str>,
) -> Reply {
    let mut request = app
        .client
        .post(oauth(app, site, "/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", client.0, client.1))
            ),
        )
        .body(encode(pairs));
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    Reply::from(request.send().await.expect("the server answers")).await
}

async fn sign_in(
    app: &TestApp,
    client: &(String, String),
    username: &str,
    password: &str,
    forwarded_for: Option<&str>,
) -> Reply {
    token_request(
        app,
        "default",
        client,
        &[
            ("grant_type", "password"),
            ("user_role", "users"),
            ("username", username),
            ("password", password),
            ("scope", STAFF_SCOPE),
        ],
        forwarded_for,
    )
    .await
}

fn assert_refused_for_too_many(reply: &Reply) {
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.json["error"], "invalid_grant", "{}", reply.text);
    assert!(
        reply.json["error_description"]
            .as_str()
            .unwrap()
            .contains("Too many failed sign-ins"),
        "{}",
        reply.text
    );
}

fn behind_a_proxy() -> Options {
    Options {
        trusted_proxies: vec!["127.0.0.1".into(), "::1".into()],
        ..Options::default()
    }
}

both! {
    options = behind_a_proxy();

    async fn twenty_failures_with_made_up_names_from_one_proxied_address_lock_no_one_out(app) {
        let client = password_client(app, "default", "users").await;
        app.user("default", "doc", "physician").await;
        for i in 0..20 {
            let reply = sign_in(app, &client, &format!("made-up-{i}"), "guess", Some("203.0.113.7")).await;
            assert_eq!(reply.status, 400, "{}", reply.text);
            assert_eq!(reply.json["error"], "invalid_grant");
        }
        let real = sign_in(app, &client, "doc", PASSWORD, Some("198.51.100.9")).await;
        assert_eq!(real.status, 200, "a real user elsewhere signs in: {}", real.text);
        let same_address = sign_in(app, &client, "doc", PASSWORD, Some("203.0.113.7")).await;
        assert_eq!(same_address.status, 200, "no key counts an address alone: {}", same_address.text);
    }

    async fn failures_for_one_account_back_off_per_address_then_everywhere(app) {
        let client = password_client(app, "default", "users").await;
        app.user("default", "doc", "physician").await;
        app.user("default", "nurse", "clinician").await;
        for _ in 0..5 {
            let reply = sign_in(app, &client, "doc", "wrong", Some("203.0.113.7")).await;
            assert_eq!(reply.status, 400);
        }
        // The pair (that address, doc) is refused, the right password included, for a minute.
        let refused = sign_in(app, &client, "doc", PASSWORD, Some("203.0.113.7")).await;
        assert_refused_for_too_many(&refused);
        let pair = app.rows("default", "SELECT failures, locked_until FROM oauth_login_failures WHERE login_key = 'default:users:doc@203.0.113.7'").await;
        assert_eq!(pair[0]["failures"], 5);
        let lock = pair[0]["locked_until"].as_i64().unwrap() - now();
        assert!((55..=61).contains(&lock), "the first refusal lasts a minute, not {lock} s");
        // Another address is another pair.
        let elsewhere = sign_in(app, &client, "doc", PASSWORD, Some("198.51.100.9")).await;
        assert_eq!(elsewhere.status, 200, "{}", elsewhere.text);
        // When the minute has passed, the next failure doubles the wait.
        app.rows("default", "UPDATE oauth_login_failures SET locked_until = 0 WHERE login_key = 'default:users:doc@203.0.113.7'").await;
        assert_eq!(sign_in(app, &client, "doc", "wrong", Some("203.0.113.7")).await.status, 400);
        let pair = app.rows("default", "SELECT failures, locked_until FROM oauth_login_failures WHERE login_key = 'default:users:doc@203.0.113.7'").await;
        assert_eq!(pair[0]["failures"], 6);
        let lock = pair[0]["locked_until"].as_i64().unwrap() - now();
        assert!((115..=121).contains(&lock), "then two minutes, not {lock} s");

        // Guessing one account from many addresses: past twenty, the account backs off
        // wherever the next try comes from; other accounts do not.
        for i in 0..20 {
            let address = format!("192.0.2.{}", i + 1);
            assert_eq!(sign_in(app, &client, "nurse", "wrong", Some(&address)).await.status, 400);
        }
        assert_refused_for_too_many(&sign_in(app, &client, "nurse", PASSWORD, Some("192.0.2.200")).await);
        assert_eq!(sign_in(app, &client, "doc", PASSWORD, Some("192.0.2.200")).await.status, 200);
    }

    async fn the_sign_in_page_backs_off_with_retry_after(app) {
        let client = password_client(app, "default", "users").await;
        app.user("default", "doc", "physician").await;
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = format!("{}?{}", oauth(app, "default", "/authorize"), encode(&[("response_type", "code"), ("client_id", &client.0), ("redirect_uri", REDIRECT), ("scope", "openid"), ("state", "s")]));
        let page = browser.get(&url).send().await.unwrap();
        let cookie = page.headers().get("set-cookie").unwrap().to_str().unwrap().split(';').next().unwrap().to_owned();
        let text = page.text().await.unwrap();
        let marker = "name=\"csrf_token\" value=\"";
        let csrf = text[text.find(marker).unwrap() + marker.len()..].split('"').next().unwrap().to_owned();
        let login = |password: &'static str, forwarded: &'static str| {
            let request = browser
                .post(oauth(app, "default", "/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .header("cookie", cookie.clone())
                .header("x-forwarded-for", forwarded)
                .body(encode(&[("csrf_token", &csrf), ("user_role", "users"), ("username", "doc"), ("password", password)]));
            async move { Reply::from(request.send().await.unwrap()).await }
        };
        for _ in 0..5 {
            assert_eq!(login("wrong", "203.0.113.7").await.status, 200);
        }
        let refused = login(PASSWORD, "203.0.113.7").await;
        assert_eq!(refused.status, 429, "{}", refused.text);
        let retry: i64 = refused.header("retry-after").expect("Retry-After").parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        assert!(refused.text.contains("Too many failed sign-ins"));
        let other = login(PASSWORD, "198.51.100.9").await;
        assert_eq!(other.status, 303, "the same account from another address: {}", other.text);
    }
}

both! {
    async fn forwarded_for_from_a_peer_that_is_no_trusted_proxy_is_ignored(app) {
        let client = password_client(app, "default", "users").await;
        app.user("default", "doc", "physician").await;
        for i in 0..5 {
            let spoofed = format!("198.51.100.{i}");
            assert_eq!(sign_in(app, &client, "doc", "wrong", Some(&spoofed)).await.status, 400);
        }
        // Every try counted against the real peer, whatever the header claimed.
        assert_refused_for_too_many(&sign_in(app, &client, "doc", PASSWORD, Some("192.0.2.77")).await);
        let rows = app.rows("default", "SELECT login_key FROM oauth_login_failures WHERE login_key LIKE '%@%'").await;
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["login_key"], "default:users:doc@127.0.0.1");
    }

    async fn redirect_uris_are_https_loopback_http_or_private_use_schemes(app) {
        for bad in [
            "javascript:alert(1)//",
            "JAVASCRIPT:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "file:///etc/passwd",
            "vbscript:msgbox(1)",
            "http://app.example/callback",
            "https://app.example/callback#fragment",
            "https://user@app.example/callback",
            "myapp:/callback",
        ] {
            let reply = register(app, "default", json!({"redirect_uris": [bad], "scope": "openid api:port patient/patient.rs"})).await;
            assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
            assert_eq!(reply.json["error"], "invalid_redirect_uri", "{bad}");
            let reply = register(app, "default", json!({"redirect_uris": [REDIRECT], "post_logout_redirect_uris": [bad]})).await;
            assert_eq!(reply.json["error"], "invalid_redirect_uri", "post-logout {bad}");
        }
        let count = app.rows("default", "SELECT COUNT(*) AS n FROM oauth_clients").await;
        assert_eq!(count[0]["n"], 0, "nothing was stored");
        for good in [
            "https://app.example/callback",
            "http://127.0.0.1:8123/callback",
            "http://[::1]:8123/callback",
            "http://localhost/callback",
            "com.example.app:/callback",
        ] {
            let reply = register(app, "default", json!({"redirect_uris": [good]})).await;
            assert_eq!(reply.status, 201, "{good}: {}", reply.text);
        }
    }

    async fn the_cli_registers_clients_under_the_same_redirect_rules(app) {
        let register = |uri: &'static str| {
            let data_dir = app.data_dir.to_str().unwrap().to_owned();
            async move {
                let cli = <hearth::cli::Cli as clap::Parser>::parse_from(["hearth", "--data-dir", &data_dir, "client", "register", "--site", "default", "--name", "Admin's app", "--redirect-uri", REDIRECT, "--redirect-uri", uri, "--scope", "openid api:oemr user/patient.rs", "--confidential"]);
                hearth::cli::run(cli).await
            }
        };
        for bad in ["javascript:alert(1)//", "data:text/html,x", "file:///etc/passwd", "http://app.example/cb", "https://app.example/cb#x"] {
            let error = format!("{:#}", register(bad).await.unwrap_err());
            assert!(error.contains("invalid_redirect_uri"), "{bad}: {error}");
        }
        let count = app.rows("default", "SELECT COUNT(*) AS n FROM oauth_clients").await;
        assert_eq!(count[0]["n"], 0, "nothing was stored");
        register("http://127.0.0.1:8123/cb").await.unwrap();
        let stored = app.rows("default", "SELECT enabled, vetted, redirect_uris FROM oauth_clients").await;
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0]["enabled"], 1, "an administrator's client is enabled");
        assert_eq!(stored[0]["vetted"], 1, "and vetted");
        assert_eq!(stored[0]["redirect_uris"], json!([REDIRECT, "http://127.0.0.1:8123/cb"]).to_string());
    }

    async fn authorize_errors_go_back_only_to_clients_an_administrator_vetted(app) {
        // A public patient app is enabled at once, but nobody vetted it.
        let reply = register(app, "default", json!({"redirect_uris": ["https://evil.example/catch"], "scope": "openid api:port patient/patient.rs"})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        let client_id = reply.json["client_id"].as_str().unwrap().to_owned();
        let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let url = |response_type: &str| {
            format!("{}?{}", oauth(app, "default", "/authorize"), encode(&[("response_type", response_type), ("client_id", &client_id), ("redirect_uri", "https://evil.example/catch"), ("scope", "openid"), ("state", "s")]))
        };
        let bounced = Reply::from(browser.get(url("token")).send().await.unwrap()).await;
        assert_eq!(bounced.status, 400, "{}", bounced.text);
        assert!(bounced.header("location").is_none(), "no open redirector");
        // Once an administrator enables (vets) it, errors go back to it.
        enable(app, "default", &client_id).await;
        let vetted = Reply::from(browser.get(url("token")).send().await.unwrap()).await;
        assert_eq!(vetted.status, 303, "{}", vetted.text);
        assert!(vetted.header("location").unwrap().starts_with("https://evil.example/catch?error=unsupported_response_type"));
        // A URI stored before the rules (or by hand) is never redirected to.
        app.rows("default", "UPDATE oauth_clients SET redirect_uris = '[\"javascript:alert(1)//\"]'").await;
        let stored = Reply::from(browser.get(format!("{}?{}", oauth(app, "default", "/authorize"), encode(&[("response_type", "token"), ("client_id", &client_id), ("scope", "openid")]))).send().await.unwrap()).await;
        assert_eq!(stored.status, 400, "{}", stored.text);
        assert!(stored.header("location").is_none());
        assert!(stored.text.contains("cannot be used"), "{}", stored.text);
    }

    async fn refresh_rereads_the_account_and_issues_its_current_role(app) {
        let client = password_client(app, "default", "both").await;
        app.user("default", "doc", "physician").await;
        let signed_in = sign_in(app, &client, "doc", PASSWORD, None).await;
        assert_eq!(signed_in.status, 200, "{}", signed_in.text);
        assert_eq!(claims(signed_in.json["access_token"].as_str().unwrap())["acl_role"], "physician");
        let refresh = |token: String| {
            let client = client.clone();
            async move {
                token_request(app, "default", &client, &[("grant_type", "refresh_token"), ("refresh_token", &token)], None).await
            }
        };
        // A changed role: the refreshed token carries the new one.
        app.rows("default", "UPDATE users SET role = 'clinician' WHERE username = 'doc'").await;
        let refreshed = refresh(signed_in.json["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(refreshed.status, 200, "{}", refreshed.text);
        let access = refreshed.json["access_token"].as_str().unwrap().to_owned();
        assert_eq!(claims(&access)["acl_role"], "clinician");
        assert_eq!(app.get(&app.api("default", "/api/patient"), &access).await.status, 200);
        // A disabled user: refused, and the grant's access tokens stop working.
        app.rows("default", "UPDATE users SET active = 0 WHERE username = 'doc'").await;
        let refused = refresh(refreshed.json["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert_eq!(refused.json["error"], "invalid_grant");
        assert_eq!(app.get(&app.api("default", "/api/patient"), &access).await.status, 401);

        // A patient whose portal login is removed.
        let staff = app.user_token("default", "admin", "openid api:oemr user/patient.crus").await;
        let (_, puuid) = app.create_patient("default", &staff, "Ann", "Smith").await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::oauth::accounts::set_portal_login(&site, &puuid, "ann", "ann@example.org", "patient password").await.unwrap();
        let patient = token_request(app, "default", &client, &[("grant_type", "password"), ("user_role", "patient"), ("username", "ann"), ("password", "patient password"), ("email", "ann@example.org"), ("scope", "openid offline_access")], None).await;
        assert_eq!(patient.status, 200, "{}", patient.text);
        let again = refresh(patient.json["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(again.status, 200, "{}", again.text);
        app.rows("default", "DELETE FROM portal_logins").await;
        let refused = refresh(again.json["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert_eq!(refused.json["error"], "invalid_grant");
    }

    async fn a_forged_token_with_a_real_token_id_but_other_claims_is_refused(app) {
        app.user("default", "doc", "physician").await;
        let token = app.user_token("default", "doc", "openid api:oemr user/patient.rs").await;
        let url = app.api("default", "/api/patient");
        assert_eq!(app.get(&url, &token).await.status, 200);
        // The attacker holds the site's signing key (as finding 1 got it) and a real jti.
        let site = app.state.sites.get("default").await.unwrap();
        let keyring = app.state.sites.keyring().unwrap();
        let (kid, stored): (String, Vec<u8>) = hearth::on_db!(&site.db, |pool| {
            use sqlx::Row;
            let row = sqlx::query("SELECT kid, private_key FROM signing_keys WHERE active = 1").fetch_one(pool).await.unwrap();
            (row.get("kid"), row.get("private_key"))
        });
        let der = keyring.open_key(&kid, &stored).unwrap().der;
        let signer = Signer::from_pkcs8(&kid, Alg::Rs256, &der).unwrap();
        let original = claims(&token);
        let forge = |change: &dyn Fn(&mut Value)| {
            let mut forged = original.clone();
            change(&mut forged);
            signer.sign(&forged).unwrap()
        };
        let wider = forge(&|c| {
            c["scope"] = json!("openid api:oemr user/patient.cruds user/hearth-admin.ru");
            c["acl_role"] = json!("admin");
        });
        let system = forge(&|c| {
            c["role"] = json!("system");
            c["scope"] = json!("system/hearth-admin.ru");
        });
        let someone_else = forge(&|c| c["sub"] = json!(uuid::Uuid::new_v4().to_string()));
        let other_client = forge(&|c| c["client_id"] = json!("another-client"));
        for (forged, what) in [(&wider, "wider scopes and role"), (&system, "system role"), (&someone_else, "another subject"), (&other_client, "another client")] {
            let reply = app.get(&url, forged).await;
            assert_eq!(reply.status, 401, "{what}: {}", reply.text);
            assert!(reply.text.contains("claims differ"), "{what}: {}", reply.text);
            let admin = app.get(&app.api("default", "/admin/plugins"), forged).await;
            assert_eq!(admin.status, 401, "{what} on the admin API: {}", admin.text);
        }
        // A row from before digests: its own columns are compared.
        app.rows("default", "UPDATE api_token SET claims_digest = NULL").await;
        assert_eq!(app.get(&url, &token).await.status, 200);
        assert_eq!(app.get(&url, &wider).await.status, 401);
        assert_eq!(app.get(&url, &someone_else).await.status, 401);
    }

    async fn signing_keys_are_sealed_at_rest_plain_ones_are_sealed_on_start_and_the_key_rotates(app) {
        let token = app.user_token("default", "admin", "openid api:oemr user/patient.rs").await;
        let url = app.api("default", "/api/patient");
        let stored = |site: &str| {
            let site = site.to_owned();
            async move {
                let site = app.state.sites.get(&site).await.unwrap();
                hearth::on_db!(&site.db, |pool| {
                    use sqlx::Row;
                    let row = sqlx::query("SELECT kid, private_key FROM signing_keys").fetch_one(pool).await.unwrap();
                    (row.get::<String, _>("kid"), row.get::<Vec<u8>, _>("private_key"))
                })
            }
        };
        let (kid, sealed) = stored("default").await;
        assert!(sealed.starts_with(b"HKK1"), "sealed at rest");
        let keyring = app.state.sites.keyring().unwrap();
        let der = keyring.open_key(&kid, &sealed).unwrap().der;
        assert!(!sealed.windows(32).any(|w| der.windows(32).next() == Some(w)), "no plain key bytes");
        let kek_file = app.data_dir.join("kek");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            assert_eq!(std::fs::metadata(&kek_file).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // A key stored in plain text by an older version is sealed when the site opens.
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE signing_keys SET private_key = $1 WHERE kid = $2").bind(&der).bind(&kid).execute(pool).await.unwrap();
        });
        let restarted = hearth::sites::Sites::open(&app.data_dir).await.unwrap();
        restarted.load("default").await.unwrap().unwrap();
        restarted.close().await;
        let (_, resealed) = stored("default").await;
        assert!(resealed.starts_with(b"HKK1"), "sealed again on start");
        assert_eq!(keyring.open_key(&kid, &resealed).unwrap().der, der);

        // Rotation: a new KEK, the old one gone, every site's keys sealed with the new one,
        // the signing keys themselves unchanged (tokens issued before stay valid).
        let old_kek = std::fs::read_to_string(&kek_file).unwrap();
        let cli = <hearth::cli::Cli as clap::Parser>::parse_from(["hearth", "--data-dir", app.data_dir.to_str().unwrap(), "kek", "rotate"]);
        hearth::cli::run(cli).await.unwrap();
        assert_ne!(std::fs::read_to_string(&kek_file).unwrap(), old_kek);
        assert!(!app.data_dir.join("kek.previous").exists());
        let rotated = app.state.sites.keyring().unwrap();
        assert_ne!(rotated.current_id(), keyring.current_id());
        for site in SITES {
            let (kid, sealed) = stored(site).await;
            let opened = rotated.open_key(&kid, &sealed).unwrap();
            assert!(opened.current, "site {site} is sealed with the new key");
            assert!(keyring.open_key(&kid, &sealed).is_err(), "the old key no longer opens site {site}");
        }
        let again = hearth::sites::Sites::open(&app.data_dir).await.unwrap();
        let reopened = again.load("default").await.unwrap().unwrap();
        assert_eq!(reopened.keys().jwks, site.keys().jwks, "the same signing keys");
        again.close().await;
        assert_eq!(app.get(&url, &token).await.status, 200);
    }
}

fn serving_version(app: &TestApp, site: &str) -> Option<String> {
    let statuses = app.state.registry.statuses(site);
    let patient = statuses
        .iter()
        .find(|s| s.name == "patient")
        .expect("patient");
    assert_eq!(patient.state, PluginState::Serving, "{patient:?}");
    patient.version.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_of_one_site_reloads_that_site_only() {
    let plugins = PluginDir::new();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            plugins_toml: Some(plugins.manifest()),
            watch_plugins: Some(false),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    std::fs::copy(
        dist().join("patient-v2.wasm"),
        plugins.0.join("patient.wasm"),
    )
    .unwrap();
    let scope = "openid api:oemr user/patient.rs user/hearth-admin.ru";
    let second_admin = app.user_token("second", "admin", scope).await;
    let reply = app
        .post(
            &app.api("second", "/admin/plugins/reload"),
            &second_admin,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["report"]["changed"], json!(["patient 2.0.0"]));
    assert_eq!(serving_version(&app, "second").as_deref(), Some("2.0.0"));
    assert_eq!(
        serving_version(&app, "default").as_deref(),
        Some("1.0.0"),
        "the other site keeps what it served"
    );
    // Its token does not reach the other site's reload at all.
    let reply = app
        .post(
            &app.api("default", "/admin/plugins/reload"),
            &second_admin,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(serving_version(&app, "default").as_deref(), Some("1.0.0"));
    // The site's own administrator reloads it.
    let default_admin = app.user_token("default", "admin", scope).await;
    let reply = app
        .post(
            &app.api("default", "/admin/plugins/reload"),
            &default_admin,
            json!({}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(serving_version(&app, "default").as_deref(), Some("2.0.0"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_naming_random_sites_keep_the_unknown_site_cache_bounded() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let limit = hearth::sites::MISSING_LIMIT;
    for i in 0..limit + 200 {
        let url = app.api(
            &format!("nosuch-{i}-{:08x}", rand::random::<u32>()),
            "/api/patient",
        );
        let reply = app.send(reqwest::Method::GET, &url, None, None).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.json["error"], "unknown_site");
    }
    let remembered = app.state.sites.missing_remembered();
    assert!(remembered <= limit, "{remembered} names remembered");
    assert!(remembered > 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_over_the_cap_is_answered_413_without_reading_the_body() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app
        .user_token("default", "admin", "openid api:oemr user/patient.crus")
        .await;
    let address = app.listen.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    // Headers only: the 3 MiB body is announced and never sent.
    let head = format!(
        "POST /apis/default/api/patient HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        3 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // Were the server reading the body it would wait for it forever; the guard only stops
    // a failing test from hanging.
    let read = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let n = stream.read(&mut buffer).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
            if String::from_utf8_lossy(&answer).contains("body_too_large") {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no answer without the body");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_cap_sent_whole_still_gets_its_413_read_late() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app
        .user_token("default", "admin", "openid api:oemr user/patient.crus")
        .await;
    let address = app.listen.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    // More than the kernel's socket buffers on both sides hold, so the client is still
    // sending when the answer comes.
    let length = 24 * 1024 * 1024;
    let mut request = format!(
        "POST /apis/default/api/patient HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {token}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
    .into_bytes();
    request.resize(request.len() + length, b' ');
    // The whole body is sent although the answer comes after the headers; a server that
    // closed with it unread would reset the connection, and the reset would discard the
    // answer this client has not read yet.
    let sent = writer.write_all(&request).await;
    assert!(sent.is_ok(), "the server reads what it refused: {sent:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(60), reader.read_to_end(&mut answer)).await;
    let read = read.expect("the server closes after its answer");
    assert!(read.is_ok(), "no reset: {read:?}");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("body_too_large"), "{text}");
    app.stop().await;
}

/// `initdb`, `pg_ctl` and `postgres` of PostgreSQL 15, when installed.
fn pg_bin() -> Option<PathBuf> {
    let dir = Path::new("/usr/lib/postgresql/15/bin");
    dir.join("initdb").exists().then(|| dir.to_path_buf())
}

/// A throwaway PostgreSQL cluster in a temporary folder on a free port, run as the
/// `postgres` user when the test runs as root (initdb refuses root). Stopped and removed
/// when dropped.
struct PrivateCluster {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl PrivateCluster {
    fn start(bin: PathBuf) -> PrivateCluster {
        let dir = std::env::temp_dir().join(format!("hearth-pg-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = running_as_root();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = PrivateCluster {
            bin,
            dir,
            port,
            as_postgres,
        };
        if as_postgres {
            let status = std::process::Command::new("chown")
                .arg("postgres")
                .arg(&cluster.dir)
                .status()
                .unwrap();
            assert!(status.success(), "chown for the postgres user");
        }
        let data = cluster.dir.join("data");
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "root",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        cluster.ctl("start");
        cluster
    }

    /// Runs one of the cluster's programs (as `postgres` when needed).
    fn run(&self, program: &str, args: &[&str]) {
        let path = self.bin.join(program);
        let output = if self.as_postgres {
            std::process::Command::new("setpriv")
                .args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
                .arg(&path)
                .args(args)
                .output()
                .unwrap()
        } else {
            std::process::Command::new(&path)
                .args(args)
                .output()
                .unwrap()
        };
        assert!(
            output.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let data = self.dir.join("data");
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=60 -c fsync=off",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("log");
        let mut args = vec![
            "-D",
            data.to_str().unwrap(),
            "-o",
            &options,
            "-l",
            log.to_str().unwrap(),
            "-w",
        ];
        if action != "start" {
            args.extend(["-m", "fast"]);
        }
        args.push(action);
        self.run("pg_ctl", &args);
    }

    fn url(&self) -> String {
        format!("postgres://root@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let path = self.bin.join("pg_ctl");
        let args = [
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ];
        let _ = if self.as_postgres {
            std::process::Command::new("setpriv")
                .args(["--reuid=postgres", "--regid=postgres", "--clear-groups"])
                .arg(&path)
                .args(args)
                .output()
        } else {
            std::process::Command::new(&path).args(args).output()
        };
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// True when this process runs as root (uid 0).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|uid| uid == "0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarting_under_eight_writers_answers_2xx_or_503_and_keeps_every_acknowledged_write()
 {
    let Some(bin) = pg_bin() else {
        eprintln!("skipped: PostgreSQL 15's initdb is not installed");
        return;
    };
    let cluster = PrivateCluster::start(bin);
    let app = TestApp::spawn_with(
        Backend::Postgres,
        Options {
            postgres_url: Some(cluster.url()),
            ..Options::default()
        },
    )
    .await
    .expect("a server on the private cluster");
    let token = app
        .user_token("default", "admin", "openid api:oemr user/patient.crus")
        .await;
    let url = app.api("default", "/api/patient");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let (client, url, token, stop) =
            (app.client.clone(), url.clone(), token.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
            let mut unavailable = Vec::new();
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                n += 1;
                let lname = format!("W{writer}N{n}");
                let body =
                    json!({"fname": "Fault", "lname": lname, "sex": "Female", "DOB": "1980-05-06"});
                let reply = Reply::from(
                    client
                        .post(&url)
                        .bearer_auth(&token)
                        .json(&body)
                        .send()
                        .await
                        .expect("the server answers"),
                )
                .await;
                *statuses.entry(reply.status).or_default() += 1;
                if (200..300).contains(&reply.status) {
                    acknowledged.push(lname);
                } else if reply.status == 503 {
                    unavailable.push(reply);
                }
            }
            (acknowledged, statuses, unavailable)
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    tokio::task::block_in_place(|| cluster.ctl("restart"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = Vec::new();
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut unavailable = Vec::new();
    for writer in writers {
        let (acks, counts, refused) = writer.await.unwrap();
        acknowledged.extend(acks);
        for (status, count) in counts {
            *statuses.entry(status).or_default() += count;
        }
        unavailable.extend(refused);
    }
    eprintln!("statuses under the restart: {statuses:?}");
    assert!(
        statuses.keys().all(|s| (200..300).contains(s) || *s == 503),
        "only 2xx and 503: {statuses:?}"
    );
    for reply in &unavailable {
        assert!(
            reply.header("retry-after").is_some(),
            "503 with Retry-After: {}",
            reply.text
        );
        let cause = reply.json["error"].as_str().unwrap_or_default();
        assert!(
            ["database_unavailable", "plugin_timeout"].contains(&cause),
            "a 503 names its cause: {}",
            reply.text
        );
        assert!(
            !reply.json["message"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{}",
            reply.text
        );
    }
    // Every acknowledged write is there.
    let site = app.state.sites.get("default").await.unwrap();
    let stored: Vec<String> = hearth::on_db!(&site.db, |pool| {
        use sqlx::Row;
        sqlx::query("SELECT lname FROM patient_data WHERE fname = 'Fault'")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get::<String, _>("lname"))
            .collect()
    });
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let missing: Vec<&String> = acknowledged
        .iter()
        .filter(|l| !stored.contains(*l))
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged writes lost: {missing:?}",
        missing.len()
    );
    assert!(
        acknowledged.len() > 8,
        "the writers wrote ({})",
        acknowledged.len()
    );

    // A stopped database: the token check answers 503 naming the cause (once the pool
    // has given up connecting).
    let one = format!("{url}?_limit=1");
    tokio::task::block_in_place(|| cluster.ctl("stop"));
    let reply = app.get(&one, &token).await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert!(reply.header("retry-after").is_some());
    assert_eq!(
        reply.json["error"], "database_unavailable",
        "{}",
        reply.text
    );
    // Started again, the server recovers by itself.
    tokio::task::block_in_place(|| cluster.ctl("start"));
    let mut last = None;
    for _ in 0..50 {
        let reply = app.get(&one, &token).await;
        if reply.status == 200 {
            last = None;
            break;
        }
        last = Some(reply);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        last.is_none(),
        "the server did not recover after the database came back: {last:?}"
    );
    app.stop().await;
    drop(cluster);
}
