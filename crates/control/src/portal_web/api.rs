//! The JSON API under `/api`: every handler turns its request into the proto message and calls
//! the gRPC service implementation (`ControlService`, `DeliveryService`) with the session's
//! portal as the caller, exactly as a portal API key calls it. Validation, plan rules, scoping
//! and errors are therefore the gRPC API's own.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use synap_proto::control::v1 as api;
use synap_proto::control::v1::control_service_server::ControlService;
use synap_proto::control::v1::delivery_service_server::DeliveryService;

use super::PortalWeb;
use super::dto;
use super::errors::{ApiError, ApiResult};
use super::session::{Session, SessionToken, clear_cookie};
use crate::convert::timestamp;

type Portal = State<Arc<PortalWeb>>;

/// A JSON body; one that does not parse is an INVALID_ARGUMENT naming the body, like any other
/// field (axum's own rejection is plain text).
fn body<T: DeserializeOwned + Default>(bytes: &Bytes) -> ApiResult<T> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    required_body(bytes)
}

fn required_body<T: DeserializeOwned>(bytes: &Bytes) -> ApiResult<T> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid("body", format!("is not valid JSON for this call: {e}")))
}

fn rfc3339(field: &str, value: &str) -> ApiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::invalid(field, "is not an RFC 3339 time like 2026-11-29T10:00:00Z"))
}

pub async fn session(Extension(s): Extension<Session>, State(p): Portal) -> Json<dto::SessionInfo> {
    Json(dto::SessionInfo {
        portal_id: s.portal_id,
        read_only: s.read_only,
        csrf_token: s.csrf,
        expires_at: s.expires_at.to_rfc3339(),
        title: p.config.title.clone(),
        has_logo: p.logo.is_some(),
    })
}

pub async fn sign_out(State(p): Portal, Extension(token): Extension<SessionToken>) -> ApiResult<Response> {
    synap_db::portal_sessions::end_session(&p.pool, &token.0)
        .await
        .map_err(|e| ApiError::from(crate::errors::db(e)))?;
    Ok(([(header::SET_COOKIE, clear_cookie(p.config.cookie_same_site))], StatusCode::NO_CONTENT)
        .into_response())
}

pub async fn event_types(
    State(p): Portal,
    Extension(s): Extension<Session>,
) -> ApiResult<Json<Vec<dto::EventType>>> {
    let r = ControlService::list_event_types(&*p.control, s.request(api::ListEventTypesRequest {})).await?;
    Ok(Json(r.into_inner().event_types.into_iter().map(Into::into).collect()))
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    page_token: Option<String>,
}

pub async fn list_endpoints(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Query(q): Query<PageQuery>,
) -> ApiResult<Json<dto::EndpointList>> {
    let request = api::ListSubscriptionsRequest {
        portal_id: s.portal_id.clone(),
        page_size: 500,
        page_token: q.page_token.unwrap_or_default(),
        ..Default::default()
    };
    let r = ControlService::list_subscriptions(&*p.control, s.request(request)).await?.into_inner();
    Ok(Json(dto::EndpointList {
        endpoints: r.subscriptions.into_iter().map(Into::into).collect(),
        next_page_token: r.next_page_token,
    }))
}

pub async fn create_endpoint(
    State(p): Portal,
    Extension(s): Extension<Session>,
    bytes: Bytes,
) -> ApiResult<(StatusCode, Json<dto::CreatedEndpoint>)> {
    let form: dto::NewEndpoint = required_body(&bytes)?;
    let request = form.into_request(s.portal_id.clone()).map_err(|(f, m)| ApiError::invalid(&f, m))?;
    let r = ControlService::create_subscription(&*p.control, s.request(request)).await?.into_inner();
    Ok((
        StatusCode::CREATED,
        Json(dto::CreatedEndpoint {
            endpoint: r.subscription.map(Into::into),
            signing_secret: r.signing_secret,
        }),
    ))
}

pub async fn get_endpoint(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> ApiResult<Json<dto::Endpoint>> {
    let r =
        ControlService::get_subscription(&*p.control, s.request(api::GetSubscriptionRequest { id })).await?;
    Ok(Json(r.into_inner().into()))
}

pub async fn update_endpoint(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<dto::Endpoint>> {
    let changes: dto::EndpointChanges = required_body(&bytes)?;
    let r = ControlService::update_subscription(&*p.control, s.request(changes.into_request(id))).await?;
    Ok(Json(r.into_inner().into()))
}

pub async fn delete_endpoint(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    ControlService::delete_subscription(&*p.control, s.request(api::DeleteSubscriptionRequest { id }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pause_endpoint(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> ApiResult<Json<dto::Endpoint>> {
    let r = ControlService::pause_subscription(&*p.control, s.request(api::PauseSubscriptionRequest { id }))
        .await?;
    Ok(Json(r.into_inner().into()))
}

pub async fn resume_endpoint(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> ApiResult<Json<dto::Endpoint>> {
    let r =
        ControlService::resume_subscription(&*p.control, s.request(api::ResumeSubscriptionRequest { id }))
            .await?;
    Ok(Json(r.into_inner().into()))
}

pub async fn rotate_secret(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<dto::Rotated>> {
    let rotation: dto::Rotation = body(&bytes)?;
    let overlap = rotation
        .overlap_seconds
        .map(|secs| {
            i64::try_from(secs)
                .map(|seconds| prost_types::Duration { seconds, nanos: 0 })
                .map_err(|_| ApiError::invalid("overlap_seconds", "is too large"))
        })
        .transpose()?;
    let scheme = rotation.scheme().map_err(|(f, m)| ApiError::invalid(&f, m))?;
    let request =
        api::RotateSigningSecretRequest { subscription_id: id, overlap, signature_scheme: scheme as i32 };
    let r = ControlService::rotate_signing_secret(&*p.control, s.request(request)).await?.into_inner();
    Ok(Json(dto::Rotated::from_response(r)))
}

/// TestFilter: a filter tried on one event; nothing is written or sent.
pub async fn test_filter(
    State(p): Portal,
    Extension(s): Extension<Session>,
    bytes: Bytes,
) -> ApiResult<Json<dto::FilterResult>> {
    let test: dto::FilterTest = required_body(&bytes)?;
    let r = ControlService::test_filter(&*p.control, s.request(api::TestFilterRequest::from(test))).await?;
    Ok(Json(r.into_inner().into()))
}

pub async fn test_send(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<dto::TestResult>> {
    let test: dto::TestRequest = body(&bytes)?;
    let request = api::TestSendRequest { subscription_id: id, event_type: test.event_type };
    let r = ControlService::test_send(&*p.control, s.request(request)).await?;
    Ok(Json(r.into_inner().into()))
}

#[derive(Debug, Default, Deserialize)]
pub struct AttemptQuery {
    outcome: Option<String>,
    event_type: Option<String>,
    since: Option<String>,
    until: Option<String>,
    page_token: Option<String>,
}

pub async fn list_attempts(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Query<AttemptQuery>,
) -> ApiResult<Json<dto::AttemptList>> {
    let time = |field: &str, v: Option<String>| -> ApiResult<Option<prost_types::Timestamp>> {
        v.filter(|v| !v.is_empty()).map(|v| rfc3339(field, &v).map(timestamp)).transpose()
    };
    let request = api::ListAttemptsRequest {
        portal_id: s.portal_id.clone(),
        subscription_id: id,
        event_type: q.event_type.unwrap_or_default(),
        outcome: q.outcome.unwrap_or_default(),
        since: time("since", q.since)?,
        until: time("until", q.until)?,
        page_size: 100,
        page_token: q.page_token.unwrap_or_default(),
        ..Default::default()
    };
    // An empty id would list the whole portal: this route is per endpoint.
    if request.subscription_id.is_empty() {
        return Err(ApiError::invalid("subscription_id", "is required"));
    }
    let r = DeliveryService::list_attempts(&*p.deliveries, s.request(request)).await?.into_inner();
    Ok(Json(dto::AttemptList {
        attempts: r.attempts.into_iter().map(Into::into).collect(),
        next_page_token: r.next_page_token,
    }))
}

pub async fn get_attempt(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> ApiResult<Json<dto::Attempt>> {
    let r = DeliveryService::get_attempt(&*p.deliveries, s.request(api::GetAttemptRequest { id })).await?;
    let attempt = r.into_inner();
    let sub = ControlService::get_subscription(
        &*p.control,
        s.request(api::GetSubscriptionRequest { id: attempt.subscription_id.clone() }),
    )
    .await
    .ok()
    .map(|r| r.into_inner());
    let basic_auth = sub.is_some_and(|s| s.basic_auth_username.is_some());
    let mut attempt = dto::Attempt::from(attempt);
    attempt.request_headers = dto::request_headers(&attempt, basic_auth);
    Ok(Json(attempt))
}

pub async fn resend(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<StatusCode> {
    let resend: dto::Resend = required_body(&bytes)?;
    let request = api::ResendEventRequest { subscription_id: id, event_id: resend.event_id };
    DeliveryService::resend_event(&*p.deliveries, s.request(request)).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn recover(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<dto::Recovered>> {
    let recover: dto::Recover = required_body(&bytes)?;
    let since = rfc3339("since", &recover.since)?;
    let request = api::RecoverFailedRequest { subscription_id: id, since: Some(timestamp(since)) };
    let r = DeliveryService::recover_failed(&*p.deliveries, s.request(request)).await?.into_inner();
    Ok(Json(dto::Recovered { resent: r.resent, expired: r.expired }))
}

pub async fn health(
    State(p): Portal,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
) -> ApiResult<Json<dto::Health>> {
    let request = api::GetSubscriptionHealthRequest { subscription_id: id };
    let r = DeliveryService::get_subscription_health(&*p.deliveries, s.request(request)).await?;
    Ok(Json(r.into_inner().into()))
}
