//! The JSON documents of the schema 2 era: OCI image manifest and Docker schema 2
//! manifest (one shape), OCI image index and Docker manifest list (one shape), with
//! their descriptors and platforms.
//!
//! These are scry's own serde types rather than oci-spec's because they must accept
//! what containers/image accepts: Docker media types and fields, missing optional
//! members, `null` for absent values, negative sizes. [`Descriptor::to_oci`] and
//! [`Platform::to_oci`] convert to oci-spec types where a caller wants them.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::error::{Error, Result};

/// Deserializes `null` as the type's default, as Go leaves a field at its zero value.
fn null_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A content descriptor (OCI) or its Docker schema 2 equivalent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default, deserialize_with = "null_default")]
    pub media_type: String,
    #[serde(default, deserialize_with = "null_default")]
    pub digest: String,
    #[serde(default, deserialize_with = "null_default")]
    pub size: i64,
    #[serde(default)]
    pub urls: Option<Vec<String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    /// Embedded content, base64.
    #[serde(default)]
    pub data: Option<String>,
}

/// The platform of an index entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Platform {
    #[serde(default, deserialize_with = "null_default")]
    pub architecture: String,
    #[serde(default, deserialize_with = "null_default")]
    pub os: String,
    #[serde(rename = "os.version", default, deserialize_with = "null_default")]
    pub os_version: String,
    #[serde(rename = "os.features", default)]
    pub os_features: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_default")]
    pub variant: String,
    /// Docker manifest lists only (CPU features); unused by platform matching.
    #[serde(default)]
    pub features: Option<Vec<String>>,
}

/// An OCI image manifest or a Docker schema 2 manifest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageManifest {
    #[serde(default, deserialize_with = "null_default")]
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub config: Descriptor,
    #[serde(default, deserialize_with = "null_default")]
    pub layers: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// An OCI image index or a Docker manifest list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageIndex {
    #[serde(default, deserialize_with = "null_default")]
    pub schema_version: i64,
    #[serde(default)]
    pub media_type: Option<String>,
    #[serde(default)]
    pub artifact_type: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub manifests: Vec<Descriptor>,
    #[serde(default)]
    pub subject: Option<Descriptor>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
}

fn to_hash_map(
    m: &Option<BTreeMap<String, String>>,
) -> Option<std::collections::HashMap<String, String>> {
    m.as_ref()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

impl Descriptor {
    /// As an oci-spec descriptor. Fails when the digest is not a valid digest string
    /// or the size is negative.
    pub fn to_oci(&self) -> Result<oci_spec::image::Descriptor> {
        let digest = oci_spec::image::Digest::from_str(&self.digest)
            .map_err(|e| Error::invalid(format!("invalid digest {:?}: {e}", self.digest)))?;
        let size = u64::try_from(self.size).map_err(|_| {
            Error::invalid(format!("invalid size {} for {}", self.size, self.digest))
        })?;
        let mut d = oci_spec::image::Descriptor::new(
            oci_spec::image::MediaType::from(self.media_type.as_str()),
            size,
            digest,
        );
        d.set_urls(self.urls.clone());
        d.set_annotations(to_hash_map(&self.annotations));
        d.set_platform(self.platform.as_ref().map(Platform::to_oci));
        d.set_artifact_type(
            self.artifact_type
                .as_deref()
                .map(oci_spec::image::MediaType::from),
        );
        d.set_data(self.data.clone());
        Ok(d)
    }
}

impl Platform {
    /// As an oci-spec platform.
    pub fn to_oci(&self) -> oci_spec::image::Platform {
        let mut p = oci_spec::image::Platform::default();
        p.set_architecture(oci_spec::image::Arch::from(self.architecture.as_str()));
        p.set_os(oci_spec::image::Os::from(self.os.as_str()));
        p.set_os_version(non_empty(&self.os_version));
        p.set_os_features(self.os_features.clone());
        p.set_variant(non_empty(&self.variant));
        p
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_like_go() {
        let m: ImageManifest = serde_json::from_str(
            r#"{"schemaVersion":2,"config":{"digest":"sha256:aa","size":null},"layers":null,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(m.config.digest, "sha256:aa");
        assert_eq!(m.config.media_type, "");
        assert_eq!(m.config.size, 0);
        assert!(m.layers.is_empty());
        assert!(serde_json::from_str::<ImageManifest>(r#"{"layers":{}}"#).is_err());
        assert!(serde_json::from_str::<ImageManifest>(r#"{"config":{"size":"1"}}"#).is_err());
    }

    #[test]
    fn platform_fields() {
        let d: Descriptor = serde_json::from_str(
            r#"{"mediaType":"m","digest":"sha256:aa","size":-1,
                "platform":{"architecture":"arm","os":"linux","variant":"v7",
                            "os.version":"10","os.features":["f"],"features":["sse4"]}}"#,
        )
        .unwrap();
        let p = d.platform.unwrap();
        assert_eq!(
            (p.architecture.as_str(), p.os.as_str(), p.variant.as_str()),
            ("arm", "linux", "v7")
        );
        assert_eq!(p.os_version, "10");
        assert_eq!(p.os_features.unwrap(), ["f"]);
        assert_eq!(p.features.unwrap(), ["sse4"]);
        assert_eq!(d.size, -1);
    }

    #[test]
    fn converts_to_oci_spec() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let d = Descriptor {
            media_type: super::super::media_types::DOCKER_LAYER_GZIP.into(),
            digest: digest.clone(),
            size: 3,
            annotations: Some(BTreeMap::from([("k".into(), "v".into())])),
            platform: Some(Platform {
                architecture: "arm64".into(),
                os: "linux".into(),
                variant: "v8".into(),
                ..Platform::default()
            }),
            ..Descriptor::default()
        };
        let o = d.to_oci().unwrap();
        assert_eq!(o.digest().to_string(), digest);
        assert_eq!(o.size(), 3);
        assert_eq!(o.media_type().to_string(), d.media_type);
        assert_eq!(o.annotations().as_ref().unwrap()["k"], "v");
        let p = o.platform().as_ref().unwrap();
        assert_eq!(p.architecture().to_string(), "arm64");
        assert_eq!(p.variant().as_deref(), Some("v8"));
        let bad = Descriptor {
            digest: "nope".into(),
            ..d.clone()
        };
        assert!(bad.to_oci().is_err());
        let neg = Descriptor { size: -1, ..d };
        assert!(neg.to_oci().is_err());
    }
}
