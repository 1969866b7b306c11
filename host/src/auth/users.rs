//! Staff users and the accounts the host speaks for: adding a user (the CLI's `user add`
//! and the tests call it), password hashes, and the system user behind backend-service
//! tokens.

use anyhow::{Result, bail};

use super::acl;
use crate::db::store::{SqlValue, StoreError};
use crate::on_db;
use crate::sites::Site;

/// A staff user to add.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// The user name (1 to 100 characters, unique on the site).
    pub username: String,
    /// The ACL role: one of [`acl::ROLES`].
    pub role: String,
    /// First name.
    pub fname: String,
    /// Last name.
    pub lname: String,
    /// National Provider Identifier (makes the user a practitioner), or empty.
    pub npi: String,
}

/// Adds a staff user; answers the new user's uuid.
pub async fn add(site: &Site, args: &NewUser, password: &str) -> Result<String> {
    if !acl::ROLES.contains(&args.role.as_str()) {
        bail!(
            "unknown role '{}' (one of: {})",
            args.role,
            acl::ROLES.join(", ")
        );
    }
    if args.username.is_empty() || args.username.len() > 100 {
        bail!("the user name must be 1 to 100 characters");
    }
    let uuid = crate::db::comb_uuid();
    let hash = hash_password(password)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    // The portable path converts the uuid text to PostgreSQL's uuid type.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let result = async {
        let mut tx = site.db.begin(true, deadline).await?;
        let rows = tx
            .query(
                "INSERT INTO users (uuid, username, fname, lname, npi, role, active, authorized) VALUES ($1, $2, $3, $4, $5, $6, 1, 1) RETURNING id",
                vec![
                    SqlValue::Text(uuid.clone()),
                    SqlValue::Text(args.username.clone()),
                    SqlValue::Text(args.fname.clone()),
                    SqlValue::Text(args.lname.clone()),
                    SqlValue::Text(args.npi.clone()),
                    SqlValue::Text(args.role.clone()),
                ],
            )
            .await?;
        let Some(SqlValue::Integer(id)) = rows.values().first().and_then(|r| r.first()).cloned() else {
            return Err(StoreError::Failed("the new user has no id".into()));
        };
        tx.execute(
            "INSERT INTO users_secure (id, username, password, last_update) VALUES ($1, $2, $3, $4)",
            vec![
                SqlValue::Integer(id),
                SqlValue::Text(args.username.clone()),
                SqlValue::Text(hash.clone()),
                SqlValue::Text(now.clone()),
            ],
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => Ok(uuid),
        Err(StoreError::Constraint(_)) => bail!(
            "the user name '{}' is taken on site {}",
            args.username,
            site.name
        ),
        Err(error) => bail!("adding the user failed: {error:?}"),
    }
}

/// The uuid that backend-service tokens of `site` speak for (created on first use).
pub async fn system_user(site: &Site) -> Result<String> {
    // Read on every client_credentials request: the fast path.
    let existing = site
        .db
        .read(
            "SELECT value FROM site_settings WHERE name = 'system_user_uuid'",
            Vec::new(),
        )
        .await?;
    if let Some(uuid) = existing
        .first()
        .and_then(|row| row.first())
        .and_then(SqlValue::text)
        .map(str::to_owned)
    {
        return Ok(uuid);
    }
    let uuid = crate::db::comb_uuid();
    on_db!(&site.db, |pool| {
        sqlx::query("INSERT INTO site_settings (name, value) VALUES ('system_user_uuid', $1) ON CONFLICT (name) DO NOTHING")
            .bind(&uuid)
            .execute(pool)
            .await?;
    });
    Box::pin(system_user(site)).await
}

/// Hashes a password with Argon2id (PHC string, random salt).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| anyhow::anyhow!("hashing the password failed: {e}"))
}

/// True when `password` matches the stored PHC `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
    PasswordHash::new(hash)
        .map(|parsed| {
            argon2::Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The shortest password an administrator may set (the CLI asks the same).
pub const MIN_PASSWORD: usize = 8;

/// A staff user as the admin console lists them.
#[derive(Debug, Clone)]
pub struct User {
    /// The uuid.
    pub uuid: String,
    /// The user name.
    pub username: String,
    /// First name.
    pub fname: String,
    /// Last name.
    pub lname: String,
    /// The ACL role.
    pub role: String,
    /// False once disabled: a disabled user cannot sign in.
    pub active: bool,
}

/// Every staff user of `site` who can sign in (not the system user), by user name.
pub async fn list(site: &Site) -> Result<Vec<User>> {
    let rows = site
        .db
        .read(
            "SELECT CAST(u.uuid AS TEXT), u.username, u.fname, u.lname, u.role, u.active FROM users u JOIN users_secure s ON s.id = u.id ORDER BY u.username",
            Vec::new(),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let text = |i: usize| {
                row.get(i)
                    .and_then(SqlValue::text)
                    .unwrap_or_default()
                    .to_owned()
            };
            User {
                uuid: text(0),
                username: text(1),
                fname: text(2),
                lname: text(3),
                role: text(4),
                active: row.get(5).and_then(SqlValue::integer).unwrap_or(0) != 0,
            }
        })
        .collect())
}

/// The user `uuid` of `site`, if there is one.
pub async fn find(site: &Site, uuid: &str) -> Result<Option<User>> {
    Ok(list(site).await?.into_iter().find(|u| u.uuid == uuid))
}

/// Runs one statement on the user `uuid`; false when there is no such user.
async fn update_user(site: &Site, sql: &'static str, value: SqlValue, uuid: &str) -> Result<bool> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut tx = site.db.begin(true, deadline).await?;
    let changed = tx
        .execute(sql, vec![value, SqlValue::Text(uuid.to_owned())])
        .await?;
    tx.commit().await?;
    Ok(changed > 0)
}

/// Gives the user `uuid` the ACL role `role` (one of [`acl::ROLES`]).
pub async fn set_role(site: &Site, uuid: &str, role: &str) -> Result<bool> {
    if !acl::ROLES.contains(&role) {
        bail!("unknown role '{role}' (one of: {})", acl::ROLES.join(", "));
    }
    update_user(
        site,
        "UPDATE users SET role = $1 WHERE CAST(uuid AS TEXT) = $2",
        SqlValue::Text(role.to_owned()),
        uuid,
    )
    .await
}

/// Enables or disables the user `uuid` (a disabled user's sign-ins fail).
pub async fn set_active(site: &Site, uuid: &str, active: bool) -> Result<bool> {
    update_user(
        site,
        "UPDATE users SET active = $1 WHERE CAST(uuid AS TEXT) = $2",
        SqlValue::Integer(i64::from(active)),
        uuid,
    )
    .await
}

/// Replaces the password of the user `uuid` (at least [`MIN_PASSWORD`] characters).
pub async fn set_password(site: &Site, uuid: &str, password: &str) -> Result<bool> {
    if password.chars().count() < MIN_PASSWORD {
        bail!("the password must be at least {MIN_PASSWORD} characters");
    }
    let hash = hash_password(password)?;
    update_user(
        site,
        "UPDATE users_secure SET password = $1 WHERE id = (SELECT id FROM users WHERE CAST(uuid AS TEXT) = $2)",
        SqlValue::Text(hash),
        uuid,
    )
    .await
}
