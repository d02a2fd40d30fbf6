//! The tools: reads of the runner's own data from svc-run, svc-race and svc-social over gRPC,
//! always with the runner's own token (the caller's `authorization` header, forwarded), so the
//! other services authorize exactly as they would the runner. No tool takes a user id: a tool can
//! only ever act as the asking runner. Every call has a deadline; a service or RPC that does not
//! answer makes the data *unavailable*, never zero.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use runmesh_platform::peer::{PeerChannel, PeerOptions};
use runmesh_proto::runmesh::race::v1 as race;
use runmesh_proto::runmesh::race::v1::race_service_client::RaceServiceClient;
use runmesh_proto::runmesh::run::v1 as run;
use runmesh_proto::runmesh::run::v1::ranking_service_client::RankingServiceClient;
use runmesh_proto::runmesh::run::v1::run_service_client::RunServiceClient;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use super::config::Peers;

/// Why data is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl From<Status> for Unavailable {
    fn from(status: Status) -> Self {
        let reason = match status.code() {
            Code::Unimplemented => "the service does not offer this yet".to_owned(),
            Code::Unavailable => "the service is not reachable".to_owned(),
            Code::DeadlineExceeded => "the service did not answer in time".to_owned(),
            Code::Unauthenticated => "the sign-in was not accepted".to_owned(),
            Code::PermissionDenied => "not allowed".to_owned(),
            code => format!("the service answered {code:?}"),
        };
        Self(reason)
    }
}

/// The runner's credentials for the tools: their own bearer token.
#[derive(Clone)]
pub struct RunnerAuth {
    authorization: Option<AsciiMetadataValue>,
}

impl std::fmt::Debug for RunnerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunnerAuth(***)")
    }
}

impl RunnerAuth {
    /// The `authorization` header of the runner's own call.
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        Self {
            authorization: metadata.get("authorization").cloned(),
        }
    }

    fn attach<T>(&self, request: &mut Request<T>) {
        if let Some(value) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
    }
}

/// A run, as the tools use it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub title: String,
    pub start_time: DateTime<Utc>,
    pub distance_m: f64,
    pub moving_s: f64,
    pub elapsed_s: f64,
    pub pace_s_per_km: f64,
    pub average_heart_rate: Option<u32>,
    pub elevation_gain_m: Option<f64>,
    pub sport: String,
}

/// Sports counted as running.
fn is_running(sport: i32) -> bool {
    matches!(
        run::Sport::try_from(sport),
        Ok(run::Sport::Run
            | run::Sport::TrailRun
            | run::Sport::Treadmill
            | run::Sport::Unspecified)
    )
}

fn sport_name(sport: i32) -> String {
    run::Sport::try_from(sport)
        .map(|s| s.as_str_name().trim_start_matches("SPORT_").to_lowercase())
        .unwrap_or_else(|_| "other".to_owned())
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    }
}

pub fn from_timestamp(ts: Option<&prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    let ts = ts?;
    Utc.timestamp_opt(ts.seconds, u32::try_from(ts.nanos).unwrap_or(0))
        .single()
}

fn seconds(duration: Option<&prost_types::Duration>) -> f64 {
    duration.map_or(0.0, |d| d.seconds as f64 + f64::from(d.nanos) / 1e9)
}

impl From<run::Run> for RunSummary {
    fn from(r: run::Run) -> Self {
        Self {
            start_time: from_timestamp(r.start_time.as_ref()).unwrap_or_default(),
            moving_s: seconds(r.moving_time.as_ref()),
            elapsed_s: seconds(r.elapsed_time.as_ref()),
            sport: sport_name(r.sport),
            run_id: r.run_id,
            title: r.title,
            distance_m: r.distance_meters,
            pace_s_per_km: r.average_pace_seconds_per_km,
            average_heart_rate: r.average_heart_rate,
            elevation_gain_m: r.elevation_gain_meters,
        }
    }
}

/// A personal record.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Record {
    pub distance_m: f64,
    pub label: String,
    pub seconds: f64,
    pub achieved_at: Option<DateTime<Utc>>,
}

pub fn effort_meters(distance: i32) -> Option<(f64, &'static str)> {
    use run::EffortDistance as E;
    Some(match E::try_from(distance).ok()? {
        E::EffortDistance400m => (400.0, "400 m"),
        E::EffortDistance1k => (1000.0, "1 km"),
        E::EffortDistance1Mile => (1609.344, "1 mile"),
        E::EffortDistance5k => (5000.0, "5K"),
        E::EffortDistance10k => (10_000.0, "10K"),
        E::EffortDistance15k => (15_000.0, "15K"),
        E::HalfMarathon => (21_097.5, "half marathon"),
        E::Marathon => (42_195.0, "marathon"),
        E::Unspecified => return None,
    })
}

/// A registration with its race's name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RegistrationSummary {
    pub race_name: String,
    pub race_starts_at: Option<DateTime<Utc>>,
    pub status: String,
    pub bib_number: Option<u32>,
    pub waitlist_position: Option<u32>,
}

/// A race as the tools use it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RaceSummary {
    pub name: String,
    pub region: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub registration_opens_at: Option<DateTime<Utc>>,
    pub registration_closes_at: Option<DateTime<Utc>>,
    pub registration_state: String,
    /// Untrusted text written by an organizer.
    pub description: String,
}

impl From<race::Race> for RaceSummary {
    fn from(r: race::Race) -> Self {
        Self {
            starts_at: from_timestamp(r.starts_at.as_ref()),
            registration_opens_at: from_timestamp(r.registration_opens_at.as_ref()),
            registration_closes_at: from_timestamp(r.registration_closes_at.as_ref()),
            registration_state: race::RegistrationState::try_from(r.registration_state)
                .map(|s| {
                    s.as_str_name()
                        .trim_start_matches("REGISTRATION_STATE_")
                        .to_lowercase()
                })
                .unwrap_or_default(),
            name: r.name,
            region: r.region,
            description: r.description,
        }
    }
}

/// Badges earned.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Badges {
    pub count: usize,
    pub total_points: u32,
    /// Newest first, at most 10: (English name, Korean name).
    pub recent: Vec<(String, String)>,
}

/// The runner's place on this month's distance board.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rank {
    pub rank: Option<u64>,
    pub value_m: Option<f64>,
    pub total_runners: u64,
}

/// One challenge the runner joined.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ChallengeProgress {
    pub title: String,
    pub current: f64,
    pub target: f64,
    pub fraction: f64,
    pub completed: bool,
    pub unit: String,
}

/// Crews and their upcoming group runs (svc-social).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CrewSummary {
    pub name: String,
    pub region: String,
    pub member_count: u32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MeetupSummary {
    pub crew: String,
    pub title: String,
    pub starts_at: Option<DateTime<Utc>>,
    pub planned_distance_m: u32,
    pub going_count: u32,
}

/// The subset of `runmesh.social.v1` the tools read, called by path (svc-social's contract is
/// its own; a missing service or RPC is UNIMPLEMENTED, which makes the data unavailable).
mod social {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListMyCrewsRequest {
        #[prost(uint32, tag = "1")]
        pub page_size: u32,
        #[prost(string, tag = "2")]
        pub page_token: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Crew {
        #[prost(string, tag = "1")]
        pub crew_id: String,
        #[prost(string, tag = "2")]
        pub name: String,
        #[prost(string, tag = "4")]
        pub region: String,
        #[prost(uint32, tag = "8")]
        pub member_count: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListMyCrewsResponse {
        #[prost(message, repeated, tag = "1")]
        pub crews: Vec<Crew>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListMeetupsRequest {
        #[prost(string, tag = "1")]
        pub crew_id: String,
        #[prost(bool, tag = "2")]
        pub include_past: bool,
        #[prost(uint32, tag = "3")]
        pub page_size: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Meetup {
        #[prost(string, tag = "3")]
        pub title: String,
        #[prost(message, optional, tag = "5")]
        pub starts_at: Option<prost_types::Timestamp>,
        #[prost(uint32, tag = "8")]
        pub planned_distance_meters: u32,
        #[prost(uint32, tag = "15")]
        pub going_count: u32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ListMeetupsResponse {
        #[prost(message, repeated, tag = "1")]
        pub meetups: Vec<Meetup>,
    }

    pub const LIST_MY_CREWS: &str = "/runmesh.social.v1.CrewService/ListMyCrews";
    pub const LIST_MEETUPS: &str = "/runmesh.social.v1.CrewService/ListMeetups";
}

async fn call_by_path<Req, Resp>(
    channel: Channel,
    path: &'static str,
    request: Request<Req>,
) -> Result<Response<Resp>, Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let codec = tonic_prost::ProstCodec::<Req, Resp>::default();
    grpc.unary(
        request,
        tonic::codegen::http::uri::PathAndQuery::from_static(path),
        codec,
    )
    .await
}

/// Most pages of runs read for one question (100 runs each).
const MAX_RUN_PAGES: usize = 10;

/// The tools over the peers.
#[derive(Clone)]
pub struct Tools {
    run: PeerChannel,
    race: PeerChannel,
    social: PeerChannel,
}

impl Tools {
    /// Channels to the peers; calls carry `timeout` as their deadline.
    pub fn connect(peers: &Peers, timeout: Duration) -> anyhow::Result<Self> {
        let options = || PeerOptions::default().with_timeout(timeout);
        Ok(Self {
            run: PeerChannel::connect(&peers.run, options())?,
            race: PeerChannel::connect(&peers.race, options())?,
            social: PeerChannel::connect(&peers.social, options())?,
        })
    }

    /// The runner's runs (running sports) that started in `[from, to)`, newest first.
    pub async fn runs(
        &self,
        auth: &RunnerAuth,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<RunSummary>, Unavailable> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        for _ in 0..MAX_RUN_PAGES {
            let message = run::ListRunsRequest {
                from_time: from.map(timestamp),
                to_time: to.map(timestamp),
                sport: 0,
                page_size: 100,
                page_token: page_token.clone(),
            };
            let page = self
                .run
                .unary(message, |channel, mut request| {
                    auth.attach(&mut request);
                    async move { RunServiceClient::new(channel).list_runs(request).await }
                })
                .await?
                .into_inner();
            out.extend(
                page.runs
                    .into_iter()
                    .filter(|r| is_running(r.sport))
                    .map(RunSummary::from),
            );
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        Ok(out)
    }

    /// The runner's time zone as svc-run knows it.
    pub async fn time_zone(&self, auth: &RunnerAuth) -> Result<String, Unavailable> {
        let message = run::GetStatsRequest {
            period: run::get_stats_request::Period::Week as i32,
            date: String::new(),
        };
        let stats = self
            .run
            .unary(message, |channel, mut request| {
                auth.attach(&mut request);
                async move { RunServiceClient::new(channel).get_stats(request).await }
            })
            .await?
            .into_inner();
        Ok(stats.time_zone)
    }

    pub async fn records(&self, auth: &RunnerAuth) -> Result<Vec<Record>, Unavailable> {
        let answer = self
            .run
            .unary(
                run::ListPersonalRecordsRequest {},
                |channel, mut request| {
                    auth.attach(&mut request);
                    async move {
                        RunServiceClient::new(channel)
                            .list_personal_records(request)
                            .await
                    }
                },
            )
            .await?
            .into_inner();
        let mut records: Vec<Record> = answer
            .records
            .into_iter()
            .filter_map(|r| {
                let (distance_m, label) = effort_meters(r.distance)?;
                Some(Record {
                    distance_m,
                    label: label.to_owned(),
                    seconds: seconds(r.elapsed_time.as_ref()),
                    achieved_at: from_timestamp(r.achieved_at.as_ref()),
                })
            })
            .collect();
        records.sort_by(|a, b| a.distance_m.total_cmp(&b.distance_m));
        Ok(records)
    }

    pub async fn badges(&self, auth: &RunnerAuth) -> Result<Badges, Unavailable> {
        let answer = self
            .run
            .unary(run::ListMyAchievementsRequest {}, |channel, mut request| {
                auth.attach(&mut request);
                async move {
                    RankingServiceClient::new(channel)
                        .list_my_achievements(request)
                        .await
                }
            })
            .await?
            .into_inner();
        let mut achievements = answer.achievements;
        achievements.sort_by_key(|a| std::cmp::Reverse(a.earned_at.map(|t| t.seconds)));
        Ok(Badges {
            count: achievements.len(),
            total_points: answer.total_points,
            recent: achievements
                .iter()
                .take(10)
                .map(|a| {
                    let name = a.badge.as_ref().and_then(|b| b.name.as_ref());
                    (
                        name.map(|n| n.en.clone())
                            .unwrap_or_else(|| a.badge_id.clone()),
                        name.map(|n| n.ko.clone())
                            .unwrap_or_else(|| a.badge_id.clone()),
                    )
                })
                .collect(),
        })
    }

    /// This month's distance board, everyone.
    pub async fn rank(&self, auth: &RunnerAuth) -> Result<Rank, Unavailable> {
        let message = run::GetMyRankRequest {
            board: Some(run::BoardSelector {
                period: run::BoardPeriod::Month as i32,
                metric: run::BoardMetric::Distance as i32,
                scope: run::BoardScope::Everyone as i32,
                ..Default::default()
            }),
        };
        let answer = self
            .run
            .unary(message, |channel, mut request| {
                auth.attach(&mut request);
                async move {
                    RankingServiceClient::new(channel)
                        .get_my_rank(request)
                        .await
                }
            })
            .await?
            .into_inner();
        Ok(Rank {
            rank: answer.me.as_ref().map(|m| m.rank),
            value_m: answer.me.as_ref().map(|m| m.value),
            total_runners: answer.total_runners,
        })
    }

    /// Progress in the challenges the runner joined (running ones).
    pub async fn challenges(
        &self,
        auth: &RunnerAuth,
    ) -> Result<Vec<ChallengeProgress>, Unavailable> {
        let list = self
            .run
            .unary(
                run::ListChallengesRequest {
                    include_finished: false,
                },
                |channel, mut request| {
                    auth.attach(&mut request);
                    async move {
                        RankingServiceClient::new(channel)
                            .list_challenges(request)
                            .await
                    }
                },
            )
            .await?
            .into_inner();
        let mut out = Vec::new();
        for challenge in list.challenges.into_iter().filter(|c| c.joined).take(10) {
            let message = run::GetChallengeProgressRequest {
                challenge_id: challenge.challenge_id.clone(),
                page_size: 1,
            };
            let progress = self
                .run
                .unary(message, |channel, mut request| {
                    auth.attach(&mut request);
                    async move {
                        RankingServiceClient::new(channel)
                            .get_challenge_progress(request)
                            .await
                    }
                })
                .await?
                .into_inner();
            let unit = run::ChallengeMetric::try_from(challenge.metric)
                .map(|m| {
                    m.as_str_name()
                        .trim_start_matches("CHALLENGE_METRIC_")
                        .to_lowercase()
                })
                .unwrap_or_default();
            out.push(ChallengeProgress {
                title: challenge.title,
                current: progress.current,
                target: challenge.target,
                fraction: progress.fraction,
                completed: progress.completed,
                unit,
            });
        }
        Ok(out)
    }

    /// The runner's registrations with their races' names.
    pub async fn registrations(
        &self,
        auth: &RunnerAuth,
    ) -> Result<Vec<RegistrationSummary>, Unavailable> {
        let answer = self
            .race
            .unary(
                race::ListMyRegistrationsRequest {
                    page_size: 100,
                    page_token: String::new(),
                },
                |channel, mut request| {
                    auth.attach(&mut request);
                    async move {
                        RaceServiceClient::new(channel)
                            .list_my_registrations(request)
                            .await
                    }
                },
            )
            .await?
            .into_inner();
        let mut out = Vec::new();
        for registration in answer.registrations.into_iter().take(20) {
            let race = self
                .race
                .unary(
                    race::GetRaceRequest {
                        race_id: registration.race_id.clone(),
                    },
                    |channel, mut request| {
                        auth.attach(&mut request);
                        async move { RaceServiceClient::new(channel).get_race(request).await }
                    },
                )
                .await
                .ok()
                .and_then(|r| r.into_inner().race);
            out.push(RegistrationSummary {
                race_name: race.as_ref().map(|r| r.name.clone()).unwrap_or_default(),
                race_starts_at: race
                    .as_ref()
                    .and_then(|r| from_timestamp(r.starts_at.as_ref())),
                status: race::RegistrationStatus::try_from(registration.status)
                    .map(|s| {
                        s.as_str_name()
                            .trim_start_matches("REGISTRATION_STATUS_")
                            .to_lowercase()
                    })
                    .unwrap_or_default(),
                bib_number: registration.bib_number,
                waitlist_position: registration.waitlist_position,
            });
        }
        Ok(out)
    }

    /// Published races starting from now, optionally in one region and registration state.
    pub async fn races(
        &self,
        auth: &RunnerAuth,
        region: Option<&str>,
        state: Option<race::RegistrationState>,
    ) -> Result<Vec<RaceSummary>, Unavailable> {
        let mut out = Vec::new();
        let mut page_token = String::new();
        for _ in 0..5 {
            let message = race::ListRacesRequest {
                starts_after: Some(timestamp(Utc::now())),
                region: region.unwrap_or_default().to_owned(),
                registration_state: state.map_or(0, |s| s as i32),
                page_size: 100,
                page_token: page_token.clone(),
                ..Default::default()
            };
            let page = self
                .race
                .unary(message, |channel, mut request| {
                    auth.attach(&mut request);
                    async move { RaceServiceClient::new(channel).list_races(request).await }
                })
                .await?
                .into_inner();
            out.extend(page.races.into_iter().map(RaceSummary::from));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        Ok(out)
    }

    pub async fn crews(
        &self,
        auth: &RunnerAuth,
    ) -> Result<Vec<(String, CrewSummary)>, Unavailable> {
        let answer: social::ListMyCrewsResponse = self
            .social
            .unary(
                social::ListMyCrewsRequest {
                    page_size: 50,
                    page_token: String::new(),
                },
                |channel, mut request| {
                    auth.attach(&mut request);
                    call_by_path(channel, social::LIST_MY_CREWS, request)
                },
            )
            .await?
            .into_inner();
        Ok(answer
            .crews
            .into_iter()
            .map(|c| {
                (
                    c.crew_id,
                    CrewSummary {
                        name: c.name,
                        region: c.region,
                        member_count: c.member_count,
                    },
                )
            })
            .collect())
    }

    /// Upcoming group runs of the runner's crews, soonest first.
    pub async fn meetups(&self, auth: &RunnerAuth) -> Result<Vec<MeetupSummary>, Unavailable> {
        let crews = self.crews(auth).await?;
        let mut out = Vec::new();
        for (crew_id, crew) in crews.into_iter().take(10) {
            let answer: social::ListMeetupsResponse = self
                .social
                .unary(
                    social::ListMeetupsRequest {
                        crew_id,
                        include_past: false,
                        page_size: 20,
                    },
                    |channel, mut request| {
                        auth.attach(&mut request);
                        call_by_path(channel, social::LIST_MEETUPS, request)
                    },
                )
                .await?
                .into_inner();
            out.extend(answer.meetups.into_iter().map(|m| MeetupSummary {
                crew: crew.name.clone(),
                title: m.title,
                starts_at: from_timestamp(m.starts_at.as_ref()),
                planned_distance_m: m.planned_distance_meters,
                going_count: m.going_count,
            }));
        }
        out.sort_by_key(|m| m.starts_at);
        Ok(out)
    }
}
