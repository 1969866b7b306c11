//! The rules of dynamic client registration (RFC 7591) with OpenEMR's fields: what
//! metadata a client may register, and storing it. The endpoints
//! (`crate::oauth::registration`) and the admin console's registration page both call
//! [`create`].
//!
//! `application_type: "private"` makes a confidential client (a secret, or keys for
//! `private_key_jwt`); anything else a public one. Clients asking for `user/` or `system/`
//! scopes (and public clients asking for `launch`) start disabled until an administrator
//! runs `hearth client enable`.

use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::{OAuthError, catalog, now, random_token, sha256_hex};
use crate::crypto::jwt::Verifier;
use crate::on_db;
use crate::sites::Site;

/// The scope given to clients that register none (OpenEMR's default).
pub const DEFAULT_SCOPE: &str = "openid email phone address api:oemr api:fhir api:port";

/// 400 `invalid_client_metadata`.
pub fn metadata_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(
        StatusCode::BAD_REQUEST,
        "invalid_client_metadata",
        description,
    )
}

fn redirect_error(description: impl Into<String>) -> OAuthError {
    OAuthError::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
}

/// Keys a registration may carry; anything else is refused so typos do not pass silently.
const KNOWN_KEYS: &[&str] = &[
    "application_type",
    "redirect_uris",
    "post_logout_redirect_uris",
    "client_name",
    "token_endpoint_auth_method",
    "contacts",
    "scope",
    "jwks",
    "jwks_uri",
    "grant_types",
    "response_types",
    "logo_uri",
    "client_uri",
    "policy_uri",
    "tos_uri",
    "software_id",
    "software_version",
    "initiate_login_uri",
    "subject_type",
    "dsi_type",
];

fn optional_string(body: &Map<String, Value>, key: &str) -> Result<Option<String>, OAuthError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) if text.len() <= 2000 => Ok(Some(text.clone())),
        Some(Value::String(_)) => Err(metadata_error(format!("{key} is too long"))),
        Some(_) => Err(metadata_error(format!("{key} must be a string"))),
    }
}

fn string_list(body: &Map<String, Value>, key: &str) -> Result<Vec<String>, OAuthError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= 50 => items
            .iter()
            .map(|item| match item {
                Value::String(text) if !text.is_empty() && text.len() <= 2000 => Ok(text.clone()),
                _ => Err(metadata_error(format!(
                    "{key} must be an array of non-empty strings"
                ))),
            })
            .collect(),
        Some(_) => Err(metadata_error(format!("{key} must be an array of strings"))),
    }
}

/// Why `uri` may not be a redirect URI, if it may not. Allowed (RFC 8252, RFC 9700 §2.1):
/// `https://host/…`; `http://` only to the loopback interface (`127.0.0.1`, `[::1]`,
/// `localhost`, any port) for native apps; and private-use schemes of native apps, which
/// must contain a dot (`com.example.app:/callback`). Never a fragment, user information,
/// whitespace, or a scheme that runs or reads something in the browser (`javascript:`,
/// `data:`, `file:`, `vbscript:`, …).
pub fn redirect_uri_problem(uri: &str) -> Option<String> {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Some(format!("{uri:?} is not an absolute URI"));
    };
    if uri.contains('#') {
        return Some(format!("{uri:?} has a fragment"));
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("{uri:?} contains whitespace"));
    }
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Some(format!("{uri:?} is not an absolute URI"));
    }
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "https" | "http" => {
            let Some(after) = rest.strip_prefix("//") else {
                return Some(format!("{uri:?} has no host"));
            };
            let authority = after.split(['/', '?']).next().unwrap_or("");
            if authority.contains('@') {
                return Some(format!("{uri:?} carries user information"));
            }
            let host = if let Some(v6) = authority.strip_prefix('[') {
                v6.split(']')
                    .next()
                    .map(|h| format!("[{h}]"))
                    .unwrap_or_default()
            } else {
                authority
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .to_ascii_lowercase()
            };
            if host.is_empty() {
                return Some(format!("{uri:?} has no host"));
            }
            if scheme == "http" && !matches!(host.as_str(), "127.0.0.1" | "[::1]" | "localhost") {
                return Some(format!(
                    "{uri:?} uses http: to a host other than the loopback interface (use https:, or http://127.0.0.1, http://[::1] or http://localhost for native apps)"
                ));
            }
            None
        }
        "javascript" | "data" | "file" | "vbscript" | "blob" | "about" | "filesystem" => Some(
            format!("{uri:?} uses the scheme {scheme}:, which is never allowed"),
        ),
        _ if !scheme.contains('.') => Some(format!(
            "{uri:?}: a native app's private-use scheme must be a reversed domain name containing a dot (com.example.app:/callback)"
        )),
        _ if rest.is_empty() => Some(format!("{uri:?} is not an absolute URI")),
        _ => None,
    }
}

/// A client [`create`] stored.
pub struct Registered {
    /// The registration answer: the stored metadata, `client_id`, `client_id_issued_at`,
    /// `client_secret` (confidential clients with a secret), `registration_access_token`,
    /// and `registration_path` (the last segment of its registration URI).
    pub answer: Value,
    /// The client's id.
    pub client_id: String,
}

/// Checks client metadata (RFC 7591 with OpenEMR's fields, scopes against the site's
/// `catalog`) and stores the client. A client
/// an administrator registers (`hearth client register`) is enabled and vetted at once;
/// one that registers itself is enabled only when it asks for nothing privileged, and is
/// never vetted.
pub async fn create(
    site: &Site,
    body: &Map<String, Value>,
    by_administrator: bool,
    catalog: catalog::Catalog<'_>,
) -> Result<Registered, OAuthError> {
    if let Some(unknown) = body.keys().find(|k| !KNOWN_KEYS.contains(&k.as_str())) {
        return Err(metadata_error(format!("Unknown client metadata {unknown}")));
    }

    let application_type =
        optional_string(body, "application_type")?.unwrap_or_else(|| "public".to_owned());
    let confidential = match application_type.as_str() {
        "private" => true,
        "public" | "web" | "native" => false,
        other => {
            return Err(metadata_error(format!(
                "Unsupported application_type value {other:?} (private or public)"
            )));
        }
    };
    let redirect_uris = string_list(body, "redirect_uris")?;
    if !body.contains_key("redirect_uris") || redirect_uris.is_empty() {
        return Err(redirect_error(
            "redirect_uris is required (a non-empty array)",
        ));
    }
    if let Some(problem) = redirect_uris.iter().find_map(|u| redirect_uri_problem(u)) {
        return Err(redirect_error(format!("redirect_uris: {problem}")));
    }
    let post_logout = string_list(body, "post_logout_redirect_uris")?;
    if let Some(problem) = post_logout.iter().find_map(|u| redirect_uri_problem(u)) {
        return Err(redirect_error(format!(
            "post_logout_redirect_uris: {problem}"
        )));
    }
    let contacts = string_list(body, "contacts")?;
    let client_name = optional_string(body, "client_name")?.unwrap_or_default();
    let scope = optional_string(body, "scope")?.unwrap_or_else(|| DEFAULT_SCOPE.to_owned());
    let scope = scope.split_whitespace().collect::<Vec<_>>().join(" ");
    if scope.is_empty() {
        return Err(OAuthError::scope("scope is empty"));
    }
    let refused = catalog.refused(&scope);
    if !refused.is_empty() {
        return Err(OAuthError::scope(format!(
            "Not in this server's scope catalogue: {}",
            refused.join(" ")
        )));
    }
    let privileged = scope
        .split_whitespace()
        .any(|s| s.starts_with("user/") || s.starts_with("system/"));
    let system = scope.split_whitespace().any(|s| s.starts_with("system/"));
    if privileged && !confidential {
        return Err(metadata_error(
            "system and user scopes are only allowed for confidential clients (application_type private)",
        ));
    }

    let jwks_uri = optional_string(body, "jwks_uri")?;
    let jwks = match body.get("jwks") {
        None | Some(Value::Null) => None,
        Some(Value::Object(set)) => {
            let keys = set
                .get("keys")
                .and_then(Value::as_array)
                .filter(|keys| !keys.is_empty() && keys.len() <= 20)
                .ok_or_else(|| {
                    metadata_error("jwks must be {\"keys\": [...]} with 1 to 20 keys")
                })?;
            for key in keys {
                let verifier = Verifier::from_jwk(key).map_err(|why| {
                    metadata_error(format!("jwks holds a key we cannot use: {why}"))
                })?;
                if verifier.kid.is_none() {
                    return Err(metadata_error("every key in jwks needs a kid"));
                }
                if key.get("d").is_some() {
                    return Err(metadata_error("jwks must hold public keys only"));
                }
            }
            Some(Value::Object(set.clone()))
        }
        Some(_) => return Err(metadata_error("jwks must be a JSON object")),
    };
    if jwks.is_some() && jwks_uri.is_some() {
        return Err(metadata_error("Give jwks or jwks_uri, not both"));
    }
    if let Some(uri) = &jwks_uri
        && !uri.starts_with("https://")
        && !uri.starts_with("http://")
    {
        return Err(metadata_error("jwks_uri must be an http(s) URL"));
    }
    let has_keys = jwks.is_some() || jwks_uri.is_some();
    let auth_method = match optional_string(body, "token_endpoint_auth_method")? {
        None if !confidential => "none".to_owned(),
        None if system && has_keys => "private_key_jwt".to_owned(),
        None => "client_secret_basic".to_owned(),
        Some(method) => method,
    };
    match (confidential, auth_method.as_str()) {
        (true, "client_secret_basic" | "client_secret_post" | "private_key_jwt") => {}
        (false, "none") => {}
        (true, other) | (false, other) => {
            return Err(metadata_error(format!(
                "Unsupported token_endpoint_auth_method value {other:?} for a {} client",
                if confidential {
                    "confidential"
                } else {
                    "public"
                }
            )));
        }
    }
    if auth_method == "private_key_jwt" && !has_keys {
        return Err(metadata_error("private_key_jwt needs jwks or jwks_uri"));
    }
    if system && !has_keys {
        return Err(metadata_error(
            "jwks is invalid: system scopes need jwks or jwks_uri (private_key_jwt)",
        ));
    }
    let grant_types = string_list(body, "grant_types")?;
    let supported = [
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "password",
    ];
    if let Some(bad) = grant_types
        .iter()
        .find(|g| !supported.contains(&g.as_str()))
    {
        return Err(metadata_error(format!(
            "Unsupported grant_types value {bad:?}"
        )));
    }
    let response_types = string_list(body, "response_types")?;
    if let Some(bad) = response_types.iter().find(|r| *r != "code") {
        return Err(metadata_error(format!(
            "Unsupported response_types value {bad:?} (code only)"
        )));
    }
    for key in [
        "logo_uri",
        "client_uri",
        "policy_uri",
        "tos_uri",
        "software_id",
        "software_version",
        "initiate_login_uri",
    ] {
        optional_string(body, key)?;
    }
    if let Some(subject_type) = optional_string(body, "subject_type")?
        && subject_type != "public"
    {
        return Err(metadata_error(
            "Unsupported subject_type value (public only)",
        ));
    }
    if let Some(dsi) = optional_string(body, "dsi_type")?
        && !["none", "evidence", "predictive"].contains(&dsi.as_str())
    {
        return Err(metadata_error("Unsupported dsi_type value"));
    }

    let enabled = by_administrator
        || !(privileged || (!confidential && scope.split_whitespace().any(|s| s == "launch")));
    let client_id = random_token(32);
    let secret = (confidential && auth_method != "private_key_jwt").then(|| random_token(64));
    let registration_token = random_token(32);
    let registration_path = random_token(16);
    let issued_at = now();
    let client_role = if confidential { "user" } else { "patient" };

    let mut metadata = Map::new();
    for (key, value) in body {
        metadata.insert(key.clone(), value.clone());
    }
    metadata.insert(
        "application_type".into(),
        json!(if confidential {
            "private"
        } else {
            application_type.as_str()
        }),
    );
    metadata.insert("client_name".into(), json!(client_name));
    metadata.insert("redirect_uris".into(), json!(redirect_uris));
    metadata.insert("post_logout_redirect_uris".into(), json!(post_logout));
    metadata.insert("contacts".into(), json!(contacts));
    metadata.insert("scope".into(), json!(scope));
    metadata.insert("token_endpoint_auth_method".into(), json!(auth_method));
    metadata.insert("client_role".into(), json!(client_role));
    if grant_types.is_empty() {
        metadata.insert("grant_types".into(), json!(["authorization_code"]));
    }
    if response_types.is_empty() {
        metadata.insert("response_types".into(), json!(["code"]));
    }
    let metadata = Value::Object(metadata);

    on_db!(&site.db, |pool| {
        sqlx::query(
            "INSERT INTO oauth_clients (client_id, client_secret_hash, registration_token_hash, registration_path, client_name, application_type, client_role, token_endpoint_auth_method, redirect_uris, post_logout_redirect_uris, scope, jwks, jwks_uri, metadata, enabled, created_at, vetted) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&client_id)
        .bind(secret.as_deref().map(sha256_hex))
        .bind(sha256_hex(&registration_token))
        .bind(&registration_path)
        .bind(&client_name)
        .bind(if confidential { "private" } else { "public" })
        .bind(client_role)
        .bind(&auth_method)
        .bind(json!(redirect_uris).to_string())
        .bind(json!(post_logout).to_string())
        .bind(&scope)
        .bind(jwks.as_ref().map(Value::to_string))
        .bind(&jwks_uri)
        .bind(metadata.to_string())
        .bind(i64::from(enabled))
        .bind(issued_at)
        .bind(i64::from(by_administrator))
        .execute(pool)
        .await?;
    });
    if !enabled {
        tracing::info!(
            "site {}: client {client_id} ({client_name}) registered disabled; enable it with `hearth client enable --site {} {client_id}`",
            site.name,
            site.name
        );
    }

    let mut answer = metadata;
    answer["client_id"] = json!(client_id);
    answer["client_id_issued_at"] = json!(issued_at);
    if let Some(secret) = secret {
        answer["client_secret"] = json!(secret);
        answer["client_secret_expires_at"] = json!(0);
    }
    answer["registration_access_token"] = json!(registration_token);
    answer["registration_path"] = json!(registration_path);
    Ok(Registered { answer, client_id })
}

#[cfg(test)]
mod tests {
    use super::redirect_uri_problem;

    #[test]
    fn redirect_uris_are_https_loopback_http_or_private_use_schemes() {
        for good in [
            "https://app.example/cb",
            "https://app.example:8443/cb?x=1",
            "http://127.0.0.1:8080/cb?x=1",
            "http://[::1]:5000/cb",
            "http://localhost/cb",
            "com.example.app:/callback",
        ] {
            assert_eq!(redirect_uri_problem(good), None, "{good}");
        }
        for bad in [
            "/relative",
            "https://app.example/cb#frag",
            "https:///nohost",
            "not a uri",
            "javascript:alert(1)//",
            "JavaScript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "vbscript:msgbox",
            "http://app.example/cb",
            "http://127.0.0.1.evil.example/cb",
            "https://user@app.example/cb",
            "myapp:/cb",
            "com.example.app:",
        ] {
            assert!(redirect_uri_problem(bad).is_some(), "{bad}");
        }
    }
}
