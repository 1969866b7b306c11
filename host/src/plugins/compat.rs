//! Adapters that serve plugins built against older contract versions with the current host
//! implementation.
//!
//! A released WIT version is frozen (see `wit/`), and the host keeps serving it: the
//! 0.1.0 world's imports are implemented here by converting their types to the current
//! version's and calling the one implementation in [`super::host`]; requests go in and
//! responses and descriptions come out converted the same way. The conversions move
//! strings and buffers, never copy them. Only plugins built against an older contract pay
//! for them; a plugin built against the current contract calls the host directly.

use super::bindings::v0_1::hearth::plugin as old;
use super::bindings::v0_2::hearth::plugin as new;
use super::host::State;

/// A request in the 0.1.0 contract's types.
pub fn request_v0_1(request: new::types::Request) -> old::types::Request {
    let caller = request.caller;
    old::types::Request {
        route: request.route,
        method: match request.method {
            new::types::Method::Get => old::types::Method::Get,
            new::types::Method::Post => old::types::Method::Post,
            new::types::Method::Put => old::types::Method::Put,
            new::types::Method::Patch => old::types::Method::Patch,
            new::types::Method::Delete => old::types::Method::Delete,
        },
        path: request.path,
        params: request.params,
        query: request.query,
        headers: request.headers,
        body: request.body,
        caller: old::types::Caller {
            role: match caller.role {
                new::types::Role::User => old::types::Role::User,
                new::types::Role::Patient => old::types::Role::Patient,
                new::types::Role::System => old::types::Role::System,
                new::types::Role::Anonymous => old::types::Role::Anonymous,
            },
            subject: caller.subject,
            username: caller.username,
            client_id: caller.client_id,
            scopes: caller.scopes,
            patient: caller.patient,
        },
        base_url: request.base_url,
    }
}

/// A 0.1.0 response in the current types.
pub fn response_v0_1(response: old::types::Response) -> new::types::Response {
    new::types::Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
    }
}

/// A 0.1.0 description in the current types.
pub fn info_v0_1(info: old::types::PluginInfo) -> new::types::PluginInfo {
    new::types::PluginInfo {
        name: info.name,
        version: info.version,
        description: info.description,
        routes: info
            .routes
            .into_iter()
            .map(|route| new::types::Route {
                method: match route.method {
                    old::types::Method::Get => new::types::Method::Get,
                    old::types::Method::Post => new::types::Method::Post,
                    old::types::Method::Put => new::types::Method::Put,
                    old::types::Method::Patch => new::types::Method::Patch,
                    old::types::Method::Delete => new::types::Method::Delete,
                },
                path: route.path,
                family: match route.family {
                    old::types::Family::Api => new::types::Family::Api,
                    old::types::Family::Portal => new::types::Family::Portal,
                    old::types::Family::Fhir => new::types::Family::Fhir,
                },
                scope: route.scope,
                acl: route.acl,
                anonymous: route.anonymous,
                summary: route.summary,
            })
            .collect(),
        reads: info.reads,
        writes: info.writes,
        config_keys: info.config_keys,
        fhir: info
            .fhir
            .into_iter()
            .map(|fhir| new::types::FhirResource {
                resource_type: fhir.resource_type,
                profiles: fhir.profiles,
                search_params: fhir.search_params,
            })
            .collect(),
    }
}

fn value(value: old::store::Value) -> new::store::Value {
    match value {
        old::store::Value::Null => new::store::Value::Null,
        old::store::Value::Integer(i) => new::store::Value::Integer(i),
        old::store::Value::Real(r) => new::store::Value::Real(r),
        old::store::Value::Text(s) => new::store::Value::Text(s),
        old::store::Value::Blob(b) => new::store::Value::Blob(b),
    }
}

fn store_error(error: new::store::Error) -> old::store::Error {
    match error {
        new::store::Error::Denied(m) => old::store::Error::Denied(m),
        new::store::Error::Constraint(m) => old::store::Error::Constraint(m),
        new::store::Error::Invalid(m) => old::store::Error::Invalid(m),
        new::store::Error::Failed(m) => old::store::Error::Failed(m),
    }
}

impl old::store::Host for State {
    async fn query(
        &mut self,
        sql: String,
        params: Vec<old::store::Value>,
    ) -> wasmtime::Result<Result<old::store::Rows, old::store::Error>> {
        let params = params.into_iter().map(value).collect();
        let result = new::store::Host::query(self, sql, params).await?;
        Ok(result
            .map(|rows| old::store::Rows {
                column_count: rows.column_count,
                row_count: rows.row_count,
                data: rows.data,
                json: rows.json,
            })
            .map_err(store_error))
    }

    async fn execute(
        &mut self,
        sql: String,
        params: Vec<old::store::Value>,
    ) -> wasmtime::Result<Result<u64, old::store::Error>> {
        let params = params.into_iter().map(value).collect();
        let result = new::store::Host::execute(self, sql, params).await?;
        Ok(result.map_err(store_error))
    }
}

impl old::log::Host for State {
    fn write(&mut self, level: old::log::Level, message: String) -> wasmtime::Result<()> {
        let level = match level {
            old::log::Level::Trace => new::log::Level::Trace,
            old::log::Level::Debug => new::log::Level::Debug,
            old::log::Level::Info => new::log::Level::Info,
            old::log::Level::Warn => new::log::Level::Warn,
            old::log::Level::Error => new::log::Level::Error,
        };
        new::log::Host::write(self, level, message)
    }
}

impl old::config::Host for State {
    fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, String>> {
        new::config::Host::get(self, key)
    }
}

impl old::util::Host for State {
    fn uuid(&mut self) -> wasmtime::Result<String> {
        new::util::Host::uuid(self)
    }

    fn now(&mut self) -> wasmtime::Result<(i64, u32)> {
        new::util::Host::now(self)
    }
}

impl old::types::Host for State {}
