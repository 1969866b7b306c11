//! A native Rust handler for `GET /api/patient/:puuid`: the same SQL and the same JSON as
//! the patient plugin, compiled into the host. It is the baseline the plugin path is
//! benchmarked against (`cargo bench -p hearth-host --features natives --bench http_patient`); a test checks
//! that both answer the same bytes. It is compiled only with the feature `natives`;
//! nothing registers it in normal operation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_sdk::json::write_str;
use rusqlite::types::ValueRef;

use super::{BoxedFuture, NativeRequest};
use crate::db::Db;
use crate::error::HttpError;
use crate::plugins::bindings;

/// A handler written in Rust inside the host, used in place of a plugin route (only the
/// benchmarks and the byte-identity test register one, to compare the plugin path with a
/// native one).
pub type NativeHandler =
    Arc<dyn Fn(NativeRequest) -> BoxedFuture<Result<bindings::Response, HttpError>> + Send + Sync>;

/// Native replacements keyed by `(plugin name, route index)`.
pub type Natives = HashMap<(String, u32), NativeHandler>;

const PATIENT: &str = "SELECT p.* FROM patient_data p WHERE p.uuid = $1";
const NAMES: &str = "SELECT pid, previous_name_prefix, previous_name_first, previous_name_middle, \
     previous_name_last, previous_name_suffix, previous_name_enddate FROM patient_history \
     WHERE history_type_key = 'name_history' AND pid IN ($1) ORDER BY date DESC, id DESC";

/// The keys of a previous name, in the columns' order after `pid`.
const NAME_PARTS: [&str; 6] = hearth_emr::PREVIOUS_NAME_PARTS;

/// The handler, ready to register for the patient plugin's `GET /patient/:puuid`.
pub fn get_patient() -> NativeHandler {
    Arc::new(|request: NativeRequest| Box::pin(async move { handle(request).await }))
}

fn json(status: u16, body: String) -> bindings::Response {
    bindings::Response {
        status,
        headers: Vec::new(),
        body: body.into_bytes(),
    }
}

fn value(out: &mut String, value: ValueRef<'_>) {
    use std::fmt::Write;
    match value {
        ValueRef::Null | ValueRef::Blob(_) => out.push_str("null"),
        ValueRef::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        ValueRef::Real(r) if r.is_finite() => {
            let _ = write!(out, "{r}");
        }
        ValueRef::Real(_) => out.push_str("null"),
        ValueRef::Text(t) => write_str(out, std::str::from_utf8(t).unwrap_or_default()),
    }
}

async fn handle(request: NativeRequest) -> Result<bindings::Response, HttpError> {
    let puuid = request.params.first().cloned().unwrap_or_default();
    if !hearth_sdk::request::is_uuid(&puuid) {
        return Ok(json(
            400,
            r#"{"validationErrors":{"puuid":{"Uuid::INVALID_UUID":"puuid must be a valid UUID (valid format)"}},"internalErrors":[],"data":[],"links":[]}"#.into(),
        ));
    }
    let Db::Sqlite(_, fast) = &request.site.db else {
        return Err(HttpError::internal(
            "the native baseline runs on SQLite sites",
        ));
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    let tx = fast
        .begin(false, deadline)
        .await
        .map_err(|e| HttpError::internal(format!("{e:?}")))?;
    let body = render(tx.connection(), &puuid.to_ascii_lowercase()).map_err(HttpError::internal)?;
    tx.commit()
        .map_err(|e| HttpError::internal(format!("{e:?}")))?;
    Ok(match body {
        Some(body) => json(200, body),
        None => json(
            404,
            r#"{"validationErrors":[],"internalErrors":[],"data":[],"links":[]}"#.into(),
        ),
    })
}

/// The patient as the plugin renders it, or `None` when there is none.
fn render(
    connection: &rusqlite::Connection,
    puuid: &str,
) -> Result<Option<String>, rusqlite::Error> {
    let mut statement = connection.prepare_cached(PATIENT)?;
    let mut rows = statement.query([puuid])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let statement = row.as_ref();
    let text_at = |name: &str| {
        statement
            .column_index(name)
            .ok()
            .and_then(|i| row.get_ref(i).ok())
            .and_then(|cell| match cell {
                ValueRef::Text(t) => std::str::from_utf8(t).ok(),
                _ => None,
            })
    };
    let stored_suffix = text_at("suffix");
    let suffix = hearth_emr::patient_suffix(stored_suffix, text_at("lname"));
    let suffix_is_null = statement
        .column_index("suffix")
        .ok()
        .and_then(|i| row.get_ref(i).ok())
        .is_none_or(|cell| cell == ValueRef::Null);
    // As the plugin: the stored suffix stays in place; a derived one goes last.
    let keep_suffix =
        stored_suffix.is_some_and(|s| !s.is_empty()) || (suffix.is_none() && suffix_is_null);
    let mut out = String::with_capacity(8192);
    out.push_str(r#"{"validationErrors":[],"internalErrors":[],"data":{"#);
    let (mut pid, mut date) = (None, ValueRef::Null);
    let mut first_member = true;
    for i in 0..statement.column_count() {
        let name = statement.column_name(i)?;
        let cell = row.get_ref(i)?;
        match name {
            "pid" => pid = cell.as_i64().ok(),
            "date" => date = cell,
            _ => {}
        }
        if name == "suffix" && !keep_suffix {
            continue;
        }
        if !first_member {
            out.push(',');
        }
        first_member = false;
        write_str(&mut out, name);
        out.push(':');
        value(&mut out, cell);
    }
    if !keep_suffix {
        out.push_str(r#","suffix":"#);
        match suffix {
            Some(suffix) => write_str(&mut out, suffix),
            None => out.push_str("null"),
        }
    }
    out.push_str(r#","previous_names":["#);
    let mut names = connection.prepare_cached(NAMES)?;
    let mut history = names.query([pid.unwrap_or_default()])?;
    let mut first = true;
    while let Some(h) = history.next()? {
        if !first {
            out.push(',');
        }
        first = false;
        for (i, key) in NAME_PARTS.iter().enumerate() {
            out.push_str(if i == 0 { "{" } else { "," });
            write_str(&mut out, key);
            out.push(':');
            value(&mut out, h.get_ref(i + 1)?);
        }
        let part = |i: usize| match h.get_ref(i + 1) {
            Ok(ValueRef::Text(t)) => std::str::from_utf8(t).ok(),
            _ => None,
        };
        let formatted = hearth_emr::formatted_previous_name([
            part(0),
            part(1),
            part(2),
            part(3),
            part(4),
            part(5),
        ]);
        out.push_str(r#","formatted_name":"#);
        write_str(&mut out, &formatted);
        out.push('}');
    }
    out.push_str(
        r#"],"addresses":[{"id":null,"contact_id":null,"contact_address_id":null,"period_start":"#,
    );
    value(&mut out, date);
    out.push_str(r#","period_end":null,"type":"both","use":"home","priority":0"#);
    for (key, column) in [
        ("line1", "street"),
        ("line2", "street_line_2"),
        ("city", "city"),
        ("district", "county"),
        ("state", "state"),
        ("postal_code", "postal_code"),
        ("country_code", "country_code"),
    ] {
        out.push(',');
        write_str(&mut out, key);
        out.push(':');
        write_str(&mut out, text_at(column).unwrap_or_default());
    }
    out.push_str(r#"}]},"links":[]}"#);
    Ok(Some(out))
}
