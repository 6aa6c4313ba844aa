//! The control API over gRPC against a real control service and PostgreSQL: every call's happy
//! path, validation with the field at fault, idempotent create and pagination.

use std::collections::HashSet;

use synap_proto::control::v1 as api;
use synap_proto::control::v1::{Plan, SubscriptionState};
use synap_tests::Stack;
use tonic::Code;
use tonic_types::StatusExt;

use crate::control_support::{
    Client, admin_token, bad_field, client, create, create_request, database, upsert,
};
use crate::support::portal_id;

const URL: &str = "https://hooks.example.com/synap";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_works_for_a_subscription_from_create_to_delete() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    let created_portal = upsert(&mut c, &portal, Plan::Pro, &["store", "store"]).await;
    assert_eq!((created_portal.plan, created_portal.features), (Plan::Pro as i32, vec!["store".to_owned()]));
    let got = c.get_portal(api::GetPortalRequest { id: portal.clone() }).await.unwrap().into_inner();
    assert_eq!(got.id, portal);
    let listed = c.list_portals(api::ListPortalsRequest::default()).await.unwrap().into_inner();
    assert_eq!(listed.portals.iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), [portal.as_str()]);

    let mut request = create_request(&portal, URL, &["attempt.completed", "store.purchase"]);
    request.basic_auth = Some(api::BasicAuth { username: "synap".into(), password: "pa55word".into() });
    let created = create(&mut c, request).await;
    assert!(created.signing_secret.starts_with("whsec_"), "a Standard Webhooks secret");
    let sub = created.subscription.unwrap();
    assert_eq!(sub.state, SubscriptionState::Active as i32);
    assert!(sub.enabled);
    assert_eq!(sub.basic_auth_username.as_deref(), Some("synap"));
    assert_eq!(sub.event_types, ["attempt.completed", "store.purchase"]);

    let got =
        c.get_subscription(api::GetSubscriptionRequest { id: sub.id.clone() }).await.unwrap().into_inner();
    assert_eq!(got, sub);

    let updated = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: sub.id.clone(),
            url: Some("https://other.example.com/hook".into()),
            event_types: Some(api::EventTypeList { codes: vec!["user.updated".into()] }),
            description: Some("renamed".into()),
            basic_auth: Some(api::BasicAuth { username: "other".into(), password: "n3w".into() }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.url, "https://other.example.com/hook");
    assert_eq!(updated.event_types, ["user.updated"]);
    assert_eq!(updated.description, "renamed");
    assert_eq!(updated.basic_auth_username.as_deref(), Some("other"));
    assert!(updated.updated_at.as_ref().unwrap().seconds >= sub.updated_at.as_ref().unwrap().seconds);

    // Fields left out stay as they are; basic auth can be removed.
    let cleared = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: sub.id.clone(),
            clear_basic_auth: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((cleared.basic_auth_username, cleared.url.as_str()), (None, "https://other.example.com/hook"));

    let paused = c.pause_subscription(api::PauseSubscriptionRequest { id: sub.id.clone() }).await.unwrap();
    assert_eq!((paused.get_ref().state, paused.get_ref().enabled), (SubscriptionState::Paused as i32, false));
    let resumed = c.resume_subscription(api::ResumeSubscriptionRequest { id: sub.id.clone() }).await.unwrap();
    assert_eq!(resumed.get_ref().state, SubscriptionState::Active as i32);
    let disabled = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: sub.id.clone(),
            enabled: Some(false),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(disabled.get_ref().state, SubscriptionState::Paused as i32);

    let rotated = c
        .rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: sub.id.clone(),
            overlap: None,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rotated.signing_secret.starts_with("whsec_") && rotated.signing_secret != created.signing_secret);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let expires = rotated.previous_expires_at.unwrap().seconds;
    assert!((expires - now - 86_400).abs() < 60, "default overlap is 24 h");

    let types = c.list_event_types(api::ListEventTypesRequest {}).await.unwrap().into_inner().event_types;
    assert_eq!(types.len(), 13);
    let store = types.iter().find(|t| t.code == "store.purchase").unwrap();
    assert_eq!(
        (store.minimum_plan, store.required_features.clone()),
        (Plan::Pro as i32, vec!["store".into()])
    );
    for t in &types {
        let body: serde_json::Value = serde_json::from_str(&t.example_body).unwrap();
        assert!(body.is_object() && !t.description.is_empty(), "{}", t.code);
    }

    c.delete_subscription(api::DeleteSubscriptionRequest { id: sub.id.clone() }).await.unwrap();
    let gone = c.get_subscription(api::GetSubscriptionRequest { id: sub.id.clone() }).await.unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    let again =
        c.delete_subscription(api::DeleteSubscriptionRequest { id: sub.id.clone() }).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let db = database(&stack).await;
    let secrets: i64 = db
        .query_one("SELECT count(*) FROM subscription_secrets WHERE subscription_id = $1", &[&sub.id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(secrets, 0, "deleting a subscription deletes its secrets");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_request_gets_a_precise_status_and_field() {
    let stack = Stack::start_with(&[("SYNAP_CONTROL__ALLOW_HTTP_URLS", "false")]).await;
    let mut c = client(&stack, Some(admin_token())).await;
    let (pro, starter) = (portal_id(), portal_id());
    upsert(&mut c, &pro, Plan::Pro, &[]).await;
    upsert(&mut c, &starter, Plan::Starter, &[]).await;

    let long_url = format!("https://example.com/{}", "a".repeat(2100));
    let cases: Vec<(&str, api::CreateSubscriptionRequest, Code, &str)> = vec![
        (
            "relative URL",
            create_request(&pro, "hooks.example.com/x", &["user.updated"]),
            Code::InvalidArgument,
            "url",
        ),
        (
            "plain HTTP",
            create_request(&pro, "http://example.com/x", &["user.updated"]),
            Code::InvalidArgument,
            "url",
        ),
        ("URL too long", create_request(&pro, &long_url, &["user.updated"]), Code::InvalidArgument, "url"),
        (
            "credentials in URL",
            create_request(&pro, "https://u:p@example.com/x", &["user.updated"]),
            Code::InvalidArgument,
            "url",
        ),
        (
            "unknown event type",
            create_request(&pro, URL, &["user.updated", "User.Updated"]),
            Code::InvalidArgument,
            "event_types[1]",
        ),
        ("no event types", create_request(&pro, URL, &[]), Code::InvalidArgument, "event_types"),
        (
            "store.purchase without the feature",
            create_request(&pro, URL, &["user.updated", "store.purchase"]),
            Code::FailedPrecondition,
            "event_types[1]",
        ),
        (
            "portal below Pro",
            create_request(&starter, URL, &["user.updated"]),
            Code::FailedPrecondition,
            "portal_id",
        ),
        ("empty portal id", create_request("", URL, &["user.updated"]), Code::InvalidArgument, "portal_id"),
        (
            "request id with spaces",
            {
                let mut r = create_request(&pro, URL, &["user.updated"]);
                r.request_id = "a b".into();
                r
            },
            Code::InvalidArgument,
            "request_id",
        ),
        (
            "user name with a colon",
            {
                let mut r = create_request(&pro, URL, &["user.updated"]);
                r.basic_auth = Some(api::BasicAuth { username: "a:b".into(), password: "x".into() });
                r
            },
            Code::InvalidArgument,
            "basic_auth.username",
        ),
        (
            "empty password",
            {
                let mut r = create_request(&pro, URL, &["user.updated"]);
                r.basic_auth = Some(api::BasicAuth { username: "a".into(), password: String::new() });
                r
            },
            Code::InvalidArgument,
            "basic_auth.password",
        ),
    ];
    for (what, request, code, field) in cases {
        let status = c.create_subscription(request).await.expect_err(what);
        assert_eq!(bad_field(&status), (code, field.to_owned()), "{what}: {status:?}");
    }
    let unknown = c.create_subscription(create_request("no-such-portal", URL, &["user.updated"])).await;
    assert_eq!(unknown.unwrap_err().code(), Code::NotFound);

    // Resuming (or enabling) on a portal that dropped below Pro.
    let sub = create(&mut c, create_request(&pro, URL, &["user.updated"])).await.subscription.unwrap();
    c.pause_subscription(api::PauseSubscriptionRequest { id: sub.id.clone() }).await.unwrap();
    upsert(&mut c, &pro, Plan::Free, &[]).await;
    let status =
        c.resume_subscription(api::ResumeSubscriptionRequest { id: sub.id.clone() }).await.unwrap_err();
    assert_eq!(bad_field(&status), (Code::FailedPrecondition, "portal_id".into()));
    let failure = status.get_details_precondition_failure().expect("PreconditionFailure details too");
    assert_eq!(failure.violations[0].subject, "portal_id");
    let enable =
        api::UpdateSubscriptionRequest { id: sub.id.clone(), enabled: Some(true), ..Default::default() };
    let status = c.update_subscription(enable).await.unwrap_err();
    assert_eq!(bad_field(&status), (Code::FailedPrecondition, "portal_id".into()));
    upsert(&mut c, &pro, Plan::Pro, &[]).await;

    // Updates validate like creates.
    let update = |f: fn(&mut api::UpdateSubscriptionRequest)| {
        let mut r = api::UpdateSubscriptionRequest { id: sub.id.clone(), ..Default::default() };
        f(&mut r);
        r
    };
    let updates: Vec<(api::UpdateSubscriptionRequest, &str)> = vec![
        (update(|r| r.url = Some("ftp://example.com".into())), "url"),
        (update(|r| r.event_types = Some(api::EventTypeList { codes: vec![] })), "event_types.codes"),
        (
            update(|r| r.event_types = Some(api::EventTypeList { codes: vec!["nope".into()] })),
            "event_types.codes[0]",
        ),
        (update(|r| r.description = Some("x".repeat(2000))), "description"),
        (
            update(|r| {
                r.clear_basic_auth = true;
                r.basic_auth = Some(api::BasicAuth { username: "a".into(), password: "b".into() });
            }),
            "clear_basic_auth",
        ),
    ];
    for (request, field) in updates {
        let status = c.update_subscription(request).await.unwrap_err();
        assert_eq!(bad_field(&status), (Code::InvalidArgument, field.to_owned()));
    }
    let status = c
        .update_subscription(update(|r| {
            r.event_types = Some(api::EventTypeList { codes: vec!["store.purchase".into()] })
        }))
        .await
        .unwrap_err();
    assert_eq!(bad_field(&status), (Code::FailedPrecondition, "event_types.codes[0]".into()));

    // Lists and the rest.
    for size in [-1, 501] {
        let list =
            api::ListSubscriptionsRequest { portal_id: pro.clone(), page_size: size, ..Default::default() };
        let status = c.list_subscriptions(list).await.unwrap_err();
        assert_eq!(bad_field(&status), (Code::InvalidArgument, "page_size".into()), "page size {size}");
    }
    let status =
        c.list_portals(api::ListPortalsRequest { page_size: 1000, ..Default::default() }).await.unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "page_size".into()));
    let list = api::ListSubscriptionsRequest { page_token: "not-a-token".into(), ..Default::default() };
    assert_eq!(
        bad_field(&c.list_subscriptions(list).await.unwrap_err()),
        (Code::InvalidArgument, "page_token".into())
    );
    let list = api::ListSubscriptionsRequest { event_type: "nope".into(), ..Default::default() };
    assert_eq!(
        bad_field(&c.list_subscriptions(list).await.unwrap_err()),
        (Code::InvalidArgument, "event_type".into())
    );
    let rotate = api::RotateSigningSecretRequest {
        subscription_id: sub.id.clone(),
        overlap: Some(prost_types::Duration { seconds: 8 * 86_400, nanos: 0 }),
        ..Default::default()
    };
    assert_eq!(
        bad_field(&c.rotate_signing_secret(rotate).await.unwrap_err()),
        (Code::InvalidArgument, "overlap".into())
    );
    let upsert_bad = api::UpsertPortalRequest { id: portal_id(), plan: 0, features: vec![] };
    assert_eq!(
        bad_field(&c.upsert_portal(upsert_bad).await.unwrap_err()),
        (Code::InvalidArgument, "plan".into())
    );

    let missing = "sub_does_not_exist".to_owned();
    let codes = [
        c.get_subscription(api::GetSubscriptionRequest { id: missing.clone() }).await.unwrap_err().code(),
        c.pause_subscription(api::PauseSubscriptionRequest { id: missing.clone() }).await.unwrap_err().code(),
        c.resume_subscription(api::ResumeSubscriptionRequest { id: missing.clone() })
            .await
            .unwrap_err()
            .code(),
        c.delete_subscription(api::DeleteSubscriptionRequest { id: missing.clone() })
            .await
            .unwrap_err()
            .code(),
        c.update_subscription(api::UpdateSubscriptionRequest { id: missing.clone(), ..Default::default() })
            .await
            .unwrap_err()
            .code(),
        c.rotate_signing_secret(api::RotateSigningSecretRequest {
            subscription_id: missing.clone(),
            overlap: None,
            ..Default::default()
        })
        .await
        .unwrap_err()
        .code(),
        c.get_portal(api::GetPortalRequest { id: "no-such-portal".into() }).await.unwrap_err().code(),
        c.revoke_api_key(api::RevokeApiKeyRequest { id: "key_missing".into() }).await.unwrap_err().code(),
    ];
    assert!(codes.iter().all(|c| *c == Code::NotFound), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_create_returns_the_original_subscription() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let (a, b) = (portal_id(), portal_id());
    upsert(&mut c, &a, Plan::Pro, &[]).await;
    upsert(&mut c, &b, Plan::Pro, &[]).await;
    let mut request = create_request(&a, URL, &["user.updated"]);
    request.request_id = "req-123".into();

    let first = create(&mut c, request.clone()).await;
    let retry = create(&mut c, request.clone()).await;
    assert_eq!(retry.subscription, first.subscription, "the original subscription");
    assert_eq!(retry.signing_secret, first.signing_secret, "the original response, secret included");

    // Racing retries still create one subscription.
    let racing: Vec<_> = (0..5)
        .map(|_| {
            let (mut c, mut r) = (c.clone(), request.clone());
            r.request_id = "req-race".into();
            tokio::spawn(async move {
                c.create_subscription(r).await.unwrap().into_inner().subscription.unwrap().id
            })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in racing {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "one subscription for one request id: {ids:?}");

    // Request ids are per portal; without one, every call creates.
    let mut other = request.clone();
    other.portal_id = b.clone();
    assert_ne!(create(&mut c, other).await.subscription.unwrap().id, first.subscription.as_ref().unwrap().id);
    request.request_id.clear();
    create(&mut c, request.clone()).await;
    create(&mut c, request).await;
    let list = api::ListSubscriptionsRequest { portal_id: a.clone(), ..Default::default() };
    assert_eq!(c.list_subscriptions(list).await.unwrap().into_inner().subscriptions.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_cover_every_subscription_once_and_filters_apply() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let (portal, other) = (portal_id(), portal_id());
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    upsert(&mut c, &other, Plan::Pro, &[]).await;
    let mut created = Vec::new();
    for i in 0..7 {
        let ty = if i % 2 == 0 { "user.updated" } else { "invite.sent" };
        created.push(create(&mut c, create_request(&portal, URL, &[ty])).await.subscription.unwrap().id);
    }
    create(&mut c, create_request(&other, URL, &["user.updated"])).await;
    c.pause_subscription(api::PauseSubscriptionRequest { id: created[0].clone() }).await.unwrap();

    let mut seen = Vec::new();
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let request = api::ListSubscriptionsRequest {
            portal_id: portal.clone(),
            page_size: 3,
            page_token: token.clone(),
            ..Default::default()
        };
        let page = c.list_subscriptions(request).await.unwrap().into_inner();
        pages.push(page.subscriptions.len());
        seen.extend(page.subscriptions.into_iter().map(|s| s.id));
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(pages, [3, 3, 1]);
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first, "every subscription once, newest first");

    let list = |event_type: &str, state: SubscriptionState| api::ListSubscriptionsRequest {
        portal_id: portal.clone(),
        event_type: event_type.into(),
        state: state as i32,
        ..Default::default()
    };
    assert_eq!(count(&mut c, list("user.updated", SubscriptionState::Unspecified)).await, 4);
    assert_eq!(count(&mut c, list("invite.sent", SubscriptionState::Unspecified)).await, 3);
    assert_eq!(count(&mut c, list("", SubscriptionState::Paused)).await, 1);
    assert_eq!(count(&mut c, list("user.updated", SubscriptionState::Active)).await, 3);
    assert_eq!(count(&mut c, list("", SubscriptionState::Disabled)).await, 0);
    let every_portal = api::ListSubscriptionsRequest::default();
    assert_eq!(count(&mut c, every_portal).await, 8, "an admin without a portal id lists every portal's");

    // A token belongs to its filters.
    let first = c
        .list_subscriptions(api::ListSubscriptionsRequest {
            page_size: 2,
            ..list("", SubscriptionState::Unspecified)
        })
        .await
        .unwrap()
        .into_inner();
    let mut reuse = list("user.updated", SubscriptionState::Unspecified);
    reuse.page_token = first.next_page_token;
    let status = c.list_subscriptions(reuse).await.unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "page_token".into()));

    // Portals page the same way.
    let one = c.list_portals(api::ListPortalsRequest { page_size: 1, ..Default::default() }).await.unwrap();
    let two = c
        .list_portals(api::ListPortalsRequest {
            page_size: 1,
            page_token: one.get_ref().next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(two.next_page_token.is_empty());
    let mut ids = vec![one.into_inner().portals[0].id.clone(), two.portals[0].id.clone()];
    ids.sort();
    let mut expected = vec![portal, other];
    expected.sort();
    assert_eq!(ids, expected);
}

async fn count(c: &mut Client, request: api::ListSubscriptionsRequest) -> usize {
    c.list_subscriptions(request).await.unwrap().into_inner().subscriptions.len()
}
