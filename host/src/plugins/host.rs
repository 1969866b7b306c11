//! What a plugin instance can call: the contract's imports, scoped to one request.
//!
//! A fresh [`State`] is made per request. It carries the site, the plugin's grants and
//! configuration, and the request's transaction, which is begun on the first statement.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::StoreLimits;

use super::bindings::{config, log, store, types, util};
use crate::db::grants::Grants;
use crate::db::store::{SqlValue, StoreError, Tx};
use crate::sites::Site;

/// Per-request state of a plugin instance.
pub struct State {
    /// Memory and instance limits, checked by wasmtime.
    pub limits: StoreLimits,
    /// The site the request is for (none while the plugin describes itself).
    pub site: Option<Arc<Site>>,
    /// The plugin's name, for logs.
    pub plugin: Arc<str>,
    /// What the plugin may touch.
    pub grants: Option<Arc<Grants>>,
    /// The plugin's configuration on this site.
    pub config: Arc<HashMap<String, String>>,
    /// Keys the plugin declared.
    pub config_keys: Arc<[String]>,
    /// False for GET requests: no writes allowed.
    pub may_write: bool,
    /// When the request must be answered by.
    pub deadline: Instant,
    /// The request's transaction, once a statement ran.
    pub tx: Option<Tx>,
    /// A statement failed inside the transaction (PostgreSQL then refuses the rest).
    pub poisoned: bool,
    /// Statements run, for logs and the audit.
    pub statements: u32,
    /// What the plugin wrote to stdout and stderr (a panic message, say).
    pub console: Vec<u8>,
    /// Bytes the plugin has logged through the `log` interface in this request.
    pub logged: usize,
    /// The request's correlation id (`x-request-id`); empty while describing.
    pub request_id: String,
}

/// The error a host call raises when the request ran out of time inside it.
#[derive(Debug)]
pub struct DeadlineExceeded;

impl std::fmt::Display for DeadlineExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's deadline passed")
    }
}

impl std::error::Error for DeadlineExceeded {}

/// The error a host call raises when the site's database could not be reached: the call
/// ends and the request is answered 503 with `Retry-After`, whatever the plugin would
/// have made of a failed statement.
#[derive(Debug)]
pub struct DatabaseUnavailable(pub String);

impl std::fmt::Display for DatabaseUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the database is unavailable: {}", self.0)
    }
}

impl std::error::Error for DatabaseUnavailable {}

/// What a plugin asked the store to do with a statement.
#[derive(Clone, Copy)]
enum Statement {
    /// Run it and answer its rows.
    Query,
    /// Run it and answer how many rows it changed.
    Execute,
}

/// What a statement answered.
enum Done {
    Rows(crate::db::store::EncodedRows),
    Changed(u64),
}

/// How long to wait before the one retry of a transaction whose database was unreachable.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);

/// The error a host call raises when a limit that guards the server stopped its
/// statement (SQLite's heap); the request is answered 503 naming the limit.
#[derive(Debug)]
pub struct DatabaseLimit(pub String);

impl std::fmt::Display for DatabaseLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DatabaseLimit {}

impl State {
    /// State for the one `describe` call at load time: no site, no data access.
    pub fn describing() -> State {
        State {
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(64 << 20)
                .trap_on_grow_failure(true)
                .build(),
            site: None,
            plugin: "".into(),
            grants: None,
            config: Arc::default(),
            config_keys: Arc::from(Vec::new()),
            may_write: false,
            deadline: Instant::now() + std::time::Duration::from_secs(5),
            tx: None,
            poisoned: false,
            statements: 0,
            console: Vec::new(),
            logged: 0,
            request_id: String::new(),
        }
    }

    async fn run(
        &mut self,
        sql: &str,
        params: Vec<store::Value>,
        statement: Statement,
    ) -> wasmtime::Result<Result<Done, store::Error>> {
        if Instant::now() >= self.deadline {
            return Err(wasmtime::Error::new(DeadlineExceeded));
        }
        self.statements += 1;
        let (Some(site), Some(grants)) = (&self.site, &self.grants) else {
            return Ok(Err(store::Error::Denied(
                "no data access while the plugin describes itself".into(),
            )));
        };
        if let Err(why) = site.gate.check(grants, sql, self.may_write) {
            tracing::warn!(site = %site.name, plugin = %self.plugin, "refused SQL: {why}");
            return Ok(Err(store::Error::Denied(why)));
        }
        let site = site.clone();
        let grants = grants.clone();
        // Until a statement's answer reaches the plugin, a lost or refused connection is
        // retried once on a fresh transaction; after that it ends the request (503).
        let mut retried = false;
        let params: Vec<SqlValue> = params.into_iter().map(from_wit).collect();
        let result = loop {
            let fresh = self.tx.is_none();
            if fresh {
                match site
                    .gate
                    .begin(&site.db, &grants, self.may_write, self.deadline)
                    .await
                {
                    Ok(tx) => self.tx = Some(tx),
                    Err(StoreError::Unavailable(cause)) => {
                        if !retried && self.retry_pause_fits() {
                            retried = true;
                            tokio::time::sleep(RETRY_PAUSE).await;
                            continue;
                        }
                        return Err(wasmtime::Error::new(DatabaseUnavailable(cause)));
                    }
                    Err(error) => return Ok(Err(to_wit(error))),
                }
            }
            let tx = self.tx.as_mut().expect("transaction begun above");
            let done = match statement {
                Statement::Query => tx.query(sql, params.clone()).await.map(Done::Rows),
                Statement::Execute => tx.execute(sql, params.clone()).await.map(Done::Changed),
            };
            match done {
                Err(StoreError::Unavailable(cause)) => {
                    // The transaction is gone with its connection.
                    self.tx = None;
                    // Nothing the plugin saw came from this transaction if it began here.
                    if fresh && self.statements == 1 && !retried && self.retry_pause_fits() {
                        retried = true;
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                    return Err(wasmtime::Error::new(DatabaseUnavailable(cause)));
                }
                other => break other,
            }
        };
        if let Err(error) = &result {
            self.poisoned = true;
            if let StoreError::Limit(why) = error {
                return Err(wasmtime::Error::new(DatabaseLimit(why.clone())));
            }
            if matches!(error, StoreError::Deadline(_)) || Instant::now() >= self.deadline {
                // The statement was stopped by the deadline: the request is over, whatever
                // the plugin would make of the error.
                return Err(wasmtime::Error::new(DeadlineExceeded));
            }
        }
        Ok(result.map_err(to_wit))
    }

    /// True when a retry after [`RETRY_PAUSE`] still leaves the request some time.
    fn retry_pause_fits(&self) -> bool {
        self.deadline.saturating_duration_since(Instant::now()) > RETRY_PAUSE * 2
    }
}

fn from_wit(value: store::Value) -> SqlValue {
    match value {
        store::Value::Null => SqlValue::Null,
        store::Value::Integer(i) => SqlValue::Integer(i),
        store::Value::Real(r) => SqlValue::Real(r),
        store::Value::Text(s) => SqlValue::Text(s),
        store::Value::Blob(b) => SqlValue::Blob(b),
    }
}

fn to_wit(error: StoreError) -> store::Error {
    match error {
        StoreError::Denied(m) => store::Error::Denied(m),
        StoreError::Constraint(m) => store::Error::Constraint(m),
        StoreError::Invalid(m) => store::Error::Invalid(m),
        StoreError::Deadline(m)
        | StoreError::Failed(m)
        | StoreError::Unavailable(m)
        | StoreError::Limit(m) => store::Error::Failed(m),
    }
}

impl store::Host for State {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<store::Value>,
    ) -> wasmtime::Result<Result<store::Rows, store::Error>> {
        self.run(&sql, params, Statement::Query)
            .await
            .map(|result| {
                result.map(|done| match done {
                    Done::Rows(rows) => store::Rows {
                        column_count: rows.columns,
                        row_count: rows.count,
                        data: rows.data,
                        json: rows.json,
                    },
                    Done::Changed(_) => unreachable!("a query answers rows"),
                })
            })
    }

    async fn execute(
        &mut self,
        sql: String,
        params: Vec<store::Value>,
    ) -> wasmtime::Result<Result<u64, store::Error>> {
        self.run(&sql, params, Statement::Execute)
            .await
            .map(|result| {
                result.map(|done| match done {
                    Done::Changed(count) => count,
                    Done::Rows(_) => unreachable!("an execution answers a count"),
                })
            })
    }
}

/// The longest log line a plugin may write; longer lines are cut.
pub const LOG_LINE_BYTES: usize = 4 * 1024;
/// The most a plugin may log in one request; later lines are dropped (one note says so).
pub const LOG_REQUEST_BYTES: usize = 64 * 1024;

impl log::Host for State {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let site = self.site.as_ref().map_or("", |s| s.name.as_str());
        let plugin = &*self.plugin;
        let request = self.request_id.as_str();
        if self.logged >= LOG_REQUEST_BYTES {
            return Ok(());
        }
        let mut message = message;
        if message.len() > LOG_LINE_BYTES {
            let mut end = LOG_LINE_BYTES;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            let cut = message.len() - end;
            message.truncate(end);
            message.push_str(&format!(
                " … ({cut} bytes cut: a log line holds {LOG_LINE_BYTES})"
            ));
        }
        self.logged += message.len();
        if self.logged >= LOG_REQUEST_BYTES {
            tracing::warn!(
                site,
                plugin,
                request,
                "the plugin logged {LOG_REQUEST_BYTES} bytes in this request; its further log lines are dropped"
            );
        }
        match level {
            log::Level::Trace => tracing::trace!(site, plugin, request, "{message}"),
            log::Level::Debug => tracing::debug!(site, plugin, request, "{message}"),
            log::Level::Info => tracing::info!(site, plugin, request, "{message}"),
            log::Level::Warn => tracing::warn!(site, plugin, request, "{message}"),
            log::Level::Error => tracing::error!(site, plugin, request, "{message}"),
        }
        Ok(())
    }
}

impl config::Host for State {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, String>> {
        if !self.config_keys.contains(&key) {
            return Ok(Err(format!(
                "configuration key {key} was not declared by plugin {}",
                self.plugin
            )));
        }
        Ok(Ok(self.config.get(&key).cloned()))
    }
}

impl util::Host for State {
    fn uuid(&mut self) -> wasmtime::Result<String> {
        Ok(comb_uuid())
    }

    fn now(&mut self) -> wasmtime::Result<(i64, u32)> {
        let now = time::OffsetDateTime::now_utc();
        Ok((now.unix_timestamp(), now.nanosecond()))
    }

    fn request_id(&mut self) -> wasmtime::Result<String> {
        Ok(self.request_id.clone())
    }
}

impl types::Host for State {}

/// A version 4 UUID whose first 48 bits are the time in milliseconds, as OpenEMR's
/// "timestamp-first COMB" uuids are: random, yet indexed in insertion order (made by the
/// SDK's [`hearth_sdk::comb_uuid`], which the demo seed uses too).
pub fn comb_uuid() -> String {
    let millis = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    hearth_sdk::comb_uuid(millis, rand::random())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    /// Everything the tracing subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;

        fn make_writer(&'a self) -> Captured {
            self.clone()
        }
    }

    #[test]
    fn plugin_log_lines_and_the_log_of_a_request_are_capped() {
        use super::log::Host as _;
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(captured.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let mut state = super::State::describing();
            let line = "é".repeat(50_000);
            for _ in 0..200 {
                state.write(super::log::Level::Info, line.clone()).unwrap();
            }
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let longest = text.lines().map(str::len).max().unwrap();
        assert!(
            longest < super::LOG_LINE_BYTES + 300,
            "a line of {longest} bytes"
        );
        assert!(text.contains("bytes cut"), "a cut line says so");
        assert!(
            text.contains("further log lines are dropped"),
            "the request's cap says so"
        );
        assert!(
            text.len() < super::LOG_REQUEST_BYTES + 2 * super::LOG_LINE_BYTES + 10_000,
            "{} bytes logged for 20 MB asked",
            text.len()
        );
    }

    #[test]
    fn comb_uuids_are_version_4_and_time_ordered() {
        let a = super::comb_uuid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = super::comb_uuid();
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"));
        assert!(a[..13] < b[..13], "{a} then {b}");
    }
}
