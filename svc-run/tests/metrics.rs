//! svc-run's own metrics as Prometheus scrapes them from `/metrics` (docs/operations.md): files
//! imported through `ImportRun` by format and outcome (a real FIT, a gzipped TCX, a duplicate, a
//! truncated GPX), failures by reason, a Strava export's activities, an export refused at upload,
//! and `runmesh_run_archive_imports_running` at 1 while an export is imported and back to 0 once
//! it is DONE. One test runs both backends in turn and compares scrapes, so the process-wide
//! counters add up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::time::Duration;

use futures::StreamExt;
use runmesh_platform::testkit::{metric_value, scrape_metrics, serve_test_metrics};
use runmesh_proto::google::api::HttpBody;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_svc_run::{RunConfig, RunService};
use sea_orm::{ConnectionTrait, TransactionTrait};
use support::{ALICE, Backend, Harness, assert_status, fixture};
use tonic::Code;
use zip::write::SimpleFileOptions;

fn imports(source: &str, format: &str, outcome: &str) -> String {
    format!(
        r#"runmesh_run_imports_total{{source="{source}",format="{format}",outcome="{outcome}"}}"#
    )
}

fn failures(source: &str, reason: &str) -> String {
    format!(r#"runmesh_run_import_failures_total{{source="{source}",reason="{reason}"}}"#)
}

const RUNNING: &str = "runmesh_run_archive_imports_running";

const HEADER: &str = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,Distance,Max Heart Rate,Relative Effort,Commute,Activity Private Note,Activity Gear,Filename,Athlete Weight,Bike Weight,Elapsed Time,Moving Time,Distance,Max Speed";

/// A Strava-style export: a GPX that imports, a manual activity, and a file the archive lacks.
fn export() -> Vec<u8> {
    let rows = [
        r#"222,"Jun 1, 2024, 6:00:00 AM",Garmin run,Run,,1800,5.0,,,false,,,activities/222.gpx,,,1800.0,1800.0,5000.0,4.0"#,
        r#"555,"Mar 3, 2024, 7:30:00 AM",Track session,Run,Intervals by hand,1800,5.00,,,false,,,,,,1800.0,1750.0,5000.0,5.0"#,
        r#"999,"Mar 7, 2024, 7:30:00 AM",Lost file,Run,,1800,5.0,,,false,,,activities/999.fit.gz,,,1800.0,1800.0,5000.0,4.0"#,
    ];
    let csv = format!("{HEADER}\n{}\n", rows.join("\n"));
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("activities.csv", options).unwrap();
    writer.write_all(csv.as_bytes()).unwrap();
    writer.start_file("activities/222.gpx", options).unwrap();
    writer.write_all(&fixture("garmin-activity.gpx")).unwrap();
    writer.finish().unwrap().into_inner()
}

async fn start_archive(h: &Harness, archive: &[u8]) -> Result<proto::ArchiveImport, tonic::Status> {
    let mut messages = vec![proto::StartArchiveImportRequest { archive: None }];
    for part in archive.chunks(64 * 1024) {
        messages.push(proto::StartArchiveImportRequest {
            archive: Some(HttpBody {
                content_type: "application/zip".to_owned(),
                data: part.to_vec(),
                extensions: Vec::new(),
            }),
        });
    }
    h.client()
        .start_archive_import(h.as_runner(futures::stream::iter(messages), ALICE))
        .await
        .map(|r| r.into_inner().archive_import.unwrap())
}

/// The last progress report of an import, once it ended.
async fn watch_to_end(h: &Harness, id: &str) -> proto::ArchiveImport {
    let mut stream = h
        .client()
        .watch_archive_import(h.as_runner(
            proto::WatchArchiveImportRequest {
                import_id: id.to_owned(),
            },
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut last = None;
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(report) = stream.next().await {
            last = report.unwrap().archive_import;
        }
    })
    .await
    .expect("the import ends");
    last.unwrap()
}

async fn imports_show_on_metrics(backend: Backend, metrics: SocketAddr) {
    let before = scrape_metrics(metrics).await;
    let delta =
        |after: &str, series: &str| metric_value(after, series) - metric_value(&before, series);
    let h = Harness::start(backend).await;
    let private = proto::Visibility::Private;

    // ImportRun: a real FIT and a gzipped TCX import; the FIT again is a duplicate; a GPX cut
    // short fails as CORRUPT_FILE.
    let fit = fixture("4801048867.fit");
    h.import(ALICE, "morning.fit", &fit, 64 * 1024, private)
        .await
        .unwrap();
    h.import(
        ALICE,
        "evening.tcx.gz",
        &fixture("3173437224.tcx.gz"),
        64 * 1024,
        private,
    )
    .await
    .unwrap();
    let again = h
        .import(ALICE, "again.fit", &fit, 64 * 1024, private)
        .await
        .unwrap_err();
    assert_status(&again, Code::AlreadyExists, "DUPLICATE_RUN");
    let wahoo = fixture("wahoo_example.gpx");
    let corrupt = h
        .import(
            ALICE,
            "broken.gpx",
            &wahoo[..wahoo.len() / 3],
            4096,
            private,
        )
        .await
        .unwrap_err();
    assert_status(&corrupt, Code::InvalidArgument, "CORRUPT_FILE");
    let after = scrape_metrics(metrics).await;
    for (series, expected) in [
        (imports("file", "fit", "imported"), 1.0),
        (imports("file", "tcx", "imported"), 1.0),
        (imports("file", "fit", "duplicate"), 1.0),
        (imports("file", "gpx", "failed"), 1.0),
        (failures("file", "CORRUPT_FILE"), 1.0),
        (failures("file", "DUPLICATE_RUN"), 0.0),
    ] {
        assert_eq!(delta(&after, &series), expected, "{series} in:\n{after}");
    }

    // An export that is not a zip is refused at upload.
    let refused = start_archive(&h, b"not a zip at all").await.unwrap_err();
    assert_status(&refused, Code::InvalidArgument, "BAD_ARCHIVE");
    assert_eq!(
        delta(
            &scrape_metrics(metrics).await,
            &failures("archive", "BAD_ARCHIVE")
        ),
        1.0
    );

    // A Strava export. On PostgreSQL, archive_entries is held in SHARE mode meanwhile, so the
    // import cannot record any activity: it is running, and the gauge says so.
    let lock = if backend == Backend::Postgres {
        let txn = h.db.begin().await.unwrap();
        txn.execute_unprepared("LOCK TABLE archive_entries IN SHARE MODE")
            .await
            .unwrap();
        Some(txn)
    } else {
        None
    };
    let started = start_archive(&h, &export()).await.unwrap();
    if let Some(txn) = lock {
        let running = scrape_metrics(metrics).await;
        assert_eq!(metric_value(&running, RUNNING), 1.0, "{running}");
        txn.rollback().await.unwrap();
    }
    let done = watch_to_end(&h, &started.import_id).await;
    assert_eq!(done.state(), proto::archive_import::State::Done, "{done:?}");
    assert_eq!((done.imported, done.failed), (2, 1), "{:?}", done.problems);
    let after = scrape_metrics(metrics).await;
    assert_eq!(
        metric_value(&after, RUNNING),
        0.0,
        "back to 0 once DONE:\n{after}"
    );
    for (series, expected) in [
        (imports("archive", "gpx", "imported"), 1.0),
        (imports("archive", "manual", "imported"), 1.0),
        (imports("archive", "unknown", "failed"), 1.0),
        (failures("archive", "FILE_MISSING"), 1.0),
        (imports("file", "fit", "imported"), 1.0),
    ] {
        assert_eq!(delta(&after, &series), expected, "{series} in:\n{after}");
    }
    for series in [
        "# TYPE runmesh_run_imports counter",
        "# TYPE runmesh_run_import_failures counter",
        "# TYPE runmesh_run_archive_imports_running gauge",
    ] {
        assert!(after.contains(series), "no {series} in:\n{after}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_show_on_metrics_on_both_backends() {
    // As a process starts svc-run: its metrics registered before telemetry starts.
    let _run = RunService::new(RunConfig::default());
    let (metrics, shutdown) = serve_test_metrics("runmesh-run").await;
    for backend in [Backend::Postgres, Backend::Embedded] {
        imports_show_on_metrics(backend, metrics).await;
    }
    shutdown.cancel();
}
