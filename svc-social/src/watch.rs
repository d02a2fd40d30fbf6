//! `WatchMeetup`: per process, one poller per watched meetup reads its `version` every interval
//! (one indexed row) and, when it moved, the counts and attendee lists, fanning them out to every
//! watcher over a `tokio::sync::watch` channel. Every RSVP bumps the version in its transaction,
//! so changes made by any replica are seen. A poller stops when its last watcher leaves, and
//! every stream ends when the process shuts down.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;

use crate::core::display_names;
use crate::error::Error;
use crate::meetups::attendance;
use crate::store::meetup;
use crate::wire;

type Update = Option<Arc<proto::WatchMeetupResponse>>;

struct Watched {
    sender: watch::Sender<Update>,
}

pub struct WatchHub {
    db: DatabaseConnection,
    interval: Duration,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    watched: parking_lot::Mutex<HashMap<Uuid, Watched>>,
}

impl WatchHub {
    pub fn new(
        db: DatabaseConnection,
        interval: Duration,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            db,
            interval,
            tasks,
            shutdown,
            watched: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// Updates of a meetup (the caller's access is checked before): the current state first,
    /// then every change.
    pub fn subscribe(self: &Arc<Self>, meetup_id: Uuid) -> watch::Receiver<Update> {
        let mut watched = self.watched.lock();
        if let Some(entry) = watched.get(&meetup_id) {
            return entry.sender.subscribe();
        }
        let (sender, receiver) = watch::channel(None);
        watched.insert(
            meetup_id,
            Watched {
                sender: sender.clone(),
            },
        );
        self.tasks.spawn(Arc::clone(self).poll(meetup_id, sender));
        receiver
    }

    async fn poll(self: Arc<Self>, meetup_id: Uuid, sender: watch::Sender<Update>) {
        let mut interval = tokio::time::interval(self.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: Option<(i64, String)> = None;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if sender.receiver_count() == 0 {
                let mut watched = self.watched.lock();
                // Checked again under the lock: a watcher may have joined meanwhile.
                if sender.receiver_count() == 0 {
                    watched.remove(&meetup_id);
                    return;
                }
            }
            let version: Result<Option<(i64, String)>, _> = meetup::Entity::find()
                .select_only()
                .column(meetup::Column::Version)
                .column(meetup::Column::Status)
                .filter(meetup::Column::Id.eq(meetup_id))
                .into_tuple()
                .one(&self.db)
                .await;
            let current = match version {
                Ok(Some(current)) => current,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%meetup_id, %error, "reading a watched meetup failed");
                    continue;
                }
            };
            if seen.as_ref() == Some(&current) {
                continue;
            }
            match self.read(meetup_id).await {
                Ok(Some(update)) => {
                    seen = Some(current);
                    sender.send_replace(Some(Arc::new(update)));
                }
                Ok(None) => break,
                Err(error) => tracing::warn!(%meetup_id, %error, "reading a watched meetup failed"),
            }
        }
        self.watched.lock().remove(&meetup_id);
    }

    async fn read(&self, meetup_id: Uuid) -> Result<Option<proto::WatchMeetupResponse>, Error> {
        let Some(meetup) = meetup::Entity::find_by_id(meetup_id).one(&self.db).await? else {
            return Ok(None);
        };
        let attendance = attendance(&self.db, meetup_id).await?;
        let names = display_names(
            &self.db,
            attendance
                .going
                .iter()
                .chain(&attendance.waitlist)
                .map(|row| row.user_id.clone()),
        )
        .await?;
        let (going, waitlist) = wire::attendees(&attendance, &names);
        Ok(Some(proto::WatchMeetupResponse {
            meetup_id: meetup_id.to_string(),
            status: wire::meetup_status(&meetup.status).into(),
            capacity: u32::try_from(meetup.capacity).unwrap_or(0),
            going_count: u32::try_from(meetup.going_count).unwrap_or(0),
            waitlist_count: u32::try_from(meetup.waitlist_count).unwrap_or(0),
            going,
            waitlist,
            observed_at: Some(wire::timestamp(wire::now())),
        }))
    }
}
