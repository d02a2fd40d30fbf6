//! The registration gate: an atomic check in Redis (or the in-memory cache) that answers the
//! flood of attempts that cannot succeed without touching the database, and hands each
//! admitted runner a reserved place.
//!
//! Per race, under one hash tag (`gate:{<race_id>}:…`):
//! - `ready`: the build id, present once the gate was built from the database. Its absence is
//!   how a Redis that lost its data is detected: nobody is admitted until the gate is rebuilt
//!   (under the `building` lock, so replicas do not build twice).
//! - `members`: user id → `registration_id|idempotency_key[|answer]` of every runner holding (or
//!   being written) a registration, cancelled ones included: one registration per runner and
//!   race; a retry with the same key gets the stored answer without the database.
//! - `pending`: reservations whose registration is being written (score: admission time), so a
//!   crashed writer's reservation can be settled against the database.
//! - per category `c:<id>`: `capacity`, `wcap`, `next` and `wnext` (the next never-used
//!   confirmed and waitlist place), `wseq` (waitlist order); `…:free` and `…:wfree`: places
//!   given back (score `-place`, so the lowest is reused first).
//!
//! A confirmed place goes to a newcomer only while nobody waits, so nobody jumps the waitlist;
//! places that free up while runners wait are handed to the head of the waitlist by the
//! registrar. The database holds the invariants on its own (unique places, bibs and runners):
//! the gate keeps the flood away from it and, when it is wrong after losing data, costs an
//! attempt a retry, never a violated invariant.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::{DateTime, Utc};
use prost::Message as _;
use runmesh_platform::cache::{AtomicScript, CacheError, MemoryState, ScriptValue, SharedCache};
use runmesh_proto::runmesh::race::v1 as proto;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::catalog::RaceSnapshot;
use crate::domain::IdempotencyKey;
use crate::store::{category, registration};

/// How long the rebuild lock lives if its holder dies mid-build.
const BUILD_LOCK_TTL: Duration = Duration::from_secs(30);
/// How long a caller waits for another replica's rebuild before answering UNAVAILABLE.
const REBUILD_WAIT: Duration = Duration::from_secs(10);
const REBUILD_POLL: Duration = Duration::from_millis(25);
/// Values per script call when loading a rebuilt gate.
const LOAD_CHUNK: usize = 1000;
/// Pending reservations read at most when looking for in-flight waitlist writes (they are the
/// registrations being written this moment, bounded by the write queue).
const PENDING_SCAN: usize = 100_000;
/// Gate keys expire this long after registration closes.
const KEEP_AFTER_CLOSE: chrono::Duration = chrono::Duration::days(7);

#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("database: {0}")]
    Database(#[from] DbErr),
    #[error("the gate is being rebuilt by another replica")]
    Rebuilding,
    #[error("unexpected gate reply: {0}")]
    Reply(String),
}

/// Which kind of place a reservation holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceKind {
    Confirmed,
    Waitlist,
}

impl PlaceKind {
    fn from_code(code: &str) -> Option<Self> {
        match code {
            "C" => Some(Self::Confirmed),
            "W" => Some(Self::Waitlist),
            _ => None,
        }
    }
}

/// A place the gate reserved for one runner while the registration is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reservation {
    pub race_id: Uuid,
    pub category_id: Uuid,
    pub user_id: String,
    pub registration_id: Uuid,
    pub kind: PlaceKind,
    /// `1..=capacity` (confirmed) or `1..=waitlist_capacity`.
    pub place: u32,
    /// Waitlist order; 0 for a confirmed place.
    pub waitlist_seq: i64,
    /// The reservation's member of `pending`.
    entry: String,
}

impl Reservation {
    fn parse_entry(race_id: Uuid, entry: &str) -> Option<Self> {
        let mut parts = entry.splitn(6, '|');
        let registration_id = Uuid::parse_str(parts.next()?).ok()?;
        let category_id = Uuid::parse_str(parts.next()?).ok()?;
        let kind = PlaceKind::from_code(parts.next()?)?;
        let place = parts.next()?.parse().ok()?;
        let waitlist_seq = parts.next()?.parse().ok()?;
        let user_id = parts.next()?.to_owned();
        Some(Self {
            race_id,
            category_id,
            user_id,
            registration_id,
            kind,
            place,
            waitlist_seq,
            entry: entry.to_owned(),
        })
    }
}

/// A runner the gate already knows for this race: `registration_id|idempotency_key`, then
/// `|answer` (the encoded `Registration` the runner was told) once the registration is written,
/// so a retry with the same key is answered from the gate too.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub registration_id: Uuid,
    pub idempotency_key: String,
    pub answer: Option<proto::Registration>,
}

impl Member {
    fn value(registration_id: Uuid, key: &str, answer: Option<&proto::Registration>) -> String {
        match answer {
            Some(answer) => format!(
                "{registration_id}|{key}|{}",
                STANDARD_NO_PAD.encode(answer.encode_to_vec())
            ),
            None => format!("{registration_id}|{key}"),
        }
    }

    fn parse(value: &str) -> Option<Self> {
        let mut parts = value.splitn(3, '|');
        let registration_id = Uuid::parse_str(parts.next()?).ok()?;
        let idempotency_key = parts.next()?.to_owned();
        // An answer that does not decode is only a lost shortcut: the database has it.
        let answer = parts
            .next()
            .and_then(|answer| STANDARD_NO_PAD.decode(answer).ok())
            .and_then(|bytes| proto::Registration::decode(bytes.as_slice()).ok());
        Some(Self {
            registration_id,
            idempotency_key,
            answer,
        })
    }
}

/// What the gate said to one attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Admission {
    /// The gate holds no data for this race (never built, or Redis lost it): rebuild first.
    NotReady,
    /// The gate does not know the category: it was built from an older race definition.
    UnknownCategory,
    /// The runner already holds a registration (or one is being written).
    Member(Member),
    SoldOut,
    Admitted(Reservation),
    /// The runner used up the attempts of the current window; retry after this long.
    RateLimited(Duration),
}

/// How many attempts one runner may make per window, counted by the gate as it admits (so the
/// count costs no round trip of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimit {
    pub attempts: u64,
    pub window: Duration,
}

/// Whether this admission counts as one of the runner's attempts: the first admission of a
/// call does; the retries of the same call (after a rebuild or a place the gate had wrong) don't.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    Yes(AttemptLimit),
    No,
}

/// The key of a runner's attempt counter (shared with the paths that answer before the gate).
pub fn attempts_key(user_id: &str) -> String {
    format!("register:{user_id}")
}

struct GateKeys {
    ready: String,
    building: String,
    members: String,
    pending: String,
    prefix: String,
}

struct CategoryKeys {
    hash: String,
    free: String,
    wfree: String,
}

impl GateKeys {
    fn new(race_id: Uuid) -> Self {
        let prefix = format!("gate:{{{race_id}}}");
        Self {
            ready: format!("{prefix}:ready"),
            building: format!("{prefix}:building"),
            members: format!("{prefix}:members"),
            pending: format!("{prefix}:pending"),
            prefix,
        }
    }

    fn category(&self, category_id: Uuid) -> CategoryKeys {
        let hash = format!("{}:c:{category_id}", self.prefix);
        CategoryKeys {
            free: format!("{hash}:free"),
            wfree: format!("{hash}:wfree"),
            hash,
        }
    }

    fn free(&self, category_id: Uuid, kind: PlaceKind) -> String {
        let keys = self.category(category_id);
        match kind {
            PlaceKind::Confirmed => keys.free,
            PlaceKind::Waitlist => keys.wfree,
        }
    }
}

/// The gate of every race, over the service's cache.
pub struct Gate {
    cache: SharedCache,
    db: DatabaseConnection,
    /// One rebuild (or wait for one) per race at a time in this process.
    rebuilds: parking_lot::Mutex<HashMap<Uuid, Arc<tokio::sync::Mutex<()>>>>,
}

fn ttl_ms(race: &RaceSnapshot, now: DateTime<Utc>) -> String {
    let until = race.window.closes_at + KEEP_AFTER_CLOSE - now;
    until
        .num_milliseconds()
        .max(Duration::from_secs(3600).as_millis() as i64)
        .to_string()
}

fn reply_error(reply: &ScriptValue) -> GateError {
    GateError::Reply(format!("{reply:?}"))
}

fn texts(reply: &ScriptValue) -> Option<Vec<String>> {
    reply
        .as_array()?
        .iter()
        .map(|item| match item {
            ScriptValue::Text(text) => Some(text.clone()),
            ScriptValue::Int(number) => Some(number.to_string()),
            _ => None,
        })
        .collect()
}

impl Gate {
    pub fn new(cache: SharedCache, db: DatabaseConnection) -> Self {
        Self {
            cache,
            db,
            rebuilds: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The one atomic step every attempt takes: the runner's attempt count, the duplicate check,
    /// then a confirmed place while nobody waits, then a waitlist place, reserving what it hands
    /// out.
    pub async fn admit(
        &self,
        race: &RaceSnapshot,
        category_id: Uuid,
        user_id: &str,
        key: &IdempotencyKey,
        counted: Counted,
    ) -> Result<Admission, GateError> {
        let keys = GateKeys::new(race.id);
        let category = keys.category(category_id);
        let now = Utc::now();
        let registration_id = Uuid::now_v7();
        let attempts = attempts_key(user_id);
        let (limit, window) = match counted {
            Counted::Yes(limit) => (limit.attempts, limit.window),
            Counted::No => (0, Duration::ZERO),
        };
        let reply = self
            .cache
            .run_script(
                &ADMIT,
                &[
                    &keys.ready,
                    &keys.members,
                    &keys.pending,
                    &category.hash,
                    &category.free,
                    &category.wfree,
                    &attempts,
                ],
                &[
                    user_id.to_owned(),
                    Member::value(registration_id, key.as_str(), None),
                    registration_id.to_string(),
                    category_id.to_string(),
                    now.timestamp_millis().to_string(),
                    ttl_ms(race, now),
                    limit.to_string(),
                    window.as_millis().max(1).to_string(),
                ],
            )
            .await?;
        let parts = texts(&reply).ok_or_else(|| reply_error(&reply))?;
        match parts.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["NOT_READY"] => Ok(Admission::NotReady),
            ["LIMITED", retry_after_ms] => retry_after_ms
                .parse::<u64>()
                .map(|ms| Admission::RateLimited(Duration::from_millis(ms)))
                .map_err(|_| reply_error(&reply)),
            ["NO_CATEGORY"] => Ok(Admission::UnknownCategory),
            ["SOLD_OUT"] => Ok(Admission::SoldOut),
            ["MEMBER", value] => Member::parse(value)
                .map(Admission::Member)
                .ok_or_else(|| reply_error(&reply)),
            ["ADMITTED", entry] => Reservation::parse_entry(race.id, entry)
                .map(Admission::Admitted)
                .ok_or_else(|| reply_error(&reply)),
            _ => Err(reply_error(&reply)),
        }
    }

    /// The reservation's registration is in the database and the runner was told `answer`: the
    /// reservation no longer needs settling, and retries with `key` get `answer`.
    pub async fn settle(
        &self,
        race: &RaceSnapshot,
        reservation: &Reservation,
        key: &str,
        answer: Option<&proto::Registration>,
    ) -> Result<(), GateError> {
        self.remember(
            race,
            &reservation.user_id,
            Member::value(reservation.registration_id, key, answer),
            &reservation.entry,
        )
        .await
    }

    /// Records that `user_id` holds `registration_id` (found in the database), and the answer
    /// retries with `key` get.
    pub async fn remember_member(
        &self,
        race: &RaceSnapshot,
        user_id: &str,
        registration_id: Uuid,
        key: &str,
        answer: Option<&proto::Registration>,
    ) -> Result<(), GateError> {
        self.remember(
            race,
            user_id,
            Member::value(registration_id, key, answer),
            "",
        )
        .await
    }

    async fn remember(
        &self,
        race: &RaceSnapshot,
        user_id: &str,
        member: String,
        entry: &str,
    ) -> Result<(), GateError> {
        let keys = GateKeys::new(race.id);
        self.cache
            .run_script(
                &SETTLE,
                &[&keys.members, &keys.pending],
                &[
                    user_id.to_owned(),
                    member,
                    entry.to_owned(),
                    ttl_ms(race, Utc::now()),
                ],
            )
            .await?;
        Ok(())
    }

    /// What the gate knows of `user_id` in this race.
    pub async fn member(&self, race_id: Uuid, user_id: &str) -> Result<Option<Member>, GateError> {
        let keys = GateKeys::new(race_id);
        let reply = self
            .cache
            .run_script(&MEMBER, &[&keys.members], &[user_id.to_owned()])
            .await?;
        match reply {
            ScriptValue::Nil => Ok(None),
            ScriptValue::Text(value) => Member::parse(&value)
                .map(Some)
                .ok_or_else(|| GateError::Reply(value)),
            other => Err(reply_error(&other)),
        }
    }

    /// Undoes a reservation whose registration was not written: the runner is forgotten and,
    /// with `return_place`, the place is free again (without it, the place turned out to be
    /// held in the database and stays taken). `false` when someone else settled it first.
    pub async fn release(
        &self,
        race: &RaceSnapshot,
        reservation: &Reservation,
        return_place: bool,
    ) -> Result<bool, GateError> {
        let keys = GateKeys::new(race.id);
        let reply = self
            .cache
            .run_script(
                &RELEASE,
                &[
                    &keys.members,
                    &keys.pending,
                    &keys.free(reservation.category_id, reservation.kind),
                ],
                &[
                    reservation.user_id.clone(),
                    reservation.registration_id.to_string(),
                    reservation.entry.clone(),
                    reservation.place.to_string(),
                    if return_place { "1" } else { "0" }.to_owned(),
                    ttl_ms(race, Utc::now()),
                ],
            )
            .await?;
        Ok(reply.as_int() == Some(1))
    }

    /// A place was given up in the database (a cancellation, or a promotion that found nobody
    /// waiting). Skipped while the gate is not built: its rebuild reads the database.
    pub async fn place_freed(
        &self,
        race: &RaceSnapshot,
        category_id: Uuid,
        kind: PlaceKind,
        place: u32,
    ) -> Result<(), GateError> {
        let keys = GateKeys::new(race.id);
        self.cache
            .run_script(
                &PLACE_FREED,
                &[&keys.ready, &keys.free(category_id, kind)],
                &[place.to_string(), ttl_ms(race, Utc::now())],
            )
            .await?;
        Ok(())
    }

    /// Takes a free confirmed place for the head of the waitlist, if runners wait and a place
    /// is free.
    pub async fn claim_for_promotion(
        &self,
        race: &RaceSnapshot,
        category_id: Uuid,
    ) -> Result<Option<u32>, GateError> {
        let keys = GateKeys::new(race.id);
        let category = keys.category(category_id);
        let reply = self
            .cache
            .run_script(
                &CLAIM_FOR_PROMOTION,
                &[&keys.ready, &category.hash, &category.free, &category.wfree],
                &[],
            )
            .await?;
        let place = reply.as_int().ok_or_else(|| reply_error(&reply))?;
        Ok(u32::try_from(place).ok().filter(|place| *place > 0))
    }

    /// Reservations admitted before `cutoff` and still not settled.
    pub async fn stale_reservations(
        &self,
        race_id: Uuid,
        cutoff: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<Reservation>, GateError> {
        let keys = GateKeys::new(race_id);
        let cutoff_ms = cutoff.timestamp_millis() as f64;
        // Newest first; pending reservations are few (those being written right now).
        let pending = self.cache.ztop(&keys.pending, 0, limit).await?;
        Ok(pending
            .into_iter()
            .filter(|(_, admitted_ms)| *admitted_ms < cutoff_ms)
            .filter_map(|(entry, _)| Reservation::parse_entry(race_id, &entry))
            .collect())
    }

    /// The waitlist order of the earliest runner of `category_id` whose waitlisted registration
    /// is still being written, if any: nobody behind them may be promoted before it is written.
    pub async fn earliest_waitlist_in_flight(
        &self,
        race_id: Uuid,
        category_id: Uuid,
    ) -> Result<Option<i64>, GateError> {
        let keys = GateKeys::new(race_id);
        let pending = self.cache.ztop(&keys.pending, 0, PENDING_SCAN).await?;
        Ok(pending
            .iter()
            .filter_map(|(entry, _)| Reservation::parse_entry(race_id, entry))
            .filter(|reservation| {
                reservation.kind == PlaceKind::Waitlist && reservation.category_id == category_id
            })
            .map(|reservation| reservation.waitlist_seq)
            .min())
    }

    pub async fn is_ready(&self, race_id: Uuid) -> Result<bool, GateError> {
        Ok(self
            .cache
            .get(&GateKeys::new(race_id).ready)
            .await?
            .is_some())
    }

    /// Forgets the gate's data for a race so the next attempt rebuilds it from the database
    /// (after the race's categories changed).
    pub async fn invalidate(&self, race_id: Uuid) -> Result<(), GateError> {
        self.cache.delete(&GateKeys::new(race_id).ready).await?;
        Ok(())
    }

    /// Makes sure the gate holds the race's data, rebuilding it from the database when it does
    /// not. Only one replica builds (the `building` lock); the others wait for it.
    pub async fn ensure_ready(&self, race: &RaceSnapshot) -> Result<(), GateError> {
        let lock = self
            .rebuilds
            .lock()
            .entry(race.id)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone();
        let _one_at_a_time = lock.lock().await;
        let keys = GateKeys::new(race.id);
        let token = Uuid::new_v4().to_string();
        let deadline = tokio::time::Instant::now() + REBUILD_WAIT;
        loop {
            if self.cache.get(&keys.ready).await?.is_some() {
                return Ok(());
            }
            if self
                .cache
                .set_if_absent(&keys.building, token.as_bytes(), Some(BUILD_LOCK_TTL))
                .await?
            {
                let timer = crate::metrics::RebuildTimer::start();
                let built = self.rebuild(race, &keys, &token).await;
                timer.finish(built.is_ok());
                if built.is_err() {
                    self.cache
                        .run_script(&UNLOCK, &[&keys.building], std::slice::from_ref(&token))
                        .await
                        .ok();
                }
                return built;
            }
            if tokio::time::Instant::now() > deadline {
                return Err(GateError::Rebuilding);
            }
            tokio::time::sleep(REBUILD_POLL).await;
        }
    }

    async fn rebuild(
        &self,
        race: &RaceSnapshot,
        keys: &GateKeys,
        token: &str,
    ) -> Result<(), GateError> {
        let started = std::time::Instant::now();
        let categories = category::Entity::find()
            .filter(category::Column::RaceId.eq(race.id))
            .all(&self.db)
            .await?;
        let registrations: Vec<GateRow> = registration::Entity::find()
            .select_only()
            .columns([
                registration::Column::Id,
                registration::Column::CategoryId,
                registration::Column::UserId,
                registration::Column::Place,
                registration::Column::WaitlistPlace,
                registration::Column::WaitlistSeq,
                registration::Column::IdempotencyKey,
            ])
            .filter(registration::Column::RaceId.eq(race.id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let ttl = ttl_ms(race, Utc::now());

        let mut reset_keys = vec![
            keys.ready.clone(),
            keys.members.clone(),
            keys.pending.clone(),
        ];
        for category in &categories {
            let category_keys = keys.category(category.id);
            reset_keys.extend([category_keys.hash, category_keys.free, category_keys.wfree]);
        }
        let reset_refs: Vec<&str> = reset_keys.iter().map(String::as_str).collect();
        self.cache.run_script(&RESET, &reset_refs, &[]).await?;

        for chunk in registrations.chunks(LOAD_CHUNK) {
            let mut args = vec![ttl.clone()];
            for (id, _, user_id, _, _, _, key) in chunk {
                args.push(user_id.clone());
                args.push(Member::value(*id, key, None));
            }
            self.cache
                .run_script(&LOAD_MEMBERS, &[&keys.members], &args)
                .await?;
        }

        for category in &categories {
            let rows = registrations.iter().filter(|row| row.1 == category.id);
            let places: BTreeSet<i32> = rows.clone().filter_map(|row| row.3).collect();
            let waitlist_places: BTreeSet<i32> = rows.clone().filter_map(|row| row.4).collect();
            // Waitlist order continues from the clock (in microseconds) rather than from the
            // database's highest: a writer admitted by the gate before it lost its data may
            // still be writing a waitlisted registration that this build cannot see, and
            // everyone admitted from now on asked after that runner.
            let waitlist_seq = rows
                .filter_map(|row| row.5)
                .max()
                .unwrap_or(0)
                .max(Utc::now().timestamp_micros());
            let next = places.last().map_or(1, |last| last + 1);
            let wnext = waitlist_places.last().map_or(1, |last| last + 1);
            let category_keys = keys.category(category.id);
            self.cache
                .run_script(
                    &LOAD_CATEGORY,
                    &[&category_keys.hash],
                    &[
                        ttl.clone(),
                        category.capacity.to_string(),
                        category.waitlist_capacity.to_string(),
                        next.to_string(),
                        wnext.to_string(),
                        waitlist_seq.to_string(),
                    ],
                )
                .await?;
            for (free_key, used, next) in [
                (&category_keys.free, &places, next),
                (&category_keys.wfree, &waitlist_places, wnext),
            ] {
                let holes: Vec<String> = (1..next)
                    .filter(|place| !used.contains(place))
                    .map(|place| place.to_string())
                    .collect();
                for chunk in holes.chunks(LOAD_CHUNK) {
                    let mut args = vec![ttl.clone()];
                    args.extend(chunk.iter().cloned());
                    self.cache
                        .run_script(&ADD_PLACES, &[free_key], &args)
                        .await?;
                }
            }
        }

        let build_id = Uuid::now_v7().to_string();
        let opened = self
            .cache
            .run_script(
                &OPEN,
                &[&keys.building, &keys.ready],
                &[token.to_owned(), build_id, ttl],
            )
            .await?;
        if opened.as_int() != Some(1) {
            // The lock expired under us and another replica builds now.
            return Err(GateError::Rebuilding);
        }
        tracing::info!(
            race_id = %race.id,
            registrations = registrations.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "registration gate rebuilt from the database"
        );
        Ok(())
    }
}

/// (id, category, user, place, waitlist place, waitlist seq, idempotency key)
type GateRow = (
    Uuid,
    Uuid,
    String,
    Option<i32>,
    Option<i32>,
    Option<i64>,
    String,
);

// ------------------------------------------------------------------------------------------
// The scripts, each a Lua body and its Rust twin for the in-memory cache. Keep them in step.

fn key(keys: &[String], index: usize) -> Result<&str, String> {
    keys.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing key {}", index + 1))
}

fn arg(args: &[String], index: usize) -> Result<&str, String> {
    args.get(index)
        .map(String::as_str)
        .ok_or_else(|| format!("missing argument {}", index + 1))
}

fn int(text: &str) -> Result<i64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an integer"))
}

fn hget_int(state: &mut MemoryState, key: &str, field: &str) -> Result<Option<i64>, String> {
    state.hget(key, field)?.map(|value| int(&value)).transpose()
}

fn reply(items: &[&str]) -> ScriptValue {
    ScriptValue::Array(
        items
            .iter()
            .map(|item| ScriptValue::Text((*item).to_owned()))
            .collect(),
    )
}

/// Pops the lowest free place of `free`, else the next never-used one up to `limit`.
fn take_place(
    state: &mut MemoryState,
    free: &str,
    category: &str,
    counter: &str,
    next: i64,
    limit: i64,
) -> Result<Option<i64>, String> {
    if let Some((place, _)) = state.zrevrange(free, 0, 1)?.into_iter().next() {
        state.zrem(free, &place)?;
        return int(&place).map(Some);
    }
    if next <= limit {
        state.hset(category, counter, &(next + 1).to_string())?;
        return Ok(Some(next));
    }
    Ok(None)
}

/// The Lua twin of [`take_place`], shared by the scripts that hand out places.
macro_rules! take_place_lua {
    () => {
        r#"
local function take_place(free, category, counter, next, limit)
  local lowest = redis.call('ZREVRANGE', free, 0, 0)
  if #lowest > 0 then
    redis.call('ZREM', free, lowest[1])
    return tonumber(lowest[1])
  end
  if next <= limit then
    redis.call('HSET', category, counter, next + 1)
    return next
  end
  return nil
end
"#
    };
}

/// KEYS: ready, members, pending, category, free, wfree, attempts.
/// ARGV: user, member value, registration id, category id, now (ms), ttl (ms), attempt limit
/// (0: not counted), attempt window (ms).
/// Waitlist orders are microsecond-sized integers: they are formatted with `%.0f`, as Lua's
/// default number formatting would round them.
static ADMIT: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_admit",
        concat!(
            take_place_lua!(),
            r#"
if not redis.call('GET', KEYS[1]) then return {'NOT_READY'} end
local category = redis.call('HMGET', KEYS[4], 'capacity', 'wcap', 'next', 'wnext')
local capacity = tonumber(category[1])
if not capacity then return {'NO_CATEGORY'} end
local limit = tonumber(ARGV[7])
if limit > 0 then
  local count = redis.call('INCR', KEYS[7])
  local ttl = redis.call('PTTL', KEYS[7])
  if count == 1 or ttl < 0 then
    redis.call('PEXPIRE', KEYS[7], ARGV[8])
    ttl = tonumber(ARGV[8])
  end
  if count > limit then return {'LIMITED', ttl} end
end
local member = redis.call('HGET', KEYS[2], ARGV[1])
if member then return {'MEMBER', member} end
local waitlist_capacity = tonumber(category[2]) or 0
local next = tonumber(category[3]) or 1
local wnext = tonumber(category[4]) or 1
local waiting = wnext - 1 - redis.call('ZCARD', KEYS[6])
local kind, place, seq = nil, nil, '0'
if waiting == 0 then
  place = take_place(KEYS[5], KEYS[4], 'next', next, capacity)
  if place then kind = 'C' end
end
if not kind then
  place = take_place(KEYS[6], KEYS[4], 'wnext', wnext, waitlist_capacity)
  if place then
    kind = 'W'
    seq = string.format('%.0f', redis.call('HINCRBY', KEYS[4], 'wseq', 1))
  end
end
if not kind then return {'SOLD_OUT'} end
local entry = ARGV[3] .. '|' .. ARGV[4] .. '|' .. kind .. '|' .. place .. '|' .. seq .. '|' .. ARGV[1]
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[5], entry)
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[6])
return {'ADMITTED', entry}
"#
        ),
        |state, keys, args| {
            let (ready, members, pending) = (key(keys, 0)?, key(keys, 1)?, key(keys, 2)?);
            let (category, free, wfree) = (key(keys, 3)?, key(keys, 4)?, key(keys, 5)?);
            let attempts = key(keys, 6)?;
            let (user, member_value, registration_id) =
                (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
            let (category_id, now_ms, ttl) = (arg(args, 3)?, arg(args, 4)?, int(arg(args, 5)?)?);
            let (limit, window_ms) = (int(arg(args, 6)?)?, int(arg(args, 7)?)?);
            if !state.exists(ready) {
                return Ok(reply(&["NOT_READY"]));
            }
            let Some(capacity) = hget_int(state, category, "capacity")? else {
                return Ok(reply(&["NO_CATEGORY"]));
            };
            if limit > 0 {
                let count = state.incr_by(attempts, 1)?;
                let ttl = match state.pttl(attempts) {
                    Some(ttl) if count > 1 => ttl,
                    _ => {
                        state.pexpire(attempts, window_ms);
                        window_ms
                    }
                };
                if count > limit {
                    return Ok(reply(&["LIMITED", &ttl.to_string()]));
                }
            }
            if let Some(member) = state.hget(members, user)? {
                return Ok(reply(&["MEMBER", &member]));
            }
            let waitlist_capacity = hget_int(state, category, "wcap")?.unwrap_or(0);
            let next = hget_int(state, category, "next")?.unwrap_or(1);
            let wnext = hget_int(state, category, "wnext")?.unwrap_or(1);
            let waiting = wnext - 1 - state.zcard(wfree)? as i64;
            let mut admitted = None;
            if waiting == 0 {
                admitted = take_place(state, free, category, "next", next, capacity)?
                    .map(|place| ("C", place, 0));
            }
            if admitted.is_none()
                && let Some(place) =
                    take_place(state, wfree, category, "wnext", wnext, waitlist_capacity)?
            {
                let seq = hget_int(state, category, "wseq")?.unwrap_or(0) + 1;
                state.hset(category, "wseq", &seq.to_string())?;
                admitted = Some(("W", place, seq));
            }
            let Some((kind, place, seq)) = admitted else {
                return Ok(reply(&["SOLD_OUT"]));
            };
            let entry = format!("{registration_id}|{category_id}|{kind}|{place}|{seq}|{user}");
            state.hset(members, user, member_value)?;
            state.zadd(pending, &entry, int(now_ms)? as f64)?;
            state.pexpire(members, ttl);
            state.pexpire(pending, ttl);
            Ok(reply(&["ADMITTED", &entry]))
        },
    )
});

/// KEYS: members. ARGV: user.
static MEMBER: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_member",
        "return redis.call('HGET', KEYS[1], ARGV[1])",
        |state, keys, args| {
            Ok(state
                .hget(key(keys, 0)?, arg(args, 0)?)?
                .map_or(ScriptValue::Nil, ScriptValue::Text))
        },
    )
});

/// KEYS: members, pending. ARGV: user, member value, pending entry (or ""), ttl (ms).
static SETTLE: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_settle",
        r#"
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#,
        |state, keys, args| {
            let (members, pending) = (key(keys, 0)?, key(keys, 1)?);
            state.zrem(pending, arg(args, 2)?)?;
            state.hset(members, arg(args, 0)?, arg(args, 1)?)?;
            state.pexpire(members, int(arg(args, 3)?)?);
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS: members, pending, free (of the reservation's kind).
/// ARGV: user, registration id, pending entry, place, return the place (1/0), ttl (ms).
/// Only the caller that removes the pending entry acts, so a reservation is released once.
static RELEASE: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_release",
        r#"
if redis.call('ZREM', KEYS[2], ARGV[3]) == 0 then return 0 end
local member = redis.call('HGET', KEYS[1], ARGV[1])
if member and string.sub(member, 1, string.len(ARGV[2]) + 1) == ARGV[2] .. '|' then
  redis.call('HDEL', KEYS[1], ARGV[1])
end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[3], -tonumber(ARGV[4]), ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
return 1
"#,
        |state, keys, args| {
            let (members, pending, free) = (key(keys, 0)?, key(keys, 1)?, key(keys, 2)?);
            let (user, registration_id, entry) = (arg(args, 0)?, arg(args, 1)?, arg(args, 2)?);
            if !state.zrem(pending, entry)? {
                return Ok(ScriptValue::Int(0));
            }
            if state
                .hget(members, user)?
                .is_some_and(|member| member.starts_with(&format!("{registration_id}|")))
            {
                state.hdel(members, user)?;
            }
            if arg(args, 4)? == "1" {
                let place = arg(args, 3)?;
                state.zadd(free, place, -(int(place)? as f64))?;
                state.pexpire(free, int(arg(args, 5)?)?);
            }
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS: ready, free. ARGV: place, ttl (ms).
static PLACE_FREED: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_place_freed",
        r#"
if not redis.call('GET', KEYS[1]) then return 0 end
redis.call('ZADD', KEYS[2], -tonumber(ARGV[1]), ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
"#,
        |state, keys, args| {
            let (ready, free) = (key(keys, 0)?, key(keys, 1)?);
            if !state.exists(ready) {
                return Ok(ScriptValue::Int(0));
            }
            let place = arg(args, 0)?;
            state.zadd(free, place, -(int(place)? as f64))?;
            state.pexpire(free, int(arg(args, 1)?)?);
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS: ready, category, free, wfree. Returns the claimed place, or 0.
static CLAIM_FOR_PROMOTION: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_claim_for_promotion",
        concat!(
            take_place_lua!(),
            r#"
if not redis.call('GET', KEYS[1]) then return 0 end
local category = redis.call('HMGET', KEYS[2], 'capacity', 'next', 'wnext')
local capacity = tonumber(category[1])
if not capacity then return 0 end
local waiting = (tonumber(category[3]) or 1) - 1 - redis.call('ZCARD', KEYS[4])
if waiting <= 0 then return 0 end
return take_place(KEYS[3], KEYS[2], 'next', tonumber(category[2]) or 1, capacity) or 0
"#
        ),
        |state, keys, _args| {
            let (ready, category, free, wfree) =
                (key(keys, 0)?, key(keys, 1)?, key(keys, 2)?, key(keys, 3)?);
            if !state.exists(ready) {
                return Ok(ScriptValue::Int(0));
            }
            let Some(capacity) = hget_int(state, category, "capacity")? else {
                return Ok(ScriptValue::Int(0));
            };
            let next = hget_int(state, category, "next")?.unwrap_or(1);
            let wnext = hget_int(state, category, "wnext")?.unwrap_or(1);
            if wnext - 1 - state.zcard(wfree)? as i64 <= 0 {
                return Ok(ScriptValue::Int(0));
            }
            let place = take_place(state, free, category, "next", next, capacity)?;
            Ok(ScriptValue::Int(place.unwrap_or(0)))
        },
    )
});

/// KEYS: every key of the race's gate but the lock.
static RESET: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_reset",
        r#"
for _, key in ipairs(KEYS) do redis.call('DEL', key) end
return #KEYS
"#,
        |state, keys, _args| {
            for key in keys {
                state.del(key);
            }
            Ok(ScriptValue::Int(keys.len() as i64))
        },
    )
});

/// KEYS: members. ARGV: ttl (ms), then user and member value pairs.
static LOAD_MEMBERS: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_load_members",
        r#"
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#,
        |state, keys, args| {
            let members = key(keys, 0)?;
            for pair in args[1..].chunks(2) {
                if let [user, value] = pair {
                    state.hset(members, user, value)?;
                }
            }
            state.pexpire(members, int(arg(args, 0)?)?);
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS: category. ARGV: ttl (ms), capacity, waitlist capacity, next, wnext, wseq.
static LOAD_CATEGORY: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_load_category",
        r#"
redis.call('HSET', KEYS[1], 'capacity', ARGV[2], 'wcap', ARGV[3], 'next', ARGV[4], 'wnext', ARGV[5], 'wseq', ARGV[6])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#,
        |state, keys, args| {
            let category = key(keys, 0)?;
            for (field, index) in [
                ("capacity", 1),
                ("wcap", 2),
                ("next", 3),
                ("wnext", 4),
                ("wseq", 5),
            ] {
                state.hset(category, field, arg(args, index)?)?;
            }
            state.pexpire(category, int(arg(args, 0)?)?);
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS: free. ARGV: ttl (ms), then places.
static ADD_PLACES: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_add_places",
        r#"
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], -tonumber(ARGV[i]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#,
        |state, keys, args| {
            let free = key(keys, 0)?;
            for place in &args[1..] {
                state.zadd(free, place, -(int(place)? as f64))?;
            }
            state.pexpire(free, int(arg(args, 0)?)?);
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS: building, ready. ARGV: lock token, build id, ttl (ms).
static OPEN: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_open",
        r#"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
return 1
"#,
        |state, keys, args| {
            let (building, ready) = (key(keys, 0)?, key(keys, 1)?);
            if state.get(building)?.as_deref() != Some(arg(args, 0)?.as_bytes()) {
                return Ok(ScriptValue::Int(0));
            }
            let ttl = Duration::from_millis(int(arg(args, 2)?)?.max(1).unsigned_abs());
            state.set(ready, arg(args, 1)?.as_bytes(), Some(ttl));
            state.del(building);
            Ok(ScriptValue::Int(1))
        },
    )
});

/// KEYS: building. ARGV: lock token.
static UNLOCK: LazyLock<AtomicScript> = LazyLock::new(|| {
    AtomicScript::new(
        "race_gate_unlock",
        r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"#,
        |state, keys, args| {
            let building = key(keys, 0)?;
            if state.get(building)?.as_deref() == Some(arg(args, 0)?.as_bytes()) {
                state.del(building);
                return Ok(ScriptValue::Int(1));
            }
            Ok(ScriptValue::Int(0))
        },
    )
});
