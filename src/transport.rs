//! Image transports: where images are read from and written to.
//!
//! Two traits carry every copy: [`ImageSource`] and [`ImageDestination`]. The set of
//! transports is closed ([`crate::reference::ImageName`]); [`open_source`] and
//! [`open_destination`] match on it. The copy engine never names a transport.

pub mod docker;
pub mod docker_archive;

use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::error::{Error, Result};
pub use crate::manifest::BlobRef as BlobInfo;

/// A stream of blob bytes. From a source they are unverified: the copy engine wraps them
/// in [`crate::digest::VerifyingReader`] before a destination sees them.
pub type BlobStream = Pin<Box<dyn AsyncRead + Send>>;

/// Reads one image (or index) from a transport.
///
/// Contract:
/// - `manifest(None)` is the manifest the reference names, as stored (bytes unchanged);
///   `manifest(Some(digest))` is a child of that index.
/// - `blob` returns the stored bytes; callers verify them against `info.digest`.
/// - Nothing here writes anywhere; dropping the source releases what it holds.
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// The image as `transport:details`, for messages.
    fn describe(&self) -> String;

    /// Raw manifest bytes and their media type.
    async fn manifest(&self, instance: Option<&str>) -> Result<(Bytes, String)>;

    /// The blob's bytes and, when known, their length.
    async fn blob(&self, info: &BlobInfo) -> Result<(BlobStream, Option<u64>)>;

    /// Whether [`ImageSource::blob_range`] reads only the asked bytes.
    fn supports_blob_range(&self) -> bool {
        false
    }

    /// Bytes `range` of a blob.
    async fn blob_range(&self, info: &BlobInfo, range: Range<u64>) -> Result<BlobStream> {
        let _ = range;
        Err(Error::Unsupported(format!(
            "{} cannot read part of blob {}",
            self.describe(),
            info.digest
        )))
    }

    /// The registry and repository the image lives in, for cross-repository blob mounts.
    fn registry_location(&self) -> Option<RepoLocation> {
        None
    }

    /// Signatures stored beside the image (skopeo's "simple signing" blobs).
    async fn signatures(&self, instance: Option<&str>) -> Result<Vec<Vec<u8>>> {
        let _ = instance;
        Ok(Vec::new())
    }
}

/// A repository in a registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoLocation {
    pub registry: String,
    pub repository: String,
}

/// What a destination wants done to layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LayerCompression {
    /// Store layers as they come.
    #[default]
    Preserve,
    /// Store layers compressed.
    Compress,
    /// Store layers uncompressed.
    Decompress,
}

/// Writes one image (or index) to a transport.
///
/// Contract, in call order:
/// 1. for every blob of every image (config and layers): [`try_reuse_blob`], and when
///    that returns `None`, [`put_blob`];
/// 2. [`put_manifest`] for each child image of an index (with `instance = Some(digest)`),
///    then for the top manifest (`instance = None`);
/// 3. [`put_signatures`] (optional);
/// 4. [`commit`].
///
/// A destination dropped without `commit` is abandoned: nothing that looks like a
/// complete image may remain visible (local transports write under temporary names and
/// rename on commit; a registry gets no tag). `put_blob` that fails — including when
/// the stream returns an error at its end because the digest did not match — leaves
/// no blob behind.
///
/// [`try_reuse_blob`]: ImageDestination::try_reuse_blob
/// [`put_blob`]: ImageDestination::put_blob
/// [`put_manifest`]: ImageDestination::put_manifest
/// [`put_signatures`]: ImageDestination::put_signatures
/// [`commit`]: ImageDestination::commit
#[async_trait]
pub trait ImageDestination: Send + Sync {
    /// The destination as `transport:details`, for messages.
    fn describe(&self) -> String;

    /// Manifest media types this destination can store, preferred first. Empty: any.
    fn supported_manifest_types(&self) -> Vec<String> {
        Vec::new()
    }

    /// Whether indexes / manifest lists can be stored.
    fn supports_index(&self) -> bool {
        true
    }

    /// Whether layers must be compressed, decompressed, or kept.
    fn desired_layer_compression(&self) -> LayerCompression {
        LayerCompression::Preserve
    }

    /// Whether `put_blob` must be given the digest and size before the bytes (a
    /// registry's monolithic upload) — if so, recompressed layers are staged first.
    fn needs_digest_before_upload(&self) -> bool {
        false
    }

    /// If the blob is already present (or can be made present without its bytes, like a
    /// registry's cross-repository mount from `from`), its stored description.
    async fn try_reuse_blob(
        &self,
        info: &BlobInfo,
        from: Option<&RepoLocation>,
    ) -> Result<Option<BlobInfo>>;

    /// Stores a blob. `info.digest`/`info.size` describe the bytes when known (size -1:
    /// unknown). The destination verifies what it can and returns the stored
    /// description (digest, size, media type).
    async fn put_blob(&self, stream: BlobStream, info: &BlobInfo) -> Result<BlobInfo>;

    /// Stores a manifest: a child of an index (`instance = Some(its digest)`) or the top.
    async fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        instance: Option<&str>,
    ) -> Result<()>;

    /// Stores signatures for the top manifest or a child.
    async fn put_signatures(&self, signatures: &[Vec<u8>], instance: Option<&str>) -> Result<()> {
        if signatures.is_empty() {
            return Ok(());
        }
        let _ = instance;
        Err(Error::Unsupported(format!(
            "{} cannot store signatures (use --remove-signatures)",
            self.describe()
        )))
    }

    /// Makes everything written visible.
    async fn commit(self: Box<Self>) -> Result<()>;
}
