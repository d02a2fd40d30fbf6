//! Strava bulk-export import: the upload is spooled to a file of its own under
//! [`RunConfig::archive_dir`](crate::config::RunConfig::archive_dir), checked (zip bombs, unsafe
//! names, symlinks, encryption), recorded in `archive_imports`, and imported in the background,
//! one activity of `activities.csv` at a time through the same path as `ImportRun` (or
//! `CreateRun` for manual activities).
//!
//! Restarts: the state lives in the database. Each handled activity leaves an `archive_entries`
//! row (the row of an imported one is written in its run's transaction), so a resumed import
//! ([`Archives::resume`], at start) skips what was handled, and never imports an activity twice;
//! a file already imported by this runner (any import, or `ImportRun`) is skipped as
//! `DUPLICATE_RUN` by the content hash, a manual activity by its Strava activity id.
//!
//! Memory: entries are read one at a time (an activity file is at most
//! `RUNMESH_RUN_MAX_FILE_BYTES`); only `activities.csv`'s rows are held (at most 256 MiB of CSV).

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use futures::Stream;
use runmesh_proto::runmesh::run::v1 as proto;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use tokio::io::AsyncWriteExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use uuid::Uuid;
use zip::ZipArchive;

use crate::domain::{self, ManualRunInput};
use crate::error::Error;
use crate::metrics::{self, ArchiveRunning, Outcome, Source};
use crate::runs::{ArchiveMark, ManualEntry, Runs, Upload, sha256_hex};
use crate::store::archive::{entry, import};
use crate::wire;

/// Most bytes of `activities.csv`.
pub const MAX_CSV_BYTES: u64 = 256 * 1024 * 1024;
/// Entries smaller than this are not held to the compression-ratio cap.
const RATIO_FLOOR_BYTES: u64 = 1024 * 1024;
/// Problems listed in a progress report.
const MAX_PROBLEMS: u64 = 100;
/// How often a watcher re-reads the database when it hears nothing (an import run by another
/// process, or a missed notification).
const POLL: Duration = Duration::from_millis(1_000);

type Zip = Arc<Mutex<ZipArchive<File>>>;

/// The archive imports of this process.
pub struct Archives {
    runs: Arc<Runs>,
    tasks: TaskTracker,
    shutdown: CancellationToken,
    /// A version bumped after each change of a running import, for its watchers.
    running: Mutex<HashMap<Uuid, watch::Sender<u64>>>,
}

/// An upload being written to its spool file; the file is removed unless the import starts.
pub struct Spool {
    id: Uuid,
    path: PathBuf,
    file: Option<tokio::fs::File>,
    written: u64,
    limit: u64,
    kept: bool,
}

impl Spool {
    /// Appends a chunk; past the limit the upload is refused before the rest is read.
    pub async fn write(&mut self, data: &[u8]) -> Result<(), Error> {
        self.written = self.written.saturating_add(data.len() as u64);
        if self.written > self.limit {
            return Err(Error::FileTooLarge { limit: self.limit });
        }
        if let Some(file) = self.file.as_mut() {
            file.write_all(data).await?;
        }
        Ok(())
    }
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// One row of `activities.csv`.
#[derive(Debug, Clone, Default)]
struct Row {
    id: String,
    date: String,
    name: String,
    kind: String,
    description: String,
    elapsed: String,
    /// The first `Distance` column: km for runs (Strava's display unit).
    distance_km: String,
    /// The later `Distance` column: metres, when the export has it.
    distance_m: String,
    moving: String,
    gear: String,
    private_note: String,
    filename: String,
}

/// How an import's work ended.
enum Finished {
    Done,
    Interrupted,
}

impl Archives {
    pub fn new(runs: Arc<Runs>, tasks: TaskTracker, shutdown: CancellationToken) -> Self {
        Self {
            runs,
            tasks,
            shutdown,
            running: Mutex::new(HashMap::new()),
        }
    }

    fn spool_path(&self, id: Uuid) -> PathBuf {
        self.runs.config().archive_dir.join(format!("{id}.zip"))
    }

    /// A new spool file for an upload.
    pub async fn spool(&self) -> Result<Spool, Error> {
        let id = Uuid::now_v7();
        let path = self.spool_path(id);
        tokio::fs::create_dir_all(&self.runs.config().archive_dir).await?;
        let file = tokio::fs::File::create(&path).await?;
        Ok(Spool {
            id,
            path,
            file: Some(file),
            written: 0,
            limit: self.runs.config().max_archive_bytes,
            kept: false,
        })
    }

    /// Checks the spooled zip, records the import and starts it in the background.
    pub async fn start(self: &Arc<Self>, owner: &str, mut spool: Spool) -> Result<Uuid, Error> {
        if let Some(mut file) = spool.file.take() {
            file.flush().await?;
            file.sync_all().await?;
        }
        if spool.written == 0 {
            return Err(Error::invalid("archive", "is empty"));
        }
        let path = spool.path.clone();
        let caps = Caps::of(self.runs.config());
        tokio::task::spawn_blocking(move || check_archive(&path, &caps))
            .await?
            .map_err(Error::BadArchive)?;
        let row = import::Model {
            id: spool.id,
            owner_id: owner.to_owned(),
            state: "running".to_owned(),
            activities_seen: 0,
            error: String::new(),
            started_at: wire::now(),
            finished_at: None,
        };
        import::Entity::insert(import::ActiveModel::from(row.clone()))
            .exec_without_returning(self.runs.db())
            .await?;
        spool.kept = true;
        self.launch(row);
        Ok(spool.id)
    }

    /// Starts again every import left running by an earlier process.
    pub async fn resume(self: &Arc<Self>) -> Result<usize, Error> {
        let unfinished = import::Entity::find()
            .filter(import::Column::State.eq("running"))
            .all(self.runs.db())
            .await?;
        let count = unfinished.len();
        for row in unfinished {
            tracing::info!(import_id = %row.id, "resuming an archive import");
            self.launch(row);
        }
        Ok(count)
    }

    fn launch(self: &Arc<Self>, row: import::Model) {
        let (sender, _) = watch::channel(0);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(row.id, sender);
        let this = Arc::clone(self);
        let running = ArchiveRunning::start();
        self.tasks
            .spawn(async move { this.run(row, running).await });
    }

    fn notify(&self, id: Uuid) {
        if let Some(sender) = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
        {
            sender.send_modify(|version| *version += 1);
        }
    }

    async fn run(self: Arc<Self>, row: import::Model, running: ArchiveRunning) {
        let id = row.id;
        let shutdown = self.shutdown.clone();
        let outcome = tokio::select! {
            outcome = self.work(&row) => outcome,
            () = shutdown.cancelled() => Ok(Finished::Interrupted),
        };
        // No longer running here before anyone can read the import's end.
        drop(running);
        let end = match outcome {
            Ok(Finished::Interrupted) => None,
            Ok(Finished::Done) => Some(("done", String::new(), None)),
            Err(Error::Database(err)) => {
                // Left running: the next start resumes it.
                tracing::error!(import_id = %id, error = %err, "archive import stopped on a database error");
                None
            }
            Err(err) => Some(("failed", err.to_string(), Some(metrics::reason(&err)))),
        };
        if let Some((state, error, failure)) = end {
            let update = import::ActiveModel {
                id: Set(id),
                state: Set(state.to_owned()),
                error: Set(error),
                finished_at: Set(Some(wire::now())),
                ..Default::default()
            };
            if let Err(err) = update.update(self.runs.db()).await {
                tracing::error!(import_id = %id, error = %err, "recording the end of an archive import");
            } else {
                if let Some(reason) = failure {
                    metrics::failed(Source::Archive, reason);
                }
                let _ = tokio::fs::remove_file(self.spool_path(id)).await;
            }
        }
        self.notify(id);
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }

    async fn work(&self, row: &import::Model) -> Result<Finished, Error> {
        let path = self.spool_path(row.id);
        let max_file_bytes = self.runs.config().max_file_bytes;
        let opened = tokio::task::spawn_blocking(move || -> Result<_, String> {
            let file =
                File::open(&path).map_err(|err| format!("the uploaded archive is gone ({err})"))?;
            let mut archive = ZipArchive::new(file).map_err(|err| format!("not a zip: {err}"))?;
            let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
            let csv_name = names
                .iter()
                .filter(|name| *name == "activities.csv" || name.ends_with("/activities.csv"))
                .min_by_key(|name| name.len())
                .cloned()
                .ok_or_else(|| "the archive has no activities.csv".to_owned())?;
            let bytes = read_entry(&mut archive, &csv_name, MAX_CSV_BYTES)?;
            let rows = parse_csv(&bytes)?;
            let prefix = csv_name.trim_end_matches("activities.csv").to_owned();
            let index: HashMap<String, usize> = names
                .into_iter()
                .enumerate()
                .filter(|(_, name)| name.starts_with(&prefix))
                .map(|(i, name)| (name[prefix.len()..].to_owned(), i))
                .collect();
            Ok((Arc::new(Mutex::new(archive)), rows, index))
        })
        .await?;
        let (zip, rows, index) = opened.map_err(Error::BadArchive)?;

        let seen = i32::try_from(rows.len()).unwrap_or(i32::MAX);
        if row.activities_seen != seen {
            import::ActiveModel {
                id: Set(row.id),
                activities_seen: Set(seen),
                ..Default::default()
            }
            .update(self.runs.db())
            .await?;
            self.notify(row.id);
        }
        let done: HashSet<i32> = entry::Entity::find()
            .select_only()
            .column(entry::Column::Position)
            .filter(entry::Column::ImportId.eq(row.id))
            .into_tuple::<i32>()
            .all(self.runs.db())
            .await?
            .into_iter()
            .collect();
        for (position, activity) in rows.into_iter().enumerate() {
            let position = i32::try_from(position).unwrap_or(i32::MAX);
            if done.contains(&position) {
                continue;
            }
            if self.shutdown.is_cancelled() {
                return Ok(Finished::Interrupted);
            }
            let name = if activity.filename.is_empty() {
                format!("activities.csv row {}", position + 2)
            } else {
                activity.filename.clone()
            };
            let mark = ArchiveMark {
                import_id: row.id,
                position,
                entry: name,
            };
            let (format, result) = if activity.filename.is_empty() {
                let result = self
                    .import_manual(&row.owner_id, &activity, mark.clone())
                    .await;
                ("manual", result)
            } else {
                self.import_file(
                    &row.owner_id,
                    &activity,
                    mark.clone(),
                    &zip,
                    &index,
                    max_file_bytes,
                )
                .await
            };
            let problem = match result {
                Ok(()) => {
                    // Its entry row was committed with the run.
                    metrics::imported(Source::Archive, format, Outcome::Imported);
                    None
                }
                Err(Error::DuplicateRun { run_id }) => Some((
                    "skipped",
                    "DUPLICATE_RUN",
                    format!("already imported as run {run_id}"),
                )),
                Err(err @ (Error::Database(_) | Error::Task(_))) => return Err(err),
                Err(err) => Some(("failed", reason(&err), err.to_string())),
            };
            if let Some((outcome, reason, message)) = problem {
                let inserted = entry::Entity::insert(entry::ActiveModel {
                    import_id: Set(row.id),
                    position: Set(position),
                    entry: Set(mark.entry.chars().take(255).collect()),
                    outcome: Set(outcome.to_owned()),
                    reason: Set(reason.to_owned()),
                    message: Set(message),
                    run_id: Set(None),
                })
                .exec_without_returning(self.runs.db())
                .await;
                match inserted {
                    Ok(_) => {
                        let outcome = if outcome == "skipped" {
                            Outcome::Duplicate
                        } else {
                            Outcome::Failed(reason)
                        };
                        metrics::imported(Source::Archive, format, outcome);
                    }
                    // Recorded (and counted) by another process meanwhile.
                    Err(err) if crate::store::is_unique_violation(&err) => {}
                    Err(err) => return Err(err.into()),
                }
            }
            self.notify(row.id);
        }
        Ok(Finished::Done)
    }

    async fn import_file(
        &self,
        owner: &str,
        activity: &Row,
        mark: ArchiveMark,
        zip: &Zip,
        index: &HashMap<String, usize>,
        max_file_bytes: u64,
    ) -> (&'static str, Result<(), Error>) {
        let bytes = match read_file(activity, zip, index, max_file_bytes).await {
            Ok(bytes) => bytes,
            Err(err) => return ("unknown", Err(err)),
        };
        let format = metrics::file_format(&bytes);
        let file_name = activity
            .filename
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        let imported = self
            .runs
            .import(
                owner,
                Upload {
                    file_name,
                    title: Some(activity.name.chars().take(200).collect()),
                    visibility: None,
                    bytes,
                    notes: notes(activity),
                    sport: sport(&activity.kind),
                    archive_entry: Some(mark),
                },
            )
            .await
            .map(|_| ());
        (format, imported)
    }

    async fn import_manual(
        &self,
        owner: &str,
        activity: &Row,
        mark: ArchiveMark,
    ) -> Result<(), Error> {
        let start = parse_date(&activity.date).ok_or_else(|| {
            Error::invalid(
                "Activity Date",
                format!("{:?} is not a date this import understands", activity.date),
            )
        })?;
        let duration_s = number(&activity.elapsed)
            .ok_or_else(|| Error::invalid("Elapsed Time", "must be a number of seconds"))?;
        let distance_m = number(&activity.distance_m)
            .or_else(|| number(&activity.distance_km).map(|km| km * 1_000.0))
            .unwrap_or(0.0);
        let sport_code = sport(&activity.kind).unwrap_or("run");
        let input = ManualRunInput {
            sport: wire::domain_sport(wire::sport_from_code(sport_code)),
            start,
            duration_s,
            distance_m,
            elevation_gain_m: None,
            average_heart_rate_bpm: None,
        };
        let run = domain::validate_manual_run(&input, Utc::now()).map_err(|refused| {
            Error::InvalidInput(
                refused
                    .into_iter()
                    .map(|v| runmesh_platform::validation::FieldViolation {
                        field: v.field.to_owned(),
                        description: v.description,
                    })
                    .collect(),
            )
        })?;
        let key = if activity.id.is_empty() {
            format!(
                "{}|{}|{}|{}",
                activity.date, activity.name, activity.elapsed, activity.distance_km
            )
        } else {
            activity.id.clone()
        };
        self.runs
            .create_manual(
                owner,
                ManualEntry {
                    run,
                    sport: sport_code,
                    title: activity.name.chars().take(200).collect(),
                    notes: notes(activity),
                    visibility: None,
                    time_zone: None,
                    moving_s: number(&activity.moving).filter(|m| *m > 0.0 && *m <= duration_s),
                    source: "strava_manual",
                    content_hash: Some(sha256_hex(format!("strava-activity:{key}").as_bytes())),
                    archive_entry: Some(mark),
                },
            )
            .await
            .map(|_| ())
    }

    /// The import's progress, for its owner only.
    pub async fn snapshot(&self, owner: &str, id: Uuid) -> Result<proto::ArchiveImport, Error> {
        let db = self.runs.db();
        let row = import::Entity::find_by_id(id)
            .one(db)
            .await?
            .filter(|row| row.owner_id == owner)
            .ok_or_else(|| Error::ImportNotFound(id.to_string()))?;
        let counts: Vec<(String, i64)> = entry::Entity::find()
            .select_only()
            .column(entry::Column::Outcome)
            .column_as(entry::Column::Position.count(), "n")
            .filter(entry::Column::ImportId.eq(id))
            .group_by(entry::Column::Outcome)
            .into_tuple()
            .all(db)
            .await?;
        let count = |outcome: &str| {
            counts
                .iter()
                .find(|(o, _)| o == outcome)
                .map_or(0, |(_, n)| u32::try_from(*n).unwrap_or(u32::MAX))
        };
        let problems = entry::Entity::find()
            .filter(entry::Column::ImportId.eq(id))
            .filter(entry::Column::Outcome.ne("imported"))
            .order_by_asc(entry::Column::Position)
            .limit(MAX_PROBLEMS)
            .all(db)
            .await?;
        let state = match row.state.as_str() {
            "done" => proto::archive_import::State::Done,
            "failed" => proto::archive_import::State::Failed,
            _ => proto::archive_import::State::Running,
        };
        Ok(proto::ArchiveImport {
            import_id: id.to_string(),
            state: state.into(),
            activities_seen: u32::try_from(row.activities_seen).unwrap_or(0),
            imported: count("imported"),
            skipped: count("skipped"),
            failed: count("failed"),
            problems: problems
                .into_iter()
                .map(|p| proto::ArchiveImportProblem {
                    entry: p.entry,
                    reason: p.reason,
                    message: p.message,
                })
                .collect(),
            error: row.error,
            started_at: Some(wire::timestamp(row.started_at)),
            finished_at: row.finished_at.map(wire::timestamp),
        })
    }

    /// The progress now, then at every change, until the import is done or failed.
    pub async fn watch(
        self: &Arc<Self>,
        owner: &str,
        id: Uuid,
    ) -> Result<
        impl Stream<Item = Result<proto::ArchiveImport, tonic::Status>> + Send + 'static,
        Error,
    > {
        let first = self.snapshot(owner, id).await?;
        let receiver = self
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .map(watch::Sender::subscribe);
        struct Watch {
            archives: Arc<Archives>,
            owner: String,
            id: Uuid,
            receiver: Option<watch::Receiver<u64>>,
            last: Option<proto::ArchiveImport>,
            next: Option<proto::ArchiveImport>,
        }
        let state = Watch {
            archives: Arc::clone(self),
            owner: owner.to_owned(),
            id,
            receiver,
            last: None,
            next: Some(first),
        };
        Ok(futures::stream::unfold(state, |mut w| async move {
            if w.last.as_ref().is_some_and(finished) {
                return None;
            }
            loop {
                if let Some(next) = w.next.take()
                    && w.last.as_ref() != Some(&next)
                {
                    w.last = Some(next.clone());
                    return Some((Ok(next), w));
                }
                let shutdown = w.archives.shutdown.clone();
                match w.receiver.as_mut() {
                    Some(receiver) => tokio::select! {
                        changed = receiver.changed() => if changed.is_err() { w.receiver = None; },
                        () = tokio::time::sleep(POLL) => {}
                        () = shutdown.cancelled() => return None,
                    },
                    None => tokio::select! {
                        () = tokio::time::sleep(POLL) => {}
                        () = shutdown.cancelled() => return None,
                    },
                }
                match w.archives.snapshot(&w.owner, w.id).await {
                    Ok(next) => w.next = Some(next),
                    Err(err) => {
                        w.last = Some(proto::ArchiveImport {
                            state: proto::archive_import::State::Failed.into(),
                            ..Default::default()
                        });
                        return Some((Err(err.into()), w));
                    }
                }
            }
        }))
    }
}

/// The bytes of `activity`'s file in the export, at most `max_file_bytes`.
async fn read_file(
    activity: &Row,
    zip: &Zip,
    index: &HashMap<String, usize>,
    max_file_bytes: u64,
) -> Result<Vec<u8>, Error> {
    let Some(&at) = index.get(activity.filename.trim_start_matches("./")) else {
        return Err(Error::invalid(
            "Filename",
            format!("{} is not in the archive", activity.filename),
        ));
    };
    let zip = Arc::clone(zip);
    let bytes = tokio::task::spawn_blocking(move || {
        let mut archive = zip.lock().unwrap_or_else(PoisonError::into_inner);
        let mut file = archive
            .by_index(at)
            .map_err(|err| Error::BadFile(domain::ParseError::CorruptFile(err.to_string())))?;
        let mut bytes = Vec::new();
        (&mut file)
            .take(max_file_bytes + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| Error::BadFile(domain::ParseError::CorruptFile(err.to_string())))?;
        if bytes.len() as u64 > max_file_bytes {
            return Err(Error::FileTooLarge {
                limit: max_file_bytes,
            });
        }
        Ok(bytes)
    })
    .await??;
    Ok(bytes)
}

fn finished(import: &proto::ArchiveImport) -> bool {
    import.state != proto::archive_import::State::Running as i32
}

/// The reason recorded for an activity that could not be imported.
fn reason(err: &Error) -> &'static str {
    match err {
        Error::BadFile(parse) => parse.reason(),
        Error::FileTooLarge { .. } => "FILE_TOO_LARGE",
        Error::AnalysisFailed => "ANALYSIS_FAILED",
        Error::InvalidInput(violations) if violations.iter().any(|v| v.field == "Filename") => {
            "FILE_MISSING"
        }
        Error::InvalidInput(_) => "INVALID_ACTIVITY",
        _ => "INTERNAL",
    }
}

/// The description, the private note and the gear (svc-run has no gear field) as notes.
fn notes(activity: &Row) -> String {
    let mut parts = Vec::new();
    for part in [&activity.description, &activity.private_note] {
        if !part.trim().is_empty() {
            parts.push(part.trim().to_owned());
        }
    }
    if !activity.gear.trim().is_empty() {
        parts.push(format!("Gear: {}", activity.gear.trim()));
    }
    parts.join("\n\n").chars().take(10_000).collect()
}

/// A sport code for Strava's activity type; `None` when empty.
fn sport(kind: &str) -> Option<&'static str> {
    let kind = kind.trim();
    if kind.is_empty() {
        return None;
    }
    let lower = kind.to_ascii_lowercase();
    if lower.contains("trail") {
        return Some("trail_run");
    }
    if lower.contains("treadmill") || lower == "virtual run" {
        return Some("treadmill");
    }
    Some(wire::sport_code(wire::proto_sport(
        domain::Sport::from_name(kind),
    )))
}

/// A number as Strava writes it, `1,234.5` or a localised `10,02`.
fn number(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let normal = if text.contains('.') {
        text.replace(',', "")
    } else {
        text.replace(',', ".")
    };
    normal.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Strava's `May 6, 2024, 4:02:34 AM` (UTC), and a few other layouts localised exports use.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    const FORMATS: [&str; 8] = [
        "%b %d, %Y, %I:%M:%S %p",
        "%b %d, %Y %I:%M:%S %p",
        "%d %b %Y, %H:%M:%S",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%dT%H:%M:%S",
        "%d.%m.%Y, %H:%M:%S",
        "%d/%m/%Y, %H:%M:%S",
        "%d.%m.%Y %H:%M:%S",
    ];
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    FORMATS
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
        .map(|at| at.and_utc())
}

/// The rows of `activities.csv`, columns by position: the first occurrence of each header name
/// (Strava repeats `Elapsed Time`, `Distance`...), the later `Distance` (metres) and `Moving
/// Time`; an export whose header is not in English falls back to Strava's column positions.
fn parse_csv(bytes: &[u8]) -> Result<Vec<Row>, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut records = reader.records();
    let header = match records.next() {
        Some(Ok(header)) => header,
        Some(Err(err)) => return Err(format!("activities.csv: {err}")),
        None => return Err("activities.csv is empty".to_owned()),
    };
    let names: Vec<String> = header
        .iter()
        .map(|h| h.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    let first = |name: &str| names.iter().position(|h| h.eq_ignore_ascii_case(name));
    let nth = |name: &str, n: usize| {
        names
            .iter()
            .enumerate()
            .filter(|(_, h)| h.eq_ignore_ascii_case(name))
            .nth(n)
            .map(|(i, _)| i)
    };
    let english = first("Activity ID").is_some() && first("Filename").is_some();
    // Strava's layout: ID, Date, Name, Type, Description, Elapsed Time, Distance, Max Heart
    // Rate, Relative Effort, Commute, Private Note, Gear, Filename, ..., Moving Time (16),
    // Distance in metres (17).
    let pick = |name: &str, fallback: usize| {
        if english { first(name) } else { Some(fallback) }
    };
    let columns = [
        pick("Activity ID", 0),
        pick("Activity Date", 1),
        pick("Activity Name", 2),
        pick("Activity Type", 3),
        pick("Activity Description", 4),
        pick("Elapsed Time", 5),
        pick("Distance", 6),
        if english {
            nth("Distance", 1)
        } else {
            Some(17)
        },
        if english {
            first("Moving Time")
        } else {
            Some(16)
        },
        pick("Activity Gear", 11),
        pick("Activity Private Note", 10),
        pick("Filename", 12),
    ];
    let mut rows = Vec::new();
    for record in records {
        let record = record.map_err(|err| format!("activities.csv: {err}"))?;
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        let get = |column: Option<usize>| {
            column
                .and_then(|i| record.get(i))
                .unwrap_or_default()
                .trim()
                .to_owned()
        };
        rows.push(Row {
            id: get(columns[0]),
            date: get(columns[1]),
            name: get(columns[2]),
            kind: get(columns[3]),
            description: get(columns[4]),
            elapsed: get(columns[5]),
            distance_km: get(columns[6]),
            distance_m: get(columns[7]),
            moving: get(columns[8]),
            gear: get(columns[9]),
            private_note: get(columns[10]),
            filename: get(columns[11]),
        });
    }
    Ok(rows)
}

fn read_entry(archive: &mut ZipArchive<File>, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let mut file = archive
        .by_name(name)
        .map_err(|err| format!("{name}: {err}"))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("{name}: {err}"))?;
    if bytes.len() as u64 > limit {
        return Err(format!("{name} is larger than {limit} bytes"));
    }
    Ok(bytes)
}

/// The caps an archive is held to.
#[derive(Debug, Clone, Copy)]
struct Caps {
    entries: u64,
    total: u64,
    entry: u64,
    ratio: u64,
}

impl Caps {
    fn of(config: &crate::config::RunConfig) -> Self {
        Self {
            entries: config.max_archive_entries,
            total: config.max_archive_uncompressed_bytes,
            // An entry may not inflate past what the whole upload may weigh.
            entry: config.max_archive_bytes,
            ratio: config.max_archive_ratio,
        }
    }
}

/// Refuses what is not a zip, or a zip bomb (entry count, total and per-entry inflated size,
/// compression ratio), entries named outside the archive (`../`, absolute), symlinks and
/// encrypted entries. Reads only the central directory.
fn check_archive(path: &std::path::Path, caps: &Caps) -> Result<(), String> {
    let file = File::open(path).map_err(|err| err.to_string())?;
    let mut archive = ZipArchive::new(file).map_err(|err| format!("not a zip archive ({err})"))?;
    if archive.len() as u64 > caps.entries {
        return Err(format!(
            "{} entries, more than the {} accepted",
            archive.len(),
            caps.entries
        ));
    }
    let mut total = 0u64;
    for i in 0..archive.len() {
        let file = archive
            .by_index_raw(i)
            .map_err(|err| format!("entry {i}: {err}"))?;
        let name = file.name().to_owned();
        if file.encrypted() {
            return Err(format!("{name}: encrypted entries are not accepted"));
        }
        let unsafe_name = name.starts_with('/')
            || name.starts_with('\\')
            || name.as_bytes().get(1) == Some(&b':')
            || name.split(['/', '\\']).any(|part| part == "..")
            || file.enclosed_name().is_none();
        if unsafe_name {
            return Err(format!("{name}: entry names must stay inside the archive"));
        }
        let symlink = file
            .unix_mode()
            .is_some_and(|mode| mode & 0o170_000 == 0o120_000);
        if symlink || file.is_symlink() {
            return Err(format!("{name}: symbolic links are not accepted"));
        }
        let size = file.size();
        if size > caps.entry {
            return Err(format!(
                "{name} inflates to {size} bytes, more than {}",
                caps.entry
            ));
        }
        if size > RATIO_FLOOR_BYTES && size > file.compressed_size().saturating_mul(caps.ratio) {
            return Err(format!(
                "{name} inflates more than {} times (a zip bomb?)",
                caps.ratio
            ));
        }
        total = total.saturating_add(size);
        if total > caps.total {
            return Err(format!(
                "the entries inflate to more than {} bytes",
                caps.total
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn strava_dates_and_numbers() {
        assert_eq!(
            parse_date("May 6, 2024, 4:02:34 AM").unwrap().to_rfc3339(),
            "2024-05-06T04:02:34+00:00"
        );
        assert_eq!(
            parse_date("Dec 31, 2023, 11:59:00 PM")
                .unwrap()
                .to_rfc3339(),
            "2023-12-31T23:59:00+00:00"
        );
        assert!(parse_date("6 mai 2024").is_none());
        assert_eq!(number("10,02"), Some(10.02));
        assert_eq!(number("1,234.5"), Some(1234.5));
        assert_eq!(number(""), None);
    }

    #[test]
    fn repeated_headers_are_read_by_first_position() {
        let csv = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,Distance,Filename,Elapsed Time,Moving Time,Distance\n\
                   1,\"May 6, 2024, 4:02:34 AM\",Easy,Run,,3000,10.02,,3000.0,2900.0,10020.5\n";
        let rows = parse_csv(csv.as_bytes()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].distance_km, "10.02");
        assert_eq!(rows[0].distance_m, "10020.5");
        assert_eq!(rows[0].moving, "2900.0");
        assert_eq!(rows[0].elapsed, "3000");
    }
}
