//! `/admin/clients`: the site's OAuth clients (enable or disable, change scopes, rotate a
//! secret) and `/admin/clients/register`, a SMART app registration form like OpenEMR's
//! (app name, redirect URIs, launch URI, scopes, public or confidential, keys) that
//! registers through the same rules as the registration endpoint
//! ([`crate::registrar::registration::create`]), as an administrator: the client is
//! enabled and vetted at once, and its secret shown once.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::users::checked_form;
use super::{Admin, ConsoleError, PageResult, back_with, base_path, scope_text};
use crate::registrar::catalog::Catalog;
use crate::registrar::clients;
use crate::registrar::registration::{self, DEFAULT_SCOPE};
use crate::state::AppState;
use crate::web::{escape, single};

/// A time in seconds since the epoch as `YYYY-MM-DD HH:MM UTC`.
fn when(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute] UTC"
            ))
            .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}

/// `GET /admin/clients`.
pub async fn page(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let notice = super::notice_of(request.uri());
    let base = escape(&base_path(&app));
    let csrf = admin.csrf_field();
    let mut rows = String::new();
    let list = clients::list(&admin.site).await?;
    let table = app.registry.table(&admin.site.name);
    for (i, client) in list.iter().enumerate() {
        let id = escape(&client.client_id);
        let name = escape(&client.client_name);
        let scopes = client
            .scope
            .split_whitespace()
            .map(|s| format!("<li>{}</li>", scope_text(&table, s)))
            .collect::<String>();
        let uris = client
            .redirect_uris
            .iter()
            .map(|u| format!("<li><code>{}</code></li>", escape(u)))
            .collect::<String>();
        let state = match (client.enabled, client.vetted) {
            (true, _) => "enabled",
            (false, true) => "disabled",
            (false, false) => "waiting for an administrator",
        };
        let (toggle_value, toggle_label, toggle_class) = if client.enabled {
            ("0", "Disable", "danger small")
        } else {
            ("1", "Enable", "small")
        };
        let rotate = if client.confidential() && client.secret_hash.is_some() {
            format!(
                "<form method=\"post\" action=\"{base}/clients/secret\">{csrf}<input type=\"hidden\" name=\"client_id\" value=\"{id}\">\
<button type=\"submit\" class=\"small\">Rotate the secret of {name}</button></form>"
            )
        } else {
            String::new()
        };
        rows.push_str(&format!(
            "<tr><td><strong>{name}</strong><br><code>{id}</code><br><span class=\"muted\">registered {registered}</span></td>\
<td>{kind}<br><span class=\"muted\">{method}</span></td><td>{state}</td><td><ul>{scopes}</ul></td><td><ul>{uris}</ul></td><td>\
<form method=\"post\" action=\"{base}/clients/enabled\">{csrf}<input type=\"hidden\" name=\"client_id\" value=\"{id}\">\
<input type=\"hidden\" name=\"enabled\" value=\"{toggle_value}\"><button type=\"submit\" class=\"{toggle_class}\">{toggle_label} {name}</button></form>\
{rotate}\
<form method=\"post\" action=\"{base}/clients/scope\">{csrf}<input type=\"hidden\" name=\"client_id\" value=\"{id}\">\
<label class=\"visually-hidden\" for=\"scope-{i}\">Scopes of {name}</label><input type=\"text\" id=\"scope-{i}\" name=\"scope\" value=\"{scope}\" required>\
<button type=\"submit\" class=\"small\">Save scopes</button></form></td></tr>",
            registered = when(client.created_at),
            kind = if client.confidential() { "confidential" } else { "public" },
            method = escape(&client.auth_method),
            scope = escape(&client.scope),
        ));
    }
    if list.is_empty() {
        rows.push_str("<tr><td colspan=\"6\">No client has registered on this site.</td></tr>");
    }
    let body = format!(
        "<p><a href=\"{base}/clients/register\">Register a SMART app</a></p>\
<table><caption class=\"visually-hidden\">API clients</caption><thead><tr><th scope=\"col\">Client</th><th scope=\"col\">Type</th><th scope=\"col\">State</th>\
<th scope=\"col\">Scopes</th><th scope=\"col\">Redirect URIs</th><th scope=\"col\">Actions</th></tr></thead><tbody>{rows}</tbody></table>"
    );
    Ok(super::page(
        &app,
        &admin,
        "clients",
        "API clients",
        notice.as_deref(),
        &body,
    ))
}

/// The client a form names, which must exist on the site.
async fn named_client(
    admin: &Admin,
    form: &[(String, String)],
) -> Result<clients::Client, ConsoleError> {
    let id = single(form, "client_id").ok_or_else(|| ConsoleError::bad("Choose a client."))?;
    clients::find(&admin.site, &id)
        .await?
        .ok_or_else(|| ConsoleError::not_found("There is no such client on this site."))
}

/// `POST /admin/clients/enabled`.
pub async fn enabled(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let client = named_client(&admin, &form).await?;
    let enabled = match single(&form, "enabled").as_deref() {
        Some("1") => true,
        Some("0") => false,
        _ => return Err(ConsoleError::bad("Say whether to enable or disable.")),
    };
    clients::set_enabled(&admin.site, &client.client_id, enabled).await?;
    admin.record(&app, "/admin/clients/enabled", StatusCode::SEE_OTHER);
    let done = if enabled { "enabled" } else { "disabled" };
    Ok(back_with(
        &app,
        "clients",
        &format!("{} is {done}.", client.client_name),
    ))
}

/// `POST /admin/clients/scope`: the scopes must be in the site's catalogue.
pub async fn scope(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let client = named_client(&admin, &form).await?;
    let scope = single(&form, "scope")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConsoleError::bad("A client needs at least one scope."))?;
    let table = app.registry.table(&admin.site.name);
    let refused = Catalog::new(&table.scopes).refused(&scope);
    if !refused.is_empty() {
        return Err(ConsoleError::bad(format!(
            "Not in this site's scope catalogue: {}",
            refused.join(" ")
        )));
    }
    clients::set_scope(&admin.site, &client.client_id, &scope).await?;
    admin.record(&app, "/admin/clients/scope", StatusCode::SEE_OTHER);
    Ok(back_with(
        &app,
        "clients",
        &format!("Saved the scopes of {}.", client.client_name),
    ))
}

/// `POST /admin/clients/secret`: a new secret, shown once on the answer.
pub async fn secret(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let client = named_client(&admin, &form).await?;
    let Some(secret) = clients::rotate_secret(&admin.site, &client.client_id).await? else {
        return Err(ConsoleError::bad(
            "Only a confidential client that authenticates with a secret has one to rotate.",
        ));
    };
    admin.record(&app, "/admin/clients/secret", StatusCode::OK);
    let body = format!(
        "<p>The new secret of <strong>{name}</strong> (<code>{id}</code>) is shown once; the old one no longer works. \
Copy it into the app's configuration now.</p>\
<p class=\"secret\" id=\"client-secret\">{secret}</p><p><a href=\"{base}/clients\">Back to the clients</a></p>",
        name = escape(&client.client_name),
        id = escape(&client.client_id),
        secret = escape(&secret),
        base = escape(&base_path(&app)),
    );
    Ok(super::page(
        &app,
        &admin,
        "clients",
        "New client secret",
        None,
        &body,
    ))
}

/// The registration form, filled with `values` (after an error).
fn register_form(app: &AppState, admin: &Admin, values: &[(String, String)]) -> String {
    let value = |name: &str| {
        escape(
            &values
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
        )
    };
    let scope = if values.is_empty() {
        escape(DEFAULT_SCOPE)
    } else {
        value("scope")
    };
    let kind = value("application_type");
    let checked = |v: &str| {
        if kind == v || (kind.is_empty() && v == "private") {
            " checked"
        } else {
            ""
        }
    };
    let method = value("token_endpoint_auth_method");
    let selected = |v: &str| if method == v { " selected" } else { "" };
    format!(
        "<p>Registers an app through the same checks as the registration endpoint. An app registered here is \
enabled at once; its client id and secret are shown once.</p>\
<form method=\"post\" action=\"{base}/clients/register\">{csrf}\
<fieldset><legend>App type</legend>\
<input type=\"radio\" id=\"type-private\" name=\"application_type\" value=\"private\"{private}> <label for=\"type-private\" style=\"display:inline\">Confidential (a server that keeps a secret)</label><br>\
<input type=\"radio\" id=\"type-public\" name=\"application_type\" value=\"public\"{public}> <label for=\"type-public\" style=\"display:inline\">Public (a browser or native app, PKCE)</label></fieldset>\
<label for=\"client_name\">App name</label><input type=\"text\" id=\"client_name\" name=\"client_name\" value=\"{name}\" required>\
<label for=\"contacts\">Contact e-mail</label><input type=\"email\" id=\"contacts\" name=\"contacts\" value=\"{contacts}\">\
<label for=\"redirect_uris\">Redirect URIs (one a line)</label><textarea id=\"redirect_uris\" name=\"redirect_uris\" required>{redirect}</textarea>\
<label for=\"initiate_login_uri\">Launch URI (EHR launch)</label><input type=\"url\" id=\"initiate_login_uri\" name=\"initiate_login_uri\" value=\"{launch}\">\
<label for=\"post_logout_redirect_uris\">Logout redirect URIs (one a line)</label><textarea id=\"post_logout_redirect_uris\" name=\"post_logout_redirect_uris\">{logout}</textarea>\
<label for=\"scope\">Scopes (space-separated)</label><textarea id=\"scope\" name=\"scope\" required>{scope}</textarea>\
<label for=\"token_endpoint_auth_method\">Token endpoint authentication (confidential apps)</label><select id=\"token_endpoint_auth_method\" name=\"token_endpoint_auth_method\">\
<option value=\"\"{m_default}>Default (a secret; keys for system scopes)</option><option value=\"client_secret_basic\"{m_basic}>client_secret_basic</option>\
<option value=\"client_secret_post\"{m_post}>client_secret_post</option><option value=\"private_key_jwt\"{m_jwt}>private_key_jwt (keys below)</option></select>\
<label for=\"jwks_uri\">JWKS URI</label><input type=\"url\" id=\"jwks_uri\" name=\"jwks_uri\" value=\"{jwks_uri}\">\
<label for=\"jwks\">JWKS (JSON, instead of a URI)</label><textarea id=\"jwks\" name=\"jwks\">{jwks}</textarea>\
<button type=\"submit\">Register the app</button></form>",
        base = escape(&base_path(app)),
        csrf = admin.csrf_field(),
        private = checked("private"),
        public = checked("public"),
        name = value("client_name"),
        contacts = value("contacts"),
        redirect = value("redirect_uris"),
        launch = value("initiate_login_uri"),
        logout = value("post_logout_redirect_uris"),
        m_default = selected(""),
        m_basic = selected("client_secret_basic"),
        m_post = selected("client_secret_post"),
        m_jwt = selected("private_key_jwt"),
        jwks_uri = value("jwks_uri"),
        jwks = value("jwks"),
    )
}

/// `GET /admin/clients/register`.
pub async fn register_page(State(app): State<Arc<AppState>>, admin: Admin) -> PageResult {
    let body = register_form(&app, &admin, &[]);
    Ok(super::page(
        &app,
        &admin,
        "clients",
        "Register a SMART app",
        None,
        &body,
    ))
}

/// The registration metadata the form describes (RFC 7591 names).
pub fn metadata_of(form: &[(String, String)]) -> Result<Map<String, Value>, String> {
    let field = |name: &str| {
        single(form, name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let lines = |name: &str| -> Vec<String> {
        field(name)
            .map(|v| {
                v.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut body = Map::new();
    body.insert(
        "application_type".into(),
        json!(field("application_type").unwrap_or_else(|| "private".into())),
    );
    if let Some(name) = field("client_name") {
        body.insert("client_name".into(), json!(name));
    } else {
        return Err("The app needs a name.".into());
    }
    body.insert("redirect_uris".into(), json!(lines("redirect_uris")));
    let logout = lines("post_logout_redirect_uris");
    if !logout.is_empty() {
        body.insert("post_logout_redirect_uris".into(), json!(logout));
    }
    if let Some(contact) = field("contacts") {
        body.insert("contacts".into(), json!([contact]));
    }
    for key in [
        "initiate_login_uri",
        "jwks_uri",
        "token_endpoint_auth_method",
    ] {
        if let Some(value) = field(key) {
            body.insert(key.into(), json!(value));
        }
    }
    if let Some(scope) = field("scope") {
        body.insert(
            "scope".into(),
            json!(scope.split_whitespace().collect::<Vec<_>>().join(" ")),
        );
    }
    if let Some(jwks) = field("jwks") {
        let parsed: Value =
            serde_json::from_str(&jwks).map_err(|e| format!("The JWKS is not valid JSON: {e}"))?;
        body.insert("jwks".into(), parsed);
    }
    Ok(body)
}

/// `POST /admin/clients/register`.
pub async fn register(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let again = |status: StatusCode, error: &str| {
        let body = format!(
            "<p class=\"error\" role=\"alert\">{}</p>{}",
            escape(error),
            register_form(&app, &admin, &form)
        );
        let mut page = super::page(&app, &admin, "clients", "Register a SMART app", None, &body);
        *page.status_mut() = status;
        page
    };
    let body = match metadata_of(&form) {
        Ok(body) => body,
        Err(error) => return Ok(again(StatusCode::BAD_REQUEST, &error)),
    };
    let table = app.registry.table(&admin.site.name);
    let registered =
        match registration::create(&admin.site, &body, true, Catalog::new(&table.scopes)).await {
            Ok(registered) => registered,
            Err(error) if error.status.is_client_error() => {
                return Ok(again(error.status, &error.description));
            }
            Err(error) => return Err(error.into()),
        };
    admin.record(&app, "/admin/clients/register", StatusCode::CREATED);
    let secret = registered
        .answer
        .get("client_secret")
        .and_then(Value::as_str)
        .map(|s| {
            format!(
                "<h2>Client secret</h2><p>Shown once: only its hash is kept.</p><p class=\"secret\" id=\"client-secret\">{}</p>",
                escape(s)
            )
        })
        .unwrap_or_else(|| "<p>This app has no secret (a public app, or one that signs with its keys).</p>".to_owned());
    let body = format!(
        "<p>The app <strong>{name}</strong> is registered and enabled.</p>\
<h2>Client id</h2><p class=\"secret\" id=\"client-id\">{id}</p>{secret}\
<p><a href=\"{base}/clients\">Back to the clients</a></p>",
        name = escape(body["client_name"].as_str().unwrap_or_default()),
        id = escape(&registered.client_id),
        base = escape(&base_path(&app)),
    );
    let mut page = super::page(&app, &admin, "clients", "App registered", None, &body);
    *page.status_mut() = StatusCode::CREATED;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::metadata_of;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_form_becomes_registration_metadata() {
        let body = metadata_of(&form(&[
            ("application_type", "public"),
            ("client_name", "Growth chart"),
            ("redirect_uris", "https://app/cb\r\n\r\n https://app/cb2 "),
            ("scope", "openid  launch\npatient/Patient.rs"),
            ("contacts", "ops@example.org"),
            ("jwks_uri", ""),
        ]))
        .unwrap();
        assert_eq!(body["application_type"], "public");
        assert_eq!(
            body["redirect_uris"],
            serde_json::json!(["https://app/cb", "https://app/cb2"])
        );
        assert_eq!(body["scope"], "openid launch patient/Patient.rs");
        assert_eq!(body["contacts"], serde_json::json!(["ops@example.org"]));
        assert!(!body.contains_key("jwks_uri"), "an empty field is left out");
    }

    #[test]
    fn a_nameless_app_or_broken_jwks_is_refused() {
        assert!(metadata_of(&form(&[("redirect_uris", "https://app/cb")])).is_err());
        let error = metadata_of(&form(&[("client_name", "A"), ("jwks", "{not json")])).unwrap_err();
        assert!(error.contains("not valid JSON"), "{error}");
    }
}
