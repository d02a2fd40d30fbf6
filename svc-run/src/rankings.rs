//! The operations of `RankingService`: boards, ranking preferences, badges, goals, challenges
//! and race results, with their rules of who may see and do what.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{Datelike, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use runmesh_platform::db::begin_write;
use runmesh_platform::events::EventBus;
use runmesh_proto::runmesh::run::v1 as proto;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use uuid::Uuid;

use crate::boards::{self, BoardId, Boards, Page, Scope};
use crate::config::RunConfig;
use crate::domain::badges::{self, RunnerFacts};
use crate::error::Error;
use crate::progress::{self, RunRow};
use crate::store::progress::{
    achievement, challenge, crew_member, goal, participant, preference, race, race_result,
    registration,
};
use crate::store::{profile, run};
use crate::wire;

/// The longest challenge window.
pub const MAX_CHALLENGE_DAYS: i64 = 366;

/// A challenge to create, validated.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub title: String,
    pub description: String,
    pub metric: &'static str,
    pub target: f64,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub crew_id: String,
    pub badge_id: String,
}

/// A goal's progress before encoding.
#[derive(Debug, Clone)]
pub struct GoalProgress {
    pub goal: goal::Model,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub current: f64,
    pub days_left: u32,
    pub streak: u32,
    pub moving_s: f64,
    pub distance_m: f64,
    pub elapsed_days: u32,
}

pub struct Rankings {
    db: DatabaseConnection,
    bus: Option<EventBus>,
    config: RunConfig,
    boards: Arc<Boards>,
}

impl Rankings {
    pub fn new(
        db: DatabaseConnection,
        bus: Option<EventBus>,
        config: RunConfig,
        boards: Arc<Boards>,
    ) -> Self {
        Self {
            db,
            bus,
            config,
            boards,
        }
    }

    pub fn boards(&self) -> &Arc<Boards> {
        &self.boards
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    fn wake(&self) {
        if let Some(bus) = &self.bus {
            bus.wake_relays();
        }
    }

    async fn runner_tz(&self, owner: &str) -> Result<Tz, Error> {
        Ok(profile::Entity::find_by_id(owner.to_owned())
            .one(&self.db)
            .await?
            .and_then(|p| p.time_zone.parse().ok())
            .unwrap_or_else(|| self.config.default_tz()))
    }

    // ---- boards ----

    /// The caller's own scope when the request names none: their age group, gender or crew.
    pub async fn resolve_scope(
        &self,
        viewer: &str,
        kind: ScopeKind,
        year: i32,
    ) -> Result<Scope, Error> {
        let member = boards::membership(&self.db, viewer).await?;
        match kind {
            ScopeKind::Everyone => Ok(Scope::Everyone),
            ScopeKind::AgeGroup(Some(group)) => Ok(Scope::AgeGroup(group)),
            ScopeKind::AgeGroup(None) => member
                .birth_year
                .and_then(|b| crate::domain::periods::age_group(b, year))
                .map(Scope::AgeGroup)
                .ok_or_else(|| {
                    Error::invalid(
                        "board.age_group",
                        "name one: your profile has no birth year",
                    )
                }),
            ScopeKind::Gender(Some(gender)) => Ok(Scope::Gender(gender.to_owned())),
            ScopeKind::Gender(None) if !member.gender.is_empty() => {
                Ok(Scope::Gender(member.gender))
            }
            ScopeKind::Gender(None) => Err(Error::invalid(
                "board.gender",
                "name one: your profile has no gender",
            )),
            ScopeKind::Crew(crew) => {
                if member.crews.contains(&crew) {
                    Ok(Scope::Crew(crew))
                } else {
                    Err(Error::invalid("board.crew_id", "is not a crew of yours"))
                }
            }
        }
    }

    pub async fn leaderboard(
        &self,
        viewer: &str,
        board: &BoardId,
        offset: usize,
        count: usize,
        around: usize,
    ) -> Result<Page, Error> {
        self.boards.page(board, viewer, offset, count, around).await
    }

    pub async fn set_opt_out(&self, owner: &str, opt_out: bool) -> Result<bool, Error> {
        preference::Entity::insert(preference::ActiveModel {
            user_id: Set(owner.to_owned()),
            opt_out: Set(opt_out),
            updated_at: Set(wire::now()),
        })
        .on_conflict(
            OnConflict::column(preference::Column::UserId)
                .update_columns([preference::Column::OptOut, preference::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        self.boards
            .apply(owner, &self.boards.live_periods(), &[])
            .await?;
        Ok(opt_out)
    }

    // ---- badges ----

    async fn facts(&self, owner: &str) -> Result<(RunnerFacts, Vec<RunRow>), Error> {
        let runs = progress::runner_runs(&self.db, owner).await?;
        let results = race_result::Entity::find()
            .filter(race_result::Column::UserId.eq(owner))
            .all(&self.db)
            .await?;
        let mut race_results = Vec::new();
        for result in results {
            if let Some(run_id) = result.run_id {
                let distance = race::Entity::find_by_id(result.race_id.clone())
                    .one(&self.db)
                    .await?
                    .and_then(|r| {
                        progress::categories(&r)
                            .into_iter()
                            .find(|c| c.0 == result.category_id)
                    })
                    .map_or(0.0, |c| f64::from(c.1));
                race_results.push((result.race_id, run_id, distance));
            }
        }
        let mut challenges = Vec::new();
        for entry in participant::Entity::find()
            .filter(participant::Column::UserId.eq(owner))
            .filter(participant::Column::CompletedAt.is_not_null())
            .all(&self.db)
            .await?
        {
            if let Some(c) = challenge::Entity::find_by_id(entry.challenge_id)
                .one(&self.db)
                .await?
            {
                challenges.push((c.id.to_string(), c.badge_id, entry.completed_run_id));
            }
        }
        Ok((
            RunnerFacts {
                runs: runs.iter().map(|r| r.fact.clone()).collect(),
                improved_records: Vec::new(),
                race_results,
                challenges,
            },
            runs,
        ))
    }

    pub async fn achievements(&self, owner: &str) -> Result<Vec<achievement::Model>, Error> {
        Ok(achievement::Entity::find()
            .filter(achievement::Column::OwnerId.eq(owner))
            .order_by_desc(achievement::Column::EarnedAt)
            .order_by_asc(achievement::Column::BadgeId)
            .order_by_desc(achievement::Column::Tier)
            .all(&self.db)
            .await?)
    }

    pub async fn achievement_progress(
        &self,
        owner: &str,
        badge_id: Option<&str>,
    ) -> Result<Vec<proto::AchievementProgress>, Error> {
        let set = &self.config.badge_set;
        let chosen: Vec<&badges::BadgeDef> = match badge_id {
            Some(id) => vec![
                set.get(id)
                    .ok_or_else(|| Error::BadgeNotFound(id.to_owned()))?,
            ],
            None => set.badges.iter().collect(),
        };
        let tz = self.runner_tz(owner).await?;
        let today = Utc::now().with_timezone(&tz).date_naive();
        let (facts, _) = self.facts(owner).await?;
        let held = self.achievements(owner).await?;
        let mut answers = Vec::new();
        for badge in chosen {
            let (current, period) = badges::progress_value(badge, &facts, today);
            let shape = badge.shape();
            let earned = held
                .iter()
                .filter(|a| {
                    a.badge_id == badge.id
                        && (a.period == period
                            || shape.period == "race"
                            || shape.period == "challenge")
                })
                .count();
            let tiers_earned = u32::try_from(earned.min(shape.tiers.len())).unwrap_or(0);
            let next = if matches!(shape.period, "race" | "challenge") {
                None
            } else {
                shape.tiers.get(earned).copied()
            };
            answers.push(proto::AchievementProgress {
                badge: Some(wire::badge_message(badge)),
                tiers_earned,
                current,
                next_threshold: next.unwrap_or(0.0),
                fraction: next.map_or(1.0, |n| (current / n).clamp(0.0, 1.0)),
                period,
            });
        }
        Ok(answers)
    }

    // ---- goals ----

    pub async fn set_goal(
        &self,
        owner: &str,
        metric: &'static str,
        period: &'static str,
        target: f64,
    ) -> Result<goal::Model, Error> {
        let txn = begin_write(&self.db).await?;
        let existing = goal::Entity::find()
            .filter(goal::Column::OwnerId.eq(owner))
            .filter(goal::Column::Metric.eq(metric))
            .filter(goal::Column::Period.eq(period))
            .one(&txn)
            .await?;
        let row = match existing {
            Some(existing) => {
                let mut active = goal::ActiveModel::from(existing);
                active.target = Set(target);
                sea_orm::ActiveModelTrait::update(active, &txn).await?
            }
            None => {
                let row = goal::Model {
                    id: Uuid::now_v7(),
                    owner_id: owner.to_owned(),
                    metric: metric.to_owned(),
                    period: period.to_owned(),
                    target,
                    created_at: wire::now(),
                };
                goal::Entity::insert(goal::ActiveModel::from(row.clone()))
                    .exec_without_returning(&txn)
                    .await?;
                row
            }
        };
        // A goal already met by the runs there are is met now (its event included).
        progress::refresh(&txn, &self.config, owner, &[]).await?;
        txn.commit().await?;
        self.wake();
        Ok(row)
    }

    pub async fn goals(&self, owner: &str) -> Result<Vec<goal::Model>, Error> {
        Ok(goal::Entity::find()
            .filter(goal::Column::OwnerId.eq(owner))
            .order_by_asc(goal::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    pub async fn delete_goal(&self, owner: &str, id: Uuid) -> Result<(), Error> {
        let deleted = goal::Entity::delete_many()
            .filter(goal::Column::Id.eq(id))
            .filter(goal::Column::OwnerId.eq(owner))
            .exec(&self.db)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(Error::GoalNotFound(id.to_string()));
        }
        crate::store::progress::goal_met::Entity::delete_many()
            .filter(crate::store::progress::goal_met::Column::GoalId.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    pub async fn goal_progress(
        &self,
        owner: &str,
        date: Option<NaiveDate>,
    ) -> Result<(Vec<GoalProgress>, String), Error> {
        let tz = self.runner_tz(owner).await?;
        let today = Utc::now().with_timezone(&tz).date_naive();
        let day = date.unwrap_or(today);
        let runs = progress::runner_runs(&self.db, owner).await?;
        let mut answers = Vec::new();
        for goal in self.goals(owner).await? {
            let (_, from, to) = progress::goal_period(&goal.period, day);
            let current = progress::goal_value(&goal, &runs, from, to);
            let days_left = if today >= to {
                0
            } else {
                u32::try_from((to - today.max(from)).num_days()).unwrap_or(0)
            };
            let met_now = current + 1e-9 >= goal.target;
            // Consecutive periods met, ending here (if met) or at the previous period.
            let mut streak = u32::from(met_now);
            let mut cursor = from - Duration::days(1);
            loop {
                let (_, f, t) = progress::goal_period(&goal.period, cursor);
                if progress::goal_value(&goal, &runs, f, t) + 1e-9 >= goal.target {
                    streak += 1;
                    cursor = f - Duration::days(1);
                } else {
                    break;
                }
            }
            let in_period = runs.iter().filter(|r| {
                let d = r.fact.local_start.date();
                d >= from && d < to
            });
            let (moving_s, distance_m) = in_period.fold((0.0, 0.0), |(m, d), r| {
                (m + r.fact.moving_s, d + r.fact.distance_m)
            });
            let elapsed_days = u32::try_from((today.min(to) - from).num_days().max(1)).unwrap_or(1);
            answers.push(GoalProgress {
                goal,
                from,
                to,
                current,
                days_left,
                streak,
                moving_s,
                distance_m,
                elapsed_days,
            });
        }
        Ok((answers, tz.name().to_owned()))
    }

    // ---- challenges ----

    async fn crew_role(&self, user: &str, crew: &str) -> Result<Option<String>, Error> {
        Ok(
            crew_member::Entity::find_by_id((crew.to_owned(), user.to_owned()))
                .one(&self.db)
                .await?
                .map(|m| m.role),
        )
    }

    pub async fn create_challenge(
        &self,
        caller: &str,
        is_admin: bool,
        new: NewChallenge,
    ) -> Result<challenge::Model, Error> {
        if new.crew_id.is_empty() {
            if !is_admin {
                return Err(Error::AdminRequired);
            }
        } else {
            match self.crew_role(caller, &new.crew_id).await?.as_deref() {
                Some("owner" | "admin") => {}
                Some(_) => return Err(Error::CrewAdminRequired),
                None => {
                    return Err(Error::invalid(
                        "challenge.crew_id",
                        "is not a crew of yours",
                    ));
                }
            }
        }
        let badge = self.config.badge_set.get(&new.badge_id);
        if badge.is_none_or(|b| b.kind() != "challenge_completed") {
            return Err(Error::invalid(
                "challenge.badge_id",
                "must name a challenge_completed badge",
            ));
        }
        let row = challenge::Model {
            id: Uuid::now_v7(),
            title: new.title,
            description: new.description,
            metric: new.metric.to_owned(),
            target: new.target,
            start_date: new.start.to_string(),
            end_date: new.end.to_string(),
            crew_id: new.crew_id,
            badge_id: new.badge_id,
            created_by: caller.to_owned(),
            created_at: wire::now(),
        };
        challenge::Entity::insert(challenge::ActiveModel::from(row.clone()))
            .exec_without_returning(&self.db)
            .await?;
        Ok(row)
    }

    /// The challenge if `viewer` may see it: a global one, or one of their crews'.
    pub async fn visible_challenge(
        &self,
        viewer: &str,
        id: Uuid,
    ) -> Result<challenge::Model, Error> {
        let row = challenge::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::ChallengeNotFound(id.to_string()))?;
        if row.crew_id.is_empty() || self.crew_role(viewer, &row.crew_id).await?.is_some() {
            Ok(row)
        } else {
            Err(Error::ChallengeNotFound(id.to_string()))
        }
    }

    pub async fn challenge_counts(&self, viewer: &str, id: Uuid) -> Result<(u32, bool), Error> {
        let count = participant::Entity::find()
            .filter(participant::Column::ChallengeId.eq(id))
            .count(&self.db)
            .await?;
        let joined = participant::Entity::find_by_id((id, viewer.to_owned()))
            .one(&self.db)
            .await?
            .is_some();
        Ok((u32::try_from(count).unwrap_or(u32::MAX), joined))
    }

    pub async fn list_challenges(
        &self,
        viewer: &str,
        include_finished: bool,
    ) -> Result<Vec<challenge::Model>, Error> {
        let crews: Vec<String> = crew_member::Entity::find()
            .select_only()
            .column(crew_member::Column::CrewId)
            .filter(crew_member::Column::UserId.eq(viewer))
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut scopes = crews;
        scopes.push(String::new());
        // The earliest local date anywhere (UTC-12) decides whether a window has ended.
        let today = (Utc::now() - Duration::hours(12)).date_naive().to_string();
        let mut select = challenge::Entity::find().filter(challenge::Column::CrewId.is_in(scopes));
        if !include_finished {
            select = select.filter(challenge::Column::EndDate.gte(today));
        }
        Ok(select
            .order_by_desc(challenge::Column::CreatedAt)
            .limit(200)
            .all(&self.db)
            .await?)
    }

    pub async fn join(&self, viewer: &str, id: Uuid) -> Result<challenge::Model, Error> {
        let row = self.visible_challenge(viewer, id).await?;
        let tz = self.runner_tz(viewer).await?;
        let today = Utc::now().with_timezone(&tz).date_naive().to_string();
        if row.end_date < today {
            return Err(Error::ChallengeFinished(id.to_string()));
        }
        let txn = begin_write(&self.db).await?;
        participant::Entity::insert(participant::ActiveModel {
            challenge_id: Set(id),
            user_id: Set(viewer.to_owned()),
            joined_at: Set(wire::now()),
            value: Set(0.0),
            reached_at: Set(None),
            completed_at: Set(None),
            completed_run_id: Set(None),
        })
        .on_conflict(
            OnConflict::columns([
                participant::Column::ChallengeId,
                participant::Column::UserId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        // Runs already inside the window count (and may complete it at once).
        progress::refresh(&txn, &self.config, viewer, &[]).await?;
        txn.commit().await?;
        self.wake();
        Ok(row)
    }

    pub async fn leave(&self, viewer: &str, id: Uuid) -> Result<(), Error> {
        self.visible_challenge(viewer, id).await?;
        participant::Entity::delete_by_id((id, viewer.to_owned()))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// The caller's participation and the challenge's leaderboard (value, then who reached it
    /// first).
    pub async fn challenge_board(
        &self,
        viewer: &str,
        id: Uuid,
        count: usize,
    ) -> Result<
        (
            Option<participant::Model>,
            Vec<boards::Ranked>,
            Option<boards::Ranked>,
        ),
        Error,
    > {
        let all = participant::Entity::find()
            .filter(participant::Column::ChallengeId.eq(id))
            .filter(participant::Column::Value.gt(0.0))
            .order_by_desc(participant::Column::Value)
            .order_by_asc(participant::Column::ReachedAt)
            .order_by_asc(participant::Column::UserId)
            .all(&self.db)
            .await?;
        let names = boards::display_names(
            &self.db,
            all.iter()
                .take(count)
                .map(|p| p.user_id.clone())
                .chain([viewer.to_owned()]),
        )
        .await?;
        let ranked = |i: usize, p: &participant::Model| boards::Ranked {
            rank: i as u64 + 1,
            runner_id: p.user_id.clone(),
            display_name: names.get(&p.user_id).cloned().unwrap_or_default(),
            value: crate::domain::periods::whole(p.value),
            reached_at: p.reached_at.unwrap_or(p.joined_at),
        };
        let top = all
            .iter()
            .take(count)
            .enumerate()
            .map(|(i, p)| ranked(i, p))
            .collect();
        let me = all
            .iter()
            .position(|p| p.user_id == viewer)
            .map(|i| ranked(i, &all[i]));
        let mine = participant::Entity::find_by_id((id, viewer.to_owned()))
            .one(&self.db)
            .await?;
        Ok((mine, top, me))
    }

    // ---- race results ----

    pub async fn race_results(
        &self,
        race_id: &str,
        category: Option<&str>,
    ) -> Result<
        (
            race::Model,
            Vec<(String, u32, String, Vec<proto::RaceResultEntry>)>,
        ),
        Error,
    > {
        let race = race::Entity::find_by_id(race_id.to_owned())
            .one(&self.db)
            .await?
            .ok_or_else(|| Error::RaceNotFound(race_id.to_owned()))?;
        let results = race_result::Entity::find()
            .filter(race_result::Column::RaceId.eq(race_id))
            .filter(race_result::Column::RunId.is_not_null())
            .all(&self.db)
            .await?;
        let opted_out: Vec<String> = preference::Entity::find()
            .select_only()
            .column(preference::Column::UserId)
            .filter(preference::Column::OptOut.eq(true))
            .filter(
                preference::Column::UserId.is_in(
                    results
                        .iter()
                        .map(|r| r.user_id.clone())
                        .collect::<Vec<_>>(),
                ),
            )
            .into_tuple()
            .all(&self.db)
            .await?;
        let names =
            boards::display_names(&self.db, results.iter().map(|r| r.user_id.clone())).await?;
        let bibs: HashMap<String, Option<i32>> = registration::Entity::find()
            .filter(registration::Column::RaceId.eq(race_id))
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| (r.registration_id, r.bib_number))
            .collect();
        let mut by_category: BTreeMap<String, Vec<&race_result::Model>> = BTreeMap::new();
        for result in &results {
            if !opted_out.contains(&result.user_id) {
                by_category
                    .entry(result.category_id.clone())
                    .or_default()
                    .push(result);
            }
        }
        let mut answer = Vec::new();
        for (id, distance, name) in progress::categories(&race) {
            if category.is_some_and(|c| c != id) {
                continue;
            }
            let mut entries = by_category.remove(&id).unwrap_or_default();
            entries.sort_by(|a, b| {
                a.elapsed_s
                    .unwrap_or(f64::MAX)
                    .total_cmp(&b.elapsed_s.unwrap_or(f64::MAX))
                    .then(a.linked_at.cmp(&b.linked_at))
            });
            let rows = entries
                .iter()
                .enumerate()
                .map(|(i, r)| proto::RaceResultEntry {
                    rank: u32::try_from(i + 1).unwrap_or(u32::MAX),
                    runner_id: r.user_id.clone(),
                    display_name: names.get(&r.user_id).cloned().unwrap_or_default(),
                    elapsed_time: r.elapsed_s.map(wire::duration),
                    run_id: r.run_id.map(|id| id.to_string()).unwrap_or_default(),
                    bib_number: bibs
                        .get(&r.registration_id)
                        .copied()
                        .flatten()
                        .and_then(|b| u32::try_from(b).ok()),
                })
                .collect();
            answer.push((id, distance, name, rows));
        }
        Ok((race, answer))
    }

    /// Links the caller's run as their result for a registration of theirs, or unlinks it.
    pub async fn link_result(
        &self,
        owner: &str,
        registration_id: &str,
        run_id: Option<Uuid>,
    ) -> Result<Option<proto::RaceResultLink>, Error> {
        let reg = registration::Entity::find_by_id(registration_id.to_owned())
            .one(&self.db)
            .await?
            .filter(|r| r.user_id == owner && r.status == "confirmed")
            .ok_or_else(|| Error::RegistrationNotFound(registration_id.to_owned()))?;
        let run = match run_id {
            Some(id) => Some(
                run::Entity::find_by_id(id)
                    .one(&self.db)
                    .await?
                    .filter(|r| r.owner_id == owner)
                    .ok_or_else(|| Error::RunNotFound(id.to_string()))?,
            ),
            None => None,
        };
        let txn = begin_write(&self.db).await?;
        progress::upsert_result(&txn, &reg, run_id, run.as_ref().map(|r| r.elapsed_s), true)
            .await?;
        crate::events::enqueue(
            &txn,
            owner,
            &proto::RaceResultLinked {
                owner_id: owner.to_owned(),
                registration_id: reg.registration_id.clone(),
                race_id: reg.race_id.clone(),
                run_id: run_id.map(|id| id.to_string()).unwrap_or_default(),
                elapsed_time: run.as_ref().map(|r| wire::duration(r.elapsed_s)),
                manual: true,
            },
        )
        .await?;
        progress::refresh(&txn, &self.config, owner, &[]).await?;
        txn.commit().await?;
        self.wake();
        let result = race_result::Entity::find_by_id(reg.registration_id.clone())
            .one(&self.db)
            .await?;
        let race = race::Entity::find_by_id(reg.race_id.clone())
            .one(&self.db)
            .await?;
        Ok(result.and_then(|r| wire::race_link(&r, race.as_ref())))
    }

    /// The year of the age groups of a board naming `day`.
    pub fn board_year(&self, kind: crate::domain::periods::PeriodKind, day: NaiveDate) -> i32 {
        match kind {
            crate::domain::periods::PeriodKind::AllTime => self.boards.today().year(),
            _ => day.year(),
        }
    }
}

/// The scope a request names, before the caller's own fills what it leaves out.
#[derive(Debug, Clone)]
pub enum ScopeKind {
    Everyone,
    AgeGroup(Option<&'static str>),
    Gender(Option<&'static str>),
    Crew(String),
}
