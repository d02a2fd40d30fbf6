//! svc-race's API against a spawned service, on PostgreSQL + Redis and on SQLite + memory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Duration as Span;
use prost::Name;
use runmesh_platform::events::EnvelopeExt;
use runmesh_proto::runmesh::race::v1 as proto;
use support::*;
use tonic::Code;
use tonic_types::StatusExt;

on_both_backends!(
    organizers_create_and_publish_races_the_public_sees,
    race_input_is_checked_field_by_field,
    only_the_organizer_edits_and_categories_freeze_at_opening,
    listing_filters_and_pages_stay_stable,
    registration_confirms_then_waitlists_then_sells_out,
    registration_outside_the_window_is_refused_with_the_times,
    one_registration_per_runner_and_idempotent_retries,
    register_input_roles_and_rate_limit,
    cancellation_promotes_the_waitlist_in_order,
    registrations_are_listed_for_runners_and_organizers,
    watchers_see_places_go_and_the_race_sell_out,
    openings_are_announced_once_to_subscribers,
    a_gate_that_lost_its_data_is_rebuilt_before_admitting,
    reservations_of_crashed_writers_are_released,
);

const ORGANIZER: &[&str] = &["runner", "organizer"];

fn event_types(types: &[String], wanted: &str) -> usize {
    types.iter().filter(|t| t.as_str() == wanted).count()
}

async fn organizers_create_and_publish_races_the_public_sees(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut client = harness.client();
    let race = open_race(
        "Seoul Marathon",
        vec![
            category("Full", 42_195, 10, 5),
            category("10K", 10_000, 20, 0),
        ],
    );

    let status = client
        .create_race(proto::CreateRaceRequest {
            race: Some(race.clone()),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::Unauthenticated, "TOKEN_REQUIRED");
    let status = client
        .create_race(harness.as_runner(
            proto::CreateRaceRequest {
                race: Some(race.clone()),
            },
            "runner-1",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "ROLE_REQUIRED");

    let created = client
        .create_race(harness.as_user(
            proto::CreateRaceRequest {
                race: Some(race.clone()),
            },
            "organizer-1",
            ORGANIZER,
        ))
        .await
        .unwrap()
        .into_inner()
        .race
        .unwrap();
    assert_eq!(created.status(), proto::RaceStatus::Draft);
    assert_eq!(created.organizer_id, "organizer-1");
    assert_eq!(created.registration_state(), proto::RegistrationState::Open);
    assert_eq!(
        created
            .categories
            .iter()
            .map(|c| (c.name.as_str(), c.first_bib))
            .collect::<Vec<_>>(),
        [("Full", 1), ("10K", 11)]
    );

    // A draft is the organizer's alone.
    let get = |user: Option<&str>| {
        let mut client = harness.client();
        let request = proto::GetRaceRequest {
            race_id: created.race_id.clone(),
        };
        let request = match user {
            Some(user) => harness.as_runner(request, user),
            None => tonic::Request::new(request),
        };
        async move { client.get_race(request).await }
    };
    assert_status(
        &get(None).await.unwrap_err(),
        Code::NotFound,
        "RACE_NOT_FOUND",
    );
    assert_status(
        &get(Some("runner-1")).await.unwrap_err(),
        Code::NotFound,
        "RACE_NOT_FOUND",
    );
    let status = client
        .publish_race(harness.as_user(
            proto::PublishRaceRequest {
                race_id: created.race_id.clone(),
            },
            "organizer-2",
            ORGANIZER,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "RACE_NOT_FOUND");

    let published = client
        .publish_race(harness.as_user(
            proto::PublishRaceRequest {
                race_id: created.race_id.clone(),
            },
            "organizer-1",
            ORGANIZER,
        ))
        .await
        .unwrap()
        .into_inner()
        .race
        .unwrap();
    assert_eq!(published.status(), proto::RaceStatus::Published);
    assert!(published.published_at.is_some());

    let seen = get(None).await.unwrap().into_inner();
    assert_eq!(seen.race.unwrap().name, "Seoul Marathon");
    let availability = seen.availability;
    assert_eq!(availability.len(), 2);
    assert_eq!(availability[0].remaining_places, 10);
    assert_eq!(availability[0].remaining_waitlist_places, 5);

    let outbox = harness.outbox().await;
    let types: Vec<&str> = outbox.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            "runmesh.race.v1.RaceCreated",
            "runmesh.race.v1.RacePublished"
        ]
    );
    assert!(outbox.iter().all(|e| e.aggregate_id == created.race_id));
    let event = outbox[1].unpack::<proto::RacePublished>().unwrap();
    assert_eq!(event.race.unwrap().status(), proto::RaceStatus::Published);
}

async fn race_input_is_checked_field_by_field(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut race = open_race(
        "",
        vec![category("10K", 0, 0, 0), category("10k", 5_000, 5, 0)],
    );
    race.registration_closes_at = at(Span::days(2));
    race.official_url = "ftp://example.org".to_owned();
    race.coordinates = Some(proto::Coordinates {
        latitude: 123.0,
        longitude: 0.0,
    });
    race.categories[1].fee = Some(proto::Fee {
        currency_code: "won".to_owned(),
        amount_minor: 1,
    });
    let status = harness
        .client()
        .create_race(harness.as_user(
            proto::CreateRaceRequest { race: Some(race) },
            "organizer-1",
            ORGANIZER,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    let fields: HashSet<String> = violated_fields(&status).into_iter().collect();
    for field in [
        "race.name",
        "race.coordinates",
        "race.official_url",
        "race.categories[0].distance_meters",
        "race.categories[0].capacity",
        "race.categories[1].fee",
    ] {
        assert!(fields.contains(field), "{field} missing from {fields:?}");
    }

    // Cross-field rules once every field is fine on its own.
    let mut race = open_race(
        "Loop",
        vec![category("5K", 5_000, 5, 0), category("5k", 5_000, 5, 0)],
    );
    race.registration_closes_at = at(Span::days(2));
    let status = harness
        .client()
        .create_race(harness.as_user(
            proto::CreateRaceRequest { race: Some(race) },
            "organizer-1",
            ORGANIZER,
        ))
        .await
        .unwrap_err();
    assert_eq!(
        violated_fields(&status),
        ["race.registration_closes_at", "race.categories[1].name"]
    );
}

async fn only_the_organizer_edits_and_categories_freeze_at_opening(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut upcoming = open_race("Han River 10K", vec![category("10K", 10_000, 5, 0)]);
    upcoming.registration_opens_at = at(Span::hours(1));
    upcoming.registration_closes_at = at(Span::hours(2));
    let race = harness.published_race("organizer-1", upcoming).await;
    let update = |user: &str, roles: &[&str], race: proto::Race, paths: &[&str]| {
        let mut client = harness.client();
        let request = harness.as_user(
            proto::UpdateRaceRequest {
                race_id: race.race_id.clone(),
                race: Some(race),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| (*p).to_owned()).collect(),
                }),
            },
            user,
            roles,
        );
        async move {
            client
                .update_race(request)
                .await
                .map(|r| r.into_inner().race.unwrap())
        }
    };

    let mut changes = race.clone();
    changes.name = "Han River Night 10K".to_owned();
    changes.categories[0].capacity = 8;
    changes.categories.push(category("5K", 5_000, 3, 1));
    let updated = update(
        "organizer-1",
        ORGANIZER,
        changes.clone(),
        &["name", "categories"],
    )
    .await
    .unwrap();
    assert_eq!(updated.name, "Han River Night 10K");
    assert_eq!(updated.categories.len(), 2);
    assert_eq!(
        updated.categories[0].category_id,
        race.categories[0].category_id
    );
    assert_eq!(updated.categories[0].capacity, 8);
    assert_eq!(updated.categories[1].first_bib, 9);
    assert_eq!(updated.description, race.description, "outside the mask");

    let status = update("organizer-2", ORGANIZER, changes.clone(), &["name"])
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "NOT_RACE_ORGANIZER");
    let status = update("organizer-1", ORGANIZER, changes.clone(), &["organizer_id"])
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["update_mask"]);
    let admin = update("admin-1", &["runner", "admin"], changes.clone(), &["venue"])
        .await
        .unwrap();
    assert_eq!(admin.venue, changes.venue);

    // Once registration opened, places and times are fixed; the rest may still change.
    let mut open = updated.clone();
    open.registration_opens_at = at(Span::minutes(-1));
    update("organizer-1", ORGANIZER, open, &["registration_opens_at"])
        .await
        .unwrap();
    let mut more = updated.clone();
    more.categories[0].capacity = 100;
    let status = update("organizer-1", ORGANIZER, more, &["categories"])
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "REGISTRATION_STARTED");
    let mut renamed = updated.clone();
    renamed.description = "Under the bridges".to_owned();
    update("organizer-1", ORGANIZER, renamed, &["description"])
        .await
        .unwrap();
    assert_eq!(
        event_types(&harness.outbox_types().await, "runmesh.race.v1.RaceUpdated"),
        4
    );
}

async fn listing_filters_and_pages_stay_stable(backend: Backend) {
    let harness = Harness::start(backend).await;
    // Regions unique to this test keep other tests' races out (they share PostgreSQL only
    // through their own databases, but the filter is what is under test).
    let mut names = Vec::new();
    for day in 1..=5 {
        let mut race = open_race(
            &format!("Busan {day}"),
            vec![category("Half", 21_097, 10, 0)],
        );
        race.region = "Busan".to_owned();
        race.starts_at = at(Span::days(day));
        names.push(race.name.clone());
        harness.published_race("organizer-1", race).await;
    }
    let mut upcoming = open_race("Busan Future", vec![category("Full", 42_195, 10, 0)]);
    upcoming.region = "busan".to_owned();
    upcoming.registration_opens_at = at(Span::days(3));
    upcoming.registration_closes_at = at(Span::days(4));
    upcoming.starts_at = at(Span::days(30));
    harness.published_race("organizer-1", upcoming).await;
    let mut draft = open_race("Busan Draft", vec![category("5K", 5_000, 10, 0)]);
    draft.region = "Busan".to_owned();
    harness
        .client()
        .create_race(harness.as_user(
            proto::CreateRaceRequest { race: Some(draft) },
            "organizer-1",
            ORGANIZER,
        ))
        .await
        .unwrap();

    let list = |request: proto::ListRacesRequest| {
        let mut client = harness.client();
        async move { client.list_races(request).await.unwrap().into_inner() }
    };
    let busan = |page_token: String| proto::ListRacesRequest {
        region: "BUSAN".to_owned(),
        page_size: 2,
        page_token,
        ..Default::default()
    };
    // Pages of two; a race added between pages does not shift what follows.
    let first = list(busan(String::new())).await;
    assert_eq!(first.races.len(), 2);
    let mut early = open_race("Busan Early", vec![category("Half", 21_097, 10, 0)]);
    early.region = "Busan".to_owned();
    early.starts_at = at(Span::hours(12));
    harness.published_race("organizer-1", early).await;
    let mut seen: Vec<String> = first.races.iter().map(|r| r.name.clone()).collect();
    let mut token = first.next_page_token;
    while !token.is_empty() {
        let page = list(busan(token)).await;
        seen.extend(page.races.iter().map(|r| r.name.clone()));
        token = page.next_page_token;
    }
    let mut expected = names.clone();
    expected.push("Busan Future".to_owned());
    assert_eq!(
        seen, expected,
        "drafts hidden, order by start, no skips or repeats"
    );

    let open_only = list(proto::ListRacesRequest {
        region: "busan".to_owned(),
        registration_state: proto::RegistrationState::Open.into(),
        page_size: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(open_only.races.len(), 6);
    let upcoming_only = list(proto::ListRacesRequest {
        region: "busan".to_owned(),
        registration_state: proto::RegistrationState::Upcoming.into(),
        ..Default::default()
    })
    .await;
    assert_eq!(upcoming_only.races.len(), 1);
    let marathons = list(proto::ListRacesRequest {
        region: "busan".to_owned(),
        min_distance_meters: 40_000,
        ..Default::default()
    })
    .await;
    assert_eq!(marathons.races.len(), 1);
    let halves = list(proto::ListRacesRequest {
        region: "busan".to_owned(),
        min_distance_meters: 20_000,
        max_distance_meters: 22_000,
        starts_before: at(Span::days(2) + Span::hours(1)),
        starts_after: at(Span::days(1) + Span::hours(1)),
        ..Default::default()
    })
    .await;
    assert_eq!(
        halves
            .races
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["Busan 2"]
    );
    let drafts = harness
        .client()
        .list_races(harness.as_user(
            proto::ListRacesRequest {
                region: "busan".to_owned(),
                include_drafts: true,
                page_size: 100,
                ..Default::default()
            },
            "organizer-1",
            ORGANIZER,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(drafts.races.len(), 8);

    let status = harness
        .client()
        .list_races(proto::ListRacesRequest {
            page_token: "not-a-token".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&status), ["page_token"]);
}

async fn registration_confirms_then_waitlists_then_sells_out(backend: Backend) {
    let harness = Harness::start(backend).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race(
                "Tiny Trail",
                vec![
                    category("Short", 8_000, 2, 0),
                    category("Long", 30_000, 3, 2),
                ],
            ),
        )
        .await;
    let mut bibs = HashSet::new();
    for n in 0..3 {
        let registration = harness
            .register(&race, 1, &format!("runner-{n}"), &format!("key-{n}"))
            .await
            .unwrap();
        assert_eq!(registration.status(), proto::RegistrationStatus::Confirmed);
        let bib = registration.bib_number.unwrap();
        assert!((3..=5).contains(&bib), "bib {bib} outside the Long range");
        assert!(bibs.insert(bib));
        assert_eq!(registration.waitlist_position, None);
    }
    for (n, position) in [(3, 1), (4, 2)] {
        let registration = harness
            .register(&race, 1, &format!("runner-{n}"), "")
            .await
            .unwrap();
        assert_eq!(registration.status(), proto::RegistrationStatus::Waitlisted);
        assert_eq!(registration.waitlist_position, Some(position));
        assert_eq!(registration.bib_number, None);
    }
    let status = harness
        .register(&race, 1, "runner-5", "")
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "SOLD_OUT");
    // Another category has its own places.
    let short = harness.register(&race, 0, "runner-5", "").await.unwrap();
    assert_eq!(short.bib_number, Some(1));

    let types = harness.outbox_types().await;
    assert_eq!(
        event_types(&types, "runmesh.race.v1.RegistrationConfirmed"),
        4
    );
    assert_eq!(
        event_types(&types, "runmesh.race.v1.RegistrationWaitlisted"),
        2
    );
    let waitlisted = harness
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.is::<proto::RegistrationWaitlisted>())
        .map(|e| e.unpack::<proto::RegistrationWaitlisted>().unwrap())
        .map(|e| e.registration.unwrap().waitlist_position)
        .collect::<Vec<_>>();
    assert_eq!(waitlisted, [Some(1), Some(2)]);

    let availability = harness
        .client()
        .get_race(proto::GetRaceRequest {
            race_id: race.race_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .availability;
    assert_eq!(availability[1].confirmed, 3);
    assert_eq!(availability[1].waitlisted, 2);
    assert_eq!(availability[1].remaining_places, 0);
    assert_eq!(availability[0].remaining_places, 1);
}

async fn registration_outside_the_window_is_refused_with_the_times(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut upcoming = open_race("Later", vec![category("10K", 10_000, 5, 0)]);
    upcoming.registration_opens_at = at(Span::hours(1));
    upcoming.registration_closes_at = at(Span::hours(2));
    let upcoming = harness.published_race("organizer-1", upcoming).await;
    let status = harness
        .register(&upcoming, 0, "runner-1", "")
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "REGISTRATION_NOT_OPEN");
    let info = status.get_details_error_info().unwrap();
    let opens_at = upcoming.registration_opens_at.unwrap();
    let expected = chrono::DateTime::from_timestamp(opens_at.seconds, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(info.metadata["registration_opens_at"], expected);
    assert!(info.metadata.contains_key("registration_closes_at"));

    let mut past = open_race("Earlier", vec![category("10K", 10_000, 5, 0)]);
    past.registration_opens_at = at(Span::hours(-2));
    past.registration_closes_at = at(Span::hours(-1));
    let past = harness.published_race("organizer-1", past).await;
    let status = harness
        .register(&past, 0, "runner-1", "")
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "REGISTRATION_CLOSED");
    assert!(
        status
            .get_details_error_info()
            .unwrap()
            .metadata
            .contains_key("registration_closes_at")
    );
}

async fn one_registration_per_runner_and_idempotent_retries(backend: Backend) {
    let harness = Harness::start(backend).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Retry Run", vec![category("10K", 10_000, 1, 1)]),
        )
        .await;
    let first = harness
        .register(&race, 0, "runner-1", "attempt-1")
        .await
        .unwrap();
    let retry = harness
        .register(&race, 0, "runner-1", "attempt-1")
        .await
        .unwrap();
    assert_eq!(retry, first, "a retry returns the original registration");
    let status = harness
        .register(&race, 0, "runner-1", "attempt-2")
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, "ALREADY_REGISTERED");
    let status = harness
        .register(&race, 0, "runner-1", "")
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, "ALREADY_REGISTERED");

    let waitlisted = harness
        .register(&race, 0, "runner-2", "attempt-1")
        .await
        .unwrap();
    assert_eq!(waitlisted.status(), proto::RegistrationStatus::Waitlisted);
    assert_eq!(
        harness
            .register(&race, 0, "runner-2", "attempt-1")
            .await
            .unwrap(),
        waitlisted
    );
    // A runner's key means nothing to another runner.
    let status = harness
        .register(&race, 0, "runner-3", "attempt-1")
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "SOLD_OUT");

    // After cancelling, the runner stays out of this race.
    harness
        .cancel(&first.registration_id, "runner-1", &["runner"])
        .await
        .unwrap();
    let status = harness
        .register(&race, 0, "runner-1", "attempt-3")
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, "ALREADY_REGISTERED");
    let types = harness.outbox_types().await;
    assert_eq!(
        event_types(&types, "runmesh.race.v1.RegistrationConfirmed"),
        1
    );
}

async fn register_input_roles_and_rate_limit(backend: Backend) {
    let mut config = test_config();
    config.register_attempts = 3;
    let harness = Harness::start_with(backend, config).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Limits", vec![category("10K", 10_000, 5, 0)]),
        )
        .await;
    let mut client = harness.client();
    let status = client
        .register(harness.as_runner(
            proto::RegisterRequest {
                race_id: "nope".to_owned(),
                category_id: String::new(),
                idempotency_key: "has spaces".to_owned(),
            },
            "runner-1",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(
        violated_fields(&status),
        ["race_id", "category_id", "idempotency_key"]
    );
    let status = client
        .register(proto::RegisterRequest::default())
        .await
        .unwrap_err();
    assert_status(&status, Code::Unauthenticated, "TOKEN_REQUIRED");
    let status = client
        .register(harness.as_user(
            proto::RegisterRequest {
                race_id: race.race_id.clone(),
                category_id: race.categories[0].category_id.clone(),
                idempotency_key: String::new(),
            },
            "viewer-1",
            &[],
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "ROLE_REQUIRED");

    let status = client
        .register(harness.as_runner(
            proto::RegisterRequest {
                race_id: uuid::Uuid::now_v7().to_string(),
                category_id: race.categories[0].category_id.clone(),
                idempotency_key: String::new(),
            },
            "runner-2",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "RACE_NOT_FOUND");
    let status = client
        .register(harness.as_runner(
            proto::RegisterRequest {
                race_id: race.race_id.clone(),
                category_id: uuid::Uuid::now_v7().to_string(),
                idempotency_key: String::new(),
            },
            "runner-2",
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "CATEGORY_NOT_FOUND");

    // runner-2 spent two attempts above; the third registers, the fourth is limited.
    harness.register(&race, 0, "runner-2", "k").await.unwrap();
    let status = harness
        .register(&race, 0, "runner-2", "k")
        .await
        .unwrap_err();
    assert_status(&status, Code::ResourceExhausted, "TOO_MANY_ATTEMPTS");
    let delay = status
        .get_details_retry_info()
        .unwrap()
        .retry_delay
        .unwrap();
    assert!(delay > Duration::ZERO && delay <= Duration::from_secs(60));
}

async fn cancellation_promotes_the_waitlist_in_order(backend: Backend) {
    let harness = Harness::start(backend).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Promotions", vec![category("10K", 10_000, 2, 3)]),
        )
        .await;
    let mut registrations = Vec::new();
    for n in 0..5 {
        registrations.push(
            harness
                .register(&race, 0, &format!("runner-{n}"), "")
                .await
                .unwrap(),
        );
    }
    let bib_of_first = registrations[0].bib_number.unwrap();

    let status = harness
        .cancel(&registrations[0].registration_id, "runner-4", &["runner"])
        .await
        .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "NOT_YOUR_REGISTRATION");

    let cancelled = harness
        .cancel(&registrations[0].registration_id, "runner-0", &["runner"])
        .await
        .unwrap();
    assert_eq!(cancelled.status(), proto::RegistrationStatus::Cancelled);
    assert_eq!(cancelled.bib_number, None);
    // Cancelling twice changes nothing.
    assert_eq!(
        harness
            .cancel(&registrations[0].registration_id, "runner-0", &["runner"])
            .await
            .unwrap()
            .status(),
        proto::RegistrationStatus::Cancelled
    );
    // The organizer cancels another confirmed runner.
    harness
        .cancel(&registrations[1].registration_id, "organizer-1", ORGANIZER)
        .await
        .unwrap();

    let mine = |user: &str| {
        let mut client = harness.client();
        let request = harness.as_runner(proto::ListMyRegistrationsRequest::default(), user);
        async move {
            client
                .list_my_registrations(request)
                .await
                .unwrap()
                .into_inner()
                .registrations
                .remove(0)
        }
    };
    let promoted = mine("runner-2").await;
    assert_eq!(promoted.status(), proto::RegistrationStatus::Confirmed);
    assert_eq!(
        promoted.bib_number,
        Some(bib_of_first),
        "the freed place's bib"
    );
    assert_eq!(
        mine("runner-3").await.status(),
        proto::RegistrationStatus::Confirmed
    );
    let still_waiting = mine("runner-4").await;
    assert_eq!(
        still_waiting.status(),
        proto::RegistrationStatus::Waitlisted
    );
    assert_eq!(still_waiting.waitlist_position, Some(1));

    let promotions: Vec<String> = harness
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.is::<proto::WaitlistPromoted>())
        .map(|e| {
            e.unpack::<proto::WaitlistPromoted>()
                .unwrap()
                .registration
                .unwrap()
                .user_id
        })
        .collect();
    assert_eq!(promotions, ["runner-2", "runner-3"]);
    let cancellations: Vec<_> = harness
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.is::<proto::RegistrationCancelled>())
        .map(|e| e.unpack::<proto::RegistrationCancelled>().unwrap())
        .collect();
    assert_eq!(cancellations.len(), 2);
    assert_eq!(cancellations[1].cancelled_by, "organizer-1");
    assert_eq!(
        cancellations[0].previous_status(),
        proto::RegistrationStatus::Confirmed
    );

    // A cancelled waitlist place is free for a newcomer, who queues behind runner-4.
    harness
        .cancel(&still_waiting.registration_id, "runner-4", &["runner"])
        .await
        .unwrap();
    let newcomer = harness.register(&race, 0, "runner-5", "").await.unwrap();
    assert_eq!(newcomer.status(), proto::RegistrationStatus::Waitlisted);
    assert_eq!(newcomer.waitlist_position, Some(1));
    // No confirmed place is free, so nobody jumped the line.
    assert_eq!(
        harness
            .register(&race, 0, "runner-6", "")
            .await
            .unwrap()
            .waitlist_position,
        Some(2)
    );
}

async fn registrations_are_listed_for_runners_and_organizers(backend: Backend) {
    let harness = Harness::start(backend).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Listed", vec![category("10K", 10_000, 3, 5)]),
        )
        .await;
    let other = harness
        .published_race(
            "organizer-1",
            open_race("Other", vec![category("5K", 5_000, 3, 0)]),
        )
        .await;
    for n in 0..7 {
        harness
            .register(&race, 0, &format!("runner-{n}"), "")
            .await
            .unwrap();
    }
    harness.register(&other, 0, "runner-6", "").await.unwrap();

    let mine = harness
        .client()
        .list_my_registrations(
            harness.as_runner(proto::ListMyRegistrationsRequest::default(), "runner-6"),
        )
        .await
        .unwrap()
        .into_inner()
        .registrations;
    assert_eq!(mine.len(), 2);
    assert_eq!(mine[0].race_id, other.race_id, "newest first");
    assert_eq!(mine[1].waitlist_position, Some(4));

    let list = |user: &str, roles: &[&str], status: proto::RegistrationStatus, token: String| {
        let mut client = harness.client();
        let request = harness.as_user(
            proto::ListRegistrationsRequest {
                race_id: race.race_id.clone(),
                status: status.into(),
                page_size: 3,
                page_token: token,
            },
            user,
            roles,
        );
        async move { client.list_registrations(request).await }
    };
    let status = list(
        "runner-1",
        &["runner"],
        proto::RegistrationStatus::Unspecified,
        String::new(),
    )
    .await
    .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "NOT_RACE_ORGANIZER");
    let status = list(
        "organizer-2",
        ORGANIZER,
        proto::RegistrationStatus::Unspecified,
        String::new(),
    )
    .await
    .unwrap_err();
    assert_status(&status, Code::PermissionDenied, "NOT_RACE_ORGANIZER");

    let mut users = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            "organizer-1",
            ORGANIZER,
            proto::RegistrationStatus::Unspecified,
            token,
        )
        .await
        .unwrap()
        .into_inner();
        users.extend(page.registrations.into_iter().map(|r| r.user_id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(
        users,
        (0..7).map(|n| format!("runner-{n}")).collect::<Vec<_>>()
    );
    let waiting = list(
        "organizer-1",
        ORGANIZER,
        proto::RegistrationStatus::Waitlisted,
        String::new(),
    )
    .await
    .unwrap()
    .into_inner()
    .registrations;
    assert_eq!(
        waiting
            .iter()
            .map(|r| r.waitlist_position)
            .collect::<Vec<_>>(),
        [Some(1), Some(2), Some(3)]
    );
}

async fn watchers_see_places_go_and_the_race_sell_out(backend: Backend) {
    let harness = Harness::start(backend).await;
    let mut race = open_race("Watched", vec![category("10K", 10_000, 2, 1)]);
    // Far enough ahead that the first update surely comes before it; the test opens it.
    race.registration_opens_at = at(Span::seconds(30));
    let race = harness.published_race("organizer-1", race).await;
    let mut updates = harness
        .client()
        .watch_race(proto::WatchRaceRequest {
            race_id: race.race_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = updates.message().await.unwrap().unwrap();
    assert_eq!(
        first.registration_state(),
        proto::RegistrationState::Upcoming
    );
    assert_eq!(first.availability[0].remaining_places, 2);
    assert!(!first.sold_out);

    open_registration_now(&harness, &race).await;
    let opened = next_update(&mut updates).await;
    assert_eq!(opened.registration_state(), proto::RegistrationState::Open);

    for n in 0..3 {
        harness
            .register(&race, 0, &format!("runner-{n}"), "")
            .await
            .unwrap();
    }
    let mut last = opened;
    while !last.sold_out {
        last = next_update(&mut updates).await;
    }
    assert_eq!(last.availability[0].remaining_places, 0);
    assert_eq!(last.availability[0].remaining_waitlist_places, 0);

    let status = harness
        .client()
        .watch_race(proto::WatchRaceRequest {
            race_id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::NotFound, "RACE_NOT_FOUND");

    // Shutting down ends the stream rather than holding the drain.
    harness.shutdown.cancel();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match updates.message().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream ended with the shutdown");
}

/// Moves the registration opening of `race` to just now, in the database, as the clock reaching
/// it would: tests schedule openings far ahead and open them when they choose, rather than
/// racing a near opening time with the wall clock.
async fn open_registration_now(harness: &Harness, race: &proto::Race) {
    use runmesh_svc_race::store::race as races;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let race_id: uuid::Uuid = race.race_id.parse().unwrap();
    let opens_at = runmesh_svc_race::wire::now() - Span::seconds(1);
    let moved = races::Entity::update_many()
        .col_expr(races::Column::RegistrationOpensAt, Expr::value(opens_at))
        .filter(races::Column::Id.eq(race_id))
        .exec(&harness.db)
        .await
        .unwrap()
        .rows_affected;
    assert_eq!(moved, 1, "the race to open");
}

async fn next_update(
    updates: &mut tonic::Streaming<proto::WatchRaceResponse>,
) -> proto::WatchRaceResponse {
    tokio::time::timeout(Duration::from_secs(10), updates.message())
        .await
        .expect("an update within 10s")
        .unwrap()
        .unwrap()
}

async fn openings_are_announced_once_to_subscribers(backend: Backend) {
    let mut config = test_config();
    // The test drives the schedulers itself.
    config.scheduler_interval = Duration::from_secs(3600);
    let harness = Harness::start_with(backend, config.clone()).await;
    let mut race = open_race("Announced", vec![category("10K", 10_000, 5, 0)]);
    // Far enough ahead that it is surely not due yet below; the test opens it.
    race.registration_opens_at = at(Span::seconds(30));
    let race = harness.published_race("organizer-1", race).await;
    for user in ["runner-1", "runner-2", "runner-1"] {
        harness
            .client()
            .subscribe_to_opening(harness.as_runner(
                proto::SubscribeToOpeningRequest {
                    race_id: race.race_id.clone(),
                },
                user,
            ))
            .await
            .unwrap();
    }
    harness
        .client()
        .subscribe_to_opening(harness.as_runner(
            proto::SubscribeToOpeningRequest {
                race_id: race.race_id.clone(),
            },
            "runner-3",
        ))
        .await
        .unwrap();
    harness
        .client()
        .unsubscribe_from_opening(harness.as_runner(
            proto::UnsubscribeFromOpeningRequest {
                race_id: race.race_id.clone(),
            },
            "runner-3",
        ))
        .await
        .unwrap();

    assert_eq!(
        harness.module.scheduler.announce_due().await.unwrap(),
        0,
        "not yet"
    );
    open_registration_now(&harness, &race).await;
    // Two replicas (the second over the same database) race for the announcement.
    let replica = harness.replica(harness.cache.clone(), config).await;
    let (first, second) = tokio::join!(
        harness.module.scheduler.announce_due(),
        replica.module.scheduler.announce_due()
    );
    assert_eq!(
        first.unwrap() + second.unwrap(),
        1,
        "announced exactly once"
    );
    assert_eq!(harness.module.scheduler.announce_due().await.unwrap(), 0);

    let opened: Vec<_> = harness
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.r#type == proto::RegistrationOpened::full_name())
        .map(|e| e.unpack::<proto::RegistrationOpened>().unwrap())
        .collect();
    assert_eq!(opened.len(), 1);
    let mut subscribers = opened[0].subscriber_ids.clone();
    subscribers.sort();
    assert_eq!(subscribers, ["runner-1", "runner-2"]);
    assert_eq!((opened[0].part, opened[0].parts), (1, 1));
    assert_eq!(opened[0].race_name, "Announced");
}

async fn a_gate_that_lost_its_data_is_rebuilt_before_admitting(backend: Backend) {
    let harness = Harness::start(backend).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Rebuilt", vec![category("10K", 10_000, 3, 2)]),
        )
        .await;
    let mut before = Vec::new();
    for n in 0..4 {
        before.push(
            harness
                .register(&race, 0, &format!("runner-{n}"), &format!("key-{n}"))
                .await
                .unwrap(),
        );
    }
    harness
        .cancel(&before[1].registration_id, "runner-1", &["runner"])
        .await
        .unwrap();

    harness.forget_gate(&race).await;

    // What the database knows comes back: members, their keys, taken places and the line.
    assert_eq!(
        harness
            .register(&race, 0, "runner-0", "key-0")
            .await
            .unwrap(),
        before[0]
    );
    let status = harness
        .register(&race, 0, "runner-2", "other")
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, "ALREADY_REGISTERED");
    let status = harness
        .register(&race, 0, "runner-1", "again")
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, "ALREADY_REGISTERED");
    let waiting = harness.register(&race, 0, "runner-4", "").await.unwrap();
    assert_eq!(waiting.status(), proto::RegistrationStatus::Waitlisted);
    assert_eq!(waiting.waitlist_position, Some(1));
    harness.register(&race, 0, "runner-5", "").await.unwrap();
    let status = harness
        .register(&race, 0, "runner-6", "")
        .await
        .unwrap_err();
    assert_status(&status, Code::FailedPrecondition, "SOLD_OUT");

    let rows = harness
        .module
        .registrar
        .list_for_race(
            &runmesh_platform::auth::Caller {
                user_id: "organizer-1".to_owned(),
                session_id: String::new(),
                token_id: String::new(),
                roles: vec![runmesh_platform::auth::Role::Organizer],
            },
            race.race_id.parse().unwrap(),
            Some(runmesh_svc_race::domain::RegistrationStatus::Confirmed),
            100,
            None,
        )
        .await
        .unwrap()
        .0;
    assert_eq!(rows.len(), 3);
    let bibs: HashSet<_> = rows.iter().map(|view| view.row.bib_number).collect();
    assert_eq!(bibs.len(), 3);
}

async fn reservations_of_crashed_writers_are_released(backend: Backend) {
    let harness = Harness::start(backend).await;
    let race = harness
        .published_race(
            "organizer-1",
            open_race("Crashes", vec![category("10K", 10_000, 1, 1)]),
        )
        .await;
    let race_id: uuid::Uuid = race.race_id.parse().unwrap();
    let snapshot = harness
        .module
        .catalog
        .published_snapshot(race_id)
        .await
        .unwrap();
    let category_id = snapshot.categories[0].id;
    let key = runmesh_svc_race::domain::IdempotencyKey::parse("k").unwrap();
    harness.module.gate.ensure_ready(&snapshot).await.unwrap();
    // A writer takes the only confirmed place and dies before writing.
    let admitted = harness
        .module
        .gate
        .admit(
            &snapshot,
            category_id,
            "crashed-runner",
            &key,
            runmesh_svc_race::gate::Counted::No,
        )
        .await
        .unwrap();
    assert!(matches!(
        admitted,
        runmesh_svc_race::gate::Admission::Admitted(_)
    ));

    let waiting = harness.register(&race, 0, "runner-1", "").await.unwrap();
    assert_eq!(waiting.status(), proto::RegistrationStatus::Waitlisted);
    let status = harness
        .register(&race, 0, "crashed-runner", "k")
        .await
        .unwrap_err();
    assert_status(&status, Code::Aborted, "REGISTRATION_IN_PROGRESS");

    // After the reservation timeout (5 s in tests) maintenance releases the place, and the
    // head of the waitlist gets it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mine = harness
            .client()
            .list_my_registrations(
                harness.as_runner(proto::ListMyRegistrationsRequest::default(), "runner-1"),
            )
            .await
            .unwrap()
            .into_inner()
            .registrations;
        if mine[0].status() == proto::RegistrationStatus::Confirmed {
            assert_eq!(mine[0].bib_number, Some(1));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never promoted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The crashed runner is free to try again, and joins the waitlist.
    let retry = harness
        .register(&race, 0, "crashed-runner", "k")
        .await
        .unwrap();
    assert_eq!(retry.status(), proto::RegistrationStatus::Waitlisted);
}
