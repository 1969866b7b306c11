//! The store capability: SQL on the request's site database, inside the request's
//! transaction, which is begun on the first statement and checked against the plugin's
//! grants before anything runs.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::HasData;

use super::limits::{DeadlineExceeded, LimitsCtx};
use super::request::RequestCtx;
use crate::db::grants::Grants;
use crate::db::store::{EncodedRows, RowForm, SqlValue, StoreError, Tx};
use crate::plugins::bindings::store;

/// What the plugin may touch, and what it did so far in this request.
pub struct StoreCtx {
    /// What the plugin may touch (none while it describes itself: no data access).
    pub grants: Option<Arc<Grants>>,
    /// False for GET requests: no writes allowed.
    pub may_write: bool,
    /// The request's transaction, once a statement ran.
    pub tx: Option<Tx>,
    /// A statement failed inside the transaction (PostgreSQL then refuses the rest).
    pub poisoned: bool,
    /// Statements run, for logs and the audit.
    pub statements: u32,
}

impl StoreCtx {
    /// The store of a request under `grants`; `may_write` is false for GET requests.
    pub fn new(grants: Arc<Grants>, may_write: bool) -> StoreCtx {
        StoreCtx {
            grants: Some(grants),
            may_write,
            tx: None,
            poisoned: false,
            statements: 0,
        }
    }

    /// The store while a plugin describes itself: every statement is denied.
    pub fn describing() -> StoreCtx {
        StoreCtx {
            grants: None,
            may_write: false,
            tx: None,
            poisoned: false,
            statements: 0,
        }
    }
}

/// What the `store` interface works on: its own context, and the request's identity and
/// limits, borrowed.
pub struct StoreView<'a> {
    /// The store's context.
    pub ctx: &'a mut StoreCtx,
    /// Who is calling.
    pub request: &'a RequestCtx,
    /// The request's deadline.
    pub limits: &'a LimitsCtx,
}

/// Links the `store` interface to [`StoreView`].
pub struct StoreHost;

impl HasData for StoreHost {
    type Data<'a> = StoreView<'a>;
}

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

/// What a plugin asked the store to do with a statement.
#[derive(Clone, Copy)]
enum Statement {
    /// Run it and answer its rows in this form.
    Query(RowForm),
    /// Run it and answer how many rows it changed.
    Execute,
}

/// What a statement answered.
enum Done {
    Rows(EncodedRows),
    Changed(u64),
}

/// How long to wait before the one retry of a transaction whose database was unreachable.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

impl StoreView<'_> {
    async fn run(
        &mut self,
        sql: &str,
        params: Vec<store::Value>,
        statement: Statement,
    ) -> wasmtime::Result<Result<Done, store::Error>> {
        if self.limits.expired() {
            return Err(wasmtime::Error::new(DeadlineExceeded));
        }
        let ctx = &mut *self.ctx;
        ctx.statements += 1;
        let (Some(site), Some(grants)) = (&self.request.site, &ctx.grants) else {
            return Ok(Err(store::Error::Denied(
                "no data access while the plugin describes itself".into(),
            )));
        };
        if let Err(why) = site.gate.check(grants, sql, ctx.may_write) {
            tracing::warn!(site = %site.name, plugin = %self.request.plugin, "refused SQL: {why}");
            return Ok(Err(store::Error::Denied(why)));
        }
        let site = site.clone();
        let grants = grants.clone();
        let deadline = self.limits.deadline;
        // Until a statement's answer reaches the plugin, a lost or refused connection is
        // retried once on a fresh transaction; after that it ends the request (503).
        let mut retried = false;
        let params: Vec<SqlValue> = params.into_iter().map(from_wit).collect();
        let result = loop {
            let fresh = ctx.tx.is_none();
            if fresh {
                match site
                    .gate
                    .begin(&site.db, &grants, ctx.may_write, deadline)
                    .await
                {
                    Ok(tx) => ctx.tx = Some(tx),
                    Err(StoreError::Unavailable(cause)) => {
                        if !retried && self.limits.fits_pause(RETRY_PAUSE) {
                            retried = true;
                            tokio::time::sleep(RETRY_PAUSE).await;
                            continue;
                        }
                        return Err(wasmtime::Error::new(DatabaseUnavailable(cause)));
                    }
                    Err(error) => return Ok(Err(to_wit(error))),
                }
            }
            let tx = ctx.tx.as_mut().expect("transaction begun above");
            let started = std::time::Instant::now();
            let done = match statement {
                Statement::Query(form) => {
                    tx.query_as(sql, params.clone(), form).await.map(Done::Rows)
                }
                Statement::Execute => tx.execute(sql, params.clone()).await.map(Done::Changed),
            };
            log_statement(&site.name, &self.request.plugin, sql, started.elapsed());
            match done {
                Err(StoreError::Unavailable(cause)) => {
                    // The transaction is gone with its connection.
                    ctx.tx = None;
                    // Nothing the plugin saw came from this transaction if it began here.
                    if fresh
                        && ctx.statements == 1
                        && !retried
                        && self.limits.fits_pause(RETRY_PAUSE)
                    {
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
            ctx.poisoned = true;
            if let StoreError::Limit(why) = error {
                return Err(wasmtime::Error::new(DatabaseLimit(why.clone())));
            }
            if matches!(error, StoreError::Deadline(_)) || self.limits.expired() {
                // The statement was stopped by the deadline: the request is over, whatever
                // the plugin would make of the error.
                return Err(wasmtime::Error::new(DeadlineExceeded));
            }
        }
        Ok(result.map_err(to_wit))
    }
}

/// A statement that takes at least this long is logged at `warn`.
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// Each statement a plugin runs, with its time, at `debug` (target `hearth::sql`); a slow
/// one at `warn`, so a missing index shows in the log with the statement that needs it.
fn log_statement(site: &str, plugin: &str, sql: &str, took: Duration) {
    let ms = took.as_secs_f64() * 1000.0;
    if took >= SLOW_STATEMENT {
        tracing::warn!(target: "hearth::sql", site, plugin, ms, "slow statement: {sql}");
    } else {
        tracing::debug!(target: "hearth::sql", site, plugin, ms, "{sql}");
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

impl StoreView<'_> {
    /// Runs a query for any contract version: its rows in `form`, as the host encodes
    /// them (each version's binding hands them on in its own record).
    pub async fn query_rows(
        &mut self,
        sql: &str,
        params: Vec<store::Value>,
        form: RowForm,
    ) -> wasmtime::Result<Result<EncodedRows, store::Error>> {
        self.run(sql, params, Statement::Query(form))
            .await
            .map(|result| {
                result.map(|done| match done {
                    Done::Rows(rows) => rows,
                    Done::Changed(_) => unreachable!("a query answers rows"),
                })
            })
    }
}

impl store::Host for StoreView<'_> {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<store::Value>,
        form: store::RowForm,
    ) -> wasmtime::Result<Result<store::Rows, store::Error>> {
        let form = match form {
            store::RowForm::Values => RowForm::Values,
            store::RowForm::Json => RowForm::Json,
            store::RowForm::Both => RowForm::Both,
        };
        self.query_rows(&sql, params, form).await.map(|result| {
            result.map(|rows| store::Rows {
                column_count: rows.columns,
                row_count: rows.count,
                data: rows.data,
                json: rows.json,
                json_ends: rows.json_ends,
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{StoreCtx, StoreView};
    use crate::plugins::bindings::store::{self, Host as _};
    use crate::plugins::host::limits::{DeadlineExceeded, LimitsCtx};
    use crate::plugins::host::request::RequestCtx;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn a_describing_plugin_is_denied_every_statement_and_each_is_counted() {
        let mut ctx = StoreCtx::describing();
        let request = RequestCtx::describing();
        let limits = LimitsCtx::describing();
        let mut view = StoreView {
            ctx: &mut ctx,
            request: &request,
            limits: &limits,
        };
        let read =
            block_on(view.query("SELECT 1".into(), Vec::new(), store::RowForm::Values)).unwrap();
        assert!(matches!(read, Err(store::Error::Denied(_))), "{read:?}");
        let write = block_on(view.execute("DELETE FROM patient_data".into(), Vec::new())).unwrap();
        assert!(matches!(write, Err(store::Error::Denied(_))), "{write:?}");
        assert_eq!(ctx.statements, 2);
        assert!(ctx.tx.is_none(), "no transaction was begun");
    }

    #[test]
    fn a_statement_after_the_deadline_ends_the_request() {
        let mut ctx = StoreCtx::describing();
        let request = RequestCtx::describing();
        let limits = LimitsCtx::new(1 << 20, Instant::now() - Duration::from_millis(1));
        let mut view = StoreView {
            ctx: &mut ctx,
            request: &request,
            limits: &limits,
        };
        let error =
            block_on(view.query("SELECT 1".into(), Vec::new(), store::RowForm::Both)).unwrap_err();
        assert!(
            error.downcast_ref::<DeadlineExceeded>().is_some(),
            "{error:#}"
        );
        assert_eq!(ctx.statements, 0, "nothing ran");
    }
}
