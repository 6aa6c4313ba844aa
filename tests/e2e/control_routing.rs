//! Control-plane changes reach the running router and sender quickly: plan changes, pause,
//! resume, create, update and delete, each proven by what real receivers get.

use std::time::Duration;

use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::{produce, producer};
use synap_tests::{Receiver, Stack};

use crate::control_support::{Client, admin_token, client, create, create_request, upsert};
use crate::support::{envelope, portal_id};

/// The promise: a change affects routing and signing within this long.
const PROPAGATION: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(30);
/// After a marker event arrived, how long an event published before it may still straggle in.
const GRACE: Duration = Duration::from_secs(2);

struct Publisher {
    kafka: rdkafka::producer::FutureProducer,
    inbound: String,
}

impl Publisher {
    async fn publish(&self, portal: &str, ty: EventType, id: &str) {
        produce(
            &self.kafka,
            &self.inbound,
            portal,
            &envelope(ty, portal, Some(id), &ty.example_body()),
            None,
        )
        .await;
    }
}

fn ids(receiver: &Receiver, path: &str) -> Vec<String> {
    receiver.at(path).iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect()
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Publishes `id` for `portal`, then a marker event to an always-on subscription, and waits for
/// the marker: by then `id` has been routed too (or refused), give or take `GRACE`.
async fn publish_and_settle(
    p: &Publisher,
    receiver: &Receiver,
    portal: &str,
    ty: EventType,
    id: &str,
    marker: (&str, usize),
) {
    p.publish(portal, ty, id).await;
    let (marker_portal, n) = marker;
    p.publish(marker_portal, EventType::InviteSent, &format!("marker-{id}")).await;
    receiver.wait_for("/marker", n, WAIT).await;
    tokio::time::sleep(GRACE).await;
}

async fn marker_portal(c: &mut Client, receiver: &Receiver) -> String {
    let marker = portal_id();
    upsert(c, &marker, Plan::Pro, &[]).await;
    create(c, create_request(&marker, &receiver.url("/marker"), &["invite.sent"])).await;
    marker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_downgrade_stops_deliveries_and_an_upgrade_resumes_them() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let sub = create(&mut c, create_request(&portal, &receiver.url("/hook"), &["user.updated"])).await;
    let marker = marker_portal(&mut c, &receiver).await;
    let p = Publisher { kafka: producer(&stack.bootstrap), inbound: stack.topic("inbound") };

    p.publish(&portal, EventType::UserUpdated, "before-downgrade").await;
    receiver.wait_for("/hook", 1, WAIT).await;

    upsert(&mut c, &portal, Plan::Starter, &[]).await;
    tokio::time::sleep(PROPAGATION).await;
    publish_and_settle(&p, &receiver, &portal, EventType::UserUpdated, "while-starter", (&marker, 1)).await;
    assert_eq!(ids(&receiver, "/hook"), ["before-downgrade"], "nothing while below Pro");

    // Back on a Webhooks plan: the same subscription, untouched, receives again.
    upsert(&mut c, &portal, Plan::Enterprise, &[]).await;
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::UserUpdated, "after-upgrade").await;
    receiver.wait_for("/hook", 2, WAIT).await;
    assert_eq!(ids(&receiver, "/hook"), ["before-downgrade", "after-upgrade"]);
    let still = c
        .get_subscription(api::GetSubscriptionRequest { id: sub.subscription.unwrap().id })
        .await
        .unwrap()
        .into_inner();
    assert!(still.enabled, "the plan change never edited the subscription");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_changes_reach_the_running_router_and_sender_within_two_seconds() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let marker = marker_portal(&mut c, &receiver).await;
    let p = Publisher { kafka: producer(&stack.bootstrap), inbound: stack.topic("inbound") };
    let sub = create(&mut c, create_request(&portal, &receiver.url("/s1"), &["user.updated"])).await;
    let id = sub.subscription.unwrap().id;
    // Warm the router's and sender's caches with the current state, so that a stale cache
    // entry, not a cold miss, is what each change below must overcome.
    p.publish(&portal, EventType::UserUpdated, "warm-up").await;
    receiver.wait_for("/s1", 1, WAIT).await;

    // Pause: nothing arrives.
    c.pause_subscription(api::PauseSubscriptionRequest { id: id.clone() }).await.unwrap();
    tokio::time::sleep(PROPAGATION).await;
    publish_and_settle(&p, &receiver, &portal, EventType::UserUpdated, "while-paused", (&marker, 1)).await;
    assert_eq!(ids(&receiver, "/s1"), ["warm-up"]);

    // Resume: it arrives.
    c.resume_subscription(api::ResumeSubscriptionRequest { id: id.clone() }).await.unwrap();
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::UserUpdated, "after-resume").await;
    receiver.wait_for("/s1", 2, WAIT).await;

    // New event types and a new URL: the router picks the types, the sender the URL.
    c.update_subscription(api::UpdateSubscriptionRequest {
        id: id.clone(),
        url: Some(receiver.url("/s1-moved")),
        event_types: Some(api::EventTypeList { codes: vec!["invite.sent".into()] }),
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::UserUpdated, "old-type").await;
    p.publish(&portal, EventType::InviteSent, "new-type").await;
    receiver.wait_for("/s1-moved", 1, WAIT).await;

    // Create: a new subscription receives the next event.
    let second = create(&mut c, create_request(&portal, &receiver.url("/s2"), &["invite.sent"])).await;
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::InviteSent, "after-create").await;
    receiver.wait_for("/s2", 1, WAIT).await;

    // Delete: it receives nothing more.
    let second = second.subscription.unwrap().id;
    c.delete_subscription(api::DeleteSubscriptionRequest { id: second }).await.unwrap();
    tokio::time::sleep(PROPAGATION).await;
    publish_and_settle(&p, &receiver, &portal, EventType::InviteSent, "after-delete", (&marker, 2)).await;

    assert_eq!(sorted(ids(&receiver, "/s1")), ["after-resume", "warm-up"]);
    assert_eq!(sorted(ids(&receiver, "/s1-moved")), ["after-create", "after-delete", "new-type"]);
    assert_eq!(ids(&receiver, "/s2"), ["after-create"], "nothing after the delete");
}
