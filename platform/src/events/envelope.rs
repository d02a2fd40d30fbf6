//! Building envelopes around typed events, and getting the typed event back out.

use std::time::SystemTime;

use prost::{Message, Name};
use runmesh_proto::runmesh::events::v1::Envelope;

use super::EventError;

/// The topic a domain publishes its events on: `runmesh.<domain>.v1.events`.
pub fn topic(domain: &str) -> String {
    format!("runmesh.{domain}.v1.events")
}

/// Wraps `event` in a new envelope: a fresh UUIDv7 id, the event's full protobuf name as its
/// type, the current time, and no trace context (set `traceparent` from the request that caused
/// the event, see [`EnvelopeExt::with_traceparent`]).
pub fn new_envelope<E: Message + Name>(source: &str, aggregate_id: &str, event: &E) -> Envelope {
    Envelope {
        id: uuid::Uuid::now_v7().to_string(),
        r#type: E::full_name(),
        occurred_at: Some(SystemTime::now().into()),
        aggregate_id: aggregate_id.to_owned(),
        traceparent: String::new(),
        source: source.to_owned(),
        payload: Some(prost_types::Any {
            type_url: E::type_url(),
            value: event.encode_to_vec(),
        }),
    }
}

/// Conveniences on [`Envelope`] for producers and handlers.
pub trait EnvelopeExt: Sized {
    /// Sets the W3C `traceparent` of the request that caused the event.
    fn with_traceparent(self, traceparent: impl Into<String>) -> Self;
    /// Whether the envelope carries an `E`.
    fn is<E: Name>(&self) -> bool;
    /// The typed event inside, or an error naming the type it actually carries.
    fn unpack<E: Message + Name + Default>(&self) -> Result<E, EventError>;
}

impl EnvelopeExt for Envelope {
    fn with_traceparent(mut self, traceparent: impl Into<String>) -> Self {
        self.traceparent = traceparent.into();
        self
    }

    fn is<E: Name>(&self) -> bool {
        self.r#type == E::full_name()
    }

    fn unpack<E: Message + Name + Default>(&self) -> Result<E, EventError> {
        let payload = self.payload.as_ref().ok_or(EventError::MissingPayload)?;
        if !self.is::<E>() {
            return Err(EventError::UnexpectedType {
                expected: E::full_name(),
                actual: self.r#type.clone(),
            });
        }
        payload.to_msg::<E>().map_err(EventError::Decode)
    }
}

/// Decodes what a transport delivered. Bytes that are not an envelope, or an envelope without an
/// id (which the inbox could not deduplicate), are rejected.
pub(crate) fn decode_envelope(bytes: &[u8]) -> Result<Envelope, EventError> {
    let envelope = Envelope::decode(bytes).map_err(EventError::Decode)?;
    if envelope.id.is_empty() {
        return Err(EventError::MissingId);
    }
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[derive(Clone, PartialEq, prost::Message)]
    struct DistanceLogged {
        #[prost(uint64, tag = "1")]
        meters: u64,
    }

    impl Name for DistanceLogged {
        const NAME: &'static str = "DistanceLogged";
        const PACKAGE: &'static str = "runmesh.testing.v1";
    }

    #[test]
    fn envelope_round_trips_the_typed_event() {
        let event = DistanceLogged { meters: 5_000 };
        let envelope = new_envelope("svc-run", "run-1", &event).with_traceparent("00-ab-cd-01");

        let decoded = decode_envelope(&envelope.encode_to_vec()).unwrap();

        assert_eq!(decoded.r#type, "runmesh.testing.v1.DistanceLogged");
        assert_eq!(decoded.aggregate_id, "run-1");
        assert_eq!(decoded.source, "svc-run");
        assert_eq!(decoded.traceparent, "00-ab-cd-01");
        assert_eq!(
            uuid::Uuid::parse_str(&decoded.id)
                .unwrap()
                .get_version_num(),
            7
        );
        assert!(decoded.is::<DistanceLogged>());
        assert_eq!(decoded.unpack::<DistanceLogged>().unwrap(), event);
    }

    #[test]
    fn unpacking_the_wrong_type_names_both_types() {
        let envelope = new_envelope("svc-run", "run-1", &DistanceLogged { meters: 1 });
        let err = envelope.unpack::<prost_types::Duration>().unwrap_err();
        assert!(matches!(
            err,
            EventError::UnexpectedType { ref expected, ref actual }
                if expected == "google.protobuf.Duration" && actual == "runmesh.testing.v1.DistanceLogged"
        ));
    }

    #[test]
    fn bytes_that_are_not_an_envelope_are_rejected() {
        assert!(decode_envelope(b"not an envelope").is_err());
        assert!(matches!(decode_envelope(&[]), Err(EventError::MissingId)));
    }

    #[test]
    fn topics_follow_the_naming_scheme() {
        assert_eq!(topic("race"), "runmesh.race.v1.events");
    }
}
