//! The user flows through the edge against a real svc-user, run by the platform runtime as
//! `runmesh up` runs it: REST with each error mapping, gRPC-web with the generated client, JWKS,
//! readiness and the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use http::{Method, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_proto::runmesh::user::v1::user_service_client::UserServiceClient;
use serde_json::json;
use support::{PASSWORD, bearer, detail, grpc_web, sign_up, user_and_edge};
use tonic::Code;
use tonic_types::StatusExt;
use tonic_web::GrpcWebClientLayer;

#[tokio::test]
async fn sign_up_sign_in_and_read_me_with_the_bearer_token() {
    let (_user, edge) = user_and_edge(|_| {}).await;
    let http = &edge.http;

    let signed_up = http
        .post(
            "/v1/auth/sign-up",
            &[],
            &json!({"email": " Ada@Example.com ", "password": PASSWORD, "displayName": "Ada"}),
        )
        .await;
    assert_eq!(signed_up.status, StatusCode::OK, "{signed_up:?}");
    let body = signed_up.json();
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["roles"], json!(["ROLE_RUNNER"]));
    assert_eq!(body["tokens"]["tokenType"], "Bearer");
    assert!(
        body["tokens"]["accessTokenExpiresAt"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    let signed_in = http
        .post(
            "/v1/auth/sign-in",
            &[],
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::OK, "{signed_in:?}");
    let access = signed_in.json()["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let me = http
        .get("/v1/me", &[("authorization", &bearer(&access))])
        .await;
    assert_eq!(me.status, StatusCode::OK, "{me:?}");
    let me = me.json();
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["user"]["displayName"], "Ada");
    // Fields at their default value are present too.
    assert_eq!(me["user"]["slackMemberId"], "");

    let updated = http
        .send(
            Method::PATCH,
            "/v1/me",
            &[("authorization", &bearer(&access))],
            Some(json!({"displayName": "Ada L.", "timeZone": "Europe/Berlin", "distance_unit": "DISTANCE_UNIT_MILES"}).to_string().into()),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{updated:?}");
    let user = &updated.json()["user"];
    assert_eq!(user["displayName"], "Ada L.");
    assert_eq!(user["timeZone"], "Europe/Berlin");
    assert_eq!(user["distanceUnit"], "DISTANCE_UNIT_MILES");

    let refreshed = http
        .post(
            "/v1/auth/refresh",
            &[],
            &json!({"refreshToken": signed_in.json()["tokens"]["refreshToken"]}),
        )
        .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{refreshed:?}");
    let reused = http
        .post(
            "/v1/auth/refresh",
            &[],
            &json!({"refreshToken": signed_in.json()["tokens"]["refreshToken"]}),
        )
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED, "{reused:?}");
    assert_eq!(reused.error_info()["reason"], "REFRESH_TOKEN_REUSED");

    // Reuse revoked the whole session; a new sign-in deletes the account.
    let access = http
        .post(
            "/v1/auth/sign-in",
            &[],
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await
        .json()["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let deleted = http
        .send(
            Method::DELETE,
            "/v1/me",
            &[("authorization", &bearer(&access))],
            Some(json!({"password": PASSWORD}).to_string().into()),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{deleted:?}");
    assert_eq!(deleted.json(), json!({}));
    let gone = http
        .post(
            "/v1/auth/sign-in",
            &[],
            &json!({"email": "ada@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED, "{gone:?}");
}

#[tokio::test]
async fn errors_come_back_with_their_http_status_and_a_status_body() {
    let (user, edge) = user_and_edge(|_| {}).await;
    let http = &edge.http;
    let (access, _refresh, user_id) = sign_up(http, "grace@example.com").await;

    // 400 INVALID_ARGUMENT with a field violation.
    let invalid = http
        .post(
            "/v1/auth/sign-up",
            &[],
            &json!({"email": "not-an-email", "password": PASSWORD, "displayName": "X"}),
        )
        .await;
    assert_eq!(invalid.status, StatusCode::BAD_REQUEST, "{invalid:?}");
    let body = invalid.json();
    assert_eq!(body["code"], 3);
    assert_eq!(
        detail(&body, "google.rpc.BadRequest")["fieldViolations"][0]["field"],
        "email"
    );

    // 400 from the edge itself: an unknown field.
    let unknown = http
        .post(
            "/v1/auth/sign-in",
            &[],
            &json!({"email": "grace@example.com", "password": PASSWORD, "remember": true}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{unknown:?}");
    assert_eq!(unknown.error_info()["domain"], "edge.runmesh.dev");

    // 409 ALREADY_EXISTS.
    let taken = http
        .post(
            "/v1/auth/sign-up",
            &[],
            &json!({"email": "grace@example.com", "password": PASSWORD, "displayName": "G"}),
        )
        .await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{taken:?}");
    assert_eq!(taken.error_info()["reason"], "EMAIL_TAKEN");

    // 401 UNAUTHENTICATED: no token, a bad token, bad credentials.
    let anonymous = http.get("/v1/me", &[]).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{anonymous:?}");
    assert_eq!(anonymous.json()["code"], 16);
    let forged = http
        .get("/v1/me", &[("authorization", "Bearer not.a.token")])
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED, "{forged:?}");

    // 403 PERMISSION_DENIED: a runner granting roles.
    let denied = http
        .post(
            &format!("/v1/users/{user_id}/roles:grant"),
            &[("authorization", &bearer(&access))],
            &json!({"role": "ROLE_ORGANIZER"}),
        )
        .await;
    assert_eq!(denied.status, StatusCode::FORBIDDEN, "{denied:?}");
    assert_eq!(denied.error_info()["reason"], "ROLE_REQUIRED");

    // 404 NOT_FOUND: an admin granting a role to nobody; 200 for a real user.
    let db = runmesh_platform::db::connect(&runmesh_platform::db::service_database_url(
        None,
        &user.data_dir,
        "user",
    ))
    .await
    .unwrap();
    runmesh_svc_user::create_admin(&db, "admin@example.com", PASSWORD)
        .await
        .unwrap();
    let admin = http
        .post(
            "/v1/auth/sign-in",
            &[],
            &json!({"email": "admin@example.com", "password": PASSWORD}),
        )
        .await
        .json()["tokens"]["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let nobody = http
        .post(
            "/v1/users/0190d6c6-0000-7000-8000-000000000000/roles:grant",
            &[("authorization", &bearer(&admin))],
            &json!({"role": "ROLE_ORGANIZER"}),
        )
        .await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND, "{nobody:?}");
    assert_eq!(nobody.error_info()["reason"], "USER_NOT_FOUND");
    let granted = http
        .post(
            &format!("/v1/users/{user_id}/roles:grant"),
            &[("authorization", &bearer(&admin))],
            &json!({"role": "ROLE_ORGANIZER"}),
        )
        .await;
    assert_eq!(granted.status, StatusCode::OK, "{granted:?}");
    assert_eq!(
        granted.json()["user"]["roles"],
        json!(["ROLE_RUNNER", "ROLE_ORGANIZER"])
    );

    // 401 for wrong passwords, then 429 with Retry-After once the account's budget is spent.
    let mut last = None;
    for _ in 0..4 {
        last = Some(
            http.post(
                "/v1/auth/sign-in",
                &[],
                &json!({"email": "grace@example.com", "password": "Wrong password, 99!"}),
            )
            .await,
        );
    }
    let limited = last.unwrap();
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS, "{limited:?}");
    assert_eq!(limited.error_info()["reason"], "TOO_MANY_SIGN_IN_ATTEMPTS");
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry_after >= 1);
    assert!(detail(&limited.json(), "google.rpc.RetryInfo")["retryDelay"].is_string());
}

#[tokio::test]
async fn jwks_readiness_and_the_openapi_document() {
    let (_user, edge) = user_and_edge(|_| {}).await;
    let http = &edge.http;

    let jwks = http.get("/.well-known/jwks.json", &[]).await;
    assert_eq!(jwks.status, StatusCode::OK, "{jwks:?}");
    assert_eq!(jwks.header("cache-control"), Some("public, max-age=60"));
    let keys = jwks.json()["keys"].as_array().unwrap().clone();
    assert!(!keys.is_empty());
    assert_eq!(keys[0]["kty"], "OKP");
    assert_eq!(keys[0]["crv"], "Ed25519");
    assert!(keys[0]["kid"].is_string());
    // The same keys verify tokens: it parses as a JWKS.
    let _: jsonwebtoken::jwk::JwkSet = serde_json::from_slice(&jwks.body).unwrap();

    let ready = http.get("/readyz", &[]).await.json();
    assert_eq!(ready["status"], "SERVING");
    assert_eq!(ready["services"]["runmesh.user.v1.UserService"], "SERVING");

    let document = http.get("/openapi.json", &[]).await.json();
    for (path, method) in [
        ("/v1/auth/sign-up", "post"),
        ("/v1/auth/sign-in", "post"),
        ("/v1/auth/refresh", "post"),
        ("/v1/auth/sign-out", "post"),
        ("/v1/me", "get"),
        ("/v1/me", "patch"),
        ("/v1/me", "delete"),
        ("/v1/me/password", "post"),
        ("/v1/users/{user_id}/roles:grant", "post"),
        ("/v1/users/{user_id}/roles:revoke", "post"),
    ] {
        assert!(
            document["paths"][path][method].is_object(),
            "{method} {path}"
        );
    }
    assert_eq!(
        document["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
}

/// The generated client, through the edge's gRPC-web, over HTTP/1.1 and HTTP/2.
#[tokio::test]
async fn grpc_web_calls_from_the_generated_client() {
    let (_user, edge) = user_and_edge(|_| {}).await;
    for http2 in [false, true] {
        let mut builder = Client::builder(TokioExecutor::new());
        builder.http2_only(http2);
        let service = tower::ServiceBuilder::new()
            .layer(GrpcWebClientLayer::new())
            .service(builder.build_http());
        let mut client = UserServiceClient::with_origin(
            service,
            format!("http://{}", edge.addr).parse().unwrap(),
        );
        let email = format!("web{}@example.com", u8::from(http2));
        let signed_up = client
            .sign_up(proto::SignUpRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                display_name: "Web".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let access = signed_up.tokens.unwrap().access_token;

        let mut request = tonic::Request::new(proto::GetMeRequest {});
        request
            .metadata_mut()
            .insert("authorization", bearer(&access).parse().unwrap());
        let me = client.get_me(request).await.unwrap().into_inner();
        assert_eq!(me.user.unwrap().email, email);

        let error = client.get_me(proto::GetMeRequest {}).await.unwrap_err();
        assert_eq!(error.code(), Code::Unauthenticated);
        assert!(error.get_details_error_info().is_some(), "{error:?}");
    }
}

#[tokio::test]
async fn grpc_web_text_mode_and_internal_services() {
    let (_user, edge) = user_and_edge(|_| {}).await;
    let (access, _, _) = sign_up(&edge.http, "text@example.com").await;
    let web = grpc_web(
        &edge.http,
        false,
        true,
        "/runmesh.user.v1.UserService/GetMe",
        &proto::GetMeRequest {}.encode_to_vec(),
        &[("authorization", &bearer(&access))],
    )
    .await;
    assert_eq!(web.grpc_status(), Some(0), "{web:?}");
    let me = proto::GetMeResponse::decode(web.messages[0].as_slice()).unwrap();
    assert_eq!(me.user.unwrap().email, "text@example.com");

    let internal = grpc_web(
        &edge.http,
        false,
        false,
        "/runmesh.user.v1.UserInternalService/GetJwks",
        &[],
        &[],
    )
    .await;
    assert_eq!(internal.grpc_status(), Some(12), "{internal:?}");
}
