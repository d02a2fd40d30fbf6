//! Dependency probes that decide whether a service reports SERVING.

use std::time::Duration;

/// Something a service needs in order to answer: its database, the cache, the event bus.
/// The readiness loop calls `check` periodically; a service is SERVING only while all of its
/// probes pass.
#[async_trait::async_trait]
pub trait Probe: Send + Sync {
    /// Short name for logs, e.g. `postgres`, `redis`, `kafka`.
    fn name(&self) -> &str;
    /// `Ok` when the dependency answered within `timeout`.
    async fn check(&self, timeout: Duration) -> Result<(), String>;
}
