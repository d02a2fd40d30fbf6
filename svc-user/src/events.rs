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

async fn enqueue<E: Message + Name>(
    conn: &impl ConnectionTrait,
    user_id: &str,
    event: E,
) -> Result<(), DbErr> {
    let envelope = events::new_envelope(SOURCE, user_id, &event);
    events::enqueue(conn, &topic(), &envelope).await
}
