//! Raw JSON pieces as Go keeps them in `json.RawMessage`: the members of a top-level
//! object as unparsed byte ranges, and Go's `json.Compact` with HTML escaping, which is
//! what `json.Marshal` applies to a raw message it writes. Used to build documents from
//! pieces of others byte-for-byte as skopeo does (docker-archive's legacy per-layer
//! `json` files, the schema 2 config of a converted schema 1 image).

use crate::error::{Error, Result};

/// The members of the top-level object in `doc`, in document order: decoded key and
/// the raw bytes of the value. `doc` must be valid JSON (checked).
pub fn object_members(doc: &[u8]) -> Result<Vec<(String, &[u8])>> {
    serde_json::from_slice::<serde::de::IgnoredAny>(doc)
        .map_err(|e| Error::invalid(format!("invalid JSON: {e}")))?;
    let mut p = skip_ws(doc, 0);
    if doc.get(p) != Some(&b'{') {
        return Err(Error::invalid("expected a JSON object"));
    }
    p = skip_ws(doc, p + 1);
    let mut members = Vec::new();
    if doc.get(p) == Some(&b'}') {
        return Ok(members);
    }
    loop {
        let key_end = skip_value(doc, p);
        let key: String = serde_json::from_slice(&doc[p..key_end])
            .map_err(|e| Error::invalid(format!("invalid object key: {e}")))?;
        p = skip_ws(doc, key_end);
        // ':'
        p = skip_ws(doc, p + 1);
        let end = skip_value(doc, p);
        members.push((key, &doc[p..end]));
        p = skip_ws(doc, end);
        match doc.get(p) {
            Some(b',') => p = skip_ws(doc, p + 1),
            _ => return Ok(members),
        }
    }
}

fn skip_ws(doc: &[u8], mut p: usize) -> usize {
    while p < doc.len() && matches!(doc[p], b' ' | b'\t' | b'\n' | b'\r') {
        p += 1;
    }
    p
}

/// End (exclusive) of the JSON value starting at `p`, in a document known to be valid.
fn skip_value(doc: &[u8], p: usize) -> usize {
    let mut depth = 0usize;
    let mut i = p;
    while i < doc.len() {
        match doc[i] {
            b'"' => {
                i += 1;
                while i < doc.len() && doc[i] != b'"' {
                    if doc[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                i += 1;
                if depth == 0 {
                    return i;
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                if depth == 0 {
                    return i;
                }
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            b',' | b' ' | b'\t' | b'\n' | b'\r' if depth == 0 => return i,
            _ => {}
        }
        i += 1;
    }
    i
}

/// Go's `json.Compact` with HTML escaping: whitespace outside strings removed; `<`, `>`,
/// `&`, U+2028 and U+2029 written as `\u` escapes; everything else kept as is.
pub fn go_compact(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut in_string = false;
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        match c {
            b'<' | b'>' | b'&' => out.extend_from_slice(format!("\\u00{c:02x}").as_bytes()),
            0xe2 if raw.get(i + 1) == Some(&0x80)
                && matches!(raw.get(i + 2), Some(0xa8 | 0xa9)) =>
            {
                out.extend_from_slice(format!("\\u202{}", raw[i + 2] - 0xa0).as_bytes());
                i += 2;
            }
            b' ' | b'\t' | b'\n' | b'\r' if !in_string => {}
            b'"' => {
                in_string = !in_string;
                out.push(c);
            }
            b'\\' if in_string => {
                out.push(c);
                if let Some(&next) = raw.get(i + 1) {
                    out.push(next);
                    i += 1;
                }
            }
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
    fn splits_top_level_members_raw() {
        let doc =
            br#" { "a" : 1 , "b":{"x":[1, "}" ,{}]}, "c\u0041":"s\"t" ,"d":null,"e":-1.5e3 } "#;
        let m = object_members(doc).unwrap();
        let got: Vec<(&str, &str)> = m
            .iter()
            .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", "1"),
                ("b", r#"{"x":[1, "}" ,{}]}"#),
                ("cA", r#""s\"t""#),
                ("d", "null"),
                ("e", "-1.5e3"),
            ]
        );
        assert!(object_members(b"{}").unwrap().is_empty());
        assert!(object_members(b"[1]").is_err());
        assert!(object_members(b"{\"a\":").is_err());
    }

    #[test]
    fn compacts_like_go() {
        let raw =
            "{ \"Cmd\" : [ \"/bin/sh\", \"a < b && c > d\" ],\n \"x\\\" y\": \"\u{2028}\\n\" }";
        assert_eq!(
            String::from_utf8(go_compact(raw.as_bytes())).unwrap(),
            r#"{"Cmd":["/bin/sh","a \u003c b \u0026\u0026 c \u003e d"],"x\" y":"\u2028\n"}"#
        );
        assert_eq!(go_compact(b"\"\xe2\x80\xa9\""), b"\"\\u2029\"");
    }
}
