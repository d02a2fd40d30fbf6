//! Rankings, badges, goals, challenges, race results and crew visibility against a spawned
//! service, on PostgreSQL + Redis and on SQLite + the in-memory cache: boards and badges after a
//! few hundred runs from many runners match a brute-force computation from the run records, also
//! after the cache lost its boards and after runs are deleted; redelivered events award nothing
//! twice; the race-result link from svc-race's events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use runmesh_platform::events::new_envelope;
use runmesh_proto::runmesh::race::v1 as race_proto;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::social::v1 as social_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use runmesh_svc_run::domain::badges::{self, BadgeSet, RunFact, RunnerFacts};
use runmesh_svc_run::domain::periods::{self, PeriodKind};
use sea_orm::TransactionTrait;
use tonic::Code;

use support::{ALICE, BOB, Backend, Harness, assert_status, seconds, timestamp, violated_fields};

const SEOUL: Tz = chrono_tz::Asia::Seoul;

fn run_at(start: DateTime<Utc>, km: f64, minutes: i64, public: bool) -> proto::Run {
    proto::Run {
        sport: proto::Sport::Run.into(),
        start_time: Some(timestamp(start)),
        time_zone: "Asia/Seoul".to_owned(),
        elapsed_time: Some(seconds(minutes * 60)),
        distance_meters: km * 1_000.0,
        elevation_gain_meters: Some(km * 3.0),
        visibility: if public {
            proto::Visibility::Public
        } else {
            proto::Visibility::Private
        }
        .into(),
        ..Default::default()
    }
}

async fn publish(h: &Harness, source: &str, aggregate: &str, event: &impl prost::Name) {
    let handler = h.module.events_handler();
    let txn = h.db.begin().await.unwrap();
    handler
        .handle(&txn, &new_envelope(source, aggregate, event))
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

async fn profile(h: &Harness, user: &str, birth_year: u32, gender: user_proto::Gender) {
    let event = user_proto::UserProfileUpdated {
        user: Some(user_proto::User {
            id: user.to_owned(),
            display_name: format!("Runner {user}"),
            time_zone: "Asia/Seoul".to_owned(),
            birth_year: Some(birth_year),
            gender: gender.into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    publish(h, "svc-user", user, &event).await;
}

fn selector(
    period: proto::BoardPeriod,
    scope: proto::BoardScope,
    day: NaiveDate,
) -> proto::BoardSelector {
    proto::BoardSelector {
        period: period.into(),
        metric: proto::BoardMetric::Distance.into(),
        scope: scope.into(),
        date: day.to_string(),
        ..Default::default()
    }
}

async fn board(
    h: &Harness,
    viewer: &str,
    board: proto::BoardSelector,
) -> proto::GetLeaderboardResponse {
    h.ranking()
        .get_leaderboard(h.as_runner(
            proto::GetLeaderboardRequest {
                board: Some(board),
                page_size: 100,
                offset: 0,
                around: 2,
            },
            viewer,
        ))
        .await
        .unwrap()
        .into_inner()
}

/// What we recorded, for the brute force.
#[derive(Debug, Clone)]
struct Recorded {
    id: String,
    owner: String,
    start: DateTime<Utc>,
    km: f64,
    minutes: i64,
    public: bool,
}

/// The distance board of a period by brute force: (runner, metres), in board order.
fn brute_force(
    runs: &[Recorded],
    kind: PeriodKind,
    day: NaiveDate,
    include: impl Fn(&str) -> bool,
) -> Vec<(String, u64)> {
    let (_, bounds) = periods::period_of(kind, day);
    let start = bounds.map(|(from, _)| {
        use chrono::TimeZone;
        SEOUL
            .from_local_datetime(&from.and_hms_opt(0, 0, 0).unwrap())
            .unwrap()
            .with_timezone(&Utc)
    });
    let mut totals: BTreeMap<String, (f64, DateTime<Utc>)> = BTreeMap::new();
    for run in runs.iter().filter(|r| r.public && include(&r.owner)) {
        let local = run.start.with_timezone(&SEOUL).date_naive();
        if bounds.is_some_and(|(from, to)| local < from || local >= to) {
            continue;
        }
        let end = run.start + Duration::minutes(run.minutes);
        let entry = totals.entry(run.owner.clone()).or_insert((0.0, end));
        entry.0 += run.km * 1_000.0;
        entry.1 = entry.1.max(end);
    }
    let mut ranked: Vec<(String, f64, u64)> = totals
        .into_iter()
        .map(|(owner, (metres, reached))| {
            let value = periods::whole(metres);
            (
                owner,
                periods::score(value, periods::tick(reached, start)),
                value,
            )
        })
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    ranked.into_iter().map(|(o, _, v)| (o, v)).collect()
}

fn shown(response: &proto::GetLeaderboardResponse) -> Vec<(String, u64)> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    response
        .entries
        .iter()
        .map(|e| (e.runner_id.clone(), e.value as u64))
        .collect()
}

async fn forget_boards(h: &Harness, day: NaiveDate) {
    for kind in PeriodKind::ALL {
        let (key, _) = periods::period_of(kind, day);
        h.cache.delete(&format!("lb:{key}:ready")).await.unwrap();
        h.cache.delete(&format!("lb:{key}:d:all")).await.unwrap();
    }
}

async fn boards_and_badges_match_a_brute_force(backend: Backend) {
    let h = Harness::start(backend).await;
    let now = Utc::now();
    let day = (now - Duration::days(3)).with_timezone(&SEOUL).date_naive();
    let runners: Vec<String> = (0..25).map(|i| format!("runner-{i:02}")).collect();
    for (i, runner) in runners.iter().enumerate() {
        let gender = if i % 2 == 0 {
            user_proto::Gender::Female
        } else {
            user_proto::Gender::Male
        };
        profile(&h, runner, 1980 + u32::try_from(i).unwrap(), gender).await;
    }
    let mut recorded = Vec::new();
    let mut seed: u64 = 7;
    let mut next = |modulo: u64| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % modulo
    };
    for round in 0..10 {
        for runner in &runners {
            let hours = i64::try_from(next(24 * 20)).unwrap() + 2;
            let start = now - Duration::hours(hours) - Duration::minutes(round);
            // Equal distances on purpose: ties decided by who reached them first.
            let km = [5.0, 10.0, 7.5, 21.1, 3.0][usize::try_from(next(5)).unwrap()];
            #[allow(clippy::cast_possible_truncation)]
            let minutes = (km * 5.0) as i64 + i64::try_from(next(30)).unwrap();
            let public = next(5) != 0;
            let run = h
                .create(runner, run_at(start, km, minutes, public))
                .await
                .unwrap();
            recorded.push(Recorded {
                id: run.run_id,
                owner: runner.clone(),
                start,
                km,
                minutes,
                public,
            });
        }
    }
    assert_eq!(recorded.len(), 250);

    let check = |recorded: Vec<Recorded>| {
        let h = &h;
        async move {
            for (period, kind) in [
                (proto::BoardPeriod::Week, PeriodKind::Week),
                (proto::BoardPeriod::Month, PeriodKind::Month),
                (proto::BoardPeriod::AllTime, PeriodKind::AllTime),
            ] {
                let answer = board(
                    h,
                    &runners_first(&recorded),
                    selector(period, proto::BoardScope::Everyone, day),
                )
                .await;
                let expected = brute_force(&recorded, kind, day, |_| true);
                assert_eq!(shown(&answer), expected, "{period:?}");
                assert_eq!(answer.time_zone, "Asia/Seoul");
                assert_eq!(answer.total_runners, expected.len() as u64);
                if let Some(me) = &answer.me {
                    let position = expected
                        .iter()
                        .position(|(o, _)| *o == me.runner_id)
                        .unwrap();
                    assert_eq!(me.rank, position as u64 + 1);
                    assert!(answer.around_me.iter().any(|e| e.runner_id == me.runner_id));
                }
            }
            // Women's board: the even runners.
            let women = board(
                h,
                "runner-00",
                proto::BoardSelector {
                    gender: proto::BoardGender::Female.into(),
                    ..selector(proto::BoardPeriod::AllTime, proto::BoardScope::Gender, day)
                },
            )
            .await;
            let expected = brute_force(&recorded, PeriodKind::AllTime, day, |o| {
                o[7..].parse::<u32>().unwrap() % 2 == 0
            });
            assert_eq!(shown(&women), expected);
        }
    };
    check(recorded.clone()).await;

    // The cache loses its boards: the next reader rebuilds them from the database.
    forget_boards(&h, day).await;
    check(recorded.clone()).await;

    // Deleting runs moves the values at once; so does making one private.
    for gone in recorded
        .iter()
        .filter(|r| r.owner == "runner-03" || r.owner == "runner-10")
        .take(6)
    {
        h.client()
            .delete_run(h.as_runner(
                proto::DeleteRunRequest {
                    run_id: gone.id.clone(),
                },
                &gone.owner,
            ))
            .await
            .unwrap();
    }
    let deleted: Vec<String> = recorded
        .iter()
        .filter(|r| r.owner == "runner-03" || r.owner == "runner-10")
        .take(6)
        .map(|r| r.id.clone())
        .collect();
    recorded.retain(|r| !deleted.contains(&r.id));
    let private = recorded.iter_mut().find(|r| r.public).unwrap();
    h.set_visibility(&private.owner, &private.id, proto::Visibility::Private)
        .await;
    private.public = false;
    check(recorded.clone()).await;
    forget_boards(&h, day).await;
    check(recorded.clone()).await;

    // Badges: exactly what the rules answer over each runner's remaining runs.
    let set = BadgeSet::default();
    for runner in &runners {
        let facts = RunnerFacts {
            runs: recorded
                .iter()
                .filter(|r| r.owner == *runner)
                .map(|r| RunFact {
                    id: r.id.parse().unwrap(),
                    start: r.start,
                    local_start: r.start.with_timezone(&SEOUL).naive_local(),
                    distance_m: r.km * 1_000.0,
                    moving_s: r.minutes as f64 * 60.0,
                    elapsed_s: r.minutes as f64 * 60.0,
                    elevation_m: r.km * 3.0,
                })
                .collect(),
            ..Default::default()
        };
        // The run kept is the one recorded when the badge was awarded (a later-recorded earlier
        // run does not take it over): any of the runner's remaining runs.
        let mut expected: Vec<(String, u32, String)> = badges::evaluate(&set, &facts)
            .into_iter()
            .map(|e| (e.badge_id, e.tier, e.period))
            .collect();
        expected.sort();
        let mine = h
            .ranking()
            .list_my_achievements(h.as_runner(proto::ListMyAchievementsRequest {}, runner))
            .await
            .unwrap()
            .into_inner();
        for achievement in &mine.achievements {
            assert!(
                recorded
                    .iter()
                    .any(|r| r.owner == *runner && r.id == achievement.run_id),
                "{achievement:?}"
            );
        }
        let mut got: Vec<(String, u32, String)> = mine
            .achievements
            .iter()
            .map(|a| (a.badge_id.clone(), a.tier, a.period.clone()))
            .collect();
        got.sort();
        assert_eq!(got, expected, "{runner}");
        assert_eq!(
            mine.total_points,
            mine.achievements.iter().map(|a| a.points).sum::<u32>()
        );
    }
    // Every unlock has its event; withdrawals too.
    let types = h.outbox_types().await;
    assert!(types.iter().any(|t| t.ends_with("AchievementUnlocked")));
}

/// Some runner of the recorded ones, as the viewer.
fn runners_first(recorded: &[Recorded]) -> String {
    recorded
        .iter()
        .find(|r| r.public)
        .map(|r| r.owner.clone())
        .unwrap()
}

async fn bad_board_requests_name_the_field(backend: Backend) {
    let h = Harness::start(backend).await;
    let status = h
        .ranking()
        .get_leaderboard(h.as_runner(
            proto::GetLeaderboardRequest {
                board: Some(proto::BoardSelector {
                    period: 42,
                    metric: proto::BoardMetric::Distance.into(),
                    scope: 0,
                    ..Default::default()
                }),
                ..Default::default()
            },
            ALICE,
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(
        violated_fields(&status),
        vec!["board.period", "board.scope"]
    );

    // Opting out leaves every board.
    let start = Utc::now() - Duration::hours(2);
    h.create(ALICE, run_at(start, 10.0, 50, true))
        .await
        .unwrap();
    let day = Utc::now().with_timezone(&SEOUL).date_naive();
    let all = selector(
        proto::BoardPeriod::AllTime,
        proto::BoardScope::Everyone,
        day,
    );
    assert_eq!(board(&h, BOB, all.clone()).await.entries.len(), 1);
    h.ranking()
        .set_ranking_preferences(
            h.as_runner(proto::SetRankingPreferencesRequest { opt_out: true }, ALICE),
        )
        .await
        .unwrap();
    assert!(board(&h, BOB, all.clone()).await.entries.is_empty());
    forget_boards(&h, day).await;
    assert!(board(&h, BOB, all).await.entries.is_empty());
}

async fn challenges_complete_once_with_their_badge(backend: Backend) {
    let h = Harness::start(backend).await;
    let today = Utc::now().with_timezone(&SEOUL).date_naive();
    let create = |challenge: proto::Challenge, user: &str, roles: &[&str]| {
        let request = h.as_role(
            proto::CreateChallengeRequest {
                challenge: Some(challenge),
            },
            user,
            roles,
        );
        let mut client = h.ranking();
        async move { client.create_challenge(request).await }
    };
    let base = proto::Challenge {
        title: "December 50K".to_owned(),
        metric: proto::ChallengeMetric::Distance.into(),
        target: 50_000.0,
        start_date: (today - Duration::days(10)).to_string(),
        end_date: (today + Duration::days(20)).to_string(),
        ..Default::default()
    };
    // Only admins create global challenges; windows are checked.
    let status = create(base.clone(), ALICE, &["runner"]).await.unwrap_err();
    assert_status(&status, Code::PermissionDenied, "ADMIN_REQUIRED");
    let backwards = proto::Challenge {
        end_date: (today - Duration::days(20)).to_string(),
        ..base.clone()
    };
    let status = create(backwards, "admin", &["admin"]).await.unwrap_err();
    assert_eq!(violated_fields(&status), vec!["challenge.end_date"]);
    let too_long = proto::Challenge {
        end_date: (today + Duration::days(400)).to_string(),
        ..base.clone()
    };
    let status = create(too_long, "admin", &["admin"]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);

    let challenge = create(base.clone(), "admin", &["admin"])
        .await
        .unwrap()
        .into_inner()
        .challenge
        .unwrap();
    // A run before joining, inside the window, counts.
    h.create(
        ALICE,
        run_at(Utc::now() - Duration::days(2), 30.0, 180, false),
    )
    .await
    .unwrap();
    h.ranking()
        .join_challenge(h.as_runner(
            proto::JoinChallengeRequest {
                challenge_id: challenge.challenge_id.clone(),
            },
            ALICE,
        ))
        .await
        .unwrap();
    h.create(
        ALICE,
        run_at(Utc::now() - Duration::days(1), 25.0, 150, false),
    )
    .await
    .unwrap();
    let progress = h
        .ranking()
        .get_challenge_progress(h.as_runner(
            proto::GetChallengeProgressRequest {
                challenge_id: challenge.challenge_id.clone(),
                page_size: 10,
            },
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(progress.completed);
    assert_eq!(progress.current, 55_000.0);
    assert_eq!(progress.leaderboard.len(), 1);
    assert_eq!(progress.me.unwrap().rank, 1);
    let completed = h
        .outbox_types()
        .await
        .iter()
        .filter(|t| t.ends_with("ChallengeCompleted"))
        .count();
    assert_eq!(completed, 1);
    let mine = h
        .ranking()
        .list_my_achievements(h.as_runner(proto::ListMyAchievementsRequest {}, ALICE))
        .await
        .unwrap()
        .into_inner();
    assert!(
        mine.achievements
            .iter()
            .any(|a| a.badge_id == "challenge_finisher" && a.period == challenge.challenge_id)
    );

    // A finished challenge cannot be joined.
    let finished = create(
        proto::Challenge {
            start_date: (today - Duration::days(30)).to_string(),
            end_date: (today - Duration::days(5)).to_string(),
            ..base.clone()
        },
        "admin",
        &["admin"],
    )
    .await
    .unwrap()
    .into_inner()
    .challenge
    .unwrap();
    let status = h
        .ranking()
        .join_challenge(h.as_runner(
            proto::JoinChallengeRequest {
                challenge_id: finished.challenge_id,
            },
            BOB,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "CHALLENGE_FINISHED");

    // Crew challenges: by the crew's admins, invisible to other crews.
    for (crew, user, role) in [
        ("crew-a", ALICE, social_proto::CrewEventRole::Admin),
        ("crew-a", "carol", social_proto::CrewEventRole::Member),
        ("crew-b", BOB, social_proto::CrewEventRole::Owner),
    ] {
        let joined = social_proto::CrewMemberJoined {
            crew_id: crew.to_owned(),
            user_id: user.to_owned(),
            role: role.into(),
            joined_at: None,
        };
        publish(&h, "svc-social", crew, &joined).await;
    }
    let crew_challenge = proto::Challenge {
        crew_id: "crew-a".to_owned(),
        ..base.clone()
    };
    let status = create(crew_challenge.clone(), "carol", &["runner"])
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "CREW_ADMIN_REQUIRED");
    let crew_challenge = create(crew_challenge, ALICE, &["runner"])
        .await
        .unwrap()
        .into_inner()
        .challenge
        .unwrap();
    let status = h
        .ranking()
        .join_challenge(h.as_runner(
            proto::JoinChallengeRequest {
                challenge_id: crew_challenge.challenge_id.clone(),
            },
            BOB,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "CHALLENGE_NOT_FOUND");
    let listed = h
        .ranking()
        .list_challenges(h.as_runner(proto::ListChallengesRequest::default(), "carol"))
        .await
        .unwrap()
        .into_inner()
        .challenges;
    assert_eq!(listed.len(), 2);

    // CREWS runs: visible to crew-mates only.
    let run = h
        .create(
            ALICE,
            proto::Run {
                visibility: proto::Visibility::Crews.into(),
                ..run_at(Utc::now() - Duration::hours(3), 5.0, 30, false)
            },
        )
        .await
        .unwrap();
    assert!(h.get("carol", &run.run_id).await.is_ok());
    assert_status(
        &h.get(BOB, &run.run_id).await.unwrap_err(),
        Code::NotFound,
        "RUN_NOT_FOUND",
    );
    let left = social_proto::CrewMemberLeft {
        crew_id: "crew-a".to_owned(),
        user_id: "carol".to_owned(),
        reason: social_proto::CrewLeaveReason::Left.into(),
        left_at: None,
    };
    publish(&h, "svc-social", "crew-a", &left).await;
    assert!(h.get("carol", &run.run_id).await.is_err());
}

async fn goals_are_met_once_per_period(backend: Backend) {
    let h = Harness::start(backend).await;
    let goal = h
        .ranking()
        .set_goal(h.as_runner(
            proto::SetGoalRequest {
                goal: Some(proto::Goal {
                    metric: proto::GoalMetric::RunCount.into(),
                    period: proto::GoalPeriod::Year.into(),
                    target: 2.0,
                    ..Default::default()
                }),
            },
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner()
        .goal
        .unwrap();
    let status = h
        .ranking()
        .set_goal(h.as_runner(
            proto::SetGoalRequest {
                goal: Some(proto::Goal::default()),
            },
            ALICE,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        vec!["goal.metric", "goal.period", "goal.target"]
    );
    let now = Utc::now();
    for hours in [5, 4, 3] {
        h.create(ALICE, run_at(now - Duration::hours(hours), 5.0, 30, false))
            .await
            .unwrap();
    }
    let met = h
        .outbox_types()
        .await
        .iter()
        .filter(|t| t.ends_with("GoalMet"))
        .count();
    assert_eq!(met, 1);
    let progress = h
        .ranking()
        .get_goal_progress(h.as_runner(proto::GetGoalProgressRequest::default(), ALICE))
        .await
        .unwrap()
        .into_inner()
        .progress;
    assert_eq!(progress.len(), 1);
    assert!(progress[0].met);
    assert_eq!(progress[0].current, 3.0);
    assert!(progress[0].streak >= 1);
    h.ranking()
        .delete_goal(h.as_runner(
            proto::DeleteGoalRequest {
                goal_id: goal.goal_id.clone(),
            },
            ALICE,
        ))
        .await
        .unwrap();
    let status = h
        .ranking()
        .delete_goal(h.as_runner(
            proto::DeleteGoalRequest {
                goal_id: goal.goal_id,
            },
            ALICE,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "GOAL_NOT_FOUND");
}

async fn race_results_link_from_race_events_once(backend: Backend) {
    let h = Harness::start(backend).await;
    let race_day = Utc::now() - Duration::days(2);
    let race = race_proto::Race {
        race_id: "race-1".to_owned(),
        name: "Seoul Half".to_owned(),
        starts_at: Some(timestamp(race_day)),
        categories: vec![race_proto::Category {
            category_id: "half".to_owned(),
            name: "Half".to_owned(),
            distance_meters: 21_097,
            ..Default::default()
        }],
        ..Default::default()
    };
    publish(
        &h,
        "svc-race",
        "race-1",
        &race_proto::RacePublished { race: Some(race) },
    )
    .await;
    // The run first, the confirmation after: linked all the same.
    let run = h
        .create(
            ALICE,
            run_at(race_day + Duration::minutes(5), 21.3, 110, false),
        )
        .await
        .unwrap();
    h.create(
        ALICE,
        run_at(race_day - Duration::days(1), 21.1, 120, false),
    )
    .await
    .unwrap();
    let confirmed = race_proto::RegistrationConfirmed {
        registration: Some(race_proto::Registration {
            registration_id: "reg-1".to_owned(),
            race_id: "race-1".to_owned(),
            category_id: "half".to_owned(),
            user_id: ALICE.to_owned(),
            status: race_proto::RegistrationStatus::Confirmed.into(),
            bib_number: Some(1234),
            ..Default::default()
        }),
    };
    let unlocked = |types: Vec<String>| {
        types
            .iter()
            .filter(|t| t.ends_with("AchievementUnlocked"))
            .count()
    };
    publish(&h, "svc-race", "race-1", &confirmed).await;
    let after_first = unlocked(h.outbox_types().await);
    // Redelivered (a consumer killed before it stored its offset): nothing twice.
    publish(&h, "svc-race", "race-1", &confirmed).await;
    publish(&h, "svc-race", "race-1", &confirmed).await;
    assert_eq!(unlocked(h.outbox_types().await), after_first);
    assert_eq!(
        h.outbox_types()
            .await
            .iter()
            .filter(|t| t.ends_with("RaceResultLinked"))
            .count(),
        1
    );

    let linked = h
        .get(ALICE, &run.run_id)
        .await
        .unwrap()
        .race_result
        .unwrap();
    assert_eq!(linked.race_id, "race-1");
    assert_eq!(linked.registration_id, "reg-1");
    let results = h
        .ranking()
        .get_race_results(h.as_runner(
            proto::GetRaceResultsRequest {
                race_id: "race-1".to_owned(),
                ..Default::default()
            },
            BOB,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(results.categories[0].results.len(), 1);
    assert_eq!(results.categories[0].results[0].run_id, run.run_id);
    assert_eq!(
        results.categories[0].results[0].elapsed_time,
        Some(seconds(110 * 60))
    );
    assert_eq!(results.categories[0].results[0].bib_number, Some(1234));
    let mine = h
        .ranking()
        .list_my_achievements(h.as_runner(proto::ListMyAchievementsRequest {}, ALICE))
        .await
        .unwrap()
        .into_inner();
    assert!(
        mine.achievements
            .iter()
            .any(|a| a.badge_id == "race_finisher" && a.period == "race-1")
    );

    // Unlinking sticks (and withdraws the finisher badge); another runner cannot link.
    let status = h
        .ranking()
        .link_race_result(h.as_runner(
            proto::LinkRaceResultRequest {
                registration_id: "reg-1".to_owned(),
                run_id: String::new(),
            },
            BOB,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "REGISTRATION_NOT_FOUND");
    h.ranking()
        .link_race_result(h.as_runner(
            proto::LinkRaceResultRequest {
                registration_id: "reg-1".to_owned(),
                run_id: String::new(),
            },
            ALICE,
        ))
        .await
        .unwrap();
    publish(&h, "svc-race", "race-1", &confirmed).await;
    assert!(
        h.get(ALICE, &run.run_id)
            .await
            .unwrap()
            .race_result
            .is_none()
    );
    let results = h
        .ranking()
        .get_race_results(h.as_runner(
            proto::GetRaceResultsRequest {
                race_id: "race-1".to_owned(),
                ..Default::default()
            },
            BOB,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(results.categories[0].results.is_empty());
    let mine = h
        .ranking()
        .list_my_achievements(h.as_runner(proto::ListMyAchievementsRequest {}, ALICE))
        .await
        .unwrap()
        .into_inner();
    assert!(
        !mine
            .achievements
            .iter()
            .any(|a| a.badge_id == "race_finisher")
    );
}

async fn membership_changes_move_runners_between_boards(backend: Backend) {
    let h = Harness::start(backend).await;
    profile(&h, ALICE, 1990, user_proto::Gender::Female).await;
    h.create(
        ALICE,
        run_at(Utc::now() - Duration::hours(2), 10.0, 50, true),
    )
    .await
    .unwrap();
    let day = Utc::now().with_timezone(&SEOUL).date_naive();
    let by_gender = |gender: proto::BoardGender| proto::BoardSelector {
        gender: gender.into(),
        ..selector(proto::BoardPeriod::AllTime, proto::BoardScope::Gender, day)
    };
    let ids = |r: proto::GetLeaderboardResponse| -> Vec<String> {
        r.entries.into_iter().map(|e| e.runner_id).collect()
    };
    assert_eq!(
        ids(board(&h, BOB, by_gender(proto::BoardGender::Female)).await),
        [ALICE]
    );
    assert!(ids(board(&h, BOB, by_gender(proto::BoardGender::Male)).await).is_empty());
    // Her own gender when the request names none; then she changes it.
    let mine = selector(proto::BoardPeriod::AllTime, proto::BoardScope::Gender, day);
    assert_eq!(ids(board(&h, ALICE, mine).await), [ALICE]);
    profile(&h, ALICE, 1990, user_proto::Gender::Male).await;
    assert!(ids(board(&h, BOB, by_gender(proto::BoardGender::Female)).await).is_empty());
    assert_eq!(
        ids(board(&h, BOB, by_gender(proto::BoardGender::Male)).await),
        [ALICE]
    );

    // Crew boards follow svc-social's membership.
    for user in [ALICE, "carol"] {
        let joined = social_proto::CrewMemberJoined {
            crew_id: "crew-x".to_owned(),
            user_id: user.to_owned(),
            role: social_proto::CrewEventRole::Member.into(),
            joined_at: None,
        };
        publish(&h, "svc-social", "crew-x", &joined).await;
    }
    let crew = proto::BoardSelector {
        crew_id: "crew-x".to_owned(),
        ..selector(proto::BoardPeriod::AllTime, proto::BoardScope::Crew, day)
    };
    assert_eq!(ids(board(&h, "carol", crew.clone()).await), [ALICE]);
    let status = h
        .ranking()
        .get_leaderboard(h.as_runner(
            proto::GetLeaderboardRequest {
                board: Some(crew.clone()),
                ..Default::default()
            },
            BOB,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), vec!["board.crew_id"]);
    let left = social_proto::CrewMemberLeft {
        crew_id: "crew-x".to_owned(),
        user_id: ALICE.to_owned(),
        reason: social_proto::CrewLeaveReason::Left.into(),
        left_at: None,
    };
    publish(&h, "svc-social", "crew-x", &left).await;
    assert!(ids(board(&h, "carol", crew).await).is_empty());

    // A deleted account leaves every board.
    let everyone = selector(
        proto::BoardPeriod::AllTime,
        proto::BoardScope::Everyone,
        day,
    );
    assert_eq!(ids(board(&h, BOB, everyone.clone()).await), [ALICE]);
    publish(
        &h,
        "svc-user",
        ALICE,
        &user_proto::UserDeleted {
            user_id: ALICE.to_owned(),
            ..Default::default()
        },
    )
    .await;
    assert!(ids(board(&h, BOB, everyone.clone()).await).is_empty());
    forget_boards(&h, day).await;
    assert!(ids(board(&h, BOB, everyone).await).is_empty());
}

on_both_backends!(
    membership_changes_move_runners_between_boards,
    boards_and_badges_match_a_brute_force,
    bad_board_requests_name_the_field,
    challenges_complete_once_with_their_badge,
    goals_are_met_once_per_period,
    race_results_link_from_race_events_once,
);
