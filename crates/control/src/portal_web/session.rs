//! Who a portal request comes from: the session cookie, checked on every `/api` call, and the
//! CSRF defences every change must pass (the session's token in `X-CSRF-Token`, and an
//! `Origin` equal to the portal's own). A read-only session may only read.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::PortalWeb;
use super::config::SameSite;
use super::errors::ApiError;
use crate::auth::{Caller, constant_time_eq};

/// The session cookie's name.
pub const COOKIE: &str = "synap_portal_session";
/// The header a change carries the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in browser: one portal, maybe read-only. Handlers find it in the request's
/// extensions.
#[derive(Clone, Debug)]
pub struct Session {
    pub portal_id: String,
    pub read_only: bool,
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The CSRF token of this session.
    pub csrf: String,
}

impl Session {
    /// The caller the service layer sees: exactly what a portal API key of this portal is.
    pub fn caller(&self) -> Caller {
        Caller::Portal(self.portal_id.clone())
    }

    /// A service request carrying this session's caller.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.extensions_mut().insert(self.caller());
        request
    }
}

/// The CSRF token of a session: derived from the cookie value, so nothing more is stored, and
/// unknowable to a page that cannot read the HttpOnly cookie. A different label than the stored
/// hash, so the database does not reveal it either.
pub fn csrf_token(session_token: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(b"synap-portal-csrf\0");
    digest.update(session_token.as_bytes());
    URL_SAFE_NO_PAD.encode(digest.finalize())
}

/// The session cookie's value in `headers`, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// `Set-Cookie` for a new session: HttpOnly (no script reads it), Secure, the configured
/// SameSite, and `Partitioned` with `None` (Chromium keeps a third-party cookie in an iframe
/// only partitioned by the embedding site).
pub fn set_cookie(token: &str, max_age_seconds: u64, same_site: SameSite) -> String {
    let same_site = match same_site {
        SameSite::Strict => "Strict",
        SameSite::Lax => "Lax",
        SameSite::None => "None; Partitioned",
    };
    format!("{COOKIE}={token}; HttpOnly; Secure; Path=/; Max-Age={max_age_seconds}; SameSite={same_site}")
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(same_site: SameSite) -> String {
    set_cookie("", 0, same_site)
}

/// Middleware of every `/api` route: loads the session, and for anything but a read checks
/// read-only, Origin and the CSRF token, in that order of cheapness to an attacker's guess.
pub async fn require(State(portal): State<Arc<PortalWeb>>, mut request: Request, next: Next) -> Response {
    match check(&portal, &mut request).await {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

async fn check(portal: &PortalWeb, request: &mut Request) -> Result<(), ApiError> {
    let token = cookie(request.headers()).ok_or_else(ApiError::unauthenticated)?.to_owned();
    // Only values this portal could have issued reach the database.
    if !token.starts_with(synap_db::portal_sessions::SESSION_PREFIX) || token.len() > 100 {
        return Err(ApiError::unauthenticated());
    }
    let sign_in = synap_db::portal_sessions::session(&portal.pool, &token)
        .await
        .map_err(|e| ApiError::from(crate::errors::db(e)))?
        .ok_or_else(ApiError::unauthenticated)?;
    let session = Session {
        portal_id: sign_in.portal_id,
        read_only: sign_in.read_only,
        expires_at: sign_in.expires_at,
        csrf: csrf_token(&token),
    };
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    // Nested under /api, the router sees the path without the prefix.
    // Signing out and trying a filter change nothing: a read-only sign-in may do both (still with
    // the Origin and CSRF checks of every POST).
    let changes_nothing =
        matches!(request.uri().path(), "/signout" | "/api/signout" | "/test-filter" | "/api/test-filter");
    if !reads {
        if session.read_only && !changes_nothing {
            return Err(ApiError::forbidden("this sign-in is read-only: it cannot change anything"));
        }
        let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok());
        if origin != Some(portal.origin.as_str()) {
            return Err(ApiError::forbidden("a change must come from the portal's own page (Origin)"));
        }
        let csrf = request.headers().get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !constant_time_eq(csrf, session.csrf.as_bytes()) {
            return Err(ApiError::forbidden("missing or wrong X-CSRF-Token: reload the page"));
        }
    }
    request.extensions_mut().insert(SessionToken(token));
    request.extensions_mut().insert(session);
    Ok(())
}

/// The session's cookie value, for sign-out.
#[derive(Clone)]
pub struct SessionToken(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others_and_set_safely() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=1; synap_portal_session=ps_x; b=2".parse().unwrap());
        assert_eq!(cookie(&headers), Some("ps_x"));
        headers.insert(header::COOKIE, "synap_portal_sessionx=ps_y".parse().unwrap());
        assert_eq!(cookie(&headers), None);
        let set = set_cookie("ps_x", 60, SameSite::None);
        for part in ["HttpOnly", "Secure", "Path=/", "Max-Age=60", "SameSite=None", "Partitioned"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(set_cookie("ps_x", 60, SameSite::Strict).ends_with("SameSite=Strict"));
        assert!(clear_cookie(SameSite::Lax).contains("Max-Age=0"));
    }

    #[test]
    fn csrf_tokens_differ_per_session() {
        assert_ne!(csrf_token("ps_a"), csrf_token("ps_b"));
        assert_eq!(csrf_token("ps_a"), csrf_token("ps_a"));
    }
}
