//! `synap-admin`: the operator's commands. The same image that runs the services runs these
//! (a Helm hook runs `migrate` and `topics` before every install and upgrade).

mod attempts;
mod publish;
mod receive;
mod redrive;
mod reseal;
mod write;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use synap_db::{DatabaseConfig, EncryptionConfig};
use synap_kafka::KafkaConfig;
use synap_kafka::provision::TopicLayout;
use synap_runtime::{ConfigSource, LogConfig, logging};

#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// TOML configuration file; environment variables (`SYNAP_SECTION__KEY`) override it.
    #[arg(long, env = "SYNAP_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Applies pending database migrations.
    Migrate,
    /// Creates the pipeline's topics with the partition counts of `[topics]`, brings existing
    /// topics' settings (the deliveries topic's retention) to it and reports what it changed
    /// and any topic with fewer partitions than configured.
    Topics,
    /// Publishes sample events to the inbound topic, as a platform service would.
    Publish(publish::PublishArgs),
    /// Runs a webhook receiver that prints every request it gets (for local demos).
    Receive(receive::ReceiveArgs),
    /// The attempt log's time partitions: `maintain` (create ahead, drop expired), `partitions`.
    #[command(subcommand)]
    Attempts(attempts::AttemptsCommand),
    /// Sends dead letters back to the topic they were read from, once their cause is fixed.
    Redrive(redrive::RedriveArgs),
    /// Re-encrypts every sealed secret under the first key of `encryption.keys` (key rotation),
    /// then drops the canaries of keys no value needs any more.
    Reseal(reseal::ResealArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let source = ConfigSource::load(args.config.as_deref())?;
    let log: LogConfig = source.section("log")?;
    logging::init(&log);
    match args.command {
        Command::Migrate => {
            let database: DatabaseConfig = source.section("database")?;
            let pool = synap_db::connect(&database)?;
            let applied = synap_db::migrate::run(&pool).await?;
            println!("migrations applied: {applied:?}");
        }
        Command::Topics => {
            let kafka: KafkaConfig = source.section("kafka")?;
            let layout: TopicLayout = source.section("topics")?;
            let done = synap_kafka::provision::provision(&kafka, &layout).await?;
            let created = &done.created;
            println!(
                "topics created: {}",
                if created.is_empty() { "none (all exist)".to_owned() } else { created.join(", ") }
            );
            if done.changed.is_empty() {
                println!("topic settings changed: none (all as configured)");
            }
            for c in &done.changed {
                let was = c.was.as_deref().unwrap_or("(not reported)");
                println!("topic setting changed: {} {}: {was} -> {}", c.topic, c.key, c.now);
            }
            for s in &done.short {
                println!(
                    "warning: topic {} has {} partitions, [topics] configures {}; not raised (keys would \
                     move to other partitions and lose their order); see README, Scaling each stage",
                    s.topic, s.partitions, s.configured
                );
            }
        }
        Command::Publish(publish) => {
            let kafka: KafkaConfig = source.section("kafka")?;
            publish::run(&kafka, publish).await?;
        }
        Command::Attempts(command) => {
            let database: DatabaseConfig = source.section("database")?;
            let config: synap_db::AttemptsConfig = source.section("attempts")?;
            attempts::run(&database, &config, command).await?;
        }
        Command::Receive(receive) => receive::run(receive).await?,
        Command::Redrive(redrive) => {
            redrive::check(&redrive)?;
            let kafka: KafkaConfig = source.section("kafka")?;
            redrive::run(&kafka, redrive).await?;
        }
        Command::Reseal(reseal) => {
            let database: DatabaseConfig = source.section("database")?;
            let encryption: EncryptionConfig = source.section("encryption")?;
            reseal::run(&database, &encryption, reseal).await?;
        }
    }
    Ok(())
}
