//! `GET /oauth2/{site}/logout`: RP-initiated logout (OpenID Connect RP-Initiated Logout).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{PageError, SitePage, get, query_map, see_other, with_params};
use crate::crypto::jwt::{self, Alg};
use crate::oauth::{self, clients, pages};
use crate::on_db;
use crate::state::AppState;

/// `GET /oauth2/{site}/logout`: the `id_token_hint` must be an ID token this site signed;
/// every token of that client and user is revoked. The browser goes to
/// `post_logout_redirect_uri` only when the client registered it exactly.
pub async fn logout(
    State(app): State<Arc<AppState>>,
    SitePage(site): SitePage,
    request: Request,
) -> Result<Response, PageError> {
    let params = query_map(request.uri().query())?;
    let Some(hint) = get(&params, "id_token_hint") else {
        return Err(PageError::bad("id_token_hint is required."));
    };
    let not_ours = || PageError::bad("id_token_hint is not an ID token of this site.");
    let keys = site.keys();
    let claims = jwt::decode(hint)
        .and_then(|t| t.verify(keys.verifiers.iter(), &[Alg::Rs256, Alg::Es256]))
        .map_err(|_| not_ours())?;
    if claims["iss"].as_str() != Some(oauth::issuer(&app, &site.name).as_str()) {
        return Err(not_ours());
    }
    let (Some(client_id), Some(user)) = (claims["aud"].as_str(), claims["sub"].as_str()) else {
        return Err(not_ours());
    };
    let Some(client) = clients::find(&site, client_id).await.ok().flatten() else {
        return Err(PageError::bad(
            "The ID token's client is not registered on this site.",
        ));
    };
    let target = get(&params, "post_logout_redirect_uri");
    if let Some(target) = target
        && !client.post_logout_redirect_uris.iter().any(|u| u == target)
    {
        return Err(PageError::bad(
            "post_logout_redirect_uri is not one the client registered.",
        ));
    }
    on_db!(&site.db, |pool| {
        sqlx::query("UPDATE api_token SET revoked = 1 WHERE client_id = $1 AND user_id = $2")
            .bind(client_id)
            .bind(user)
            .execute(pool)
            .await?;
        sqlx::query(
            "UPDATE oauth_refresh_tokens SET revoked = 1 WHERE client_id = $1 AND user_id = $2",
        )
        .bind(client_id)
        .bind(user)
        .execute(pool)
        .await?;
    });
    Ok(match target {
        Some(target) => match get(&params, "state") {
            Some(state) => see_other(&with_params(target, &[("state", state)])),
            None => see_other(target),
        },
        None => pages::message(StatusCode::OK, "Signed out", "You have been signed out."),
    })
}
