//! Prints svc-user's figures: token verifications per second on one core, sign-ins per second
//! (argon2-bound, all cores), and the latency percentiles of `GetMe` over gRPC.
//!
//! `cargo run --release -p runmesh-svc-user --example user_bench`
//!
//! Embedded mode (SQLite in a temporary directory, in-memory cache) unless
//! `RUNMESH_DATABASE_URL` (an empty PostgreSQL database) and `RUNMESH_REDIS_URL` are set. Every
//! loop is bounded in count and time; everything runs on 127.0.0.1.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runmesh_platform::auth::{AuthLayer, TokenVerifier, VerifierConfig};
use runmesh_platform::config::Settings;
use runmesh_platform::server::GrpcServer;
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use runmesh_svc_user::{UserConfig, UserModule};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

const PASSWORD: &str = "Bench marks on the track, 12x400";
const VERIFICATIONS: usize = 200_000;
const SIGN_INS: usize = 200;
const SIGN_IN_CONCURRENCY: usize = 8;
const GET_ME_CALLS: usize = 20_000;
const GET_ME_CONCURRENCY: usize = 16;
const TIME_LIMIT: Duration = Duration::from_secs(60);

fn main() -> anyhow::Result<()> {
    // Token verification is measured on a single-threaded runtime: one core.
    let data = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (harness, token) = runtime.block_on(start(&data))?;

    let single = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let verifications = single.block_on(verify_loop(&harness, &token))?;
    println!("token verifications/s (1 core):  {verifications:.0}");

    runtime.block_on(async {
        let sign_ins = sign_in_loop(&harness).await?;
        println!(
            "sign-ins/s ({} cores, argon2id m=19456 t=2 p=1): {sign_ins:.1}",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let (p50, p99, rate) = get_me_loop(&harness, &token).await?;
        println!(
            "GetMe over gRPC ({GET_ME_CONCURRENCY} in flight): p50 {:.2} ms, p99 {:.2} ms, {rate:.0} calls/s",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        );
        harness.shutdown.cancel();
        anyhow::Ok(())
    })?;
    Ok(())
}

struct Harness {
    addr: SocketAddr,
    verifier: Arc<TokenVerifier>,
    email: String,
    shutdown: CancellationToken,
}

async fn start(data: &tempfile::TempDir) -> anyhow::Result<(Harness, String)> {
    let database_url = std::env::var("RUNMESH_DATABASE_URL").unwrap_or_else(|_| {
        format!(
            "sqlite://{}?mode=rwc",
            data.path().join("user.db").display()
        )
    });
    let redis_url = std::env::var("RUNMESH_REDIS_URL").ok();
    let backend = if redis_url.is_some() {
        "PostgreSQL + Redis"
    } else {
        "SQLite + memory"
    };
    println!("svc-user bench on {backend}");

    let db = runmesh_platform::db::connect(&database_url).await?;
    runmesh_svc_user::migrate(&db).await?;
    let cache = runmesh_platform::cache::connect(
        redis_url.as_deref(),
        &format!("svc_user_bench_{}", uuid::Uuid::new_v4().simple()),
    )
    .await?;
    let config = UserConfig::default();
    let module = UserModule::start(db, cache, None, &config).await?;
    let verifier = Arc::new(TokenVerifier::new(
        VerifierConfig::new(config.issuer.clone(), config.audience.clone()),
        module.key_source(),
    )?);
    let settings = Settings {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_delay: Duration::ZERO,
        ..Settings::default()
    };
    let server = GrpcServer::builder(&settings)
        .layer(AuthLayer::new(verifier.clone()))
        .add_service(module.user_server(), vec![])
        .bind()
        .await?;
    let addr = server.local_addr();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.serve(shutdown.clone()));

    let email = format!("bench-{}@example.org", uuid::Uuid::new_v4().simple());
    let signed_up = client(addr)
        .sign_up(proto::SignUpRequest {
            email: email.clone(),
            password: PASSWORD.to_owned(),
            display_name: "Bench".to_owned(),
        })
        .await?
        .into_inner();
    let token = signed_up
        .tokens
        .map(|tokens| tokens.access_token)
        .unwrap_or_default();
    Ok((
        Harness {
            addr,
            verifier,
            email,
            shutdown,
        },
        token,
    ))
}

fn client(addr: SocketAddr) -> UserServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    UserServiceClient::new(channel)
}

async fn verify_loop(harness: &Harness, token: &str) -> anyhow::Result<f64> {
    harness.verifier.refresh_keys().await?;
    let started = Instant::now();
    let mut done = 0;
    while done < VERIFICATIONS && started.elapsed() < TIME_LIMIT {
        harness.verifier.verify(token).await?;
        done += 1;
    }
    Ok(done as f64 / started.elapsed().as_secs_f64())
}

async fn sign_in_loop(harness: &Harness) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..SIGN_IN_CONCURRENCY {
        let mut client = client(harness.addr);
        let email = harness.email.clone();
        workers.spawn(async move {
            let mut done = 0usize;
            for _ in (worker..SIGN_INS).step_by(SIGN_IN_CONCURRENCY) {
                if started.elapsed() > TIME_LIMIT {
                    break;
                }
                client
                    .sign_in(proto::SignInRequest {
                        email: email.clone(),
                        password: PASSWORD.to_owned(),
                    })
                    .await?;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut total = 0;
    while let Some(done) = workers.join_next().await {
        total += done??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

async fn get_me_loop(harness: &Harness, token: &str) -> anyhow::Result<(Duration, Duration, f64)> {
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..GET_ME_CONCURRENCY {
        let mut client = client(harness.addr);
        let header: tonic::metadata::MetadataValue<_> = format!("Bearer {token}").parse()?;
        workers.spawn(async move {
            let mut latencies = Vec::new();
            for _ in (worker..GET_ME_CALLS).step_by(GET_ME_CONCURRENCY) {
                if started.elapsed() > TIME_LIMIT {
                    break;
                }
                let mut request = tonic::Request::new(proto::GetMeRequest {});
                request
                    .metadata_mut()
                    .insert("authorization", header.clone());
                let call = Instant::now();
                client.get_me(request).await?;
                latencies.push(call.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
    Ok((percentile(0.50), percentile(0.99), rate))
}
