//! Recaps against a spawned service, on PostgreSQL + Redis and on SQLite + the in-memory cache:
//! the figures match a brute-force computation from the run records in several time zones (a
//! week across New Year, weeks with a DST change in New York), crew recaps, bad input, and the
//! card (PNG decodes at its size with the Korean name drawn, SVG well-formed, empty periods).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use runmesh_platform::events::new_envelope;
use runmesh_proto::runmesh::run::v1 as proto;
use runmesh_proto::runmesh::social::v1 as social_proto;
use runmesh_proto::runmesh::user::v1 as user_proto;
use sea_orm::TransactionTrait;
use tonic::Code;

use support::{ALICE, BOB, Backend, Harness, assert_status, seconds, timestamp, violated_fields};

const CAROL: &str = "runner-carol";
const KOREAN_NAME: &str = "김달리기 <&> Kim";

async fn publish(h: &Harness, source: &str, aggregate: &str, event: &impl prost::Name) {
    let handler = h.module.events_handler();
    let txn = h.db.begin().await.unwrap();
    handler
        .handle(&txn, &new_envelope(source, aggregate, event))
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

async fn profile(h: &Harness, user: &str, name: &str, tz: &str) {
    let event = user_proto::UserProfileUpdated {
        user: Some(user_proto::User {
            id: user.to_owned(),
            display_name: name.to_owned(),
            time_zone: tz.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let handler = runmesh_svc_run::RunModule::user_events_handler();
    let txn = h.db.begin().await.unwrap();
    handler
        .handle(&txn, &new_envelope("svc-user", user, &event))
        .await
        .unwrap();
    txn.commit().await.unwrap();
}

/// A small deterministic generator (no timing, no randomness between runs of the test).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

/// Runs spread over `days` starting at `first` (UTC), some days with two, some none.
async fn seed(
    h: &Harness,
    user: &str,
    first: DateTime<Utc>,
    days: i64,
    seed: u64,
) -> Vec<proto::Run> {
    let mut rng = Lcg(seed);
    let mut created = Vec::new();
    for day in 0..days {
        let count = [0, 1, 1, 2][usize::try_from(rng.next(4)).unwrap()];
        for slot in 0..count {
            let start = first
                + Duration::days(day)
                + Duration::hours(i64::from(slot) * 12)
                + Duration::minutes(i64::try_from(rng.next(600)).unwrap());
            let km = 3.0 + f64::from(u32::try_from(rng.next(180)).unwrap()) / 10.0;
            // 4:30 to 7:00 per km.
            #[allow(clippy::cast_possible_truncation)]
            let minutes =
                (km * (4.5 + f64::from(u32::try_from(rng.next(25)).unwrap()) / 10.0)) as i64;
            let run = proto::Run {
                sport: proto::Sport::Run.into(),
                title: format!("Run {day}-{slot}"),
                start_time: Some(timestamp(start)),
                time_zone: "UTC".to_owned(),
                elapsed_time: Some(seconds(minutes * 60)),
                distance_meters: km * 1_000.0,
                elevation_gain_meters: Some(km * 4.0),
                visibility: proto::Visibility::Public.into(),
                ..Default::default()
            };
            created.push(h.create(user, run).await.unwrap());
        }
    }
    created
}

#[derive(Debug, PartialEq)]
struct Brute {
    runs: u32,
    distance_m: f64,
    moving_s: f64,
    elevation_m: f64,
    active_days: u32,
    previous_runs: u32,
    streak: u32,
    per_day: BTreeMap<NaiveDate, u32>,
    weekday: [u32; 7],
    hour: [u32; 24],
    longest_m: f64,
}

fn start_of(run: &proto::Run) -> DateTime<Utc> {
    let at = run.start_time.as_ref().unwrap();
    Utc.timestamp_opt(at.seconds, 0).unwrap()
}

fn bounds(period: &str, day: NaiveDate) -> (NaiveDate, NaiveDate) {
    match period {
        "week" => {
            let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
            (monday, monday + Duration::days(7))
        }
        "month" => {
            let first = day.with_day(1).unwrap();
            let next = if first.month() == 12 {
                NaiveDate::from_ymd_opt(first.year() + 1, 1, 1).unwrap()
            } else {
                NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1).unwrap()
            };
            (first, next)
        }
        _ => (
            NaiveDate::from_ymd_opt(day.year(), 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(day.year() + 1, 1, 1).unwrap(),
        ),
    }
}

fn brute(runs: &[proto::Run], tz: Tz, period: &str, day: NaiveDate) -> Brute {
    let (from, to) = bounds(period, day);
    let (prev_from, _) = bounds(period, from - Duration::days(1));
    let mut b = Brute {
        runs: 0,
        distance_m: 0.0,
        moving_s: 0.0,
        elevation_m: 0.0,
        active_days: 0,
        previous_runs: 0,
        streak: 0,
        per_day: BTreeMap::new(),
        weekday: [0; 7],
        hour: [0; 24],
        longest_m: 0.0,
    };
    for run in runs {
        let local = start_of(run).with_timezone(&tz);
        let date = local.date_naive();
        if prev_from <= date && date < from {
            b.previous_runs += 1;
        }
        if !(from <= date && date < to) {
            continue;
        }
        b.runs += 1;
        b.distance_m += run.distance_meters;
        let moving = run.moving_time.as_ref().unwrap();
        b.moving_s += moving.seconds as f64 + f64::from(moving.nanos) / 1e9;
        b.elevation_m += run.elevation_gain_meters.unwrap_or(0.0);
        *b.per_day.entry(date).or_default() += 1;
        b.weekday[date.weekday().num_days_from_monday() as usize] += 1;
        b.hour[local.hour() as usize] += 1;
        b.longest_m = b.longest_m.max(run.distance_meters);
    }
    b.active_days = u32::try_from(b.per_day.len()).unwrap();
    let days: BTreeSet<NaiveDate> = b.per_day.keys().copied().collect();
    let mut current = 0;
    let mut day = from;
    while day < to {
        if days.contains(&day) {
            current += 1;
            b.streak = b.streak.max(current);
        } else {
            current = 0;
        }
        day += Duration::days(1);
    }
    b
}

async fn get(h: &Harness, user: &str, period: &str, date: &str) -> proto::Recap {
    h.recap()
        .get_recap(h.as_runner(
            proto::GetRecapRequest {
                period: period.to_owned(),
                date: date.to_owned(),
                ..Default::default()
            },
            user,
        ))
        .await
        .unwrap()
        .into_inner()
        .recap
        .unwrap()
}

fn check(recap: &proto::Recap, expected: &Brute, what: &str) {
    let totals = recap.totals.as_ref().unwrap();
    assert_eq!(totals.runs, expected.runs, "{what}: runs");
    assert!(
        (totals.distance_meters - expected.distance_m).abs() < 0.01,
        "{what}: distance {} vs {}",
        totals.distance_meters,
        expected.distance_m
    );
    let moving = totals.moving_time.as_ref().unwrap();
    let moving = moving.seconds as f64 + f64::from(moving.nanos) / 1e9;
    assert!((moving - expected.moving_s).abs() < 0.01, "{what}: moving");
    assert!(
        (totals.elevation_gain_meters - expected.elevation_m).abs() < 0.01,
        "{what}: elevation"
    );
    assert_eq!(totals.active_days, expected.active_days, "{what}: days");
    assert_eq!(
        recap.previous_totals.as_ref().unwrap().runs,
        expected.previous_runs,
        "{what}: previous"
    );
    assert_eq!(recap.longest_streak_days, expected.streak, "{what}: streak");
    let calendar: BTreeMap<NaiveDate, u32> = recap
        .calendar
        .iter()
        .filter(|day| day.runs > 0)
        .map(|day| (day.date.parse().unwrap(), day.runs))
        .collect();
    assert_eq!(calendar, expected.per_day, "{what}: calendar");
    let weekday: Vec<u32> = recap.distance_by_weekday.iter().map(|b| b.runs).collect();
    assert_eq!(weekday, expected.weekday.to_vec(), "{what}: weekdays");
    let hour: Vec<u32> = recap.runs_by_hour.iter().map(|b| b.runs).collect();
    assert_eq!(hour, expected.hour.to_vec(), "{what}: hours");
    let bucketed: u32 = recap.distance_by_bucket.iter().map(|b| b.runs).sum();
    assert_eq!(bucketed, expected.runs, "{what}: buckets");
    assert_eq!(recap.empty, expected.runs == 0, "{what}: empty");
    let longest = recap
        .longest_run
        .as_ref()
        .map_or(0.0, |run| run.distance_meters);
    assert!(
        (longest - expected.longest_m).abs() < 0.01,
        "{what}: longest"
    );
    assert!(!recap.narrative.is_empty(), "{what}: narrative");
}

async fn recap_figures_match_brute_force(backend: Backend) {
    let h = Harness::start(backend).await;
    let zones = [
        (ALICE, "Asia/Seoul"),
        (BOB, "America/New_York"),
        (CAROL, "Pacific/Auckland"),
    ];
    for (index, (user, tz)) in zones.iter().enumerate() {
        profile(&h, user, &format!("Runner {index}"), tz).await;
    }
    let mut runs: BTreeMap<&str, Vec<proto::Run>> = BTreeMap::new();
    for (index, (user, _)) in zones.iter().enumerate() {
        let seed_base = 17 + index as u64 * 101;
        let mut mine = Vec::new();
        // Around New Year 2025/2026, and around both DST changes in 2025.
        for (first, days) in [
            (Utc.with_ymd_and_hms(2025, 12, 14, 0, 0, 0).unwrap(), 28),
            (Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap(), 16),
            (Utc.with_ymd_and_hms(2025, 10, 25, 0, 0, 0).unwrap(), 14),
        ] {
            mine.extend(seed(&h, user, first, days, seed_base + u64::from(first.month())).await);
        }
        runs.insert(user, mine);
    }
    let cases = [
        ("week", "2025-12-31"), // 2025-12-29 to 2026-01-04
        ("week", "2026-01-01"),
        ("week", "2025-03-09"), // New York springs forward
        ("week", "2025-11-02"), // New York falls back
        ("month", "2025-12-15"),
        ("month", "2025-11-01"),
        ("month", "2026-01-02"),
        ("year", "2025-06-01"),
    ];
    for (user, tz) in zones {
        let tz: Tz = tz.parse().unwrap();
        for (period, date) in cases {
            let recap = get(&h, user, period, date).await;
            let expected = brute(&runs[user], tz, period, date.parse().unwrap());
            check(&recap, &expected, &format!("{user} {period} {date}"));
            assert_eq!(recap.time_zone, tz.name());
            assert!(!recap.in_progress);
        }
    }

    // The year's calendar has every day, the year's buckets are its months.
    let year = get(&h, ALICE, "year", "2025-01-01").await;
    assert_eq!(year.calendar.len(), 365);
    assert_eq!(year.distance_by_bucket.len(), 12);
    assert_eq!(year.distance_by_bucket[11].label, "2025-12");
    assert_eq!(year.period_key, "2025");
    // The runs are public: the year's board ranks the three of them.
    let rank = year.rank.unwrap();
    assert_eq!(rank.ranked_runners, 3);
    assert!((1..=3).contains(&rank.rank));
    // English on request.
    let english = h
        .recap()
        .get_recap(h.as_runner(
            proto::GetRecapRequest {
                period: "month".into(),
                date: "2025-12-01".into(),
                language: Some("en".into()),
                ..Default::default()
            },
            ALICE,
        ))
        .await
        .unwrap()
        .into_inner()
        .recap
        .unwrap();
    assert_eq!(english.language, "en");
    assert!(english.narrative[0].starts_with("You ran "));
}

async fn recap_bad_input_empty_periods_and_crews(backend: Backend) {
    let h = Harness::start(backend).await;
    profile(&h, ALICE, "Alice", "Asia/Seoul").await;
    let request = |period: &str, date: &str, crew: Option<&str>| proto::GetRecapRequest {
        period: period.to_owned(),
        date: date.to_owned(),
        crew_id: crew.map(str::to_owned),
        language: None,
    };
    let status = h
        .recap()
        .get_recap(h.as_runner(request("fortnight", "2025-13-01", None), ALICE))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    let mut fields = violated_fields(&status);
    fields.sort();
    assert_eq!(fields, ["date", "period"]);
    let status = h
        .recap()
        .get_recap(h.as_runner(request("year", "2099-01-01", None), ALICE))
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "PERIOD_IN_FUTURE");
    let status = h
        .recap()
        .get_recap(h.as_runner(request("week", "2025-01-01", Some("crew-x")), ALICE))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "CREW_NOT_FOUND");

    // Nothing run: a friendly empty recap.
    let empty = get(&h, ALICE, "month", "2025-02-10").await;
    assert!(empty.empty);
    assert_eq!(empty.totals.as_ref().unwrap().runs, 0);
    assert_eq!(empty.calendar.len(), 28);
    assert!(empty.narrative[0].contains("없어요"));
    assert!(empty.rank.is_none());

    // A crew: Alice and Carol in it, Bob not.
    publish(
        &h,
        "svc-social",
        "crew-a",
        &social_proto::CrewCreated {
            crew: Some(social_proto::CrewSummary {
                crew_id: "crew-a".into(),
                name: "한강 크루".into(),
                ..Default::default()
            }),
            owner_id: ALICE.into(),
            created_at: None,
        },
    )
    .await;
    for user in [ALICE, CAROL] {
        publish(
            &h,
            "svc-social",
            "crew-a",
            &social_proto::CrewMemberJoined {
                crew_id: "crew-a".into(),
                user_id: user.into(),
                role: social_proto::CrewEventRole::Member.into(),
                joined_at: None,
            },
        )
        .await;
    }
    profile(&h, CAROL, "Carol", "Asia/Seoul").await;
    let at = Utc.with_ymd_and_hms(2025, 6, 10, 0, 0, 0).unwrap();
    for (user, km) in [(ALICE, 5.0), (CAROL, 12.0), (CAROL, 8.0), (BOB, 30.0)] {
        let offset = if user == CAROL && km < 10.0 { 1 } else { 0 };
        let mut run = support::manual_run(at + Duration::days(offset));
        run.distance_meters = km * 1000.0;
        run.elapsed_time = Some(seconds((km * 360.0) as i64));
        h.create(user, run).await.unwrap();
    }
    let crew = h
        .recap()
        .get_recap(h.as_runner(request("month", "2025-06-01", Some("crew-a")), ALICE))
        .await
        .unwrap()
        .into_inner()
        .recap
        .unwrap();
    assert_eq!(crew.display_name, "한강 크루");
    assert_eq!(crew.crew_id, "crew-a");
    let totals = crew.totals.unwrap();
    assert_eq!(totals.runs, 3);
    assert!((totals.distance_meters - 25_000.0).abs() < 0.01);
    assert_eq!(totals.active_days, 2);
    let members: Vec<(&str, u32)> = crew
        .most_active_members
        .iter()
        .map(|m| (m.user_id.as_str(), m.runs))
        .collect();
    assert_eq!(members, [(CAROL, 2), (ALICE, 1)]);
    assert_eq!(crew.most_active_members[0].display_name, "Carol");
    assert!(!crew.group_runs_available);
    assert!(crew.narrative[0].contains("25.0 km"));
    let status = h
        .recap()
        .get_recap(h.as_runner(request("month", "2025-06-01", Some("crew-a")), BOB))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "CREW_NOT_FOUND");
    // Alice's own recap names the crew, with what Carol ran.
    let mine = get(&h, ALICE, "month", "2025-06-01").await;
    assert_eq!(mine.crews.len(), 1);
    assert!((mine.crews[0].distance_meters - 20_000.0).abs() < 0.01);
}

async fn card(
    h: &Harness,
    user: &str,
    request: proto::GetRecapCardRequest,
) -> proto::GetRecapCardResponse {
    h.recap()
        .get_recap_card(h.as_runner(request, user))
        .await
        .unwrap()
        .into_inner()
}

/// Pixels in the box that are light (text on the dark background).
fn light_pixels(
    pixmap: &tiny_skia::Pixmap,
    x: std::ops::Range<u32>,
    y: std::ops::Range<u32>,
) -> usize {
    let mut count = 0;
    for row in y {
        for column in x.clone() {
            let pixel = pixmap.pixel(column, row).unwrap();
            if pixel.red() > 140 && pixel.green() > 140 && pixel.blue() > 180 {
                count += 1;
            }
        }
    }
    count
}

async fn recap_cards_render(backend: Backend) {
    let h = Harness::start(backend).await;
    profile(&h, ALICE, KOREAN_NAME, "Asia/Seoul").await;
    seed(
        &h,
        ALICE,
        Utc.with_ymd_and_hms(2025, 11, 20, 0, 0, 0).unwrap(),
        30,
        5,
    )
    .await;

    let request = |period: &str, format: proto::RecapCardFormat, size: proto::RecapCardSize| {
        proto::GetRecapCardRequest {
            period: period.to_owned(),
            date: "2025-12-10".to_owned(),
            format: format.into(),
            size: size.into(),
            ..Default::default()
        }
    };
    for (period, size, (width, height)) in [
        ("month", proto::RecapCardSize::Portrait, (1080, 1920)),
        ("year", proto::RecapCardSize::Square, (1080, 1080)),
        ("week", proto::RecapCardSize::Unspecified, (1080, 1920)),
    ] {
        let answer = card(
            &h,
            ALICE,
            request(period, proto::RecapCardFormat::Png, size),
        )
        .await;
        let body = answer.card.unwrap();
        assert_eq!(body.content_type, "image/png");
        assert_eq!(answer.size_bytes, body.data.len() as u64);
        let pixmap = tiny_skia::Pixmap::decode_png(&body.data).unwrap();
        assert_eq!((pixmap.width(), pixmap.height()), (width, height));
        // The name line (Korean) is drawn: glyph pixels in its box.
        let name_box = if height == 1920 { 250..300 } else { 200..246 };
        let lit = light_pixels(&pixmap, 80..600, name_box);
        assert!(
            lit > 300,
            "{period}: only {lit} text pixels in the name's box"
        );
    }
    // SVG: well-formed, the name escaped.
    let svg = card(
        &h,
        ALICE,
        request(
            "month",
            proto::RecapCardFormat::Svg,
            proto::RecapCardSize::Portrait,
        ),
    )
    .await;
    assert!(svg.file_name.ends_with(".svg"));
    let body = svg.card.unwrap();
    assert_eq!(body.content_type, "image/svg+xml");
    let text = String::from_utf8(body.data).unwrap();
    assert!(text.contains("김달리기 &lt;&amp;&gt; Kim"));
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut depth = 0i32;
    loop {
        match reader.read_event().unwrap() {
            quick_xml::events::Event::Start(_) => depth += 1,
            quick_xml::events::Event::End(_) => depth -= 1,
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0);

    // A file name chooses the format; a mismatch is refused.
    let named = card(
        &h,
        ALICE,
        proto::GetRecapCardRequest {
            file_name: "card.svg".into(),
            ..request(
                "month",
                proto::RecapCardFormat::Unspecified,
                proto::RecapCardSize::Square,
            )
        },
    )
    .await;
    assert_eq!(named.card.unwrap().content_type, "image/svg+xml");
    let status = h
        .recap()
        .get_recap_card(h.as_runner(
            proto::GetRecapCardRequest {
                file_name: "card.png".into(),
                ..request(
                    "month",
                    proto::RecapCardFormat::Svg,
                    proto::RecapCardSize::Square,
                )
            },
            ALICE,
        ))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["format"]);

    // An empty period renders.
    let empty = card(
        &h,
        BOB,
        proto::GetRecapCardRequest {
            date: "2025-02-01".into(),
            ..request(
                "month",
                proto::RecapCardFormat::Png,
                proto::RecapCardSize::Portrait,
            )
        },
    )
    .await;
    let pixmap = tiny_skia::Pixmap::decode_png(&empty.card.unwrap().data).unwrap();
    assert_eq!((pixmap.width(), pixmap.height()), (1080, 1920));
    if std::env::var_os("RUNMESH_RECAP_CARD_DIR").is_some() {
        let dir = std::path::PathBuf::from(std::env::var_os("RUNMESH_RECAP_CARD_DIR").unwrap());
        for (name, period, size) in [
            (
                "month-portrait.png",
                "month",
                proto::RecapCardSize::Portrait,
            ),
            ("year-square.png", "year", proto::RecapCardSize::Square),
            ("year-portrait.png", "year", proto::RecapCardSize::Portrait),
        ] {
            let answer = card(
                &h,
                ALICE,
                request(period, proto::RecapCardFormat::Png, size),
            )
            .await;
            std::fs::write(dir.join(name), answer.card.unwrap().data).unwrap();
        }
        std::fs::write(dir.join("empty.png"), pixmap.encode_png().unwrap()).unwrap();
    }
}

on_both_backends!(
    recap_figures_match_brute_force,
    recap_bad_input_empty_periods_and_crews,
    recap_cards_render
);
