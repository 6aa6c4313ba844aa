//! Secrets at rest: a service with the wrong key refuses to start, a sealed value copied into
//! another row does not open, values from before key ids still open, and a key rotation while
//! events flow loses no signature and no basic auth.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng};
use aes_gcm::{Aes256Gcm, Key};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use synap_contract::EventType;
use synap_db::secret_box::SecretError;
use synap_db::{DbError, SecretBox};
use synap_proto::control::v1 as api;
use synap_runtime::Classify;
use synap_tests::kafka::{produce, producer};
use synap_tests::stack::{Control, ENCRYPTION_KEY};
use synap_tests::{Received, Receiver, Service, Stack};

use crate::support::verify;
use crate::support::{envelope, portal_id, upsert_portal};

/// The stack's key (`ENCRYPTION_KEY`) is key A; these are the keys it rotates to.
const KEY_B: &str = "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=";
const KEY_C: &str = "Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0M=";
const WAIT: Duration = Duration::from_secs(60);
/// How long a start that must fail may take (the sender creates its tier topics first).
const REFUSAL: Duration = Duration::from_secs(60);

fn key_id(key: &str) -> String {
    SecretBox::from_base64(key).unwrap().sealing_key_id().to_string()
}

/// `encryption.keys` as an environment variable.
fn keys(list: &[&str]) -> String {
    format!("[{}]", list.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(", "))
}

/// Configures the stack's services (from their next start) with `list` as `encryption.keys`.
fn use_keys(stack: &mut Stack, list: &[&str]) {
    stack.set_env("SYNAP_ENCRYPTION__KEY", None);
    stack.set_env("SYNAP_ENCRYPTION__KEYS", Some(&keys(list)));
}

fn pool(stack: &Stack) -> synap_db::Pool {
    synap_db::connect(&synap_db::DatabaseConfig { url: stack.database_url(), pool_size: 2 }).unwrap()
}

async fn canaries(stack: &Stack) -> Vec<String> {
    let mut ids: Vec<String> = stack
        .database()
        .await
        .query("SELECT key_id FROM encryption_canaries", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    ids.sort();
    ids
}

/// The first bytes of every sealed value in the database, with where it is.
async fn sealed_headers(stack: &Stack) -> Vec<(String, Vec<u8>)> {
    let db = stack.database().await;
    let mut all = Vec::new();
    for (query, what) in [
        (
            "SELECT id, basic_auth_password FROM subscriptions WHERE basic_auth_password IS NOT NULL",
            "password",
        ),
        ("SELECT id::text, secret FROM subscription_secrets", "signing secret"),
        (
            "SELECT id::text, sealed_value FROM subscription_headers WHERE sealed_value IS NOT NULL",
            "secret header value",
        ),
    ] {
        for row in db.query(query, &[]).await.unwrap() {
            let value: Vec<u8> = row.get(1);
            all.push((format!("{what} {}", row.get::<_, String>(0)), value[..9.min(value.len())].to_vec()));
        }
    }
    all
}

/// A value sealed the way the version before key ids did: `[1][nonce][ciphertext + tag]`, no
/// associated data.
fn seal_layout_1(key: &str, plaintext: &[u8]) -> Vec<u8> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&STANDARD.decode(key).unwrap()));
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let mut out = vec![1u8];
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&cipher.encrypt(&nonce, plaintext).unwrap());
    out
}

/// A subscription to `attempt.completed` with basic auth; returns (id, signing secret).
async fn subscribe_with_auth(
    control: &mut Control,
    portal: &str,
    url: String,
    user: &str,
    password: &str,
) -> (String, String) {
    let created = control
        .create_subscription(api::CreateSubscriptionRequest {
            portal_id: portal.into(),
            url,
            event_types: vec![EventType::AttemptCompleted.code().into()],
            description: "secrets test".into(),
            basic_auth: Some(api::BasicAuth { username: user.into(), password: password.into() }),
            enabled: Some(true),
            ..Default::default()
        })
        .await
        .expect("create subscription")
        .into_inner();
    (created.subscription.unwrap().id, created.signing_secret)
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_started_with_another_key_refuses_to_start_and_names_the_key() {
    let stack = Stack::start().await;
    // control and sender started with key A: the database holds A's canary.
    let a = key_id(ENCRYPTION_KEY);
    assert_eq!(canaries(&stack).await, std::slice::from_ref(&a));

    for service in [Service::Sender, Service::Control] {
        let (status, printed) =
            stack.run_to_exit(service, &[("SYNAP_ENCRYPTION__KEY", KEY_B)], REFUSAL).await;
        assert!(!status.success(), "{service:?} started with the wrong key: {printed}");
        assert!(printed.contains(&format!("sealed under key id {a}")), "{service:?}: {printed}");
        assert!(printed.contains("`encryption.keys`") && printed.contains("`encryption.key`"), "{printed}");
        assert!(printed.contains(&key_id(KEY_B)), "names the configured key id too: {printed}");
        assert!(!printed.contains(KEY_B) && !printed.contains(ENCRYPTION_KEY), "a key was echoed: {printed}");

        // Several keys, none of them A: refused the same way.
        let (status, printed) = stack
            .run_to_exit(
                service,
                &[("SYNAP_ENCRYPTION__KEY", ""), ("SYNAP_ENCRYPTION__KEYS", &keys(&[KEY_B, KEY_C]))],
                REFUSAL,
            )
            .await;
        assert!(!status.success() && printed.contains(&format!("key id {a}")), "{service:?}: {printed}");

        // Both forms at once is a configuration error naming both keys, before anything else.
        let (status, printed) = stack
            .run_to_exit(service, &[("SYNAP_ENCRYPTION__KEYS", &keys(&[ENCRYPTION_KEY]))], REFUSAL)
            .await;
        assert!(!status.success());
        assert!(printed.contains("`encryption.key` and `encryption.keys` are both set"), "{printed}");

        let (status, printed) =
            stack.run_to_exit(service, &[("SYNAP_ENCRYPTION__KEY", "c2hvcnQ=")], REFUSAL).await;
        assert!(!status.success() && printed.contains("`encryption.key` must be 32 bytes"), "{printed}");
    }
    // A refused start wrote nothing: no canary of the wrong keys appeared.
    assert_eq!(canaries(&stack).await, [a]);
    // The running services were not disturbed.
    stack.wait_ready().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_value_copied_into_another_row_or_column_does_not_open() {
    let mut stack = Stack::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, api::Plan::Pro, &[]).await;
    let url = "http://127.0.0.1:9/hook".to_owned();
    let (source, _) = subscribe_with_auth(&mut control, &portal, url.clone(), "u1", "pa55-one").await;
    let (other, _) = subscribe_with_auth(&mut control, &portal, url.clone(), "u2", "pa55-two").await;
    let (third, _) = subscribe_with_auth(&mut control, &portal, url, "u3", "pa55-three").await;
    let (pool, secrets) = (pool(&stack), SecretBox::from_base64(ENCRYPTION_KEY).unwrap());

    // Read where they were written, they open.
    let target =
        synap_db::subscriptions::sending_state(&pool, &secrets, &other).await.unwrap().unwrap().target;
    assert_eq!(target.basic_auth.unwrap().password, "pa55-two");

    let db = stack.database().await;
    // Another subscription's password, copied over this one's.
    db.execute(
        "UPDATE subscriptions SET basic_auth_password =
            (SELECT basic_auth_password FROM subscriptions WHERE id = $1) WHERE id = $2",
        &[&source, &other],
    )
    .await
    .unwrap();
    let error = synap_db::subscriptions::sending_state(&pool, &secrets, &other).await.unwrap_err();
    assert!(
        matches!(&error, DbError::Secret(SecretError::Open { slot, .. }) if slot.row == other),
        "{error}"
    );
    assert!(error.is_permanent(), "retrying cannot open it: {error}");
    assert!(error.to_string().contains(&format!("subscriptions.basic_auth_password of {other}")), "{error}");
    assert!(!error.to_string().contains("pa55"), "{error}");

    // Another subscription's signing secret, copied over this one's.
    db.execute(
        "UPDATE subscription_secrets SET secret =
            (SELECT secret FROM subscription_secrets WHERE subscription_id = $1) WHERE subscription_id = $2",
        &[&source, &third],
    )
    .await
    .unwrap();
    let error = synap_db::secrets::valid(&pool, &secrets, &third).await.unwrap_err();
    assert!(
        matches!(&error, DbError::Secret(SecretError::Open { slot, .. })
        if slot.table == "subscription_secrets" && slot.row.starts_with(&third)),
        "{error}"
    );
    assert!(error.is_permanent());

    // The subscription's own signing secret, copied into its password column.
    db.execute(
        "UPDATE subscriptions SET basic_auth_password =
            (SELECT secret FROM subscription_secrets WHERE subscription_id = $1) WHERE id = $1",
        &[&source],
    )
    .await
    .unwrap();
    let error = synap_db::subscriptions::sending_state(&pool, &secrets, &source).await.unwrap_err();
    assert!(matches!(error, DbError::Secret(SecretError::Open { .. })), "{error}");

    // A reseal under a new key cannot open them either: it leaves them as they are, says where
    // they are (never what), fails, and keeps the canary of the key they are under.
    use_keys(&mut stack, &[KEY_B, ENCRYPTION_KEY]);
    let output = stack.try_admin(&["reseal"]).await;
    let (printed, complaint) =
        (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "{printed}");
    let a = key_id(ENCRYPTION_KEY);
    for place in [
        format!("subscriptions.basic_auth_password of {other}"),
        format!("subscriptions.basic_auth_password of {source}"),
        format!("subscription_secrets.secret of {third}/"),
    ] {
        assert!(printed.contains(&format!("unreadable: the sealed value in {place}")), "{place}: {printed}");
    }
    assert!(printed.contains(&format!("still sealed under key id {a}: 3\n")), "{printed}");
    assert!(complaint.contains("keep those keys in `encryption.keys`"), "{complaint}");
    assert!(!printed.contains("pa55"), "{printed}");
    let mut both = vec![a, key_id(KEY_B)];
    both.sort();
    assert_eq!(canaries(&stack).await, both);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_sealed_before_key_ids_still_open_and_are_resealed() {
    let mut stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, api::Plan::Pro, &[]).await;
    let (sub, signing_secret) =
        subscribe_with_auth(&mut control, &portal, receiver.url("/legacy"), "legacy-user", "placeholder")
            .await;
    // A secret header value, sealed under the stack's key (layout 2) like the signing secret.
    control
        .update_subscription(api::UpdateSubscriptionRequest {
            id: sub.clone(),
            headers: Some(api::CustomHeaderList {
                headers: vec![api::CustomHeader {
                    name: "X-Api-Key".into(),
                    value: "hdr-s3cret".into(),
                    secret: true,
                }],
            }),
            ..Default::default()
        })
        .await
        .expect("set a secret header");

    // The database as the version before key ids left it: the password in layout 1, no canary
    // (once every service has checked its keys and written its canary: that is when it is ready).
    stack.wait_ready().await;
    let db = stack.database().await;
    let old = seal_layout_1(ENCRYPTION_KEY, b"old-pa55");
    db.execute("UPDATE subscriptions SET basic_auth_password = $2 WHERE id = $1", &[&sub, &old])
        .await
        .unwrap();
    db.execute("DELETE FROM encryption_canaries", &[]).await.unwrap();

    // A sender with another key refuses: no key it has opens those values.
    let (status, printed) =
        stack.run_to_exit(Service::Sender, &[("SYNAP_ENCRYPTION__KEY", KEY_B)], REFUSAL).await;
    assert!(!status.success(), "{printed}");
    assert!(
        printed.contains("sealed before key ids existed") && printed.contains("`encryption.keys`"),
        "{printed}"
    );
    assert!(canaries(&stack).await.is_empty(), "the refused start wrote nothing");

    // With the right key it starts, keeping one of those values as their canary.
    stack.restart(Service::Sender).await;
    assert_eq!(canaries(&stack).await, [key_id(ENCRYPTION_KEY), "legacy".to_owned()]);
    let id = format!("legacy-{}", uuid::Uuid::new_v4().simple());
    let record = envelope(
        EventType::AttemptCompleted,
        &portal,
        Some(&id),
        &EventType::AttemptCompleted.example_body(),
    );
    produce(&producer(&stack.bootstrap), &stack.topic("inbound"), &portal, &record, None).await;
    let request = receiver.wait_for("/legacy", 1, WAIT).await.remove(0);
    assert_eq!(request.header("authorization"), Some(basic("legacy-user", "old-pa55").as_str()));
    let signature = request.header("webhook-signature").unwrap();
    assert!(verify(
        &signing_secret,
        &id,
        request.header("webhook-timestamp").unwrap(),
        &request.body,
        signature
    ));

    assert_eq!(request.header("x-api-key"), Some("hdr-s3cret"));

    // reseal under a new first key rewrites all three, in layout 2 with their slots, and drops
    // the canaries nothing needs any more.
    use_keys(&mut stack, &[KEY_B, ENCRYPTION_KEY]);
    let printed = stack.admin(&["reseal"]).await;
    let b = key_id(KEY_B);
    assert!(printed.contains(&format!("resealed 3 values under key id {b}")), "{printed}");
    assert!(printed.contains("subscription_headers.sealed_value: 1"), "{printed}");
    assert!(printed.contains("key id legacy any more"), "{printed}");
    assert!(printed.contains(&format!("key id {} any more", key_id(ENCRYPTION_KEY))), "{printed}");
    assert_eq!(canaries(&stack).await, std::slice::from_ref(&b));
    let header = SecretBox::from_base64(KEY_B).unwrap().sealing_key_id().header();
    for (place, first) in sealed_headers(&stack).await {
        assert_eq!(first, header, "{place} is under key B");
    }
    let only_b = SecretBox::from_base64(KEY_B).unwrap();
    let target =
        synap_db::subscriptions::sending_state(&pool(&stack), &only_b, &sub).await.unwrap().unwrap().target;
    assert_eq!(target.basic_auth.unwrap().password, "old-pa55");
    assert_eq!(target.signing_keys, [synap_db::secrets::SigningKey::V1(signing_secret)]);
    assert_eq!(
        target.headers,
        [synap_db::custom_headers::CustomHeader {
            name: "X-Api-Key".into(),
            value: "hdr-s3cret".into(),
            secret: true
        }]
    );
    // Running it again finds nothing to do.
    let again = stack.admin(&["reseal"]).await;
    assert!(again.starts_with(&format!("resealed 0 values under key id {b}\n")), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reseal_never_overwrites_a_value_changed_while_it_runs() {
    let mut stack = Stack::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, api::Plan::Pro, &[]).await;
    let (sub, _) =
        subscribe_with_auth(&mut control, &portal, "http://127.0.0.1:9/h".into(), "user", "before").await;

    // Another writer holds the row while reseal reads it, and changes it before letting go.
    let writer = stack.database().await;
    writer.batch_execute("BEGIN").await.unwrap();
    writer.execute("SELECT 1 FROM subscriptions WHERE id = $1 FOR UPDATE", &[&sub]).await.unwrap();
    use_keys(&mut stack, &[KEY_B, ENCRYPTION_KEY]);
    let reseal = tokio::spawn(stack.admin_command(&["reseal"]));
    let watcher = stack.database().await;
    synap_tests::postgres::until_waiting(
        &watcher,
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'UPDATE subscriptions%'",
        Duration::from_secs(30),
        "reseal never reached the locked row",
    )
    .await;
    // What control would write with the old key order: a new password, under key A.
    let under_a = SecretBox::from_base64(ENCRYPTION_KEY).unwrap();
    let newer = under_a.seal(b"after", &synap_db::subscriptions::password_slot(&sub));
    writer
        .execute("UPDATE subscriptions SET basic_auth_password = $2 WHERE id = $1", &[&sub, &newer])
        .await
        .unwrap();
    writer.batch_execute("COMMIT").await.unwrap();

    let output = reseal.await.unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        printed.contains("changed by another writer meanwhile (left as written, checked again): 1"),
        "{printed}"
    );
    // The newer value survived, and the next pass resealed it under B.
    let only_b = SecretBox::from_base64(KEY_B).unwrap();
    let target =
        synap_db::subscriptions::sending_state(&pool(&stack), &only_b, &sub).await.unwrap().unwrap().target;
    assert_eq!(target.basic_auth.unwrap().password, "after");
}

/// Publishes `attempt.completed` for one portal every few milliseconds until stopped.
struct Publisher {
    sent: Arc<Mutex<Vec<(String, Instant)>>>,
    running: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn start(stack: &Stack, portal: &str) -> Self {
        let (kafka, topic, portal) = (producer(&stack.bootstrap), stack.topic("inbound"), portal.to_owned());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicBool::new(true));
        let (log, go) = (sent.clone(), running.clone());
        let task = tokio::spawn(async move {
            let body = EventType::AttemptCompleted.example_body();
            let mut n = 0;
            while go.load(Ordering::Relaxed) {
                let id = format!("rot-{n:05}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
                let record = envelope(EventType::AttemptCompleted, &portal, Some(&id), &body);
                produce(&kafka, &topic, &portal, &record, None).await;
                log.lock().unwrap().push((id, Instant::now()));
                n += 1;
                tokio::time::sleep(Duration::from_millis(60)).await;
            }
        });
        Self { sent, running, task }
    }

    async fn stop(self) -> Vec<(String, Instant)> {
        self.running.store(false, Ordering::Relaxed);
        self.task.await.unwrap();
        self.sent.lock().unwrap().clone()
    }
}

/// One subscription of the rotation test and what its requests must carry.
struct Endpoint {
    id: String,
    path: String,
    auth: String,
    /// Every signing secret it had; a request verifies with one of them.
    secrets: Vec<String>,
    /// Events published after this must reach it (its creation plus the routers' cache time).
    receives_from: Instant,
    /// Events published after this must verify with the last secret (after its rotation).
    last_secret_from: Instant,
}

impl Endpoint {
    async fn create(control: &mut Control, portal: &str, receiver: &Receiver, name: &str) -> Self {
        let path = format!("/{name}");
        let password = format!("pa55-{name}-{}", uuid::Uuid::new_v4().simple());
        let (id, secret) = subscribe_with_auth(control, portal, receiver.url(&path), name, &password).await;
        // Changes reach every router and sender within 2 s (README); a margin on top.
        let receives_from = Instant::now() + Duration::from_secs(3);
        Self {
            id,
            path,
            auth: basic(name, &password),
            secrets: vec![secret],
            receives_from,
            last_secret_from: receives_from,
        }
    }

    fn check(&self, request: &Received) {
        let id = request.header("webhook-id").expect("webhook-id");
        assert_eq!(
            request.header("authorization"),
            Some(self.auth.as_str()),
            "{}: basic auth of {id}",
            self.path
        );
        let (ts, signature) =
            (request.header("webhook-timestamp").unwrap(), request.header("webhook-signature").unwrap());
        assert!(
            self.secrets.iter().any(|s| verify(s, id, ts, &request.body, signature)),
            "{}: signature of {id} verifies with one of its secrets",
            self.path
        );
    }
}

/// Rolls control and sender (as a rolling update would: one at a time, each ready before the
/// next) and waits until deliveries flow again after the sender's restart.
async fn roll(stack: &mut Stack, receiver: &Receiver, path: &str) {
    stack.restart(Service::Sender).await;
    let restarted = Instant::now();
    stack.restart(Service::Control).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !receiver.at(path).iter().any(|r| r.at > restarted) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path}: nothing delivered within {WAIT:?} of the sender's restart; see {}",
            stack.logs.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_while_events_flow_and_every_delivery_authenticates() {
    let mut stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut control = stack.control().await;
    let portal = portal_id();
    upsert_portal(&mut control, &portal, api::Plan::Pro, &[]).await;
    let (a, b) = (key_id(ENCRYPTION_KEY), key_id(KEY_B));
    let mut endpoints = vec![
        Endpoint::create(&mut control, &portal, &receiver, "under-a-1").await,
        Endpoint::create(&mut control, &portal, &receiver, "under-a-2").await,
    ];
    tokio::time::sleep(Duration::from_secs(3)).await;
    let publisher = Publisher::start(&stack, &portal);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 1. The new key second everywhere (it opens, A still seals); roll.
    use_keys(&mut stack, &[ENCRYPTION_KEY, KEY_B]);
    roll(&mut stack, &receiver, &endpoints[0].path).await;
    let mut control = stack.control().await;
    endpoints.push(Endpoint::create(&mut control, &portal, &receiver, "under-a-3").await);
    assert_eq!(canaries(&stack).await, std::slice::from_ref(&a), "nothing is sealed under B yet");

    // 2. The new key first (it seals, A still opens); roll.
    use_keys(&mut stack, &[KEY_B, ENCRYPTION_KEY]);
    roll(&mut stack, &receiver, &endpoints[0].path).await;
    let mut control = stack.control().await;
    endpoints.push(Endpoint::create(&mut control, &portal, &receiver, "under-b").await);
    // A signing secret rotated now is sealed under B; the old one (under A) keeps signing.
    let rotated = control
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: endpoints[0].id.clone(),
            overlap: Some(prost_types::Duration { seconds: 3600, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    endpoints[0].secrets.push(rotated.signing_secret);
    endpoints[0].last_secret_from = Instant::now() + Duration::from_secs(3);
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(canaries(&stack).await, both);

    // 3. Reseal everything under B while events flow; A's canary goes.
    let printed = stack.admin(&["reseal"]).await;
    // Under A: 3 passwords and 3 signing secrets (endpoint 0's first one among them).
    assert!(printed.contains(&format!("resealed 6 values under key id {b}")), "{printed}");
    assert!(printed.contains(&format!("no value is sealed under key id {a} any more")), "{printed}");
    assert_eq!(canaries(&stack).await, std::slice::from_ref(&b));
    let header = SecretBox::from_base64(KEY_B).unwrap().sealing_key_id().header();
    for (place, first) in sealed_headers(&stack).await {
        assert_eq!(first, header, "{place} is under key B after reseal");
    }

    // 4. The old key removed; roll. The old key alone can no longer start a service.
    use_keys(&mut stack, &[KEY_B]);
    roll(&mut stack, &receiver, &endpoints[0].path).await;
    let (status, refused) = stack
        .run_to_exit(Service::Sender, &[("SYNAP_ENCRYPTION__KEYS", &keys(&[ENCRYPTION_KEY]))], REFUSAL)
        .await;
    assert!(!status.success() && refused.contains(&format!("key id {b}")), "{refused}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sent = publisher.stop().await;
    assert!(sent.len() > 50, "events flowed throughout: {}", sent.len());

    // Every event reached every endpoint that existed when it was published, authenticated
    // and signed; none failed to open a secret.
    let published: HashMap<&str, Instant> = sent.iter().map(|(id, at)| (id.as_str(), *at)).collect();
    for endpoint in &endpoints {
        let expected: HashSet<&str> =
            sent.iter().filter(|(_, at)| *at >= endpoint.receives_from).map(|(id, _)| id.as_str()).collect();
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got: HashSet<String> = receiver
                .at(&endpoint.path)
                .iter()
                .filter_map(|r| r.header("webhook-id").map(str::to_owned))
                .collect();
            let missing = expected.iter().filter(|id| !got.contains(**id)).count();
            if missing == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: {missing} of {} events missing; see {}",
                endpoint.path,
                expected.len(),
                stack.logs.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for request in receiver.at(&endpoint.path) {
            endpoint.check(&request);
            let id = request.header("webhook-id").unwrap();
            if published.get(id).is_some_and(|at| *at >= endpoint.last_secret_from) {
                let latest = endpoint.secrets.last().unwrap();
                let (ts, signature) = (
                    request.header("webhook-timestamp").unwrap(),
                    request.header("webhook-signature").unwrap(),
                );
                assert!(
                    verify(latest, id, ts, &request.body, signature),
                    "{id} is signed with the rotated secret"
                );
            }
        }
    }
    let failed: i64 = stack
        .database()
        .await
        .query_one(
            "SELECT count(*) FROM delivery_attempts WHERE portal_id = $1 AND outcome <> 'delivered'",
            &[&portal],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(failed, 0, "no attempt failed");
    assert!(
        !stack.all_logs().contains("the sealed value in"),
        "a secret failed to open; see {}",
        stack.logs.display()
    );
}
