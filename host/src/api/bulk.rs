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
//! `FOR UPDATE SKIP LOCKED`, SQLite within its one writer — and renews the lease after
//! every page. A job pages through each type by calling the type's plugin search route
//! in-process, exactly as a REST search with the owner's token would (same scopes, same
//! patient compartment, same search code for `_typeFilter`), and writes each page's
//! resources to the current ndjson file: at most one page is held in memory. When a file
//! is full (`bulk.file_resources`) the job records it and the search cursor where the next
//! one starts, so a process that dies mid-export costs only the unfinished file: the
//! next process to lease the job starts again from there.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use super::{ApiState, Asked, Call, authorize_route, build_request, count_call, settings};
use crate::auth::acl;
use crate::auth::scopes::ScopeSet;
use crate::auth::tokens::{Principal, Role};
use crate::db::Kind;
use crate::error::{Family, HttpError};
use crate::on_db;
use crate::plugins::{Bound, Match, SiteTable, runtime};
use crate::sites::Site;

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

/// The most resources one plugin search page holds (the FHIR search's own cap).
const MAX_PAGE: u64 = 200;

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

/// A site's bulk export settings (`bulk.*` in `site_settings`).
#[derive(Debug, Clone, Copy)]
struct BulkSettings {
    file_resources: u64,
    expiry_seconds: i64,
    max_jobs: i64,
    max_jobs_per_client: i64,
    retry_after_seconds: i64,
    lease_seconds: i64,
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
        }
    }
}

async fn bulk_settings(site: &Site) -> BulkSettings {
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
            _ => {}
        }
    }
    out
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

/// How far a job got: kept after every page (counts) and every finished file (cursor).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    /// Finished files, in order.
    files: Vec<FileDone>,
    /// The type being exported (index into the plan).
    type_index: usize,
    /// The search query where the next file of that type starts (`None`: the type's
    /// first page).
    next: Option<Vec<(String, String)>>,
    /// The number of the next file of that type (from 1).
    file_no: u32,
    /// Resources of each type to export, counted when the type starts.
    totals: Vec<Option<u64>>,
    /// Resources written to the file being written (not yet finished).
    current: u64,
    /// Errors met (each becomes an OperationOutcome line of the error file).
    errors: Vec<String>,
}

impl Progress {
    fn done(&self) -> u64 {
        self.files.iter().map(|f| f.count).sum::<u64>() + self.current
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
            kick_off(call, level, principal, body).await
        }
        Endpoint::Status(id) => match *call.method {
            Method::GET => status(call, &id, principal).await,
            Method::DELETE => cancel(call, &id, principal).await,
            _ => Err(HttpError::method_not_allowed(&["GET", "DELETE"])),
        },
        Endpoint::File(id, name) => {
            if *call.method != Method::GET {
                return Err(HttpError::method_not_allowed(&["GET"]));
            }
            file(call, &id, &name, principal).await
        }
    }
}

/// The kick-off's parameters: the query of a GET, the Parameters body of a POST.
fn parameters(call: &Call<'_>, body: &Bytes) -> Result<Vec<(String, String)>, HttpError> {
    if *call.method == Method::GET {
        return Ok(super::query_pairs(call.uri));
    }
    let mut pairs = super::query_pairs(call.uri);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(pairs);
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("The body is not a FHIR Parameters resource: {e}")))?;
    if doc["resourceType"] != "Parameters" {
        return Err(bad("The body must be a FHIR Parameters resource"));
    }
    for param in doc["parameter"].as_array().cloned().unwrap_or_default() {
        let Some(name) = param["name"].as_str() else {
            return Err(bad("Every parameter needs a name"));
        };
        let value = [
            "valueString",
            "valueInstant",
            "valueDateTime",
            "valueCode",
            "valueUri",
            "valueUrl",
            "valueCanonical",
        ]
        .iter()
        .find_map(|key| param[*key].as_str().map(str::to_owned))
        .or_else(|| {
            param["valueReference"]["reference"]
                .as_str()
                .map(str::to_owned)
        });
        let Some(value) = value else {
            return Err(bad(format!(
                "The parameter {name} has no value this server reads (a string, instant, code or reference)"
            )));
        };
        pairs.push((name.to_owned(), value));
    }
    Ok(pairs)
}

/// The types a site serves searches for, in its plugin table's order.
fn served_types(table: &SiteTable) -> Vec<String> {
    let mut types = Vec::new();
    for plugin in &table.plugins {
        for declared in &plugin.loaded.fhir {
            if !types.contains(&declared.resource_type) {
                types.push(declared.resource_type.clone());
            }
        }
    }
    types
        .into_iter()
        .filter(|t| {
            matches!(
                table.find(Family::Fhir, &Method::GET, &format!("/{t}")),
                Match::Found(..)
            )
        })
        .collect()
}

/// Whether `resource_type` declares the search parameter `name`.
fn has_param(table: &SiteTable, resource_type: &str, name: &str) -> bool {
    table.plugins.iter().any(|p| {
        p.loaded.fhir.iter().any(|d| {
            d.resource_type == resource_type && d.search_params.iter().any(|s| s.name == name)
        })
    })
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
    authorize_route(principal, Family::Fhir, &bound).map_err(|error| {
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
    let (bound, params) = search_route(table, principal, resource_type)?;
    let path = format!("/{resource_type}");
    let asked = Asked {
        method: &Method::GET,
        path: &path,
        query,
    };
    let request = build_request(call, asked, Bytes::new(), &bound, params, Some(principal));
    let result = runtime::call(
        &call.app.registry.engine,
        call.site,
        &bound.plugin,
        request,
        call.request_id,
        false,
    )
    .await;
    count_call(&call.app.telemetry, &call.site.name, &bound, &result);
    match result {
        Ok(outcome) => {
            let body = serde_json::from_slice(&outcome.response.body).unwrap_or(Value::Null);
            Ok((outcome.response.status, body))
        }
        Err(error) => Err(super::call_error(
            &call.site.name,
            call.request_id,
            &bound,
            error,
        )),
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

async fn kick_off(
    call: &Call<'_>,
    level: Level,
    principal: &Principal,
    body: Bytes,
) -> Result<Response, HttpError> {
    let header_text = |name: header::HeaderName| {
        call.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let accept = header_text(header::ACCEPT);
    if !accept
        .split(',')
        .any(|a| a.split(';').next().unwrap_or("").trim() == "application/fhir+json")
    {
        return Err(bad(
            "A Bulk Data kick-off needs the header Accept: application/fhir+json",
        ));
    }
    let prefer = header_text(header::HeaderName::from_static("prefer"));
    if !prefer
        .split([',', ';'])
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
    {
        return Err(bad(
            "A Bulk Data kick-off needs the header Prefer: respond-async",
        ));
    }
    match principal.role {
        Role::Patient => {
            return Err(HttpError::forbidden(
                "Patient tokens cannot start a Bulk Data export",
            ));
        }
        Role::User => {
            let role = principal.acl_role.as_deref().unwrap_or("");
            if !acl::allows(role, "admin/users") {
                return Err(HttpError::forbidden(format!(
                    "A Bulk Data export with a user token needs the access control section admin/users; the role '{role}' does not hold it"
                )));
            }
        }
        Role::System => {}
    }
    let pairs = parameters(call, &body)?;
    let mut asked_types: Option<Vec<String>> = None;
    let mut filters: Vec<String> = Vec::new();
    let mut patients: Vec<String> = Vec::new();
    let mut since: Option<String> = None;
    for (name, value) in &pairs {
        match name.as_str() {
            "_outputFormat" => {
                if !OUTPUT_FORMATS.contains(&value.as_str()) {
                    return Err(bad(format!(
                        "_outputFormat {value:?} is not supported; use one of {}",
                        OUTPUT_FORMATS.join(", ")
                    )));
                }
            }
            "_since" => {
                let parsed = time::OffsetDateTime::parse(
                    value,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|_| {
                    bad(format!(
                        "_since must be a FHIR instant with a time zone (2024-01-31T12:00:00Z), not {value:?}"
                    ))
                })?;
                since = Some(rfc3339(parsed.to_offset(time::UtcOffset::UTC)));
            }
            // OpenEMR reads `type`; the IG names it `_type`.
            "_type" | "type" => {
                let list = asked_types.get_or_insert_with(Vec::new);
                for t in value.split(',').map(str::trim) {
                    if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return Err(bad(format!("{t:?} in _type is not a resource type")));
                    }
                    if !list.iter().any(|x| x == t) {
                        list.push(t.to_owned());
                    }
                }
            }
            "_typeFilter" => filters.push(value.clone()),
            "patient" => {
                if *call.method != Method::POST {
                    return Err(bad(
                        "The patient parameter is taken in a POST kick-off's Parameters body",
                    ));
                }
                if level == Level::System {
                    return Err(bad(
                        "The patient parameter applies to Patient and Group exports only",
                    ));
                }
                let id = value.strip_prefix("Patient/").unwrap_or("");
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(bad(format!(
                        "patient must reference a Patient (Patient/id), not {value:?}"
                    )));
                }
                patients.push(id.to_owned());
            }
            "includeAssociatedData" => {
                return Err(bad(format!(
                    "includeAssociatedData {value:?} is not supported: this server exports no associated data"
                )));
            }
            "_elements" | "organizeOutputBy" | "allowPartialManifests" => {
                return Err(bad(format!("{name} is not supported by this server")));
            }
            other => {
                return Err(bad(format!(
                    "{other} is not a Bulk Data export parameter this server knows"
                )));
            }
        }
    }
    let table = call.app.registry.table(&call.site.name);
    let compartment_only = level != Level::System;
    let in_scope = |t: &str| !compartment_only || !NOT_IN_PATIENT_COMPARTMENT.contains(&t);
    let types: Vec<String> = match asked_types {
        Some(list) => {
            let lenient = prefer
                .split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case("handling=lenient"));
            let openemr = call.settings.compatibility == super::Compatibility::OpenEmr;
            let mut kept = Vec::new();
            for t in list {
                if !in_scope(&t) {
                    return Err(bad(format!(
                        "{t} is outside the patient compartment, so a Patient or Group export cannot hold it"
                    )));
                }
                // A type the token cannot read is refused, never silently dropped; a type
                // the site does not serve is left out only when the client asked for
                // `Prefer: handling=lenient`.
                match search_route(&table, principal, &t) {
                    Ok(_) => kept.push(t),
                    Err(error) if lenient && error.status == StatusCode::BAD_REQUEST => {}
                    // OpenEMR answers 401 for a type the token does not grant.
                    Err(error) if openemr && error.status == StatusCode::FORBIDDEN => {
                        return Err(HttpError {
                            status: StatusCode::UNAUTHORIZED,
                            ..error
                        });
                    }
                    Err(error) => return Err(error),
                }
            }
            kept
        }
        None => served_types(&table)
            .into_iter()
            .filter(|t| in_scope(t) && search_route(&table, principal, t).is_ok())
            .collect(),
    };
    if types.is_empty() {
        return Err(HttpError::forbidden(
            "The access token may read none of the types this site exports",
        ));
    }
    // The patients a Patient or Group export is about.
    if let Level::Group(id) = &level {
        let members = group_members(call, &table, principal, id).await?;
        if patients.is_empty() {
            patients = members;
        } else {
            let set: HashSet<&String> = members.iter().collect();
            if let Some(outside) = patients.iter().find(|p| !set.contains(p)) {
                return Err(bad(format!(
                    "Patient/{outside} is not a member of Group/{id}"
                )));
            }
        }
    }
    let mut plans: Vec<TypePlan> = Vec::new();
    for t in &types {
        let mut query = Vec::new();
        if let Some(since) = &since {
            query.push(("_lastUpdated".to_owned(), format!("gt{since}")));
        }
        let group_without_members = matches!(level, Level::Group(_)) && patients.is_empty();
        if !patients.is_empty() || group_without_members {
            // A Group without members exports nothing: no id matches the empty list.
            let list = if patients.is_empty() {
                "00000000-0000-0000-0000-000000000000".to_owned()
            } else {
                patients.join(",")
            };
            if t == "Patient" {
                query.push(("_id".to_owned(), list));
            } else if has_param(&table, t, "patient") {
                query.push(("patient".to_owned(), list));
            } else {
                // A type with no patient to search by has no part in these patients.
                continue;
            }
        }
        plans.push(TypePlan {
            resource_type: t.clone(),
            query,
        });
    }
    // `_typeFilter`: one search per type, run by the type's own search code.
    for filter in &filters {
        let (t, q) = filter.split_once('?').ok_or_else(|| {
            bad(format!(
                "_typeFilter {filter:?} must be a search: Type?param=value"
            ))
        })?;
        let Some(plan) = plans.iter_mut().find(|p| p.resource_type == t) else {
            return Err(bad(format!(
                "_typeFilter names {t}, which this export does not hold"
            )));
        };
        if plan.query.iter().any(|(k, _)| k.starts_with('~')) {
            return Err(bad(format!(
                "Only one _typeFilter per type is supported; {t} has two"
            )));
        }
        let extra: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        if let Some((k, _)) = extra.iter().find(|(k, _)| {
            k.starts_with('_')
                && !matches!(k.as_str(), "_id" | "_lastUpdated" | "_tag" | "_profile")
        }) {
            return Err(bad(format!(
                "_typeFilter {filter:?}: {k} is a result parameter, not a filter"
            )));
        }
        // Marks the type as filtered (removed before the search).
        plan.query.push(("~filtered".to_owned(), String::new()));
        plan.query.extend(extra);
    }
    for plan in &mut plans {
        plan.query.retain(|(k, _)| k != "~filtered");
    }
    // Every query is checked now, strictly, by the type's own search: a bad filter is a
    // 400 at kick-off rather than an error file later.
    let mut strict = call.headers.clone();
    strict.insert("prefer", HeaderValue::from_static("handling=strict"));
    let checking = Call {
        headers: &strict,
        ..*call
    };
    for plan in &plans {
        let mut query = plan.query.clone();
        query.push(("_summary".to_owned(), "count".to_owned()));
        let (status, body) =
            search(&checking, &table, principal, &plan.resource_type, query).await?;
        if status != 200 {
            return Err(bad(format!(
                "The {} search of this export is refused: {}",
                plan.resource_type,
                outcome_text(&body)
            )));
        }
    }
    let settings = bulk_settings(call.site).await;
    let (active, of_client) = active_jobs(call.site, &principal.client_id)
        .await
        .map_err(db_error)?;
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
    let id = crate::db::comb_uuid();
    let plan = Plan {
        level,
        types: plans,
    };
    let progress = Progress {
        file_no: 1,
        totals: vec![None; plan.types.len()],
        ..Progress::default()
    };
    let request = match call.uri.query() {
        Some(q) => format!("{}{}?{q}", super::family_url(call), call.path),
        None => format!("{}{}", super::family_url(call), call.path),
    };
    let owner = serde_json::to_string(&Owner::of(principal)).map_err(db_error)?;
    let plan_text = serde_json::to_string(&plan).map_err(db_error)?;
    let progress_text = serde_json::to_string(&progress).map_err(db_error)?;
    let transaction_time = rfc3339(time::OffsetDateTime::now_utc());
    on_db!(&call.site.db, |pool| {
        sqlx::query(
            "INSERT INTO bulk_jobs (id, client_id, owner, request, plan, progress, status, transaction_time, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8)",
        )
        .bind(&id)
        .bind(&principal.client_id)
        .bind(&owner)
        .bind(&request)
        .bind(&plan_text)
        .bind(&progress_text)
        .bind(&transaction_time)
        .bind(now())
        .execute(pool)
        .await
        .map_err(db_error)?;
    });
    call.app.telemetry.bulk_job_queued(&call.site.name);
    wake();
    let location = format!("{}/$bulkdata-status?job={id}", super::family_url(call));
    let mut response = fhir_json(
        StatusCode::ACCEPTED,
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational",
                       "diagnostics": format!("The export was accepted; its status is at {location}")}],
        }),
    );
    if let Ok(value) = HeaderValue::try_from(location) {
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, value);
    }
    Ok(response)
}

/// The patients a Group names in `member.entity`, read through the Group plugin as the
/// caller.
async fn group_members(
    call: &Call<'_>,
    table: &SiteTable,
    principal: &Principal,
    id: &str,
) -> Result<Vec<String>, HttpError> {
    let path = format!("/Group/{id}");
    let Match::Found(bound, params) = table.find(Family::Fhir, &Method::GET, &path) else {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "This site serves no Group resources",
        ));
    };
    authorize_route(principal, Family::Fhir, &bound)?;
    let asked = Asked {
        method: &Method::GET,
        path: &path,
        query: Vec::new(),
    };
    let request = build_request(call, asked, Bytes::new(), &bound, params, Some(principal));
    let result = runtime::call(
        &call.app.registry.engine,
        call.site,
        &bound.plugin,
        request,
        call.request_id,
        false,
    )
    .await;
    count_call(&call.app.telemetry, &call.site.name, &bound, &result);
    let outcome =
        result.map_err(|e| super::call_error(&call.site.name, call.request_id, &bound, e))?;
    if outcome.response.status != 200 {
        let body: Value = serde_json::from_slice(&outcome.response.body).unwrap_or(Value::Null);
        return Err(HttpError::new(
            StatusCode::from_u16(outcome.response.status).unwrap_or(StatusCode::NOT_FOUND),
            "group_unreadable",
            format!("Group/{id}: {}", outcome_text(&body)),
        ));
    }
    let group: Value = serde_json::from_slice(&outcome.response.body).unwrap_or(Value::Null);
    Ok(group["member"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter(|m| m["inactive"] != true)
                .filter_map(|m| m["entity"]["reference"].as_str())
                .filter_map(|r| r.rsplit_once("Patient/").map(|(_, id)| id.to_owned()))
                .collect()
        })
        .unwrap_or_default())
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

fn fhir_json(status: StatusCode, body: Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    response
}

/// A job's row as the status and file routes read it.
struct JobRow {
    owner: Owner,
    request: String,
    plan: Plan,
    progress: Progress,
    status: String,
    message: Option<String>,
    transaction_time: String,
    expires_at: Option<i64>,
    last_poll_ms: i64,
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
async fn owned(call: &Call<'_>, id: &str, principal: &Principal) -> Result<JobRow, HttpError> {
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
async fn remove(data_dir: &Path, site: &Site, id: &str) {
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

/// Thousands with commas: `120,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `31% - Observation 120,000/390,000` (ASCII: header values are).
fn progress_text(plan: &Plan, progress: &Progress, status: &str) -> String {
    if status == "queued" {
        return "queued".to_owned();
    }
    let total: u64 = progress.totals.iter().flatten().sum();
    let done = progress.done();
    let known = progress.totals.iter().all(Option::is_some);
    let percent = if known && total > 0 {
        (done * 100 / total).min(99)
    } else if known {
        99
    } else {
        (progress.type_index * 100 / plan.types.len().max(1)).min(99) as u64
    };
    match plan.types.get(progress.type_index) {
        Some(current) => {
            let t = &current.resource_type;
            let of_type = progress.done_of(t) + progress.current;
            match progress.totals.get(progress.type_index).copied().flatten() {
                Some(n) => format!("{percent}% - {t} {}/{}", grouped(of_type), grouped(n)),
                None => format!("{percent}% - {t}"),
            }
        }
        None => format!("{percent}% - finishing"),
    }
}

async fn status(call: &Call<'_>, id: &str, principal: &Principal) -> Result<Response, HttpError> {
    let job = owned(call, id, principal).await?;
    let settings = bulk_settings(call.site).await;
    // A poll sooner than the advised Retry-After after the last one answered: 429.
    let now = now_ms();
    let advised = settings.retry_after_seconds * 1000;
    if job.last_poll_ms > 0 && now - job.last_poll_ms < advised {
        let wait = ((advised - (now - job.last_poll_ms)) as f64 / 1000.0).ceil() as u32;
        let mut error = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "polled_too_soon",
            format!(
                "The status was polled sooner than Retry-After advised; wait {} seconds between polls",
                settings.retry_after_seconds
            ),
        );
        error.retry_after = Some(wait.max(1));
        return Err(error);
    }
    on_db!(&call.site.db, |pool| {
        sqlx::query("UPDATE bulk_jobs SET last_poll_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map_err(db_error)?;
    });
    match job.status.as_str() {
        "queued" | "running" => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::ACCEPTED;
            let headers = response.headers_mut();
            if let Ok(value) =
                HeaderValue::try_from(progress_text(&job.plan, &job.progress, &job.status))
            {
                headers.insert("x-progress", value);
            }
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(settings.retry_after_seconds),
            );
            Ok(response)
        }
        "done" => {
            let files = super::family_url(call);
            let url = |name: &str| format!("{files}/$bulkdata-file/{id}/{name}");
            let output: Vec<Value> = job
                .progress
                .files
                .iter()
                .map(|f| json!({"type": f.resource_type, "url": url(&f.name), "count": f.count}))
                .collect();
            let error: Vec<Value> = if job.progress.errors.is_empty() {
                vec![]
            } else {
                vec![json!({
                    "type": "OperationOutcome",
                    "url": url("errors.ndjson"),
                    "count": job.progress.errors.len(),
                })]
            };
            let manifest = json!({
                "transactionTime": job.transaction_time,
                "request": job.request,
                "requiresAccessToken": true,
                "output": output,
                "deleted": [],
                "error": error,
            });
            let mut response = Response::new(Body::from(manifest.to_string()));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(at) = job
                .expires_at
                .and_then(|at| time::OffsetDateTime::from_unix_timestamp(at).ok())
                && let Ok(text) = at.format(&time::format_description::well_known::Rfc2822)
                && let Ok(value) = HeaderValue::try_from(text.replace("+0000", "GMT"))
            {
                headers.insert(header::EXPIRES, value);
            }
            Ok(response)
        }
        _ => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "export_failed",
            format!(
                "The export failed: {}",
                job.message.as_deref().unwrap_or("no reason was recorded")
            ),
        )),
    }
}

async fn cancel(call: &Call<'_>, id: &str, principal: &Principal) -> Result<Response, HttpError> {
    let job = owned(call, id, principal).await?;
    remove(&call.app.config.data_dir, call.site, id).await;
    if job.status == "queued" || job.status == "running" {
        call.app
            .telemetry
            .bulk_job_finished(&call.site.name, "cancelled");
    }
    Ok(fhir_json(
        StatusCode::ACCEPTED,
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational",
                       "diagnostics": "The export was cancelled and its files removed"}],
        }),
    ))
}

async fn file(
    call: &Call<'_>,
    id: &str,
    name: &str,
    principal: &Principal,
) -> Result<Response, HttpError> {
    let job = owned(call, id, principal).await?;
    let listed = job.status == "done"
        && (job.progress.files.iter().any(|f| f.name == name)
            || (name == "errors.ndjson" && !job.progress.errors.is_empty()));
    if !listed {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("The export has no file {name}"),
        ));
    }
    let path = job_dir(&call.app.config.data_dir, &call.site.name, id).join(name);
    let file = std::fs::File::open(&path).map_err(|_| {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("The export's file {name} is gone"),
        )
    })?;
    let gzip = call
        .headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|e| {
            let mut parts = e.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let refused = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    == Some(0.0)
            });
            coding.eq_ignore_ascii_case("gzip") && !refused
        });
    let (sender, receiver) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || stream_file(file, gzip, sender));
    let mut response = Response::new(Body::from_stream(Chunks(receiver)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+ndjson"),
    );
    if gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Ok(response)
}

type Chunk = Result<Bytes, std::io::Error>;

/// Writes into a channel, chunk by chunk (for a blocking thread).
struct ChannelWriter(tokio::sync::mpsc::Sender<Chunk>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends a file in 64 KiB chunks, gzipped or not; memory stays at a few chunks.
fn stream_file(mut file: std::fs::File, gzip: bool, sender: tokio::sync::mpsc::Sender<Chunk>) {
    use std::io::{Read, Write};
    let mut buffer = vec![0u8; 64 * 1024];
    let result = (|| -> std::io::Result<()> {
        let writer = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(sender.clone()));
        let mut out: Box<dyn Write> = if gzip {
            Box::new(flate2::write::GzEncoder::new(
                writer,
                flate2::Compression::fast(),
            ))
        } else {
            Box::new(writer)
        };
        loop {
            let n = file.read(&mut buffer)?;
            if n == 0 {
                break;
            }
            out.write_all(&buffer[..n])?;
        }
        out.flush()?;
        drop(out);
        Ok(())
    })();
    if let Err(error) = result {
        let _ = sender.blocking_send(Err(error));
    }
}

/// A body stream over a channel of chunks.
struct Chunks(tokio::sync::mpsc::Receiver<Chunk>);

impl futures_core::Stream for Chunks {
    type Item = Chunk;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        self.0.poll_recv(cx)
    }
}

// ---------------------------------------------------------------------------------------
// The worker.

static WAKE: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

/// Wakes this process's worker (a job was queued).
fn wake() {
    WAKE.notify_waiters();
}

/// Starts this process's export worker, which lives as long as the `/apis` state.
pub(super) fn start(api: &Arc<ApiState>) {
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
    let mut last_sweep = 0;
    loop {
        {
            let Some(api) = api.upgrade() else {
                return;
            };
            let sweep = now() - last_sweep >= 10;
            if sweep {
                last_sweep = now();
            }
            for site in api.app.sites.opened() {
                if sweep {
                    sweep_expired(&api, &site).await;
                }
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

/// Removes the site's expired exports, rows and files: the background service
/// `bulk_file_expiry` (host/src/api/background) calls it.
pub(super) async fn expire_files(api: &ApiState, site: &Site) {
    sweep_expired(api, site).await;
}

async fn sweep_expired(api: &ApiState, site: &Site) {
    let expired: Result<Vec<String>, sqlx::Error> = on_db!(&site.db, |pool| {
        sqlx::query("SELECT id FROM bulk_jobs WHERE expires_at IS NOT NULL AND expires_at <= $1")
            .bind(now())
            .fetch_all(pool)
            .await
            .map(|rows| rows.iter().filter_map(|r| r.try_get("id").ok()).collect())
    });
    for id in expired.unwrap_or_default() {
        remove(&api.app.config.data_dir, site, &id).await;
    }
}

/// A leased job.
struct Leased {
    id: String,
    owner: Owner,
    plan: Plan,
    progress: Progress,
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

/// Why a job stopped before its end.
enum Stop {
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

/// The query of a Bundle's `next` link.
fn next_query(bundle: &Value) -> Option<Vec<(String, String)>> {
    let url = bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()?;
    let (_, query) = url.split_once('?')?;
    Some(
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    )
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

/// Runs (or resumes) a leased job to its end.
async fn export(
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
        if progress.totals[progress.type_index].is_none() {
            let mut query = type_plan.query.clone();
            query.push(("_summary".to_owned(), "count".to_owned()));
            match search(&call, &table, &principal, &t, query).await {
                Ok((200, body)) => {
                    progress.totals[progress.type_index] = body["total"].as_u64().or(Some(0));
                }
                Ok((_, body)) => {
                    progress.errors.push(format!(
                        "{t} could not be exported: {}",
                        outcome_text(&body)
                    ));
                    next_type(progress);
                    renew(site, me, &job.id, lease, progress).await?;
                    continue;
                }
                Err(error) => {
                    progress
                        .errors
                        .push(format!("{t} could not be exported: {}", error.message));
                    next_type(progress);
                    renew(site, me, &job.id, lease, progress).await?;
                    continue;
                }
            }
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
                let (status, bundle) =
                    match search(&call, &table, &principal, &t, query.clone()).await {
                        Ok(found) => found,
                        Err(error) => (
                            error.status.as_u16(),
                            json!({"issue": [{"diagnostics": error.message}]}),
                        ),
                    };
                if status != 200 {
                    progress.errors.push(format!(
                        "{t} stopped after {} resources: {}",
                        progress.done_of(&t) + progress.current,
                        outcome_text(&bundle)
                    ));
                    finish_file(&mut writer, progress, &t, &name, &file_path)?;
                    break 'files;
                }
                let mut written = 0u64;
                for entry in bundle["entry"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
                    let mode = entry["search"]["mode"].as_str().unwrap_or("match");
                    if mode != "match" || !entry["resource"].is_object() {
                        continue;
                    }
                    use std::io::Write;
                    serde_json::to_writer(&mut writer, &entry["resource"])
                        .map_err(|e| Stop::Failed(format!("{name} could not be written: {e}")))?;
                    writer
                        .write_all(b"\n")
                        .map_err(|e| Stop::Failed(format!("{name} could not be written: {e}")))?;
                    written += 1;
                }
                progress.current += written;
                api.app
                    .telemetry
                    .bulk_resources_exported(&site.name, &t, written);
                let next = next_query(&bundle);
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
                    continue 'files;
                }
                renew(site, me, &job.id, lease, progress).await?;
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

    #[test]
    fn pages_divide_files() {
        assert_eq!(page_size(100_000), 200);
        assert_eq!(page_size(3), 3);
        assert_eq!(page_size(250), 125);
        assert_eq!(grouped(120_000), "120,000");
        assert_eq!(grouped(999), "999");
    }
}
