//! The runner-facing operations: the inbox (list, mark read, archive), preferences, the test
//! notification and the admin's delivery statistics.

use std::sync::Arc;

use chrono::Utc;
use runmesh_platform::db::begin_write;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::domain::{Category, Channel, DeliveryStatus, InboxState, Language, QuietHours};
use crate::error::Error;
use crate::notify::planner::{Planned, Planner, Recipient};
use crate::notify::workspace::{SlackState, Workspace};
use crate::store::{channel_pref, delivery, notification, settings};

/// A notification with its delivery log.
#[derive(Debug, Clone)]
pub struct NotificationView {
    pub notification: notification::Model,
    pub deliveries: Vec<delivery::Model>,
}

/// The state of the runner's Slack link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackLink {
    NotLinked,
    Linked,
    Invalid(String),
}

/// A runner's effective preferences.
#[derive(Debug, Clone)]
pub struct PreferencesView {
    pub channels: Vec<(Category, Channel, bool)>,
    pub quiet_enabled: bool,
    pub quiet: QuietHours,
    pub digest: Vec<Category>,
    pub language: Language,
    pub slack: SlackLink,
    pub time_zone: String,
}

/// A change to preferences (validated).
#[derive(Debug, Clone, Default)]
pub struct PreferencesChange {
    pub channels: Vec<(Category, Channel, bool)>,
    pub quiet: Option<(bool, QuietHours)>,
    pub digest: Option<Vec<Category>>,
    pub language: Option<Language>,
}

/// Delivery statistics.
#[derive(Debug, Clone)]
pub struct Stats {
    pub counts: Vec<(Channel, DeliveryStatus, u64)>,
    pub slack: SlackState,
    pub notifications: u64,
    pub backlog: u64,
}

/// Default quiet hours shown before a runner sets any: 22:00–07:00, off.
const DEFAULT_QUIET: QuietHours = QuietHours {
    start_minute: 22 * 60,
    end_minute: 7 * 60,
};

pub struct Inbox {
    db: DatabaseConnection,
    planner: Arc<Planner>,
    workspace: Arc<Workspace>,
    wake: Arc<Notify>,
}

impl Inbox {
    pub fn new(
        db: DatabaseConnection,
        planner: Arc<Planner>,
        workspace: Arc<Workspace>,
        wake: Arc<Notify>,
    ) -> Self {
        Self {
            db,
            planner,
            workspace,
            wake,
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn with_deliveries(
        &self,
        notifications: Vec<notification::Model>,
    ) -> Result<Vec<NotificationView>, Error> {
        let ids: Vec<Uuid> = notifications.iter().map(|n| n.id).collect();
        let mut deliveries = if ids.is_empty() {
            Vec::new()
        } else {
            delivery::Entity::find()
                .filter(delivery::Column::NotificationId.is_in(ids))
                .all(&self.db)
                .await?
        };
        Ok(notifications
            .into_iter()
            .map(|notification| {
                let mine = deliveries
                    .extract_if(.., |d| d.notification_id == notification.id)
                    .collect();
                NotificationView {
                    notification,
                    deliveries: mine,
                }
            })
            .collect())
    }

    pub async fn unread_count(&self, user_id: &str) -> Result<u64, Error> {
        Ok(notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::InInbox.eq(true))
            .filter(notification::Column::State.eq(InboxState::Unread.code()))
            .count(&self.db)
            .await?)
    }

    /// A page of the inbox, newest first, and the token of the next.
    pub async fn list(
        &self,
        user_id: &str,
        page_size: u64,
        after: Option<Uuid>,
        unread_only: bool,
        include_archived: bool,
    ) -> Result<(Vec<NotificationView>, Option<Uuid>, u64), Error> {
        let mut query = notification::Entity::find()
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::InInbox.eq(true));
        if unread_only {
            query = query.filter(notification::Column::State.eq(InboxState::Unread.code()));
        } else if !include_archived {
            query = query.filter(notification::Column::State.ne(InboxState::Archived.code()));
        }
        if let Some(after) = after {
            query = query.filter(notification::Column::Id.lt(after));
        }
        let mut rows = query
            .order_by_desc(notification::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        let next = if rows.len() as u64 > page_size {
            rows.truncate(page_size as usize);
            rows.last().map(|n| n.id)
        } else {
            None
        };
        let unread = self.unread_count(user_id).await?;
        Ok((self.with_deliveries(rows).await?, next, unread))
    }

    /// One of the runner's notifications; another runner's is NOT_FOUND.
    pub async fn get(&self, user_id: &str, id: Uuid) -> Result<NotificationView, Error> {
        let row = notification::Entity::find_by_id(id)
            .filter(notification::Column::UserId.eq(user_id))
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::NotificationNotFound(id.to_string()))?;
        let mut views = self.with_deliveries(vec![row]).await?;
        views
            .pop()
            .ok_or_else(|| Error::NotificationNotFound(id.to_string()))
    }

    /// Marks `ids` (or every unread one) read; an id that is not the runner's is NOT_FOUND and
    /// nothing changes.
    pub async fn mark_read(
        &self,
        user_id: &str,
        ids: &[Uuid],
        all: bool,
    ) -> Result<(u64, u64), Error> {
        let now = Utc::now();
        let txn = begin_write(&self.db).await?;
        if !all {
            let found = notification::Entity::find()
                .filter(notification::Column::UserId.eq(user_id))
                .filter(notification::Column::Id.is_in(ids.to_vec()))
                .count(&txn)
                .await?;
            let distinct: std::collections::HashSet<&Uuid> = ids.iter().collect();
            if found != distinct.len() as u64 {
                let owned: Vec<Uuid> = notification::Entity::find()
                    .select_only()
                    .column(notification::Column::Id)
                    .filter(notification::Column::UserId.eq(user_id))
                    .filter(notification::Column::Id.is_in(ids.to_vec()))
                    .into_tuple()
                    .all(&txn)
                    .await?;
                let missing = ids.iter().find(|id| !owned.contains(id)).copied();
                return Err(Error::NotificationNotFound(
                    missing.map(|id| id.to_string()).unwrap_or_default(),
                ));
            }
        }
        let mut update = notification::Entity::update_many()
            .col_expr(
                notification::Column::State,
                Expr::value(InboxState::Read.code()),
            )
            .col_expr(notification::Column::ReadAt, Expr::value(now))
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::State.eq(InboxState::Unread.code()));
        if !all {
            update = update.filter(notification::Column::Id.is_in(ids.to_vec()));
        }
        let marked = update.exec(&txn).await?.rows_affected;
        txn.commit().await?;
        Ok((marked, self.unread_count(user_id).await?))
    }

    pub async fn archive(&self, user_id: &str, id: Uuid) -> Result<NotificationView, Error> {
        let now = Utc::now();
        let changed = notification::Entity::update_many()
            .col_expr(
                notification::Column::State,
                Expr::value(InboxState::Archived.code()),
            )
            .col_expr(notification::Column::ArchivedAt, Expr::value(now))
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::Id.eq(id))
            .filter(notification::Column::InInbox.eq(true))
            .exec(&self.db)
            .await?
            .rows_affected;
        if changed == 0 {
            return Err(Error::NotificationNotFound(id.to_string()));
        }
        self.get(user_id, id).await
    }

    pub async fn preferences(&self, user_id: &str) -> Result<PreferencesView, Error> {
        let recipient = Recipient::load(&self.db, user_id).await?;
        let mut channels = Vec::new();
        for category in Category::CONFIGURABLE {
            for channel in Channel::ALL {
                channels.push((category, channel, recipient.enabled(category, channel)));
            }
        }
        let (quiet_enabled, quiet) = match &recipient.settings {
            Some(s) => (
                s.quiet_enabled,
                QuietHours {
                    start_minute: u16::try_from(s.quiet_start)
                        .unwrap_or(DEFAULT_QUIET.start_minute),
                    end_minute: u16::try_from(s.quiet_end).unwrap_or(DEFAULT_QUIET.end_minute),
                },
            ),
            None => (false, DEFAULT_QUIET),
        };
        let slack = match &recipient.profile {
            Some(p) if !p.slack_invalid.is_empty() => SlackLink::Invalid(p.slack_invalid.clone()),
            Some(p) if !p.slack_member_id.is_empty() => SlackLink::Linked,
            _ => SlackLink::NotLinked,
        };
        Ok(PreferencesView {
            channels,
            quiet_enabled,
            quiet,
            digest: recipient.digest_categories(),
            language: recipient.language(),
            slack,
            time_zone: recipient.time_zone().name().to_owned(),
        })
    }

    pub async fn update_preferences(
        &self,
        user_id: &str,
        change: PreferencesChange,
    ) -> Result<PreferencesView, Error> {
        let current = self.preferences(user_id).await?;
        let txn = begin_write(&self.db).await?;
        for (category, channel, enabled) in &change.channels {
            channel_pref::Entity::insert(channel_pref::ActiveModel {
                user_id: Set(user_id.to_owned()),
                category: Set(category.code().to_owned()),
                channel: Set(channel.code().to_owned()),
                enabled: Set(*enabled),
            })
            .on_conflict(
                OnConflict::columns([
                    channel_pref::Column::UserId,
                    channel_pref::Column::Category,
                    channel_pref::Column::Channel,
                ])
                .update_column(channel_pref::Column::Enabled)
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        }
        let (quiet_enabled, quiet) = change
            .quiet
            .unwrap_or((current.quiet_enabled, current.quiet));
        let digest = change.digest.unwrap_or(current.digest);
        let language = change.language.unwrap_or(current.language);
        settings::Entity::insert(settings::ActiveModel {
            user_id: Set(user_id.to_owned()),
            language: Set(language.code().to_owned()),
            quiet_enabled: Set(quiet_enabled),
            quiet_start: Set(i32::from(quiet.start_minute)),
            quiet_end: Set(i32::from(quiet.end_minute)),
            digest_categories: Set(digest
                .iter()
                .map(|c| c.code())
                .collect::<Vec<_>>()
                .join(",")),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(settings::Column::UserId)
                .update_columns([
                    settings::Column::Language,
                    settings::Column::QuietEnabled,
                    settings::Column::QuietStart,
                    settings::Column::QuietEnd,
                    settings::Column::DigestCategories,
                    settings::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        self.preferences(user_id).await
    }

    /// A test notification to the runner's inbox and Slack, now.
    pub async fn send_test(&self, user_id: &str) -> Result<NotificationView, Error> {
        let event_id = format!("test-{}", Uuid::now_v7());
        let planned = Planned::new("test", Category::Test, vec![user_id.to_owned()])
            .urgent()
            .link("/notifications");
        let txn = begin_write(&self.db).await?;
        let ids = self
            .planner
            .write(&txn, &event_id, &planned, Utc::now())
            .await?;
        txn.commit().await?;
        self.wake.notify_one();
        let id = ids
            .first()
            .copied()
            .ok_or_else(|| Error::NotificationNotFound(event_id.clone()))?;
        self.get(user_id, id).await
    }

    pub async fn stats(&self) -> Result<Stats, Error> {
        let rows: Vec<(String, String, i64)> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Channel)
            .column(delivery::Column::Status)
            .column_as(delivery::Column::Id.count(), "count")
            .group_by(delivery::Column::Channel)
            .group_by(delivery::Column::Status)
            .into_tuple()
            .all(&self.db)
            .await?;
        let counts = rows
            .into_iter()
            .filter_map(|(channel, status, count)| {
                Some((
                    channel.parse().ok()?,
                    status.parse().ok()?,
                    u64::try_from(count).unwrap_or(0),
                ))
            })
            .collect();
        let notifications = notification::Entity::find().count(&self.db).await?;
        let backlog = delivery::Entity::find()
            .filter(delivery::Column::Status.eq(DeliveryStatus::Pending.code()))
            .filter(delivery::Column::NextAttemptAt.lte(Utc::now()))
            .count(&self.db)
            .await?;
        Ok(Stats {
            counts,
            slack: self.workspace.state(),
            notifications,
            backlog,
        })
    }
}
