//! Span fields for the JSON log format, recorded without re-reading what is already there.
//!
//! `tracing-subscriber`'s own `JsonFields` keeps a span's fields as one JSON object in a string;
//! when a field is recorded after the span was made (`trace_id`, `event_id`, `event_type`: known
//! only once the record's headers or body are read), it parses that string back into a map, adds
//! the field and writes the whole object again. Every stage records at least one field on the
//! span of every record, and in the sender that re-parse was 3% of the CPU per delivery. Here the
//! new fields are formatted on their own and spliced in before the closing brace.
//!
//! A field recorded twice appears twice in the object; a JSON reader (the log formatter itself,
//! which parses the span's fields to print them, among them) keeps the last, as the re-parse did.

use std::fmt;

use tracing::span::Record;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{JsonFields, Writer};

/// [`JsonFields`], with [`add_fields`](FormatFields::add_fields) appending instead of
/// re-parsing.
#[derive(Debug, Default)]
pub struct AppendingJsonFields {
    inner: JsonFields,
}

impl<'writer> FormatFields<'writer> for AppendingJsonFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        self.inner.format_fields(writer, fields)
    }

    fn add_fields(&self, current: &'writer mut FormattedFields<Self>, fields: &Record<'_>) -> fmt::Result {
        if current.fields.is_empty() {
            return self.inner.format_fields(current.as_writer(), fields);
        }
        let mut added = String::new();
        self.inner.format_fields(Writer::new(&mut added), fields)?;
        splice(&mut current.fields, &added)
    }
}

/// Appends the members of the JSON object `added` to the JSON object `current`.
fn splice(current: &mut String, added: &str) -> fmt::Result {
    let members = added.strip_prefix('{').and_then(|a| a.strip_suffix('}')).ok_or(fmt::Error)?;
    if members.is_empty() {
        return Ok(());
    }
    if !current.ends_with('}') {
        return Err(fmt::Error);
    }
    current.pop();
    if current.len() > 1 {
        current.push(',');
    }
    current.push_str(members);
    current.push('}');
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{Value, json};
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// The `span` object of the one line an event inside a span logs, with fields recorded at
    /// creation and later.
    fn logged_span(record: impl FnOnce(&tracing::Span)) -> Value {
        let lines = Lines::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(AppendingJsonFields::default())
            .with_writer(lines.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "attempt",
                subscription_id = "sub_1",
                attempt = 2,
                trace_id = tracing::field::Empty,
                event_type = tracing::field::Empty,
                note = tracing::field::Empty,
            );
            record(&span);
            span.in_scope(|| tracing::info!("inside"));
        });
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
        line["span"].clone()
    }

    #[test]
    fn fields_recorded_later_join_the_ones_given_at_creation() {
        let span = logged_span(|span| {
            span.record("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736");
            span.record("event_type", "attempt.completed");
        });
        assert_eq!(
            span,
            json!({
                "name": "attempt",
                "subscription_id": "sub_1",
                "attempt": 2,
                "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                "event_type": "attempt.completed",
            })
        );
    }

    #[test]
    fn a_field_recorded_again_keeps_its_last_value_and_hostile_text_stays_one_string() {
        let hostile = "\"},\"admin\":true,\"x\":{\"\\u0000\n}";
        let span = logged_span(|span| {
            span.record("note", "first");
            span.record("note", hostile);
        });
        assert_eq!(span["note"], hostile);
        assert_eq!(span.get("admin"), None, "{span}");
        assert_eq!(span["subscription_id"], "sub_1");
    }

    #[test]
    fn nothing_recorded_leaves_the_fields_as_made() {
        let span = logged_span(|_| {});
        assert_eq!(span, json!({ "name": "attempt", "subscription_id": "sub_1", "attempt": 2 }));
    }

    #[test]
    fn splicing_refuses_what_is_not_an_object() {
        let mut current = String::from("{\"a\":1}");
        assert_eq!(splice(&mut current, "{}"), Ok(()));
        assert_eq!(current, "{\"a\":1}");
        assert_eq!(splice(&mut current, "{\"b\":2}"), Ok(()));
        assert_eq!(current, "{\"a\":1,\"b\":2}");
        let mut empty_object = String::from("{}");
        assert_eq!(splice(&mut empty_object, "{\"b\":2}"), Ok(()));
        assert_eq!(empty_object, "{\"b\":2}");
        assert!(splice(&mut current, "not json").is_err());
        assert!(splice(&mut String::from("{\"a\":1"), "{\"b\":2}").is_err());
    }
}
