//! Key material and the primitives built on it: JWT signing and verification, the site
//! key sets, the key-encryption key that seals private keys at rest, and small helpers
//! (constant-time comparison, hashing, random tokens). Nothing here knows about sites,
//! requests or users; `sites` and everything above build on it.

pub mod jwt;
pub mod kek;
pub mod keys;

use sha2::{Digest, Sha256};

/// Hex SHA-256, how secrets and tokens are stored.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// A random URL-safe token of `bytes` random bytes.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buffer = vec![0u8; bytes];
    rand::Rng::fill(&mut rand::thread_rng(), buffer.as_mut_slice());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

/// Constant-time equality of two strings.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
