//! The tokens svc-user issues, as another service sees them: a second gRPC service behind the
//! platform's auth layer, with a `TokenVerifier` that fetches svc-user's keys over
//! `UserInternalService.GetJwks`, accepts them and refuses forgeries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use runmesh_platform::auth::{
    AccessClaims, AuthLayer, TokenVerifier, VerifierConfig, require_caller,
};
use runmesh_platform::config::Settings;
use runmesh_platform::server::GrpcServer;
use runmesh_proto::runmesh::testing::v1::probe_service_client::ProbeServiceClient;
use runmesh_proto::runmesh::testing::v1::probe_service_server::{ProbeService, ProbeServiceServer};
use runmesh_proto::runmesh::testing::v1::{SleepRequest, SleepResponse};
use runmesh_proto::runmesh::user::v1 as proto;
use runmesh_svc_user::GrpcKeySource;
use runmesh_svc_user::keys::{KeyPolicy, KeyRing};
use runmesh_svc_user::store::signing_key;
use sea_orm::EntityTrait;
use support::{Backend, Harness, assert_status, authorized, email};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

/// Another service: answers with the verified caller's user id.
struct Probe;

#[tonic::async_trait]
impl ProbeService for Probe {
    async fn sleep(
        &self,
        request: Request<SleepRequest>,
    ) -> Result<Response<SleepResponse>, Status> {
        let caller = require_caller(&request)?;
        Ok(Response::new(SleepResponse {
            caller_subject: caller.user_id,
        }))
    }
}

struct OtherService {
    client: ProbeServiceClient<Channel>,
    _shutdown: tokio_util::sync::DropGuard,
}

impl OtherService {
    /// Verifies tokens against the keys `issuer` serves over gRPC.
    async fn start(issuer: &Harness) -> Self {
        let mut config =
            VerifierConfig::new(issuer.config.issuer.clone(), issuer.config.audience.clone());
        config.min_refresh_interval = Duration::ZERO;
        // Fetched as svc-race would: GetJwks is internal, so with a service token.
        let keys = Arc::new(
            GrpcKeySource::connect(
                &format!("http://{}", issuer.addr),
                &issuer.service_tokens("race"),
            )
            .unwrap(),
        );
        let verifier = Arc::new(TokenVerifier::new(config, keys).unwrap());
        let settings = Settings {
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shutdown_delay: Duration::ZERO,
            ..Settings::default()
        };
        let server = GrpcServer::builder(&settings)
            .layer(AuthLayer::new(verifier))
            .add_service(ProbeServiceServer::new(Probe), vec![])
            .bind()
            .await
            .unwrap();
        let addr = server.local_addr();
        let shutdown = CancellationToken::new();
        tokio::spawn(server.serve(shutdown.clone()));
        let channel = Channel::from_shared(format!("http://{addr}"))
            .unwrap()
            .connect_lazy();
        Self {
            client: ProbeServiceClient::new(channel),
            _shutdown: shutdown.drop_guard(),
        }
    }

    async fn call(&self, token: &str) -> Result<String, Status> {
        self.client
            .clone()
            .sleep(authorized(SleepRequest { delay_ms: 0 }, token))
            .await
            .map(|response| response.into_inner().caller_subject)
    }
}

on_both_backends!(
    another_service_accepts_issued_tokens,
    another_service_refuses_forgeries,
    keys_rotate_without_signing_anyone_out,
    a_revoked_sessions_refresh_token_is_refused,
);

/// The claims svc-user would sign for `user_id`, for forging variants of them.
fn claims_for(harness: &Harness, user_id: &str) -> AccessClaims {
    let now = Utc::now().timestamp() as u64;
    AccessClaims {
        iss: harness.config.issuer.clone(),
        sub: user_id.to_owned(),
        aud: harness.config.audience.clone(),
        exp: now + 300,
        nbf: now,
        iat: now,
        jti: uuid::Uuid::new_v4().to_string(),
        sid: uuid::Uuid::new_v4().to_string(),
        roles: vec!["runner".to_owned(), "admin".to_owned()],
    }
}

/// The key svc-user signs with now, read from its database (as only svc-user can).
async fn signing_key(harness: &Harness) -> signing_key::Model {
    let kid = harness.module.keys().signing_kid(Utc::now()).unwrap();
    signing_key::Entity::find_by_id(kid)
        .one(&harness.db)
        .await
        .unwrap()
        .unwrap()
}

fn sign(kid: &str, der: &[u8], claims: &AccessClaims) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der)).unwrap()
}

async fn another_service_accepts_issued_tokens(backend: Backend) {
    let harness = Harness::start(backend).await;
    let other = OtherService::start(&harness).await;
    let account = harness.sign_up(&email()).await;
    let user_id = account.user.unwrap().id;
    let tokens = account.tokens.unwrap();

    assert_eq!(other.call(&tokens.access_token).await.unwrap(), user_id);
    let refreshed = harness.refresh(&tokens.refresh_token).await.unwrap();
    assert_eq!(other.call(&refreshed.access_token).await.unwrap(), user_id);

    let header = jsonwebtoken::decode_header(&tokens.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.unwrap(), signing_key(&harness).await.kid);
}

async fn another_service_refuses_forgeries(backend: Backend) {
    let harness = Harness::start(backend).await;
    let other = OtherService::start(&harness).await;
    let user_id = harness.sign_up(&email()).await.user.unwrap().id;
    let real = signing_key(&harness).await;
    let claims = claims_for(&harness, &user_id);

    // Sanity: the real key with good claims passes, so the refusals below are about the forgery.
    assert_eq!(
        other
            .call(&sign(&real.kid, &real.private_key, &claims))
            .await
            .unwrap(),
        user_id
    );

    let mut cases: Vec<(&str, String, &str)> = Vec::new();

    use ed25519_dalek::pkcs8::EncodePrivateKey as _;
    let stranger = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let stranger_der = stranger.to_pkcs8_der().unwrap();
    cases.push((
        "another key, real kid",
        sign(&real.kid, stranger_der.as_bytes(), &claims),
        "TOKEN_INVALID",
    ));
    cases.push((
        "another key, unknown kid",
        sign("made-up", stranger_der.as_bytes(), &claims),
        "TOKEN_INVALID",
    ));

    let none_header = serde_json::json!({ "alg": "none", "typ": "JWT", "kid": real.kid });
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&none_header).unwrap()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
    );
    cases.push(("alg none", unsigned, "TOKEN_INVALID"));

    let mut hmac_header = Header::new(Algorithm::HS256);
    hmac_header.kid = Some(real.kid.clone());
    let confused = jsonwebtoken::encode(
        &hmac_header,
        &claims,
        &EncodingKey::from_secret(&real.public_key),
    )
    .unwrap();
    cases.push(("HS256 keyed with the public key", confused, "TOKEN_INVALID"));

    let mut expired = claims.clone();
    expired.iat -= 3600;
    expired.nbf -= 3600;
    expired.exp -= 1800;
    cases.push((
        "expired",
        sign(&real.kid, &real.private_key, &expired),
        "TOKEN_EXPIRED",
    ));

    let mut wrong_audience = claims.clone();
    wrong_audience.aud = "someone-else".to_owned();
    cases.push((
        "wrong aud",
        sign(&real.kid, &real.private_key, &wrong_audience),
        "TOKEN_INVALID",
    ));

    let mut wrong_issuer = claims.clone();
    wrong_issuer.iss = "https://evil.example".to_owned();
    cases.push((
        "wrong iss",
        sign(&real.kid, &real.private_key, &wrong_issuer),
        "TOKEN_INVALID",
    ));

    let tampered = {
        let token = sign(&real.kid, &real.private_key, &claims);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let mut admin = claims.clone();
        admin.sub = "someone-else".to_owned();
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&admin).unwrap());
        parts.join(".")
    };
    cases.push((
        "payload swapped under a real signature",
        tampered,
        "TOKEN_INVALID",
    ));

    for (case, token, reason) in cases {
        let status = other.call(&token).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        assert_status(&status, Code::Unauthenticated, reason);
    }
}

async fn keys_rotate_without_signing_anyone_out(backend: Backend) {
    let harness = Harness::start(backend).await;
    let other = OtherService::start(&harness).await;
    let address = email();
    let before = harness.sign_up(&address).await.tokens.unwrap();
    let old_kid = jsonwebtoken::decode_header(&before.access_token)
        .unwrap()
        .kid
        .unwrap();
    other.call(&before.access_token).await.unwrap();

    let new_kid = harness.module.keys().rotate_now().await.unwrap();
    assert_ne!(new_kid, old_kid);
    let after = harness
        .sign_in(&address, support::PASSWORD)
        .await
        .unwrap()
        .tokens
        .unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(&after.access_token)
            .unwrap()
            .kid
            .unwrap(),
        new_kid
    );

    other.call(&after.access_token).await.unwrap();
    other.call(&before.access_token).await.unwrap();
    harness.get_me(&before.access_token).await.unwrap();
    let published: Vec<String> = harness
        .internal()
        .get_jwks(proto::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .keys
        .into_iter()
        .map(|key| key.kid)
        .collect();
    assert!(published.contains(&old_kid) && published.contains(&new_kid));
}

async fn a_revoked_sessions_refresh_token_is_refused(backend: Backend) {
    let harness = Harness::start(backend).await;
    let tokens = harness.sign_up(&email()).await.tokens.unwrap();
    harness
        .client()
        .sign_out(proto::SignOutRequest {
            refresh_token: tokens.refresh_token.clone(),
            all_sessions: false,
        })
        .await
        .unwrap();
    let status = harness.refresh(&tokens.refresh_token).await.unwrap_err();
    assert_status(&status, Code::Unauthenticated, "SESSION_ENDED");
    // svc-user itself refuses the session's remaining access token at once; other services
    // accept it until it expires (at most the access-token lifetime), as they verify locally.
    assert_status(
        &harness.get_me(&tokens.access_token).await.unwrap_err(),
        Code::Unauthenticated,
        "SESSION_ENDED",
    );
}

/// Rotation over time, on an embedded database: the next key is published `publish_ahead`
/// before it signs, and a key disappears once no token it signed can still be valid.
#[tokio::test]
async fn the_next_key_is_published_before_it_signs_and_retired_after() {
    let sqlite = runmesh_platform::testkit::TestSqlite::create().unwrap();
    let db = runmesh_platform::db::connect(&sqlite.url).await.unwrap();
    runmesh_svc_user::migrate(&db).await.unwrap();
    let minutes = |n: u64| Duration::from_secs(n * 60);
    let policy = KeyPolicy {
        rotation: minutes(10),
        publish_ahead: minutes(3),
        token_lifetime: minutes(2),
    };
    let ring = KeyRing::open(db.clone(), policy).await.unwrap();
    let start = Utc::now();
    let at = |n: i64| start + chrono::Duration::minutes(n);
    let first = ring.signing_kid(start).unwrap();
    assert_eq!(ring.jwks().keys.len(), 1);

    // Less than two publish periods of signing left: the successor is created, not yet signing.
    ring.maintain(at(5)).await.unwrap();
    assert_eq!(ring.jwks().keys.len(), 2);
    assert_eq!(ring.signing_kid(at(5)).unwrap(), first);
    let second = ring.signing_kid(at(9)).unwrap();
    assert_ne!(second, first);

    // A second replica sees the same keys.
    let replica = KeyRing::open(db.clone(), policy).await.unwrap();
    assert_eq!(replica.signing_kid(at(9)).unwrap(), second);

    // After the first key stopped signing and its last token expired, it is no longer published.
    ring.maintain(at(13)).await.unwrap();
    let kids: Vec<_> = ring
        .jwks()
        .keys
        .into_iter()
        .filter_map(|key| key.common.key_id)
        .collect();
    assert!(!kids.contains(&first), "{kids:?}");
    assert!(kids.contains(&second));
}
