//! A site's export settings and its limits: jobs at once, jobs per client.

use axum::http::StatusCode;
use sqlx::Row;

use super::db_error;
use crate::error::HttpError;
use crate::on_db;
use crate::sites::Site;

/// The default of `bulk.page_resources`.
pub(super) const DEFAULT_PAGE: u64 = 2500;

/// The largest `bulk.page_resources` a site may set: a page is held whole by the plugin
/// that builds it and by the host that writes it.
pub(super) const MAX_PAGE: u64 = 20_000;

/// A site's bulk export settings (`bulk.*` in `site_settings`).
#[derive(Debug, Clone, Copy)]
pub(super) struct BulkSettings {
    pub(super) file_resources: u64,
    pub(super) expiry_seconds: i64,
    pub(super) max_jobs: i64,
    pub(super) max_jobs_per_client: i64,
    pub(super) retry_after_seconds: i64,
    pub(super) lease_seconds: i64,
    /// How many types one export pages at once (each on its own task, so on its own core).
    pub(super) parallel_types: usize,
    /// The least deadline and CPU budget, in seconds, of an export's plugin calls.
    pub(super) call_seconds: u64,
    /// The most resources one plugin search page of an export holds (the page is the
    /// largest divisor of `file_resources` up to it; see [`super::export`]).
    pub(super) page_resources: u64,
}

impl Default for BulkSettings {
    fn default() -> Self {
        BulkSettings {
            file_resources: 100_000,
            expiry_seconds: 3600,
            max_jobs: 4,
            max_jobs_per_client: 2,
            retry_after_seconds: 2,
            lease_seconds: 30,
            parallel_types: 2,
            call_seconds: 120,
            page_resources: DEFAULT_PAGE,
        }
    }
}

pub(super) async fn bulk_settings(site: &Site) -> BulkSettings {
    let mut out = BulkSettings::default();
    let rows = match site
        .db
        .read(
            "SELECT name, value FROM site_settings WHERE name LIKE 'bulk.%'",
            vec![],
        )
        .await
    {
        Ok(rows) => rows,
        Err(error) => {
            tracing::warn!(site = %site.name, "reading the bulk settings failed: {error}");
            return out;
        }
    };
    for row in &rows {
        use crate::db::store::SqlValue;
        let (Some(name), Some(value)) = (
            row.first().and_then(SqlValue::text),
            row.get(1).and_then(SqlValue::text),
        ) else {
            continue;
        };
        let Some(n) = value.parse::<i64>().ok().filter(|n| *n > 0) else {
            continue;
        };
        match name {
            "bulk.file_resources" => out.file_resources = n as u64,
            "bulk.expiry_seconds" => out.expiry_seconds = n,
            "bulk.max_jobs" => out.max_jobs = n,
            "bulk.max_jobs_per_client" => out.max_jobs_per_client = n,
            "bulk.retry_after_seconds" => out.retry_after_seconds = n,
            "bulk.lease_seconds" => out.lease_seconds = n,
            "bulk.parallel_types" => out.parallel_types = n.min(64) as usize,
            "bulk.call_seconds" => out.call_seconds = n.min(3600) as u64,
            "bulk.page_resources" => out.page_resources = (n as u64).min(MAX_PAGE),
            _ => {}
        }
    }
    out
}

/// Jobs queued or running on the site, and the jobs `client_id` holds (queued, running,
/// or ended with files kept until they expire or are deleted).
async fn active_jobs(site: &Site, client_id: &str) -> Result<(i64, i64), sqlx::Error> {
    Ok(on_db!(&site.db, |pool| {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN status IN ('queued', 'running') THEN 1 ELSE 0 END), 0) AS n, \
             COALESCE(SUM(CASE WHEN client_id = $1 THEN 1 ELSE 0 END), 0) AS mine \
             FROM bulk_jobs WHERE client_id = $1 OR status IN ('queued', 'running')",
        )
        .bind(client_id)
        .fetch_one(pool)
        .await?;
        (row.try_get::<i64, _>("n")?, row.try_get::<i64, _>("mine")?)
    }))
}

/// Whether `client_id` may start another export on `site`: a 429 naming the limit when
/// the site runs its most jobs at once or the client holds its most.
pub(super) async fn check(site: &Site, client_id: &str) -> Result<(), HttpError> {
    let settings = bulk_settings(site).await;
    let (active, of_client) = active_jobs(site, client_id).await.map_err(db_error)?;
    if active >= settings.max_jobs {
        let mut error = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_exports",
            format!(
                "This site runs at most {} exports at once; try again when one has finished",
                settings.max_jobs
            ),
        );
        error.retry_after = Some(settings.retry_after_seconds as u32 * 10);
        return Err(error);
    }
    if of_client >= settings.max_jobs_per_client {
        let mut error = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_exports",
            format!(
                "A client may hold at most {} exports (queued, running, or finished with files kept); delete one or wait for it to expire",
                settings.max_jobs_per_client
            ),
        );
        error.retry_after = Some(settings.retry_after_seconds as u32 * 10);
        return Err(error);
    }
    Ok(())
}
