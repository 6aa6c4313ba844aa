//! One HTTP attempt: the request of EVENTS.md §4 and what came of it.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use synap_outbound::{Policy, Refused, Resolver};
use synap_proto::pipeline::v1::Delivery;

use crate::sign;
use crate::targets::Target;

/// Sent as `user-agent` on every request.
pub const USER_AGENT: &str = concat!("Synap-Webhooks/", env!("CARGO_PKG_VERSION"));

/// The first this many bytes of a response body are kept for the attempt log.
pub const RESPONSE_BODY_LIMIT: usize = 16 * 1024;
/// At most this many response headers are kept for the attempt log, …
pub const RESPONSE_HEADERS_MAX_COUNT: usize = 32;
/// … and at most this many bytes of them (names and values): an endpoint that answers with
/// hundreds of cookies costs the log no more than one that answers with a few.
pub const RESPONSE_HEADERS_LIMIT: usize = 4 * 1024;

/// The HTTP client every attempt shares: no redirects (a 3xx is a failure, EVENTS.md §4), a
/// bounded connect time, and a resolver that connects only to addresses the policy allows.
/// No proxy from the environment either: a proxy would resolve and connect on its own, past the
/// policy. The request's own timeout is not reqwest's: [`attempt`] bounds the whole exchange, body
/// included, once (subscriptions may override it), rather than a second timer per request.
pub fn client(connect_timeout: Duration, policy: Policy) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(connect_timeout)
        .user_agent(USER_AGENT)
        .pool_idle_timeout(Duration::from_secs(60))
        .dns_resolver(std::sync::Arc::new(Resolver::new(policy)))
        .build()
}

/// Why an attempt failed: the attempt log's vocabulary, shared with the database and the API.
pub use synap_db::attempts::ErrorClass;

/// What one attempt came to.
#[derive(Clone, Debug, Default)]
pub struct Attempted {
    /// `None` when delivered.
    pub error_class: Option<ErrorClass>,
    pub error: Option<String>,
    pub status: Option<u16>,
    /// The response's `Retry-After`, when it had one.
    pub retry_after: Option<Duration>,
    /// JSON object of the response headers.
    pub response_headers: Option<String>,
    pub response_body: Option<String>,
    pub sent_at: chrono::DateTime<chrono::Utc>,
    pub latency: Duration,
}

impl Attempted {
    pub fn delivered(&self) -> bool {
        self.error_class.is_none()
    }

    /// The endpoint said it is gone for good.
    pub fn gone(&self) -> bool {
        self.status == Some(410)
    }

    /// A stable code for logs and dead-letter headers: `delivered`, `http_500`, `timeout`, …
    pub fn code(&self) -> String {
        match (self.error_class, self.status) {
            (None, _) => "delivered".into(),
            (Some(ErrorClass::HttpStatus), Some(status)) => format!("http_{status}"),
            (Some(class), _) => class.code().into(),
        }
    }

    /// An attempt that was not made, for the given reason.
    pub fn not_made(class: ErrorClass, error: String) -> Self {
        Attempted {
            error_class: Some(class),
            error: Some(error),
            sent_at: chrono::Utc::now(),
            ..Default::default()
        }
    }
}

/// The headers every request to `target` carries, built once per cache load: the
/// subscription's own headers first, so that the system's (these and [`headers`]'s) replace any
/// that slipped past the control API's check (it refuses every name the system sets).
///
/// Kept as a list, in the order a request carries them: a `HeaderMap` kept in every cached
/// target took several times the memory (its index and spare room: 650 bytes for one header),
/// and each attempt copied it and grew it again anyway.
pub fn fixed_headers(target: &synap_db::DeliveryTarget) -> Box<[(HeaderName, HeaderValue)]> {
    let mut h = HeaderMap::with_capacity(target.headers.len() + 2);
    for custom in &target.headers {
        let (Ok(name), Ok(mut value)) =
            (HeaderName::from_bytes(custom.name.as_bytes()), HeaderValue::from_str(&custom.value))
        else {
            continue;
        };
        value.set_sensitive(custom.secret);
        h.append(name, value);
    }
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(auth) = &target.basic_auth {
        let token = STANDARD.encode(format!("{}:{}", auth.username, auth.password));
        if let Ok(mut v) = HeaderValue::from_str(&format!("Basic {token}")) {
            v.set_sensitive(true);
            h.insert(AUTHORIZATION, v);
        }
    }
    h.iter().map(|(name, value)| (name.clone(), value.clone())).collect()
}

/// The headers an attempt adds to the fixed ones: the five of [`headers`] that name the event and
/// the attempt, the signature, and `traceparent` with `tracestate` ([`synap_telemetry::inject_http`]).
const PER_ATTEMPT_HEADERS: usize = 8;

const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const EVENT_TYPE: HeaderName = HeaderName::from_static("synap-event-type");
const PORTAL_ID: HeaderName = HeaderName::from_static("synap-portal-id");
const DELIVERY_ATTEMPT: HeaderName = HeaderName::from_static("synap-delivery-attempt");

/// The headers of EVENTS.md §4 for attempt number `attempt`.
pub fn headers(delivery: &Delivery, target: &Target, attempt: u32, unix_seconds: i64) -> HeaderMap {
    let mut h = HeaderMap::with_capacity(target.fixed_headers.len() + PER_ATTEMPT_HEADERS);
    for (name, value) in target.fixed_headers.iter() {
        h.append(name.clone(), value.clone());
    }
    let mut put = |name: HeaderName, value: &str| {
        // Ids come from validated records; a value that is not a legal header is left out rather
        // than sent mangled.
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(name, v);
        }
    };
    put(WEBHOOK_ID, &delivery.event_id);
    put(WEBHOOK_TIMESTAMP, &unix_seconds.to_string());
    put(EVENT_TYPE, &delivery.event_type);
    put(PORTAL_ID, &delivery.portal_id);
    put(DELIVERY_ATTEMPT, &attempt.to_string());
    if !target.signers.is_empty() {
        let signature = sign::signature(&target.signers, &delivery.event_id, unix_seconds, &delivery.data);
        if let Ok(mut v) = HeaderValue::from_str(&signature) {
            v.set_sensitive(true);
            h.insert(WEBHOOK_SIGNATURE, v);
        }
    }
    h
}

/// POSTs the delivery's body, unchanged, to the target.
pub async fn attempt(
    client: &reqwest::Client,
    policy: &Policy,
    delivery: &Delivery,
    target: &Target,
    attempt: u32,
    timeout: Duration,
) -> Attempted {
    let sent_at = chrono::Utc::now();
    let started = Instant::now();
    // An IP literal never reaches the resolver, so it is checked here.
    let url = match &target.parsed {
        Ok(url) => url,
        Err(e) => return Attempted { sent_at, ..Attempted::not_made(ErrorClass::Refused, e.clone()) },
    };
    if let Err(refused) = synap_outbound::check_url(url, policy) {
        return Attempted { sent_at, ..Attempted::not_made(ErrorClass::Refused, refused.to_string()) };
    }
    let mut headers = headers(delivery, target, attempt, sent_at.timestamp());
    if !target.options.omit_traceparent {
        synap_telemetry::inject_http(&mut headers);
    }
    // Built whole rather than through a `RequestBuilder`, which would copy the headers one by
    // one into a map of its own.
    let mut request = reqwest::Request::new(reqwest::Method::POST, url.clone());
    *request.headers_mut() = headers;
    *request.body_mut() = Some(delivery.data.clone().into());
    let mut attempted = Attempted { sent_at, ..Default::default() };
    let secrets: Vec<&str> = target.headers.iter().filter(|h| h.secret).map(|h| h.value.as_str()).collect();
    match tokio::time::timeout(timeout, exchange(client, request, &secrets, &mut attempted)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let (class, text) = classify(&e);
            attempted.error_class = Some(class);
            attempted.error = Some(text);
        }
        Err(_) => {
            attempted.error_class = Some(ErrorClass::Timeout);
            attempted.error = Some(format!("no complete response within {} ms", timeout.as_millis()));
        }
    }
    attempted.latency = started.elapsed();
    attempted
}

/// Sends the request and reads the status, headers and the start of the body into `attempted`.
/// An endpoint that echoes the request (as debugging endpoints do) would put the `secrets` (the
/// subscription's secret header values) into the attempt log: they are replaced there by
/// [`REDACTED`].
async fn exchange(
    client: &reqwest::Client,
    request: reqwest::Request,
    secrets: &[&str],
    attempted: &mut Attempted,
) -> Result<(), reqwest::Error> {
    let mut response = client.execute(request).await?;
    let status = response.status();
    attempted.status = Some(status.as_u16());
    if !status.is_success() {
        attempted.error_class = Some(ErrorClass::HttpStatus);
        attempted.error = Some(format!("HTTP {status}"));
        if status.as_u16() == 429 || status.as_u16() == 503 {
            attempted.retry_after =
                response.headers().get(RETRY_AFTER).and_then(|v| retry_after(v.to_str().ok()?));
        }
    }
    attempted.response_headers = Some(kept_headers(response.headers(), secrets));
    // Read past the limit by the longest secret, so that one cut by the limit is still found.
    let read_limit = RESPONSE_BODY_LIMIT + synap_db::custom_headers::MAX_VALUE_LEN;
    let mut body = Vec::new();
    while body.len() < read_limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) => break,
            // The status decided the outcome already; a body cut short only shortens the log.
            Err(_) => break,
        }
    }
    body.truncate(read_limit);
    let mut text = redact(&String::from_utf8_lossy(&body), secrets);
    if text.len() > RESPONSE_BODY_LIMIT {
        let mut end = RESPONSE_BODY_LIMIT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    attempted.response_body = Some(text);
    Ok(())
}

/// What replaces a secret header value found in a response.
pub const REDACTED: &str = "[redacted]";

/// `text` with every occurrence of each of `secrets` replaced by [`REDACTED`].
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text.to_owned(), |text, secret| text.replace(secret, REDACTED))
}

/// The response headers the attempt log keeps, as a JSON object: in the order received, those
/// that are text, until `RESPONSE_HEADERS_MAX_COUNT` or `RESPONSE_HEADERS_LIMIT` is reached; a
/// header too large for what is left is skipped, smaller ones after it are still kept. Each of
/// `secrets` in a value is replaced by [`REDACTED`].
pub fn kept_headers(headers: &HeaderMap, secrets: &[&str]) -> String {
    let mut kept = serde_json::Map::new();
    let mut bytes = 0;
    for (name, value) in headers {
        let Ok(value) = value.to_str() else { continue };
        let size = name.as_str().len() + value.len();
        if kept.len() == RESPONSE_HEADERS_MAX_COUNT {
            break;
        }
        if bytes + size > RESPONSE_HEADERS_LIMIT {
            continue;
        }
        bytes += size;
        kept.insert(name.as_str().to_owned(), redact(value, secrets).into());
    }
    serde_json::Value::Object(kept).to_string()
}

/// `Retry-After`: delay seconds or an HTTP date.
pub fn retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// Sorts a transport error into its class, with the causes as text. The URL is left out: it may
/// carry a customer's path tokens. A refusal by the address policy says what class of address a
/// name resolved to, never the address (the attempt log is readable with a portal key).
fn classify(e: &reqwest::Error) -> (ErrorClass, String) {
    let mut text = e.to_string();
    let mut class = None;
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            class = Some(match refused {
                Refused::Unresolvable { .. } => ErrorClass::Dns,
                _ => ErrorClass::Refused,
            });
        }
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<url>");
    }
    let lower = text.to_ascii_lowercase();
    let class = class.unwrap_or(if e.is_timeout() {
        ErrorClass::Timeout
    } else if lower.contains("dns error") || lower.contains("failed to lookup") {
        ErrorClass::Dns
    } else if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        ErrorClass::Tls
    } else if e.is_connect() {
        ErrorClass::Connect
    } else {
        ErrorClass::Other
    });
    (class, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_name_is_logged_without_its_address() {
        // `localhost` is refused by name unless listed; listed, it is looked up and its loopback
        // addresses are refused, the attempt's text naming the class only.
        let config =
            synap_outbound::OutboundConfig { allow_hosts: vec!["localhost".into()], ..Default::default() };
        let http = client(Duration::from_secs(1), Policy::from_config(&config).unwrap()).unwrap();
        let error = http.post("http://localhost:9/hook?token=t0k").send().await.unwrap_err();
        let (class, text) = classify(&error);
        assert_eq!(class, ErrorClass::Refused, "{text}");
        assert!(text.contains("host localhost resolves to a loopback address"), "{text}");
        for leak in ["127.0.0.1", "::1", "t0k"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }

        let http = client(Duration::from_secs(1), Policy::default()).unwrap();
        let error = http.post("http://LocalHost./hook").send().await.unwrap_err();
        let (class, text) = classify(&error);
        assert_eq!(class, ErrorClass::Refused, "{text}");
        assert!(text.contains("is a loopback name"), "{text}");
    }

    /// An endpoint that answers 200 at once and then sends its body a few bytes at a time, for
    /// ever: the attempt's one timeout covers the body too, so it ends as a timeout within its
    /// time, never held open by a trickle.
    #[tokio::test]
    async fn a_body_that_never_ends_is_a_timeout_within_the_attempts_time() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 64 * 1024];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            while socket.write_all(b"x").await.is_ok() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let config =
            synap_outbound::OutboundConfig { allow_cidrs: vec!["127.0.0.0/8".into()], ..Default::default() };
        let policy = Policy::from_config(&config).unwrap();
        let http = client(Duration::from_secs(1), policy.clone()).unwrap();
        let mut target = target_with(vec![]);
        target.parsed = url::Url::parse(&url).map_err(|e| e.to_string());
        let delivery = Delivery { event_id: "evt_1".into(), data: "{}".into(), ..Default::default() };

        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let attempted = attempt(&http, &policy, &delivery, &target, 1, timeout).await;
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(attempted.error_class, Some(ErrorClass::Timeout), "{attempted:?}");
        assert_eq!(attempted.status, Some(200), "the status that did arrive is kept");
        assert_eq!(attempted.error.as_deref(), Some("no complete response within 300 ms"));
    }

    #[test]
    fn stored_headers_are_capped_in_count_and_bytes() {
        let mut many = HeaderMap::new();
        for i in 0..100 {
            many.insert(
                reqwest::header::HeaderName::from_bytes(format!("x-h{i:03}").as_bytes()).unwrap(),
                HeaderValue::from_static("v"),
            );
        }
        let kept: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&kept_headers(&many, &[])).unwrap();
        assert_eq!(kept.len(), RESPONSE_HEADERS_MAX_COUNT);

        let mut large = HeaderMap::new();
        large.insert("x-small", HeaderValue::from_static("a"));
        large.insert("x-huge", HeaderValue::from_str(&"b".repeat(RESPONSE_HEADERS_LIMIT)).unwrap());
        for i in 0..3 {
            let name = reqwest::header::HeaderName::from_bytes(format!("x-big{i}").as_bytes()).unwrap();
            large.insert(name, HeaderValue::from_str(&"c".repeat(RESPONSE_HEADERS_LIMIT / 3)).unwrap());
        }
        large.insert("x-after", HeaderValue::from_static("d"));
        let stored = kept_headers(&large, &[]);
        let kept: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&stored).unwrap();
        assert!(stored.len() <= RESPONSE_HEADERS_LIMIT + 64 * kept.len(), "{}", stored.len());
        assert!(kept.contains_key("x-small") && kept.contains_key("x-after"), "small ones are kept");
        assert!(!kept.contains_key("x-huge"), "one header over the limit is skipped");
        assert_eq!(kept.keys().filter(|k| k.starts_with("x-big")).count(), 2, "until the bytes run out");
    }

    #[test]
    fn retry_after_takes_seconds_and_dates() {
        assert_eq!(retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO), "a past date: now");
        let future = (chrono::Utc::now() + chrono::Duration::seconds(120)).to_rfc2822();
        let wait = retry_after(&future).unwrap();
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120), "{wait:?}");
        assert_eq!(retry_after("soon"), None);
    }

    fn target_with(headers: Vec<synap_db::custom_headers::CustomHeader>) -> Target {
        let target = synap_db::DeliveryTarget {
            subscription_id: "sub_1".into(),
            portal_id: "p".into(),
            url: "https://93.184.215.14/hook".into(),
            enabled: true,
            basic_auth: None,
            signing_keys: vec![synap_db::secrets::SigningKey::V1("whsec_c2Vjb25k".into())],
            headers,
        };
        Target::new(target, Default::default())
    }

    #[test]
    fn custom_headers_are_sent_and_never_replace_the_systems() {
        use synap_db::custom_headers::CustomHeader;
        let header =
            |name: &str, value: &str, secret| CustomHeader { name: name.into(), value: value.into(), secret };
        // Names the control API refuses, as a damaged row could still hold them.
        let target = target_with(vec![
            header("X-Tenant", "acme", false),
            header("x-api-key", "k3y", true),
            header("webhook-id", "forged", false),
            header("Content-Type", "text/plain", false),
            header("bad name", "dropped", false),
            header("X-Route", "first", false),
            header("X-Route", "second", false),
        ]);
        assert!(target.signing_keys.is_empty(), "the opened keys live on only as signers");
        let delivery = Delivery {
            event_id: "evt_1".into(),
            event_type: "user.updated".into(),
            portal_id: "p".into(),
            ..Default::default()
        };
        let h = headers(&delivery, &target, 1, 1_700_000_000);
        assert_eq!(h.get("x-tenant").unwrap(), "acme");
        assert_eq!(h.get("x-api-key").unwrap(), "k3y");
        assert!(h.get("x-api-key").unwrap().is_sensitive(), "kept out of debug output");
        assert_eq!(h.get_all("webhook-id").iter().collect::<Vec<_>>(), ["evt_1"]);
        assert_eq!(h.get_all(CONTENT_TYPE).iter().collect::<Vec<_>>(), ["application/json"]);
        assert!(h.keys().all(|name| name.as_str() != "bad name"));
        assert_eq!(h.get_all("x-route").iter().collect::<Vec<_>>(), ["first", "second"], "in their order");
        assert!(h.get("webhook-signature").unwrap().to_str().unwrap().starts_with("v1,"));
        // The second attempt starts from the same fixed headers, not from the first's.
        let again = headers(&delivery, &target, 2, 1_700_000_001);
        assert_eq!(again.get_all("synap-delivery-attempt").iter().collect::<Vec<_>>(), ["2"]);
        assert_eq!(again.len(), h.len());
    }

    #[test]
    fn echoed_secret_values_are_redacted() {
        let secrets = ["s3cr3t \"tok\"\tx", "k3y"];
        let body = "you sent x-api-key: k3y and s3cr3t \"tok\"\tx, k3yk3y";
        assert_eq!(
            redact(body, &secrets),
            "you sent x-api-key: [redacted] and [redacted], [redacted][redacted]"
        );
        let mut echoed = HeaderMap::new();
        echoed.insert("x-echo", HeaderValue::from_static("s3cr3t \"tok\"\tx"));
        echoed.insert("x-other", HeaderValue::from_static("k3y-ring"));
        let json = kept_headers(&echoed, &secrets);
        let parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["x-echo"], "[redacted]");
        assert_eq!(parsed["x-other"], "[redacted]-ring");
        assert_eq!(redact("nothing here", &[]), "nothing here");
    }
}
