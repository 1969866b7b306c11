//! The sign-in session: the checked authorization request and who signed in, kept in
//! `oauth_sessions` under the hash of a random cookie (scoped to the site's pages, ten
//! minutes), and the CSRF token every form of the session carries.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::{PageError, SitePage, pages_path, single};
use crate::auth::tokens::Role;
use crate::crypto::{random_token, same, sha256_hex};
use crate::oauth::accounts::Subject;
use crate::oauth::{OAuthError, now};
use crate::on_db;
use crate::sites::Site;
use crate::state::AppState;

/// The cookie that names the sign-in session.
pub const COOKIE: &str = "hearth_authz";
/// How long a sign-in session lasts, seconds.
const SESSION_LIFETIME: i64 = 600;

const EXPIRED: &str =
    "Your sign-in session has expired or was not found. Go back to the app and start again.";

/// A checked authorization request, kept with the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub(super) client_id: String,
    pub(super) client_name: String,
    pub(super) redirect_uri: String,
    pub(super) scope: String,
    pub(super) state: Option<String>,
    pub(super) nonce: Option<String>,
    pub(super) code_challenge: Option<String>,
    pub(super) launch_patient: Option<String>,
    pub(super) launch_encounter: Option<String>,
}

impl AuthRequest {
    /// Staff must pick a patient: `launch/patient` asked for, and no EHR launch named one.
    pub(super) fn wants_patient_pick(&self) -> bool {
        self.launch_patient.is_none()
            && self.scope.split_whitespace().any(|s| s == "launch/patient")
    }
}

/// A sign-in session.
pub struct Session {
    /// The hash of the cookie, the session's key.
    pub(super) hash: String,
    /// The token every form of the session carries.
    pub(super) csrf: String,
    /// What the client asked for.
    pub(super) request: AuthRequest,
    /// Who signed in, once someone did.
    pub(super) subject: Option<Subject>,
    /// The patient in context (a patient who signed in, or the one staff picked).
    pub(super) patient: Option<String>,
}

impl Session {
    /// Staff still have to pick a patient before the consent page.
    pub(super) fn needs_patient(&self) -> bool {
        self.request.wants_patient_pick()
            && self.patient.is_none()
            && self.subject.as_ref().is_some_and(|s| s.role == Role::User)
    }

    /// The form's CSRF token must be the session's.
    pub(super) fn check_csrf(&self, form: &[(String, String)]) -> Result<(), PageError> {
        match single(form, "csrf_token") {
            Some(token) if same(&token, &self.csrf) => Ok(()),
            _ => Err(PageError::Page(
                StatusCode::FORBIDDEN,
                "The form is stale or was not sent from this page. Go back to the app and start again."
                    .into(),
            )),
        }
    }
}

/// Starts a session for `request`; answers the cookie and the CSRF token.
pub(super) async fn start(
    site: &Site,
    request: &AuthRequest,
) -> Result<(String, String), OAuthError> {
    let cookie = random_token(32);
    let csrf = random_token(32);
    let request_json = serde_json::to_string(request).map_err(OAuthError::internal)?;
    let now = now();
    on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM oauth_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?;
        sqlx::query("INSERT INTO oauth_sessions (session_hash, csrf, request, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(sha256_hex(&cookie))
            .bind(&csrf)
            .bind(&request_json)
            .bind(now + SESSION_LIFETIME)
            .execute(pool)
            .await?;
    });
    Ok((cookie, csrf))
}

/// Records who signed in (and the patient in context).
pub(super) async fn signed_in_as(
    site: &Site,
    session: &Session,
    subject: &Subject,
    patient: Option<&str>,
) -> Result<(), OAuthError> {
    on_db!(&site.db, |pool| {
        sqlx::query("UPDATE oauth_sessions SET user_id = $1, role = $2, username = $3, acl_role = $4, patient = $5 WHERE session_hash = $6")
            .bind(&subject.id)
            .bind(subject.role.name())
            .bind(&subject.username)
            .bind(&subject.acl_role)
            .bind(patient)
            .bind(&session.hash)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Records the patient staff picked.
pub(super) async fn set_patient(
    site: &Site,
    session: &Session,
    patient: &str,
) -> Result<(), OAuthError> {
    on_db!(&site.db, |pool| {
        sqlx::query("UPDATE oauth_sessions SET patient = $1 WHERE session_hash = $2")
            .bind(patient)
            .bind(&session.hash)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Ends the session (the consent page was answered).
pub(super) async fn end(site: &Site, session: &Session) -> Result<(), OAuthError> {
    on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM oauth_sessions WHERE session_hash = $1")
            .bind(&session.hash)
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// Sets (or, with `None`, clears) the session cookie on `response`.
pub(super) fn set_cookie(app: &AppState, site: &str, response: &mut Response, value: Option<&str>) {
    let cookie = cookie_text(
        &pages_path(app, site),
        app.base_url.starts_with("https://"),
        value,
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The `Set-Cookie` value: the session cookie under the pages' path, or its removal.
fn cookie_text(path: &str, secure: bool, value: Option<&str>) -> String {
    let secure = if secure { "; Secure" } else { "" };
    match value {
        Some(value) => format!(
            "{COOKIE}={value}; Path={path}/; HttpOnly; SameSite=Lax; Max-Age={SESSION_LIFETIME}{secure}"
        ),
        None => format!("{COOKIE}=; Path={path}/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    }
}

/// The session cookie's value among the request's cookies.
fn cookie_value(headers: &HeaderMap) -> Option<String> {
    crate::web::cookie(headers, COOKIE)
}

/// The session the request's cookie names, unexpired.
async fn load(site: &Site, headers: &HeaderMap) -> Result<Session, PageError> {
    let cookie = cookie_value(headers).ok_or_else(|| PageError::bad(EXPIRED))?;
    let hash = sha256_hex(&cookie);
    type Stored = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        i64,
    );
    let row: Option<Stored> = on_db!(&site.db, |pool| {
        sqlx::query("SELECT csrf, request, user_id, role, username, acl_role, patient, expires_at FROM oauth_sessions WHERE session_hash = $1")
            .bind(&hash)
            .fetch_optional(pool)
            .await?
            .map(|row| -> Result<Stored, sqlx::Error> {
                Ok((row.try_get("csrf")?, row.try_get("request")?, row.try_get("user_id")?, row.try_get("role")?, row.try_get("username")?, row.try_get("acl_role")?, row.try_get("patient")?, row.try_get("expires_at")?))
            })
            .transpose()?
    });
    let Some((csrf, request, user_id, role, username, acl_role, patient, expires_at)) = row else {
        return Err(PageError::bad(EXPIRED));
    };
    if expires_at <= now() {
        return Err(PageError::bad(EXPIRED));
    }
    let request: AuthRequest =
        serde_json::from_str(&request).map_err(|_| PageError::bad(EXPIRED))?;
    let subject = match (user_id, role.as_deref().and_then(Role::from_name)) {
        (Some(id), Some(role)) => Some(Subject {
            role,
            id,
            username,
            acl_role,
        }),
        _ => None,
    };
    Ok(Session {
        hash,
        csrf,
        request,
        subject,
        patient,
    })
}

/// The site and the request's session, signed in or not yet (the sign-in form).
pub struct Pending {
    /// The site.
    pub site: Arc<Site>,
    /// Its session.
    pub session: Session,
}

impl FromRequestParts<Arc<AppState>> for Pending {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let SitePage(site) = SitePage::from_request_parts(parts, app).await?;
        let session = load(&site, &parts.headers).await?;
        Ok(Pending { site, session })
    }
}

/// The site, the request's session and who signed in to it (every page after sign-in).
pub struct SignedIn {
    /// The site.
    pub site: Arc<Site>,
    /// Its session.
    pub session: Session,
    /// Who signed in.
    pub subject: Subject,
}

impl FromRequestParts<Arc<AppState>> for SignedIn {
    type Rejection = PageError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let Pending { site, session } = Pending::from_request_parts(parts, app).await?;
        let Some(subject) = session.subject.clone() else {
            return Err(PageError::bad(
                "Sign in first. Go back to the app and start again.",
            ));
        };
        Ok(SignedIn {
            site,
            session,
            subject,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(scope: &str, role: Option<Role>, patient: Option<&str>) -> Session {
        Session {
            hash: "h".into(),
            csrf: "token-1".into(),
            request: AuthRequest {
                client_id: "c".into(),
                client_name: "C".into(),
                redirect_uri: "https://app/cb".into(),
                scope: scope.into(),
                state: None,
                nonce: None,
                code_challenge: None,
                launch_patient: None,
                launch_encounter: None,
            },
            subject: role.map(|role| Subject {
                role,
                id: "u".into(),
                username: None,
                acl_role: None,
            }),
            patient: patient.map(str::to_owned),
        }
    }

    #[test]
    fn the_cookie_is_scoped_http_only_and_secure_over_https() {
        let set = cookie_text("/ehr/oauth2/s", true, Some("abc"));
        assert_eq!(
            set,
            "hearth_authz=abc; Path=/ehr/oauth2/s/; HttpOnly; SameSite=Lax; Max-Age=600; Secure"
        );
        let cleared = cookie_text("/oauth2/s", false, None);
        assert_eq!(
            cleared,
            "hearth_authz=; Path=/oauth2/s/; HttpOnly; SameSite=Lax; Max-Age=0"
        );
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; hearth_authz=xyz"),
        );
        assert_eq!(cookie_value(&headers).as_deref(), Some("xyz"));
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, HeaderValue::from_static("hearth_authz="));
        assert_eq!(cookie_value(&empty), None);
        assert_eq!(cookie_value(&HeaderMap::new()), None);
    }

    #[test]
    fn a_form_passes_only_with_the_sessions_csrf_token() {
        let s = session("openid", None, None);
        let form = |token: &str| vec![("csrf_token".to_owned(), token.to_owned())];
        assert!(s.check_csrf(&form("token-1")).is_ok());
        let Err(PageError::Page(status, _)) = s.check_csrf(&form("token-2")) else {
            panic!("a wrong token passed")
        };
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(s.check_csrf(&[]).is_err(), "no token passed");
    }

    #[test]
    fn only_staff_without_a_patient_pick_one_for_launch_patient() {
        let scope = "openid launch/patient patient/Patient.rs";
        assert!(session(scope, Some(Role::User), None).needs_patient());
        assert!(!session(scope, Some(Role::User), Some("p")).needs_patient());
        assert!(!session(scope, Some(Role::Patient), None).needs_patient());
        assert!(
            !session(scope, None, None).needs_patient(),
            "nobody signed in yet"
        );
        assert!(!session("openid", Some(Role::User), None).needs_patient());
    }
}
