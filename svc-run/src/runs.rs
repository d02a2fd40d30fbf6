//! The run records: every operation of the API over the database, with its rules of ownership and
//! visibility, and the events each change writes in its transaction.
//!
//! Visibility: the owner sees every run of theirs; another authenticated runner sees a `PUBLIC`
//! run, and a `CREWS` run when they share a crew with the owner (svc-social's membership, as its
//! events tell); `PRIVATE` runs are the owner's alone. A run the caller may not see is
//! `RUN_NOT_FOUND`, never a permission error.
//!
//! Every change of runs also moves, in its transaction, what [`progress::refresh`] derives:
//! board totals, race results, challenges, badges, goals; the live boards follow after the
//! commit.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use prost::Message;
use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use runmesh_proto::runmesh::run::v1 as proto;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::boards::Boards;
use crate::config::RunConfig;
use crate::domain::periods::PeriodKind;
use crate::domain::{
    self, Analysis, AnalysisConfig, Limits, ManualRun, ParseError, RunStreams, Session,
};
use crate::error::Error;
use crate::events;
use crate::progress;
use crate::store::{self, analysis, effort, original, profile, run};
use crate::wire;

/// A manual run that passed validation, with its descriptive fields.
#[derive(Debug, Clone)]
pub struct ManualEntry {
    pub run: ManualRun,
    /// A sport code ([`wire::sport_code`]).
    pub sport: &'static str,
    pub title: String,
    pub notes: String,
    pub visibility: Option<&'static str>,
    pub time_zone: Option<Tz>,
    pub moving_s: Option<f64>,
    /// `manual`, or `strava_manual` for a manual activity of a Strava export.
    pub source: &'static str,
    /// What makes the entry unique per runner (a Strava activity id's hash); `None` for runs
    /// entered by hand.
    pub content_hash: Option<String>,
    /// The export entry this run comes from, recorded in the run's transaction.
    pub archive_entry: Option<ArchiveMark>,
}

/// An activity of a Strava export being imported: its entry row is written with its run.
#[derive(Debug, Clone)]
pub struct ArchiveMark {
    pub import_id: Uuid,
    pub position: i32,
    pub entry: String,
}

impl ArchiveMark {
    fn imported(&self, run_id: Uuid) -> store::archive::entry::ActiveModel {
        store::archive::entry::ActiveModel {
            import_id: Set(self.import_id),
            position: Set(self.position),
            entry: Set(self.entry.chars().take(255).collect()),
            outcome: Set("imported".to_owned()),
            reason: Set(String::new()),
            message: Set(String::new()),
            run_id: Set(Some(run_id)),
        }
    }
}

/// An uploaded activity file, read whole (within the size limit).
#[derive(Debug, Clone)]
pub struct Upload {
    pub file_name: String,
    pub title: Option<String>,
    pub visibility: Option<&'static str>,
    pub bytes: Vec<u8>,
    pub notes: String,
    /// A sport code overriding the file's (the sport a Strava export names).
    pub sport: Option<&'static str>,
    /// The export entry this file comes from, recorded in the run's transaction.
    pub archive_entry: Option<ArchiveMark>,
}

/// What `UpdateRun` changes (the fields named in the mask).
#[derive(Debug, Clone, Default)]
pub struct RunChanges {
    pub title: Option<String>,
    pub notes: Option<String>,
    pub sport: Option<&'static str>,
    pub visibility: Option<&'static str>,
}

/// `ListRuns`' filters and page.
#[derive(Debug, Clone)]
pub struct RunQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub sport: Option<&'static str>,
    pub page_size: u64,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// A stats period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Week,
    Month,
    Year,
    AllTime,
}

/// `GetStats`' answer before encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    pub from_date: NaiveDate,
    pub to_date: NaiveDate,
    pub time_zone: String,
    pub runs: u32,
    pub distance_m: f64,
    pub moving_s: f64,
    pub elapsed_s: f64,
    pub elevation_gain_m: f64,
    pub active_days: u32,
}

/// One personal record with the earlier ones it replaced, newest first.
#[derive(Debug, Clone)]
pub struct Record {
    pub current: effort::Model,
    pub history: Vec<effort::Model>,
}

/// Start, distance, moving, elapsed, elevation gain.
type StatsRow = (DateTime<Utc>, f64, f64, f64, Option<f64>);

/// A file parsed and analysed.
struct Analysed {
    format: domain::FileFormat,
    gzipped: bool,
    analysis: Analysis,
    streams: RunStreams,
}

pub struct Runs {
    db: DatabaseConnection,
    bus: Option<EventBus>,
    config: RunConfig,
    limits: Limits,
    analysis: AnalysisConfig,
    boards: Arc<Boards>,
}

impl Runs {
    pub fn new(
        db: DatabaseConnection,
        bus: Option<EventBus>,
        config: RunConfig,
        boards: Arc<Boards>,
    ) -> Self {
        Self {
            limits: config.limits(),
            analysis: config.analysis(),
            db,
            bus,
            config,
            boards,
        }
    }

    /// After a committed change: the runner's scores on the live boards.
    async fn publish_scores(&self, owner: &str, touched: &[(PeriodKind, NaiveDate)]) {
        if let Err(err) = self.boards.apply(owner, touched, &[]).await {
            tracing::warn!(owner, error = %err, "board scores not updated after a run change");
        }
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    fn wake(&self) {
        if let Some(bus) = &self.bus {
            bus.wake_relays();
        }
    }

    async fn profile(&self, user_id: &str) -> Result<Option<profile::Model>, Error> {
        Ok(profile::Entity::find_by_id(user_id.to_owned())
            .one(&self.db)
            .await?)
    }

    /// The runner's time zone: their profile's, else the configured default.
    fn time_zone(&self, profile: Option<&profile::Model>) -> Tz {
        profile
            .and_then(|p| p.time_zone.parse().ok())
            .unwrap_or_else(|| self.config.default_tz())
    }

    /// The visibility of a new run: the requested one, else the profile's default, else private.
    fn visibility(requested: Option<&'static str>, profile: Option<&profile::Model>) -> String {
        requested
            .map(str::to_owned)
            .or_else(|| {
                profile
                    .map(|p| p.default_visibility.clone())
                    .filter(|v| !v.is_empty())
            })
            .unwrap_or_else(|| "private".to_owned())
    }

    // ---- create ----

    pub async fn create_manual(
        &self,
        owner: &str,
        entry: ManualEntry,
    ) -> Result<run::Model, Error> {
        let profile = self.profile(owner).await?;
        let tz = entry
            .time_zone
            .unwrap_or_else(|| self.time_zone(profile.as_ref()));
        let now = wire::now();
        let manual = &entry.run;
        let moving_s = entry.moving_s.unwrap_or(manual.duration_s);
        let row = run::Model {
            id: Uuid::now_v7(),
            owner_id: owner.to_owned(),
            sport: entry.sport.to_owned(),
            title: if entry.title.trim().is_empty() {
                default_title(entry.sport, manual.start, tz)
            } else {
                entry.title
            },
            notes: entry.notes,
            visibility: Self::visibility(entry.visibility, profile.as_ref()),
            start_time: manual.start,
            end_time: manual.start + seconds(manual.duration_s),
            time_zone: tz.name().to_owned(),
            elapsed_s: manual.duration_s,
            moving_s,
            distance_m: manual.distance_m,
            elevation_gain_m: manual.elevation_gain_m,
            elevation_loss_m: None,
            average_heart_rate: wire::rounded(manual.average_heart_rate_bpm),
            max_heart_rate: None,
            average_cadence: None,
            max_cadence: None,
            average_pace_s_per_km: pace(moving_s, manual.distance_m),
            source: entry.source.to_owned(),
            original_file_name: String::new(),
            has_track: false,
            content_hash: entry.content_hash.clone(),
            start_lat: None,
            start_lng: None,
            created_at: now,
            updated_at: now,
        };
        let txn = begin_write(&self.db).await?;
        let inserted = run::Entity::insert(run::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await;
        if let Err(err) = inserted {
            txn.rollback().await?;
            if store::is_unique_violation(&err)
                && let Some(hash) = &entry.content_hash
                && let Some(existing) = self.find_by_hash(owner, hash).await?
            {
                return Err(Error::DuplicateRun {
                    run_id: existing.to_string(),
                });
            }
            return Err(err.into());
        }
        if let Some(mark) = &entry.archive_entry {
            store::archive::entry::Entity::insert(mark.imported(row.id))
                .exec_without_returning(&txn)
                .await?;
        }
        let message = wire::run_message(&row, None);
        events::enqueue(
            &txn,
            &row.id.to_string(),
            &proto::RunRecorded { run: Some(message) },
        )
        .await?;
        let touched = progress::refresh(&txn, &self.config, owner, &[row.start_time]).await?;
        txn.commit().await?;
        self.wake();
        self.publish_scores(owner, &touched).await;
        Ok(row)
    }

    /// Imports one file: duplicate check by content hash, analysis on the blocking pool (a
    /// parser panic is that file's `ANALYSIS_FAILED`), then the run, its analysis, best
    /// efforts, original and events in one transaction. Answers the run and the caller's runs
    /// whose time span overlaps it.
    pub async fn import(
        &self,
        owner: &str,
        upload: Upload,
    ) -> Result<(run::Model, Vec<Uuid>), Error> {
        let hash = sha256_hex(&upload.bytes);
        if let Some(existing) = self.find_by_hash(owner, &hash).await? {
            return Err(Error::DuplicateRun {
                run_id: existing.to_string(),
            });
        }
        let limits = self.limits;
        let config = self.analysis;
        let file_name = upload.file_name.clone();
        let (bytes, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| {
                analyse_file(&upload.bytes, &limits, &config)
            }));
            (upload.bytes, outcome)
        })
        .await?;
        let analysed = match outcome {
            Ok(Ok(analysed)) => analysed,
            Ok(Err(parse)) => return Err(Error::BadFile(parse)),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(file_name = %file_name, panic = %what, "a parser panicked");
                return Err(Error::AnalysisFailed);
            }
        };

        let profile = self.profile(owner).await?;
        let tz = self.time_zone(profile.as_ref());
        let a = &analysed.analysis;
        let sport = upload
            .sport
            .unwrap_or_else(|| wire::sport_code(wire::proto_sport(a.sport)));
        let start = a.start;
        let end = start + seconds(a.elapsed_s);
        let now = wire::now();
        let id = Uuid::now_v7();
        let file_name = if upload.file_name.trim().is_empty() {
            format!(
                "{id}.{}{}",
                analysed.format.as_str(),
                if analysed.gzipped { ".gz" } else { "" }
            )
        } else {
            upload.file_name.chars().take(255).collect()
        };
        let row = run::Model {
            id,
            owner_id: owner.to_owned(),
            sport: sport.to_owned(),
            title: upload
                .title
                .filter(|t| !t.trim().is_empty())
                .unwrap_or_else(|| default_title(sport, start, tz)),
            notes: upload.notes.chars().take(10_000).collect(),
            visibility: Self::visibility(upload.visibility, profile.as_ref()),
            start_time: truncate(start),
            end_time: truncate(end),
            time_zone: tz.name().to_owned(),
            elapsed_s: a.elapsed_s,
            moving_s: a.moving_s,
            distance_m: a.distance_m,
            elevation_gain_m: a.elevation_gain_m,
            elevation_loss_m: a.elevation_loss_m,
            average_heart_rate: wire::rounded(a.heart_rate_bpm.map(|s| s.average)),
            max_heart_rate: wire::rounded(a.heart_rate_bpm.map(|s| s.maximum)),
            average_cadence: wire::rounded(a.cadence.map(|s| s.average)),
            max_cadence: wire::rounded(a.cadence.map(|s| s.maximum)),
            average_pace_s_per_km: a
                .average_pace_s_per_km
                .filter(|p| p.is_finite())
                .unwrap_or(0.0),
            source: analysed.format.as_str().to_owned(),
            original_file_name: file_name.clone(),
            has_track: a.has_positions,
            content_hash: Some(hash.clone()),
            start_lat: analysed
                .streams
                .latlng
                .iter()
                .flatten()
                .next()
                .map(|p| p.lat),
            start_lng: analysed
                .streams
                .latlng
                .iter()
                .flatten()
                .next()
                .map(|p| p.lng),
            created_at: now,
            updated_at: now,
        };
        let details = wire::details(a);
        let streams = wire::streams_message(&analysed.streams).encode_to_vec();

        let overlapping: Vec<Uuid> = run::Entity::find()
            .select_only()
            .column(run::Column::Id)
            .filter(run::Column::OwnerId.eq(owner))
            .filter(run::Column::StartTime.lt(row.end_time))
            .filter(run::Column::EndTime.gt(row.start_time))
            .order_by_asc(run::Column::StartTime)
            .limit(20)
            .into_tuple()
            .all(&self.db)
            .await?;

        let txn = begin_write(&self.db).await?;
        let inserted = run::Entity::insert(run::ActiveModel::from(row.clone()))
            .exec_without_returning(&txn)
            .await;
        if let Err(err) = inserted {
            txn.rollback().await?;
            if store::is_unique_violation(&err) {
                // The same file, imported meanwhile by a concurrent call.
                if let Some(existing) = self.find_by_hash(owner, &hash).await? {
                    return Err(Error::DuplicateRun {
                        run_id: existing.to_string(),
                    });
                }
            }
            return Err(err.into());
        }
        if let Some(mark) = &upload.archive_entry {
            store::archive::entry::Entity::insert(mark.imported(id))
                .exec_without_returning(&txn)
                .await?;
        }
        analysis::Entity::insert(analysis::ActiveModel {
            run_id: Set(id),
            details: Set(details.clone()),
            streams: Set(streams),
        })
        .exec_without_returning(&txn)
        .await?;
        let size_bytes = i64::try_from(bytes.len()).unwrap_or(i64::MAX);
        original::Entity::insert(original::ActiveModel {
            run_id: Set(id),
            owner_id: Set(owner.to_owned()),
            file_name: Set(file_name),
            content_type: Set(wire::content_type(analysed.format, analysed.gzipped).to_owned()),
            size_bytes: Set(size_bytes),
            bytes: Set(bytes),
        })
        .exec_without_returning(&txn)
        .await?;
        for best in &a.best_efforts {
            let previous = current_record(&txn, owner, best.distance.key).await?;
            effort::Entity::insert(effort::ActiveModel {
                run_id: Set(id),
                distance: Set(best.distance.key.to_owned()),
                owner_id: Set(owner.to_owned()),
                elapsed_s: Set(best.elapsed_s),
                start_offset_s: Set(best.start_offset_s),
                achieved_at: Set(row.start_time),
            })
            .exec_without_returning(&txn)
            .await?;
            if previous
                .as_ref()
                .is_none_or(|previous| best.elapsed_s < previous.elapsed_s)
            {
                let event = proto::PersonalRecordSet {
                    owner_id: owner.to_owned(),
                    distance: wire::effort_distance(best.distance.key).into(),
                    elapsed_time: Some(wire::duration(best.elapsed_s)),
                    run_id: id.to_string(),
                    achieved_at: Some(wire::timestamp(row.start_time)),
                    previous_elapsed_time: previous.map(|p| wire::duration(p.elapsed_s)),
                    restored: false,
                };
                events::enqueue(&txn, owner, &event).await?;
            }
        }
        let mut message = wire::run_message(&row, Some(&details));
        flag_records(&txn, &row, &mut message).await?;
        events::enqueue(
            &txn,
            &row.id.to_string(),
            &proto::RunRecorded { run: Some(message) },
        )
        .await?;
        let touched = progress::refresh(&txn, &self.config, owner, &[row.start_time]).await?;
        txn.commit().await?;
        self.wake();
        self.publish_scores(owner, &touched).await;
        Ok((row, overlapping))
    }

    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn find_by_hash(&self, owner: &str, hash: &str) -> Result<Option<Uuid>, Error> {
        Ok(run::Entity::find()
            .select_only()
            .column(run::Column::Id)
            .filter(run::Column::OwnerId.eq(owner))
            .filter(run::Column::ContentHash.eq(hash))
            .into_tuple()
            .one(&self.db)
            .await?)
    }

    // ---- read ----

    /// The run if `viewer` may see it.
    async fn visible(&self, viewer: &str, id: Uuid) -> Result<run::Model, Error> {
        match run::Entity::find_by_id(id).one(&self.db).await? {
            Some(row) if row.owner_id == viewer || row.visibility == "public" => Ok(row),
            Some(row)
                if row.visibility == "crews"
                    && crew_mates(&self.db, viewer, &row.owner_id).await? =>
            {
                Ok(row)
            }
            _ => Err(Error::RunNotFound(id.to_string())),
        }
    }

    /// The run if `owner` owns it; another runner's public run is `NOT_RUN_OWNER`, any other
    /// `RUN_NOT_FOUND`.
    async fn owned(&self, owner: &str, id: Uuid) -> Result<run::Model, Error> {
        let row = self.visible(owner, id).await?;
        if row.owner_id == owner {
            Ok(row)
        } else {
            Err(Error::NotRunOwner)
        }
    }

    /// The run with its whole analysis, as `viewer` may see it.
    pub async fn get(&self, viewer: &str, id: Uuid) -> Result<proto::Run, Error> {
        let row = self.visible(viewer, id).await?;
        let details = analysis::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(|a| a.details);
        let mut message = wire::run_message(&row, details.as_deref());
        flag_records(&self.db, &row, &mut message).await?;
        let result = store::progress::race_result::Entity::find()
            .filter(store::progress::race_result::Column::RunId.eq(row.id))
            .filter(store::progress::race_result::Column::UserId.eq(row.owner_id.clone()))
            .one(&self.db)
            .await?;
        if let Some(result) = result {
            let race = store::progress::race::Entity::find_by_id(result.race_id.clone())
                .one(&self.db)
                .await?;
            message.race_result = wire::race_link(&result, race.as_ref());
        }
        Ok(message)
    }

    pub async fn list(
        &self,
        owner: &str,
        query: RunQuery,
    ) -> Result<(Vec<run::Model>, bool), Error> {
        let mut select = run::Entity::find().filter(run::Column::OwnerId.eq(owner));
        if let Some(from) = query.from {
            select = select.filter(run::Column::StartTime.gte(from));
        }
        if let Some(to) = query.to {
            select = select.filter(run::Column::StartTime.lt(to));
        }
        if let Some(sport) = query.sport {
            select = select.filter(run::Column::Sport.eq(sport));
        }
        if let Some((start, id)) = query.after {
            select = select.filter(
                Condition::any().add(run::Column::StartTime.lt(start)).add(
                    Condition::all()
                        .add(run::Column::StartTime.eq(start))
                        .add(run::Column::Id.lt(id)),
                ),
            );
        }
        let mut rows = select
            .order_by_desc(run::Column::StartTime)
            .order_by_desc(run::Column::Id)
            .limit(query.page_size + 1)
            .all(&self.db)
            .await?;
        let more = rows.len() as u64 > query.page_size;
        rows.truncate(usize::try_from(query.page_size).unwrap_or(usize::MAX));
        Ok((rows, more))
    }

    pub async fn update(
        &self,
        owner: &str,
        id: Uuid,
        changes: RunChanges,
    ) -> Result<run::Model, Error> {
        let current = self.owned(owner, id).await?;
        let mut changed = Vec::new();
        let mut active = run::ActiveModel::from(current.clone());
        if let Some(title) = changes.title.filter(|t| *t != current.title) {
            active.title = Set(title);
            changed.push("title".to_owned());
        }
        if let Some(notes) = changes.notes.filter(|n| *n != current.notes) {
            active.notes = Set(notes);
            changed.push("notes".to_owned());
        }
        if let Some(sport) = changes.sport.filter(|s| *s != current.sport) {
            active.sport = Set(sport.to_owned());
            changed.push("sport".to_owned());
        }
        if let Some(visibility) = changes.visibility.filter(|v| *v != current.visibility) {
            active.visibility = Set(visibility.to_owned());
            changed.push("visibility".to_owned());
        }
        if changed.is_empty() {
            return Ok(current);
        }
        active.updated_at = Set(wire::now());
        let moves_progress = changed.iter().any(|f| f == "sport" || f == "visibility");
        let txn = begin_write(&self.db).await?;
        let row = active.update(&txn).await?;
        events::enqueue(
            &txn,
            &row.id.to_string(),
            &proto::RunUpdated {
                run: Some(wire::run_message(&row, None)),
                changed_fields: changed,
            },
        )
        .await?;
        let touched = if moves_progress {
            progress::refresh(&txn, &self.config, owner, &[row.start_time]).await?
        } else {
            Vec::new()
        };
        txn.commit().await?;
        self.wake();
        self.publish_scores(owner, &touched).await;
        Ok(row)
    }

    /// Deletes the run, its analysis, original and best efforts; each personal record it held
    /// falls back to the next best effort (`PersonalRecordSet` with `restored`).
    pub async fn delete(&self, owner: &str, id: Uuid) -> Result<(), Error> {
        let row = self.owned(owner, id).await?;
        let txn = begin_write(&self.db).await?;
        delete_run(&txn, &row).await?;
        let touched = progress::refresh(&txn, &self.config, owner, &[row.start_time]).await?;
        txn.commit().await?;
        self.wake();
        self.publish_scores(owner, &touched).await;
        Ok(())
    }

    /// The run's streams; for anyone but the owner without positions inside the privacy zones.
    pub async fn streams(
        &self,
        viewer: &str,
        id: Uuid,
    ) -> Result<proto::GetRunStreamsResponse, Error> {
        let row = self.visible(viewer, id).await?;
        let Some(stored) = analysis::Entity::find_by_id(id).one(&self.db).await? else {
            return Ok(proto::GetRunStreamsResponse::default());
        };
        let message =
            proto::GetRunStreamsResponse::decode(stored.streams.as_slice()).unwrap_or_default();
        if row.owner_id == viewer || message.latitude.is_empty() {
            return Ok(message);
        }
        let mut streams = wire::domain_streams(&message);
        streams.hide_ends(self.privacy_zone_m(&row.owner_id).await?);
        Ok(proto::GetRunStreamsResponse {
            latitude: streams
                .latlng
                .iter()
                .map(|p| p.map_or(f64::NAN, |p| p.lat))
                .collect(),
            longitude: streams
                .latlng
                .iter()
                .map(|p| p.map_or(f64::NAN, |p| p.lng))
                .collect(),
            ..message
        })
    }

    /// The owner's privacy zone in metres: their profile's when set, else the configured default.
    async fn privacy_zone_m(&self, owner: &str) -> Result<f64, Error> {
        let chosen = profile::Entity::find_by_id(owner.to_owned())
            .one(&self.db)
            .await?
            .and_then(|profile| profile.privacy_zone_meters)
            .filter(|meters| *meters >= 0);
        Ok(chosen.map_or(self.config.privacy_zone_m, f64::from))
    }

    /// The uploaded file. The owner only.
    pub async fn original(&self, owner: &str, id: Uuid) -> Result<original::Model, Error> {
        self.owned(owner, id).await?;
        original::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::RunNotFound(id.to_string()))
    }

    /// The owner's personal record at each distance with its history: the efforts that were
    /// the record when achieved, in time order; the last is the current record.
    pub async fn records(&self, owner: &str) -> Result<Vec<Record>, Error> {
        let efforts = effort::Entity::find()
            .filter(effort::Column::OwnerId.eq(owner))
            .order_by_asc(effort::Column::AchievedAt)
            .order_by_asc(effort::Column::RunId)
            .all(&self.db)
            .await?;
        let mut progressions: BTreeMap<String, Vec<effort::Model>> = BTreeMap::new();
        for effort in efforts {
            let progression = progressions.entry(effort.distance.clone()).or_default();
            if progression
                .last()
                .is_none_or(|best| effort.elapsed_s < best.elapsed_s)
            {
                progression.push(effort);
            }
        }
        let mut records: Vec<Record> = progressions
            .into_values()
            .filter_map(|mut progression| {
                let current = progression.pop()?;
                progression.reverse();
                Some(Record {
                    current,
                    history: progression,
                })
            })
            .collect();
        records.sort_by(|a, b| {
            wire::effort_meters(&a.current.distance)
                .total_cmp(&wire::effort_meters(&b.current.distance))
        });
        Ok(records)
    }

    /// Totals of the owner's running activities in a period of their local calendar.
    pub async fn stats(
        &self,
        owner: &str,
        period: Period,
        date: Option<NaiveDate>,
    ) -> Result<Stats, Error> {
        let profile = self.profile(owner).await?;
        let tz = self.time_zone(profile.as_ref());
        let today = Utc::now().with_timezone(&tz).date_naive();
        let day = date.unwrap_or(today);
        let bounds = match period {
            Period::Week => {
                let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
                Some((monday, monday + Duration::days(7)))
            }
            Period::Month => {
                let first = day.with_day(1).unwrap_or(day);
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                };
                Some((first, next.unwrap_or(first)))
            }
            Period::Year => {
                let first = NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap_or(day);
                let next = NaiveDate::from_ymd_opt(day.year() + 1, 1, 1).unwrap_or(day);
                Some((first, next))
            }
            Period::AllTime => None,
        };
        let mut select = run::Entity::find()
            .select_only()
            .columns([
                run::Column::StartTime,
                run::Column::DistanceM,
                run::Column::MovingS,
                run::Column::ElapsedS,
                run::Column::ElevationGainM,
            ])
            .filter(run::Column::OwnerId.eq(owner))
            .filter(run::Column::Sport.is_in(wire::RUNNING_SPORTS));
        if let Some((from, to)) = bounds {
            select = select
                .filter(run::Column::StartTime.gte(local_midnight(tz, from)))
                .filter(run::Column::StartTime.lt(local_midnight(tz, to)));
        }
        let rows: Vec<StatsRow> = select
            .order_by_asc(run::Column::StartTime)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut days = BTreeSet::new();
        let mut stats = Stats {
            from_date: day,
            to_date: day,
            time_zone: tz.name().to_owned(),
            runs: 0,
            distance_m: 0.0,
            moving_s: 0.0,
            elapsed_s: 0.0,
            elevation_gain_m: 0.0,
            active_days: 0,
        };
        for (start, distance, moving, elapsed, gain) in &rows {
            stats.runs += 1;
            stats.distance_m += distance;
            stats.moving_s += moving;
            stats.elapsed_s += elapsed;
            stats.elevation_gain_m += gain.unwrap_or(0.0);
            days.insert(start.with_timezone(&tz).date_naive());
        }
        stats.active_days = u32::try_from(days.len()).unwrap_or(u32::MAX);
        (stats.from_date, stats.to_date) = match bounds {
            Some(bounds) => bounds,
            None => (
                days.first().copied().unwrap_or(today),
                days.last().copied().unwrap_or(today).max(today) + Duration::days(1),
            ),
        };
        Ok(stats)
    }
}

/// Whether `viewer` and `owner` share a crew (svc-social's membership projection).
pub(crate) async fn crew_mates(
    conn: &impl ConnectionTrait,
    viewer: &str,
    owner: &str,
) -> Result<bool, sea_orm::DbErr> {
    use store::progress::crew_member;
    let mine: Vec<String> = crew_member::Entity::find()
        .select_only()
        .column(crew_member::Column::CrewId)
        .filter(crew_member::Column::UserId.eq(viewer))
        .into_tuple()
        .all(conn)
        .await?;
    if mine.is_empty() {
        return Ok(false);
    }
    Ok(crew_member::Entity::find()
        .filter(crew_member::Column::UserId.eq(owner))
        .filter(crew_member::Column::CrewId.is_in(mine))
        .one(conn)
        .await?
        .is_some())
}

/// The owner's current record at `distance`: their fastest effort, the earliest on a tie.
async fn current_record(
    conn: &impl ConnectionTrait,
    owner: &str,
    distance: &str,
) -> Result<Option<effort::Model>, sea_orm::DbErr> {
    effort::Entity::find()
        .filter(effort::Column::OwnerId.eq(owner))
        .filter(effort::Column::Distance.eq(distance))
        .order_by_asc(effort::Column::ElapsedS)
        .order_by_asc(effort::Column::AchievedAt)
        .order_by_asc(effort::Column::RunId)
        .one(conn)
        .await
}

/// Sets `personal_record` on the best efforts of `message` that are the owner's record now.
async fn flag_records(
    conn: &impl ConnectionTrait,
    row: &run::Model,
    message: &mut proto::Run,
) -> Result<(), sea_orm::DbErr> {
    for best in &mut message.best_efforts {
        let key = domain::EFFORT_DISTANCES
            .iter()
            .find(|d| wire::effort_distance(d.key) as i32 == best.distance)
            .map(|d| d.key);
        if let Some(key) = key {
            best.personal_record = current_record(conn, &row.owner_id, key)
                .await?
                .is_some_and(|record| record.run_id == row.id);
        }
    }
    Ok(())
}

/// Deletes `row` and everything of it in `conn`'s transaction, writing `RunDeleted` and the
/// restored records.
async fn delete_run(conn: &impl ConnectionTrait, row: &run::Model) -> Result<(), sea_orm::DbErr> {
    let efforts = effort::Entity::find()
        .filter(effort::Column::RunId.eq(row.id))
        .all(conn)
        .await?;
    let mut held = Vec::new();
    for effort in efforts {
        if current_record(conn, &row.owner_id, &effort.distance)
            .await?
            .is_some_and(|record| record.run_id == row.id)
        {
            held.push(effort);
        }
    }
    effort::Entity::delete_many()
        .filter(effort::Column::RunId.eq(row.id))
        .exec(conn)
        .await?;
    original::Entity::delete_by_id(row.id).exec(conn).await?;
    analysis::Entity::delete_by_id(row.id).exec(conn).await?;
    run::Entity::delete_by_id(row.id).exec(conn).await?;
    for lost in held {
        if let Some(next) = current_record(conn, &row.owner_id, &lost.distance).await? {
            let event = proto::PersonalRecordSet {
                owner_id: row.owner_id.clone(),
                distance: wire::effort_distance(&next.distance).into(),
                elapsed_time: Some(wire::duration(next.elapsed_s)),
                run_id: next.run_id.to_string(),
                achieved_at: Some(wire::timestamp(next.achieved_at)),
                previous_elapsed_time: Some(wire::duration(lost.elapsed_s)),
                restored: true,
            };
            events::enqueue(conn, &row.owner_id, &event).await?;
        }
    }
    let id = row.id.to_string();
    events::enqueue(conn, &id, &events::run_deleted(&id, &row.owner_id)).await?;
    Ok(())
}

/// Erases every run of `owner` (their account is gone), with `RunDeleted` for each. Answers how
/// many runs there were.
pub async fn erase_owner(
    conn: &impl ConnectionTrait,
    owner: &str,
) -> Result<usize, sea_orm::DbErr> {
    let ids: Vec<Uuid> = run::Entity::find()
        .select_only()
        .column(run::Column::Id)
        .filter(run::Column::OwnerId.eq(owner))
        .into_tuple()
        .all(conn)
        .await?;
    effort::Entity::delete_many()
        .filter(effort::Column::OwnerId.eq(owner))
        .exec(conn)
        .await?;
    original::Entity::delete_many()
        .filter(original::Column::OwnerId.eq(owner))
        .exec(conn)
        .await?;
    for chunk in ids.chunks(500) {
        analysis::Entity::delete_many()
            .filter(analysis::Column::RunId.is_in(chunk.iter().copied()))
            .exec(conn)
            .await?;
    }
    run::Entity::delete_many()
        .filter(run::Column::OwnerId.eq(owner))
        .exec(conn)
        .await?;
    // Their archive imports go too (an import still running stops at its next write).
    let imports: Vec<Uuid> = store::archive::import::Entity::find()
        .select_only()
        .column(store::archive::import::Column::Id)
        .filter(store::archive::import::Column::OwnerId.eq(owner))
        .into_tuple()
        .all(conn)
        .await?;
    for chunk in imports.chunks(500) {
        store::archive::entry::Entity::delete_many()
            .filter(store::archive::entry::Column::ImportId.is_in(chunk.iter().copied()))
            .exec(conn)
            .await?;
    }
    store::archive::import::Entity::delete_many()
        .filter(store::archive::import::Column::OwnerId.eq(owner))
        .exec(conn)
        .await?;
    for id in &ids {
        let id = id.to_string();
        events::enqueue(conn, &id, &events::run_deleted(&id, owner)).await?;
    }
    erase_progress(conn, owner).await?;
    Ok(ids.len())
}

/// Everything rankings, badges, goals, challenges and results kept of `owner`.
async fn erase_progress(conn: &impl ConnectionTrait, owner: &str) -> Result<(), sea_orm::DbErr> {
    use store::progress::{
        achievement, board_total, goal, goal_met, participant, preference, race_result,
        registration,
    };
    board_total::Entity::delete_many()
        .filter(board_total::Column::OwnerId.eq(owner))
        .exec(conn)
        .await?;
    achievement::Entity::delete_many()
        .filter(achievement::Column::OwnerId.eq(owner))
        .exec(conn)
        .await?;
    let goals: Vec<Uuid> = goal::Entity::find()
        .select_only()
        .column(goal::Column::Id)
        .filter(goal::Column::OwnerId.eq(owner))
        .into_tuple()
        .all(conn)
        .await?;
    goal_met::Entity::delete_many()
        .filter(goal_met::Column::GoalId.is_in(goals))
        .exec(conn)
        .await?;
    goal::Entity::delete_many()
        .filter(goal::Column::OwnerId.eq(owner))
        .exec(conn)
        .await?;
    participant::Entity::delete_many()
        .filter(participant::Column::UserId.eq(owner))
        .exec(conn)
        .await?;
    race_result::Entity::delete_many()
        .filter(race_result::Column::UserId.eq(owner))
        .exec(conn)
        .await?;
    registration::Entity::delete_many()
        .filter(registration::Column::UserId.eq(owner))
        .exec(conn)
        .await?;
    preference::Entity::delete_by_id(owner.to_owned())
        .exec(conn)
        .await?;
    Ok(())
}

/// Parses and analyses one file; the run is its longest running session, else its longest
/// session (a triathlon's run leg, a ride's only session).
fn analyse_file(
    bytes: &[u8],
    limits: &Limits,
    config: &AnalysisConfig,
) -> Result<Analysed, ParseError> {
    let activity = domain::parse(bytes, limits)?;
    let session = longest(activity.running_sessions())
        .or_else(|| longest(activity.sessions.iter()))
        .ok_or_else(|| ParseError::NoTrack("the file has no session".to_owned()))?;
    Ok(Analysed {
        format: activity.format,
        gzipped: activity.gzipped,
        analysis: domain::analyse(session, config),
        streams: RunStreams::of(session, config),
    })
}

fn longest<'a>(sessions: impl Iterator<Item = &'a Session>) -> Option<&'a Session> {
    sessions.max_by_key(|session| session.points.len())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn seconds(s: f64) -> Duration {
    let millis = (s * 1_000.0).round();
    #[allow(clippy::cast_possible_truncation)]
    Duration::milliseconds(millis.clamp(0.0, 1e15) as i64)
}

fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

fn pace(moving_s: f64, distance_m: f64) -> f64 {
    if distance_m > 0.0 && moving_s.is_finite() {
        moving_s / distance_m * 1_000.0
    } else {
        0.0
    }
}

/// `Morning Run`, `Evening Ride`… by the local hour of the start.
fn default_title(sport: &str, start: DateTime<Utc>, tz: Tz) -> String {
    let part = match start.with_timezone(&tz).hour() {
        5..=11 => "Morning",
        12..=16 => "Afternoon",
        17..=20 => "Evening",
        _ => "Night",
    };
    let noun = match sport {
        "walk" => "Walk",
        "hike" => "Hike",
        "ride" => "Ride",
        "swim" => "Swim",
        "other" => "Workout",
        _ => "Run",
    };
    format!("{part} {noun}")
}

/// The instant a local day starts in `tz` (the first valid time after a DST gap).
pub fn local_midnight(tz: Tz, day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    (0..4)
        .find_map(|hour| {
            tz.from_local_datetime(&(midnight + Duration::hours(hour)))
                .earliest()
        })
        .map_or_else(|| midnight.and_utc(), |at| at.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn local_days_start_at_local_midnight() {
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        assert_eq!(
            local_midnight(seoul, day),
            Utc.with_ymd_and_hms(2026, 3, 1, 15, 0, 0).unwrap()
        );
    }

    #[test]
    fn titles_follow_the_local_hour() {
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 22, 0, 0).unwrap(); // 07:00 in Seoul
        assert_eq!(default_title("run", at, seoul), "Morning Run");
        assert_eq!(default_title("ride", at, chrono_tz::UTC), "Night Ride");
    }

    #[test]
    fn hashes_are_hex_sha256() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
