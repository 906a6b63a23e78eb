//! Manifest formats: OCI image manifest and index, Docker schema 2 manifest and list,
//! Docker schema 1 (read only); media types, digests, platform choice, image
//! configuration, and the JSON that `skopeo inspect` prints.
//!
//! Parsing is as lenient as containers/image (unknown fields ignored, `null` as
//! absent) and as strict where it is strict (ambiguous documents, schema 1 layer
//! chains). JSON meant for users goes through [`to_go_json_indent`] so it is
//! byte-identical to skopeo's.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

pub mod config;
mod digest;
pub mod formats;
mod godecode;
mod gojson;
pub mod gotime;
pub mod inspect;
pub mod jsonraw;
pub mod media_types;
mod platform;
pub mod schema1;

pub use config::{inspect_config_json, parse_config, History, ImageConfig};
pub use digest::{
    guess_media_type, jws_payload, manifest_digest, normalize_media_type, sha256_digest,
    validate_digest,
};
pub use formats::{Descriptor, ImageIndex, ImageManifest, Platform};
pub use gojson::{sanitize_input, to_go_json_compact, to_go_json_indent, to_go_json_indent_with};
pub use gotime::GoTime;
pub use inspect::{build_inspect, InspectLayer, InspectOutput};
pub use media_types::MANIFEST_ACCEPT;
pub use platform::{
    choose_instance, host_arch, host_os, host_variant, variant_from_cpuinfo, PlatformChoice,
    WantedPlatform,
};
pub use schema1::Schema1;

/// Largest manifest scry reads (as containers/image and the distribution registry).
pub const MAX_MANIFEST_SIZE: usize = 4 * 1024 * 1024;
/// Largest image configuration blob scry reads (as containers/image).
pub const MAX_CONFIG_SIZE: usize = 4 * 1024 * 1024;

/// A blob an image manifest refers to (config or layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    pub digest: String,
    /// -1 when the manifest does not say (schema 1).
    pub size: i64,
    pub media_type: String,
    pub annotations: Option<BTreeMap<String, String>>,
    pub urls: Option<Vec<String>>,
    /// Schema 1 only: the layer is marked `throwaway` (an empty tar).
    pub empty_layer: bool,
}

/// One entry of an index or manifest list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub digest: String,
    pub size: i64,
    pub media_type: String,
    /// `None` when an OCI index entry has no platform.
    pub platform: Option<Platform>,
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A parsed manifest of any supported format.
#[derive(Debug, Clone, PartialEq)]
pub enum Manifest {
    Oci(ImageManifest),
    Docker2(ImageManifest),
    Schema1(Box<Schema1>),
    OciIndex(ImageIndex),
    DockerList(ImageIndex),
}

impl BlobRef {
    fn from_descriptor(d: &Descriptor) -> BlobRef {
        BlobRef {
            digest: d.digest.clone(),
            size: d.size,
            media_type: d.media_type.clone(),
            annotations: d.annotations.clone(),
            urls: d.urls.clone(),
            empty_layer: false,
        }
    }
}

/// containers/image refuses a document carrying members of another format, so that
/// one set of bytes cannot be read as two different images.
fn reject_ambiguous(bytes: &[u8], media_type: &str, allowed: &[&str]) -> Result<()> {
    let value = godecode::parse_value(bytes).map_err(|e| Error::invalid(e.to_string()))?;
    let Some(obj) = value.as_object() else {
        return Err(Error::invalid("expected a JSON object"));
    };
    let unexpected: Vec<&str> = ["config", "fsLayers", "history", "layers", "manifests"]
        .into_iter()
        .filter(|f| !allowed.contains(f))
        .filter(|f| {
            obj.iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(f) && !v.is_null())
        })
        .collect();
    if unexpected.is_empty() {
        return Ok(());
    }
    Err(Error::invalid(format!(
        "rejecting ambiguous manifest, unexpected fields {unexpected:?} in supposedly {media_type}"
    )))
}

fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(&gojson::sanitize_input(bytes))
        .map_err(|e| Error::invalid(e.to_string()))
}

impl Manifest {
    /// Parses `bytes` as `media_type` (use [`normalize_media_type`] first for what a
    /// registry sent). Errors are `InvalidInput` and read
    /// `parsing manifest (<media type>): <cause>`; an unknown media type is
    /// `Unsupported`.
    pub fn parse(bytes: &[u8], media_type: &str) -> Result<Manifest> {
        use media_types::*;
        if bytes.len() > MAX_MANIFEST_SIZE {
            return Err(Error::invalid(format!(
                "parsing manifest ({media_type}): exceeded maximum allowed size of {MAX_MANIFEST_SIZE} bytes"
            )));
        }
        let parsed = match media_type {
            OCI_MANIFEST | DOCKER_V2S2 => from_json::<ImageManifest>(bytes).and_then(|m| {
                reject_ambiguous(bytes, media_type, &["config", "layers"])?;
                Ok(if media_type == OCI_MANIFEST {
                    Manifest::Oci(m)
                } else {
                    Manifest::Docker2(m)
                })
            }),
            OCI_INDEX | DOCKER_LIST => from_json::<ImageIndex>(bytes).and_then(|m| {
                reject_ambiguous(bytes, media_type, &["manifests"])?;
                Ok(if media_type == OCI_INDEX {
                    Manifest::OciIndex(m)
                } else {
                    Manifest::DockerList(m)
                })
            }),
            DOCKER_V2S1 | DOCKER_V2S1_SIGNED => {
                Schema1::parse(bytes, media_type == DOCKER_V2S1_SIGNED).and_then(|s| {
                    reject_ambiguous(bytes, media_type, &["fsLayers", "history"])?;
                    Ok(Manifest::Schema1(Box::new(s)))
                })
            }
            other => {
                return Err(Error::Unsupported(format!(
                    "unsupported manifest media type {other:?}"
                )))
            }
        };
        parsed.map_err(|e| Error::invalid(format!("parsing manifest ({media_type}): {e}")))
    }

    /// The media type this manifest was parsed as.
    pub fn media_type(&self) -> &'static str {
        use media_types::*;
        match self {
            Manifest::Oci(_) => OCI_MANIFEST,
            Manifest::Docker2(_) => DOCKER_V2S2,
            Manifest::Schema1(s) => s.media_type(),
            Manifest::OciIndex(_) => OCI_INDEX,
            Manifest::DockerList(_) => DOCKER_LIST,
        }
    }

    /// Whether this is an index or list (names other manifests, not blobs).
    pub fn is_index(&self) -> bool {
        matches!(self, Manifest::OciIndex(_) | Manifest::DockerList(_))
    }

    /// The config blob (OCI and schema 2 image manifests only).
    pub fn config(&self) -> Option<BlobRef> {
        match self {
            Manifest::Oci(m) | Manifest::Docker2(m) => Some(BlobRef::from_descriptor(&m.config)),
            _ => None,
        }
    }

    /// Layer blobs, base first. Schema 1: `fsLayers` reversed, after the adjacent
    /// duplicate-ID entries were dropped at parse time; empty layers are kept and
    /// marked. Indexes have none.
    pub fn layers(&self) -> Vec<BlobRef> {
        match self {
            Manifest::Oci(m) | Manifest::Docker2(m) => {
                m.layers.iter().map(BlobRef::from_descriptor).collect()
            }
            Manifest::Schema1(s) => s.layers(),
            Manifest::OciIndex(_) | Manifest::DockerList(_) => Vec::new(),
        }
    }

    /// The entries of an index or list, in document order (empty for an image).
    pub fn instances(&self) -> Vec<Instance> {
        match self {
            Manifest::OciIndex(i) | Manifest::DockerList(i) => i
                .manifests
                .iter()
                .map(|d| Instance {
                    digest: d.digest.clone(),
                    size: d.size,
                    media_type: d.media_type.clone(),
                    platform: d.platform.clone(),
                    annotations: d.annotations.clone(),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Top-level annotations (OCI manifest and index; `None` for other formats).
    pub fn annotations(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Manifest::Oci(m) | Manifest::Docker2(m) => m.annotations.as_ref(),
            Manifest::OciIndex(i) | Manifest::DockerList(i) => i.annotations.as_ref(),
            Manifest::Schema1(_) => None,
        }
    }

    /// For an OCI manifest whose config is not an OCI image configuration (an
    /// artifact), that config media type.
    pub fn artifact_type(&self) -> Option<&str> {
        match self {
            Manifest::Oci(m) if m.config.media_type != media_types::OCI_CONFIG => {
                Some(&m.config.media_type)
            }
            _ => None,
        }
    }

    /// The image configuration skopeo's `inspect` reads: `config_blob` for OCI and
    /// schema 2 (required), the embedded `v1Compatibility` for schema 1. An OCI
    /// artifact (see [`Manifest::artifact_type`]) is `Unsupported`, as in skopeo.
    pub fn image_config(&self, config_blob: Option<&[u8]>) -> Result<ImageConfig> {
        if let Some(t) = self.artifact_type() {
            return Err(Error::Unsupported(format!(
                "unsupported image-specific operation on artifact with type {t:?}"
            )));
        }
        match self {
            Manifest::Schema1(s) => s.image_config(),
            Manifest::Oci(_) | Manifest::Docker2(_) => match config_blob {
                Some(b) => parse_config(b),
                None => Err(Error::invalid("the image configuration blob is needed")),
            },
            _ => Err(Error::invalid(format!(
                "a {} has no image configuration; choose an instance first",
                self.media_type()
            ))),
        }
    }

    /// What `skopeo inspect --config` prints (no trailing newline): the config as an
    /// OCI image configuration; for schema 1, the configuration derived from the
    /// manifest (`config_blob` is then ignored).
    pub fn inspect_config_json(&self, config_blob: Option<&[u8]>) -> Result<String> {
        match self {
            Manifest::Schema1(s) => Ok(s.oci_config()?.to_oci_json_indent()),
            _ => Ok(self.image_config(config_blob)?.to_oci_json_indent()),
        }
    }
}

/// A file of the captured test data under `src/manifest/testdata/` (see its README):
/// `case/file`, or `convert/file` for conversions.
#[cfg(test)]
pub(crate) fn testdata(case: &str, file: &str) -> Vec<u8> {
    let p = format!(
        "{}/src/manifest/testdata/{case}/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&p).unwrap_or_else(|e| panic!("{p}: {e}"))
}

#[cfg(test)]
#[path = "manifest/manifest_tests.rs"]
mod tests;
