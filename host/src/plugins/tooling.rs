//! Tools for plugin authors: `hearth plugin new` scaffolds a plugin crate that builds and
//! passes its own tests at once, and `hearth plugin call` runs requests against a plugin
//! file with no server, on a scratch SQLite database.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::{Value, json};

use super::engine::Engine;
use super::loader::{self, Family, Method};
use super::manifest::Limits;
use super::{Match, SitePlugin, SiteTable, bindings, runtime};
use crate::db::grants::Grants;
use crate::sites::Sites;

/// The SDK the binary carries (see `host/build.rs`): its sources, the contract's WIT and
/// a stand-alone manifest.
mod embedded {
    include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));
}

/// The contract the embedded SDK builds plugins against (the newest the host loads).
pub fn sdk_contract() -> &'static str {
    loader::SUPPORTED_CONTRACTS
        .last()
        .expect("the host supports a contract")
}

/// Writes the SDK the binary carries into `parent/hearth-sdk-<contract>/` (the crate in
/// its `sdk/` folder, the contract's WIT in `wit/`), so plugins build wherever the binary
/// runs, without a Hearth source tree. Files already there with the same contents are
/// left alone; a folder for the same contract written by another host build is brought up
/// to this one's files. Answers the SDK crate's folder.
pub fn write_sdk(parent: &Path) -> Result<PathBuf> {
    let root = parent.join(format!("hearth-sdk-{}", sdk_contract()));
    let mut files: Vec<(String, &str)> = embedded::SDK_FILES
        .iter()
        .map(|(path, text)| ((*path).to_owned(), *text))
        .collect();
    files.push(("sdk/Cargo.toml".to_owned(), embedded::SDK_MANIFEST));
    for (path, text) in files {
        let target = root.join(&path);
        if std::fs::read_to_string(&target).is_ok_and(|old| old == text) {
            continue;
        }
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(root.join("sdk"))
}

/// Writes a new plugin crate `NAME` in `parent/NAME`; answers its folder.
///
/// Inside a Hearth workspace's `plugins/` folder the crate inherits the workspace's
/// settings and dependencies (and becomes a member by the `plugins/*` glob); anywhere else
/// it is a workspace of its own that depends on the SDK at `sdk`, or by default on the SDK
/// the binary carries, written next to it by [`write_sdk`] and named by a relative path
/// (so the two folders can move together).
pub fn new_plugin(parent: &Path, name: &str, sdk: Option<&Path>) -> Result<PathBuf> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        bail!(
            "'{name}' is not a plugin name: kebab-case, starting with a letter (e.g. lab-result)"
        );
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} exists already", dir.display());
    }
    let in_workspace = workspace_plugins_folder(parent);
    let snake = name.replace('-', "_");
    let camel: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    let manifest = if in_workspace {
        format!(
            r#"[package]
name = "hearth-plugin-{name}"
description = "The {name} resource"
version = "0.1.0"
edition.workspace = true
rust-version.workspace = true
license.workspace = true

[lib]
crate-type = ["cdylib"]

[dependencies]
hearth-sdk.workspace = true
"#
        )
    } else {
        let sdk = match sdk {
            Some(sdk) => sdk
                .canonicalize()
                .with_context(|| {
                    format!(
                        "the SDK is not at {} (give the folder holding its Cargo.toml)",
                        sdk.display()
                    )
                })?
                .display()
                .to_string(),
            None => {
                write_sdk(parent)?;
                format!("../hearth-sdk-{}/sdk", sdk_contract())
            }
        };
        format!(
            r#"[package]
name = "hearth-plugin-{name}"
description = "The {name} resource"
version = "0.1.0"
edition = "2024"
rust-version = "1.95"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
hearth-sdk = {{ path = {sdk:?} }}

# Small, fast components: cargo build --release --target wasm32-wasip2
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
strip = "debuginfo"

# A workspace of its own, wherever it is put.
[workspace]
"#
        )
    };
    let source = LIB_TEMPLATE
        .replace("{name}", name)
        .replace("{snake}", &snake)
        .replace("{Camel}", &camel);
    let readme = README_TEMPLATE
        .replace("{name}", name)
        .replace("{snake}", &snake);
    std::fs::create_dir_all(dir.join("src"))
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("Cargo.toml"), manifest)?;
    std::fs::write(dir.join("src").join("lib.rs"), source)?;
    std::fs::write(dir.join("README.md"), readme)?;
    std::fs::create_dir_all(dir.join("migrations"))?;
    std::fs::write(
        dir.join("migrations").join("0001_items.sqlite.sql"),
        SQLITE_TEMPLATE.replace("{snake}", &snake),
    )?;
    std::fs::write(
        dir.join("migrations").join("0001_items.postgres.sql"),
        POSTGRES_TEMPLATE.replace("{snake}", &snake),
    )?;
    Ok(dir)
}

/// True when `folder` is the `plugins/` folder of a Hearth workspace.
fn workspace_plugins_folder(folder: &Path) -> bool {
    let Ok(folder) = folder.canonicalize() else {
        return false;
    };
    if folder.file_name().is_none_or(|n| n != "plugins") {
        return false;
    }
    let Some(root) = folder.parent() else {
        return false;
    };
    std::fs::read_to_string(root.join("Cargo.toml"))
        .is_ok_and(|text| text.contains("[workspace]") && text.contains("\"plugins/*\""))
}

const LIB_TEMPLATE: &str = r##"//! The {name} resource, kept in a table of the plugin's own:
//!
//! - `POST /api/{name}` (scope `{snake}.c`) stores `{"name": "…"}` and answers its id;
//! - `GET /api/{name}/:id` (scope `{snake}.r`) reads it back.
//!
//! The table `x_{snake}__items` belongs to the plugin: a plugin owns the tables named with
//! its namespace (`x_`, its name with `-` written `_`, then `__`). Its migrations, in
//! `migrations/` (an SQLite and a PostgreSQL text each), travel inside the component; the
//! host applies them on every site that loads the plugin before the plugin serves it, and
//! the plugin reads and writes its own tables without declaring them. A released migration
//! never changes: add the next one (`Migration::new(2, …)`) for every change of schema.

use hearth_sdk::prelude::*;

/// The plugin.
pub struct {Camel};

impl Resource for {Camel} {
    const NAME: &'static str = "{name}";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "The {name} resource";
    const MIGRATIONS: &'static [Migration] = &[Migration::new(
        1,
        "items",
        include_str!("../migrations/0001_items.sqlite.sql"),
        include_str!("../migrations/0001_items.postgres.sql"),
    )];
    const ROUTES: &'static [Route] = &[
        Route::post("/api/{name}", "{snake}.c", create).summary("Store one {name}"),
        Route::get("/api/{name}/:id", "{snake}.r", get_one).summary("Read one {name}"),
    ];
}

hearth_sdk::export!({Camel});

fn create(req: &Request) -> Result<Response> {
    let body = req.json_object()?;
    let name = match body.get("name").and_then(|name| name.as_str()) {
        Some(name) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => return Err(ApiError::invalid("name", "required", "name is required")),
    };
    let row = store::query_one(
        "INSERT INTO x_{snake}__items (name) VALUES ($1) RETURNING id, name",
        params![name],
    )?
    .ok_or_else(|| ApiError::Internal("the insert answered no row".into()))?;
    Ok(Response::created(Json::from_one(&row)))
}

fn get_one(req: &Request) -> Result<Response> {
    let id = req.id("id")?;
    let row = store::query_one(
        "SELECT id, name FROM x_{snake}__items WHERE id = $1",
        params![id],
    )?
    .ok_or_else(ApiError::not_found)?;
    Ok(Response::ok(Json::from_one(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    #[test]
    fn an_item_is_stored_in_the_plugins_own_table() {
        let mut host = MockHost::new().on_query(
            "INSERT INTO x_{snake}__items",
            Rows::from_values(&["id", "name"], vec![vec![7.into(), "first".into()]]),
        );
        let post =
            |body: &[u8]| TestRequest::post("/api/{name}", Default::default()).raw_body(body);
        let response = host.call::<{Camel}>(post(br#"{"name": " first "}"#));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json()["data"]["id"], 7);
        assert_eq!(host.queries()[0].1, vec![Value::from("first")]);
        let missing = host.call::<{Camel}>(post(b"{}"));
        assert_eq!(missing.status, 400, "{}", missing.text());
    }

    #[test]
    fn an_item_is_read_back_and_a_missing_one_is_404() {
        let mut host = MockHost::new().on_query(
            "WHERE id = $1",
            Rows::from_values(&["id", "name"], vec![vec![7.into(), "first".into()]]),
        );
        let response = host.call::<{Camel}>(TestRequest::get("/api/{name}/7"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["name"], "first");
        assert_eq!(host.queries()[0].1, vec![Value::Integer(7)]);
        let mut empty =
            MockHost::new().on_query("WHERE id = $1", Rows::from_values(&["id", "name"], vec![]));
        let response = empty.call::<{Camel}>(TestRequest::get("/api/{name}/8"));
        assert_eq!(response.status, 404, "{}", response.text());
    }
}
"##;

/// The first migration, SQLite flavour.
const SQLITE_TEMPLATE: &str = "CREATE TABLE x_{snake}__items (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL
);
";

/// The first migration, PostgreSQL flavour.
const POSTGRES_TEMPLATE: &str = "CREATE TABLE x_{snake}__items (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL
);
";

const README_TEMPLATE: &str = r#"# {name}

A Hearth plugin with a table of its own (`x_{snake}__items`, created by the migrations in
`migrations/`) and scopes of its own (`{snake}.c`, `{snake}.r`). Test it natively, build it
to a component, check it against the host, try it without a server:

```sh
cargo test
cargo build --release --target wasm32-wasip2
hearth plugin check target/wasm32-wasip2/release/hearth_plugin_{snake}.wasm
hearth plugin call target/wasm32-wasip2/release/hearth_plugin_{snake}.wasm --request req.json
```

Then add it to a running server's `plugins.toml` (the server reloads it, applies its
migrations to each site that loads it, and clients can register for `user/{snake}.c` and
`user/{snake}.r`): see "From `plugin new` to a running site" in the Hearth docs
(`docs/plugins.md`).
"#;

/// One request of `hearth plugin call --request FILE` (the file holds one or a list).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRequest {
    /// GET, POST, PUT, PATCH or DELETE (default GET).
    #[serde(default = "get")]
    pub method: String,
    /// The path with its family, e.g. `/api/patient/…`; a `?query` is decoded.
    pub path: String,
    /// Query parameters (added to any in the path).
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Headers passed to the plugin.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A JSON body.
    pub body: Option<Value>,
    /// Who calls (default: a staff user `admin` holding every scope the route needs).
    #[serde(default)]
    pub caller: CallCaller,
}

fn get() -> String {
    "GET".into()
}

/// The caller of a [`CallRequest`].
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallCaller {
    /// user, patient, system or anonymous.
    pub role: String,
    /// The subject's uuid.
    pub subject: String,
    /// A staff user name.
    pub username: String,
    /// Granted scopes (text, as in a token).
    pub scopes: String,
    /// The patient in context.
    pub patient: Option<String>,
}

impl Default for CallCaller {
    fn default() -> Self {
        CallCaller {
            role: "user".into(),
            subject: "00000000-0000-4000-8000-0000000000aa".into(),
            username: "admin".into(),
            scopes: String::new(),
            patient: None,
        }
    }
}

/// Parses a request file: one request object, or a list run in order.
pub fn parse_requests(text: &str) -> Result<Vec<CallRequest>> {
    let value: Value = serde_json::from_str(text).context("the request file is not JSON")?;
    let list = match value {
        Value::Array(items) => items,
        other => vec![other],
    };
    list.into_iter()
        .enumerate()
        .map(|(i, item)| serde_json::from_value(item).with_context(|| format!("request {}", i + 1)))
        .collect()
}

/// Runs `requests` through the plugin in `file` on a fresh, migrated SQLite database
/// (one database for all of them, so a POST can be read back); answers one JSON object
/// per request: `status`, `headers`, `body`.
pub async fn call(
    engine: &Arc<Engine>,
    file: &Path,
    requests: &[CallRequest],
) -> Result<Vec<Value>> {
    let loaded = Arc::new(loader::load(engine, file).await?);
    let scratch = std::env::temp_dir().join(format!(
        "hearth-plugin-call-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = async {
        let sites = Sites::open(&scratch).await?;
        let site = sites.create("scratch", None).await?;
        super::schema::apply(&site.db, &loaded.name, &loaded.migrations).await?;
        site.gate.schema_changed();
        let plugin = Arc::new(SitePlugin {
            grants: Arc::new(
                Grants::new(&loaded.name, loaded.reads.clone(), loaded.writes.clone())
                    .map_err(anyhow::Error::msg)?
                    .with_namespace(loaded.namespace.clone()),
            ),
            loaded: loaded.clone(),
            config: Default::default(),
            limits: Limits::default(),
            permits: Arc::new(tokio::sync::Semaphore::new(1)),
        });
        let table = SiteTable::new(vec![plugin.clone()], &Default::default())?;
        let mut answers = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            let answer = call_one(engine, &site, &table, request)
                .await
                .with_context(|| {
                    format!("request {} ({} {})", i + 1, request.method, request.path)
                })?;
            answers.push(answer);
        }
        sites.close().await;
        Ok(answers)
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

async fn call_one(
    engine: &Arc<Engine>,
    site: &Arc<crate::sites::Site>,
    table: &SiteTable,
    request: &CallRequest,
) -> Result<Value> {
    let method: Method = match request.method.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        other => bail!("unknown method {other}"),
    };
    let (path, query_text) = request.path.split_once('?').unwrap_or((&request.path, ""));
    let (family, family_name, below) = [
        ("/api", Family::Api, "api"),
        ("/portal", Family::Portal, "portal"),
        ("/fhir", Family::Fhir, "fhir"),
    ]
    .into_iter()
    .find_map(|(prefix, family, name)| {
        path.strip_prefix(prefix)
            .filter(|rest| rest.is_empty() || rest.starts_with('/'))
            .map(|rest| (family, name, if rest.is_empty() { "/" } else { rest }))
    })
    .with_context(|| format!("the path {path} must start with /api, /portal or /fhir"))?;
    let (bound, params) = match table.find(family, &method, below) {
        Match::Found(bound, params) => (bound, params),
        Match::WrongMethod(allowed) => {
            let names: Vec<&str> = allowed.iter().map(Method::as_str).collect();
            bail!("the plugin serves {path} only for {}", names.join(", "))
        }
        Match::NotFound => bail!("the plugin has no route for {path}"),
    };
    let mut query: Vec<(String, String)> = form_urlencoded::parse(query_text.as_bytes())
        .into_owned()
        .collect();
    query.extend(request.query.clone());
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    let body = match &request.body {
        Some(body) => {
            if !headers.iter().any(|(k, _)| k == "content-type") {
                headers.push(("content-type".into(), "application/json".into()));
            }
            body.to_string().into_bytes()
        }
        None => Vec::new(),
    };
    let caller = &request.caller;
    let role = match caller.role.as_str() {
        "user" => bindings::Role::User,
        "patient" => bindings::Role::Patient,
        "system" => bindings::Role::System,
        "anonymous" => bindings::Role::Anonymous,
        other => bail!("unknown caller role {other} (user, patient, system or anonymous)"),
    };
    let def = bound.def();
    let scopes = if caller.scopes.is_empty() {
        let context = match role {
            bindings::Role::Patient => "patient",
            bindings::Role::System => "system",
            _ => "user",
        };
        def.requirement
            .as_ref()
            .map(|r| r.in_context(context).to_string())
            .unwrap_or_default()
    } else {
        caller.scopes.clone()
    };
    let wit_request = bindings::Request {
        route: def.index,
        method: match method {
            Method::POST => bindings::Method::Post,
            Method::PUT => bindings::Method::Put,
            Method::PATCH => bindings::Method::Patch,
            Method::DELETE => bindings::Method::Delete,
            _ => bindings::Method::Get,
        },
        path: below.to_owned(),
        params,
        query,
        headers,
        body,
        caller: bindings::Caller {
            role,
            subject: caller.subject.clone(),
            username: caller.username.clone(),
            client_id: "hearth-plugin-call".into(),
            scopes,
            patient: caller.patient.clone(),
        },
        base_url: format!("http://localhost/apis/{}/{family_name}", site.name),
    };
    let may_write = method != Method::GET;
    let request_id = super::host::comb_uuid();
    let outcome = runtime::call(
        engine,
        site,
        &bound.plugin,
        wit_request,
        &request_id,
        may_write,
    )
    .await
    .map_err(|error| anyhow::anyhow!("{error}"))?;
    let response = outcome.response;
    let text = String::from_utf8_lossy(&response.body).into_owned();
    let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    let headers: serde_json::Map<String, Value> = response
        .headers
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    Ok(json!({"status": response.status, "headers": headers, "body": body}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn embedded(path: &str) -> &'static str {
        embedded::SDK_FILES
            .iter()
            .find(|(p, _)| *p == path)
            .unwrap_or_else(|| panic!("the binary carries no {path}"))
            .1
    }

    #[test]
    fn the_carried_sdk_agrees_with_the_host_contract() {
        let contract = sdk_contract();
        let lib = embedded("sdk/src/lib.rs");
        assert!(
            lib.contains(&format!(
                "pub const CONTRACT_VERSION: &str = \"{contract}\";"
            )),
            "the SDK builds against another contract than the newest the host loads"
        );
        assert!(lib.contains(&format!("path: \"../wit/v{contract}\"")));
        for file in ["host.wit", "types.wit", "world.wit"] {
            assert!(!embedded(&format!("wit/v{contract}/{file}")).is_empty());
        }
        let manifest = embedded::SDK_MANIFEST;
        assert!(!manifest.contains(".workspace"), "{manifest}");
        assert!(manifest.contains("name = \"hearth-sdk\""), "{manifest}");
        assert!(manifest.contains("wit-bindgen = "), "{manifest}");
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
    }

    #[test]
    fn the_sdk_is_written_once_and_plugins_name_it_by_a_relative_path() {
        let parent =
            std::env::temp_dir().join(format!("hearth-sdk-test-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&parent).unwrap();
        let sdk = write_sdk(&parent).unwrap();
        assert!(sdk.join("Cargo.toml").is_file() && sdk.join("src/lib.rs").is_file());
        let lib = sdk.join("src/lib.rs");
        let before = std::fs::metadata(&lib).unwrap().modified().unwrap();
        let dir = new_plugin(&parent, "lab-result", None).unwrap();
        assert_eq!(
            std::fs::metadata(&lib).unwrap().modified().unwrap(),
            before,
            "unchanged files are not written again"
        );
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        assert!(
            manifest.contains(&format!(
                "hearth-sdk = {{ path = \"../hearth-sdk-{}/sdk\" }}",
                sdk_contract()
            )),
            "{manifest}"
        );
        std::fs::remove_dir_all(parent).unwrap();
    }
}
