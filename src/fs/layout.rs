//! The OCI form of Docker images, for the read-only OCI image layout of each image
//! directory.
//!
//! OCI layout readers take only OCI manifests and indexes from `index.json` (a tagged
//! Docker manifest is "not found" to them, and unpackers refuse it). So when a
//! directory's manifest is a Docker schema 2 manifest or manifest list, `index.json`
//! names its OCI form instead: the same config and layer blobs under OCI media types
//! (the bytes of every blob stay those of the registry, so they still match their
//! digests), and for a list an OCI index of its children's OCI forms. These made-up
//! manifests sit in `blobs/` beside the registry's own, which `manifest.json` still
//! shows byte for byte. OCI images need none of this: their layout names the
//! registry's manifest itself.

use bytes::Bytes;
use serde_json::Value;

use super::error::{FsError, FsErrorKind, FsResult};
use super::meta::ManifestEntry;
use super::node::Locator;
use super::Fs;
use crate::copy::{
    compression_of, layer_media_type, write_index, write_manifest, IndexEntry, ManifestFormat,
};
use crate::manifest::media_types;
use crate::manifest::{sha256_digest, BlobRef, Manifest};

/// A manifest made for the layout: its bytes and where they sit in `blobs/`. Made once
/// per manifest digest and kept for the life of the mount.
#[derive(Clone, Debug)]
pub(crate) struct LayoutManifest {
    pub digest: String,
    pub media_type: String,
    pub bytes: Bytes,
}

/// The OCI manifest for a Docker schema 2 manifest: its config and layers under OCI
/// media types.
fn oci_manifest(m: &Manifest) -> FsResult<Bytes> {
    let bad = |e: crate::error::Error| FsError::io(format!("OCI form of a manifest: {e}"));
    let config = m
        .config()
        .ok_or_else(|| FsError::io("a Docker schema 2 manifest without a config"))?;
    let layers: Vec<BlobRef> = m
        .layers()
        .into_iter()
        .map(|mut l| {
            if let Some(c) = compression_of(&l.media_type) {
                l.media_type = layer_media_type(&l.media_type, ManifestFormat::Oci, c)?;
            }
            Ok(l)
        })
        .collect::<crate::error::Result<_>>()
        .map_err(bad)?;
    Ok(Bytes::from(
        write_manifest(ManifestFormat::Oci, m, &config, &layers).map_err(bad)?,
    ))
}

impl Fs {
    /// The manifest `index.json` names for `entry`: its OCI form when it is a Docker
    /// schema 2 manifest or manifest list, else the entry itself.
    pub(crate) async fn layout_manifest(
        &self,
        loc: &Locator,
        entry: &ManifestEntry,
    ) -> FsResult<LayoutManifest> {
        Box::pin(self.layout_manifest_at(loc, entry, 0)).await
    }

    async fn layout_manifest_at(
        &self,
        loc: &Locator,
        entry: &ManifestEntry,
        depth: usize,
    ) -> FsResult<LayoutManifest> {
        if let Some(known) = self.layouts.lock().unwrap().get(&entry.digest) {
            return Ok(known.clone());
        }
        let form = self.make_layout_manifest(loc, entry, depth).await?;
        self.layouts
            .lock()
            .unwrap()
            .insert(entry.digest.clone(), form.clone());
        Ok(form)
    }

    async fn make_layout_manifest(
        &self,
        loc: &Locator,
        entry: &ManifestEntry,
        depth: usize,
    ) -> FsResult<LayoutManifest> {
        let made = |bytes: Bytes, media_type: &str| LayoutManifest {
            digest: sha256_digest(&bytes),
            media_type: media_type.to_string(),
            bytes,
        };
        match &entry.manifest {
            Manifest::Docker2(_) => Ok(made(
                oci_manifest(&entry.manifest)?,
                media_types::OCI_MANIFEST,
            )),
            Manifest::DockerList(_) if depth < super::image::MAX_INDEX_DEPTH => {
                let raw: Value = serde_json::from_slice(&entry.bytes)
                    .map_err(|e| FsError::io(format!("manifest list {}: {e}", entry.digest)))?;
                let originals = raw["manifests"].as_array().cloned().unwrap_or_default();
                let mut entries = Vec::new();
                for original in originals {
                    let Some(digest) = original["digest"].as_str() else {
                        continue;
                    };
                    let child = match self.meta.manifest(&loc.registry, &loc.repo, digest).await {
                        Ok(c) => c,
                        // A child the registry does not have is left out (a sparse list).
                        Err(e) if e.kind() == FsErrorKind::NotFound => continue,
                        Err(e) => return Err(e),
                    };
                    let form = Box::pin(self.layout_manifest_at(loc, &child, depth + 1)).await?;
                    entries.push(IndexEntry {
                        original,
                        digest: form.digest,
                        size: form.bytes.len() as i64,
                        media_type: form.media_type,
                    });
                }
                let bytes = write_index(&entry.bytes, ManifestFormat::Oci, &entries)
                    .map_err(|e| FsError::io(format!("OCI form of {}: {e}", entry.digest)))?;
                Ok(made(Bytes::from(bytes), media_types::OCI_INDEX))
            }
            _ => Ok(LayoutManifest {
                digest: entry.digest.clone(),
                media_type: entry.media_type.clone(),
                bytes: entry.bytes.clone(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_layers_and_config_take_oci_media_types() {
        let docker = br#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":7,"digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111"},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":9,"digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222"},{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":5,"digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","urls":["https://example.com/l"]}]}"#;
        let m = Manifest::parse(docker, media_types::DOCKER_V2S2).unwrap();
        let oci = oci_manifest(&m).unwrap();
        let back = Manifest::parse(&oci, media_types::OCI_MANIFEST).unwrap();
        assert!(matches!(back, Manifest::Oci(_)));
        let v: Value = serde_json::from_slice(&oci).unwrap();
        assert_eq!(v["mediaType"], media_types::OCI_MANIFEST);
        assert_eq!(v["config"]["mediaType"], media_types::OCI_CONFIG);
        assert_eq!(v["config"]["size"], 7);
        assert_eq!(v["layers"][0]["mediaType"], media_types::OCI_LAYER_GZIP);
        assert_eq!(
            v["layers"][1]["mediaType"],
            media_types::OCI_LAYER_NONDIST_GZIP
        );
        assert_eq!(v["layers"][1]["urls"][0], "https://example.com/l");
        // The blobs are the same ones.
        assert_eq!(m.config().unwrap().digest, back.config().unwrap().digest);
        let digests = |m: &Manifest| m.layers().into_iter().map(|l| l.digest).collect::<Vec<_>>();
        assert_eq!(digests(&m), digests(&back));
    }
}
