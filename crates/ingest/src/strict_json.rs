//! JSON parsing that refuses a key repeated within one object, at any depth.
//!
//! Parsers disagree on `{"score": 1, "score": "high"}`: serde_json and most JavaScript engines
//! keep the last value, others keep the first or both. Ingest validates one reading and the
//! customer's receiver may take another, so a body whose `score` was checked as a number could
//! be read as a string. What ingest validated must be what every receiver reads: an object with
//! a repeated key is refused. Keys are compared after unescaping (`"a"` and `"\u0061"` are one
//! key).
//!
//! The check is part of the one parse ingest makes of each piece (the envelope, then `data`),
//! not a pass of its own.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::value::RawValue;
use serde_json::{Map, Number, Value};

/// Why a JSON text was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// An object holds `key` twice; `line` and `column` point at the end of the second one.
    #[error(
        "the key {} appears twice in one object (line {line}, column {column})",
        crate::reason::excerpt(key)
    )]
    DuplicateKey { key: String, line: usize, column: usize },
    /// Not JSON text (syntax, an unexpected end, nesting deeper than 128, a number out of
    /// range).
    #[error("{0}")]
    Syntax(serde_json::Error),
    /// JSON, but not an object where one is required (the envelope).
    #[error("{0}")]
    NotAnObject(serde_json::Error),
}

/// The JSON envelope's members: the named ones as parsed values (their JSON types are checked
/// by the caller, which names the field), `data` as the raw text delivered byte for byte.
#[derive(Debug, Default)]
pub struct RawEnvelope<'a> {
    pub id: Option<Value>,
    pub ty: Option<Value>,
    pub portal_id: Option<Value>,
    pub occurred_at: Option<Value>,
    /// `None` when absent or `null`.
    pub data: Option<&'a RawValue>,
}

/// Parses a JSON value, refusing repeated keys.
pub fn value(text: &[u8]) -> Result<Value, JsonError> {
    let duplicate = RefCell::new(None);
    parse(text, Strict { duplicate: &duplicate }, &duplicate)
}

/// Parses the JSON envelope, refusing repeated keys at its top level and inside every member
/// but `data` (which the caller parses with [`value`]).
pub fn envelope(text: &[u8]) -> Result<RawEnvelope<'_>, JsonError> {
    let duplicate = RefCell::new(None);
    parse(text, EnvelopeSeed { duplicate: &duplicate }, &duplicate)
}

/// Where a visitor leaves the repeated key it found: serde errors carry only text, and the
/// caller must tell a repeated key from any other failure without reading messages.
type Found = RefCell<Option<String>>;

fn parse<'de, S: DeserializeSeed<'de>>(
    text: &'de [u8],
    seed: S,
    duplicate: &Found,
) -> Result<S::Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| match duplicate.borrow_mut().take() {
        Some(key) => JsonError::DuplicateKey { key, line: e.line(), column: e.column() },
        None if e.is_data() => JsonError::NotAnObject(e),
        None => JsonError::Syntax(e),
    })
}

fn repeated<E: de::Error>(found: &Found, key: String) -> E {
    *found.borrow_mut() = Some(key);
    E::custom("repeated key")
}

/// Builds a [`Value`] like serde_json's own, but stops at a repeated key.
#[derive(Clone, Copy)]
struct Strict<'s> {
    duplicate: &'s Found,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON text has no NaN or infinity, and serde_json refuses numbers that overflow f64.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            match map.entry(key) {
                Entry::Occupied(seen) => return Err(repeated(self.duplicate, seen.key().clone())),
                Entry::Vacant(slot) => {
                    slot.insert(access.next_value_seed(self)?);
                }
            }
        }
        Ok(Value::Object(map))
    }
}

#[derive(Clone, Copy)]
struct EnvelopeSeed<'s> {
    duplicate: &'s Found,
}

impl<'de> DeserializeSeed<'de> for EnvelopeSeed<'_> {
    type Value = RawEnvelope<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed<'_> {
    type Value = RawEnvelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an envelope object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let strict = Strict { duplicate: self.duplicate };
        let mut envelope = RawEnvelope::default();
        let mut seen = HashSet::new();
        while let Some(key) = access.next_key::<String>()? {
            if seen.contains(&key) {
                return Err(repeated(self.duplicate, key));
            }
            match key.as_str() {
                "id" => envelope.id = Some(access.next_value_seed(strict)?),
                "type" => envelope.ty = Some(access.next_value_seed(strict)?),
                "portalId" => envelope.portal_id = Some(access.next_value_seed(strict)?),
                "occurredAt" => envelope.occurred_at = Some(access.next_value_seed(strict)?),
                "data" => envelope.data = access.next_value::<Option<&'de RawValue>>()?,
                // Other members are not delivered, but may not hide a repeated key either.
                _ => {
                    access.next_value_seed(strict)?;
                }
            }
            seen.insert(key);
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate_of(text: &str) -> Option<String> {
        match value(text.as_bytes()) {
            Err(JsonError::DuplicateKey { key, .. }) => Some(key),
            _ => None,
        }
    }

    #[test]
    fn values_parse_like_serde_json() {
        for text in [
            r#"{"a": [1, -2, 3.5, 1e300, true, null, "x\u0000y"], "b": {"c": {}}, "": 0}"#,
            "[]",
            "\"s\"",
            "18446744073709551615",
            "-9223372036854775808",
            " {\"a\":1} ",
        ] {
            let expected: Value = serde_json::from_str(text).unwrap();
            assert_eq!(value(text.as_bytes()).unwrap(), expected, "{text}");
        }
    }

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        assert_eq!(duplicate_of(r#"{"a": 1, "a": 2}"#).as_deref(), Some("a"));
        assert_eq!(duplicate_of(r#"{"x": [{"b": 1, "c": 2, "b": 3}]}"#).as_deref(), Some("b"));
        assert_eq!(duplicate_of(r#"{"a": 1, "\u0061": 2}"#).as_deref(), Some("a"), "compared unescaped");
        assert_eq!(duplicate_of(r#"{"": 1, "": 2}"#).as_deref(), Some(""));
        assert_eq!(duplicate_of(r#"{"a": {"a": 1}, "b": {"a": 2}}"#), None, "same key in different objects");
        let Err(JsonError::DuplicateKey { line, column, .. }) = value(b"{\"a\": 1,\n \"a\": 2}") else {
            panic!("not found");
        };
        assert_eq!((line, column), (2, 4), "the end of the second key");
    }

    #[test]
    fn other_failures_are_syntax() {
        for text in ["{", "{\"a\" 1}", "", "nul", "{} x", "1e400", "\"\\ud800\"", "\"\u{0}\""] {
            assert!(matches!(value(text.as_bytes()), Err(JsonError::Syntax(_))), "{text:?}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(value(deep.as_bytes()), Err(JsonError::Syntax(_))), "nesting is bounded");
        assert!(matches!(value(b"{\"a\": \xff}"), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn envelopes_keep_data_raw_and_refuse_repeats_outside_it() {
        let text = br#"{"id": "e1", "type": "t", "portalId": "p", "occurredAt": null, "extra": {"k": [1]}, "data": {"b": 1,  "a": 2}}"#;
        let envelope = envelope(text).unwrap();
        assert_eq!(envelope.id, Some(Value::String("e1".into())));
        assert_eq!(envelope.occurred_at, Some(Value::Null));
        assert_eq!(envelope.data.unwrap().get(), r#"{"b": 1,  "a": 2}"#, "byte for byte");

        let repeated_at_top = br#"{"portalId": "a", "data": {}, "portalId": "b"}"#;
        assert!(
            matches!(super::envelope(repeated_at_top), Err(JsonError::DuplicateKey { key, .. }) if key == "portalId")
        );
        let repeated_unknown = br#"{"x": 1, "data": {}, "x": 2}"#;
        assert!(matches!(super::envelope(repeated_unknown), Err(JsonError::DuplicateKey { .. })));
        let inside_unknown = br#"{"meta": {"k": 1, "k": 2}, "data": {}}"#;
        assert!(matches!(super::envelope(inside_unknown), Err(JsonError::DuplicateKey { .. })));
        let data_twice = br#"{"data": {"a": 1}, "data": {"a": "x"}}"#;
        assert!(
            matches!(super::envelope(data_twice), Err(JsonError::DuplicateKey { key, .. }) if key == "data")
        );

        assert!(matches!(super::envelope(b"[1, 2]"), Err(JsonError::NotAnObject(_))));
        assert!(matches!(super::envelope(b"\"text\""), Err(JsonError::NotAnObject(_))));
        assert!(matches!(super::envelope(b"{\"data\": }"), Err(JsonError::Syntax(_))));
    }
}
