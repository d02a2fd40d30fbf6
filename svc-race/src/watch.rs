//! `WatchRace`: per process, one poller per watched race reads its places every interval and
//! fans changes out to every watcher over a `tokio::sync::watch` channel. A thousand watchers of
//! one race cost one database read per interval; a poller stops when its last watcher leaves,
//! and every stream ends when the process shuts down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use runmesh_proto::runmesh::race::v1 as proto;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::error::Error;
use crate::wire;

type Update = Option<Arc<proto::WatchRaceResponse>>;

pub struct WatchHub {
    catalog: Arc<Catalog>,
    interval: Duration,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    watched: parking_lot::Mutex<HashMap<Uuid, watch::Sender<Update>>>,
}

impl WatchHub {
    pub fn new(
        catalog: Arc<Catalog>,
        interval: Duration,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            catalog,
            interval,
            tasks,
            shutdown,
            watched: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Updates of a published race: the current state first, then every change.
    pub fn subscribe(self: &Arc<Self>, race_id: Uuid) -> watch::Receiver<Update> {
        let mut watched = self.watched.lock();
        if let Some(sender) = watched.get(&race_id) {
            return sender.subscribe();
        }
        let (sender, receiver) = watch::channel(None);
        watched.insert(race_id, sender.clone());
        self.tasks.spawn(Arc::clone(self).poll(race_id, sender));
        receiver
    }

    async fn poll(self: Arc<Self>, race_id: Uuid, sender: watch::Sender<Update>) {
        let mut interval = tokio::time::interval(self.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if sender.receiver_count() == 0 {
                let mut watched = self.watched.lock();
                // Checked again under the lock: a watcher may have joined meanwhile.
                if sender.receiver_count() == 0 {
                    watched.remove(&race_id);
                    return;
                }
            }
            match self.read(race_id).await {
                Ok(update) => {
                    sender.send_if_modified(|current| {
                        let changed = current.as_deref().is_none_or(|current| {
                            current.registration_state != update.registration_state
                                || current.availability != update.availability
                                || current.sold_out != update.sold_out
                        });
                        if changed {
                            *current = Some(Arc::new(update));
                        }
                        changed
                    });
                }
                Err(error) => tracing::warn!(%race_id, %error, "reading a watched race failed"),
            }
        }
        self.watched.lock().remove(&race_id);
    }

    async fn read(&self, race_id: Uuid) -> Result<proto::WatchRaceResponse, Error> {
        let race = self.catalog.published_snapshot(race_id).await?;
        let availability = self.catalog.availability(&race).await?;
        let now = Utc::now();
        Ok(proto::WatchRaceResponse {
            race_id: race_id.to_string(),
            registration_state: wire::registration_state(race.window.state_at(now)).into(),
            availability: availability
                .iter()
                .map(wire::availability_message)
                .collect(),
            sold_out: !availability.is_empty() && availability.iter().all(|a| a.sold_out()),
            observed_at: Some(wire::timestamp(now)),
        })
    }
}
