//! Who may do what, and what is stored: portal API keys and their scope, secrets sealed at
//! rest, and signing-secret rotation.

use std::time::Duration;

use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::Stack;
use tonic::Code;

use crate::control_support::{admin_token, client, create, create_request, database, database_url, upsert};
use crate::support::portal_id;

const URL: &str = "https://hooks.example.com/synap";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_key_reaches_only_its_own_portal_until_revoked() {
    let stack = Stack::start().await;
    let mut admin = client(&stack, Some(admin_token())).await;
    let (mine, theirs) = (portal_id(), portal_id());
    upsert(&mut admin, &mine, Plan::Pro, &[]).await;
    upsert(&mut admin, &theirs, Plan::Pro, &[]).await;
    let key = admin
        .create_api_key(api::CreateApiKeyRequest { portal_id: mine.clone(), name: "backend".into() })
        .await
        .unwrap()
        .into_inner();
    assert!(key.token.starts_with("sk_"));
    let key_id = key.api_key.as_ref().unwrap().id.clone();
    let their_sub =
        create(&mut admin, create_request(&theirs, URL, &["user.updated"])).await.subscription.unwrap();

    let mut k = client(&stack, Some(&key.token)).await;
    // Its own portal, named or implied.
    let own = create(&mut k, create_request(&mine, URL, &["user.updated"])).await.subscription.unwrap();
    let implied = create(&mut k, create_request("", URL, &["invite.sent"])).await.subscription.unwrap();
    assert_eq!(implied.portal_id, mine);
    let listed = k.list_subscriptions(api::ListSubscriptionsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.subscriptions.len(), 2, "only its own portal's");
    k.pause_subscription(api::PauseSubscriptionRequest { id: own.id.clone() }).await.unwrap();
    k.resume_subscription(api::ResumeSubscriptionRequest { id: own.id.clone() }).await.unwrap();
    k.rotate_signing_secret(api::RotateSigningSecretRequest {
        subscription_id: own.id.clone(),
        overlap: None,
        ..Default::default()
    })
    .await
    .unwrap();
    k.list_event_types(api::ListEventTypesRequest {}).await.unwrap();

    // Another portal's subscription does not exist for it, whatever the call.
    let id = their_sub.id.clone();
    let not_found = [
        k.get_subscription(api::GetSubscriptionRequest { id: id.clone() }).await.unwrap_err(),
        k.update_subscription(api::UpdateSubscriptionRequest {
            id: id.clone(),
            url: Some("https://evil.example.com".into()),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        k.delete_subscription(api::DeleteSubscriptionRequest { id: id.clone() }).await.unwrap_err(),
        k.pause_subscription(api::PauseSubscriptionRequest { id: id.clone() }).await.unwrap_err(),
        k.resume_subscription(api::ResumeSubscriptionRequest { id: id.clone() }).await.unwrap_err(),
        k.rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: None,
            ..Default::default()
        })
        .await
        .unwrap_err(),
        k.test_send(api::TestSendRequest { subscription_id: id.clone(), event_type: String::new() })
            .await
            .unwrap_err(),
        k.list_subscriptions(api::ListSubscriptionsRequest {
            portal_id: theirs.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err(),
        k.create_subscription(create_request(&theirs, URL, &["user.updated"])).await.unwrap_err(),
    ];
    for status in &not_found {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
        assert!(status.details().is_empty(), "no details that hint at existence");
    }
    let still =
        admin.get_subscription(api::GetSubscriptionRequest { id: id.clone() }).await.unwrap().into_inner();
    assert_eq!(still, their_sub, "unchanged");

    // Admin-only calls.
    let denied = [
        k.upsert_portal(api::UpsertPortalRequest {
            id: mine.clone(),
            plan: Plan::Enterprise as i32,
            features: vec![],
        })
        .await
        .unwrap_err(),
        k.get_portal(api::GetPortalRequest { id: mine.clone() }).await.unwrap_err(),
        k.list_portals(api::ListPortalsRequest::default()).await.unwrap_err(),
        k.create_api_key(api::CreateApiKeyRequest { portal_id: mine.clone(), name: String::new() })
            .await
            .unwrap_err(),
        k.list_api_keys(api::ListApiKeysRequest { portal_id: mine.clone(), include_revoked: true })
            .await
            .unwrap_err(),
        k.revoke_api_key(api::RevokeApiKeyRequest { id: key_id.clone() }).await.unwrap_err(),
    ];
    assert!(denied.iter().all(|s| s.code() == Code::PermissionDenied), "{denied:?}");

    // No token, a wrong one, a revoked one.
    let mut anonymous = client(&stack, None).await;
    let status = anonymous.list_event_types(api::ListEventTypesRequest {}).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut wrong = client(&stack, Some("sk_not-a-real-key")).await;
    assert_eq!(
        wrong.list_event_types(api::ListEventTypesRequest {}).await.unwrap_err().code(),
        Code::Unauthenticated
    );

    let revoked =
        admin.revoke_api_key(api::RevokeApiKeyRequest { id: key_id.clone() }).await.unwrap().into_inner();
    assert!(revoked.revoked_at.is_some());
    let status = k.get_subscription(api::GetSubscriptionRequest { id: own.id.clone() }).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "a revoked key stops working at once");
    let keys = admin
        .list_api_keys(api::ListApiKeysRequest { portal_id: mine.clone(), include_revoked: false })
        .await
        .unwrap()
        .into_inner();
    assert!(keys.api_keys.is_empty());
    let keys = admin
        .list_api_keys(api::ListApiKeysRequest { portal_id: mine.clone(), include_revoked: true })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(keys.api_keys.len(), 1);
    assert!(key.token.starts_with(&keys.api_keys[0].token_prefix) && keys.api_keys[0].last_used_at.is_some());

    // Health and reflection answer without a token.
    let channel = stack.control_channel().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let check = health
        .check(tonic_health::pb::HealthCheckRequest { service: "synap.control.v1.ControlService".into() })
        .await
        .unwrap();
    assert_eq!(
        check.get_ref().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_password_or_token_is_stored_in_plain_text() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let password = "Plaintext-Pa55word-7731";
    let mut request = create_request(&portal, URL, &["user.updated"]);
    request.basic_auth = Some(api::BasicAuth { username: "synap".into(), password: password.into() });
    let created = create(&mut c, request).await;
    let id = created.subscription.unwrap().id;
    let rotated = c
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let token = c
        .create_api_key(api::CreateApiKeyRequest { portal_id: portal.clone(), name: "k".into() })
        .await
        .unwrap()
        .into_inner()
        .token;

    // Everything the tables hold, as text (bytea in hex) and as raw bytes.
    let db = database(&stack).await;
    let mut dump = String::new();
    let mut raw: Vec<u8> = Vec::new();
    for table in ["subscriptions", "subscription_secrets", "api_keys", "portals"] {
        for row in db.query(&format!("SELECT t::text FROM {table} t"), &[]).await.unwrap() {
            dump.push_str(row.get::<_, &str>(0));
            dump.push('\n');
        }
    }
    for row in db.query("SELECT basic_auth_password FROM subscriptions", &[]).await.unwrap() {
        raw.extend(row.get::<_, Option<Vec<u8>>>(0).unwrap_or_default());
    }
    for row in db
        .query("SELECT secret FROM subscription_secrets UNION ALL SELECT token_hash FROM api_keys", &[])
        .await
        .unwrap()
    {
        raw.extend(row.get::<_, Vec<u8>>(0));
    }
    assert!(dump.contains("synap"), "the dump is real: {dump}");
    let secret_body = |s: &str| s.trim_start_matches("whsec_").to_owned();
    for plain in [
        password.to_owned(),
        secret_body(&created.signing_secret),
        secret_body(&rotated.signing_secret),
        token.clone(),
    ] {
        assert!(!dump.contains(&plain), "{plain} appears in the database");
        assert!(
            !raw.windows(plain.len()).any(|w| w == plain.as_bytes()),
            "{plain} appears in a bytea column"
        );
        let hex: String = plain.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(!dump.contains(&hex), "{plain} appears hex-encoded");
    }
    // The API never returns the password either.
    let got = c.get_subscription(api::GetSubscriptionRequest { id }).await.unwrap().into_inner();
    assert!(!format!("{got:?}").contains(password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_signs_alongside_the_new_one_until_its_overlap_ends() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let created = create(&mut c, create_request(&portal, URL, &["user.updated"])).await;
    let id = created.subscription.unwrap().id;
    let rotated = c
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: Some(prost_types::Duration { seconds: 3, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    // What the sender signs with, read the way the sender reads it.
    let pool =
        synap_db::connect(&synap_db::DatabaseConfig { url: database_url(&stack), pool_size: 1 }).unwrap();
    let sealing = synap_db::SecretBox::from_base64(synap_tests::stack::ENCRYPTION_KEY).unwrap();
    use synap_db::secrets::SigningKey::V1;
    let during = synap_db::secrets::valid(&pool, &sealing, &id).await.unwrap();
    assert_eq!(
        during,
        [V1(rotated.signing_secret.clone()), V1(created.signing_secret.clone())],
        "new first, old still valid"
    );
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let after = synap_db::secrets::valid(&pool, &sealing, &id).await.unwrap();
    assert_eq!(after, [V1(rotated.signing_secret.clone())], "the old secret expired with its overlap");

    // Zero overlap ends the old secret at once.
    let again = c
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: Some(prost_types::Duration { seconds: 0, nanos: 0 }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(synap_db::secrets::valid(&pool, &sealing, &id).await.unwrap(), [V1(again.signing_secret)]);
}
