//! FHIR R4 for Hearth plugins.
//!
//! A FHIR resource plugin describes its type once, as a [`TypeDef`]: the table it reads,
//! the columns holding the id, the row key and the last update, the patient compartment,
//! the search parameters with the SQL each searches and the profiles it claims. The
//! crate does the rest the same way for every type:
//!
//! - [`read`]: `GET /fhir/{Type}/:id` with `meta.versionId`, `meta.lastUpdated`,
//!   `meta.profile` and an `ETag`, 404 as an OperationOutcome;
//! - [`search`]: `GET /fhir/{Type}` as a `searchset` Bundle whose `total` counts every
//!   match, whose `self` link names only the parameters applied, and whose `next` and
//!   `previous` links page with a cursor that stays stable while rows are added
//!   (see [`search::Cursor`]);
//! - the patient compartment: a patient-bound caller sees only its own patient's
//!   resources ([`compartment`]);
//! - [`TypeDef::declaration`]: what the host lists in `/fhir/metadata`;
//! - small builders for what every resource writes: [`coding`], [`concept`],
//!   [`reference`], [`outcome`], [`Fields`].
//!
//! The plugin keeps its mapping: a function from a row to the resource's fields.

pub mod branches;
pub mod codes;
pub mod contact;
pub mod date;
pub mod granular;
pub mod history;
pub mod include;
pub mod linked;
pub mod provenance;
pub mod search;
pub mod tables;
pub mod write;

use hearth_sdk::json::{ArrayWriter, ObjectWriter};
use hearth_sdk::request::Role;
use hearth_sdk::{
    ApiError, FhirSearchParam, FhirType, Json, Request, Response, Result, Row, ToJson, store,
};

pub use search::{Kind, Param, Plan, Target, TokenColumn, Total};

#[doc(hidden)]
pub use hearth_sdk as __sdk;

/// The three routes of a read-and-search type, for a plugin's `ROUTES`:
/// `GET /fhir/{Type}` and `POST /fhir/{Type}/_search` answered by [`search`], and
/// `GET /fhir/{Type}/:id` by [`read`], each with the type's v2 scope (`{Type}.s`,
/// `{Type}.r`) and the ACL a staff caller needs. `schema` is the JSON Schema of one
/// resource (see [`hearth_sdk::apidocs`]); searches are documented as Bundles of it.
///
/// A plugin serving several types lists each, separated by `;`:
///
/// ```ignore
/// const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
///     PATIENT, map, type = "Patient", acl = "patients/demo", nouns = "patients", one = "a patient",
///     schema = PATIENT_SCHEMA
/// );
/// const BOTH: &'static [Route] = &hearth_fhir::read_search_routes!(
///     ORGANIZATION, organization, type = "Organization", acl = "admin/users",
///     nouns = "organizations", one = "an organization", schema = ORGANIZATION_SCHEMA;
///     LOCATION, location, type = "Location", acl = "", nouns = "locations", one = "a location",
///     schema = LOCATION_SCHEMA
/// );
/// ```
///
/// An empty `acl` means the route needs none (OpenEMR's Location).
#[macro_export]
macro_rules! read_search_routes {
    ($($def:ident, $map:path, type = $ty:literal, acl = $acl:literal, nouns = $nouns:literal,
     one = $one:literal, schema = $schema:path);+ $(;)?) => {
        [
            $(
            $crate::__sdk::Route::get(concat!("/fhir/", $ty), concat!($ty, ".s"), |r| {
                $crate::search(r, &$def, $map)
            })
            .acl($acl)
            .summary(concat!("Search ", $nouns))
            .answers($crate::__sdk::apidocs::Schema::Bundle(&$schema)),
            $crate::__sdk::Route::post(
                concat!("/fhir/", $ty, "/_search"),
                concat!($ty, ".s"),
                |r| $crate::search(r, &$def, $map),
            )
            .acl($acl)
            .summary(concat!("Search ", $nouns, " (form body)"))
            .answers($crate::__sdk::apidocs::Schema::Bundle(&$schema)),
            $crate::__sdk::Route::get(concat!("/fhir/", $ty, "/:id"), concat!($ty, ".r"), |r| {
                $crate::read(r, &$def, r.param("id")?, $map)
            })
            .acl($acl)
            .summary(concat!("Read ", $one))
            .answers($schema),
            )+
        ]
    };
}

/// The routes of a writable, versioned type: those of [`read_search_routes!`], then
/// `POST /fhir/{Type}` (`create`, scope `{Type}.c`), `PUT /fhir/{Type}/:id` (`update`,
/// `{Type}.u`), both with `write_acl`, and `GET /fhir/{Type}/:id/_history` and
/// `GET /fhir/{Type}/:id/_history/:vid` ([`history::history`], [`history::vread`],
/// `{Type}.r`). `create` and `update` are the plugin's handlers (see [`write`]).
/// `more = [routes…]` puts further routes first (another type's of the same plugin).
#[macro_export]
macro_rules! read_write_routes {
    ($def:ident, $map:path, create = $create:path, update = $update:path, type = $ty:literal,
     acl = $acl:literal, write_acl = $wacl:literal, nouns = $nouns:literal, one = $one:literal,
     schema = $schema:path $(, more = [$($more:expr),* $(,)?])?) => {
        [
            $($($more,)*)?
            $crate::__sdk::Route::get(concat!("/fhir/", $ty), concat!($ty, ".s"), |r| {
                $crate::search(r, &$def, $map)
            })
            .acl($acl)
            .summary(concat!("Search ", $nouns))
            .answers($crate::__sdk::apidocs::Schema::Bundle(&$schema)),
            $crate::__sdk::Route::post(
                concat!("/fhir/", $ty, "/_search"),
                concat!($ty, ".s"),
                |r| $crate::search(r, &$def, $map),
            )
            .acl($acl)
            .summary(concat!("Search ", $nouns, " (form body)"))
            .answers($crate::__sdk::apidocs::Schema::Bundle(&$schema)),
            $crate::__sdk::Route::get(concat!("/fhir/", $ty, "/:id"), concat!($ty, ".r"), |r| {
                $crate::read(r, &$def, r.param("id")?, $map)
            })
            .acl($acl)
            .summary(concat!("Read ", $one))
            .answers($schema),
            $crate::__sdk::Route::post(concat!("/fhir/", $ty), concat!($ty, ".c"), $create)
                .acl($wacl)
                .summary(concat!("Create ", $one))
                .accepts($schema)
                .answers($schema),
            $crate::__sdk::Route::put(concat!("/fhir/", $ty, "/:id"), concat!($ty, ".u"), $update)
                .acl($wacl)
                .summary(concat!("Update ", $one, " (If-Match: W/\"version\")"))
                .accepts($schema)
                .answers($schema),
            $crate::__sdk::Route::get(
                concat!("/fhir/", $ty, "/:id/_history"),
                concat!($ty, ".r"),
                |r| $crate::history::history(r, &$def, r.param("id")?, $map),
            )
            .acl($acl)
            .summary(concat!("The versions of ", $one, ", newest first"))
            .answers($crate::__sdk::apidocs::Schema::Json(r#"{"type":"object","description":"A Bundle of type history"}"#)),
            $crate::__sdk::Route::get(
                concat!("/fhir/", $ty, "/:id/_history/:vid"),
                concat!($ty, ".r"),
                |r| $crate::history::vread(r, &$def, r.param("id")?, r.param("vid")?, $map),
            )
            .acl($acl)
            .summary(concat!("Read a version of ", $one))
            .answers($schema),
        ]
    };
}

/// The content type of every FHIR answer.
pub const CONTENT_TYPE: &str = "application/fhir+json";

/// A FHIR resource type served from SQL.
#[derive(Debug, Clone, Copy)]
pub struct TypeDef {
    /// The resource type, e.g. `Patient`.
    pub resource_type: &'static str,
    /// Canonical URLs of the profiles every resource claims (`meta.profile`), and the
    /// CapabilityStatement's supported profiles. A row that selects a `fhir_profiles`
    /// column (space-separated URLs) claims those instead.
    pub profiles: &'static [&'static str],
    /// The columns the mapping reads, e.g. `p.*`.
    pub columns: &'static str,
    /// The `FROM` clause, e.g. `patient_data p`.
    pub from: &'static str,
    /// The SQL expression of the resource id (a uuid), e.g. `p.uuid`.
    pub id: &'static str,
    /// An integer key that grows as rows are added (paging bound and tie-break), e.g. `p.id`.
    pub key: &'static str,
    /// The time of the row's last change (`YYYY-MM-DD HH:MM:SS`), e.g. `p.last_updated`.
    pub last_updated: &'static str,
    /// The SQL expression of the uuid of the patient whose compartment the row is in;
    /// `None` for a type outside patient compartments (practitioners, organizations),
    /// which every caller holding the type's scope sees whole.
    pub patient: Option<&'static str>,
    /// A condition every row of the type meets (OpenEMR's practitioners are the users
    /// with an NPI: `u.npi <> ''`), or `None`.
    pub only: Option<&'static str>,
    /// The search parameters beyond `_id` and `_lastUpdated`.
    pub params: &'static [Param],
}

/// Builds a resource's own fields (everything but `resourceType`, `id` and `meta`).
pub type Mapper = fn(&Row<'_>, &Request, &mut Fields);

impl TypeDef {
    /// Every search parameter: `_id`, `_lastUpdated` and the type's own.
    pub fn all_params(&self) -> Vec<Param> {
        let mut all = search::common(self.id, self.last_updated).to_vec();
        all.extend_from_slice(self.params);
        all
    }

    /// What the host lists for this type in the CapabilityStatement.
    pub fn declaration(&self) -> FhirType {
        FhirType {
            resource_type: self.resource_type.to_owned(),
            profiles: self.profiles.iter().map(|p| (*p).to_owned()).collect(),
            search_params: self
                .all_params()
                .iter()
                .map(|p| FhirSearchParam {
                    name: p.name.to_owned(),
                    kind: p.target.kind().name().to_owned(),
                    expression: p.expression.to_owned(),
                })
                .collect(),
        }
    }

    fn select(&self) -> String {
        self.select_with("")
    }

    /// The `SELECT … FROM` with `extra` columns (each starting with `, `) after the
    /// resource's own.
    fn select_with(&self, extra: &str) -> String {
        self.select_from(extra, self.from)
    }

    /// [`TypeDef::select_with`] over `from` instead of the type's own `FROM` clause (the
    /// same derived table with conditions pushed into its branches, see [`branches`]).
    fn select_from(&self, extra: &str, from: &str) -> String {
        format!(
            "SELECT {}, {} AS fhir_id, {} AS fhir_last_updated, {} AS fhir_key{}{extra} FROM {from}",
            self.columns,
            self.id,
            self.last_updated,
            self.key,
            history::version_column(self),
        )
    }
}

/// A JSON object that leaves out what FHIR forbids: absent and empty values.
pub struct Fields {
    out: ObjectWriter,
}

impl Fields {
    /// Starts an object.
    pub fn new() -> Fields {
        Fields {
            out: Json::object(),
        }
    }

    /// Adds `key: value`.
    pub fn set(&mut self, key: &str, value: impl ToJson) -> &mut Self {
        self.out.field(key, value);
        self
    }

    /// Adds `key: text` unless the text is absent or blank.
    pub fn text(&mut self, key: &str, text: Option<&str>) -> &mut Self {
        if let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) {
            self.out.field(key, text);
        }
        self
    }

    /// Adds `key: [items]` unless there are none.
    pub fn list(&mut self, key: &str, items: Vec<Json>) -> &mut Self {
        if !items.is_empty() {
            let mut array = Json::array();
            for item in items {
                array.push(item);
            }
            self.out.field(key, array.end());
        }
        self
    }

    /// Adds `key: object` unless the object is empty.
    pub fn object(&mut self, key: &str, object: Json) -> &mut Self {
        if object.as_str() != "{}" {
            self.out.field(key, object);
        }
        self
    }

    /// Finishes the object.
    pub fn end(&mut self) -> Json {
        self.out.end()
    }
}

impl Default for Fields {
    fn default() -> Self {
        Fields::new()
    }
}

/// A `Coding`.
pub fn coding(system: &str, code: &str, display: Option<&str>) -> Json {
    let mut out = Fields::new();
    out.text("system", Some(system))
        .text("code", Some(code))
        .text("display", display);
    out.end()
}

/// A `CodeableConcept` of one coding, with `text` when given.
pub fn concept(coding: Json, text: Option<&str>) -> Json {
    let mut out = Fields::new();
    out.list("coding", vec![coding]).text("text", text);
    out.end()
}

/// The non-blank texts among `values`, each a JSON string (FHIR's `given`, `prefix`,
/// `line`, …).
pub fn strings<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Vec<Json> {
    values
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let mut out = String::with_capacity(v.len() + 2);
            hearth_sdk::json::write_str(&mut out, v);
            Json::raw(out)
        })
        .collect()
}

/// A `ContactPoint` (`system` `phone`, `email`, …; `use` `home`, `work`, `mobile`), or
/// none when the value is blank.
pub fn contact_point(system: &str, use_: &str, value: Option<&str>) -> Option<Json> {
    let value = value.map(str::trim).filter(|v| !v.is_empty())?;
    let mut out = Fields::new();
    out.set("system", system)
        .set("value", value)
        .set("use", use_);
    Some(out.end())
}

/// An `official` `HumanName`: family name, given names, prefixes and suffixes, blanks
/// left out.
pub fn human_name<'a>(
    family: Option<&str>,
    given: impl IntoIterator<Item = Option<&'a str>>,
    prefix: Option<&str>,
    suffix: Option<&str>,
) -> Json {
    let mut name = Fields::new();
    name.set("use", "official")
        .text("family", family)
        .list("given", strings(given))
        .list("prefix", strings([prefix]))
        .list("suffix", strings([suffix]));
    name.end()
}

/// The parts of an `Address`, each optional.
#[derive(Debug, Default, Clone, Copy)]
pub struct AddressParts<'a> {
    /// `home`, `work`, …
    pub use_: Option<&'a str>,
    /// Street lines.
    pub lines: [Option<&'a str>; 2],
    /// City.
    pub city: Option<&'a str>,
    /// County.
    pub district: Option<&'a str>,
    /// State.
    pub state: Option<&'a str>,
    /// Postal code.
    pub postal_code: Option<&'a str>,
    /// Country.
    pub country: Option<&'a str>,
}

/// An `Address`, or none when every part but `use` is blank.
pub fn address(parts: AddressParts<'_>) -> Option<Json> {
    let mut body = Fields::new();
    body.list("line", strings(parts.lines))
        .text("city", parts.city)
        .text("district", parts.district)
        .text("state", parts.state)
        .text("postalCode", parts.postal_code)
        .text("country", parts.country);
    let body = body.end();
    if body.as_str() == "{}" {
        return None;
    }
    Some(match parts.use_ {
        Some(use_) => {
            let mut out = String::from("{\"use\":");
            hearth_sdk::json::write_str(&mut out, use_);
            out.push(',');
            out.push_str(&body.as_str()[1..]);
            Json::raw(out)
        }
        None => body,
    })
}

/// A `Reference` to `{resource_type}/{id}`, with a display when given.
pub fn reference(resource_type: &str, id: &str, display: Option<&str>) -> Json {
    let mut out = Fields::new();
    out.set("reference", [resource_type, "/", id].concat().as_str())
        .text("display", display);
    out.end()
}

/// An `OperationOutcome` with one issue of `severity` (`error`, `warning`, …).
pub fn outcome(severity: &str, code: &str, diagnostics: &str) -> Json {
    let mut issue = Fields::new();
    issue
        .set("severity", severity)
        .set("code", code)
        .text("diagnostics", Some(diagnostics));
    let mut out = Fields::new();
    out.set("resourceType", "OperationOutcome")
        .list("issue", vec![issue.end()]);
    out.end()
}

/// An error answered as an OperationOutcome with `status`.
pub fn error(status: u16, code: &str, diagnostics: &str) -> ApiError {
    ApiError::Response(
        Response::json(status, outcome("error", code, diagnostics))
            .header("content-type", CONTENT_TYPE),
    )
}

/// The version a row is at: its last change, in seconds since the Unix epoch. Every
/// write to the tables behind a resource sets the change time, so the version moves
/// with each write (two writes within one second share a version).
pub fn version_id(last_updated: Option<&str>) -> String {
    last_updated.and_then(date::unix).map_or_else(
        || "0".to_owned(),
        |secs| itoa::Buffer::new().format(secs).to_owned(),
    )
}

/// The patient a caller is confined to for `resource_type`: `None` when the caller may
/// see every patient's resources, `Some(None)` when it may see none, `Some(Some(uuid))`
/// for one patient's compartment.
///
/// A patient token is always confined. A user token is confined to its launch patient
/// unless it holds a `user/` scope for the type (or `user/*`), as OpenEMR decides; a
/// system token is never confined.
pub fn compartment(req: &Request, resource_type: &str) -> Option<Option<String>> {
    let caller = req.caller();
    match caller.role {
        Role::System => None,
        Role::Patient => Some(caller.patient.clone()),
        Role::User | Role::Anonymous => {
            let user_scope = caller.scopes.split_whitespace().any(|scope| {
                scope
                    .strip_prefix("user/")
                    .and_then(|rest| rest.split(['.', '?']).next())
                    .is_some_and(|resource| resource == resource_type || resource == "*")
            });
            if user_scope || caller.role == Role::Anonymous {
                None
            } else {
                Some(caller.patient.clone())
            }
        }
    }
}

/// The conditions every query of `def` for this caller has: the type's own, and the
/// compartment's if the caller is confined.
fn confine(req: &Request, def: &TypeDef, sql: &mut search::Sql) {
    if let Some(only) = def.only {
        sql.conditions.push(only.to_owned());
    }
    // SMART v2 granular scopes (`?category=…`): a read needs `r`, a search `s`.
    let letter = if req.has_param("id") { 'r' } else { 's' };
    granular::restrict(req, def, letter, sql);
    if def.resource_type == "Provenance" {
        // A Provenance is visible only where its target is.
        provenance::restrict(req, letter, sql);
    }
    let Some(confined) = compartment(req, def.resource_type) else {
        return;
    };
    // A type outside patient compartments (a practitioner, an organization) is shared:
    // the scope the host checked is all it takes.
    let Some(column) = def.patient else {
        return;
    };
    let condition = match confined {
        Some(patient) => format!("{column} = {}", sql.bind(patient)),
        // A patient-context token bound to no patient sees no patient's data.
        None => "1=0".to_owned(),
    };
    sql.conditions.push(condition);
}

/// The resource in `row`: `resourceType`, `id`, `meta` (version, last update,
/// profiles), then the mapped fields.
fn resource(def: &TypeDef, row: &Row<'_>, req: &Request, map: Mapper) -> Json {
    let updated = row.text("fhir_last_updated");
    let mut meta = Fields::new();
    meta.set("versionId", history::row_version(row).as_str());
    if let Some(instant) = updated.and_then(date::instant) {
        meta.set("lastUpdated", instant.as_str());
    }
    // A type whose rows claim different profiles (Observation: one per vital sign)
    // selects them per row as `fhir_profiles`, space separated.
    let mut profiles = Json::array();
    match row.text("fhir_profiles") {
        Some(listed) => listed.split_whitespace().for_each(|p| {
            profiles.push(p);
        }),
        None => def.profiles.iter().for_each(|p| {
            profiles.push(*p);
        }),
    }
    let profiles = profiles.end();
    if profiles.as_str() != "[]" {
        meta.set("profile", profiles);
    }
    let mut out = Fields::new();
    out.set("resourceType", def.resource_type)
        .text("id", row.text("fhir_id"))
        .object("meta", meta.end());
    map(row, req, &mut out);
    out.end()
}

/// A FHIR answer: `status`, the body, `application/fhir+json`.
pub fn answer(status: u16, body: Json) -> Response {
    Response::json(status, body).header("content-type", CONTENT_TYPE)
}

/// `GET /fhir/{Type}/:id`: the resource, or a 404 OperationOutcome (also for an id
/// outside the caller's compartment).
pub fn read(req: &Request, def: &TypeDef, id: &str, map: Mapper) -> Result<Response> {
    read_in(req, def, None, id, map)
}

/// [`read`] for a type whose `from` is a `UNION ALL` of `branches`: the id is looked up
/// in the branches that can hold it, through their indexes (see [`branches`]).
pub fn read_branches(
    req: &Request,
    def: &TypeDef,
    branches: &branches::Branches,
    id: &str,
    map: Mapper,
) -> Result<Response> {
    read_in(req, def, Some(branches), id, map)
}

fn read_in(
    req: &Request,
    def: &TypeDef,
    branches: Option<&branches::Branches>,
    id: &str,
    map: Mapper,
) -> Result<Response> {
    let not_found = || {
        error(
            404,
            "not-found",
            &format!("{}/{id} is not known", def.resource_type),
        )
    };
    if !hearth_sdk::request::is_uuid(id) {
        return Err(not_found());
    }
    let mut sql = search::Sql::default();
    let by_id = format!("{} = {}", def.id, sql.bind(id.to_ascii_lowercase()));
    sql.conditions.push(by_id);
    confine(req, def, &mut sql);
    let rows = match branches {
        None => store::query(
            &format!("{} WHERE {}", def.select(), sql.where_clause()),
            &sql.params,
        )?,
        Some(branches) => {
            let pushed = branches.push(&mut sql)?;
            if pushed.is_empty() {
                return Err(not_found());
            }
            let from = pushed.from_clause(branches::Page::default(), &mut sql);
            let filters = search::Sql {
                conditions: pushed.outer.clone(),
                params: Vec::new(),
            }
            .where_clause();
            let (statement, params) = branches::compact(
                &format!("{} WHERE {filters}", def.select_from("", &from)),
                &sql.params,
            );
            store::query(&statement, &params)?
        }
    };
    let row = rows.get(0).ok_or_else(not_found)?;
    let version = history::row_version(&row);
    Ok(answer(200, resource(def, &row, req, map)).header("etag", &format!("W/\"{version}\"")))
}

/// Whether `id` is a FHIR logical id: 1 to 64 letters, digits, `-` and `.`.
pub fn is_fhir_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// [`read`] for a type whose ids are not uuids (ValueSet: the list's name): any FHIR
/// logical id, compared as given.
pub fn read_id(req: &Request, def: &TypeDef, id: &str, map: Mapper) -> Result<Response> {
    let not_found = || {
        error(
            404,
            "not-found",
            &format!("{}/{id} is not known", def.resource_type),
        )
    };
    if !is_fhir_id(id) {
        return Err(not_found());
    }
    let mut sql = search::Sql::default();
    let by_id = format!("{} = {}", def.id, sql.bind(id));
    sql.conditions.push(by_id);
    confine(req, def, &mut sql);
    let rows = store::query(
        &format!("{} WHERE {}", def.select(), sql.where_clause()),
        &sql.params,
    )?;
    let row = rows.get(0).ok_or_else(not_found)?;
    let version = history::row_version(&row);
    Ok(answer(200, resource(def, &row, req, map)).header("etag", &format!("W/\"{version}\"")))
}

/// `GET /fhir/{Type}`: the searchset Bundle for the request's query.
pub fn search(req: &Request, def: &TypeDef, map: Mapper) -> Result<Response> {
    search_in(req, def, None, map)
}

/// [`search`] for a type whose `from` is a `UNION ALL` of `branches`: each condition
/// goes into each branch, rewritten with the branch's own columns, and a page reads at
/// most a page of rows per branch (see [`branches`]). The rows, `total` and links are
/// those [`search`] answers.
pub fn search_branches(
    req: &Request,
    def: &TypeDef,
    branches: &branches::Branches,
    map: Mapper,
) -> Result<Response> {
    search_in(req, def, Some(branches), map)
}

fn search_in(
    req: &Request,
    def: &TypeDef,
    branches: Option<&branches::Branches>,
    map: Mapper,
) -> Result<Response> {
    let strict = req.header("prefer").is_some_and(|p| {
        p.split([';', ','])
            .any(|part| part.trim() == "handling=strict")
    });
    let now = date::unix(&hearth_sdk::time::now().datetime()).unwrap_or(0);
    let params = def.all_params();
    let mut query = req.query_pairs().to_vec();
    if req.method() == hearth_sdk::Method::Post && !req.body().is_empty() {
        // `POST /{Type}/_search`: the form body's parameters join the query's.
        let form = req.header("content-type").is_some_and(|t| {
            t.trim_start()
                .starts_with("application/x-www-form-urlencoded")
        });
        if !form {
            return Err(error(
                415,
                "not-supported",
                "POST _search takes an application/x-www-form-urlencoded body",
            ));
        }
        let body = std::str::from_utf8(req.body())
            .map_err(|_| error(400, "invalid", "The form body is not UTF-8"))?;
        query.extend(form_pairs(body));
    }
    // `_revinclude=Provenance:target`: each match's Provenance joins the page (for the
    // types that have one; elsewhere the parameter is unknown).
    let revinclude = provenance::has_provenance(def.resource_type)
        && query
            .iter()
            .any(|(k, v)| k == "_revinclude" && v == provenance::REVINCLUDE);
    if revinclude {
        query.retain(|(k, v)| !(k == "_revinclude" && v == provenance::REVINCLUDE));
    }
    let mut plan = Plan::parse_at(Some(req.base_url()), def.from, &params, &query, strict, now)
        .map_err(|e| error(400, "invalid", &e.0))?;
    if let Some(cap) = req.page_cap() {
        plan.allow_count_up_to(&query, cap);
    }
    if revinclude {
        plan.applied
            .push(("_revinclude".to_owned(), provenance::REVINCLUDE.to_owned()));
    }
    let includes = include::resolve(def.resource_type, &params, &plan.includes, strict)
        .map_err(|e| error(400, "invalid", &e.0))?;
    // The host's own caller (a Bulk Data export) may ask the page as lines, one matched
    // resource each (see `hearth_sdk::request::LINES_HEADER`); a page with included
    // resources is a Bundle always.
    let lines = req.wants_lines() && !revinclude && includes.is_empty() && !plan.count_only;
    // No search condition and nothing the token confines the search to: the type's
    // rows lie about as densely as their keys (the type's own kind condition aside).
    let unconfined = plan.sql.conditions.is_empty();
    confine(req, def, &mut plan.sql);
    let unconfined = unconfined && plan.sql.conditions.len() == usize::from(def.only.is_some());

    // A derived table of branches takes the conditions into each branch; those naming
    // columns not every branch lists stay outside.
    let pushed = match branches {
        Some(branches) => Some(branches.push(&mut plan.sql)?),
        None => None,
    };
    // No branch can hold a match: nothing to read.
    let nothing = pushed.as_ref().is_some_and(|p| p.is_empty());
    let from = |page: branches::Page, sql: &mut search::Sql| match &pushed {
        Some(pushed) => pushed.from_clause(page, sql),
        None => def.from.to_owned(),
    };
    let run = |statement: &str, params: &[hearth_sdk::Value]| {
        if pushed.is_some() {
            let (statement, params) = branches::compact(statement, params);
            store::query(&statement, &params)
        } else {
            store::query(statement, params)
        }
    };

    // Without `_total=none` every match is counted; with it only the paging bound is
    // read, and one row past the page tells whether a next page exists.
    let counted = plan.total != search::Total::None || plan.count_only;
    let filters = match &pushed {
        Some(pushed) => search::Sql {
            conditions: pushed.outer.clone(),
            params: Vec::new(),
        }
        .where_clause(),
        None => plan.sql.where_clause(),
    };
    // The statement counting the matches up to the key `bound` (every match without
    // one), with the largest key too when `with_largest`: the branches' own counts when
    // no condition stays outside them (never their columns), else a count of the
    // derived table or the type's rows.
    let count_statement = |bound: Option<i64>, with_largest: bool, sql: &mut search::Sql| {
        if let Some(counts) = pushed.as_ref().and_then(|p| p.count_clause(bound, sql)) {
            let largest = if with_largest { ", MAX(hi) AS hi" } else { "" };
            return format!("SELECT CAST(SUM(n) AS BIGINT) AS n{largest} FROM {counts}");
        }
        let page = branches::Page {
            bound,
            ..branches::Page::default()
        };
        let from = from(page, sql);
        let largest = if with_largest {
            format!(", MAX({}) AS hi", def.key)
        } else {
            String::new()
        };
        let upto = match bound {
            Some(bound) => format!(" AND {} <= {}", def.key, sql.bind(bound)),
            None => String::new(),
        };
        format!("SELECT COUNT(*) AS n{largest} FROM {from} WHERE {filters}{upto}")
    };
    // Every match, counted, with the largest key (the paging bound of the first page).
    let count_all = || -> Result<(i64, i64)> {
        if !counted {
            // Only the largest key: read from the end of the key's index (of each branch's
            // own key, when no condition stays outside the branches) instead of reading
            // every match for `MAX`, which neither database answers from an index over
            // joins or a `UNION ALL`.
            let mut sql = plan.sql.clone();
            let cut = pushed.as_ref().is_some_and(|p| p.outer.is_empty());
            let page = branches::Page {
                bound: None,
                seek: cut.then_some(search::Seek::Before(i64::MAX)),
                limit: cut.then_some(1),
                bind_limit: false,
            };
            let from = from(page, &mut sql);
            let rows = run(
                &format!(
                    "SELECT {key} AS hi FROM {from} WHERE {filters} ORDER BY {key} DESC LIMIT 1",
                    key = def.key
                ),
                &sql.params,
            )?;
            let hi = rows.get(0).and_then(|r| r.int("hi")).unwrap_or(0);
            return Ok((0, hi));
        }
        let mut sql = plan.sql.clone();
        let statement = count_statement(None, true, &mut sql);
        let rows = run(&statement, &sql.params)?;
        let row = rows.get(0);
        Ok((
            row.as_ref().and_then(|r| r.int("n")).unwrap_or(0),
            row.as_ref().and_then(|r| r.int("hi")).unwrap_or(0),
        ))
    };
    // The first page of a search over branches in key order reads its rows before
    // counting: when they are every match (most searches within one patient), they are
    // the count and the largest key, and the derived table is read once instead of
    // twice. Otherwise the count follows, and the page is the same rows (the first in key
    // order, all at or below the largest key). Not with conditions left on the derived
    // table: they apply after each branch's limit, so fewer rows than the limit would not
    // say that none is left.
    let page_first = pushed.as_ref().is_some_and(|p| p.outer.is_empty())
        && plan.cursor.is_none()
        && !nothing
        && counted
        && !plan.count_only
        && plan.order.is_empty();
    let (mut total, mut cursor) = match plan.cursor {
        _ if page_first => (
            None,
            search::Cursor {
                bound: i64::MAX,
                offset: 0,
                seek: None,
            },
        ),
        Some(cursor) if nothing => (counted.then_some(0), cursor),
        Some(cursor) if counted => {
            let mut sql = plan.sql.clone();
            let statement = count_statement(Some(cursor.bound), false, &mut sql);
            let rows = run(&statement, &sql.params)?;
            (
                Some(rows.get(0).and_then(|r| r.int("n")).unwrap_or(0)),
                cursor,
            )
        }
        Some(cursor) => (None, cursor),
        None if nothing => (
            counted.then_some(0),
            search::Cursor {
                bound: 0,
                offset: 0,
                seek: None,
            },
        ),
        None => {
            let (total, bound) = count_all()?;
            (
                counted.then_some(total),
                search::Cursor {
                    bound,
                    offset: 0,
                    seek: None,
                },
            )
        }
    };

    // Rows in key order (no `_sort`) page by key: a page is an index range after the last
    // row shown (or before the first, going back), however deep it lies. With `_sort`
    // they page by offset.
    let keyset = plan.order.is_empty();
    let seek = if keyset { cursor.seek } else { None };
    let mut entries = Json::array();
    let mut text = String::new();
    let mut shown = 0u64;
    let mut more = false;
    let mut keys: Option<(i64, i64)> = None;
    let mut referenced: Vec<(String, String)> = Vec::new();
    if !plan.count_only && total != Some(0) && !nothing {
        let mut sql = plan.sql.clone();
        let bound = sql.bind(cursor.bound);
        let mut range = String::new();
        let mut order = std::mem::take(&mut plan.order);
        let offset = match seek {
            Some(search::Seek::After(key)) => {
                range = format!(" AND {} > {}", def.key, sql.bind(key));
                order.push(format!("{} ASC", def.key));
                0
            }
            Some(search::Seek::Before(key)) => {
                range = format!(" AND {} < {}", def.key, sql.bind(key));
                order.push(format!("{} DESC", def.key));
                0
            }
            None => {
                order.push(format!("{} ASC", def.key));
                cursor.offset
            }
        };
        let extra: String = includes
            .iter()
            .enumerate()
            .map(|(i, inc)| match inc.kind {
                Some(kind) => format!(
                    ", {} AS fhir_include_{i}, {kind} AS fhir_include_type_{i}",
                    inc.column
                ),
                None => format!(", {} AS fhir_include_{i}", inc.column),
            })
            .collect();
        // One row past the page tells whether a next page exists: without a total, and in
        // key order always (rows may have left the search since the total was counted).
        let limit = plan.count + u32::from(total.is_none() || keyset);
        let skip = if offset > 0 {
            format!(" OFFSET {offset}")
        } else {
            String::new()
        };
        // Over branches (see [`branches`]), each branch reads at most the rows up to the
        // page's end, in its own key order (with `_sort`, every match): an index range
        // of the branch's key, however deep the page lies.
        // An unfiltered page after a key is read in windows of the key instead. Over
        // branches, each branch cut to the page size alone would read up to a page of
        // rows per branch (a Provenance page read twenty pages' rows to keep one), while
        // a window holds about as many rows as it is wide, from whichever branches they
        // come. Over one table, or a few branches, a window bounds what any plan reads:
        // on PostgreSQL a prepared statement's generic plan does not know how wide
        // `key > $2 AND key <= $1` is, takes it for a few hundred rows, and joined and
        // sorted every row after the last key for each page (a DocumentReference page at
        // 100,000 patients: 0.4 s instead of 8 ms). The windows follow each other in key
        // order, so their rows are the one statement's rows.
        let unfiltered = match &pushed {
            Some(pushed) => pushed.unfiltered(),
            None => unconfined,
        };
        let windowed = match seek {
            Some(search::Seek::After(last)) if keyset && unfiltered => Some(last),
            _ => None,
        };
        let parts = match windowed {
            Some(last) => {
                let mut parts = Vec::new();
                let mut need = u64::from(limit);
                let mut lo = last;
                // The first window: as wide as the rows per key so far say the page
                // needs (`offset` rows lie at or below `last`), and a quarter more; a
                // page's width in keys when nothing is known. A first window of a page's
                // width in keys held a few rows where the keys are sparse (Provenance:
                // ~20 of 1,000), so every page ran one statement more than it needed.
                let mut width = match cursor.offset {
                    0 => i64::from(limit),
                    before => window_width(need, before, last),
                }
                .max(16);
                loop {
                    let hi = lo.saturating_add(width).min(cursor.bound);
                    let mut sql = plan.sql.clone();
                    // The limits are the rows still needed, bound: the text is the same
                    // for every window (one prepared statement). Written, each window's
                    // limit would be new text; and written as the page's limit, it made
                    // PostgreSQL's generic plan expect the whole narrow range and
                    // hash-join it against whole tables (0.6 s a Provenance window,
                    // against 5 ms with the limits bound).
                    let page = branches::Page {
                        bound: Some(hi),
                        seek: Some(search::Seek::After(lo)),
                        limit: Some(need),
                        bind_limit: true,
                    };
                    let from = from(page, &mut sql);
                    let (upper, lower) = (sql.bind(hi), sql.bind(lo));
                    let most = sql.bind(i64::try_from(need).unwrap_or(i64::MAX));
                    let rows = run(
                        &format!(
                            "{} WHERE {filters} AND {key} <= {upper} AND {key} > {lower} ORDER BY {key} ASC LIMIT {most}",
                            def.select_from(&extra, &from),
                            key = def.key,
                        ),
                        &sql.params,
                    )?;
                    let got = rows.len() as u64;
                    parts.push(rows);
                    need = need.saturating_sub(got);
                    if need == 0 || hi >= cursor.bound {
                        break;
                    }
                    // The next window: as wide as this one's rows per key say the rest
                    // of the page needs (and a quarter more), or four times as wide
                    // when it held none.
                    width = if got == 0 {
                        width.saturating_mul(4)
                    } else {
                        window_width(need, got, hi - lo)
                    }
                    .max(16);
                    lo = hi;
                }
                parts
            }
            None => {
                let page = branches::Page {
                    bound: Some(cursor.bound),
                    seek,
                    limit: keyset.then(|| u64::from(limit) + offset),
                    bind_limit: false,
                };
                let from = from(page, &mut sql);
                vec![run(
                    &format!(
                        "{} WHERE {filters} AND {} <= {bound}{range} ORDER BY {} LIMIT {limit}{skip}",
                        def.select_from(&extra, &from),
                        def.key,
                        order.join(", "),
                    ),
                    &sql.params,
                )?]
            }
        };
        let found: usize = parts.iter().map(|rows| rows.len()).sum();
        if page_first {
            let (n, bound) = if found <= plan.count as usize {
                let hi = parts
                    .iter()
                    .flat_map(|rows| rows.iter())
                    .filter_map(|row| row.int("fhir_key"))
                    .max();
                (found as i64, hi.unwrap_or(0))
            } else {
                count_all()?
            };
            total = Some(n);
            cursor.bound = bound;
        }
        let backwards = matches!(seek, Some(search::Seek::Before(_)));
        // A page read backwards from a key always has a next page (the rows from that
        // key on); it is shown in key order.
        more = backwards || found > plan.count as usize;
        let taken = found.min(plan.count as usize);
        let all: Vec<Row<'_>> = parts.iter().flat_map(|rows| rows.iter()).collect();
        let order: Vec<usize> = if backwards {
            (0..taken).rev().collect()
        } else {
            (0..taken).collect()
        };
        let base = format!("{}/{}", req.base_url(), def.resource_type);
        let mut matched = Vec::new();
        for row in order.into_iter().filter_map(|i| all.get(i).cloned()) {
            if let Some(key) = row.int("fhir_key") {
                keys = Some(match keys {
                    None => (key, key),
                    Some((first, _)) => (first, key),
                });
            }
            if revinclude {
                matched.push((
                    row.text("fhir_id").unwrap_or_default().to_owned(),
                    row.text("fhir_last_updated").map(str::to_owned),
                ));
            }
            if lines {
                text.push_str(resource(def, &row, req, map).as_str());
                text.push('\n');
            } else {
                let mut entry = Json::object();
                entry
                    .field(
                        "fullUrl",
                        [base.as_str(), "/", row.text("fhir_id").unwrap_or_default()].concat(),
                    )
                    .field("resource", resource(def, &row, req, map))
                    .field("search", Json::raw(r#"{"mode":"match"}"#));
                entries.push(entry.end());
            }
            shown += 1;
            for (i, inc) in includes.iter().enumerate() {
                if let Some(id) = row
                    .text(&format!("fhir_include_{i}"))
                    .filter(|id| !id.is_empty())
                    && let Some(target) = inc.type_of(row.text(&format!("fhir_include_type_{i}")))
                {
                    referenced.push((target, id.to_owned()));
                }
            }
        }
        for entry in provenance::included(req.base_url(), def.resource_type, &matched)? {
            entries.push(entry);
        }
        if backwards && shown < u64::from(plan.count) {
            // Rows before the key ran out: this is the first page, whatever the offset
            // said (rows may have been deleted since).
            cursor.offset = 0;
        }
    }

    let url = |cursor: Option<search::Cursor>| {
        let mut query: Vec<(String, String)> = plan.applied.clone();
        if let Some(cursor) = cursor {
            query.push((search::CURSOR.to_owned(), cursor.encode()));
        }
        link_url(req.base_url(), def.resource_type, &query)
    };
    let mut links = Json::array();
    let self_cursor = plan.cursor.map(|_| cursor);
    links.push(link("self", &url(self_cursor)));
    let count = u64::from(plan.count);
    let has_next = match total {
        Some(total) if !keyset => cursor.offset + shown < total as u64,
        _ => more,
    };
    // The key the next page starts after and the previous one ends before, when the
    // rows are in key order.
    let (after, before) = match keys {
        Some((first, last)) if keyset => (
            Some(search::Seek::After(last)),
            Some(search::Seek::Before(first)),
        ),
        _ => (None, None),
    };
    let next = (!plan.count_only && has_next && shown > 0).then(|| {
        url(Some(search::Cursor {
            bound: cursor.bound,
            offset: cursor.offset + if after.is_some() { shown } else { count },
            seek: after,
        }))
    });
    if lines {
        let mut response = Response::json(200, Json::raw(text))
            .header("content-type", "application/fhir+ndjson")
            .header(hearth_sdk::request::LINES_HEADER, &shown.to_string());
        if let Some(next) = &next {
            response = response.header(hearth_sdk::request::NEXT_HEADER, next);
        }
        return Ok(response);
    }
    if let Some(next) = &next {
        links.push(link("next", next));
    }
    if !plan.count_only && cursor.offset > 0 {
        let back = match before {
            Some(seek) if shown > 0 => search::Cursor {
                bound: cursor.bound,
                offset: cursor.offset.saturating_sub(count),
                seek: Some(seek),
            },
            _ => search::Cursor {
                bound: cursor.bound,
                offset: cursor.offset.saturating_sub(count),
                seek: None,
            },
        };
        links.push(link("previous", &url(Some(back))));
    }
    let mut bundle = Json::object();
    bundle
        .field("resourceType", "Bundle")
        .field("type", "searchset");
    if let Some(total) = total {
        bundle.field("total", total);
    }
    bundle.field("link", links.end());
    // The entries are most of a page: the rest of the Bundle goes in front of them in
    // their own buffer, not they into another.
    let bundle = if shown > 0 {
        bundle.end_with("entry", entries.end())
    } else {
        bundle.end()
    };
    let mut response = answer(200, bundle);
    if !referenced.is_empty() {
        let pairs: Vec<(&str, String)> = referenced
            .iter()
            .map(|(target, id)| (target.as_str(), id.clone()))
            .collect();
        response = response.header(include::HEADER, &include::encode(&pairs));
    }
    Ok(response)
}

fn link(relation: &str, url: &str) -> Json {
    let mut out = Json::object();
    out.field("relation", relation).field("url", url);
    out.end()
}

/// The pairs of an `application/x-www-form-urlencoded` text, decoded (`+` is a space,
/// `%XX` a byte; malformed escapes stay as they are).
pub fn form_pairs(text: &str) -> Vec<(String, String)> {
    fn decode(part: &str) -> String {
        let bytes = part.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' => match part
                    .get(i + 1..i + 3)
                    .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                {
                    Some(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    None => out.push(b'%'),
                },
                byte => out.push(byte),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key), decode(value))
        })
        .collect()
}

/// `{base}/{Type}?k=v&…`, keys and values percent-encoded.
pub fn link_url(base: &str, resource_type: &str, query: &[(String, String)]) -> String {
    let mut out = format!("{base}/{resource_type}");
    for (i, (key, value)) in query.iter().enumerate() {
        out.push(if i == 0 { '?' } else { '&' });
        percent_encode(&mut out, key);
        out.push('=');
        percent_encode(&mut out, value);
    }
    out
}

fn percent_encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b':') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
}

/// Builds a JSON array from items (a shorthand for mappings).
pub fn array(items: impl IntoIterator<Item = Json>) -> Json {
    let mut out: ArrayWriter = Json::array();
    for item in items {
        out.push(item);
    }
    out.end()
}

/// The width in keys of a window that should hold `need` rows, where `rows` rows were
/// seen over `keys` keys: a quarter wider than the rows per key say, so one window
/// usually holds the page.
fn window_width(need: u64, rows: u64, keys: i64) -> i64 {
    let per_key = rows as f64 / keys.max(1) as f64;
    ((need as f64 / per_key) * 1.25).min(i64::MAX as f64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_their_query() {
        let url = link_url(
            "https://h/apis/default/fhir",
            "Patient",
            &[
                ("family".into(), "O'Neil & co".into()),
                ("_cursor".into(), "v1.5.20".into()),
            ],
        );
        assert_eq!(
            url,
            "https://h/apis/default/fhir/Patient?family=O%27Neil%20%26%20co&_cursor=v1.5.20"
        );
    }

    #[test]
    fn form_bodies_decode() {
        assert_eq!(
            form_pairs("family=O%27Neil+Jr&given=&x=%zz&y=%4"),
            [
                ("family".to_owned(), "O'Neil Jr".to_owned()),
                ("given".to_owned(), String::new()),
                ("x".to_owned(), "%zz".to_owned()),
                ("y".to_owned(), "%4".to_owned()),
            ]
        );
    }

    #[test]
    fn fields_leave_out_blank_values() {
        let mut f = Fields::new();
        f.text("a", Some(" ")).text("b", None).text("c", Some("x"));
        f.list("d", Vec::new()).object("e", Json::raw("{}"));
        assert_eq!(f.end().as_str(), r#"{"c":"x"}"#);
        assert_eq!(
            reference("Patient", "1", None).as_str(),
            r#"{"reference":"Patient/1"}"#
        );
        assert_eq!(
            concept(coding("s", "c", Some("d")), None).as_str(),
            r#"{"coding":[{"system":"s","code":"c","display":"d"}]}"#
        );
    }

    #[test]
    fn common_shapes_leave_out_blanks() {
        assert_eq!(
            human_name(Some("Smith"), [Some("Ann"), Some(" ")], None, Some("Jr.")).as_str(),
            r#"{"use":"official","family":"Smith","given":["Ann"],"suffix":["Jr."]}"#
        );
        assert_eq!(contact_point("phone", "home", Some("")), None);
        assert_eq!(address(AddressParts::default()), None);
        let home = address(AddressParts {
            use_: Some("home"),
            lines: [Some("1 Main \"St\""), None],
            city: Some("Boston"),
            ..AddressParts::default()
        })
        .unwrap();
        assert_eq!(
            home.as_str(),
            r#"{"use":"home","line":["1 Main \"St\""],"city":"Boston"}"#
        );
    }

    #[test]
    fn versions_follow_the_last_change() {
        assert_eq!(version_id(Some("1970-01-02 00:00:01")), "86401");
        assert_eq!(version_id(None), "0");
    }
}

/// JSON Schemas of FHIR R4 data types the plugins' resources use, for their route
/// documentation.
pub mod schemas {
    use hearth_sdk::apidocs::{Prop, Schema};

    /// `Coding`.
    pub const CODING: Schema = Schema::Object(&[
        Prop::new("system", Schema::Format("uri")),
        Prop::new("code", Schema::String),
        Prop::new("display", Schema::String),
    ]);
    /// `CodeableConcept`.
    pub const CODEABLE_CONCEPT: Schema = Schema::Object(&[
        Prop::new("coding", Schema::Array(&CODING)),
        Prop::new("text", Schema::String),
    ]);
    /// `Identifier`.
    pub const IDENTIFIER: Schema = Schema::Object(&[
        Prop::new("use", Schema::String),
        Prop::new("type", CODEABLE_CONCEPT),
        Prop::new("system", Schema::Format("uri")),
        Prop::new("value", Schema::String),
    ]);
    /// `HumanName`.
    pub const HUMAN_NAME: Schema = Schema::Object(&[
        Prop::new("use", Schema::String),
        Prop::new("family", Schema::String),
        Prop::new("given", Schema::Array(&Schema::String)),
        Prop::new("prefix", Schema::Array(&Schema::String)),
        Prop::new("suffix", Schema::Array(&Schema::String)),
    ]);
    /// `ContactPoint`.
    pub const CONTACT_POINT: Schema = Schema::Object(&[
        Prop::new(
            "system",
            Schema::Enum(&["phone", "fax", "email", "pager", "url", "sms", "other"]),
        ),
        Prop::new("value", Schema::String),
        Prop::new(
            "use",
            Schema::Enum(&["home", "work", "temp", "old", "mobile"]),
        ),
    ]);
    /// `Address`.
    pub const ADDRESS: Schema = Schema::Object(&[
        Prop::new("line", Schema::Array(&Schema::String)),
        Prop::new("city", Schema::String),
        Prop::new("district", Schema::String),
        Prop::new("state", Schema::String),
        Prop::new("postalCode", Schema::String),
        Prop::new("country", Schema::String),
    ]);
    /// `Reference`.
    pub const REFERENCE: Schema = Schema::Object(&[
        Prop::new("reference", Schema::String),
        Prop::new("type", Schema::Format("uri")),
        Prop::new("display", Schema::String),
    ]);
    /// `Quantity`.
    pub const QUANTITY: Schema = Schema::Object(&[
        Prop::new("value", Schema::Number),
        Prop::new("unit", Schema::String),
        Prop::new("system", Schema::Format("uri")),
        Prop::new("code", Schema::String),
    ]);
    /// `Period`.
    pub const PERIOD: Schema = Schema::Object(&[
        Prop::new("start", Schema::String),
        Prop::new("end", Schema::String),
    ]);
    /// `Annotation` (its text).
    pub const ANNOTATION: Schema = Schema::Object(&[Prop::new("text", Schema::String)]);
    /// `Meta`.
    pub const META: Schema = Schema::Object(&[
        Prop::new("versionId", Schema::String),
        Prop::new("lastUpdated", Schema::String),
        Prop::new("profile", Schema::Array(&Schema::Format("uri"))),
    ]);
}
