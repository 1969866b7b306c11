//! The API description: an OpenAPI 3.1 document per site and API family, and Swagger UI
//! to read and try it.
//!
//! - `GET /apis/{site}/api/openapi.json`, `/apis/{site}/portal/openapi.json`,
//!   `/apis/{site}/fhir/openapi.json`: the routes the site's loaded plugins serve in that
//!   family, with the parameters and JSON Schemas each plugin declares (its
//!   `hearth:api-docs` section, [`crate::plugins::apidocs`]), the OAuth2 security scheme
//!   of the site's authorization server, and on each operation the scope it needs as the
//!   catalogue writes it (`user/…` on `/api`, `patient/…` on `/portal`, any of the three
//!   contexts on `/fhir`). Built per request from the site's current plugin table, like
//!   the CapabilityStatement, so it follows a hot reload at once. Anonymous, with CORS.
//! - `GET /apis/{site}/docs`: Swagger UI (vendored from npm `swagger-ui-dist` by
//!   `host/build.rs` and embedded in the binary), with a picker for the three documents.
//!   "Authorize" signs in with the site's own docs client (authorization code with PKCE,
//!   see `crate::oauth` `docs_client`), whose redirect page is served here too. The pages
//!   allow only the host's own scripts (CSP `script-src 'self'`).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::error::{Family, HttpError};
use crate::plugins::SiteTable;
use crate::plugins::apidocs::RouteDocs;
use crate::plugins::loader::{RouteDef, Segment};
use crate::plugins::words::scope_words;
use crate::state::{AppState, DOCS_CLIENT_ID};

/// The OpenAPI version of the documents.
pub const OPENAPI_VERSION: &str = "3.1.0";

/// The OAuth2 security scheme's name in `components.securitySchemes`.
const SCHEME: &str = "oauth2";

/// The routes: the three documents, the docs page and its files.
pub fn router() -> Router<Arc<AppState>> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([Method::GET, Method::OPTIONS])
        .allow_headers([header::ACCEPT])
        .max_age(Duration::from_secs(600));
    let documents = Router::new()
        .route("/apis/{site}/api/openapi.json", get(api_document))
        .route("/apis/{site}/portal/openapi.json", get(portal_document))
        .route("/apis/{site}/fhir/openapi.json", get(fhir_document))
        .layer(cors);
    Router::new()
        .merge(documents)
        .route("/apis/{site}/docs", get(docs_page))
        .route("/apis/{site}/docs/{file}", get(docs_file))
}

async fn api_document(app: State<Arc<AppState>>, site: Path<String>) -> Response {
    document(app, site, Family::Api).await
}

async fn portal_document(app: State<Arc<AppState>>, site: Path<String>) -> Response {
    document(app, site, Family::Portal).await
}

async fn fhir_document(app: State<Arc<AppState>>, site: Path<String>) -> Response {
    document(app, site, Family::Fhir).await
}

async fn document(
    State(app): State<Arc<AppState>>,
    Path(site_name): Path<String>,
    family: Family,
) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return HttpError::unknown_site(&site_name).render(Family::Other);
    };
    let table = app.registry.table(&site.name);
    let body = build(&table, &app.base_url, &site.name, family);
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The family's URL segment and title.
fn family_names(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::Api => ("api", "Standard API"),
        Family::Portal => ("portal", "Patient portal API"),
        Family::Fhir | Family::Other => ("fhir", "FHIR R4 API"),
    }
}

/// The contexts a family's scopes are written in, as the dispatcher checks them.
fn contexts(family: Family, def: &RouteDef) -> Vec<&'static str> {
    match family {
        Family::Api => vec!["user"],
        Family::Portal => vec!["patient"],
        // Patients only read FHIR resources.
        Family::Fhir | Family::Other if def.method == Method::GET => {
            vec!["user", "patient", "system"]
        }
        Family::Fhir | Family::Other => vec!["user", "system"],
    }
}

/// The plain scope a family's tokens must also hold.
fn family_scope(family: Family) -> Option<&'static str> {
    match family {
        Family::Api => Some("api:oemr"),
        Family::Portal => Some("api:port"),
        Family::Fhir | Family::Other => None,
    }
}

/// The OpenAPI document of `table`'s routes in `family`, for the site `site` served at
/// `base` (the public base URL).
pub fn build(table: &SiteTable, base: &str, site: &str, family: Family) -> Value {
    let (segment, title) = family_names(family);
    let fhir = family == Family::Fhir;
    let mut paths = Map::new();
    let mut tags = Vec::new();
    let mut user_scopes: Vec<String> = family_scope(family)
        .into_iter()
        .map(str::to_owned)
        .collect();
    let mut system_scopes: Vec<String> = Vec::new();
    for plugin in &table.plugins {
        let loaded = &plugin.loaded;
        let mut tagged = false;
        for def in loaded.routes.iter().filter(|r| r.family == family) {
            tagged = true;
            let docs = loaded.docs.route(def.index as usize);
            let mut operation = Map::new();
            operation.insert("operationId".into(), json!(operation_id(def)));
            let summary = if def.summary.is_empty() {
                format!("{} {}", def.method, def.path)
            } else {
                def.summary.clone()
            };
            operation.insert("summary".into(), json!(summary));
            operation.insert("tags".into(), json!([loaded.name]));
            let parameters =
                parameters(def, docs, fhir.then(|| fhir_params(loaded, def)).flatten());
            if !parameters.is_empty() {
                operation.insert("parameters".into(), Value::Array(parameters));
            }
            if let Some(body) = request_body(def, docs, fhir, loaded) {
                operation.insert("requestBody".into(), body);
            }
            operation.insert("responses".into(), responses(def, docs, fhir));
            match &def.requirement {
                Some(requirement) if !def.anonymous => {
                    let mut alternatives = Vec::new();
                    for context in contexts(family, def) {
                        let scope = requirement.in_context(context).to_string();
                        let mut needed: Vec<String> = family_scope(family)
                            .into_iter()
                            .map(str::to_owned)
                            .collect();
                        needed.push(scope.clone());
                        let list = if context == "system" {
                            &mut system_scopes
                        } else {
                            &mut user_scopes
                        };
                        if !list.contains(&scope) {
                            list.push(scope);
                        }
                        alternatives.push(json!({ SCHEME: needed }));
                    }
                    operation.insert("security".into(), Value::Array(alternatives));
                }
                _ => {
                    operation.insert("security".into(), json!([]));
                }
            }
            let path = openapi_path(&def.segments);
            let item = paths
                .entry(path)
                .or_insert_with(|| Value::Object(Map::new()));
            item[def.method.as_str().to_ascii_lowercase()] = Value::Object(operation);
        }
        if tagged {
            tags.push(json!({"name": loaded.name, "description": loaded.description}));
        }
    }
    let words = |scopes: &[String]| -> Value {
        let mut map = Map::new();
        for scope in scopes {
            map.insert(scope.clone(), json!(scope_words(table, scope).text));
        }
        Value::Object(map)
    };
    let mut auth_scopes = vec!["openid".to_owned(), "offline_access".to_owned()];
    if fhir {
        auth_scopes.push("fhirUser".to_owned());
        auth_scopes.push("launch/patient".to_owned());
    }
    auth_scopes.extend(user_scopes);
    let oauth = format!("{base}/oauth2/{site}");
    let mut flows = json!({
        "authorizationCode": {
            "authorizationUrl": format!("{oauth}/authorize"),
            "tokenUrl": format!("{oauth}/token"),
            "refreshUrl": format!("{oauth}/token"),
            "scopes": words(&auth_scopes),
        }
    });
    if !system_scopes.is_empty() {
        flows["clientCredentials"] = json!({
            "tokenUrl": format!("{oauth}/token"),
            "scopes": words(&system_scopes),
        });
    }
    let description = format!(
        "The {title} of site `{site}`, as the site's loaded plugins serve it. Every operation names the OAuth2 scopes it needs; sign in with the authorization server at `{oauth}` (authorization code with PKCE; backend services use client credentials with a signed JWT assertion, see the SMART Backend Services specification)."
    );
    let error = if fhir {
        json!({"type": "object", "required": ["resourceType", "issue"], "properties": {
            "resourceType": {"const": "OperationOutcome"},
            "issue": {"type": "array", "items": {"type": "object", "properties": {
                "severity": {"type": "string"}, "code": {"type": "string"},
                "diagnostics": {"type": "string"}}}}}})
    } else {
        json!({"type": "object", "description": "OpenEMR's envelope with the errors in validationErrors or internalErrors, or an error object",
            "properties": {"validationErrors": {}, "internalErrors": {}, "data": {},
                "error": {"type": "string"}, "error_description": {"type": "string"}}})
    };
    let media = media_type(fhir);
    let error_response = |text: &str| json!({"description": text, "content": {media: {"schema": {"$ref": "#/components/schemas/Error"}}}});
    json!({
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": format!("Hearth {title} — site {site}"),
            "version": env!("CARGO_PKG_VERSION"),
            "description": description,
            "license": {"name": "GPL-3.0-or-later", "identifier": "GPL-3.0-or-later"},
        },
        "servers": [{"url": format!("{base}/apis/{site}/{segment}")}],
        "tags": tags,
        "paths": paths,
        "components": {
            "securitySchemes": {
                SCHEME: {
                    "type": "oauth2",
                    "description": "Hearth's authorization server for this site",
                    "flows": flows,
                }
            },
            "schemas": {"Error": error},
            "responses": {
                "BadRequest": error_response("The request is malformed or breaks a validation rule"),
                "Unauthorized": error_response("No valid access token"),
                "Forbidden": error_response("The token lacks the scope, or the user the access control section, the route needs"),
                "NotFound": error_response("Nothing is found at this URL"),
            },
        },
    })
}

/// The content type of a family's bodies.
fn media_type(fhir: bool) -> &'static str {
    if fhir {
        "application/fhir+json"
    } else {
        "application/json"
    }
}

/// `/patient/:puuid` → `/patient/{puuid}`.
fn openapi_path(segments: &[Segment]) -> String {
    let mut path = String::new();
    for segment in segments {
        path.push('/');
        match segment {
            Segment::Literal(text) => path.push_str(text),
            Segment::Param(name) => {
                path.push('{');
                path.push_str(name);
                path.push('}');
            }
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// A unique, URL-safe operation id: method and path, e.g. `get_patient_puuid`.
fn operation_id(def: &RouteDef) -> String {
    let mut id = def.method.as_str().to_ascii_lowercase();
    for segment in &def.segments {
        let text = match segment {
            Segment::Literal(text) | Segment::Param(text) => text,
        };
        id.push('_');
        id.extend(
            text.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
        );
    }
    id
}

/// The FHIR search parameters of a search-type route (`GET /{Type}`) of `loaded`.
fn fhir_params(loaded: &crate::plugins::loader::Loaded, def: &RouteDef) -> Option<Vec<Value>> {
    let [Segment::Literal(resource_type)] = def.segments.as_slice() else {
        return None;
    };
    if def.method != Method::GET {
        return None;
    }
    let declared = loaded
        .fhir
        .iter()
        .find(|t| &t.resource_type == resource_type)?;
    let mut out: Vec<Value> = declared
        .search_params
        .iter()
        .map(|p| {
            let mut description = format!("FHIR search parameter of type {}", p.kind);
            if !p.expression.is_empty() {
                description.push_str(&format!(" ({})", p.expression));
            }
            json!({"name": p.name, "in": "query", "required": false,
                   "description": description, "schema": {"type": "string"}})
        })
        .collect();
    if !declared.search_params.iter().any(|p| p.name == "_count") {
        out.push(json!({"name": "_count", "in": "query", "required": false,
            "description": "Resources per page", "schema": {"type": "integer", "minimum": 0}}));
    }
    Some(out)
}

/// The route's parameters: each template parameter (declared, or a string), then the
/// declared query parameters, then `extra` (FHIR search parameters).
fn parameters(def: &RouteDef, docs: Option<&RouteDocs>, extra: Option<Vec<Value>>) -> Vec<Value> {
    let declared: &[Value] = docs.map(|d| d.parameters.as_slice()).unwrap_or(&[]);
    let mut out = Vec::new();
    for segment in &def.segments {
        let Segment::Param(name) = segment else {
            continue;
        };
        let found = declared
            .iter()
            .find(|p| p["in"] == "path" && p["name"] == name.as_str());
        out.push(match found {
            Some(p) => p.clone(),
            None if name.ends_with("uuid") || name == "id" && def.family == Family::Fhir => {
                let schema = if name.ends_with("uuid") {
                    json!({"type": "string", "format": "uuid"})
                } else {
                    json!({"type": "string"})
                };
                json!({"name": name, "in": "path", "required": true, "schema": schema})
            }
            None => {
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
            }
        });
    }
    for p in declared.iter().filter(|p| p["in"] == "query") {
        out.push(p.clone());
    }
    for p in extra.into_iter().flatten() {
        if !out
            .iter()
            .any(|o| o["name"] == p["name"] && o["in"] == p["in"])
        {
            out.push(p);
        }
    }
    out
}

/// The request body: the declared schema, or for FHIR `_search` the form of its search
/// parameters.
fn request_body(
    def: &RouteDef,
    docs: Option<&RouteDocs>,
    fhir: bool,
    loaded: &crate::plugins::loader::Loaded,
) -> Option<Value> {
    if let Some(schema) = docs.and_then(|d| d.request.as_ref()) {
        return Some(json!({
            "required": true,
            "content": {media_type(fhir): {"schema": schema}},
        }));
    }
    if fhir
        && def.method == Method::POST
        && matches!(def.segments.last(), Some(Segment::Literal(s)) if s == "_search")
    {
        let Some(Segment::Literal(resource_type)) = def.segments.first() else {
            return None;
        };
        let mut properties = Map::new();
        if let Some(declared) = loaded
            .fhir
            .iter()
            .find(|t| &t.resource_type == resource_type)
        {
            for p in &declared.search_params {
                properties.insert(p.name.clone(), json!({"type": "string"}));
            }
        }
        return Some(json!({
            "required": false,
            "content": {"application/x-www-form-urlencoded": {
                "schema": {"type": "object", "properties": properties}}},
        }));
    }
    None
}

/// The success answer (declared payload, in the envelope when the route answers it)
/// and the error answers.
fn responses(def: &RouteDef, docs: Option<&RouteDocs>, fhir: bool) -> Value {
    let creates = def.method == Method::POST
        && !matches!(def.segments.last(), Some(Segment::Literal(s)) if s == "_search");
    let status = if creates { "201" } else { "200" };
    let description = if creates { "Created" } else { "Success" };
    let mut success = json!({"description": description});
    let payload = docs.and_then(|d| {
        let item = d.response.clone()?;
        let payload = if d.list {
            json!({"type": "array", "items": item})
        } else {
            item
        };
        Some(if d.envelope && !fhir {
            json!({"type": "object", "properties": {
                "validationErrors": {"type": ["array", "object"]},
                "internalErrors": {"type": ["array", "object"]},
                "data": payload,
                "links": {"type": "object"}}})
        } else {
            payload
        })
    });
    if let Some(schema) = payload {
        success["content"] = json!({media_type(fhir): {"schema": schema}});
    }
    let mut out = Map::new();
    out.insert(status.into(), success);
    out.insert(
        "400".into(),
        json!({"$ref": "#/components/responses/BadRequest"}),
    );
    if !def.anonymous {
        out.insert(
            "401".into(),
            json!({"$ref": "#/components/responses/Unauthorized"}),
        );
        out.insert(
            "403".into(),
            json!({"$ref": "#/components/responses/Forbidden"}),
        );
    }
    out.insert(
        "404".into(),
        json!({"$ref": "#/components/responses/NotFound"}),
    );
    Value::Object(out)
}

/// The Swagger UI files embedded from `swagger-ui-dist` (see `host/build.rs`), and ours.
const FILES: &[(&str, &str, &[u8])] = &[
    (
        "swagger-ui-bundle.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui/swagger-ui-bundle.js")),
    ),
    (
        "swagger-ui-standalone-preset.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(
            env!("OUT_DIR"),
            "/swagger-ui/swagger-ui-standalone-preset.js"
        )),
    ),
    (
        "swagger-ui.css",
        "text/css; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui/swagger-ui.css")),
    ),
    (
        "oauth2-redirect.js",
        "text/javascript; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui/oauth2-redirect.js")),
    ),
    (
        "LICENSE.txt",
        "text/plain; charset=utf-8",
        include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui/LICENSE")),
    ),
    (
        "hearth-docs.js",
        "text/javascript; charset=utf-8",
        INIT_SCRIPT.as_bytes(),
    ),
    (
        "oauth2-redirect.html",
        "text/html; charset=utf-8",
        REDIRECT_PAGE.as_bytes(),
    ),
];

/// Starts Swagger UI with what the page's `data-` attributes say: the documents, the
/// docs client and its redirect page. A file, because the CSP allows no inline script.
const INIT_SCRIPT: &str = r##""use strict";
(function () {
  var data = document.body.dataset;
  var urls = JSON.parse(data.urls);
  var ui = SwaggerUIBundle({
    urls: urls,
    "urls.primaryName": urls[0].name,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout",
    validatorUrl: null,
    oauth2RedirectUrl: data.redirect,
    persistAuthorization: false
  });
  ui.initOAuth({
    clientId: data.clientId,
    appName: "Hearth API docs",
    usePkceWithAuthorizationCodeGrant: true
  });
  window.ui = ui;
})();
"##;

/// Swagger UI's OAuth2 redirect page (its script finishes the sign-in in the opener).
const REDIRECT_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signing in</title></head><body><script src=\"oauth2-redirect.js\"></script></body></html>";

/// What the docs pages may load: the host's own scripts, styles and images only.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn secure(response: &mut Response, content_type: &'static str, cache: &'static str) {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
}

/// Escapes text for HTML attribute values.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `GET /apis/{site}/docs`: Swagger UI over the site's three documents.
async fn docs_page(State(app): State<Arc<AppState>>, Path(site_name): Path<String>) -> Response {
    let Some(site) = app.sites.get(&site_name).await else {
        return HttpError::unknown_site(&site_name).render(Family::Other);
    };
    let root = format!("{}/apis/{}", app.base_url, site.name);
    let urls: Vec<Value> = [Family::Api, Family::Portal, Family::Fhir]
        .into_iter()
        .map(|family| {
            let (segment, title) = family_names(family);
            json!({"url": format!("{root}/{segment}/openapi.json"), "name": title})
        })
        .collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>Hearth API — site {title}</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"docs/swagger-ui.css\"></head>\
<body data-urls=\"{urls}\" data-client-id=\"{client}\" data-redirect=\"{redirect}\"><div id=\"swagger-ui\"></div>\
<script src=\"docs/swagger-ui-bundle.js\"></script><script src=\"docs/swagger-ui-standalone-preset.js\"></script><script src=\"docs/hearth-docs.js\"></script></body></html>",
        title = attribute(&site.name),
        urls = attribute(&Value::Array(urls).to_string()),
        client = DOCS_CLIENT_ID,
        redirect = attribute(&format!("{root}/docs/oauth2-redirect.html")),
    );
    let mut response = (StatusCode::OK, html).into_response();
    secure(&mut response, "text/html; charset=utf-8", "no-store");
    response
}

/// `GET /apis/{site}/docs/{file}`: an embedded file.
async fn docs_file(
    State(app): State<Arc<AppState>>,
    Path((site_name, file)): Path<(String, String)>,
) -> Response {
    if app.sites.get(&site_name).await.is_none() {
        return HttpError::unknown_site(&site_name).render(Family::Other);
    }
    let Some((_, content_type, bytes)) = FILES.iter().find(|(name, _, _)| *name == file) else {
        return HttpError::no_route(&format!("/apis/{site_name}/docs/{file}"))
            .render(Family::Other);
    };
    let mut response = (StatusCode::OK, *bytes).into_response();
    secure(&mut response, content_type, "public, max-age=3600");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_operation_ids_come_from_templates() {
        let segments = vec![
            Segment::Literal("patient".into()),
            Segment::Param("puuid".into()),
            Segment::Literal("$export".into()),
        ];
        assert_eq!(openapi_path(&segments), "/patient/{puuid}/$export");
        assert_eq!(openapi_path(&[]), "/");
        assert_eq!(attribute("a\"<'&"), "a&quot;&lt;&#39;&amp;");
        assert!(INIT_SCRIPT.contains("usePkceWithAuthorizationCodeGrant: true"));
        assert!(!CSP.contains("unsafe-eval") && CSP.contains("script-src 'self'"));
    }
}
