//! Building the application: sites, plugins, the router, and serving it over HTTP or TLS.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::audit::Audit;
use crate::config::Config;
use crate::error::{Family, HttpError};
use crate::plugins::Registry;
use crate::plugins::engine::Engine;
use crate::sites::Sites;
pub use crate::state::AppState;
use crate::telemetry::Telemetry;

/// A built application, bound to its port, not yet serving.
pub struct App {
    /// Shared state.
    pub state: Arc<AppState>,
    listener: TcpListener,
    /// The listener of `/metrics` alone, when `metrics_listen` is set.
    metrics_listener: Option<TcpListener>,
    tls: Option<Arc<rustls::ServerConfig>>,
    #[cfg(feature = "natives")]
    natives: crate::api::native::Natives,
}

impl App {
    /// Opens the data folder (creating the site `default` on first start), loads the
    /// plugins and binds the listen address (port 0 picks a free port).
    pub async fn build(config: Config) -> Result<App> {
        crate::db::sqlite::set_heap_limit(config.sqlite_heap_mib);
        let prepared = Sites::prepare(&config.data_dir).await?;
        if prepared.created_default {
            tracing::info!("created the site '{}'", crate::sites::DEFAULT_SITE);
        }
        let sites = Arc::new(prepared.sites);
        sites.open_all().await?;
        let cache = config
            .cache_dir
            .clone()
            .unwrap_or_else(|| sites.data_dir().join("cache"));
        let engine = Engine::with_tuning(
            &cache,
            config.max_instances,
            crate::plugins::engine::PoolTuning {
                max_unused_warm_slots: config.plugin_warm_slots,
                ..Default::default()
            },
        )?;
        let telemetry = Arc::new(Telemetry::new());
        let registry = Arc::new(
            Registry::load_migrating(
                engine,
                &config.plugins_file,
                Some(Arc::new(crate::plugins::schema::SiteMigrator {
                    sites: sites.clone(),
                })),
            )
            .await
            .context("loading plugins")?,
        );
        // Reloads after start-up count; the first load does not.
        registry.observe(telemetry.clone());
        if config.watch_plugins
            && let Err(error) = registry.watch()
        {
            // Serving matters more than watching; `hearth plugin reload` still works.
            tracing::warn!("plugins will not reload by themselves: {error:#}");
        }
        let tls = if config.http {
            None
        } else {
            Some(crate::tls::server_config(sites.data_dir())?)
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listening on {}", config.listen))?;
        let metrics_listener = match config.metrics_listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .with_context(|| format!("listening on {address} (metrics_listen)"))?,
            ),
            None => None,
        };
        let base_url = config.base_url(listener.local_addr()?);
        sites.set_setting("public_url", &base_url).await?;
        let audit = Audit::start(sites.clone());
        Ok(App {
            state: Arc::new(AppState {
                config,
                base_url,
                sites,
                registry,
                audit,
                telemetry,
            }),
            listener,
            metrics_listener,
            tls,
            #[cfg(feature = "natives")]
            natives: Default::default(),
        })
    }

    /// As [`App::build`], with native handlers in place of plugin routes (the
    /// benchmarks' baseline; feature `natives`).
    #[cfg(feature = "natives")]
    pub async fn build_with_natives(
        config: Config,
        natives: crate::api::native::Natives,
    ) -> Result<App> {
        let mut app = App::build(config).await?;
        app.natives = natives;
        Ok(app)
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Where `/metrics` is served apart from the API, when `metrics_listen` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Serves until `shutdown` completes, then flushes the audit log.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        crate::allocator::tune();
        let state = self.state.clone();
        let (stop_metrics, metrics_stopped) = tokio::sync::watch::channel(false);
        let shutdown = async move {
            shutdown.await;
            let _ = stop_metrics.send(true);
        };
        let metrics_server = self.metrics_listener.map(|listener| {
            let router = crate::ops::metrics_router()
                .with_state(state.clone())
                .layer(axum::middleware::map_response(security_headers));
            let mut stopped = metrics_stopped;
            tokio::spawn(async move {
                let until = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                crate::connections::serve(listener, None, router, until).await;
            })
        });
        let router = router(
            self.state,
            #[cfg(feature = "natives")]
            self.natives,
        );
        crate::connections::serve(self.listener, self.tls, router, shutdown).await;
        if let Some(server) = metrics_server {
            let _ = server.await;
        }
        state.audit.flush().await;
        state.sites.close().await;
        Ok(())
    }
}

/// The router: each family's routes with their state, and the host's own.
pub fn router(
    state: Arc<AppState>,
    #[cfg(feature = "natives")] natives: crate::api::native::Natives,
) -> Router {
    let mut own = Router::new()
        .merge(crate::admin::router())
        .merge(crate::console::router())
        // OpenEMR serves and advertises `/jwk`; `/jwks` is the name most servers use.
        .route("/oauth2/{site}/jwk", get(jwks))
        .route("/oauth2/{site}/jwks", get(jwks))
        .merge(crate::oauth::router())
        .merge(crate::fhir::router())
        .merge(crate::openapi::router())
        .merge(crate::ops::router());
    // `/metrics` on the main address only when no address of its own is set for it.
    if state.config.metrics_listen.is_none() && state.config.metrics_token.is_some() {
        own = own.merge(crate::ops::metrics_router());
    }
    let own = own.with_state(state.clone());
    crate::api::router(
        state.clone(),
        #[cfg(feature = "natives")]
        natives,
    )
    .merge(own)
    .fallback(not_found)
    // Runs after routing, so it sees the route pattern (`MatchedPath`).
    .layer(axum::middleware::from_fn_with_state(
        state,
        crate::ops::observe,
    ))
    .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn not_found(uri: axum::http::Uri) -> Response {
    HttpError::no_route(uri.path()).render(Family::Other)
}

async fn jwks(State(app): State<Arc<AppState>>, Path(site): Path<String>) -> Response {
    match app.sites.get(&site).await {
        Some(site) => {
            let mut response = axum::Json(site.keys().jwks.clone()).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            );
            // Public keys: any page may read them (browser apps verifying ID tokens).
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            response
        }
        None => HttpError::unknown_site(&site).render(Family::Other),
    }
}

/// Resolves when the process is asked to stop (Ctrl-C or SIGTERM).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut signal) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            signal.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    /// The settings `hearth client settings` shows (kept by the authorization server's
    /// settings table) have the defaults the `/apis` dispatcher really uses: checked here,
    /// where both routers are in reach.
    #[test]
    fn the_defaults_hearth_client_setting_shows_are_the_ones_used() {
        let default = |name: &str| {
            crate::registrar::settings::KNOWN
                .iter()
                .find(|known| known.name == name)
                .map(|known| known.default)
                .unwrap_or_else(|| panic!("{name} is a known setting"))
        };
        let defaults = crate::api::settings::ApiSettings::default();
        assert_eq!(default("api.list_cap"), defaults.list_cap.to_string());
        assert_eq!(default("api.compatibility"), defaults.compatibility.name());
        assert_eq!(default("api.cors_origins"), "any");
        assert_eq!(defaults.cors, crate::api::settings::Cors::Any);
    }
}
