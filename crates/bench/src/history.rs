//! `synap-bench broker-history`: what reading a partition costs the broker as the partition's
//! history grows. The same trickle of records, read by one consumer with the services' consumer
//! settings, on a fresh partition and on partitions already holding N batches (which the consumer
//! starts past): the broker's CPU and the hop latency, on a private tansu per size. tansu 0.6's
//! memory store lists every batch a partition holds on each fetch (docs/BENCHMARKS.md,
//! Findings 1); this shows what that costs, and where the fixed-rate scenarios meet it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use rdkafka::consumer::Consumer;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use rdkafka::{Message, Offset, TopicPartitionList};
use synap_kafka::KafkaConfig;
use synap_kafka::provision::{TopicLayout, ensure};

use crate::procstat::cpu_seconds;
use crate::stack::Broker;
use crate::stats::{Percentiles, now_us};

#[derive(clap::Args)]
pub struct HistoryArgs {
    /// The tansu binary: a private, empty broker is started for each history size.
    #[arg(long)]
    pub tansu: PathBuf,
    /// Batches written to the partition before the trickle, one run each.
    #[arg(long, value_delimiter = ',', default_value = "0,5000,10000,20000")]
    pub batches: Vec<u64>,
    /// Records per second of the trickle (each one a batch of its own, as at the fixed-rate
    /// scenarios' rates).
    #[arg(long, default_value_t = 200.0, value_parser = positive)]
    pub rate: f64,
    /// How long the trickle runs; its first second is left out of the latency.
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    pub seconds: f64,
    /// Where the brokers' logs go.
    #[arg(long, default_value = "target/bench/broker-history")]
    pub out: PathBuf,
}

const TOPIC: &str = "history";

/// A rate or a duration: a finite number above zero (a time span of none, or of less, cannot be
/// slept through).
fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("expected a number above 0, got {s:?}")),
    }
}

struct Measured {
    broker_cpu_share: f64,
    hop_ms: Percentiles,
}

/// Prints one table row per history size.
pub async fn run(args: HistoryArgs) -> anyhow::Result<()> {
    println!(
        "One consumer reading {} records/s for {} s, on a partition already holding N batches:\n",
        args.rate, args.seconds
    );
    println!(
        "| batches already in the partition | broker CPU, % of a core | hop p50 ms | hop p99 ms | records |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for &batches in &args.batches {
        let broker = Broker::start(&args.tansu, &args.out.join(batches.to_string())).await?;
        let measured = match broker.pid() {
            Some(pid) => measure(&broker.bootstrap, pid, batches, &args).await,
            None => Err(anyhow::anyhow!("the private broker exited at once; see {}", args.out.display())),
        };
        broker.stop().await;
        let m = measured?;
        println!(
            "| {batches} | {:.0}% | {:.1} | {:.1} | {} |",
            m.broker_cpu_share * 100.0,
            m.hop_ms.p50,
            m.hop_ms.p99,
            m.hop_ms.count
        );
    }
    Ok(())
}

async fn measure(bootstrap: &str, pid: u32, batches: u64, args: &HistoryArgs) -> anyhow::Result<Measured> {
    let kafka = KafkaConfig { bootstrap_servers: bootstrap.into(), ..Default::default() };
    ensure(&kafka, &TopicLayout::default(), &[(TOPIC.into(), 1)]).await?;
    fill(&kafka, batches).await?;

    let consumer = kafka.consumer("history")?;
    let mut start = TopicPartitionList::new();
    start.add_partition_offset(TOPIC, 0, Offset::Offset(batches as i64))?;
    consumer.assign(&start)?;
    let producer = kafka.producer("history-trickle")?;
    let trickle = Duration::from_secs_f64(args.seconds);
    let reader = tokio::spawn(async move {
        let mut hops = Vec::new();
        let mut stream = consumer.stream();
        let until = tokio::time::Instant::now() + trickle + Duration::from_secs(5);
        while let Ok(Some(Ok(m))) = tokio::time::timeout_at(until, stream.next()).await {
            let arrived = now_us();
            let sent: u64 =
                m.payload().and_then(|p| std::str::from_utf8(p).ok()?.parse().ok()).unwrap_or(arrived);
            hops.push((sent, arrived.saturating_sub(sent)));
        }
        hops
    });

    let (cpu_before, started) = (cpu_seconds(pid).unwrap_or(0.0), std::time::Instant::now());
    let started_us = now_us();
    let clock = tokio::time::Instant::now();
    let records = (args.rate * args.seconds) as u64;
    let mut sends = Vec::with_capacity(records as usize);
    for i in 0..records {
        tokio::time::sleep_until(clock + Duration::from_secs_f64(i as f64 / args.rate)).await;
        let payload = now_us().to_string();
        sends.push(
            producer.send_result(FutureRecord::<(), _>::to(TOPIC).payload(&payload)).map_err(|(e, _)| e)?,
        );
    }
    for sent in sends {
        sent.await.context("the trickle's producer stopped")?.map_err(|(e, _)| e)?;
    }
    let cpu = cpu_seconds(pid).unwrap_or(0.0) - cpu_before;
    let broker_cpu_share = cpu / started.elapsed().as_secs_f64();
    let hops = reader.await.context("the history consumer")?;
    let warm = started_us + 1_000_000;
    let mut hop_us: Vec<u64> =
        hops.into_iter().filter(|(sent, _)| *sent >= warm).map(|(_, hop)| hop).collect();
    Ok(Measured { broker_cpu_share, hop_ms: Percentiles::of_micros(&mut hop_us) })
}

/// Writes `batches` small records, each a batch of its own (no linger, one record per batch).
async fn fill(kafka: &KafkaConfig, batches: u64) -> anyhow::Result<()> {
    let mut kafka = kafka.clone();
    kafka.producer.extend([("linger.ms".into(), "0".into()), ("batch.num.messages".into(), "1".into())]);
    let producer = kafka.producer("history-fill")?;
    let payload = [b'x'; 200];
    let acks = futures::stream::iter(0..batches)
        .map(|_| {
            producer.send(
                FutureRecord::<(), _>::to(TOPIC).payload(&payload[..]),
                Timeout::After(Duration::from_secs(60)),
            )
        })
        .buffer_unordered(1000)
        .filter(|r| futures::future::ready(r.is_ok()))
        .count()
        .await as u64;
    anyhow::ensure!(acks == batches, "the broker took {acks} of {batches} history records");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_are_numbers_above_zero() {
        assert_eq!(positive("0.5"), Ok(0.5));
        for bad in ["0", "-1", "NaN", "inf", "", "ten"] {
            let error = positive(bad).unwrap_err();
            assert!(error.contains("above 0") && error.contains(&format!("{bad:?}")), "{bad}: {error}");
        }
    }
}
