//! Authentication and authorisation: scopes, token signing and verification, site keys,
//! and the ACL roles of staff users.

pub mod acl;
pub mod jwt;
pub mod kek;
pub mod keys;
pub mod scopes;
pub mod tokens;

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

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_hash_and_verify() {
        let hash = super::hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(super::verify_password("correct horse", &hash));
        assert!(!super::verify_password("wrong", &hash));
        assert!(!super::verify_password("x", "not a hash"));
    }
}
