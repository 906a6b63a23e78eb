//! The only code that touches `fuser`: each kernel request becomes a task on the tokio
//! runtime that calls [`crate::fs::Fs`] and replies from inside the task, so no FUSE
//! thread waits on the network. Every request except a copy-to `flush` has a deadline;
//! past it the request fails with `EIO` and the reason is logged.
//!
//! FUSE passthrough: when a blob is complete in the cache at `open`, the kernel gets the
//! cache file itself and serves reads from it without asking the daemon (native speed).
//! The kernel refuses an inode open in both ways at once, so an inode goes passthrough
//! only while no handle reads it through the daemon, and stays so while any
//! passthrough handle is open (see [`Passthrough`]).

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fuser::{
    AccessFlags, BackingId, BsdFileFlags, Errno, FileAttr, FileHandle, Filesystem, FopenFlags,
    Generation, INodeNo, InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, ReplyXattr, Request, TimeOrNow, WriteFlags,
};
use tokio::runtime::Handle;

use crate::fs::{Attr, FileType, Fs, FsError, FsResult, LocalBlob, OpenReply};

/// The kernel-facing side of a mount.
pub struct FuseAdapter {
    fs: Arc<Fs>,
    rt: Handle,
    /// Deadline for one request (a dead registry becomes EIO, never a hung `ls`).
    deadline: Duration,
    passthrough: Arc<Passthrough>,
}

/// Which open file handles read through the daemon and which through the kernel, per
/// inode, and the backing file registered for each passthrough inode.
pub struct Passthrough {
    /// Asked for by the user and offered by the kernel (cleared when registering a
    /// backing file fails, e.g. without CAP_SYS_ADMIN).
    enabled: AtomicBool,
    /// Why it is off, for the stats.
    off_reason: Mutex<String>,
    state: Mutex<IoState>,
    opens: AtomicU64,
    /// Set once the session runs: drops an inode's page cache before it turns
    /// passthrough (else the kernel does it inside the next `open`).
    notifier: std::sync::OnceLock<fuser::Notifier>,
}

#[derive(Default)]
struct IoState {
    inodes: HashMap<u64, InodeIo>,
    /// Open file handle → (inode, whether it is a passthrough handle).
    handles: HashMap<u64, (u64, bool)>,
}

#[derive(Default)]
struct InodeIo {
    cached: usize,
    passthrough: usize,
    backing: Option<(BackingId, Arc<LocalBlob>)>,
}

impl Passthrough {
    fn new(wanted: bool) -> Passthrough {
        Passthrough {
            enabled: AtomicBool::new(wanted),
            off_reason: Mutex::new(if wanted {
                String::new()
            } else {
                "turned off (--passthrough=false)".into()
            }),
            state: Mutex::new(IoState::default()),
            opens: AtomicU64::new(0),
            notifier: std::sync::OnceLock::new(),
        }
    }

    /// Hands over the session's notifier (once it is mounted).
    pub fn set_notifier(&self, n: fuser::Notifier) {
        let _ = self.notifier.set(n);
    }

    /// Drops the kernel's cached pages of `ino` (after its blob failed verification:
    /// the next read asks the daemon again).
    pub fn invalidate(&self, ino: u64) {
        if let Some(n) = self.notifier.get() {
            if let Err(e) = n.inval_inode(INodeNo(ino), 0, 0) {
                tracing::debug!("dropping the cached pages of inode {ino}: {e}");
            }
        }
    }

    fn disable(&self, why: String) {
        if self.enabled.swap(false, Ordering::Relaxed) {
            tracing::info!("FUSE passthrough off: {why}; cached blobs are read through scry");
            *self.off_reason.lock().unwrap() = why;
        }
    }

    /// Whether an open of `ino` could use a new backing file: passthrough is on, no
    /// handle reads the inode through the daemon, and none is registered yet (an
    /// existing one is reused). Spares the cache file's open when it would be dropped.
    fn wants_local(&self, ino: u64) -> bool {
        if !self.enabled.load(Ordering::Relaxed) {
            return false;
        }
        let st = self.state.lock().unwrap();
        st.inodes
            .get(&ino)
            .is_none_or(|io| io.cached == 0 && io.backing.is_none())
    }

    /// Replies to an open: passthrough when the inode may go that way, else through
    /// the daemon. Counts the handle either way.
    fn reply_open(&self, ino: u64, o: OpenReply, reply: ReplyOpen) {
        let flags = open_flags(o.keep_cache, o.direct_io);
        let fh = FileHandle(o.fh);
        let mut guard = self.state.lock().unwrap();
        let st = &mut *guard;
        let io = st.inodes.entry(ino).or_default();
        let eligible = io.passthrough > 0
            || (io.cached == 0 && o.local.is_some() && self.enabled.load(Ordering::Relaxed));
        if eligible && io.backing.is_none() {
            if let Some(local) = &o.local {
                match reply.open_backing(&local.file) {
                    Ok(id) => io.backing = Some((id, local.clone())),
                    Err(e) => self.disable(format!("registering a backing file: {e}")),
                }
            }
        }
        match (&io.backing, eligible) {
            (Some((id, _)), true) => {
                io.passthrough += 1;
                st.handles.insert(o.fh, (ino, true));
                self.opens.fetch_add(1, Ordering::Relaxed);
                // The kernel takes no cache flags with passthrough (EINVAL → EIO); no
                // FLUSH on close is allowed.
                reply.opened_passthrough(fh, FopenFlags::FOPEN_NOFLUSH, id);
            }
            _ => {
                io.cached += 1;
                st.handles.insert(o.fh, (ino, false));
                reply.opened(fh, flags);
            }
        }
    }

    /// Forgets a released handle; the last passthrough handle of an inode closes its
    /// backing file. Returns the inode when this was the last handle reading it
    /// through the daemon (its page cache may now be dropped).
    fn released(&self, fh: u64) -> Option<u64> {
        let mut st = self.state.lock().unwrap();
        let (ino, pt) = st.handles.remove(&fh)?;
        let io = st.inodes.get_mut(&ino)?;
        let last_cached = !pt && io.cached == 1 && io.passthrough == 0;
        if pt {
            io.passthrough = io.passthrough.saturating_sub(1);
            if io.passthrough == 0 {
                io.backing = None;
            }
        } else {
            io.cached = io.cached.saturating_sub(1);
        }
        if io.cached == 0 && io.passthrough == 0 {
            st.inodes.remove(&ino);
        }
        (last_cached && self.enabled.load(Ordering::Relaxed)).then_some(ino)
    }

    /// `{"enabled": …, "opens": …}` for `.scry/stats.json`.
    pub fn stats(&self) -> serde_json::Value {
        let on = self.enabled.load(Ordering::Relaxed);
        let mut v = serde_json::json!({
            "enabled": on,
            "opens": self.opens.load(Ordering::Relaxed),
        });
        if !on {
            v["off_because"] = self.off_reason.lock().unwrap().clone().into();
        }
        v
    }
}

impl FuseAdapter {
    /// `passthrough`: hand complete cached blobs to the kernel when it supports it.
    pub fn new(fs: Arc<Fs>, rt: Handle, deadline: Duration, passthrough: bool) -> FuseAdapter {
        FuseAdapter {
            fs,
            rt,
            deadline,
            passthrough: Arc::new(Passthrough::new(passthrough)),
        }
    }

    /// After the last handle reading a blob through the daemon closed: when the blob
    /// is (or shortly becomes: its last bytes may be read before it is verified and
    /// moved into place) complete in the cache, the next open goes passthrough, and the
    /// kernel must first drop the inode's page cache (about 20 ms for 90 MiB, inside
    /// that `open`). Done here in the background instead.
    fn drop_page_cache_if_complete(&self, ino: u64) {
        let (fs, pt) = (self.fs.clone(), self.passthrough.clone());
        self.rt.spawn(async move {
            for _ in 0..25 {
                let fs2 = fs.clone();
                let complete = tokio::task::spawn_blocking(move || fs2.is_complete_blob(ino))
                    .await
                    .unwrap_or(false);
                if complete {
                    let pt = pt.clone();
                    let _ = tokio::task::spawn_blocking(move || {
                        let n = pt.notifier.get()?;
                        n.inval_inode(INodeNo(ino), 0, 0)
                            .map_err(|e| {
                                tracing::debug!("dropping the page cache of inode {ino}: {e}")
                            })
                            .ok()
                    })
                    .await;
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    /// The passthrough bookkeeping, for the stats.
    pub fn passthrough(&self) -> Arc<Passthrough> {
        self.passthrough.clone()
    }

    /// Runs `op` on the runtime with the deadline; `reply` gets its result.
    fn spawn<T, F, Fut, R>(&self, about: Op, op: F, reply: R)
    where
        T: Send + 'static,
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
        R: FnOnce(FsResult<T>) + Send + 'static,
    {
        self.run(about, Some(self.deadline), op, reply)
    }

    /// Like [`FuseAdapter::spawn`] without a deadline: for copy-to closes, which run
    /// whole copies.
    fn spawn_unbounded<T, F, Fut, R>(&self, about: Op, op: F, reply: R)
    where
        T: Send + 'static,
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
        R: FnOnce(FsResult<T>) + Send + 'static,
    {
        self.run(about, None, op, reply)
    }

    fn run<T, F, Fut, R>(&self, about: Op, deadline: Option<Duration>, op: F, reply: R)
    where
        T: Send + 'static,
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
        R: FnOnce(FsResult<T>) + Send + 'static,
    {
        let fs = self.fs.clone();
        self.rt.spawn(async move {
            let result = match deadline {
                None => op(fs.clone()).await,
                Some(d) => match tokio::time::timeout(d, op(fs.clone())).await {
                    Ok(r) => r,
                    Err(_) => Err(FsError::io(format!(
                        "no answer within {d:?} (--timeout); failing with EIO"
                    ))),
                },
            };
            if let Err(e) = &result {
                // Recorded in `.scry/errors` with the path, and logged.
                let what = fs.note_error(&about.verb, about.ino, about.child.as_deref(), e);
                if e.errno() == libc::EIO {
                    tracing::warn!("{what}: {e}");
                } else {
                    tracing::debug!("{what}: {e}");
                }
            }
            reply(result);
        });
    }
}

/// What a kernel request is about: the operation and its inode (and a name in it), named
/// by path only when it fails.
struct Op {
    verb: String,
    ino: u64,
    child: Option<OsString>,
}

impl Op {
    fn on(verb: impl Into<String>, ino: u64) -> Op {
        Op {
            verb: verb.into(),
            ino,
            child: None,
        }
    }

    fn child(verb: &str, parent: u64, name: &OsStr) -> Op {
        Op {
            verb: verb.to_string(),
            ino: parent,
            child: Some(name.to_owned()),
        }
    }
}

fn errno(e: &FsError) -> Errno {
    Errno::from_i32(e.errno())
}

fn file_type(k: FileType) -> fuser::FileType {
    match k {
        FileType::Directory => fuser::FileType::Directory,
        FileType::RegularFile => fuser::FileType::RegularFile,
        FileType::Symlink => fuser::FileType::Symlink,
        FileType::CharDevice => fuser::FileType::CharDevice,
        FileType::BlockDevice => fuser::FileType::BlockDevice,
        FileType::NamedPipe => fuser::FileType::NamedPipe,
    }
}

/// Replies to a `getxattr`/`listxattr` of `size` bytes with `value`: its length when
/// asked for 0 bytes, ERANGE when it does not fit.
fn reply_xattr(size: u32, value: &[u8], reply: ReplyXattr) {
    if size == 0 {
        reply.size(value.len() as u32);
    } else if value.len() > size as usize {
        reply.error(Errno::ERANGE);
    } else {
        reply.data(value);
    }
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: a.rdev,
        blksize: a.blksize,
        flags: 0,
    }
}

fn open_flags(keep_cache: bool, direct_io: bool) -> FopenFlags {
    let mut f = FopenFlags::empty();
    if keep_cache {
        // Immutable, read-only content: nothing to flush, so no FLUSH round trip on
        // every close either.
        f |= FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_NOFLUSH;
    }
    if direct_io {
        f |= FopenFlags::FOPEN_DIRECT_IO;
    }
    f
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> std::io::Result<()> {
        // Large reads: fewer round trips through the kernel for big blobs.
        let _ = config.set_max_readahead(1024 * 1024);
        if self.passthrough.enabled.load(Ordering::Relaxed) {
            // Backing files are cache files on an ordinary filesystem: depth 1.
            let offered = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
                && config.set_max_stack_depth(1).is_ok();
            if !offered {
                self.passthrough
                    .disable("the kernel does not offer FUSE passthrough".into());
            }
        }
        Ok(())
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let (parent, name): (u64, OsString) = (parent.0, name.to_owned());
        self.spawn(
            Op::child("lookup", parent, &name),
            move |fs| async move { fs.lookup(parent, &name).await },
            move |r| match r {
                Ok(a) => reply.entry(&a.ttl, &file_attr(&a), Generation(0)),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let ino = ino.0;
        self.spawn(
            Op::on("stat", ino),
            move |fs| async move { fs.getattr(ino).await },
            move |r| match r {
                Ok(a) => reply.attr(&a.ttl, &file_attr(&a)),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let ino = ino.0;
        self.spawn(
            Op::on("setattr", ino),
            move |fs| async move { fs.setattr(ino, size).await },
            move |r| match r {
                Ok(a) => reply.attr(&a.ttl, &file_attr(&a)),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let ino = ino.0;
        self.spawn(
            Op::on("readlink", ino),
            move |fs| async move { fs.readlink(ino).await },
            move |r| match r {
                Ok(t) => reply.data(t.as_bytes()),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&self.fs.refusal(parent.0)));
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&self.fs.refusal(parent.0)));
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let (parent, name): (u64, OsString) = (parent.0, name.to_owned());
        self.spawn(
            Op::child("unlink", parent, &name),
            move |fs| async move { fs.unlink(parent, &name).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(errno(&self.fs.refusal(parent.0)));
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        _link_name: &OsStr,
        _target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&self.fs.refusal(parent.0)));
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        _name: &OsStr,
        _newparent: INodeNo,
        _newname: &OsStr,
        _flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        reply.error(errno(&self.fs.refusal(parent.0)));
    }

    fn link(
        &self,
        _req: &Request,
        _ino: INodeNo,
        newparent: INodeNo,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(errno(&self.fs.refusal(newparent.0)));
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let ino = ino.0;
        let pt = self.passthrough.clone();
        let want_local = pt.wants_local(ino);
        self.spawn(
            Op::on("open", ino),
            move |fs| async move { fs.open(ino, flags.0, want_local).await },
            move |r| match r {
                Ok(o) => pt.reply_open(ino, o, reply),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let (ino, fh) = (ino.0, fh.0);
        self.spawn(
            Op::on(format!("read {size} bytes at {offset} of"), ino),
            move |fs| async move { fs.read(ino, fh, offset, size).await },
            move |r| match r {
                Ok(b) => reply.data(&b),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        // Only copy-to jobs take writes; a write checks the request (one registry
        // request at most, within the deadline).
        let (ino, fh, data) = (ino.0, fh.0, data.to_vec());
        self.spawn(
            Op::on("write to", ino),
            move |fs| async move { fs.write(ino, fh, offset, &data).await },
            move |r| match r {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // A copy-to job runs its copy here, when its writer closes it.
        let (ino, fh) = (ino.0, fh.0);
        self.spawn_unbounded(
            Op::on("close", ino),
            move |fs| async move { fs.flush(ino, fh).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn release(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let (ino, fh) = (ino.0, fh.0);
        if let Some(ino) = self.passthrough.released(fh) {
            self.drop_page_cache_if_complete(ino);
        }
        self.spawn_unbounded(
            Op::on("release", ino),
            move |fs| async move { fs.release(ino, fh).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let ino = ino.0;
        self.spawn(
            Op::on("list", ino),
            move |fs| async move { fs.opendir(ino).await },
            move |r| match r {
                Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::empty()),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn readdir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.fs.dir_entries(fh.0) {
            Ok(e) => e,
            Err(e) => return reply.error(errno(&e)),
        };
        for (i, e) in entries.iter().enumerate().skip(offset as usize) {
            if reply.add(INodeNo(e.ino), (i + 1) as u64, file_type(e.kind), &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn getxattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, size: u32, reply: ReplyXattr) {
        let (ino, name) = (ino.0, name.to_owned());
        self.spawn(
            Op::on("getxattr", ino),
            move |fs| async move { fs.getxattr(ino, &name).await },
            move |r| match r {
                Ok(v) => reply_xattr(size, &v, reply),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        let ino = ino.0;
        self.spawn(
            Op::on("listxattr", ino),
            move |fs| async move { fs.listxattr(ino).await },
            move |r| match r {
                Ok(v) => reply_xattr(size, &v, reply),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        let (ino, mask) = (ino.0, mask.bits());
        self.spawn(
            Op::on("access", ino),
            move |fs| async move { fs.access(ino, mask).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let (parent, name): (u64, OsString) = (parent.0, name.to_owned());
        self.spawn(
            Op::child("create", parent, &name),
            move |fs| async move { fs.create(parent, &name, flags).await },
            move |r| match r {
                Ok((a, o)) => reply.created(
                    &a.ttl,
                    &file_attr(&a),
                    Generation(0),
                    FileHandle(o.fh),
                    open_flags(o.keep_cache, o.direct_io),
                ),
                Err(e) => reply.error(errno(&e)),
            },
        );
    }
}
