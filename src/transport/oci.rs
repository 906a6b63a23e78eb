//! `oci:PATH[:NAME|:@N]` — an OCI image layout directory (`oci-layout`, `index.json`,
//! `blobs/ALG/HEX`), possibly holding many images told apart by the
//! `org.opencontainers.image.ref.name` annotation of their index.json entry.
//!
//! This file owns the layout's paths and the source; [`dest`] the destination,
//! [`index`] the index.json model, locking, and garbage collection ([`delete`]).
//!
//! Blobs may live in a shared directory instead of `PATH/blobs` (skopeo's
//! `--src-shared-blob-dir` / `--dest-shared-blob-dir`).

mod dest;
mod index;

use std::ops::Range;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::localfs;
use crate::error::{Error, Result};
use crate::manifest::{self, MAX_MANIFEST_SIZE};
use crate::transport::{BlobInfo, BlobStream, ImageSource};

pub use dest::OciDestination;
pub use index::delete;
pub(crate) use index::Selector;

/// Contents of the `oci-layout` file (as skopeo writes it).
pub const LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion": "1.0.0"}"#;
/// The annotation naming an image in index.json.
pub const REF_NAME_ANNOTATION: &str = "org.opencontainers.image.ref.name";

/// Paths of one layout.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    pub dir: PathBuf,
    /// `dir/blobs`, or the shared blob directory.
    pub blob_dir: PathBuf,
    pub shared_blobs: bool,
}

impl Layout {
    pub fn new(dir: &Path, shared_blob_dir: Option<&Path>) -> Layout {
        Layout {
            dir: dir.to_path_buf(),
            blob_dir: shared_blob_dir
                .map(Path::to_path_buf)
                .unwrap_or_else(|| dir.join("blobs")),
            shared_blobs: shared_blob_dir.is_some(),
        }
    }

    pub fn index_path(&self) -> PathBuf {
        self.dir.join("index.json")
    }

    pub fn layout_file(&self) -> PathBuf {
        self.dir.join("oci-layout")
    }

    /// `blob_dir/ALG/HEX` for a validated digest.
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = localfs::digest_hex(digest)?;
        let alg = &digest[..digest.len() - hex.len() - 1];
        Ok(self.blob_dir.join(alg).join(hex))
    }
}

/// `oci:` as a `transport:details` string.
pub(crate) fn describe_name(
    transport: &str,
    path: &Path,
    reference: Option<&str>,
    index: Option<usize>,
) -> String {
    let mut s = format!("{transport}:{}", path.display());
    match (reference, index) {
        (Some(r), _) => s.push_str(&format!(":{r}")),
        (None, Some(i)) => s.push_str(&format!(":@{i}")),
        (None, None) => {}
    }
    s
}

/// The manifest an index.json entry names.
#[derive(Clone, Debug)]
pub(crate) struct TopDescriptor {
    pub digest: String,
    pub media_type: String,
}

/// `oci:PATH[:NAME|:@N]` as a copy source.
pub struct OciSource {
    layout: Layout,
    describe: String,
    top: TopDescriptor,
}

impl OciSource {
    /// Opens the image `reference` names (or entry `index` of index.json, or the only
    /// entry when both are `None`). A missing layout or image is `NotFound`.
    pub async fn open(
        path: &Path,
        reference: Option<&str>,
        index: Option<usize>,
        shared_blob_dir: Option<&Path>,
    ) -> Result<OciSource> {
        let describe = describe_name("oci", path, reference, index);
        let index_label = path.join("index.json").display().to_string();
        Self::open_labeled(
            path,
            reference,
            index,
            shared_blob_dir,
            describe,
            index_label,
        )
        .await
    }

    /// As [`OciSource::open`], with the names messages use for the image and for its
    /// index.json (an archive's layout lives in a temporary directory).
    pub(crate) async fn open_labeled(
        path: &Path,
        reference: Option<&str>,
        index: Option<usize>,
        shared_blob_dir: Option<&Path>,
        describe: String,
        index_label: String,
    ) -> Result<OciSource> {
        let layout = Layout::new(path, shared_blob_dir);
        let selector = match (reference, index) {
            (Some(r), _) => Selector::Name(r.to_string()),
            (None, Some(i)) => Selector::Index(i),
            (None, None) => Selector::Only,
        };
        let top = index::resolve(&layout, &selector, &index_label)
            .await
            .map_err(|e| e.context(format!("opening {describe}")))?;
        Ok(OciSource {
            layout,
            describe,
            top,
        })
    }

    /// Digest of the manifest the reference names.
    pub fn manifest_digest(&self) -> &str {
        &self.top.digest
    }

    async fn read_manifest_blob(&self, digest: &str) -> Result<Bytes> {
        let p = self.layout.blob_path(digest)?;
        let bytes = localfs::read_limited(&p, MAX_MANIFEST_SIZE).await?;
        let actual = manifest::sha256_digest(&bytes);
        if actual != digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {}", p.display()),
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(bytes)
    }
}

/// The media type of stored manifest bytes: what the referring descriptor says when
/// that names a manifest format, else what the bytes say.
pub(crate) fn media_type_of(declared: &str, bytes: &[u8]) -> String {
    if manifest::media_types::is_manifest(declared) {
        declared.to_string()
    } else {
        manifest::normalize_media_type(None, bytes)
    }
}

#[async_trait]
impl ImageSource for OciSource {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    async fn manifest(&self, instance: Option<&str>) -> Result<(Bytes, String)> {
        let digest = instance.unwrap_or(&self.top.digest);
        let bytes = self
            .read_manifest_blob(digest)
            .await
            .map_err(|e| e.context(format!("reading manifest {digest} of {}", self.describe)))?;
        let declared = if instance.is_none() {
            self.top.media_type.clone()
        } else {
            String::new()
        };
        let mt = media_type_of(&declared, &bytes);
        Ok((bytes, mt))
    }

    async fn blob(&self, info: &BlobInfo) -> Result<(BlobStream, Option<u64>)> {
        let p = self.layout.blob_path(&info.digest)?;
        localfs::open_blob(&p).await.map_err(|e| {
            e.context(format!(
                "reading blob {} from {}",
                info.digest, self.describe
            ))
        })
    }

    fn supports_blob_range(&self) -> bool {
        true
    }

    async fn blob_range(&self, info: &BlobInfo, range: Range<u64>) -> Result<BlobStream> {
        let p = self.layout.blob_path(&info.digest)?;
        localfs::open_blob_range(&p, range).await.map_err(|e| {
            e.context(format!(
                "reading blob {} from {}",
                info.digest, self.describe
            ))
        })
    }
}

#[cfg(test)]
#[path = "oci/tests.rs"]
mod tests;
