//! Stored models → protobuf messages (answers and events), and protobuf times → chrono.

use chrono::{DateTime, Utc};
use runmesh_proto::runmesh::race::v1 as proto;
use runmesh_proto::runmesh::run::v1 as run_proto;

use crate::catalog::{Availability, RaceRecord};
use crate::domain::{RaceStatus, RegistrationState, RegistrationStatus, RegistrationWindow};
use crate::results::LinkedResult;
use crate::store::registration;

pub fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

/// A protobuf time, truncated to microseconds (what the database keeps).
pub fn from_timestamp(at: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    let micros = at
        .seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(at.nanos) / 1_000)?;
    DateTime::from_timestamp_micros(micros)
}

/// Now, truncated to microseconds so stored times compare equal after a round trip.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

pub fn registration_state(state: RegistrationState) -> proto::RegistrationState {
    match state {
        RegistrationState::Upcoming => proto::RegistrationState::Upcoming,
        RegistrationState::Open => proto::RegistrationState::Open,
        RegistrationState::Closed => proto::RegistrationState::Closed,
    }
}

pub fn race_message(record: &RaceRecord, now: DateTime<Utc>) -> proto::Race {
    let race = &record.race;
    let window = RegistrationWindow {
        opens_at: race.registration_opens_at,
        closes_at: race.registration_closes_at,
    };
    let status = match RaceStatus::from_code(&race.status) {
        Some(RaceStatus::Draft) => proto::RaceStatus::Draft,
        Some(RaceStatus::Published) => proto::RaceStatus::Published,
        None => proto::RaceStatus::Unspecified,
    };
    proto::Race {
        race_id: race.id.to_string(),
        organizer_id: race.organizer_id.clone(),
        name: race.name.clone(),
        description: race.description.clone(),
        region: race.region.clone(),
        venue: race.venue.clone(),
        coordinates: race
            .latitude
            .zip(race.longitude)
            .map(|(latitude, longitude)| proto::Coordinates {
                latitude,
                longitude,
            }),
        starts_at: Some(timestamp(race.starts_at)),
        registration_opens_at: Some(timestamp(race.registration_opens_at)),
        registration_closes_at: Some(timestamp(race.registration_closes_at)),
        official_url: race.official_url.clone(),
        categories: record
            .categories
            .iter()
            .map(|category| proto::Category {
                category_id: category.id.to_string(),
                name: category.name.clone(),
                distance_meters: non_negative(category.distance_meters),
                capacity: non_negative(category.capacity),
                waitlist_capacity: non_negative(category.waitlist_capacity),
                fee: (!category.fee_currency.is_empty()).then(|| proto::Fee {
                    currency_code: category.fee_currency.clone(),
                    amount_minor: category.fee_amount_minor,
                }),
                first_bib: non_negative(category.first_bib),
            })
            .collect(),
        status: status.into(),
        registration_state: registration_state(window.state_at(now)).into(),
        created_at: Some(timestamp(race.created_at)),
        updated_at: Some(timestamp(race.updated_at)),
        published_at: race.published_at.map(timestamp),
    }
}

pub fn registration_status(status: RegistrationStatus) -> proto::RegistrationStatus {
    match status {
        RegistrationStatus::Confirmed => proto::RegistrationStatus::Confirmed,
        RegistrationStatus::Waitlisted => proto::RegistrationStatus::Waitlisted,
        RegistrationStatus::Cancelled => proto::RegistrationStatus::Cancelled,
    }
}

/// `waitlist_position` is the registration's place in line while it is waitlisted.
pub fn registration_message(
    row: &registration::Model,
    waitlist_position: Option<u32>,
) -> proto::Registration {
    let status = RegistrationStatus::from_code(&row.status)
        .map_or(proto::RegistrationStatus::Unspecified, registration_status);
    proto::Registration {
        registration_id: row.id.to_string(),
        race_id: row.race_id.to_string(),
        category_id: row.category_id.to_string(),
        user_id: row.user_id.clone(),
        status: status.into(),
        bib_number: row.bib_number.and_then(|bib| u32::try_from(bib).ok()),
        waitlist_position: waitlist_position
            .filter(|_| status == proto::RegistrationStatus::Waitlisted),
        created_at: Some(timestamp(row.created_at)),
        updated_at: Some(timestamp(row.updated_at)),
        result: registration_result(row),
    }
}

/// The run linked as the registration's result, while one is.
pub fn registration_result(row: &registration::Model) -> Option<proto::RegistrationResult> {
    let run_id = row.result_run_id.as_ref().filter(|id| !id.is_empty())?;
    Some(proto::RegistrationResult {
        run_id: run_id.clone(),
        elapsed_time: row.result_elapsed_micros.map(duration_from_micros),
        linked_at: row.result_linked_at.map(timestamp),
    })
}

/// What svc-run's `RaceResultLinked` says of a registration: the run now linked, or `None`
/// when it was unlinked (`run_id` empty). `linked_at` is when svc-run committed the change.
pub fn linked_result(
    event: &run_proto::RaceResultLinked,
    linked_at: DateTime<Utc>,
) -> Option<LinkedResult> {
    if event.run_id.is_empty() {
        return None;
    }
    Some(LinkedResult {
        run_id: event.run_id.clone(),
        elapsed_micros: event.elapsed_time.as_ref().and_then(micros_from_duration),
        linked_at,
    })
}

/// A non-negative protobuf duration in microseconds (what the database keeps).
pub fn micros_from_duration(duration: &prost_types::Duration) -> Option<i64> {
    if duration.seconds < 0 || duration.nanos < 0 {
        return None;
    }
    duration
        .seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(duration.nanos) / 1_000)
}

pub fn duration_from_micros(micros: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

pub fn availability_message(availability: &Availability) -> proto::CategoryAvailability {
    proto::CategoryAvailability {
        category_id: availability.category_id.to_string(),
        capacity: availability.capacity,
        confirmed: availability.confirmed,
        remaining_places: availability.capacity.saturating_sub(availability.confirmed),
        waitlist_capacity: availability.waitlist_capacity,
        waitlisted: availability.waitlisted,
        remaining_waitlist_places: availability
            .waitlist_capacity
            .saturating_sub(availability.waitlisted),
    }
}

fn non_negative(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn timestamps_keep_microseconds() {
        let at = from_timestamp(&prost_types::Timestamp {
            seconds: 1_767_225_600,
            nanos: 123_456_789,
        })
        .unwrap();
        assert_eq!(at.timestamp_subsec_nanos(), 123_456_000);
        assert_eq!(from_timestamp(&timestamp(at)), Some(at));
        assert!(
            from_timestamp(&prost_types::Timestamp {
                seconds: i64::MAX,
                nanos: 0
            })
            .is_none()
        );
    }

    #[test]
    fn durations_keep_microseconds() {
        let elapsed = prost_types::Duration {
            seconds: 12_345,
            nanos: 678_901_234,
        };
        let micros = micros_from_duration(&elapsed).unwrap();
        assert_eq!(micros, 12_345_678_901);
        assert_eq!(
            duration_from_micros(micros),
            prost_types::Duration {
                seconds: 12_345,
                nanos: 678_901_000
            }
        );
        assert_eq!(
            micros_from_duration(&prost_types::Duration {
                seconds: -1,
                nanos: 0
            }),
            None
        );
    }
}
