//! Discovery: `/oauth2/{site}/.well-known/openid-configuration` (OpenID Connect Discovery)
//! and `/apis/{site}/fhir/.well-known/smart-configuration` (SMART App Launch 2). Both
//! advertise only what this server really does, with every URL built from the public
//! base URL.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{OAuthError, catalog, settings};
use crate::sites::Site;
use crate::state::AppState;

async fn grant_types(site: &Site) -> Result<Vec<&'static str>, OAuthError> {
    let mut grants = vec!["authorization_code", "client_credentials"];
    grants.push("refresh_token");
    if settings::get(site, "oauth.password_grant").await? != "off" {
        grants.push("password");
    }
    Ok(grants)
}

fn json_response(body: &Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

fn endpoints(app: &AppState, site: &str) -> Value {
    let issuer = super::issuer(app, site);
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/authorize"),
        "end_session_endpoint": format!("{issuer}/logout"),
        // OpenEMR's path, which its clients expect; `/jwks` answers the same keys.
        "jwks_uri": format!("{issuer}/jwk"),
        "token_endpoint": format!("{issuer}/token"),
        "registration_endpoint": format!("{issuer}/registration"),
        "introspection_endpoint": format!("{issuer}/introspect"),
        "revocation_endpoint": format!("{issuer}/revoke"),
        "userinfo_endpoint": format!("{issuer}/userinfo"),
    })
}

const AUTH_METHODS: &[&str] = &[
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "none",
];

/// `GET /oauth2/{site}/.well-known/openid-configuration`.
pub async fn openid_configuration(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    let mut doc = endpoints(&app, &site.name);
    let extra = json!({
        "scopes_supported": catalog::Catalog::new(&app.registry.table(&site.name).scopes).supported(),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": grant_types(&site).await?,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [site.keys().signer.alg.name()],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
        "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "fhirUser", "name", "given_name", "family_name", "preferred_username", "email", "email_verified"],
        "authorization_response_iss_parameter_supported": true,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    });
    if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
        doc.extend(extra);
    }
    Ok(json_response(&doc))
}

/// `GET /apis/{site}/fhir/.well-known/smart-configuration`.
pub async fn smart_configuration(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    let mut doc = endpoints(&app, &site.name);
    let capabilities = [
        "launch-ehr",
        "launch-standalone",
        "authorize-post",
        "client-public",
        "client-confidential-symmetric",
        "client-confidential-asymmetric",
        "sso-openid-connect",
        "context-banner",
        "context-style",
        "context-ehr-patient",
        "context-ehr-encounter",
        "context-standalone-patient",
        "permission-offline",
        "permission-user",
        "permission-patient",
        "permission-v1",
        "permission-v2",
    ];
    let extra = json!({
        "grant_types_supported": grant_types(&site).await?,
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "scopes_supported": catalog::Catalog::new(&app.registry.table(&site.name).scopes).supported(),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": capabilities,
    });
    if let (Value::Object(doc), Value::Object(extra)) = (&mut doc, extra) {
        doc.extend(extra);
    }
    Ok(json_response(&doc))
}
