//! Tests that need the sender of the delivery issue (#4): the test send's outcome comes from the
//! sender's attempt log, and signatures from its signing. Until that sender is merged, leave
//! this module out: `cargo nextest run -E 'not test(/^test_send::/)'`.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::{produce, producer};
use synap_tests::{Receiver, Stack};

use crate::control_support::{admin_token, client, create, create_request, upsert};
use crate::support::{envelope, portal_id};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_send_reaches_the_endpoint_and_reports_the_outcome() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let sub = create(&mut c, create_request(&portal, &receiver.url("/hook"), &["exam.completed"])).await;
    let id = sub.subscription.unwrap().id;

    let outcome = c
        .test_send(api::TestSendRequest { subscription_id: id.clone(), event_type: "invite.sent".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(outcome.event_id.starts_with("test_"), "{outcome:?}");
    assert_eq!((outcome.outcome.as_str(), outcome.status_code), ("delivered", Some(204)));
    assert!(outcome.error.is_empty() && outcome.error_class.is_empty());
    let got = receiver.wait_for("/hook", 1, Duration::from_secs(5)).await;
    assert_eq!(got[0].header("webhook-id"), Some(outcome.event_id.as_str()));
    assert_eq!(got[0].header("synap-event-type"), Some("invite.sent"));
    assert_eq!(got[0].json(), EventType::InviteSent.example_body());

    // A paused subscription gets nothing; an unreachable endpoint reports its error.
    c.pause_subscription(api::PauseSubscriptionRequest { id: id.clone() }).await.unwrap();
    let status = c
        .test_send(api::TestSendRequest { subscription_id: id.clone(), event_type: String::new() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let dead =
        create(&mut c, create_request(&portal, &format!("http://{closed}/gone"), &["user.updated"])).await;
    let failed = c
        .test_send(api::TestSendRequest {
            subscription_id: dead.subscription.unwrap().id,
            event_type: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_ne!(failed.outcome, "delivered");
    assert_eq!(failed.status_code, None);
    assert!(!failed.error.is_empty(), "{failed:?}");
}

/// HMAC-SHA256 written out from RFC 2104, independent of the sender's signing code.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().to_vec()
}

fn signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).unwrap();
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &signed)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_secrets_sign_and_afterwards_only_the_new_one() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let created = create(&mut c, create_request(&portal, &receiver.url("/hook"), &["user.updated"])).await;
    let id = created.subscription.unwrap().id;
    // A first event through the whole pipeline before the rotation, so that the overlap window
    // measures the rotation, not how long the stages take to join their groups on a busy machine.
    let kafka = producer(&stack.bootstrap);
    let body = EventType::UserUpdated.example_body();
    let inbound = stack.topic("inbound");
    produce(
        &kafka,
        &inbound,
        &portal,
        &envelope(EventType::UserUpdated, &portal, Some("rot-0"), &body),
        None,
    )
    .await;
    receiver.wait_for("/hook", 1, Duration::from_secs(60)).await;
    let rotated = c
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: Some(prost_types::Duration { seconds: 6, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_secs(2)).await;
    produce(
        &kafka,
        &inbound,
        &portal,
        &envelope(EventType::UserUpdated, &portal, Some("rot-1"), &body),
        None,
    )
    .await;
    let got = receiver.wait_for("/hook", 2, Duration::from_secs(30)).await;
    let (ts, header) =
        (got[1].header("webhook-timestamp").unwrap(), got[1].header("webhook-signature").unwrap());
    let sent: Vec<&str> = header.split(' ').collect();
    assert!(
        sent.contains(&signature(&rotated.signing_secret, "rot-1", ts, &got[1].body).as_str()),
        "{header}"
    );
    assert!(
        sent.contains(&signature(&created.signing_secret, "rot-1", ts, &got[1].body).as_str()),
        "{header}"
    );

    // After the overlap (and the sender's cache), only the new secret signs.
    tokio::time::sleep(Duration::from_secs(6)).await;
    produce(
        &kafka,
        &inbound,
        &portal,
        &envelope(EventType::UserUpdated, &portal, Some("rot-2"), &body),
        None,
    )
    .await;
    let got = receiver.wait_for("/hook", 3, Duration::from_secs(30)).await;
    let ts = got[2].header("webhook-timestamp").unwrap();
    assert_eq!(
        got[2].header("webhook-signature").unwrap(),
        signature(&rotated.signing_secret, "rot-2", ts, &got[2].body)
    );
}
