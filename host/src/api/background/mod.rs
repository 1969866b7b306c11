//! Background services: OpenEMR's routes below a site's `/api` (§2 rows 95–98), served
//! by the host, whose scheduler ([`scheduler`]) runs the services.
//!
//! - `GET /background_service` (`user/background_service.s`, ACL `admin/super`): the
//!   services, a bare list (`_sort`, `_limit`, `_offset`);
//! - `GET /background_service/{name}` (`user/background_service.r`, `admin/super`): one,
//!   or 404 `Service not found`;
//! - `POST /background_service/{name}/run` (`user/run.c`, `admin/super`): runs it now
//!   (`{"force": true}` even when it is not due or runs only by hand): 200 `executed`,
//!   409 `already_running` / `not_due` / `skipped`, 500 `error`;
//! - `POST /background_service/$run` (`user/background_service.$run`, any staff user):
//!   runs the services that are due, 200 `{"results": [...]}`.
//!
//! The scopes are in the site's scope catalogue, so a token can carry them (OpenEMR's
//! cannot). Checks run in the dispatcher's order: token, family, route (404/405), scope,
//! ACL, body; a refused request writes nothing.

use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::settings::Compatibility;
use super::{Call, authorize_family, read_body};
use crate::audit::Record;
use crate::auth::acl;
use crate::auth::scopes::Requirement;
use crate::auth::tokens;
use crate::error::HttpError;

pub(crate) mod scheduler;
mod services;

use scheduler::{ServiceRow, Status};

/// The ACL section the list, read and run routes need (OpenEMR's `admin/super`).
const ACL: &str = "admin/super";

/// A path below `/api` that names a background-service route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Path {
    /// `/background_service`.
    List,
    /// `/background_service/$run`.
    RunDue,
    /// `/background_service/{name}`.
    One(String),
    /// `/background_service/{name}/run`.
    Run(String),
}

impl Path {
    /// The route `path` (below `/api`) names, if it is one of these.
    pub(super) fn of(path: &str) -> Option<Path> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["background_service"] => Some(Path::List),
            ["background_service", "$run"] => Some(Path::RunDue),
            ["background_service", name] if !name.is_empty() => Some(Path::One((*name).to_owned())),
            ["background_service", name, "run"] if !name.is_empty() => {
                Some(Path::Run((*name).to_owned()))
            }
            _ => None,
        }
    }

    /// The route's template, as the metrics and the log name it.
    pub(super) fn pattern(&self) -> &'static str {
        match self {
            Path::List => "/api/background_service",
            Path::RunDue => "/api/background_service/$run",
            Path::One(_) => "/api/background_service/:name",
            Path::Run(_) => "/api/background_service/:name/run",
        }
    }

    /// The methods the path answers. `GET /background_service/$run` is the read of a
    /// service named `$run` (none), as in OpenEMR, whose `:name` matches it.
    fn methods(&self) -> &'static [Method] {
        match self {
            Path::List | Path::One(_) => &[Method::GET],
            Path::Run(_) => &[Method::POST],
            Path::RunDue => &[Method::GET, Method::POST],
        }
    }

    /// The scope (below `user/`) and the ACL the route needs with `method`.
    fn needs(&self, method: &Method) -> (&'static str, Option<&'static str>) {
        match (self, method) {
            (Path::List, _) => ("background_service.s", Some(ACL)),
            (Path::RunDue, &Method::POST) => ("background_service.$run", None),
            (Path::One(_) | Path::RunDue, _) => ("background_service.r", Some(ACL)),
            (Path::Run(_), _) => ("run.c", Some(ACL)),
        }
    }
}

/// Serves a background-service route.
pub(super) async fn serve(
    call: &Call<'_>,
    path: Path,
    body: axum::body::Body,
    audit: &mut Record,
) -> Result<Response, HttpError> {
    let app = call.app;
    let openemr = call.settings.compatibility == Compatibility::OpenEmr;
    let token = tokens::bearer(
        call.headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )?;
    let principal = tokens::authenticate(call.site, &app.base_url, token).await?;
    audit.user_id = Some(principal.subject.clone());
    audit.client_id = Some(principal.client_id.clone());
    authorize_family(&principal, call.family)?;
    let methods = path.methods();
    if !methods.contains(call.method) {
        if openemr {
            return Err(HttpError::no_route(call.uri.path()));
        }
        let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
        return Err(HttpError::method_not_allowed(&names));
    }
    let (scope, acl) = path.needs(call.method);
    let needed = Requirement::parse(scope)
        .expect("the routes' scopes are well formed")
        .in_context("user");
    if !principal.scopes.allows(&needed) {
        let mut error = HttpError::insufficient_scope(&needed.to_string());
        // OpenEMR answers a missing route scope with 401, as the plugin routes do.
        if openemr {
            error.status = StatusCode::UNAUTHORIZED;
        }
        return Err(error);
    }
    if let Some(acl) = acl {
        let role = principal.acl_role.as_deref().unwrap_or("");
        if !acl::allows(role, acl) {
            return Err(HttpError::forbidden(format!(
                "The role '{role}' does not hold the access control section {acl}"
            )));
        }
    }
    let body = read_body(body, call.headers, app.config.max_body_bytes).await?;
    let site = call.site;
    let db = |error: sqlx::Error| {
        tracing::error!(site = %site.name, "background services: {error}");
        HttpError::internal(error)
    };
    match (path, *call.method == Method::GET) {
        (Path::List, _) => {
            let query = super::query_pairs(call.uri);
            let window = if openemr {
                // OpenEMR's list reads no query.
                Window::default()
            } else {
                match Window::of(&query) {
                    Ok(window) => window,
                    Err(refused) => return Ok(*refused),
                }
            };
            let mut rows = scheduler::list(site).await.map_err(db)?;
            window.sort(&mut rows);
            let rows: Vec<Value> = rows
                .iter()
                .skip(window.offset)
                .take(window.limit.unwrap_or(usize::MAX))
                .map(public)
                .collect();
            Ok(answer(StatusCode::OK, Value::Array(rows)))
        }
        (Path::One(name), _) => match scheduler::get(site, &name).await.map_err(db)? {
            Some(row) => Ok(answer(StatusCode::OK, public(&row))),
            None => Err(not_found(&name)),
        },
        (Path::RunDue, true) => Err(not_found("$run")),
        (Path::Run(name), _) => {
            let force = force(&body, openemr)?;
            let Some(row) = scheduler::get(site, &name).await.map_err(db)? else {
                return Err(not_found(&name));
            };
            let status = scheduler::run_one(call.api, site, &row, force).await;
            let code = match status {
                Status::Executed => StatusCode::OK,
                Status::Error => StatusCode::INTERNAL_SERVER_ERROR,
                Status::AlreadyRunning | Status::NotDue | Status::Skipped => StatusCode::CONFLICT,
            };
            Ok(answer(
                code,
                json!({"service": row.name, "status": status.name()}),
            ))
        }
        (Path::RunDue, false) => {
            // OpenEMR's runner: every service with an interval says how it went; only the
            // due ones run.
            let rows = scheduler::list(site).await.map_err(db)?;
            let mut results = Vec::new();
            for row in rows.iter().filter(|row| row.execute_interval > 0) {
                let status = scheduler::run_one(call.api, site, row, false).await;
                results.push(json!({"name": row.name, "status": status.name()}));
            }
            Ok(answer(StatusCode::OK, json!({"results": results})))
        }
    }
}

/// A JSON answer.
fn answer(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// 404 with OpenEMR's `error` text.
fn not_found(name: &str) -> HttpError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "Service not found",
        format!("No background service is named {name:?} on this site"),
    )
}

/// A 400 with OpenEMR's `error` text for a body that is not JSON.
fn invalid_json(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, "Invalid JSON payload", message)
}

/// The run's `force`: `true` runs a service that is not due or runs only by hand. The
/// body is optional; it must be JSON. Hearth also refuses a body that is not an object
/// and a `force` that is not a boolean, which OpenEMR reads as no force (and so does a
/// site in OpenEMR compatibility).
fn force(body: &Bytes, openemr: bool) -> Result<bool, HttpError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(false);
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| invalid_json(format!("The body is not JSON: {error}")))?;
    let Some(object) = value.as_object() else {
        return if openemr {
            Ok(false)
        } else {
            Err(invalid_json(
                "The body must be a JSON object such as {\"force\": true}",
            ))
        };
    };
    match object.get("force") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(force)) => Ok(*force),
        Some(_) if openemr => Ok(false),
        Some(_) => Err(invalid_json("force must be true or false")),
    }
}

/// A service as the routes show it: OpenEMR's fields (never `function`), then the last
/// run Hearth records. Times are UTC, `YYYY-MM-DD hh:mm:ss` as OpenEMR's `next_run`.
fn public(row: &ServiceRow) -> Value {
    json!({
        "name": row.name,
        "title": row.title,
        "active": row.active,
        "running": row.running,
        "execute_interval": row.execute_interval,
        "next_run": datetime(row.next_run),
        "sort_order": row.sort_order,
        "lock_expires_at": row.lock_expires_at.map(datetime),
        "last_run": row.last_run_at.map(datetime),
        "last_status": row.last_status,
        "last_message": row.last_message,
        "run_count": row.run_count,
    })
}

fn datetime(seconds: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The list's order and page.
#[derive(Debug, Default)]
struct Window {
    /// `(field, descending)` in order.
    sort: Vec<(&'static str, bool)>,
    offset: usize,
    limit: Option<usize>,
}

/// The fields `_sort` takes.
const SORT_FIELDS: &[&str] = &[
    "name",
    "title",
    "active",
    "running",
    "execute_interval",
    "next_run",
    "sort_order",
];

impl Window {
    fn of(query: &[(String, String)]) -> Result<Window, Box<Response>> {
        let mut window = Window::default();
        for (key, value) in query {
            match key.as_str() {
                "_sort" => {
                    for item in value.split(',').filter(|s| !s.is_empty()) {
                        let (field, descending) = match item.strip_prefix('-') {
                            Some(field) => (field, true),
                            None => (item, false),
                        };
                        let Some(field) = SORT_FIELDS.iter().copied().find(|f| *f == field) else {
                            return Err(invalid(
                                "_sort",
                                "InArray::NOT_IN_ARRAY",
                                format!(
                                    "_sort cannot order by {field:?}; it takes a comma list of {} (a leading - sorts descending)",
                                    SORT_FIELDS.join(", ")
                                ),
                            ));
                        };
                        window.sort.push((field, descending));
                    }
                }
                "_offset" | "_limit" => {
                    let n = if value.is_empty() {
                        0
                    } else {
                        value.parse::<usize>().map_err(|_| {
                            invalid(
                                if key == "_offset" {
                                    "_offset"
                                } else {
                                    "_limit"
                                },
                                "Numeric::NOT_NUMERIC",
                                format!("{key} must be numeric: a whole number, 0 or more"),
                            )
                        })?
                    };
                    if key == "_offset" {
                        window.offset = n;
                    } else if n > 0 {
                        window.limit = Some(n);
                    }
                }
                _ => {}
            }
        }
        Ok(window)
    }

    fn sort(&self, rows: &mut [ServiceRow]) {
        use std::cmp::Ordering;
        let compare = |a: &ServiceRow, b: &ServiceRow, field: &str| -> Ordering {
            match field {
                "name" => a.name.cmp(&b.name),
                "title" => a.title.cmp(&b.title),
                "active" => a.active.cmp(&b.active),
                "running" => a.running.cmp(&b.running),
                "execute_interval" => a.execute_interval.cmp(&b.execute_interval),
                "next_run" => a.next_run.cmp(&b.next_run),
                _ => a.sort_order.cmp(&b.sort_order),
            }
        };
        rows.sort_by(|a, b| {
            self.sort
                .iter()
                .map(|(field, descending)| {
                    let order = compare(a, b, field);
                    if *descending { order.reverse() } else { order }
                })
                .find(|order| *order != Ordering::Equal)
                .unwrap_or(Ordering::Equal)
        });
    }
}

/// A 400 in the standard API's bare validation shape: `{field: {rule: message}}`.
fn invalid(field: &str, rule: &str, message: String) -> Box<Response> {
    Box::new(answer(
        StatusCode::BAD_REQUEST,
        json!({ field: { rule: message } }),
    ))
}
