//! The FHIR server's own routes: `GET /apis/{site}/fhir/metadata`, the CapabilityStatement
//! of what the site's loaded plugins serve.
//!
//! FHIR resources are served by plugins (through [`crate::api`]); each declares its
//! resource types, profiles and search parameters in the contract's `fhir` list, and its
//! `/fhir` routes say which interactions it answers. The statement is built per request
//! from the site's current plugin table, so it follows a hot reload or a per-site swap at
//! once, and a site without a plugin for a type does not list the type. The SMART
//! configuration under `/fhir/.well-known` is the authorization server's (`oauth`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
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
        .layer(cors)
}

/// `GET /apis/{site}/fhir/metadata`: anonymous.
async fn metadata(State(app): State<Arc<AppState>>, Path(site_name): Path<String>) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return HttpError::unknown_site(&site_name).render(Family::Fhir);
    };
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
                "versioning": "versioned",
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
            if !operations.is_empty() {
                resource["operation"] = json!(operations);
            }
            resources.push(resource);
        }
    }
    resources.sort_by(|a, b| a["type"].as_str().cmp(&b["type"].as_str()));
    bulk_export_operations(&mut resources);
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
            // The host's Bulk Data export (`api`'s bulk module), on every site.
            "operation": [{
                "name": "export",
                "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
            }],
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
        }],
    })
}

/// The Bulk Data export operations the host serves on the Patient and Group types
/// (`/Patient/$export`, `/Group/{id}/$export`), on the types the site serves.
fn bulk_export_operations(resources: &mut [Value]) {
    for resource in resources.iter_mut() {
        let (name, definition) = match resource["type"].as_str() {
            Some("Patient") => (
                "export",
                "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
            ),
            Some("Group") => (
                "export",
                "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export",
            ),
            _ => continue,
        };
        let entry = json!({"name": name, "definition": definition});
        match resource["operation"].as_array_mut() {
            Some(operations) => operations.push(entry),
            None => resource["operation"] = json!([entry]),
        }
    }
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
    fn an_empty_site_lists_no_resource_but_its_security() {
        let doc = capability_statement(
            &SiteTable::default(),
            "https://h/apis/a/fhir",
            "https://h/oauth2/a",
        );
        assert_eq!(doc["rest"][0]["resource"], json!([]));
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
