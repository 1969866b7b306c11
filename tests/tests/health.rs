//! Liveness and readiness as an orchestrator sees them: ready means every site's database
//! answers and every plugin listed for it loaded; otherwise 503, naming the site and the
//! plugin.

use hearth_tests::*;

async fn readyz(app: &TestApp) -> Reply {
    app.send(
        reqwest::Method::GET,
        &format!("{}/meta/health/readyz", app.base),
        None,
        None,
    )
    .await
}

fn names(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .unwrap_or_else(|| panic!("a list: {value}"))
        .iter()
        .map(|v| v.as_str().expect("a name"))
        .collect()
}

/// A site registered in the control database whose PostgreSQL server does not listen
/// (nothing answers on port 1), as when a site's database server is down.
async fn register_unreachable_site(app: &TestApp, name: &str) {
    let control = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        app.data_dir.join("hearth.db").display()
    ))
    .await
    .expect("the control database");
    sqlx::query("INSERT INTO sites (name, database_url, created_at) VALUES ($1, $2, '0')")
        .bind(name)
        .bind("postgres://hearth@127.0.0.1:1/hearth_nowhere")
        .execute(&control)
        .await
        .expect("registering the site");
    control.close().await;
}

both! {
    async fn every_site_is_ready_with_its_database_and_its_plugins(app) {
        let live = app
            .send(reqwest::Method::GET, &format!("{}/meta/health/livez", app.base), None, None)
            .await;
        assert_eq!(live.status, 200, "{}", live.text);
        let ready = readyz(app).await;
        assert_eq!(ready.status, 200, "{}", ready.text);
        assert_eq!(ready.json["status"], "ready", "{}", ready.text);
        assert_eq!(ready.json["control"], "ok", "{}", ready.text);
        for site in SITES {
            let state = &ready.json["sites"][site];
            assert_eq!(state["ready"], true, "{site}: {}", ready.text);
            assert_eq!(state["database"], "ok", "{site}: {}", ready.text);
            let loaded = names(&state["plugins"]["loaded"]);
            for plugin in ["patient", "encounter", "facility"] {
                assert!(loaded.contains(&plugin), "{site}: {loaded:?}");
            }
            assert!(names(&state["plugins"]["failed"]).is_empty());
        }
    }

    async fn a_site_whose_database_does_not_answer_makes_the_server_not_ready(app) {
        register_unreachable_site(app, "down").await;
        let ready = readyz(app).await;
        assert_eq!(ready.status, 503, "{}", ready.text);
        assert_eq!(ready.json["status"], "not_ready", "{}", ready.text);
        assert_eq!(ready.json["sites"]["down"]["database"], "unreachable", "{}", ready.text);
        assert_eq!(ready.json["sites"]["down"]["ready"], false, "{}", ready.text);
        // The other sites are ready, and the answer says so.
        for site in SITES {
            assert_eq!(ready.json["sites"][site]["ready"], true, "{site}: {}", ready.text);
        }
        // No connection string or error text in an unauthenticated answer.
        assert!(!ready.text.contains("127.0.0.1:1"), "{}", ready.text);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_fails_to_load_makes_the_server_not_ready_until_it_loads() {
    let plugins = PluginDir::new();
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options {
            plugins_toml: Some(plugins.manifest()),
            watch_plugins: Some(false),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(readyz(&app).await.status, 200);

    // A second plugin whose file is not a component: no version of it serves.
    let manifest = app.data_dir.join("plugins.toml");
    let good = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(plugins.0.join("broken.wasm"), b"not a component").unwrap();
    let broken = good.replace(
        "[sites.\"*\"]\nplugins = [\"patient\"]",
        "[plugins.broken]\nfile = \"broken.wasm\"\nversion = \"^1.0\"\n\n[sites.\"*\"]\nplugins = [\"patient\", \"broken\"]",
    );
    assert_ne!(broken, good);
    std::fs::write(&manifest, &broken).unwrap();
    let report = app.state.registry.reload().await;
    assert!(!report.errors.is_empty(), "{report:?}");
    let ready = readyz(&app).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    for site in SITES {
        let state = &ready.json["sites"][site];
        assert_eq!(state["ready"], false, "{}", ready.text);
        assert_eq!(state["database"], "ok", "{}", ready.text);
        assert_eq!(
            names(&state["plugins"]["failed"]),
            ["broken"],
            "{}",
            ready.text
        );
        assert_eq!(
            names(&state["plugins"]["loaded"]),
            ["patient"],
            "{}",
            ready.text
        );
    }

    // A stale plugin serves its last good version: still ready.
    std::fs::write(&manifest, &good).unwrap();
    app.state.registry.reload().await;
    assert_eq!(readyz(&app).await.status, 200);
    plugins.overwrite(b"not a component either");
    let report = app.state.registry.reload().await;
    assert!(!report.errors.is_empty(), "{report:?}");
    let ready = readyz(&app).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(
        names(&ready.json["sites"]["default"]["plugins"]["stale"]),
        ["patient"],
        "{}",
        ready.text
    );
    app.stop().await;
}
