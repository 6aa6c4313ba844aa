//! Topic provisioning. Topics are created explicitly, with their partition counts from
//! configuration, never by broker auto-creation; topics that exist already are brought to the
//! configured settings (e.g. the deliveries topic's retention) and their partition counts checked.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
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

/// What [`provision`] did and found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Provisioned {
    /// Topics created.
    pub created: Vec<String>,
    /// Settings of existing topics brought to the configuration.
    pub changed: Vec<SettingChange>,
    /// Existing topics with fewer partitions than configured. Not raised: a new partition count
    /// moves keys to other partitions, and a subscription's (or portal's) records written before
    /// and after the change would then be read in parallel, out of order. Raise them with the
    /// broker's tools during a pause of the producers, if at all.
    pub short: Vec<ShortTopic>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct SettingChange {
    pub topic: String,
    pub key: String,
    /// The value before; `None` when the broker did not report the key.
    pub was: Option<String>,
    pub now: String,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ShortTopic {
    pub topic: String,
    pub partitions: usize,
    pub configured: i32,
}

/// Creates every topic the pipeline uses and brings the existing ones' settings (retention of
/// the deliveries topic) to the configuration, changing only the keys that differ; reports
/// partition counts below the configured ones (never lowered or raised here).
pub async fn provision(config: &KafkaConfig, layout: &TopicLayout) -> Result<Provisioned, KafkaError> {
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
    let created = create(config, layout, &wanted, configs).await?;
    let admin = Arc::new(admin_client(config)?);
    let existing: Vec<&(String, i32)> = wanted.iter().filter(|(name, _)| !created.contains(name)).collect();
    let changed =
        align_settings(&admin, existing.iter().map(|(name, _)| (name.as_str(), configs(name)))).await?;
    let short = short_topics(&admin, &existing).await?;
    Ok(Provisioned { created, changed, short })
}

fn admin_client(config: &KafkaConfig) -> Result<AdminClient<DefaultClientContext>, KafkaError> {
    config.admin_config().create().map_err(|source| KafkaError::Client { what: "admin client", source })
}

/// How long one admin request may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads each topic's settings and sets the configured keys whose value differs.
async fn align_settings<'a>(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    topics: impl Iterator<Item = (&'a str, Vec<(&'a str, &'a str)>)>,
) -> Result<Vec<SettingChange>, KafkaError> {
    let wanted: Vec<(&str, Vec<(&str, &str)>)> = topics.filter(|(_, configs)| !configs.is_empty()).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let specifiers: Vec<ResourceSpecifier> =
        wanted.iter().map(|(t, _)| ResourceSpecifier::Topic(t)).collect();
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    let described = admin
        .describe_configs(&specifiers, &options)
        .await
        .map_err(|e| KafkaError::TopicConfig { topic: "*".into(), reason: e.to_string() })?;
    let mut changes = Vec::new();
    for ((topic, configs), result) in wanted.iter().zip(described) {
        let resource = result
            .map_err(|code| KafkaError::TopicConfig { topic: topic.to_string(), reason: code.to_string() })?;
        for (key, value) in configs {
            let was = resource.get(key).and_then(|entry| entry.value.clone());
            if was.as_deref() != Some(*value) {
                changes.push(SettingChange {
                    topic: topic.to_string(),
                    key: key.to_string(),
                    was,
                    now: value.to_string(),
                });
            }
        }
    }
    let requests: Vec<synap_kafka_configs::TopicChange> = wanted
        .iter()
        .filter_map(|(topic, _)| {
            let set: Vec<(String, String)> = changes
                .iter()
                .filter(|c| c.topic == *topic)
                .map(|c| (c.key.clone(), c.now.clone()))
                .collect();
            (!set.is_empty()).then(|| synap_kafka_configs::TopicChange { topic: topic.to_string(), set })
        })
        .collect();
    if !requests.is_empty() {
        // librdkafka's call blocks for the broker's answer: off the async threads.
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || {
            synap_kafka_configs::set_topic_configs(&admin, &requests, ADMIN_TIMEOUT)
        })
        .await
        .map_err(|e| KafkaError::TopicConfig { topic: "*".into(), reason: e.to_string() })?
        .map_err(|e| KafkaError::TopicConfig { topic: "*".into(), reason: e.to_string() })?;
    }
    Ok(changes)
}

/// The topics among `wanted` whose partition count is below the configured one.
async fn short_topics(
    admin: &Arc<AdminClient<DefaultClientContext>>,
    wanted: &[&(String, i32)],
) -> Result<Vec<ShortTopic>, KafkaError> {
    let admin = admin.clone();
    let metadata = tokio::task::spawn_blocking(move || admin.inner().fetch_metadata(None, ADMIN_TIMEOUT))
        .await
        .map_err(|e| KafkaError::TopicConfig { topic: "*".into(), reason: e.to_string() })?
        .map_err(|source| KafkaError::Client { what: "metadata request", source })?;
    let mut short = Vec::new();
    for (name, configured) in wanted {
        if let Some(topic) = metadata.topics().iter().find(|t| t.name() == name)
            && (topic.partitions().len() as i64) < i64::from(*configured)
        {
            short.push(ShortTopic {
                topic: name.clone(),
                partitions: topic.partitions().len(),
                configured: *configured,
            });
        }
    }
    Ok(short)
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
