//! Digests of blobs and manifests, and telling a manifest's media type from its bytes.
//!
//! A signed schema 1 manifest's digest covers the JWS payload (the document without
//! its `signatures`), as Docker and containers/image compute it.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::godecode::parse_value;
use super::media_types::*;
use crate::error::{Error, Result};

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Checks that `digest` is `algorithm:hex` with a known algorithm and the right
/// length (sha256: 64, sha384: 96, sha512: 128 lowercase hex digits). Use before
/// putting a digest into a URL or a path.
pub fn validate_digest(digest: &str) -> Result<()> {
    let bad = |why: &str| Err(Error::invalid(format!("invalid digest {digest:?}: {why}")));
    let Some((algo, hex)) = digest.split_once(':') else {
        return bad("missing algorithm prefix");
    };
    let want = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return bad("unsupported algorithm"),
    };
    if hex.len() != want || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return bad(&format!("expected {want} lowercase hex digits"));
    }
    Ok(())
}

/// The digest a registry gives these manifest bytes: for a signed schema 1 manifest,
/// sha256 of the JWS payload; otherwise sha256 of the bytes.
pub fn manifest_digest(bytes: &[u8]) -> Result<String> {
    if guess_media_type(bytes) == DOCKER_V2S1_SIGNED {
        let payload = jws_payload(bytes)
            .map_err(|e| e.context("computing the digest of a signed schema 1 manifest"))?;
        return Ok(sha256_digest(&payload));
    }
    Ok(sha256_digest(bytes))
}

fn jose_b64_decode(s: &str) -> Result<Vec<u8>> {
    let s: String = s.chars().filter(|c| *c != '\n' && *c != ' ').collect();
    if s.len() % 4 == 1 {
        return Err(Error::invalid("illegal base64url string"));
    }
    let engine = GeneralPurpose::new(
        &URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    engine
        .decode(s.as_bytes())
        .map_err(|e| Error::invalid(format!("base64 decode error: {e}")))
}

/// The payload of a "pretty" JWS (libtrust format): the first `formatLength` bytes of
/// the document followed by the decoded `formatTail`, both taken from the protected
/// headers of the signatures (which must agree).
pub fn jws_payload(content: &[u8]) -> Result<Vec<u8>> {
    let doc = parse_value(content)
        .map_err(|e| Error::invalid(format!("error unmarshalling content: {e}")))?;
    let sigs = doc
        .as_object()
        .ok_or_else(|| Error::invalid("error unmarshalling content: not a JSON object"))?
        .get("signatures")
        .ok_or_else(|| Error::invalid("missing signature key"))?;
    let sigs = sigs
        .as_array()
        .ok_or_else(|| Error::invalid("error unmarshalling signatures: not an array"))?;
    let mut format_length: Option<usize> = None;
    let mut format_tail: Option<Vec<u8>> = None;
    for sig in sigs {
        let protected = match sig.get("protected") {
            Some(Value::String(s)) => s.as_str(),
            None | Some(Value::Null) => "",
            Some(_) => {
                return Err(Error::invalid(
                    "error unmarshalling signatures: bad protected header",
                ))
            }
        };
        let header_bytes = jose_b64_decode(protected)?;
        let header: Value = serde_json::from_slice(&header_bytes)
            .map_err(|e| Error::invalid(format!("error unmarshalling protected header: {e}")))?;
        let len = header
            .get("formatLength")
            .and_then(Value::as_f64)
            .ok_or_else(|| Error::invalid("missing formatted length"))?;
        let tail = header
            .get("formatTail")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid("missing formatted tail"))?;
        let tail = jose_b64_decode(tail)
            .map_err(|e| Error::invalid(format!("base64 decode error on tail: {e}")))?;
        if len < 0.0 {
            return Err(Error::invalid("invalid format length"));
        }
        let len = len as usize;
        match format_length {
            None | Some(0) => format_length = Some(len),
            Some(l) if l != len => return Err(Error::invalid("conflicting format length")),
            Some(_) => {}
        }
        match &format_tail {
            Some(t) if !t.is_empty() && *t != tail => {
                return Err(Error::invalid("conflicting format tail"))
            }
            Some(t) if !t.is_empty() => {}
            _ => format_tail = Some(tail),
        }
    }
    let len = format_length.unwrap_or(0);
    if len > content.len() {
        return Err(Error::invalid("invalid format length"));
    }
    let mut payload = content[..len].to_vec();
    payload.extend_from_slice(&format_tail.unwrap_or_default());
    Ok(payload)
}

/// Go `json.Unmarshal` key matching: the last key equal ignoring ASCII case.
fn field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// A string field as Go decodes it: absent or null is "", another type is an error.
fn string_field<'a>(obj: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a str> {
    match field(obj, name) {
        None | Some(Value::Null) => Some(""),
        Some(Value::String(s)) => Some(s),
        Some(_) => None,
    }
}

/// The manifest media type of `bytes` judged from its content (containers/image's
/// `GuessMIMEType`), or "" when it is not recognisable as a manifest.
pub fn guess_media_type(bytes: &[u8]) -> String {
    guess(bytes).unwrap_or("").to_string()
}

fn guess(bytes: &[u8]) -> Option<&'static str> {
    let doc = parse_value(bytes).ok()?;
    let obj = doc.as_object()?;
    let media_type = string_field(obj, "mediaType")?;
    let schema_version = match field(obj, "schemaVersion") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_i64()?,
        Some(_) => return None,
    };
    let signed = !matches!(field(obj, "signatures"), None | Some(Value::Null));
    for known in [DOCKER_V2S2, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX] {
        if media_type == known {
            return Some(known);
        }
    }
    match schema_version {
        1 if signed => Some(DOCKER_V2S1_SIGNED),
        1 => Some(DOCKER_V2S1),
        2 => {
            let config_type = match field(obj, "config") {
                None | Some(Value::Null) => "",
                Some(Value::Object(c)) => string_field(c, "mediaType")?,
                Some(_) => return None,
            };
            match config_type {
                OCI_CONFIG => return Some(OCI_MANIFEST),
                DOCKER_CONFIG => return Some(DOCKER_V2S2),
                _ => {}
            }
            let has_manifests = match field(obj, "manifests") {
                None | Some(Value::Null) => false,
                Some(Value::Array(items)) => {
                    if !items.iter().all(|i| i.is_object() || i.is_null()) {
                        return None;
                    }
                    !items.is_empty()
                }
                Some(_) => return None,
            };
            if has_manifests && config_type.is_empty() {
                return Some(OCI_INDEX);
            }
            // An artifact with a custom config type, or an index that also names a
            // config: an OCI manifest is the most useful reading.
            Some(OCI_MANIFEST)
        }
        _ => None,
    }
}

/// The media type to parse a fetched manifest as: the `Content-Type` (parameters
/// dropped) when it names a manifest format; otherwise the type guessed from the
/// content; failing both, signed schema 1, as containers/image assumes for registries
/// that label schema 1 `application/json` or mislabel it.
pub fn normalize_media_type(header: Option<&str>, bytes: &[u8]) -> String {
    if let Some(h) = header {
        let h = strip_parameters(h);
        if is_manifest(&h) {
            return h;
        }
    }
    match guess(bytes) {
        Some(mt) => mt.to_string(),
        None => DOCKER_V2S1_SIGNED.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn digest_validation() {
        validate_digest(&sha256_digest(b"x")).unwrap();
        validate_digest(&format!("sha512:{}", "0".repeat(128))).unwrap();
        for bad in [
            "sha256",
            "sha256:abc",
            "md5:d41d8cd98f00b204e9800998ecf8427e",
            &format!("sha256:{}", "A".repeat(64)),
            &format!("sha256:{}/..", "a".repeat(61)),
        ] {
            assert!(validate_digest(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn guesses() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#,
                DOCKER_V2S2,
            ),
            (
                r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json"}"#,
                DOCKER_LIST,
            ),
            (
                r#"{"MEDIATYPE":"application/vnd.oci.image.index.v1+json"}"#,
                OCI_INDEX,
            ),
            (r#"{"schemaVersion":1,"signatures":[]}"#, DOCKER_V2S1_SIGNED),
            (r#"{"schemaVersion":1,"signatures":null}"#, DOCKER_V2S1),
            (r#"{"schemaVersion":1}"#, DOCKER_V2S1),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json"}}"#,
                OCI_MANIFEST,
            ),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.docker.container.image.v1+json"}}"#,
                DOCKER_V2S2,
            ),
            (
                r#"{"schemaVersion":2,"manifests":[{"digest":"sha256:a"}]}"#,
                OCI_INDEX,
            ),
            (
                r#"{"schemaVersion":2,"config":{"mediaType":"application/x-custom"}}"#,
                OCI_MANIFEST,
            ),
            (r#"{"schemaVersion":2,"manifests":[]}"#, OCI_MANIFEST),
            (r#"{"schemaVersion":3}"#, ""),
            (r#"{"schemaVersion":"2"}"#, ""),
            (r#"{"schemaVersion":2.5}"#, ""),
            (r#"{"mediaType":5,"schemaVersion":2}"#, ""),
            (r#"[1]"#, ""),
            ("garbage", ""),
            (r#"{"mediaType":"text/plain"}"#, ""),
        ];
        for (doc, want) in cases {
            assert_eq!(guess_media_type(doc.as_bytes()), *want, "{doc}");
        }
    }

    #[test]
    fn normalize_prefers_a_known_header() {
        let v2 = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json"}"#;
        assert_eq!(
            normalize_media_type(
                Some("application/vnd.oci.image.manifest.v1+json; charset=utf-8"),
                v2
            ),
            OCI_MANIFEST
        );
        assert_eq!(normalize_media_type(Some("text/plain"), v2), DOCKER_V2S2);
        assert_eq!(normalize_media_type(None, v2), DOCKER_V2S2);
        assert_eq!(
            normalize_media_type(Some("application/json"), b"{}"),
            DOCKER_V2S1_SIGNED
        );
        assert_eq!(normalize_media_type(None, b"junk"), DOCKER_V2S1_SIGNED);
    }

    fn b64(s: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    }

    fn signed(body: &str, tail: &str, sigs: usize) -> Vec<u8> {
        // libtrust's layout: the body minus its closing brace, the signatures array,
        // and the tail that restores the payload.
        let cut = body.rfind('}').unwrap();
        let len = cut;
        let header = format!(
            r#"{{"formatLength":{len},"formatTail":"{}"}}"#,
            b64(tail.as_bytes())
        );
        let sig = format!(
            r#"{{"header":{{"alg":"ES256"}},"signature":"x","protected":"{}"}}"#,
            b64(header.as_bytes())
        );
        let sigs = vec![sig; sigs].join(",");
        format!("{},\"signatures\":[{}]}}", &body[..cut], sigs).into_bytes()
    }

    #[test]
    fn signed_schema1_digest_covers_payload_only() {
        let body = "{\n   \"schemaVersion\": 1,\n   \"name\": \"a\"\n}";
        let doc = signed(body, "}", 2);
        assert_eq!(guess_media_type(&doc), DOCKER_V2S1_SIGNED);
        assert_eq!(
            manifest_digest(&doc).unwrap(),
            sha256_digest(body.as_bytes())
        );
        assert_eq!(jws_payload(&doc).unwrap(), body.as_bytes());
        // Unsigned documents hash as they are.
        assert_eq!(
            manifest_digest(body.as_bytes()).unwrap(),
            sha256_digest(body.as_bytes())
        );
    }

    #[test]
    fn bad_signatures_fail() {
        let body = r#"{"schemaVersion":1}"#;
        let mut doc = signed(body, "}", 1);
        let s = String::from_utf8(doc.clone()).unwrap();
        let broken = s.replace("\"protected\":\"", "\"protected\":\"!!");
        let e = manifest_digest(broken.as_bytes()).unwrap_err();
        assert!(e.to_string().contains("base64"), "{e}");
        let no_len = format!(
            r#"{{"schemaVersion":1,"signatures":[{{"protected":"{}"}}]}}"#,
            b64(br#"{"formatTail":"fQ"}"#)
        );
        assert!(manifest_digest(no_len.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("missing formatted length"));
        let too_long = format!(
            r#"{{"schemaVersion":1,"signatures":[{{"protected":"{}"}}]}}"#,
            b64(br#"{"formatLength":100000,"formatTail":"fQ"}"#)
        );
        assert!(manifest_digest(too_long.as_bytes())
            .unwrap_err()
            .to_string()
            .contains("invalid format length"));
        // No signatures at all: an empty payload, as libtrust computes it.
        doc = br#"{"schemaVersion":1,"signatures":[]}"#.to_vec();
        assert_eq!(manifest_digest(&doc).unwrap(), sha256_digest(b""));
    }
}
