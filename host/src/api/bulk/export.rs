//! Running a leased job: its types counted, then paged into ndjson files, several types
//! at once (`bulk.parallel_types`, each on a task of its own); the progress and the lease
//! renewed at every finished file and at most every second between, each type's search
//! cursor kept at every finished file.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method};
use serde_json::{Value, json};

use super::limits::{BulkSettings, bulk_settings};
use super::page::{Page, next_query, query_of};
use super::{
    ApiState, Call, FileDone, Found, Incomplete, Owner, Plan, Progress, job_dir, now, outcome_text,
    search_text, settings,
};
use crate::auth::tokens::Principal;
use crate::error::Family;
use crate::on_db;
use crate::plugins::runtime::Kept;
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

/// The largest divisor of `n` up to `most` (1 at least). An export's page is the largest
/// divisor of the file size up to `bulk.page_resources`, so every file ends at a page
/// boundary (where a resumed job starts again).
fn largest_divisor(n: u64, most: u64) -> u64 {
    (1..=most.min(n))
        .rev()
        .find(|d| n.is_multiple_of(*d))
        .unwrap_or(1)
}

/// `query` with its `_count` made smaller `retries` times: each time the largest divisor
/// of the last size up to its half, so the smaller pages still end every file where the
/// larger ones did. A page may fail because it is too large for the plugin (its memory
/// limit or its deadline); the smaller size then holds for the rest of the type (the
/// plugin's `next` link keeps it).
fn shrunk(query: &[(String, String)], retries: u32) -> Vec<(String, String)> {
    let mut query = query.to_vec();
    if retries == 0 {
        return query;
    }
    for (_, value) in query.iter_mut().filter(|(k, _)| k == "_count") {
        if let Ok(mut n) = value.trim().parse::<u64>() {
            for _ in 0..retries {
                n = largest_divisor(n, n / 2).max(1);
            }
            *value = n.to_string();
        }
    }
    query
}

/// What a type's task does next.
enum Work {
    Count(usize),
    Pages(usize),
}

/// A running job, shared by the tasks that export its types.
struct Run {
    api: Arc<ApiState>,
    site: Arc<Site>,
    me: String,
    id: String,
    principal: Principal,
    plan: Plan,
    dir: PathBuf,
    settings: BulkSettings,
    api_settings: Arc<settings::ApiSettings>,
    /// The job's progress, and which types a task of this process has taken.
    state: Mutex<(Progress, Vec<bool>)>,
    /// When the lease was last renewed; held while renewing, so the saved progress is
    /// always the newest one.
    renewed: tokio::sync::Mutex<Instant>,
    renew_every: Duration,
}

impl Run {
    fn with<R>(&self, f: impl FnOnce(&mut Progress, &mut Vec<bool>) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (progress, taken) = &mut *state;
        f(progress, taken)
    }

    /// The next work of a task ([`take`]).
    fn take(&self) -> Option<Work> {
        self.with(|progress, taken| take(progress, taken))
    }

    /// Gives back a type that was counted (its pages are still to be taken).
    fn give_back(&self, i: usize) {
        self.with(|_, taken| taken[i] = false);
    }

    /// Saves the progress and renews the lease; `LeaseLost` when this process no longer
    /// holds the job.
    async fn renew(&self) -> Result<(), Stop> {
        let mut renewed = self.renewed.lock().await;
        let text = self
            .with(|progress, _| serde_json::to_string(progress))
            .map_err(|e| Stop::Failed(e.to_string()))?;
        let updated = on_db!(&self.site.db, |pool| {
            sqlx::query(
                "UPDATE bulk_jobs SET progress = $1, lease_until = $2 WHERE id = $3 AND lease_owner = $4 AND status = 'running'",
            )
            .bind(&text)
            .bind(now() + self.settings.lease_seconds)
            .bind(&self.id)
            .bind(&self.me)
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        });
        match updated {
            Ok(1) => {
                *renewed = Instant::now();
                Ok(())
            }
            Ok(_) => Err(Stop::LeaseLost),
            // A database that fails now may be back before the lease ends; another
            // process (or this one) resumes the job then.
            Err(error) => {
                tracing::warn!(site = %self.site.name, job = %self.id, "saving an export's progress failed: {error}");
                Err(Stop::LeaseLost)
            }
        }
    }

    /// [`Run::renew`] when the last renewal is `renew_every` old.
    async fn renew_when_due(&self) -> Result<(), Stop> {
        if self.renewed.lock().await.elapsed() >= self.renew_every {
            self.renew().await?;
        }
        Ok(())
    }

    /// One search of `resource_type` (a count or a page), asked again while it fails; a
    /// retry renews the lease (a page being retried is not counted yet), and a page
    /// (`page`) is asked as lines and again with half as many resources ([`shrunk`]).
    /// `kept` holds the plugin instance of the type's pages (see [`Kept`]).
    async fn ask(
        &self,
        resource_type: &str,
        query: &[(String, String)],
        page: bool,
        kept: Option<&tokio::sync::Mutex<Kept>>,
    ) -> Result<(Found, u32), Stop> {
        let headers = HeaderMap::new();
        let uri = axum::http::Uri::from_static("/");
        let request_id = format!("bulk-{}", self.id);
        let path = format!("/{resource_type}");
        let call = Call {
            api: &self.api,
            app: &self.api.app,
            site: &self.site,
            settings: &self.api_settings,
            family: Family::Fhir,
            method: &Method::GET,
            path: &path,
            headers: &headers,
            uri: &uri,
            request_id: &request_id,
        };
        let table = self.api.app.registry.table(&self.site.name);
        let (call, table) = (&call, &table);
        let asked = with_retries(
            |retries| async move {
                let query = shrunk(query, if page { retries } else { 0 });
                let mut kept = match kept {
                    Some(kept) => Some(kept.lock().await),
                    None => None,
                };
                let kept = kept.as_deref_mut();
                let found = search_text(
                    call,
                    table,
                    &self.principal,
                    resource_type,
                    query,
                    kept,
                    page,
                );
                answer(found.await)
            },
            || self.renew(),
            FIRST_WAIT,
            &self.site.name,
            &self.id,
            resource_type,
        );
        // A call may take longer than the lease (a count on a large site, up to
        // `bulk.call_seconds`): the lease is renewed while it runs, so no other process
        // takes the job over from a process that is still working on it. The renewals
        // run beside the call, never instead of it: a renewal waiting for a connection
        // the call holds must not stop the call from ending and giving it back.
        let heartbeat = async {
            loop {
                tokio::time::sleep(self.renew_every).await;
                if let Err(stop) = self.renew_when_due().await {
                    return stop;
                }
            }
        };
        tokio::select! {
            answered = asked => answered,
            stop = heartbeat => Err(stop),
        }
    }

    /// Records a type that stopped before its end: an error line and the manifest's
    /// `incomplete` entry; `written` of its resources are in its files.
    fn give_up(&self, i: usize, written: u64, message: String) {
        let t = &self.plan.types[i].resource_type;
        self.with(|progress, _| {
            progress.errors.push(message);
            progress.incomplete.push(Incomplete {
                resource_type: t.clone(),
                count: written,
                total: progress.types[i].total,
            });
        });
    }
}

/// Runs (or resumes) a leased job to its end.
pub(super) async fn export(
    api: &Arc<ApiState>,
    site: &Arc<Site>,
    me: &str,
    job: &mut Leased,
) -> Result<(), Stop> {
    let settings = bulk_settings(site).await;
    let Some(principal) = job.owner.principal() else {
        return Err(Stop::Failed(
            "the export's owner could not be read".to_owned(),
        ));
    };
    let dir = job_dir(&api.app.config.data_dir, &site.name, &job.id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| Stop::Failed(format!("the export folder could not be made: {e}")))?;
    let types = job.plan.types.len();
    job.progress.resume(types);
    // The lease is renewed (and the counts saved) a quarter of the lease after the last
    // renewal at the latest, and at least once a second; a finished file always saves.
    let renew_every = Duration::from_millis(
        u64::try_from(settings.lease_seconds.saturating_mul(250))
            .unwrap_or(0)
            .min(1000),
    );
    let run = Arc::new(Run {
        api: api.clone(),
        site: site.clone(),
        me: me.to_owned(),
        id: job.id.clone(),
        principal,
        plan: job.plan.clone(),
        dir,
        settings,
        api_settings: settings::get(site).await,
        state: Mutex::new((std::mem::take(&mut job.progress), vec![false; types])),
        renewed: tokio::sync::Mutex::new(Instant::now()),
        renew_every,
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..settings.parallel_types.clamp(1, types.max(1)) {
        let run = run.clone();
        tasks.spawn(async move { export_types(&run).await });
    }
    let mut outcome = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let result = joined
            .unwrap_or_else(|error| Err(Stop::Failed(format!("an export task stopped: {error}"))));
        if let Err(stop) = result
            && outcome.is_ok()
        {
            // One task's stop is the job's: the others are stopped where they are (what
            // they were writing is written again by whoever resumes the job).
            outcome = Err(stop);
            tasks.abort_all();
        }
    }
    job.progress = run.with(|progress, _| std::mem::take(progress));
    outcome?;
    if !job.progress.errors.is_empty() {
        write_errors(&run.dir, &job.progress.errors)
            .map_err(|e| Stop::Failed(format!("the error file could not be written: {e}")))?;
    }
    Ok(())
}

/// One task of a job: counts and pages types until none is left for it.
async fn export_types(run: &Run) -> Result<(), Stop> {
    while let Some(work) = run.take() {
        match work {
            Work::Count(i) => {
                count(run, i).await?;
                run.give_back(i);
            }
            Work::Pages(i) => pages(run, i).await?,
        }
    }
    Ok(())
}

/// Counts type `i`: its `_summary=count` total (a failed count gives the type up).
async fn count(run: &Run, i: usize) -> Result<(), Stop> {
    let plan = &run.plan.types[i];
    let t = &plan.resource_type;
    let mut query = plan.query.clone();
    query.push(("_summary".to_owned(), "count".to_owned()));
    // Counted in an instance of its own outside the pool, as the pages are (see
    // [`Kept`]), dropped once counted with its hold on the plugin's code: the export
    // takes no slot from requests and leaves no warm one behind.
    let instance = tokio::sync::Mutex::new(Kept::default());
    let (Found { status, body, .. }, tries) = run.ask(t, &query, false, Some(&instance)).await?;
    drop(instance);
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if status != 200 {
        run.give_up(
            i,
            0,
            format!(
                "{t} could not be exported: its count failed {}: {}",
                attempts(tries),
                outcome_text(&body)
            ),
        );
        run.with(|progress, _| progress.types[i].done = true);
        return run.renew().await;
    }
    run.with(|progress, _| progress.types[i].total = body["total"].as_u64().or(Some(0)));
    Ok(())
}

/// Writes type `i`'s pages to its files, from where its last finished file ended.
async fn pages(run: &Run, i: usize) -> Result<(), Stop> {
    let plan = &run.plan.types[i];
    let t = &plan.resource_type;
    let file_resources = run.settings.file_resources;
    let started = Instant::now();
    // The type's pages are asked of one plugin instance, kept from one page to the next
    // (one job, one client, one type): a page's memory is built once, not every page.
    let kept = tokio::sync::Mutex::new(Kept::default());
    let mut query = run
        .with(|progress, _| progress.types[i].next.clone())
        .unwrap_or_else(|| {
            let mut q = plan.query.clone();
            let page = largest_divisor(file_resources, run.settings.page_resources);
            q.push(("_count".to_owned(), page.to_string()));
            q.push(("_total".to_owned(), "none".to_owned()));
            q
        });
    loop {
        let file_no = run.with(|progress, _| progress.types[i].file_no);
        let name = format!("{t}-{file_no}.ndjson");
        let file_path = run.dir.join(&name);
        let file = std::fs::File::create(&file_path)
            .map_err(|e| Stop::Failed(format!("{name} could not be written: {e}")))?;
        let mut file = Open {
            writer: std::io::BufWriter::with_capacity(256 * 1024, file),
            path: file_path,
            name,
            count: 0,
        };
        // The query of the type's next file; `None` when the type is finished.
        let next_file = loop {
            let (found, tries) = run.ask(t, &query, true, Some(&kept)).await?;
            if found.status != 200 {
                let outcome: Value = serde_json::from_slice(&found.body).unwrap_or(Value::Null);
                let count = run.with(|progress, _| progress.done_of(t)) + file.count;
                let of = run
                    .with(|progress, _| progress.types[i].total)
                    .map(|n| format!(" of {n}"))
                    .unwrap_or_default();
                tracing::error!(site = %run.site.name, job = %run.id, resource_type = %t,
                    "an export gives up on a type after {count} resources, a page failed {}: {}",
                    attempts(tries), outcome_text(&outcome));
                run.give_up(
                    i,
                    count,
                    format!(
                        "{t} stopped after {count}{of} resources: a page failed {}: {}",
                        attempts(tries),
                        outcome_text(&outcome)
                    ),
                );
                break None;
            }
            let (written, next) = write_page(&mut file.writer, &found)
                .map_err(|e| Stop::Failed(format!("{} could not be written: {e}", file.name)))?;
            file.count += written;
            run.with(|progress, _| progress.types[i].current = file.count);
            run.api
                .app
                .telemetry
                .bulk_resources_exported(&run.site.name, t, written);
            let Some(next) = next else {
                break None;
            };
            query = next;
            if file.count >= file_resources {
                break Some(query.clone());
            }
            // Between files only the counts change: they (and the lease) are saved at
            // most every `renew_every`, not after every page.
            run.renew_when_due().await?;
        };
        let more = next_file.is_some();
        finish_file(run, i, file, next_file)?;
        run.renew().await?;
        if !more {
            let written = run.with(|progress, _| progress.done_of(t));
            tracing::info!(site = %run.site.name, job = %run.id, resource_type = %t,
                "an export wrote {written} {t} resources in {:.2} s",
                started.elapsed().as_secs_f64());
            return Ok(());
        }
    }
}

/// A type's ndjson file being written.
struct Open {
    writer: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
    name: String,
    count: u64,
}

/// Flushes a type's file to disk and records it with where the type goes on (`next`:
/// the query of its next file; `None`: the type is finished), in one step, so a saved
/// progress never holds a file without its cursor. An empty file is removed instead.
fn finish_file(
    run: &Run,
    i: usize,
    mut file: Open,
    next: Option<Vec<(String, String)>>,
) -> Result<(), Stop> {
    use std::io::Write;
    file.writer
        .flush()
        .and_then(|()| file.writer.get_ref().sync_data())
        .map_err(|e| Stop::Failed(format!("{} could not be written: {e}", file.name)))?;
    uncache(file.writer.get_ref());
    if file.count == 0 {
        let _ = std::fs::remove_file(&file.path);
    }
    let done = (file.count > 0).then(|| FileDone {
        resource_type: run.plan.types[i].resource_type.clone(),
        name: file.name,
        count: file.count,
    });
    run.with(|progress, _| record(progress, &run.plan, i, done, next));
    Ok(())
}

/// Drops a finished file's pages from the page cache (`POSIX_FADV_DONTNEED`; the file is
/// on disk already, so nothing is lost). An export writes gigabytes it will not read
/// again soon (a client downloads each file once, later): kept cached, each new file
/// took fresh memory for its pages, and on this project's virtual machines the first
/// touch of fresh memory is what writing a file cost most. At 100,000 patients the
/// process spent 22 s of its 78 s of CPU in the kernel, 8 % of all samples copying into
/// new page-cache pages; files dropped once written reuse the same few pages
/// (docs/benchmarks.md). A system that cannot take the advice just keeps the pages.
fn uncache(file: &std::fs::File) {
    #[cfg(target_os = "linux")]
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

/// The next work of a task, `taken` marking the types tasks of this process hold: a type
/// to count (every type is counted before its pages), else the largest counted type
/// nobody pages yet; `None` when nothing is left that another task does not hold.
fn take(progress: &mut Progress, taken: &mut [bool]) -> Option<Work> {
    let free = |i: &usize| !taken[*i] && !progress.types[*i].done;
    let uncounted = (0..taken.len())
        .filter(free)
        .find(|i| progress.types[*i].total.is_none());
    if let Some(i) = uncounted {
        taken[i] = true;
        return Some(Work::Count(i));
    }
    let i = (0..taken.len())
        .filter(free)
        .max_by_key(|i| (progress.types[*i].total, std::cmp::Reverse(*i)))?;
    taken[i] = true;
    progress.types[i].started = true;
    Some(Work::Pages(i))
}

/// Records type `i`'s finished file (`None`: it was empty) and where the type goes on
/// (`next`: the query of its next file; `None`: the type is finished), in one step, so a
/// saved progress never holds a file without its cursor. Files are kept in the plan's
/// type order, then by number (the manifest's order), whichever task finished them.
fn record(
    progress: &mut Progress,
    plan: &Plan,
    i: usize,
    file: Option<FileDone>,
    next: Option<Vec<(String, String)>>,
) {
    let state = &mut progress.types[i];
    let file_no = state.file_no;
    state.current = 0;
    match next {
        Some(next) => {
            state.next = Some(next);
            state.file_no += 1;
        }
        None => {
            state.next = None;
            state.done = true;
        }
    }
    if let Some(file) = file {
        let type_of = |f: &FileDone| {
            plan.types
                .iter()
                .position(|p| p.resource_type == f.resource_type)
        };
        let at = progress
            .files
            .iter()
            .position(|f| {
                let other = type_of(f);
                other > Some(i) || (other == Some(i) && file_number(&f.name) > file_no)
            })
            .unwrap_or(progress.files.len());
        progress.files.insert(at, file);
    }
}

/// The number of a file named `Type-N.ndjson`.
fn file_number(name: &str) -> u32 {
    name.trim_end_matches(".ndjson")
        .rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
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
fn answer(found: Result<Found, crate::error::HttpError>) -> Found {
    match found {
        Ok(found) => found,
        Err(error) => Found::bundle(
            error.status.as_u16(),
            json!({"issue": [{"diagnostics": error.message}]})
                .to_string()
                .into_bytes(),
        ),
    }
}

/// Asks `attempt` (given how many retries came before it) until it answers 200 or a
/// refusal, or [`RETRIES`] retries failed too; between tries it waits (`first_wait`,
/// doubling) and calls `keep` (which renews the job's lease, so retries never let it run
/// out). Answers the last answer and how many retries were made.
async fn with_retries<A, AF, K, KF>(
    mut attempt: A,
    mut keep: K,
    first_wait: Duration,
    site: &str,
    job: &str,
    resource_type: &str,
) -> Result<(Found, u32), Stop>
where
    A: FnMut(u32) -> AF,
    AF: Future<Output = Found>,
    K: FnMut() -> KF,
    KF: Future<Output = Result<(), Stop>>,
{
    let mut wait = first_wait;
    let mut retries = 0;
    loop {
        let found = attempt(retries).await;
        let status = found.status;
        if status == 200 || !retryable(status) || retries == RETRIES {
            return Ok((found, retries));
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
/// them; answers how many and the next page's query. A page answered as lines is written
/// as it is once [`Page::lines`] has checked it; a Bundle the page reader cannot read is
/// read as a value and written again.
fn write_page(
    out: &mut impl std::io::Write,
    found: &Found,
) -> std::io::Result<(u64, Option<Query>)> {
    let body = found.body.as_slice();
    if let Some((count, next)) = &found.lines {
        if !Page::lines(body, *count) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the plugin's page is not the {count} resources, one per line, it said"),
            ));
        }
        out.write_all(body)?;
        return Ok((*count, next.as_deref().and_then(query_of)));
    }
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
        let (found, retries) = runtime
            .block_on(with_retries(
                |_| {
                    let status = answers[tries.get().min(answers.len() - 1)];
                    tries.set(tries.get() + 1);
                    async move { Found::bundle(status, Vec::new()) }
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
        ((found.status, retries), tries.get(), kept.get())
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

    fn plan(types: &[&str]) -> Plan {
        Plan {
            level: super::super::Level::System,
            types: types
                .iter()
                .map(|t| super::super::TypePlan {
                    resource_type: (*t).to_owned(),
                    query: vec![],
                })
                .collect(),
        }
    }

    fn file(t: &str, n: u32) -> Option<FileDone> {
        Some(FileDone {
            resource_type: t.to_owned(),
            name: format!("{t}-{n}.ndjson"),
            count: 5,
        })
    }

    /// The next work [`take`] gives, as `count i` or `pages i`.
    fn next(progress: &mut Progress, taken: &mut [bool]) -> Option<String> {
        take(progress, taken).map(|work| match work {
            Work::Count(i) => format!("count {i}"),
            Work::Pages(i) => format!("pages {i}"),
        })
    }

    #[test]
    fn types_are_counted_first_then_paged_largest_first_one_task_each() {
        let mut progress = Progress::new(3);
        let mut taken = vec![false; 3];
        // Two tasks count the first two types; a third finds the last one to count.
        assert_eq!(next(&mut progress, &mut taken).as_deref(), Some("count 0"));
        assert_eq!(next(&mut progress, &mut taken).as_deref(), Some("count 1"));
        progress.types[0].total = Some(10);
        taken[0] = false;
        assert_eq!(next(&mut progress, &mut taken).as_deref(), Some("count 2"));
        // With type 1 still being counted, the only counted type is paged.
        assert_eq!(next(&mut progress, &mut taken).as_deref(), Some("pages 0"));
        assert!(progress.types[0].started);
        assert_eq!(next(&mut progress, &mut taken), None, "the rest are held");
        progress.types[1].total = Some(3);
        progress.types[2].total = Some(700);
        taken[1] = false;
        taken[2] = false;
        assert_eq!(next(&mut progress, &mut taken).as_deref(), Some("pages 2"));
        assert_eq!(next(&mut progress, &mut taken).as_deref(), Some("pages 1"));
        // Finished types are never taken again.
        let mut taken = vec![false; 3];
        for t in &mut progress.types {
            t.done = true;
        }
        assert_eq!(next(&mut progress, &mut taken), None);
    }

    #[test]
    fn files_keep_the_plan_order_and_their_cursor_whichever_task_ends_first() {
        let plan = plan(&["Patient", "Observation", "Provenance"]);
        let mut progress = Progress::new(3);
        let next = || Some(vec![("_cursor".to_owned(), "x".to_owned())]);
        record(&mut progress, &plan, 2, file("Provenance", 1), next());
        record(&mut progress, &plan, 1, file("Observation", 1), next());
        record(&mut progress, &plan, 2, file("Provenance", 2), None);
        record(&mut progress, &plan, 0, file("Patient", 1), None);
        record(&mut progress, &plan, 1, file("Observation", 2), next());
        record(&mut progress, &plan, 1, None, None);
        let names: Vec<&str> = progress.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "Patient-1.ndjson",
                "Observation-1.ndjson",
                "Observation-2.ndjson",
                "Provenance-1.ndjson",
                "Provenance-2.ndjson"
            ]
        );
        assert!(progress.types.iter().all(|t| t.done && t.next.is_none()));
        assert_eq!(
            progress.types[1].file_no, 3,
            "the empty third file was not kept"
        );
    }

    #[test]
    fn a_job_saved_one_type_at_a_time_goes_on_where_it_stopped() {
        let saved = r#"{"files":[{"resource_type":"Patient","name":"Patient-1.ndjson","count":5}],
            "type_index":1,"next":[["_cursor","c"]],"file_no":3,"totals":[5,20,null],
            "current":4,"errors":[]}"#;
        let mut progress: Progress = serde_json::from_str(saved).unwrap();
        progress.resume(3);
        let t = &progress.types;
        assert!(t[0].done && !t[1].done && !t[2].done);
        assert_eq!(
            (t[0].total, t[1].total, t[2].total),
            (Some(5), Some(20), None)
        );
        assert_eq!(
            t[1].next,
            Some(vec![("_cursor".to_owned(), "c".to_owned())])
        );
        assert_eq!((t[1].file_no, t[2].file_no), (3, 1));
        assert_eq!(progress.done(), 5, "the unfinished file is written again");
        // What is saved now is the new form only.
        let text = serde_json::to_string(&progress).unwrap();
        assert!(
            !text.contains("type_index") && !text.contains("totals"),
            "{text}"
        );
    }

    #[test]
    fn a_page_of_lines_is_written_as_it_is_and_a_bundle_read_out() {
        let lines = Found {
            status: 200,
            body: b"{\"id\":\"a\"}\n{\"id\":\"b\"}\n".to_vec(),
            lines: Some((
                2,
                Some("https://h/fhir/Patient?_count=2&_cursor=v2.9.2.a5".into()),
            )),
        };
        let mut out = Vec::new();
        let (written, next) = write_page(&mut out, &lines).unwrap();
        assert_eq!((written, out.as_slice()), (2, lines.body.as_slice()));
        assert_eq!(
            next,
            Some(vec![
                ("_count".to_owned(), "2".to_owned()),
                ("_cursor".to_owned(), "v2.9.2.a5".to_owned())
            ])
        );
        // The last page names no next one.
        let last = Found {
            lines: Some((2, None)),
            ..lines
        };
        assert_eq!(write_page(&mut Vec::new(), &last).unwrap(), (2, None));
        // Lines that are not what the page said: an error, nothing written.
        let short = Found {
            lines: Some((3, None)),
            ..last
        };
        let mut out = Vec::new();
        let error = write_page(&mut out, &short).unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(out.is_empty());
        // A plugin that answers a Bundle: its matches, one per line.
        let bundle = Found::bundle(
            200,
            br#"{"resourceType":"Bundle","entry":[{"resource":{"id":"a"}},{"resource":{"id":"p"},"search":{"mode":"include"}}]}"#
                .to_vec(),
        );
        let mut out = Vec::new();
        assert_eq!(write_page(&mut out, &bundle).unwrap(), (1, None));
        assert_eq!(out, b"{\"id\":\"a\"}\n");
    }

    #[test]
    fn a_file_dropped_from_the_cache_reads_back_whole() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("hearth-uncache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("Patient-1.ndjson");
        let line = "{\"resourceType\":\"Patient\",\"id\":\"a\"}\n";
        let mut writer = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for _ in 0..10_000 {
            writer.write_all(line.as_bytes()).unwrap();
        }
        writer.flush().unwrap();
        writer.get_ref().sync_data().unwrap();
        uncache(writer.get_ref());
        drop(writer);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), line.repeat(10_000));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn pages_divide_files() {
        assert_eq!(largest_divisor(100_000, 1000), 1000);
        assert_eq!(largest_divisor(100_000, 5000), 5000);
        assert_eq!(largest_divisor(3, 5000), 3);
        assert_eq!(largest_divisor(250, 1000), 250);
        assert_eq!(largest_divisor(2500, 1000), 625);
        assert_eq!(largest_divisor(100_000, 3000), 2500);
    }

    #[test]
    fn a_failed_page_is_asked_again_smaller_and_still_ends_every_file() {
        let query = vec![
            ("_count".to_owned(), "5000".to_owned()),
            ("_cursor".to_owned(), "v2.9.5000.a77".to_owned()),
        ];
        let counts: Vec<String> = (0..=RETRIES + 2)
            .map(|retries| shrunk(&query, retries)[0].1.clone())
            .collect();
        assert_eq!(counts, ["5000", "2500", "1250", "625", "125", "25"]);
        // Each size divides the one before it, so a file of 100,000 still ends on a page.
        assert!(counts.windows(2).all(|w| {
            let (a, b) = (w[0].parse::<u64>().unwrap(), w[1].parse::<u64>().unwrap());
            a.is_multiple_of(b)
        }));
        assert_eq!(shrunk(&query, 2)[1], query[1], "the cursor is kept");
        // Sizes with no divisor at their half go down to 1, and stay there.
        let odd = vec![("_count".to_owned(), "7".to_owned())];
        assert_eq!(shrunk(&odd, 1)[0].1, "1");
        assert_eq!(shrunk(&odd, 3)[0].1, "1");
        assert_eq!(shrunk(&[], 2), Vec::<(String, String)>::new());
    }
}
