//! Who signs in: staff users and patients checked against their stored password hashes
//! (the password grant and the sign-in page share these), and patients' portal
//! credentials.

use std::sync::OnceLock;

use sqlx::Row;

use super::{OAuthError, now};
use crate::auth::tokens::Role;
use crate::auth::verify_password;
use crate::on_db;
use crate::sites::Site;

/// Who a grant speaks for.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The role.
    pub role: Role,
    /// The user, patient or system uuid.
    pub id: String,
    /// A staff user's login name.
    pub username: Option<String>,
    /// A staff user's ACL role.
    pub acl_role: Option<String>,
}

/// A hash no password matches, checked for unknown accounts so that they cost as much
/// time as known ones.
pub fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| crate::auth::hash_password("no such account").unwrap_or_default())
}

/// Checks a staff login; `None` when the name, the password or the account is wrong.
/// Unknown names cost the same hash check as known ones.
pub async fn check_user(
    site: &Site,
    username: &str,
    password: &str,
) -> Result<Option<Subject>, OAuthError> {
    let row: Option<(String, String, i64, String)> = on_db!(&site.db, |pool| {
        sqlx::query(
            "SELECT CAST(u.uuid AS TEXT) AS uuid, u.role, u.active, s.password FROM users u JOIN users_secure s ON s.id = u.id WHERE u.username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?
        .map(|row| -> Result<_, sqlx::Error> {
            Ok((row.try_get("uuid")?, row.try_get("role")?, row.try_get("active")?, row.try_get("password")?))
        })
        .transpose()?
    });
    let Some((uuid, role, active, hash)) = row else {
        verify_password(password, dummy_hash());
        return Ok(None);
    };
    if !verify_password(password, &hash) || active == 0 {
        return Ok(None);
    }
    Ok(Some(Subject {
        role: Role::User,
        id: uuid,
        username: Some(username.to_owned()),
        acl_role: Some(role),
    }))
}

/// Checks a patient portal login (user name, e-mail and password).
pub async fn check_patient(
    site: &Site,
    username: &str,
    email: &str,
    password: &str,
) -> Result<Option<Subject>, OAuthError> {
    let row: Option<(String, String, String)> = on_db!(&site.db, |pool| {
        sqlx::query(
            "SELECT l.puuid, l.email, l.password FROM portal_logins l JOIN patient_data p ON CAST(p.uuid AS TEXT) = l.puuid WHERE l.username = $1",
        )
        .bind(username)
        .fetch_optional(pool)
        .await?
        .map(|row| -> Result<_, sqlx::Error> {
            Ok((row.try_get("puuid")?, row.try_get("email")?, row.try_get("password")?))
        })
        .transpose()?
    });
    let Some((puuid, stored_email, hash)) = row else {
        verify_password(password, dummy_hash());
        return Ok(None);
    };
    if !verify_password(password, &hash) || !stored_email.eq_ignore_ascii_case(email.trim()) {
        return Ok(None);
    }
    Ok(Some(Subject {
        role: Role::Patient,
        id: puuid,
        username: None,
        acl_role: None,
    }))
}

/// Sets (or replaces) the portal login of patient `puuid`.
pub async fn set_portal_login(
    site: &Site,
    puuid: &str,
    username: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let exists: bool = on_db!(&site.db, |pool| {
        sqlx::query("SELECT 1 AS one FROM patient_data WHERE CAST(uuid AS TEXT) = $1")
            .bind(puuid)
            .fetch_optional(pool)
            .await?
            .is_some()
    });
    if !exists {
        anyhow::bail!("no patient {puuid} on site {}", site.name);
    }
    let hash = crate::auth::hash_password(password)?;
    on_db!(&site.db, |pool| {
        sqlx::query(
            "INSERT INTO portal_logins (puuid, username, email, password, created_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (puuid) DO UPDATE SET username = excluded.username, email = excluded.email, password = excluded.password",
        )
        .bind(puuid)
        .bind(username)
        .bind(email)
        .bind(&hash)
        .bind(now())
        .execute(pool)
        .await?;
    });
    Ok(())
}
