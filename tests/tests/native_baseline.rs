//! The benchmark's native baseline answers exactly what the patient plugin answers, so
//! the benchmark compares the plugin seam and nothing else.

use std::collections::HashMap;

use hearth::api::native::{self, NativeHandler};
use hearth::app::App;
use hearth_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_patient_handler_answers_the_same_bytes_as_the_plugin() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let token = app
        .user_token("default", "admin", "api:oemr user/patient.crus")
        .await;
    let (pid, uuid) = app
        .create_patient("default", &token, "Zoë \"Q\"", "O'Brien")
        .await;
    app.put(&app.api("default", &format!("/api/patient/{uuid}")), &token,
            json!({"street": "1 Main St", "city": "Springfield", "county": "Clark", "email": "z@example.org", "pharmacy_id": 7}))
        .await;
    let site = app.state.sites.get("default").await.unwrap();
    hearth::on_db!(&site.db, |pool| {
        sqlx::query("INSERT INTO patient_history (uuid, date, pid, history_type_key, previous_name_first, previous_name_last, previous_name_enddate) VALUES ('01a22501-0000-4000-8000-0000000000aa', '2020-01-01 00:00:00', $1, 'name_history', 'Zoe', 'Smith', '2019-12-31')")
            .bind(pid)
            .execute(pool)
            .await
            .unwrap();
    });

    // A second server on the same data folder, with the native handler in place.
    let table = app.state.registry.table("default");
    let route = table
        .routes()
        .find(|b| {
            b.plugin.loaded.name == "patient"
                && b.def().path == "/patient/:puuid"
                && b.def().method == http::Method::GET
        })
        .unwrap()
        .def()
        .index;
    let mut natives: HashMap<(String, u32), NativeHandler> = HashMap::new();
    natives.insert(("patient".into(), route), native::get_patient());
    let mut config = app.config.clone();
    config.listen = ([127, 0, 0, 1], 0).into();
    // Tokens name the issuer's public URL; the twin answers as the same server.
    config.public_url = Some(app.base.clone());
    let twin = App::build_with_natives(config, natives).await.unwrap();
    let twin_base = format!("http://{}", twin.local_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(twin.run(async {
        let _ = stopped.await;
    }));

    for path in [
        format!("/api/patient/{uuid}"),
        "/api/patient/01a22501-0000-4000-8000-00000000dead".into(),
        "/api/patient/nope".into(),
    ] {
        let plugin = app.get(&app.api("default", &path), &token).await;
        let native = app
            .get(&format!("{twin_base}/apis/default{path}"), &token)
            .await;
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

    let _ = stop.send(());
    server.await.unwrap().unwrap();
    app.stop().await;
}
