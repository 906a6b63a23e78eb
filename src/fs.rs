//! The filesystem core of `scry mount`: registries, repositories and tags as a
//! read-only tree of directories, with `copy-to/` control directories to start copies.
//!
//! This module knows nothing of FUSE: it answers inode-level questions (`lookup`,
//! `getattr`, `readdir`, `read`, …) with [`FsResult`] values, and a thin adapter turns
//! them into kernel replies. Registry access goes through the [`Backend`] trait, so the
//! whole tree is tested against an in-memory backend ([`mock::MockBackend`]).
//!
//! ```text
//! MOUNT/
//!   .scry/stats.json                 counters (this core's caches and the backend's)
//!   .scry/errors                     the latest failures with their reasons, see [`errors`]
//!   REGISTRY/NS/…/REPO/              tags and sub-namespaces
//!     TAG/  REPO:TAG  REPO@DIGEST  REPO/sha256:HEX
//!       oci-layout index.json blobs/ALG/HEX    a read-only OCI image layout
//!       manifest.json config.json inspect.json layers/N.tar.gz → ../blobs/sha256/HEX
//!       OS-ARCH[-VARIANT]/                     per platform, for an index
//!       copy-to/NAME copy-to/NAME.status       see [`copyto`]
//! ```
//!
//! Every operation is an `async fn` on a `Send + Sync` [`Fs`]; the adapter shares it in
//! an `Arc` and runs one task per kernel request. Caching: digest-addressed metadata is
//! kept for the life of the mount, tag lists and tag → digest answers for
//! [`FsConfig::tag_ttl`]. Inode numbers are stable for the life of the mount.

mod backend;
mod clock;
pub mod copyto;
mod error;
pub mod errors;
mod flight;
mod image;
mod inode;
mod layout;
mod memo;
mod meta;
pub mod mock;
mod namespace;
mod node;
mod rootfs;
mod types;

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};

pub use backend::{Backend, CopyProgress, CopyRequest, FetchedManifest, ImageSpec, LocalBlob};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{FsError, FsErrorKind, FsResult};
pub use types::{Attr, DirEntry, FileType, OpenReply, StatFs, ROOT_INO};

use copyto::{Job, Jobs};
use inode::{Inodes, Key};
use meta::Meta;
use node::{Content, FileNode, Node, Sub};

use crate::manifest::{to_go_json_indent, PlatformChoice};

/// Settings of a mount.
#[derive(Clone)]
pub struct FsConfig {
    /// How long tag lists, catalogs and tag → digest answers are reused (default 60 s).
    pub tag_ttl: Duration,
    /// Entry/attribute TTL suggested for digest-addressed content (default 1 h).
    pub immutable_ttl: Duration,
    /// Owner of every file.
    pub uid: u32,
    pub gid: u32,
    /// The platform whose image an index directory's `inspect.json` describes
    /// (default: the host's, as `inspect` chooses).
    pub platform: PlatformChoice,
    pub clock: Arc<dyn Clock>,
    /// Where layer indexes and large files read from layers are kept (`index/`,
    /// `files/`); `None`: indexes in memory only, files in the temporary directory.
    pub layer_dir: Option<std::path::PathBuf>,
}

impl Default for FsConfig {
    fn default() -> Self {
        // SAFETY: getuid/getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        FsConfig {
            tag_ttl: Duration::from_secs(60),
            immutable_ttl: Duration::from_secs(3600),
            uid,
            gid,
            platform: PlatformChoice::default(),
            clock: Arc::new(SystemClock),
            layer_dir: None,
        }
    }
}

/// What an open file handle reads from.
enum Handle {
    /// The inode's own content, and for a blob what keeps it in the cache while the
    /// handle is open (held, never read; dropped with the handle).
    Plain {
        node: Arc<Node>,
        _pin: Option<Box<dyn std::any::Any + Send + Sync>>,
        /// For a blob: its verification failures when the handle was opened. Once that
        /// number moves, what the handle was served may have been wrong: it reads EIO.
        failures: u64,
    },
    /// A snapshot taken at open (status and statistics files).
    Snapshot(Bytes),
    Job {
        job: Arc<Job>,
        writer: bool,
    },
    /// A directory listing taken at `opendir`.
    Dir(Arc<Vec<DirEntry>>),
}

/// The filesystem. See the module documentation.
pub struct Fs {
    meta: Arc<Meta>,
    inodes: Inodes,
    jobs: Jobs,
    handles: Mutex<HashMap<u64, Handle>>,
    /// The OCI forms of Docker manifests, by manifest digest (they never change).
    layouts: Mutex<HashMap<String, layout::LayoutManifest>>,
    next_fh: AtomicU64,
    config: FsConfig,
    mounted_at: SystemTime,
    used_registries: Mutex<BTreeSet<String>>,
    /// Extra sections of `.scry/stats.json` from outside the core (the kernel adapter).
    stats_sections: Mutex<Vec<(String, StatsSection)>>,
    errors: errors::ErrorLog,
    layers: Arc<rootfs::Layers>,
}

/// A source of one `.scry/stats.json` section.
pub type StatsSection = Box<dyn Fn() -> serde_json::Value + Send + Sync>;

fn name_str(name: &OsStr) -> FsResult<&str> {
    name.to_str()
        .filter(|n| !n.is_empty() && n.len() <= 255 && !n.contains('/'))
        .ok_or_else(|| FsError::not_found(format!("{name:?}: no such name")))
}

fn slice(bytes: &Bytes, offset: u64, size: u32) -> Bytes {
    let len = bytes.len() as u64;
    let start = offset.min(len) as usize;
    let end = offset.saturating_add(size.into()).min(len) as usize;
    bytes.slice(start..end)
}

const O_ACCMODE: i32 = libc::O_ACCMODE;

impl Fs {
    pub fn new(backend: Arc<dyn Backend>, config: FsConfig) -> Fs {
        let layers = Arc::new(rootfs::Layers::new(config.layer_dir.as_deref()));
        Fs {
            meta: Arc::new(Meta::new(backend, config.clock.clone(), config.tag_ttl)),
            inodes: Inodes::new(),
            jobs: Jobs::default(),
            handles: Mutex::new(HashMap::new()),
            layouts: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            config,
            mounted_at: SystemTime::now(),
            used_registries: Mutex::new(BTreeSet::new()),
            stats_sections: Mutex::new(Vec::new()),
            errors: errors::ErrorLog::default(),
            layers,
        }
    }

    /// Records in `.scry/errors` that `op` on inode `ino` (with `child`, a name in it)
    /// failed with `e`; returns the operation as recorded (`OP PATH`), for the log.
    pub fn note_error(&self, op: &str, ino: u64, child: Option<&OsStr>, e: &FsError) -> String {
        let mut path = self.inodes.path_of(ino);
        if let Some(c) = child {
            if !path.ends_with('/') {
                path.push('/');
            }
            path.push_str(&c.to_string_lossy());
        }
        let what = format!("{op} {path}");
        self.errors.note(&what, e);
        what
    }

    fn handles(&self) -> MutexGuard<'_, HashMap<u64, Handle>> {
        self.handles.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn new_handle(&self, h: Handle) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles().insert(fh, h);
        fh
    }

    fn attr(&self, kind: FileType, size: u64, perm: u16, mtime: SystemTime, ttl: Duration) -> Attr {
        Attr {
            ino: 0,
            size,
            blocks: size.div_ceil(512),
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            rdev: 0,
            uid: self.config.uid,
            gid: self.config.gid,
            mtime,
            blksize: 128 * 1024,
            ttl,
        }
    }

    /// Adds section `name` to `.scry/stats.json`.
    pub fn add_stats_section(&self, name: &str, section: StatsSection) {
        self.stats_sections
            .lock()
            .unwrap()
            .push((name.to_string(), section));
    }

    fn stats_json(&self) -> Bytes {
        let (nodes, numbers) = self.inodes.counts();
        let doc = serde_json::json!({
            "fs": {
                "inodes_live": nodes,
                "inodes_numbered": numbers,
                "open_handles": self.handles().len(),
                "copy_jobs": self.jobs.count(),
                "cache": self.meta.stats(),
            },
            "backend": self.meta.backend.stats(),
            "layers": self.layers.stats(),
        });
        let mut doc = doc;
        for (name, section) in self.stats_sections.lock().unwrap().iter() {
            doc[name.as_str()] = section();
        }
        Bytes::from(to_go_json_indent(&doc) + "\n")
    }

    async fn attr_of(&self, node: &Node) -> FsResult<Attr> {
        use FileType::*;
        let (tag_ttl, fixed) = (self.config.tag_ttl, self.config.immutable_ttl);
        let now = Duration::ZERO;
        Ok(match node {
            Node::Root | Node::Registry { .. } | Node::Repo { .. } => {
                self.attr(Directory, 0, 0o555, self.mounted_at, tag_ttl)
            }
            Node::Control => self.attr(Directory, 0, 0o555, self.mounted_at, now),
            Node::ImageSub {
                loc,
                sub: Sub::Tree { view, path },
            } => {
                let entry = self.meta.resolve(loc).await?;
                let mtime = self.meta.mtime(&loc.registry, &loc.repo, &entry).await?;
                self.tree_dir_attr(loc, *view, path, mtime).await?
            }
            Node::Tar(t) => self.tar_attr(t),
            Node::Image { loc } | Node::ImageSub { loc, .. } => {
                let entry = self.meta.resolve(loc).await?;
                let mtime = self.meta.mtime(&loc.registry, &loc.repo, &entry).await?;
                let ttl = if loc.is_mutable() { tag_ttl } else { fixed };
                let perm = match node {
                    Node::ImageSub {
                        sub: Sub::CopyTo, ..
                    } => 0o755,
                    _ => 0o555,
                };
                self.attr(Directory, 0, perm, mtime, ttl)
            }
            Node::File(f) => self.attr(RegularFile, f.size, 0o444, f.mtime, fixed),
            Node::Symlink { target, mtime } => {
                self.attr(Symlink, target.len() as u64, 0o777, *mtime, fixed)
            }
            Node::Job(j) => self.attr(RegularFile, j.text_len(), 0o644, j.modified(), now),
            Node::JobStatus(j) => {
                let len = j.status_json().len() as u64;
                self.attr(RegularFile, len, 0o444, j.modified(), now)
            }
            Node::Stats => {
                let len = self.stats_json().len() as u64;
                self.attr(RegularFile, len, 0o444, SystemTime::now(), now)
            }
            Node::Errors => {
                let len = self.errors.text().len() as u64;
                self.attr(RegularFile, len, 0o444, SystemTime::now(), now)
            }
        })
    }

    async fn find_child(&self, parent: u64, pnode: &Node, name: &str) -> FsResult<(Key, Node)> {
        match pnode {
            Node::Root => self.lookup_root(name),
            Node::Registry { registry } => self.lookup_repo(parent, registry, "", name).await,
            Node::Repo { registry, path } => self.lookup_repo(parent, registry, path, name).await,
            Node::ImageSub {
                sub: Sub::CopyTo, ..
            } => self.lookup_job(parent, name),
            Node::ImageSub {
                loc,
                sub: Sub::Tree { view, path },
            } => self.tree_lookup(parent, loc, *view, path, name).await,
            Node::Image { loc } | Node::ImageSub { loc, .. } => {
                let sub = match pnode {
                    Node::ImageSub { sub, .. } => Some(sub),
                    _ => None,
                };
                if let Some(Sub::BlobAlg(_)) = sub {
                    // Blob names are lowercase hex; anything else is not asked about.
                    if !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                        return Err(FsError::not_found(format!("blobs: no blob {name:?}")));
                    }
                }
                let (entry, children) = self.image_children(parent, loc, sub).await?;
                let child = children
                    .into_iter()
                    .find(|c| c.name == name)
                    .ok_or_else(|| {
                        FsError::not_found(format!(
                            "{}/{}@{}: no entry {name:?}",
                            loc.registry, loc.repo, entry.digest
                        ))
                    })?;
                let node = self.materialize(loc, &entry, child.make).await?;
                Ok((child.key, node))
            }
            Node::Control if name == "stats.json" => {
                Ok((Key::Child(parent, name.to_string()), Node::Stats))
            }
            Node::Control if name == "errors" => {
                Ok((Key::Child(parent, name.to_string()), Node::Errors))
            }
            Node::Control => Err(FsError::not_found(format!(".scry/{name}: no such file"))),
            _ => Err(FsError::new(FsErrorKind::NotDir, "not a directory")),
        }
    }

    /// Looks up `name` in directory `parent`; counts one kernel reference.
    pub async fn lookup(&self, parent: u64, name: &OsStr) -> FsResult<Attr> {
        let name = name_str(name)?;
        let (pnode, _) = self.inodes.get(parent)?;
        let (key, node) = self.find_child(parent, &pnode, name).await?;
        let mut attr = self.attr_of(&node).await?;
        // Below a tag, a name like `manifest.json` or `layers/0.tar.gz` leads to another
        // inode once the tag moves, although each inode's content is fixed: the kernel
        // may keep such a name no longer than the tag TTL. `blobs/ALG/HEX` names their
        // content and may be kept as long as it.
        if let Node::Image { loc } | Node::ImageSub { loc, .. } = &*pnode {
            let by_content = matches!(
                &*pnode,
                Node::ImageSub {
                    sub: Sub::BlobAlg(_),
                    ..
                }
            );
            if loc.is_mutable() && !by_content {
                attr.ttl = attr.ttl.min(self.config.tag_ttl);
            }
        }
        let (ino, _) = self.inodes.link(&key, node, parent, name);
        Ok(Attr { ino, ..attr })
    }

    pub async fn getattr(&self, ino: u64) -> FsResult<Attr> {
        let (node, _) = self.inodes.get(ino)?;
        let attr = self.attr_of(&node).await?;
        Ok(Attr { ino, ..attr })
    }

    /// Only a `copy-to/` job's size can change (truncation by `>`); anything else is
    /// read-only. Other attribute changes to a job are accepted and ignored.
    pub async fn setattr(&self, ino: u64, size: Option<u64>) -> FsResult<Attr> {
        let (node, _) = self.inodes.get(ino)?;
        match (&*node, size) {
            (Node::Job(job), Some(size)) => job.truncate(size)?,
            (Node::Job(_), None) => {}
            _ => return Err(FsError::read_only()),
        }
        self.getattr(ino).await
    }

    /// The entries of a directory, `.` and `..` first.
    pub async fn readdir(&self, ino: u64) -> FsResult<Vec<DirEntry>> {
        let (node, parent) = self.inodes.get(ino)?;
        let children = match &*node {
            Node::Root => self.list_root().await?,
            Node::Registry { registry } => self.list_repo(ino, registry, "").await?,
            Node::Repo { registry, path } => self.list_repo(ino, registry, path).await?,
            Node::ImageSub {
                sub: Sub::CopyTo, ..
            } => self.list_jobs(ino),
            Node::Image { loc } => self.image_names(ino, loc, None).await?,
            Node::ImageSub { loc, sub } => self.image_names(ino, loc, Some(sub)).await?,
            Node::Control => ["errors", "stats.json"]
                .into_iter()
                .map(|n| {
                    (
                        n.to_string(),
                        Key::Child(ino, n.into()),
                        FileType::RegularFile,
                    )
                })
                .collect(),
            _ => return Err(FsError::new(FsErrorKind::NotDir, "not a directory")),
        };
        let mut out = vec![
            DirEntry {
                ino,
                kind: FileType::Directory,
                name: ".".into(),
            },
            DirEntry {
                ino: parent,
                kind: FileType::Directory,
                name: "..".into(),
            },
        ];
        out.extend(children.into_iter().map(|(name, key, kind)| DirEntry {
            ino: self.inodes.number(&key),
            kind,
            name,
        }));
        Ok(out)
    }

    /// Opens a directory: its listing is taken now, so that paging through it with
    /// offsets ([`Fs::dir_entries`]) sees one consistent list even if a tag list is
    /// refreshed meanwhile.
    pub async fn opendir(&self, ino: u64) -> FsResult<u64> {
        let entries = self.readdir(ino).await?;
        Ok(self.new_handle(Handle::Dir(Arc::new(entries))))
    }

    /// The listing taken by [`Fs::opendir`] (`.` and `..` first); the adapter replies
    /// with the entries from the requested offset on.
    pub fn dir_entries(&self, fh: u64) -> FsResult<Arc<Vec<DirEntry>>> {
        match self.handles().get(&fh) {
            Some(Handle::Dir(entries)) => Ok(entries.clone()),
            _ => Err(FsError::new(
                FsErrorKind::BadHandle,
                "not an open directory",
            )),
        }
    }

    pub fn releasedir(&self, fh: u64) {
        self.handles().remove(&fh);
    }

    async fn image_names(
        &self,
        ino: u64,
        loc: &Arc<node::Locator>,
        sub: Option<&Sub>,
    ) -> FsResult<Vec<(String, Key, FileType)>> {
        let (_, children) = self.image_children(ino, loc, sub).await?;
        Ok(children
            .into_iter()
            .map(|c| (c.name, c.key, c.kind))
            .collect())
    }

    pub async fn readlink(&self, ino: u64) -> FsResult<String> {
        match &*self.inodes.get(ino)?.0 {
            Node::Symlink { target, .. } => Ok(target.clone()),
            Node::Tar(t) => self.tar_readlink(t),
            _ => Err(FsError::new(FsErrorKind::Invalid, "not a symbolic link")),
        }
    }

    /// Opens a file. Writing is allowed only to `copy-to/` jobs (a running job is
    /// EBUSY; a finished one starts a new request). A blob stays in the backend's cache
    /// from its open to its release. With `want_local`, a blob stored
    /// whole by the backend comes with its local file (for FUSE passthrough); without,
    /// the backend is not asked.
    pub async fn open(&self, ino: u64, flags: i32, want_local: bool) -> FsResult<OpenReply> {
        let (node, _) = self.inodes.get(ino)?;
        let write = flags & O_ACCMODE != libc::O_RDONLY;
        let reply = |fh, keep_cache, direct_io| OpenReply {
            fh,
            keep_cache,
            direct_io,
            local: None,
        };
        match &*node {
            Node::File(_) | Node::Tar(_) if write => Err(FsError::read_only()),
            Node::Tar(t) => {
                if t.tree.entry(t.id).map(|e| &e.kind) != Some(&crate::layer::index::Kind::File) {
                    return Err(FsError::new(FsErrorKind::Invalid, "not a regular file"));
                }
                let fh = self.new_handle(Handle::Plain {
                    node: node.clone(),
                    _pin: None,
                    failures: 0,
                });
                Ok(reply(fh, true, false))
            }
            Node::File(f) => {
                // Every open of a blob keeps it in the cache until its release.
                let (pin, failures) = match &f.content {
                    Content::Blob { digest, .. } => (
                        self.meta.backend.keep_blob(digest).await,
                        self.meta.backend.blob_failures(digest),
                    ),
                    Content::Inline(_) => (None, 0),
                };
                let local = want_local
                    .then(|| self.local_blob(f))
                    .flatten()
                    .map(Arc::new);
                let fh = self.new_handle(Handle::Plain {
                    node: node.clone(),
                    _pin: pin,
                    failures,
                });
                Ok(OpenReply {
                    local,
                    ..reply(fh, !f.refreshed, false)
                })
            }
            Node::Job(job) => {
                if write {
                    job.open_for_write(flags & libc::O_TRUNC != 0)?;
                }
                let h = Handle::Job {
                    job: job.clone(),
                    writer: write,
                };
                Ok(reply(self.new_handle(h), false, true))
            }
            Node::JobStatus(_) | Node::Stats | Node::Errors if write => Err(FsError::read_only()),
            Node::JobStatus(job) => {
                let h = Handle::Snapshot(job.status_json());
                Ok(reply(self.new_handle(h), false, true))
            }
            Node::Stats => Ok(reply(
                self.new_handle(Handle::Snapshot(self.stats_json())),
                false,
                true,
            )),
            Node::Errors => Ok(reply(
                self.new_handle(Handle::Snapshot(self.errors.text())),
                false,
                true,
            )),
            Node::Symlink { .. } => Err(FsError::new(FsErrorKind::Invalid, "a symbolic link")),
            _ => Err(FsError::new(FsErrorKind::IsDir, "a directory")),
        }
    }

    /// The backend's local file of blob file `f`, when it is stored whole.
    fn local_blob(&self, f: &FileNode) -> Option<LocalBlob> {
        match &f.content {
            Content::Blob { digest, .. } => self.meta.backend.local_blob(digest),
            Content::Inline(_) => None,
        }
    }

    /// Whether inode `ino` is a blob stored whole in the backend's cache now.
    pub fn is_complete_blob(&self, ino: u64) -> bool {
        match self.inodes.get(ino).map(|(node, _)| node) {
            Ok(node) => matches!(
                &*node,
                Node::File(f) if matches!(
                    &f.content,
                    Content::Blob { digest, .. } if self.meta.backend.has_complete_blob(digest)
                )
            ),
            Err(_) => false,
        }
    }

    /// Reads up to `size` bytes at `offset`; fewer only at the end of the file.
    pub async fn read(&self, _ino: u64, fh: u64, offset: u64, size: u32) -> FsResult<Bytes> {
        let node = match self.handles().get(&fh) {
            None => return Err(FsError::new(FsErrorKind::BadHandle, "unknown file handle")),
            Some(Handle::Snapshot(b)) => return Ok(slice(b, offset, size)),
            Some(Handle::Job { job, .. }) => return Ok(slice(&job.text(), offset, size)),
            Some(Handle::Plain { node, failures, .. }) => (node.clone(), *failures),
            Some(Handle::Dir(_)) => return Err(FsError::new(FsErrorKind::IsDir, "a directory")),
        };
        let (node, failures) = node;
        if let Node::Tar(t) = &*node {
            return self.tar_read(t, offset, size).await;
        }
        let Node::File(f) = &*node else {
            return Err(FsError::new(FsErrorKind::IsDir, "not a file"));
        };
        match &f.content {
            Content::Inline(b) => Ok(slice(b, offset, size)),
            Content::Blob {
                registry,
                repo,
                digest,
            } => {
                let tainted = || {
                    let now = self.meta.backend.blob_failures(digest);
                    (now != failures).then(|| {
                        FsError::io(format!(
                            "{registry}/{repo}@{digest} failed verification after this file \
                             was opened, so bytes read from it may be wrong; open it again"
                        ))
                    })
                };
                if let Some(e) = tainted() {
                    return Err(e);
                }
                let bytes = self
                    .read_blob(f, registry, repo, digest, offset, size)
                    .await?;
                // Bytes of a generation that failed while they were read are not served.
                match tainted() {
                    Some(e) => Err(e),
                    None => Ok(bytes),
                }
            }
        }
    }

    /// The inodes whose content is blob `digest` (to drop their cached pages after the
    /// blob failed verification).
    pub fn inodes_of_blob(&self, digest: &str) -> Vec<u64> {
        self.inodes.showing_blob(Some(digest))
    }

    /// Every inode whose content is a blob.
    pub fn inodes_of_all_blobs(&self) -> Vec<u64> {
        self.inodes.showing_blob(None)
    }

    async fn read_blob(
        &self,
        f: &FileNode,
        registry: &str,
        repo: &str,
        digest: &str,
        offset: u64,
        size: u32,
    ) -> FsResult<Bytes> {
        let end = offset.saturating_add(size.into()).min(f.size);
        if offset >= end {
            return Ok(Bytes::new());
        }
        let mut pos = offset;
        let mut parts = Vec::new();
        while pos < end {
            let want = (end - pos) as u32;
            let got = self
                .meta
                .backend
                .blob(registry, repo, digest, f.size, pos, want)
                .await
                .map_err(|e| {
                    let e = FsError::from(e.context(format!("reading {registry}/{repo}@{digest}")));
                    // The file was found when it was looked up: bytes missing now (a blob
                    // the registry lost, a cache file gone) are an I/O error, not ENOENT.
                    match e.kind() {
                        FsErrorKind::NotFound => FsError::io(e.message()),
                        _ => e,
                    }
                })?;
            if got.is_empty() || got.len() > want as usize {
                return Err(FsError::io(format!(
                    "reading {registry}/{repo}@{digest} at {pos}: asked {want} bytes, got {}",
                    got.len()
                )));
            }
            pos += got.len() as u64;
            parts.push(got);
        }
        if parts.len() == 1 {
            return Ok(parts.pop().unwrap_or_default());
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        for p in parts {
            out.extend_from_slice(&p);
        }
        Ok(out.freeze())
    }

    /// Creates a copy job `name` in a `copy-to/` directory and opens it for writing.
    /// Counts one kernel reference.
    pub async fn create(
        &self,
        parent: u64,
        name: &OsStr,
        _flags: i32,
    ) -> FsResult<(Attr, OpenReply)> {
        let (pnode, _) = self.inodes.get(parent)?;
        let Node::ImageSub {
            loc,
            sub: Sub::CopyTo,
        } = &*pnode
        else {
            return Err(self.refusal(parent));
        };
        let name = name
            .to_str()
            .ok_or_else(|| FsError::new(FsErrorKind::Invalid, "job names must be UTF-8"))?;
        let (key, job) = self.create_job(parent, loc, name)?;
        let attr = self.attr_of(&Node::Job(job.clone())).await?;
        let (ino, _) = self.inodes.link(&key, Node::Job(job.clone()), parent, name);
        let fh = self.new_handle(Handle::Job { job, writer: true });
        let reply = OpenReply {
            fh,
            keep_cache: false,
            direct_io: true,
            local: None,
        };
        Ok((Attr { ino, ..attr }, reply))
    }

    /// Writes request text into a job. The copy itself starts at close (`flush`), so a
    /// request may come in any number of writes — shells write one line per write(2),
    /// flags on following lines included. But shells ignore errors of `close()` for
    /// their builtins (`echo DEST > copy-to/job && …`), so each write that ends a line
    /// also checks the request so far ([`Backend::check_copy`]: flags, policy, the
    /// destination opens and a registry grants push access) and fails when it is
    /// refused; what only the copy can find out fails the close.
    pub async fn write(&self, _ino: u64, fh: u64, offset: u64, data: &[u8]) -> FsResult<u32> {
        let job = match self.handles().get(&fh) {
            Some(Handle::Job { job, writer: true }) => job.clone(),
            Some(_) => return Err(FsError::read_only()),
            None => return Err(FsError::new(FsErrorKind::BadHandle, "unknown file handle")),
        };
        let n = job.write(offset, data)?;
        if data.ends_with(b"\n") {
            job.check(&self.meta).await?;
        }
        Ok(n)
    }

    /// On close of a job written through `fh`: starts the copy and waits for it; the
    /// copy's failure is this call's failure (EIO). The copy runs in a task of its own
    /// (call this inside a Tokio runtime): if this call is abandoned, the copy goes on
    /// and `NAME.status` still tells how it ends.
    pub async fn flush(&self, _ino: u64, fh: u64) -> FsResult<()> {
        let job = match self.handles().get(&fh) {
            Some(Handle::Job { job, writer: true }) => job.clone(),
            Some(_) => return Ok(()),
            None => return Err(FsError::new(FsErrorKind::BadHandle, "unknown file handle")),
        };
        match job.start(&self.meta) {
            Some(done) => copyto::wait(done).await,
            None => Ok(()),
        }
    }

    /// Forgets `fh`. A job written through it that was never flushed starts now
    /// (without waiting).
    pub async fn release(&self, _ino: u64, fh: u64) -> FsResult<()> {
        if let Some(Handle::Job { job, writer: true }) = self.handles().remove(&fh) {
            job.start(&self.meta);
        }
        Ok(())
    }

    /// Removes a finished or pending job from `copy-to/`; elsewhere the mount is
    /// read-only.
    pub async fn unlink(&self, parent: u64, name: &OsStr) -> FsResult<()> {
        let (pnode, _) = self.inodes.get(parent)?;
        match &*pnode {
            Node::ImageSub {
                sub: Sub::CopyTo, ..
            } => self.unlink_job(parent, name_str(name)?),
            _ => Err(self.refusal(parent)),
        }
    }

    /// The error for `mkdir`, `mknod`, `symlink`, `link`, `rename`, `rmdir` and
    /// extended-attribute changes in directory `parent`: EPERM in `copy-to/` (only
    /// plain files live there), EROFS elsewhere.
    pub fn refusal(&self, parent: u64) -> FsError {
        match self.inodes.get(parent).map(|(n, _)| n) {
            Ok(n)
                if matches!(
                    &*n,
                    Node::ImageSub {
                        sub: Sub::CopyTo,
                        ..
                    }
                ) =>
            {
                FsError::new(FsErrorKind::NotPermitted, "copy-to/ holds only job files")
            }
            _ => FsError::read_only(),
        }
    }

    /// `access(2)`: everything is readable; writing only in `copy-to/`.
    pub async fn access(&self, ino: u64, mask: i32) -> FsResult<()> {
        let (node, _) = self.inodes.get(ino)?;
        let writable = matches!(
            &*node,
            Node::Job(_)
                | Node::ImageSub {
                    sub: Sub::CopyTo,
                    ..
                }
        );
        if mask & libc::W_OK != 0 && !writable {
            return Err(FsError::read_only());
        }
        Ok(())
    }

    /// Drops `n` kernel references to `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    pub fn statfs(&self) -> StatFs {
        let (live, _) = self.inodes.counts();
        StatFs {
            blocks: 0,
            bfree: 0,
            bavail: 0,
            files: live as u64,
            ffree: 0,
            bsize: 4096,
            namelen: 255,
            frsize: 4096,
        }
    }
}

#[cfg(test)]
mod tests;
