//! Turns one event's [`Planned`] notification into rows, in the consumer's transaction: per
//! recipient the inbox entry (unique per recipient and event) and the Slack delivery (unique per
//! event, recipient and channel), rendered in the runner's language and time zone, held for
//! quiet hours or the digest as their preferences say.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::domain::templates::{label, local_time};
use crate::domain::{
    Category, Channel, DeliveryStatus, InboxState, Language, ProfileChoices, QuietHours, Templates,
    channel_enabled,
};
use crate::error::Error;
use crate::metrics;
use crate::store::{channel_pref, delivery, notification, profile, settings};

/// A value shown beside the text.
#[derive(Debug, Clone)]
pub enum FieldValue {
    Text(String),
    /// Shown in the recipient's time zone.
    Time(DateTime<Utc>),
    /// Shown in the recipient's language: English, Korean.
    Localized(String, String),
    /// A path in the app, shown as a link (the public base URL prepended when there is one).
    Link(String),
}

/// One event's notification, before it is rendered for each recipient.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The template, e.g. `registration_confirmed`.
    pub kind: &'static str,
    pub category: Category,
    /// Urgent notifications are not held by quiet hours or digests.
    pub urgent: bool,
    pub recipients: Vec<String>,
    /// Template values.
    pub context: Map<String, Value>,
    /// Template values shown in the recipient's time zone.
    pub times: Vec<(&'static str, DateTime<Utc>)>,
    /// Template values given in English and Korean (e.g. a badge's name).
    pub localized: Vec<(&'static str, String, String)>,
    /// Slack fields: label key (see [`label`]) and value.
    pub fields: Vec<(&'static str, FieldValue)>,
    /// Path of the link back to the app, e.g. `/races/<id>`.
    pub link_path: Option<String>,
    /// The links lead to pages in the reader's language: `?language=en` for English readers
    /// (the pages default to Korean).
    pub language_links: bool,
}

impl Planned {
    pub fn new(kind: &'static str, category: Category, recipients: Vec<String>) -> Self {
        Self {
            kind,
            category,
            urgent: false,
            recipients,
            context: Map::new(),
            times: Vec::new(),
            localized: Vec::new(),
            fields: Vec::new(),
            link_path: None,
            language_links: false,
        }
    }

    pub fn urgent(mut self) -> Self {
        self.urgent = true;
        self
    }

    pub fn value(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.context.insert(key.to_owned(), value.into());
        self
    }

    /// A value in both languages; an empty one falls back to the other.
    pub fn localized(mut self, key: &'static str, en: &str, ko: &str) -> Self {
        let en = if en.is_empty() { ko } else { en };
        let ko = if ko.is_empty() { en } else { ko };
        self.localized.push((key, en.to_owned(), ko.to_owned()));
        self
    }

    pub fn time(mut self, key: &'static str, at: Option<DateTime<Utc>>) -> Self {
        if let Some(at) = at {
            self.times.push((key, at));
        }
        self
    }

    pub fn field(mut self, key: &'static str, value: impl Into<String>) -> Self {
        let value = value.into();
        if !value.is_empty() {
            self.fields.push((key, FieldValue::Text(value)));
        }
        self
    }

    pub fn time_field(mut self, key: &'static str, at: Option<DateTime<Utc>>) -> Self {
        if let Some(at) = at {
            self.fields.push((key, FieldValue::Time(at)));
        }
        self
    }

    /// A field in both languages; an empty one falls back to the other.
    pub fn localized_field(mut self, key: &'static str, en: &str, ko: &str) -> Self {
        let en = if en.is_empty() { ko } else { en };
        let ko = if ko.is_empty() { en } else { ko };
        if !en.is_empty() {
            self.fields
                .push((key, FieldValue::Localized(en.to_owned(), ko.to_owned())));
        }
        self
    }

    /// A field linking to `path` in the app.
    pub fn link_field(mut self, key: &'static str, path: impl Into<String>) -> Self {
        self.fields.push((key, FieldValue::Link(path.into())));
        self
    }

    pub fn link(mut self, path: impl Into<String>) -> Self {
        self.link_path = Some(path.into());
        self
    }

    /// Links (and link fields) carry the reader's language (`?language=en`).
    pub fn language_links(mut self) -> Self {
        self.language_links = true;
        self
    }
}

/// What the planner needs to know of one recipient.
#[derive(Debug, Clone)]
pub struct Recipient {
    pub profile: Option<profile::Model>,
    pub settings: Option<settings::Model>,
    pub overrides: Vec<(Category, Channel, bool)>,
}

impl Recipient {
    pub async fn load(conn: &impl ConnectionTrait, user_id: &str) -> Result<Self, DbErr> {
        let profile = profile::Entity::find_by_id(user_id.to_owned())
            .one(conn)
            .await?;
        let settings = settings::Entity::find_by_id(user_id.to_owned())
            .one(conn)
            .await?;
        let overrides = channel_pref::Entity::find()
            .filter(channel_pref::Column::UserId.eq(user_id))
            .all(conn)
            .await?
            .into_iter()
            .filter_map(|row| {
                Some((
                    row.category.parse().ok()?,
                    row.channel.parse().ok()?,
                    row.enabled,
                ))
            })
            .collect();
        Ok(Self {
            profile,
            settings,
            overrides,
        })
    }

    pub fn choices(&self) -> ProfileChoices {
        self.profile
            .as_ref()
            .map_or_else(ProfileChoices::default, |p| ProfileChoices {
                race_opening: p.pref_race_opening,
                registration: p.pref_registration,
                achievement: p.pref_achievement,
                crew_activity: p.pref_crew_activity,
            })
    }

    pub fn enabled(&self, category: Category, channel: Channel) -> bool {
        channel_enabled(category, channel, self.choices(), &self.overrides)
    }

    pub fn language(&self) -> Language {
        self.settings
            .as_ref()
            .and_then(|s| Language::parse(&s.language).ok())
            .unwrap_or_default()
    }

    pub fn time_zone(&self) -> Tz {
        self.profile
            .as_ref()
            .and_then(|p| p.time_zone.parse().ok())
            .unwrap_or(chrono_tz::Asia::Seoul)
    }

    pub fn quiet_hours(&self) -> Option<QuietHours> {
        let settings = self.settings.as_ref().filter(|s| s.quiet_enabled)?;
        Some(QuietHours {
            start_minute: u16::try_from(settings.quiet_start).ok()?,
            end_minute: u16::try_from(settings.quiet_end).ok()?,
        })
    }

    pub fn digest_categories(&self) -> Vec<Category> {
        self.settings
            .as_ref()
            .map(|s| {
                s.digest_categories
                    .split(',')
                    .filter_map(|code| code.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Writes notifications and deliveries.
#[derive(Debug)]
pub struct Planner {
    templates: std::sync::Arc<Templates>,
    slack_on: bool,
    base_url: Option<String>,
}

impl Planner {
    pub fn new(
        templates: std::sync::Arc<Templates>,
        slack_on: bool,
        base_url: Option<String>,
    ) -> Self {
        Self {
            templates,
            slack_on,
            base_url,
        }
    }

    pub fn slack_on(&self) -> bool {
        self.slack_on
    }

    /// Writes `planned` for each recipient in `conn`'s transaction; returns the ids of the
    /// notifications written (none for a recipient who turned the category off everywhere, or
    /// who already has this event's).
    pub async fn write(
        &self,
        conn: &impl ConnectionTrait,
        event_id: &str,
        planned: &Planned,
        now: DateTime<Utc>,
    ) -> Result<Vec<Uuid>, Error> {
        let mut written = Vec::new();
        let recipients: BTreeSet<&str> = planned
            .recipients
            .iter()
            .map(String::as_str)
            .filter(|id| !id.is_empty())
            .collect();
        for user_id in recipients {
            let recipient = Recipient::load(conn, user_id).await?;
            if let Some(id) = self
                .write_one(conn, event_id, planned, user_id, &recipient, now)
                .await?
            {
                written.push(id);
            }
        }
        Ok(written)
    }

    async fn write_one(
        &self,
        conn: &impl ConnectionTrait,
        event_id: &str,
        planned: &Planned,
        user_id: &str,
        recipient: &Recipient,
        now: DateTime<Utc>,
    ) -> Result<Option<Uuid>, Error> {
        let in_inbox = recipient.enabled(planned.category, Channel::Inbox);
        let to_slack = self.slack_on && recipient.enabled(planned.category, Channel::Slack);
        if !in_inbox && !to_slack {
            metrics::notifications(Channel::Inbox, metrics::Outcome::Suppressed, 1);
            if self.slack_on {
                metrics::notifications(Channel::Slack, metrics::Outcome::Suppressed, 1);
            }
            return Ok(None);
        }
        let language = recipient.language();
        let tz = recipient.time_zone();
        let mut context = planned.context.clone();
        for (key, at) in &planned.times {
            context.insert((*key).to_owned(), Value::String(local_time(*at, tz)));
        }
        for (key, en, ko) in &planned.localized {
            let value = match language {
                Language::English => en,
                Language::Korean => ko,
            };
            context.insert((*key).to_owned(), Value::String(value.clone()));
        }
        if let Some(profile) = &recipient.profile {
            context
                .entry("display_name")
                .or_insert_with(|| Value::String(profile.display_name.clone()));
        }
        let rendered = self
            .templates
            .render(language, planned.kind, Value::Object(context))?;
        let localize = |path: &str| {
            if planned.language_links && language == Language::English {
                let separator = if path.contains('?') { '&' } else { '?' };
                format!("{path}{separator}language=en")
            } else {
                path.to_owned()
            }
        };
        let fields: Vec<(String, String)> = planned
            .fields
            .iter()
            .map(|(key, value)| {
                let value = match value {
                    FieldValue::Text(text) => text.clone(),
                    FieldValue::Time(at) => local_time(*at, tz),
                    FieldValue::Localized(en, ko) => match language {
                        Language::English => en.clone(),
                        Language::Korean => ko.clone(),
                    },
                    FieldValue::Link(path) => match &self.base_url {
                        Some(base) => format!("{base}{}", localize(path)),
                        None => localize(path),
                    },
                };
                (label(language, key).to_owned(), value)
            })
            .collect();
        let link = match (&self.base_url, &planned.link_path) {
            (Some(base), Some(path)) => format!("{base}{}", localize(path)),
            _ => String::new(),
        };
        let id = Uuid::now_v7();
        let inserted = notification::Entity::insert(notification::ActiveModel {
            id: Set(id),
            user_id: Set(user_id.to_owned()),
            event_id: Set(event_id.to_owned()),
            kind: Set(planned.kind.to_owned()),
            category: Set(planned.category.code().to_owned()),
            title: Set(rendered.title),
            body: Set(rendered.body),
            fields: Set(serde_json::to_string(&fields).unwrap_or_else(|_| "[]".to_owned())),
            link: Set(link),
            state: Set(InboxState::Unread.code().to_owned()),
            urgent: Set(planned.urgent),
            in_inbox: Set(in_inbox),
            created_at: Set(now),
            read_at: Set(None),
            archived_at: Set(None),
        })
        .on_conflict(
            OnConflict::columns([notification::Column::UserId, notification::Column::EventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
        if inserted == 0 {
            return Ok(None);
        }
        metrics::notifications(
            Channel::Inbox,
            if in_inbox {
                metrics::Outcome::Sent
            } else {
                metrics::Outcome::Suppressed
            },
            1,
        );
        if self.slack_on && !to_slack {
            metrics::notifications(Channel::Slack, metrics::Outcome::Suppressed, 1);
        }
        if to_slack {
            let (status, due) = slack_schedule(planned, recipient, now);
            if matches!(status, DeliveryStatus::Deferred | DeliveryStatus::Digest) {
                metrics::notifications(Channel::Slack, metrics::Outcome::Deferred, 1);
            }
            delivery::Entity::insert(delivery::ActiveModel {
                id: Set(Uuid::now_v7()),
                notification_id: Set(id),
                user_id: Set(user_id.to_owned()),
                event_id: Set(event_id.to_owned()),
                channel: Set(Channel::Slack.code().to_owned()),
                status: Set(status.code().to_owned()),
                attempts: Set(0),
                next_attempt_at: Set(due),
                lease_until: Set(None),
                request_started_at: Set(None),
                last_error: Set(String::new()),
                sent_at: Set(None),
                external_id: Set(String::new()),
                created_at: Set(now),
                updated_at: Set(now),
            })
            .on_conflict(
                OnConflict::columns([
                    delivery::Column::EventId,
                    delivery::Column::UserId,
                    delivery::Column::Channel,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        }
        Ok(Some(id))
    }
}

/// When the Slack message may go: now, after quiet hours, or with the next digest.
fn slack_schedule(
    planned: &Planned,
    recipient: &Recipient,
    now: DateTime<Utc>,
) -> (DeliveryStatus, DateTime<Utc>) {
    if planned.urgent {
        return (DeliveryStatus::Pending, now);
    }
    if recipient.digest_categories().contains(&planned.category) {
        return (DeliveryStatus::Digest, now);
    }
    match recipient
        .quiet_hours()
        .and_then(|quiet| quiet.release_at(now, recipient.time_zone()))
    {
        Some(release) => (DeliveryStatus::Deferred, release),
        None => (DeliveryStatus::Pending, now),
    }
}
