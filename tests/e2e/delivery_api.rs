//! The delivery API: the attempt log through gRPC, resend and recover.

use std::time::Duration;

use synap_proto::control::v1 as api;
use synap_tests::stack::{Deliveries, Service};
use synap_tests::{Receiver, Reply, Stack};
use tonic_types::StatusExt;

use crate::delivery_support::{event_ids, portal_with_subscription, publish, wait_for_log};

const WAIT: Duration = Duration::from_secs(40);

fn now_minus(seconds: i64) -> synap_proto::Timestamp {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    synap_proto::Timestamp { seconds: now - seconds, nanos: 0 }
}

/// Recovers what failed in the last ten minutes.
async fn recover(deliveries: &mut Deliveries, sub: &str) -> api::RecoverFailedResponse {
    let request = api::RecoverFailedRequest { subscription_id: sub.into(), since: Some(now_minus(600)) };
    deliveries.recover_failed(request).await.unwrap().into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_listed_and_recovered() {
    // No retries, and no circuit breaking, so that each event fails exactly once.
    let stack = Stack::start_with(&[
        ("SYNAP_SENDER__RETRY_DELAYS_MS", "[]"),
        ("SYNAP_SENDER__BREAKER_FAILURES", "1000"),
    ])
    .await;
    let receiver = Receiver::start().await;
    receiver.always("/outage", Reply::Status(503));
    let (portal, sub, _) = portal_with_subscription(&stack, receiver.url("/outage")).await;
    let ids = event_ids("recover", 5);
    publish(&stack, &portal, &ids).await;
    wait_for_log(&stack, &sub, WAIT, |log| log.iter().filter(|a| a.outcome == "failed").count() == 5).await;

    // The log through the API, two at a time.
    let mut deliveries = stack.deliveries().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = deliveries
            .list_attempts(api::ListAttemptsRequest {
                portal_id: portal.clone(),
                subscription_id: sub.clone(),
                outcome: "failed".into(),
                since: Some(now_minus(600)),
                page_size: 2,
                page_token: token.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert!(page.attempts.len() <= 2);
        seen.extend(page.attempts);
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut seen_ids: Vec<String> = seen.iter().map(|a| a.event_id.clone()).collect();
    seen_ids.sort();
    assert_eq!(seen_ids, ids, "each failed delivery once, over three pages");
    let one =
        deliveries.get_attempt(api::GetAttemptRequest { id: seen[0].id.clone() }).await.unwrap().into_inner();
    assert_eq!(
        (one.status_code, one.error_class.as_str(), one.outcome.as_str()),
        (503, "http_status", "failed")
    );
    let none = deliveries
        .list_attempts(api::ListAttemptsRequest {
            portal_id: portal.clone(),
            outcome: "delivered".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.attempts.is_empty());
    let missing = deliveries.get_attempt(api::GetAttemptRequest { id: "999999".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // The endpoint is back: recover sends every failed delivery again, with its webhook-id.
    receiver.always("/outage", Reply::Status(204));
    let recovered = recover(&mut deliveries, &sub).await;
    assert_eq!((recovered.resent, recovered.expired), (5, 0));
    let got = receiver.wait_for("/outage", 10, WAIT).await;
    let mut redelivered: Vec<&str> = got[5..].iter().map(|r| r.header("webhook-id").unwrap()).collect();
    redelivered.sort();
    assert_eq!(redelivered, ids.iter().map(String::as_str).collect::<Vec<_>>());
    wait_for_log(&stack, &sub, WAIT, |log| log.iter().filter(|a| a.outcome == "delivered").count() == 5)
        .await;

    // Nothing failed is left to recover.
    let again = recover(&mut deliveries, &sub).await;
    assert_eq!(again.resent, 0);

    // Resend one delivered event by hand.
    deliveries
        .resend_event(api::ResendEventRequest { subscription_id: sub.clone(), event_id: ids[2].clone() })
        .await
        .unwrap();
    let got = receiver.wait_for("/outage", 11, WAIT).await;
    assert_eq!(got[10].header("webhook-id"), Some(ids[2].as_str()));
    assert_eq!(got[10].header("synap-delivery-attempt"), Some("1"));

    let unknown = deliveries
        .resend_event(api::ResendEventRequest { subscription_id: sub.clone(), event_id: "never-sent".into() })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);
    let other = deliveries
        .resend_event(api::ResendEventRequest {
            subscription_id: "sub_missing".into(),
            event_id: ids[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(other.code(), tonic::Code::NotFound);
}

/// A resend the deliveries topic now refuses (a record limit lowered since the delivery was first
/// written) can never succeed by trying again: FAILED_PRECONDITION on `event_id`, saying why, not
/// UNAVAILABLE, which tells a client to retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resend_the_broker_refuses_for_good_is_a_failed_precondition_on_the_event() {
    let mut stack = Stack::start().await;
    let receiver = Receiver::start().await;
    receiver.always("/ok", Reply::Status(204));
    let (portal, sub, _) = portal_with_subscription(&stack, receiver.url("/ok")).await;
    let ids = event_ids("refused", 1);
    publish(&stack, &portal, &ids).await;
    wait_for_log(&stack, &sub, WAIT, |log| log.iter().any(|a| a.outcome == "delivered")).await;

    // Control's producer now takes records of at most 1,000 bytes (librdkafka's least); the
    // delivery record carries the 1.6 KB `attempt.completed` body.
    stack.set_env("SYNAP_KAFKA__PRODUCER", Some(r#"{"message.max.bytes"="1000"}"#));
    stack.restart(Service::Control).await;
    let status = stack
        .deliveries()
        .await
        .resend_event(api::ResendEventRequest { subscription_id: sub.clone(), event_id: ids[0].clone() })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::FailedPrecondition, "{status:?}");
    assert!(
        status.message().starts_with("event_id: the deliveries topic refuses this delivery"),
        "{status:?}"
    );
    let violations =
        status.get_details_precondition_failure().expect("PreconditionFailure details").violations;
    assert_eq!(violations[0].subject, "event_id");
    // Nothing was sent again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.at("/ok").len(), 1);
}
