//! Which plugin version serves which site, and replacing them while the server runs.
//!
//! The registry keeps the last good version of every plugin and one route table per site
//! entry of `plugins.toml`. A reload reads the manifest and every plugin file again,
//! compiles and verifies what changed (exports, contract version, the semver requirement,
//! configuration keys, grants the site allows, route collisions), builds each site's new
//! table and publishes all of them with one atomic pointer swap. Requests hold the table
//! (and through it the plugin versions) they started with, so they finish on that version;
//! the next request sees the new one.
//!
//! Nothing a reload finds wrong reaches clients: a bad file keeps the plugin's last good
//! version, a table that cannot be built keeps the site's previous table, a manifest that
//! does not parse keeps everything. The reason is recorded and shown by
//! [`Registry::statuses`] (`hearth plugin list`, `GET /apis/{site}/admin/plugins`).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::engine::Engine;
use super::loader::{self, Loaded};
use super::manifest::{Manifest, PluginSpec, SiteSpec};
use super::schema::{Migrator, Target};
use super::{SitePlugin, SiteTable};
use crate::db::grants::Grants;
use crate::telemetry::Telemetry;

/// How a plugin stands on a site.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginState {
    /// The version from the current file and configuration is serving.
    Serving,
    /// The last attempt to load a change failed; the last good version is serving.
    Stale,
    /// No version of the plugin serves the site.
    Failed,
}

impl PluginState {
    /// The name shown by the CLI and the admin API.
    pub fn name(self) -> &'static str {
        match self {
            PluginState::Serving => "serving",
            PluginState::Stale => "stale",
            PluginState::Failed => "failed",
        }
    }
}

/// One plugin on one site, as `hearth plugin list` and the admin API show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginStatus {
    /// The plugin's name in `plugins.toml`.
    pub name: String,
    /// The component file the manifest names.
    pub file: String,
    /// The serving version's own version.
    pub version: Option<String>,
    /// The contract (WIT) version the serving version was built against.
    pub contract: Option<String>,
    /// SHA-256 of the serving component file.
    pub hash: Option<String>,
    /// Serving, stale or failed.
    pub state: PluginState,
    /// Why the last load attempt failed, when it did.
    pub last_error: Option<String>,
    /// When the serving version was loaded (RFC 3339, UTC).
    pub loaded_at: Option<String>,
}

/// What a reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// Plugins whose serving version changed, as `name version`.
    pub changed: Vec<String>,
    /// Every problem found (each also recorded in the statuses).
    pub errors: Vec<String>,
    /// The plugins whose new file, settings or migrations were refused (for the metrics).
    #[serde(skip)]
    pub failed: Vec<String>,
}

/// Adds to `changed` ("name version", once each) the plugins of `table` that are not the
/// very same loaded version in `before`, the table they replace.
fn note_changes(before: Option<&Arc<SiteTable>>, table: &SiteTable, changed: &mut Vec<String>) {
    let before: HashMap<&str, &Arc<Loaded>> = before
        .map(|t| {
            t.plugins
                .iter()
                .map(|p| (p.loaded.name.as_str(), &p.loaded))
                .collect()
        })
        .unwrap_or_default();
    for plugin in &table.plugins {
        let same = before
            .get(plugin.loaded.name.as_str())
            .is_some_and(|old| Arc::ptr_eq(old, &plugin.loaded));
        let label = format!("{} {}", plugin.loaded.name, plugin.loaded.version);
        if !same && !changed.contains(&label) {
            changed.push(label);
        }
    }
}

/// The table key of `site`: its own manifest entry, else `"*"`.
fn table_key<'a>(manifest: &Manifest, site: &'a str) -> &'a str {
    if manifest.sites.contains_key(site) {
        site
    } else {
        "*"
    }
}

/// A grant set's identity: plugin, sorted reads, sorted writes, namespace.
type GrantsKey = (String, Vec<String>, Vec<String>, Option<String>);

#[derive(Default)]
struct Inner {
    /// The manifest the tables were last built from.
    manifest: Option<Manifest>,
    /// The last good version of each plugin.
    loaded: HashMap<String, Arc<Loaded>>,
    /// Why a plugin's latest file or spec could not be used.
    plugin_errors: HashMap<String, String>,
    /// The hash of a file that failed to load, and why (not compiled again).
    load_failures: HashMap<String, (String, String)>,
    /// Why a site's table could not be rebuilt.
    site_errors: HashMap<String, String>,
    /// Why the manifest could not be read.
    manifest_error: Option<String>,
    /// Grant sets by plugin and tables, shared across reloads so SQL verdicts stay cached.
    grants: HashMap<GrantsKey, Arc<Grants>>,
}

/// Every site's route table, replaced atomically when plugins change.
pub struct Registry {
    /// The engine.
    pub engine: Arc<Engine>,
    manifest_path: PathBuf,
    tables: ArcSwap<HashMap<String, Arc<SiteTable>>>,
    inner: Mutex<Inner>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
    /// The file watcher, while one runs (see [`super::watcher`]).
    pub(super) watcher: Mutex<Option<notify::RecommendedWatcher>>,
    /// Applies plugins' migrations to the sites' databases (none when inspecting files).
    migrator: Option<Arc<dyn Migrator>>,
    /// Where reloads are counted, once the application gives it.
    telemetry: std::sync::OnceLock<Arc<Telemetry>>,
}

impl Registry {
    /// Loads every plugin the manifest names and builds every site's table. Any problem is
    /// an error at start-up: the server must not come up half-configured.
    pub async fn load(engine: Arc<Engine>, manifest_path: &Path) -> Result<Registry> {
        Registry::load_migrating(engine, manifest_path, None).await
    }

    /// Like [`Registry::load`], applying each plugin version's migrations with `migrator`
    /// to the sites it is to serve before it serves them (on every reload too).
    pub async fn load_migrating(
        engine: Arc<Engine>,
        manifest_path: &Path,
        migrator: Option<Arc<dyn Migrator>>,
    ) -> Result<Registry> {
        let registry = Registry {
            engine,
            manifest_path: manifest_path.to_path_buf(),
            tables: ArcSwap::from_pointee(HashMap::new()),
            inner: Mutex::default(),
            reloading: tokio::sync::Mutex::new(()),
            watcher: Mutex::new(None),
            migrator,
            telemetry: Default::default(),
        };
        let report = registry.reload().await;
        if !report.errors.is_empty() {
            bail!("{}", report.errors.join("; "));
        }
        Ok(registry)
    }

    /// Loads what it can and records the rest, as a reload does: how the files would
    /// load (`hearth plugin list` when no server runs).
    pub async fn inspect(engine: Arc<Engine>, manifest_path: &Path) -> Registry {
        let registry = Registry {
            engine,
            manifest_path: manifest_path.to_path_buf(),
            tables: ArcSwap::from_pointee(HashMap::new()),
            inner: Mutex::default(),
            reloading: tokio::sync::Mutex::new(()),
            watcher: Mutex::new(None),
            migrator: None,
            telemetry: Default::default(),
        };
        registry.reload().await;
        registry
    }

    /// The manifest file.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest_path
    }

    /// The folder plugin files are read from (per the last good manifest).
    pub fn plugin_dir(&self) -> Option<PathBuf> {
        self.inner
            .lock()
            .manifest
            .as_ref()
            .map(|m| m.plugin_dir(&self.manifest_path))
    }

    /// What `site` serves now. Cheap: one atomic load and a map lookup.
    pub fn table(&self, site: &str) -> Arc<SiteTable> {
        let tables = self.tables.load();
        match tables.get(site).or_else(|| tables.get("*")) {
            Some(table) => table.clone(),
            None => Arc::new(SiteTable::default()),
        }
    }

    /// Reads the manifest and the plugin files again and swaps in what changed. Never
    /// fails: problems are recorded (see [`Registry::statuses`]) and returned, and the
    /// last good versions keep serving.
    pub async fn reload(&self) -> ReloadReport {
        let report = self.reload_all().await;
        self.count(&report);
        report
    }

    /// Counts a reload's outcome per plugin, once [`Registry::observe`] gave the metrics.
    fn count(&self, report: &ReloadReport) {
        let Some(telemetry) = self.telemetry.get() else {
            return;
        };
        let mut failed: Vec<&String> = report.failed.iter().collect();
        failed.sort();
        failed.dedup();
        for name in failed {
            telemetry.reloaded(name, false);
        }
        // `changed` holds "name version".
        for label in &report.changed {
            let name = label
                .split_once(' ')
                .map_or(label.as_str(), |(name, _)| name);
            telemetry.reloaded(name, true);
        }
    }

    /// Counts every reload from now on in `telemetry` (`hearth_plugin_reloads_total`).
    pub fn observe(&self, telemetry: Arc<Telemetry>) {
        let _ = self.telemetry.set(telemetry);
    }

    async fn reload_all(&self) -> ReloadReport {
        let _one_at_a_time = self.reloading.lock().await;
        let mut report = ReloadReport::default();
        let manifest = match Manifest::load(&self.manifest_path) {
            Ok(manifest) => manifest,
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!("plugins.toml not reloaded: {message}");
                self.inner.lock().manifest_error = Some(message.clone());
                report.errors.push(message);
                return report;
            }
        };
        self.inner.lock().manifest_error = None;
        let dir = manifest.plugin_dir(&self.manifest_path);

        // Every plugin: the new file if it loads and fits its spec, else the last good
        // version if that still fits, else none.
        let mut chosen: HashMap<String, Arc<Loaded>> = HashMap::new();
        let mut loaded_ok = Vec::new();
        for (name, spec) in &manifest.plugins {
            let file = dir.join(&spec.file);
            let previous = self.inner.lock().loaded.get(name).cloned();
            match self.load_plugin(name, spec, &file, previous.as_ref()).await {
                Ok(loaded) => {
                    if previous.as_ref().is_none_or(|p| !Arc::ptr_eq(p, &loaded)) {
                        tracing::info!(
                            "plugin {name} {} loaded from {}",
                            loaded.version,
                            file.display()
                        );
                    }
                    // Cleared once its migrations are applied too (below).
                    loaded_ok.push(name.clone());
                    chosen.insert(name.clone(), loaded);
                }
                Err(error) => {
                    let message = format!("{error:#}");
                    tracing::error!("plugin {name} not reloaded: {message}");
                    report.errors.push(format!("plugin {name}: {message}"));
                    report.failed.push(name.clone());
                    self.inner
                        .lock()
                        .plugin_errors
                        .insert(name.clone(), message);
                    if let Some(previous) = previous
                        && check_spec(name, spec, &previous).is_ok()
                    {
                        chosen.insert(name.clone(), previous);
                    }
                }
            }
        }

        // Every site entry: a new table from the chosen versions, else the previous table.
        let old_tables = self.tables.load_full();
        let mut tables = HashMap::new();
        let named: Vec<String> = manifest
            .sites
            .keys()
            .filter(|k| *k != "*")
            .cloned()
            .collect();
        let mut migration_errors = HashMap::new();
        for (key, site) in &manifest.sites {
            let target = || Target::Entry {
                key,
                named: named.clone(),
            };
            let chosen = self
                .migrate(
                    target,
                    site,
                    &chosen,
                    old_tables.get(key),
                    &mut report,
                    &mut migration_errors,
                )
                .await;
            match self.build_table(key, site, &manifest, &chosen, old_tables.get(key)) {
                Ok(table) => {
                    self.inner.lock().site_errors.remove(key);
                    tables.insert(key.clone(), Arc::new(table));
                }
                Err(error) => {
                    let message = format!("{error:#}");
                    tracing::error!("plugins of site {key} not reloaded: {message}");
                    report.errors.push(format!("site {key}: {message}"));
                    self.inner.lock().site_errors.insert(key.clone(), message);
                    if let Some(old) = old_tables.get(key) {
                        tables.insert(key.clone(), old.clone());
                    }
                }
            }
        }
        for (key, table) in &tables {
            note_changes(old_tables.get(key), table, &mut report.changed);
        }
        // The swap: requests from here on see the new tables.
        self.tables.store(Arc::new(tables));
        let mut inner = self.inner.lock();
        for name in loaded_ok {
            match migration_errors.remove(&name) {
                Some(message) => inner.plugin_errors.insert(name, message),
                None => inner.plugin_errors.remove(&name),
            };
        }
        inner.loaded = chosen;
        inner.manifest = Some(manifest);
        report
    }

    /// Reloads what serves `site` only: its entry of `plugins.toml` (or the `"*"` entry)
    /// and the plugins that entry names, read again and swapped in for this site alone.
    /// Every other site keeps the table it has (a site's administrator can reload their
    /// own site, never another), until the next full reload (the watcher's, or a start)
    /// rebuilds every table from the files.
    pub async fn reload_site(&self, site: &str) -> ReloadReport {
        let report = self.reload_one_site(site).await;
        self.count(&report);
        report
    }

    async fn reload_one_site(&self, site: &str) -> ReloadReport {
        let _one_at_a_time = self.reloading.lock().await;
        let mut report = ReloadReport::default();
        let manifest = match Manifest::load(&self.manifest_path) {
            Ok(manifest) => manifest,
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!("plugins.toml not reloaded for site {site}: {message}");
                report.errors.push(message);
                return report;
            }
        };
        let dir = manifest.plugin_dir(&self.manifest_path);
        let key = table_key(&manifest, site).to_owned();
        let spec = manifest.sites.get(&key).cloned().unwrap_or_default();
        let mut chosen: HashMap<String, Arc<Loaded>> = HashMap::new();
        for name in &spec.plugins {
            let plugin_spec = &manifest.plugins[name];
            let file = dir.join(&plugin_spec.file);
            let previous = self.inner.lock().loaded.get(name).cloned();
            match self
                .load_plugin(name, plugin_spec, &file, previous.as_ref())
                .await
            {
                Ok(loaded) => {
                    chosen.insert(name.clone(), loaded);
                }
                Err(error) => {
                    let message = format!("{error:#}");
                    tracing::error!("plugin {name} not reloaded for site {site}: {message}");
                    report.errors.push(format!("plugin {name}: {message}"));
                    report.failed.push(name.clone());
                    if let Some(previous) = previous
                        && check_spec(name, plugin_spec, &previous).is_ok()
                    {
                        chosen.insert(name.clone(), previous);
                    }
                }
            }
        }
        let old_tables = self.tables.load_full();
        let old = old_tables
            .get(site)
            .or_else(|| old_tables.get(&key))
            .cloned();
        let mut migration_errors = HashMap::new();
        let chosen = self
            .migrate(
                || Target::Site(site),
                &spec,
                &chosen,
                old.as_ref(),
                &mut report,
                &mut migration_errors,
            )
            .await;
        self.inner.lock().plugin_errors.extend(migration_errors);
        let table = match self.build_table(&key, &spec, &manifest, &chosen, old.as_ref()) {
            Ok(table) => Arc::new(table),
            Err(error) => {
                let message = format!("{error:#}");
                tracing::error!("plugins of site {site} not reloaded: {message}");
                report.errors.push(format!("site {site}: {message}"));
                return report;
            }
        };
        note_changes(old.as_ref(), &table, &mut report.changed);
        // The site gets a table of its own; every other site keeps what it had.
        let mut tables = (*old_tables).clone();
        tables.insert(site.to_owned(), table);
        self.tables.store(Arc::new(tables));
        report
    }

    /// The plugin versions a site entry is to serve, after applying their migrations to
    /// its sites: a version whose migrations are refused or fail is replaced by the version
    /// the entry's `previous` table serves (or dropped when there is none), and the reason
    /// put in `errors` (by plugin). A version the previous table already serves is only
    /// brought to sites opened since, and never replaced here.
    async fn migrate<'t>(
        &self,
        target: impl Fn() -> Target<'t>,
        site: &SiteSpec,
        chosen: &HashMap<String, Arc<Loaded>>,
        previous: Option<&Arc<SiteTable>>,
        report: &mut ReloadReport,
        errors: &mut HashMap<String, String>,
    ) -> HashMap<String, Arc<Loaded>> {
        let mut chosen = chosen.clone();
        let Some(migrator) = &self.migrator else {
            return chosen;
        };
        for name in &site.plugins {
            let Some(loaded) = chosen.get(name).cloned() else {
                continue;
            };
            let serving = previous.and_then(|table| {
                table
                    .plugins
                    .iter()
                    .find(|p| p.loaded.name == *name)
                    .map(|p| p.loaded.clone())
            });
            if loaded.migrations.is_empty() {
                continue;
            }
            if serving.as_ref().is_some_and(|s| Arc::ptr_eq(s, &loaded)) {
                // Already serving: only sites opened since (made while the server runs)
                // may lack its migrations. A problem there is logged; the version keeps
                // serving where it does.
                if let Err(error) = migrator.migrate(target(), &loaded).await {
                    tracing::warn!(
                        "plugin {} {}: migrations not applied: {error:#}",
                        loaded.name,
                        loaded.version
                    );
                }
                continue;
            }
            if let Err(error) = migrator.migrate(target(), &loaded).await {
                let message = format!("{} {} not applied: {error:#}", loaded.name, loaded.version);
                tracing::error!("plugin {message}");
                report.errors.push(format!("plugin {message}"));
                report.failed.push(name.clone());
                errors.insert(name.clone(), message);
                match serving {
                    Some(serving) => chosen.insert(name.clone(), serving),
                    None => chosen.remove(name),
                };
            }
        }
        chosen
    }

    /// The usable version of plugin `name` from `file`.
    async fn load_plugin(
        &self,
        name: &str,
        spec: &PluginSpec,
        file: &Path,
        previous: Option<&Arc<Loaded>>,
    ) -> Result<Arc<Loaded>> {
        let bytes = tokio::fs::read(file)
            .await
            .with_context(|| format!("reading {}", file.display()))?;
        let hash = hex::encode(Sha256::digest(&bytes));
        if let Some(previous) = previous
            && previous.hash == hash
        {
            check_spec(name, spec, previous)?;
            return Ok(previous.clone());
        }
        let known_failure = self
            .inner
            .lock()
            .load_failures
            .get(name)
            .filter(|(failed, _)| *failed == hash)
            .map(|(_, why)| why.clone());
        if let Some(why) = known_failure {
            bail!("{why}");
        }
        let loaded = match loader::load_off_thread(&self.engine, bytes).await {
            Ok(loaded) => loaded,
            Err(error) => {
                let why = format!("loading {}: {error:#}", file.display());
                self.inner
                    .lock()
                    .load_failures
                    .insert(name.to_owned(), (hash, why.clone()));
                bail!("{why}");
            }
        };
        self.inner.lock().load_failures.remove(name);
        check_spec(name, spec, &loaded)?;
        Ok(Arc::new(loaded))
    }

    /// A site's table from the chosen plugin versions; reuses the previous table's
    /// per-site plugin state when nothing about a plugin changed.
    fn build_table(
        &self,
        key: &str,
        site: &SiteSpec,
        manifest: &Manifest,
        chosen: &HashMap<String, Arc<Loaded>>,
        previous: Option<&Arc<SiteTable>>,
    ) -> Result<SiteTable> {
        let mut plugins = Vec::new();
        for name in &site.plugins {
            let Some(component) = chosen.get(name) else {
                let why = self
                    .inner
                    .lock()
                    .plugin_errors
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "it has no loadable version".into());
                bail!("plugin {name} cannot be loaded: {why}");
            };
            let plugin_spec = &manifest.plugins[name];
            let mut config: HashMap<String, String> =
                plugin_spec.config.clone().into_iter().collect();
            if let Some(overrides) = site.config.get(name) {
                config.extend(overrides.clone());
            }
            for config_key in config.keys() {
                if !component.config_keys.iter().any(|k| k == config_key) {
                    bail!("plugin {name} does not declare the configuration key {config_key}");
                }
            }
            if let Some(allowed) = &site.allow_tables {
                for table in component.reads.iter().chain(&component.writes) {
                    if !allowed.iter().any(|a| a.eq_ignore_ascii_case(table)) {
                        bail!(
                            "plugin {name} declares the table {table}, which allow_tables of site {key} does not list"
                        );
                    }
                }
            }
            let limits = plugin_spec.limits();
            let config = Arc::new(config);
            let reused = previous.and_then(|table| {
                table.plugins.iter().find(|p| {
                    Arc::ptr_eq(&p.loaded, component) && p.limits == limits && p.config == config
                })
            });
            if let Some(reused) = reused {
                plugins.push(reused.clone());
                continue;
            }
            plugins.push(Arc::new(SitePlugin {
                grants: self.grants(name, component)?,
                loaded: component.clone(),
                config,
                limits,
                permits: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
            }));
        }
        SiteTable::new(plugins, &site.routes)
    }

    fn grants(&self, name: &str, component: &Loaded) -> Result<Arc<Grants>> {
        let sorted = |tables: &[String]| -> Vec<String> {
            tables
                .iter()
                .map(|t| t.to_ascii_lowercase())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        };
        let key = (
            name.to_owned(),
            sorted(&component.reads),
            sorted(&component.writes),
            component.namespace.clone(),
        );
        let mut inner = self.inner.lock();
        if let Some(grants) = inner.grants.get(&key) {
            return Ok(grants.clone());
        }
        let grants = Arc::new(
            Grants::new(name, key.1.clone(), key.2.clone())
                .map_err(anyhow::Error::msg)?
                .with_namespace(key.3.clone()),
        );
        inner.grants.insert(key, grants.clone());
        Ok(grants)
    }

    /// The route choices of `site`'s entry of `plugins.toml` (its `routes`, or the `"*"`
    /// entry's): which plugin serves a route two of its plugins declare. Read from the
    /// file as it is now (a reload of one site does not replace the manifest kept for
    /// full reloads), or from the last good manifest when the file does not parse.
    pub fn route_choices(&self, site: &str) -> std::collections::BTreeMap<String, String> {
        let of = |manifest: &Manifest| {
            manifest
                .sites
                .get(table_key(manifest, site))
                .map(|spec| spec.routes.clone())
                .unwrap_or_default()
        };
        match Manifest::load(&self.manifest_path) {
            Ok(manifest) => of(&manifest),
            Err(_) => self
                .inner
                .lock()
                .manifest
                .as_ref()
                .map(of)
                .unwrap_or_default(),
        }
    }

    /// How every plugin stands on `site`: those it serves and those the manifest lists
    /// for it, in manifest order, then any it still serves but no longer lists.
    pub fn statuses(&self, site: &str) -> Vec<PluginStatus> {
        let inner = self.inner.lock();
        let tables = self.tables.load();
        let empty = Manifest::parse("").ok();
        let Some(manifest) = inner.manifest.as_ref().or(empty.as_ref()) else {
            return Vec::new();
        };
        let key = table_key(manifest, site);
        let table = tables.get(site).or_else(|| tables.get(key));
        let mut names: Vec<String> = manifest
            .sites
            .get(key)
            .map(|s| s.plugins.clone())
            .unwrap_or_default();
        if let Some(table) = table {
            for plugin in &table.plugins {
                if !names.contains(&plugin.loaded.name) {
                    names.push(plugin.loaded.name.clone());
                }
            }
        }
        let dir = manifest.plugin_dir(&self.manifest_path);
        names
            .into_iter()
            .map(|name| {
                let serving = table.and_then(|t| {
                    t.plugins
                        .iter()
                        .find(|p| p.loaded.name == name)
                        .map(|p| p.loaded.clone())
                });
                let last_error = inner
                    .manifest_error
                    .as_ref()
                    .map(|e| format!("plugins.toml: {e}"))
                    .or_else(|| inner.plugin_errors.get(&name).cloned())
                    .or_else(|| inner.site_errors.get(key).cloned());
                let state = match (&serving, &last_error) {
                    (None, _) => PluginState::Failed,
                    (Some(_), Some(_)) => PluginState::Stale,
                    (Some(_), None) => PluginState::Serving,
                };
                let file = manifest
                    .plugins
                    .get(&name)
                    .map(|spec| dir.join(&spec.file).display().to_string())
                    .unwrap_or_default();
                PluginStatus {
                    file,
                    version: serving.as_ref().map(|l| l.version.to_string()),
                    contract: serving.as_ref().map(|l| l.contract.clone()),
                    hash: serving.as_ref().map(|l| l.hash.clone()),
                    loaded_at: serving.as_ref().map(|l| rfc3339(l.loaded_at)),
                    state,
                    last_error,
                    name,
                }
            })
            .collect()
    }
}

/// A timestamp as RFC 3339.
pub fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// Checks a loaded component against its manifest entry.
pub fn check_spec(name: &str, spec: &PluginSpec, loaded: &Loaded) -> Result<()> {
    if loaded.name != name {
        bail!(
            "plugins.toml entry {name} points at a component that calls itself {}",
            loaded.name
        );
    }
    if !spec.version.matches(&loaded.version) {
        bail!(
            "plugin {name}: found version {}, but plugins.toml requires {}",
            loaded.version,
            spec.version
        );
    }
    Ok(())
}
