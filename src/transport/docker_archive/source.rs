//! Reading one image of a docker archive: the image is chosen by tag, by `@N`, or as
//! the only one; its manifest is synthesised as containers/image does, so digests agree
//! with skopeo's.
//!
//! The synthesised Docker schema 2 manifest names the config (media type docker config,
//! digest of the config file) and, per entry of the config's `rootfs.diff_ids`, a layer
//! whose digest is that diff ID, whose size is the uncompressed size, and whose media
//! type is `…rootfs.diff.tar.gzip` whatever the stored form (containers/image writes
//! that type; the bytes served are the uncompressed tar, which is what the diff ID
//! describes). Layers stored compressed are decompressed when served.

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::compress::{self, Compression};
use super::tarindex::TarIndex;
use super::{choose_item, parse_manifest_items, ManifestItem};
use super::{MANIFEST_FILE, MAX_ARCHIVE_MANIFEST_SIZE};
use crate::error::{Error, Result};
use crate::manifest::media_types::{DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_V2S2};
use crate::manifest::{sha256_digest, MAX_CONFIG_SIZE};
use crate::reference::DockerReference;
use crate::transport::{BlobInfo, BlobStream, ImageSource};

/// Where a layer's bytes are in the archive and how they are stored.
#[derive(Clone, Debug)]
struct Layer {
    offset: u64,
    stored_size: u64,
    compression: Compression,
    /// Size of the uncompressed tar (what is served).
    size: u64,
}

/// `docker-archive:PATH[:REFERENCE|:@INDEX]` as a copy source.
pub struct DockerArchiveSource {
    describe: String,
    reference: Option<DockerReference>,
    item: ManifestItem,
    archive: Arc<TarIndex>,
    config: Bytes,
    config_digest: String,
    layers: HashMap<String, Layer>,
    manifest: Bytes,
}

impl std::fmt::Debug for DockerArchiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

fn describe(path: &Path, reference: Option<&DockerReference>, index: Option<usize>) -> String {
    let mut s = format!("docker-archive:{}", path.display());
    if let Some(r) = reference {
        s.push_str(&format!(":{r}"));
    } else if let Some(i) = index {
        s.push_str(&format!(":@{i}"));
    }
    s
}

/// The config's `rootfs.diff_ids`, each a sha256 digest.
fn diff_ids(config: &[u8], config_path: &str) -> Result<Vec<String>> {
    let value: serde_json::Value = serde_json::from_slice(&crate::manifest::sanitize_input(config))
        .map_err(|e| Error::invalid(format!("decoding tar config {config_path:?}: {e}")))?;
    let rootfs = value
        .as_object()
        .and_then(|o| {
            // Go matches member names case-insensitively; the last match wins.
            o.iter()
                .rfind(|(k, _)| k.eq_ignore_ascii_case("rootfs"))
                .map(|(_, v)| v)
        })
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            Error::invalid(format!(
                "Invalid image config (rootFS is not set): {config_path:?}"
            ))
        })?;
    let ids = rootfs
        .as_object()
        .and_then(|o| {
            o.iter()
                .rfind(|(k, _)| k.eq_ignore_ascii_case("diff_ids"))
                .map(|(_, v)| v)
        })
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    let list = match ids {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(a) => a,
        other => {
            return Err(Error::invalid(format!(
                "decoding tar config {config_path:?}: diff_ids is not a list: {other}"
            )))
        }
    };
    list.into_iter()
        .map(|v| {
            let s = v.as_str().unwrap_or_default().to_string();
            let hex = s.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return Err(Error::invalid(format!(
                    "decoding tar config {config_path:?}: diff ID {v} is not a sha256 digest"
                )));
            }
            Ok(s)
        })
        .collect()
}

impl DockerArchiveSource {
    /// Opens the archive at `path` and reads the image `reference` (a tag in `RepoTags`)
    /// or `index` (`@N`) names, or the only image when both are `None`. A compressed
    /// archive is decompressed into `tmpdir` (default `$TMPDIR`, else `/var/tmp`).
    ///
    /// Blocking I/O (it reads the archive's index, config and, for layers stored
    /// compressed, their whole content to learn their size): from async code use
    /// [`DockerArchiveSource::open`].
    pub fn new(
        path: &Path,
        reference: Option<DockerReference>,
        index: Option<usize>,
        tmpdir: Option<&Path>,
    ) -> Result<DockerArchiveSource> {
        let describe = describe(path, reference.as_ref(), index);
        Self::load(path, reference, index, tmpdir, describe.clone())
            .map_err(|e| e.context(format!("reading {describe}")))
    }

    /// [`DockerArchiveSource::new`] on a blocking thread.
    pub async fn open(
        path: PathBuf,
        reference: Option<DockerReference>,
        index: Option<usize>,
        tmpdir: Option<PathBuf>,
    ) -> Result<DockerArchiveSource> {
        tokio::task::spawn_blocking(move || {
            DockerArchiveSource::new(&path, reference, index, tmpdir.as_deref())
        })
        .await
        .map_err(|e| Error::other(format!("opening a docker archive: {e}")))?
    }

    fn load(
        path: &Path,
        reference: Option<DockerReference>,
        index: Option<usize>,
        tmpdir: Option<&Path>,
        describe: String,
    ) -> Result<DockerArchiveSource> {
        let archive = TarIndex::open(path, tmpdir)?;
        let items =
            parse_manifest_items(&archive.read_all(MANIFEST_FILE, MAX_ARCHIVE_MANIFEST_SIZE)?)?;
        let (chosen, _) = choose_item(&items, reference.as_ref(), index)?;
        let item = items[chosen].clone();
        let config = archive.read_all(&item.config, MAX_CONFIG_SIZE as u64)?;
        let ids = diff_ids(&config, &item.config)?;
        if ids.len() != item.layers.len() {
            return Err(Error::invalid(format!(
                "Inconsistent layer count: {} in manifest, {} in config",
                item.layers.len(),
                ids.len()
            )));
        }

        let mut layers: HashMap<String, Layer> = HashMap::new();
        let mut path_of: HashMap<String, &str> = HashMap::new();
        let mut sizes = Vec::with_capacity(ids.len());
        for (diff_id, layer_path) in ids.iter().zip(&item.layers) {
            if let Some(known) = layers.get(diff_id) {
                // The same diff ID twice: docker save links the copies to one file.
                sizes.push(known.size);
                continue;
            }
            let clean = super::files::clean_entry_name(layer_path)?;
            if let Some(other) = path_of.insert(clean.clone(), diff_id) {
                return Err(Error::invalid(format!(
                    "Layer tarfile {clean:?} used for two different DiffID values ({other} and {diff_id})"
                )));
            }
            let layer = inspect_layer(&archive, layer_path)?;
            sizes.push(layer.size);
            layers.insert(diff_id.clone(), layer);
        }

        let config_digest = sha256_digest(&config);
        let mut manifest = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"{DOCKER_V2S2}\",\"config\":{{\"mediaType\":\"{DOCKER_CONFIG}\",\"size\":{},\"digest\":\"{config_digest}\"}},\"layers\":[",
            config.len()
        );
        for (i, (diff_id, size)) in ids.iter().zip(&sizes).enumerate() {
            if i > 0 {
                manifest.push(',');
            }
            manifest.push_str(&format!(
                "{{\"mediaType\":\"{DOCKER_LAYER_GZIP}\",\"size\":{size},\"digest\":\"{diff_id}\"}}"
            ));
        }
        manifest.push_str("]}");

        Ok(DockerArchiveSource {
            describe,
            reference,
            item,
            archive: Arc::new(archive),
            config: Bytes::from(config),
            config_digest,
            layers,
            manifest: Bytes::from(manifest),
        })
    }

    /// The reference the image was chosen by, if any.
    pub fn reference(&self) -> Option<&DockerReference> {
        self.reference.as_ref()
    }

    /// The chosen image's entry in `manifest.json`.
    pub fn manifest_item(&self) -> &ManifestItem {
        &self.item
    }

    async fn layer_stream(&self, layer: &Layer) -> Result<BlobStream> {
        let raw = self
            .archive
            .stream_range(layer.offset, layer.stored_size)
            .await?;
        compress::async_decoder(layer.compression, raw)
    }

    fn unknown(&self, digest: &str) -> Error {
        Error::NotFound(format!("{}: unknown blob {digest}", self.describe))
    }
}

/// Locates a layer file and learns its stored form and uncompressed size (decompressing
/// it completely when it is stored compressed, as containers/image does).
fn inspect_layer(archive: &TarIndex, layer_path: &str) -> Result<Layer> {
    let (offset, stored_size) = archive.locate(layer_path)?;
    let head = compress::read_head(&mut archive.blocking_range(offset, stored_size)?, 6)?;
    let compression = Compression::detect(&head);
    compression.check_supported(&format!("layer {layer_path:?}"))?;
    let size = if compression == Compression::None {
        stored_size
    } else {
        let mut decoder =
            compress::blocking_decoder(compression, archive.blocking_range(offset, stored_size)?)?;
        io::copy(&mut decoder, &mut io::sink()).map_err(|e| {
            Error::invalid(format!(
                "reading {layer_path:?} ({}) to find its size: {e}",
                compression.name()
            ))
        })?
    };
    Ok(Layer {
        offset,
        stored_size,
        compression,
        size,
    })
}

#[async_trait]
impl ImageSource for DockerArchiveSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn manifest(&self, instance: Option<&str>) -> Result<(Bytes, String)> {
        if let Some(d) = instance {
            return Err(Error::Unsupported(format!(
                "{}: manifest lists are not supported by docker-archive (asked for {d})",
                self.describe
            )));
        }
        Ok((self.manifest.clone(), DOCKER_V2S2.to_string()))
    }

    async fn blob(&self, info: &BlobInfo) -> Result<(BlobStream, Option<u64>)> {
        if info.digest == self.config_digest {
            let len = self.config.len() as u64;
            return Ok((Box::pin(io::Cursor::new(self.config.clone())), Some(len)));
        }
        let layer = self
            .layers
            .get(&info.digest)
            .ok_or_else(|| self.unknown(&info.digest))?;
        Ok((self.layer_stream(layer).await?, Some(layer.size)))
    }

    fn supports_blob_range(&self) -> bool {
        true
    }

    /// Uncompressed layers and the config are read in place; a layer stored compressed
    /// is decompressed from its start and the bytes before `range` skipped.
    async fn blob_range(&self, info: &BlobInfo, range: Range<u64>) -> Result<BlobStream> {
        if range.start > range.end {
            return Err(Error::invalid(format!(
                "{}: invalid range {}..{} of blob {}",
                self.describe, range.start, range.end, info.digest
            )));
        }
        if info.digest == self.config_digest {
            let len = self.config.len() as u64;
            let (start, end) = (range.start.min(len) as usize, range.end.min(len) as usize);
            return Ok(Box::pin(io::Cursor::new(self.config.slice(start..end))));
        }
        let layer = self
            .layers
            .get(&info.digest)
            .ok_or_else(|| self.unknown(&info.digest))?;
        let start = range.start.min(layer.size);
        let len = range.end.min(layer.size) - start;
        if layer.compression == Compression::None {
            return self.archive.stream_range(layer.offset + start, len).await;
        }
        let mut s = self.layer_stream(layer).await?;
        tokio::io::copy(&mut (&mut s).take(start), &mut tokio::io::sink()).await?;
        Ok(Box::pin(s.take(len)))
    }
}
