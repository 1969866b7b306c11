//! Signing in to the console and the signed-in session.
//!
//! Who may sign in: a staff user of a site whose ACL role is `admin` and who is active,
//! with the password of the authorization server's sign-in (the same argon2 hashes,
//! [`crate::registrar::accounts::check_user`]) and the same back-off
//! ([`crate::registrar::LoginLimiter`], counted together with the OAuth sign-in's failures
//! for the same account). A session belongs to the site signed in to and lasts
//! [`LIFETIME`] seconds; it lives in that site's `console_sessions` under the hash of the
//! cookie, whose value is `{site}~{token}`. Every request checks again that the user is
//! still an active admin, so demoting or disabling one ends their sessions.
//!
//! The sign-in form is protected by a double-submit token: a random cookie of its own
//! (`SameSite=Strict`) that the form must repeat.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use sqlx::Row;

use super::{ConsoleError, PageResult, bare_page, base_path, see_other};
use crate::audit::Record;
use crate::crypto::{random_token, same, sha256_hex};
use crate::on_db;
use crate::proxy::ClientAddr;
use crate::registrar::{self, ACCOUNT, PAIR, accounts, now};
use crate::sites::{DEFAULT_SITE, Site};
use crate::state::AppState;
use crate::web::{cookie, escape, read_form, single};

/// The session cookie.
pub const COOKIE: &str = "hearth_admin";
/// The sign-in form's double-submit cookie.
pub const SIGN_IN_COOKIE: &str = "hearth_admin_sign_in";
/// How long a console session lasts, seconds.
pub const LIFETIME: i64 = 3600;
/// How long a sign-in form stays usable, seconds.
const SIGN_IN_LIFETIME: i64 = 1800;

/// A signed-in administrator: the site, who, and the session's CSRF token.
pub struct Admin {
    /// The site signed in to.
    pub site: Arc<Site>,
    /// The user's uuid.
    pub user_id: String,
    /// The user name.
    pub username: String,
    /// The token every form of the session carries.
    pub csrf: String,
    /// The hash of the session cookie.
    hash: String,
}

impl Admin {
    /// The form's CSRF token must be the session's.
    pub fn check_csrf(&self, form: &[(String, String)]) -> Result<(), ConsoleError> {
        match single(form, "csrf_token") {
            Some(token) if same(&token, &self.csrf) => Ok(()),
            _ => Err(ConsoleError::Page(
                StatusCode::FORBIDDEN,
                "The form is stale or was not sent from this console. Reload the page and try again."
                    .into(),
            )),
        }
    }

    /// Writes an action to the site's audit log, the administrator as its user.
    pub fn record(&self, app: &AppState, path: &str, status: StatusCode) {
        let mut record = Record::new(&self.site.name, "POST", path);
        record.user_id = Some(self.user_id.clone());
        record.status = status.as_u16();
        app.audit.record(record);
    }

    /// The hidden field every form carries.
    pub fn csrf_field(&self) -> String {
        format!(
            "<input type=\"hidden\" name=\"csrf_token\" value=\"{}\">",
            escape(&self.csrf)
        )
    }
}

/// The `Set-Cookie` value of a console cookie under `path` (`None` removes it).
fn cookie_text(name: &str, path: &str, value: Option<&str>, max_age: i64) -> String {
    match value {
        Some(value) => format!(
            "{name}={value}; Path={path}; HttpOnly; Secure; SameSite=Strict; Max-Age={max_age}"
        ),
        None => format!("{name}=; Path={path}; HttpOnly; Secure; SameSite=Strict; Max-Age=0"),
    }
}

fn set_cookie(response: &mut Response, text: &str) {
    if let Ok(value) = HeaderValue::from_str(text) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The sign-in page with the session expired.
fn to_sign_in(app: &AppState) -> ConsoleError {
    ConsoleError::Answer(Box::new(see_other(&format!("{}/sign-in", base_path(app)))))
}

impl Admin {
    /// The session the request's cookie names, when it is live and its user still an
    /// active admin.
    async fn load(app: &AppState, headers: &HeaderMap) -> Result<Option<Admin>, ConsoleError> {
        let Some(value) = cookie(headers, COOKIE) else {
            return Ok(None);
        };
        let Some((site_name, token)) = value.split_once('~') else {
            return Ok(None);
        };
        let Some(site) = app.sites.get(site_name).await else {
            return Ok(None);
        };
        let hash = sha256_hex(token);
        let row: Option<(String, String, String, i64)> = on_db!(&site.db, |pool| {
            sqlx::query("SELECT csrf, user_id, username, expires_at FROM console_sessions WHERE session_hash = $1")
                .bind(&hash)
                .fetch_optional(pool)
                .await?
                .map(|row| -> Result<_, sqlx::Error> {
                    Ok((row.try_get("csrf")?, row.try_get("user_id")?, row.try_get("username")?, row.try_get("expires_at")?))
                })
                .transpose()?
        });
        let Some((csrf, user_id, username, expires_at)) = row else {
            return Ok(None);
        };
        if expires_at <= now() {
            end(&site, &hash).await?;
            return Ok(None);
        }
        let still_admin = crate::auth::users::find(&site, &user_id)
            .await?
            .is_some_and(|user| user.active && user.role == "admin");
        if !still_admin {
            end(&site, &hash).await?;
            return Ok(None);
        }
        Ok(Some(Admin {
            site,
            user_id,
            username,
            csrf,
            hash,
        }))
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = ConsoleError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        Admin::load(app, &parts.headers)
            .await?
            .ok_or_else(|| to_sign_in(app))
    }
}

async fn end(site: &Site, hash: &str) -> Result<(), ConsoleError> {
    on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM console_sessions WHERE session_hash = $1 OR expires_at < $2")
            .bind(hash)
            .bind(now())
            .execute(pool)
            .await?;
    });
    Ok(())
}

/// `GET /admin`: the sites page when signed in, else the sign-in page.
pub async fn home(State(app): State<Arc<AppState>>, headers: HeaderMap) -> PageResult {
    let signed_in = Admin::load(&app, &headers).await?.is_some();
    let next = if signed_in { "sites" } else { "sign-in" };
    Ok(see_other(&format!("{}/{next}", base_path(&app))))
}

/// The sign-in form.
fn sign_in_form(
    app: &AppState,
    token: &str,
    site: &str,
    username: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> String {
    let notice = notice
        .map(|n| format!("<p class=\"notice\" role=\"status\">{}</p>", escape(n)))
        .unwrap_or_default();
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    format!(
        "{notice}<p>Sign in with a staff account whose role is <code>admin</code> on the site.</p>{error}\
<form method=\"post\" action=\"{base}/sign-in\"><input type=\"hidden\" name=\"csrf_token\" value=\"{token}\">\
<label for=\"site\">Site</label><input type=\"text\" id=\"site\" name=\"site\" value=\"{site}\" required>\
<label for=\"username\">User name</label><input type=\"text\" id=\"username\" name=\"username\" value=\"{username}\" autocomplete=\"username\" required>\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required>\
<button type=\"submit\">Sign in</button></form>",
        base = escape(&base_path(app)),
        token = escape(token),
        site = escape(site),
        username = escape(username),
    )
}

/// The sign-in page with a fresh double-submit token.
fn sign_in_answer(
    app: &AppState,
    status: StatusCode,
    site: &str,
    username: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let token = random_token(32);
    let mut response = bare_page(
        status,
        "Hearth admin sign-in",
        &sign_in_form(app, &token, site, username, notice, error),
    );
    set_cookie(
        &mut response,
        &cookie_text(
            SIGN_IN_COOKIE,
            &base_path(app),
            Some(&token),
            SIGN_IN_LIFETIME,
        ),
    );
    response
}

/// `GET /admin/sign-in?site=…`.
pub async fn sign_in_page(State(app): State<Arc<AppState>>, request: Request) -> PageResult {
    let site = super::query(request.uri())
        .remove("site")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_SITE.to_owned());
    let notice = super::notice_of(request.uri());
    Ok(sign_in_answer(
        &app,
        StatusCode::OK,
        &site,
        "",
        notice.as_deref(),
        None,
    ))
}

/// `POST /admin/sign-in`.
pub async fn sign_in(State(app): State<Arc<AppState>>, request: Request) -> PageResult {
    let (mut parts, body) = request.into_parts();
    let Ok(address) = ClientAddr::from_request_parts(&mut parts, &app).await;
    let address = address.text();
    let form = read_form(body, &parts.headers).await?;
    let expected = cookie(&parts.headers, SIGN_IN_COOKIE);
    let presented = single(&form, "csrf_token");
    if !matches!((&expected, &presented), (Some(e), Some(p)) if same(e, p)) {
        return Ok(sign_in_answer(
            &app,
            StatusCode::FORBIDDEN,
            DEFAULT_SITE,
            "",
            None,
            Some("The form is stale or was not sent from this page. Sign in again."),
        ));
    }
    let site_name = single(&form, "site").unwrap_or_default();
    let username = single(&form, "username").unwrap_or_default();
    let password = single(&form, "password").unwrap_or_default();
    let again = |status: StatusCode, error: &str| {
        Ok(sign_in_answer(
            &app,
            status,
            &site_name,
            &username,
            None,
            Some(error),
        ))
    };
    if site_name.is_empty() || username.is_empty() || password.is_empty() {
        return again(
            StatusCode::BAD_REQUEST,
            "Enter the site, your user name and your password.",
        );
    }
    let vague = "The site, user name or password is wrong.";
    let Some(site) = app.sites.get(&site_name).await else {
        // As slow as a wrong password, and as vague.
        crate::auth::verify_password(&password, accounts::dummy_hash());
        return again(StatusCode::OK, vague);
    };
    let limiter = registrar::limiter(&site);
    // The OAuth sign-in's keys for staff, so failures at either door count together.
    let (pair, account) = registrar::login_keys(&site.name, "users", &username, &address);
    let wait = limiter.wait(&site, &[&pair, &account]).await?;
    if wait > 0 {
        let mut page = sign_in_answer(
            &app,
            StatusCode::TOO_MANY_REQUESTS,
            &site_name,
            &username,
            None,
            Some(&registrar::too_many(wait)),
        );
        page.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Ok(page);
    }
    let Some(subject) = accounts::check_user(&site, &username, &password).await? else {
        limiter
            .failed(&site, &[(pair.as_str(), PAIR), (account.as_str(), ACCOUNT)])
            .await?;
        return again(StatusCode::OK, vague);
    };
    for key in [&pair, &account] {
        limiter.succeeded(&site, key).await?;
    }
    if subject.acl_role.as_deref() != Some("admin") {
        return again(
            StatusCode::FORBIDDEN,
            "Only staff users whose role is admin may use the console.",
        );
    }
    let token = random_token(32);
    let csrf = random_token(32);
    let now = now();
    on_db!(&site.db, |pool| {
        sqlx::query("DELETE FROM console_sessions WHERE expires_at < $1")
            .bind(now)
            .execute(pool)
            .await?;
        sqlx::query("INSERT INTO console_sessions (session_hash, csrf, user_id, username, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(sha256_hex(&token))
            .bind(&csrf)
            .bind(&subject.id)
            .bind(&username)
            .bind(now + LIFETIME)
            .execute(pool)
            .await?;
    });
    let mut record = Record::new(&site.name, "POST", "/admin/sign-in");
    record.user_id = Some(subject.id.clone());
    record.status = StatusCode::SEE_OTHER.as_u16();
    app.audit.record(record);
    let base = base_path(&app);
    let mut response = see_other(&format!("{base}/sites"));
    set_cookie(
        &mut response,
        &cookie_text(
            COOKIE,
            &base,
            Some(&format!("{}~{token}", site.name)),
            LIFETIME,
        ),
    );
    set_cookie(&mut response, &cookie_text(SIGN_IN_COOKIE, &base, None, 0));
    Ok(response)
}

/// `POST /admin/sign-out`.
pub async fn sign_out(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    let (parts, body) = request.into_parts();
    let form = read_form(body, &parts.headers).await?;
    admin.check_csrf(&form)?;
    end(&admin.site, &admin.hash).await?;
    admin.record(&app, "/admin/sign-out", StatusCode::SEE_OTHER);
    let base = base_path(&app);
    let mut response = super::back_with(
        &app,
        &format!("sign-in?site={}", admin.site.name),
        "You are signed out.",
    );
    set_cookie(&mut response, &cookie_text(COOKIE, &base, None, 0));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_cookies_are_secure_http_only_strict_and_scoped() {
        assert_eq!(
            cookie_text(COOKIE, "/admin", Some("default~abc"), 3600),
            "hearth_admin=default~abc; Path=/admin; HttpOnly; Secure; SameSite=Strict; Max-Age=3600"
        );
        assert_eq!(
            cookie_text(COOKIE, "/ehr/admin", None, 0),
            "hearth_admin=; Path=/ehr/admin; HttpOnly; Secure; SameSite=Strict; Max-Age=0"
        );
    }
}
