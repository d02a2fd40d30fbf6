//! What svc-user keeps in its database: users, sign-in sessions with their refresh tokens, and
//! the token signing keys. Only svc-user reads these tables.

pub mod migration;
pub mod refresh_token;
pub mod session;
pub mod signing_key;
pub mod user;

pub use migration::Migrator;
