//! Publishes the contract's example bodies to the inbound topic.

use anyhow::{Context, bail};
use prost::Message as _;
use rdkafka::message::{Header, OwnedHeaders};
use synap_contract::EventType;
use synap_kafka::{KafkaConfig, Outgoing};

use crate::write::write;
use synap_proto::envelope::v1::Envelope;

#[derive(clap::Args)]
pub struct PublishArgs {
    /// The portal the events belong to.
    #[arg(long)]
    portal: String,
    /// Event type code; repeat for several. Default: all thirteen.
    #[arg(long = "type")]
    types: Vec<String>,
    /// How many events of each type.
    #[arg(long, default_value_t = 1)]
    count: u32,
    /// Encode envelopes as protobuf instead of JSON.
    #[arg(long)]
    protobuf: bool,
}

pub async fn run(kafka: &KafkaConfig, args: PublishArgs) -> anyhow::Result<()> {
    let types = if args.types.is_empty() {
        EventType::ALL.to_vec()
    } else {
        args.types
            .iter()
            .map(|code| EventType::from_code(code).with_context(|| format!("unknown event type {code:?}")))
            .collect::<anyhow::Result<_>>()?
    };
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    let producer = kafka.producer("synap-admin")?;
    let topic = kafka.topics().inbound();
    for ty in &types {
        for _ in 0..args.count {
            let data = serde_json::to_vec(&ty.example_body())?;
            let (payload, content_type) = if args.protobuf {
                let envelope = Envelope {
                    id: String::new(),
                    r#type: ty.code().into(),
                    portal_id: args.portal.clone(),
                    occurred_at: None,
                    data,
                };
                (envelope.encode_to_vec(), "application/protobuf")
            } else {
                let data: serde_json::Value = serde_json::from_slice(&data)?;
                let envelope =
                    serde_json::json!({ "type": ty.code(), "portalId": args.portal, "data": data });
                (serde_json::to_vec(&envelope)?, "application/json")
            };
            let record = Outgoing {
                topic: topic.clone(),
                key: args.portal.clone().into_bytes(),
                payload,
                headers: OwnedHeaders::new()
                    .insert(Header { key: "content-type", value: Some(content_type) }),
            };
            write(&producer, &record).await?;
        }
        println!("published {} x {} for portal {} to {topic}", args.count, ty.code(), args.portal);
    }
    Ok(())
}
