//! Timestamps as Go's `time.Time` reads and writes them in JSON: RFC 3339 in, RFC 3339
//! with nanoseconds out (trailing zeros trimmed), keeping the original UTC offset.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};
use serde::{Serialize, Serializer};

use crate::error::{Error, Result};

/// A point in time plus the UTC offset it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GoTime {
    /// Wall-clock date and time in the zone given by `offset_secs`.
    local: NaiveDateTime,
    offset_secs: i32,
}

impl GoTime {
    /// Go's zero `time.Time`: `0001-01-01T00:00:00Z`.
    pub fn zero() -> GoTime {
        GoTime {
            local: NaiveDate::from_ymd_opt(1, 1, 1)
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .expect("valid date"),
            offset_secs: 0,
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == GoTime::zero()
    }

    /// Parses an RFC 3339 timestamp with the rules of Go's `time.Parse(time.RFC3339, …)`:
    /// four-digit year, two-digit fields, optional fraction (`.` or `,`, any number of
    /// digits, truncated to nanoseconds), then `Z` or `±hh:mm`.
    pub fn parse_rfc3339(s: &str) -> Result<GoTime> {
        parse(s.as_bytes()).ok_or_else(|| {
            Error::invalid(format!(
                "parsing time {s:?}: not an RFC 3339 timestamp (e.g. 2006-01-02T15:04:05Z)"
            ))
        })
    }

    /// From a chrono value (which keeps its offset).
    pub fn from_datetime(dt: DateTime<FixedOffset>) -> GoTime {
        GoTime {
            local: dt.naive_local(),
            offset_secs: dt.offset().local_minus_utc(),
        }
    }

    /// As a chrono value with the original offset.
    pub fn to_datetime(&self) -> DateTime<FixedOffset> {
        let offset = FixedOffset::east_opt(self.offset_secs).expect("offset within a day");
        self.local
            .and_local_timezone(offset)
            .single()
            .expect("fixed offsets are unambiguous")
    }

    /// Go's `time.RFC3339Nano` rendering: fraction without trailing zeros (and without
    /// the dot when zero), `Z` for a zero offset.
    pub fn to_rfc3339_nano(&self) -> String {
        let t = &self.local;
        let mut s = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let nanos = t.nanosecond();
        if nanos != 0 {
            let frac = format!("{nanos:09}");
            s.push('.');
            s.push_str(frac.trim_end_matches('0'));
        }
        if self.offset_secs == 0 {
            s.push('Z');
        } else {
            let sign = if self.offset_secs < 0 { '-' } else { '+' };
            let mins = self.offset_secs.unsigned_abs() / 60;
            s.push_str(&format!("{sign}{:02}:{:02}", mins / 60, mins % 60));
        }
        s
    }
}

impl Default for GoTime {
    /// The zero time, as in Go.
    fn default() -> GoTime {
        GoTime::zero()
    }
}

impl fmt::Display for GoTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339_nano())
    }
}

impl Serialize for GoTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339_nano())
    }
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let part = b.get(at..at + n)?;
    if !part.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn parse(b: &[u8]) -> Option<GoTime> {
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let min = digits(b, 14, 2)?;
    let sec = digits(b, 17, 2)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    let mut i = 19;
    let mut nanos = 0u32;
    if matches!(b.get(i), Some(b'.') | Some(b',')) && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        // Only the first nine digits count; the rest are dropped, not rounded.
        let frac = &b[start..i.min(start + 9)];
        nanos = frac.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0'));
        nanos *= 10u32.pow(9 - frac.len() as u32);
    }
    let offset_secs = match b.get(i) {
        Some(b'Z') if b.len() == i + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == i + 6 && b[i + 3] == b':' => {
            let hh = digits(b, i + 1, 2)?;
            let mm = digits(b, i + 4, 2)?;
            // As Go's RFC 3339 parser: hours 00-23, minutes 00-59 (`+24:00` is refused).
            if hh > 23 || mm > 59 {
                return None;
            }
            let secs = (hh * 3600 + mm * 60) as i32;
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let local = date.and_hms_nano_opt(hour, min, sec, nanos)?;
    Some(GoTime { local, offset_secs })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(s: &str) -> String {
        GoTime::parse_rfc3339(s).unwrap().to_rfc3339_nano()
    }

    #[test]
    fn formats_like_rfc3339nano() {
        assert_eq!(
            round("2026-11-22T11:40:22.140847250Z"),
            "2026-11-22T11:40:22.14084725Z"
        );
        assert_eq!(
            round("2020-01-02T03:04:05.123400000+02:00"),
            "2020-01-02T03:04:05.1234+02:00"
        );
        assert_eq!(
            round("2021-05-06T07:08:09.000000001Z"),
            "2021-05-06T07:08:09.000000001Z"
        );
        assert_eq!(round("2022-03-04T05:06:07.5Z"), "2022-03-04T05:06:07.5Z");
        assert_eq!(round("2022-03-04T05:06:07.000Z"), "2022-03-04T05:06:07Z");
        assert_eq!(round("2022-03-04T05:06:07+00:00"), "2022-03-04T05:06:07Z");
        assert_eq!(
            round("2022-03-04T05:06:07-07:30"),
            "2022-03-04T05:06:07-07:30"
        );
        assert_eq!(round("2022-03-04T05:06:07,25Z"), "2022-03-04T05:06:07.25Z");
        // Digits past nanoseconds are truncated.
        assert_eq!(
            round("2022-03-04T05:06:07.1234567899Z"),
            "2022-03-04T05:06:07.123456789Z"
        );
        assert_eq!(round("0001-01-01T00:00:00Z"), "0001-01-01T00:00:00Z");
        assert_eq!(round("0000-01-01T00:00:00Z"), "0000-01-01T00:00:00Z");
    }

    #[test]
    fn zero_time() {
        assert_eq!(GoTime::zero().to_rfc3339_nano(), "0001-01-01T00:00:00Z");
        assert!(GoTime::parse_rfc3339("0001-01-01T00:00:00Z")
            .unwrap()
            .is_zero());
        assert!(!GoTime::parse_rfc3339("0001-01-01T00:00:00.1Z")
            .unwrap()
            .is_zero());
    }

    #[test]
    fn rejects_what_go_rejects() {
        for bad in [
            "",
            "2020-01-02",
            "2020-01-02 03:04:05Z",
            "2020-01-02t03:04:05Z",
            "2020-01-02T03:04:05z",
            "2020-01-02T03:04:05",
            "2020-13-02T03:04:05Z",
            "2020-02-30T03:04:05Z",
            "2020-01-02T24:00:00Z",
            "2020-01-02T03:60:00Z",
            "2020-01-02T03:04:60Z",
            "2020-01-02T03:04:05.Z",
            "2020-01-02T03:04:05+0200",
            "2020-01-02T03:04:05+24:00",
            "2020-01-02T03:04:05-24:00",
            "2020-01-02T03:04:05+23:60",
            "2020-01-02T03:04:05Zjunk",
            "20-01-02T03:04:05Z",
            "+2020-01-02T03:04:05Z",
        ] {
            let err = GoTime::parse_rfc3339(bad).unwrap_err();
            assert!(err.to_string().contains("parsing time"), "{bad}: {err}");
        }
    }

    #[test]
    fn chrono_round_trip_keeps_offset() {
        let t = GoTime::parse_rfc3339("2020-01-02T03:04:05.5-05:00").unwrap();
        let dt = t.to_datetime();
        assert_eq!(dt.offset().local_minus_utc(), -5 * 3600);
        assert_eq!(dt.timestamp(), 1577952245);
        assert_eq!(GoTime::from_datetime(dt), t);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2020-01-02T03:04:05.5-05:00\""
        );
    }
}
