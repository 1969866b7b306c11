//! Plugin tooling: scaffolding checks names and never overwrites (the build without a
//! source tree is `host/tests/scaffold.rs`), and
//! `hearth plugin call` runs requests against a plugin file with no server.

use hearth::plugins::tooling;
use hearth_tests::*;

#[test]
fn scaffold_names_are_checked_and_nothing_is_overwritten() {
    let parent =
        std::env::temp_dir().join(format!("hearth-scaffold-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&parent).unwrap();
    let dir = tooling::new_plugin(&parent, "lab-result", None).unwrap();
    assert!(
        tooling::new_plugin(&parent, "lab-result", None).is_err(),
        "it overwrote a crate"
    );
    assert!(tooling::new_plugin(&parent, "Lab_Result", None).is_err());
    let source = std::fs::read_to_string(dir.join("src/lib.rs")).unwrap();
    assert!(
        source.contains("pub struct LabResult;") && source.contains("\"/api/lab-result/:id\""),
        "{source}"
    );
    std::fs::remove_dir_all(parent).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_call_runs_requests_on_a_scratch_database() {
    let engine = hearth::plugins::engine::Engine::new(
        &workspace().join("target").join("test-plugin-cache"),
        8,
    )
    .unwrap();
    let file = workspace().join("target/plugins/dist/patient.wasm");
    let requests = tooling::parse_requests(
        r#"[
            {"method": "POST", "path": "/api/patient", "body": {"fname": "Ann", "lname": "Smith", "sex": "Female", "DOB": "1990-02-03"}},
            {"path": "/api/patient?fname=Ann"},
            {"method": "POST", "path": "/api/patient", "body": {"fname": "NoLastName"}}
        ]"#,
    )
    .unwrap();
    let answers = tooling::call(&engine, &file, &requests).await.unwrap();
    assert_eq!(answers[0]["status"], 201, "{}", answers[0]);
    assert_eq!(answers[1]["status"], 200, "{}", answers[1]);
    assert_eq!(
        answers[1]["body"]["data"][0]["lname"], "Smith",
        "{}",
        answers[1]
    );
    assert_eq!(answers[2]["status"], 400, "{}", answers[2]);

    // Bad request files and unknown routes are errors that say what is wrong.
    let error = format!(
        "{:#}",
        tooling::parse_requests(r#"{"path": "/api/patient", "methd": "GET"}"#).unwrap_err()
    );
    assert!(error.contains("methd"), "{error}");
    let missing = tooling::parse_requests(r#"{"path": "/api/nothing"}"#).unwrap();
    let error = format!(
        "{:#}",
        tooling::call(&engine, &file, &missing).await.unwrap_err()
    );
    assert!(error.contains("no route for /api/nothing"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_check_verifies_a_file_against_the_host() {
    let data = std::env::temp_dir().join(format!("hearth-check-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&data).unwrap();
    let cache = workspace().join("target").join("test-plugin-cache");
    std::fs::write(
        data.join("hearth.toml"),
        format!("cache_dir = {:?}\n", cache.display().to_string()),
    )
    .unwrap();
    let run = |file: std::path::PathBuf| {
        let cli = <hearth::cli::Cli as clap::Parser>::parse_from([
            "hearth".into(),
            "--data-dir".into(),
            data.clone().into_os_string(),
            "plugin".into(),
            "check".into(),
            file.into_os_string(),
        ]);
        hearth::cli::run(cli)
    };
    run(workspace().join("target/plugins/dist/patient.wasm"))
        .await
        .unwrap();
    let junk = data.join("junk.wasm");
    std::fs::write(&junk, b"\0asm not really").unwrap();
    let error = format!("{:#}", run(junk).await.unwrap_err());
    assert!(
        error.contains("not a valid WebAssembly component"),
        "{error}"
    );
    std::fs::remove_dir_all(data).unwrap();
}
