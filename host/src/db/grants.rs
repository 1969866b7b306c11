//! Which SQL a plugin may run: deny by default, enforced below the SQL string.
//!
//! A plugin declares the tables it reads and writes. Every statement first passes the
//! gate here (one statement, one of `SELECT`, `INSERT`, `UPDATE`, `DELETE`, `WITH`), and
//! the database enforces the grants itself:
//!
//! - **SQLite**: the statement is compiled on a private read-only connection that has an
//!   authorizer (`sqlite3_set_authorizer`) installed. SQLite's compiler reports every table
//!   and column read (a read that uses no column, too), every table written, every
//!   function called and every statement kind (PRAGMA, ATTACH, transaction control,
//!   DDL…), views, sub-queries and common table expressions resolved. Anything outside
//!   the grant is refused. Then the compiled program is read (`EXPLAIN`): every b-tree
//!   it opens must belong to a granted table. Compilation is deterministic for a given schema, so the verdict
//!   holds for the statement compiled again on the pooled connections. A GET runs on a
//!   `query_only` connection.
//! - **PostgreSQL**: the statement runs as a database role of the plugin's own whose
//!   privileges mirror its grants, with the host's tables in a schema no plugin role may
//!   use ([`super::roles`]); a GET's transaction is `READ ONLY`. In front of it, for clear
//!   messages, the statement is parsed with a real SQL parser (`sqlparser`, the
//!   PostgreSQL dialect) and walked: every relation (`TABLE x` included; common table
//!   expressions scoped per query level, as PostgreSQL scopes them) must be granted,
//!   schema-qualified names, table functions and `SELECT … INTO` are refused, and only
//!   functions on a portable allow-list may be called (so `set_config`, `pg_*`, `lo_*`,
//!   `dblink` and the like never run).
//!
//! Verdicts are cached per grant set and SQL text, so the check costs a hash lookup after
//! the first call. A statement that writes is also refused during a GET request.

use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};

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
    "console_sessions",
    "bulk_jobs",
    "background_services",
    "background_service_runs",
    "plugin_migrations",
    "_sqlx_migrations",
];

/// Functions plugin SQL may call on either database.
pub(crate) const FUNCTIONS: &[&str] = &[
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
    // A planner hint: the condition is usually true, so no index should be chosen for it
    // (SQLite's own; migration 0600 defines it as the identity on PostgreSQL).
    "likely",
];

/// Tables whose every write a trigger records in `<table>_history` (migration
/// `0461_fhir_versions.sql`, and `0462_fhir_versions_vitals.sql` for `form_vitals` and
/// `issue_encounter`: the FHIR versions of their rows). A plugin granted one of
/// them (to read or to write) may read its history table; only the host's triggers write
/// history (named `hearth_version_…` on SQLite; a `SECURITY DEFINER` function on
/// PostgreSQL), so no plugin can forge or erase a version.
pub const VERSIONED_TABLES: &[&str] = &[
    "patient_data",
    "users",
    "facility",
    "form_encounter",
    "lists",
    "form_vitals",
    "issue_encounter",
];

/// The history tables of the versioned tables among `tables`.
fn histories<'a>(tables: impl Iterator<Item = &'a String>) -> Vec<String> {
    tables
        .filter(|t| VERSIONED_TABLES.contains(&t.as_str()))
        .map(|t| format!("{t}_history"))
        .collect()
}

/// Whether `table` is the history table of a versioned table.
fn is_history(table: &str) -> bool {
    table
        .strip_suffix("_history")
        .is_some_and(|t| VERSIONED_TABLES.contains(&t))
}

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
    /// The prefix of the tables it owns (`x_<plugin>__`), which it may read and write
    /// without listing them, when it brings migrations.
    pub namespace: Option<String>,
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
            reads: {
                let kept = histories(reads.iter().chain(&writes));
                let mut reads = reads;
                reads.extend(kept);
                reads
            },
            writes: writes.into_iter().filter(|t| !is_history(t)).collect(),
            namespace: None,
        })
    }

    /// The same grants plus every table named `namespace…` (the plugin's own).
    pub fn with_namespace(mut self, namespace: Option<String>) -> Grants {
        self.namespace = namespace.map(|n| n.to_ascii_lowercase());
        self
    }

    fn owns(&self, table: &str) -> bool {
        self.namespace
            .as_deref()
            .is_some_and(|namespace| table.starts_with(namespace))
    }

    /// This grant set's id (unique in the process).
    pub fn id(&self) -> u64 {
        self.id
    }

    fn may_read(&self, table: &str) -> bool {
        let table = table.to_ascii_lowercase();
        self.reads.contains(&table) || self.writes.contains(&table) || self.owns(&table)
    }

    fn may_write(&self, table: &str) -> bool {
        let table = table.to_ascii_lowercase();
        self.writes.contains(&table) || self.owns(&table)
    }
}

/// How a refusal for a b-tree the checker does not know starts.
const UNKNOWN_BTREE: &str = "the statement opens b-tree";

/// What the engine found in an allowed statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statement {
    /// True when the statement changes data.
    pub writes: bool,
}

pub(super) type Verdict = Result<Statement, String>;

/// A private read-only SQLite connection used only to compile statements under an
/// authorizer.
pub(super) struct SqliteChecker {
    db: *mut libsqlite3_sys::sqlite3,
    /// Every stored table and view, SQLite's own tables and every table-valued module:
    /// the names an unqualified read may resolve to besides a common table expression.
    objects: HashSet<String>,
    /// The table each b-tree (table or index root page) belongs to.
    roots: HashMap<i64, String>,
}

// SAFETY: the connection is only used under the gate's mutex, one thread at a time, and
// SQLite is built thread-safe (serialized) by libsqlite3-sys.
unsafe impl Send for SqliteChecker {}

/// What the authorizer callback sees and records during one check.
struct CheckState<'a> {
    grants: &'a Grants,
    objects: &'a HashSet<String>,
    denial: Option<String>,
    writes: bool,
}

impl SqliteChecker {
    pub(super) fn open(path: &str) -> Result<SqliteChecker, String> {
        use libsqlite3_sys as ffi;
        let c_path = CString::new(path).map_err(|_| "database path contains NUL".to_owned())?;
        let mut db = std::ptr::null_mut();
        super::heap::install();
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
        let mut checker = SqliteChecker {
            db,
            objects: HashSet::new(),
            roots: HashMap::new(),
        };
        checker.objects = checker.object_names()?;
        checker.roots = checker.root_pages()?;
        Ok(checker)
    }

    /// Which table each root page belongs to (see [`SqliteChecker::roots`]).
    fn root_pages(&self) -> Result<HashMap<i64, String>, String> {
        // SAFETY: as in `object_names`.
        let connection = unsafe { rusqlite::Connection::from_handle(self.db) }
            .map_err(|e| format!("cannot read the schema: {e}"))?;
        let mut roots = HashMap::from([(1, "sqlite_schema".to_owned())]);
        let result = (|| -> rusqlite::Result<()> {
            let mut statement = connection
                .prepare("SELECT rootpage, tbl_name FROM sqlite_schema WHERE rootpage > 0")?;
            let rows = statement.query_map([], |row| {
                Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (page, table) = row?;
                roots.insert(page, table.to_ascii_lowercase());
            }
            Ok(())
        })();
        drop(connection);
        result.map_err(|e| format!("cannot read the schema: {e}"))?;
        Ok(roots)
    }

    /// The second look, below the authorizer: the b-trees the compiled program opens
    /// (`EXPLAIN`: `OpenRead`, `OpenWrite`, `VOpen`) must belong to granted tables. A
    /// table named only in a part of the statement the planner dropped is never opened.
    fn check_program(&self, grants: &Grants, sql: &str) -> Result<(), String> {
        // SAFETY: as in `object_names`; no authorizer is installed while this runs.
        let connection = unsafe { rusqlite::Connection::from_handle(self.db) }
            .map_err(|e| format!("cannot check the statement: {e}"))?;
        let result = (|| -> Result<(), String> {
            let failed = |e: rusqlite::Error| format!("invalid SQL: {e}");
            let mut statement = connection
                .prepare(&format!("EXPLAIN {sql}"))
                .map_err(failed)?;
            let mut steps = statement.raw_query();
            while let Some(step) = steps.next().map_err(failed)? {
                let opcode: String = step.get(1).map_err(failed)?;
                let page: i64 = step.get(3).map_err(failed)?;
                let write = match opcode.as_str() {
                    "OpenRead" | "ReopenIdx" => false,
                    "OpenWrite" => true,
                    "VOpen" => return Err("virtual tables are not allowed in plugin SQL".into()),
                    _ => continue,
                };
                let Some(table) = self.roots.get(&page) else {
                    return Err(format!(
                        "{UNKNOWN_BTREE} {page}, which is no table plugin {} was granted",
                        grants.plugin
                    ));
                };
                // The host's triggers open these; the authorizer has checked every access
                // the statement itself makes to them.
                if TRIGGER_KEPT.contains(&table.as_str()) || is_history(table) {
                    continue;
                }
                let (allowed, how) = if write {
                    (grants.may_write(table), "writing")
                } else {
                    (grants.may_read(table), "reading")
                };
                if !allowed {
                    return Err(format!(
                        "table {table} is not granted to plugin {} for {how}",
                        grants.plugin
                    ));
                }
            }
            Ok(())
        })();
        drop(connection);
        result
    }

    /// The names a read of a table may resolve to (see [`SqliteChecker::objects`]).
    fn object_names(&self) -> Result<HashSet<String>, String> {
        // SAFETY: the handle is valid for the checker's life; a connection made with
        // `from_handle` never closes it, and is dropped before this returns.
        let connection = unsafe { rusqlite::Connection::from_handle(self.db) }
            .map_err(|e| format!("cannot read the schema: {e}"))?;
        let mut names: HashSet<String> = [
            "sqlite_master",
            "sqlite_schema",
            "sqlite_temp_master",
            "sqlite_temp_schema",
            "sqlite_sequence",
            "sqlite_stat1",
            "sqlite_stat4",
            "sqlite_dbpage",
            "sqlite_stmt",
            "dbstat",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        let mut read = |sql: &str| -> rusqlite::Result<()> {
            let mut statement = connection.prepare(sql)?;
            let rows = statement.query_map([], |row| row.get::<_, String>(0))?;
            for name in rows {
                names.insert(name?.to_ascii_lowercase());
            }
            Ok(())
        };
        let result = read("SELECT name FROM sqlite_schema")
            .and_then(|()| read("SELECT name FROM pragma_module_list"));
        // Dropping the borrowed wrapper finalizes its statements; the handle stays open.
        drop(connection);
        result.map_err(|e| format!("cannot read the schema: {e}"))?;
        Ok(names)
    }

    /// Reads the schema again (after a plugin's migration changed it).
    pub(super) fn refresh(&mut self) -> Result<(), String> {
        self.objects = self.object_names()?;
        self.roots = self.root_pages()?;
        Ok(())
    }

    /// Checks `sql`; a b-tree the checker does not know means the schema changed since it
    /// was read (a plugin's migration, perhaps in another process): read it again, and
    /// check once more.
    pub(super) fn check(&mut self, grants: &Grants, sql: &str) -> Verdict {
        let verdict = self.check_once(grants, sql);
        if let Err(why) = &verdict
            && why.starts_with(UNKNOWN_BTREE)
            && self.refresh().is_ok()
        {
            return self.check_once(grants, sql);
        }
        verdict
    }

    fn check_once(&mut self, grants: &Grants, sql: &str) -> Verdict {
        use libsqlite3_sys as ffi;
        let mut state = CheckState {
            grants,
            objects: &self.objects,
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
                self.check_program(grants, sql).map(|()| Statement {
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
    trigger: *const c_char,
) -> c_int {
    use libsqlite3_sys as ffi;
    // SAFETY: `user` is the `CheckState` installed by `SqliteChecker::check`.
    let state = unsafe { &mut *(user as *mut CheckState<'_>) };
    let grants = state.grants;
    // What the host's own triggers do when the statement fires them (plugin SQL cannot
    // create triggers: DDL is refused below).
    if !trigger.is_null() && {
        let name = text(trigger);
        HOST_TRIGGER_PREFIXES.iter().any(|p| name.starts_with(p))
    } {
        if matches!(
            action,
            ffi::SQLITE_INSERT | ffi::SQLITE_UPDATE | ffi::SQLITE_DELETE
        ) {
            state.writes = true;
        }
        return ffi::SQLITE_OK;
    }
    let refusal = match action {
        ffi::SQLITE_SELECT | ffi::SQLITE_RECURSIVE => None,
        // A read without a schema is of a common table expression, or a read of a
        // stored table of which no column is used (`count(*)`, `EXISTS`): SQLite then
        // reports the table as written in the SQL. Refused when the name is a stored
        // table, one of SQLite's own or a table-valued module that is not granted (a
        // common table expression shadowing such a name is refused too: rename it).
        ffi::SQLITE_READ if database.is_null() => {
            let table = text(arg1).to_ascii_lowercase();
            (state.objects.contains(&table) && !grants.may_read(&table)).then(|| {
                format!(
                    "table {table} is not granted to plugin {} for reading",
                    grants.plugin
                )
            })
        }
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

/// How deep plugin SQL may nest expressions on PostgreSQL (sqlparser's default). Bounded,
/// because the parser recurses on the plugin call's stack. FHIR string search reads
/// folded copies of the columns (`folded_text`, kept by triggers) instead of folding
/// accents with nested `REPLACE` calls, so no plugin needs more.
const MAX_EXPRESSION_DEPTH: usize = 50;

/// Tables the host's triggers keep (migration `0480_folded_text`): a plugin statement
/// that changes a source table (`patient_data`, …) writes them through the trigger,
/// named `hearth_fold_…`, which the plugin's grants need not cover. A plugin's own
/// access to them is checked like any other (a read needs the table in its `READS`).
pub(crate) const TRIGGER_KEPT: &[&str] = &["folded_text"];

/// The prefixes of the host's triggers: those that keep [`TRIGGER_KEPT`], and those that
/// record versions in the history tables of [`VERSIONED_TABLES`].
const HOST_TRIGGER_PREFIXES: &[&str] = &["hearth_fold_", "hearth_version_"];

/// The PostgreSQL gate: parse, then walk the statement.
///
/// A first line only: on PostgreSQL the wall is the plugin's database role (see
/// [`crate::db::roles`]). The walk exists to give plugin authors a clear message, and
/// errs on the side of refusing.
pub(super) fn check_postgres(grants: &Grants, sql: &str) -> Verdict {
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    let statements = Parser::new(&PostgreSqlDialect {})
        .with_recursion_limit(MAX_EXPRESSION_DEPTH)
        .try_with_sql(sql)
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| format!("invalid SQL: {e}"))?;
    let [statement] = statements.as_slice() else {
        return Err("one statement per call: the SQL holds more than one (or none)".to_owned());
    };
    let mut walk = PgWalk {
        grants,
        scopes: Vec::new(),
        writes: false,
        refusal: None,
    };
    let _ = sqlparser::ast::Visit::visit(statement, &mut walk);
    match walk.refusal {
        Some(refusal) => Err(refusal),
        None => Ok(Statement {
            writes: walk.writes,
        }),
    }
}

/// The walk over one parsed PostgreSQL statement.
struct PgWalk<'g> {
    grants: &'g Grants,
    /// The common table expressions each enclosing query level defines.
    scopes: Vec<Vec<String>>,
    writes: bool,
    refusal: Option<String>,
}

/// The one part of a relation's name, lower-cased; qualified names are refused.
fn plain_name(name: &sqlparser::ast::ObjectName) -> Result<String, String> {
    match name.0.as_slice() {
        [part] => match part.as_ident() {
            Some(ident) => Ok(ident.value.to_ascii_lowercase()),
            None => Err(format!("the name {name} is not allowed in plugin SQL")),
        },
        _ => Err(format!(
            "qualified name {name} is not allowed in plugin SQL"
        )),
    }
}

/// Every relation named anywhere inside `query` (nested queries and `TABLE x` included).
fn relations_in(query: &sqlparser::ast::Query) -> Vec<String> {
    use sqlparser::ast::{ObjectName, Query, Visit, Visitor};
    struct Names(Vec<String>);
    impl Visitor for Names {
        type Break = ();
        fn pre_visit_relation(&mut self, relation: &ObjectName) -> ControlFlow<()> {
            if let Ok(name) = plain_name(relation) {
                self.0.push(name);
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            for table in table_commands(&query.body) {
                if let Some(name) = &table.table_name {
                    self.0.push(name.value.to_ascii_lowercase());
                }
            }
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(Vec::new());
    let _ = query.visit(&mut names);
    names.0
}

/// The `TABLE x` commands in a query body, through set operations (a nested query is
/// a query of its own and visited as one).
fn table_commands(body: &sqlparser::ast::SetExpr) -> Vec<&sqlparser::ast::Table> {
    use sqlparser::ast::SetExpr;
    match body {
        SetExpr::Table(table) => vec![&**table],
        SetExpr::SetOperation { left, right, .. } => {
            let mut tables = table_commands(left);
            tables.extend(table_commands(right));
            tables
        }
        _ => Vec::new(),
    }
}

impl PgWalk<'_> {
    fn refuse(&mut self, why: String) -> ControlFlow<()> {
        self.refusal.get_or_insert(why);
        ControlFlow::Break(())
    }

    fn in_scope(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .any(|scope| scope.iter().any(|n| n == name))
    }

    /// A read of the stored table `table` (not of a common table expression).
    fn read_table(&mut self, table: &str) -> ControlFlow<()> {
        if self.grants.may_read(table) {
            ControlFlow::Continue(())
        } else {
            self.refuse(format!(
                "table {table} is not granted to plugin {} for reading",
                self.grants.plugin
            ))
        }
    }

    fn write_table(&mut self, name: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
        self.writes = true;
        let table = match plain_name(name) {
            Ok(table) => table,
            Err(why) => return self.refuse(why),
        };
        if self.grants.may_write(&table) {
            ControlFlow::Continue(())
        } else {
            self.refuse(format!(
                "table {table} is not granted to plugin {} for writing",
                self.grants.plugin
            ))
        }
    }
}

impl sqlparser::ast::Visitor for PgWalk<'_> {
    type Break = ();

    fn pre_visit_statement(&mut self, statement: &sqlparser::ast::Statement) -> ControlFlow<()> {
        use sqlparser::ast::{FromTable, Statement as Ast, TableFactor, TableObject};
        let target = |table: &TableFactor| match table {
            TableFactor::Table {
                name, args: None, ..
            } => Some(name.clone()),
            _ => None,
        };
        match statement {
            Ast::Query(_) => ControlFlow::Continue(()),
            Ast::Insert(insert) => match &insert.table {
                TableObject::TableName(name) => self.write_table(name),
                _ => self.refuse("INSERT into a function is not allowed".into()),
            },
            Ast::Update(update) => match target(&update.table.relation) {
                Some(name) => self.write_table(&name),
                None => self.refuse("UPDATE of this target is not allowed".into()),
            },
            Ast::Delete(delete) => {
                let (FromTable::WithFromKeyword(tables) | FromTable::WithoutKeyword(tables)) =
                    &delete.from;
                for table in tables {
                    match target(&table.relation) {
                        Some(name) => self.write_table(&name)?,
                        None => {
                            return self.refuse("DELETE from this target is not allowed".into());
                        }
                    }
                }
                ControlFlow::Continue(())
            }
            other => {
                let kind = other.to_string();
                let kind = kind
                    .split_whitespace()
                    .next()
                    .unwrap_or("this")
                    .to_uppercase();
                self.refuse(format!("{kind} statements are not allowed in plugin SQL"))
            }
        }
    }

    fn pre_visit_query(&mut self, query: &sqlparser::ast::Query) -> ControlFlow<()> {
        let mut scope = Vec::new();
        if let Some(with) = &query.with {
            let names: Vec<String> = with
                .cte_tables
                .iter()
                .map(|cte| cte.alias.name.value.to_ascii_lowercase())
                .collect();
            for (i, cte) in with.cte_tables.iter().enumerate() {
                // Without RECURSIVE a body sees only the expressions defined before it:
                // its own name (or a later one) in it is the stored table of that name.
                let visible = if with.recursive {
                    &names[..]
                } else {
                    &names[..i]
                };
                for name in relations_in(&cte.query) {
                    if names.contains(&name) && !visible.contains(&name) {
                        self.read_table(&name)?;
                    }
                }
            }
            scope = names;
        }
        self.scopes.push(scope);
        for table in table_commands(&query.body) {
            let Some(name) = &table.table_name else {
                return self.refuse("TABLE without a name is not allowed".into());
            };
            if let Some(schema) = &table.schema_name {
                return self.refuse(format!(
                    "qualified name {schema}.{name} is not allowed in plugin SQL"
                ));
            }
            let name = name.value.to_ascii_lowercase();
            if !self.in_scope(&name) {
                self.read_table(&name)?;
            }
        }
        if matches!(*query.body, sqlparser::ast::SetExpr::Merge(_)) {
            return self.refuse("MERGE statements are not allowed in plugin SQL".into());
        }
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _query: &sqlparser::ast::Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &sqlparser::ast::Select) -> ControlFlow<()> {
        if select.into.is_some() {
            return self
                .refuse("SELECT … INTO creates a table: it is not allowed in plugin SQL".into());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, table: &sqlparser::ast::TableFactor) -> ControlFlow<()> {
        use sqlparser::ast::TableFactor;
        match table {
            TableFactor::Table {
                args: Some(_),
                name,
                ..
            } => self.refuse(format!("table function {name} is not allowed")),
            TableFactor::Table { .. }
            | TableFactor::Derived { .. }
            | TableFactor::NestedJoin { .. } => ControlFlow::Continue(()),
            other => self.refuse(format!("{other} is not allowed in plugin SQL")),
        }
    }

    fn pre_visit_relation(&mut self, relation: &sqlparser::ast::ObjectName) -> ControlFlow<()> {
        let table = match plain_name(relation) {
            Ok(table) => table,
            Err(why) => return self.refuse(why),
        };
        if self.in_scope(&table) {
            ControlFlow::Continue(())
        } else {
            self.read_table(&table)
        }
    }

    fn pre_visit_expr(&mut self, expr: &sqlparser::ast::Expr) -> ControlFlow<()> {
        if let sqlparser::ast::Expr::Function(function) = expr {
            let name = function.name.to_string().to_ascii_lowercase();
            if !FUNCTIONS.contains(&name.as_str()) {
                return self.refuse(format!("function {name} is not allowed in plugin SQL"));
            }
        }
        ControlFlow::Continue(())
    }
}

/// Refuses SQL whose first word is not one of the statements plugins may run.
pub(super) fn first_word(sql: &str) -> Result<(), String> {
    let mut s = sql;
    loop {
        let trimmed = s.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
        if let Some(after) = trimmed.strip_prefix("--") {
            s = after.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            s = after.split_once("*/").map_or("", |(_, r)| r);
        } else {
            s = trimmed;
            break;
        }
    }
    let word: String = s
        .chars()
        .take_while(|c| c.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    if ALLOWED_STATEMENTS.contains(&word.as_str()) {
        Ok(())
    } else if word.is_empty() {
        Err("the SQL holds no statement".to_owned())
    } else {
        Err(format!(
            "{word} statements are not allowed in plugin SQL (only SELECT, INSERT, UPDATE, DELETE and WITH)"
        ))
    }
}

/// The statements plugin SQL may start with.
const ALLOWED_STATEMENTS: &[&str] = &["SELECT", "INSERT", "UPDATE", "DELETE", "WITH"];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::gate::SqlGate;

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
                 CREATE TABLE users_secure (id INTEGER, password TEXT);
                 CREATE TABLE folded_text (tbl TEXT, row_id INTEGER, field TEXT, folded TEXT);
                 CREATE TABLE secrets (x TEXT);
                 CREATE TRIGGER hearth_fold_lists_insert AFTER INSERT ON lists BEGIN
                     INSERT INTO folded_text VALUES ('lists', NEW.id, 'title', LOWER(NEW.title));
                 END;
                 CREATE TRIGGER other_lists_update AFTER UPDATE OF title ON lists BEGIN
                     INSERT INTO secrets VALUES (NEW.name);
                 END;",
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
    fn sqlite_lets_the_hosts_fold_triggers_write_what_the_plugin_may_not() {
        let (gate, path) = sqlite_gate();
        let g = grants();
        assert_eq!(
            gate.check(
                &g,
                "INSERT INTO lists (id, pid, title) VALUES (1, 1, 'x')",
                true
            ),
            Ok(Statement { writes: true }),
            "the trigger's write to folded_text is the host's"
        );
        let refused = |sql: &str| gate.check(&g, sql, true).unwrap_err();
        assert!(
            refused("INSERT INTO folded_text VALUES ('lists', 1, 'title', 'x')")
                .contains("folded_text")
        );
        assert!(refused("SELECT folded FROM folded_text").contains("folded_text"));
        assert!(
            refused("UPDATE lists SET title = 'y'").contains("secrets"),
            "another trigger's writes are the plugin's"
        );
        let reader = Grants::new("reader", ["folded_text".to_owned()], []).unwrap();
        assert!(
            gate.check(
                &reader,
                "SELECT row_id FROM folded_text WHERE folded >= $1",
                false
            )
            .is_ok()
        );
        std::fs::remove_file(path).ok();
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
        assert!(refused("COMMIT").contains("COMMIT statements are not allowed"));
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
    fn postgres_gate_takes_deeply_nested_expressions_up_to_a_bound() {
        let gate = SqlGate::postgres_parser();
        let g = grants();
        let nested = |depth: usize| {
            let mut expr = "LOWER(p.fname)".to_owned();
            for _ in 0..depth {
                expr = format!("REPLACE({expr}, 'é', 'e')");
            }
            format!("SELECT p.id FROM patient_data p WHERE {expr} LIKE $1")
        };
        assert_eq!(
            gate.check(&g, &nested(30), false),
            Ok(Statement { writes: false })
        );
        assert!(
            gate.check(&g, &nested(80), false)
                .unwrap_err()
                .contains("invalid SQL"),
            "the default bound of 50"
        );
        assert!(
            gate.check(&g, &nested(500), false)
                .unwrap_err()
                .contains("invalid SQL")
        );
    }

    #[test]
    fn postgres_gate_checks_relations_statements_and_functions() {
        let gate = SqlGate::postgres_parser();
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
    fn postgres_gate_scopes_common_table_expressions_and_walks_table() {
        let gate = SqlGate::postgres_parser();
        let g = grants();
        let refused = |sql: &str| gate.check(&g, sql, false).unwrap_err();
        let shadowed =
            refused("WITH users_secure AS (SELECT * FROM users_secure) SELECT * FROM users_secure");
        assert!(shadowed.contains("table users_secure"), "{shadowed}");
        assert!(refused("WITH k AS (TABLE signing_keys) SELECT * FROM k").contains("signing_keys"));
        assert!(refused("SELECT * FROM (TABLE api_token) t").contains("api_token"));
        assert!(refused("TABLE lists").contains("TABLE statements are not allowed"));
        assert!(
            refused("SELECT fname FROM patient_data UNION TABLE users_secure")
                .contains("users_secure")
        );
        // Without RECURSIVE a body does not see the expressions after it.
        assert!(
            refused("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a")
                .contains("table b ")
        );
        // An expression is visible only in its own query.
        assert!(
            refused("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) a, x")
                .contains("table x ")
        );
        assert!(refused("SELECT fname INTO stolen FROM patient_data").contains("INTO"));
        assert!(refused("VACUUM").contains("VACUUM statements"));
        assert!(refused("/* x */ (COPY lists TO STDOUT)").contains("COPY"));
        assert!(refused("SELECT * FROM public.lists").contains("qualified"));
        assert!(
            refused("WITH d AS (DELETE FROM lists RETURNING id) SELECT * FROM d").contains("GET")
        );
        for allowed in [
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT COUNT(*) FROM n",
            "WITH a AS (SELECT fname FROM patient_data), b AS (SELECT * FROM a) SELECT * FROM b",
            "WITH lists AS (SELECT fname FROM patient_data) SELECT * FROM lists",
            "SELECT * FROM (TABLE lists) l",
            "(SELECT fname FROM patient_data)",
            "-- why\nSELECT fname FROM patient_data",
        ] {
            assert!(gate.check(&g, allowed, false).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn sqlite_refuses_reads_that_use_no_column_and_other_statements() {
        let (gate, path) = sqlite_gate();
        let g = grants();
        let refused = |sql: &str| gate.check(&g, sql, true).unwrap_err();
        for sql in [
            "SELECT count(*) FROM users_secure",
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM users_secure)",
            "SELECT count(*) FROM patient_data, users_secure",
            "WITH users_secure AS (SELECT 1) SELECT count(*) FROM users_secure",
        ] {
            let error = refused(sql);
            assert!(
                error.contains("table users_secure is not granted"),
                "{sql}: {error}"
            );
        }
        for (sql, table) in [
            ("SELECT count(*) FROM sqlite_master", "sqlite_master"),
            ("SELECT count(*) FROM sqlite_schema", "sqlite_schema"),
            ("SELECT count(*) FROM dbstat", "dbstat"),
        ] {
            let error = refused(sql);
            assert!(error.contains(table), "{sql}: {error}");
        }
        assert!(refused("VACUUM INTO '/tmp/x.db'").contains("VACUUM"));
        assert!(refused("EXPLAIN SELECT * FROM lists").contains("EXPLAIN"));
        assert!(refused("REPLACE INTO lists (id) VALUES (1)").contains("REPLACE"));
        for allowed in [
            "SELECT count(*) FROM patient_data",
            "SELECT 1 WHERE EXISTS (SELECT 1 FROM lists)",
            "WITH c AS (SELECT 1 AS x) SELECT count(*) FROM c",
        ] {
            assert!(gate.check(&g, allowed, false).is_ok(), "{allowed}");
        }
        std::fs::remove_file(path).ok();
    }

    #[test]
    fn a_versioned_table_brings_its_history() {
        let g = Grants::new(
            "x",
            ["users".to_owned()],
            ["lists".to_owned(), "forms".to_owned()],
        )
        .unwrap();
        assert!(g.may_read("users_history") && !g.may_write("users_history"));
        // A writer reads its history, but only the host's triggers write it.
        assert!(g.may_write("lists") && g.may_read("lists_history"));
        assert!(!g.may_write("lists_history"));
        assert!(!g.may_read("forms_history") && !g.may_read("patient_data_history"));
        // Naming a history table among the writes grants no write either.
        let g = Grants::new("x", [], ["lists_history".to_owned()]).unwrap();
        assert!(!g.may_write("lists_history"));
        // The vitals and encounter-diagnosis tables too (migration 0462).
        let g = Grants::new(
            "x",
            ["issue_encounter".to_owned()],
            ["form_vitals".to_owned()],
        )
        .unwrap();
        assert!(g.may_read("form_vitals_history") && !g.may_write("form_vitals_history"));
        assert!(g.may_read("issue_encounter_history") && !g.may_write("issue_encounter_history"));
    }

    #[test]
    fn host_tables_cannot_be_granted() {
        assert!(Grants::new("x", ["api_token".to_owned()], []).is_err());
    }
}
