//! The per-site settings of the `/apis` routes, kept in the site's `site_settings` table
//! beside the authorization server's and set with `hearth client setting`:
//!
//! - `api.compatibility`: `hearth` (real status codes, strict `_sort` and paging) or
//!   `openemr` (OpenEMR's own status codes and leniency, for clients that depend on
//!   them; see docs/compatibility.md);
//! - `api.list_cap`: the most rows a list answers when the client asks for every row;
//! - `api.cors_origins`: which browser origins may call `/apis` — `any` (`*`: every route
//!   takes bearer tokens only, never cookies) or `registered` (the origins of the enabled
//!   clients' redirect URIs).
//!
//! Every request needs them, so each host process keeps them for [`TTL`] before reading
//! them again: a change made by `hearth client setting` (another process) or by another
//! replica takes effect within that time, and no request waits on the database for them.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::db::store::SqlValue;
use crate::sites::Site;

/// How long a process answers with the settings it read.
pub const TTL: Duration = Duration::from_secs(1);

/// How a site answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compatibility {
    /// Hearth's answers: real status codes, strict `_sort` and paging parameters.
    Hearth,
    /// OpenEMR's answers where Hearth deliberately differs and a client may depend on
    /// OpenEMR's (statuses, leniency), except where that would open a hole.
    OpenEmr,
}

impl Compatibility {
    /// The setting's value.
    pub fn name(self) -> &'static str {
        match self {
            Compatibility::Hearth => "hearth",
            Compatibility::OpenEmr => "openemr",
        }
    }
}

/// Which origins may call `/apis` from a browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cors {
    /// Every origin (`Access-Control-Allow-Origin: *`, never with credentials).
    Any,
    /// The origins of the enabled clients' redirect URIs (lower case, no default port).
    Registered(HashSet<String>),
}

impl Cors {
    /// The `Access-Control-Allow-Origin` value for a request from `origin`, if allowed.
    pub fn allow(&self, origin: &str) -> Option<String> {
        match self {
            Cors::Any => Some("*".to_owned()),
            Cors::Registered(origins) => {
                let origin = normalize_origin(origin)?;
                origins.contains(&origin).then_some(origin)
            }
        }
    }
}

/// A site's `/apis` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiSettings {
    /// `api.compatibility`.
    pub compatibility: Compatibility,
    /// `api.list_cap`.
    pub list_cap: u32,
    /// `api.cors_origins`.
    pub cors: Cors,
}

impl Default for ApiSettings {
    fn default() -> Self {
        ApiSettings {
            compatibility: Compatibility::Hearth,
            list_cap: hearth_sdk::request::DEFAULT_LIST_CAP,
            cors: Cors::Any,
        }
    }
}

/// A site's settings as last read, and when (kept in the site's [`crate::sites::Caches`]).
#[derive(Default)]
struct Cache {
    last: Mutex<Option<(Instant, Arc<ApiSettings>)>>,
}

/// `site`'s settings, read again when older than [`TTL`]. When they cannot be read the
/// last ones read stay (or the defaults, on a first read), and the error is logged: the
/// request itself then meets the database's state on its own.
pub async fn get(site: &Site) -> Arc<ApiSettings> {
    let cache = site.caches.get::<Cache>();
    let cached = cache.last.lock().clone();
    if let Some((read_at, settings)) = &cached
        && read_at.elapsed() < TTL
    {
        return settings.clone();
    }
    let settings = match read(site).await {
        Ok(settings) => Arc::new(settings),
        Err(error) => {
            tracing::warn!(site = %site.name, "reading the API settings failed: {error}");
            cached.map(|(_, settings)| settings).unwrap_or_default()
        }
    };
    *cache.last.lock() = Some((Instant::now(), settings.clone()));
    settings
}

async fn read(site: &Site) -> anyhow::Result<ApiSettings> {
    let rows = site
        .db
        .read(
            "SELECT name, value FROM site_settings WHERE name IN ('api.compatibility', 'api.list_cap', 'api.cors_origins')",
            vec![],
        )
        .await?;
    let mut settings = ApiSettings::default();
    for row in &rows {
        let (Some(name), Some(value)) = (
            row.first().and_then(SqlValue::text),
            row.get(1).and_then(SqlValue::text),
        ) else {
            continue;
        };
        match name {
            "api.compatibility" if value == "openemr" => {
                settings.compatibility = Compatibility::OpenEmr;
            }
            "api.list_cap" => {
                if let Some(cap) = value.parse::<u32>().ok().filter(|cap| *cap > 0) {
                    settings.list_cap = cap;
                }
            }
            "api.cors_origins" if value == "registered" => {
                settings.cors = Cors::Registered(registered_origins(site).await?);
            }
            _ => {}
        }
    }
    Ok(settings)
}

/// The origins of the enabled clients' redirect URIs.
async fn registered_origins(site: &Site) -> anyhow::Result<HashSet<String>> {
    let rows = site
        .db
        .read(
            "SELECT redirect_uris FROM oauth_clients WHERE enabled = 1",
            vec![],
        )
        .await?;
    let mut origins = HashSet::new();
    for row in &rows {
        let Some(text) = row.first().and_then(SqlValue::text) else {
            continue;
        };
        let uris: Vec<String> = serde_json::from_str(text).unwrap_or_default();
        origins.extend(uris.iter().filter_map(|uri| normalize_origin(uri)));
    }
    Ok(origins)
}

/// The origin (`scheme://host[:port]`) of a URL or of an `Origin` header, lower case and
/// without the scheme's default port; `None` for anything but http(s).
pub fn normalize_origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?.to_ascii_lowercase();
    if authority.is_empty() {
        return None;
    }
    let default_port = if scheme == "https" { ":443" } else { ":80" };
    let authority = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{authority}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_in_their_normal_form() {
        assert_eq!(
            normalize_origin("https://App.Example.org:443/callback?x=1").as_deref(),
            Some("https://app.example.org")
        );
        assert_eq!(
            normalize_origin("http://127.0.0.1:8080/cb").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(normalize_origin("myapp://callback"), None);
        assert_eq!(normalize_origin("null"), None);
        let registered = Cors::Registered(["https://app.example.org".to_owned()].into());
        assert_eq!(
            registered.allow("https://APP.example.org").as_deref(),
            Some("https://app.example.org")
        );
        assert_eq!(registered.allow("https://evil.example.org"), None);
        assert_eq!(Cors::Any.allow("https://anything").as_deref(), Some("*"));
    }
}
