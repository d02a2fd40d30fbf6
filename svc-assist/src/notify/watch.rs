//! `WatchNotifications`: per process, one poller per watched runner reads their new inbox
//! entries every interval (so entries written by any replica's consumer arrive) and fans them
//! out to every stream of that runner over a broadcast channel. A poller stops when its last
//! watcher leaves; every stream ends when the process shuts down.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::notify::inbox::{Inbox, NotificationView};
use crate::store::notification;

/// A new inbox entry and the unread count after it.
pub type Update = Arc<(NotificationView, u64)>;

/// Entries seen per runner, remembered to skip them on the overlapping reads.
const REMEMBERED: usize = 1024;
/// How far back each read looks, for entries whose transactions committed late.
const OVERLAP: chrono::Duration = chrono::Duration::seconds(10);

pub struct WatchHub {
    inbox: Arc<Inbox>,
    interval: Duration,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    watched: parking_lot::Mutex<HashMap<String, broadcast::Sender<Update>>>,
}

impl WatchHub {
    pub fn new(
        inbox: Arc<Inbox>,
        interval: Duration,
        tasks: TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inbox,
            interval,
            tasks,
            shutdown,
            watched: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// New entries of `user_id`'s inbox from now on.
    pub fn subscribe(self: &Arc<Self>, user_id: &str) -> broadcast::Receiver<Update> {
        let mut watched = self.watched.lock();
        if let Some(sender) = watched.get(user_id) {
            return sender.subscribe();
        }
        let (sender, receiver) = broadcast::channel(256);
        watched.insert(user_id.to_owned(), sender.clone());
        self.tasks
            .spawn(Arc::clone(self).poll(user_id.to_owned(), sender, Utc::now()));
        receiver
    }

    async fn poll(
        self: Arc<Self>,
        user_id: String,
        sender: broadcast::Sender<Update>,
        since: DateTime<Utc>,
    ) {
        let mut interval = tokio::time::interval(self.interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen: HashSet<uuid::Uuid> = HashSet::new();
        let mut order: VecDeque<uuid::Uuid> = VecDeque::new();
        let mut floor = since;
        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if sender.receiver_count() == 0 {
                let mut watched = self.watched.lock();
                if sender.receiver_count() == 0 {
                    watched.remove(&user_id);
                    return;
                }
            }
            let read_at = Utc::now();
            let rows = notification::Entity::find()
                .filter(notification::Column::UserId.eq(&user_id))
                .filter(notification::Column::InInbox.eq(true))
                .filter(notification::Column::CreatedAt.gte(floor - OVERLAP))
                .order_by_asc(notification::Column::Id)
                .limit(500)
                .all(self.inbox.db())
                .await;
            let rows = match rows {
                Ok(rows) => rows,
                Err(error) => {
                    tracing::warn!(%user_id, %error, "reading a watched inbox failed");
                    continue;
                }
            };
            let fresh: Vec<notification::Model> = rows
                .into_iter()
                .filter(|row| row.created_at >= since && !seen.contains(&row.id))
                .collect();
            floor = read_at;
            if fresh.is_empty() {
                continue;
            }
            for row in &fresh {
                seen.insert(row.id);
                order.push_back(row.id);
                if order.len() > REMEMBERED
                    && let Some(old) = order.pop_front()
                {
                    seen.remove(&old);
                }
            }
            let unread = self.inbox.unread_count(&user_id).await.unwrap_or(0);
            match self.inbox_views(fresh).await {
                Ok(views) => {
                    for view in views {
                        let _ = sender.send(Arc::new((view, unread)));
                    }
                }
                Err(error) => tracing::warn!(%user_id, %error, "reading a watched inbox failed"),
            }
        }
        self.watched.lock().remove(&user_id);
    }

    async fn inbox_views(
        &self,
        rows: Vec<notification::Model>,
    ) -> Result<Vec<NotificationView>, crate::error::Error> {
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            views.push(self.inbox.get(&row.user_id, row.id).await?);
        }
        Ok(views)
    }
}
