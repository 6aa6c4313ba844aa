//! `synap-admin redrive`: sends dead letters back to where they were read, once the cause is
//! fixed (a producer corrected, a bug patched, a database constraint relaxed).
//!
//! Each dead letter names its source (`synap-dlq-source`: topic/partition/offset); the record is
//! written back to that topic with its key, payload and headers, without the `synap-dlq-*`
//! headers, so it goes through the stage again. A delivery that failed for good goes back to the
//! deliveries topic with a fresh retry schedule (same event, same `webhook-id`). Re-driving is not
//! idempotent: a second run sends the same records again, so filter with `--reason` and `--since`
//! and look first with `--dry-run`.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use prost::Message as _;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use synap_kafka::dead_letter::{self, Source};
use synap_kafka::fetch::Fetcher;
use synap_kafka::{KafkaConfig, Outgoing, deliveries, headers};
use synap_proto::pipeline::v1::Delivery;

use crate::write::write;

#[derive(clap::Args)]
pub struct RedriveArgs {
    /// Which dead-letter topic: `inbound` (ingest), `events` (router) or `deliveries` (sender).
    #[arg(long, value_parser = ["inbound", "events", "deliveries"])]
    dlq: String,
    /// Only dead letters with this reason code (`synap-dlq-reason`); repeat for several.
    #[arg(long = "reason")]
    reasons: Vec<String>,
    /// Only dead letters set aside at or after this time (RFC 3339).
    #[arg(long)]
    since: Option<String>,
    /// Count what would be sent back, per reason and destination, and send nothing.
    #[arg(long)]
    dry_run: bool,
}

/// One dead letter read from the topic.
struct Letter {
    key: Vec<u8>,
    payload: Vec<u8>,
    headers: OwnedHeaders,
    reason: String,
    source: Option<Source>,
    at: Option<chrono::DateTime<chrono::FixedOffset>>,
    payload_omitted: bool,
    position: String,
}

pub async fn run(kafka: &KafkaConfig, args: RedriveArgs) -> anyhow::Result<()> {
    let topics = kafka.topics();
    let dlq = match args.dlq.as_str() {
        "inbound" => topics.inbound_dead_letter(),
        "events" => topics.events_dead_letter(),
        _ => topics.deliveries_dead_letter(),
    };
    let since = args
        .since
        .as_deref()
        .map(chrono::DateTime::parse_from_rfc3339)
        .transpose()
        .context("--since must be an RFC 3339 time, e.g. 2026-11-29T10:00:00Z")?;

    // The scan blocks; the letters stream to this task, which writes them back.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Letter>(256);
    let (scan_config, scan_topic) = (kafka.clone(), dlq.clone());
    let scan = tokio::task::spawn_blocking(move || {
        synap_kafka::scan::scan(&scan_config, &scan_topic, |m| {
            let _ = tx.blocking_send(read(m));
        })
    });

    let producer = kafka.producer("synap-admin")?;
    let fetcher = Fetcher::new(kafka)?;
    let mut sent: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(letter) = rx.recv().await {
        if !args.reasons.is_empty() && !args.reasons.contains(&letter.reason) {
            continue;
        }
        if since.is_some_and(|since| letter.at.is_none_or(|at| at < since)) {
            continue;
        }
        let record = match destination(kafka, &letter, &fetcher) {
            Ok(record) => record,
            Err(why) => {
                eprintln!("skipped {} ({}): {why}", letter.position, letter.reason);
                *skipped.entry(why).or_default() += 1;
                continue;
            }
        };
        if !args.dry_run {
            write(&producer, &record).await?;
        }
        *sent.entry((letter.reason.clone(), record.topic.clone())).or_default() += 1;
    }
    let scanned = scan.await?.with_context(|| format!("reading {dlq}"))?;
    synap_kafka::flush(&producer)?;

    println!("read {scanned} dead letters from {dlq}");
    let verb = if args.dry_run { "would send" } else { "sent" };
    for ((reason, topic), count) in &sent {
        println!("{verb} {count} ({reason}) to {topic}");
    }
    for (why, count) in &skipped {
        println!("skipped {count}: {why}");
    }
    if sent.is_empty() && skipped.is_empty() {
        println!("nothing matched");
    }
    Ok(())
}

fn read(m: &rdkafka::message::BorrowedMessage<'_>) -> Letter {
    let header = |name: &str| headers::get(m.headers(), name).map(str::to_owned);
    let mut kept = OwnedHeaders::new();
    if let Some(original) = m.headers() {
        for h in
            original.iter().filter(|h| !h.key.to_ascii_lowercase().starts_with(dead_letter::HEADER_PREFIX))
        {
            kept = kept.insert(Header { key: h.key, value: h.value });
        }
    }
    Letter {
        key: m.key().unwrap_or_default().to_vec(),
        payload: m.payload().unwrap_or_default().to_vec(),
        headers: kept,
        reason: header(dead_letter::REASON).unwrap_or_default(),
        source: header(dead_letter::SOURCE).as_deref().and_then(Source::parse),
        at: header(dead_letter::AT).and_then(|at| chrono::DateTime::parse_from_rfc3339(&at).ok()),
        payload_omitted: header(dead_letter::PAYLOAD_OMITTED).is_some(),
        position: format!("{}/{}/{}", m.topic(), m.partition(), m.offset()),
    }
}

/// The record to write back for `letter`, or why it cannot be.
fn destination(kafka: &KafkaConfig, letter: &Letter, fetcher: &Fetcher) -> Result<Outgoing, String> {
    let topics = kafka.topics();
    let source = letter.source.as_ref().ok_or("no synap-dlq-source header")?;
    let target = source.topic.clone();
    let inputs = [topics.inbound(), topics.deliveries(), topics.attempts()];
    let is_retry_tier = target.starts_with(&topics.retry_tier(""));
    if !inputs.contains(&target) && topics.event_type_of(&target).is_none() && !is_retry_tier {
        return Err(format!("topic {target} is not a pipeline topic of this deployment"));
    }
    let payload = if letter.payload_omitted {
        // Too large for the dead-letter topic: read it back from where it was, while retained.
        match fetcher.fetch(&source.topic, source.partition, source.offset, Duration::from_secs(30)) {
            Ok(Some(payload)) => payload,
            Ok(None) => return Err("payload omitted and no longer retained at its source".into()),
            Err(e) => return Err(format!("payload omitted and its source unreadable: {e}")),
        }
    } else {
        letter.payload.clone()
    };
    if target == topics.deliveries() || is_retry_tier {
        // A delivery starts over: attempt 1, due now, same event id.
        if let Ok(delivery) = Delivery::decode(payload.as_slice()) {
            let mut record = deliveries::record(topics.deliveries(), &deliveries::again(delivery));
            record.headers = letter.headers.clone();
            return Ok(record);
        }
    }
    Ok(Outgoing { topic: target, key: letter.key.clone(), payload, headers: letter.headers.clone() })
}

/// Refuses a redrive that could not work, before reading anything.
pub fn check(args: &RedriveArgs) -> anyhow::Result<()> {
    if args.reasons.iter().any(String::is_empty) {
        bail!("--reason must not be empty");
    }
    Ok(())
}
