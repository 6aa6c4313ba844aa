//! Request validation: each rule names the field at fault.

use std::time::Duration;

use synap_contract::{EventType, TypePattern, ids};
use synap_db::BasicAuth;
use synap_db::custom_headers::{self, CustomHeader};
use synap_db::secrets::Scheme;
use synap_outbound::{Policy, Refused};
use synap_proto::control::v1 as api;
use tonic::Status;

use crate::errors::invalid;

pub const MAX_URL_LEN: usize = 2048;
pub const MAX_DESCRIPTION_LEN: usize = 1024;
pub const MAX_PASSWORD_LEN: usize = 1024;
pub const MAX_USERNAME_LEN: usize = 128;
/// How long creation waits for the URL's host name to resolve before leaving the check to the
/// sender.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);
/// The limits of the delivery options live with the options themselves.
pub use synap_db::delivery_state::{MAX_IN_FLIGHT, MAX_RATE_LIMIT, MAX_TIMEOUT_MS};
/// The longest a rotated-out secret may stay valid.
pub const MAX_OVERLAP: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// An id (portal, subscription, API key, event, request id; also feature names): the one rule
/// of [`synap_contract::ids`], which ingest applies to what producers send.
pub fn id(field: &str, value: &str) -> Result<(), Status> {
    ids::check(value).map_err(|e| invalid(field, e.to_string()))
}

/// An id that may be left empty (a filter that is not set): `None` when empty.
pub fn optional_id<'a>(field: &str, value: &'a str) -> Result<Option<&'a str>, Status> {
    if value.is_empty() {
        return Ok(None);
    }
    id(field, value)?;
    Ok(Some(value))
}

/// Free text stored in PostgreSQL `text`, which refuses NUL; everything else is kept as sent.
fn storable_text(field: &str, value: &str) -> Result<(), Status> {
    match value.find('\0') {
        Some(at) => Err(invalid(field, format!("must not contain NUL (found at byte {at})"))),
        None => Ok(()),
    }
}

/// The one check of an endpoint URL, used by create and update: an absolute HTTPS URL (HTTP
/// only where the deployment allows it), with a host, no embedded credentials, and an address
/// the outbound policy allows (a host name is resolved now, so a customer learns at once that
/// e.g. an internal name is refused; the sender checks again at every send).
pub async fn url(field: &str, value: &str, allow_http: bool, policy: &Policy) -> Result<url::Url, Status> {
    if value.len() > MAX_URL_LEN {
        return Err(invalid(field, format!("must be at most {MAX_URL_LEN} characters")));
    }
    let parsed =
        url::Url::parse(value).map_err(|e| invalid(field, format!("must be an absolute URL ({e})")))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(invalid(field, "must use https")),
        other => return Err(invalid(field, format!("scheme {other:?} is not supported; use https"))),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(field, "must name a host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(field, "must not embed credentials; use basic_auth"));
    }
    // A name that does not resolve (yet, or not from here) is accepted: the sender checks every
    // address it connects to, so only a name known to point somewhere refused is refused now.
    // The refusal names the class of address a name resolves to, never the address: that would
    // let a portal key map the deployment's internal DNS.
    match tokio::time::timeout(RESOLVE_TIMEOUT, synap_outbound::check_url_resolved(&parsed, policy)).await {
        Ok(Err(
            refused @ (Refused::Address { .. }
            | Refused::Resolves { .. }
            | Refused::Name { .. }
            | Refused::Scheme
            | Refused::NoHost),
        )) => Err(invalid(field, refused.to_string())),
        Ok(Err(other)) => {
            tracing::debug!(host = parsed.host_str(), "URL host not checked at creation: {other}");
            Ok(parsed)
        }
        Err(_) => {
            tracing::debug!(
                host = parsed.host_str(),
                "URL host not checked at creation: resolving timed out"
            );
            Ok(parsed)
        }
        Ok(Ok(())) => Ok(parsed),
    }
}

/// An optional delivery option: absent, or `1..=max`.
pub fn option_in_range(field: &str, value: Option<u32>, max: u32, unit: &str) -> Result<Option<u32>, Status> {
    match value {
        Some(v) if v == 0 || v > max => Err(invalid(field, format!("must be 1 to {max}{unit}"))),
        v => Ok(v),
    }
}

/// A non-empty list of event types and wildcards (`user.*`, `*`), each known and well-formed,
/// de-duplicated in the given order.
pub fn event_types(field: &str, values: &[String]) -> Result<Vec<TypePattern>, Status> {
    if values.is_empty() {
        return Err(invalid(field, "must list at least one event type"));
    }
    let mut out = Vec::with_capacity(values.len());
    for (i, text) in values.iter().enumerate() {
        let pattern =
            TypePattern::parse(text).map_err(|e| invalid(&format!("{field}[{i}]"), e.to_string()))?;
        if !out.contains(&pattern) {
            out.push(pattern);
        }
    }
    Ok(out)
}

/// The current types a list of patterns covers, in table order: what a filter is checked
/// against.
pub fn covered(patterns: &[TypePattern]) -> Vec<EventType> {
    EventType::ALL.into_iter().filter(|ty| patterns.iter().any(|p| p.covers(*ty))).collect()
}

/// A filter, checked for a subscription to `types`: INVALID_ARGUMENT on `field` with the
/// position and the reason. Off the async workers: parsing starts a thread of its own and the
/// check evaluates the filter on up to 13 example bodies.
pub async fn filter(field: &str, source: &str, types: &[EventType]) -> Result<synap_filter::Filter, Status> {
    let (source, types) = (source.to_owned(), types.to_vec());
    tokio::task::spawn_blocking(move || synap_filter::Filter::check(&source, &types))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "filter check did not finish");
            Status::internal("internal error")
        })?
        .map_err(|e| invalid(field, e.to_string()))
}

pub fn description(field: &str, value: &str) -> Result<(), Status> {
    if value.len() > MAX_DESCRIPTION_LEN {
        return Err(invalid(field, format!("must be at most {MAX_DESCRIPTION_LEN} bytes")));
    }
    storable_text(field, value)
}

/// Basic-auth credentials: a user name without `:` (it ends the user name in the header) or NUL
/// (its column refuses it) and a non-empty password (sealed, so any bytes).
pub fn basic_auth(field: &str, auth: api::BasicAuth) -> Result<BasicAuth, Status> {
    if auth.username.is_empty() || auth.username.contains(':') {
        return Err(invalid(&format!("{field}.username"), "must be non-empty and contain no ':'"));
    }
    if auth.username.len() > MAX_USERNAME_LEN {
        return Err(invalid(
            &format!("{field}.username"),
            format!("must be at most {MAX_USERNAME_LEN} bytes"),
        ));
    }
    storable_text(&format!("{field}.username"), &auth.username)?;
    if auth.password.is_empty() {
        return Err(invalid(&format!("{field}.password"), "must not be empty"));
    }
    if auth.password.len() > MAX_PASSWORD_LEN {
        return Err(invalid(
            &format!("{field}.password"),
            format!("must be at most {MAX_PASSWORD_LEN} bytes"),
        ));
    }
    Ok(BasicAuth { username: auth.username, password: auth.password })
}

/// An optional client request id: empty means none.
pub fn request_id(field: &str, value: &str) -> Result<Option<String>, Status> {
    Ok(optional_id(field, value)?.map(str::to_owned))
}

/// A rotation overlap: absent means `default`; otherwise 0 to [`MAX_OVERLAP`].
pub fn overlap(
    field: &str,
    value: Option<prost_types::Duration>,
    default: Duration,
) -> Result<Duration, Status> {
    let Some(d) = value else { return Ok(default) };
    if d.seconds < 0 || d.nanos < 0 || d.nanos >= 1_000_000_000 {
        return Err(invalid(field, "must not be negative"));
    }
    let overlap = Duration::new(d.seconds as u64, d.nanos as u32);
    if overlap > MAX_OVERLAP {
        return Err(invalid(field, format!("must be at most {} days", MAX_OVERLAP.as_secs() / 86_400)));
    }
    Ok(overlap)
}

/// A signature scheme: `None` when unspecified (the caller's default applies).
pub fn signature_scheme(field: &str, value: i32) -> Result<Option<Scheme>, Status> {
    match api::SignatureScheme::try_from(value) {
        Ok(api::SignatureScheme::Unspecified) => Ok(None),
        Ok(api::SignatureScheme::V1) => Ok(Some(Scheme::V1)),
        Ok(api::SignatureScheme::V1a) => Ok(Some(Scheme::V1a)),
        Err(_) => Err(invalid(field, format!("unknown signature scheme {value}; use V1 or V1A"))),
    }
}

/// Extra request headers, by the one rule of [`synap_db::custom_headers::check`]; a refusal
/// names the header's field path, e.g. `headers[2].name`, and never quotes a value.
pub fn headers(field: &str, values: Vec<api::CustomHeader>) -> Result<Vec<CustomHeader>, Status> {
    let headers: Vec<CustomHeader> =
        values.into_iter().map(|h| CustomHeader { name: h.name, value: h.value, secret: h.secret }).collect();
    custom_headers::check(&headers).map_err(|refused| invalid(&refused.field(field), refused.reason))?;
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(status: Status) -> String {
        use tonic_types::StatusExt;
        status.get_details_bad_request().unwrap().field_violations[0].field.clone()
    }

    #[tokio::test]
    async fn urls() {
        // IP literals, so that the test needs no DNS.
        let policy = Policy::default();
        assert!(url("url", "https://93.184.215.14/hook", false, &policy).await.is_ok());
        assert!(url("url", "http://93.184.215.14/hook", true, &policy).await.is_ok());
        for bad in [
            "http://93.184.215.14",
            "/relative",
            "ftp://93.184.215.14",
            "https://u:p@93.184.215.14/",
            "https://10.0.0.1/",
            "https://[::1]/",
        ] {
            let status = url("url", bad, false, &policy).await.unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad}");
            assert_eq!(field_of(status), "url");
        }
        let long = format!("https://93.184.215.14/{}", "a".repeat(MAX_URL_LEN));
        assert!(url("url", &long, false, &policy).await.is_err());
        let allowing = Policy::allowing(vec!["10.0.0.0/8".parse().unwrap()]);
        assert!(url("url", "https://10.0.0.1/", false, &allowing).await.is_ok());
    }

    /// The message of a refusal, checked where the API puts it: the status and its detail.
    fn refusal(status: Status) -> String {
        use tonic_types::StatusExt;
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        let violation = status.get_details_bad_request().unwrap().field_violations[0].clone();
        assert_eq!(violation.field, "url");
        assert_eq!(status.message(), format!("url: {}", violation.description));
        violation.description
    }

    #[tokio::test]
    async fn internal_hosts_are_refused_without_saying_where_they_point() {
        let policy = Policy::default();
        for (bad, says) in [
            ("https://localhost./", "host localhost. is a loopback name"),
            ("https://LocalHost/", "host localhost is a loopback name"),
            ("https://metadata.google.internal/", "is a local-network name"),
            ("https://metadata/", "is a single-label name"),
            ("https://[2002:a9fe:a9fe::]/", "2002:a9fe:a9fe:: is a 6to4 address embedding a link-local"),
            ("https://[64:ff9b:1::a00:1]/", "is a local-use NAT64 address"),
            // The IP literal the caller wrote, as the url crate reads it, may be echoed.
            ("https://0x7f.1/", "127.0.0.1 is a loopback address"),
        ] {
            let message = refusal(url("url", bad, false, &policy).await.unwrap_err());
            assert!(message.contains(says), "{bad}: {message}");
        }
        // A name resolved to a refused address: its class, not the address.
        let config =
            synap_outbound::OutboundConfig { allow_hosts: vec!["localhost".into()], ..Default::default() };
        let lifted = Policy::from_config(&config).unwrap();
        let message = refusal(url("url", "https://localhost:8443/x", false, &lifted).await.unwrap_err());
        assert_eq!(
            message,
            "host localhost resolves to a loopback address; only public addresses may receive webhooks"
        );
        assert!(!message.contains("127.0.0.1") && !message.contains("::1"), "{message}");
    }

    #[test]
    fn options_in_range() {
        assert_eq!(option_in_range("timeout_ms", None, MAX_TIMEOUT_MS, " ms").unwrap(), None);
        assert_eq!(option_in_range("timeout_ms", Some(30_000), MAX_TIMEOUT_MS, " ms").unwrap(), Some(30_000));
        for bad in [0, 30_001] {
            let err = option_in_range("timeout_ms", Some(bad), MAX_TIMEOUT_MS, " ms").unwrap_err();
            assert_eq!(field_of(err), "timeout_ms");
        }
    }

    #[test]
    fn overlaps() {
        let day = Duration::from_secs(86_400);
        assert_eq!(overlap("overlap", None, day).unwrap(), day);
        let zero = prost_types::Duration { seconds: 0, nanos: 0 };
        assert_eq!(overlap("overlap", Some(zero), day).unwrap(), Duration::ZERO);
        let negative = prost_types::Duration { seconds: -1, nanos: 0 };
        assert_eq!(field_of(overlap("overlap", Some(negative), day).unwrap_err()), "overlap");
        let long = prost_types::Duration { seconds: 8 * 86_400, nanos: 0 };
        assert!(overlap("overlap", Some(long), day).is_err());
    }

    #[test]
    fn basic_auth_fields() {
        let auth = |u: &str, p: &str| api::BasicAuth { username: u.into(), password: p.into() };
        assert!(basic_auth("basic_auth", auth("user", "pw")).is_ok());
        assert_eq!(field_of(basic_auth("basic_auth", auth("a:b", "pw")).unwrap_err()), "basic_auth.username");
        assert_eq!(field_of(basic_auth("basic_auth", auth("a", "")).unwrap_err()), "basic_auth.password");
    }

    #[test]
    fn event_type_lists() {
        assert_eq!(
            event_types("event_types", &["user.updated".into(), "user.updated".into()]).unwrap(),
            vec![TypePattern::Exact(EventType::UserUpdated)]
        );
        assert_eq!(field_of(event_types("event_types", &[]).unwrap_err()), "event_types");
        let err = event_types("event_types", &["user.updated".into(), "User.Updated".into()]).unwrap_err();
        assert_eq!(field_of(err), "event_types[1]");
        let patterns = event_types("event_types", &["user.*".into(), "*".into(), "user.*".into()]).unwrap();
        assert_eq!(patterns, vec![TypePattern::Group("user"), TypePattern::All]);
        assert_eq!(covered(&patterns).len(), 13);
        for (i, bad) in ["foo.*", "us*", "user.**", "*.x"].into_iter().enumerate() {
            let mut list = vec!["user.updated".to_owned(); i + 1];
            list.push(bad.to_owned());
            let err = event_types("event_types", &list).unwrap_err();
            assert_eq!(err.code(), tonic::Code::InvalidArgument);
            assert_eq!(field_of(err), format!("event_types[{}]", i + 1), "{bad}");
        }
    }

    #[test]
    fn signature_schemes() {
        assert_eq!(signature_scheme("signature_scheme", 0).unwrap(), None);
        assert_eq!(signature_scheme("signature_scheme", 2).unwrap(), Some(Scheme::V1a));
        assert_eq!(field_of(signature_scheme("signature_scheme", 7).unwrap_err()), "signature_scheme");
    }

    #[test]
    fn header_refusals_name_the_field_path_and_never_the_value() {
        let header = |name: &str, value: &str, secret| api::CustomHeader {
            name: name.into(),
            value: value.into(),
            secret,
        };
        assert_eq!(headers("headers", vec![header("X-Key", "v", true)]).unwrap().len(), 1);
        let cases = [
            (
                vec![header("x-a", "1", false), header("Webhook-Signature", "v1,forged", false)],
                "headers[1].name",
            ),
            (vec![header("x-a", "s3cr3t\r\nx-b: 1", true)], "headers[0].value"),
            (vec![header("x-a", "1", false), header("X-A", "2", false)], "headers[1].name"),
            ((0..21).map(|i| header(&format!("x-{i}"), "v", false)).collect(), "headers"),
        ];
        for (list, field) in cases {
            let status = headers("headers", list).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(!status.message().contains("s3cr3t"), "{}", status.message());
            assert_eq!(field_of(status), field);
        }
        let status = headers("headers.headers", vec![header("host", "x", false)]).unwrap_err();
        assert_eq!(field_of(status), "headers.headers[0].name");
    }
}
