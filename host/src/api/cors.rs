//! CORS on `/apis`: browser SMART apps and Swagger-style clients call the API from their
//! own origin. Every `/apis` route takes a bearer token and never a cookie, so an allowed
//! origin gets `Access-Control-Allow-Origin` without credentials: a page can only send a
//! token it already holds. Which origins are allowed is the site's `api.cors_origins`
//! setting ([`super::settings::Cors`]).
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
//! before the token and the route are looked at, alike for every path, so it tells
//! nothing about which paths exist.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::settings::Cors;

/// The methods `/apis` routes answer.
const METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

/// The request headers a browser may send: what OpenEMR allows, and what Hearth reads.
const ALLOWED_HEADERS: &str = "authorization, accept, content-type, content-encoding, \
    origin, x-requested-with, x-request-id, prefer, if-match, if-none-match, \
    if-modified-since";

/// The response headers scripts may read besides the simple ones.
const EXPOSED_HEADERS: &str =
    "x-request-id, www-authenticate, location, content-location, allow, etag, last-modified";

/// How long a browser may keep a preflight's answer, seconds.
const MAX_AGE: &str = "600";

/// The answer to `OPTIONS`: 204 with what a preflight needs (the origin is added by
/// [`allow`]), for any path.
pub fn preflight() -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    out.insert(header::ALLOW, HeaderValue::from_static(METHODS));
    out.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    out.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(ALLOWED_HEADERS),
    );
    out.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static(MAX_AGE),
    );
    response
}

/// Adds `Access-Control-Allow-Origin` (and the exposed headers) to `response` when the
/// request came from an `origin` that `cors` allows; otherwise the response goes out
/// without them, and the browser keeps it from the page.
pub fn allow(mut response: Response, origin: Option<&str>, cors: &Cors) -> Response {
    let headers = response.headers_mut();
    if matches!(cors, Cors::Registered(_)) {
        // The answer depends on the origin: caches must keep them apart.
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
    let Some(allowed) = origin.and_then(|origin| cors.allow(origin)) else {
        // An origin not allowed learns nothing from a preflight either.
        headers.remove(header::ACCESS_CONTROL_ALLOW_METHODS);
        headers.remove(header::ACCESS_CONTROL_ALLOW_HEADERS);
        headers.remove(header::ACCESS_CONTROL_MAX_AGE);
        return response;
    };
    let value = if allowed == "*" {
        Ok(HeaderValue::from_static("*"))
    } else {
        HeaderValue::from_str(&allowed)
    };
    if let Ok(value) = value {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static(EXPOSED_HEADERS),
        );
    }
    response
}
