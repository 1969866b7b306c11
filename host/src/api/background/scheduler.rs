//! The scheduler: the services a site runs in the background, each a row of its
//! `background_services` table (OpenEMR's shape), run when due by whichever host process
//! leases it first.
//!
//! A run leases its service with one statement, OpenEMR's lease: `UPDATE … SET
//! lock_expires_at = now + lease … WHERE name = $1 AND (lock_expires_at IS NULL OR
//! lock_expires_at < now) AND next_run <= now`. SQLite runs one writer at a time and
//! PostgreSQL re-checks the condition on the row a concurrent update left, so of two
//! processes asking at once one gets the row and the other matches nothing: every due run
//! happens once across replicas. The lease ends with the run; a run may not outlast it
//! (`scheduler.lease_seconds`, the run is stopped), so a process that dies mid-run holds
//! its service at most that long before another may run it.

use std::sync::{Arc, LazyLock, Weak};
use std::time::Duration;

use sqlx::Row;

use super::services::{self, Definition};
use crate::api::ApiState;
use crate::on_db;
use crate::sites::Site;

/// How long runs are kept in `background_service_runs`, seconds (a week).
const RUNS_KEPT_SECONDS: i64 = 7 * 24 * 3600;

/// This process's name in `lease_owner` and `background_service_runs.runner`.
static ME: LazyLock<String> = LazyLock::new(|| {
    let id = crate::db::comb_uuid();
    format!("{}-{}", std::process::id(), &id[id.len() - 12..])
});

/// The seconds since the epoch.
pub(super) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// How a service's run (or the attempt at one) ended, as OpenEMR names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    /// It ran and succeeded.
    Executed,
    /// It is inactive, or runs only by hand and was not forced.
    Skipped,
    /// Another run (in this or another process) holds its lease.
    AlreadyRunning,
    /// Its interval has not passed since the last run.
    NotDue,
    /// It ran and failed (or could not be leased for a database error).
    Error,
}

impl Status {
    /// The wire name.
    pub(super) fn name(self) -> &'static str {
        match self {
            Status::Executed => "executed",
            Status::Skipped => "skipped",
            Status::AlreadyRunning => "already_running",
            Status::NotDue => "not_due",
            Status::Error => "error",
        }
    }
}

/// A row of `background_services`.
#[derive(Debug, Clone)]
pub(super) struct ServiceRow {
    pub(super) name: String,
    pub(super) title: String,
    pub(super) active: bool,
    pub(super) running: bool,
    pub(super) next_run: i64,
    pub(super) execute_interval: i64,
    pub(super) function: String,
    pub(super) sort_order: i64,
    pub(super) lock_expires_at: Option<i64>,
    pub(super) last_run_at: Option<i64>,
    pub(super) last_status: Option<String>,
    pub(super) last_message: Option<String>,
    pub(super) run_count: i64,
}

const COLUMNS: &str = "name, title, active, running, next_run, execute_interval, function, sort_order, \
     lock_expires_at, last_run_at, last_status, last_message, run_count";

/// A `background_services` row read with [`COLUMNS`] (a macro: the row types of the two
/// databases differ).
macro_rules! service_row {
    () => {
        |row| -> Result<ServiceRow, sqlx::Error> {
            Ok(ServiceRow {
                name: row.try_get("name")?,
                title: row.try_get("title")?,
                active: row.try_get::<i64, _>("active")? != 0,
                running: row.try_get::<i64, _>("running")? == 1,
                next_run: row.try_get("next_run")?,
                execute_interval: row.try_get("execute_interval")?,
                function: row.try_get("function")?,
                sort_order: row.try_get("sort_order")?,
                lock_expires_at: row.try_get("lock_expires_at")?,
                last_run_at: row.try_get("last_run_at")?,
                last_status: row.try_get("last_status")?,
                last_message: row.try_get("last_message")?,
                run_count: row.try_get("run_count")?,
            })
        }
    };
}

/// Whether the site's rows were registered by this process (reset with the caches).
#[derive(Default)]
struct Registered(tokio::sync::OnceCell<()>);

/// Makes sure the site has a row for every service the host registers: a new service
/// is active and first due one interval from now; an existing row keeps what the site
/// set (active, interval, next run) and takes the host's title and function.
pub(super) async fn register(site: &Site) -> Result<(), sqlx::Error> {
    let registered = site.caches.get::<Registered>();
    registered
        .0
        .get_or_try_init(|| async {
            let now = now();
            for service in services::ALL {
                on_db!(&site.db, |pool| {
                    sqlx::query(
                        "INSERT INTO background_services (name, title, active, running, next_run, execute_interval, function, sort_order) \
                         VALUES ($1, $2, 1, 0, $3, $4, $5, $6) \
                         ON CONFLICT (name) DO UPDATE SET title = excluded.title, function = excluded.function",
                    )
                    .bind(service.name)
                    .bind(service.title)
                    .bind(now + service.interval_minutes * 60)
                    .bind(service.interval_minutes)
                    .bind(service.function)
                    .bind(service.sort_order)
                    .execute(pool)
                    .await?
                    .rows_affected()
                });
            }
            Ok::<(), sqlx::Error>(())
        })
        .await?;
    Ok(())
}

/// Every service row of the site, in run order (`sort_order`, then name).
pub(super) async fn list(site: &Site) -> Result<Vec<ServiceRow>, sqlx::Error> {
    register(site).await?;
    let sql = format!("SELECT {COLUMNS} FROM background_services ORDER BY sort_order, name");
    on_db!(&site.db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(pool)
            .await?
            .iter()
            .map(service_row!())
            .collect::<Result<Vec<_>, _>>()
    })
}

/// One service row.
pub(super) async fn get(site: &Site, name: &str) -> Result<Option<ServiceRow>, sqlx::Error> {
    register(site).await?;
    let sql = format!("SELECT {COLUMNS} FROM background_services WHERE name = $1");
    on_db!(&site.db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(pool)
            .await?
            .as_ref()
            .map(service_row!())
            .transpose()
    })
}

/// The lease of one run, seconds (`scheduler.lease_seconds`).
async fn lease_seconds(site: &Site) -> i64 {
    crate::registrar::settings::seconds(site, "scheduler.lease_seconds")
        .await
        .unwrap_or(600)
}

/// Runs `service` unless it is inactive, manual and not forced, leased by another run,
/// or (unforced) not yet due; answers how that went.
pub(super) async fn run_one(
    api: &ApiState,
    site: &Arc<Site>,
    service: &ServiceRow,
    force: bool,
) -> Status {
    if !service.active || (service.execute_interval == 0 && !force) {
        return Status::Skipped;
    }
    let lease = lease_seconds(site).await;
    let started = now();
    match acquire(site, service, force, started, lease).await {
        Ok(true) => {}
        Ok(false) => {
            return match lease_is_live(site, &service.name, started).await {
                Ok(true) => Status::AlreadyRunning,
                Ok(false) if force => Status::AlreadyRunning,
                Ok(false) => Status::NotDue,
                Err(error) => {
                    tracing::warn!(site = %site.name, service = %service.name, "reading a background service's lease failed: {error}");
                    Status::Error
                }
            };
        }
        Err(error) => {
            tracing::warn!(site = %site.name, service = %service.name, "leasing a background service failed: {error}");
            return Status::Error;
        }
    }
    let outcome = match services::find(&service.function) {
        Some(definition) => execute(api, site, definition, lease).await,
        None => Err(format!(
            "the function {:?} is no background service of this host",
            service.function
        )),
    };
    let (status, message) = match outcome {
        Ok(message) => (Status::Executed, message),
        Err(message) => {
            tracing::error!(site = %site.name, service = %service.name, "background service failed: {message}");
            (Status::Error, message)
        }
    };
    if let Err(error) = release(site, &service.name, started, status, &message).await {
        // The lease then ends by itself at `lock_expires_at`.
        tracing::warn!(site = %site.name, service = %service.name, "ending a background service's run failed: {error}");
    }
    status
}

/// Runs `definition`'s job for at most the lease.
async fn execute(
    api: &ApiState,
    site: &Arc<Site>,
    definition: &Definition,
    lease: i64,
) -> Result<String, String> {
    let limit = Duration::from_secs(lease.max(1) as u64);
    match tokio::time::timeout(limit, (definition.job)(api, site)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "stopped after {lease} seconds (scheduler.lease_seconds)"
        )),
    }
}

/// Takes the service's lease and moves its next run one interval on: one statement, so
/// of two processes asking at once only one gets it.
async fn acquire(
    site: &Site,
    service: &ServiceRow,
    force: bool,
    now: i64,
    lease: i64,
) -> Result<bool, sqlx::Error> {
    let sql = if force {
        "UPDATE background_services SET running = 1, lock_expires_at = $1, lease_owner = $2, next_run = $3 \
         WHERE name = $4 AND (lock_expires_at IS NULL OR lock_expires_at < $5)"
    } else {
        "UPDATE background_services SET running = 1, lock_expires_at = $1, lease_owner = $2, next_run = $3 \
         WHERE name = $4 AND (lock_expires_at IS NULL OR lock_expires_at < $5) AND next_run <= $5 \
         AND active = 1 AND execute_interval > 0"
    };
    let changed = on_db!(&site.db, |pool| {
        sqlx::query(sql)
            .bind(now + lease)
            .bind(ME.as_str())
            .bind(now + service.execute_interval * 60)
            .bind(&service.name)
            .bind(now)
            .execute(pool)
            .await?
            .rows_affected()
    });
    Ok(changed == 1)
}

async fn lease_is_live(site: &Site, name: &str, now: i64) -> Result<bool, sqlx::Error> {
    Ok(on_db!(&site.db, |pool| {
        sqlx::query(
            "SELECT 1 AS live FROM background_services WHERE name = $1 AND lock_expires_at >= $2",
        )
        .bind(name)
        .bind(now)
        .fetch_optional(pool)
        .await?
        .is_some()
    }))
}

/// Ends the run: the lease goes, the outcome is recorded on the row and in the runs.
async fn release(
    site: &Site,
    name: &str,
    started: i64,
    status: Status,
    message: &str,
) -> Result<(), sqlx::Error> {
    let finished = now();
    on_db!(&site.db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query(
            "UPDATE background_services SET running = 0, lock_expires_at = NULL, lease_owner = NULL, \
             last_run_at = $1, last_status = $2, last_message = $3, run_count = run_count + 1 \
             WHERE name = $4 AND lease_owner = $5",
        )
        .bind(started)
        .bind(status.name())
        .bind(message)
        .bind(name)
        .bind(ME.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO background_service_runs (name, runner, started_at, finished_at, status, message) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(name)
        .bind(ME.as_str())
        .bind(started)
        .bind(finished)
        .bind(status.name())
        .bind(message)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM background_service_runs WHERE started_at < $1")
            .bind(finished - RUNS_KEPT_SECONDS)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// Runs every service of the site that is due (active, with an interval, its next run
/// passed and no live lease) and answers what became of each.
pub(super) async fn run_due(api: &ApiState, site: &Arc<Site>) -> Vec<(String, Status)> {
    let due: Result<Vec<ServiceRow>, sqlx::Error> = async {
        register(site).await?;
        let sql = format!(
            "SELECT {COLUMNS} FROM background_services \
             WHERE active = 1 AND execute_interval > 0 AND next_run <= $1 \
             AND (lock_expires_at IS NULL OR lock_expires_at < $1) ORDER BY sort_order, name"
        );
        on_db!(&site.db, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now())
                .fetch_all(pool)
                .await?
                .iter()
                .map(service_row!())
                .collect::<Result<Vec<_>, _>>()
        })
    }
    .await;
    let due = match due {
        Ok(due) => due,
        Err(error) => {
            tracing::debug!(site = %site.name, "looking for due background services failed: {error}");
            return Vec::new();
        }
    };
    let mut results = Vec::new();
    for service in due {
        let status = run_one(api, site, &service, false).await;
        results.push((service.name, status));
    }
    results
}

/// Starts this process's scheduler (unless `scheduler_tick_ms` is 0), which lives as long
/// as the `/apis` state.
pub(crate) fn start(api: &Arc<ApiState>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let tick = api.app.config.scheduler_tick_ms;
    if tick == 0 {
        return;
    }
    runtime.spawn(worker(Arc::downgrade(api), Duration::from_millis(tick)));
}

async fn worker(api: Weak<ApiState>, tick: Duration) {
    loop {
        tokio::time::sleep(tick).await;
        let Some(api) = api.upgrade() else {
            return;
        };
        for site in api.app.sites.opened() {
            for (name, status) in run_due(&api, &site).await {
                tracing::debug!(site = %site.name, service = %name, status = status.name(), "background service");
            }
        }
    }
}

/// `hearth demo seed`'s part: the site's services with a week of runs behind them, as a
/// site that has been serving a week has (the runs end now; `seed` varies what each run
/// removed). Answers the runs written.
pub(crate) async fn seed_demo(site: &Site, seed: u64) -> Result<u64, sqlx::Error> {
    register(site).await?;
    let end = now();
    let week = RUNS_KEPT_SECONDS - 3600;
    // A small generator of its own (the seed's numbers, no dependency).
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move |below: i64| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 33) % below.max(1) as u64) as i64
    };
    let mut written = 0;
    on_db!(&site.db, |pool| {
        let mut tx = pool.begin().await?;
        sqlx::query("DELETE FROM background_service_runs WHERE runner = 'demo'")
            .execute(&mut *tx)
            .await?;
        for service in services::ALL {
            let every = service.interval_minutes * 60;
            let mut at = end - week;
            let mut last = None;
            let mut count = 0i64;
            while at + every <= end {
                at += every;
                let message = match service.name {
                    "oauth_token_cleanup" => format!(
                        "removed {} access tokens, {} refresh tokens, {} authorization codes, {} client-assertion ids, {} sign-in sessions",
                        next(40),
                        next(6),
                        next(12),
                        next(20),
                        next(5)
                    ),
                    "bulk_file_expiry" => format!("removed {} expired exports", next(100) / 95),
                    _ => "kept every row (audit.retention_days is 0)".to_owned(),
                };
                let took = next(3);
                sqlx::query(
                    "INSERT INTO background_service_runs (name, runner, started_at, finished_at, status, message) \
                     VALUES ($1, 'demo', $2, $3, 'executed', $4)",
                )
                .bind(service.name)
                .bind(at)
                .bind(at + took)
                .bind(&message)
                .execute(&mut *tx)
                .await?;
                last = Some((at, message));
                count += 1;
                written += 1;
            }
            if let Some((at, message)) = last {
                sqlx::query(
                    "UPDATE background_services SET last_run_at = $1, last_status = 'executed', last_message = $2, \
                     run_count = run_count + $3, next_run = $4 WHERE name = $5",
                )
                .bind(at)
                .bind(&message)
                .bind(count)
                .bind(at + every)
                .bind(service.name)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    });
    Ok(written)
}
