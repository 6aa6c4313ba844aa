//! The `[telemetry]` configuration section.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Address of the HTTP server for `/metrics`, `/healthz` and `/readyz`.
    pub listen_addr: String,
    /// OTLP/gRPC collector endpoint, e.g. `http://otel-collector:4317`. Empty: no export (trace
    /// ids are still made, logged and propagated).
    pub otlp_endpoint: String,
    /// Share of new traces exported, 0.0 to 1.0. A trace continued from a producer's
    /// `traceparent` follows the producer's sampling decision.
    pub sampling_ratio: f64,
    /// `service.name` of the exported spans; empty: the binary's name (`synap-ingest`, …).
    pub service_name: String,
    /// Send a W3C `traceparent` header with every webhook request.
    pub outbound_traceparent: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            listen_addr: "0.0.0.0:9090".into(),
            otlp_endpoint: String::new(),
            sampling_ratio: 1.0,
            service_name: String::new(),
            outbound_traceparent: true,
        }
    }
}
