//! The registrar: stored clients, and how a request to the token, introspection and
//! revocation endpoints proves which client sent it (`client_secret_basic`,
//! `client_secret_post`, `private_key_jwt`, or `none` for public clients).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use serde_json::Value;
use sqlx::Row;

use super::{OAuthError, now, param, same, settings, sha256_hex};
use crate::crypto::jwt::{self, Alg, Verifier};
use crate::db::store::{SqlValue, StoreError, Tx};
use crate::on_db;
use crate::sites::Site;

/// The assertion type of `private_key_jwt` (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Algorithms accepted on client assertions (SMART backend services).
pub const ASSERTION_ALGS: &[Alg] = &[Alg::Rs384, Alg::Es384];

/// The longest a client assertion may live, seconds.
pub const ASSERTION_MAX_LIFETIME: i64 = 300;

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    /// The id.
    pub client_id: String,
    /// SHA-256 of the secret (confidential clients with a secret).
    pub secret_hash: Option<String>,
    /// `private` (confidential) or `public`.
    pub application_type: String,
    /// `user` (confidential) or `patient` (public), as OpenEMR's `client_role`.
    pub client_role: String,
    /// How the client authenticates at the token endpoint.
    pub auth_method: String,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Registered post-logout redirect URIs.
    pub post_logout_redirect_uris: Vec<String>,
    /// Registered scopes (space-separated).
    pub scope: String,
    /// An inline JWKS.
    pub jwks: Option<Value>,
    /// A JWKS URL.
    pub jwks_uri: Option<String>,
    /// The client's name.
    pub client_name: String,
    /// The metadata echoed at registration.
    pub metadata: Value,
    /// Whether it may be used (an administrator enabled it, or it registered as a public
    /// patient app, which is enabled at once).
    pub enabled: bool,
    /// Whether an administrator has looked at it (`hearth client enable`): only such
    /// clients get errors of `/authorize` as redirects (RFC 9700 section 4.11).
    pub vetted: bool,
    /// When it registered.
    pub created_at: i64,
}

impl Client {
    /// True for confidential clients.
    pub fn confidential(&self) -> bool {
        self.application_type == "private"
    }
}

fn strings(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_default()
}

const COLUMNS: &str = "client_id, client_secret_hash, application_type, client_role, token_endpoint_auth_method, redirect_uris, post_logout_redirect_uris, scope, jwks, jwks_uri, client_name, metadata, enabled, created_at, vetted";

/// Builds a [`Client`] from a row of either database (expanded inside `on_db!`).
macro_rules! client_from_row {
    ($row:expr) => {{
        let row = $row;
        let jwks: Option<String> = row.try_get("jwks")?;
        let metadata: String = row.try_get("metadata")?;
        let redirect: String = row.try_get("redirect_uris")?;
        let logout: String = row.try_get("post_logout_redirect_uris")?;
        Client {
            client_id: row.try_get("client_id")?,
            secret_hash: row.try_get("client_secret_hash")?,
            application_type: row.try_get("application_type")?,
            client_role: row.try_get("client_role")?,
            auth_method: row.try_get("token_endpoint_auth_method")?,
            redirect_uris: strings(&redirect),
            post_logout_redirect_uris: strings(&logout),
            scope: row.try_get("scope")?,
            jwks: jwks.and_then(|j| serde_json::from_str(&j).ok()),
            jwks_uri: row.try_get("jwks_uri")?,
            client_name: row.try_get("client_name")?,
            metadata: serde_json::from_str(&metadata).unwrap_or(Value::Null),
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            created_at: row.try_get("created_at")?,
            vetted: row.try_get::<i64, _>("vetted")? != 0,
        }
    }};
}

/// The client `client_id` of `site`, enabled or not. Read on every authenticated
/// request to the token endpoint, so it takes the fast path.
pub async fn find(site: &Site, client_id: &str) -> Result<Option<Client>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM oauth_clients WHERE client_id = $1");
    let rows = site
        .db
        .read(&sql, vec![SqlValue::Text(client_id.to_owned())])
        .await?;
    rows.first().map(|row| client_from_values(row)).transpose()
}

/// Builds a [`Client`] from the values of [`COLUMNS`], in order.
fn client_from_values(row: &[SqlValue]) -> Result<Client, StoreError> {
    let bad = |column: &str| StoreError::Failed(format!("oauth_clients.{column} is malformed"));
    let text = |i: usize, column: &str| -> Result<String, StoreError> {
        row.get(i)
            .and_then(SqlValue::text)
            .map(str::to_owned)
            .ok_or_else(|| bad(column))
    };
    let optional = |i: usize| row.get(i).and_then(SqlValue::text).map(str::to_owned);
    let integer = |i: usize, column: &str| {
        row.get(i)
            .and_then(SqlValue::integer)
            .ok_or_else(|| bad(column))
    };
    Ok(Client {
        client_id: text(0, "client_id")?,
        secret_hash: optional(1),
        application_type: text(2, "application_type")?,
        client_role: text(3, "client_role")?,
        auth_method: text(4, "token_endpoint_auth_method")?,
        redirect_uris: strings(&text(5, "redirect_uris")?),
        post_logout_redirect_uris: strings(&text(6, "post_logout_redirect_uris")?),
        scope: text(7, "scope")?,
        jwks: optional(8).and_then(|j| serde_json::from_str(&j).ok()),
        jwks_uri: optional(9),
        client_name: text(10, "client_name")?,
        metadata: serde_json::from_str(&text(11, "metadata")?).unwrap_or(Value::Null),
        enabled: integer(12, "enabled")? != 0,
        created_at: integer(13, "created_at")?,
        vetted: integer(14, "vetted")? != 0,
    })
}

/// The client whose registration URI ends in `path`.
pub async fn find_by_path(
    site: &Site,
    path: &str,
) -> Result<Option<(Client, String)>, sqlx::Error> {
    let sql = format!(
        "SELECT {COLUMNS}, registration_token_hash FROM oauth_clients WHERE registration_path = $1"
    );
    Ok(on_db!(&site.db, |pool| {
        match sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(path)
            .fetch_optional(pool)
            .await?
        {
            Some(row) => Some((
                client_from_row!(&row),
                row.try_get("registration_token_hash")?,
            )),
            None => None,
        }
    }))
}

/// Every client of `site`, oldest first.
pub async fn list(site: &Site) -> Result<Vec<Client>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM oauth_clients ORDER BY created_at, client_id");
    Ok(on_db!(&site.db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| -> Result<Client, sqlx::Error> { Ok(client_from_row!(row)) })
            .collect::<Result<Vec<_>, _>>()?
    }))
}

/// Enables or disables a client (an administrator's decision, so the client counts as
/// vetted from then on); false when there is no such client.
pub async fn set_enabled(site: &Site, client_id: &str, enabled: bool) -> Result<bool, sqlx::Error> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query("UPDATE oauth_clients SET enabled = $1, vetted = 1 WHERE client_id = $2")
            .bind(i64::from(enabled))
            .bind(client_id)
            .execute(pool)
            .await?
            .rows_affected()
            > 0
    }))
}

/// Gives a confidential client that authenticates with a secret a new one and answers it
/// (shown once: only its hash is kept). The old secret stops working at once. `None` when
/// there is no such client or it has no secret (a public client, or `private_key_jwt`).
pub async fn rotate_secret(site: &Site, client_id: &str) -> Result<Option<String>, sqlx::Error> {
    let secret = super::random_token(64);
    let changed = on_db!(&site.db, |pool| {
        sqlx::query("UPDATE oauth_clients SET client_secret_hash = $1 WHERE client_id = $2 AND application_type = 'private' AND client_secret_hash IS NOT NULL")
            .bind(sha256_hex(&secret))
            .bind(client_id)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok((changed > 0).then_some(secret))
}

/// Replaces the scopes registered for a client (checked by the caller against the site's
/// catalogue); false when there is no such client. Grants made before keep their scopes.
pub async fn set_scope(site: &Site, client_id: &str, scope: &str) -> Result<bool, sqlx::Error> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query("UPDATE oauth_clients SET scope = $1 WHERE client_id = $2")
            .bind(scope)
            .bind(client_id)
            .execute(pool)
            .await?
            .rows_affected()
            > 0
    }))
}

/// How the client proved itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the secret.
    SecretBasic,
    /// The secret in the form.
    SecretPost,
    /// A signed JWT assertion.
    PrivateKeyJwt,
    /// A public client naming itself.
    None,
}

/// Authenticates the client of a token-endpoint-style request. `token_url` is the site's
/// token URL, `{issuer}/token`: client assertions must name it or the issuer as their
/// audience. Every failure is `invalid_client` and says why.
pub async fn authenticate(
    site: &Site,
    token_url: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(Client, AuthMethod), OAuthError> {
    let (client, method, assertion) = authenticate_deferred(site, token_url, headers, form).await?;
    if let Some(assertion) = assertion {
        assertion.record(site).await?;
    }
    Ok((client, method))
}

/// A verified client assertion whose `jti` is not recorded yet.
#[derive(Debug, Clone)]
pub struct AssertionId {
    /// The client that signed it.
    pub client_id: String,
    /// Its `jti`.
    pub jti: String,
    /// Its `exp`, after which the `jti` is forgotten.
    pub exp: i64,
}

impl AssertionId {
    /// The refusal when the `jti` was used before.
    pub fn replayed() -> OAuthError {
        OAuthError::client("Client assertion refused: this jti was used before")
    }

    /// Records the `jti` inside `tx` (the transaction that records what the request
    /// issues). False when the client used this `jti` before: the primary key, not a
    /// read, decides, so two requests racing with one assertion cannot both pass.
    pub async fn record_in(&self, site: &Site, tx: &mut Tx) -> Result<bool, StoreError> {
        site.caches.get::<Assertions>().sweep(tx).await?;
        let inserted = tx
            .execute(
                "INSERT INTO oauth_jti (client_id, jti, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                vec![
                    SqlValue::Text(self.client_id.clone()),
                    SqlValue::Text(self.jti.clone()),
                    SqlValue::Integer(self.exp),
                ],
            )
            .await?;
        Ok(inserted == 1)
    }

    /// Records the `jti` in a transaction of its own; refused when it was used before.
    pub async fn record(&self, site: &Site) -> Result<(), OAuthError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tx = site.db.begin(true, deadline).await?;
        if !self.record_in(site, &mut tx).await? {
            tx.rollback().await?;
            return Err(Self::replayed());
        }
        tx.commit().await?;
        Ok(())
    }
}

/// [`authenticate`], except that a client assertion's `jti` is handed back instead of
/// recorded, for the token endpoint to record in the transaction that records the tokens
/// it issues: one write per `client_credentials` request instead of two. The caller
/// records it either way ([`AssertionId::record_in`] with the tokens, or
/// [`AssertionId::record`] when the request fails), so a verified assertion is spent.
pub async fn authenticate_deferred(
    site: &Site,
    token_url: &str,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<(Client, AuthMethod, Option<AssertionId>), OAuthError> {
    let basic = basic_credentials(headers)?;
    let assertion = param(form, "client_assertion");
    let form_secret = param(form, "client_secret");
    let presented = [basic.is_some(), assertion.is_some(), form_secret.is_some()]
        .iter()
        .filter(|b| **b)
        .count();
    if presented > 1 {
        return Err(OAuthError::request(
            "Use exactly one client authentication method",
        ));
    }
    if let Some(assertion) = assertion {
        if param(form, "client_assertion_type") != Some(JWT_BEARER) {
            return Err(OAuthError::client(format!(
                "client_assertion_type must be {JWT_BEARER}"
            )));
        }
        let (client, id) =
            verify_assertion(site, token_url, assertion, param(form, "client_id")).await?;
        return Ok((client, AuthMethod::PrivateKeyJwt, Some(id)));
    }
    let (client_id, secret, method) = match basic {
        Some((id, secret)) => {
            if param(form, "client_id").is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::client(
                    "client_id differs from the Basic credentials",
                ));
            }
            (id, Some(secret), AuthMethod::SecretBasic)
        }
        None => {
            let id = param(form, "client_id")
                .ok_or_else(|| OAuthError::client("The client is not identified (client_id)"))?;
            match form_secret {
                Some(secret) => (
                    id.to_owned(),
                    Some(secret.to_owned()),
                    AuthMethod::SecretPost,
                ),
                None => (id.to_owned(), None, AuthMethod::None),
            }
        }
    };
    let client = enabled_client(site, &client_id).await?;
    match (&client.secret_hash, secret) {
        (Some(hash), Some(secret)) => {
            if !same(hash, &sha256_hex(&secret)) {
                return Err(OAuthError::client("Client authentication failed"));
            }
        }
        (None, Some(_)) => {
            return Err(OAuthError::client(
                "This client has no secret; it authenticates another way",
            ));
        }
        (_, None) if client.confidential() => {
            return Err(OAuthError::client(
                "A confidential client must authenticate (client_secret or client_assertion)",
            ));
        }
        (_, None) => {}
    }
    Ok((client, method, None))
}

/// The enabled client `client_id`, not authenticated: only for what a site in OpenEMR
/// compatibility accepts without a secret (see `token::token`).
pub(crate) async fn enabled_client(site: &Site, client_id: &str) -> Result<Client, OAuthError> {
    let client = find(site, client_id)
        .await?
        .ok_or_else(|| OAuthError::client("Client authentication failed"))?;
    if !client.enabled {
        return Err(OAuthError::client(
            "The client is not enabled yet; an administrator must enable it",
        ));
    }
    Ok(client)
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| OAuthError::client("Malformed Authorization header"))?;
    let Some((scheme, rest)) = text.split_once(' ') else {
        return Err(OAuthError::client("Malformed Authorization header"));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::client(
            "Clients authenticate with HTTP Basic here",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| OAuthError::client("Malformed Basic credentials"))?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(|| OAuthError::client("Malformed Basic credentials"))?;
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok(Some((unescape(id), unescape(secret))))
}

/// Checks a client assertion: RS384 or ES384 signature by a key in the registered JWKS
/// (chosen by `kid`), `iss` = `sub` = the client, `aud` naming this authorization server,
/// `exp` at most five minutes ahead, and a `jti`, which the caller records.
async fn verify_assertion(
    site: &Site,
    token_url: &str,
    assertion: &str,
    form_client_id: Option<&str>,
) -> Result<(Client, AssertionId), OAuthError> {
    let fail = |why: &str| OAuthError::client(format!("Client assertion refused: {why}"));
    let unverified = jwt::decode(assertion).map_err(|why| fail(&why))?;
    let client_id = unverified.claims["sub"]
        .as_str()
        .ok_or_else(|| fail("sub is missing"))?
        .to_owned();
    if form_client_id.is_some_and(|id| id != client_id) {
        return Err(fail("client_id differs from the assertion's sub"));
    }
    let client = enabled_client(site, &client_id).await?;
    let kid = unverified
        .header
        .kid
        .clone()
        .ok_or_else(|| fail("the header has no kid"))?;
    if let Some(jku) = &unverified.header.jku
        && client.jwks_uri.as_deref() != Some(jku.as_str())
    {
        return Err(fail("jku is not the registered JWKS URL"));
    }
    let refetch = settings::seconds(site, JWKS_URI_REFETCH).await?;
    let keys = site
        .caches
        .get::<Assertions>()
        .keys(&client, &kid, Duration::from_secs(refetch as u64))
        .await
        .map_err(|why| fail(&why))?;
    let matching: Vec<&Verifier> = keys
        .iter()
        .filter(|k| k.kid.as_deref() == Some(kid.as_str()))
        .collect();
    if matching.is_empty() {
        return Err(fail("no registered key has this kid"));
    }
    let claims = unverified
        .verify(matching, ASSERTION_ALGS)
        .map_err(|why| fail(&why))?;
    if claims["iss"].as_str() != Some(client_id.as_str()) {
        return Err(fail("iss must be the client_id"));
    }
    if !names_this_server(&claims["aud"], token_url) {
        return Err(fail("aud must be the token URL or the issuer"));
    }
    let now = now();
    let exp = claims["exp"]
        .as_i64()
        .ok_or_else(|| fail("exp is missing"))?;
    if exp <= now {
        return Err(fail("the assertion has expired"));
    }
    if exp > now + ASSERTION_MAX_LIFETIME + 5 {
        return Err(fail("exp is more than five minutes ahead"));
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now + 60) {
        return Err(fail("the assertion is not valid yet"));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 255)
        .ok_or_else(|| fail("jti is missing"))?;
    let id = AssertionId {
        client_id,
        jti: jti.to_owned(),
        exp,
    };
    Ok((client, id))
}

/// True when an assertion's `aud` (a string or an array) names this authorization server:
/// its token URL, as SMART Backend Services and OpenID Connect Core §9 say, or its issuer,
/// as RFC 7523 §3 allows and certified relying parties such as openid-client send.
fn names_this_server(aud: &Value, token_url: &str) -> bool {
    let issuer = token_url.strip_suffix("/token");
    let ours = |aud: &str| aud == token_url || Some(aud) == issuer;
    match aud {
        Value::String(aud) => ours(aud),
        Value::Array(auds) => auds.iter().filter_map(Value::as_str).any(ours),
        _ => false,
    }
}

/// The largest JWKS document fetched from a client's `jwks_uri`.
const MAX_JWKS_BYTES: usize = 64 * 1024;

/// Fetches a client's JWKS from its registered URL (only for enabled clients, with a short
/// timeout, no redirects and a size cap).
async fn fetch_jwks(uri: &str) -> Result<Value, String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| format!("cannot fetch the jwks_uri: {e}"))?;
    let response = client
        .get(uri)
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("fetching the jwks_uri failed: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("the jwks_uri answered {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
    {
        return Err("the jwks_uri document is too large".into());
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("reading the jwks_uri failed: {e}"))?;
    if bytes.len() > MAX_JWKS_BYTES {
        return Err("the jwks_uri document is too large".into());
    }
    serde_json::from_slice(&bytes).map_err(|_| "the jwks_uri document is not JSON".into())
}

/// How long a JWKS fetched from a `jwks_uri` is used before it is fetched again.
pub const JWKS_URI_TTL: Duration = Duration::from_secs(300);

/// The setting naming the soonest (seconds, default 1) a `jwks_uri` is fetched again when
/// an assertion names a `kid` the kept set does not hold (the client rotated its keys);
/// sooner, the kept set answers, so assertions with made-up `kid`s cannot make the server
/// fetch on every request.
pub const JWKS_URI_REFETCH: &str = "oauth.jwks_refetch_interval";

/// Clients remembered per site at most (their parsed keys).
const KEY_CACHE_LIMIT: usize = 10_000;

/// A site's per-process state of client assertions (kept in the site's
/// [`crate::sites::Caches`]): the clients' parsed public keys, and
/// when expired `jti`s were last forgotten.
#[derive(Default)]
pub struct Assertions {
    keys: parking_lot::Mutex<HashMap<String, CachedKeys>>,
    swept: std::sync::atomic::AtomicI64,
}

struct CachedKeys {
    /// The inline JWKS they were parsed from, or the URL they were fetched from.
    source: KeySource,
    fetched: Instant,
    verifiers: Arc<Vec<Verifier>>,
}

enum KeySource {
    Inline(Value),
    Uri(String),
}

impl KeySource {
    /// True when `client` still registers the keys this came from (an inline JWKS wins
    /// over a URL, as when the keys are read).
    fn matches(&self, client: &Client) -> bool {
        match (self, &client.jwks, &client.jwks_uri) {
            (KeySource::Inline(cached), Some(jwks), _) => cached == jwks,
            (KeySource::Uri(cached), None, Some(uri)) => cached == uri,
            _ => false,
        }
    }
}

/// How often, at most, one process forgets expired `jti`s (seconds). An expired
/// assertion is refused by its `exp` before its `jti` is looked at, so the rows only take
/// space until then.
const SWEEP_EVERY: i64 = 30;

impl Assertions {
    /// Deletes expired `jti`s inside `tx`, at most every [`SWEEP_EVERY`] seconds.
    async fn sweep(&self, tx: &mut Tx) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        let now = now();
        let last = self.swept.load(Ordering::Relaxed);
        if now - last < SWEEP_EVERY
            || self
                .swept
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        tx.execute(
            "DELETE FROM oauth_jti WHERE expires_at < $1",
            vec![SqlValue::Integer(now)],
        )
        .await?;
        Ok(())
    }

    /// The client's registered public keys: its inline JWKS, or the one at its
    /// `jwks_uri` (fetched again after [`JWKS_URI_TTL`], or when `kid` is not in it and the
    /// set is older than `refetch`). Keys
    /// are parsed once per JWKS; an edited registration is seen at once, since the
    /// client's row is read on every request and compared with what the keys came from.
    async fn keys(
        &self,
        client: &Client,
        kid: &str,
        refetch: Duration,
    ) -> Result<Arc<Vec<Verifier>>, String> {
        if let Some(cached) = self.keys.lock().get(&client.client_id)
            && cached.source.matches(client)
        {
            let fresh = match &cached.source {
                KeySource::Inline(_) => true,
                KeySource::Uri(_) => {
                    let age = cached.fetched.elapsed();
                    age < JWKS_URI_TTL
                        && (age < refetch
                            || cached
                                .verifiers
                                .iter()
                                .any(|k| k.kid.as_deref() == Some(kid)))
                }
            };
            if fresh {
                return Ok(cached.verifiers.clone());
            }
        }
        let (source, jwks) = match (&client.jwks, &client.jwks_uri) {
            (Some(jwks), _) => (KeySource::Inline(jwks.clone()), jwks.clone()),
            (None, Some(uri)) => (KeySource::Uri(uri.clone()), fetch_jwks(uri).await?),
            (None, None) => return Err("the client has no registered keys".into()),
        };
        let verifiers = Arc::new(
            jwks["keys"]
                .as_array()
                .ok_or("the registered JWKS has no keys")?
                .iter()
                .filter_map(|k| Verifier::from_jwk(k).ok())
                .collect::<Vec<_>>(),
        );
        let mut cache = self.keys.lock();
        if cache.len() >= KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(
            client.client_id.clone(),
            CachedKeys {
                source,
                fetched: Instant::now(),
                verifiers: verifiers.clone(),
            },
        );
        Ok(verifiers)
    }
}
