//! Every id field of both services refuses what PostgreSQL, Kafka headers or HTTP headers could
//! not carry, as INVALID_ARGUMENT naming the field, before any query. The pool and broker below
//! are never reached: a call that got past its checks would fail with another code.

use std::time::Duration;

use synap_contract::ids::MAX_ID_LEN;
use synap_db::{DatabaseConfig, SecretBox};
use synap_kafka::KafkaConfig;
use synap_outbound::Policy;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_server::ControlService;
use synap_proto::control::v1::delivery_service_server::DeliveryService;
use tonic::{Code, Request, Status};
use tonic_types::StatusExt;

use crate::auth::Caller;
use crate::deliveries::DeliveryApi;
use crate::service::ControlApi;

/// What a careless or hostile caller puts in an id.
fn hostile_ids() -> Vec<(&'static str, String)> {
    vec![
        ("NUL", "p_demo\0".into()),
        ("CR", "a\rb".into()),
        ("LF", "a\nb".into()),
        ("space", "a b".into()),
        ("tab", "a\tb".into()),
        ("DEL", "a\x7f".into()),
        ("non-ASCII", "portål".into()),
        ("right-to-left override", "a\u{202e}b".into()),
        ("129 bytes", "x".repeat(MAX_ID_LEN + 1)),
    ]
}

fn control() -> ControlApi {
    ControlApi {
        pool: synap_db::connect(&DatabaseConfig::default()).unwrap(),
        secrets: SecretBox::from_base64("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap(),
        allow_http_urls: false,
        outbound: Policy::default(),
        secret_overlap: Duration::from_secs(60),
        request_id_ttl: Duration::from_secs(60),
        test_sender: None,
        portal_links: Some(crate::portal_links::PortalLinks {
            public_url: "https://webhooks.example".into(),
            ttl: Duration::from_secs(60),
        }),
    }
}

fn deliveries() -> DeliveryApi {
    let pool = synap_db::connect(&DatabaseConfig::default()).unwrap();
    let kafka = KafkaConfig::default();
    let writer =
        crate::kafka_writer::KafkaWriter::new(&kafka, tokio_util::sync::CancellationToken::new()).unwrap();
    DeliveryApi::new(pool, &kafka, writer).unwrap()
}

fn admin<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.extensions_mut().insert(Caller::Admin);
    request
}

#[track_caller]
fn assert_names<T: std::fmt::Debug>(result: Result<T, Status>, field: &str, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), Code::InvalidArgument, "{field} with {what}: {status:?}");
    let violations = status.get_details_bad_request().expect("a BadRequest detail").field_violations;
    assert_eq!(violations[0].field, field, "{what}");
    // The message shows a code point, never the raw character.
    assert!(status.message().chars().all(|c| c.is_ascii_graphic() || c == ' '), "{:?}", status.message());
}

/// A create request that passes every other check (an IP literal URL, so no DNS).
fn create(portal_id: &str, request_id: &str) -> api::CreateSubscriptionRequest {
    api::CreateSubscriptionRequest {
        portal_id: portal_id.into(),
        url: "https://93.184.215.14/hook".into(),
        event_types: vec!["exam.completed".into()],
        request_id: request_id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn control_service_ids_follow_the_id_rule() {
    let api = control();
    for (what, bad) in hostile_ids() {
        let id = bad.clone();
        let upsert =
            api::UpsertPortalRequest { id: id.clone(), plan: api::Plan::Pro as i32, features: vec![] };
        assert_names(ControlService::upsert_portal(&api, admin(upsert)).await, "id", what);
        let feature = api::UpsertPortalRequest {
            id: "acme".into(),
            plan: api::Plan::Pro as i32,
            features: vec!["store".into(), id.clone()],
        };
        assert_names(ControlService::upsert_portal(&api, admin(feature)).await, "features[1]", what);
        assert_names(
            ControlService::get_portal(&api, admin(api::GetPortalRequest { id: id.clone() })).await,
            "id",
            what,
        );

        let key = api::CreateApiKeyRequest { portal_id: id.clone(), name: "backend".into() };
        assert_names(ControlService::create_api_key(&api, admin(key)).await, "portal_id", what);
        let keys = api::ListApiKeysRequest { portal_id: id.clone(), include_revoked: false };
        assert_names(ControlService::list_api_keys(&api, admin(keys)).await, "portal_id", what);
        assert_names(
            ControlService::revoke_api_key(&api, admin(api::RevokeApiKeyRequest { id: id.clone() })).await,
            "id",
            what,
        );

        assert_names(
            ControlService::create_subscription(&api, admin(create(&id, ""))).await,
            "portal_id",
            what,
        );
        assert_names(
            ControlService::create_subscription(&api, admin(create("acme", &id))).await,
            "request_id",
            what,
        );
        let list = api::ListSubscriptionsRequest { portal_id: id.clone(), ..Default::default() };
        assert_names(ControlService::list_subscriptions(&api, admin(list)).await, "portal_id", what);
        let get = api::GetSubscriptionRequest { id: id.clone() };
        assert_names(ControlService::get_subscription(&api, admin(get)).await, "id", what);
        let update = api::UpdateSubscriptionRequest { id: id.clone(), ..Default::default() };
        assert_names(ControlService::update_subscription(&api, admin(update)).await, "id", what);
        let delete = api::DeleteSubscriptionRequest { id: id.clone() };
        assert_names(ControlService::delete_subscription(&api, admin(delete)).await, "id", what);
        let pause = api::PauseSubscriptionRequest { id: id.clone() };
        assert_names(ControlService::pause_subscription(&api, admin(pause)).await, "id", what);
        let resume = api::ResumeSubscriptionRequest { id: id.clone() };
        assert_names(ControlService::resume_subscription(&api, admin(resume)).await, "id", what);
        let rotate = api::RotateSigningSecretRequest {
            subscription_id: id.clone(),
            overlap: None,
            ..Default::default()
        };
        assert_names(
            ControlService::rotate_signing_secret(&api, admin(rotate)).await,
            "subscription_id",
            what,
        );
        let test = api::TestSendRequest { subscription_id: id.clone(), event_type: String::new() };
        assert_names(ControlService::test_send(&api, admin(test)).await, "subscription_id", what);
        let link = api::CreatePortalLinkRequest { portal_id: id.clone(), read_only: false };
        assert_names(ControlService::create_portal_link(&api, admin(link)).await, "portal_id", what);
    }
}

#[tokio::test]
async fn empty_ids_are_refused_where_an_id_is_required() {
    let api = control();
    let upsert =
        api::UpsertPortalRequest { id: String::new(), plan: api::Plan::Pro as i32, features: vec![] };
    assert_names(ControlService::upsert_portal(&api, admin(upsert)).await, "id", "empty");
    let get = api::GetSubscriptionRequest { id: String::new() };
    assert_names(ControlService::get_subscription(&api, admin(get)).await, "id", "empty");
    let resend = api::ResendEventRequest { subscription_id: "sub_1".into(), event_id: String::new() };
    assert_names(deliveries().resend_event(admin(resend)).await, "event_id", "empty");
}

#[tokio::test]
async fn free_text_that_postgresql_refuses_is_named() {
    let api = control();
    let key = api::CreateApiKeyRequest { portal_id: "acme".into(), name: "back\0end".into() };
    assert_names(ControlService::create_api_key(&api, admin(key)).await, "name", "NUL in a name");
    let mut with_description = create("acme", "");
    with_description.description = "hooks\0".into();
    assert_names(
        ControlService::create_subscription(&api, admin(with_description)).await,
        "description",
        "NUL",
    );
    let mut with_user = create("acme", "");
    with_user.basic_auth = Some(api::BasicAuth { username: "us\0er".into(), password: "pw".into() });
    assert_names(
        ControlService::create_subscription(&api, admin(with_user)).await,
        "basic_auth.username",
        "NUL",
    );
}

#[tokio::test]
async fn delivery_service_ids_follow_the_id_rule() {
    let api = deliveries();
    for (what, bad) in hostile_ids() {
        for field in ["portal_id", "subscription_id", "event_id"] {
            let mut list = api::ListAttemptsRequest::default();
            match field {
                "portal_id" => list.portal_id = bad.clone(),
                "subscription_id" => list.subscription_id = bad.clone(),
                _ => list.event_id = bad.clone(),
            }
            assert_names(api.list_attempts(admin(list)).await, field, what);
        }
        let resend = api::ResendEventRequest { subscription_id: bad.clone(), event_id: "evt_1".into() };
        assert_names(api.resend_event(admin(resend)).await, "subscription_id", what);
        let resend = api::ResendEventRequest { subscription_id: "sub_1".into(), event_id: bad.clone() };
        assert_names(api.resend_event(admin(resend)).await, "event_id", what);
        let recover = api::RecoverFailedRequest {
            subscription_id: bad.clone(),
            since: Some(prost_types::Timestamp { seconds: 0, nanos: 0 }),
        };
        assert_names(api.recover_failed(admin(recover)).await, "subscription_id", what);
        let health = api::GetSubscriptionHealthRequest { subscription_id: bad.clone() };
        assert_names(api.get_subscription_health(admin(health)).await, "subscription_id", what);
    }
    let list = api::ListAttemptsRequest { event_type: "exam.completed\0".into(), ..Default::default() };
    assert_names(api.list_attempts(admin(list)).await, "event_type", "an unknown event type");
}

#[tokio::test]
async fn a_deployment_without_a_portal_mints_no_links() {
    let api = ControlApi { portal_links: None, ..control() };
    let link = api::CreatePortalLinkRequest { portal_id: "acme".into(), read_only: false };
    let status = ControlService::create_portal_link(&api, admin(link)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(status.message().contains("portal.public_url"), "{}", status.message());
}
