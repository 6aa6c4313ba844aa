//! The outbound address policy at subscription creation and update, and delivery options
//! through the control API.

use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::{Service, Stack};
use tonic::Code;
use tonic_types::StatusExt;

use crate::control_support::{admin_token, bad_field, client, create, create_request, upsert};
use crate::support::portal_id;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_public_addresses_are_refused_at_creation_and_update() {
    // Control without the test stacks' loopback allowlist: only public addresses. `localhost`
    // (only that name) is let past the name rule, so that a name is resolved to a refused
    // address and the refusal can be shown not to say which.
    let stack = Stack::start_with_per_service(
        &[],
        &[
            (Service::Control, "SYNAP_OUTBOUND__ALLOW_CIDRS", "[]"),
            (Service::Control, "SYNAP_OUTBOUND__ALLOW_HOSTS", "[\"localhost\"]"),
        ],
    )
    .await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;

    for (url, says) in [
        ("https://127.0.0.1/x", "127.0.0.1 is a loopback address"),
        ("https://10.1.2.3/x", "10.1.2.3 is a private address"),
        ("https://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
        ("https://[::1]/x", "::1 is a loopback address"),
        // Odd spellings of an IPv4 literal are the address they mean.
        ("https://2130706433/x", "127.0.0.1 is a loopback address"),
        ("https://0x7f.1/x", "127.0.0.1 is a loopback address"),
        ("https://0177.0.0.1/x", "127.0.0.1 is a loopback address"),
        ("https://[::ffff:7f00:1]/x", "::ffff:127.0.0.1 is a loopback address"),
        // 6to4 carrying the metadata address; Teredo with a private server; local-use NAT64.
        ("https://[2002:a9fe:a9fe::]/", "is a 6to4 address embedding a link-local IPv4 address"),
        ("https://[2001:0:a00:1::a247:27dd]/", "is a Teredo address embedding a private IPv4 address"),
        ("https://[64:ff9b:1::808:808]/", "is a local-use NAT64 address"),
        // Names: refused by name, before any lookup...
        ("https://api.localhost/x", "host api.localhost is a loopback name"),
        ("https://ip6-localhost/x", "host ip6-localhost is a loopback name"),
        ("https://metadata.google.internal/x", "is a local-network name"),
        ("https://metadata/x", "is a single-label name"),
        // ... or, when the name rule is lifted, for what they resolve to, not saying the address.
        ("https://localhost./x", "host localhost. resolves to a loopback address"),
        ("https://LocalHost/x", "host localhost resolves to a loopback address"),
    ] {
        let status =
            c.create_subscription(create_request(&portal, url, &["user.updated"])).await.unwrap_err();
        assert_eq!(bad_field(&status), (Code::InvalidArgument, "url".to_owned()), "{url}: {status:?}");
        assert!(status.message().contains(says), "{url}: {}", status.message());
        if url.contains("localhost") {
            let detail = status.get_details_bad_request().unwrap().field_violations[0].description.clone();
            for text in [status.message(), detail.as_str()] {
                assert!(!text.contains("127.0.0.1") && !text.contains("::1"), "{url}: {text}");
            }
        }
    }

    // No connection is made at creation, so a public literal is accepted as it is.
    let sub = create(&mut c, create_request(&portal, "https://93.184.215.14/hook", &["user.updated"]))
        .await
        .subscription
        .unwrap();
    let update = |url: &str| api::UpdateSubscriptionRequest {
        id: sub.id.clone(),
        url: Some(url.to_owned()),
        ..Default::default()
    };
    let status = c.update_subscription(update("https://192.168.1.1/hook")).await.unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "url".to_owned()));
    let got =
        c.get_subscription(api::GetSubscriptionRequest { id: sub.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got.url, "https://93.184.215.14/hook");
    drop(stack);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_options_are_stored_validated_and_returned() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;

    let mut request = create_request(&portal, "https://hooks.example.com/opts", &["user.updated"]);
    request.ordered = true;
    request.max_in_flight = Some(4);
    request.rate_limit_per_sec = Some(50);
    request.timeout_ms = Some(2_500);
    let created = create(&mut c, request).await.subscription.unwrap();
    let got = c
        .get_subscription(api::GetSubscriptionRequest { id: created.id.clone() })
        .await
        .unwrap()
        .into_inner();
    assert!(got.ordered);
    assert_eq!((got.max_in_flight, got.rate_limit_per_sec, got.timeout_ms), (Some(4), Some(50), Some(2_500)));

    // Out of range on create and update: the field at fault, nothing stored.
    for (field, edit) in [
        ("timeout_ms", (|r: &mut api::CreateSubscriptionRequest| r.timeout_ms = Some(30_001)) as fn(&mut _)),
        ("timeout_ms", |r| r.timeout_ms = Some(0)),
        ("max_in_flight", |r| r.max_in_flight = Some(0)),
        ("rate_limit_per_sec", |r| r.rate_limit_per_sec = Some(10_001)),
    ] {
        let mut request = create_request(&portal, "https://hooks.example.com/bad", &["user.updated"]);
        edit(&mut request);
        let status = c.create_subscription(request).await.unwrap_err();
        assert_eq!(bad_field(&status), (Code::InvalidArgument, field.to_owned()));
    }
    let status = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: created.id.clone(),
            timeout_ms: Some(60_000),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "timeout_ms".to_owned()));
    let status = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: created.id.clone(),
            timeout_ms: Some(1_000),
            clear_timeout_ms: true,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "clear_timeout_ms".to_owned()));

    // An update changes the options it names and leaves the others.
    let updated = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: created.id.clone(),
            ordered: Some(false),
            timeout_ms: Some(30_000),
            clear_rate_limit_per_sec: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!updated.ordered);
    assert_eq!(
        (updated.max_in_flight, updated.rate_limit_per_sec, updated.timeout_ms),
        (Some(4), None, Some(30_000))
    );
    let got = c.get_subscription(api::GetSubscriptionRequest { id: created.id }).await.unwrap().into_inner();
    assert_eq!(got, updated);
    drop(stack);
}
