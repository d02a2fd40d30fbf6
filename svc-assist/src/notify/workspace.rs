//! The Slack workspace's delivery state, shared by the replicas through the database: stopped
//! (the token was refused: loud, never retried until the token changes) or paused (Slack's
//! `Retry-After`).

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, Set};
use sha2::{Digest, Sha256};

use crate::store::workspace;

#[derive(Debug, Clone, Default)]
struct State {
    stopped: Option<String>,
    paused_until: Option<DateTime<Utc>>,
}

/// What this process knows of the workspace.
#[derive(Debug)]
pub struct Workspace {
    /// `None` when no bot token is configured (Slack delivery off).
    fingerprint: Option<String>,
    state: parking_lot::Mutex<State>,
}

/// The workspace as reported (`GetDeliveryStats`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackState {
    Disabled,
    Active,
    Stopped(String),
}

impl Workspace {
    /// For the bot token `token` (its SHA-256 prefix keys the shared state), or off.
    pub fn new(token: Option<&str>) -> Self {
        Self {
            fingerprint: token.map(|token| {
                let digest = Sha256::digest(token.as_bytes());
                hex::encode(&digest[..8])
            }),
            state: parking_lot::Mutex::new(State::default()),
        }
    }

    pub fn state(&self) -> SlackState {
        match (&self.fingerprint, &self.state.lock().stopped) {
            (None, _) => SlackState::Disabled,
            (Some(_), Some(reason)) => SlackState::Stopped(reason.clone()),
            (Some(_), None) => SlackState::Active,
        }
    }

    pub fn stopped(&self) -> Option<String> {
        self.state.lock().stopped.clone()
    }

    pub fn paused_until(&self) -> Option<DateTime<Utc>> {
        self.state
            .lock()
            .paused_until
            .filter(|until| *until > Utc::now())
    }

    /// Reads what other replicas recorded.
    pub async fn refresh(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let Some(fingerprint) = &self.fingerprint else {
            return Ok(());
        };
        let row = workspace::Entity::find_by_id(fingerprint.clone())
            .one(db)
            .await?;
        let mut state = self.state.lock();
        let was_stopped = state.stopped.is_some();
        if let Some(row) = row {
            state.stopped = (!row.stopped_reason.is_empty()).then_some(row.stopped_reason);
            state.paused_until = row.paused_until.max(state.paused_until);
        }
        if state.stopped.is_some() && !was_stopped {
            stopped_loudly(state.stopped.as_deref().unwrap_or_default());
        }
        crate::metrics::slack_stopped(state.stopped.is_some());
        Ok(())
    }

    /// Slack refused the token: stop delivery for the workspace, for every replica.
    pub async fn stop(&self, db: &DatabaseConnection, reason: &str) -> Result<(), DbErr> {
        let first = {
            let mut state = self.state.lock();
            let first = state.stopped.is_none();
            state.stopped = Some(reason.to_owned());
            first
        };
        if first {
            stopped_loudly(reason);
        }
        crate::metrics::slack_stopped(true);
        self.save(db).await
    }

    /// Slack asked for a pause until `until`.
    pub async fn pause(&self, db: &DatabaseConnection, until: DateTime<Utc>) -> Result<(), DbErr> {
        {
            let mut state = self.state.lock();
            state.paused_until = Some(until).max(state.paused_until);
        }
        self.save(db).await
    }

    async fn save(&self, db: &DatabaseConnection) -> Result<(), DbErr> {
        let Some(fingerprint) = &self.fingerprint else {
            return Ok(());
        };
        let state = self.state.lock().clone();
        workspace::Entity::insert(workspace::ActiveModel {
            token_fingerprint: Set(fingerprint.clone()),
            stopped_reason: Set(state.stopped.unwrap_or_default()),
            paused_until: Set(state.paused_until),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(workspace::Column::TokenFingerprint)
                .update_columns([
                    workspace::Column::StoppedReason,
                    workspace::Column::PausedUntil,
                    workspace::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
        Ok(())
    }
}

/// The loud part: an error log, and metrics (`function_calls_total{function="slack_workspace_stopped"}`;
/// `runmesh_assist_slack_delivery_stopped` is set by the callers).
#[autometrics::autometrics]
fn slack_workspace_stopped(reason: &str) {
    tracing::error!(
        %reason,
        "Slack refused the bot token: Slack delivery is STOPPED for the workspace until RUNMESH_SLACK_BOT_TOKEN is replaced (messages wait, nothing is retried)"
    );
}

fn stopped_loudly(reason: &str) {
    slack_workspace_stopped(reason);
}
