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

pub mod authorize;
pub mod catalog;
pub mod cli;
pub mod clients;
pub mod discovery;
pub mod introspect;
pub mod pages;
pub mod registration;
pub mod settings;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::db::store::SqlValue;
use crate::sites::Site;

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
            get(authorize::authorize).post(authorize::authorize),
        )
        .route("/oauth2/{site}/login", post(authorize::login))
        .route(
            "/oauth2/{site}/patient-select",
            get(authorize::patient_select).post(authorize::patient_chosen),
        )
        .route(
            "/oauth2/{site}/consent",
            get(authorize::consent_page).post(authorize::consent),
        )
        .route("/oauth2/{site}/logout", get(authorize::logout));
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
}

impl OAuthError {
    /// An error with `status`.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            www_authenticate: None,
        }
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
        OAuthError::internal(error)
    }
}

impl From<crate::db::store::StoreError> for OAuthError {
    fn from(error: crate::db::store::StoreError) -> Self {
        OAuthError::internal(error)
    }
}

impl From<anyhow::Error> for OAuthError {
    fn from(error: anyhow::Error) -> Self {
        OAuthError::internal(format!("{error:#}"))
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

/// A form-encoded body as a map. Repeated parameters are refused (RFC 6749 §3.1).
pub fn parse_form(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, OAuthError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
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

/// Hex SHA-256, how secrets and tokens are stored.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buffer = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::thread_rng(), buffer.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Constant-time equality of two strings.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Failed logins: too many for one account (or from one address) in a window locks it
/// for a while. Keys are `site:role:account` and `site:address:ip`. Shared by the password
/// grant and the sign-in page, and kept in the site's database
/// (`oauth_login_failures`), so every process serving the site counts the same failures
/// and a lock-out reached through one process holds in all of them.
#[derive(Default)]
pub struct LoginLimiter {
    /// When this process last forgot old failures (unix seconds).
    swept: std::sync::atomic::AtomicI64,
}

/// Failures allowed per key within [`LOCK_WINDOW`].
pub const MAX_FAILURES: u32 = 5;
/// How long failures are remembered (and an account stays locked).
pub const LOCK_WINDOW: Duration = Duration::from_secs(15 * 60);

impl LoginLimiter {
    /// True when `key` may try again.
    pub async fn allowed(&self, site: &Site, key: &str) -> Result<bool, OAuthError> {
        self.allowed_up_to(site, key, MAX_FAILURES).await
    }

    /// True when `key` has fewer than `max` failures within the window.
    pub async fn allowed_up_to(
        &self,
        site: &Site,
        key: &str,
        max: u32,
    ) -> Result<bool, OAuthError> {
        let rows = site
            .db
            .read(
                "SELECT failures FROM oauth_login_failures WHERE login_key = $1 AND since >= $2",
                vec![
                    SqlValue::Text(key.to_owned()),
                    SqlValue::Integer(window_start()),
                ],
            )
            .await?;
        let failures = rows
            .first()
            .and_then(|row| row.first())
            .and_then(SqlValue::integer)
            .unwrap_or(0);
        Ok(failures < i64::from(max))
    }

    /// Records a failure for each of `keys`, in one transaction (a count older than the
    /// window starts over).
    pub async fn failed(&self, site: &Site, keys: &[&str]) -> Result<(), OAuthError> {
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
                "DELETE FROM oauth_login_failures WHERE since < $1",
                vec![SqlValue::Integer(window_start())],
            )
            .await?;
        }
        for key in keys {
            tx.execute(
                "INSERT INTO oauth_login_failures (login_key, failures, since) VALUES ($1, 1, $2) \
                 ON CONFLICT (login_key) DO UPDATE SET \
                 failures = CASE WHEN oauth_login_failures.since < $3 THEN 1 ELSE oauth_login_failures.failures + 1 END, \
                 since = CASE WHEN oauth_login_failures.since < $3 THEN $2 ELSE oauth_login_failures.since END",
                vec![
                    SqlValue::Text((*key).to_owned()),
                    SqlValue::Integer(now),
                    SqlValue::Integer(window_start()),
                ],
            )
            .await?;
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

/// The oldest failure time still counted.
fn window_start() -> i64 {
    now() - LOCK_WINDOW.as_secs() as i64
}
