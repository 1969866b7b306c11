//! Write Hearth plugins.
//!
//! A plugin serves the routes of one resource domain. It is a `cdylib` crate built for
//! `wasm32-wasip2`; its code reads as rules, SQL and mapping:
//!
//! ```no_run
//! use hearth_sdk::prelude::*;
//!
//! struct Facility;
//!
//! impl Resource for Facility {
//!     const NAME: &'static str = "facility-lite";
//!     const VERSION: &'static str = "0.1.0";
//!     const READS: &'static [&'static str] = &["facility"];
//!     const ROUTES: &'static [Route] = &[Route::get("/api/facility/:fuuid", "facility.r", get_one)];
//! }
//!
//! fn get_one(req: &Request) -> Result<Response> {
//!     let fuuid = req.uuid("fuuid")?;
//!     let row = store::query_one("SELECT uuid, name FROM facility WHERE uuid = $1", params![fuuid])?
//!         .ok_or_else(ApiError::not_found)?;
//!     Ok(Response::ok(Json::from_one(&row)))
//! }
//!
//! hearth_sdk::export!(Facility);
//! ```
//!
//! The host checks every route's scope before the plugin runs, runs the plugin's SQL only on
//! the tables it declared, and wraps each request in a transaction. On a native target the
//! same code runs against [`testing::MockHost`], so plugin logic is unit-tested with
//! `cargo test`.

pub mod apidocs;
pub mod coding;
pub mod json;
pub mod migrations;
pub mod request;
pub mod response;
pub mod sql;
pub mod store;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod time;
pub mod validate;

mod host;
mod resource;

#[cfg(any(target_arch = "wasm32", test))]
mod alloc;

#[doc(hidden)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "resource-plugin",
        path: "../wit/v0.3.0",
        pub_export_macro: true,
        export_macro_name: "__export_resource_plugin",
        default_bindings_module: "hearth_sdk::bindings",
    });
}

pub use json::{Json, ToJson};
pub use migrations::Migration;
pub use request::{Request, Window};
pub use resource::{__describe, __handle, FhirSearchParam, FhirType, Method, Resource, Route};
pub use response::{ApiError, Family, Response, Result, Shape};
pub use store::{Form, Row, Rows, StoreError, Value, ValueRef};
pub use validate::Validator;

/// A new UUID from the host, in OpenEMR's form (version 4, timestamp first, lower case):
/// the host makes it with [`comb_uuid`] from the time and random bytes.
pub fn new_uuid() -> String {
    host::uuid()
}

/// A UUID in OpenEMR's "timestamp-first COMB" form, as [`new_uuid`] hands them out:
/// version 4 made from `random`, with its first 48 bits the time `millis` (milliseconds
/// since the Unix epoch), lower case and hyphenated. Uuids made one after another sort in
/// the order they were made, so the unique indexes they go into grow at one end.
pub fn comb_uuid(millis: u64, random: [u8; 16]) -> String {
    let mut bytes = random;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let mut text = String::with_capacity(36);
    for (at, byte) in bytes.iter().enumerate() {
        if matches!(at, 4 | 6 | 8 | 10) {
            text.push('-');
        }
        for nibble in [byte >> 4, byte & 0x0f] {
            text.push(char::from_digit(u32::from(nibble), 16).expect("a nibble is a hex digit"));
        }
    }
    text
}

/// The request's correlation id (contract 0.2.0): the id the host sends back to the client
/// in `x-request-id` and writes on its log lines for the request. Put it in errors and
/// records you want to trace back to the request.
pub fn request_id() -> String {
    host::request_id()
}

/// Reads a configuration value for this plugin on the request's site.
pub fn config(key: &str) -> Result<Option<String>, ApiError> {
    host::config(key).map_err(ApiError::Internal)
}

/// The contract version this SDK builds plugins against: the WIT package
/// `hearth:plugin@0.3.0` (`wit/v0.3.0`). The bindings stamp it into the component (the
/// exported handler is `hearth:plugin/handler@0.3.0`), and the host reads it from there.
pub const CONTRACT_VERSION: &str = "0.3.0";

/// Writes a line to the host's log at `info` level, `format!`-style.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => { $crate::__log_info(&::std::format!($($arg)*)) };
}

/// Builds the parameter list for [`store::query`] and friends: `params![a, b]`.
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::Value] };
    ($($value:expr),+ $(,)?) => { &[$($crate::Value::from($value)),+] as &[$crate::Value] };
}

/// Exports a [`Resource`] as the plugin's implementation of the contract.
///
/// Use it once per plugin crate: `hearth_sdk::export!(Patient);`.
#[macro_export]
macro_rules! export {
    ($resource:ty) => {
        #[doc(hidden)]
        pub struct __HearthExport;

        #[cfg(target_arch = "wasm32")]
        impl $crate::bindings::exports::hearth::plugin::handler::Guest for __HearthExport {
            fn describe() -> $crate::bindings::hearth::plugin::types::PluginInfo {
                $crate::__describe::<$resource>()
            }

            fn handle(
                request: $crate::bindings::hearth::plugin::types::Request,
            ) -> $crate::bindings::hearth::plugin::types::Response {
                $crate::__handle::<$resource>(request)
            }
        }

        // Native builds (unit tests with the mock host) export nothing: the contract's
        // symbol names are not valid native symbols.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_resource_plugin!(__HearthExport with_types_in $crate::bindings);

        // The plugin's migrations, in the component's `hearth:migrations` section.
        #[cfg(target_arch = "wasm32")]
        const __HEARTH_MIGRATIONS_LEN: usize =
            $crate::migrations::encoded_len(<$resource as $crate::Resource>::MIGRATIONS);
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "hearth:migrations")]
        static __HEARTH_MIGRATIONS: [u8; __HEARTH_MIGRATIONS_LEN] =
            $crate::migrations::encode::<__HEARTH_MIGRATIONS_LEN>(
                <$resource as $crate::Resource>::MIGRATIONS,
            );

        // The plugin's API description and scope words, in `hearth:api-docs`.
        #[cfg(target_arch = "wasm32")]
        const __HEARTH_API_DOCS_LEN: usize = $crate::apidocs::encoded_len::<$resource>();
        #[cfg(target_arch = "wasm32")]
        #[used]
        #[unsafe(link_section = "hearth:api-docs")]
        static __HEARTH_API_DOCS: [u8; __HEARTH_API_DOCS_LEN] =
            $crate::apidocs::encode::<$resource, __HEARTH_API_DOCS_LEN>();
    };
}

/// Everything a plugin usually needs, for `use hearth_sdk::prelude::*`.
pub mod prelude {
    pub use crate::apidocs::{Param, Prop, Schema, Words};
    pub use crate::coding;
    pub use crate::json::{Json, ToJson};
    pub use crate::migrations::Migration;
    pub use crate::request::Request;
    pub use crate::resource::{Resource, Route};
    pub use crate::response::{ApiError, Response, Result};
    pub use crate::sql::{Column, Delete, Fields, Insert, Search, Sort, SortKey, Update};
    pub use crate::store::{self, Row, Rows, Value, ValueRef};
    pub use crate::validate::Validator;
    pub use crate::{log, params};
}

#[doc(hidden)]
pub use host::log_info as __log_info;

#[cfg(test)]
mod tests {
    use super::comb_uuid;
    use crate::request::is_uuid;

    #[test]
    fn comb_uuids_are_version_4_time_first_and_sort_by_time() {
        let uuid = comb_uuid(0x0197_be22_2c01, [0xff; 16]);
        assert_eq!(uuid, "0197be22-2c01-4fff-bfff-ffffffffffff");
        assert!(is_uuid(&uuid));
        let zeros = comb_uuid(1, [0; 16]);
        assert_eq!(zeros, "00000000-0001-4000-8000-000000000000");
        let random = [0x5a; 16];
        assert!(comb_uuid(1_000, random) < comb_uuid(1_001, random));
    }
}
