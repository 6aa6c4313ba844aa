//! Bearer-token authentication of every call.

use tonic::{Request, Status};

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
}

/// Checks `authorization: Bearer <token>` against the admin token.
#[derive(Clone)]
pub struct Authenticator {
    admin_token: std::sync::Arc<str>,
}

impl Authenticator {
    pub fn new(admin_token: &str) -> Self {
        Self { admin_token: admin_token.into() }
    }

    /// Authenticates the call and records who made it as a [`Caller`] in its extensions.
    pub fn check<T>(&self, mut request: Request<T>) -> Result<Request<T>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>` metadata"))?;
        if constant_time_eq(token.trim().as_bytes(), self.admin_token.as_bytes()) {
            request.extensions_mut().insert(Caller::Admin);
            Ok(request)
        } else {
            Err(Status::unauthenticated("invalid token"))
        }
    }
}

/// Compares without an early exit, so timing reveals nothing about the token.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(token: Option<&str>) -> Result<(), tonic::Code> {
        let mut request = Request::new(());
        if let Some(t) = token {
            request.metadata_mut().insert("authorization", t.parse().unwrap());
        }
        Authenticator::new("s3cret").check(request).map(|_| ()).map_err(|s| s.code())
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(call(Some("Bearer s3cret")), Ok(()));
        assert_eq!(call(Some("Bearer s3cre")), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(Some("s3cret")), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(None), Err(tonic::Code::Unauthenticated));
    }
}
