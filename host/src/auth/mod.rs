//! Authentication and authorisation: scopes, access tokens and their verification, passwords,
//! and the ACL roles of staff users. Keys and signatures are [`crate::crypto`]'s.

pub mod acl;
pub mod scopes;
pub mod tokens;
pub mod users;

pub use users::{hash_password, verify_password};

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
