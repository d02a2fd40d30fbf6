//! Password hashing with argon2id at OWASP's parameters, off the async runtime.

use std::sync::Arc;

use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::Semaphore;

use crate::domain::{NewPassword, PasswordAttempt};

/// OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane. Checked at
/// compile time.
const PARAMS: Params = match Params::new(19 * 1024, 2, 1, None) {
    Ok(params) => params,
    Err(_) => panic!("invalid argon2 parameters"),
};

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("argon2: {0}")]
    Argon2(String),
    #[error("the hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    #[error("the password hasher is shut down")]
    Closed,
}

/// Hashes and verifies passwords on tokio's blocking pool. At most `concurrency` hashes run at
/// once (each takes 19 MiB and a core for tens of milliseconds), so a burst of sign-ins queues
/// instead of exhausting memory.
#[derive(Clone)]
pub struct PasswordHasher {
    /// The hash an unknown account is "verified" against, so that it costs what a wrong
    /// password costs.
    dummy_hash: Arc<str>,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    pub async fn new(concurrency: usize) -> Result<Self, HashError> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let dummy_secret = uuid::Uuid::new_v4().to_string();
        let dummy_hash = run_blocking(&permits, move || hash(dummy_secret.as_bytes())).await?;
        Ok(Self {
            dummy_hash: dummy_hash.into(),
            permits,
        })
    }

    /// An argon2id PHC string with a fresh random salt.
    pub async fn hash(&self, password: &NewPassword) -> Result<String, HashError> {
        let password = password.expose().to_owned();
        run_blocking(&self.permits, move || hash(password.as_bytes())).await
    }

    /// Whether `attempt` matches `stored`. Without a stored hash (no such account) the attempt is
    /// checked against a dummy hash and refused, with the same work as a wrong password.
    pub async fn verify(
        &self,
        attempt: &PasswordAttempt,
        stored: Option<&str>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let hash = stored.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let attempt = attempt.expose().to_owned();
        let matches = run_blocking(&self.permits, move || {
            Ok(argon2()
                .verify_password(attempt.as_bytes(), hash.as_str())
                .is_ok())
        })
        .await?;
        Ok(known && matches)
    }
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

fn hash(password: &[u8]) -> Result<String, HashError> {
    argon2()
        .hash_password(password)
        .map(|hash| hash.to_string())
        .map_err(|err| HashError::Argon2(err.to_string()))
}

async fn run_blocking<T: Send + 'static>(
    permits: &Semaphore,
    work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
) -> Result<T, HashError> {
    let _permit = permits.acquire().await.map_err(|_| HashError::Closed)?;
    tokio::task::spawn_blocking(work).await?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[tokio::test]
    async fn hashes_with_owasp_parameters_and_verifies() {
        let hasher = PasswordHasher::new(2).await.unwrap();
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        let stored = hasher.hash(&password).await.unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );

        let right = PasswordAttempt::parse("correct horse battery staple").unwrap();
        let wrong = PasswordAttempt::parse("correct horse battery stable").unwrap();
        assert!(hasher.verify(&right, Some(&stored)).await.unwrap());
        assert!(!hasher.verify(&wrong, Some(&stored)).await.unwrap());
        assert!(!hasher.verify(&right, None).await.unwrap());
    }

    #[tokio::test]
    async fn salts_differ() {
        let hasher = PasswordHasher::new(1).await.unwrap();
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        assert_ne!(
            hasher.hash(&password).await.unwrap(),
            hasher.hash(&password).await.unwrap()
        );
    }
}
