//! Seeing and reloading plugins: the admin HTTP API under each site and the
//! `hearth plugin …` commands.
//!
//! - `GET /apis/{site}/admin/plugins` lists how every plugin stands on the site (name,
//!   version, contract version, file hash, state, last error, loaded at). It needs a token
//!   of the site with `user/hearth-admin.r` (a staff user whose ACL role is `admin`) or
//!   `system/hearth-admin.r` (a backend service).
//! - `POST /apis/{site}/admin/plugins/reload` reloads the site's plugins from disk now
//!   (the watcher reloads every site on its own) and answers what changed, what failed and
//!   the new list. It needs `…/hearth-admin.u`, and reaches only the token's own site: an
//!   administrator of one site never swaps what another site serves.
//!
//! The CLI runs in its own process, so `hearth plugin list|reload` reach a running server
//! through that API: the CLI reads the server's public URL from the data folder (the server
//! records it at start), mints a one-minute `system/hearth-admin.ru` token with the site's
//! own key, and calls the API (trusting the data folder's certificate). When no server
//! answers, `plugin list` loads the files itself and shows how they would load;
//! `plugin reload` fails, as there is nothing to reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use clap::Subcommand;
use serde::{Deserialize, Serialize};

use super::engine::Engine;
use super::registry::{PluginStatus, ReloadReport};
use super::{Registry, loader};
use crate::app::AppState;
use crate::audit::Record;
use crate::auth::scopes::Scope;
use crate::auth::tokens::{self, Grant, Principal, Role};
use crate::config::{Config, Overrides};
use crate::error::{Family, HttpError};
use crate::sites::{Site, Sites};

/// The scope resource of the admin API.
pub const ADMIN_RESOURCE: &str = "hearth-admin";

/// The admin routes, merged into the application's router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/apis/{site}/admin/plugins", get(list))
        .route("/apis/{site}/admin/plugins/reload", post(reload))
}

/// `GET /apis/{site}/admin/plugins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginList {
    /// The site.
    pub site: String,
    /// Every plugin of the site.
    pub plugins: Vec<PluginStatus>,
}

/// `POST /apis/{site}/admin/plugins/reload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadAnswer {
    /// The site.
    pub site: String,
    /// What the reload did on the site.
    pub report: ReloadReport,
    /// Every plugin of the site afterwards.
    pub plugins: Vec<PluginStatus>,
}

async fn list(
    State(app): State<Arc<AppState>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    admin_call(
        &app,
        &site,
        &headers,
        "GET",
        false,
        |app, site| async move {
            Ok(axum::Json(PluginList {
                plugins: app.registry.statuses(&site.name),
                site: site.name.clone(),
            })
            .into_response())
        },
    )
    .await
}

async fn reload(
    State(app): State<Arc<AppState>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    admin_call(
        &app,
        &site,
        &headers,
        "POST",
        true,
        |app, site| async move {
            let report = app.registry.reload_site(&site.name).await;
            Ok(axum::Json(ReloadAnswer {
                plugins: app.registry.statuses(&site.name),
                site: site.name.clone(),
                report,
            })
            .into_response())
        },
    )
    .await
}

/// Resolves the site, checks the token, runs `work` and audits the call.
async fn admin_call<F, Fut>(
    app: &Arc<AppState>,
    site_name: &str,
    headers: &HeaderMap,
    method: &str,
    write: bool,
    work: F,
) -> Response
where
    F: FnOnce(Arc<AppState>, Arc<Site>) -> Fut,
    Fut: std::future::Future<Output = Result<Response, HttpError>>,
{
    let started = Instant::now();
    let Some(site) = app.sites.get(site_name).await else {
        return HttpError::unknown_site(site_name).render(Family::Other);
    };
    let path = if write {
        format!("/apis/{site_name}/admin/plugins/reload")
    } else {
        format!("/apis/{site_name}/admin/plugins")
    };
    let mut audit = Record::new(&site.name, method, &path);
    let result = async {
        let principal = authorize(app, &site, headers, write).await;
        if let Ok(principal) = &principal {
            audit.user_id = Some(principal.subject.clone());
            audit.client_id = Some(principal.client_id.clone());
        }
        principal?;
        work(app.clone(), site.clone()).await
    }
    .await;
    let response = result.unwrap_or_else(|error| error.render(Family::Other));
    audit.status = response.status().as_u16();
    audit.duration_us = started.elapsed().as_micros() as u64;
    app.audit.record(audit);
    response
}

/// The token must be a staff admin's or a backend service's, with the admin scope.
async fn authorize(
    app: &AppState,
    site: &Site,
    headers: &HeaderMap,
    write: bool,
) -> Result<Arc<Principal>, HttpError> {
    let token = tokens::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )?;
    let principal = tokens::authenticate(site, &app.base_url, token).await?;
    let context = match principal.role {
        Role::User => "user",
        Role::System => "system",
        Role::Patient => {
            return Err(HttpError::forbidden(
                "A patient token cannot use the admin API",
            ));
        }
    };
    let needed = format!(
        "{context}/{ADMIN_RESOURCE}.{}",
        if write { "u" } else { "r" }
    );
    let scope = Scope::parse(&needed).ok_or_else(|| HttpError::internal("admin scope"))?;
    if !principal.scopes.allows(&scope) {
        return Err(HttpError::insufficient_scope(&needed));
    }
    if principal.role == Role::User && principal.acl_role.as_deref() != Some("admin") {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only staff users with the ACL role admin may use the admin API",
        ));
    }
    Ok(principal)
}

/// `hearth plugin …`.
#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// How every plugin stands on each site (asks the running server; without one, how
    /// the files would load).
    List {
        /// Only this site.
        #[arg(long)]
        site: Option<String>,
        /// The plugins file, when no server runs (default: as `hearth serve` finds it).
        #[arg(long)]
        plugins: Option<PathBuf>,
    },
    /// Makes the running server reload each site's plugins from disk now.
    Reload {
        /// Only this site (default: every site, one after the other).
        #[arg(long)]
        site: Option<String>,
    },
    /// Loads a plugin file, verifies it against this host and prints its description.
    Check {
        /// The component file.
        file: PathBuf,
    },
    /// Scaffolds a plugin crate that builds and passes its tests at once.
    New {
        /// The plugin's name (kebab-case).
        name: String,
        /// The folder to create it in (default: the current folder).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// The SDK's folder, for a crate outside the Hearth workspace (default: the SDK
        /// this host was built with).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Runs requests against a plugin file with no server, on a scratch SQLite database,
    /// and prints each answer as JSON (the server's token, scope and ACL checks do not
    /// apply: the request says who calls).
    Call {
        /// The component file.
        file: PathBuf,
        /// A JSON file with one request or a list of requests, run in order:
        /// `{"method": "POST", "path": "/api/x", "query": {}, "body": {}, "caller": {}}`.
        #[arg(long)]
        request: PathBuf,
    },
}

/// Runs `hearth plugin …`.
pub async fn run(data_dir: &Path, command: PluginCommand) -> Result<()> {
    match command {
        PluginCommand::List { site, plugins } => {
            let sites = Sites::open(data_dir).await?;
            let names = site_names(&sites, site).await?;
            let client = Client::new(&sites).await?;
            let mut first = true;
            for name in &names {
                let site = open_site(&sites, name).await?;
                match client.list(&site).await {
                    Ok(list) => {
                        if first {
                            println!("server {}", client.base);
                        }
                        print_statuses(&list.site, &list.plugins);
                    }
                    Err(ClientError::NoServer(why)) => {
                        drop(site);
                        sites.close().await;
                        println!(
                            "no server answers at {} ({why}); showing how the files would load",
                            client.base
                        );
                        return list_files(data_dir, &names, plugins).await;
                    }
                    Err(ClientError::Other(error)) => return Err(error),
                }
                first = false;
            }
            sites.close().await;
            Ok(())
        }
        PluginCommand::Reload { site } => {
            let sites = Sites::open(data_dir).await?;
            let names = site_names(&sites, site).await?;
            let client = Client::new(&sites).await?;
            if names.is_empty() {
                bail!("there are no sites");
            }
            // Each site's reload is asked for with that site's own token: the admin API
            // reloads only the site its token belongs to.
            let mut failed = false;
            for name in &names {
                let site = open_site(&sites, name).await?;
                let answer = client.reload(&site).await.map_err(|error| match error {
                    ClientError::NoServer(why) => anyhow::anyhow!(
                        "no server answers at {} ({why}); a server reloads its plugins when it starts",
                        client.base
                    ),
                    ClientError::Other(error) => error,
                })?;
                if answer.report.changed.is_empty() {
                    println!("site {name} reloaded: nothing changed");
                } else {
                    println!(
                        "site {name} reloaded: now serving {}",
                        answer.report.changed.join(", ")
                    );
                }
                for error in &answer.report.errors {
                    println!("error: {error}");
                }
                print_statuses(&answer.site, &answer.plugins);
                failed |= !answer.report.errors.is_empty();
            }
            sites.close().await;
            if failed {
                bail!("some plugins did not reload; the last good versions keep serving")
            }
            Ok(())
        }
        PluginCommand::Check { file } => check(data_dir, &file).await,
        PluginCommand::New { name, dir, sdk } => {
            let created = super::tooling::new_plugin(&dir, &name, sdk.as_deref())?;
            println!("created {}", created.display());
            println!("next: cd {} && cargo test", created.display());
            Ok(())
        }
        PluginCommand::Call { file, request } => {
            let text = std::fs::read_to_string(&request)
                .with_context(|| format!("reading {}", request.display()))?;
            let requests = super::tooling::parse_requests(&text)
                .with_context(|| format!("in {}", request.display()))?;
            let config = Config::load(data_dir, &Overrides::default())?;
            let engine = local_engine(&config)?;
            for answer in super::tooling::call(&engine, &file, &requests).await? {
                println!("{}", serde_json::to_string_pretty(&answer)?);
            }
            Ok(())
        }
    }
}

async fn site_names(sites: &Sites, site: Option<String>) -> Result<Vec<String>> {
    Ok(match site {
        Some(site) => vec![site],
        None => sites.list().await?.into_iter().map(|(n, _)| n).collect(),
    })
}

async fn open_site(sites: &Sites, name: &str) -> Result<Arc<Site>> {
    sites
        .load(name)
        .await?
        .with_context(|| format!("the site '{name}' does not exist (see `hearth site list`)"))
}

fn print_statuses(site: &str, plugins: &[PluginStatus]) {
    println!("site {site}");
    println!("  NAME\tVERSION\tCONTRACT\tSTATE\tLOADED AT\tSHA-256");
    for p in plugins {
        let dash = || "-".to_owned();
        println!(
            "  {}\t{}\t{}\t{}\t{}\t{}",
            p.name,
            p.version.clone().unwrap_or_else(dash),
            p.contract.clone().unwrap_or_else(dash),
            p.state.name(),
            p.loaded_at.clone().unwrap_or_else(dash),
            p.hash.clone().unwrap_or_else(dash),
        );
        if let Some(error) = &p.last_error {
            println!("    last error: {error}");
        }
    }
}

/// The file-level view when no server runs.
async fn list_files(data_dir: &Path, sites: &[String], plugins: Option<PathBuf>) -> Result<()> {
    let overrides = Overrides {
        plugins,
        ..Overrides::default()
    };
    let config = Config::load(data_dir, &overrides)?;
    let engine = local_engine(&config)?;
    let registry = Registry::inspect(engine, &config.plugins_file).await;
    for site in sites {
        print_statuses(site, &registry.statuses(site));
    }
    Ok(())
}

/// An engine for CLI commands that load plugins without a server, with the data folder's
/// compile cache.
pub fn local_engine(config: &Config) -> Result<Arc<Engine>> {
    let cache = config
        .cache_dir
        .clone()
        .unwrap_or_else(|| config.data_dir.join("cache"));
    Engine::new(&cache, 16)
}

/// `hearth plugin check FILE`.
async fn check(data_dir: &Path, file: &Path) -> Result<()> {
    let config = Config::load(data_dir, &Overrides::default())?;
    let engine = local_engine(&config)?;
    let loaded = loader::load(&engine, file).await?;
    println!("{} {}", loaded.name, loaded.version);
    if !loaded.description.is_empty() {
        println!("  {}", loaded.description);
    }
    println!("  contract  hearth:plugin@{}", loaded.contract);
    println!("  sha-256   {}", loaded.hash);
    println!("  reads     {}", loaded.reads.join(", "));
    println!("  writes    {}", loaded.writes.join(", "));
    println!("  config    {}", loaded.config_keys.join(", "));
    if let Some(namespace) = &loaded.namespace {
        // The parser's checks of every migration, for both databases, before any site.
        for kind in [crate::db::Kind::Sqlite, crate::db::Kind::Postgres] {
            for migration in loaded.migrations.iter() {
                super::migrations::check(&loaded.name, namespace, migration, kind)?;
            }
        }
        let list: Vec<String> = loaded
            .migrations
            .iter()
            .map(|m| format!("{} {}", m.version, m.name))
            .collect();
        println!("  owns      {namespace}… (migrations {})", list.join(", "));
    }
    println!("  routes");
    for route in &loaded.routes {
        let family = match route.family {
            Family::Api => "/api",
            Family::Portal => "/portal",
            Family::Fhir => "/fhir",
            Family::Other => "",
        };
        let scope = if route.anonymous {
            "(anonymous)".to_owned()
        } else {
            route.scope.clone()
        };
        println!(
            "    {:<6} {family}{:<40} {scope:<20} {}",
            route.method.as_str(),
            route.path,
            route.acl
        );
    }
    // Collisions inside the plugin itself are load errors on every site.
    super::SiteTable::new(vec![Arc::new(super::SitePlugin {
        grants: Arc::new(
            crate::db::grants::Grants::new(
                &loaded.name,
                loaded.reads.clone(),
                loaded.writes.clone(),
            )
            .map_err(anyhow::Error::msg)?
            .with_namespace(loaded.namespace.clone()),
        ),
        limits: Default::default(),
        config: Default::default(),
        permits: Arc::new(tokio::sync::Semaphore::new(1)),
        loaded: Arc::new(loaded),
    })])?;
    println!("ok: this host can serve it");
    Ok(())
}

/// Why the CLI could not use the server.
pub enum ClientError {
    /// Nothing answers at the recorded URL.
    NoServer(String),
    /// The server answered with an error, or something else failed.
    Other(anyhow::Error),
}

/// Calls a running server's admin API with tokens minted from the data folder.
pub struct Client {
    /// The server's base URL.
    pub base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for the server that last ran on this data folder.
    pub async fn new(sites: &Sites) -> Result<Client> {
        let base = match sites.setting("public_url").await? {
            Some(url) => url,
            None => "https://localhost:9300".to_owned(),
        };
        let mut builder = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .no_proxy();
        let cert = sites.data_dir().join("tls").join("cert.pem");
        if let Ok(pem) = std::fs::read(&cert) {
            let certificate = reqwest::Certificate::from_pem(&pem)
                .with_context(|| format!("reading {}", cert.display()))?;
            builder = builder.add_root_certificate(certificate);
        }
        Ok(Client {
            base,
            http: builder.build().context("building the HTTP client")?,
        })
    }

    async fn token(&self, site: &Site) -> Result<String, ClientError> {
        let subject = crate::cli::system_user(site)
            .await
            .map_err(ClientError::Other)?;
        let grant = Grant {
            client_id: "hearth-cli".into(),
            subject,
            role: Role::System,
            username: None,
            acl_role: None,
            scope: format!("system/{ADMIN_RESOURCE}.ru"),
            patient: None,
            context: serde_json::json!({}),
            lifetime: 60,
        };
        Ok(tokens::issue(site, &self.base, &grant)
            .await
            .map_err(|e| ClientError::Other(anyhow::anyhow!("issuing a token: {e:?}")))?
            .token)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        site: &Site,
        method: reqwest::Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let token = self.token(site).await?;
        let url = format!("{}/apis/{}/admin/plugins{path}", self.base, site.name);
        let response = self
            .http
            .request(method, &url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    ClientError::NoServer(e.to_string())
                } else {
                    ClientError::Other(anyhow::anyhow!("calling {url}: {e}"))
                }
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| ClientError::Other(anyhow::anyhow!("reading the answer: {e}")))?;
        if !status.is_success() {
            return Err(ClientError::Other(anyhow::anyhow!(
                "{url} answered {status}: {text}"
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Other(anyhow::anyhow!("{url} answered {e}: {text}")))
    }

    /// The server's list for `site`.
    pub async fn list(&self, site: &Site) -> Result<PluginList, ClientError> {
        self.call(site, reqwest::Method::GET, "").await
    }

    /// Makes the server reload; its answer for `site`.
    pub async fn reload(&self, site: &Site) -> Result<ReloadAnswer, ClientError> {
        self.call(site, reqwest::Method::POST, "/reload").await
    }
}
