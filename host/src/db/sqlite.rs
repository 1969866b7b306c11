//! The fast path to an SQLite site: a pool of plain SQLite connections used inline.
//!
//! sqlx's SQLite driver runs each connection on its own thread and hands every statement
//! across a channel; on this kind of machine that costs 40–60 µs per statement in thread
//! wake-ups, more than the statement itself. Plugin SQL and the per-request token check
//! are small indexed statements, so they run here instead: on the calling thread, with
//! prepared statements cached per connection and rows encoded straight into the contract's
//! row format.
//!
//! Writers of one process queue for the write lock on an async semaphore before `BEGIN
//! IMMEDIATE`, so they wait without holding a worker thread and without SQLite's busy
//! handler, which sleeps in steps of milliseconds and left cores idle under load. Only a
//! writer of another process (or the host's sqlx connections) can still make `BEGIN
//! IMMEDIATE` wait; that wait happens in `block_in_place`. A progress handler interrupts
//! any statement that outlives the request's deadline.
//!
//! Checkpoints of the write-ahead log run on a thread of their own (every
//! [`CHECKPOINT_EVERY`] while there are new commits), so no request waits for one or for
//! its `fsync`. Each one also lets the log start over from its beginning (see
//! [`SqliteStore::checkpoint`]); without that, under steady writes the log only ever grew.
//! sqlx still owns migrations and the host's administrative queries.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::values::{EncodedRows, RowForm, RowHeader, RowWriter, SqlValue, StoreError};

/// Connections kept open per site.
const IDLE_LIMIT: usize = 128;
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 256;
/// Row headers cached per site (statement texts are few: plugins use fixed SQL).
const HEADER_CACHE: usize = 4096;
/// How often the checkpoint thread looks for new commits.
pub const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How long a checkpoint may wait for readers to leave the log so that it can start over
/// (this process's writers wait meanwhile). Readers of token and API requests take well
/// under a millisecond; a longer one (a plugin's transaction, another process) makes the
/// checkpoint give up and leave the restart to a later one.
const RESTART_WAIT: Duration = Duration::from_millis(20);
/// Checkpoints that only copy after one that could not start the log over, so that a long
/// reader holds writers back once per [`RESTART_BACKOFF`] + 1 rounds at most.
const RESTART_BACKOFF: u32 = 4;
/// The size the log file is cut back to when it starts over after a burst of writes.
const LOG_SIZE_LIMIT: i64 = 64 << 20;

/// The longest text or blob a statement may make or read (`SQLITE_LIMIT_LENGTH`): without
/// it one recursive query doubling a string grew the server by gigabytes.
pub const MAX_VALUE_BYTES: i32 = 16 << 20;
/// The longest SQL text (`SQLITE_LIMIT_SQL_LENGTH`); plugin statements are short.
pub const MAX_SQL_BYTES: i32 = 1 << 20;
/// How many virtual-machine steps pass between two looks at the deadline and the heap: a
/// step makes at most one value of [`MAX_VALUE_BYTES`], so a statement overshoots the heap
/// limit by at most this many of them.
const PROGRESS_STEPS: i32 = 10;
/// How many calls of the progress handler pass between two reads of the clock: the heap is
/// looked at on every call (every [`PROGRESS_STEPS`], the bound above), the deadline only on
/// every sixteenth: at most 160 steps late (microseconds for ordinary steps). Read on every call, the
/// clock took 8.5 % of the CPU of the Bulk Data export benchmark (docs/benchmarks.md).
const CLOCK_EVERY: u32 = 16;
/// The default bound on SQLite's heap in this process (see [`set_heap_limit`]).
pub const DEFAULT_HEAP_MIB: usize = 512;

static HEAP_LIMIT: AtomicI64 = AtomicI64::new((DEFAULT_HEAP_MIB as i64) << 20);

/// Bounds the heap SQLite may use in this process (`sqlite_heap_mib` in `hearth.toml`):
/// while it is above the bound, every running request statement is stopped and its
/// request answered 503 naming the limit. SQLite counts its heap for the whole process
/// (page caches of every connection included), so the bound is a guard for the host,
/// not a quota per request.
pub fn set_heap_limit(mib: usize) {
    HEAP_LIMIT.store((mib as i64) << 20, Ordering::Relaxed);
}

/// The bound set by [`set_heap_limit`], in MiB.
pub fn heap_limit_mib() -> usize {
    (HEAP_LIMIT.load(Ordering::Relaxed) >> 20) as usize
}

/// Why a statement was stopped by the progress handler.
const STOPPED_DEADLINE: u8 = 1;
const STOPPED_HEAP: u8 = 2;

/// A pool of connections to one SQLite file.
pub struct SqliteStore {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Idle connections opened with `PRAGMA query_only` on, for plugins' GET requests. The
    /// pragma is set once per connection, never toggled: setting it expires every prepared
    /// statement of the connection, so toggling it per request made each statement compile
    /// again (docs/benchmarks.md).
    idle_query_only: Mutex<Vec<Connection>>,
    /// The connection this process's write transactions run on (whoever holds `writer`).
    /// SQLite drops a connection's page cache whenever another connection has committed,
    /// so a writer on a pooled connection re-read every page it touched; on one connection
    /// that did the last commits itself, they are still cached.
    write_connection: Mutex<Option<Connection>>,
    /// Column names and JSON keys per statement text (the schema does not change while
    /// the server runs: migrations run before it serves).
    headers: RwLock<HashMap<Box<str>, Arc<RowHeader>>>,
    /// One permit: the right to hold this process's write transaction.
    writer: Arc<Semaphore>,
    /// Write transactions committed, for the checkpoint thread.
    commits: AtomicU64,
}

impl SqliteStore {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A pool for the database at `path` (which must exist and be migrated).
    pub fn new(path: impl Into<PathBuf>) -> Arc<SqliteStore> {
        let store = Arc::new(SqliteStore {
            path: path.into(),
            idle: Mutex::new(Vec::new()),
            idle_query_only: Mutex::new(Vec::new()),
            write_connection: Mutex::new(None),
            headers: RwLock::new(HashMap::new()),
            writer: Arc::new(Semaphore::new(1)),
            commits: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&store);
        let path = store.path.clone();
        let spawned = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoints(weak, &path));
        if let Err(error) = spawned {
            // Without the thread the log still gets checkpointed when the last connection
            // closes; say so rather than fail to open the site.
            tracing::warn!("no checkpoint thread for {}: {error}", store.path.display());
        }
        store
    }

    /// The row header of `statement`, built on its first run.
    fn header(
        &self,
        sql: &str,
        statement: &rusqlite::CachedStatement<'_>,
    ) -> Result<Arc<RowHeader>, StoreError> {
        if let Some(header) = self.headers.read().get(sql) {
            return Ok(header.clone());
        }
        let names = (0..statement.column_count())
            .map(|i| statement.column_name(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(failed)?;
        let header = Arc::new(RowHeader::new(names.into_iter()));
        let mut headers = self.headers.write();
        if headers.len() >= HEADER_CACHE {
            headers.clear();
        }
        headers.insert(sql.into(), header.clone());
        Ok(header)
    }

    fn open(&self) -> Result<Connection, StoreError> {
        super::heap::install();
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(failed)?;
        // No `mmap_size`: every commit of another connection makes SQLite drop a
        // connection's mapping with its page cache, and under token load the `munmap`s,
        // their TLB shoot-downs and the page faults after them cost more CPU per request
        // than the `pread`s they saved (docs/benchmarks.md).
        connection
            .execute_batch(
                "PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;",
            )
            .map_err(failed)?;
        connection
            .pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)
            .map_err(failed)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        // The query planner stability guarantee: a statement's plan does not depend on
        // the values bound. Without it SQLite 3.51 reads a bound `LIMIT` as a constant
        // and compiles the statement again every time it is bound anew (a tenth of a
        // Bulk Data export's CPU, docs/benchmarks.md); the same rule as PostgreSQL's
        // generic plans for plugin SQL (`db::roles`).
        connection
            .set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
                true,
            )
            .map_err(failed)?;
        // SAFETY: the handle is valid while `connection` lives; sqlite3_limit only sets a
        // number on it.
        unsafe {
            let handle = connection.handle();
            libsqlite3_sys::sqlite3_limit(
                handle,
                libsqlite3_sys::SQLITE_LIMIT_LENGTH,
                MAX_VALUE_BYTES,
            );
            libsqlite3_sys::sqlite3_limit(
                handle,
                libsqlite3_sys::SQLITE_LIMIT_SQL_LENGTH,
                MAX_SQL_BYTES,
            );
        }
        Ok(connection)
    }

    /// A connection from the pool (opened when none is idle).
    pub fn acquire(self: &Arc<Self>) -> Result<Pooled, StoreError> {
        self.take(Slot::Shared)
    }

    /// An idle connection of `slot`'s kind (the write connection only for the holder of
    /// the write permit); opened when there is none.
    fn take(self: &Arc<Self>, slot: Slot) -> Result<Pooled, StoreError> {
        let kept = match slot {
            Slot::Shared => self.idle.lock().pop(),
            Slot::QueryOnly => self.idle_query_only.lock().pop(),
            Slot::Write => self.write_connection.lock().take(),
        };
        let connection = match kept {
            Some(connection) => connection,
            None => {
                let connection = self.open()?;
                if slot == Slot::QueryOnly {
                    connection
                        .execute_batch("PRAGMA query_only = 1")
                        .map_err(failed)?;
                }
                connection
            }
        };
        Ok(Pooled {
            connection: Some(connection),
            store: self.clone(),
            slot,
        })
    }

    /// Runs one statement in autocommit mode and answers its rows as values (the host's
    /// own small reads; plugins always run inside a transaction).
    pub fn read(
        self: &Arc<Self>,
        sql: &str,
        params: &[SqlValue],
    ) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        let connection = self.acquire()?;
        let handle = connection.get();
        handle
            .busy_timeout(Duration::from_secs(10))
            .map_err(failed)?;
        let mut statement = handle.prepare_cached(sql).map_err(classify)?;
        bind(&mut statement, params)?;
        let width = statement.column_count();
        let mut out = Vec::new();
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next().map_err(classify)? {
            let values = (0..width)
                .map(|i| {
                    Ok(match row.get_ref(i).map_err(failed)? {
                        ValueRef::Null => SqlValue::Null,
                        ValueRef::Integer(v) => SqlValue::Integer(v),
                        ValueRef::Real(v) => SqlValue::Real(v),
                        ValueRef::Text(bytes) => {
                            SqlValue::Text(String::from_utf8_lossy(bytes).into_owned())
                        }
                        ValueRef::Blob(bytes) => SqlValue::Blob(bytes.to_vec()),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            out.push(values);
        }
        Ok(out)
    }

    /// Checkpoints the log on `connection` (the checkpoint thread's own) in two steps.
    /// First `PASSIVE`: copies the committed pages into the database file without waiting
    /// for anyone. Then, with `restart`, holding this process's write permit (so no writer
    /// of this process adds to the log meanwhile), `RESTART`: copies what was committed in
    /// between and waits up to [`RESTART_WAIT`] for readers still on the log, so that the
    /// next writer starts the log over from its beginning.
    ///
    /// `PASSIVE` alone never lets the log start over while writes keep coming: by the time
    /// it has copied everything, newer commits are in the log, so no writer ever finds it
    /// fully copied. Under steady load the file then grew by every commit's pages (about a
    /// gigabyte in twelve seconds of token requests), each write to a new block of the
    /// file costing the kernel a page to zero.
    pub async fn checkpoint(
        &self,
        connection: &Connection,
        restart: bool,
    ) -> Result<Checkpointed, StoreError> {
        connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(failed)?;
        if !restart {
            return Ok(Checkpointed::Copied);
        }
        let _permit = self
            .writer
            .acquire()
            .await
            .map_err(|_| StoreError::Failed("the site is closing".into()))?;
        connection.busy_timeout(RESTART_WAIT).map_err(failed)?;
        let busy: i64 = connection
            .query_row("PRAGMA wal_checkpoint(RESTART)", [], |row| row.get(0))
            .map_err(failed)?;
        Ok(if busy == 0 {
            Checkpointed::Restarted
        } else {
            Checkpointed::Copied
        })
    }

    /// Begins a transaction; writers take the write lock at once, after this process's
    /// earlier writers (see the module documentation).
    pub async fn begin(
        self: &Arc<Self>,
        write: bool,
        deadline: Instant,
    ) -> Result<SqliteTx, StoreError> {
        let slot = if write { Slot::Write } else { Slot::Shared };
        self.begin_on(slot, deadline).await
    }

    /// Begins a read transaction on a connection that refuses writes (`PRAGMA
    /// query_only`), for a plugin's GET request.
    pub async fn begin_query_only(
        self: &Arc<Self>,
        deadline: Instant,
    ) -> Result<SqliteTx, StoreError> {
        self.begin_on(Slot::QueryOnly, deadline).await
    }

    async fn begin_on(
        self: &Arc<Self>,
        slot: Slot,
        deadline: Instant,
    ) -> Result<SqliteTx, StoreError> {
        let write = slot == Slot::Write;
        let permit = if write {
            let queued = self.writer.clone().acquire_owned();
            match tokio::time::timeout_at(deadline.into(), queued).await {
                Ok(Ok(permit)) => Some(permit),
                Ok(Err(_)) => return Err(StoreError::Failed("the site is closing".into())),
                Err(_) => {
                    return Err(StoreError::Failed(
                        "the request's deadline passed while waiting for the write lock".into(),
                    ));
                }
            }
        } else {
            None
        };
        let connection = self.take(slot)?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        let handle = connection.get();
        let stopped = Arc::new(AtomicU8::new(0));
        let why = stopped.clone();
        let mut calls: u32 = 0;
        handle
            .progress_handler(
                PROGRESS_STEPS,
                Some(move || {
                    calls = calls.wrapping_add(1);
                    if calls.is_multiple_of(CLOCK_EVERY) && Instant::now() >= deadline {
                        why.store(STOPPED_DEADLINE, Ordering::Relaxed);
                        true
                    } else if super::heap::used() > HEAP_LIMIT.load(Ordering::Relaxed) {
                        why.store(STOPPED_HEAP, Ordering::Relaxed);
                        true
                    } else {
                        false
                    }
                }),
            )
            .map_err(failed)?;
        if write {
            // Another process may hold the lock; only then does this wait block.
            handle.busy_timeout(Duration::ZERO).map_err(failed)?;
            if let Err(error) = run_cached(handle, "BEGIN IMMEDIATE") {
                if !is_busy(&error) {
                    return Err(classify(error));
                }
                handle.busy_timeout(remaining).map_err(failed)?;
                tokio::task::block_in_place(|| run_cached(handle, "BEGIN IMMEDIATE"))
                    .map_err(classify)?;
            }
            handle.busy_timeout(remaining).map_err(failed)?;
        } else {
            handle.busy_timeout(remaining).map_err(failed)?;
            run_cached(handle, "BEGIN").map_err(classify)?;
        }
        Ok(SqliteTx {
            connection,
            open: true,
            permit,
            stopped,
        })
    }
}

/// The checkpoint thread of one store: while the store lives, checkpoints the log (see
/// [`SqliteStore::checkpoint`]) whenever there were commits since its last look.
fn checkpoints(store: Weak<SqliteStore>, path: &Path) {
    // The write permit is a tokio semaphore; this thread waits for it on a runtime of its
    // own (no I/O, no timers: only the permit's wake-up).
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::warn!("no checkpoints for {}: {error}", path.display());
            return;
        }
    };
    let mut seen = 0;
    let mut backoff = 0;
    let mut connection: Option<Connection> = None;
    loop {
        std::thread::sleep(CHECKPOINT_EVERY);
        let Some(live) = store.upgrade() else {
            return;
        };
        let commits = live.commits.load(Ordering::Relaxed);
        if commits == seen {
            continue;
        }
        seen = commits;
        if connection.is_none() {
            // READ_WRITE without CREATE: a site whose file is gone is not recreated.
            match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE) {
                Ok(opened) => connection = Some(opened),
                Err(error) => {
                    tracing::debug!("checkpoint of {}: {error}", path.display());
                    continue;
                }
            }
        }
        let Some(open) = &connection else {
            continue;
        };
        let restart = backoff == 0;
        match runtime.block_on(live.checkpoint(open, restart)) {
            Ok(Checkpointed::Restarted) => {}
            Ok(Checkpointed::Copied) if restart => backoff = RESTART_BACKOFF,
            Ok(Checkpointed::Copied) => backoff -= 1,
            Err(error) => {
                tracing::debug!("checkpoint of {}: {error}", path.display());
                connection = None;
            }
        }
    }
}

/// How a checkpoint went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpointed {
    /// Every committed page is in the database file and the next writer starts the log
    /// over from its beginning.
    Restarted,
    /// The pages are copied, but the log was not started over: not asked to, or a reader
    /// (or another process's writer) still used the log when the wait ran out. It keeps
    /// growing until a later checkpoint starts it over.
    Copied,
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// Which of the store's connections a [`Pooled`] is, and where it goes back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// One of the idle connections.
    Shared,
    /// One of the idle connections with `PRAGMA query_only` on.
    QueryOnly,
    /// The store's write connection.
    Write,
}

/// A connection borrowed from a pool; it goes back when dropped.
pub struct Pooled {
    connection: Option<Connection>,
    store: Arc<SqliteStore>,
    slot: Slot,
}

impl Pooled {
    /// The connection.
    pub fn get(&self) -> &Connection {
        self.connection.as_ref().expect("present until drop")
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            // A connection left inside a transaction (a failed rollback) is not reused.
            if connection.is_autocommit() {
                let _ = connection.progress_handler(0, None::<fn() -> bool>);
                let mut idle = match self.slot {
                    Slot::Write => {
                        *self.store.write_connection.lock() = Some(connection);
                        return;
                    }
                    Slot::Shared => self.store.idle.lock(),
                    Slot::QueryOnly => self.store.idle_query_only.lock(),
                };
                if idle.len() < IDLE_LIMIT {
                    idle.push(connection);
                }
            }
        }
    }
}

/// A request's transaction on an SQLite site.
pub struct SqliteTx {
    connection: Pooled,
    open: bool,
    /// This process's write permit, for a write transaction; released after the commit or
    /// rollback (fields drop after `Drop::drop`).
    permit: Option<OwnedSemaphorePermit>,
    /// Why the progress handler stopped a statement, if it did.
    stopped: Arc<AtomicU8>,
}

impl SqliteTx {
    /// Sorts an error, naming the limit when the progress handler stopped the statement.
    fn error(&self, error: rusqlite::Error) -> StoreError {
        match self.stopped.load(Ordering::Relaxed) {
            STOPPED_HEAP => StoreError::Limit(format!(
                "the server's SQLite heap reached its limit of {} MiB (sqlite_heap_mib)",
                heap_limit_mib()
            )),
            STOPPED_DEADLINE => StoreError::deadline(),
            _ => classify(error),
        }
    }

    /// Runs a statement and encodes its rows' values.
    pub fn query(&mut self, sql: &str, params: &[SqlValue]) -> Result<EncodedRows, StoreError> {
        self.query_as(sql, params, RowForm::Values)
    }

    /// Runs a statement and encodes its rows in `form`. Text is read where SQLite keeps
    /// it (borrowed, checked as UTF-8 once) and column names come from the statement's
    /// cached header: nothing is allocated per value.
    pub fn query_as(
        &mut self,
        sql: &str,
        params: &[SqlValue],
        form: RowForm,
    ) -> Result<EncodedRows, StoreError> {
        let connection = self.connection.get();
        let mut statement = connection.prepare_cached(sql).map_err(|e| self.error(e))?;
        bind(&mut statement, params)?;
        let width = statement.column_count();
        let header = self.connection.store.header(sql, &statement)?;
        let mut out = RowWriter::with_header(header, form);
        let mut rows = statement.raw_query();
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            out.begin_row();
            for i in 0..width {
                match row.get_ref(i).map_err(failed)? {
                    ValueRef::Null => out.null(),
                    ValueRef::Integer(v) => out.integer(v),
                    ValueRef::Real(v) => out.real(v),
                    ValueRef::Text(bytes) => {
                        // The contract promises plugins valid UTF-8 text.
                        let text = std::str::from_utf8(bytes).map_err(|_| {
                            StoreError::Failed(format!("column {i} holds text that is not UTF-8"))
                        })?;
                        out.text(text)
                    }
                    ValueRef::Blob(bytes) => out.blob(bytes),
                }
            }
            out.end_row()?;
        }
        Ok(out.finish())
    }

    /// Runs a statement and answers how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[SqlValue]) -> Result<u64, StoreError> {
        let connection = self.connection.get();
        let mut statement = connection.prepare_cached(sql).map_err(|e| self.error(e))?;
        bind(&mut statement, params)?;
        statement
            .raw_execute()
            .map(|n| n as u64)
            .map_err(|e| self.error(e))
    }

    /// The connection, for host code that reads rows itself (the native baseline).
    pub fn connection(&self) -> &Connection {
        self.connection.get()
    }

    /// Commits.
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.open = false;
        run_cached(self.connection.get(), "COMMIT").map_err(classify)?;
        if self.permit.is_some() {
            self.connection
                .store
                .commits
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Rolls back.
    pub fn rollback(mut self) -> Result<(), StoreError> {
        self.open = false;
        run_cached(self.connection.get(), "ROLLBACK").map_err(classify)
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            let _ = run_cached(self.connection.get(), "ROLLBACK");
        }
    }
}

/// Runs a transaction statement (`BEGIN`, `COMMIT`, `ROLLBACK`) from the connection's
/// statement cache: compiled once per connection instead of parsed on every transaction.
fn run_cached(connection: &Connection, sql: &str) -> rusqlite::Result<()> {
    connection.prepare_cached(sql)?.execute([]).map(drop)
}

/// Binds `params` by placeholder number: `$n` (and `?n`) take `params[n - 1]` wherever it
/// appears in the statement, as on PostgreSQL. SQLite numbers named parameters in order of
/// first appearance, so binding by position would swap values for `SET a = $2 WHERE id = $1`.
fn bind(
    statement: &mut rusqlite::CachedStatement<'_>,
    params: &[SqlValue],
) -> Result<(), StoreError> {
    let mut highest = 0;
    for index in 1..=statement.parameter_count() {
        let number = match statement.parameter_name(index) {
            None => index,
            Some(name) => name
                .strip_prefix('$')
                .or_else(|| name.strip_prefix('?'))
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "parameter {name}: use numbered placeholders $1, $2, …"
                    ))
                })?,
        };
        highest = highest.max(number);
        let Some(value) = params.get(number - 1) else {
            continue;
        };
        let bound = match value {
            SqlValue::Null => statement.raw_bind_parameter(index, rusqlite::types::Null),
            SqlValue::Integer(v) => statement.raw_bind_parameter(index, v),
            SqlValue::Real(v) => statement.raw_bind_parameter(index, v),
            SqlValue::Text(v) => statement.raw_bind_parameter(index, v.as_str()),
            SqlValue::Blob(v) => statement.raw_bind_parameter(index, v.as_slice()),
        };
        bound.map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    if highest != params.len() {
        return Err(StoreError::Invalid(format!(
            "the statement has {highest} parameters but {} values were given",
            params.len()
        )));
    }
    Ok(())
}

fn failed(error: rusqlite::Error) -> StoreError {
    StoreError::Failed(error.to_string())
}

/// Sorts an SQLite error into what the plugin can act on.
fn classify(error: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(e, message) => {
            let text = message.clone().unwrap_or_else(|| e.to_string());
            match e.code {
                ErrorCode::ConstraintViolation => StoreError::Constraint(text),
                ErrorCode::OperationInterrupted => StoreError::deadline(),
                ErrorCode::Unknown => StoreError::Invalid(text),
                _ => StoreError::Failed(text),
            }
        }
        rusqlite::Error::SqlInputError { msg, .. } => StoreError::Invalid(msg.clone()),
        other => StoreError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (Arc<SqliteStore>, PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "hearth-fast-{}-{}.db",
            std::process::id(),
            rand::random::<u32>()
        ));
        let connection = Connection::open(&path).unwrap();
        connection
            .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL);")
            .unwrap();
        (SqliteStore::new(&path), path)
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn rows_are_encoded_and_writes_commit_or_roll_back() {
        let (store, path) = store();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut tx = store.begin(true, deadline).await.unwrap();
        assert_eq!(
            tx.execute(
                "INSERT INTO t (name, score) VALUES ($1, $2)",
                &[SqlValue::Text("a".into()), SqlValue::Real(1.5)]
            )
            .unwrap(),
            1
        );
        tx.commit().unwrap();
        let mut tx = store.begin(true, deadline).await.unwrap();
        tx.execute(
            "INSERT INTO t (name) VALUES ($1)",
            &[SqlValue::Text("b".into())],
        )
        .unwrap();
        let error = tx
            .execute(
                "INSERT INTO t (name) VALUES ($1)",
                &[SqlValue::Text("a".into())],
            )
            .unwrap_err();
        assert!(matches!(error, StoreError::Constraint(_)), "{error:?}");
        tx.rollback().unwrap();
        let mut tx = store.begin(false, deadline).await.unwrap();
        let rows = tx
            .query("SELECT id, name, score FROM t ORDER BY id", &[])
            .unwrap();
        assert_eq!(rows.count, 1, "the rolled back row is gone");
        assert_eq!(rows.columns, 3);
        assert_eq!(&rows.data[..6], &[2, 0, 0, 0, b'i', b'd']);
        let error = tx.query("SELECT nope FROM t", &[]).unwrap_err();
        assert!(matches!(error, StoreError::Invalid(_)), "{error:?}");
        drop(tx);
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn query_only_transactions_refuse_writes_and_keep_their_compiled_statements() {
        let (store, path) = store();
        let deadline = Instant::now() + Duration::from_secs(5);
        let select = "SELECT id, name FROM t WHERE id = $1";
        for round in 0..3 {
            let mut tx = store.begin_query_only(deadline).await.unwrap();
            tx.query(select, &[SqlValue::Integer(round)]).unwrap();
            let error = tx
                .execute("INSERT INTO t (name) VALUES ('x')", &[])
                .unwrap_err();
            assert!(format!("{error:?}").contains("readonly"), "{error:?}");
            // The statement compiled in the first round is still valid: nothing expired
            // the connection's statements between transactions.
            let statement = tx.connection().prepare_cached(select).unwrap();
            assert_eq!(
                statement.get_status(rusqlite::StatementStatus::RePrepare),
                0,
                "round {round}"
            );
            drop(statement);
            tx.rollback().unwrap();
        }
        // The shared connections are not query-only.
        let mut tx = store.begin(true, deadline).await.unwrap();
        tx.execute("INSERT INTO t (name) VALUES ('y')", &[])
            .unwrap();
        tx.commit().unwrap();
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_bound_limit_runs_the_compiled_statement_again() {
        let (store, path) = store();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut tx = store.begin(true, deadline).await.unwrap();
        for name in ["a", "b", "c", "d"] {
            tx.execute(
                "INSERT INTO t (name) VALUES ($1)",
                &[SqlValue::Text(name.into())],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        // SQLite 3.51 reads a bound LIMIT as a constant while planning and compiles the
        // statement again whenever it is bound anew, unless the connection has the query
        // planner stability guarantee on: every page of a plugin's search prepared its
        // statement twice (a Provenance window: 2 ms).
        let select = "SELECT id FROM t WHERE id > $1 ORDER BY id LIMIT $2";
        let mut tx = store.begin_query_only(deadline).await.unwrap();
        for limit in 1..=3 {
            let rows = tx
                .query(select, &[SqlValue::Integer(0), SqlValue::Integer(limit)])
                .unwrap();
            assert_eq!(i64::from(rows.count), limit);
        }
        let statement = tx.connection().prepare_cached(select).unwrap();
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0
        );
        drop(statement);
        tx.rollback().unwrap();
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn placeholders_bind_by_number_not_by_position() {
        let (store, path) = store();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut tx = store.begin(true, deadline).await.unwrap();
        tx.execute(
            "INSERT INTO t (id, name) VALUES ($1, $2)",
            &[SqlValue::Integer(7), SqlValue::Text("a".into())],
        )
        .unwrap();
        // $2 comes first in the text; it must still take the second value.
        let changed = tx
            .execute(
                "UPDATE t SET name = $2, score = $3 WHERE id = $1 AND name <> $2",
                &[
                    SqlValue::Integer(7),
                    SqlValue::Text("b".into()),
                    SqlValue::Real(2.5),
                ],
            )
            .unwrap();
        assert_eq!(changed, 1);
        let rows = tx
            .query("SELECT name FROM t WHERE id = $1", &[SqlValue::Integer(7)])
            .unwrap();
        assert_eq!(rows.values()[0], vec![SqlValue::Text("b".into())]);
        let error = tx
            .query("SELECT name FROM t WHERE id = $2", &[SqlValue::Integer(7)])
            .unwrap_err();
        assert!(format!("{error:?}").contains("2 parameters"), "{error:?}");
        let error = tx
            .query("SELECT name FROM t WHERE id = :id", &[SqlValue::Integer(7)])
            .unwrap_err();
        assert!(
            format!("{error:?}").contains("numbered placeholders"),
            "{error:?}"
        );
        drop(tx);
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn statements_past_the_deadline_are_interrupted() {
        let (store, path) = store();
        let mut tx = store
            .begin(false, Instant::now() + Duration::from_millis(50))
            .await
            .unwrap();
        let started = Instant::now();
        let error = tx
            .query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT COUNT(*) FROM n",
                &[],
            )
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(format!("{error:?}").contains("deadline"), "{error:?}");
        drop(tx);
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writers_of_one_process_queue_for_the_lock_and_keep_their_deadline() {
        let (store, path) = store();
        let deadline = Instant::now() + Duration::from_secs(10);
        let writers = (0..32).map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut tx = store.begin(true, deadline).await?;
                tx.execute(
                    "INSERT INTO t (name) VALUES ($1)",
                    &[SqlValue::Text(format!("w{i}"))],
                )?;
                tokio::task::yield_now().await;
                tx.commit()
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.unwrap().unwrap();
        }
        let mut tx = store.begin(false, deadline).await.unwrap();
        let rows = tx.query("SELECT COUNT(*) FROM t", &[]).unwrap();
        assert_eq!(rows.values()[0], vec![SqlValue::Integer(32)]);
        drop(tx);

        // While one writer holds the lock, another waits only until its own deadline,
        // and gets the lock as soon as the first one is done.
        let held = store.begin(true, deadline).await.unwrap();
        let error = store
            .begin(true, Instant::now() + Duration::from_millis(100))
            .await
            .err()
            .expect("the lock is held");
        assert!(
            format!("{error}").contains("waiting for the write lock"),
            "{error}"
        );
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.begin(true, deadline).await.map(|tx| tx.rollback()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        held.rollback().unwrap();
        waiting.await.unwrap().unwrap().unwrap();
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn committed_pages_reach_the_database_file_without_a_request_checkpointing() {
        let (store, path) = store();
        let before = std::fs::metadata(&path).unwrap().len();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tx = store.begin(true, deadline).await.unwrap();
        for i in 0..2000 {
            tx.execute(
                "INSERT INTO t (name) VALUES ($1)",
                &[SqlValue::Text(format!("row {i:>200}"))],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        // The store's connections never checkpoint (wal_autocheckpoint = 0); the pages
        // are in the log until the checkpoint thread copies them.
        let wal = path.with_extension("db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 400_000);
        let waited = Instant::now();
        while std::fs::metadata(&path).unwrap().len() <= before + 400_000 {
            assert!(
                waited.elapsed() < Duration::from_secs(20),
                "the checkpoint thread did not copy the log into the database"
            );
            tokio::time::sleep(CHECKPOINT_EVERY).await;
        }
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_over_after_a_checkpoint_while_writes_keep_coming() {
        use std::sync::atomic::AtomicBool;
        let (store, path) = store();
        let wal = path.with_extension("db-wal");
        let wal_size = || std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        let stop = Arc::new(AtomicBool::new(false));
        let commits = Arc::new(AtomicU64::new(0));
        // One writer commits without pause, as under steady load; a reader of another
        // connection keeps reading.
        let writer = tokio::spawn({
            let (store, stop, commits) = (store.clone(), stop.clone(), commits.clone());
            async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut tx = store.begin(true, deadline).await.unwrap();
                    tx.execute(
                        "INSERT INTO t (name) VALUES ($1)",
                        &[SqlValue::Text(format!("{i:>3000}"))],
                    )
                    .unwrap();
                    tx.commit().unwrap();
                    commits.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    tokio::task::yield_now().await;
                }
            }
        });
        let reader = std::thread::spawn({
            let (path, stop) = (path.clone(), stop.clone());
            move || {
                let connection = Connection::open(&path).unwrap();
                connection.busy_timeout(Duration::from_secs(5)).unwrap();
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _: i64 = connection
                        .query_row("SELECT COUNT(*) FROM t WHERE id > 100", [], |row| {
                            row.get(0)
                        })
                        .unwrap();
                    reads += 1;
                }
                reads
            }
        });
        let started = Instant::now();
        let grow_to = |bytes: u64| {
            while wal_size() < bytes {
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "the writer stalled"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        // The log header's checkpoint sequence number counts the times it started over.
        let restarts = || {
            let header = std::fs::read(&wal).unwrap();
            u32::from_be_bytes(header[12..16].try_into().unwrap())
        };
        grow_to(8 << 20);
        let restarts_before = restarts();
        let connection = Connection::open(&path).unwrap();
        // A checkpoint gives up its wait (and says so) while another one holds the log,
        // e.g. the store's own thread in the middle of an `fsync` on a busy machine.
        while store.checkpoint(&connection, true).await.unwrap() != Checkpointed::Restarted {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "no checkpoint could start the log over"
            );
        }
        let before = wal_size();
        // The writer goes on; its next frames (a few megabytes) overwrite the log from the
        // start instead of extending the file.
        let after_checkpoint = commits.load(Ordering::Relaxed);
        while commits.load(Ordering::Relaxed) < after_checkpoint + 200 {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the writer stalled"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        let after = wal_size();
        let restarts_after = restarts();
        stop.store(true, Ordering::Relaxed);
        writer.await.unwrap();
        assert!(reader.join().unwrap() > 0);
        assert!(
            restarts_after > restarts_before,
            "the log did not start over ({restarts_before} → {restarts_after})"
        );
        assert!(
            after <= before,
            "the log grew from {before} to {after} bytes after the checkpoint"
        );
        // Every row is still there.
        let rows = store.read("SELECT COUNT(*) FROM t", &[]).unwrap();
        assert_eq!(
            rows[0][0],
            SqlValue::Integer(commits.load(Ordering::Relaxed) as i64)
        );
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn write_transactions_share_one_connection_and_its_cache() {
        let (store, path) = store();
        let deadline = Instant::now() + Duration::from_secs(5);
        // SAFETY: the raw handle is only compared, never used.
        let handle = |tx: &SqliteTx| unsafe { tx.connection().handle() } as usize;
        let mut first = store.begin(true, deadline).await.unwrap();
        first
            .execute("INSERT INTO t (name) VALUES ('a')", &[])
            .unwrap();
        let writer = handle(&first);
        first.commit().unwrap();
        // A reader meanwhile gets a pooled connection, not the writer's.
        let reader = store.begin(false, deadline).await.unwrap();
        assert_ne!(handle(&reader), writer);
        let second = store.begin(true, deadline).await.unwrap();
        assert_eq!(handle(&second), writer);
        drop(second);
        drop(reader);
        // A failed write leaves the connection usable for the next writer.
        let mut failing = store.begin(true, deadline).await.unwrap();
        failing
            .execute("INSERT INTO t (name) VALUES ('a')", &[])
            .unwrap_err();
        drop(failing);
        let mut third = store.begin(true, deadline).await.unwrap();
        assert_eq!(handle(&third), writer);
        third
            .execute("INSERT INTO t (name) VALUES ('b')", &[])
            .unwrap();
        third.commit().unwrap();
        let rows = store.read("SELECT COUNT(*) FROM t", &[]).unwrap();
        assert_eq!(rows[0][0], SqlValue::Integer(2));
        std::fs::remove_file(path).ok();
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_long_reader_makes_the_checkpoint_give_up_the_restart_not_wait_for_it() {
        let (store, path) = store();
        let deadline = Instant::now() + Duration::from_secs(30);
        let write = async |name: &str| {
            let mut tx = store.begin(true, deadline).await.unwrap();
            tx.execute(
                "INSERT INTO t (name) VALUES ($1)",
                &[SqlValue::Text(name.into())],
            )
            .unwrap();
            tx.commit().unwrap();
        };
        write("before").await;
        // A reader holds its snapshot (a plugin's transaction, say) while writes go on.
        let mut reader = store.begin(false, deadline).await.unwrap();
        reader.query("SELECT COUNT(*) FROM t", &[]).unwrap();
        write("after").await;
        let connection = Connection::open(&path).unwrap();
        assert_eq!(
            store.checkpoint(&connection, true).await.unwrap(),
            Checkpointed::Copied
        );
        // The writers were let go: this one needs the permit the checkpoint held.
        write("later").await;
        drop(reader);
        let started = Instant::now();
        while store.checkpoint(&connection, true).await.unwrap() != Checkpointed::Restarted {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no checkpoint started the log over after the reader left"
            );
        }
        let rows = store.read("SELECT COUNT(*) FROM t", &[]).unwrap();
        assert_eq!(rows[0][0], SqlValue::Integer(3));
        std::fs::remove_file(path).ok();
    }
}
