//! Seeing and reloading plugins over HTTP: the admin API under each site (the
//! `hearth plugin …` commands in [`crate::cli::plugin`] call it).
//!
//! - `GET /apis/{site}/admin/plugins` lists how every plugin stands on the site (name,
//!   version, contract version, file hash, state, last error, loaded at). It needs a token
//!   of the site with `user/hearth-admin.r` (a staff user whose ACL role is `admin`) or
//!   `system/hearth-admin.r` (a backend service).
//! - `POST /apis/{site}/admin/plugins/reload` reloads the site's plugins from disk now
//!   (the watcher reloads every site on its own) and answers what changed, what failed and
//!   the new list. It needs `…/hearth-admin.u`, and reaches only the token's own site: an
//!   administrator of one site never swaps what another site serves.
//!
//! The CLI runs in its own process, so `hearth plugin list|reload` reach a running server
//! through that API: the CLI reads the server's public URL from the data folder (the server
//! records it at start), mints a one-minute `system/hearth-admin.ru` token with the site's
//! own key, and calls the API (trusting the data folder's certificate). When no server
//! answers, `plugin list` loads the files itself and shows how they would load;
//! `plugin reload` fails, as there is nothing to reload.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};

use crate::audit::Record;
use crate::auth::scopes::Scope;
use crate::auth::tokens::{self, Principal, Role};
use crate::error::{Family, HttpError};
use crate::plugins::registry::{PluginStatus, ReloadReport};
use crate::sites::Site;
use crate::state::AppState;

/// The scope resource of the admin API.
pub const ADMIN_RESOURCE: &str = "hearth-admin";

/// The admin routes, merged into the application's router.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/apis/{site}/admin/plugins", get(list))
        .route("/apis/{site}/admin/plugins/reload", post(reload))
}

/// `GET /apis/{site}/admin/plugins`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PluginList {
    /// The site.
    pub site: String,
    /// Every plugin of the site.
    pub plugins: Vec<PluginStatus>,
}

/// `POST /apis/{site}/admin/plugins/reload`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReloadAnswer {
    /// The site.
    pub site: String,
    /// What the reload did on the site.
    pub report: ReloadReport,
    /// Every plugin of the site afterwards.
    pub plugins: Vec<PluginStatus>,
}

async fn list(
    State(app): State<Arc<AppState>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    admin_call(
        &app,
        &site,
        &headers,
        "GET",
        false,
        |app, site| async move {
            Ok(axum::Json(PluginList {
                plugins: app.registry.statuses(&site.name),
                site: site.name.clone(),
            })
            .into_response())
        },
    )
    .await
}

async fn reload(
    State(app): State<Arc<AppState>>,
    UrlPath(site): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    admin_call(
        &app,
        &site,
        &headers,
        "POST",
        true,
        |app, site| async move {
            let report = app.registry.reload_site(&site.name).await;
            Ok(axum::Json(ReloadAnswer {
                plugins: app.registry.statuses(&site.name),
                site: site.name.clone(),
                report,
            })
            .into_response())
        },
    )
    .await
}

/// Resolves the site, checks the token, runs `work` and audits the call.
async fn admin_call<F, Fut>(
    app: &Arc<AppState>,
    site_name: &str,
    headers: &HeaderMap,
    method: &str,
    write: bool,
    work: F,
) -> Response
where
    F: FnOnce(Arc<AppState>, Arc<Site>) -> Fut,
    Fut: std::future::Future<Output = Result<Response, HttpError>>,
{
    let started = Instant::now();
    let Some(site) = app.sites.get(site_name).await else {
        return HttpError::unknown_site(site_name).render(Family::Other);
    };
    let path = if write {
        format!("/apis/{site_name}/admin/plugins/reload")
    } else {
        format!("/apis/{site_name}/admin/plugins")
    };
    let mut audit = Record::new(&site.name, method, &path);
    let result = async {
        let principal = authorize(app, &site, headers, write).await;
        if let Ok(principal) = &principal {
            audit.user_id = Some(principal.subject.clone());
            audit.client_id = Some(principal.client_id.clone());
        }
        principal?;
        work(app.clone(), site.clone()).await
    }
    .await;
    let response = result.unwrap_or_else(|error| error.render(Family::Other));
    audit.status = response.status().as_u16();
    audit.duration_us = started.elapsed().as_micros() as u64;
    app.audit.record(audit);
    response
}

/// The token must be a staff admin's or a backend service's, with the admin scope.
async fn authorize(
    app: &AppState,
    site: &Site,
    headers: &HeaderMap,
    write: bool,
) -> Result<Arc<Principal>, HttpError> {
    let token = tokens::bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    )?;
    let principal = tokens::authenticate(site, &app.base_url, token).await?;
    let context = match principal.role {
        Role::User => "user",
        Role::System => "system",
        Role::Patient => {
            return Err(HttpError::forbidden(
                "A patient token cannot use the admin API",
            ));
        }
    };
    let needed = format!(
        "{context}/{ADMIN_RESOURCE}.{}",
        if write { "u" } else { "r" }
    );
    let scope = Scope::parse(&needed).ok_or_else(|| HttpError::internal("admin scope"))?;
    if !principal.scopes.allows(&scope) {
        return Err(HttpError::insufficient_scope(&needed));
    }
    if principal.role == Role::User && principal.acl_role.as_deref() != Some("admin") {
        return Err(HttpError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Only staff users with the ACL role admin may use the admin API",
        ));
    }
    Ok(principal)
}
