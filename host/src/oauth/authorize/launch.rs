//! EHR launch tokens: the EHR (or `hearth client launch`) hands an app a short-lived token
//! naming the patient (and encounter) in context, which `/authorize?launch=…` checks.

use serde_json::json;

use crate::auth::tokens;
use crate::crypto::jwt::{self, Alg};
use crate::oauth::now;
use crate::sites::Site;

/// How long a launch token is good for, seconds.
const LIFETIME: i64 = 300;

/// An EHR launch token for `patient` (and optionally `encounter`), valid five minutes:
/// a JWT signed by the site's key that `/authorize?launch=…` accepts.
pub fn launch_token(
    base: &str,
    site: &Site,
    patient: &str,
    encounter: Option<&str>,
) -> anyhow::Result<String> {
    let now = now();
    let issuer = tokens::issuer(base, &site.name);
    let mut claims = json!({
        "iss": issuer,
        "aud": format!("{issuer}/launch"),
        "patient": patient,
        "iat": now,
        "exp": now + LIFETIME,
    });
    if let Some(encounter) = encounter {
        claims["encounter"] = json!(encounter);
    }
    site.keys().signer.sign(&claims).map_err(anyhow::Error::msg)
}

/// The patient and encounter of a launch token `issuer`'s site signed, unexpired.
pub(super) fn check(issuer: &str, site: &Site, token: &str) -> Option<(String, Option<String>)> {
    let keys = site.keys();
    let claims = jwt::decode(token)
        .ok()?
        .verify(keys.verifiers.iter(), &[Alg::Rs256, Alg::Es256])
        .ok()?;
    if claims["iss"].as_str() != Some(issuer)
        || claims["aud"].as_str() != Some(format!("{issuer}/launch").as_str())
        || claims["exp"].as_i64().is_none_or(|exp| exp <= now())
    {
        return None;
    }
    Some((
        claims["patient"].as_str()?.to_owned(),
        claims["encounter"].as_str().map(str::to_owned),
    ))
}
