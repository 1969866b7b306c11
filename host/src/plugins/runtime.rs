//! Calling a plugin for one request: a fresh instance from the pooling allocator, limits
//! on memory and time (epoch deadline inside wasm, a wall-clock guard around everything
//! including host calls), a cap on the response, and the request's transaction committed
//! only when the plugin answers 2xx.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{Store, StoreLimitsBuilder, UpdateDeadline};

use super::SitePlugin;
use super::bindings;
use super::engine::Engine;
use super::host::{DeadlineExceeded, State};
use crate::sites::Site;

/// Why a call produced no usable answer. Each names the limit that was hit.
#[derive(Debug)]
pub enum CallError {
    /// The deadline passed (in wasm or in a host call).
    Timeout(Duration),
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
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout(d) => write!(
                f,
                "the plugin exceeded its time limit of {} ms",
                d.as_millis()
            ),
            CallError::Memory(cap) => write!(
                f,
                "the plugin exceeded its memory limit of {} MiB",
                cap >> 20
            ),
            CallError::Trap(why) => write!(f, "the plugin failed: {why}"),
            CallError::Busy(n) => {
                write!(f, "the plugin is at its limit of {n} concurrent requests")
            }
            CallError::ResponseTooLarge(cap) => {
                write!(
                    f,
                    "the plugin's response exceeded its size limit of {cap} bytes"
                )
            }
            CallError::Commit(why) => write!(f, "the request's changes could not be saved: {why}"),
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

/// Runs `request` through `plugin` for `site`.
pub async fn call(
    engine: &Engine,
    site: &Arc<Site>,
    plugin: &SitePlugin,
    request: bindings::Request,
    may_write: bool,
) -> Result<Outcome, CallError> {
    let limits = plugin.limits;
    let timeout = Duration::from_millis(limits.timeout_ms);
    let _permit = plugin
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| CallError::Busy(limits.max_instances))?;
    let started = Instant::now();
    let deadline = started + timeout;
    let state = State {
        limits: StoreLimitsBuilder::new()
            .memory_size(limits.memory_bytes)
            .instances(20)
            .tables(20)
            .memories(4)
            .trap_on_grow_failure(true)
            .build(),
        site: Some(site.clone()),
        plugin: plugin.loaded.name.as_str().into(),
        grants: Some(plugin.grants.clone()),
        config: plugin.config.clone(),
        config_keys: plugin.loaded.config_keys.clone(),
        may_write,
        deadline,
        tx: None,
        poisoned: false,
        statements: 0,
        console: Vec::new(),
    };
    let mut store = Store::new(&engine.wasmtime, state);
    store.limiter(|state| &mut state.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(DeadlineExceeded))
        } else {
            // Give the executor back each tick so a busy plugin never starves others.
            Ok(UpdateDeadline::Yield(1))
        }
    });
    let run = async {
        let instance = plugin.loaded.pre.instantiate_async(&mut store).await?;
        instance
            .hearth_plugin_handler()
            .call_handle(&mut store, &request)
            .await
    };
    let result = match tokio::time::timeout(timeout, run).await {
        Ok(result) => result.map_err(|error| classify(error, timeout, limits.memory_bytes)),
        Err(_) => Err(CallError::Timeout(timeout)),
    };
    let state = store.data_mut();
    let tx = state.tx.take();
    let poisoned = state.poisoned;
    let statements = state.statements;
    if !state.console.is_empty() {
        tracing::warn!(
            site = %site.name,
            plugin = %plugin.loaded.name,
            "plugin output: {}",
            String::from_utf8_lossy(&state.console).trim_end()
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
            if poisoned && site.db.kind() == crate::db::Kind::Postgres {
                let _ = tx.rollback().await;
                return Err(CallError::Commit(
                    "a statement failed earlier in the request, so PostgreSQL discarded the transaction".into(),
                ));
            }
            tx.commit()
                .await
                .map_err(|e| CallError::Commit(format!("{e:?}")))?;
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
fn classify(error: wasmtime::Error, timeout: Duration, memory: usize) -> CallError {
    if error.downcast_ref::<DeadlineExceeded>().is_some() {
        return CallError::Timeout(timeout);
    }
    let text = format!("{error:#}");
    if text.contains("forcing trap when growing memory") || text.contains("memory size exceeds") {
        return CallError::Memory(memory);
    }
    // The root cause is enough; a full chain with backtraces is costly and noisy.
    let root = error.root_cause().to_string();
    CallError::Trap(root)
}
