//! The WebAssembly engine: configured once, with the pooling allocator, epoch
//! interruption and one linker holding every host function. Compiled components are cached
//! on disk by content hash, so a restart does not compile again.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Enabled, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::host::State;

/// How often the engine's epoch advances; deadlines are checked at this granularity.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The largest linear memory any plugin instance may have; per-plugin caps are lower.
pub const MAX_MEMORY_BYTES: usize = 256 << 20;

/// The shared engine.
pub struct Engine {
    /// The wasmtime engine.
    pub wasmtime: wasmtime::Engine,
    /// Host functions, defined once.
    pub linker: Linker<State>,
    cache_dir: PathBuf,
}

impl Engine {
    /// Builds the engine and starts its epoch ticker.
    pub fn new(cache_dir: &Path, max_instances: u32) -> Result<Arc<Engine>> {
        let mut pool = PoolingAllocationConfig::default();
        // A component is a few core instances (the plugin, and small adapter shims).
        let core = max_instances.saturating_mul(8);
        pool.total_component_instances(max_instances)
            .total_core_instances(core)
            .total_memories(max_instances.saturating_mul(2))
            .total_tables(core)
            .total_stacks(max_instances)
            .max_memory_size(MAX_MEMORY_BYTES)
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_core_instances_per_component(16)
            // Keep touched pages resident and reset only the dirty ones (PAGEMAP_SCAN on
            // Linux 6.7+): instantiation then costs no page faults on this kind of VM.
            .linear_memory_keep_resident(4 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            .cranelift_opt_level(wasmtime::OptLevel::Speed)
            .memory_reservation(MAX_MEMORY_BYTES as u64)
            .memory_guard_size(64 << 10)
            .async_stack_size(2 << 20)
            .max_wasm_stack(1 << 20);
        if std::env::var_os("HEARTH_PERFMAP").is_some() {
            // Names JIT frames for `perf` (diagnostics only).
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let wasmtime = wasmtime::Engine::new(&config)?;
        let mut linker = Linker::new(&wasmtime);
        // Every supported contract version on one linker, each interface on its own
        // capability context (see `host`).
        super::host::add_to_linker(&mut linker)?;
        super::wasi::add_to_linker(&mut linker)?;
        let weak = wasmtime.weak();
        std::thread::Builder::new()
            .name("hearth-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        Ok(Arc::new(Engine {
            wasmtime,
            linker,
            cache_dir: cache_dir.to_path_buf(),
        }))
    }

    /// Compiles `bytes`, or loads the compiled form cached under their hash.
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, String)> {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        let content = hex::encode(hasher.finalize());
        let mut key = Sha256::new();
        key.update(content.as_bytes());
        // The same bytes compile differently for another engine configuration or version.
        std::hash::Hash::hash(
            &self.wasmtime.precompile_compatibility_hash(),
            &mut HashWriter(&mut key),
        );
        let cached = self
            .cache_dir
            .join(format!("{}.cwasm", hex::encode(key.finalize())));
        if cached.exists() {
            // SAFETY: the cache holds only artifacts this engine configuration wrote
            // (keyed by the compatibility hash); wasmtime verifies the header on load.
            match unsafe { Component::deserialize_file(&self.wasmtime, &cached) } {
                Ok(component) => return Ok((component, content)),
                Err(error) => tracing::warn!(
                    "ignoring unusable compiled cache {}: {error}",
                    cached.display()
                ),
            }
        }
        let serialized = self
            .wasmtime
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)
            .context("the file is not a valid WebAssembly component")?;
        let temp = cached.with_extension(format!("tmp{}", std::process::id()));
        if std::fs::write(&temp, &serialized).is_ok() {
            let _ = std::fs::rename(&temp, &cached);
        }
        // SAFETY: produced just now by this engine.
        let component = unsafe { Component::deserialize(&self.wasmtime, &serialized) }?;
        Ok((component, content))
    }
}

/// Feeds `Hash` output into a SHA-256 state.
struct HashWriter<'a>(&'a mut Sha256);

impl std::hash::Hasher for HashWriter<'_> {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
