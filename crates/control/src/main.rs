//! `synap-control`: the gRPC control API.

use anyhow::Context;
use clap::Parser;
use synap_control::auth::Authenticator;
use synap_control::config::ControlConfig;
use synap_control::service::ControlApi;
use synap_db::{DatabaseConfig, EncryptionConfig};
use synap_runtime::{ConfigError, ConfigSource, ServiceArgs, shutdown_token};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let database: DatabaseConfig = source.section("database")?;
    let encryption: EncryptionConfig = source.section("encryption")?;
    let config: ControlConfig = source.section("control")?;
    let telemetry = synap_telemetry::init(&source, "synap-control")?;
    if config.admin_token.len() < 16 {
        return Err(ConfigError::Rejected {
            key: "control.admin_token",
            reason: "must be set (SYNAP_CONTROL__ADMIN_TOKEN) to at least 16 characters".into(),
        }
        .into());
    }

    telemetry.serve().await?;
    let shutdown = shutdown_token();
    let pool = synap_db::connect(&database)?;
    synap_db::watch_reachable(&telemetry.readiness, &pool, &shutdown);

    let api = ControlApi { pool, secrets: encryption.secret_box()?, allow_http_urls: config.allow_http_urls };
    let listener = tokio::net::TcpListener::bind(&config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on control.listen_addr {:?}", config.listen_addr))?;
    synap_control::server::serve(api, Authenticator::new(&config.admin_token), listener, shutdown).await?;
    tracing::info!("control stopped");
    telemetry.shutdown();
    Ok(())
}
