//! `synap-admin topics` on topics that exist: settings brought to the configuration (only the
//! keys that differ, reported), partition counts below the configured ones reported, not raised.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use synap_tests::Stack;

/// The topic's `retention.ms` as the broker reports it.
async fn retention_ms(stack: &Stack, topic: &str) -> Option<String> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.bootstrap).create().unwrap();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = admin.describe_configs(&[ResourceSpecifier::Topic(topic)], &options).await.unwrap();
    let resource = described.into_iter().next().unwrap().expect("the topic's settings");
    resource.get("retention.ms").and_then(|e| e.value.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_brings_existing_topics_to_the_configuration() {
    let stack = Stack::start().await;
    let deliveries = stack.topic("deliveries");
    let fourteen_days = (14_u64 * 24 * 3600 * 1000).to_string();
    assert_eq!(
        retention_ms(&stack, &deliveries).await.as_deref(),
        Some(fourteen_days.as_str()),
        "set on creation"
    );

    // The operator shortens the retention and asks for more inbound partitions than exist (2).
    let changed =
        [("SYNAP_TOPICS__DELIVERY_RETENTION_MS", "86400000"), ("SYNAP_TOPICS__INBOUND_PARTITIONS", "4")];
    let out = stack.admin_with(&["topics"], &changed).await;
    assert!(out.contains("topics created: none"), "{out}");
    assert!(
        out.contains(&format!(
            "topic setting changed: {deliveries} retention.ms: {fourteen_days} -> 86400000"
        )),
        "{out}"
    );
    let inbound = stack.topic("inbound");
    assert!(
        out.contains(&format!("warning: topic {inbound} has 2 partitions, [topics] configures 4")),
        "{out}"
    );
    assert_eq!(
        retention_ms(&stack, &deliveries).await.as_deref(),
        Some("86400000"),
        "read back from the broker"
    );

    // Run again with the same configuration: nothing left to change.
    let again = stack.admin_with(&["topics"], &changed).await;
    assert!(again.contains("topic settings changed: none"), "{again}");
    assert_eq!(retention_ms(&stack, &deliveries).await.as_deref(), Some("86400000"));
}
