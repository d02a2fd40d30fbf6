//! svc-run's own metrics (`runmesh_run_…`), beside autometrics' function metrics: what became of
//! imported files (`ImportRun` and every activity of a Strava export), why imports failed, and
//! how many exports this process is importing. docs/operations.md lists them.
//!
//! An import is counted once its outcome is committed: `imported` after the run's transaction,
//! an export's `duplicate`/`failed` activity after its entry row is written (so an import resumed
//! after a restart does not count again what was handled).

use std::io::Read;
use std::sync::{LazyLock, Once};

use runmesh_platform::telemetry::prometheus_client::metrics::counter::Counter;
use runmesh_platform::telemetry::prometheus_client::metrics::family::Family;
use runmesh_platform::telemetry::prometheus_client::metrics::gauge::Gauge;
use runmesh_platform::telemetry::prometheus_client::registry::Registry;

use crate::domain;
use crate::error::Error;

type Labels = Vec<(&'static str, &'static str)>;

/// Imports by source, format and outcome (`runmesh_run_imports_total`).
static IMPORTS: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// Failed imports by source and reason (`runmesh_run_import_failures_total`).
static IMPORT_FAILURES: LazyLock<Family<Labels, Counter>> = LazyLock::new(Family::default);
/// Strava exports being imported by this process.
static ARCHIVES_RUNNING: LazyLock<Gauge> = LazyLock::new(Gauge::default);

/// How much of a gzipped file is inflated to tell its format.
const SNIFF_BYTES: u64 = 64 * 1024;

/// Adds svc-run's metrics to what `/metrics` exports (once per process).
pub fn register() {
    static REGISTERED: Once = Once::new();
    REGISTERED.call_once(|| runmesh_platform::telemetry::register_metrics(register_into));
}

fn register_into(registry: &mut Registry) {
    registry.register(
        "runmesh_run_imports",
        "Activity files imported, by source (file, archive), format (fit, gpx, tcx, manual, unknown) and outcome (imported, duplicate, failed)",
        IMPORTS.clone(),
    );
    registry.register(
        "runmesh_run_import_failures",
        "Imports refused or failed, by source (file, archive) and reason (CORRUPT_FILE, FILE_TOO_LARGE, BAD_ARCHIVE, …)",
        IMPORT_FAILURES.clone(),
    );
    registry.register(
        "runmesh_run_archive_imports_running",
        "Strava exports being imported by this process",
        ARCHIVES_RUNNING.clone(),
    );
}

/// svc-run's series in the Prometheus text format, as `/metrics` adds them (for tests and
/// debugging; the values are the process's).
pub fn render() -> String {
    runmesh_platform::telemetry::render_metrics(register_into)
}

/// Where an imported file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    /// `ImportRun`.
    File,
    /// An activity of a Strava export (`StartArchiveImport`), or the export itself.
    Archive,
}

impl Source {
    const fn code(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Archive => "archive",
        }
    }
}

/// What became of one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The run is committed.
    Imported,
    /// The runner had imported the same file (or Strava activity) already.
    Duplicate,
    /// Refused or failed, for this reason (an `ErrorInfo.reason` or an export entry's reason).
    Failed(&'static str),
}

/// The label of a file's format by its content: `fit`, `gpx`, `tcx` (plain or gzipped), else
/// `unknown`. Reads only the start of the file.
pub(crate) fn file_format(bytes: &[u8]) -> &'static str {
    let format = match domain::detect_format(bytes) {
        (Some(format), _) => Some(format),
        (None, true) => {
            let mut start = Vec::new();
            // A gzip that breaks off early still tells its format by what it inflated.
            if let Err(error) = flate2::read::MultiGzDecoder::new(bytes)
                .take(SNIFF_BYTES)
                .read_to_end(&mut start)
            {
                tracing::debug!(%error, inflated = start.len(), "sniffing a broken gzip");
            }
            domain::detect_format(&start).0
        }
        (None, false) => None,
    };
    format.map_or("unknown", domain::FileFormat::as_str)
}

/// The reason an import of `ImportRun` or an export upload failed: its `ErrorInfo.reason`.
pub(crate) fn reason(error: &Error) -> &'static str {
    match error {
        Error::BadFile(parse) => parse.reason(),
        Error::FileTooLarge { .. } => "FILE_TOO_LARGE",
        Error::AnalysisFailed => "ANALYSIS_FAILED",
        Error::BadArchive(_) => "BAD_ARCHIVE",
        Error::DuplicateRun { .. } => "DUPLICATE_RUN",
        Error::InvalidInput(_) => "INVALID_ARGUMENT",
        _ => "INTERNAL",
    }
}

/// The outcome of an `ImportRun` call that ended in `error`.
pub(crate) fn outcome_of(error: &Error) -> Outcome {
    match error {
        Error::DuplicateRun { .. } => Outcome::Duplicate,
        error => Outcome::Failed(reason(error)),
    }
}

/// Counts one import of a file (or a manual activity of an export) of `format`.
pub(crate) fn imported(source: Source, format: &'static str, outcome: Outcome) {
    let code = match outcome {
        Outcome::Imported => "imported",
        Outcome::Duplicate => "duplicate",
        Outcome::Failed(reason) => {
            failed(source, reason);
            "failed"
        }
    };
    IMPORTS
        .get_or_create(&vec![
            ("source", source.code()),
            ("format", format),
            ("outcome", code),
        ])
        .inc();
}

/// Counts a failure that is not one file's: an export refused at upload or stopped unreadable.
pub(crate) fn failed(source: Source, reason: &'static str) {
    IMPORT_FAILURES
        .get_or_create(&vec![("source", source.code()), ("reason", reason)])
        .inc();
}

/// Counts a Strava export as being imported until dropped.
pub(crate) struct ArchiveRunning(());

impl ArchiveRunning {
    pub(crate) fn start() -> Self {
        ARCHIVES_RUNNING.inc();
        Self(())
    }
}

impl Drop for ArchiveRunning {
    fn drop(&mut self) {
        ARCHIVES_RUNNING.dec();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write;

    use super::*;

    #[test]
    fn formats_are_told_by_content_gzipped_or_not() {
        let gpx = b"<?xml version=\"1.0\"?>\n<gpx version=\"1.1\"><trk></trk></gpx>";
        assert_eq!(file_format(gpx), "gpx");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(gpx).unwrap();
        let gzipped = encoder.finish().unwrap();
        assert_eq!(file_format(&gzipped), "gpx");
        assert_eq!(file_format(&gzipped[..gzipped.len() - 12]), "gpx");
        assert_eq!(file_format(b"not a run"), "unknown");
        assert_eq!(file_format(&[0x1f, 0x8b, 0, 0]), "unknown");
    }

    #[test]
    fn every_series_is_exported_under_its_documented_name() {
        imported(Source::File, "fit", Outcome::Imported);
        imported(Source::Archive, "unknown", Outcome::Failed("FILE_MISSING"));
        failed(Source::Archive, "BAD_ARCHIVE");
        let running = ArchiveRunning::start();
        let text = render();
        for series in [
            "# TYPE runmesh_run_imports counter",
            "runmesh_run_imports_total{source=\"file\",format=\"fit\",outcome=\"imported\"} ",
            "runmesh_run_imports_total{source=\"archive\",format=\"unknown\",outcome=\"failed\"} ",
            "runmesh_run_import_failures_total{source=\"archive\",reason=\"FILE_MISSING\"} ",
            "runmesh_run_import_failures_total{source=\"archive\",reason=\"BAD_ARCHIVE\"} ",
            "# TYPE runmesh_run_archive_imports_running gauge",
            "runmesh_run_archive_imports_running 1",
        ] {
            assert!(text.contains(series), "no {series} in:\n{text}");
        }
        drop(running);
        assert!(render().contains("runmesh_run_archive_imports_running 0"));
    }
}
