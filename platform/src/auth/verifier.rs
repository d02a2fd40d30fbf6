use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use jsonwebtoken::{Algorithm, Validation};
use parking_lot::RwLock;
use tokio::time::Instant;

use super::keys::{VerificationKey, usable_keys};
use super::{AccessClaims, AuthError, Caller, KeySource};

/// The signature algorithms a verifier may be pinned to. Symmetric ones are deliberately absent:
/// services only ever hold public keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// Ed25519 signatures, what svc-user signs with.
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
}

impl SigningAlgorithm {
    fn jwt_algorithm(self) -> Algorithm {
        match self {
            Self::EdDSA => Algorithm::EdDSA,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        })
    }
}

impl FromStr for SigningAlgorithm {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        match name {
            "EdDSA" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            other => anyhow::bail!("unsupported signing algorithm {other:?} (use EdDSA or ES256)"),
        }
    }
}

/// What a [`TokenVerifier`] accepts and how it caches keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// The only accepted `iss`.
    pub issuer: String,
    /// The `aud` this service answers to.
    pub audience: String,
    /// Pinned algorithms; the token header's `alg` is checked against these, never trusted.
    pub algorithms: Vec<SigningAlgorithm>,
    /// Clock skew tolerated on `exp` and `nbf` (whole seconds).
    pub leeway: Duration,
    /// How long a fetched JWKS is used before it is fetched again.
    pub keys_ttl: Duration,
    /// The least time between two fetches, so tokens with made-up `kid`s cannot hammer the
    /// key source.
    pub min_refresh_interval: Duration,
    /// How long one fetch may take.
    pub fetch_timeout: Duration,
}

impl VerifierConfig {
    /// EdDSA only, 10 s leeway, keys cached for 5 minutes, at most one fetch per 30 s.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            algorithms: vec![SigningAlgorithm::EdDSA],
            leeway: Duration::from_secs(10),
            keys_ttl: Duration::from_secs(300),
            min_refresh_interval: Duration::from_secs(30),
            fetch_timeout: Duration::from_secs(5),
        }
    }
}

/// Verified tokens remembered at most, and for how long at most (a token also leaves when it
/// expires, or when the keys change).
const VERIFIED_TOKENS: u64 = 65_536;
const VERIFIED_TOKEN_TTL: Duration = Duration::from_secs(300);

/// Verifies access tokens locally against the issuer's JWKS, which it caches: fetched on first
/// use, again when older than `keys_ttl`, and when a token names an unknown `kid` (a key
/// rotation) but never more often than `min_refresh_interval`. When a fetch fails, the keys
/// already held stay in use.
///
/// A client sends the same token with every call until it expires, and checking an Ed25519
/// signature costs tens of microseconds, so tokens that verified are remembered (by their exact
/// text) with their expiry: a repeat is checked against the clock only. A remembered token
/// counts only while the keys it was checked against are fresh and no fetch replaced them, so a
/// key withdrawn from the JWKS stops its tokens as soon as the verifier would learn of it.
pub struct TokenVerifier {
    config: VerifierConfig,
    source: Arc<dyn KeySource>,
    validations: HashMap<Algorithm, Validation>,
    cache: RwLock<KeyCache>,
    /// Held while fetching, so concurrent calls wait for one fetch instead of each starting one.
    refresh: tokio::sync::Mutex<()>,
    verified: moka::sync::Cache<Arc<str>, Arc<VerifiedToken>>,
}

/// A token that passed every check, and the window in which it stays valid.
struct VerifiedToken {
    caller: Caller,
    not_before: u64,
    expires_at: u64,
    /// The key set it was verified against ([`KeyCache::generation`]).
    key_generation: u64,
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, VerificationKey>,
    /// Bumped with every fetch.
    generation: u64,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
}

impl KeyCache {
    fn is_fresh(&self, now: Instant, ttl: Duration) -> bool {
        self.fetched_at
            .is_some_and(|fetched| now.duration_since(fetched) < ttl)
    }

    fn may_fetch(&self, now: Instant, min_interval: Duration) -> bool {
        self.last_attempt
            .is_none_or(|attempt| now.duration_since(attempt) >= min_interval)
    }
}

impl TokenVerifier {
    pub fn new(config: VerifierConfig, source: Arc<dyn KeySource>) -> anyhow::Result<Self> {
        ensure!(
            !config.issuer.is_empty(),
            "the token issuer must not be empty"
        );
        ensure!(
            !config.audience.is_empty(),
            "the token audience must not be empty"
        );
        ensure!(
            !config.algorithms.is_empty(),
            "at least one signing algorithm must be accepted"
        );
        let validations = config
            .algorithms
            .iter()
            .map(|algorithm| {
                let algorithm = algorithm.jwt_algorithm();
                (algorithm, validation(&config, algorithm))
            })
            .collect();
        Ok(Self {
            config,
            source,
            validations,
            cache: RwLock::new(KeyCache::default()),
            refresh: tokio::sync::Mutex::new(()),
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_TOKENS)
                .time_to_live(VERIFIED_TOKEN_TTL)
                .build(),
        })
    }

    pub fn config(&self) -> &VerifierConfig {
        &self.config
    }

    /// Checks signature, algorithm, `iss`, `aud`, `exp`, `nbf` and the presence of every claim.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        if let Some(verified) = self.verified.get(token) {
            if self.fresh_key_generation() == Some(verified.key_generation) {
                let now = jsonwebtoken::get_current_timestamp();
                let leeway = self.config.leeway.as_secs();
                if verified.expires_at.saturating_add(leeway) < now {
                    return Err(AuthError::Expired);
                }
                if verified.not_before > now.saturating_add(leeway) {
                    return Err(AuthError::NotYetValid);
                }
                return Ok(verified.caller.clone());
            }
            self.verified.invalidate(token);
        }
        let key_generation = self.cache.read().generation;
        let (caller, not_before, expires_at) = self.verify_signed(token).await?;
        self.verified.insert(
            Arc::from(token),
            Arc::new(VerifiedToken {
                caller: caller.clone(),
                not_before,
                expires_at,
                key_generation,
            }),
        );
        Ok(caller)
    }

    /// The full check of a token not seen before: the caller, `nbf` and `exp`.
    async fn verify_signed(&self, token: &str) -> Result<(Caller, u64, u64), AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
        if header.crit.as_ref().is_some_and(|crit| !crit.is_empty()) {
            return Err(AuthError::UnsupportedCriticalHeader);
        }
        let validation = self
            .validations
            .get(&header.alg)
            .ok_or(AuthError::AlgorithmNotAllowed)?;
        let kid = header.kid.ok_or(AuthError::MissingKeyId)?;
        let key = self.key(&kid).await?;
        if key.algorithm != header.alg {
            return Err(AuthError::AlgorithmNotAllowed);
        }

        // Registered claims are validated on a loose map first, so an expired token reads as
        // expired even when it also lacks a runmesh claim.
        let token_data = jsonwebtoken::decode::<serde_json::Value>(token, &key.key, validation)
            .map_err(|err| AuthError::from_jwt(&err))?;
        let claims: AccessClaims = serde_json::from_value(token_data.claims)
            .map_err(|err| AuthError::MalformedClaims(err.to_string()))?;
        for (name, value) in [
            ("sub", &claims.sub),
            ("sid", &claims.sid),
            ("jti", &claims.jti),
        ] {
            if value.is_empty() {
                return Err(AuthError::MissingClaim(name.to_string()));
            }
        }
        let (not_before, expires_at) = (claims.nbf, claims.exp);
        Ok((Caller::from(claims), not_before, expires_at))
    }

    /// Fetches the JWKS now, e.g. at start so the first call does not wait for it.
    pub async fn refresh_keys(&self) -> anyhow::Result<()> {
        let _refreshing = self.refresh.lock().await;
        self.fetch_keys().await
    }

    async fn key(&self, kid: &str) -> Result<VerificationKey, AuthError> {
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }

        let _refreshing = self.refresh.lock().await;
        // Whoever held the lock before may just have fetched what we need.
        if let Some(key) = self.fresh_key(kid) {
            return Ok(key);
        }
        let (may_fetch, ever_fetched) = {
            let cache = self.cache.read();
            (
                cache.may_fetch(Instant::now(), self.config.min_refresh_interval),
                cache.fetched_at.is_some(),
            )
        };
        let fetch_failed = may_fetch && self.fetch_keys().await.is_err();

        match self.cache.read().keys.get(kid) {
            Some(key) => Ok(key.clone()),
            None if fetch_failed || (!ever_fetched && !may_fetch) => {
                Err(AuthError::KeysUnavailable)
            }
            None => {
                tracing::debug!(kid, "token names an unknown signing key");
                Err(AuthError::UnknownKey)
            }
        }
    }

    /// The generation of the keys held, while they are fresh: a remembered token counts only
    /// while the keys it was checked against are still the current, fresh ones.
    fn fresh_key_generation(&self) -> Option<u64> {
        let cache = self.cache.read();
        cache
            .is_fresh(Instant::now(), self.config.keys_ttl)
            .then_some(cache.generation)
    }

    fn fresh_key(&self, kid: &str) -> Option<VerificationKey> {
        let cache = self.cache.read();
        if cache.is_fresh(Instant::now(), self.config.keys_ttl) {
            cache.keys.get(kid).cloned()
        } else {
            None
        }
    }

    async fn fetch_keys(&self) -> anyhow::Result<()> {
        self.cache.write().last_attempt = Some(Instant::now());
        let fetched = tokio::time::timeout(self.config.fetch_timeout, self.source.fetch())
            .await
            .context("fetching the signing keys timed out")
            .and_then(|fetched| fetched);
        let jwks = match fetched {
            Ok(jwks) => jwks,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot fetch the signing keys; keeping the cached ones");
                return Err(err);
            }
        };
        let allowed: Vec<Algorithm> = self
            .config
            .algorithms
            .iter()
            .map(|algorithm| algorithm.jwt_algorithm())
            .collect();
        let keys = usable_keys(&jwks, &allowed);
        if keys.is_empty() {
            tracing::warn!("the JWKS holds no usable signing key; every token will be rejected");
        }
        let mut cache = self.cache.write();
        cache.keys = keys;
        cache.generation += 1;
        cache.fetched_at = Some(Instant::now());
        Ok(())
    }
}

fn validation(config: &VerifierConfig, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&[&config.issuer]);
    validation.set_audience(&[&config.audience]);
    validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.leeway = config.leeway.as_secs();
    validation
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_names_parse() {
        assert_eq!(
            "EdDSA".parse::<SigningAlgorithm>().ok(),
            Some(SigningAlgorithm::EdDSA)
        );
        assert_eq!(
            "ES256".parse::<SigningAlgorithm>().ok(),
            Some(SigningAlgorithm::ES256)
        );
        assert!("HS256".parse::<SigningAlgorithm>().is_err());
        assert!("none".parse::<SigningAlgorithm>().is_err());
    }
}
