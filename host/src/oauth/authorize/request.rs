//! `GET|POST /oauth2/{site}/authorize`: checks the client's request and, when it is sound,
//! starts a sign-in session and shows the sign-in form.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;

use super::session::{self, AuthRequest};
use super::{PageError, SitePage, get, launch, pages_path, query_map, read_form, redirect_error};
use crate::auth::tokens;
use crate::oauth::{clients, finalize_scopes, pages, registration};
use crate::sites::Site;
use crate::state::AppState;

/// `GET|POST /oauth2/{site}/authorize`.
pub async fn authorize(
    State(app): State<Arc<AppState>>,
    SitePage(site): SitePage,
    request: Request,
) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let params = if parts.method == Method::POST {
        let mut map = HashMap::new();
        for (k, v) in read_form(body, &parts.headers).await? {
            if map.insert(k.clone(), v).is_some() {
                return Err(PageError::bad(format!("The parameter {k} is repeated.")));
            }
        }
        map
    } else {
        query_map(parts.uri.query())?
    };
    start(&app, &site, &params).await
}

/// Checks the request against the client's registration; starts the session.
async fn start(
    app: &AppState,
    site: &Arc<Site>,
    params: &HashMap<String, String>,
) -> Result<Response, PageError> {
    let page = |text: &str| PageError::bad(text);
    let client_id =
        get(params, "client_id").ok_or_else(|| page("The request names no client (client_id)."))?;
    if client_id == crate::state::DOCS_CLIENT_ID {
        crate::oauth::docs_client::ensure(app, site).await?;
    }
    let client = clients::find(site, client_id)
        .await?
        .ok_or_else(|| page("The client is not registered on this site."))?;
    let redirect_uri = match get(params, "redirect_uri") {
        Some(uri) if client.redirect_uris.iter().any(|r| r == uri) => uri.to_owned(),
        Some(_) => return Err(page("The redirect_uri is not one the client registered.")),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(page("The request must name its redirect_uri.")),
    };
    if !client.enabled {
        return Err(page(
            "The client is not enabled yet: an administrator of this site must enable it.",
        ));
    }
    if let Some(problem) = registration::redirect_uri_problem(&redirect_uri) {
        return Err(page(&format!(
            "The client's redirect URI cannot be used: {problem}."
        )));
    }
    let state = get(params, "state");
    let issuer = crate::oauth::issuer(app, &site.name);
    // Errors go back to the client only when an administrator has vetted it; a client
    // that registered itself (and was enabled at once) gets a page, so /authorize is no
    // open redirector to whatever URI it registered (RFC 9700 section 4.11).
    let vetted = client.vetted;
    let fail = |error: &str, description: &str| {
        if vetted {
            PageError::Answer(Box::new(redirect_error(
                &issuer,
                &redirect_uri,
                state,
                error,
                description,
            )))
        } else {
            PageError::Page(StatusCode::BAD_REQUEST, format!("{description} ({error})."))
        }
    };
    if get(params, "response_type") != Some("code") {
        return Err(fail(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let Some(requested) = get(params, "scope") else {
        return Err(fail("invalid_scope", "scope is required"));
    };
    let scope = finalize_scopes(app, site, Some(requested), &client)
        .map_err(|e| fail("invalid_scope", &e.description))?;
    let challenge = get(params, "code_challenge");
    match (challenge, get(params, "code_challenge_method")) {
        (Some(c), Some("S256")) => {
            if c.len() != 43
                || !c
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(fail(
                    "invalid_request",
                    "code_challenge must be a base64url SHA-256 (43 characters)",
                ));
            }
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method without code_challenge",
            ));
        }
        (None, None) if !client.confidential() => {
            return Err(fail(
                "invalid_request",
                "Public clients must use PKCE (code_challenge, S256)",
            ));
        }
        (None, None) => {}
    }
    let resource = tokens::audience(&app.base_url, &site.name);
    let audiences = [
        format!("{resource}/fhir"),
        format!("{resource}/api"),
        format!("{resource}/portal"),
        resource.clone(),
    ];
    let aud = get(params, "aud");
    if let Some(aud) = aud
        && !audiences.iter().any(|a| a == aud.trim_end_matches('/'))
    {
        return Err(fail("invalid_request", "aud is not this site's API"));
    }
    let (launch_patient, launch_encounter) = match get(params, "launch") {
        Some(launch) => {
            if aud.is_none() {
                return Err(fail("invalid_request", "An EHR launch needs aud"));
            }
            let (patient, encounter) = launch::check(&issuer, site, launch).ok_or_else(|| {
                fail(
                    "invalid_request",
                    "The launch parameter is invalid or expired",
                )
            })?;
            (Some(patient), encounter)
        }
        None => (None, None),
    };
    let request = AuthRequest {
        client_id: client.client_id.clone(),
        client_name: if client.client_name.is_empty() {
            client.client_id.clone()
        } else {
            client.client_name.clone()
        },
        redirect_uri: redirect_uri.clone(),
        scope,
        state: state.map(str::to_owned),
        nonce: get(params, "nonce").map(str::to_owned),
        code_challenge: challenge.map(str::to_owned),
        launch_patient,
        launch_encounter,
    };
    let (cookie, csrf) = session::start(site, &request).await?;
    let mut response = pages::page(
        StatusCode::OK,
        "Sign in",
        &pages::login(
            &pages_path(app, &site.name),
            &csrf,
            &request.client_name,
            None,
            "",
            "users",
        ),
    );
    session::set_cookie(app, &site.name, &mut response, Some(&cookie));
    Ok(response)
}
