//! Extra request headers a subscription sends with every delivery: the rules a header must
//! follow (checked by the control API, relied on by the sender) and their storage. A value
//! marked secret is sealed at rest and only ever opened for the sender.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;

use crate::secret_box::Slot;
use crate::{DbError, SecretBox};

/// At most this many headers per subscription.
pub const MAX_HEADERS: usize = 20;
/// A name is 1 to this many bytes: longer than any header name in common use, short enough that
/// 20 of them cost a request nothing.
pub const MAX_NAME_LEN: usize = 64;
/// A value is 1 to this many bytes: room for a bearer token or a signed JWT.
pub const MAX_VALUE_LEN: usize = 2048;
/// All names and values together at most this many bytes, below the 8 KiB header limit of common
/// servers once the system's own headers are added.
pub const MAX_TOTAL_LEN: usize = 6 * 1024;

/// Names a subscription cannot set (compared case-insensitively): the headers the system sets on
/// every request (EVENTS.md §4), and those that HTTP itself or the connection owns.
pub const RESERVED_NAMES: &[&str] = &[
    "authorization",
    "user-agent",
    "traceparent",
    "tracestate",
    "baggage",
    "host",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "expect",
    "accept-encoding",
    "date",
    "via",
    "forwarded",
    "max-forwards",
    "http2-settings",
    "cookie2",
];

/// Name prefixes a subscription cannot use: `webhook-` (the Standard Webhooks headers: id,
/// timestamp, signature), `synap-` (the system's own), `content-` (the body is the event, described
/// by the system), `proxy-` (hop-by-hop), and `x-forwarded-` (what proxies say about the client).
pub const RESERVED_PREFIXES: &[&str] = &["webhook-", "synap-", "content-", "proxy-", "x-forwarded-"];

/// One extra header. The `Debug` of a secret one never shows its value.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
    /// Sealed at rest, never returned by the API, never logged.
    pub secret: bool,
}

impl std::fmt::Debug for CustomHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret { "••••" } else { self.value.as_str() };
        write!(f, "{}: {value}", self.name)
    }
}

/// A header as the API shows it: a secret one without its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShownHeader {
    pub name: String,
    /// `None` when the value is secret.
    pub value: Option<String>,
}

/// Which part of a header list a refusal is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// The list as a whole (too many, too large).
    List,
    /// The name of the header at this index.
    Name(usize),
    /// The value of the header at this index.
    Value(usize),
}

/// Why a header list is refused. The reason never quotes a value (it may be secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Refused {
    pub place: Place,
    pub reason: String,
}

impl Refused {
    /// The field path under `list`, e.g. `headers[2].name`.
    pub fn field(&self, list: &str) -> String {
        match self.place {
            Place::List => list.to_owned(),
            Place::Name(i) => format!("{list}[{i}].name"),
            Place::Value(i) => format!("{list}[{i}].value"),
        }
    }
}

/// RFC 9110 §5.6.2 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Why `name` cannot be a custom header's name, if it cannot.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(format!("must be 1 to {MAX_NAME_LEN} bytes"));
    }
    if let Some(at) = name.bytes().position(|b| !is_tchar(b)) {
        return Err(format!("must be an HTTP token (letters, digits and !#$%&'*+-.^_`|~); byte {at} is not"));
    }
    let lower = name.to_ascii_lowercase();
    if RESERVED_NAMES.contains(&lower.as_str()) {
        return Err(format!("{lower} is set by the system or by HTTP itself and cannot be set"));
    }
    if let Some(prefix) = RESERVED_PREFIXES.iter().find(|p| lower.starts_with(*p)) {
        return Err(format!("names starting with {prefix} are reserved for the system or HTTP itself"));
    }
    Ok(())
}

/// Why `value` cannot be a custom header's value, if it cannot. Never quotes the value.
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > MAX_VALUE_LEN {
        return Err(format!("must be 1 to {MAX_VALUE_LEN} bytes"));
    }
    // Visible ASCII, space and tab (RFC 9110 §5.5 without obs-text): no CR, LF or NUL, which
    // would end or split the header, and no other control or non-ASCII byte.
    if let Some(at) = value.bytes().position(|b| !(b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))) {
        return Err(format!(
            "must be visible ASCII, spaces and tabs; byte {at} is a control or non-ASCII character"
        ));
    }
    if value.starts_with([' ', '\t']) || value.ends_with([' ', '\t']) {
        return Err("must not start or end with white space (HTTP strips it)".into());
    }
    Ok(())
}

/// The one check of a header list: count, each name and value, names unique
/// case-insensitively, total size.
pub fn check(headers: &[CustomHeader]) -> Result<(), Refused> {
    let refuse = |place, reason: String| Refused { place, reason };
    if headers.len() > MAX_HEADERS {
        return Err(refuse(Place::List, format!("at most {MAX_HEADERS} headers (got {})", headers.len())));
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut total = 0;
    for (i, header) in headers.iter().enumerate() {
        check_name(&header.name).map_err(|reason| refuse(Place::Name(i), reason))?;
        if let Some(first) = seen.insert(header.name.to_ascii_lowercase(), i) {
            return Err(refuse(
                Place::Name(i),
                format!("repeats the name of header {first} (names are case-insensitive)"),
            ));
        }
        check_value(&header.value).map_err(|reason| refuse(Place::Value(i), reason))?;
        total += header.name.len() + header.value.len();
    }
    if total > MAX_TOTAL_LEN {
        return Err(refuse(
            Place::List,
            format!("names and values together must be at most {MAX_TOTAL_LEN} bytes (got {total})"),
        ));
    }
    Ok(())
}

/// Where a secret header value is sealed: bound to its subscription and to its own row.
pub fn slot(subscription_id: &str, row_id: i64) -> Slot {
    Slot::new("subscription_headers", "sealed_value", format!("{subscription_id}/{row_id}"))
}

/// Replaces the subscription's headers with `headers` (none: removes them). `client` must be in
/// a transaction: a secret value's insert touches the sealing key's canary in it.
pub async fn replace(
    client: &impl GenericClient,
    secrets: &SecretBox,
    subscription_id: &str,
    headers: &[CustomHeader],
) -> Result<(), DbError> {
    client
        .execute("DELETE FROM subscription_headers WHERE subscription_id = $1", &[&subscription_id])
        .await?;
    if headers.iter().any(|h| h.secret) {
        crate::keyring::touch(client, secrets).await?;
    }
    for (position, header) in headers.iter().enumerate() {
        // The row id is part of a sealed value's slot, so it is taken before the insert.
        let row_id: i64 = client
            .query_one("SELECT nextval(pg_get_serial_sequence('subscription_headers', 'id'))", &[])
            .await?
            .get(0);
        let (plain, sealed) = if header.secret {
            (None, Some(secrets.seal(header.value.as_bytes(), &slot(subscription_id, row_id))))
        } else {
            (Some(header.value.as_str()), None)
        };
        client
            .execute(
                "INSERT INTO subscription_headers (id, subscription_id, position, name, value, sealed_value)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[&row_id, &subscription_id, &(position as i32), &header.name, &plain, &sealed],
            )
            .await?;
    }
    Ok(())
}

/// The headers of each of `subscription_ids` that has any, in order, secret values withheld
/// (never opened).
pub async fn shown(
    client: &impl GenericClient,
    subscription_ids: &[&str],
) -> Result<HashMap<String, Vec<ShownHeader>>, DbError> {
    let rows = client
        .query(
            "SELECT subscription_id, name, value FROM subscription_headers
             WHERE subscription_id = ANY ($1) ORDER BY subscription_id, position",
            &[&subscription_ids],
        )
        .await?;
    let mut out: HashMap<String, Vec<ShownHeader>> = HashMap::new();
    for row in rows {
        out.entry(row.get(0)).or_default().push(ShownHeader { name: row.get(1), value: row.get(2) });
    }
    Ok(out)
}

/// The subscription's headers (`$1`) in order: what [`opened_rows`] reads.
pub(crate) const OPENED_SQL: &str = "SELECT id, name, value, sealed_value FROM subscription_headers
     WHERE subscription_id = $1 ORDER BY position";

/// The headers of [`OPENED_SQL`]'s rows, secret values opened (for the sender:
/// [`crate::subscriptions::sending_state`]).
pub(crate) fn opened_rows(
    rows: &[tokio_postgres::Row],
    secrets: &SecretBox,
    subscription_id: &str,
) -> Result<Vec<CustomHeader>, DbError> {
    // Sized to the rows, as `secrets::opened_keys`: the sender caches these per subscription.
    let mut headers = Vec::with_capacity(rows.len());
    for row in rows {
        let (row_id, name, value, sealed): (i64, String, Option<String>, Option<Vec<u8>>) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        headers.push(match (value, sealed) {
            (Some(value), _) => CustomHeader { name, value, secret: false },
            (None, Some(sealed)) => {
                let value = String::from_utf8(secrets.open(&sealed, &slot(subscription_id, row_id))?)
                    .map_err(|_| DbError::Corrupt(format!("header {name}: secret value is not UTF-8")))?;
                CustomHeader { name, value, secret: true }
            }
            (None, None) => return Err(DbError::Corrupt(format!("header {name} has no value"))),
        });
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> CustomHeader {
        CustomHeader { name: name.into(), value: value.into(), secret: false }
    }

    fn refused(headers: &[CustomHeader]) -> (String, String) {
        let refusal = check(headers).unwrap_err();
        (refusal.field("headers"), refusal.reason)
    }

    #[test]
    fn ordinary_headers_pass() {
        let ok = [
            header("X-Api-Key", "k_123"),
            header("x-tenant", "acme corp\tEU"),
            header("Accept", "application/json"),
            header("!#$%&'*+-.^_`|~09aZ", "\"quoted\" (comment); a=b, c"),
            header("Cookie", "session=abc"),
        ];
        assert_eq!(check(&ok), Ok(()));
        assert_eq!(check(&[]), Ok(()));
    }

    #[test]
    fn malformed_names_are_refused_at_their_index() {
        for bad in [
            "",
            "X Api",
            "x-api:",
            "x\r\ninjected",
            "x\0",
            "(x)",
            "x/y",
            "é",
            "x\"y",
            ":authority",
            &"x".repeat(MAX_NAME_LEN + 1),
        ] {
            let (field, _) = refused(&[header("ok", "v"), header(bad, "v")]);
            assert_eq!(field, "headers[1].name", "{bad:?}");
        }
        assert!(check(&[header(&"x".repeat(MAX_NAME_LEN), "v")]).is_ok());
    }

    #[test]
    fn reserved_names_are_refused_in_any_case() {
        for bad in [
            "webhook-id",
            "Webhook-Timestamp",
            "WEBHOOK-SIGNATURE",
            "webhook-anything",
            "synap-event-type",
            "Synap-Portal-Id",
            "synap-delivery-attempt",
            "synap-new",
            "content-type",
            "Content-Length",
            "content-encoding",
            "host",
            "Authorization",
            "user-agent",
            "traceparent",
            "TraceState",
            "connection",
            "Transfer-Encoding",
            "te",
            "upgrade",
            "expect",
            "keep-alive",
            "proxy-authorization",
            "Proxy-Connection",
            "x-forwarded-for",
            "forwarded",
        ] {
            let (field, reason) = refused(&[header(bad, "v")]);
            assert_eq!(field, "headers[0].name", "{bad}");
            assert!(reason.contains("system") || reason.contains("reserved"), "{bad}: {reason}");
        }
    }

    #[test]
    fn malformed_values_are_refused_without_quoting_them() {
        for bad in [
            "",
            "line\r\nInjected: yes",
            "a\nb",
            "a\rb",
            "nul\0byte",
            "bell\x07",
            "del\x7f",
            "caf\u{e9}",
            " leading",
            "trailing\t",
            &"v".repeat(MAX_VALUE_LEN + 1),
        ] {
            let refusal =
                check(&[header("x-ok", "v"), CustomHeader { secret: true, ..header("x-key", bad) }])
                    .unwrap_err();
            assert_eq!(refusal.field("headers"), "headers[1].value", "{bad:?}");
            if bad.len() > 3 {
                assert!(!refusal.reason.contains(bad.trim()), "{bad:?}: {}", refusal.reason);
            }
        }
    }

    #[test]
    fn names_are_unique_case_insensitively() {
        let (field, reason) = refused(&[header("X-Key", "a"), header("x-other", "b"), header("x-KEY", "c")]);
        assert_eq!(field, "headers[2].name");
        assert!(reason.contains("header 0"), "{reason}");
    }

    #[test]
    fn at_most_twenty_and_bounded_in_total() {
        let twenty: Vec<_> = (0..MAX_HEADERS).map(|i| header(&format!("x-h{i}"), "v")).collect();
        assert!(check(&twenty).is_ok());
        let mut many = twenty.clone();
        many.push(header("x-h20", "v"));
        assert_eq!(refused(&many).0, "headers");
        let large: Vec<_> = (0..4).map(|i| header(&format!("x-h{i}"), &"v".repeat(MAX_VALUE_LEN))).collect();
        let (field, reason) = refused(&large);
        assert_eq!(field, "headers");
        assert!(reason.contains("together"), "{reason}");
    }

    #[test]
    fn debug_hides_secret_values() {
        let secret = CustomHeader { name: "x-key".into(), value: "s3cr3t-value".into(), secret: true };
        assert!(!format!("{secret:?}").contains("s3cr3t"));
        assert!(format!("{:?}", header("x-plain", "shown")).contains("shown"));
    }

    fn accepted_is_valid_http(name: &str, value: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        if check_name(name).is_ok() {
            let parsed = http::HeaderName::from_bytes(name.as_bytes());
            proptest::prop_assert!(parsed.is_ok(), "{:?}", name);
            let parsed = parsed.unwrap();
            proptest::prop_assert_eq!(parsed.as_str(), name.to_ascii_lowercase());
        }
        if check_value(value).is_ok() {
            let parsed = http::HeaderValue::from_str(value);
            proptest::prop_assert!(parsed.is_ok(), "{:?}", value);
            let parsed = parsed.unwrap();
            proptest::prop_assert_eq!(parsed.to_str().unwrap(), value);
        }
        Ok(())
    }

    proptest::proptest! {
        /// Whatever the rule accepts, the sender can send unchanged: the HTTP types take the name
        /// and the value as they are (so no accepted header is dropped or altered on the wire).
        #[test]
        fn accepted_headers_are_valid_http_mostly_well_formed(
            name in "[!#$%&'*+.^_`|~0-9A-Za-z-]{1,70}",
            value in "[ -~\\t]{1,80}",
        ) {
            accepted_is_valid_http(&name, &value)?;
        }

        /// The same over hostile text: control characters, CR/LF, NUL, non-ASCII.
        #[test]
        fn accepted_hostile_headers_are_valid_http(name in "[ -~\\t\\r\\n\\x00\\u{80}-\\u{10ffff}]{0,70}",
                                          value in "[ -~\\t\\r\\n\\x00\\x7f\\u{80}-\\u{10ffff}]{0,80}") {
            accepted_is_valid_http(&name, &value)?;
        }

        /// Names that differ only in case are one name to the rule, as they are to HTTP.
        #[test]
        fn case_variants_collide(name in "x-[a-zA-Z0-9]{1,20}") {
            let upper = CustomHeader { name: name.to_ascii_uppercase(), value: "1".into(), secret: false };
            let lower = CustomHeader { name: name.to_ascii_lowercase(), value: "2".into(), secret: false };
            proptest::prop_assert_eq!(check(&[upper, lower]).unwrap_err().place, Place::Name(1));
        }
    }
}
