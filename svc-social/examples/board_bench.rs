//! Crew board and RSVP flood benchmark: starts svc-social in process (two instances for the
//! flood) against a fresh PostgreSQL database and Redis, seeds one crew's board through the
//! bulk path ([`runmesh_svc_social::seed`], which writes what `CreatePost`/`CreateComment`
//! write), then
//!
//! 1. `ListPosts` first page and a deep page (the page after `--deep` posts) from `--readers`
//!    concurrent gRPC clients: p50/p99/max;
//! 2. an RSVP flood: `--rsvp-runners` runners answer going at once for `--capacity` places
//!    through two instances; RSVPs/s, then the invariants (exactly the capacity goes, one
//!    unbroken waitlist in the answers' order, nobody twice).
//!
//! `cargo run --release -p runmesh-svc-social --example board_bench -- --posts 100000 --comments 1000000 --readers 32`
//!
//! The database is created for the run and dropped afterwards; Redis keys live under a
//! namespace of their own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::Utc;
use clap::Parser;
use hdrhistogram::Histogram;
use runmesh_platform::auth::{AuthLayer, TokenVerifier, VerifierConfig};
use runmesh_platform::cache;
use runmesh_platform::config::Settings;
use runmesh_platform::server::GrpcServer;
use runmesh_platform::testkit::TestIssuer;
use runmesh_proto::runmesh::social::v1 as proto;
use runmesh_proto::runmesh::social::v1::crew_service_client::CrewServiceClient;
use runmesh_svc_social::domain::PageToken;
use runmesh_svc_social::seed::{SeedPost, seed_board};
use runmesh_svc_social::{SocialConfig, SocialModule};
use sea_orm::{ConnectionTrait, Database};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::transport::Channel;
use uuid::Uuid;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(about = "svc-social board reads and RSVP flood benchmark")]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    posts: u32,
    #[arg(long, default_value_t = 1_000_000)]
    comments: u64,
    /// Concurrent readers of the board.
    #[arg(long, default_value_t = 32)]
    readers: usize,
    /// Reads per reader and page kind.
    #[arg(long, default_value_t = 300)]
    reads: usize,
    /// The deep page starts after this many posts.
    #[arg(long, default_value_t = 50_000)]
    deep: u32,
    /// Runners answering the meetup at once.
    #[arg(long, default_value_t = 1_000)]
    rsvp_runners: usize,
    /// The meetup's places.
    #[arg(long, default_value_t = 100)]
    capacity: u32,
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    postgres: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
}

struct Instance {
    addr: SocketAddr,
}

async fn start(
    url: &str,
    redis: &str,
    namespace: &str,
    issuer: &TestIssuer,
    shutdown: &CancellationToken,
) -> anyhow::Result<Instance> {
    let db = runmesh_platform::db::connect(url).await?;
    runmesh_svc_social::migrate(&db).await?;
    let cache = cache::connect(Some(redis), namespace).await?;
    let config = SocialConfig {
        post_limit: 1_000_000,
        comment_limit: 1_000_000,
        ..SocialConfig::default()
    };
    let tasks = TaskTracker::new();
    let module = SocialModule::assemble(db, cache, None, config, &tasks, shutdown);
    let mut verifier_config = VerifierConfig::new(issuer.issuer.clone(), issuer.audience.clone());
    verifier_config.min_refresh_interval = Duration::ZERO;
    let verifier = Arc::new(TokenVerifier::new(verifier_config, issuer.key_source())?);
    let settings = Settings {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        shutdown_delay: Duration::ZERO,
        ..Settings::default()
    };
    let server = GrpcServer::builder(&settings)
        .layer(AuthLayer::new(verifier))
        .add_service(module.server(), vec![])
        .bind()
        .await?;
    let addr = server.local_addr();
    tokio::spawn(server.serve(shutdown.clone()));
    Ok(Instance { addr })
}

fn client(addr: SocketAddr) -> CrewServiceClient<Channel> {
    CrewServiceClient::new(
        Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy(),
    )
}

fn request<T>(issuer: &TestIssuer, message: T, user: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        issuer.bearer(user, &["runner"]).parse().unwrap(),
    );
    request
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1_000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let name = format!("rmbench_social_{}", Uuid::new_v4().simple());
    let admin = Database::connect(format!("{}/postgres", args.postgres)).await?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await?;
    let url = format!("{}/{name}", args.postgres);
    let result = run(&args, &url, &name).await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    result
}

async fn run(args: &Args, url: &str, namespace: &str) -> anyhow::Result<()> {
    let issuer = Arc::new(TestIssuer::new());
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let first = start(url, &args.redis, namespace, &issuer, &shutdown).await?;
    let second = start(url, &args.redis, namespace, &issuer, &shutdown).await?;
    let owner = "bench-owner";
    let crew = client(first.addr)
        .create_crew(request(
            &issuer,
            proto::CreateCrewRequest {
                name: "Bench Crew".to_owned(),
                region: "Seoul".to_owned(),
                visibility: proto::CrewVisibility::Public.into(),
                ..Default::default()
            },
            owner,
        ))
        .await?
        .into_inner()
        .crew
        .context("no crew")?;
    let authors: Vec<String> = (0..20).map(|n| format!("bench-author-{n}")).collect();
    for author in &authors {
        client(first.addr)
            .join_crew(request(
                &issuer,
                proto::JoinCrewRequest {
                    crew_id: crew.crew_id.clone(),
                    ..Default::default()
                },
                author,
            ))
            .await?;
    }
    let crew_id = Uuid::parse_str(&crew.crew_id)?;

    // Seeding: posts a second apart ending now, comments spread evenly.
    let started = Instant::now();
    let now = Utc::now() - chrono::Duration::seconds(i64::from(args.posts));
    let per_post = args.comments / u64::from(args.posts.max(1));
    let extra = args.comments % u64::from(args.posts.max(1));
    let posts: Vec<SeedPost> = (0..args.posts)
        .map(|n| {
            let at = now + chrono::Duration::seconds(i64::from(n));
            let ts = uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(at.timestamp()).unwrap_or(0),
                at.timestamp_subsec_nanos(),
            );
            SeedPost {
                id: Uuid::new_v7(ts),
                author_id: authors[n as usize % authors.len()].clone(),
                at,
                comments: u32::try_from(per_post + u64::from(u64::from(n) < extra)).unwrap_or(0),
            }
        })
        .collect();
    let db = runmesh_platform::db::connect(url).await?;
    let comments = seed_board(&db, crew_id, &posts, &authors).await?;
    db.execute_unprepared("ANALYZE").await?;
    println!(
        "seeded {} posts and {comments} comments (+{comments} CommentCreated outbox rows) in {:.1} s",
        args.posts,
        started.elapsed().as_secs_f64()
    );

    // The deep page: the token after the `deep`-th newest post.
    let mut newest: Vec<&SeedPost> = posts.iter().collect();
    newest.sort_by_key(|post| std::cmp::Reverse(post.id));
    let deep_token = newest
        .get(args.deep as usize - 1)
        .map(|post| PageToken::after(0, post.id.to_string()).encode())
        .unwrap_or_default();
    let deep_first = newest
        .get(args.deep as usize)
        .map(|post| post.id.to_string());

    for (label, token) in [("first page", String::new()), ("deep page", deep_token)] {
        let started = Instant::now();
        let tasks = (0..args.readers).map(|n| {
            let client = client(if n % 2 == 0 { first.addr } else { second.addr });
            let issuer = Arc::clone(&issuer);
            let crew_id = crew.crew_id.clone();
            let token = token.clone();
            let expected = deep_first.clone();
            let reads = args.reads;
            tokio::spawn(async move {
                let mut histogram = Histogram::<u64>::new(3).unwrap();
                let user = format!("reader-{n}");
                for _ in 0..reads {
                    let mut client = client.clone();
                    let at = Instant::now();
                    let page = client
                        .list_posts(request(
                            &issuer,
                            proto::ListPostsRequest {
                                crew_id: crew_id.clone(),
                                page_size: 20,
                                page_token: token.clone(),
                                ..Default::default()
                            },
                            &user,
                        ))
                        .await
                        .unwrap()
                        .into_inner();
                    histogram
                        .record(u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX))
                        .unwrap();
                    assert_eq!(page.posts.len(), 20);
                    if !token.is_empty() {
                        assert_eq!(Some(&page.posts[0].post_id), expected.as_ref());
                    }
                }
                histogram
            })
        });
        let mut histogram = Histogram::<u64>::new(3)?;
        for task in futures::future::join_all(tasks).await {
            histogram.add(task?)?;
        }
        let total = histogram.len();
        println!(
            "ListPosts {label} ({} readers, {total} reads, {:.0} reads/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            args.readers,
            total as f64 / started.elapsed().as_secs_f64(),
            ms(&histogram, 0.5),
            ms(&histogram, 0.99),
            histogram.max() as f64 / 1_000.0,
        );
    }

    // The RSVP flood through both instances.
    let meetup = client(first.addr)
        .create_meetup(request(
            &issuer,
            proto::CreateMeetupRequest {
                crew_id: crew.crew_id.clone(),
                meetup: Some(proto::Meetup {
                    title: "Flood run".to_owned(),
                    starts_at: Some(prost_types::Timestamp {
                        seconds: (Utc::now() + chrono::Duration::days(1)).timestamp(),
                        nanos: 0,
                    }),
                    time_zone: "Asia/Seoul".to_owned(),
                    meeting_point: Some(proto::MeetingPoint {
                        name: "Yeouido".to_owned(),
                        location: Some(proto::GeoPoint {
                            latitude: 37.5,
                            longitude: 126.9,
                        }),
                    }),
                    capacity: args.capacity,
                    members_only: false,
                    ..Default::default()
                }),
            },
            owner,
        ))
        .await?
        .into_inner()
        .meetup
        .context("no meetup")?;
    // Two HTTP/2 connections (one per instance) carry every runner's call.
    let channels = [client(first.addr), client(second.addr)];
    let started = Instant::now();
    let answers = futures::future::join_all((0..args.rsvp_runners).map(|n| {
        let mut client = channels[n % 2].clone();
        let issuer = Arc::clone(&issuer);
        let id = meetup.meetup_id.clone();
        tokio::spawn(async move {
            let user = format!("flood-{n:05}");
            let answer = client
                .rsvp_meetup(request(
                    &issuer,
                    proto::RsvpMeetupRequest {
                        meetup_id: id,
                        status: proto::RsvpStatus::Going.into(),
                    },
                    &user,
                ))
                .await
                .unwrap()
                .into_inner();
            (user, answer.status(), answer.waitlist_position)
        })
    }))
    .await;
    let elapsed = started.elapsed();
    let mut going = HashSet::new();
    let mut line = Vec::new();
    for answer in answers {
        let (user, status, position) = answer?;
        match status {
            proto::RsvpStatus::Going => ensure!(going.insert(user), "answered twice"),
            proto::RsvpStatus::Waitlisted => line.push((position, user)),
            other => anyhow::bail!("{user}: {other:?}"),
        }
    }
    line.sort();
    ensure!(
        going.len() == args.capacity as usize,
        "{} going",
        going.len()
    );
    ensure!(
        line.iter().map(|(p, _)| *p as usize).eq(1..=line.len()),
        "the waitlist has gaps"
    );
    let state = client(first.addr)
        .get_meetup(request(
            &issuer,
            proto::GetMeetupRequest {
                meetup_id: meetup.meetup_id.clone(),
            },
            owner,
        ))
        .await?
        .into_inner();
    ensure!(
        state
            .waitlist
            .iter()
            .map(|a| a.user_id.as_str())
            .eq(line.iter().map(|(_, u)| u.as_str())),
        "the stored line differs from the answers"
    );
    ensure!(state.going.len() == args.capacity as usize);
    println!(
        "RsvpMeetup flood: {} runners for {} places through 2 instances in {:.2} s ({:.0} RSVPs/s); invariants hold: {} going, waitlist 1..={} in answer order",
        args.rsvp_runners,
        args.capacity,
        elapsed.as_secs_f64(),
        args.rsvp_runners as f64 / elapsed.as_secs_f64(),
        going.len(),
        line.len(),
    );
    Ok(())
}
