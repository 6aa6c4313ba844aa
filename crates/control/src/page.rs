//! Pagination: page sizes and opaque page tokens.
//!
//! A token is the base64 of the query it belongs to and the position after the last item
//! returned. Clients must treat it as opaque; a token used with other filters is refused, so a
//! changed query never silently skips or repeats items.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tonic::Status;

use crate::errors::invalid;

pub const DEFAULT_SIZE: usize = 50;
pub const MAX_SIZE: usize = 500;
const VERSION: &str = "v1";
/// Ids, codes and the query never contain a newline (ids refuse white space).
const SEPARATOR: char = '\n';

/// The page size asked for: 0 means the default; otherwise 1 to [`MAX_SIZE`].
pub fn size(value: i32) -> Result<usize, Status> {
    match value {
        0 => Ok(DEFAULT_SIZE),
        1.. if value as usize <= MAX_SIZE => Ok(value as usize),
        _ => Err(invalid("page_size", format!("must be between 1 and {MAX_SIZE} (0 means {DEFAULT_SIZE})"))),
    }
}

/// A token for the page after `position`, valid only with the same `query`.
pub fn token(query: &str, position: &[&str]) -> String {
    let mut text = format!("{VERSION}{SEPARATOR}{query}");
    for part in position {
        text.push(SEPARATOR);
        text.push_str(part);
    }
    URL_SAFE_NO_PAD.encode(text)
}

/// The position in `token`, which must belong to `query` and hold `parts` values. `None` for
/// the empty token (the first page).
pub fn position(token: &str, query: &str, parts: usize) -> Result<Option<Vec<String>>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || invalid("page_token", "is not a page token of this list; start again without one");
    let text = URL_SAFE_NO_PAD.decode(token).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad)?;
    let mut fields = text.split(SEPARATOR);
    if fields.next() != Some(VERSION) {
        return Err(bad());
    }
    if fields.next() != Some(query) {
        return Err(invalid("page_token", "was issued for other filters; start again without one"));
    }
    let position: Vec<String> = fields.map(str::to_owned).collect();
    // Positions are ids and numbers, so the id rule holds for them; a forged token carrying
    // anything else (a NUL PostgreSQL refuses) is refused here rather than by the query.
    if position.len() != parts || !position.iter().all(|p| synap_contract::ids::is_valid(p)) {
        return Err(bad());
    }
    Ok(Some(position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0).unwrap(), DEFAULT_SIZE);
        assert_eq!(size(1).unwrap(), 1);
        assert_eq!(size(500).unwrap(), 500);
        for bad in [-1, 501, i32::MAX] {
            assert_eq!(size(bad).unwrap_err().code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn tokens_round_trip_only_for_their_query() {
        let t = token("portal=a", &["123", "sub_1"]);
        assert_eq!(position(&t, "portal=a", 2).unwrap(), Some(vec!["123".into(), "sub_1".into()]));
        assert!(position(&t, "portal=b", 2).is_err());
        assert!(position(&t, "portal=a", 1).is_err());
        assert!(position("garbage!", "portal=a", 2).is_err());
        assert_eq!(position("", "portal=a", 2).unwrap(), None);
        for forged in ["\0", "a b", "", "é"] {
            let t = token("portal=a", &["123", forged]);
            let status = position(&t, "portal=a", 2).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{forged:?}");
        }
    }
}
