//! Dynamic client registration (RFC 7591) with OpenEMR's fields, and reading a
//! registration back with its registration access token (RFC 7592, read only). The rules
//! and the storing live in [`crate::registrar::registration`], shared with the admin
//! console's registration page.
//!
//! `application_type: "private"` makes a confidential client (a secret, or keys for
//! `private_key_jwt`); anything else a public one. Clients asking for `user/` or `system/`
//! scopes (and public clients asking for `launch`) start disabled until an administrator
//! runs `hearth client enable`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::clients::{self, Client};
use super::{OAuthError, catalog, no_store, same, settings, sha256_hex};
pub use crate::registrar::registration::{
    DEFAULT_SCOPE, Registered, create, metadata_error, redirect_uri_problem,
};
use crate::state::AppState;

/// `POST /oauth2/{site}/registration`.
pub async fn register(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    if settings::get(&site, "oauth.registration_requires_token").await? == "on" {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let stored = settings::raw(&site, settings::INITIAL_TOKEN).await?;
        let ok = match (presented, stored) {
            (Some(token), Some(hash)) => same(&sha256_hex(token), &hash),
            _ => false,
        };
        if !ok {
            let mut error = OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Registration on this site needs a valid initial access token (Authorization: Bearer …)",
            );
            error.www_authenticate = Some("Bearer realm=\"hearth\"");
            return Err(error);
        }
    }
    if !super::content_type_is(&headers, "application/json") {
        return Err(metadata_error("The body must be application/json"));
    }
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| metadata_error(format!("The body is not valid JSON: {e}")))?;
    let Value::Object(body) = body else {
        return Err(metadata_error("The body must be a JSON object"));
    };
    let table = app.registry.table(&site.name);
    let catalog = catalog::Catalog::new(&table.scopes);
    let mut answer = create(&site, &body, false, catalog).await?.answer;
    answer["registration_client_uri"] = json!(format!(
        "{}/client/{}",
        super::issuer(&app, &site.name),
        answer["registration_path"].as_str().unwrap_or_default()
    ));
    if let Value::Object(fields) = &mut answer {
        fields.remove("registration_path");
    }
    // OpenEMR answers a registration with 200; a site in OpenEMR compatibility does too.
    let status = if settings::get(&site, "api.compatibility").await? == "openemr" {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(no_store(status, &answer))
}

/// `GET /oauth2/{site}/client/{path}`: the client's registration, for the bearer of its
/// registration access token.
pub async fn read_client(
    State(app): State<Arc<AppState>>,
    Path((site_name, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let denied = || {
        let mut error = OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "The registration access token is missing or wrong",
        );
        error.www_authenticate = Some("Bearer realm=\"hearth\"");
        error
    };
    let token = token.ok_or_else(denied)?;
    let Some((client, hash)) = clients::find_by_path(&site, &path).await? else {
        return Err(denied());
    };
    if !same(&hash, &sha256_hex(token)) {
        return Err(denied());
    }
    Ok(no_store(
        StatusCode::OK,
        &registration_view(&app, &site.name, &client, &path),
    ))
}

fn registration_view(app: &AppState, site: &str, client: &Client, path: &str) -> Value {
    let mut view = client.metadata.clone();
    if !view.is_object() {
        view = json!({});
    }
    view["client_id"] = json!(client.client_id);
    view["client_id_issued_at"] = json!(client.created_at);
    view["registration_client_uri"] = json!(format!("{}/client/{path}", super::issuer(app, site)));
    view
}
