//! The authorization server under `/oauth2/{site}/`: dynamic client registration, the
//! authorization pages (sign-in, patient picker, consent), the token endpoint
//! (authorization code, client credentials, password, refresh token), introspection,
//! revocation, userinfo, logout, and the discovery documents.
//!
//! Split like oxide-auth: [`clients`] is the registrar (stored clients and how they
//! authenticate), [`catalog`] the scopes a client may ask for, [`token`] the issuer,
//! [`registration`], [`introspect`] and [`discovery`] the other endpoints. Access tokens
//! come from [`crate::auth::tokens`], so the resource server accepts them unchanged and
//! revocation reaches it through `api_token`.
//!
//! Every error answers RFC 6749's JSON (`{"error", "error_description"}`) with
//! `Cache-Control: no-store`.

pub mod accounts;
pub mod authorize;
pub mod catalog;
pub mod clients;
pub mod discovery;
pub mod docs_client;
pub mod introspect;
pub mod pages;
pub mod registration;
pub mod settings;
pub mod token;

pub use crate::crypto::{random_token, same, sha256_hex};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::db::store::SqlValue;
use crate::sites::Site;
use crate::state::AppState;

/// The routes of the authorization server (and the SMART configuration under `/apis`),
/// with CORS for browser-based apps.
pub fn router() -> Router<Arc<AppState>> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        .max_age(Duration::from_secs(600));
    let api = Router::new()
        .route("/oauth2/{site}/registration", post(registration::register))
        .route(
            "/oauth2/{site}/client/{path}",
            get(registration::read_client),
        )
        .route("/oauth2/{site}/token", post(token::token))
        .route("/oauth2/{site}/introspect", post(introspect::introspect))
        .route("/oauth2/{site}/revoke", post(introspect::revoke))
        .route(
            "/oauth2/{site}/userinfo",
            get(introspect::userinfo).post(introspect::userinfo),
        )
        .route(
            "/oauth2/{site}/.well-known/openid-configuration",
            get(discovery::openid_configuration),
        )
        .route(
            "/apis/{site}/fhir/.well-known/smart-configuration",
            get(discovery::smart_configuration),
        )
        .route(
            "/oauth2/{site}/smart-style.json",
            get(authorize::smart_style),
        )
        .layer(cors);
    let pages = Router::new()
        .route(
            "/oauth2/{site}/authorize",
            get(authorize::request::authorize).post(authorize::request::authorize),
        )
        .route("/oauth2/{site}/login", post(authorize::signin::login))
        .route(
            "/oauth2/{site}/patient-select",
            get(authorize::signin::patient_select).post(authorize::signin::patient_chosen),
        )
        .route(
            "/oauth2/{site}/consent",
            get(authorize::consent::consent_page).post(authorize::consent::consent),
        )
        .route("/oauth2/{site}/logout", get(authorize::logout::logout));
    api.merge(pages)
}

/// An OAuth error answer (RFC 6749 §5.2, RFC 7591 §3.2.2).
#[derive(Debug, Clone)]
pub struct OAuthError {
    /// The status code.
    pub status: StatusCode,
    /// The error code (`invalid_request`, `invalid_client`, …).
    pub error: &'static str,
    /// A sentence for people.
    pub description: String,
    /// `WWW-Authenticate` (401 answers).
    pub www_authenticate: Option<&'static str>,
    /// `Retry-After` seconds (503 answers when the database is unreachable).
    pub retry_after: Option<u32>,
}

impl OAuthError {
    /// An error with `status`.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
            retry_after: None,
        }
    }

    /// 503 `temporarily_unavailable`: the site's database could not be reached.
    pub fn unavailable(cause: &str) -> Self {
        tracing::warn!("authorization server: database unavailable: {cause}");
        let mut error = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            format!("The site's database is unavailable ({cause}); try again shortly"),
        );
        error.retry_after = Some(crate::error::RETRY_AFTER_SECONDS);
        error
    }

    /// 400 `invalid_request`.
    pub fn request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 401 `invalid_client`.
    pub fn client(description: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description);
        error.www_authenticate = Some("Basic realm=\"hearth\"");
        error
    }

    /// 400 `invalid_grant`.
    pub fn grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// 400 `invalid_scope`.
    pub fn scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// 404 for an unknown site.
    pub fn unknown_site(site: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "unknown_site",
            format!("The site '{site}' is unknown"),
        )
    }

    /// 500; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!("authorization server: {detail}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "An internal error occurred",
        )
    }
}

impl From<sqlx::Error> for OAuthError {
    fn from(error: sqlx::Error) -> Self {
        match crate::db::store::unreachable(&error) {
            Some(cause) => OAuthError::unavailable(&cause),
            None => OAuthError::internal(error),
        }
    }
}

impl From<crate::db::store::StoreError> for OAuthError {
    fn from(error: crate::db::store::StoreError) -> Self {
        match error {
            crate::db::store::StoreError::Unavailable(cause) => OAuthError::unavailable(&cause),
            other => OAuthError::internal(other),
        }
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(error: anyhow::Error) -> Self {
        let unreachable = error.chain().find_map(|cause| {
            if let Some(store) = cause.downcast_ref::<crate::db::store::StoreError>() {
                match store {
                    crate::db::store::StoreError::Unavailable(cause) => Some(cause.clone()),
                    _ => None,
                }
            } else {
                cause
                    .downcast_ref::<sqlx::Error>()
                    .and_then(crate::db::store::unreachable)
            }
        });
        match unreachable {
            Some(cause) => OAuthError::unavailable(&cause),
            None => OAuthError::internal(format!("{error:#}")),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.error, "error_description": self.description});
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(value) = self.www_authenticate {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// A JSON answer that must not be cached (tokens, secrets).
pub fn no_store(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// The site named in the path.
pub async fn site(app: &AppState, name: &str) -> Result<Arc<Site>, OAuthError> {
    app.sites
        .get(name)
        .await
        .ok_or_else(|| OAuthError::unknown_site(name))
}

/// The issuer of `site`: `{public}/oauth2/{site}`.
pub fn issuer(app: &AppState, site: &str) -> String {
    crate::auth::tokens::issuer(&app.base_url, site)
}

/// True when the request's `Content-Type` is `mime` (parameters such as `charset` aside).
pub fn content_type_is(headers: &HeaderMap, mime: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with(mime))
}

/// A form-encoded body as a map. Repeated parameters are refused (RFC 6749 §3.1).
pub fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    if !content_type_is(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::request(
            "The body must be application/x-www-form-urlencoded",
        ));
    }
    let mut form = HashMap::new();
    for (name, value) in form_urlencoded::parse(body) {
        if form.insert(name.to_string(), value.to_string()).is_some() {
            return Err(OAuthError::request(format!(
                "The parameter {name} is repeated"
            )));
        }
    }
    Ok(form)
}

/// A non-empty form parameter.
pub fn param<'a>(form: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    form.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// A required form parameter.
pub fn required<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, OAuthError> {
    param(form, name)
        .ok_or_else(|| OAuthError::request(format!("The parameter {name} is required")))
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Failed sign-ins back off: each failure is counted for the pair (client address,
/// account) and for the account alone; past a key's free attempts it is refused for a
/// while that doubles with each further failure, up to [`MAX_LOCK`]. Shared by the password
/// grant and the sign-in page, and kept in the site's database (`oauth_login_failures`),
/// so every process serving the site counts the same failures.
///
/// No key counts an address alone: many people may share one (behind a proxy that is not
/// configured as trusted, or a NAT), and failures with made-up names from one address must
/// not lock anyone else out. The address is the client's as [`crate::proxy`] finds it.
#[derive(Default)]
pub struct LoginLimiter {
    /// When this process last forgot old failures (unix seconds).
    swept: std::sync::atomic::AtomicI64,
}

/// How a kind of key backs off.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Failures allowed before the first refusal.
    pub free: u32,
    /// The first refusal's length, seconds; each later failure doubles it.
    pub first: i64,
}

/// An address and account pair: five tries, then a minute, two, four, … .
pub const PAIR: Backoff = Backoff { free: 5, first: 60 };
/// An account from anywhere: twenty tries, then a minute, two, four, … (guessing one
/// account's password from many addresses).
pub const ACCOUNT: Backoff = Backoff {
    free: 20,
    first: 60,
};
/// The longest one refusal lasts.
pub const MAX_LOCK: Duration = Duration::from_secs(15 * 60);
/// How long failures are remembered after the first of a series.
pub const LOCK_WINDOW: Duration = Duration::from_secs(60 * 60);

impl Backoff {
    /// How long a key with `failures` is refused after its latest failure, seconds.
    pub fn lock_after(self, failures: i64) -> i64 {
        let past = failures - i64::from(self.free);
        if past < 0 {
            return 0;
        }
        let max = MAX_LOCK.as_secs() as i64;
        if past >= 20 {
            return max;
        }
        (self.first << past).min(max)
    }
}

/// Checks requested scopes against the site's catalogue and keeps those the client
/// registered (OpenEMR's finalizeScopes). No scope parameter means every registered scope.
pub fn finalize_scopes(
    app: &AppState,
    site: &Site,
    requested: Option<&str>,
    client: &clients::Client,
) -> Result<String, OAuthError> {
    let Some(requested) = requested else {
        return Ok(client.scope.clone());
    };
    let table = app.registry.table(&site.name);
    let refused = catalog::Catalog::new(&table.scopes).refused(requested);
    if !refused.is_empty() {
        return Err(OAuthError::scope(format!(
            "Not in this server's scope catalogue: {}",
            refused.join(" ")
        )));
    }
    let mut kept: Vec<&str> = Vec::new();
    for scope in requested.split_whitespace() {
        if catalog::contained_in(scope, &client.scope) && !kept.contains(&scope) {
            kept.push(scope);
        }
    }
    if kept.is_empty() {
        return Err(OAuthError::scope(
            "None of the requested scopes is registered for this client",
        ));
    }
    Ok(kept.join(" "))
}

/// The site's limiter (kept in its [`crate::sites::Caches`]).
pub fn limiter(site: &Site) -> Arc<LoginLimiter> {
    site.caches.get()
}

/// The login keys of a sign-in attempt: the (address, account) pair and the account.
pub fn login_keys(site: &str, role: &str, account: &str, address: &str) -> (String, String) {
    let account = format!("{site}:{role}:{}", account.to_lowercase());
    (format!("{account}@{address}"), account)
}

impl LoginLimiter {
    /// Seconds until every one of `keys` may try again (0: now).
    pub async fn wait(&self, site: &Site, keys: &[&str]) -> Result<i64, OAuthError> {
        let now = now();
        let mut wait = 0;
        for key in keys {
            let rows = site
                .db
                .read(
                    "SELECT locked_until FROM oauth_login_failures WHERE login_key = $1 AND since >= $2",
                    vec![
                        SqlValue::Text((*key).to_owned()),
                        SqlValue::Integer(window_start()),
                    ],
                )
                .await?;
            let until = rows
                .first()
                .and_then(|row| row.first())
                .and_then(SqlValue::integer)
                .unwrap_or(0);
            wait = wait.max(until - now);
        }
        Ok(wait)
    }

    /// Records a failure for each of `keys`, in one transaction (a count older than the
    /// window starts over), and refuses each key for as long as its backoff says.
    pub async fn failed(&self, site: &Site, keys: &[(&str, Backoff)]) -> Result<(), OAuthError> {
        use std::sync::atomic::Ordering;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tx = site.db.begin(true, deadline).await?;
        let now = now();
        let last = self.swept.load(Ordering::Relaxed);
        if now - last >= 60
            && self
                .swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tx.execute(
                "DELETE FROM oauth_login_failures WHERE since < $1 AND locked_until < $2",
                vec![SqlValue::Integer(window_start()), SqlValue::Integer(now)],
            )
            .await?;
        }
        for (key, backoff) in keys {
            let rows = tx
                .query(
                    "INSERT INTO oauth_login_failures (login_key, failures, since, locked_until) VALUES ($1, 1, $2, 0) \
                     ON CONFLICT (login_key) DO UPDATE SET \
                     failures = CASE WHEN oauth_login_failures.since < $3 THEN 1 ELSE oauth_login_failures.failures + 1 END, \
                     since = CASE WHEN oauth_login_failures.since < $3 THEN $2 ELSE oauth_login_failures.since END \
                     RETURNING failures",
                    vec![
                        SqlValue::Text((*key).to_owned()),
                        SqlValue::Integer(now),
                        SqlValue::Integer(window_start()),
                    ],
                )
                .await?;
            let failures = rows
                .values()
                .first()
                .and_then(|row| row.first())
                .and_then(SqlValue::integer)
                .unwrap_or(1);
            let lock = backoff.lock_after(failures);
            if lock > 0 {
                tx.execute(
                    "UPDATE oauth_login_failures SET locked_until = $1 WHERE login_key = $2",
                    vec![
                        SqlValue::Integer(now + lock),
                        SqlValue::Text((*key).to_owned()),
                    ],
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Forgets `key`'s failures (after a success).
    pub async fn succeeded(&self, site: &Site, key: &str) -> Result<(), OAuthError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tx = site.db.begin(true, deadline).await?;
        tx.execute(
            "DELETE FROM oauth_login_failures WHERE login_key = $1",
            vec![SqlValue::Text(key.to_owned())],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The sentence a refused sign-in shows.
pub fn too_many(wait: i64) -> String {
    let wait = wait.max(1);
    if wait < 120 {
        format!("Too many failed sign-ins; try again in {wait} seconds")
    } else {
        format!(
            "Too many failed sign-ins; try again in {} minutes",
            (wait + 59) / 60
        )
    }
}

/// The oldest failure time still counted.
fn window_start() -> i64 {
    now() - LOCK_WINDOW.as_secs() as i64
}
