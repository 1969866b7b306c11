//! The cryptography every token costs, with the library Hearth uses (AWS-LC, through
//! `hearth::crypto::jwt`) against `ring` on the same keys and messages, in one run: an
//! RS256 signature (each access token and id_token), an RS384 verification and an ES384
//! verification (each `private_key_jwt` client assertion).
//!
//! `cargo bench -p hearth-host --bench jwt` (`ITERATIONS=2000`)

use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hearth::crypto::jwt::{self, Alg, Signer, Verifier};
use hearth::crypto::keys;
use ring::signature;
use serde_json::json;

fn iterations() -> u32 {
    std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Microseconds per call of `f`, after a tenth as many calls to warm up.
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..n / 10 {
        f();
    }
    let started = Instant::now();
    for _ in 0..n {
        f();
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn row(what: &str, hearth: f64, ring: f64) {
    println!(
        "| {what} | {hearth:.1} µs | {ring:.1} µs | {:.2}× |",
        ring / hearth
    );
}

fn main() {
    let n = iterations();
    let claims = json!({"iss": "https://127.0.0.1:9300/oauth2/default", "sub": "a-client",
        "aud": "https://127.0.0.1:9300/oauth2/default/token", "exp": 1_900_000_000_i64,
        "jti": "0123456789abcdef", "scope": "system/Patient.rs system/*.$export"});
    let rng = ring::rand::SystemRandom::new();
    println!("{n} calls each\n");
    println!("| operation | Hearth (AWS-LC) | ring | ring / Hearth |");
    println!("|---|---:|---:|---:|");

    // RS256 signing with one 2048-bit key.
    let (_, der, _) = keys::generate(Alg::Rs256).expect("an RSA key");
    let ours = Signer::from_pkcs8("k", Alg::Rs256, &der).expect("loading the key");
    let theirs = signature::RsaKeyPair::from_pkcs8(&der).expect("ring loads the key");
    let message = ours.sign(&claims).expect("signing");
    let signed_part = message
        .rsplit_once('.')
        .expect("a JWT")
        .0
        .as_bytes()
        .to_vec();
    let mut out = vec![0; theirs.public().modulus_len()];
    row(
        "RS256 sign (RSA-2048)",
        per_call(n, || {
            ours.sign(&claims).expect("signing");
        }),
        per_call(n, || {
            theirs
                .sign(&signature::RSA_PKCS1_SHA256, &rng, &signed_part, &mut out)
                .expect("ring signs");
        }),
    );

    // Verification of client assertions, RS384 and ES384.
    for alg in [Alg::Rs384, Alg::Es384] {
        let (kid, der, jwk) = keys::generate(alg).expect("a key");
        let signer = Signer::from_pkcs8(&kid, alg, &der).expect("loading the key");
        let token = signer.sign(&claims).expect("signing");
        let verifier = Verifier::from_jwk(&jwk).expect("reading the JWK");
        let (head, sig) = token.rsplit_once('.').expect("a JWT");
        let sig = B64.decode(sig).expect("base64url");
        let public = signer.public_jwk();
        let ring_check: Box<dyn Fn() -> bool> = match alg {
            Alg::Es384 => {
                let x = B64.decode(public["x"].as_str().expect("x")).expect("x");
                let y = B64.decode(public["y"].as_str().expect("y")).expect("y");
                let point = [&[4u8][..], &x, &y].concat();
                let head = head.as_bytes().to_vec();
                Box::new(move || {
                    signature::UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, &point)
                        .verify(&head, &sig)
                        .is_ok()
                })
            }
            _ => {
                let n_ = B64.decode(public["n"].as_str().expect("n")).expect("n");
                let e = B64.decode(public["e"].as_str().expect("e")).expect("e");
                let head = head.as_bytes().to_vec();
                Box::new(move || {
                    signature::RsaPublicKeyComponents { n: &n_, e: &e }
                        .verify(&signature::RSA_PKCS1_2048_8192_SHA384, &head, &sig)
                        .is_ok()
                })
            }
        };
        assert!(ring_check(), "ring accepts the signature");
        let ours = per_call(n, || {
            jwt::decode(&token)
                .expect("decoding")
                .verify([&verifier], &[alg])
                .expect("verifying");
        });
        let theirs = per_call(n, || {
            assert!(ring_check());
        });
        row(
            &format!("{} verify (JWT parse included for Hearth)", alg.name()),
            ours,
            theirs,
        );
    }
}
