//! What svc-assist keeps in its database (only svc-assist reads these tables): the runner
//! projection from svc-user's events, races and crews it names in messages, the runners'
//! preferences, the inbox and the delivery log. PostgreSQL or SQLite.

pub mod channel_pref;
pub mod crew;
pub mod crew_member;
pub mod delivery;
pub mod meetup;
pub mod migration;
pub mod notification;
pub mod profile;
pub mod race;
pub mod settings;
pub mod workspace;

pub use migration::Migrator;
