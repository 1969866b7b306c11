//! `GET /admin/sites`: every site of the server, the one signed in to marked, and a way to
//! sign in to another (each site has its own administrators; signing in to another site
//! replaces the session).

use std::sync::Arc;

use axum::extract::{Request, State};

use super::{Admin, PageResult, base_path};
use crate::state::AppState;
use crate::web::escape;

/// The database a site uses, without credentials: its kind and, for PostgreSQL, the host
/// and database name.
pub fn database_label(url: &str) -> String {
    if url.is_empty() || url.starts_with("sqlite") {
        return "SQLite (in the data folder)".to_owned();
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return "unknown".to_owned();
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, after)| after);
    let rest = rest.split('?').next().unwrap_or(rest);
    let kind = if scheme.starts_with("postgres") {
        "PostgreSQL"
    } else {
        scheme
    };
    format!("{kind} ({rest})")
}

/// `GET /admin/sites`.
pub async fn page_handler(app: &AppState, admin: &Admin, notice: Option<&str>) -> PageResult {
    let base = base_path(app);
    let mut rows = String::new();
    for (name, url) in app.sites.list().await? {
        let plugins = app.registry.statuses(&name).len();
        let here = name == admin.site.name;
        let action = if here {
            "<strong>Signed in here</strong>".to_owned()
        } else {
            format!(
                "<a href=\"{base}/sign-in?site={q}\">Sign in to {n}</a>",
                base = escape(&base),
                q = escape(&form_urlencoded::byte_serialize(name.as_bytes()).collect::<String>()),
                n = escape(&name)
            )
        };
        rows.push_str(&format!(
            "<tr><td>{n}</td><td>{db}</td><td>{open}</td><td>{plugins}</td><td>{action}</td></tr>",
            n = escape(&name),
            db = escape(&database_label(&url)),
            open = if app.sites.is_open(&name) {
                "yes"
            } else {
                "not yet"
            },
        ));
    }
    let body = format!(
        "<p>An administrator of a site manages that site: its users, API clients, plugins, \
audit log and settings. To manage another site, sign in to it with one of its administrator accounts.</p>\
<table><caption class=\"visually-hidden\">Sites</caption><thead><tr><th scope=\"col\">Site</th><th scope=\"col\">Database</th>\
<th scope=\"col\">Open in this process</th><th scope=\"col\">Plugins</th><th scope=\"col\">Console</th></tr></thead><tbody>{rows}</tbody></table>\
<p class=\"muted\">Sites are added with <code>hearth site add</code>.</p>"
    );
    Ok(super::page(app, admin, "sites", "Sites", notice, &body))
}

/// `GET /admin/sites`.
pub async fn page(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let notice = super::notice_of(request.uri());
    page_handler(&app, &admin, notice.as_deref()).await
}

#[cfg(test)]
mod tests {
    use super::database_label;

    #[test]
    fn a_database_is_shown_without_its_password() {
        assert_eq!(
            database_label("postgres://root:secret@db.internal:5432/clinic?sslmode=require"),
            "PostgreSQL (db.internal:5432/clinic)"
        );
        assert_eq!(database_label(""), "SQLite (in the data folder)");
        assert_eq!(
            database_label("sqlite://x.db"),
            "SQLite (in the data folder)"
        );
    }
}
