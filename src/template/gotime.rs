//! Go `time.Time` values in templates: how they print (`2024-01-02 03:04:05 +0000 UTC`)
//! and the methods a template may call on them (`Format`, `Year`, `Unix`, …), with
//! Go's layout language for `Format` (the reference time `Mon Jan 2 15:04:05 MST 2006`).

use chrono::{DateTime, Datelike, FixedOffset, Timelike};
use serde_json::Value;

/// Parses the RFC 3339 text a time value holds.
fn parse(rfc3339: &str) -> Result<DateTime<FixedOffset>, String> {
    DateTime::parse_from_rfc3339(rfc3339).map_err(|e| format!("invalid time {rfc3339:?}: {e}"))
}

/// `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
pub(crate) fn go_string(rfc3339: &str) -> String {
    match parse(rfc3339) {
        Ok(t) => format(&t, "2006-01-02 15:04:05.999999999 -0700 MST"),
        Err(_) => rfc3339.to_string(),
    }
}

/// Calls method `name` with `args` on the time `rfc3339`; `None` when `time.Time` has no
/// such method (the caller reports it as Go does).
pub(crate) fn call(rfc3339: &str, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let t = match parse(rfc3339) {
        Ok(t) => t,
        Err(e) => return Some(Err(e)),
    };
    let no_args = |v: Value| {
        if args.is_empty() {
            Ok(v)
        } else {
            Err(format!(
                "wrong number of args for {name}: want 0 got {}",
                args.len()
            ))
        }
    };
    Some(match name {
        "Format" => match args {
            [Value::String(layout)] => Ok(Value::String(format(&t, layout))),
            [other] => Err(format!(
                "wrong type for value; expected string; got {}",
                super::gofmt::type_name(&Some(other.clone()))
            )),
            _ => Err(format!(
                "wrong number of args for Format: want 1 got {}",
                args.len()
            )),
        },
        "String" => no_args(Value::String(format(
            &t,
            "2006-01-02 15:04:05.999999999 -0700 MST",
        ))),
        "Year" => no_args(Value::from(t.year())),
        "Month" => no_args(Value::String(MONTHS[t.month0() as usize].to_string())),
        "Day" => no_args(Value::from(t.day())),
        "Hour" => no_args(Value::from(t.hour())),
        "Minute" => no_args(Value::from(t.minute())),
        "Second" => no_args(Value::from(t.second())),
        "Nanosecond" => no_args(Value::from(t.nanosecond())),
        "YearDay" => no_args(Value::from(t.ordinal())),
        "Weekday" => no_args(Value::String(
            DAYS[t.weekday().num_days_from_sunday() as usize].to_string(),
        )),
        "Unix" => no_args(Value::from(t.timestamp())),
        "UnixMilli" => no_args(Value::from(t.timestamp_millis())),
        "UnixNano" => no_args(t.timestamp_nanos_opt().map_or(Value::Null, Value::from)),
        "IsZero" => no_args(Value::Bool(false)),
        "UTC" => no_args(super::go_time(
            &t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        )),
        _ => return None,
    })
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Go's `Time.Format(layout)`.
pub(crate) fn format(t: &DateTime<FixedOffset>, layout: &str) -> String {
    let mut out = String::new();
    let mut rest = layout;
    while !rest.is_empty() {
        if let Some((text, len)) = chunk(t, rest) {
            out.push_str(&text);
            rest = &rest[len..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// The value of the layout element `s` starts with, and its length.
fn chunk(t: &DateTime<FixedOffset>, s: &str) -> Option<(String, usize)> {
    let month = MONTHS[t.month0() as usize];
    let day = DAYS[t.weekday().num_days_from_sunday() as usize];
    let hour12 = match t.hour() % 12 {
        0 => 12,
        h => h,
    };
    let offset = t.offset().local_minus_utc();
    let fixed: &[(&str, String)] = &[
        ("January", month.to_string()),
        ("Jan", month[..3].to_string()),
        ("Monday", day.to_string()),
        ("Mon", day[..3].to_string()),
        ("MST", zone_name(offset)),
        ("2006", format!("{:04}", t.year())),
        ("002", format!("{:03}", t.ordinal())),
        ("01", format!("{:02}", t.month())),
        ("02", format!("{:02}", t.day())),
        ("03", format!("{hour12:02}")),
        ("04", format!("{:02}", t.minute())),
        ("05", format!("{:02}", t.second())),
        ("06", format!("{:02}", t.year().rem_euclid(100))),
        ("15", format!("{:02}", t.hour())),
        ("_2", format!("{:>2}", t.day())),
        ("1", t.month().to_string()),
        ("2", t.day().to_string()),
        ("3", hour12.to_string()),
        ("4", t.minute().to_string()),
        ("5", t.second().to_string()),
        ("PM", if t.hour() >= 12 { "PM" } else { "AM" }.to_string()),
        ("pm", if t.hour() >= 12 { "pm" } else { "am" }.to_string()),
        ("-07:00:00", zone_offset(offset, ":", true, false)),
        ("-070000", zone_offset(offset, "", true, false)),
        ("-07:00", zone_offset(offset, ":", false, false)),
        ("-0700", zone_offset(offset, "", false, false)),
        ("-07", zone_offset(offset, "", false, true)),
        (
            "Z07:00:00",
            z_or(offset, zone_offset(offset, ":", true, false)),
        ),
        (
            "Z070000",
            z_or(offset, zone_offset(offset, "", true, false)),
        ),
        (
            "Z07:00",
            z_or(offset, zone_offset(offset, ":", false, false)),
        ),
        ("Z0700", z_or(offset, zone_offset(offset, "", false, false))),
        ("Z07", z_or(offset, zone_offset(offset, "", false, true))),
    ];
    if let Some(frac) = fraction(t, s) {
        return Some(frac);
    }
    fixed
        .iter()
        .find(|(k, _)| s.starts_with(k))
        .map(|(k, v)| (v.clone(), k.len()))
}

/// `.000`/`,000` (fixed digits) or `.999`/`,999` (trailing zeros dropped) after a second.
fn fraction(t: &DateTime<FixedOffset>, s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    if b.len() < 2 || !(b[0] == b'.' || b[0] == b',') || !(b[1] == b'0' || b[1] == b'9') {
        return None;
    }
    let digit = b[1];
    let n = b[1..].iter().take_while(|&&c| c == digit).count();
    if b.get(1 + n).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let nanos = format!("{:09}", t.nanosecond() % 1_000_000_000);
    let digits = &nanos[..n.min(9)];
    let sep = b[0] as char;
    let text = if digit == b'0' {
        format!("{sep}{digits}")
    } else {
        let trimmed = digits.trim_end_matches('0');
        if trimmed.is_empty() {
            String::new()
        } else {
            format!("{sep}{trimmed}")
        }
    };
    Some((text, 1 + n))
}

/// Go prints `UTC` for a zero offset and the offset itself for an unnamed zone.
fn zone_name(offset: i32) -> String {
    if offset == 0 {
        "UTC".into()
    } else {
        zone_offset(offset, "", false, false)
    }
}

fn z_or(offset: i32, s: String) -> String {
    if offset == 0 {
        "Z".into()
    } else {
        s
    }
}

fn zone_offset(offset: i32, sep: &str, seconds: bool, hours_only: bool) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.abs();
    let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
    if hours_only {
        format!("{sign}{h:02}")
    } else if seconds {
        format!("{sign}{h:02}{sep}{m:02}{sep}{s:02}")
    } else {
        format!("{sign}{h:02}{sep}{m:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_go() {
        let t = parse("2024-03-05T07:08:09.120Z").unwrap();
        for (layout, want) in [
            ("2006-01-02", "2024-03-05"),
            ("2006-01-02T15:04:05Z07:00", "2024-03-05T07:08:09Z"),
            ("Jan _2 15:04:05.000", "Mar  5 07:08:09.120"),
            (
                "Monday January 2 3:4:5 PM MST",
                "Tuesday March 5 7:8:9 AM UTC",
            ),
            ("02/01/06 .999 ,9", "05/03/24 .12 ,1"),
            ("-0700 -07:00 -07 002", "+0000 +00:00 +00 065"),
        ] {
            assert_eq!(format(&t, layout), want, "{layout}");
        }
        let t = parse("2024-01-02T03:04:05+02:30").unwrap();
        assert_eq!(format(&t, "Z07:00 MST"), "+02:30 +0230");
        assert_eq!(
            go_string("2024-01-02T03:04:05Z"),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(
            go_string("2024-01-02T03:04:05.5Z"),
            "2024-01-02 03:04:05.5 +0000 UTC"
        );
        assert_eq!(
            go_string("2024-01-02T03:04:05+02:00"),
            "2024-01-02 03:04:05 +0200 +0200"
        );
    }

    #[test]
    fn methods() {
        let t = "2024-03-05T07:08:09Z";
        let call = |m: &str, args: &[Value]| call(t, m, args).unwrap().unwrap();
        assert_eq!(call("Year", &[]), Value::from(2024));
        assert_eq!(call("Month", &[]), Value::from("March"));
        assert_eq!(call("Unix", &[]), Value::from(1709622489));
        assert_eq!(call("Format", &[Value::from("2006")]), Value::from("2024"));
        assert!(super::call(t, "Nope", &[]).is_none());
        assert!(super::call(t, "Year", &[Value::from(1)]).unwrap().is_err());
    }
}
