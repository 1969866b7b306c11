//! `/admin/plugins`: how each plugin stands on the site (version, contract, file hash,
//! state, last error, limits, the routes it serves) and a reload button, which reloads
//! the site's plugins from disk as `POST /apis/{site}/admin/plugins/reload` does
//! ([`crate::plugins::Registry::reload_site`]); and the site's route choices (which of two
//! plugins declaring one route serves it), changed in the site's own entry of
//! `plugins.toml` ([`crate::plugins::manifest::with_route_choice`]) and applied by
//! reloading the site.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;

use super::users::checked_form;
use super::{Admin, ConsoleError, PageResult, base_path};
use crate::error::Family;
use crate::plugins::manifest::{route_key, with_route_choice};
use crate::plugins::route_text;
use crate::state::AppState;
use crate::web::{escape, single};

/// Where a family's routes live under `/apis/{site}`.
fn root(family: Family) -> &'static str {
    match family {
        Family::Api => "/api",
        Family::Portal => "/portal",
        Family::Fhir => "/fhir",
        Family::Other => "",
    }
}

/// The plugins page, with what a reload just did (if it did).
fn render(app: &AppState, admin: &Admin, notice: Option<&str>, report: &str) -> PageResult {
    let base = escape(&base_path(app));
    let table = app.registry.table(&admin.site.name);
    let mut rows = String::new();
    for status in app.registry.statuses(&admin.site.name) {
        let serving = table.plugins.iter().find(|p| p.loaded.name == status.name);
        let limits = serving
            .map(|p| {
                let l = p.limits;
                format!(
                    "{} ms wall, {} ms CPU, {} MiB, {} instances, {} KiB response",
                    l.timeout_ms,
                    l.cpu_ms,
                    l.memory_bytes >> 20,
                    l.max_instances,
                    l.max_response_bytes >> 10
                )
            })
            .unwrap_or_else(|| "—".to_owned());
        let routes = serving
            .map(|p| {
                let items = p
                    .loaded
                    .routes
                    .iter()
                    .map(|r| {
                        format!(
                            "<li><code>{} {}{}</code></li>",
                            r.method,
                            root(r.family),
                            escape(&r.path)
                        )
                    })
                    .collect::<String>();
                format!(
                    "<details><summary>{} routes</summary><ul>{items}</ul></details>",
                    p.loaded.routes.len()
                )
            })
            .unwrap_or_default();
        let text = |v: &Option<String>| escape(v.as_deref().unwrap_or("—"));
        rows.push_str(&format!(
            "<tr><td><strong>{name}</strong><br><span class=\"muted\">{file}</span>{routes}</td><td>{version}</td><td>{contract}</td>\
<td><code>{hash}</code></td><td class=\"state-{state}\">{state}</td><td>{error}</td><td>{limits}</td><td>{loaded}</td></tr>",
            name = escape(&status.name),
            file = escape(&status.file),
            version = text(&status.version),
            contract = text(&status.contract),
            hash = escape(status.hash.as_deref().map_or("—", |h| &h[..h.len().min(16)])),
            state = status.state.name(),
            error = text(&status.last_error),
            limits = escape(&limits),
            loaded = text(&status.loaded_at),
        ));
    }
    let csrf = admin.csrf_field();
    let plugin_options = |selected: &str| {
        table
            .plugins
            .iter()
            .map(|p| {
                let name = escape(&p.loaded.name);
                let mark = if p.loaded.name == selected {
                    " selected"
                } else {
                    ""
                };
                format!("<option value=\"{name}\"{mark}>{name}</option>")
            })
            .collect::<String>()
    };
    let mut choice_rows = String::new();
    for (i, (route, plugin)) in app
        .registry
        .route_choices(&admin.site.name)
        .iter()
        .enumerate()
    {
        let route = escape(route);
        choice_rows.push_str(&format!(
            "<tr><td><code>{route}</code></td><td>{chosen}</td><td>\
<form method=\"post\" action=\"{base}/plugins/route\">{csrf}<input type=\"hidden\" name=\"route\" value=\"{route}\">\
<label class=\"visually-hidden\" for=\"choice-{i}\">Plugin serving {route}</label><select id=\"choice-{i}\" name=\"plugin\">{options}</select>\
<button type=\"submit\" class=\"small\">Swap</button></form>\
<form method=\"post\" action=\"{base}/plugins/route\">{csrf}<input type=\"hidden\" name=\"route\" value=\"{route}\">\
<button type=\"submit\" class=\"danger small\">Remove the choice for {route}</button></form></td></tr>",
            chosen = escape(plugin),
            options = plugin_options(plugin),
        ));
    }
    if choice_rows.is_empty() {
        choice_rows.push_str("<tr><td colspan=\"3\">No choice: no two of this site's plugins declare the same route.</td></tr>");
    }
    let choices = format!(
        "<table><caption class=\"visually-hidden\">Route choices</caption><thead><tr><th scope=\"col\">Route</th><th scope=\"col\">Served by</th>\
<th scope=\"col\">Change</th></tr></thead><tbody>{choice_rows}</tbody></table>\
<form method=\"post\" action=\"{base}/plugins/route\">{csrf}<div class=\"filters\">\
<div><label for=\"new-route\">Route (method and path)</label><input type=\"text\" id=\"new-route\" name=\"route\" placeholder=\"GET /api/patient\" required></div>\
<div><label for=\"new-plugin\">Served by</label><select id=\"new-plugin\" name=\"plugin\">{options}</select></div>\
</div><button type=\"submit\">Choose the plugin for this route</button></form>",
        options = plugin_options(""),
    );
    let body = format!(
        "{report}<form method=\"post\" action=\"{base}/plugins/reload\">{csrf}\
<button type=\"submit\">Reload this site's plugins from disk</button></form>\
<p class=\"muted\">A reload reads <code>plugins.toml</code> and the plugin files again; a file that fails keeps the last good version serving.</p>\
<table><caption class=\"visually-hidden\">Plugins</caption><thead><tr><th scope=\"col\">Plugin</th><th scope=\"col\">Version</th><th scope=\"col\">Contract</th>\
<th scope=\"col\">File hash</th><th scope=\"col\">State</th><th scope=\"col\">Last error</th><th scope=\"col\">Limits</th><th scope=\"col\">Loaded at</th></tr></thead>\
<tbody>{rows}</tbody></table>\
<h2>Route choices</h2>{choices}\
<p class=\"muted\">When two plugins of a site declare the same route, the site's own entry of <code>plugins.toml</code> says which serves it \
(<code>routes = {{ \"GET /api/patient\" = \"patient-strict\" }}</code>). A change here is written there and this site is reloaded.</p>",
    );
    Ok(super::page(app, admin, "plugins", "Plugins", notice, &body))
}

/// `GET /admin/plugins`.
pub async fn page(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let notice = super::notice_of(request.uri());
    render(&app, &admin, notice.as_deref(), "")
}

/// `POST /admin/plugins/reload`: answers the page with what the reload did.
pub async fn reload(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    checked_form(&admin, request).await?;
    reload_and_show(&app, &admin, "/admin/plugins/reload").await
}

/// `POST /admin/plugins/route`: chooses which plugin serves a route two of the site's
/// plugins declare (`plugin` empty: drops the choice), in the site's own entry of
/// `plugins.toml`, then reloads the site.
pub async fn route(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let route = single(&form, "route").ok_or_else(|| ConsoleError::bad("Name the route."))?;
    let key = route_key(&route).ok_or_else(|| {
        ConsoleError::bad(format!(
            "{route:?} is not a method and a path (as GET /api/patient)."
        ))
    })?;
    let plugin = single(&form, "plugin");
    if let Some(plugin) = &plugin {
        let table = app.registry.table(&admin.site.name);
        let declares = table.plugins.iter().any(|p| {
            p.loaded.name == *plugin
                && p.loaded
                    .routes
                    .iter()
                    .any(|d| route_key(&route_text(d)).as_deref() == Some(key.as_str()))
        });
        if !declares {
            return Err(ConsoleError::bad(format!(
                "No plugin {plugin} serving this site declares {route}."
            )));
        }
    }
    let path = app.registry.manifest_path().to_owned();
    let text = std::fs::read_to_string(&path)
        .map_err(|e| ConsoleError::internal(format!("reading {}: {e}", path.display())))?;
    let written = with_route_choice(&text, &admin.site.name, &route, plugin.as_deref())
        .map_err(|e| ConsoleError::bad(format!("{e:#}.")))?;
    let temporary = path.with_extension("toml.console");
    std::fs::write(&temporary, written)
        .and_then(|()| std::fs::rename(&temporary, &path))
        .map_err(|e| ConsoleError::internal(format!("writing {}: {e}", path.display())))?;
    reload_and_show(&app, &admin, "/admin/plugins/route").await
}

/// Reloads the site's plugins and answers the page with what the reload did.
async fn reload_and_show(app: &AppState, admin: &Admin, path: &str) -> PageResult {
    let report = app.registry.reload_site(&admin.site.name).await;
    let status = if report.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    admin.record(app, path, status);
    let changed = if report.changed.is_empty() {
        "nothing changed".to_owned()
    } else {
        format!("now serving {}", report.changed.join(", "))
    };
    let errors = report
        .errors
        .iter()
        .map(|e| format!("<li>{}</li>", escape(e)))
        .collect::<String>();
    let summary = if errors.is_empty() {
        format!(
            "<p class=\"notice\" role=\"status\">Reloaded: {}.</p>",
            escape(&changed)
        )
    } else {
        format!(
            "<div class=\"error\" role=\"alert\"><p>Reloaded with errors ({}); the last good versions keep serving:</p><ul>{errors}</ul></div>",
            escape(&changed)
        )
    };
    let mut page = render(app, admin, None, &summary)?;
    *page.status_mut() = status;
    Ok(page)
}
