//! The worker every host process runs: it leases jobs (one statement, so two processes
//! never hold the same job) and runs them. Expired exports are removed by the background
//! service `bulk_file_expiry` ([`expire_files`]), and at once when a request names one.

use std::sync::{Arc, Weak};

use sqlx::Row;

use super::export::{Leased, Stop, export};
use super::jobs::remove;
use super::limits::bulk_settings;
use super::{ApiState, TICK, now};
use crate::db::Kind;
use crate::on_db;
use crate::sites::Site;

static WAKE: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Wakes this process's worker (a job was queued).
pub(super) fn wake() {
    WAKE.notify_waiters();
}

/// Starts this process's export worker, which lives as long as the `/apis` state.
pub(in crate::api) fn start(api: &Arc<ApiState>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    if api.app.config.bulk_jobs == 0 {
        return;
    }
    let weak = Arc::downgrade(api);
    runtime.spawn(worker(weak));
}

async fn worker(api: Weak<ApiState>) {
    let me = crate::db::comb_uuid();
    let Some(jobs) = api.upgrade().map(|api| api.app.config.bulk_jobs) else {
        return;
    };
    let slots = Arc::new(tokio::sync::Semaphore::new(jobs));
    loop {
        {
            let Some(api) = api.upgrade() else {
                return;
            };
            for site in api.app.sites.opened() {
                while let Ok(permit) = slots.clone().try_acquire_owned() {
                    match claim(&site, &me).await {
                        Ok(Some(job)) => {
                            let api = api.clone();
                            let site = site.clone();
                            let me = me.clone();
                            tokio::spawn(async move {
                                run(&api, &site, &me, job).await;
                                drop(permit);
                                wake();
                            });
                        }
                        Ok(None) => break,
                        Err(error) => {
                            tracing::debug!(site = %site.name, "leasing an export failed: {error}");
                            break;
                        }
                    }
                }
                if let Ok(n) = queued_jobs(&site).await {
                    api.app.telemetry.bulk_jobs_queued(&site.name, n);
                }
            }
        }
        let _ = tokio::time::timeout(TICK, WAKE.notified()).await;
    }
}

async fn queued_jobs(site: &Site) -> Result<i64, sqlx::Error> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query("SELECT COUNT(*) AS n FROM bulk_jobs WHERE status = 'queued'")
            .fetch_one(pool)
            .await?
            .try_get::<i64, _>("n")?
    }))
}

/// Removes the site's expired exports, rows and files, and answers how many: the
/// background service `bulk_file_expiry` (host/src/api/background) runs it.
pub(in crate::api) async fn expire_files(
    api: &ApiState,
    site: &Site,
) -> Result<usize, sqlx::Error> {
    let expired: Vec<String> = on_db!(&site.db, |pool| {
        sqlx::query("SELECT id FROM bulk_jobs WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(now())
            .fetch_all(pool)
            .await?
            .iter()
            .filter_map(|r| r.try_get("id").ok())
            .collect()
    });
    for id in &expired {
        remove(&api.app.config.data_dir, site, id).await;
    }
    Ok(expired.len())
}

/// Leases one job whose lease is free or expired: one statement, so two processes never
/// hold the same job.
async fn claim(site: &Site, me: &str) -> Result<Option<Leased>, anyhow::Error> {
    let settings = bulk_settings(site).await;
    let sql: &'static str = match site.db.kind() {
        Kind::Postgres => {
            "UPDATE bulk_jobs SET lease_owner = $1, lease_until = $2, status = 'running' \
             WHERE id = (SELECT id FROM bulk_jobs WHERE status IN ('queued', 'running') AND lease_until < $3 \
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, owner, plan, progress"
        }
        // SQLite runs one writer at a time: the statement is atomic as it is.
        Kind::Sqlite => {
            "UPDATE bulk_jobs SET lease_owner = $1, lease_until = $2, status = 'running' \
             WHERE id = (SELECT id FROM bulk_jobs WHERE status IN ('queued', 'running') AND lease_until < $3 \
             ORDER BY created_at LIMIT 1) \
             RETURNING id, owner, plan, progress"
        }
    };
    let row: Option<(String, String, String, String)> = on_db!(&site.db, |pool| {
        sqlx::query(sql)
            .bind(me)
            .bind(now() + settings.lease_seconds)
            .bind(now())
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((
                    row.try_get("id")?,
                    row.try_get("owner")?,
                    row.try_get("plan")?,
                    row.try_get("progress")?,
                ))
            })
            .transpose()?
    });
    let Some((id, owner, plan, progress)) = row else {
        return Ok(None);
    };
    Ok(Some(Leased {
        id,
        owner: serde_json::from_str(&owner)?,
        plan: serde_json::from_str(&plan)?,
        progress: serde_json::from_str(&progress)?,
    }))
}

async fn run(api: &Arc<ApiState>, site: &Arc<Site>, me: &str, mut job: Leased) {
    let telemetry = &api.app.telemetry;
    telemetry.bulk_job_started(&site.name);
    let outcome = export(api, site, me, &mut job).await;
    telemetry.bulk_job_stopped(&site.name);
    let settings = bulk_settings(site).await;
    let (status, message) = match outcome {
        Ok(()) => ("done", None),
        Err(Stop::LeaseLost) => {
            tracing::info!(site = %site.name, job = %job.id, "an export's lease was lost; another process resumes it");
            return;
        }
        Err(Stop::Failed(message)) => ("failed", Some(message)),
    };
    let progress = serde_json::to_string(&job.progress).unwrap_or_default();
    let finished = now();
    let saved = on_db!(&site.db, |pool| {
        sqlx::query(
            "UPDATE bulk_jobs SET status = $1, message = $2, progress = $3, finished_at = $4, expires_at = $5, lease_owner = NULL \
             WHERE id = $6 AND lease_owner = $7",
        )
        .bind(status)
        .bind(&message)
        .bind(&progress)
        .bind(finished)
        .bind(finished + settings.expiry_seconds)
        .bind(&job.id)
        .bind(me)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    });
    match saved {
        Ok(1) => {
            telemetry.bulk_job_finished(&site.name, status);
        }
        Ok(_) => {}
        Err(error) => {
            tracing::warn!(site = %site.name, job = %job.id, "finishing an export failed: {error}")
        }
    }
}
