//! Events travel the whole way: platform producer → ingest → router → sender → receiver.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use prost::Message;
use synap_contract::EventType;
use synap_proto::control::v1::Plan;
use synap_proto::envelope::v1::Envelope;
use synap_tests::kafka::{produce, producer, rewind};
use synap_tests::{Receiver, Service, Stack};

use crate::support::{NewSub, body_with_extras, envelope, portal_id, subscribe, upsert_portal};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_type_reaches_its_subscriber_unchanged() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &["store"]).await;
    let mut sub = NewSub::new(&portal, receiver.url("/hook"), &EventType::ALL);
    sub.basic_auth = Some(("synap-user", "pa55:w0rd"));
    subscribe(&mut control, sub).await;

    let kafka = producer(&stack.bootstrap);
    let mut sent = HashMap::new();
    for ty in EventType::ALL {
        let id = format!("evt-{}-{}", ty.code(), uuid::Uuid::new_v4().simple());
        let body = body_with_extras(ty);
        produce(&kafka, &stack.topic("inbound"), &portal, &envelope(ty, &portal, Some(&id), &body), None)
            .await;
        sent.insert(id, (ty, body));
    }

    let received = receiver.wait_for("/hook", 13, WAIT).await;
    assert_eq!(received.len(), 13, "each event exactly once");
    let expected_auth =
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("synap-user:pa55:w0rd"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    for request in &received {
        let id = request.header("webhook-id").expect("webhook-id");
        let (ty, body) = sent.get(id).unwrap_or_else(|| panic!("unexpected webhook-id {id}"));
        assert_eq!(&request.json(), body, "{ty}: body delivered unchanged");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.header("synap-event-type"), Some(ty.code()));
        assert_eq!(request.header("synap-portal-id"), Some(portal.as_str()));
        assert_eq!(request.header("synap-delivery-attempt"), Some("1"));
        assert_eq!(request.header("authorization"), Some(expected_auth.as_str()));
        assert!(request.header("user-agent").unwrap().starts_with("Synap-Webhooks/"));
        let ts: i64 = request.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!((ts - now).abs() < 120, "webhook-timestamp {ts} is unix seconds of the attempt");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_only_the_subscriptions_they_belong_to() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let (a, b, c) = (portal_id(), portal_id(), portal_id());
    upsert_portal(&mut control, &a, Plan::Pro, &["store"]).await;
    upsert_portal(&mut control, &b, Plan::Enterprise, &[]).await;
    upsert_portal(&mut control, &c, Plan::Pro, &[]).await;
    subscribe(&mut control, NewSub::new(&a, receiver.url("/a-completed"), &[EventType::AttemptCompleted]))
        .await;
    subscribe(&mut control, NewSub::new(&a, receiver.url("/a-user"), &[EventType::UserUpdated])).await;
    let mut disabled = NewSub::new(&a, receiver.url("/a-disabled"), &[EventType::AttemptCompleted]);
    disabled.enabled = false;
    subscribe(&mut control, disabled).await;
    subscribe(&mut control, NewSub::new(&a, receiver.url("/a-store"), &[EventType::StorePurchase])).await;
    subscribe(&mut control, NewSub::new(&b, receiver.url("/b-completed"), &[EventType::AttemptCompleted]))
        .await;
    subscribe(&mut control, NewSub::new(&c, receiver.url("/c-completed"), &[EventType::AttemptCompleted]))
        .await;
    // Portal a loses the store feature and portal c drops below Pro, after subscribing.
    upsert_portal(&mut control, &a, Plan::Pro, &[]).await;
    upsert_portal(&mut control, &c, Plan::Starter, &[]).await;

    let kafka = producer(&stack.bootstrap);
    let inbound = stack.topic("inbound");
    let send = |ty: EventType, portal: &str, id: &str| envelope(ty, portal, Some(id), &ty.example_body());
    produce(&kafka, &inbound, &a, &send(EventType::AttemptCompleted, &a, "e-a-completed"), None).await;
    produce(&kafka, &inbound, &a, &send(EventType::StorePurchase, &a, "e-a-store"), None).await;
    produce(&kafka, &inbound, &c, &send(EventType::AttemptCompleted, &c, "e-c-completed"), None).await;
    produce(&kafka, &inbound, &b, &send(EventType::AttemptCompleted, &b, "e-b-completed"), None).await;
    produce(&kafka, &inbound, &a, &send(EventType::UserUpdated, &a, "e-a-user"), None).await;

    let ids = |path: &str| -> Vec<String> {
        receiver.at(path).iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect()
    };
    receiver.wait_for("/a-completed", 1, WAIT).await;
    receiver.wait_for("/a-user", 1, WAIT).await;
    receiver.wait_for("/b-completed", 1, WAIT).await;
    // Everything published was routed by now or moments later; give stragglers time to show.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(ids("/a-completed"), ["e-a-completed"], "not another portal's event");
    assert_eq!(ids("/a-user"), ["e-a-user"], "not another event type");
    assert_eq!(ids("/b-completed"), ["e-b-completed"], "not another portal's event");
    assert!(ids("/a-disabled").is_empty(), "disabled subscription");
    assert!(ids("/a-store").is_empty(), "store.purchase without the store feature");
    assert!(ids("/c-completed").is_empty(), "portal below Pro");
    assert_eq!(receiver.all().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protobuf_envelope_is_delivered_like_its_json_twin() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    subscribe(&mut control, NewSub::new(&portal, receiver.url("/hook"), &[EventType::ExamCompleted])).await;

    let body = body_with_extras(EventType::ExamCompleted);
    let kafka = producer(&stack.bootstrap);
    let inbound = stack.topic("inbound");
    let json = envelope(EventType::ExamCompleted, &portal, Some("twin-json"), &body);
    produce(&kafka, &inbound, &portal, &json, Some("application/json")).await;
    let proto = Envelope {
        id: "twin-proto".into(),
        r#type: EventType::ExamCompleted.code().into(),
        portal_id: portal.clone(),
        occurred_at: Some(prost_types_now()),
        data: serde_json::to_vec(&body).unwrap(),
    };
    produce(&kafka, &inbound, &portal, &proto.encode_to_vec(), Some("application/protobuf")).await;

    let received = receiver.wait_for("/hook", 2, WAIT).await;
    let by_id = |id: &str| received.iter().find(|r| r.header("webhook-id") == Some(id)).unwrap().clone();
    let (from_json, from_proto) = (by_id("twin-json"), by_id("twin-proto"));
    assert_eq!(from_json.json(), body);
    assert_eq!(from_proto.json(), body);
    for name in ["synap-event-type", "synap-portal-id", "synap-delivery-attempt", "content-type"] {
        assert_eq!(from_json.header(name), from_proto.header(name), "{name}");
    }
}

fn prost_types_now() -> synap_proto::Timestamp {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    synap_proto::Timestamp { seconds: now.as_secs() as i64, nanos: 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_the_same_record_again_keeps_its_webhook_id() {
    let mut stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    subscribe(&mut control, NewSub::new(&portal, receiver.url("/hook"), &[EventType::InviteSent])).await;

    let kafka = producer(&stack.bootstrap);
    let body = EventType::InviteSent.example_body();
    // No producer id: ingest derives one from the record's position.
    produce(
        &kafka,
        &stack.topic("inbound"),
        &portal,
        &envelope(EventType::InviteSent, &portal, None, &body),
        None,
    )
    .await;
    let first = receiver.wait_for("/hook", 1, WAIT).await;
    let id = first[0].header("webhook-id").unwrap().to_owned();
    assert!(id.starts_with("evt_"), "derived id {id}");

    // As after a crash before the commit: ingest reads the same record again.
    stack.stop(Service::Ingest).await;
    rewind(&stack.bootstrap, &stack.group(Service::Ingest), &stack.topic("inbound"));
    stack.spawn(Service::Ingest);

    let both = receiver.wait_for("/hook", 2, WAIT).await;
    assert_eq!(both[1].header("webhook-id"), Some(id.as_str()), "same record, same webhook-id");
    assert_eq!(both[1].json(), body);
}

/// Every consumer fetches at most 1 MiB at once (`synap_kafka` sets `fetch.max.bytes`), but a
/// platform service may batch more than that into one record batch. Such a batch must still be
/// read, or the partition would stop behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inbound_batch_larger_than_one_fetch_is_read_whole() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, Plan::Pro, &[]).await;
    let ty = EventType::AttemptCompleted;
    subscribe(&mut control, NewSub::new(&portal, receiver.url("/big"), &[ty])).await;

    // Six events of ~200 KB, uncompressed, in one batch of ~1.2 MB.
    let kafka: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &stack.bootstrap)
        .set("linger.ms", "500")
        .set("batch.size", "4000000")
        .set("message.max.bytes", "4000000")
        .set("compression.type", "none")
        .create()
        .expect("batching producer");
    let sends: Vec<_> = (0..6)
        .map(|i| {
            let mut body = ty.example_body();
            body["padding"] = serde_json::json!(format!("{i}").repeat(200_000));
            let id = format!("evt-big-{i}-{}", uuid::Uuid::new_v4().simple());
            let payload = envelope(ty, &portal, Some(&id), &body);
            let topic = stack.topic("inbound");
            let kafka = kafka.clone();
            let key = portal.clone();
            async move {
                kafka
                    .send(
                        rdkafka::producer::FutureRecord::to(&topic).key(&key).payload(&payload),
                        Duration::from_secs(10),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("produce a large event")
            }
        })
        .collect();
    let written = futures::future::join_all(sends).await;
    assert!(written.windows(2).all(|w| w[0].partition == w[1].partition), "one partition, one batch");

    let received = receiver.wait_for("/big", 6, WAIT).await;
    assert_eq!(received.len(), 6, "every large event arrives once");
    assert!(received.iter().all(|r| r.json()["padding"].as_str().map(str::len) == Some(200_000)));
}
