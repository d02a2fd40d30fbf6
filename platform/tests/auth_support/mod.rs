//! Keys, tokens and key sources for the auth tests: an issuer made up on the spot.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use runmesh_platform::auth::{
    AccessClaims, KeySource, SigningAlgorithm, StaticKeySource, TokenVerifier, VerifierConfig,
};
use serde::Serialize;

pub const ISSUER: &str = "https://user.runmesh.test";
pub const AUDIENCE: &str = "runmesh";

/// A signing key with its public JWK.
pub struct TestKey {
    pub kid: String,
    pub algorithm: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Jwk,
    /// What an attacker can read from the JWKS: the raw public key.
    pub public_key: Vec<u8>,
}

impl TestKey {
    pub fn ed25519(kid: &str) -> Self {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let signing = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
        let der = signing.to_pkcs8_der().unwrap();
        let encoding = EncodingKey::from_ed_der(der.as_bytes());
        let public_key = signing.verifying_key().to_bytes().to_vec();
        let jwk = Jwk::from_decoding_key(
            &DecodingKey::from_ed_der(&public_key),
            Some(Algorithm::EdDSA),
        )
        .unwrap();
        Self::finish(kid, Algorithm::EdDSA, encoding, jwk, public_key)
    }

    pub fn p256(kid: &str) -> Self {
        use p256::pkcs8::EncodePrivateKey;
        let secret = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()).unwrap();
        let der = secret.to_pkcs8_der().unwrap();
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let public_key = secret.public_key().to_sec1_bytes().to_vec();
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).unwrap();
        Self::finish(kid, Algorithm::ES256, encoding, jwk, public_key)
    }

    fn finish(
        kid: &str,
        algorithm: Algorithm,
        encoding: EncodingKey,
        mut jwk: Jwk,
        public_key: Vec<u8>,
    ) -> Self {
        jwk.common.key_id = Some(kid.to_string());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Self {
            kid: kid.to_string(),
            algorithm,
            encoding,
            jwk,
            public_key,
        }
    }

    /// Signs `claims` with this key, `kid` in the header.
    pub fn sign(&self, claims: &impl Serialize) -> String {
        self.sign_as(self.algorithm, &self.kid, claims)
    }

    pub fn sign_as(&self, algorithm: Algorithm, kid: &str, claims: &impl Serialize) -> String {
        let mut header = Header::new(algorithm);
        header.kid = Some(kid.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

pub fn jwks(keys: &[&TestKey]) -> JwkSet {
    JwkSet {
        keys: keys.iter().map(|key| key.jwk.clone()).collect(),
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a runner's token, valid for five minutes.
pub fn claims() -> AccessClaims {
    let now = now();
    AccessClaims {
        iss: ISSUER.to_string(),
        sub: "user-42".to_string(),
        aud: AUDIENCE.to_string(),
        exp: now + 300,
        nbf: now,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        sid: "session-7".to_string(),
        roles: vec!["runner".to_string()],
    }
}

/// A token whose header says `alg: none`, with no signature.
pub fn unsigned_token(kid: &str, claims: &impl Serialize) -> String {
    let header = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": kid });
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap()),
    )
}

/// An HS256 token keyed with `secret`: the algorithm-confusion attack uses the public key.
pub fn hmac_token(kid: &str, secret: &[u8], claims: &impl Serialize) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.to_string());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}

/// Counts fetches, and fails them while `down` is set.
pub struct CountingKeySource {
    pub inner: StaticKeySource,
    fetches: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
}

impl CountingKeySource {
    pub fn new(jwks: JwkSet) -> Arc<Self> {
        Arc::new(Self {
            inner: StaticKeySource::new(jwks),
            fetches: AtomicUsize::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
}

#[async_trait]
impl KeySource for CountingKeySource {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        self.fetches.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            anyhow::bail!("key source is down");
        }
        self.inner.fetch().await
    }
}

/// The issuer/audience above, EdDSA only, and a refresh interval long enough that no test
/// reaches it unless it sets its own.
pub fn config() -> VerifierConfig {
    let mut config = VerifierConfig::new(ISSUER, AUDIENCE);
    config.min_refresh_interval = Duration::from_secs(3600);
    config
}

pub fn verifier(config: VerifierConfig, source: Arc<dyn KeySource>) -> Arc<TokenVerifier> {
    Arc::new(TokenVerifier::new(config, source).unwrap())
}

pub fn eddsa_and_es256(mut config: VerifierConfig) -> VerifierConfig {
    config.algorithms = vec![SigningAlgorithm::EdDSA, SigningAlgorithm::ES256];
    config
}
