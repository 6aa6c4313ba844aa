//! The one rule for identifiers: event ids, portal ids, subscription ids, request ids and API
//! key ids, whoever sends them (ingest for producers, control for API callers).
//!
//! An id travels unchanged through every later stage: a PostgreSQL `text` column (which refuses
//! NUL), a Kafka record key and header, and the `webhook-id` and `synap-portal-id` HTTP headers
//! of every delivery (`http::HeaderValue` takes visible ASCII only; a Standard Webhooks library
//! cannot verify a signature without `webhook-id`). So an id is 1 to [`MAX_ID_LEN`] bytes of
//! visible ASCII (`!` to `~`): no control character, no white space, no DEL, nothing
//! non-ASCII. One id that some stage cannot hold would stop a partition behind it.

use std::fmt;

/// The longest id, in bytes (equal to characters, since ids are ASCII).
pub const MAX_ID_LEN: usize = 128;

/// Which part of the id rule a value breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_ID_LEN} bytes, found {len}")]
    TooLong { len: usize },
    #[error("must be visible ASCII (letters, digits, punctuation): found {found} at byte {at}")]
    Forbidden { found: ForbiddenChar, at: usize },
}

/// A character an id may not hold, shown by its code point (never raw: it may be a control
/// character that would garble a log line or a header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForbiddenChar(pub char);

impl fmt::Display for ForbiddenChar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.0;
        let kind = if c == ' ' {
            "a space"
        } else if c.is_control() {
            "the control character"
        } else if c.is_whitespace() {
            "the white space character"
        } else {
            "the non-ASCII character"
        };
        write!(f, "{kind} U+{:04X}", u32::from(c))
    }
}

/// Checks `value` against the id rule; the error says which part it breaks.
///
/// # Errors
///
/// [`IdError::Empty`], [`IdError::TooLong`] (over [`MAX_ID_LEN`] bytes), or
/// [`IdError::Forbidden`] with the first character outside visible ASCII and its byte offset.
pub fn check(value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty);
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong { len: value.len() });
    }
    match value.char_indices().find(|(_, c)| !c.is_ascii_graphic()) {
        Some((at, c)) => Err(IdError::Forbidden { found: ForbiddenChar(c), at }),
        None => Ok(()),
    }
}

/// Whether `value` passes [`check`].
#[must_use]
pub fn is_valid(value: &str) -> bool {
    check(value).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_ids_pass() {
        for ok in ["acme", "p_demo", "evt_0191b7d2", "sub_1", "key_x", "a", "a.b:c/d-e_f~!", &"x".repeat(128)]
        {
            assert_eq!(check(ok), Ok(()), "{ok:?}");
        }
    }

    #[test]
    fn each_broken_rule_is_named() {
        assert_eq!(check(""), Err(IdError::Empty));
        assert_eq!(check(&"x".repeat(129)), Err(IdError::TooLong { len: 129 }));
        // Multi-byte characters count in bytes: 43 × 3 bytes is over the limit.
        assert_eq!(check(&"€".repeat(43)), Err(IdError::TooLong { len: 129 }));
        let forbidden = |value: &str, c: char, at: usize| {
            assert_eq!(check(value), Err(IdError::Forbidden { found: ForbiddenChar(c), at }), "{value:?}");
        };
        forbidden("p_demo\0", '\0', 6);
        forbidden("evt_\0x", '\0', 4);
        forbidden("a\rb", '\r', 1);
        forbidden("a\nb", '\n', 1);
        forbidden("a\tb", '\t', 1);
        forbidden("a b", ' ', 1);
        forbidden("a\x7f", '\x7f', 1);
        forbidden("caf\u{e9}", '\u{e9}', 3);
        forbidden("\u{a0}x", '\u{a0}', 0);
        forbidden("x\u{202e}", '\u{202e}', 1);
        forbidden("x\u{85}", '\u{85}', 1);
    }

    #[test]
    fn messages_show_code_points_not_raw_characters() {
        let message = |v: &str| check(v).unwrap_err().to_string();
        assert_eq!(
            message("p\0"),
            "must be visible ASCII (letters, digits, punctuation): found the control character U+0000 at byte 1"
        );
        assert!(message("a b").contains("a space U+0020"));
        assert!(message("é").contains("the non-ASCII character U+00E9"));
        assert!(message("\u{2003}").contains("the white space character U+2003"));
        assert_eq!(message(&"x".repeat(200)), "must be at most 128 bytes, found 200");
        assert_eq!(message(""), "must not be empty");
    }
}
