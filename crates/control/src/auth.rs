//! Bearer-token authentication of every call: the admin token from configuration, or a portal
//! API key (looked up by its hash, so revocation takes effect on the next call).

use std::convert::Infallible;
use std::sync::Arc;

use synap_db::Pool;
use tonic::body::Body;
use tonic::codegen::http::{HeaderMap, Request as HttpRequest, Response as HttpResponse};
use tonic::codegen::{BoxFuture, Context, Poll, Service};
use tonic::server::NamedService;
use tonic::{Request, Status};

use crate::errors::db;

/// Who made a call. Every authenticated request carries one in its extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The deployment's admin token: may do everything.
    Admin,
    /// A portal API key: sees and changes only that portal's data.
    Portal(String),
}

impl Caller {
    /// The caller of an authenticated request.
    pub fn of<T>(request: &Request<T>) -> Result<&Caller, Status> {
        request.extensions().get::<Caller>().ok_or_else(|| Status::unauthenticated("no caller"))
    }

    /// Whether the caller may see and change `portal_id`'s data. Callers that may not get
    /// NOT_FOUND from the RPCs, never a hint that the data exists.
    pub fn can_access(&self, portal_id: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Portal(own) => own == portal_id,
        }
    }

    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// PERMISSION_DENIED unless the caller is the admin: for the RPCs that manage portals and
    /// keys, whose existence is no secret.
    pub fn require_admin(&self) -> Result<(), Status> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Status::permission_denied("this call needs the admin token"))
        }
    }
}

/// Checks `authorization: Bearer <token>` against the admin token and the portal API keys.
#[derive(Clone)]
pub struct Authenticator {
    admin_token: Arc<str>,
    /// `None` only in unit tests: admin token alone.
    keys: Option<Pool>,
}

impl Authenticator {
    pub fn new(admin_token: &str, keys: Pool) -> Self {
        Self { admin_token: admin_token.into(), keys: Some(keys) }
    }

    #[cfg(test)]
    fn admin_only(admin_token: &str) -> Self {
        Self { admin_token: admin_token.into(), keys: None }
    }

    /// Who the bearer token in `headers` belongs to.
    pub async fn caller(&self, headers: &HeaderMap) -> Result<Caller, Status> {
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>` metadata"))?;
        if constant_time_eq(token.as_bytes(), self.admin_token.as_bytes()) {
            return Ok(Caller::Admin);
        }
        if token.starts_with(synap_db::api_keys::TOKEN_PREFIX)
            && let Some(pool) = &self.keys
            && let Some(portal_id) = synap_db::api_keys::authenticate(pool, token).await.map_err(db)?
        {
            return Ok(Caller::Portal(portal_id));
        }
        Err(Status::unauthenticated("invalid token"))
    }

    /// Wraps a gRPC service so that each call is authenticated first and carries its
    /// [`Caller`]. Health and reflection stay unwrapped, so probes and `grpcurl list` need no
    /// token.
    pub fn wrap<S>(&self, inner: S) -> Authenticated<S> {
        Authenticated { inner, auth: self.clone() }
    }
}

/// A gRPC service behind [`Authenticator`]: unauthenticated calls never reach it.
#[derive(Clone)]
pub struct Authenticated<S> {
    inner: S,
    auth: Authenticator,
}

impl<S: NamedService> NamedService for Authenticated<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<HttpRequest<Body>> for Authenticated<S>
where
    S: Service<HttpRequest<Body>, Response = HttpResponse<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = HttpResponse<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: HttpRequest<Body>) -> Self::Future {
        // The clone is not ready; the instance that is takes the call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            match auth.caller(request.headers()).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(status) => Ok(status.into_http()),
            }
        })
    }
}

/// Compares without an early exit, so timing reveals nothing about the token.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn call(token: Option<&str>) -> Result<Caller, tonic::Code> {
        let mut headers = HeaderMap::new();
        if let Some(t) = token {
            headers.insert("authorization", t.parse().unwrap());
        }
        Authenticator::admin_only("s3cret").caller(&headers).await.map_err(|s| s.code())
    }

    #[tokio::test]
    async fn bearer_tokens() {
        assert_eq!(call(Some("Bearer s3cret")).await, Ok(Caller::Admin));
        assert_eq!(call(Some("Bearer s3cre")).await, Err(tonic::Code::Unauthenticated));
        assert_eq!(call(Some("Bearer sk_unknown")).await, Err(tonic::Code::Unauthenticated));
        assert_eq!(call(Some("s3cret")).await, Err(tonic::Code::Unauthenticated));
        assert_eq!(call(None).await, Err(tonic::Code::Unauthenticated));
    }

    #[test]
    fn portal_callers_see_only_their_portal() {
        let caller = Caller::Portal("a".into());
        assert!(caller.can_access("a") && !caller.can_access("b"));
        assert_eq!(caller.require_admin().unwrap_err().code(), tonic::Code::PermissionDenied);
        assert!(Caller::Admin.can_access("b") && Caller::Admin.require_admin().is_ok());
    }
}
