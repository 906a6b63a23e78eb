//! Raw JSON as Go's `json.RawMessage` handles it: splitting an object into its members
//! without decoding their values, and re-encoding a raw value the way `json.Marshal`
//! does (`compact` with HTML escaping), so that documents rebuilt from pieces of other
//! documents are byte-identical to what containers/image writes.

use crate::error::{Error, Result};

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The index just past the string starting at `b[i] == '"'`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// The index just past the JSON value starting at `b[i]`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// The members of the JSON object `bytes`, in document order: each key decoded, each
/// value as its raw text. Duplicate keys are all returned (Go keeps the last).
pub fn raw_object_members(bytes: &[u8]) -> Result<Vec<(String, &[u8])>> {
    let bad = || Error::invalid("expected a JSON object");
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return Err(bad());
    }
    i = skip_ws(bytes, i + 1);
    let mut out = Vec::new();
    if bytes.get(i) == Some(&b'}') {
        return Ok(out);
    }
    loop {
        if bytes.get(i) != Some(&b'"') {
            return Err(bad());
        }
        let key_end = string_end(bytes, i).ok_or_else(bad)?;
        let key: String = serde_json::from_slice(&super::sanitize_input(&bytes[i..key_end]))
            .map_err(|e| Error::invalid(format!("object key: {e}")))?;
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return Err(bad());
        }
        i = skip_ws(bytes, i + 1);
        let end = value_end(bytes, i).ok_or_else(bad)?;
        out.push((key, &bytes[i..end]));
        i = skip_ws(bytes, end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(bytes, i + 1),
            Some(b'}') => return Ok(out),
            _ => return Err(bad()),
        }
    }
}

/// Go's `json.Compact` with HTML escaping, which `json.Marshal` applies to a
/// `json.RawMessage`: whitespace outside strings is dropped, `<`, `>`, `&`, U+2028 and
/// U+2029 become `\u003c` … `\u2029`; everything else (existing escapes included) is
/// kept byte for byte.
pub fn compact_raw(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_string = false;
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        match c {
            b'<' | b'>' | b'&' => {
                out.extend_from_slice(format!("\\u00{c:02x}").as_bytes());
            }
            0xe2 if raw.get(i + 1) == Some(&0x80)
                && matches!(raw.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                out.extend_from_slice(if raw[i + 2] == 0xa8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                continue;
            }
            b'"' => {
                in_string = !in_string;
                out.push(c);
            }
            b'\\' if in_string => {
                out.push(c);
                if let Some(&n) = raw.get(i + 1) {
                    out.push(n);
                }
                i += 2;
                continue;
            }
            b' ' | b'\t' | b'\n' | b'\r' if !in_string => {}
            _ => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_members_keeping_raw_values() {
        let doc = br#" { "a" : [1, {"x": "}"}] , "b\u0041":"q\"<", "c":null,"d":-1.5e3 } "#;
        let m = raw_object_members(doc).unwrap();
        let got: Vec<(String, &str)> = m
            .iter()
            .map(|(k, v)| (k.clone(), std::str::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("a".to_string(), r#"[1, {"x": "}"}]"#),
                ("bA".to_string(), r#""q\"<""#),
                ("c".to_string(), "null"),
                ("d".to_string(), "-1.5e3"),
            ]
        );
        assert!(raw_object_members(b"[1]").is_err());
        assert!(raw_object_members(br#"{"a" 1}"#).is_err());
        assert!(raw_object_members(b"{}").unwrap().is_empty());
    }

    #[test]
    fn compacts_as_go_marshal_does() {
        let raw = "{ \"a b\" : [ \"<x> & \\\" \\u00e9 \u{2028}\" , 1 ]\n}".as_bytes();
        assert_eq!(
            String::from_utf8(compact_raw(raw)).unwrap(),
            r#"{"a b":["\u003cx\u003e \u0026 \" \u00e9 \u2028",1]}"#
        );
    }
}
