//! `hearth plugin …`: list, reload, check, scaffold and call plugins.
//!
//! The CLI runs in its own process, so `list` and `reload` reach a running server through
//! the admin API ([`crate::admin`]): the CLI reads the server's public URL from the data
//! folder (the server records it at start), mints a one-minute `system/hearth-admin.ru`
//! token with the site's own key, and calls the API (trusting the data folder's
//! certificate). When no server answers, `plugin list` loads the files itself and shows
//! how they would load; `plugin reload` fails, as there is nothing to reload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::admin::{ADMIN_RESOURCE, PluginList, ReloadAnswer};
use crate::auth::tokens::{self, Grant, Role};
use crate::config::{Config, Overrides};
use crate::error::Family;
use crate::plugins::engine::Engine;
use crate::plugins::registry::PluginStatus;
use crate::plugins::{Registry, loader};
use crate::sites::{Site, Sites};

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
            let sites = super::prepare(data_dir).await?;
            let names = site_names(&sites, site).await?;
            let client = Client::new(&sites).await?;
            let mut first = true;
            for name in &names {
                let site = sites.require(name).await?;
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
            let sites = super::prepare(data_dir).await?;
            let names = site_names(&sites, site).await?;
            let client = Client::new(&sites).await?;
            if names.is_empty() {
                bail!("there are no sites");
            }
            // Each site's reload is asked for with that site's own token: the admin API
            // reloads only the site its token belongs to.
            let mut failed = false;
            for name in &names {
                let site = sites.require(name).await?;
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
            let created = crate::plugins::tooling::new_plugin(&dir, &name, sdk.as_deref())?;
            println!("created {}", created.display());
            println!("next: cd {} && cargo test", created.display());
            Ok(())
        }
        PluginCommand::Call { file, request } => {
            let text = std::fs::read_to_string(&request)
                .with_context(|| format!("reading {}", request.display()))?;
            let requests = crate::plugins::tooling::parse_requests(&text)
                .with_context(|| format!("in {}", request.display()))?;
            let config = Config::load(data_dir, &Overrides::default())?;
            let engine = local_engine(&config)?;
            for answer in crate::plugins::tooling::call(&engine, &file, &requests).await? {
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
                crate::plugins::migrations::check(&loaded.name, namespace, migration, kind)?;
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
    crate::plugins::SiteTable::new(
        vec![Arc::new(crate::plugins::SitePlugin {
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
        })],
        &Default::default(),
    )?;
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

    /// A one-minute token for `site`'s system user with `scope`.
    async fn token(&self, site: &Site, scope: &str) -> Result<String, ClientError> {
        let subject = crate::auth::users::system_user(site)
            .await
            .map_err(ClientError::Other)?;
        let grant = Grant {
            client_id: "hearth-cli".into(),
            subject,
            role: Role::System,
            username: None,
            acl_role: None,
            scope: scope.to_owned(),
            patient: None,
            context: serde_json::json!({}),
            lifetime: 60,
        };
        Ok(tokens::issue(site, &self.base, &grant)
            .await
            .map_err(|e| ClientError::Other(anyhow::anyhow!("issuing a token: {e:?}")))?
            .token)
    }

    /// Sends `method` to `/apis/{site}{path}` with a token of `scope` (and `body` as
    /// `application/fhir+json`); answers the body of a 2xx answer, else an error that
    /// quotes the server's.
    pub async fn send(
        &self,
        site: &Site,
        method: reqwest::Method,
        path: &str,
        scope: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<String, ClientError> {
        let token = self.token(site, scope).await?;
        let url = format!("{}/apis/{}{path}", self.base, site.name);
        let mut request = self.http.request(method, &url).bearer_auth(token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/fhir+json")
                .body(body.to_string());
        }
        let response = request.send().await.map_err(|e| {
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
        Ok(text)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        site: &Site,
        method: reqwest::Method,
        path: &str,
    ) -> Result<T, ClientError> {
        let path = format!("/admin/plugins{path}");
        let scope = format!("system/{ADMIN_RESOURCE}.ru");
        let text = self.send(site, method, &path, &scope, None).await?;
        serde_json::from_str(&text)
            .map_err(|e| ClientError::Other(anyhow::anyhow!("{path} answered {e}: {text}")))
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
