//! The values the core hands to the adapter: attributes, directory entries, open
//! replies, filesystem statistics. Shaped after what a FUSE reply needs, without
//! naming any FUSE type.

use std::time::{Duration, SystemTime};

/// Inode number of the mount root (FUSE's root id).
pub const ROOT_INO: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileType {
    Directory,
    RegularFile,
    Symlink,
    CharDevice,
    BlockDevice,
    NamedPipe,
}

/// Attributes of one inode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    pub ino: u64,
    pub size: u64,
    /// 512-byte blocks.
    pub blocks: u64,
    pub kind: FileType,
    /// Permission bits, e.g. 0o555 for directories, 0o444 for files.
    pub perm: u16,
    pub nlink: u32,
    /// Device number of a character or block device (`makedev` encoding).
    pub rdev: u32,
    pub uid: u32,
    pub gid: u32,
    /// Image `created` for image content; mount time for the namespace.
    pub mtime: SystemTime,
    pub blksize: u32,
    /// How long the kernel may cache this entry and these attributes: long for
    /// digest-addressed content, the tag TTL for names that can move, zero for
    /// `copy-to/` entries and `.scry/` files.
    pub ttl: Duration,
}

/// One directory entry; `readdir` includes `.` and `..` first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub ino: u64,
    pub kind: FileType,
    pub name: String,
}

/// Reply to `open` and `create`.
#[derive(Debug, Clone)]
pub struct OpenReply {
    pub fh: u64,
    /// The content behind this inode never changes (digest-addressed): the kernel may
    /// keep its page cache across opens.
    pub keep_cache: bool,
    /// The size in the attributes may be stale (status files): read without the page
    /// cache, until end of file.
    pub direct_io: bool,
    /// The whole content in a local file, when the backend has it: the kernel may read
    /// that file directly (FUSE passthrough) instead of asking the daemon.
    pub local: Option<std::sync::Arc<super::backend::LocalBlob>>,
}

/// Reply to `statfs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}
