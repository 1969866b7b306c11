//! The `hearth` binary as people run it: in the first minutes of a new user, on a fresh
//! data folder, every command sets the folder up as `hearth serve` would, and a command
//! naming a site that does not exist says in one line what to run; `hearth serve
//! --log-format json` writes lines a log shipper reads. (An integration test of the host
//! crate, so cargo builds the `hearth` binary it runs.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A fresh, empty data folder under the system's temporary folder, removed when dropped.
struct DataDir(PathBuf);

impl DataDir {
    fn new() -> DataDir {
        let dir = std::env::temp_dir().join(format!("hearth-first-{:016x}", rand::random::<u64>()));
        DataDir(dir)
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `hearth --data-dir DIR ARGS…` with no `HEARTH_*` settings from the environment.
fn hearth(data_dir: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
    command.arg("--data-dir").arg(data_dir).args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HEARTH_") {
            command.env_remove(name);
        }
    }
    command.output().expect("the hearth binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn demo_seed_on_a_fresh_data_folder_sets_it_up_as_serve_would() {
    let data = DataDir::new();
    let seeded = hearth(
        &data.0,
        &["demo", "seed", "--site", "default", "--patients", "25"],
    );
    assert!(
        seeded.status.success(),
        "demo seed failed: {}{}",
        text(&seeded.stdout),
        text(&seeded.stderr)
    );
    assert!(
        text(&seeded.stdout).contains("seeded site default"),
        "{}",
        text(&seeded.stdout)
    );
    assert!(
        text(&seeded.stderr).contains("created the site 'default'"),
        "the first command says it set the folder up: {}",
        text(&seeded.stderr)
    );
    // The folder is what `serve` makes: the control database, the key, the site's database.
    for made in ["hearth.db", "kek", "sites/default.db"] {
        assert!(data.0.join(made).exists(), "{made} was not made");
    }
    // A second command finds it set up, says nothing of it, and sees one site.
    let listed = hearth(&data.0, &["site", "list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let lines: Vec<String> = text(&listed.stdout).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("default\tsqlite://"), "{lines:?}");
    assert!(
        !text(&listed.stderr).contains("created the site"),
        "{}",
        text(&listed.stderr)
    );
}

#[test]
fn each_first_command_on_a_fresh_data_folder_works() {
    for args in [
        &["user", "add", "--site", "default", "--username", "ann"][..],
        &[
            "token",
            "issue",
            "--site",
            "default",
            "--system",
            "--scope",
            "system/patient.rs",
        ][..],
        &["client", "list", "--site", "default"][..],
        &["client", "setting", "--site", "default"][..],
        &["site", "list"][..],
    ] {
        let data = DataDir::new();
        let output = hearth(&data.0, args);
        assert!(
            output.status.success(),
            "`hearth {}` on a fresh data folder failed: {}",
            args.join(" "),
            text(&output.stderr)
        );
        assert!(
            text(&output.stderr).contains("created the site 'default'"),
            "`hearth {}`: {}",
            args.join(" "),
            text(&output.stderr)
        );
    }
}

#[test]
fn a_site_that_does_not_exist_is_named_with_the_command_that_creates_it() {
    let data = DataDir::new();
    let output = hearth(
        &data.0,
        &["demo", "seed", "--site", "clinic", "--patients", "5"],
    );
    assert!(!output.status.success());
    let error = text(&output.stderr);
    let line = error
        .lines()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {error}"));
    assert!(
        line.contains("the site 'clinic' does not exist")
            && line.contains("hearth site add clinic"),
        "{line}"
    );
    // Creating it as told makes the same command work.
    let added = hearth(&data.0, &["site", "add", "clinic"]);
    assert!(added.status.success(), "{}", text(&added.stderr));
    let seeded = hearth(
        &data.0,
        &["demo", "seed", "--site", "clinic", "--patients", "5"],
    );
    assert!(seeded.status.success(), "{}", text(&seeded.stderr));
}

#[test]
fn site_add_on_a_fresh_data_folder_chooses_the_first_site_itself() {
    // `site add` is how the first site gets another database: on a fresh folder it does
    // not make `default` first, so `default` can be given a database of one's choosing.
    let data = DataDir::new();
    let elsewhere = data.0.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let url = format!("sqlite://{}", elsewhere.join("default.db").display());
    let added = hearth(
        &data.0,
        &["site", "add", "default", "--database-url", url.as_str()],
    );
    assert!(added.status.success(), "{}", text(&added.stderr));
    let listed = hearth(&data.0, &["site", "list"]);
    assert_eq!(text(&listed.stdout), format!("default\t{url}\n"));
}

/// `hearth serve --log-format json`: every line on standard error is one JSON object, and
/// each request has a line (target `hearth::access`) with its request id, site, family,
/// route pattern, plugin, method, status and latency.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_json_logs_writes_one_object_per_line_and_a_line_per_request() {
    use std::io::BufRead;
    let data = DataDir::new();
    std::fs::create_dir_all(&data.0).unwrap();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let manifest = data.0.join("plugins.toml");
    std::fs::write(
        &manifest,
        format!(
            "dir = {:?}\n\n[plugins.patient]\nfile = \"patient.wasm\"\nversion = \"^1.0\"\n\n[sites.\"*\"]\nplugins = [\"patient\"]\n",
            workspace.join("target/plugins/dist").display().to_string()
        ),
    )
    .unwrap();
    let user = hearth(
        &data.0,
        &["user", "add", "--site", "default", "--username", "admin"],
    );
    assert!(user.status.success(), "{}", text(&user.stderr));
    let mut command = Command::new(env!("CARGO_BIN_EXE_hearth"));
    command
        .arg("--data-dir")
        .arg(&data.0)
        .args([
            "serve",
            "--http",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--plugins",
        ])
        .arg(&manifest);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("HEARTH_") {
            command.env_remove(name);
        }
    }
    let mut server = command
        .env(
            "HEARTH_CACHE_DIR",
            workspace.join("target/test-plugin-cache"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the server starts");
    let stderr = server.stderr.take().unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let next_line = |seen: &mut Vec<String>| -> String {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("the server wrote nothing more; so far: {seen:#?}"));
        seen.push(line.clone());
        line
    };
    // "serving http://127.0.0.1:PORT on 127.0.0.1:PORT"
    let address = loop {
        let line = next_line(&mut seen);
        let object: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if let Some(rest) = object["message"]
            .as_str()
            .and_then(|m| m.strip_prefix("serving "))
        {
            break rest.rsplit(' ').next().unwrap().to_owned();
        }
    };
    let token = hearth(
        &data.0,
        &[
            "token",
            "issue",
            "--site",
            "default",
            "--user",
            "admin",
            "--scope",
            "openid api:oemr user/patient.rs",
        ],
    );
    assert!(token.status.success(), "{}", text(&token.stderr));
    let token = text(&token.stdout).trim().to_owned();
    let client = reqwest::Client::new();
    let answer = client
        .get(format!("http://{address}/apis/default/api/patient"))
        .bearer_auth(&token)
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["x-request-id"], "trace-abc-123");
    let access = loop {
        let line = next_line(&mut seen);
        let object: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if object["request_id"] == "trace-abc-123" {
            break object;
        }
    };
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(access["target"], "hearth::access", "{access}");
    assert_eq!(access["level"], "INFO", "{access}");
    assert_eq!(access["site"], "default", "{access}");
    assert_eq!(access["family"], "api", "{access}");
    assert_eq!(access["route"], "/api/patient", "{access}");
    assert_eq!(access["plugin"], "patient", "{access}");
    assert_eq!(access["method"], "GET", "{access}");
    assert_eq!(access["status"], 200, "{access}");
    assert!(
        access["latency_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "{access}"
    );
    assert!(access["timestamp"].is_string(), "{access}");
}
