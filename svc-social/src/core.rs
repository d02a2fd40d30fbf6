//! [`Social`]: the service's state (database, cache, event bus, settings) and the checks every
//! operation shares: who the caller is to a crew, what they may read and write, rate limits.
//! The operations themselves live in [`crate::crews`], [`crate::board`], [`crate::meetups`]
//! and [`crate::feed`].

use std::collections::HashMap;

use runmesh_platform::auth::Caller;
use runmesh_platform::cache::SharedCache;
use runmesh_platform::events::EventBus;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use uuid::Uuid;

use crate::config::SocialConfig;
use crate::domain::{CrewRole, CrewVisibility, MemberState, Standing, may_read};
use crate::error::Error;
use crate::store::{crew, member, profile};

/// svc-social's operations over its database.
pub struct Social {
    pub(crate) db: DatabaseConnection,
    pub(crate) cache: SharedCache,
    pub(crate) bus: Option<EventBus>,
    pub(crate) config: SocialConfig,
    /// Per-process queues of RSVP transactions by meetup (striped): a crowd answering one
    /// meetup waits here, not holding pool connections while blocked on the meetup's row lock
    /// (which is what keeps replicas apart).
    rsvp_queues: Vec<tokio::sync::Mutex<()>>,
}

/// Stripes of [`Social::rsvp_queue`].
const RSVP_QUEUES: usize = 64;

/// A crew as a caller sees it.
#[derive(Debug, Clone)]
pub struct CrewView {
    pub crew: crew::Model,
    pub standing: Standing,
}

/// The rate-limited actions.
#[derive(Debug, Clone, Copy)]
pub enum Action {
    Post,
    Comment,
    Report,
    Invite,
}

impl Social {
    pub fn new(
        db: DatabaseConnection,
        cache: SharedCache,
        bus: Option<EventBus>,
        config: SocialConfig,
    ) -> Self {
        Self {
            db,
            cache,
            bus,
            config,
            rsvp_queues: (0..RSVP_QUEUES)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
        }
    }

    /// This process's queue for RSVPs to `meetup_id`.
    pub(crate) async fn rsvp_queue(&self, meetup_id: Uuid) -> tokio::sync::MutexGuard<'_, ()> {
        let stripe = usize::try_from(meetup_id.as_u128() % RSVP_QUEUES as u128).unwrap_or(0);
        self.rsvp_queues[stripe].lock().await
    }

    pub fn config(&self) -> &SocialConfig {
        &self.config
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Tells the relay that events were committed.
    pub(crate) fn wake(&self) {
        if let Some(bus) = &self.bus {
            bus.wake_relays();
        }
    }

    /// `RESOURCE_EXHAUSTED` with `RetryInfo` once `caller` did `action` too often this window.
    pub(crate) async fn rate_limit(&self, caller: &Caller, action: Action) -> Result<(), Error> {
        let (name, limit, what) = match action {
            Action::Post => ("post", self.config.post_limit, "posting"),
            Action::Comment => ("comment", self.config.comment_limit, "commenting"),
            Action::Report => ("report", self.config.report_limit, "reporting"),
            Action::Invite => ("invite", self.config.invite_limit, "inviting"),
        };
        let decision = self
            .cache
            .rate_limit(
                &format!("rl:{name}:{}", caller.user_id),
                limit,
                self.config.rate_window,
            )
            .await?;
        if decision.allowed {
            Ok(())
        } else {
            Err(Error::RateLimited {
                what,
                retry_after: decision.retry_after,
            })
        }
    }

    /// The crew and the caller's standing; `CREW_NOT_FOUND` when it does not exist or the caller
    /// may not see it.
    pub(crate) async fn readable_crew(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        crew_id: Uuid,
    ) -> Result<CrewView, Error> {
        let Some(crew) = crew::Entity::find_by_id(crew_id).one(conn).await? else {
            return Err(Error::CrewNotFound(crew_id.to_string()));
        };
        let standing = standing(conn, crew_id, &caller.user_id).await?;
        let visibility =
            CrewVisibility::from_code(&crew.visibility).unwrap_or(CrewVisibility::Private);
        if !may_read(visibility, standing) {
            return Err(Error::CrewNotFound(crew_id.to_string()));
        }
        Ok(CrewView { crew, standing })
    }

    /// A crew the caller is a member of (not archived): `BANNED`, `NOT_A_MEMBER` otherwise.
    pub(crate) async fn member_crew(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        crew_id: Uuid,
    ) -> Result<CrewView, Error> {
        let view = self.readable_crew(conn, caller, crew_id).await?;
        require_member(&view)?;
        Ok(view)
    }

    /// A crew the caller manages (OWNER or ADMIN), not archived.
    pub(crate) async fn managed_crew(
        &self,
        conn: &impl ConnectionTrait,
        caller: &Caller,
        crew_id: Uuid,
    ) -> Result<CrewView, Error> {
        let view = self.readable_crew(conn, caller, crew_id).await?;
        require_role(&view, CrewRole::Admin)?;
        Ok(view)
    }
}

/// `BANNED` or `NOT_A_MEMBER` unless a member; `CREW_ARCHIVED` when archived.
pub(crate) fn require_member(view: &CrewView) -> Result<CrewRole, Error> {
    let role = match view.standing {
        Standing::Member(role) => role,
        Standing::Banned => return Err(Error::Banned),
        Standing::None | Standing::Requested => return Err(Error::NotAMember),
    };
    if view.crew.archived_at.is_some() {
        return Err(Error::CrewArchived);
    }
    Ok(role)
}

/// `CREW_ROLE_REQUIRED` unless the caller's role is `needed` or above (OWNER above ADMIN).
pub(crate) fn require_role(view: &CrewView, needed: CrewRole) -> Result<CrewRole, Error> {
    let role = match view.standing {
        Standing::Member(role) => role,
        Standing::Banned => return Err(Error::Banned),
        Standing::None | Standing::Requested => return Err(Error::CrewRoleRequired(needed)),
    };
    if role > needed {
        return Err(Error::CrewRoleRequired(needed));
    }
    if view.crew.archived_at.is_some() {
        return Err(Error::CrewArchived);
    }
    Ok(role)
}

/// What `user_id` is to the crew.
pub(crate) async fn standing(
    conn: &impl ConnectionTrait,
    crew_id: Uuid,
    user_id: &str,
) -> Result<Standing, Error> {
    let row = member::Entity::find_by_id((crew_id, user_id.to_owned()))
        .one(conn)
        .await?;
    Ok(row.map_or(Standing::None, |row| standing_of(&row)))
}

pub(crate) fn standing_of(row: &member::Model) -> Standing {
    match MemberState::from_code(&row.state) {
        Some(MemberState::Member) => {
            Standing::Member(CrewRole::from_code(&row.role).unwrap_or(CrewRole::Member))
        }
        Some(MemberState::Requested) => Standing::Requested,
        Some(MemberState::Banned) => Standing::Banned,
        None => Standing::None,
    }
}

/// Display names of `user_ids` (those known).
pub(crate) async fn display_names(
    conn: &impl ConnectionTrait,
    user_ids: impl IntoIterator<Item = String>,
) -> Result<HashMap<String, String>, Error> {
    let mut ids: Vec<String> = user_ids.into_iter().filter(|id| !id.is_empty()).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = profile::Entity::find()
        .filter(profile::Column::UserId.is_in(ids))
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| (row.user_id, row.display_name))
        .collect())
}
