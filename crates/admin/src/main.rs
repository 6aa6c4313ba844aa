//! `synap-admin`: the operator's commands. The same image that runs the services runs these
//! (a Helm hook runs `migrate` and `topics` before every install and upgrade).

mod attempts;
mod publish;
mod receive;
mod redrive;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use synap_db::DatabaseConfig;
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
    /// Creates the pipeline's topics with the partition counts of `[topics]`.
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
            let created = synap_kafka::provision::provision(&kafka, &layout).await?;
            println!(
                "topics created: {}",
                if created.is_empty() { "none (all exist)".to_owned() } else { created.join(", ") }
            );
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
    }
    Ok(())
}
