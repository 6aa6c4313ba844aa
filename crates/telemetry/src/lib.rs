//! Telemetry for every Synap service, in one place: logs (JSON or text, with trace and event
//! ids), OpenTelemetry traces exported over OTLP, the Prometheus metrics, and the HTTP server for
//! `/metrics`, `/healthz` and `/readyz`.

pub mod config;
mod json_fields;
pub mod metrics;
pub mod propagation;
pub mod readiness;
pub mod server;

pub use config::TelemetryConfig;
pub use metrics::{metrics, status_class};
pub use propagation::{attempt_span, continue_trace, inject_http, inject_kafka, trace_headers};
pub use readiness::Readiness;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use synap_runtime::{ConfigError, ConfigSource, LogConfig, LogFormat};
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot set up the OTLP exporter for telemetry.otlp_endpoint {endpoint:?}: {reason}")]
    Exporter { endpoint: String, reason: String },
    #[error(transparent)]
    Listen(#[from] server::ListenError),
}

/// What [`init`] set up; keep it until the process ends and call [`Telemetry::shutdown`] last.
pub struct Telemetry {
    pub config: TelemetryConfig,
    pub readiness: Readiness,
    provider: SdkTracerProvider,
}

/// Reads `[log]` and `[telemetry]`, installs logging and tracing for `service` (the binary's
/// name), and registers the build metric. Call once, at start, inside the Tokio runtime.
pub fn init(source: &ConfigSource, service: &str) -> Result<Telemetry, TelemetryError> {
    let log: LogConfig = source.section("log")?;
    let config: TelemetryConfig = source.section("telemetry")?;
    if !(0.0..=1.0).contains(&config.sampling_ratio) {
        return Err(ConfigError::Rejected {
            key: "telemetry.sampling_ratio",
            reason: format!("must be between 0.0 and 1.0, not {}", config.sampling_ratio),
        }
        .into());
    }
    let provider = tracer_provider(&config, service)?;
    install_subscriber(&log, &provider);
    propagation::set_outbound_traceparent(config.outbound_traceparent);
    metrics().announce(service);
    Ok(Telemetry { config, readiness: Readiness::new(), provider })
}

/// Spans are always made (their ids go into logs and outgoing headers); they are exported only
/// when an endpoint is configured.
pub fn tracer_provider(config: &TelemetryConfig, service: &str) -> Result<SdkTracerProvider, TelemetryError> {
    let name = if config.service_name.is_empty() { service } else { &config.service_name };
    let mut builder = SdkTracerProvider::builder()
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio))))
        .with_resource(Resource::builder().with_service_name(name.to_owned()).build());
    if !config.otlp_endpoint.is_empty() {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&config.otlp_endpoint)
            .build()
            .map_err(|e| TelemetryError::Exporter {
                endpoint: config.otlp_endpoint.clone(),
                reason: e.to_string(),
            })?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

fn install_subscriber(log: &LogConfig, provider: &SdkTracerProvider) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.filter));
    // Colours only on a terminal: escape codes in a log file or collector are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    subscriber(log.format, filter, provider, std::io::stderr, ansi).init();
}

/// The logging and tracing stack every service installs: log lines in `format` through `filter`
/// to `writer`, and trace spans to `provider`. Public so that `synap-bench telemetry-cost`
/// measures exactly what the services run.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    provider: &SdkTracerProvider,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync + 'static
where
    W: for<'w> fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let fmt = fmt::layer().with_writer(writer).with_ansi(ansi);
    let fmt = match format {
        // The current span's fields (event id, trace id) go on every line.
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(json_fields::AppendingJsonFields)
            .boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    // Only our own spans become trace spans: the exporter's gRPC client (tonic, h2, hyper) would
    // otherwise trace its own exports.
    let own = Targets::new().with_target("synap", LevelFilter::INFO);
    // Per-span extras cost every delivery CPU and say nothing a webhook trace needs, so they are
    // off: busy/idle timings (a clock read at every poll), thread and source-location attributes,
    // and activating the OpenTelemetry context at every poll (propagation reads the span's own
    // context: `propagation`).
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("synap"))
        .with_tracked_inactivity(false)
        .with_threads(false)
        .with_location(false)
        .with_context_activation(false)
        .with_filter(own);
    tracing_subscriber::registry().with(otel).with(fmt.with_filter(filter))
}

impl Telemetry {
    /// Starts the `/metrics`, `/healthz`, `/readyz` server on `telemetry.listen_addr`.
    pub async fn serve(&self) -> Result<(), TelemetryError> {
        Ok(server::serve(&self.config.listen_addr, self.readiness.clone()).await?)
    }

    /// Exports the spans still buffered. Call last.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "trace export incomplete at shutdown");
        }
    }
}
