//! Access tokens: issuing them (for the CLI and the authorization server) and checking
//! them on every API call (the resource-server side).
//!
//! An access token is a JWT signed with the site's key, naming the site's issuer
//! (`{public}/oauth2/{site}`) and audience (`{public}/apis/{site}`). Every issued token is
//! recorded in `api_token`, so revocation and logout take effect at once for every host
//! process sharing the database: the signature check is cached, the revocation check is
//! not.
//!
//! The row also holds a digest of the claims that decide what the token may do (role,
//! subject, client, scopes, user name, ACL role, patient). Every call compares the
//! token's claims with it, so a token whose signature verifies but whose claims differ
//! from what was issued under its `jti` (a forgery with a stolen key and a real token
//! id) is refused: the signing key alone is not enough to widen a token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::scopes::ScopeSet;
use crate::crypto::jwt::{self, Alg};
use crate::db::store::{SqlValue, StoreError, Tx};
use crate::error::HttpError;
use crate::sites::Site;

/// The kind of principal a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A staff user (OpenEMR `users`).
    User,
    /// A patient.
    Patient,
    /// A backend service.
    System,
}

impl Role {
    /// The claim value.
    pub fn name(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Patient => "patient",
            Role::System => "system",
        }
    }

    /// Parses a claim value.
    pub fn from_name(name: &str) -> Option<Role> {
        match name {
            "user" => Some(Role::User),
            "patient" => Some(Role::Patient),
            "system" => Some(Role::System),
            _ => None,
        }
    }
}

/// Who a verified token speaks for.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The role.
    pub role: Role,
    /// The user, patient or system uuid.
    pub subject: String,
    /// The user name of staff users.
    pub username: String,
    /// The client the token was issued to.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: ScopeSet,
    /// Granted scopes as text.
    pub scope_text: String,
    /// The bound patient: the patient's own uuid, or a SMART launch patient.
    pub patient: Option<String>,
    /// The token id.
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
    /// The ACL role of a staff user (`admin`, `physician`, …).
    pub acl_role: Option<String>,
    /// The digest of the claims above, compared with the token's row on every call.
    pub claims_digest: String,
}

/// The digest of the claims that decide what a token may do, as stored in
/// `api_token.claims_digest`: SHA-256 over the fields, each preceded by its length.
pub fn claims_digest(
    role: Role,
    subject: &str,
    client_id: &str,
    scope: &str,
    username: Option<&str>,
    acl_role: Option<&str>,
    patient: Option<&str>,
) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    let fields = [
        Some(role.name()),
        Some(subject),
        Some(client_id),
        Some(scope),
        username,
        acl_role,
        patient,
    ];
    for field in fields {
        match field {
            // Absent and empty differ, so a claim cannot be dropped for an empty one.
            None => hash.update(b"-"),
            Some(text) => {
                hash.update((text.len() as u64).to_le_bytes());
                hash.update(text.as_bytes());
            }
        }
    }
    hex::encode(hash.finalize())
}

/// What to put in a new token.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The client.
    pub client_id: String,
    /// The principal's uuid.
    pub subject: String,
    /// The principal's role.
    pub role: Role,
    /// Staff user name.
    pub username: Option<String>,
    /// The staff user's ACL role.
    pub acl_role: Option<String>,
    /// Space-separated scopes.
    pub scope: String,
    /// The bound patient, if any.
    pub patient: Option<String>,
    /// Extra launch context stored with the token (encounter, intent, ...).
    pub context: Value,
    /// Lifetime in seconds.
    pub lifetime: i64,
}

/// A freshly issued token.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The JWT.
    pub token: String,
    /// Its id.
    pub jti: String,
    /// Expiry, seconds since the epoch.
    pub expires_at: i64,
}

/// The issuer URL of `site` under `base`.
pub fn issuer(base: &str, site: &str) -> String {
    format!("{base}/oauth2/{site}")
}

/// The audience (resource identifier) of `site` under `base`.
pub fn audience(base: &str, site: &str) -> String {
    format!("{base}/apis/{site}")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A signed access token and the `api_token` row that records it.
pub struct Signed {
    /// The token.
    pub issued: Issued,
    client_id: String,
    subject: String,
    scope: String,
    context: String,
    issued_at: i64,
    claims_digest: String,
}

/// A new access token id: 12 hex digits of the time in milliseconds, then 20 of random
/// (80 bits). Ids in time order land at the end of `api_token`'s key, on pages the
/// database has at hand, where random ids landed on a different page each time; the
/// random part keeps them unique and unguessable.
fn new_jti() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let random: [u8; 10] = rand::random();
    format!("{:012x}{}", millis & 0xffff_ffff_ffff, hex::encode(random))
}

/// Signs a token for `grant`, without recording it yet: see [`Signed::record`].
pub fn sign(site: &Site, base: &str, grant: &Grant) -> anyhow::Result<Signed> {
    let iat = now();
    let exp = iat + grant.lifetime;
    let jti = new_jti();
    let mut claims = json!({
        "iss": issuer(base, &site.name),
        "aud": audience(base, &site.name),
        "sub": grant.subject,
        "client_id": grant.client_id,
        "jti": jti,
        "iat": iat,
        "nbf": iat,
        "exp": exp,
        "scope": grant.scope,
        "scopes": grant.scope.split_whitespace().collect::<Vec<_>>(),
        "role": grant.role.name(),
    });
    if let Some(username) = &grant.username {
        claims["username"] = json!(username);
    }
    if let Some(acl_role) = &grant.acl_role {
        claims["acl_role"] = json!(acl_role);
    }
    if let Some(patient) = &grant.patient {
        claims["patient"] = json!(patient);
    }
    let token = site
        .keys()
        .signer
        .sign(&claims)
        .map_err(anyhow::Error::msg)?;
    let mut context = grant.context.clone();
    if !context.is_object() {
        context = json!({});
    }
    if let Some(patient) = &grant.patient {
        context["patient"] = json!(patient);
    }
    Ok(Signed {
        issued: Issued {
            token,
            jti,
            expires_at: exp,
        },
        client_id: grant.client_id.clone(),
        subject: grant.subject.clone(),
        scope: grant.scope.clone(),
        context: context.to_string(),
        issued_at: iat,
        claims_digest: claims_digest(
            grant.role,
            &grant.subject,
            &grant.client_id,
            &grant.scope,
            grant.username.as_deref(),
            grant.acl_role.as_deref(),
            grant.patient.as_deref(),
        ),
    })
}

impl Signed {
    /// Records the token in `api_token` inside `tx`; the resource server accepts it once
    /// `tx` commits.
    pub async fn record(&self, tx: &mut Tx, grant_id: Option<&str>) -> Result<(), StoreError> {
        tx.execute(
            "INSERT INTO api_token (jti, client_id, user_id, scope, context, expires_at, revoked, created_at, grant_id, claims_digest) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9)",
            vec![
                SqlValue::Text(self.issued.jti.clone()),
                SqlValue::Text(self.client_id.clone()),
                SqlValue::Text(self.subject.clone()),
                SqlValue::Text(self.scope.clone()),
                SqlValue::Text(self.context.clone()),
                SqlValue::Integer(self.issued.expires_at),
                SqlValue::Integer(self.issued_at),
                grant_id.map_or(SqlValue::Null, |id| SqlValue::Text(id.to_owned())),
                SqlValue::Text(self.claims_digest.clone()),
            ],
        )
        .await?;
        Ok(())
    }
}

/// Signs a token for `grant` and records it.
pub async fn issue(site: &Site, base: &str, grant: &Grant) -> anyhow::Result<Issued> {
    let signed = sign(site, base, grant)?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tx = site.db.begin(true, deadline).await?;
    signed.record(&mut tx, None).await?;
    tx.commit().await?;
    Ok(signed.issued)
}

/// The most verified tokens a site remembers before it starts over.
const CACHE_LIMIT: usize = 20_000;

/// A site's verified tokens, so the signature is checked once per token (kept in the
/// site's [`crate::sites::Caches`], which forget it when the keys change).
#[derive(Default)]
struct TokenCache {
    verified: Mutex<HashMap<String, Arc<Principal>>>,
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(header: Option<&str>) -> Result<&str, HttpError> {
    let Some(value) = header else {
        return Err(HttpError::unauthorized(None, "An access token is required"));
    };
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(HttpError::unauthorized(
            Some("invalid_request"),
            "The Authorization header must be 'Bearer <token>'",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(HttpError::unauthorized(
            Some("invalid_token"),
            "The bearer token is empty",
        ));
    }
    Ok(token)
}

/// Checks `token` for `site`: signature, issuer, audience, lifetime, then revocation.
pub async fn authenticate(
    site: &Site,
    base: &str,
    token: &str,
) -> Result<Arc<Principal>, HttpError> {
    let invalid = |why: &str| HttpError::unauthorized(Some("invalid_token"), why.to_owned());
    let tokens = site.caches.get::<TokenCache>();
    let cached = tokens.verified.lock().get(token).cloned();
    let principal = match cached {
        Some(principal) => principal,
        None => {
            let principal = Arc::new(verify(site, base, token).map_err(|why| invalid(&why))?);
            let mut cache = tokens.verified.lock();
            if cache.len() >= CACHE_LIMIT {
                cache.clear();
            }
            cache.insert(token.to_owned(), principal.clone());
            principal
        }
    };
    if principal.exp <= now() {
        return Err(invalid("The access token has expired"));
    }
    let row = match site.db.token_row(&principal.jti).await {
        Ok(Some(row)) => row,
        Ok(None) => return Err(invalid("The access token is not known to this site")),
        Err(error) => return Err(HttpError::from_store(error)),
    };
    if row.revoked {
        return Err(invalid("The access token has been revoked"));
    }
    let issued_as_claimed = match &row.claims_digest {
        Some(digest) => crate::crypto::same(digest, &principal.claims_digest),
        // Issued before digests were kept: what the row has must match.
        None => {
            row.user_id == principal.subject
                && row.client_id == principal.client_id
                && row.scope == principal.scope_text
        }
    };
    if !issued_as_claimed {
        tracing::warn!(
            site = %site.name,
            jti = %principal.jti,
            "an access token's claims differ from what was issued under its id; refused"
        );
        return Err(invalid(
            "The access token's claims differ from what was issued",
        ));
    }
    Ok(principal)
}

fn verify(site: &Site, base: &str, token: &str) -> Result<Principal, String> {
    let keys = site.keys();
    let claims = jwt::decode(token)
        .map_err(|_| "The access token is not a well-formed JWT".to_owned())?
        .verify(keys.verifiers.iter(), &[Alg::Rs256, Alg::Es256])
        .map_err(|why| format!("The access token was not signed by this site ({why})"))?;
    let text = |name: &str| claims[name].as_str().map(str::to_owned);
    if text("iss").as_deref() != Some(issuer(base, &site.name).as_str()) {
        return Err("The access token was issued for another site or address".into());
    }
    let audience = audience(base, &site.name);
    let aud_ok = match &claims["aud"] {
        Value::String(aud) => *aud == audience,
        Value::Array(auds) => auds.iter().any(|a| a.as_str() == Some(audience.as_str())),
        _ => false,
    };
    if !aud_ok {
        return Err("The access token is not meant for this site".into());
    }
    let exp = claims["exp"]
        .as_i64()
        .ok_or("The access token has no expiry")?;
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now() + 60) {
        return Err("The access token is not valid yet".into());
    }
    let role = text("role")
        .and_then(|r| Role::from_name(&r))
        .ok_or("The access token has no role")?;
    let scope_text = text("scope").unwrap_or_default();
    let subject = text("sub").ok_or("The access token has no subject")?;
    let client_id = text("client_id").unwrap_or_default();
    let username = text("username");
    let acl_role = text("acl_role");
    let patient = text("patient");
    let claims_digest = claims_digest(
        role,
        &subject,
        &client_id,
        &scope_text,
        username.as_deref(),
        acl_role.as_deref(),
        patient.as_deref(),
    );
    Ok(Principal {
        role,
        subject,
        username: username.unwrap_or_default(),
        client_id,
        scopes: ScopeSet::parse(&scope_text)?,
        scope_text,
        patient,
        jti: text("jti").ok_or("The access token has no id")?,
        exp,
        acl_role,
        claims_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_are_unique_and_in_time_order() {
        let first = new_jti();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let ids: Vec<String> = (0..1000).map(|_| new_jti()).collect();
        assert!(
            ids.iter()
                .all(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        assert!(
            ids.iter().all(|id| id > &first),
            "later ids sort after earlier ones"
        );
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert!(bearer(None).is_err());
        assert_eq!(bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("bearer abc")).unwrap(), "abc");
        assert_eq!(bearer(Some("Basic abc")).unwrap_err().status, 401);
        assert_eq!(bearer(Some("Bearer ")).unwrap_err().code, "invalid_token");
    }
}
