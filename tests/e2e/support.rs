//! Shared steps of the end-to-end tests.

use serde_json::{Value, json};
use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_tests::stack::Control;

/// A fresh portal id, so tests never see each other's data.
pub fn portal_id() -> String {
    format!("portal-{}", &uuid::Uuid::new_v4().simple().to_string()[..10])
}

pub async fn upsert_portal(control: &mut Control, id: &str, plan: api::Plan, features: &[&str]) {
    control
        .upsert_portal(api::UpsertPortalRequest {
            id: id.into(),
            plan: plan as i32,
            features: features.iter().map(|f| f.to_string()).collect(),
        })
        .await
        .expect("upsert portal");
}

pub struct NewSub<'a> {
    pub portal: &'a str,
    pub url: String,
    pub types: Vec<EventType>,
    pub basic_auth: Option<(&'a str, &'a str)>,
    pub enabled: bool,
}

impl<'a> NewSub<'a> {
    pub fn new(portal: &'a str, url: String, types: &[EventType]) -> Self {
        Self { portal, url, types: types.to_vec(), basic_auth: None, enabled: true }
    }
}

pub async fn subscribe(control: &mut Control, sub: NewSub<'_>) -> api::Subscription {
    control
        .create_subscription(api::CreateSubscriptionRequest {
            portal_id: sub.portal.into(),
            url: sub.url,
            event_types: sub.types.iter().map(|t| t.code().to_owned()).collect(),
            description: "e2e".into(),
            basic_auth: sub
                .basic_auth
                .map(|(u, p)| api::BasicAuth { username: u.into(), password: p.into() }),
            enabled: Some(sub.enabled),
            request_id: String::new(),
            ..Default::default()
        })
        .await
        .expect("create subscription")
        .into_inner()
        .subscription
        .unwrap()
}

/// The contract's example body of `ty` with unknown fields added at the top level and inside
/// the first nested object: both must reach the customer unchanged.
pub fn body_with_extras(ty: EventType) -> Value {
    let mut body = ty.example_body();
    let map = body.as_object_mut().unwrap();
    map.insert(
        "futureField".into(),
        json!({ "added": "2027-01-01", "n": 12345678901234_i64, "list": [1.5, null, true] }),
    );
    if let Some(Value::Object(nested)) = map.values_mut().find(|v| v.is_object()) {
        nested.insert("nestedExtra".into(), json!("kept"));
    }
    body
}

/// A JSON envelope as a platform service writes it.
pub fn envelope(ty: EventType, portal: &str, id: Option<&str>, data: &Value) -> Vec<u8> {
    let mut envelope = json!({ "type": ty.code(), "portalId": portal, "data": data });
    if let Some(id) = id {
        envelope["id"] = json!(id);
    }
    serde_json::to_vec(&envelope).unwrap()
}

/// A fresh Pro portal with one subscription at `url` to `ty`; returns the portal id.
pub async fn pro_portal_subscribed(control: &mut Control, url: String, ty: EventType) -> String {
    let portal = portal_id();
    upsert_portal(control, &portal, api::Plan::Pro, &[]).await;
    subscribe(control, NewSub::new(&portal, url, &[ty])).await;
    portal
}

/// Standard Webhooks verification as a customer writes it, independent of the sender's code:
/// HMAC-SHA256 over `id.timestamp.body` with the base64-decoded secret after `whsec_`.
pub fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use hmac::{KeyInit, Mac};
    let key = STANDARD.decode(secret.trim_start_matches("whsec_")).expect("secret is base64");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    header.split(' ').any(|candidate| candidate == expected)
}

/// Standard Webhooks v1a verification as a customer writes it, with ring's Ed25519 (the sender
/// signs with ed25519-dalek): true when a `v1a,` signature in `header` verifies `id.timestamp.body`
/// with `public_key` (`whpk_` + base64 of the 32-byte key).
pub fn verify_v1a(public_key: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    let key = STANDARD.decode(public_key.strip_prefix("whpk_").expect("a whpk_ key")).expect("base64");
    assert_eq!(key.len(), 32, "an Ed25519 public key");
    let key = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    header
        .split(' ')
        .filter_map(|candidate| candidate.strip_prefix("v1a,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .any(|signature| key.verify(&signed, &signature).is_ok())
}
