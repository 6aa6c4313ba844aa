//! The JSON the portal's API speaks, mapped by hand to and from the proto messages. Field names
//! are the proto's own (snake_case), so a field violation the service names (`url`,
//! `event_types[1]`, `basic_auth.password`) is also the key of the JSON body and the name of
//! the form field. A field added to a proto message is surfaced by adding it here, once in each
//! direction.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use synap_proto::control::v1 as api;

pub fn time(t: Option<prost_types::Timestamp>) -> Option<String> {
    let t = t?;
    DateTime::<Utc>::from_timestamp(t.seconds, t.nanos.max(0) as u32)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

fn state_code(state: i32) -> &'static str {
    match api::SubscriptionState::try_from(state) {
        Ok(api::SubscriptionState::Active) => "active",
        Ok(api::SubscriptionState::Paused) => "paused",
        Ok(api::SubscriptionState::Disabled) => "disabled",
        _ => "unknown",
    }
}

/// A subscription, called an endpoint in the portal (what customers call it).
#[derive(Debug, Serialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub event_types: Vec<String>,
    pub description: String,
    /// active, paused or disabled.
    pub state: &'static str,
    pub disabled_reason: String,
    pub basic_auth_username: Option<String>,
    pub ordered: bool,
    pub max_in_flight: Option<u32>,
    pub rate_limit_per_sec: Option<u32>,
    pub timeout_ms: Option<u32>,
    pub omit_traceparent: bool,
    /// The CEL filter; empty: none.
    pub filter: String,
    /// v1 or v1a.
    pub signature_scheme: &'static str,
    pub signing_public_keys: Vec<PublicKey>,
    /// A secret header's value is never returned (empty).
    pub headers: Vec<CustomHeader>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
}

fn scheme_code(scheme: i32) -> &'static str {
    match api::SignatureScheme::try_from(scheme) {
        Ok(api::SignatureScheme::V1a) => "v1a",
        _ => "v1",
    }
}

/// `v1`/`v1a` to the proto enum; absent or empty: UNSPECIFIED (the service's default).
fn scheme(field: &str, code: Option<&str>) -> Result<api::SignatureScheme, (String, String)> {
    match code.unwrap_or_default() {
        "" => Ok(api::SignatureScheme::Unspecified),
        "v1" => Ok(api::SignatureScheme::V1),
        "v1a" => Ok(api::SignatureScheme::V1a),
        _ => Err((field.to_owned(), "must be v1 or v1a".to_owned())),
    }
}

#[derive(Debug, Serialize)]
pub struct PublicKey {
    pub public_key: String,
    /// Absent for the current key.
    pub expires_at: Option<String>,
}

/// An extra request header; `value` is write-only when `secret` is set.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomHeader {
    pub name: String,
    #[serde(default)]
    pub value: String,
    #[serde(default)]
    pub secret: bool,
}

impl From<CustomHeader> for api::CustomHeader {
    fn from(h: CustomHeader) -> Self {
        api::CustomHeader { name: h.name, value: h.value, secret: h.secret }
    }
}

impl From<api::CustomHeader> for CustomHeader {
    fn from(h: api::CustomHeader) -> Self {
        // The service already empties a secret value; the portal does not rely on it.
        let value = if h.secret { String::new() } else { h.value };
        CustomHeader { name: h.name, value, secret: h.secret }
    }
}

impl From<api::Subscription> for Endpoint {
    fn from(s: api::Subscription) -> Self {
        Endpoint {
            state: state_code(s.state),
            id: s.id,
            url: s.url,
            event_types: s.event_types,
            description: s.description,
            disabled_reason: s.disabled_reason,
            basic_auth_username: s.basic_auth_username,
            ordered: s.ordered,
            max_in_flight: s.max_in_flight,
            rate_limit_per_sec: s.rate_limit_per_sec,
            timeout_ms: s.timeout_ms,
            omit_traceparent: s.omit_traceparent,
            filter: s.filter,
            signature_scheme: scheme_code(s.signature_scheme),
            signing_public_keys: s
                .signing_public_keys
                .into_iter()
                .map(|k| PublicKey { public_key: k.public_key, expires_at: time(k.expires_at) })
                .collect(),
            headers: s.headers.into_iter().map(Into::into).collect(),
            created_at: time(s.created_at),
            updated_at: time(s.updated_at),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EndpointList {
    pub endpoints: Vec<Endpoint>,
    pub next_page_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    pub username: String,
    pub password: String,
}

impl From<BasicAuth> for api::BasicAuth {
    fn from(b: BasicAuth) -> Self {
        api::BasicAuth { username: b.username, password: b.password }
    }
}

/// A new endpoint. There is no `portal_id`: the session's portal is the only one it can be
/// for, and an unknown field is refused rather than ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    pub url: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub description: String,
    pub basic_auth: Option<BasicAuth>,
    pub enabled: Option<bool>,
    #[serde(default)]
    pub ordered: bool,
    pub max_in_flight: Option<u32>,
    pub rate_limit_per_sec: Option<u32>,
    pub timeout_ms: Option<u32>,
    #[serde(default)]
    pub omit_traceparent: bool,
    #[serde(default)]
    pub filter: String,
    /// v1 (the default) or v1a.
    pub signature_scheme: Option<String>,
    #[serde(default)]
    pub headers: Vec<CustomHeader>,
    /// Makes a retried submit safe (the page sends one per form).
    #[serde(default)]
    pub request_id: String,
}

impl NewEndpoint {
    // `..Default::default()`: a field added to the proto stays at its default until the portal
    // surfaces it.
    #[allow(clippy::needless_update)]
    pub fn into_request(self, portal_id: String) -> Result<api::CreateSubscriptionRequest, (String, String)> {
        Ok(api::CreateSubscriptionRequest {
            portal_id,
            url: self.url,
            event_types: self.event_types,
            description: self.description,
            basic_auth: self.basic_auth.map(Into::into),
            enabled: self.enabled,
            request_id: self.request_id,
            ordered: self.ordered,
            max_in_flight: self.max_in_flight,
            rate_limit_per_sec: self.rate_limit_per_sec,
            timeout_ms: self.timeout_ms,
            omit_traceparent: self.omit_traceparent,
            filter: self.filter,
            signature_scheme: scheme("signature_scheme", self.signature_scheme.as_deref())? as i32,
            headers: self.headers.into_iter().map(Into::into).collect(),
            ..Default::default()
        })
    }
}

#[derive(Debug, Serialize)]
pub struct CreatedEndpoint {
    pub endpoint: Option<Endpoint>,
    /// Shown once, at creation; empty for v1a (the endpoint's `signing_public_keys` verify).
    pub signing_secret: String,
}

/// Changes to an endpoint: absent fields stay as they are.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    pub description: Option<String>,
    pub basic_auth: Option<BasicAuth>,
    #[serde(default)]
    pub clear_basic_auth: bool,
    pub ordered: Option<bool>,
    pub max_in_flight: Option<u32>,
    pub rate_limit_per_sec: Option<u32>,
    pub timeout_ms: Option<u32>,
    #[serde(default)]
    pub clear_max_in_flight: bool,
    #[serde(default)]
    pub clear_rate_limit_per_sec: bool,
    #[serde(default)]
    pub clear_timeout_ms: bool,
    pub omit_traceparent: Option<bool>,
    pub filter: Option<String>,
    #[serde(default)]
    pub clear_filter: bool,
    /// Replaces every header; a secret one must carry its value again.
    pub headers: Option<Vec<CustomHeader>>,
    #[serde(default)]
    pub clear_headers: bool,
}

impl EndpointChanges {
    #[allow(clippy::needless_update)]
    pub fn into_request(self, id: String) -> api::UpdateSubscriptionRequest {
        api::UpdateSubscriptionRequest {
            id,
            url: self.url,
            event_types: self.event_types.map(|codes| api::EventTypeList { codes }),
            description: self.description,
            basic_auth: self.basic_auth.map(Into::into),
            clear_basic_auth: self.clear_basic_auth,
            enabled: None,
            ordered: self.ordered,
            max_in_flight: self.max_in_flight,
            rate_limit_per_sec: self.rate_limit_per_sec,
            timeout_ms: self.timeout_ms,
            clear_max_in_flight: self.clear_max_in_flight,
            clear_rate_limit_per_sec: self.clear_rate_limit_per_sec,
            clear_timeout_ms: self.clear_timeout_ms,
            omit_traceparent: self.omit_traceparent,
            filter: self.filter,
            clear_filter: self.clear_filter,
            headers: self.headers.map(|headers| api::CustomHeaderList {
                headers: headers.into_iter().map(Into::into).collect(),
            }),
            clear_headers: self.clear_headers,
            ..Default::default()
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// How long the previous secret keeps signing; absent: the deployment's default.
    pub overlap_seconds: Option<u64>,
    /// The new key's scheme (v1 or v1a); absent: the current one.
    pub signature_scheme: Option<String>,
}

impl Rotation {
    pub fn scheme(&self) -> Result<api::SignatureScheme, (String, String)> {
        scheme("signature_scheme", self.signature_scheme.as_deref())
    }
}

#[derive(Debug, Serialize)]
pub struct Rotated {
    /// The new v1 secret; empty for v1a.
    pub signing_secret: String,
    pub previous_expires_at: Option<String>,
    pub signature_scheme: &'static str,
    /// The new v1a public key; empty for v1.
    pub public_key: String,
}

impl Rotated {
    pub fn from_response(r: api::RotateSigningSecretResponse) -> Self {
        Rotated {
            signing_secret: r.signing_secret,
            previous_expires_at: time(r.previous_expires_at),
            signature_scheme: scheme_code(r.signature_scheme),
            public_key: r.public_key,
        }
    }
}

/// A filter to try on one event (TestFilter).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterTest {
    #[serde(default)]
    pub filter: String,
    #[serde(default)]
    pub event_type: String,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub event_types: Vec<String>,
    #[serde(default)]
    pub subscription_id: String,
}

impl From<FilterTest> for api::TestFilterRequest {
    fn from(t: FilterTest) -> Self {
        api::TestFilterRequest {
            filter: t.filter,
            event_type: t.event_type,
            body: t.body,
            event_types: t.event_types,
            subscription_id: t.subscription_id,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FilterResult {
    pub matched: bool,
    /// Why the filter gave no answer; empty when it gave one.
    pub error: String,
    pub event_type: String,
}

impl From<api::TestFilterResponse> for FilterResult {
    fn from(r: api::TestFilterResponse) -> Self {
        FilterResult { matched: r.matched, error: r.error, event_type: r.event_type }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestRequest {
    #[serde(default)]
    pub event_type: String,
}

#[derive(Debug, Serialize)]
pub struct TestResult {
    pub event_id: String,
    pub outcome: String,
    pub status_code: Option<u32>,
    pub latency_ms: u32,
    pub error: String,
    pub error_class: String,
}

impl From<api::TestSendResponse> for TestResult {
    fn from(r: api::TestSendResponse) -> Self {
        TestResult {
            event_id: r.event_id,
            outcome: r.outcome,
            status_code: r.status_code,
            latency_ms: r.latency_ms,
            error: r.error,
            error_class: r.error_class,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct EventType {
    pub code: String,
    pub description: String,
    pub plan_rule: String,
    pub required_features: Vec<String>,
    /// The example body, parsed: the page shows it formatted.
    pub example_body: serde_json::Value,
}

impl From<api::EventType> for EventType {
    fn from(t: api::EventType) -> Self {
        EventType {
            example_body: serde_json::from_str(&t.example_body).unwrap_or(serde_json::Value::Null),
            code: t.code,
            description: t.description,
            plan_rule: t.plan_rule,
            required_features: t.required_features,
        }
    }
}

/// A header as the endpoint received it; secrets replaced by a note.
#[derive(Debug, Serialize)]
pub struct Header {
    pub name: &'static str,
    pub value: String,
}

#[derive(Debug, Serialize)]
pub struct Attempt {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub attempt: u32,
    pub scheduled_at: Option<String>,
    pub sent_at: Option<String>,
    pub finished_at: Option<String>,
    /// delivered, retrying or failed.
    pub outcome: String,
    pub error_class: String,
    pub error: String,
    pub status_code: u32,
    pub latency_ms: u32,
    pub test_send: bool,
    /// The request's headers, without secrets (filled for one attempt in full).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<Header>,
    pub response_headers: BTreeMap<String, String>,
    pub response_body: String,
}

impl From<api::Attempt> for Attempt {
    fn from(a: api::Attempt) -> Self {
        Attempt {
            id: a.id,
            event_id: a.event_id,
            event_type: a.event_type,
            attempt: a.attempt,
            scheduled_at: time(a.scheduled_at),
            sent_at: time(a.sent_at),
            finished_at: time(a.finished_at),
            outcome: a.outcome,
            error_class: a.error_class,
            error: a.error,
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            test_send: a.test_send,
            request_headers: Vec::new(),
            response_headers: a.response_headers.into_iter().collect(),
            response_body: a.response_body,
        }
    }
}

/// The headers the sender puts on every request (EVENTS.md §4), rebuilt from what the attempt
/// log keeps: the log stores no request headers, and the ones that carry secrets (the signature,
/// basic auth) are shown only as present.
pub fn request_headers(a: &Attempt, basic_auth: bool) -> Vec<Header> {
    let mut headers = vec![
        Header { name: "content-type", value: "application/json".into() },
        Header { name: "webhook-id", value: a.event_id.clone() },
        Header { name: "webhook-timestamp", value: "(the send time, Unix seconds)".into() },
        Header { name: "webhook-signature", value: "v1,… (hidden)".into() },
        Header { name: "synap-event-type", value: a.event_type.clone() },
        Header { name: "synap-delivery-attempt", value: a.attempt.to_string() },
    ];
    if basic_auth {
        headers.push(Header { name: "authorization", value: "Basic … (hidden)".into() });
    }
    headers
}

#[derive(Debug, Serialize)]
pub struct AttemptList {
    pub attempts: Vec<Attempt>,
    pub next_page_token: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resend {
    pub event_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recover {
    /// RFC 3339.
    pub since: String,
}

#[derive(Debug, Serialize)]
pub struct Recovered {
    pub resent: u32,
    pub expired: u32,
}

#[derive(Debug, Serialize)]
pub struct HealthBucket {
    pub start: Option<String>,
    pub delivered: u32,
    pub failed: u32,
    pub mean_latency_ms: u32,
    pub p95_latency_ms: u32,
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub since: Option<String>,
    pub buckets: Vec<HealthBucket>,
    pub success_rate: Option<f64>,
    pub last_error_at: Option<String>,
    pub last_error_class: String,
    pub last_error: String,
    pub circuit_open: bool,
    pub circuit_opened_at: Option<String>,
    pub circuit_reason: String,
    pub state: &'static str,
    pub disabled_reason: String,
    pub inactive_since: Option<String>,
}

impl From<api::SubscriptionHealth> for Health {
    fn from(h: api::SubscriptionHealth) -> Self {
        Health {
            since: time(h.since),
            buckets: h
                .buckets
                .into_iter()
                .map(|b| HealthBucket {
                    start: time(b.start),
                    delivered: b.delivered,
                    failed: b.failed,
                    mean_latency_ms: b.mean_latency_ms,
                    p95_latency_ms: b.p95_latency_ms,
                })
                .collect(),
            success_rate: h.success_rate,
            last_error_at: time(h.last_error_at),
            last_error_class: h.last_error_class,
            last_error: h.last_error,
            circuit_open: h.circuit_open,
            circuit_opened_at: time(h.circuit_opened_at),
            circuit_reason: h.circuit_reason,
            state: state_code(h.state),
            disabled_reason: h.disabled_reason,
            inactive_since: time(h.inactive_since),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SessionInfo {
    pub portal_id: String,
    pub read_only: bool,
    /// Send it back in `X-CSRF-Token` on every change.
    pub csrf_token: String,
    pub expires_at: String,
    pub title: String,
    pub has_logo: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_endpoint_maps_every_field_and_names_no_portal() {
        let form: NewEndpoint = serde_json::from_value(serde_json::json!({
            "url": "https://a.example", "event_types": ["user.updated"], "description": "d",
            "basic_auth": {"username": "u", "password": "p"}, "enabled": false, "ordered": true,
            "max_in_flight": 2, "rate_limit_per_sec": 3, "timeout_ms": 4, "omit_traceparent": true,
            "request_id": "r",
        }))
        .unwrap();
        let r = form.into_request("mine".into()).unwrap();
        assert_eq!(
            (r.portal_id.as_str(), r.url.as_str(), r.description.as_str()),
            ("mine", "https://a.example", "d")
        );
        assert_eq!(r.basic_auth.map(|b| (b.username, b.password)), Some(("u".into(), "p".into())));
        assert_eq!((r.enabled, r.ordered, r.omit_traceparent), (Some(false), true, true));
        assert_eq!((r.max_in_flight, r.rate_limit_per_sec, r.timeout_ms), (Some(2), Some(3), Some(4)));
        assert_eq!(r.request_id, "r");
        let other_portal =
            serde_json::from_value::<NewEndpoint>(serde_json::json!({"url": "x", "portal_id": "theirs"}));
        assert!(other_portal.unwrap_err().to_string().contains("portal_id"));
    }

    #[test]
    fn filters_schemes_and_headers_map_both_ways_and_a_secret_value_never_leaves() {
        let form: NewEndpoint = serde_json::from_value(serde_json::json!({
            "url": "https://a.example", "event_types": ["user.*"], "filter": "type == \"user.updated\"",
            "signature_scheme": "v1a", "headers": [{"name": "X-K", "value": "s", "secret": true}],
        }))
        .unwrap();
        let r = form.into_request("mine".into()).unwrap();
        assert_eq!(
            (r.filter.as_str(), r.signature_scheme),
            ("type == \"user.updated\"", api::SignatureScheme::V1a as i32)
        );
        assert_eq!(r.headers, [api::CustomHeader { name: "X-K".into(), value: "s".into(), secret: true }]);
        let bad: NewEndpoint =
            serde_json::from_value(serde_json::json!({"url": "x", "signature_scheme": "v2"})).unwrap();
        assert_eq!(bad.into_request("mine".into()).unwrap_err().0, "signature_scheme");

        let changes: EndpointChanges =
            serde_json::from_value(serde_json::json!({"clear_filter": true, "headers": []})).unwrap();
        let r = changes.into_request("sub_1".into());
        assert!(r.clear_filter && r.filter.is_none() && !r.clear_headers);
        assert_eq!(r.headers, Some(api::CustomHeaderList { headers: vec![] }));

        let shown = Endpoint::from(api::Subscription {
            signature_scheme: api::SignatureScheme::V1a as i32,
            headers: vec![api::CustomHeader { name: "X-K".into(), value: "leak".into(), secret: true }],
            ..Default::default()
        });
        assert_eq!(shown.signature_scheme, "v1a");
        assert!(!serde_json::to_string(&shown).unwrap().contains("leak"));
    }

    #[test]
    fn changes_leave_out_what_is_absent() {
        let changes: EndpointChanges = serde_json::from_value(
            serde_json::json!({"description": "new", "clear_rate_limit_per_sec": true}),
        )
        .unwrap();
        let r = changes.into_request("sub_1".into());
        assert_eq!((r.id.as_str(), r.description.as_deref()), ("sub_1", Some("new")));
        assert!(r.url.is_none() && r.event_types.is_none() && r.enabled.is_none() && r.basic_auth.is_none());
        assert!(r.clear_rate_limit_per_sec && !r.clear_basic_auth);
    }
}
