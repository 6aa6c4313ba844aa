//! With caches that would keep an entry ten minutes, a change still reaches the running router
//! and sender within about a second: PostgreSQL announces it (migration 80, `synap_db::changes`).
//! Also when the listener's connection is killed and a change lands while it reconnects. Each
//! step is proven by what a real receiver gets.

use std::time::Duration;

use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::{produce, producer};
use synap_tests::{Receiver, Service, Stack};

use crate::control_support::{Client, admin_token, client, create, create_request, upsert};
use crate::support::{envelope, portal_id, verify};

/// Far longer than any test: only an announced change can make an entry stale.
const LONG_TTL: [(&str, &str); 2] =
    [("SYNAP_ROUTER__CACHE_TTL_MS", "600000"), ("SYNAP_SENDER__CACHE_TTL_MS", "600000")];
/// The promise under test: a change applies within about a second.
const PROPAGATION: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(30);
/// After a marker event arrived, how long an event published before it may still straggle in.
const GRACE: Duration = Duration::from_secs(2);

struct Pipeline {
    kafka: rdkafka::producer::FutureProducer,
    inbound: String,
    receiver: Receiver,
    /// A portal whose one subscription (`/marker`, invite.sent) never changes.
    marker: String,
    markers: usize,
}

impl Pipeline {
    async fn start(stack: &Stack, c: &mut Client) -> Self {
        let receiver = Receiver::start().await;
        let marker = portal_id();
        upsert(c, &marker, Plan::Pro, &[]).await;
        create(c, create_request(&marker, &receiver.url("/marker"), &["invite.sent"])).await;
        Self {
            kafka: producer(&stack.bootstrap),
            inbound: stack.topic("inbound"),
            receiver,
            marker,
            markers: 0,
        }
    }

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

    /// Publishes a marker event and waits for it: events published before it have been routed
    /// and sent (or refused) by then, give or take `GRACE`.
    async fn settle(&mut self, name: &str) {
        self.markers += 1;
        let marker = self.marker.clone();
        self.publish(&marker, EventType::InviteSent, &format!("marker-{name}")).await;
        self.receiver.wait_for("/marker", self.markers, WAIT).await;
        tokio::time::sleep(GRACE).await;
    }

    fn ids(&self, path: &str) -> Vec<String> {
        self.receiver.at(path).iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect()
    }
}

/// Whether the last request to `path` carries a signature made with `secret`.
fn last_signed_with(p: &Pipeline, path: &str, secret: &str) -> bool {
    let last = p.receiver.at(path).pop().expect("a request");
    verify(
        secret,
        last.header("webhook-id").unwrap(),
        last.header("webhook-timestamp").unwrap(),
        &last.body,
        last.header("webhook-signature").unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_ten_minute_caches_pause_types_and_secret_changes_apply_within_a_second() {
    let stack = Stack::start_with(&LONG_TTL).await;
    let db = stack.database().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let mut p = Pipeline::start(&stack, &mut c).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let created = create(&mut c, create_request(&portal, &p.receiver.url("/s1"), &["user.updated"])).await;
    let (id, first_secret) = (created.subscription.unwrap().id, created.signing_secret);
    // Listening from here to the end (asserted there), so entries never fall back to the 1 s
    // lifetime of an unlistened cache: only the notifications can apply the changes below.
    wait_for_listeners(&db).await;
    // Warm both caches: a stale entry, not a cold miss, is what each change must overcome.
    p.publish(&portal, EventType::UserUpdated, "warm-up").await;
    p.receiver.wait_for("/s1", 1, WAIT).await;

    // Pause: the router stops routing to it.
    c.pause_subscription(api::PauseSubscriptionRequest { id: id.clone() }).await.unwrap();
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::UserUpdated, "while-paused").await;
    p.settle("paused").await;
    assert_eq!(p.ids("/s1"), ["warm-up"], "nothing while paused");

    c.resume_subscription(api::ResumeSubscriptionRequest { id: id.clone() }).await.unwrap();
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::UserUpdated, "after-resume").await;
    p.receiver.wait_for("/s1", 2, WAIT).await;

    // New event types: the old type stops, the new one arrives.
    c.update_subscription(api::UpdateSubscriptionRequest {
        id: id.clone(),
        event_types: Some(api::EventTypeList { codes: vec!["invite.sent".into()] }),
        ..Default::default()
    })
    .await
    .unwrap();
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::UserUpdated, "old-type").await;
    p.publish(&portal, EventType::InviteSent, "new-type").await;
    p.receiver.wait_for("/s1", 3, WAIT).await;
    p.settle("types").await;
    assert_eq!(p.ids("/s1"), ["warm-up", "after-resume", "new-type"]);
    assert!(last_signed_with(&p, "/s1", &first_secret));

    // A rotation with no overlap: the sender signs with the new secret only.
    let rotated = c
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: Some(prost_types::Duration { seconds: 0, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .signing_secret;
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::InviteSent, "after-rotation").await;
    p.receiver.wait_for("/s1", 4, WAIT).await;
    assert!(last_signed_with(&p, "/s1", &rotated), "signed with the new secret");
    assert!(!last_signed_with(&p, "/s1", &first_secret), "the old secret ended with the rotation");

    // A rotation with an overlap: both sign until it ends, then the old one's expiry (which no
    // write announces) ends it in the sender's cache too.
    let overlap = Duration::from_secs(5);
    let asked = std::time::Instant::now();
    let third = c
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: Some(prost_types::Duration { seconds: overlap.as_secs() as i64, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .signing_secret;
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::InviteSent, "in-overlap").await;
    let arrived = p.receiver.wait_for("/s1", 5, WAIT).await[4].at;
    assert!(last_signed_with(&p, "/s1", &third), "the new secret signs at once");
    // The overlap ends `overlap` after the server handled the call, so after `asked + overlap`
    // at the earliest: a request that arrived before that was signed within it. (On a machine
    // slow enough to miss it, the check has nothing to say.)
    if arrived < asked + overlap {
        assert!(last_signed_with(&p, "/s1", &rotated), "the previous secret signs in the overlap");
    }
    tokio::time::sleep((asked + overlap + PROPAGATION).saturating_duration_since(std::time::Instant::now()))
        .await;
    p.publish(&portal, EventType::InviteSent, "after-overlap").await;
    p.receiver.wait_for("/s1", 6, WAIT).await;
    assert!(last_signed_with(&p, "/s1", &third));
    assert!(!last_signed_with(&p, "/s1", &rotated), "the overlap ended");

    for service in [Service::Router, Service::Sender] {
        assert_eq!(restarts(&stack, service).await, 0, "{service:?}'s listener never reconnected");
    }
}

/// The listeners' connections (`<service> changes`, see `synap_db::changes`), as
/// `application_name`s.
async fn listeners(db: &tokio_postgres::Client) -> Vec<String> {
    let rows = db
        .query(
            "SELECT application_name FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE '% changes'
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

async fn wait_for_listeners(db: &tokio_postgres::Client) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while listeners(db).await != ["synap-router changes", "synap-sender changes"] {
        assert!(tokio::time::Instant::now() < deadline, "listeners: {:?}", listeners(db).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `synap_change_listener_restarts_total` of one service.
async fn restarts(stack: &Stack, service: Service) -> u64 {
    stack.metric(service, "synap_change_listener_restarts_total").await.map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_listener_connection_still_ends_with_fresh_data() {
    let stack = Stack::start_with(&LONG_TTL).await;
    let db = stack.database().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let mut p = Pipeline::start(&stack, &mut c).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let created = create(&mut c, create_request(&portal, &p.receiver.url("/s1"), &["user.updated"])).await;
    let id = created.subscription.unwrap().id;
    p.publish(&portal, EventType::UserUpdated, "warm-up").await;
    p.receiver.wait_for("/s1", 1, WAIT).await;
    wait_for_listeners(&db).await;
    let before = (restarts(&stack, Service::Router).await, restarts(&stack, Service::Sender).await);

    // Kill both listeners' connections and change the subscription at once, for the router (its
    // types) and the sender (its URL): the change lands while they reconnect, unannounced.
    let killed = db
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name LIKE '% changes'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "one listener each in the router and the sender");
    c.update_subscription(api::UpdateSubscriptionRequest {
        id: id.clone(),
        url: Some(p.receiver.url("/moved")),
        event_types: Some(api::EventTypeList { codes: vec!["invite.sent".into()] }),
        ..Default::default()
    })
    .await
    .unwrap();

    // Reconnected (the first retry comes after 100 ms), every cache cleared: fresh data.
    wait_for_listeners(&db).await;
    tokio::time::sleep(PROPAGATION).await;
    p.publish(&portal, EventType::UserUpdated, "old-type").await;
    p.publish(&portal, EventType::InviteSent, "new-type").await;
    p.receiver.wait_for("/moved", 1, WAIT).await;
    p.settle("reconnected").await;
    assert_eq!(p.ids("/s1"), ["warm-up"], "nothing at the old URL");
    assert_eq!(p.ids("/moved"), ["new-type"], "only the new type, at the new URL");

    // Each lost connection is counted.
    let after = (restarts(&stack, Service::Router).await, restarts(&stack, Service::Sender).await);
    assert!(after.0 > before.0 && after.1 > before.1, "restarts before {before:?}, after {after:?}");
}
