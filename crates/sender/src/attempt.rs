//! One HTTP attempt: the request of EVENTS.md §4 and what came of it.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use synap_db::DeliveryTarget;
use synap_proto::pipeline::v1::Delivery;

/// Sent as `user-agent` on every request.
pub const USER_AGENT: &str = concat!("Synap-Webhooks/", env!("CARGO_PKG_VERSION"));

/// The HTTP client every attempt shares: no redirects (a 3xx is a failure, EVENTS.md §4),
/// bounded connect and request times.
pub fn client(request_timeout: Duration, connect_timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(request_timeout)
        .connect_timeout(connect_timeout)
        .user_agent(USER_AGENT)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx within the timeout.
    Delivered {
        status: u16,
    },
    /// Any other status code.
    Status(u16),
    Timeout,
    Connect(String),
    /// Anything else (a malformed URL stored before validation existed, a TLS failure, …).
    Other(String),
}

impl Outcome {
    /// The HTTP status, when a response came back.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Delivered { status } | Outcome::Status(status) => Some(*status),
            _ => None,
        }
    }

    /// Stable code for headers, logs and metrics.
    pub fn code(&self) -> String {
        match self {
            Outcome::Delivered { .. } => "delivered".into(),
            Outcome::Status(code) => format!("http_{code}"),
            Outcome::Timeout => "timeout".into(),
            Outcome::Connect(_) => "connect".into(),
            Outcome::Other(_) => "error".into(),
        }
    }
}

pub struct Attempted {
    pub outcome: Outcome,
    pub latency: Duration,
}

/// The headers of EVENTS.md §4 for attempt number `attempt`.
pub fn headers(delivery: &Delivery, target: &DeliveryTarget, attempt: u32, unix_seconds: i64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let mut put = |name: &'static str, value: &str| {
        // Ids come from validated records; a value that is not a legal header is left out rather
        // than sent mangled.
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put("webhook-id", &delivery.event_id);
    put("webhook-timestamp", &unix_seconds.to_string());
    put("synap-event-type", &delivery.event_type);
    put("synap-portal-id", &delivery.portal_id);
    put("synap-delivery-attempt", &attempt.to_string());
    if let Some(auth) = &target.basic_auth {
        let token = STANDARD.encode(format!("{}:{}", auth.username, auth.password));
        if let Ok(mut v) = HeaderValue::from_str(&format!("Basic {token}")) {
            v.set_sensitive(true);
            h.insert(AUTHORIZATION, v);
        }
    }
    h
}

/// POSTs the delivery's body, unchanged, to the target.
pub async fn attempt(
    client: &reqwest::Client,
    delivery: &Delivery,
    target: &DeliveryTarget,
    attempt: u32,
) -> Attempted {
    let started = Instant::now();
    let mut headers = headers(delivery, target, attempt, chrono::Utc::now().timestamp());
    synap_telemetry::inject_http(&mut headers);
    let result = client.post(&target.url).headers(headers).body(delivery.data.clone()).send().await;
    let outcome = match result {
        Ok(response) if response.status().is_success() => {
            Outcome::Delivered { status: response.status().as_u16() }
        }
        Ok(response) => Outcome::Status(response.status().as_u16()),
        Err(e) if e.is_timeout() => Outcome::Timeout,
        Err(e) if e.is_connect() => Outcome::Connect(error_chain(e.without_url())),
        Err(e) => Outcome::Other(error_chain(e.without_url())),
    };
    Attempted { outcome, latency: started.elapsed() }
}

/// The error with its causes. Called without the URL, which may carry a customer's path tokens.
fn error_chain(e: reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
