//! Service identity for internal RPCs.
//!
//! Services whose name ends in `InternalService` are for other runmesh components only. A
//! caller proves it is one with a short-lived **service token** in its own metadata key,
//! [`SERVICE_TOKEN_HEADER`] (never `authorization`, so runner-token verification is untouched
//! and the two kinds of token cannot be confused): an HS256 JWT of type [`TOKEN_TYPE`] with
//! `iss` [`MESH_ISSUER`], `sub` the calling component (`race`, `edge`…), `aud` the callee's
//! short name (`user` for `runmesh.user.v1.UserInternalService`), `iat`, `exp` (60 s after
//! `iat`) and `jti`, signed with the **mesh key** every component of a deployment shares
//! ([`MeshKey`]: `RUNMESH_SERVICE_SECRET`, or a random key per process in `runmesh up`).
//!
//! [`ServiceTokenIssuer`] signs them, [`ServiceCredentials`] attaches one to a call and
//! [`ServiceTokenVerifier`] checks them in [`super::AuthLayer`].

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};

use super::AuthError;

/// The metadata key that carries a service token.
pub const SERVICE_TOKEN_HEADER: &str = "x-runmesh-service-token";
/// The `iss` of every service token.
pub const MESH_ISSUER: &str = "runmesh-mesh";
/// The `typ` header of service tokens: an access token is never mistaken for one.
pub const TOKEN_TYPE: &str = "runmesh-service+jwt";
/// The shortest mesh secret accepted (HS256 wants at least the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;
/// How long a service token is valid.
pub const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(60);
/// Tokens that claim to live longer than this are refused, whoever signed them.
const MAX_TOKEN_LIFETIME: u64 = 300;
/// Clock skew tolerated on `exp` and `iat` (seconds).
const LEEWAY: u64 = 10;

/// The shared secret of the runmesh components of one deployment. Cheap to clone; its `Debug`
/// never shows the secret.
#[derive(Clone)]
pub struct MeshKey(Arc<KeyPair>);

struct KeyPair {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The mesh secret is too short.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "must be at least {MIN_SECRET_BYTES} bytes (got {0}); generate one with `openssl rand -base64 48`"
)]
pub struct MeshKeyError(usize);

impl MeshKey {
    /// A key from a shared secret of at least [`MIN_SECRET_BYTES`] bytes.
    pub fn from_secret(secret: &[u8]) -> Result<Self, MeshKeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(MeshKeyError(secret.len()));
        }
        Ok(Self(Arc::new(KeyPair {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        })))
    }

    /// A fresh random key (from the operating system's CSPRNG via `rand`'s thread generator).
    pub fn random() -> Self {
        let mut secret = [0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        Self(Arc::new(KeyPair {
            encoding: EncodingKey::from_secret(&secret),
            decoding: DecodingKey::from_secret(&secret),
        }))
    }

    /// One random key per process, the same for every caller: what `runmesh up` uses when no
    /// secret is configured, since every component then lives in this process.
    pub fn process() -> Self {
        static PROCESS: OnceLock<MeshKey> = OnceLock::new();
        PROCESS.get_or_init(Self::random).clone()
    }
}

impl fmt::Debug for MeshKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MeshKey(<redacted>)")
    }
}

/// The claims of a service token. All are required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceClaims {
    pub iss: String,
    /// The calling component.
    pub sub: String,
    /// The callee's short name.
    pub aud: String,
    pub iat: u64,
    pub exp: u64,
    pub jti: String,
}

/// Signs service tokens for one calling component.
#[derive(Debug, Clone)]
pub struct ServiceTokenIssuer {
    service: Arc<str>,
    key: MeshKey,
    ttl: Duration,
}

impl ServiceTokenIssuer {
    /// Tokens saying `service` (e.g. `race`, `edge`) is calling, valid for [`DEFAULT_TOKEN_TTL`].
    pub fn new(service: impl Into<Arc<str>>, key: MeshKey) -> Self {
        Self {
            service: service.into(),
            key,
            ttl: DEFAULT_TOKEN_TTL,
        }
    }

    /// Another lifetime (tests; at most 5 minutes is accepted by verifiers).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// A fresh token for calls to `audience`'s internal RPCs.
    pub fn token(&self, audience: &str) -> Result<String, jsonwebtoken::errors::Error> {
        let now = jsonwebtoken::get_current_timestamp();
        self.sign(&ServiceClaims {
            iss: MESH_ISSUER.to_owned(),
            sub: self.service.to_string(),
            aud: audience.to_owned(),
            iat: now,
            exp: now.saturating_add(self.ttl.as_secs().max(1)),
            jti: uuid::Uuid::now_v7().to_string(),
        })
    }

    /// Signs exactly `claims` with the mesh key (tests forge expired or odd tokens with it).
    pub fn sign(&self, claims: &ServiceClaims) -> Result<String, jsonwebtoken::errors::Error> {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TOKEN_TYPE.to_owned());
        jsonwebtoken::encode(&header, claims, &self.key.0.encoding)
    }

    /// What to attach to calls to `audience`'s internal RPCs.
    pub fn credentials(&self, audience: impl Into<Arc<str>>) -> ServiceCredentials {
        ServiceCredentials {
            issuer: self.clone(),
            audience: audience.into(),
        }
    }
}

/// A calling component's identity towards one callee: attaches a fresh service token to each
/// call.
#[derive(Debug, Clone)]
pub struct ServiceCredentials {
    issuer: ServiceTokenIssuer,
    audience: Arc<str>,
}

impl ServiceCredentials {
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Sets [`SERVICE_TOKEN_HEADER`] in `metadata` to a new token.
    pub fn attach(&self, metadata: &mut MetadataMap) -> Result<(), tonic::Status> {
        let token = self.issuer.token(&self.audience).map_err(|error| {
            tracing::error!(%error, "cannot sign a service token");
            tonic::Status::internal("cannot sign a service token")
        })?;
        let value = AsciiMetadataValue::try_from(token)
            .map_err(|_| tonic::Status::internal("a service token is not valid metadata"))?;
        metadata.insert(SERVICE_TOKEN_HEADER, value);
        Ok(())
    }
}

/// As a tonic interceptor: `UserInternalServiceClient::with_interceptor(channel, credentials)`.
impl tonic::service::Interceptor for ServiceCredentials {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        self.attach(request.metadata_mut())?;
        Ok(request)
    }
}

/// Who called an internal RPC, from a verified service token; [`super::AuthLayer`] puts it into
/// the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCaller {
    /// The calling component (`sub`).
    pub service: String,
    /// The token's `jti`.
    pub token_id: String,
}

/// The calling component, when the call came with a valid service token.
pub fn optional_service_caller<T>(request: &tonic::Request<T>) -> Option<ServiceCaller> {
    request.extensions().get::<ServiceCaller>().cloned()
}

/// Checks service tokens against the mesh key.
pub struct ServiceTokenVerifier {
    key: MeshKey,
    validation: Validation,
}

impl fmt::Debug for ServiceTokenVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokenVerifier")
            .finish_non_exhaustive()
    }
}

impl ServiceTokenVerifier {
    pub fn new(key: MeshKey) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[MESH_ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = false;
        // The audience is compared below, so a token for another service reads as
        // PERMISSION_DENIED rather than as a broken token.
        validation.validate_aud = false;
        validation.leeway = LEEWAY;
        Self { key, validation }
    }

    /// The caller of an internal RPC of `audience`, if `token` is a valid service token for it.
    pub fn verify(&self, token: &str, audience: &str) -> Result<ServiceCaller, AuthError> {
        let invalid = |why: &str| AuthError::ServiceTokenInvalid(why.to_owned());
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("not a JWT"))?;
        if header.alg != Algorithm::HS256 || header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(invalid("not a service token"));
        }
        if header.crit.as_ref().is_some_and(|crit| !crit.is_empty()) {
            return Err(invalid("unsupported critical header"));
        }
        let claims =
            jsonwebtoken::decode::<ServiceClaims>(token, &self.key.0.decoding, &self.validation)
                .map_err(|error| {
                    use jsonwebtoken::errors::ErrorKind;
                    match error.kind() {
                        ErrorKind::ExpiredSignature => AuthError::ServiceTokenExpired,
                        ErrorKind::InvalidSignature => invalid("signature does not match"),
                        ErrorKind::InvalidIssuer => invalid("wrong issuer"),
                        ErrorKind::MissingRequiredClaim(claim) => {
                            AuthError::ServiceTokenInvalid(format!("lacks the `{claim}` claim"))
                        }
                        _ => invalid("malformed"),
                    }
                })?
                .claims;
        let now = jsonwebtoken::get_current_timestamp();
        if claims.iat > now.saturating_add(LEEWAY) {
            return Err(invalid("issued in the future"));
        }
        if claims.exp.saturating_sub(claims.iat) > MAX_TOKEN_LIFETIME {
            return Err(invalid("lives longer than a service token may"));
        }
        if claims.sub.is_empty() || claims.jti.is_empty() {
            return Err(invalid("lacks a subject or token id"));
        }
        if claims.aud != audience {
            return Err(AuthError::ServiceNotAllowed {
                caller: claims.sub,
                audience: audience.to_owned(),
            });
        }
        Ok(ServiceCaller {
            service: claims.sub,
            token_id: claims.jti,
        })
    }
}

/// Whether `service` (a full name such as `runmesh.user.v1.UserInternalService`) is internal:
/// for runmesh components only.
pub fn is_internal_service(service: &str) -> bool {
    let short = service.rsplit('.').next().unwrap_or(service);
    short.ends_with("InternalService")
}

/// The short name of the component that serves `service`: the package segment before the
/// version, so `runmesh.user.v1.UserInternalService` → `user` (svc-user's name). Service tokens
/// for its internal RPCs carry it as `aud`.
pub fn service_audience(service: &str) -> &str {
    let Some((package, _)) = service.rsplit_once('.') else {
        return service;
    };
    let mut segments = package.rsplit('.');
    let last = segments.next().unwrap_or(package);
    if is_version(last) {
        segments.next().unwrap_or(last)
    } else {
        last
    }
}

/// `v1`, `v2beta1`…
fn is_version(segment: &str) -> bool {
    segment
        .strip_prefix('v')
        .and_then(|rest| rest.chars().next())
        .is_some_and(|first| first.is_ascii_digit())
}

/// The full service name of a gRPC path (`/pkg.Service/Method`).
pub(crate) fn path_service(path: &str) -> Option<&str> {
    let rest = path.strip_prefix('/')?;
    let (service, _method) = rest.split_once('/')?;
    Some(service)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn internal_services_and_their_audience() {
        assert!(is_internal_service("runmesh.user.v1.UserInternalService"));
        assert!(!is_internal_service("runmesh.user.v1.UserService"));
        assert!(!is_internal_service("runmesh.internalservice.v1.Users"));
        assert_eq!(
            service_audience("runmesh.user.v1.UserInternalService"),
            "user"
        );
        assert_eq!(
            service_audience("runmesh.race.v2beta1.RaceInternalService"),
            "race"
        );
        assert_eq!(
            service_audience("library.LibraryInternalService"),
            "library"
        );
        assert_eq!(service_audience("Bare"), "Bare");
        assert_eq!(
            path_service("/runmesh.user.v1.UserInternalService/GetUsers"),
            Some("runmesh.user.v1.UserInternalService")
        );
        assert_eq!(path_service("/nonsense"), None);
    }

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        assert_eq!(MeshKey::from_secret(b"short").unwrap_err(), MeshKeyError(5));
        assert!(MeshKey::from_secret(&[7; 32]).is_ok());
        assert_eq!(format!("{:?}", MeshKey::random()), "MeshKey(<redacted>)");
    }

    #[test]
    fn tokens_verify_for_their_audience_only() {
        let key = MeshKey::random();
        let issuer = ServiceTokenIssuer::new("race", key.clone());
        let verifier = ServiceTokenVerifier::new(key);
        let token = issuer.token("user").unwrap();
        let caller = verifier.verify(&token, "user").unwrap();
        assert_eq!(caller.service, "race");
        assert_eq!(
            verifier.verify(&token, "race").unwrap_err(),
            AuthError::ServiceNotAllowed {
                caller: "race".into(),
                audience: "race".into()
            }
        );
    }

    #[test]
    fn other_keys_and_long_lives_are_refused() {
        let verifier = ServiceTokenVerifier::new(MeshKey::random());
        let forged = ServiceTokenIssuer::new("race", MeshKey::random())
            .token("user")
            .unwrap();
        assert!(matches!(
            verifier.verify(&forged, "user"),
            Err(AuthError::ServiceTokenInvalid(_))
        ));

        let key = MeshKey::random();
        let verifier = ServiceTokenVerifier::new(key.clone());
        let issuer = ServiceTokenIssuer::new("race", key);
        let now = jsonwebtoken::get_current_timestamp();
        let claims = |iat: u64, exp: u64| ServiceClaims {
            iss: MESH_ISSUER.into(),
            sub: "race".into(),
            aud: "user".into(),
            iat,
            exp,
            jti: "j".into(),
        };
        let long = issuer.sign(&claims(now, now + 3600)).unwrap();
        assert!(matches!(
            verifier.verify(&long, "user"),
            Err(AuthError::ServiceTokenInvalid(_))
        ));
        let expired = issuer.sign(&claims(now - 200, now - 100)).unwrap();
        assert_eq!(
            verifier.verify(&expired, "user").unwrap_err(),
            AuthError::ServiceTokenExpired
        );
    }
}
