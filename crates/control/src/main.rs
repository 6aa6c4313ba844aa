//! `synap-control`: the gRPC control API.

use anyhow::Context;
use clap::Parser;
use synap_control::auth::Authenticator;
use synap_control::config::ControlConfig;
use synap_control::service::ControlApi;
use synap_db::{DatabaseConfig, EncryptionConfig};
use synap_kafka::KafkaConfig;
use synap_runtime::{ConfigSource, ServiceArgs, shutdown_token};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let database: DatabaseConfig = source.section("database")?;
    let encryption: EncryptionConfig = source.section("encryption")?;
    let kafka: KafkaConfig = source.section("kafka")?;
    let config: ControlConfig = source.section("control")?;
    let telemetry = synap_telemetry::init(&source, "synap-control")?;
    config.check()?;

    telemetry.serve().await?;
    let shutdown = shutdown_token();
    let pool = synap_db::connect(&database)?;
    synap_db::watch_reachable(&telemetry.readiness, &pool, &shutdown);

    let api = ControlApi::new(&config, pool.clone(), encryption.secret_box()?, &kafka)?;
    let listener = tokio::net::TcpListener::bind(&config.listen_addr)
        .await
        .with_context(|| format!("cannot listen on control.listen_addr {:?}", config.listen_addr))?;
    synap_control::server::serve(api, Authenticator::new(&config.admin_token, pool), listener, shutdown)
        .await?;
    tracing::info!("control stopped");
    telemetry.shutdown();
    Ok(())
}
