//! Calling a plugin for one request: a fresh instance from the pooling allocator, limits
//! on memory and time (epoch deadline inside wasm, a wall-clock guard around everything
//! including host calls), a CPU budget, a cap on the response, a bound on concurrent
//! instances, and the request's transaction committed only when the plugin answers 2xx.
//!
//! The CPU budget counts the time the request keeps a server thread busy: every poll of
//! the call's future is timed, so time spent waiting (for the database, for a thread)
//! is not counted, while wasm execution and the host's synchronous work for it are. It is
//! checked at each epoch tick while wasm runs, with the wall-clock deadline, so it costs
//! two clock reads per poll and nothing per instruction (wasmtime's fuel would instrument
//! every basic block of every plugin).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use wasmtime::{Store, UpdateDeadline};

use super::SitePlugin;
use super::bindings;
use super::engine::Engine;
use super::host::{
    ConfigCtx, DatabaseLimit, DeadlineExceeded, LimitsCtx, LogCtx, RequestCtx, State, StoreCtx,
};
use crate::sites::Site;

/// Why a call produced no usable answer. Each names the limit that was hit.
#[derive(Debug)]
pub enum CallError {
    /// The deadline passed (in wasm or in a host call).
    Timeout(Duration),
    /// The request used up its CPU budget.
    Cpu(Duration),
    /// The instance tried to grow its memory past its cap.
    Memory(usize),
    /// The plugin trapped (a panic, an out-of-bounds access, …).
    Trap(String),
    /// Too many instances of the plugin are running.
    Busy(u32),
    /// The response body is larger than allowed.
    ResponseTooLarge(usize),
    /// The plugin answered 2xx but its transaction could not be committed.
    Commit(String),
    /// The site's database could not be reached (the cause says how).
    Unavailable(String),
    /// A statement was stopped by a limit that guards the server (SQLite's heap).
    DatabaseLimit(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout(d) => write!(
                f,
                "the plugin exceeded its time limit of {} ms (timeout_ms)",
                d.as_millis()
            ),
            CallError::Cpu(d) => write!(
                f,
                "the plugin exceeded its CPU budget of {} ms (cpu_ms)",
                d.as_millis()
            ),
            CallError::Memory(cap) => write!(
                f,
                "the plugin exceeded its memory limit of {} MiB (memory_mib)",
                cap >> 20
            ),
            CallError::Trap(why) => write!(f, "the plugin failed: {why}"),
            CallError::Busy(n) => write!(
                f,
                "the plugin is at its limit of {n} concurrent requests (max_instances)"
            ),
            CallError::ResponseTooLarge(cap) => write!(
                f,
                "the plugin's response exceeded its size limit of {cap} bytes (max_response_bytes)"
            ),
            CallError::Commit(why) => write!(f, "the request's changes could not be saved: {why}"),
            CallError::Unavailable(why) => write!(f, "the site's database is unavailable ({why})"),
            CallError::DatabaseLimit(why) => write!(f, "the request's SQL was stopped: {why}"),
        }
    }
}

/// The outcome of a call, for the audit log.
pub struct Outcome {
    /// The plugin's response.
    pub response: bindings::Response,
    /// Statements it ran.
    pub statements: u32,
}

/// The error raised inside wasm when the request used up its CPU budget.
#[derive(Debug)]
struct CpuBudgetExceeded;

impl std::fmt::Display for CpuBudgetExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request's CPU budget is used up")
    }
}

impl std::error::Error for CpuBudgetExceeded {}

/// Busy time of one call: the sum of its polls, and the start of the poll under way.
struct CpuMeter {
    origin: Instant,
    /// Nanoseconds spent in finished polls.
    spent: AtomicU64,
    /// Nanoseconds after `origin` at which the current poll began.
    entered: AtomicU64,
}

impl CpuMeter {
    fn new() -> CpuMeter {
        CpuMeter {
            origin: Instant::now(),
            spent: AtomicU64::new(0),
            entered: AtomicU64::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }

    fn enter(&self) {
        self.entered.store(self.now(), Ordering::Relaxed);
    }

    fn leave(&self) {
        let busy = self.now() - self.entered.load(Ordering::Relaxed);
        self.spent.fetch_add(busy, Ordering::Relaxed);
    }

    /// Busy nanoseconds so far, the current poll included (call it inside a poll).
    fn busy(&self) -> u64 {
        self.spent.load(Ordering::Relaxed) + (self.now() - self.entered.load(Ordering::Relaxed))
    }
}

/// Runs `future`, timing each of its polls on `meter`.
async fn metered<F: Future>(meter: &CpuMeter, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        meter.enter();
        let poll: Poll<F::Output> = future.as_mut().poll(cx);
        meter.leave();
        poll
    })
    .await
}

/// Runs `request` through `plugin` for `site`. `request_id` is the request's correlation
/// id, which the plugin may ask for (`util.request-id`) and which tags its log lines.
pub async fn call(
    engine: &Engine,
    site: &Arc<Site>,
    plugin: &SitePlugin,
    request: bindings::Request,
    request_id: &str,
    may_write: bool,
) -> Result<Outcome, CallError> {
    call_within(
        engine,
        site,
        plugin,
        plugin.limits,
        request,
        request_id,
        may_write,
    )
    .await
}

/// [`call`] with `limits` instead of the plugin's own (a background job's longer
/// deadline and CPU budget; the plugin's instance count still applies).
pub async fn call_within(
    engine: &Engine,
    site: &Arc<Site>,
    plugin: &SitePlugin,
    limits: crate::plugins::manifest::Limits,
    request: bindings::Request,
    request_id: &str,
    may_write: bool,
) -> Result<Outcome, CallError> {
    let timeout = Duration::from_millis(limits.timeout_ms);
    let cpu = Duration::from_millis(limits.cpu_ms);
    let cpu_nanos = cpu.as_nanos() as u64;
    let _permit = plugin
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| CallError::Busy(limits.max_instances))?;
    let started = Instant::now();
    let deadline = started + timeout;
    let state = State {
        request: RequestCtx::new(site.clone(), plugin.loaded.name.as_str().into(), request_id),
        limits: LimitsCtx::new(limits.memory_bytes, deadline),
        store: StoreCtx::new(plugin.grants.clone(), may_write),
        log: LogCtx::default(),
        config: ConfigCtx::new(plugin.config.clone(), plugin.loaded.config_keys.clone()),
    };
    let meter = Arc::new(CpuMeter::new());
    let mut store = Store::new(&engine.wasmtime, state);
    store.limiter(|state| &mut state.limits.memory);
    store.set_epoch_deadline(1);
    let ticking = meter.clone();
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else if ticking.busy() >= cpu_nanos {
            Err(wasmtime::Error::new(CpuBudgetExceeded))
        } else {
            // Give the executor back each tick so a busy plugin never starves others.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let run = metered(&meter, plugin.loaded.pre.handle(&mut store, request));
    let result = match tokio::time::timeout(timeout, run).await {
        Ok(result) => result.map_err(|error| classify(error, timeout, cpu, limits.memory_bytes)),
        Err(_) => Err(CallError::Timeout(timeout)),
    };
    let state = store.data_mut();
    let tx = state.store.tx.take();
    let poisoned = state.store.poisoned;
    let statements = state.store.statements;
    if !state.log.console.is_empty() {
        tracing::warn!(
            site = %site.name,
            plugin = %plugin.loaded.name,
            "plugin output: {}",
            String::from_utf8_lossy(&state.log.console).trim_end()
        );
    }
    drop(store);
    let response = match result {
        Ok(response) if response.body.len() > limits.max_response_bytes => {
            Err(CallError::ResponseTooLarge(limits.max_response_bytes))
        }
        other => other,
    };
    match (response, tx) {
        (Ok(response), Some(tx)) if (200..300).contains(&response.status) => {
            // A read-only transaction has nothing to save: the plugin saw the failed
            // statement and answered anyway, as it would on SQLite.
            if poisoned && !may_write && site.db.kind() == crate::db::Kind::Postgres {
                let _ = tx.rollback().await;
                return Ok(Outcome {
                    response,
                    statements,
                });
            }
            if poisoned && site.db.kind() == crate::db::Kind::Postgres {
                let _ = tx.rollback().await;
                return Err(CallError::Commit(
                    "a statement failed earlier in the request, so PostgreSQL discarded the transaction".into(),
                ));
            }
            tx.commit().await.map_err(|error| match error {
                crate::db::store::StoreError::Unavailable(cause) => CallError::Unavailable(cause),
                other => CallError::Commit(format!("{other:?}")),
            })?;
            Ok(Outcome {
                response,
                statements,
            })
        }
        (result, Some(tx)) => {
            // A connection stopped mid-statement may take a moment to come back; never let
            // a rollback hold the answer (dropping the transaction rolls back as well).
            match tokio::time::timeout(Duration::from_secs(2), tx.rollback()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(site = %site.name, "rollback failed: {error:?}"),
                Err(_) => {
                    tracing::warn!(site = %site.name, "rollback took longer than 2 s; dropped")
                }
            }
            result.map(|response| Outcome {
                response,
                statements,
            })
        }
        (result, None) => result.map(|response| Outcome {
            response,
            statements,
        }),
    }
}

/// Names the limit behind a wasmtime error.
fn classify(error: wasmtime::Error, timeout: Duration, cpu: Duration, memory: usize) -> CallError {
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        return CallError::Timeout(timeout);
    }
    if error.downcast_ref::<CpuBudgetExceeded>().is_some() {
        return CallError::Cpu(cpu);
    }
    if let Some(unavailable) = error.downcast_ref::<super::host::DatabaseUnavailable>() {
        return CallError::Unavailable(unavailable.0.clone());
    }
    if let Some(DatabaseLimit(why)) = error.downcast_ref::<DatabaseLimit>() {
        return CallError::DatabaseLimit(why.clone());
    }
    let text = format!("{error:#}");
    if text.contains("forcing trap when growing memory") || text.contains("memory size exceeds") {
        return CallError::Memory(memory);
    }
    // The root cause is enough; a full chain with backtraces is costly and noisy.
    let root = error.root_cause().to_string();
    CallError::Trap(root)
}
