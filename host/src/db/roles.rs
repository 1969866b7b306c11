//! PostgreSQL: plugin SQL runs as a database role whose privileges mirror the plugin's
//! grants, so the database itself refuses what the plugin was not granted.
//!
//! The layout a site's database has (migration `0400_host_schema.sql` and
//! [`PluginAccess::prepare`]):
//!
//! - the host's own tables (keys, users' passwords, tokens, clients, sessions, audit) live
//!   in the schema `hearth`, on which `PUBLIC` has no privilege; the clinical tables stay in
//!   `public`. The host's own connections use `search_path = public, hearth`, so its SQL
//!   names tables without a schema.
//! - plugin SQL runs on a pool of its own that logs in as `hearth_<db>_plugins`: not a
//!   superuser, owner of nothing, no privilege of its own, `NOINHERIT`. Its password is
//!   generated once and kept in the site's `hearth.site_settings`.
//! - per plugin and grant set, a `NOLOGIN` role `hearth_<db>_p_<plugin>_<hash>` holds
//!   `SELECT` on the tables the plugin reads and `SELECT, INSERT, UPDATE, DELETE` on those
//!   it writes; the login role is a member. Each plugin transaction starts with
//!   `SET LOCAL ROLE` to it (and is `READ ONLY` for a GET).
//!
//! A statement that slipped past the parser and ran `RESET ROLE` would be left with the
//! login role's privileges: none. Switching to another plugin's role of the same site
//! needs `SET ROLE`/`set_config`, which the gate refuses; that is the one step that rests
//! on the parser (docs/security.md).

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{AssertSqlSafe, PgPool, Postgres, Row, Transaction};

use super::grants::Grants;
use super::store::StoreError;

/// Connections the plugin pool of one site may open (plugins' transactions are short;
/// the suite runs many servers with two sites each against one PostgreSQL server).
pub const PLUGIN_POOL_SIZE: u32 = 6;

/// The site setting that holds the login role's password.
const PASSWORD_SETTING: &str = "hearth.plugin_role_password";

/// Plugin access to one PostgreSQL database.
pub struct PluginAccess {
    /// The pool plugin transactions run on, logged in as [`PluginAccess::login`].
    pub pool: PgPool,
    /// The login role.
    pub login: String,
    /// Every role of this database starts with this.
    prefix: String,
    /// The role of each grant set seen so far (by [`Grants`] id).
    roles: Mutex<HashMap<u64, Arc<str>>>,
    /// Serializes role creation in this process.
    creating: tokio::sync::Mutex<()>,
}

/// The part of role names that stands for the database `name`: the name itself when it
/// is short and plain, else a hash of it.
pub fn role_base(database: &str) -> String {
    let plain = database
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain && !database.is_empty() && database.len() <= 32 {
        database.to_owned()
    } else {
        format!(
            "h{}",
            &hex::encode(Sha256::digest(database.as_bytes()))[..16]
        )
    }
}

/// The prefix of every role Hearth makes for the database `name` (for clean-up).
pub fn role_prefix(database: &str) -> String {
    format!("hearth_{}_", role_base(database))
}

/// `hearth_<db>_<kind>_<plugin>_<hash of the plugin's name>`: a role of the plugin's own
/// tables (kind `o`, their owner; kind `u`, their users).
fn table_role(prefix: &str, kind: &str, plugin: &str) -> String {
    let short: String = plugin
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .take(12)
        .collect();
    let hash = hex::encode(Sha256::digest(plugin.as_bytes()));
    format!("{prefix}{kind}_{short}_{}", &hash[..8])
}

/// The role that owns plugin `plugin`'s tables on the database whose roles start with
/// `prefix`: the plugin's migrations run as it, and no login role is a member of it.
pub fn owner_role(prefix: &str, plugin: &str) -> String {
    table_role(prefix, "o", plugin)
}

/// The role that may read and write plugin `plugin`'s tables; every role of the plugin's
/// grant sets is a member of it.
pub fn user_role(prefix: &str, plugin: &str) -> String {
    table_role(prefix, "u", plugin)
}

/// Makes the `NOLOGIN` role `role` unless it exists (safe against another process making
/// it at the same time).
pub async fn ensure_role(admin: &PgPool, role: &str) -> Result<()> {
    let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(role)
        .fetch_optional(admin)
        .await?
        .is_some();
    if !exists {
        let create = format!("CREATE ROLE {} NOLOGIN", quote(role));
        if let Err(error) = sqlx::raw_sql(AssertSqlSafe(create)).execute(admin).await
            && !is_duplicate(&error)
        {
            return Err(error.into());
        }
    }
    Ok(())
}

/// `"name"` with inner quotes doubled.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PluginAccess {
    /// Makes (or checks) the login role for the site on `admin`, a pool of the site's own
    /// user with `url`, and connects the plugin pool. Refuses a set-up in which plugin
    /// SQL would run with more than its grants, naming the fix.
    pub async fn prepare(admin: &PgPool, url: &str) -> Result<PluginAccess> {
        let row = sqlx::query(
            "SELECT CAST(current_database() AS TEXT) AS db, CAST(current_user AS TEXT) AS me,
                    r.rolsuper, r.rolcreaterole
             FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(admin)
        .await
        .context("reading the database's roles")?;
        let database: String = row.try_get("db")?;
        let me: String = row.try_get("me")?;
        let can_create = row.try_get::<bool, _>("rolsuper")? || row.try_get("rolcreaterole")?;
        let prefix = role_prefix(&database);
        let login = format!("{prefix}plugins");

        let password = match sqlx::query("SELECT value FROM hearth.site_settings WHERE name = $1")
            .bind(PASSWORD_SETTING)
            .fetch_optional(admin)
            .await?
        {
            Some(row) => row.try_get::<String, _>("value")?,
            None => {
                let password = hex::encode(rand::random::<[u8; 24]>());
                sqlx::query(
                    "INSERT INTO hearth.site_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(PASSWORD_SETTING)
                .bind(&password)
                .execute(admin)
                .await?;
                sqlx::query("SELECT value FROM hearth.site_settings WHERE name = $1")
                    .bind(PASSWORD_SETTING)
                    .fetch_one(admin)
                    .await?
                    .try_get("value")?
            }
        };
        if !password.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("the site setting {PASSWORD_SETTING} is not a generated password");
        }
        let exists = sqlx::query("SELECT 1 FROM pg_roles WHERE rolname = $1")
            .bind(&login)
            .fetch_optional(admin)
            .await?
            .is_some();
        if can_create {
            // Only a superuser may name SUPERUSER or BYPASSRLS in ALTER ROLE; the check
            // below refuses a login role that has either.
            let sql = if exists {
                format!(
                    "ALTER ROLE {} LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD '{password}'",
                    quote(&login)
                )
            } else {
                format!(
                    "CREATE ROLE {} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD '{password}'",
                    quote(&login)
                )
            };
            if let Err(error) = sqlx::raw_sql(AssertSqlSafe(sql)).execute(admin).await {
                // Another host process made it meanwhile.
                if exists || !is_duplicate(&error) {
                    return Err(error).context("creating the plugins' login role");
                }
            }
        } else {
            bail!(
                "the database user {me} may not create roles, which Hearth needs to run each \
                 plugin's SQL under a role of its own (docs/admin.md, \"PostgreSQL roles\"). \
                 Have an administrator run, then open the site again:\n  \
                 ALTER ROLE {} CREATEROLE;",
                quote(&me)
            );
        }

        let options = PgConnectOptions::from_str(url)
            .context("bad PostgreSQL URL")?
            .username(&login)
            .password(&password)
            // A plugin statement is planned once for every value (docs/admin.md,
            // "PostgreSQL"): with `auto` the long statements of the FHIR types were
            // planned again on every run (16 ms to plan a Provenance page that runs in
            // 5 ms), and a plugin's SQL is written for plans made once (plugins.md).
            // No JIT: a plan costed above `jit_above_cost` (a count over a FHIR type's
            // branches) was compiled again on every run, a second of the Provenance
            // count's 3.4 s at 100,000 patients (docs/benchmarks.md).
            .options([
                ("search_path", "public"),
                ("plan_cache_mode", "force_generic_plan"),
                ("jit", "off"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(PLUGIN_POOL_SIZE)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60))
            // The pool already pings every connection as it comes back; a second ping
            // as it goes out again would be one more round trip on every plugin call.
            // A connection that died while idle fails at its `BEGIN`, which [`begin`]
            // then makes on a fresh one.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        let access = PluginAccess {
            pool,
            login,
            prefix,
            roles: Mutex::default(),
            creating: tokio::sync::Mutex::new(()),
        };
        access.check_safe().await?;
        Ok(access)
    }

    /// Refuses a login role that could reach the host's tables or more: a superuser, a
    /// role that bypasses row security, owns a relation, may use the schema `hearth`, or
    /// is a member of a role that may.
    async fn check_safe(&self) -> Result<()> {
        let mut connection = self.pool.acquire().await.with_context(|| {
            format!(
                "connecting as the plugins' role {}: allow it to log in to this database \
                 (pg_hba.conf) with the password Hearth keeps in hearth.site_settings",
                self.login
            )
        })?;
        let unsafe_roles: Vec<String> = sqlx::query(
            "SELECT CAST(r.rolname AS TEXT) AS rolname FROM pg_roles r
             WHERE pg_has_role(session_user, r.oid, 'MEMBER')
               AND (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole
                    OR has_schema_privilege(r.oid, 'hearth', 'USAGE')
                    OR EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid))",
        )
        .fetch_all(&mut *connection)
        .await
        .context("checking the plugins' role")?
        .iter()
        .map(|row| row.try_get("rolname"))
        .collect::<Result<_, _>>()?;
        if !unsafe_roles.is_empty() {
            bail!(
                "unsafe: the plugins' role {} is or can become {} which is a superuser, may \
                 create roles, owns tables or may use the host's schema; plugin SQL must never \
                 run with such rights. Revoke that membership or attribute (e.g. REVOKE … FROM \
                 {}; ALTER ROLE … NOSUPERUSER) and open the site again",
                self.login,
                unsafe_roles.join(", "),
                quote(&self.login)
            );
        }
        Ok(())
    }

    /// The role `grants` run as, made on first use with `admin` (idempotent, and safe
    /// against another host process making it at the same time).
    pub async fn role(&self, admin: &PgPool, grants: &Grants) -> Result<Arc<str>, StoreError> {
        if let Some(role) = self.roles.lock().get(&grants.id()) {
            return Ok(role.clone());
        }
        let _creating = self.creating.lock().await;
        if let Some(role) = self.roles.lock().get(&grants.id()) {
            return Ok(role.clone());
        }
        let role: Arc<str> = self.role_name(grants).into();
        self.make_role(admin, &role, grants)
            .await
            .map_err(|error| {
                let cause = error
                    .chain()
                    .find_map(|e| e.downcast_ref::<sqlx::Error>())
                    .and_then(super::store::unreachable);
                match cause {
                    Some(cause) => StoreError::Unavailable(cause),
                    None => StoreError::Failed(format!(
                        "cannot set up the database role of plugin {}: {error:#}",
                        grants.plugin
                    )),
                }
            })?;
        self.roles.lock().insert(grants.id(), role.clone());
        Ok(role)
    }

    /// `hearth_<db>_p_<plugin>_<hash of the grants>`.
    fn role_name(&self, grants: &Grants) -> String {
        let reads: BTreeSet<&String> = grants.reads.iter().collect();
        let writes: BTreeSet<&String> = grants.writes.iter().collect();
        let mut hash = Sha256::new();
        hash.update(grants.plugin.as_bytes());
        for table in reads {
            hash.update(b"\0r");
            hash.update(table.as_bytes());
        }
        for table in writes {
            hash.update(b"\0w");
            hash.update(table.as_bytes());
        }
        if let Some(namespace) = &grants.namespace {
            hash.update(b"\0n");
            hash.update(namespace.as_bytes());
        }
        let plugin: String = grants
            .plugin
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(12)
            .collect();
        format!(
            "{}p_{plugin}_{}",
            self.prefix,
            &hex::encode(hash.finalize())[..8]
        )
    }

    async fn make_role(&self, admin: &PgPool, role: &str, grants: &Grants) -> Result<()> {
        ensure_role(admin, role).await?;
        let mut sql = String::new();
        for table in &grants.reads {
            if !grants.writes.contains(table) {
                sql += &format!(
                    "GRANT SELECT ON public.{} TO {};\n",
                    quote(table),
                    quote(role)
                );
            }
        }
        for table in &grants.writes {
            sql += &format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON public.{} TO {};\n",
                quote(table),
                quote(role)
            );
        }
        if grants.namespace.is_some() {
            // The plugin's own tables, through the role their migrations grant them to.
            let users = user_role(&self.prefix, &grants.plugin);
            ensure_role(admin, &users).await?;
            sql += &format!("GRANT {} TO {};\n", quote(&users), quote(role));
        }
        sql += &format!("GRANT {} TO {};", quote(role), quote(&self.login));
        // Concurrent GRANTs of one object from two processes can collide; once more then.
        for attempt in 0..3 {
            match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
                .execute(admin)
                .await
            {
                Ok(_) => return Ok(()),
                Err(error) if attempt < 2 && is_concurrent_update(&error) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Ok(())
    }

    /// Closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Begins a plugin's transaction on the plugins' `pool` as `role`: read-only for a GET,
/// every statement stopped at the request's deadline.
pub async fn begin(
    pool: &PgPool,
    role: &str,
    write: bool,
    deadline: Instant,
) -> Result<Transaction<'static, Postgres>, StoreError> {
    // Rounded up: a timeout cut to whole milliseconds could stop the statement just
    // before the deadline, when the host does not yet see it as passed.
    let remaining = deadline
        .saturating_duration_since(Instant::now())
        .as_micros()
        .div_ceil(1000)
        .max(1);
    let mode = if write { "READ WRITE" } else { "READ ONLY" };
    let begin = format!(
        "BEGIN {mode}; SET LOCAL ROLE {}; SET LOCAL statement_timeout = {remaining}",
        quote(role)
    );
    let wait = deadline.saturating_duration_since(Instant::now());
    let begun = async {
        // The pool does not ping a connection before handing it out: one the server
        // closed while it sat idle (a restart, an idle timeout) fails here, before any
        // of the plugin's statements, and the pool drops it. Each idle connection may
        // be such a one, so as many tries as the pool holds and one more (a closed
        // socket fails at once; a fresh connection to a server that is down, too).
        let mut tries = 0;
        loop {
            tries += 1;
            match pool.begin_with(AssertSqlSafe(begin.clone())).await {
                Err(error) if tries <= PLUGIN_POOL_SIZE && lost(&error) => {
                    tracing::debug!(
                        "a plugin connection was lost while idle ({error}); begun again"
                    );
                }
                other => break other,
            }
        }
    };
    match tokio::time::timeout(wait, begun).await {
        Ok(Ok(tx)) => Ok(tx),
        Ok(Err(error)) => Err(match super::store::unreachable(&error) {
            // A connection lost on every try, or refused: the request answers 503.
            Some(cause) => StoreError::Unavailable(cause),
            None => StoreError::Failed(format!("cannot begin the plugin's transaction: {error}")),
        }),
        Err(_) => Err(StoreError::deadline()),
    }
}

/// Whether `error` says the connection itself is gone (not that no connection came
/// free, nor that the pool is closed).
fn lost(error: &sqlx::Error) -> bool {
    !matches!(error, sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed)
        && super::store::unreachable(error).is_some()
}

fn is_duplicate(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if matches!(e.code().as_deref(), Some("42710" | "23505")))
}

fn is_concurrent_update(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("XX000") && e.message().contains("concurrently"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_stay_within_postgres_limits() {
        assert_eq!(
            role_base("hearth_t_0123456789abcdef"),
            "hearth_t_0123456789abcdef"
        );
        assert_eq!(role_base("Clinic-East").len(), 17);
        assert!(role_base(&"x".repeat(40)).starts_with('h'));
        let longest = format!(
            "{}p_{}_{}",
            role_prefix(&"a".repeat(32)),
            "b".repeat(12),
            "c".repeat(8)
        );
        assert!(longest.len() <= 63, "{longest}");
    }
}
