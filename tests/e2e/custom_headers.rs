//! Custom request headers: they reach a real endpoint on every attempt; a secret value is
//! sealed at rest and never appears in an API response, the attempt log (even when the endpoint
//! echoes it) or a service log; names the system or HTTP owns and malformed names and values are
//! refused with the field path.

use std::time::Duration;

use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::{produce, producer};
use synap_tests::{Receiver, Reply, Stack};
use tonic::Code;

use crate::control_support::{admin_token, bad_field, client, create, create_request, database, upsert};
use crate::support::{envelope, portal_id, verify};

const WAIT: Duration = Duration::from_secs(60);

fn header(name: &str, value: &str, secret: bool) -> api::CustomHeader {
    api::CustomHeader { name: name.into(), value: value.into(), secret }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_reach_the_endpoint_and_secret_values_stay_secret() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let secret = format!("s3cr3t-{}", uuid::Uuid::new_v4().simple());
    // The first attempt is answered by an endpoint that echoes the secret back, in a header and
    // in its body (as debugging endpoints do): a failed attempt's response is logged.
    receiver.script(
        "/h",
        vec![Reply::Full {
            status: 500,
            filler_headers: 1,
            filler_value: secret.clone(),
            body: format!("you sent x-api-key: {secret}"),
        }],
    );
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let mut request = create_request(&portal, &receiver.url("/h"), &["user.updated"]);
    request.headers = vec![
        header("X-Tenant", "acme\teu", false),
        header("X-Api-Key", &secret, true),
        header("Accept", "application/json", false),
    ];
    let created = create(&mut c, request).await;
    let sub = created.subscription.clone().unwrap();
    let shown = vec![
        header("X-Tenant", "acme\teu", false),
        header("X-Api-Key", "", true),
        header("Accept", "application/json", false),
    ];
    assert_eq!(sub.headers, shown, "a secret value is write-only");
    assert!(!format!("{created:?}").contains(&secret));
    let got =
        c.get_subscription(api::GetSubscriptionRequest { id: sub.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.headers, shown);
    let listed = c
        .list_subscriptions(api::ListSubscriptionsRequest { portal_id: portal.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.subscriptions[0].headers, shown);
    assert!(!format!("{got:?}{listed:?}").contains(&secret));

    // At rest: the plain values as given, the secret one sealed.
    let db = database(&stack).await;
    let rows = db
        .query(
            "SELECT name, value, sealed_value FROM subscription_headers WHERE subscription_id = $1 ORDER BY position",
            &[&sub.id],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 3);
    let (value, sealed): (Option<String>, Option<Vec<u8>>) = (rows[1].get(1), rows[1].get(2));
    assert_eq!(value, None);
    let sealed = sealed.expect("sealed");
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()), "sealed, not stored as text");

    // Every attempt carries them (the first is answered 500, the retry 204), beside the
    // system's own headers, which they cannot replace.
    let kafka = producer(&stack.bootstrap);
    let body = EventType::UserUpdated.example_body();
    let inbound = stack.topic("inbound");
    produce(&kafka, &inbound, &portal, &envelope(EventType::UserUpdated, &portal, Some("h-1"), &body), None)
        .await;
    let got = receiver.wait_for("/h", 2, WAIT).await;
    for request in &got {
        assert_eq!(request.header("x-tenant"), Some("acme\teu"));
        assert_eq!(request.header("x-api-key"), Some(secret.as_str()));
        assert_eq!(request.header("accept"), Some("application/json"));
        assert_eq!(request.header("content-type"), Some("application/json"));
        let (ts, signature) =
            (request.header("webhook-timestamp").unwrap(), request.header("webhook-signature").unwrap());
        assert!(verify(&created.signing_secret, "h-1", ts, &request.body, signature));
    }

    // The attempt log keeps the echoing response, with the secret replaced.
    let mut deliveries = stack.deliveries().await;
    let list = api::ListAttemptsRequest { subscription_id: sub.id.clone(), ..Default::default() };
    let deadline = tokio::time::Instant::now() + WAIT;
    let attempts = loop {
        let page = deliveries.list_attempts(list.clone()).await.unwrap().into_inner();
        if page.attempts.len() >= 2 {
            break page.attempts;
        }
        assert!(tokio::time::Instant::now() < deadline, "two attempts logged: {page:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let failed = attempts.iter().find(|a| a.status_code == 500).expect("the failed attempt");
    let failed =
        deliveries.get_attempt(api::GetAttemptRequest { id: failed.id.clone() }).await.unwrap().into_inner();
    assert_eq!(failed.response_body, "you sent x-api-key: [redacted]");
    assert_eq!(failed.response_headers.get("x-filler-0").map(String::as_str), Some("[redacted]"));
    assert!(!format!("{attempts:?}{failed:?}").contains(&secret));

    // Update replaces the whole set; a clear removes it.
    let updated = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: sub.id.clone(),
            headers: Some(api::CustomHeaderList { headers: vec![header("X-New", "1", false)] }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.headers, [header("X-New", "1", false)]);
    // Past the sender's 1 s target cache.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    produce(&kafka, &inbound, &portal, &envelope(EventType::UserUpdated, &portal, Some("h-2"), &body), None)
        .await;
    let got = receiver.wait_for("/h", 3, WAIT).await;
    assert_eq!(got[2].header("x-new"), Some("1"));
    assert_eq!((got[2].header("x-api-key"), got[2].header("x-tenant")), (None, None));
    let cleared = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: sub.id.clone(),
            clear_headers: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(cleared.headers.is_empty());
    let count: i64 = db
        .query_one("SELECT count(*) FROM subscription_headers WHERE subscription_id = $1", &[&sub.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 0);

    // No service logged the secret.
    assert!(!stack.all_logs().contains(&secret), "a service logged the secret header value");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_are_refused_with_the_field_path() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let ok = || header("X-Ok", "1", false);
    let mut cases: Vec<(Vec<api::CustomHeader>, &str)> = vec![
        (vec![ok(), header("Webhook-Signature", "v1,forged", false)], "headers[1].name"),
        (vec![ok(), header("x-a", "1", false), header("X-A", "2", false)], "headers[2].name"),
        ((0..21).map(|i| header(&format!("x-h{i}"), "v", false)).collect(), "headers"),
    ];
    for name in [
        "webhook-id",
        "webhook-timestamp",
        "SYNAP-EVENT-TYPE",
        "synap-portal-id",
        "synap-delivery-attempt",
        "Content-Type",
        "content-length",
        "Host",
        "authorization",
        "User-Agent",
        "traceparent",
        "tracestate",
        "connection",
        "transfer-encoding",
        "te",
        "upgrade",
        "expect",
        "keep-alive",
        "Proxy-Authorization",
        "x-forwarded-for",
        "",
        "x bad",
        "x:y",
        "x\r\nx-injected",
        "caf\u{e9}",
        &"x".repeat(65),
    ] {
        cases.push((vec![header(name, "v", false)], "headers[0].name"));
    }
    for value in ["", "v\r\nx-injected: 1", "nul\0", "bell\u{7}", "caf\u{e9}", " padded", &"v".repeat(2049)] {
        cases.push((vec![header("x-a", value, true)], "headers[0].value"));
    }
    for (headers, field) in cases {
        let mut request = create_request(&portal, "https://93.184.215.14/hook", &["user.updated"]);
        request.headers = headers.clone();
        let status = c.create_subscription(request).await.unwrap_err();
        assert_eq!(bad_field(&status), (Code::InvalidArgument, field.to_owned()), "{headers:?}: {status:?}");
        assert!(!status.message().contains("x-injected"), "the value is never quoted: {}", status.message());
    }
    let listed = c
        .list_subscriptions(api::ListSubscriptionsRequest { portal_id: portal.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert!(listed.subscriptions.is_empty(), "nothing was created");

    // Twenty is the limit, not below it.
    let mut request = create_request(&portal, "https://93.184.215.14/hook", &["user.updated"]);
    request.headers = (0..20).map(|i| header(&format!("x-h{i}"), "v", i % 2 == 0)).collect();
    let sub = create(&mut c, request).await.subscription.unwrap();
    assert_eq!(sub.headers.len(), 20);

    // Update: the same rules under its own path; set and clear cannot be combined; a refused
    // update changes nothing.
    let update = |headers: Option<Vec<api::CustomHeader>>, clear_headers| api::UpdateSubscriptionRequest {
        id: sub.id.clone(),
        headers: headers.map(|headers| api::CustomHeaderList { headers }),
        clear_headers,
        ..Default::default()
    };
    let status =
        c.update_subscription(update(Some(vec![ok(), header("host", "x", false)]), false)).await.unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "headers.headers[1].name".into()));
    let status = c.update_subscription(update(Some(vec![ok()]), true)).await.unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "clear_headers".into()));
    let got =
        c.get_subscription(api::GetSubscriptionRequest { id: sub.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.headers, sub.headers);
}
