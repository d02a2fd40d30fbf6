//! What svc-user publishes, on `runmesh.user.v1.events` keyed by user id, through the outbox:
//! each event is written in the transaction of the change it reports. svc-user consumes nothing.

use chrono::{DateTime, Utc};
use prost::{Message, Name};
use runmesh_platform::events;
use runmesh_proto::runmesh::user::v1::{UserDeleted, UserProfileUpdated, UserRegistered};
use sea_orm::{ConnectionTrait, DbErr};

use crate::grpc::user_message;
use crate::store::user;

/// The `source` of svc-user's envelopes.
pub const SOURCE: &str = "svc-user";
/// The domain part of the topic name.
pub const DOMAIN: &str = "user";

/// `runmesh.user.v1.events`.
pub fn topic() -> String {
    events::topic(DOMAIN)
}

pub async fn user_registered(conn: &impl ConnectionTrait, user: &user::Model) -> Result<(), DbErr> {
    let event = UserRegistered {
        user: Some(user_message(user)),
    };
    enqueue(conn, &user.id, event).await
}

/// `changed_fields` names the `User` fields that changed.
pub async fn user_profile_updated(
    conn: &impl ConnectionTrait,
    user: &user::Model,
    changed_fields: Vec<String>,
) -> Result<(), DbErr> {
    let event = UserProfileUpdated {
        user: Some(user_message(user)),
        changed_fields,
    };
    enqueue(conn, &user.id, event).await
}

pub async fn user_deleted(
    conn: &impl ConnectionTrait,
    user_id: &str,
    deleted_at: DateTime<Utc>,
) -> Result<(), DbErr> {
    let event = UserDeleted {
        user_id: user_id.to_owned(),
        deleted_at: Some(crate::grpc::timestamp(deleted_at)),
    };
    enqueue(conn, user_id, event).await
}

async fn enqueue<E: UserEvent>(
    conn: &impl ConnectionTrait,
    user_id: &str,
    event: E,
) -> Result<(), DbErr> {
    let envelope = events::new_envelope(SOURCE, user_id, &Named(event));
    events::enqueue(conn, &topic(), &envelope).await
}

/// An event type of `runmesh.user.v1` and its protobuf name.
///
/// The generated types do not implement [`prost::Name`] (the proto crate's build does not ask
/// prost for type names) and the orphan rule forbids implementing it here, so [`Named`] carries
/// the name instead.
trait UserEvent: Message {
    const NAME: &'static str;
}

impl UserEvent for UserRegistered {
    const NAME: &'static str = "UserRegistered";
}

impl UserEvent for UserProfileUpdated {
    const NAME: &'static str = "UserProfileUpdated";
}

impl UserEvent for UserDeleted {
    const NAME: &'static str = "UserDeleted";
}

/// The event it wraps, on the wire and in every other respect, with a name.
#[derive(Debug)]
struct Named<E>(E);

impl<E: UserEvent> Name for Named<E> {
    const NAME: &'static str = E::NAME;
    const PACKAGE: &'static str = "runmesh.user.v1";
}

impl<E: UserEvent> Message for Named<E> {
    fn encode_raw(&self, buf: &mut impl prost::bytes::BufMut) {
        self.0.encode_raw(buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        self.0.merge_field(tag, wire_type, buf, ctx)
    }

    fn encoded_len(&self) -> usize {
        self.0.encoded_len()
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}
