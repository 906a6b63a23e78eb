//! The only code that touches `fuser`: each kernel request becomes a task on the tokio
//! runtime that calls [`crate::fs::Fs`] and replies from inside the task, so no FUSE
//! thread waits on the network. Every request except a copy-to `flush` has a deadline;
//! past it the request fails with `EIO` and the reason is logged.

use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use fuser::{
    FileAttr, Filesystem, KernelConfig, ReplyAttr, ReplyCreate, ReplyData, ReplyDirectory,
    ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
};
use tokio::runtime::Handle;

use crate::fs::{Attr, FileType, Fs, FsError, FsResult};

/// `FOPEN_DIRECT_IO` and `FOPEN_KEEP_CACHE` from the FUSE ABI.
const FOPEN_DIRECT_IO: u32 = 1 << 0;
const FOPEN_KEEP_CACHE: u32 = 1 << 1;

/// The kernel-facing side of a mount.
pub struct FuseAdapter {
    fs: Arc<Fs>,
    rt: Handle,
    /// Deadline for one request (a dead registry becomes EIO, never a hung `ls`).
    deadline: Duration,
}

impl FuseAdapter {
    pub fn new(fs: Arc<Fs>, rt: Handle, deadline: Duration) -> FuseAdapter {
        FuseAdapter { fs, rt, deadline }
    }

    /// Runs `op` on the runtime with the deadline; `reply` gets its result.
    fn spawn<T, F, Fut, R>(&self, what: String, op: F, reply: R)
    where
        T: Send + 'static,
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
        R: FnOnce(FsResult<T>) + Send + 'static,
    {
        self.run(what, Some(self.deadline), op, reply)
    }

    /// Like [`FuseAdapter::spawn`] without a deadline: for copy-to writes and closes,
    /// which run whole copies.
    fn spawn_unbounded<T, F, Fut, R>(&self, what: String, op: F, reply: R)
    where
        T: Send + 'static,
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
        R: FnOnce(FsResult<T>) + Send + 'static,
    {
        self.run(what, None, op, reply)
    }

    fn run<T, F, Fut, R>(&self, what: String, deadline: Option<Duration>, op: F, reply: R)
    where
        T: Send + 'static,
        F: FnOnce(Arc<Fs>) -> Fut + Send + 'static,
        Fut: Future<Output = FsResult<T>> + Send + 'static,
        R: FnOnce(FsResult<T>) + Send + 'static,
    {
        let fs = self.fs.clone();
        self.rt.spawn(async move {
            let result = match deadline {
                None => op(fs).await,
                Some(d) => match tokio::time::timeout(d, op(fs)).await {
                    Ok(r) => r,
                    Err(_) => {
                        tracing::warn!("{what}: no answer within {d:?}; failing with EIO");
                        Err(FsError::io(format!("{what}: timed out after {d:?}")))
                    }
                },
            };
            if let Err(e) = &result {
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

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: a.ino,
        size: a.size,
        blocks: a.blocks,
        atime: a.mtime,
        mtime: a.mtime,
        ctime: a.mtime,
        crtime: a.mtime,
        kind: match a.kind {
            FileType::Directory => fuser::FileType::Directory,
            FileType::RegularFile => fuser::FileType::RegularFile,
            FileType::Symlink => fuser::FileType::Symlink,
        },
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: a.blksize,
        flags: 0,
    }
}

fn open_flags(keep_cache: bool, direct_io: bool) -> u32 {
    let mut f = 0;
    if keep_cache {
        f |= FOPEN_KEEP_CACHE;
    }
    if direct_io {
        f |= FOPEN_DIRECT_IO;
    }
    f
}

impl Filesystem for FuseAdapter {
    fn init(&mut self, _req: &Request<'_>, config: &mut KernelConfig) -> Result<(), libc::c_int> {
        // Large reads: fewer round trips through the kernel for big blobs.
        let _ = config.set_max_readahead(1024 * 1024);
        Ok(())
    }

    fn lookup(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEntry) {
        let name: OsString = name.to_owned();
        self.spawn(
            format!("lookup {name:?} in {parent}"),
            move |fs| async move { fs.lookup(parent, &name).await },
            move |r| match r {
                Ok(a) => reply.entry(&a.ttl, &file_attr(&a), 0),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn forget(&mut self, _req: &Request<'_>, ino: u64, nlookup: u64) {
        self.fs.forget(ino, nlookup);
    }

    fn getattr(&mut self, _req: &Request<'_>, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        self.spawn(
            format!("getattr {ino}"),
            move |fs| async move { fs.getattr(ino).await },
            move |r| match r {
                Ok(a) => reply.attr(&a.ttl, &file_attr(&a)),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn setattr(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        _mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<u64>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<u32>,
        reply: ReplyAttr,
    ) {
        self.spawn(
            format!("setattr {ino}"),
            move |fs| async move { fs.setattr(ino, size).await },
            move |r| match r {
                Ok(a) => reply.attr(&a.ttl, &file_attr(&a)),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn readlink(&mut self, _req: &Request<'_>, ino: u64, reply: ReplyData) {
        self.spawn(
            format!("readlink {ino}"),
            move |fs| async move { fs.readlink(ino).await },
            move |r| match r {
                Ok(t) => reply.data(t.as_bytes()),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn mknod(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        reply.error(self.fs.refusal(parent).errno());
    }

    fn mkdir(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        reply.error(self.fs.refusal(parent).errno());
    }

    fn unlink(&mut self, _req: &Request<'_>, parent: u64, name: &OsStr, reply: ReplyEmpty) {
        let name: OsString = name.to_owned();
        self.spawn(
            format!("unlink {name:?} in {parent}"),
            move |fs| async move { fs.unlink(parent, &name).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn rmdir(&mut self, _req: &Request<'_>, parent: u64, _name: &OsStr, reply: ReplyEmpty) {
        reply.error(self.fs.refusal(parent).errno());
    }

    fn symlink(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        _name: &OsStr,
        _link: &std::path::Path,
        reply: ReplyEntry,
    ) {
        reply.error(self.fs.refusal(parent).errno());
    }

    fn rename(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        _name: &OsStr,
        _newparent: u64,
        _newname: &OsStr,
        _flags: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(self.fs.refusal(parent).errno());
    }

    fn link(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        newparent: u64,
        _newname: &OsStr,
        reply: ReplyEntry,
    ) {
        reply.error(self.fs.refusal(newparent).errno());
    }

    fn open(&mut self, _req: &Request<'_>, ino: u64, flags: i32, reply: ReplyOpen) {
        self.spawn(
            format!("open {ino}"),
            move |fs| async move { fs.open(ino, flags).await },
            move |r| match r {
                Ok(o) => reply.opened(o.fh, open_flags(o.keep_cache, o.direct_io)),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn read(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        size: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyData,
    ) {
        let offset = offset.max(0) as u64;
        self.spawn(
            format!("read {size} bytes at {offset} of {ino}"),
            move |fs| async move { fs.read(ino, fh, offset, size).await },
            move |r| match r {
                Ok(b) => reply.data(&b),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn write(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        offset: i64,
        data: &[u8],
        _write_flags: u32,
        _flags: i32,
        _lock_owner: Option<u64>,
        reply: ReplyWrite,
    ) {
        // Only copy-to jobs take writes, and a write may run a whole copy.
        let data = data.to_vec();
        let offset = offset.max(0) as u64;
        self.spawn_unbounded(
            format!("write to {ino}"),
            move |fs| async move { fs.write(ino, fh, offset, &data).await },
            move |r| match r {
                Ok(n) => reply.written(n),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn flush(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        _lock_owner: u64,
        reply: ReplyEmpty,
    ) {
        // A copy-to job written without a final newline runs its copy here.
        self.spawn_unbounded(
            format!("flush {ino}"),
            move |fs| async move { fs.flush(ino, fh).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn release(
        &mut self,
        _req: &Request<'_>,
        ino: u64,
        fh: u64,
        _flags: i32,
        _lock_owner: Option<u64>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.spawn_unbounded(
            format!("release {ino}"),
            move |fs| async move { fs.release(ino, fh).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn opendir(&mut self, _req: &Request<'_>, ino: u64, _flags: i32, reply: ReplyOpen) {
        self.spawn(
            format!("opendir {ino}"),
            move |fs| async move { fs.opendir(ino).await },
            move |r| match r {
                Ok(fh) => reply.opened(fh, 0),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn readdir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        offset: i64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.fs.dir_entries(fh) {
            Ok(e) => e,
            Err(e) => return reply.error(e.errno()),
        };
        for (i, e) in entries.iter().enumerate().skip(offset.max(0) as usize) {
            let kind = match e.kind {
                FileType::Directory => fuser::FileType::Directory,
                FileType::RegularFile => fuser::FileType::RegularFile,
                FileType::Symlink => fuser::FileType::Symlink,
            };
            if reply.add(e.ino, (i + 1) as i64, kind, &e.name) {
                break;
            }
        }
        reply.ok();
    }

    fn releasedir(
        &mut self,
        _req: &Request<'_>,
        _ino: u64,
        fh: u64,
        _flags: i32,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh);
        reply.ok();
    }

    fn statfs(&mut self, _req: &Request<'_>, _ino: u64, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
        );
    }

    fn access(&mut self, _req: &Request<'_>, ino: u64, mask: i32, reply: ReplyEmpty) {
        self.spawn(
            format!("access {ino}"),
            move |fs| async move { fs.access(ino, mask).await },
            move |r| match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e.errno()),
            },
        );
    }

    fn create(
        &mut self,
        _req: &Request<'_>,
        parent: u64,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let name: OsString = name.to_owned();
        self.spawn(
            format!("create {name:?} in {parent}"),
            move |fs| async move { fs.create(parent, &name, flags).await },
            move |r| match r {
                Ok((a, o)) => reply.created(
                    &a.ttl,
                    &file_attr(&a),
                    0,
                    o.fh,
                    open_flags(o.keep_cache, o.direct_io),
                ),
                Err(e) => reply.error(e.errno()),
            },
        );
    }
}
