//! What a run change moves besides the run itself, in the change's own transaction: the
//! runner's board totals, race-result links, challenge progress, badges (awarded and withdrawn
//! by the difference between what the rules answer now and what is stored) and goals met, each
//! with its event. [`refresh`] is total and idempotent: running it twice changes nothing the
//! second time, so redelivered events award nothing twice.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use runmesh_proto::runmesh::run::v1 as proto;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use uuid::Uuid;

use crate::config::RunConfig;
use crate::domain::badges::{self, Earned, RunFact, RunnerFacts};
use crate::domain::periods::{self, PeriodKind};
use crate::domain::{LatLng, haversine_m};
use crate::events;
use crate::store::progress::{
    achievement, board_total, challenge, goal, goal_met, participant, race, race_result,
    registration,
};
use crate::store::{effort, run};
use crate::wire;

/// A run as progress reads it.
#[derive(Debug, Clone)]
pub struct RunRow {
    pub fact: RunFact,
    pub end: DateTime<Utc>,
    pub public: bool,
    pub start_position: Option<LatLng>,
}

/// The runner's running activities.
pub async fn runner_runs(conn: &impl ConnectionTrait, owner: &str) -> Result<Vec<RunRow>, DbErr> {
    let rows = run::Entity::find()
        .filter(run::Column::OwnerId.eq(owner))
        .filter(run::Column::Sport.is_in(wire::RUNNING_SPORTS))
        .order_by_asc(run::Column::StartTime)
        .order_by_asc(run::Column::Id)
        .all(conn)
        .await?;
    Ok(rows.iter().map(run_row).collect())
}

pub fn run_row(row: &run::Model) -> RunRow {
    let tz: Tz = row.time_zone.parse().unwrap_or(chrono_tz::UTC);
    RunRow {
        fact: RunFact {
            id: row.id,
            start: row.start_time,
            local_start: row.start_time.with_timezone(&tz).naive_local(),
            distance_m: row.distance_m,
            moving_s: row.moving_s,
            elapsed_s: row.elapsed_s,
            elevation_m: row.elevation_gain_m.unwrap_or(0.0),
        },
        end: row.end_time,
        public: row.visibility == "public",
        start_position: row
            .start_lat
            .zip(row.start_lng)
            .map(|(lat, lng)| LatLng { lat, lng }),
    }
}

/// The value a goal or challenge metric takes from one run.
pub fn metric_value(metric: &str, fact: &RunFact) -> f64 {
    match metric {
        "distance" => fact.distance_m,
        "moving_time" => fact.moving_s,
        "runs" => 1.0,
        "elevation" => fact.elevation_m,
        _ => 0.0,
    }
}

/// Recomputes everything `owner`'s runs decide, after a change of runs starting at `starts`
/// (board periods to recompute); answers the board periods whose totals were written.
pub async fn refresh(
    conn: &impl ConnectionTrait,
    config: &RunConfig,
    owner: &str,
    starts: &[DateTime<Utc>],
) -> Result<Vec<(PeriodKind, NaiveDate)>, DbErr> {
    let runs = runner_runs(conn, owner).await?;
    let touched = board_totals(conn, config, owner, &runs, starts).await?;
    let race_results = link_races(conn, config, owner, &runs).await?;
    let challenges = challenge_progress(conn, owner, &runs).await?;
    let improved_records = improved_records(conn, owner).await?;
    let facts = RunnerFacts {
        runs: runs.iter().map(|r| r.fact.clone()).collect(),
        improved_records,
        race_results,
        challenges,
    };
    award(conn, config, owner, &facts).await?;
    goals(conn, owner, &runs).await?;
    Ok(touched)
}

/// Writes the runner's totals of public running activities for every board period holding one
/// of `starts`.
async fn board_totals(
    conn: &impl ConnectionTrait,
    config: &RunConfig,
    owner: &str,
    runs: &[RunRow],
    starts: &[DateTime<Utc>],
) -> Result<Vec<(PeriodKind, NaiveDate)>, DbErr> {
    let tz = config.board_tz();
    type Bounds = Option<(NaiveDate, NaiveDate)>;
    let mut wanted: BTreeMap<String, (PeriodKind, NaiveDate, Bounds)> = BTreeMap::new();
    for start in starts {
        let day = start.with_timezone(&tz).date_naive();
        for kind in PeriodKind::ALL {
            let (key, bounds) = periods::period_of(kind, day);
            wanted.entry(key).or_insert((kind, day, bounds));
        }
    }
    let now = wire::now();
    let mut touched = Vec::new();
    for (key, (kind, day, bounds)) in wanted {
        let mut total = board_total::Model {
            period: key.clone(),
            owner_id: owner.to_owned(),
            distance_m: 0.0,
            moving_s: 0.0,
            runs: 0,
            elevation_m: 0.0,
            reached_at: now,
            updated_at: now,
        };
        let mut reached: Option<DateTime<Utc>> = None;
        for run in runs.iter().filter(|r| r.public) {
            let run_day = run.fact.start.with_timezone(&tz).date_naive();
            if bounds.is_some_and(|(from, to)| run_day < from || run_day >= to) {
                continue;
            }
            total.distance_m += run.fact.distance_m;
            total.moving_s += run.fact.moving_s;
            total.elevation_m += run.fact.elevation_m;
            total.runs += 1;
            reached = reached.max(Some(run.end));
        }
        total.reached_at = reached.unwrap_or(now);
        board_total::Entity::insert(board_total::ActiveModel::from(total))
            .on_conflict(
                OnConflict::columns([board_total::Column::Period, board_total::Column::OwnerId])
                    .update_columns([
                        board_total::Column::DistanceM,
                        board_total::Column::MovingS,
                        board_total::Column::Runs,
                        board_total::Column::ElevationM,
                        board_total::Column::ReachedAt,
                        board_total::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
        touched.push((kind, day));
    }
    Ok(touched)
}

/// Efforts that beat the runner's earlier record at their distance.
async fn improved_records(
    conn: &impl ConnectionTrait,
    owner: &str,
) -> Result<Vec<(Uuid, String)>, DbErr> {
    let efforts = effort::Entity::find()
        .filter(effort::Column::OwnerId.eq(owner))
        .order_by_asc(effort::Column::AchievedAt)
        .order_by_asc(effort::Column::RunId)
        .all(conn)
        .await?;
    let mut best: HashMap<String, f64> = HashMap::new();
    let mut improved = Vec::new();
    for effort in efforts {
        match best.get(&effort.distance) {
            Some(previous) if effort.elapsed_s < *previous => {
                improved.push((effort.run_id, effort.distance.clone()));
                best.insert(effort.distance, effort.elapsed_s);
            }
            Some(_) => {}
            None => {
                best.insert(effort.distance, effort.elapsed_s);
            }
        }
    }
    Ok(improved)
}

/// One category of a race: (id, distance in metres, name).
pub fn categories(race: &race::Model) -> Vec<(String, u32, String)> {
    race.categories
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            let id = parts.next()?.to_owned();
            let distance = parts.next()?.parse().ok()?;
            Some((id, distance, parts.next().unwrap_or_default().to_owned()))
        })
        .collect()
}

/// Links the runner's confirmed registrations to the run that matches each (the race's date in
/// the run's time zone, a distance within the tolerance, near the venue when both have
/// coordinates), leaving the runner's own choices alone; answers the linked results.
async fn link_races(
    conn: &impl ConnectionTrait,
    config: &RunConfig,
    owner: &str,
    runs: &[RunRow],
) -> Result<Vec<(String, Uuid, f64)>, DbErr> {
    let registrations = registration::Entity::find()
        .filter(registration::Column::UserId.eq(owner))
        .all(conn)
        .await?;
    let existing: HashMap<String, race_result::Model> = race_result::Entity::find()
        .filter(race_result::Column::UserId.eq(owner))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| (r.registration_id.clone(), r))
        .collect();
    let by_id: HashMap<Uuid, &RunRow> = runs.iter().map(|r| (r.fact.id, r)).collect();
    let mut linked = Vec::new();
    for reg in registrations {
        let current = existing.get(&reg.registration_id);
        let confirmed = reg.status == "confirmed";
        let race = race::Entity::find_by_id(reg.race_id.clone())
            .one(conn)
            .await?;
        let category_m = race
            .as_ref()
            .and_then(|r| categories(r).into_iter().find(|c| c.0 == reg.category_id))
            .map(|c| f64::from(c.1));
        let wanted: Option<Uuid> = match current {
            // The runner's choice stands while the run exists.
            Some(result) if result.manual => result.run_id.filter(|id| by_id.contains_key(id)),
            _ if !confirmed => None,
            _ => match (&race, category_m) {
                (Some(race), Some(category_m)) => {
                    best_match(config, race, category_m, runs).map(|r| r.fact.id)
                }
                _ => None,
            },
        };
        let manual = current.is_some_and(|r| r.manual);
        let unchanged =
            current.map(|r| r.run_id) == Some(wanted) || (current.is_none() && wanted.is_none());
        if !unchanged {
            match (wanted, manual) {
                (None, false) => {
                    race_result::Entity::delete_by_id(reg.registration_id.clone())
                        .exec(conn)
                        .await?;
                }
                _ => {
                    let elapsed = wanted
                        .and_then(|id| by_id.get(&id))
                        .map(|r| r.fact.elapsed_s);
                    upsert_result(conn, &reg, wanted, elapsed, manual).await?;
                }
            }
            let event = proto::RaceResultLinked {
                owner_id: owner.to_owned(),
                registration_id: reg.registration_id.clone(),
                race_id: reg.race_id.clone(),
                run_id: wanted.map(|id| id.to_string()).unwrap_or_default(),
                elapsed_time: wanted
                    .and_then(|id| by_id.get(&id))
                    .map(|r| wire::duration(r.fact.elapsed_s)),
                manual,
            };
            events::enqueue(conn, owner, &event).await?;
        }
        if let (Some(run), Some(category_m)) = (wanted, category_m) {
            linked.push((reg.race_id.clone(), run, category_m));
        }
    }
    Ok(linked)
}

pub async fn upsert_result(
    conn: &impl ConnectionTrait,
    reg: &registration::Model,
    run_id: Option<Uuid>,
    elapsed_s: Option<f64>,
    manual: bool,
) -> Result<(), DbErr> {
    race_result::Entity::insert(race_result::ActiveModel {
        registration_id: Set(reg.registration_id.clone()),
        race_id: Set(reg.race_id.clone()),
        category_id: Set(reg.category_id.clone()),
        user_id: Set(reg.user_id.clone()),
        run_id: Set(run_id),
        elapsed_s: Set(elapsed_s),
        manual: Set(manual),
        linked_at: Set(wire::now()),
    })
    .on_conflict(
        OnConflict::column(race_result::Column::RegistrationId)
            .update_columns([
                race_result::Column::RunId,
                race_result::Column::ElapsedS,
                race_result::Column::Manual,
                race_result::Column::LinkedAt,
                race_result::Column::CategoryId,
            ])
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// The run that is the race's result: on the race's date, within the distance tolerance, near
/// the venue when both have coordinates; the closest in distance.
fn best_match<'a>(
    config: &RunConfig,
    race: &race::Model,
    category_m: f64,
    runs: &'a [RunRow],
) -> Option<&'a RunRow> {
    let venue = race
        .latitude
        .zip(race.longitude)
        .map(|(lat, lng)| LatLng { lat, lng });
    runs.iter()
        .filter(|run| {
            let offset = run.fact.local_start - run.fact.start.naive_utc();
            let race_day = (race.starts_at.naive_utc() + offset).date();
            run.fact.local_start.date() == race_day
                && (run.fact.distance_m - category_m).abs()
                    <= category_m * config.race_distance_tolerance
                && match (venue, run.start_position) {
                    (Some(venue), Some(start)) => {
                        haversine_m(venue, start) <= config.race_venue_radius_m
                    }
                    _ => true,
                }
        })
        .min_by(|a, b| {
            (a.fact.distance_m - category_m)
                .abs()
                .total_cmp(&(b.fact.distance_m - category_m).abs())
        })
}

/// Progress of the runner's challenges (any run inside the window, joined before or after);
/// completes those that reached their target. Answers the completed ones for the badges.
async fn challenge_progress(
    conn: &impl ConnectionTrait,
    owner: &str,
    runs: &[RunRow],
) -> Result<Vec<(String, String, Option<Uuid>)>, DbErr> {
    let joined = participant::Entity::find()
        .filter(participant::Column::UserId.eq(owner))
        .all(conn)
        .await?;
    let mut completed = Vec::new();
    for entry in joined {
        let Some(challenge) = challenge::Entity::find_by_id(entry.challenge_id)
            .one(conn)
            .await?
        else {
            continue;
        };
        let progress = challenge_value(&challenge, runs);
        let mut active = participant::ActiveModel::from(entry.clone());
        active.value = Set(progress.value);
        active.reached_at = Set(progress.reached_at);
        if entry.completed_at.is_none()
            && let Some(run) = progress.completed_by
        {
            let now = wire::now();
            active.completed_at = Set(Some(now));
            active.completed_run_id = Set(Some(run));
            let event = proto::ChallengeCompleted {
                owner_id: owner.to_owned(),
                challenge_id: challenge.id.to_string(),
                title: challenge.title.clone(),
                value: progress.value,
                run_id: run.to_string(),
                completed_at: Some(wire::timestamp(now)),
            };
            events::enqueue(conn, owner, &event).await?;
            completed.push((
                challenge.id.to_string(),
                challenge.badge_id.clone(),
                Some(run),
            ));
        } else if entry.completed_at.is_some() {
            completed.push((
                challenge.id.to_string(),
                challenge.badge_id.clone(),
                entry.completed_run_id,
            ));
        }
        if entry.value != progress.value
            || entry.reached_at != progress.reached_at
            || entry.completed_at.is_none() && progress.completed_by.is_some()
        {
            active.update(conn).await?;
        }
    }
    Ok(completed)
}

/// A runner's progress in a challenge.
#[derive(Debug, Clone, PartialEq)]
pub struct ChallengeValue {
    pub value: f64,
    pub reached_at: Option<DateTime<Utc>>,
    /// The run with which the total first reached the target.
    pub completed_by: Option<Uuid>,
}

pub fn challenge_value(challenge: &challenge::Model, runs: &[RunRow]) -> ChallengeValue {
    let from = NaiveDate::parse_from_str(&challenge.start_date, "%Y-%m-%d").ok();
    let to = NaiveDate::parse_from_str(&challenge.end_date, "%Y-%m-%d").ok();
    let mut value = 0.0;
    let mut reached_at = None;
    let mut completed_by = None;
    for run in runs {
        let day = run.fact.local_start.date();
        if from.is_some_and(|f| day < f) || to.is_some_and(|t| day > t) {
            continue;
        }
        value += metric_value(&challenge.metric, &run.fact);
        reached_at = reached_at.max(Some(run.end));
        if completed_by.is_none() && value + 1e-9 >= challenge.target {
            completed_by = Some(run.fact.id);
        }
    }
    ChallengeValue {
        value,
        reached_at,
        completed_by,
    }
}

/// Awards what the rules answer and the store lacks; withdraws what the store has and the rules
/// no longer answer; moves an achievement whose run is gone to the run that earns it now.
async fn award(
    conn: &impl ConnectionTrait,
    config: &RunConfig,
    owner: &str,
    facts: &RunnerFacts,
) -> Result<(), DbErr> {
    let set = &config.badge_set;
    let earned = badges::evaluate(set, facts);
    let stored = achievement::Entity::find()
        .filter(achievement::Column::OwnerId.eq(owner))
        .all(conn)
        .await?;
    let key = |badge: &str, tier: i32, period: &str| (badge.to_owned(), tier, period.to_owned());
    let mut held: BTreeMap<(String, i32, String), achievement::Model> = stored
        .into_iter()
        .map(|a| (key(&a.badge_id, a.tier, &a.period), a))
        .collect();
    let run_ids: BTreeSet<Uuid> = facts.runs.iter().map(|r| r.id).collect();
    for Earned {
        badge_id,
        tier,
        period,
        run_id,
    } in earned
    {
        let tier = i32::try_from(tier).unwrap_or(i32::MAX);
        match held.remove(&key(&badge_id, tier, &period)) {
            Some(existing) => {
                let gone = existing.run_id.is_some_and(|id| !run_ids.contains(&id));
                if gone {
                    let mut active = achievement::ActiveModel::from(existing);
                    active.run_id = Set(run_id);
                    active.update(conn).await?;
                }
            }
            None => {
                let row = achievement::Model {
                    owner_id: owner.to_owned(),
                    badge_id: badge_id.clone(),
                    tier,
                    period: period.clone(),
                    run_id,
                    earned_at: wire::now(),
                };
                achievement::Entity::insert(achievement::ActiveModel::from(row.clone()))
                    .on_conflict(
                        OnConflict::columns([
                            achievement::Column::OwnerId,
                            achievement::Column::BadgeId,
                            achievement::Column::Tier,
                            achievement::Column::Period,
                        ])
                        .do_nothing()
                        .to_owned(),
                    )
                    .exec_without_returning(conn)
                    .await?;
                let event = proto::AchievementUnlocked {
                    owner_id: owner.to_owned(),
                    achievement: Some(wire::achievement_message(&row, set.get(&badge_id))),
                };
                events::enqueue(conn, owner, &event).await?;
            }
        }
    }
    // What remains is no longer earned; badges an operator removed from the file stay.
    for (_, lost) in held {
        if set.get(&lost.badge_id).is_none() {
            continue;
        }
        achievement::Entity::delete_many()
            .filter(achievement::Column::OwnerId.eq(owner))
            .filter(achievement::Column::BadgeId.eq(lost.badge_id.clone()))
            .filter(achievement::Column::Tier.eq(lost.tier))
            .filter(achievement::Column::Period.eq(lost.period.clone()))
            .exec(conn)
            .await?;
        let event = proto::AchievementWithdrawn {
            owner_id: owner.to_owned(),
            badge_id: lost.badge_id,
            tier: u32::try_from(lost.tier).unwrap_or(0),
            period: lost.period,
        };
        events::enqueue(conn, owner, &event).await?;
    }
    Ok(())
}

/// The period of a goal holding `day`.
pub fn goal_period(period: &str, day: NaiveDate) -> (String, NaiveDate, NaiveDate) {
    let kind = PeriodKind::parse(period).unwrap_or(PeriodKind::Week);
    let (key, bounds) = periods::period_of(kind, day);
    let (from, to) = bounds.unwrap_or((day, day));
    (key, from, to)
}

/// A goal's total in the period `[from, to)` of local dates.
pub fn goal_value(goal: &goal::Model, runs: &[RunRow], from: NaiveDate, to: NaiveDate) -> f64 {
    runs.iter()
        .filter(|r| {
            let day = r.fact.local_start.date();
            day >= from && day < to
        })
        .map(|r| metric_value(&goal.metric, &r.fact))
        .sum()
}

/// `GoalMet`, once per goal and period, for each goal a period of which is met now.
async fn goals(conn: &impl ConnectionTrait, owner: &str, runs: &[RunRow]) -> Result<(), DbErr> {
    let goals = goal::Entity::find()
        .filter(goal::Column::OwnerId.eq(owner))
        .all(conn)
        .await?;
    for goal in goals {
        // Every period with a run (runs imported later may complete an old one).
        let mut periods: BTreeMap<String, (NaiveDate, NaiveDate)> = BTreeMap::new();
        for run in runs {
            let (key, from, to) = goal_period(&goal.period, run.fact.local_start.date());
            periods.insert(key, (from, to));
        }
        let met: BTreeSet<String> = goal_met::Entity::find()
            .filter(goal_met::Column::GoalId.eq(goal.id))
            .all(conn)
            .await?
            .into_iter()
            .map(|m| m.period)
            .collect();
        for (key, (from, to)) in periods {
            if met.contains(&key) {
                continue;
            }
            let mut total = 0.0;
            let mut by = None;
            for run in runs.iter().filter(|r| {
                let day = r.fact.local_start.date();
                day >= from && day < to
            }) {
                total += metric_value(&goal.metric, &run.fact);
                if by.is_none() && total + 1e-9 >= goal.target {
                    by = Some(run.fact.id);
                }
            }
            let Some(run_id) = by else { continue };
            goal_met::Entity::insert(goal_met::ActiveModel {
                goal_id: Set(goal.id),
                period: Set(key.clone()),
                run_id: Set(Some(run_id)),
                met_at: Set(wire::now()),
            })
            .on_conflict(
                OnConflict::columns([goal_met::Column::GoalId, goal_met::Column::Period])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
            let event = proto::GoalMet {
                owner_id: owner.to_owned(),
                goal: Some(wire::goal_message(&goal)),
                from_date: from.to_string(),
                to_date: to.to_string(),
                value: total,
                run_id: run_id.to_string(),
            };
            events::enqueue(conn, owner, &event).await?;
        }
    }
    Ok(())
}
