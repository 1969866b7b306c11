//! Database pools and migrations for a site: SQLite (the embedded default) or PostgreSQL.
//!
//! The host's own SQL is written once in the portable subset (`$n` parameters, TEXT and
//! integer columns) and run on whichever pool the site has, through [`on_db!`].

use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub mod gate;
pub mod grants;
pub mod heap;
pub mod roles;
pub mod sqlite;
pub mod store;
pub mod values;

/// A site's database.
#[derive(Clone)]
pub enum Db {
    /// An SQLite file: sqlx for migrations and administration, the fast store for
    /// requests.
    Sqlite(SqlitePool, std::sync::Arc<sqlite::SqliteStore>),
    /// A PostgreSQL database.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the site's pool, whichever kind it is. The body is
/// compiled once per database kind, so it must produce the same Rust type for both.
#[macro_export]
macro_rules! on_db {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool, _) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

/// An access token's row in `api_token`, as the resource server checks it.
#[derive(Debug, Clone)]
pub struct TokenRow {
    /// Revoked (by logout, revocation or a replayed grant).
    pub revoked: bool,
    /// The digest of the claims it was issued with (none for rows older than digests).
    pub claims_digest: Option<String>,
    /// The subject it was issued to.
    pub user_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The scopes it was issued with.
    pub scope: String,
}

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `sqlite:` URLs.
    Sqlite,
    /// `postgres:` and `postgresql:` URLs.
    Postgres,
}

impl Kind {
    /// The kind of database `url` names, if Hearth supports it.
    pub fn of(url: &str) -> Option<Kind> {
        if url.starts_with("sqlite:") {
            Some(Kind::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Kind::Postgres)
        } else {
            None
        }
    }
}

impl Db {
    /// Connects to `url`, creating an SQLite file if needed.
    pub async fn connect(url: &str) -> Result<Db> {
        match Kind::of(url) {
            Some(Kind::Sqlite) => {
                heap::install();
                let options = SqliteConnectOptions::from_str(url)
                    .with_context(|| format!("bad SQLite URL {url}"))?;
                let path = options.get_filename().to_path_buf();
                let options = options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(8)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .with_context(|| format!("opening {url}"))?;
                Ok(Db::Sqlite(pool, sqlite::SqliteStore::new(path)))
            }
            Some(Kind::Postgres) => {
                // The host's own tables are in the schema `hearth` (see `roles`); the
                // clinical ones, and whatever a migration creates unqualified, in `public`.
                let options = PgConnectOptions::from_str(url)
                    .with_context(|| format!("bad PostgreSQL URL {}", redact(url)))?
                    .options([("search_path", "public, hearth")]);
                let pool = PgPoolOptions::new()
                    .max_connections(12)
                    .min_connections(1)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
                    .with_context(|| format!("connecting to {}", redact(url)))?;
                Ok(Db::Postgres(pool))
            }
            None => anyhow::bail!(
                "unsupported database URL {} (use sqlite:… or postgres://…)",
                redact(url)
            ),
        }
    }

    /// Brings the schema up to date.
    pub async fn migrate(&self) -> Result<()> {
        match self {
            Db::Sqlite(pool, _) => sqlx::migrate!("../migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Which database this is.
    pub fn kind(&self) -> Kind {
        match self {
            Db::Sqlite(..) => Kind::Sqlite,
            Db::Postgres(_) => Kind::Postgres,
        }
    }

    /// What `api_token` says of the access token `jti`: `None` when the site never
    /// issued it. Runs on every API call, so SQLite sites answer it on the fast path.
    pub async fn token_row(&self, jti: &str) -> Result<Option<TokenRow>, store::StoreError> {
        match self {
            Db::Sqlite(_, fast) => {
                let failed = |e: rusqlite::Error| store::StoreError::Failed(e.to_string());
                let connection = fast.acquire()?;
                let mut statement = connection
                    .get()
                    .prepare_cached(
                        "SELECT revoked, claims_digest, user_id, client_id, scope FROM api_token WHERE jti = ?1",
                    )
                    .map_err(failed)?;
                let mut rows = statement.query([jti]).map_err(failed)?;
                match rows.next().map_err(failed)? {
                    Some(row) => Ok(Some(TokenRow {
                        revoked: row.get::<_, i64>(0).map_err(failed)? != 0,
                        claims_digest: row.get(1).map_err(failed)?,
                        user_id: row.get(2).map_err(failed)?,
                        client_id: row.get(3).map_err(failed)?,
                        scope: row.get(4).map_err(failed)?,
                    })),
                    None => Ok(None),
                }
            }
            Db::Postgres(pool) => {
                use sqlx::Row;
                let row = sqlx::query(
                    "SELECT revoked, claims_digest, user_id, client_id, scope FROM api_token WHERE jti = $1",
                )
                    .bind(jti)
                    .fetch_optional(pool)
                    .await
                    .map_err(store::StoreError::from_sqlx)?;
                let Some(row) = row else { return Ok(None) };
                let get = |e: sqlx::Error| store::StoreError::Failed(e.to_string());
                Ok(Some(TokenRow {
                    revoked: row.try_get::<i64, _>("revoked").map_err(get)? != 0,
                    claims_digest: row.try_get("claims_digest").map_err(get)?,
                    user_id: row.try_get("user_id").map_err(get)?,
                    client_id: row.try_get("client_id").map_err(get)?,
                    scope: row.try_get("scope").map_err(get)?,
                }))
            }
        }
    }

    /// Closes the pool.
    pub async fn close(&self) {
        on_db!(self, |pool| pool.close().await)
    }
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// A version 4 UUID whose first 48 bits are the time in milliseconds, as OpenEMR's
/// "timestamp-first COMB" uuids are: random, yet indexed in insertion order (made by the
/// SDK's [`hearth_sdk::comb_uuid`], which the demo seed uses too).
pub fn comb_uuid() -> String {
    let millis = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    hearth_sdk::comb_uuid(millis, rand::random())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/d"),
            "postgres://u:***@h:5432/d"
        );
        assert_eq!(redact("sqlite:data/x.db"), "sqlite:data/x.db");
    }
}
