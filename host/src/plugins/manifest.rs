//! `plugins.toml`: which plugins each site loads, from which file, at which version, with
//! which configuration and limits. Unknown keys are errors that name the key and line.
//!
//! ```toml
//! [plugins.patient]
//! file = "patient.wasm"          # relative to `dir` (default: the build's plugin folder)
//! version = "^1.0"               # semver requirement on the plugin's own version
//! timeout_ms = 5000              # optional limits
//! cpu_ms = 2000
//! memory_mib = 64
//! [plugins.patient.config]
//! some_key = "value"
//!
//! [sites."*"]                    # every site not listed by name
//! plugins = ["patient"]
//!
//! [sites.alternate]
//! plugins = ["patient-strict"]
//! allow_tables = ["patient_data", "sequences"]   # optional cap on the plugins' grants
//! [sites.alternate.config.patient-strict]
//! some_key = "other value"
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The parsed file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Folder the plugin files are in, relative to the manifest.
    pub dir: Option<PathBuf>,
    /// Plugin definitions by name.
    #[serde(default)]
    pub plugins: BTreeMap<String, PluginSpec>,
    /// What each site loads; `"*"` is every other site.
    #[serde(default)]
    pub sites: BTreeMap<String, SiteSpec>,
}

/// One plugin definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSpec {
    /// The component file.
    pub file: PathBuf,
    /// Requirement on the plugin's own version.
    #[serde(default = "any_version")]
    pub version: semver::VersionReq,
    /// Wall-clock deadline per request, host calls included.
    pub timeout_ms: Option<u64>,
    /// CPU budget per request: time the request keeps a server thread busy.
    pub cpu_ms: Option<u64>,
    /// Linear memory cap.
    pub memory_mib: Option<u64>,
    /// Concurrent instances.
    pub max_instances: Option<u32>,
    /// Largest response body.
    pub max_response_bytes: Option<usize>,
    /// Whether one instance may serve consecutive read-only calls of one caller (a
    /// Bulk Data export's pages of one type); default true.
    pub keep_instance: Option<bool>,
    /// Configuration values.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
}

fn any_version() -> semver::VersionReq {
    semver::VersionReq::STAR
}

/// What one site loads.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteSpec {
    /// Plugin names.
    #[serde(default)]
    pub plugins: Vec<String>,
    /// Per-plugin configuration overrides for this site.
    #[serde(default)]
    pub config: BTreeMap<String, BTreeMap<String, String>>,
    /// When set, the only tables this site's plugins may be granted: a plugin that
    /// declares any other table is not loaded on the site.
    pub allow_tables: Option<Vec<String>>,
    /// Which plugin serves a route two of the site's plugins declare:
    /// `"METHOD /family/template"` (as `GET /api/patient/{puuid}`) to a plugin name. Without
    /// a choice, two plugins claiming one route is an error.
    #[serde(default)]
    pub routes: BTreeMap<String, String>,
}

/// Limits for one plugin, with defaults filled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deadline in milliseconds.
    pub timeout_ms: u64,
    /// CPU budget in milliseconds.
    pub cpu_ms: u64,
    /// Memory cap in bytes.
    pub memory_bytes: usize,
    /// Concurrent instances.
    pub max_instances: u32,
    /// Largest response body.
    pub max_response_bytes: usize,
    /// Whether one instance may serve consecutive read-only calls of one caller
    /// ([`crate::plugins::runtime::Kept`]).
    pub keep_instance: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout_ms: 5_000,
            cpu_ms: 2_000,
            memory_bytes: 64 << 20,
            max_instances: 256,
            max_response_bytes: 16 << 20,
            keep_instance: true,
        }
    }
}

impl PluginSpec {
    /// The limits, defaults filled in.
    pub fn limits(&self) -> Limits {
        let default = Limits::default();
        Limits {
            timeout_ms: self.timeout_ms.unwrap_or(default.timeout_ms),
            cpu_ms: self.cpu_ms.unwrap_or(default.cpu_ms),
            memory_bytes: self
                .memory_mib
                .map_or(default.memory_bytes, |m| (m as usize) << 20),
            max_instances: self.max_instances.unwrap_or(default.max_instances),
            max_response_bytes: self
                .max_response_bytes
                .unwrap_or(default.max_response_bytes),
            keep_instance: self.keep_instance.unwrap_or(default.keep_instance),
        }
    }
}

impl Manifest {
    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Manifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the plugins file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses and checks manifest text.
    pub fn parse(text: &str) -> Result<Manifest> {
        let manifest: Manifest = toml::from_str(text)?;
        for (site, spec) in &manifest.sites {
            for name in spec.plugins.iter().chain(spec.config.keys()) {
                if !manifest.plugins.contains_key(name) {
                    bail!("site {site} names plugin {name}, which [plugins] does not define");
                }
            }
            for name in spec.config.keys() {
                if !spec.plugins.contains(name) {
                    bail!("site {site} configures plugin {name} but does not load it");
                }
            }
            for (route, name) in &spec.routes {
                if route_key(route).is_none() {
                    bail!(
                        "site {site}: routes key {route:?} is not \"METHOD /path\" (as \"GET /api/patient\")"
                    );
                }
                if !spec.plugins.contains(name) {
                    bail!("site {site} chooses plugin {name} for {route} but does not load it");
                }
            }
        }
        for (name, spec) in &manifest.plugins {
            let limits = spec.limits();
            if limits.timeout_ms == 0
                || limits.cpu_ms == 0
                || limits.memory_bytes == 0
                || limits.max_instances == 0
            {
                bail!("plugin {name}: limits must be greater than zero");
            }
            if limits.memory_bytes > super::engine::MAX_MEMORY_BYTES {
                bail!(
                    "plugin {name}: memory_mib may be at most {}",
                    super::engine::MAX_MEMORY_BYTES >> 20
                );
            }
        }
        Ok(manifest)
    }

    /// The folder plugin files are relative to.
    pub fn plugin_dir(&self, manifest_path: &Path) -> PathBuf {
        let base = manifest_path.parent().unwrap_or(Path::new("."));
        match &self.dir {
            Some(dir) => base.join(dir),
            None => PathBuf::from(env!("HEARTH_PLUGIN_DIR")),
        }
    }

    /// The plugin names a site loads.
    pub fn plugins_for(&self, site: &str) -> Option<&SiteSpec> {
        self.sites.get(site).or_else(|| self.sites.get("*"))
    }
}

/// A route choice's key made comparable: the method upper-cased, the path's parameter
/// names dropped (`GET /api/patient/{puuid}` and `get /api/patient/{id}` are one route);
/// `None` when it is not `METHOD /path`.
pub fn route_key(text: &str) -> Option<String> {
    let (method, path) = text.trim().split_once(' ')?;
    let path = path.trim();
    if method.is_empty()
        || !method.chars().all(|c| c.is_ascii_alphabetic())
        || !path.starts_with('/')
    {
        return None;
    }
    let segments: Vec<&str> = path
        .trim_end_matches('/')
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') || segment.starts_with(':') {
                "{}"
            } else {
                segment
            }
        })
        .collect();
    Some(format!(
        "{} {}",
        method.to_ascii_uppercase(),
        segments.join("/")
    ))
}

/// `text` (a `plugins.toml`) with site `site`'s own entry choosing `plugin` for `route`
/// (or, with `None`, dropping the choice), every other line as it was, comments included.
/// Only the entry's one-line `routes = { … }` is written (added after the entry's last
/// line when it has none). A site without an entry of its own is refused: changing the
/// shared `"*"` entry would change what other sites serve. The result is checked as
/// [`Manifest::parse`] checks a file.
pub fn with_route_choice(
    text: &str,
    site: &str,
    route: &str,
    plugin: Option<&str>,
) -> Result<String> {
    let manifest = Manifest::parse(text)?;
    let Some(spec) = manifest.sites.get(site) else {
        bail!(
            "site {site} has no entry of its own in plugins.toml (it uses [sites.\"*\"]); add [sites.{site}] to choose for it alone"
        );
    };
    let Some(key) = route_key(route) else {
        bail!("{route:?} is not \"METHOD /path\" (as \"GET /api/patient\")");
    };
    let mut routes: BTreeMap<String, String> = spec
        .routes
        .iter()
        .filter(|(r, _)| route_key(r).as_deref() != Some(key.as_str()))
        .map(|(r, p)| (r.clone(), p.clone()))
        .collect();
    if let Some(plugin) = plugin {
        routes.insert(route.trim().to_owned(), plugin.to_owned());
    }
    let line = if routes.is_empty() {
        None
    } else {
        let pairs = routes
            .iter()
            .map(|(r, p)| {
                format!(
                    "{} = {}",
                    toml::Value::String(r.clone()),
                    toml::Value::String(p.clone())
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!("routes = {{ {pairs} }}"))
    };
    let header = |l: &str| {
        let l = l.trim();
        l == format!("[sites.{site}]") || l == format!("[sites.\"{site}\"]")
    };
    let lines: Vec<&str> = text.lines().collect();
    let Some(start) = lines.iter().position(|l| header(l)) else {
        bail!("site {site}'s entry is not a [sites.{site}] table; edit plugins.toml by hand");
    };
    let end = lines[start + 1..]
        .iter()
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |at| start + 1 + at);
    let existing = (start + 1..end).find(|&i| {
        let l = lines[i].trim_start();
        l.starts_with("routes ") || l.starts_with("routes=")
    });
    let mut out: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    match (existing, line) {
        (Some(i), Some(line)) => {
            if !lines[i].trim_end().ends_with('}') {
                bail!("site {site}'s routes span several lines; edit plugins.toml by hand");
            }
            out[i] = line;
        }
        (Some(i), None) => {
            out.remove(i);
        }
        (None, Some(line)) => {
            let last = (start..end)
                .rev()
                .find(|&i| !lines[i].trim().is_empty())
                .unwrap_or(start);
            out.insert(last + 1, line);
        }
        (None, None) => {}
    }
    let mut written = out.join("\n");
    if text.ends_with('\n') {
        written.push('\n');
    }
    let checked = Manifest::parse(&written)?;
    let chosen = checked
        .sites
        .get(site)
        .map(|s| {
            s.routes
                .iter()
                .find(|(r, _)| route_key(r).as_deref() == Some(key.as_str()))
                .map(|(_, p)| p.as_str())
        })
        .unwrap_or_default();
    if chosen != plugin {
        bail!("site {site}'s routes could not be written; edit plugins.toml by hand");
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_choice_is_written_into_the_sites_own_entry_keeping_the_rest() {
        let text = "# which plugins\n[plugins.patient]\nfile = \"patient.wasm\"\n\n[plugins.patient-strict]\nfile = \"patient-strict.wasm\"\n\n\
             [sites.\"*\"]\nplugins = [\"patient\"]\n\n[sites.second]\n# both\nplugins = [\"patient\", \"patient-strict\"]\n\n[sites.third]\nplugins = [\"patient\"]\n";
        let added =
            with_route_choice(text, "second", "GET /api/patient", Some("patient-strict")).unwrap();
        assert!(added.starts_with("# which plugins\n"), "{added}");
        assert!(added.contains("# both\nplugins = [\"patient\", \"patient-strict\"]\nroutes = { \"GET /api/patient\" = \"patient-strict\" }\n\n[sites.third]"), "{added}");
        let swapped =
            with_route_choice(&added, "second", "get /api/patient", Some("patient")).unwrap();
        assert!(
            swapped.contains("routes = { \"get /api/patient\" = \"patient\" }"),
            "{swapped}"
        );
        assert_eq!(swapped.matches("routes").count(), 1);
        let dropped = with_route_choice(&swapped, "second", "GET /api/patient", None).unwrap();
        assert_eq!(dropped, text);
        for (site, plugin, why) in [
            ("default", "patient", "no entry of its own"),
            ("third", "patient-strict", "does not load it"),
        ] {
            let error = with_route_choice(text, site, "GET /api/patient", Some(plugin))
                .unwrap_err()
                .to_string();
            assert!(error.contains(why), "{error}");
        }
    }

    #[test]
    fn a_site_may_choose_which_plugin_serves_a_route() {
        let text = "[plugins.patient]\nfile = \"patient.wasm\"\n[plugins.patient-strict]\nfile = \"patient-strict.wasm\"\n\
             [sites.\"*\"]\nplugins = [\"patient\", \"patient-strict\"]\nroutes = { \"GET /api/patient/{puuid}\" = \"patient-strict\" }\n";
        let m = Manifest::parse(text).unwrap();
        assert_eq!(
            m.plugins_for("default").unwrap().routes["GET /api/patient/{puuid}"],
            "patient-strict"
        );
        let unloaded = text.replace("= \"patient-strict\" }", "= \"other\" }");
        let error = Manifest::parse(&unloaded).unwrap_err().to_string();
        assert!(error.contains("does not load it"), "{error}");
        let malformed = text.replace("GET /api/patient/{puuid}", "patient");
        let error = Manifest::parse(&malformed).unwrap_err().to_string();
        assert!(error.contains("is not"), "{error}");
        assert_eq!(
            route_key("get /api/patient/{id}/"),
            route_key("GET /api/patient/{puuid}")
        );
        assert_ne!(
            route_key("GET /api/patient"),
            route_key("POST /api/patient")
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let error = Manifest::parse("[plugins.patient]\nfile = \"p.wasm\"\nverison = \"1\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("verison"), "{error}");
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn unknown_keys_in_sites_and_at_the_top_name_the_key_and_line() {
        for (text, key, line) in [
            (
                "[plugins.p]\nfile = \"p.wasm\"\n\n[sites.a]\nplugins = [\"p\"]\nplugin = [\"p\"]\n",
                "plugin",
                "line 6",
            ),
            ("dir = \".\"\ndirectory = \"x\"\n", "directory", "line 2"),
            (
                "[plugins.p]\nfile = \"p.wasm\"\ntimeout = 5\n",
                "timeout",
                "line 3",
            ),
        ] {
            let error = Manifest::parse(text).unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
            assert!(error.contains(line), "{error}");
        }
    }

    #[test]
    fn sites_may_map_different_plugins_and_cap_their_tables() {
        let m = Manifest::parse(
            "[plugins.patient]\nfile = \"patient.wasm\"\n[plugins.patient-strict]\nfile = \"patient-strict.wasm\"\n\
             [sites.\"*\"]\nplugins = [\"patient\"]\n[sites.alternate]\nplugins = [\"patient-strict\"]\nallow_tables = [\"patient_data\"]\n",
        )
        .unwrap();
        assert_eq!(m.plugins_for("default").unwrap().plugins, vec!["patient"]);
        let alternate = m.plugins_for("alternate").unwrap();
        assert_eq!(alternate.plugins, vec!["patient-strict"]);
        assert_eq!(
            alternate.allow_tables.as_deref(),
            Some(&["patient_data".to_owned()][..])
        );
    }

    #[test]
    fn sites_must_name_defined_plugins() {
        let error = Manifest::parse("[sites.default]\nplugins = [\"nope\"]\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("nope"), "{error}");
    }

    #[test]
    fn limits_get_defaults() {
        let m = Manifest::parse(
            "[plugins.p]\nfile = \"p.wasm\"\nversion = \"^1.2\"\ntimeout_ms = 250\n[sites.\"*\"]\nplugins = [\"p\"]\n",
        )
        .unwrap();
        let spec = &m.plugins["p"];
        assert_eq!(spec.limits().timeout_ms, 250);
        assert_eq!(spec.limits().memory_bytes, 64 << 20);
        assert_eq!(spec.limits().cpu_ms, 2_000);
        assert!(spec.version.matches(&semver::Version::new(1, 3, 0)));
        assert_eq!(m.plugins_for("anything").unwrap().plugins, vec!["p"]);
    }
}
