//! Migrations run on PostgreSQL and SQLite, twice without harm, and the probe tells a live
//! database from a dead one.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use runmesh_platform::{db, events, testkit};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use sea_orm_migration::{MigrationTrait, MigratorTrait};

struct PlatformMigrator;

impl MigratorTrait for PlatformMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        events::migrations()
    }
}

async fn assert_outbox_and_inbox_exist(db: &DatabaseConnection) {
    for table in ["event_outbox", "event_inbox"] {
        let count = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert!(count.is_some(), "{table} answers");
    }
}

#[tokio::test]
async fn migrations_apply_on_postgres_and_are_idempotent() {
    let database = testkit::TestDatabase::create().await.unwrap();
    let db = db::connect(&database.url).await.unwrap();
    PlatformMigrator::up(&db, None).await.unwrap();
    PlatformMigrator::up(&db, None).await.unwrap();
    assert_outbox_and_inbox_exist(&db).await;
    assert!(
        PlatformMigrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn migrations_apply_on_sqlite_and_are_idempotent() {
    let sqlite = testkit::TestSqlite::create().unwrap();
    let db = db::connect(&sqlite.url).await.unwrap();
    PlatformMigrator::up(&db, None).await.unwrap();
    PlatformMigrator::up(&db, None).await.unwrap();
    assert_outbox_and_inbox_exist(&db).await;
}

#[tokio::test]
async fn embedded_urls_live_under_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let url = db::service_database_url(None, &dir.path().join("nested"), "race");
    assert!(
        url.starts_with("sqlite://") && url.contains("race.db"),
        "{url}"
    );
    let db = db::connect(&url).await.unwrap();
    PlatformMigrator::up(&db, None).await.unwrap();
    assert!(dir.path().join("nested/race.db").exists());
    assert_eq!(
        db::service_database_url(Some("postgres://h/x"), dir.path(), "race"),
        "postgres://h/x"
    );
}

#[tokio::test]
async fn the_probe_fails_when_the_database_is_gone() {
    let database = testkit::TestDatabase::create().await.unwrap();
    let db = db::connect(&database.url).await.unwrap();
    let probe = db::probe(db.clone());
    assert!(probe.check(Duration::from_secs(3)).await.is_ok());
    db.close_by_ref().await.unwrap();
    assert!(probe.check(Duration::from_secs(3)).await.is_err());
}
