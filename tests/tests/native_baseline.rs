//! The benchmark's native baselines answer exactly what the patient plugin answers (and
//! the create writes the same row), so the benchmark compares the plugin seam and nothing
//! else.

use std::collections::HashMap;

use hearth::api::native::{self, NativeHandler};
use hearth::app::App;
use hearth_tests::*;

const SCOPE: &str = "api:oemr user/patient.crus";

/// A second server on the same data folder with the native twins in place of the
/// patient plugin's read, list and create routes.
struct Twin {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Twin {
    async fn start(app: &TestApp) -> Twin {
        let table = app.state.registry.table("default");
        let route = |path: &str, method: http::Method| {
            table
                .routes()
                .find(|b| {
                    b.plugin.loaded.name == "patient"
                        && b.def().path == path
                        && b.def().method == method
                })
                .unwrap()
                .def()
                .index
        };
        let mut natives: HashMap<(String, u32), NativeHandler> = HashMap::new();
        natives.insert(
            (
                "patient".into(),
                route("/patient/:puuid", http::Method::GET),
            ),
            native::get_patient(),
        );
        natives.insert(
            ("patient".into(), route("/patient", http::Method::GET)),
            native::list_patients(),
        );
        natives.insert(
            ("patient".into(), route("/patient", http::Method::POST)),
            native::create_patient(),
        );
        let mut config = app.config.clone();
        config.listen = ([127, 0, 0, 1], 0).into();
        // Tokens name the issuer's public URL; the twin answers as the same server.
        config.public_url = Some(app.base.clone());
        let twin = App::build_with_natives(config, natives).await.unwrap();
        let base = format!("http://{}/apis/default", twin.local_addr());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(twin.run(async {
            let _ = stopped.await;
        }));
        Twin { base, stop, server }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap().unwrap();
    }
}

/// Adds a previous name to patient `pid`.
async fn add_previous_name(app: &TestApp, pid: i64, uuid: &str, first: &str, end: &str) {
    let site = app.state.sites.get("default").await.unwrap();
    hearth::on_db!(&site.db, |pool| {
        sqlx::query("INSERT INTO patient_history (uuid, date, pid, history_type_key, previous_name_first, previous_name_last, previous_name_enddate) VALUES ($1, '2020-01-01 00:00:00', $2, 'name_history', $3, 'Smith', $4)")
            .bind(uuid)
            .bind(pid)
            .bind(first)
            .bind(end)
            .execute(pool)
            .await
            .unwrap();
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_patient_handler_answers_the_same_bytes_as_the_plugin() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app.user_token("default", "admin", SCOPE).await;
    let (pid, uuid) = app
        .create_patient("default", &token, "Zoë \"Q\"", "O'Brien")
        .await;
    app.put(&app.api("default", &format!("/api/patient/{uuid}")), &token,
            json!({"street": "1 Main St", "city": "Springfield", "county": "Clark", "email": "z@example.org", "pharmacy_id": 7}))
        .await;
    add_previous_name(
        &app,
        pid,
        "01a22501-0000-4000-8000-0000000000aa",
        "Zoe",
        "2019-12-31",
    )
    .await;
    let twin = Twin::start(&app).await;

    for path in [
        format!("/api/patient/{uuid}"),
        "/api/patient/01a22501-0000-4000-8000-00000000dead".into(),
        "/api/patient/nope".into(),
    ] {
        let plugin = app.get(&app.api("default", &path), &token).await;
        let native = app.get(&format!("{}{path}", twin.base), &token).await;
        assert_eq!(plugin.status, native.status, "{path}");
        assert_eq!(plugin.text, native.text, "{path}: the same bytes");
    }
    let plugin = app
        .get(&app.api("default", &format!("/api/patient/{uuid}")), &token)
        .await;
    assert_eq!(
        plugin.json["data"]["previous_names"][0]["formatted_name"], "Zoe Smith 2019-12-31",
        "OpenEMR's form: the end date follows the name"
    );
    assert_eq!(plugin.json["data"]["addresses"][0]["district"], "Clark");

    twin.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_list_answers_every_page_with_the_same_bytes_as_the_plugin() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app.user_token("default", "admin", SCOPE).await;
    let mut pids = Vec::new();
    for (first, last) in [
        ("Ann", "Smith Jr."),
        ("Bo", "Lee"),
        ("Zoë \"Q\"", "O'Brien"),
        ("Di", "Ng"),
        ("Ed", "Fox"),
    ] {
        pids.push(app.create_patient("default", &token, first, last).await);
    }
    // Two previous names for one patient (newest first), one for another.
    add_previous_name(
        &app,
        pids[1].0,
        "01a22501-0000-4000-8000-0000000000a1",
        "Bea",
        "2018-01-01",
    )
    .await;
    add_previous_name(
        &app,
        pids[1].0,
        "01a22501-0000-4000-8000-0000000000a2",
        "Bel",
        "2019-01-01",
    )
    .await;
    add_previous_name(
        &app,
        pids[3].0,
        "01a22501-0000-4000-8000-0000000000a3",
        "Dee",
        "2017-01-01",
    )
    .await;
    let twin = Twin::start(&app).await;

    for query in [
        "_limit=100",
        "_limit=2",
        "_limit=2&_offset=2",
        "_limit=2&_offset=4",
        "_offset=9&_limit=3",
        "_limit=500",
    ] {
        let path = format!("/api/patient?{query}");
        let plugin = app.get(&app.api("default", &path), &token).await;
        let native = app.get(&format!("{}{path}", twin.base), &token).await;
        assert_eq!(plugin.status, 200, "{path}: {}", plugin.text);
        assert_eq!(plugin.status, native.status, "{path}");
        assert_eq!(plugin.text, native.text, "{path}: the same bytes");
    }
    let page = app
        .get(
            &app.api("default", "/api/patient?_limit=2&_offset=2"),
            &token,
        )
        .await;
    assert_eq!(page.json["data"].as_array().unwrap().len(), 2);
    assert!(
        page.json["links"]["next"].is_string() && page.json["links"]["previous"].is_string(),
        "{}",
        page.text
    );
    let all = app
        .get(&app.api("default", "/api/patient?_limit=100"), &token)
        .await;
    let bo = &all.json["data"][1];
    assert_eq!(bo["previous_names"].as_array().unwrap().len(), 2, "{bo}");

    twin.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_create_answers_and_writes_as_the_plugin_does() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app.user_token("default", "admin", SCOPE).await;
    let twin = Twin::start(&app).await;
    let count = |rows: Vec<Value>| rows[0]["n"].as_i64().unwrap();

    // Bodies that fail: the same 400, and nothing written by either.
    for body in [
        json!({"lname": "Smith", "sex": "Female", "DOB": "1990-01-02"}),
        json!({"fname": "Ann", "lname": "S", "sex": "F", "DOB": "1990-13-02", "email": "nope"}),
        json!({"fname": "Ann", "lname": "Smith", "sex": "Female", "DOB": "1990-01-02", "pharmacy_id": "seven"}),
        json!(["not", "an", "object"]),
    ] {
        let plugin = app
            .post(&app.api("default", "/api/patient"), &token, body.clone())
            .await;
        let native = app
            .post(&format!("{}/api/patient", twin.base), &token, body.clone())
            .await;
        assert_eq!(plugin.status, 400, "{body}: {}", plugin.text);
        assert_eq!(
            (plugin.status, &plugin.text),
            (native.status, &native.text),
            "{body}"
        );
    }
    let not_json = |url: String| {
        app.client
            .post(url)
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body("{\"fname\": ")
            .send()
    };
    let plugin = Reply::from(not_json(app.api("default", "/api/patient")).await.unwrap()).await;
    let native = Reply::from(
        not_json(format!("{}/api/patient", twin.base))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(plugin.status, 400, "{}", plugin.text);
    assert_eq!((plugin.status, &plugin.text), (native.status, &native.text));
    assert_eq!(
        count(
            app.rows("default", "SELECT COUNT(*) AS n FROM patient_data")
                .await
        ),
        0
    );

    let body = json!({
        "fname": "Ann", "lname": "Smith", "mname": "Q", "sex": "Female", "DOB": "1990-01-02",
        "email": "ann@example.org", "street": "1 Main St", "city": "Springfield",
        "pharmacy_id": 7, "financial_review": "2020-01-02 03:04:05", "billing_note": null,
        "title": "Ms.", "ignored": "x"
    });
    let plugin = app
        .post(&app.api("default", "/api/patient"), &token, body.clone())
        .await;
    let native = app
        .post(&format!("{}/api/patient", twin.base), &token, body.clone())
        .await;
    assert_eq!(
        (plugin.status, native.status),
        (201, 201),
        "{} / {}",
        plugin.text,
        native.text
    );
    let ids = |reply: &Reply| {
        (
            reply.json["data"]["pid"].as_i64().unwrap(),
            reply.json["data"]["uuid"].as_str().unwrap().to_owned(),
        )
    };
    let ((plugin_pid, plugin_uuid), (native_pid, native_uuid)) = (ids(&plugin), ids(&native));
    assert_eq!(native_pid, plugin_pid + 1, "each takes the next pid");
    assert_eq!(
        plugin.text.replace(&plugin_uuid, &native_uuid).replace(
            &format!("\"pid\":{plugin_pid}"),
            &format!("\"pid\":{native_pid}")
        ),
        native.text,
        "the same bytes but the new pid and uuid"
    );

    // The rows: equal in every column but the keys and the clock's stamps.
    let rows = app
        .rows("default", "SELECT * FROM patient_data ORDER BY id")
        .await;
    assert_eq!(rows.len(), 2);
    let (mut written_by_plugin, mut written_by_native) = (rows[0].clone(), rows[1].clone());
    assert_eq!(written_by_plugin["uuid"], plugin_uuid.as_str());
    assert_eq!(written_by_native["uuid"], native_uuid.as_str());
    assert_eq!(written_by_native["pubpid"], native_pid.to_string());
    for row in [&mut written_by_plugin, &mut written_by_native] {
        let row = row.as_object_mut().unwrap();
        for stamp in ["date", "regdate", "last_updated"] {
            let text = row.remove(stamp).unwrap();
            let text = text.as_str().unwrap();
            assert_eq!(text.len(), 19, "{stamp}: {text}");
            assert!(text.starts_with("20"), "{stamp}: {text}");
        }
        for key in ["id", "pid", "uuid", "pubpid"] {
            row.remove(key);
        }
    }
    assert_eq!(written_by_plugin, written_by_native);
    assert_eq!(
        written_by_plugin["created_by"],
        written_by_plugin["updated_by"]
    );
    assert!(
        written_by_plugin["created_by"].as_i64().is_some(),
        "the caller's users.id"
    );
    assert_eq!(written_by_plugin["pharmacy_id"], 7);

    twin.stop().await;
    app.stop().await;
}
