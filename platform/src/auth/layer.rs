use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response, header::AUTHORIZATION};
use tower::{Layer, Service};

use super::service_token::{
    SERVICE_TOKEN_HEADER, ServiceCaller, ServiceTokenVerifier, is_internal_service, path_service,
    service_audience,
};
use super::{AuthError, TokenVerifier};
use crate::error::ApiError;

/// Paths that never need a token: probes and tooling must work without credentials.
const OPEN_PATH_PREFIXES: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Authenticates gRPC calls with bearer tokens; add it with `Server::builder().layer(..)`.
///
/// - a valid `authorization: Bearer <token>` puts the [`super::Caller`] into the request
///   extensions;
/// - an invalid one is answered with `UNAUTHENTICATED` (with `ErrorInfo`) and no handler runs;
/// - no `authorization` header: the call goes on without a caller (public RPCs such as sign-up);
/// - health and reflection calls pass untouched;
/// - internal services (`…InternalService`) take no bearer token at all: they need a valid
///   service token for their own service in `x-runmesh-service-token` (a
///   [`ServiceCaller`] in the extensions), else `UNAUTHENTICATED` (none, expired, forged) or
///   `PERMISSION_DENIED` (a token for another service). Without
///   [`with_service_tokens`](Self::with_service_tokens) every internal call is refused.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
    services: Option<Arc<ServiceTokenVerifier>>,
}

impl AuthLayer {
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self {
            verifier,
            services: None,
        }
    }

    /// Accepts service tokens checked by `services` on internal RPCs.
    pub fn with_service_tokens(mut self, services: Arc<ServiceTokenVerifier>) -> Self {
        self.services = Some(services);
        self
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: Arc::clone(&self.verifier),
            services: self.services.clone(),
        }
    }
}

/// The service [`AuthLayer`] wraps around a router.
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
    services: Option<Arc<ServiceTokenVerifier>>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // The clone may not be ready; the instance `poll_ready` was called on is.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);

        let path = request.uri().path();
        if OPEN_PATH_PREFIXES
            .iter()
            .any(|prefix| path.starts_with(prefix))
        {
            return Box::pin(inner.call(request));
        }
        if let Some(service) = path_service(path).filter(|service| is_internal_service(service)) {
            return match self.service_caller(service, request.headers()) {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    Box::pin(inner.call(request))
                }
                Err(err) => {
                    tracing::debug!(
                        path,
                        reason = err.reason(),
                        error = %err,
                        "refused an internal call"
                    );
                    Box::pin(std::future::ready(Ok(reject(err))))
                }
            };
        }
        let token = match bearer_token(request.headers()) {
            None => return Box::pin(inner.call(request)),
            Some(Ok(token)) => token.to_owned(),
            Some(Err(err)) => return Box::pin(std::future::ready(Ok(reject(err)))),
        };

        let verifier = Arc::clone(&self.verifier);
        Box::pin(async move {
            match verifier.verify(&token).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(err) => {
                    tracing::debug!(
                        path = request.uri().path(),
                        reason = err.reason(),
                        error = %err,
                        "rejected a bearer token"
                    );
                    Ok(reject(err))
                }
            }
        })
    }
}

impl<S> AuthService<S> {
    /// The verified caller of an internal RPC of `service`.
    fn service_caller(
        &self,
        service: &str,
        headers: &HeaderMap,
    ) -> Result<ServiceCaller, AuthError> {
        let mut values = headers.get_all(SERVICE_TOKEN_HEADER).iter();
        let token = values.next().ok_or(AuthError::ServiceTokenRequired)?;
        if values.next().is_some() {
            return Err(AuthError::ServiceTokenInvalid("sent twice".to_owned()));
        }
        let token = token
            .to_str()
            .map_err(|_| AuthError::ServiceTokenInvalid("not text".to_owned()))?;
        let services = self.services.as_ref().ok_or_else(|| {
            AuthError::ServiceTokenInvalid("this server accepts no service tokens".to_owned())
        })?;
        services.verify(token.trim(), service_audience(service))
    }
}

/// `None` without an `authorization` header; an error unless it is exactly one
/// `Bearer <token>` (scheme case-insensitive).
fn bearer_token(headers: &HeaderMap) -> Option<Result<&str, AuthError>> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return Some(Err(AuthError::InvalidAuthorizationHeader));
    }
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty() && !token.contains(' '));
    Some(token.ok_or(AuthError::InvalidAuthorizationHeader))
}

/// A trailers-only gRPC answer: the status travels in the response headers.
fn reject<B: Default>(err: AuthError) -> Response<B> {
    tonic::Status::from(ApiError::from(err)).into_http()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(AUTHORIZATION, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn reads_bearer_tokens() {
        assert_eq!(bearer_token(&headers(&[])), None);
        assert_eq!(
            bearer_token(&headers(&["Bearer abc.def.ghi"])),
            Some(Ok("abc.def.ghi"))
        );
        assert_eq!(bearer_token(&headers(&["bearer abc"])), Some(Ok("abc")));
    }

    #[test]
    fn rejects_other_authorization_values() {
        for bad in [
            &["Basic dXNlcjpwYXNz"][..],
            &["Bearer"],
            &["Bearer "],
            &["abc.def.ghi"],
            &["Bearer a b"],
            &["Bearer a", "Bearer b"],
        ] {
            assert_eq!(
                bearer_token(&headers(bad)),
                Some(Err(AuthError::InvalidAuthorizationHeader)),
                "{bad:?}"
            );
        }
    }
}
