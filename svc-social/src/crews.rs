//! Crews and membership: create, edit, archive, list; join (public), request (approval) or
//! redeem an invite; leave, remove, ban; roles with exactly one OWNER. Every change writes its
//! event (`CrewCreated`, `CrewUpdated`, `CrewMemberJoined`, `CrewMemberLeft`,
//! `CrewMemberRoleChanged`, `JoinRequestDecided`) in its transaction.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Duration;
use rand::RngCore as _;
use runmesh_platform::auth::Caller;
use runmesh_platform::db::begin_write;
use runmesh_proto::runmesh::social::v1 as proto;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::core::{Action, CrewView, Social, require_role, standing, standing_of};
use crate::domain::{
    CrewRole, CrewVisibility, MemberState, PageSize, PageToken, Standing, may_remove,
};
use crate::error::Error;
use crate::events;
use crate::meetups;
use crate::store::{crew, invite, member};
use crate::wire;

/// A new crew's fields, validated.
#[derive(Debug, Clone)]
pub struct CrewSpec {
    pub name: String,
    pub description: String,
    pub region: String,
    pub cover_url: String,
    pub visibility: CrewVisibility,
}

/// The fields `UpdateCrew` sets, validated.
#[derive(Debug, Clone, Default)]
pub struct CrewChanges {
    pub name: Option<String>,
    pub description: Option<String>,
    pub region: Option<String>,
    pub cover_url: Option<String>,
    pub visibility: Option<CrewVisibility>,
}

/// What `JoinCrew` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    Member,
    Requested,
}

/// One page and the token of the next (empty at the end).
pub type Page<T> = (Vec<T>, String);

pub(crate) fn next_token<T>(items: &[T], size: u64, key: impl Fn(&T) -> PageToken) -> String {
    if items.len() as u64 == size {
        items
            .last()
            .map(|last| key(last).encode())
            .unwrap_or_default()
    } else {
        String::new()
    }
}

impl Social {
    pub async fn create_crew(&self, caller: &Caller, spec: CrewSpec) -> Result<CrewView, Error> {
        let now = wire::now();
        let id = Uuid::now_v7();
        let txn = begin_write(&self.db).await?;
        let crew = crew::ActiveModel {
            id: Set(id),
            owner_id: Set(caller.user_id.clone()),
            name_key: Set(crate::domain::search_key(&spec.name)),
            name: Set(spec.name),
            description: Set(spec.description),
            region_key: Set(crate::domain::search_key(&spec.region)),
            region: Set(spec.region),
            cover_url: Set(spec.cover_url),
            visibility: Set(spec.visibility.code().to_owned()),
            archived_at: Set(None),
            member_count: Set(1),
            created_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&txn)
        .await?;
        member::ActiveModel {
            crew_id: Set(id),
            user_id: Set(caller.user_id.clone()),
            state: Set(MemberState::Member.code().to_owned()),
            role: Set(CrewRole::Owner.code().to_owned()),
            message: Set(String::new()),
            since: Set(now),
        }
        .insert(&txn)
        .await?;
        events::enqueue(
            &txn,
            id,
            &proto::CrewCreated {
                crew: Some(wire::crew_summary(&crew)),
                owner_id: caller.user_id.clone(),
                created_at: Some(wire::timestamp(now)),
            },
        )
        .await?;
        events::enqueue(
            &txn,
            id,
            &events::member_joined(id, &caller.user_id, CrewRole::Owner),
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(CrewView {
            crew,
            standing: Standing::Member(CrewRole::Owner),
        })
    }

    pub async fn update_crew(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        changes: CrewChanges,
    ) -> Result<CrewView, Error> {
        let txn = begin_write(&self.db).await?;
        let view = self.readable_crew(&txn, caller, crew_id).await?;
        require_role(&view, CrewRole::Admin)?;
        let current = view.crew.clone();
        let mut changed = Vec::new();
        let mut active: crew::ActiveModel = view.crew.into();
        if let Some(name) = changes.name.filter(|name| *name != current.name) {
            active.name_key = Set(crate::domain::search_key(&name));
            active.name = Set(name);
            changed.push("name".to_owned());
        }
        if let Some(description) = changes.description {
            active.description = Set(description);
        }
        if let Some(region) = changes.region.filter(|region| *region != current.region) {
            active.region_key = Set(crate::domain::search_key(&region));
            active.region = Set(region);
            changed.push("region".to_owned());
        }
        if let Some(cover_url) = changes.cover_url {
            active.cover_url = Set(cover_url);
        }
        if let Some(visibility) = changes
            .visibility
            .filter(|visibility| visibility.code() != current.visibility)
        {
            active.visibility = Set(visibility.code().to_owned());
            changed.push("visibility".to_owned());
        }
        active.updated_at = Set(wire::now());
        let crew = active.update(&txn).await?;
        if !changed.is_empty() {
            events::enqueue(
                &txn,
                crew_id,
                &proto::CrewUpdated {
                    crew: Some(wire::crew_summary(&crew)),
                    changed_fields: changed,
                },
            )
            .await?;
        }
        txn.commit().await?;
        self.wake();
        Ok(CrewView {
            crew,
            standing: view.standing,
        })
    }

    /// Archives the crew: `CrewUpdated` (`archived`) and a `CrewMemberLeft` (`CREW_ARCHIVED`) per
    /// member. Membership rows stay, so members still read the archive; nothing can be written.
    pub async fn archive_crew(&self, caller: &Caller, crew_id: Uuid) -> Result<CrewView, Error> {
        let txn = begin_write(&self.db).await?;
        let view = self.readable_crew(&txn, caller, crew_id).await?;
        require_role(&view, CrewRole::Owner)?;
        let now = wire::now();
        let mut active: crew::ActiveModel = view.crew.into();
        active.archived_at = Set(Some(now));
        active.updated_at = Set(now);
        let crew = active.update(&txn).await?;
        events::enqueue(
            &txn,
            crew_id,
            &proto::CrewUpdated {
                crew: Some(wire::crew_summary(&crew)),
                changed_fields: vec!["archived".to_owned()],
            },
        )
        .await?;
        let members: Vec<String> = member::Entity::find()
            .select_only()
            .column(member::Column::UserId)
            .filter(member::Column::CrewId.eq(crew_id))
            .filter(member::Column::State.eq(MemberState::Member.code()))
            .into_tuple()
            .all(&txn)
            .await?;
        for user_id in members {
            events::enqueue(
                &txn,
                crew_id,
                &events::member_left(crew_id, &user_id, proto::CrewLeaveReason::CrewArchived),
            )
            .await?;
        }
        txn.commit().await?;
        self.wake();
        Ok(CrewView {
            crew,
            standing: view.standing,
        })
    }

    pub async fn get_crew(&self, caller: &Caller, crew_id: Uuid) -> Result<CrewView, Error> {
        self.readable_crew(&self.db, caller, crew_id).await
    }

    /// Listed crews (public and approval, not archived), newest first.
    pub async fn list_crews(
        &self,
        caller: &Caller,
        region: &str,
        name_contains: &str,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<CrewView>, Error> {
        let mut query = crew::Entity::find()
            .filter(crew::Column::Visibility.is_in([
                CrewVisibility::Public.code(),
                CrewVisibility::Approval.code(),
            ]))
            .filter(crew::Column::ArchivedAt.is_null());
        let region = crate::domain::search_key(region);
        if !region.is_empty() {
            query = query.filter(crew::Column::RegionKey.eq(region));
        }
        let name = crate::domain::search_key(name_contains);
        if !name.is_empty() {
            query = query.filter(crew::Column::NameKey.contains(&name));
        }
        if let Some(after) = after {
            let id = Uuid::parse_str(&after.id).unwrap_or_default();
            query = query.filter(crew::Column::Id.lt(id));
        }
        let crews = query
            .order_by_desc(crew::Column::Id)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let views = self.with_standing(caller, crews).await?;
        let next = next_token(&views, size.0, |view| {
            PageToken::after(0, view.crew.id.to_string())
        });
        Ok((views, next))
    }

    /// The caller's crews, newest membership first.
    pub async fn list_my_crews(
        &self,
        caller: &Caller,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<CrewView>, Error> {
        let mut query = member::Entity::find()
            .filter(member::Column::UserId.eq(&caller.user_id))
            .filter(member::Column::State.eq(MemberState::Member.code()));
        if let Some(after) = after {
            let since = wire::from_micros(after.sort_key);
            let crew_id = Uuid::parse_str(&after.id).unwrap_or_default();
            query = query.filter(
                Condition::any().add(member::Column::Since.lt(since)).add(
                    Condition::all()
                        .add(member::Column::Since.eq(since))
                        .add(member::Column::CrewId.lt(crew_id)),
                ),
            );
        }
        let rows = query
            .order_by_desc(member::Column::Since)
            .order_by_desc(member::Column::CrewId)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let next = next_token(&rows, size.0, |row| {
            PageToken::after(row.since.timestamp_micros(), row.crew_id.to_string())
        });
        let crews = crew::Entity::find()
            .filter(crew::Column::Id.is_in(rows.iter().map(|row| row.crew_id)))
            .all(&self.db)
            .await?;
        let mut views = Vec::with_capacity(rows.len());
        for row in &rows {
            if let Some(crew) = crews.iter().find(|crew| crew.id == row.crew_id) {
                views.push(CrewView {
                    crew: crew.clone(),
                    standing: standing_of(row),
                });
            }
        }
        Ok((views, next))
    }

    async fn with_standing(
        &self,
        caller: &Caller,
        crews: Vec<crew::Model>,
    ) -> Result<Vec<CrewView>, Error> {
        let rows = member::Entity::find()
            .filter(member::Column::UserId.eq(&caller.user_id))
            .filter(member::Column::CrewId.is_in(crews.iter().map(|crew| crew.id)))
            .all(&self.db)
            .await?;
        Ok(crews
            .into_iter()
            .map(|crew| {
                let standing = rows
                    .iter()
                    .find(|row| row.crew_id == crew.id)
                    .map_or(Standing::None, standing_of);
                CrewView { crew, standing }
            })
            .collect())
    }

    /// Joins a public crew, requests an approval crew, or redeems `invite_code`.
    pub async fn join_crew(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        invite_code: &str,
        message: String,
    ) -> Result<(Joined, CrewView), Error> {
        let txn = begin_write(&self.db).await?;
        let Some(crew) = crew::Entity::find_by_id(crew_id).one(&txn).await? else {
            return Err(Error::CrewNotFound(crew_id.to_string()));
        };
        let visibility =
            CrewVisibility::from_code(&crew.visibility).unwrap_or(CrewVisibility::Private);
        let current = standing(&txn, crew_id, &caller.user_id).await?;
        if visibility == CrewVisibility::Private && invite_code.is_empty() && !current.is_member() {
            // Invisible without an invite.
            return Err(Error::CrewNotFound(crew_id.to_string()));
        }
        if crew.archived_at.is_some() {
            return Err(Error::CrewArchived);
        }
        match current {
            Standing::Banned => return Err(Error::Banned),
            Standing::Member(_) => return Err(Error::AlreadyMember),
            Standing::Requested if invite_code.is_empty() => return Err(Error::AlreadyMember),
            Standing::Requested | Standing::None => {}
        }
        let now = wire::now();
        let joined = if !invite_code.is_empty() {
            let redeemed = invite::Entity::update_many()
                .col_expr(invite::Column::Uses, Expr::col(invite::Column::Uses).add(1))
                .filter(invite::Column::Code.eq(invite_code))
                .filter(invite::Column::CrewId.eq(crew_id))
                .filter(invite::Column::ExpiresAt.gt(now))
                .filter(Expr::col(invite::Column::Uses).lt(Expr::col(invite::Column::MaxUses)))
                .exec(&txn)
                .await?
                .rows_affected;
            if redeemed == 0 {
                return Err(if visibility == CrewVisibility::Private {
                    Error::CrewNotFound(crew_id.to_string())
                } else {
                    Error::InviteInvalid
                });
            }
            Joined::Member
        } else if visibility == CrewVisibility::Public {
            Joined::Member
        } else {
            Joined::Requested
        };
        member::Entity::delete_by_id((crew_id, caller.user_id.clone()))
            .exec(&txn)
            .await?;
        let state = match joined {
            Joined::Member => MemberState::Member,
            Joined::Requested => MemberState::Requested,
        };
        member::ActiveModel {
            crew_id: Set(crew_id),
            user_id: Set(caller.user_id.clone()),
            state: Set(state.code().to_owned()),
            role: Set(CrewRole::Member.code().to_owned()),
            message: Set(message),
            since: Set(now),
        }
        .insert(&txn)
        .await?;
        let standing = if joined == Joined::Member {
            add_member_count(&txn, crew_id, 1).await?;
            events::enqueue(
                &txn,
                crew_id,
                &events::member_joined(crew_id, &caller.user_id, CrewRole::Member),
            )
            .await?;
            Standing::Member(CrewRole::Member)
        } else {
            Standing::Requested
        };
        let crew = crew::Entity::find_by_id(crew_id)
            .one(&txn)
            .await?
            .ok_or_else(|| Error::CrewNotFound(crew_id.to_string()))?;
        txn.commit().await?;
        self.wake();
        Ok((joined, CrewView { crew, standing }))
    }

    /// Leaves (or withdraws a request). The owner must transfer ownership first.
    pub async fn leave_crew(&self, caller: &Caller, crew_id: Uuid) -> Result<(), Error> {
        let txn = begin_write(&self.db).await?;
        let view = self.readable_crew(&txn, caller, crew_id).await?;
        match view.standing {
            Standing::Member(CrewRole::Owner) => return Err(Error::OwnerMustTransfer),
            Standing::Member(_) => {
                member::Entity::delete_by_id((crew_id, caller.user_id.clone()))
                    .exec(&txn)
                    .await?;
                add_member_count(&txn, crew_id, -1).await?;
                events::enqueue(
                    &txn,
                    crew_id,
                    &events::member_left(crew_id, &caller.user_id, proto::CrewLeaveReason::Left),
                )
                .await?;
                meetups::withdraw_from_members_only(&txn, crew_id, &caller.user_id).await?;
            }
            Standing::Requested => {
                member::Entity::delete_by_id((crew_id, caller.user_id.clone()))
                    .exec(&txn)
                    .await?;
            }
            Standing::Banned => return Err(Error::Banned),
            Standing::None => return Err(Error::NotAMember),
        }
        txn.commit().await?;
        self.wake();
        Ok(())
    }

    /// Pending requests, oldest first.
    pub async fn list_join_requests(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<member::Model>, Error> {
        self.managed_crew(&self.db, caller, crew_id).await?;
        self.members_in_state(crew_id, MemberState::Requested, size, after)
            .await
    }

    /// Members by join date, oldest first. Anyone who may read the crew.
    pub async fn list_members(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<member::Model>, Error> {
        self.readable_crew(&self.db, caller, crew_id).await?;
        self.members_in_state(crew_id, MemberState::Member, size, after)
            .await
    }

    async fn members_in_state(
        &self,
        crew_id: Uuid,
        state: MemberState,
        size: PageSize,
        after: Option<PageToken>,
    ) -> Result<Page<member::Model>, Error> {
        let mut query = member::Entity::find()
            .filter(member::Column::CrewId.eq(crew_id))
            .filter(member::Column::State.eq(state.code()));
        if let Some(after) = after {
            let since = wire::from_micros(after.sort_key);
            query = query.filter(
                Condition::any().add(member::Column::Since.gt(since)).add(
                    Condition::all()
                        .add(member::Column::Since.eq(since))
                        .add(member::Column::UserId.gt(after.id)),
                ),
            );
        }
        let rows = query
            .order_by_asc(member::Column::Since)
            .order_by_asc(member::Column::UserId)
            .limit(size.0)
            .all(&self.db)
            .await?;
        let next = next_token(&rows, size.0, |row| {
            PageToken::after(row.since.timestamp_micros(), row.user_id.clone())
        });
        Ok((rows, next))
    }

    /// Approves (the runner becomes a member) or rejects a pending request; the requester is
    /// told (`JoinRequestDecided`).
    pub async fn decide_join_request(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        user_id: &str,
        approve: bool,
    ) -> Result<Option<member::Model>, Error> {
        let txn = begin_write(&self.db).await?;
        self.managed_crew(&txn, caller, crew_id).await?;
        if standing(&txn, crew_id, user_id).await? != Standing::Requested {
            return Err(Error::MemberNotFound(user_id.to_owned()));
        }
        let now = wire::now();
        let member = if approve {
            let updated = member::Entity::update_many()
                .col_expr(
                    member::Column::State,
                    Expr::value(MemberState::Member.code()),
                )
                .col_expr(member::Column::Since, Expr::value(now))
                .filter(member::Column::CrewId.eq(crew_id))
                .filter(member::Column::UserId.eq(user_id))
                .filter(member::Column::State.eq(MemberState::Requested.code()))
                .exec(&txn)
                .await?
                .rows_affected;
            if updated == 0 {
                return Err(Error::MemberNotFound(user_id.to_owned()));
            }
            add_member_count(&txn, crew_id, 1).await?;
            events::enqueue(
                &txn,
                crew_id,
                &events::member_joined(crew_id, user_id, CrewRole::Member),
            )
            .await?;
            member::Entity::find_by_id((crew_id, user_id.to_owned()))
                .one(&txn)
                .await?
        } else {
            member::Entity::delete_by_id((crew_id, user_id.to_owned()))
                .exec(&txn)
                .await?;
            None
        };
        events::enqueue(
            &txn,
            crew_id,
            &proto::JoinRequestDecided {
                crew_id: crew_id.to_string(),
                user_id: user_id.to_owned(),
                approved: approve,
                decided_by: caller.user_id.clone(),
                decided_at: Some(wire::timestamp(now)),
            },
        )
        .await?;
        txn.commit().await?;
        self.wake();
        Ok(member)
    }

    pub async fn create_invite(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        valid_hours: u32,
        max_uses: u32,
    ) -> Result<invite::Model, Error> {
        self.managed_crew(&self.db, caller, crew_id).await?;
        self.rate_limit(caller, Action::Invite).await?;
        let mut bytes = [0u8; 15];
        rand::rng().fill_bytes(&mut bytes);
        let now = wire::now();
        let invite = invite::ActiveModel {
            code: Set(URL_SAFE_NO_PAD.encode(bytes)),
            crew_id: Set(crew_id),
            created_by: Set(caller.user_id.clone()),
            expires_at: Set(now + Duration::hours(i64::from(valid_hours))),
            max_uses: Set(i32::try_from(max_uses).unwrap_or(i32::MAX)),
            uses: Set(0),
            created_at: Set(now),
        }
        .insert(&self.db)
        .await?;
        Ok(invite)
    }

    /// Sets a member's role; `Owner` transfers ownership (the previous owner becomes ADMIN).
    pub async fn set_member_role(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        user_id: &str,
        role: CrewRole,
    ) -> Result<member::Model, Error> {
        let txn = begin_write(&self.db).await?;
        let view = self.readable_crew(&txn, caller, crew_id).await?;
        require_role(&view, CrewRole::Owner)?;
        let Standing::Member(previous) = standing(&txn, crew_id, user_id).await? else {
            return Err(Error::MemberNotFound(user_id.to_owned()));
        };
        if previous == CrewRole::Owner {
            // The owner's own role changes only by a transfer.
            if role == CrewRole::Owner {
                return member::Entity::find_by_id((crew_id, user_id.to_owned()))
                    .one(&txn)
                    .await?
                    .ok_or_else(|| Error::MemberNotFound(user_id.to_owned()));
            }
            return Err(Error::OwnerMustTransfer);
        }
        set_role(&txn, crew_id, user_id, role).await?;
        if previous != role {
            events::enqueue(
                &txn,
                crew_id,
                &events::role_changed(crew_id, user_id, previous, role),
            )
            .await?;
        }
        if role == CrewRole::Owner {
            set_role(&txn, crew_id, &caller.user_id, CrewRole::Admin).await?;
            crew::Entity::update_many()
                .col_expr(crew::Column::OwnerId, Expr::value(user_id))
                .col_expr(crew::Column::UpdatedAt, Expr::value(wire::now()))
                .filter(crew::Column::Id.eq(crew_id))
                .exec(&txn)
                .await?;
            events::enqueue(
                &txn,
                crew_id,
                &events::role_changed(crew_id, &caller.user_id, CrewRole::Owner, CrewRole::Admin),
            )
            .await?;
        }
        let member = member::Entity::find_by_id((crew_id, user_id.to_owned()))
            .one(&txn)
            .await?
            .ok_or_else(|| Error::MemberNotFound(user_id.to_owned()))?;
        txn.commit().await?;
        self.wake();
        Ok(member)
    }

    /// Removes (or bans) a member, withdraws (or bans) a requester, bans a stranger, or with
    /// `ban` false on a banned runner lifts the ban.
    pub async fn remove_member(
        &self,
        caller: &Caller,
        crew_id: Uuid,
        user_id: &str,
        ban: bool,
    ) -> Result<(), Error> {
        let txn = begin_write(&self.db).await?;
        let view = self.readable_crew(&txn, caller, crew_id).await?;
        let actor = require_role(&view, CrewRole::Admin)?;
        let target = standing(&txn, crew_id, user_id).await?;
        if let Standing::Member(role) = target {
            if !may_remove(actor, role) {
                return Err(Error::CrewRoleRequired(CrewRole::Owner));
            }
            add_member_count(&txn, crew_id, -1).await?;
            let reason = if ban {
                proto::CrewLeaveReason::Banned
            } else {
                proto::CrewLeaveReason::Removed
            };
            events::enqueue(
                &txn,
                crew_id,
                &events::member_left(crew_id, user_id, reason),
            )
            .await?;
            meetups::withdraw_from_members_only(&txn, crew_id, user_id).await?;
        } else if target == Standing::None && !ban {
            return Err(Error::MemberNotFound(user_id.to_owned()));
        }
        member::Entity::delete_by_id((crew_id, user_id.to_owned()))
            .exec(&txn)
            .await?;
        if ban {
            member::ActiveModel {
                crew_id: Set(crew_id),
                user_id: Set(user_id.to_owned()),
                state: Set(MemberState::Banned.code().to_owned()),
                role: Set(CrewRole::Member.code().to_owned()),
                message: Set(String::new()),
                since: Set(wire::now()),
            }
            .insert(&txn)
            .await?;
        }
        txn.commit().await?;
        self.wake();
        Ok(())
    }
}

async fn set_role(
    conn: &impl ConnectionTrait,
    crew_id: Uuid,
    user_id: &str,
    role: CrewRole,
) -> Result<(), Error> {
    member::Entity::update_many()
        .col_expr(member::Column::Role, Expr::value(role.code()))
        .filter(member::Column::CrewId.eq(crew_id))
        .filter(member::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    Ok(())
}

pub(crate) async fn add_member_count(
    conn: &impl ConnectionTrait,
    crew_id: Uuid,
    by: i32,
) -> Result<(), Error> {
    crew::Entity::update_many()
        .col_expr(
            crew::Column::MemberCount,
            Expr::col(crew::Column::MemberCount).add(by),
        )
        .filter(crew::Column::Id.eq(crew_id))
        .exec(conn)
        .await?;
    Ok(())
}
