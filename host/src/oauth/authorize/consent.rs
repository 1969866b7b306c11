//! `/oauth2/{site}/consent`: the signed-in user sees what the client asks for, unticks
//! what they do not allow, and allows (a code goes back to the client) or denies.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::session::{self, SignedIn};
use super::signin::patient_name;
use super::{
    PageError, codes, pages_path, read_form, redirect_error, see_other, single, with_params,
};
use crate::auth::tokens::Role;
use crate::oauth::{self, pages};
use crate::state::AppState;

/// `GET /oauth2/{site}/consent`.
pub async fn consent_page(
    State(app): State<Arc<AppState>>,
    SignedIn {
        site,
        session,
        subject,
    }: SignedIn,
) -> Result<Response, PageError> {
    if session.needs_patient() {
        return Ok(see_other(&format!(
            "{}/patient-select",
            pages_path(&app, &site.name)
        )));
    }
    // A name that cannot be read is no reason to stop: the page says less.
    let who = match subject.role {
        Role::Patient => patient_name(&site, &subject.id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| "a patient".to_owned()),
        _ => subject.username.clone().unwrap_or_default(),
    };
    let patient = match &session.patient {
        Some(p) if subject.role == Role::User => patient_name(&site, p).await.ok().flatten(),
        _ => None,
    };
    let table = app.registry.table(&site.name);
    let groups =
        crate::plugins::words::group_scopes(&table, session.request.scope.split_whitespace());
    Ok(pages::page(
        StatusCode::OK,
        "Allow access?",
        &pages::consent(
            &pages_path(&app, &site.name),
            &session.csrf,
            &session.request.client_name,
            &who,
            patient.as_deref(),
            &groups,
        ),
    ))
}

/// `POST /oauth2/{site}/consent`: allow (with the ticked scopes) or deny.
pub async fn consent(
    State(app): State<Arc<AppState>>,
    SignedIn {
        site,
        session,
        subject,
    }: SignedIn,
    request: Request,
) -> Result<Response, PageError> {
    let (parts, body) = request.into_parts();
    let form = read_form(body, &parts.headers).await?;
    session.check_csrf(&form)?;
    if session.needs_patient() {
        return Ok(see_other(&format!(
            "{}/patient-select",
            pages_path(&app, &site.name)
        )));
    }
    let request = &session.request;
    let ticked: Vec<&str> = form
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .collect();
    let granted: Vec<&str> = request
        .scope
        .split_whitespace()
        .filter(|s| ticked.contains(s))
        .collect();
    session::end(&site, &session).await?;
    let issuer = oauth::issuer(&app, &site.name);
    let mut response = match single(&form, "action").as_deref() {
        Some("allow") if !granted.is_empty() => {
            match codes::issue(&issuer, &site, &session, &subject, &granted.join(" ")).await {
                Ok(code) => {
                    let mut params = vec![("code", code.as_str())];
                    if let Some(state) = &request.state {
                        params.push(("state", state));
                    }
                    params.push(("iss", &issuer));
                    see_other(&with_params(&request.redirect_uri, &params))
                }
                // The session is over either way: the page clears its cookie too.
                Err(error) => PageError::from(error).into_response(),
            }
        }
        Some("allow") | Some("deny") => redirect_error(
            &issuer,
            &request.redirect_uri,
            request.state.as_deref(),
            "access_denied",
            "The user did not allow access",
        ),
        _ => return Err(PageError::bad("Choose Allow or Deny.")),
    };
    session::set_cookie(&app, &site.name, &mut response, None);
    Ok(response)
}
