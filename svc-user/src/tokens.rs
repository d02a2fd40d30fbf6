//! Access tokens (EdDSA JWTs the platform's verifier accepts) and opaque refresh tokens.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use rand::TryRngCore as _;
use runmesh_platform::auth::{AccessClaims, Role};
use sha2::{Digest as _, Sha256};

use crate::keys::{KeyError, KeyRing};

/// Marks runmesh refresh tokens so secret scanners can recognise a leaked one.
const REFRESH_TOKEN_PREFIX: &str = "rmr_";

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error(transparent)]
    Keys(#[from] KeyError),
    #[error("signing: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("a time is out of range")]
    TimeOutOfRange,
}

/// A signed access token and when it expires.
#[derive(Debug, Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// Signs access tokens with the key ring's current key.
pub struct AccessTokenIssuer {
    keys: Arc<KeyRing>,
    issuer: String,
    audience: String,
    lifetime: Duration,
}

impl AccessTokenIssuer {
    pub fn new(keys: Arc<KeyRing>, issuer: String, audience: String, lifetime: Duration) -> Self {
        Self {
            keys,
            issuer,
            audience,
            lifetime,
        }
    }

    pub fn issue(
        &self,
        user_id: &str,
        session_id: &str,
        roles: &[Role],
        now: DateTime<Utc>,
    ) -> Result<AccessToken, TokenError> {
        let (kid, key) = self.keys.signer(now)?;
        let expires_at = now
            + chrono::Duration::from_std(self.lifetime).map_err(|_| TokenError::TimeOutOfRange)?;
        let issued_at = unix_seconds(now)?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: user_id.to_owned(),
            aud: self.audience.clone(),
            exp: unix_seconds(expires_at)?,
            nbf: issued_at,
            iat: issued_at,
            jti: uuid::Uuid::now_v7().to_string(),
            sid: session_id.to_owned(),
            roles: roles.iter().map(|role| role.as_str().to_owned()).collect(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid);
        let token = jsonwebtoken::encode(&header, &claims, &key)?;
        Ok(AccessToken { token, expires_at })
    }
}

fn unix_seconds(time: DateTime<Utc>) -> Result<u64, TokenError> {
    u64::try_from(time.timestamp()).map_err(|_| TokenError::TimeOutOfRange)
}

/// A new refresh token: 256 random bits. Only its [`refresh_token_hash`] is stored.
pub fn new_refresh_token() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|err| TokenError::Random(err.to_string()))?;
    Ok(format!(
        "{REFRESH_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// How a refresh token is stored: base64url SHA-256. A salt or slow hash would add nothing:
/// the token is random, not a password.
pub fn refresh_token_hash(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn refresh_tokens_are_random_and_stored_hashed() {
        let first = new_refresh_token().unwrap();
        let second = new_refresh_token().unwrap();
        assert_ne!(first, second);
        assert!(first.starts_with(REFRESH_TOKEN_PREFIX));
        assert_eq!(first.len(), REFRESH_TOKEN_PREFIX.len() + 43);
        assert_eq!(refresh_token_hash(&first), refresh_token_hash(&first));
        assert_ne!(refresh_token_hash(&first), refresh_token_hash(&second));
        assert!(!refresh_token_hash(&first).contains(&first[4..]));
    }
}
