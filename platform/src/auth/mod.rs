//! Bearer-token authentication for every service but the issuer.
//!
//! svc-user signs short-lived access tokens ([`AccessClaims`], asymmetric JWT with a `kid`) and
//! publishes its public keys as a JWKS. Every other service verifies tokens locally with a
//! [`TokenVerifier`], which resolves `kid`s through a cached JWKS from a [`KeySource`].
//! [`AuthLayer`] wraps a tonic server: a valid token puts a [`Caller`] into the request, an
//! invalid one is answered with `UNAUTHENTICATED` before any handler runs, and a call without a
//! token goes on anonymously (handlers that need a caller use [`require_caller`]).
//!
//! Internal services (`…InternalService`) are for runmesh components only and take service
//! tokens instead ([`service_token`]): short-lived HS256 JWTs signed with the mesh key, in
//! `x-runmesh-service-token`.

mod caller;
mod error;
mod keys;
mod layer;
pub mod service_token;
mod verifier;

pub use caller::{AccessClaims, Caller, Role, UnknownRole, optional_caller, require_caller};
pub use error::AuthError;
pub use keys::{KeySource, StaticKeySource};
pub use layer::{AuthLayer, AuthService};
pub use service_token::{
    MeshKey, MeshKeyError, SERVICE_TOKEN_HEADER, ServiceCaller, ServiceCredentials,
    ServiceTokenIssuer, ServiceTokenVerifier, is_internal_service, optional_service_caller,
    service_audience,
};
pub use verifier::{SigningAlgorithm, TokenVerifier, VerifierConfig};
