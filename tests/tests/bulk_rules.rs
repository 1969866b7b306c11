//! Rules of Bulk Data export (issue 16) that `bulk.rs` does not prove, through the real
//! server on SQLite and PostgreSQL: every `_outputFormat` the IG names is accepted,
//! `POST` kick-offs with a Parameters body at system and Group level, a queued job and a
//! running job cancelled (202, then 404, the files gone from disk and not written again
//! by the exporter that held the job), `X-Progress` while a job runs, and a type whose
//! page keeps timing out: retried, then named in the `error` file and the manifest while
//! the other types are exported whole; a type's pages asked of one kept plugin instance,
//! never of one that trapped, and of a fresh one each when the plugin says
//! `keep_instance = false`.

use std::time::Duration;

use hearth_tests::bulk::{KICK_OFF, job_of, seed, send, set, system_token};
use hearth_tests::fhir::fhir;
use hearth_tests::{Reply, TestApp, Value, both, json};

async fn get(app: &TestApp, url: &str, token: &str) -> Reply {
    send(app, reqwest::Method::GET, url, Some(token), &[], None).await
}

/// The job's row: status and progress; `None` once it is gone.
async fn job_row(app: &TestApp, job: &str) -> Option<(String, Value)> {
    let site = app.state.sites.get("default").await.unwrap();
    hearth::on_db!(&site.db, |pool| {
        use sqlx::Row;
        sqlx::query("SELECT status, progress FROM bulk_jobs WHERE id = $1")
            .bind(job)
            .fetch_optional(pool)
            .await
            .expect("reading bulk_jobs")
            .map(|row| {
                let progress: String = row.get("progress");
                (
                    row.get::<String, _>("status"),
                    serde_json::from_str(&progress).unwrap(),
                )
            })
    })
}

/// Polls a status URL (waiting Retry-After) until the manifest comes.
async fn manifest(app: &TestApp, status_url: &str, token: &str) -> Value {
    for _ in 0..600 {
        let reply = get(app, status_url, token).await;
        match reply.status {
            200 => return reply.json,
            202 | 429 => {
                let wait: u64 = reply
                    .header("retry-after")
                    .expect("Retry-After")
                    .parse()
                    .unwrap();
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            other => panic!("status {other}: {}", reply.text),
        }
    }
    panic!("the export did not finish");
}

/// Resource types and counts of a manifest's output.
fn types(manifest: &Value) -> Vec<String> {
    let mut out: Vec<String> = manifest["output"]
        .as_array()
        .expect("output")
        .iter()
        .map(|f| f["type"].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out.dedup();
    out
}

both! {
    async fn every_output_format_and_post_kick_offs_at_every_level_are_accepted(app) {
        seed(app, "default", 4).await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        set(app, "default", "bulk.max_jobs_per_client", "20").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read system/Group.cu").await;
        let export = fhir(app, "default", "/$export");
        for format in ["application/fhir+ndjson", "application/ndjson", "ndjson"] {
            let query = hearth_tests::encode(&[("_type", "Patient"), ("_outputFormat", format)]);
            let reply = send(app, reqwest::Method::GET, &format!("{export}?{query}"), Some(&token), &KICK_OFF, None).await;
            assert_eq!(reply.status, 202, "_outputFormat={format}: {}", reply.text);
            let status_url = reply.header("content-location").unwrap().to_owned();
            let done = manifest(app, &status_url, &token).await;
            assert_eq!(types(&done), ["Patient"], "{done}");
            send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;
        }

        // POST /$export: the Parameters body's `_type`, `_outputFormat` and `_typeFilter`.
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "_outputFormat", "valueString": "application/fhir+ndjson"},
            {"name": "_type", "valueString": "Patient,Practitioner"},
            {"name": "_typeFilter", "valueString": "Patient?gender=female"},
        ]});
        let reply = send(app, reqwest::Method::POST, &export, Some(&token), &KICK_OFF, Some(body)).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let status_url = reply.header("content-location").unwrap().to_owned();
        let done = manifest(app, &status_url, &token).await;
        let female = get(app, &fhir(app, "default", "/Patient?gender=female&_summary=count"), &token).await.json["total"].as_u64().unwrap();
        let exported: u64 = done["output"].as_array().unwrap().iter().filter(|f| f["type"] == "Patient").map(|f| f["count"].as_u64().unwrap()).sum();
        assert_eq!(exported, female, "{done}");
        assert!(types(&done).iter().all(|t| t == "Patient" || t == "Practitioner"), "{done}");
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;
        // A bad body or an unknown parameter in it is a 400 naming it.
        for (body, says) in [
            (json!({"resourceType": "Parameters", "parameter": [{"name": "colour", "valueString": "blue"}]}), "colour"),
            (json!({"resourceType": "Parameters", "parameter": [{"name": "_outputFormat", "valueString": "text/csv"}]}), "_outputFormat"),
            (json!({"resourceType": "Parameters", "parameter": [{"name": "includeAssociatedData", "valueCode": "LatestProvenanceResources"}]}), "includeAssociatedData"),
        ] {
            let reply = send(app, reqwest::Method::POST, &export, Some(&token), &KICK_OFF, Some(body)).await;
            assert_eq!(reply.status, 400, "{}", reply.text);
            assert_eq!(reply.json["resourceType"], "OperationOutcome");
            assert!(reply.text.contains(says), "{says}: {}", reply.text);
        }

        // POST /Group/{id}/$export, narrowed by `patient` to one member.
        let patients = get(app, &fhir(app, "default", "/Patient?_count=10"), &token).await;
        let ids: Vec<String> = patients.json["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned()).collect();
        let group = json!({"resourceType": "Group", "name": "Posted", "member": [
            {"entity": {"reference": format!("Patient/{}", ids[0])}},
            {"entity": {"reference": format!("Patient/{}", ids[1])}},
        ]});
        let made = send(app, reqwest::Method::POST, &fhir(app, "default", "/Group"), Some(&token), &[], Some(group)).await;
        assert_eq!(made.status, 201, "{}", made.text);
        let gid = made.json["id"].as_str().unwrap().to_owned();
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "_type", "valueString": "Patient"},
            {"name": "patient", "valueReference": {"reference": format!("Patient/{}", ids[1])}},
        ]});
        let reply = send(app, reqwest::Method::POST, &fhir(app, "default", &format!("/Group/{gid}/$export")), Some(&token), &KICK_OFF, Some(body)).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let status_url = reply.header("content-location").unwrap().to_owned();
        let done = manifest(app, &status_url, &token).await;
        assert_eq!(types(&done), ["Patient"]);
        let file = done["output"][0]["url"].as_str().unwrap();
        let lines = get(app, file, &token).await.text;
        let got: Vec<String> = lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(got, [ids[1].clone()]);
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;
    }
}

/// A `hearth serve` process of its own on the test server's data folder and databases:
/// it exports (the test server runs no exports: `bulk_jobs = 0`). Killed when dropped.
struct Exporter(std::process::Child);

impl Exporter {
    fn start(app: &TestApp) -> Exporter {
        let cache = hearth_tests::workspace()
            .join("target")
            .join("test-plugin-cache");
        std::fs::write(
            app.data_dir.join("hearth.toml"),
            format!(
                "cache_dir = {:?}\nwatch_plugins = false\nmax_instances = 64\n",
                cache.display().to_string()
            ),
        )
        .expect("writing hearth.toml");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_hearth-child"))
            .arg("--data-dir")
            .arg(&app.data_dir)
            .args([
                "serve",
                "--http",
                "--listen",
                "127.0.0.1:0",
                "--public-url",
                &app.base,
                "--plugins",
            ])
            .arg(&app.config.plugins_file)
            .env("HEARTH_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("starting hearth serve");
        Exporter(child)
    }

    /// Stops the process (`-STOP`) at a moment it holds no write lock on the site's
    /// SQLite database: a process stopped inside a write transaction would keep every
    /// other writer out (the cancel under test among them) for as long as it stays
    /// stopped, which is SQLite's single writer and not what the test is about. It is
    /// let go and stopped again until a write goes through.
    async fn freeze_between_writes(&self, app: &TestApp) {
        let site = app.state.sites.get("default").await.unwrap();
        if site.db.kind() != hearth::db::Kind::Sqlite {
            self.signal("-STOP");
            return;
        }
        let options = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(app.data_dir.join("sites").join("default.db"))
            .busy_timeout(Duration::from_millis(500));
        let mut probe = <sqlx::SqliteConnection as sqlx::Connection>::connect_with(&options)
            .await
            .expect("a connection to the site's database");
        for _ in 0..50 {
            self.signal("-STOP");
            let free = sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut probe)
                .await
                .is_ok();
            if free {
                sqlx::query("ROLLBACK")
                    .execute(&mut probe)
                    .await
                    .expect("rollback");
                return;
            }
            self.signal("-CONT");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the exporter held the site's write lock every time it was stopped");
    }

    /// Sends a signal (`-STOP`, `-CONT`) to the process.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

both! {
    options = hearth_tests::Options { bulk_jobs: Some(0), ..Default::default() };

    async fn queued_and_running_jobs_are_cancelled_and_their_files_stay_gone(app) {
        seed(app, "default", 60).await;
        set(app, "default", "bulk.file_resources", "5").await;
        set(app, "default", "bulk.lease_seconds", "2").await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let url = fhir(app, "default", "/$export");

        // Queued (no process exports yet): cancelled before it starts.
        let reply = send(app, reqwest::Method::GET, &url, Some(&token), &KICK_OFF, None).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let queued = reply.header("content-location").unwrap().to_owned();
        let status = get(app, &queued, &token).await;
        assert_eq!(status.status, 202, "{}", status.text);
        assert_eq!(status.header("x-progress"), Some("queued"));
        let job = job_of(&queued);
        assert_eq!(job_row(app, &job).await.unwrap().0, "queued");
        let cancelled = send(app, reqwest::Method::DELETE, &queued, Some(&token), &[], None).await;
        assert_eq!(cancelled.status, 202, "{}", cancelled.text);
        assert_eq!(get(app, &queued, &token).await.status, 404);
        assert!(job_row(app, &job).await.is_none(), "the job is gone");

        // Running: its exporter frozen once it has finished a file.
        let exporter = Exporter::start(app);
        let reply = send(app, reqwest::Method::GET, &url, Some(&token), &KICK_OFF, None).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let running = reply.header("content-location").unwrap().to_owned();
        let job = job_of(&running);
        let mut finished = 0;
        for _ in 0..60_000 {
            let (_, progress) = job_row(app, &job).await.expect("the job");
            finished = progress["files"].as_array().map_or(0, Vec::len);
            if finished > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(finished > 0, "the exporter finished a file");
        exporter.freeze_between_writes(app).await;
        assert_eq!(job_row(app, &job).await.unwrap().0, "running");
        // X-Progress while it runs: `N% - Type done/total`, each type being exported
        // (`; ` between them).
        let status = get(app, &running, &token).await;
        assert_eq!(status.status, 202, "{}", status.text);
        let progress = status.header("x-progress").expect("X-Progress").to_owned();
        let (percent, rest) = progress.split_once("% - ").unwrap_or_else(|| panic!("{progress}"));
        assert!(percent.parse::<u8>().is_ok_and(|p| p < 100), "{progress}");
        for running in rest.split("; ") {
            let (t, counts) = running.split_once(' ').unwrap_or_else(|| panic!("{progress}"));
            assert!(t.chars().all(|c| c.is_ascii_alphabetic()), "{progress}");
            let (done, total) = counts.split_once('/').unwrap_or_else(|| panic!("{progress}"));
            let number = |s: &str| s.replace(',', "").parse::<u64>().unwrap_or_else(|_| panic!("{progress}"));
            assert!(number(done) <= number(total), "{progress}");
        }
        assert!(status.header("retry-after").is_some());

        let folder = app.data_dir.join("bulk").join("default").join(&job);
        assert!(folder.is_dir());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cancelled = send(app, reqwest::Method::DELETE, &running, Some(&token), &[], None).await;
        assert_eq!(cancelled.status, 202, "{}", cancelled.text);
        assert_eq!(get(app, &running, &token).await.status, 404);
        assert!(!folder.exists(), "the files are removed at once");
        assert!(job_row(app, &job).await.is_none(), "the job is gone");

        // The exporter wakes up mid-job: it writes nothing more for the cancelled job, and
        // no process takes it up again.
        exporter.signal("-CONT");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!folder.exists(), "no file written after the cancel: {:?}", std::fs::read_dir(&folder).map(|d| d.count()));
        assert!(job_row(app, &job).await.is_none(), "the job stays gone");
        assert_eq!(get(app, &running, &token).await.status, 404);
        drop(exporter);
    }
}

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

/// FHIR Patient and the test plugin whose `Basic` search stalls from its 13th resource on
/// (tests/plugins/stall), with a 1 s deadline (and a CPU budget above it, so the deadline
/// is what stops it).
fn stall_options() -> hearth_tests::Options {
    hearth_tests::Options {
        metrics_token: Some(METRICS_TOKEN.to_owned()),
        ..hearth_tests::Options::with_plugins(
            r#"
[plugins.fhir-patient]
file = "fhir-patient.wasm"

[plugins.test-stall]
file = "test-stall.wasm"
timeout_ms = 1000
cpu_ms = 5000

[sites."*"]
plugins = ["fhir-patient", "test-stall"]
"#,
        )
    }
}

/// Kicks off a system export of `types` on the default site and waits for its manifest.
async fn system_export(app: &TestApp, token: &str, types: &str) -> Value {
    let url = format!("{}?_type={types}", fhir(app, "default", "/$export"));
    let reply = send(
        app,
        reqwest::Method::GET,
        &url,
        Some(token),
        &KICK_OFF,
        None,
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    let status_url = reply.header("content-location").unwrap().to_owned();
    manifest(app, &status_url, token).await
}

/// The resources in `files` (manifest `output` entries), file by file, line by line.
async fn resources_in(app: &TestApp, files: &[&Value], token: &str) -> Vec<Value> {
    let mut resources = Vec::new();
    for file in files {
        let reply = get(app, file["url"].as_str().unwrap(), token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        for line in reply.text.lines() {
            resources.push(serde_json::from_str(line).expect("one resource per line"));
        }
    }
    resources
}

/// The ids of the resources in `files`, file by file, line by line.
async fn ids_in(app: &TestApp, files: &[&Value], token: &str) -> Vec<String> {
    let resources = resources_in(app, files, token).await;
    resources
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The value of `hearth_plugin_limit_hits_total` for `plugin` and `limit` on the default site.
async fn limit_hits(app: &TestApp, plugin: &str, limit: &str) -> u64 {
    let reply = get(app, &format!("{}/metrics", app.base), METRICS_TOKEN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let labels = format!(r#"site="default",plugin="{plugin}",limit="{limit}""#);
    reply
        .text
        .lines()
        .filter(|line| {
            line.starts_with("hearth_plugin_limit_hits_total{") && line.contains(&labels)
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

both! {
    options = stall_options();

    async fn a_type_whose_page_keeps_timing_out_is_retried_then_reported_in_the_error_file_and_manifest(app) {
        seed(app, "default", 3).await;
        set(app, "default", "bulk.file_resources", "4").await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        // The export's calls keep the plugin's 1 s deadline (by default they get at least
        // `bulk.call_seconds`, 120 s).
        set(app, "default", "bulk.call_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let done = system_export(app, &token, "Basic,Patient").await;

        // Basic: the three pages of four before the stall, in three files; Patient after
        // it, whole.
        let files = done["output"].as_array().expect("output");
        let basic: Vec<&Value> = files.iter().filter(|f| f["type"] == "Basic").collect();
        assert_eq!(basic.iter().map(|f| f["count"].as_u64().unwrap()).collect::<Vec<_>>(), [4, 4, 4], "{done}");
        let ids = ids_in(app, &basic, &token).await;
        assert_eq!(ids, (0..12).map(|i| format!("b-{i}")).collect::<Vec<_>>());
        let patients = get(app, &fhir(app, "default", "/Patient?_summary=count"), &token).await;
        let exported: u64 = files.iter().filter(|f| f["type"] == "Patient").map(|f| f["count"].as_u64().unwrap()).sum();
        assert_eq!(exported, patients.json["total"].as_u64().unwrap(), "{done}");
        assert!(exported >= 3, "{done}");

        // The manifest says Basic is partial: an error file and the type named with its
        // count and what it should have held.
        assert_eq!(done["error"].as_array().expect("error").len(), 1, "{done}");
        assert_eq!(done["error"][0]["type"], "OperationOutcome");
        assert_eq!(done["error"][0]["count"], 1);
        assert_eq!(done["extension"]["incomplete"], json!([{"type": "Basic", "count": 12, "expected": 25}]), "{done}");
        let errors = get(app, done["error"][0]["url"].as_str().unwrap(), &token).await;
        assert_eq!(errors.status, 200, "{}", errors.text);
        let lines: Vec<Value> = errors.text.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
        assert_eq!(lines.len(), 1, "{}", errors.text);
        assert_eq!(lines[0]["resourceType"], "OperationOutcome");
        assert_eq!(lines[0]["issue"][0]["severity"], "error");
        let diagnostics = lines[0]["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(diagnostics.starts_with("Basic stopped after 12 of 25 resources: a page failed 4 times"), "{diagnostics}");
        assert!(diagnostics.contains("time limit of 1000 ms"), "{diagnostics}");

        // The stalled page was asked four times (three retries), each stopped at the
        // deadline; no other page of the export was.
        assert_eq!(limit_hits(app, "test-stall", "time").await, 4);
        assert_eq!(limit_hits(app, "test-stall", "cpu").await, 0);
        assert_eq!(limit_hits(app, "fhir-patient", "time").await, 0);
    }
}

/// The test plugin alone, with a 16 MiB memory limit: its `Linkage` pages of more than
/// four resources take 32 MiB (tests/plugins/stall).
fn large_page_options() -> hearth_tests::Options {
    hearth_tests::Options {
        metrics_token: Some(METRICS_TOKEN.to_owned()),
        ..hearth_tests::Options::with_plugins(
            r#"
[plugins.test-stall]
file = "test-stall.wasm"
memory_mib = 16

[sites."*"]
plugins = ["test-stall"]
"#,
        )
    }
}

both! {
    options = large_page_options();

    async fn a_page_too_large_for_its_plugin_is_asked_again_smaller_and_the_type_goes_on_whole(app) {
        set(app, "default", "bulk.file_resources", "8").await;
        set(app, "default", "bulk.page_resources", "8").await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let done = system_export(app, &token, "Linkage").await;

        // The first page of eight passed the plugin's memory limit; asked again with four
        // it answered, and the type went on in pages of four: every resource, in files of
        // eight, nothing reported missing.
        let files = done["output"].as_array().expect("output");
        let counts: Vec<u64> = files.iter().map(|f| f["count"].as_u64().unwrap()).collect();
        assert_eq!(counts, [8, 8, 8, 1], "{done}");
        assert!(done["error"].as_array().is_none_or(Vec::is_empty), "{done}");
        assert!(done["extension"]["incomplete"].is_null(), "{done}");
        let files: Vec<&Value> = files.iter().collect();
        assert!(files.iter().all(|f| f["type"] == "Linkage"), "{done}");
        let ids = ids_in(app, &files, &token).await;
        assert_eq!(ids, (0..25).map(|i| format!("b-{i}")).collect::<Vec<_>>());
        // One page passed the limit: the later pages were asked at the smaller size.
        assert_eq!(limit_hits(app, "test-stall", "memory").await, 1);
    }
}

/// Exports `test-stall`'s 25 resources of `resource_type` (`Flag` or `Media`) in pages of
/// four (files of eight) and answers, resource by resource, the call of its plugin
/// instance that made it.
async fn calls_of(app: &TestApp, resource_type: &str) -> Vec<u32> {
    set(app, "default", "bulk.file_resources", "8").await;
    set(app, "default", "bulk.page_resources", "4").await;
    set(app, "default", "bulk.retry_after_seconds", "1").await;
    let token = system_token(app, "default", "bulk-client", "system/*.read").await;
    let done = system_export(app, &token, resource_type).await;
    assert!(done["error"].as_array().is_none_or(Vec::is_empty), "{done}");
    assert!(done["extension"]["incomplete"].is_null(), "{done}");
    let files: Vec<&Value> = done["output"].as_array().expect("output").iter().collect();
    let resources = resources_in(app, &files, &token).await;
    let ids: Vec<&str> = resources
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("b-{i}")).collect();
    assert_eq!(ids, expected, "every resource once, in order");
    resources.iter().map(call_of).collect()
}

/// The instance call that made a `test-stall` resource (its `code.text`).
fn call_of(resource: &Value) -> u32 {
    let text = resource["code"]["text"].as_str().unwrap();
    let call = text.strip_prefix("call ").and_then(|t| t.split(' ').next());
    call.and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{text}"))
}

/// Resource by resource, the instance call that made it, from `(call, resources)` pairs.
fn made_by(pages: &[(u32, usize)]) -> Vec<u32> {
    pages
        .iter()
        .flat_map(|&(call, n)| std::iter::repeat_n(call, n))
        .collect()
}

both! {
    options = stall_options();

    async fn an_export_asks_one_instance_for_a_types_pages_and_never_one_that_trapped(app) {
        // Pages 1 to 3 (offsets 0, 4, 8) were calls 1 to 3 of one instance. The page at
        // 12 trapped in it (the test plugin traps there in an instance used before); it
        // was asked again at half the size in a fresh instance (call 1), which then
        // served the rest of the type in pages of two (calls 2 to 7).
        let calls = calls_of(app, "Flag").await;
        let expected = made_by(&[
            (1, 4), (2, 4), (3, 4),
            (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2), (7, 1),
        ]);
        assert_eq!(calls, expected);
    }
}

fn fresh_instance_options() -> hearth_tests::Options {
    hearth_tests::Options::with_plugins(
        r#"
[plugins.test-stall]
file = "test-stall.wasm"
keep_instance = false

[sites."*"]
plugins = ["test-stall"]
"#,
    )
}

both! {
    options = fresh_instance_options();

    async fn a_plugin_whose_instance_is_not_kept_answers_every_export_page_afresh(app) {
        // `keep_instance = false`: every page is the first call of its instance, so the
        // page at 12 never traps and the pages stay at four.
        let calls = calls_of(app, "Flag").await;
        assert_eq!(calls, vec![1; 25]);
    }
}

/// `test-stall` with a 16 MiB memory cap and `config` (its `Media` leaks).
fn leaking_options(config: &str) -> hearth_tests::Options {
    hearth_tests::Options {
        metrics_token: Some(METRICS_TOKEN.to_owned()),
        ..hearth_tests::Options::with_plugins(format!(
            r#"
[plugins.test-stall]
file = "test-stall.wasm"
memory_mib = 16
config = {{ {config} }}

[sites."*"]
plugins = ["test-stall"]
"#
        ))
    }
}

both! {
    options = leaking_options(r#"media_leak_first_mib = "9""#);

    async fn an_instance_grown_past_half_its_memory_cap_is_not_kept(app) {
        // Each instance's first page leaves it above 8 MiB of its 16: kept, its second
        // page would answer (it leaks nothing more), but it is not kept, so every page is
        // the first call of a fresh instance, and none ran out of memory.
        let calls = calls_of(app, "Media").await;
        assert_eq!(calls, vec![1; 25]);
        assert_eq!(limit_hits(app, "test-stall", "memory").await, 0);
    }
}

both! {
    options = leaking_options(r#"media_leak_later_mib = "14""#);

    async fn a_page_that_runs_out_of_memory_in_a_kept_instance_is_asked_of_a_fresh_one(app) {
        // Each instance's second page passes the 16 MiB cap. It is asked again at once,
        // whole, of a fresh instance (its first call), so the export never sees the
        // failure: no page failed, none was made smaller, every resource came from a
        // first call.
        let calls = calls_of(app, "Media").await;
        assert_eq!(calls, vec![1; 25]);
        assert_eq!(limit_hits(app, "test-stall", "memory").await, 0);
    }
}

/// The value of the gauge `name` in `/metrics`.
async fn gauge(app: &TestApp, name: &str) -> Option<i64> {
    let reply = get(app, &format!("{}/metrics", app.base), METRICS_TOKEN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.text.lines().find_map(|line| {
        let (metric, value) = line.split_once(' ')?;
        (metric == name).then(|| value.parse().ok())?
    })
}

both! {
    options = stall_options();

    async fn an_exports_plugin_instances_take_no_slot_from_the_pool_requests_use(app) {
        set(app, "default", "bulk.file_resources", "4").await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        set(app, "default", "bulk.call_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        // A request first, so the plugin has the warm slot requests use (its first
        // request after start-up takes one of its own).
        let count = get(app, &fhir(app, "default", "/Basic?_summary=count"), &token).await;
        assert_eq!(count.status, 200, "{}", count.text);
        assert_eq!(gauge(app, "hearth_plugin_pool_instances").await, Some(0));
        let warm = gauge(app, "hearth_plugin_pool_warm_slots").await;
        assert!(warm.is_some());
        let url = format!("{}?_type=Basic", fhir(app, "default", "/$export"));
        let reply = send(app, reqwest::Method::GET, &url, Some(&token), &KICK_OFF, None).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let status_url = reply.header("content-location").unwrap().to_owned();
        // Once Basic's page at 12 first stopped at its deadline, the count is done and
        // the export runs nothing but that page, asked again three times, a second each,
        // always in an instance of its own: the pool that serves requests holds none.
        let mut in_pool = Vec::new();
        loop {
            let hits = limit_hits(app, "test-stall", "time").await;
            if hits >= 4 {
                break;
            }
            if hits >= 1 {
                in_pool.push(gauge(app, "hearth_plugin_pool_instances").await);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(in_pool.len() >= 10, "{in_pool:?}");
        assert!(in_pool.iter().all(|n| *n == Some(0)), "{in_pool:?}");
        let done = manifest(app, &status_url, &token).await;
        assert_eq!(done["extension"]["incomplete"], json!([{"type": "Basic", "count": 12, "expected": 25}]), "{done}");
        // Nor did the export leave a warm slot behind (its count ran in the slot the
        // request above left warm).
        assert_eq!(gauge(app, "hearth_plugin_pool_warm_slots").await, warm);
    }
}
