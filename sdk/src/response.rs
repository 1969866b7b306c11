//! Responses and errors in OpenEMR's shapes.
//!
//! Standard and portal routes answer with OpenEMR's envelope
//! `{"validationErrors":…,"internalErrors":…,"data":…,"links":…}` and real status codes;
//! FHIR routes answer with resources, Bundles and OperationOutcomes. [`ApiError`] renders
//! itself in the shape of the route's family.

use crate::json::{Json, write_str};
use crate::store::StoreError;

/// A plugin handler's result.
pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// The API family of a route, taken from its path prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `/api/...`: the standard API.
    Api,
    /// `/portal/...`: the patient portal API.
    Portal,
    /// `/fhir/...`: FHIR R4.
    Fhir,
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Headers; `content-type` defaults to `application/json`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A JSON body with `status`, as is (no envelope).
    pub fn json(status: u16, body: Json) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into_bytes(),
        }
    }

    /// OpenEMR's envelope around `data`, with `status`.
    pub fn envelope(status: u16, data: Json) -> Response {
        Response::json(status, envelope(None, None, &data, None))
    }

    /// 200 with `data` in the envelope.
    pub fn ok(data: Json) -> Response {
        Response::envelope(200, data)
    }

    /// 201 with `data` in the envelope.
    pub fn created(data: Json) -> Response {
        Response::envelope(201, data)
    }

    /// 200 with a list in the envelope and paging `links`.
    pub fn list(items: Json, links: Json) -> Response {
        Response::json(200, envelope(None, None, &items, Some(&links)))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The body as text (for tests).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }

    /// The body parsed as JSON (for tests).
    pub fn body_json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// Writes the envelope; `None` parts are OpenEMR's empty `[]`.
fn envelope(
    validation: Option<&Json>,
    internal: Option<&Json>,
    data: &Json,
    links: Option<&Json>,
) -> Json {
    let empty = Json::empty_array();
    let mut object = Json::object();
    object
        .field("validationErrors", validation.unwrap_or(&empty))
        .field("internalErrors", internal.unwrap_or(&empty))
        .field("data", data)
        .field("links", links.unwrap_or(&empty));
    object.end()
}

/// Why a request failed, rendered in the shape of the route's family.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// 400: field → {rule → message}, as OpenEMR's validators report them.
    Validation(Json),
    /// 404: nothing at this id.
    NotFound,
    /// 400 with a message (for FHIR an OperationOutcome).
    BadRequest(String),
    /// 409 with a message.
    Conflict(String),
    /// 500: the message goes to the log, the body stays generic.
    Internal(String),
    /// A ready response.
    Response(Response),
}

impl ApiError {
    /// 404.
    pub fn not_found() -> ApiError {
        ApiError::NotFound
    }

    /// A 400 with one validation message: `{field: {rule: message}}`.
    pub fn invalid(field: &str, rule: &str, message: &str) -> ApiError {
        let mut reasons = Json::object();
        reasons.field(rule, message);
        let mut errors = Json::object();
        errors.field(field, reasons.end());
        ApiError::Validation(errors.end())
    }

    /// Renders the error for `family`.
    pub fn into_response(self, family: Family) -> Response {
        match family {
            Family::Api | Family::Portal => self.into_envelope(),
            Family::Fhir => self.into_operation_outcome(),
        }
    }

    fn into_envelope(self) -> Response {
        let empty = Json::empty_array();
        match self {
            ApiError::Validation(errors) => {
                Response::json(400, envelope(Some(&errors), None, &empty, None))
            }
            ApiError::NotFound => Response::json(404, envelope(None, None, &empty, None)),
            ApiError::BadRequest(message) => {
                let mut reasons = Json::object();
                reasons.field("request", message.as_str());
                let mut errors = Json::object();
                errors.field("request", reasons.end());
                Response::json(400, envelope(Some(&errors.end()), None, &empty, None))
            }
            ApiError::Conflict(message) => {
                let mut internal = Json::array();
                internal.push(message.as_str());
                Response::json(409, envelope(None, Some(&internal.end()), &empty, None))
            }
            ApiError::Internal(message) => {
                crate::host::log(4, &message);
                let mut internal = Json::array();
                internal.push("An internal error occurred");
                Response::json(500, envelope(None, Some(&internal.end()), &empty, None))
            }
            ApiError::Response(response) => response,
        }
    }

    fn into_operation_outcome(self) -> Response {
        let (status, code, text) = match self {
            ApiError::Validation(errors) => (400, "invalid", errors.to_string()),
            ApiError::NotFound => (404, "not-found", "Resource not found".to_owned()),
            ApiError::BadRequest(message) => (400, "invalid", message),
            ApiError::Conflict(message) => (409, "conflict", message),
            ApiError::Internal(message) => {
                crate::host::log(4, &message);
                (500, "exception", "An internal error occurred".to_owned())
            }
            ApiError::Response(response) => return response,
        };
        Response::json(status, operation_outcome(code, &text))
            .header("content-type", "application/fhir+json")
    }
}

/// A FHIR OperationOutcome with one error issue.
pub fn operation_outcome(code: &str, text: &str) -> Json {
    let mut out =
        String::from(r#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"#);
    write_str(&mut out, code);
    out.push_str(r#","diagnostics":"#);
    write_str(&mut out, text);
    out.push_str("}]}");
    Json::raw(out)
}

impl From<StoreError> for ApiError {
    /// Store failures are the plugin's or the database's fault: 500, details in the log.
    fn from(error: StoreError) -> Self {
        ApiError::Internal(error.to_string())
    }
}

impl From<Response> for ApiError {
    fn from(response: Response) -> Self {
        ApiError::Response(response)
    }
}
