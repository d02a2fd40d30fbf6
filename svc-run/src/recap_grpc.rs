//! `runmesh.run.v1.RecapService`: decode the request into domain values, call [`Recaps`],
//! encode the answer. No rules live here.

use std::sync::Arc;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use chrono::NaiveDate;
use runmesh_platform::auth::require_caller;
use runmesh_platform::validation::Violations;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::run::v1::recap_service_server::RecapService;
use tonic::{Request, Response, Status};

use crate::card::CardFormat;
use crate::error::Error;
use crate::recap::{RecapQuery, Recaps};
use crate::wire;
use crate::wire::recap as recap_wire;

/// A recap reads a period's rows in a few queries; a card adds a render on the blocking pool.
const RECAP_OBJECTIVE: Objective = Objective::new("run_recap_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);

pub struct RecapApi {
    recaps: Arc<Recaps>,
}

impl RecapApi {
    pub fn new(recaps: Arc<Recaps>) -> Self {
        Self { recaps }
    }
}

/// The period, day, crew and language of a request, every bad field named at once.
fn query(
    violations: &mut Violations,
    period: &str,
    date: &str,
    crew_id: Option<&str>,
    language: Option<&str>,
) -> Option<RecapQuery> {
    let kind = recap_wire::recap_period(period);
    if kind.is_none() {
        violations.add("period", "must be week, month or year");
    }
    let day = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok();
    if day.is_none() {
        violations.add("date", "must be a day like 2026-12-01");
    }
    let language = recap_wire::recap_language(language);
    if language.is_none() {
        violations.add("language", "must be ko or en");
    }
    let crew_id = match crew_id {
        Some("") => {
            violations.add("crew_id", "must not be empty when set");
            None
        }
        other => other.map(str::to_owned),
    };
    Some(RecapQuery {
        kind: kind?,
        day: day?,
        crew_id,
        language: language?,
    })
}

#[autometrics(objective = RECAP_OBJECTIVE, error_if = runmesh_platform::error::server_fault)]
#[tonic::async_trait]
impl RecapService for RecapApi {
    async fn get_recap(
        &self,
        request: Request<proto::GetRecapRequest>,
    ) -> Result<Response<proto::GetRecapResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let query = query(
            &mut violations,
            &request.period,
            &request.date,
            request.crew_id.as_deref(),
            request.language.as_deref(),
        );
        let Some(query) = query.filter(|_| violations.is_empty()) else {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        };
        let recap = self
            .recaps
            .recap(&caller.user_id, &query, wire::now())
            .await?;
        Ok(Response::new(proto::GetRecapResponse {
            recap: Some(recap_wire::recap_message(&recap)),
        }))
    }

    async fn get_recap_card(
        &self,
        request: Request<proto::GetRecapCardRequest>,
    ) -> Result<Response<proto::GetRecapCardResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let query = query(
            &mut violations,
            &request.period,
            &request.date,
            request.crew_id.as_deref(),
            request.language.as_deref(),
        );
        let mut format = match proto::RecapCardFormat::try_from(request.format) {
            Ok(format) => Some(format),
            Err(_) => {
                violations.add("format", "must be PNG or SVG");
                None
            }
        };
        let size = match proto::RecapCardSize::try_from(request.size) {
            Ok(size) => recap_wire::card_size(size),
            Err(_) => {
                violations.add("size", "must be portrait or square");
                recap_wire::card_size(proto::RecapCardSize::Unspecified)
            }
        };
        let named = match request.file_name.as_str() {
            "" => None,
            "card.png" => Some(proto::RecapCardFormat::Png),
            "card.svg" => Some(proto::RecapCardFormat::Svg),
            _ => {
                violations.add("file_name", "must be card.png or card.svg");
                None
            }
        };
        if let Some(named) = named {
            match format {
                Some(proto::RecapCardFormat::Unspecified) | None => format = Some(named),
                Some(given) if given != named => {
                    violations.add("format", "does not match the file name");
                }
                Some(_) => {}
            }
        }
        let format = format.map_or(CardFormat::Png, recap_wire::card_format);
        let Some(query) = query.filter(|_| violations.is_empty()) else {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        };
        let (recap, bytes) = self
            .recaps
            .card(&caller.user_id, &query, format, size, wire::now())
            .await?;
        Ok(Response::new(recap_wire::card_message(
            &recap, format, bytes,
        )))
    }
}
