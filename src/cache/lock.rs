//! Advisory file locks (`flock`) shared between processes that use one cache directory,
//! and [`RwFlock`], which makes one file's lock usable by many threads of one process.
//!
//! `flock` locks belong to an open file description, so two threads using the same
//! descriptor never exclude each other; [`RwFlock`] adds the in-process half (a reader
//! count and a writer flag) and holds the `flock` while any in-process holder exists.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex};

fn flock(file: &File, op: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor owned by `file`, which outlives the call.
        let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Takes a shared lock, waiting for exclusive holders in other processes.
pub(crate) fn lock_shared(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_SH)
}

/// Takes an exclusive lock, waiting for other holders (released when `file` closes).
pub(crate) fn lock_exclusive(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_EX)
}

/// Takes an exclusive lock without waiting; `false` when someone holds a lock.
pub(crate) fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    match flock(file, libc::LOCK_EX | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

#[derive(Default)]
struct Holders {
    readers: usize,
    writer: bool,
}

/// A readers–writer lock over one file, exclusive across threads and processes.
pub(crate) struct RwFlock {
    file: File,
    holders: Mutex<Holders>,
    changed: Condvar,
}

impl RwFlock {
    pub(crate) fn new(file: File) -> Self {
        RwFlock {
            file,
            holders: Mutex::new(Holders::default()),
            changed: Condvar::new(),
        }
    }

    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Shared access: many holders, no exclusive holder anywhere.
    pub(crate) fn shared(&self) -> io::Result<SharedGuard<'_>> {
        let mut h = self.holders.lock().unwrap();
        while h.writer {
            h = self.changed.wait(h).unwrap();
        }
        if h.readers == 0 {
            // Other in-process readers wait on the mutex meanwhile; that is intended.
            flock(&self.file, libc::LOCK_SH)?;
        }
        h.readers += 1;
        Ok(SharedGuard { lock: self })
    }

    /// Exclusive access across threads and processes.
    pub(crate) fn exclusive(&self) -> io::Result<ExclusiveGuard<'_>> {
        let mut h = self.holders.lock().unwrap();
        while h.writer || h.readers > 0 {
            h = self.changed.wait(h).unwrap();
        }
        h.writer = true;
        drop(h);
        if let Err(e) = flock(&self.file, libc::LOCK_EX) {
            self.holders.lock().unwrap().writer = false;
            self.changed.notify_all();
            return Err(e);
        }
        Ok(ExclusiveGuard { lock: self })
    }
}

pub(crate) struct SharedGuard<'a> {
    lock: &'a RwFlock,
}

impl Drop for SharedGuard<'_> {
    fn drop(&mut self) {
        let mut h = self.lock.holders.lock().unwrap();
        h.readers -= 1;
        if h.readers == 0 {
            let _ = flock(&self.lock.file, libc::LOCK_UN);
            self.lock.changed.notify_all();
        }
    }
}

pub(crate) struct ExclusiveGuard<'a> {
    lock: &'a RwFlock,
}

impl Drop for ExclusiveGuard<'_> {
    fn drop(&mut self) {
        let _ = flock(&self.lock.file, libc::LOCK_UN);
        self.lock.holders.lock().unwrap().writer = false;
        self.lock.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_excludes_other_descriptions_and_shared_allows_many() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let lock = RwFlock::new(File::create(&path).unwrap());
        let other = File::open(&path).unwrap();
        {
            let _a = lock.shared().unwrap();
            let _b = lock.shared().unwrap();
            assert!(!try_lock_exclusive(&other).unwrap());
        }
        assert!(try_lock_exclusive(&other).unwrap());
        flock(&other, libc::LOCK_UN).unwrap();
        {
            let _x = lock.exclusive().unwrap();
            assert!(!try_lock_exclusive(&other).unwrap());
        }
        assert!(try_lock_exclusive(&other).unwrap());
    }
}
