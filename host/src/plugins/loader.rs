//! Loading a plugin: compile (or take from the cache), check its exports, ask it to
//! describe itself, and verify the description before anything is served from it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use wasmtime::Store;

use super::apidocs::{self, ApiDocs};
use super::bindings::{self, v0_1, v0_2, v0_3};
use super::engine::Engine;
use super::host::State;
use super::migrations::{self, Migration};
use crate::auth::{acl, scopes::Requirement};
use crate::db::grants::HOST_TABLES;

/// Contract versions this host serves, oldest first. Each has its frozen WIT folder
/// (`wit/v<version>`); the newest is the one the SDK builds against.
pub const SUPPORTED_CONTRACTS: &[&str] = &["0.1.0", "0.2.0", "0.3.0"];

/// A component ready to instantiate, typed by the contract version it was built against.
pub enum Pre {
    /// Built against 0.1.0: its imports served through [`super::compat`].
    V0_1(v0_1::ResourcePluginPre<State>),
    /// Built against 0.2.0: its imports served through [`super::compat`].
    V0_2(v0_2::ResourcePluginPre<State>),
    /// Built against 0.3.0, the current contract.
    V0_3(v0_3::ResourcePluginPre<State>),
}

impl Pre {
    /// Types `pre` by `contract`, checking that the component exports the handler.
    fn new(contract: &str, pre: wasmtime::component::InstancePre<State>) -> Result<Pre> {
        let typed = match contract {
            "0.1.0" => v0_1::ResourcePluginPre::new(pre).map(Pre::V0_1),
            "0.2.0" => v0_2::ResourcePluginPre::new(pre).map(Pre::V0_2),
            "0.3.0" => v0_3::ResourcePluginPre::new(pre).map(Pre::V0_3),
            other => bail!("no adapter for contract {other}"),
        };
        typed
            .map_err(anyhow::Error::from)
            .context("the plugin does not export hearth:plugin/handler")
    }

    /// The untyped pre-instance (to instantiate without calling, as benchmarks do).
    pub fn instance_pre(&self) -> &wasmtime::component::InstancePre<State> {
        match self {
            Pre::V0_1(pre) => pre.instance_pre(),
            Pre::V0_2(pre) => pre.instance_pre(),
            Pre::V0_3(pre) => pre.instance_pre(),
        }
    }

    /// Instantiates the component in `store` and asks it to describe itself.
    pub async fn describe(
        &self,
        store: &mut Store<State>,
    ) -> wasmtime::Result<bindings::PluginInfo> {
        let instance = self.instantiate(store).await?;
        match instance {
            // 0.1.0 and 0.2.0 share 0.3.0's types (see `bindings`).
            Instance::V0_1(i) => i.hearth_plugin_handler().call_describe(store).await,
            Instance::V0_2(i) => i.hearth_plugin_handler().call_describe(store).await,
            Instance::V0_3(i) => i.hearth_plugin_handler().call_describe(store).await,
        }
    }

    /// Instantiates the component in `store`, ready for [`Instance::handle`].
    pub async fn instantiate(&self, store: &mut Store<State>) -> wasmtime::Result<Instance> {
        Ok(match self {
            Pre::V0_1(pre) => Instance::V0_1(pre.instantiate_async(store).await?),
            Pre::V0_2(pre) => Instance::V0_2(pre.instantiate_async(store).await?),
            Pre::V0_3(pre) => Instance::V0_3(pre.instantiate_async(store).await?),
        })
    }
}

/// An instance of a plugin in its store, typed by its contract version.
pub enum Instance {
    /// Built against 0.1.0.
    V0_1(v0_1::ResourcePlugin),
    /// Built against 0.2.0.
    V0_2(v0_2::ResourcePlugin),
    /// Built against 0.3.0.
    V0_3(v0_3::ResourcePlugin),
}

impl Instance {
    /// Lets the instance handle `request` (0.1.0 and 0.2.0 share 0.3.0's types).
    pub async fn handle(
        &self,
        store: &mut Store<State>,
        request: &bindings::Request,
    ) -> wasmtime::Result<bindings::Response> {
        match self {
            Instance::V0_1(i) => i.hearth_plugin_handler().call_handle(store, request).await,
            Instance::V0_2(i) => i.hearth_plugin_handler().call_handle(store, request).await,
            Instance::V0_3(i) => i.hearth_plugin_handler().call_handle(store, request).await,
        }
    }
}

/// An HTTP method a route answers.
pub type Method = http::Method;

/// The API family of a route.
pub use crate::error::Family;

/// One segment of a route template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Matches exactly.
    Literal(String),
    /// Matches `[A-Za-z0-9_$:.-]+` and passes it to the plugin.
    Param(String),
}

/// A route as the host uses it.
#[derive(Debug, Clone)]
pub struct RouteDef {
    /// Index in the plugin's route list (`request.route`).
    pub index: u32,
    /// The method.
    pub method: Method,
    /// The family.
    pub family: Family,
    /// The template below the family root.
    pub path: String,
    /// Parsed template.
    pub segments: Vec<Segment>,
    /// The scope requirement (without context).
    pub requirement: Option<Requirement>,
    /// The scope as declared.
    pub scope: String,
    /// ACL section for staff users.
    pub acl: String,
    /// No token needed.
    pub anonymous: bool,
    /// One-line summary.
    pub summary: String,
}

/// A compiled, verified plugin version.
pub struct Loaded {
    /// Its name.
    pub name: String,
    /// Its own version.
    pub version: semver::Version,
    /// The contract version it was built against.
    pub contract: String,
    /// SHA-256 of the component file.
    pub hash: String,
    /// One sentence.
    pub description: String,
    /// Routes.
    pub routes: Vec<RouteDef>,
    /// Tables it reads.
    pub reads: Vec<String>,
    /// Tables it writes.
    pub writes: Vec<String>,
    /// Configuration keys.
    pub config_keys: Arc<[String]>,
    /// Its migrations, oldest first (see [`super::migrations`]).
    pub migrations: Arc<[Migration]>,
    /// The prefix of the tables it owns, when it brings migrations.
    pub namespace: Option<String>,
    /// The FHIR resource types it declares (see [`FhirType`]).
    pub fhir: Vec<FhirType>,
    /// Its API description and scope words (see [`super::apidocs`]).
    pub docs: Arc<ApiDocs>,
    /// Ready to instantiate.
    pub pre: Pre,
    /// When it was loaded.
    pub loaded_at: time::OffsetDateTime,
    /// The compiled component, for [`Loaded::kept_pre`].
    component: wasmtime::component::Component,
    /// The same, ready to instantiate in the kept engine, while some caller holds it.
    kept_pre: std::sync::Mutex<std::sync::Weak<Pre>>,
    /// Set when the component could not be loaded into the kept engine (kept calls then
    /// use [`Loaded::pre`]; logged once).
    kept_failed: std::sync::atomic::AtomicBool,
}

impl Loaded {
    /// The plugin ready to instantiate in `engine`'s [`KeptEngine`](super::engine::KeptEngine)
    /// (the compiled component loaded there, nothing compiled again), shared by every
    /// caller that holds it: its code stays mapped while one does and is unmapped when
    /// the last lets it go, so an export holds the code of the types it is exporting,
    /// not of every type it exported. `None` when it cannot be loaded there.
    pub fn kept_pre(&self, engine: &Engine) -> Option<Arc<Pre>> {
        use std::sync::atomic::Ordering;
        if self.kept_failed.load(Ordering::Relaxed) {
            return None;
        }
        let mut held = self
            .kept_pre
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(pre) = held.upgrade() {
            return Some(pre);
        }
        let made = engine
            .for_kept(&self.hash, &self.component)
            .and_then(|component| {
                let pre = engine.kept.linker.instantiate_pre(&component)?;
                Pre::new(&self.contract, pre)
            });
        match made {
            Ok(pre) => {
                let pre = Arc::new(pre);
                *held = Arc::downgrade(&pre);
                Some(pre)
            }
            Err(error) => {
                self.kept_failed.store(true, Ordering::Relaxed);
                tracing::warn!(plugin = %self.name,
                    "kept instances of this plugin use the pool: {error:#}");
                None
            }
        }
    }
}

/// The FHIR search parameter types a plugin may declare.
pub const FHIR_SEARCH_TYPES: &[&str] = &[
    "number",
    "date",
    "string",
    "token",
    "reference",
    "composite",
    "quantity",
    "uri",
    "special",
];

/// A FHIR resource type a plugin declares (the contract's `fhir-resource`), checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirType {
    /// The resource type, e.g. `Patient`.
    pub resource_type: String,
    /// Canonical URLs of the profiles its resources claim.
    pub profiles: Vec<String>,
    /// Its search parameters.
    pub search_params: Vec<FhirSearchParam>,
}

/// One declared search parameter: the contract's `(name, type)` pair, whose type may be
/// followed by a space and the parameter's FHIRPath expression (`date Patient.birthDate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FhirSearchParam {
    /// The name, e.g. `birthdate`.
    pub name: String,
    /// The FHIR search type, e.g. `date`.
    pub kind: String,
    /// The FHIRPath expression, or empty.
    pub expression: String,
}

impl FhirType {
    fn check(declared: bindings::types::FhirResource) -> Result<FhirType> {
        let resource_type = declared.resource_type;
        let mut chars = resource_type.chars();
        if !chars.next().is_some_and(|c| c.is_ascii_uppercase())
            || !chars.all(|c| c.is_ascii_alphanumeric())
        {
            bail!("FHIR resource type {resource_type:?} is not a FHIR type name");
        }
        for profile in &declared.profiles {
            if !(profile.starts_with("http://") || profile.starts_with("https://"))
                || profile.contains(char::is_whitespace)
            {
                bail!("{resource_type}: profile {profile:?} is not a canonical URL");
            }
        }
        let mut search_params: Vec<FhirSearchParam> = Vec::new();
        for (name, kind) in declared.search_params {
            let (kind, expression) = kind.split_once(' ').unwrap_or((kind.as_str(), ""));
            if !FHIR_SEARCH_TYPES.contains(&kind) {
                bail!(
                    "{resource_type}: search parameter {name} has the type {kind:?}, not one of {}",
                    FHIR_SEARCH_TYPES.join(", ")
                );
            }
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            {
                bail!("{resource_type}: search parameter name {name:?} is not a FHIR name");
            }
            if search_params.iter().any(|p| p.name == name) {
                bail!("{resource_type}: search parameter {name} is declared twice");
            }
            search_params.push(FhirSearchParam {
                name,
                kind: kind.to_owned(),
                expression: expression.trim().to_owned(),
            });
        }
        Ok(FhirType {
            resource_type,
            profiles: declared.profiles,
            search_params,
        })
    }
}

/// Loads the component at `path` and checks it against the host.
pub async fn load(engine: &Engine, path: &Path) -> Result<Loaded> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    load_bytes(engine, &bytes)
        .await
        .with_context(|| format!("loading plugin {}", path.display()))
}

/// Loads a component from bytes.
pub async fn load_bytes(engine: &Engine, bytes: &[u8]) -> Result<Loaded> {
    let (component, hash) = engine.compile(bytes)?;
    let migrations = migrations::read(bytes).context("reading the plugin's migrations")?;
    let docs = apidocs::read(bytes).context("reading the plugin's API description")?;
    finish(engine, component, hash, migrations, docs).await
}

/// Loads a component from bytes, compiling on a blocking thread so the async workers
/// that serve requests are never held up by the compiler (what hot reload uses).
pub async fn load_off_thread(engine: &Arc<Engine>, bytes: Vec<u8>) -> Result<Loaded> {
    // Read before the bytes move to the compiler; reported after it (which names a file
    // that is no component at all first).
    let migrations = migrations::read(&bytes).context("reading the plugin's migrations");
    let docs = apidocs::read(&bytes).context("reading the plugin's API description");
    let compiler = engine.clone();
    let (component, hash) = tokio::task::spawn_blocking(move || compiler.compile(&bytes))
        .await
        .context("the compile task failed")??;
    finish(engine, component, hash, migrations?, docs?).await
}

/// Checks a compiled component and asks it to describe itself.
async fn finish(
    engine: &Engine,
    component: wasmtime::component::Component,
    hash: String,
    migrations: Vec<Migration>,
    docs: ApiDocs,
) -> Result<Loaded> {
    let contract = contract_version(engine, &component)?;
    let pre = match engine.linker.instantiate_pre(&component) {
        Ok(pre) => pre,
        Err(error) => {
            let imports = describe_imports(engine, &component);
            return Err(anyhow::Error::from(error).context(format!(
                "the plugin imports something this host does not provide (it imports: {imports})"
            )));
        }
    };
    let pre = Pre::new(&contract, pre)?;
    let mut store = Store::new(&engine.wasmtime, State::describing());
    store.set_epoch_deadline(1);
    let started = Instant::now();
    store.epoch_deadline_callback(move |_| {
        if started.elapsed() > Duration::from_secs(5) {
            return Err(wasmtime::Error::msg("describe took longer than 5 s"));
        }
        Ok(wasmtime::UpdateDeadline::Yield(1))
    });
    let info = pre
        .describe(&mut store)
        .await
        .map_err(anyhow::Error::from)
        .context("describe failed")?;
    verify(info, contract, hash, (pre, component), migrations, docs)
}

/// The component's imports, `interface{function, …}`, for error messages.
fn describe_imports(engine: &Engine, component: &wasmtime::component::Component) -> String {
    use wasmtime::component::types::ComponentItem;
    let ty = component.component_type();
    let mut out = Vec::new();
    for (name, item) in ty.imports(&engine.wasmtime) {
        match item.ty {
            ComponentItem::ComponentInstance(instance) => {
                let items: Vec<&str> = instance.exports(&engine.wasmtime).map(|(n, _)| n).collect();
                out.push(format!("{name}{{{}}}", items.join(", ")));
            }
            _ => out.push(name.to_owned()),
        }
    }
    out.join("; ")
}

/// The contract version the component was built against: the version the SDK's bindings
/// stamp into the name of the exported handler (`hearth:plugin/handler@X`). Every
/// `hearth:plugin` interface the component imports must carry the same version: a
/// component mixing versions was not built by one SDK and is refused.
fn contract_version(engine: &Engine, component: &wasmtime::component::Component) -> Result<String> {
    let ty = component.component_type();
    let Some(version) = ty
        .exports(&engine.wasmtime)
        .find_map(|(name, _)| name.strip_prefix("hearth:plugin/handler@"))
        .map(str::to_owned)
    else {
        bail!("the component does not export hearth:plugin/handler (is it a Hearth plugin?)")
    };
    if !SUPPORTED_CONTRACTS.contains(&version.as_str()) {
        bail!(
            "the plugin was built against contract {version}; this host supports contracts {}",
            SUPPORTED_CONTRACTS.join(", ")
        );
    }
    for (name, _) in ty.imports(&engine.wasmtime) {
        if let Some(interface) = name.strip_prefix("hearth:plugin/")
            && !interface.ends_with(&format!("@{version}"))
        {
            bail!(
                "the plugin exports the handler of contract {version} but imports hearth:plugin/{interface}"
            );
        }
    }
    Ok(version)
}

fn verify(
    info: bindings::PluginInfo,
    contract: String,
    hash: String,
    (pre, component): (Pre, wasmtime::component::Component),
    migrations: Vec<Migration>,
    docs: ApiDocs,
) -> Result<Loaded> {
    let name = info.name;
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        bail!("plugin name {name:?} must be kebab-case");
    }
    let version = semver::Version::parse(&info.version)
        .with_context(|| format!("plugin {name}: version {:?} is not semver", info.version))?;
    for table in info.reads.iter().chain(&info.writes) {
        if HOST_TABLES.contains(&table.to_ascii_lowercase().as_str()) {
            bail!("plugin {name} asks for the host table {table}, which no plugin may use");
        }
    }
    for table in info.reads.iter().chain(&info.writes) {
        if table.to_ascii_lowercase().starts_with("x_") {
            bail!(
                "plugin {name} declares the table {table}: tables named x_… belong to the plugin whose namespace they carry, which uses them without declaring them"
            );
        }
    }
    let namespace = if migrations.is_empty() {
        None
    } else {
        Some(migrations::namespace(&name)?)
    };
    let fhir = info
        .fhir
        .into_iter()
        .map(|declared| FhirType::check(declared).with_context(|| format!("plugin {name}")))
        .collect::<Result<Vec<_>>>()?;
    let mut routes = Vec::new();
    for (index, route) in info.routes.into_iter().enumerate() {
        let where_ = format!("plugin {name}, route {} {}", index, route.path);
        let family = match route.family {
            bindings::Family::Api => Family::Api,
            bindings::Family::Portal => Family::Portal,
            bindings::Family::Fhir => Family::Fhir,
        };
        let method = match route.method {
            bindings::Method::Get => Method::GET,
            bindings::Method::Post => Method::POST,
            bindings::Method::Put => Method::PUT,
            bindings::Method::Patch => Method::PATCH,
            bindings::Method::Delete => Method::DELETE,
        };
        let segments = parse_template(&route.path).with_context(|| where_.clone())?;
        let requirement = if route.anonymous && route.scope.is_empty() {
            None
        } else {
            Some(Requirement::parse(&route.scope).with_context(|| {
                format!(
                    "{where_}: scope {:?} is not resource.permissions",
                    route.scope
                )
            })?)
        };
        if !acl::is_valid(&route.acl) {
            bail!("{where_}: ACL {:?} is not section/value[:write]", route.acl);
        }
        routes.push(RouteDef {
            index: index as u32,
            method,
            family,
            path: route.path,
            segments,
            requirement,
            scope: route.scope,
            acl: route.acl,
            anonymous: route.anonymous,
            summary: route.summary,
        });
    }
    let templates: Vec<(String, Vec<String>)> = routes
        .iter()
        .map(|r: &RouteDef| {
            let params = r
                .segments
                .iter()
                .filter_map(|s| match s {
                    Segment::Param(p) => Some(p.clone()),
                    Segment::Literal(_) => None,
                })
                .collect();
            (r.path.clone(), params)
        })
        .collect();
    apidocs::check_routes(&docs, &templates).with_context(|| format!("plugin {name}"))?;
    Ok(Loaded {
        name,
        version,
        contract,
        hash,
        description: info.description,
        routes,
        reads: info.reads,
        writes: info.writes,
        config_keys: info.config_keys.into(),
        migrations: migrations.into(),
        namespace,
        fhir,
        docs: Arc::new(docs),
        pre,
        loaded_at: time::OffsetDateTime::now_utc(),
        component,
        kept_pre: std::sync::Mutex::new(std::sync::Weak::new()),
        kept_failed: std::sync::atomic::AtomicBool::new(false),
    })
}

/// Parses `/patient/:puuid/encounter` into segments.
pub fn parse_template(path: &str) -> Result<Vec<Segment>> {
    let Some(rest) = path.strip_prefix('/') else {
        bail!("path {path:?} must start with /");
    };
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    rest.split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name)
                if !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                Ok(Segment::Param(name.to_owned()))
            }
            Some(_) => bail!("bad parameter segment {segment:?} in {path:?}"),
            None if !segment.is_empty() && segment.chars().all(param_char) => {
                Ok(Segment::Literal(segment.to_owned()))
            }
            None => bail!("bad segment {segment:?} in {path:?}"),
        })
        .collect()
}

/// Characters a path segment may hold.
pub fn param_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | ':' | '.' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        assert_eq!(
            parse_template("/patient/:puuid").unwrap(),
            vec![
                Segment::Literal("patient".into()),
                Segment::Param("puuid".into())
            ]
        );
        assert_eq!(parse_template("/").unwrap(), vec![]);
        assert!(parse_template("patient").is_err());
        assert!(parse_template("/a//b").is_err());
        assert!(parse_template("/a/:").is_err());
        assert!(parse_template("/Patient/$export").is_ok());
    }
}
