//! The background services the host registers on every site, and their jobs.

use std::sync::Arc;

use super::scheduler::now;
use crate::api::ApiState;
use crate::on_db;
use crate::sites::Site;

/// A job: what the service does on one site; `Ok` says what it did, `Err` why it failed.
pub(super) type Job = for<'a> fn(&'a ApiState, &'a Arc<Site>) -> BoxedJob<'a>;

/// A job's future.
pub(super) type BoxedJob<'a> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<String, String>> + Send + 'a>>;

/// A service the host registers: its row's defaults and its job.
pub(super) struct Definition {
    /// `background_services.name`.
    pub(super) name: &'static str,
    /// `background_services.title`.
    pub(super) title: &'static str,
    /// `background_services.function`: which job the row runs.
    pub(super) function: &'static str,
    /// The interval a new row gets, minutes.
    pub(super) interval_minutes: i64,
    /// `background_services.sort_order`.
    pub(super) sort_order: i64,
    /// The job.
    pub(super) job: Job,
}

/// Every service the host registers.
pub(super) const ALL: &[Definition] = &[
    Definition {
        name: "oauth_token_cleanup",
        title: "Remove expired OAuth tokens, codes and sign-in sessions",
        function: "oauth_token_cleanup",
        interval_minutes: 60,
        sort_order: 10,
        job: |api, site| Box::pin(oauth_token_cleanup(api, site)),
    },
    Definition {
        name: "bulk_file_expiry",
        title: "Remove expired Bulk Data export files",
        function: "bulk_file_expiry",
        interval_minutes: 5,
        sort_order: 20,
        job: |api, site| Box::pin(bulk_file_expiry(api, site)),
    },
    Definition {
        name: "audit_log_retention",
        title: "Remove API audit log rows past the site's retention (audit.retention_days)",
        function: "audit_log_retention",
        interval_minutes: 1440,
        sort_order: 30,
        job: |api, site| Box::pin(audit_log_retention(api, site)),
    },
];

/// The service whose job a row's `function` names.
pub(super) fn find(function: &str) -> Option<&'static Definition> {
    ALL.iter().find(|d| d.function == function)
}

fn failed(error: impl std::fmt::Display) -> String {
    format!("the database refused the clean-up: {error}")
}

/// Expired access tokens, refresh tokens, authorization codes, client-assertion ids and
/// authorization-page sessions. Every one of them is refused once expired already; the
/// rows only take room.
async fn oauth_token_cleanup(_: &ApiState, site: &Arc<Site>) -> Result<String, String> {
    let now = now();
    let mut removed = Vec::new();
    for (table, what) in [
        ("api_token", "access tokens"),
        ("oauth_refresh_tokens", "refresh tokens"),
        ("oauth_codes", "authorization codes"),
        ("oauth_jti", "client-assertion ids"),
        ("oauth_sessions", "sign-in sessions"),
    ] {
        let sql = format!("DELETE FROM {table} WHERE expires_at < $1");
        let n = on_db!(&site.db, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .execute(pool)
                .await
                .map_err(failed)?
                .rows_affected()
        });
        removed.push(format!("{n} {what}"));
    }
    Ok(format!("removed {}", removed.join(", ")))
}

/// Finished exports past `bulk.expiry_seconds`: their rows and files.
async fn bulk_file_expiry(api: &ApiState, site: &Arc<Site>) -> Result<String, String> {
    let removed = crate::api::bulk::expire_files(api, site)
        .await
        .map_err(failed)?;
    Ok(format!("removed {removed} expired exports"))
}

/// Audit rows older than `audit.retention_days` (0, the default, keeps every row).
async fn audit_log_retention(_: &ApiState, site: &Arc<Site>) -> Result<String, String> {
    let days = crate::registrar::settings::get(site, "audit.retention_days")
        .await
        .map_err(failed)?
        .parse::<i64>()
        .unwrap_or(0);
    if days <= 0 {
        return Ok("kept every row (audit.retention_days is 0)".to_owned());
    }
    let cutoff = time::OffsetDateTime::from_unix_timestamp(now() - days * 86_400)
        .map_err(failed)?
        .replace_nanosecond(0)
        .map_err(failed)?
        .format(&time::format_description::well_known::Rfc3339)
        .map_err(failed)?;
    // `created_at` is RFC 3339 in UTC, so text order is time order.
    let n = on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM api_log WHERE created_at < $1")
            .bind(&cutoff)
            .execute(pool)
            .await
            .map_err(failed)?
            .rows_affected()
    });
    Ok(format!(
        "removed {n} audit rows older than {days} days (before {cutoff})"
    ))
}
