//! Calling a plugin for one request: a fresh instance from the pooling allocator (or,
//! for a Bulk Data export's pages of one type, the one [`Kept`] from its last page), limits
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
    let call = Call {
        engine,
        site,
        plugin,
        limits,
        request_id,
        may_write,
    };
    run(call, request, None).await
}

/// An instance kept for the consecutive read-only calls of one caller: a Bulk Data
/// export asks one plugin for one type's pages, one after another, for one client, and
/// a fresh instance for each page would build the page's memory again each time (the
/// pool keeps only the first 4 MiB of a slot resident; the rest is faulted in again).
/// Such calls (and the export's counts, each with a `Kept` of its own) make their
/// instances in the engine's
/// [`KeptEngine`](super::engine::KeptEngine), outside the pool: memory of their own,
/// unmapped when they drop, so they neither take slots from requests nor leave warm ones
/// behind.
///
/// It is used again only for the same loaded plugin with the same grants and
/// configuration (a reload or a configuration change makes a new one), and only after
/// a call that answered 2xx: a call that trapped, ran out of time, CPU or memory, or
/// answered an error drops it, and the next call starts a fresh instance. What stays
/// between calls is the plugin's own memory and globals; every call gets its own
/// deadline, CPU budget, transaction, log budget and request id, as a fresh instance
/// would. A plugin that must start every call afresh says so with `keep_instance =
/// false` in `plugins.toml` (see docs/plugins.md).
#[derive(Default)]
pub struct Kept {
    instance: Option<KeptInstance>,
    /// The plugin's code in the kept engine, held from the first call to the last (a
    /// type's pages), even when no instance is kept between them.
    code: Option<Arc<super::loader::Pre>>,
}

struct KeptInstance {
    loaded: Arc<super::loader::Loaded>,
    grants: Arc<crate::db::grants::Grants>,
    config: Arc<std::collections::HashMap<String, String>>,
    store: Store<State>,
    instance: super::loader::Instance,
}

impl KeptInstance {
    /// Whether it is an instance of `plugin` as the site has it now.
    fn of(&self, plugin: &SitePlugin) -> bool {
        Arc::ptr_eq(&self.loaded, &plugin.loaded)
            && Arc::ptr_eq(&self.grants, &plugin.grants)
            && Arc::ptr_eq(&self.config, &plugin.config)
    }
}

impl Kept {
    /// Whether it holds an instance of `plugin` as the site has it now.
    fn holds(&self, plugin: &SitePlugin) -> bool {
        self.instance.as_ref().is_some_and(|kept| kept.of(plugin))
    }

    /// The kept instance's store and instance when it belongs to `plugin` (any other is
    /// dropped).
    fn take_for(&mut self, plugin: &SitePlugin) -> Option<(Store<State>, super::loader::Instance)> {
        let kept = self.instance.take()?;
        kept.of(plugin).then_some((kept.store, kept.instance))
    }
}

/// A read-only [`call_within`] through `kept` when given: the instance kept there is used
/// when it belongs to `plugin`, and the call's instance is kept there after a 2xx answer
/// (see [`Kept`]), unless the plugin's `keep_instance` is off.
pub async fn call_kept(
    engine: &Engine,
    site: &Arc<Site>,
    plugin: &SitePlugin,
    limits: crate::plugins::manifest::Limits,
    request: bindings::Request,
    request_id: &str,
    kept: Option<&mut Kept>,
) -> Result<Outcome, CallError> {
    let call = Call {
        engine,
        site,
        plugin,
        limits,
        request_id,
        may_write: false,
    };
    let kept = match kept {
        Some(kept) if kept.holds(plugin) => kept,
        kept => return run(call, request, kept).await,
    };
    // A kept instance holds memory from its earlier calls (what its allocator keeps for
    // reuse): a call that runs out of memory in it is asked again of a fresh instance
    // before it counts as failed, so keeping an instance never fails a call that a fresh
    // one would answer.
    let again = request.clone();
    match run(call, request, Some(&mut *kept)).await {
        Err(CallError::Memory(_)) => {
            tracing::debug!(site = %site.name, plugin = %plugin.loaded.name,
                "a kept instance ran out of memory; the call is asked again of a fresh one");
            run(call, again, Some(kept)).await
        }
        other => other,
    }
}

/// What one call runs with.
#[derive(Clone, Copy)]
struct Call<'a> {
    engine: &'a Engine,
    site: &'a Arc<Site>,
    plugin: &'a SitePlugin,
    limits: crate::plugins::manifest::Limits,
    request_id: &'a str,
    may_write: bool,
}

/// Runs one call; `kept` holds the instance kept from the caller's last call, if any,
/// and takes this call's (see [`call_kept`]).
async fn run(
    call: Call<'_>,
    request: bindings::Request,
    mut kept: Option<&mut Kept>,
) -> Result<Outcome, CallError> {
    let Call {
        engine,
        site,
        plugin,
        limits,
        request_id,
        may_write,
    } = call;
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
    // A call that may keep its instance makes it in the kept engine, which gives the
    // instance its own memory (unmapped when it drops) instead of a pool slot.
    let code = kept.as_mut().and_then(|kept| {
        kept.code = plugin.loaded.kept_pre(engine);
        kept.code.clone()
    });
    let (wasm, pre) = match code.as_deref() {
        Some(pre) => (&engine.kept.wasmtime, pre),
        None => (&engine.wasmtime, &plugin.loaded.pre),
    };
    // A kept instance starts the call with everything per call new: the whole `State`
    // (transaction, log, limits, request id) and the deadline and CPU meter below.
    let reused = kept.as_mut().and_then(|kept| kept.take_for(plugin));
    let (mut store, instance) = match reused {
        Some((mut store, instance)) => {
            // Its memory stays as large as it grew.
            let largest = store.data().limits.memory.largest;
            *store.data_mut() = state;
            store.data_mut().limits.memory.largest = largest;
            (store, Some(instance))
        }
        None => {
            let mut store = Store::new(wasm, state);
            store.limiter(|state| &mut state.limits.memory);
            (store, None)
        }
    };
    let meter = Arc::new(CpuMeter::new());
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
    let handled = async {
        let instance = match instance {
            Some(instance) => instance,
            None => pre.instantiate(&mut store).await?,
        };
        let response = instance.handle(&mut store, &request).await?;
        wasmtime::Result::Ok((instance, response))
    };
    let run = metered(&meter, handled);
    let (result, instance) = match tokio::time::timeout(timeout, run).await {
        Ok(Ok((instance, response))) => (Ok(response), Some(instance)),
        Ok(Err(error)) => (
            Err(classify(error, timeout, cpu, limits.memory_bytes)),
            None,
        ),
        Err(_) => (Err(CallError::Timeout(timeout)), None),
    };
    let state = store.data_mut();
    let grown = state.limits.memory.largest;
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
    let response = match result {
        Ok(response) if response.body.len() > limits.max_response_bytes => {
            Err(CallError::ResponseTooLarge(limits.max_response_bytes))
        }
        other => other,
    };
    // Kept only after a clean 2xx answer of a read, and while its memory is at most
    // half its cap (its allocator's free blocks may grow with its calls; a fresh instance
    // starts small again); anything else drops the instance with its store here.
    if let (Some(kept), Ok(response), Some(instance)) = (kept, &response, instance)
        && (200..300).contains(&response.status)
        && !may_write
        && !poisoned
        && limits.keep_instance
        && grown <= limits.memory_bytes / 2
    {
        kept.instance = Some(KeptInstance {
            loaded: plugin.loaded.clone(),
            grants: plugin.grants.clone(),
            config: plugin.config.clone(),
            store,
            instance,
        });
    } else {
        drop(store);
    }
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
