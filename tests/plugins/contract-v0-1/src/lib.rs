//! A plugin built against the released contract 0.1.0 and kept that way, as a plugin
//! compiled before 0.2.0 existed would be: its bindings come straight from the frozen
//! `wit/v0.1.0` (not from the SDK, which follows the current contract), so the component
//! exports `hearth:plugin/handler@0.1.0` and imports only 0.1.0 interfaces. The tests load
//! it beside a 0.2.0 plugin to prove the host still serves it.
//!
//! `GET /api/contract/v0-1` counts the patients through `store.query`, logs through
//! `log.write` and answers `{"contract":"0.1.0","patients":N}`.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    world: "resource-plugin",
    path: "../../../wit/v0.1.0",
});

use exports::hearth::plugin::handler::Guest;
use hearth::plugin::types::{Family, Method, PluginInfo, Request, Response, Route};
use hearth::plugin::{log, store};

struct Legacy;

impl Guest for Legacy {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "test-contract-v0-1".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Built against contract 0.1.0 (tests only)".into(),
            routes: vec![Route {
                method: Method::Get,
                path: "/contract/v0-1".into(),
                family: Family::Api,
                scope: "patient.s".into(),
                acl: String::new(),
                anonymous: false,
                summary: "Counts patients through the 0.1.0 contract".into(),
            }],
            reads: vec!["patient_data".into()],
            writes: Vec::new(),
            config_keys: Vec::new(),
            fhir: Vec::new(),
        }
    }

    fn handle(_request: Request) -> Response {
        log::write(log::Level::Info, "counting patients through contract 0.1.0");
        let body = match store::query("SELECT COUNT(*) AS n FROM patient_data", &[]) {
            // `json` holds each row as a u32 length then `"n":<count>`.
            Ok(rows) if rows.row_count == 1 => {
                let member = String::from_utf8_lossy(&rows.json[4..]).into_owned();
                let count = member.trim_start_matches("\"n\":");
                format!(r#"{{"contract":"0.1.0","patients":{count}}}"#)
            }
            Ok(_) => r#"{"error":"no count"}"#.to_owned(),
            Err(error) => format!(r#"{{"error":{:?}}}"#, format!("{error:?}")),
        };
        Response {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into_bytes(),
        }
    }
}

export!(Legacy);
