//! Applying a plugin's migrations to a site's database, with the database as the wall.
//!
//! Each site records what it applied in the host table `plugin_migrations` (plugin,
//! version, name, checksum, when). Before a plugin version serves a site, [`apply`] reads
//! that record and refuses the version when an applied migration's text changed (its
//! checksum), or when the version's migrations end below what the site applied (a
//! downgrade). Then every pending migration is checked by the parser
//! ([`super::migrations::check`], for a clear error naming the table) and run in a
//! transaction of its own, recorded in the same transaction: a failing migration leaves
//! nothing behind.
//!
//! - **SQLite**: the migration runs on a connection of its own with an authorizer that
//!   allows DDL and data changes only on tables and indexes named with the plugin's
//!   namespace (plus SQLite's own schema table, which DDL writes); triggers, views,
//!   `PRAGMA`, `ATTACH` and transaction control are refused. Afterwards the schema's names
//!   are compared with those before: anything added or removed outside the namespace rolls
//!   the migration back.
//! - **PostgreSQL**: the migration runs as the plugin's owner role
//!   (`hearth_<db>_o_<plugin>_<hash>`, `NOLOGIN`, no login role is a member), which is
//!   granted `CREATE` on `public` inside the migration's transaction only. What it creates
//!   it owns, and it owns nothing else, so it cannot alter, drop or reference another
//!   plugin's, OpenEMR's or the host's tables (those in `hearth` it cannot even see).
//!   Before commit the host checks that everything the role owns is in `public` and named
//!   with the namespace (PostgreSQL's own `pg_toast` storage aside), and grants the plugin's user role
//!   (`hearth_<db>_u_<plugin>_<hash>`) `SELECT, INSERT, UPDATE, DELETE` on its tables and
//!   `USAGE, SELECT` on its sequences; each role of the plugin's grant sets is a member of
//!   the user role ([`crate::db::roles`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use sqlx::{AssertSqlSafe, Row};

use super::loader::Loaded;
use super::migrations::{self, Migration};
use crate::db::{Db, Kind, roles};
use crate::sites::Sites;

/// A migration as a site recorded it.
struct Applied {
    version: u32,
    name: String,
    checksum: String,
}

/// The migrations of `plugin` that `site` has not applied yet, or why this plugin version
/// may not serve the site.
fn pending<'a>(
    plugin: &str,
    applied: &[Applied],
    migrations: &'a [Migration],
) -> Result<&'a [Migration]> {
    for (index, row) in applied.iter().enumerate() {
        if row.version as usize != index + 1 {
            bail!(
                "the site's record of plugin {plugin}'s migrations has a gap before {} ({})",
                row.version,
                row.name
            );
        }
        let Some(migration) = migrations.get(index) else {
            bail!(
                "downgrade refused: the site has applied plugin {plugin}'s migrations up to {} ({}), \
                 but this version's migrations end at {}",
                applied.len(),
                applied.last().map_or("", |a| a.name.as_str()),
                migrations.len()
            );
        };
        if migration.checksum() != row.checksum {
            bail!(
                "migration {} ({}) of plugin {plugin} changed after the site applied it \
                 (checksum {} applied, {} now); a released migration never changes: add a new one",
                row.version,
                row.name,
                &row.checksum[..12.min(row.checksum.len())],
                &migration.checksum()[..12]
            );
        }
    }
    Ok(&migrations[applied.len().min(migrations.len())..])
}

/// Brings `db` up to date with `plugin`'s migrations; answers the versions it applied.
pub async fn apply(db: &Db, plugin: &str, migrations: &[Migration]) -> Result<Vec<u32>> {
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    let namespace = migrations::namespace(plugin)?;
    match db {
        Db::Sqlite(_, store) => {
            let path = store.path().to_path_buf();
            let plugin = plugin.to_owned();
            let migrations = migrations.to_vec();
            tokio::task::spawn_blocking(move || {
                apply_sqlite(&path, &plugin, &namespace, &migrations)
            })
            .await
            .context("the migration task failed")?
        }
        Db::Postgres(pool) => apply_postgres(pool, plugin, &namespace, migrations).await,
    }
}

fn apply_sqlite(
    path: &std::path::Path,
    plugin: &str,
    namespace: &str,
    migrations: &[Migration],
) -> Result<Vec<u32>> {
    use rusqlite::hooks::{AuthAction, AuthContext, Authorization};

    crate::db::heap::install();
    let conn =
        rusqlite::Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    let applied = conn
        .prepare(
            "SELECT version, name, checksum FROM plugin_migrations WHERE plugin = ?1 ORDER BY version",
        )?
        .query_map([plugin], |row| {
            Ok(Applied {
                version: row.get(0)?,
                name: row.get(1)?,
                checksum: row.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let pending = pending(plugin, &applied, migrations)?;
    for migration in pending {
        migrations::check(plugin, namespace, migration, Kind::Sqlite)?;
    }
    let names = |conn: &rusqlite::Connection| -> Result<BTreeSet<String>> {
        Ok(conn
            .prepare("SELECT lower(name) FROM sqlite_schema")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?)
    };
    let mut done = Vec::new();
    for migration in pending {
        let where_ = format!(
            "plugin {plugin}, migration {} ({})",
            migration.version, migration.name
        );
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let result = (|| -> Result<()> {
            let before = names(&conn)?;
            let ns = namespace.to_owned();
            conn.authorizer(Some(move |context: AuthContext<'_>| {
                let own = |table: &str| {
                    let table = table.to_ascii_lowercase();
                    table.starts_with(&ns)
                        || matches!(table.as_str(), "sqlite_schema" | "sqlite_master")
                };
                let allowed = match context.action {
                    AuthAction::CreateTable { table_name }
                    | AuthAction::DropTable { table_name }
                    | AuthAction::AlterTable { table_name, .. }
                    | AuthAction::Insert { table_name }
                    | AuthAction::Delete { table_name }
                    | AuthAction::Update { table_name, .. }
                    | AuthAction::Read { table_name, .. } => own(table_name),
                    AuthAction::CreateIndex {
                        index_name,
                        table_name,
                    }
                    | AuthAction::DropIndex {
                        index_name,
                        table_name,
                    } => own(index_name) && own(table_name),
                    // CREATE INDEX fills the new index.
                    AuthAction::Reindex { index_name } => own(index_name),
                    AuthAction::Select | AuthAction::Function { .. } | AuthAction::Recursive => {
                        true
                    }
                    _ => false,
                };
                if allowed {
                    Authorization::Allow
                } else {
                    Authorization::Deny
                }
            }))?;
            let ran = conn.execute_batch(&migration.sqlite);
            conn.authorizer(None::<fn(AuthContext<'_>) -> Authorization>)?;
            ran.map_err(|error| anyhow!("{where_} failed on SQLite: {error}"))?;
            let after = names(&conn)?;
            let autoindex = format!("sqlite_autoindex_{namespace}");
            if let Some(name) = before
                .symmetric_difference(&after)
                .find(|n| !n.starts_with(namespace) && !n.starts_with(&autoindex))
            {
                bail!("{where_}: it added or removed {name}, outside its namespace {namespace}…");
            }
            conn.execute(
                "INSERT INTO plugin_migrations (plugin, version, name, checksum) VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![plugin, migration.version, migration.name, migration.checksum()],
            )?;
            Ok(())
        })();
        match result {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(error);
            }
        }
        done.push(migration.version);
    }
    Ok(done)
}

async fn apply_postgres(
    pool: &sqlx::PgPool,
    plugin: &str,
    namespace: &str,
    migrations: &[Migration],
) -> Result<Vec<u32>> {
    let applied: Vec<Applied> = sqlx::query(
        "SELECT version, name, checksum FROM hearth.plugin_migrations WHERE plugin = $1 ORDER BY version",
    )
    .bind(plugin)
    .fetch_all(pool)
    .await
    .context("reading the site's plugin migrations")?
    .iter()
    .map(|row| {
        Ok(Applied {
            version: u32::try_from(row.try_get::<i32, _>("version")?)?,
            name: row.try_get("name")?,
            checksum: row.try_get("checksum")?,
        })
    })
    .collect::<Result<_>>()?;
    let pending = pending(plugin, &applied, migrations)?;
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    for migration in pending {
        migrations::check(plugin, namespace, migration, Kind::Postgres)?;
    }
    let database: String = sqlx::query_scalar("SELECT CAST(current_database() AS TEXT)")
        .fetch_one(pool)
        .await?;
    let prefix = roles::role_prefix(&database);
    let owner = roles::owner_role(&prefix, plugin);
    let users = roles::user_role(&prefix, plugin);
    roles::ensure_role(pool, &owner).await?;
    roles::ensure_role(pool, &users).await?;
    // The site's user switches to the owner role for the migration (PostgreSQL 16 gives
    // the creator of a role only the right to administer it, not to be it).
    let is_member: bool = sqlx::query_scalar("SELECT pg_has_role(current_user, $1, 'MEMBER')")
        .bind(&owner)
        .fetch_one(pool)
        .await?;
    if !is_member {
        let grant = format!("GRANT {} TO CURRENT_USER", roles::quote(&owner));
        sqlx::raw_sql(AssertSqlSafe(grant))
            .execute(pool)
            .await
            .with_context(|| format!("letting the site's user act as {owner}"))?;
    }
    let (owner_q, users_q) = (roles::quote(&owner), roles::quote(&users));
    let mut done = Vec::new();
    for migration in pending {
        let where_ = format!(
            "plugin {plugin}, migration {} ({})",
            migration.version, migration.name
        );
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "GRANT USAGE, CREATE ON SCHEMA public TO {owner_q}; SET LOCAL ROLE {owner_q}"
        )))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("{where_}: switching to the role {owner}"))?;
        sqlx::raw_sql(AssertSqlSafe(migration.postgres.clone()))
            .execute(&mut *tx)
            .await
            .map_err(|error| anyhow!("{where_} failed on PostgreSQL: {error}"))?;
        let still: bool = sqlx::query_scalar("SELECT CAST(current_user AS TEXT) = $1")
            .bind(&owner)
            .fetch_one(&mut *tx)
            .await?;
        if !still {
            bail!("{where_}: it left the role {owner}");
        }
        let owned = sqlx::query(
            "SELECT CAST(n.nspname AS TEXT) AS schema, CAST(c.relname AS TEXT) AS name,
                    CAST(c.relkind AS TEXT) AS kind
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
               AND n.nspname <> 'pg_toast'",
        )
        .bind(&owner)
        .fetch_all(&mut *tx)
        .await?;
        let mut grants = String::new();
        for row in &owned {
            let schema: String = row.try_get("schema")?;
            let name: String = row.try_get("name")?;
            let kind: String = row.try_get("kind")?;
            if schema != "public" || !name.starts_with(namespace) {
                bail!("{where_}: it made {schema}.{name}, outside its namespace {namespace}…");
            }
            let table = format!("public.{}", roles::quote(&name));
            match kind.as_str() {
                "r" | "p" => {
                    grants +=
                        &format!("GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO {users_q};\n")
                }
                "S" => {
                    grants += &format!("GRANT USAGE, SELECT ON SEQUENCE {table} TO {users_q};\n")
                }
                _ => {}
            }
        }
        grants += &format!("RESET ROLE; REVOKE CREATE ON SCHEMA public FROM {owner_q};");
        sqlx::raw_sql(AssertSqlSafe(grants))
            .execute(&mut *tx)
            .await
            .with_context(|| format!("{where_}: granting its tables to {users}"))?;
        sqlx::query(
            "INSERT INTO hearth.plugin_migrations (plugin, version, name, checksum) VALUES ($1, $2, $3, $4)",
        )
        .bind(plugin)
        .bind(migration.version as i32)
        .bind(&migration.name)
        .bind(migration.checksum())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        done.push(migration.version);
    }
    Ok(done)
}

/// Which sites a reload's migrations are for.
pub enum Target<'a> {
    /// The sites a `plugins.toml` entry serves: the site named `key`, or for `"*"` every
    /// open site that `named` (the entries with a name) does not list.
    Entry {
        /// The entry.
        key: &'a str,
        /// The named entries.
        named: Vec<String>,
    },
    /// One site (a per-site reload).
    Site(&'a str),
}

/// Applies a plugin version's migrations to the sites of a [`Target`] before the version
/// serves them; the registry keeps the previous version where this fails.
pub trait Migrator: Send + Sync {
    /// Applies `plugin`'s pending migrations on every site of `target`.
    fn migrate<'a>(
        &'a self,
        target: Target<'a>,
        plugin: &'a Loaded,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>>;
}

/// The server's migrator: the sites it has open.
pub struct SiteMigrator {
    /// The sites.
    pub sites: Arc<Sites>,
}

impl Migrator for SiteMigrator {
    fn migrate<'a>(
        &'a self,
        target: Target<'a>,
        plugin: &'a Loaded,
    ) -> Pin<Box<dyn Future<Output = Result<()>> + Send + 'a>> {
        Box::pin(async move {
            let sites = match target {
                Target::Entry { key: "*", named } => self
                    .sites
                    .opened()
                    .into_iter()
                    .filter(|site| !named.contains(&site.name))
                    .collect(),
                Target::Entry { key: name, .. } | Target::Site(name) => {
                    self.sites.get(name).await.into_iter().collect::<Vec<_>>()
                }
            };
            for site in sites {
                let applied = apply(&site.db, &plugin.name, &plugin.migrations)
                    .await
                    .with_context(|| format!("site {}", site.name))?;
                if !applied.is_empty() {
                    site.gate.schema_changed();
                    tracing::info!(
                        "site {}: applied migrations {applied:?} of plugin {} {}",
                        site.name,
                        plugin.name,
                        plugin.version
                    );
                }
            }
            Ok(())
        })
    }
}
