//! RSVPs under a flood, as race registration at small scale: 300 runners answer "going" at once
//! for 40 places through two service instances sharing one PostgreSQL database (embedded mode
//! is one process on one box: there, one instance over SQLite). Exactly 40 go, the other
//! 260 wait in one unbroken line whose order every answer agreed with, nobody answers twice,
//! and drop-outs hand their places to the head of the line in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;

use runmesh_proto::runmesh::social::v1 as proto;
use support::{Backend, Harness, meetup_spec, rsvp, test_config};

const RUNNERS: usize = 300;
const PLACES: u32 = 40;

on_both_backends!(a_flood_of_rsvps_keeps_capacity_and_order_across_instances);

async fn a_flood_of_rsvps_keeps_capacity_and_order_across_instances(backend: Backend) {
    let h = Harness::start(backend).await;
    let replica = match backend {
        Backend::Postgres => Some(h.replica(test_config()).await),
        Backend::Embedded => None,
    };
    let crew = h
        .crew("owner", "Flood crew", proto::CrewVisibility::Public)
        .await;
    let meetup = h
        .client()
        .create_meetup(h.as_runner(
            proto::CreateMeetupRequest {
                crew_id: crew.crew_id.clone(),
                // Open to guests, so 300 runners need not join first.
                meetup: Some(proto::Meetup {
                    members_only: false,
                    ..meetup_spec(PLACES, chrono::Duration::days(1))
                }),
            },
            "owner",
        ))
        .await
        .unwrap()
        .into_inner()
        .meetup
        .unwrap();
    let id = meetup.meetup_id.clone();
    let clients = [
        h.client(),
        replica.as_ref().map_or_else(|| h.client(), Harness::client),
    ];
    let answers = futures::future::join_all((0..RUNNERS).map(|n| {
        let client = clients[n % 2].clone();
        let issuer = h.issuer.clone();
        let id = id.clone();
        async move {
            let user = format!("runner-{n:03}");
            // Every runner taps twice: one RSVP per runner all the same.
            let first = rsvp(&client, &issuer, &id, &user, true).await.unwrap();
            let second = rsvp(&client, &issuer, &id, &user, true).await.unwrap();
            (user, first, second)
        }
    }))
    .await;

    let mut going = HashSet::new();
    let mut positions = Vec::new();
    for (user, first, second) in &answers {
        assert_eq!(first.status(), second.status(), "{user}");
        match first.status() {
            proto::RsvpStatus::Going => {
                assert!(going.insert(user.clone()));
            }
            proto::RsvpStatus::Waitlisted => {
                positions.push((first.waitlist_position, user.clone()))
            }
            other => panic!("{user}: {other:?}"),
        }
    }
    assert_eq!(going.len(), PLACES as usize, "exactly the capacity goes");
    positions.sort();
    let expected: Vec<u32> = (1..=u32::try_from(RUNNERS).unwrap() - PLACES).collect();
    assert_eq!(
        positions.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        expected,
        "one unbroken waitlist"
    );

    let read = || {
        let mut client = h.client();
        let request = h.as_runner(
            proto::GetMeetupRequest {
                meetup_id: id.clone(),
            },
            "owner",
        );
        async move { client.get_meetup(request).await.unwrap().into_inner() }
    };
    let state = read().await;
    let line: Vec<String> = state.waitlist.iter().map(|a| a.user_id.clone()).collect();
    assert_eq!(
        line,
        positions.iter().map(|(_, u)| u.clone()).collect::<Vec<_>>(),
        "the line is the order the answers gave"
    );
    let meetup = state.meetup.unwrap();
    assert_eq!((meetup.going_count, meetup.waitlist_count), (PLACES, 260));
    assert_eq!(state.going.len(), PLACES as usize);

    // Ten drop-outs at once, through both instances: the first ten in line go, in order.
    let leaving: Vec<String> = state
        .going
        .iter()
        .take(10)
        .map(|a| a.user_id.clone())
        .collect();
    futures::future::join_all(leaving.iter().enumerate().map(|(n, user)| {
        let client = clients[n % 2].clone();
        let issuer = h.issuer.clone();
        let id = id.clone();
        async move { rsvp(&client, &issuer, &id, user, false).await.unwrap() }
    }))
    .await;
    let promoted: Vec<String> = h
        .events::<proto::MeetupPromoted>()
        .await
        .into_iter()
        .map(|e| e.user_id)
        .collect();
    assert_eq!(promoted, line[..10]);
    let after = read().await;
    let meetup = after.meetup.unwrap();
    assert_eq!((meetup.going_count, meetup.waitlist_count), (PLACES, 250));
    assert_eq!(after.waitlist[0].user_id, line[10]);
    assert_eq!(after.waitlist[0].waitlist_position, 1);
}
