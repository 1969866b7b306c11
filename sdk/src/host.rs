//! The calls a plugin makes into the host. On `wasm32` they are the contract's imports; on
//! any other target they go to the thread's [`crate::testing::MockHost`], so plugin logic
//! runs natively under `cargo test`.

use crate::store::{Form, RawRows, StoreError, Value};

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::bindings::hearth::plugin::{config, log, store, util};

    fn to_wit(params: &[Value]) -> Vec<store::Value> {
        params
            .iter()
            .map(|value| match value {
                Value::Null => store::Value::Null,
                Value::Integer(i) => store::Value::Integer(*i),
                Value::Real(r) => store::Value::Real(*r),
                Value::Text(s) => store::Value::Text(s.clone()),
                Value::Blob(b) => store::Value::Blob(b.clone()),
            })
            .collect()
    }

    fn from_wit(error: store::Error) -> StoreError {
        match error {
            store::Error::Denied(m) => StoreError::Denied(m),
            store::Error::Constraint(m) => StoreError::Constraint(m),
            store::Error::Invalid(m) => StoreError::Invalid(m),
            store::Error::Failed(m) => StoreError::Failed(m),
        }
    }

    pub fn query(sql: &str, params: &[Value], form: Form) -> Result<RawRows, StoreError> {
        let asked = match form {
            Form::Values => store::RowForm::Values,
            Form::Json => store::RowForm::Json,
            Form::Both => store::RowForm::Both,
        };
        store::query(sql, &to_wit(params), asked)
            .map(|rows| RawRows {
                columns: rows.column_count,
                count: rows.row_count,
                data: rows.data,
                form,
                json: rows.json,
                json_ends: rows.json_ends,
            })
            .map_err(from_wit)
    }

    pub fn execute(sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        store::execute(sql, &to_wit(params)).map_err(from_wit)
    }

    pub fn log(level: u8, message: &str) {
        let level = match level {
            0 => log::Level::Trace,
            1 => log::Level::Debug,
            2 => log::Level::Info,
            3 => log::Level::Warn,
            _ => log::Level::Error,
        };
        log::write(level, message);
    }

    pub fn config(key: &str) -> Result<Option<String>, String> {
        config::get(key)
    }

    pub fn uuid() -> String {
        util::uuid()
    }

    pub fn now() -> (i64, u32) {
        util::now()
    }

    pub fn request_id() -> String {
        util::request_id()
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::*;
    use crate::testing::with_host;

    pub fn query(sql: &str, params: &[Value], form: Form) -> Result<RawRows, StoreError> {
        with_host(|host| host.query(sql, params, form))
    }

    pub fn execute(sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        with_host(|host| host.execute(sql, params))
    }

    pub fn log(level: u8, message: &str) {
        with_host(|host| host.log(level, message))
    }

    pub fn config(key: &str) -> Result<Option<String>, String> {
        with_host(|host| host.config(key))
    }

    pub fn uuid() -> String {
        with_host(|host| host.uuid())
    }

    pub fn now() -> (i64, u32) {
        with_host(|host| host.now())
    }

    pub fn request_id() -> String {
        with_host(|host| host.request_id())
    }
}

pub(crate) use imp::{config, execute, log, now, query, request_id, uuid};

/// Writes `message` to the host's log at `info` level.
pub fn log_info(message: &str) {
    log(2, message);
}
