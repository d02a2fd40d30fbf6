//! The issuer's keys for other services, fetched over gRPC (`UserInternalService.GetJwks`, an
//! internal RPC: the calls carry a service token).

use anyhow::Context as _;
use jsonwebtoken::jwk::JwkSet;
use runmesh_platform::auth::{KeySource, ServiceTokenIssuer};
use runmesh_platform::peer::{PeerChannel, PeerOptions, PeerUrlError};
use runmesh_proto::runmesh::user::v1::GetJwksRequest;
use runmesh_proto::runmesh::user::v1::user_internal_service_client::UserInternalServiceClient;

/// A [`KeySource`] that asks svc-user for its JWKS. Give it to a
/// [`TokenVerifier`](runmesh_platform::auth::TokenVerifier), which caches the answer.
#[derive(Clone, Debug)]
pub struct GrpcKeySource {
    peer: PeerChannel,
}

impl GrpcKeySource {
    /// svc-user at `url` (`http://user:50051`, every address of the name balanced), called as
    /// the component `caller` names.
    pub fn connect(url: &str, caller: &ServiceTokenIssuer) -> Result<Self, PeerUrlError> {
        let options = PeerOptions::default().with_credentials(caller.credentials(crate::NAME));
        Ok(Self::new(PeerChannel::connect(url, options)?))
    }

    /// Over `peer`, whose credentials must be a service token for `user`.
    pub fn new(peer: PeerChannel) -> Self {
        Self { peer }
    }
}

#[async_trait::async_trait]
impl KeySource for GrpcKeySource {
    async fn fetch(&self) -> anyhow::Result<JwkSet> {
        let response = self
            .peer
            .unary(GetJwksRequest {}, |channel, request| async move {
                UserInternalServiceClient::new(channel)
                    .get_jwks(request)
                    .await
            })
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
