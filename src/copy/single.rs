//! Copying one single-image manifest: its config and layers (concurrently, verified,
//! recompressed where asked or needed), then the manifest itself, rewritten only when a
//! descriptor or the format changed.

use futures_util::{StreamExt, TryStreamExt};

use super::compress::{detect, recode};
use super::convert::{self, ManifestFormat};
use super::diff_id::{DiffIdReader, DiffIdSlot};
use super::progress::Progress;
use super::{CompressionFormat, CopyOptions};
use crate::digest::{is_sha256, VerifyingReader};
use crate::error::{Error, Result};
use crate::manifest::media_types::{self as mt, Compression};
use crate::manifest::{self, BlobRef, Manifest};
use crate::transport::{BlobInfo, ImageDestination, ImageSource, LayerCompression};

pub(super) struct Engine<'a> {
    pub src: &'a dyn ImageSource,
    pub dest: &'a dyn ImageDestination,
    pub opts: &'a CopyOptions,
    pub progress: &'a Progress,
}

/// A manifest as written to the destination.
pub(super) struct Written {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
    /// Whether it differs from the source's bytes.
    pub changed: bool,
}

/// What happens to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// The compression its media type announces (`None` for opaque blobs).
    pub from: Compression,
    /// The compression to store. The stream's real compression is checked when it
    /// arrives: a layer labelled gzip that is a plain tar is compressed to match.
    pub to: Compression,
    /// Not a layer (config, artifact blob): copied as is, never sniffed.
    pub opaque: bool,
}

impl Plan {
    pub(super) const OPAQUE: Plan = Plan {
        from: Compression::None,
        to: Compression::None,
        opaque: true,
    };
}

impl Engine<'_> {
    /// Copies the blobs of one image and returns its manifest as it must be written.
    /// `instance` is the digest of this image in the source's index, if any.
    pub async fn copy_one(
        &self,
        instance: Option<&str>,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Written> {
        let m = Manifest::parse(bytes, media_type)?;
        if m.is_index() {
            return Err(Error::Unsupported(format!(
                "{}: an index inside an index is not supported",
                self.src.describe()
            )));
        }
        if mt::is_schema1(media_type) {
            return self.copy_schema1(&m, bytes, media_type).await;
        }
        let format = self.output_format(media_type)?;
        let source_format = ManifestFormat::of(media_type);
        let config = m.config().ok_or_else(|| {
            Error::invalid(format!("manifest of {} has no config", self.src.describe()))
        })?;
        let layers = m.layers();
        let plans: Vec<Option<Plan>> = layers
            .iter()
            .map(|l| self.plan(l, format))
            .collect::<Result<_>>()?;
        let format_changes = source_format != Some(format);
        let recompresses = plans.iter().any(|p| matches!(p, Some(p) if p.from != p.to));
        if self.opts.preserve_digests && (format_changes || recompresses) {
            return Err(Error::invalid(format!(
                "--preserve-digests: copying {} would change its manifest ({})",
                self.src.describe(),
                if format_changes {
                    "format conversion"
                } else {
                    "layer recompression"
                }
            )));
        }
        let _ = instance;

        // Schema 1 has no config blob: the config goes into the manifest.
        let (mut new_config, config_bytes) = if format == ManifestFormat::DockerV2S1 {
            let bytes = crate::inspect::read_config(self.src, &m)
                .await?
                .ok_or_else(|| Error::invalid("converting to schema 1: the image has no config"))?;
            (config.clone(), Some(bytes))
        } else if format == ManifestFormat::Oci && source_format == Some(ManifestFormat::DockerV2S2)
        {
            (self.convert_config_to_oci(&m).await?, None)
        } else {
            (self.copy_blob(&config, Plan::OPAQUE, "config").await?, None)
        };
        new_config.media_type = format.config_type().to_string();
        let jobs = layers
            .iter()
            .cloned()
            .zip(plans)
            .map(|(l, plan)| async move {
                let mut stored = match plan {
                    // Foreign layers (with URLs) are not copied; the descriptor is kept.
                    None => l.clone(),
                    Some(p) => self.copy_blob(&l, p, "blob").await?,
                };
                let compression = plan
                    .map(|p| p.to)
                    .or_else(|| convert::compression_of(&l.media_type))
                    .unwrap_or(Compression::Gzip);
                if convert::compression_of(&l.media_type).is_some() {
                    stored.media_type =
                        convert::layer_media_type(&l.media_type, format, compression)?;
                }
                Ok::<BlobRef, Error>(stored)
            });
        let new_layers: Vec<BlobRef> = futures_util::stream::iter(jobs)
            .buffered(self.opts.parallel.max(1))
            .try_collect()
            .await?;

        if let Some(config_bytes) = config_bytes {
            return self.finish_schema1(&config_bytes, &new_layers).await;
        }
        let same = !format_changes
            && new_config.digest == config.digest
            && new_layers.len() == layers.len()
            && new_layers.iter().zip(&layers).all(|(a, b)| {
                a.digest == b.digest && a.media_type == b.media_type && a.size == b.size
            });
        if same {
            return Ok(Written {
                bytes: bytes.to_vec(),
                media_type: media_type.to_string(),
                digest: manifest::sha256_digest(bytes),
                changed: false,
            });
        }
        let out = convert::write_manifest(format, &m, &new_config, &new_layers)?;
        Ok(Written {
            digest: manifest::sha256_digest(&out),
            bytes: out,
            media_type: format.manifest_type().to_string(),
            changed: true,
        })
    }

    /// Writes the schema 1 manifest of copied layers (and the empty layer it may use).
    async fn finish_schema1(&self, config: &[u8], layers: &[BlobRef]) -> Result<Written> {
        let (name, tag) = self.dest.repository_and_tag().unwrap_or_default();
        let (bytes, uses_empty) = super::schema1::write(&super::schema1::Schema1Input {
            name: &name,
            tag: &tag,
            config,
            layers,
        })?;
        if uses_empty {
            let info = BlobInfo {
                digest: super::schema1::EMPTY_LAYER_DIGEST.to_string(),
                size: super::schema1::EMPTY_LAYER.len() as i64,
                media_type: mt::DOCKER_LAYER_GZIP.to_string(),
                annotations: None,
                urls: None,
                empty_layer: true,
            };
            if self.dest.try_reuse_blob(&info, None).await?.is_none() {
                let stream: crate::transport::BlobStream =
                    Box::pin(std::io::Cursor::new(super::schema1::EMPTY_LAYER));
                self.dest.put_blob(stream, &info).await?;
            }
        }
        Ok(Written {
            digest: manifest::manifest_digest(&bytes)?,
            bytes,
            media_type: mt::DOCKER_V2S1_SIGNED.to_string(),
            changed: true,
        })
    }

    /// The format to write a manifest of `media_type` in: the asked one, else the
    /// source's when the destination stores it (or when digests must be kept: the
    /// destination then gets the source's manifest as it is, as skopeo does), else the
    /// destination's preference.
    pub(super) fn output_format(&self, media_type: &str) -> Result<ManifestFormat> {
        let asked = self.opts.wanted_format()?;
        if asked.is_none() && self.opts.preserve_digests {
            if let Some(f) = ManifestFormat::of(media_type) {
                return Ok(f);
            }
        }
        convert::choose_format(media_type, asked, &self.dest.supported_manifest_types())
    }

    /// Decides a layer's compression; `None` for a layer that is not copied.
    pub(super) fn plan(&self, l: &BlobRef, format: ManifestFormat) -> Result<Option<Plan>> {
        let nondist = mt::is_non_distributable_layer(&l.media_type);
        if nondist && l.urls.as_ref().is_some_and(|u| !u.is_empty()) {
            return Ok(None);
        }
        let Some(from) = convert::compression_of(&l.media_type) else {
            // Not a known layer type (an artifact's blob): copied as is.
            return Ok(Some(Plan::OPAQUE));
        };
        let to = match (self.opts.compression, self.dest.desired_layer_compression()) {
            // Digests kept: no compression change the destination merely prefers.
            (None, _) if self.opts.preserve_digests => from,
            (_, LayerCompression::Decompress) => Compression::None,
            (Some(CompressionFormat::Gzip), _) => Compression::Gzip,
            (Some(CompressionFormat::Zstd), _) => Compression::Zstd,
            (None, LayerCompression::Compress) if from == Compression::None => Compression::Gzip,
            _ => from,
        };
        // Schema 1 layers are gzip.
        let to = if format == ManifestFormat::DockerV2S1 {
            Compression::Gzip
        } else {
            to
        };
        Ok(Some(Plan {
            from,
            to,
            opaque: false,
        }))
    }

    /// Copies one blob, verified, storing it with `plan.to` compression; reuses it when
    /// the destination has it and nothing is to change.
    pub(super) async fn copy_blob(
        &self,
        info: &BlobInfo,
        plan: Plan,
        kind: &str,
    ) -> Result<BlobInfo> {
        self.copy_blob_with_diff_id(info, plan, kind, None).await
    }

    /// [`Engine::copy_blob`], also computing the layer's diff ID into `diff_id` when
    /// given (the blob is then always read, never reused unseen).
    pub(super) async fn copy_blob_with_diff_id(
        &self,
        info: &BlobInfo,
        plan: Plan,
        kind: &str,
        diff_id: Option<&DiffIdSlot>,
    ) -> Result<BlobInfo> {
        if !is_sha256(&info.digest) {
            return Err(Error::Unsupported(format!(
                "blob {} uses a digest scry cannot verify (only sha256)",
                info.digest
            )));
        }
        if plan.from == plan.to && diff_id.is_none() {
            let from = self.src.registry_location();
            if let Some(mut found) = self.dest.try_reuse_blob(info, from.as_ref()).await? {
                self.progress.blob_skipped(kind, &info.digest);
                found.media_type = info.media_type.clone();
                return Ok(found);
            }
        }
        let what = format!("{kind} {}", info.digest);
        let (stream, size) = self
            .src
            .blob(info)
            .await
            .map_err(|e| e.context(format!("reading {what}")))?;
        let expected = if info.size >= 0 {
            Some(info.size as u64)
        } else {
            size
        };
        let stream = self.progress.track(kind, &info.digest, expected, stream);
        let verify = |stream: crate::transport::BlobStream| -> crate::transport::BlobStream {
            Box::pin(VerifyingReader::new(
                stream,
                &info.digest,
                expected,
                what.clone(),
            ))
        };
        // A destination that checks what it stores gets the bytes as they come; the
        // source's digest is checked here only where the destination cannot (recoding).
        let dest_checks = self.dest.verifies_blobs();
        let stream = if dest_checks { stream } else { verify(stream) };
        let stored = if plan.opaque {
            self.dest.put_blob(stream, info).await
        } else {
            let (actual, stream) = detect(stream)
                .await
                .map_err(|e| Error::from(e).context(format!("reading {what}")))?;
            let stream = match diff_id {
                Some(slot) => {
                    let hashed: crate::transport::BlobStream =
                        Box::pin(DiffIdReader::new(stream, actual, slot.clone())?);
                    tokio::io::BufReader::new(hashed)
                }
                None => stream,
            };
            // Digests kept: a layer whose bytes do not match its label is stored as is.
            if actual == plan.to || self.opts.preserve_digests {
                self.dest.put_blob(Box::pin(stream), info).await
            } else {
                let stream = match dest_checks {
                    true => tokio::io::BufReader::new(verify(Box::pin(stream))),
                    false => stream,
                };
                let recoded = recode(stream, actual, plan.to, self.opts.compression_level);
                let unknown = BlobInfo {
                    digest: String::new(),
                    size: -1,
                    media_type: info.media_type.clone(),
                    annotations: info.annotations.clone(),
                    urls: None,
                    empty_layer: false,
                };
                self.dest.put_blob(recoded, &unknown).await
            }
        }
        .map_err(|e| e.context(format!("copying {what} to {}", self.dest.describe())))?;
        self.progress.blob_done(stored.size.max(0) as u64);
        Ok(stored)
    }

    /// Whether the destination already holds exactly what copying `bytes` would write:
    /// its reference names a manifest with `existing` digest, equal to these bytes'
    /// digest, and the copy would change neither the format nor any layer. Then every
    /// blob is there too (a registry stores a manifest only with its blobs), so the
    /// copy is done; progress reports each blob as skipped, as when they are checked one
    /// by one. Signatures to store rule this out (they are written as usual).
    pub async fn already_there(
        &self,
        existing: Option<&str>,
        instance: Option<&str>,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<bool> {
        let Some(existing) = existing else {
            return Ok(false);
        };
        if mt::is_schema1(media_type) || manifest::sha256_digest(bytes) != existing {
            return Ok(false);
        }
        let m = Manifest::parse(bytes, media_type)?;
        let Some(config) = m.config().filter(|_| !m.is_index()) else {
            return Ok(false);
        };
        let format = self.output_format(media_type)?;
        if ManifestFormat::of(media_type) != Some(format) {
            return Ok(false);
        }
        let layers = m.layers();
        for l in &layers {
            if matches!(self.plan(l, format)?, Some(p) if p.from != p.to) {
                return Ok(false);
            }
        }
        if !self.opts.remove_signatures && !self.src.signatures(instance).await?.is_empty() {
            return Ok(false);
        }
        self.progress.blob_skipped("config", &config.digest);
        for l in &layers {
            self.progress.blob_skipped("blob", &l.digest);
        }
        self.progress.line("Writing manifest to image destination");
        Ok(true)
    }

    /// Writes the top manifest and, unless removed, the source's signatures.
    pub async fn write_top(
        &self,
        bytes: &[u8],
        media_type: &str,
        changed: bool,
        instance: Option<&str>,
    ) -> Result<()> {
        let sigs = if self.opts.remove_signatures {
            Vec::new()
        } else {
            self.src.signatures(instance).await?
        };
        if changed && !sigs.is_empty() {
            return Err(Error::invalid(format!(
                "copying would change the manifest and invalidate its {} signature(s); use --remove-signatures",
                sigs.len()
            )));
        }
        self.progress.line("Writing manifest to image destination");
        self.dest.put_manifest(bytes, media_type, None).await?;
        if !sigs.is_empty() {
            self.progress.line("Storing signatures");
            self.dest.put_signatures(&sigs, None).await?;
        }
        Ok(())
    }
}
