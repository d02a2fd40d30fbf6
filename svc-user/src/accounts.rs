//! What the RPCs do: the account rules over the store, the hasher, the throttle and the token
//! issuer. Takes parsed domain values, returns store models; `grpc.rs` does the decoding and
//! encoding around it.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, SubsecRound as _, Utc};
use runmesh_platform::auth::{Caller, Role};
use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use sea_orm::sea_query::{Expr, IntoCondition};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter, QuerySelect, Set, SqlErr,
};

use tokio_util::sync::CancellationToken;

use crate::credentials::PasswordHasher;
use crate::domain::{
    DisplayName, DistanceUnit, Email, NewPassword, NotificationPreferences, PasswordAttempt,
    ProfileChanges, RunPrivacy, TimeZone,
};
use crate::error::Error;
use crate::events;
use crate::store::{refresh_token, session, user};
use crate::throttle::SignInThrottle;
use crate::tokens::{AccessToken, AccessTokenIssuer, new_refresh_token, refresh_token_hash};

/// At most this many ids per `GetUsers` call.
pub const MAX_BATCH: usize = 500;

/// Why a session ended, as stored.
mod revoked {
    pub const SIGN_OUT: &str = "sign_out";
    pub const SIGN_OUT_ALL: &str = "sign_out_all";
    pub const PASSWORD_CHANGED: &str = "password_changed";
    pub const REFRESH_TOKEN_REUSED: &str = "refresh_token_reused";
}

/// A fresh access token and the refresh token that renews it.
#[derive(Debug, Clone)]
pub struct IssuedTokens {
    pub access: AccessToken,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

/// The roles a user holds; everyone is a runner.
pub fn roles(user: &user::Model) -> Vec<Role> {
    let mut roles = vec![Role::Runner];
    if user.is_organizer {
        roles.push(Role::Organizer);
    }
    if user.is_admin {
        roles.push(Role::Admin);
    }
    roles
}

pub struct Accounts {
    db: DatabaseConnection,
    hasher: PasswordHasher,
    throttle: SignInThrottle,
    tokens: AccessTokenIssuer,
    session_ttl: Duration,
    bus: Option<EventBus>,
}

impl Accounts {
    pub fn new(
        db: DatabaseConnection,
        hasher: PasswordHasher,
        throttle: SignInThrottle,
        tokens: AccessTokenIssuer,
        session_ttl: Duration,
        bus: Option<EventBus>,
    ) -> Self {
        Self {
            db,
            hasher,
            throttle,
            tokens,
            session_ttl,
            bus,
        }
    }

    pub async fn sign_up(
        &self,
        email: Email,
        password: NewPassword,
        display_name: DisplayName,
    ) -> Result<(user::Model, IssuedTokens), Error> {
        let result = self.create_account(email, password, display_name).await;
        crate::metrics::signed_up(&result);
        result
    }

    async fn create_account(
        &self,
        email: Email,
        password: NewPassword,
        display_name: DisplayName,
    ) -> Result<(user::Model, IssuedTokens), Error> {
        // Checked first to spare the hashing; the unique index decides races.
        if find_by_email(&self.db, &email).await?.is_some() {
            return Err(Error::EmailTaken);
        }
        let password_hash = self.hasher.hash(&password).await?;
        let now = now();
        let txn = begin_write(&self.db).await?;
        let user = insert_user(&txn, &email, password_hash, display_name, false, now).await?;
        events::user_registered(&txn, &user).await?;
        let (session_id, refresh) = self.start_session(&txn, &user.id, now).await?;
        txn.commit().await?;
        self.events_written();
        tracing::info!(user_id = %user.id, "account created");
        let tokens = self.issue(&user, &session_id, refresh, now)?;
        Ok((user, tokens))
    }

    pub async fn sign_in(
        &self,
        email: Email,
        password: PasswordAttempt,
        client: &str,
    ) -> Result<(user::Model, IssuedTokens), Error> {
        let result = self.check_password(email, password, client).await;
        crate::metrics::signed_in(&result);
        result
    }

    async fn check_password(
        &self,
        email: Email,
        password: PasswordAttempt,
        client: &str,
    ) -> Result<(user::Model, IssuedTokens), Error> {
        self.throttle.check(&email, client).await?;
        let user = find_by_email(&self.db, &email).await?;
        let valid = self
            .hasher
            .verify(
                &password,
                user.as_ref().map(|user| user.password_hash.as_str()),
            )
            .await?;
        let user = match user {
            Some(user) if valid => user,
            _ => return Err(self.throttle.record_failure(&email, client).await?),
        };
        let now = now();
        let txn = begin_write(&self.db).await?;
        let (session_id, refresh) = self.start_session(&txn, &user.id, now).await?;
        txn.commit().await?;
        let tokens = self.issue(&user, &session_id, refresh, now)?;
        Ok((user, tokens))
    }

    /// Spends `presented` and returns a new pair for its session. A spent token revokes the
    /// session: either the client or a thief replayed it, and we cannot tell which.
    pub async fn refresh(&self, presented: &str) -> Result<IssuedTokens, Error> {
        let result = self.spend_refresh_token(presented).await;
        crate::metrics::refreshed(&result);
        result
    }

    async fn spend_refresh_token(&self, presented: &str) -> Result<IssuedTokens, Error> {
        let now = now();
        let token_hash = refresh_token_hash(presented);
        let txn = begin_write(&self.db).await?;
        let Some((token, Some(session))) = refresh_token::Entity::find_by_id(&token_hash)
            .find_also_related(session::Entity)
            .one(&txn)
            .await?
        else {
            return Err(Error::RefreshTokenInvalid);
        };
        if !is_active(&session, now) {
            return Err(Error::SessionEnded);
        }
        let spent_now = token.spent_at.is_none()
            && refresh_token::Entity::update_many()
                .col_expr(refresh_token::Column::SpentAt, Expr::value(now))
                .filter(refresh_token::Column::TokenHash.eq(&token_hash))
                .filter(refresh_token::Column::SpentAt.is_null())
                .exec(&txn)
                .await?
                .rows_affected
                == 1;
        if !spent_now {
            revoke_sessions(
                &txn,
                session::Column::Id.eq(&session.id),
                revoked::REFRESH_TOKEN_REUSED,
                now,
            )
            .await?;
            txn.commit().await?;
            tracing::warn!(
                user_id = %session.user_id,
                session_id = %session.id,
                "a spent refresh token was presented again; the session is revoked"
            );
            return Err(Error::RefreshTokenReused);
        }
        let Some(user) = user::Entity::find_by_id(&session.user_id).one(&txn).await? else {
            return Err(Error::SessionEnded);
        };
        session::Entity::update_many()
            .col_expr(session::Column::RefreshedAt, Expr::value(now))
            .filter(session::Column::Id.eq(&session.id))
            .exec(&txn)
            .await?;
        let refresh = insert_refresh_token(&txn, &session.id, now).await?;
        txn.commit().await?;
        self.issue(&user, &session.id, (refresh, session.expires_at), now)
    }

    /// Ends the session of `refresh_token` (or the caller's), or all of its user's sessions.
    /// Returns how many sessions were still active.
    pub async fn sign_out(
        &self,
        refresh_token: Option<&str>,
        caller: Option<&Caller>,
        all_sessions: bool,
    ) -> Result<u64, Error> {
        let (user_id, session_id) = match (refresh_token, caller) {
            (Some(presented), _) => {
                let Some((_, Some(session))) =
                    refresh_token::Entity::find_by_id(refresh_token_hash(presented))
                        .find_also_related(session::Entity)
                        .one(&self.db)
                        .await?
                else {
                    return Err(Error::RefreshTokenInvalid);
                };
                (session.user_id, session.id)
            }
            (None, Some(caller)) => (caller.user_id.clone(), caller.session_id.clone()),
            (None, None) => {
                return Err(Error::invalid(
                    "refresh_token",
                    "is required when the call carries no access token",
                ));
            }
        };
        let now = now();
        let revoked = if all_sessions {
            revoke_sessions(
                &self.db,
                session::Column::UserId.eq(&user_id),
                revoked::SIGN_OUT_ALL,
                now,
            )
            .await?
        } else {
            revoke_sessions(
                &self.db,
                session::Column::Id.eq(&session_id),
                revoked::SIGN_OUT,
                now,
            )
            .await?
        };
        Ok(revoked)
    }

    /// The caller's account, provided the caller's session is still active: signing out or
    /// changing the password takes effect here at once, not only when access tokens expire.
    pub async fn me(&self, caller: &Caller) -> Result<user::Model, Error> {
        authenticated_user(&self.db, caller, now()).await
    }

    pub async fn update_profile(
        &self,
        caller: &Caller,
        changes: ProfileChanges,
    ) -> Result<user::Model, Error> {
        let now = now();
        let txn = begin_write(&self.db).await?;
        let current = authenticated_user(&txn, caller, now).await?;
        let (mut model, changed) = apply_changes(current.clone(), changes);
        if changed.is_empty() {
            return Ok(current);
        }
        model.updated_at = now;
        let updated = model.into_active_model().reset_all().update(&txn).await?;
        events::user_profile_updated(&txn, &updated, changed).await?;
        txn.commit().await?;
        self.events_written();
        Ok(updated)
    }

    /// Sets a new password and ends every other session. Returns how many were ended.
    pub async fn change_password(
        &self,
        caller: &Caller,
        current: PasswordAttempt,
        new: NewPassword,
        client: &str,
    ) -> Result<u64, Error> {
        let user = authenticated_user(&self.db, caller, now()).await?;
        self.confirm_password(&user, &current, "current_password", client)
            .await?;
        let password_hash = self.hasher.hash(&new).await?;
        let now = now();
        let txn = begin_write(&self.db).await?;
        user::Entity::update_many()
            .col_expr(user::Column::PasswordHash, Expr::value(password_hash))
            .col_expr(user::Column::UpdatedAt, Expr::value(now))
            .filter(user::Column::Id.eq(&user.id))
            .exec(&txn)
            .await?;
        let revoked = revoke_sessions(
            &txn,
            Condition::all()
                .add(session::Column::UserId.eq(&user.id))
                .add(session::Column::Id.ne(&caller.session_id)),
            revoked::PASSWORD_CHANGED,
            now,
        )
        .await?;
        txn.commit().await?;
        tracing::info!(user_id = %user.id, revoked_sessions = revoked, "password changed");
        Ok(revoked)
    }

    /// Removes the account, its sessions and refresh tokens, and publishes `UserDeleted`.
    pub async fn delete_account(
        &self,
        caller: &Caller,
        password: PasswordAttempt,
        client: &str,
    ) -> Result<(), Error> {
        let user = authenticated_user(&self.db, caller, now()).await?;
        self.confirm_password(&user, &password, "password", client)
            .await?;
        let now = now();
        let txn = begin_write(&self.db).await?;
        let session_ids = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::UserId.eq(&user.id))
            .into_tuple::<String>()
            .all(&txn)
            .await?;
        refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::SessionId.is_in(session_ids))
            .exec(&txn)
            .await?;
        session::Entity::delete_many()
            .filter(session::Column::UserId.eq(&user.id))
            .exec(&txn)
            .await?;
        user::Entity::delete_by_id(&user.id).exec(&txn).await?;
        events::user_deleted(&txn, &user.id, now).await?;
        txn.commit().await?;
        self.events_written();
        tracing::info!(user_id = %user.id, "account deleted");
        Ok(())
    }

    /// Admin only: gives (`grant`) or takes away a role other than runner.
    pub async fn set_role(
        &self,
        caller: &Caller,
        user_id: &str,
        role: Role,
        grant: bool,
    ) -> Result<user::Model, Error> {
        let now = now();
        let txn = begin_write(&self.db).await?;
        let admin = authenticated_user(&txn, caller, now).await?;
        if !admin.is_admin {
            return Err(Error::RoleRequired(Role::Admin));
        }
        if role == Role::Admin && !grant && admin.id == user_id {
            return Err(Error::CannotRevokeOwnAdmin);
        }
        let Some(target) = user::Entity::find_by_id(user_id).one(&txn).await? else {
            return Err(Error::UserNotFound(user_id.to_owned()));
        };
        let held = match role {
            Role::Organizer => target.is_organizer,
            Role::Admin => target.is_admin,
            Role::Runner => return Err(Error::invalid("role", "every user is a runner")),
        };
        if held == grant {
            return Ok(target);
        }
        let mut model = target;
        match role {
            Role::Organizer => model.is_organizer = grant,
            Role::Admin => model.is_admin = grant,
            Role::Runner => {}
        }
        model.updated_at = now;
        let updated = model.into_active_model().reset_all().update(&txn).await?;
        events::user_profile_updated(&txn, &updated, vec!["roles".to_owned()]).await?;
        txn.commit().await?;
        self.events_written();
        tracing::info!(
            admin_id = %admin.id,
            user_id = %updated.id,
            role = %role,
            granted = grant,
            "role changed"
        );
        Ok(updated)
    }

    /// The users among `ids` that exist, in no particular order.
    pub async fn users(&self, ids: &[String]) -> Result<Vec<user::Model>, Error> {
        if ids.len() > MAX_BATCH {
            return Err(Error::invalid(
                "user_ids",
                format!("must hold at most {MAX_BATCH} ids"),
            ));
        }
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        Ok(user::Entity::find()
            .filter(user::Column::Id.is_in(ids.iter().map(String::as_str)))
            .all(&self.db)
            .await?)
    }

    /// Purges sessions that expired more than `grace` ago, every `interval`, until `shutdown`.
    pub async fn purge_expired_sessions_every(
        self: Arc<Self>,
        interval: Duration,
        grace: Duration,
        shutdown: CancellationToken,
    ) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            match self.purge_expired_sessions(grace).await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired sessions"),
                Err(err) => tracing::warn!(error = %err, "purging expired sessions failed"),
            }
        }
    }

    /// Deletes sessions (and their refresh tokens) that expired more than `grace` ago.
    pub async fn purge_expired_sessions(&self, grace: Duration) -> Result<u64, Error> {
        let cutoff =
            now() - chrono::Duration::from_std(grace).unwrap_or_else(|_| chrono::Duration::days(1));
        let txn = begin_write(&self.db).await?;
        let expired = session::Entity::find()
            .select_only()
            .column(session::Column::Id)
            .filter(session::Column::ExpiresAt.lt(cutoff))
            .into_tuple::<String>()
            .all(&txn)
            .await?;
        if expired.is_empty() {
            return Ok(0);
        }
        refresh_token::Entity::delete_many()
            .filter(refresh_token::Column::SessionId.is_in(expired.iter().map(String::as_str)))
            .exec(&txn)
            .await?;
        let deleted = session::Entity::delete_many()
            .filter(session::Column::Id.is_in(expired.iter().map(String::as_str)))
            .exec(&txn)
            .await?
            .rows_affected;
        txn.commit().await?;
        Ok(deleted)
    }

    /// A password re-entered to confirm a sensitive change; failures count like failed
    /// sign-ins, so a stolen access token cannot be used to guess the password.
    async fn confirm_password(
        &self,
        user: &user::Model,
        attempt: &PasswordAttempt,
        field: &'static str,
        client: &str,
    ) -> Result<(), Error> {
        let email =
            Email::parse(&user.email).map_err(|rejected| Error::invalid("email", rejected.0))?;
        self.throttle.check(&email, client).await?;
        if self
            .hasher
            .verify(attempt, Some(&user.password_hash))
            .await?
        {
            return Ok(());
        }
        match self.throttle.record_failure(&email, client).await? {
            Error::InvalidCredentials => Err(Error::WrongPassword { field }),
            other => Err(other),
        }
    }

    async fn start_session(
        &self,
        txn: &DatabaseTransaction,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(String, (String, DateTime<Utc>)), Error> {
        let expires_at = now
            + chrono::Duration::from_std(self.session_ttl)
                .unwrap_or_else(|_| chrono::Duration::days(30));
        let session_id = uuid::Uuid::now_v7().to_string();
        session::Entity::insert(session::ActiveModel {
            id: Set(session_id.clone()),
            user_id: Set(user_id.to_owned()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            refreshed_at: Set(now),
            revoked_at: Set(None),
            revoked_reason: Set(None),
        })
        .exec_without_returning(txn)
        .await?;
        let refresh = insert_refresh_token(txn, &session_id, now).await?;
        Ok((session_id, (refresh, expires_at)))
    }

    fn issue(
        &self,
        user: &user::Model,
        session_id: &str,
        (refresh_token, refresh_expires_at): (String, DateTime<Utc>),
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, Error> {
        let access = self.tokens.issue(&user.id, session_id, &roles(user), now)?;
        Ok(IssuedTokens {
            access,
            refresh_token,
            refresh_expires_at,
        })
    }

    fn events_written(&self) {
        if let Some(bus) = &self.bus {
            bus.wake_relays();
        }
    }
}

/// Creates an admin account, or makes the existing account with this email and password an
/// admin. For bootstrapping (`runmesh user create-admin`); the relay publishes the events
/// it writes at its next poll.
pub async fn create_admin(
    db: &DatabaseConnection,
    hasher: &PasswordHasher,
    email: Email,
    password: NewPassword,
) -> Result<user::Model, Error> {
    let now = now();
    if let Some(existing) = find_by_email(db, &email).await? {
        let attempt = PasswordAttempt::parse(password.expose())
            .map_err(|rejected| Error::invalid("password", rejected.0))?;
        if !hasher
            .verify(&attempt, Some(&existing.password_hash))
            .await?
        {
            return Err(Error::EmailTaken);
        }
        if existing.is_admin {
            return Ok(existing);
        }
        let txn = begin_write(db).await?;
        let mut model = existing;
        model.is_admin = true;
        model.updated_at = now;
        let updated = model.into_active_model().reset_all().update(&txn).await?;
        events::user_profile_updated(&txn, &updated, vec!["roles".to_owned()]).await?;
        txn.commit().await?;
        return Ok(updated);
    }
    let password_hash = hasher.hash(&password).await?;
    let display_name = DisplayName::parse("Admin")
        .map_err(|rejected| Error::invalid("display_name", rejected.0))?;
    let txn = begin_write(db).await?;
    let admin = insert_user(&txn, &email, password_hash, display_name, true, now).await?;
    events::user_registered(&txn, &admin).await?;
    txn.commit().await?;
    tracing::info!(user_id = %admin.id, "admin account created");
    Ok(admin)
}

async fn find_by_email(
    db: &DatabaseConnection,
    email: &Email,
) -> Result<Option<user::Model>, Error> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?)
}

/// The current time at the database's precision (PostgreSQL keeps microseconds), so what a
/// call returns equals what a later read returns.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn is_active(session: &session::Model, now: DateTime<Utc>) -> bool {
    session.revoked_at.is_none() && session.expires_at > now
}

/// The caller's user, if the caller's session is active.
async fn authenticated_user(
    conn: &impl ConnectionTrait,
    caller: &Caller,
    now: DateTime<Utc>,
) -> Result<user::Model, Error> {
    match session::Entity::find_by_id(&caller.session_id)
        .find_also_related(user::Entity)
        .one(conn)
        .await?
    {
        Some((session, Some(user))) if is_active(&session, now) && user.id == caller.user_id => {
            Ok(user)
        }
        _ => Err(Error::SessionEnded),
    }
}

async fn insert_user(
    txn: &DatabaseTransaction,
    email: &Email,
    password_hash: String,
    display_name: DisplayName,
    is_admin: bool,
    now: DateTime<Utc>,
) -> Result<user::Model, Error> {
    let preferences = NotificationPreferences::default();
    let model = user::Model {
        id: uuid::Uuid::now_v7().to_string(),
        email: email.as_str().to_owned(),
        password_hash,
        display_name: display_name.as_str().to_owned(),
        is_organizer: false,
        is_admin,
        slack_member_id: None,
        notify_race_opening: preferences.race_opening,
        notify_registration_result: preferences.registration_result,
        notify_achievement: preferences.achievement,
        notify_crew_activity: preferences.crew_activity,
        distance_unit: DistanceUnit::default().code().to_owned(),
        time_zone: TimeZone::default().name().to_owned(),
        birth_year: None,
        gender: None,
        default_run_privacy: RunPrivacy::default().code().to_owned(),
        privacy_zone_meters: None,
        created_at: now,
        updated_at: now,
    };
    match user::Entity::insert(model.clone().into_active_model())
        .exec_without_returning(txn)
        .await
    {
        Ok(_) => Ok(model),
        Err(err) if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(Error::EmailTaken)
        }
        Err(err) => Err(err.into()),
    }
}

async fn insert_refresh_token(
    txn: &DatabaseTransaction,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<String, Error> {
    let token = new_refresh_token()?;
    refresh_token::Entity::insert(refresh_token::ActiveModel {
        token_hash: Set(refresh_token_hash(&token)),
        session_id: Set(session_id.to_owned()),
        created_at: Set(now),
        spent_at: Set(None),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(token)
}

/// Revokes the active sessions matching `filter`; returns how many.
async fn revoke_sessions(
    conn: &impl ConnectionTrait,
    filter: impl IntoCondition,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<u64, Error> {
    Ok(session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now))
        .col_expr(session::Column::RevokedReason, Expr::value(reason))
        .filter(filter)
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Applies `changes`; returns the new state and the `User` fields that changed.
fn apply_changes(mut user: user::Model, changes: ProfileChanges) -> (user::Model, Vec<String>) {
    let mut changed = Vec::new();
    let mut note = |field: &str, differs: bool| {
        if differs {
            changed.push(field.to_owned());
        }
    };
    if let Some(name) = changes.display_name {
        note("display_name", user.display_name != name.as_str());
        user.display_name = name.as_str().to_owned();
    }
    if let Some(slack) = changes.slack_member_id {
        let slack = slack.map(|id| id.as_str().to_owned());
        note("slack_member_id", user.slack_member_id != slack);
        user.slack_member_id = slack;
    }
    if let Some(preferences) = changes.notification_preferences {
        let before = NotificationPreferences {
            race_opening: user.notify_race_opening,
            registration_result: user.notify_registration_result,
            achievement: user.notify_achievement,
            crew_activity: user.notify_crew_activity,
        };
        note("notification_preferences", before != preferences);
        user.notify_race_opening = preferences.race_opening;
        user.notify_registration_result = preferences.registration_result;
        user.notify_achievement = preferences.achievement;
        user.notify_crew_activity = preferences.crew_activity;
    }
    if let Some(unit) = changes.distance_unit {
        note("distance_unit", user.distance_unit != unit.code());
        user.distance_unit = unit.code().to_owned();
    }
    if let Some(zone) = changes.time_zone {
        note("time_zone", user.time_zone != zone.name());
        user.time_zone = zone.name().to_owned();
    }
    if let Some(year) = changes.birth_year {
        let year = year.map(|year| year.value());
        note("birth_year", user.birth_year != year);
        user.birth_year = year;
    }
    if let Some(gender) = changes.gender {
        let gender = gender.map(|gender| gender.code().to_owned());
        note("gender", user.gender != gender);
        user.gender = gender;
    }
    if let Some(privacy) = changes.default_run_privacy {
        note(
            "default_run_privacy",
            user.default_run_privacy != privacy.code(),
        );
        user.default_run_privacy = privacy.code().to_owned();
    }
    if let Some(zone) = changes.privacy_zone {
        // At most 2000 m, so it always fits.
        let meters = i32::try_from(zone.meters()).ok();
        note("privacy_zone_meters", user.privacy_zone_meters != meters);
        user.privacy_zone_meters = meters;
    }
    (user, changed)
}

/// The current year, for validating birth years.
pub fn current_year() -> i32 {
    Utc::now().year()
}
