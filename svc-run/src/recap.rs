//! Recaps: a runner's (or a crew's) week, month or year from the database, computed by
//! [`crate::domain::recap`], and the image card of it ([`crate::card`]).
//!
//! A runner's recap follows their time zone (the profile projection's, else the configured
//! default); a crew's follows the caller's. Everything is read from svc-run's own tables: runs,
//! best efforts, achievements, challenge participants, race results and board totals, and the
//! crew projection. Group runs live in svc-social: recaps say they are not available.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::boards::display_names;
use crate::card::{self, CardFormat, CardSize};
use crate::config::RunConfig;
use crate::domain::periods::{PeriodKind, period_of};
use crate::domain::recap::{
    self as facts, Bucket, Day, Language, NarrativeFacts, RecapPeriod, RunFact, Totals,
    change_percent,
};
use crate::error::Error;
use crate::runs::local_midnight;
use crate::store::progress::{
    achievement, board_total, challenge, crew, crew_member, participant, preference, race,
    race_result,
};
use crate::store::{effort, profile, run};
use crate::wire;

/// Cards rendered at once (each takes a core for tens of milliseconds).
const RENDER_PERMITS: usize = 4;

/// A best effort in a recap.
#[derive(Debug, Clone, PartialEq)]
pub struct EffortFact {
    pub distance: String,
    pub elapsed_s: f64,
    pub run_id: Uuid,
    pub achieved_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BadgeFact {
    pub badge_id: String,
    pub tier: u32,
    pub earned_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeFact {
    pub id: Uuid,
    pub title: String,
    pub completed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RaceFact {
    pub race_id: String,
    pub name: String,
    pub category_id: String,
    pub run_id: Option<Uuid>,
    pub elapsed_s: Option<f64>,
    pub starts_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RankFact {
    pub board_period: String,
    pub rank: u32,
    pub ranked: u32,
    pub percentile: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CrewFact {
    pub crew_id: String,
    pub name: String,
    pub distance_m: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemberFact {
    pub user_id: String,
    pub display_name: String,
    pub distance_m: f64,
    pub runs: u32,
}

/// A recap, ready for the wire and the card.
#[derive(Debug, Clone, PartialEq)]
pub struct Recap {
    pub period: RecapPeriod,
    pub time_zone: Tz,
    pub owner_id: String,
    pub crew_id: String,
    pub display_name: String,
    pub in_progress: bool,
    pub totals: Totals,
    pub previous: Totals,
    pub longest: Option<RunFact>,
    pub fastest: Vec<EffortFact>,
    pub records: Vec<EffortFact>,
    pub badges: Vec<BadgeFact>,
    pub challenges: Vec<ChallengeFact>,
    pub races: Vec<RaceFact>,
    pub longest_streak_days: u32,
    pub calendar: Vec<Day>,
    pub by_bucket: Vec<Bucket>,
    pub by_weekday: Vec<Bucket>,
    pub by_hour: Vec<Bucket>,
    pub rank: Option<RankFact>,
    pub crews: Vec<CrewFact>,
    pub members: Vec<MemberFact>,
    pub language: Language,
    pub narrative: Vec<String>,
}

impl Recap {
    pub fn distance_change(&self) -> Option<f64> {
        change_percent(self.totals.distance_m, self.previous.distance_m)
    }
}

/// What a recap request names.
#[derive(Debug, Clone)]
pub struct RecapQuery {
    pub kind: PeriodKind,
    pub day: NaiveDate,
    pub crew_id: Option<String>,
    pub language: Language,
}

pub struct Recaps {
    db: DatabaseConnection,
    config: RunConfig,
    renders: Arc<Semaphore>,
}

impl Recaps {
    pub fn new(db: DatabaseConnection, config: RunConfig) -> Self {
        Self {
            db,
            config,
            renders: Arc::new(Semaphore::new(RENDER_PERMITS)),
        }
    }

    async fn runner_tz(&self, owner: &str) -> Result<(Tz, String), Error> {
        let profile = profile::Entity::find_by_id(owner.to_owned())
            .one(&self.db)
            .await?;
        let tz = self.time_zone_of(profile.as_ref().map(|p| p.time_zone.as_str()));
        Ok((tz, profile.map(|p| p.display_name).unwrap_or_default()))
    }

    /// The time zone recaps follow for a runner whose profile projection stores `stored`
    /// (`None`: no profile): a valid IANA name, else the configured default.
    pub fn time_zone_of(&self, stored: Option<&str>) -> Tz {
        stored
            .and_then(|name| name.parse().ok())
            .unwrap_or_else(|| self.config.default_tz())
    }

    /// The totals of `owner`'s recap of `period` in `tz`: the same runs and the same computation
    /// as [`Recaps::recap`]'s `totals`.
    pub async fn period_totals(
        &self,
        owner: &str,
        period: &RecapPeriod,
        tz: Tz,
    ) -> Result<Totals, Error> {
        let runs = self
            .runs_between(
                &[owner.to_owned()],
                local_midnight(tz, period.from),
                local_midnight(tz, period.to),
            )
            .await?;
        Ok(facts::figures(period, tz, &runs).totals)
    }

    /// The caller's recap, or their crew's.
    pub async fn recap(
        &self,
        caller: &str,
        query: &RecapQuery,
        now: DateTime<Utc>,
    ) -> Result<Recap, Error> {
        let (tz, name) = self.runner_tz(caller).await?;
        let period = RecapPeriod::of(query.kind, query.day)
            .ok_or_else(|| Error::invalid("period", "must be week, month or year"))?;
        let today = now.with_timezone(&tz).date_naive();
        if period.from > today {
            return Err(Error::PeriodInFuture(period.key));
        }
        match &query.crew_id {
            Some(crew_id) => {
                self.crew_recap(caller, crew_id, period, tz, today, query.language)
                    .await
            }
            None => {
                self.runner_recap(caller, name, period, tz, today, query.language)
                    .await
            }
        }
    }

    /// The recap and its card.
    pub async fn card(
        &self,
        caller: &str,
        query: &RecapQuery,
        format: CardFormat,
        size: CardSize,
        now: DateTime<Utc>,
    ) -> Result<(Recap, Vec<u8>), Error> {
        let recap = self.recap(caller, query, now).await?;
        let permit = Arc::clone(&self.renders)
            .acquire_owned()
            .await
            .map_err(|_| Error::Render("the renderer is shut down".into()))?;
        let input = recap.clone();
        let bytes = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let svg = card::svg(&input, size);
            match format {
                CardFormat::Svg => Ok(svg.into_bytes()),
                CardFormat::Png => card::png(&svg),
            }
        })
        .await??;
        Ok((recap, bytes))
    }

    async fn runs_between(
        &self,
        owners: &[String],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<RunFact>, Error> {
        type Row = (Uuid, String, String, DateTime<Utc>, f64, f64, Option<f64>);
        let mut facts = Vec::new();
        for chunk in owners.chunks(500) {
            let rows: Vec<Row> = run::Entity::find()
                .select_only()
                .columns([
                    run::Column::Id,
                    run::Column::OwnerId,
                    run::Column::Title,
                    run::Column::StartTime,
                    run::Column::DistanceM,
                    run::Column::MovingS,
                    run::Column::ElevationGainM,
                ])
                .filter(run::Column::OwnerId.is_in(chunk.iter().cloned()))
                .filter(run::Column::Sport.is_in(wire::RUNNING_SPORTS))
                .filter(run::Column::StartTime.gte(from))
                .filter(run::Column::StartTime.lt(to))
                .order_by_asc(run::Column::StartTime)
                .into_tuple()
                .all(&self.db)
                .await?;
            facts.extend(rows.into_iter().map(
                |(id, owner, title, start, distance_m, moving_s, gain)| RunFact {
                    id,
                    owner,
                    title,
                    start,
                    distance_m,
                    moving_s,
                    elevation_m: gain.unwrap_or(0.0),
                },
            ));
        }
        facts.sort_by_key(|run| (run.start, run.id));
        Ok(facts)
    }

    /// The runs of the period and the one before, split.
    async fn period_runs(
        &self,
        owners: &[String],
        period: &RecapPeriod,
        tz: Tz,
    ) -> Result<(Vec<RunFact>, Vec<RunFact>), Error> {
        let previous = period.previous().unwrap_or_else(|| period.clone());
        let start = local_midnight(tz, period.from);
        let runs = self
            .runs_between(
                owners,
                local_midnight(tz, previous.from),
                local_midnight(tz, period.to),
            )
            .await?;
        Ok(runs.into_iter().partition(|run| run.start >= start))
    }

    async fn runner_recap(
        &self,
        owner: &str,
        name: String,
        period: RecapPeriod,
        tz: Tz,
        today: NaiveDate,
        language: Language,
    ) -> Result<Recap, Error> {
        let start = local_midnight(tz, period.from);
        let end = local_midnight(tz, period.to);
        let (runs, before) = self.period_runs(&[owner.to_owned()], &period, tz).await?;
        let figures = facts::figures(&period, tz, &runs);
        let previous = facts::totals(&before, tz);
        let (fastest, records) = self.efforts(owner, start, end).await?;

        let badges = achievement::Entity::find()
            .filter(achievement::Column::OwnerId.eq(owner))
            .filter(achievement::Column::EarnedAt.gte(start))
            .filter(achievement::Column::EarnedAt.lt(end))
            .order_by_asc(achievement::Column::EarnedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| BadgeFact {
                badge_id: row.badge_id,
                tier: u32::try_from(row.tier).unwrap_or(0),
                earned_at: row.earned_at,
            })
            .collect::<Vec<_>>();
        let challenges = self.challenges(&[owner.to_owned()], start, end).await?;
        let run_ids: Vec<Uuid> = runs.iter().map(|run| run.id).collect();
        let races = self.races(&[owner.to_owned()], &run_ids).await?;
        let rank = self.rank(owner, &period).await?;
        let crews = self.crews_ran_with(owner, start, end).await?;

        let mut recap = Recap {
            in_progress: today < period.to,
            period,
            time_zone: tz,
            owner_id: owner.to_owned(),
            crew_id: String::new(),
            display_name: name,
            totals: figures.totals,
            previous,
            longest: figures.longest,
            fastest,
            records,
            badges,
            challenges,
            races,
            longest_streak_days: figures.longest_streak_days,
            calendar: figures.calendar,
            by_bucket: figures.by_bucket,
            by_weekday: figures.by_weekday,
            by_hour: figures.by_hour,
            rank,
            crews,
            members: Vec::new(),
            language,
            narrative: Vec::new(),
        };
        recap.narrative = facts::narrative(&recap.period, language, &narrative_facts(&recap));
        Ok(recap)
    }

    async fn crew_recap(
        &self,
        caller: &str,
        crew_id: &str,
        period: RecapPeriod,
        tz: Tz,
        today: NaiveDate,
        language: Language,
    ) -> Result<Recap, Error> {
        let not_found = || Error::CrewNotFound(crew_id.to_owned());
        let crew = crew::Entity::find_by_id(crew_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(not_found)?;
        let members: Vec<String> = crew_member::Entity::find()
            .select_only()
            .column(crew_member::Column::UserId)
            .filter(crew_member::Column::CrewId.eq(crew_id))
            .order_by_asc(crew_member::Column::UserId)
            .into_tuple()
            .all(&self.db)
            .await?;
        if !members.iter().any(|member| member == caller) {
            return Err(not_found());
        }
        let start = local_midnight(tz, period.from);
        let end = local_midnight(tz, period.to);
        let (runs, before) = self.period_runs(&members, &period, tz).await?;
        let figures = facts::figures(&period, tz, &runs);
        let previous = facts::totals(&before, tz);

        let mut per_member: BTreeMap<&str, (f64, u32)> = BTreeMap::new();
        for run in &runs {
            let entry = per_member.entry(run.owner.as_str()).or_default();
            entry.0 += run.distance_m;
            entry.1 += 1;
        }
        let mut ranked: Vec<(&str, f64, u32)> = per_member
            .into_iter()
            .map(|(id, (distance, count))| (id, distance, count))
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        ranked.truncate(5);
        let names = display_names(&self.db, ranked.iter().map(|(id, ..)| (*id).to_owned())).await?;
        let top: Vec<MemberFact> = ranked
            .into_iter()
            .map(|(id, distance_m, runs)| MemberFact {
                user_id: id.to_owned(),
                display_name: names.get(id).cloned().unwrap_or_default(),
                distance_m,
                runs,
            })
            .collect();

        let mut badges = Vec::new();
        for chunk in members.chunks(500) {
            badges.extend(
                achievement::Entity::find()
                    .filter(achievement::Column::OwnerId.is_in(chunk.iter().cloned()))
                    .filter(achievement::Column::EarnedAt.gte(start))
                    .filter(achievement::Column::EarnedAt.lt(end))
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .map(|row| BadgeFact {
                        badge_id: row.badge_id,
                        tier: u32::try_from(row.tier).unwrap_or(0),
                        earned_at: row.earned_at,
                    }),
            );
        }
        badges.sort_by_key(|badge| badge.earned_at);
        let challenges = self.challenges(&members, start, end).await?;
        let run_ids: Vec<Uuid> = runs.iter().map(|run| run.id).collect();
        let races = self.races(&members, &run_ids).await?;

        let mut recap = Recap {
            in_progress: today < period.to,
            period,
            time_zone: tz,
            owner_id: String::new(),
            crew_id: crew.crew_id,
            display_name: crew.name,
            totals: figures.totals,
            previous,
            longest: figures.longest,
            fastest: Vec::new(),
            records: Vec::new(),
            badges,
            challenges,
            races,
            longest_streak_days: figures.longest_streak_days,
            calendar: figures.calendar,
            by_bucket: figures.by_bucket,
            by_weekday: figures.by_weekday,
            by_hour: figures.by_hour,
            rank: None,
            crews: Vec::new(),
            members: top,
            language,
            narrative: Vec::new(),
        };
        recap.narrative = facts::narrative(&recap.period, language, &narrative_facts(&recap));
        Ok(recap)
    }

    /// The fastest effort per distance in `[start, end)`, and those that were a personal record
    /// when run (faster than every earlier effort; the best of the period per distance).
    async fn efforts(
        &self,
        owner: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<(Vec<EffortFact>, Vec<EffortFact>), Error> {
        let rows = effort::Entity::find()
            .filter(effort::Column::OwnerId.eq(owner))
            .filter(effort::Column::AchievedAt.lt(end))
            .order_by_asc(effort::Column::AchievedAt)
            .order_by_asc(effort::Column::RunId)
            .all(&self.db)
            .await?;
        let mut best_before: HashMap<String, f64> = HashMap::new();
        let mut fastest: BTreeMap<usize, EffortFact> = BTreeMap::new();
        let mut records: BTreeMap<usize, EffortFact> = BTreeMap::new();
        for row in rows {
            let order = crate::domain::EFFORT_DISTANCES
                .iter()
                .position(|d| d.key == row.distance)
                .unwrap_or(usize::MAX);
            let fact = EffortFact {
                distance: row.distance.clone(),
                elapsed_s: row.elapsed_s,
                run_id: row.run_id,
                achieved_at: row.achieved_at,
            };
            let previous = best_before.get(&row.distance).copied();
            if row.achieved_at >= start {
                if fastest
                    .get(&order)
                    .is_none_or(|best| row.elapsed_s < best.elapsed_s)
                {
                    fastest.insert(order, fact.clone());
                }
                if previous.is_none_or(|best| row.elapsed_s < best) {
                    records.insert(order, fact);
                }
            }
            if previous.is_none_or(|best| row.elapsed_s < best) {
                best_before.insert(row.distance, row.elapsed_s);
            }
        }
        Ok((
            fastest.into_values().collect(),
            records.into_values().collect(),
        ))
    }

    async fn challenges(
        &self,
        users: &[String],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<ChallengeFact>, Error> {
        let mut done: Vec<(Uuid, DateTime<Utc>)> = Vec::new();
        for chunk in users.chunks(500) {
            let rows = participant::Entity::find()
                .filter(participant::Column::UserId.is_in(chunk.iter().cloned()))
                .filter(participant::Column::CompletedAt.gte(start))
                .filter(participant::Column::CompletedAt.lt(end))
                .all(&self.db)
                .await?;
            done.extend(
                rows.into_iter()
                    .filter_map(|row| Some((row.challenge_id, row.completed_at?))),
            );
        }
        if done.is_empty() {
            return Ok(Vec::new());
        }
        let ids: HashSet<Uuid> = done.iter().map(|(id, _)| *id).collect();
        let titles: HashMap<Uuid, String> = challenge::Entity::find()
            .filter(challenge::Column::Id.is_in(ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.id, row.title))
            .collect();
        let mut facts: Vec<ChallengeFact> = done
            .into_iter()
            .map(|(id, completed_at)| ChallengeFact {
                id,
                title: titles.get(&id).cloned().unwrap_or_default(),
                completed_at,
            })
            .collect();
        facts.sort_by_key(|fact| (fact.completed_at, fact.id));
        Ok(facts)
    }

    /// Race results whose linked run is one of `run_ids`.
    async fn races(&self, users: &[String], run_ids: &[Uuid]) -> Result<Vec<RaceFact>, Error> {
        if run_ids.is_empty() {
            return Ok(Vec::new());
        }
        let runs: HashSet<Uuid> = run_ids.iter().copied().collect();
        let mut results = Vec::new();
        for chunk in users.chunks(500) {
            results.extend(
                race_result::Entity::find()
                    .filter(race_result::Column::UserId.is_in(chunk.iter().cloned()))
                    .filter(race_result::Column::RunId.is_not_null())
                    .all(&self.db)
                    .await?
                    .into_iter()
                    .filter(|row| row.run_id.is_some_and(|id| runs.contains(&id))),
            );
        }
        if results.is_empty() {
            return Ok(Vec::new());
        }
        let race_ids: HashSet<String> = results.iter().map(|row| row.race_id.clone()).collect();
        let races: HashMap<String, race::Model> = race::Entity::find()
            .filter(race::Column::RaceId.is_in(race_ids))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|row| (row.race_id.clone(), row))
            .collect();
        let mut facts: Vec<RaceFact> = results
            .into_iter()
            .filter_map(|row| {
                let race = races.get(&row.race_id)?;
                Some(RaceFact {
                    race_id: row.race_id,
                    name: race.name.clone(),
                    category_id: row.category_id,
                    run_id: row.run_id,
                    elapsed_s: row.elapsed_s,
                    starts_at: race.starts_at,
                })
            })
            .collect();
        facts.sort_by(|a, b| {
            a.starts_at
                .cmp(&b.starts_at)
                .then(a.race_id.cmp(&b.race_id))
        });
        Ok(facts)
    }

    /// The runner's place on the period's distance board (the board time zone's period of the
    /// same key), from the database's totals; runners who left the boards are not counted.
    async fn rank(&self, owner: &str, period: &RecapPeriod) -> Result<Option<RankFact>, Error> {
        let (key, _) = period_of(period.kind, period.from);
        let opted_out = || {
            Query::select()
                .column(preference::Column::UserId)
                .from(preference::Entity)
                .and_where(preference::Column::OptOut.eq(true))
                .to_owned()
        };
        let Some(mine) = board_total::Entity::find_by_id((key.clone(), owner.to_owned()))
            .one(&self.db)
            .await?
            .filter(|row| row.runs > 0)
        else {
            return Ok(None);
        };
        if preference::Entity::find_by_id(owner.to_owned())
            .one(&self.db)
            .await?
            .is_some_and(|p| p.opt_out)
        {
            return Ok(None);
        }
        let ranked = board_total::Entity::find()
            .filter(board_total::Column::Period.eq(key.as_str()))
            .filter(board_total::Column::Runs.gt(0))
            .filter(board_total::Column::OwnerId.not_in_subquery(opted_out()))
            .count(&self.db)
            .await?;
        let ahead = board_total::Entity::find()
            .filter(board_total::Column::Period.eq(key.as_str()))
            .filter(board_total::Column::Runs.gt(0))
            .filter(board_total::Column::DistanceM.gt(mine.distance_m))
            .filter(board_total::Column::OwnerId.not_in_subquery(opted_out()))
            .count(&self.db)
            .await?;
        let ranked = u32::try_from(ranked).unwrap_or(u32::MAX).max(1);
        let rank = u32::try_from(ahead).unwrap_or(u32::MAX).saturating_add(1);
        Ok(Some(RankFact {
            board_period: key,
            rank,
            ranked,
            percentile: f64::from(ranked - rank.min(ranked) + 1) / f64::from(ranked) * 100.0,
        }))
    }

    /// The runner's crews, by how far their other members ran in `[start, end)`.
    async fn crews_ran_with(
        &self,
        owner: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Vec<CrewFact>, Error> {
        let mine: Vec<String> = crew_member::Entity::find()
            .select_only()
            .column(crew_member::Column::CrewId)
            .filter(crew_member::Column::UserId.eq(owner))
            .into_tuple()
            .all(&self.db)
            .await?;
        if mine.is_empty() {
            return Ok(Vec::new());
        }
        let crews: Vec<crew::Model> = crew::Entity::find()
            .filter(crew::Column::CrewId.is_in(mine.clone()))
            .filter(crew::Column::Archived.eq(false))
            .all(&self.db)
            .await?;
        let members: Vec<(String, String)> = crew_member::Entity::find()
            .select_only()
            .columns([crew_member::Column::CrewId, crew_member::Column::UserId])
            .filter(crew_member::Column::CrewId.is_in(mine))
            .filter(crew_member::Column::UserId.ne(owner))
            .into_tuple()
            .all(&self.db)
            .await?;
        let others: Vec<String> = members
            .iter()
            .map(|(_, user)| user.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut distance: HashMap<String, f64> = HashMap::new();
        for run in self.runs_between(&others, start, end).await? {
            *distance.entry(run.owner).or_default() += run.distance_m;
        }
        let mut facts: Vec<CrewFact> = crews
            .into_iter()
            .map(|crew| {
                let total = members
                    .iter()
                    .filter(|(crew_id, _)| *crew_id == crew.crew_id)
                    .map(|(_, user)| distance.get(user).copied().unwrap_or(0.0))
                    .sum();
                CrewFact {
                    crew_id: crew.crew_id,
                    name: crew.name,
                    distance_m: total,
                }
            })
            .collect();
        facts.sort_by(|a, b| {
            b.distance_m
                .total_cmp(&a.distance_m)
                .then_with(|| a.crew_id.cmp(&b.crew_id))
        });
        facts.truncate(3);
        Ok(facts)
    }
}

fn narrative_facts(recap: &Recap) -> NarrativeFacts {
    NarrativeFacts {
        crew: !recap.crew_id.is_empty(),
        totals: recap.totals,
        distance_change: recap.distance_change(),
        longest_m: recap.longest.as_ref().map(|run| run.distance_m),
        longest_streak_days: recap.longest_streak_days,
        records: recap.records.len(),
        badges: recap.badges.len(),
        races: recap.races.len(),
        rank: recap.rank.as_ref().map(|rank| (rank.rank, rank.ranked)),
        top_member: recap
            .members
            .first()
            .filter(|member| !member.display_name.is_empty())
            .map(|member| (member.display_name.clone(), member.distance_m)),
    }
}
