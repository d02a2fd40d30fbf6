//! The domain against real device files (see tests/fixtures/NOTICE for where each comes from).
//! Expected values are what the devices wrote in their own totals, or measured once and pinned.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use runmesh_svc_run::domain::{
    Activity, Analysis, AnalysisConfig, BestEffortConfig, EffortDistance, FileFormat, Limits,
    ParseError, RunStreams, Source, Sport, analyse, analyse_activity, best_efforts, parse,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn activity(name: &str) -> Activity {
    parse(&fixture(name), &Limits::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn single(name: &str) -> (Activity, Analysis) {
    let a = activity(name);
    assert_eq!(a.sessions.len(), 1, "{name}");
    let analysis = analyse(&a.sessions[0], &AnalysisConfig::default());
    (a, analysis)
}

fn close(actual: f64, expected: f64, tolerance: f64) -> bool {
    (actual - expected).abs() <= tolerance
}

#[test]
fn osaka_marathon_fr745_fit() {
    let (a, r) = single("18360138543_ACTIVITY_Osaka_Marathon_2025.fit");
    assert_eq!(a.format, FileFormat::Fit);
    assert_eq!(r.sport, Sport::Running);
    assert_eq!(r.start.to_rfc3339(), "2025-02-24T00:15:21+00:00");
    // The device's session totals.
    assert!(close(r.distance_m, 42_429.43, 0.01), "{}", r.distance_m);
    assert_eq!(r.distance_source, Source::Device);
    assert!(close(r.elapsed_s, 8_834.062, 0.001));
    assert!(close(r.moving_s, 8_834.062, 0.001));
    assert_eq!(r.moving_source, Source::Device);
    assert_eq!(
        (r.elevation_gain_m, r.elevation_loss_m),
        (Some(103.0), Some(117.0))
    );
    assert_eq!(r.lap_count, 10);
    assert_eq!(r.point_count, 2_958);
    assert!(r.has_positions);
    let hr = r.heart_rate_bpm.unwrap();
    assert!(
        close(hr.average, 184.0, 1.0) && hr.maximum == 202.0,
        "{hr:?}"
    );
    let cadence = r.cadence.unwrap();
    assert!(
        close(cadence.average, 185.0, 1.0),
        "steps per minute: {cadence:?}"
    );

    // Every standard distance, each longer one slower, the marathon no longer than the race.
    let keys: Vec<_> = r.best_efforts.iter().map(|e| e.distance.key).collect();
    assert_eq!(
        keys,
        [
            "400m",
            "1k",
            "1mi",
            "5k",
            "10k",
            "15k",
            "half_marathon",
            "marathon"
        ]
    );
    for pair in r.best_efforts.windows(2) {
        assert!(pair[0].elapsed_s < pair[1].elapsed_s);
    }
    let marathon = r.best_efforts[7];
    assert!(marathon.elapsed_s <= r.elapsed_s, "{marathon:?}");
    assert!(close(marathon.elapsed_s, 8_774.2, 1.0), "{marathon:?}");
    let half = r.best_efforts[6];
    assert!(half.elapsed_s * 2.0 < marathon.elapsed_s + 600.0);

    // 42 whole kilometres and the rest; their times add up to the recording.
    assert_eq!(r.splits_km.len(), 43);
    assert!(
        r.splits_km[..42]
            .iter()
            .all(|s| close(s.distance_m, 1000.0, 1e-6))
    );
    let total: f64 = r.splits_km.iter().map(|s| s.elapsed_s).sum();
    assert!(close(total, 8_834.0, 2.0), "{total}");
    assert_eq!(r.splits_mile.len(), 27);
    assert!(
        r.splits_km
            .iter()
            .all(|s| s.average_heart_rate_bpm.is_some())
    );
}

#[test]
fn the_same_ride_as_fit_tcx_gpx_and_strava_gpx_agrees() {
    let files = [
        "4801048867.fit",
        "activity_4801048867.tcx.gz",
        "activity_4801048867.gpx.gz",
        "4801048867_strava.gpx.gz",
    ];
    let runs: Vec<(Activity, Analysis)> = files.iter().map(|f| single(f)).collect();
    let (fit, reference) = &runs[0];
    assert!(close(reference.distance_m, 36_322.85, 0.01));
    assert!(close(reference.elapsed_s, 5_158.557, 0.001));
    assert_eq!(reference.lap_count, 8);
    assert_eq!(runs[1].1.lap_count, 8, "TCX laps");
    assert!(!fit.gzipped && runs[1].0.gzipped);

    // Distance, a fixed effort in the middle of the ride, over the same points.
    let efforts = [1_000.0, 5_000.0, 10_000.0].map(|meters| EffortDistance {
        key: "ride",
        meters,
        world_record_s: 0.0,
    });
    let effort_times = |a: &Activity| -> Vec<f64> {
        let s = RunStreams::of(&a.sessions[0], &AnalysisConfig::default());
        best_efforts(
            &s.time_s,
            &s.distance_m,
            &efforts,
            &BestEffortConfig {
                max_step_speed_mps: 40.0,
                ..BestEffortConfig::default()
            },
        )
        .iter()
        .map(|e| e.elapsed_s)
        .collect()
    };
    let reference_efforts = effort_times(fit);
    assert_eq!(reference_efforts.len(), 3);
    for (file, (a, r)) in files.iter().zip(&runs) {
        assert_eq!(r.sport, Sport::Cycling, "{file}");
        assert_eq!(r.start, reference.start, "{file}");
        assert!(
            close(r.elapsed_s, reference.elapsed_s, 1.0),
            "{file}: {}",
            r.elapsed_s
        );
        assert!(
            close(
                r.distance_m,
                reference.distance_m,
                reference.distance_m * 0.01
            ),
            "{file}: {}",
            r.distance_m
        );
        let hr = r.heart_rate_bpm.unwrap();
        assert!(
            close(hr.average, 130.0, 1.0) && hr.maximum == 160.0,
            "{file}: {hr:?}"
        );
        for (x, y) in effort_times(a).iter().zip(&reference_efforts) {
            assert!(close(*x, *y, y * 0.02), "{file}: effort {x} vs {y}");
        }
    }
    // GPX has no device distance: haversine, and a threshold for moving time.
    assert_eq!(runs[2].1.distance_source, Source::Computed);
    assert_eq!(runs[2].1.moving_source, Source::Computed);
    assert_eq!(runs[1].1.distance_source, Source::Device);
}

#[test]
fn polar_m400_tcx() {
    let (a, r) = single("3173437224.tcx.gz");
    assert_eq!((a.format, a.gzipped), (FileFormat::Tcx, true));
    assert_eq!(r.sport, Sport::Running);
    assert!(close(r.distance_m, 4_508.5, 0.01));
    assert_eq!((r.moving_s, r.moving_source), (3_510.0, Source::Device));
    assert_eq!(r.lap_count, 2);
    assert_eq!(r.point_count, 3_507);
    assert!(r.heart_rate_bpm.unwrap().maximum == 168.0);
    assert!(r.cadence.is_some());
    assert!(r.elevation_gain_m.is_some());
    assert_eq!(r.elevation_source, Source::Computed);
}

#[test]
fn fenix_6_tcx_reads_run_cadence_from_extensions() {
    let (_, r) = single("20210119_run_garmin_fenix6.tcx.gz");
    assert_eq!(r.sport, Sport::Running);
    assert!(close(r.distance_m, 5_124.84, 0.01));
    assert!(close(r.moving_s, 1_230.479, 0.001));
    assert_eq!(r.lap_count, 1);
    let cadence = r.cadence.unwrap();
    assert!((160.0..200.0).contains(&cadence.average), "{cadence:?}");
    let keys: Vec<_> = r.best_efforts.iter().map(|e| e.distance.key).collect();
    assert_eq!(keys, ["400m", "1k", "1mi", "5k"]);
}

#[test]
fn garmin_connect_gpx_reads_heart_rate_and_cadence_from_extensions() {
    let (_, r) = single("garmin-activity.gpx");
    assert_eq!(r.sport, Sport::Running);
    assert_eq!(r.distance_source, Source::Computed);
    assert!(close(r.distance_m, 12_821.0, 5.0), "{}", r.distance_m);
    assert!(close(r.elapsed_s, 5_498.0, 0.5));
    assert_eq!(r.point_count, 988);
    assert_eq!(r.heart_rate_bpm.unwrap().maximum, 171.0);
    assert!(r.cadence.is_some());
    assert!(r.best_efforts.iter().any(|e| e.distance.key == "10k"));
}

#[test]
fn triathlon_fit_with_chained_headers_gives_each_session() {
    let a = activity("sample_mulitple_header.fit");
    let sports: Vec<Sport> = a.sessions.iter().map(|s| s.sport).collect();
    assert_eq!(
        sports,
        [
            Sport::Swimming,
            Sport::Other,
            Sport::Cycling,
            Sport::Other,
            Sport::Running
        ]
    );
    let analyses = analyse_activity(&a, &AnalysisConfig::default());
    // Only the run has running best efforts.
    for r in &analyses[..4] {
        assert!(r.best_efforts.is_empty(), "{:?}", r.sport);
    }
    let run = &analyses[4];
    assert!(close(run.distance_m, 9_805.92, 0.01));
    assert!(close(run.elapsed_s, 2_850.694, 0.001));
    assert_eq!(run.best_efforts.last().unwrap().distance.key, "5k");
    // The run's distance stream starts at 0 though the file's counts from the swim.
    let s = RunStreams::of(&a.sessions[4], &AnalysisConfig::default());
    assert_eq!(s.distance_m[0], 0.0);
    assert!(close(*s.distance_m.last().unwrap(), 9_805.92, 100.0));
    assert!(close(analyses[2].distance_m, 40_909.42, 0.01));
}

#[test]
fn an_indoor_run_without_gps_uses_the_device() {
    let a = activity("6471559601_ACTIVITY.fit");
    assert_eq!(a.sessions[0].sport, Sport::Running);
    let r = analyse(&a.sessions[0], &AnalysisConfig::default());
    assert!(!r.has_positions);
    assert_eq!((r.distance_m, r.distance_source), (0.0, Source::Device));
    assert!(close(r.elapsed_s, 24.593, 0.001));
    assert!(r.heart_rate_bpm.is_some());

    // An indoor ride on a trainer: the distance is the device's, no position at all.
    let (_, r) = single("hrv-activity.fit");
    assert!(!r.has_positions);
    assert_eq!(r.distance_source, Source::Device);
    assert!(close(r.distance_m, 6_873.6, 0.01));
    assert_eq!(r.lap_count, 15);
    let (_, r) = single("6449921903_ACTIVITY.fit");
    assert!(!r.has_positions && r.point_count == 199);
}

#[test]
fn small_fit_files() {
    let (_, r) = single("garmin-fenix-5-bike.fit");
    assert!(close(r.distance_m, 459.52, 0.01) && close(r.elapsed_s, 60.363, 0.001));
    let (_, r) = single("2020-06-01-16-52-40.fit");
    assert!(close(r.distance_m, 668.19, 0.01));
    assert!(close(r.moving_s, 93.7, 0.01));
    assert_eq!(r.lap_count, 5);
    let (_, tcx) = single("activity_5039744860.tcx");
    assert!(close(tcx.distance_m, 668.19, 0.01));
    assert_eq!(tcx.lap_count, 5);
    let (_, gpx) = single("activity_5039744860.gpx");
    assert_eq!(gpx.start, tcx.start);
    assert_eq!(gpx.elapsed_s, tcx.elapsed_s);
}

#[test]
fn a_route_is_not_a_track() {
    let err = parse(&fixture("strava_route_example.gpx"), &Limits::default()).unwrap_err();
    assert_eq!(err.reason(), "NO_TRACK");
}

#[test]
fn gpxpy_edge_cases_parse_or_fail_cleanly() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gpxpy");
    let mut parsed = 0;
    let mut no_track = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 30);
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        match parse(&std::fs::read(&path).unwrap(), &Limits::default()) {
            Ok(a) => {
                assert_eq!(a.format, FileFormat::Gpx, "{name}");
                for r in analyse_activity(&a, &AnalysisConfig::default()) {
                    assert!(r.distance_m.is_finite() && r.distance_m >= 0.0, "{name}");
                    assert!(r.elapsed_s.is_finite() && r.elapsed_s >= 0.0, "{name}");
                    assert!(r.moving_s <= r.elapsed_s + 1e-9, "{name}");
                }
                parsed += 1;
            }
            Err(ParseError::NoTrack(_)) => no_track.push(name),
            Err(e) => panic!("{name}: {e}"),
        }
    }
    // Waypoint-only, route-only and untimed files have no track; the rest parse.
    assert_eq!((parsed, no_track.len()), (17, 13), "no track: {no_track:?}");
    for name in [
        "route.gpx",
        "unicode_with_bom.gpx",
        "track-with-extremes.gpx",
    ] {
        assert!(no_track.iter().any(|n| n == name), "{name}");
    }
    // Elevations and their absence.
    let a = parse(
        &std::fs::read(dir.join("cerknicko-jezero.gpx")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    let r = analyse(&a.sessions[0], &AnalysisConfig::default());
    assert!(r.elevation_gain_m.unwrap() > 100.0);
    let a = parse(
        &std::fs::read(dir.join("cerknicko-jezero-without-elevations.gpx")).unwrap(),
        &Limits::default(),
    )
    .unwrap();
    assert_eq!(
        analyse(&a.sessions[0], &AnalysisConfig::default()).elevation_gain_m,
        None
    );
}

#[test]
fn strava_leading_whitespace_and_prefixes_do_not_matter() {
    let mut bytes = b"\n   \n".to_vec();
    bytes.extend(fixture("activity_5039744860.gpx"));
    let spaced = parse(&bytes, &Limits::default()).unwrap();
    assert_eq!(spaced, activity("activity_5039744860.gpx"));

    // The same points with other prefixes (`gpxtpx:` for Garmin's `ns3:`) and a default one.
    let text = String::from_utf8(fixture("activity_5039744860.gpx")).unwrap();
    let renamed = text
        .replace("ns3:", "gpxtpx:")
        .replace("xmlns:ns3=", "xmlns:gpxtpx=");
    let renamed = parse(renamed.as_bytes(), &Limits::default()).unwrap();
    assert_eq!(
        renamed.sessions,
        activity("activity_5039744860.gpx").sessions
    );
}

#[test]
fn caps_stop_parsing() {
    let limits = Limits {
        max_bytes: 10_000_000,
        max_points: 100,
    };
    for name in [
        "18360138543_ACTIVITY_Osaka_Marathon_2025.fit",
        "3173437224.tcx.gz",
    ] {
        assert_eq!(
            parse(&fixture(name), &limits).unwrap_err(),
            ParseError::TooManyPoints { limit: 100 },
            "{name}"
        );
    }
    // A gzip may not expand past the byte cap.
    let limits = Limits {
        max_bytes: 200_000,
        max_points: 1_000_000,
    };
    assert_eq!(
        parse(&fixture("3173437224.tcx.gz"), &limits).unwrap_err(),
        ParseError::TooLarge { limit: 200_000 }
    );
}

#[test]
fn truncated_and_foreign_files_say_what_is_wrong() {
    let fit = fixture("18360138543_ACTIVITY_Osaka_Marathon_2025.fit");
    let err = parse(&fit[..fit.len() / 2], &Limits::default()).unwrap_err();
    assert_eq!(err.reason(), "CORRUPT_FILE");
    assert!(err.to_string().contains("FIT"), "{err}");
    let mut flipped = fit.clone();
    flipped[100_000] ^= 0x55;
    assert_eq!(
        parse(&flipped, &Limits::default()).unwrap_err().reason(),
        "CORRUPT_FILE"
    );

    let gpx = fixture("garmin-activity.gpx");
    let err = parse(&gpx[..gpx.len() / 2], &Limits::default()).unwrap_err();
    assert_eq!(err.reason(), "CORRUPT_FILE", "{err}");

    // Named .fit or not, a PNG is not a run; a FIT settings file is not an activity.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    assert_eq!(
        parse(png, &Limits::default()).unwrap_err().reason(),
        "UNSUPPORTED_FILE"
    );
    let mut settings = rustyfit::proto::FIT {
        messages: vec![{
            let mut file_id = rustyfit::profile::mesgdef::FileId::new();
            file_id.r#type = rustyfit::profile::typedef::File::SETTINGS;
            rustyfit::proto::Message::from(file_id)
        }],
        ..Default::default()
    };
    let mut out = embedded_io_adapters::std::FromStd::new(std::io::Cursor::new(Vec::new()));
    rustyfit::Encoder::new()
        .encode(&mut out, &mut settings)
        .unwrap();
    let bytes = out.into_inner().into_inner();
    let err = parse(&bytes, &Limits::default()).unwrap_err();
    assert_eq!(err.reason(), "UNSUPPORTED_FILE", "{err}");
}
