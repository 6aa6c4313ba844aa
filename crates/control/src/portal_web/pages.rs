//! The page, its assets and sign-in. The assets are embedded in the binary (no build step, no
//! CDN); every response carries the security headers.

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::PortalWeb;
use super::errors::ApiError;
use super::session::set_cookie;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const APP_CSS: &str = include_str!("assets/app.css");
const REFUSED_HTML: &str = include_str!("assets/refused.html");

/// Headers on every response: the strict CSP (no inline script or style anywhere, framing only
/// by the configured origins), no MIME sniffing, no referrer (a sign-in URL must not leak),
/// nothing cached (pages show live data and one-time secrets).
pub async fn security_headers(
    State(portal): State<Arc<PortalWeb>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&portal.csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if portal.config.frame_ancestors.is_empty() {
        // For browsers that predate frame-ancestors.
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    response
}

pub async fn index() -> Html<&'static str> {
    Html(INDEX_HTML)
}

pub async fn script() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], APP_JS)
}

pub async fn style() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], APP_CSS)
}

pub async fn theme(State(portal): State<Arc<PortalWeb>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], portal.theme_css.clone())
}

pub async fn logo(State(portal): State<Arc<PortalWeb>>) -> Response {
    match &portal.logo {
        Some((bytes, kind)) => ([(header::CONTENT_TYPE, *kind)], bytes.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The content type of a logo file, by its extension.
pub fn image_type(path: &str) -> Option<&'static str> {
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => return None,
    })
}

/// Opens a sign-in link: consumes it, starts a session, sets its cookie and sends the browser
/// to the page. An unknown, expired or used link gets a refusal page and no session.
pub async fn sign_in(State(portal): State<Arc<PortalWeb>>, Path(token): Path<String>) -> Response {
    // Only values CreatePortalLink could have made reach the database.
    let plausible = token.starts_with(synap_db::portal_sessions::LINK_PREFIX)
        && token.len() <= 100
        && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let opened = if plausible {
        synap_db::portal_sessions::open_link(&portal.pool, &token, portal.session_ttl).await
    } else {
        Ok(None)
    };
    match opened {
        Ok(Some((session, sign_in))) => {
            tracing::info!(portal_id = %sign_in.portal_id, read_only = sign_in.read_only, "portal sign-in");
            let cookie = set_cookie(&session, portal.session_ttl.as_secs(), portal.config.cookie_same_site);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Ok(None) => {
            tracing::info!("portal sign-in refused: link unknown, expired or used");
            (StatusCode::FORBIDDEN, Html(REFUSED_HTML)).into_response()
        }
        Err(e) => ApiError::from(crate::errors::db(e)).into_response(),
    }
}

pub async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found")
}

pub async fn api_not_found() -> ApiError {
    ApiError::new(tonic::Code::NotFound, "no such API route")
}
