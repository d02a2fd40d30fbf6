//! Databases: one per service, PostgreSQL in per-service mode or a SQLite file under the data
//! directory in embedded mode, reached through sea-orm so the domain code never knows which.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::sqlite::SqliteJournalMode;
use sea_orm::{
    ConnectOptions, Database, DatabaseConnection, DatabaseTransaction, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub use sea_orm::DatabaseConnection as Db;

/// The database URL a service uses: the configured one, or `sqlite://<data_dir>/<service>.db`.
pub fn service_database_url(configured: Option<&str>, data_dir: &Path, service: &str) -> String {
    match configured {
        Some(url) => url.to_string(),
        None => format!(
            "sqlite://{}?mode=rwc",
            data_dir.join(format!("{service}.db")).display()
        ),
    }
}

/// Opens a pool. SQLite gets WAL and a busy timeout so several tasks can write without
/// `database is locked` errors; PostgreSQL a bounded pool that fails fast when the server is gone.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url.to_string());
    options
        .acquire_timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    if url.starts_with("sqlite:") {
        if let Some(parent) = sqlite_path(url).and_then(|path| Path::new(path).parent()) {
            std::fs::create_dir_all(parent).map_err(|error| {
                DbErr::Custom(format!("creating {}: {error}", parent.display()))
            })?;
        }
        // Pragmas go on the connect options so every pooled connection gets them. One writer at
        // a time is SQLite's model; a small pool avoids lock storms.
        options
            .map_sqlx_sqlite_opts(|sqlite| {
                sqlite
                    .journal_mode(SqliteJournalMode::Wal)
                    .busy_timeout(Duration::from_secs(5))
                    .foreign_keys(true)
            })
            .max_connections(4)
            .min_connections(1);
    } else {
        options.max_connections(32).min_connections(1);
    }
    Database::connect(options).await
}

/// Begins a transaction that will write. On SQLite it takes the write lock up front
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads and then writes fails with
/// SQLITE_BUSY as soon as another connection (the relay, a consumer) wrote meanwhile.
/// PostgreSQL ignores the mode.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://")?;
    let path = rest.split('?').next()?;
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Opens pool connections until `count` are open (idle or in use), so a burst of work that is
/// about to start (a race opening registration) does not wait for connects, each a server
/// process start on PostgreSQL. Connections the pool already holds are reused; idle ones close
/// again after the pool's idle timeout.
pub async fn warm_pool(db: &DatabaseConnection, count: u32) -> Result<(), DbErr> {
    match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => fill_pool(db.get_postgres_connection_pool(), count).await,
        sea_orm::DbBackend::Sqlite => fill_pool(db.get_sqlite_connection_pool(), count).await,
        _ => Ok(()),
    }
}

async fn fill_pool<D: sea_orm::sqlx::Database>(
    pool: &sea_orm::sqlx::Pool<D>,
    count: u32,
) -> Result<(), DbErr> {
    let count = count.min(pool.options().get_max_connections());
    if pool.size() < count {
        let held = futures::future::try_join_all((0..count).map(|_| pool.acquire()))
            .await
            .map_err(|error| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(error.into())))?;
        drop(held);
    }
    Ok(())
}

/// A readiness probe: the database answers a trivial query within the timeout.
pub fn probe(db: DatabaseConnection) -> Arc<dyn crate::health::Probe> {
    Arc::new(DatabaseProbe { db })
}

struct DatabaseProbe {
    db: DatabaseConnection,
}

#[async_trait::async_trait]
impl crate::health::Probe for DatabaseProbe {
    fn name(&self) -> &str {
        match self.db.get_database_backend() {
            sea_orm::DbBackend::Postgres => "postgres",
            sea_orm::DbBackend::Sqlite => "sqlite",
            _ => "database",
        }
    }

    async fn check(&self, timeout: Duration) -> Result<(), String> {
        match tokio::time::timeout(timeout, self.db.ping()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("no answer within {timeout:?}")),
        }
    }
}

/// A migration's `CREATE INDEX name ON table (columns…)`, the columns in order.
pub fn index<C: sea_orm_migration::prelude::IntoIden + Copy>(
    name: &str,
    table: C,
    columns: &[C],
) -> sea_orm_migration::prelude::IndexCreateStatement {
    let mut statement = sea_orm_migration::prelude::Index::create();
    statement.name(name).table(table);
    for column in columns {
        statement.col(*column);
    }
    statement.to_owned()
}
