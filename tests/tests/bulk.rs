//! FHIR Bulk Data export (issue 16) through the real server, on SQLite and PostgreSQL:
//! kick-off checks, the asynchronous job (202 + Content-Location, status with X-Progress
//! and Retry-After, 429 when polled sooner, the manifest), ndjson files split at the
//! site's size, owner-only downloads, gzip, expiry, cancel, Patient and Group level
//! exports, `_since`, `_type` / `type`, `_typeFilter`, per-site limits and the metrics.
//! The exported counts are compared with what FHIR searches answer for the same token,
//! and exported resources are validated with `fhir.resources` (R4B).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::time::Duration;

use hearth_tests::bulk::{KICK_OFF, job_of, seed, send, set, system_token};
use hearth_tests::fhir::{Documents, fhir};
use hearth_tests::{Reply, TestApp, Value, both, json};

async fn get(app: &TestApp, url: &str, token: &str, headers: &[(&str, &str)]) -> Reply {
    send(app, reqwest::Method::GET, url, Some(token), headers, None).await
}

/// Starts an export; answers its status URL.
async fn kick_off(app: &TestApp, url: &str, token: &str) -> String {
    let reply = get(app, url, token, &KICK_OFF).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    reply
        .header("content-location")
        .expect("Content-Location")
        .to_owned()
}

/// Polls a status URL as the IG says (waiting Retry-After between polls) until the
/// manifest comes.
async fn manifest(app: &TestApp, status_url: &str, token: &str) -> Value {
    for _ in 0..600 {
        let reply = get(app, status_url, token, &[]).await;
        match reply.status {
            200 => {
                assert_eq!(reply.header("content-type"), Some("application/json"));
                assert!(reply.header("expires").is_some(), "an Expires header");
                return reply.json;
            }
            202 | 429 => {
                let wait: u64 = reply
                    .header("retry-after")
                    .expect("Retry-After")
                    .parse()
                    .expect("seconds");
                if reply.status == 202 {
                    let progress = reply.header("x-progress").expect("X-Progress");
                    assert!(progress.len() < 100, "{progress}");
                }
                tokio::time::sleep(Duration::from_secs(wait)).await;
            }
            other => panic!("status {other}: {}", reply.text),
        }
    }
    panic!("the export did not finish");
}

/// Every file of a manifest's output, downloaded: resources per type.
async fn download(app: &TestApp, manifest: &Value, token: &str) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for file in manifest["output"].as_array().expect("output") {
        let url = file["url"].as_str().expect("url");
        let reply = get(app, url, token, &[("accept", "application/fhir+ndjson")]).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(
            reply.header("content-type"),
            Some("application/fhir+ndjson")
        );
        let lines: Vec<Value> = reply
            .text
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON resource per line"))
            .collect();
        assert_eq!(
            lines.len() as u64,
            file["count"].as_u64().expect("count"),
            "{url}"
        );
        let t = file["type"].as_str().expect("type");
        assert!(
            lines.iter().all(|r| r["resourceType"] == t),
            "{url} holds {t} only"
        );
        out.entry(t.to_owned()).or_default().extend(lines);
    }
    out
}

/// What a FHIR search answers as the total for `query`.
async fn search_total(app: &TestApp, site: &str, token: &str, query: &str) -> u64 {
    let reply = get(app, &fhir(app, site, &format!("/{query}")), token, &[]).await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.text);
    reply.json["total"].as_u64().expect("a total")
}

both! {
    async fn kick_off_refuses_what_it_cannot_do(app) {
        let mut docs = Documents::default();
        // The CapabilityStatement names the operations.
        let metadata = app.send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None).await;
        let statement = docs.keep(&metadata);
        assert_eq!(statement["rest"][0]["operation"][0]["definition"], "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export");
        let patient_type = statement["rest"][0]["resource"].as_array().unwrap().iter().find(|r| r["type"] == "Patient").unwrap();
        assert!(patient_type["operation"].as_array().unwrap().iter().any(|o| o["definition"] == "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"));
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let url = fhir(app, "default", "/$export");
        let refused = |reply: &Reply, status: u16| {
            assert_eq!(reply.status, status, "{}", reply.text);
            assert_eq!(reply.json["resourceType"], "OperationOutcome", "{}", reply.text);
        };
        // Headers.
        let reply = get(app, &url, &token, &[("prefer", "respond-async")]).await;
        refused(&reply, 400);
        assert!(reply.text.contains("Accept"), "{}", reply.text);
        docs.keep(&reply);
        let reply = get(app, &url, &token, &[("accept", "application/json"), ("prefer", "respond-async")]).await;
        refused(&reply, 400);
        let reply = get(app, &url, &token, &[("accept", "application/fhir+json")]).await;
        refused(&reply, 400);
        assert!(reply.text.contains("Prefer"), "{}", reply.text);
        // Parameters.
        for (query, word) in [
            ("_outputFormat=text/csv", "_outputFormat"),
            ("_since=yesterday", "_since"),
            ("_type=Patient,Spaceship", "Spaceship"),
            ("includeAssociatedData=LatestProvenanceResources", "includeAssociatedData"),
            ("patient=Patient/abc", "POST"),
            ("_elements=id", "_elements"),
            ("colour=blue", "colour"),
            ("_type=Patient&_typeFilter=Patient%3Fnonsense%3D1", "Patient"),
            ("_type=Patient&_typeFilter=Observation%3Fcode%3Dx", "Observation"),
            ("_typeFilter=Patient", "_typeFilter"),
        ] {
            let reply = get(app, &format!("{url}?{query}"), &token, &KICK_OFF).await;
            refused(&reply, 400);
            assert!(reply.text.contains(word), "{query}: {}", reply.text);
            docs.keep(&reply);
        }
        // A type the site does not serve is left out when the client asks for leniency.
        let lenient = get(app, &format!("{url}?_type=Patient,Spaceship"), &token,
            &[("accept", "application/fhir+json"), ("prefer", "respond-async, handling=lenient")]).await;
        assert_eq!(lenient.status, 202, "{}", lenient.text);
        // A type the token cannot read is refused, not dropped.
        let narrow = system_token(app, "default", "narrow-client", "system/Patient.rs").await;
        let reply = get(app, &format!("{url}?_type=Patient,Observation"), &narrow, &KICK_OFF).await;
        refused(&reply, 403);
        assert!(reply.text.contains("Observation"), "{}", reply.text);
        // OpenEMR's `type` is read too.
        let reply = get(app, &format!("{url}?type=Observation"), &narrow, &KICK_OFF).await;
        refused(&reply, 403);
        // Who may export: no token 401, patients never, staff with admin/users only.
        let reply = send(app, reqwest::Method::GET, &url, None, &KICK_OFF, None).await;
        refused(&reply, 401);
        let puuid = hearth_tests::fhir::patient(app, &app.user_token("default", "admin", hearth_tests::ALL_USER_SCOPES).await, json!({})).await;
        let patient = app.patient_token("default", &puuid, "patient/Patient.rs").await;
        refused(&get(app, &url, &patient, &KICK_OFF).await, 403);
        app.user("default", "doctor", "physician").await;
        let physician = app.user_token("default", "doctor", "user/Patient.rs").await;
        let reply = get(app, &url, &physician, &KICK_OFF).await;
        refused(&reply, 403);
        assert!(reply.text.contains("admin/users"), "{}", reply.text);
        let admin = app.user_token("default", "admin", "user/Patient.rs").await;
        let reply = get(app, &format!("{url}?_type=Patient"), &admin, &KICK_OFF).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        // POST takes a Parameters resource.
        let reply = send(app, reqwest::Method::POST, &url, Some(&token), &KICK_OFF, Some(json!({"resourceType": "Patient"}))).await;
        refused(&reply, 400);
        let reply = send(app, reqwest::Method::PUT, &url, Some(&token), &KICK_OFF, None).await;
        refused(&reply, 405);
        // An unknown job is a 404; nothing was written by the refusals.
        let reply = get(app, &fhir(app, "default", "/$bulkdata-status?job=nothing"), &token, &[]).await;
        refused(&reply, 404);
        let rows = app.rows("default", "SELECT COUNT(*) AS n FROM bulk_jobs").await;
        assert_eq!(rows[0]["n"], json!(2), "the lenient and the admin exports only");
        docs.validate();
    }

    async fn a_system_export_writes_what_searches_answer(app) {
        seed(app, "default", 30).await;
        set(app, "default", "bulk.file_resources", "7").await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let status_url = kick_off(app, &fhir(app, "default", "/$export"), &token).await;
        assert!(status_url.starts_with(&fhir(app, "default", "/$bulkdata-status?job=")), "{status_url}");
        // Polled sooner than advised: 429 with Retry-After.
        let first = get(app, &status_url, &token, &[]).await;
        assert!(first.status == 202 || first.status == 200, "{}", first.text);
        let again = get(app, &status_url, &token, &[]).await;
        assert_eq!(again.status, 429, "{}", again.text);
        assert!(again.header("retry-after").is_some());
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Another client may not see the job.
        let other = system_token(app, "default", "other-client", "system/*.read").await;
        assert_eq!(get(app, &status_url, &other, &[]).await.status, 403);

        let manifest = manifest(app, &status_url, &token).await;
        assert_eq!(manifest["requiresAccessToken"], true);
        assert_eq!(manifest["request"], fhir(app, "default", "/$export"));
        assert!(manifest["transactionTime"].as_str().is_some_and(|t| t.ends_with('Z')));
        assert_eq!(manifest["error"], json!([]), "{manifest}");
        let exported = download(app, &manifest, &token).await;
        // Every type the site serves and the token reads, with the counts searches give.
        let mut types: Vec<&str> = exported.keys().map(String::as_str).collect();
        types.sort_unstable();
        for t in ["Patient", "Encounter", "Observation", "Condition", "AllergyIntolerance", "Practitioner"] {
            assert!(types.contains(&t), "{t} in {types:?}");
        }
        for (t, resources) in &exported {
            let total = search_total(app, "default", &token, &format!("{t}?_summary=count")).await;
            assert_eq!(resources.len() as u64, total, "{t}");
            let mut ids: Vec<&str> = resources.iter().map(|r| r["id"].as_str().expect("id")).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), resources.len(), "{t}: no resource twice");
        }
        assert_eq!(exported["Patient"].len(), 30);
        // Files are split at the site's size.
        for file in manifest["output"].as_array().unwrap() {
            assert!(file["count"].as_u64().unwrap() <= 7, "{file}");
        }
        let patient_files = manifest["output"].as_array().unwrap().iter().filter(|f| f["type"] == "Patient").count();
        assert_eq!(patient_files, 5, "30 patients in files of 7");
        // The resources are what a read answers, and valid R4.
        let first = &exported["Patient"][0];
        let read = get(app, &fhir(app, "default", &format!("/Patient/{}", first["id"].as_str().unwrap())), &token, &[]).await;
        assert_eq!(&read.json, first);
        let mut docs = Documents::default();
        for resources in exported.values() {
            for resource in resources.iter().take(10) {
                docs.keep_value(resource.clone());
            }
        }
        docs.validate();

        // Downloads: the owner only; gzip on request.
        let url = manifest["output"][0]["url"].as_str().unwrap().to_owned();
        assert_eq!(get(app, &url, &other, &[]).await.status, 403);
        assert_eq!(send(app, reqwest::Method::GET, &url, None, &[], None).await.status, 401);
        let plain = get(app, &url, &token, &[]).await.text;
        let zipped = app.client.get(&url).bearer_auth(&token).header("accept-encoding", "gzip").send().await.unwrap();
        assert_eq!(zipped.status(), 200);
        assert_eq!(zipped.headers()["content-encoding"], "gzip");
        let bytes = zipped.bytes().await.unwrap();
        let mut unzipped = String::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_string(&mut unzipped).expect("gzip");
        assert_eq!(unzipped, plain);

        // Cancel: 202, then the status and the files are gone (from disk too).
        let job = job_of(&status_url);
        let folder = app.data_dir.join("bulk").join("default").join(&job);
        assert!(folder.is_dir());
        assert_eq!(send(app, reqwest::Method::DELETE, &status_url, Some(&other), &[], None).await.status, 403);
        let deleted = send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;
        assert_eq!(deleted.status, 202, "{}", deleted.text);
        assert_eq!(get(app, &status_url, &token, &[]).await.status, 404);
        assert_eq!(get(app, &url, &token, &[]).await.status, 404);
        assert!(!folder.exists(), "the files are removed");

        // The metrics count the export.
        let metrics = app.state.telemetry.encode();
        assert!(metrics.contains("hearth_bulk_jobs_finished_total{site=\"default\",outcome=\"done\"} 1"), "{metrics}");
        assert!(metrics.contains("hearth_bulk_resources_exported_total{site=\"default\",resource_type=\"Patient\"} 30"), "{metrics}");
        assert!(metrics.contains("hearth_bulk_jobs_running{site=\"default\"} 0"), "{metrics}");
    }

    async fn patient_group_since_and_type_filter_narrow_the_export(app) {
        seed(app, "default", 12).await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        // Patient level: the patient compartment only.
        let status_url = kick_off(app, &fhir(app, "default", "/Patient/$export"), &token).await;
        let exported = download(app, &manifest(app, &status_url, &token).await, &token).await;
        assert!(!exported.contains_key("Practitioner") && !exported.contains_key("Organization"), "{:?}", exported.keys());
        assert_eq!(exported["Patient"].len(), 12);
        assert_eq!(exported["Encounter"].len() as u64, search_total(app, "default", &token, "Encounter?_summary=count").await);
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;

        // POST with `patient`: those patients' compartments.
        let ids: Vec<String> = exported["Patient"].iter().take(2).map(|p| p["id"].as_str().unwrap().to_owned()).collect();
        let body = json!({"resourceType": "Parameters", "parameter": [
            {"name": "_type", "valueString": "Patient,Encounter"},
            {"name": "patient", "valueReference": {"reference": format!("Patient/{}", ids[0])}},
            {"name": "patient", "valueReference": {"reference": format!("Patient/{}", ids[1])}},
        ]});
        let reply = send(app, reqwest::Method::POST, &fhir(app, "default", "/Patient/$export"), Some(&token), &KICK_OFF, Some(body)).await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        let status_url = reply.header("content-location").unwrap().to_owned();
        let exported = download(app, &manifest(app, &status_url, &token).await, &token).await;
        let mut got: Vec<&str> = exported["Patient"].iter().map(|p| p["id"].as_str().unwrap()).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = ids.iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(got, want);
        let encounters = search_total(app, "default", &token, &format!("Encounter?patient={},{}&_summary=count", ids[0], ids[1])).await;
        assert_eq!(exported.get("Encounter").map_or(0, Vec::len) as u64, encounters);
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;

        // `_typeFilter`, run by the type's own search.
        let status_url = kick_off(app, &fhir(app, "default", "/$export?_type=Patient&_typeFilter=Patient%3Fgender%3Dfemale"), &token).await;
        let exported = download(app, &manifest(app, &status_url, &token).await, &token).await;
        let female = search_total(app, "default", &token, "Patient?gender=female&_summary=count").await;
        assert_eq!(exported.get("Patient").map_or(0, Vec::len) as u64, female);
        assert!(exported.get("Patient").is_none_or(|ps| ps.iter().all(|p| p["gender"] == "female")));
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;

        // `_since`: only what changed after it.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let since = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let admin = app.user_token("default", "admin", hearth_tests::ALL_USER_SCOPES).await;
        let fresh = hearth_tests::fhir::patient(app, &admin, json!({"fname": "Newer"})).await;
        let since = since.format(&time::format_description::well_known::Rfc3339).unwrap();
        let query = hearth_tests::encode(&[("_type", "Patient"), ("_since", &since)]);
        let status_url = kick_off(app, &fhir(app, "default", &format!("/$export?{query}")), &token).await;
        let manifest_since = manifest(app, &status_url, &token).await;
        assert_eq!(manifest_since["deleted"], json!([]));
        let exported = download(app, &manifest_since, &token).await;
        let got: Vec<&str> = exported["Patient"].iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(got, vec![fresh.as_str()]);
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;

        // An unknown group is a 404 (the Group plugin's own answer).
        let reply = get(app, &fhir(app, "default", "/Group/unknown/$export"), &token, &KICK_OFF).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.json["resourceType"], "OperationOutcome");
    }

    async fn limits_and_expiry_apply_per_site(app) {
        seed(app, "default", 3).await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        set(app, "default", "bulk.max_jobs_per_client", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let url = fhir(app, "default", "/$export?_type=Patient");
        let status_url = kick_off(app, &url, &token).await;
        // The client holds one export (running or with files kept): a second is refused.
        let reply = get(app, &url, &token, &KICK_OFF).await;
        assert_eq!(reply.status, 429, "{}", reply.text);
        assert!(reply.header("retry-after").is_some());
        assert!(reply.text.contains("at most 1"), "{}", reply.text);
        // Another client may; the other site is untouched.
        let other = system_token(app, "default", "other-client", "system/*.read").await;
        let other_status = kick_off(app, &url, &other).await;
        manifest(app, &other_status, &other).await;
        // Once the client's export is cancelled, it may start another.
        manifest(app, &status_url, &token).await;
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;
        // Site-wide: exports queued or running (here one another process holds).
        set(app, "default", "bulk.max_jobs", "1").await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("INSERT INTO bulk_jobs (id, client_id, owner, request, plan, progress, status, transaction_time, created_at, lease_owner, lease_until) \
                         VALUES ('held', 'someone', '{}', '', '{}', '{}', 'running', '', 0, 'another-process', $1)")
                .bind(hearth_tests::now() + 3600)
                .execute(pool)
                .await
                .unwrap();
        });
        let reply = get(app, &url, &token, &KICK_OFF).await;
        assert_eq!(reply.status, 429, "{}", reply.text);
        assert!(reply.text.contains("at most 1 exports at once"), "{}", reply.text);
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("DELETE FROM bulk_jobs WHERE id = 'held'").execute(pool).await.unwrap();
        });
        // Expiry: a finished export keeps its files `bulk.expiry_seconds`, then answers
        // 404 and its files are removed (the time is moved on in the row, not waited for).
        set(app, "default", "bulk.expiry_seconds", "120").await;
        let status_url = kick_off(app, &url, &token).await;
        let done = manifest(app, &status_url, &token).await;
        let file = done["output"][0]["url"].as_str().unwrap().to_owned();
        assert_eq!(get(app, &file, &token, &[]).await.status, 200);
        let job = job_of(&status_url);
        let kept: (i64, i64) = hearth::on_db!(&site.db, |pool| {
            use sqlx::Row;
            let row = sqlx::query("SELECT finished_at, expires_at FROM bulk_jobs WHERE id = $1")
                .bind(&job)
                .fetch_one(pool)
                .await
                .unwrap();
            (row.get("finished_at"), row.get("expires_at"))
        });
        assert_eq!(kept.1 - kept.0, 120, "expires bulk.expiry_seconds after it ended");
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE bulk_jobs SET expires_at = $1 WHERE id = $2")
                .bind(hearth_tests::now() - 1)
                .bind(&job)
                .execute(pool)
                .await
                .unwrap();
        });
        assert!(app.data_dir.join("bulk").join("default").join(&job).exists());
        assert_eq!(get(app, &file, &token, &[]).await.status, 404);
        assert_eq!(get(app, &status_url, &token, &[]).await.status, 404);
        assert!(!app.data_dir.join("bulk").join("default").join(job_of(&status_url)).exists());
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

    /// Stops the process at once (SIGSTOP): it does nothing more, as if it hung.
    fn freeze(&self) {
        let status = std::process::Command::new("kill")
            .args(["-STOP", &self.0.id().to_string()])
            .status()
            .expect("kill -STOP");
        assert!(status.success());
    }

    /// Kills the process (SIGKILL): nothing of it runs after this.
    fn kill(mut self) {
        self.0.kill().expect("killing the exporter");
        self.0.wait().expect("the exporter ends");
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Resources per type in a manifest.
fn counts(manifest: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for file in manifest["output"].as_array().expect("output") {
        *out.entry(file["type"].as_str().unwrap().to_owned())
            .or_default() += file["count"].as_u64().unwrap();
    }
    out
}

/// A job's row: its status and progress.
async fn job_row(app: &TestApp, job: &str) -> (String, Value) {
    let site = app.state.sites.get("default").await.unwrap();
    hearth::on_db!(&site.db, |pool| {
        use sqlx::Row;
        let row = sqlx::query("SELECT status, progress FROM bulk_jobs WHERE id = $1")
            .bind(job)
            .fetch_one(pool)
            .await
            .expect("the job's row");
        let progress: String = row.get("progress");
        (
            row.get::<String, _>("status"),
            serde_json::from_str(&progress).unwrap(),
        )
    })
}

both! {
    options = hearth_tests::Options { bulk_jobs: Some(0), ..Default::default() };

    async fn a_killed_exporter_is_resumed_from_its_last_finished_file(app) {
        seed(app, "default", 60).await;
        set(app, "default", "bulk.file_resources", "5").await;
        set(app, "default", "bulk.lease_seconds", "2").await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let url = fhir(app, "default", "/$export");

        // An uninterrupted export, by an exporter process.
        let first = Exporter::start(app);
        let status_url = kick_off(app, &url, &token).await;
        let uninterrupted = counts(&manifest(app, &status_url, &token).await);
        assert_eq!(uninterrupted["Patient"], 60);
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;

        // The same export, its exporter frozen once it has finished a file, then killed.
        let status_url = kick_off(app, &url, &token).await;
        let job = job_of(&status_url);
        let mut finished = 0;
        for _ in 0..60_000 {
            let (_, progress) = job_row(app, &job).await;
            finished = progress["files"].as_array().map_or(0, Vec::len);
            if finished > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(finished > 0, "the exporter finished a file");
        first.freeze();
        let (status, progress) = job_row(app, &job).await;
        assert_eq!(status, "running", "frozen mid-export: {progress}");
        let kept: Vec<String> = progress["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect();
        assert!(!kept.is_empty());
        let folder = app.data_dir.join("bulk").join("default").join(&job);
        let before: Vec<(std::time::SystemTime, Vec<u8>)> = kept
            .iter()
            .map(|name| {
                let path = folder.join(name);
                (std::fs::metadata(&path).unwrap().modified().unwrap(), std::fs::read(&path).unwrap())
            })
            .collect();
        first.kill();
        assert_eq!(job_row(app, &job).await.0, "running", "nobody finished it");

        // Another process takes the job over once the lease has run out, and finishes it.
        let _second = Exporter::start(app);
        let resumed = manifest(app, &status_url, &token).await;
        assert_eq!(counts(&resumed), uninterrupted, "the same counts as an uninterrupted export");
        // It resumed after the last finished file: those files were not written again.
        for (name, (modified, bytes)) in kept.iter().zip(&before) {
            let path = folder.join(name);
            assert_eq!(&std::fs::metadata(&path).unwrap().modified().unwrap(), modified, "{name} kept");
            assert_eq!(&std::fs::read(&path).unwrap(), bytes, "{name} kept");
        }
        // Every resource once.
        let exported = download(app, &resumed, &token).await;
        for (t, resources) in &exported {
            let mut ids: Vec<&str> = resources.iter().map(|r| r["id"].as_str().unwrap()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), resources.len(), "{t}: no resource twice");
        }
    }
}

both! {
    async fn a_bulk_client_following_the_ig_validates_every_line(app) {
        seed(app, "default", 20).await;
        set(app, "default", "bulk.file_resources", "50").await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let mut expect = serde_json::Map::new();
        for t in ["Patient", "Encounter", "Observation", "Condition", "AllergyIntolerance", "MedicationRequest", "Procedure", "Practitioner", "Organization"] {
            expect.insert(t.to_owned(), json!(search_total(app, "default", &token, &format!("{t}?_summary=count")).await));
        }
        // A backend-services client registered with its public key (JWKS); the script
        // gets its own token with client_credentials and a private_key_jwt assertion.
        let scope = expect.keys().map(|t| format!("system/{t}.rs")).collect::<Vec<_>>().join(" ");
        let (kid, der, jwk) = hearth::crypto::keys::generate(hearth::crypto::jwt::Alg::Rs384).expect("a key");
        let registered = hearth_tests::register(app, "default", json!({
            "application_type": "private", "client_name": "Python bulk client",
            "redirect_uris": ["https://app.example/callback"],
            "token_endpoint_auth_method": "private_key_jwt",
            "scope": scope, "jwks": {"keys": [jwk]}})).await;
        assert_eq!(registered.status, 201, "{}", registered.text);
        let client_id = registered.json["client_id"].as_str().expect("client_id").to_owned();
        hearth_tests::enable(app, "default", &client_id).await;
        use base64::Engine as _;
        let output = tokio::process::Command::new(hearth_tests::python())
            .arg(hearth_tests::workspace().join("tests/py/bulk_client.py"))
            .env("HEARTH_FHIR_BASE", fhir(app, "default", ""))
            .env("HEARTH_CLIENT_ID", &client_id)
            .env("HEARTH_KEY_KID", &kid)
            .env("HEARTH_SCOPE", &scope)
            .env("HEARTH_KEY_DER", base64::engine::general_purpose::STANDARD.encode(&der))
            .env("HEARTH_EXPECT", Value::Object(expect).to_string())
            .output()
            .await
            .expect("running tests/py/bulk_client.py (scripts/setup-py-tests installs its packages)");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let result = stdout
            .lines()
            .find_map(|line| line.strip_prefix("HEARTH-RESULT "))
            .unwrap_or_else(|| panic!("no result line:\n{stdout}\n{stderr}"));
        let result: Value = serde_json::from_str(result).unwrap();
        assert_eq!(result["failed"], json!([]), "{stdout}\n{stderr}");
        assert_eq!(result["passed"].as_array().unwrap().len(), 7, "{stdout}");
        assert!(output.status.success(), "{stdout}\n{stderr}");
    }
}

both! {
    async fn groups_are_made_changed_read_searched_and_exported(app) {
        seed(app, "default", 6).await;
        set(app, "default", "bulk.retry_after_seconds", "1").await;
        let token = system_token(app, "default", "bulk-client", "system/*.read system/Group.cu").await;
        let reader = system_token(app, "default", "reader-client", "system/*.read").await;
        let patients = get(app, &fhir(app, "default", "/Patient?_count=50"), &token, &[]).await;
        assert_eq!(patients.status, 200, "{}", patients.text);
        let ids: Vec<String> = patients.json["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids.len(), 6);
        let member = |id: &str| json!({"entity": {"reference": format!("Patient/{id}")}});
        let groups = fhir(app, "default", "/Group");

        // Bad bodies: a precise 4xx and nothing written.
        let unknown = "90cde167-0000-4000-8000-0000000000ff";
        for (body, status, says) in [
            (json!({"resourceType": "Group", "name": "X", "member": [member(&ids[0]), member(unknown)]}), 422, "no patient has that id"),
            (json!({"resourceType": "Group", "name": "X", "member": [{"entity": {"reference": format!("Practitioner/{}", ids[0])}}]}), 422, "is not a Patient reference"),
            (json!({"resourceType": "Group", "member": [member(&ids[0])]}), 422, "Group.name: is required"),
            (json!({"resourceType": "Group", "name": "X", "type": "device"}), 422, "only person groups"),
            (json!({"resourceType": "Group", "name": "X", "member": "Patient/1"}), 422, "must be an array"),
            (json!({"resourceType": "Patient", "name": "X"}), 400, "not a Group"),
        ] {
            let reply = send(app, reqwest::Method::POST, &groups, Some(&token), &[], Some(body)).await;
            assert_eq!(reply.status, status, "{}", reply.text);
            assert_eq!(reply.json["resourceType"], "OperationOutcome");
            assert!(reply.text.contains(says), "{says}: {}", reply.text);
        }
        assert_eq!(search_total(app, "default", &token, "Group").await, 0);
        // Writing needs a Group write scope.
        let body = json!({"resourceType": "Group", "name": "Diabetes cohort",
            "member": [member(&ids[0]), member(&ids[1]), member(&ids[2]), member(&ids[0])]});
        let refused = send(app, reqwest::Method::POST, &groups, Some(&reader), &[], Some(body.clone())).await;
        assert_eq!(refused.status, 403, "{}", refused.text);

        // Create: 201, Location, members in order, a patient listed twice kept once.
        let created = send(app, reqwest::Method::POST, &groups, Some(&token), &[], Some(body)).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json["id"].as_str().unwrap().to_owned();
        assert!(created.header("location").unwrap().ends_with(&format!("/Group/{id}")));
        assert_eq!(created.json["type"], "person");
        assert_eq!(created.json["actual"], true);
        assert_eq!(created.json["quantity"], 3);
        let listed: Vec<&str> = created.json["member"].as_array().unwrap().iter()
            .map(|m| m["entity"]["reference"].as_str().unwrap()).collect();
        assert_eq!(listed, ids[..3].iter().map(|i| format!("Patient/{i}")).collect::<Vec<_>>());
        let read = get(app, &fhir(app, "default", &format!("/Group/{id}")), &reader, &[]).await;
        assert_eq!(read.status, 200, "{}", read.text);
        assert_eq!(read.json, created.json);
        let mut docs = Documents::default();
        docs.keep_value(read.json.clone());
        docs.validate();

        // Search: by name, by _id; another site sees nothing.
        assert_eq!(search_total(app, "default", &reader, "Group?name=diab").await, 1);
        assert_eq!(search_total(app, "default", &reader, "Group?name=zzz").await, 0);
        assert_eq!(search_total(app, "default", &reader, &format!("Group?_id={id}")).await, 1);
        let other_site = system_token(app, "second", "bulk-client", "system/*.read").await;
        assert_eq!(search_total(app, "second", &other_site, "Group").await, 0);

        // Group export: the members' compartments, nothing else.
        let export = fhir(app, "default", &format!("/Group/{id}/$export"));
        let status_url = kick_off(app, &export, &token).await;
        let exported = download(app, &manifest(app, &status_url, &token).await, &token).await;
        let mut got: Vec<&str> = exported["Patient"].iter().map(|p| p["id"].as_str().unwrap()).collect();
        got.sort_unstable();
        let mut want: Vec<&str> = ids[..3].iter().map(String::as_str).collect();
        want.sort_unstable();
        assert_eq!(got, want);
        let encounters = search_total(app, "default", &token, &format!("Encounter?patient={},{},{}&_summary=count", ids[0], ids[1], ids[2])).await;
        assert_eq!(exported.get("Encounter").map_or(0, Vec::len) as u64, encounters);
        assert!(!exported.contains_key("Group") && !exported.contains_key("Practitioner"));
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;

        // Update: replaces name and members; an unknown group or another id is refused.
        let put = |gid: &str| fhir(app, "default", &format!("/Group/{gid}"));
        let change = json!({"resourceType": "Group", "id": id, "name": "Renal cohort", "active": false, "member": [member(&ids[4])]});
        let bad = json!({"resourceType": "Group", "id": id, "name": "Renal cohort", "member": [member(unknown)]});
        let reply = send(app, reqwest::Method::PUT, &put(&id), Some(&token), &[], Some(bad)).await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        let reply = send(app, reqwest::Method::PUT, &put(unknown), Some(&token), &[], Some(json!({"resourceType": "Group", "id": unknown, "name": "Y"}))).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        let reply = send(app, reqwest::Method::PUT, &put(&id), Some(&token), &[], Some(json!({"resourceType": "Group", "id": unknown, "name": "Y"}))).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        let unchanged = get(app, &put(&id), &reader, &[]).await;
        assert_eq!(unchanged.json["name"], "Diabetes cohort");
        assert_eq!(unchanged.json["quantity"], 3);
        let updated = send(app, reqwest::Method::PUT, &put(&id), Some(&token), &[], Some(change)).await;
        assert_eq!(updated.status, 200, "{}", updated.text);
        assert_eq!(updated.json["name"], "Renal cohort");
        assert_eq!(updated.json["active"], false);
        assert_eq!(updated.json["member"], json!([member(&ids[4])]));
        assert_eq!(search_total(app, "default", &reader, "Group?active=false").await, 1);
        let status_url = kick_off(app, &export, &token).await;
        let exported = download(app, &manifest(app, &status_url, &token).await, &token).await;
        let got: Vec<&str> = exported["Patient"].iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(got, vec![ids[4].as_str()]);
        send(app, reqwest::Method::DELETE, &status_url, Some(&token), &[], None).await;
    }
}

/// Runs `hearth --data-dir <app's> group ARGS…` in this process, as the command line would.
async fn group_cli(app: &TestApp, args: &[&str]) -> anyhow::Result<()> {
    let cli = <hearth::cli::Cli as clap::Parser>::parse_from(
        [
            "hearth",
            "--data-dir",
            app.data_dir.to_str().unwrap(),
            "group",
        ]
        .iter()
        .chain(args),
    );
    hearth::cli::run(cli).await
}

both! {
    async fn the_group_cli_makes_and_changes_groups_through_the_running_server(app) {
        seed(app, "default", 4).await;
        let token = system_token(app, "default", "bulk-client", "system/*.read").await;
        let patients = get(app, &fhir(app, "default", "/Patient?_count=50"), &token, &[]).await;
        let ids: Vec<String> = patients.json["entry"].as_array().unwrap().iter()
            .map(|e| e["resource"]["id"].as_str().unwrap().to_owned()).collect();
        assert_eq!(ids.len(), 4);
        // The group named `name`: its id and its members' ids, as the FHIR API reads it.
        let token = token.as_str();
        let group = |name: &'static str| async move {
            let url = fhir(app, "default", &format!("/Group?name={name}"));
            let found = get(app, &url, token, &[]).await;
            assert_eq!(found.status, 200, "{}", found.text);
            let entries = found.json["entry"].as_array().cloned().unwrap_or_default();
            assert!(entries.len() <= 1, "{}", found.text);
            entries.first().map(|e| {
                let members: Vec<String> = e["resource"]["member"].as_array().into_iter().flatten()
                    .map(|m| m["entity"]["reference"].as_str().unwrap().trim_start_matches("Patient/").to_owned())
                    .collect();
                (e["resource"]["id"].as_str().unwrap().to_owned(), members)
            })
        };

        // Made with two members (`Patient/` in front or not).
        let second = format!("Patient/{}", ids[1]);
        group_cli(app, &["create", "--name", "Cohort", "--patient", &ids[0], "--patient", &second]).await.unwrap();
        let (id, members) = group("Cohort").await.expect("the group was made");
        assert_eq!(members, [ids[0].clone(), ids[1].clone()]);
        // One added (a member named again stays once), one taken out.
        group_cli(app, &["add", &id, "--patient", &ids[2], "--patient", &ids[0]]).await.unwrap();
        assert_eq!(group("Cohort").await.unwrap().1, [ids[0].clone(), ids[1].clone(), ids[2].clone()]);
        group_cli(app, &["remove", &id, "--patient", &ids[1]]).await.unwrap();
        assert_eq!(group("Cohort").await.unwrap().1, [ids[0].clone(), ids[2].clone()]);
        // Listing and showing answer; taking out a patient who is not a member is refused
        // and changes nothing.
        group_cli(app, &["list"]).await.unwrap();
        group_cli(app, &["show", &id]).await.unwrap();
        let refused = group_cli(app, &["remove", &id, "--patient", &ids[3]]).await.unwrap_err();
        assert!(refused.to_string().contains("is not a member"), "{refused:#}");
        assert_eq!(group("Cohort").await.unwrap().1, [ids[0].clone(), ids[2].clone()]);
        // The plugin's own checks apply: an unknown patient is refused with its message,
        // and no group is made.
        let refused = group_cli(app, &["create", "--name", "Nobody", "--patient", "no-such-patient"]).await.unwrap_err();
        assert!(refused.to_string().contains("422"), "{refused:#}");
        assert!(refused.to_string().contains("no patient has that id"), "{refused:#}");
        assert!(group("Nobody").await.is_none());
        // Neither id goes into a request unless it is a FHIR id.
        let refused = group_cli(app, &["show", "../Patient"]).await.unwrap_err();
        assert!(refused.to_string().contains("is not a group's FHIR id"), "{refused:#}");
        let refused = group_cli(app, &["add", &id, "--patient", "a?b"]).await.unwrap_err();
        assert!(refused.to_string().contains("is not a patient's FHIR id"), "{refused:#}");
        assert_eq!(group("Cohort").await.unwrap().1, [ids[0].clone(), ids[2].clone()]);
        // The group is what a Group-level export reads.
        let exported = get(app, &fhir(app, "default", &format!("/Group/{id}/$export")), token, &KICK_OFF).await;
        assert_eq!(exported.status, 202, "{}", exported.text);
    }
}
