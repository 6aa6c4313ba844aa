//! Bearer-token authentication of every call.

use tonic::{Request, Status};

/// Checks `authorization: Bearer <token>` against the admin token.
#[derive(Clone)]
pub struct Authenticator {
    admin_token: std::sync::Arc<str>,
}

impl Authenticator {
    pub fn new(admin_token: &str) -> Self {
        Self { admin_token: admin_token.into() }
    }

    pub fn check<T>(&self, request: Request<T>) -> Result<Request<T>, Status> {
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>` metadata"))?;
        if constant_time_eq(token.trim().as_bytes(), self.admin_token.as_bytes()) {
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
