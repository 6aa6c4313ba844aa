//! When an event happened: an RFC 3339 text (JSON envelope) or a `google.protobuf.Timestamp`
//! (protobuf envelope), kept as unix milliseconds.
//!
//! Only years 1 to 9999 are accepted: the range of `google.protobuf.Timestamp`, of RFC 3339's
//! four-digit years, and inside what chrono and PostgreSQL `timestamptz` hold, so that no later
//! stage meets a time it cannot represent.

use chrono::{DateTime, Utc};

use crate::reason::excerpt;

/// 0001-01-01T00:00:00Z in unix milliseconds.
pub const MIN_MS: i64 = -62_135_596_800_000;
/// 9999-12-31T23:59:59.999Z in unix milliseconds.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// Whether `ms` lies in years 1 to 9999.
pub fn in_range(ms: i64) -> bool {
    (MIN_MS..=MAX_MS).contains(&ms)
}

/// An RFC 3339 timestamp (any offset), in milliseconds; the error is a detail naming the field.
pub fn from_rfc3339(text: &str) -> Result<i64, String> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .map_err(|_| format!("`occurredAt` {} is not an RFC 3339 timestamp", excerpt(text)))?;
    // An offset can carry a year-9999 local time past the end of the range in UTC.
    let ms = parsed.with_timezone(&Utc).timestamp_millis();
    if !in_range(ms) {
        return Err(format!("`occurredAt` {} is outside years 1 to 9999", excerpt(text)));
    }
    Ok(ms)
}

/// A protobuf timestamp, in milliseconds; refused outside the range its own definition allows
/// (years 1 to 9999, nanos 0 to 999,999,999).
pub fn from_timestamp(seconds: i64, nanos: i32) -> Result<i64, String> {
    if !(0..1_000_000_000).contains(&nanos) {
        return Err(format!("`occurred_at.nanos` is {nanos}; it must be 0 to 999999999"));
    }
    let ms = seconds.checked_mul(1000).map(|s| s + i64::from(nanos / 1_000_000));
    match ms {
        Some(ms) if in_range(ms) => Ok(ms),
        _ => Err(format!("`occurred_at` ({seconds} s) is outside years 1 to 9999")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_years_1_to_9999() {
        let first = DateTime::parse_from_rfc3339("0001-01-01T00:00:00Z").unwrap().timestamp_millis();
        let last = DateTime::parse_from_rfc3339("9999-12-31T23:59:59.999Z").unwrap().timestamp_millis();
        assert_eq!((first, last), (MIN_MS, MAX_MS));
    }

    #[test]
    fn rfc3339_texts() {
        assert_eq!(from_rfc3339("2026-11-27T10:00:00Z"), Ok(1_795_773_600_000));
        assert_eq!(from_rfc3339("2026-11-27T11:00:00.5+01:00"), Ok(1_795_773_600_500));
        assert_eq!(from_rfc3339("0001-01-01T00:00:00Z"), Ok(MIN_MS));
        for bad in ["0000-12-31T23:59:59Z", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+00:01"] {
            let detail = from_rfc3339(bad).unwrap_err();
            assert!(detail.contains("outside years 1 to 9999"), "{bad}: {detail}");
        }
        for bad in [
            "yesterday",
            "2026-11-27",
            "2026-11-27T10:00:00",
            "+12026-11-27T10:00:00Z",
            "",
            "2026-13-01T00:00:00Z",
        ] {
            let detail = from_rfc3339(bad).unwrap_err();
            assert!(detail.contains("is not an RFC 3339 timestamp"), "{bad}: {detail}");
        }
        let hostile = from_rfc3339(&format!("\u{0}{}", "9".repeat(10_000))).unwrap_err();
        assert!(hostile.len() < 200 && !hostile.contains('\0'), "{hostile}");
    }

    #[test]
    fn protobuf_timestamps() {
        assert_eq!(from_timestamp(1_795_773_600, 500_000_000), Ok(1_795_773_600_500));
        assert_eq!(from_timestamp(-62_135_596_800, 0), Ok(MIN_MS));
        assert_eq!(from_timestamp(253_402_300_799, 999_999_999), Ok(MAX_MS));
        for (seconds, nanos) in [
            (-62_135_596_801, 999_999_999),
            (253_402_300_800, 0),
            (i64::MAX, 0),
            (i64::MIN, 0),
            (0, -1),
            (0, 1_000_000_000),
            (0, i32::MIN),
        ] {
            assert!(from_timestamp(seconds, nanos).is_err(), "{seconds} {nanos}");
        }
    }
}
