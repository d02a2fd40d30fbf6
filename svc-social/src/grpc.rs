//! The gRPC surface: decode the request into domain values, call [`Social`], encode the answer.
//! No rules live here.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use futures::{Stream, StreamExt};
use runmesh_platform::auth::require_caller;
use runmesh_proto::runmesh::social::v1 as proto;
use runmesh_proto::runmesh::social::v1::crew_service_server::CrewService;
use tokio_stream::wrappers::WatchStream;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::board::{PostChanges, Target};
use crate::core::{Social, display_names};
use crate::crews::{CrewChanges, CrewSpec, Joined};
use crate::domain::{
    self, CrewRole, PageSize, PageToken, Recurrence, Rejected, Violations, limits,
};
use crate::error::Error;
use crate::meetups::{MeetupChanges, MeetupSpec};
use crate::metrics;
use crate::watch::WatchHub;
use crate::wire;

/// Board reads answer from one index range; writes take a commit.
const API_OBJECTIVE: Objective = Objective::new("social_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms50, ObjectivePercentile::P99);

/// `runmesh.social.v1.CrewService`.
pub struct SocialApi {
    social: Arc<Social>,
    watch: Arc<WatchHub>,
}

impl SocialApi {
    pub fn new(social: Arc<Social>, watch: Arc<WatchHub>) -> Self {
        Self { social, watch }
    }

    async fn names(
        &self,
        ids: impl IntoIterator<Item = String>,
    ) -> Result<HashMap<String, String>, Status> {
        Ok(display_names(self.social.db(), ids).await?)
    }
}

fn invalid(violations: Violations) -> Status {
    Error::InvalidInput(violations.into_vec()).into()
}

fn id(field: &str, value: &str) -> Result<Uuid, Status> {
    domain::parse_id(value)
        .map_err(|Rejected(description)| Error::invalid(field, description).into())
}

fn page(size: u32, token: &str) -> Result<(PageSize, Option<PageToken>), Status> {
    let after = PageToken::decode(token)
        .map_err(|Rejected(description)| Status::from(Error::invalid("page_token", description)))?;
    Ok((PageSize::parse(size), after))
}

fn text(
    violations: &mut Violations,
    field: &str,
    value: &str,
    min: usize,
    max: usize,
) -> Option<String> {
    violations.check(field, domain::text(value, min, max))
}

fn user_id(field: &str, value: &str) -> Result<String, Status> {
    let value = value.trim();
    if value.is_empty() || value.len() > 64 {
        return Err(Error::invalid(field, "is required (at most 64 characters)").into());
    }
    Ok(value.to_owned())
}

fn target(field: &str, target: Option<proto::ContentRef>) -> Result<Target, Status> {
    match target.and_then(|target| target.target) {
        Some(proto::content_ref::Target::PostId(post_id)) => {
            Ok(Target::Post(id(&format!("{field}.post_id"), &post_id)?))
        }
        Some(proto::content_ref::Target::CommentId(comment_id)) => Ok(Target::Comment(id(
            &format!("{field}.comment_id"),
            &comment_id,
        )?)),
        None => Err(Error::invalid(field, "name a post_id or a comment_id").into()),
    }
}

fn pace_groups(violations: &mut Violations, groups: &[String]) -> Vec<String> {
    if groups.len() > limits::PACE_GROUPS {
        violations.add(
            "pace_groups",
            format!("at most {} groups", limits::PACE_GROUPS),
        );
    }
    groups
        .iter()
        .filter_map(|group| text(violations, "pace_groups", group, 1, limits::PACE_GROUP))
        .collect()
}

fn coordinates(violations: &mut Violations, point: Option<&proto::GeoPoint>) -> (f64, f64) {
    let Some(point) = point else {
        violations.add("meeting_point.location", "is required");
        return (0.0, 0.0);
    };
    if !(-90.0..=90.0).contains(&point.latitude) {
        violations.add("meeting_point.location.latitude", "must be within -90..=90");
    }
    if !(-180.0..=180.0).contains(&point.longitude) {
        violations.add(
            "meeting_point.location.longitude",
            "must be within -180..=180",
        );
    }
    (point.latitude, point.longitude)
}

fn parse_meetup(meetup: &proto::Meetup) -> Result<MeetupSpec, Status> {
    let mut v = Violations::new();
    let title = text(
        &mut v,
        "meetup.title",
        &meetup.title,
        1,
        limits::MEETUP_TITLE,
    );
    let description = text(
        &mut v,
        "meetup.description",
        &meetup.description,
        0,
        limits::MEETUP_DESCRIPTION,
    );
    let starts_at = meetup.starts_at.as_ref().and_then(wire::from_timestamp);
    if starts_at.is_none() {
        v.add("meetup.starts_at", "is required");
    }
    if let Some(at) = starts_at
        && at <= wire::now()
    {
        v.add("meetup.starts_at", "must be in the future");
    }
    if meetup.time_zone.parse::<chrono_tz::Tz>().is_err() {
        v.add(
            "meetup.time_zone",
            "must be an IANA time zone, e.g. Asia/Seoul",
        );
    }
    let point = meetup.meeting_point.clone().unwrap_or_default();
    let meeting_point = text(
        &mut v,
        "meetup.meeting_point.name",
        &point.name,
        1,
        limits::MEETING_POINT,
    );
    let (latitude, longitude) = coordinates(&mut v, point.location.as_ref());
    if meetup.planned_distance_meters > limits::MAX_DISTANCE_METERS {
        v.add("meetup.planned_distance_meters", "must be at most 200000");
    }
    if meetup.capacity == 0 || meetup.capacity > limits::MAX_CAPACITY {
        v.add("meetup.capacity", "must be within 1..=10000");
    }
    let groups = pace_groups(&mut v, &meetup.pace_groups);
    let deadline = match &meetup.rsvp_deadline {
        Some(at) => wire::from_timestamp(at),
        None => starts_at,
    };
    if let (Some(deadline), Some(starts_at)) = (deadline, starts_at)
        && deadline > starts_at
    {
        v.add("meetup.rsvp_deadline", "must not be after starts_at");
    }
    let recurrence = match proto::Recurrence::try_from(meetup.recurrence) {
        Ok(proto::Recurrence::Weekly) => Recurrence::Weekly,
        Ok(_) => Recurrence::None,
        Err(_) => {
            v.add("meetup.recurrence", "is not a recurrence");
            Recurrence::None
        }
    };
    match (title, description, starts_at, meeting_point, deadline) {
        (Some(title), Some(description), Some(starts_at), Some(meeting_point), Some(deadline))
            if v.is_empty() =>
        {
            Ok(MeetupSpec {
                title,
                description,
                starts_at,
                time_zone: meetup.time_zone.clone(),
                meeting_point,
                latitude,
                longitude,
                planned_distance_meters: meetup.planned_distance_meters,
                pace_groups: groups,
                capacity: meetup.capacity,
                rsvp_deadline: deadline,
                members_only: meetup.members_only,
                recurrence,
            })
        }
        _ => Err(invalid(v)),
    }
}

type WatchMeetupStream =
    Pin<Box<dyn Stream<Item = Result<proto::WatchMeetupResponse, Status>> + Send + 'static>>;

#[autometrics(objective = API_OBJECTIVE, error_if = runmesh_platform::error::server_fault)]
#[tonic::async_trait]
impl CrewService for SocialApi {
    async fn create_crew(
        &self,
        request: Request<proto::CreateCrewRequest>,
    ) -> Result<Response<proto::CreateCrewResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let mut v = Violations::new();
        let name = text(&mut v, "name", &r.name, 1, limits::CREW_NAME);
        let description = text(
            &mut v,
            "description",
            &r.description,
            0,
            limits::CREW_DESCRIPTION,
        );
        let region = text(&mut v, "region", &r.region, 0, limits::REGION);
        let cover_url = text(&mut v, "cover_url", &r.cover_url, 0, limits::COVER_URL);
        let visibility = proto::CrewVisibility::try_from(r.visibility)
            .ok()
            .and_then(wire::crew_visibility);
        if visibility.is_none() {
            v.add("visibility", "is required: PUBLIC, APPROVAL or PRIVATE");
        }
        let (Some(name), Some(description), Some(region), Some(cover_url), Some(visibility)) =
            (name, description, region, cover_url, visibility)
        else {
            return Err(invalid(v));
        };
        let view = self
            .social
            .create_crew(
                &caller,
                CrewSpec {
                    name,
                    description,
                    region,
                    cover_url,
                    visibility,
                },
            )
            .await?;
        Ok(Response::new(proto::CreateCrewResponse {
            crew: Some(wire::crew_message(&view)),
        }))
    }

    async fn update_crew(
        &self,
        request: Request<proto::UpdateCrewRequest>,
    ) -> Result<Response<proto::UpdateCrewResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let mut v = Violations::new();
        let changes = CrewChanges {
            name: r
                .name
                .as_deref()
                .and_then(|name| text(&mut v, "name", name, 1, limits::CREW_NAME)),
            description: r.description.as_deref().and_then(|description| {
                text(
                    &mut v,
                    "description",
                    description,
                    0,
                    limits::CREW_DESCRIPTION,
                )
            }),
            region: r
                .region
                .as_deref()
                .and_then(|region| text(&mut v, "region", region, 0, limits::REGION)),
            cover_url: r
                .cover_url
                .as_deref()
                .and_then(|url| text(&mut v, "cover_url", url, 0, limits::COVER_URL)),
            visibility: match r.visibility {
                Some(value) => {
                    let visibility = proto::CrewVisibility::try_from(value)
                        .ok()
                        .and_then(wire::crew_visibility);
                    if visibility.is_none() {
                        v.add("visibility", "must be PUBLIC, APPROVAL or PRIVATE");
                    }
                    visibility
                }
                None => None,
            },
        };
        if !v.is_empty() {
            return Err(invalid(v));
        }
        let view = self.social.update_crew(&caller, crew_id, changes).await?;
        Ok(Response::new(proto::UpdateCrewResponse {
            crew: Some(wire::crew_message(&view)),
        }))
    }

    async fn archive_crew(
        &self,
        request: Request<proto::ArchiveCrewRequest>,
    ) -> Result<Response<proto::ArchiveCrewResponse>, Status> {
        let caller = require_caller(&request)?;
        let crew_id = id("crew_id", &request.get_ref().crew_id)?;
        let view = self.social.archive_crew(&caller, crew_id).await?;
        Ok(Response::new(proto::ArchiveCrewResponse {
            crew: Some(wire::crew_message(&view)),
        }))
    }

    async fn get_crew(
        &self,
        request: Request<proto::GetCrewRequest>,
    ) -> Result<Response<proto::GetCrewResponse>, Status> {
        let caller = require_caller(&request)?;
        let crew_id = id("crew_id", &request.get_ref().crew_id)?;
        let view = self.social.get_crew(&caller, crew_id).await?;
        Ok(Response::new(proto::GetCrewResponse {
            crew: Some(wire::crew_message(&view)),
        }))
    }

    async fn list_crews(
        &self,
        request: Request<proto::ListCrewsRequest>,
    ) -> Result<Response<proto::ListCrewsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (crews, next) = self
            .social
            .list_crews(&caller, &r.region, &r.name_contains, size, after)
            .await?;
        Ok(Response::new(proto::ListCrewsResponse {
            crews: crews.iter().map(wire::crew_message).collect(),
            next_page_token: next,
        }))
    }

    async fn join_crew(
        &self,
        request: Request<proto::JoinCrewRequest>,
    ) -> Result<Response<proto::JoinCrewResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let mut v = Violations::new();
        let message = text(&mut v, "message", &r.message, 0, limits::JOIN_MESSAGE);
        let Some(message) = message else {
            return Err(invalid(v));
        };
        let (joined, view) = self
            .social
            .join_crew(&caller, crew_id, r.invite_code.trim(), message)
            .await?;
        Ok(Response::new(proto::JoinCrewResponse {
            membership: match joined {
                Joined::Member => proto::MembershipState::Member,
                Joined::Requested => proto::MembershipState::Requested,
            }
            .into(),
            crew: Some(wire::crew_message(&view)),
        }))
    }

    async fn leave_crew(
        &self,
        request: Request<proto::LeaveCrewRequest>,
    ) -> Result<Response<proto::LeaveCrewResponse>, Status> {
        let caller = require_caller(&request)?;
        let crew_id = id("crew_id", &request.get_ref().crew_id)?;
        self.social.leave_crew(&caller, crew_id).await?;
        Ok(Response::new(proto::LeaveCrewResponse {}))
    }

    async fn list_join_requests(
        &self,
        request: Request<proto::ListJoinRequestsRequest>,
    ) -> Result<Response<proto::ListJoinRequestsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (rows, next) = self
            .social
            .list_join_requests(&caller, crew_id, size, after)
            .await?;
        let names = self
            .names(rows.iter().map(|row| row.user_id.clone()))
            .await?;
        Ok(Response::new(proto::ListJoinRequestsResponse {
            requests: rows
                .iter()
                .map(|row| wire::join_request_message(row, &names))
                .collect(),
            next_page_token: next,
        }))
    }

    async fn decide_join_request(
        &self,
        request: Request<proto::DecideJoinRequestRequest>,
    ) -> Result<Response<proto::DecideJoinRequestResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let user = user_id("user_id", &r.user_id)?;
        let member = self
            .social
            .decide_join_request(&caller, crew_id, &user, r.approve)
            .await?;
        let names = self.names([user]).await?;
        Ok(Response::new(proto::DecideJoinRequestResponse {
            member: member.map(|row| wire::member_message(&row, &names)),
        }))
    }

    async fn create_invite(
        &self,
        request: Request<proto::CreateInviteRequest>,
    ) -> Result<Response<proto::CreateInviteResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let mut v = Violations::new();
        if r.valid_hours > 720 {
            v.add("valid_hours", "must be within 1..=720");
        }
        if r.max_uses > 1000 {
            v.add("max_uses", "must be within 1..=1000");
        }
        if !v.is_empty() {
            return Err(invalid(v));
        }
        let hours = if r.valid_hours == 0 {
            168
        } else {
            r.valid_hours
        };
        let uses = r.max_uses.max(1);
        let invite = self
            .social
            .create_invite(&caller, crew_id, hours, uses)
            .await?;
        Ok(Response::new(proto::CreateInviteResponse {
            invite: Some(wire::invite_message(&invite)),
        }))
    }

    async fn list_members(
        &self,
        request: Request<proto::ListMembersRequest>,
    ) -> Result<Response<proto::ListMembersResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (rows, next) = self
            .social
            .list_members(&caller, crew_id, size, after)
            .await?;
        let names = self
            .names(rows.iter().map(|row| row.user_id.clone()))
            .await?;
        Ok(Response::new(proto::ListMembersResponse {
            members: rows
                .iter()
                .map(|row| wire::member_message(row, &names))
                .collect(),
            next_page_token: next,
        }))
    }

    async fn set_member_role(
        &self,
        request: Request<proto::SetMemberRoleRequest>,
    ) -> Result<Response<proto::SetMemberRoleResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let user = user_id("user_id", &r.user_id)?;
        let role: CrewRole = proto::CrewRole::try_from(r.role)
            .ok()
            .and_then(wire::crew_role)
            .ok_or_else(|| {
                Status::from(Error::invalid("role", "must be OWNER, ADMIN or MEMBER"))
            })?;
        let member = self
            .social
            .set_member_role(&caller, crew_id, &user, role)
            .await?;
        let names = self.names([user]).await?;
        Ok(Response::new(proto::SetMemberRoleResponse {
            member: Some(wire::member_message(&member, &names)),
        }))
    }

    async fn remove_member(
        &self,
        request: Request<proto::RemoveMemberRequest>,
    ) -> Result<Response<proto::RemoveMemberResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let user = user_id("user_id", &r.user_id)?;
        self.social
            .remove_member(&caller, crew_id, &user, r.ban)
            .await?;
        Ok(Response::new(proto::RemoveMemberResponse {}))
    }

    async fn list_my_crews(
        &self,
        request: Request<proto::ListMyCrewsRequest>,
    ) -> Result<Response<proto::ListMyCrewsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (crews, next) = self.social.list_my_crews(&caller, size, after).await?;
        Ok(Response::new(proto::ListMyCrewsResponse {
            crews: crews.iter().map(wire::crew_message).collect(),
            next_page_token: next,
        }))
    }

    async fn create_post(
        &self,
        request: Request<proto::CreatePostRequest>,
    ) -> Result<Response<proto::CreatePostResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id).inspect_err(|_| metrics::post_invalid())?;
        let mut v = Violations::new();
        let category = proto::PostCategory::try_from(r.category)
            .ok()
            .and_then(wire::post_category);
        if category.is_none() {
            v.add("category", "is required");
        }
        let title = text(&mut v, "title", &r.title, 1, limits::POST_TITLE);
        let body = text(&mut v, "body", &r.body, 1, limits::POST_BODY);
        let (Some(category), Some(title), Some(body)) = (category, title, body) else {
            metrics::post_invalid();
            return Err(invalid(v));
        };
        // Answered once the post is committed.
        let post = self
            .social
            .create_post(&caller, crew_id, category, title, body)
            .await;
        metrics::posted(&post);
        let post = post?;
        let names = self.names([caller.user_id]).await?;
        Ok(Response::new(proto::CreatePostResponse {
            post: Some(wire::post_message(&post, &names)),
        }))
    }

    async fn update_post(
        &self,
        request: Request<proto::UpdatePostRequest>,
    ) -> Result<Response<proto::UpdatePostResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let post_id = id("post_id", &r.post_id)?;
        let mut v = Violations::new();
        let changes = PostChanges {
            title: r
                .title
                .as_deref()
                .and_then(|title| text(&mut v, "title", title, 1, limits::POST_TITLE)),
            body: r
                .body
                .as_deref()
                .and_then(|body| text(&mut v, "body", body, 1, limits::POST_BODY)),
            category: match r.category {
                Some(value) => {
                    let category = proto::PostCategory::try_from(value)
                        .ok()
                        .and_then(wire::post_category);
                    if category.is_none() {
                        v.add("category", "is not a category");
                    }
                    category
                }
                None => None,
            },
        };
        if !v.is_empty() {
            return Err(invalid(v));
        }
        let post = self.social.update_post(&caller, post_id, changes).await?;
        let names = self.names([post.post.author_id.clone()]).await?;
        Ok(Response::new(proto::UpdatePostResponse {
            post: Some(wire::post_message(&post, &names)),
        }))
    }

    async fn delete_post(
        &self,
        request: Request<proto::DeletePostRequest>,
    ) -> Result<Response<proto::DeletePostResponse>, Status> {
        let caller = require_caller(&request)?;
        let post_id = id("post_id", &request.get_ref().post_id)?;
        self.social.delete_post(&caller, post_id).await?;
        Ok(Response::new(proto::DeletePostResponse {}))
    }

    async fn list_posts(
        &self,
        request: Request<proto::ListPostsRequest>,
    ) -> Result<Response<proto::ListPostsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let (size, after) = page(r.page_size, &r.page_token)?;
        let category = match proto::PostCategory::try_from(r.category) {
            Ok(category) => wire::post_category(category),
            Err(_) => return Err(Error::invalid("category", "is not a category").into()),
        };
        let (posts, next) = self
            .social
            .list_posts(&caller, crew_id, category, size, after)
            .await?;
        let names = self
            .names(posts.iter().map(|post| post.post.author_id.clone()))
            .await?;
        Ok(Response::new(proto::ListPostsResponse {
            posts: posts
                .iter()
                .map(|post| wire::post_message(post, &names))
                .collect(),
            next_page_token: next,
        }))
    }

    async fn get_post(
        &self,
        request: Request<proto::GetPostRequest>,
    ) -> Result<Response<proto::GetPostResponse>, Status> {
        let caller = require_caller(&request)?;
        let post_id = id("post_id", &request.get_ref().post_id)?;
        let post = self.social.get_post(&caller, post_id).await?;
        let names = self.names([post.post.author_id.clone()]).await?;
        Ok(Response::new(proto::GetPostResponse {
            post: Some(wire::post_message(&post, &names)),
        }))
    }

    async fn pin_post(
        &self,
        request: Request<proto::PinPostRequest>,
    ) -> Result<Response<proto::PinPostResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let post_id = id("post_id", &r.post_id)?;
        let post = self.social.pin_post(&caller, post_id, r.pinned).await?;
        let names = self.names([post.post.author_id.clone()]).await?;
        Ok(Response::new(proto::PinPostResponse {
            post: Some(wire::post_message(&post, &names)),
        }))
    }

    async fn create_comment(
        &self,
        request: Request<proto::CreateCommentRequest>,
    ) -> Result<Response<proto::CreateCommentResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let reply = !r.parent_comment_id.is_empty();
        let post_id = id("post_id", &r.post_id).inspect_err(|_| metrics::comment_invalid(reply))?;
        let parent = if reply {
            Some(
                id("parent_comment_id", &r.parent_comment_id)
                    .inspect_err(|_| metrics::comment_invalid(reply))?,
            )
        } else {
            None
        };
        let mut v = Violations::new();
        let Some(body) = text(&mut v, "body", &r.body, 1, limits::COMMENT_BODY) else {
            metrics::comment_invalid(reply);
            return Err(invalid(v));
        };
        // Answered once the comment is committed.
        let comment = self
            .social
            .create_comment(&caller, post_id, parent, body)
            .await;
        metrics::commented(reply, &comment);
        let comment = comment?;
        let names = self.names([caller.user_id]).await?;
        Ok(Response::new(proto::CreateCommentResponse {
            comment: Some(wire::comment_message(&comment, &names)),
        }))
    }

    async fn list_comments(
        &self,
        request: Request<proto::ListCommentsRequest>,
    ) -> Result<Response<proto::ListCommentsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let post_id = id("post_id", &r.post_id)?;
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (comments, next) = self
            .social
            .list_comments(&caller, post_id, size, after)
            .await?;
        let names = self
            .names(comments.iter().map(|c| c.comment.author_id.clone()))
            .await?;
        Ok(Response::new(proto::ListCommentsResponse {
            comments: comments
                .iter()
                .map(|comment| wire::comment_message(comment, &names))
                .collect(),
            next_page_token: next,
        }))
    }

    async fn react(
        &self,
        request: Request<proto::ReactRequest>,
    ) -> Result<Response<proto::ReactResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let target = target("target", r.target)?;
        let kind = proto::ReactionKind::try_from(r.kind)
            .ok()
            .and_then(wire::reaction_kind)
            .ok_or_else(|| Status::from(Error::invalid("kind", "is required")))?;
        let tallies = self.social.react(&caller, target, kind, r.remove).await?;
        Ok(Response::new(proto::ReactResponse {
            reactions: wire::reactions(&tallies),
        }))
    }

    async fn report(
        &self,
        request: Request<proto::ReportRequest>,
    ) -> Result<Response<proto::ReportResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let target = target("target", r.target).inspect_err(|_| metrics::report_invalid(None))?;
        let mut v = Violations::new();
        let Some(reason) = text(&mut v, "reason", &r.reason, 0, limits::REPORT_REASON) else {
            metrics::report_invalid(Some(target));
            return Err(invalid(v));
        };
        // Answered once the report is committed.
        let reported = self.social.report(&caller, target, reason).await;
        metrics::reported(target, &reported);
        reported?;
        Ok(Response::new(proto::ReportResponse {}))
    }

    async fn list_reports(
        &self,
        request: Request<proto::ListReportsRequest>,
    ) -> Result<Response<proto::ListReportsResponse>, Status> {
        let caller = require_caller(&request)?;
        let crew_id = id("crew_id", &request.get_ref().crew_id)?;
        let items = self.social.list_reports(&caller, crew_id).await?;
        let names = self
            .names(items.iter().map(|item| item.author_id.clone()))
            .await?;
        Ok(Response::new(proto::ListReportsResponse {
            items: items
                .iter()
                .map(|item| wire::reported_message(item, &names))
                .collect(),
            next_page_token: String::new(),
        }))
    }

    async fn decide_report(
        &self,
        request: Request<proto::DecideReportRequest>,
    ) -> Result<Response<proto::DecideReportResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let target = target("target", r.target)?;
        let remove = match proto::ReportDecision::try_from(r.decision) {
            Ok(proto::ReportDecision::Restore) => false,
            Ok(proto::ReportDecision::Remove) => true,
            _ => return Err(Error::invalid("decision", "must be RESTORE or REMOVE").into()),
        };
        let moderation = self
            .social
            .decide_report(&caller, crew_id, target, remove)
            .await?;
        Ok(Response::new(proto::DecideReportResponse {
            moderation: wire::moderation_message(moderation).into(),
        }))
    }

    async fn create_meetup(
        &self,
        request: Request<proto::CreateMeetupRequest>,
    ) -> Result<Response<proto::CreateMeetupResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let spec = parse_meetup(&r.meetup.unwrap_or_default())?;
        let meetup = self.social.create_meetup(&caller, crew_id, spec).await?;
        Ok(Response::new(proto::CreateMeetupResponse {
            meetup: Some(wire::meetup_message(&meetup)),
        }))
    }

    async fn update_meetup(
        &self,
        request: Request<proto::UpdateMeetupRequest>,
    ) -> Result<Response<proto::UpdateMeetupResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let meetup_id = id("meetup_id", &r.meetup_id)?;
        let mut v = Violations::new();
        let starts_at = match &r.starts_at {
            Some(at) => {
                let at = wire::from_timestamp(at);
                if at.is_none_or(|at| at <= wire::now()) {
                    v.add("starts_at", "must be in the future");
                }
                at
            }
            None => None,
        };
        let meeting_point = match &r.meeting_point {
            Some(point) => {
                let name = text(
                    &mut v,
                    "meeting_point.name",
                    &point.name,
                    1,
                    limits::MEETING_POINT,
                );
                let (latitude, longitude) = coordinates(&mut v, point.location.as_ref());
                name.map(|name| (name, latitude, longitude))
            }
            None => None,
        };
        if r.capacity
            .is_some_and(|c| c == 0 || c > limits::MAX_CAPACITY)
        {
            v.add("capacity", "must be within 1..=10000");
        }
        if r.planned_distance_meters
            .is_some_and(|d| d > limits::MAX_DISTANCE_METERS)
        {
            v.add("planned_distance_meters", "must be at most 200000");
        }
        let changes = MeetupChanges {
            title: r
                .title
                .as_deref()
                .and_then(|t| text(&mut v, "title", t, 1, limits::MEETUP_TITLE)),
            description: r
                .description
                .as_deref()
                .and_then(|d| text(&mut v, "description", d, 0, limits::MEETUP_DESCRIPTION)),
            starts_at,
            meeting_point,
            planned_distance_meters: r.planned_distance_meters,
            pace_groups: r
                .replace_pace_groups
                .then(|| pace_groups(&mut v, &r.pace_groups)),
            capacity: r.capacity,
            rsvp_deadline: r.rsvp_deadline.as_ref().and_then(wire::from_timestamp),
            members_only: r.members_only,
        };
        if !v.is_empty() {
            return Err(invalid(v));
        }
        let meetup = self
            .social
            .update_meetup(&caller, meetup_id, changes)
            .await?;
        Ok(Response::new(proto::UpdateMeetupResponse {
            meetup: Some(wire::meetup_message(&meetup)),
        }))
    }

    async fn cancel_meetup(
        &self,
        request: Request<proto::CancelMeetupRequest>,
    ) -> Result<Response<proto::CancelMeetupResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let meetup_id = id("meetup_id", &r.meetup_id)?;
        let mut v = Violations::new();
        let Some(reason) = text(&mut v, "reason", &r.reason, 0, limits::CANCEL_REASON) else {
            return Err(invalid(v));
        };
        let meetup = self
            .social
            .cancel_meetup(&caller, meetup_id, reason)
            .await?;
        Ok(Response::new(proto::CancelMeetupResponse {
            meetup: Some(wire::meetup_message(&meetup)),
        }))
    }

    async fn list_meetups(
        &self,
        request: Request<proto::ListMeetupsRequest>,
    ) -> Result<Response<proto::ListMeetupsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (meetups, next) = self
            .social
            .list_meetups(&caller, crew_id, r.include_past, size, after)
            .await?;
        Ok(Response::new(proto::ListMeetupsResponse {
            meetups: meetups.iter().map(wire::meetup_message).collect(),
            next_page_token: next,
        }))
    }

    async fn get_meetup(
        &self,
        request: Request<proto::GetMeetupRequest>,
    ) -> Result<Response<proto::GetMeetupResponse>, Status> {
        let caller = require_caller(&request)?;
        let meetup_id = id("meetup_id", &request.get_ref().meetup_id)?;
        let (meetup, attendance) = self.social.get_meetup(&caller, meetup_id).await?;
        let names = self
            .names(
                attendance
                    .going
                    .iter()
                    .chain(&attendance.waitlist)
                    .map(|row| row.user_id.clone()),
            )
            .await?;
        let (going, waitlist) = wire::attendees(&attendance, &names);
        Ok(Response::new(proto::GetMeetupResponse {
            meetup: Some(wire::meetup_message(&meetup)),
            going,
            waitlist,
        }))
    }

    async fn rsvp_meetup(
        &self,
        request: Request<proto::RsvpMeetupRequest>,
    ) -> Result<Response<proto::RsvpMeetupResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let meetup_id = id("meetup_id", &r.meetup_id)?;
        let going = match proto::RsvpStatus::try_from(r.status) {
            Ok(proto::RsvpStatus::Going) => true,
            Ok(proto::RsvpStatus::NotGoing) => false,
            _ => {
                return Err(Error::invalid(
                    "status",
                    "must be RSVP_STATUS_GOING or RSVP_STATUS_NOT_GOING",
                )
                .into());
            }
        };
        let meetup = self.social.rsvp(&caller, meetup_id, going).await?;
        let (status, position) = meetup
            .mine
            .map_or((proto::RsvpStatus::NotGoing, 0), |(status, position)| {
                (wire::rsvp_message(status), position)
            });
        Ok(Response::new(proto::RsvpMeetupResponse {
            status: status.into(),
            waitlist_position: position,
            meetup: Some(wire::meetup_message(&meetup)),
        }))
    }

    type WatchMeetupStream = WatchMeetupStream;

    async fn watch_meetup(
        &self,
        request: Request<proto::WatchMeetupRequest>,
    ) -> Result<Response<Self::WatchMeetupStream>, Status> {
        let caller = require_caller(&request)?;
        let meetup_id = id("meetup_id", &request.get_ref().meetup_id)?;
        self.social.watchable_meetup(&caller, meetup_id).await?;
        let updates = WatchStream::new(self.watch.subscribe(meetup_id))
            .filter_map(|update| async move { update.map(|update| Ok((*update).clone())) });
        let stream: WatchMeetupStream = Box::pin(updates);
        Ok(Response::new(stream))
    }

    async fn get_crew_feed(
        &self,
        request: Request<proto::GetCrewFeedRequest>,
    ) -> Result<Response<proto::GetCrewFeedResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (items, next) = self.social.crew_feed(&caller, crew_id, size, after).await?;
        let names = self
            .names(items.iter().map(|item| item.run.owner_id.clone()))
            .await?;
        Ok(Response::new(proto::GetCrewFeedResponse {
            runs: items
                .iter()
                .map(|item| wire::feed_run_message(item, &names))
                .collect(),
            next_page_token: next,
        }))
    }

    async fn give_kudos(
        &self,
        request: Request<proto::GiveKudosRequest>,
    ) -> Result<Response<proto::GiveKudosResponse>, Status> {
        let caller = require_caller(&request)?;
        let run_id = user_id("run_id", &request.get_ref().run_id)?;
        let kudos_count = self.social.give_kudos(&caller, &run_id).await?;
        Ok(Response::new(proto::GiveKudosResponse { kudos_count }))
    }

    async fn comment_on_run(
        &self,
        request: Request<proto::CommentOnRunRequest>,
    ) -> Result<Response<proto::CommentOnRunResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let run_id = user_id("run_id", &r.run_id)?;
        let mut v = Violations::new();
        let Some(body) = text(&mut v, "body", &r.body, 1, limits::RUN_COMMENT) else {
            return Err(invalid(v));
        };
        let comment = self.social.comment_on_run(&caller, &run_id, body).await?;
        let names = self.names([caller.user_id]).await?;
        Ok(Response::new(proto::CommentOnRunResponse {
            comment: Some(wire::run_comment_message(&comment, &names)),
        }))
    }

    async fn list_run_comments(
        &self,
        request: Request<proto::ListRunCommentsRequest>,
    ) -> Result<Response<proto::ListRunCommentsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let run_id = user_id("run_id", &r.run_id)?;
        let (size, after) = page(r.page_size, &r.page_token)?;
        let (comments, next) = self
            .social
            .list_run_comments(&caller, &run_id, size, after)
            .await?;
        let names = self
            .names(comments.iter().map(|c| c.author_id.clone()))
            .await?;
        Ok(Response::new(proto::ListRunCommentsResponse {
            comments: comments
                .iter()
                .map(|comment| wire::run_comment_message(comment, &names))
                .collect(),
            next_page_token: next,
        }))
    }

    async fn get_crew_totals(
        &self,
        request: Request<proto::GetCrewTotalsRequest>,
    ) -> Result<Response<proto::GetCrewTotalsResponse>, Status> {
        let caller = require_caller(&request)?;
        let r = request.into_inner();
        let crew_id = id("crew_id", &r.crew_id)?;
        let month = match proto::TotalsPeriod::try_from(r.period) {
            Ok(proto::TotalsPeriod::Month) => true,
            Ok(_) => false,
            Err(_) => return Err(Error::invalid("period", "is not a period").into()),
        };
        let totals = self.social.crew_totals(&caller, crew_id, month).await?;
        let names = self
            .names(totals.members.iter().take(50).map(|m| m.user_id.clone()))
            .await?;
        Ok(Response::new(wire::totals_message(&totals, &names)))
    }
}
