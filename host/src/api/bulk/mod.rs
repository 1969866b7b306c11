//! FHIR Bulk Data export (Bulk Data Access IG 2.0): kick-off, status, files, cancel,
//! and the background worker that runs the exports.
//!
//! Routes, below a site's `/fhir`: `GET`/`POST` `/$export`, `/Patient/$export` and
//! `/Group/{id}/$export` (kick-off, 202 + `Content-Location`); `GET`/`DELETE`
//! `/$bulkdata-status?job={id}` (OpenEMR's status URL: 202 with `X-Progress` and
//! `Retry-After`, 429 when polled sooner, 200 with the manifest; `DELETE` cancels and
//! removes the files); `GET` `/$bulkdata-file/{job}/{file}` (an ndjson file, to the job's
//! owner only, gzip on request).
//!
//! A job is a row of the site's `bulk_jobs` table. Every host process runs a worker that
//! leases queued jobs (and jobs whose lease expired) one statement at a time — PostgreSQL
//! `FOR UPDATE SKIP LOCKED`, SQLite within its one writer — and renews the lease at every
//! finished file and at most every second between. A job counts its types, then pages
//! through them (`bulk.parallel_types` at once, the largest first) by calling each type's
//! plugin search route in-process, exactly as a REST search with the owner's token would
//! (same scopes, same patient compartment, same search code for `_typeFilter`), and writes
//! each page's resources to the type's current ndjson file: at most one page per running
//! type is held in memory. When a file is full (`bulk.file_resources`) the job records it
//! and the search cursor where the type's next one starts, so a process that dies
//! mid-export costs only the unfinished files: the next process to lease the job starts
//! each unfinished type again from there.

//!
//! The files: `kick_off` (the checks and the job's plan), `limits` (the site's settings,
//! jobs at once and per client), `jobs` (a job's row, its owner, its removal), `status`
//! (progress, manifest, cancel), `files` (the downloads), `worker` (leases) and `export`
//! (running a leased job, page by page).

mod export;
mod files;
mod jobs;
mod kick_off;
mod limits;
mod page;
mod status;
mod worker;

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ApiState, Asked, Call, Compatibility, authorize_route, build_request, call_error, count_call,
    family_url, query_pairs, settings,
};
use crate::auth::scopes::ScopeSet;
use crate::auth::tokens::{Principal, Role};
use crate::error::{Family, HttpError};
use crate::plugins::{Bound, Match, SiteTable, runtime};

pub(super) use worker::{expire_files, start};

/// The output formats a kick-off may name; all mean ndjson.
const OUTPUT_FORMATS: &[&str] = &["application/fhir+ndjson", "application/ndjson", "ndjson"];

/// Types outside the patient compartment: a Patient or Group export leaves them out.
const NOT_IN_PATIENT_COMPARTMENT: &[&str] = &[
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Medication",
    "Group",
];

/// How often the worker looks for jobs when nothing wakes it.
const TICK: Duration = Duration::from_millis(500);

/// What a bulk path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Endpoint {
    /// A kick-off at one of the three levels.
    KickOff(Level),
    /// A job's status URL.
    Status(String),
    /// One of a job's files.
    File(String, String),
}

/// Which resources an export covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "level", content = "group")]
pub(super) enum Level {
    /// Every resource of the asked types.
    System,
    /// The patient compartment of every patient.
    Patient,
    /// The patient compartments of a Group's members.
    Group(String),
}

impl Endpoint {
    /// The bulk endpoint `path` (below `/fhir`) and `query` name, if any. The status URL
    /// is OpenEMR's: `$bulkdata-status?job={id}`.
    pub(super) fn of(path: &str, query: Option<&str>) -> Option<Endpoint> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let plain = |s: &str| {
            !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        };
        match parts.as_slice() {
            ["$export"] => Some(Endpoint::KickOff(Level::System)),
            ["Patient", "$export"] => Some(Endpoint::KickOff(Level::Patient)),
            ["Group", id, "$export"] if plain(id) => {
                Some(Endpoint::KickOff(Level::Group((*id).to_owned())))
            }
            ["$bulkdata-status"] => {
                let job = form_urlencoded::parse(query.unwrap_or("").as_bytes())
                    .find(|(k, _)| k == "job")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                // A missing or malformed id is a job that does not exist (404).
                Some(Endpoint::Status(if plain(&job) {
                    job
                } else {
                    String::new()
                }))
            }
            ["$bulkdata-file", id, name] if plain(id) && plain(name) => {
                Some(Endpoint::File((*id).to_owned(), (*name).to_owned()))
            }
            _ => None,
        }
    }

    /// The route pattern, for the request line and the metrics.
    pub(super) fn pattern(&self) -> &'static str {
        match self {
            Endpoint::KickOff(Level::System) => "/fhir/$export",
            Endpoint::KickOff(Level::Patient) => "/fhir/Patient/$export",
            Endpoint::KickOff(Level::Group(_)) => "/fhir/Group/:id/$export",
            Endpoint::Status(_) => "/fhir/$bulkdata-status",
            Endpoint::File(..) => "/fhir/$bulkdata-file/:job/:file",
        }
    }
}

/// The job owner's token claims, kept with the job so the export runs with them.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Owner {
    role: String,
    subject: String,
    username: String,
    client_id: String,
    scope: String,
    patient: Option<String>,
    acl_role: Option<String>,
    jti: String,
    exp: i64,
}

impl Owner {
    fn of(principal: &Principal) -> Owner {
        Owner {
            role: principal.role.name().to_owned(),
            subject: principal.subject.clone(),
            username: principal.username.clone(),
            client_id: principal.client_id.clone(),
            scope: principal.scope_text.clone(),
            patient: principal.patient.clone(),
            acl_role: principal.acl_role.clone(),
            jti: principal.jti.clone(),
            exp: principal.exp,
        }
    }

    fn principal(&self) -> Option<Principal> {
        Some(Principal {
            role: Role::from_name(&self.role)?,
            subject: self.subject.clone(),
            username: self.username.clone(),
            client_id: self.client_id.clone(),
            scopes: ScopeSet::parse(&self.scope).ok()?,
            scope_text: self.scope.clone(),
            patient: self.patient.clone(),
            jti: self.jti.clone(),
            exp: self.exp,
            acl_role: self.acl_role.clone(),
            claims_digest: String::new(),
        })
    }

    /// Whether `principal` may see this job: the same client, for the same subject.
    fn owns(&self, principal: &Principal) -> bool {
        self.client_id == principal.client_id && self.subject == principal.subject
    }
}

/// One type's part of an export: its search query (filters, `_since`, patients).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TypePlan {
    resource_type: String,
    query: Vec<(String, String)>,
}

/// What an export does, fixed at kick-off.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Plan {
    level: Level,
    types: Vec<TypePlan>,
}

/// A finished file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileDone {
    resource_type: String,
    name: String,
    count: u64,
}

/// How far a job got: the counts saved at every finished file and at most every second
/// between, the search cursor of each type at every finished file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    /// Finished files, in the plan's type order and then by number.
    files: Vec<FileDone>,
    /// Each type of the plan, in its order.
    #[serde(default)]
    types: Vec<TypeProgress>,
    /// Errors met (each becomes an OperationOutcome line of the error file).
    errors: Vec<String>,
    /// Types whose export stopped before their end (the manifest names them).
    #[serde(default)]
    incomplete: Vec<Incomplete>,
    /// A job saved by a version that exported one type at a time: the type being
    /// exported, its next file's query and number, and every type's count. Read once
    /// into `types` ([`Progress::resume`]), never written.
    #[serde(default, skip_serializing)]
    type_index: usize,
    #[serde(default, skip_serializing)]
    next: Option<Vec<(String, String)>>,
    #[serde(default, skip_serializing)]
    file_no: u32,
    #[serde(default, skip_serializing)]
    totals: Vec<Option<u64>>,
}

/// How far one type of a job got.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TypeProgress {
    /// Resources to export, counted before the type's first page.
    total: Option<u64>,
    /// The search query where the type's next file starts (`None`: its first page).
    next: Option<Vec<(String, String)>>,
    /// The number of the type's next file (from 1).
    file_no: u32,
    /// Resources written to the type's unfinished file.
    current: u64,
    /// Whether its pages have begun.
    started: bool,
    /// Whether it is finished (or given up).
    done: bool,
}

impl Default for TypeProgress {
    fn default() -> Self {
        TypeProgress {
            total: None,
            next: None,
            file_no: 1,
            current: 0,
            started: false,
            done: false,
        }
    }
}

/// A type whose export stopped before its end: a page (or its count) kept failing.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Incomplete {
    resource_type: String,
    /// Resources of the type written to files before it stopped.
    count: u64,
    /// Resources of the type the export should have held, when they were counted.
    total: Option<u64>,
}

impl Progress {
    /// A new job's progress over `types` types.
    fn new(types: usize) -> Progress {
        Progress {
            types: vec![TypeProgress::default(); types],
            ..Progress::default()
        }
    }

    /// Makes a leased job's progress ready to go on over `types` types: what an
    /// unfinished file held is written again, and a job saved by a version that exported
    /// one type at a time goes on where that one stopped.
    fn resume(&mut self, types: usize) {
        if self.types.len() != types {
            let mut each = vec![TypeProgress::default(); types];
            for (i, t) in each.iter_mut().enumerate() {
                t.total = self.totals.get(i).copied().flatten();
                t.done = i < self.type_index;
            }
            if let Some(t) = each.get_mut(self.type_index) {
                t.next = self.next.take();
                t.file_no = self.file_no.max(1);
            }
            self.types = each;
        }
        for t in &mut self.types {
            t.current = 0;
        }
    }

    fn done(&self) -> u64 {
        self.files.iter().map(|f| f.count).sum::<u64>()
            + self.types.iter().map(|t| t.current).sum::<u64>()
    }

    fn done_of(&self, resource_type: &str) -> u64 {
        self.files
            .iter()
            .filter(|f| f.resource_type == resource_type)
            .map(|f| f.count)
            .sum()
    }
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn bad(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, "bad_export_request", message)
}

fn db_error(error: impl std::fmt::Display) -> HttpError {
    tracing::error!("bulk export storage failed: {error}");
    HttpError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "bulk_storage_failed",
        "The export's records could not be read or written",
    )
}

fn job_dir(data_dir: &Path, site: &str, job: &str) -> PathBuf {
    data_dir.join("bulk").join(site).join(job)
}

/// Answers a bulk endpoint for an authenticated caller.
pub(super) async fn serve(
    call: &Call<'_>,
    endpoint: Endpoint,
    principal: &Principal,
    body: Bytes,
) -> Result<Response, HttpError> {
    match endpoint {
        Endpoint::KickOff(level) => {
            if *call.method != Method::GET && *call.method != Method::POST {
                return Err(HttpError::method_not_allowed(&["GET", "POST"]));
            }
            kick_off::kick_off(call, level, principal, body).await
        }
        Endpoint::Status(id) => match *call.method {
            Method::GET => status::status(call, &id, principal).await,
            Method::DELETE => status::cancel(call, &id, principal).await,
            _ => Err(HttpError::method_not_allowed(&["GET", "DELETE"])),
        },
        Endpoint::File(id, name) => {
            if *call.method != Method::GET {
                return Err(HttpError::method_not_allowed(&["GET"]));
            }
            files::file(call, &id, &name, principal).await
        }
    }
}

/// The search route of `resource_type`, checked for `principal` as a direct search is.
fn search_route(
    table: &SiteTable,
    principal: &Principal,
    resource_type: &str,
) -> Result<(Bound, Vec<String>), HttpError> {
    let Match::Found(bound, params) =
        table.find(Family::Fhir, &Method::GET, &format!("/{resource_type}"))
    else {
        return Err(bad(format!(
            "This server does not export {resource_type}: no plugin of the site serves it"
        )));
    };
    authorize_route(principal, Family::Fhir, &bound, &[]).map_err(|error| {
        HttpError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!(
                "The access token may not read {resource_type}, so it cannot be exported ({})",
                error.message
            ),
        )
    })?;
    Ok((bound, params))
}

/// Calls `resource_type`'s search with `query` as `principal`; answers the status and body.
async fn search(
    call: &Call<'_>,
    table: &SiteTable,
    principal: &Principal,
    resource_type: &str,
    query: Vec<(String, String)>,
) -> Result<(u16, Value), HttpError> {
    let found = search_text(call, table, principal, resource_type, query, None, false).await?;
    Ok((
        found.status,
        serde_json::from_slice(&found.body).unwrap_or(Value::Null),
    ))
}

/// A search's answer as the plugin wrote it.
pub(super) struct Found {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
    /// How many lines a page answered as lines holds, and its next page's URL (see
    /// [`hearth_sdk::request::LINES_HEADER`]); `None` for a Bundle.
    pub(super) lines: Option<(u64, Option<String>)>,
}

impl Found {
    /// An answer that is not a page of lines (an error, a Bundle).
    pub(super) fn bundle(status: u16, body: Vec<u8>) -> Found {
        Found {
            status,
            body,
            lines: None,
        }
    }
}

/// [`search`] answering the body as the plugin wrote it (the export copies the resources
/// out of it without building them as values); through `kept` when given (an export's
/// pages of one type, see [`runtime::Kept`]). With `lines` the page is asked as lines,
/// one resource each (a plugin that cannot answers its Bundle).
async fn search_text(
    call: &Call<'_>,
    table: &SiteTable,
    principal: &Principal,
    resource_type: &str,
    query: Vec<(String, String)>,
    kept: Option<&mut runtime::Kept>,
    lines: bool,
) -> Result<Found, HttpError> {
    let (bound, params) = search_route(table, principal, resource_type)?;
    let path = format!("/{resource_type}");
    let asked = Asked {
        method: &Method::GET,
        path: &path,
        query,
    };
    let mut request = build_request(call, asked, Bytes::new(), &bound, params, Some(principal));
    // The export's own, larger pages (no client can send this header): beyond the FHIR
    // search's own cap of 200, up to the largest `bulk.page_resources`, so a type costs
    // fewer plugin calls; the query's `_count` asks for the site's page.
    request.headers.push((
        hearth_sdk::request::PAGE_CAP_HEADER.to_owned(),
        limits::MAX_PAGE.to_string(),
    ));
    if lines {
        request
            .headers
            .push((hearth_sdk::request::LINES_HEADER.to_owned(), "1".to_owned()));
    }
    // A search of an export (a count, a page) may read a whole table: it runs in the
    // background with a deadline and CPU budget of at least `bulk.call_seconds`.
    let mut budget = bound.plugin.limits;
    let least = limits::bulk_settings(call.site).await.call_seconds * 1000;
    budget.timeout_ms = budget.timeout_ms.max(least);
    budget.cpu_ms = budget.cpu_ms.max(least);
    let result = runtime::call_kept(
        &call.app.registry.engine,
        call.site,
        &bound.plugin,
        budget,
        request,
        call.request_id,
        kept,
    )
    .await;
    count_call(&call.app.telemetry, &call.site.name, &bound, &result);
    match result {
        Ok(outcome) => {
            let response = outcome.response;
            let header = |name: &str| {
                response
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.clone())
            };
            let lines = header(hearth_sdk::request::LINES_HEADER)
                .filter(|_| lines && response.status == 200)
                .and_then(|n| n.trim().parse::<u64>().ok())
                .map(|n| (n, header(hearth_sdk::request::NEXT_HEADER)));
            Ok(Found {
                status: response.status,
                body: response.body,
                lines,
            })
        }
        Err(error) => Err(call_error(&call.site.name, call.request_id, &bound, error)),
    }
}

/// The text of an OperationOutcome's first issue.
fn outcome_text(body: &Value) -> String {
    let issue = &body["issue"][0];
    issue["diagnostics"]
        .as_str()
        .or_else(|| issue["details"]["text"].as_str())
        .unwrap_or("the search failed")
        .to_owned()
}

fn fhir_json(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_name_their_endpoints() {
        assert_eq!(
            Endpoint::of("/$bulkdata-status", Some("job=j-1")),
            Some(Endpoint::Status("j-1".to_owned()))
        );
        assert_eq!(
            Endpoint::of("/$export", None),
            Some(Endpoint::KickOff(Level::System))
        );
        assert_eq!(
            Endpoint::of("/Patient/$export", None),
            Some(Endpoint::KickOff(Level::Patient))
        );
        assert_eq!(
            Endpoint::of("/Group/g-1/$export", None),
            Some(Endpoint::KickOff(Level::Group("g-1".to_owned())))
        );
        assert_eq!(
            Endpoint::of("/$bulkdata-file/j1/Patient-1.ndjson", None),
            Some(Endpoint::File(
                "j1".to_owned(),
                "Patient-1.ndjson".to_owned()
            ))
        );
        assert_eq!(Endpoint::of("/$bulkdata-file/j1/../x", None), None);
        assert_eq!(Endpoint::of("/Patient", None), None);
    }
}
