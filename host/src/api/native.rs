//! Native Rust twins of the patient plugin's `GET /api/patient/:puuid`, `GET /api/patient`
//! (a page: `_limit` and `_offset`) and `POST /api/patient`: the same SQL and the same JSON
//! as the plugin, compiled into the host (the create uses the same validation and column
//! rules from `hearth-emr` and the SDK, run natively). They are the baselines the plugin
//! path is benchmarked against (`cargo bench -p hearth-host --features natives --bench
//! http_patient`); `tests/tests/native_baseline.rs` checks that each answers the plugin's
//! bytes and, for the create, writes the same row. They are compiled only with the feature
//! `natives`; nothing registers them in normal operation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_sdk::json::write_str;
use hearth_sdk::sql::{Fields, Search, Sort, SortKey};
use hearth_sdk::time::DateTime;
use hearth_sdk::{ApiError, Family, Json, Value as SdkValue};
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

/// Every `patient_data` column, as the plugin selects them.
const SELECT: &str = "SELECT p.* FROM patient_data p";
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

/// The handler for the patient plugin's `GET /patient` with `_limit` (and `_offset`):
/// one page in the plugin's default order. Other query parameters are not served (500).
pub fn list_patients() -> NativeHandler {
    Arc::new(|request: NativeRequest| Box::pin(async move { list(request).await }))
}

/// The handler for the patient plugin's `POST /patient`.
pub fn create_patient() -> NativeHandler {
    Arc::new(|request: NativeRequest| Box::pin(async move { create(request).await }))
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
    let mut out = String::with_capacity(8192);
    out.push_str(r#"{"validationErrors":[],"internalErrors":[],"data":"#);
    let mut tail = String::with_capacity(512);
    let columns = Columns::of(row.as_ref());
    let pid = patient(&mut out, &mut tail, row, &columns)?;
    let names = previous_names(connection, pid.as_slice())?;
    push_names(&mut out, &names, pid);
    out.push_str(&tail);
    out.push_str(r#","links":[]}"#);
    Ok(Some(out))
}

/// Where the columns the mapping reads sit in a `patient_data` row, found once per
/// statement rather than by name in every row.
struct Columns {
    names: Vec<String>,
    pid: Option<usize>,
    date: Option<usize>,
    suffix: Option<usize>,
    lname: Option<usize>,
    /// street, street_line_2, city, county, state, postal_code, country_code.
    address: [Option<usize>; 7],
}

/// The address members and the columns they come from, in the plugin's order.
const ADDRESS: [(&str, &str); 7] = [
    ("line1", "street"),
    ("line2", "street_line_2"),
    ("city", "city"),
    ("district", "county"),
    ("state", "state"),
    ("postal_code", "postal_code"),
    ("country_code", "country_code"),
];

impl Columns {
    fn of(statement: &rusqlite::Statement<'_>) -> Columns {
        let names: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let at = |name: &str| names.iter().position(|n| n == name);
        Columns {
            pid: at("pid"),
            date: at("date"),
            suffix: at("suffix"),
            lname: at("lname"),
            address: ADDRESS.map(|(_, column)| at(column)),
            names,
        }
    }
}

/// Writes a patient row as the plugin maps it, up to its previous names: `{`, every
/// column, the suffix as OpenEMR reads it. `tail` gets the rest: the addresses and the
/// closing brace. Answers the patient's `pid`.
fn patient(
    out: &mut String,
    tail: &mut String,
    row: &rusqlite::Row<'_>,
    columns: &Columns,
) -> Result<Option<i64>, rusqlite::Error> {
    let cell_at = |i: Option<usize>| i.and_then(|i| row.get_ref(i).ok());
    let text_at = |i: Option<usize>| {
        cell_at(i).and_then(|cell| match cell {
            ValueRef::Text(t) => std::str::from_utf8(t).ok(),
            _ => None,
        })
    };
    let stored_suffix = text_at(columns.suffix);
    let suffix = hearth_emr::patient_suffix(stored_suffix, text_at(columns.lname));
    let suffix_is_null = cell_at(columns.suffix).is_none_or(|cell| cell == ValueRef::Null);
    // As the plugin: the stored suffix stays in place; a derived one goes last.
    let keep_suffix =
        stored_suffix.is_some_and(|s| !s.is_empty()) || (suffix.is_none() && suffix_is_null);
    out.push('{');
    let mut first_member = true;
    for (i, name) in columns.names.iter().enumerate() {
        if !keep_suffix && Some(i) == columns.suffix {
            continue;
        }
        if !first_member {
            out.push(',');
        }
        first_member = false;
        write_str(out, name);
        out.push(':');
        value(out, row.get_ref(i)?);
    }
    if !keep_suffix {
        out.push_str(r#","suffix":"#);
        match suffix {
            Some(suffix) => write_str(out, suffix),
            None => out.push_str("null"),
        }
    }
    tail.push_str(
        r#","addresses":[{"id":null,"contact_id":null,"contact_address_id":null,"period_start":"#,
    );
    value(tail, cell_at(columns.date).unwrap_or(ValueRef::Null));
    tail.push_str(r#","period_end":null,"type":"both","use":"home","priority":0"#);
    for ((key, _), at) in ADDRESS.iter().zip(columns.address) {
        tail.push(',');
        write_str(tail, key);
        tail.push(':');
        write_str(tail, text_at(at).unwrap_or_default());
    }
    tail.push_str("}]}");
    Ok(cell_at(columns.pid).and_then(|cell| cell.as_i64().ok()))
}

/// `,"previous_names":[…]` for the patient `pid`.
fn push_names(out: &mut String, names: &HashMap<i64, String>, pid: Option<i64>) {
    out.push_str(r#","previous_names":["#);
    if let Some(names) = pid.and_then(|pid| names.get(&pid)) {
        out.push_str(names);
    }
    out.push(']');
}

/// The previous names of the patients `pids`, newest first, each patient's as the members
/// of its `previous_names` array (one query for all, as the plugin asks).
fn previous_names(
    connection: &rusqlite::Connection,
    pids: &[i64],
) -> Result<HashMap<i64, String>, rusqlite::Error> {
    let mut by_pid: HashMap<i64, String> = HashMap::new();
    if pids.is_empty() {
        return Ok(by_pid);
    }
    let mut statement = if pids.len() == 1 {
        connection.prepare_cached(NAMES)?
    } else {
        let placeholders: Vec<String> = (1..=pids.len()).map(|i| format!("${i}")).collect();
        connection.prepare_cached(&NAMES.replace("$1", &placeholders.join(", ")))?
    };
    let mut history = statement.query(rusqlite::params_from_iter(pids))?;
    while let Some(h) = history.next()? {
        let Ok(pid) = h.get::<_, i64>(0) else {
            continue;
        };
        let out = by_pid.entry(pid).or_default();
        if !out.is_empty() {
            out.push(',');
        }
        for (i, key) in NAME_PARTS.iter().enumerate() {
            out.push_str(if i == 0 { "{" } else { "," });
            write_str(out, key);
            out.push(':');
            value(out, h.get_ref(i + 1)?);
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
        write_str(out, &formatted);
        out.push('}');
    }
    Ok(by_pid)
}

/// The plugin's default order for lists (`_sort` absent): oldest record first.
const LIST_ORDER: Sort = Sort {
    alias: "p",
    keys: &[SortKey::column("id")],
    default: "id",
    tiebreak: "id",
};

/// The most rows one page may hold (the plugin's `_limit` cap).
const MAX_LIMIT: u32 = hearth_emr::crud::MAX_LIMIT;

async fn list(request: NativeRequest) -> Result<bindings::Response, HttpError> {
    let (mut limit, mut offset) = (None, 0u32);
    for (key, text) in &request.query {
        let number = text.parse::<u32>().map_err(|_| {
            HttpError::internal(format!(
                "the native twin serves numeric paging only ({key})"
            ))
        })?;
        match key.as_str() {
            "_limit" => limit = Some(number),
            "_offset" => offset = number,
            _ => {
                return Err(HttpError::internal(format!(
                    "the native twin serves paging only, not {key}"
                )));
            }
        }
    }
    let Some(limit) = limit.filter(|l| *l > 0).map(|l| l.min(MAX_LIMIT)) else {
        return Err(HttpError::internal(
            "the native twin serves pages only (_limit)",
        ));
    };
    let Db::Sqlite(_, fast) = &request.site.db else {
        return Err(HttpError::internal(
            "the native baseline runs on SQLite sites",
        ));
    };
    let mut search = Search::on("p");
    search
        .sort(None, &LIST_ORDER)
        .map_err(|_| HttpError::internal("the default order"))?;
    let (sql, _) = search.build(SELECT, Some((limit + 1, offset)));
    let deadline = Instant::now() + Duration::from_secs(5);
    let tx = fast
        .begin(false, deadline)
        .await
        .map_err(|e| HttpError::internal(format!("{e:?}")))?;
    let (items, more) =
        render_page(tx.connection(), &sql, limit, offset).map_err(HttpError::internal)?;
    tx.commit()
        .map_err(|e| HttpError::internal(format!("{e:?}")))?;
    let link = |offset: u32| {
        format!(
            "{}{}?_offset={offset}&_limit={limit}",
            request.base_url, request.path
        )
    };
    let mut links = String::with_capacity(256);
    links.push_str(r#"{"first":"#);
    write_str(&mut links, &link(0));
    if offset > 0 {
        links.push_str(r#","previous":"#);
        write_str(&mut links, &link(offset.saturating_sub(limit)));
    }
    if more {
        links.push_str(r#","next":"#);
        write_str(&mut links, &link(offset + limit));
    }
    links.push('}');
    Ok(from_sdk(hearth_sdk::Response::list(
        Json::raw(items),
        Json::raw(links),
    )))
}

/// A page of patients as the plugin renders it, and whether more rows follow.
fn render_page(
    connection: &rusqlite::Connection,
    sql: &str,
    limit: u32,
    offset: u32,
) -> Result<(String, bool), rusqlite::Error> {
    let mut statement = connection.prepare_cached(sql)?;
    let mut rows = statement.query([i64::from(limit) + 1, i64::from(offset)])?;
    let mut patients = Vec::with_capacity(limit as usize);
    let mut more = false;
    let mut columns = None;
    while let Some(row) = rows.next()? {
        let columns = columns.get_or_insert_with(|| Columns::of(row.as_ref()));
        if patients.len() == limit as usize {
            more = true;
            break;
        }
        let (mut head, mut tail) = (String::with_capacity(4096), String::with_capacity(512));
        let pid = patient(&mut head, &mut tail, row, columns)?;
        patients.push((pid, head, tail));
    }
    drop(rows);
    let pids: Vec<i64> = patients.iter().filter_map(|(pid, _, _)| *pid).collect();
    let names = previous_names(connection, &pids)?;
    let mut items = String::with_capacity(patients.len() * 4096 + 2);
    items.push('[');
    for (i, (pid, head, tail)) in patients.iter().enumerate() {
        if i > 0 {
            items.push(',');
        }
        items.push_str(head);
        push_names(&mut items, &names, *pid);
        items.push_str(tail);
    }
    items.push(']');
    Ok((items, more))
}

fn from_sdk(response: hearth_sdk::Response) -> bindings::Response {
    bindings::Response {
        status: response.status,
        headers: response.headers,
        body: response.body,
    }
}

async fn create(request: NativeRequest) -> Result<bindings::Response, HttpError> {
    let answer = |error: ApiError| Ok(from_sdk(error.into_response(Family::Api)));
    let body = match serde_json::from_slice::<serde_json::Value>(&request.body) {
        Ok(serde_json::Value::Object(map)) => map,
        Ok(_) => {
            return answer(ApiError::invalid(
                "body",
                "Json::NOT_AN_OBJECT",
                "The request body must be a JSON object",
            ));
        }
        Err(e) => {
            return answer(ApiError::invalid(
                "body",
                "Json::INVALID",
                &format!("The request body is not valid JSON: {e}"),
            ));
        }
    };
    if let Err(error) = hearth_emr::validate_patient(&body, true) {
        return answer(error);
    }
    let fields = match Fields::from_json(&body, hearth_emr::PATIENT_COLUMNS) {
        Ok(fields) => fields,
        Err(error) => return answer(error),
    };
    let Db::Sqlite(_, fast) = &request.site.db else {
        return Err(HttpError::internal(
            "the native baseline runs on SQLite sites",
        ));
    };
    let subject = request
        .principal
        .as_ref()
        .map(|p| p.subject.clone())
        .unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(5);
    let tx = fast
        .begin(true, deadline)
        .await
        .map_err(|e| HttpError::internal(format!("{e:?}")))?;
    // Dropping the transaction on an error rolls it back.
    let (pid, uuid) = insert(tx.connection(), &subject, &fields).map_err(HttpError::internal)?;
    tx.commit()
        .map_err(|e| HttpError::internal(format!("{e:?}")))?;
    let mut data = Json::object();
    data.field("pid", pid).field("uuid", uuid);
    Ok(from_sdk(hearth_sdk::Response::created(data.end())))
}

/// The plugin's create: the next `pid`, a new uuid, the caller as creator, the row.
fn insert(
    connection: &rusqlite::Connection,
    subject: &str,
    fields: &Fields,
) -> Result<(i64, String), rusqlite::Error> {
    use rusqlite::OptionalExtension;
    let pid: i64 = connection
        .prepare_cached(
            "UPDATE sequences SET value = value + 1 WHERE name = 'pid' RETURNING value",
        )?
        .query_row([], |row| row.get(0))?;
    let uuid = crate::db::comb_uuid();
    let now = DateTime::from_unix(time::OffsetDateTime::now_utc().unix_timestamp()).datetime();
    let user: Option<i64> = if subject.is_empty() {
        None
    } else {
        connection
            .prepare_cached("SELECT id FROM users WHERE uuid = $1")?
            .query_row([subject], |row| row.get(0))
            .optional()?
    };
    let pubpid = match fields.get("pubpid") {
        Some(SdkValue::Text(p)) if !p.is_empty() => p.clone(),
        _ => pid.to_string(),
    };
    let mut insert = hearth_emr::new_patient(uuid.as_str(), pid, pubpid, &now);
    insert
        .set("created_by", user)
        .set("updated_by", user)
        .fields(fields);
    let sql = insert.sql();
    let values = insert.into_values().into_iter().map(|value| match value {
        SdkValue::Null => rusqlite::types::Value::Null,
        SdkValue::Integer(i) => rusqlite::types::Value::Integer(i),
        SdkValue::Real(r) => rusqlite::types::Value::Real(r),
        SdkValue::Text(t) => rusqlite::types::Value::Text(t),
        SdkValue::Blob(b) => rusqlite::types::Value::Blob(b),
    });
    connection
        .prepare_cached(&sql)?
        .execute(rusqlite::params_from_iter(values))?;
    Ok((pid, uuid))
}
