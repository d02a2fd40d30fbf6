//! Every conversion between protobuf messages and the domain or stored models, for answers and
//! events alike.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use runmesh_proto::runmesh::social::v1 as proto;

use crate::board::{CommentView, PostView, ReactionTally, Reported, Target};
use crate::core::CrewView;
use crate::domain::{
    CrewRole, CrewVisibility, Moderation, PostCategory, ReactionKind, RsvpStatus, RunVisibility,
    Standing,
};
use crate::feed::{FeedItem, MemberTotals, Totals};
use crate::meetups::{Attendance, MeetupView};
use crate::store::{crew, invite, meetup, member, run_comment};

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

/// A time from a page token's microseconds.
pub fn from_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

pub fn crew_visibility(visibility: proto::CrewVisibility) -> Option<CrewVisibility> {
    match visibility {
        proto::CrewVisibility::Public => Some(CrewVisibility::Public),
        proto::CrewVisibility::Approval => Some(CrewVisibility::Approval),
        proto::CrewVisibility::Private => Some(CrewVisibility::Private),
        proto::CrewVisibility::Unspecified => None,
    }
}

fn crew_visibility_message(code: &str) -> proto::CrewVisibility {
    match CrewVisibility::from_code(code) {
        Some(CrewVisibility::Public) => proto::CrewVisibility::Public,
        Some(CrewVisibility::Approval) => proto::CrewVisibility::Approval,
        Some(CrewVisibility::Private) => proto::CrewVisibility::Private,
        None => proto::CrewVisibility::Unspecified,
    }
}

pub fn crew_role(role: proto::CrewRole) -> Option<CrewRole> {
    match role {
        proto::CrewRole::Owner => Some(CrewRole::Owner),
        proto::CrewRole::Admin => Some(CrewRole::Admin),
        proto::CrewRole::Member => Some(CrewRole::Member),
        proto::CrewRole::Unspecified => None,
    }
}

fn role_message(role: CrewRole) -> proto::CrewRole {
    match role {
        CrewRole::Owner => proto::CrewRole::Owner,
        CrewRole::Admin => proto::CrewRole::Admin,
        CrewRole::Member => proto::CrewRole::Member,
    }
}

/// What other services keep of a crew.
pub fn crew_summary(crew: &crew::Model) -> proto::CrewSummary {
    proto::CrewSummary {
        crew_id: crew.id.to_string(),
        name: crew.name.clone(),
        region: crew.region.clone(),
        visibility: crew.visibility.to_ascii_uppercase(),
        archived: crew.archived_at.is_some(),
    }
}

pub fn crew_message(view: &CrewView) -> proto::Crew {
    let crew = &view.crew;
    let (membership, role) = match view.standing {
        Standing::None => (proto::MembershipState::None, proto::CrewRole::Unspecified),
        Standing::Requested => (
            proto::MembershipState::Requested,
            proto::CrewRole::Unspecified,
        ),
        Standing::Banned => (proto::MembershipState::Banned, proto::CrewRole::Unspecified),
        Standing::Member(role) => (proto::MembershipState::Member, role_message(role)),
    };
    proto::Crew {
        crew_id: crew.id.to_string(),
        name: crew.name.clone(),
        description: crew.description.clone(),
        region: crew.region.clone(),
        cover_url: crew.cover_url.clone(),
        visibility: crew_visibility_message(&crew.visibility).into(),
        archived: crew.archived_at.is_some(),
        member_count: u32::try_from(crew.member_count).unwrap_or(0),
        owner_id: crew.owner_id.clone(),
        created_at: Some(timestamp(crew.created_at)),
        membership: membership.into(),
        role: role.into(),
    }
}

pub fn member_message(row: &member::Model, names: &HashMap<String, String>) -> proto::Member {
    proto::Member {
        user_id: row.user_id.clone(),
        display_name: names.get(&row.user_id).cloned().unwrap_or_default(),
        role: role_message(CrewRole::from_code(&row.role).unwrap_or(CrewRole::Member)).into(),
        joined_at: Some(timestamp(row.since)),
    }
}

pub fn join_request_message(
    row: &member::Model,
    names: &HashMap<String, String>,
) -> proto::JoinRequest {
    proto::JoinRequest {
        user_id: row.user_id.clone(),
        display_name: names.get(&row.user_id).cloned().unwrap_or_default(),
        message: row.message.clone(),
        requested_at: Some(timestamp(row.since)),
    }
}

pub fn invite_message(invite: &invite::Model) -> proto::Invite {
    proto::Invite {
        code: invite.code.clone(),
        crew_id: invite.crew_id.to_string(),
        expires_at: Some(timestamp(invite.expires_at)),
        max_uses: u32::try_from(invite.max_uses).unwrap_or(0),
        uses: u32::try_from(invite.uses).unwrap_or(0),
    }
}

pub fn post_category(category: proto::PostCategory) -> Option<PostCategory> {
    match category {
        proto::PostCategory::Notice => Some(PostCategory::Notice),
        proto::PostCategory::Free => Some(PostCategory::Free),
        proto::PostCategory::Recruiting => Some(PostCategory::Recruiting),
        proto::PostCategory::Review => Some(PostCategory::Review),
        proto::PostCategory::Question => Some(PostCategory::Question),
        proto::PostCategory::Unspecified => None,
    }
}

fn category_message(code: &str) -> proto::PostCategory {
    match PostCategory::from_code(code) {
        Some(PostCategory::Notice) => proto::PostCategory::Notice,
        Some(PostCategory::Free) => proto::PostCategory::Free,
        Some(PostCategory::Recruiting) => proto::PostCategory::Recruiting,
        Some(PostCategory::Review) => proto::PostCategory::Review,
        Some(PostCategory::Question) => proto::PostCategory::Question,
        None => proto::PostCategory::Unspecified,
    }
}

pub fn moderation_message(moderation: Moderation) -> proto::ModerationState {
    match moderation {
        Moderation::Visible => proto::ModerationState::Visible,
        Moderation::Hidden => proto::ModerationState::Hidden,
        Moderation::Restored => proto::ModerationState::Restored,
        Moderation::Removed => proto::ModerationState::Removed,
    }
}

fn moderation_code(code: &str) -> proto::ModerationState {
    Moderation::from_code(code).map_or(proto::ModerationState::Unspecified, moderation_message)
}

pub fn reaction_kind(kind: proto::ReactionKind) -> Option<ReactionKind> {
    match kind {
        proto::ReactionKind::Like => Some(ReactionKind::Like),
        proto::ReactionKind::Fire => Some(ReactionKind::Fire),
        proto::ReactionKind::Clap => Some(ReactionKind::Clap),
        proto::ReactionKind::Laugh => Some(ReactionKind::Laugh),
        proto::ReactionKind::Unspecified => None,
    }
}

pub fn reactions(tallies: &[ReactionTally]) -> Vec<proto::ReactionCount> {
    tallies
        .iter()
        .map(|tally| proto::ReactionCount {
            kind: match tally.kind {
                ReactionKind::Like => proto::ReactionKind::Like,
                ReactionKind::Fire => proto::ReactionKind::Fire,
                ReactionKind::Clap => proto::ReactionKind::Clap,
                ReactionKind::Laugh => proto::ReactionKind::Laugh,
            }
            .into(),
            count: tally.count,
            mine: tally.mine,
        })
        .collect()
}

/// An author; a deleted account shows as a deleted member.
pub fn author(user_id: &str, names: &HashMap<String, String>) -> proto::Author {
    proto::Author {
        user_id: user_id.to_owned(),
        display_name: if user_id.is_empty() {
            "Deleted member".to_owned()
        } else {
            names.get(user_id).cloned().unwrap_or_default()
        },
        deleted: user_id.is_empty(),
    }
}

pub fn post_message(view: &PostView, names: &HashMap<String, String>) -> proto::Post {
    let post = &view.post;
    proto::Post {
        post_id: post.id.to_string(),
        crew_id: post.crew_id.to_string(),
        author: Some(author(&post.author_id, names)),
        category: category_message(&post.category).into(),
        title: post.title.clone(),
        body: post.body.clone(),
        pinned: post.pinned != 0,
        moderation: moderation_code(&post.moderation).into(),
        comment_count: u32::try_from(post.comment_count).unwrap_or(0),
        reactions: reactions(&view.reactions),
        created_at: Some(timestamp(post.created_at)),
        edited_at: post.edited_at.map(timestamp),
    }
}

pub fn comment_message(view: &CommentView, names: &HashMap<String, String>) -> proto::Comment {
    let comment = &view.comment;
    proto::Comment {
        comment_id: comment.id.to_string(),
        post_id: comment.post_id.to_string(),
        parent_comment_id: comment
            .parent_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        author: Some(author(&comment.author_id, names)),
        body: comment.body.clone(),
        moderation: moderation_code(&comment.moderation).into(),
        reactions: reactions(&view.reactions),
        created_at: Some(timestamp(comment.created_at)),
    }
}

pub fn content_ref(target: Target) -> proto::ContentRef {
    proto::ContentRef {
        target: Some(match target {
            Target::Post(id) => proto::content_ref::Target::PostId(id.to_string()),
            Target::Comment(id) => proto::content_ref::Target::CommentId(id.to_string()),
        }),
    }
}

pub fn reported_message(
    item: &Reported,
    names: &HashMap<String, String>,
) -> proto::ReportedContent {
    proto::ReportedContent {
        target: Some(content_ref(item.target)),
        crew_id: item.crew_id.to_string(),
        author: Some(author(&item.author_id, names)),
        excerpt: item.excerpt.clone(),
        moderation: moderation_message(item.moderation).into(),
        report_count: u32::try_from(item.report_count).unwrap_or(0),
        reasons: item.reasons.clone(),
    }
}

/// Pace groups as stored (one per line).
pub fn pace_groups(stored: &str) -> Vec<String> {
    stored
        .lines()
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn meetup_status(code: &str) -> proto::MeetupStatus {
    match code {
        "scheduled" => proto::MeetupStatus::Scheduled,
        "cancelled" => proto::MeetupStatus::Cancelled,
        _ => proto::MeetupStatus::Unspecified,
    }
}

pub fn rsvp_message(status: RsvpStatus) -> proto::RsvpStatus {
    match status {
        RsvpStatus::Going => proto::RsvpStatus::Going,
        RsvpStatus::Waitlisted => proto::RsvpStatus::Waitlisted,
        RsvpStatus::NotGoing => proto::RsvpStatus::NotGoing,
    }
}

pub fn event_rsvp(status: Option<RsvpStatus>) -> proto::MeetupRsvpStatus {
    match status {
        Some(RsvpStatus::Going) => proto::MeetupRsvpStatus::Going,
        Some(RsvpStatus::Waitlisted) => proto::MeetupRsvpStatus::Waitlisted,
        Some(RsvpStatus::NotGoing) => proto::MeetupRsvpStatus::NotGoing,
        None => proto::MeetupRsvpStatus::Unspecified,
    }
}

pub fn meetup_summary(meetup: &meetup::Model) -> proto::MeetupSummary {
    proto::MeetupSummary {
        meetup_id: meetup.id.to_string(),
        crew_id: meetup.crew_id.to_string(),
        title: meetup.title.clone(),
        starts_at: Some(timestamp(meetup.starts_at)),
        time_zone: meetup.time_zone.clone(),
        meeting_point_name: meetup.meeting_point.clone(),
        capacity: u32::try_from(meetup.capacity).unwrap_or(0),
    }
}

pub fn meetup_message(view: &MeetupView) -> proto::Meetup {
    let meetup = &view.meetup;
    proto::Meetup {
        meetup_id: meetup.id.to_string(),
        crew_id: meetup.crew_id.to_string(),
        title: meetup.title.clone(),
        description: meetup.description.clone(),
        starts_at: Some(timestamp(meetup.starts_at)),
        time_zone: meetup.time_zone.clone(),
        meeting_point: Some(proto::MeetingPoint {
            name: meetup.meeting_point.clone(),
            location: Some(proto::GeoPoint {
                latitude: meetup.latitude,
                longitude: meetup.longitude,
            }),
        }),
        planned_distance_meters: u32::try_from(meetup.planned_distance_meters).unwrap_or(0),
        pace_groups: pace_groups(&meetup.pace_groups),
        capacity: u32::try_from(meetup.capacity).unwrap_or(0),
        rsvp_deadline: Some(timestamp(meetup.rsvp_deadline)),
        members_only: meetup.members_only,
        recurrence: if meetup.recurrence == "weekly" {
            proto::Recurrence::Weekly
        } else {
            proto::Recurrence::None
        }
        .into(),
        status: meetup_status(&meetup.status).into(),
        going_count: u32::try_from(meetup.going_count).unwrap_or(0),
        waitlist_count: u32::try_from(meetup.waitlist_count).unwrap_or(0),
        my_rsvp: view
            .mine
            .map_or(proto::RsvpStatus::Unspecified, |(status, _)| {
                rsvp_message(status)
            })
            .into(),
        my_waitlist_position: view.mine.map_or(0, |(_, position)| position),
        created_by: meetup.created_by.clone(),
    }
}

/// The going list and the waitlist (with positions).
pub fn attendees(
    attendance: &Attendance,
    names: &HashMap<String, String>,
) -> (Vec<proto::Attendee>, Vec<proto::Attendee>) {
    let going = attendance
        .going
        .iter()
        .map(|row| proto::Attendee {
            user_id: row.user_id.clone(),
            display_name: names.get(&row.user_id).cloned().unwrap_or_default(),
            status: proto::RsvpStatus::Going.into(),
            waitlist_position: 0,
        })
        .collect();
    let waitlist = attendance
        .waitlist
        .iter()
        .zip(1u32..)
        .map(|(row, position)| proto::Attendee {
            user_id: row.user_id.clone(),
            display_name: names.get(&row.user_id).cloned().unwrap_or_default(),
            status: proto::RsvpStatus::Waitlisted.into(),
            waitlist_position: position,
        })
        .collect();
    (going, waitlist)
}

pub fn feed_run_message(item: &FeedItem, names: &HashMap<String, String>) -> proto::FeedRun {
    let run = &item.run;
    proto::FeedRun {
        run_id: run.run_id.clone(),
        owner_id: run.owner_id.clone(),
        owner_display_name: names.get(&run.owner_id).cloned().unwrap_or_default(),
        title: run.title.clone(),
        start_time: Some(timestamp(run.start_time)),
        distance_meters: run.distance_meters,
        elapsed_seconds: u64::try_from(run.elapsed_seconds).unwrap_or(0),
        moving_seconds: u64::try_from(run.moving_seconds).unwrap_or(0),
        average_pace_seconds_per_km: run.pace_seconds_per_km,
        visibility: match RunVisibility::from_code(&run.visibility) {
            Some(RunVisibility::Public) => proto::FeedVisibility::Public,
            Some(RunVisibility::Crews) => proto::FeedVisibility::Crews,
            _ => proto::FeedVisibility::Unspecified,
        }
        .into(),
        kudos_count: u32::try_from(run.kudos_count).unwrap_or(0),
        comment_count: u32::try_from(run.comment_count).unwrap_or(0),
        kudos_given: item.kudos_given,
    }
}

pub fn run_comment_message(
    comment: &run_comment::Model,
    names: &HashMap<String, String>,
) -> proto::RunComment {
    proto::RunComment {
        comment_id: comment.id.to_string(),
        run_id: comment.run_id.clone(),
        author: Some(author(&comment.author_id, names)),
        body: comment.body.clone(),
        created_at: Some(timestamp(comment.created_at)),
    }
}

pub fn totals_message(
    totals: &Totals,
    names: &HashMap<String, String>,
) -> proto::GetCrewTotalsResponse {
    let sum = |f: fn(&MemberTotals) -> f64| totals.members.iter().map(f).sum::<f64>();
    proto::GetCrewTotalsResponse {
        period_start: Some(timestamp(totals.start)),
        period_end: Some(timestamp(totals.end)),
        runs: totals.members.iter().map(|m| m.runs).sum(),
        distance_meters: sum(|m| m.distance_meters),
        moving_seconds: totals.members.iter().map(|m| m.moving_seconds).sum(),
        active_members: u32::try_from(totals.members.len()).unwrap_or(u32::MAX),
        members: totals
            .members
            .iter()
            .take(50)
            .map(|m| proto::MemberTotals {
                user_id: m.user_id.clone(),
                display_name: names.get(&m.user_id).cloned().unwrap_or_default(),
                runs: m.runs,
                distance_meters: m.distance_meters,
                moving_seconds: m.moving_seconds,
            })
            .collect(),
    }
}
