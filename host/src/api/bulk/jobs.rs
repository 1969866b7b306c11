//! A job's row as the status and file routes read it, its owner's check, its removal.

use std::path::Path;

use axum::http::StatusCode;
use sqlx::Row;

use super::{Call, Owner, Plan, Progress, db_error, job_dir, now};
use crate::auth::tokens::Principal;
use crate::error::HttpError;
use crate::on_db;
use crate::sites::Site;

/// A job's row as the status and file routes read it.
pub(super) struct JobRow {
    pub(super) owner: Owner,
    pub(super) request: String,
    pub(super) plan: Plan,
    pub(super) progress: Progress,
    pub(super) status: String,
    pub(super) message: Option<String>,
    pub(super) transaction_time: String,
    pub(super) expires_at: Option<i64>,
    pub(super) last_poll_ms: i64,
}

async fn load(site: &Site, id: &str) -> Result<Option<JobRow>, HttpError> {
    let row: Option<JobRow> = on_db!(&site.db, |pool| {
        let row = sqlx::query(
            "SELECT owner, request, plan, progress, status, message, transaction_time, expires_at, last_poll_ms FROM bulk_jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(db_error)?;
        match row {
            None => None,
            Some(row) => {
                let text = |name: &str| row.try_get::<String, _>(name).map_err(db_error);
                Some(JobRow {
                    owner: serde_json::from_str(&text("owner")?).map_err(db_error)?,
                    request: text("request")?,
                    plan: serde_json::from_str(&text("plan")?).map_err(db_error)?,
                    progress: serde_json::from_str(&text("progress")?).map_err(db_error)?,
                    status: text("status")?,
                    message: row.try_get("message").map_err(db_error)?,
                    transaction_time: text("transaction_time")?,
                    expires_at: row.try_get("expires_at").map_err(db_error)?,
                    last_poll_ms: row.try_get("last_poll_ms").map_err(db_error)?,
                })
            }
        }
    });
    Ok(row)
}

fn no_job() -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such export: it never existed, was cancelled or has expired",
    )
}

/// The job `id` if `principal` owns it and it has not expired (an expired one is removed).
pub(super) async fn owned(
    call: &Call<'_>,
    id: &str,
    principal: &Principal,
) -> Result<JobRow, HttpError> {
    let Some(job) = load(call.site, id).await? else {
        return Err(no_job());
    };
    if job.expires_at.is_some_and(|at| at <= now()) {
        remove(&call.app.config.data_dir, call.site, id).await;
        return Err(no_job());
    }
    if !job.owner.owns(principal) {
        return Err(HttpError::forbidden(
            "This export belongs to another client: only the token of the client that started it may read it",
        ));
    }
    Ok(job)
}

/// Removes a job's row and its files.
pub(super) async fn remove(data_dir: &Path, site: &Site, id: &str) {
    let deleted = on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM bulk_jobs WHERE id = $1")
            .bind(id)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
    });
    if let Err(error) = deleted {
        tracing::warn!(site = %site.name, job = id, "removing an export failed: {error}");
    }
    let dir = job_dir(data_dir, &site.name, id);
    if let Err(error) = tokio::fs::remove_dir_all(&dir).await
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(site = %site.name, job = id, "removing an export's files failed: {error}");
    }
}
