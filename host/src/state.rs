//! What every router shares: settings, the sites, the plugins, the audit writer, the
//! metrics.
//!
//! The routers (`api`, `oauth`, `admin`) import this module and nothing of each other;
//! `app` builds the state and gives each router its share. What a router keeps for itself
//! it owns: the authorization server keeps its sign-in limiter and client keys in each
//! site's [`crate::sites::Caches`], the `/apis` dispatcher its settings cache there too,
//! and benchmark builds hand the dispatcher their native handlers directly.

use std::sync::Arc;

use crate::audit::Audit;
use crate::config::Config;
use crate::plugins::Registry;
use crate::sites::Sites;
use crate::telemetry::Telemetry;

/// The client id of each site's own public client for the API docs page
/// (`/apis/{site}/docs`): the page (`openapi`) names it, the authorization server
/// (`oauth`) registers it on its first use. See docs/admin.md, "API documentation".
pub const DOCS_CLIENT_ID: &str = "hearth-api-docs";

/// Everything request handlers share.
pub struct AppState {
    /// Host settings.
    pub config: Config,
    /// The public base URL (`https://host:port`), no trailing slash.
    pub base_url: String,
    /// Sites.
    pub sites: Arc<Sites>,
    /// Plugins per site.
    pub registry: Arc<Registry>,
    /// The audit writer.
    pub audit: Audit,
    /// The metrics every router adds to.
    pub telemetry: Arc<Telemetry>,
}

impl crate::proxy::Proxies for Arc<AppState> {
    fn trusted_proxies(&self) -> &crate::proxy::TrustedProxies {
        &self.config.trusted_proxies
    }
}
