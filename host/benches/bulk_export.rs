//! Bulk Data export of a seeded site, end to end: the system `$export` kick-off, status
//! polls until the manifest, and the files on disk; resources per second, and the growth
//! of the process's peak RSS during the export. The baseline, in the same run, is what a
//! client paging through every type with FHIR searches (`_count=200`, following `next`
//! links) reads per second from the same server; both must count the same resources.
//!
//! `cargo bench -p hearth-host --bench bulk_export` (`PATIENTS=2000`, `FILE=100000`;
//! `DATABASE_URL=postgres://…/db` for an empty PostgreSQL database instead of SQLite).
//! `PATIENTS=500,2000,8000` grows the site to each size in turn and exports it at each
//! (the RSS growth against the export's size); `BASELINE=count` compares the export's
//! counts with each type's `_summary=count` total instead of paging every search.
//! `KEPT=sqlite` or `KEPT=postgres` (with `HEARTH_BENCH_POSTGRES_URL` naming the server)
//! exports the site kept under `target/bench-fhir/` for `PATIENTS` (one size), seeded
//! there once and shared with the FHIR bench (`common/seeded.rs`): how the 100,000
//! patient figures are measured without seeding each time (the baseline's searches there
//! get a minute of CPU each: a count of four million Provenance rows is past the plugins'
//! 2 s). `TYPES=A,B` exports only those types; `HEARTH_LOG=info` prints each type's
//! export time; `RUNS=2` exports twice in the same server (the first run warms the
//! plugin pool, whose slots keep up to 4 MiB each resident; the last run is reported).
//! `WARM_SLOTS=N` sets the server's `plugin_warm_slots`; `PARALLEL_TYPES=N` the site's
//! `bulk.parallel_types`; `PAGE=N` its `bulk.page_resources`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hearth::app::App;
use hearth::auth::tokens::{self, Grant, Role};
use hearth::config::Config;
use hearth::sites::Sites;
use serde_json::{Value, json};

#[path = "common/seeded.rs"]
mod seeded;

/// The server's allocator (host/src/main.rs), so the RSS figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `/proc/self/status` figure, in KiB.
fn status_kib(name: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Each mapping of the process (`/proc/self/smaps`: address range and path) with its size
/// and resident KiB.
fn mappings() -> BTreeMap<String, (u64, u64)> {
    let mut out = BTreeMap::new();
    let text = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let first = line.split_whitespace().next().unwrap_or_default();
        if first.contains('-') && !first.ends_with(':') {
            let path = line.split_whitespace().nth(5).unwrap_or("[anonymous]");
            let name = format!("{first} {path}");
            out.insert(name.clone(), (0, 0));
            current = Some(name);
        } else if let Some(name) = &current {
            let value = || {
                line.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if let Some(entry) = out.get_mut(name) {
                match first {
                    "Size:" => entry.0 = value(),
                    "Rss:" => entry.1 = value(),
                    _ => {}
                }
            }
        }
    }
    out
}

/// Prints the mappings whose resident memory grew most between `before` and now.
fn print_growth(before: &BTreeMap<String, (u64, u64)>) {
    let after = mappings();
    let mut grown: Vec<(i64, &String, u64)> = after
        .iter()
        .map(|(name, &(size, rss))| {
            let was = before.get(name).map_or(0, |&(_, rss)| rss);
            (rss as i64 - was as i64, name, size)
        })
        .collect();
    grown.sort_by_key(|g| std::cmp::Reverse(g.0));
    let total: i64 = grown.iter().map(|g| g.0).sum();
    eprintln!(
        "resident growth over the export: {:.1} MiB; largest:",
        total as f64 / 1024.0
    );
    for (delta, name, size) in grown.iter().take(40) {
        eprintln!(
            "  {:+.1} MiB in {name} ({:.0} MiB mapped)",
            *delta as f64 / 1024.0,
            *size as f64 / 1024.0
        );
    }
}

/// Runs one system export to its manifest: the resources per type, the time, and the
/// growth of the process's peak RSS during it (over the RSS just before).
async fn export(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    types: Option<&str>,
) -> anyhow::Result<(BTreeMap<String, u64>, Duration, u64, u64)> {
    // Peak RSS is reset first (`/proc/self/clear_refs`), so its growth is the export's
    // alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kib("VmRSS:");
    let maps_before = mappings();
    // SQLite's own heap (its page caches and prepared statements).
    let sqlite_before = hearth::db::heap::used();
    let started = Instant::now();
    let kick_off = client
        .get(match types {
            Some(types) => format!("{base}/$export?_type={types}"),
            None => format!("{base}/$export"),
        })
        .bearer_auth(token)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await?;
    anyhow::ensure!(kick_off.status() == 202, "kick-off: {}", kick_off.status());
    let status_url = kick_off.headers()["content-location"].to_str()?.to_owned();
    let manifest: Value = loop {
        let reply = client.get(&status_url).bearer_auth(token).send().await?;
        match reply.status().as_u16() {
            200 => break reply.json().await?,
            202 | 429 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => anyhow::bail!("status {other}: {}", reply.text().await?),
        }
    };
    let export_time = started.elapsed();
    let peak = status_kib("VmHWM:");
    let sqlite_used = hearth::db::heap::used();
    print_growth(&maps_before);
    eprintln!(
        "SQLite heap: {:.1} MiB before, {:.1} MiB after the export",
        sqlite_before as f64 / 1048576.0,
        sqlite_used as f64 / 1048576.0,
    );
    let mut exported: BTreeMap<String, u64> = BTreeMap::new();
    for file in manifest["output"].as_array().into_iter().flatten() {
        *exported
            .entry(file["type"].as_str().unwrap_or_default().to_owned())
            .or_default() += file["count"].as_u64().unwrap_or(0);
    }
    // What the export could not do (a page whose plugin call failed) is printed.
    for file in manifest["error"].as_array().into_iter().flatten() {
        let url = file["url"].as_str().unwrap_or_default();
        let text = client
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .text()
            .await?;
        eprintln!("export error file {url}:\n{text}");
    }
    // The job's files are removed, so the next size starts from the same disk.
    let _ = client.delete(&status_url).bearer_auth(token).send().await?;
    Ok((
        exported,
        export_time,
        peak.saturating_sub(rss_before),
        rss_before,
    ))
}

/// What FHIR searches find of each type: every page read (`pages`, `_count=200`,
/// following `next` links) or only each type's `_summary=count` total (`count`).
async fn searched(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    types: impl Iterator<Item = &String>,
    pages: bool,
) -> anyhow::Result<BTreeMap<String, u64>> {
    let mut searched: BTreeMap<String, u64> = BTreeMap::new();
    for t in types {
        if !pages {
            let page: Value = client
                .get(format!("{base}/{t}?_summary=count"))
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            anyhow::ensure!(page["total"].is_u64(), "{t}?_summary=count: {page}");
            searched.insert(t.clone(), page["total"].as_u64().unwrap_or(0));
            continue;
        }
        let mut url = format!("{base}/{t}?_count=200&_total=none");
        loop {
            let page: Value = client
                .get(&url)
                .bearer_auth(token)
                .send()
                .await?
                .json()
                .await?;
            *searched.entry(t.clone()).or_default() +=
                page["entry"].as_array().map_or(0, Vec::len) as u64;
            let next = page["link"]
                .as_array()
                .and_then(|links| links.iter().find(|l| l["relation"] == "next"))
                .and_then(|l| l["url"].as_str())
                .map(str::to_owned);
            match next {
                Some(next) => url = next,
                None => break,
            }
        }
    }
    Ok(searched)
}

/// A copy of the plugins file `from` (in `dir`) whose every plugin may take a minute of
/// time and CPU per call.
fn generous_limits(from: &Path, dir: &Path) -> anyhow::Result<std::path::PathBuf> {
    let text = std::fs::read_to_string(from)?;
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        let plugin = line.starts_with("[plugins.") && !line[9..].contains('.');
        if plugin {
            out.push_str("timeout_ms = 60000\ncpu_ms = 60000\n");
        }
    }
    let path = dir.join("plugins-bench.toml");
    std::fs::write(&path, out)?;
    Ok(path)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    // The allocator's settings, first, as the server's `main` sets them.
    hearth::allocator::tune();
    // `PATIENTS=500,2000,8000`: the site grows to each size in turn (the seed adds the
    // difference) and is exported at each.
    // The server's log (`HEARTH_LOG=info` shows each type's export time).
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HEARTH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let sizes: Vec<u64> = std::env::var("PATIENTS")
        .unwrap_or_else(|_| "2000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    anyhow::ensure!(
        !sizes.is_empty() && sizes.windows(2).all(|w| w[0] < w[1]),
        "PATIENTS is one size or growing sizes (500,2000,8000)"
    );
    let file_resources: u64 = env_or("FILE", 100_000);
    let runs: u32 = env_or::<u32>("RUNS", 1).max(1);
    // `BASELINE=pages` (the default) pages through every type with FHIR searches and
    // times it; `BASELINE=count` only compares each type's `_summary=count` total (for
    // sizes where paging every search would take longer than the export).
    let pages = std::env::var("BASELINE").map_or(true, |b| b != "count");
    let database_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let kept = std::env::var("KEPT").ok().filter(|k| !k.is_empty());
    // `TYPES=Observation,Provenance`: export only these types.
    let types = std::env::var("TYPES").ok().filter(|t| !t.is_empty());
    let root = std::env::temp_dir().join(format!("hearth-bench-bulk-{}", std::process::id()));
    let (data, site_name) = match kept.as_deref() {
        Some(backend) => {
            anyhow::ensure!(sizes.len() == 1, "KEPT exports one size (PATIENTS=100000)");
            let admin = match backend {
                "sqlite" => None,
                "postgres" => Some(
                    std::env::var("HEARTH_BENCH_POSTGRES_URL")
                        .or_else(|_| std::env::var("HEARTH_TEST_POSTGRES_URL"))
                        .map_err(|_| {
                            anyhow::anyhow!("KEPT=postgres needs HEARTH_BENCH_POSTGRES_URL")
                        })?,
                ),
                other => anyhow::bail!("KEPT is sqlite or postgres, not {other}"),
            };
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let dir = seeded::seeded(&workspace, backend, admin.as_deref(), sizes[0]).await?;
            (dir, seeded::SITE)
        }
        None => {
            let data = root.join("data");
            let sites = Sites::open(&data).await?;
            sites.create("default", database_url.as_deref()).await?;
            sites.close().await;
            (data, "default")
        }
    };
    let mut config = Config::new(&data);
    config.listen = ([127, 0, 0, 1], 0).into();
    config.http = true;
    // `PLUGINS=file.toml`: another plugins file (an earlier build's plugins, to compare).
    config.plugins_file = std::env::var_os("PLUGINS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins.toml"),
        Into::into,
    );
    if kept.is_some() && std::env::var_os("PLUGINS").is_none() {
        // The baseline's own searches on the large kept site: a `_summary=count` of
        // Provenance at 100,000 patients reads four million rows, past the plugins'
        // default 2 s of CPU. They get a minute each (the export's calls already get
        // `bulk.call_seconds`); nothing else differs from plugins.toml.
        config.plugins_file = generous_limits(&config.plugins_file, &data)?;
    }
    config.cache_dir =
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache"));
    config.max_instances = 64;
    if let Some(slots) = std::env::var("WARM_SLOTS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.plugin_warm_slots = slots;
    }
    config.watch_plugins = false;
    let app = App::build(config).await?;
    let state = app.state.clone();
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let site = state.sites.get(site_name).await.expect("the site exists");
    // A kept site may hold the jobs of a run that was stopped: a job left running would
    // be resumed by this server and share its cores with the export measured.
    if kept.is_some() {
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("DELETE FROM bulk_jobs").execute(pool).await?;
        });
        let _ = std::fs::remove_dir_all(data.join("bulk"));
    }
    hearth::oauth::settings::set(&site, "bulk.file_resources", &file_resources.to_string()).await?;
    hearth::oauth::settings::set(&site, "bulk.retry_after_seconds", "1").await?;
    if let Ok(parallel) = std::env::var("PARALLEL_TYPES") {
        hearth::oauth::settings::set(&site, "bulk.parallel_types", &parallel).await?;
    }
    if let Ok(page) = std::env::var("PAGE") {
        hearth::oauth::settings::set(&site, "bulk.page_resources", &page).await?;
    }
    let grant = Grant {
        client_id: "bench".into(),
        subject: hearth::auth::users::system_user(&site).await?,
        role: Role::System,
        username: None,
        acl_role: None,
        scope: "system/*.read".into(),
        patient: None,
        context: json!({}),
        lifetime: 3600,
    };
    let token = tokens::issue(&site, &state.base_url, &grant).await?.token;
    let client = reqwest::Client::new();
    let base = format!("{}/apis/{site_name}/fhir", state.base_url);
    println!(
        "database: {}",
        match (&kept, &database_url) {
            (Some(kept), _) => kept.as_str(),
            (None, Some(_)) => "postgres",
            (None, None) => "sqlite",
        }
    );

    // Patients the site holds (a kept site is seeded already).
    let mut grown = if kept.is_some() { sizes[0] } else { 0 };
    let mut growths = Vec::new();
    for (round, &patients) in sizes.iter().enumerate() {
        if patients > grown {
            let seeding = Instant::now();
            let options = hearth_demo::SeedOptions {
                patients: patients - grown,
                seed: 1 + round as u64,
                batch: 500,
            };
            hearth::cli::seed_demo(&site, &options, |_, _| {}).await?;
            grown = patients;
            eprintln!(
                "seeded {patients} patients in {:.1} s",
                seeding.elapsed().as_secs_f64()
            );
        }

        // `RUNS=2`: the export again in the same server; the first one also warms the
        // plugin pool (each slot a plugin used keeps up to 4 MiB of its memory resident,
        // `linear_memory_keep_resident`), the next ones show what an export itself grows.
        let mut run = 1;
        let (exported, export_time, growth, rss_before) = loop {
            let measured = export(&client, &base, &token, types.as_deref()).await?;
            if run == runs {
                break measured;
            }
            let (exported, time, growth, rss) = &measured;
            let total: u64 = exported.values().sum();
            println!(
                "export run {run}: {:.2} s, {:.0} resources/s; peak RSS growth {:.1} MiB (RSS before {:.1} MiB)",
                time.as_secs_f64(),
                total as f64 / time.as_secs_f64(),
                *growth as f64 / 1024.0,
                *rss as f64 / 1024.0,
            );
            if kept.is_some() {
                let _ = std::fs::remove_dir_all(data.join("bulk"));
            }
            run += 1;
        };
        let total: u64 = exported.values().sum();
        growths.push((total, growth));

        let started = Instant::now();
        let searched = searched(&client, &base, &token, exported.keys(), pages).await?;
        let search_time = started.elapsed();

        println!("patients seeded: {patients}; resources exported: {total}");
        for (t, n) in &exported {
            println!(
                "  {t}: {n} exported, {} by search",
                searched.get(t).copied().unwrap_or(0)
            );
        }
        println!(
            "export: {:.2} s, {:.0} resources/s; peak RSS growth {:.1} MiB (RSS before {:.1} MiB)",
            export_time.as_secs_f64(),
            total as f64 / export_time.as_secs_f64(),
            growth as f64 / 1024.0,
            rss_before as f64 / 1024.0,
        );
        if pages {
            println!(
                "baseline, paging FHIR searches: {:.2} s, {:.0} resources/s",
                search_time.as_secs_f64(),
                searched.values().sum::<u64>() as f64 / search_time.as_secs_f64(),
            );
        } else {
            println!("baseline: each type's _summary=count total (searches not paged)");
        }
        anyhow::ensure!(exported == searched, "the export and the searches disagree");
    }
    if let (Some(&(small, first)), Some(&(large, last))) = (growths.first(), growths.last()) {
        println!(
            "peak RSS growth: {:.1} MiB at {small} resources, {:.1} MiB at {large} ({:.1}x the resources)",
            first as f64 / 1024.0,
            last as f64 / 1024.0,
            large as f64 / small.max(1) as f64,
        );
    }

    let _ = stop_server.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
