//! JSON written and read the way Go's `encoding/json` does, so that scry's output is
//! byte-identical to skopeo's.
//!
//! Writing: `<`, `>`, `&`, U+2028 and U+2029 are escaped as `\u003c` … `\u2029`,
//! backspace and form feed as `\u0008` / `\u000c`, other control characters as
//! `\u00XX` (lowercase hex), `/` and DEL are left alone; indentation matches
//! `json.MarshalIndent(v, "", "    ")` (empty arrays and objects stay `[]` / `{}`).
//! Map ordering is the caller's job: use `BTreeMap` where Go would sort map keys.
//! Floating-point numbers are not formatted as Go would (none of the documents scry
//! prints has one).
//!
//! Reading: Go replaces every invalid UTF-8 byte and every unpaired UTF-16 surrogate
//! escape inside strings with U+FFFD instead of failing; [`sanitize_input`] rewrites
//! input so that serde_json then decodes it to the same strings.

use std::borrow::Cow;
use std::io;

use serde::Serialize;
use serde_json::ser::{CharEscape, CompactFormatter, Formatter, PrettyFormatter};

/// Serializes `value` exactly as Go's `json.MarshalIndent(v, "", "    ")` would (no
/// trailing newline). Panics if `value` has no JSON form (a map with non-string keys
/// that are not numbers either).
pub fn to_go_json_indent(value: &impl Serialize) -> String {
    write_with(value, GoFormatter(PrettyFormatter::with_indent(b"    ")))
}

/// Like [`to_go_json_indent`] with another indent (schema 1 manifests use three spaces).
pub fn to_go_json_indent_with(value: &impl Serialize, indent: &[u8]) -> String {
    write_with(value, GoFormatter(PrettyFormatter::with_indent(indent)))
}

/// Serializes `value` exactly as Go's `json.Marshal(v)` would.
pub fn to_go_json_compact(value: &impl Serialize) -> String {
    write_with(value, GoFormatter(CompactFormatter))
}

fn write_with<F: Formatter>(value: &impl Serialize, formatter: GoFormatter<F>) -> String {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    // Serializing into memory only fails for types whose Serialize impl errors
    // (e.g. maps with non-string keys), which the types printed here never have.
    value
        .serialize(&mut ser)
        .expect("serializing a value to JSON in memory");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Wraps a serde_json formatter and changes only how string contents are escaped.
struct GoFormatter<F>(F);

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_u_escape<W: ?Sized + io::Write>(w: &mut W, code: u32) -> io::Result<()> {
    let b = [
        b'\\',
        b'u',
        HEX[((code >> 12) & 0xf) as usize],
        HEX[((code >> 8) & 0xf) as usize],
        HEX[((code >> 4) & 0xf) as usize],
        HEX[(code & 0xf) as usize],
    ];
    w.write_all(&b)
}

impl<F: Formatter> Formatter for GoFormatter<F> {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            let code = match c {
                '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => c as u32,
                _ => continue,
            };
            writer.write_all(&fragment.as_bytes()[start..i])?;
            write_u_escape(writer, code)?;
            start = i + c.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }

    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        char_escape: CharEscape,
    ) -> io::Result<()> {
        match char_escape {
            CharEscape::Quote => writer.write_all(b"\\\""),
            CharEscape::ReverseSolidus => writer.write_all(b"\\\\"),
            CharEscape::Solidus => writer.write_all(b"/"),
            CharEscape::LineFeed => writer.write_all(b"\\n"),
            CharEscape::CarriageReturn => writer.write_all(b"\\r"),
            CharEscape::Tab => writer.write_all(b"\\t"),
            CharEscape::Backspace => write_u_escape(writer, 0x08),
            CharEscape::FormFeed => write_u_escape(writer, 0x0c),
            CharEscape::AsciiControl(b) => write_u_escape(writer, b as u32),
        }
    }

    fn begin_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    fn end_array<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    fn end_array_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    fn begin_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    fn end_object<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    fn end_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// Rewrites JSON text so that serde_json decodes its strings as Go does: each byte
/// that is not part of valid UTF-8 becomes U+FFFD, and each `\uXXXX` escape of a
/// surrogate that does not form a valid pair with the next escape becomes `\ufffd`.
/// Returns the input unchanged (borrowed) when nothing needed fixing.
pub fn sanitize_input(input: &[u8]) -> Cow<'_, [u8]> {
    let utf8 = fix_utf8(input);
    match fix_surrogates(&utf8) {
        Some(fixed) => Cow::Owned(fixed),
        None => utf8,
    }
}

fn fix_utf8(input: &[u8]) -> Cow<'_, [u8]> {
    if std::str::from_utf8(input).is_ok() {
        return Cow::Borrowed(input);
    }
    let mut out = Vec::with_capacity(input.len() + 16);
    let mut rest = input;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.extend_from_slice(s.as_bytes());
                break;
            }
            Err(e) => {
                let good = e.valid_up_to();
                out.extend_from_slice(&rest[..good]);
                // Go's decoder consumes one byte per invalid sequence start.
                out.extend_from_slice("\u{fffd}".as_bytes());
                rest = &rest[good + 1..];
            }
        }
    }
    Cow::Owned(out)
}

fn hex4(b: &[u8]) -> Option<u32> {
    if b.len() < 4 {
        return None;
    }
    let s = std::str::from_utf8(&b[..4]).ok()?;
    u32::from_str_radix(s, 16)
        .ok()
        .filter(|_| s.bytes().all(|c| c.is_ascii_hexdigit()))
}

fn escape_at(b: &[u8], i: usize) -> Option<u32> {
    if b.get(i) == Some(&b'\\') && b.get(i + 1) == Some(&b'u') {
        hex4(&b[i + 2..])
    } else {
        None
    }
}

fn fix_surrogates(input: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if !in_string {
            in_string = c == b'"';
            i += 1;
            continue;
        }
        match c {
            b'"' => {
                in_string = false;
                i += 1;
            }
            b'\\' => match escape_at(input, i) {
                Some(hi) if (0xd800..0xe000).contains(&hi) => {
                    let paired = (0xd800..0xdc00).contains(&hi)
                        && matches!(escape_at(input, i + 6), Some(lo) if (0xdc00..0xe000).contains(&lo));
                    if paired {
                        i += 12;
                    } else {
                        let buf = out.get_or_insert_with(|| Vec::with_capacity(input.len()));
                        buf.extend_from_slice(&input[copied..i]);
                        buf.extend_from_slice(b"\\ufffd");
                        i += 6;
                        copied = i;
                    }
                }
                _ => i += 2,
            },
            _ => i += 1,
        }
    }
    out.map(|mut buf| {
        buf.extend_from_slice(&input[copied.min(input.len())..]);
        buf
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::BTreeMap;

    #[test]
    fn escapes_like_go() {
        let v = json!({"k": "<a>&b\u{2028}\u{2029}/\u{7f}\u{1}\u{8}\u{c}\n\r\t\"\\é😀"});
        assert_eq!(
            to_go_json_compact(&v),
            r#"{"k":"\u003ca\u003e\u0026b\u2028\u2029/"#.to_string()
                + "\u{7f}"
                + r#"\u0001\u0008\u000c\n\r\t\"\\é😀"}"#
        );
    }

    #[test]
    fn keys_are_escaped_too() {
        let mut m = BTreeMap::new();
        m.insert("a<b", 1);
        assert_eq!(to_go_json_compact(&m), r#"{"a\u003cb":1}"#);
    }

    #[test]
    fn indent_matches_marshal_indent() {
        let v = json!({"a": [], "b": {}, "c": [1, "x"], "d": {"e": null, "f": true}});
        let want = "{\n    \"a\": [],\n    \"b\": {},\n    \"c\": [\n        1,\n        \"x\"\n    ],\n    \"d\": {\n        \"e\": null,\n        \"f\": true\n    }\n}";
        assert_eq!(to_go_json_indent(&v), want);
    }

    fn decode(input: &[u8]) -> String {
        let fixed = sanitize_input(input);
        let v: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        v["s"].as_str().unwrap().to_string()
    }

    #[test]
    fn invalid_utf8_becomes_one_replacement_per_byte() {
        assert_eq!(decode(b"{\"s\":\"x\xff\xfey\"}"), "x\u{fffd}\u{fffd}y");
        // A truncated three-byte sequence: Go emits one U+FFFD per byte.
        assert_eq!(decode(b"{\"s\":\"\xe2\x82y\"}"), "\u{fffd}\u{fffd}y");
        assert_eq!(decode("{\"s\":\"€\"}".as_bytes()), "€");
    }

    #[test]
    fn unpaired_surrogates_become_replacement() {
        assert_eq!(decode(br#"{"s":"\ud800z"}"#), "\u{fffd}z");
        assert_eq!(decode(br#"{"s":"\udc00"}"#), "\u{fffd}");
        assert_eq!(decode(br#"{"s":"\ud800\u0041"}"#), "\u{fffd}A");
        assert_eq!(decode(br#"{"s":"\ud83d\ude00"}"#), "😀");
        assert_eq!(decode(br#"{"s":"\\ud800"}"#), "\\ud800");
        assert!(matches!(
            sanitize_input(br#"{"s":"ok\n"}"#),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn surrogate_rewrite_leaves_text_outside_strings_alone() {
        let input = br#"{"\ud800": ["\udfff", 1]}"#;
        let fixed = sanitize_input(input);
        assert_eq!(&*fixed, br#"{"\ufffd": ["\ufffd", 1]}"#);
    }
}
