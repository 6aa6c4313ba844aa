//! `synap-router`: consumes the event-type topics and writes one delivery per matching
//! subscription.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use synap_db::DatabaseConfig;
use synap_kafka::{DeadLetters, KafkaConfig};
use synap_router::config::RouterConfig;
use synap_router::routes::RouteCache;
use synap_router::stage::Router;
use synap_runtime::{ConfigError, ConfigSource, ServiceArgs, shutdown_token};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let kafka: KafkaConfig = source.section("kafka")?;
    let database: DatabaseConfig = source.section("database")?;
    let config: RouterConfig = source.section("router")?;
    config.validate().map_err(ConfigError::from)?;
    let telemetry = synap_telemetry::init(&source, "synap-router")?;
    telemetry.serve().await?;

    let shutdown = shutdown_token();
    let topics = kafka.topics();
    let pool = synap_db::connect(&database)?;
    let changes = synap_db::ChangeFeed::start(&database, "synap-router", shutdown.clone())?;
    let stage = Arc::new(Router {
        producer: kafka.producer("synap-router")?,
        topics: topics.clone(),
        routes: RouteCache::new(
            pool.clone(),
            Duration::from_millis(config.cache_ttl_ms),
            config.cache_capacity,
            &changes,
            &shutdown,
        ),
        shutdown: shutdown.clone(),
    });
    synap_kafka::watch_reachable(&telemetry.readiness, &stage.producer, topics.deliveries(), &shutdown);
    synap_db::watch_reachable(&telemetry.readiness, &pool, &shutdown);

    let consumer = kafka.consumer("router")?;
    let dead_letters = DeadLetters::new(stage.producer.clone(), topics.events_dead_letter(), "router");
    let handler_stage = stage.clone();
    synap_kafka::run_consumer(
        consumer,
        &topics.all_events(),
        config.max_in_flight,
        shutdown,
        dead_letters,
        move |m, turn| handler_stage.clone().handle(m, turn),
    )
    .await
    .context("router consumer")?;
    // A producer that failed for good stopped the router: exit with its error.
    let flushed = synap_kafka::flush(&stage.producer);
    tracing::info!("router stopped");
    telemetry.shutdown();
    Ok(flushed?)
}
