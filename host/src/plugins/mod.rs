//! The plugin runtime: engine, contract bindings, loading and verification, which plugins
//! serve which routes on each site, and calling them under limits.

pub mod bindings;
pub mod engine;
pub mod host;
pub mod loader;
pub mod manifest;
pub mod runtime;
pub mod wasi;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use parking_lot::RwLock;

use crate::db::grants::Grants;
use engine::Engine;
use loader::{Family, Loaded, Method, RouteDef, Segment};
use manifest::{Limits, Manifest};

/// A plugin as one site uses it: the loaded component with that site's grants,
/// configuration and limits.
pub struct SitePlugin {
    /// The component.
    pub loaded: Arc<Loaded>,
    /// Its grants.
    pub grants: Arc<Grants>,
    /// Its configuration on the site.
    pub config: Arc<HashMap<String, String>>,
    /// Its limits.
    pub limits: Limits,
    /// Bounds concurrent instances.
    pub permits: Arc<tokio::sync::Semaphore>,
}

/// A route bound to the plugin that serves it.
#[derive(Clone)]
pub struct Bound {
    /// The plugin.
    pub plugin: Arc<SitePlugin>,
    /// The route (index into the plugin's routes).
    pub route: usize,
}

impl Bound {
    /// The route definition.
    pub fn def(&self) -> &RouteDef {
        &self.plugin.loaded.routes[self.route]
    }
}

/// What a site serves: its plugins and their routes, ready to match.
#[derive(Default)]
pub struct SiteTable {
    /// The plugins, in manifest order.
    pub plugins: Vec<Arc<SitePlugin>>,
    /// Routes by family, most specific first.
    routes: HashMap<Family, Vec<Bound>>,
}

/// The result of matching a request path.
pub enum Match {
    /// A route answers this method and path; the parameter values in template order.
    Found(Bound, Vec<String>),
    /// The path is served, but not for this method.
    WrongMethod(Vec<Method>),
    /// Nothing serves the path.
    NotFound,
}

impl SiteTable {
    /// Builds the table; two plugins claiming the same route is an error naming both.
    pub fn new(plugins: Vec<Arc<SitePlugin>>) -> Result<SiteTable> {
        let mut routes: HashMap<Family, Vec<Bound>> = HashMap::new();
        for plugin in &plugins {
            for (route, def) in plugin.loaded.routes.iter().enumerate() {
                let list = routes.entry(def.family).or_default();
                if let Some(other) = list.iter().find(|b| {
                    let o = b.def();
                    o.method == def.method && same_shape(&o.segments, &def.segments)
                }) {
                    bail!(
                        "route {} {} is claimed by both plugin {} and plugin {}",
                        def.method,
                        def.path,
                        other.plugin.loaded.name,
                        plugin.loaded.name
                    );
                }
                list.push(Bound {
                    plugin: plugin.clone(),
                    route,
                });
            }
        }
        for list in routes.values_mut() {
            // Literal segments win over parameters, position by position.
            list.sort_by(|a, b| {
                specificity(&a.def().segments).cmp(&specificity(&b.def().segments))
            });
        }
        Ok(SiteTable { plugins, routes })
    }

    /// Matches `method` and `path` (below the family root) in `family`.
    pub fn find(&self, family: Family, method: &Method, path: &str) -> Match {
        let Some(list) = self.routes.get(&family) else {
            return Match::NotFound;
        };
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        let parts: Vec<&str> = if trimmed.is_empty() {
            Vec::new()
        } else {
            trimmed.split('/').collect()
        };
        let mut allowed = Vec::new();
        for bound in list {
            let def = bound.def();
            if let Some(params) = match_segments(&def.segments, &parts) {
                if def.method == *method {
                    return Match::Found(bound.clone(), params);
                }
                if !allowed.contains(&def.method) {
                    allowed.push(def.method.clone());
                }
            }
        }
        if allowed.is_empty() {
            Match::NotFound
        } else {
            Match::WrongMethod(allowed)
        }
    }

    /// Every bound route, for descriptions.
    pub fn routes(&self) -> impl Iterator<Item = &Bound> {
        self.routes.values().flatten()
    }
}

fn same_shape(a: &[Segment], b: &[Segment]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|pair| match pair {
            (Segment::Literal(x), Segment::Literal(y)) => x == y,
            (Segment::Param(_), Segment::Param(_)) => true,
            _ => false,
        })
}

fn specificity(segments: &[Segment]) -> Vec<u8> {
    segments
        .iter()
        .map(|s| match s {
            Segment::Literal(_) => 0,
            Segment::Param(_) => 1,
        })
        .collect()
}

fn match_segments(template: &[Segment], parts: &[&str]) -> Option<Vec<String>> {
    if template.len() != parts.len() {
        return None;
    }
    let mut params = Vec::new();
    for (segment, part) in template.iter().zip(parts) {
        match segment {
            Segment::Literal(literal) if literal == part => {}
            Segment::Param(_) if !part.is_empty() && part.chars().all(loader::param_char) => {
                params.push((*part).to_owned())
            }
            _ => return None,
        }
    }
    Some(params)
}

/// One load attempt of a plugin, for `hearth plugin list` and the admin API.
#[derive(Debug, Clone)]
pub struct Status {
    /// The plugin's name in the manifest.
    pub name: String,
    /// The file.
    pub file: PathBuf,
    /// Version, contract, hash and load time of the version serving.
    pub serving: Option<(String, String, String, time::OffsetDateTime)>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// Every site's table, swapped atomically when plugins change.
pub struct Registry {
    /// The engine.
    pub engine: Arc<Engine>,
    manifest_path: PathBuf,
    manifest: ArcSwap<Manifest>,
    loaded: RwLock<HashMap<String, Arc<Loaded>>>,
    tables: RwLock<HashMap<String, Arc<ArcSwap<SiteTable>>>>,
    status: RwLock<HashMap<String, Status>>,
}

impl Registry {
    /// Loads every plugin the manifest names. A plugin that fails to load is an error at
    /// start-up (the server must not come up half-configured).
    pub async fn load(engine: Arc<Engine>, manifest_path: &Path) -> Result<Registry> {
        let manifest = Manifest::load(manifest_path)?;
        let registry = Registry {
            engine,
            manifest_path: manifest_path.to_path_buf(),
            manifest: ArcSwap::from_pointee(manifest.clone()),
            loaded: RwLock::default(),
            tables: RwLock::default(),
            status: RwLock::default(),
        };
        let dir = manifest.plugin_dir(manifest_path);
        for (name, spec) in &manifest.plugins {
            let file = dir.join(&spec.file);
            let loaded = loader::load(&registry.engine, &file).await?;
            check_spec(name, spec, &loaded)?;
            registry.record(name, &file, Ok(&loaded));
            registry
                .loaded
                .write()
                .insert(name.clone(), Arc::new(loaded));
        }
        // Build every named site's table now so configuration errors surface at start-up.
        for site in manifest.sites.keys() {
            registry.build_table(site)?;
        }
        Ok(registry)
    }

    fn record(&self, name: &str, file: &Path, result: Result<&Loaded, &str>) {
        let mut status = self.status.write();
        let entry = status.entry(name.to_owned()).or_insert_with(|| Status {
            name: name.to_owned(),
            file: file.to_path_buf(),
            serving: None,
            last_error: None,
        });
        entry.file = file.to_path_buf();
        match result {
            Ok(loaded) => {
                entry.serving = Some((
                    loaded.version.to_string(),
                    loaded.contract.clone(),
                    loaded.hash.clone(),
                    loaded.loaded_at,
                ));
                entry.last_error = None;
            }
            Err(error) => entry.last_error = Some(error.to_owned()),
        }
    }

    /// The manifest file.
    pub fn manifest_path(&self) -> &Path {
        &self.manifest_path
    }

    /// Load status of every plugin.
    pub fn statuses(&self) -> Vec<Status> {
        let mut list: Vec<Status> = self.status.read().values().cloned().collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    fn build_table(&self, site: &str) -> Result<Arc<ArcSwap<SiteTable>>> {
        let manifest = self.manifest.load();
        let key = if manifest.sites.contains_key(site) {
            site
        } else {
            "*"
        };
        if let Some(table) = self.tables.read().get(key) {
            return Ok(table.clone());
        }
        let loaded = self.loaded.read();
        let mut plugins = Vec::new();
        if let Some(spec) = manifest.sites.get(key) {
            for name in &spec.plugins {
                let component = loaded
                    .get(name)
                    .with_context(|| format!("plugin {name} is not loaded"))?
                    .clone();
                let plugin_spec = &manifest.plugins[name];
                let mut config: HashMap<String, String> =
                    plugin_spec.config.clone().into_iter().collect();
                if let Some(overrides) = spec.config.get(name) {
                    config.extend(overrides.clone());
                }
                for key in config.keys() {
                    if !component.config_keys.iter().any(|k| k == key) {
                        bail!(
                            "site {key_site}: plugin {name} does not declare the configuration key {key}",
                            key_site = key
                        );
                    }
                }
                let limits = plugin_spec.limits();
                plugins.push(Arc::new(SitePlugin {
                    grants: Arc::new(
                        Grants::new(name, component.reads.clone(), component.writes.clone())
                            .map_err(anyhow::Error::msg)?,
                    ),
                    loaded: component,
                    config: Arc::new(config),
                    limits,
                    permits: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
                }));
            }
        }
        let table = Arc::new(ArcSwap::from_pointee(
            SiteTable::new(plugins).with_context(|| format!("plugins of site {key}"))?,
        ));
        self.tables.write().insert(key.to_owned(), table.clone());
        Ok(table)
    }

    /// What `site` serves now.
    pub fn table(&self, site: &str) -> Arc<SiteTable> {
        if let Some(table) = self.tables.read().get(site) {
            return table.load_full();
        }
        match self.build_table(site) {
            Ok(table) => table.load_full(),
            Err(error) => {
                tracing::error!("building the route table of site {site}: {error:#}");
                Arc::new(SiteTable::default())
            }
        }
    }
}

/// Checks a loaded component against its manifest entry.
fn check_spec(name: &str, spec: &manifest::PluginSpec, loaded: &Loaded) -> Result<()> {
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
