//! Manifest formats the copy engine writes: choosing the output format, mapping layer
//! media types between formats and compressions, and serialising manifests and indexes
//! with the field order Go's encoders use (so unchanged inputs stay byte-identical and
//! changed ones look like what other tools write).

use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::manifest::media_types::{self as mt, Compression};
use crate::manifest::{BlobRef, Manifest};

/// A manifest format scry can write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ManifestFormat {
    Oci,
    DockerV2S2,
    DockerV2S1,
}

impl ManifestFormat {
    /// `--format` values: `oci`, `v2s2`, `v2s1`.
    pub fn parse(s: &str) -> Result<ManifestFormat> {
        match s {
            "oci" => Ok(ManifestFormat::Oci),
            "v2s2" => Ok(ManifestFormat::DockerV2S2),
            "v2s1" => Ok(ManifestFormat::DockerV2S1),
            _ => Err(Error::invalid(format!(
                "unknown manifest format {s:?} (use oci, v2s2 or v2s1)"
            ))),
        }
    }

    pub fn manifest_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => mt::OCI_MANIFEST,
            ManifestFormat::DockerV2S2 => mt::DOCKER_V2S2,
            ManifestFormat::DockerV2S1 => mt::DOCKER_V2S1_SIGNED,
        }
    }

    pub fn index_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => mt::OCI_INDEX,
            _ => mt::DOCKER_LIST,
        }
    }

    pub fn config_type(self) -> &'static str {
        match self {
            ManifestFormat::Oci => mt::OCI_CONFIG,
            _ => mt::DOCKER_CONFIG,
        }
    }

    /// The format a single-image manifest media type belongs to.
    pub fn of(media_type: &str) -> Option<ManifestFormat> {
        match media_type {
            mt::OCI_MANIFEST | mt::OCI_INDEX => Some(ManifestFormat::Oci),
            mt::DOCKER_V2S2 | mt::DOCKER_LIST => Some(ManifestFormat::DockerV2S2),
            mt::DOCKER_V2S1 | mt::DOCKER_V2S1_SIGNED => Some(ManifestFormat::DockerV2S1),
            _ => None,
        }
    }
}

/// Picks the output format: the asked one, else the source's when the destination
/// stores it, else the destination's first preference scry can write.
pub fn choose_format(
    source_type: &str,
    asked: Option<ManifestFormat>,
    supported: &[String],
) -> Result<ManifestFormat> {
    let source = ManifestFormat::of(source_type)
        .ok_or_else(|| Error::Unsupported(format!("copying manifests of type {source_type:?}")))?;
    let ok = |f: ManifestFormat| {
        supported.is_empty()
            || supported
                .iter()
                .any(|s| s == f.manifest_type() || ManifestFormat::of(s) == Some(f))
    };
    if let Some(f) = asked {
        if !ok(f) {
            return Err(Error::Unsupported(format!(
                "the destination does not accept {} manifests",
                f.manifest_type()
            )));
        }
        return Ok(f);
    }
    if ok(source) {
        return Ok(source);
    }
    for f in [ManifestFormat::Oci, ManifestFormat::DockerV2S2] {
        if ok(f) {
            return Ok(f);
        }
    }
    Err(Error::Unsupported(format!(
        "the destination accepts none of the manifest types scry writes ({})",
        supported.join(", ")
    )))
}

/// The layer media type for `compression` in `format`, keeping the non-distributable
/// flavour of OCI layers.
pub fn layer_media_type(
    source_type: &str,
    format: ManifestFormat,
    compression: Compression,
) -> Result<String> {
    let nondist = mt::is_non_distributable_layer(source_type);
    let t = match (format, compression, nondist) {
        (ManifestFormat::Oci, Compression::None, false) => mt::OCI_LAYER_TAR,
        (ManifestFormat::Oci, Compression::Gzip, false) => mt::OCI_LAYER_GZIP,
        (ManifestFormat::Oci, Compression::Zstd, false) => mt::OCI_LAYER_ZSTD,
        (ManifestFormat::Oci, Compression::None, true) => mt::OCI_LAYER_NONDIST_TAR,
        (ManifestFormat::Oci, Compression::Gzip, true) => mt::OCI_LAYER_NONDIST_GZIP,
        (ManifestFormat::Oci, Compression::Zstd, true) => mt::OCI_LAYER_NONDIST_ZSTD,
        (_, Compression::None, _) => DOCKER_LAYER_TAR,
        (_, Compression::Gzip, true) => mt::DOCKER_FOREIGN_LAYER,
        (_, Compression::Gzip, false) => mt::DOCKER_LAYER_GZIP,
        (_, Compression::Zstd, false) => mt::DOCKER_LAYER_ZSTD,
        (_, Compression::Zstd, true) => {
            return Err(Error::Unsupported(
                "zstd-compressed foreign layers cannot be written in a Docker manifest".into(),
            ))
        }
    };
    Ok(t.to_string())
}

/// Docker layer, uncompressed tar (docker-archive and `dir:` with decompression).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// Compression of a layer media type, including the uncompressed Docker type.
pub fn compression_of(media_type: &str) -> Option<Compression> {
    if media_type == DOCKER_LAYER_TAR {
        return Some(Compression::None);
    }
    mt::layer_compression(media_type)
}

/// The OCI image config containers/image writes for a Docker schema 2 config when it
/// converts an image to OCI: the config decoded as an OCI image config (Docker-only
/// fields such as `container_config` and `docker_version` dropped) and re-encoded
/// compactly, in the OCI struct's field order.
pub fn docker_config_to_oci(config: &[u8]) -> Result<Vec<u8>> {
    let parsed = crate::manifest::parse_config(config)
        .map_err(|e| e.context("converting the image config to OCI"))?;
    Ok(parsed.to_oci_json_compact().into_bytes())
}

/// Serialises a single-image manifest in `format` (OCI or Docker schema 2).
pub fn write_manifest(
    format: ManifestFormat,
    source: &Manifest,
    config: &BlobRef,
    layers: &[BlobRef],
) -> Result<Vec<u8>> {
    let annotations = source.annotations();
    let mut m = Map::new();
    m.insert("schemaVersion".into(), json!(2));
    match format {
        ManifestFormat::Oci => {
            m.insert("mediaType".into(), json!(mt::OCI_MANIFEST));
            m.insert("config".into(), oci_descriptor(config, mt::OCI_CONFIG));
            let ls: Vec<Value> = layers
                .iter()
                .map(|l| oci_descriptor(l, &l.media_type))
                .collect();
            m.insert("layers".into(), Value::Array(ls));
            if let Some(a) = annotations.filter(|a| !a.is_empty()) {
                m.insert("annotations".into(), json!(a));
            }
        }
        ManifestFormat::DockerV2S2 => {
            m.insert("mediaType".into(), json!(mt::DOCKER_V2S2));
            m.insert(
                "config".into(),
                docker_descriptor(config, mt::DOCKER_CONFIG),
            );
            let ls: Vec<Value> = layers
                .iter()
                .map(|l| docker_descriptor(l, &l.media_type))
                .collect();
            m.insert("layers".into(), Value::Array(ls));
        }
        ManifestFormat::DockerV2S1 => {
            // Schema 1 needs the config and a signature: `copy::schema1` writes it.
            return Err(Error::other(
                "internal: schema 1 manifests are written by the schema 1 writer",
            ));
        }
    }
    serde_json::to_vec(&Value::Object(m))
        .map_err(|e| Error::other(format!("encoding manifest: {e}")))
}

fn oci_descriptor(d: &BlobRef, media_type: &str) -> Value {
    let mut m = Map::new();
    m.insert("mediaType".into(), json!(media_type));
    m.insert("digest".into(), json!(d.digest));
    m.insert("size".into(), json!(d.size));
    if let Some(u) = d.urls.as_ref().filter(|u| !u.is_empty()) {
        m.insert("urls".into(), json!(u));
    }
    if let Some(a) = d.annotations.as_ref().filter(|a| !a.is_empty()) {
        m.insert("annotations".into(), json!(a));
    }
    Value::Object(m)
}

fn docker_descriptor(d: &BlobRef, media_type: &str) -> Value {
    let mut m = Map::new();
    m.insert("mediaType".into(), json!(media_type));
    m.insert("size".into(), json!(d.size));
    m.insert("digest".into(), json!(d.digest));
    if let Some(u) = d.urls.as_ref().filter(|u| !u.is_empty()) {
        m.insert("urls".into(), json!(u));
    }
    Value::Object(m)
}

/// One entry of an index being rewritten.
pub struct IndexEntry {
    /// The entry as it was in the source index (platform, annotations…), as JSON.
    pub original: Value,
    pub digest: String,
    pub size: i64,
    pub media_type: String,
}

/// Rewrites an index: only `entries` (in order), with their new digests, sizes and
/// media types, in the index type of `format`. Other top-level fields are kept.
pub fn write_index(
    source: &[u8],
    format: ManifestFormat,
    entries: &[IndexEntry],
) -> Result<Vec<u8>> {
    let mut v: Value = serde_json::from_slice(source)
        .map_err(|e| Error::invalid(format!("parsing index: {e}")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| Error::invalid("index is not a JSON object"))?;
    let mut out = Map::new();
    out.insert("schemaVersion".into(), json!(2));
    out.insert("mediaType".into(), json!(format.index_type()));
    let ms: Vec<Value> = entries
        .iter()
        .map(|e| {
            let mut m = Map::new();
            m.insert("mediaType".into(), json!(e.media_type));
            if format == ManifestFormat::Oci {
                m.insert("digest".into(), json!(e.digest));
                m.insert("size".into(), json!(e.size));
            } else {
                m.insert("size".into(), json!(e.size));
                m.insert("digest".into(), json!(e.digest));
            }
            for (k, val) in e.original.as_object().into_iter().flatten() {
                if !matches!(k.as_str(), "mediaType" | "digest" | "size") {
                    if format != ManifestFormat::Oci && k == "annotations" {
                        continue;
                    }
                    m.insert(k.clone(), val.clone());
                }
            }
            Value::Object(m)
        })
        .collect();
    out.insert("manifests".into(), Value::Array(ms));
    for (k, val) in obj.iter() {
        if !matches!(k.as_str(), "schemaVersion" | "mediaType" | "manifests") {
            if format != ManifestFormat::Oci && k == "annotations" {
                continue;
            }
            out.insert(k.clone(), val.clone());
        }
    }
    serde_json::to_vec(&Value::Object(out))
        .map_err(|e| Error::other(format!("encoding index: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chooses_formats() {
        let none: Vec<String> = vec![];
        assert_eq!(
            choose_format(mt::OCI_MANIFEST, None, &none).unwrap(),
            ManifestFormat::Oci
        );
        assert_eq!(
            choose_format(mt::OCI_MANIFEST, Some(ManifestFormat::DockerV2S2), &none).unwrap(),
            ManifestFormat::DockerV2S2
        );
        let docker_only = vec![mt::DOCKER_V2S2.to_string()];
        assert_eq!(
            choose_format(mt::OCI_MANIFEST, None, &docker_only).unwrap(),
            ManifestFormat::DockerV2S2
        );
        assert!(choose_format(mt::OCI_MANIFEST, Some(ManifestFormat::Oci), &docker_only).is_err());
        assert!(choose_format("text/plain", None, &none).is_err());
    }

    #[test]
    fn maps_layer_types() {
        assert_eq!(
            layer_media_type(
                mt::OCI_LAYER_GZIP,
                ManifestFormat::DockerV2S2,
                Compression::Gzip
            )
            .unwrap(),
            mt::DOCKER_LAYER_GZIP
        );
        assert_eq!(
            layer_media_type(
                mt::DOCKER_LAYER_GZIP,
                ManifestFormat::Oci,
                Compression::Zstd
            )
            .unwrap(),
            mt::OCI_LAYER_ZSTD
        );
        assert_eq!(
            layer_media_type(
                mt::DOCKER_LAYER_GZIP,
                ManifestFormat::DockerV2S2,
                Compression::None
            )
            .unwrap(),
            DOCKER_LAYER_TAR
        );
        assert_eq!(compression_of(DOCKER_LAYER_TAR), Some(Compression::None));
    }

    #[test]
    fn writes_docker_manifest_in_go_field_order() {
        let src = Manifest::parse(
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[]}"#,
            mt::OCI_MANIFEST,
        )
        .unwrap();
        let cfg = src.config().unwrap();
        let layer = BlobRef {
            digest: format!("sha256:{}", "b".repeat(64)),
            size: 5,
            media_type: mt::DOCKER_LAYER_GZIP.into(),
            annotations: None,
            urls: None,
            empty_layer: false,
        };
        let out = write_manifest(ManifestFormat::DockerV2S2, &src, &cfg, &[layer]).unwrap();
        let s = String::from_utf8(out).unwrap();
        assert!(s.starts_with(r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":2,"digest":"sha256:aaaa"#), "{s}");
        Manifest::parse(s.as_bytes(), mt::DOCKER_V2S2).unwrap();
    }

    #[test]
    fn docker_configs_become_skopeos_oci_configs() {
        for (from, to) in [
            ("docker-config.json", "docker-to-oci-config.json"),
            ("schema1-to-v2s2-config.json", "schema1-to-oci-config.json"),
        ] {
            let got = docker_config_to_oci(&crate::manifest::testdata("convert", from)).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&crate::manifest::testdata("convert", to)),
                "{from}"
            );
        }
        assert!(docker_config_to_oci(b"[]").is_err());
    }
}
