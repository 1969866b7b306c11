//! Responses and errors in OpenEMR's shapes.
//!
//! A standard or portal route answers in the [`Shape`] OpenEMR's controller for it uses:
//! the envelope `{"validationErrors":…,"internalErrors":…,"data":…,"links":…}`
//! ([`Shape::Envelope`], [`Shape::Legacy`]) or the bare payload ([`Shape::Bare`]), always
//! with real status codes. FHIR routes answer with resources, Bundles and
//! OperationOutcomes. [`ApiError`] renders itself in the shape of the route.
//!
//! A site may ask for OpenEMR's own status codes (its compatibility setting, see
//! [`Request::openemr_compatible`]). The handler still answers the real status, which
//! decides whether the request's transaction commits; [`wire_status`] then tells the host
//! which status to put on the wire instead.

use crate::json::{Json, write_str};
use crate::request::Request;
use crate::store::StoreError;

/// The response header with which a plugin asks the host to send another status on the
/// wire than the one it answered (OpenEMR's status, on a site that asks for it). The host
/// commits or rolls back by the status the plugin answered, then sends this one, and
/// never passes the header on.
pub const WIRE_STATUS_HEADER: &str = "hearth-wire-status";

/// How a standard or portal route answers, as OpenEMR's controller for it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The envelope with real status codes (OpenEMR's patients, practitioners,
    /// facilities).
    Envelope,
    /// The envelope on routes where OpenEMR loses the status and answers 200 whatever
    /// happened (encounters, medical problems, allergies). Hearth answers real statuses;
    /// a site in OpenEMR compatibility answers 200 as OpenEMR does.
    Legacy,
    /// The bare payload: `{"vid","fid"}`, a bare array, `true`, a bare validation map
    /// (vitals, SOAP notes, medications, surgeries, dental issues). A site in OpenEMR
    /// compatibility answers a failed validation with 200, and "nothing found" (an empty
    /// list included) with an empty 404, as OpenEMR does.
    Bare,
}

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

    /// `status` with no body, as OpenEMR answers "nothing found" on bare routes
    /// (`text/html`, as PHP sends it).
    pub fn empty(status: u16) -> Response {
        Response {
            status,
            headers: vec![("content-type".into(), "text/html; charset=UTF-8".into())],
            body: Vec::new(),
        }
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

    /// The status the host sends on the wire: the one [`wire_status`] asked for, else
    /// [`Response::status`] (for tests).
    pub fn wire(&self) -> u16 {
        self.headers
            .iter()
            .find(|(name, _)| name == WIRE_STATUS_HEADER)
            .and_then(|(_, value)| value.parse().ok())
            .unwrap_or(self.status)
    }
}

/// Asks the host to send `status` on the wire in place of the response's own (see
/// [`WIRE_STATUS_HEADER`]); nothing when they are the same.
pub fn wire_status(mut response: Response, status: u16) -> Response {
    response
        .headers
        .retain(|(name, _)| name != WIRE_STATUS_HEADER);
    if response.status != status {
        response
            .headers
            .push((WIRE_STATUS_HEADER.to_owned(), status.to_string()));
    }
    response
}

/// The status OpenEMR sends for a route of `shape` that Hearth answers with `status`:
/// 200 for everything on [`Shape::Legacy`] routes (OpenEMR's kernel overwrites the
/// status its controllers set), 200 for a failed validation on [`Shape::Bare`] routes.
pub fn openemr_status(shape: Shape, status: u16) -> u16 {
    match (shape, status) {
        (Shape::Legacy, _) => 200,
        (Shape::Bare, 400) => 200,
        (_, status) => status,
    }
}

/// A host error body in OpenEMR's keys (`error`, `message`, `code`), for bare routes.
fn error_body(error: &str, message: &str) -> Json {
    let mut body = Json::object();
    body.field("error", error)
        .field("message", message)
        .field("code", 0);
    body.end()
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

    /// Renders the error for `family` (in the envelope on standard and portal routes).
    pub fn into_response(self, family: Family) -> Response {
        match family {
            Family::Api | Family::Portal => self.into_envelope(),
            Family::Fhir => self.into_operation_outcome(),
        }
    }

    /// Renders the error in the shape of `req`'s route. On a site in OpenEMR
    /// compatibility, "nothing found" is what OpenEMR answers: an empty 404 on bare
    /// routes, and on envelope routes named by uuid OpenEMR's 400 for an unknown uuid.
    pub fn render(self, req: &Request) -> Response {
        if req.family() == Family::Fhir {
            return self.into_operation_outcome();
        }
        let openemr = req.openemr_compatible();
        match (req.shape(), self) {
            (Shape::Bare, ApiError::Validation(errors)) => Response::json(400, errors),
            (Shape::Bare, ApiError::NotFound) if openemr => Response::empty(404),
            (Shape::Bare, ApiError::NotFound) => Response::json(
                404,
                error_body("not_found", "Nothing was found at this path"),
            ),
            (Shape::Bare, ApiError::BadRequest(message)) => {
                let mut reasons = Json::object();
                reasons.field("request", message.as_str());
                let mut errors = Json::object();
                errors.field("request", reasons.end());
                Response::json(400, errors.end())
            }
            (Shape::Bare, ApiError::Conflict(message)) => {
                Response::json(409, error_body("conflict", &message))
            }
            (Shape::Bare, ApiError::Internal(message)) => {
                crate::host::log(4, &message);
                Response::json(
                    500,
                    error_body("internal_error", "An internal error occurred"),
                )
            }
            (Shape::Envelope, ApiError::NotFound) if openemr => match req.named_uuid() {
                // OpenEMR's getOne checks the uuid first and reports an unknown one as
                // invalid (`validateId`).
                Some(uuid) => {
                    let mut reasons = Json::object();
                    reasons.field("invalid or nonexisting value", format!(" value {uuid}"));
                    let mut errors = Json::object();
                    errors.field("uuid", reasons.end());
                    ApiError::Validation(errors.end()).into_envelope()
                }
                None => ApiError::NotFound.into_envelope(),
            },
            (_, error) => error.into_envelope(),
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
