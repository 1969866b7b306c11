//! The standing red-team suite: a probe plugin granted what the allergy plugin has (reads
//! `patient_data`, writes `lists`) tries every known way around its grants on SQLite and
//! PostgreSQL, and each one is refused with nothing changed; on PostgreSQL the database
//! itself refuses what a statement that slipped past the parser would do; and a property
//! test generates SQL over granted and ungranted tables and checks that the gate and the
//! database agree.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use hearth::db::Db;
use hearth::db::grants::Grants;
use hearth_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SCOPE: &str = "openid api:oemr user/patient.crus";

fn options() -> Options {
    Options::with_plugins(
        r#"
[plugins.patient]
file = "patient.wasm"

[plugins.test-probe]
file = "test-probe.wasm"
timeout_ms = 20000

[sites."*"]
plugins = ["patient", "test-probe"]
"#,
    )
}

/// The probe's grants, as the host builds them from its manifest.
fn probe_grants() -> Grants {
    Grants::new(
        "test-probe",
        ["patient_data".to_owned()],
        [
            "lists".to_owned(),
            "form_vitals".to_owned(),
            "issue_encounter".to_owned(),
        ],
    )
    .expect("ordinary tables")
}

/// What the probe saw for each statement: `Ok(rows)` or `Err(message)`.
async fn probe(app: &TestApp, token: &str, write: bool, sql: &str) -> Result<Value, String> {
    let reply = if write {
        app.post(
            &app.api("default", "/api/probe"),
            token,
            json!({ "sql": sql }),
        )
        .await
    } else {
        let url =
            reqwest::Url::parse_with_params(&app.api("default", "/api/probe"), &[("sql", sql)])
                .expect("a URL");
        app.get(url.as_str(), token).await
    };
    assert_eq!(reply.status, 200, "{sql}: {}", reply.text);
    let result = &reply.json["data"]["results"][0];
    match result["error"].as_str() {
        Some(error) => Err(error.to_owned()),
        None => Ok(result["rows"].clone()),
    }
}

/// Everything a bypass could change: every table with its row count (but the audit log,
/// which the requests themselves add to), and on PostgreSQL the large objects and the
/// roles.
async fn snapshot(db: &Db) -> Vec<String> {
    use sqlx::Row;
    let mut out = Vec::new();
    match db {
        Db::Sqlite(pool, _) => {
            let tables: Vec<String> = sqlx::query(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name",
            )
            .fetch_all(pool)
            .await
            .expect("tables")
            .iter()
            .map(|row| row.get("name"))
            .collect();
            for table in tables.into_iter().filter(|t| t != "api_log") {
                let count: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT COUNT(*) FROM \"{table}\""
                )))
                .fetch_one(pool)
                .await
                .expect("count")
                .get(0);
                out.push(format!("{table}: {count}"));
            }
        }
        Db::Postgres(pool) => {
            let tables: Vec<String> = sqlx::query(
                "SELECT table_schema || '.' || table_name AS name FROM information_schema.tables
                 WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
            )
            .fetch_all(pool)
            .await
            .expect("tables")
            .iter()
            .map(|row| row.get("name"))
            .collect();
            for table in tables.into_iter().filter(|t| t != "hearth.api_log") {
                let count: i64 =
                    sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
                        .fetch_one(pool)
                        .await
                        .expect("count")
                        .get(0);
                out.push(format!("{table}: {count}"));
            }
            let objects: i64 = sqlx::query("SELECT COUNT(*) FROM pg_largeobject_metadata")
                .fetch_one(pool)
                .await
                .expect("large objects")
                .get(0);
            out.push(format!("large objects: {objects}"));
            // Roles belong to the whole server, where other tests make and drop theirs: the
            // ones of this database, their attributes and memberships.
            let database: String = sqlx::query("SELECT CAST(current_database() AS TEXT) AS d")
                .fetch_one(pool)
                .await
                .expect("the database")
                .get("d");
            let roles: Vec<String> = sqlx::query(
                "SELECT r.rolname || ' super=' || r.rolsuper || ' login=' || r.rolcanlogin
                        || ' createrole=' || r.rolcreaterole || ' in ' || COALESCE(
                            (SELECT string_agg(CAST(m.rolname AS TEXT), ',' ORDER BY m.rolname)
                             FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.roleid
                             WHERE a.member = r.oid), '') AS r
                 FROM pg_roles r WHERE left(r.rolname, length($1)) = $1 ORDER BY 1",
            )
            .bind(hearth::db::roles::role_prefix(&database))
            .fetch_all(pool)
            .await
            .expect("roles")
            .iter()
            .map(|row| row.get("r"))
            .collect();
            out.extend(roles);
        }
    }
    out
}

/// Statements no plugin may run, on either database, in any request: each reads a table
/// it was not granted, reaches outside the database, or changes the schema or the session.
const REFUSED_EVERYWHERE: &[&str] = &[
    // Finding 1: CTE shadowing and TABLE.
    "WITH users_secure AS (SELECT * FROM users_secure) SELECT * FROM users_secure",
    "WITH signing_keys AS (SELECT kid FROM signing_keys) SELECT * FROM signing_keys",
    "WITH a AS (SELECT kid FROM signing_keys), b AS (SELECT * FROM a) SELECT * FROM b",
    "WITH a AS (SELECT * FROM b), b AS (SELECT kid FROM signing_keys) SELECT * FROM a",
    "WITH k AS (TABLE signing_keys) SELECT * FROM k",
    "SELECT * FROM (TABLE api_token) t",
    "TABLE signing_keys",
    "SELECT fname FROM patient_data UNION TABLE users_secure",
    "WITH RECURSIVE r(x) AS (SELECT kid FROM signing_keys UNION SELECT x FROM r) SELECT * FROM r",
    // Plain reads and every clause a sub-query can hide in.
    "SELECT * FROM signing_keys",
    "SELECT private_key FROM signing_keys",
    "SELECT password FROM users_secure",
    "SELECT username FROM users",
    "SELECT fname FROM patient_data UNION SELECT kid FROM signing_keys",
    "SELECT fname FROM patient_data UNION ALL SELECT password FROM users_secure",
    "SELECT fname FROM patient_data INTERSECT SELECT username FROM users_secure",
    "SELECT fname FROM patient_data EXCEPT SELECT jti FROM api_token",
    "SELECT (SELECT kid FROM signing_keys LIMIT 1) AS k FROM patient_data",
    "SELECT fname FROM patient_data WHERE EXISTS (SELECT 1 FROM oauth_refresh_tokens)",
    "SELECT fname FROM patient_data WHERE fname IN (SELECT username FROM users_secure)",
    "SELECT fname FROM patient_data ORDER BY (SELECT COUNT(*) FROM api_token)",
    "SELECT fname FROM patient_data GROUP BY fname HAVING COUNT(*) > (SELECT COUNT(*) FROM api_log)",
    "SELECT fname FROM patient_data LIMIT (SELECT COUNT(*) FROM oauth_clients)",
    "SELECT p.fname FROM patient_data p JOIN users_secure u ON u.id = p.id",
    "SELECT p.fname FROM patient_data p, oauth_codes c",
    "SELECT * FROM (SELECT * FROM (SELECT kid FROM signing_keys) a) b",
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM users_secure) THEN 1 ELSE 0 END AS x",
    // Finding 4: existence and row counts.
    "SELECT COUNT(*) FROM users_secure",
    "SELECT COUNT(*) FROM oauth_refresh_tokens",
    "SELECT 1 AS x WHERE EXISTS (SELECT 1 FROM oauth_refresh_tokens)",
    "SELECT COUNT(*) FROM patient_data, signing_keys",
    // Quoted and schema-qualified names.
    "SELECT * FROM \"signing_keys\"",
    "SELECT * FROM \"users_secure\"",
    "SELECT * FROM hearth.signing_keys",
    "SELECT * FROM main.signing_keys",
    "SELECT * FROM public.users",
    // System catalogs.
    "SELECT * FROM sqlite_master",
    "SELECT COUNT(*) FROM sqlite_schema",
    "SELECT name FROM sqlite_temp_master",
    "SELECT * FROM pragma_table_list",
    "SELECT name FROM pragma_table_info('signing_keys')",
    "SELECT * FROM dbstat",
    "SELECT * FROM pg_catalog.pg_authid",
    "SELECT rolname FROM pg_roles",
    "SELECT usename, passwd FROM pg_shadow",
    "SELECT * FROM information_schema.tables",
    "SELECT relname FROM pg_class",
    // Functions that touch files, settings, large objects, locks or time.
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT pg_read_binary_file('/etc/passwd')",
    "SELECT pg_ls_dir('.')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT lo_get(1)",
    "SELECT lo_export(1, '/tmp/x')",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT set_config('search_path', 'hearth', false)",
    "SELECT current_setting('data_directory')",
    "SELECT pg_advisory_lock(1)",
    "SELECT pg_try_advisory_xact_lock(1)",
    "SELECT pg_sleep(1)",
    "SELECT pg_notify('x', 'y')",
    "SELECT dblink('host=localhost', 'SELECT 1')",
    "SELECT query_to_xml('SELECT * FROM hearth.signing_keys', true, true, '')",
    "SELECT load_extension('/tmp/x')",
    "SELECT readfile('/etc/passwd')",
    "SELECT version()",
    "SELECT sqlite_version()",
    "SELECT zeroblob(1000000000)",
    "SELECT randomblob(1000000000)",
    "SELECT * FROM generate_series(1, 3)",
    "SELECT * FROM json_each('[1]')",
    "SELECT pg_catalog.lower('x')",
    // Statements other than SELECT/INSERT/UPDATE/DELETE/WITH.
    "COPY patient_data TO '/tmp/hearth-probe.csv'",
    "COPY (SELECT 1) TO PROGRAM 'id'",
    "COPY lists FROM '/etc/passwd'",
    "PREPARE p AS SELECT * FROM signing_keys",
    "EXECUTE p",
    "DEALLOCATE ALL",
    "LISTEN hearth",
    "NOTIFY hearth, 'x'",
    "DO $$ BEGIN PERFORM 1; END $$",
    "RESET ROLE",
    "SET ROLE root",
    "SET SESSION AUTHORIZATION root",
    "SET search_path = hearth",
    "SHOW data_directory",
    "CREATE TABLE stolen (a TEXT)",
    "CREATE TEMP TABLE stolen (a TEXT)",
    "CREATE VIEW stolen AS SELECT * FROM signing_keys",
    "CREATE FUNCTION f() RETURNS int AS 'SELECT 1' LANGUAGE sql",
    "DROP TABLE lists",
    "ALTER TABLE lists ADD COLUMN stolen TEXT",
    "TRUNCATE lists",
    "GRANT SELECT ON signing_keys TO PUBLIC",
    "VACUUM",
    "VACUUM INTO '/tmp/hearth-probe-copy.db'",
    "ANALYZE",
    "REINDEX",
    "ATTACH DATABASE '/tmp/hearth-probe.db' AS x",
    "DETACH DATABASE main",
    "PRAGMA table_info(signing_keys)",
    "PRAGMA writable_schema = 1",
    "EXPLAIN SELECT * FROM signing_keys",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT a",
    "LOCK TABLE lists",
    "SELECT 1; SELECT * FROM signing_keys",
    "SELECT 1; DELETE FROM lists",
    "/* comment */ DELETE FROM lists; DROP TABLE lists",
    // Finding 2: SELECT … INTO creates a table.
    "SELECT uuid, fname, lname, ss INTO stolen_copy FROM patient_data",
    "SELECT * INTO TEMP stolen_copy FROM patient_data",
    // Writes to tables it may only read or may not touch.
    "UPDATE patient_data SET fname = 'x'",
    "DELETE FROM patient_data",
    "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at) VALUES ('k', 'RS256', 'x', '{}', '0')",
    "UPDATE users_secure SET password = 'x'",
    "DELETE FROM api_token",
    "WITH d AS (DELETE FROM patient_data RETURNING id) SELECT * FROM d",
    "WITH u AS (UPDATE users_secure SET password = 'x' RETURNING id) SELECT * FROM u",
    "INSERT INTO lists (uuid, type, title, pid) SELECT uuid, 'x', password, 1 FROM users_secure",
    "UPDATE lists SET title = (SELECT password FROM users_secure LIMIT 1)",
    "DELETE FROM lists WHERE EXISTS (SELECT 1 FROM signing_keys)",
    "MERGE INTO lists USING patient_data p ON false WHEN NOT MATCHED THEN DO NOTHING",
    // History is written by the host's triggers only, even for a plugin that writes the
    // table (the probe writes `lists`).
    "INSERT INTO lists_history (fhir_version, id, type, title) VALUES (99, 1, 'allergy', 'forged')",
    "UPDATE lists_history SET title = 'forged'",
    "DELETE FROM lists_history",
    // The same for the versions of vital signs and encounter diagnoses (migration 0462),
    // whose tables the probe also writes.
    "INSERT INTO form_vitals_history (fhir_version, id, uuid, pid, weight) VALUES (99, 1, '00000000-0000-4000-8000-000000000009', 1, 1)",
    "UPDATE form_vitals_history SET weight = 1",
    "DELETE FROM form_vitals_history",
    "INSERT INTO issue_encounter_history (fhir_version, id, pid, list_id, encounter) VALUES (99, 1, 1, 1, 1)",
    "UPDATE issue_encounter_history SET resolved = 1",
    "DELETE FROM issue_encounter_history",
];

/// Statements that write to a granted table: refused in a GET request only.
const REFUSED_IN_GET: &[&str] = &[
    "DELETE FROM lists",
    "UPDATE lists SET title = 'x'",
    "WITH d AS (DELETE FROM lists RETURNING id) SELECT * FROM d",
    "INSERT INTO lists (uuid, type, title, pid) VALUES ('00000000-0000-4000-8000-000000000000', 'allergy', 'x', 1)",
];

both! {
    options = options();

    async fn every_bypass_is_refused_and_nothing_changes(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        app.create_patient("default", &token, "Ada", "Probe").await;
        // One granted statement first, so that the probe's role exists before the snapshot.
        probe(app, &token, true, "SELECT COUNT(*) AS n FROM patient_data").await.unwrap();
        let site = app.state.sites.get("default").await.unwrap();
        let before = snapshot(&site.db).await;
        if app.backend == Backend::Postgres {
            assert!(before.iter().any(|line| line.contains("_p_test_probe_")), "{before:?}");
        }
        let mut admitted = Vec::new();
        for sql in REFUSED_EVERYWHERE {
            for write in [false, true] {
                match probe(app, &token, write, sql).await {
                    Ok(rows) => admitted.push(format!("{sql} (write: {write}) → {rows}")),
                    Err(error) => assert!(!error.is_empty()),
                }
            }
        }
        for sql in REFUSED_IN_GET {
            if let Ok(rows) = probe(app, &token, false, sql).await {
                admitted.push(format!("{sql} (GET) → {rows}"));
            }
        }
        assert!(admitted.is_empty(), "admitted:\n{}", admitted.join("\n"));
        assert_eq!(before, snapshot(&site.db).await, "a refused statement changed something");
        for file in ["/tmp/hearth-probe-copy.db", "/tmp/hearth-probe.db", "/tmp/hearth-probe.csv"] {
            assert!(!std::path::Path::new(file).exists(), "{file} was written");
        }
    }

    async fn reading_the_signing_keys_fails_and_the_message_says_why(app) {
        // Finding 1, as reported: these returned the private key and password hashes.
        let token = app.user_token("default", "admin", SCOPE).await;
        for sql in [
            "WITH users_secure AS (SELECT * FROM users_secure) SELECT * FROM users_secure",
            "WITH k AS (TABLE signing_keys) SELECT * FROM k",
            "SELECT * FROM (TABLE api_token) t",
        ] {
            let error = probe(app, &token, false, sql).await.unwrap_err();
            assert!(error.starts_with("denied:"), "{sql}: {error}");
        }
        let error = probe(app, &token, false, "SELECT COUNT(*) FROM users_secure").await.unwrap_err();
        assert!(error.contains("table users_secure is not granted to plugin test-probe for reading"), "{error}");
        let error = probe(app, &token, true, "SELECT fname INTO stolen_copy FROM patient_data").await.unwrap_err();
        assert!(error.starts_with("denied:"), "{error}");
        let error = probe(app, &token, false, "VACUUM INTO '/tmp/x.db'").await.unwrap_err();
        assert!(error.contains("VACUUM statements are not allowed"), "{error}");
    }

    async fn granted_sql_still_runs(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        let (pid, _) = app.create_patient("default", &token, "Ada", "Probe").await;
        let rows = probe(app, &token, false, "SELECT fname FROM patient_data").await.unwrap();
        assert_eq!(rows[0]["fname"], "Ada");
        let rows = probe(app, &token, false, "WITH p AS (SELECT fname FROM patient_data) SELECT COUNT(*) AS n FROM p").await.unwrap();
        assert_eq!(rows[0]["n"], 1);
        let rows = probe(app, &token, false, "SELECT COUNT(*) AS n FROM patient_data WHERE EXISTS (SELECT 1 FROM lists)").await.unwrap();
        assert_eq!(rows[0]["n"], 0);
        let insert = format!(
            "INSERT INTO lists (uuid, type, title, pid) VALUES ('00000000-0000-4000-8000-000000000001', 'allergy', 'penicillin', {pid}) RETURNING title"
        );
        let rows = probe(app, &token, true, &insert).await.unwrap();
        assert_eq!(rows[0]["title"], "penicillin");
        let rows = probe(app, &token, false, "SELECT COUNT(*) AS n FROM lists").await.unwrap();
        assert_eq!(rows[0]["n"], 1);
        // The write went through the host's trigger into the history, which the writer may
        // read; an update adds a version.
        probe(app, &token, true, "UPDATE lists SET title = 'amoxicillin'").await.unwrap();
        let rows = probe(app, &token, false, "SELECT fhir_version, title FROM lists_history ORDER BY fhir_version").await.unwrap();
        assert_eq!(rows, json!([{"fhir_version": 1, "title": "penicillin"}, {"fhir_version": 2, "title": "amoxicillin"}]));
        // So do the vital signs and the encounter diagnoses (migration 0462).
        let insert = format!(
            "INSERT INTO form_vitals (uuid, pid, pulse) VALUES ('00000000-0000-4000-8000-000000000002', {pid}, 70) RETURNING id"
        );
        probe(app, &token, true, &insert).await.unwrap();
        probe(app, &token, true, "UPDATE form_vitals SET pulse = 72").await.unwrap();
        let rows = probe(app, &token, false, "SELECT fhir_version, CAST(pulse AS INTEGER) AS pulse FROM form_vitals_history ORDER BY fhir_version").await.unwrap();
        assert_eq!(rows, json!([{"fhir_version": 1, "pulse": 70}, {"fhir_version": 2, "pulse": 72}]));
        let insert = format!("INSERT INTO issue_encounter (pid, list_id, encounter) VALUES ({pid}, 1, 1) RETURNING id");
        probe(app, &token, true, &insert).await.unwrap();
        probe(app, &token, true, "UPDATE issue_encounter SET resolved = 1").await.unwrap();
        let rows = probe(app, &token, false, "SELECT fhir_version, resolved FROM issue_encounter_history ORDER BY fhir_version").await.unwrap();
        assert_eq!(rows, json!([{"fhir_version": 1, "resolved": 0}, {"fhir_version": 2, "resolved": 1}]));
    }

    async fn huge_results_and_long_strings_are_stopped(app) {
        let token = app.user_token("default", "admin", SCOPE).await;
        // Millions of rows: the result stops at its size cap instead of filling the host.
        let error = probe(
            app,
            &token,
            false,
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000000) \
             SELECT 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' AS s FROM r",
        )
        .await
        .unwrap_err();
        assert!(error.contains("larger than 32 MiB"), "{error}");
        if app.backend == Backend::Sqlite {
            // Finding 3: a string doubled forty times (8 TiB) stops at SQLite's length
            // limit (16 MiB) instead of growing the server.
            let error = probe(
                app,
                &token,
                false,
                "WITH RECURSIVE r(s, n) AS (SELECT 'xxxxxxxx', 0 UNION ALL SELECT s || s, n + 1 FROM r WHERE n < 40) \
                 SELECT MAX(LENGTH(s)) AS longest FROM r",
            )
            .await
            .unwrap_err();
            assert!(error.contains("too big"), "{error}");
        }
        // The plugin and the server still serve.
        assert!(probe(app, &token, false, "SELECT COUNT(*) AS n FROM patient_data").await.is_ok());
    }

    async fn the_gate_and_the_database_agree_on_generated_sql(app) {
        let site = app.state.sites.get("default").await.unwrap();
        let grants = probe_grants();
        let postgres = app.backend == Backend::Postgres;
        let mut rng = StdRng::seed_from_u64(0x4ea7_0011);
        let mut disagreements = Vec::new();
        let (mut admitted, mut refused) = (0, 0);
        for case in 0..1000 {
            let query = Generator { rng: &mut rng, postgres }.statement();
            let outside = query.touched.iter().any(|t| !GRANTED.contains(t));
            let gate = site.gate.check(&grants, &query.sql, false);
            if gate.is_ok() {
                admitted += 1;
                if postgres {
                    if outside {
                        disagreements.push(format!("#{case} the gate admitted {} touching {:?}", query.sql, query.touched));
                    }
                } else {
                    // SQLite's own account of what the compiled program opens: a table named
                    // only in a part the planner dropped is never read.
                    let opened = opened_tables(&site.db, &query.sql).await;
                    if opened.iter().any(|t| !GRANTED.contains(&t.as_str())) {
                        disagreements.push(format!("#{case} the gate admitted {} which opens {opened:?}", query.sql));
                    }
                }
            } else {
                refused += 1;
            }
            // The database, with no gate in front: as the plugin's role on PostgreSQL.
            if postgres {
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut tx = site.gate.begin(&site.db, &grants, false, deadline).await.expect("a transaction");
                let ran = tx.query(&query.sql, Vec::new()).await;
                let _ = tx.rollback().await;
                match (&ran, outside) {
                    (Ok(_), true) => disagreements.push(format!(
                        "#{case} the database ran {} touching {:?}", query.sql, query.touched
                    )),
                    (Err(error), false) if gate.is_ok() => disagreements.push(format!(
                        "#{case} the gate admitted {} but the database refused: {error}", query.sql
                    )),
                    _ => {}
                }
            }
        }
        assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
        // The generator covers both sides.
        assert!(admitted > 100 && refused > 100, "admitted {admitted}, refused {refused}");
    }
}

/// PostgreSQL only: statements that a parser might let through run as the plugin's role,
/// and the database refuses them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_postgres_the_database_refuses_what_slips_past_the_parser() {
    let Some(app) = TestApp::spawn_with(Backend::Postgres, options()).await else {
        return;
    };
    let site = app.state.sites.get("default").await.unwrap();
    let grants = probe_grants();
    let deadline = Instant::now() + Duration::from_secs(10);
    let run = async |write: bool, sql: &str| {
        let mut tx = site
            .gate
            .begin(&site.db, &grants, write, deadline)
            .await
            .expect("a transaction");
        let result = tx.query(sql, Vec::new()).await;
        let _ = tx.rollback().await;
        result
    };
    // Granted: runs.
    run(false, "SELECT fname FROM patient_data").await.unwrap();
    run(true, "DELETE FROM lists").await.unwrap();
    for (write, sql) in [
        (false, "SELECT * FROM hearth.signing_keys"),
        (false, "SELECT * FROM signing_keys"),
        (false, "SELECT * FROM users"),
        (false, "SELECT * FROM pg_authid"),
        (false, "SELECT pg_read_file('/etc/passwd')"),
        (false, "SELECT lo_import('/etc/passwd')"),
        (false, "SELECT set_config('role', 'root', false)"),
        (false, "SELECT current_setting('data_directory')"),
        (true, "SELECT * INTO stolen_copy FROM patient_data"),
        (true, "CREATE TABLE stolen (a text)"),
        (true, "UPDATE patient_data SET fname = 'x'"),
        (false, "DELETE FROM lists"),
        (true, "COPY lists TO '/tmp/hearth-probe.csv'"),
    ] {
        assert!(run(write, sql).await.is_err(), "{sql} ran");
    }
    // Leaving the plugin's role leaves no privilege at all.
    for sql in [
        "SELECT * FROM hearth.signing_keys",
        "SELECT fname FROM patient_data",
        "SELECT * FROM hearth.users_secure",
    ] {
        let mut tx = site
            .gate
            .begin(&site.db, &grants, true, deadline)
            .await
            .unwrap();
        tx.execute("RESET ROLE", Vec::new()).await.unwrap();
        let error = tx.query(sql, Vec::new()).await.unwrap_err();
        assert!(
            format!("{error}").contains("permission denied"),
            "{sql}: {error}"
        );
        let _ = tx.rollback().await;
    }
    // set_config cannot switch to the site's own (superuser) user either.
    let mut tx = site
        .gate
        .begin(&site.db, &grants, true, deadline)
        .await
        .unwrap();
    let error = tx
        .query("SELECT set_config('role', 'root', true)", Vec::new())
        .await
        .unwrap_err();
    assert!(format!("{error}").contains("permission denied"), "{error}");
    let _ = tx.rollback().await;
    app.stop().await;
}

/// The tables (and views) whose b-trees SQLite's compiled program for `sql` opens, from
/// `EXPLAIN` (`OpenRead`/`OpenWrite` name a root page); a virtual table counts as its
/// module's name.
async fn opened_tables(db: &Db, sql: &str) -> BTreeSet<String> {
    use sqlx::Row;
    let Db::Sqlite(pool, _) = db else {
        return BTreeSet::new();
    };
    let roots: std::collections::HashMap<i64, String> =
        sqlx::query("SELECT rootpage, tbl_name FROM sqlite_schema WHERE rootpage > 0")
            .fetch_all(pool)
            .await
            .expect("the schema")
            .iter()
            .map(|row| (row.get::<i64, _>(0), row.get::<String, _>(1)))
            .collect();
    let program = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN {sql}")))
        .fetch_all(pool)
        .await
        .expect("the program");
    let mut opened = BTreeSet::new();
    for step in program {
        let opcode: String = step.get("opcode");
        let p2: i64 = step.get("p2");
        match opcode.as_str() {
            "OpenRead" | "OpenWrite" | "ReopenIdx" => {
                opened.insert(roots.get(&p2).cloned().unwrap_or_else(|| {
                    if p2 == 1 {
                        "sqlite_schema".into()
                    } else {
                        format!("root page {p2}")
                    }
                }));
            }
            "VOpen" => {
                opened.insert("a virtual table".into());
            }
            _ => {}
        }
    }
    opened
}

/// The tables the probe is granted.
const GRANTED: &[&str] = &["patient_data", "lists"];

/// Tables (and one text column of each) the generator draws from: granted, clinical but
/// not granted, and the host's own.
const TABLES: &[(&str, &str)] = &[
    ("patient_data", "fname"),
    ("lists", "type"),
    ("users", "username"),
    ("facility", "name"),
    ("users_secure", "username"),
    ("signing_keys", "kid"),
    ("api_token", "jti"),
];

/// A generated statement and the stored tables it reads.
struct Query {
    sql: String,
    touched: BTreeSet<&'static str>,
}

/// Generates SELECT statements of one text column `v` over [`TABLES`].
struct Generator<'r> {
    rng: &'r mut StdRng,
    postgres: bool,
}

impl Generator<'_> {
    fn table(&mut self) -> (&'static str, &'static str) {
        TABLES[self.rng.gen_range(0..TABLES.len())]
    }

    /// A table reference as written: plain, quoted, or (rarely) schema-qualified.
    fn name(&mut self, table: &str) -> String {
        match self.rng.gen_range(0..10) {
            0 => format!("\"{table}\""),
            1 if self.postgres => {
                let schema = if ["patient_data", "lists", "users", "facility"].contains(&table) {
                    "public"
                } else {
                    "hearth"
                };
                format!("{schema}.{table}")
            }
            1 => format!("main.{table}"),
            _ => table.to_owned(),
        }
    }

    fn statement(&mut self) -> Query {
        let query = self.select(2);
        match self.rng.gen_range(0..4) {
            0 => {
                let (table, _) = self.table();
                let name = self.name(table);
                let mut touched = query.touched;
                touched.insert(table);
                Query {
                    sql: format!(
                        "SELECT v FROM ({}) AS o ORDER BY (SELECT COUNT(*) FROM {name})",
                        query.sql
                    ),
                    touched,
                }
            }
            _ => query,
        }
    }

    /// A query whose one column is the text `v`.
    fn select(&mut self, depth: u32) -> Query {
        let choice = if depth == 0 {
            self.rng.gen_range(0..3)
        } else {
            self.rng.gen_range(0..12)
        };
        let (table, column) = self.table();
        let name = self.name(table);
        let one = |sql: String| Query {
            sql,
            touched: [table].into(),
        };
        match choice {
            0 => one(format!("SELECT {column} AS v FROM {name}")),
            1 => one(format!("SELECT CAST(COUNT(*) AS TEXT) AS v FROM {name}")),
            2 => one(format!(
                "SELECT 'x' AS v WHERE EXISTS (SELECT 1 FROM {name})"
            )),
            3 => {
                let inner = self.select(depth - 1);
                Query {
                    sql: format!("SELECT v FROM ({}) AS d", inner.sql),
                    touched: inner.touched,
                }
            }
            4 => {
                let (a, b) = (self.select(depth - 1), self.select(depth - 1));
                let op = ["UNION", "UNION ALL", "INTERSECT", "EXCEPT"][self.rng.gen_range(0..4)];
                Query {
                    sql: format!(
                        "SELECT v FROM ({}) AS a {op} SELECT v FROM ({}) AS b",
                        a.sql, b.sql
                    ),
                    touched: a.touched.union(&b.touched).copied().collect(),
                }
            }
            5 | 6 => {
                // A common table expression, often named like a stored table.
                let inner = self.select(depth - 1);
                let cte = ["c", "patient_data", "users_secure", "signing_keys", "lists"]
                    [self.rng.gen_range(0..5)];
                Query {
                    sql: format!("WITH {cte} AS ({}) SELECT v FROM {cte}", inner.sql),
                    touched: inner.touched,
                }
            }
            7 => {
                let inner = self.select(depth - 1);
                let mut touched = inner.touched;
                touched.insert(table);
                Query {
                    sql: format!(
                        "SELECT {column} AS v FROM {name} WHERE {column} IN (SELECT v FROM ({}) AS s)",
                        inner.sql
                    ),
                    touched,
                }
            }
            8 => {
                let inner = self.select(depth - 1);
                let mut touched = inner.touched;
                touched.insert(table);
                Query {
                    sql: format!("SELECT ({} LIMIT 1) AS v FROM {name}", inner.sql),
                    touched,
                }
            }
            9 => {
                let (other, other_column) = self.table();
                let other_name = self.name(other);
                Query {
                    sql: format!(
                        "SELECT a.{column} AS v FROM {name} a JOIN {other_name} b ON b.{other_column} = a.{column}"
                    ),
                    touched: [table, other].into(),
                }
            }
            10 if self.postgres => one(format!(
                "SELECT CAST(COUNT(*) AS TEXT) AS v FROM (TABLE {table}) AS t"
            )),
            10 => one(format!("SELECT max({column}) AS v FROM {name}")),
            _ => {
                let inner = self.select(depth - 1);
                let mut touched = inner.touched;
                touched.insert(table);
                Query {
                    sql: format!(
                        "SELECT {column} AS v FROM {name} GROUP BY {column} HAVING COUNT(*) > (SELECT COUNT(*) FROM ({}) AS h)",
                        inner.sql
                    ),
                    touched,
                }
            }
        }
    }
}
