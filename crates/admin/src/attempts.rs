//! `synap-admin attempts`: the attempt log's partitions. The senders maintain them themselves
//! (`attempts.maintain_every_seconds`); with that at 0, a CronJob runs `attempts maintain`.

use anyhow::Context;
use clap::Subcommand;
use synap_db::attempt_partitions::{self, AttemptsConfig};
use synap_db::{DatabaseConfig, Pool};

#[derive(Subcommand)]
pub enum AttemptsCommand {
    /// Creates the partitions due and drops the expired ones (`[attempts]`), once. Does nothing
    /// when another replica is doing it right now.
    Maintain,
    /// Lists the partitions with their ranges and sizes.
    Partitions,
}

pub async fn run(
    database: &DatabaseConfig,
    config: &AttemptsConfig,
    command: AttemptsCommand,
) -> anyhow::Result<()> {
    config.validate().map_err(synap_runtime::ConfigError::from)?;
    let pool: Pool = synap_db::connect(database)?;
    match command {
        AttemptsCommand::Maintain => {
            match attempt_partitions::maintain(&pool, config).await.context("maintaining the attempt log")? {
                None => println!("another process is maintaining the attempt log; nothing done"),
                Some(done) => {
                    println!("partitions created: {}", list(&done.created));
                    println!("partitions dropped: {}", list(&done.dropped));
                    println!(
                        "default partition: {} rows moved into new partitions, {} expired rows dropped",
                        done.moved_from_default, done.expired_from_default
                    );
                }
            }
        }
        AttemptsCommand::Partitions => {
            for p in attempt_partitions::partitions(&pool).await? {
                println!("{}\t{}\t{}\t{} bytes", p.name, p.from.to_rfc3339(), p.to.to_rfc3339(), p.bytes);
            }
            println!("total\t{} bytes", attempt_partitions::total_bytes(&pool).await?);
        }
    }
    Ok(())
}

fn list(names: &[String]) -> String {
    if names.is_empty() { "none".to_owned() } else { names.join(", ") }
}
