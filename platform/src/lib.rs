//! The runtime every runmesh service stands on. Each service crate uses these pieces and
//! nothing else to talk to the outside world, so swapping PostgreSQL for SQLite, Redis for
//! memory or Kafka for the in-process bus never touches domain code.

pub mod auth;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod events;
pub mod health;
pub mod peer;
pub mod server;
pub mod service;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod validation;
