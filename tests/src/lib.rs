//! The integration-test harness: the real server, in process, on a random port, with two
//! sites (`default` and `second`), on SQLite or on PostgreSQL, driven by a real HTTP
//! client.
//!
//! PostgreSQL runs when `HEARTH_TEST_POSTGRES_URL` names a server (an administrative URL
//! such as `postgres://root@127.0.0.1:5432/postgres`); each test gets fresh databases that
//! are dropped afterwards. [`both!`] writes a test once and runs it on both databases.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth::app::{App, AppState};
use hearth::auth::tokens::{self, Grant, Role};
use hearth::auth::users::{self, NewUser};
use hearth::config::Config;
use hearth::sites::Sites;
pub use serde_json::{Value, json};

pub mod bulk;
pub mod catalog;
pub mod fhir;
use tokio::sync::oneshot;

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite files in the test's data folder.
    Sqlite,
    /// Fresh databases on the PostgreSQL server named by `HEARTH_TEST_POSTGRES_URL`.
    Postgres,
}

/// The sites every test server has.
pub const SITES: [&str; 2] = ["default", "second"];

/// Scopes of a staff token that may do everything on the standard API.
pub const ALL_USER_SCOPES: &str = "openid offline_access api:oemr api:fhir api:port \
    user/patient.cruds user/encounter.cruds user/vital.cruds user/soap_note.cruds \
    user/medical_problem.cruds user/allergy.cruds user/medication.cruds user/surgery.cruds \
    user/dental_issue.cruds user/practitioner.cruds user/facility.cruds";

/// A running server.
pub struct TestApp {
    /// The public base URL: `http://127.0.0.1:PORT`, unless [`Options::public_url`] says
    /// otherwise.
    pub base: String,
    /// Where the server really listens: `http://127.0.0.1:PORT`.
    pub listen: String,
    /// Which database.
    pub backend: Backend,
    /// A client for the server.
    pub client: reqwest::Client,
    /// Shared state, for looking inside.
    pub state: Arc<AppState>,
    /// The data folder.
    pub data_dir: PathBuf,
    /// The configuration the server was built with.
    pub config: Config,
    /// `http://127.0.0.1:PORT` where `/metrics` is served apart, with
    /// [`Options::metrics_listen`].
    pub metrics: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    databases: Vec<String>,
    /// The administrative URL the databases were made with.
    admin_url: Option<String>,
}

/// How to build a test server.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `plugins.toml` text (default: the repository's file).
    pub plugins_toml: Option<String>,
    /// Extra lines for `hearth.toml`.
    pub max_body_bytes: Option<usize>,
    /// The public URL the server advertises (as if behind a proxy), instead of its
    /// listen address.
    pub public_url: Option<String>,
    /// Proxies whose `X-Forwarded-For` the server believes (`trusted_proxies`).
    pub trusted_proxies: Vec<String>,
    /// Whether the server watches the plugin files (default: as the host defaults).
    pub watch_plugins: Option<bool>,
    /// An administrative PostgreSQL URL to use instead of `HEARTH_TEST_POSTGRES_URL` (a
    /// private cluster a test may stop and start).
    pub postgres_url: Option<String>,
    /// `sqlite_heap_mib` (process-wide: only for a test binary of its own).
    pub sqlite_heap_mib: Option<usize>,
    /// `metrics_token`: `/metrics` on the main address, for scrapes sending this token.
    pub metrics_token: Option<String>,
    /// `metrics_listen` on a free port of 127.0.0.1: `/metrics` there alone.
    pub metrics_listen: bool,
    /// `bulk_jobs`: Bulk Data exports the server runs at once (0: none; default 2).
    pub bulk_jobs: Option<usize>,
    /// `scheduler_tick_ms`: how often the server looks for due background services
    /// (0: never on its own; default 5000).
    pub scheduler_tick_ms: Option<u64>,
}

impl Options {
    /// The defaults with this `plugins.toml` text.
    pub fn with_plugins(plugins_toml: impl Into<String>) -> Options {
        Options {
            plugins_toml: Some(plugins_toml.into()),
            ..Options::default()
        }
    }
}

/// The Python interpreter of the test suite's virtual environment (`target/py-venv`, made
/// by `scripts/setup-py-tests` from `tests/py/requirements.txt`; `HEARTH_TEST_PYTHON`
/// overrides it). Fails, saying how to fix it, unless that environment was installed from
/// the current requirements file: a test that needs Python never skips.
pub fn python() -> PathBuf {
    use sha2::Digest;
    if let Some(path) = std::env::var_os("HEARTH_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = workspace().join("target").join("py-venv");
    let requirements = std::fs::read(workspace().join("tests/py/requirements.txt"))
        .expect("tests/py/requirements.txt");
    let expected: String = sha2::Sha256::digest(&requirements)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let installed =
        std::fs::read_to_string(venv.join(".hearth-requirements-sha256")).unwrap_or_default();
    assert_eq!(
        installed.trim(),
        expected,
        "target/py-venv is missing or was not made from the current tests/py/requirements.txt: \
         run scripts/setup-py-tests (scripts/test runs it before the tests)"
    );
    venv.join("bin").join("python")
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace")
        .to_path_buf()
}

/// The PostgreSQL administrative URL, if tests should use PostgreSQL.
pub fn postgres_url() -> Option<String> {
    std::env::var("HEARTH_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
}

/// `prefix` and 16 random hex digits.
pub fn random_name(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

impl TestApp {
    /// A server on `backend` with the repository's plugins.
    pub async fn spawn(backend: Backend) -> Option<TestApp> {
        Self::spawn_with(backend, Options::default()).await
    }

    /// A server with `options`. `None` when PostgreSQL is asked for but not configured
    /// (the test then passes without running, and says so).
    pub async fn spawn_with(backend: Backend, options: Options) -> Option<TestApp> {
        let admin = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => match options.postgres_url.clone().or_else(postgres_url) {
                Some(url) => Some(url),
                None => {
                    eprintln!("skipped: HEARTH_TEST_POSTGRES_URL is not set");
                    return None;
                }
            },
        };
        let data_dir = std::env::temp_dir().join(random_name("hearth-test-"));
        std::fs::create_dir_all(&data_dir).expect("creating the data folder");
        let sites = Sites::open(&data_dir)
            .await
            .expect("opening the data folder");
        let mut databases = Vec::new();
        for site in SITES {
            let url = match &admin {
                None => None,
                Some(admin) => {
                    let name = random_name("hearth_t_");
                    create_database(admin, &name).await;
                    databases.push(name.clone());
                    Some(with_database(admin, &name))
                }
            };
            sites
                .create(site, url.as_deref())
                .await
                .expect("creating a site");
        }
        sites.close().await;

        let plugins_file = match &options.plugins_toml {
            Some(text) => {
                let path = data_dir.join("plugins.toml");
                std::fs::write(&path, text).expect("writing plugins.toml");
                path
            }
            None => workspace().join("plugins.toml"),
        };
        let mut config = Config::new(&data_dir);
        config.listen = ([127, 0, 0, 1], 0).into();
        config.http = true;
        config.plugins_file = plugins_file;
        config.cache_dir = Some(workspace().join("target").join("test-plugin-cache"));
        config.max_instances = 64;
        if let Some(bytes) = options.max_body_bytes {
            config.max_body_bytes = bytes;
        }
        config.public_url = options.public_url.clone();
        config.trusted_proxies = hearth::proxy::TrustedProxies::parse(
            options.trusted_proxies.iter().map(String::as_str),
        )
        .expect("trusted proxies");
        if let Some(watch) = options.watch_plugins {
            config.watch_plugins = watch;
        }
        if let Some(mib) = options.sqlite_heap_mib {
            config.sqlite_heap_mib = mib;
        }
        config.metrics_token = options.metrics_token.clone();
        if let Some(jobs) = options.bulk_jobs {
            config.bulk_jobs = jobs;
        }
        if let Some(tick) = options.scheduler_tick_ms {
            config.scheduler_tick_ms = tick;
        }
        if options.metrics_listen {
            config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
        }
        let (state, listen, metrics, shutdown, server) = serve(config.clone()).await;
        let base = state.base_url.clone();
        Some(TestApp {
            base,
            listen,
            backend,
            client: reqwest::Client::new(),
            state,
            data_dir,
            config,
            metrics,
            shutdown: Some(shutdown),
            server: Some(server),
            databases,
            admin_url: admin,
        })
    }

    /// `{base}/apis/{site}{path}`.
    pub fn api(&self, site: &str, path: &str) -> String {
        format!("{}/apis/{site}{path}", self.base)
    }

    /// Adds a staff user with `role` on `site`; answers the uuid.
    pub async fn user(&self, site: &str, username: &str, role: &str) -> String {
        let site = self.state.sites.get(site).await.expect("the site exists");
        users::add(
            &site,
            &NewUser {
                username: username.to_owned(),
                role: role.to_owned(),
                fname: "Test".into(),
                lname: username.to_owned(),
                npi: String::new(),
            },
            "correct horse battery",
        )
        .await
        .expect("adding a user")
    }

    /// A staff token for `username` (created as an admin when missing) with `scope`.
    pub async fn user_token(&self, site: &str, username: &str, scope: &str) -> String {
        let site_ref = self.state.sites.get(site).await.expect("the site exists");
        let existing: Option<(String, String)> = hearth::on_db!(&site_ref.db, |pool| {
            use sqlx::Row;
            sqlx::query("SELECT CAST(uuid AS TEXT) AS uuid, role FROM users WHERE username = $1")
                .bind(username)
                .fetch_optional(pool)
                .await
                .expect("reading users")
                .map(|row| (row.get("uuid"), row.get("role")))
        });
        let (uuid, role) = match existing {
            Some(found) => found,
            None => (self.user(site, username, "admin").await, "admin".to_owned()),
        };
        self.issue(
            site,
            Grant {
                client_id: "test-client".into(),
                subject: uuid,
                role: Role::User,
                username: Some(username.into()),
                acl_role: Some(role),
                scope: scope.into(),
                patient: None,
                context: json!({}),
                lifetime: 3600,
            },
        )
        .await
    }

    /// A patient token for the patient `puuid`.
    pub async fn patient_token(&self, site: &str, puuid: &str, scope: &str) -> String {
        self.issue(
            site,
            Grant {
                client_id: "test-client".into(),
                subject: puuid.into(),
                role: Role::Patient,
                username: None,
                acl_role: None,
                scope: scope.into(),
                patient: Some(puuid.into()),
                context: json!({}),
                lifetime: 3600,
            },
        )
        .await
    }

    /// Issues a token as the authorization server would.
    pub async fn issue(&self, site: &str, grant: Grant) -> String {
        let site = self.state.sites.get(site).await.expect("the site exists");
        tokens::issue(&site, &self.base, &grant)
            .await
            .expect("issuing a token")
            .token
    }

    /// Sends `method` to `url` with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, url);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Reply::from(request.send().await.expect("the server answers")).await
    }

    /// GET with a token.
    pub async fn get(&self, url: &str, token: &str) -> Reply {
        self.send(reqwest::Method::GET, url, Some(token), None)
            .await
    }

    /// POST JSON with a token.
    pub async fn post(&self, url: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::POST, url, Some(token), Some(body))
            .await
    }

    /// PUT JSON with a token.
    pub async fn put(&self, url: &str, token: &str, body: Value) -> Reply {
        self.send(reqwest::Method::PUT, url, Some(token), Some(body))
            .await
    }

    /// DELETE with a token.
    pub async fn delete(&self, url: &str, token: &str) -> Reply {
        self.send(reqwest::Method::DELETE, url, Some(token), None)
            .await
    }

    /// Creates a patient through the API; answers (pid, uuid).
    pub async fn create_patient(
        &self,
        site: &str,
        token: &str,
        fname: &str,
        lname: &str,
    ) -> (i64, String) {
        let reply = self
            .post(
                &self.api(site, "/api/patient"),
                token,
                json!({"fname": fname, "lname": lname, "sex": "Female", "DOB": "1980-05-06"}),
            )
            .await;
        assert_eq!(reply.status, 201, "creating a patient: {}", reply.text);
        (
            reply.json["data"]["pid"].as_i64().expect("pid"),
            reply.json["data"]["uuid"]
                .as_str()
                .expect("uuid")
                .to_owned(),
        )
    }

    /// Waits until every audit row so far is written.
    pub async fn flush_audit(&self) {
        self.state.audit.flush().await;
    }

    /// Runs a query on a site's database and answers the rows as JSON objects.
    pub async fn rows(&self, site: &str, sql: &'static str) -> Vec<Value> {
        let site = self.state.sites.get(site).await.expect("the site exists");
        hearth::on_db!(&site.db, |pool| {
            use sqlx::{Column, Row, TypeInfo, ValueRef};
            let rows = sqlx::query(sql).fetch_all(pool).await.expect("query");
            rows.iter()
                .map(|row| {
                    let mut object = serde_json::Map::new();
                    for (i, column) in row.columns().iter().enumerate() {
                        let raw = row.try_get_raw(i).expect("value");
                        let value = if raw.is_null() {
                            Value::Null
                        } else {
                            match raw.type_info().name() {
                                "INTEGER" | "INT8" | "INT4" | "INT2" | "BIGINT" => {
                                    json!(row.try_get::<i64, _>(i).unwrap_or_default())
                                }
                                _ => json!(row.try_get::<String, _>(i).unwrap_or_default()),
                            }
                        };
                        object.insert(column.name().to_owned(), value);
                    }
                    Value::Object(object)
                })
                .collect()
        })
    }

    /// A second server on the same data folder and databases, as another host process
    /// behind the same public URL would be: its own state, caches and connection pools,
    /// sharing only the databases with this one.
    pub async fn peer(&self) -> Peer {
        let mut config = self.config.clone();
        config.listen = ([127, 0, 0, 1], 0).into();
        config.public_url = Some(self.state.base_url.clone());
        let (_, base, _, shutdown, server) = serve(config).await;
        Peer {
            base,
            shutdown: Some(shutdown),
            server: Some(server),
        }
    }

    /// Stops the server and removes its data (and PostgreSQL databases).
    pub async fn stop(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
        if let Some(admin) = self.admin_url.clone() {
            for name in self.databases.drain(..) {
                drop_database(&admin, &name).await;
            }
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Builds a server from `config` and runs it on a task until the sender is used or
/// dropped; answers its state, where it really listens (`http://127.0.0.1:PORT`), the
/// sender and the task.
async fn serve(
    config: Config,
) -> (
    Arc<AppState>,
    String,
    Option<String>,
    oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let app = App::build(config).await.expect("building the app");
    let listen = format!("http://{}", app.local_addr());
    let metrics = app
        .metrics_addr()
        .map(|address| format!("http://{address}"));
    let state = app.state.clone();
    let (shutdown, stop) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run(async {
            let _ = stop.await;
        })
        .await
        .expect("serving");
    });
    (state, listen, metrics, shutdown, server)
}

/// A second server process on a [`TestApp`]'s databases (see [`TestApp::peer`]).
pub struct Peer {
    /// `http://127.0.0.1:PORT`, where this process really listens.
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Peer {
    /// `{base}/apis/{site}{path}` on this process.
    pub fn api(&self, site: &str, path: &str) -> String {
        format!("{}/apis/{site}{path}", self.base)
    }

    /// Stops this process's server.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if !self.databases.is_empty()
            && let Some(admin) = self.admin_url.clone()
        {
            let databases = std::mem::take(&mut self.databases);
            // Best effort when a test panicked before `stop`.
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    runtime.block_on(async {
                        for name in databases {
                            drop_database(&admin, &name).await;
                        }
                    });
                }
            });
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// The administrative URL with another database.
pub fn with_database(admin: &str, name: &str) -> String {
    match admin.rfind('/') {
        Some(slash) if admin[..slash].ends_with(|c: char| c != '/') => {
            format!("{}/{name}", &admin[..slash])
        }
        _ => format!("{admin}/{name}"),
    }
}

/// Creates a test database.
pub async fn create_database(admin: &str, name: &str) {
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("connecting to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("creating a test database");
    pool.close().await;
}

/// Drops a test database and the roles Hearth made for it (roles belong to the whole
/// PostgreSQL server, so they would outlive the database).
pub async fn drop_database(admin: &str, name: &str) {
    if let Ok(pool) = sqlx::PgPool::connect(admin).await {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&pool)
        .await;
        drop_roles(&pool, &hearth::db::roles::role_prefix(name)).await;
        pool.close().await;
    }
}

/// Drops every role whose name starts with `prefix`.
pub async fn drop_roles(pool: &sqlx::PgPool, prefix: &str) {
    use sqlx::Row;
    let roles = sqlx::query("SELECT CAST(rolname AS TEXT) AS rolname FROM pg_roles WHERE left(rolname, length($1)) = $1")
        .bind(prefix)
        .fetch_all(pool)
        .await
        .unwrap_or_default();
    for role in roles {
        let name: String = role.get("rolname");
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP ROLE IF EXISTS \"{}\"",
            name.replace('"', "\"\"")
        )))
        .execute(pool)
        .await;
    }
}

/// An HTTP answer, read whole.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: reqwest::header::HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`null` when it is not JSON).
    pub json: Value,
}

impl Reply {
    /// Reads a response.
    pub async fn from(response: reqwest::Response) -> Reply {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Writes each test once and runs it on SQLite and on PostgreSQL:
///
/// ```ignore
/// both! {
///     async fn patients_are_created(app) { ... }
/// }
/// ```
/// makes `patients_are_created::sqlite` and `patients_are_created::postgres`.
#[macro_export]
macro_rules! both {
    (options = $options:expr; $($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block)*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($app: &$crate::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::TestApp::spawn_with($crate::Backend::Sqlite, $options)
                    .await
                    .expect("SQLite always runs");
                run(&app).await;
                app.stop().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(app) = $crate::TestApp::spawn_with($crate::Backend::Postgres, $options).await else {
                    return;
                };
                run(&app).await;
                app.stop().await;
            }
        }
    )*};
    ($($(#[$meta:meta])* async fn $name:ident($app:ident) $body:block)*) => {
        $crate::both! {
            options = $crate::Options::default();
            $($(#[$meta])* async fn $name($app) $body)*
        }
    };
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

/// The URL of `path` under the site's authorization server.
pub fn oauth(app: &TestApp, site: &str, path: &str) -> String {
    format!("{}/oauth2/{site}{path}", app.base)
}

/// `pairs` as an `application/x-www-form-urlencoded` string.
pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut out = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        out.append_pair(name, value);
    }
    out.finish()
}

/// The folder the host build writes plugins to.
pub fn dist() -> PathBuf {
    workspace().join("target").join("plugins").join("dist")
}

/// A private plugin folder holding `patient.wasm` (version 1), so a test can replace it;
/// removed when dropped.
pub struct PluginDir(pub PathBuf);

impl PluginDir {
    /// A new folder with a copy of the built `patient.wasm`.
    pub fn new() -> PluginDir {
        let dir =
            std::env::temp_dir().join(format!("hearth-plugins-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(dist().join("patient.wasm"), dir.join("patient.wasm")).unwrap();
        PluginDir(dir)
    }

    /// Replaces `patient.wasm` the careful way: write beside it, then rename over it.
    pub fn replace(&self, bytes: &[u8]) {
        let temp = self.0.join(".patient.wasm.tmp");
        std::fs::write(&temp, bytes).unwrap();
        std::fs::rename(&temp, self.0.join("patient.wasm")).unwrap();
    }

    /// Replaces `patient.wasm` by writing it in place (truncate, then write).
    pub fn overwrite(&self, bytes: &[u8]) {
        std::fs::write(self.0.join("patient.wasm"), bytes).unwrap();
    }

    /// A `plugins.toml` loading this folder's patient plugin on every site.
    pub fn manifest(&self) -> String {
        format!(
            "dir = {dir:?}\n\n[plugins.patient]\nfile = \"patient.wasm\"\nversion = \">=1.0\"\n\n[sites.\"*\"]\nplugins = [\"patient\"]\n",
            dir = self.0.display().to_string()
        )
    }
}

impl Default for PluginDir {
    fn default() -> PluginDir {
        PluginDir::new()
    }
}

impl Drop for PluginDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The claims of a JWT, unverified.
pub fn claims(jwt: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// Registers a client on `site` (RFC 7591) with `body`.
pub async fn register(app: &TestApp, site: &str, body: serde_json::Value) -> Reply {
    app.send(
        reqwest::Method::POST,
        &oauth(app, site, "/registration"),
        None,
        Some(body),
    )
    .await
}

/// Enables client `client_id` on `site`, as `hearth client enable` does.
pub async fn enable(app: &TestApp, site: &str, client_id: &str) {
    let site = app.state.sites.get(site).await.expect("site");
    assert!(
        hearth::oauth::clients::set_enabled(&site, client_id, true)
            .await
            .expect("enabling")
    );
}
