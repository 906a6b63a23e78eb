//! Writing Docker schema 1 manifests (`--format v2s1`) from a schema 2 image: one
//! `fsLayers`/`history` pair per config history entry (empty layers become the well-known
//! empty gzip layer), `v1Compatibility` chained by synthetic IDs, the newest carrying the
//! image config, and a JWS signature (ES256, a key made for this manifest) in the form
//! registries and other tools parse.

use base64::Engine;
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey};
use openssl::ecdsa::EcdsaSig;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde_json::{json, Map, Value};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::manifest::{self, BlobRef};

/// The gzip of an empty tar, which schema 1 uses for layers that change nothing.
pub const EMPTY_LAYER: &[u8] = &[
    31, 139, 8, 0, 0, 9, 110, 136, 0, 255, 98, 24, 5, 163, 96, 20, 140, 88, 0, 8, 0, 0, 255, 255,
    46, 175, 181, 239, 0, 4, 0, 0,
];
pub const EMPTY_LAYER_DIGEST: &str =
    "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4";

/// What the schema 1 manifest is about.
pub struct Schema1Input<'a> {
    /// Repository name and tag recorded in the manifest.
    pub name: &'a str,
    pub tag: &'a str,
    /// The image config (OCI or Docker JSON).
    pub config: &'a [u8],
    /// The stored (compressed) layers, oldest first.
    pub layers: &'a [BlobRef],
}

/// The signed manifest, and whether it uses [`EMPTY_LAYER`] (which must then be stored).
pub fn write(input: &Schema1Input) -> Result<(Vec<u8>, bool)> {
    let config: Value = serde_json::from_slice(input.config)
        .map_err(|e| Error::invalid(format!("converting to schema 1: config is not JSON: {e}")))?;
    let cfg = config
        .as_object()
        .ok_or_else(|| Error::invalid("converting to schema 1: config is not a JSON object"))?;
    let arch = cfg
        .get("architecture")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let history: Vec<Value> = match cfg.get("history").and_then(Value::as_array) {
        Some(h) if !h.is_empty() => h.clone(),
        // Without history, one entry per layer.
        _ => input.layers.iter().map(|_| json!({})).collect(),
    };
    let non_empty = history
        .iter()
        .filter(|h| {
            !h.get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        })
        .count();
    if non_empty != input.layers.len() {
        return Err(Error::invalid(format!(
            "converting to schema 1: the config's history has {non_empty} layers, the manifest {}",
            input.layers.len()
        )));
    }

    let mut layer_iter = input.layers.iter();
    let mut parent = String::new();
    let mut uses_empty = false;
    let mut entries: Vec<(String, String)> = Vec::new(); // (blobSum, v1Compatibility), oldest first
    for (i, h) in history.iter().enumerate() {
        let empty = h
            .get("empty_layer")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let blob = if empty {
            uses_empty = true;
            EMPTY_LAYER_DIGEST.to_string()
        } else {
            layer_iter
                .next()
                .map(|l| l.digest.clone())
                .unwrap_or_default()
        };
        let id = hex::encode(Sha256::digest(format!(
            "{} {parent}",
            blob.trim_start_matches("sha256:")
        )));
        let last = i + 1 == history.len();
        let mut v1 = Map::new();
        if last {
            // The newest entry carries the image config itself.
            for (k, v) in cfg {
                if !matches!(k.as_str(), "rootfs" | "history") {
                    v1.insert(k.clone(), v.clone());
                }
            }
        }
        v1.insert("id".into(), json!(id));
        if !parent.is_empty() {
            v1.insert("parent".into(), json!(parent));
        }
        if !last {
            for key in ["comment", "created", "author"] {
                if let Some(v) = h
                    .get(key)
                    .filter(|v| !v.is_null() && v.as_str() != Some(""))
                {
                    v1.insert(key.into(), v.clone());
                }
            }
            let cmd = h.get("created_by").and_then(Value::as_str).unwrap_or("");
            v1.insert("container_config".into(), json!({ "Cmd": [cmd] }));
        }
        if empty {
            v1.insert("throwaway".into(), json!(true));
        }
        entries.push((blob, manifest::to_go_json_compact(&Value::Object(v1))));
        parent = id;
    }

    let mut m = Map::new();
    m.insert("schemaVersion".into(), json!(1));
    m.insert("name".into(), json!(input.name));
    m.insert("tag".into(), json!(input.tag));
    m.insert("architecture".into(), json!(arch));
    m.insert(
        "fsLayers".into(),
        Value::Array(
            entries
                .iter()
                .rev()
                .map(|(b, _)| json!({ "blobSum": b }))
                .collect(),
        ),
    );
    m.insert(
        "history".into(),
        Value::Array(
            entries
                .iter()
                .rev()
                .map(|(_, v)| json!({ "v1Compatibility": v }))
                .collect(),
        ),
    );
    let payload = manifest::to_go_json_indent_with(&Value::Object(m), b"   ");
    Ok((sign(payload.as_bytes())?, uses_empty))
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// Adds a JWS signature to pretty-printed JSON, as libtrust's `PrettySignature` lays
/// it out: the object's text up to its last member, `"signatures": [...]`, the tail.
fn sign(payload: &[u8]) -> Result<Vec<u8>> {
    let fail =
        |e: openssl::error::ErrorStack| Error::other(format!("signing the schema 1 manifest: {e}"));
    let close = payload
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .filter(|&i| payload[i] == b'}')
        .ok_or_else(|| Error::other("schema 1 payload does not end with }"))?;
    let format_length = payload[..close]
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map(|i| i + 1)
        .ok_or_else(|| Error::other("schema 1 payload is empty"))?;
    let tail = &payload[format_length..];

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(fail)?;
    let key = EcKey::generate(&group).map_err(fail)?;
    let (mut x, mut y) = (BigNum::new().map_err(fail)?, BigNum::new().map_err(fail)?);
    let mut ctx = BigNumContext::new().map_err(fail)?;
    key.public_key()
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
        .map_err(fail)?;
    let spki = PKey::from_ec_key(key.clone())
        .and_then(|k| k.public_key_to_der())
        .map_err(fail)?;
    let kid = key_id(&spki);

    let time = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let protected = b64(manifest::to_go_json_compact(&json!({
        "formatLength": format_length,
        "formatTail": b64(tail),
        "time": time,
    }))
    .as_bytes());
    let signing_input = format!("{protected}.{}", b64(payload));
    let digest = Sha256::digest(signing_input.as_bytes());
    let sig = EcdsaSig::sign(&digest, &key).map_err(fail)?;
    let mut raw = sig.r().to_vec_padded(32).map_err(fail)?;
    raw.extend(sig.s().to_vec_padded(32).map_err(fail)?);

    let mut header = Map::new();
    let mut jwk = Map::new();
    jwk.insert("crv".into(), json!("P-256"));
    jwk.insert("kid".into(), json!(kid));
    jwk.insert("kty".into(), json!("EC"));
    jwk.insert("x".into(), json!(b64(&x.to_vec_padded(32).map_err(fail)?)));
    jwk.insert("y".into(), json!(b64(&y.to_vec_padded(32).map_err(fail)?)));
    header.insert("jwk".into(), Value::Object(jwk));
    header.insert("alg".into(), json!("ES256"));
    let mut signature = Map::new();
    signature.insert("header".into(), Value::Object(header));
    signature.insert("signature".into(), json!(b64(&raw)));
    signature.insert("protected".into(), json!(protected));
    let sigs = Value::Array(vec![Value::Object(signature)]);
    // The signatures array indented as a member of the top object.
    let sigs_text = manifest::to_go_json_indent_with(&sigs, b"   ").replace('\n', "\n   ");

    let mut out = Vec::with_capacity(payload.len() + sigs_text.len() + 32);
    out.extend_from_slice(&payload[..format_length]);
    out.extend_from_slice(b",\n   \"signatures\": ");
    out.extend_from_slice(sigs_text.as_bytes());
    out.extend_from_slice(tail);
    Ok(out)
}

/// libtrust's key ID: the SHA-256 of the DER public key, its first 240 bits in base32,
/// in groups of four separated by colons.
fn key_id(spki_der: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let hash = Sha256::digest(spki_der);
    let bits = &hash[..30];
    let mut chars = String::new();
    let mut acc: u64 = 0;
    let mut n = 0;
    for &b in bits {
        acc = (acc << 8) | b as u64;
        n += 8;
        while n >= 5 {
            n -= 5;
            chars.push(ALPHABET[((acc >> n) & 31) as usize] as char);
        }
    }
    chars
        .as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Manifest;

    #[test]
    fn empty_layer_bytes_match_their_digest() {
        assert_eq!(manifest::sha256_digest(EMPTY_LAYER), EMPTY_LAYER_DIGEST);
    }

    #[test]
    fn writes_a_signed_manifest_that_parses_and_digests_as_its_payload() {
        let layer = BlobRef {
            digest: format!("sha256:{}", "a".repeat(64)),
            size: 10,
            media_type: manifest::media_types::DOCKER_LAYER_GZIP.into(),
            annotations: None,
            urls: None,
            empty_layer: false,
        };
        let config = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":["sha256:bb"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"ADD x"},{"created":"2024-01-01T00:00:01Z","created_by":"ENV A=1","empty_layer":true}]}"#;
        let (bytes, uses_empty) = write(&Schema1Input {
            name: "team/app",
            tag: "1",
            config,
            layers: std::slice::from_ref(&layer),
        })
        .unwrap();
        assert!(uses_empty);
        let m = Manifest::parse(&bytes, manifest::media_types::DOCKER_V2S1_SIGNED).unwrap();
        let layers = m.layers();
        assert_eq!(layers.len(), 2);
        assert_eq!(layers[0].digest, layer.digest);
        assert_eq!(layers[1].digest, EMPTY_LAYER_DIGEST);
        // The digest is the payload's: the same manifest without signatures.
        let payload = manifest::jws_payload(&bytes).unwrap();
        assert!(!String::from_utf8_lossy(&payload).contains("signatures"));
        assert_eq!(
            manifest::manifest_digest(&bytes).unwrap(),
            manifest::sha256_digest(&payload)
        );
        let cfg = m.image_config(None).unwrap();
        assert_eq!(cfg.architecture, "amd64");
        assert_eq!(key_id(b"x").len(), 59);
    }

    #[test]
    fn history_must_match_layers() {
        let config =
            br#"{"architecture":"amd64","history":[{"created_by":"a"},{"created_by":"b"}]}"#;
        assert!(write(&Schema1Input {
            name: "a",
            tag: "b",
            config,
            layers: &[],
        })
        .is_err());
    }
}
