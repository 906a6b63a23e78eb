//! Validation of content digests (`algorithm:hex`) as written in references.
//!
//! Accepted algorithms are those a registry verifies: sha256, sha384 and sha512, with
//! exactly the matching number of lowercase hex digits. The failure reasons use the
//! wording users know from skopeo ("invalid checksum digest length", ...).

use crate::error::{Error, Result};

/// Expected hex length for a supported algorithm, `None` for an unsupported one.
fn hex_len(algorithm: &str) -> Option<usize> {
    match algorithm {
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    }
}

/// `[a-z0-9]+([.+_-][a-z0-9]+)*`: the shape of an algorithm name.
fn is_algorithm_shape(s: &str) -> bool {
    !s.is_empty()
        && s.split(['.', '+', '_', '-']).all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Why `digest` is not a valid digest, or `None` when it is.
pub(crate) fn digest_problem(digest: &str) -> Option<&'static str> {
    let Some((algorithm, encoded)) = digest.split_once(':') else {
        return Some("invalid checksum digest format");
    };
    if algorithm.is_empty() || encoded.is_empty() {
        return Some("invalid checksum digest format");
    }
    match hex_len(algorithm) {
        None => {
            let encoded_ok = encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
            if is_algorithm_shape(algorithm) && encoded_ok {
                Some("unsupported digest algorithm")
            } else {
                Some("invalid checksum digest format")
            }
        }
        Some(n) if encoded.len() != n => Some("invalid checksum digest length"),
        Some(_) => {
            if encoded
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            {
                None
            } else {
                Some("invalid checksum digest format")
            }
        }
    }
}

/// True for `sha256:<64 hex>`, `sha384:<96 hex>` or `sha512:<128 hex>` (lowercase hex).
pub fn is_valid_digest(digest: &str) -> bool {
    digest_problem(digest).is_none()
}

/// Checks a digest string; the error names the digest and the reason.
pub fn validate_digest(digest: &str) -> Result<()> {
    match digest_problem(digest) {
        None => Ok(()),
        Some(reason) => Err(Error::InvalidInput(format!(
            "invalid digest {digest:?}: {reason}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_table() {
        let h64 = "a".repeat(64);
        let cases: Vec<(String, Option<&str>)> = vec![
            (format!("sha256:{h64}"), None),
            (format!("sha384:{}", "0".repeat(96)), None),
            (format!("sha512:{}", "f".repeat(128)), None),
            (
                format!("sha256:{}", "A".repeat(64)),
                Some("invalid checksum digest format"),
            ),
            (
                format!("sha256:{}g", "a".repeat(63)),
                Some("invalid checksum digest format"),
            ),
            (
                format!("sha256:{h64}aa"),
                Some("invalid checksum digest length"),
            ),
            (
                format!("sha512:{h64}"),
                Some("invalid checksum digest length"),
            ),
            (
                "sha256:abc".to_string(),
                Some("invalid checksum digest length"),
            ),
            (format!("md5:{h64}"), Some("unsupported digest algorithm")),
            (
                format!("sha3.256:{h64}"),
                Some("unsupported digest algorithm"),
            ),
            (format!("MD5:{h64}"), Some("invalid checksum digest format")),
            (
                "sha256:".to_string(),
                Some("invalid checksum digest format"),
            ),
            (format!(":{h64}"), Some("invalid checksum digest format")),
            (h64.clone(), Some("invalid checksum digest format")),
            (String::new(), Some("invalid checksum digest format")),
        ];
        for (input, want) in cases {
            assert_eq!(digest_problem(&input), want, "input {input:?}");
            assert_eq!(is_valid_digest(&input), want.is_none(), "input {input:?}");
        }
    }

    #[test]
    fn validate_names_the_digest() {
        let e = validate_digest("sha256:xyz").unwrap_err();
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidInput);
        assert_eq!(
            e.to_string(),
            "invalid digest \"sha256:xyz\": invalid checksum digest length"
        );
        assert!(validate_digest(&format!("sha256:{}", "1".repeat(64))).is_ok());
    }
}
