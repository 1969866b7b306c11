//! The admin console (`/admin`) against the real server, on both databases: a real HTTP
//! client that keeps cookies and posts the pages' own forms (no JavaScript is involved),
//! for each page's GET and each form's POST, CSRF and non-admin refusals, framing and
//! cookie attributes; and headless Chromium (`tests/js/console-flow.mjs`, playwright-core
//! with axe-core injected in every page) walking each page's main action, with a
//! screenshot of each page saved under `target/test-artifacts/console/{sqlite,postgres}/`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use hearth_tests::*;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// The password [`TestApp::user`] gives every user.
const PASSWORD: &str = "correct horse battery";

/// A browser without JavaScript: keeps cookies by name (every console cookie has the one
/// path `/admin`), never follows redirects.
struct Browser<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// What a page answered.
struct Page {
    status: u16,
    location: Option<String>,
    set_cookies: Vec<String>,
    headers: reqwest::header::HeaderMap,
    html: String,
}

impl Page {
    /// The value of the first hidden `csrf_token` field.
    fn csrf(&self) -> String {
        let marker = "name=\"csrf_token\" value=\"";
        let at = self.html.find(marker).expect("a CSRF field") + marker.len();
        let end = self.html[at..].find('"').expect("the field ends");
        self.html[at..at + end].to_owned()
    }

    fn assert_no_frame_no_script(&self) {
        assert_eq!(self.headers["x-frame-options"], "DENY");
        let csp = self.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert_eq!(self.headers["cache-control"], "no-store");
        assert!(!self.html.contains("<script"), "no script on the page");
    }
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Browser<'a> {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn read(&mut self, response: reqwest::Response) -> Page {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for cookie in &set_cookies {
            let pair = cookie.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || cookie.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        Page {
            status,
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            set_cookies,
            headers,
            html: response.text().await.unwrap(),
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(format!("{}{path}", self.app.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(format!("{}{path}", self.app.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap();
        self.read(response).await
    }

    /// Signs in to `site` as `username`; answers the sign-in POST's page.
    async fn sign_in(&mut self, site: &str, username: &str, password: &str) -> Page {
        let form = self.get(&format!("/admin/sign-in?site={site}")).await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post(
            "/admin/sign-in",
            &[
                ("csrf_token", &csrf),
                ("site", site),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Signs in as an administrator of `site` and answers the CSRF token of the session.
    async fn signed_in(&mut self, site: &str, username: &str) -> String {
        let answer = self.sign_in(site, username, PASSWORD).await;
        assert_eq!(answer.status, 303, "{}", answer.html);
        self.get("/admin/users").await.csrf()
    }
}

async fn user_row(app: &TestApp, site: &str, username: &str) -> (String, i64) {
    let site = app.state.sites.get(site).await.unwrap();
    let user = hearth::auth::users::list(&site)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.username == username)
        .expect("the user exists");
    (user.role, i64::from(user.active))
}

fn notice_of(page: &Page) -> String {
    let location = page.location.as_deref().expect("a redirect");
    let query = location.split_once('?').expect("a notice").1;
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "notice")
        .map(|(_, v)| v.into_owned())
        .expect("a notice")
}

/// The text inside `<p class="secret" id="{id}">`.
fn secret(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\">");
    let at = html.find(&marker).expect("the secret is shown") + marker.len();
    let end = html[at..].find('<').unwrap();
    html[at..at + end].to_owned()
}

both! {
    async fn an_admin_signs_in_with_secure_cookies_and_others_are_refused(app) {
        app.user("default", "boss", "admin").await;
        app.user("default", "nurse", "clinician").await;
        let mut browser = Browser::new(app);

        let form = browser.get("/admin/sign-in?site=default").await;
        assert_eq!(form.status, 200);
        form.assert_no_frame_no_script();
        let sign_in_cookie = form.set_cookies.iter().find(|c| c.starts_with("hearth_admin_sign_in=")).expect("a double-submit cookie");
        for attribute in ["Path=/admin", "HttpOnly", "Secure", "SameSite=Strict"] {
            assert!(sign_in_cookie.contains(attribute), "{sign_in_cookie}");
        }

        // Unsigned-in pages send the browser to the sign-in page.
        for path in ["/admin", "/admin/users", "/admin/audit.csv"] {
            let page = browser.get(path).await;
            assert_eq!(page.status, 303, "{path}");
            assert_eq!(page.location.as_deref(), Some("/admin/sign-in"), "{path}");
        }

        // A form without the double-submit token is refused.
        let forged = browser.post("/admin/sign-in", &[("csrf_token", "forged"), ("site", "default"), ("username", "boss"), ("password", PASSWORD)]).await;
        assert_eq!(forged.status, 403);
        assert!(!browser.cookies.contains_key("hearth_admin"));

        let wrong = browser.sign_in("default", "boss", "not the password").await;
        assert_eq!(wrong.status, 200);
        assert!(wrong.html.contains("The site, user name or password is wrong."));
        let unknown_site = browser.sign_in("nowhere", "boss", PASSWORD).await;
        assert!(unknown_site.html.contains("The site, user name or password is wrong."), "as vague as a wrong password");

        let clinician = browser.sign_in("default", "nurse", PASSWORD).await;
        assert_eq!(clinician.status, 403);
        assert!(clinician.html.contains("Only staff users whose role is admin"));
        assert!(!browser.cookies.contains_key("hearth_admin"));

        // An admin of one site is no one on another.
        let elsewhere = browser.sign_in("second", "boss", PASSWORD).await;
        assert!(elsewhere.html.contains("The site, user name or password is wrong."));

        let signed_in = browser.sign_in("default", "boss", PASSWORD).await;
        assert_eq!(signed_in.status, 303);
        assert_eq!(signed_in.location.as_deref(), Some("/admin/sites"));
        let session = signed_in.set_cookies.iter().find(|c| c.starts_with("hearth_admin=")).expect("a session cookie");
        for attribute in ["Path=/admin", "HttpOnly", "Secure", "SameSite=Strict", "Max-Age=3600"] {
            assert!(session.contains(attribute), "{session}");
        }
        assert!(session.starts_with("hearth_admin=default~"), "{session}");
        let stored = app.rows("default", "SELECT COUNT(*) AS n FROM console_sessions").await;
        assert_eq!(stored[0]["n"], 1);
        let home = browser.get("/admin").await;
        assert_eq!(home.location.as_deref(), Some("/admin/sites"));

        // Signing out ends the session on the server, not only in the browser.
        let cookie = browser.cookies["hearth_admin"].clone();
        let csrf = browser.get("/admin/sites").await.csrf();
        let out = browser.post("/admin/sign-out", &[("csrf_token", &csrf)]).await;
        assert_eq!(out.status, 303);
        assert!(out.location.unwrap().starts_with("/admin/sign-in?site=default"));
        browser.cookies.insert("hearth_admin".into(), cookie);
        assert_eq!(browser.get("/admin/sites").await.status, 303, "the old cookie no longer works");
    }

    async fn every_page_renders_for_an_admin_without_script_or_framing(app) {
        app.user("default", "boss", "admin").await;
        let mut browser = Browser::new(app);
        browser.signed_in("default", "boss").await;
        for (path, expect) in [
            ("/admin/sites", "Signed in here"),
            ("/admin/users", "Add a user"),
            ("/admin/clients", "Register a SMART app"),
            ("/admin/clients/register", "Launch URI (EHR launch)"),
            ("/admin/plugins", "patient.wasm"),
            ("/admin/audit", "Export the matching requests as CSV"),
            ("/admin/settings", "oauth.password_grant"),
        ] {
            let page = browser.get(path).await;
            assert_eq!(page.status, 200, "{path}: {}", page.html);
            page.assert_no_frame_no_script();
            assert!(page.html.contains(expect), "{path} shows {expect}");
            assert!(page.html.contains("Signed in as <strong>boss</strong> on site <strong>default</strong>"), "{path}");
            assert!(page.html.contains("<html lang=\"en\">"), "{path}");
        }
        let sites = browser.get("/admin/sites").await;
        assert!(sites.html.contains("/admin/sign-in?site=second"), "another site can be signed in to");
    }

    async fn every_form_refuses_a_missing_or_wrong_csrf_token(app) {
        app.user("default", "boss", "admin").await;
        let victim = app.user("default", "victim", "clinician").await;
        let mut browser = Browser::new(app);
        browser.signed_in("default", "boss").await;
        for path in [
            "/admin/users", "/admin/users/role", "/admin/users/active", "/admin/users/password",
            "/admin/clients/enabled", "/admin/clients/scope", "/admin/clients/secret",
            "/admin/clients/register", "/admin/plugins/reload", "/admin/plugins/route", "/admin/settings",
            "/admin/settings/initial-token", "/admin/sign-out",
        ] {
            for token in [None, Some("not-the-token")] {
                let mut form = vec![("user", victim.as_str()), ("role", "admin"), ("active", "0"), ("name", "oauth.password_grant"), ("value", "both")];
                if let Some(token) = token {
                    form.push(("csrf_token", token));
                }
                let page = browser.post(path, &form).await;
                assert_eq!(page.status, 403, "{path} with {token:?}");
                assert!(page.html.contains("The form is stale"), "{path}");
            }
        }
        assert_eq!(user_row(app, "default", "victim").await, ("clinician".to_owned(), 1), "nothing changed");
        let site = app.state.sites.get("default").await.unwrap();
        assert_eq!(hearth::registrar::settings::get(&site, "oauth.password_grant").await.unwrap(), "off");
        // Not a form at all.
        let csrf = browser.get("/admin/users").await.csrf();
        let json = browser.client.post(format!("{}/admin/users/role", app.base))
            .header("cookie", browser.cookie_header())
            .header("content-type", "application/json")
            .body(format!("{{\"csrf_token\":\"{csrf}\"}}"))
            .send().await.unwrap();
        assert_eq!(json.status(), 400);
    }

    async fn users_are_added_given_roles_disabled_and_new_passwords(app) {
        app.user("default", "boss", "admin").await;
        let boss = user_row(app, "default", "boss").await;
        assert_eq!(boss.0, "admin");
        let mut browser = Browser::new(app);
        let csrf = browser.signed_in("default", "boss").await;

        let added = browser.post("/admin/users", &[("csrf_token", &csrf), ("username", "fran"), ("fname", "Fran"), ("lname", "Desk"), ("role", "front_office"), ("password", "a long password")]).await;
        assert_eq!(added.status, 303);
        assert_eq!(notice_of(&added), "Added the user fran.");
        assert_eq!(user_row(app, "default", "fran").await, ("front_office".to_owned(), 1));
        let site = app.state.sites.get("default").await.unwrap();
        assert!(hearth::registrar::accounts::check_user(&site, "fran", "a long password").await.unwrap().is_some(), "fran can sign in");
        let other = app.state.sites.get("second").await.unwrap();
        assert!(hearth::auth::users::list(&other).await.unwrap().iter().all(|u| u.username != "fran"), "only on the admin's site");

        for (form, status) in [
            (vec![("username", "fran"), ("role", "clinician"), ("password", "a long password")], 409),
            (vec![("username", "short"), ("role", "clinician"), ("password", "2short")], 400),
            (vec![("username", "nobody"), ("role", "wizard"), ("password", "a long password")], 400),
            (vec![("username", ""), ("role", "clinician"), ("password", "a long password")], 400),
        ] {
            let mut form = form;
            form.push(("csrf_token", &csrf));
            assert_eq!(browser.post("/admin/users", &form).await.status, status, "{form:?}");
        }

        let list = browser.get("/admin/users").await;
        let fran = hearth::auth::users::list(&site).await.unwrap().into_iter().find(|u| u.username == "fran").unwrap().uuid;
        assert!(list.html.contains(&fran));
        let role = browser.post("/admin/users/role", &[("csrf_token", &csrf), ("user", &fran), ("role", "physician")]).await;
        assert_eq!(notice_of(&role), "fran now has the role physician.");
        assert_eq!(user_row(app, "default", "fran").await.0, "physician");

        let disabled = browser.post("/admin/users/active", &[("csrf_token", &csrf), ("user", &fran), ("active", "0")]).await;
        assert_eq!(notice_of(&disabled), "fran is disabled.");
        assert_eq!(user_row(app, "default", "fran").await.1, 0);
        assert!(hearth::registrar::accounts::check_user(&site, "fran", "a long password").await.unwrap().is_none(), "a disabled user cannot sign in");
        browser.post("/admin/users/active", &[("csrf_token", &csrf), ("user", &fran), ("active", "1")]).await;
        assert_eq!(user_row(app, "default", "fran").await.1, 1);

        let reset = browser.post("/admin/users/password", &[("csrf_token", &csrf), ("user", &fran), ("password", "another long one")]).await;
        assert_eq!(notice_of(&reset), "Set a new password for fran.");
        assert!(hearth::registrar::accounts::check_user(&site, "fran", "another long one").await.unwrap().is_some());
        assert!(hearth::registrar::accounts::check_user(&site, "fran", "a long password").await.unwrap().is_none());
        assert_eq!(browser.post("/admin/users/password", &[("csrf_token", &csrf), ("user", &fran), ("password", "short")]).await.status, 400);

        // The admin cannot lock themselves out; an unknown user is a 404.
        let me = hearth::auth::users::list(&site).await.unwrap().into_iter().find(|u| u.username == "boss").unwrap().uuid;
        assert_eq!(browser.post("/admin/users/role", &[("csrf_token", &csrf), ("user", &me), ("role", "clinician")]).await.status, 409);
        assert_eq!(browser.post("/admin/users/active", &[("csrf_token", &csrf), ("user", &me), ("active", "0")]).await.status, 409);
        assert_eq!(browser.post("/admin/users/role", &[("csrf_token", &csrf), ("user", "00000000-0000-0000-0000-000000000000"), ("role", "clinician")]).await.status, 404);

        // Demoting an administrator ends their console sessions at once.
        let mut other_admin = Browser::new(app);
        let promote = browser.post("/admin/users/role", &[("csrf_token", &csrf), ("user", &fran), ("role", "admin")]).await;
        assert_eq!(promote.status, 303);
        assert_eq!(other_admin.sign_in("default", "fran", "another long one").await.status, 303);
        assert_eq!(other_admin.get("/admin/users").await.status, 200);
        browser.post("/admin/users/role", &[("csrf_token", &csrf), ("user", &fran), ("role", "clinician")]).await;
        assert_eq!(other_admin.get("/admin/users").await.status, 303, "fran is no longer an admin");

        // Every action is in the audit log, the admin as its user.
        app.flush_audit().await;
        let audited = app.rows("default", "SELECT COUNT(*) AS n FROM api_log WHERE path LIKE '/admin/users%' AND method = 'POST'").await;
        assert!(audited[0]["n"].as_i64().unwrap() >= 6, "{audited:?}");
    }

    async fn clients_are_registered_enabled_rescoped_and_their_secrets_rotated(app) {
        app.user("default", "boss", "admin").await;
        let mut browser = Browser::new(app);
        let csrf = browser.signed_in("default", "boss").await;

        let form = browser.get("/admin/clients/register").await;
        for field in ["client_name", "redirect_uris", "initiate_login_uri", "scope", "application_type", "jwks_uri", "jwks"] {
            assert!(form.html.contains(&format!("name=\"{field}\"")), "the form asks for {field}");
        }
        let registered = browser.post("/admin/clients/register", &[
            ("csrf_token", &csrf), ("application_type", "private"), ("client_name", "Growth chart"),
            ("redirect_uris", "https://growth.example/callback\r\nhttps://growth.example/cb2"),
            ("initiate_login_uri", "https://growth.example/launch"),
            ("scope", "openid offline_access api:oemr user/patient.rs"), ("contacts", "ops@example.org"),
            ("token_endpoint_auth_method", ""), ("jwks_uri", ""), ("jwks", ""),
        ]).await;
        assert_eq!(registered.status, 201, "{}", registered.html);
        assert_eq!(registered.headers["cache-control"], "no-store");
        let client_id = secret(&registered.html, "client-id");
        let first_secret = secret(&registered.html, "client-secret");
        let site = app.state.sites.get("default").await.unwrap();
        let client = hearth::registrar::clients::find(&site, &client_id).await.unwrap().expect("stored");
        assert!(client.enabled && client.vetted, "an administrator's registration is enabled and vetted");
        assert_eq!(client.redirect_uris, ["https://growth.example/callback", "https://growth.example/cb2"]);
        assert_eq!(client.metadata["initiate_login_uri"], "https://growth.example/launch");
        assert_eq!(client.secret_hash.as_deref(), Some(hearth::crypto::sha256_hex(&first_secret).as_str()));
        // The secret authenticates the client (at introspection).
        let introspect = |secret: String| {
            let request = app.client.post(oauth(app, "default", "/introspect"))
                .basic_auth(client_id.clone(), Some(secret))
                .form(&[("token", "not-a-token")]);
            async move { request.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(introspect(first_secret.clone()).await, 200);

        // The same rules as the registration endpoint.
        for (field, value, expect) in [
            ("redirect_uris", "javascript:alert(1)//", "redirect_uris"),
            ("scope", "openid user/nothing.rs", "scope"),
            ("jwks", "{not json", "not valid JSON"),
        ] {
            let mut form = vec![("csrf_token", csrf.as_str()), ("application_type", "public"), ("client_name", "Bad app"), ("redirect_uris", "https://bad.example/cb"), ("scope", "openid")];
            form.retain(|(k, _)| *k != field);
            form.push((field, value));
            let refused = browser.post("/admin/clients/register", &form).await;
            assert_eq!(refused.status, 400, "{field}: {}", refused.html);
            assert!(refused.html.contains(expect), "{field}: {}", refused.html);
            assert!(refused.html.contains("value=\"Bad app\""), "the form keeps what was typed");
        }
        let public = browser.post("/admin/clients/register", &[("csrf_token", &csrf), ("application_type", "public"), ("client_name", "Pocket app"), ("redirect_uris", "com.example.pocket:/cb"), ("scope", "openid launch/patient")]).await;
        assert_eq!(public.status, 201, "{}", public.html);
        assert!(public.html.contains("This app has no secret"));

        let list = browser.get("/admin/clients").await;
        assert!(list.html.contains("Growth chart") && list.html.contains("Pocket app"));
        assert!(list.html.contains("<code>user/patient.rs</code>"), "scopes are shown");
        assert!(list.html.contains("Rotate the secret of Growth chart"));
        assert!(!list.html.contains("Rotate the secret of Pocket app"), "a public app has no secret");

        let disabled = browser.post("/admin/clients/enabled", &[("csrf_token", &csrf), ("client_id", &client_id), ("enabled", "0")]).await;
        assert_eq!(notice_of(&disabled), "Growth chart is disabled.");
        assert!(!hearth::registrar::clients::find(&site, &client_id).await.unwrap().unwrap().enabled);
        browser.post("/admin/clients/enabled", &[("csrf_token", &csrf), ("client_id", &client_id), ("enabled", "1")]).await;
        assert!(hearth::registrar::clients::find(&site, &client_id).await.unwrap().unwrap().enabled);

        let rescoped = browser.post("/admin/clients/scope", &[("csrf_token", &csrf), ("client_id", &client_id), ("scope", "openid  api:oemr\nuser/patient.rs")]).await;
        assert_eq!(notice_of(&rescoped), "Saved the scopes of Growth chart.");
        assert_eq!(hearth::registrar::clients::find(&site, &client_id).await.unwrap().unwrap().scope, "openid api:oemr user/patient.rs");
        let refused = browser.post("/admin/clients/scope", &[("csrf_token", &csrf), ("client_id", &client_id), ("scope", "openid user/nothing.rs")]).await;
        assert_eq!(refused.status, 400);
        assert!(refused.html.contains("user/nothing.rs"));

        let rotated = browser.post("/admin/clients/secret", &[("csrf_token", &csrf), ("client_id", &client_id)]).await;
        assert_eq!(rotated.status, 200);
        let second_secret = secret(&rotated.html, "client-secret");
        assert_ne!(first_secret, second_secret);
        let stored = hearth::registrar::clients::find(&site, &client_id).await.unwrap().unwrap();
        assert_eq!(stored.secret_hash.as_deref(), Some(hearth::crypto::sha256_hex(&second_secret).as_str()));
        assert_eq!(introspect(first_secret.clone()).await, 401, "the old secret no longer works");
        assert_eq!(introspect(second_secret.clone()).await, 200);
        let public_id = secret(&public.html, "client-id");
        assert_eq!(browser.post("/admin/clients/secret", &[("csrf_token", &csrf), ("client_id", &public_id)]).await.status, 400);
        assert_eq!(browser.post("/admin/clients/enabled", &[("csrf_token", &csrf), ("client_id", "no-such-client"), ("enabled", "1")]).await.status, 404);

        // Another site's admin never sees these clients.
        app.user("second", "other", "admin").await;
        let mut elsewhere = Browser::new(app);
        elsewhere.signed_in("second", "other").await;
        assert!(!elsewhere.get("/admin/clients").await.html.contains("Growth chart"));
        let csrf2 = elsewhere.get("/admin/clients").await.csrf();
        assert_eq!(elsewhere.post("/admin/clients/enabled", &[("csrf_token", &csrf2), ("client_id", &client_id), ("enabled", "0")]).await.status, 404);
    }

    async fn plugins_are_listed_with_their_state_and_reloaded(app) {
        app.user("default", "boss", "admin").await;
        let mut browser = Browser::new(app);
        let csrf = browser.signed_in("default", "boss").await;
        let page = browser.get("/admin/plugins").await;
        let statuses = app.state.registry.statuses("default");
        assert!(!statuses.is_empty());
        for status in &statuses {
            assert!(page.html.contains(&format!("<strong>{}</strong>", status.name)), "{} is listed", status.name);
            let hash = status.hash.as_deref().unwrap();
            assert!(page.html.contains(&hash[..16]), "its hash");
        }
        assert!(page.html.contains("class=\"state-serving\">serving"));
        assert!(page.html.contains("ms wall"), "limits are shown");
        assert!(page.html.contains("GET /api/patient"), "routes are shown");
        let reloaded = browser.post("/admin/plugins/reload", &[("csrf_token", &csrf)]).await;
        assert_eq!(reloaded.status, 200, "{}", reloaded.html);
        assert!(reloaded.html.contains("Reloaded: nothing changed."), "{}", reloaded.html);
    }

    async fn the_audit_log_is_searched_paged_and_exported_as_safe_csv(app) {
        app.user("default", "boss", "admin").await;
        let token = app.user_token("default", "reader", "openid api:oemr user/patient.crus").await;
        for _ in 0..3 {
            assert_eq!(app.get(&app.api("default", "/api/patient"), &token).await.status, 200);
        }
        assert_eq!(app.get(&app.api("default", "/api/patient/not-a-uuid"), &token).await.status / 100, 4);
        // A row whose client id would be a formula in a spreadsheet.
        let mut evil = hearth::audit::Record::new("default", "GET", "/apis/default/api/patient?x=1,2");
        evil.client_id = Some("=HYPERLINK(\"http://evil\",\"x\")".into());
        evil.status = 200;
        app.state.audit.record(evil);
        for i in 0..60 {
            let mut row = hearth::audit::Record::new("default", "GET", &format!("/apis/default/api/filler/{i}"));
            row.status = 204;
            app.state.audit.record(row);
        }
        let mut foreign = hearth::audit::Record::new("second", "GET", "/apis/second/api/patient");
        foreign.status = 200;
        app.state.audit.record(foreign);
        app.flush_audit().await;

        let mut browser = Browser::new(app);
        browser.signed_in("default", "boss").await;
        let all = browser.get("/admin/audit").await;
        assert_eq!(all.status, 200);
        assert!(all.html.contains("Page 1 of 2"), "paged by 50");
        assert!(all.html.contains("rel=\"next\""));
        let second_page = browser.get("/admin/audit?page=2").await;
        assert!(second_page.html.contains("Page 2 of 2") && second_page.html.contains("rel=\"prev\""));

        let reader = app.rows("default", "SELECT CAST(uuid AS TEXT) AS uuid FROM users WHERE username = 'reader'").await;
        let reader = reader[0]["uuid"].as_str().unwrap().to_owned();
        for (query, rows) in [
            ("user=reader&route=/api/patient", 4),
            (&*format!("user={reader}"), 4),
            ("status=4xx&route=/api/patient", 1),
            ("status=200&route=api/patient", 4),
            ("route=filler&status=204", 60),
            ("client=%3DHYPERLINK(%22http%3A%2F%2Fevil%22%2C%22x%22)", 1),
            ("from=2000-01-01&to=2000-12-31", 0),
            ("patient=00000000-0000-0000-0000-000000000000", 0),
        ] {
            let csv = browser.get(&format!("/admin/audit.csv?{query}")).await;
            assert_eq!(csv.status, 200, "{query}");
            assert!(csv.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
            assert!(csv.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
            let lines: Vec<&str> = csv.html.trim_end().split("\r\n").collect();
            assert_eq!(lines[0], "id,created_at,method,path,status,duration_us,user_id,client_id,patient_id,plugin,ip_address");
            assert_eq!(lines.len() - 1, rows, "{query}: {}", csv.html);
            assert!(!csv.html.contains("/apis/second/"), "never another site's rows");
        }
        let today = today();
        let csv = browser.get(&format!("/admin/audit.csv?from={today}&to={today}&route=filler")).await;
        assert_eq!(csv.html.trim_end().split("\r\n").count() - 1, 60, "today's rows");
        let evil = browser.get("/admin/audit.csv?client=%3DHYPERLINK(%22http%3A%2F%2Fevil%22%2C%22x%22)").await;
        let line = evil.html.trim_end().split("\r\n").nth(1).unwrap();
        assert!(line.contains(",\"/apis/default/api/patient?x=1,2\","), "a comma is quoted: {line}");
        assert!(line.contains(",\"'=HYPERLINK(\"\"http://evil\"\",\"\"x\"\")\","), "a formula is defused: {line}");

        let page = browser.get("/admin/audit?status=4xx&route=%2Fapi%2Fpatient").await;
        assert!(page.html.contains("Page 1 of 1 (1 matching requests)"), "{}", page.html);
        assert!(page.html.contains("value=\"4xx\""), "the form keeps the filters");
        for bad in ["status=teapot", "from=tomorrow", "page=0", "to=2026-13-45"] {
            let refused = browser.get(&format!("/admin/audit?{bad}")).await;
            assert_eq!(refused.status, 400, "{bad}");
            assert_eq!(browser.get(&format!("/admin/audit.csv?{bad}")).await.status, 400, "{bad}");
        }
    }

    async fn settings_are_changed_and_initial_tokens_made(app) {
        app.user("default", "boss", "admin").await;
        let mut browser = Browser::new(app);
        let csrf = browser.signed_in("default", "boss").await;
        let site = app.state.sites.get("default").await.unwrap();
        let set = browser.post("/admin/settings", &[("csrf_token", &csrf), ("name", "oauth.password_grant"), ("value", "both")]).await;
        assert_eq!(notice_of(&set), "oauth.password_grant is now both.");
        assert_eq!(hearth::registrar::settings::get(&site, "oauth.password_grant").await.unwrap(), "both");
        let lifetime = browser.post("/admin/settings", &[("csrf_token", &csrf), ("name", "oauth.access_token_lifetime"), ("value", "600")]).await;
        assert_eq!(lifetime.status, 303);
        assert_eq!(hearth::registrar::settings::get(&site, "oauth.access_token_lifetime").await.unwrap(), "600");
        for (name, value) in [("oauth.password_grant", "everyone"), ("oauth.access_token_lifetime", "-5"), ("no.such.setting", "1")] {
            let refused = browser.post("/admin/settings", &[("csrf_token", &csrf), ("name", name), ("value", value)]).await;
            assert_eq!(refused.status, 400, "{name}={value}");
        }
        assert_eq!(hearth::registrar::settings::get(&site, "oauth.password_grant").await.unwrap(), "both");
        let page = browser.get("/admin/settings").await;
        assert!(page.html.contains("<option value=\"both\" selected>both</option>"));

        let made = browser.post("/admin/settings/initial-token", &[("csrf_token", &csrf), ("action", "new")]).await;
        assert_eq!(made.status, 200);
        let token = secret(&made.html, "initial-token");
        assert_eq!(hearth::registrar::settings::get(&site, "oauth.registration_requires_token").await.unwrap(), "on");
        let body = json!({"client_name": "x", "redirect_uris": ["https://x.example/cb"]});
        assert_eq!(register(app, "default", body.clone()).await.status, 401, "registration needs the token");
        let with_token = app.client.post(oauth(app, "default", "/registration")).bearer_auth(&token).json(&body).send().await.unwrap();
        assert_eq!(with_token.status(), 201);
        let cleared = browser.post("/admin/settings/initial-token", &[("csrf_token", &csrf), ("action", "clear")]).await;
        assert_eq!(cleared.status, 303);
        assert_eq!(register(app, "default", body).await.status, 201, "registration is open again");
    }

    async fn chromium_walks_every_console_page_accessibly_without_javascript(app) {
        require_node_and_chromium();
        app.user("default", "boss", "admin").await;
        let dir = workspace().join("target").join("test-artifacts").join("console").join(match app.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        });
        let env = [
            ("HEARTH_BASE", app.base.clone()),
            ("HEARTH_SITE", "default".to_owned()),
            ("HEARTH_USERNAME", "boss".to_owned()),
            ("HEARTH_PASSWORD", PASSWORD.to_owned()),
            ("HEARTH_ARTIFACTS", dir.display().to_string()),
            ("HEARTH_CHROMIUM", chromium().display().to_string()),
        ];
        run_script("console-flow.mjs", &env, BROWSER_STEPS).await;
        let shots = std::fs::read_dir(&dir).unwrap().count();
        assert!(shots >= 10, "a screenshot of each page: {shots}");
    }
}

/// Today (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    let seconds = now();
    let days = seconds.div_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}")
}

/// The steps `console-flow.mjs` must report passed, in order.
const BROWSER_STEPS: &[&str] = &[
    "the sign-in page renders without JavaScript and refuses framing",
    "a wrong password keeps the form with one vague error",
    "the administrator signs in and sees the sites",
    "users: a user is added",
    "users: the new user is disabled",
    "API clients: the SMART registration form registers an app and shows its secret once",
    "API clients: the app is listed with its scopes and can be disabled",
    "plugins: every plugin is listed and the reload button reloads",
    "audit log: a search narrows the list and the CSV export downloads",
    "settings: a setting is changed",
    "signing out ends the session",
];

const SETUP_HINT: &str = "run scripts/setup-js-tests (scripts/test runs it before the tests)";

fn js_dir() -> PathBuf {
    workspace().join("tests").join("js")
}

/// Debian's Chromium (or `HEARTH_CHROMIUM`).
fn chromium() -> PathBuf {
    std::env::var_os("HEARTH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Fails, saying how to fix it, unless Node.js, the packages of `tests/js` (axe-core among
/// them) and Chromium are there. These tests never skip.
fn require_node_and_chromium() {
    let version = std::process::Command::new("node")
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("node cannot run ({e}); install Node.js 20 or newer"));
    assert!(version.status.success(), "node --version failed");
    for package in ["playwright-core", "axe-core"] {
        assert!(
            js_dir().join("node_modules").join(package).is_dir(),
            "tests/js/node_modules/{package} is missing: {SETUP_HINT}"
        );
    }
    assert!(
        chromium().is_file(),
        "Chromium is not installed at {}: {SETUP_HINT}",
        chromium().display()
    );
}

/// Runs `node script` in `tests/js` with `env`, streaming its output, and asserts it
/// exits 0 having passed exactly `expected` (its `HEARTH-RESULT` line).
async fn run_script(script: &str, env: &[(&str, String)], expected: &[&str]) {
    let mut child = Command::new("node")
        .arg(script)
        .current_dir(js_dir())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting node {script}: {e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut result: Option<Value> = None;
    let conversation = async {
        let (mut out_open, mut err_open) = (true, true);
        while out_open || err_open {
            tokio::select! {
                line = stdout.next_line(), if out_open => match line.unwrap() {
                    None => out_open = false,
                    Some(line) => {
                        println!("[{script}] {line}");
                        if let Some(json) = line.strip_prefix("HEARTH-RESULT ") {
                            result = Some(serde_json::from_str(json).expect("a JSON result"));
                        }
                    }
                },
                line = stderr.next_line(), if err_open => match line.unwrap() {
                    None => err_open = false,
                    Some(line) => println!("[{script} stderr] {line}"),
                },
            }
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(Duration::from_secs(300), conversation)
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish within five minutes"));
    let result = result.unwrap_or_else(|| panic!("{script} ended ({status}) without reporting"));
    let names = |key: &str| -> Vec<String> {
        result[key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        names("failed").is_empty(),
        "{script}: failed {:?} (its output is above)",
        names("failed")
    );
    assert!(status.success(), "{script} exited with {status}");
    assert_eq!(
        names("passed"),
        expected,
        "{script} must pass every step, in order"
    );
}

/// `second` loads both `patient` and `patient-strict`, which both declare
/// `GET /api/patient`, and chooses `patient-strict` for it.
const ROUTE_CHOICE: &str = "[plugins.patient]\nfile = \"patient.wasm\"\n\n[plugins.patient-strict]\nfile = \"patient-strict.wasm\"\n\n[sites.\"*\"]\nplugins = [\"patient\"]\n\n[sites.second]\nplugins = [\"patient\", \"patient-strict\"]\nroutes = { \"GET /api/patient\" = \"patient-strict\" }\n";

both! {
    options = Options::with_plugins(ROUTE_CHOICE);

    async fn a_site_chooses_which_plugin_serves_a_shared_route_and_the_console_swaps_it(app) {
        let token = app.user_token("second", "admin", "openid api:oemr user/patient.crus").await;
        let (_, puuid) = app.create_patient("second", &token, "Ann", "Smith").await;
        let list = app.get(&app.api("second", "/api/patient"), &token).await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert_eq!(list.json["data"][0]["strict"], true, "patient-strict serves the list: {}", list.text);
        let one = app.get(&app.api("second", &format!("/api/patient/{puuid}")), &token).await;
        assert_eq!(one.status, 200, "patient serves the rest: {}", one.text);
        let default_token = app.user_token("default", "admin", "openid api:oemr user/patient.crus").await;
        let elsewhere = app.get(&app.api("default", "/api/patient"), &default_token).await;
        assert_eq!(elsewhere.status, 200);
        assert!(elsewhere.text.contains("\"data\"") && !elsewhere.text.contains("\"strict\""), "only second chose");

        let mut browser = Browser::new(app);
        let answer = browser.sign_in("second", "admin", PASSWORD).await;
        assert_eq!(answer.status, 303);
        let page = browser.get("/admin/plugins").await;
        assert!(page.html.contains("<code>GET /api/patient</code></td><td>patient-strict</td>"), "{}", page.html);

        // The administrator swaps the choice on the page: written to plugins.toml, applied
        // by reloading the site.
        let csrf = page.csrf();
        let swapped = browser.post("/admin/plugins/route", &[("csrf_token", &csrf), ("route", "GET /api/patient"), ("plugin", "patient")]).await;
        assert_eq!(swapped.status, 200, "{}", swapped.html);
        assert!(swapped.html.contains("Reloaded: "), "{}", swapped.html);
        assert!(swapped.html.contains("<code>GET /api/patient</code></td><td>patient</td>"));
        let file = std::fs::read_to_string(&app.config.plugins_file).unwrap();
        assert!(file.contains("routes = { \"GET /api/patient\" = \"patient\" }"), "{file}");
        assert!(file.starts_with("[plugins.patient]\nfile = \"patient.wasm\"\n"), "the rest is kept: {file}");
        let list = app.get(&app.api("second", "/api/patient"), &token).await;
        assert_eq!(list.status, 200);
        assert!(!list.text.contains("\"strict\""), "patient serves the list now: {}", list.text);

        // A plugin that does not declare the route, or a site sharing the "*" entry, is refused.
        let refused = browser.post("/admin/plugins/route", &[("csrf_token", &csrf), ("route", "GET /api/nothing"), ("plugin", "patient")]).await;
        assert_eq!(refused.status, 400);
        assert!(refused.html.contains("declares GET /api/nothing"), "{}", refused.html);
        assert_eq!(std::fs::read_to_string(&app.config.plugins_file).unwrap(), file, "nothing written");
        let mut default_admin = Browser::new(app);
        assert_eq!(default_admin.sign_in("default", "admin", PASSWORD).await.status, 303);
        let default_csrf = default_admin.get("/admin/plugins").await.csrf();
        let shared = default_admin.post("/admin/plugins/route", &[("csrf_token", &default_csrf), ("route", "GET /api/patient"), ("plugin", "patient")]).await;
        assert_eq!(shared.status, 400);
        assert!(shared.html.contains("no entry of its own"), "{}", shared.html);

        // Removing the choice brings the collision back: the last good table keeps serving.
        let removed = browser.post("/admin/plugins/route", &[("csrf_token", &csrf), ("route", "GET /api/patient")]).await;
        assert_eq!(removed.status, 422, "{}", removed.html);
        assert!(removed.html.contains("claimed by both"), "{}", removed.html);
        let list = app.get(&app.api("second", "/api/patient"), &token).await;
        assert_eq!(list.status, 200);
        assert!(!list.text.contains("\"strict\""), "the last good table keeps serving");
    }
}
