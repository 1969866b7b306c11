//! Plugins' own tables, on both databases: the plugin `plugin new` writes (checked in as
//! tests/plugins/visit-note) is added to a running server, its migration creates its
//! table, and its routes write and read it; then versions whose migrations touch the
//! host's, OpenEMR's or another plugin's tables, fail, were edited after release or end
//! below what the site applied are refused, each with its reason, while the last good
//! version keeps answering.
//!
//! The variants are the same component with its `hearth:migrations` section rewritten
//! (the section is what the host reads the migrations from).

use hearth_tests::*;
use serde_json::json;

const NAME: &str = "visit-note";
const SECTION: &str = "hearth:migrations";

/// A server whose sites load the patient plugin only; the test adds visit-note.
const START: &str = r#"dir = "."

[sites."*"]
plugins = []
"#;

/// The manifest that adds visit-note (its file in the data folder) to every site.
fn with_plugin() -> String {
    r#"dir = "."

[plugins.visit-note]
file = "visit-note.wasm"

[sites."*"]
plugins = ["visit-note"]
"#
    .to_owned()
}

fn leb(bytes: &[u8], at: &mut usize) -> usize {
    let mut value = 0usize;
    let mut shift = 0;
    loop {
        let byte = bytes[*at];
        *at += 1;
        value |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

fn put_leb(out: &mut Vec<u8>, mut value: usize) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `bytes` (a component or core module) with the payload of its `hearth:migrations`
/// custom section replaced by `payload`.
fn rewrite(bytes: &[u8], payload: &[u8], found: &mut bool) -> Vec<u8> {
    let component = bytes[6] == 1;
    let mut out = bytes[..8].to_vec();
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let size = leb(bytes, &mut at);
        let body = &bytes[at..at + size];
        at += size;
        let body = match id {
            0 => {
                let mut name_at = 0;
                let len = leb(body, &mut name_at);
                if &body[name_at..name_at + len] == SECTION.as_bytes() {
                    *found = true;
                    let mut new = body[..name_at + len].to_vec();
                    new.extend(payload);
                    new
                } else {
                    body.to_vec()
                }
            }
            1 | 4 if component => rewrite(body, payload, found),
            _ => body.to_vec(),
        };
        out.push(id);
        put_leb(&mut out, body.len());
        out.extend(body);
    }
    out
}

/// The built visit-note component carrying `migrations` (version, name, SQLite text,
/// PostgreSQL text) instead of its own.
fn variant(migrations: &[(u32, &str, &str, &str)]) -> Vec<u8> {
    let mut payload = vec![1u8];
    payload.extend((migrations.len() as u32).to_le_bytes());
    for (version, name, sqlite, postgres) in migrations {
        payload.extend(version.to_le_bytes());
        for text in [*name, *sqlite, *postgres] {
            payload.extend((text.len() as u32).to_le_bytes());
            payload.extend(text.as_bytes());
        }
    }
    let built = std::fs::read(dist().join(format!("{NAME}.wasm"))).unwrap();
    let mut found = false;
    let out = rewrite(&built, &payload, &mut found);
    assert!(found, "the built component has a {SECTION} section");
    out
}

/// The template's first migration, as the checked-in crate has it.
fn first() -> (u32, &'static str, &'static str, &'static str) {
    (
        1,
        "items",
        include_str!("../plugins/visit-note/migrations/0001_items.sqlite.sql"),
        include_str!("../plugins/visit-note/migrations/0001_items.postgres.sql"),
    )
}

fn install(app: &TestApp, bytes: &[u8]) {
    let temp = app.data_dir.join(".visit-note.wasm.tmp");
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, app.data_dir.join("visit-note.wasm")).unwrap();
}

async fn applied(app: &TestApp, site: &str) -> i64 {
    app.rows(
        site,
        "SELECT COUNT(*) AS n FROM plugin_migrations WHERE plugin = 'visit-note'",
    )
    .await[0]["n"]
        .as_i64()
        .unwrap()
}

async fn table_exists(app: &TestApp, site: &str, table: &'static str) -> bool {
    let rows = match app.backend {
        Backend::Sqlite => {
            app.rows(site, "SELECT lower(name) AS name FROM sqlite_master")
                .await
        }
        Backend::Postgres => {
            app.rows(
                site,
                "SELECT CAST(tablename AS TEXT) AS name FROM pg_tables",
            )
            .await
        }
    };
    rows.iter().any(|row| row["name"] == table)
}

/// Installs `bytes`, reloads, and checks the reload is refused with `reason`, the plugin
/// is stale with that reason, and the serving version still answers the note `id`.
async fn refused(app: &TestApp, token: &str, id: i64, bytes: Vec<u8>, reason: &str) {
    install(app, &bytes);
    let report = app.state.registry.reload().await;
    assert!(
        report.errors.iter().any(|e| e.contains(reason)),
        "expected {reason:?} in {:?}",
        report.errors
    );
    let status = app
        .state
        .registry
        .statuses("default")
        .into_iter()
        .find(|s| s.name == NAME)
        .unwrap();
    assert_eq!(
        status.state.name(),
        "stale",
        "{reason}: {status:?} {report:?}"
    );
    assert!(
        status.last_error.as_deref().unwrap_or("").contains(reason),
        "{status:?}"
    );
    let note = app
        .get(&app.api("default", &format!("/api/{NAME}/{id}")), token)
        .await;
    assert_eq!(note.status, 200, "{}", note.text);
    assert_eq!(note.json["data"]["name"], "first");
}

#[test]
fn the_checked_in_plugin_is_what_plugin_new_writes() {
    // A workspace's plugins/ folder, as in a Hearth checkout.
    let scratch =
        std::env::temp_dir().join(format!("hearth-template-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(scratch.join("plugins")).unwrap();
    std::fs::write(
        scratch.join("Cargo.toml"),
        "[workspace]\nmembers = [\"plugins/*\"]\n",
    )
    .unwrap();
    let written =
        hearth::plugins::tooling::new_plugin(&scratch.join("plugins"), NAME, None).unwrap();
    let checked_in = workspace().join("tests/plugins").join(NAME);
    let mut files = Vec::new();
    let mut stack = vec![written.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                files.push(path.strip_prefix(&written).unwrap().to_path_buf());
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 5, "{files:?}");
    for file in &files {
        let fresh = std::fs::read_to_string(written.join(file)).unwrap();
        let kept = std::fs::read_to_string(checked_in.join(file))
            .unwrap_or_else(|e| panic!("tests/plugins/{NAME}/{}: {e}", file.display()));
        assert_eq!(
            fresh,
            kept,
            "tests/plugins/{NAME}/{} differs from what `hearth plugin new {NAME}` writes",
            file.display()
        );
    }
    std::fs::remove_dir_all(&scratch).unwrap();
}

both! {
    options = Options::with_plugins(START);

    // The happy path first (the template's own migration on a running server), then every
    // kind of refused version, each leaving the last good one serving.
    async fn a_plugin_brings_its_table_and_bad_migrations_keep_the_last_good_version(app) {
        install(app, &std::fs::read(dist().join(format!("{NAME}.wasm"))).unwrap());
        std::fs::write(app.data_dir.join("plugins.toml"), with_plugin()).unwrap();
        let report = app.state.registry.reload().await;
        assert_eq!(report.errors, Vec::<String>::new());
        for site in ["default", "second"] {
            assert_eq!(applied(app, site).await, 1, "{site}");
            assert!(table_exists(app, site, "x_visit_note__items").await, "{site}");
        }
        let token = app.user_token("default", "doc", "api:oemr user/visit_note.cr").await;
        let created = app.post(&app.api("default", &format!("/api/{NAME}")), &token, json!({"name": "first"})).await;
        assert_eq!(created.status, 201, "{}", created.text);
        let id = created.json["data"]["id"].as_i64().unwrap();
        let rows = app.rows("default", "SELECT id, name FROM x_visit_note__items").await;
        assert_eq!(rows, vec![json!({"id": id, "name": "first"})]);
        // A reload with nothing changed applies nothing again.
        assert_eq!(app.state.registry.reload().await.errors, Vec::<String>::new());
        assert_eq!(applied(app, "default").await, 1);

        let m1 = first();
        refused(app, &token, id, variant(&[m1, (2, "host", "ALTER TABLE users_secure ADD COLUMN x TEXT", "ALTER TABLE users_secure ADD COLUMN x TEXT")]),
            "it touches users_secure, the host's table").await;
        refused(app, &token, id, variant(&[m1, (2, "schema", "DROP TABLE hearth.oauth_clients", "DROP TABLE hearth.oauth_clients")]),
            "it names hearth.oauth_clients, a schema-qualified name").await;
        refused(app, &token, id, variant(&[m1, (2, "other", "CREATE TABLE x_test_widget__w (id INTEGER)", "CREATE TABLE x_test_widget__w (id INTEGER)")]),
            "it touches x_test_widget__w, another plugin's table").await;
        refused(app, &token, id, variant(&[m1, (2, "emr", "ALTER TABLE patient_data ADD COLUMN x TEXT", "ALTER TABLE patient_data ADD COLUMN x TEXT")]),
            "it touches patient_data, an OpenEMR table").await;
        refused(app, &token, id, variant(&[m1, (2, "fk", "CREATE TABLE x_visit_note__p (pid INTEGER REFERENCES patient_data (pid))", "CREATE TABLE x_visit_note__p (pid BIGINT REFERENCES patient_data (pid))")]),
            "it touches patient_data, an OpenEMR table").await;
        refused(app, &token, id, variant(&[m1, (2, "role", "SELECT set_config('role', 'none', true)", "SELECT set_config('role', 'none', true)")]),
            "it calls the function set_config, which migrations may not call").await;
        // Passes the parser, fails in the database: nothing of it stays.
        refused(app, &token, id, variant(&[m1, (2, "broken",
            "CREATE TABLE x_visit_note__two (id INTEGER); INSERT INTO x_visit_note__missing VALUES (1)",
            "CREATE TABLE x_visit_note__two (id INTEGER); INSERT INTO x_visit_note__missing VALUES (1)")]),
            "migration 2 (broken) failed").await;
        assert!(!table_exists(app, "default", "x_visit_note__two").await);
        assert_eq!(applied(app, "default").await, 1);
        // An applied migration edited after release.
        refused(app, &token, id, variant(&[(1, "items", "CREATE TABLE x_visit_note__items (id INTEGER PRIMARY KEY, name TEXT, extra TEXT)", "CREATE TABLE x_visit_note__items (id BIGSERIAL PRIMARY KEY, name TEXT, extra TEXT)")]),
            "migration 1 (items) of plugin visit-note changed after the site applied it").await;

        // A good second migration is applied on reload and serves...
        let index = "CREATE INDEX x_visit_note__items_name ON x_visit_note__items (name)";
        install(app, &variant(&[m1, (2, "index", index, index)]));
        assert_eq!(app.state.registry.reload().await.errors, Vec::<String>::new());
        assert_eq!(applied(app, "default").await, 2);
        // ...and the first version, whose migrations end at 1, is then a downgrade.
        refused(app, &token, id, std::fs::read(dist().join(format!("{NAME}.wasm"))).unwrap(),
            "downgrade refused: the site has applied plugin visit-note's migrations up to 2 (index), but this version's migrations end at 1").await;
        assert_eq!(applied(app, "default").await, 2);
    }
}
