//! Errors the host itself answers (unknown site, bad token, missing scope, plugin failure),
//! rendered in the shape of the API family that was called: a JSON object on `/api` and
//! `/portal`, an OperationOutcome on `/fhir`. Details of 5xx errors go to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The API family a request was addressed to, which decides the error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `/apis/{site}/api`.
    Api,
    /// `/apis/{site}/portal`.
    Portal,
    /// `/apis/{site}/fhir`.
    Fhir,
    /// Anything else (unknown families, admin endpoints).
    Other,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct HttpError {
    /// The status code.
    pub status: StatusCode,
    /// A short machine-readable code, e.g. `unknown_site`, `invalid_token`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// `WWW-Authenticate` for 401 and 403 answers.
    pub www_authenticate: Option<String>,
    /// `Allow` for 405 answers.
    pub allow: Option<String>,
    /// `Retry-After` (seconds) for 503 answers the client may simply retry.
    pub retry_after: Option<u32>,
}

/// How long a client is asked to wait before retrying after the database was unreachable.
pub const RETRY_AFTER_SECONDS: u32 = 2;

impl HttpError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            code,
            message: message.into(),
            www_authenticate: None,
            allow: None,
            retry_after: None,
        }
    }

    /// 503: the site's database could not be reached (`cause` says how); the client may
    /// retry after [`RETRY_AFTER_SECONDS`].
    pub fn unavailable(cause: &str) -> HttpError {
        tracing::warn!("database unavailable: {cause}");
        let mut error = HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            format!("The site's database is unavailable ({cause}); try again shortly"),
        );
        error.retry_after = Some(RETRY_AFTER_SECONDS);
        error
    }

    /// A database error: 503 when the database could not be reached, else a 500 whose
    /// detail goes to the log.
    pub fn from_store(error: crate::db::store::StoreError) -> HttpError {
        match error {
            crate::db::store::StoreError::Unavailable(cause) => HttpError::unavailable(&cause),
            other => HttpError::internal(other),
        }
    }

    /// 404 for a site that does not exist.
    pub fn unknown_site(site: &str) -> HttpError {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "unknown_site",
            format!("The site '{site}' is unknown"),
        )
    }

    /// 404 for a path no route matches.
    pub fn no_route(path: &str) -> HttpError {
        HttpError::new(
            StatusCode::NOT_FOUND,
            "route_not_found",
            format!("No route matches {path}"),
        )
    }

    /// 405 with the methods the path does answer.
    pub fn method_not_allowed(allowed: &[&str]) -> HttpError {
        let mut error = HttpError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("This path answers {}", allowed.join(", ")),
        );
        error.allow = Some(allowed.join(", "));
        error
    }

    /// 401: no usable bearer token. `error` is RFC 6750's code (`invalid_token`) or none
    /// when the request carried no token at all.
    pub fn unauthorized(error: Option<&'static str>, message: impl Into<String>) -> HttpError {
        let message = message.into();
        let mut out = HttpError::new(
            StatusCode::UNAUTHORIZED,
            error.unwrap_or("unauthorized"),
            message.clone(),
        );
        out.www_authenticate = Some(match error {
            Some(code) => format!(
                "Bearer realm=\"hearth\", error=\"{code}\", error_description=\"{}\"",
                message.replace('"', "'")
            ),
            None => "Bearer realm=\"hearth\"".to_owned(),
        });
        out
    }

    /// 403: the token is valid but lacks `scope`.
    pub fn insufficient_scope(scope: &str) -> HttpError {
        let mut out = HttpError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("The access token lacks the scope {scope}"),
        );
        out.www_authenticate = Some(format!(
            "Bearer realm=\"hearth\", error=\"insufficient_scope\", scope=\"{scope}\""
        ));
        out
    }

    /// 403 for anything else the caller may not do.
    pub fn forbidden(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500; `detail` goes to the log, the body stays generic.
    pub fn internal(detail: impl std::fmt::Display) -> HttpError {
        tracing::error!("internal error: {detail}");
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "An internal error occurred",
        )
    }

    /// Renders the error for `family`.
    pub fn render(self, family: Family) -> Response {
        let (body, content_type) = match family {
            Family::Fhir => (
                json!({
                    "resourceType": "OperationOutcome",
                    "issue": [{
                        "severity": "error",
                        "code": fhir_issue_code(self.status),
                        "details": {"text": self.code},
                        "diagnostics": self.message,
                    }]
                }),
                "application/fhir+json",
            ),
            // OpenEMR's keys: `error`, `message` and `code` (OpenEMR's exception code,
            // 0 for every error it raises itself).
            _ => (
                json!({"error": self.code, "message": self.message, "code": 0}),
                "application/json",
            ),
        };
        let mut response = (self.status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        if let Some(value) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(value) = self.allow.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(header::ALLOW, value);
        }
        if let Some(seconds) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn fhir_issue_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 422 => "invalid",
        401 => "login",
        403 => "forbidden",
        404 => "not-found",
        405 | 406 | 415 => "not-supported",
        409 => "conflict",
        503 | 504 => "timeout",
        _ => "exception",
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        self.render(Family::Other)
    }
}
