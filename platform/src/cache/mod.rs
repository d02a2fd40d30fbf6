//! The small surface services need from Redis: atomic scripts, counters, sorted sets, TTL keys
//! and rate limits. [`RedisCache`] (fred) backs it in per-service mode, [`MemoryCache`] in
//! embedded mode. Redis only holds what can be rebuilt from the database.
//!
//! Atomic work that must read and write several keys at once is an [`AtomicScript`]: a Lua body
//! for Redis and a Rust twin over [`MemoryState`] for embedded mode, so both backends keep the
//! same semantics (the twin runs under one lock, as Lua runs alone in Redis).

mod memory;
mod redis;
mod scripts;

use std::sync::Arc;
use std::time::Duration;

pub use memory::{MemoryCache, MemoryState};
pub use redis::RedisCache;
pub use scripts::AtomicScript;

use scripts::{FIXED_WINDOW_RATE_LIMIT, INCR_WITH_TTL};

/// What a cache call can fail with. Callers treat every variant as "the cache cannot be trusted
/// right now": fall back to the database or answer UNAVAILABLE, never guess.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    #[error("cache script {script} failed: {message}")]
    Script {
        script: &'static str,
        message: String,
    },
    #[error("unexpected cache reply: {0}")]
    Reply(String),
}

/// A value a script returns (the subset of Redis replies Lua scripts produce).
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptValue {
    Nil,
    Int(i64),
    Text(String),
    Array(Vec<ScriptValue>),
}

impl ScriptValue {
    pub fn as_int(&self) -> Option<i64> {
        match self {
            ScriptValue::Int(value) => Some(*value),
            ScriptValue::Text(text) => text.parse().ok(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[ScriptValue]> {
        match self {
            ScriptValue::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// The answer of [`Cache::rate_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitDecision {
    pub allowed: bool,
    /// Attempts left in the current window after this one.
    pub remaining: u64,
    /// When the window resets; what a refused caller should wait.
    pub retry_after: Duration,
}

pub type SharedCache = Arc<dyn Cache>;

#[async_trait::async_trait]
pub trait Cache: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError>;
    /// Sets `key` only when it does not exist; `true` when this call set it.
    async fn set_if_absent(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, CacheError>;
    /// `true` when the key existed.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;
    /// Adds `by` to the counter at `key` (created at 0); `ttl` is applied when the counter is new.
    async fn incr(&self, key: &str, by: i64, ttl: Option<Duration>) -> Result<i64, CacheError> {
        let value = self
            .run_script(&INCR_WITH_TTL, &[key], &[by.to_string(), ttl_ms(ttl)])
            .await?;
        value
            .as_int()
            .ok_or_else(|| CacheError::Reply(format!("{value:?}")))
    }
    /// Sets a member's score in a sorted set.
    async fn zset(&self, key: &str, member: &str, score: f64) -> Result<(), CacheError>;
    /// Adds to a member's score; returns the new score.
    async fn zincr(&self, key: &str, member: &str, by: f64) -> Result<f64, CacheError>;
    async fn zscore(&self, key: &str, member: &str) -> Result<Option<f64>, CacheError>;
    /// 0-based rank counting from the highest score.
    async fn zrank_desc(&self, key: &str, member: &str) -> Result<Option<u64>, CacheError>;
    /// Members from the highest score down, skipping `offset`, at most `count`.
    async fn ztop(
        &self,
        key: &str,
        offset: usize,
        count: usize,
    ) -> Result<Vec<(String, f64)>, CacheError>;
    /// Fixed-window rate limit: at most `limit` attempts per `window` for `key`.
    async fn rate_limit(
        &self,
        key: &str,
        limit: u64,
        window: Duration,
    ) -> Result<RateLimitDecision, CacheError> {
        let reply = self
            .run_script(
                &FIXED_WINDOW_RATE_LIMIT,
                &[key],
                &[limit.to_string(), window.as_millis().to_string()],
            )
            .await?;
        rate_limit_decision(&reply, limit)
    }
    /// Runs `script` atomically with `keys` (namespaced like every other key) and `args`.
    async fn run_script(
        &self,
        script: &AtomicScript,
        keys: &[&str],
        args: &[String],
    ) -> Result<ScriptValue, CacheError>;
    async fn ping(&self) -> Result<(), CacheError>;
}

/// Connects to Redis when `redis_url` is set, else an in-memory cache. Every key is prefixed with
/// `namespace:` so services (and tests) sharing one Redis never collide.
pub async fn connect(redis_url: Option<&str>, namespace: &str) -> Result<SharedCache, CacheError> {
    match redis_url {
        Some(url) => Ok(Arc::new(RedisCache::connect(url, namespace).await?)),
        None => Ok(Arc::new(MemoryCache::new(namespace))),
    }
}

/// A readiness probe over any cache.
pub fn probe(cache: SharedCache, name: &'static str) -> Arc<dyn crate::health::Probe> {
    Arc::new(CacheProbe { cache, name })
}

struct CacheProbe {
    cache: SharedCache,
    name: &'static str,
}

#[async_trait::async_trait]
impl crate::health::Probe for CacheProbe {
    fn name(&self) -> &str {
        self.name
    }

    async fn check(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.cache.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

fn ttl_ms(ttl: Option<Duration>) -> String {
    ttl.map_or(0, |ttl| ttl.as_millis().max(1)).to_string()
}

fn rate_limit_decision(reply: &ScriptValue, limit: u64) -> Result<RateLimitDecision, CacheError> {
    let parts: Vec<i64> = reply
        .as_array()
        .map(|items| items.iter().filter_map(ScriptValue::as_int).collect())
        .unwrap_or_default();
    let [allowed, count, ttl_ms] = parts[..] else {
        return Err(CacheError::Reply(format!("rate limit reply {reply:?}")));
    };
    Ok(RateLimitDecision {
        allowed: allowed == 1,
        remaining: limit.saturating_sub(count.max(0).unsigned_abs()),
        retry_after: Duration::from_millis(ttl_ms.max(0).unsigned_abs()),
    })
}
