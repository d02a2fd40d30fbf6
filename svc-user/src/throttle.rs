//! Failed sign-in attempts, limited per account and per client address.
//!
//! Each failure is counted in a fixed window. When a counter reaches its limit, a block is set
//! until the window ends; while it holds, attempts are refused before any password is checked,
//! so at most `limit` passwords per window are ever tried against an account (or from an
//! address). Keys are derived from the normalised email whether or not the account exists, so
//! blocking reveals nothing about which emails are registered.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use runmesh_platform::cache::{CacheError, SharedCache};
use sha2::{Digest as _, Sha256};

use crate::domain::Email;
use crate::error::Error;

/// The two things a failed sign-in is counted against.
#[derive(Debug, Clone, Copy)]
enum Scope {
    Account,
    Client,
}

impl Scope {
    const fn name(self) -> &'static str {
        match self {
            Self::Account => "account",
            Self::Client => "client",
        }
    }
}

pub struct SignInThrottle {
    cache: SharedCache,
    per_account: u64,
    per_client: u64,
    window: Duration,
}

impl SignInThrottle {
    pub fn new(cache: SharedCache, per_account: u64, per_client: u64, window: Duration) -> Self {
        Self {
            cache,
            per_account,
            per_client,
            window,
        }
    }

    /// `TooManyAttempts` while the account or the client is blocked.
    pub async fn check(&self, email: &Email, client: &str) -> Result<(), Error> {
        for (scope, subject) in [(Scope::Account, email.as_str()), (Scope::Client, client)] {
            if let Some(retry_after) = self.blocked_for(scope, subject).await? {
                return Err(Error::TooManyAttempts { retry_after });
            }
        }
        Ok(())
    }

    /// Counts a failed attempt; blocks the account or client whose limit it reached. Returns
    /// the error for this attempt: `TooManyAttempts` when the limit is already exceeded,
    /// otherwise `InvalidCredentials`.
    pub async fn record_failure(&self, email: &Email, client: &str) -> Result<Error, Error> {
        let mut exceeded = None;
        for (scope, subject, limit) in [
            (Scope::Account, email.as_str(), self.per_account),
            (Scope::Client, client, self.per_client),
        ] {
            let decision = self
                .cache
                .rate_limit(&key("failures", scope, subject), limit, self.window)
                .await
                .map_err(Error::RateLimiterUnavailable)?;
            if !decision.allowed || decision.remaining == 0 {
                self.block(scope, subject, decision.retry_after).await?;
                tracing::info!(
                    scope = scope.name(),
                    retry_after_s = decision.retry_after.as_secs(),
                    "sign-in blocked after repeated failures"
                );
            }
            if !decision.allowed {
                exceeded = Some(decision.retry_after);
            }
        }
        Ok(match exceeded {
            Some(retry_after) => Error::TooManyAttempts { retry_after },
            None => Error::InvalidCredentials,
        })
    }

    async fn blocked_for(&self, scope: Scope, subject: &str) -> Result<Option<Duration>, Error> {
        let Some(value) = self
            .cache
            .get(&key("blocked", scope, subject))
            .await
            .map_err(Error::RateLimiterUnavailable)?
        else {
            return Ok(None);
        };
        let until_ms = std::str::from_utf8(&value)
            .ok()
            .and_then(|text| text.parse::<u64>().ok())
            .ok_or_else(|| {
                Error::RateLimiterUnavailable(CacheError::Reply(
                    "a sign-in block holds no deadline".to_owned(),
                ))
            })?;
        let remaining = until_ms.saturating_sub(now_ms());
        Ok((remaining > 0).then(|| Duration::from_millis(remaining)))
    }

    async fn block(&self, scope: Scope, subject: &str, duration: Duration) -> Result<(), Error> {
        let duration = duration.max(Duration::from_secs(1));
        let until_ms = now_ms().saturating_add(duration.as_millis() as u64);
        self.cache
            .set(
                &key("blocked", scope, subject),
                until_ms.to_string().as_bytes(),
                Some(duration),
            )
            .await
            .map_err(Error::RateLimiterUnavailable)
    }
}

/// `signin:<kind>:<scope>:<hash>`: hashed so that emails and addresses do not sit in Redis in
/// clear text.
fn key(kind: &str, scope: Scope, subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("signin:{kind}:{}:{hex}", scope.name())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::sync::Arc;

    use runmesh_platform::cache::MemoryCache;

    use super::*;

    fn throttle() -> SignInThrottle {
        SignInThrottle::new(
            Arc::new(MemoryCache::new("test")),
            3,
            5,
            Duration::from_secs(60),
        )
    }

    #[tokio::test]
    async fn blocks_an_account_after_its_limit() {
        let throttle = throttle();
        let email = Email::parse("ada@example.org").unwrap();
        for _ in 0..2 {
            throttle.check(&email, "10.0.0.1").await.unwrap();
            let err = throttle.record_failure(&email, "10.0.0.1").await.unwrap();
            assert!(matches!(err, Error::InvalidCredentials));
        }
        throttle.check(&email, "10.0.0.1").await.unwrap();
        let third = throttle.record_failure(&email, "10.0.0.1").await.unwrap();
        assert!(
            matches!(third, Error::InvalidCredentials),
            "the third try was a real try"
        );

        let blocked = throttle.check(&email, "10.0.0.2").await.unwrap_err();
        let Error::TooManyAttempts { retry_after } = blocked else {
            panic!("expected a block, got {blocked:?}");
        };
        assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(60));

        let other = Email::parse("grace@example.org").unwrap();
        throttle.check(&other, "10.0.0.2").await.unwrap();
    }

    #[tokio::test]
    async fn blocks_a_client_across_accounts() {
        let throttle = throttle();
        for n in 0..5 {
            let email = Email::parse(&format!("runner{n}@example.org")).unwrap();
            throttle.check(&email, "10.0.0.9").await.unwrap();
            throttle.record_failure(&email, "10.0.0.9").await.unwrap();
        }
        let fresh = Email::parse("fresh@example.org").unwrap();
        assert!(matches!(
            throttle.check(&fresh, "10.0.0.9").await,
            Err(Error::TooManyAttempts { .. })
        ));
        throttle.check(&fresh, "10.0.0.10").await.unwrap();
    }

    #[test]
    fn keys_do_not_hold_the_email() {
        let key = key("failures", Scope::Account, "ada@example.org");
        assert!(!key.contains("ada"));
        assert!(key.starts_with("signin:failures:account:"));
    }
}
