//! Why ingest sets a record aside: a closed set of stable codes (the `synap-dlq-reason` header
//! and the `reason` label of `synap_dead_letters_total`), each with a detail sentence that names
//! the field at fault.
//!
//! Details quote producer input only through [`excerpt`]: short, and escaped, so that a hostile
//! record cannot put control characters, bidi overrides or a megabyte of text into a header, a
//! log line or an operator's terminal.

use std::fmt::Write as _;

/// Why a record was set aside. README.md lists every code; a test keeps the two equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    EmptyRecord,
    UnsupportedContentType,
    NotJson,
    BadProtobuf,
    InvalidEnvelope,
    DuplicateKey,
    MissingType,
    UnknownType,
    MissingPortal,
    InvalidPortalId,
    InvalidId,
    InvalidOccurredAt,
    MissingData,
    DataNotObject,
    BodyTooLarge,
    InvalidBody,
    EventTooLarge,
}

impl Reason {
    pub const ALL: [Reason; 17] = [
        Reason::EmptyRecord,
        Reason::UnsupportedContentType,
        Reason::NotJson,
        Reason::BadProtobuf,
        Reason::InvalidEnvelope,
        Reason::DuplicateKey,
        Reason::MissingType,
        Reason::UnknownType,
        Reason::MissingPortal,
        Reason::InvalidPortalId,
        Reason::InvalidId,
        Reason::InvalidOccurredAt,
        Reason::MissingData,
        Reason::DataNotObject,
        Reason::BodyTooLarge,
        Reason::InvalidBody,
        Reason::EventTooLarge,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Reason::EmptyRecord => "empty_record",
            Reason::UnsupportedContentType => "unsupported_content_type",
            Reason::NotJson => "not_json",
            Reason::BadProtobuf => "bad_protobuf",
            Reason::InvalidEnvelope => "invalid_envelope",
            Reason::DuplicateKey => "duplicate_key",
            Reason::MissingType => "missing_type",
            Reason::UnknownType => "unknown_type",
            Reason::MissingPortal => "missing_portal",
            Reason::InvalidPortalId => "invalid_portal_id",
            Reason::InvalidId => "invalid_id",
            Reason::InvalidOccurredAt => "invalid_occurred_at",
            Reason::MissingData => "missing_data",
            Reason::DataNotObject => "data_not_object",
            Reason::BodyTooLarge => "body_too_large",
            Reason::InvalidBody => "invalid_body",
            Reason::EventTooLarge => "event_too_large",
        }
    }
}

/// A refused record: a stable reason and a sentence for the producer's engineers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub reason: Reason,
    pub detail: String,
}

pub(crate) fn reject(reason: Reason, detail: impl Into<String>) -> Rejection {
    Rejection { reason, detail: detail.into() }
}

/// The most characters of producer input a detail quotes.
pub const EXCERPT_CHARS: usize = 40;

/// `text` as a detail may quote it: in double quotes, at most [`EXCERPT_CHARS`] characters,
/// everything outside printable ASCII escaped as `\u{…}` (and `"`, `\` as `\"`, `\\`), `...`
/// after the quote when cut. The result is always printable ASCII.
pub fn excerpt(text: &str) -> String {
    let mut out = String::with_capacity(EXCERPT_CHARS + 8);
    out.push('"');
    for (i, c) in text.chars().enumerate() {
        if i == EXCERPT_CHARS {
            out.push_str("\"...");
            return out;
        }
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case() {
        let mut codes: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        assert!(codes.iter().all(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len());
    }

    /// README.md's table of ingest's dead-letter reasons lists exactly the codes of [`Reason`].
    #[test]
    fn the_readme_lists_exactly_these_codes() {
        let readme = include_str!("../../../README.md");
        let table = readme
            .split_once("| ingest `synap-dlq-reason` |")
            .expect("README.md has the table of ingest's dead-letter reasons")
            .1;
        let mut listed: Vec<&str> = table
            .lines()
            .skip(2) // the rest of the header row, and the separator row
            .take_while(|line| line.starts_with('|'))
            .map(|line| line.split('`').nth(1).expect("each row starts with a `code`"))
            .collect();
        let mut codes: Vec<&str> = Reason::ALL.iter().map(|r| r.code()).collect();
        listed.sort_unstable();
        codes.sort_unstable();
        assert_eq!(listed, codes, "README.md's ingest reasons and `Reason` differ");
    }

    #[test]
    fn excerpts_are_short_escaped_ascii() {
        assert_eq!(excerpt("p_demo\0"), r#""p_demo\u{0}""#);
        assert_eq!(excerpt("a\r\nb\u{7f}"), r#""a\u{d}\u{a}b\u{7f}""#);
        assert_eq!(excerpt("say \"hi\" \\"), r#""say \"hi\" \\""#);
        assert_eq!(excerpt("é\u{202e}"), r#""\u{e9}\u{202e}""#);
        let long = excerpt(&"x".repeat(10_000));
        assert_eq!(long, format!("\"{}\"...", "x".repeat(EXCERPT_CHARS)));
        assert_eq!(excerpt(&"y".repeat(EXCERPT_CHARS)), format!("\"{}\"", "y".repeat(EXCERPT_CHARS)));
        let hostile = excerpt(&"\u{0}\u{10ffff}".repeat(100));
        assert!(hostile.bytes().all(|b| b.is_ascii_graphic() || b == b' '), "{hostile}");
        assert!(hostile.len() <= EXCERPT_CHARS * 10 + 5);
    }
}
