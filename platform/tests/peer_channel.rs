//! PeerChannel against real tonic servers on loopback ports: calls balance across every address
//! the resolver gives, a removed address stops getting calls, UNAVAILABLE is retried (within the
//! retry budget) and other codes are not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use runmesh_platform::peer::{PeerChannel, PeerOptions, Resolve, RetryBudget};
use runmesh_proto::runmesh::testing::v1::probe_service_client::ProbeServiceClient;
use runmesh_proto::runmesh::testing::v1::probe_service_server::{ProbeService, ProbeServiceServer};
use runmesh_proto::runmesh::testing::v1::{SleepRequest, SleepResponse};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic::transport::Server;
use tonic::{Code, Request, Response, Status};

/// Answers with its own name, or with the next scripted status while any is left.
#[derive(Clone)]
struct Replica {
    name: &'static str,
    calls: Arc<AtomicUsize>,
    script: Arc<Mutex<VecDeque<Code>>>,
}

#[tonic::async_trait]
impl ProbeService for Replica {
    async fn sleep(&self, _: Request<SleepRequest>) -> Result<Response<SleepResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(code) = self.script.lock().pop_front() {
            return Err(Status::new(code, "scripted"));
        }
        Ok(Response::new(SleepResponse {
            caller_subject: self.name.to_owned(),
        }))
    }
}

struct Running {
    addr: SocketAddr,
    replica: Replica,
    _stop: DropGuard,
}

impl Running {
    async fn start(name: &'static str, script: &[Code]) -> Self {
        let replica = Replica {
            name,
            calls: Arc::default(),
            script: Arc::new(Mutex::new(script.iter().copied().collect())),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(
            Server::builder()
                .add_service(ProbeServiceServer::new(replica.clone()))
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(listener),
                    stop.clone().cancelled_owned(),
                ),
        );
        Self {
            addr,
            replica,
            _stop: stop.drop_guard(),
        }
    }

    fn calls(&self) -> usize {
        self.replica.calls.load(Ordering::SeqCst)
    }
}

/// A name whose addresses the test sets, as DNS answers for a headless Service's pods.
#[derive(Default)]
struct Pods {
    addrs: Mutex<Vec<SocketAddr>>,
    lookups: AtomicUsize,
}

impl Pods {
    fn set(&self, addrs: &[SocketAddr]) {
        *self.addrs.lock() = addrs.to_vec();
    }
}

#[async_trait]
impl Resolve for Pods {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        assert_eq!((host, port), ("race.runmesh.svc.cluster.local", 50051));
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(self.addrs.lock().clone())
    }
}

fn options(pods: &Arc<Pods>) -> PeerOptions {
    let mut options = PeerOptions::default().with_resolver(Arc::clone(pods) as Arc<dyn Resolve>);
    options.resolve_interval = Duration::from_millis(50);
    options.min_backoff = Duration::from_millis(1);
    options.max_backoff = Duration::from_millis(5);
    options.timeout = Duration::from_secs(20);
    options
}

const URL: &str = "http://race.runmesh.svc.cluster.local:50051";

async fn call(peer: &PeerChannel) -> Result<String, Status> {
    peer.unary(
        SleepRequest { delay_ms: 0 },
        |channel, request| async move { ProbeServiceClient::new(channel).sleep(request).await },
    )
    .await
    .map(|response| response.into_inner().caller_subject)
}

/// Waits (on the channel's own notifications, not the clock) until the balancer's addresses
/// are exactly `want`.
async fn wait_for_endpoints(peer: &PeerChannel, want: &[SocketAddr]) {
    let mut want = want.to_vec();
    want.sort();
    peer.watch_endpoints()
        .wait_for(|addrs| *addrs == want)
        .await
        .unwrap();
}

#[tokio::test]
async fn calls_balance_across_every_address_and_follow_removals() {
    let a = Running::start("a", &[]).await;
    let b = Running::start("b", &[]).await;
    let pods = Arc::new(Pods::default());
    pods.set(&[a.addr, b.addr]);
    let peer = PeerChannel::connect(URL, options(&pods)).unwrap();
    wait_for_endpoints(&peer, &[a.addr, b.addr]).await;

    // Both pods get calls (p2c picks at random: 200 calls all on one would be a broken balancer).
    for _ in 0..200 {
        call(&peer).await.unwrap();
    }
    assert!(
        a.calls() > 0 && b.calls() > 0,
        "a {} b {}",
        a.calls(),
        b.calls()
    );
    assert_eq!(a.calls() + b.calls(), 200);

    // b's pod goes away: once re-resolved, every call goes to a.
    pods.set(&[a.addr]);
    wait_for_endpoints(&peer, &[a.addr]).await;
    let before = b.calls();
    for _ in 0..50 {
        assert_eq!(call(&peer).await.unwrap(), "a");
    }
    assert_eq!(b.calls(), before);

    // A new pod appears and is used.
    let c = Running::start("c", &[]).await;
    pods.set(&[a.addr, c.addr]);
    wait_for_endpoints(&peer, &[a.addr, c.addr]).await;
    for _ in 0..200 {
        call(&peer).await.unwrap();
    }
    assert!(c.calls() > 0);
}

#[tokio::test]
async fn a_failed_lookup_keeps_the_known_addresses() {
    let a = Running::start("a", &[]).await;
    let pods = Arc::new(Pods::default());
    pods.set(&[a.addr]);
    let peer = PeerChannel::connect(URL, options(&pods)).unwrap();
    wait_for_endpoints(&peer, &[a.addr]).await;

    // An empty answer (all pods unready, a DNS hiccup) does not empty the balancer.
    pods.set(&[]);
    let lookups = pods.lookups.load(Ordering::SeqCst);
    while pods.lookups.load(Ordering::SeqCst) < lookups + 3 {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(peer.endpoints(), [a.addr]);
    assert_eq!(call(&peer).await.unwrap(), "a");
}

#[tokio::test]
async fn unavailable_is_retried() {
    let a = Running::start("a", &[Code::Unavailable, Code::Unavailable]).await;
    let pods = Arc::new(Pods::default());
    pods.set(&[a.addr]);
    let peer = PeerChannel::connect(URL, options(&pods)).unwrap();

    assert_eq!(call(&peer).await.unwrap(), "a");
    assert_eq!(a.calls(), 3);
}

#[tokio::test]
async fn other_codes_are_not_retried() {
    for code in [
        Code::Internal,
        Code::DeadlineExceeded,
        Code::ResourceExhausted,
        Code::Unknown,
        Code::PermissionDenied,
    ] {
        let a = Running::start("a", &[code]).await;
        let pods = Arc::new(Pods::default());
        pods.set(&[a.addr]);
        let peer = PeerChannel::connect(URL, options(&pods)).unwrap();

        assert_eq!(call(&peer).await.unwrap_err().code(), code);
        assert_eq!(a.calls(), 1, "{code:?}");
    }
}

#[tokio::test]
async fn retries_stop_at_the_attempt_limit() {
    let a = Running::start("a", &[Code::Unavailable; 10]).await;
    let pods = Arc::new(Pods::default());
    pods.set(&[a.addr]);
    let mut options = options(&pods);
    options.max_attempts = 4;
    let peer = PeerChannel::connect(URL, options).unwrap();

    assert_eq!(call(&peer).await.unwrap_err().code(), Code::Unavailable);
    assert_eq!(a.calls(), 4);
}

#[tokio::test]
async fn an_empty_retry_budget_allows_no_retry() {
    let a = Running::start("a", &[Code::Unavailable; 10]).await;
    let pods = Arc::new(Pods::default());
    pods.set(&[a.addr]);
    let mut options = options(&pods);
    options.retry_budget = RetryBudget {
        ttl: Duration::from_secs(10),
        min_per_sec: 0,
        retry_ratio: 0.0,
    };
    let peer = PeerChannel::connect(URL, options).unwrap();

    for _ in 0..3 {
        assert_eq!(call(&peer).await.unwrap_err().code(), Code::Unavailable);
    }
    assert_eq!(a.calls(), 3);
}

#[tokio::test]
async fn a_peer_that_never_answers_ends_in_deadline_exceeded() {
    // A name with no address at all: calls wait for one until the deadline.
    let pods = Arc::new(Pods::default());
    let mut options = options(&pods);
    options.timeout = Duration::from_millis(200);
    let peer = PeerChannel::connect(URL, options).unwrap();

    assert_eq!(
        call(&peer).await.unwrap_err().code(),
        Code::DeadlineExceeded
    );
}
