//! Payload filters and event-type wildcards against the real stack: real events published to
//! the inbound topic, the real router deciding, real receivers counting what arrives, and the
//! real control service refusing what it must.

use std::time::Duration;

use serde_json::{Value, json};
use synap_contract::EventType;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::Plan;
use synap_tests::kafka::{produce, producer};
use synap_tests::{Receiver, Service, Stack};
use tonic::Code;
use tonic_types::StatusExt;

use crate::control_support::{Client, admin_token, bad_field, client, create, create_request, upsert};
use crate::support::{envelope, portal_id};

const WAIT: Duration = Duration::from_secs(30);
/// After the unfiltered subscription got every event, how long a filtered one may still lag.
const GRACE: Duration = Duration::from_secs(2);
/// The promise: a control change reaches the router within this long.
const PROPAGATION: Duration = Duration::from_secs(2);

fn ids(receiver: &Receiver, path: &str) -> Vec<String> {
    let mut ids: Vec<String> =
        receiver.at(path).iter().map(|r| r.header("webhook-id").unwrap().to_owned()).collect();
    ids.sort();
    ids
}

/// An exam.completed body with this exam id and score; `pass: None` leaves the optional grade out.
fn exam_body(exam_id: &str, score_frac: f64, pass: Option<bool>) -> Value {
    let mut body = EventType::ExamCompleted.example_body();
    body["exam"]["id"] = json!(exam_id);
    body["attempt"]["scoreFrac"] = json!(score_frac);
    match pass {
        Some(pass) => body["attempt"]["grade"]["isPass"] = json!(pass),
        None => {
            body["attempt"].as_object_mut().unwrap().remove("grade");
        }
    }
    body
}

async fn create_filtered(c: &mut Client, portal: &str, url: &str, types: &[&str], filter: &str) -> String {
    let mut request = create_request(portal, url, types);
    request.filter = filter.into();
    let created = create(c, request).await.subscription.unwrap();
    assert_eq!(created.filter, filter);
    created.id
}

/// The field violation's description of an INVALID_ARGUMENT on `field`.
fn violation(status: &tonic::Status, field: &str) -> String {
    assert_eq!(bad_field(status), (Code::InvalidArgument, field.to_owned()), "{status:?}");
    status.get_details_bad_request().unwrap().field_violations[0].description.clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filtered_subscriptions_receive_exactly_the_matching_events_and_failures_are_no_match() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let low = r#"data.exam.id == "e_9" && data.attempt.scoreFrac < 0.5"#;
    create_filtered(&mut c, &portal, &receiver.url("/low"), &["exam.completed"], low).await;
    // Fails on events without the optional grade: those count as no match.
    create_filtered(&mut c, &portal, &receiver.url("/passed"), &["exam.*"], "data.attempt.grade.isPass")
        .await;
    create(&mut c, create_request(&portal, &receiver.url("/all"), &["exam.completed"])).await;

    let kafka = producer(&stack.bootstrap);
    let events = [
        ("e1", exam_body("e_9", 0.3, Some(false))),
        ("e2", exam_body("e_9", 0.7, Some(true))),
        ("e3", exam_body("e_1", 0.3, None)),
        ("e4", exam_body("e_9", 0.49, None)),
        ("e5", exam_body("e_9", 0.5, Some(true))),
        ("e6", exam_body("e_9", 0.1, Some(true))),
    ];
    for (id, body) in &events {
        let record = envelope(EventType::ExamCompleted, &portal, Some(id), body);
        produce(&kafka, &stack.topic("inbound"), &portal, &record, None).await;
    }
    receiver.wait_for("/all", events.len(), WAIT).await;
    tokio::time::sleep(GRACE).await;

    assert_eq!(ids(&receiver, "/low"), ["e1", "e4", "e6"], "exam e_9 below one half only");
    // e3 and e4 have no grade: the filter fails on them, and e5 and e6 after them still arrive.
    assert_eq!(ids(&receiver, "/passed"), ["e2", "e5", "e6"]);
    assert_eq!(ids(&receiver, "/all").len(), 6);
    for delivered in receiver.at("/low") {
        let id = delivered.header("webhook-id").unwrap();
        let sent = &events.iter().find(|(e, _)| *e == id).unwrap().1;
        assert_eq!(&delivered.json(), sent, "the body is delivered unchanged");
    }

    let metrics = stack.telemetry_get(Service::Router, "/metrics").await.1;
    for expected in [
        r#"synap_filter_errors_total{event_type="exam.completed",reason="missing_field"} 2"#,
        r#"synap_filtered_out_total{event_type="exam.completed"} 6"#,
        r#"synap_routed_deliveries_total{event_type="exam.completed"} 12"#,
    ] {
        assert!(metrics.contains(expected), "router exports {expected}:\n{metrics}");
    }

    // Clearing the filter reaches the running router: every event again.
    let low_id = c
        .list_subscriptions(api::ListSubscriptionsRequest { portal_id: portal.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .subscriptions
        .into_iter()
        .find(|s| s.filter == low)
        .unwrap()
        .id;
    let cleared = c
        .update_subscription(api::UpdateSubscriptionRequest {
            id: low_id,
            clear_filter: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cleared.filter, "");
    tokio::time::sleep(PROPAGATION).await;
    let record = envelope(EventType::ExamCompleted, &portal, Some("e7"), &exam_body("e_2", 0.9, Some(true)));
    produce(&kafka, &stack.topic("inbound"), &portal, &record, None).await;
    receiver.wait_for("/low", 4, WAIT).await;
    assert_eq!(ids(&receiver, "/low"), ["e1", "e4", "e6", "e7"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_filters_are_refused_with_their_position_and_test_filter_evaluates() {
    let stack = Stack::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let url = "http://127.0.0.1:9/hook";

    let refusals: [(&str, &[&str], &str); 9] = [
        ("data.exam.id ==", &["exam.completed"], "1:16: syntax error"),
        (
            "data.exam.id == \"x\" &&\n  data.exam.title == \"y\"",
            &["exam.completed"],
            "2:3: data.exam.title is not a documented field of exam.completed",
        ),
        (
            "data.objectId == \"u\"",
            &["exam.*"],
            "data.objectId is not a documented field of exam.submitted, exam.completed",
        ),
        ("data.exam.id", &["exam.completed"], "gives a string on the example body of exam.completed"),
        ("data.exam.id > 5", &["exam.completed"], "fails on the example body of exam.completed"),
        ("exec(\"rm -rf\")", &["*"], "1:1: unknown function `exec`"),
        ("secrets.token == \"x\"", &["*"], "1:1: unknown variable `secrets`"),
        (
            "data.exam.sourceTests.map(t, t).size() > 0",
            &["exam.completed"],
            "`map` and `filter` are not supported",
        ),
        ("true || true", &["exam.completed"], ""),
    ];
    for (filter, types, says) in refusals {
        let mut request = create_request(&portal, url, types);
        request.filter = filter.into();
        match c.create_subscription(request).await {
            Ok(_) if says.is_empty() => {}
            Ok(_) => panic!("accepted: {filter}"),
            Err(status) => {
                let description = violation(&status, "filter");
                assert!(!says.is_empty() && description.contains(says), "{filter}: {description}");
                assert_eq!(status.message(), format!("filter: {description}"));
            }
        }
    }
    let mut huge = create_request(&portal, url, &["exam.completed"]);
    huge.filter = format!("data.exam.id == \"{}\"", "x".repeat(5000));
    let status = c.create_subscription(huge).await.unwrap_err();
    assert!(violation(&status, "filter").contains("at most 4096"));
    let mut deep = create_request(&portal, url, &["exam.completed"]);
    deep.filter = format!("{}true{}", "(".repeat(2000), ")".repeat(2000));
    let status = c.create_subscription(deep).await.unwrap_err();
    assert!(violation(&status, "filter").contains("nests too deeply"));

    // Update: the filter standing after the update is checked against the types standing after it.
    let sub = create_filtered(&mut c, &portal, url, &["exam.completed"], r#"data.exam.id == "e_9""#).await;
    let update = |request: api::UpdateSubscriptionRequest| {
        let mut c = c.clone();
        async move { c.update_subscription(request).await }
    };
    let status = update(api::UpdateSubscriptionRequest {
        id: sub.clone(),
        event_types: Some(api::EventTypeList { codes: vec!["user.updated".into()] }),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(violation(&status, "event_types.codes").contains("data.exam.id"), "{status:?}");
    let status = update(api::UpdateSubscriptionRequest {
        id: sub.clone(),
        filter: Some("data.exam.nope".into()),
        ..Default::default()
    })
    .await
    .unwrap_err();
    assert!(violation(&status, "filter").contains("1:1: data.exam.nope"), "{status:?}");
    let status = update(api::UpdateSubscriptionRequest {
        id: sub.clone(),
        filter: Some("true".into()),
        clear_filter: true,
        ..Default::default()
    })
    .await
    .unwrap_err();
    violation(&status, "clear_filter");
    let moved = update(api::UpdateSubscriptionRequest {
        id: sub.clone(),
        event_types: Some(api::EventTypeList { codes: vec!["user.*".into()] }),
        filter: Some(r#"data.email.endsWith("@example.com")"#.into()),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(moved.event_types, ["user.*"]);
    assert_eq!(moved.filter, r#"data.email.endsWith("@example.com")"#);

    // TestFilter: on the example body, on a given body, with the stored filter.
    let test = |request: api::TestFilterRequest| {
        let mut c = c.clone();
        async move { c.test_filter(request).await }
    };
    let matched = test(api::TestFilterRequest {
        filter: r#"data.exam.id == "exm_1c9a63d2f8" && data.attempt.grade.isPass"#.into(),
        event_type: "exam.completed".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        (matched.matched, matched.error.as_str(), matched.event_type.as_str()),
        (true, "", "exam.completed")
    );
    let body = exam_body("e_9", 0.2, None).to_string();
    let failed = test(api::TestFilterRequest {
        filter: "data.attempt.grade.isPass".into(),
        event_type: "exam.completed".into(),
        body: body.clone(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert!(!failed.matched && failed.error.contains("grade"), "{failed:?}");
    let not = test(api::TestFilterRequest {
        filter: "data.attempt.scoreFrac > 0.5".into(),
        event_types: vec!["exam.*".into()],
        event_type: "exam.completed".into(),
        body,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert_eq!((not.matched, not.error.as_str()), (false, ""));
    let stored = test(api::TestFilterRequest {
        subscription_id: sub.clone(),
        event_type: "user.updated".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner();
    assert!(stored.matched, "the example user's address is at example.com: {stored:?}");
    for (request, field) in [
        (
            api::TestFilterRequest {
                filter: "data.exam.id ==".into(),
                event_type: "exam.completed".into(),
                ..Default::default()
            },
            "filter",
        ),
        (
            api::TestFilterRequest {
                filter: "true".into(),
                event_type: "exam.finished".into(),
                ..Default::default()
            },
            "event_type",
        ),
        (
            api::TestFilterRequest {
                filter: "true".into(),
                event_types: vec!["us*".into()],
                ..Default::default()
            },
            "event_types[0]",
        ),
        (
            api::TestFilterRequest {
                filter: "true".into(),
                event_type: "exam.completed".into(),
                body: "{".into(),
                ..Default::default()
            },
            "body",
        ),
        (
            api::TestFilterRequest {
                filter: "true".into(),
                event_type: "exam.completed".into(),
                body: r#"{"exam": 1}"#.into(),
                ..Default::default()
            },
            "body",
        ),
        (
            api::TestFilterRequest {
                filter: String::new(),
                event_type: "exam.completed".into(),
                ..Default::default()
            },
            "filter",
        ),
    ] {
        let status = test(request).await.unwrap_err();
        violation(&status, field);
    }

    // A portal key sees its own subscriptions only, as in every other call.
    let other = portal_id();
    upsert(&mut c, &other, Plan::Pro, &[]).await;
    let key = c
        .create_api_key(api::CreateApiKeyRequest { portal_id: other.clone(), name: "other".into() })
        .await
        .unwrap()
        .into_inner()
        .token;
    let mut theirs = client(&stack, Some(&key)).await;
    let status = theirs
        .test_filter(api::TestFilterRequest { subscription_id: sub.clone(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    let own = theirs
        .test_filter(api::TestFilterRequest {
            filter: format!("portalId == {other:?}"),
            event_type: "invite.sent".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(own.matched, "a portal key's test events carry its portal id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcards_receive_every_type_of_their_group_and_plan_rules_apply_per_event() {
    let stack = Stack::start().await;
    let receiver = Receiver::start().await;
    let mut c = client(&stack, Some(admin_token())).await;
    let portal = portal_id();
    upsert(&mut c, &portal, Plan::Pro, &[]).await;
    let users = create(&mut c, create_request(&portal, &receiver.url("/users"), &["user.*"])).await;
    assert_eq!(users.subscription.unwrap().event_types, ["user.*"]);
    // Accepted without the store feature: it just does not receive store.purchase.
    create(&mut c, create_request(&portal, &receiver.url("/all"), &["*"])).await;
    create(&mut c, create_request(&portal, &receiver.url("/invites"), &["invite.sent"])).await;

    // Refusals name the entry at fault.
    for (types, field, code) in [
        (&["user.updated", "foo.*"][..], "event_types[1]", Code::InvalidArgument),
        (&["us*"][..], "event_types[0]", Code::InvalidArgument),
        (&["user.*", "user.**"][..], "event_types[1]", Code::InvalidArgument),
        (&["*.x"][..], "event_types[0]", Code::InvalidArgument),
        (&["store.*"][..], "event_types[0]", Code::FailedPrecondition),
        (&["user.*", "store.purchase"][..], "event_types[1]", Code::FailedPrecondition),
    ] {
        let status =
            c.create_subscription(create_request(&portal, &receiver.url("/x"), types)).await.unwrap_err();
        assert_eq!(bad_field(&status), (code, field.to_owned()), "{types:?}: {status:?}");
    }
    // Listing by a type finds the wildcards that cover it; by a wildcard, those that list it.
    let listed = |event_type: &str| {
        let mut c = c.clone();
        let request = api::ListSubscriptionsRequest {
            portal_id: portal.clone(),
            event_type: event_type.into(),
            ..Default::default()
        };
        async move {
            let mut urls: Vec<String> = c
                .list_subscriptions(request)
                .await
                .unwrap()
                .into_inner()
                .subscriptions
                .into_iter()
                .map(|s| s.url.rsplit('/').next().unwrap().to_owned())
                .collect();
            urls.sort();
            urls
        }
    };
    assert_eq!(listed("user.updated").await, ["all", "users"]);
    assert_eq!(listed("invite.sent").await, ["all", "invites"]);
    assert_eq!(listed("user.*").await, ["users"]);
    assert_eq!(listed("*").await, ["all"]);
    let status = c
        .list_subscriptions(api::ListSubscriptionsRequest {
            event_type: "user.**".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(bad_field(&status), (Code::InvalidArgument, "event_type".to_owned()));

    let kafka = producer(&stack.bootstrap);
    let publish = |ty: EventType, id: &'static str| {
        let kafka = kafka.clone();
        let (topic, portal) = (stack.topic("inbound"), portal.clone());
        async move {
            let record = envelope(ty, &portal, Some(id), &ty.example_body());
            produce(&kafka, &topic, &portal, &record, None).await;
        }
    };
    publish(EventType::UserRegistered, "u1").await;
    publish(EventType::UserUpdated, "u2").await;
    publish(EventType::AttemptCompleted, "a1").await;
    publish(EventType::AttemptSubmitted, "a2").await;
    publish(EventType::StorePurchase, "s1").await;
    publish(EventType::UserAddedToGroup, "u3").await;
    publish(EventType::InviteSent, "i1").await;
    receiver.wait_for("/invites", 1, WAIT).await;
    receiver.wait_for("/all", 6, WAIT).await;
    tokio::time::sleep(GRACE).await;
    assert_eq!(ids(&receiver, "/users"), ["u1", "u2", "u3"], "user.* takes no attempt.* event");
    assert_eq!(
        ids(&receiver, "/all"),
        ["a1", "a2", "i1", "u1", "u2", "u3"],
        "no store.purchase without the feature"
    );

    // With the feature, the same `*` subscription, untouched, receives store.purchase.
    upsert(&mut c, &portal, Plan::Pro, &["store"]).await;
    tokio::time::sleep(PROPAGATION).await;
    publish(EventType::StorePurchase, "s2").await;
    receiver.wait_for("/all", 7, WAIT).await;
    assert!(ids(&receiver, "/all").contains(&"s2".to_owned()));
    assert!(!ids(&receiver, "/users").contains(&"s2".to_owned()));
}
