//! How the host runs: layered configuration.
//!
//! Defaults, then `hearth.toml` in the data folder (unknown keys are errors naming the key
//! and line), then `HEARTH_*` environment variables, then command-line flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// Idle plugin instance slots kept warm by default ([`Config::plugin_warm_slots`]).
pub const DEFAULT_WARM_SLOTS: u32 = 100;

/// The host's settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data folder: control database, site databases, TLS files, compile cache.
    pub data_dir: PathBuf,
    /// Where the server listens.
    pub listen: SocketAddr,
    /// Serve plain HTTP (behind a TLS proxy, or for tests).
    pub http: bool,
    /// The public base URL clients use (`https://ehr.example.org`); every advertised URL
    /// and the token issuer derive from it. Defaults to the listen address.
    pub public_url: Option<String>,
    /// The plugins file (which plugins each site loads).
    pub plugins_file: PathBuf,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Store request and response bodies in the audit log.
    pub audit_bodies: bool,
    /// Where compiled plugins are cached (default: `cache` in the data folder).
    pub cache_dir: Option<PathBuf>,
    /// Plugin instances that can run at once, across all plugins (sizes the pool).
    pub max_instances: u32,
    /// Idle plugin instance slots that keep their memory warm for the plugin that last
    /// ran in them (default [`DEFAULT_WARM_SLOTS`]); each keeps up
    /// to 4 MiB resident, so this bounds the resident memory of idle slots.
    pub plugin_warm_slots: u32,
    /// Reload plugins when `plugins.toml` or a plugin file changes (default true).
    pub watch_plugins: bool,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR ranges; default
    /// none): sign-in limits count against the client address they report.
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// The bound on SQLite's heap in this process, in MiB (default 512): while it is
    /// above, request statements are stopped with a 503 naming the limit.
    pub sqlite_heap_mib: usize,
    /// Serve `/metrics` on this address only (plain HTTP), not on the main one.
    pub metrics_listen: Option<SocketAddr>,
    /// The bearer token a scrape of `/metrics` must send (at least 16 characters). With
    /// neither this nor [`Config::metrics_listen`], `/metrics` is not served.
    pub metrics_token: Option<String>,
    /// How `hearth serve` writes its log lines.
    pub log_format: LogFormat,
    /// Bulk Data exports this process runs at once (default 2); 0: this process runs
    /// none and only answers kick-offs, status and files (other processes export).
    pub bulk_jobs: usize,
    /// How often this process looks for due background services, milliseconds (default
    /// 5000); 0: this process runs none on its own (the `/api/background_service` routes
    /// still run them on request, and other processes run them when due).
    pub scheduler_tick_ms: u64,
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line of text per event.
    #[default]
    Text,
    /// One JSON object per line (fields flattened: `message`, `request_id`, `site`, …).
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<LogFormat> {
        match text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => bail!("{other:?} is not a log format (text or json)"),
        }
    }
}

/// Bulk Data exports one process runs at once unless `bulk_jobs` says otherwise.
pub const DEFAULT_BULK_JOBS: usize = 2;

/// How often a process looks for due background services unless `scheduler_tick_ms`
/// says otherwise.
pub const DEFAULT_SCHEDULER_TICK_MS: u64 = 5000;

/// The shortest metrics token accepted.
const METRICS_TOKEN_MIN: usize = 16;

/// `hearth.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    http: Option<bool>,
    public_url: Option<String>,
    plugins: Option<PathBuf>,
    max_body_bytes: Option<usize>,
    audit_bodies: Option<bool>,
    cache_dir: Option<PathBuf>,
    max_instances: Option<u32>,
    plugin_warm_slots: Option<u32>,
    watch_plugins: Option<bool>,
    trusted_proxies: Option<Vec<String>>,
    sqlite_heap_mib: Option<usize>,
    metrics_listen: Option<SocketAddr>,
    metrics_token: Option<String>,
    log_format: Option<LogFormat>,
    bulk_jobs: Option<usize>,
    scheduler_tick_ms: Option<u64>,
}

/// Values given on the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--http`.
    pub http: bool,
    /// `--public-url`.
    pub public_url: Option<String>,
    /// `--plugins`.
    pub plugins: Option<PathBuf>,
    /// `--log-format`.
    pub log_format: Option<LogFormat>,
}

impl Config {
    /// Loads the configuration for `data_dir`.
    pub fn load(data_dir: &Path, overrides: &Overrides) -> Result<Config> {
        let file_path = data_dir.join("hearth.toml");
        let file: FileConfig = match std::fs::read_to_string(&file_path) {
            Ok(text) => toml::from_str(&text)
                .with_context(|| format!("{} is not valid", file_path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileConfig::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", file_path.display())),
        };
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let listen = match (overrides.listen, env("HEARTH_LISTEN")) {
            (Some(listen), _) => listen,
            (None, Some(text)) => text
                .parse()
                .with_context(|| format!("HEARTH_LISTEN={text} is not an address"))?,
            (None, None) => file.listen.unwrap_or_else(|| ([0, 0, 0, 0], 9300).into()),
        };
        let public_url = overrides
            .public_url
            .clone()
            .or_else(|| env("HEARTH_PUBLIC_URL"))
            .or(file.public_url);
        if let Some(url) = &public_url {
            check_public_url(url)?;
        }
        let trusted_proxies = match env("HEARTH_TRUSTED_PROXIES") {
            Some(text) => crate::proxy::TrustedProxies::parse(text.split(','))
                .context("HEARTH_TRUSTED_PROXIES")?,
            None => crate::proxy::TrustedProxies::parse(
                file.trusted_proxies.iter().flatten().map(String::as_str),
            )
            .with_context(|| format!("trusted_proxies in {}", file_path.display()))?,
        };
        let plugins_file = overrides
            .plugins
            .clone()
            .or_else(|| env("HEARTH_PLUGINS").map(PathBuf::from))
            .or(file.plugins)
            .unwrap_or_else(|| PathBuf::from("plugins.toml"));
        let metrics_listen = match env("HEARTH_METRICS_LISTEN") {
            Some(text) => Some(
                text.parse()
                    .with_context(|| format!("HEARTH_METRICS_LISTEN={text} is not an address"))?,
            ),
            None => file.metrics_listen,
        };
        let metrics_token = env("HEARTH_METRICS_TOKEN").or(file.metrics_token);
        if let Some(token) = &metrics_token
            && token.trim().len() < METRICS_TOKEN_MIN
        {
            bail!("the metrics token must be at least {METRICS_TOKEN_MIN} characters");
        }
        let log_format = match (overrides.log_format, env("HEARTH_LOG_FORMAT")) {
            (Some(format), _) => format,
            (None, Some(text)) => text.parse().context("HEARTH_LOG_FORMAT")?,
            (None, None) => file.log_format.unwrap_or_default(),
        };
        Ok(Config {
            bulk_jobs: file.bulk_jobs.unwrap_or(DEFAULT_BULK_JOBS),
            scheduler_tick_ms: file.scheduler_tick_ms.unwrap_or(DEFAULT_SCHEDULER_TICK_MS),
            metrics_listen,
            metrics_token,
            log_format,
            data_dir: data_dir.to_path_buf(),
            listen,
            http: overrides.http || file.http.unwrap_or(false),
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            plugins_file,
            max_body_bytes: file.max_body_bytes.unwrap_or(2 * 1024 * 1024),
            audit_bodies: file.audit_bodies.unwrap_or(false),
            cache_dir: env("HEARTH_CACHE_DIR")
                .map(PathBuf::from)
                .or(file.cache_dir),
            max_instances: file.max_instances.unwrap_or(1000),
            plugin_warm_slots: file.plugin_warm_slots.unwrap_or(DEFAULT_WARM_SLOTS),
            watch_plugins: match env("HEARTH_WATCH_PLUGINS") {
                Some(text) => text
                    .parse()
                    .with_context(|| format!("HEARTH_WATCH_PLUGINS={text} is not true or false"))?,
                None => file.watch_plugins.unwrap_or(true),
            },
            trusted_proxies,
            sqlite_heap_mib: match env("HEARTH_SQLITE_HEAP_MIB") {
                Some(text) => text
                    .parse()
                    .with_context(|| format!("HEARTH_SQLITE_HEAP_MIB={text} is not a number"))?,
                None => file
                    .sqlite_heap_mib
                    .unwrap_or(crate::db::sqlite::DEFAULT_HEAP_MIB),
            },
        })
    }

    /// Defaults for everything but the data folder (tests and tools build on this).
    pub fn new(data_dir: &Path) -> Config {
        Config {
            data_dir: data_dir.to_path_buf(),
            listen: ([0, 0, 0, 0], 9300).into(),
            http: false,
            public_url: None,
            plugins_file: PathBuf::from("plugins.toml"),
            max_body_bytes: 2 * 1024 * 1024,
            audit_bodies: false,
            cache_dir: None,
            max_instances: 1000,
            plugin_warm_slots: DEFAULT_WARM_SLOTS,
            watch_plugins: true,
            trusted_proxies: Default::default(),
            sqlite_heap_mib: crate::db::sqlite::DEFAULT_HEAP_MIB,
            metrics_listen: None,
            metrics_token: None,
            log_format: LogFormat::Text,
            bulk_jobs: DEFAULT_BULK_JOBS,
            scheduler_tick_ms: DEFAULT_SCHEDULER_TICK_MS,
        }
    }

    /// The public base URL: configured, or derived from the listen address.
    pub fn base_url(&self, bound: SocketAddr) -> String {
        if let Some(url) = &self.public_url {
            return url.clone();
        }
        let scheme = if self.http { "http" } else { "https" };
        let host = if bound.ip().is_unspecified() {
            "localhost".to_owned()
        } else {
            bound.ip().to_string()
        };
        format!("{scheme}://{host}:{}", bound.port())
    }
}

fn check_public_url(url: &str) -> Result<()> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.contains(['?', '#', ' ']) => Ok(()),
        _ => bail!("public URL {url:?} must be an absolute http(s) URL without query or fragment"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_hearth_toml_name_the_key_and_line() {
        let dir = std::env::temp_dir().join(format!("hearth-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hearth.toml"),
            "http = true\nlisen = \"0.0.0.0:1\"\n",
        )
        .unwrap();
        let error = format!(
            "{:#}",
            Config::load(&dir, &Overrides::default()).unwrap_err()
        );
        assert!(error.contains("lisen"), "{error}");
        assert!(error.contains("line 2"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn trusted_proxies_come_from_hearth_toml() {
        let dir = std::env::temp_dir().join(format!("hearth-proxies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("hearth.toml"),
            "trusted_proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n",
        )
        .unwrap();
        let config = Config::load(&dir, &Overrides::default()).unwrap();
        assert!(config.trusted_proxies.contains("10.9.8.7".parse().unwrap()));
        assert!(
            !config
                .trusted_proxies
                .contains("192.0.2.1".parse().unwrap())
        );
        std::fs::write(dir.join("hearth.toml"), "trusted_proxies = [\"proxy\"]\n").unwrap();
        let error = format!(
            "{:#}",
            Config::load(&dir, &Overrides::default()).unwrap_err()
        );
        assert!(
            error.contains("trusted_proxies") && error.contains("proxy"),
            "{error}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_warm_plugin_slots_come_from_hearth_toml() {
        let dir = std::env::temp_dir().join(format!("hearth-warm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = || Config::load(&dir, &Overrides::default()).unwrap();
        assert_eq!(load().plugin_warm_slots, DEFAULT_WARM_SLOTS);
        std::fs::write(dir.join("hearth.toml"), "plugin_warm_slots = 8\n").unwrap();
        assert_eq!(load().plugin_warm_slots, 8);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_base_url_derives_from_the_listen_address() {
        let config = Config::new(Path::new("."));
        assert_eq!(config.base_url(config.listen), "https://localhost:9300");
        assert!(check_public_url("ftp://x").is_err());
    }
}
