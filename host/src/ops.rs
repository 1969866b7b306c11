//! What operators and orchestrators see: liveness, readiness and (see [`metrics_router`])
//! the Prometheus metrics.
//!
//! - `GET /meta/health/livez` answers 200 while the process serves HTTP.
//! - `GET /meta/health/readyz` answers 200 when the server can serve every site: the
//!   control database answers, and for every registered site its database answers a query
//!   and no plugin its `plugins.toml` entry lists has failed to load (a plugin whose newest
//!   file failed while its last good version serves is `stale`: it serves, so the site is
//!   ready). Otherwise 503. The body has each site's state, with the names of the plugins
//!   loaded, failed and stale; the reasons are in the log and in `hearth plugin list`,
//!   never in this unauthenticated answer.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use serde_json::json;

use crate::plugins::registry::PluginState;
use crate::state::AppState;

/// How long one site's database may take to answer the readiness query (opening the site
/// included) before it counts as unreachable.
const DATABASE_CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The health routes, merged into the application's router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/meta/health/livez",
            get(|| async { axum::Json(json!({"status": "alive"})) }),
        )
        .route("/meta/health/readyz", get(readyz))
}

/// `GET /meta/health/readyz`.
#[derive(Debug, Serialize)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// The control database (the list of sites): `ok` or `unreachable`.
    pub control: &'static str,
    /// Every registered site by name.
    pub sites: std::collections::BTreeMap<String, SiteReadiness>,
}

/// One site's part of [`Readiness`].
#[derive(Debug, Serialize)]
pub struct SiteReadiness {
    /// Whether the site can serve: its database answers and no plugin failed.
    pub ready: bool,
    /// `ok` or `unreachable`.
    pub database: &'static str,
    /// The site's plugins by state.
    pub plugins: PluginReadiness,
}

/// A site's plugins by state, by name.
#[derive(Debug, Default, Serialize)]
pub struct PluginReadiness {
    /// Plugins serving the site (the stale ones too: their last good version serves).
    pub loaded: Vec<String>,
    /// Plugins listed for the site of which no version serves it.
    pub failed: Vec<String>,
    /// Plugins whose newest file or settings failed to load while the last good version
    /// serves.
    pub stale: Vec<String>,
}

/// Checks every site (see the module's documentation).
pub async fn readiness(app: &Arc<AppState>) -> Readiness {
    let names = match app.sites.list().await {
        Ok(list) => list.into_iter().map(|(name, _)| name).collect::<Vec<_>>(),
        Err(error) => {
            tracing::warn!("readiness: the control database does not answer: {error:#}");
            return Readiness {
                status: "not_ready",
                control: "unreachable",
                sites: Default::default(),
            };
        }
    };
    let mut checks = tokio::task::JoinSet::new();
    for name in names {
        let app = app.clone();
        checks.spawn(async move {
            let reachable = database_answers(&app, &name).await;
            (name, reachable)
        });
    }
    let mut sites = std::collections::BTreeMap::new();
    let mut ready = true;
    while let Some(joined) = checks.join_next().await {
        let Ok((name, reachable)) = joined else {
            ready = false;
            continue;
        };
        let mut plugins = PluginReadiness::default();
        for status in app.registry.statuses(&name) {
            match status.state {
                PluginState::Serving => plugins.loaded.push(status.name),
                PluginState::Stale => {
                    plugins.loaded.push(status.name.clone());
                    plugins.stale.push(status.name);
                }
                PluginState::Failed => plugins.failed.push(status.name),
            }
        }
        let site_ready = reachable && plugins.failed.is_empty();
        ready &= site_ready;
        sites.insert(
            name,
            SiteReadiness {
                ready: site_ready,
                database: if reachable { "ok" } else { "unreachable" },
                plugins,
            },
        );
    }
    Readiness {
        status: if ready { "ready" } else { "not_ready" },
        control: "ok",
        sites,
    }
}

/// Whether the site's database answers `SELECT 1` within [`DATABASE_CHECK_TIMEOUT`],
/// opening the site first when no request has yet.
async fn database_answers(app: &AppState, name: &str) -> bool {
    let check = async {
        // `get` answers an open site without waiting for another site being opened (and
        // logs why a site cannot be opened).
        let Some(site) = app.sites.get(name).await else {
            return Err("the site cannot be opened".to_owned());
        };
        let answered: Result<(), sqlx::Error> =
            crate::on_db!(&site.db, |pool| sqlx::query("SELECT 1")
                .execute(pool)
                .await
                .map(|_| ()));
        answered.map_err(|error| error.to_string())
    };
    match tokio::time::timeout(DATABASE_CHECK_TIMEOUT, check).await {
        Ok(Ok(())) => true,
        Ok(Err(why)) => {
            tracing::warn!(
                site = name,
                "readiness: the database does not answer: {why}"
            );
            false
        }
        Err(_) => {
            tracing::warn!(
                site = name,
                "readiness: the database did not answer within {} s",
                DATABASE_CHECK_TIMEOUT.as_secs()
            );
            false
        }
    }
}

async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    let readiness = readiness(&app).await;
    let status = if readiness.status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(readiness)).into_response()
}

/// The `/metrics` route: every counter in the OpenMetrics text format, which Prometheus
/// scrapes. Served only when configured (`metrics_listen` or `metrics_token` in
/// `hearth.toml`): on the address `metrics_listen` names (then not on the main one), or on
/// the main address; with `metrics_token` set, a scrape must send it as a bearer token.
pub fn metrics_router() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(app): State<Arc<AppState>>, headers: axum::http::HeaderMap) -> Response {
    if let Some(expected) = &app.config.metrics_token {
        let given = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map_or("", |(_, token)| token.trim());
        if !crate::crypto::same(given, expected) {
            let mut response = (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "unauthorized", "message": "/metrics needs the metrics token as a bearer token"})),
            )
                .into_response();
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"metrics\""),
            );
            return response;
        }
    }
    for site in app.sites.opened() {
        let pool = crate::on_db!(&site.db, |pool| crate::telemetry::PoolUse {
            open: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        });
        app.telemetry.set_pool(&site.name, pool);
    }
    let plugins = app.registry.engine.pool_use();
    app.telemetry.set_plugin_pool(
        plugins.instances,
        plugins.warm_memories,
        plugins.idle_resident_bytes,
    );
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::telemetry::CONTENT_TYPE,
        )],
        app.telemetry.encode(),
    )
        .into_response()
}

/// The middleware around every route: gives the request its correlation id (the caller's
/// `x-request-id` when plain, else a new one; sent back in `x-request-id`), and once
/// answered counts it ([`crate::telemetry`]) and logs one line (target `hearth::access`)
/// with the request id, site, family, route pattern, plugin, method, status and latency.
pub async fn observe(
    State(app): State<Arc<AppState>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use crate::telemetry::{RequestId, Served};
    let started = std::time::Instant::now();
    let id = crate::telemetry::request_id(
        request
            .headers()
            .get(REQUEST_ID)
            .and_then(|v| v.to_str().ok()),
        crate::db::comb_uuid,
    );
    request.extensions_mut().insert(RequestId(id.clone()));
    let method = crate::telemetry::method_label(request.method().as_str());
    let pattern = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let path_site = site_segment(request.uri().path()).map(str::to_owned);
    let mut response = next.run(request).await;
    let latency = started.elapsed();
    let served = response
        .extensions_mut()
        .remove::<Served>()
        .unwrap_or_default();
    if !response.headers().contains_key(REQUEST_ID)
        && let Ok(value) = axum::http::HeaderValue::try_from(id.as_str())
    {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    // Only a registered site names a series: an unknown name is `""`.
    let site = served
        .site
        .or(path_site)
        .filter(|name| app.sites.is_open(name))
        .unwrap_or_default();
    let family = served
        .family
        .unwrap_or_else(|| family_of(pattern.as_deref()));
    let route = served
        .route
        .or(pattern)
        .unwrap_or_else(|| "unmatched".to_owned());
    let status = response.status().as_u16();
    tracing::info!(
        target: "hearth::access",
        request_id = %id,
        site = %site,
        family,
        route = %route,
        plugin = served.plugin.as_deref().unwrap_or(""),
        method,
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request"
    );
    app.telemetry.request(
        crate::telemetry::RequestLabels {
            site,
            family: family.to_owned(),
            route,
            method: method.to_owned(),
            status: status.to_string(),
        },
        latency,
    );
    response
}

/// The header carrying the request's correlation id.
const REQUEST_ID: &str = "x-request-id";

/// The `{site}` segment of `/apis/{site}/…` and `/oauth2/{site}/…`.
fn site_segment(path: &str) -> Option<&str> {
    let rest = path
        .strip_prefix("/apis/")
        .or_else(|| path.strip_prefix("/oauth2/"))?;
    let site = rest.split('/').next()?;
    (!site.is_empty()).then_some(site)
}

/// The family of a host route by its pattern (the `/apis` dispatcher names its own).
fn family_of(pattern: Option<&str>) -> &'static str {
    match pattern {
        Some(p) if p.starts_with("/oauth2/") => "oauth2",
        Some(p) if p.starts_with("/apis/{site}/admin/") => "admin",
        Some(p) if p.starts_with("/apis/{site}/fhir/") => "fhir",
        Some(p) if p.starts_with("/meta/") || p == "/metrics" => "meta",
        _ => "other",
    }
}
