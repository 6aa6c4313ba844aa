//! Record header helpers.

use rdkafka::message::{Header, Headers, OwnedHeaders};

/// The value of the first header named `name`, as UTF-8.
pub fn get<'a, H: Headers>(headers: Option<&'a H>, name: &str) -> Option<&'a str> {
    headers?
        .iter()
        .find(|h| h.key.eq_ignore_ascii_case(name))
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// Copies every header, then appends `extra`.
pub fn copy_with<H: Headers>(headers: Option<&H>, extra: &[(&str, &str)]) -> OwnedHeaders {
    let mut out = OwnedHeaders::new();
    if let Some(headers) = headers {
        for h in headers.iter() {
            out = out.insert(Header { key: h.key, value: h.value });
        }
    }
    for (key, value) in extra {
        out = out.insert(Header { key, value: Some(*value) });
    }
    out
}
