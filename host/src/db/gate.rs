//! The per-site gate plugin SQL passes through: each statement checked against the
//! plugin's grants ([`super::grants`], verdicts cached per grant set and SQL text), and
//! each request's transaction begun where the database enforces them (a `query_only`
//! SQLite connection for a GET; on PostgreSQL the plugin's own role, [`super::roles`]).

use std::collections::HashMap;

use parking_lot::{Mutex, RwLock};

use super::grants::{Grants, SqliteChecker, Statement, Verdict, check_postgres, first_word};

/// The per-site gate plugin SQL passes through.
pub struct SqlGate {
    engine: Engine,
    cache: RwLock<HashMap<u64, Verdicts>>,
}

enum Engine {
    Sqlite(Mutex<SqliteChecker>),
    /// The parser, and (except in unit tests of the parser) the plugins' roles.
    Postgres(Option<PgRoles>),
}

/// The plugins' roles on a PostgreSQL site and the pool of the site's own user that
/// makes them.
struct PgRoles {
    admin: sqlx::PgPool,
    access: super::roles::PluginAccess,
}

/// Cached verdicts per grant set before the cache for that set is emptied.
const CACHE_LIMIT: usize = 10_000;

/// Bytes of SQL text cached per grant set before the cache for that set is emptied. A
/// plugin's fixed statements take a few hundred KiB at most; a plugin whose statements
/// differ every time (a FHIR export's key windows write their bounds into the text) would
/// otherwise keep 10,000 long texts, tens of MiB, for nothing.
const CACHE_BYTES: usize = 4 << 20;

/// The verdicts of one grant set, and the bytes of SQL text they hold.
#[derive(Default)]
struct Verdicts {
    by_sql: HashMap<Box<str>, Verdict>,
    bytes: usize,
}

impl SqlGate {
    /// A gate for an SQLite database file.
    pub fn sqlite(path: &str) -> Result<SqlGate, String> {
        Ok(SqlGate {
            engine: Engine::Sqlite(Mutex::new(SqliteChecker::open(path)?)),
            cache: RwLock::default(),
        })
    }

    /// A gate for a PostgreSQL database whose site's own user connects with `admin`
    /// (`url`): sets up and checks the role plugin SQL logs in as (see
    /// [`super::roles`]); refuses an unsafe set-up.
    pub async fn postgres(admin: &sqlx::PgPool, url: &str) -> anyhow::Result<SqlGate> {
        let access = super::roles::PluginAccess::prepare(admin, url).await?;
        Ok(SqlGate {
            engine: Engine::Postgres(Some(PgRoles {
                admin: admin.clone(),
                access,
            })),
            cache: RwLock::default(),
        })
    }

    /// Only the PostgreSQL parser, without a database (for tests of the parser).
    pub fn postgres_parser() -> SqlGate {
        SqlGate {
            engine: Engine::Postgres(None),
            cache: RwLock::default(),
        }
    }

    /// Begins the transaction of a plugin's request: on SQLite a read-only connection
    /// for a GET (`query_only`); on PostgreSQL, on the plugins' pool, as the role of
    /// `grants` (`SET LOCAL ROLE`), `READ ONLY` for a GET.
    pub async fn begin(
        &self,
        db: &super::Db,
        grants: &Grants,
        write: bool,
        deadline: std::time::Instant,
    ) -> Result<super::store::Tx, super::store::StoreError> {
        use super::store::{StoreError, Tx};
        match (&self.engine, db) {
            (Engine::Sqlite(_), super::Db::Sqlite(_, fast)) => {
                let tx = if write {
                    fast.begin(true, deadline).await?
                } else {
                    fast.begin_query_only(deadline).await?
                };
                Ok(Tx::Sqlite(tx))
            }
            (Engine::Postgres(Some(roles)), super::Db::Postgres(_)) => {
                let role = roles.access.role(&roles.admin, grants).await?;
                super::roles::begin(&roles.access.pool, &role, write, deadline)
                    .await
                    .map(Tx::Postgres)
            }
            _ => Err(StoreError::Failed(
                "plugin SQL has no database role on this site".into(),
            )),
        }
    }

    /// Forgets what the gate knows of the schema and every cached verdict: a plugin's
    /// migration changed the schema.
    pub fn schema_changed(&self) {
        if let Engine::Sqlite(checker) = &self.engine
            && let Err(why) = checker.lock().refresh()
        {
            tracing::warn!("the SQL gate could not read the schema again: {why}");
        }
        self.cache.write().clear();
    }

    /// Closes the plugins' pool (PostgreSQL).
    pub async fn close(&self) {
        if let Engine::Postgres(Some(roles)) = &self.engine {
            roles.access.close().await;
        }
    }

    /// May `grants` run `sql` in a request that may (or may not) write?
    pub fn check(&self, grants: &Grants, sql: &str, may_write: bool) -> Result<Statement, String> {
        let cached = self
            .cache
            .read()
            .get(&grants.id())
            .and_then(|verdicts| verdicts.by_sql.get(sql).cloned());
        let verdict = match cached {
            Some(verdict) => verdict,
            None => {
                let verdict = first_word(sql).and_then(|()| match &self.engine {
                    Engine::Sqlite(checker) => checker.lock().check(grants, sql),
                    Engine::Postgres(_) => check_postgres(grants, sql),
                });
                let mut cache = self.cache.write();
                let verdicts = cache.entry(grants.id()).or_default();
                if verdicts.by_sql.len() >= CACHE_LIMIT || verdicts.bytes + sql.len() > CACHE_BYTES
                {
                    *verdicts = Verdicts::default();
                }
                if verdicts
                    .by_sql
                    .insert(sql.into(), verdict.clone())
                    .is_none()
                {
                    verdicts.bytes += sql.len();
                }
                verdict
            }
        };
        match verdict {
            Ok(statement) if statement.writes && !may_write => Err(format!(
                "plugin {} may not write during a GET request",
                grants.plugin
            )),
            other => other,
        }
    }

    /// Every statement the gate has let through since its verdicts were last forgotten,
    /// in no order: what the site's plugins run (the query-plan test reads them to
    /// `EXPLAIN` the SQL each FHIR search parameter produces).
    pub fn allowed_statements(&self) -> Vec<String> {
        self.cache
            .read()
            .values()
            .flat_map(|verdicts| verdicts.by_sql.iter())
            .filter(|(_, verdict)| verdict.is_ok())
            .map(|(sql, _)| sql.to_string())
            .collect()
    }

    /// Forgets the verdicts for a grant set (when its plugin is unloaded).
    pub fn forget(&self, grants: &Grants) {
        self.cache.write().remove(&grants.id());
    }
}
