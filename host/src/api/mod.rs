//! Dispatch of `/apis/{site}/{api|portal|fhir}/...` into plugins.
//!
//! In order, as OpenEMR checks: the site; a CORS preflight is answered there (no token,
//! whatever the path); the token (401), unless the route is anonymous; the token's role
//! and API scope against the family (403); the route (404 / 405) — so a caller without a
//! token learns nothing about which paths exist; the route's scope (403 naming it) and
//! the ACL of staff users (403); then the plugin call in its own transaction. Every
//! request but a preflight is audited, and every answer carries CORS headers for an
//! allowed `Origin`.
//!
//! The site's `/apis` settings ([`settings`]) decide the CORS origins, the list cap and
//! whether the site answers OpenEMR's own statuses (its compatibility setting); the host
//! passes the last two to plugins in request headers the client cannot set.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use http_body_util::BodyExt;

use crate::audit::Record;
use crate::auth::acl;
use crate::auth::scopes::{Access, Perms, Requirement};
use crate::auth::tokens::{self, Principal, Role};
use crate::error::{Family, HttpError};
use crate::plugins::loader::RouteDef;
use crate::plugins::runtime::{self, CallError};
use crate::plugins::{Bound, Match, bindings};
use crate::sites::Site;
use crate::state::AppState;
use crate::telemetry::{RequestId, Served};

pub(crate) mod background;
mod bulk;
pub mod cors;
mod include;
#[cfg(feature = "natives")]
pub mod native;
pub mod settings;

use settings::{ApiSettings, Compatibility};

/// Request headers passed to plugins.
const PASSED_HEADERS: &[&str] = &[
    "content-type",
    "accept",
    "prefer",
    "if-match",
    "if-none-match",
    "if-modified-since",
];

/// Response headers a plugin may not set (the host owns them), besides every
/// `access-control-*` and `hearth-*` header.
const HOST_HEADERS: &[&str] = &[
    "content-length",
    "transfer-encoding",
    "connection",
    "set-cookie",
    "strict-transport-security",
    "x-request-id",
];

/// The state of the `/apis` routes: what every router shares, and in benchmark builds
/// (feature `natives`) the native handlers that replace plugin routes.
pub struct ApiState {
    /// What every router shares.
    pub app: Arc<AppState>,
    /// Native replacements of plugin routes (the benchmark's baseline).
    #[cfg(feature = "natives")]
    pub natives: native::Natives,
}

/// The `/apis` routes.
pub fn router(
    app: Arc<AppState>,
    #[cfg(feature = "natives")] natives: native::Natives,
) -> axum::Router {
    let state = Arc::new(ApiState {
        app,
        #[cfg(feature = "natives")]
        natives,
    });
    bulk::start(&state);
    background::scheduler::start(&state);
    axum::Router::new()
        .route("/apis/{site}/{*rest}", axum::routing::any(dispatch))
        .route("/apis/{site}", axum::routing::any(no_family))
        .with_state(state)
}

/// A request as native handlers (the benchmark's baseline) see it.
pub struct NativeRequest {
    /// The site.
    pub site: Arc<Site>,
    /// Route parameters in template order.
    pub params: Vec<String>,
    /// The caller.
    pub principal: Option<Arc<Principal>>,
    /// The query string's pairs, decoded.
    pub query: Vec<(String, String)>,
    /// The request body.
    pub body: Bytes,
    /// The path below the family root (`/patient`), as a plugin sees it.
    pub path: String,
    /// The family root's public URL (`https://host/apis/default/api`), as a plugin sees it.
    pub base_url: String,
}

/// A boxed, sendable future.
pub type BoxedFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

#[cfg(feature = "natives")]
use native::NativeHandler as NativeFn;
/// Without the feature no native handler exists; the type only keeps one code path.
#[cfg(not(feature = "natives"))]
type NativeFn = fn(NativeRequest) -> BoxedFuture<Result<bindings::Response, HttpError>>;

/// The native handler registered in place of a plugin route, if any.
#[cfg(feature = "natives")]
fn native_for(call: &Call<'_>, bound: &Bound, index: u32) -> Option<NativeFn> {
    call.api
        .natives
        .get(&(bound.plugin.loaded.name.clone(), index))
        .cloned()
}

/// The native handler registered in place of a plugin route: none without the feature.
#[cfg(not(feature = "natives"))]
fn native_for(_: &Call<'_>, _: &Bound, _: u32) -> Option<NativeFn> {
    None
}

fn family_of(name: &str) -> Option<Family> {
    match name {
        "api" => Some(Family::Api),
        "portal" => Some(Family::Portal),
        "fhir" => Some(Family::Fhir),
        _ => None,
    }
}

/// The response header (and optional request header) carrying the request's correlation id.
const REQUEST_ID: &str = "x-request-id";

/// The request's correlation id: the one the server's middleware gave the request (see
/// [`crate::telemetry::request_id`]), else made here the same way. Plugins read it with
/// `util.request-id`; it is sent back in `x-request-id`.
fn request_id(given: Option<RequestId>, headers: &HeaderMap) -> String {
    match given {
        Some(RequestId(id)) => id,
        None => crate::telemetry::request_id(
            headers.get(REQUEST_ID).and_then(|v| v.to_str().ok()),
            crate::db::comb_uuid,
        ),
    }
}

/// Handles every `/apis/{site}/...` request.
async fn dispatch(
    State(api): State<Arc<ApiState>>,
    Path((site_name, rest)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
    uri: axum::http::Uri,
    given_id: Option<axum::Extension<RequestId>>,
    body: Body,
) -> Response {
    let app = &api.app;
    let started = Instant::now();
    let (family_name, sub_path) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    let sub_path = format!("/{sub_path}");
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // What the request line and the metrics say of it; the route stays `unmatched` until
    // a plugin route matches.
    let mut served = Served {
        site: None,
        family: Some(family_label(
            family_of(family_name).unwrap_or(Family::Other),
        )),
        route: Some("unmatched".to_owned()),
        plugin: None,
    };
    let Some(site) = app.sites.get(&site_name).await else {
        let family = family_of(family_name).unwrap_or(Family::Other);
        let mut response = if method == Method::OPTIONS {
            cors::preflight()
        } else {
            HttpError::unknown_site(&site_name).render(family)
        };
        response.extensions_mut().insert(served);
        // Nothing of a site is shown: any origin may read that there is none.
        return cors::allow(response, origin.as_deref(), &settings::Cors::Any);
    };
    served.site = Some(site.name.clone());
    let settings = settings::get(&site).await;
    if method == Method::OPTIONS {
        // A preflight carries no token; it is answered alike for every path.
        let mut response = cors::preflight();
        response.extensions_mut().insert(served);
        return cors::allow(response, origin.as_deref(), &settings.cors);
    }
    // An unknown family is a path no route serves: after the token, a 404.
    let family = family_of(family_name).unwrap_or(Family::Other);
    let mut audit = Record::new(&site.name, method.as_str(), uri.path());
    let request_id = request_id(given_id.map(|axum::Extension(id)| id), &headers);
    let call = Call {
        api: &api,
        app,
        site: &site,
        settings: &settings,
        family,
        method: &method,
        path: &sub_path,
        headers: &headers,
        uri: &uri,
        request_id: &request_id,
    };
    let result = handle(&call, body, &mut audit, &mut served).await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => error.render(family),
    };
    response.extensions_mut().insert(served);
    if let Ok(value) = HeaderValue::try_from(request_id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    audit.status = response.status().as_u16();
    audit.duration_us = started.elapsed().as_micros() as u64;
    app.audit.record(audit);
    cors::allow(response, origin.as_deref(), &settings.cors)
}

/// One request on its way to a plugin.
struct Call<'a> {
    #[cfg_attr(not(feature = "natives"), allow(dead_code))]
    api: &'a ApiState,
    app: &'a AppState,
    site: &'a Arc<Site>,
    settings: &'a ApiSettings,
    family: Family,
    method: &'a Method,
    path: &'a str,
    headers: &'a HeaderMap,
    uri: &'a axum::http::Uri,
    request_id: &'a str,
}

/// The family as a metrics label.
fn family_label(family: Family) -> &'static str {
    match family {
        Family::Api => "api",
        Family::Portal => "portal",
        Family::Fhir => "fhir",
        _ => "other",
    }
}

async fn handle(
    call: &Call<'_>,
    body: Body,
    audit: &mut Record,
    served: &mut Served,
) -> Result<Response, HttpError> {
    let app = call.app;
    let site = call.site;
    let openemr = call.settings.compatibility == Compatibility::OpenEmr;
    let bulk_endpoint = (call.family == Family::Fhir)
        .then(|| bulk::Endpoint::of(call.path, call.uri.query()))
        .flatten();
    // FHIR answers JSON only: a `_format` or `Accept` admitting none is a 406 (a Bulk Data
    // file is ndjson), on every site (the compatibility setting leaves FHIR alone).
    if call.family == Family::Fhir {
        let also = match &bulk_endpoint {
            Some(bulk::Endpoint::File(..)) => crate::formats::NDJSON_TYPES,
            // A Binary read answers the document's bytes in their own type.
            None if *call.method == Method::GET && call.path.starts_with("/Binary/") => {
                crate::formats::ANY_TYPE
            }
            _ => &[],
        };
        crate::formats::negotiate(call.uri.query(), call.headers, also)?;
    }
    if let Some(endpoint) = bulk_endpoint {
        served.route = Some(endpoint.pattern().to_owned());
        let token = tokens::bearer(
            call.headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )?;
        let principal = tokens::authenticate(site, &app.base_url, token).await?;
        audit.user_id = Some(principal.subject.clone());
        audit.client_id = Some(principal.client_id.clone());
        let body = read_body(body, call.headers, app.config.max_body_bytes).await?;
        return bulk::serve(call, endpoint, &principal, body).await;
    }
    if call.family == Family::Api
        && let Some(path) = background::Path::of(call.path)
    {
        served.route = Some(path.pattern().to_owned());
        return background::serve(call, path, body, audit).await;
    }
    let table = app.registry.table(&site.name);
    let found = table.find(call.family, call.method, call.path);
    if let Match::Found(bound, _) = &found {
        // Named even when the token is refused: the metrics and the log see which route.
        served.plugin = Some(bound.plugin.loaded.name.clone());
        // The template as clients see it below the site: `/api/patient/:puuid`.
        served.route = Some(format!(
            "/{}{}",
            family_label(call.family),
            bound.def().path
        ));
    }
    let anonymous = matches!(&found, Match::Found(bound, _) if bound.def().anonymous);
    let principal = if anonymous {
        None
    } else {
        // The token comes before the route, as in OpenEMR: without a valid token every
        // path answers 401 alike.
        let token = tokens::bearer(
            call.headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        )?;
        let principal = tokens::authenticate(site, &app.base_url, token).await?;
        audit.user_id = Some(principal.subject.clone());
        audit.client_id = Some(principal.client_id.clone());
        audit.patient_id = principal.patient.clone();
        authorize_family(&principal, call.family)?;
        Some(principal)
    };
    let (bound, params) = match found {
        Match::Found(bound, params) => (bound, params),
        // OpenEMR has no 405: another method on a known path is a route it lacks.
        Match::WrongMethod(_) if openemr => return Err(HttpError::no_route(call.uri.path())),
        Match::WrongMethod(allowed) => {
            let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            return Err(HttpError::method_not_allowed(&names));
        }
        Match::NotFound => return Err(HttpError::no_route(call.uri.path())),
    };
    let def = bound.def();
    audit.plugin = Some(bound.plugin.loaded.name.clone());
    if let Some(principal) = &principal {
        authorize_route(principal, call.family, &bound, &params).map_err(|error| {
            // OpenEMR answers a missing route scope with 401 "Unauthorized".
            if openemr && error.code == "insufficient_scope" {
                HttpError {
                    status: StatusCode::UNAUTHORIZED,
                    ..error
                }
            } else {
                error
            }
        })?;
    }
    if audit.patient_id.is_none() {
        audit.patient_id = patient_param(&bound, &params);
    }
    let body = read_body(body, call.headers, app.config.max_body_bytes).await?;
    if app.config.audit_bodies {
        audit.request_body = Some(String::from_utf8_lossy(&body).into_owned());
    }
    // A GET writes nothing, except a standard API operation OpenEMR routes as a GET
    // (`GET /api/patient/:puuid/insurance/$swap-insurance`): its scope names the
    // operation, so no read scope grants it, and the plugin makes it idempotent.
    let may_write = *call.method != Method::GET || writes_on_get(call.family, def);
    let response = match native_for(call, &bound, def.index) {
        Some(native) => {
            native(NativeRequest {
                site: site.clone(),
                params,
                principal,
                query: query_pairs(call.uri),
                body,
                path: call.path.to_owned(),
                base_url: family_url(call),
            })
            .await?
        }
        None => {
            let asked = Asked {
                method: call.method,
                path: call.path,
                query: query_pairs(call.uri),
            };
            let request = build_request(call, asked, body, &bound, params, principal.as_deref());
            let result = runtime::call(
                &app.registry.engine,
                site,
                &bound.plugin,
                request,
                call.request_id,
                may_write,
            )
            .await;
            count_call(&app.telemetry, &site.name, &bound, &result);
            match result {
                Ok(outcome) if call.family == Family::Fhir => {
                    include::append(call, principal.as_deref(), outcome.response).await
                }
                Ok(outcome) => outcome.response,
                Err(error) => {
                    return Err(call_error(&site.name, call.request_id, &bound, error));
                }
            }
        }
    };
    if app.config.audit_bodies {
        audit.response_body = Some(String::from_utf8_lossy(&response.body).into_owned());
    }
    Ok(into_http(response))
}

/// True for a standard API route that OpenEMR serves as a GET although it changes data: an
/// operation (`$swap-insurance`), whose scope is the operation's own.
fn writes_on_get(family: Family, def: &RouteDef) -> bool {
    family == Family::Api
        && matches!(
            def.requirement,
            Some(Requirement {
                access: Access::Operation(_),
                ..
            })
        )
}

/// The token's role and API scope against the family: `/api` is for staff tokens with
/// `api:oemr`, `/portal` for patient tokens with `api:port`.
fn authorize_family(principal: &Principal, family: Family) -> Result<(), HttpError> {
    match family {
        Family::Api => {
            if principal.role != Role::User {
                return Err(HttpError::forbidden(format!(
                    "A {} token cannot call the standard API",
                    principal.role.name()
                )));
            }
            if !principal.scopes.has("api:oemr") {
                return Err(HttpError::insufficient_scope("api:oemr"));
            }
        }
        Family::Portal => {
            if principal.role != Role::Patient {
                return Err(HttpError::forbidden(format!(
                    "A {} token cannot call the patient portal API",
                    principal.role.name()
                )));
            }
            if !principal.scopes.has("api:port") {
                return Err(HttpError::insufficient_scope("api:port"));
            }
        }
        Family::Fhir | Family::Other => {}
    }
    Ok(())
}

/// The route's scope (in the caller's context) and the ACL of staff users.
fn authorize_route(
    principal: &Principal,
    family: Family,
    bound: &Bound,
    params: &[String],
) -> Result<(), HttpError> {
    let def = bound.def();
    let scopes = &principal.scopes;
    let context = match family {
        Family::Api => "user",
        Family::Portal => "patient",
        Family::Fhir | Family::Other => match principal.role {
            Role::Patient => {
                // A patient reads their chart: a FHIR route that creates, updates or
                // deletes is never theirs; a POST that only reads (`_search`) or runs an
                // operation (`$docref`) is, under its `patient/` scope like any read.
                if def.method != Method::GET && !reads_only(def.requirement.as_ref()) {
                    return Err(HttpError::forbidden("Patients cannot write FHIR resources"));
                }
                "patient"
            }
            Role::System => "system",
            Role::User => match &def.requirement {
                Some(req) if scopes.strongest_context(&req.resource) == Some("patient") => {
                    "patient"
                }
                _ => "user",
            },
        },
    };
    if let Some(requirement) = &def.requirement {
        let needed = requirement.in_context(context);
        // On FHIR a granular scope (`?category=…`) grants the route; the plugin keeps
        // only what its constraint admits.
        let granular = family == Family::Fhir && scopes.allows_constrained(&needed);
        if !scopes.allows(&needed) && !granular {
            return Err(HttpError::insufficient_scope(&needed.to_string()));
        }
    }
    // Staff users need the route's ACL on the standard API, and on FHIR when they act
    // as themselves (a `user/` scope) rather than for a launch patient.
    let acl_applies = match family {
        Family::Api => true,
        Family::Fhir => context == "user",
        Family::Portal | Family::Other => false,
    };
    if principal.role == Role::User
        && acl_applies
        && !def.acl.is_empty()
        && !reads_own_user(principal, family, def, params)
    {
        let role = principal.acl_role.as_deref().unwrap_or("");
        if !acl::allows(role, &def.acl) {
            return Err(HttpError::forbidden(format!(
                "The role '{role}' does not hold the access control section {}",
                def.acl
            )));
        }
    }
    Ok(())
}

/// True when a staff user reads their own `fhirUser` resource on FHIR: `GET
/// /fhir/Practitioner/:id` (or `/fhir/Person/:id`, a user without an NPI) with their own
/// uuid. A SMART app resolves `fhirUser` and reads it, so the scope alone grants that read
/// (OpenEMR asks the ACL `admin/users` of it, which a physician lacks); any other user's
/// resource, and every search, keeps the route's ACL.
fn reads_own_user(
    principal: &Principal,
    family: Family,
    def: &RouteDef,
    params: &[String],
) -> bool {
    use crate::plugins::loader::Segment;
    family == Family::Fhir
        && def.method == Method::GET
        && matches!(
            def.segments.as_slice(),
            [Segment::Literal(kind), Segment::Param(_)] if kind == "Practitioner" || kind == "Person"
        )
        && params
            .first()
            .is_some_and(|id| id.eq_ignore_ascii_case(&principal.subject))
}

/// True when a route's scope asks for no create, update or delete: a read or search, or
/// an operation (which of those a patient may hold is the scope catalogue's to say).
fn reads_only(requirement: Option<&Requirement>) -> bool {
    match requirement.map(|r| &r.access) {
        Some(Access::Perms(perms)) => ![Perms::C, Perms::U, Perms::D]
            .into_iter()
            .any(|write| perms.contains(write)),
        Some(Access::Operation(_)) => true,
        None => false,
    }
}

/// The patient a request is about, from a `:puuid` parameter.
fn patient_param(bound: &Bound, params: &[String]) -> Option<String> {
    use crate::plugins::loader::Segment;
    let names = bound.def().segments.iter().filter_map(|s| match s {
        Segment::Param(name) => Some(name.as_str()),
        Segment::Literal(_) => None,
    });
    names
        .zip(params)
        .find(|(name, _)| *name == "puuid" || *name == "pid")
        .map(|(_, value)| value.clone())
}

/// Reads the body, up to `limit` bytes. A declared `Content-Length` over the limit is
/// answered 413 at once, without reading any of the body.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, HttpError> {
    let too_large = || {
        HttpError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("The request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let limited = http_body_util::Limited::new(body, limit);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(error) => Err(HttpError::new(
            StatusCode::BAD_REQUEST,
            "bad_body",
            format!("The request body could not be read: {error}"),
        )),
    }
}

/// What a plugin request asks: the method, the path below the family root and the
/// query — the call's own, or an `_include`'s second search.
struct Asked<'a> {
    method: &'a Method,
    path: &'a str,
    query: Vec<(String, String)>,
}

/// The plugin request for `call`'s caller.
fn build_request(
    call: &Call<'_>,
    asked: Asked<'_>,
    body: Bytes,
    bound: &Bound,
    params: Vec<String>,
    principal: Option<&Principal>,
) -> bindings::Request {
    let Asked {
        method,
        path,
        query,
    } = asked;
    let headers = call.headers;
    let mut headers: Vec<(String, String)> = PASSED_HEADERS
        .iter()
        .filter_map(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .map(|v| ((*name).to_owned(), v.to_owned()))
        })
        .collect();
    // The site's settings, as headers no client can set (only those named above pass).
    headers.push((
        hearth_sdk::request::COMPATIBILITY_HEADER.to_owned(),
        call.settings.compatibility.name().to_owned(),
    ));
    headers.push((
        hearth_sdk::request::LIST_CAP_HEADER.to_owned(),
        call.settings.list_cap.to_string(),
    ));
    let caller = match principal {
        Some(p) => bindings::Caller {
            role: match p.role {
                Role::User => bindings::Role::User,
                Role::Patient => bindings::Role::Patient,
                Role::System => bindings::Role::System,
            },
            subject: p.subject.clone(),
            username: p.username.clone(),
            client_id: p.client_id.clone(),
            scopes: p.scope_text.clone(),
            patient: if p.role == Role::Patient {
                Some(p.patient.clone().unwrap_or_else(|| p.subject.clone()))
            } else {
                p.patient.clone()
            },
        },
        None => bindings::Caller {
            role: bindings::Role::Anonymous,
            subject: String::new(),
            username: String::new(),
            client_id: String::new(),
            scopes: String::new(),
            patient: None,
        },
    };
    bindings::Request {
        route: bound.def().index,
        method: match *method {
            Method::POST => bindings::Method::Post,
            Method::PUT => bindings::Method::Put,
            Method::PATCH => bindings::Method::Patch,
            Method::DELETE => bindings::Method::Delete,
            _ => bindings::Method::Get,
        },
        path: path.to_owned(),
        params,
        query,
        headers,
        body: body.into(),
        caller,
        base_url: family_url(call),
    }
}

/// The query string's pairs, decoded.
fn query_pairs(uri: &axum::http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// The public URL of the request's family root on its site.
fn family_url(call: &Call<'_>) -> String {
    let family_name = match call.family {
        Family::Api => "api",
        Family::Portal => "portal",
        _ => "fhir",
    };
    format!(
        "{}/apis/{}/{family_name}",
        call.app.base_url, call.site.name
    )
}

/// Counts a plugin call: the instance it made (all but a call refused for want of one)
/// and the limit it hit, if any.
fn count_call(
    telemetry: &crate::telemetry::Telemetry,
    site: &str,
    bound: &Bound,
    result: &Result<runtime::Outcome, CallError>,
) {
    let plugin = &bound.plugin.loaded.name;
    let limit = match result {
        Ok(_) => None,
        Err(CallError::Timeout(_)) => Some("time"),
        Err(CallError::Cpu(_)) => Some("cpu"),
        Err(CallError::Memory(_)) => Some("memory"),
        Err(CallError::Busy(_)) => Some("instances"),
        Err(CallError::ResponseTooLarge(_)) => Some("response_size"),
        Err(CallError::DatabaseLimit(_)) => Some("database"),
        Err(CallError::Trap(_) | CallError::Commit(_) | CallError::Unavailable(_)) => None,
    };
    if !matches!(result, Err(CallError::Busy(_))) {
        telemetry.instantiated(site, plugin);
    }
    if let Some(limit) = limit {
        telemetry.limit_hit(site, plugin, limit);
    }
}

/// Turns a failed call into a 5xx that names the limit, with details in the log.
fn call_error(site: &str, request: &str, bound: &Bound, error: CallError) -> HttpError {
    let plugin = &bound.plugin.loaded.name;
    tracing::error!(site, plugin = %plugin, request, route = %bound.def().path, "{error}");
    let (status, code) = match &error {
        CallError::Timeout(_) => (StatusCode::SERVICE_UNAVAILABLE, "plugin_timeout"),
        CallError::Cpu(_) => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_cpu_limit"),
        CallError::Memory(_) => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_memory_limit"),
        CallError::Trap(_) => (StatusCode::INTERNAL_SERVER_ERROR, "plugin_failed"),
        CallError::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "plugin_busy"),
        CallError::ResponseTooLarge(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "plugin_response_too_large",
        ),
        CallError::Commit(_) => (StatusCode::INTERNAL_SERVER_ERROR, "commit_failed"),
        CallError::Unavailable(cause) => return HttpError::unavailable(cause),
        CallError::DatabaseLimit(_) => (StatusCode::SERVICE_UNAVAILABLE, "plugin_database_limit"),
    };
    let message = match &error {
        // A trap's text can hold internals; say only that the plugin failed.
        CallError::Trap(_) => format!("The plugin {plugin} failed while handling the request"),
        CallError::Commit(_) => "The request's changes could not be saved".to_owned(),
        other => format!("{other} (plugin {plugin})"),
    };
    let mut error = HttpError::new(status, code, message);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // A deadline or a full plugin may pass: the client may simply try again.
        error.retry_after = Some(crate::error::RETRY_AFTER_SECONDS);
    }
    error
}

/// A plugin's response as an HTTP response. The status is the one the plugin asked to
/// send on the wire (`hearth-wire-status`, OpenEMR's status on a site that wants it), else
/// its own; the host's own headers are never taken from a plugin.
pub fn into_http(response: bindings::Response) -> Response {
    let wire = response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(hearth_sdk::response::WIRE_STATUS_HEADER))
        .and_then(|(_, value)| value.parse::<u16>().ok())
        .unwrap_or(response.status);
    let status = StatusCode::from_u16(wire).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut out = Response::new(Body::from(response.body));
    *out.status_mut() = status;
    let headers = out.headers_mut();
    for (name, value) in response.headers {
        let lower = name.to_ascii_lowercase();
        if HOST_HEADERS.contains(&lower.as_str())
            || lower.starts_with("access-control-")
            || lower.starts_with("hearth-")
        {
            continue;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(lower), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    if !headers.contains_key(header::CONTENT_TYPE) {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    out
}

/// `/apis/{site}` without a family: a 401 like every other path without a valid token,
/// or a 404 for one with.
async fn no_family(
    State(api): State<Arc<ApiState>>,
    Path(site_name): Path<String>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    let app = &api.app;
    let Some(site) = app.sites.get(&site_name).await else {
        return HttpError::unknown_site(&site_name).render(Family::Other);
    };
    let bearer = tokens::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    let checked = match bearer {
        Ok(token) => tokens::authenticate(&site, &app.base_url, token)
            .await
            .map(|_| ()),
        Err(error) => Err(error),
    };
    match checked {
        Ok(()) => HttpError::no_route(uri.path()).render(Family::Other),
        Err(error) => error.render(Family::Other),
    }
}
