//! `synap.control.v1.DeliveryService`: the attempt log, resend and recover.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prost::Message as _;
use synap_contract::EventType;
use synap_db::Pool;
use synap_db::attempts::{self, AttemptFilter, Outcome, Source};
use synap_kafka::KafkaConfig;
use synap_kafka::fetch::Fetcher;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::delivery_service_server::DeliveryService;
use synap_proto::pipeline::v1::Delivery;
use tonic::{Request, Response, Status};

use crate::auth::Caller;
use crate::convert::timestamp;
use crate::errors::{db, invalid, not_found, precondition, restarting};
use crate::kafka_writer::{KafkaWriter, WriteFailure};
use crate::validate;

/// Most deliveries one recover call sends again.
const MAX_RECOVER: usize = 10_000;

#[derive(Clone)]
pub struct DeliveryApi {
    pool: Pool,
    writer: KafkaWriter,
    fetcher: Arc<Fetcher>,
}

impl DeliveryApi {
    /// Reads deliveries back with its own reader of `kafka`; writes them through `writer`.
    pub fn new(
        pool: Pool,
        kafka: &KafkaConfig,
        writer: KafkaWriter,
    ) -> Result<Self, synap_kafka::KafkaError> {
        Ok(Self { pool, writer, fetcher: Arc::new(Fetcher::new(kafka)?) })
    }

    /// NOT_FOUND unless the subscription exists and the caller may see its portal.
    async fn check_subscription(&self, caller: &Caller, subscription_id: &str) -> Result<(), Status> {
        match synap_db::delivery_state::portal_of(&self.pool, subscription_id).await.map_err(db)? {
            Some(portal) if caller.can_access(&portal) => Ok(()),
            _ => Err(not_found("subscription", subscription_id)),
        }
    }

    /// Reads the delivery back from Kafka and writes it to the deliveries topic as a new
    /// delivery. False when the body is no longer retained.
    async fn resend(&self, source: Source, subscription_id: &str) -> Result<bool, Status> {
        let fetcher = self.fetcher.clone();
        let (topic, partition, offset) = (source.topic.clone(), source.partition, source.offset);
        let payload = tokio::task::spawn_blocking(move || {
            fetcher.fetch(&topic, partition, offset, Duration::from_secs(30))
        })
        .await
        .map_err(|_| Status::internal("internal error"))?
        .map_err(|e| {
            tracing::warn!(error = %e, "cannot read a delivery back");
            Status::unavailable("Kafka unavailable, retry later")
        })?;
        let Some(payload) = payload else { return Ok(false) };
        let Ok(delivery) = Delivery::decode(payload.as_slice()) else { return Ok(false) };
        if delivery.event_id != source.event_id || delivery.subscription_id != subscription_id {
            return Ok(false);
        }
        let record = synap_kafka::deliveries::record(
            self.writer.topics().deliveries(),
            &synap_kafka::deliveries::again(delivery),
        );
        match self.writer.write(&record, Duration::from_secs(15)).await {
            Ok(()) => Ok(true),
            // It was written to this topic once: a limit lowered since, which retrying never mends.
            Err(WriteFailure::Refused(refusal)) => Err(precondition(
                "event_id",
                format!("the deliveries topic refuses this delivery now: {refusal}"),
            )),
            Err(WriteFailure::TimedOut) => Err(Status::unavailable("Kafka unavailable, retry later")),
            Err(WriteFailure::Stopping) => Err(restarting()),
        }
    }
}

fn time(t: Option<prost_types::Timestamp>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32))
}

fn some(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn to_api(attempt: attempts::Attempt) -> api::Attempt {
    let attempts::Attempt { id, row: a } = attempt;
    let response_headers = a
        .response_headers
        .as_deref()
        .and_then(|h| serde_json::from_str::<std::collections::HashMap<String, String>>(h).ok())
        .unwrap_or_default();
    api::Attempt {
        id: id.to_string(),
        event_id: a.event_id,
        event_type: a.event_type,
        portal_id: a.portal_id,
        subscription_id: a.subscription_id,
        attempt: a.attempt.max(0) as u32,
        scheduled_at: Some(timestamp(a.scheduled_at)),
        sent_at: Some(timestamp(a.sent_at)),
        finished_at: Some(timestamp(a.finished_at)),
        outcome: a.outcome.code().to_owned(),
        error_class: a.error_class.map(|c| c.code().to_owned()).unwrap_or_default(),
        error: a.error.unwrap_or_default(),
        status_code: a.status_code.unwrap_or(0).max(0) as u32,
        latency_ms: a.latency_ms.max(0) as u32,
        response_headers,
        response_body: a.response_body.unwrap_or_default(),
        test_send: a.test_send,
    }
}

#[tonic::async_trait]
impl DeliveryService for DeliveryApi {
    async fn list_attempts(
        &self,
        request: Request<api::ListAttemptsRequest>,
    ) -> Result<Response<api::ListAttemptsResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        // Every filter is checked before it reaches a query: an id PostgreSQL cannot hold
        // (a NUL) would otherwise fail as an internal error.
        validate::optional_id("portal_id", &r.portal_id)?;
        validate::optional_id("subscription_id", &r.subscription_id)?;
        validate::optional_id("event_id", &r.event_id)?;
        if !r.event_type.is_empty() && EventType::from_code(&r.event_type).is_none() {
            return Err(invalid("event_type", "is not a known event type"));
        }
        let portal_id = some(r.portal_id);
        match (&caller, &portal_id) {
            (Caller::Admin, _) => {}
            (Caller::Portal(_), None) => return Err(invalid("portal_id", "is required")),
            (caller, Some(portal)) if !caller.can_access(portal) => return Err(not_found("portal", portal)),
            _ => {}
        }
        if !r.subscription_id.is_empty() {
            self.check_subscription(&caller, &r.subscription_id).await?;
        }
        let outcome = match r.outcome.as_str() {
            "" => None,
            code => Some(Outcome::parse(code).ok_or_else(|| {
                let codes: Vec<&str> = Outcome::ALL.iter().map(|o| o.code()).collect();
                invalid("outcome", format!("must be one of {}", codes.join(", ")))
            })?),
        };
        let before_id = match r.page_token.as_str() {
            "" => None,
            token => Some(
                token.parse::<i64>().map_err(|_| invalid("page_token", "is not a token from this API"))?,
            ),
        };
        let limit = crate::page::size(i32::try_from(r.page_size).unwrap_or(i32::MAX))?;
        let filter = AttemptFilter {
            portal_id,
            subscription_id: some(r.subscription_id),
            event_id: some(r.event_id),
            event_type: some(r.event_type),
            outcome,
            since: time(r.since),
            until: time(r.until),
            before_id,
            // One more than the page tells whether another page follows.
            limit: limit as i64 + 1,
        };
        let mut rows = attempts::list(&self.pool, &filter).await.map_err(db)?;
        let next_page_token = if rows.len() > limit {
            rows.truncate(limit);
            rows.last().map(|a| a.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(api::ListAttemptsResponse {
            attempts: rows.into_iter().map(to_api).collect(),
            next_page_token,
        }))
    }

    async fn get_attempt(
        &self,
        request: Request<api::GetAttemptRequest>,
    ) -> Result<Response<api::Attempt>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().id;
        let parsed = id.parse::<i64>().map_err(|_| not_found("attempt", &id))?;
        match attempts::get(&self.pool, parsed).await.map_err(db)? {
            Some(a) if caller.can_access(&a.row.portal_id) => Ok(Response::new(to_api(a))),
            _ => Err(not_found("attempt", &id)),
        }
    }

    async fn resend_event(
        &self,
        request: Request<api::ResendEventRequest>,
    ) -> Result<Response<api::ResendEventResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        validate::id("subscription_id", &r.subscription_id)?;
        validate::id("event_id", &r.event_id)?;
        self.check_subscription(&caller, &r.subscription_id).await?;
        let source = attempts::source(&self.pool, &r.subscription_id, &r.event_id)
            .await
            .map_err(db)?
            .ok_or_else(|| not_found("delivery of event", &r.event_id))?;
        if !self.resend(source, &r.subscription_id).await? {
            return Err(precondition(
                "event_id",
                "the event's body is no longer retained (topics.delivery_retention_ms, 14 days by default)",
            ));
        }
        tracing::info!(subscription_id = %r.subscription_id, event_id = %r.event_id, "event resent");
        Ok(Response::new(api::ResendEventResponse {}))
    }

    async fn recover_failed(
        &self,
        request: Request<api::RecoverFailedRequest>,
    ) -> Result<Response<api::RecoverFailedResponse>, Status> {
        let caller = Caller::of(&request)?.clone();
        let r = request.into_inner();
        validate::id("subscription_id", &r.subscription_id)?;
        let since = time(r.since).ok_or_else(|| invalid("since", "is required"))?;
        self.check_subscription(&caller, &r.subscription_id).await?;
        let failed = attempts::failed_since(&self.pool, &r.subscription_id, since).await.map_err(db)?;
        let (mut resent, mut expired) = (0u32, 0u32);
        for source in failed.into_iter().take(MAX_RECOVER) {
            if self.resend(source, &r.subscription_id).await? {
                resent += 1;
            } else {
                expired += 1;
            }
        }
        tracing::info!(subscription_id = %r.subscription_id, resent, expired, "failed deliveries recovered");
        Ok(Response::new(api::RecoverFailedResponse { resent, expired }))
    }

    async fn get_subscription_health(
        &self,
        request: Request<api::GetSubscriptionHealthRequest>,
    ) -> Result<Response<api::SubscriptionHealth>, Status> {
        let caller = Caller::of(&request)?.clone();
        let id = request.into_inner().subscription_id;
        validate::id("subscription_id", &id)?;
        let sub = match synap_db::subscriptions::get(&self.pool, &id).await.map_err(db)? {
            Some(sub) if caller.can_access(&sub.portal_id) => sub,
            _ => return Err(not_found("subscription", &id)),
        };
        crate::health::of(&self.pool, sub).await.map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The API with a database and broker that are never reached: the checks under test answer
    /// before any query.
    fn api() -> DeliveryApi {
        let pool = synap_db::connect(&synap_db::DatabaseConfig::default()).unwrap();
        let kafka = KafkaConfig::default();
        let writer = KafkaWriter::new(&kafka, tokio_util::sync::CancellationToken::new()).unwrap();
        DeliveryApi::new(pool, &kafka, writer).unwrap()
    }

    fn as_portal<T>(portal: &str, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.extensions_mut().insert(Caller::Portal(portal.into()));
        request
    }

    #[tokio::test]
    async fn a_portal_key_sees_only_its_own_portal() {
        let api = api();
        let other = api::ListAttemptsRequest { portal_id: "theirs".into(), ..Default::default() };
        let status = api.list_attempts(as_portal("mine", other)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        let unscoped = api::ListAttemptsRequest::default();
        let status = api.list_attempts(as_portal("mine", unscoped)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }

    #[tokio::test]
    async fn bad_arguments_are_named() {
        let api = api();
        let request = api::ListAttemptsRequest {
            portal_id: "mine".into(),
            outcome: "maybe".into(),
            ..Default::default()
        };
        let status = api.list_attempts(as_portal("mine", request)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert!(status.message().starts_with("outcome"), "{}", status.message());
        let status =
            api.get_attempt(as_portal("mine", api::GetAttemptRequest { id: "x".into() })).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound);
        let recover = api::RecoverFailedRequest { subscription_id: "sub_1".into(), since: None };
        let status = api.recover_failed(as_portal("mine", recover)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
