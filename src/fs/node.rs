//! What an inode stands for: the node kinds of the tree and the locator that says which
//! image an image directory shows.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;

use super::copyto::Job;

/// A node of the tree. Directories below an image directory hold a locator and are
/// resolved afresh on every operation (a tag can move); files hold fixed content.
pub(crate) enum Node {
    Root,
    /// `MOUNT/.scry`.
    Control,
    /// `MOUNT/.scry/stats.json`.
    Stats,
    /// `MOUNT/.scry/errors`.
    Errors,
    Registry {
        registry: String,
    },
    /// A namespace or repository directory; `path` as shown in the mount (on docker.io
    /// a one-component path names `library/…`, see [`api_repo`]).
    Repo {
        registry: String,
        path: String,
    },
    /// A tag, digest or platform directory.
    Image {
        loc: Arc<Locator>,
    },
    ImageSub {
        loc: Arc<Locator>,
        sub: Sub,
    },
    File(Arc<FileNode>),
    /// A file, link, device or fifo of `rootfs/` or `layers/N/`.
    Tar(Arc<super::rootfs::TarNode>),
    Symlink {
        target: String,
        mtime: SystemTime,
    },
    /// `copy-to/NAME`: the request text.
    Job(Arc<Job>),
    /// `copy-to/NAME.status`: the job's state as JSON.
    JobStatus(Arc<Job>),
}

impl Node {
    /// The digest of the blob this node reads, when it is a blob file.
    pub fn blob_digest(&self) -> Option<&str> {
        match self {
            Node::File(f) => match &f.content {
                Content::Blob { digest, .. } => Some(digest),
                Content::Inline(_) => None,
            },
            _ => None,
        }
    }
}

/// Directories inside an image directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sub {
    Blobs,
    /// `blobs/<algorithm>`.
    BlobAlg(String),
    Layers,
    CopyTo,
    /// A directory of `rootfs/` (`view` `None`) or `layers/N/` (`Some(N)`), by its
    /// path in that tree (the empty path for the view's own directory).
    Tree {
        view: Option<usize>,
        path: Vec<u8>,
    },
}

/// Which image an image directory shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Locator {
    pub registry: String,
    /// Repository name for the registry API.
    pub repo: String,
    pub kind: LocKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LocKind {
    /// Whatever the tag points at now (re-read after the tag TTL).
    Tag(String),
    /// One manifest, forever.
    Digest(String),
    /// The index entry named `name` (`os-arch[-variant]`) of the parent's index.
    Platform { parent: Arc<Locator>, name: String },
}

impl Locator {
    /// The tag this directory was reached through (its own or an ancestor's): the
    /// `org.opencontainers.image.ref.name` of the layout's single entry.
    pub fn ref_name(&self) -> Option<&str> {
        match &self.kind {
            LocKind::Tag(t) => Some(t),
            LocKind::Digest(_) => None,
            LocKind::Platform { parent, .. } => parent.ref_name(),
        }
    }

    /// Whether what this directory shows can change (a tag somewhere up the chain).
    pub fn is_mutable(&self) -> bool {
        self.ref_name().is_some()
    }
}

/// A file with fixed content.
pub(crate) struct FileNode {
    pub content: Content,
    pub size: u64,
    pub mtime: SystemTime,
    /// Keyed by path and made afresh at each lookup (`inspect.json`): the kernel may
    /// not keep its pages from one open to the next.
    pub refreshed: bool,
}

pub(crate) enum Content {
    /// Generated or small fetched content held in memory.
    Inline(Bytes),
    /// A blob read through the backend as the file is read.
    Blob {
        registry: String,
        repo: String,
        digest: String,
    },
}

/// The repository name the registry API knows for a mount path: Docker Hub's
/// one-component names are official images under `library/`.
pub(crate) fn api_repo(registry: &str, path: &str) -> String {
    if registry == crate::reference::DEFAULT_REGISTRY && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    }
}
