//! A blob being filled chunk by chunk: `partial/sha256/HEX.data` (sparse, each chunk
//! written at its own offset) and `HEX.chunks` (a header, the users record, then one
//! byte per chunk).
//!
//! Invariants, across crashes and across processes sharing the directory:
//! - A chunk's map byte is set to 1 only after the chunk's data was written whole and
//!   `fdatasync`ed. A set byte therefore always means "these bytes were fetched for this
//!   blob"; a byte that was lost (torn write, crash) only costs a refetch. To keep the
//!   `fdatasync` off the read path, map bytes are written in batches
//!   ([`PERSIST_EVERY`] chunks, and when the pair is dropped); until then a written chunk
//!   is served by this process alone (from the page cache, which holds what was written).
//! - The map is reset (truncated, synced, rewritten with zeros, synced) before the data
//!   file is reused at another length, and a data file is only ever created while the
//!   map is reset, so set bytes never describe a different data file.
//! - `HEX.chunks` is never renamed; its flock is taken shared to write a chunk and
//!   exclusively to create, reset, verify, promote or delete the pair. A writer checks,
//!   under the shared lock, that its `.chunks` is still linked: once a blob was promoted
//!   or deleted nobody writes into its data file again.
//! - Every process that uses the blob holds a shared flock on the data file. The lock
//!   follows the inode into `blobs/` on promotion; an evictor must get it exclusively.
//! - Verification hashes as chunks are written, in order, so completing a blob costs
//!   only the hash of what is left. That running hash is of the bytes this process
//!   wrote or read back, which are the file's bytes only if no other process wrote
//!   meanwhile. The users record (processes that have the pair open now, and opens
//!   ever) tells: a process that was alone when it opened the pair, and at the end still
//!   sees itself alone and no open since its own, trusts its running hash; otherwise it
//!   hashes the whole file again. A crash leaves the live count too high, which only
//!   costs that full hash.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest as _, Sha256};

use super::layout::{is_at, sync_dir, Layout};
use super::lock::{lock_shared, RwFlock};

const MAGIC: &[u8; 8] = b"SCRYCHK2";
/// magic, size, chunk size, check (first 8 bytes of sha256 over the first 24).
const HEADER_LEN: u64 = 32;
/// The users record after the header: processes with the pair open now, opens ever.
const USERS_LEN: u64 = 16;
/// Where the chunk map starts.
const MAP_OFF: u64 = HEADER_LEN + USERS_LEN;
/// Live count for a users record that was torn: never alone again.
const USERS_UNKNOWN: u64 = 1 << 40;

/// What [`Partial::write_chunk`] did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stored {
    Written,
    AlreadyPresent,
    /// The pair was promoted or deleted meanwhile; nothing was written.
    Stale,
}

/// What [`Partial::finish`] found.
pub(crate) enum Finish {
    /// Some chunk is still missing.
    NotFull,
    /// The pair was promoted or deleted meanwhile (by this or another process).
    Stale,
    /// Verified and renamed into `blobs/`; the descriptor of the complete file.
    Promoted(File),
    /// The bytes hash to this other digest; the pair was deleted.
    Mismatch(String),
}

/// A hash of bytes `0..upto` of the blob, as this process wrote or read them.
struct Running {
    hasher: Sha256,
    upto: u64,
}

pub(crate) struct Partial {
    data: File,
    chunks: RwFlock,
    data_path: PathBuf,
    chunks_path: PathBuf,
    size: u64,
    chunk_size: u64,
    present: Vec<AtomicBool>,
    /// Chunks written but whose map bytes are not yet on disk.
    pending: std::sync::Mutex<Vec<u64>>,
    running: std::sync::Mutex<Running>,
    /// No other process had the pair open when this one opened it.
    alone_at_open: bool,
    /// The opens-ever count this process's open made.
    my_open: u64,
}

/// Written chunks whose map bytes are persisted together (one `fdatasync` for all).
pub(crate) const PERSIST_EVERY: usize = 8;

fn chunk_count(size: u64, chunk_size: u64) -> u64 {
    size.div_ceil(chunk_size)
}

fn header(size: u64, chunk_size: u64) -> [u8; HEADER_LEN as usize] {
    let mut h = [0u8; HEADER_LEN as usize];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&size.to_le_bytes());
    h[16..24].copy_from_slice(&chunk_size.to_le_bytes());
    let check = Sha256::digest(&h[..24]);
    h[24..].copy_from_slice(&check[..8]);
    h
}

/// `(size, chunk_size)` from a valid header; `None` for a missing, torn or foreign one.
fn read_header(f: &File) -> io::Result<Option<(u64, u64)>> {
    let mut h = [0u8; HEADER_LEN as usize];
    if read_upto(f, &mut h, 0)? < h.len() {
        return Ok(None);
    }
    let size = u64::from_le_bytes(h[8..16].try_into().unwrap());
    let chunk_size = u64::from_le_bytes(h[16..24].try_into().unwrap());
    if chunk_size == 0 || header(size, chunk_size) != h {
        return Ok(None);
    }
    Ok(Some((size, chunk_size)))
}

/// Reads from `off` until `buf` is full or the file ends; the number of bytes read.
fn read_upto(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// `(live, opens)` from the users record of a `.chunks` file.
fn read_users(f: &File) -> io::Result<(u64, u64)> {
    let mut b = [0u8; USERS_LEN as usize];
    match read_upto(f, &mut b, HEADER_LEN)? {
        0 if f.metadata()?.len() <= HEADER_LEN => Ok((0, 0)),
        n if n < b.len() => Ok((USERS_UNKNOWN, 0)),
        _ => Ok((
            u64::from_le_bytes(b[..8].try_into().unwrap()),
            u64::from_le_bytes(b[8..].try_into().unwrap()),
        )),
    }
}

fn users_bytes((live, opens): (u64, u64)) -> [u8; USERS_LEN as usize] {
    let mut b = [0u8; USERS_LEN as usize];
    b[..8].copy_from_slice(&live.to_le_bytes());
    b[8..].copy_from_slice(&opens.to_le_bytes());
    b
}

impl Partial {
    /// Opens the partial pair of blob `hex`. With `want = Some((size, chunk_size))` a
    /// missing or unusable pair is created or reset for that size; with `None` only a
    /// valid existing pair is opened.
    pub(crate) fn open(
        layout: &Layout,
        hex: &str,
        want: Option<(u64, u64)>,
    ) -> io::Result<Option<Partial>> {
        let chunks_path = layout.partial_chunks(hex);
        let data_path = layout.partial_data(hex);
        let mut oo = OpenOptions::new();
        oo.read(true).write(true);
        if want.is_some() {
            oo.create(true).mode(0o644);
        }
        let open = |p: &PathBuf| match oo.open(p) {
            Ok(f) => Ok(Some(f)),
            Err(e) if e.kind() == io::ErrorKind::NotFound && want.is_none() => Ok(None),
            Err(e) => Err(e),
        };
        for _ in 0..16 {
            let Some(chunks) = open(&chunks_path)? else {
                return Ok(None);
            };
            let chunks = RwFlock::new(chunks);
            let opened = {
                let _excl = chunks.exclusive()?;
                if !is_at(chunks.file(), &chunks_path)? {
                    continue; // deleted before we got the lock
                }
                let Some(data) = open(&data_path)? else {
                    return Ok(None);
                };
                // Waits while an evictor holds it; the checks below see what it did.
                lock_shared(&data)?;
                if !is_at(&data, &data_path)? || !is_at(chunks.file(), &chunks_path)? {
                    continue;
                }
                let data_len = data.metadata()?.len();
                let (size, chunk_size, reset) = match (read_header(chunks.file())?, want) {
                    (Some((s, cs)), Some((ws, _))) if s == ws && data_len == s => (s, cs, false),
                    (Some((s, cs)), None) if data_len == s => (s, cs, false),
                    (_, Some((ws, wcs))) => (ws, wcs, true),
                    (_, None) => return Ok(None),
                };
                let n = chunk_count(size, chunk_size) as usize;
                let mut map = vec![0u8; n];
                // Kept across a reset: processes with the old pair open still count.
                let (live, opens) = read_users(chunks.file())?;
                let mine = (live.saturating_add(1), opens.wrapping_add(1));
                if reset {
                    let f = chunks.file();
                    f.set_len(0)?;
                    f.sync_data()?;
                    let mut buf = header(size, chunk_size).to_vec();
                    buf.extend_from_slice(&users_bytes(mine));
                    buf.extend_from_slice(&map);
                    f.write_all_at(&buf, 0)?;
                    f.sync_data()?;
                    data.set_len(size)?;
                } else {
                    read_upto(chunks.file(), &mut map, MAP_OFF)?;
                    chunks.file().write_all_at(&users_bytes(mine), HEADER_LEN)?;
                }
                (data, size, chunk_size, map, live == 0, mine.1)
            };
            let (data, size, chunk_size, map, alone_at_open, my_open) = opened;
            return Ok(Some(Partial {
                data,
                chunks,
                data_path,
                chunks_path,
                size,
                chunk_size,
                present: map.iter().map(|&b| AtomicBool::new(b == 1)).collect(),
                pending: std::sync::Mutex::new(Vec::new()),
                running: std::sync::Mutex::new(Running {
                    hasher: Sha256::new(),
                    upto: 0,
                }),
                alone_at_open,
                my_open,
            }));
        }
        Err(io::Error::other(format!(
            "{}: kept changing while being opened",
            chunks_path.display()
        )))
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    pub(crate) fn chunk_count(&self) -> u64 {
        self.present.len() as u64
    }

    /// Byte range of chunk `c`.
    pub(crate) fn chunk_range(&self, c: u64) -> std::ops::Range<u64> {
        let start = c * self.chunk_size;
        start..(start + self.chunk_size).min(self.size)
    }

    /// Chunks overlapping bytes `range` (clipped to the blob).
    pub(crate) fn chunks_of(&self, range: &std::ops::Range<u64>) -> std::ops::Range<u64> {
        let end = range.end.min(self.size);
        if range.start >= end {
            return 0..0;
        }
        range.start / self.chunk_size..end.div_ceil(self.chunk_size)
    }

    pub(crate) fn is_present(&self, c: u64) -> bool {
        self.present[c as usize].load(Ordering::Acquire)
    }

    pub(crate) fn all_present(&self) -> bool {
        self.present.iter().all(|p| p.load(Ordering::Acquire))
    }

    /// Whether this pair is still the live one (not promoted or deleted).
    pub(crate) fn linked(&self) -> io::Result<bool> {
        Ok(self.chunks.file().metadata()?.nlink() > 0)
    }

    /// Picks up chunks other processes wrote (map bytes only ever go from 0 to 1).
    pub(crate) fn refresh(&self, chunks: std::ops::Range<u64>) -> io::Result<()> {
        let end = chunks.end.min(self.chunk_count());
        if chunks.start >= end {
            return Ok(());
        }
        let mut map = vec![0u8; (end - chunks.start) as usize];
        read_upto(self.chunks.file(), &mut map, MAP_OFF + chunks.start)?;
        for (i, b) in map.iter().enumerate() {
            if *b == 1 {
                self.present[chunks.start as usize + i].store(true, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Stores chunk `c` (exactly its bytes): data, `fdatasync`, then its map byte.
    pub(crate) fn write_chunk(&self, c: u64, bytes: &[u8]) -> io::Result<Stored> {
        let r = self.chunk_range(c);
        if bytes.len() as u64 != r.end - r.start {
            return Err(io::Error::other(format!(
                "chunk {c} of {}: {} bytes, expected {}",
                self.data_path.display(),
                bytes.len(),
                r.end - r.start
            )));
        }
        let _shared = self.chunks.shared()?;
        if !self.linked()? {
            return Ok(Stored::Stale);
        }
        if self.is_present(c) {
            return Ok(Stored::AlreadyPresent);
        }
        self.data.write_all_at(bytes, r.start)?;
        self.present[c as usize].store(true, Ordering::Release);
        self.advance_hash(r.start, bytes)?;
        let batch = {
            let mut pending = self.pending.lock().unwrap();
            pending.push(c);
            if pending.len() >= PERSIST_EVERY {
                std::mem::take(&mut *pending)
            } else {
                Vec::new()
            }
        };
        self.persist(&batch)?;
        Ok(Stored::Written)
    }

    /// Extends the running hash with `bytes` (just written at `start`) when they are
    /// next, then with chunks already present after them (read back from the file).
    /// Skipped while another thread is at it: what is not hashed here, `finish` does.
    fn advance_hash(&self, start: u64, bytes: &[u8]) -> io::Result<()> {
        let Ok(mut run) = self.running.try_lock() else {
            return Ok(());
        };
        if run.upto == start {
            run.hasher.update(bytes);
            run.upto = start + bytes.len() as u64;
        }
        let mut buf = Vec::new();
        while run.upto < self.size && self.is_present(run.upto / self.chunk_size) {
            let r = self.chunk_range(run.upto / self.chunk_size);
            buf.resize((r.end - r.start) as usize, 0);
            self.data.read_exact_at(&mut buf, r.start)?;
            run.hasher.update(&buf);
            run.upto = r.end;
        }
        Ok(())
    }

    /// Makes `chunks` durable: their data first, then their map bytes.
    fn persist(&self, chunks: &[u64]) -> io::Result<()> {
        if chunks.is_empty() {
            return Ok(());
        }
        let _shared = self.chunks.shared()?;
        if !self.linked()? {
            return Ok(());
        }
        self.data.sync_data()?;
        for &c in chunks {
            self.chunks.file().write_all_at(&[1], MAP_OFF + c)?;
        }
        Ok(())
    }

    /// Persists every chunk still pending.
    pub(crate) fn persist_pending(&self) -> io::Result<()> {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap());
        self.persist(&batch)
    }

    /// Reads stored bytes; callers check the chunks are present first.
    pub(crate) fn read_at(&self, buf: &mut [u8], off: u64) -> io::Result<()> {
        self.data.read_exact_at(buf, off)
    }

    /// Deletes the pair (when it is still the live one); users of it see it stale.
    pub(crate) fn discard(&self) -> io::Result<()> {
        let _excl = self.chunks.exclusive()?;
        if self.linked()? {
            fs::remove_file(&self.chunks_path)?;
            if is_at(&self.data, &self.data_path)? {
                fs::remove_file(&self.data_path)?;
            }
            sync_dir(
                self.chunks_path
                    .parent()
                    .unwrap_or(std::path::Path::new(".")),
            )?;
        }
        Ok(())
    }

    /// Verifies a full pair against `hex` and promotes it to `blobs/`, or deletes it.
    pub(crate) fn finish(&self, layout: &Layout, hex: &str) -> io::Result<Finish> {
        let _excl = self.chunks.exclusive()?;
        if !self.linked()? || !is_at(&self.data, &self.data_path)? {
            return Ok(Finish::Stale);
        }
        self.refresh(0..self.chunk_count())?;
        if !self.all_present() {
            return Ok(Finish::NotFull);
        }
        // Trusted only when no other process can have written into the data file.
        let alone = self.alone_at_open && read_users(self.chunks.file())? == (1, self.my_open);
        let (mut hasher, mut off) = {
            let run = self.running.lock().unwrap();
            match alone {
                true => (run.hasher.clone(), run.upto),
                false => (Sha256::new(), 0),
            }
        };
        let mut buf = vec![0u8; 1 << 20];
        while off < self.size {
            let n = (self.size - off).min(buf.len() as u64) as usize;
            self.data.read_exact_at(&mut buf[..n], off)?;
            hasher.update(&buf[..n]);
            off += n as u64;
        }
        let actual = hex::encode(hasher.finalize());
        let partial_dir = layout.partial_dir();
        if actual != hex {
            fs::remove_file(&self.chunks_path)?;
            fs::remove_file(&self.data_path)?;
            sync_dir(&partial_dir)?;
            return Ok(Finish::Mismatch(actual));
        }
        self.data.sync_all()?;
        // Unlink the map first: from here on writers see a stale pair and stay out.
        fs::remove_file(&self.chunks_path)?;
        sync_dir(&partial_dir)?;
        fs::rename(&self.data_path, layout.blob(hex))?;
        sync_dir(&layout.blobs_dir())?;
        sync_dir(&partial_dir)?;
        Ok(Finish::Promoted(self.data.try_clone()?))
    }
}

impl Partial {
    /// Leaves the users record (best effort: a count left too high only costs full
    /// hashes later).
    fn leave(&self) -> io::Result<()> {
        let _excl = self.chunks.exclusive()?;
        if self.linked()? {
            let (live, opens) = read_users(self.chunks.file())?;
            let users = users_bytes((live.saturating_sub(1), opens));
            self.chunks.file().write_all_at(&users, HEADER_LEN)?;
        }
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        // Best effort: a chunk whose map byte is lost is only fetched again.
        let _ = self.persist_pending();
        let _ = self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_torn_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c");
        fs::write(&p, header(1000, 64)).unwrap();
        assert_eq!(
            read_header(&File::open(&p).unwrap()).unwrap(),
            Some((1000, 64))
        );
        let mut torn = header(1000, 64);
        torn[9] ^= 1;
        fs::write(&p, torn).unwrap();
        assert_eq!(read_header(&File::open(&p).unwrap()).unwrap(), None);
        fs::write(&p, &header(1000, 64)[..20]).unwrap();
        assert_eq!(read_header(&File::open(&p).unwrap()).unwrap(), None);
    }

    /// A pair of 3 chunks of 4 bytes ("0123", "4567", "89ab") for blob `hex`.
    fn blob() -> (Vec<u8>, String) {
        let bytes = b"0123456789ab".to_vec();
        let hex = hex::encode(Sha256::digest(&bytes));
        (bytes, hex)
    }

    fn layout() -> (tempfile::TempDir, Layout) {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        layout.create().unwrap();
        (dir, layout)
    }

    fn write_all(p: &Partial, bytes: &[u8], order: &[u64]) {
        for &c in order {
            let r = p.chunk_range(c);
            assert_eq!(
                p.write_chunk(c, &bytes[r.start as usize..r.end as usize])
                    .unwrap(),
                Stored::Written
            );
        }
    }

    /// Overwrites the data file behind the pair's back.
    fn scribble(layout: &Layout, hex: &str, at: u64) {
        let f = OpenOptions::new()
            .write(true)
            .open(layout.partial_data(hex))
            .unwrap();
        f.write_all_at(b"X", at).unwrap();
    }

    #[test]
    fn a_lone_writer_verifies_from_its_running_hash_in_any_order() {
        for order in [[0, 1, 2], [2, 0, 1], [1, 2, 0]] {
            let (_d, layout) = layout();
            let (bytes, hex) = blob();
            let p = Partial::open(&layout, &hex, Some((12, 4)))
                .unwrap()
                .unwrap();
            write_all(&p, &bytes, &order);
            // What this process wrote is what it hashed: a change made behind its back
            // is not read again (the users record says nobody else had the pair).
            scribble(&layout, &hex, 5);
            assert!(
                matches!(p.finish(&layout, &hex).unwrap(), Finish::Promoted(_)),
                "order {order:?}"
            );
        }
    }

    #[test]
    fn another_writer_makes_finish_hash_the_file_again() {
        let (_d, layout) = layout();
        let (bytes, hex) = blob();
        let p = Partial::open(&layout, &hex, Some((12, 4)))
            .unwrap()
            .unwrap();
        // A second opener (another process, as far as the files can tell) writes
        // chunk 0 again with other bytes after `p` wrote and hashed it.
        let q = Partial::open(&layout, &hex, Some((12, 4)))
            .unwrap()
            .unwrap();
        write_all(&p, &bytes, &[0]);
        assert_eq!(q.write_chunk(0, b"0X23").unwrap(), Stored::Written);
        drop(q);
        write_all(&p, &bytes, &[1, 2]);
        assert!(matches!(
            p.finish(&layout, &hex).unwrap(),
            Finish::Mismatch(_)
        ));
    }

    #[test]
    fn a_pair_opened_beside_another_user_is_hashed_again() {
        let (_d, layout) = layout();
        let (bytes, hex) = blob();
        let first = Partial::open(&layout, &hex, Some((12, 4)))
            .unwrap()
            .unwrap();
        let p = Partial::open(&layout, &hex, Some((12, 4)))
            .unwrap()
            .unwrap();
        drop(first);
        write_all(&p, &bytes, &[0, 1, 2]);
        scribble(&layout, &hex, 5);
        assert!(matches!(
            p.finish(&layout, &hex).unwrap(),
            Finish::Mismatch(_)
        ));
        // And a clean pair whose only other user left before this one opened it is
        // trusted again.
        let (bytes, hex) = blob();
        let (_d2, layout) = self::layout();
        drop(Partial::open(&layout, &hex, Some((12, 4))).unwrap());
        let p = Partial::open(&layout, &hex, Some((12, 4)))
            .unwrap()
            .unwrap();
        write_all(&p, &bytes, &[0, 1, 2]);
        assert!(matches!(
            p.finish(&layout, &hex).unwrap(),
            Finish::Promoted(_)
        ));
    }

    #[test]
    fn reopen_keeps_chunks_and_a_new_size_resets_them() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        layout.create().unwrap();
        let hex = "ab".repeat(32);
        let p = Partial::open(&layout, &hex, Some((10, 4)))
            .unwrap()
            .unwrap();
        assert_eq!(p.chunk_count(), 3);
        assert_eq!(p.write_chunk(2, b"89").unwrap(), Stored::Written);
        assert_eq!(p.write_chunk(2, b"89").unwrap(), Stored::AlreadyPresent);
        assert!(p.write_chunk(1, b"4567x").is_err());
        drop(p);
        let q = Partial::open(&layout, &hex, None).unwrap().unwrap();
        assert!(q.is_present(2) && !q.is_present(0) && !q.is_present(1));
        assert_eq!(q.chunk_size(), 4);
        drop(q);
        let r = Partial::open(&layout, &hex, Some((12, 4)))
            .unwrap()
            .unwrap();
        assert!(!r.is_present(2));
        assert_eq!(r.size(), 12);
    }
}
