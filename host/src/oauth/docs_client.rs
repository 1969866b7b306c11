//! Each site's own client for the API docs page (Swagger UI at `/apis/{site}/docs`):
//! a public client (`token_endpoint_auth_method` `none`, so authorization code with PKCE)
//! whose id is [`DOCS_CLIENT_ID`] and whose one redirect URI is the docs page's
//! `oauth2-redirect.html`.
//!
//! The authorization server registers it the first time `/authorize` names it, and then
//! keeps its scopes equal to what the site serves: `openid`, `offline_access`,
//! `fhirUser`, `launch/patient`, `api:oemr`, `api:port`, `api:fhir` and every scope the
//! site's plugins declare in the `user/` and `patient/` contexts (never `system/`: a
//! browser page is no backend service). Unlike a public client that registers itself,
//! it may ask for `user/` scopes: it is the host's own page, reached only on the host's
//! own origin, and the person signing in still consents to each scope. An administrator
//! turns it off with `hearth client disable --site NAME hearth-api-docs`; the host never
//! enables it again.

use serde_json::json;

use super::{now, sha256_hex};
use crate::auth::scopes::Scope;
use crate::db::store::StoreError;
use crate::on_db;
use crate::sites::Site;
use crate::state::{AppState, DOCS_CLIENT_ID};

/// The redirect URI of the docs client of `site`.
pub fn redirect_uri(app: &AppState, site: &str) -> String {
    format!("{}/apis/{site}/docs/oauth2-redirect.html", app.base_url)
}

/// The scopes the docs client of `site` is registered with.
pub fn scopes(app: &AppState, site: &str) -> String {
    let table = app.registry.table(site);
    let mut out: Vec<String> = [
        "openid",
        "offline_access",
        "fhirUser",
        "launch/patient",
        "api:oemr",
        "api:port",
        "api:fhir",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for scope in &table.scopes {
        if let Scope::Resource { context, .. } = scope
            && context != "system"
        {
            let text = scope.to_string();
            if !out.contains(&text) {
                out.push(text);
            }
        }
    }
    out.join(" ")
}

/// Registers the docs client of `site`, or brings its scopes and redirect URI up to date.
pub async fn ensure(app: &AppState, site: &Site) -> Result<(), StoreError> {
    let scope = scopes(app, &site.name);
    let redirect_uris = json!([redirect_uri(app, &site.name)]).to_string();
    if let Some(client) = super::clients::find(site, DOCS_CLIENT_ID).await? {
        let registered = json!(client.redirect_uris).to_string();
        if client.scope == scope && registered == redirect_uris {
            return Ok(());
        }
        on_db!(&site.db, |pool| {
            sqlx::query(
                "UPDATE oauth_clients SET scope = $1, redirect_uris = $2 WHERE client_id = $3",
            )
            .bind(&scope)
            .bind(&redirect_uris)
            .bind(DOCS_CLIENT_ID)
            .execute(pool)
            .await
            .map_err(|e| StoreError::Failed(e.to_string()))?;
        });
        return Ok(());
    }
    let metadata = json!({
        "application_type": "public",
        "client_name": "Hearth API docs",
        "redirect_uris": [redirect_uri(app, &site.name)],
        "post_logout_redirect_uris": [],
        "contacts": [],
        "scope": scope,
        "token_endpoint_auth_method": "none",
        "client_role": "user",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    });
    // Two replicas (or two tabs) may register at once: the second insert is ignored.
    on_db!(&site.db, |pool| {
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, client_secret_hash, registration_token_hash, registration_path, client_name, application_type, client_role, token_endpoint_auth_method, redirect_uris, post_logout_redirect_uris, scope, jwks, jwks_uri, metadata, enabled, created_at, vetted) VALUES ($1, NULL, $2, $3, $4, 'public', 'user', 'none', $5, '[]', $6, NULL, NULL, $7, 1, $8, 1) ON CONFLICT (client_id) DO NOTHING",
        )
        .bind(DOCS_CLIENT_ID)
        // Nobody manages it over RFC 7592: a hash of random bytes no token matches.
        .bind(sha256_hex(&super::random_token(32)))
        .bind(super::random_token(16))
        .bind("Hearth API docs")
        .bind(&redirect_uris)
        .bind(&scope)
        .bind(metadata.to_string())
        .bind(now())
        .execute(pool)
        .await
        .map_err(|e| StoreError::Failed(e.to_string()))?;
    });
    tracing::info!(
        "site {}: registered the API docs client {DOCS_CLIENT_ID}",
        site.name
    );
    Ok(())
}
