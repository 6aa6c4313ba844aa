//! Topic provisioning. Topics are created explicitly, with their partition counts from
//! configuration, never by broker auto-creation.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use serde::{Deserialize, Serialize};

use crate::{KafkaConfig, KafkaError};

/// Partition counts and replication per topic family.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TopicLayout {
    /// Partitions of the inbound topic (bounds how many ingest replicas do work).
    pub inbound_partitions: i32,
    /// Partitions of each of the 13 event-type topics (bounds router replicas).
    pub event_partitions: i32,
    /// Partitions of the deliveries topic (bounds sender replicas).
    pub delivery_partitions: i32,
    /// Partitions of each dead-letter topic.
    pub dead_letter_partitions: i32,
    /// Replication factor of every topic; 3 on a production cluster.
    pub replication_factor: i32,
    /// How long the deliveries topic keeps each record. Resend and recover read event bodies
    /// back from it, so this is how long after the fact an event can be sent again.
    pub delivery_retention_ms: i64,
}

impl Default for TopicLayout {
    fn default() -> Self {
        Self {
            inbound_partitions: 6,
            event_partitions: 3,
            delivery_partitions: 12,
            dead_letter_partitions: 1,
            replication_factor: 1,
            delivery_retention_ms: 14 * 24 * 3600 * 1000,
        }
    }
}

/// Creates every topic the pipeline uses; existing topics are left as they are.
/// Returns the names of the topics that were created.
pub async fn provision(config: &KafkaConfig, layout: &TopicLayout) -> Result<Vec<String>, KafkaError> {
    let topics = config.topics();
    let mut wanted = vec![
        (topics.inbound(), layout.inbound_partitions),
        (topics.inbound_dead_letter(), layout.dead_letter_partitions),
        (topics.deliveries(), layout.delivery_partitions),
        (topics.deliveries_dead_letter(), layout.dead_letter_partitions),
        (topics.events_dead_letter(), layout.dead_letter_partitions),
    ];
    wanted.extend(topics.all_events().into_iter().map(|t| (t, layout.event_partitions)));
    // Keyed by subscription like the deliveries, so one subscription's log stays in order.
    wanted.push((topics.attempts(), layout.delivery_partitions));
    wanted.push((topics.operator_events(), layout.dead_letter_partitions));
    let retention = layout.delivery_retention_ms.to_string();
    let configs = |name: &str| -> Vec<(&str, &str)> {
        if *name == topics.deliveries() { vec![("retention.ms", retention.as_str())] } else { Vec::new() }
    };
    create(config, layout, &wanted, configs).await
}

/// Creates `wanted` (name, partitions) topics that do not exist yet, e.g. the sender's retry
/// tiers, which follow its configured schedule. Returns the names of the topics created.
pub async fn ensure(
    config: &KafkaConfig,
    layout: &TopicLayout,
    wanted: &[(String, i32)],
) -> Result<Vec<String>, KafkaError> {
    create(config, layout, wanted, |_| Vec::new()).await
}

async fn create<'a>(
    config: &KafkaConfig,
    layout: &TopicLayout,
    wanted: &[(String, i32)],
    configs: impl Fn(&str) -> Vec<(&'a str, &'a str)>,
) -> Result<Vec<String>, KafkaError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let admin: AdminClient<DefaultClientContext> = config
        .admin_config()
        .create()
        .map_err(|source| KafkaError::Client { what: "admin client", source })?;
    let new_topics: Vec<NewTopic> = wanted
        .iter()
        .map(|(name, partitions)| {
            configs(name).into_iter().fold(
                NewTopic::new(name, *partitions, TopicReplication::Fixed(layout.replication_factor)),
                |topic, (key, value)| topic.set(key, value),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new_topics, &options)
        .await
        .map_err(|e| KafkaError::CreateTopic { topic: "*".into(), reason: e.to_string() })?;

    let mut created = Vec::new();
    for result in results {
        match result {
            Ok(topic) => created.push(topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(KafkaError::CreateTopic { topic, reason: code.to_string() });
            }
        }
    }
    Ok(created)
}
