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
            request_id: String::new(),
        }
    }

    async fn run<T>(
        &mut self,
        sql: &str,
        params: Vec<store::Value>,
        run: impl AsyncFnOnce(&mut Tx, Vec<SqlValue>) -> Result<T, StoreError>,
    ) -> wasmtime::Result<Result<T, store::Error>> {
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
        if self.tx.is_none() {
            match site
                .gate
                .begin(&site.db, grants, self.may_write, self.deadline)
                .await
            {
                Ok(tx) => self.tx = Some(tx),
                Err(error) => return Ok(Err(to_wit(error))),
            }
        }
        let tx = self.tx.as_mut().expect("transaction begun above");
        let params = params.into_iter().map(from_wit).collect();
        let result = run(tx, params).await;
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
        StoreError::Deadline(m) | StoreError::Failed(m) | StoreError::Limit(m) => {
            store::Error::Failed(m)
        }
    }
}

impl store::Host for State {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<store::Value>,
    ) -> wasmtime::Result<Result<store::Rows, store::Error>> {
        self.run(&sql, params, async |tx, params| {
            tx.query(&sql, params).await
        })
        .await
        .map(|result| {
            result.map(|rows| store::Rows {
                column_count: rows.columns,
                row_count: rows.count,
                data: rows.data,
                json: rows.json,
            })
        })
    }

    async fn execute(
        &mut self,
        sql: String,
        params: Vec<store::Value>,
    ) -> wasmtime::Result<Result<u64, store::Error>> {
        self.run(&sql, params, async |tx, params| {
            tx.execute(&sql, params).await
        })
        .await
    }
}

impl log::Host for State {
    fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let site = self.site.as_ref().map_or("", |s| s.name.as_str());
        let plugin = &*self.plugin;
        let request = self.request_id.as_str();
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
/// "timestamp-first COMB" uuids are: random, yet indexed in insertion order.
pub fn comb_uuid() -> String {
    let mut bytes: [u8; 16] = rand::random();
    let millis = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as u64;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

#[cfg(test)]
mod tests {
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
