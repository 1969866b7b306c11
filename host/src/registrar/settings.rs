//! Per-site settings of the authorization server (`oauth.*`) and of the `/apis` routes
//! (`api.*`, read through [`crate::api::settings`]), kept in the site's `site_settings`
//! table and set with `hearth client setting`.

use anyhow::{Result, bail};

use crate::db::store::SqlValue;
use crate::on_db;
use crate::sites::Site;

/// A setting: its name, what it holds, and its default.
pub struct Known {
    /// The name in `site_settings`.
    pub name: &'static str,
    /// What it means.
    pub help: &'static str,
    /// The value when unset.
    pub default: &'static str,
    /// Accepted values (empty: a positive number).
    pub values: &'static [&'static str],
}

/// Every setting.
pub const KNOWN: &[Known] = &[
    Known {
        name: "oauth.password_grant",
        help: "which logins the password grant accepts",
        default: "off",
        values: &["off", "users", "patients", "both"],
    },
    Known {
        name: "oauth.registration_requires_token",
        help: "registration needs an initial access token (see `hearth client initial-token`)",
        default: "off",
        values: &["off", "on"],
    },
    Known {
        name: "oauth.code_lifetime",
        help: "authorization code lifetime, seconds",
        default: "60",
        values: &[],
    },
    Known {
        name: "oauth.access_token_lifetime",
        help: "access token lifetime, seconds",
        default: "3600",
        values: &[],
    },
    Known {
        name: "oauth.refresh_token_lifetime",
        help: "refresh token lifetime, seconds (default three months)",
        default: "7776000",
        values: &[],
    },
    Known {
        name: "oauth.client_credentials_lifetime",
        help: "client_credentials access token lifetime, seconds",
        default: "300",
        values: &[],
    },
    Known {
        name: "oauth.jwks_refetch_interval",
        help: "the soonest, in seconds, a client's jwks_uri is fetched again when an assertion names a kid the kept key set lacks",
        default: "1",
        values: &[],
    },
    Known {
        name: "api.compatibility",
        help: "hearth: real status codes; openemr: OpenEMR's own answers where clients may depend on them (docs/compatibility.md)",
        default: "hearth",
        values: &["hearth", "openemr"],
    },
    Known {
        name: "api.list_cap",
        help: "the most rows a list answers when the client asks for every row; past it the list asks the client to page",
        default: "2000",
        values: &[],
    },
    Known {
        name: "api.cors_origins",
        help: "browser origins that may call /apis: any, or registered (the enabled clients' redirect URI origins)",
        default: "any",
        values: &["any", "registered"],
    },
    Known {
        name: "bulk.file_resources",
        help: "Bulk Data export: the most resources one ndjson file holds before the next file starts",
        default: "100000",
        values: &[],
    },
    Known {
        name: "bulk.expiry_seconds",
        help: "Bulk Data export: how long a finished export's files stay, seconds",
        default: "3600",
        values: &[],
    },
    Known {
        name: "bulk.max_jobs",
        help: "Bulk Data export: the most exports queued or running on the site at once; more get 429",
        default: "4",
        values: &[],
    },
    Known {
        name: "bulk.max_jobs_per_client",
        help: "Bulk Data export: the most exports one client may have queued or running; more get 429",
        default: "2",
        values: &[],
    },
    Known {
        name: "bulk.retry_after_seconds",
        help: "Bulk Data export: the Retry-After of a running export's status; polls sooner get 429",
        default: "2",
        values: &[],
    },
    Known {
        name: "bulk.lease_seconds",
        help: "Bulk Data export: how long a host process holds an export without renewing it before another may resume it",
        default: "30",
        values: &[],
    },
    Known {
        name: "bulk.parallel_types",
        help: "Bulk Data export: how many resource types one export pages at once, each on a task of its own",
        default: "2",
        values: &[],
    },
    Known {
        name: "bulk.call_seconds",
        help: "Bulk Data export: the least deadline and CPU budget of an export's plugin calls, whatever the plugin's own",
        default: "120",
        values: &[],
    },
    Known {
        name: "bulk.page_resources",
        help: "Bulk Data export: the most resources one plugin search page of an export holds (at most 20000; a page that fails is asked again at half the size)",
        default: "2500",
        values: &[],
    },
    Known {
        name: "audit.retention_days",
        help: "background service audit_log_retention: API audit log rows older than this many days are deleted; 0 keeps every row",
        default: "0",
        values: &[],
    },
    Known {
        name: "scheduler.lease_seconds",
        help: "background services: how long one run may take; a process that dies mid-run holds the service this long before another may run it",
        default: "600",
        values: &[],
    },
];

/// The name under which the hash of the initial access token is kept.
pub const INITIAL_TOKEN: &str = "oauth.initial_access_token_sha256";

/// Reads a raw setting. Read on every token request, so it takes the fast path.
pub async fn raw(site: &Site, name: &str) -> Result<Option<String>> {
    let rows = site
        .db
        .read(
            "SELECT value FROM site_settings WHERE name = $1",
            vec![SqlValue::Text(name.to_owned())],
        )
        .await?;
    Ok(rows
        .first()
        .and_then(|row| row.first())
        .and_then(SqlValue::text)
        .map(str::to_owned))
}

/// Writes a raw setting (`None` removes it).
pub async fn set_raw(site: &Site, name: &str, value: Option<&str>) -> Result<()> {
    on_db!(&site.db, |pool| {
        match value {
            Some(value) => sqlx::query(
                "INSERT INTO site_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(value)
            .execute(pool)
            .await?,
            None => sqlx::query("DELETE FROM site_settings WHERE name = $1")
                .bind(name)
                .execute(pool)
                .await?,
        };
    });
    Ok(())
}

fn known(name: &str) -> Result<&'static Known> {
    match KNOWN.iter().find(|k| k.name == name) {
        Some(known) => Ok(known),
        None => bail!(
            "unknown setting '{name}' (one of: {})",
            KNOWN.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// Why `value` is not a valid value of the setting `name`, if it is not.
pub fn check(name: &str, value: &str) -> Result<()> {
    let known = known(name)?;
    if known.values.is_empty() {
        // A number setting whose default is 0 (off) takes 0 too.
        let least = if known.default == "0" { 0 } else { 1 };
        match value.parse::<i64>() {
            Ok(n) if n >= least => {}
            _ if least == 0 => bail!("{name} takes a number, 0 or more ({})", known.help),
            _ => bail!("{name} takes a positive number ({})", known.help),
        }
    } else if !known.values.contains(&value) {
        bail!("{name} takes one of: {}", known.values.join(", "));
    }
    Ok(())
}

/// Checks and stores a setting.
pub async fn set(site: &Site, name: &str, value: &str) -> Result<()> {
    check(name, value)?;
    set_raw(site, name, Some(value)).await
}

/// Makes a new initial access token for registration (answered once; only its hash is
/// kept, replacing the previous one) and requires one from then on.
pub async fn new_initial_token(site: &Site) -> Result<String> {
    let token = crate::crypto::random_token(32);
    set_raw(
        site,
        INITIAL_TOKEN,
        Some(&crate::crypto::sha256_hex(&token)),
    )
    .await?;
    set(site, "oauth.registration_requires_token", "on").await?;
    Ok(token)
}

/// Stops requiring an initial access token for registration and forgets the last one.
pub async fn clear_initial_token(site: &Site) -> Result<()> {
    set_raw(site, INITIAL_TOKEN, None).await?;
    set(site, "oauth.registration_requires_token", "off").await
}

/// A setting's value (its default when unset).
pub async fn get(site: &Site, name: &str) -> Result<String> {
    let known = known(name)?;
    Ok(raw(site, name)
        .await?
        .unwrap_or_else(|| known.default.to_owned()))
}

/// A lifetime setting in seconds.
pub async fn seconds(site: &Site, name: &str) -> Result<i64> {
    let text = get(site, name).await?;
    Ok(text.parse::<i64>().unwrap_or(60).max(1))
}
