//! The web portal: a page customers use to manage their endpoints and see every delivery, on
//! its own listen address (`[portal]`). Its JSON API (`api`) calls the same service
//! implementation as the gRPC API, as the signed-in portal; the page itself is plain HTML, CSS
//! and JavaScript embedded in the binary (`pages`).

pub mod api;
pub mod config;
pub mod dto;
pub mod errors;
pub mod pages;
pub mod session;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use synap_db::Pool;
use tokio_util::sync::CancellationToken;

use crate::deliveries::DeliveryApi;
use crate::service::ControlApi;
pub use config::PortalConfig;

/// Largest request body the API takes: an endpoint form is a few KiB at most.
const MAX_BODY_BYTES: usize = 64 * 1024;

/// The portal's shared state.
pub struct PortalWeb {
    pub control: Arc<ControlApi>,
    pub deliveries: Arc<DeliveryApi>,
    pub pool: Pool,
    pub config: PortalConfig,
    /// `portal.public_url`'s origin: what a change's `Origin` header must be.
    pub origin: String,
    /// The `Content-Security-Policy` of every response.
    pub csp: String,
    pub session_ttl: Duration,
    /// The logo's bytes and content type, read at start.
    pub logo: Option<(Vec<u8>, &'static str)>,
    /// `/assets/theme.css`, built from the configured colours (checked to be colours, so
    /// nothing else reaches the stylesheet).
    pub theme_css: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PortalError {
    #[error(transparent)]
    Config(#[from] synap_runtime::ConfigError),
    #[error("cannot read portal.logo_file {path:?}: {source}")]
    Logo { path: String, source: std::io::Error },
    #[error("portal.logo_file {0:?} must end in .png, .svg, .jpg, .jpeg or .webp")]
    LogoType(String),
}

impl synap_runtime::Classify for PortalError {
    /// Every one is a configuration the operator must fix: starting again changes nothing.
    fn fault(&self) -> synap_runtime::Fault {
        synap_runtime::Fault::Permanent
    }
}

impl PortalWeb {
    pub fn new(
        config: PortalConfig,
        control: Arc<ControlApi>,
        deliveries: Arc<DeliveryApi>,
        pool: Pool,
    ) -> Result<Self, PortalError> {
        config.check()?;
        let origin = config.public_url()?.origin().ascii_serialization();
        let logo = match config.logo_file.as_str() {
            "" => None,
            path => {
                let kind = pages::image_type(path).ok_or_else(|| PortalError::LogoType(path.into()))?;
                let bytes =
                    std::fs::read(path).map_err(|source| PortalError::Logo { path: path.into(), source })?;
                Some((bytes, kind))
            }
        };
        let csp = format!(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors {}",
            config.frame_ancestors_source()
        );
        let theme_css = format!(
            ":root {{ --accent: {}; --bg: {}; --fg: {}; }}\n",
            config.accent_color, config.background_color, config.text_color
        );
        Ok(Self {
            control,
            deliveries,
            pool,
            origin,
            csp,
            session_ttl: Duration::from_secs(config.session_ttl_seconds),
            logo,
            theme_css,
            config,
        })
    }

    /// Every route: the page and its assets, sign-in, and the session-guarded API.
    pub fn router(self: Arc<Self>) -> Router {
        // Nested under /api: these paths are relative to it.
        let api = Router::new()
            .route("/session", get(api::session))
            .route("/signout", post(api::sign_out))
            .route("/event-types", get(api::event_types))
            .route("/endpoints", get(api::list_endpoints).post(api::create_endpoint))
            .route(
                "/endpoints/{id}",
                get(api::get_endpoint).patch(api::update_endpoint).delete(api::delete_endpoint),
            )
            .route("/endpoints/{id}/pause", post(api::pause_endpoint))
            .route("/endpoints/{id}/resume", post(api::resume_endpoint))
            .route("/endpoints/{id}/rotate-secret", post(api::rotate_secret))
            .route("/endpoints/{id}/test", post(api::test_send))
            .route("/endpoints/{id}/attempts", get(api::list_attempts))
            .route("/endpoints/{id}/resend", post(api::resend))
            .route("/endpoints/{id}/recover", post(api::recover))
            .route("/endpoints/{id}/health", get(api::health))
            .route("/attempts/{id}", get(api::get_attempt))
            .route("/test-filter", post(api::test_filter))
            .fallback(pages::api_not_found)
            .layer(axum::middleware::from_fn_with_state(self.clone(), session::require));
        Router::new()
            .route("/", get(pages::index))
            .route("/signin/{token}", get(pages::sign_in))
            .route("/assets/app.js", get(pages::script))
            .route("/assets/app.css", get(pages::style))
            .route("/assets/theme.css", get(pages::theme))
            .route("/assets/logo", get(pages::logo))
            .nest("/api", api)
            .fallback(pages::not_found)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .layer(axum::middleware::from_fn_with_state(self.clone(), pages::security_headers))
            .with_state(self)
    }
}

/// Serves the portal until `shutdown`.
pub async fn serve(
    portal: Arc<PortalWeb>,
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, public_url = %portal.config.public_url, "portal listening");
    axum::serve(listener, portal.router()).with_graceful_shutdown(shutdown.cancelled_owned()).await
}
