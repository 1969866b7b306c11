//! A site's token signing keys: generated when the site is created, kept in the site's
//! database sealed with the key-encryption key ([`super::kek`]), published at
//! `/oauth2/{site}/jwks`.

use anyhow::{Context, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rsa::pkcs8::EncodePrivateKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::jwt::{Alg, Signer, Verifier};
use super::kek::Keyring;
use crate::db::Db;
use crate::on_db;

/// The keys of one site.
pub struct KeySet {
    /// Signs new tokens (the newest active key).
    pub signer: Signer,
    /// Verifies tokens (every active key).
    pub verifiers: Vec<Verifier>,
    /// The public JWKS document.
    pub jwks: Value,
}

/// The RFC 7638 thumbprint of a public JWK, used as its `kid`.
pub fn thumbprint(jwk: &Value) -> String {
    let canonical = match jwk["kty"].as_str() {
        Some("EC") => format!(
            r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
            jwk["crv"].as_str().unwrap_or_default(),
            jwk["x"].as_str().unwrap_or_default(),
            jwk["y"].as_str().unwrap_or_default()
        ),
        _ => format!(
            r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
            jwk["e"].as_str().unwrap_or_default(),
            jwk["n"].as_str().unwrap_or_default()
        ),
    };
    B64.encode(Sha256::digest(canonical.as_bytes()))
}

/// Generates a key for `alg` and answers (kid, PKCS#8 DER, public JWK).
pub fn generate(alg: Alg) -> Result<(String, Vec<u8>, Value)> {
    let der = match alg {
        Alg::Rs256 | Alg::Rs384 => {
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .context("generating an RSA key")?;
            key.to_pkcs8_der()
                .context("encoding the RSA key")?
                .as_bytes()
                .to_vec()
        }
        Alg::Es256 | Alg::Es384 => {
            let params = if alg == Alg::Es256 {
                &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING
            } else {
                &ring::signature::ECDSA_P384_SHA384_FIXED_SIGNING
            };
            ring::signature::EcdsaKeyPair::generate_pkcs8(params, &ring::rand::SystemRandom::new())
                .map_err(|_| anyhow::anyhow!("generating an EC key failed"))?
                .as_ref()
                .to_vec()
        }
    };
    let provisional = Signer::from_pkcs8("", alg, &der).map_err(anyhow::Error::msg)?;
    let mut jwk = provisional.public_jwk();
    let kid = thumbprint(&jwk);
    jwk["kid"] = json!(kid);
    Ok((kid, der, jwk))
}

/// Creates the site's first key when it has none.
pub async fn ensure(db: &Db, alg: Alg, keyring: &Keyring) -> Result<()> {
    let count: i64 = on_db!(db, |pool| {
        sqlx::query("SELECT COUNT(*) AS n FROM signing_keys WHERE active = 1")
            .fetch_one(pool)
            .await?
            .try_get("n")?
    });
    if count > 0 {
        return Ok(());
    }
    let (kid, der, jwk) = generate(alg)?;
    let der = keyring.seal(&kid, &der)?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    on_db!(db, |pool| {
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key, public_jwk, created_at, active) VALUES ($1, $2, $3, $4, $5, 1)",
        )
        .bind(&kid)
        .bind(alg.name())
        .bind(&der)
        .bind(jwk.to_string())
        .bind(&now)
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Seals with the current key-encryption key every stored key that is not sealed with it
/// yet (stored in plain text by an older version, or sealed with the previous key during a
/// rotation); answers how many were sealed again. Each row is updated on its own, only if
/// it still holds what was read, so two processes doing this at once do no harm.
pub async fn reseal(db: &Db, keyring: &Keyring) -> Result<usize> {
    let rows: Vec<(String, Vec<u8>)> = on_db!(db, |pool| {
        sqlx::query("SELECT kid, private_key FROM signing_keys ORDER BY kid")
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|row| -> Result<_, sqlx::Error> {
                Ok((row.try_get("kid")?, row.try_get("private_key")?))
            })
            .collect::<Result<Vec<_>, _>>()?
    });
    let mut sealed = 0;
    for (kid, stored) in rows {
        let opened = keyring.open_key(&kid, &stored)?;
        if opened.current {
            continue;
        }
        let again = keyring.seal(&kid, &opened.der)?;
        on_db!(db, |pool| {
            sqlx::query(
                "UPDATE signing_keys SET private_key = $1 WHERE kid = $2 AND private_key = $3",
            )
            .bind(&again)
            .bind(&kid)
            .bind(&stored)
            .execute(pool)
            .await?;
        });
        sealed += 1;
    }
    Ok(sealed)
}

/// Loads the site's active keys.
pub async fn load(db: &Db, keyring: &Keyring) -> Result<KeySet> {
    let rows: Vec<(String, String, Vec<u8>, String)> = on_db!(db, |pool| {
        sqlx::query(
            "SELECT kid, alg, private_key, public_jwk FROM signing_keys WHERE active = 1 ORDER BY created_at DESC, kid",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|row| -> Result<_, sqlx::Error> {
            Ok((row.try_get("kid")?, row.try_get("alg")?, row.try_get("private_key")?, row.try_get("public_jwk")?))
        })
        .collect::<Result<Vec<_>, _>>()?
    });
    let (kid, alg, stored, _) = rows.first().context("the site has no signing key")?;
    let alg = Alg::from_name(alg).with_context(|| format!("unknown key algorithm {alg}"))?;
    let der = keyring.open_key(kid, stored)?.der;
    let signer = Signer::from_pkcs8(kid, alg, &der).map_err(anyhow::Error::msg)?;
    let mut verifiers = Vec::new();
    let mut keys = Vec::new();
    for (_, _, _, jwk) in &rows {
        let jwk: Value = serde_json::from_str(jwk).context("stored JWK is not JSON")?;
        verifiers.push(Verifier::from_jwk(&jwk).map_err(anyhow::Error::msg)?);
        keys.push(jwk);
    }
    Ok(KeySet {
        signer,
        verifiers,
        jwks: json!({ "keys": keys }),
    })
}
