//! Versions of the writable types: `meta.versionId`, `ETag`, `If-Match`, `vread`
//! (`GET /fhir/{Type}/:id/_history/:vid`) and instance history
//! (`GET /fhir/{Type}/:id/_history`).
//!
//! The version store is the database's: each table behind a writable type has a history
//! table `<table>_history` (migrations `0461_fhir_versions.sql`, and
//! `0462_fhir_versions_vitals.sql` for `form_vitals` and `issue_encounter`) that triggers fill with
//! a snapshot of the row after every `INSERT` (version 1) and `UPDATE` (version + 1),
//! whoever writes (the standard API plugins, the FHIR plugins, the host). A row's version
//! is the newest number recorded for its id; a version is read back from its snapshot
//! with the type's own SQL and mapping, the history table standing in for the table.
//!
//! A plugin of a versioned type reads the history table (`READS`), and a plugin that
//! writes the table is granted its history table for writing (the trigger's insert runs
//! with the plugin's grants).

use hearth_sdk::{Json, Request, Response, Result, Row, store};

use crate::{Fields, Mapper, TypeDef, answer, confine, date, error, resource, search};

/// The table behind each versioned resource type (its history is `<table>_history`).
pub const VERSIONED: &[(&str, &str)] = &[
    ("Patient", "patient_data"),
    ("Practitioner", "users"),
    ("PractitionerRole", "users"),
    ("Person", "users"),
    ("Organization", "facility"),
    ("Location", "facility"),
    ("Encounter", "form_encounter"),
    ("AllergyIntolerance", "lists"),
    ("Condition", "lists"),
    ("MedicationRequest", "lists"),
    ("Procedure", "lists"),
    // Observations of vital signs: every measurement of a `form_vitals` row shares the
    // row's version (smoking status, from `history_data`, has none).
    ("Observation", "form_vitals"),
    // Encounter diagnoses: a problem's link to an encounter (the type's second table;
    // a `TypeDef` whose `FROM` starts with it reads its versions, see [`table_for`]).
    ("Condition", "issue_encounter"),
];

/// Tables whose row holds several resources, each id the row's uuid with its version
/// digit (the 15th character, `4` in every uuid the rows get) replaced by the
/// resource's slot (see [`crate::tables`]).
const SLOTTED: &[&str] = &["form_vitals"];

/// The uuid of the row behind the resource `id` of `table`: the id itself, or for a
/// [`SLOTTED`] table the id with its slot digit put back to `4`.
pub fn row_uuid(table: &str, id: &str) -> String {
    let id = id.to_ascii_lowercase();
    if SLOTTED.contains(&table)
        && id.len() == 36
        && id.is_char_boundary(14)
        && id.is_char_boundary(15)
    {
        format!("{}4{}", &id[..14], &id[15..])
    } else {
        id
    }
}

/// The table behind `resource_type` when its rows are versioned.
pub fn table_of(resource_type: &str) -> Option<&'static str> {
    VERSIONED
        .iter()
        .find(|(t, _)| *t == resource_type)
        .map(|(_, table)| *table)
}

/// The versioned table behind `def`: the first table of its `FROM` when that is one of
/// the type's versioned tables (Condition's encounter diagnoses read `issue_encounter`),
/// else the type's first.
fn table_for(def: &TypeDef) -> Option<&'static str> {
    let first = def.from.split_whitespace().next().unwrap_or_default();
    VERSIONED
        .iter()
        .find(|(t, table)| *t == def.resource_type && *table == first)
        .map(|(_, table)| *table)
        .or_else(|| table_of(def.resource_type))
}

/// The alias of the type's main table (the part of `key` before the dot: `p` in `p.id`).
fn alias(def: &TypeDef) -> &'static str {
    def.key.split_once('.').map_or("", |(alias, _)| alias)
}

/// The column expression of a row's current version, for a versioned type's `SELECT`
/// (`, (SELECT MAX(…)) AS fhir_version`); empty for other types.
///
/// A type whose `FROM` is not its table (Condition's union of problems and encounter
/// diagnoses) selects its own `fhir_version` column instead.
pub fn version_column(def: &TypeDef) -> String {
    match table_for(def).filter(|table| history_from(def, table).is_some()) {
        Some(table) => format!(
            ", (SELECT MAX(fv.fhir_version) FROM {table}_history fv WHERE fv.id = {}) AS fhir_version",
            def.key
        ),
        None => String::new(),
    }
}

/// The version of the resource in `row`: the recorded version of a versioned type,
/// else the last change in seconds (see [`crate::version_id`]).
pub fn row_version(row: &Row<'_>) -> String {
    match row.int("fhir_version") {
        Some(version) => itoa::Buffer::new().format(version).to_owned(),
        None => crate::version_id(row.text("fhir_last_updated")),
    }
}

/// The `FROM` clause of the type with the history table in place of its main table.
fn history_from(def: &TypeDef, table: &str) -> Option<String> {
    let rest = def.from.strip_prefix(table)?;
    rest.starts_with(' ')
        .then(|| format!("{table}_history{rest}"))
}

/// The current version of the resource `id` of a versioned type, or `None` when no row
/// has that id (whatever the caller may see).
pub fn current(def: &TypeDef, id: &str) -> Result<Option<i64>> {
    let Some(table) = table_for(def) else {
        return Ok(None);
    };
    let row = if table == "issue_encounter" {
        // No uuid of its own: the id is the type's expression over the history.
        let Some(from) = history_from(def, table) else {
            return Ok(None);
        };
        store::query_one(
            &format!(
                "SELECT MAX({}.fhir_version) AS v FROM {from} WHERE {} = $1",
                alias(def),
                def.id
            ),
            &[id.to_ascii_lowercase().into()],
        )?
    } else {
        store::query_one(
            &format!(
                "SELECT MAX(h.fhir_version) AS v FROM {table}_history h JOIN {table} t ON t.id = h.id \
                 WHERE t.uuid = $1"
            ),
            &[row_uuid(table, id).into()],
        )?
    };
    Ok(row.and_then(|r| r.int("v")))
}

/// The version an `If-Match` header names (`W/"3"`, `"3"`): `None` without the header,
/// a 400 OperationOutcome when it names no version.
pub fn if_match(req: &Request) -> Result<Option<i64>> {
    let Some(value) = req.header("if-match") else {
        return Ok(None);
    };
    let tag = value.trim();
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .filter(|v| *v > 0)
        .map(Some)
        .ok_or_else(|| {
            error(
                400,
                "invalid",
                &format!("If-Match must name a version as W/\"N\"; got {value}"),
            )
        })
}

/// `GET /fhir/{Type}/:id/_history/:vid`: the resource as it was at version `vid`.
/// A version the resource never had (or one of a resource the caller may not see) is a
/// 404; the diagnostic says which.
pub fn vread(req: &Request, def: &TypeDef, id: &str, vid: &str, map: Mapper) -> Result<Response> {
    let unknown = || {
        error(
            404,
            "not-found",
            &format!("{}/{id} is not known", def.resource_type),
        )
    };
    let table = table_for(def).ok_or_else(unknown)?;
    if !hearth_sdk::request::is_uuid(id) {
        return Err(unknown());
    }
    let version: i64 = vid.parse().ok().filter(|v| *v > 0).ok_or_else(|| {
        error(
            404,
            "not-found",
            &format!("{vid} is not a version id (versions are numbered from 1)"),
        )
    })?;
    let rows = versions(req, def, table, id, Some(version), 1)?;
    if let Some(row) = rows.get(0) {
        let tag = format!("W/\"{}\"", row_version(&row));
        return Ok(answer(200, resource(def, &row, req, map)).header("etag", &tag));
    }
    // Tell an unknown resource from an unknown version of a known one.
    let newest = versions(req, def, table, id, None, 1)?;
    match newest.get(0).and_then(|r| r.int("fhir_version")) {
        None => Err(unknown()),
        Some(newest) => Err(error(
            404,
            "not-found",
            &format!(
                "{}/{id} has no version {version}: its versions are 1 to {newest} \
                 (every version since the server began keeping history is kept)",
                def.resource_type
            ),
        )),
    }
}

/// The snapshots of `id`, newest first, at most `limit`; only `version` when given.
/// Confined to what the caller may see, as a read is.
fn versions(
    req: &Request,
    def: &TypeDef,
    table: &str,
    id: &str,
    version: Option<i64>,
    limit: u32,
) -> Result<hearth_sdk::Rows> {
    let from = history_from(def, table)
        .ok_or_else(|| error(500, "exception", "the type's table has no history"))?;
    let alias = alias(def);
    let mut sql = search::Sql::default();
    let by_id = format!("{} = {}", def.id, sql.bind(id.to_ascii_lowercase()));
    sql.conditions.push(by_id);
    if let Some(version) = version {
        let at = format!("{alias}.fhir_version = {}", sql.bind(version));
        sql.conditions.push(at);
    }
    confine(req, def, &mut sql);
    Ok(store::query(
        &format!(
            "SELECT {}, {} AS fhir_id, {} AS fhir_last_updated, {} AS fhir_key, \
             {alias}.fhir_version AS fhir_version FROM {from} WHERE {} \
             ORDER BY {alias}.fhir_version DESC LIMIT {limit}",
            def.columns,
            def.id,
            def.last_updated,
            def.key,
            sql.where_clause()
        ),
        &sql.params,
    )?)
}

/// `GET /fhir/{Type}/:id/_history`: a `history` Bundle of the resource's versions,
/// newest first, `_count` at a time (default 20, at most 200), each entry with the
/// `request` that made it (`POST` for version 1, `PUT` after) and its `response`
/// (status, ETag, last change). `_cursor=N` starts the page at version N (the `next`
/// link's).
pub fn history(req: &Request, def: &TypeDef, id: &str, map: Mapper) -> Result<Response> {
    let unknown = || {
        error(
            404,
            "not-found",
            &format!("{}/{id} is not known", def.resource_type),
        )
    };
    let table = table_for(def).ok_or_else(unknown)?;
    if !hearth_sdk::request::is_uuid(id) {
        return Err(unknown());
    }
    let count = match req.query("_count") {
        None | Some("") => 20,
        Some(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| error(400, "invalid", "_count must be a whole number from 1"))?
            .min(200),
    };
    let start = match req.query("_cursor") {
        None | Some("") => None,
        Some(n) => Some(
            n.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| error(400, "invalid", "_cursor is not a version"))?,
        ),
    };
    let newest = versions(req, def, table, id, None, 1)?;
    let total = newest
        .get(0)
        .and_then(|r| r.int("fhir_version"))
        .ok_or_else(unknown)?;
    let from = start.unwrap_or(total).min(total);
    let rows = {
        let from_sql = history_from(def, table)
            .ok_or_else(|| error(500, "exception", "the type's table has no history"))?;
        let alias = alias(def);
        let mut sql = search::Sql::default();
        let by_id = format!("{} = {}", def.id, sql.bind(id.to_ascii_lowercase()));
        sql.conditions.push(by_id);
        let below = format!("{alias}.fhir_version <= {}", sql.bind(from));
        sql.conditions.push(below);
        confine(req, def, &mut sql);
        store::query(
            &format!(
                "SELECT {}, {} AS fhir_id, {} AS fhir_last_updated, {} AS fhir_key, \
                 {alias}.fhir_version AS fhir_version FROM {from_sql} WHERE {} \
                 ORDER BY {alias}.fhir_version DESC LIMIT {}",
                def.columns,
                def.id,
                def.last_updated,
                def.key,
                sql.where_clause(),
                count + 1
            ),
            &sql.params,
        )?
    };
    let base = format!("{}/{}", req.base_url(), def.resource_type);
    let own = format!("{base}/{id}/_history");
    let mut entries = Json::array();
    let mut next = None;
    for (i, row) in rows.iter().enumerate() {
        let version = row.int("fhir_version").unwrap_or(0);
        if i == count as usize {
            next = Some(version);
            break;
        }
        let mut request = Fields::new();
        let mut response = Fields::new();
        if version == 1 {
            request.set("method", "POST").set("url", def.resource_type);
            response.set("status", "201 Created");
        } else {
            request
                .set("method", "PUT")
                .set("url", format!("{}/{id}", def.resource_type).as_str());
            response.set("status", "200 OK");
        }
        response.set("etag", format!("W/\"{version}\"").as_str());
        if let Some(instant) = row.text("fhir_last_updated").and_then(date::instant) {
            response.set("lastModified", instant.as_str());
        }
        let mut entry = Fields::new();
        entry
            .set("fullUrl", format!("{base}/{id}").as_str())
            .set("resource", resource(def, &row, req, map))
            .set("request", request.end())
            .set("response", response.end());
        entries.push(entry.end());
    }
    let mut links = vec![link(
        "self",
        &match start {
            Some(at) => format!("{own}?_count={count}&_cursor={at}"),
            None => format!("{own}?_count={count}"),
        },
    )];
    if let Some(at) = next {
        links.push(link("next", &format!("{own}?_count={count}&_cursor={at}")));
    }
    let mut bundle = Fields::new();
    bundle
        .set("resourceType", "Bundle")
        .set("type", "history")
        .set("total", total)
        .list("link", links)
        .set("entry", entries.end());
    Ok(answer(200, bundle.end()))
}

fn link(relation: &str, url: &str) -> Json {
    let mut out = Fields::new();
    out.set("relation", relation).set("url", url);
    out.end()
}
