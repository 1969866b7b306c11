//! Which SQL a plugin may run: deny by default, enforced below the SQL string.
//!
//! A plugin declares the tables it reads and writes. Before the host runs a statement for a
//! plugin the first time, it asks the database engine itself what the statement touches:
//!
//! - **SQLite**: the statement is compiled on a private read-only connection that has an
//!   authorizer (`sqlite3_set_authorizer`) installed. SQLite's compiler reports every table
//!   and column read, every table written, every function called and every statement kind
//!   (PRAGMA, ATTACH, transaction control, DDL…), views and sub-queries resolved. Anything
//!   outside the grant is refused. Compilation is deterministic for a given schema, so the
//!   verdict holds for the statement compiled again on the pooled connections.
//! - **PostgreSQL**: the statement is parsed with a real SQL parser (`sqlparser`, the
//!   PostgreSQL dialect); only `SELECT`, `INSERT`, `UPDATE`, `DELETE` (and `WITH` around
//!   them) are accepted, every relation must be granted, schema-qualified names and
//!   table functions are refused, and only functions on a portable allow-list may be
//!   called (so `set_config`, `pg_*`, `lo_*`, `dblink` and the like never run).
//!
//! Verdicts are cached per grant set and SQL text, so the check costs a hash lookup after
//! the first call. A statement that writes is also refused during a GET request.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};

/// Tables no plugin may be granted: the host's own.
pub const HOST_TABLES: &[&str] = &[
    "site_settings",
    "signing_keys",
    "users_secure",
    "api_token",
    "api_log",
    "oauth_clients",
    "oauth_refresh_tokens",
    "oauth_codes",
    "oauth_jti",
    "oauth_login_failures",
    "portal_logins",
    "oauth_sessions",
    "_sqlx_migrations",
];

/// Functions plugin SQL may call on either database.
const FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "length",
    "substr",
    "substring",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "coalesce",
    "nullif",
    "abs",
    "round",
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "like",
    "instr",
    "strpos",
    "concat",
    "cast",
];

/// What a plugin was granted on a site.
#[derive(Debug)]
pub struct Grants {
    id: u64,
    /// The plugin's name, for messages.
    pub plugin: String,
    /// Tables it may read.
    pub reads: HashSet<String>,
    /// Tables it may write (and read).
    pub writes: HashSet<String>,
}

static NEXT_GRANTS_ID: AtomicU64 = AtomicU64::new(1);

impl Grants {
    /// A grant set; refuses host tables.
    pub fn new(
        plugin: &str,
        reads: impl IntoIterator<Item = String>,
        writes: impl IntoIterator<Item = String>,
    ) -> Result<Grants, String> {
        let reads: HashSet<String> = reads.into_iter().map(|t| t.to_ascii_lowercase()).collect();
        let writes: HashSet<String> = writes.into_iter().map(|t| t.to_ascii_lowercase()).collect();
        if let Some(table) = reads
            .iter()
            .chain(&writes)
            .find(|t| HOST_TABLES.contains(&t.as_str()))
        {
            return Err(format!(
                "plugin {plugin} may not be granted the host table {table}"
            ));
        }
        Ok(Grants {
            id: NEXT_GRANTS_ID.fetch_add(1, Ordering::Relaxed),
            plugin: plugin.to_owned(),
            reads,
            writes,
        })
    }

    fn may_read(&self, table: &str) -> bool {
        let table = table.to_ascii_lowercase();
        self.reads.contains(&table) || self.writes.contains(&table)
    }

    fn may_write(&self, table: &str) -> bool {
        self.writes.contains(&table.to_ascii_lowercase())
    }
}

/// What the engine found in an allowed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// True when the statement changes data.
    pub writes: bool,
}

type Verdict = Result<Statement, String>;

/// The per-site gate plugin SQL passes through.
pub struct SqlGate {
    engine: Engine,
    cache: RwLock<HashMap<u64, HashMap<Box<str>, Verdict>>>,
}

enum Engine {
    Sqlite(Mutex<SqliteChecker>),
    Postgres,
}

/// Cached verdicts per grant set before the cache for that set is emptied.
const CACHE_LIMIT: usize = 10_000;

impl SqlGate {
    /// A gate for an SQLite database file.
    pub fn sqlite(path: &str) -> Result<SqlGate, String> {
        Ok(SqlGate {
            engine: Engine::Sqlite(Mutex::new(SqliteChecker::open(path)?)),
            cache: RwLock::default(),
        })
    }

    /// A gate for a PostgreSQL database.
    pub fn postgres() -> SqlGate {
        SqlGate {
            engine: Engine::Postgres,
            cache: RwLock::default(),
        }
    }

    /// May `grants` run `sql` in a request that may (or may not) write?
    pub fn check(&self, grants: &Grants, sql: &str, may_write: bool) -> Result<Statement, String> {
        let cached = self
            .cache
            .read()
            .get(&grants.id)
            .and_then(|verdicts| verdicts.get(sql).cloned());
        let verdict = match cached {
            Some(verdict) => verdict,
            None => {
                let verdict = match &self.engine {
                    Engine::Sqlite(checker) => checker.lock().check(grants, sql),
                    Engine::Postgres => check_postgres(grants, sql),
                };
                let mut cache = self.cache.write();
                let verdicts = cache.entry(grants.id).or_default();
                if verdicts.len() >= CACHE_LIMIT {
                    verdicts.clear();
                }
                verdicts.insert(sql.into(), verdict.clone());
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

    /// Forgets the verdicts for a grant set (when its plugin is unloaded).
    pub fn forget(&self, grants: &Grants) {
        self.cache.write().remove(&grants.id);
    }
}

/// A private read-only SQLite connection used only to compile statements under an
/// authorizer.
struct SqliteChecker {
    db: *mut libsqlite3_sys::sqlite3,
}

// SAFETY: the connection is only used under the gate's mutex, one thread at a time, and
// SQLite is built thread-safe (serialized) by libsqlite3-sys.
unsafe impl Send for SqliteChecker {}

/// What the authorizer callback sees and records during one check.
struct CheckState<'a> {
    grants: &'a Grants,
    denial: Option<String>,
    writes: bool,
}

impl SqliteChecker {
    fn open(path: &str) -> Result<SqliteChecker, String> {
        use libsqlite3_sys as ffi;
        let c_path = CString::new(path).map_err(|_| "database path contains NUL".to_owned())?;
        let mut db = std::ptr::null_mut();
        // SAFETY: valid C string and out-pointer; the handle is closed in Drop.
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                c_path.as_ptr(),
                &mut db,
                ffi::SQLITE_OPEN_READONLY | ffi::SQLITE_OPEN_FULLMUTEX,
                std::ptr::null(),
            )
        };
        if rc != ffi::SQLITE_OK {
            // SAFETY: sqlite3_close accepts the handle even after a failed open.
            unsafe { ffi::sqlite3_close(db) };
            return Err(format!(
                "cannot open {path} to check plugin SQL (code {rc})"
            ));
        }
        Ok(SqliteChecker { db })
    }

    fn check(&mut self, grants: &Grants, sql: &str) -> Verdict {
        use libsqlite3_sys as ffi;
        let mut state = CheckState {
            grants,
            denial: None,
            writes: false,
        };
        let mut stmt = std::ptr::null_mut();
        let mut tail: *const c_char = std::ptr::null();
        // SAFETY: the callback only dereferences `state` while this function runs; the
        // authorizer is removed before returning.
        let rc = unsafe {
            ffi::sqlite3_set_authorizer(
                self.db,
                Some(authorize),
                &mut state as *mut CheckState<'_> as *mut c_void,
            );
            let rc = ffi::sqlite3_prepare_v2(
                self.db,
                sql.as_ptr() as *const c_char,
                sql.len() as c_int,
                &mut stmt,
                &mut tail,
            );
            ffi::sqlite3_set_authorizer(self.db, None, std::ptr::null_mut());
            rc
        };
        let result = if let Some(denial) = state.denial.take() {
            Err(denial)
        } else if rc != ffi::SQLITE_OK {
            // SAFETY: the handle is valid; the message is copied before the next call.
            let message = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(self.db)) };
            Err(format!("invalid SQL: {}", message.to_string_lossy()))
        } else if stmt.is_null() {
            Err("the SQL holds no statement".to_owned())
        } else {
            // SAFETY: `tail` points into `sql` (or is its end).
            let consumed = unsafe { tail.offset_from(sql.as_ptr() as *const c_char) } as usize;
            if !is_blank(&sql[consumed.min(sql.len())..]) {
                Err("one statement per call: the SQL holds more than one".to_owned())
            } else {
                // SAFETY: `stmt` is a valid prepared statement.
                let read_only = unsafe { ffi::sqlite3_stmt_readonly(stmt) } != 0;
                Ok(Statement {
                    writes: state.writes || !read_only,
                })
            }
        };
        // SAFETY: finalizing a null or valid statement is allowed.
        unsafe { ffi::sqlite3_finalize(stmt) };
        result
    }
}

impl Drop for SqliteChecker {
    fn drop(&mut self) {
        // SAFETY: the handle came from sqlite3_open_v2 and is closed once.
        unsafe { libsqlite3_sys::sqlite3_close(self.db) };
    }
}

/// True when `rest` holds only whitespace and comments.
fn is_blank(rest: &str) -> bool {
    let mut s = rest.trim_start();
    loop {
        if let Some(after) = s.strip_prefix("--") {
            s = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = s.strip_prefix("/*") {
            s = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = s.strip_prefix(';') {
            s = after.trim_start();
        } else {
            return s.is_empty();
        }
    }
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        // SAFETY: SQLite passes valid NUL-terminated strings or null.
        unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
    }
}

/// The authorizer: deny by default.
extern "C" fn authorize(
    user: *mut c_void,
    action: c_int,
    arg1: *const c_char,
    arg2: *const c_char,
    database: *const c_char,
    _trigger: *const c_char,
) -> c_int {
    use libsqlite3_sys as ffi;
    // SAFETY: `user` is the `CheckState` installed by `SqliteChecker::check`.
    let state = unsafe { &mut *(user as *mut CheckState<'_>) };
    let grants = state.grants;
    let refusal = match action {
        ffi::SQLITE_SELECT | ffi::SQLITE_RECURSIVE => None,
        // A read without a schema is of a common table expression, not a stored table.
        ffi::SQLITE_READ if database.is_null() => None,
        ffi::SQLITE_READ => {
            let table = text(arg1);
            (!grants.may_read(&table)).then(|| {
                format!(
                    "table {table} is not granted to plugin {} for reading",
                    grants.plugin
                )
            })
        }
        ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE => {
            let table = text(arg1);
            state.writes = true;
            (!grants.may_write(&table)).then(|| {
                format!(
                    "table {table} is not granted to plugin {} for writing",
                    grants.plugin
                )
            })
        }
        ffi::SQLITE_FUNCTION => {
            let name = text(arg2).to_ascii_lowercase();
            (!FUNCTIONS.contains(&name.as_str()))
                .then(|| format!("function {name} is not allowed in plugin SQL"))
        }
        ffi::SQLITE_PRAGMA => Some("PRAGMA is not allowed in plugin SQL".to_owned()),
        ffi::SQLITE_TRANSACTION | ffi::SQLITE_SAVEPOINT => {
            Some("transactions belong to the host: plugin SQL may not control them".to_owned())
        }
        ffi::SQLITE_ATTACH | ffi::SQLITE_DETACH => {
            Some("ATTACH and DETACH are not allowed in plugin SQL".to_owned())
        }
        _ => Some(format!(
            "this kind of statement (SQLite action {action}) is not allowed in plugin SQL"
        )),
    };
    match refusal {
        None => ffi::SQLITE_OK,
        Some(reason) => {
            state.denial.get_or_insert(reason);
            ffi::SQLITE_DENY
        }
    }
}

/// The PostgreSQL gate: parse, then walk the statement.
fn check_postgres(grants: &Grants, sql: &str) -> Verdict {
    use sqlparser::ast::{
        Expr, FromTable, ObjectName, Statement as Ast, TableFactor, TableObject, Visit, Visitor,
    };
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    let statements =
        Parser::parse_sql(&PostgreSqlDialect {}, sql).map_err(|e| format!("invalid SQL: {e}"))?;
    let [statement] = statements.as_slice() else {
        return Err("one statement per call: the SQL holds more than one (or none)".to_owned());
    };

    #[derive(Default)]
    struct Walk {
        relations: Vec<ObjectName>,
        targets: Vec<String>,
        ctes: HashSet<String>,
        refusal: Option<String>,
    }

    fn name_of(table: &TableFactor) -> Option<String> {
        match table {
            TableFactor::Table { name, .. } => Some(name.to_string()),
            _ => None,
        }
    }

    impl Visitor for Walk {
        type Break = ();

        fn pre_visit_statement(&mut self, statement: &Ast) -> ControlFlow<()> {
            match statement {
                Ast::Query(_) => {}
                Ast::Insert(insert) => match &insert.table {
                    TableObject::TableName(name) => self.targets.push(name.to_string()),
                    _ => self.refusal = Some("INSERT into a function is not allowed".into()),
                },
                Ast::Update(update) => match name_of(&update.table.relation) {
                    Some(name) => self.targets.push(name),
                    None => self.refusal = Some("UPDATE of this target is not allowed".into()),
                },
                Ast::Delete(delete) => {
                    let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) =
                        &delete.from;
                    for table in tables {
                        match name_of(&table.relation) {
                            Some(name) => self.targets.push(name),
                            None => {
                                self.refusal = Some("DELETE from this target is not allowed".into())
                            }
                        }
                    }
                }
                other => {
                    let kind = other.to_string();
                    let kind = kind
                        .split_whitespace()
                        .next()
                        .unwrap_or("this")
                        .to_uppercase();
                    self.refusal = Some(format!("{kind} statements are not allowed in plugin SQL"));
                }
            }
            if self.refusal.is_some() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }

        fn pre_visit_query(&mut self, query: &sqlparser::ast::Query) -> ControlFlow<()> {
            if let Some(with) = &query.with {
                for cte in &with.cte_tables {
                    self.ctes.insert(cte.alias.name.value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }

        fn pre_visit_table_factor(&mut self, table: &TableFactor) -> ControlFlow<()> {
            match table {
                TableFactor::Table {
                    args: Some(_),
                    name,
                    ..
                } => {
                    self.refusal = Some(format!("table function {name} is not allowed"));
                    ControlFlow::Break(())
                }
                TableFactor::Table { .. }
                | TableFactor::Derived { .. }
                | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
                other => {
                    self.refusal = Some(format!("{other} is not allowed in plugin SQL"));
                    ControlFlow::Break(())
                }
            }
        }

        fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
            self.relations.push(relation.clone());
            ControlFlow::Continue(())
        }

        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(function) = expr {
                let name = function.name.to_string().to_ascii_lowercase();
                if !FUNCTIONS.contains(&name.as_str()) {
                    self.refusal = Some(format!("function {name} is not allowed in plugin SQL"));
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
    }

    let mut walk = Walk::default();
    let _ = statement.visit(&mut walk);
    if let Some(refusal) = walk.refusal {
        return Err(refusal);
    }
    let plain = |name: &ObjectName| -> Result<String, String> {
        match name.0.as_slice() {
            [part] => Ok(part.to_string().trim_matches('"').to_ascii_lowercase()),
            _ => Err(format!(
                "qualified name {name} is not allowed in plugin SQL"
            )),
        }
    };
    for relation in &walk.relations {
        let table = plain(relation)?;
        if !walk.ctes.contains(&table) && !grants.may_read(&table) {
            return Err(format!(
                "table {table} is not granted to plugin {} for reading",
                grants.plugin
            ));
        }
    }
    for target in &walk.targets {
        let table = target.trim_matches('"').to_ascii_lowercase();
        if !grants.may_write(&table) {
            return Err(format!(
                "table {table} is not granted to plugin {} for writing",
                grants.plugin
            ));
        }
    }
    Ok(Statement {
        writes: !walk.targets.is_empty(),
    })
}

/// Shared handle to a site's gate.
pub type SharedGate = Arc<SqlGate>;

#[cfg(test)]
mod tests {
    use super::*;

    fn grants() -> Grants {
        Grants::new(
            "test",
            ["patient_data".to_owned()],
            ["lists".to_owned(), "sequences".to_owned()],
        )
        .unwrap()
    }

    fn sqlite_gate() -> (SqlGate, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "hearth-gate-{}-{}.db",
            std::process::id(),
            NEXT_GRANTS_ID.fetch_add(1, Ordering::Relaxed)
        ));
        // Build a schema with the plain C API.
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        unsafe {
            let mut db = std::ptr::null_mut();
            libsqlite3_sys::sqlite3_open(c_path.as_ptr(), &mut db);
            let ddl = CString::new(
                "CREATE TABLE patient_data (id INTEGER, fname TEXT);
                 CREATE TABLE lists (id INTEGER, pid INTEGER, title TEXT);
                 CREATE TABLE sequences (name TEXT, value INTEGER);
                 CREATE TABLE users_secure (id INTEGER, password TEXT);",
            )
            .unwrap();
            libsqlite3_sys::sqlite3_exec(
                db,
                ddl.as_ptr(),
                None,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            libsqlite3_sys::sqlite3_close(db);
        }
        (SqlGate::sqlite(path.to_str().unwrap()).unwrap(), path)
    }

    #[test]
    fn sqlite_allows_granted_reads_and_writes() {
        let (gate, path) = sqlite_gate();
        let g = grants();
        assert_eq!(
            gate.check(&g, "SELECT fname FROM patient_data WHERE id = $1", false),
            Ok(Statement { writes: false })
        );
        assert!(
            gate.check(
                &g,
                "SELECT COUNT(*), LOWER(fname) FROM patient_data WHERE fname LIKE $1",
                false
            )
            .is_ok()
        );
        assert_eq!(
            gate.check(
                &g,
                "INSERT INTO lists (id, pid, title) SELECT 1, id, fname FROM patient_data",
                true
            ),
            Ok(Statement { writes: true })
        );
        assert!(
            gate.check(
                &g,
                "UPDATE sequences SET value = value + 1 WHERE name = 'pid' RETURNING value",
                true
            )
            .is_ok()
        );
        assert!(
            gate.check(&g, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT COUNT(*) FROM n", false)
                .is_ok(),
            "common table expressions are not tables"
        );
        assert!(
            gate.check(
                &g,
                "WITH x AS (SELECT password FROM users_secure) SELECT * FROM x",
                false
            )
            .is_err(),
            "but what they read is checked"
        );
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn sqlite_refuses_everything_else() {
        let (gate, path) = sqlite_gate();
        let g = grants();
        let refused = |sql: &str| gate.check(&g, sql, true).unwrap_err();
        assert!(refused("SELECT password FROM users_secure").contains("users_secure"));
        assert!(refused("UPDATE patient_data SET fname = 'x'").contains("for writing"));
        assert!(
            refused("SELECT * FROM lists WHERE pid IN (SELECT id FROM users_secure)")
                .contains("users_secure")
        );
        assert!(refused("PRAGMA table_info(lists)").contains("PRAGMA"));
        let pragma = refused("SELECT * FROM pragma_table_info('lists')");
        assert!(pragma.contains("pragma_table_info"), "{pragma}");
        assert!(refused("ATTACH DATABASE 'x.db' AS x").contains("ATTACH"));
        assert!(refused("COMMIT").contains("transactions"));
        refused("DROP TABLE lists");
        refused("CREATE TABLE x (a)");
        assert!(refused("SELECT load_extension('x')").contains("load_extension"));
        assert!(refused("SELECT 1; DELETE FROM lists").contains("one statement"));
        assert!(refused("SELECT * FROM sqlite_master").contains("sqlite_master"));
        assert!(
            gate.check(&g, "DELETE FROM lists", false)
                .unwrap_err()
                .contains("GET")
        );
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn postgres_gate_checks_relations_statements_and_functions() {
        let gate = SqlGate::postgres();
        let g = grants();
        assert_eq!(
            gate.check(
                &g,
                "SELECT p.fname FROM patient_data p WHERE LOWER(p.fname) LIKE $1 LIMIT $2",
                false
            ),
            Ok(Statement { writes: false })
        );
        assert_eq!(
            gate.check(&g, "WITH x AS (SELECT id FROM patient_data) INSERT INTO lists (pid) SELECT id FROM x RETURNING id", true),
            Ok(Statement { writes: true })
        );
        let refused = |sql: &str| gate.check(&g, sql, true).unwrap_err();
        assert!(refused("SELECT password FROM users_secure").contains("users_secure"));
        assert!(refused("RESET ROLE").contains("not allowed"));
        assert!(refused("SELECT set_config('role', 'postgres', false)").contains("set_config"));
        assert!(refused("SELECT * FROM pg_catalog.pg_authid").contains("qualified"));
        assert!(refused("SELECT * FROM generate_series(1, 3)").contains("generate_series"));
        assert!(refused("UPDATE patient_data SET fname = 'x'").contains("for writing"));
        assert!(
            refused("WITH d AS (DELETE FROM patient_data RETURNING id) SELECT * FROM d")
                .contains("patient_data")
        );
        assert!(refused("SELECT 1; SELECT 2").contains("one statement"));
        assert!(
            gate.check(&g, "DELETE FROM lists", false)
                .unwrap_err()
                .contains("GET")
        );
    }

    #[test]
    fn host_tables_cannot_be_granted() {
        assert!(Grants::new("x", ["api_token".to_owned()], []).is_err());
    }
}
