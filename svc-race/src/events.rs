//! What svc-race publishes, on `runmesh.race.v1.events` keyed by race id, through the outbox:
//! each event is written in the transaction of the change it reports. And what it consumes
//! (consumer group [`GROUP`]): svc-run's `RaceResultLinked`, kept on the registration (see
//! [`results`](crate::results)), and `RunDeleted`, which clears any result that was that run.

use std::sync::Arc;

use prost::{Message, Name};
use runmesh_platform::events::{self, EnvelopeExt, EventHandler};
use runmesh_proto::runmesh::events::v1::Envelope;
use runmesh_proto::runmesh::race::v1 as proto;
use runmesh_proto::runmesh::run::v1 as run_proto;
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr};
use uuid::Uuid;

use crate::{results, wire};

/// The `source` of svc-race's envelopes.
pub const SOURCE: &str = "svc-race";
/// The domain part of the topic name.
pub const DOMAIN: &str = "race";
/// svc-race's consumer group.
pub const GROUP: &str = "svc-race";
/// Subscribers named per `RegistrationOpened` event.
pub const SUBSCRIBERS_PER_EVENT: usize = 500;

/// `runmesh.race.v1.events`.
pub fn topic() -> String {
    events::topic(DOMAIN)
}

/// Writes `event` about race `race_id` to the outbox, in `conn`'s transaction.
pub async fn enqueue<E: Message + Name>(
    conn: &impl ConnectionTrait,
    race_id: Uuid,
    event: &E,
) -> Result<(), DbErr> {
    events::enqueue(conn, &topic(), &envelope(race_id, event)).await
}

/// `event` about race `race_id` in its envelope, for [`enqueue_many`].
pub fn envelope<E: Message + Name>(race_id: Uuid, event: &E) -> events::Envelope {
    events::new_envelope(SOURCE, &race_id.to_string(), event)
}

/// Writes `envelopes` to the outbox in one statement, in `conn`'s transaction.
pub async fn enqueue_many(
    conn: &impl ConnectionTrait,
    envelopes: &[events::Envelope],
) -> Result<(), DbErr> {
    events::enqueue_many(conn, &topic(), envelopes).await
}

/// The topics svc-race consumes: svc-run's.
pub fn consumed_topics() -> Vec<String> {
    vec![events::topic("run")]
}

/// The handler of everything svc-race consumes (group [`GROUP`], [`consumed_topics`]).
pub fn consumer() -> Arc<dyn EventHandler> {
    Arc::new(RunEvents)
}

struct RunEvents;

#[async_trait::async_trait]
impl EventHandler for RunEvents {
    async fn handle(&self, txn: &DatabaseTransaction, envelope: &Envelope) -> anyhow::Result<()> {
        if envelope.is::<run_proto::RaceResultLinked>() {
            let event = envelope.unpack::<run_proto::RaceResultLinked>()?;
            // A registration id that is not one of ours cannot be a registration we know.
            let Ok(registration_id) = Uuid::parse_str(&event.registration_id) else {
                tracing::debug!(
                    registration_id = %event.registration_id,
                    "race result for an unknown registration ignored"
                );
                return Ok(());
            };
            let linked_at = envelope
                .occurred_at
                .as_ref()
                .and_then(wire::from_timestamp)
                .unwrap_or_else(wire::now);
            let result = wire::linked_result(&event, linked_at);
            let changed =
                results::record(txn, registration_id, &event.owner_id, result.as_ref()).await?;
            if !changed {
                tracing::debug!(
                    %registration_id,
                    owner_id = %event.owner_id,
                    "race result for an unknown registration ignored"
                );
            }
        } else if envelope.is::<run_proto::RunDeleted>() {
            let event = envelope.unpack::<run_proto::RunDeleted>()?;
            if !event.run_id.is_empty() {
                results::forget_run(txn, &event.run_id).await?;
            }
        }
        // svc-run's other events concern other services.
        Ok(())
    }
}

/// `RegistrationOpened`, split so that each event names at most [`SUBSCRIBERS_PER_EVENT`]
/// subscribers (one event when nobody subscribed).
pub fn registration_opened(
    race: &proto::Race,
    subscribers: &[String],
) -> Vec<proto::RegistrationOpened> {
    let chunks: Vec<&[String]> = if subscribers.is_empty() {
        vec![&[]]
    } else {
        subscribers.chunks(SUBSCRIBERS_PER_EVENT).collect()
    };
    let parts = u32::try_from(chunks.len()).unwrap_or(u32::MAX);
    chunks
        .into_iter()
        .zip(1..)
        .map(|(chunk, part)| proto::RegistrationOpened {
            race_id: race.race_id.clone(),
            race_name: race.name.clone(),
            registration_opens_at: race.registration_opens_at,
            registration_closes_at: race.registration_closes_at,
            subscriber_ids: chunk.to_vec(),
            part,
            parts,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn opening_events_split_long_subscriber_lists() {
        let race = proto::Race {
            race_id: "r".into(),
            name: "Seoul".into(),
            ..Default::default()
        };
        let none = registration_opened(&race, &[]);
        assert_eq!(none.len(), 1);
        assert_eq!((none[0].part, none[0].parts), (1, 1));

        let subscribers: Vec<String> = (0..1001).map(|n| format!("user-{n}")).collect();
        let events = registration_opened(&race, &subscribers);
        assert_eq!(events.len(), 3);
        assert_eq!(
            events
                .iter()
                .map(|e| e.subscriber_ids.len())
                .collect::<Vec<_>>(),
            [500, 500, 1]
        );
        assert_eq!((events[2].part, events[2].parts), (3, 3));
        assert_eq!(
            proto::RegistrationOpened::full_name(),
            "runmesh.race.v1.RegistrationOpened"
        );
    }
}
