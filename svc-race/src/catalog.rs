//! The race catalog: creating, editing, publishing and listing races, their places left, "notify
//! me" subscriptions, and the in-process cache of race definitions the registration path reads
//! instead of the database.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use moka::future::Cache;
use runmesh_platform::auth::{Caller, Role};
use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use runmesh_proto::runmesh::race::v1 as proto;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait,
    IntoActiveModel, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use crate::domain::{
    CategorySpec, PageToken, RaceSpec, RaceStatus, RegistrationState, RegistrationStatus,
    RegistrationWindow, assign_first_bibs,
};
use crate::error::Error;
use crate::events;
use crate::gate::Gate;
use crate::store::{category, race, registration, subscription};
use crate::wire;

/// A race's definition as the registration path needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RaceSnapshot {
    pub id: Uuid,
    pub organizer_id: String,
    pub name: String,
    pub status: RaceStatus,
    pub starts_at: DateTime<Utc>,
    pub window: RegistrationWindow,
    pub categories: Vec<CategorySnapshot>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategorySnapshot {
    pub id: Uuid,
    pub capacity: u32,
    pub waitlist_capacity: u32,
    pub first_bib: u32,
}

impl RaceSnapshot {
    pub fn category(&self, category_id: Uuid) -> Option<&CategorySnapshot> {
        self.categories
            .iter()
            .find(|category| category.id == category_id)
    }

    fn from_record(record: &RaceRecord) -> Self {
        let race = &record.race;
        Self {
            id: race.id,
            organizer_id: race.organizer_id.clone(),
            name: race.name.clone(),
            status: RaceStatus::from_code(&race.status).unwrap_or(RaceStatus::Draft),
            starts_at: race.starts_at,
            window: window(race),
            categories: record
                .categories
                .iter()
                .map(|category| CategorySnapshot {
                    id: category.id,
                    capacity: u32::try_from(category.capacity).unwrap_or(0),
                    waitlist_capacity: u32::try_from(category.waitlist_capacity).unwrap_or(0),
                    first_bib: u32::try_from(category.first_bib).unwrap_or(0),
                })
                .collect(),
        }
    }
}

impl CategorySnapshot {
    /// The bib that goes with confirmed place `place` (`1..=capacity`).
    pub fn bib(&self, place: u32) -> u32 {
        self.first_bib + place - 1
    }
}

/// A race with its categories in order.
#[derive(Debug, Clone, PartialEq)]
pub struct RaceRecord {
    pub race: race::Model,
    pub categories: Vec<category::Model>,
}

/// How many places of a category are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Availability {
    pub category_id: Uuid,
    pub capacity: u32,
    pub confirmed: u32,
    pub waitlist_capacity: u32,
    pub waitlisted: u32,
}

impl Availability {
    pub fn sold_out(&self) -> bool {
        self.confirmed >= self.capacity && self.waitlisted >= self.waitlist_capacity
    }
}

/// The filters of a race listing.
#[derive(Debug, Clone, Default)]
pub struct RaceQuery {
    pub starts_after: Option<DateTime<Utc>>,
    pub starts_before: Option<DateTime<Utc>>,
    pub region: Option<String>,
    pub min_distance_meters: Option<u32>,
    pub max_distance_meters: Option<u32>,
    pub registration_state: Option<RegistrationState>,
    pub include_drafts: bool,
    pub page_size: u64,
    pub after: Option<PageToken>,
}

fn window(race: &race::Model) -> RegistrationWindow {
    RegistrationWindow {
        opens_at: race.registration_opens_at,
        closes_at: race.registration_closes_at,
    }
}

fn require_organizer(caller: &Caller) -> Result<(), Error> {
    if caller.has_role(Role::Organizer) || caller.is_admin() {
        Ok(())
    } else {
        Err(Error::RoleRequired(Role::Organizer))
    }
}

/// Admins, and organizers for their own races.
pub fn may_manage(caller: &Caller, organizer_id: &str) -> bool {
    caller.is_admin() || (caller.has_role(Role::Organizer) && caller.user_id == organizer_id)
}

fn is_published(race: &race::Model) -> bool {
    race.status == RaceStatus::Published.code()
}

fn may_see(caller: Option<&Caller>, race: &race::Model) -> bool {
    is_published(race) || caller.is_some_and(|caller| may_manage(caller, &race.organizer_id))
}

/// The stored categories of `specs`, in order, with their bib ranges.
fn category_models(race_id: Uuid, specs: &[CategorySpec]) -> Vec<category::Model> {
    let capacities: Vec<u32> = specs.iter().map(|spec| spec.capacity).collect();
    specs
        .iter()
        .zip(assign_first_bibs(&capacities))
        .zip(0..)
        .map(|((spec, first_bib), position)| category::Model {
            id: spec.category_id.unwrap_or_else(Uuid::now_v7),
            race_id,
            position,
            name: spec.name.clone(),
            distance_meters: i32::try_from(spec.distance_meters).unwrap_or(i32::MAX),
            capacity: i32::try_from(spec.capacity).unwrap_or(i32::MAX),
            waitlist_capacity: i32::try_from(spec.waitlist_capacity).unwrap_or(i32::MAX),
            fee_currency: spec
                .fee
                .as_ref()
                .map(|fee| fee.currency_code.clone())
                .unwrap_or_default(),
            fee_amount_minor: spec.fee.as_ref().map_or(0, |fee| fee.amount_minor),
            first_bib: i32::try_from(first_bib).unwrap_or(i32::MAX),
        })
        .collect()
}

/// The race catalog over svc-race's database.
pub struct Catalog {
    db: DatabaseConnection,
    bus: Option<EventBus>,
    gate: Arc<Gate>,
    snapshots: Cache<Uuid, Option<Arc<RaceSnapshot>>>,
    availability: Cache<Uuid, Arc<Vec<Availability>>>,
}

impl Catalog {
    /// Race definitions are cached for `snapshot_ttl`, places left for `availability_ttl`.
    pub fn new(
        db: DatabaseConnection,
        bus: Option<EventBus>,
        gate: Arc<Gate>,
        snapshot_ttl: Duration,
        availability_ttl: Duration,
    ) -> Self {
        Self {
            db,
            bus,
            gate,
            snapshots: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(snapshot_ttl)
                .build(),
            availability: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(availability_ttl)
                .build(),
        }
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    fn wake_relays(&self) {
        if let Some(bus) = &self.bus {
            bus.wake_relays();
        }
    }

    async fn load(&self, race_id: Uuid) -> Result<Option<RaceRecord>, DbErr> {
        load_record(&self.db, race_id).await
    }

    /// The race's definition (drafts included), from the in-process cache: concurrent misses
    /// share one database read, and unknown ids are cached too, so a flood of attempts reads the
    /// database once per race and TTL.
    pub async fn snapshot(&self, race_id: Uuid) -> Result<Option<Arc<RaceSnapshot>>, Error> {
        let db = self.db.clone();
        self.snapshots
            .try_get_with(race_id, async move {
                let record = load_record(&db, race_id).await?;
                Ok::<_, DbErr>(record.map(|record| Arc::new(RaceSnapshot::from_record(&record))))
            })
            .await
            .map_err(|err: Arc<DbErr>| Error::Database(DbErr::Custom(err.to_string())))
    }

    pub async fn create(&self, caller: &Caller, spec: RaceSpec) -> Result<RaceRecord, Error> {
        require_organizer(caller)?;
        let now = wire::now();
        let race_id = Uuid::now_v7();
        let race = race::Model {
            id: race_id,
            organizer_id: caller.user_id.clone(),
            name: spec.name,
            description: spec.description,
            region_key: spec.region.to_lowercase(),
            region: spec.region,
            venue: spec.venue,
            latitude: spec.coordinates.map(|c| c.latitude),
            longitude: spec.coordinates.map(|c| c.longitude),
            starts_at: spec.starts_at,
            registration_opens_at: spec.window.opens_at,
            registration_closes_at: spec.window.closes_at,
            official_url: spec.official_url,
            status: RaceStatus::Draft.code().to_owned(),
            opening_announced_at: None,
            created_at: now,
            updated_at: now,
            published_at: None,
        };
        let record = RaceRecord {
            categories: category_models(race_id, &spec.categories),
            race,
        };
        let txn = begin_write(&self.db).await?;
        race::Entity::insert(record.race.clone().into_active_model())
            .exec_without_returning(&txn)
            .await?;
        insert_categories(&txn, &record.categories).await?;
        let event = proto::RaceCreated {
            race: Some(wire::race_message(&record, now)),
        };
        events::enqueue(&txn, race_id, &event).await?;
        txn.commit().await?;
        self.wake_relays();
        Ok(record)
    }

    /// The race, for a caller who may change it.
    pub async fn record_for_edit(
        &self,
        caller: &Caller,
        race_id: Uuid,
    ) -> Result<RaceRecord, Error> {
        let record = self
            .load(race_id)
            .await?
            .filter(|record| may_see(Some(caller), &record.race))
            .ok_or_else(|| Error::RaceNotFound(race_id.to_string()))?;
        if !may_manage(caller, &record.race.organizer_id) {
            return Err(Error::NotRaceOrganizer);
        }
        Ok(record)
    }

    /// Replaces the race's fields with `spec`. `changed_fields` names what the caller meant to
    /// change; categories and registration times may only change until registration of a
    /// published race opens.
    pub async fn update(
        &self,
        caller: &Caller,
        current: RaceRecord,
        spec: RaceSpec,
        changed_fields: Vec<String>,
    ) -> Result<RaceRecord, Error> {
        if !may_manage(caller, &current.race.organizer_id) {
            return Err(Error::NotRaceOrganizer);
        }
        let now = wire::now();
        let changes_schedule = changed_fields.iter().any(|field| {
            matches!(
                field.as_str(),
                "categories" | "registration_opens_at" | "registration_closes_at"
            )
        });
        if changes_schedule
            && is_published(&current.race)
            && now >= current.race.registration_opens_at
        {
            return Err(Error::RegistrationStarted);
        }
        let mut violations = crate::domain::Violations::new();
        for (index, spec) in spec.categories.iter().enumerate() {
            if let Some(id) = spec.category_id
                && !current.categories.iter().any(|category| category.id == id)
            {
                violations.add(
                    &format!("race.categories[{index}].category_id"),
                    "is not a category of this race",
                );
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()));
        }

        let race_id = current.race.id;
        let mut race = current.race.clone();
        race.name = spec.name;
        race.description = spec.description;
        race.region_key = spec.region.to_lowercase();
        race.region = spec.region;
        race.venue = spec.venue;
        race.latitude = spec.coordinates.map(|c| c.latitude);
        race.longitude = spec.coordinates.map(|c| c.longitude);
        race.starts_at = spec.starts_at;
        if race.registration_opens_at != spec.window.opens_at {
            race.opening_announced_at = None;
        }
        race.registration_opens_at = spec.window.opens_at;
        race.registration_closes_at = spec.window.closes_at;
        race.official_url = spec.official_url;
        race.updated_at = now;
        let categories_changed = changed_fields.iter().any(|field| field == "categories");
        let categories = if categories_changed {
            category_models(race_id, &spec.categories)
        } else {
            current.categories.clone()
        };

        let txn = begin_write(&self.db).await?;
        let mut active = race.clone().into_active_model().reset_all();
        active.id = sea_orm::ActiveValue::Unchanged(race_id);
        let updated = race::Entity::update_many()
            .set(active)
            .filter(race::Column::Id.eq(race_id))
            .filter(race::Column::UpdatedAt.eq(current.race.updated_at))
            .exec(&txn)
            .await?
            .rows_affected;
        if updated == 0 {
            return Err(Error::Conflict);
        }
        if categories_changed {
            category::Entity::delete_many()
                .filter(category::Column::RaceId.eq(race_id))
                .exec(&txn)
                .await?;
            insert_categories(&txn, &categories).await?;
        }
        let record = RaceRecord { race, categories };
        let event = proto::RaceUpdated {
            race: Some(wire::race_message(&record, now)),
            changed_fields,
        };
        events::enqueue(&txn, race_id, &event).await?;
        txn.commit().await?;
        self.wake_relays();
        self.snapshots.invalidate(&race_id).await;
        if categories_changed && let Err(error) = self.gate.invalidate(race_id).await {
            // Nobody registers before opening, and opening reads the database: a leftover gate
            // only matters if it was built, which needs registration to have opened.
            tracing::warn!(%race_id, %error, "could not reset the registration gate");
        }
        Ok(record)
    }

    pub async fn publish(&self, caller: &Caller, race_id: Uuid) -> Result<RaceRecord, Error> {
        let mut record = self.record_for_edit(caller, race_id).await?;
        if is_published(&record.race) {
            return Ok(record);
        }
        let now = wire::now();
        let txn = begin_write(&self.db).await?;
        let published = race::Entity::update_many()
            .col_expr(
                race::Column::Status,
                Expr::value(RaceStatus::Published.code()),
            )
            .col_expr(race::Column::PublishedAt, Expr::value(now))
            .col_expr(race::Column::UpdatedAt, Expr::value(now))
            .filter(race::Column::Id.eq(race_id))
            .filter(race::Column::Status.eq(RaceStatus::Draft.code()))
            .exec(&txn)
            .await?
            .rows_affected;
        if published == 0 {
            // Published meanwhile by someone else.
            drop(txn);
            return self.record_for_edit(caller, race_id).await;
        }
        record.race.status = RaceStatus::Published.code().to_owned();
        record.race.published_at = Some(now);
        record.race.updated_at = now;
        let event = proto::RacePublished {
            race: Some(wire::race_message(&record, now)),
        };
        events::enqueue(&txn, race_id, &event).await?;
        txn.commit().await?;
        self.wake_relays();
        self.snapshots.invalidate(&race_id).await;
        Ok(record)
    }

    /// A published race, or a draft for its organizer and admins.
    pub async fn get(&self, caller: Option<&Caller>, race_id: Uuid) -> Result<RaceRecord, Error> {
        self.load(race_id)
            .await?
            .filter(|record| may_see(caller, &record.race))
            .ok_or_else(|| Error::RaceNotFound(race_id.to_string()))
    }

    /// A published race (what anyone may watch, subscribe to or register for).
    pub async fn published_snapshot(&self, race_id: Uuid) -> Result<Arc<RaceSnapshot>, Error> {
        self.snapshot(race_id)
            .await?
            .filter(|race| race.status == RaceStatus::Published)
            .ok_or_else(|| Error::RaceNotFound(race_id.to_string()))
    }

    /// One page of races by start time, and the token of the next page.
    pub async fn list(
        &self,
        caller: Option<&Caller>,
        query: RaceQuery,
        now: DateTime<Utc>,
    ) -> Result<(Vec<RaceRecord>, Option<PageToken>), Error> {
        let mut select = race::Entity::find();
        let visible = match caller {
            Some(caller) if query.include_drafts && caller.is_admin() => Condition::all(),
            Some(caller) if query.include_drafts && caller.has_role(Role::Organizer) => {
                Condition::any()
                    .add(race::Column::Status.eq(RaceStatus::Published.code()))
                    .add(race::Column::OrganizerId.eq(caller.user_id.clone()))
            }
            _ => Condition::all().add(race::Column::Status.eq(RaceStatus::Published.code())),
        };
        select = select.filter(visible);
        if let Some(after) = query.starts_after {
            select = select.filter(race::Column::StartsAt.gte(after));
        }
        if let Some(before) = query.starts_before {
            select = select.filter(race::Column::StartsAt.lt(before));
        }
        if let Some(region) = &query.region {
            select = select.filter(race::Column::RegionKey.eq(region.to_lowercase()));
        }
        if query.min_distance_meters.is_some() || query.max_distance_meters.is_some() {
            let mut categories = Query::select();
            categories
                .expr(Expr::val(1))
                .from(category::Entity)
                .and_where(
                    Expr::col((category::Entity, category::Column::RaceId))
                        .equals((race::Entity, race::Column::Id)),
                );
            if let Some(min) = query.min_distance_meters {
                categories.and_where(
                    Expr::col((category::Entity, category::Column::DistanceMeters)).gte(min),
                );
            }
            if let Some(max) = query.max_distance_meters {
                categories.and_where(
                    Expr::col((category::Entity, category::Column::DistanceMeters)).lte(max),
                );
            }
            select = select.filter(Expr::exists(categories.to_owned()));
        }
        select = match query.registration_state {
            Some(RegistrationState::Upcoming) => {
                select.filter(race::Column::RegistrationOpensAt.gt(now))
            }
            Some(RegistrationState::Open) => select
                .filter(race::Column::RegistrationOpensAt.lte(now))
                .filter(race::Column::RegistrationClosesAt.gt(now)),
            Some(RegistrationState::Closed) => {
                select.filter(race::Column::RegistrationClosesAt.lte(now))
            }
            None => select,
        };
        if let Some(after) = query.after {
            let starts_at = after
                .sort_key
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(|| {
                    Error::invalid("page_token", "is not a token from a previous page")
                })?;
            select = select.filter(
                Condition::any()
                    .add(race::Column::StartsAt.gt(starts_at))
                    .add(
                        Condition::all()
                            .add(race::Column::StartsAt.eq(starts_at))
                            .add(race::Column::Id.gt(after.id)),
                    ),
            );
        }
        let mut races = select
            .order_by_asc(race::Column::StartsAt)
            .order_by_asc(race::Column::Id)
            .limit(query.page_size + 1)
            .all(&self.db)
            .await?;
        let next = if races.len() as u64 > query.page_size {
            races.truncate(usize::try_from(query.page_size).unwrap_or(usize::MAX));
            races
                .last()
                .map(|race| PageToken::after(Some(race.starts_at.timestamp_micros()), race.id))
        } else {
            None
        };
        let ids: Vec<Uuid> = races.iter().map(|race| race.id).collect();
        let mut categories = category::Entity::find()
            .filter(category::Column::RaceId.is_in(ids))
            .order_by_asc(category::Column::Position)
            .all(&self.db)
            .await?;
        let records = races
            .into_iter()
            .map(|race| {
                let (own, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut categories)
                    .into_iter()
                    .partition(|category| category.race_id == race.id);
                categories = rest;
                RaceRecord {
                    race,
                    categories: own,
                }
            })
            .collect();
        Ok((records, next))
    }

    /// Places held per category, cached briefly: every watcher and `GetRace` of a race in this
    /// process share one database read per interval.
    pub async fn availability(&self, race: &RaceSnapshot) -> Result<Arc<Vec<Availability>>, Error> {
        let db = self.db.clone();
        let race = race.clone();
        self.availability
            .try_get_with(race.id, async move {
                count_places(&db, &race).await.map(Arc::new)
            })
            .await
            .map_err(|err: Arc<DbErr>| Error::Database(DbErr::Custom(err.to_string())))
    }

    pub async fn subscribe_to_opening(&self, caller: &Caller, race_id: Uuid) -> Result<(), Error> {
        self.published_snapshot(race_id).await?;
        subscription::Entity::insert(
            subscription::Model {
                race_id,
                user_id: caller.user_id.clone(),
                created_at: wire::now(),
            }
            .into_active_model(),
        )
        .on_conflict_do_nothing_on([subscription::Column::RaceId, subscription::Column::UserId])
        .exec_without_returning(&self.db)
        .await?;
        Ok(())
    }

    pub async fn unsubscribe_from_opening(
        &self,
        caller: &Caller,
        race_id: Uuid,
    ) -> Result<(), Error> {
        self.published_snapshot(race_id).await?;
        subscription::Entity::delete_many()
            .filter(subscription::Column::RaceId.eq(race_id))
            .filter(subscription::Column::UserId.eq(caller.user_id.clone()))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}

async fn insert_categories(
    conn: &impl sea_orm::ConnectionTrait,
    categories: &[category::Model],
) -> Result<(), DbErr> {
    if categories.is_empty() {
        return Ok(());
    }
    category::Entity::insert_many(
        categories
            .iter()
            .cloned()
            .map(IntoActiveModel::into_active_model),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub(crate) async fn load_record(
    db: &impl sea_orm::ConnectionTrait,
    race_id: Uuid,
) -> Result<Option<RaceRecord>, DbErr> {
    let Some(race) = race::Entity::find_by_id(race_id).one(db).await? else {
        return Ok(None);
    };
    let categories = category::Entity::find()
        .filter(category::Column::RaceId.eq(race_id))
        .order_by_asc(category::Column::Position)
        .all(db)
        .await?;
    Ok(Some(RaceRecord { race, categories }))
}

async fn count_places(
    db: &DatabaseConnection,
    race: &RaceSnapshot,
) -> Result<Vec<Availability>, DbErr> {
    let counts: Vec<(Uuid, String, i64)> = registration::Entity::find()
        .select_only()
        .column(registration::Column::CategoryId)
        .column(registration::Column::Status)
        .column_as(registration::Column::Id.count(), "held")
        .filter(registration::Column::RaceId.eq(race.id))
        .filter(registration::Column::Status.is_in([
            RegistrationStatus::Confirmed.code(),
            RegistrationStatus::Waitlisted.code(),
        ]))
        .group_by(registration::Column::CategoryId)
        .group_by(registration::Column::Status)
        .into_tuple()
        .all(db)
        .await?;
    let held = |category_id: Uuid, status: RegistrationStatus| {
        counts
            .iter()
            .find(|(id, code, _)| *id == category_id && code == status.code())
            .map_or(0, |(_, _, count)| u32::try_from(*count).unwrap_or(u32::MAX))
    };
    Ok(race
        .categories
        .iter()
        .map(|category| Availability {
            category_id: category.id,
            capacity: category.capacity,
            confirmed: held(category.id, RegistrationStatus::Confirmed),
            waitlist_capacity: category.waitlist_capacity,
            waitlisted: held(category.id, RegistrationStatus::Waitlisted),
        })
        .collect())
}
