//! Files of layers that were read, kept decompressed and verified, by their SHA-256
//! (the same file in many layers or images is kept once). Small files live in
//! memory, larger ones in unlinked files on the cache's disk (nothing is left behind
//! by a crash); each kind has a byte budget and drops its least recently used files
//! beyond it. A file in use by a reader stays readable until the reader lets go.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use lru::LruCache;

/// Files up to this size are kept in memory.
pub const MEMORY_FILE_MAX: u64 = 1 << 20;
/// Default budget of files kept in memory.
pub const DEFAULT_MEMORY_BUDGET: u64 = 128 << 20;
/// Default budget of files kept on disk.
pub const DEFAULT_DISK_BUDGET: u64 = 2 << 30;

/// A file's data, verified.
pub enum Stored {
    Memory(Bytes),
    /// An unlinked file holding the data.
    Disk {
        file: File,
        len: u64,
    },
}

impl Stored {
    pub fn len(&self) -> u64 {
        match self {
            Stored::Memory(b) => b.len() as u64,
            Stored::Disk { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Up to `len` bytes at `offset` (fewer at the end).
    pub fn read(&self, offset: u64, len: u32) -> io::Result<Bytes> {
        let end = offset.saturating_add(len.into()).min(self.len());
        if offset >= end {
            return Ok(Bytes::new());
        }
        match self {
            Stored::Memory(b) => Ok(b.slice(offset as usize..end as usize)),
            Stored::Disk { file, .. } => {
                let mut buf = vec![0u8; (end - offset) as usize];
                file.read_exact_at(&mut buf, offset)?;
                Ok(Bytes::from(buf))
            }
        }
    }
}

struct Pool {
    lru: LruCache<[u8; 32], Arc<Stored>>,
    bytes: u64,
    budget: u64,
}

impl Pool {
    fn new(budget: u64) -> Pool {
        Pool {
            lru: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    fn insert(&mut self, digest: [u8; 32], s: Arc<Stored>) {
        self.bytes += s.len();
        if let Some(old) = self.lru.put(digest, s) {
            self.bytes -= old.len();
        }
        while self.bytes > self.budget && self.lru.len() > 1 {
            match self.lru.pop_lru() {
                Some((_, gone)) => self.bytes -= gone.len(),
                None => break,
            }
        }
    }
}

/// See the module documentation.
pub struct FileCache {
    dir: PathBuf,
    memory: Mutex<Pool>,
    disk: Mutex<Pool>,
    next: AtomicU64,
}

impl FileCache {
    /// Larger files go to unlinked files in `dir` (created when needed).
    pub fn new(dir: &Path, memory_budget: u64, disk_budget: u64) -> FileCache {
        FileCache {
            dir: dir.to_path_buf(),
            memory: Mutex::new(Pool::new(memory_budget)),
            disk: Mutex::new(Pool::new(disk_budget)),
            next: AtomicU64::new(0),
        }
    }

    fn pool(&self, size: u64) -> std::sync::MutexGuard<'_, Pool> {
        let p = if size <= MEMORY_FILE_MAX {
            &self.memory
        } else {
            &self.disk
        };
        p.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The kept data of the file with SHA-256 `digest` and `size` bytes.
    pub fn get(&self, digest: &[u8; 32], size: u64) -> Option<Arc<Stored>> {
        self.pool(size).lru.get(digest).cloned()
    }

    /// Keeps the file with SHA-256 `digest` and `size` bytes that `fill` writes;
    /// `fill` checks what it wrote (an error drops it all).
    pub fn fill(
        &self,
        digest: [u8; 32],
        size: u64,
        fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> io::Result<Arc<Stored>> {
        let stored = if size <= MEMORY_FILE_MAX {
            let mut buf = Vec::with_capacity(size as usize);
            fill(&mut buf)?;
            Stored::Memory(Bytes::from(buf))
        } else {
            std::fs::create_dir_all(&self.dir)?;
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let path = self.dir.join(format!(".file-{}-{n}", std::process::id()));
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)?;
            // Unlinked at once: the data lives as long as the open file, and a crash
            // leaves nothing behind.
            std::fs::remove_file(&path)?;
            let mut w = io::BufWriter::with_capacity(1 << 20, &file);
            fill(&mut w)?;
            w.flush()?;
            drop(w);
            let len = file.metadata()?.len();
            Stored::Disk { file, len }
        };
        if stored.len() != size {
            return Err(io::Error::other(format!(
                "{} bytes kept of a {size}-byte file",
                stored.len()
            )));
        }
        let stored = Arc::new(stored);
        self.pool(size).insert(digest, stored.clone());
        Ok(stored)
    }

    /// (files, bytes) in memory and on disk.
    pub fn usage(&self) -> ((usize, u64), (usize, u64)) {
        let m = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        let d = self.disk.lock().unwrap_or_else(|e| e.into_inner());
        ((m.lru.len(), m.bytes), (d.lru.len(), d.bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_files_in_memory_large_on_disk_within_budgets() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(dir.path(), 3 << 20, 5 << 20);
        let small = [1u8; 32];
        let s = cache.fill(small, 5, |w| w.write_all(b"hello")).unwrap();
        assert!(matches!(*s, Stored::Memory(_)));
        assert_eq!(&s.read(1, 3).unwrap()[..], b"ell");
        assert_eq!(&s.read(4, 100).unwrap()[..], b"o");
        assert!(s.read(5, 1).unwrap().is_empty());
        assert!(cache.get(&small, 5).is_some());

        let big = vec![7u8; 2 << 20];
        let keep = cache
            .fill([2; 32], big.len() as u64, |w| w.write_all(&big))
            .unwrap();
        assert!(matches!(*keep, Stored::Disk { .. }));
        assert_eq!(keep.read((2 << 20) - 2, 10).unwrap().len(), 2);
        // Nothing named is left in the directory: the data lives in the open file.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Past the disk budget the least recently used goes; a reader still has it.
        for k in 3..6u8 {
            cache
                .fill([k; 32], big.len() as u64, |w| w.write_all(&big))
                .unwrap();
        }
        assert!(cache.get(&[2; 32], big.len() as u64).is_none());
        assert_eq!(cache.usage().1, (2, 4 << 20));
        assert_eq!(keep.read(0, 4).unwrap()[..], [7, 7, 7, 7]);

        // A fill that fails or writes the wrong amount keeps nothing.
        let err = cache.fill([9; 32], 5, |w| {
            w.write_all(b"he")?;
            Err(io::Error::other("bad data"))
        });
        assert!(err.is_err());
        assert!(cache.fill([9; 32], 5, |w| w.write_all(b"hey")).is_err());
        assert!(cache.get(&[9; 32], 5).is_none());
    }
}
