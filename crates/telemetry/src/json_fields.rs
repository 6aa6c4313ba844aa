//! Span fields for the JSON log format, written straight into the span's JSON object.
//!
//! The JSON log layer formats the fields of every span when it is made, and every stage makes a
//! span for every record (the sender one per attempt), while a log line that shows them is rare.
//! `tracing-subscriber`'s own `JsonFields` builds a map of `serde_json::Value`s (an allocation
//! per field and per map node) and serializes it; for a field recorded after the span was made
//! (`trace_id`, `event_id`, `event_type`: known only once the record's headers or body are read)
//! it parses the object back into a map, adds the field and writes the whole object again. Here
//! each field is written once, escaped in place, and fields recorded later are appended before
//! the closing brace. With the tracing a record also gets, ingest's record costs 2.8 µs of
//! telemetry and the sender's attempt 2.7; formatting through `JsonFields` and splicing later
//! fields in, as this module did before, they cost 3.8 and 3.4 (`synap-bench telemetry-cost`,
//! docs/BENCHMARKS.md).
//!
//! A field recorded twice appears twice in the object; a JSON reader (the log formatter itself,
//! which parses the span's fields to print them, among them) keeps the last, as the re-parse did.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::span::Record;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::Writer;

/// Span fields as one JSON object, like `tracing-subscriber`'s `JsonFields`, written directly.
#[derive(Debug, Default)]
pub struct AppendingJsonFields;

impl<'writer> FormatFields<'writer> for AppendingJsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'writer>, fields: R) -> fmt::Result {
        writer.write_char('{')?;
        let mut members = Members { out: &mut writer, empty: true, result: Ok(()) };
        fields.record(&mut members);
        members.result?;
        writer.write_char('}')
    }

    fn add_fields(&self, current: &'writer mut FormattedFields<Self>, fields: &Record<'_>) -> fmt::Result {
        if current.fields.is_empty() {
            return self.format_fields(current.as_writer(), fields);
        }
        let object = &mut current.fields;
        if !object.ends_with('}') {
            return Err(fmt::Error);
        }
        object.pop();
        let (before, empty) = (object.len(), object.len() == 1);
        let mut members = Members { out: object, empty, result: Ok(()) };
        fields.record(&mut members);
        let result = members.result;
        if result.is_err() {
            // A value whose formatting failed leaves the object as it was, not half a member.
            object.truncate(before);
        }
        object.push('}');
        result
    }
}

/// Writes each field it visits as `"name":value`, comma-separated, into `out`.
struct Members<'a, W: fmt::Write> {
    out: &'a mut W,
    /// No member written yet: the next one needs no comma.
    empty: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Members<'_, W> {
    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        // `r#type` is the field `type`, as in `JsonFields`.
        let name = field.name();
        let name = name.strip_prefix("r#").unwrap_or(name);
        self.result = (|| {
            if !self.empty {
                self.out.write_char(',')?;
            }
            string(self.out, format_args!("{name}"))?;
            self.out.write_char(':')?;
            value(self.out)
        })();
        self.empty = false;
    }
}

impl<W: fmt::Write> Visit for Members<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        // Rust's shortest round-trip form of a finite float is a JSON number; JSON has no NaN or
        // infinity, so they are `null`, as `serde_json` writes them.
        self.member(
            field,
            |out| if value.is_finite() { write!(out, "{value:?}") } else { out.write_str("null") },
        );
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |out| write!(out, "{value}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |out| string(out, format_args!("{value}")));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |out| string(out, format_args!("{value:?}")));
    }
}

/// `text` as a JSON string, escaped as `serde_json` escapes it.
fn string<W: fmt::Write>(out: &mut W, text: fmt::Arguments<'_>) -> fmt::Result {
    out.write_char('"')?;
    Escaped(out).write_fmt(text)?;
    out.write_char('"')
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut clean = 0;
        for (at, byte) in text.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            self.0.write_str(&text[clean..at])?;
            if escape.is_empty() {
                write!(self.0, "\\u{byte:04x}")?;
            } else {
                self.0.write_str(escape)?;
            }
            clean = at + 1;
        }
        self.0.write_str(&text[clean..])
    }
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

    /// The `span` object of the one line an event inside the span `make` makes logs, with span
    /// fields formatted by `fields`.
    fn logged<N>(fields: N, make: impl FnOnce() -> tracing::Span) -> Value
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let lines = Lines::default();
        let layer = tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .fmt_fields(fields)
            .with_writer(lines.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || make().in_scope(|| tracing::info!("inside")));
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"));
        line["span"].clone()
    }

    /// [`logged`] for a span with fields given at creation and others recorded by `record`.
    fn logged_span(record: impl FnOnce(&tracing::Span)) -> Value {
        logged(AppendingJsonFields, || {
            let span = tracing::info_span!(
                "attempt",
                subscription_id = "sub_1",
                attempt = 2,
                trace_id = tracing::field::Empty,
                event_type = tracing::field::Empty,
                note = tracing::field::Empty,
            );
            record(&span);
            span
        })
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
    fn a_span_made_with_no_fields_takes_the_ones_recorded_later() {
        let span = logged(AppendingJsonFields, || {
            let span = tracing::info_span!("handle", trace_id = tracing::field::Empty);
            span.record("trace_id", "abc");
            span
        });
        assert_eq!(span, json!({ "name": "handle", "trace_id": "abc" }));
    }

    struct Failing;

    impl fmt::Debug for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("half")?;
            Err(fmt::Error)
        }
    }

    #[test]
    fn a_value_that_fails_to_format_leaves_the_object_whole() {
        let span = logged_span(|span| {
            span.record("note", tracing::field::debug(Failing));
            span.record("event_type", "attempt.completed");
        });
        assert_eq!(span.get("note"), None, "{span}");
        assert_eq!(span["event_type"], "attempt.completed");
        assert_eq!(span["subscription_id"], "sub_1");
    }

    #[derive(Debug)]
    #[allow(dead_code, reason = "read through Debug")]
    struct Shown {
        text: &'static str,
    }

    /// Every kind of value a field can hold, hostile text among them, reads back as the JSON that
    /// `tracing-subscriber`'s own `JsonFields` writes for it.
    #[test]
    fn every_kind_of_value_reads_as_json_fields_writes_it() {
        let controls: String = (0u8..0x20).map(char::from).collect();
        let hostile = format!("\"}},\"admin\":true,\\ \\u0041 {controls} \u{7f} é 漢 \u{2028} 🦀");
        let make = || {
            let span = tracing::info_span!(
                "attempt",
                text = hostile.as_str(),
                negative = -5i64,
                largest = u64::MAX,
                yes = true,
                half = 1.5f64,
                nan = f64::NAN,
                infinite = f64::INFINITY,
                shown = %hostile,
                debugged = ?Shown { text: "a \"quoted\" \\ value\n" },
                r#type = "attempt.completed",
                later = tracing::field::Empty,
            );
            span.record("later", 7u64);
            span
        };
        let ours = logged(AppendingJsonFields, make);
        let theirs = logged(tracing_subscriber::fmt::format::JsonFields::default(), make);
        assert_eq!(ours, theirs);
        assert_eq!(ours["text"], hostile.as_str());
        assert_eq!(ours["type"], "attempt.completed");
        assert_eq!(ours["nan"], Value::Null);
        assert_eq!(ours.get("admin"), None, "{ours}");
    }
}
