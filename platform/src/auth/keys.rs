use std::collections::HashMap;

use async_trait::async_trait;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::RwLock;

/// Where the issuer's public keys come from. svc-user serves them; tests and the embedded mode
/// hand them over directly with [`StaticKeySource`].
#[async_trait]
pub trait KeySource: Send + Sync {
    async fn fetch(&self) -> anyhow::Result<JwkSet>;
}

/// A JWKS held in memory. [`StaticKeySource::replace`] swaps it, as a key rotation would.
#[derive(Debug)]
pub struct StaticKeySource {
    jwks: RwLock<JwkSet>,
}

impl StaticKeySource {
    pub fn new(jwks: JwkSet) -> Self {
        Self {
            jwks: RwLock::new(jwks),
        }
    }

    pub fn replace(&self, jwks: JwkSet) {
        *self.jwks.write() = jwks;
    }
}

#[async_trait]
impl KeySource for StaticKeySource {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        Ok(self.jwks.read().clone())
    }
}

/// A public key and the one algorithm it verifies.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) algorithm: Algorithm,
    pub(crate) key: DecodingKey,
}

/// The keys of `jwks` that can verify one of the `allowed` algorithms, by key id. A key's
/// algorithm follows from its type and curve (Ed25519 → EdDSA, P-256 → ES256); a key whose `alg`
/// says otherwise, that is for encryption, or that has no `kid` is left out.
pub(crate) fn usable_keys(
    jwks: &JwkSet,
    allowed: &[Algorithm],
) -> HashMap<String, VerificationKey> {
    let mut keys = HashMap::new();
    for jwk in &jwks.keys {
        let Some(kid) = &jwk.common.key_id else {
            tracing::warn!("ignoring a JWKS key without a kid");
            continue;
        };
        let Some(algorithm) = signing_algorithm(jwk) else {
            tracing::warn!(
                kid,
                "ignoring a JWKS key that is not an Ed25519 or P-256 signing key"
            );
            continue;
        };
        if !allowed.contains(&algorithm) {
            tracing::debug!(
                kid,
                ?algorithm,
                "ignoring a JWKS key for an algorithm not accepted here"
            );
            continue;
        }
        let key = match DecodingKey::from_jwk(jwk) {
            Ok(key) => key,
            Err(err) => {
                tracing::warn!(kid, error = %err, "ignoring a malformed JWKS key");
                continue;
            }
        };
        if keys
            .insert(kid.clone(), VerificationKey { algorithm, key })
            .is_some()
        {
            tracing::warn!(kid, "the JWKS holds this kid twice; the last one wins");
        }
    }
    keys
}

fn signing_algorithm(jwk: &Jwk) -> Option<Algorithm> {
    if matches!(jwk.common.public_key_use, Some(ref usage) if *usage != PublicKeyUse::Signature) {
        return None;
    }
    let (algorithm, declared) = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            (Algorithm::EdDSA, KeyAlgorithm::EdDSA)
        }
        AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
            (Algorithm::ES256, KeyAlgorithm::ES256)
        }
        _ => return None,
    };
    match jwk.common.key_algorithm {
        Some(stated) if stated != declared => None,
        _ => Some(algorithm),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn jwks(json: serde_json::Value) -> JwkSet {
        serde_json::from_value(json).unwrap()
    }

    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    #[test]
    fn keeps_signing_keys_of_accepted_algorithms_only() {
        let set = jwks(serde_json::json!({ "keys": [
            { "kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "ed", "use": "sig" },
            { "kty": "OKP", "crv": "Ed25519", "x": ED_X },
            { "kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "enc", "use": "enc" },
            { "kty": "OKP", "crv": "Ed25519", "x": ED_X, "kid": "lying", "alg": "ES256" },
            { "kty": "oct", "k": "c2VjcmV0", "kid": "hmac" },
            { "kty": "EC", "crv": "P-256", "kid": "p256",
              "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
              "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" },
        ]}));

        let eddsa_only = usable_keys(&set, &[Algorithm::EdDSA]);
        let mut kids: Vec<_> = eddsa_only.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["ed"]);
        assert_eq!(eddsa_only["ed"].algorithm, Algorithm::EdDSA);

        let both = usable_keys(&set, &[Algorithm::EdDSA, Algorithm::ES256]);
        assert_eq!(both.len(), 2);
        assert_eq!(both["p256"].algorithm, Algorithm::ES256);
    }
}
