//! Conversions that rewrite an image's config, as containers/image does: a Docker
//! schema 2 config becomes an OCI image config (only the OCI fields, re-encoded), and a
//! Docker schema 1 image becomes a schema 2 or OCI image (config built from its
//! `v1Compatibility` history, `rootfs.diff_ids` computed from the layers as they
//! stream, empty layers dropped).

use std::collections::HashMap;

use super::convert::{self, ManifestFormat};
use super::diff_id::DiffIdSlot;
use super::single::{Engine, Written};
use crate::error::{Error, Result};
use crate::manifest::media_types::{self as mt, Compression};
use crate::manifest::{self, BlobRef, Manifest};
use crate::transport::{BlobInfo, BlobStream};

impl Engine<'_> {
    /// Stores a blob scry made (a converted config), unless the destination has it.
    async fn put_made_blob(
        &self,
        bytes: Vec<u8>,
        media_type: &str,
        kind: &str,
    ) -> Result<BlobInfo> {
        let info = BlobInfo {
            digest: manifest::sha256_digest(&bytes),
            size: bytes.len() as i64,
            media_type: media_type.to_string(),
            annotations: None,
            urls: None,
            empty_layer: false,
        };
        if let Some(mut found) = self.dest.try_reuse_blob(&info, None).await? {
            self.progress.blob_skipped(kind, &info.digest, info.size);
            found.media_type = info.media_type.clone();
            return Ok(found);
        }
        let size = bytes.len() as u64;
        let stream: BlobStream = Box::pin(std::io::Cursor::new(bytes));
        let stream = self.progress.track(kind, &info.digest, Some(size), stream);
        let mut stored = self.dest.put_blob(stream, &info).await.map_err(|e| {
            e.context(format!(
                "copying {kind} {} to {}",
                info.digest,
                self.dest.describe()
            ))
        })?;
        self.progress.blob_done(size);
        stored.media_type = info.media_type;
        Ok(stored)
    }

    /// Reads the Docker config of `m` and stores it re-encoded as an OCI image config.
    pub(super) async fn convert_config_to_oci(&self, m: &Manifest) -> Result<BlobInfo> {
        let bytes = crate::inspect::read_config(self.src, m)
            .await?
            .ok_or_else(|| Error::invalid("converting to OCI: the image has no config"))?;
        let oci = convert::docker_config_to_oci(&bytes)?;
        self.put_made_blob(oci, mt::OCI_CONFIG, "config").await
    }

    /// Copies a Docker schema 1 image: as it is when the destination holds schema 1 and
    /// no other format is asked (or digests must be kept), else converted to the asked
    /// format or the destination's preferred one.
    pub(super) async fn copy_schema1(
        &self,
        m: &Manifest,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Written> {
        let Manifest::Schema1(s1) = m else {
            return Err(Error::other(
                "internal: copy_schema1 called without schema 1",
            ));
        };
        let format = self.output_format(media_type)?;
        if format == ManifestFormat::DockerV2S1 {
            let mut seen = std::collections::HashSet::new();
            for l in m.layers() {
                if seen.insert(l.digest.clone()) {
                    self.copy_blob(&l, super::single::Plan::OPAQUE, "blob", None)
                        .await?;
                }
            }
            return Ok(Written {
                bytes: bytes.to_vec(),
                media_type: media_type.to_string(),
                digest: manifest::manifest_digest(bytes)?,
                changed: false,
            });
        }

        // Every distinct blob is copied (empty layers too, as skopeo does), each with
        // its diff ID computed on the way.
        let layers = s1.layers();
        let mut unique: Vec<BlobRef> = Vec::new();
        for l in &layers {
            if !unique.iter().any(|u| u.digest == l.digest) {
                unique.push(l.clone());
            }
        }
        let jobs = unique.into_iter().map(|l| async move {
            let plan = self
                .plan(&l, format)?
                .ok_or_else(|| Error::other("internal: schema 1 layer without a plan"))?;
            let slot = DiffIdSlot::default();
            let stored = self
                .copy_blob_with_diff_id(&l, plan, "blob", None, Some(&slot))
                .await?;
            let diff_id = slot.get().ok_or_else(|| {
                Error::other(format!(
                    "blob {}: the layer was not read to its end, so its diff ID is unknown",
                    l.digest
                ))
            })?;
            Ok::<_, Error>((l.digest.clone(), (stored, diff_id, plan.to)))
        });
        let by_digest: HashMap<String, (BlobInfo, String, Compression)> =
            super::single::run_ordered(jobs, self.opts.parallel)
                .await?
                .into_iter()
                .collect();

        let mut diff_ids = Vec::new();
        let mut new_layers = Vec::new();
        for l in layers.iter().filter(|l| !l.empty_layer) {
            let (stored, diff_id, compression) = &by_digest[&l.digest];
            diff_ids.push(diff_id.clone());
            let mut d = stored.clone();
            d.media_type = convert::layer_media_type(mt::DOCKER_LAYER_GZIP, format, *compression)?;
            d.annotations = None;
            d.urls = None;
            d.empty_layer = false;
            new_layers.push(d);
        }
        let docker_config = s1.to_schema2_config(&diff_ids)?;
        let config_bytes = match format {
            ManifestFormat::Oci => convert::docker_config_to_oci(&docker_config)?,
            _ => docker_config,
        };
        let config = self
            .put_made_blob(config_bytes, format.config_type(), "config")
            .await?;
        let out = convert::write_manifest(format, m, &config, &new_layers)?;
        Ok(Written {
            digest: manifest::sha256_digest(&out),
            bytes: out,
            media_type: format.manifest_type().to_string(),
            changed: true,
        })
    }
}
