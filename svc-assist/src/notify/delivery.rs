//! The delivery worker: one per process, safe with any number of replicas. It claims due Slack
//! deliveries (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite has one writer) under a lease,
//! holds each runner's DM channel while a message is in flight and for the channel interval
//! after it left (≤ 1 message/s per channel, across replicas), paces the workspace with a rate
//! limiter, and settles every answer as Slack's semantics say (`domain::slack`).
//!
//! Never twice: a delivery row exists once per (event, recipient, channel); the worker marks
//! it `request_started_at` (its lease still valid) just before the request leaves, so a claim
//! lost with its worker is settled as AMBIGUOUS when the request may have left (not resent) and
//! back to PENDING when it cannot have.

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use runmesh_platform::db::begin_write;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde_json::Value;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::AssistConfig;
use crate::domain::slack::{self, Outcome};
use crate::domain::templates::link_label;
use crate::domain::{Channel, DeliveryStatus, RetrySchedule, Templates};
use crate::metrics;
use crate::notify::planner::Recipient;
use crate::notify::slack::{CallError, SlackClient};
use crate::notify::workspace::Workspace;
use crate::store::{delivery, notification, profile};

/// Digests sent per round at most.
const DIGEST_BATCH: u64 = 200;

/// What one claim holds: one delivery, or a runner's digest rows.
#[derive(Debug, Clone)]
struct Claim {
    user_id: String,
    delivery_ids: Vec<Uuid>,
    notification_ids: Vec<Uuid>,
    attempts: i32,
    created_at: DateTime<Utc>,
    digest: bool,
}

/// How a delivery ends (for now).
#[derive(Debug, Clone, PartialEq)]
enum Settle {
    Sent(String),
    Retry {
        at: DateTime<Utc>,
        error: String,
    },
    Failed(String),
    Ambiguous(String),
    Skipped(String),
    /// Back in the queue without counting a try (workspace stopped or paused).
    Hold {
        at: DateTime<Utc>,
        error: String,
    },
}

pub struct DeliveryWorker {
    db: DatabaseConnection,
    slack: SlackClient,
    workspace: Arc<Workspace>,
    templates: Arc<Templates>,
    wake: Arc<Notify>,
    limiter: DefaultDirectRateLimiter,
    schedule: RetrySchedule,
    channel_interval: chrono::Duration,
    lease: chrono::Duration,
    poll: Duration,
    digest_interval: Duration,
    concurrency: usize,
}

fn chrono(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

impl DeliveryWorker {
    pub fn new(
        db: DatabaseConnection,
        slack: SlackClient,
        workspace: Arc<Workspace>,
        templates: Arc<Templates>,
        wake: Arc<Notify>,
        config: &AssistConfig,
    ) -> Self {
        let rate = NonZeroU32::new(u32::try_from(config.notify_workspace_rate).unwrap_or(u32::MAX))
            .unwrap_or(NonZeroU32::MIN);
        Self {
            db,
            slack,
            workspace,
            templates,
            wake,
            limiter: RateLimiter::direct(Quota::per_second(rate)),
            schedule: config.retry_schedule(),
            channel_interval: chrono(config.notify_channel_interval),
            lease: chrono(config.notify_lease),
            poll: config.notify_poll_interval,
            digest_interval: config.notify_digest_interval,
            concurrency: usize::try_from(config.notify_concurrency).unwrap_or(32),
        }
    }

    /// Delivers until `shutdown`, then waits for the messages in flight.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken) {
        let permits = Arc::new(Semaphore::new(self.concurrency));
        let in_flight = tokio_util::task::TaskTracker::new();
        let mut next_digest = tokio::time::Instant::now() + self.digest_interval;
        let settle_every = (self.lease / 4).to_std().unwrap_or(Duration::from_secs(1));
        let mut next_settle = tokio::time::Instant::now();
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            if tokio::time::Instant::now() >= next_settle {
                next_settle = tokio::time::Instant::now() + settle_every;
                if let Err(error) = self.settle_lost().await {
                    tracing::warn!(%error, "settling lost Slack deliveries failed");
                }
            }
            if let Err(error) = self.workspace.refresh(&self.db).await {
                tracing::warn!(%error, "reading the Slack workspace state failed");
            }
            if self.workspace.stopped().is_some() {
                self.idle(&shutdown, self.poll * 4).await;
                continue;
            }
            if let Some(until) = self.workspace.paused_until() {
                let wait = (until - Utc::now()).to_std().unwrap_or_default();
                if !wait.is_zero() {
                    self.idle(&shutdown, wait).await;
                    continue;
                }
            }
            let mut claims = match self.claim(self.concurrency as u64 * 2).await {
                Ok(claims) => claims,
                Err(error) => {
                    tracing::warn!(%error, "claiming Slack deliveries failed");
                    Vec::new()
                }
            };
            if tokio::time::Instant::now() >= next_digest {
                next_digest = tokio::time::Instant::now() + self.digest_interval;
                match self.claim_digests().await {
                    Ok(digests) => claims.extend(digests),
                    Err(error) => tracing::warn!(%error, "claiming digests failed"),
                }
            }
            if claims.is_empty() {
                self.idle(&shutdown, self.poll).await;
                continue;
            }
            for claim in claims {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    break;
                };
                let worker = Arc::clone(&self);
                in_flight.spawn(async move {
                    worker.deliver(claim).await;
                    drop(permit);
                });
            }
        }
        in_flight.close();
        in_flight.wait().await;
    }

    async fn idle(&self, shutdown: &CancellationToken, wait: Duration) {
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = self.wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }

    /// Claims past their lease: AMBIGUOUS when the request may have left, else back in line.
    pub async fn settle_lost(&self) -> Result<u64, DbErr> {
        let now = Utc::now();
        let lost = delivery::Entity::find()
            .filter(delivery::Column::Status.eq(DeliveryStatus::Sending.code()))
            .filter(delivery::Column::LeaseUntil.lt(now))
            .count(&self.db)
            .await?;
        if lost == 0 {
            return Ok(0);
        }
        let ambiguous = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::Ambiguous.code()),
            )
            .col_expr(
                delivery::Column::LastError,
                Expr::value("the sending worker stopped before Slack answered"),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Sending.code()))
            .filter(delivery::Column::LeaseUntil.lt(now))
            .filter(delivery::Column::RequestStartedAt.is_not_null())
            .exec(&self.db)
            .await?
            .rows_affected;
        let requeued = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::Pending.code()),
            )
            .col_expr(
                delivery::Column::LeaseUntil,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Sending.code()))
            .filter(delivery::Column::LeaseUntil.lt(now))
            .filter(delivery::Column::RequestStartedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected;
        metrics::notifications(Channel::Slack, metrics::Outcome::Ambiguous, ambiguous);
        if ambiguous > 0 {
            tracing::warn!(
                deliveries = ambiguous,
                "Slack deliveries lost mid-request are AMBIGUOUS (not resent)"
            );
        }
        Ok(ambiguous + requeued)
    }

    /// Takes the runner's DM channel for a claim: free → held for the lease. `Err(free_at)`
    /// when another message holds it or left less than the interval ago; `Ok` also when the
    /// runner has no profile (the delivery will be skipped).
    async fn take_channel(
        &self,
        conn: &impl ConnectionTrait,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Result<(), DateTime<Utc>>, DbErr> {
        let taken = profile::Entity::update_many()
            .col_expr(
                profile::Column::SlackNextPostAt,
                Expr::value(now + self.lease),
            )
            .filter(profile::Column::UserId.eq(user_id))
            .filter(
                sea_orm::Condition::any()
                    .add(profile::Column::SlackNextPostAt.is_null())
                    .add(profile::Column::SlackNextPostAt.lte(now)),
            )
            .exec(conn)
            .await?
            .rows_affected;
        if taken > 0 {
            return Ok(Ok(()));
        }
        let held = profile::Entity::find_by_id(user_id.to_owned())
            .one(conn)
            .await?;
        Ok(match held.and_then(|p| p.slack_next_post_at) {
            Some(free_at) => Err(free_at.min(now + self.channel_interval)),
            None => Ok(()),
        })
    }

    async fn claim(&self, limit: u64) -> Result<Vec<Claim>, DbErr> {
        let now = Utc::now();
        // A read first: an idle worker takes no write lock (SQLite has one writer).
        let due = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::Channel.eq(Channel::Slack.code()))
            .filter(delivery::Column::Status.is_in([
                DeliveryStatus::Pending.code(),
                DeliveryStatus::Deferred.code(),
            ]))
            .filter(delivery::Column::NextAttemptAt.lte(now))
            .limit(1)
            .into_tuple::<uuid::Uuid>()
            .one(&self.db)
            .await?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let txn = begin_write(&self.db).await?;
        let mut query = delivery::Entity::find()
            .filter(delivery::Column::Channel.eq(Channel::Slack.code()))
            .filter(delivery::Column::Status.is_in([
                DeliveryStatus::Pending.code(),
                DeliveryStatus::Deferred.code(),
            ]))
            .filter(delivery::Column::NextAttemptAt.lte(now))
            .order_by_asc(delivery::Column::NextAttemptAt)
            .limit(limit);
        if txn.get_database_backend() == DbBackend::Postgres {
            query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let rows = query.all(&txn).await?;
        let mut busy: HashSet<String> = HashSet::new();
        let mut claims = Vec::new();
        for row in rows {
            let free = if busy.contains(&row.user_id) {
                Err(now + self.channel_interval)
            } else {
                self.take_channel(&txn, &row.user_id, now).await?
            };
            if let Err(free_at) = free {
                busy.insert(row.user_id.clone());
                delivery::Entity::update_many()
                    .col_expr(delivery::Column::NextAttemptAt, Expr::value(free_at))
                    .filter(delivery::Column::Id.eq(row.id))
                    .exec(&txn)
                    .await?;
                continue;
            }
            busy.insert(row.user_id.clone());
            delivery::Entity::update_many()
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Sending.code()),
                )
                .col_expr(delivery::Column::LeaseUntil, Expr::value(now + self.lease))
                .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
                .filter(delivery::Column::Id.eq(row.id))
                .exec(&txn)
                .await?;
            claims.push(Claim {
                user_id: row.user_id,
                delivery_ids: vec![row.id],
                notification_ids: vec![row.notification_id],
                attempts: row.attempts,
                created_at: row.created_at,
                digest: false,
            });
        }
        txn.commit().await?;
        Ok(claims)
    }

    /// Each runner's digest rows as one claim.
    async fn claim_digests(&self) -> Result<Vec<Claim>, DbErr> {
        let now = Utc::now();
        let users: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::UserId)
            .distinct()
            .filter(delivery::Column::Channel.eq(Channel::Slack.code()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Digest.code()))
            .limit(DIGEST_BATCH)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut claims = Vec::new();
        for user_id in users {
            let txn = begin_write(&self.db).await?;
            let mut query = delivery::Entity::find()
                .filter(delivery::Column::UserId.eq(&user_id))
                .filter(delivery::Column::Channel.eq(Channel::Slack.code()))
                .filter(delivery::Column::Status.eq(DeliveryStatus::Digest.code()))
                .order_by_asc(delivery::Column::CreatedAt)
                .limit(50);
            if txn.get_database_backend() == DbBackend::Postgres {
                query = query.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
            }
            let rows = query.all(&txn).await?;
            if rows.is_empty() || self.take_channel(&txn, &user_id, now).await?.is_err() {
                continue;
            }
            let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
            delivery::Entity::update_many()
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Sending.code()),
                )
                .col_expr(delivery::Column::LeaseUntil, Expr::value(now + self.lease))
                .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
                .filter(delivery::Column::Id.is_in(ids.clone()))
                .exec(&txn)
                .await?;
            txn.commit().await?;
            claims.push(Claim {
                user_id,
                notification_ids: rows.iter().map(|r| r.notification_id).collect(),
                attempts: rows.iter().map(|r| r.attempts).max().unwrap_or(0),
                created_at: rows.iter().map(|r| r.created_at).min().unwrap_or(now),
                delivery_ids: ids,
                digest: true,
            });
        }
        Ok(claims)
    }

    async fn deliver(&self, claim: Claim) {
        let (settle, request_left) = match self.attempt(&claim).await {
            Ok(result) => result,
            Err(error) => {
                tracing::warn!(%error, user_id = %claim.user_id, "a Slack delivery failed on the database; its lease will settle it");
                return;
            }
        };
        if let Err(error) = self.finish(&claim, &settle, request_left).await {
            tracing::warn!(%error, user_id = %claim.user_id, "recording a Slack delivery's outcome failed; its lease will settle it");
        }
        self.wake.notify_one();
    }

    /// Sends the claim; returns how it settles and when the request left (if it did).
    async fn attempt(&self, claim: &Claim) -> Result<(Settle, Option<DateTime<Utc>>), DbErr> {
        let recipient = Recipient::load(&self.db, &claim.user_id).await?;
        let Some(profile) = recipient
            .profile
            .as_ref()
            .filter(|p| !p.slack_member_id.is_empty())
        else {
            return Ok((
                Settle::Skipped("no Slack member id in the runner's profile".to_owned()),
                None,
            ));
        };
        if !profile.slack_invalid.is_empty() {
            return Ok((
                Settle::Skipped(format!(
                    "Slack refused the member id: {}",
                    profile.slack_invalid
                )),
                None,
            ));
        }
        let notifications = notification::Entity::find()
            .filter(notification::Column::Id.is_in(claim.notification_ids.clone()))
            .order_by_asc(notification::Column::Id)
            .all(&self.db)
            .await?;
        if notifications.is_empty() {
            return Ok((
                Settle::Skipped("the notification was erased".to_owned()),
                None,
            ));
        }
        if let Some(reason) = self.workspace.stopped() {
            return Ok((
                Settle::Hold {
                    at: Utc::now(),
                    error: reason,
                },
                None,
            ));
        }
        if let Some(until) = self.workspace.paused_until() {
            return Ok((
                Settle::Hold {
                    at: until,
                    error: "Slack asked to slow down".to_owned(),
                },
                None,
            ));
        }
        self.limiter.until_ready().await;

        let channel = if profile.slack_channel_id.is_empty() {
            match self.slack.open_conversation(&profile.slack_member_id).await {
                Ok(Outcome::Ok(channel)) if !channel.is_empty() => {
                    profile::Entity::update_many()
                        .col_expr(
                            profile::Column::SlackChannelId,
                            Expr::value(channel.clone()),
                        )
                        .filter(profile::Column::UserId.eq(&claim.user_id))
                        .filter(profile::Column::SlackMemberId.eq(&profile.slack_member_id))
                        .exec(&self.db)
                        .await?;
                    channel
                }
                Ok(Outcome::Ok(_)) => {
                    return Ok((
                        self.settle_outcome(
                            claim,
                            Outcome::Transient("conversations.open returned no channel".to_owned()),
                        )
                        .await?,
                        None,
                    ));
                }
                Ok(outcome) => return Ok((self.settle_outcome(claim, outcome).await?, None)),
                // Opening a DM twice is harmless: a lost answer is retried like a failure.
                Err(CallError::NotSent(error) | CallError::Lost(error)) => {
                    return Ok((
                        self.settle_outcome(claim, Outcome::Transient(error))
                            .await?,
                        None,
                    ));
                }
            }
        } else {
            profile.slack_channel_id.clone()
        };

        let body = self.message(&channel, &notifications, &recipient, claim.digest);
        // The last moment the claim is checked: from here the request may leave.
        let started = Utc::now();
        let marked = delivery::Entity::update_many()
            .col_expr(delivery::Column::RequestStartedAt, Expr::value(started))
            .col_expr(
                delivery::Column::Attempts,
                sea_orm::sea_query::ExprTrait::add(Expr::col(delivery::Column::Attempts), 1),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(started))
            .filter(delivery::Column::Id.is_in(claim.delivery_ids.clone()))
            .filter(delivery::Column::Status.eq(DeliveryStatus::Sending.code()))
            .filter(delivery::Column::LeaseUntil.gt(started))
            .exec(&self.db)
            .await?
            .rows_affected;
        if marked != claim.delivery_ids.len() as u64 {
            tracing::warn!(user_id = %claim.user_id, "a Slack claim expired before sending; left to the settler");
            return Err(DbErr::Custom("claim expired".to_owned()));
        }
        let settle = match self.slack.post_message(&body).await {
            Ok(outcome) => {
                let mut claim = claim.clone();
                claim.attempts += 1;
                self.settle_outcome(&claim, outcome).await?
            }
            Err(CallError::NotSent(error)) => {
                let mut claim = claim.clone();
                claim.attempts += 1;
                self.settle_outcome(&claim, Outcome::Transient(error))
                    .await?
            }
            Err(CallError::Lost(error)) => Settle::Ambiguous(error),
        };
        Ok((settle, Some(started)))
    }

    /// The `chat.postMessage` body of one notification, or of a digest of several.
    fn message(
        &self,
        channel: &str,
        notifications: &[notification::Model],
        recipient: &Recipient,
        digest: bool,
    ) -> Value {
        let language = recipient.language();
        if digest && notifications.len() > 1 {
            let lines: Vec<&str> = notifications.iter().map(|n| n.title.as_str()).collect();
            let rendered = self
                .templates
                .render(
                    language,
                    "digest",
                    serde_json::json!({"count": lines.len(), "lines": lines}),
                )
                .unwrap_or_else(|_| crate::domain::Rendered {
                    title: format!("{} updates", lines.len()),
                    body: lines.join("\n"),
                });
            return slack::post_message(
                channel,
                &slack::Message {
                    title: &rendered.title,
                    body: &rendered.body,
                    fields: &[],
                    link: None,
                    link_label: link_label(language),
                },
            );
        }
        let Some(first) = notifications.first() else {
            return Value::Null;
        };
        let fields: Vec<(String, String)> = serde_json::from_str(&first.fields).unwrap_or_default();
        slack::post_message(
            channel,
            &slack::Message {
                title: &first.title,
                body: &first.body,
                fields: &fields,
                link: (!first.link.is_empty()).then_some(first.link.as_str()),
                link_label: link_label(language),
            },
        )
    }

    /// What an answer means for the claim (and the workspace, and the runner's Slack id).
    async fn settle_outcome(&self, claim: &Claim, outcome: Outcome) -> Result<Settle, DbErr> {
        let now = Utc::now();
        Ok(match outcome {
            Outcome::Ok(ts) => Settle::Sent(ts),
            Outcome::RateLimited(wait) => {
                let until = now + chrono(wait);
                self.workspace.pause(&self.db, until).await?;
                tracing::warn!(
                    retry_after_s = wait.as_secs(),
                    "Slack rate limited the workspace; pausing"
                );
                Settle::Hold {
                    at: until,
                    error: "ratelimited".to_owned(),
                }
            }
            Outcome::Transient(error) => {
                let attempts = u32::try_from(claim.attempts).unwrap_or(0).max(1);
                let elapsed = (now - claim.created_at).to_std().unwrap_or_default();
                match self.schedule.next_delay(attempts, elapsed) {
                    Some(delay) => Settle::Retry {
                        at: now + chrono(delay),
                        error,
                    },
                    None => Settle::Failed(format!("{error} (gave up after {attempts} tries)")),
                }
            }
            Outcome::StopWorkspace(error) => {
                self.workspace.stop(&self.db, &error).await?;
                Settle::Hold { at: now, error }
            }
            Outcome::InvalidRecipient(error) => {
                self.invalidate_recipient(&claim.user_id, &error).await?;
                Settle::Failed(error)
            }
            Outcome::Rejected(error) => Settle::Failed(error),
        })
    }

    /// Slack refused the runner's member id: remember it (they see it in their preferences)
    /// and skip their other Slack deliveries.
    async fn invalidate_recipient(&self, user_id: &str, error: &str) -> Result<(), DbErr> {
        let now = Utc::now();
        let txn = begin_write(&self.db).await?;
        profile::Entity::update_many()
            .col_expr(profile::Column::SlackInvalid, Expr::value(error))
            .col_expr(profile::Column::SlackChannelId, Expr::value(""))
            .filter(profile::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        let skipped = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::Status,
                Expr::value(DeliveryStatus::Skipped.code()),
            )
            .col_expr(
                delivery::Column::LastError,
                Expr::value(format!("Slack refused the member id: {error}")),
            )
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now))
            .filter(delivery::Column::UserId.eq(user_id))
            .filter(delivery::Column::Channel.eq(Channel::Slack.code()))
            .filter(delivery::Column::Status.is_in([
                DeliveryStatus::Pending.code(),
                DeliveryStatus::Deferred.code(),
                DeliveryStatus::Digest.code(),
            ]))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        metrics::notifications(Channel::Slack, metrics::Outcome::Suppressed, skipped);
        tracing::warn!(%user_id, %error, "Slack refused a runner's member id; their Slack delivery is off until it changes");
        Ok(())
    }

    /// Records the outcome and frees the runner's channel (the interval after the answer when a
    /// request left, at once when none did).
    async fn finish(
        &self,
        claim: &Claim,
        settle: &Settle,
        request_left: Option<DateTime<Utc>>,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let none = Option::<DateTime<Utc>>::None;
        let mut update = delivery::Entity::update_many()
            .col_expr(delivery::Column::LeaseUntil, Expr::value(none))
            .col_expr(delivery::Column::UpdatedAt, Expr::value(now));
        update = match settle {
            Settle::Sent(ts) => update
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Sent.code()),
                )
                .col_expr(
                    delivery::Column::SentAt,
                    Expr::value(request_left.unwrap_or(now)),
                )
                .col_expr(delivery::Column::ExternalId, Expr::value(ts.clone()))
                .col_expr(delivery::Column::LastError, Expr::value("")),
            Settle::Retry { at, error } | Settle::Hold { at, error } => update
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(if claim.digest {
                        DeliveryStatus::Digest.code()
                    } else {
                        DeliveryStatus::Pending.code()
                    }),
                )
                .col_expr(delivery::Column::NextAttemptAt, Expr::value(*at))
                .col_expr(delivery::Column::RequestStartedAt, Expr::value(none))
                .col_expr(delivery::Column::LastError, Expr::value(error.clone())),
            Settle::Failed(error) => update
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Failed.code()),
                )
                .col_expr(delivery::Column::LastError, Expr::value(error.clone())),
            Settle::Ambiguous(error) => update
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Ambiguous.code()),
                )
                .col_expr(delivery::Column::LastError, Expr::value(error.clone())),
            Settle::Skipped(error) => update
                .col_expr(
                    delivery::Column::Status,
                    Expr::value(DeliveryStatus::Skipped.code()),
                )
                .col_expr(delivery::Column::LastError, Expr::value(error.clone())),
        };
        let settled = update
            .filter(delivery::Column::Id.is_in(claim.delivery_ids.clone()))
            .exec(&self.db)
            .await?
            .rows_affected;
        let outcome = match settle {
            Settle::Sent(_) => Some(metrics::Outcome::Sent),
            Settle::Failed(_) => Some(metrics::Outcome::Failed),
            Settle::Ambiguous(_) => Some(metrics::Outcome::Ambiguous),
            Settle::Skipped(_) => Some(metrics::Outcome::Suppressed),
            Settle::Retry { .. } | Settle::Hold { .. } => None,
        };
        if let Some(outcome) = outcome {
            metrics::notifications(Channel::Slack, outcome, settled);
        }
        // From the answer, not the request: Slack saw the request arrive before it answered, so
        // the next one arrives at least the interval after it, however long each took in flight.
        let free_at = request_left.map_or(now, |_| now + self.channel_interval);
        profile::Entity::update_many()
            .col_expr(profile::Column::SlackNextPostAt, Expr::value(free_at))
            .filter(profile::Column::UserId.eq(&claim.user_id))
            .exec(&self.db)
            .await?;
        if let Settle::Ambiguous(error) = settle {
            tracing::warn!(user_id = %claim.user_id, %error, "a Slack message's answer was lost; marked AMBIGUOUS, not resent");
        }
        Ok(())
    }
}
