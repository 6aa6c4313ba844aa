//! Writing one record, as every command that writes to Kafka does: until the broker
//! acknowledges it.

use rdkafka::producer::FutureProducer;
use synap_kafka::{Outgoing, send_durably};
use tokio_util::sync::CancellationToken;

/// Writes `record`, retrying while the broker is unavailable. A command runs to its end: no
/// shutdown applies. A producer that failed for good fails the command with librdkafka's reason.
pub async fn write(producer: &FutureProducer, record: &Outgoing) -> anyhow::Result<()> {
    let never = CancellationToken::new();
    if let Err(e) = send_durably(producer, record, &never).await {
        // A producer that failed for good says why; a refusal is reported as it is.
        synap_kafka::flush(producer)?;
        anyhow::bail!("{e:?}");
    }
    Ok(())
}
