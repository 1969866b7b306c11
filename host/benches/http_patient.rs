//! The patient routes over HTTP, two ways in the same run on the same database: through
//! the patient plugin, and through native Rust twins doing the same SQL and JSON
//! (`hearth::api::native`; `tests/tests/native_baseline.rs` proves both answer the same
//! bytes and write the same rows). Both go through the same host pipeline (site, route,
//! token, scope, ACL, audit); only the handler differs, so the ratio is the cost of the
//! plugin seam. Routes: `read` (`GET /api/patient/:puuid`), `list` (`GET
//! /api/patient?_limit=100`), `create` (`POST /api/patient`, a new patient each time).
//!
//! `cargo bench -p hearth-host --features natives --bench http_patient`
//!
//! Environment: `ROUTES` (default `read,list,create`), `CONNECTIONS` (default 32),
//! `SECONDS` per round (default 5), `ROUNDS` (default 3), `PATIENTS` seeded (default
//! 1000), `PATHS` (default `plugin,native`; one alone for a profile of that path). Each
//! route's rounds alternate plugin and native. Load comes from this process on 127.0.0.1
//! (one client thread, the main one: keep-alive HTTP/1.1 connections), like `wrk -t1`.
//!
//! Beside the rates each round prints the CPU time spent per request by the server (every
//! thread but the main one: the two workers, the epoch ticker, SQLite's checkpoints) and by
//! the client (the main thread), from `/proc/self/task/*/schedstat`: on a machine whose
//! cores are shared, the server's CPU per request is the firmer figure of the two paths'
//! cost, and it does not assume the server had both cores. It also prints how many times
//! per request the server's threads were scheduled onto a core (each a wake-up or a
//! preemption), from the same file.

use std::collections::HashMap;
use std::sync::Arc;

use hearth::api::native::{self, NativeHandler};
use hearth::app::App;
use hearth::auth::tokens::{self, Grant, Role};
use hearth::config::Config;
use hearth::sites::Sites;

#[path = "common/http_load.rs"]
mod http_load;
use http_load::{Round, Target, env, load, percentile, summary};

/// CPU nanoseconds so far and times scheduled onto a core, of the main thread (the client)
/// and of every other thread (the server), from `/proc/self/task/*/schedstat` (its first
/// and third fields).
fn cpu_split() -> [u64; 4] {
    let main = std::process::id().to_string();
    let mut out = [0u64; 4];
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let fields: Vec<u64> = text
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        let (nanos, slices) = (fields.first().copied(), fields.get(2).copied());
        let at = if task.file_name().to_str() == Some(main.as_str()) {
            0
        } else {
            1
        };
        out[at] += nanos.unwrap_or(0);
        out[at + 2] += slices.unwrap_or(0);
    }
    out
}

/// One route under load: its name and the request each connection sends.
struct Case {
    name: &'static str,
    target: Arc<Vec<Target>>,
}

impl Case {
    fn new(name: &'static str, target: Target) -> Case {
        Case {
            name,
            target: Arc::new(vec![target]),
        }
    }
}

/// A new patient for `POST /api/patient`.
const NEW_PATIENT: &str = r#"{"fname":"Ann","lname":"Smith","sex":"Female","DOB":"1990-01-02","street":"1 Main St","city":"Springfield","state":"IL","postal_code":"62701","email":"ann@example.org","phone_home":"555-0100"}"#;

fn main() -> anyhow::Result<()> {
    let routes = std::env::var("ROUTES").unwrap_or_else(|_| "read,list,create".into());
    let paths = std::env::var("PATHS").unwrap_or_else(|_| "plugin,native".into());
    let paths: Vec<(&str, bool)> = ["plugin", "native"]
        .into_iter()
        .map(|name| (name, paths.split(',').any(|p| p.trim() == name)))
        .collect();
    let (connections, seconds, rounds, patients) = (
        env("CONNECTIONS", 32),
        env("SECONDS", 5),
        env("ROUNDS", 3),
        env("PATIENTS", 1000),
    );
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("hearth-bench-http-{}", std::process::id()));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();

    let (plugin_addr, native_addr, read, token) = server_runtime.block_on(async {
        let sites = Sites::open(&dir).await?;
        let site = sites.create("default", None).await?;
        hearth::on_db!(&site.db, |pool| {
            let mut tx = pool.begin().await?;
            for i in 1..=patients {
                sqlx::query("INSERT INTO patient_data (uuid, pid, pubpid, fname, lname, sex, \"DOB\", street, city, state, postal_code, email, phone_home) VALUES ($1, $2, $3, $4, $5, 'Female', '1980-05-06', '1 Main St', 'Springfield', 'IL', '62701', 'p@example.org', '555-0100')")
                    .bind(format!("01a22501-0000-4000-8000-{i:012x}"))
                    .bind(i as i64)
                    .bind(i.to_string())
                    .bind(format!("First{i}"))
                    .bind(format!("Last{i}"))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("UPDATE sequences SET value = $1 WHERE name = 'pid'")
                .bind(patients as i64)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        });
        let grant = Grant {
            client_id: "bench".into(),
            subject: "01a22501-0000-4000-8000-00000000beef".into(),
            role: Role::User,
            username: Some("admin".into()),
            acl_role: Some("admin".into()),
            scope: "api:oemr user/patient.crus".into(),
            patient: None,
            context: serde_json::json!({}),
            lifetime: 3600,
        };
        sites.close().await;

        let mut config = Config::new(&dir);
        config.listen = ([127, 0, 0, 1], 0).into();
        config.http = true;
        config.plugins_file = root.join("plugins.toml");
        let plugin_app = App::build(config.clone()).await?;
        let base = plugin_app.state.base_url.clone();
        let table = plugin_app.state.registry.table("default");
        let route = |path: &str, method: http::Method| {
            table
                .routes()
                .find(|b| b.plugin.loaded.name == "patient" && b.def().path == path && b.def().method == method)
                .unwrap_or_else(|| panic!("the patient plugin serves {method} {path}"))
                .def()
                .index
        };
        let mut natives: HashMap<(String, u32), NativeHandler> = HashMap::new();
        natives.insert(("patient".into(), route("/patient/:puuid", http::Method::GET)), native::get_patient());
        natives.insert(("patient".into(), route("/patient", http::Method::GET)), native::list_patients());
        natives.insert(("patient".into(), route("/patient", http::Method::POST)), native::create_patient());
        let site = plugin_app.state.sites.get("default").await.unwrap();
        let token = tokens::issue(&site, &base, &grant).await?.token;
        config.public_url = Some(base.clone());
        let native_app = App::build_with_natives(config, natives).await?;
        let (plugin_addr, native_addr) = (plugin_app.local_addr(), native_app.local_addr());
        tokio::spawn(plugin_app.run(std::future::pending()));
        tokio::spawn(native_app.run(std::future::pending()));
        let read = format!("/apis/default/api/patient/01a22501-0000-4000-8000-{:012x}", patients / 2);
        anyhow::Ok((plugin_addr, native_addr, read, token))
    })?;

    let cases = [
        Case::new("read", Target::get(read)),
        Case::new(
            "list",
            Target::get("/apis/default/api/patient?_limit=100".into()),
        ),
        Case::new(
            "create",
            Target {
                method: http::Method::POST,
                path: "/apis/default/api/patient".into(),
                body: Some(NEW_PATIENT),
                status: 201,
            },
        ),
    ];
    for case in cases {
        if !routes.split(',').any(|r| r.trim() == case.name) {
            continue;
        }
        let target = &case.target[0];
        println!(
            "{} {} ({}), {connections} connections, {rounds} rounds of {seconds} s per path, alternating; {patients} patients",
            target.method, target.path, case.name
        );
        let both = [("plugin", plugin_addr), ("native", native_addr)];
        let chosen: Vec<(&str, std::net::SocketAddr)> = both
            .into_iter()
            .filter(|(name, _)| paths.iter().any(|(p, on)| p == name && *on))
            .collect();
        // Warm the paths (compile caches, statement caches, pool slots).
        for (_, addr) in &chosen {
            load(*addr, case.target.clone(), token.clone(), connections, 1);
        }
        let mut results: HashMap<&str, Vec<Round>> = HashMap::new();
        // Per path: requests, and the client's and the server's CPU nanoseconds.
        let mut cpu: HashMap<&str, (u64, u64, u64)> = HashMap::new();
        // Per path: the server's times scheduled onto a core.
        let mut slices: HashMap<&str, u64> = HashMap::new();
        for _ in 0..rounds {
            for (name, addr) in &chosen {
                let before = cpu_split();
                let round = load(
                    *addr,
                    case.target.clone(),
                    token.clone(),
                    connections,
                    seconds,
                );
                let after = cpu_split();
                let (client, server) = (after[0] - before[0], after[1] - before[1]);
                let server_slices = after[3] - before[3];
                let per = |nanos: u64| nanos as f64 / 1e3 / round.requests.max(1) as f64;
                println!(
                    "  {name:6} {:8.0} req/s ({} requests, {} errors), CPU µs per request: server {:.1}, client {:.1}; server scheduled in {:.2} times per request",
                    round.requests as f64 / round.elapsed.as_secs_f64(),
                    round.requests,
                    round.errors,
                    per(server),
                    per(client),
                    server_slices as f64 / round.requests.max(1) as f64,
                );
                *slices.entry(name).or_default() += server_slices;
                let total = cpu.entry(name).or_default();
                total.0 += round.requests;
                total.1 += client;
                total.2 += server;
                results.entry(name).or_default().push(round);
            }
        }
        let mut by_path = HashMap::new();
        println!(
            "{:8} {:>10} {:>10} {:>10} {:>12} {:>12} {:>10}",
            "path", "req/s", "p50 µs", "p99 µs", "server CPU", "client CPU", "sched-ins"
        );
        for (name, _) in &chosen {
            let (rps, errors, latencies) = summary(&results[name]);
            assert_eq!(errors, 0, "every request must succeed");
            let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
            let (requests, client, server) = cpu[name];
            let per = |nanos: u64| nanos as f64 / 1e3 / requests.max(1) as f64;
            println!(
                "{name:8} {rps:>10.0} {p50:>10.0} {p99:>10.0} {:>9.1} µs {:>9.1} µs {:>10.2}",
                per(server),
                per(client),
                slices[name] as f64 / requests.max(1) as f64
            );
            by_path.insert(*name, (rps, p99, per(server)));
        }
        if let (Some(plugin), Some(native)) = (by_path.get("plugin"), by_path.get("native")) {
            println!(
                "{}: plugin / native throughput {:.3}, p99 {:.2}, server CPU per request {:.2}",
                case.name,
                plugin.0 / native.0,
                plugin.1 / native.1,
                plugin.2 / native.2
            );
        }
    }
    drop(server_runtime);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
