//! FHIR read and search against the standard API's read of the same patients, in one run
//! on one seeded database (issue 15 "Benchmark"): `GET /fhir/Patient/:id`,
//! `GET /fhir/Observation?patient=X&category=vital-signs` and `GET /api/patient/:puuid`,
//! each request for the next of a thousand patients spread over the whole table.
//!
//! `CARGO_PROFILE_RELEASE_DEBUG=false cargo bench -p hearth-host --bench fhir`
//!
//! The database is seeded once with `hearth demo seed` (`PATIENTS`, default 100000) and
//! kept under `target/bench-fhir/` for the next run (delete the folder to seed again).
//! PostgreSQL runs too when `HEARTH_BENCH_POSTGRES_URL` (or `HEARTH_TEST_POSTGRES_URL`)
//! names a server: the bench makes the database `hearth_bench_fhir_<patients>` there.
//! Environment: `BACKENDS` (default `sqlite,postgres`), `CONNECTIONS` (default 16),
//! `SECONDS` per round (default 5), `ROUNDS` (default 2), `ROUTES` (default
//! `standard,read,search`: a subset, e.g. to profile one route). The routes' rounds
//! alternate; load comes from this process over 127.0.0.1 (keep-alive HTTP/1.1
//! connections). Targets: FHIR read ≥ 0.8 × the standard read's throughput; search
//! p99 ≤ 50 ms. The machine's load average is printed with the figures.

use std::sync::Arc;

use hearth::app::App;
use hearth::auth::tokens::{self, Grant, Role};
use hearth::config::Config;

#[path = "common/http_load.rs"]
mod http_load;
#[path = "common/seeded.rs"]
mod seeded;
use http_load::{Round, Target, env, load, percentile, summary};

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Opens (seeding on first use) the data folder of `backend` under `target/bench-fhir`,
/// starts the server on it and answers its address, a token and a thousand patients'
/// uuids.
async fn start(
    root: &std::path::Path,
    backend: &str,
    pg_url: Option<&str>,
    patients: u64,
) -> anyhow::Result<(std::net::SocketAddr, String, Vec<String>)> {
    let dir = seeded::seeded(root, backend, pg_url, patients).await?;
    let mut config = Config::new(&dir);
    config.listen = ([127, 0, 0, 1], 0).into();
    config.http = true;
    config.plugins_file = root.join("plugins.toml");
    let app = App::build(config).await?;
    let base = app.state.base_url.clone();
    let site = app
        .state
        .sites
        .get(seeded::SITE)
        .await
        .expect("the bench site");
    let step = (patients / 1000).max(1) as i64;
    let uuids: Vec<String> = hearth::on_db!(&site.db, |pool| {
        use sqlx::Row;
        sqlx::query(
            "SELECT CAST(uuid AS TEXT) AS uuid FROM patient_data WHERE id % $1 = 0 ORDER BY id LIMIT 1000",
        )
        .bind(step)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| row.get::<String, _>("uuid"))
        .collect()
    });
    let grant = Grant {
        client_id: "bench".into(),
        subject: "01a22501-0000-4000-8000-00000000beef".into(),
        role: Role::User,
        username: Some("admin".into()),
        acl_role: Some("admin".into()),
        scope: "api:oemr api:fhir user/patient.rs user/Patient.rs user/Observation.rs".into(),
        patient: None,
        context: serde_json::json!({}),
        lifetime: 3600,
    };
    let token = tokens::issue(&site, &base, &grant).await?.token;
    let addr = app.local_addr();
    tokio::spawn(app.run(std::future::pending()));
    Ok((addr, token, uuids))
}

fn main() -> anyhow::Result<()> {
    let backends = std::env::var("BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let (connections, seconds, rounds, patients) = (
        env("CONNECTIONS", 16),
        env("SECONDS", 5),
        env("ROUNDS", 2),
        env("PATIENTS", 100_000),
    );
    let pg_url = std::env::var("HEARTH_BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("HEARTH_TEST_POSTGRES_URL"))
        .ok();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    for backend in backends.split(',').map(str::trim) {
        let pg = match backend {
            "sqlite" => None,
            "postgres" => match &pg_url {
                Some(url) => Some(url.as_str()),
                None => {
                    println!("postgres: skipped (set HEARTH_BENCH_POSTGRES_URL)");
                    continue;
                }
            },
            other => anyhow::bail!("unknown backend {other}"),
        };
        let server_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (addr, token, uuids) = server_runtime.block_on(start(&root, backend, pg, patients))?;
        let paths = |make: &dyn Fn(&str) -> String| {
            Arc::new(
                uuids
                    .iter()
                    .map(|u| Target::get(make(u)))
                    .collect::<Vec<_>>(),
            )
        };
        let routes = std::env::var("ROUTES").unwrap_or_else(|_| "standard,read,search".into());
        let wanted: Vec<&str> = routes.split(',').map(str::trim).collect();
        let cases = [
            (
                "standard",
                "standard read",
                paths(&|u| format!("/apis/bench/api/patient/{u}")),
            ),
            (
                "read",
                "FHIR read",
                paths(&|u| format!("/apis/bench/fhir/Patient/{u}")),
            ),
            (
                "search",
                "FHIR search",
                paths(&|u| {
                    format!("/apis/bench/fhir/Observation?patient={u}&category=vital-signs")
                }),
            ),
        ];
        let cases: Vec<_> = cases
            .into_iter()
            .filter(|(key, _, _)| wanted.contains(key))
            .map(|(_, name, paths)| (name, paths))
            .collect();
        println!(
            "{backend}: {patients} patients, {} of them requested in turn; {connections} connections, \
             {rounds} rounds of {seconds} s per route, alternating; load average before: {}",
            uuids.len(),
            load_average()
        );
        for (_, paths) in &cases {
            load(addr, paths.clone(), token.clone(), connections, 1);
        }
        let mut results: Vec<Vec<Round>> = cases.iter().map(|_| Vec::new()).collect();
        for _ in 0..rounds {
            for (i, (_, paths)) in cases.iter().enumerate() {
                results[i].push(load(
                    addr,
                    paths.clone(),
                    token.clone(),
                    connections,
                    seconds,
                ));
            }
        }
        println!(
            "{:14} {:>9} {:>9} {:>9}",
            "route", "req/s", "p50 ms", "p99 ms"
        );
        let mut rps = Vec::new();
        let mut p99s = Vec::new();
        for ((name, _), rounds) in cases.iter().zip(&results) {
            let (per_second, errors, latencies) = summary(rounds);
            assert_eq!(errors, 0, "{name}: every request must answer 200");
            let (p50, p99) = (
                percentile(&latencies, 0.5) / 1000.0,
                percentile(&latencies, 0.99) / 1000.0,
            );
            println!("{name:14} {per_second:>9.0} {p50:>9.2} {p99:>9.2}");
            rps.push(per_second);
            p99s.push(p99);
        }
        if cases.len() == 3 {
            println!(
                "{backend}: FHIR read / standard read throughput {:.2} (target ≥ 0.8); search p99 {:.1} ms (target ≤ 50); load average after: {}",
                rps[1] / rps[0],
                p99s[2],
                load_average()
            );
        } else {
            println!(
                "{backend}: not every route ran, no target check; load average after: {}",
                load_average()
            );
        }
        drop(server_runtime);
    }
    Ok(())
}
