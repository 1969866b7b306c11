//! `/admin/users`: the site's staff users. Add one, change a role, disable or enable one,
//! set a new password, all through [`crate::auth::users`] (what `hearth user add` calls).
//! An administrator cannot demote or disable themselves (the console would lock its last
//! administrator out).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;

use super::{Admin, ConsoleError, PageResult, back_with, base_path};
use crate::auth::acl;
use crate::auth::users::{self, MIN_PASSWORD, NewUser};
use crate::state::AppState;
use crate::web::{escape, read_form, single};

/// `GET /admin/users`.
pub async fn page(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let notice = super::notice_of(request.uri());
    let base = escape(&base_path(&app));
    let csrf = admin.csrf_field();
    let role_options = |selected: &str| {
        acl::ROLES
            .iter()
            .map(|role| {
                let mark = if *role == selected { " selected" } else { "" };
                format!("<option value=\"{role}\"{mark}>{role}</option>")
            })
            .collect::<String>()
    };
    let mut rows = String::new();
    for (i, user) in users::list(&admin.site).await?.iter().enumerate() {
        let uuid = escape(&user.uuid);
        let yourself = user.uuid == admin.user_id;
        let (toggle_value, toggle_label, toggle_class) = if user.active {
            ("0", "Disable", "danger small")
        } else {
            ("1", "Enable", "small")
        };
        let controls = if yourself {
            "<span class=\"muted\">(you)</span>".to_owned()
        } else {
            format!(
                "<form method=\"post\" action=\"{base}/users/role\">{csrf}<input type=\"hidden\" name=\"user\" value=\"{uuid}\">\
<label class=\"visually-hidden\" for=\"role-{i}\">Role of {name}</label><select id=\"role-{i}\" name=\"role\">{options}</select>\
<button type=\"submit\" class=\"small\">Change role</button></form>\
<form method=\"post\" action=\"{base}/users/active\">{csrf}<input type=\"hidden\" name=\"user\" value=\"{uuid}\">\
<input type=\"hidden\" name=\"active\" value=\"{toggle_value}\"><button type=\"submit\" class=\"{toggle_class}\">{toggle_label} {name}</button></form>",
                name = escape(&user.username),
                options = role_options(&user.role),
            )
        };
        rows.push_str(&format!(
            "<tr><td>{name}</td><td>{full}</td><td>{role}</td><td>{state}</td><td>{controls}\
<form method=\"post\" action=\"{base}/users/password\">{csrf}<input type=\"hidden\" name=\"user\" value=\"{uuid}\">\
<label class=\"visually-hidden\" for=\"password-{i}\">New password for {name}</label>\
<input type=\"password\" id=\"password-{i}\" name=\"password\" minlength=\"{MIN_PASSWORD}\" autocomplete=\"new-password\" placeholder=\"New password\" required>\
<button type=\"submit\" class=\"small\">Set password</button></form></td></tr>",
            name = escape(&user.username),
            full = escape(format!("{} {}", user.fname, user.lname).trim()),
            role = escape(&user.role),
            state = if user.active { "active" } else { "disabled" },
        ));
    }
    let body = format!(
        "<table><caption class=\"visually-hidden\">Staff users</caption><thead><tr><th scope=\"col\">User name</th><th scope=\"col\">Name</th>\
<th scope=\"col\">Role</th><th scope=\"col\">State</th><th scope=\"col\">Actions</th></tr></thead><tbody>{rows}</tbody></table>\
<h2>Add a user</h2><form method=\"post\" action=\"{base}/users\">{csrf}<div class=\"filters\">\
<div><label for=\"new-username\">User name</label><input type=\"text\" id=\"new-username\" name=\"username\" maxlength=\"100\" required></div>\
<div><label for=\"new-fname\">First name</label><input type=\"text\" id=\"new-fname\" name=\"fname\"></div>\
<div><label for=\"new-lname\">Last name</label><input type=\"text\" id=\"new-lname\" name=\"lname\"></div>\
<div><label for=\"new-npi\">NPI (practitioners)</label><input type=\"text\" id=\"new-npi\" name=\"npi\"></div>\
<div><label for=\"new-role\">Role</label><select id=\"new-role\" name=\"role\">{options}</select></div>\
<div><label for=\"new-password\">Password (at least {MIN_PASSWORD} characters)</label><input type=\"password\" id=\"new-password\" name=\"password\" minlength=\"{MIN_PASSWORD}\" autocomplete=\"new-password\" required></div>\
</div><button type=\"submit\">Add user</button></form>",
        options = role_options("clinician"),
    );
    Ok(super::page(
        &app,
        &admin,
        "users",
        "Users",
        notice.as_deref(),
        &body,
    ))
}

/// Reads a POSTed form and checks its CSRF token.
pub(super) async fn checked_form(
    admin: &Admin,
    request: Request,
) -> Result<Vec<(String, String)>, ConsoleError> {
    let (parts, body) = request.into_parts();
    let form = read_form(body, &parts.headers).await?;
    admin.check_csrf(&form)?;
    Ok(form)
}

/// The user a form names, who must exist on the site and not be the administrator.
async fn other_user(admin: &Admin, form: &[(String, String)]) -> Result<users::User, ConsoleError> {
    let uuid = single(form, "user").ok_or_else(|| ConsoleError::bad("Choose a user."))?;
    let user = users::find(&admin.site, &uuid)
        .await?
        .ok_or_else(|| ConsoleError::not_found("There is no such user on this site."))?;
    if user.uuid == admin.user_id {
        return Err(ConsoleError::Page(
            StatusCode::CONFLICT,
            "You cannot change your own role or disable yourself; ask another administrator."
                .into(),
        ));
    }
    Ok(user)
}

/// `POST /admin/users`: adds a user.
pub async fn add(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let username = single(&form, "username").unwrap_or_default();
    let role = single(&form, "role").unwrap_or_default();
    let password = single(&form, "password").unwrap_or_default();
    if username.is_empty() || username.chars().count() > 100 {
        return Err(ConsoleError::bad(
            "The user name must be 1 to 100 characters.",
        ));
    }
    if !acl::ROLES.contains(&role.as_str()) {
        return Err(ConsoleError::bad(format!(
            "Choose a role: one of {}.",
            acl::ROLES.join(", ")
        )));
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(ConsoleError::bad(format!(
            "The password must be at least {MIN_PASSWORD} characters."
        )));
    }
    if users::list(&admin.site)
        .await?
        .iter()
        .any(|u| u.username == username)
    {
        return Err(ConsoleError::Page(
            StatusCode::CONFLICT,
            format!("The user name {username} is taken on this site."),
        ));
    }
    let user = NewUser {
        username: username.clone(),
        role,
        fname: single(&form, "fname").unwrap_or_default(),
        lname: single(&form, "lname").unwrap_or_default(),
        npi: single(&form, "npi").unwrap_or_default(),
    };
    users::add(&admin.site, &user, &password).await?;
    admin.record(&app, "/admin/users", StatusCode::SEE_OTHER);
    Ok(back_with(
        &app,
        "users",
        &format!("Added the user {username}."),
    ))
}

/// `POST /admin/users/role`.
pub async fn role(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let user = other_user(&admin, &form).await?;
    let role = single(&form, "role").unwrap_or_default();
    if !acl::ROLES.contains(&role.as_str()) {
        return Err(ConsoleError::bad(format!(
            "Choose a role: one of {}.",
            acl::ROLES.join(", ")
        )));
    }
    users::set_role(&admin.site, &user.uuid, &role).await?;
    admin.record(&app, "/admin/users/role", StatusCode::SEE_OTHER);
    Ok(back_with(
        &app,
        "users",
        &format!("{} now has the role {role}.", user.username),
    ))
}

/// `POST /admin/users/active`.
pub async fn active(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let user = other_user(&admin, &form).await?;
    let active = match single(&form, "active").as_deref() {
        Some("1") => true,
        Some("0") => false,
        _ => return Err(ConsoleError::bad("Say whether to enable or disable.")),
    };
    users::set_active(&admin.site, &user.uuid, active).await?;
    admin.record(&app, "/admin/users/active", StatusCode::SEE_OTHER);
    let done = if active { "enabled" } else { "disabled" };
    Ok(back_with(
        &app,
        "users",
        &format!("{} is {done}.", user.username),
    ))
}

/// `POST /admin/users/password`.
pub async fn password(
    State(app): State<Arc<AppState>>,
    admin: Admin,
    request: Request,
) -> PageResult {
    let form = checked_form(&admin, request).await?;
    let uuid = single(&form, "user").ok_or_else(|| ConsoleError::bad("Choose a user."))?;
    let user = users::find(&admin.site, &uuid)
        .await?
        .ok_or_else(|| ConsoleError::not_found("There is no such user on this site."))?;
    let password = single(&form, "password").unwrap_or_default();
    if password.chars().count() < MIN_PASSWORD {
        return Err(ConsoleError::bad(format!(
            "The password must be at least {MIN_PASSWORD} characters."
        )));
    }
    users::set_password(&admin.site, &user.uuid, &password).await?;
    admin.record(&app, "/admin/users/password", StatusCode::SEE_OTHER);
    Ok(back_with(
        &app,
        "users",
        &format!("Set a new password for {}.", user.username),
    ))
}
