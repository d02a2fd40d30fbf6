//! `runmesh.run.v1.RankingService`: decode the request into domain values, call [`Rankings`],
//! encode the answer. No rules live here.

use std::sync::Arc;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use chrono::NaiveDate;
use runmesh_platform::auth::{Role, require_caller};
use runmesh_platform::validation::Violations;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::run::v1::ranking_service_server::RankingService;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::boards::BoardId;
use crate::domain::badges::DEFAULT_CHALLENGE_BADGE;
use crate::error::Error;
use crate::rankings::{MAX_CHALLENGE_DAYS, NewChallenge, Rankings, ScopeKind};
use crate::wire;

/// Board reads answer from one cache script; the rest in a few queries.
const RANKING_OBJECTIVE: Objective = Objective::new("run_ranking_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms100, ObjectivePercentile::P99);

pub struct RankingApi {
    rankings: Arc<Rankings>,
}

impl RankingApi {
    pub fn new(rankings: Arc<Rankings>) -> Self {
        Self { rankings }
    }

    async fn board(
        &self,
        viewer: &str,
        selector: Option<&proto::BoardSelector>,
    ) -> Result<BoardId, Error> {
        let selector = selector.cloned().unwrap_or_default();
        let mut violations = Violations::new();
        let period = proto::BoardPeriod::try_from(selector.period)
            .ok()
            .and_then(wire::board_period);
        if period.is_none() {
            violations.add("board.period", "must be week, month, year or all time");
        }
        let metric = proto::BoardMetric::try_from(selector.metric)
            .ok()
            .and_then(wire::board_metric);
        if metric.is_none() {
            violations.add(
                "board.metric",
                "must be distance, moving time, run count or elevation gain",
            );
        }
        let age_group = match proto::AgeGroup::try_from(selector.age_group) {
            Ok(group) => wire::age_group_code(group),
            Err(_) => {
                violations.add("board.age_group", "is not an age group");
                None
            }
        };
        let gender = match proto::BoardGender::try_from(selector.gender) {
            Ok(gender) => wire::board_gender_code(gender),
            Err(_) => {
                violations.add("board.gender", "is not a gender");
                None
            }
        };
        let scope = match proto::BoardScope::try_from(selector.scope) {
            Ok(proto::BoardScope::Everyone) => Some(ScopeKind::Everyone),
            Ok(proto::BoardScope::AgeGroup) => Some(ScopeKind::AgeGroup(age_group)),
            Ok(proto::BoardScope::Gender) => Some(ScopeKind::Gender(gender)),
            Ok(proto::BoardScope::Crew) => {
                if selector.crew_id.is_empty() {
                    violations.add("board.crew_id", "is required for a crew board");
                }
                Some(ScopeKind::Crew(selector.crew_id.clone()))
            }
            Ok(proto::BoardScope::Unspecified) | Err(_) => {
                violations.add("board.scope", "must be everyone, age group, gender or crew");
                None
            }
        };
        let day = if selector.date.is_empty() {
            Some(self.rankings.boards().today())
        } else {
            let parsed = NaiveDate::parse_from_str(&selector.date, "%Y-%m-%d").ok();
            if parsed.is_none() {
                violations.add("board.date", "must be a day like 2026-12-01");
            }
            parsed
        };
        match (period, metric, scope, day) {
            (Some(period), Some(metric), Some(scope), Some(day)) if violations.is_empty() => {
                let year = self.rankings.board_year(period, day);
                let scope = self.rankings.resolve_scope(viewer, scope, year).await?;
                Ok(BoardId {
                    period,
                    day,
                    metric,
                    scope,
                })
            }
            _ => Err(Error::InvalidInput(violations.into_vec())),
        }
    }
}

fn bounded(
    violations: &mut Violations,
    field: &str,
    value: i32,
    default: usize,
    max: usize,
) -> usize {
    match value {
        0 => default,
        v if v < 0 => {
            violations.add(field, "must not be negative");
            default
        }
        v => usize::try_from(v).unwrap_or(max).min(max),
    }
}

fn parse_day(violations: &mut Violations, field: &str, text: &str) -> Option<NaiveDate> {
    let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok();
    if parsed.is_none() {
        violations.add(field, "must be a day like 2026-12-01");
    }
    parsed
}

fn challenge_id(text: &str) -> Result<Uuid, Error> {
    if text.is_empty() {
        return Err(Error::invalid("challenge_id", "is required"));
    }
    Uuid::parse_str(text).map_err(|_| Error::ChallengeNotFound(text.to_owned()))
}

#[autometrics(objective = RANKING_OBJECTIVE, error_if = runmesh_platform::error::server_fault)]
#[tonic::async_trait]
impl RankingService for RankingApi {
    async fn get_leaderboard(
        &self,
        request: Request<proto::GetLeaderboardRequest>,
    ) -> Result<Response<proto::GetLeaderboardResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let count = bounded(&mut violations, "page_size", request.page_size, 20, 100);
        let around = bounded(&mut violations, "around", request.around, 0, 50);
        let offset = if request.offset < 0 {
            violations.add("offset", "must not be negative");
            0
        } else {
            usize::try_from(request.offset).unwrap_or(0)
        };
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let board = self.board(&caller.user_id, request.board.as_ref()).await?;
        let page = self
            .rankings
            .leaderboard(&caller.user_id, &board, offset, count, around)
            .await?;
        Ok(Response::new(wire::leaderboard(&page)))
    }

    async fn get_my_rank(
        &self,
        request: Request<proto::GetMyRankRequest>,
    ) -> Result<Response<proto::GetMyRankResponse>, Status> {
        let caller = require_caller(&request)?;
        let board = self
            .board(&caller.user_id, request.get_ref().board.as_ref())
            .await?;
        let page = self
            .rankings
            .leaderboard(&caller.user_id, &board, 0, 0, 0)
            .await?;
        Ok(Response::new(proto::GetMyRankResponse {
            me: page.me.as_ref().map(wire::board_entry),
            total_runners: page.total,
            time_zone: page.time_zone,
        }))
    }

    async fn set_ranking_preferences(
        &self,
        request: Request<proto::SetRankingPreferencesRequest>,
    ) -> Result<Response<proto::SetRankingPreferencesResponse>, Status> {
        let caller = require_caller(&request)?;
        let opt_out = self
            .rankings
            .set_opt_out(&caller.user_id, request.get_ref().opt_out)
            .await?;
        Ok(Response::new(proto::SetRankingPreferencesResponse {
            opt_out,
        }))
    }

    async fn list_badges(
        &self,
        request: Request<proto::ListBadgesRequest>,
    ) -> Result<Response<proto::ListBadgesResponse>, Status> {
        require_caller(&request)?;
        let set = &self.rankings.config().badge_set;
        Ok(Response::new(proto::ListBadgesResponse {
            badges: set.badges.iter().map(wire::badge_message).collect(),
            version: set.version,
        }))
    }

    async fn list_my_achievements(
        &self,
        request: Request<proto::ListMyAchievementsRequest>,
    ) -> Result<Response<proto::ListMyAchievementsResponse>, Status> {
        let caller = require_caller(&request)?;
        let set = &self.rankings.config().badge_set;
        let rows = self.rankings.achievements(&caller.user_id).await?;
        let achievements: Vec<proto::Achievement> = rows
            .iter()
            .map(|row| wire::achievement_message(row, set.get(&row.badge_id)))
            .collect();
        let total_points = achievements.iter().map(|a| a.points).sum();
        Ok(Response::new(proto::ListMyAchievementsResponse {
            achievements,
            total_points,
        }))
    }

    async fn get_achievement_progress(
        &self,
        request: Request<proto::GetAchievementProgressRequest>,
    ) -> Result<Response<proto::GetAchievementProgressResponse>, Status> {
        let caller = require_caller(&request)?;
        let badge_id = request.get_ref().badge_id.clone();
        let progress = self
            .rankings
            .achievement_progress(
                &caller.user_id,
                Some(badge_id.as_str()).filter(|id| !id.is_empty()),
            )
            .await?;
        Ok(Response::new(proto::GetAchievementProgressResponse {
            progress,
        }))
    }

    async fn set_goal(
        &self,
        request: Request<proto::SetGoalRequest>,
    ) -> Result<Response<proto::SetGoalResponse>, Status> {
        let caller = require_caller(&request)?;
        let goal = request
            .into_inner()
            .goal
            .ok_or_else(|| Error::invalid("goal", "is required"))?;
        let mut violations = Violations::new();
        let metric = proto::GoalMetric::try_from(goal.metric)
            .ok()
            .and_then(wire::goal_metric_code);
        if metric.is_none() {
            violations.add(
                "goal.metric",
                "must be distance, moving time, run count or elevation gain",
            );
        }
        let period = proto::GoalPeriod::try_from(goal.period)
            .ok()
            .and_then(wire::goal_period_code);
        if period.is_none() {
            violations.add("goal.period", "must be week, month or year");
        }
        if !(goal.target.is_finite() && goal.target > 0.0 && goal.target < 1e12) {
            violations.add("goal.target", "must be a positive number");
        }
        let (Some(metric), Some(period)) = (metric, period) else {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        };
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let row = self
            .rankings
            .set_goal(&caller.user_id, metric, period, goal.target)
            .await?;
        Ok(Response::new(proto::SetGoalResponse {
            goal: Some(wire::goal_message(&row)),
        }))
    }

    async fn list_goals(
        &self,
        request: Request<proto::ListGoalsRequest>,
    ) -> Result<Response<proto::ListGoalsResponse>, Status> {
        let caller = require_caller(&request)?;
        let goals = self.rankings.goals(&caller.user_id).await?;
        Ok(Response::new(proto::ListGoalsResponse {
            goals: goals.iter().map(wire::goal_message).collect(),
        }))
    }

    async fn delete_goal(
        &self,
        request: Request<proto::DeleteGoalRequest>,
    ) -> Result<Response<proto::DeleteGoalResponse>, Status> {
        let caller = require_caller(&request)?;
        let text = &request.get_ref().goal_id;
        if text.is_empty() {
            return Err(Error::invalid("goal_id", "is required").into());
        }
        let id = Uuid::parse_str(text).map_err(|_| Error::GoalNotFound(text.clone()))?;
        self.rankings.delete_goal(&caller.user_id, id).await?;
        Ok(Response::new(proto::DeleteGoalResponse {}))
    }

    async fn get_goal_progress(
        &self,
        request: Request<proto::GetGoalProgressRequest>,
    ) -> Result<Response<proto::GetGoalProgressResponse>, Status> {
        let caller = require_caller(&request)?;
        let mut violations = Violations::new();
        let date = if request.get_ref().date.is_empty() {
            None
        } else {
            parse_day(&mut violations, "date", &request.get_ref().date)
        };
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let (progress, time_zone) = self.rankings.goal_progress(&caller.user_id, date).await?;
        let progress = progress
            .into_iter()
            .map(|p| {
                let remaining = (p.goal.target - p.current).max(0.0);
                let period_days = (p.to - p.from).num_days().max(1);
                #[allow(clippy::cast_precision_loss)]
                let projected = p.current / f64::from(p.elapsed_days) * period_days as f64;
                proto::GoalProgress {
                    goal: Some(wire::goal_message(&p.goal)),
                    from_date: p.from.to_string(),
                    to_date: p.to.to_string(),
                    current: p.current,
                    fraction: (p.current / p.goal.target).clamp(0.0, 1.0),
                    met: remaining <= 1e-9,
                    days_left: p.days_left,
                    required_per_day: if p.days_left == 0 {
                        remaining
                    } else {
                        remaining / f64::from(p.days_left)
                    },
                    projected,
                    pace_seconds_per_km: if p.goal.metric == "distance" && p.distance_m > 0.0 {
                        p.moving_s / p.distance_m * 1_000.0
                    } else {
                        0.0
                    },
                    streak: p.streak,
                    time_zone: time_zone.clone(),
                }
            })
            .collect();
        Ok(Response::new(proto::GetGoalProgressResponse { progress }))
    }

    async fn create_challenge(
        &self,
        request: Request<proto::CreateChallengeRequest>,
    ) -> Result<Response<proto::CreateChallengeResponse>, Status> {
        let caller = require_caller(&request)?;
        let challenge = request
            .into_inner()
            .challenge
            .ok_or_else(|| Error::invalid("challenge", "is required"))?;
        let mut violations = Violations::new();
        let title = challenge.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 {
            violations.add("challenge.title", "must be 1-200 characters");
        }
        if challenge.description.chars().count() > 10_000 {
            violations.add("challenge.description", "at most 10000 characters");
        }
        let metric = proto::ChallengeMetric::try_from(challenge.metric)
            .ok()
            .and_then(wire::challenge_metric_code);
        if metric.is_none() {
            violations.add(
                "challenge.metric",
                "must be distance, moving time, run count or elevation gain",
            );
        }
        if !(challenge.target.is_finite() && challenge.target > 0.0 && challenge.target < 1e12) {
            violations.add("challenge.target", "must be a positive number");
        }
        let start = parse_day(
            &mut violations,
            "challenge.start_date",
            &challenge.start_date,
        );
        let end = parse_day(&mut violations, "challenge.end_date", &challenge.end_date);
        if let (Some(start), Some(end)) = (start, end) {
            if end < start {
                violations.add("challenge.end_date", "must not be before start_date");
            } else if (end - start).num_days() + 1 > MAX_CHALLENGE_DAYS {
                violations.add("challenge.end_date", "the window may last at most a year");
            }
        }
        match (metric, start, end) {
            (Some(metric), Some(start), Some(end)) if violations.is_empty() => {
                let row = self
                    .rankings
                    .create_challenge(
                        &caller.user_id,
                        caller.has_role(Role::Admin),
                        NewChallenge {
                            title,
                            description: challenge.description,
                            metric,
                            target: challenge.target,
                            start,
                            end,
                            crew_id: challenge.crew_id,
                            badge_id: if challenge.badge_id.is_empty() {
                                DEFAULT_CHALLENGE_BADGE.to_owned()
                            } else {
                                challenge.badge_id
                            },
                        },
                    )
                    .await?;
                Ok(Response::new(proto::CreateChallengeResponse {
                    challenge: Some(wire::challenge_message(&row, 0, false)),
                }))
            }
            _ => Err(Error::InvalidInput(violations.into_vec()).into()),
        }
    }

    async fn list_challenges(
        &self,
        request: Request<proto::ListChallengesRequest>,
    ) -> Result<Response<proto::ListChallengesResponse>, Status> {
        let caller = require_caller(&request)?;
        let rows = self
            .rankings
            .list_challenges(&caller.user_id, request.get_ref().include_finished)
            .await?;
        let mut challenges = Vec::new();
        for row in &rows {
            let (count, joined) = self
                .rankings
                .challenge_counts(&caller.user_id, row.id)
                .await?;
            challenges.push(wire::challenge_message(row, count, joined));
        }
        Ok(Response::new(proto::ListChallengesResponse { challenges }))
    }

    async fn join_challenge(
        &self,
        request: Request<proto::JoinChallengeRequest>,
    ) -> Result<Response<proto::JoinChallengeResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = challenge_id(&request.get_ref().challenge_id)?;
        let row = self.rankings.join(&caller.user_id, id).await?;
        let (count, joined) = self.rankings.challenge_counts(&caller.user_id, id).await?;
        Ok(Response::new(proto::JoinChallengeResponse {
            challenge: Some(wire::challenge_message(&row, count, joined)),
        }))
    }

    async fn leave_challenge(
        &self,
        request: Request<proto::LeaveChallengeRequest>,
    ) -> Result<Response<proto::LeaveChallengeResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = challenge_id(&request.get_ref().challenge_id)?;
        self.rankings.leave(&caller.user_id, id).await?;
        Ok(Response::new(proto::LeaveChallengeResponse {}))
    }

    async fn get_challenge_progress(
        &self,
        request: Request<proto::GetChallengeProgressRequest>,
    ) -> Result<Response<proto::GetChallengeProgressResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = challenge_id(&request.get_ref().challenge_id)?;
        let mut violations = Violations::new();
        let count = bounded(
            &mut violations,
            "page_size",
            request.get_ref().page_size,
            20,
            100,
        );
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let row = self.rankings.visible_challenge(&caller.user_id, id).await?;
        let (count_all, joined) = self.rankings.challenge_counts(&caller.user_id, id).await?;
        let (mine, top, me) = self
            .rankings
            .challenge_board(&caller.user_id, id, count)
            .await?;
        let current = mine.as_ref().map_or(0.0, |m| m.value);
        Ok(Response::new(proto::GetChallengeProgressResponse {
            challenge: Some(wire::challenge_message(&row, count_all, joined)),
            current,
            fraction: (current / row.target).clamp(0.0, 1.0),
            completed: mine.as_ref().is_some_and(|m| m.completed_at.is_some()),
            completed_at: mine
                .as_ref()
                .and_then(|m| m.completed_at)
                .map(wire::timestamp),
            leaderboard: top.iter().map(wire::board_entry).collect(),
            me: me.as_ref().map(wire::board_entry),
        }))
    }

    async fn get_race_results(
        &self,
        request: Request<proto::GetRaceResultsRequest>,
    ) -> Result<Response<proto::GetRaceResultsResponse>, Status> {
        require_caller(&request)?;
        let request = request.into_inner();
        if request.race_id.is_empty() {
            return Err(Error::invalid("race_id", "is required").into());
        }
        let category = Some(request.category_id.as_str()).filter(|c| !c.is_empty());
        let (race, categories) = self
            .rankings
            .race_results(&request.race_id, category)
            .await?;
        Ok(Response::new(proto::GetRaceResultsResponse {
            race_id: race.race_id.clone(),
            race_name: race.name.clone(),
            starts_at: Some(wire::timestamp(race.starts_at)),
            categories: categories
                .into_iter()
                .map(
                    |(category_id, distance_meters, name, results)| proto::RaceCategoryResults {
                        category_id,
                        name,
                        distance_meters,
                        results,
                    },
                )
                .collect(),
        }))
    }

    async fn link_race_result(
        &self,
        request: Request<proto::LinkRaceResultRequest>,
    ) -> Result<Response<proto::LinkRaceResultResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        if request.registration_id.is_empty() {
            return Err(Error::invalid("registration_id", "is required").into());
        }
        let run_id = if request.run_id.is_empty() {
            None
        } else {
            Some(
                Uuid::parse_str(&request.run_id)
                    .map_err(|_| Error::RunNotFound(request.run_id.clone()))?,
            )
        };
        let link = self
            .rankings
            .link_result(&caller.user_id, &request.registration_id, run_id)
            .await?;
        Ok(Response::new(proto::LinkRaceResultResponse { link }))
    }
}
