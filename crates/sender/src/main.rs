//! `synap-sender`: consumes the deliveries topic and POSTs each to its endpoint; runs the retry
//! tiers and the attempt-log writer beside it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use synap_db::{AttemptsConfig, DatabaseConfig, EncryptionConfig};
use synap_kafka::provision::TopicLayout;
use synap_kafka::{DeadLetters, KafkaConfig};
use synap_outbound::{OutboundConfig, Policy};
use synap_runtime::{ConfigError, ConfigSource, ServiceArgs, shutdown_token};
use synap_sender::breaker::Breakers;
use synap_sender::circuit_log::CircuitLog;
use synap_sender::config::SenderConfig;
use synap_sender::io::Live;
use synap_sender::lanes::Lanes;
use synap_sender::limits::Limits;
use synap_sender::log::LogWriter;
use synap_sender::operator::OperatorEvents;
use synap_sender::schedule::{RetrySchedule, tier_label};
use synap_sender::stage::Sender;
use synap_sender::targets::TargetCache;
use synap_sender::tiers::{HOLDING_TIER, Tier};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = ServiceArgs::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let kafka: KafkaConfig = source.section("kafka")?;
    let layout: TopicLayout = source.section("topics")?;
    let database: DatabaseConfig = source.section("database")?;
    let encryption: EncryptionConfig = source.section("encryption")?;
    let outbound: OutboundConfig = source.section("outbound")?;
    let config: SenderConfig = source.section("sender")?;
    let secrets = encryption.secret_box()?;
    let retention: AttemptsConfig = source.section("attempts")?;
    let telemetry = synap_telemetry::init(&source, "synap-sender")?;
    telemetry.readiness.require(synap_db::keyring::READINESS);
    telemetry.serve().await?;
    let policy = Policy::from_config(&outbound)
        .map_err(|e| ConfigError::Rejected { key: e.config_key(), reason: e.to_string() })?;
    config.validate().map_err(ConfigError::from)?;
    retention.validate().map_err(ConfigError::from)?;

    let shutdown = shutdown_token();
    let topics = kafka.topics();
    // The breaker's cool-down is a tier too: deliveries to an open circuit wait there for its probe.
    let schedule = RetrySchedule::new(
        &config.retry_delays_ms,
        config.retry_jitter,
        Duration::from_millis(config.max_retry_after_ms),
    )
    .with_tier(Duration::from_millis(config.breaker_cooldown_ms));
    // The tiers follow the configured schedule, so the sender creates any that are missing.
    let tier_topics: Vec<String> =
        schedule.tiers().iter().map(|t| topics.retry_tier(&tier_label(*t))).collect();
    let wanted: Vec<(String, i32)> =
        tier_topics.iter().map(|t| (t.clone(), layout.delivery_partitions)).collect();
    synap_kafka::provision::ensure(&kafka, &layout, &wanted)
        .await
        .context("creating the retry tier topics")?;

    let pool = synap_db::connect(&database)?;
    // Before consuming anything: with a wrong key every delivery would fail to open its secrets.
    synap_db::keyring::check_at_start(&pool, &secrets, &telemetry.readiness, &shutdown)
        .await
        .context("checking the encryption keys against the database")?;
    if shutdown.is_cancelled() {
        return Ok(());
    }
    // Its records go mostly to the retry tiers, whose consumers hold what they read.
    let producer = kafka.holding_producer("synap-sender")?;
    let webhook = match config.operator_webhook_url.as_str() {
        "" => None,
        url => Some((url.to_owned(), OperatorEvents::webhook_client().context("operator webhook client")?)),
    };
    let operator = OperatorEvents {
        producer: producer.clone(),
        topic: topics.operator_events(),
        webhook,
        shutdown: shutdown.clone(),
    };
    let dead_letters = DeadLetters::new(producer.clone(), topics.deliveries_dead_letter(), "sender");
    // Started first: the hot path stores attempt rows through it.
    let writer = LogWriter {
        pool: pool.clone(),
        operator: operator.clone(),
        dead_letters: dead_letters.clone(),
        attempts_topic: topics.attempts(),
        disable_after: Duration::from_millis(config.disable_after_failing_ms),
        batch_size: config.log_batch_size.max(1),
        batch_wait: Duration::from_millis(config.log_batch_wait_ms),
        shutdown: shutdown.clone(),
    };
    let (queue, batcher) = writer.start(config.log_batch_size.max(1) * 8);
    let (circuits, circuit_log) = CircuitLog::start(pool.clone(), shutdown.clone());
    let io = Live {
        producer: producer.clone(),
        http: synap_sender::attempt::client(Duration::from_millis(config.connect_timeout_ms), policy.clone())
            .context("HTTP client")?,
        policy,
        requests: Semaphore::new(config.max_in_flight.max(1)),
        topics: topics.clone(),
        tier_topics: schedule.tiers().iter().copied().zip(tier_topics.iter().cloned()).collect(),
        targets: TargetCache::new(
            pool.clone(),
            secrets,
            Duration::from_millis(config.cache_ttl_ms),
            config.target_cache_bytes(),
            &synap_db::ChangeFeed::start(&database, "synap-sender", shutdown.clone())?,
            &shutdown,
        ),
        operator: operator.clone(),
        dead_letters: dead_letters.clone(),
        log: queue.clone(),
        log_direct_wait: Duration::from_millis(config.log_direct_wait_ms),
        circuits,
        shutdown: shutdown.clone(),
    };
    let longest_wait = schedule.longest_delay();
    let stall = Duration::from_millis(config.slot_wait_ms);
    // A delivery turned away from a full queue is back after the first tier's delay: it waits in
    // memory only if it would get a slot sooner. At least the stall time, which a delivery may
    // wait anyway: a tier shorter than that (0 s, say) would only send it round and round.
    let horizon = schedule.shortest_tier().unwrap_or_default().max(stall);
    let stage = Arc::new(Sender {
        io,
        schedule,
        limits: Limits::new(stall, horizon, config.max_waiting_per_subscription),
        breakers: Breakers::new(config.breaker_failures, Duration::from_millis(config.breaker_cooldown_ms)),
        lanes: Lanes::default(),
        config: config.clone(),
        shutdown: shutdown.clone(),
    });

    // Circuits nothing is sent to any more are set aside, for as long as the sender runs.
    let (sweeping, token) = (stage.clone(), shutdown.clone());
    tokio::spawn(async move { synap_sender::breaker::keep_swept(&sweeping.breakers, token).await });
    synap_kafka::watch_reachable(&telemetry.readiness, &producer, topics.deliveries(), &shutdown);
    synap_db::watch_reachable(&telemetry.readiness, &pool, &shutdown);
    tokio::spawn(synap_sender::disabled_gauge::run(pool.clone(), shutdown.clone()));

    let mut tasks = JoinSet::new();
    let deliveries = kafka.consumer("sender")?;
    let (delivery_topics, handler_stage, token, letters) =
        (vec![topics.deliveries()], stage.clone(), shutdown.clone(), dead_letters.clone());
    tasks.spawn(async move {
        synap_kafka::run_consumer(
            deliveries,
            &delivery_topics,
            config.max_buffered.max(1),
            token,
            letters,
            move |m, turn| handler_stage.clone().handle(m, turn.tenure().clone()),
        )
        .await
        .context("deliveries consumer")
    });
    for (delay, topic) in stage.schedule.tiers().iter().copied().zip(tier_topics) {
        let group = format!("sender-{}", topic.trim_start_matches(&kafka.topic_prefix));
        // A tier of a minute or more holds its records long after reading them: reading far
        // ahead of those only fills memory, and it may hold its limit of retries for hours, so
        // it reads each partition from a queue of its own, to serve its group's rebalances
        // meanwhile. The shorter tiers are hot paths (deliveries turned away from a full queue,
        // open circuits), whose records are handed back within seconds, which serves them.
        let consumer = if delay >= HOLDING_TIER {
            kafka.holding_consumer(&group, layout.delivery_partitions)?
        } else {
            kafka.background_consumer(&group)?
        };
        let tier = Tier {
            producer: producer.clone(),
            deliveries_topic: topics.deliveries(),
            delay,
            longest_wait,
            shutdown: shutdown.clone(),
        };
        // Every tier shows on the first scrape, at 0, so that alerts and dashboards see it.
        synap_telemetry::metrics().retries_pending(&tier_label(delay)).set(0);
        let (token, letters) = (shutdown.clone(), dead_letters.clone());
        tasks.spawn(async move {
            synap_kafka::run_consumer(
                consumer,
                std::slice::from_ref(&topic),
                config.retry_tier_max_in_flight,
                token,
                letters,
                move |m, turn| tier.clone().handle(m, turn.tenure().clone()),
            )
            .await
            .with_context(|| format!("retry tier consumer {topic}"))
        });
    }
    // Partitions ahead, expired ones dropped: one replica at a time, under an advisory lock.
    let maintenance =
        tokio::spawn(synap_db::attempt_partitions::keep(pool.clone(), retention, shutdown.clone()));
    let attempts = kafka.background_consumer("attempt-log")?;
    let (attempt_topics, token) = (vec![topics.attempts()], shutdown.clone());
    tasks.spawn(async move {
        // Enough records in flight to fill a few batches while one is being written.
        let in_flight = config.log_batch_size.max(1) * 4;
        synap_kafka::run_consumer(
            attempts,
            &attempt_topics,
            in_flight,
            token,
            dead_letters,
            move |m, _turn| queue.clone().handle(m),
        )
        .await
        .context("attempt log consumer")
    });

    // The attempt-log writer is critical: without it no attempt is stored, and the attempts
    // consumer could only wait. Its end before shutdown (a panic) stops the process.
    let writer_token = shutdown.clone();
    tasks.spawn(async move {
        batcher.await.context("attempt log writer panicked")?;
        anyhow::ensure!(writer_token.is_cancelled(), "attempt log writer stopped");
        Ok(())
    });

    while let Some(joined) = tasks.join_next().await {
        if let Err(e) = joined.context("sender task panicked").and_then(|r| r) {
            shutdown.cancel();
            return Err(e);
        }
        // One consumer ending (at shutdown) ends the others too.
        shutdown.cancel();
    }
    let _ = circuit_log.await;
    let _ = maintenance.await;
    // A producer that failed for good stopped the sender: exit with its error.
    let flushed = synap_kafka::flush(&producer);
    tracing::info!("sender stopped");
    telemetry.shutdown();
    Ok(flushed?)
}
