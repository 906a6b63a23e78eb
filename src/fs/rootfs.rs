//! `rootfs/` (the image's merged filesystem) and `layers/N/` (one layer's own tree)
//! in image directories, read-only, with the metadata the layers' tars give.
//!
//! Each layer is indexed on first use by one pass over its blob through the backend
//! (so through the blob cache); indexes are kept on disk by layer digest when the mount
//! has a directory for them, so every image sharing a layer and every later mount
//! reuses them. A file's bytes are read from the nearest point the index allows, checked
//! whole against the SHA-256 the index recorded, and kept decompressed
//! ([`crate::layer::files`]). The compression details stay in [`crate::layer`].
//!
//! Index builds, tree builds and file reads run as tasks that outlive the request that
//! started them ([`super::flight`]): a request past its deadline fails with EIO, the
//! work goes on and the next request finds it done.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::future::try_join_all;

use super::backend::Backend;
use super::error::{FsError, FsErrorKind, FsResult};
use super::flight::Flights;
use super::image::{Child, Make};
use super::inode::Key;
use super::meta::ManifestEntry;
use super::node::{Locator, Node, Sub};
use super::types::{Attr, FileType};
use super::Fs;
use crate::layer::access::{self, RangeSource};
use crate::layer::files::{FileCache, Stored, DEFAULT_DISK_BUDGET, DEFAULT_MEMORY_BUDGET};
use crate::layer::index::{self, Entry, Kind, LayerIndex, DEFAULT_SPAN};
use crate::layer::store::IndexStore;
use crate::layer::tar::show;
use crate::layer::tree::{Id, Tree};
use crate::manifest::{BlobRef, Manifest};

/// The extended attribute naming the layer an entry comes from.
pub(crate) const LAYER_XATTR: &[u8] = b"user.scry.layer";

/// How many of a tree's problems are logged.
const PROBLEMS_LOGGED: usize = 20;

/// A file, symbolic link, device or fifo of a tree (directories are
/// [`Sub::Tree`] nodes, resolved on each operation like every image directory).
pub(crate) struct TarNode {
    pub tree: Arc<Tree>,
    pub id: Id,
    pub registry: String,
    pub repo: String,
}

impl TarNode {
    fn entry(&self) -> FsResult<&Entry> {
        self.tree
            .entry(self.id)
            .ok_or_else(|| FsError::io("a tree node without an entry"))
    }
}

/// The indexes, trees and file data of the mount's layers.
pub(crate) struct Layers {
    store: Option<IndexStore>,
    files: Arc<FileCache>,
    indexes: Flights<String, Arc<LayerIndex>>,
    /// By `m:MANIFEST-DIGEST` (merged) or `l:LAYER-DIGEST` (one layer).
    trees: Flights<String, Arc<Tree>>,
    fills: Flights<[u8; 32], Arc<Stored>>,
    built: AtomicU64,
    loaded: AtomicU64,
    files_read: AtomicU64,
}

impl Layers {
    /// Indexes in `dir/index`, large files read in `dir/files`; without `dir`, indexes
    /// live in memory only and files go to the temporary directory.
    pub fn new(dir: Option<&Path>) -> Layers {
        let files_dir = match dir {
            Some(d) => d.join("files"),
            None => std::env::temp_dir(),
        };
        let store = dir.map(|d| IndexStore::new(&d.join("index")));
        if let Some(s) = &store {
            s.sweep();
        }
        Layers {
            store,
            files: Arc::new(FileCache::new(
                &files_dir,
                DEFAULT_MEMORY_BUDGET,
                DEFAULT_DISK_BUDGET,
            )),
            indexes: Flights::new(true),
            trees: Flights::new(true),
            fills: Flights::new(false),
            built: AtomicU64::new(0),
            loaded: AtomicU64::new(0),
            files_read: AtomicU64::new(0),
        }
    }

    pub fn stats(&self) -> serde_json::Value {
        let ((mf, mb), (df, db)) = self.files.usage();
        serde_json::json!({
            "indexes_built": self.built.load(Ordering::Relaxed),
            "indexes_loaded": self.loaded.load(Ordering::Relaxed),
            "indexes_held": self.indexes.kept(),
            "trees_held": self.trees.kept(),
            "files_read": self.files_read.load(Ordering::Relaxed),
            "files_kept_in_memory": mf,
            "file_bytes_in_memory": mb,
            "files_kept_on_disk": df,
            "file_bytes_on_disk": db,
        })
    }
}

/// Blob bytes by range through the backend, for the synchronous layer readers (which
/// run on blocking threads).
struct BlobSource {
    backend: Arc<dyn Backend>,
    rt: tokio::runtime::Handle,
    registry: String,
    repo: String,
    digest: String,
    size: u64,
}

impl RangeSource for BlobSource {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_range(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let at = offset + out.len() as u64;
            let want = (len - out.len()).min(u32::MAX as usize) as u32;
            let got = self
                .rt
                .block_on(self.backend.blob(
                    &self.registry,
                    &self.repo,
                    &self.digest,
                    self.size,
                    at,
                    want,
                ))
                .map_err(|e| io::Error::other(e.to_string()))?;
            if got.is_empty() || got.len() > want as usize {
                return Err(io::Error::other(format!(
                    "asked {want} bytes at {at}, got {}",
                    got.len()
                )));
            }
            out.extend_from_slice(&got);
        }
        Ok(out)
    }
}

fn joined<T>(r: Result<FsResult<T>, tokio::task::JoinError>) -> FsResult<T> {
    r.unwrap_or_else(|e| Err(FsError::io(format!("a worker failed: {e}"))))
}

/// The index of `layer`: from the store when it holds a sound one, else built by
/// reading the blob whole (and then kept, once the blob's digest matched).
fn load_or_build(
    src: &BlobSource,
    store: Option<&IndexStore>,
    layers: &Layers,
) -> FsResult<LayerIndex> {
    let digest = &src.digest;
    let what = || format!("layer {digest} of {}/{}", src.registry, src.repo);
    if !digest.starts_with("sha256:") {
        return Err(FsError::io(format!(
            "{}: only sha256 layers can be browsed",
            what()
        )));
    }
    if let Some(ix) = store.and_then(|s| s.load(digest)) {
        if ix.blob_size == src.size {
            layers.loaded.fetch_add(1, Ordering::Relaxed);
            return Ok(ix);
        }
    }
    let started = Instant::now();
    let ix = index::build(access::RangeReader::new(src, 0), DEFAULT_SPAN)
        .map_err(|e| FsError::io(format!("indexing {}: {e}", what())))?;
    if ix.blob_digest != *digest || ix.blob_size != src.size {
        return Err(FsError::io(format!(
            "indexing {}: the blob read has digest {} and {} bytes, not the {} the manifest \
             gives; not used",
            what(),
            ix.blob_digest,
            ix.blob_size,
            src.size
        )));
    }
    layers.built.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        "indexed {}: {} entries, {} bytes of tar, in {:.1?}",
        what(),
        ix.entries.len(),
        ix.tar_size,
        started.elapsed()
    );
    for why in ix.left_out.iter().take(PROBLEMS_LOGGED) {
        tracing::warn!("{}: left out {why}", what());
    }
    if let Some(store) = store {
        if let Err(e) = store.save(digest, &ix) {
            tracing::warn!("keeping the index of {}: {e}", what());
        }
    }
    Ok(ix)
}

/// `Some(N)` for `layers/N/`, `None` for `rootfs/`.
type View = Option<usize>;

fn perm(e: &Entry) -> u16 {
    (e.mode & 0o7777) as u16
}

fn owner(id: u64) -> u32 {
    // Ids beyond 32 bits cannot be shown: they read as `nobody`.
    u32::try_from(id).unwrap_or(65534)
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

fn kind_of(e: &Entry) -> FileType {
    match e.kind {
        Kind::File | Kind::HardLink(_) => FileType::RegularFile,
        Kind::Dir => FileType::Directory,
        Kind::Symlink(_) => FileType::Symlink,
        Kind::Char(..) => FileType::CharDevice,
        Kind::Block(..) => FileType::BlockDevice,
        Kind::Fifo => FileType::NamedPipe,
    }
}

impl Fs {
    /// The layers a view shows: all of an image's, or its layer `n`.
    fn view_layers(entry: &ManifestEntry, view: View) -> FsResult<Vec<BlobRef>> {
        if !matches!(entry.manifest, Manifest::Oci(_) | Manifest::Docker2(_)) {
            return Err(FsError::not_found(format!(
                "{}: not an image manifest, it has no files",
                entry.digest
            )));
        }
        let layers = entry.manifest.layers();
        match view {
            None => Ok(layers),
            Some(n) => layers
                .get(n)
                .cloned()
                .map(|l| vec![l])
                .ok_or_else(|| FsError::not_found(format!("{}: no layer {n}", entry.digest))),
        }
    }

    /// Blob `digest` of `registry/repo` by range, for a blocking thread (call from
    /// inside the runtime).
    fn blob_source(&self, registry: &str, repo: &str, digest: &str, size: u64) -> BlobSource {
        BlobSource {
            backend: self.meta.backend.clone(),
            rt: tokio::runtime::Handle::current(),
            registry: registry.to_string(),
            repo: repo.to_string(),
            digest: digest.to_string(),
            size,
        }
    }

    async fn layer_index(&self, loc: &Locator, layer: &BlobRef) -> FsResult<Arc<LayerIndex>> {
        let size = u64::try_from(layer.size)
            .map_err(|_| FsError::io(format!("layer {} has no size", layer.digest)))?;
        let src = self.blob_source(&loc.registry, &loc.repo, &layer.digest, size);
        let layers = self.layers.clone();
        self.layers
            .indexes
            .run(&layer.digest, move || async move {
                let work = tokio::task::spawn_blocking(move || {
                    load_or_build(&src, layers.store.as_ref(), &layers).map(Arc::new)
                });
                joined(work.await)
            })
            .await
    }

    /// The tree of `view` of the image `entry` (building the indexes it needs, all
    /// layers at once).
    pub(crate) async fn tree(
        &self,
        loc: &Locator,
        entry: &ManifestEntry,
        view: View,
    ) -> FsResult<Arc<Tree>> {
        let layers = Fs::view_layers(entry, view)?;
        let key = match view {
            None => format!("m:{}", entry.digest),
            Some(_) => format!("l:{}", layers[0].digest),
        };
        let indexes = try_join_all(layers.iter().map(|l| self.layer_index(loc, l))).await?;
        let what = format!("{}/{}@{}", loc.registry, loc.repo, entry.digest);
        self.layers
            .trees
            .run(&key, move || async move {
                let work = tokio::task::spawn_blocking(move || {
                    let tree = match (view, indexes.as_slice()) {
                        (Some(_), [one]) => Tree::single(one.clone()),
                        _ => Tree::merged(indexes),
                    };
                    for p in tree.problems.iter().take(PROBLEMS_LOGGED) {
                        tracing::warn!("{what}: {p}");
                    }
                    Ok(Arc::new(tree))
                });
                joined(work.await)
            })
            .await
    }

    /// The image, tree and node a tree directory shows now (ENOENT once a moved tag
    /// no longer has the path).
    async fn tree_at(
        &self,
        loc: &Locator,
        view: View,
        path: &[u8],
    ) -> FsResult<(Arc<ManifestEntry>, Arc<Tree>, Id)> {
        let entry = self.meta.resolve(loc).await?;
        let tree = self.tree(loc, &entry, view).await?;
        let id = tree.lookup(path).ok_or_else(|| {
            FsError::not_found(format!(
                "{}: no {} in the image now",
                entry.digest,
                show(path)
            ))
        })?;
        Ok((entry, tree, id))
    }

    fn tree_child(
        ino: u64,
        loc: &Arc<Locator>,
        entry: &ManifestEntry,
        tree: &Arc<Tree>,
        view: View,
        id: Id,
    ) -> Child {
        let node = tree.node(id);
        let name = lossy(node.name());
        if tree.is_dir(id) {
            return Child {
                key: Key::Child(ino, name.clone()),
                name,
                kind: FileType::Directory,
                make: Make::Dir(Node::ImageSub {
                    loc: loc.clone(),
                    sub: Sub::Tree {
                        view,
                        path: node.path.clone(),
                    },
                }),
            };
        }
        // Keyed by the entry it shows: hard links share one inode.
        let (layer, s) = tree.source(id).expect("a non-directory has an entry");
        let (digest, role) = match view {
            None => (
                entry.digest.clone(),
                format!("rootfs:{}:{}", s.layer, s.entry),
            ),
            Some(_) => (layer.blob_digest.clone(), format!("tar:{}", s.entry)),
        };
        Child {
            key: Key::Content {
                registry: loc.registry.clone(),
                repo: loc.repo.clone(),
                digest,
                name: role,
            },
            name,
            kind: tree.entry(id).map_or(FileType::Directory, kind_of),
            make: Make::Tar(tree.clone(), id),
        }
    }

    /// The entries of tree directory `path`.
    pub(crate) async fn tree_children(
        &self,
        ino: u64,
        loc: &Arc<Locator>,
        view: View,
        path: &[u8],
    ) -> FsResult<(Arc<ManifestEntry>, Vec<Child>)> {
        let (entry, tree, id) = self.tree_at(loc, view, path).await?;
        if !tree.is_dir(id) {
            return Err(FsError::new(FsErrorKind::NotDir, "not a directory"));
        }
        let children = tree
            .node(id)
            .children
            .iter()
            .map(|c| Fs::tree_child(ino, loc, &entry, &tree, view, *c))
            .collect();
        Ok((entry, children))
    }

    /// Looks up `name` in tree directory `path` (without listing the directory).
    pub(crate) async fn tree_lookup(
        &self,
        parent: u64,
        loc: &Arc<Locator>,
        view: View,
        path: &[u8],
        name: &str,
    ) -> FsResult<(Key, Node)> {
        let (entry, tree, _) = self.tree_at(loc, view, path).await?;
        let full = crate::layer::tar::join(path, name.as_bytes());
        let id = tree
            .lookup(&full)
            .ok_or_else(|| FsError::not_found(format!("no {} in the image", show(&full))))?;
        let child = Fs::tree_child(parent, loc, &entry, &tree, view, id);
        let node = match child.make {
            Make::Dir(n) => n,
            Make::Tar(tree, id) => Node::Tar(Arc::new(TarNode {
                tree,
                id,
                registry: loc.registry.clone(),
                repo: loc.repo.clone(),
            })),
            _ => return Err(FsError::io("unexpected tree child")),
        };
        Ok((child.key, node))
    }

    fn entry_attr(&self, e: Option<&Entry>, nlink: u32, mtime: SystemTime) -> Attr {
        let ttl = self.config.immutable_ttl;
        let Some(e) = e else {
            // A directory no layer declares.
            let mut a = self.attr(FileType::Directory, 0, 0o755, mtime, ttl);
            (a.uid, a.gid, a.nlink) = (0, 0, nlink);
            return a;
        };
        let size = match &e.kind {
            Kind::File => e.size,
            Kind::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        let mtime = SystemTime::UNIX_EPOCH + Duration::from_secs(e.mtime);
        let mut a = self.attr(kind_of(e), size, perm(e), mtime, ttl);
        a.uid = owner(e.uid);
        a.gid = owner(e.gid);
        a.nlink = nlink;
        if let Kind::Char(major, minor) | Kind::Block(major, minor) = e.kind {
            a.rdev = libc::makedev(major, minor) as u32;
        }
        a
    }

    /// Attributes of tree directory `path`; the view's own directory (`rootfs/`,
    /// `layers/N/`) has an image directory's, so listing an image directory does not
    /// read its layers.
    pub(crate) async fn tree_dir_attr(
        &self,
        loc: &Locator,
        view: View,
        path: &[u8],
        mtime: SystemTime,
    ) -> FsResult<Attr> {
        if path.is_empty() {
            let ttl = self.config.immutable_ttl;
            return Ok(self.attr(FileType::Directory, 0, 0o555, mtime, ttl));
        }
        let (_, tree, id) = self.tree_at(loc, view, path).await?;
        Ok(self.entry_attr(tree.entry(id), tree.node(id).nlink, mtime))
    }

    pub(crate) fn tar_attr(&self, t: &TarNode) -> Attr {
        let nlink = t.tree.node(t.id).nlink;
        self.entry_attr(t.tree.entry(t.id), nlink, self.mounted_at)
    }

    pub(crate) fn tar_readlink(&self, t: &TarNode) -> FsResult<String> {
        match &t.entry()?.kind {
            Kind::Symlink(target) => Ok(lossy(target)),
            _ => Err(FsError::new(FsErrorKind::Invalid, "not a symbolic link")),
        }
    }

    /// Up to `size` bytes at `offset` of tree file `t`, from its verified data.
    pub(crate) async fn tar_read(&self, t: &TarNode, offset: u64, size: u32) -> FsResult<Bytes> {
        let (layer, s) = t
            .tree
            .source(t.id)
            .ok_or_else(|| FsError::new(FsErrorKind::IsDir, "a directory"))?;
        let e = &layer.entries[s.entry];
        if e.kind != Kind::File {
            return Err(FsError::new(FsErrorKind::Invalid, "not a regular file"));
        }
        if e.size == 0 || offset >= e.size {
            return Ok(Bytes::new());
        }
        let stored = match self.layers.files.get(&e.digest, e.size) {
            Some(s) => s,
            None => self.fill_file(t, layer.clone(), s.entry).await?,
        };
        stored
            .read(offset, size)
            .map_err(|err| FsError::io(format!("reading {}: {err}", show(&e.path))))
    }

    async fn fill_file(
        &self,
        t: &TarNode,
        layer: Arc<LayerIndex>,
        entry: usize,
    ) -> FsResult<Arc<Stored>> {
        let e = &layer.entries[entry];
        let (digest, size) = (e.digest, e.size);
        let src = self.blob_source(&t.registry, &t.repo, &layer.blob_digest, layer.blob_size);
        let layers = self.layers.clone();
        self.layers
            .fills
            .run(&digest, move || async move {
                let work = tokio::task::spawn_blocking(move || {
                    let e = &layer.entries[entry];
                    layers.files_read.fetch_add(1, Ordering::Relaxed);
                    layers
                        .files
                        .fill(digest, size, |w| access::copy_file(&layer, &src, e, w))
                        .map_err(|err| {
                            FsError::io(format!(
                                "reading {} from layer {} of {}/{}: {err}",
                                show(&e.path),
                                layer.blob_digest,
                                src.registry,
                                src.repo
                            ))
                        })
                });
                joined(work.await)
            })
            .await
    }

    /// The extended attributes of a tree node: the entry's own and
    /// `user.scry.layer`; none for other nodes.
    pub(crate) async fn tree_xattrs(&self, node: &Node) -> FsResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let (tree, id) = match node {
            Node::Tar(t) => (t.tree.clone(), t.id),
            // The view's own directory has none: `ls -l` of an image directory asks,
            // and must not index the layers.
            Node::ImageSub {
                loc,
                sub: Sub::Tree { view, path },
            } if !path.is_empty() => {
                let (_, tree, id) = self.tree_at(loc, *view, path).await?;
                (tree, id)
            }
            _ => return Ok(Vec::new()),
        };
        let mut out = tree.entry(id).map(|e| e.xattrs.clone()).unwrap_or_default();
        if let Some((layer, _)) = tree.source(id) {
            out.push((LAYER_XATTR.to_vec(), layer.blob_digest.as_bytes().to_vec()));
        }
        Ok(out)
    }

    /// The value of extended attribute `name` of `ino` (ENODATA when it has none).
    pub async fn getxattr(&self, ino: u64, name: &OsStr) -> FsResult<Vec<u8>> {
        use std::os::unix::ffi::OsStrExt;
        let (node, _) = self.inodes.get(ino)?;
        self.tree_xattrs(&node)
            .await?
            .into_iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v)
            .ok_or_else(|| FsError::new(FsErrorKind::NoData, format!("no attribute {name:?}")))
    }

    /// The names of `ino`'s extended attributes, each ending in NUL.
    pub async fn listxattr(&self, ino: u64) -> FsResult<Vec<u8>> {
        let (node, _) = self.inodes.get(ino)?;
        let mut out = Vec::new();
        for (name, _) in self.tree_xattrs(&node).await? {
            out.extend_from_slice(&name);
            out.push(0);
        }
        Ok(out)
    }
}
