//! The issuer's keys for other services, fetched over gRPC (`UserInternalService.GetJwks`).

use anyhow::Context as _;
use jsonwebtoken::jwk::JwkSet;
use runmesh_platform::auth::KeySource;
use runmesh_proto::runmesh::user::v1::GetJwksRequest;
use runmesh_proto::runmesh::user::v1::user_internal_service_client::UserInternalServiceClient;
use tonic::transport::Channel;

/// A [`KeySource`] that asks svc-user for its JWKS. Give it to a
/// [`TokenVerifier`](runmesh_platform::auth::TokenVerifier), which caches the answer.
#[derive(Clone)]
pub struct GrpcKeySource {
    client: UserInternalServiceClient<Channel>,
}

impl GrpcKeySource {
    /// Over `channel` to svc-user, e.g. `Channel::from_static("http://user:50051").connect_lazy()`.
    pub fn new(channel: Channel) -> Self {
        Self {
            client: UserInternalServiceClient::new(channel),
        }
    }
}

#[async_trait::async_trait]
impl KeySource for GrpcKeySource {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        let response = self
            .client
            .clone()
            .get_jwks(GetJwksRequest {})
            .await
            .context("calling runmesh.user.v1.UserInternalService/GetJwks")?
            .into_inner();
        let keys: Vec<serde_json::Value> = response
            .keys
            .into_iter()
            .map(|key| {
                serde_json::json!({
                    "kid": key.kid,
                    "kty": key.kty,
                    "crv": key.crv,
                    "x": key.x,
                    "alg": key.alg,
                    "use": key.r#use,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({ "keys": keys }))
            .context("GetJwks returned keys that are not a JWKS")
    }
}
