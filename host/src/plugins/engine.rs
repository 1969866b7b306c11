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

/// How the pooling allocator returns an instance's slot to its initial state when the
/// request's `Store` drops. The defaults are what the server runs with; `docs/benchmarks.md`
/// ("The plugin seam, 2026-12-05 (issue 14): the slot reset") gives the measurements
/// behind each.
#[derive(Clone, Copy, Debug)]
pub struct PoolTuning {
    /// Bytes of each linear memory kept mapped between instances and reset in place
    /// (only the pages written, found with `PAGEMAP_SCAN`, when `pagemap_scan`; all of
    /// them otherwise); pages beyond are given back to the kernel (`madvise`).
    pub linear_memory_keep_resident: usize,
    /// The same for tables.
    pub table_keep_resident: usize,
    /// How many slots' `madvise` calls are gathered into one batch.
    pub decommit_batch_size: usize,
    /// Ask the kernel which kept-resident pages were written (Linux 6.7+).
    pub pagemap_scan: bool,
    /// Map the module's initial memory copy-on-write instead of copying it in.
    pub memory_init_cow: bool,
    /// Idle slots that stay affine to the module that last ran in them, with their
    /// kept-resident pages. A module with no affine idle slot takes a never-used slot
    /// while fewer than this many idle slots are affine to other modules, else the
    /// least recently used of those (its image is mapped again). Each warm slot holds up
    /// to `linear_memory_keep_resident` bytes, so this bounds the idle slots' memory.
    pub max_unused_warm_slots: u32,
}

impl Default for PoolTuning {
    fn default() -> PoolTuning {
        PoolTuning {
            // Keep touched pages resident and reset only the dirty ones: instantiation
            // then costs no page faults and the reset no TLB shootdown.
            linear_memory_keep_resident: 4 << 20,
            table_keep_resident: 64 << 10,
            decommit_batch_size: 1,
            pagemap_scan: true,
            memory_init_cow: true,
            max_unused_warm_slots: crate::config::DEFAULT_WARM_SLOTS,
        }
    }
}

/// The shared engine.
pub struct Engine {
    /// The wasmtime engine.
    pub wasmtime: wasmtime::Engine,
    /// Host functions, defined once.
    pub linker: Linker<State>,
    /// The engine of instances kept from call to call (see [`KeptEngine`]).
    pub kept: KeptEngine,
    cache_dir: PathBuf,
}

/// The engine of instances kept from one call to the next (a Bulk Data export asks one
/// instance for a type's pages, see `runtime::Kept`). It compiles exactly as the pooled
/// engine does, so it loads the same compiled components, but it gives each instance its
/// own memory, mapped when the instance is made and unmapped when it drops: a kept
/// instance takes none of the pool's slots from HTTP requests, and when its type ends its
/// memory goes back to the system instead of staying resident in a warm slot (each up to
/// `linear_memory_keep_resident`).
pub struct KeptEngine {
    /// The wasmtime engine (instances allocated on demand).
    pub wasmtime: wasmtime::Engine,
    /// The same host functions, for this engine.
    pub linker: Linker<State>,
}

/// What the pooled engine's slots hold now (for the metrics).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolUse {
    /// Component instances alive in the pool.
    pub instances: u64,
    /// Idle memory slots still affine to the plugin that last ran in them.
    pub warm_memories: u32,
    /// Bytes those idle slots keep resident.
    pub idle_resident_bytes: u64,
}

impl Engine {
    /// Builds the engine and starts its epoch ticker, with the pool settings the server uses.
    pub fn new(cache_dir: &Path, max_instances: u32) -> Result<Arc<Engine>> {
        Engine::with_tuning(cache_dir, max_instances, PoolTuning::default())
    }

    /// Builds the engine with other pool-reset settings (benchmarks compare them; the
    /// server always uses [`PoolTuning::default`]). No setting here weakens isolation:
    /// each only chooses how a slot is returned to its initial state.
    pub fn with_tuning(
        cache_dir: &Path,
        max_instances: u32,
        tuning: PoolTuning,
    ) -> Result<Arc<Engine>> {
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
            .max_unused_warm_slots(tuning.max_unused_warm_slots)
            .linear_memory_keep_resident(tuning.linear_memory_keep_resident)
            .table_keep_resident(tuning.table_keep_resident)
            .decommit_batch_size(tuning.decommit_batch_size)
            .pagemap_scan(if tuning.pagemap_scan {
                Enabled::Auto
            } else {
                Enabled::No
            });
        let wasmtime = wasmtime::Engine::new(&config(
            InstanceAllocationStrategy::Pooling(pool),
            tuning.memory_init_cow,
        ))?;
        let linker = host_linker(&wasmtime)?;
        // The same compile settings (so the same compiled components load in it), memory
        // allocated per instance.
        let kept = wasmtime::Engine::new(&config(
            InstanceAllocationStrategy::OnDemand,
            tuning.memory_init_cow,
        ))?;
        let kept = KeptEngine {
            linker: host_linker(&kept)?,
            wasmtime: kept,
        };
        let weak = [wasmtime.weak(), kept.wasmtime.weak()];
        std::thread::Builder::new()
            .name("hearth-epoch".into())
            .spawn(move || {
                while let [Some(pooled), Some(kept)] = weak.each_ref().map(|w| w.upgrade()) {
                    pooled.increment_epoch();
                    kept.increment_epoch();
                    drop((pooled, kept));
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .context("starting the epoch ticker")?;
        std::fs::create_dir_all(cache_dir)
            .with_context(|| format!("creating {}", cache_dir.display()))?;
        Ok(Arc::new(Engine {
            wasmtime,
            linker,
            kept,
            cache_dir: cache_dir.to_path_buf(),
        }))
    }

    /// What the pooled engine's slots hold now.
    pub fn pool_use(&self) -> PoolUse {
        self.wasmtime
            .pooling_allocator_metrics()
            .map(|pool| PoolUse {
                instances: pool.component_instances(),
                warm_memories: pool.unused_warm_memories(),
                idle_resident_bytes: pool.unused_memory_bytes_resident() as u64,
            })
            .unwrap_or_default()
    }

    /// Where the compiled form of the component whose SHA-256 is `content` is cached.
    fn cached(&self, content: &str) -> PathBuf {
        let mut key = Sha256::new();
        key.update(content.as_bytes());
        // The same bytes compile differently for another engine configuration or version.
        std::hash::Hash::hash(
            &self.wasmtime.precompile_compatibility_hash(),
            &mut HashWriter(&mut key),
        );
        self.cache_dir
            .join(format!("{}.cwasm", hex::encode(key.finalize())))
    }

    /// `component` (compiled by [`Engine::compile`] from bytes whose SHA-256 is
    /// `content`) for the [`KeptEngine`]: the cached compiled file mapped again, or the
    /// component serialized and loaded when there is no such file. Nothing is compiled.
    pub fn for_kept(&self, content: &str, component: &Component) -> Result<Component> {
        let cached = self.cached(content);
        if cached.exists() {
            // SAFETY: the cache holds only artifacts written by an engine with these
            // compile settings (keyed by the compatibility hash, which the kept engine
            // shares); wasmtime verifies the header on load.
            if let Ok(component) =
                unsafe { Component::deserialize_file(&self.kept.wasmtime, &cached) }
            {
                return Ok(component);
            }
        }
        let serialized = component.serialize()?;
        // SAFETY: serialized just now from a component of the same compile settings.
        let component = unsafe { Component::deserialize(&self.kept.wasmtime, &serialized) }?;
        Ok(component)
    }

    /// Compiles `bytes`, or loads the compiled form cached under their hash.
    pub fn compile(&self, bytes: &[u8]) -> Result<(Component, String)> {
        let mut hasher = Sha256::new();
        hasher.update(bytes);
        let content = hex::encode(hasher.finalize());
        let cached = self.cached(&content);
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

/// The engine configuration: everything that decides how a component compiles is the
/// same for both engines; only how instances get their memory differs.
fn config(strategy: InstanceAllocationStrategy, memory_init_cow: bool) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(strategy)
        .memory_init_cow(memory_init_cow)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        .memory_reservation(MAX_MEMORY_BYTES as u64)
        .memory_guard_size(64 << 10)
        .async_stack_size(2 << 20)
        .max_wasm_stack(1 << 20);
    if std::env::var_os("HEARTH_PERFMAP").is_some() {
        // Names JIT frames for `perf` (diagnostics only).
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    config
}

/// Every supported contract version's host functions on one linker, each interface on
/// its own capability context (see `host`).
fn host_linker(engine: &wasmtime::Engine) -> Result<Linker<State>> {
    let mut linker = Linker::new(engine);
    super::host::add_to_linker(&mut linker)?;
    super::wasi::add_to_linker(&mut linker)?;
    Ok(linker)
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
