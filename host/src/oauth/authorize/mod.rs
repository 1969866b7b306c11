//! The authorization endpoint and its pages: `/authorize` checks the request and shows the
//! sign-in form ([`request`]), `/login` signs in a staff user or a patient and
//! `/patient-select` lets staff pick the patient for `launch/patient` ([`signin`]),
//! `/consent` lets the user untick scopes and issues the code ([`consent`], [`codes`]).
//! Also RP-initiated `/logout` ([`logout`]), EHR launch tokens ([`launch`]) and the SMART
//! style document.
//!
//! The pending request lives in `oauth_sessions`, found by a cookie scoped to the site's
//! `/oauth2/{site}/` path (under the public URL's own path, see [`pages_path`]); every
//! form carries the session's CSRF token ([`session`]). Redirects after a form are 303.
//! Until the redirect URI is known to be registered (exactly) by an enabled client an
//! administrator has vetted, errors are a page, never a redirect.
//!
//! Every handler answers `Result<Response, PageError>`: an error is a page for the person
//! at the browser, or an answer made already (a redirect to a vetted client).

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{OAuthError, pages};
use crate::sites::Site;
use crate::state::AppState;
use crate::web::single;

pub mod codes;
pub mod consent;
pub mod launch;
pub mod logout;
pub mod request;
pub mod session;
pub mod signin;

pub use codes::{StoredCode, claim_code, find_code};
pub use launch::launch_token;
pub use session::COOKIE;

/// Why a page cannot continue: a page to render, or an answer made already (a redirect
/// to a vetted client's redirect URI, or an error page that carries its own headers).
#[derive(Debug)]
pub enum PageError {
    /// A page with this status and text.
    Page(StatusCode, String),
    /// This answer as it is (boxed: errors travel by value through every helper).
    Answer(Box<Response>),
}

impl PageError {
    /// A 400 page.
    pub fn bad(text: impl Into<String>) -> PageError {
        PageError::Page(StatusCode::BAD_REQUEST, text.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            PageError::Page(status, text) => pages::message(status, "Cannot continue", &text),
            PageError::Answer(response) => *response,
        }
    }
}

impl From<OAuthError> for PageError {
    fn from(error: OAuthError) -> Self {
        // Its own page, so a 503 keeps its Retry-After.
        let mut page = pages::message(error.status, "Cannot continue", &error.description);
        if let Some(seconds) = error.retry_after {
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        PageError::Answer(Box::new(page))
    }
}

impl From<sqlx::Error> for PageError {
    fn from(error: sqlx::Error) -> Self {
        OAuthError::from(error).into()
    }
}

impl From<crate::db::store::StoreError> for PageError {
    fn from(error: crate::db::store::StoreError) -> Self {
        OAuthError::from(error).into()
    }
}

/// The site named in the path (`/oauth2/{site}/…`); an unknown one is a 404 page.
pub struct SitePage(pub Arc<Site>);

impl FromRequestParts<Arc<AppState>> for SitePage {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let unknown = |name: &str| {
            PageError::Answer(Box::new(pages::message(
                StatusCode::NOT_FOUND,
                "Unknown site",
                &format!("The site '{name}' is unknown."),
            )))
        };
        let Ok(Path(name)) = Path::<String>::from_request_parts(parts, app).await else {
            return Err(unknown(""));
        };
        match app.sites.get(&name).await {
            Some(site) => Ok(SitePage(site)),
            None => Err(unknown(&name)),
        }
    }
}

/// The query string's parameters; a repeated one is an error.
fn query_map(query: Option<&str>) -> Result<HashMap<String, String>, PageError> {
    let mut map = HashMap::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if map.insert(name.to_string(), value.to_string()).is_some() {
            return Err(PageError::bad(format!("The parameter {name} is repeated.")));
        }
    }
    Ok(map)
}

/// A parameter, when present and not empty.
fn get<'a>(map: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    map.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// `redirect_uri` with `params` appended to its query.
fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        query.append_pair(name, value);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{}", query.finish())
}

/// A 303 to `location`, with the pages' security headers.
fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    pages::secure(&mut response);
    response
}

/// A redirect to the client carrying an error (and `state`, `iss`).
fn redirect_error(
    issuer: &str,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    see_other(&with_params(redirect_uri, &params))
}

/// A form body (`application/x-www-form-urlencoded`, at most [`crate::web::MAX_FORM`]
/// bytes).
async fn read_form(body: Body, headers: &HeaderMap) -> Result<Vec<(String, String)>, PageError> {
    crate::web::read_form(body, headers)
        .await
        .map_err(|error| PageError::bad(error.text()))
}

/// Where browsers reach the site's authorization pages: the path of the issuer
/// `{public}/oauth2/{site}`, so `/oauth2/{site}`, or `/ehr/oauth2/{site}` for a server whose
/// public URL is `https://host/ehr` behind a proxy. Form actions, redirects between the
/// pages and the session cookie's `Path` use it.
pub fn pages_path(app: &AppState, site: &str) -> String {
    path_of(&super::issuer(app, site))
}

/// The path part of a URL (`/` when it has none).
fn path_of(url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    without_scheme.find('/').map_or_else(
        || "/".to_owned(),
        |slash| without_scheme[slash..].to_owned(),
    )
}

/// `GET /oauth2/{site}/smart-style.json`.
pub async fn smart_style() -> Response {
    let body = json!({
        "color_background": "#f3f4f6",
        "color_error": "#991b1b",
        "color_highlight": "#1d4ed8",
        "color_modal_backdrop": "",
        "color_success": "#166534",
        "color_text": "#111827",
        "dim_border_radius": "6px",
        "dim_font_size": "16px",
        "dim_spacing_size": "16px",
        "font_family_body": "system-ui, sans-serif",
        "font_family_heading": "system-ui, sans-serif"
    });
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_appended_to_the_redirect_uri_encoded() {
        assert_eq!(
            with_params("https://app/cb", &[("code", "a b"), ("state", "x&y")]),
            "https://app/cb?code=a+b&state=x%26y"
        );
        assert_eq!(
            with_params("https://app/cb?keep=1", &[("code", "c")]),
            "https://app/cb?keep=1&code=c"
        );
    }

    #[test]
    fn a_repeated_query_parameter_is_refused() {
        let map = query_map(Some("a=1&b=&c=3")).unwrap();
        assert_eq!(get(&map, "a"), Some("1"));
        assert_eq!(get(&map, "b"), None, "an empty value counts as absent");
        let Err(PageError::Page(status, text)) = query_map(Some("a=1&a=2")) else {
            panic!("a repeated parameter passed")
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("a is repeated"), "{text}");
    }

    #[test]
    fn the_pages_live_under_the_public_urls_path() {
        assert_eq!(path_of("https://host/oauth2/default"), "/oauth2/default");
        assert_eq!(path_of("https://host/ehr/oauth2/s"), "/ehr/oauth2/s");
        assert_eq!(path_of("https://host"), "/");
    }

    #[test]
    fn an_error_redirect_carries_state_and_issuer() {
        let response = redirect_error(
            "https://h/oauth2/default",
            "https://app/cb",
            Some("s1"),
            "access_denied",
            "no",
        );
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        let location = response.headers()[header::LOCATION].to_str().unwrap();
        assert_eq!(
            location,
            "https://app/cb?error=access_denied&error_description=no&state=s1&iss=https%3A%2F%2Fh%2Foauth2%2Fdefault"
        );
    }

    #[test]
    fn page_errors_render_as_pages_and_keep_retry_after() {
        let page = PageError::bad("Nope.").into_response();
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        let mut busy = OAuthError::internal("down");
        busy.status = StatusCode::SERVICE_UNAVAILABLE;
        busy.retry_after = Some(2);
        let answer = PageError::from(busy).into_response();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()[header::RETRY_AFTER], "2");
    }
}
