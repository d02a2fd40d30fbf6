//! The gRPC surface: decode the request into domain values, call [`Accounts`], encode the
//! answer. No rules live here.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use autometrics::autometrics;
use autometrics::objectives::{Objective, ObjectiveLatency, ObjectivePercentile};
use chrono::{DateTime, Utc};
use runmesh_platform::auth::{Caller, Role, optional_caller};
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_proto::runmesh::user::v1::user_internal_service_server::UserInternalService;
use runmesh_proto::runmesh::user::v1::user_service_server::UserService;
use tonic::{Request, Response, Status};

use crate::accounts::{Accounts, IssuedTokens, current_year, roles};
use crate::domain::{
    BirthYear, DisplayName, DistanceUnit, Email, Gender, NewPassword, NotificationPreferences,
    PasswordAttempt, PrivacyZone, ProfileChanges, RunPrivacy, SlackMemberId, TimeZone, Violations,
};
use crate::error::Error;
use crate::keys::KeyRing;
use crate::store::user;

/// Sign-in and password changes are argon2-bound (tens of milliseconds), so the latency goal
/// leaves room for that.
const API_OBJECTIVE: Objective = Objective::new("user_api")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms500, ObjectivePercentile::P99);

const INTERNAL_OBJECTIVE: Objective = Objective::new("user_internal")
    .success_rate(ObjectivePercentile::P99_9)
    .latency(ObjectiveLatency::Ms100, ObjectivePercentile::P99);

/// `runmesh.user.v1.UserService`.
pub struct UserApi {
    accounts: Arc<Accounts>,
}

impl UserApi {
    pub fn new(accounts: Arc<Accounts>) -> Self {
        Self { accounts }
    }
}

#[autometrics(objective = API_OBJECTIVE)]
#[tonic::async_trait]
impl UserService for UserApi {
    async fn sign_up(
        &self,
        request: Request<proto::SignUpRequest>,
    ) -> Result<Response<proto::SignUpResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let email = violations.check("email", Email::parse(&request.email));
        let password = violations.check("password", NewPassword::parse(&request.password));
        let display_name =
            violations.check("display_name", DisplayName::parse(&request.display_name));
        let (Some(email), Some(password), Some(display_name)) = (email, password, display_name)
        else {
            return Err(invalid(violations));
        };
        let (user, tokens) = self.accounts.sign_up(email, password, display_name).await?;
        Ok(Response::new(proto::SignUpResponse {
            user: Some(user_message(&user)),
            tokens: Some(tokens_message(tokens)),
        }))
    }

    async fn sign_in(
        &self,
        request: Request<proto::SignInRequest>,
    ) -> Result<Response<proto::SignInResponse>, Status> {
        let client = client_address(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let email = violations.check("email", Email::parse(&request.email));
        let password = violations.check("password", PasswordAttempt::parse(&request.password));
        let (Some(email), Some(password)) = (email, password) else {
            return Err(invalid(violations));
        };
        let (user, tokens) = self.accounts.sign_in(email, password, &client).await?;
        Ok(Response::new(proto::SignInResponse {
            tokens: Some(tokens_message(tokens)),
            user: Some(user_message(&user)),
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<proto::RefreshTokenRequest>,
    ) -> Result<Response<proto::RefreshTokenResponse>, Status> {
        let request = request.into_inner();
        if request.refresh_token.is_empty() {
            return Err(Error::invalid("refresh_token", "is required").into());
        }
        let tokens = self.accounts.refresh(&request.refresh_token).await?;
        Ok(Response::new(proto::RefreshTokenResponse {
            tokens: Some(tokens_message(tokens)),
        }))
    }

    async fn sign_out(
        &self,
        request: Request<proto::SignOutRequest>,
    ) -> Result<Response<proto::SignOutResponse>, Status> {
        let caller = optional_caller(&request);
        let request = request.into_inner();
        let refresh_token = Some(request.refresh_token.as_str()).filter(|token| !token.is_empty());
        let revoked = self
            .accounts
            .sign_out(refresh_token, caller.as_ref(), request.all_sessions)
            .await?;
        Ok(Response::new(proto::SignOutResponse {
            revoked_sessions: saturating_u32(revoked),
        }))
    }

    async fn get_me(
        &self,
        request: Request<proto::GetMeRequest>,
    ) -> Result<Response<proto::GetMeResponse>, Status> {
        let caller = signed_in_caller(&request)?;
        let user = self.accounts.me(&caller).await?;
        Ok(Response::new(proto::GetMeResponse {
            user: Some(user_message(&user)),
        }))
    }

    async fn update_profile(
        &self,
        request: Request<proto::UpdateProfileRequest>,
    ) -> Result<Response<proto::UpdateProfileResponse>, Status> {
        let caller = signed_in_caller(&request)?;
        let changes = profile_changes(request.into_inner())?;
        let user = self.accounts.update_profile(&caller, changes).await?;
        Ok(Response::new(proto::UpdateProfileResponse {
            user: Some(user_message(&user)),
        }))
    }

    async fn change_password(
        &self,
        request: Request<proto::ChangePasswordRequest>,
    ) -> Result<Response<proto::ChangePasswordResponse>, Status> {
        let caller = signed_in_caller(&request)?;
        let client = client_address(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let current = violations.check(
            "current_password",
            PasswordAttempt::parse(&request.current_password),
        );
        let new = violations.check("new_password", NewPassword::parse(&request.new_password));
        if request.new_password == request.current_password && !request.new_password.is_empty() {
            violations.add("new_password", "must differ from the current password");
        }
        let (Some(current), Some(new)) = (current, new) else {
            return Err(invalid(violations));
        };
        if !violations.is_empty() {
            return Err(invalid(violations));
        }
        let revoked = self
            .accounts
            .change_password(&caller, current, new, &client)
            .await?;
        Ok(Response::new(proto::ChangePasswordResponse {
            revoked_sessions: saturating_u32(revoked),
        }))
    }

    async fn delete_account(
        &self,
        request: Request<proto::DeleteAccountRequest>,
    ) -> Result<Response<proto::DeleteAccountResponse>, Status> {
        let caller = signed_in_caller(&request)?;
        let client = client_address(&request);
        let password = PasswordAttempt::parse(&request.get_ref().password)
            .map_err(|rejected| Error::invalid("password", rejected.0))?;
        self.accounts
            .delete_account(&caller, password, &client)
            .await?;
        Ok(Response::new(proto::DeleteAccountResponse {}))
    }

    async fn grant_role(
        &self,
        request: Request<proto::GrantRoleRequest>,
    ) -> Result<Response<proto::GrantRoleResponse>, Status> {
        let caller = signed_in_caller(&request)?;
        let request = request.into_inner();
        let (user_id, role) = role_target(&request.user_id, request.role)?;
        let user = self.accounts.set_role(&caller, user_id, role, true).await?;
        Ok(Response::new(proto::GrantRoleResponse {
            user: Some(user_message(&user)),
        }))
    }

    async fn revoke_role(
        &self,
        request: Request<proto::RevokeRoleRequest>,
    ) -> Result<Response<proto::RevokeRoleResponse>, Status> {
        let caller = signed_in_caller(&request)?;
        let request = request.into_inner();
        let (user_id, role) = role_target(&request.user_id, request.role)?;
        let user = self
            .accounts
            .set_role(&caller, user_id, role, false)
            .await?;
        Ok(Response::new(proto::RevokeRoleResponse {
            user: Some(user_message(&user)),
        }))
    }
}

/// `runmesh.user.v1.UserInternalService`: for other services, never exposed by the edge.
pub struct UserInternalApi {
    accounts: Arc<Accounts>,
    keys: Arc<KeyRing>,
}

impl UserInternalApi {
    pub fn new(accounts: Arc<Accounts>, keys: Arc<KeyRing>) -> Self {
        Self { accounts, keys }
    }
}

#[autometrics(objective = INTERNAL_OBJECTIVE)]
#[tonic::async_trait]
impl UserInternalService for UserInternalApi {
    async fn get_users(
        &self,
        request: Request<proto::GetUsersRequest>,
    ) -> Result<Response<proto::GetUsersResponse>, Status> {
        let users = self.accounts.users(&request.get_ref().user_ids).await?;
        Ok(Response::new(proto::GetUsersResponse {
            users: users.iter().map(user_message).collect(),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<proto::GetJwksRequest>,
    ) -> Result<Response<proto::GetJwksResponse>, Status> {
        Ok(Response::new(jwks_message(&self.keys.jwks())))
    }
}

fn invalid(violations: Violations) -> Status {
    Error::InvalidInput(violations.into_vec()).into()
}

fn signed_in_caller<T>(request: &Request<T>) -> Result<Caller, Status> {
    optional_caller(request).ok_or_else(|| Error::TokenRequired.into())
}

fn role_target(user_id: &str, role: i32) -> Result<(&str, Role), Status> {
    let mut violations = Violations::new();
    if user_id.trim().is_empty() {
        violations.add("user_id", "is required");
    }
    let role = match proto::Role::try_from(role) {
        Ok(proto::Role::Organizer) => Some(Role::Organizer),
        Ok(proto::Role::Admin) => Some(Role::Admin),
        _ => {
            violations.add("role", "must be ROLE_ORGANIZER or ROLE_ADMIN");
            None
        }
    };
    match role {
        Some(role) if violations.is_empty() => Ok((user_id.trim(), role)),
        _ => Err(invalid(violations)),
    }
}

fn profile_changes(request: proto::UpdateProfileRequest) -> Result<ProfileChanges, Status> {
    let mut violations = Violations::new();
    let mut changes = ProfileChanges::default();
    if let Some(name) = request.display_name {
        changes.display_name = violations.check("display_name", DisplayName::parse(&name));
    }
    if let Some(slack) = request.slack_member_id {
        changes.slack_member_id = if slack.trim().is_empty() {
            Some(None)
        } else {
            violations
                .check("slack_member_id", SlackMemberId::parse(&slack))
                .map(Some)
        };
    }
    if let Some(preferences) = request.notification_preferences {
        changes.notification_preferences = Some(NotificationPreferences {
            race_opening: preferences.race_opening,
            registration_result: preferences.registration_result,
            achievement: preferences.achievement,
            crew_activity: preferences.crew_activity,
        });
    }
    if let Some(unit) = request.distance_unit {
        changes.distance_unit = match proto::DistanceUnit::try_from(unit) {
            Ok(proto::DistanceUnit::Kilometers) => Some(DistanceUnit::Kilometers),
            Ok(proto::DistanceUnit::Miles) => Some(DistanceUnit::Miles),
            _ => {
                violations.add("distance_unit", "must be KILOMETERS or MILES");
                None
            }
        };
    }
    if let Some(zone) = request.time_zone {
        changes.time_zone = violations.check("time_zone", TimeZone::parse(&zone));
    }
    if let Some(year) = request.birth_year {
        changes.birth_year = if year == 0 {
            Some(None)
        } else {
            violations
                .check(
                    "birth_year",
                    BirthYear::parse(i64::from(year), current_year()),
                )
                .map(Some)
        };
    }
    if let Some(gender) = request.gender {
        changes.gender = match proto::Gender::try_from(gender) {
            Ok(proto::Gender::Unspecified) => Some(None),
            Ok(proto::Gender::Female) => Some(Some(Gender::Female)),
            Ok(proto::Gender::Male) => Some(Some(Gender::Male)),
            Ok(proto::Gender::NonBinary) => Some(Some(Gender::NonBinary)),
            Err(_) => {
                violations.add("gender", "is not a known gender value");
                None
            }
        };
    }
    if let Some(privacy) = request.default_run_privacy {
        changes.default_run_privacy = match proto::RunPrivacy::try_from(privacy) {
            Ok(proto::RunPrivacy::Public) => Some(RunPrivacy::Public),
            Ok(proto::RunPrivacy::Crews) => Some(RunPrivacy::Crews),
            Ok(proto::RunPrivacy::Private) => Some(RunPrivacy::Private),
            _ => {
                violations.add("default_run_privacy", "must be PUBLIC, CREWS or PRIVATE");
                None
            }
        };
    }
    if let Some(meters) = request.privacy_zone_meters {
        changes.privacy_zone = violations.check("privacy_zone_meters", PrivacyZone::parse(meters));
    }
    if violations.is_empty() {
        Ok(changes)
    } else {
        Err(invalid(violations))
    }
}

/// The client's address for rate limiting: the peer, or, when the peer is a proxy on a private
/// network (the edge, an ingress), the address that proxy appended to `x-forwarded-for`.
/// Entries further left were written by the client and could be forged.
fn client_address<T>(request: &Request<T>) -> String {
    let peer = request.remote_addr().map(|addr| addr.ip());
    let forwarded = request
        .metadata()
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok());
    match (peer, forwarded) {
        (Some(peer), Some(forwarded)) if is_internal(peer) => forwarded.to_string(),
        (Some(peer), _) => peer.to_string(),
        // No socket: an in-process caller such as the embedded edge.
        (None, Some(forwarded)) => forwarded.to_string(),
        (None, None) => "unknown".to_owned(),
    }
}

fn is_internal(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unique_local()
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private())
        }
    }
}

fn saturating_u32(count: u64) -> u32 {
    u32::try_from(count).unwrap_or(u32::MAX)
}

pub(crate) fn timestamp(time: DateTime<Utc>) -> prost_types::Timestamp {
    SystemTime::from(time).into()
}

fn tokens_message(tokens: IssuedTokens) -> proto::Tokens {
    proto::Tokens {
        access_token: tokens.access.token,
        access_token_expires_at: Some(timestamp(tokens.access.expires_at)),
        refresh_token: tokens.refresh_token,
        refresh_token_expires_at: Some(timestamp(tokens.refresh_expires_at)),
        token_type: "Bearer".to_owned(),
    }
}

/// The `User` message of a stored user.
pub(crate) fn user_message(user: &user::Model) -> proto::User {
    let distance_unit = match DistanceUnit::from_code(&user.distance_unit) {
        Some(DistanceUnit::Kilometers) => proto::DistanceUnit::Kilometers,
        Some(DistanceUnit::Miles) => proto::DistanceUnit::Miles,
        None => proto::DistanceUnit::Unspecified,
    };
    let gender = match user.gender.as_deref().and_then(Gender::from_code) {
        Some(Gender::Female) => proto::Gender::Female,
        Some(Gender::Male) => proto::Gender::Male,
        Some(Gender::NonBinary) => proto::Gender::NonBinary,
        None => proto::Gender::Unspecified,
    };
    let privacy = match RunPrivacy::from_code(&user.default_run_privacy) {
        Some(RunPrivacy::Public) => proto::RunPrivacy::Public,
        Some(RunPrivacy::Crews) => proto::RunPrivacy::Crews,
        Some(RunPrivacy::Private) => proto::RunPrivacy::Private,
        None => proto::RunPrivacy::Unspecified,
    };
    proto::User {
        id: user.id.clone(),
        email: user.email.clone(),
        display_name: user.display_name.clone(),
        roles: roles(user)
            .into_iter()
            .map(|role| role_message(role) as i32)
            .collect(),
        slack_member_id: user.slack_member_id.clone().unwrap_or_default(),
        notification_preferences: Some(proto::NotificationPreferences {
            race_opening: user.notify_race_opening,
            registration_result: user.notify_registration_result,
            achievement: user.notify_achievement,
            crew_activity: user.notify_crew_activity,
        }),
        distance_unit: distance_unit as i32,
        time_zone: user.time_zone.clone(),
        birth_year: user.birth_year.and_then(|year| u32::try_from(year).ok()),
        gender: gender as i32,
        default_run_privacy: privacy as i32,
        privacy_zone_meters: user
            .privacy_zone_meters
            .and_then(|meters| u32::try_from(meters).ok()),
        created_at: Some(timestamp(user.created_at)),
        updated_at: Some(timestamp(user.updated_at)),
    }
}

fn role_message(role: Role) -> proto::Role {
    match role {
        Role::Runner => proto::Role::Runner,
        Role::Organizer => proto::Role::Organizer,
        Role::Admin => proto::Role::Admin,
    }
}

/// The JWKS as its proto message; field names match RFC 7517, so its JSON form is a JWKS.
pub(crate) fn jwks_message(jwks: &jsonwebtoken::jwk::JwkSet) -> proto::GetJwksResponse {
    let text = |value: &serde_json::Value, name: &str| {
        value
            .get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let keys = jwks
        .keys
        .iter()
        .filter_map(|jwk| serde_json::to_value(jwk).ok())
        .map(|value| proto::Jwk {
            kid: text(&value, "kid"),
            kty: text(&value, "kty"),
            crv: text(&value, "crv"),
            x: text(&value, "x"),
            alg: text(&value, "alg"),
            r#use: text(&value, "use"),
        })
        .collect();
    proto::GetJwksResponse { keys }
}
