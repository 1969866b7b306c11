//! The authorization pages: sign-in, patient picker, consent, and messages. Plain
//! server-rendered HTML with inline CSS and no script; every page refuses framing
//! (`X-Frame-Options: DENY`, `frame-ancestors 'none'`) and is never cached.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::plugins::words::ScopeGroup;

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

const STYLE: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',sans-serif;background:#f3f4f6;color:#111827}\
main{max-width:28rem;margin:3rem auto;background:#fff;border-radius:.75rem;box-shadow:0 1px 3px rgba(0,0,0,.12);padding:2rem}\
h1{font-size:1.35rem;margin:0 0 1rem}p{margin:.5rem 0}label{display:block;margin:.75rem 0 .25rem;font-weight:600}\
input[type=text],input[type=password],input[type=email],input[type=search],select{width:100%;box-sizing:border-box;padding:.55rem;border:1px solid #d1d5db;border-radius:.4rem;font:inherit}\
button{margin-top:1.25rem;padding:.6rem 1.2rem;border:0;border-radius:.4rem;background:#1d4ed8;color:#fff;font:inherit;cursor:pointer}\
button.secondary{background:#e5e7eb;color:#111827;margin-left:.5rem}.error{background:#fef2f2;color:#991b1b;border:1px solid #fecaca;padding:.6rem;border-radius:.4rem}\
ul.scopes{list-style:none;padding:0}ul.scopes li{padding:.35rem 0;border-bottom:1px solid #f3f4f6}ul.scopes label{display:inline;font-weight:400;margin:0}\
ul.groups{list-style:none;padding:0}ul.groups h2{font-size:1rem;margin:1rem 0 .25rem}.detail{margin-left:1.6rem;color:#6b7280;font-size:.8rem}\
code{background:#f3f4f6;padding:0 .25rem;border-radius:.25rem}.muted{color:#6b7280;font-size:.9rem}\
ul.patients{list-style:none;padding:0}ul.patients li{display:flex;justify-content:space-between;align-items:center;border-bottom:1px solid #f3f4f6;padding:.4rem 0}\
ul.patients button{margin:0;padding:.35rem .8rem}";

/// A whole page with `status`.
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><main><h1>{}</h1>{body}</main></body></html>",
        escape(title),
        escape(title)
    );
    let mut response = (status, html).into_response();
    secure(&mut response);
    response
}

/// The headers every authorization page carries.
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
}

/// A page that only says something (errors, signed out).
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    page(status, title, &format!("<p>{}</p>", escape(text)))
}

/// The sign-in form. `path` is where the pages are served
/// ([`super::authorize::pages_path`]), as for every form here.
pub fn login(
    path: &str,
    csrf: &str,
    client_name: &str,
    error: Option<&str>,
    username: &str,
    role: &str,
) -> String {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let selected = |r: &str| if r == role { " selected" } else { "" };
    format!(
        "<p><strong>{client}</strong> asks to use your account.</p>{error}\
<form method=\"post\" action=\"{path}/login\">\
<input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
<label for=\"user_role\">I am</label><select id=\"user_role\" name=\"user_role\"><option value=\"users\"{staff}>Staff</option><option value=\"patient\"{patient}>A patient</option></select>\
<label for=\"username\">User name</label><input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" required>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<label for=\"email\">E-mail (patients)</label><input type=\"email\" id=\"email\" name=\"email\" autocomplete=\"email\">\
<button type=\"submit\">Sign in</button></form>",
        client = escape(client_name),
        path = escape(path),
        csrf = escape(csrf),
        username = escape(username),
        staff = selected("users"),
        patient = selected("patient"),
    )
}

/// The patient picker: a search form and the matching patients.
pub fn patient_select(
    path: &str,
    csrf: &str,
    query: &str,
    patients: &[(String, String)],
) -> String {
    let mut list = String::new();
    for (uuid, name) in patients {
        list.push_str(&format!(
            "<li><span>{}</span><form method=\"post\" action=\"{}/patient-select\"><input type=\"hidden\" name=\"csrf_token\" value=\"{}\"><input type=\"hidden\" name=\"patient\" value=\"{}\"><button type=\"submit\">Choose</button></form></li>",
            escape(name),
            escape(path),
            escape(csrf),
            escape(uuid)
        ));
    }
    if patients.is_empty() {
        list.push_str("<li class=\"muted\">No patient matches.</li>");
    }
    format!(
        "<p>Choose the patient the app may see.</p>\
<form method=\"get\" action=\"{path}/patient-select\"><label for=\"q\">Name</label><input type=\"search\" id=\"q\" name=\"q\" value=\"{query}\"><button type=\"submit\">Search</button></form>\
<ul class=\"patients\">{list}</ul>",
        path = escape(path),
        query = escape(query),
    )
}

/// The consent form: the requested scopes in words under their resources' headings
/// ([`crate::plugins::words::group_scopes`]), one checkbox each, all ticked, with the
/// raw scope on a detail line.
pub fn consent(
    path: &str,
    csrf: &str,
    client_name: &str,
    who: &str,
    patient: Option<&str>,
    groups: &[ScopeGroup],
) -> String {
    let mut items = String::new();
    let mut i = 0;
    for group in groups {
        items.push_str(&format!(
            "<li class=\"group\"><h2>{}</h2><ul class=\"scopes\">",
            escape(&group.heading)
        ));
        for scope in &group.scopes {
            items.push_str(&format!(
                "<li><input type=\"checkbox\" id=\"s{i}\" name=\"scope\" value=\"{v}\" checked> <label for=\"s{i}\">{text}</label><div class=\"detail\"><code>{v}</code></div></li>",
                v = escape(&scope.raw),
                text = escape(&scope.text),
            ));
            i += 1;
        }
        items.push_str("</ul></li>");
    }
    let patient = patient
        .map(|p| format!("<p>Patient: <strong>{}</strong></p>", escape(p)))
        .unwrap_or_default();
    format!(
        "<p><strong>{client}</strong> asks for access as <strong>{who}</strong>.</p>{patient}\
<form method=\"post\" action=\"{path}/consent\"><input type=\"hidden\" name=\"csrf_token\" value=\"{csrf}\">\
<p class=\"muted\">Untick anything you do not want to allow.</p><ul class=\"groups\">{items}</ul>\
<button type=\"submit\" name=\"action\" value=\"allow\">Allow</button><button class=\"secondary\" type=\"submit\" name=\"action\" value=\"deny\">Deny</button></form>",
        client = escape(client_name),
        who = escape(who),
        path = escape(path),
        csrf = escape(csrf),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_is_escaped() {
        assert_eq!(
            super::escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
