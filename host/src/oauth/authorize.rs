//! The authorization endpoint and its pages: `/authorize` checks the request and shows the
//! sign-in form, `/login` signs in a staff user or a patient, `/patient-select` lets staff
//! pick the patient for `launch/patient`, `/consent` lets the user untick scopes and
//! issues the code. Also RP-initiated `/logout`, the SMART style document and EHR launch
//! tokens.
//!
//! The pending request lives in `oauth_sessions`, found by a cookie scoped to the site's
//! `/oauth2/{site}/` path (under the public URL's own path, see [`pages_path`]); every
//! form carries the session's CSRF token. Redirects after a
//! form are 303. Until the redirect URI is known to be registered (exactly) by an enabled
//! client an administrator has vetted, errors are a page, never a redirect.

// The error side of these handlers' helpers is the page to answer with, built at most once
// per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use super::clients::{self, Client};
use super::token::{Subject, check_patient, check_user, finalize_scopes};
use super::{now, pages, random_token, same, settings, sha256_hex};
use crate::app::AppState;
use crate::auth::jwt::{self, Alg};
use crate::auth::tokens::{self, Role};
use crate::on_db;
use crate::proxy::ClientAddr;
use crate::sites::Site;

/// The cookie that names the sign-in session.
pub const COOKIE: &str = "hearth_authz";
/// How long a sign-in session lasts, seconds.
const SESSION_LIFETIME: i64 = 600;
/// The largest form body the pages accept.
const MAX_FORM: usize = 64 * 1024;

/// A checked authorization request, kept with the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    client_id: String,
    client_name: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    launch_patient: Option<String>,
    launch_encounter: Option<String>,
}

impl AuthRequest {
    fn wants_patient_pick(&self) -> bool {
        self.launch_patient.is_none()
            && self.scope.split_whitespace().any(|s| s == "launch/patient")
    }
}

struct Session {
    hash: String,
    csrf: String,
    request: AuthRequest,
    subject: Option<Subject>,
    patient: Option<String>,
}

fn query_map(query: Option<&str>) -> Result<HashMap<String, String>, String> {
    let mut map = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if map.insert(name.to_string(), value.to_string()).is_some() {
            return Err(format!("The parameter {name} is repeated"));
        }
    }
    Ok(map)
}

fn get<'a>(map: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    map.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

fn bad_page(text: &str) -> Response {
    pages::message(StatusCode::BAD_REQUEST, "Cannot continue", text)
}

/// `redirect_uri` with `params` appended to its query.
fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    pages::secure(&mut response);
    response
}

/// A redirect to the client carrying an error (and `state`, `iss`).
fn redirect_error(
    app: &AppState,
    site: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let issuer = super::issuer(app, site);
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", &issuer));
    see_other(&with_params(redirect_uri, &params))
}

async fn read_form(body: Body, headers: &HeaderMap) -> Result<Vec<(String, String)>, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(bad_page(
            "The form must be sent as application/x-www-form-urlencoded.",
        ));
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| bad_page("The form is too large."))?;
    Ok(form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

fn single(form: &[(String, String)], name: &str) -> Option<String> {
    let mut values = form.iter().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v.clone());
    if values.next().is_some() {
        return None;
    }
    first.filter(|v| !v.is_empty())
}

/// An EHR launch token for `patient` (and optionally `encounter`), valid five minutes:
/// a JWT signed by the site's key that `/authorize?launch=…` accepts.
pub fn launch_token(
    base: &str,
    site: &Site,
    patient: &str,
    encounter: Option<&str>,
) -> anyhow::Result<String> {
    let now = now();
    let mut claims = json!({
        "iss": tokens::issuer(base, &site.name),
        "aud": format!("{}/launch", tokens::issuer(base, &site.name)),
        "patient": patient,
        "iat": now,
        "exp": now + 300,
    });
    if let Some(encounter) = encounter {
        claims["encounter"] = json!(encounter);
    }
    site.keys().signer.sign(&claims).map_err(anyhow::Error::msg)
}

fn check_launch(app: &AppState, site: &Site, token: &str) -> Option<(String, Option<String>)> {
    let keys = site.keys();
    let claims = jwt::decode(token)
        .ok()?
        .verify(keys.verifiers.iter(), &[Alg::Rs256, Alg::Es256])
        .ok()?;
    let issuer = super::issuer(app, &site.name);
    if claims["iss"].as_str() != Some(issuer.as_str())
        || claims["aud"].as_str() != Some(format!("{issuer}/launch").as_str())
        || claims["exp"].as_i64().is_none_or(|exp| exp <= now())
    {
        return None;
    }
    Some((
        claims["patient"].as_str()?.to_owned(),
        claims["encounter"].as_str().map(str::to_owned),
    ))
}

/// `GET|POST /oauth2/{site}/authorize`.
pub async fn authorize(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    request: Request,
) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return pages::message(
            StatusCode::NOT_FOUND,
            "Unknown site",
            &format!("The site '{site_name}' is unknown."),
        );
    };
    let (parts, body) = request.into_parts();
    let params = if parts.method == Method::POST {
        match read_form(body, &parts.headers).await {
            Ok(form) => {
                let mut map = HashMap::new();
                for (k, v) in form {
                    if map.insert(k.clone(), v).is_some() {
                        return bad_page(&format!("The parameter {k} is repeated."));
                    }
                }
                map
            }
            Err(page) => return page,
        }
    } else {
        match query_map(parts.uri.query()) {
            Ok(map) => map,
            Err(why) => return bad_page(&why),
        }
    };
    match start(&app, &site, &params).await {
        Ok(response) => response,
        Err(error) => error.page(),
    }
}

/// A failure: a page to render, or an answer made already (a redirect to a trusted
/// redirect URI, or an error page that carries its own headers).
enum Failure {
    Page(StatusCode, String),
    Answer(Response),
}

impl Failure {
    fn page(self) -> Response {
        match self {
            Failure::Page(status, text) => pages::message(status, "Cannot continue", &text),
            Failure::Answer(response) => response,
        }
    }
}

impl From<super::OAuthError> for Failure {
    fn from(error: super::OAuthError) -> Self {
        // Its own page, so a 503 keeps its Retry-After.
        Failure::Answer(error.into_page())
    }
}

async fn start(
    app: &AppState,
    site: &Arc<Site>,
    params: &HashMap<String, String>,
) -> Result<Response, Failure> {
    let page = |text: &str| Failure::Page(StatusCode::BAD_REQUEST, text.to_owned());
    let client_id =
        get(params, "client_id").ok_or_else(|| page("The request names no client (client_id)."))?;
    let client = clients::find(site, client_id)
        .await
        .map_err(super::OAuthError::from)?
        .ok_or_else(|| page("The client is not registered on this site."))?;
    let redirect_uri = match get(params, "redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        Some(_) => return Err(page("The redirect_uri is not one the client registered.")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("The request must name its redirect_uri.")),
    };
    if !client.enabled {
        return Err(page(
            "The client is not enabled yet: an administrator of this site must enable it.",
        ));
    }
    if let Some(problem) = super::registration::redirect_uri_problem(&redirect_uri) {
        return Err(page(&format!(
            "The client's redirect URI cannot be used: {problem}."
        )));
    }
    let state = get(params, "state");
    // Errors go back to the client only when an administrator has vetted it; a client
    // that registered itself (and was enabled at once) gets a page, so /authorize is no
    // open redirector to whatever URI it registered (RFC 9700 section 4.11).
    let vetted = client.vetted;
    let fail = |error: &str, description: &str| {
        if vetted {
            Failure::Answer(redirect_error(
                app,
                &site.name,
                &redirect_uri,
                state,
                error,
                description,
            ))
        } else {
            Failure::Page(StatusCode::BAD_REQUEST, format!("{description} ({error})."))
        }
    };
    if get(params, "response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let Some(requested) = get(params, "scope") else {
        return Err(fail("invalid_scope", "scope is required"));
    };
    let scope = finalize_scopes(app, site, Some(requested), &client)
        .map_err(|e| fail("invalid_scope", &e.description))?;
    let challenge = get(params, "code_challenge");
    match (challenge, get(params, "code_challenge_method")) {
        (Some(c), Some("S256")) => {
            if c.len() != 43
                || !c
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(
                    "invalid_request",
                    "code_challenge must be a base64url SHA-256 (43 characters)",
                ));
            }
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (None, None) if !client.confidential() => {
            return Err(fail(
                "invalid_request",
                "Public clients must use PKCE (code_challenge, S256)",
            ));
        }
        (None, None) => {}
    }
    let resource = tokens::audience(&app.base_url, &site.name);
    let audiences = [
        format!("{resource}/fhir"),
        format!("{resource}/api"),
        format!("{resource}/portal"),
        resource.clone(),
    ];
    let aud = get(params, "aud");
    if let Some(aud) = aud
        && !audiences.iter().any(|a| a == aud.trim_end_matches('/'))
    {
        return Err(fail("invalid_request", "aud is not this site's API"));
    }
    let (launch_patient, launch_encounter) = match get(params, "launch") {
        Some(launch) => {
            if aud.is_none() {
                return Err(fail("invalid_request", "An EHR launch needs aud"));
            }
            let (patient, encounter) = check_launch(app, site, launch).ok_or_else(|| {
                fail(
                    "invalid_request",
                    "The launch parameter is invalid or expired",
                )
            })?;
            (Some(patient), encounter)
        }
        None => (None, None),
    };
    let request = AuthRequest {
        client_id: client.client_id.clone(),
        client_name: if client.client_name.is_empty() {
            client.client_id.clone()
        } else {
            client.client_name.clone()
        },
        redirect_uri,
        scope,
        state: state.map(str::to_owned),
        nonce: get(params, "nonce").map(str::to_owned),
        code_challenge: challenge.map(str::to_owned),
        launch_patient,
        launch_encounter,
    };
    let cookie = random_token(32);
    let csrf = random_token(32);
    let request_json = serde_json::to_string(&request).map_err(super::OAuthError::internal)?;
    let now = now();
    on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM oauth_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await
            .map_err(super::OAuthError::from)?;
        sqlx::query("INSERT INTO oauth_sessions (session_hash, csrf, request, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(sha256_hex(&cookie))
            .bind(&csrf)
            .bind(&request_json)
            .bind(now + SESSION_LIFETIME)
            .execute(pool)
            .await
            .map_err(super::OAuthError::from)?;
    });
    let mut response = pages::page(
        StatusCode::OK,
        "Sign in",
        &pages::login(
            &pages_path(app, &site.name),
            &csrf,
            &request.client_name,
            None,
            "",
            "users",
        ),
    );
    set_cookie(app, &site.name, &mut response, Some(&cookie));
    Ok(response)
}

/// Where browsers reach the site's authorization pages: the path of the issuer
/// `{public}/oauth2/{site}`, so `/oauth2/{site}`, or `/ehr/oauth2/{site}` for a server whose
/// public URL is `https://host/ehr` behind a proxy. Form actions, redirects between the
/// pages and the session cookie's `Path` use it.
pub fn pages_path(app: &AppState, site: &str) -> String {
    let issuer = super::issuer(app, site);
    let without_scheme = issuer
        .split_once("://")
        .map_or(issuer.as_str(), |(_, rest)| rest);
    without_scheme.find('/').map_or_else(
        || "/".to_owned(),
        |slash| without_scheme[slash..].to_owned(),
    )
}

fn set_cookie(app: &AppState, site: &str, response: &mut Response, value: Option<&str>) {
    let path = pages_path(app, site);
    let secure = if app.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = match value {
        Some(value) => format!(
            "{COOKIE}={value}; Path={path}/; HttpOnly; SameSite=Lax; Max-Age={SESSION_LIFETIME}{secure}"
        ),
        None => {
            format!("{COOKIE}=; Path={path}/; HttpOnly; SameSite=Lax; Max-Age=0{secure}")
        }
    };
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

fn cookie_value(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

const EXPIRED: &str =
    "Your sign-in session has expired or was not found. Go back to the app and start again.";

async fn load_session(site: &Site, headers: &HeaderMap) -> Result<Session, Response> {
    let cookie = cookie_value(headers).ok_or_else(|| bad_page(EXPIRED))?;
    let hash = sha256_hex(&cookie);
    type Stored = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
    );
    let row: Result<Option<Stored>, sqlx::Error> = async {
        Ok(on_db!(&site.db, |pool| {
            sqlx::query("SELECT csrf, request, user_id, role, username, acl_role, patient, expires_at FROM oauth_sessions WHERE session_hash = $1")
                .bind(&hash)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<Stored, sqlx::Error> {
                    Ok((row.try_get("csrf")?, row.try_get("request")?, row.try_get("user_id")?, row.try_get("role")?, row.try_get("username")?, row.try_get("acl_role")?, row.try_get("patient")?, row.try_get("expires_at")?))
                })
                .transpose()?
        }))
    }
    .await;
    let row = row.map_err(|e| super::OAuthError::from(e).into_page())?;
    let Some((csrf, request, user_id, role, username, acl_role, patient, expires_at)) = row else {
        return Err(bad_page(EXPIRED));
    };
    if expires_at <= now() {
        return Err(bad_page(EXPIRED));
    }
    let request: AuthRequest = serde_json::from_str(&request).map_err(|_| bad_page(EXPIRED))?;
    let subject = match (user_id, role.as_deref().and_then(Role::from_name)) {
        (Some(id), Some(role)) => Some(Subject {
            role,
            id,
            username,
            acl_role,
        }),
        _ => None,
    };
    Ok(Session {
        hash,
        csrf,
        request,
        subject,
        patient,
    })
}

impl super::OAuthError {
    fn into_page(self) -> Response {
        let mut page = pages::message(self.status, "Cannot continue", &self.description);
        if let Some(seconds) = self.retry_after {
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        page
    }
}

fn check_csrf(session: &Session, form: &[(String, String)]) -> Result<(), Response> {
    match single(form, "csrf_token") {
        Some(token) if same(&token, &session.csrf) => Ok(()),
        _ => Err(pages::message(
            StatusCode::FORBIDDEN,
            "Cannot continue",
            "The form is stale or was not sent from this page. Go back to the app and start again.",
        )),
    }
}

async fn next_step(app: &AppState, site: &Site, session: &Session) -> Response {
    let needs_pick = session.request.wants_patient_pick()
        && session.patient.is_none()
        && session
            .subject
            .as_ref()
            .is_some_and(|s| s.role == Role::User);
    if needs_pick {
        see_other(&format!("{}/patient-select", pages_path(app, &site.name)))
    } else {
        see_other(&format!("{}/consent", pages_path(app, &site.name)))
    }
}

/// `POST /oauth2/{site}/login`.
pub async fn login(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    request: Request,
) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return pages::message(
            StatusCode::NOT_FOUND,
            "Unknown site",
            "This site is unknown.",
        );
    };
    let (mut parts, body) = request.into_parts();
    let address = {
        use axum::extract::FromRequestParts as _;
        let Ok(address) = ClientAddr::from_request_parts(&mut parts, &app).await;
        address.text()
    };
    let session = match load_session(&site, &parts.headers).await {
        Ok(session) => session,
        Err(page) => return page,
    };
    let form = match read_form(body, &parts.headers).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    if let Err(page) = check_csrf(&session, &form) {
        return page;
    }
    let role = single(&form, "user_role").unwrap_or_else(|| "users".to_owned());
    let username = single(&form, "username").unwrap_or_default();
    let password = single(&form, "password").unwrap_or_default();
    let email = single(&form, "email").unwrap_or_default();
    let again = |status: StatusCode, error: &str| {
        pages::page(
            status,
            "Sign in",
            &pages::login(
                &pages_path(&app, &site.name),
                &session.csrf,
                &session.request.client_name,
                Some(error),
                &username,
                &role,
            ),
        )
    };
    if role != "users" && role != "patient" {
        return again(StatusCode::BAD_REQUEST, "Choose Staff or A patient.");
    }
    if username.is_empty() || password.is_empty() || (role == "patient" && email.is_empty()) {
        return again(
            StatusCode::BAD_REQUEST,
            "Enter your user name and password (and e-mail, for patients).",
        );
    }
    let (pair, account) = super::login_keys(&site.name, &role, &username, &address);
    let wait = match app.logins.wait(&site, &[&pair, &account]).await {
        Ok(wait) => wait,
        Err(error) => return error.into_page(),
    };
    if wait > 0 {
        let mut page = again(StatusCode::TOO_MANY_REQUESTS, &super::too_many(wait));
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return page;
    }
    let checked = if role == "patient" {
        check_patient(&site, &username, &email, &password).await
    } else {
        check_user(&site, &username, &password).await
    };
    let subject = match checked {
        Ok(Some(subject)) => subject,
        Ok(None) => {
            let keys = [
                (pair.as_str(), super::PAIR),
                (account.as_str(), super::ACCOUNT),
            ];
            if let Err(error) = app.logins.failed(&site, &keys).await {
                return error.into_page();
            }
            return again(
                StatusCode::OK,
                "The user name, password or e-mail is wrong.",
            );
        }
        Err(error) => return error.into_page(),
    };
    for key in [&pair, &account] {
        if let Err(error) = app.logins.succeeded(&site, key).await {
            return error.into_page();
        }
    }
    let patient = match subject.role {
        Role::Patient => Some(subject.id.clone()),
        _ => session.request.launch_patient.clone(),
    };
    let stored: Result<(), sqlx::Error> = async {
        on_db!(&site.db, |pool| {
            sqlx::query("UPDATE oauth_sessions SET user_id = $1, role = $2, username = $3, acl_role = $4, patient = $5 WHERE session_hash = $6")
                .bind(&subject.id)
                .bind(subject.role.name())
                .bind(&subject.username)
                .bind(&subject.acl_role)
                .bind(&patient)
                .bind(&session.hash)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
    .await;
    if let Err(error) = stored {
        return super::OAuthError::from(error).into_page();
    }
    let session = Session {
        subject: Some(subject),
        patient,
        ..session
    };
    next_step(&app, &site, &session).await
}

async fn signed_in(
    app: &AppState,
    site_name: &str,
    headers: &HeaderMap,
) -> Result<(Arc<Site>, Session), Response> {
    let site = app.sites.get(site_name).await.ok_or_else(|| {
        pages::message(
            StatusCode::NOT_FOUND,
            "Unknown site",
            "This site is unknown.",
        )
    })?;
    let session = load_session(&site, headers).await?;
    if session.subject.is_none() {
        return Err(bad_page(
            "Sign in first. Go back to the app and start again.",
        ));
    }
    Ok((site, session))
}

/// `GET /oauth2/{site}/patient-select?q=…`.
pub async fn patient_select(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    request: Request,
) -> Response {
    let (site, session) = match signed_in(&app, &site_name, request.headers()).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if session
        .subject
        .as_ref()
        .is_none_or(|s| s.role != Role::User)
    {
        return bad_page("Only staff choose a patient.");
    }
    let query = query_map(request.uri().query())
        .ok()
        .and_then(|q| q.get("q").cloned())
        .unwrap_or_default();
    let pattern = format!("%{}%", query.trim().to_lowercase().replace(['%', '_'], ""));
    let found: Result<Vec<(String, String)>, sqlx::Error> = async {
        Ok(on_db!(&site.db, |pool| {
            sqlx::query("SELECT CAST(uuid AS TEXT) AS uuid, fname, lname, CAST(\"DOB\" AS TEXT) AS dob FROM patient_data WHERE LOWER(fname) LIKE $1 OR LOWER(lname) LIKE $1 OR LOWER(fname || ' ' || lname) LIKE $1 ORDER BY lname, fname, id LIMIT 100")
                .bind(&pattern)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| -> Result<(String, String), sqlx::Error> {
                    let fname: String = row.try_get("fname")?;
                    let lname: String = row.try_get("lname")?;
                    let dob: Option<String> = row.try_get("dob")?;
                    let dob = dob.map(|d| format!(" ({d})")).unwrap_or_default();
                    Ok((row.try_get("uuid")?, format!("{fname} {lname}{dob}")))
                })
                .collect::<Result<Vec<_>, _>>()?
        }))
    }
    .await;
    match found {
        Ok(patients) => pages::page(
            StatusCode::OK,
            "Choose a patient",
            &pages::patient_select(
                &pages_path(&app, &site.name),
                &session.csrf,
                &query,
                &patients,
            ),
        ),
        Err(error) => super::OAuthError::from(error).into_page(),
    }
}

/// `POST /oauth2/{site}/patient-select`.
pub async fn patient_chosen(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (site, session) = match signed_in(&app, &site_name, &parts.headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    if session
        .subject
        .as_ref()
        .is_none_or(|s| s.role != Role::User)
    {
        return bad_page("Only staff choose a patient.");
    }
    let form = match read_form(body, &parts.headers).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    if let Err(page) = check_csrf(&session, &form) {
        return page;
    }
    let Some(patient) = single(&form, "patient").map(|p| p.to_ascii_lowercase()) else {
        return bad_page("Choose a patient.");
    };
    let updated: Result<bool, sqlx::Error> = async {
        Ok(on_db!(&site.db, |pool| {
            let exists =
                sqlx::query("SELECT 1 AS one FROM patient_data WHERE CAST(uuid AS TEXT) = $1")
                    .bind(&patient)
                    .fetch_optional(pool)
                    .await?
                    .is_some();
            if exists {
                sqlx::query("UPDATE oauth_sessions SET patient = $1 WHERE session_hash = $2")
                    .bind(&patient)
                    .bind(&session.hash)
                    .execute(pool)
                    .await?;
            }
            exists
        }))
    }
    .await;
    match updated {
        Ok(true) => see_other(&format!("{}/consent", pages_path(&app, &site.name))),
        Ok(false) => bad_page("There is no such patient."),
        Err(error) => super::OAuthError::from(error).into_page(),
    }
}

async fn patient_name(site: &Site, puuid: &str) -> Option<String> {
    let row: Result<Option<(String, String)>, sqlx::Error> = async {
        Ok(on_db!(&site.db, |pool| {
            sqlx::query("SELECT fname, lname FROM patient_data WHERE CAST(uuid AS TEXT) = $1")
                .bind(puuid)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<_, sqlx::Error> {
                    Ok((row.try_get("fname")?, row.try_get("lname")?))
                })
                .transpose()?
        }))
    }
    .await;
    row.ok().flatten().map(|(f, l)| format!("{f} {l}"))
}

/// `GET /oauth2/{site}/consent`.
pub async fn consent_page(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let (site, session) = match signed_in(&app, &site_name, &headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let Some(subject) = session.subject.clone() else {
        return bad_page(EXPIRED);
    };
    if session.request.wants_patient_pick()
        && session.patient.is_none()
        && subject.role == Role::User
    {
        return see_other(&format!("{}/patient-select", pages_path(&app, &site.name)));
    }
    let who = match subject.role {
        Role::Patient => patient_name(&site, &subject.id)
            .await
            .unwrap_or_else(|| "a patient".to_owned()),
        _ => subject.username.clone().unwrap_or_default(),
    };
    let patient = match &session.patient {
        Some(p) if subject.role == Role::User => patient_name(&site, p).await,
        _ => None,
    };
    let scopes: Vec<String> = session
        .request
        .scope
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    pages::page(
        StatusCode::OK,
        "Allow access?",
        &pages::consent(
            &pages_path(&app, &site.name),
            &session.csrf,
            &session.request.client_name,
            &who,
            patient.as_deref(),
            &scopes,
        ),
    )
}

/// `POST /oauth2/{site}/consent`: allow (with the ticked scopes) or deny.
pub async fn consent(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let (site, session) = match signed_in(&app, &site_name, &parts.headers).await {
        Ok(found) => found,
        Err(page) => return page,
    };
    let form = match read_form(body, &parts.headers).await {
        Ok(form) => form,
        Err(page) => return page,
    };
    if let Err(page) = check_csrf(&session, &form) {
        return page;
    }
    let Some(subject) = session.subject.clone() else {
        return bad_page(EXPIRED);
    };
    if session.request.wants_patient_pick()
        && session.patient.is_none()
        && subject.role == Role::User
    {
        return see_other(&format!("{}/patient-select", pages_path(&app, &site.name)));
    }
    let request = &session.request;
    let ticked: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let granted: Vec<&str> = request
        .scope
        .split_whitespace()
        .filter(|s| ticked.contains(s))
        .collect();
    let finished = end_session(&site, &session.hash).await;
    if let Err(error) = finished {
        return error.into_page();
    }
    let mut response = match single(&form, "action").as_deref() {
        Some("allow") if !granted.is_empty() => {
            match issue_code(&app, &site, &session, &subject, &granted.join(" ")).await {
                Ok(code) => {
                    let issuer = super::issuer(&app, &site.name);
                    let mut params = vec![("code", code.as_str())];
                    if let Some(state) = &request.state {
                        params.push(("state", state));
                    }
                    params.push(("iss", &issuer));
                    see_other(&with_params(&request.redirect_uri, &params))
                }
                Err(error) => error.into_page(),
            }
        }
        Some("allow") | Some("deny") => redirect_error(
            &app,
            &site.name,
            &request.redirect_uri,
            request.state.as_deref(),
            "access_denied",
            "The user did not allow access",
        ),
        _ => return bad_page("Choose Allow or Deny."),
    };
    set_cookie(&app, &site.name, &mut response, None);
    response
}

async fn end_session(site: &Site, hash: &str) -> Result<(), super::OAuthError> {
    on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM oauth_sessions WHERE session_hash = $1")
            .bind(hash)
            .execute(pool)
            .await?;
    });
    Ok(())
}

async fn issue_code(
    app: &AppState,
    site: &Site,
    session: &Session,
    subject: &Subject,
    scope: &str,
) -> Result<String, super::OAuthError> {
    let request = &session.request;
    let mut context = json!({});
    if let Some(patient) = &session.patient {
        context["patient"] = json!(patient);
        context["need_patient_banner"] = json!(request.launch_patient.is_none());
        context["smart_style_url"] = json!(format!(
            "{}/smart-style.json",
            super::issuer(app, &site.name)
        ));
    }
    if let Some(encounter) = &request.launch_encounter {
        context["encounter"] = json!(encounter);
    }
    let code = random_token(32);
    let lifetime = settings::seconds(site, "oauth.code_lifetime").await?;
    let now = now();
    on_db!(&site.db, |pool| {
        sqlx::query("INSERT INTO oauth_codes (code_hash, grant_id, client_id, redirect_uri, user_id, role, username, acl_role, scope, context, nonce, code_challenge, expires_at, used, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14)")
            .bind(sha256_hex(&code))
            .bind(random_token(16))
            .bind(&request.client_id)
            .bind(&request.redirect_uri)
            .bind(&subject.id)
            .bind(subject.role.name())
            .bind(&subject.username)
            .bind(&subject.acl_role)
            .bind(scope)
            .bind(context.to_string())
            .bind(&request.nonce)
            .bind(&request.code_challenge)
            .bind(now + lifetime)
            .bind(now)
            .execute(pool)
            .await?;
    });
    Ok(code)
}

/// A stored authorization code.
pub struct StoredCode {
    /// The grant its tokens belong to.
    pub grant_id: String,
    /// The client.
    pub client_id: String,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Who signed in.
    pub subject: Subject,
    /// Granted scopes.
    pub scope: String,
    /// SMART context.
    pub context: Value,
    /// The OpenID Connect nonce.
    pub nonce: Option<String>,
    /// The PKCE challenge.
    pub code_challenge: Option<String>,
    /// Expiry.
    pub expires_at: i64,
    /// Whether it was redeemed already.
    pub used: bool,
}

/// Looks a code up by its hash.
pub async fn find_code(site: &Site, code: &str) -> Result<Option<StoredCode>, super::OAuthError> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query("SELECT grant_id, client_id, redirect_uri, user_id, role, username, acl_role, scope, context, nonce, code_challenge, expires_at, used FROM oauth_codes WHERE code_hash = $1")
            .bind(sha256_hex(code))
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<Option<StoredCode>, sqlx::Error> {
                let role: String = row.try_get("role")?;
                let context: String = row.try_get("context")?;
                let Some(role) = Role::from_name(&role) else { return Ok(None) };
                Ok(Some(StoredCode {
                    grant_id: row.try_get("grant_id")?,
                    client_id: row.try_get("client_id")?,
                    redirect_uri: row.try_get("redirect_uri")?,
                    subject: Subject {
                        role,
                        id: row.try_get("user_id")?,
                        username: row.try_get("username")?,
                        acl_role: row.try_get("acl_role")?,
                    },
                    scope: row.try_get("scope")?,
                    context: serde_json::from_str(&context).unwrap_or_else(|_| json!({})),
                    nonce: row.try_get("nonce")?,
                    code_challenge: row.try_get("code_challenge")?,
                    expires_at: row.try_get("expires_at")?,
                    used: row.try_get::<i64, _>("used")? != 0,
                }))
            })
            .transpose()?
            .flatten()
    }))
}

/// Marks a code used; false when it already was (a concurrent redemption).
pub async fn claim_code(site: &Site, code: &str) -> Result<bool, super::OAuthError> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query("UPDATE oauth_codes SET used = 1 WHERE code_hash = $1 AND used = 0")
            .bind(sha256_hex(code))
            .execute(pool)
            .await?
            .rows_affected()
            == 1
    }))
}

/// `GET /oauth2/{site}/smart-style.json`.
pub async fn smart_style() -> Response {
    let body = json!({
        "color_background": "#f3f4f6",
        "color_error": "#991b1b",
        "color_highlight": "#1d4ed8",
        "color_modal_backdrop": "",
        "color_success": "#166534",
        "color_text": "#111827",
        "dim_border_radius": "6px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, sans-serif",
        "font_family_heading": "system-ui, sans-serif"
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

/// `GET /oauth2/{site}/logout`: RP-initiated logout. The `id_token_hint` must be an ID
/// token this site signed; every token of that client and user is revoked. The browser
/// goes to `post_logout_redirect_uri` only when the client registered it exactly.
pub async fn logout(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    request: Request,
) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return pages::message(
            StatusCode::NOT_FOUND,
            "Unknown site",
            "This site is unknown.",
        );
    };
    let params = match query_map(request.uri().query()) {
        Ok(map) => map,
        Err(why) => return bad_page(&why),
    };
    let Some(hint) = get(&params, "id_token_hint") else {
        return bad_page("id_token_hint is required.");
    };
    let keys = site.keys();
    let Ok(claims) =
        jwt::decode(hint).and_then(|t| t.verify(keys.verifiers.iter(), &[Alg::Rs256, Alg::Es256]))
    else {
        return bad_page("id_token_hint is not an ID token of this site.");
    };
    if claims["iss"].as_str() != Some(super::issuer(&app, &site.name).as_str()) {
        return bad_page("id_token_hint is not an ID token of this site.");
    }
    let (Some(client_id), Some(user)) = (claims["aud"].as_str(), claims["sub"].as_str()) else {
        return bad_page("id_token_hint is not an ID token of this site.");
    };
    let client: Option<Client> = clients::find(&site, client_id).await.ok().flatten();
    let Some(client) = client else {
        return bad_page("The ID token's client is not registered on this site.");
    };
    let target = get(&params, "post_logout_redirect_uri");
    if let Some(target) = target
        && !client.post_logout_redirect_uris.iter().any(|u| u == target)
    {
        return bad_page("post_logout_redirect_uri is not one the client registered.");
    }
    let revoked: Result<(), sqlx::Error> = async {
        on_db!(&site.db, |pool| {
            sqlx::query("UPDATE api_token SET revoked = 1 WHERE client_id = $1 AND user_id = $2")
                .bind(client_id)
                .bind(user)
                .execute(pool)
                .await?;
            sqlx::query(
                "UPDATE oauth_refresh_tokens SET revoked = 1 WHERE client_id = $1 AND user_id = $2",
            )
            .bind(client_id)
            .bind(user)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
    .await;
    if let Err(error) = revoked {
        return super::OAuthError::from(error).into_page();
    }
    match target {
        Some(target) => match get(&params, "state") {
            Some(state) => see_other(&with_params(target, &[("state", state)])),
            None => see_other(target),
        },
        None => pages::message(StatusCode::OK, "Signed out", "You have been signed out."),
    }
}
