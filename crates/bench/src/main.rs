//! `synap-bench`: the benchmark of docs/BENCHMARKS.md. `run` drives the real services and prints
//! the table; `receiver` is the webhook endpoint process that `run` starts; `broker-history`
//! measures what a partition's history costs the local broker; `telemetry-cost` what the services'
//! logging and tracing cost per record.

mod ceiling;
mod history;
mod procstat;
mod publisher;
mod receiver;
mod report;
mod runner;
mod scenarios;
mod settings;
mod setup;
mod stack;
mod stats;
mod telemetry_cost;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    version,
    about = "Throughput, latency, fan-out and isolation of the Synap pipeline, measured on this machine"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the scenarios and writes report.json and report.md to --out.
    Run(runner::RunArgs),
    /// The webhook receiver (started by `run`; useful alone to try endpoints by hand).
    Receiver(receiver::ReceiverArgs),
    /// The same trickle read from partitions holding more and more batches, each on a private
    /// tansu: the broker's CPU and the hop latency (docs/BENCHMARKS.md, Findings 1).
    BrokerHistory(history::HistoryArgs),
    /// What the services' logging and tracing cost per record, measured in process
    /// (docs/BENCHMARKS.md, tenth round).
    TelemetryCost(telemetry_cost::TelemetryCostArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::Run(args) => {
            let out = args.out.clone();
            let report = runner::run(args).await?;
            let table = report.table();
            std::fs::write(out.join("report.json"), serde_json::to_vec_pretty(&report)?)
                .context("writing report.json")?;
            std::fs::write(out.join("report.md"), &table).context("writing report.md")?;
            println!("{table}");
            println!("report: {}", out.join("report.json").display());
            Ok(())
        }
        Command::Receiver(args) => receiver::run(args).await,
        Command::BrokerHistory(args) => history::run(args).await,
        Command::TelemetryCost(args) => telemetry_cost::run(args),
    }
}
