//! The plugin runtime: engine, contract bindings, loading and verification, which plugins
//! serve which routes on each site, and calling them under limits.

pub mod apidocs;
pub mod bindings;
pub mod compat;
pub mod engine;
pub mod host;
pub mod loader;
pub mod manifest;
pub mod migrations;
pub mod registry;
pub mod runtime;
pub mod schema;
pub mod tooling;
pub mod wasi;
pub mod watcher;
pub mod words;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Result, bail};

use crate::auth::scopes::Scope;
use crate::db::grants::Grants;
use loader::{Family, Loaded, Method, RouteDef, Segment};
use manifest::Limits;

pub use registry::{PluginState, PluginStatus, Registry};

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
    /// The scopes the routes declare, in every context their family may be called in
    /// (`/api`: `user/`, `/portal`: `patient/`, FHIR and others: all three), each once.
    pub scopes: Vec<Scope>,
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
                    let root = match def.family {
                        Family::Api => "/api",
                        Family::Portal => "/portal",
                        Family::Fhir => "/fhir",
                        Family::Other => "",
                    };
                    bail!(
                        "route {} {root}{} is claimed by both plugin {} and plugin {}",
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
        let mut fhir_types: HashMap<&str, &str> = HashMap::new();
        for plugin in &plugins {
            for declared in &plugin.loaded.fhir {
                if let Some(other) = fhir_types.insert(&declared.resource_type, &plugin.loaded.name)
                {
                    bail!(
                        "the FHIR type {} is declared by both plugin {other} and plugin {}",
                        declared.resource_type,
                        plugin.loaded.name
                    );
                }
            }
        }
        for list in routes.values_mut() {
            // Literal segments win over parameters, position by position.
            list.sort_by(|a, b| {
                specificity(&a.def().segments).cmp(&specificity(&b.def().segments))
            });
        }
        let mut scopes: Vec<Scope> = Vec::new();
        for bound in routes.values().flatten() {
            let def = bound.def();
            let Some(requirement) = &def.requirement else {
                continue;
            };
            let contexts: &[&str] = match def.family {
                Family::Api => &["user"],
                Family::Portal => &["patient"],
                Family::Fhir | Family::Other => crate::auth::scopes::CONTEXTS,
            };
            for context in contexts {
                let scope = requirement.in_context(context);
                if !scopes.contains(&scope) {
                    scopes.push(scope);
                }
            }
        }
        Ok(SiteTable {
            plugins,
            routes,
            scopes,
        })
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
