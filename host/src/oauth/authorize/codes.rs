//! Authorization codes: issued when the user allows access, stored by hash, redeemed once
//! by the token endpoint.

use serde_json::{Value, json};
use sqlx::Row;

use super::session::Session;
use crate::auth::tokens::Role;
use crate::crypto::{random_token, sha256_hex};
use crate::oauth::accounts::Subject;
use crate::oauth::{OAuthError, now, settings};
use crate::on_db;
use crate::sites::Site;

/// Stores a code for what `session` asked and `subject` allowed (`scope`); answers it.
pub(super) async fn issue(
    issuer: &str,
    site: &Site,
    session: &Session,
    subject: &Subject,
    scope: &str,
) -> Result<String, OAuthError> {
    let request = &session.request;
    let mut context = json!({});
    if let Some(patient) = &session.patient {
        context["patient"] = json!(patient);
        context["need_patient_banner"] = json!(request.launch_patient.is_none());
        context["smart_style_url"] = json!(format!("{issuer}/smart-style.json"));
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
pub async fn find_code(site: &Site, code: &str) -> Result<Option<StoredCode>, OAuthError> {
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
pub async fn claim_code(site: &Site, code: &str) -> Result<bool, OAuthError> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query("UPDATE oauth_codes SET used = 1 WHERE code_hash = $1 AND used = 0")
            .bind(sha256_hex(code))
            .execute(pool)
            .await?
            .rows_affected()
            == 1
    }))
}
