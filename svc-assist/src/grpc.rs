//! The gRPC surface of notifications: decode the request into domain values, call the inbox,
//! encode the answer. No rules live here.

use std::pin::Pin;
use std::sync::Arc;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::{Stream, StreamExt};
use runmesh_platform::auth::{Role, require_caller};
use runmesh_proto::runmesh::notify::v1 as proto;
use runmesh_proto::runmesh::notify::v1::notification_service_server::NotificationService;
use tokio_stream::wrappers::BroadcastStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::domain::{FieldViolation, Language, QuietHours};
use crate::error::Error;
use crate::notify::inbox::{Inbox, PreferencesChange};
use crate::notify::watch::WatchHub;
use crate::wire;

const API_OBJECTIVE: Objective = Objective::new("notify_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms100, ObjectivePercentile::P99);

/// `runmesh.notify.v1.NotificationService`.
pub struct NotifyApi {
    inbox: Arc<Inbox>,
    watch: Arc<WatchHub>,
}

impl NotifyApi {
    pub fn new(inbox: Arc<Inbox>, watch: Arc<WatchHub>) -> Self {
        Self { inbox, watch }
    }
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<proto::WatchNotificationsResponse, Status>> + Send + 'static>>;

#[derive(Default)]
struct Violations(Vec<FieldViolation>);

impl Violations {
    fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    fn check<T>(&mut self, field: impl Into<String>, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(description) => {
                self.add(field, description);
                None
            }
        }
    }

    fn done(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidInput(self.0))
        }
    }
}

fn parse_id(text: &str) -> Result<Uuid, String> {
    Uuid::parse_str(text.trim()).map_err(|_| format!("{text:?} is not a notification id"))
}

fn page_token(token: &str) -> Result<Option<Uuid>, String> {
    if token.is_empty() {
        return Ok(None);
    }
    URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| "is not a page token from this list".to_owned())
}

#[autometrics(objective = API_OBJECTIVE, error_if = runmesh_platform::error::server_fault)]
#[tonic::async_trait]
impl NotificationService for NotifyApi {
    async fn list_notifications(
        &self,
        request: Request<proto::ListNotificationsRequest>,
    ) -> Result<Response<proto::ListNotificationsResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        let page_size = match request.page_size {
            0 => 20,
            size @ 1..=100 => u64::from(size),
            _ => {
                violations.add("page_size", "must be 1 to 100");
                20
            }
        };
        let after = violations
            .check("page_token", page_token(&request.page_token))
            .flatten();
        violations.done()?;
        let (views, next, unread) = self
            .inbox
            .list(
                &caller.user_id,
                page_size,
                after,
                request.unread_only,
                request.include_archived,
            )
            .await?;
        Ok(Response::new(proto::ListNotificationsResponse {
            notifications: views.iter().map(wire::notification_message).collect(),
            next_page_token: next
                .map(|id| URL_SAFE_NO_PAD.encode(id.as_bytes()))
                .unwrap_or_default(),
            unread_count: u32::try_from(unread).unwrap_or(u32::MAX),
        }))
    }

    async fn mark_notifications_read(
        &self,
        request: Request<proto::MarkNotificationsReadRequest>,
    ) -> Result<Response<proto::MarkNotificationsReadResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        if !request.all && request.notification_ids.is_empty() {
            violations.add("notification_ids", "name at least one, or set all");
        }
        if request.notification_ids.len() > 500 {
            violations.add("notification_ids", "at most 500 at once");
        }
        let ids: Vec<Uuid> = request
            .notification_ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| violations.check(format!("notification_ids[{i}]"), parse_id(id)))
            .collect();
        violations.done()?;
        let (marked, unread) = self
            .inbox
            .mark_read(&caller.user_id, &ids, request.all)
            .await?;
        Ok(Response::new(proto::MarkNotificationsReadResponse {
            marked: u32::try_from(marked).unwrap_or(u32::MAX),
            unread_count: u32::try_from(unread).unwrap_or(u32::MAX),
        }))
    }

    async fn archive_notification(
        &self,
        request: Request<proto::ArchiveNotificationRequest>,
    ) -> Result<Response<proto::ArchiveNotificationResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = parse_id(&request.get_ref().notification_id)
            .map_err(|e| Error::invalid("notification_id", e))?;
        let view = self.inbox.archive(&caller.user_id, id).await?;
        Ok(Response::new(proto::ArchiveNotificationResponse {
            notification: Some(wire::notification_message(&view)),
        }))
    }

    type WatchNotificationsStream = WatchStream;

    async fn watch_notifications(
        &self,
        request: Request<proto::WatchNotificationsRequest>,
    ) -> Result<Response<Self::WatchNotificationsStream>, Status> {
        let caller = require_caller(&request)?;
        let updates = self.watch.subscribe(&caller.user_id);
        let unread = self.inbox.unread_count(&caller.user_id).await?;
        let first = proto::WatchNotificationsResponse {
            notification: None,
            unread_count: u32::try_from(unread).unwrap_or(u32::MAX),
        };
        let rest = BroadcastStream::new(updates).filter_map(|update| async move {
            // A watcher too slow for the burst skips what it missed (the list has it).
            let update = update.ok()?;
            Some(Ok(proto::WatchNotificationsResponse {
                notification: Some(wire::notification_message(&update.0)),
                unread_count: u32::try_from(update.1).unwrap_or(u32::MAX),
            }))
        });
        let stream: WatchStream = Box::pin(futures::stream::once(async { Ok(first) }).chain(rest));
        Ok(Response::new(stream))
    }

    async fn get_notification_preferences(
        &self,
        request: Request<proto::GetNotificationPreferencesRequest>,
    ) -> Result<Response<proto::GetNotificationPreferencesResponse>, Status> {
        let caller = require_caller(&request)?;
        let view = self.inbox.preferences(&caller.user_id).await?;
        Ok(Response::new(proto::GetNotificationPreferencesResponse {
            preferences: Some(wire::preferences_message(&view)),
        }))
    }

    async fn update_notification_preferences(
        &self,
        request: Request<proto::UpdateNotificationPreferencesRequest>,
    ) -> Result<Response<proto::UpdateNotificationPreferencesResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::default();
        let mut change = PreferencesChange::default();
        for (i, preference) in request.channels.iter().enumerate() {
            let category = violations.check(
                format!("channels[{i}].category"),
                wire::parse_category(preference.category),
            );
            let channel = violations.check(
                format!("channels[{i}].channel"),
                wire::parse_channel(preference.channel),
            );
            if let (Some(category), Some(channel)) = (category, channel) {
                change
                    .channels
                    .push((category, channel, preference.enabled));
            }
        }
        if let Some(quiet) = &request.quiet_hours {
            match QuietHours::parse(&quiet.start, &quiet.end) {
                Ok(hours) => change.quiet = Some((quiet.enabled, hours)),
                Err((field, description)) => violations.add(field, description),
            }
        }
        if request.update_digest_categories {
            let mut digest = Vec::new();
            for (i, value) in request.digest_categories.iter().enumerate() {
                if let Some(category) = violations.check(
                    format!("digest_categories[{i}]"),
                    wire::parse_category(*value),
                ) && !digest.contains(&category)
                {
                    digest.push(category);
                }
            }
            change.digest = Some(digest);
        }
        if !request.language.is_empty() {
            change.language = violations.check("language", Language::parse(&request.language));
        }
        violations.done()?;
        let view = self
            .inbox
            .update_preferences(&caller.user_id, change)
            .await?;
        Ok(Response::new(
            proto::UpdateNotificationPreferencesResponse {
                preferences: Some(wire::preferences_message(&view)),
            },
        ))
    }

    async fn send_test_notification(
        &self,
        request: Request<proto::SendTestNotificationRequest>,
    ) -> Result<Response<proto::SendTestNotificationResponse>, Status> {
        let caller = require_caller(&request)?;
        let view = self.inbox.send_test(&caller.user_id).await?;
        Ok(Response::new(proto::SendTestNotificationResponse {
            notification: Some(wire::notification_message(&view)),
        }))
    }

    async fn get_delivery_stats(
        &self,
        request: Request<proto::GetDeliveryStatsRequest>,
    ) -> Result<Response<proto::GetDeliveryStatsResponse>, Status> {
        let caller = require_caller(&request)?;
        if !caller.is_admin() {
            return Err(Error::RoleRequired(Role::Admin).into());
        }
        let stats = self.inbox.stats().await?;
        Ok(Response::new(wire::stats_message(&stats)))
    }
}
