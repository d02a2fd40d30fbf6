//! The gRPC surface: decode the request into domain values, call the catalog or the registrar,
//! encode the answer. No rules live here.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use runmesh_platform::auth::{optional_caller, require_caller};
use runmesh_proto::runmesh::race::v1 as proto;
use runmesh_proto::runmesh::race::v1::race_service_server::RaceService;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::catalog::{Catalog, RaceQuery};
use crate::domain::{
    self, CategorySpec, Coordinates, Fee, IdempotencyKey, PageSize, PageToken, RaceSpec,
    RegistrationState, RegistrationStatus, RegistrationWindow, Rejected, Violations,
};
use crate::error::Error;
use crate::registrations::{Registrar, RegistrationView};
use crate::watch::WatchHub;
use crate::wire;

/// Register answers from Redis in well under a millisecond; writes take a commit.
const API_OBJECTIVE: Objective = Objective::new("race_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms50, ObjectivePercentile::P99);

/// Fields `UpdateRace` may change.
const UPDATABLE_FIELDS: [&str; 10] = [
    "name",
    "description",
    "region",
    "venue",
    "coordinates",
    "starts_at",
    "registration_opens_at",
    "registration_closes_at",
    "official_url",
    "categories",
];

/// `runmesh.race.v1.RaceService`.
pub struct RaceApi {
    catalog: Arc<Catalog>,
    registrar: Arc<Registrar>,
    watch: Arc<WatchHub>,
}

impl RaceApi {
    pub fn new(catalog: Arc<Catalog>, registrar: Arc<Registrar>, watch: Arc<WatchHub>) -> Self {
        Self {
            catalog,
            registrar,
            watch,
        }
    }
}

type WatchRaceStream =
    Pin<Box<dyn Stream<Item = Result<proto::WatchRaceResponse, Status>> + Send + 'static>>;

#[autometrics(objective = API_OBJECTIVE, error_if = runmesh_platform::error::server_fault)]
#[tonic::async_trait]
impl RaceService for RaceApi {
    async fn create_race(
        &self,
        request: Request<proto::CreateRaceRequest>,
    ) -> Result<Response<proto::CreateRaceResponse>, Status> {
        let caller = require_caller(&request)?;
        let race = request.into_inner().race.unwrap_or_default();
        let spec = parse_race(&race)?;
        let record = self.catalog.create(&caller, spec).await?;
        Ok(Response::new(proto::CreateRaceResponse {
            race: Some(wire::race_message(&record, Utc::now())),
        }))
    }

    async fn update_race(
        &self,
        request: Request<proto::UpdateRaceRequest>,
    ) -> Result<Response<proto::UpdateRaceResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let race_id = id("race_id", &request.race_id)?;
        let paths: BTreeSet<String> = request
            .update_mask
            .map(|mask| mask.paths.into_iter().collect())
            .unwrap_or_default();
        let mut violations = Violations::new();
        if paths.is_empty() {
            violations.add("update_mask", "name at least one field to change");
        }
        for path in &paths {
            if !UPDATABLE_FIELDS.contains(&path.as_str()) {
                violations.add("update_mask", format!("{path:?} cannot be changed"));
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let current = self.catalog.record_for_edit(&caller, race_id).await?;
        let changes = request.race.unwrap_or_default();
        let mut merged = wire::race_message(&current, Utc::now());
        for path in &paths {
            match path.as_str() {
                "name" => merged.name.clone_from(&changes.name),
                "description" => merged.description.clone_from(&changes.description),
                "region" => merged.region.clone_from(&changes.region),
                "venue" => merged.venue.clone_from(&changes.venue),
                "coordinates" => merged.coordinates = changes.coordinates,
                "starts_at" => merged.starts_at = changes.starts_at,
                "registration_opens_at" => {
                    merged.registration_opens_at = changes.registration_opens_at;
                }
                "registration_closes_at" => {
                    merged.registration_closes_at = changes.registration_closes_at;
                }
                "official_url" => merged.official_url.clone_from(&changes.official_url),
                _ => merged.categories.clone_from(&changes.categories),
            }
        }
        let spec = parse_race(&merged)?;
        let record = self
            .catalog
            .update(&caller, current, spec, paths.into_iter().collect())
            .await?;
        Ok(Response::new(proto::UpdateRaceResponse {
            race: Some(wire::race_message(&record, Utc::now())),
        }))
    }

    async fn publish_race(
        &self,
        request: Request<proto::PublishRaceRequest>,
    ) -> Result<Response<proto::PublishRaceResponse>, Status> {
        let caller = require_caller(&request)?;
        let race_id = id("race_id", &request.get_ref().race_id)?;
        let record = self.catalog.publish(&caller, race_id).await?;
        Ok(Response::new(proto::PublishRaceResponse {
            race: Some(wire::race_message(&record, Utc::now())),
        }))
    }

    async fn list_races(
        &self,
        request: Request<proto::ListRacesRequest>,
    ) -> Result<Response<proto::ListRacesResponse>, Status> {
        let caller = optional_caller(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let starts_after = optional_time(&mut violations, "starts_after", request.starts_after);
        let starts_before = optional_time(&mut violations, "starts_before", request.starts_before);
        let registration_state =
            match proto::RegistrationState::try_from(request.registration_state) {
                Ok(proto::RegistrationState::Unspecified) => None,
                Ok(proto::RegistrationState::Upcoming) => Some(RegistrationState::Upcoming),
                Ok(proto::RegistrationState::Open) => Some(RegistrationState::Open),
                Ok(proto::RegistrationState::Closed) => Some(RegistrationState::Closed),
                Err(_) => {
                    violations.add("registration_state", "is not a registration state");
                    None
                }
            };
        if request.max_distance_meters != 0
            && request.max_distance_meters < request.min_distance_meters
        {
            violations.add(
                "max_distance_meters",
                "must not be below min_distance_meters",
            );
        }
        let page_size = violations.check("page_size", PageSize::parse(request.page_size, 20, 100));
        let after = violations
            .check("page_token", PageToken::decode(&request.page_token))
            .flatten();
        let Some(page_size) = page_size else {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        };
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let region = request.region.trim();
        let query = RaceQuery {
            starts_after: starts_after.flatten(),
            starts_before: starts_before.flatten(),
            region: (!region.is_empty()).then(|| region.to_owned()),
            min_distance_meters: (request.min_distance_meters != 0)
                .then_some(request.min_distance_meters),
            max_distance_meters: (request.max_distance_meters != 0)
                .then_some(request.max_distance_meters),
            registration_state,
            include_drafts: request.include_drafts,
            page_size: page_size.0,
            after,
        };
        let now = Utc::now();
        let (records, next) = self.catalog.list(caller.as_ref(), query, now).await?;
        Ok(Response::new(proto::ListRacesResponse {
            races: records
                .iter()
                .map(|record| wire::race_message(record, now))
                .collect(),
            next_page_token: next.map(|token| token.encode()).unwrap_or_default(),
        }))
    }

    async fn get_race(
        &self,
        request: Request<proto::GetRaceRequest>,
    ) -> Result<Response<proto::GetRaceResponse>, Status> {
        let caller = optional_caller(&request);
        let race_id = id("race_id", &request.get_ref().race_id)?;
        let record = self.catalog.get(caller.as_ref(), race_id).await?;
        let snapshot = self
            .catalog
            .snapshot(race_id)
            .await?
            .ok_or_else(|| Error::RaceNotFound(race_id.to_string()))?;
        let availability = self.catalog.availability(&snapshot).await?;
        Ok(Response::new(proto::GetRaceResponse {
            race: Some(wire::race_message(&record, Utc::now())),
            availability: availability
                .iter()
                .map(wire::availability_message)
                .collect(),
        }))
    }

    async fn register(
        &self,
        request: Request<proto::RegisterRequest>,
    ) -> Result<Response<proto::RegisterResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let race_id = violations.check("race_id", domain::parse_id(&request.race_id));
        let category_id = violations.check("category_id", domain::parse_id(&request.category_id));
        let key = violations.check(
            "idempotency_key",
            IdempotencyKey::parse(&request.idempotency_key),
        );
        let (Some(race_id), Some(category_id), Some(key)) = (race_id, category_id, key) else {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        };
        let registration = self
            .registrar
            .register(&caller, race_id, category_id, key)
            .await?;
        Ok(Response::new(proto::RegisterResponse {
            registration: Some(registration),
        }))
    }

    async fn cancel_registration(
        &self,
        request: Request<proto::CancelRegistrationRequest>,
    ) -> Result<Response<proto::CancelRegistrationResponse>, Status> {
        let caller = require_caller(&request)?;
        let registration_id = id("registration_id", &request.get_ref().registration_id)?;
        let view = self.registrar.cancel(&caller, registration_id).await?;
        Ok(Response::new(proto::CancelRegistrationResponse {
            registration: Some(view.message()),
        }))
    }

    async fn list_my_registrations(
        &self,
        request: Request<proto::ListMyRegistrationsRequest>,
    ) -> Result<Response<proto::ListMyRegistrationsResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let (page_size, after) = page(request.page_size, &request.page_token, 20, 100)?;
        let (views, next) = self.registrar.list_mine(&caller, page_size, after).await?;
        Ok(Response::new(proto::ListMyRegistrationsResponse {
            registrations: messages(&views),
            next_page_token: next.map(|token| token.encode()).unwrap_or_default(),
        }))
    }

    async fn list_registrations(
        &self,
        request: Request<proto::ListRegistrationsRequest>,
    ) -> Result<Response<proto::ListRegistrationsResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let race_id = id("race_id", &request.race_id)?;
        let status = match proto::RegistrationStatus::try_from(request.status) {
            Ok(proto::RegistrationStatus::Unspecified) => None,
            Ok(proto::RegistrationStatus::Confirmed) => Some(RegistrationStatus::Confirmed),
            Ok(proto::RegistrationStatus::Waitlisted) => Some(RegistrationStatus::Waitlisted),
            Ok(proto::RegistrationStatus::Cancelled) => Some(RegistrationStatus::Cancelled),
            Err(_) => return Err(Error::invalid("status", "is not a registration status").into()),
        };
        let (page_size, after) = page(request.page_size, &request.page_token, 100, 1000)?;
        let (views, next) = self
            .registrar
            .list_for_race(&caller, race_id, status, page_size, after)
            .await?;
        Ok(Response::new(proto::ListRegistrationsResponse {
            registrations: messages(&views),
            next_page_token: next.map(|token| token.encode()).unwrap_or_default(),
        }))
    }

    type WatchRaceStream = WatchRaceStream;

    async fn watch_race(
        &self,
        request: Request<proto::WatchRaceRequest>,
    ) -> Result<Response<Self::WatchRaceStream>, Status> {
        let race_id = id("race_id", &request.get_ref().race_id)?;
        self.catalog.published_snapshot(race_id).await?;
        let updates = WatchStream::new(self.watch.subscribe(race_id))
            .filter_map(|update| async move { update.map(|update| Ok((*update).clone())) });
        let stream: WatchRaceStream = Box::pin(updates);
        Ok(Response::new(stream))
    }

    async fn subscribe_to_opening(
        &self,
        request: Request<proto::SubscribeToOpeningRequest>,
    ) -> Result<Response<proto::SubscribeToOpeningResponse>, Status> {
        let caller = require_caller(&request)?;
        let race_id = id("race_id", &request.get_ref().race_id)?;
        self.catalog.subscribe_to_opening(&caller, race_id).await?;
        Ok(Response::new(proto::SubscribeToOpeningResponse {}))
    }

    async fn unsubscribe_from_opening(
        &self,
        request: Request<proto::UnsubscribeFromOpeningRequest>,
    ) -> Result<Response<proto::UnsubscribeFromOpeningResponse>, Status> {
        let caller = require_caller(&request)?;
        let race_id = id("race_id", &request.get_ref().race_id)?;
        self.catalog
            .unsubscribe_from_opening(&caller, race_id)
            .await?;
        Ok(Response::new(proto::UnsubscribeFromOpeningResponse {}))
    }
}

fn messages(views: &[RegistrationView]) -> Vec<proto::Registration> {
    views.iter().map(RegistrationView::message).collect()
}

fn id(field: &str, value: &str) -> Result<Uuid, Status> {
    domain::parse_id(value).map_err(|rejected| Error::invalid(field, rejected.0).into())
}

fn page(
    page_size: i32,
    page_token: &str,
    default: u64,
    max: u64,
) -> Result<(u64, Option<PageToken>), Status> {
    let mut violations = Violations::new();
    let size = violations.check("page_size", PageSize::parse(page_size, default, max));
    let after = violations.check("page_token", PageToken::decode(page_token));
    match (size, after) {
        (Some(size), Some(after)) => Ok((size.0, after)),
        _ => Err(Error::InvalidInput(violations.into_vec()).into()),
    }
}

fn time(value: Option<&prost_types::Timestamp>) -> Result<DateTime<Utc>, Rejected> {
    let value = value.ok_or_else(|| Rejected("is required".to_owned()))?;
    wire::from_timestamp(value).ok_or_else(|| Rejected("is out of range".to_owned()))
}

/// `Some(None)` when absent, `None` after recording a violation.
fn optional_time(
    violations: &mut Violations,
    field: &str,
    value: Option<prost_types::Timestamp>,
) -> Option<Option<DateTime<Utc>>> {
    match value {
        None => Some(None),
        Some(value) => violations.check(field, time(Some(&value))).map(Some),
    }
}

/// A race as a client describes it, checked field by field (every violation reported at once).
fn parse_race(race: &proto::Race) -> Result<RaceSpec, Error> {
    let mut violations = Violations::new();
    let name = violations.check("race.name", domain::text(&race.name, 1, 200));
    let description = violations.check(
        "race.description",
        domain::text(&race.description, 0, 10_000),
    );
    let region = violations.check("race.region", domain::text(&race.region, 1, 100));
    let venue = violations.check("race.venue", domain::text(&race.venue, 0, 200));
    let coordinates = match &race.coordinates {
        None => Some(None),
        Some(point) => violations
            .check(
                "race.coordinates",
                Coordinates::parse(point.latitude, point.longitude),
            )
            .map(Some),
    };
    let starts_at = violations.check("race.starts_at", time(race.starts_at.as_ref()));
    let opens_at = violations.check(
        "race.registration_opens_at",
        time(race.registration_opens_at.as_ref()),
    );
    let closes_at = violations.check(
        "race.registration_closes_at",
        time(race.registration_closes_at.as_ref()),
    );
    let official_url = violations.check(
        "race.official_url",
        RaceSpec::official_url(&race.official_url),
    );
    let mut categories = Vec::with_capacity(race.categories.len());
    for (index, category) in race.categories.iter().enumerate() {
        let field = |name: &str| format!("race.categories[{index}].{name}");
        let category_id = if category.category_id.is_empty() {
            Some(None)
        } else {
            violations
                .check(
                    &field("category_id"),
                    domain::parse_id(&category.category_id),
                )
                .map(Some)
        };
        let name = violations.check(&field("name"), domain::text(&category.name, 1, 100));
        let distance = violations.check(
            &field("distance_meters"),
            CategorySpec::distance(category.distance_meters),
        );
        let capacity = violations.check(
            &field("capacity"),
            CategorySpec::capacity(category.capacity),
        );
        let waitlist_capacity = violations.check(
            &field("waitlist_capacity"),
            CategorySpec::waitlist_capacity(category.waitlist_capacity),
        );
        let fee = match &category.fee {
            None => Some(None),
            Some(fee) => violations.check(
                &field("fee"),
                Fee::parse(&fee.currency_code, fee.amount_minor),
            ),
        };
        if let (
            Some(category_id),
            Some(name),
            Some(distance_meters),
            Some(capacity),
            Some(waitlist_capacity),
            Some(fee),
        ) = (
            category_id,
            name,
            distance,
            capacity,
            waitlist_capacity,
            fee,
        ) {
            categories.push(CategorySpec {
                category_id,
                name,
                distance_meters,
                capacity,
                waitlist_capacity,
                fee,
            });
        }
    }
    if let (Some(starts_at), Some(opens_at), Some(closes_at)) = (starts_at, opens_at, closes_at)
        && categories.len() == race.categories.len()
    {
        RaceSpec::check_consistency(
            starts_at,
            RegistrationWindow {
                opens_at,
                closes_at,
            },
            &categories,
            &mut violations,
        );
    }
    match (
        name,
        description,
        region,
        venue,
        coordinates,
        starts_at,
        opens_at,
        closes_at,
        official_url,
    ) {
        (
            Some(name),
            Some(description),
            Some(region),
            Some(venue),
            Some(coordinates),
            Some(starts_at),
            Some(opens_at),
            Some(closes_at),
            Some(official_url),
        ) if violations.is_empty() => Ok(RaceSpec {
            name,
            description,
            region,
            venue,
            coordinates,
            starts_at,
            window: RegistrationWindow {
                opens_at,
                closes_at,
            },
            official_url,
            categories,
        }),
        _ => Err(Error::InvalidInput(violations.into_vec())),
    }
}
