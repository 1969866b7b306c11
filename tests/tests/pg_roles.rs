//! PostgreSQL set-up for plugin roles: an existing site's host tables move into the schema
//! `hearth` with their data; a database user that may not create roles gets the exact SQL
//! to run and the site waits for it; a site whose plugins' role could become more than it
//! should is refused; plugin connections the server closed while they sat idle are
//! replaced without the request seeing it. Every test here needs `HEARTH_TEST_POSTGRES_URL` and passes without
//! running when it is not set.

use std::time::{Duration, Instant};

use hearth::db::grants::Grants;
use hearth::sites::Sites;
use hearth_tests::*;
use sqlx::Row;

fn probe_grants() -> Grants {
    Grants::new(
        "test-probe",
        ["patient_data".to_owned()],
        ["lists".to_owned()],
    )
    .unwrap()
}

/// A fresh data folder for a `Sites` registry.
fn data_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(random_name("hearth-pg-roles-"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A new database on the server `admin` names, its URL, and a `Sites` registry in a
/// fresh data folder.
async fn fresh_database(admin: &str) -> (String, String, std::path::PathBuf, Sites) {
    let name = random_name("hearth_t_");
    create_database(admin, &name).await;
    let url = with_database(admin, &name);
    let dir = data_dir();
    let sites = Sites::open(&dir).await.unwrap();
    (name, url, dir, sites)
}

/// Runs `sql` as the probe's role on `site`, in a plugin's read transaction.
async fn query_as_plugin(
    site: &hearth::sites::Site,
    sql: &str,
) -> Vec<hearth::db::store::SqlValue> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut tx = site
        .gate
        .begin(&site.db, &probe_grants(), false, deadline)
        .await
        .expect("the plugin's transaction");
    let rows = tx.query(sql, Vec::new()).await.expect("a granted read");
    let _ = tx.rollback().await;
    rows.values().into_iter().flatten().collect()
}

/// Reads `patient_data` as the probe's role on `site`.
async fn read_as_plugin(site: &hearth::sites::Site) -> Vec<hearth::db::store::SqlValue> {
    query_as_plugin(site, "SELECT fname FROM patient_data ORDER BY fname").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_site_keeps_its_data_when_host_tables_move_into_their_schema() {
    let Some(admin) = postgres_url() else { return };
    let name = random_name("hearth_t_");
    create_database(&admin, &name).await;
    let url = with_database(&admin, &name);
    // The site as it was before 0400: every other migration applied.
    let old = data_dir().join("migrations");
    std::fs::create_dir_all(&old).unwrap();
    for entry in std::fs::read_dir(workspace().join("migrations/postgres")).unwrap() {
        let entry = entry.unwrap();
        if !entry.file_name().to_string_lossy().starts_with("0400") {
            std::fs::copy(entry.path(), old.join(entry.file_name())).unwrap();
        }
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    sqlx::migrate::Migrator::new(old.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    sqlx::raw_sql(
        "INSERT INTO site_settings (name, value) VALUES ('probe.kept', 'yes');
         INSERT INTO patient_data (uuid, pid, fname) VALUES ('00000000-0000-4000-8000-000000000009', 9, 'Old');",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let dir = data_dir();
    let sites = Sites::open(&dir).await.unwrap();
    let site = sites
        .create("old", Some(url.as_str()))
        .await
        .expect("the upgrade");
    let kept: Vec<String> = hearth::on_db!(&site.db, |pool| {
        sqlx::query(
            "SELECT value || ' ' || CAST(to_regclass('public.site_settings') IS NULL AS TEXT) AS v
             FROM hearth.site_settings WHERE name = 'probe.kept'",
        )
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get("v"))
        .collect()
    });
    assert_eq!(
        kept,
        ["yes true"],
        "the setting moved into hearth with its value"
    );
    assert!(
        !site.keys().verifiers.is_empty(),
        "a signing key was made and is readable"
    );
    assert_eq!(
        read_as_plugin(&site).await,
        [hearth::db::store::SqlValue::Text("Old".into())]
    );
    sites.close().await;
    drop_database(&admin, &name).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_who_may_not_create_roles_gets_the_sql_to_run_and_the_site_waits_for_it() {
    let Some(admin) = postgres_url() else { return };
    let owner = random_name("hearth_o_");
    let name = random_name("hearth_t_");
    let root = sqlx::PgPool::connect(&admin).await.unwrap();
    for sql in [
        format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB"),
        format!("CREATE DATABASE {name} OWNER {owner}"),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&root)
            .await
            .unwrap();
    }
    // The owner's URL: same server, the owner's name (the test server trusts local users).
    let url = with_database(&admin, &name).replacen("://root@", &format!("://{owner}@"), 1);
    assert!(
        url.contains(&owner),
        "the administrative URL names the user root: {admin}"
    );

    let dir = data_dir();
    let sites = Sites::open(&dir).await.unwrap();
    let error = format!(
        "{:#}",
        sites
            .create("clinic", Some(url.as_str()))
            .await
            .err()
            .expect("refused")
    );
    let sql = format!("ALTER ROLE \"{owner}\" CREATEROLE;");
    assert!(error.contains(&sql), "{error}");
    assert!(error.contains("may not create roles"), "{error}");
    assert!(
        sites.list().await.unwrap().is_empty(),
        "the site was not registered"
    );

    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&root)
        .await
        .unwrap();
    let site = sites
        .create("clinic", Some(url.as_str()))
        .await
        .expect("set up once the SQL ran");
    assert!(read_as_plugin(&site).await.is_empty());
    sites.close().await;

    drop_database(&admin, &name).await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {owner}")))
        .execute(&root)
        .await
        .unwrap();
    root.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_whose_plugins_role_could_become_a_superuser_is_refused() {
    let Some(admin) = postgres_url() else { return };
    let (name, url, dir, sites) = fresh_database(&admin).await;
    sites
        .create("safe", Some(url.as_str()))
        .await
        .expect("a safe set-up");
    sites.close().await;

    let root = sqlx::PgPool::connect(&admin).await.unwrap();
    let login = format!("{}plugins", hearth::db::roles::role_prefix(&name));
    let me: String = sqlx::query("SELECT CAST(current_user AS TEXT) AS me")
        .fetch_one(&root)
        .await
        .unwrap()
        .get("me");
    let grant = format!("GRANT \"{me}\" TO \"{login}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(grant))
        .execute(&root)
        .await
        .unwrap();

    // A second data folder on the same database, sharing the first one's key-encryption
    // key (as servers sharing sites must), so the site's sealed signing keys open.
    let again = data_dir();
    std::fs::copy(dir.join("kek"), again.join("kek")).unwrap();
    let sites = Sites::open(&again).await.unwrap();
    let error = format!(
        "{:#}",
        sites
            .create("unsafe", Some(url.as_str()))
            .await
            .err()
            .expect("refused")
    );
    assert!(
        error.contains("unsafe") && error.contains(&login) && error.contains(&me),
        "{error}"
    );
    sites.close().await;

    let revoke = format!("REVOKE \"{me}\" FROM \"{login}\"");
    sqlx::raw_sql(sqlx::AssertSqlSafe(revoke))
        .execute(&root)
        .await
        .unwrap();
    root.close().await;
    drop_database(&admin, &name).await;
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_dir_all(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_statements_are_planned_once_for_every_value_and_never_jit_compiled() {
    let Some(admin) = postgres_url() else { return };
    let (name, url, dir, sites) = fresh_database(&admin).await;
    let site = sites.create("plans", Some(url.as_str())).await.unwrap();
    assert_eq!(
        query_as_plugin(&site, "SELECT current_setting('plan_cache_mode') AS mode").await,
        [hearth::db::store::SqlValue::Text(
            "force_generic_plan".into()
        )],
        "a plugin's prepared statement keeps its generic plan (docs/admin.md)"
    );
    assert_eq!(
        query_as_plugin(&site, "SELECT current_setting('jit') AS jit").await,
        [hearth::db::store::SqlValue::Text("off".into())],
        "a plugin's statement is never JIT-compiled, which no run would reuse (docs/admin.md)"
    );
    sites.close().await;
    drop_database(&admin, &name).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_connections_the_server_closed_while_idle_are_replaced_unseen() {
    let Some(admin) = postgres_url() else { return };
    let (name, url, dir, sites) = fresh_database(&admin).await;
    let site = sites.create("closed", Some(url.as_str())).await.unwrap();
    // Three transactions at once leave three idle connections in the plugins' pool.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut open = Vec::new();
    for _ in 0..3 {
        let tx = site
            .gate
            .begin(&site.db, &probe_grants(), false, deadline)
            .await
            .expect("the plugin's transaction");
        open.push(tx);
    }
    for tx in open {
        tx.rollback().await.unwrap();
    }
    // The server ends every one of them (as a restart or an idle timeout would), and
    // the host learns nothing of it until it next uses them.
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let plugins = "SELECT pid FROM pg_stat_activity \
         WHERE datname = current_database() AND usename LIKE 'hearth%plugins'";
    let ended: Vec<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT pg_terminate_backend(pid) FROM ({plugins}) AS p"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        ended.len() >= 3 && ended.iter().all(|ended| *ended),
        "the pool's connections, three at least: {ended:?}"
    );
    let gone = Instant::now() + Duration::from_secs(10);
    while sqlx::query(sqlx::AssertSqlSafe(plugins))
        .fetch_optional(&pool)
        .await
        .unwrap()
        .is_some()
    {
        assert!(
            Instant::now() < gone,
            "the ended connections are still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The next plugin transaction runs on a fresh connection, as if nothing happened.
    assert!(read_as_plugin(&site).await.is_empty());
    assert_eq!(
        sqlx::query(sqlx::AssertSqlSafe(plugins))
            .fetch_all(&pool)
            .await
            .unwrap()
            .len(),
        1,
        "one new connection"
    );
    pool.close().await;
    sites.close().await;
    drop_database(&admin, &name).await;
    let _ = std::fs::remove_dir_all(dir);
}
