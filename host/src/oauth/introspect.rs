//! Token introspection (RFC 7662), revocation (RFC 7009) and the OpenID Connect userinfo
//! endpoint.
//!
//! Both introspection and revocation need an authenticated client, and a client only
//! sees and revokes its own tokens: anything else is `{"active": false}` or a silent 200.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};
use sqlx::Row;

use super::accounts::Subject;
use super::token::{identity_claims, revoke_grant, token_url};
use super::{OAuthError, clients, no_store, now, param, required, sha256_hex};
use crate::auth::tokens::{self, Role};
use crate::crypto::jwt::{self, Alg};
use crate::on_db;
use crate::sites::Site;
use crate::state::AppState;

/// A stored refresh token's fields that introspection reports.
struct Refresh {
    grant_id: String,
    client_id: String,
    user_id: String,
    scope: String,
    expires_at: i64,
    active: bool,
}

async fn find_refresh(site: &Site, token: &str) -> Result<Option<Refresh>, OAuthError> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query(
            "SELECT grant_id, client_id, user_id, scope, expires_at, used, revoked FROM oauth_refresh_tokens WHERE token_hash = $1",
        )
        .bind(sha256_hex(token))
        .fetch_optional(pool)
        .await?
        .map(|row| -> Result<Refresh, sqlx::Error> {
            let expires_at: i64 = row.try_get("expires_at")?;
            let used: i64 = row.try_get("used")?;
            let revoked: i64 = row.try_get("revoked")?;
            Ok(Refresh {
                grant_id: row.try_get("grant_id")?,
                client_id: row.try_get("client_id")?,
                user_id: row.try_get("user_id")?,
                scope: row.try_get("scope")?,
                expires_at,
                active: used == 0 && revoked == 0 && expires_at > now(),
            })
        })
        .transpose()?
    }))
}

fn check_hint(hint: Option<&str>) -> Result<(), OAuthError> {
    match hint {
        None | Some("access_token" | "refresh_token") => Ok(()),
        Some(other) => Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_token_type",
            format!("token_type_hint {other:?} is not access_token or refresh_token"),
        )),
    }
}

/// `POST /oauth2/{site}/introspect`.
pub async fn introspect(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    let form = super::parse_form(&headers, &body)?;
    let token = required(&form, "token")?.to_owned();
    check_hint(param(&form, "token_type_hint"))?;
    let (client, _) =
        clients::authenticate(&site, &token_url(&app, &site.name), &headers, &form).await?;
    let inactive = || no_store(StatusCode::OK, &json!({"active": false}));
    if token.split('.').count() == 3 {
        let Ok(principal) = tokens::authenticate(&site, &app.base_url, &token).await else {
            return Ok(inactive());
        };
        if principal.client_id != client.client_id {
            return Ok(inactive());
        }
        let mut answer = json!({
            "active": true,
            "scope": principal.scope_text,
            "client_id": principal.client_id,
            "token_type": "Bearer",
            "exp": principal.exp,
            "sub": principal.subject,
            "iss": super::issuer(&app, &site.name),
            "aud": tokens::audience(&app.base_url, &site.name),
            "jti": principal.jti,
        });
        if let Ok(decoded) = jwt::decode(&token)
            && let Some(iat) = decoded.claims["iat"].as_i64()
        {
            answer["iat"] = json!(iat);
        }
        if !principal.username.is_empty() {
            answer["username"] = json!(principal.username);
        }
        if let Some(patient) = &principal.patient {
            answer["patient"] = json!(patient);
        }
        return Ok(no_store(StatusCode::OK, &answer));
    }
    match find_refresh(&site, &token).await? {
        Some(refresh) if refresh.active && refresh.client_id == client.client_id => Ok(no_store(
            StatusCode::OK,
            &json!({
                "active": true,
                "token_type": "refresh_token",
                "scope": refresh.scope,
                "client_id": refresh.client_id,
                "sub": refresh.user_id,
                "exp": refresh.expires_at,
                "iss": super::issuer(&app, &site.name),
            }),
        )),
        _ => Ok(inactive()),
    }
}

/// `POST /oauth2/{site}/revoke`: revoking a refresh token revokes its whole grant
/// (every access token issued under it); revoking an access token revokes that token.
/// Unknown tokens and other clients' tokens answer 200 and change nothing.
pub async fn revoke(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    let form = super::parse_form(&headers, &body)?;
    let token = required(&form, "token")?.to_owned();
    check_hint(param(&form, "token_type_hint"))?;
    let (client, _) =
        clients::authenticate(&site, &token_url(&app, &site.name), &headers, &form).await?;
    let done = || no_store(StatusCode::OK, &json!({}));
    if let Some(refresh) = find_refresh(&site, &token).await? {
        if refresh.client_id == client.client_id {
            revoke_grant(&site, &refresh.grant_id).await?;
        }
        return Ok(done());
    }
    // An access token: only ones this site signed, for this client.
    let keys = site.keys();
    let Ok(claims) = jwt::decode(&token)
        .and_then(|t| t.verify(keys.verifiers.iter(), &[Alg::Rs256, Alg::Es256]))
    else {
        return Ok(done());
    };
    if claims["client_id"].as_str() != Some(client.client_id.as_str()) {
        return Ok(done());
    }
    if let Some(jti) = claims["jti"].as_str() {
        on_db!(&site.db, |pool| {
            sqlx::query("UPDATE api_token SET revoked = 1 WHERE jti = $1 AND client_id = $2")
                .bind(jti)
                .bind(&client.client_id)
                .execute(pool)
                .await?;
        });
    }
    Ok(done())
}

/// `GET|POST /oauth2/{site}/userinfo` with a bearer access token granted `openid`.
pub async fn userinfo(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    let bearer = |error: crate::error::HttpError| {
        let mut out = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_token", error.message);
        out.www_authenticate = Some("Bearer realm=\"hearth\", error=\"invalid_token\"");
        out
    };
    let token = tokens::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )
    .map_err(bearer)?;
    let principal = tokens::authenticate(&site, &app.base_url, token)
        .await
        .map_err(bearer)?;
    if !principal.scopes.has("openid") || principal.role == Role::System {
        let mut out = OAuthError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "userinfo needs a user or patient token granted openid",
        );
        out.www_authenticate =
            Some("Bearer realm=\"hearth\", error=\"insufficient_scope\", scope=\"openid\"");
        return Err(out);
    }
    let subject = Subject {
        role: principal.role,
        id: principal.subject.clone(),
        username: (!principal.username.is_empty()).then(|| principal.username.clone()),
        acl_role: principal.acl_role.clone(),
    };
    let claims: Value = identity_claims(&app, &site, &subject, &principal.scope_text).await?;
    Ok(no_store(StatusCode::OK, &claims))
}
