//! What the host counts and how one request is described: the Prometheus metrics (kept
//! with the `prometheus-client` crate, exposed by [`crate::ops`]) and the labels a router
//! puts on its answer so the request line and the counters can name the site, the route
//! pattern and the plugin.
//!
//! Every label value comes from a bounded set, so no client can grow the series: sites
//! are registered ones (an unknown name counts as `""`), routes are patterns (the axum
//! route, or the template a plugin declares; never a raw path), methods are the standard
//! ones (`OTHER` beside), statuses are three digits, plugins are those `plugins.toml`
//! names, grants the four the token endpoint takes, limits the runtime's own.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The content type of [`Telemetry::encode`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the request latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// One request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The site, or `""` for host-wide routes and unknown sites.
    pub site: String,
    /// `api`, `portal`, `fhir`, `oauth2`, `admin`, `meta` or `other`.
    pub family: String,
    /// The route pattern (`/api/patient/:puuid`, `/oauth2/{site}/token`), or `unmatched`.
    pub route: String,
    /// The HTTP method.
    pub method: String,
    /// The status code.
    pub status: String,
}

/// A plugin on a site.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabels {
    /// The site.
    pub site: String,
    /// The plugin's name in `plugins.toml`.
    pub plugin: String,
}

/// A limit a plugin call hit.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabels {
    /// The site.
    pub site: String,
    /// The plugin.
    pub plugin: String,
    /// `time`, `cpu`, `memory`, `instances`, `response_size` or `database`.
    pub limit: String,
}

/// A reload of one plugin.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// The plugin.
    pub plugin: String,
    /// `loaded` (a new version serves) or `failed` (the file or its settings were refused).
    pub result: String,
}

/// Tokens issued on a site by a grant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    /// The site.
    pub site: String,
    /// `authorization_code`, `client_credentials`, `password` or `refresh_token`.
    pub grant: String,
}

/// A site's database pool.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// The site.
    pub site: String,
    /// `in_use` or `idle`.
    pub state: String,
}

/// A site's database pool, as [`Telemetry::set_pool`] takes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open now.
    pub open: u32,
    /// Of those, idle.
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// The host's metrics. One per application; cheap to share (`Arc`).
pub struct Telemetry {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram, fn() -> Histogram>,
    instantiations: Family<PluginLabels, Counter>,
    limit_hits: Family<LimitLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    tokens: Family<GrantLabels, Counter>,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Family<SiteLabels, Gauge>,
    plugin_instances: Gauge,
    plugin_warm_slots: Gauge,
    plugin_warm_bytes: Gauge,
    bulk_accepted: Family<SiteLabels, Counter>,
    bulk_running: Family<SiteLabels, Gauge>,
    bulk_queued: Family<SiteLabels, Gauge>,
    bulk_finished: Family<BulkOutcomeLabels, Counter>,
    bulk_resources: Family<BulkTypeLabels, Counter>,
}

/// How a Bulk Data export ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BulkOutcomeLabels {
    /// The site.
    pub site: String,
    /// `done`, `failed` or `cancelled`.
    pub outcome: String,
}

/// A resource type a Bulk Data export wrote.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BulkTypeLabels {
    /// The site.
    pub site: String,
    /// A resource type the site's plugins serve.
    pub resource_type: String,
}

/// A site alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SiteLabels {
    /// The site.
    pub site: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Default for Telemetry {
    fn default() -> Telemetry {
        Telemetry::new()
    }
}

impl Telemetry {
    /// Every metric, at zero.
    pub fn new() -> Telemetry {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "hearth_http_requests",
            "HTTP requests answered, by site, API family, route pattern, method and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "hearth_http_request_duration_seconds",
            "Time from a request's arrival to its answer's headers, by the same labels",
            latency.clone(),
        );
        let instantiations = Family::<PluginLabels, Counter>::default();
        registry.register(
            "hearth_plugin_instantiations",
            "Plugin instances made to handle a request (one per call that got an instance)",
            instantiations.clone(),
        );
        let limit_hits = Family::<LimitLabels, Counter>::default();
        registry.register(
            "hearth_plugin_limit_hits",
            "Plugin calls stopped by a limit: time, cpu, memory, instances, response_size, database",
            limit_hits.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "hearth_plugin_reloads",
            "Plugin reloads after start-up: a new version loaded, or a new file refused",
            reloads.clone(),
        );
        let tokens = Family::<GrantLabels, Counter>::default();
        registry.register(
            "hearth_tokens_issued",
            "Access tokens issued by the token endpoint, by site and grant type",
            tokens.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "hearth_db_pool_connections",
            "Connections of each site's database pool, in use or idle",
            pool_connections.clone(),
        );
        let pool_max = Family::<SiteLabels, Gauge>::default();
        registry.register(
            "hearth_db_pool_max_connections",
            "The most connections each site's database pool opens",
            pool_max.clone(),
        );
        let plugin_instances = Gauge::default();
        registry.register(
            "hearth_plugin_pool_instances",
            "Plugin instances alive in the pool (requests being served)",
            plugin_instances.clone(),
        );
        let plugin_warm_slots = Gauge::default();
        registry.register(
            "hearth_plugin_pool_warm_slots",
            "Idle pool slots kept warm for the plugin that last ran in them (see plugin_warm_slots)",
            plugin_warm_slots.clone(),
        );
        let plugin_warm_bytes = Gauge::default();
        registry.register(
            "hearth_plugin_pool_warm_resident_bytes",
            "Memory the idle warm slots keep resident",
            plugin_warm_bytes.clone(),
        );
        let bulk_accepted = Family::<SiteLabels, Counter>::default();
        registry.register(
            "hearth_bulk_jobs_accepted",
            "Bulk Data exports accepted (kick-offs answered 202)",
            bulk_accepted.clone(),
        );
        let bulk_running = Family::<SiteLabels, Gauge>::default();
        registry.register(
            "hearth_bulk_jobs_running",
            "Bulk Data exports this process is running now",
            bulk_running.clone(),
        );
        let bulk_queued = Family::<SiteLabels, Gauge>::default();
        registry.register(
            "hearth_bulk_jobs_queued",
            "Bulk Data exports waiting in the site's database for a process to lease them",
            bulk_queued.clone(),
        );
        let bulk_finished = Family::<BulkOutcomeLabels, Counter>::default();
        registry.register(
            "hearth_bulk_jobs_finished",
            "Bulk Data exports ended by this process or cancelled through it: done, failed or cancelled",
            bulk_finished.clone(),
        );
        let bulk_resources = Family::<BulkTypeLabels, Counter>::default();
        registry.register(
            "hearth_bulk_resources_exported",
            "Resources written to Bulk Data export files by this process, by type",
            bulk_resources.clone(),
        );
        Telemetry {
            registry,
            bulk_accepted,
            bulk_running,
            bulk_queued,
            bulk_finished,
            bulk_resources,
            requests,
            latency,
            instantiations,
            limit_hits,
            reloads,
            tokens,
            pool_connections,
            pool_max,
            plugin_instances,
            plugin_warm_slots,
            plugin_warm_bytes,
        }
    }

    /// Counts one answered request and its latency.
    pub fn request(&self, labels: RequestLabels, latency: Duration) {
        self.latency
            .get_or_create(&labels)
            .observe(latency.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts an accepted Bulk Data export.
    pub fn bulk_job_queued(&self, site: &str) {
        self.bulk_accepted
            .get_or_create(&SiteLabels {
                site: site.to_owned(),
            })
            .inc();
    }

    /// The number of exports queued in a site's database.
    pub fn bulk_jobs_queued(&self, site: &str, queued: i64) {
        self.bulk_queued
            .get_or_create(&SiteLabels {
                site: site.to_owned(),
            })
            .set(queued);
    }

    /// This process starts running an export.
    pub fn bulk_job_started(&self, site: &str) {
        self.bulk_running
            .get_or_create(&SiteLabels {
                site: site.to_owned(),
            })
            .inc();
    }

    /// This process stops running an export.
    pub fn bulk_job_stopped(&self, site: &str) {
        self.bulk_running
            .get_or_create(&SiteLabels {
                site: site.to_owned(),
            })
            .dec();
    }

    /// Counts an export that ended: `done`, `failed` or `cancelled`.
    pub fn bulk_job_finished(&self, site: &str, outcome: &str) {
        self.bulk_finished
            .get_or_create(&BulkOutcomeLabels {
                site: site.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// Counts resources an export wrote.
    pub fn bulk_resources_exported(&self, site: &str, resource_type: &str, count: u64) {
        if count == 0 {
            return;
        }
        self.bulk_resources
            .get_or_create(&BulkTypeLabels {
                site: site.to_owned(),
                resource_type: resource_type.to_owned(),
            })
            .inc_by(count);
    }

    /// Counts a plugin instance made for a request.
    pub fn instantiated(&self, site: &str, plugin: &str) {
        self.instantiations
            .get_or_create(&PluginLabels {
                site: site.to_owned(),
                plugin: plugin.to_owned(),
            })
            .inc();
    }

    /// Counts a plugin call stopped by `limit`.
    pub fn limit_hit(&self, site: &str, plugin: &str, limit: &str) {
        self.limit_hits
            .get_or_create(&LimitLabels {
                site: site.to_owned(),
                plugin: plugin.to_owned(),
                limit: limit.to_owned(),
            })
            .inc();
    }

    /// Counts a reload of `plugin`: loaded (`true`) or refused.
    pub fn reloaded(&self, plugin: &str, loaded: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                plugin: plugin.to_owned(),
                result: if loaded { "loaded" } else { "failed" }.to_owned(),
            })
            .inc();
    }

    /// Counts a token issued on `site` by `grant`.
    pub fn token_issued(&self, site: &str, grant: &str) {
        self.tokens
            .get_or_create(&GrantLabels {
                site: site.to_owned(),
                grant: grant.to_owned(),
            })
            .inc();
    }

    /// Records how `site`'s database pool stands now (called as metrics are read).
    pub fn set_pool(&self, site: &str, pool: PoolUse) {
        let in_use = pool.open.saturating_sub(pool.idle);
        for (state, value) in [("in_use", in_use), ("idle", pool.idle)] {
            self.pool_connections
                .get_or_create(&PoolLabels {
                    site: site.to_owned(),
                    state: state.to_owned(),
                })
                .set(i64::from(value));
        }
        self.pool_max
            .get_or_create(&SiteLabels {
                site: site.to_owned(),
            })
            .set(i64::from(pool.max));
    }

    /// Records how the plugin pool stands now (called as metrics are read): instances
    /// alive, idle warm slots and the bytes those keep resident.
    pub fn set_plugin_pool(&self, instances: u64, warm_slots: u32, warm_bytes: u64) {
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        self.plugin_instances.set(gauge(instances));
        self.plugin_warm_slots.set(i64::from(warm_slots));
        self.plugin_warm_bytes.set(gauge(warm_bytes));
    }

    /// Every metric in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// What a router knows of the request it answered, put in the response's extensions for
/// the request line and the counters: the site it resolved, the family, the route pattern
/// and the plugin that served it.
#[derive(Clone, Debug, Default)]
pub struct Served {
    /// The resolved site (a registered one).
    pub site: Option<String>,
    /// The API family, when the router knows better than the path.
    pub family: Option<&'static str>,
    /// The route pattern as declared (a plugin's template).
    pub route: Option<String>,
    /// The plugin that answered.
    pub plugin: Option<String>,
}

/// The request's correlation id, put in the request's extensions before routing.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// The request's correlation id: the caller's `x-request-id` when it is 1 to 64 characters
/// of `A-Z a-z 0-9 - _ .` (a proxy's id then follows the request through), otherwise a new
/// one made by `new_id`.
pub fn request_id(header: Option<&str>, new_id: impl FnOnce() -> String) -> String {
    header
        .filter(|id| {
            (1..=64).contains(&id.len())
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .map_or_else(new_id, str::to_owned)
}

/// The method as a label: the standard ones by name, any other as `OTHER`.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_exposed_with_their_labels() {
        let telemetry = Telemetry::new();
        let labels = RequestLabels {
            site: "default".into(),
            family: "api".into(),
            route: "/api/patient".into(),
            method: "GET".into(),
            status: "200".into(),
        };
        telemetry.request(labels.clone(), Duration::from_millis(3));
        telemetry.request(labels, Duration::from_millis(30));
        telemetry.token_issued("default", "password");
        let text = telemetry.encode();
        assert!(
            text.contains(
                "hearth_http_requests_total{site=\"default\",family=\"api\",route=\"/api/patient\",method=\"GET\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(
            text.contains("hearth_tokens_issued_total{site=\"default\",grant=\"password\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn request_ids_from_callers_are_kept_only_when_plain() {
        let new = || "new".to_owned();
        assert_eq!(request_id(Some("abc-1.2_3"), new), "abc-1.2_3");
        assert_eq!(request_id(Some("a b"), new), "new");
        assert_eq!(request_id(Some(""), new), "new");
        assert_eq!(request_id(Some(&"x".repeat(65)), new), "new");
        assert_eq!(request_id(None, new), "new");
    }
}
