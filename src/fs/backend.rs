//! What the filesystem core needs from the outside world: the [`Backend`] trait (registry
//! metadata, blob bytes, copies) and the small types passed through it.
//!
//! The core never talks to a network or a disk itself; the real backend (registry
//! client plus blob cache) and the test mock implement this trait.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::Result;

/// A manifest as a registry served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The bytes exactly as served (their digest is the manifest's identity).
    pub bytes: Bytes,
    /// The `Content-Type` the registry sent (may be empty or generic; the core
    /// normalises it from the bytes when it does not name a manifest format).
    pub media_type: String,
    /// The manifest digest (`Docker-Content-Digest`, or computed from the bytes).
    pub digest: String,
}

/// The image a copy starts from: always pinned to a manifest digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// Registry host\[:port\] as used in the mount, e.g. `docker.io`.
    pub registry: String,
    /// Repository name as the registry API knows it, e.g. `library/alpine`.
    pub repository: String,
    /// The manifest (or index) digest.
    pub digest: String,
    /// The tag the image was reached through, if any.
    pub tag: Option<String>,
}

impl fmt::Display for ImageSpec {
    /// `registry/repository@digest`, a docker reference.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.registry, self.repository, self.digest)
    }
}

/// A copy requested by writing into a `copy-to/` file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyRequest {
    pub source: ImageSpec,
    /// The first non-empty line, trimmed: a destination in scry's transport syntax,
    /// e.g. `oci:/srv/images:app` or `docker://registry.example/app:1`.
    pub destination: String,
    /// The following lines split on whitespace, e.g. `["--format", "oci"]`.
    pub options: Vec<String>,
}

/// Progress of a running copy; the backend updates it, `copy-to/NAME.status` shows it.
#[derive(Debug, Default)]
pub struct CopyProgress {
    bytes_done: AtomicU64,
    bytes_total: AtomicU64,
}

impl CopyProgress {
    pub fn add_done(&self, n: u64) {
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn set_total(&self, n: u64) {
        self.bytes_total.store(n, Ordering::Relaxed);
    }

    pub fn add_total(&self, n: u64) {
        self.bytes_total.fetch_add(n, Ordering::Relaxed);
    }

    pub fn bytes_done(&self) -> u64 {
        self.bytes_done.load(Ordering::Relaxed)
    }

    pub fn bytes_total(&self) -> u64 {
        self.bytes_total.load(Ordering::Relaxed)
    }
}

/// Registry access for the mount.
///
/// Contract for every method: errors carry their kind — `Error::NotFound` when the
/// registry says the repository, tag, manifest or blob does not exist,
/// `Error::Unauthorized` when credentials are missing or refused, `Error::Network` for
/// unreachable hosts, timeouts and 5xx. Every network wait must be bounded by a
/// timeout (a dead registry must become an error, never a hang). Methods may be called
/// concurrently from many tasks.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Registries to list at the mount root: those configured (named on the command
    /// line or in registries.conf, or with stored credentials) and those that have
    /// answered a request.
    fn known_registries(&self) -> Vec<String>;

    /// Every repository of `registry` (`/v2/_catalog`, all pages), or `None` when the
    /// registry does not offer a catalog.
    async fn catalog(&self, registry: &str) -> Result<Option<Vec<String>>>;

    /// The tags of `repository` (all pages). `NotFound` when the repository is unknown.
    async fn tags(&self, registry: &str, repository: &str) -> Result<Vec<String>>;

    /// The manifest named by `reference` (a tag or a digest). When `reference` is a
    /// digest the bytes must be the ones with that digest (the core verifies sha256).
    async fn manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest>;

    /// `len` bytes of blob `digest` (whose full size is `size`) from `offset`;
    /// `offset + len <= size` always holds. Fewer bytes than asked is an error on the
    /// core's side, so implementations return exactly `len` bytes. Used for configs
    /// (whole) and layers (ranges, lazily, as files are read).
    async fn blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        size: u64,
        offset: u64,
        len: u32,
    ) -> Result<Bytes>;

    /// Copies `request.source` to `request.destination`, updating `progress`; returns
    /// when the copy is complete (or failed; a failed copy leaves nothing that looks
    /// complete at the destination).
    async fn copy(
        &self,
        request: CopyRequest,
        progress: std::sync::Arc<CopyProgress>,
    ) -> Result<()>;

    /// Checks `request`, still being written, without copying and without leaving
    /// anything behind: its flags parse (a last flag may still lack its value) and,
    /// with `open_destination`, the policy admits the source and the destination opens
    /// and would accept the image (a registry answers and grants push access). The
    /// mount checks a copy-to request at each line written, so a writer that sends one
    /// line per write learns of a bad request from the write itself.
    async fn check_copy(&self, request: &CopyRequest, open_destination: bool) -> Result<()> {
        let _ = (request, open_destination);
        Ok(())
    }

    /// Keeps blob `digest` from eviction, stored whole or in part or not yet, for as
    /// long as the returned value lives: the mount holds one per open file handle of a
    /// blob. Must be cheap and must not wait on the network. `None`: nothing to keep.
    async fn keep_blob(&self, digest: &str) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        let _ = digest;
        None
    }

    /// Blob `digest` complete and verified in a local file, opened and kept from
    /// eviction for as long as the returned value lives; `None` when it is not (yet)
    /// stored whole. Must not wait on the network. The mount hands such files to the
    /// kernel so reads bypass the daemon.
    fn local_blob(&self, digest: &str) -> Option<LocalBlob> {
        let _ = digest;
        None
    }

    /// Whether blob `digest` is stored whole and verified now: [`Backend::local_blob`]
    /// without opening anything. Must not wait on the network.
    fn has_complete_blob(&self, digest: &str) -> bool {
        self.local_blob(digest).is_some()
    }

    /// How many times blob `digest` failed verification so far (its bytes were found
    /// wrong and dropped). Bytes of the blob served before this number changed may have
    /// been wrong. Must not wait on the network.
    fn blob_failures(&self, digest: &str) -> u64 {
        let _ = digest;
        0
    }

    /// Counters to show in `MOUNT/.scry/stats.json` (cache hits, bytes fetched, …).
    fn stats(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}

/// A complete, verified blob file and what keeps it in place while it is used.
pub struct LocalBlob {
    pub file: std::fs::File,
    /// Held, never read: drops with the file.
    pub keep: Box<dyn std::any::Any + Send + Sync>,
}

impl fmt::Debug for LocalBlob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalBlob")
            .field("file", &self.file)
            .finish()
    }
}
