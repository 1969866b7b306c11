//! The token endpoint (`POST /oauth2/{site}/token`) and the issuer behind it.
//!
//! Grants: `authorization_code` (PKCE S256; required for public clients; a replayed code
//! revokes what it issued), `client_credentials` (private_key_jwt only, `system/` scopes only),
//! `password` (off unless the site turns it on), `refresh_token` (rotation with reuse
//! detection: presenting a rotated refresh token revokes the whole grant). Access tokens
//! come from [`crate::auth::tokens::sign`]; each names its grant (`api_token.grant_id`)
//! so revoking the grant reaches the resource server at once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use sqlx::Row;

use super::accounts::{Subject, check_patient, check_user};
use super::clients::{self, AssertionId, AuthMethod, Client};
use super::{
    OAuthError, finalize_scopes, no_store, now, param, random_token, required, settings, sha256_hex,
};
use crate::auth::tokens::{self, Grant, Role};
use crate::db::store::SqlValue;
use crate::on_db;
use crate::proxy::ClientAddr;
use crate::sites::Site;
use crate::state::AppState;

/// The token endpoint URL of `site`.
pub fn token_url(app: &AppState, site: &str) -> String {
    format!("{}/token", super::issuer(app, site))
}

/// `POST /oauth2/{site}/token`.
pub async fn token(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    address: ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, OAuthError> {
    let site = super::site(&app, &site_name).await?;
    let form = super::parse_form(&headers, &body)?;
    let grant_type = required(&form, "grant_type")?.to_owned();
    if ![
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    ]
    .contains(&grant_type.as_str())
    {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("The grant type {grant_type:?} is not supported"),
        ));
    }
    let url = token_url(&app, &site.name);
    let (client, method, assertion) =
        if openemr_unauthenticated(&site, &grant_type, &headers, &form).await? {
            // OpenEMR takes a confidential client's refresh and password requests with only
            // its client_id; a site in OpenEMR compatibility does too (docs/compatibility.md).
            let client_id = required(&form, "client_id")?;
            let client = clients::enabled_client(&site, client_id).await?;
            (client, clients::AuthMethod::None, None)
        } else {
            clients::authenticate_deferred(&site, &url, &headers, &form).await?
        };
    let answer = if grant_type == "client_credentials" {
        // The assertion's jti is recorded with the token, in one write transaction; a
        // request refused before that still spends it.
        let answer =
            client_credentials(&app, &site, &client, method, assertion.as_ref(), &form).await;
        if answer.is_err()
            && let Some(assertion) = &assertion
        {
            let _ = assertion.record(&site).await;
        }
        answer
    } else {
        if let Some(assertion) = assertion {
            assertion.record(&site).await?;
        }
        match grant_type.as_str() {
            "password" => password(&app, &site, &client, &form, address).await,
            "authorization_code" => authorization_code(&app, &site, &client, &form).await,
            _ => refresh(&app, &site, &client, &form).await,
        }
    };
    if answer
        .as_ref()
        .is_ok_and(|response| response.status().is_success())
    {
        app.telemetry.token_issued(&site.name, &grant_type);
    }
    answer
}

/// True for a refresh_token or password request carrying no client authentication at
/// all (no secret, no assertion, no Basic header) on a site in OpenEMR compatibility.
async fn openemr_unauthenticated(
    site: &Site,
    grant_type: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<bool, OAuthError> {
    let bare = matches!(grant_type, "refresh_token" | "password")
        && !headers.contains_key(axum::http::header::AUTHORIZATION)
        && param(form, "client_secret").is_none()
        && param(form, "client_assertion").is_none();
    Ok(bare && settings::get(site, "api.compatibility").await? == "openemr")
}

async fn client_credentials(
    app: &AppState,
    site: &Arc<Site>,
    client: &Client,
    method: AuthMethod,
    assertion: Option<&AssertionId>,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    if method != AuthMethod::PrivateKeyJwt {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "client_credentials needs private_key_jwt client authentication (client_assertion)",
        ));
    }
    let requested = match param(form, "scope") {
        Some(scope) => scope.to_owned(),
        None => client
            .scope
            .split_whitespace()
            .filter(|s| s.starts_with("system/"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    if let Some(bad) = requested
        .split_whitespace()
        .find(|s| !s.starts_with("system/"))
    {
        return Err(OAuthError::scope(format!(
            "client_credentials grants system/ scopes only, not {bad}"
        )));
    }
    if requested.is_empty() {
        return Err(OAuthError::scope("The client has no system/ scopes"));
    }
    let scope = finalize_scopes(app, site, Some(&requested), client)?;
    let subject = Subject {
        role: Role::System,
        id: crate::auth::users::system_user(site).await?,
        username: None,
        acl_role: None,
    };
    let lifetime = settings::seconds(site, "oauth.client_credentials_lifetime").await?;
    let grant_id = random_token(16);
    respond(
        app,
        site,
        client,
        &Issue {
            subject: &subject,
            scope: &scope,
            context: json!({}),
            nonce: None,
            grant_id: &grant_id,
            revocable: false,
            lifetime,
            refresh: false,
            id_token: false,
            rotates: None,
            assertion,
        },
    )
    .await
}

async fn password(
    app: &AppState,
    site: &Arc<Site>,
    client: &Client,
    form: &HashMap<String, String>,
    address: ClientAddr,
) -> Result<Response, OAuthError> {
    let allowed = settings::get(site, "oauth.password_grant").await?;
    let role = required(form, "user_role")?;
    let permitted = match role {
        "users" => matches!(allowed.as_str(), "users" | "both"),
        "patient" => matches!(allowed.as_str(), "patients" | "both"),
        _ => {
            return Err(OAuthError::request("user_role must be users or patient"));
        }
    };
    if !permitted {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("The password grant is not enabled for {role} on this site"),
        ));
    }
    let username = required(form, "username")?;
    let password = required(form, "password")?;
    let email = if role == "patient" {
        Some(required(form, "email")?)
    } else {
        None
    };
    let scope = finalize_scopes(app, site, param(form, "scope"), client)?;
    let (pair, account) = super::login_keys(&site.name, role, username, &address.text());
    let wait = super::limiter(site).wait(site, &[&pair, &account]).await?;
    if wait > 0 {
        return Err(OAuthError::grant(super::too_many(wait)));
    }
    let subject = match email {
        None => check_user(site, username, password).await?,
        Some(email) => check_patient(site, username, email, password).await?,
    };
    let Some(subject) = subject else {
        super::limiter(site)
            .failed(site, &[(&pair, super::PAIR), (&account, super::ACCOUNT)])
            .await?;
        return Err(OAuthError::grant(
            "Failed Authentication: wrong user name or password",
        ));
    };
    super::limiter(site).succeeded(site, &pair).await?;
    super::limiter(site).succeeded(site, &account).await?;
    let lifetime = settings::seconds(site, "oauth.access_token_lifetime").await?;
    let grant_id = random_token(16);
    let context = match subject.role {
        Role::Patient => json!({"patient": subject.id}),
        _ => json!({}),
    };
    respond(
        app,
        site,
        client,
        &Issue {
            subject: &subject,
            scope: &scope,
            context,
            nonce: None,
            grant_id: &grant_id,
            revocable: true,
            lifetime,
            refresh: true,
            id_token: true,
            rotates: None,
            assertion: None,
        },
    )
    .await
}

async fn refresh(
    app: &AppState,
    site: &Arc<Site>,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let presented = required(form, "refresh_token")?;
    let hash = sha256_hex(presented);
    let rows = site
        .db
        .read(
            "SELECT grant_id, client_id, user_id, role, username, acl_role, scope, context, expires_at, used, revoked FROM oauth_refresh_tokens WHERE token_hash = $1",
            vec![SqlValue::Text(hash.clone())],
        )
        .await?;
    let Some(row) = rows.first() else {
        return Err(OAuthError::grant("The refresh token is not known"));
    };
    let text = |i: usize| -> Result<String, OAuthError> {
        row[i]
            .text()
            .map(str::to_owned)
            .ok_or_else(|| OAuthError::internal(format!("oauth_refresh_tokens column {i}")))
    };
    let optional = |i: usize| row[i].text().map(str::to_owned);
    let integer = |i: usize| -> Result<i64, OAuthError> {
        row[i]
            .integer()
            .ok_or_else(|| OAuthError::internal(format!("oauth_refresh_tokens column {i}")))
    };
    let (grant_id, owner, user_id, role) = (text(0)?, text(1)?, text(2)?, text(3)?);
    let (username, acl_role, granted, context) = (optional(4), optional(5), text(6)?, text(7)?);
    let (expires_at, used, revoked) = (integer(8)?, integer(9)?, integer(10)?);
    if owner != client.client_id {
        return Err(OAuthError::grant(
            "The refresh token was issued to another client",
        ));
    }
    if revoked != 0 {
        return Err(OAuthError::grant("The refresh token has been revoked"));
    }
    if expires_at <= now() {
        return Err(OAuthError::grant("The refresh token has expired"));
    }
    if used != 0 {
        return refresh_reused(site, &grant_id, &client.client_id).await;
    }
    let scope = match param(form, "scope") {
        None => granted.clone(),
        Some(requested) => {
            if let Some(bad) = requested
                .split_whitespace()
                .find(|s| !granted.split_whitespace().any(|g| g == *s))
            {
                return Err(OAuthError::scope(format!(
                    "{bad} was not granted originally; a refresh may only narrow the scopes"
                )));
            }
            let narrowed = requested.split_whitespace().collect::<Vec<_>>().join(" ");
            if narrowed.is_empty() {
                return Err(OAuthError::scope("scope is empty"));
            }
            narrowed
        }
    };
    let role = Role::from_name(&role).ok_or_else(|| OAuthError::internal("stored role"))?;
    let stored = Subject {
        role,
        id: user_id,
        username,
        acl_role,
    };
    let Some(subject) = current_account(site, &stored).await? else {
        // The account behind the grant is gone or disabled: nothing of the grant stays
        // usable, its access tokens included.
        revoke_grant(site, &grant_id).await?;
        return Err(OAuthError::grant(
            "The account this refresh token was issued to is disabled or no longer signs in",
        ));
    };
    let lifetime = settings::seconds(site, "oauth.access_token_lifetime").await?;
    respond(
        app,
        site,
        client,
        &Issue {
            subject: &subject,
            scope: &scope,
            context: serde_json::from_str(&context).unwrap_or_else(|_| json!({})),
            nonce: None,
            grant_id: &grant_id,
            revocable: true,
            lifetime,
            refresh: true,
            id_token: true,
            rotates: Some(&hash),
            assertion: None,
        },
    )
    .await
}

/// The account behind a grant as it stands now: a staff user must still exist and be
/// active, and tokens carry the user's current ACL role and user name; a patient must
/// still have a portal login (and a chart). `None` when the account may no longer sign in.
async fn current_account(site: &Site, stored: &Subject) -> Result<Option<Subject>, OAuthError> {
    let id = SqlValue::Text(stored.id.clone());
    match stored.role {
        Role::User => {
            let rows = site
                .db
                .read(
                    "SELECT role, active, username FROM users WHERE CAST(uuid AS TEXT) = $1",
                    vec![id],
                )
                .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            if row.get(1).and_then(SqlValue::integer).unwrap_or(0) == 0 {
                return Ok(None);
            }
            Ok(Some(Subject {
                role: Role::User,
                id: stored.id.clone(),
                username: row.get(2).and_then(SqlValue::text).map(str::to_owned),
                acl_role: row.first().and_then(SqlValue::text).map(str::to_owned),
            }))
        }
        Role::Patient => {
            let rows = site
                .db
                .read(
                    "SELECT 1 AS one FROM portal_logins l JOIN patient_data p ON CAST(p.uuid AS TEXT) = l.puuid WHERE l.puuid = $1",
                    vec![id],
                )
                .await?;
            Ok((!rows.is_empty()).then(|| stored.clone()))
        }
        // Backend services get no refresh tokens; a stored one stands as it is.
        Role::System => Ok(Some(stored.clone())),
    }
}

/// True when `verifier` is a well-formed PKCE verifier whose S256 hash is `challenge`.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine as _;
    use sha2::Digest as _;
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'));
    let hash = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    well_formed && super::same(&hash, challenge)
}

async fn authorization_code(
    app: &AppState,
    site: &Arc<Site>,
    client: &Client,
    form: &HashMap<String, String>,
) -> Result<Response, OAuthError> {
    let code = required(form, "code")?;
    let redirect_uri = required(form, "redirect_uri")?;
    let verifier = param(form, "code_verifier");
    let Some(stored) = super::authorize::find_code(site, code).await? else {
        return Err(OAuthError::grant("The authorization code is not known"));
    };
    if stored.client_id != client.client_id {
        return Err(OAuthError::grant(
            "The authorization code was issued to another client",
        ));
    }
    if stored.used {
        return replayed(site, &stored.grant_id, &client.client_id).await;
    }
    if stored.expires_at <= now() {
        return Err(OAuthError::grant("The authorization code has expired"));
    }
    if stored.redirect_uri != redirect_uri {
        return Err(OAuthError::grant(
            "redirect_uri differs from the authorization request's",
        ));
    }
    match (&stored.code_challenge, verifier) {
        (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
        (Some(_), Some(_)) => {
            return Err(OAuthError::grant(
                "The code_verifier does not match the code_challenge",
            ));
        }
        (Some(_), None) => return Err(OAuthError::grant("code_verifier is required (PKCE)")),
        (None, Some(_)) => {
            return Err(OAuthError::grant(
                "code_verifier was sent but the authorization request had no code_challenge",
            ));
        }
        (None, None) => {}
    }
    if !super::authorize::claim_code(site, code).await? {
        return replayed(site, &stored.grant_id, &client.client_id).await;
    }
    let lifetime = settings::seconds(site, "oauth.access_token_lifetime").await?;
    respond(
        app,
        site,
        client,
        &Issue {
            subject: &stored.subject,
            scope: &stored.scope,
            context: stored.context.clone(),
            nonce: stored.nonce.as_deref(),
            grant_id: &stored.grant_id,
            revocable: true,
            lifetime,
            refresh: true,
            id_token: true,
            rotates: None,
            assertion: None,
        },
    )
    .await
}

/// A rotated refresh token presented again: the whole grant is revoked.
async fn refresh_reused(
    site: &Site,
    grant_id: &str,
    client_id: &str,
) -> Result<Response, OAuthError> {
    revoke_grant(site, grant_id).await?;
    tracing::warn!(
        "site {}: a rotated refresh token of client {client_id} was presented again; grant revoked",
        site.name
    );
    Err(OAuthError::grant(
        "The refresh token was already used; every token of this grant is now revoked",
    ))
}

/// A code presented a second time: everything issued from it is revoked.
async fn replayed(site: &Site, grant_id: &str, client_id: &str) -> Result<Response, OAuthError> {
    revoke_grant(site, grant_id).await?;
    tracing::warn!(
        "site {}: an authorization code of client {client_id} was presented twice; its tokens are revoked",
        site.name
    );
    Err(OAuthError::grant(
        "The authorization code was already used; the tokens issued from it are revoked",
    ))
}

/// Revokes every refresh and access token of a grant, in one transaction.
pub async fn revoke_grant(site: &Site, grant_id: &str) -> Result<(), OAuthError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut tx = site.db.begin(true, deadline).await?;
    for sql in [
        "UPDATE oauth_refresh_tokens SET revoked = 1 WHERE grant_id = $1",
        "UPDATE api_token SET revoked = 1 WHERE grant_id = $1",
    ] {
        tx.execute(sql, vec![SqlValue::Text(grant_id.to_owned())])
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What to issue.
pub struct Issue<'a> {
    /// Who.
    pub subject: &'a Subject,
    /// Granted scopes.
    pub scope: &'a str,
    /// SMART launch context (`patient`, `need_patient_banner`, …).
    pub context: Value,
    /// The OpenID Connect nonce.
    pub nonce: Option<&'a str>,
    /// The grant the tokens belong to.
    pub grant_id: &'a str,
    /// Whether the access token is stored with its grant, so that revoking the grant
    /// (a reused refresh token, a replayed code) reaches it. A client_credentials grant
    /// has neither, so its tokens skip the grant index (one page less per request).
    pub revocable: bool,
    /// Access token lifetime.
    pub lifetime: i64,
    /// Whether the grant may carry a refresh token (given only with `offline_access`).
    pub refresh: bool,
    /// Whether an id_token is given (with `openid`).
    pub id_token: bool,
    /// The hash of the refresh token this answer replaces: it is marked used in the same
    /// transaction that records the new tokens, and if another request used it first the
    /// grant is revoked instead.
    pub rotates: Option<&'a str>,
    /// A client assertion whose `jti` is recorded in the same transaction (refused, with
    /// nothing issued, if it was used before).
    pub assertion: Option<&'a AssertionId>,
}

/// Issues the tokens of a grant and renders the token response. Tokens are signed
/// first; then one write transaction rotates the presented refresh token (if any) and
/// records the access token, its grant and the new refresh token, so the write lock is
/// held for a few small statements only and a failure leaves nothing half-issued.
pub async fn respond(
    app: &AppState,
    site: &Arc<Site>,
    client: &Client,
    issue: &Issue<'_>,
) -> Result<Response, OAuthError> {
    let scopes: Vec<&str> = issue.scope.split_whitespace().collect();
    let patient = issue.context["patient"].as_str().map(str::to_owned);
    let grant = Grant {
        client_id: client.client_id.clone(),
        subject: issue.subject.id.clone(),
        role: issue.subject.role,
        username: issue.subject.username.clone(),
        acl_role: issue.subject.acl_role.clone(),
        scope: issue.scope.to_owned(),
        patient: patient.clone(),
        context: issue.context.clone(),
        lifetime: issue.lifetime,
    };
    let signed = tokens::sign(site, &app.base_url, &grant)?;
    let mut body = json!({
        "access_token": signed.issued.token,
        "token_type": "Bearer",
        "expires_in": issue.lifetime,
        "scope": issue.scope,
    });
    let refresh = if issue.refresh && scopes.contains(&"offline_access") {
        let lifetime = settings::seconds(site, "oauth.refresh_token_lifetime").await?;
        Some((random_token(48), lifetime))
    } else {
        None
    };
    if issue.id_token && scopes.contains(&"openid") && issue.subject.role != Role::System {
        let claims = id_token_claims(app, site, client, issue, signed.issued.expires_at).await?;
        body["id_token"] = json!(
            site.keys()
                .signer
                .sign(&claims)
                .map_err(OAuthError::internal)?
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut tx = site.db.begin(true, deadline).await?;
    if let Some(assertion) = issue.assertion
        && !assertion.record_in(site, &mut tx).await?
    {
        tx.rollback().await?;
        return Err(AssertionId::replayed());
    }
    if let Some(hash) = issue.rotates {
        let claimed = tx
            .execute(
                "UPDATE oauth_refresh_tokens SET used = 1 WHERE token_hash = $1 AND used = 0 AND revoked = 0",
                vec![SqlValue::Text(hash.to_owned())],
            )
            .await?;
        if claimed != 1 {
            tx.rollback().await?;
            return refresh_reused(site, issue.grant_id, &client.client_id).await;
        }
    }
    signed
        .record(&mut tx, issue.revocable.then_some(issue.grant_id))
        .await?;
    if let Some((refresh_token, lifetime)) = &refresh {
        let created = now();
        let text = |value: &str| SqlValue::Text(value.to_owned());
        let optional = |value: &Option<String>| value.as_deref().map_or(SqlValue::Null, text);
        tx.execute(
            "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, client_id, user_id, role, username, acl_role, scope, context, expires_at, used, revoked, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, 0, $11)",
            vec![
                text(&sha256_hex(refresh_token)),
                text(issue.grant_id),
                text(&client.client_id),
                text(&issue.subject.id),
                text(issue.subject.role.name()),
                optional(&issue.subject.username),
                optional(&issue.subject.acl_role),
                text(issue.scope),
                text(&issue.context.to_string()),
                SqlValue::Integer(created + lifetime),
                SqlValue::Integer(created),
            ],
        )
        .await?;
        body["refresh_token"] = json!(refresh_token);
    }
    tx.commit().await?;
    if let Value::Object(context) = &issue.context {
        for key in [
            "patient",
            "encounter",
            "need_patient_banner",
            "smart_style_url",
            "intent",
            "fhirContext",
        ] {
            if let Some(value) = context.get(key) {
                body[key] = value.clone();
            }
        }
    }
    Ok(no_store(StatusCode::OK, &body))
}

/// The `fhirUser` URL of a subject.
async fn fhir_user(
    app: &AppState,
    site: &Site,
    subject: &Subject,
) -> Result<Option<String>, OAuthError> {
    let base = format!("{}/fhir", tokens::audience(&app.base_url, &site.name));
    Ok(match subject.role {
        Role::Patient => Some(format!("{base}/Patient/{}", subject.id)),
        Role::User => {
            let npi = person(site, subject).await?["npi"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let kind = if npi.is_empty() {
                "Person"
            } else {
                "Practitioner"
            };
            Some(format!("{base}/{kind}/{}", subject.id))
        }
        Role::System => None,
    })
}

/// Name and contact fields of a user or patient.
pub async fn person(site: &Site, subject: &Subject) -> Result<Value, OAuthError> {
    let sql = match subject.role {
        Role::User => "SELECT fname, lname, email, npi FROM users WHERE CAST(uuid AS TEXT) = $1",
        Role::Patient => {
            "SELECT fname, lname, email, '' AS npi FROM patient_data WHERE CAST(uuid AS TEXT) = $1"
        }
        Role::System => return Ok(json!({})),
    };
    let row: Option<(String, String, String, String)> = on_db!(&site.db, |pool| {
        sqlx::query(sql)
            .bind(&subject.id)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get("fname")?,
                    row.try_get("lname")?,
                    row.try_get("email")?,
                    row.try_get("npi")?,
                ))
            })
            .transpose()?
    });
    Ok(match row {
        Some((fname, lname, email, npi)) => {
            json!({"fname": fname, "lname": lname, "email": email, "npi": npi})
        }
        None => json!({}),
    })
}

/// The OpenID Connect claims of a subject for the granted scopes.
pub async fn identity_claims(
    app: &AppState,
    site: &Site,
    subject: &Subject,
    scope: &str,
) -> Result<Value, OAuthError> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let mut claims = json!({"sub": subject.id});
    if scopes.contains(&"fhirUser")
        && let Some(url) = fhir_user(app, site, subject).await?
    {
        claims["fhirUser"] = json!(url);
    }
    if scopes.contains(&"profile") || scopes.contains(&"name") {
        let person = person(site, subject).await?;
        let given = person["fname"].as_str().unwrap_or("");
        let family = person["lname"].as_str().unwrap_or("");
        claims["given_name"] = json!(given);
        claims["family_name"] = json!(family);
        claims["name"] = json!(format!("{given} {family}").trim());
        if let Some(username) = &subject.username {
            claims["preferred_username"] = json!(username);
        }
    }
    if scopes.contains(&"email") {
        let person = person(site, subject).await?;
        if let Some(email) = person["email"].as_str().filter(|e| !e.is_empty()) {
            claims["email"] = json!(email);
            claims["email_verified"] = json!(false);
        }
    }
    Ok(claims)
}

async fn id_token_claims(
    app: &AppState,
    site: &Site,
    client: &Client,
    issue: &Issue<'_>,
    expires_at: i64,
) -> Result<Value, OAuthError> {
    let mut claims = identity_claims(app, site, issue.subject, issue.scope).await?;
    let iat = now();
    claims["iss"] = json!(super::issuer(app, &site.name));
    claims["aud"] = json!(client.client_id);
    claims["iat"] = json!(iat);
    claims["exp"] = json!(expires_at);
    claims["auth_time"] = json!(iat);
    if let Some(nonce) = issue.nonce {
        claims["nonce"] = json!(nonce);
    }
    Ok(claims)
}
