//! The embedded transport: each producing service's outbox *is* the log. Rows keep their
//! sequence and stay after they are read; each consumer group reads every registered source's
//! outbox in sequence order and stores how far it got per source in its own database, in the
//! transaction that holds the events' inbox rows and effects. A crash at any point loses nothing
//! (the rows are still in the outbox, the position still before them) and doubles nothing (the
//! position moved with the effects, the inbox catches the rest).
//!
//! Each source also keeps `event_log_reader`: per consumer group and topic, a position that
//! trails the group's own (reported after its commits) and when the group was last seen. The
//! source's maintenance task removes a topic's rows once every group reading that topic has
//! passed them; a group not seen within the retention is forgotten with a warning naming it, and
//! rows nobody reads are removed after the retention. The newest row is always kept, so SQLite
//! never hands its sequence out again.
//!
//! Positions are sequences, so a sequence must never become visible after a higher one was read.
//! SQLite has one writer at a time, so it never does; on PostgreSQL, [`super::outbox`] serialises
//! outbox writers per database (an advisory lock to commit) once a PostgreSQL source is
//! registered here.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use autometrics::autometrics;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::consumer::{
    EventHandler, Logged, handle_logged_until_done, next_delay, retry_backoff, retry_until_done,
};
use super::envelope::decode_envelope;
use super::outbox;

/// How the embedded log keeps and removes events.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// Rows a consumer reads and handles per transaction.
    pub batch_size: u64,
    /// How often consumers look at the log when nothing wakes them.
    pub poll_interval: Duration,
    /// A consumer group not seen for this long is forgotten (its unread events may go), and
    /// events no group reads are removed after this long.
    pub retention: Duration,
    /// Past this many bytes of retained events in one source, a warning is logged.
    pub warn_bytes: u64,
    /// How often each source removes what every group has read and reports its size.
    pub maintenance_interval: Duration,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
            warn_bytes: 1024 * 1024 * 1024,
            maintenance_interval: Duration::from_secs(10),
        }
    }
}

/// A consumer reports its position to a source at most this often while it moves...
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// ...and at least this often while it is idle, so the source sees it is alive.
const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(60);
/// A size warning is repeated at most this often.
const SIZE_WARNING_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// Where a consumer group has got to in one source's log (consumer's database).
pub mod position {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_log_position")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer_group: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub source: String,
        /// The sequence of the last record handled.
        pub position: i64,
        pub updated_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Who reads a source's log and how far, as last reported (source's database).
pub mod reader {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_log_reader")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer_group: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub topic: String,
        /// At or behind the group's own position in this source.
        pub position: i64,
        pub seen_at: ChronoDateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Moves `group`'s position in `source` to `sequence`, in the consumer's transaction.
pub(crate) async fn save_position(
    txn: &impl ConnectionTrait,
    group: &str,
    source: &str,
    sequence: i64,
) -> Result<(), sea_orm::DbErr> {
    position::Entity::insert(position::ActiveModel {
        consumer_group: Set(group.to_owned()),
        source: Set(source.to_owned()),
        position: Set(sequence),
        updated_at: Set(chrono::Utc::now()),
    })
    .on_conflict(
        OnConflict::columns([position::Column::ConsumerGroup, position::Column::Source])
            .update_columns([position::Column::Position, position::Column::UpdatedAt])
            .to_owned(),
    )
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

async fn load_position(
    db: &DatabaseConnection,
    group: &str,
    source: &str,
) -> Result<i64, sea_orm::DbErr> {
    let found = position::Entity::find_by_id((group.to_owned(), source.to_owned()))
        .one(db)
        .await?;
    Ok(found.map_or(0, |row| row.position))
}

/// A producing service's database, read as a log.
#[derive(Clone)]
pub(crate) struct Source {
    name: Arc<str>,
    db: DatabaseConnection,
}

pub(crate) struct EmbeddedLog {
    sources: watch::Sender<Vec<Source>>,
    options: LogOptions,
}

impl EmbeddedLog {
    pub(crate) fn new(options: LogOptions) -> Self {
        Self {
            sources: watch::Sender::new(Vec::new()),
            options,
        }
    }

    /// Makes `db`'s outbox readable as the source `name` by every consumer, now and later.
    /// Before it returns, outbox writers on PostgreSQL are serialised (see the module's doc).
    pub(crate) fn register_source(&self, name: &str, db: DatabaseConnection) -> Source {
        if db.get_database_backend() == DbBackend::Postgres {
            outbox::SERIALISE_POSTGRES_WRITERS.store(true, Ordering::SeqCst);
        }
        let source = Source {
            name: Arc::from(name),
            db,
        };
        self.sources.send_modify(|sources| {
            sources.retain(|known| known.name != source.name);
            sources.push(source.clone());
        });
        tracing::info!(source = name, "embedded event log open");
        source
    }

    /// Maintains `source` (removal of what every group read, size) until `shutdown`.
    pub(crate) async fn maintain_source(
        self: Arc<Self>,
        source: Source,
        shutdown: CancellationToken,
    ) {
        let name = source.name.clone();
        let mut size_warned: Option<Instant> = None;
        loop {
            if let Err(error) = maintain(&source, &self.options, &mut size_warned).await {
                tracing::warn!(
                    source = &*name,
                    error = format!("{error:#}"),
                    "event log maintenance failed"
                );
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.options.maintenance_interval) => {}
            }
        }
        tracing::info!(source = &*name, "embedded event log closed");
    }

    /// Consumes `topics` from every source as `group` until `shutdown`: one reader per source
    /// (sources registered later get theirs when they appear), woken by `wake`.
    pub(crate) async fn consume(
        self: Arc<Self>,
        group: String,
        topics: Vec<String>,
        db: DatabaseConnection,
        handler: Arc<dyn EventHandler>,
        wake: watch::Receiver<()>,
        shutdown: CancellationToken,
    ) {
        let reader = Arc::new(GroupReader {
            group,
            topics,
            db,
            handler,
            options: self.options.clone(),
        });
        tracing::info!(group = reader.group, topics = ?reader.topics, "embedded log consumer started");
        let mut sources = self.sources.subscribe();
        let mut following = HashSet::new();
        let mut readers = JoinSet::new();
        loop {
            for source in sources.borrow_and_update().iter() {
                if following.insert(source.name.clone()) {
                    readers.spawn(reader.clone().follow(
                        source.clone(),
                        wake.clone(),
                        shutdown.clone(),
                    ));
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                changed = sources.changed() => if changed.is_err() { break },
            }
        }
        while readers.join_next().await.is_some() {}
    }
}

struct GroupReader {
    group: String,
    topics: Vec<String>,
    db: DatabaseConnection,
    handler: Arc<dyn EventHandler>,
    options: LogOptions,
}

impl GroupReader {
    /// Reads `source` from this group's position onwards, forever.
    async fn follow(
        self: Arc<Self>,
        source: Source,
        mut wake: watch::Receiver<()>,
        shutdown: CancellationToken,
    ) {
        let group = self.group.as_str();
        let loaded = retry_until_done(
            &shutdown,
            || load_position(&self.db, group, &source.name),
            |error, _, _| {
                tracing::warn!(group, source = &*source.name, %error, "cannot read the consumer position; retrying");
            },
        )
        .await;
        let Some(mut position) = loaded else { return };
        let mut retry = retry_backoff();
        let mut reported: Option<(i64, Instant)> = None;
        loop {
            wake.borrow_and_update();
            let due = match reported {
                None => true,
                Some((at, when)) => {
                    (at != position && when.elapsed() >= REPORT_INTERVAL)
                        || when.elapsed() >= HEARTBEAT_INTERVAL
                }
            };
            if due {
                match self.report(&source, position).await {
                    Ok(()) => reported = Some((position, Instant::now())),
                    Err(error) => {
                        tracing::warn!(group, source = &*source.name, %error, "cannot report the consumer position to the source");
                    }
                }
            }
            let rows = match self.read(&source, position).await {
                Ok(rows) => {
                    retry = retry_backoff();
                    rows
                }
                Err(error) => {
                    let delay = next_delay(&mut retry);
                    tracing::warn!(group, source = &*source.name, %error, "cannot read the event log; retrying");
                    if shutdown
                        .run_until_cancelled(tokio::time::sleep(delay))
                        .await
                        .is_none()
                    {
                        return;
                    }
                    continue;
                }
            };
            let Some(last) = rows.last().map(|row| row.sequence) else {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(self.options.poll_interval) => {}
                    _ = wake.changed() => {}
                }
                continue;
            };
            let events: Vec<Logged> = rows
                .into_iter()
                .map(|row| Logged {
                    sequence: row.sequence,
                    envelope: decode_envelope(&row.envelope)
                        .inspect_err(|error| {
                            tracing::error!(
                                group,
                                source = &*source.name,
                                sequence = row.sequence,
                                %error,
                                "skipping a record that is not an event envelope"
                            );
                        })
                        .ok(),
                })
                .collect();
            let handled = handle_logged_until_done(
                &self.db,
                group,
                self.handler.as_ref(),
                &source.name,
                &events,
                &shutdown,
            )
            .await;
            if handled.is_none() {
                return;
            }
            position = last;
        }
    }

    async fn read(
        &self,
        source: &Source,
        after: i64,
    ) -> Result<Vec<outbox::Model>, sea_orm::DbErr> {
        outbox::Entity::find()
            .filter(outbox::Column::Topic.is_in(self.topics.iter().map(String::as_str)))
            .filter(outbox::Column::Sequence.gt(after))
            .order_by_asc(outbox::Column::Sequence)
            .limit(self.options.batch_size)
            .all(&source.db)
            .await
    }

    /// Tells `source` this group has read its topics up to `position` (durable in the group's
    /// database already) and is alive.
    async fn report(&self, source: &Source, position: i64) -> Result<(), sea_orm::DbErr> {
        let now = chrono::Utc::now();
        let rows = self.topics.iter().map(|topic| reader::ActiveModel {
            consumer_group: Set(self.group.clone()),
            topic: Set(topic.clone()),
            position: Set(position),
            seen_at: Set(now),
        });
        reader::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([reader::Column::ConsumerGroup, reader::Column::Topic])
                    .update_columns([reader::Column::Position, reader::Column::SeenAt])
                    .to_owned(),
            )
            .exec_without_returning(&source.db)
            .await?;
        Ok(())
    }
}

/// One maintenance round of a source: forget vanished groups, remove what every group read (or,
/// for topics nobody reads, what is older than the retention), report the size.
#[autometrics]
async fn maintain(
    source: &Source,
    options: &LogOptions,
    size_warned: &mut Option<Instant>,
) -> Result<(), sea_orm::DbErr> {
    let db = &source.db;
    let now = chrono::Utc::now();
    let cutoff =
        now - chrono::Duration::from_std(options.retention).unwrap_or(chrono::Duration::MAX);
    let (vanished, live): (Vec<_>, Vec<_>) = reader::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .partition(|row| row.seen_at < cutoff);
    if !vanished.is_empty() {
        let groups: HashSet<&str> = vanished
            .iter()
            .map(|row| row.consumer_group.as_str())
            .collect();
        tracing::warn!(
            source = &*source.name,
            groups = ?groups,
            retention = %humantime::format_duration(options.retention),
            "forgetting consumer groups not seen within the retention; events only they had not read will be removed"
        );
        reader::Entity::delete_many()
            .filter(reader::Column::SeenAt.lt(cutoff))
            .exec(db)
            .await?;
    }
    let mut read_up_to: HashMap<&str, i64> = HashMap::new();
    for row in &live {
        read_up_to
            .entry(row.topic.as_str())
            .and_modify(|floor| *floor = (*floor).min(row.position))
            .or_insert(row.position);
    }
    let newest: Option<i64> = outbox::Entity::find()
        .select_only()
        .column_as(outbox::Column::Sequence.max(), "newest")
        .into_tuple::<Option<i64>>()
        .one(db)
        .await?
        .flatten();
    if let Some(newest) = newest {
        let topics: Vec<String> = outbox::Entity::find()
            .select_only()
            .column(outbox::Column::Topic)
            .distinct()
            .into_tuple()
            .all(db)
            .await?;
        for topic in topics {
            let removable = match read_up_to.get(topic.as_str()) {
                Some(&floor) => outbox::Column::Sequence.lte(floor),
                None => outbox::Column::CreatedAt.lt(cutoff),
            };
            outbox::Entity::delete_many()
                .filter(outbox::Column::Topic.eq(topic.as_str()))
                .filter(outbox::Column::Sequence.lt(newest))
                .filter(removable)
                .exec(db)
                .await?;
        }
    }
    let (rows, bytes): (i64, i64) = outbox::Entity::find()
        .select_only()
        .column_as(outbox::Column::Sequence.count(), "rows")
        .column_as(Expr::cust("COALESCE(SUM(LENGTH(envelope)), 0)"), "bytes")
        .into_tuple()
        .one(db)
        .await?
        .unwrap_or((0, 0));
    crate::telemetry::record_event_log_size(&source.name, rows, bytes);
    for row in &live {
        let unread = outbox::Entity::find()
            .filter(outbox::Column::Topic.eq(row.topic.as_str()))
            .filter(outbox::Column::Sequence.gt(row.position))
            .count(db)
            .await?;
        crate::telemetry::record_consumer_lag(
            &row.consumer_group,
            &row.topic,
            i64::try_from(unread).unwrap_or(i64::MAX),
        );
    }
    for row in &vanished {
        crate::telemetry::forget_consumer_lag(&row.consumer_group, &row.topic);
    }
    let bytes = u64::try_from(bytes).unwrap_or(0);
    if bytes > options.warn_bytes
        && size_warned.is_none_or(|at| at.elapsed() >= SIZE_WARNING_INTERVAL)
    {
        let slowest = live
            .iter()
            .min_by_key(|row| row.position)
            .map(|row| row.consumer_group.as_str());
        tracing::warn!(
            source = &*source.name,
            bytes,
            rows,
            warn_bytes = options.warn_bytes,
            slowest_group = slowest,
            "the embedded event log is past its size warning: a consumer group is slow or stuck"
        );
        *size_warned = Some(Instant::now());
    }
    Ok(())
}
