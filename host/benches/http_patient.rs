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
//! 1000). Each route's rounds alternate plugin and native. Load comes from this process
//! on 127.0.0.1 (one client thread, keep-alive HTTP/1.1 connections), like `wrk -t1`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hearth::api::native::{self, NativeHandler};
use hearth::app::App;
use hearth::auth::tokens::{self, Grant, Role};
use hearth::config::Config;
use hearth::sites::Sites;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Round {
    requests: u64,
    elapsed: Duration,
    latencies: Vec<u32>,
    errors: u64,
}

/// One route under load: what each request sends and the status it must answer.
struct Case {
    name: &'static str,
    method: http::Method,
    path: String,
    body: Option<&'static str>,
    status: u16,
}

/// A new patient for `POST /api/patient`.
const NEW_PATIENT: &str = r#"{"fname":"Ann","lname":"Smith","sex":"Female","DOB":"1990-01-02","street":"1 Main St","city":"Springfield","state":"IL","postal_code":"62701","email":"ann@example.org","phone_home":"555-0100"}"#;

/// Drives `connections` keep-alive connections with `case` for `seconds`.
fn load(
    addr: std::net::SocketAddr,
    case: Arc<Case>,
    token: String,
    connections: u64,
    seconds: u64,
) -> Round {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..connections {
            let (case, token, stop) = (case.clone(), token.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                stream.set_nodelay(true).unwrap();
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                        .await
                        .unwrap();
                tokio::spawn(connection);
                let (mut latencies, mut errors) = (Vec::new(), 0u64);
                while !stop.load(Ordering::Relaxed) {
                    let mut request = hyper::Request::builder()
                        .method(case.method.clone())
                        .uri(&case.path)
                        .header("host", "127.0.0.1")
                        .header("authorization", format!("Bearer {token}"));
                    if case.body.is_some() {
                        request = request.header("content-type", "application/json");
                    }
                    let request = request
                        .body(Full::new(Bytes::from_static(
                            case.body.unwrap_or_default().as_bytes(),
                        )))
                        .unwrap();
                    let sent = Instant::now();
                    let response = sender.send_request(request).await.unwrap();
                    let ok = response.status() == case.status;
                    let _ = response.into_body().collect().await.unwrap();
                    latencies.push(sent.elapsed().as_micros() as u32);
                    errors += u64::from(!ok);
                }
                (latencies, errors)
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let elapsed = started.elapsed();
        let mut round = Round {
            requests: 0,
            elapsed,
            latencies: Vec::new(),
            errors: 0,
        };
        for task in tasks {
            let (latencies, errors) = task.await.unwrap();
            round.requests += latencies.len() as u64;
            round.latencies.extend(latencies);
            round.errors += errors;
        }
        round
    })
}

fn percentile(sorted: &[u32], q: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * q) as usize] as f64
}

fn main() -> anyhow::Result<()> {
    let routes = std::env::var("ROUTES").unwrap_or_else(|_| "read,list,create".into());
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
        Case {
            name: "read",
            method: http::Method::GET,
            path: read,
            body: None,
            status: 200,
        },
        Case {
            name: "list",
            method: http::Method::GET,
            path: "/apis/default/api/patient?_limit=100".into(),
            body: None,
            status: 200,
        },
        Case {
            name: "create",
            method: http::Method::POST,
            path: "/apis/default/api/patient".into(),
            body: Some(NEW_PATIENT),
            status: 201,
        },
    ];
    for case in cases {
        if !routes.split(',').any(|r| r.trim() == case.name) {
            continue;
        }
        let case = Arc::new(case);
        println!(
            "{} {} ({}), {connections} connections, {rounds} rounds of {seconds} s per path, alternating; {patients} patients",
            case.method, case.path, case.name
        );
        // Warm both paths (compile caches, statement caches, pool slots).
        load(plugin_addr, case.clone(), token.clone(), connections, 1);
        load(native_addr, case.clone(), token.clone(), connections, 1);
        let mut results: HashMap<&str, Vec<Round>> = HashMap::new();
        for _ in 0..rounds {
            for (name, addr) in [("plugin", plugin_addr), ("native", native_addr)] {
                let round = load(addr, case.clone(), token.clone(), connections, seconds);
                println!(
                    "  {name:6} {:8.0} req/s ({} requests, {} errors)",
                    round.requests as f64 / round.elapsed.as_secs_f64(),
                    round.requests,
                    round.errors
                );
                results.entry(name).or_default().push(round);
            }
        }
        let mut summary = HashMap::new();
        println!(
            "{:8} {:>10} {:>10} {:>10}",
            "path", "req/s", "p50 µs", "p99 µs"
        );
        for name in ["native", "plugin"] {
            let rounds = &results[name];
            let requests: u64 = rounds.iter().map(|r| r.requests).sum();
            let seconds: f64 = rounds.iter().map(|r| r.elapsed.as_secs_f64()).sum();
            let errors: u64 = rounds.iter().map(|r| r.errors).sum();
            assert_eq!(errors, 0, "every request must succeed");
            let mut latencies: Vec<u32> = rounds
                .iter()
                .flat_map(|r| r.latencies.iter().copied())
                .collect();
            latencies.sort_unstable();
            let rps = requests as f64 / seconds;
            let (p50, p99) = (percentile(&latencies, 0.5), percentile(&latencies, 0.99));
            println!("{name:8} {rps:>10.0} {p50:>10.0} {p99:>10.0}");
            summary.insert(name, (rps, p99));
        }
        println!(
            "{}: plugin / native throughput {:.3}, p99 {:.2}",
            case.name,
            summary["plugin"].0 / summary["native"].0,
            summary["plugin"].1 / summary["native"].1
        );
    }
    drop(server_runtime);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
