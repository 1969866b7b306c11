//! A plugin built against the released contract 0.2.0 and kept that way, as a plugin
//! compiled before 0.3.0 existed would be: its bindings come straight from the frozen
//! `wit/v0.2.0` (the SDK follows the current contract), so the component exports
//! `hearth:plugin/handler@0.2.0` and imports only 0.2.0 interfaces. It uses what 0.2.0
//! added: `GET /api/contract/v0-2` answers the contract it was built against, the patient
//! count (read from both of 0.2.0's row encodings, which must agree) and the request's
//! correlation id from `util.request-id`.

#![cfg(target_arch = "wasm32")]

wit_bindgen::generate!({
    world: "resource-plugin",
    path: "../../../wit/v0.2.0",
});

use exports::hearth::plugin::handler::Guest;
use hearth::plugin::types::{Family, Method, PluginInfo, Request, Response, Route};
use hearth::plugin::{store, util};

struct Frozen;

impl Guest for Frozen {
    fn describe() -> PluginInfo {
        PluginInfo {
            name: "test-contract-v0-2".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "Built against contract 0.2.0 (tests only)".into(),
            routes: vec![Route {
                method: Method::Get,
                path: "/contract/v0-2".into(),
                family: Family::Api,
                scope: "patient.s".into(),
                acl: String::new(),
                anonymous: false,
                summary: "Counts patients and tells the request id".into(),
            }],
            reads: vec!["patient_data".into()],
            writes: Vec::new(),
            config_keys: Vec::new(),
            fhir: Vec::new(),
        }
    }

    fn handle(_request: Request) -> Response {
        let body = match store::query("SELECT COUNT(*) AS n FROM patient_data", &[]) {
            Ok(rows) if rows.row_count == 1 => {
                // `json` holds each row as a u32 length then `"n":<count>`; `data` the
                // name `n` (a u32 length and one byte), then the tag 1 and 8 bytes.
                let member = String::from_utf8_lossy(&rows.json[4..]).into_owned();
                let from_json = member.trim_start_matches("\"n\":").to_owned();
                let value = rows
                    .data
                    .get(6..14)
                    .map(|b| i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]));
                if value.map(|v| v.to_string()) == Some(from_json.clone()) {
                    format!(
                        r#"{{"data":{{"contract":"0.2.0","patients":{from_json},"request_id":"{}"}}}}"#,
                        util::request_id()
                    )
                } else {
                    format!(r#"{{"error":"the encodings disagree: {from_json} {value:?}"}}"#)
                }
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

export!(Frozen);
