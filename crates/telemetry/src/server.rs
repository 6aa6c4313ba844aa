//! The HTTP server every service runs next to its work: `/metrics` (Prometheus text format),
//! `/healthz` (the process is alive) and `/readyz` (see [`Readiness`]).

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::Readiness;

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on telemetry.listen_addr {addr:?}: {source}")]
pub struct ListenError {
    addr: String,
    source: std::io::Error,
}

/// Binds `addr` and serves until the process exits: `/readyz` must keep answering (503) while
/// the service drains. Binding happens before this returns, so a port already in use stops the
/// service at start with a message naming the key.
pub async fn serve(addr: &str, readiness: Readiness) -> Result<(), ListenError> {
    let listener =
        TcpListener::bind(addr).await.map_err(|source| ListenError { addr: addr.to_owned(), source })?;
    let local = listener.local_addr().map_err(|source| ListenError { addr: addr.to_owned(), source })?;
    tracing::info!(addr = %local, "serving /metrics, /healthz and /readyz");
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(readiness);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "telemetry server failed");
        }
    });
    Ok(())
}

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        crate::metrics::encode(),
    )
}

async fn ready(State(readiness): State<Readiness>) -> impl IntoResponse {
    match readiness.status() {
        Ok(()) => (StatusCode::OK, "ready\n".to_owned()),
        Err(reasons) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", reasons.join("; "))),
    }
}
