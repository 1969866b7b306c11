//! Bulk Data export of a seeded site, end to end: the system `$export` kick-off, status
//! polls until the manifest, and the files on disk; resources per second, and the growth
//! of the process's peak RSS during the export. The baseline, in the same run, is what a
//! client paging through every type with FHIR searches (`_count=200`, following `next`
//! links) reads per second from the same server; both must count the same resources.
//!
//! `cargo bench -p hearth-host --bench bulk_export` (`PATIENTS=2000`, `FILE=100000`;
//! `DATABASE_URL=postgres://…/db` for an empty PostgreSQL database instead of SQLite).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hearth::app::App;
use hearth::auth::tokens::{self, Grant, Role};
use hearth::config::Config;
use hearth::sites::Sites;
use serde_json::{Value, json};

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let patients: u64 = env_or("PATIENTS", 2000);
    let file_resources: u64 = env_or("FILE", 100_000);
    let database_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty());
    let root = std::env::temp_dir().join(format!("hearth-bench-bulk-{}", std::process::id()));
    let data = root.join("data");
    let sites = Sites::open(&data).await?;
    sites.create("default", database_url.as_deref()).await?;
    sites.close().await;
    let mut config = Config::new(&data);
    config.listen = ([127, 0, 0, 1], 0).into();
    config.http = true;
    config.plugins_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins.toml");
    config.cache_dir =
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache"));
    config.max_instances = 64;
    config.watch_plugins = false;
    let app = App::build(config).await?;
    let state = app.state.clone();
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));
    let site = state.sites.get("default").await.expect("the site exists");

    let seeding = Instant::now();
    let options = hearth_demo::SeedOptions {
        patients,
        seed: 1,
        batch: 500,
    };
    hearth::cli::seed_demo(&site, &options, |_, _| {}).await?;
    eprintln!(
        "seeded {patients} patients in {:.1} s",
        seeding.elapsed().as_secs_f64()
    );
    hearth::oauth::settings::set(&site, "bulk.file_resources", &file_resources.to_string()).await?;
    hearth::oauth::settings::set(&site, "bulk.retry_after_seconds", "1").await?;
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
    let base = format!("{}/apis/default/fhir", state.base_url);

    // The export. Peak RSS is reset first (`/proc/self/clear_refs`), so its growth is the
    // export's alone.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let kick_off = client
        .get(format!("{base}/$export"))
        .bearer_auth(&token)
        .header("accept", "application/fhir+json")
        .header("prefer", "respond-async")
        .send()
        .await?;
    anyhow::ensure!(kick_off.status() == 202, "kick-off: {}", kick_off.status());
    let status_url = kick_off.headers()["content-location"].to_str()?.to_owned();
    let manifest: Value = loop {
        let reply = client.get(&status_url).bearer_auth(&token).send().await?;
        match reply.status().as_u16() {
            200 => break reply.json().await?,
            202 | 429 => tokio::time::sleep(Duration::from_millis(100)).await,
            other => anyhow::bail!("status {other}: {}", reply.text().await?),
        }
    };
    let export_time = started.elapsed();
    let peak = status_kib("VmHWM:");
    let mut exported: BTreeMap<String, u64> = BTreeMap::new();
    for file in manifest["output"].as_array().into_iter().flatten() {
        *exported
            .entry(file["type"].as_str().unwrap_or_default().to_owned())
            .or_default() += file["count"].as_u64().unwrap_or(0);
    }
    let total: u64 = exported.values().sum();

    // The baseline: the same resources read by paging FHIR searches.
    let started = Instant::now();
    let mut searched: BTreeMap<String, u64> = BTreeMap::new();
    for t in exported.keys() {
        let mut url = format!("{base}/{t}?_count=200&_total=none");
        loop {
            let page: Value = client
                .get(&url)
                .bearer_auth(&token)
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
    let search_time = started.elapsed();

    println!(
        "database: {}",
        if database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    );
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
        peak.saturating_sub(rss_before) as f64 / 1024.0,
        rss_before as f64 / 1024.0,
    );
    println!(
        "baseline, paging FHIR searches: {:.2} s, {:.0} resources/s",
        search_time.as_secs_f64(),
        searched.values().sum::<u64>() as f64 / search_time.as_secs_f64(),
    );
    anyhow::ensure!(exported == searched, "the export and the searches disagree");

    let _ = stop_server.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
