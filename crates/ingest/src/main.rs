//! `synap-ingest`: consumes the inbound topic and writes validated events to their topics.

use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use synap_ingest::config::IngestConfig;
use synap_ingest::stage::Ingest;
use synap_kafka::{DeadLetters, KafkaConfig};
use synap_runtime::{ConfigError, ConfigSource, ServiceArgs, shutdown_token};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let kafka: KafkaConfig = source.section("kafka")?;
    let config: IngestConfig = source.section("ingest")?;
    config.validate().map_err(ConfigError::from)?;
    let telemetry = synap_telemetry::init(&source, "synap-ingest")?;
    telemetry.serve().await?;

    let shutdown = shutdown_token();
    let topics = kafka.topics();
    let stage = Arc::new(Ingest {
        producer: kafka.producer("synap-ingest")?,
        topics: topics.clone(),
        max_body_bytes: config.max_body_bytes,
        shutdown: shutdown.clone(),
    });
    synap_kafka::watch_reachable(&telemetry.readiness, &stage.producer, topics.inbound(), &shutdown);

    let consumer = kafka.consumer("ingest")?;
    let dead_letters = DeadLetters::new(stage.producer.clone(), topics.inbound_dead_letter(), "ingest");
    let handler_stage = stage.clone();
    synap_kafka::run_consumer(
        consumer,
        &[topics.inbound()],
        config.max_in_flight,
        shutdown,
        dead_letters,
        move |m, turn| handler_stage.clone().handle(m, turn),
    )
    .await
    .context("ingest consumer")?;
    // A producer that failed for good stopped the ingest: exit with its error.
    let flushed = synap_kafka::flush(&stage.producer);
    tracing::info!("ingest stopped");
    telemetry.shutdown();
    Ok(flushed?)
}
