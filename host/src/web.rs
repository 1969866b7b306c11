//! What every server-rendered page shares, whichever router renders it (the authorization
//! pages of `oauth`, the admin console of `console`): HTML escaping, the security headers
//! a page carries, and reading a submitted form.

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

/// The largest form body a page accepts.
pub const MAX_FORM: usize = 64 * 1024;

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The headers every page carries: HTML, never framed (`X-Frame-Options: DENY` and
/// `frame-ancestors 'none'`), no script, styles only inline, forms only to this origin,
/// never cached, no referrer.
pub fn secure(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// True when the request's `Content-Type` is a URL-encoded form.
pub fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// Why a form could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// Not `application/x-www-form-urlencoded`.
    NotAForm,
    /// Larger than [`MAX_FORM`].
    TooLarge,
}

impl FormError {
    /// A sentence for the person at the browser.
    pub fn text(self) -> &'static str {
        match self {
            FormError::NotAForm => "The form must be sent as application/x-www-form-urlencoded.",
            FormError::TooLarge => "The form is too large.",
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`, at most [`MAX_FORM`] bytes), as its
/// fields in order.
pub async fn read_form(
    body: Body,
    headers: &HeaderMap,
) -> Result<Vec<(String, String)>, FormError> {
    if !is_form(headers) {
        return Err(FormError::NotAForm);
    }
    let bytes = axum::body::to_bytes(body, MAX_FORM)
        .await
        .map_err(|_| FormError::TooLarge)?;
    Ok(form_urlencoded::parse(&bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

/// A form field sent exactly once and not empty.
pub fn single(form: &[(String, String)], name: &str) -> Option<String> {
    let mut values = form.iter().filter(|(k, _)| k == name);
    let first = values.next().map(|(_, v)| v.clone());
    if values.next().is_some() {
        return None;
    }
    first.filter(|v| !v.is_empty())
}

/// The value of cookie `name` among the request's cookies, when present and not empty.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=xyz"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "c"), None);
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, HeaderValue::from_static("b="));
        assert_eq!(cookie(&empty, "b"), None);
    }

    #[test]
    fn a_form_field_counts_only_when_sent_once_and_not_empty() {
        let form = vec![
            ("one".to_owned(), "1".to_owned()),
            ("twice".to_owned(), "a".to_owned()),
            ("twice".to_owned(), "b".to_owned()),
            ("empty".to_owned(), String::new()),
        ];
        assert_eq!(single(&form, "one").as_deref(), Some("1"));
        assert_eq!(single(&form, "twice"), None);
        assert_eq!(single(&form, "empty"), None);
    }
}
