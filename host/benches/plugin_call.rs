//! Micro-benchmark of one plugin call, in process: a fresh instance from the pool, the
//! request lowered, the guest run (with host queries), the response lifted, the
//! transaction finished. Prints p50/p99 per variant.
//!
//! `cargo bench -p hearth-host --features natives --bench plugin_call` (knobs: `ITERATIONS`, `SECONDS`,
//! `CONCURRENT=plugin|native|none`, `WORKERS`; the pool-reset levers `KEEP_RESIDENT`
//! (bytes, `K`/`M` suffix), `TABLE_KEEP_RESIDENT`, `PAGEMAP=0|1`, `DECOMMIT_BATCH`, `COW=0|1`,
//! and `MAX_INSTANCES`, which sizes the pool: 100 by default, a few under valgrind).
//! `ROTATE=K` adds a variant that reads through K separately loaded copies of the plugin
//! in turn (K modules, as K plugins would be), so with `WARM_SLOTS` (the server's
//! `plugin_warm_slots`) below K every call lands in a slot last used by another module.
//!
//! Beside the wall-clock percentiles each sequential variant prints the CPU time the
//! whole process spent per call (user and kernel, every thread: the SQLite workers and the
//! slot reset's system calls included), which a loaded machine disturbs far less.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth::db::grants::Grants;
use hearth::plugins::bindings;
use hearth::plugins::engine::Engine;
use hearth::plugins::loader;
use hearth::plugins::manifest::Limits;
use hearth::plugins::{SitePlugin, runtime};
use hearth::sites::Sites;

fn request(route: u32, params: Vec<String>, patient: Option<String>) -> bindings::Request {
    bindings::Request {
        route,
        method: bindings::Method::Get,
        path: "/patient".into(),
        params,
        query: Vec::new(),
        headers: Vec::new(),
        body: Vec::new(),
        caller: bindings::Caller {
            role: bindings::Role::User,
            subject: "00000000-0000-4000-8000-000000000001".into(),
            username: "admin".into(),
            client_id: "bench".into(),
            scopes: "user/patient.read".into(),
            patient,
        },
        base_url: "http://127.0.0.1/apis/bench/api".into(),
    }
}

/// A request for a native twin: the read of `params`, or (`list`) a page of 100.
fn native_request(
    site: &Arc<hearth::sites::Site>,
    params: Vec<String>,
    list: bool,
) -> hearth::api::NativeRequest {
    hearth::api::NativeRequest {
        site: site.clone(),
        params,
        principal: None,
        query: if list {
            vec![("_limit".into(), "100".into())]
        } else {
            Vec::new()
        },
        body: Default::default(),
        path: "/patient".into(),
        base_url: "http://127.0.0.1/apis/bench/api".into(),
    }
}

/// The plugin at `path`, loaded (a module of its own each time) and granted what it
/// declares, as a site would hold it.
async fn site_plugin(
    engine: &Engine,
    path: &std::path::Path,
    limits: Limits,
) -> anyhow::Result<SitePlugin> {
    let loaded = Arc::new(loader::load(engine, path).await?);
    let grants = Arc::new(
        Grants::new("patient", loaded.reads.clone(), loaded.writes.clone())
            .map_err(anyhow::Error::msg)?,
    );
    Ok(SitePlugin {
        loaded,
        grants,
        config: Arc::new(HashMap::new()),
        limits,
        permits: Arc::new(tokio::sync::Semaphore::new(limits.max_instances as usize)),
    })
}

/// Reads a size such as `4M`, `64K` or `0` from the environment.
fn env_size(name: &str) -> Option<usize> {
    let value = std::env::var(name).ok()?;
    let (digits, unit) = match value.as_bytes().last()? {
        b'K' | b'k' => (&value[..value.len() - 1], 1 << 10),
        b'M' | b'm' => (&value[..value.len() - 1], 1 << 20),
        _ => (&value[..], 1),
    };
    Some(digits.parse::<usize>().ok()? * unit)
}

/// The pool-reset settings: the server's, changed by the environment's knobs.
fn tuning() -> hearth::plugins::engine::PoolTuning {
    let mut tuning = hearth::plugins::engine::PoolTuning::default();
    if let Some(bytes) = env_size("KEEP_RESIDENT") {
        tuning.linear_memory_keep_resident = bytes;
    }
    if let Some(bytes) = env_size("TABLE_KEEP_RESIDENT") {
        tuning.table_keep_resident = bytes;
    }
    if let Some(batch) = env_size("DECOMMIT_BATCH") {
        tuning.decommit_batch_size = batch.max(1);
    }
    if let Ok(flag) = std::env::var("PAGEMAP") {
        tuning.pagemap_scan = flag != "0";
    }
    if let Ok(flag) = std::env::var("COW") {
        tuning.memory_init_cow = flag != "0";
    }
    if let Some(slots) = env_size("WARM_SLOTS") {
        tuning.max_unused_warm_slots = u32::try_from(slots).unwrap_or(u32::MAX);
    }
    tuning
}

/// CPU time of the whole process so far (every thread, user and kernel), in nanoseconds,
/// from `/proc/self/task/*/schedstat` (threads that have exited are not counted, so
/// differences are taken while the same threads run).
fn process_cpu_nanos() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| {
            let text = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum()
}

/// Process CPU µs per call since `start` (from [`process_cpu_nanos`]).
fn cpu_per_call(start: u64, iterations: usize) -> f64 {
    process_cpu_nanos().saturating_sub(start) as f64 / 1e3 / iterations.max(1) as f64
}

fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// Runs the benchmark on `WORKERS` tokio worker threads (default 2): `WORKERS=1` gives the
/// single-thread rate the two-thread one is compared with.
fn main() -> anyhow::Result<()> {
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?
        .block_on(bench(workers))
}

async fn bench(workers: usize) -> anyhow::Result<()> {
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = std::env::temp_dir().join(format!("hearth-bench-{}", std::process::id()));
    let sites = Sites::open(&dir).await?;
    let site = sites.create("bench", None).await?;
    let uuid = "01a22501-0000-4000-8000-000000000001";
    hearth::on_db!(&site.db, |pool| {
        sqlx::query("INSERT INTO patient_data (uuid, pid, pubpid, fname, lname, sex, \"DOB\", street, city) VALUES ($1, 1, '1', 'Ann', 'Smith', 'Female', '1990-02-03', '1 Main St', 'Springfield')")
            .bind(uuid)
            .execute(pool)
            .await?;
        // A page of 100 for the list variant.
        for i in 2..=101i64 {
            sqlx::query("INSERT INTO patient_data (uuid, pid, pubpid, fname, lname, sex, \"DOB\", street, city) VALUES ($1, $2, $3, 'Bo', 'Lee', 'Male', '1980-02-03', '2 Main St', 'Springfield')")
                .bind(format!("01a22501-0000-4000-8000-{i:012x}"))
                .bind(i)
                .bind(i.to_string())
                .execute(pool)
                .await?;
        }
    });
    let max_instances = env_size("MAX_INSTANCES").unwrap_or(100) as u32;
    let tuning = tuning();
    println!("pool: {max_instances} instances, {tuning:?}");
    let engine = Engine::with_tuning(&dir.join("cache"), max_instances, tuning)?;
    let path = std::path::Path::new(env!("HEARTH_PLUGIN_DIR")).join("patient.wasm");
    let mut limits = Limits::default();
    limits.max_instances = limits.max_instances.min(max_instances);
    let plugin = site_plugin(&engine, &path, limits).await?;
    let loaded = plugin.loaded.clone();
    let get_one = loaded
        .routes
        .iter()
        .find(|r| r.path == "/patient/:puuid" && r.method == http::Method::GET)
        .expect("route")
        .index;
    let list = loaded
        .routes
        .iter()
        .find(|r| {
            r.path == "/patient"
                && r.method == http::Method::GET
                && r.family == hearth::error::Family::Api
        })
        .expect("route")
        .index;
    let portal = loaded
        .routes
        .iter()
        .find(|r| r.path == "/patient" && r.family == hearth::error::Family::Portal)
        .expect("route")
        .index;

    println!(
        "{iterations} sequential calls per variant, fresh instance each (p50 / p99 µs, process CPU µs per call)"
    );
    // Instantiate only.
    let mut samples = Vec::with_capacity(iterations);
    let cpu = process_cpu_nanos();
    for _ in 0..iterations {
        let mut store =
            wasmtime::Store::new(&engine.wasmtime, hearth::plugins::host::State::describing());
        store.set_epoch_deadline(1_000_000);
        let started = Instant::now();
        let _instance = loaded
            .pre
            .instance_pre()
            .instantiate_async(&mut store)
            .await?;
        samples.push(started.elapsed());
        // The store, and with it the instance's pool slot, is released here.
        drop(store);
    }
    let per_call = cpu_per_call(cpu, iterations);
    let (p50, p99) = percentiles(samples);
    println!("instantiate only                         {p50:7.1} / {p99:7.1}   cpu {per_call:7.1}");

    for (name, req) in [
        (
            "instantiate + trivial call (no query)",
            request(portal, vec![], None),
        ),
        (
            "instantiate + GET patient (2 queries)",
            request(get_one, vec![uuid.into()], None),
        ),
        ("instantiate + GET list of 100 (2 queries)", {
            let mut list = request(list, vec![], None);
            list.query = vec![("_limit".into(), "100".into())];
            list
        }),
    ] {
        let mut samples = Vec::with_capacity(iterations);
        let cpu = process_cpu_nanos();
        for _ in 0..iterations {
            let started = Instant::now();
            let outcome = runtime::call(&engine, &site, &plugin, req.clone(), "bench", false)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            samples.push(started.elapsed());
            assert!(
                matches!(outcome.response.status, 200 | 404),
                "{} {}",
                outcome.response.status,
                String::from_utf8_lossy(&outcome.response.body)
            );
        }
        let per_call = cpu_per_call(cpu, iterations);
        let (p50, p99) = percentiles(samples);
        println!("{name:40} {p50:7.1} / {p99:7.1}   cpu {per_call:7.1}");
    }

    // The same read through K modules in turn: each call's module last ran K calls ago.
    if let Some(k) = env_size("ROTATE").filter(|k| *k > 0) {
        let mut copies = Vec::with_capacity(k);
        for _ in 0..k {
            copies.push(site_plugin(&engine, &path, limits).await?);
        }
        let req = request(get_one, vec![uuid.into()], None);
        // One round first, so each module has had a slot.
        for copy in &copies {
            runtime::call(&engine, &site, copy, req.clone(), "bench", false)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        let mut samples = Vec::with_capacity(iterations);
        let cpu = process_cpu_nanos();
        for i in 0..iterations {
            let started = Instant::now();
            let outcome =
                runtime::call(&engine, &site, &copies[i % k], req.clone(), "bench", false)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            samples.push(started.elapsed());
            assert_eq!(outcome.response.status, 200);
        }
        let per_call = cpu_per_call(cpu, iterations);
        let (p50, p99) = percentiles(samples);
        let name = format!("GET patient, {k} modules in turn");
        println!("{name:40} {p50:7.1} / {p99:7.1}   cpu {per_call:7.1}");
    }

    // The native twins of the same two reads, called the same way.
    for (name, list) in [
        ("native GET patient", false),
        ("native GET list of 100", true),
    ] {
        let mut samples = Vec::with_capacity(iterations);
        let cpu = process_cpu_nanos();
        for _ in 0..iterations {
            let started = Instant::now();
            let response = if list {
                (hearth::api::native::list_patients())(native_request(&site, vec![], true)).await
            } else {
                (hearth::api::native::get_patient())(native_request(
                    &site,
                    vec![uuid.into()],
                    false,
                ))
                .await
            }
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            samples.push(started.elapsed());
            assert_eq!(response.status, 200);
        }
        let per_call = cpu_per_call(cpu, iterations);
        let (p50, p99) = percentiles(samples);
        println!("{name:40} {p50:7.1} / {p99:7.1}   cpu {per_call:7.1}");
    }

    // Throughput with 32 requests in flight on 2 worker threads: the plugin path against
    // the native baseline doing the same SQL and JSON (no HTTP).
    let site_arc = site.clone();
    let plugin = Arc::new(plugin);
    let engine_arc = engine.clone();
    let seconds: u64 = std::env::var("SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let variants: Vec<&'static str> = match std::env::var("CONCURRENT").as_deref() {
        Ok("plugin") => vec!["plugin"],
        Ok("native") => vec!["native"],
        Ok("none") => Vec::new(),
        _ => vec!["plugin", "native", "plugin", "native"],
    };
    for variant in variants {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut tasks = Vec::new();
        let started = Instant::now();
        let cpu = process_cpu_nanos();
        for _ in 0..32 {
            let (site, plugin, engine, stop) = (
                site_arc.clone(),
                plugin.clone(),
                engine_arc.clone(),
                stop.clone(),
            );
            let req = request(get_one, vec![uuid.into()], None);
            tasks.push(tokio::spawn(async move {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if variant == "plugin" {
                        let outcome =
                            runtime::call(&engine, &site, &plugin, req.clone(), "bench", false)
                                .await
                                .unwrap();
                        assert_eq!(outcome.response.status, 200);
                    } else {
                        let response = (hearth::api::native::get_patient())(native_request(
                            &site,
                            vec![uuid.into()],
                            false,
                        ))
                        .await
                        .unwrap();
                        assert_eq!(response.status, 200);
                    }
                    n += 1;
                    tokio::task::yield_now().await;
                }
                n
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut total = 0;
        for task in tasks {
            total += task.await?;
        }
        let per_call = cpu_per_call(cpu, total as usize);
        println!(
            "32 in flight, {variant:6}, {workers} thread(s)    {:8.0} calls/s   cpu {per_call:7.1} µs per call",
            total as f64 / started.elapsed().as_secs_f64()
        );
    }
    sites.close().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
