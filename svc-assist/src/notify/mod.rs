//! Notifications: events become per-runner notifications ([`planner`]) in the inbox
//! ([`inbox`], watched live through [`watch`]) and Slack DMs sent by the [`delivery`] worker
//! over the [`slack`] client, with the workspace's state in [`workspace`].

pub mod delivery;
pub mod inbox;
pub mod planner;
pub mod slack;
pub mod watch;
pub mod workspace;

pub use delivery::DeliveryWorker;
pub use inbox::Inbox;
pub use planner::{Planned, Planner};
pub use watch::WatchHub;
pub use workspace::Workspace;
