//! Image transports: where images are read from and written to.
//!
//! Two traits carry every copy: [`ImageSource`] and [`ImageDestination`]. The set of
//! transports is closed ([`crate::reference::ImageName`]); [`open_source`] and
//! [`open_destination`] match on it. The copy engine never names a transport.

pub mod dir;
pub mod docker;
pub mod docker_archive;
mod localfs;
pub(crate) use localfs::TempDir;
pub mod oci;
pub mod oci_archive;
#[cfg(test)]
mod testutil;

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

    /// The repository and tag a Docker schema 1 manifest written here names.
    fn repository_and_tag(&self) -> Option<(String, String)> {
        None
    }

    /// Whether indexes / manifest lists can be stored.
    fn supports_index(&self) -> bool {
        true
    }

    /// Whether layers must be compressed, decompressed, or kept.
    fn desired_layer_compression(&self) -> LayerCompression {
        LayerCompression::Preserve
    }

    /// Whether `put_blob` itself checks the bytes against `info.digest` (when sha256)
    /// and `info.size` (when not -1), failing and storing nothing on a mismatch. The
    /// copy engine then does not hash a blob it passes through unchanged a second time.
    fn verifies_blobs(&self) -> bool {
        false
    }

    /// The digest of the manifest the destination's reference names now, when the
    /// destination can tell at the cost of one small request (a registry tag); `None`
    /// when it cannot or nothing is there. A copy of an image that is already there
    /// then ends without writing (every blob a registry manifest names is stored).
    async fn existing_manifest_digest(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// The digest the destination's reference names, when it names one (a registry
    /// reference `repo@sha256:…`): only a manifest with that digest can be written.
    fn named_digest(&self) -> Option<String> {
        None
    }

    /// Checks, without writing, that this destination will accept the image: opening
    /// a local destination already proves its directory takes files; a registry must
    /// answer and grant push access. For requests that must fail early (a copy-to line
    /// is checked as it is written).
    async fn check_writable(&self) -> Result<()> {
        Ok(())
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

    /// Whether [`ImageDestination::put_signatures`] can store signatures. The copy
    /// engine refuses a copy with signatures to a destination that cannot, before it
    /// writes anything.
    fn supports_signatures(&self) -> bool {
        false
    }

    /// Stores signatures for the top manifest or a child (`instance`: the digest the
    /// child was written under).
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

/// Options for opening a source, whatever its transport.
#[derive(Clone, Debug, Default)]
pub struct SourceContext {
    pub docker: docker::DockerOptions,
    /// `--src-shared-blob-dir` (oci:).
    pub shared_blob_dir: Option<std::path::PathBuf>,
    /// Where archives are unpacked (`--tmpdir`).
    pub tmpdir: Option<std::path::PathBuf>,
}

/// Options for opening a destination, whatever its transport.
#[derive(Clone, Debug, Default)]
pub struct DestContext {
    pub docker: docker::DockerOptions,
    /// `--dest-shared-blob-dir` (oci:).
    pub shared_blob_dir: Option<std::path::PathBuf>,
    pub tmpdir: Option<std::path::PathBuf>,
    /// `--dest-compress` / `--dest-decompress` (dir:).
    pub dir_compression: LayerCompression,
    /// `--additional-tag` (docker-archive:).
    pub additional_tags: Vec<crate::reference::DockerReference>,
    /// `--dest-oci-accept-uncompressed-layers` (oci:, oci-archive:).
    pub oci_accept_uncompressed: bool,
}

/// Opens the image `name` for reading. Errors name the image (the transports say
/// what they were opening).
pub async fn open_source(
    name: &crate::reference::ImageName,
    ctx: &SourceContext,
) -> Result<Box<dyn ImageSource>> {
    use crate::reference::ImageName;
    name.require_supported()?;
    Ok(match name {
        ImageName::Docker(r) => Box::new(docker::DockerSource::open(r.clone(), &ctx.docker).await?),
        ImageName::Dir(path) => Box::new(dir::DirSource::open(path).await?),
        ImageName::Oci {
            path,
            reference,
            index,
        } => Box::new(
            oci::OciSource::open(
                path,
                reference.as_deref(),
                *index,
                ctx.shared_blob_dir.as_deref(),
            )
            .await?,
        ),
        ImageName::OciArchive {
            path,
            reference,
            index,
        } => Box::new(
            oci_archive::OciArchiveSource::open(
                path,
                reference.as_deref(),
                *index,
                ctx.tmpdir.as_deref(),
            )
            .await?,
        ),
        ImageName::DockerArchive {
            path,
            reference,
            index,
        } => Box::new(
            docker_archive::DockerArchiveSource::open(
                path.clone(),
                reference.clone(),
                *index,
                ctx.tmpdir.clone(),
            )
            .await?,
        ),
        other => {
            return Err(Error::Unsupported(format!(
                "reading {} images is not implemented yet",
                other.transport().name()
            )))
        }
    })
}

/// Opens `name` for writing an image.
pub async fn open_destination(
    name: &crate::reference::ImageName,
    ctx: &DestContext,
) -> Result<Box<dyn ImageDestination>> {
    use crate::reference::ImageName;
    name.require_supported()?;
    let no_index = |index: &Option<usize>| match index {
        Some(_) => Err(Error::invalid(format!(
            "{name}: an @INDEX cannot be a copy destination"
        ))),
        None => Ok(()),
    };
    let oci_layers = if ctx.oci_accept_uncompressed {
        LayerCompression::Preserve
    } else {
        LayerCompression::Compress
    };
    Ok(match name {
        ImageName::Docker(r) => Box::new(docker::DockerDestination::new(r.clone(), &ctx.docker)?),
        ImageName::Dir(path) => {
            Box::new(dir::DirDestination::new(path, ctx.dir_compression).await?)
        }
        ImageName::Oci {
            path,
            reference,
            index,
        } => {
            no_index(index)?;
            Box::new(
                oci::OciDestination::new(path, reference.clone(), ctx.shared_blob_dir.clone())
                    .await?
                    .with_layer_compression(oci_layers),
            )
        }
        ImageName::OciArchive {
            path,
            reference,
            index,
        } => {
            no_index(index)?;
            Box::new(
                oci_archive::OciArchiveDestination::new(
                    path,
                    reference.clone(),
                    ctx.tmpdir.as_deref(),
                )
                .await?
                .with_layer_compression(oci_layers),
            )
        }
        ImageName::DockerArchive {
            path,
            reference,
            index,
        } => {
            no_index(index)?;
            Box::new(docker_archive::DockerArchiveDestination::new(
                path,
                reference.clone(),
                ctx.additional_tags.clone(),
            )?)
        }
        other => {
            return Err(Error::Unsupported(format!(
                "writing {} images is not implemented yet",
                other.transport().name()
            )))
        }
    })
}
