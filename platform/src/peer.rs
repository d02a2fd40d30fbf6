//! Clients for calls to peers: other runmesh services, and the services behind the edge.
//!
//! gRPC keeps one long-lived HTTP/2 connection per address, so a client of a plain ClusterIP
//! Service sticks to one pod. A [`PeerChannel`] instead resolves the peer's name (a headless
//! Kubernetes Service: one A record per ready pod) to every address, balances calls across them
//! (tonic's `Channel::balance_channel`, power of two choices) and re-resolves every
//! [`PeerOptions::resolve_interval`], inserting pods that appeared and removing those that left.
//! Its [`unary`](PeerChannel::unary) calls carry a deadline and are retried only on
//! `UNAVAILABLE`, with backoff, under a retry budget (tower's [`TpsBudget`]: retries may add at
//! most a fifth to the calls made, plus a small reserve), so a struggling peer is not buried
//! under retries.
//!
//! ```ignore
//! let peer = PeerChannel::connect(
//!     "http://user:50051",
//!     PeerOptions::default().with_credentials(issuer.credentials("user")),
//! )?;
//! let keys = peer
//!     .unary(GetJwksRequest {}, |channel, request| async move {
//!         UserInternalServiceClient::new(channel).get_jwks(request).await
//!     })
//!     .await?;
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder};
use http::Uri;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::transport::channel::Change;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};
use tower::retry::budget::{Budget, TpsBudget};

use crate::auth::ServiceCredentials;

/// Finds the addresses behind a peer's host name.
#[async_trait]
pub trait Resolve: Send + Sync + 'static {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The system resolver (`tokio::net::lookup_host`): every A/AAAA record of the name.
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsResolver;

#[async_trait]
impl Resolve for DnsResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// How a [`PeerChannel`] connects, balances and retries.
#[derive(Clone)]
pub struct PeerOptions {
    /// The deadline of a [`PeerChannel::unary`] call, all attempts included.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// How often the peer's name is resolved again.
    pub resolve_interval: Duration,
    pub keepalive_interval: Duration,
    pub keepalive_timeout: Duration,
    /// Attempts per call at most, the first included.
    pub max_attempts: u32,
    /// The first backoff before a retry; it doubles (with jitter) up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub retry_budget: RetryBudget,
    /// Attached to every [`PeerChannel::unary`] call (internal RPCs).
    pub credentials: Option<ServiceCredentials>,
    pub resolver: Arc<dyn Resolve>,
}

/// Parameters of tower's [`TpsBudget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryBudget {
    /// How long a call's deposit counts (clamped to 1–60 s).
    pub ttl: Duration,
    /// Retries allowed per second whatever the call rate.
    pub min_per_sec: u32,
    /// Retries allowed per call made (0.2: one retry per five calls).
    pub retry_ratio: f32,
}

impl Default for RetryBudget {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(10),
            min_per_sec: 10,
            retry_ratio: 0.2,
        }
    }
}

impl RetryBudget {
    fn build(self) -> TpsBudget {
        // TpsBudget panics outside these bounds.
        let ttl = self
            .ttl
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        let ratio = if self.retry_ratio.is_finite() {
            self.retry_ratio.clamp(0.0, 1000.0)
        } else {
            0.0
        };
        let min_per_sec = self.min_per_sec.min(i32::MAX as u32 - 1);
        TpsBudget::new(ttl, min_per_sec, ratio)
    }
}

impl Default for PeerOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            resolve_interval: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(10),
            max_attempts: 3,
            min_backoff: Duration::from_millis(25),
            max_backoff: Duration::from_millis(500),
            retry_budget: RetryBudget::default(),
            credentials: None,
            resolver: Arc::new(DnsResolver),
        }
    }
}

impl PeerOptions {
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_credentials(mut self, credentials: ServiceCredentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub fn with_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.resolver = resolver;
        self
    }
}

impl fmt::Debug for PeerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerOptions")
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("resolve_interval", &self.resolve_interval)
            .field("max_attempts", &self.max_attempts)
            .field("retry_budget", &self.retry_budget)
            .field("credentials", &self.credentials)
            .finish_non_exhaustive()
    }
}

/// The peer URL is not `http://host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid peer URL {url:?}: {why} (expected http://host:port)")]
pub struct PeerUrlError {
    url: String,
    why: &'static str,
}

/// Buffered changes between the resolver task and the balancer.
const CHANGE_BUFFER: usize = 64;

/// A balanced, re-resolving channel to every address of one peer. Cheap to clone.
#[derive(Clone)]
pub struct PeerChannel {
    channel: Channel,
    shared: Arc<Shared>,
}

struct Shared {
    uri: Uri,
    timeout: Duration,
    max_attempts: u32,
    backoff: ExponentialBuilder,
    budget: TpsBudget,
    credentials: Option<ServiceCredentials>,
    endpoints: watch::Receiver<Vec<SocketAddr>>,
}

impl fmt::Debug for PeerChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerChannel")
            .field("uri", &self.shared.uri)
            .field("endpoints", &*self.shared.endpoints.borrow())
            .finish_non_exhaustive()
    }
}

impl PeerChannel {
    /// A channel to every address of `url`'s host (`http://user:50051`), resolved now and every
    /// `resolve_interval` by a background task that ends with the last clone. Calls made before
    /// the first answer wait for it (within their deadline). Needs a Tokio runtime.
    pub fn connect(url: &str, options: PeerOptions) -> Result<Self, PeerUrlError> {
        let invalid = |why| PeerUrlError {
            url: url.to_owned(),
            why,
        };
        let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(invalid("only plaintext http:// is supported"));
        }
        if !matches!(uri.path(), "" | "/") {
            return Err(invalid("a peer URL has no path"));
        }
        let host = uri
            .host()
            .ok_or_else(|| invalid("no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(80);

        let (channel, changes) = Channel::balance_channel::<SocketAddr>(CHANGE_BUFFER);
        let (published, endpoints) = watch::channel(Vec::new());
        tokio::spawn(resolve_loop(Resolution {
            host,
            port,
            resolver: Arc::clone(&options.resolver),
            interval: options.resolve_interval,
            endpoint: EndpointTemplate::from(&options),
            changes,
            published,
        }));
        Ok(Self {
            channel,
            shared: Arc::new(Shared {
                uri,
                timeout: options.timeout,
                max_attempts: options.max_attempts.max(1),
                backoff: ExponentialBuilder::default()
                    .with_min_delay(options.min_backoff)
                    .with_max_delay(options.max_backoff)
                    .with_jitter()
                    .without_max_times(),
                budget: options.retry_budget.build(),
                credentials: options.credentials,
                endpoints,
            }),
        })
    }

    /// The balanced channel itself, for generated clients and proxies (streaming calls too).
    /// Calls made on it directly get neither deadlines nor retries nor credentials.
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    pub fn uri(&self) -> &Uri {
        &self.shared.uri
    }

    /// The addresses calls are balanced across, as last resolved.
    pub fn endpoints(&self) -> Vec<SocketAddr> {
        self.shared.endpoints.borrow().clone()
    }

    /// Watches [`endpoints`](Self::endpoints) change.
    pub fn watch_endpoints(&self) -> watch::Receiver<Vec<SocketAddr>> {
        self.shared.endpoints.clone()
    }

    /// One unary call: `call` sends `message` over the channel. Every attempt carries the time
    /// left until the deadline (`grpc-timeout`) and the credentials; an attempt answered
    /// `UNAVAILABLE` is retried after a backoff while attempts, the deadline and the retry
    /// budget allow. Any other answer is returned as it is. Past the deadline the call ends with
    /// `DEADLINE_EXCEEDED`.
    pub async fn unary<M, R, F, Fut>(&self, message: M, call: F) -> Result<Response<R>, Status>
    where
        M: Clone,
        F: FnMut(Channel, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        self.unary_within(self.shared.timeout, message, call).await
    }

    /// [`unary`](Self::unary) with its own deadline, `timeout` from now.
    pub async fn unary_within<M, R, F, Fut>(
        &self,
        timeout: Duration,
        message: M,
        mut call: F,
    ) -> Result<Response<R>, Status>
    where
        M: Clone,
        F: FnMut(Channel, Request<M>) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let shared = &self.shared;
        let deadline = Instant::now() + timeout;
        shared.budget.deposit();
        let mut backoff = shared.backoff.build();
        let mut attempt = 1;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.deadline_exceeded(timeout));
            }
            let mut request = Request::new(message.clone());
            request.set_timeout(remaining);
            if let Some(credentials) = &shared.credentials {
                credentials.attach(request.metadata_mut())?;
            }
            let answer = tokio::time::timeout(remaining, call(self.channel.clone(), request))
                .await
                .map_err(|_| self.deadline_exceeded(timeout))?;
            let status = match answer {
                Err(status) if status.code() == Code::Unavailable => status,
                other => return other,
            };
            if attempt >= shared.max_attempts {
                return Err(status);
            }
            let delay = backoff.next().unwrap_or(Duration::ZERO);
            if Instant::now() + delay >= deadline {
                return Err(status);
            }
            if !shared.budget.withdraw() {
                tracing::debug!(peer = %shared.uri, "retry budget spent: not retrying UNAVAILABLE");
                return Err(status);
            }
            tracing::debug!(
                peer = %shared.uri,
                attempt,
                ?delay,
                message = status.message(),
                "peer UNAVAILABLE: retrying"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    fn deadline_exceeded(&self, timeout: Duration) -> Status {
        Status::deadline_exceeded(format!(
            "{} gave no answer within {timeout:?}",
            self.shared.uri
        ))
    }
}

/// How each resolved address is connected.
#[derive(Clone, Copy)]
struct EndpointTemplate {
    connect_timeout: Duration,
    keepalive_interval: Duration,
    keepalive_timeout: Duration,
}

impl From<&PeerOptions> for EndpointTemplate {
    fn from(options: &PeerOptions) -> Self {
        Self {
            connect_timeout: options.connect_timeout,
            keepalive_interval: options.keepalive_interval,
            keepalive_timeout: options.keepalive_timeout,
        }
    }
}

impl EndpointTemplate {
    fn endpoint(self, addr: SocketAddr) -> Option<Endpoint> {
        let endpoint = Endpoint::from_shared(format!("http://{addr}")).ok()?;
        Some(
            endpoint
                .connect_timeout(self.connect_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(self.keepalive_interval)
                .keep_alive_timeout(self.keepalive_timeout),
        )
    }
}

struct Resolution {
    host: String,
    port: u16,
    resolver: Arc<dyn Resolve>,
    interval: Duration,
    endpoint: EndpointTemplate,
    changes: mpsc::Sender<Change<SocketAddr, Endpoint>>,
    published: watch::Sender<Vec<SocketAddr>>,
}

/// Resolves the peer's name every interval and tells the balancer what changed: new addresses
/// first, then the ones gone, so a rolling update never leaves it empty. A failed or empty
/// answer keeps the addresses known (a DNS hiccup must not drop every pod). Ends when the
/// channel is dropped.
async fn resolve_loop(resolution: Resolution) {
    let Resolution {
        host,
        port,
        resolver,
        interval,
        endpoint,
        changes,
        published,
    } = resolution;
    let mut current: BTreeSet<SocketAddr> = BTreeSet::new();
    let mut failing = false;
    loop {
        let lookup = tokio::time::timeout(
            interval.max(Duration::from_secs(1)),
            resolver.resolve(&host, port),
        )
        .await;
        match lookup {
            Ok(Ok(addrs)) if !addrs.is_empty() => {
                failing = false;
                let next: BTreeSet<SocketAddr> = addrs.into_iter().collect();
                if next != current {
                    for addr in next.difference(&current) {
                        let Some(endpoint) = endpoint.endpoint(*addr) else {
                            continue;
                        };
                        if changes.send(Change::Insert(*addr, endpoint)).await.is_err() {
                            return;
                        }
                    }
                    for addr in current.difference(&next) {
                        if changes.send(Change::Remove(*addr)).await.is_err() {
                            return;
                        }
                    }
                    tracing::info!(peer = %host, port, addresses = ?next, "peer addresses");
                    current = next;
                    published.send_replace(current.iter().copied().collect());
                }
            }
            other => {
                if !failing {
                    let error = match other {
                        Ok(Ok(_)) => "no address".to_owned(),
                        Ok(Err(error)) => error.to_string(),
                        Err(_) => "timed out".to_owned(),
                    };
                    tracing::warn!(peer = %host, port, %error, known = ?current, "cannot resolve the peer; keeping the addresses known");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = changes.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_plain_http_urls_without_paths() {
        for bad in [
            "https://user:50051",
            "user:50051",
            "http://user:50051/x",
            "nonsense",
        ] {
            assert!(
                PeerChannel::connect(bad, PeerOptions::default()).is_err(),
                "{bad}"
            );
        }
        assert!(PeerChannel::connect("http://user:50051", PeerOptions::default()).is_ok());
        assert!(PeerChannel::connect("http://[::1]:50051", PeerOptions::default()).is_ok());
    }

    #[test]
    fn out_of_range_budgets_do_not_panic() {
        let budget = RetryBudget {
            ttl: Duration::ZERO,
            min_per_sec: u32::MAX,
            retry_ratio: f32::NAN,
        };
        let _ = budget.build();
    }
}
