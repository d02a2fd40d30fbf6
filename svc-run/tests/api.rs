//! svc-run's API against a spawned service, on PostgreSQL and on SQLite: every RPC's answer,
//! object-level authorization with two runners, bad input, duplicates, privacy zones, the
//! original byte for byte, personal records restored by a deletion, stats, and the erasure of a
//! deleted runner.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use chrono::{Duration, TimeZone, Utc};
use prost::Message;
use runmesh_platform::events::{EnvelopeExt, new_envelope};
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use runmesh_svc_run::{RunConfig, RunModule};
use sea_orm::TransactionTrait;
use tonic::Code;
use tonic_types::StatusExt;

use support::{
    ALICE, BOB, Backend, Harness, assert_status, fixture, manual_run, seconds, timestamp,
    violated_fields,
};

const OSAKA: &str = "18360138543_ACTIVITY_Osaka_Marathon_2025.fit";
const FENIX: &str = "20210119_run_garmin_fenix6.tcx.gz";
const POLAR: &str = "3173437224.tcx.gz";
const GARMIN_GPX: &str = "garmin-activity.gpx";

async fn manual_runs_are_the_owners(backend: Backend) {
    let h = Harness::start(backend).await;
    let start = Utc::now() - Duration::days(1);
    let run = h.create(ALICE, manual_run(start)).await.unwrap();
    assert_eq!(run.owner_id, ALICE);
    assert_eq!(run.source, proto::RunSource::Manual as i32);
    assert_eq!(run.distance_meters, 10_000.0);
    assert_eq!(run.average_pace_seconds_per_km, 300.0);
    assert_eq!(run.time_zone, "Asia/Seoul");
    assert_eq!(run.moving_time, Some(seconds(3_000)));

    // Alice sees it; Bob cannot tell it exists.
    assert_eq!(
        h.get(ALICE, &run.run_id).await.unwrap().title,
        "Han river loop"
    );
    let status = h.get(BOB, &run.run_id).await.unwrap_err();
    assert_status(&status, Code::NotFound, "RUN_NOT_FOUND");
    assert_eq!(h.list(ALICE).await.len(), 1);
    assert!(h.list(BOB).await.is_empty());

    // Bob may neither change nor delete it.
    let update = proto::UpdateRunRequest {
        run: Some(proto::Run {
            run_id: run.run_id.clone(),
            title: "Mine now".to_owned(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["title".to_owned()],
        }),
    };
    let status = h
        .client()
        .update_run(h.as_runner(update.clone(), BOB))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "RUN_NOT_FOUND");
    let delete = proto::DeleteRunRequest {
        run_id: run.run_id.clone(),
    };
    let status = h
        .client()
        .delete_run(h.as_runner(delete.clone(), BOB))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "RUN_NOT_FOUND");

    // Public: Bob sees it, still cannot change it.
    h.set_visibility(ALICE, &run.run_id, proto::Visibility::Public)
        .await;
    assert_eq!(h.get(BOB, &run.run_id).await.unwrap().run_id, run.run_id);
    let status = h
        .client()
        .update_run(h.as_runner(update.clone(), BOB))
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "NOT_RUN_OWNER");

    // Alice renames it, then deletes it.
    let renamed = h
        .client()
        .update_run(h.as_runner(update, ALICE))
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    assert_eq!(renamed.title, "Mine now");
    assert_eq!(renamed.visibility, proto::Visibility::Public as i32);
    h.client()
        .delete_run(h.as_runner(delete, ALICE))
        .await
        .unwrap();
    let status = h.get(ALICE, &run.run_id).await.unwrap_err();
    assert_status(&status, Code::NotFound, "RUN_NOT_FOUND");

    // The run's own events (the badges it earned, and lost with it, are tests/rankings.rs').
    let run_events: Vec<String> = h
        .outbox_types()
        .await
        .into_iter()
        .filter(|t| !t.contains("Achievement"))
        .collect();
    assert_eq!(
        run_events,
        [
            "runmesh.run.v1.RunRecorded",
            "runmesh.run.v1.RunUpdated",
            "runmesh.run.v1.RunUpdated",
            "runmesh.run.v1.RunDeleted",
        ]
    );
    let updated = h
        .outbox()
        .await
        .into_iter()
        .filter(|e| !e.r#type.contains("Achievement"))
        .nth(2)
        .unwrap()
        .unpack::<proto::RunUpdated>()
        .unwrap();
    assert_eq!(updated.changed_fields, ["title"]);
}

async fn bad_manual_runs_name_their_fields(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut run = manual_run(Utc::now() + Duration::days(2));
    run.distance_meters = -5.0;
    run.time_zone = "Mars/Olympus".to_owned();
    run.average_heart_rate = Some(400);
    let status = h.create(ALICE, run).await.unwrap_err();
    assert_status(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(
        fields,
        [
            "run.average_heart_rate",
            "run.distance_meters",
            "run.start_time",
            "run.time_zone"
        ]
    );

    // A 10 km in 20 minutes beats the world record.
    let mut run = manual_run(Utc::now() - Duration::days(1));
    run.elapsed_time = Some(seconds(1_200));
    let status = h.create(ALICE, run).await.unwrap_err();
    assert_eq!(violated_fields(&status), ["run.elapsed_time"]);

    let status = h
        .create(
            ALICE,
            proto::Run {
                title: "x".repeat(201),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    let fields = violated_fields(&status);
    for field in [
        "run.sport",
        "run.start_time",
        "run.elapsed_time",
        "run.title",
    ] {
        assert!(fields.contains(&field.to_owned()), "{fields:?}");
    }

    let status = h
        .client()
        .get_run(h.as_runner(
            proto::GetRunRequest {
                run_id: "not-a-run".into(),
            },
            ALICE,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["run_id"]);
    let status = h
        .client()
        .get_run(proto::GetRunRequest {
            run_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // Nothing was stored.
    assert!(h.list(ALICE).await.is_empty());
    assert!(h.outbox_types().await.is_empty());
}

async fn imported_files_keep_their_original(backend: Backend) {
    let h = Harness::start(backend).await;
    let bytes = fixture(OSAKA);
    let answer = h
        .import(
            ALICE,
            OSAKA,
            &bytes,
            64 * 1024,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap();
    let run = answer.run.unwrap();
    assert!(answer.probable_duplicate_run_ids.is_empty());
    assert_eq!(run.source, proto::RunSource::Fit as i32);
    assert_eq!(run.sport, proto::Sport::Run as i32);
    assert!(
        (run.distance_meters - 42_429.43).abs() < 1.0,
        "{}",
        run.distance_meters
    );
    assert_eq!(run.elapsed_time.unwrap().seconds, 8_834);
    assert_eq!(run.splits_km.len(), 43);
    assert_eq!(run.splits_mile.len(), 27);
    assert!(run.has_track);
    assert!(run.average_heart_rate.is_some());
    assert_eq!(run.original_file_name, OSAKA);
    // Private by default (no profile default known).
    assert_eq!(run.visibility, proto::Visibility::Private as i32);
    let marathon = run
        .best_efforts
        .iter()
        .find(|e| e.distance == proto::EffortDistance::Marathon as i32)
        .unwrap();
    assert!((marathon.elapsed_time.unwrap().seconds - 8_774).abs() <= 1);
    assert!(run.best_efforts.iter().all(|e| e.personal_record));

    // The original, byte for byte, in chunks of at most 1 MiB.
    let mut download = h
        .client()
        .download_original(h.as_runner(
            proto::DownloadOriginalRequest {
                run_id: run.run_id.clone(),
            },
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner();
    let first = download.message().await.unwrap().unwrap();
    assert_eq!(first.file_name, OSAKA);
    assert_eq!(first.size_bytes, bytes.len() as u64);
    let body = first.body.unwrap();
    assert_eq!(body.content_type, "application/vnd.ant.fit");
    let mut downloaded = body.data;
    while let Some(chunk) = download.message().await.unwrap() {
        let data = chunk.body.unwrap().data;
        assert!(data.len() <= 1024 * 1024);
        downloaded.extend(data);
    }
    assert_eq!(downloaded, bytes);

    // Bob may not download it, even once it is public.
    let bob_download = |h: &Harness| {
        let request = h.as_runner(
            proto::DownloadOriginalRequest {
                run_id: run.run_id.clone(),
            },
            BOB,
        );
        let mut client = h.client();
        async move { client.download_original(request).await.map(|_| ()) }
    };
    assert_status(
        &bob_download(&h).await.unwrap_err(),
        Code::NotFound,
        "RUN_NOT_FOUND",
    );
    h.set_visibility(ALICE, &run.run_id, proto::Visibility::Public)
        .await;
    assert_status(
        &bob_download(&h).await.unwrap_err(),
        Code::PermissionDenied,
        "NOT_RUN_OWNER",
    );

    // The same bytes again: the existing run, named.
    let status = h
        .import(
            ALICE,
            "again.fit",
            &bytes,
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, "DUPLICATE_RUN");
    assert_eq!(
        status.get_details_error_info().unwrap().metadata["run_id"],
        run.run_id
    );
    // Bob uploading the same file is his own run.
    let bobs = h
        .import(BOB, OSAKA, &bytes, 1 << 20, proto::Visibility::Unspecified)
        .await
        .unwrap();
    assert!(bobs.probable_duplicate_run_ids.is_empty());

    // The same run in other bytes (gzipped) overlaps it: flagged as a probable duplicate.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &bytes).unwrap();
    let answer = h
        .import(
            ALICE,
            "copy.fit.gz",
            &gz.finish().unwrap(),
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap();
    assert_eq!(
        answer.probable_duplicate_run_ids,
        std::slice::from_ref(&run.run_id)
    );
    assert_eq!(answer.run.unwrap().source, proto::RunSource::Fit as i32);

    let types = h.outbox_types().await;
    assert_eq!(types[0], "runmesh.run.v1.PersonalRecordSet");
    assert!(types.contains(&"runmesh.run.v1.RunRecorded".to_owned()));
}

async fn bad_files_are_refused_and_leave_nothing(backend: Backend) {
    let h = Harness::start_with(
        backend,
        RunConfig {
            max_file_bytes: 100_000,
            ..RunConfig::default()
        },
    )
    .await;
    let fit = fixture(OSAKA);
    let status = h
        .import(
            ALICE,
            OSAKA,
            &fit,
            16 * 1024,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "FILE_TOO_LARGE");
    assert_eq!(violated_fields(&status), ["file"]);

    let truncated = &fixture(FENIX)[..0];
    let status = h
        .import(
            ALICE,
            "empty.tcx",
            truncated,
            1024,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["file"]);

    let gpx = fixture(GARMIN_GPX);
    let status = h
        .import(
            ALICE,
            "cut.gpx",
            &gpx[..gpx.len() / 5],
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "CORRUPT_FILE");

    let status = h
        .import(
            ALICE,
            "photo.png",
            b"\x89PNG\r\n\x1a\nnot a run at all",
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "UNSUPPORTED_FILE");

    let status = h
        .import(
            ALICE,
            "run.gpx",
            b"<?xml version=\"1.0\"?><gpx version=\"1.1\"><trk><trkseg></trkseg></trk></gpx>",
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "NO_TRACK");

    assert!(h.list(ALICE).await.is_empty());
    assert!(h.outbox_types().await.is_empty());
}

async fn streams_hide_the_privacy_zones_from_others(backend: Backend) {
    let h = Harness::start(backend).await;
    let run = h
        .import(
            ALICE,
            GARMIN_GPX,
            &fixture(GARMIN_GPX),
            1 << 20,
            proto::Visibility::Public,
        )
        .await
        .unwrap()
        .run
        .unwrap();
    let streams = |user: &str| {
        let request = h.as_runner(
            proto::GetRunStreamsRequest {
                run_id: run.run_id.clone(),
            },
            user,
        );
        let mut client = h.client();
        async move {
            client
                .get_run_streams(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let own = streams(ALICE).await.unwrap();
    let n = own.time_seconds.len();
    assert!(n > 100);
    assert_eq!(own.latitude.len(), n);
    assert!(own.latitude.iter().all(|lat| lat.is_finite()));
    assert_eq!(own.heart_rate.len(), n);

    let seen = streams(BOB).await.unwrap();
    assert_eq!(seen.latitude.len(), n);
    assert_eq!(seen.time_seconds, own.time_seconds);
    let total = *own.distance_meters.last().unwrap();
    assert!(total > 2500.0, "{total}");
    // Without a profile setting, the configured default (200 m) applies.
    let check_zone = |seen: &proto::GetRunStreamsResponse, zone: f64| {
        for i in 0..n {
            let d = own.distance_meters[i];
            if d <= zone || d >= total - zone {
                assert!(
                    seen.latitude[i].is_nan() && seen.longitude[i].is_nan(),
                    "{zone} m: {i}"
                );
            } else {
                assert_eq!(seen.latitude[i], own.latitude[i], "{zone} m: {i}");
            }
        }
        seen.latitude.iter().filter(|lat| lat.is_nan()).count()
    };
    let hidden_by_default = check_zone(&seen, 200.0);

    // Alice's own privacy zone, from her svc-user profile, replaces the default.
    let handler = RunModule::user_events_handler();
    let set_zone = |meters: u32| {
        let handler = handler.clone();
        let db = h.db.clone();
        async move {
            let txn = db.begin().await.unwrap();
            let event = new_envelope(
                "svc-user",
                ALICE,
                &user_proto::UserProfileUpdated {
                    user: Some(user_proto::User {
                        id: ALICE.to_owned(),
                        display_name: "Alice".to_owned(),
                        privacy_zone_meters: Some(meters),
                        ..Default::default()
                    }),
                    changed_fields: vec!["privacy_zone_meters".to_owned()],
                },
            );
            handler.handle(&txn, &event).await.unwrap();
            txn.commit().await.unwrap();
        }
    };
    set_zone(1000).await;
    let hidden_by_profile = check_zone(&streams(BOB).await.unwrap(), 1000.0);
    assert!(
        hidden_by_profile > hidden_by_default,
        "{hidden_by_profile} ≤ {hidden_by_default}"
    );
    assert_eq!(
        streams(ALICE).await.unwrap(),
        own,
        "the owner sees everything"
    );
    // 0 m hides nothing.
    set_zone(0).await;
    assert_eq!(check_zone(&streams(BOB).await.unwrap(), -1.0), 0);

    h.set_visibility(ALICE, &run.run_id, proto::Visibility::Private)
        .await;
    assert_status(
        &streams(BOB).await.unwrap_err(),
        Code::NotFound,
        "RUN_NOT_FOUND",
    );
}

async fn deleting_a_record_run_restores_the_previous_record(backend: Backend) {
    let h = Harness::start(backend).await;
    let mut runs = Vec::new();
    for name in [FENIX, POLAR] {
        runs.push(
            h.import(
                ALICE,
                name,
                &fixture(name),
                1 << 20,
                proto::Visibility::Unspecified,
            )
            .await
            .unwrap()
            .run
            .unwrap(),
        );
    }
    let one_k = |run: &proto::Run| {
        run.best_efforts
            .iter()
            .find(|e| e.distance == proto::EffortDistance::EffortDistance1k as i32)
            .map(|e| e.elapsed_time.unwrap())
            .unwrap()
    };
    let as_secs = |d: prost_types::Duration| d.seconds as f64 + f64::from(d.nanos) / 1e9;
    let (fast, slow) = if as_secs(one_k(&runs[0])) < as_secs(one_k(&runs[1])) {
        (&runs[0], &runs[1])
    } else {
        (&runs[1], &runs[0])
    };
    let records = || {
        let request = h.as_runner(proto::ListPersonalRecordsRequest {}, ALICE);
        let mut client = h.client();
        async move {
            client
                .list_personal_records(request)
                .await
                .unwrap()
                .into_inner()
                .records
        }
    };
    let before = records().await;
    let record = before
        .iter()
        .find(|r| r.distance == proto::EffortDistance::EffortDistance1k as i32)
        .unwrap();
    assert_eq!(record.run_id, fast.run_id);
    assert_eq!(record.elapsed_time, Some(one_k(fast)));
    // GetRun flags the record holder's effort.
    let fetched = h.get(ALICE, &fast.run_id).await.unwrap();
    assert!(fetched.best_efforts.iter().any(|e| e.distance
        == proto::EffortDistance::EffortDistance1k as i32
        && e.personal_record));
    // Bob has none.
    let request = h.as_runner(proto::ListPersonalRecordsRequest {}, BOB);
    assert!(
        h.client()
            .list_personal_records(request)
            .await
            .unwrap()
            .into_inner()
            .records
            .is_empty()
    );

    h.client()
        .delete_run(h.as_runner(
            proto::DeleteRunRequest {
                run_id: fast.run_id.clone(),
            },
            ALICE,
        ))
        .await
        .unwrap();
    let after = records().await;
    let record = after
        .iter()
        .find(|r| r.distance == proto::EffortDistance::EffortDistance1k as i32)
        .unwrap();
    assert_eq!(record.run_id, slow.run_id);
    assert!(record.history.is_empty());
    let restored: Vec<proto::PersonalRecordSet> = h
        .outbox()
        .await
        .iter()
        .filter(|e| e.is::<proto::PersonalRecordSet>())
        .map(|e| e.unpack().unwrap())
        .filter(|e: &proto::PersonalRecordSet| e.restored)
        .collect();
    let one_k_restored = restored
        .iter()
        .find(|e| e.distance == proto::EffortDistance::EffortDistance1k as i32)
        .unwrap();
    assert_eq!(one_k_restored.run_id, slow.run_id);
    assert_eq!(one_k_restored.previous_elapsed_time, Some(one_k(fast)));
}

async fn records_keep_their_history(backend: Backend) {
    let h = Harness::start(backend).await;
    // The Polar run (2019) and the Fenix run (2021): whichever came later and was faster at a
    // distance makes the earlier one history.
    for name in [POLAR, FENIX] {
        h.import(
            ALICE,
            name,
            &fixture(name),
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap();
    }
    let records = h
        .client()
        .list_personal_records(h.as_runner(proto::ListPersonalRecordsRequest {}, ALICE))
        .await
        .unwrap()
        .into_inner()
        .records;
    assert!(!records.is_empty());
    for record in &records {
        for earlier in &record.history {
            let current = record.elapsed_time.unwrap();
            let earlier_time = earlier.elapsed_time.unwrap();
            assert!((earlier_time.seconds, earlier_time.nanos) > (current.seconds, current.nanos));
            assert!(earlier.achieved_at.unwrap().seconds < record.achieved_at.unwrap().seconds);
        }
    }
}

async fn lists_page_newest_first_with_filters(backend: Backend) {
    let h = Harness::start(backend).await;
    let base = Utc.with_ymd_and_hms(2025, 6, 2, 6, 0, 0).unwrap();
    for day in 0..5 {
        let mut run = manual_run(base + Duration::days(day));
        if day == 4 {
            run.sport = proto::Sport::Walk.into();
            run.distance_meters = 5_000.0;
        }
        h.create(ALICE, run).await.unwrap();
    }
    h.create(BOB, manual_run(base)).await.unwrap();
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = h
            .client()
            .list_runs(h.as_runner(
                proto::ListRunsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
                ALICE,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.runs.len() <= 2);
        seen.extend(page.runs);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.iter().all(|r| r.owner_id == ALICE));
    let starts: Vec<i64> = seen.iter().map(|r| r.start_time.unwrap().seconds).collect();
    assert!(starts.windows(2).all(|w| w[0] > w[1]), "{starts:?}");

    let filtered = h
        .client()
        .list_runs(h.as_runner(
            proto::ListRunsRequest {
                from_time: Some(timestamp(base + Duration::days(1))),
                to_time: Some(timestamp(base + Duration::days(4))),
                sport: proto::Sport::Run.into(),
                ..Default::default()
            },
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner()
        .runs;
    assert_eq!(filtered.len(), 3);

    let status = h
        .client()
        .list_runs(h.as_runner(
            proto::ListRunsRequest {
                page_size: -1,
                page_token: "garbage".into(),
                ..Default::default()
            },
            ALICE,
        ))
        .await
        .unwrap_err();
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["page_size", "page_token"]);
}

async fn stats_sum_a_local_week(backend: Backend) {
    let h = Harness::start(backend).await;
    // Monday 2025-06-02 06:00 UTC; the default time zone is UTC.
    let monday = Utc.with_ymd_and_hms(2025, 6, 2, 6, 0, 0).unwrap();
    for day in [0, 2, 6, 7] {
        h.create(ALICE, manual_run(monday + Duration::days(day)))
            .await
            .unwrap();
    }
    let mut walk = manual_run(monday);
    walk.sport = proto::Sport::Walk.into();
    h.create(ALICE, walk).await.unwrap();
    h.create(BOB, manual_run(monday)).await.unwrap();

    let stats = |period: proto::get_stats_request::Period, date: &str| {
        let request = h.as_runner(
            proto::GetStatsRequest {
                period: period.into(),
                date: date.to_owned(),
            },
            ALICE,
        );
        let mut client = h.client();
        async move { client.get_stats(request).await.map(|r| r.into_inner()) }
    };
    use proto::get_stats_request::Period;
    let week = stats(Period::Week, "2025-06-05").await.unwrap();
    assert_eq!(week.from_date, "2025-06-02");
    assert_eq!(week.to_date, "2025-06-09");
    assert_eq!(week.time_zone, "UTC");
    assert_eq!(week.runs, 3);
    assert_eq!(week.active_days, 3);
    assert_eq!(week.distance_meters, 30_000.0);
    assert_eq!(week.moving_time, Some(seconds(9_000)));
    assert_eq!(week.elevation_gain_meters, 120.0);

    let month = stats(Period::Month, "2025-06-30").await.unwrap();
    assert_eq!(
        (month.from_date.as_str(), month.to_date.as_str()),
        ("2025-06-01", "2025-07-01")
    );
    assert_eq!(month.runs, 4);
    let all = stats(Period::AllTime, "").await.unwrap();
    assert_eq!(all.runs, 4);
    assert_eq!(all.from_date, "2025-06-02");

    let status = stats(Period::Unspecified, "June").await.unwrap_err();
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["date", "period"]);
}

async fn the_user_projection_sets_defaults_and_deletion_erases(backend: Backend) {
    let h = Harness::start(backend).await;
    let handler = RunModule::user_events_handler();
    let apply = |event: runmesh_proto::runmesh::events::v1::Envelope| {
        let handler = handler.clone();
        let db = h.db.clone();
        async move {
            let txn = db.begin().await.unwrap();
            handler.handle(&txn, &event).await.unwrap();
            txn.commit().await.unwrap();
        }
    };
    apply(new_envelope(
        "svc-user",
        ALICE,
        &user_proto::UserRegistered {
            user: Some(user_proto::User {
                id: ALICE.to_owned(),
                display_name: "Alice".to_owned(),
                time_zone: "Asia/Seoul".to_owned(),
                default_run_privacy: user_proto::RunPrivacy::Public.into(),
                birth_year: Some(1990),
                ..Default::default()
            }),
        },
    ))
    .await;

    // Imports take the profile's default visibility; stats its time zone.
    let run = h
        .import(
            ALICE,
            FENIX,
            &fixture(FENIX),
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap()
        .run
        .unwrap();
    assert_eq!(run.visibility, proto::Visibility::Public as i32);
    assert_eq!(run.time_zone, "Asia/Seoul");
    assert_eq!(h.get(BOB, &run.run_id).await.unwrap().run_id, run.run_id);
    let stats = h
        .client()
        .get_stats(h.as_runner(
            proto::GetStatsRequest {
                period: proto::get_stats_request::Period::AllTime.into(),
                date: String::new(),
            },
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stats.time_zone, "Asia/Seoul");
    assert_eq!(stats.runs, 1);
    h.create(BOB, manual_run(Utc::now() - Duration::days(1)))
        .await
        .unwrap();

    apply(new_envelope(
        "svc-user",
        ALICE,
        &user_proto::UserDeleted {
            user_id: ALICE.to_owned(),
            deleted_at: None,
        },
    ))
    .await;
    assert_status(
        &h.get(ALICE, &run.run_id).await.unwrap_err(),
        Code::NotFound,
        "RUN_NOT_FOUND",
    );
    assert!(h.list(ALICE).await.is_empty());
    assert_eq!(h.list(BOB).await.len(), 1);
    let deleted: Vec<proto::RunDeleted> = h
        .outbox()
        .await
        .iter()
        .filter(|e| e.is::<proto::RunDeleted>())
        .map(|e| e.unpack().unwrap())
        .collect();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].run_id, run.run_id);
    // The original is gone too: the same file imports afresh.
    let again = h
        .import(
            ALICE,
            FENIX,
            &fixture(FENIX),
            1 << 20,
            proto::Visibility::Unspecified,
        )
        .await
        .unwrap()
        .run
        .unwrap();
    assert_ne!(again.run_id, run.run_id);
    assert_eq!(again.visibility, proto::Visibility::Private as i32);
    let _ = again.encode_to_vec();
}

on_both_backends!(
    manual_runs_are_the_owners,
    bad_manual_runs_name_their_fields,
    imported_files_keep_their_original,
    bad_files_are_refused_and_leave_nothing,
    streams_hide_the_privacy_zones_from_others,
    deleting_a_record_run_restores_the_previous_record,
    records_keep_their_history,
    lists_page_newest_first_with_filters,
    stats_sum_a_local_week,
    the_user_projection_sets_defaults_and_deletion_erases,
);
