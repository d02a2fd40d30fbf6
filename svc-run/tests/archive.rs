//! The Strava bulk-export import against a spawned service, on PostgreSQL and on SQLite: an
//! export built here from the real fixtures (FIT, GPX and TCX, gzipped or not, a manual
//! activity, a corrupt file, a duplicated file, an impossible manual entry) with Strava's
//! `activities.csv` (repeated header names, `May 6, 2024, 4:02:34 AM` dates); progress to DONE
//! with exact counts and reasons; an import interrupted by stopping the service resumes after a
//! restart on the same database and data dir without importing anything twice; unsafe archives
//! refused; another runner cannot see the import.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Cursor, Write};
use std::time::Duration;

use futures::StreamExt;
use runmesh_proto::google::api::HttpBody;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_svc_run::RunConfig;
use tonic::{Code, Status};
use zip::write::SimpleFileOptions;

use support::{ALICE, BOB, Backend, Harness, assert_status, fixture};

const HEADER: &str = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,Distance,Max Heart Rate,Relative Effort,Commute,Activity Private Note,Activity Gear,Filename,Athlete Weight,Bike Weight,Elapsed Time,Moving Time,Distance,Max Speed";

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// A Strava-style export: 9 activities, of which 6 import, 1 is a duplicate and 2 fail.
fn export() -> Vec<u8> {
    let garmin_gpx = fixture("garmin-activity.gpx");
    let wahoo = fixture("wahoo_example.gpx");
    let files: Vec<(&str, Vec<u8>)> = vec![
        (
            "activities/100.fit.gz",
            gzip(&fixture("18360138543_ACTIVITY_Osaka_Marathon_2025.fit")),
        ),
        (
            "activities/111.fit.gz",
            gzip(&fixture("6471559601_ACTIVITY.fit")),
        ),
        ("activities/222.gpx", garmin_gpx.clone()),
        (
            "activities/333.tcx.gz",
            fixture("20210119_run_garmin_fenix6.tcx.gz"),
        ),
        ("activities/444.tcx", fixture("activity_5039744860.tcx")),
        ("activities/666.gpx", wahoo[..wahoo.len() / 3].to_vec()),
        ("activities/777.gpx", garmin_gpx),
    ];
    let rows = [
        r#"100,"Feb 23, 2025, 12:15:00 AM",Osaka Marathon,Run,"Race day, finally",10000,42.2,,,false,,Vaporfly 3,activities/100.fit.gz,,,10000.0,9900.0,42195.0,5.0"#,
        r#"111,"May 6, 2024, 4:02:34 AM",Treadmill tempo,Run,"Felt good, windy",3000,10.02,170,50,false,private note,Pegasus 40,activities/111.fit.gz,,,3000.0,2900.0,10020.5,4.5"#,
        r#"222,"Jun 1, 2024, 6:00:00 AM",Garmin run,Run,,1800,5.0,,,false,,,activities/222.gpx,,,1800.0,1800.0,5000.0,4.0"#,
        r#"333,"Jan 19, 2021, 7:00:00 PM",Fenix evening,Run,,1800,5.0,,,false,,,activities/333.tcx.gz,,,1800.0,1800.0,5000.0,4.0"#,
        r#"444,"Jul 2, 2020, 9:00:00 AM",Short spin,Ride,,600,3.0,,,false,,Road bike,activities/444.tcx,,,600.0,600.0,3000.0,9.0"#,
        r#"555,"Mar 3, 2024, 7:30:00 AM",Track session,Run,Intervals by hand,1800,5.00,,,false,,,,,,1800.0,1750.0,5000.0,5.0"#,
        r#"666,"Mar 4, 2024, 7:30:00 AM",Broken file,Run,,1800,5.0,,,false,,,activities/666.gpx,,,1800.0,1800.0,5000.0,4.0"#,
        r#"777,"Mar 5, 2024, 7:30:00 AM",Uploaded twice,Run,,1800,5.0,,,false,,,activities/777.gpx,,,1800.0,1800.0,5000.0,4.0"#,
        r#"888,"Mar 6, 2024, 7:30:00 AM",Impossible,Run,,-5,5.0,,,false,,,,,,-5.0,-5.0,5000.0,4.0"#,
    ];
    let csv = format!("{HEADER}\n{}\n", rows.join("\n"));
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("profile.csv", options).unwrap();
    writer.write_all(b"Athlete ID\n1\n").unwrap();
    writer.start_file("activities.csv", options).unwrap();
    writer.write_all(csv.as_bytes()).unwrap();
    for (name, bytes) in files {
        writer.start_file(name, options).unwrap();
        writer.write_all(&bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

async fn start(h: &Harness, user: &str, archive: &[u8]) -> Result<proto::ArchiveImport, Status> {
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
        .start_archive_import(h.as_runner(futures::stream::iter(messages), user))
        .await
        .map(|r| r.into_inner().archive_import.unwrap())
}

async fn get(h: &Harness, user: &str, id: &str) -> Result<proto::ArchiveImport, Status> {
    h.client()
        .get_archive_import(h.as_runner(
            proto::GetArchiveImportRequest {
                import_id: id.to_owned(),
            },
            user,
        ))
        .await
        .map(|r| r.into_inner().archive_import.unwrap())
}

/// Every progress report until the end.
async fn watch(h: &Harness, user: &str, id: &str) -> Vec<proto::ArchiveImport> {
    let mut stream = h
        .client()
        .watch_archive_import(h.as_runner(
            proto::WatchArchiveImportRequest {
                import_id: id.to_owned(),
            },
            user,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut reports = Vec::new();
    tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(report) = stream.next().await {
            reports.push(report.unwrap().archive_import.unwrap());
        }
    })
    .await
    .expect("the import ends");
    reports
}

fn reasons(report: &proto::ArchiveImport) -> Vec<(String, String)> {
    report
        .problems
        .iter()
        .map(|p| (p.entry.clone(), p.reason.clone()))
        .collect()
}

fn assert_complete(report: &proto::ArchiveImport) {
    assert_eq!(
        report.state,
        proto::archive_import::State::Done as i32,
        "{report:?}"
    );
    assert_eq!(report.activities_seen, 9);
    assert_eq!(
        (report.imported, report.skipped, report.failed),
        (6, 1, 2),
        "{report:?}"
    );
    assert_eq!(
        reasons(report),
        [
            ("activities/666.gpx".to_owned(), "CORRUPT_FILE".to_owned()),
            ("activities/777.gpx".to_owned(), "DUPLICATE_RUN".to_owned()),
            (
                "activities.csv row 10".to_owned(),
                "INVALID_ACTIVITY".to_owned()
            ),
        ]
    );
    assert!(report.finished_at.is_some());
}

async fn an_export_is_imported_with_progress(backend: Backend) {
    let h = Harness::start(backend).await;
    let archive = export();
    let started = start(&h, ALICE, &archive).await.unwrap();
    assert_eq!(started.state, proto::archive_import::State::Running as i32);
    let reports = watch(&h, ALICE, &started.import_id).await;
    let last = reports.last().unwrap();
    assert_complete(last);
    assert!(
        reports
            .windows(2)
            .all(|w| w[0].imported + w[0].skipped + w[0].failed
                <= w[1].imported + w[1].skipped + w[1].failed)
    );
    assert_eq!(&get(&h, ALICE, &started.import_id).await.unwrap(), last);

    let runs = h.list(ALICE).await;
    assert_eq!(runs.len(), 6);
    let by_title = |title: &str| runs.iter().find(|r| r.title == title).unwrap().clone();
    let tempo = by_title("Treadmill tempo");
    assert!(tempo.notes.contains("Felt good, windy"), "{}", tempo.notes);
    assert!(tempo.notes.contains("Gear: Pegasus 40"), "{}", tempo.notes);
    assert_eq!(tempo.source, proto::RunSource::Fit as i32);
    assert_eq!(by_title("Short spin").sport, proto::Sport::Ride as i32);
    assert_eq!(by_title("Garmin run").source, proto::RunSource::Gpx as i32);
    assert_eq!(
        by_title("Fenix evening").source,
        proto::RunSource::Tcx as i32
    );
    let manual = by_title("Track session");
    assert_eq!(manual.source, proto::RunSource::StravaManual as i32);
    assert_eq!(manual.distance_meters, 5_000.0);
    assert_eq!(manual.notes, "Intervals by hand");
    assert_eq!(
        manual.start_time.unwrap().seconds,
        chrono::DateTime::parse_from_rfc3339("2024-03-03T07:30:00Z")
            .unwrap()
            .timestamp()
    );
    let osaka = by_title("Osaka Marathon");
    assert!(osaka.distance_meters > 42_000.0);
    // Runs arrive as RunRecorded events like any other run.
    let recorded = h
        .outbox_types()
        .await
        .iter()
        .filter(|t| *t == "runmesh.run.v1.RunRecorded")
        .count();
    assert_eq!(recorded, 6);

    // Another runner can neither read nor watch it.
    let status = get(&h, BOB, &started.import_id).await.unwrap_err();
    assert_status(&status, Code::NotFound, "IMPORT_NOT_FOUND");
    let status = h
        .client()
        .watch_archive_import(h.as_runner(
            proto::WatchArchiveImportRequest {
                import_id: started.import_id.clone(),
            },
            BOB,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "IMPORT_NOT_FOUND");

    // The same export again imports nothing: every activity is a duplicate.
    let again = start(&h, ALICE, &archive).await.unwrap();
    let last = watch(&h, ALICE, &again.import_id).await.pop().unwrap();
    assert_eq!(
        (last.imported, last.skipped, last.failed),
        (0, 7, 2),
        "{last:?}"
    );
    assert_eq!(h.list(ALICE).await.len(), 6);
    // The spooled uploads are gone.
    let spooled = std::fs::read_dir(&h.module.runs.config().archive_dir)
        .unwrap()
        .count();
    assert_eq!(spooled, 0);
}

async fn an_interrupted_import_resumes_after_a_restart(backend: Backend) {
    let h = Harness::start(backend).await;
    let started = start(&h, ALICE, &export()).await.unwrap();
    // Stop the service while it imports (the marathon's FIT is first and takes a while).
    h.stop_background_work().await;
    let stopped = get(&h, ALICE, &started.import_id).await.unwrap();
    assert_eq!(
        stopped.state,
        proto::archive_import::State::Running as i32,
        "{stopped:?}"
    );
    assert!(stopped.imported + stopped.skipped + stopped.failed < 9);

    let h = h.restart().await;
    let last = watch(&h, ALICE, &started.import_id).await.pop().unwrap();
    assert_complete(&last);
    assert_eq!(h.list(ALICE).await.len(), 6);
    // A second restart finds nothing to resume and changes nothing.
    let h = h.restart().await;
    assert_eq!(get(&h, ALICE, &started.import_id).await.unwrap(), last);
    assert_eq!(h.list(ALICE).await.len(), 6);
}

fn zip_of(entries: &[(&str, &[u8])], symlink: Option<&str>) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    if let Some(name) = symlink {
        writer.add_symlink(name, "/etc/passwd", options).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

async fn unsafe_archives_are_refused(backend: Backend) {
    let config = RunConfig {
        max_archive_bytes: 64 * 1024 * 1024,
        ..RunConfig::default()
    };
    let h = Harness::start_with(backend, config).await;
    let csv = format!("{HEADER}\n");
    let zeros = vec![0u8; 20 * 1024 * 1024];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not a zip", b"PK but not really a zip archive".to_vec()),
        (
            "zip bomb",
            zip_of(
                &[("activities.csv", csv.as_bytes()), ("bomb.bin", &zeros)],
                None,
            ),
        ),
        (
            "path traversal",
            zip_of(
                &[
                    ("activities.csv", csv.as_bytes()),
                    ("../../etc/cron.d/evil", b"x"),
                ],
                None,
            ),
        ),
        (
            "absolute path",
            zip_of(
                &[("activities.csv", csv.as_bytes()), ("/etc/evil", b"x")],
                None,
            ),
        ),
        (
            "symlink",
            zip_of(
                &[("activities.csv", csv.as_bytes())],
                Some("activities/1.gpx"),
            ),
        ),
    ];
    for (what, archive) in cases {
        let status = start(&h, ALICE, &archive).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
        assert_status(&status, Code::InvalidArgument, "BAD_ARCHIVE");
    }
    // Over the size cap: refused before the whole body is read.
    let big = vec![7u8; 65 * 1024 * 1024];
    let status = start(&h, ALICE, &big).await.unwrap_err();
    assert_status(&status, Code::InvalidArgument, "FILE_TOO_LARGE");
    // Nothing stored, nothing left on disk.
    let spooled = std::fs::read_dir(&h.module.runs.config().archive_dir)
        .unwrap()
        .count();
    assert_eq!(spooled, 0);
    assert!(h.list(ALICE).await.is_empty());
    let status = get(&h, ALICE, "01890000-0000-7000-8000-000000000000")
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "IMPORT_NOT_FOUND");
}

on_both_backends!(
    an_export_is_imported_with_progress,
    an_interrupted_import_resumes_after_a_restart,
    unsafe_archives_are_refused,
);
