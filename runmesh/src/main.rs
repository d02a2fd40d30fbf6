//! `runmesh`: every service in one process (`up`), one service per process (`serve`), schema
//! migrations (`migrate`), online backups of a single-box install (`backup`, `restore`) and a
//! health probe for container runtimes (`healthcheck`).

mod backup;
mod services;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use runmesh_edge::{Edge, EdgeConfig};
use runmesh_platform::auth::ServiceTokenIssuer;
use runmesh_platform::config::Settings;
use runmesh_platform::service::{self, Service};
use runmesh_platform::{db, events};
use tokio_util::sync::CancellationToken;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "runmesh",
    version,
    about = "Backend for an all-in-one running service: accounts, runs, crews, races, assistant.",
    long_about = "Backend for an all-in-one running service: accounts, runs, crews, races, assistant.\n\n\
Settings come from RUNMESH_* environment variables (and an optional TOML file named by \
RUNMESH_CONFIG); see docs/operations.md. An invalid value stops the process with one line \
naming the variable."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run every service in this process on embedded defaults: one SQLite file per service under
    /// RUNMESH_DATA_DIR, an in-memory cache and an in-process event bus (Redis and Kafka are used
    /// when RUNMESH_REDIS_URL / RUNMESH_KAFKA_BROKERS are set). All gRPC services share
    /// RUNMESH_GRPC_ADDR; metrics are on RUNMESH_METRICS_ADDR.
    Up,
    /// Run one service against the database, Redis and Kafka named by RUNMESH_DATABASE_URL,
    /// RUNMESH_REDIS_URL and RUNMESH_KAFKA_BROKERS (one Deployment per service in Kubernetes).
    /// Needs RUNMESH_SERVICE_SECRET, shared by every process of the deployment: internal RPCs
    /// take service tokens signed with it.
    Serve {
        /// The service to run, or `edge` (REST/JSON and gRPC-web on RUNMESH_HTTP_ADDR, calling
        /// the services at RUNMESH_EDGE_UPSTREAM / RUNMESH_EDGE_UPSTREAMS).
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(
            services::NAMES.iter().copied().chain([services::EDGE]),
        ))]
        service: String,
    },
    /// Bring databases up to date and exit: one service against RUNMESH_DATABASE_URL, or every
    /// service's SQLite file under RUNMESH_DATA_DIR when no service is named.
    Migrate {
        /// Only this service.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(services::NAMES))]
        service: Option<String>,
    },
    /// Manage accounts directly in svc-user's database (RUNMESH_DATABASE_URL, or the SQLite
    /// file under RUNMESH_DATA_DIR).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Maintain svc-run's data directly (RUNMESH_DATABASE_URL or the SQLite file under
    /// RUNMESH_DATA_DIR, and RUNMESH_REDIS_URL).
    Run {
        #[command(subcommand)]
        command: RunCommand,
    },
    /// Copy every embedded database under RUNMESH_DATA_DIR (and the other files there) into DIR,
    /// online: `runmesh up` may keep serving. Each database is copied with SQLite's VACUUM INTO
    /// (a consistent snapshot) and checked; DIR/manifest.json lists every file with its SHA-256.
    /// For PostgreSQL (`runmesh serve`), use pg_dump.
    Backup {
        /// A new (or empty) directory, outside the data directory.
        dir: PathBuf,
    },
    /// Put a backup made by `runmesh backup` back into RUNMESH_DATA_DIR, after checking every
    /// file against its manifest. Refuses while a runmesh process serves from that directory,
    /// and when it holds data, unless --force.
    Restore {
        /// The backup's directory (with its manifest.json).
        dir: PathBuf,
        /// Replace the data directory's files: they are moved to <data dir>.pre-restore-<time>.
        #[arg(long)]
        force: bool,
    },
    /// Exit 0 when the gRPC server at RUNMESH_GRPC_ADDR reports SERVING, 1 otherwise (for
    /// container health checks).
    Healthcheck {
        /// The server to ask (default: RUNMESH_GRPC_ADDR).
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// A fully qualified gRPC service name; the whole server when omitted.
        #[arg(long, default_value = "")]
        service: String,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an admin account (or make the existing account with this email and password an
    /// admin). Admins grant the organizer role to others.
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
}

#[derive(Subcommand)]
enum RunCommand {
    /// Rebuild every current leaderboard in Redis from the run records in the database (built
    /// aside and swapped in atomically, so readers never see a half-built board). Readers also
    /// rebuild a board by themselves when Redis lost it; this does all of them at once, e.g.
    /// after a Redis failover.
    RebuildBoards,
}

/// Why a command stopped: configuration errors exit 2 with their one line, the rest 1.
enum Failure {
    Config(String),
    Other(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Failure::Other(error)
    }
}

/// `println!` that never panics: a closed stdout (a pipe whose reader left) must not take a
/// serving task down with it.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("runmesh: {error}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("runmesh: starting the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command, settings)) {
        Ok(code) => code,
        Err(Failure::Config(line)) => {
            eprintln!("runmesh: {line}");
            ExitCode::from(2)
        }
        Err(Failure::Other(error)) => {
            eprintln!("runmesh: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(command: Command, settings: Settings) -> Result<ExitCode, Failure> {
    match command {
        Command::Up => {
            if settings.database_url.is_some() {
                return Err(Failure::Config(
                    "RUNMESH_DATABASE_URL: `runmesh up` keeps one SQLite file per service under \
                     RUNMESH_DATA_DIR; use `runmesh serve <service>` for PostgreSQL"
                        .to_string(),
                ));
            }
            let services = services::all(&settings).map_err(Failure::Config)?;
            let edge =
                EdgeConfig::from_env(&settings).map_err(|e| Failure::Config(e.to_string()))?;
            serve(settings, services, "runmesh", None, Some(edge)).await?;
        }
        Command::Serve { service } if service == services::EDGE => {
            require_service_secret(&settings)?;
            let edge =
                EdgeConfig::from_env(&settings).map_err(|e| Failure::Config(e.to_string()))?;
            serve_edge(settings, edge).await?;
        }
        Command::Serve { service } => {
            require_service_secret(&settings)?;
            let selected = services::build(&service, &settings).map_err(Failure::Config)?;
            let remote_keys = remote_keys(&settings, &service)?;
            if settings.database_url.is_none() {
                tracing::warn!("RUNMESH_DATABASE_URL is not set: using SQLite under the data dir");
            }
            let metrics_name = format!("runmesh-{service}");
            serve(settings, vec![selected], &metrics_name, remote_keys, None).await?;
        }
        Command::Migrate { service } => migrate(&settings, service.as_deref()).await?,
        Command::User {
            command: UserCommand::CreateAdmin { email, password },
        } => create_admin(&settings, &email, &password).await?,
        Command::Run {
            command: RunCommand::RebuildBoards,
        } => rebuild_boards(&settings).await?,
        Command::Backup { dir } => {
            if settings.database_url.is_some() {
                return Err(Failure::Config(
                    "RUNMESH_DATABASE_URL: `runmesh backup` copies the embedded SQLite databases \
                     under RUNMESH_DATA_DIR; back up PostgreSQL with pg_dump"
                        .to_string(),
                ));
            }
            let summary = backup::backup(&settings.data_dir, &dir).await?;
            say!(
                "backed up {} databases and {} other files ({} bytes) from {} into {}",
                summary.databases,
                summary.files,
                summary.bytes,
                settings.data_dir.display(),
                dir.display()
            );
        }
        Command::Restore { dir, force } => {
            let summary = backup::restore(&dir, &settings.data_dir, force).await?;
            say!(
                "restored {} databases and {} other files ({} bytes) from {} into {}",
                summary.databases,
                summary.files,
                summary.bytes,
                dir.display(),
                settings.data_dir.display()
            );
        }
        Command::Healthcheck { addr, service } => {
            return Ok(healthcheck(addr.unwrap_or(settings.grpc_addr), service).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `runmesh serve` runs one component per process: they prove to each other that they belong
/// to the deployment with service tokens signed with the secret they share, so it must be set
/// (`runmesh up` has every component in one process and uses a random key when it is unset).
fn require_service_secret(settings: &Settings) -> Result<(), Failure> {
    if settings.service_secret.is_some() {
        return Ok(());
    }
    Err(Failure::Config(
        "RUNMESH_SERVICE_SECRET: not set; `runmesh serve` needs the secret every runmesh process \
         of the deployment shares (at least 32 bytes, e.g. from `openssl rand -base64 48`) to \
         sign and check the service tokens of internal RPCs"
            .to_string(),
    ))
}

/// Where a service that does not issue tokens gets the signing keys: svc-user's `GetJwks` at
/// `RUNMESH_PEER_USER` (every address of the name, balanced), with a service token naming
/// `service` as the caller.
fn remote_keys(settings: &Settings, service: &str) -> Result<service::RemoteKeys, Failure> {
    if service == runmesh_svc_user::NAME {
        return Ok(None);
    }
    let Some(url) = &settings.peer_user else {
        tracing::warn!(
            "RUNMESH_PEER_USER is not set: bearer tokens cannot be verified and are refused"
        );
        return Ok(None);
    };
    let caller = ServiceTokenIssuer::new(service.to_owned(), settings.mesh_key());
    let keys = runmesh_svc_user::GrpcKeySource::connect(url, &caller)
        .map_err(|error| Failure::Config(format!("RUNMESH_PEER_USER: {error}")))?;
    Ok(Some(Arc::new(keys)))
}

async fn create_admin(settings: &Settings, email: &str, password: &str) -> anyhow::Result<()> {
    let url = db::service_database_url(
        settings.database_url.as_deref(),
        &settings.data_dir,
        runmesh_svc_user::NAME,
    );
    let database = db::connect(&url).await.with_context(|| {
        format!(
            "connecting to {}",
            runmesh_platform::config::redact_url(&url)
        )
    })?;
    runmesh_svc_user::migrate(&database).await?;
    let admin = runmesh_svc_user::create_admin(&database, email, password).await?;
    println!("admin {} is ready (user id {})", admin.email, admin.id);
    Ok(())
}

async fn rebuild_boards(settings: &Settings) -> Result<(), Failure> {
    if settings.redis_url.is_none() {
        say!(
            "RUNMESH_REDIS_URL is not set: `runmesh up` keeps its leaderboards in memory and \
             builds them from the run records as they are read; nothing to rebuild"
        );
        return Ok(());
    }
    let config = runmesh_svc_run::RunConfig::from_env()
        .map_err(|error| Failure::Config(error.to_string()))?;
    let url = db::service_database_url(
        settings.database_url.as_deref(),
        &settings.data_dir,
        runmesh_svc_run::NAME,
    );
    let database = db::connect(&url).await.with_context(|| {
        format!(
            "connecting to {}",
            runmesh_platform::config::redact_url(&url)
        )
    })?;
    runmesh_svc_run::migrate(&database)
        .await
        .map_err(anyhow::Error::from)?;
    let namespace = format!("runmesh:{}", runmesh_svc_run::NAME);
    let cache = runmesh_platform::cache::connect(settings.redis_url.as_deref(), &namespace)
        .await
        .map_err(anyhow::Error::from)?;
    let periods = runmesh_svc_run::rebuild_boards(database, cache, &config)
        .await
        .map_err(anyhow::Error::from)?;
    say!("rebuilt the leaderboards of {periods} periods from the run records");
    Ok(())
}

async fn serve(
    settings: Settings,
    services: Vec<Arc<dyn Service>>,
    metrics_name: &str,
    remote_keys: service::RemoteKeys,
    edge: Option<EdgeConfig>,
) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<service::Listening>();
    let names = services
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ");
    let data_dir = settings.data_dir.clone();
    let embedded = settings.database_url.is_none();
    // The edge starts once the gRPC services listen (and telemetry is set up): its handlers
    // are instrumented, and it calls them.
    let front = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let Ok(listening) = ready_rx.await else {
                return Ok(());
            };
            let edge = match edge {
                Some(config) => Some(Edge::bind(config, shutdown.clone()).await?),
                None => None,
            };
            // `runmesh restore` refuses a data directory while this mark names a live process.
            let _running = if embedded {
                match backup::RunningMark::create(&data_dir, listening.grpc) {
                    Ok(mark) => Some(mark),
                    Err(error) => {
                        tracing::warn!(%error, dir = %data_dir.display(), "cannot mark the data directory as in use");
                        None
                    }
                }
            } else {
                None
            };
            say!("runmesh is serving");
            say!(
                "  gRPC     {}  (services: {names}; health, reflection v1 + v1alpha)",
                listening.grpc
            );
            if let Some(edge) = &edge {
                let http = edge.local_addr();
                say!("  HTTP     http://{http}  (REST/JSON, gRPC-web; /openapi.json, /readyz)");
            }
            say!("  metrics  http://{}/metrics", listening.metrics);
            if embedded {
                say!("  data     {}", data_dir.display());
            }
            say!("Stop with Ctrl-C or SIGTERM: health turns NOT_SERVING, in-flight calls finish.");
            match edge {
                Some(edge) => edge.serve().await.map_err(anyhow::Error::from),
                // Hold the data directory's mark until the services stop.
                None => {
                    shutdown.cancelled().await;
                    Ok(())
                }
            }
        }
    });
    let result = service::run(
        settings,
        services,
        metrics_name,
        remote_keys,
        shutdown.clone(),
        Some(ready_tx),
    )
    .await;
    // The edge drains on the same token; a failure to start it stops everything.
    let edge_result = match front.await {
        Ok(edge_result) => edge_result,
        Err(error) => Err(anyhow::anyhow!("edge task failed: {error}")),
    };
    shutdown.cancel();
    result.and(edge_result.context("edge"))
}

/// The edge on its own (one Deployment): REST/JSON and gRPC-web in front of the services.
async fn serve_edge(settings: Settings, edge: EdgeConfig) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    runmesh_platform::telemetry::init(&settings, "runmesh-edge")?;
    let metrics =
        runmesh_platform::telemetry::serve_metrics(settings.metrics_addr, shutdown.clone()).await?;
    let bound = Edge::bind(edge, shutdown.clone()).await?;
    say!("runmesh edge is serving");
    say!(
        "  HTTP     http://{}  (REST/JSON, gRPC-web; /openapi.json, /readyz)",
        bound.local_addr()
    );
    say!("  metrics  http://{}/metrics", metrics.local_addr());
    let served = bound.serve().await;
    shutdown.cancel();
    metrics.stopped().await?;
    Ok(served?)
}

/// Cancels `shutdown` on SIGTERM or Ctrl-C; a second signal exits at once.
async fn cancel_on_signal(shutdown: CancellationToken) {
    wait_for_signal().await;
    tracing::info!("shutdown requested: draining");
    shutdown.cancel();
    wait_for_signal().await;
    tracing::warn!("second signal: exiting without draining");
    std::process::exit(130);
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C stops runmesh");
                tokio::signal::ctrl_c().await.ok();
            }
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok();
    }
}

async fn migrate(settings: &Settings, only: Option<&str>) -> Result<(), Failure> {
    let selected = match only {
        Some(name) => vec![services::build(name, settings).map_err(Failure::Config)?],
        None => {
            if settings.database_url.is_some() {
                return Err(Failure::Config(
                    "RUNMESH_DATABASE_URL: name the service it belongs to (`runmesh migrate <service>`)"
                        .to_string(),
                ));
            }
            services::all(settings).map_err(Failure::Config)?
        }
    };
    for service in selected {
        let url = db::service_database_url(
            settings.database_url.as_deref(),
            &settings.data_dir,
            service.name(),
        );
        let database = db::connect(&url).await.with_context(|| {
            format!(
                "{}: connecting to {}",
                service.name(),
                runmesh_platform::config::redact_url(&url)
            )
        })?;
        service
            .migrate(&database)
            .await
            .with_context(|| format!("{}: migrating", service.name()))?;
        let pending = events::pending(&database).await.unwrap_or(0);
        println!(
            "{}: migrated ({pending} events in the outbox, to publish or retained as the log)",
            service.name()
        );
    }
    Ok(())
}

async fn healthcheck(addr: SocketAddr, service: String) -> anyhow::Result<ExitCode> {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

    let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(3));
    let channel = match endpoint.connect().await {
        Ok(channel) => channel,
        Err(error) => {
            eprintln!("runmesh healthcheck: {addr}: {error}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let reply = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.clone(),
        })
        .await;
    let label = if service.is_empty() {
        "server"
    } else {
        service.as_str()
    };
    match reply.map(|r| r.into_inner().status()) {
        Ok(ServingStatus::Serving) => {
            println!("{label}: SERVING");
            Ok(ExitCode::SUCCESS)
        }
        Ok(status) => {
            println!("{label}: {}", status.as_str_name());
            Ok(ExitCode::FAILURE)
        }
        Err(status) => {
            eprintln!("runmesh healthcheck: {label}: {}", status.message());
            Ok(ExitCode::FAILURE)
        }
    }
}
