//! Adapters that serve plugins built against older contract versions with the current host
//! implementation.
//!
//! A released WIT version is frozen (see `wit/`), and the host keeps serving it: each of
//! the 0.1.0 and 0.2.0 worlds' interfaces is implemented here on the same capability view
//! as the current one (see [`super::host`]), converting only what differs and calling the
//! one implementation. The `types` interface (requests, responses, descriptions) did not
//! change, so the older bindings share 0.3.0's types (`with` in [`super::bindings`]) and
//! requests and responses cross without conversion. The `store`, `log`, `config` and
//! `util` interfaces differ in name (and `util` and `store` in content), so their
//! forwarders stay; the conversions move strings and buffers, never copy them, except the
//! rows' JSON members, which 0.1.0 and 0.2.0 receive in their own layout (a length before
//! each row) and always with the values: their `query` has no form to ask for.

use super::bindings::v0_3::hearth::plugin as new;
use super::host::{ConfigView, LogView, StoreView, UtilView};
use crate::db::store::RowForm;

/// The `store`, `log` and `config` forwarders of one older version, whose interfaces are
/// alike in 0.1.0 and 0.2.0.
macro_rules! forward {
    ($($old:tt)*) => {
        const _: () = {
            use $($old)* as old;

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

            impl old::store::Host for StoreView<'_> {
                async fn query(
                    &mut self,
                    sql: String,
                    params: Vec<old::store::Value>,
                ) -> wasmtime::Result<Result<old::store::Rows, old::store::Error>> {
                    let params = params.into_iter().map(value).collect();
                    let result = self.query_rows(&sql, params, RowForm::Both).await?;
                    Ok(result
                        .map(|rows| old::store::Rows {
                            column_count: rows.columns,
                            row_count: rows.count,
                            json: rows.prefixed_json(),
                            data: rows.data,
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

            impl old::log::Host for LogView<'_> {
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

            impl old::config::Host for ConfigView<'_> {
                fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, String>> {
                    new::config::Host::get(self, key)
                }
            }
        };
    };
}

forward!(super::bindings::v0_1::hearth::plugin);
forward!(super::bindings::v0_2::hearth::plugin);

impl super::bindings::v0_1::hearth::plugin::util::Host for UtilView<'_> {
    fn uuid(&mut self) -> wasmtime::Result<String> {
        new::util::Host::uuid(self)
    }

    fn now(&mut self) -> wasmtime::Result<(i64, u32)> {
        new::util::Host::now(self)
    }
}

impl super::bindings::v0_2::hearth::plugin::util::Host for UtilView<'_> {
    fn uuid(&mut self) -> wasmtime::Result<String> {
        new::util::Host::uuid(self)
    }

    fn now(&mut self) -> wasmtime::Result<(i64, u32)> {
        new::util::Host::now(self)
    }

    fn request_id(&mut self) -> wasmtime::Result<String> {
        new::util::Host::request_id(self)
    }
}
