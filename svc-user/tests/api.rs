//! Every RPC of `UserService` and `UserInternalService`, and each way it can refuse, against a
//! spawned service on PostgreSQL + Redis and in embedded mode (SQLite + in-memory cache).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use prost::Message as _;
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_proto::runmesh::user::v1::{UserDeleted, UserProfileUpdated, UserRegistered};
use sea_orm::{EntityTrait, PaginatorTrait};
use support::{
    Backend, Harness, PASSWORD, assert_status, authorized, email, from_client, violated_fields,
};
use tonic::Code;
use tonic_types::StatusExt;

on_both_backends!(
    sign_up_creates_the_account_signs_it_in_and_announces_it,
    sign_up_reports_every_bad_field_and_stores_nothing,
    emails_are_unique_whatever_their_case,
    sign_in_answers_the_same_for_unknown_emails_and_wrong_passwords,
    failed_sign_ins_are_limited_per_account,
    failed_sign_ins_are_limited_per_client_address,
    refresh_rotates_and_a_replayed_token_revokes_the_family,
    sign_out_ends_one_session_or_all,
    change_password_revokes_every_other_session,
    profile_updates_change_only_what_is_set,
    profile_updates_refuse_bad_values,
    delete_account_confirms_the_password_and_removes_everything,
    admins_grant_and_revoke_roles,
    calls_about_me_need_a_valid_token_and_session,
    internal_lookups_and_keys,
    internal_rpcs_need_a_service_identity,
    create_admin_bootstraps_and_is_repeatable,
);

fn registered(envelope: &runmesh_proto::runmesh::events::v1::Envelope) -> UserRegistered {
    UserRegistered::decode(envelope.payload.as_ref().unwrap().value.as_slice()).unwrap()
}

async fn sign_up_creates_the_account_signs_it_in_and_announces_it(backend: Backend) {
    let harness = Harness::start(backend).await;
    let response = harness
        .client()
        .sign_up(proto::SignUpRequest {
            email: "  Ada.Lovelace@Example.ORG ".to_owned(),
            password: PASSWORD.to_owned(),
            display_name: " Ada ".to_owned(),
        })
        .await
        .unwrap()
        .into_inner();

    let user = response.user.unwrap();
    assert_eq!(user.email, "ada.lovelace@example.org");
    assert_eq!(user.display_name, "Ada");
    assert_eq!(user.roles, [proto::Role::Runner as i32]);
    assert_eq!(user.distance_unit, proto::DistanceUnit::Kilometers as i32);
    assert_eq!(user.time_zone, "UTC");
    assert_eq!(user.default_run_privacy, proto::RunPrivacy::Crews as i32);
    assert_eq!(user.birth_year, None);
    let tokens = response.tokens.unwrap();
    assert_eq!(tokens.token_type, "Bearer");
    assert!(tokens.refresh_token.starts_with("rmr_"));
    assert!(
        tokens.access_token_expires_at.unwrap().seconds
            < tokens.refresh_token_expires_at.unwrap().seconds
    );

    let me = harness.get_me(&tokens.access_token).await.unwrap();
    assert_eq!(me, user);

    let outbox = harness.outbox().await;
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].r#type, "runmesh.user.v1.UserRegistered");
    assert_eq!(outbox[0].aggregate_id, user.id);
    assert_eq!(outbox[0].source, "svc-user");
    assert!(
        outbox[0]
            .payload
            .as_ref()
            .unwrap()
            .type_url
            .ends_with("/runmesh.user.v1.UserRegistered")
    );
    assert_eq!(registered(&outbox[0]).user.unwrap(), user);

    let stored = runmesh_svc_user::store::user::Entity::find()
        .one(&harness.db)
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
    );
    assert!(!stored.password_hash.contains(PASSWORD));
}

async fn sign_up_reports_every_bad_field_and_stores_nothing(backend: Backend) {
    let harness = Harness::start(backend).await;
    let cases = [
        ("not-an-email", PASSWORD, "Ada", vec!["email"]),
        ("ada@example.org", "short", "Ada", vec!["password"]),
        ("ada@example.org", "password123", "Ada", vec!["password"]),
        ("ada@example.org", &"x".repeat(129), "Ada", vec!["password"]),
        ("ada@example.org", PASSWORD, "   ", vec!["display_name"]),
        ("", "", "", vec!["email", "password", "display_name"]),
    ];
    for (email, password, display_name, fields) in cases {
        let status = harness
            .client()
            .sign_up(proto::SignUpRequest {
                email: email.to_owned(),
                password: password.to_owned(),
                display_name: display_name.to_owned(),
            })
            .await
            .unwrap_err();
        assert_status(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
        assert_eq!(violated_fields(&status), fields, "{email:?} {password:?}");
    }
    let common = harness
        .client()
        .sign_up(proto::SignUpRequest {
            email: "ada@example.org".to_owned(),
            password: "iloveyou".to_owned(),
            display_name: "Ada".to_owned(),
        })
        .await
        .unwrap_err();
    let violation = &common.get_details_bad_request().unwrap().field_violations[0];
    assert!(violation.description.contains("common"), "{violation:?}");

    let users = runmesh_svc_user::store::user::Entity::find()
        .count(&harness.db)
        .await
        .unwrap();
    assert_eq!(users, 0);
    assert!(harness.outbox().await.is_empty());
}

async fn emails_are_unique_whatever_their_case(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    harness.sign_up(&address).await;
    let status = harness
        .client()
        .sign_up(proto::SignUpRequest {
            email: address.to_uppercase(),
            password: PASSWORD.to_owned(),
            display_name: "Impostor".to_owned(),
        })
        .await
        .unwrap_err();
    assert_status(&status, Code::AlreadyExists, "EMAIL_TAKEN");
    assert_eq!(violated_fields(&status), ["email"]);

    let signed_in = harness
        .sign_in(&address.to_uppercase(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(signed_in.user.unwrap().email, address);
}

async fn sign_in_answers_the_same_for_unknown_emails_and_wrong_passwords(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    let account = harness.sign_up(&address).await;

    let signed_in = harness.sign_in(&address, PASSWORD).await.unwrap();
    assert_eq!(signed_in.user.unwrap().id, account.user.unwrap().id);
    let tokens = signed_in.tokens.unwrap();
    assert_ne!(tokens.refresh_token, account.tokens.unwrap().refresh_token);

    let wrong_password = harness
        .sign_in(&address, "Tempo run at dusk, 42!")
        .await
        .unwrap_err();
    let unknown_email = harness.sign_in(&email(), PASSWORD).await.unwrap_err();
    for status in [&wrong_password, &unknown_email] {
        assert_status(status, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    assert_eq!(wrong_password.message(), unknown_email.message());

    let empty = harness.sign_in("", "").await.unwrap_err();
    assert_status(&empty, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&empty), ["email", "password"]);
}

async fn failed_sign_ins_are_limited_per_account(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    harness.sign_up(&address).await;
    let limit = harness.config.sign_in_failures_per_account;

    for attempt in 1..=limit {
        let status = harness
            .sign_in(&address, "wrong guess number one")
            .await
            .unwrap_err();
        assert_status(&status, Code::Unauthenticated, "INVALID_CREDENTIALS");
        assert!(attempt <= limit);
    }
    // Blocked now, even with the right password and from another address.
    let request = from_client(
        proto::SignInRequest {
            email: address.clone(),
            password: PASSWORD.to_owned(),
        },
        "198.51.100.7",
    );
    let blocked = harness.client().sign_in(request).await.unwrap_err();
    assert_status(
        &blocked,
        Code::ResourceExhausted,
        "TOO_MANY_SIGN_IN_ATTEMPTS",
    );
    let retry = blocked
        .get_details_retry_info()
        .unwrap()
        .retry_delay
        .unwrap();
    assert!(retry > std::time::Duration::ZERO);
    assert!(retry <= harness.config.sign_in_failure_window);

    // Other accounts are not affected.
    let other = email();
    harness.sign_up(&other).await;
    harness.sign_in(&other, PASSWORD).await.unwrap();
}

async fn failed_sign_ins_are_limited_per_client_address(backend: Backend) {
    let harness = Harness::start(backend).await;
    let limit = harness.config.sign_in_failures_per_client;
    let attacker = "203.0.113.9";
    for _ in 0..limit {
        let request = from_client(
            proto::SignInRequest {
                email: email(),
                password: "a guess that fails".to_owned(),
            },
            attacker,
        );
        let status = harness.client().sign_in(request).await.unwrap_err();
        assert_status(&status, Code::Unauthenticated, "INVALID_CREDENTIALS");
    }
    let victim = email();
    harness.sign_up(&victim).await;
    let request = from_client(
        proto::SignInRequest {
            email: victim.clone(),
            password: PASSWORD.to_owned(),
        },
        attacker,
    );
    let blocked = harness.client().sign_in(request).await.unwrap_err();
    assert_status(
        &blocked,
        Code::ResourceExhausted,
        "TOO_MANY_SIGN_IN_ATTEMPTS",
    );
    assert!(blocked.get_details_retry_info().is_some());

    let request = from_client(
        proto::SignInRequest {
            email: victim,
            password: PASSWORD.to_owned(),
        },
        "203.0.113.10",
    );
    harness.client().sign_in(request).await.unwrap();
}

async fn refresh_rotates_and_a_replayed_token_revokes_the_family(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    let first = harness.sign_up(&address).await.tokens.unwrap();
    let other_device = harness
        .sign_in(&address, PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();

    let second = harness.refresh(&first.refresh_token).await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(
        second.refresh_token_expires_at, first.refresh_token_expires_at,
        "rotation never extends the session"
    );
    harness.get_me(&second.access_token).await.unwrap();
    let third = harness.refresh(&second.refresh_token).await.unwrap();

    // The first token was spent: presenting it again is theft; the whole family dies.
    let replay = harness.refresh(&first.refresh_token).await.unwrap_err();
    assert_status(&replay, Code::Unauthenticated, "REFRESH_TOKEN_REUSED");
    let after = harness.refresh(&third.refresh_token).await.unwrap_err();
    assert_status(&after, Code::Unauthenticated, "SESSION_ENDED");
    let me = harness.get_me(&third.access_token).await.unwrap_err();
    assert_status(&me, Code::Unauthenticated, "SESSION_ENDED");

    // The other device's session is a different family.
    harness.refresh(&other_device.refresh_token).await.unwrap();

    let unknown = harness.refresh("rmr_made-up").await.unwrap_err();
    assert_status(&unknown, Code::Unauthenticated, "REFRESH_TOKEN_INVALID");
    let empty = harness.refresh("").await.unwrap_err();
    assert_status(&empty, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&empty), ["refresh_token"]);
}

async fn sign_out_ends_one_session_or_all(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    let phone = harness.sign_up(&address).await.tokens.unwrap();
    let laptop = harness
        .sign_in(&address, PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let tablet = harness
        .sign_in(&address, PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let watch = harness
        .sign_in(&address, PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();

    let signed_out = harness
        .client()
        .sign_out(proto::SignOutRequest {
            refresh_token: phone.refresh_token.clone(),
            all_sessions: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(signed_out.revoked_sessions, 1);
    assert_status(
        &harness.refresh(&phone.refresh_token).await.unwrap_err(),
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    harness.get_me(&laptop.access_token).await.unwrap();

    // With only an access token: that token's session ends.
    let by_token = harness
        .client()
        .sign_out(authorized(
            proto::SignOutRequest {
                refresh_token: String::new(),
                all_sessions: false,
            },
            &watch.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_token.revoked_sessions, 1);
    assert!(harness.refresh(&watch.refresh_token).await.is_err());

    let everywhere = harness
        .client()
        .sign_out(proto::SignOutRequest {
            refresh_token: laptop.refresh_token.clone(),
            all_sessions: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        everywhere.revoked_sessions, 2,
        "laptop and tablet were open"
    );
    for tokens in [&laptop, &tablet] {
        assert!(harness.refresh(&tokens.refresh_token).await.is_err());
        assert_status(
            &harness.get_me(&tokens.access_token).await.unwrap_err(),
            Code::Unauthenticated,
            "SESSION_ENDED",
        );
    }

    let anonymous = harness
        .client()
        .sign_out(proto::SignOutRequest::default())
        .await
        .unwrap_err();
    assert_status(&anonymous, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&anonymous), ["refresh_token"]);
}

async fn change_password_revokes_every_other_session(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    let current = harness.sign_up(&address).await.tokens.unwrap();
    let other = harness
        .sign_in(&address, PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    let new_password = "Intervals on the track, 7x800";

    let change = |current_password: &str, new: &str| {
        authorized(
            proto::ChangePasswordRequest {
                current_password: current_password.to_owned(),
                new_password: new.to_owned(),
            },
            &current.access_token,
        )
    };

    let wrong = harness
        .client()
        .change_password(change("not my password", new_password))
        .await
        .unwrap_err();
    assert_status(&wrong, Code::InvalidArgument, "WRONG_PASSWORD");
    assert_eq!(violated_fields(&wrong), ["current_password"]);

    let weak = harness
        .client()
        .change_password(change(PASSWORD, "qwertyuiop"))
        .await
        .unwrap_err();
    assert_status(&weak, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(violated_fields(&weak), ["new_password"]);

    let same = harness
        .client()
        .change_password(change(PASSWORD, PASSWORD))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&same), ["new_password"]);

    let changed = harness
        .client()
        .change_password(change(PASSWORD, new_password))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.revoked_sessions, 1);

    assert_status(
        &harness.refresh(&other.refresh_token).await.unwrap_err(),
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    assert!(harness.get_me(&other.access_token).await.is_err());
    harness.get_me(&current.access_token).await.unwrap();
    harness.refresh(&current.refresh_token).await.unwrap();

    assert_status(
        &harness.sign_in(&address, PASSWORD).await.unwrap_err(),
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    harness.sign_in(&address, new_password).await.unwrap();
}

async fn profile_updates_change_only_what_is_set(backend: Backend) {
    let harness = Harness::start(backend).await;
    let tokens = harness.sign_up(&email()).await.tokens.unwrap();
    let update = |request: proto::UpdateProfileRequest| {
        let client = harness.client();
        let request = authorized(request, &tokens.access_token);
        async move {
            let mut client = client;
            client.update_profile(request).await
        }
    };

    let user = update(proto::UpdateProfileRequest {
        display_name: Some("Ada L.".to_owned()),
        slack_member_id: Some("U012AB3CD".to_owned()),
        notification_preferences: Some(proto::NotificationPreferences {
            race_opening: true,
            registration_result: true,
            achievement: false,
            crew_activity: false,
        }),
        distance_unit: Some(proto::DistanceUnit::Miles as i32),
        time_zone: Some("Europe/Berlin".to_owned()),
        birth_year: Some(1990),
        gender: Some(proto::Gender::Female as i32),
        default_run_privacy: Some(proto::RunPrivacy::Private as i32),
        privacy_zone_meters: Some(1000),
    })
    .await
    .unwrap()
    .into_inner()
    .user
    .unwrap();
    assert_eq!(user.display_name, "Ada L.");
    assert_eq!(user.slack_member_id, "U012AB3CD");
    assert!(!user.notification_preferences.unwrap().achievement);
    assert_eq!(user.distance_unit, proto::DistanceUnit::Miles as i32);
    assert_eq!(user.time_zone, "Europe/Berlin");
    assert_eq!(user.birth_year, Some(1990));
    assert_eq!(user.gender, proto::Gender::Female as i32);
    assert_eq!(user.default_run_privacy, proto::RunPrivacy::Private as i32);
    assert_eq!(user.privacy_zone_meters, Some(1000));
    let me = harness.get_me(&tokens.access_token).await.unwrap();
    assert_eq!(me.privacy_zone_meters, Some(1000));

    // Only the time zone changes; clearing Slack and the birth year.
    let later = update(proto::UpdateProfileRequest {
        time_zone: Some("America/New_York".to_owned()),
        slack_member_id: Some(String::new()),
        birth_year: Some(0),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .user
    .unwrap();
    assert_eq!(later.time_zone, "America/New_York");
    assert_eq!(later.slack_member_id, "");
    assert_eq!(later.birth_year, None);
    assert_eq!(later.display_name, "Ada L.");
    assert_eq!(later.distance_unit, proto::DistanceUnit::Miles as i32);
    assert_eq!(later.privacy_zone_meters, Some(1000), "kept");
    assert_eq!(harness.get_me(&tokens.access_token).await.unwrap(), later);

    // Nothing changes: no event.
    update(proto::UpdateProfileRequest {
        time_zone: Some("America/New_York".to_owned()),
        ..Default::default()
    })
    .await
    .unwrap();

    let outbox = harness.outbox().await;
    let types: Vec<_> = outbox
        .iter()
        .map(|envelope| envelope.r#type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "runmesh.user.v1.UserRegistered",
            "runmesh.user.v1.UserProfileUpdated",
            "runmesh.user.v1.UserProfileUpdated",
        ]
    );
    let first =
        UserProfileUpdated::decode(outbox[1].payload.as_ref().unwrap().value.as_slice()).unwrap();
    assert!(
        first
            .changed_fields
            .contains(&"privacy_zone_meters".to_owned()),
        "{:?}",
        first.changed_fields
    );
    assert_eq!(first.user.unwrap().privacy_zone_meters, Some(1000));
    let last =
        UserProfileUpdated::decode(outbox[2].payload.as_ref().unwrap().value.as_slice()).unwrap();
    assert_eq!(
        last.changed_fields,
        ["slack_member_id", "time_zone", "birth_year"]
    );
    assert_eq!(last.user.unwrap(), later);
}

async fn profile_updates_refuse_bad_values(backend: Backend) {
    let harness = Harness::start(backend).await;
    let tokens = harness.sign_up(&email()).await.tokens.unwrap();
    let status = harness
        .client()
        .update_profile(authorized(
            proto::UpdateProfileRequest {
                display_name: Some(String::new()),
                slack_member_id: Some("not-a-slack-id".to_owned()),
                distance_unit: Some(proto::DistanceUnit::Unspecified as i32),
                time_zone: Some("Mars/Olympus".to_owned()),
                birth_year: Some(1850),
                gender: Some(99),
                default_run_privacy: Some(proto::RunPrivacy::Unspecified as i32),
                notification_preferences: None,
                privacy_zone_meters: Some(2001),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_status(&status, Code::InvalidArgument, "INVALID_ARGUMENT");
    assert_eq!(
        violated_fields(&status),
        [
            "display_name",
            "slack_member_id",
            "distance_unit",
            "time_zone",
            "birth_year",
            "gender",
            "default_run_privacy",
            "privacy_zone_meters",
        ]
    );
    let me = harness.get_me(&tokens.access_token).await.unwrap();
    assert_eq!(me.display_name, "Ada");
    assert_eq!(me.privacy_zone_meters, None);
    assert_eq!(harness.outbox().await.len(), 1, "only UserRegistered");
}

async fn delete_account_confirms_the_password_and_removes_everything(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    let account = harness.sign_up(&address).await;
    let tokens = account.tokens.unwrap();
    let user_id = account.user.unwrap().id;
    let other = harness
        .sign_in(&address, PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();

    let wrong = harness
        .client()
        .delete_account(authorized(
            proto::DeleteAccountRequest {
                password: "not the password".to_owned(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap_err();
    assert_status(&wrong, Code::InvalidArgument, "WRONG_PASSWORD");
    assert_eq!(violated_fields(&wrong), ["password"]);
    harness.get_me(&tokens.access_token).await.unwrap();

    harness
        .client()
        .delete_account(authorized(
            proto::DeleteAccountRequest {
                password: PASSWORD.to_owned(),
            },
            &tokens.access_token,
        ))
        .await
        .unwrap();

    assert_status(
        &harness.get_me(&tokens.access_token).await.unwrap_err(),
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
    assert_status(
        &harness.sign_in(&address, PASSWORD).await.unwrap_err(),
        Code::Unauthenticated,
        "INVALID_CREDENTIALS",
    );
    for refresh in [&tokens.refresh_token, &other.refresh_token] {
        assert_status(
            &harness.refresh(refresh).await.unwrap_err(),
            Code::Unauthenticated,
            "REFRESH_TOKEN_INVALID",
        );
    }
    use runmesh_svc_user::store::{refresh_token, session, user};
    assert_eq!(user::Entity::find().count(&harness.db).await.unwrap(), 0);
    assert_eq!(session::Entity::find().count(&harness.db).await.unwrap(), 0);
    assert_eq!(
        refresh_token::Entity::find()
            .count(&harness.db)
            .await
            .unwrap(),
        0
    );

    let outbox = harness.outbox().await;
    let deleted = outbox.last().unwrap();
    assert_eq!(deleted.r#type, "runmesh.user.v1.UserDeleted");
    assert_eq!(deleted.aggregate_id, user_id);
    let event = UserDeleted::decode(deleted.payload.as_ref().unwrap().value.as_slice()).unwrap();
    assert_eq!(event.user_id, user_id);
    assert!(event.deleted_at.is_some());

    // The address is free again.
    harness.sign_up(&address).await;
}

async fn admins_grant_and_revoke_roles(backend: Backend) {
    let harness = Harness::start(backend).await;
    let admin_email = email();
    runmesh_svc_user::create_admin(&harness.db, &admin_email, PASSWORD)
        .await
        .unwrap();
    let admin = harness.sign_in(&admin_email, PASSWORD).await.unwrap();
    let admin_id = admin.user.unwrap().id;
    let admin_token = admin.tokens.unwrap().access_token;
    let runner_email = email();
    let runner = harness.sign_up(&runner_email).await;
    let runner_id = runner.user.unwrap().id;
    let runner_tokens = runner.tokens.unwrap();

    let grant = |token: &str, user_id: &str, role: proto::Role| {
        authorized(
            proto::GrantRoleRequest {
                user_id: user_id.to_owned(),
                role: role as i32,
            },
            token,
        )
    };

    let denied = harness
        .client()
        .grant_role(grant(
            &runner_tokens.access_token,
            &runner_id,
            proto::Role::Organizer,
        ))
        .await
        .unwrap_err();
    assert_status(&denied, Code::PermissionDenied, "ROLE_REQUIRED");

    let granted = harness
        .client()
        .grant_role(grant(&admin_token, &runner_id, proto::Role::Organizer))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(
        granted.roles,
        [proto::Role::Runner as i32, proto::Role::Organizer as i32]
    );
    // The next access token carries the role.
    let refreshed = harness.refresh(&runner_tokens.refresh_token).await.unwrap();
    let claims = access_claims(&refreshed.access_token);
    assert_eq!(claims["roles"], serde_json::json!(["runner", "organizer"]));

    let revoked = harness
        .client()
        .revoke_role(authorized(
            proto::RevokeRoleRequest {
                user_id: runner_id.clone(),
                role: proto::Role::Organizer as i32,
            },
            &admin_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    assert_eq!(revoked.roles, [proto::Role::Runner as i32]);

    let own_admin = harness
        .client()
        .revoke_role(authorized(
            proto::RevokeRoleRequest {
                user_id: admin_id,
                role: proto::Role::Admin as i32,
            },
            &admin_token,
        ))
        .await
        .unwrap_err();
    assert_status(
        &own_admin,
        Code::FailedPrecondition,
        "CANNOT_REVOKE_OWN_ADMIN",
    );

    let missing = harness
        .client()
        .grant_role(grant(&admin_token, "no-such-user", proto::Role::Organizer))
        .await
        .unwrap_err();
    assert_status(&missing, Code::NotFound, "USER_NOT_FOUND");

    let runner_role = harness
        .client()
        .grant_role(grant(&admin_token, &runner_id, proto::Role::Runner))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&runner_role), ["role"]);

    let roles_events = harness
        .outbox()
        .await
        .into_iter()
        .filter(|envelope| envelope.r#type == "runmesh.user.v1.UserProfileUpdated")
        .map(|envelope| {
            UserProfileUpdated::decode(envelope.payload.unwrap().value.as_slice())
                .unwrap()
                .changed_fields
        })
        .collect::<Vec<_>>();
    assert_eq!(
        roles_events,
        [vec!["roles".to_owned()], vec!["roles".to_owned()]]
    );
}

async fn calls_about_me_need_a_valid_token_and_session(backend: Backend) {
    let harness = Harness::start(backend).await;
    let anonymous = harness
        .client()
        .get_me(proto::GetMeRequest {})
        .await
        .unwrap_err();
    assert_status(&anonymous, Code::Unauthenticated, "TOKEN_REQUIRED");

    let garbage = harness.get_me("not.a.jwt").await.unwrap_err();
    assert_status(&garbage, Code::Unauthenticated, "TOKEN_INVALID");

    for status in [
        harness
            .client()
            .update_profile(proto::UpdateProfileRequest::default())
            .await
            .unwrap_err(),
        harness
            .client()
            .change_password(proto::ChangePasswordRequest::default())
            .await
            .unwrap_err(),
        harness
            .client()
            .delete_account(proto::DeleteAccountRequest::default())
            .await
            .unwrap_err(),
        harness
            .client()
            .grant_role(proto::GrantRoleRequest::default())
            .await
            .unwrap_err(),
    ] {
        assert_status(&status, Code::Unauthenticated, "TOKEN_REQUIRED");
    }
}

async fn internal_lookups_and_keys(backend: Backend) {
    let harness = Harness::start(backend).await;
    let first = harness.sign_up(&email()).await.user.unwrap();
    let second = harness.sign_up(&email()).await.user.unwrap();

    let mut users = harness
        .internal()
        .get_users(proto::GetUsersRequest {
            user_ids: vec![first.id.clone(), "unknown".to_owned(), second.id.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .users;
    users.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = vec![first, second];
    expected.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(users, expected);

    let too_many = harness
        .internal()
        .get_users(proto::GetUsersRequest {
            user_ids: vec!["x".to_owned(); 501],
        })
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&too_many), ["user_ids"]);

    let keys = harness
        .internal()
        .get_jwks(proto::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(!keys.is_empty());
    for key in &keys {
        assert_eq!(
            (
                key.kty.as_str(),
                key.crv.as_str(),
                key.alg.as_str(),
                key.r#use.as_str()
            ),
            ("OKP", "Ed25519", "EdDSA", "sig")
        );
        assert_eq!(key.x.len(), 43, "32 bytes, base64url");
    }
}

async fn create_admin_bootstraps_and_is_repeatable(backend: Backend) {
    let harness = Harness::start(backend).await;
    let address = email();
    let admin = runmesh_svc_user::create_admin(&harness.db, &address, PASSWORD)
        .await
        .unwrap();
    assert!(admin.is_admin);
    let again = runmesh_svc_user::create_admin(&harness.db, &address.to_uppercase(), PASSWORD)
        .await
        .unwrap();
    assert_eq!(again.id, admin.id);

    let wrong = runmesh_svc_user::create_admin(&harness.db, &address, "Another long password!")
        .await
        .unwrap_err();
    assert!(wrong.to_string().contains("already exists"), "{wrong}");
    let weak = runmesh_svc_user::create_admin(&harness.db, &email(), "password")
        .await
        .unwrap_err();
    assert!(weak.to_string().starts_with("password "), "{weak}");

    // An existing runner becomes an admin with the right password.
    let runner = email();
    harness.sign_up(&runner).await;
    let promoted = runmesh_svc_user::create_admin(&harness.db, &runner, PASSWORD)
        .await
        .unwrap();
    assert!(promoted.is_admin);

    let signed_in = harness.sign_in(&address, PASSWORD).await.unwrap();
    assert!(
        signed_in
            .user
            .unwrap()
            .roles
            .contains(&(proto::Role::Admin as i32))
    );
}

/// The claims of a JWT, unverified (the verifier tests check signatures).
fn access_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// `GetUsers` hands out emails, roles and settings: only runmesh services with a service token
/// for `user` may call it (and `GetJwks`), never anonymous callers or runners.
async fn internal_rpcs_need_a_service_identity(backend: Backend) {
    use runmesh_platform::auth::service_token::{MESH_ISSUER, ServiceClaims};
    use runmesh_platform::auth::{MeshKey, SERVICE_TOKEN_HEADER, ServiceTokenIssuer};

    let harness = Harness::start(backend).await;
    let signed_up = harness.sign_up(&email()).await;
    let user = signed_up.user.unwrap();
    let runner_token = signed_up.tokens.unwrap().access_token;
    let lookup = || proto::GetUsersRequest {
        user_ids: vec![user.id.clone()],
    };
    let with_service_token = |token: String| {
        let mut request = tonic::Request::new(lookup());
        request
            .metadata_mut()
            .insert(SERVICE_TOKEN_HEADER, token.parse().unwrap());
        request
    };
    let get_users = |request: tonic::Request<proto::GetUsersRequest>| {
        let mut client = harness.anonymous_internal();
        async move { client.get_users(request).await.unwrap_err() }
    };

    let anonymous = get_users(tonic::Request::new(lookup())).await;
    assert_status(&anonymous, Code::Unauthenticated, "SERVICE_TOKEN_REQUIRED");
    let keys = harness
        .anonymous_internal()
        .get_jwks(proto::GetJwksRequest {})
        .await
        .unwrap_err();
    assert_status(&keys, Code::Unauthenticated, "SERVICE_TOKEN_REQUIRED");

    // A runner's valid access token: it works on UserService, not here.
    harness.get_me(&runner_token).await.unwrap();
    let runner = get_users(authorized(lookup(), &runner_token)).await;
    assert_status(&runner, Code::Unauthenticated, "SERVICE_TOKEN_REQUIRED");
    let runner_as_service = get_users(with_service_token(runner_token.clone())).await;
    assert_status(
        &runner_as_service,
        Code::Unauthenticated,
        "SERVICE_TOKEN_INVALID",
    );

    let now = jsonwebtoken::get_current_timestamp();
    let expired = harness
        .service_tokens("race")
        .sign(&ServiceClaims {
            iss: MESH_ISSUER.to_owned(),
            sub: "race".to_owned(),
            aud: "user".to_owned(),
            iat: now - 120,
            exp: now - 60,
            jti: "expired".to_owned(),
        })
        .unwrap();
    let status = get_users(with_service_token(expired)).await;
    assert_status(&status, Code::Unauthenticated, "SERVICE_TOKEN_EXPIRED");

    let forged = ServiceTokenIssuer::new("race", MeshKey::random())
        .token("user")
        .unwrap();
    let status = get_users(with_service_token(forged)).await;
    assert_status(&status, Code::Unauthenticated, "SERVICE_TOKEN_INVALID");

    let for_race = harness.service_tokens("edge").token("race").unwrap();
    let status = get_users(with_service_token(for_race)).await;
    assert_status(&status, Code::PermissionDenied, "SERVICE_NOT_ALLOWED");

    let valid = harness.service_tokens("race").token("user").unwrap();
    let users = harness
        .anonymous_internal()
        .get_users(with_service_token(valid))
        .await
        .unwrap()
        .into_inner()
        .users;
    assert_eq!(users, [user]);
}
