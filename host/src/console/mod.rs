//! The admin console: server-rendered pages under `/admin` for a site's administrators.
//!
//! A staff user whose ACL role is `admin` signs in to one site ([`session`]); the pages
//! then manage that site: its users ([`users`]), its OAuth clients and a SMART app
//! registration form ([`clients`]), its plugins ([`plugins`]), its API audit log with
//! search and CSV export ([`audit`]) and its authorization server settings
//! ([`settings`]); [`sites`] lists every site and signs in to another. Each page calls
//! the same layers the CLI and the authorization server call (`auth::users`,
//! `registrar`, the plugin registry), never a second copy.
//!
//! Every page works with JavaScript off (there is none): each action is a plain form POST
//! carrying the session's CSRF token, answered with a 303 back to its page and a notice.
//! Pages refuse framing, are never cached, and the session cookie is `Secure; HttpOnly;
//! SameSite=Strict` under the console's path. Each action is written to the site's audit
//! log (`POST /admin/…`, the administrator as the user).

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::registrar::OAuthError;
use crate::state::AppState;
use crate::web::escape;

pub mod audit;
pub mod clients;
pub mod plugins;
pub mod session;
pub mod settings;
pub mod sites;
pub mod users;

pub use session::Admin;

/// The console's routes, merged into the application's router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admin", get(session::home))
        .route("/admin/", get(session::home))
        .route(
            "/admin/sign-in",
            get(session::sign_in_page).post(session::sign_in),
        )
        .route("/admin/sign-out", post(session::sign_out))
        .route("/admin/sites", get(sites::page))
        .route("/admin/users", get(users::page).post(users::add))
        .route("/admin/users/role", post(users::role))
        .route("/admin/users/active", post(users::active))
        .route("/admin/users/password", post(users::password))
        .route("/admin/clients", get(clients::page))
        .route("/admin/clients/enabled", post(clients::enabled))
        .route("/admin/clients/scope", post(clients::scope))
        .route("/admin/clients/secret", post(clients::secret))
        .route(
            "/admin/clients/register",
            get(clients::register_page).post(clients::register),
        )
        .route("/admin/plugins", get(plugins::page))
        .route("/admin/plugins/reload", post(plugins::reload))
        .route("/admin/plugins/route", post(plugins::route))
        .route("/admin/audit", get(audit::page))
        .route("/admin/audit.csv", get(audit::csv))
        .route("/admin/settings", get(settings::page).post(settings::set))
        .route(
            "/admin/settings/initial-token",
            post(settings::initial_token),
        )
}

/// Where browsers reach the console: `/admin` under the public URL's own path (so
/// `/ehr/admin` for a server whose public URL is `https://host/ehr`). Links, form actions,
/// redirects and the cookies' `Path` use it.
pub fn base_path(app: &AppState) -> String {
    let url = app.base_url.as_str();
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = without_scheme
        .find('/')
        .map_or("", |slash| &without_scheme[slash..]);
    format!("{}/admin", path.trim_end_matches('/'))
}

/// Why a console page cannot do what was asked: a page saying so, or an answer made
/// already (a redirect to the sign-in page).
#[derive(Debug)]
pub enum ConsoleError {
    /// A page with this status and text.
    Page(StatusCode, String),
    /// This answer as it is.
    Answer(Box<Response>),
}

impl ConsoleError {
    /// A 400 page.
    pub fn bad(text: impl Into<String>) -> ConsoleError {
        ConsoleError::Page(StatusCode::BAD_REQUEST, text.into())
    }

    /// A 404 page.
    pub fn not_found(text: impl Into<String>) -> ConsoleError {
        ConsoleError::Page(StatusCode::NOT_FOUND, text.into())
    }

    /// A 500 page; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> ConsoleError {
        tracing::error!("admin console: {detail}");
        ConsoleError::Page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "An internal error occurred.".into(),
        )
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        match self {
            ConsoleError::Page(status, text) => bare_page(
                status,
                "Cannot continue",
                &format!(
                    "<p class=\"error\" role=\"alert\">{}</p><p>Use your browser's Back button to return.</p>",
                    escape(&text)
                ),
            ),
            ConsoleError::Answer(response) => *response,
        }
    }
}

impl From<OAuthError> for ConsoleError {
    fn from(error: OAuthError) -> Self {
        let mut page = bare_page(
            error.status,
            "Cannot continue",
            &format!(
                "<p class=\"error\" role=\"alert\">{}</p>",
                escape(&error.description)
            ),
        );
        if let Some(seconds) = error.retry_after {
            page.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        ConsoleError::Answer(Box::new(page))
    }
}

impl From<sqlx::Error> for ConsoleError {
    fn from(error: sqlx::Error) -> Self {
        OAuthError::from(error).into()
    }
}

impl From<crate::db::store::StoreError> for ConsoleError {
    fn from(error: crate::db::store::StoreError) -> Self {
        OAuthError::from(error).into()
    }
}

impl From<anyhow::Error> for ConsoleError {
    fn from(error: anyhow::Error) -> Self {
        OAuthError::from(error).into()
    }
}

impl From<crate::web::FormError> for ConsoleError {
    fn from(error: crate::web::FormError) -> Self {
        ConsoleError::bad(error.text())
    }
}

/// What a handler answers.
pub type PageResult = Result<Response, ConsoleError>;

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f3f4f6;color:#111827}\
header{background:#1e3a8a;color:#fff;padding:.6rem 1.5rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between}\
header a{color:#fff}header .who{font-size:.9rem}header form{display:inline;margin-left:.75rem}header button.small{padding:.3rem .8rem;background:#fff;color:#1e3a8a}\
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:1rem}nav a[aria-current=page]{font-weight:700;text-decoration:underline}\
main{max-width:78rem;margin:1.5rem auto;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:1.5rem 2rem}\
main.narrow{max-width:28rem}h1{font-size:1.4rem;margin:0 0 1rem}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}\
label{display:block;margin:.6rem 0 .2rem;font-weight:600}\
input[type=text],input[type=password],input[type=email],input[type=url],input[type=search],input[type=datetime-local],input[type=number],select,textarea{width:100%;box-sizing:border-box;padding:.45rem;border:1px solid #6b7280;border-radius:.4rem;font:inherit}\
textarea{min-height:4.5rem}\
button{margin-top:.8rem;padding:.5rem 1rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;font:inherit;cursor:pointer}\
button.danger{background:#b91c1c}button.small{margin:0;padding:.25rem .6rem;font-size:.9rem}\
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{text-align:left;vertical-align:top;border-bottom:1px solid #e5e7eb;padding:.4rem .5rem}\
th{background:#f9fafb}td form{display:flex;gap:.3rem;align-items:center;margin:.15rem 0}td form input,td form select{width:auto;min-width:8rem;padding:.25rem}\
.error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;padding:.6rem;border-radius:.4rem}\
.notice{background:#f0fdf4;color:#166534;border:1px solid #bbf7d0;padding:.6rem;border-radius:.4rem}\
.secret{font-family:ui-monospace,monospace;background:#fefce8;border:1px solid #fde68a;padding:.6rem;border-radius:.4rem;word-break:break-all}\
code{background:#f3f4f6;padding:0 .25rem;border-radius:.25rem;word-break:break-all}.muted{color:#4b5563;font-size:.9rem}\
.filters{display:grid;grid-template-columns:repeat(auto-fill,minmax(12rem,1fr));gap:0 1rem}\
.pager{display:flex;gap:1rem;margin-top:1rem}.state-serving{color:#166534;font-weight:600}.state-stale{color:#92400e;font-weight:600}.state-failed{color:#991b1b;font-weight:600}\
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";

/// A whole page without the console's navigation (sign-in, errors).
pub fn bare_page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title} · Hearth admin</title><style>{STYLE}</style></head><body><main class=\"narrow\"><h1>{title}</h1>{body}</main></body></html>",
        title = escape(title),
    );
    finish(status, html)
}

/// A whole console page: the header (who is signed in, the navigation, sign-out), the
/// title, an optional notice, and `body`.
pub fn page(
    app: &AppState,
    admin: &Admin,
    current: &str,
    title: &str,
    notice: Option<&str>,
    body: &str,
) -> Response {
    let base = base_path(app);
    let mut nav = String::new();
    for (path, name) in [
        ("sites", "Sites"),
        ("users", "Users"),
        ("clients", "API clients"),
        ("plugins", "Plugins"),
        ("audit", "Audit log"),
        ("settings", "Settings"),
    ] {
        let current = if path == current {
            " aria-current=\"page\""
        } else {
            ""
        };
        nav.push_str(&format!(
            "<li><a href=\"{base}/{path}\"{current}>{name}</a></li>"
        ));
    }
    let notice = notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title} · Hearth admin</title><style>{STYLE}</style></head><body>\
<header><nav aria-label=\"Console\"><ul>{nav}</ul></nav>\
<div class=\"who\">Signed in as <strong>{user}</strong> on site <strong>{site}</strong>\
<form method=\"post\" action=\"{base}/sign-out\"><input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\"><button type=\"submit\" class=\"small\">Sign out</button></form></div></header>\
<main><h1>{title}</h1>{notice}{body}</main></body></html>",
        title = escape(title),
        user = escape(&admin.username),
        site = escape(&admin.site.name),
        csrf = escape(&admin.csrf),
    );
    finish(StatusCode::OK, html)
}

fn finish(status: StatusCode, html: String) -> Response {
    let mut response = (status, html).into_response();
    crate::web::secure(&mut response);
    response
}

/// A 303 to `location`, with the pages' security headers.
pub fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    crate::web::secure(&mut response);
    response
}

/// A 303 back to a console page (`path` below the console) with a notice to show there.
pub fn back_with(app: &AppState, path: &str, notice: &str) -> Response {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("notice", notice);
    let separator = if path.contains('?') { '&' } else { '?' };
    see_other(&format!(
        "{}/{path}{separator}{}",
        base_path(app),
        query.finish()
    ))
}

/// The query string's parameters (the last of a repeated one wins).
pub fn query(uri: &axum::http::Uri) -> std::collections::HashMap<String, String> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The notice a page was redirected to with (`?notice=…`), if any; capped so a crafted
/// link cannot fill the page.
pub fn notice_of(uri: &axum::http::Uri) -> Option<String> {
    query(uri)
        .remove("notice")
        .filter(|n| !n.is_empty())
        .map(|n| n.chars().take(300).collect())
}

/// How a scope reads on the client pages: the words the consent page shows (from the
/// plugins that declare the scope, [`crate::plugins::words::scope_words`]), with the raw
/// scope in `<code>` on a detail line.
pub fn scope_text(table: &crate::plugins::SiteTable, scope: &str) -> String {
    let words = crate::plugins::words::scope_words(table, scope);
    format!(
        "{}<br><span class=\"muted\"><code>{}</code></span>",
        escape(&words.text),
        escape(scope)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_is_shown_in_words_with_the_raw_scope_escaped() {
        let table = crate::plugins::SiteTable::default();
        let words = crate::plugins::words::scope_words(&table, "user/soap_note.rs");
        assert_eq!(
            scope_text(&table, "user/soap_note.rs"),
            format!(
                "{}<br><span class=\"muted\"><code>user/soap_note.rs</code></span>",
                escape(&words.text)
            )
        );
        assert!(scope_text(&table, "<x>").contains("<code>&lt;x&gt;</code>"));
    }
}
