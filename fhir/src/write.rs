//! What the FHIR `create` (`POST /fhir/{Type}`) and `update` (`PUT /fhir/{Type}/:id`)
//! interactions share: reading the body, the rules for who may write, the version check
//! of `If-Match`, rule failures as one 422 OperationOutcome, and the answer (201 or 200,
//! `Location` with the version, `ETag`, `Last-Modified`, and the body `Prefer` asks
//! for). The plugin keeps the mapping from the resource to its table's columns.
//!
//! Statuses: a body that is not a JSON object, names another `resourceType`, or (on
//! `update`) carries no `id` or another id than the URL's is a 400; a resource that
//! breaks the type's rules is a 422 naming each element; a patient-context caller is
//! refused (403, as OpenEMR refuses FHIR writes from the patient role); an `If-Match`
//! naming another version than the current one is a 412 (FHIR's version-aware update),
//! and one that was current when tested but lost the race to a writer that committed
//! before this update's write is a 409 (see [`after_update`]). Every refusal happens
//! before anything is written, or rolls the request's transaction back.

use hearth_sdk::request::Role;
use hearth_sdk::{Json, Request, Response, Result};
use serde_json::{Map, Value};

use crate::{Fields, Mapper, TypeDef, error, history, read};

/// Whether a request's `Content-Type` names a JSON body: FHIR's `application/fhir+json`,
/// plain `application/json`, or the DSTU2 name `application/json+fhir` (parameters such
/// as `charset` aside). A request without one is read as JSON too.
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    content_type.is_none_or(|t| {
        let essence = t.split(';').next().unwrap_or("").trim();
        [
            "application/fhir+json",
            "application/json",
            "application/json+fhir",
        ]
        .iter()
        .any(|m| essence.eq_ignore_ascii_case(m))
    })
}

/// A resource body: the JSON object of the request, checked for its media type, its
/// type and its id. A body sent as another media type (XML, text, a form) is a 415.
pub fn body(req: &Request, def: &TypeDef, id: Option<&str>) -> Result<Map<String, Value>> {
    if !is_json_content_type(req.header("content-type")) {
        return Err(error(
            415,
            "not-supported",
            &format!(
                "The body must be JSON (Content-Type application/fhir+json or \
                 application/json), not {}",
                req.header("content-type").unwrap_or_default()
            ),
        ));
    }
    let parsed: Value = serde_json::from_slice(req.body()).map_err(|e| {
        error(
            400,
            "structure",
            &format!("The body is not a JSON resource: {e}"),
        )
    })?;
    let Value::Object(body) = parsed else {
        return Err(error(400, "structure", "The body must be a JSON object"));
    };
    match body.get("resourceType").and_then(Value::as_str) {
        Some(t) if t == def.resource_type => {}
        Some(t) => {
            return Err(error(
                400,
                "invalid",
                &format!(
                    "The body is a {t}, not a {}: resourceType must be {}",
                    def.resource_type, def.resource_type
                ),
            ));
        }
        None => {
            return Err(error(
                400,
                "required",
                &format!(
                    "The body has no resourceType (expected {})",
                    def.resource_type
                ),
            ));
        }
    }
    if let Some(id) = id {
        match body.get("id").and_then(Value::as_str) {
            Some(given) if given.eq_ignore_ascii_case(id) => {}
            Some(given) => {
                return Err(error(
                    400,
                    "invalid",
                    &format!("The body's id {given} is not the id in the URL ({id})"),
                ));
            }
            None => {
                return Err(error(
                    400,
                    "required",
                    &format!("An update's body must carry the resource's id ({id})"),
                ));
            }
        }
    }
    Ok(body)
}

/// Refuses a caller confined to a patient's compartment: a patient token, or a user token
/// holding only `patient/` scopes for the type. OpenEMR refuses every FHIR write from the
/// patient role; Hearth refuses them from any patient-context caller (403).
pub fn writer(req: &Request, def: &TypeDef) -> Result<()> {
    let patient =
        req.caller().role == Role::Patient || crate::compartment(req, def.resource_type).is_some();
    if patient {
        return Err(error(
            403,
            "forbidden",
            &format!(
                "A patient-context token may not write FHIR resources ({} needs a user/ or \
                 system/ scope)",
                def.resource_type
            ),
        ));
    }
    Ok(())
}

/// The rule failures of one resource, answered together as a 422.
#[derive(Default)]
pub struct Problems {
    issues: Vec<(String, String)>,
}

impl Problems {
    /// No failure yet.
    pub fn new() -> Problems {
        Problems::default()
    }

    /// Records that `expression` (a FHIRPath such as `Patient.name[0].family`) breaks a
    /// rule, said by `message`.
    pub fn add(&mut self, expression: &str, message: &str) {
        self.issues
            .push((expression.to_owned(), message.to_owned()));
    }

    /// Whether nothing failed.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// `Ok` when nothing failed, else the 422 OperationOutcome with one issue per failure.
    pub fn finish(self) -> Result<()> {
        if self.issues.is_empty() {
            return Ok(());
        }
        let issues = self
            .issues
            .iter()
            .map(|(expression, message)| {
                let mut issue = Fields::new();
                issue
                    .set("severity", "error")
                    .set("code", "processing")
                    .set("diagnostics", format!("{expression}: {message}").as_str())
                    .list(
                        "expression",
                        vec![Json::from_value(&expression.as_str().into())],
                    );
                issue.end()
            })
            .collect();
        let mut outcome = Fields::new();
        outcome
            .set("resourceType", "OperationOutcome")
            .list("issue", issues);
        Err(hearth_sdk::ApiError::Response(
            Response::json(422, outcome.end()).header("content-type", crate::CONTENT_TYPE),
        ))
    }
}

/// A new `lists` row of `list_type` (`allergy`, `medical_problem`, …) for the patient
/// `pid`, stamped as the standard API's `POST` stamps one (now, active, the caller), with
/// the `columns` the resource maps to. Answers its uuid.
pub fn insert_list_item(
    req: &Request,
    list_type: &str,
    pid: i64,
    columns: Vec<(&'static str, hearth_sdk::store::Value)>,
) -> Result<String> {
    let uuid = hearth_sdk::new_uuid();
    let now = hearth_sdk::time::now().datetime();
    let mut insert = hearth_sdk::sql::Insert::into("lists");
    insert
        .set("uuid", uuid.as_str())
        .set("type", list_type)
        .set("pid", pid)
        .set("date", now.as_str())
        .set("modifydate", now.as_str())
        .set("activity", 1)
        .set("user", req.caller().username.as_str())
        .set("groupname", "Default");
    for (column, value) in columns {
        insert.set(column, value);
    }
    insert.run()?;
    Ok(uuid)
}

/// Sets `columns` (and a new `modifydate`) on the `lists` row `uuid` of `list_type`.
pub fn update_list_item(
    list_type: &str,
    uuid: &str,
    columns: Vec<(&'static str, hearth_sdk::store::Value)>,
) -> Result<()> {
    let mut update = hearth_sdk::sql::Update::table("lists");
    for (column, value) in columns {
        update.set(column, value);
    }
    update
        .set("modifydate", hearth_sdk::time::now().datetime())
        .filter("uuid", uuid)
        .filter("type", list_type);
    update.run()?;
    Ok(())
}

/// Before an update: the resource must exist (404) and, with `If-Match`, be at the named
/// version (412). Answers the version the update starts from.
pub fn before_update(req: &Request, def: &TypeDef, id: &str) -> Result<i64> {
    let expected = history::if_match(req)?;
    let current = if hearth_sdk::request::is_uuid(id) {
        history::current(def, id)?
    } else {
        None
    };
    let Some(current) = current else {
        return Err(error(
            404,
            "not-found",
            &format!(
                "{}/{id} is not known (an update cannot create a resource: use POST)",
                def.resource_type
            ),
        ));
    };
    if let Some(expected) = expected
        && expected != current
    {
        return Err(stale(def, id, expected, current));
    }
    Ok(current)
}

fn stale(def: &TypeDef, id: &str, expected: i64, current: i64) -> hearth_sdk::ApiError {
    error(
        412,
        "conflict",
        &format!(
            "{}/{id} is at version {current}, not {expected} (If-Match): read it again and \
             apply the change to the current version",
            def.resource_type
        ),
    )
}

/// After an update's write: with `If-Match`, the version must be the one after `from`.
/// Otherwise another writer committed between the check and this write (on PostgreSQL the
/// write waited for that writer's row lock; SQLite lets no other writer in): the client's
/// precondition held when it was tested, but the change it sends now conflicts with a
/// newer version it never read. That is a 409 Conflict (RFC 9110 names this case), and
/// the request's transaction is rolled back. An update without `If-Match` asked for no
/// version check and applies over whatever is current.
pub fn after_update(req: &Request, def: &TypeDef, id: &str, from: i64) -> Result<()> {
    let now = history::current(def, id)?.unwrap_or(0);
    if now != from + 1 && req.header("if-match").is_some() {
        return Err(error(
            409,
            "conflict",
            &format!(
                "{}/{id} was changed by another writer while this update ran (it is now past \
                 version {from}, which If-Match named): nothing was written; read it again \
                 and apply the change to the current version",
                def.resource_type
            ),
        ));
    }
    Ok(())
}

/// The answer to a write of `id`: `status` (201 for a create, 200 for an update) with
/// `Location` (`{base}/{Type}/{id}/_history/{version}`), `ETag` and `Last-Modified`, and
/// the body `Prefer: return=` asks for: the resource (`representation`, the default),
/// nothing (`minimal`) or an OperationOutcome (`OperationOutcome`).
pub fn answer(
    req: &Request,
    def: &TypeDef,
    id: &str,
    status: u16,
    map: Mapper,
) -> Result<Response> {
    let read = read(req, def, id, map)?;
    let version = history::current(def, id)?.unwrap_or(0);
    let location = format!(
        "{}/{}/{id}/_history/{version}",
        req.base_url(),
        def.resource_type
    );
    let prefer = req
        .header("prefer")
        .and_then(|p| {
            p.split([';', ','])
                .filter_map(|part| part.trim().strip_prefix("return="))
                .next()
        })
        .unwrap_or("representation");
    let last_modified = serde_json::from_slice::<Value>(&read.body)
        .ok()
        .and_then(|r| r["meta"]["lastUpdated"].as_str().and_then(http_date));
    let mut response = match prefer {
        "minimal" => Response::empty(status),
        "OperationOutcome" => Response::json(
            status,
            crate::outcome(
                "information",
                "informational",
                &format!(
                    "{} {}/{id} at version {version}",
                    if status == 201 { "Created" } else { "Updated" },
                    def.resource_type
                ),
            ),
        )
        .header("content-type", crate::CONTENT_TYPE),
        _ => Response {
            status,
            ..read.clone()
        },
    };
    response.headers.retain(|(k, _)| k != "etag");
    response = response
        .header("etag", &format!("W/\"{version}\""))
        .header("location", &location);
    if let Some(date) = last_modified {
        response = response.header("last-modified", &date);
    }
    Ok(response)
}

/// An RFC 3339 instant (`2024-05-06T07:08:09Z`) as an HTTP date
/// (`Mon, 06 May 2024 07:08:09 GMT`).
fn http_date(instant: &str) -> Option<String> {
    let secs = crate::date::unix(instant.trim_end_matches('Z'))?;
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    // 1970-01-01 was a Thursday.
    let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let year: i32 = instant.get(0..4)?.parse().ok()?;
    let month: usize = instant.get(5..7)?.parse().ok()?;
    let day: u32 = instant.get(8..10)?.parse().ok()?;
    Some(format!(
        "{weekday}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        months.get(month.checked_sub(1)?)?,
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    ))
}

/// The text of a string element, trimmed; `None` when absent or blank, a rule failure
/// when it is not a string.
pub fn string<'a>(
    value: Option<&'a Value>,
    expression: &str,
    problems: &mut Problems,
) -> Option<&'a str> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim()).filter(|s| !s.is_empty()),
        Some(_) => {
            problems.add(expression, "must be a string");
            None
        }
    }
}

/// The items of an array element; a rule failure when it is not an array.
pub fn items<'a>(
    value: Option<&'a Value>,
    expression: &str,
    problems: &mut Problems,
) -> &'a [Value] {
    match value {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            problems.add(expression, "must be an array");
            &[]
        }
    }
}

/// A `CodeableConcept` as OpenEMR keeps one: the code list of its codings of known
/// systems (`RXNORM:7980;SNOMED-CT:91936005`, each system under its first OpenEMR code
/// type, codings of other systems left out) and its text (`text`, else the first
/// coding's `display`).
pub fn code_list(
    value: Option<&Value>,
    expression: &str,
    problems: &mut Problems,
) -> (String, Option<String>) {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return (String::new(), None);
    };
    if !value.is_object() {
        problems.add(expression, "must be a CodeableConcept");
        return (String::new(), None);
    }
    let mut list: Vec<String> = Vec::new();
    let mut display = None;
    for (i, coding) in items(
        value.get("coding"),
        &format!("{expression}.coding"),
        problems,
    )
    .iter()
    .enumerate()
    {
        let at = format!("{expression}.coding[{i}]");
        let system = string(coding.get("system"), &format!("{at}.system"), problems);
        let code = string(coding.get("code"), &format!("{at}.code"), problems);
        display =
            display.or_else(|| string(coding.get("display"), &format!("{at}.display"), problems));
        let code_type = system.and_then(|system| {
            crate::codes::SYSTEMS
                .iter()
                .find(|(_, s)| *s == system)
                .map(|(t, _)| *t)
        });
        if let (Some(code_type), Some(code)) = (code_type, code) {
            if code.contains([';', ':']) {
                problems.add(&format!("{at}.code"), "a code cannot hold ';' or ':'");
            } else {
                list.push(format!("{code_type}:{code}"));
            }
        }
    }
    let text = string(value.get("text"), &format!("{expression}.text"), problems).or(display);
    (list.join(";"), text.map(str::to_owned))
}

/// The patient a reference names (`{"reference": "Patient/<uuid>"}`): its `pid` and
/// uuid. A missing reference (`required`), another type or an unknown patient is a rule
/// failure, answered as `None`.
pub fn patient(
    value: Option<&Value>,
    expression: &str,
    required: bool,
    problems: &mut Problems,
) -> Result<Option<(i64, String)>> {
    let reference = string(
        value.and_then(|v| v.get("reference")),
        &format!("{expression}.reference"),
        problems,
    );
    let Some(reference) = reference else {
        if required {
            problems.add(expression, "a reference to the Patient is required");
        }
        return Ok(None);
    };
    let uuid = reference
        .rsplit_once("Patient/")
        .map(|(_, id)| id.trim_end_matches('/').to_ascii_lowercase())
        .filter(|id| hearth_sdk::request::is_uuid(id));
    let Some(uuid) = uuid else {
        problems.add(expression, "must reference a Patient (Patient/<id>)");
        return Ok(None);
    };
    let row = hearth_sdk::store::query_one(
        "SELECT pid FROM patient_data WHERE uuid = $1",
        &[uuid.as_str().into()],
    )?;
    match row.and_then(|r| r.int("pid")) {
        Some(pid) => Ok(Some((pid, uuid))),
        None => {
            problems.add(expression, &format!("Patient/{uuid} is not known"));
            Ok(None)
        }
    }
}

/// A `dateTime` element as a database datetime (`YYYY-MM-DD HH:MM:SS`, the instant's
/// UTC time; a date alone is its midnight); `None` when absent, a rule failure when it
/// is not a FHIR dateTime.
pub fn datetime(
    value: Option<&Value>,
    expression: &str,
    problems: &mut Problems,
) -> Option<String> {
    let given = string(value, expression, problems)?;
    match crate::date::parse(given) {
        Some(range) => Some(hearth_sdk::time::DateTime::from_unix(range.start).datetime()),
        None => {
            problems.add(expression, "is not a FHIR dateTime");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_become_http_dates() {
        assert_eq!(
            http_date("2024-05-06T07:08:09Z").as_deref(),
            Some("Mon, 06 May 2024 07:08:09 GMT")
        );
        assert_eq!(
            http_date("1970-01-01T00:00:00Z").as_deref(),
            Some("Thu, 01 Jan 1970 00:00:00 GMT")
        );
    }

    #[test]
    fn json_bodies_are_told_by_their_media_type() {
        for json in [
            None,
            Some("application/fhir+json"),
            Some("application/fhir+json; charset=utf-8"),
            Some("Application/JSON"),
            Some("application/json+fhir;fhirVersion=4.0"),
        ] {
            assert!(is_json_content_type(json), "{json:?}");
        }
        for other in [
            "application/fhir+xml",
            "text/plain",
            "application/x-www-form-urlencoded",
            "",
        ] {
            assert!(!is_json_content_type(Some(other)), "{other}");
        }
    }

    #[test]
    fn problems_answer_one_422() {
        let mut problems = Problems::new();
        assert!(problems.is_empty());
        problems.add("Patient.gender", "is required");
        problems.add("Patient.birthDate", "is not a date");
        let hearth_sdk::ApiError::Response(response) = problems.finish().unwrap_err() else {
            panic!("a response");
        };
        assert_eq!(response.status, 422);
        let body = response.body_json();
        assert_eq!(body["issue"].as_array().unwrap().len(), 2);
        assert_eq!(body["issue"][0]["expression"][0], "Patient.gender");
    }
}
