//! Standard Webhooks v1a (Ed25519) signatures, verified the way a customer would: with the
//! `whpk_` public key alone and an implementation independent of the sender's (ring here,
//! ed25519-dalek there). Rotation overlaps and the move from v1 to v1a send every valid
//! signature.

use std::time::{Duration, Instant};

use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::{Plan, SignatureScheme};
use synap_tests::kafka::{produce, producer};
use synap_tests::{Receiver, Stack};
use tonic::Code;

use crate::control_support::{admin_token, bad_field, client, create, create_request, database, upsert};
use crate::support::{envelope, portal_id, verify, verify_v1a};

const WAIT: Duration = Duration::from_secs(60);

fn signature_of(request: &synap_tests::Received) -> (&str, &str, Vec<&str>) {
    let header = request.header("webhook-signature").expect("webhook-signature");
    (
        request.header("webhook-id").unwrap(),
        request.header("webhook-timestamp").unwrap(),
        header.split(' ').collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1a_deliveries_retries_and_test_sends_verify_with_the_public_key_alone() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    receiver.fail_first_attempt("/v1a", 500);
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;

    let mut request = create_request(&portal, &receiver.url("/v1a"), &["user.updated"]);
    request.signature_scheme = 9;
    assert_eq!(
        bad_field(&c.create_subscription(request.clone()).await.unwrap_err()),
        (Code::InvalidArgument, "signature_scheme".into())
    );
    request.signature_scheme = SignatureScheme::V1a as i32;
    request.request_id = "v1a-create".into();
    let created = create(&mut c, request.clone()).await;
    assert!(created.signing_secret.is_empty(), "no shared secret for v1a");
    assert!(!format!("{created:?}").contains("whsk_"), "the signing key never leaves Synap");
    let sub = created.subscription.unwrap();
    assert_eq!(sub.signature_scheme, SignatureScheme::V1a as i32);
    let [key] = sub.signing_public_keys.as_slice() else { panic!("one public key: {sub:?}") };
    assert!(key.public_key.starts_with("whpk_") && key.expires_at.is_none(), "{key:?}");
    let public_key = key.public_key.clone();
    let got =
        c.get_subscription(api::GetSubscriptionRequest { id: sub.id.clone() }).await.unwrap().into_inner();
    assert_eq!(
        (got.signature_scheme, &got.signing_public_keys),
        (sub.signature_scheme, &sub.signing_public_keys)
    );

    // A retried create replays the subscription, still without any secret.
    let replay = create(&mut c, request).await;
    assert_eq!(
        replay.subscription.as_ref().map(|s| (&s.id, &s.signing_public_keys)),
        Some((&sub.id, &sub.signing_public_keys))
    );
    assert!(replay.signing_secret.is_empty(), "{replay:?}");

    // Stored sealed: the row names its scheme and public key; its secret column holds no key text.
    let db = database(&stack).await;
    let row = db
        .query_one(
            "SELECT scheme, public_key, secret FROM subscription_secrets WHERE subscription_id = $1",
            &[&sub.id],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, Option<String>>(1)),
        ("v1a".into(), Some(public_key.clone()))
    );
    let sealed: Vec<u8> = row.get(2);
    assert!(!sealed.windows(5).any(|w| w == b"whsk_"), "sealed, not stored as text");

    // A delivery and its retry (the first attempt is answered 500): each signed once, with v1a.
    let kafka = producer(&stack.bootstrap);
    let body = EventType::UserUpdated.example_body();
    produce(
        &kafka,
        &stack.topic("inbound"),
        &portal,
        &envelope(EventType::UserUpdated, &portal, Some("v1a-1"), &body),
        None,
    )
    .await;
    let got = receiver.wait_for("/v1a", 2, WAIT).await;
    for (attempt, request) in got.iter().enumerate() {
        assert_eq!(request.header("synap-delivery-attempt"), Some((attempt + 1).to_string().as_str()));
        let (id, ts, parts) = signature_of(request);
        assert_eq!(id, "v1a-1");
        assert_eq!(parts.len(), 1, "{parts:?}");
        assert!(parts[0].starts_with("v1a,"), "{parts:?}");
        let header = parts[0];
        assert!(verify_v1a(&public_key, id, ts, &request.body, header), "attempt {}: {header}", attempt + 1);
        // The verifier can fail: another body, timestamp or id does not verify.
        assert!(!verify_v1a(&public_key, id, ts, b"{}", header));
        assert!(!verify_v1a(&public_key, id, "1", &request.body, header));
        assert!(!verify_v1a(&public_key, "v1a-2", ts, &request.body, header));
    }

    // A test send is signed the same way.
    let outcome = c
        .test_send(api::TestSendRequest { subscription_id: sub.id.clone(), event_type: String::new() })
        .await
        .unwrap()
        .into_inner();
    let got = receiver.wait_for("/v1a", 3, WAIT).await;
    let (id, ts, parts) = signature_of(&got[2]);
    assert_eq!(id, outcome.event_id);
    assert_eq!(parts.len(), 1);
    assert!(verify_v1a(&public_key, id, ts, &got[2].body, parts[0]), "{parts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1a_rotation_overlaps_and_a_v1_subscription_moves_to_v1a() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let mut request = create_request(&portal, &receiver.url("/a"), &["user.updated"]);
    request.signature_scheme = SignatureScheme::V1a as i32;
    let a = create(&mut c, request).await.subscription.unwrap();
    let a_old = a.signing_public_keys[0].public_key.clone();
    let b_created = create(&mut c, create_request(&portal, &receiver.url("/b"), &["user.updated"])).await;
    let b = b_created.subscription.unwrap();
    let b_old = b_created.signing_secret;
    assert!(b_old.starts_with("whsec_") && b.signature_scheme == SignatureScheme::V1 as i32);
    assert!(b.signing_public_keys.is_empty(), "a v1 subscription has no public key");

    // A first event through the whole pipeline before the rotations, so that the overlap window
    // measures the rotation, not how long the stages take to join their groups on a busy machine.
    let kafka = producer(&stack.bootstrap);
    let body = EventType::UserUpdated.example_body();
    let inbound = stack.topic("inbound");
    let send = |id: &'static str| {
        let record = envelope(EventType::UserUpdated, &portal, Some(id), &body);
        let (kafka, inbound, portal) = (&kafka, &inbound, &portal);
        async move { produce(kafka, inbound, portal, &record, None).await }
    };
    send("rot-0").await;
    receiver.wait_for("/a", 1, WAIT).await;
    receiver.wait_for("/b", 1, WAIT).await;

    const OVERLAP: u64 = 8;
    let rotate = |id: &str, scheme: SignatureScheme| api::RotateSigningSecretRequest {
        subscription_id: id.to_owned(),
        overlap: Some(prost_types::Duration { seconds: OVERLAP as i64, nanos: 0 }),
        signature_scheme: scheme as i32,
    };
    let rotated_at = Instant::now();
    // Unspecified keeps the scheme: a v1a subscription gets a new v1a key.
    let a_rotated =
        c.rotate_signing_secret(rotate(&a.id, SignatureScheme::Unspecified)).await.unwrap().into_inner();
    assert_eq!(a_rotated.signature_scheme, SignatureScheme::V1a as i32);
    assert!(a_rotated.signing_secret.is_empty(), "{a_rotated:?}");
    let a_new = a_rotated.public_key.clone();
    assert!(a_new.starts_with("whpk_") && a_new != a_old);
    // V1A moves the v1 subscription to Ed25519.
    let b_rotated = c.rotate_signing_secret(rotate(&b.id, SignatureScheme::V1a)).await.unwrap().into_inner();
    assert_eq!(
        (b_rotated.signature_scheme, b_rotated.signing_secret.as_str()),
        (SignatureScheme::V1a as i32, "")
    );
    let b_new = b_rotated.public_key.clone();

    // The API shows every public key that verifies now, the current one first.
    let get = |id: &str| api::GetSubscriptionRequest { id: id.to_owned() };
    let a_now = c.get_subscription(get(&a.id)).await.unwrap().into_inner();
    let keys: Vec<_> =
        a_now.signing_public_keys.iter().map(|k| (k.public_key.as_str(), k.expires_at.is_some())).collect();
    assert_eq!(keys, [(a_new.as_str(), false), (a_old.as_str(), true)]);
    let b_now = c.get_subscription(get(&b.id)).await.unwrap().into_inner();
    assert_eq!(b_now.signature_scheme, SignatureScheme::V1a as i32);
    let keys: Vec<_> = b_now.signing_public_keys.iter().map(|k| k.public_key.as_str()).collect();
    assert_eq!(keys, [b_new.as_str()], "the previous v1 secret has no public key");

    // During the overlap (past the sender's 1 s target cache): both keys sign.
    tokio::time::sleep(Duration::from_secs(2)).await;
    send("rot-1").await;
    let got = receiver.wait_for("/a", 2, WAIT).await;
    let (id, ts, parts) = signature_of(&got[1]);
    assert_eq!((id, parts.len()), ("rot-1", 2), "{parts:?}");
    assert!(parts.iter().all(|p| p.starts_with("v1a,")), "{parts:?}");
    assert!(verify_v1a(&a_new, id, ts, &got[1].body, parts[0]), "the current key signs first");
    assert!(verify_v1a(&a_old, id, ts, &got[1].body, parts[1]), "the previous key still signs");
    let got = receiver.wait_for("/b", 2, WAIT).await;
    let (id, ts, parts) = signature_of(&got[1]);
    assert_eq!((id, parts.len()), ("rot-1", 2), "{parts:?}");
    assert!(parts[0].starts_with("v1a,") && parts[1].starts_with("v1,"), "{parts:?}");
    let header = got[1].header("webhook-signature").unwrap();
    assert!(verify_v1a(&b_new, id, ts, &got[1].body, header), "{header}");
    assert!(verify(&b_old, id, ts, &got[1].body, header), "{header}");

    // After the overlap: the new key alone.
    let after = rotated_at + Duration::from_secs(OVERLAP) + Duration::from_millis(1500);
    tokio::time::sleep_until(after.into()).await;
    send("rot-2").await;
    let got = receiver.wait_for("/a", 3, WAIT).await;
    let (id, ts, parts) = signature_of(&got[2]);
    assert_eq!((id, parts.len()), ("rot-2", 1), "{parts:?}");
    assert!(verify_v1a(&a_new, id, ts, &got[2].body, parts[0]));
    assert!(!verify_v1a(&a_old, id, ts, &got[2].body, parts[0]));
    let got = receiver.wait_for("/b", 3, WAIT).await;
    let (id, ts, parts) = signature_of(&got[2]);
    assert_eq!((id, parts.len()), ("rot-2", 1), "{parts:?}");
    assert!(verify_v1a(&b_new, id, ts, &got[2].body, parts[0]));
    assert!(!verify(&b_old, id, ts, &got[2].body, parts[0]));
    let a_now = c.get_subscription(get(&a.id)).await.unwrap().into_inner();
    let keys: Vec<_> = a_now.signing_public_keys.iter().map(|k| k.public_key.as_str()).collect();
    assert_eq!(keys, [a_new.as_str()], "the expired key is no longer shown");

    // And back to v1: a new whsec_ secret, shown once; no public key left after a zero overlap.
    let mut back = rotate(&b.id, SignatureScheme::V1);
    back.overlap = Some(prost_types::Duration { seconds: 0, nanos: 0 });
    let back = c.rotate_signing_secret(back).await.unwrap().into_inner();
    assert!(back.signing_secret.starts_with("whsec_") && back.public_key.is_empty(), "{back:?}");
    let b_now = c.get_subscription(get(&b.id)).await.unwrap().into_inner();
    assert_eq!(b_now.signature_scheme, SignatureScheme::V1 as i32);
    assert!(b_now.signing_public_keys.is_empty(), "{:?}", b_now.signing_public_keys);
    let mut bad = rotate(&b.id, SignatureScheme::V1);
    bad.signature_scheme = 9;
    assert_eq!(
        bad_field(&c.rotate_signing_secret(bad).await.unwrap_err()),
        (Code::InvalidArgument, "signature_scheme".into())
    );
}
