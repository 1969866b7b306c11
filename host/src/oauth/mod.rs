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
pub mod discovery;
pub mod docs_client;
pub mod introspect;
pub mod pages;
pub mod registration;
pub mod token;

pub use crate::registrar::{
    ACCOUNT, Backoff, LOCK_WINDOW, LoginLimiter, MAX_LOCK, OAuthError, PAIR, accounts, catalog,
    clients, content_type_is, limiter, login_keys, no_store, now, param, parse_form, random_token,
    required, same, settings, sha256_hex, too_many,
};

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, header};
use axum::routing::{get, post};

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
