//! `synap-sender`: consumes the deliveries topic and POSTs each to its endpoint.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use synap_db::{DatabaseConfig, EncryptionConfig};
use synap_kafka::KafkaConfig;
use synap_runtime::{ConfigSource, ServiceArgs, shutdown_token};
use synap_sender::config::SenderConfig;
use synap_sender::stage::Sender;
use synap_sender::targets::TargetCache;
use synap_telemetry::metrics::delay_tier;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let kafka: KafkaConfig = source.section("kafka")?;
    let database: DatabaseConfig = source.section("database")?;
    let encryption: EncryptionConfig = source.section("encryption")?;
    let config: SenderConfig = source.section("sender")?;
    let telemetry = synap_telemetry::init(&source, "synap-sender")?;
    telemetry.serve().await?;

    let shutdown = shutdown_token();
    let topics = kafka.topics();
    let pool = synap_db::connect(&database)?;
    let secrets = encryption.secret_box()?;
    // Every tier shows on the first scrape, at 0, so that alerts and dashboards see it.
    for ms in &config.retry_delays_ms {
        synap_telemetry::metrics().retries_pending(&delay_tier(Duration::from_millis(*ms))).set(0);
    }
    let stage = Arc::new(Sender {
        producer: kafka.producer("synap-sender")?,
        http: synap_sender::attempt::client(
            Duration::from_millis(config.request_timeout_ms),
            Duration::from_millis(config.connect_timeout_ms),
        )
        .context("HTTP client")?,
        topics: topics.clone(),
        targets: TargetCache::new(pool.clone(), secrets, Duration::from_millis(config.cache_ttl_ms)),
        retry_delays: config.retry_delays_ms.iter().map(|ms| Duration::from_millis(*ms)).collect(),
        shutdown: shutdown.clone(),
    });
    synap_kafka::watch_reachable(&telemetry.readiness, &stage.producer, topics.deliveries(), &shutdown);
    synap_db::watch_reachable(&telemetry.readiness, &pool, &shutdown);

    let consumer = kafka.consumer("sender")?;
    let handler_stage = stage.clone();
    synap_kafka::run_consumer(consumer, &[topics.deliveries()], config.max_in_flight, shutdown, move |m| {
        handler_stage.clone().handle(m)
    })
    .await
    .context("sender consumer")?;
    synap_kafka::flush(&stage.producer);
    tracing::info!("sender stopped");
    telemetry.shutdown();
    Ok(())
}
