//! Hot reload under load, end to end over HTTP: how long from a plugin file written to the
//! new version serving, and the request rate while the file is replaced again and again
//! compared with no reloads.
//!
//! `cargo bench -p hearth-host --bench reload` (`SECONDS=5 CLIENTS=4 SWAP_MS=250`)

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hearth::app::App;
use hearth::auth::tokens::{self, Grant, Role};
use hearth::cli::{UserAddArgs, add_user};
use hearth::config::Config;
use hearth::sites::Sites;
use serde_json::json;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn replace(dir: &Path, bytes: &[u8]) {
    let temp = dir.join(".patient.wasm.tmp");
    std::fs::write(&temp, bytes).expect("writing the plugin");
    std::fs::rename(&temp, dir.join("patient.wasm")).expect("placing the plugin");
}

/// 1 or 2: which version answered.
fn version(body: &str) -> u32 {
    if body.contains("\"plugin_version\"") {
        2
    } else {
        1
    }
}

/// Requests per second over `seconds` with `clients` clients; failures counted.
async fn drive(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    clients: usize,
    seconds: u64,
) -> (f64, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, url, token) = (client.clone(), url.to_owned(), token.to_owned());
        let (stop, done, failed) = (stop.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let ok = match client.get(&url).bearer_auth(&token).send().await {
                    Ok(response) => response.status() == 200 && response.text().await.is_ok(),
                    Err(_) => false,
                };
                if ok { &done } else { &failed }.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        let _ = task.await;
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (rate, failed.load(Ordering::Relaxed))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let seconds: u64 = env_or("SECONDS", 5);
    let clients: usize = env_or("CLIENTS", 4);
    let swap_ms: u64 = env_or("SWAP_MS", 250);
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/plugins/dist");
    let v1 = std::fs::read(dist.join("patient.wasm"))?;
    let v2 = std::fs::read(dist.join("patient-v2.wasm"))?;

    let root = std::env::temp_dir().join(format!("hearth-bench-reload-{}", std::process::id()));
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    replace(&plugins, &v1);
    let manifest = root.join("plugins.toml");
    std::fs::write(
        &manifest,
        format!(
            "dir = {:?}\n[plugins.patient]\nfile = \"patient.wasm\"\n[sites.\"*\"]\nplugins = [\"patient\"]\n",
            plugins.display().to_string()
        ),
    )?;
    let data = root.join("data");
    let sites = Sites::open(&data).await?;
    sites.create("default", None).await?;
    sites.close().await;
    let mut config = Config::new(&data);
    config.listen = ([127, 0, 0, 1], 0).into();
    config.http = true;
    config.plugins_file = manifest;
    config.cache_dir = Some(root.join("cache"));
    config.max_instances = 64;
    let app = App::build(config).await?;
    let state = app.state.clone();
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async {
        let _ = stopped.await;
    }));

    let site = state.sites.get("default").await.expect("the site exists");
    let args = UserAddArgs {
        site: "default".into(),
        username: "admin".into(),
        password_stdin: false,
        role: "admin".into(),
        fname: "Bench".into(),
        lname: "Admin".into(),
        npi: String::new(),
    };
    let uuid = add_user(&site, &args, "correct horse battery").await?;
    let grant = Grant {
        client_id: "bench".into(),
        subject: uuid,
        role: Role::User,
        username: Some("admin".into()),
        acl_role: Some("admin".into()),
        scope: "openid api:oemr user/patient.cruds".into(),
        patient: None,
        context: json!({}),
        lifetime: 3600,
    };
    let token = tokens::issue(&site, &state.base_url, &grant).await?.token;
    let client = reqwest::Client::new();
    let url = format!("{}/apis/default/api/patient", state.base_url);
    for name in ["Ann", "Bob", "Cy"] {
        let response = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({"fname": name, "lname": "Bench", "sex": "Female", "DOB": "1980-01-02"}))
            .send()
            .await?;
        anyhow::ensure!(response.status() == 201, "creating a patient failed");
    }

    // Cold: the first load of version 2 compiles it (then it is cached by content hash).
    let mut latencies = Vec::new();
    let swap_to = |bytes: &[u8], want: u32| {
        let (client, url, token) = (client.clone(), url.clone(), token.clone());
        let bytes = bytes.to_vec();
        let plugins = plugins.clone();
        async move {
            let written = Instant::now();
            replace(&plugins, &bytes);
            loop {
                let body = client
                    .get(&url)
                    .bearer_auth(&token)
                    .send()
                    .await?
                    .text()
                    .await?;
                if version(&body) == want {
                    return anyhow::Ok(written.elapsed());
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
    };
    let cold = swap_to(&v2, 2).await?;
    swap_to(&v1, 1).await?;
    for round in 0..20 {
        let (bytes, want) = if round % 2 == 0 { (&v2, 2) } else { (&v1, 1) };
        latencies.push(swap_to(bytes, want).await?);
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;

    // The same version with a custom section appended: other bytes, same code, so the
    // rates below compare serving with and without reloads at equal cost per request.
    let mut v1b = v1.clone();
    let name = b"hearth-bench";
    v1b.extend_from_slice(&[0, (1 + name.len() + 1) as u8, name.len() as u8]);
    v1b.extend_from_slice(name);
    v1b.push(1);
    let serving = |bytes: &[u8]| {
        let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes));
        let state = state.clone();
        async move {
            while !state
                .registry
                .statuses("default")
                .iter()
                .any(|p| p.hash.as_deref() == Some(hash.as_str()))
            {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    replace(&plugins, &v1b);
    serving(&v1b).await;
    replace(&plugins, &v1);
    serving(&v1).await;

    let (quiet_rate, quiet_failed) = drive(&client, &url, &token, clients, seconds).await;
    let swapping = Arc::new(AtomicBool::new(true));
    let swaps = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (swapping, swaps, plugins) = (swapping.clone(), swaps.clone(), plugins.clone());
        let (v1, v1b) = (v1.clone(), v1b.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while swapping.load(Ordering::Relaxed) {
                replace(&plugins, if n.is_multiple_of(2) { &v1b } else { &v1 });
                n += 1;
                swaps.store(n, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(swap_ms)).await;
            }
        })
    };
    let (busy_rate, busy_failed) = drive(&client, &url, &token, clients, seconds).await;
    swapping.store(false, Ordering::Relaxed);
    let _ = swapper.await;

    println!("reload latency, file written -> new version serving (compiled form cached):");
    println!(
        "  p50 {:.1} ms, max {:.1} ms over {} swaps; first load of a new file (cold compile) {:.1} ms",
        ms(latencies[latencies.len() / 2]),
        ms(latencies[latencies.len() - 1]),
        latencies.len(),
        ms(cold)
    );
    println!(
        "GET /api/patient (version 1), {clients} clients, {seconds} s each:\n  no reloads: {quiet_rate:.0} req/s ({quiet_failed} failed)\n  the file replaced every {swap_ms} ms ({} reloads): {busy_rate:.0} req/s ({busy_failed} failed)",
        swaps.load(Ordering::Relaxed)
    );
    let _ = stop_server.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
