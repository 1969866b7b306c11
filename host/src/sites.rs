//! Sites: each has its own database (an SQLite file in the data folder, or a PostgreSQL
//! URL), its own signing keys and its own plugins. The list of sites lives in the control
//! database `hearth.db` in the data folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use parking_lot::{Mutex, RwLock};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use crate::crypto::jwt::Alg;
use crate::crypto::kek::Keyring;
use crate::crypto::keys::{self, KeySet};
use crate::db::gate::SqlGate;
use crate::db::{Db, Kind};

/// One site.
pub struct Site {
    /// The site's name, the first path segment after `/apis/` and `/oauth2/`.
    pub name: String,
    /// Its database.
    pub db: Db,
    /// The gate plugin SQL passes through.
    pub gate: SqlGate,
    /// Per-process caches that modules above keep for this site (verified tokens, client
    /// assertions' keys, …), each owned by the module whose type it is.
    pub caches: Caches,
    keys: ArcSwap<KeySet>,
}

/// A site's per-process caches, one per type: the module that defines the type owns what is
/// in it (`auth`'s verified tokens, `oauth`'s client keys), and the site only keeps them
/// apart from other sites' and drops them all when its keys change. A site knows nothing
/// of what it holds, so `sites` imports none of the modules that use it.
#[derive(Default)]
pub struct Caches {
    entries: RwLock<HashMap<std::any::TypeId, Arc<dyn std::any::Any + Send + Sync>>>,
}

impl Caches {
    /// The cache of type `T` for this site, made empty on first use.
    pub fn get<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let id = std::any::TypeId::of::<T>();
        if let Some(entry) = self.entries.read().get(&id) {
            return entry
                .clone()
                .downcast()
                .expect("entries are keyed by their type");
        }
        self.entries
            .write()
            .entry(id)
            .or_insert_with(|| Arc::new(T::default()))
            .clone()
            .downcast()
            .expect("entries are keyed by their type")
    }

    /// Forgets every cache (what was derived from the old keys must be derived again).
    pub fn clear(&self) {
        self.entries.write().clear();
    }
}

impl Site {
    /// The site's current keys.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.load_full()
    }

    /// Reloads keys from the database (after a rotation), opening them with `keyring`.
    pub async fn reload_keys(&self, keyring: &Keyring) -> Result<()> {
        self.keys
            .store(Arc::new(keys::load(&self.db, keyring).await?));
        self.caches.clear();
        Ok(())
    }
}

/// A site name: letters, digits, `-`, `_` and `.`, not starting with `.`, at most 64.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// How long an unknown site name is remembered as unknown before the registry is asked
/// again (so a site added by the CLI while the server runs shows up quickly).
const MISSING_TTL: Duration = Duration::from_secs(2);

/// The most unknown site names remembered at once: requests naming random sites cannot
/// grow the memory; past it, forgotten names are asked of the registry again.
pub const MISSING_LIMIT: usize = 1024;

/// The site a fresh data folder gets.
pub const DEFAULT_SITE: &str = "default";

/// The data folder opened by [`Sites::prepare`].
pub struct Prepared {
    /// The sites.
    pub sites: Sites,
    /// Whether the site [`DEFAULT_SITE`] was created just now (the folder was fresh).
    pub created_default: bool,
}

/// The registry of sites.
pub struct Sites {
    control: SqlitePool,
    data_dir: PathBuf,
    open: RwLock<HashMap<String, Arc<Site>>>,
    missing: Mutex<HashMap<String, Instant>>,
    opening: tokio::sync::Mutex<()>,
}

impl Sites {
    /// Opens (creating if needed) the control database in `data_dir`.
    pub async fn open(data_dir: &Path) -> Result<Sites> {
        std::fs::create_dir_all(data_dir.join("sites"))
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;
        // The key-encryption key: created on first start, and a bad one is an error now
        // rather than when a site first opens.
        Keyring::open(&data_dir).context("reading the key-encryption key")?;
        crate::db::heap::install();
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join("hearth.db"))
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
            .busy_timeout(Duration::from_secs(10));
        let control = SqlitePoolOptions::new()
            .max_connections(2)
            .connect_with(options)
            .await
            .context("opening the control database")?;
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, database_url TEXT NOT NULL, created_at TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS host_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .execute(&control)
        .await
        .context("preparing the control database")?;
        Ok(Sites {
            control,
            data_dir,
            open: RwLock::default(),
            missing: Mutex::default(),
            opening: tokio::sync::Mutex::new(()),
        })
    }

    /// Opens the data folder as `hearth serve` does: the folder, its key-encryption key and
    /// control database are made when missing, and on a fresh folder (no site registered)
    /// the site `default` is created with an SQLite database. Every command but `site add`
    /// starts here, so the first command a new user runs works on a fresh folder.
    /// [`Prepared::created_default`] says whether this call created `default`.
    pub async fn prepare(data_dir: &Path) -> Result<Prepared> {
        let sites = Sites::open(data_dir).await?;
        let created_default = sites.create_default_when_none().await?;
        Ok(Prepared {
            sites,
            created_default,
        })
    }

    /// Creates the site [`DEFAULT_SITE`] when no site is registered; answers whether it
    /// did. Another process doing the same at the same moment is no error.
    async fn create_default_when_none(&self) -> Result<bool> {
        if !self.list().await?.is_empty() {
            return Ok(false);
        }
        match self.create(DEFAULT_SITE, None).await {
            Ok(_) => Ok(true),
            Err(_) if self.url_of(DEFAULT_SITE).await?.is_some() => Ok(false),
            Err(error) => Err(error.context(format!("creating the site '{DEFAULT_SITE}'"))),
        }
    }

    /// The site called `name`, opened; an error saying what to run when there is none.
    pub async fn require(&self, name: &str) -> Result<Arc<Site>> {
        self.load(name).await?.with_context(|| {
            format!(
                "the site '{name}' does not exist: `hearth site list` shows the sites, \
                 `hearth site add {name}` creates it"
            )
        })
    }

    /// The data folder (absolute).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Registers a site, creating and migrating its database and its signing key.
    pub async fn create(&self, name: &str, database_url: Option<&str>) -> Result<Arc<Site>> {
        if !valid_name(name) {
            bail!(
                "'{name}' is not a valid site name (letters, digits, '-', '_' and '.', at most 64)"
            );
        }
        if self.url_of(name).await?.is_some() {
            bail!("the site '{name}' exists already");
        }
        let url = match database_url {
            Some(url) => url.to_owned(),
            None => format!(
                "sqlite://{}",
                self.data_dir
                    .join("sites")
                    .join(format!("{name}.db"))
                    .display()
            ),
        };
        if Kind::of(&url).is_none() {
            bail!("unsupported database URL (use sqlite:… or postgres://…)");
        }
        let site = self.connect(name, &url).await?;
        sqlx::query("INSERT INTO sites (name, database_url, created_at) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(&url)
            .bind(time::OffsetDateTime::now_utc().unix_timestamp().to_string())
            .execute(&self.control)
            .await
            .context("registering the site")?;
        self.open.write().insert(name.to_owned(), site.clone());
        self.missing.lock().remove(name);
        Ok(site)
    }

    /// Every registered site: name and database URL.
    pub async fn list(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT name, database_url FROM sites ORDER BY name")
            .fetch_all(&self.control)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("name")?, row.try_get("database_url")?)))
            .collect()
    }

    async fn url_of(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT database_url FROM sites WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.control)
                .await?
                .map(|row| row.try_get("database_url"))
                .transpose()?,
        )
    }

    /// The site called `name`, opening it on first use; `None` when there is none.
    pub async fn get(&self, name: &str) -> Option<Arc<Site>> {
        if let Some(site) = self.open.read().get(name) {
            return Some(site.clone());
        }
        if !valid_name(name) {
            return None;
        }
        if let Some(at) = self.missing.lock().get(name)
            && at.elapsed() < MISSING_TTL
        {
            return None;
        }
        match self.load(name).await {
            Ok(site) => site,
            Err(error) => {
                tracing::error!("opening site {name}: {error:#}");
                None
            }
        }
    }

    /// Like [`Sites::get`], with the reason when the site cannot be opened.
    pub async fn load(&self, name: &str) -> Result<Option<Arc<Site>>> {
        let _guard = self.opening.lock().await;
        if let Some(site) = self.open.read().get(name) {
            return Ok(Some(site.clone()));
        }
        let Some(url) = self.url_of(name).await? else {
            self.remember_missing(name);
            return Ok(None);
        };
        let site = self.connect(name, &url).await?;
        self.open.write().insert(name.to_owned(), site.clone());
        Ok(Some(site))
    }

    /// Remembers `name` as unknown for [`MISSING_TTL`], keeping at most
    /// [`MISSING_LIMIT`] names: expired ones go first, then the oldest.
    fn remember_missing(&self, name: &str) {
        let mut missing = self.missing.lock();
        if missing.len() >= MISSING_LIMIT && !missing.contains_key(name) {
            missing.retain(|_, at| at.elapsed() < MISSING_TTL);
            while missing.len() >= MISSING_LIMIT {
                let Some(oldest) = missing
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(name, _)| name.clone())
                else {
                    break;
                };
                missing.remove(&oldest);
            }
        }
        missing.insert(name.to_owned(), Instant::now());
    }

    /// How many unknown site names are remembered now.
    pub fn missing_remembered(&self) -> usize {
        self.missing.lock().len()
    }

    /// Opens every registered site.
    pub async fn open_all(&self) -> Result<Vec<Arc<Site>>> {
        let mut sites = Vec::new();
        for (name, _) in self.list().await? {
            sites.push(
                self.load(&name)
                    .await
                    .with_context(|| format!("opening site {name}"))?
                    .with_context(|| format!("site {name} vanished"))?,
            );
        }
        Ok(sites)
    }

    /// Whether the site `name` is open (it is registered and was used since start).
    pub fn is_open(&self, name: &str) -> bool {
        self.open.read().contains_key(name)
    }

    /// The sites opened so far.
    pub fn opened(&self) -> Vec<Arc<Site>> {
        self.open.read().values().cloned().collect()
    }

    /// The key-encryption keyring, read again from the environment or the data folder
    /// each time (a site opens rarely, and a rotation may have happened meanwhile).
    pub fn keyring(&self) -> Result<Keyring> {
        Keyring::open(&self.data_dir).context("reading the key-encryption key")
    }

    async fn connect(&self, name: &str, url: &str) -> Result<Arc<Site>> {
        let keyring = self.keyring()?;
        let db = Db::connect(url).await?;
        db.migrate()
            .await
            .with_context(|| format!("migrating the database of site {name}"))?;
        keys::ensure(&db, Alg::Rs256, &keyring).await?;
        let resealed = keys::reseal(&db, &keyring)
            .await
            .with_context(|| format!("sealing the signing keys of site {name}"))?;
        if resealed > 0 {
            tracing::info!(
                "site {name}: {resealed} signing key(s) sealed with the key-encryption key {}",
                keyring.current_id()
            );
        }
        let keys = keys::load(&db, &keyring).await?;
        let gate = match &db {
            Db::Sqlite(..) => SqlGate::sqlite(&sqlite_path(url)).map_err(anyhow::Error::msg)?,
            Db::Postgres(pool) => SqlGate::postgres(pool, url)
                .await
                .with_context(|| format!("setting up plugin SQL for site {name}"))?,
        };
        Ok(Arc::new(Site {
            name: name.to_owned(),
            db,
            gate,
            caches: Caches::default(),
            keys: ArcSwap::from_pointee(keys),
        }))
    }

    /// A host-wide setting from the control database.
    pub async fn setting(&self, name: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT value FROM host_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.control)
                .await?
                .map(|row| row.try_get("value"))
                .transpose()?,
        )
    }

    /// Stores a host-wide setting.
    pub async fn set_setting(&self, name: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO host_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(&self.control)
        .await?;
        Ok(())
    }

    /// Closes every pool.
    pub async fn close(&self) {
        for site in self.opened() {
            site.gate.close().await;
            site.db.close().await;
        }
        self.control.close().await;
    }
}

/// The file path inside an SQLite URL.
fn sqlite_path(url: &str) -> String {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    rest.split('?').next().unwrap_or(rest).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_names_are_checked() {
        assert!(valid_name("default"));
        assert!(valid_name("clinic-2.east"));
        assert!(!valid_name(""));
        assert!(!valid_name(".hidden"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name(&"x".repeat(65)));
    }

    #[test]
    fn sqlite_paths_come_out_of_urls() {
        assert_eq!(sqlite_path("sqlite:///data/x.db?mode=rwc"), "/data/x.db");
        assert_eq!(sqlite_path("sqlite:data/x.db"), "data/x.db");
    }
}
