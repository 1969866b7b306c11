//! `/admin/settings`: the site's authorization server and API settings (every entry of
//! [`crate::registrar::settings::KNOWN`], what `hearth client setting` shows and sets),
//! and the initial access token that registration may require.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;

use super::users::checked_form;
use super::{Admin, ConsoleError, PageResult, back_with, base_path};
use crate::registrar::settings::{self, KNOWN};
use crate::state::AppState;
use crate::web::{escape, single};

/// `GET /admin/settings`.
pub async fn page(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let notice = super::notice_of(request.uri());
    let base = escape(&base_path(&app));
    let csrf = admin.csrf_field();
    let mut rows = String::new();
    for (i, known) in KNOWN.iter().enumerate() {
        let current = settings::get(&admin.site, known.name).await?;
        let input = if known.values.is_empty() {
            format!(
                "<input type=\"number\" id=\"setting-{i}\" name=\"value\" min=\"1\" value=\"{}\" required>",
                escape(&current)
            )
        } else {
            let options = known
                .values
                .iter()
                .map(|v| {
                    let mark = if *v == current { " selected" } else { "" };
                    format!("<option value=\"{v}\"{mark}>{v}</option>")
                })
                .collect::<String>();
            format!("<select id=\"setting-{i}\" name=\"value\">{options}</select>")
        };
        rows.push_str(&format!(
            "<tr><td><code>{name}</code></td><td>{help}<br><span class=\"muted\">default {default}</span></td><td>{current}</td><td>\
<form method=\"post\" action=\"{base}/settings\">{csrf}<input type=\"hidden\" name=\"name\" value=\"{name}\">\
<label class=\"visually-hidden\" for=\"setting-{i}\">New value of {name}</label>{input}<button type=\"submit\" class=\"small\">Save</button></form></td></tr>",
            name = escape(known.name),
            help = escape(known.help),
            default = escape(known.default),
            current = escape(&current),
        ));
    }
    let requires = settings::get(&admin.site, "oauth.registration_requires_token").await? == "on";
    let token_state = if requires {
        "Registration on this site needs an initial access token."
    } else {
        "Registration on this site is open: any app may register (privileged ones start disabled)."
    };
    let body = format!(
        "<table><caption class=\"visually-hidden\">Settings</caption><thead><tr><th scope=\"col\">Setting</th><th scope=\"col\">Meaning</th>\
<th scope=\"col\">Value</th><th scope=\"col\">Change</th></tr></thead><tbody>{rows}</tbody></table>\
<h2>Initial access token for registration</h2><p>{token_state}</p>\
<form method=\"post\" action=\"{base}/settings/initial-token\">{csrf}<input type=\"hidden\" name=\"action\" value=\"new\">\
<button type=\"submit\">Make a new initial access token</button></form>\
<form method=\"post\" action=\"{base}/settings/initial-token\">{csrf}<input type=\"hidden\" name=\"action\" value=\"clear\">\
<button type=\"submit\" class=\"danger\">Open registration (no token)</button></form>"
    );
    Ok(super::page(
        &app,
        &admin,
        "settings",
        "Settings",
        notice.as_deref(),
        &body,
    ))
}

/// `POST /admin/settings`.
pub async fn set(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let name = single(&form, "name").unwrap_or_default();
    let value = single(&form, "value").unwrap_or_default();
    settings::check(&name, value.trim()).map_err(|e| ConsoleError::bad(format!("{e}.")))?;
    settings::set(&admin.site, &name, value.trim()).await?;
    admin.record(&app, "/admin/settings", StatusCode::SEE_OTHER);
    Ok(back_with(
        &app,
        "settings",
        &format!("{name} is now {}.", value.trim()),
    ))
}

/// `POST /admin/settings/initial-token`: a new token (shown once) or none.
pub async fn initial_token(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    let form = checked_form(&admin, request).await?;
    match single(&form, "action").as_deref() {
        Some("new") => {
            let token = settings::new_initial_token(&admin.site).await?;
            admin.record(&app, "/admin/settings/initial-token", StatusCode::OK);
            let body = format!(
                "<p>Registration now needs this initial access token (as <code>Authorization: Bearer …</code>). \
It is shown once; the previous one no longer works.</p><p class=\"secret\" id=\"initial-token\">{}</p>\
<p><a href=\"{}/settings\">Back to the settings</a></p>",
                escape(&token),
                escape(&base_path(&app)),
            );
            Ok(super::page(
                &app,
                &admin,
                "settings",
                "New initial access token",
                None,
                &body,
            ))
        }
        Some("clear") => {
            settings::clear_initial_token(&admin.site).await?;
            admin.record(&app, "/admin/settings/initial-token", StatusCode::SEE_OTHER);
            Ok(back_with(
                &app,
                "settings",
                "Registration is open: no initial access token is needed.",
            ))
        }
        _ => Err(ConsoleError::bad(
            "Choose to make a new token or to clear it.",
        )),
    }
}
