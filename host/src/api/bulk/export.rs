//! Running a leased job: each type's pages, written to ndjson files; the progress and
//! the lease renewed at every finished file and at most every second between, the search
//! cursor kept at every finished file.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::limits::bulk_settings;
use super::page::{Page, next_query};
use super::{
    ApiState, Call, FileDone, Incomplete, MAX_PAGE, Owner, Plan, Progress, job_dir, now,
    outcome_text, search_text, settings,
};
use crate::error::Family;
use crate::on_db;
use crate::sites::Site;

/// A leased job.
pub(super) struct Leased {
    pub(super) id: String,
    pub(super) owner: Owner,
    pub(super) plan: Plan,
    pub(super) progress: Progress,
}

/// Why a job stopped before its end.
pub(super) enum Stop {
    /// The lease is gone (expired and taken, or the job was cancelled): drop the work.
    LeaseLost,
    /// The job cannot go on.
    Failed(String),
}

/// Saves the progress and renews the lease; `LeaseLost` when this process no longer holds
/// the job.
async fn renew(
    site: &Site,
    me: &str,
    id: &str,
    lease_seconds: i64,
    progress: &Progress,
) -> Result<(), Stop> {
    let text = serde_json::to_string(progress).map_err(|e| Stop::Failed(e.to_string()))?;
    let updated = on_db!(&site.db, |pool| {
        sqlx::query(
            "UPDATE bulk_jobs SET progress = $1, lease_until = $2 WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
        )
        .bind(&text)
        .bind(now() + lease_seconds)
        .bind(id)
        .bind(me)
        .execute(pool)
        .await
        .map(|r| r.rows_affected())
    });
    match updated {
        Ok(1) => Ok(()),
        Ok(_) => Err(Stop::LeaseLost),
        // A database that fails now may be back before the lease ends; another process
        // (or this one) resumes the job then.
        Err(error) => {
            tracing::warn!(site = %site.name, job = id, "saving an export's progress failed: {error}");
            Err(Stop::LeaseLost)
        }
    }
}

/// The page size: the largest divisor of the file size up to [`MAX_PAGE`], so every file
/// ends at a page boundary (where a resumed job starts again).
fn page_size(file_resources: u64) -> u64 {
    (1..=MAX_PAGE.min(file_resources))
        .rev()
        .find(|n| file_resources.is_multiple_of(*n))
        .unwrap_or(1)
}

/// Runs (or resumes) a leased job to its end.
pub(super) async fn export(
    api: &Arc<ApiState>,
    site: &Arc<Site>,
    me: &str,
    job: &mut Leased,
) -> Result<(), Stop> {
    let settings = bulk_settings(site).await;
    let lease = settings.lease_seconds;
    let Some(principal) = job.owner.principal() else {
        return Err(Stop::Failed(
            "the export's owner could not be read".to_owned(),
        ));
    };
    let dir = job_dir(&api.app.config.data_dir, &site.name, &job.id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Stop::Failed(format!("the export folder could not be made: {e}")))?;
    let api_settings = settings::get(site).await;
    let headers = HeaderMap::new();
    let uri: axum::http::Uri = axum::http::Uri::from_static("/");
    let request_id = format!("bulk-{}", job.id);
    let progress = &mut job.progress;
    progress.totals.resize(job.plan.types.len(), None);
    // What an unfinished file held is written again.
    progress.current = 0;
    let page = page_size(settings.file_resources);
    // The lease is renewed (and the counts saved) a quarter of the lease after the last
    // renewal at the latest, and at least once a second; a finished file always saves.
    let renew_every = Duration::from_millis(
        u64::try_from(lease.saturating_mul(250))
            .unwrap_or(0)
            .min(1000),
    );
    let mut renewed = Instant::now();
    while progress.type_index < job.plan.types.len() {
        let type_plan = job.plan.types[progress.type_index].clone();
        let t = type_plan.resource_type.clone();
        let path = format!("/{t}");
        let call = Call {
            api,
            app: &api.app,
            site,
            settings: &api_settings,
            family: Family::Fhir,
            method: &Method::GET,
            path: &path,
            headers: &headers,
            uri: &uri,
            request_id: &request_id,
        };
        let table = api.app.registry.table(&site.name);
        // One search of this type (a count or a page), asked again while it fails; a retry
        // renews the lease with what `saved` holds (a page being retried is not written yet).
        let ask = async |query: &Vec<(String, String)>, saved: &Progress| {
            with_retries(
                || async {
                    answer(search_text(&call, &table, &principal, &t, query.clone()).await)
                },
                || renew(site, me, &job.id, lease, saved),
                FIRST_WAIT,
                &site.name,
                &job.id,
                &t,
            )
            .await
        };
        if progress.totals[progress.type_index].is_none() {
            let mut query = type_plan.query.clone();
            query.push(("_summary".to_owned(), "count".to_owned()));
            let (status, body, tries) = ask(&query, progress).await?;
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            if status != 200 {
                progress.errors.push(format!(
                    "{t} could not be exported: its count failed {}: {}",
                    attempts(tries),
                    outcome_text(&body)
                ));
                progress.incomplete.push(Incomplete {
                    resource_type: t.clone(),
                    count: 0,
                    total: None,
                });
                next_type(progress);
                renew(site, me, &job.id, lease, progress).await?;
                continue;
            }
            progress.totals[progress.type_index] = body["total"].as_u64().or(Some(0));
        }
        let mut query = progress.next.clone().unwrap_or_else(|| {
            let mut q = type_plan.query.clone();
            q.push(("_count".to_owned(), page.to_string()));
            q.push(("_total".to_owned(), "none".to_owned()));
            q
        });
        'files: loop {
            let name = format!("{t}-{}.ndjson", progress.file_no);
            let file_path = dir.join(&name);
            let file = std::fs::File::create(&file_path)
                .map_err(|e| Stop::Failed(format!("{name} could not be written: {e}")))?;
            let mut writer = std::io::BufWriter::with_capacity(256 * 1024, file);
            progress.current = 0;
            loop {
                let (status, body, tries) = ask(&query, progress).await?;
                if status != 200 {
                    let outcome: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    let count = progress.done_of(&t) + progress.current;
                    let total = progress.totals[progress.type_index];
                    let of = total.map(|n| format!(" of {n}")).unwrap_or_default();
                    tracing::error!(site = %site.name, job = %job.id, resource_type = %t,
                        "an export gives up on a type after {count} resources, a page failed {}: {}",
                        attempts(tries), outcome_text(&outcome));
                    progress.errors.push(format!(
                        "{t} stopped after {count}{of} resources: a page failed {}: {}",
                        attempts(tries),
                        outcome_text(&outcome)
                    ));
                    progress.incomplete.push(Incomplete {
                        resource_type: t.clone(),
                        count,
                        total,
                    });
                    finish_file(&mut writer, progress, &t, &name, &file_path)?;
                    break 'files;
                }
                let (written, next) = write_page(&mut writer, &body)
                    .map_err(|e| Stop::Failed(format!("{name} could not be written: {e}")))?;
                progress.current += written;
                api.app
                    .telemetry
                    .bulk_resources_exported(&site.name, &t, written);
                let Some(next) = next else {
                    finish_file(&mut writer, progress, &t, &name, &file_path)?;
                    break 'files;
                };
                query = next;
                if progress.current >= settings.file_resources {
                    finish_file(&mut writer, progress, &t, &name, &file_path)?;
                    progress.next = Some(query.clone());
                    progress.file_no += 1;
                    renew(site, me, &job.id, lease, progress).await?;
                    renewed = Instant::now();
                    continue 'files;
                }
                // Between files only the counts change: they (and the lease) are saved
                // at most every `renew_every`, not after every page.
                if renewed.elapsed() >= renew_every {
                    renew(site, me, &job.id, lease, progress).await?;
                    renewed = Instant::now();
                }
            }
        }
        next_type(progress);
        renew(site, me, &job.id, lease, progress).await?;
    }
    if !progress.errors.is_empty() {
        write_errors(&dir, &progress.errors)
            .map_err(|e| Stop::Failed(format!("the error file could not be written: {e}")))?;
    }
    Ok(())
}

/// How many times a failed page (or count) is asked again before its type is given up.
const RETRIES: u32 = 3;

/// The wait before the first retry; it doubles before each next one (0.5 s, 1 s, 2 s).
const FIRST_WAIT: Duration = Duration::from_millis(500);

/// Whether a failed search may answer when asked again: the plugin timed out, was busy
/// or failed (5xx, 429). A refusal (4xx) would only be refused again.
fn retryable(status: u16) -> bool {
    status >= 500 || status == 429
}

/// How many times a search was asked, from its retries: `once`, `4 times`.
fn attempts(retries: u32) -> String {
    match retries {
        0 => "once".to_owned(),
        n => format!("{} times", n + 1),
    }
}

/// A search's answer as a status and a body; a call that failed (a deadline, a trap, a
/// busy plugin) as its 5xx and an OperationOutcome.
fn answer(found: Result<(u16, Vec<u8>), crate::error::HttpError>) -> (u16, Vec<u8>) {
    match found {
        Ok(found) => found,
        Err(error) => (
            error.status.as_u16(),
            json!({"issue": [{"diagnostics": error.message}]})
                .to_string()
                .into_bytes(),
        ),
    }
}

/// Asks `attempt` until it answers 200 or a refusal, or [`RETRIES`] retries failed too;
/// between tries it waits (`first_wait`, doubling) and calls `keep` (which renews the
/// job's lease, so retries never let it run out). Answers the last status and body and
/// how many retries were made.
async fn with_retries<A, AF, K, KF>(
    mut attempt: A,
    mut keep: K,
    first_wait: Duration,
    site: &str,
    job: &str,
    resource_type: &str,
) -> Result<(u16, Vec<u8>, u32), Stop>
where
    A: FnMut() -> AF,
    AF: Future<Output = (u16, Vec<u8>)>,
    K: FnMut() -> KF,
    KF: Future<Output = Result<(), Stop>>,
{
    let mut wait = first_wait;
    let mut retries = 0;
    loop {
        let (status, body) = attempt().await;
        if status == 200 || !retryable(status) || retries == RETRIES {
            return Ok((status, body, retries));
        }
        retries += 1;
        tracing::warn!(
            site,
            job,
            resource_type,
            "an export page failed with {status}; retry {retries} of {RETRIES} in {} ms",
            wait.as_millis()
        );
        keep().await?;
        tokio::time::sleep(wait).await;
        wait *= 2;
    }
}

/// A search query's pairs.
type Query = Vec<(String, String)>;

/// Writes a search page's matched resources to `out`, one per line, as the plugin wrote
/// them; answers how many and the next page's query. A Bundle the page reader cannot read
/// is read as a value and written again.
fn write_page(out: &mut impl std::io::Write, body: &[u8]) -> std::io::Result<(u64, Option<Query>)> {
    let mut written = 0u64;
    if let Some(page) = Page::read(body) {
        for range in page.resources {
            out.write_all(&body[range])?;
            out.write_all(b"\n")?;
            written += 1;
        }
        return Ok((written, page.next));
    }
    let bundle: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    for entry in bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let mode = entry["search"]["mode"].as_str().unwrap_or("match");
        if mode != "match" || !entry["resource"].is_object() {
            continue;
        }
        serde_json::to_writer(&mut *out, &entry["resource"])?;
        out.write_all(b"\n")?;
        written += 1;
    }
    Ok((written, next_query(&bundle)))
}

fn next_type(progress: &mut Progress) {
    progress.type_index += 1;
    progress.next = None;
    progress.file_no = 1;
    progress.current = 0;
}

/// Flushes the file being written and records it (an empty one is removed instead).
fn finish_file(
    writer: &mut std::io::BufWriter<std::fs::File>,
    progress: &mut Progress,
    resource_type: &str,
    name: &str,
    path: &Path,
) -> Result<(), Stop> {
    use std::io::Write;
    writer
        .flush()
        .and_then(|()| writer.get_ref().sync_data())
        .map_err(|e| Stop::Failed(format!("{name} could not be written: {e}")))?;
    if progress.current > 0 {
        progress.files.push(FileDone {
            resource_type: resource_type.to_owned(),
            name: name.to_owned(),
            count: progress.current,
        });
    } else {
        let _ = std::fs::remove_file(path);
    }
    progress.current = 0;
    Ok(())
}

fn write_errors(dir: &Path, errors: &[String]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("errors.ndjson"))?);
    for message in errors {
        let line = json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": "processing", "diagnostics": message}],
        });
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs [`with_retries`] over `answers` (one per try); answers the result and how
    /// many tries and lease renewals were made.
    fn tried(answers: &[u16]) -> ((u16, u32), usize, usize) {
        let tries = std::cell::Cell::new(0usize);
        let kept = std::cell::Cell::new(0usize);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let (status, _, retries) = runtime
            .block_on(with_retries(
                || {
                    let status = answers[tries.get().min(answers.len() - 1)];
                    tries.set(tries.get() + 1);
                    async move { (status, Vec::new()) }
                },
                || {
                    kept.set(kept.get() + 1);
                    async { Ok(()) }
                },
                Duration::from_millis(1),
                "default",
                "job",
                "Basic",
            ))
            .ok()
            .unwrap();
        ((status, retries), tries.get(), kept.get())
    }

    #[test]
    fn a_failed_page_is_asked_again_a_bounded_number_of_times() {
        // A page that fails twice (a deadline, a busy plugin) and then answers.
        assert_eq!(tried(&[503, 500, 200]), ((200, 2), 3, 2));
        // A page that keeps failing: three retries, then the failure is the answer.
        assert_eq!(tried(&[503]), ((503, 3), 4, 3));
        assert_eq!(tried(&[429, 429, 429, 429, 200]), ((429, 3), 4, 3));
        // A refusal is not asked again; an answer at once needs no retry.
        assert_eq!(tried(&[400, 200]), ((400, 0), 1, 0));
        assert_eq!(tried(&[200]), ((200, 0), 1, 0));
        assert_eq!(attempts(0), "once");
        assert_eq!(attempts(3), "4 times");
    }

    #[test]
    fn pages_divide_files() {
        assert_eq!(page_size(100_000), 1000);
        assert_eq!(page_size(3), 3);
        assert_eq!(page_size(250), 250);
        assert_eq!(page_size(2500), 625);
    }
}
