//! The FHIR server's own routes: `GET /apis/{site}/fhir/metadata`, the CapabilityStatement
//! of what the site's loaded plugins serve; `GET /apis/{site}/fhir/OperationDefinition`
//! (and `/{name}`), the definitions of the operations the host ([`HOST_OPERATIONS`]) and
//! the site's plugins (their `$` routes) serve; and the host's own operations
//! (`$versions`).
//!
//! FHIR resources are served by plugins (through [`crate::api`]); each declares its
//! resource types, profiles and search parameters in the contract's `fhir` list, and its
//! `/fhir` routes say which interactions it answers. The statement is built per request
//! from the site's current plugin table, so it follows a hot reload or a per-site swap at
//! once, and a site without a plugin for a type does not list the type. The SMART
//! configuration under `/fhir/.well-known` is the authorization server's (`oauth`).
//!
//! Every route here checks the client's format first ([`crate::formats::negotiate`]).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::error::{Family, HttpError};
use crate::plugins::SiteTable;
use crate::plugins::loader::{Family as RouteFamily, Method as RouteMethod, Segment};
use crate::state::AppState;

/// The FHIR version served.
pub const FHIR_VERSION: &str = "4.0.1";

/// The SMART capabilities the authorization server implements (as its
/// `.well-known/smart-configuration` lists them), for the security extension.
const SMART_CAPABILITIES: &[&str] = &[
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-ehr-patient",
    "context-standalone-patient",
    "permission-offline",
    "permission-user",
    "permission-patient",
    "permission-v1",
    "permission-v2",
];

/// The FHIR server's own routes, with CORS for browser-based apps.
pub fn router() -> Router<Arc<AppState>> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::OPTIONS])
        .allow_headers([header::ACCEPT])
        .max_age(Duration::from_secs(600));
    Router::new()
        .route("/apis/{site}/fhir/metadata", get(metadata))
        .route("/apis/{site}/fhir/OperationDefinition", get(operation_list))
        .route(
            "/apis/{site}/fhir/OperationDefinition/{name}",
            get(operation_read),
        )
        .route("/apis/{site}/fhir/$versions", get(versions))
        .layer(cors)
}

/// One parameter of an operation's definition.
#[derive(Debug, Clone, Copy)]
pub struct OperationParam {
    /// The parameter's name.
    pub name: &'static str,
    /// `in` or `out`.
    pub use_: &'static str,
    /// The least number of times it occurs.
    pub min: u32,
    /// The most: a number, or `*`.
    pub max: &'static str,
    /// Its FHIR type (`code`, `string`, `instant`, `Binary`, …).
    pub kind: &'static str,
    /// What it means.
    pub documentation: &'static str,
}

/// An operation the host serves itself (a plugin's operations are its `$` routes).
/// [`HOST_OPERATIONS`] lists them; each is served as an OperationDefinition and listed
/// in the CapabilityStatement (at system level under `rest.operation`, at type or
/// instance level under each of its types the site serves).
#[derive(Debug, Clone, Copy)]
pub struct HostOperation {
    /// The operation's code without `$` (`versions`): its name in URLs and the id of its
    /// OperationDefinition.
    pub code: &'static str,
    /// A human title.
    pub title: &'static str,
    /// What it does.
    pub description: &'static str,
    /// The canonical URL of the definition it implements, when the specification (or an
    /// implementation guide) defines it: the definition's `base`.
    pub base: Option<&'static str>,
    /// Invoked on the server as a whole (`/fhir/$versions`).
    pub system: bool,
    /// The types it is invoked on (`/fhir/Patient/$export`), type level unless
    /// `instance`.
    pub types: &'static [&'static str],
    /// Invoked on one resource (`/fhir/Group/:id/$export`).
    pub instance: bool,
    /// Whether it changes data.
    pub affects_state: bool,
    /// Its parameters.
    pub parameters: &'static [OperationParam],
}

/// The operations the host serves: add one here with its route.
pub const HOST_OPERATIONS: &[HostOperation] = &[HostOperation {
    code: "versions",
    title: "The FHIR versions this server supports",
    description: "Answers the FHIR versions the server supports and the one it uses when \
                  the client names none, as a Parameters resource. Anonymous, like the \
                  CapabilityStatement.",
    base: Some("http://hl7.org/fhir/OperationDefinition/CapabilityStatement-versions"),
    system: true,
    types: &[],
    instance: false,
    affects_state: false,
    parameters: &[
        OperationParam {
            name: "version",
            use_: "out",
            min: 1,
            max: "*",
            kind: "code",
            documentation: "A version supported (major.minor): 4.0",
        },
        OperationParam {
            name: "default",
            use_: "out",
            min: 1,
            max: "1",
            kind: "code",
            documentation: "The version used when the client names none: 4.0",
        },
    ],
}];

/// The host's Bulk Data export operations (`api`'s bulk module), named in the
/// CapabilityStatement by the canonical URLs of the Bulk Data IG's definitions (not served
/// under `/OperationDefinition`: the IG's are the definitions): on the system (`None`)
/// and on each type the site serves among Patient and Group.
const IG_OPERATIONS: &[(Option<&str>, &str, &str)] = &[
    (
        None,
        "export",
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    ),
    (
        Some("Patient"),
        "export",
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
    ),
    (
        Some("Group"),
        "export",
        "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
    ),
];

/// An operation the site serves, as its definition is built: the host's, or one read
/// off a plugin's `$` routes.
#[derive(Debug, Clone, PartialEq)]
struct Served {
    code: String,
    title: String,
    description: String,
    base: Option<String>,
    system: bool,
    types: Vec<String>,
    instance: bool,
    affects_state: bool,
    parameters: Vec<Value>,
}

/// Every operation `table`'s site serves: the host's, then the plugins' (by code; a
/// plugin route with a host operation's code adds nothing).
fn served_operations(table: &SiteTable) -> Vec<Served> {
    let mut out: Vec<Served> = HOST_OPERATIONS
        .iter()
        .map(|op| Served {
            code: op.code.to_owned(),
            title: op.title.to_owned(),
            description: op.description.to_owned(),
            base: op.base.map(str::to_owned),
            system: op.system,
            types: op.types.iter().map(|t| (*t).to_owned()).collect(),
            instance: op.instance,
            affects_state: op.affects_state,
            parameters: op
                .parameters
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "use": p.use_,
                        "min": p.min,
                        "max": p.max,
                        "documentation": p.documentation,
                        "type": p.kind,
                    })
                })
                .collect(),
        })
        .collect();
    let hosts = out.len();
    for plugin in &table.plugins {
        for route in plugin
            .loaded
            .routes
            .iter()
            .filter(|r| r.family == RouteFamily::Fhir)
        {
            let Some(Segment::Literal(last)) = route.segments.last() else {
                continue;
            };
            let Some(code) = last.strip_prefix('$') else {
                continue;
            };
            if out[..hosts].iter().any(|op| op.code == code) {
                continue;
            }
            let at = route.segments.len() - 1;
            let resource = match route.segments.first() {
                Some(Segment::Literal(t)) if at > 0 => Some(t.clone()),
                _ => None,
            };
            let instance = at == 2 && matches!(route.segments.get(1), Some(Segment::Param(_)));
            let index = match out.iter().position(|op| op.code == code) {
                Some(i) => i,
                None => {
                    out.push(Served {
                        code: code.to_owned(),
                        title: format!("${code}"),
                        description: format!(
                            "Served by the plugin {} (its route declares no parameters)",
                            plugin.loaded.name
                        ),
                        base: None,
                        system: false,
                        types: Vec::new(),
                        instance: false,
                        affects_state: false,
                        parameters: Vec::new(),
                    });
                    out.len() - 1
                }
            };
            let op = &mut out[index];
            op.affects_state |= route.method.as_str() != "GET";
            match resource {
                None => op.system = true,
                Some(t) => {
                    op.instance |= instance;
                    if !op.types.contains(&t) {
                        op.types.push(t);
                    }
                }
            }
        }
    }
    out.sort_by(|a, b| a.code.cmp(&b.code));
    out
}

/// `versions` → `Versions`, `bulkdata-status` → `BulkdataStatus`: a definition's
/// machine-friendly `name`.
fn operation_name(code: &str) -> String {
    code.split(['-', '_', '.'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// The OperationDefinition resource of `op`, served at `base`.
fn operation_definition(op: &Served, base: &str) -> Value {
    let mut doc = json!({
        "resourceType": "OperationDefinition",
        "id": op.code,
        "url": format!("{base}/OperationDefinition/{}", op.code),
        "name": operation_name(&op.code),
        "title": op.title,
        "status": "active",
        "kind": "operation",
        "publisher": "Hearth",
        "description": op.description,
        "affectsState": op.affects_state,
        "code": op.code,
        "system": op.system,
        "type": !op.types.is_empty() && !op.instance,
        "instance": op.instance,
    });
    if let Some(canonical) = &op.base {
        doc["base"] = json!(canonical);
    }
    if !op.types.is_empty() {
        doc["resource"] = json!(op.types);
    }
    if !op.parameters.is_empty() {
        doc["parameter"] = json!(op.parameters);
    }
    doc
}

fn fhir_json(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    response
}

/// Whether the client asked for `Prefer: handling=strict`.
fn strict(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([';', ',']).any(|p| p.trim() == "handling=strict"))
}

/// `GET /apis/{site}/fhir/OperationDefinition`: anonymous, a searchset Bundle of every
/// operation the site serves. It takes no search parameter: any is ignored, or named in
/// a 400 with `Prefer: handling=strict`.
async fn operation_list(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return HttpError::unknown_site(&site_name).render(Family::Fhir);
    };
    if let Err(error) = crate::formats::negotiate(query.as_deref(), &headers, &[]) {
        return error.render(Family::Fhir);
    }
    let ignored: Vec<String> = query
        .as_deref()
        .unwrap_or_default()
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').map_or(pair, |(k, _)| k).to_owned())
        .filter(|name| name != "_format")
        .collect();
    if strict(&headers) && !ignored.is_empty() {
        return HttpError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!(
                "Unknown or unsupported search parameters: {}",
                ignored.join(", ")
            ),
        )
        .render(Family::Fhir);
    }
    let table = app.registry.table(&site.name);
    let base = format!("{}/apis/{}/fhir", app.base_url, site.name);
    let entries: Vec<Value> = served_operations(&table)
        .iter()
        .map(|op| {
            json!({
                "fullUrl": format!("{base}/OperationDefinition/{}", op.code),
                "resource": operation_definition(op, &base),
                "search": {"mode": "match"},
            })
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": format!("{base}/OperationDefinition")}],
    });
    if !entries.is_empty() {
        bundle["entry"] = json!(entries);
    }
    fhir_json(StatusCode::OK, &bundle)
}

/// `GET /apis/{site}/fhir/OperationDefinition/{name}`: anonymous; `name` is the
/// operation's code, with or without OpenEMR's `$`.
async fn operation_read(
    State(app): State<Arc<AppState>>,
    Path((site_name, name)): Path<(String, String)>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return HttpError::unknown_site(&site_name).render(Family::Fhir);
    };
    if let Err(error) = crate::formats::negotiate(query.as_deref(), &headers, &[]) {
        return error.render(Family::Fhir);
    }
    let table = app.registry.table(&site.name);
    let base = format!("{}/apis/{}/fhir", app.base_url, site.name);
    let code = name.strip_prefix('$').unwrap_or(&name);
    match served_operations(&table).iter().find(|op| op.code == code) {
        Some(op) => fhir_json(StatusCode::OK, &operation_definition(op, &base)),
        None => HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("OperationDefinition/{name} is not known"),
        )
        .render(Family::Fhir),
    }
}

/// `GET /apis/{site}/fhir/$versions`: anonymous, the FHIR versions served (R4, `4.0`).
async fn versions(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    if app.sites.get(&site_name).await.is_none() {
        return HttpError::unknown_site(&site_name).render(Family::Fhir);
    }
    if let Err(error) = crate::formats::negotiate(query.as_deref(), &headers, &[]) {
        return error.render(Family::Fhir);
    }
    let version = FHIR_VERSION
        .rsplit_once('.')
        .map_or(FHIR_VERSION, |(v, _)| v);
    fhir_json(
        StatusCode::OK,
        &json!({
            "resourceType": "Parameters",
            "parameter": [
                {"name": "version", "valueCode": version},
                {"name": "default", "valueCode": version},
            ],
        }),
    )
}

/// `GET /apis/{site}/fhir/metadata`: anonymous.
async fn metadata(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return HttpError::unknown_site(&site_name).render(Family::Fhir);
    };
    if let Err(error) = crate::formats::negotiate(query.as_deref(), &headers, &[]) {
        return error.render(Family::Fhir);
    }
    let table = app.registry.table(&site.name);
    let base = format!("{}/apis/{}/fhir", app.base_url, site.name);
    let issuer = crate::auth::tokens::issuer(&app.base_url, &site.name);
    let body = capability_statement(&table, &base, &issuer);
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/fhir+json"),
    );
    response
}

/// The interaction a FHIR route answers, read off its method and path shape.
fn interaction(method: &RouteMethod, segments: &[Segment]) -> Option<(String, &'static str)> {
    use Segment::{Literal, Param};
    let Some(Literal(resource_type)) = segments.first() else {
        return None;
    };
    let code = match (method.as_str(), &segments[1..]) {
        ("GET", []) => "search-type",
        ("POST", []) => "create",
        ("POST", [Literal(s)]) if s == "_search" => "search-type",
        ("GET", [Literal(s)]) if s == "_history" => "history-type",
        ("GET", [Param(_)]) => "read",
        ("PUT", [Param(_)]) => "update",
        ("PATCH", [Param(_)]) => "patch",
        ("DELETE", [Param(_)]) => "delete",
        ("GET", [Param(_), Literal(h)]) if h == "_history" => "history-instance",
        ("GET", [Param(_), Literal(h), Param(_)]) if h == "_history" => "vread",
        _ => return None,
    };
    Some((resource_type.clone(), code))
}

/// The CapabilityStatement of `table`'s plugins, served at `base`, whose authorization
/// server is `issuer`.
pub fn capability_statement(table: &SiteTable, base: &str, issuer: &str) -> Value {
    let mut resources = Vec::new();
    let mut newest = None;
    for plugin in &table.plugins {
        let loaded = &plugin.loaded;
        for declared in &loaded.fhir {
            newest = newest.max(Some(loaded.loaded_at));
            let mut interactions: Vec<&str> = Vec::new();
            let mut operations = Vec::new();
            for route in loaded
                .routes
                .iter()
                .filter(|r| r.family == RouteFamily::Fhir)
            {
                if route.segments.first() != Some(&Segment::Literal(declared.resource_type.clone()))
                {
                    continue;
                }
                if let Some((_, code)) = interaction(&route.method, &route.segments)
                    && !interactions.contains(&code)
                {
                    interactions.push(code);
                }
                if let Some(Segment::Literal(last)) = route.segments.last()
                    && let Some(name) = last.strip_prefix('$')
                {
                    operations.push(json!({
                        "name": name,
                        "definition": format!("{base}/OperationDefinition/{name}"),
                    }));
                }
            }
            let search_params: Vec<Value> = declared
                .search_params
                .iter()
                .map(|p| {
                    let mut param = json!({"name": p.name, "type": p.kind});
                    if !p.expression.is_empty() {
                        param["documentation"] = json!(format!("FHIRPath: {}", p.expression));
                    }
                    param
                })
                .collect();
            let mut resource = json!({
                "type": declared.resource_type,
                "profile": format!("http://hl7.org/fhir/StructureDefinition/{}", declared.resource_type),
                "interaction": interactions.iter().map(|code| json!({"code": code})).collect::<Vec<_>>(),
                // Every resource carries its version; a type that answers `vread` and
                // `update` also honours `If-Match` on update (see hearth_fhir::history).
                "versioning": if interactions.contains(&"vread") && interactions.contains(&"update") {
                    "versioned-update"
                } else {
                    "versioned"
                },
                "readHistory": interactions.contains(&"vread"),
                "updateCreate": false,
                "conditionalCreate": false,
                "conditionalUpdate": false,
                "conditionalDelete": "not-supported",
            });
            if !declared.profiles.is_empty() {
                resource["supportedProfile"] = json!(declared.profiles);
            }
            if !search_params.is_empty() {
                resource["searchParam"] = json!(search_params);
            }
            // Every reference parameter can be followed by `_include` (the host resolves
            // it through the referenced type's plugin; see `api::include`).
            let includes: Vec<String> = declared
                .search_params
                .iter()
                .filter(|p| p.kind == "reference")
                .map(|p| format!("{}:{}", declared.resource_type, p.name))
                .collect();
            if !includes.is_empty() {
                resource["searchInclude"] = json!(includes);
            }
            // The host's operations on this type.
            for op in HOST_OPERATIONS
                .iter()
                .filter(|op| op.types.contains(&declared.resource_type.as_str()))
            {
                operations.push(json!({
                    "name": op.code,
                    "definition": format!("{base}/OperationDefinition/{}", op.code),
                }));
            }
            // The Bulk Data export on this type, by the IG's definition.
            for (_, name, definition) in IG_OPERATIONS
                .iter()
                .filter(|(on, ..)| *on == Some(declared.resource_type.as_str()))
            {
                operations.push(json!({"name": name, "definition": definition}));
            }
            if !operations.is_empty() {
                resource["operation"] = json!(operations);
            }
            resources.push(resource);
        }
    }
    // The host serves the definitions of the operations itself.
    resources.push(json!({
        "type": "OperationDefinition",
        "profile": "http://hl7.org/fhir/StructureDefinition/OperationDefinition",
        "interaction": [{"code": "read"}, {"code": "search-type"}],
        "versioning": "no-version",
        "readHistory": false,
        "updateCreate": false,
        "conditionalCreate": false,
        "conditionalUpdate": false,
        "conditionalDelete": "not-supported",
    }));
    resources.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    // The system-level Bulk Data export first, by the IG's definition, then the
    // operations defined here.
    let mut system_operations: Vec<Value> = IG_OPERATIONS
        .iter()
        .filter(|(on, ..)| on.is_none())
        .map(|(_, name, definition)| json!({"name": name, "definition": definition}))
        .collect();
    let defined: Vec<Value> = served_operations(table)
        .iter()
        .filter(|op| op.system)
        .map(|op| {
            json!({
                "name": op.code,
                "definition": format!("{base}/OperationDefinition/{}", op.code),
            })
        })
        .collect();
    system_operations.extend(defined);
    let date = newest
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    let smart = "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities";
    let mut extensions: Vec<Value> = SMART_CAPABILITIES
        .iter()
        .map(|code| json!({"url": smart, "valueCode": code}))
        .collect();
    extensions.push(json!({
        "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
        "extension": [
            {"url": "authorize", "valueUri": format!("{issuer}/authorize")},
            {"url": "token", "valueUri": format!("{issuer}/token")},
            {"url": "register", "valueUri": format!("{issuer}/registration")},
            {"url": "revoke", "valueUri": format!("{issuer}/revoke")},
            {"url": "introspect", "valueUri": format!("{issuer}/introspect")},
        ],
    }));
    json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "Hearth",
        "kind": "instance",
        "instantiates": ["http://hl7.org/fhir/us/core/CapabilityStatement/us-core-server"],
        "software": {"name": "Hearth", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "Hearth FHIR API", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "application/json"],
        "rest": [{
            "mode": "server",
            "security": {
                "cors": true,
                "service": [{
                    "coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                        "code": "SMART-on-FHIR",
                        "display": "SMART-on-FHIR",
                    }],
                    "text": "OAuth2 using SMART-on-FHIR profile (see http://docs.smarthealthit.org)",
                }],
                "extension": extensions,
            },
            "resource": resources,
            "operation": system_operations,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(path: &str) -> Vec<Segment> {
        crate::plugins::loader::parse_template(path).unwrap()
    }

    #[test]
    fn routes_name_their_interactions() {
        for (method, path, code) in [
            (RouteMethod::GET, "/Patient", Some("search-type")),
            (RouteMethod::POST, "/Patient/_search", Some("search-type")),
            (RouteMethod::GET, "/Patient/:id", Some("read")),
            (RouteMethod::PUT, "/Patient/:id", Some("update")),
            (RouteMethod::POST, "/Patient", Some("create")),
            (
                RouteMethod::GET,
                "/Patient/:id/_history/:vid",
                Some("vread"),
            ),
            (
                RouteMethod::GET,
                "/Patient/:id/_history",
                Some("history-instance"),
            ),
            (RouteMethod::GET, "/Patient/$export", None),
        ] {
            assert_eq!(
                interaction(&method, &segments(path)).map(|(_, c)| c),
                code,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn host_operations_are_definitions() {
        let ops = served_operations(&SiteTable::default());
        assert_eq!(ops.len(), HOST_OPERATIONS.len());
        let doc = operation_definition(&ops[0], "https://h/apis/a/fhir");
        assert_eq!(doc["resourceType"], "OperationDefinition");
        assert_eq!(doc["id"], "versions");
        assert_eq!(doc["name"], "Versions");
        assert_eq!(
            doc["url"],
            "https://h/apis/a/fhir/OperationDefinition/versions"
        );
        assert_eq!(doc["system"], true);
        assert_eq!(doc["type"], false);
        assert_eq!(doc["parameter"][1]["name"], "default");
        assert!(doc.get("resource").is_none());
        assert_eq!(operation_name("bulkdata-status"), "BulkdataStatus");
        for op in HOST_OPERATIONS {
            assert!(
                op.system || !op.types.is_empty(),
                "{} is invoked somewhere",
                op.code
            );
        }
    }

    #[test]
    fn an_empty_site_lists_no_resource_but_its_security() {
        let doc = capability_statement(
            &SiteTable::default(),
            "https://h/apis/a/fhir",
            "https://h/oauth2/a",
        );
        let resources = doc["rest"][0]["resource"].as_array().unwrap();
        assert_eq!(resources.len(), 1, "only the host's OperationDefinition");
        assert_eq!(resources[0]["type"], "OperationDefinition");
        // The host's Bulk Data export by the IG's canonical definition, then its own.
        assert_eq!(
            doc["rest"][0]["operation"],
            json!([
                {"name": "export", "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"},
                {"name": "versions", "definition": "https://h/apis/a/fhir/OperationDefinition/versions"},
            ])
        );
        assert_eq!(doc["fhirVersion"], FHIR_VERSION);
        let ext = &doc["rest"][0]["security"]["extension"];
        assert!(
            ext.as_array()
                .unwrap()
                .iter()
                .any(|e| e["valueCode"] == "launch-standalone")
        );
    }
}
