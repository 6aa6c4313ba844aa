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
}

impl Default for TopicLayout {
    fn default() -> Self {
        Self {
            inbound_partitions: 6,
            event_partitions: 3,
            delivery_partitions: 12,
            dead_letter_partitions: 1,
            replication_factor: 1,
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
    ];
    wanted.extend(topics.all_events().into_iter().map(|t| (t, layout.event_partitions)));

    let admin: AdminClient<DefaultClientContext> = config
        .admin_config()
        .create()
        .map_err(|source| KafkaError::Client { what: "admin client", source })?;
    let new_topics: Vec<NewTopic> = wanted
        .iter()
        .map(|(name, partitions)| {
            NewTopic::new(name, *partitions, TopicReplication::Fixed(layout.replication_factor))
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
