//! `POST /oauth2/{site}/login` signs in a staff user or a patient (with the sign-in
//! back-off of [`crate::oauth::LoginLimiter`]); `/patient-select` lets staff pick the
//! patient for `launch/patient`.

use std::sync::Arc;

use axum::extract::{FromRequestParts as _, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use sqlx::Row;

use super::session::{self, Pending, Session, SignedIn};
use super::{PageError, pages_path, query_map, read_form, see_other, single};
use crate::auth::tokens::Role;
use crate::oauth::accounts::{check_patient, check_user};
use crate::oauth::{self, pages};
use crate::on_db;
use crate::proxy::ClientAddr;
use crate::sites::Site;
use crate::state::AppState;

/// Where the browser goes once signed in: the patient picker, or the consent page.
fn next_step(app: &AppState, site: &Site, session: &Session) -> Response {
    let step = if session.needs_patient() {
        "patient-select"
    } else {
        "consent"
    };
    see_other(&format!("{}/{step}", pages_path(app, &site.name)))
}

/// `POST /oauth2/{site}/login`.
pub async fn login(
    State(app): State<Arc<AppState>>,
    request: Request,
) -> Result<Response, PageError> {
    let (mut parts, body) = request.into_parts();
    let Ok(address) = ClientAddr::from_request_parts(&mut parts, &app).await;
    let address = address.text();
    let Pending { site, session } = Pending::from_request_parts(&mut parts, &app).await?;
    let form = read_form(body, &parts.headers).await?;
    session.check_csrf(&form)?;
    let role = single(&form, "user_role").unwrap_or_else(|| "users".to_owned());
    let username = single(&form, "username").unwrap_or_default();
    let password = single(&form, "password").unwrap_or_default();
    let email = single(&form, "email").unwrap_or_default();
    let again = |status: StatusCode, error: &str| {
        pages::page(
            status,
            "Sign in",
            &pages::login(
                &pages_path(&app, &site.name),
                &session.csrf,
                &session.request.client_name,
                Some(error),
                &username,
                &role,
            ),
        )
    };
    if role != "users" && role != "patient" {
        return Ok(again(StatusCode::BAD_REQUEST, "Choose Staff or A patient."));
    }
    if username.is_empty() || password.is_empty() || (role == "patient" && email.is_empty()) {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Enter your user name and password (and e-mail, for patients).",
        ));
    }
    let limiter = oauth::limiter(&site);
    let (pair, account) = oauth::login_keys(&site.name, &role, &username, &address);
    let wait = limiter.wait(&site, &[&pair, &account]).await?;
    if wait > 0 {
        let mut page = again(StatusCode::TOO_MANY_REQUESTS, &oauth::too_many(wait));
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(page);
    }
    let checked = if role == "patient" {
        check_patient(&site, &username, &email, &password).await?
    } else {
        check_user(&site, &username, &password).await?
    };
    let Some(subject) = checked else {
        let keys = [
            (pair.as_str(), oauth::PAIR),
            (account.as_str(), oauth::ACCOUNT),
        ];
        limiter.failed(&site, &keys).await?;
        return Ok(again(
            StatusCode::OK,
            "The user name, password or e-mail is wrong.",
        ));
    };
    for key in [&pair, &account] {
        limiter.succeeded(&site, key).await?;
    }
    let patient = match subject.role {
        Role::Patient => Some(subject.id.clone()),
        _ => session.request.launch_patient.clone(),
    };
    session::signed_in_as(&site, &session, &subject, patient.as_deref()).await?;
    let session = Session {
        subject: Some(subject),
        patient,
        ..session
    };
    Ok(next_step(&app, &site, &session))
}

/// Staff only choose a patient.
fn staff_only(signed_in: &SignedIn) -> Result<(), PageError> {
    if signed_in.subject.role == Role::User {
        Ok(())
    } else {
        Err(PageError::bad("Only staff choose a patient."))
    }
}

/// `GET /oauth2/{site}/patient-select?q=…`.
pub async fn patient_select(
    State(app): State<Arc<AppState>>,
    signed_in: SignedIn,
    request: Request,
) -> Result<Response, PageError> {
    staff_only(&signed_in)?;
    let SignedIn { site, session, .. } = signed_in;
    let query = query_map(request.uri().query())
        .ok()
        .and_then(|q| q.get("q").cloned())
        .unwrap_or_default();
    let pattern = format!("%{}%", query.trim().to_lowercase().replace(['%', '_'], ""));
    let patients: Vec<(String, String)> = on_db!(&site.db, |pool| {
        sqlx::query("SELECT CAST(uuid AS TEXT) AS uuid, fname, lname, CAST(\"DOB\" AS TEXT) AS dob FROM patient_data WHERE LOWER(fname) LIKE $1 OR LOWER(lname) LIKE $1 OR LOWER(fname || ' ' || lname) LIKE $1 ORDER BY lname, fname, id LIMIT 100")
            .bind(&pattern)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|row| -> Result<(String, String), sqlx::Error> {
                let fname: String = row.try_get("fname")?;
                let lname: String = row.try_get("lname")?;
                let dob: Option<String> = row.try_get("dob")?;
                let dob = dob.map(|d| format!(" ({d})")).unwrap_or_default();
                Ok((row.try_get("uuid")?, format!("{fname} {lname}{dob}")))
            })
            .collect::<Result<Vec<_>, _>>()?
    });
    Ok(pages::page(
        StatusCode::OK,
        "Choose a patient",
        &pages::patient_select(
            &pages_path(&app, &site.name),
            &session.csrf,
            &query,
            &patients,
        ),
    ))
}

/// `POST /oauth2/{site}/patient-select`.
pub async fn patient_chosen(
    State(app): State<Arc<AppState>>,
    signed_in: SignedIn,
    request: Request,
) -> Result<Response, PageError> {
    staff_only(&signed_in)?;
    let SignedIn { site, session, .. } = signed_in;
    let (parts, body) = request.into_parts();
    let form = read_form(body, &parts.headers).await?;
    session.check_csrf(&form)?;
    let Some(patient) = single(&form, "patient").map(|p| p.to_ascii_lowercase()) else {
        return Err(PageError::bad("Choose a patient."));
    };
    if patient_name(&site, &patient).await?.is_none() {
        return Err(PageError::bad("There is no such patient."));
    }
    session::set_patient(&site, &session, &patient).await?;
    Ok(see_other(&format!(
        "{}/consent",
        pages_path(&app, &site.name)
    )))
}

/// A patient's name, `None` when there is no such patient.
pub(super) async fn patient_name(site: &Site, puuid: &str) -> Result<Option<String>, PageError> {
    let row: Option<(String, String)> = on_db!(&site.db, |pool| {
        sqlx::query("SELECT fname, lname FROM patient_data WHERE CAST(uuid AS TEXT) = $1")
            .bind(puuid)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((row.try_get("fname")?, row.try_get("lname")?))
            })
            .transpose()?
    });
    Ok(row.map(|(f, l)| format!("{f} {l}")))
}
