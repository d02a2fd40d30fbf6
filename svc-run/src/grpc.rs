//! The gRPC surface: decode the request into domain values, call [`Runs`], encode the answer.
//! No rules live here.

use std::collections::BTreeSet;
use std::pin::Pin;
use std::sync::Arc;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use futures::Stream;
use runmesh_platform::auth::require_caller;
use runmesh_platform::validation::Violations;
use runmesh_proto::google::api::HttpBody;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::run::v1::run_service_server::RunService;
use tonic::{Request, Response, Status, Streaming};
use uuid::Uuid;

use crate::archive::Archives;
use crate::domain::{self, ManualRunInput};
use crate::error::Error;
use crate::metrics::{self, Source};
use crate::runs::{ManualEntry, Period, RunChanges, RunQuery, Runs, Upload};
use crate::wire;

/// Reads answer in a few milliseconds; an import parses a whole file.
const API_OBJECTIVE: Objective = Objective::new("run_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms250, ObjectivePercentile::P99);

/// Fields `UpdateRun` may change.
const UPDATABLE_FIELDS: [&str; 4] = ["title", "notes", "sport", "visibility"];
const MAX_TITLE_CHARS: usize = 200;
const MAX_NOTES_CHARS: usize = 10_000;
/// Chunks of `DownloadOriginal`.
pub const DOWNLOAD_CHUNK_BYTES: usize = 1024 * 1024;

/// `runmesh.run.v1.RunService`.
pub struct RunApi {
    runs: Arc<Runs>,
    archives: Arc<Archives>,
}

impl RunApi {
    pub fn new(runs: Arc<Runs>, archives: Arc<Archives>) -> Self {
        Self { runs, archives }
    }
}

type DownloadStream =
    Pin<Box<dyn Stream<Item = Result<proto::DownloadOriginalResponse, Status>> + Send + 'static>>;
type WatchImportStream =
    Pin<Box<dyn Stream<Item = Result<proto::WatchArchiveImportResponse, Status>> + Send + 'static>>;

#[autometrics(objective = API_OBJECTIVE, error_if = runmesh_platform::error::server_fault)]
#[tonic::async_trait]
impl RunService for RunApi {
    async fn create_run(
        &self,
        request: Request<proto::CreateRunRequest>,
    ) -> Result<Response<proto::CreateRunResponse>, Status> {
        let caller = require_caller(&request)?;
        let run = request
            .into_inner()
            .run
            .ok_or_else(|| Error::invalid("run", "is required"))?;
        let entry = parse_manual(&run)?;
        let row = self.runs.create_manual(&caller.user_id, entry).await?;
        Ok(Response::new(proto::CreateRunResponse {
            run: Some(wire::run_message(&row, None)),
        }))
    }

    async fn import_run(
        &self,
        request: Request<Streaming<proto::ImportRunRequest>>,
    ) -> Result<Response<proto::ImportRunResponse>, Status> {
        let caller = require_caller(&request)?;
        let limit = self.runs.config().max_file_bytes;
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Error::invalid("file", "send the file"))?;
        let mut violations = Violations::new();
        let title = first.title.clone();
        if title
            .as_ref()
            .is_some_and(|t| t.chars().count() > MAX_TITLE_CHARS)
        {
            violations.add("title", format!("at most {MAX_TITLE_CHARS} characters"));
        }
        if first.file_name.chars().count() > 255 {
            violations.add("file_name", "at most 255 characters");
        }
        let visibility = parse_visibility(&mut violations, "visibility", first.visibility);
        // Refused before the file is read: counted, its format unknown.
        let refused = |error: Error| -> Status {
            metrics::imported(Source::File, "unknown", metrics::outcome_of(&error));
            error.into()
        };
        if !violations.is_empty() {
            return Err(refused(Error::InvalidInput(violations.into_vec())));
        }
        let mut bytes = Vec::new();
        let mut append = |chunk: Option<HttpBody>| -> Result<(), Error> {
            let data = chunk.map(|body| body.data).unwrap_or_default();
            if (bytes.len() + data.len()) as u64 > limit {
                return Err(Error::FileTooLarge { limit });
            }
            bytes.extend_from_slice(&data);
            Ok(())
        };
        append(first.file).map_err(refused)?;
        while let Some(message) = stream.message().await? {
            append(message.file).map_err(refused)?;
        }
        if bytes.is_empty() {
            return Err(refused(Error::invalid("file", "is empty")));
        }
        let format = metrics::file_format(&bytes);
        let imported = self
            .runs
            .import(
                &caller.user_id,
                Upload {
                    file_name: first.file_name,
                    title,
                    visibility,
                    bytes,
                    notes: String::new(),
                    sport: None,
                    archive_entry: None,
                },
            )
            .await;
        // `Runs::import` answers once the run's transaction committed.
        let outcome = match &imported {
            Ok(_) => metrics::Outcome::Imported,
            Err(error) => metrics::outcome_of(error),
        };
        metrics::imported(Source::File, format, outcome);
        let (row, overlapping) = imported?;
        let run = self.runs.get(&caller.user_id, row.id).await?;
        Ok(Response::new(proto::ImportRunResponse {
            run: Some(run),
            probable_duplicate_run_ids: overlapping.iter().map(Uuid::to_string).collect(),
        }))
    }

    async fn get_run(
        &self,
        request: Request<proto::GetRunRequest>,
    ) -> Result<Response<proto::GetRunResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = run_id("run_id", &request.get_ref().run_id)?;
        let run = self.runs.get(&caller.user_id, id).await?;
        Ok(Response::new(proto::GetRunResponse { run: Some(run) }))
    }

    async fn list_runs(
        &self,
        request: Request<proto::ListRunsRequest>,
    ) -> Result<Response<proto::ListRunsResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let from = optional_time(&mut violations, "from_time", request.from_time.as_ref());
        let to = optional_time(&mut violations, "to_time", request.to_time.as_ref());
        if let (Some(from), Some(to)) = (from, to)
            && to <= from
        {
            violations.add("to_time", "must be after from_time");
        }
        let sport = match proto::Sport::try_from(request.sport) {
            Ok(proto::Sport::Unspecified) => None,
            Ok(sport) => Some(wire::sport_code(sport)),
            Err(_) => {
                violations.add("sport", "is not a sport");
                None
            }
        };
        let page_size = match request.page_size {
            0 => 20,
            size if size < 0 => {
                violations.add("page_size", "must not be negative");
                20
            }
            size => u64::try_from(size.min(100)).unwrap_or(100),
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            let decoded = decode_page_token(&request.page_token);
            if decoded.is_none() {
                violations.add("page_token", "is not a token this service gave");
            }
            decoded
        };
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let (rows, more) = self
            .runs
            .list(
                &caller.user_id,
                RunQuery {
                    from,
                    to,
                    sport,
                    page_size,
                    after,
                },
            )
            .await?;
        let next_page_token = match rows.last() {
            Some(last) if more => encode_page_token(last.start_time, last.id),
            _ => String::new(),
        };
        Ok(Response::new(proto::ListRunsResponse {
            runs: rows
                .iter()
                .map(|row| wire::run_message(row, None))
                .collect(),
            next_page_token,
        }))
    }

    async fn update_run(
        &self,
        request: Request<proto::UpdateRunRequest>,
    ) -> Result<Response<proto::UpdateRunResponse>, Status> {
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let run = request
            .run
            .ok_or_else(|| Error::invalid("run", "is required"))?;
        let id = run_id("run.run_id", &run.run_id)?;
        let paths: BTreeSet<String> = request
            .update_mask
            .map(|mask| mask.paths.into_iter().collect())
            .unwrap_or_default();
        let mut violations = Violations::new();
        if paths.is_empty() {
            violations.add("update_mask", "name at least one field to change");
        }
        let mut changes = RunChanges::default();
        for path in &paths {
            match path.as_str() {
                "title" => {
                    if run.title.trim().is_empty() {
                        violations.add("run.title", "must not be empty");
                    } else if run.title.chars().count() > MAX_TITLE_CHARS {
                        violations
                            .add("run.title", format!("at most {MAX_TITLE_CHARS} characters"));
                    }
                    changes.title = Some(run.title.clone());
                }
                "notes" => {
                    if run.notes.chars().count() > MAX_NOTES_CHARS {
                        violations
                            .add("run.notes", format!("at most {MAX_NOTES_CHARS} characters"));
                    }
                    changes.notes = Some(run.notes.clone());
                }
                "sport" => match proto::Sport::try_from(run.sport) {
                    Ok(proto::Sport::Unspecified) | Err(_) => {
                        violations.add("run.sport", "must be a sport");
                    }
                    Ok(sport) => changes.sport = Some(wire::sport_code(sport)),
                },
                "visibility" => {
                    changes.visibility =
                        parse_visibility(&mut violations, "run.visibility", run.visibility);
                    if changes.visibility.is_none() {
                        violations.add("run.visibility", "must be set");
                    }
                }
                other => violations.add(
                    "update_mask",
                    format!("{other:?} cannot be changed (only {UPDATABLE_FIELDS:?})"),
                ),
            }
        }
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let row = self.runs.update(&caller.user_id, id, changes).await?;
        let run = self.runs.get(&caller.user_id, row.id).await?;
        Ok(Response::new(proto::UpdateRunResponse { run: Some(run) }))
    }

    async fn delete_run(
        &self,
        request: Request<proto::DeleteRunRequest>,
    ) -> Result<Response<proto::DeleteRunResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = run_id("run_id", &request.get_ref().run_id)?;
        self.runs.delete(&caller.user_id, id).await?;
        Ok(Response::new(proto::DeleteRunResponse {}))
    }

    async fn get_run_streams(
        &self,
        request: Request<proto::GetRunStreamsRequest>,
    ) -> Result<Response<proto::GetRunStreamsResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = run_id("run_id", &request.get_ref().run_id)?;
        Ok(Response::new(self.runs.streams(&caller.user_id, id).await?))
    }

    type DownloadOriginalStream = DownloadStream;

    async fn download_original(
        &self,
        request: Request<proto::DownloadOriginalRequest>,
    ) -> Result<Response<Self::DownloadOriginalStream>, Status> {
        let caller = require_caller(&request)?;
        let id = run_id("run_id", &request.get_ref().run_id)?;
        let original = self.runs.original(&caller.user_id, id).await?;
        let size_bytes = original.bytes.len() as u64;
        let mut messages = Vec::new();
        let mut chunks = original.bytes.chunks(DOWNLOAD_CHUNK_BYTES);
        messages.push(Ok(proto::DownloadOriginalResponse {
            body: Some(HttpBody {
                content_type: original.content_type.clone(),
                data: chunks.next().map(<[u8]>::to_vec).unwrap_or_default(),
                extensions: Vec::new(),
            }),
            file_name: original.file_name.clone(),
            size_bytes,
        }));
        for chunk in chunks {
            messages.push(Ok(proto::DownloadOriginalResponse {
                body: Some(HttpBody {
                    content_type: original.content_type.clone(),
                    data: chunk.to_vec(),
                    extensions: Vec::new(),
                }),
                file_name: String::new(),
                size_bytes: 0,
            }));
        }
        let stream: DownloadStream = Box::pin(futures::stream::iter(messages));
        Ok(Response::new(stream))
    }

    async fn start_archive_import(
        &self,
        request: Request<Streaming<proto::StartArchiveImportRequest>>,
    ) -> Result<Response<proto::StartArchiveImportResponse>, Status> {
        let caller = require_caller(&request)?;
        let mut stream = request.into_inner();
        // An export refused at upload (too large, empty, not a safe zip) counts as a failure.
        let refused = |error: &Error| metrics::failed(Source::Archive, metrics::reason(error));
        let mut spool = self.archives.spool().await.inspect_err(refused)?;
        while let Some(message) = stream.message().await? {
            if let Some(body) = message.archive {
                spool.write(&body.data).await.inspect_err(refused)?;
            }
        }
        let id = self
            .archives
            .start(&caller.user_id, spool)
            .await
            .inspect_err(refused)?;
        let archive_import = self.archives.snapshot(&caller.user_id, id).await?;
        Ok(Response::new(proto::StartArchiveImportResponse {
            archive_import: Some(archive_import),
        }))
    }

    type WatchArchiveImportStream = WatchImportStream;

    async fn watch_archive_import(
        &self,
        request: Request<proto::WatchArchiveImportRequest>,
    ) -> Result<Response<Self::WatchArchiveImportStream>, Status> {
        let caller = require_caller(&request)?;
        let id = import_id(&request.get_ref().import_id)?;
        let updates = self.archives.watch(&caller.user_id, id).await?;
        let stream: WatchImportStream = Box::pin(futures::StreamExt::map(updates, |update| {
            update.map(|archive_import| proto::WatchArchiveImportResponse {
                archive_import: Some(archive_import),
            })
        }));
        Ok(Response::new(stream))
    }

    async fn get_archive_import(
        &self,
        request: Request<proto::GetArchiveImportRequest>,
    ) -> Result<Response<proto::GetArchiveImportResponse>, Status> {
        let caller = require_caller(&request)?;
        let id = import_id(&request.get_ref().import_id)?;
        let archive_import = self.archives.snapshot(&caller.user_id, id).await?;
        Ok(Response::new(proto::GetArchiveImportResponse {
            archive_import: Some(archive_import),
        }))
    }

    async fn list_personal_records(
        &self,
        request: Request<proto::ListPersonalRecordsRequest>,
    ) -> Result<Response<proto::ListPersonalRecordsResponse>, Status> {
        let caller = require_caller(&request)?;
        let records = self.runs.records(&caller.user_id).await?;
        Ok(Response::new(proto::ListPersonalRecordsResponse {
            records: records.iter().map(wire::personal_record).collect(),
        }))
    }

    async fn get_stats(
        &self,
        request: Request<proto::GetStatsRequest>,
    ) -> Result<Response<proto::GetStatsResponse>, Status> {
        use proto::get_stats_request::Period as P;
        let caller = require_caller(&request)?;
        let request = request.into_inner();
        let mut violations = Violations::new();
        let period = match P::try_from(request.period) {
            Ok(P::Week) => Period::Week,
            Ok(P::Month) => Period::Month,
            Ok(P::Year) => Period::Year,
            Ok(P::AllTime) => Period::AllTime,
            Ok(P::Unspecified) | Err(_) => {
                violations.add("period", "must be week, month, year or all time");
                Period::Week
            }
        };
        let date = if request.date.is_empty() {
            None
        } else {
            let parsed = NaiveDate::parse_from_str(&request.date, "%Y-%m-%d").ok();
            if parsed.is_none() {
                violations.add("date", "must be a day like 2026-12-01");
            }
            parsed
        };
        if !violations.is_empty() {
            return Err(Error::InvalidInput(violations.into_vec()).into());
        }
        let stats = self.runs.stats(&caller.user_id, period, date).await?;
        Ok(Response::new(proto::GetStatsResponse {
            from_date: stats.from_date.to_string(),
            to_date: stats.to_date.to_string(),
            time_zone: stats.time_zone,
            runs: stats.runs,
            distance_meters: stats.distance_m,
            moving_time: Some(wire::duration(stats.moving_s)),
            elapsed_time: Some(wire::duration(stats.elapsed_s)),
            elevation_gain_meters: stats.elevation_gain_m,
            active_days: stats.active_days,
        }))
    }
}

/// A manual run's fields, every refusal at once (the domain's rules included).
fn parse_manual(run: &proto::Run) -> Result<ManualEntry, Error> {
    let mut violations = Violations::new();
    let sport = match proto::Sport::try_from(run.sport) {
        Ok(proto::Sport::Unspecified) => {
            violations.add("run.sport", "is required");
            None
        }
        Ok(sport) => Some(sport),
        Err(_) => {
            violations.add("run.sport", "is not a sport");
            None
        }
    };
    let start = match &run.start_time {
        None => {
            violations.add("run.start_time", "is required");
            None
        }
        Some(at) => optional_time(&mut violations, "run.start_time", Some(at)),
    };
    let duration_s = match &run.elapsed_time {
        None => {
            violations.add("run.elapsed_time", "is required");
            None
        }
        Some(d) => {
            let parsed = wire::from_duration(d);
            if parsed.is_none() {
                violations.add("run.elapsed_time", "must be a positive duration");
            }
            parsed
        }
    };
    let moving_s = run.moving_time.as_ref().and_then(|d| {
        let parsed = wire::from_duration(d);
        match (parsed, duration_s) {
            (None, _) => violations.add("run.moving_time", "must be a positive duration"),
            (Some(moving), Some(elapsed)) if moving > elapsed => {
                violations.add("run.moving_time", "must not exceed the elapsed time");
            }
            _ => {}
        }
        parsed
    });
    let time_zone = if run.time_zone.is_empty() {
        None
    } else {
        let parsed = run.time_zone.parse::<chrono_tz::Tz>().ok();
        if parsed.is_none() {
            violations.add(
                "run.time_zone",
                "must be an IANA time zone, e.g. Asia/Seoul",
            );
        }
        parsed
    };
    if run.title.chars().count() > MAX_TITLE_CHARS {
        violations.add("run.title", format!("at most {MAX_TITLE_CHARS} characters"));
    }
    if run.notes.chars().count() > MAX_NOTES_CHARS {
        violations.add("run.notes", format!("at most {MAX_NOTES_CHARS} characters"));
    }
    let visibility = parse_visibility(&mut violations, "run.visibility", run.visibility);
    let manual = match (sport, start, duration_s) {
        (Some(sport), Some(start), Some(duration_s)) => {
            let input = ManualRunInput {
                sport: wire::domain_sport(sport),
                start,
                duration_s,
                distance_m: run.distance_meters,
                elevation_gain_m: run.elevation_gain_meters,
                average_heart_rate_bpm: run.average_heart_rate.map(f64::from),
            };
            match domain::validate_manual_run(&input, Utc::now()) {
                Ok(manual) => Some(manual),
                Err(refused) => {
                    for violation in refused {
                        violations.add(manual_field(violation.field), violation.description);
                    }
                    None
                }
            }
        }
        _ => None,
    };
    match (manual, sport) {
        (Some(manual), Some(sport)) if violations.is_empty() => Ok(ManualEntry {
            run: manual,
            sport: wire::sport_code(sport),
            title: run.title.trim().to_owned(),
            notes: run.notes.clone(),
            visibility,
            time_zone,
            moving_s,
            source: "manual",
            content_hash: None,
            archive_entry: None,
        }),
        _ => Err(Error::InvalidInput(violations.into_vec())),
    }
}

/// The request path of a field the domain refused.
fn manual_field(field: &str) -> &'static str {
    match field {
        "start" => "run.start_time",
        "duration" => "run.elapsed_time",
        "distance" => "run.distance_meters",
        "elevation_gain" => "run.elevation_gain_meters",
        "average_heart_rate" => "run.average_heart_rate",
        _ => "run",
    }
}

fn parse_visibility(violations: &mut Violations, field: &str, value: i32) -> Option<&'static str> {
    match proto::Visibility::try_from(value) {
        Ok(visibility) => wire::visibility_code(visibility),
        Err(_) => {
            violations.add(field, "is not a visibility");
            None
        }
    }
}

fn optional_time(
    violations: &mut Violations,
    field: &str,
    at: Option<&prost_types::Timestamp>,
) -> Option<DateTime<Utc>> {
    let at = at?;
    let parsed = wire::from_timestamp(at);
    if parsed.is_none() {
        violations.add(field, "is not a valid time");
    }
    parsed
}

fn run_id(field: &str, text: &str) -> Result<Uuid, Error> {
    if text.is_empty() {
        return Err(Error::invalid(field, "is required"));
    }
    Uuid::parse_str(text).map_err(|_| Error::invalid(field, "is not a run id"))
}

/// An import id; one that is not a UUID cannot be anyone's import.
fn import_id(text: &str) -> Result<Uuid, Error> {
    if text.is_empty() {
        return Err(Error::invalid("import_id", "is required"));
    }
    Uuid::parse_str(text).map_err(|_| Error::ImportNotFound(text.to_owned()))
}

fn encode_page_token(start: DateTime<Utc>, id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}_{}", start.timestamp_micros(), id))
}

fn decode_page_token(token: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (micros, id) = text.split_once('_')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn page_tokens_round_trip_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_767_225_600_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(
            decode_page_token(&encode_page_token(at, id)),
            Some((at, id))
        );
        assert_eq!(decode_page_token("not a token"), None);
    }
}
