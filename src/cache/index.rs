//! The byte-budget LRU over everything the cache stores, the directory scan that
//! rebuilds it, and eviction.
//!
//! Each process keeps its own index of the shared directory: built by a scan at open
//! (oldest modification time = least recently used), updated by what the process stores
//! and evicts, and merged with a fresh scan by [`super::BlobCache::prune`] and whenever
//! this process has stored [`rescan_every`] bytes since its last scan. The budget thus
//! holds across processes: each one sees what the others stored at its next rescan, so
//! the directory exceeds the budget by at most that many bytes per other process
//! filling it at the same time. Eviction
//! never removes a blob that any process uses: users hold a shared `flock` on the blob's
//! file (complete or partial data) and the evictor needs it exclusively.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::time::SystemTime;

use lru::LruCache;

use super::layout::{allocated, remove_if_present, sync_dir, Layout};
use super::lock::try_lock_exclusive;
use super::Shared;

/// What one index entry names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    /// A blob, complete and/or partial, by hex digest.
    Blob(String),
    /// A small object, by hex digest.
    Small(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub bytes: u64,
    pub complete: bool,
}

pub(crate) struct Index {
    lru: LruCache<Key, Entry>,
    total: u64,
    /// Bytes added since the last merge of a scan.
    since_scan: u64,
    /// Bytes reserved but not yet on disk, per key: a scan cannot see them, so a merge
    /// adds them back (else writes in flight would be forgotten and overshoot the
    /// budget until the next scan).
    pending: HashMap<Key, u64>,
}

/// Share of the budget a process may store between two scans of the directory.
const RESCAN_SHARE: u64 = 32;
/// Most a process stores between two scans, whatever the budget.
const RESCAN_MAX: u64 = 256 << 20;

/// Bytes a process stores before it rescans the directory, for a budget of `max_bytes`.
pub(crate) fn rescan_every(max_bytes: u64) -> u64 {
    (max_bytes / RESCAN_SHARE).min(RESCAN_MAX)
}

impl Index {
    pub(crate) fn new() -> Self {
        Index {
            lru: LruCache::unbounded(),
            total: 0,
            since_scan: 0,
            pending: HashMap::new(),
        }
    }

    /// Notes `bytes` of `key` as reserved and not yet written.
    pub(crate) fn begin_write(&mut self, key: &Key, bytes: u64) {
        *self.pending.entry(key.clone()).or_default() += bytes;
    }

    /// Ends a write begun with [`Index::begin_write`]: its bytes are on disk now (or,
    /// when it failed, no longer counted at all).
    pub(crate) fn end_write(&mut self, key: &Key, bytes: u64, written: bool) {
        if let Some(p) = self.pending.get_mut(key) {
            *p = p.saturating_sub(bytes);
            if *p == 0 {
                self.pending.remove(key);
            }
        }
        if !written {
            self.sub(key, bytes);
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn len(&self) -> usize {
        self.lru.len()
    }

    /// `(complete blobs, partial blobs, small objects)`.
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let mut c = (0, 0, 0);
        for (k, e) in self.lru.iter() {
            match (k, e.complete) {
                (Key::Blob(_), true) => c.0 += 1,
                (Key::Blob(_), false) => c.1 += 1,
                (Key::Small(_), _) => c.2 += 1,
            }
        }
        c
    }

    pub(crate) fn touch(&mut self, key: &Key) {
        self.lru.promote(key);
    }

    /// Counts `bytes` more for `key` (a partial blob when new) and makes it most recent.
    pub(crate) fn add(&mut self, key: &Key, bytes: u64) {
        match self.lru.get_mut(key) {
            Some(e) => e.bytes += bytes,
            None => {
                self.lru.push(
                    key.clone(),
                    Entry {
                        bytes,
                        complete: matches!(key, Key::Small(_)),
                    },
                );
            }
        }
        self.total += bytes;
        self.since_scan += bytes;
    }

    pub(crate) fn since_scan(&self) -> u64 {
        self.since_scan
    }

    pub(crate) fn sub(&mut self, key: &Key, bytes: u64) {
        if let Some(e) = self.lru.peek_mut(key) {
            let n = bytes.min(e.bytes);
            e.bytes -= n;
            self.total -= n;
        }
    }

    /// Replaces the entry for `key` and makes it most recent.
    pub(crate) fn set(&mut self, key: &Key, entry: Entry) {
        if let Some(old) = self.lru.push(key.clone(), entry) {
            if old.0 == *key {
                self.total -= old.1.bytes;
            }
        }
        self.total += entry.bytes;
    }

    pub(crate) fn remove(&mut self, key: &Key) -> Option<Entry> {
        let e = self.lru.pop(key)?;
        self.total -= e.bytes;
        Some(e)
    }

    /// Keys, least recently used first.
    pub(crate) fn lru_order(&self) -> Vec<Key> {
        self.lru.iter().rev().map(|(k, _)| k.clone()).collect()
    }

    /// Makes the index agree with a scan: entries gone from disk are dropped, sizes are
    /// taken from disk, and entries new to this process are ordered by age behind the
    /// ones it already knows.
    pub(crate) fn merge(&mut self, scanned: Vec<(Key, Entry, SystemTime)>) {
        let seen: HashSet<&Key> = scanned.iter().map(|(k, _, _)| k).collect();
        let gone: Vec<Key> = self
            .lru
            .iter()
            .filter(|(k, _)| !seen.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            self.lru.pop(&k);
        }
        // Newest first: each newcomer is demoted, so the oldest ends up least recent.
        for (k, e, _) in scanned.iter().rev() {
            match self.lru.peek_mut(k) {
                Some(x) => *x = *e,
                None => {
                    self.lru.push(k.clone(), *e);
                    self.lru.demote(k);
                }
            }
        }
        // Writes still in flight are not on disk yet: they still count.
        for (k, n) in &self.pending {
            match self.lru.peek_mut(k) {
                Some(x) => x.bytes += n,
                None => {
                    self.lru.push(
                        k.clone(),
                        Entry {
                            bytes: *n,
                            complete: false,
                        },
                    );
                }
            }
        }
        self.total = self.lru.iter().map(|(_, e)| e.bytes).sum();
        self.since_scan = 0;
    }
}

fn hex_name(name: &str) -> Option<&str> {
    (name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .then_some(name)
}

/// The entries of `dir`; none when it does not exist (a cache not yet used).
fn entries(dir: &std::path::Path) -> io::Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(rd) => Ok(rd.flatten().collect()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Everything stored under `layout`, oldest modification first.
pub(crate) fn scan(layout: &Layout) -> io::Result<Vec<(Key, Entry, SystemTime)>> {
    let mut found: HashMap<Key, (Entry, SystemTime)> = HashMap::new();
    let mut add = |key: Key, m: &fs::Metadata, bytes: u64, complete: bool| {
        let t = m.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let slot = found.entry(key).or_insert((
            Entry {
                bytes: 0,
                complete: false,
            },
            t,
        ));
        slot.0.bytes += bytes;
        slot.0.complete |= complete;
        slot.1 = slot.1.max(t);
    };
    for (dir, small) in [(layout.blobs_dir(), false), (layout.small_dir(), true)] {
        for e in entries(&dir)? {
            let name = e.file_name();
            let (Some(hex), Ok(m)) = (name.to_str().and_then(hex_name), e.metadata()) else {
                continue;
            };
            if !m.is_file() {
                continue;
            }
            let key = if small {
                Key::Small(hex.to_string())
            } else {
                Key::Blob(hex.to_string())
            };
            add(key, &m, m.len(), true);
        }
    }
    for e in entries(&layout.partial_dir())? {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(hex) = name
            .strip_suffix(".data")
            .or_else(|| name.strip_suffix(".chunks"))
            .and_then(hex_name)
        else {
            continue;
        };
        if let Ok(m) = e.metadata() {
            // The chunk map is bookkeeping (a block at most): only data counts, as the
            // budget counts the chunks stored.
            let bytes = if name.ends_with(".data") {
                allocated(&m)
            } else {
                0
            };
            add(Key::Blob(hex.to_string()), &m, bytes, false);
        }
    }
    let mut v: Vec<_> = found.into_iter().map(|(k, (e, t))| (k, e, t)).collect();
    v.sort_by_key(|x| x.2);
    Ok(v)
}

fn open_existing(path: &std::path::Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Deletes what `key` names unless a process uses it; `false` when one does.
pub(crate) fn evict_files(layout: &Layout, key: &Key) -> io::Result<bool> {
    let hex = match key {
        Key::Small(hex) => {
            remove_if_present(&layout.small(hex))?;
            return Ok(true);
        }
        Key::Blob(hex) => hex,
    };
    // Both locks are held until the names are gone, so no user can start in between
    // (openers re-check the names after their shared lock).
    let complete = open_existing(&layout.blob(hex))?;
    let data = open_existing(&layout.partial_data(hex))?;
    for f in complete.iter().chain(data.iter()) {
        if !try_lock_exclusive(f)? {
            return Ok(false);
        }
    }
    remove_if_present(&layout.blob(hex))?;
    remove_if_present(&layout.partial_chunks(hex))?;
    if data.is_some() {
        sync_dir(&layout.partial_dir())?;
        remove_if_present(&layout.partial_data(hex))?;
    }
    Ok(true)
}

impl Shared {
    /// Whether a live handle in this process uses blob `hex`.
    pub(crate) fn in_use(&self, hex: &str) -> bool {
        self.states
            .lock()
            .unwrap()
            .get(hex)
            .is_some_and(|w| w.strong_count() > 0)
    }

    /// Makes room for `bytes` more of `key` within the budget and the filesystem limit,
    /// evicting least recently used entries; `false` when that is not possible.
    pub(crate) fn reserve(&self, key: &Key, bytes: u64) -> bool {
        let mut idx = self.index.lock().unwrap();
        if idx.since_scan() >= rescan_every(self.config.max_bytes) {
            self.rescan(&mut idx);
        }
        while idx.total() + bytes > self.config.max_bytes {
            if !self.evict_one(&mut idx, key) {
                return false;
            }
        }
        if self.config.max_fs_fraction < 1.0 {
            // An unreadable usage cannot be honoured; the budget still holds.
            let probe = self.fs_usage.lock().unwrap().clone();
            while let Ok((used, total)) = probe(self.layout.root()) {
                if (used + bytes) as f64 <= self.config.max_fs_fraction * total as f64 {
                    break;
                }
                if !self.evict_one(&mut idx, key) {
                    return false;
                }
            }
        }
        idx.add(key, bytes);
        idx.begin_write(key, bytes);
        true
    }

    /// Ends a reservation made with [`Shared::reserve`] once its bytes are on disk
    /// (`written`) or were not stored after all.
    pub(crate) fn settle(&self, key: &Key, bytes: u64, written: bool) {
        self.index.lock().unwrap().end_write(key, bytes, written);
    }

    /// Merges a fresh scan of the directory into the index, so entries other processes
    /// stored count (and can be evicted) and entries they removed no longer do.
    pub(crate) fn rescan(&self, idx: &mut Index) {
        self.scans
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        match scan(&self.layout) {
            Ok(found) => idx.merge(found),
            Err(e) => tracing::warn!(
                "cache: rescanning {}: {e}; the budget counts this process's entries only",
                self.layout.root().display()
            ),
        }
    }

    /// Evicts the least recently used entry that nobody uses, other than `except`.
    fn evict_one(&self, idx: &mut Index, except: &Key) -> bool {
        for k in idx.lru_order() {
            if k == *except {
                continue;
            }
            if let Key::Blob(hex) = &k {
                if self.in_use(hex) {
                    continue;
                }
            }
            match evict_files(&self.layout, &k) {
                Ok(true) => {
                    idx.remove(&k);
                    return true;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!("cache: evicting {k:?}: {e}"),
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(bytes: u64) -> Entry {
        Entry {
            bytes,
            complete: true,
        }
    }

    #[test]
    fn a_scan_does_not_forget_writes_in_flight() {
        let mut idx = Index::new();
        let k = Key::Blob("a".repeat(64));
        let j = Key::Blob("b".repeat(64));
        // Two chunks of `k` reserved; one is on disk when the scan looks, one is not;
        // `j` is reserved and not written at all yet.
        idx.add(&k, 8);
        idx.begin_write(&k, 8);
        idx.end_write(&k, 8, true);
        idx.add(&k, 8);
        idx.begin_write(&k, 8);
        idx.add(&j, 4);
        idx.begin_write(&j, 4);
        let t = SystemTime::UNIX_EPOCH;
        idx.merge(vec![(
            k.clone(),
            Entry {
                bytes: 8,
                complete: false,
            },
            t,
        )]);
        assert_eq!(idx.total(), 20, "what is being written still counts");
        idx.end_write(&k, 8, true);
        idx.end_write(&j, 4, false);
        assert_eq!(idx.total(), 16, "a write that failed no longer counts");
        idx.merge(vec![(
            k.clone(),
            Entry {
                bytes: 16,
                complete: false,
            },
            t,
        )]);
        assert_eq!(idx.total(), 16);
    }

    #[test]
    fn merge_orders_newcomers_by_age_behind_known_entries() {
        let mut idx = Index::new();
        let k = |s: &str| Key::Blob(s.to_string());
        idx.set(&k("known"), e(5));
        idx.set(&k("gone"), e(7));
        let t = |s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s);
        idx.merge(vec![
            (k("old"), e(1), t(1)),
            (k("mid"), e(2), t(2)),
            (k("known"), e(6), t(3)),
        ]);
        assert_eq!(idx.lru_order(), vec![k("old"), k("mid"), k("known")]);
        assert_eq!(idx.total(), 9);
        idx.add(&k("old"), 10);
        assert_eq!(idx.total(), 19);
        assert_eq!(idx.remove(&k("old")), Some(e(11)));
        assert_eq!(idx.total(), 8);
    }
}
