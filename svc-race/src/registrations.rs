//! Registration: the gate admits, PostgreSQL decides.
//!
//! An attempt is rate limited per runner, checked against the cached race definition (not
//! open, closed, unknown category) and put through the gate, all without the database. Only an
//! admitted attempt writes: its registration row and event in one transaction, in a task of its
//! own so that a caller who hangs up cannot leave a reservation half done. The database's
//! unique places, bibs and runners keep the invariants whatever the gate believes; when the
//! gate turns out to be behind (it lost its data, or a crashed writer's reservation was released
//! early) the attempt is corrected and retried. A maintenance loop settles the reservations of
//! writers that died and hands free places to the head of the waitlist.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use runmesh_platform::auth::{Caller, Role};
use runmesh_platform::cache::SharedCache;
use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use runmesh_proto::runmesh::race::v1 as proto;
use sea_orm::TryInsertResult;
use sea_orm::sea_query::Expr;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::catalog::{Catalog, CategorySnapshot, RaceSnapshot, may_manage};
use crate::config::RaceConfig;
use crate::domain::{IdempotencyKey, PageToken, RaceStatus, RegistrationState, RegistrationStatus};
use crate::error::Error;
use crate::events;
use crate::gate::{
    Admission, AttemptLimit, Counted, Gate, Member, PlaceKind, Reservation, attempts_key,
};
use crate::store::{self, race, registration};
use crate::wire;

/// Gate admissions one attempt may go through (a rebuild, or places the gate had wrong).
const MAX_ADMISSIONS: usize = 4;
/// How long a retry with the same idempotency key waits for the original to be written.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(2);
const IN_PROGRESS_POLL: Duration = Duration::from_millis(50);
/// How long before a race opens registration the database pool is warmed for its crowd.
const WARM_AHEAD: chrono::Duration = chrono::Duration::minutes(2);
/// Stale reservations settled per race and maintenance round.
const STALE_BATCH: usize = 10_000;

/// A registration and, while it waits, its place in line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationView {
    pub row: registration::Model,
    pub waitlist_position: Option<u32>,
}

impl RegistrationView {
    pub fn message(&self) -> proto::Registration {
        wire::registration_message(&self.row, self.waitlist_position)
    }
}

/// How one admitted attempt's write ended.
enum Written {
    New(RegistrationView),
    /// The runner already held a registration the gate did not know about.
    Existing(RegistrationView),
    /// The reserved place is held in the database: reserve another.
    PlaceTaken,
}

/// A waitlisted registration that got a confirmed place.
struct Promotion {
    freed_waitlist_place: Option<i32>,
}

/// What giving a free confirmed place to the head of the waitlist came to.
enum HeadPromotion {
    Promoted(Promotion),
    /// Nobody waits in the database.
    NobodyWaits,
    /// The first runner in line is still being written: the place waits for them.
    HeadInFlight,
}

/// Registrations written in one transaction at most.
const MAX_WRITE_BATCH: usize = 256;

/// What the database said about one registration of a grouped write.
enum Inserted {
    /// Written, with its waitlist position when it waits.
    Row(Option<u32>),
    /// A unique index holds another registration of the runner, or the reserved place.
    Conflict,
}

/// A registration waiting for its turn to be written, and whom to tell.
struct QueuedWrite {
    row: registration::Model,
    written: oneshot::Sender<Result<Inserted, String>>,
}

fn abandoned() -> DbErr {
    DbErr::Custom("the write of this registration was abandoned".to_owned())
}

pub struct Registrar {
    db: DatabaseConnection,
    cache: SharedCache,
    bus: Option<EventBus>,
    catalog: Arc<Catalog>,
    gate: Arc<Gate>,
    /// Bounds the transactions writing registrations at once, so a flood of admitted runners
    /// queues here rather than exhausting the connection pool.
    writes: tokio::sync::Semaphore,
    /// Registrations waiting to be written, oldest first.
    queue: parking_lot::Mutex<VecDeque<QueuedWrite>>,
    config: RaceConfig,
}

impl Registrar {
    pub fn new(
        db: DatabaseConnection,
        cache: SharedCache,
        bus: Option<EventBus>,
        catalog: Arc<Catalog>,
        gate: Arc<Gate>,
        config: RaceConfig,
    ) -> Self {
        Self {
            writes: tokio::sync::Semaphore::new(
                usize::try_from(config.write_concurrency).unwrap_or(usize::MAX),
            ),
            queue: parking_lot::Mutex::new(VecDeque::new()),
            db,
            cache,
            bus,
            catalog,
            gate,
            config,
        }
    }

    fn wake_relays(&self) {
        if let Some(bus) = &self.bus {
            bus.wake_relays();
        }
    }

    pub async fn register(
        self: &Arc<Self>,
        caller: &Caller,
        race_id: Uuid,
        category_id: Uuid,
        key: IdempotencyKey,
    ) -> Result<proto::Registration, Error> {
        let answer = self
            .admit_and_write(caller, race_id, category_id, key)
            .await;
        crate::metrics::register_answered(&answer);
        answer
    }

    async fn admit_and_write(
        self: &Arc<Self>,
        caller: &Caller,
        race_id: Uuid,
        category_id: Uuid,
        key: IdempotencyKey,
    ) -> Result<proto::Registration, Error> {
        if !caller.has_role(Role::Runner) {
            return Err(Error::RoleRequired(Role::Runner));
        }
        let limit = AttemptLimit {
            attempts: self.config.register_attempts,
            window: self.config.register_window,
        };
        // Attempts answered before the gate (unknown race or category, registration not open)
        // count like any other, in one round trip of their own; the gate counts the rest.
        let race = match self.open_race(race_id, category_id).await {
            Ok(race) => race,
            Err(refusal) => return Err(self.count_refused_attempt(caller, limit, refusal).await),
        };
        let category = *race
            .category(category_id)
            .ok_or_else(|| Error::CategoryNotFound(category_id.to_string()))?;

        let mut counted = Counted::Yes(limit);
        for _ in 0..MAX_ADMISSIONS {
            let admission = self
                .gate
                .admit(&race, category_id, &caller.user_id, &key, counted)
                .await?;
            crate::metrics::gate_answered(&admission);
            if !matches!(admission, Admission::NotReady | Admission::UnknownCategory) {
                counted = Counted::No;
            }
            match admission {
                Admission::NotReady => self.rebuild_gate(&race).await?,
                Admission::UnknownCategory => {
                    self.gate.invalidate(race.id).await?;
                    self.rebuild_gate(&race).await?;
                }
                Admission::RateLimited(retry_after) => {
                    return Err(Error::TooManyAttempts { retry_after });
                }
                Admission::Member(member) => {
                    return match member.answer {
                        _ if !key.matches(&member.idempotency_key) => Err(Error::AlreadyRegistered),
                        Some(answer) => Ok(answer),
                        None => self.first_answer(&race, &caller.user_id, member).await,
                    };
                }
                Admission::SoldOut => return Err(Error::SoldOut),
                Admission::Admitted(reservation) => {
                    let registrar = Arc::clone(self);
                    let (race, written_key) = (Arc::clone(&race), key.clone());
                    let written = tokio::spawn(async move {
                        registrar
                            .write(&race, category, reservation, &written_key)
                            .await
                    })
                    .await??;
                    match written {
                        Written::New(view) => return Ok(view.message()),
                        Written::Existing(view) if key.matches(&view.row.idempotency_key) => {
                            return Ok(view.message());
                        }
                        Written::Existing(_) => return Err(Error::AlreadyRegistered),
                        Written::PlaceTaken => {}
                    }
                }
            }
        }
        Err(Error::Busy)
    }

    /// Builds the race's gate if it is missing, in a task of its own: a caller who hangs up
    /// mid-build must not leave the gate half loaded and its build lock held.
    async fn rebuild_gate(&self, race: &Arc<RaceSnapshot>) -> Result<(), Error> {
        let (gate, race) = (Arc::clone(&self.gate), Arc::clone(race));
        tokio::spawn(async move { gate.ensure_ready(&race).await }).await??;
        Ok(())
    }

    /// The published race, when `category_id` is one of its categories and registration is open.
    async fn open_race(
        &self,
        race_id: Uuid,
        category_id: Uuid,
    ) -> Result<Arc<RaceSnapshot>, Error> {
        let race = self.catalog.published_snapshot(race_id).await?;
        if race.category(category_id).is_none() {
            return Err(Error::CategoryNotFound(category_id.to_string()));
        }
        let window = race.window;
        match window.state_at(Utc::now()) {
            RegistrationState::Upcoming => Err(Error::RegistrationNotOpen {
                opens_at: window.opens_at,
                closes_at: window.closes_at,
            }),
            RegistrationState::Closed => Err(Error::RegistrationClosed {
                opens_at: window.opens_at,
                closes_at: window.closes_at,
            }),
            RegistrationState::Open => Ok(race),
        }
    }

    /// Counts an attempt refused before the gate; `refusal`, or `TOO_MANY_ATTEMPTS` when the
    /// runner is over the limit.
    async fn count_refused_attempt(
        &self,
        caller: &Caller,
        limit: AttemptLimit,
        refusal: Error,
    ) -> Error {
        match self
            .cache
            .rate_limit(&attempts_key(&caller.user_id), limit.attempts, limit.window)
            .await
        {
            Ok(decision) if !decision.allowed => Error::TooManyAttempts {
                retry_after: decision.retry_after,
            },
            Ok(_) => refusal,
            Err(error) => error.into(),
        }
    }

    /// Writes an admitted attempt's registration and event, then settles its reservation.
    async fn write(
        &self,
        race: &RaceSnapshot,
        category: CategorySnapshot,
        reservation: Reservation,
        key: &IdempotencyKey,
    ) -> Result<Written, Error> {
        let now = wire::now();
        let place = i32::try_from(reservation.place).ok();
        let mut row = registration::Model {
            id: reservation.registration_id,
            race_id: race.id,
            category_id: category.id,
            user_id: reservation.user_id.clone(),
            status: RegistrationStatus::Confirmed.code().to_owned(),
            place: None,
            bib_number: None,
            waitlist_place: None,
            waitlist_seq: None,
            idempotency_key: key.as_str().to_owned(),
            created_at: now,
            updated_at: now,
            result_run_id: None,
            result_elapsed_micros: None,
            result_linked_at: None,
        };
        match reservation.kind {
            PlaceKind::Confirmed if reservation.place <= category.capacity => {
                row.place = place;
                row.bib_number = i32::try_from(category.bib(reservation.place)).ok();
            }
            PlaceKind::Waitlist if reservation.place <= category.waitlist_capacity => {
                row.status = RegistrationStatus::Waitlisted.code().to_owned();
                row.waitlist_place = place;
                row.waitlist_seq = Some(reservation.waitlist_seq);
            }
            _ => {
                // The gate was built for other capacities: never write past them.
                self.gate.release(race, &reservation, false).await?;
                self.gate.invalidate(race.id).await?;
                return Ok(Written::PlaceTaken);
            }
        }

        match self.insert(&row).await {
            Ok(Inserted::Row(waitlist_position)) => {
                self.wake_relays();
                let view = RegistrationView {
                    row,
                    waitlist_position,
                };
                if let Err(error) = self
                    .gate
                    .settle(race, &reservation, key.as_str(), Some(&view.message()))
                    .await
                {
                    tracing::warn!(race_id = %race.id, %error, "could not settle a reservation; maintenance will");
                }
                if reservation.kind == PlaceKind::Waitlist {
                    // A place freed while this runner's registration was being written waited
                    // for it (nobody behind may pass): hand it over now.
                    if let Err(error) = self.promote_waiting(race, category).await {
                        tracing::warn!(race_id = %race.id, %error, "could not promote the waitlist; maintenance will");
                    }
                }
                Ok(Written::New(view))
            }
            Ok(Inserted::Conflict) => {
                let existing = registration::Entity::find()
                    .filter(registration::Column::RaceId.eq(race.id))
                    .filter(registration::Column::UserId.eq(reservation.user_id.as_str()))
                    .one(&self.db)
                    .await?;
                match existing {
                    Some(existing) => {
                        // Remember the runner's registration before giving the reservation's
                        // place back: the release forgets only a member that still points at
                        // this reservation, so the runner never looks unknown (and a duplicate
                        // attempt meanwhile is ALREADY_REGISTERED, not SOLD_OUT).
                        let view = self.view(existing).await?;
                        self.gate
                            .remember_member(
                                race,
                                &view.row.user_id,
                                view.row.id,
                                &view.row.idempotency_key,
                                Some(&view.message()),
                            )
                            .await?;
                        if view.row.id == reservation.registration_id {
                            // This reservation's own row: it holds the place.
                            self.gate
                                .settle(
                                    race,
                                    &reservation,
                                    &view.row.idempotency_key,
                                    Some(&view.message()),
                                )
                                .await?;
                        } else {
                            self.release(race, category, &reservation).await?;
                        }
                        Ok(Written::Existing(view))
                    }
                    None => {
                        self.gate.release(race, &reservation, false).await?;
                        Ok(Written::PlaceTaken)
                    }
                }
            }
            Err(err) => {
                // The commit may have happened all the same (the connection dropped on its
                // answer): only a row known to be absent gives its place back. When even that
                // cannot be read, the reservation stays pending and maintenance settles it
                // against the database.
                match registration::Entity::find_by_id(row.id).one(&self.db).await {
                    Ok(Some(_)) => {
                        tracing::warn!(race_id = %race.id, registration_id = %row.id, error = %err, "a registration's write reported an error but committed");
                    }
                    Ok(None) => {
                        if let Err(error) = self.release(race, category, &reservation).await {
                            tracing::warn!(race_id = %race.id, %error, "could not release a reservation; maintenance will");
                        }
                    }
                    Err(error) => {
                        tracing::warn!(race_id = %race.id, %error, "cannot tell whether a registration was written; maintenance will settle it");
                    }
                }
                Err(err.into())
            }
        }
    }

    /// Inserts the registration and its event. Admitted runners queue here and whoever holds
    /// one of the `write_concurrency` permits writes the queue's head, up to
    /// [`MAX_WRITE_BATCH`] registrations in one transaction: when a crowd is admitted at once,
    /// its registrations share transactions (and commits) instead of each waiting for one.
    async fn insert(&self, row: &registration::Model) -> Result<Inserted, DbErr> {
        let (written, outcome) = oneshot::channel();
        self.queue.lock().push_back(QueuedWrite {
            row: row.clone(),
            written,
        });
        let permit = self
            .writes
            .acquire()
            .await
            .map_err(|closed| DbErr::Custom(closed.to_string()))?;
        // Write batches while this row still queues: each pass takes the rows queued ahead of
        // it (or with it), so this ends. Once another writer took it, its answer comes from
        // that writer.
        let mut lingered = false;
        loop {
            let batch: Option<Vec<QueuedWrite>> = {
                let mut queue = self.queue.lock();
                if !queue.iter().any(|queued| queued.row.id == row.id) {
                    break;
                }
                if !lingered && queue.len() < MAX_WRITE_BATCH {
                    None
                } else {
                    let taken = queue.len().min(MAX_WRITE_BATCH);
                    Some(queue.drain(..taken).collect())
                }
            };
            match batch {
                Some(batch) => write_batch(&self.db, batch).await,
                None => {
                    // Runners admitted in the next moments join this transaction: in a crowd
                    // that is far fewer commits, each slow on a machine busy answering it.
                    tokio::time::sleep(self.config.write_linger).await;
                    lingered = true;
                }
            }
        }
        drop(permit);
        match outcome.await {
            Ok(result) => result.map_err(DbErr::Custom),
            Err(_) => Err(abandoned()),
        }
    }

    /// Gives a reservation's place back; a confirmed place goes to the waitlist first.
    async fn release(
        &self,
        race: &RaceSnapshot,
        category: CategorySnapshot,
        reservation: &Reservation,
    ) -> Result<(), Error> {
        if self.gate.release(race, reservation, true).await?
            && reservation.kind == PlaceKind::Confirmed
        {
            self.promote_waiting(race, category).await?;
        }
        Ok(())
    }

    /// A retry with the key of an attempt whose answer the gate does not hold: the attempt is
    /// still being written (its answer appears in the gate), or the gate was rebuilt from the
    /// database (which has the registration).
    async fn first_answer(
        &self,
        race: &RaceSnapshot,
        user_id: &str,
        member: Member,
    ) -> Result<proto::Registration, Error> {
        let deadline = tokio::time::Instant::now() + IN_PROGRESS_WAIT;
        let mut current = Some(member.clone());
        while let Some(Member {
            registration_id,
            answer,
            ..
        }) = current
            && registration_id == member.registration_id
        {
            if let Some(answer) = answer {
                return Ok(answer);
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(IN_PROGRESS_POLL).await;
            current = self.gate.member(race.id, user_id).await?;
        }
        let Some(row) = registration::Entity::find_by_id(member.registration_id)
            .one(&self.db)
            .await?
        else {
            return Err(Error::RegistrationInProgress);
        };
        let view = self.view(row).await?;
        let answer = view.message();
        self.gate
            .remember_member(
                race,
                user_id,
                member.registration_id,
                &member.idempotency_key,
                Some(&answer),
            )
            .await?;
        Ok(answer)
    }

    async fn view(&self, row: registration::Model) -> Result<RegistrationView, Error> {
        let waitlist_position = if row.status == RegistrationStatus::Waitlisted.code() {
            Some(waitlist_position(&self.db, &row).await?)
        } else {
            None
        };
        Ok(RegistrationView {
            row,
            waitlist_position,
        })
    }

    /// Cancels a registration (the runner's own, or any for the race's organizer and admins).
    /// A confirmed place goes to the head of the waitlist in the same transaction.
    pub async fn cancel(
        &self,
        caller: &Caller,
        registration_id: Uuid,
    ) -> Result<RegistrationView, Error> {
        for _ in 0..3 {
            let row = registration::Entity::find_by_id(registration_id)
                .one(&self.db)
                .await?
                .ok_or_else(|| Error::RegistrationNotFound(registration_id.to_string()))?;
            let race = self
                .catalog
                .snapshot(row.race_id)
                .await?
                .ok_or_else(|| Error::RaceNotFound(row.race_id.to_string()))?;
            if row.user_id != caller.user_id && !may_manage(caller, &race.organizer_id) {
                return Err(Error::NotYourRegistration);
            }
            let status = RegistrationStatus::from_code(&row.status)
                .ok_or_else(|| DbErr::Custom(format!("unknown status {:?}", row.status)))?;
            if status == RegistrationStatus::Cancelled {
                return self.view(row).await;
            }
            let category = *race
                .category(row.category_id)
                .ok_or_else(|| Error::CategoryNotFound(row.category_id.to_string()))?;

            let freed_place = row.place.and_then(|place| u32::try_from(place).ok());
            // Read before the transaction: a runner in line whose registration is still being
            // written is ahead of everyone the transaction can see.
            let earliest_in_flight = match freed_place {
                Some(_) => {
                    self.gate
                        .earliest_waitlist_in_flight(race.id, category.id)
                        .await?
                }
                None => None,
            };
            let now = wire::now();
            let txn = begin_write(&self.db).await?;
            let cancelled = registration::Entity::update_many()
                .col_expr(
                    registration::Column::Status,
                    Expr::value(RegistrationStatus::Cancelled.code()),
                )
                .col_expr(
                    registration::Column::Place,
                    Expr::value(Option::<i32>::None),
                )
                .col_expr(
                    registration::Column::BibNumber,
                    Expr::value(Option::<i32>::None),
                )
                .col_expr(
                    registration::Column::WaitlistPlace,
                    Expr::value(Option::<i32>::None),
                )
                .col_expr(registration::Column::UpdatedAt, Expr::value(now))
                .filter(registration::Column::Id.eq(registration_id))
                .filter(registration::Column::Status.eq(row.status.as_str()))
                .exec(&txn)
                .await?
                .rows_affected;
            if cancelled == 0 {
                continue;
            }
            let mut after = row.clone();
            after.status = RegistrationStatus::Cancelled.code().to_owned();
            after.place = None;
            after.bib_number = None;
            after.waitlist_place = None;
            after.updated_at = now;
            let event = proto::RegistrationCancelled {
                registration: Some(wire::registration_message(&after, None)),
                cancelled_by: caller.user_id.clone(),
                previous_status: wire::registration_status(status).into(),
            };
            events::enqueue(&txn, row.race_id, &event).await?;
            let promotion = match freed_place {
                Some(place) => {
                    match promote_head(&txn, &race, category, place, earliest_in_flight).await? {
                        HeadPromotion::Promoted(promotion) => Some(promotion),
                        HeadPromotion::NobodyWaits | HeadPromotion::HeadInFlight => None,
                    }
                }
                None => None,
            };
            txn.commit().await?;
            self.wake_relays();

            let gate_update = match (freed_place, promotion, row.waitlist_place) {
                (Some(_), Some(promotion), _) => match promotion.freed_waitlist_place {
                    Some(place) => self.waitlist_place_freed(&race, category.id, place).await,
                    None => Ok(()),
                },
                (Some(place), None, _) => {
                    self.gate
                        .place_freed(&race, category.id, PlaceKind::Confirmed, place)
                        .await
                }
                (None, _, Some(place)) => {
                    self.waitlist_place_freed(&race, category.id, place).await
                }
                (None, _, None) => Ok(()),
            };
            if let Err(error) = gate_update {
                // The database holds the truth; the gate catches up when it is rebuilt.
                tracing::warn!(%registration_id, %error, "could not return a cancelled place to the gate");
            }
            return Ok(RegistrationView {
                row: after,
                waitlist_position: None,
            });
        }
        Err(Error::Conflict)
    }

    async fn waitlist_place_freed(
        &self,
        race: &RaceSnapshot,
        category_id: Uuid,
        place: i32,
    ) -> Result<(), crate::gate::GateError> {
        match u32::try_from(place) {
            Ok(place) => {
                self.gate
                    .place_freed(race, category_id, PlaceKind::Waitlist, place)
                    .await
            }
            Err(_) => Ok(()),
        }
    }

    /// Hands free confirmed places to the head of the waitlist while runners wait, one
    /// transaction per promotion. Stops when nobody in the database waits yet (those the gate
    /// counts are still being written; the next round promotes them).
    async fn promote_waiting(
        &self,
        race: &RaceSnapshot,
        category: CategorySnapshot,
    ) -> Result<u32, Error> {
        let mut promoted = 0;
        while let Some(place) = self.gate.claim_for_promotion(race, category.id).await? {
            let earliest_in_flight = match self
                .gate
                .earliest_waitlist_in_flight(race.id, category.id)
                .await
            {
                Ok(earliest) => earliest,
                Err(error) => {
                    self.gate
                        .place_freed(race, category.id, PlaceKind::Confirmed, place)
                        .await?;
                    return Err(error.into());
                }
            };
            let txn = begin_write(&self.db).await?;
            match promote_head(&txn, race, category, place, earliest_in_flight).await {
                Ok(HeadPromotion::Promoted(promotion)) => {
                    txn.commit().await?;
                    self.wake_relays();
                    promoted += 1;
                    if let Some(freed) = promotion.freed_waitlist_place {
                        self.waitlist_place_freed(race, category.id, freed).await?;
                    }
                }
                // The place waits: for the head of the line to be written (its writer
                // promotes it then), or for somebody to wait.
                Ok(HeadPromotion::NobodyWaits | HeadPromotion::HeadInFlight) => {
                    drop(txn);
                    self.gate
                        .place_freed(race, category.id, PlaceKind::Confirmed, place)
                        .await?;
                    break;
                }
                // The place is held in the database (the gate had it wrong): leave it taken.
                Err(err) if store::is_unique_violation(&err) => drop(txn),
                Err(err) => {
                    drop(txn);
                    self.gate
                        .place_freed(race, category.id, PlaceKind::Confirmed, place)
                        .await?;
                    return Err(err.into());
                }
            }
        }
        Ok(promoted)
    }

    /// Settles the reservations of writers that never finished and promotes waiting runners
    /// into free places, every `maintenance_interval`, until `shutdown`.
    pub async fn maintain(self: Arc<Self>, shutdown: CancellationToken) {
        let mut interval = tokio::time::interval(self.config.maintenance_interval);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            if let Err(error) = self.maintain_once().await {
                tracing::warn!(%error, "registration maintenance failed; retrying next round");
            }
        }
    }

    /// One maintenance round over the races whose places can still move (published, opened or
    /// opening within [`WARM_AHEAD`], not started): keeps the database pool warm for them,
    /// builds missing gates of open races, settles stale reservations, promotes.
    pub async fn maintain_once(&self) -> Result<(), Error> {
        let now = Utc::now();
        let race_ids: Vec<Uuid> = race::Entity::find()
            .select_only()
            .column(race::Column::Id)
            .filter(race::Column::Status.eq(RaceStatus::Published.code()))
            .filter(race::Column::RegistrationOpensAt.lte(now + WARM_AHEAD))
            .filter(race::Column::StartsAt.gt(now))
            .into_tuple()
            .all(&self.db)
            .await?;
        if !race_ids.is_empty() {
            // The crowd at an opening should not wait for connections to be opened.
            let writers = u32::try_from(self.config.write_concurrency).unwrap_or(u32::MAX);
            runmesh_platform::db::warm_pool(&self.db, writers).await?;
        }
        for race_id in race_ids {
            let Some(race) = self.catalog.snapshot(race_id).await? else {
                continue;
            };
            if !self.gate.is_ready(race_id).await? {
                // Build the gate before registration opens (or right after Redis lost it), so
                // the first runners do not wait for it.
                if race.window.state_at(now) != RegistrationState::Closed {
                    self.gate.ensure_ready(&race).await?;
                }
                continue;
            }
            let Some(cutoff) = chrono::Duration::from_std(self.config.reservation_timeout)
                .ok()
                .and_then(|timeout| now.checked_sub_signed(timeout))
            else {
                continue;
            };
            for reservation in self
                .gate
                .stale_reservations(race_id, cutoff, STALE_BATCH)
                .await?
            {
                self.settle_stale(&race, reservation).await?;
            }
            for category in &race.categories {
                self.promote_waiting(&race, *category).await?;
            }
        }
        Ok(())
    }

    /// A reservation whose writer is gone: kept if its registration was written, else released.
    async fn settle_stale(
        &self,
        race: &RaceSnapshot,
        reservation: Reservation,
    ) -> Result<(), Error> {
        match registration::Entity::find_by_id(reservation.registration_id)
            .one(&self.db)
            .await?
        {
            Some(row) => {
                self.gate
                    .settle(race, &reservation, &row.idempotency_key, None)
                    .await?;
            }
            None => {
                let Some(category) = race.category(reservation.category_id).copied() else {
                    return Ok(());
                };
                tracing::warn!(
                    race_id = %race.id,
                    registration_id = %reservation.registration_id,
                    "releasing the reservation of a writer that never finished"
                );
                self.release(race, category, &reservation).await?;
            }
        }
        Ok(())
    }

    /// The caller's registrations, newest first.
    pub async fn list_mine(
        &self,
        caller: &Caller,
        page_size: u64,
        after: Option<PageToken>,
    ) -> Result<(Vec<RegistrationView>, Option<PageToken>), Error> {
        let mut select = registration::Entity::find()
            .filter(registration::Column::UserId.eq(caller.user_id.as_str()));
        if let Some(after) = after {
            select = select.filter(registration::Column::Id.lt(after.id));
        }
        let rows = select
            .order_by_desc(registration::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        self.page(rows, page_size).await
    }

    /// A race's registrations in the order they were made, for its organizer and admins.
    pub async fn list_for_race(
        &self,
        caller: &Caller,
        race_id: Uuid,
        status: Option<RegistrationStatus>,
        page_size: u64,
        after: Option<PageToken>,
    ) -> Result<(Vec<RegistrationView>, Option<PageToken>), Error> {
        let record = self.catalog.get(Some(caller), race_id).await?;
        if !may_manage(caller, &record.race.organizer_id) {
            return Err(Error::NotRaceOrganizer);
        }
        let mut select =
            registration::Entity::find().filter(registration::Column::RaceId.eq(race_id));
        if let Some(status) = status {
            select = select.filter(registration::Column::Status.eq(status.code()));
        }
        if let Some(after) = after {
            select = select.filter(registration::Column::Id.gt(after.id));
        }
        let rows = select
            .order_by_asc(registration::Column::Id)
            .limit(page_size + 1)
            .all(&self.db)
            .await?;
        self.page(rows, page_size).await
    }

    async fn page(
        &self,
        mut rows: Vec<registration::Model>,
        page_size: u64,
    ) -> Result<(Vec<RegistrationView>, Option<PageToken>), Error> {
        let next = if rows.len() as u64 > page_size {
            rows.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
            rows.last().map(|row| PageToken::after(None, row.id))
        } else {
            None
        };
        // Each waiting category's line, read once per page.
        let mut lines: HashMap<Uuid, Vec<i64>> = HashMap::new();
        let mut views = Vec::with_capacity(rows.len());
        for row in rows {
            let waitlist_position = match row.waitlist_seq {
                Some(seq) if row.status == RegistrationStatus::Waitlisted.code() => {
                    let line = match lines.entry(row.category_id) {
                        Entry::Occupied(line) => line.into_mut(),
                        Entry::Vacant(vacant) => {
                            vacant.insert(waitlist_line(&self.db, row.category_id).await?)
                        }
                    };
                    Some(position_in_line(line, seq))
                }
                _ => None,
            };
            views.push(RegistrationView {
                row,
                waitlist_position,
            });
        }
        Ok((views, next))
    }
}

/// Writes `batch` in one transaction and tells each queued writer how its row fared.
async fn write_batch(db: &DatabaseConnection, batch: Vec<QueuedWrite>) {
    let rows: Vec<registration::Model> = batch.iter().map(|queued| queued.row.clone()).collect();
    match insert_batch(db, &rows).await {
        Ok(outcomes) => {
            for (queued, outcome) in batch.into_iter().zip(outcomes) {
                // A writer that is gone (its runtime shut down) needs no answer.
                queued.written.send(Ok(outcome)).ok();
            }
        }
        Err(err) => {
            let message = err.to_string();
            for queued in batch {
                queued.written.send(Err(message.clone())).ok();
            }
        }
    }
}

/// Inserts `rows` and the event of each one written, in one transaction. A row that would break
/// a unique index (the runner's, a place's, a bib's) is skipped, not an error, so one runner's
/// conflict does not undo the others' registrations.
async fn insert_batch(
    db: &DatabaseConnection,
    rows: &[registration::Model],
) -> Result<Vec<Inserted>, DbErr> {
    let txn = begin_write(db).await?;
    let inserted: HashSet<Uuid> = match registration::Entity::insert_many(
        rows.iter().cloned().map(IntoActiveModel::into_active_model),
    )
    .on_conflict(OnConflict::new().do_nothing().to_owned())
    .try_insert()
    .exec_with_returning_keys(&txn)
    .await?
    {
        TryInsertResult::Inserted(ids) => ids.into_iter().collect(),
        TryInsertResult::Conflicted | TryInsertResult::Empty => HashSet::new(),
    };
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut envelopes = Vec::with_capacity(inserted.len());
    // Each waiting category's line, read once per batch (after the inserts, so it holds them).
    let mut lines: HashMap<Uuid, Vec<i64>> = HashMap::new();
    for row in rows {
        if !inserted.contains(&row.id) {
            outcomes.push(Inserted::Conflict);
            continue;
        }
        let waitlist_position = match row.waitlist_seq {
            Some(seq) => {
                let line = match lines.entry(row.category_id) {
                    Entry::Occupied(line) => line.into_mut(),
                    Entry::Vacant(vacant) => {
                        vacant.insert(waitlist_line(&txn, row.category_id).await?)
                    }
                };
                Some(position_in_line(line, seq))
            }
            None => None,
        };
        let registration = Some(wire::registration_message(row, waitlist_position));
        envelopes.push(match waitlist_position {
            Some(_) => {
                events::envelope(row.race_id, &proto::RegistrationWaitlisted { registration })
            }
            None => events::envelope(row.race_id, &proto::RegistrationConfirmed { registration }),
        });
        outcomes.push(Inserted::Row(waitlist_position));
    }
    events::enqueue_many(&txn, &envelopes).await?;
    txn.commit().await?;
    Ok(outcomes)
}

/// 1 + how many runners of the category wait ahead of `row`.
async fn waitlist_position(
    conn: &impl ConnectionTrait,
    row: &registration::Model,
) -> Result<u32, DbErr> {
    let ahead = registration::Entity::find()
        .filter(registration::Column::CategoryId.eq(row.category_id))
        .filter(registration::Column::Status.eq(RegistrationStatus::Waitlisted.code()))
        .filter(registration::Column::WaitlistSeq.lt(row.waitlist_seq.unwrap_or(i64::MAX)))
        .count(conn)
        .await?;
    Ok(u32::try_from(ahead + 1).unwrap_or(u32::MAX))
}

/// 1 + how many of `line` (waitlist orders, ascending) wait ahead of `seq`.
fn position_in_line(line: &[i64], seq: i64) -> u32 {
    u32::try_from(line.partition_point(|other| *other < seq) + 1).unwrap_or(u32::MAX)
}

/// The waitlist order keys of a category, in order.
async fn waitlist_line(db: &impl ConnectionTrait, category_id: Uuid) -> Result<Vec<i64>, DbErr> {
    let line: Vec<Option<i64>> = registration::Entity::find()
        .select_only()
        .column(registration::Column::WaitlistSeq)
        .filter(registration::Column::CategoryId.eq(category_id))
        .filter(registration::Column::Status.eq(RegistrationStatus::Waitlisted.code()))
        .order_by_asc(registration::Column::WaitlistSeq)
        .into_tuple()
        .all(db)
        .await?;
    Ok(line.into_iter().flatten().collect())
}

/// Gives confirmed place `place` to the first runner on the category's waitlist, with its event,
/// in `txn` — unless a runner ahead of them in line (`earliest_in_flight`, the lowest waitlist
/// order whose registration is still being written) is not in the database yet.
async fn promote_head(
    txn: &impl ConnectionTrait,
    race: &RaceSnapshot,
    category: CategorySnapshot,
    place: u32,
    earliest_in_flight: Option<i64>,
) -> Result<HeadPromotion, DbErr> {
    let bib = i32::try_from(category.bib(place)).ok();
    let place_value = i32::try_from(place).ok();
    // A concurrent promotion may take the head first; then the next one is tried.
    for _ in 0..8 {
        let Some(head) = registration::Entity::find()
            .filter(registration::Column::CategoryId.eq(category.id))
            .filter(registration::Column::Status.eq(RegistrationStatus::Waitlisted.code()))
            .order_by_asc(registration::Column::WaitlistSeq)
            .one(txn)
            .await?
        else {
            return Ok(match earliest_in_flight {
                Some(_) => HeadPromotion::HeadInFlight,
                None => HeadPromotion::NobodyWaits,
            });
        };
        if let Some(earliest) = earliest_in_flight
            && head.waitlist_seq.is_none_or(|seq| seq > earliest)
        {
            return Ok(HeadPromotion::HeadInFlight);
        }
        let now = wire::now();
        let promoted = registration::Entity::update_many()
            .col_expr(
                registration::Column::Status,
                Expr::value(RegistrationStatus::Confirmed.code()),
            )
            .col_expr(registration::Column::Place, Expr::value(place_value))
            .col_expr(registration::Column::BibNumber, Expr::value(bib))
            .col_expr(
                registration::Column::WaitlistPlace,
                Expr::value(Option::<i32>::None),
            )
            .col_expr(registration::Column::UpdatedAt, Expr::value(now))
            .filter(registration::Column::Id.eq(head.id))
            .filter(registration::Column::Status.eq(RegistrationStatus::Waitlisted.code()))
            .exec(txn)
            .await?
            .rows_affected;
        if promoted == 0 {
            continue;
        }
        let mut row = head.clone();
        row.status = RegistrationStatus::Confirmed.code().to_owned();
        row.place = place_value;
        row.bib_number = bib;
        row.waitlist_place = None;
        row.updated_at = now;
        let event = proto::WaitlistPromoted {
            registration: Some(wire::registration_message(&row, None)),
        };
        events::enqueue(txn, race.id, &event).await?;
        return Ok(HeadPromotion::Promoted(Promotion {
            freed_waitlist_place: head.waitlist_place,
        }));
    }
    Ok(HeadPromotion::NobodyWaits)
}
