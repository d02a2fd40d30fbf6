//! The in-process transport for embedded mode: per topic, an append-only log in memory with one
//! committed offset per consumer group. One log per topic keeps every aggregate's order.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use sea_orm::DatabaseConnection;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::consumer::{EventHandler, handle_until_done};
use super::envelope::decode_envelope;

/// A topic with no consumer group yet keeps at most this many records, so events nobody
/// subscribes to do not grow memory forever. Groups subscribed at start-up never miss any.
const RETAINED_WITHOUT_CONSUMERS: usize = 10_000;

#[derive(Default)]
struct TopicLog {
    /// Offset of `records[0]`.
    first_offset: u64,
    records: VecDeque<Arc<[u8]>>,
    committed: HashMap<String, u64>,
}

impl TopicLog {
    fn end_offset(&self) -> u64 {
        self.first_offset + self.records.len() as u64
    }

    /// The first record at or after `offset`, with its offset.
    fn first_from(&self, offset: u64) -> Option<(u64, Arc<[u8]>)> {
        let offset = offset.max(self.first_offset);
        let index = usize::try_from(offset - self.first_offset).ok()?;
        Some((offset, self.records.get(index)?.clone()))
    }

    /// Drops what every group has committed (or the oldest overflow when nobody subscribed).
    fn trim(&mut self) {
        let keep_from = match self.committed.values().min() {
            Some(&slowest) => slowest,
            None => self
                .end_offset()
                .saturating_sub(RETAINED_WITHOUT_CONSUMERS as u64),
        };
        while self.first_offset < keep_from && self.records.pop_front().is_some() {
            self.first_offset += 1;
        }
    }
}

pub(crate) struct MemoryBus {
    topics: Mutex<HashMap<String, TopicLog>>,
    appended: watch::Sender<()>,
}

impl MemoryBus {
    pub(crate) fn new() -> Self {
        Self {
            topics: Mutex::new(HashMap::new()),
            appended: watch::Sender::new(()),
        }
    }

    /// Appends records to their topics, in the order given, and wakes consumers.
    pub(crate) fn append<'a>(&self, records: impl IntoIterator<Item = (&'a str, &'a [u8])>) {
        {
            let mut topics = self.topics.lock();
            for (topic, payload) in records {
                let log = topics.entry(topic.to_owned()).or_default();
                log.records.push_back(Arc::from(payload));
                log.trim();
            }
        }
        self.appended.send_replace(());
    }

    /// Registers `group` on `topics` (from the start of what is retained, like Kafka's
    /// `earliest`) and returns where it resumes on each.
    fn subscribe(&self, group: &str, topics: &[String]) -> Vec<u64> {
        let mut logs = self.topics.lock();
        topics
            .iter()
            .map(|topic| {
                let log = logs.entry(topic.clone()).or_default();
                let start = log.first_offset;
                *log.committed.entry(group.to_owned()).or_insert(start)
            })
            .collect()
    }

    fn read(&self, topic: &str, offset: u64) -> Option<(u64, Arc<[u8]>)> {
        self.topics.lock().get(topic)?.first_from(offset)
    }

    fn commit(&self, group: &str, topic: &str, next_offset: u64) {
        let mut logs = self.topics.lock();
        if let Some(log) = logs.get_mut(topic) {
            let committed = log.committed.entry(group.to_owned()).or_default();
            *committed = (*committed).max(next_offset);
            log.trim();
        }
    }

    /// Consumes `topics` for `group` until `shutdown`: each record is handled (inbox + handler in
    /// one transaction, retried until it commits) before its offset is committed.
    pub(crate) async fn consume(
        self: Arc<Self>,
        group: String,
        topics: Vec<String>,
        db: DatabaseConnection,
        handler: Arc<dyn EventHandler>,
        shutdown: CancellationToken,
    ) {
        let mut appended = self.appended.subscribe();
        let mut positions = self.subscribe(&group, &topics);
        tracing::info!(group, ?topics, "in-process consumer started");
        loop {
            appended.borrow_and_update();
            let mut progressed = false;
            for (topic, position) in topics.iter().zip(positions.iter_mut()) {
                let Some((offset, record)) = self.read(topic, *position) else {
                    continue;
                };
                *position = offset;
                progressed = true;
                match decode_envelope(&record) {
                    Ok(envelope) => {
                        let handled =
                            handle_until_done(&db, &group, handler.as_ref(), &envelope, &shutdown)
                                .await;
                        if handled.is_none() {
                            return;
                        }
                    }
                    Err(error) => tracing::error!(
                        group,
                        topic,
                        offset = *position,
                        %error,
                        "skipping a record that is not an event envelope"
                    ),
                }
                *position += 1;
                self.commit(&group, topic, *position);
            }
            if !progressed {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    changed = appended.changed() => if changed.is_err() { return },
                }
            }
        }
    }
}
