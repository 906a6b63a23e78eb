//! Content-addressed blob cache on local disk, shared by every process that uses one
//! cache directory, with a byte-budget LRU and chunked, lazily fetched partial blobs.
//!
//! The cache knows nothing of registries or FUSE: bytes come from a [`RangeFetcher`].
//! Reads at any offset fetch only the aligned chunks they touch (plus a read-ahead
//! window that grows while reads stay sequential); one fetch per chunk serves every
//! concurrent reader. A blob whose chunks are all present is verified against its
//! digest before it becomes complete; a mismatch deletes it, counts a verification
//! failure for the digest ([`BlobCache::failures`]) and tells every subscriber
//! ([`BlobCache::subscribe_failures`]), so readers can drop what they were served.
//!
//! What a read gets ([`Verify`]): by default a range in the middle of a blob not yet
//! complete is served as fetched, unverified; a read that reaches the blob's last byte
//! never succeeds unless the whole blob matched its digest (it waits for the rest of the
//! blob and its verification). With [`Verify::Complete`] every read waits for that.
//!
//! Data safety: complete blobs and small objects are verified before they appear under
//! their names; partial chunks are served only once written whole and synced (see
//! `cache/partial.rs`), so no crash makes the cache serve bytes nobody fetched for that
//! blob. Files in use by any process (a [`PinGuard`], a read in progress) are never
//! evicted.

mod fill;
mod index;
mod layout;
mod lock;
mod partial;
mod small;
mod state;
mod stats;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::io::AsyncRead;

use crate::error::{Error, Result};
pub use small::MAX_SMALL_BYTES;

use index::{Index, Key};
use layout::{digest_hex, Layout};
use state::{Arrived, BlobState, Flight, Gen, Outcome, Plan, Want};

/// How many blobs' read patterns are remembered.
const HINTS: usize = 256;

/// Default byte budget: 10 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 10 << 30;
/// Default chunk size: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: u64 = 4 << 20;
/// Default largest read-ahead window: 32 MiB.
pub const DEFAULT_READ_AHEAD_MAX: u64 = 32 << 20;
/// How long after a fetch of a blob stalled its next fetches wait only
/// [`HURRIED_TIMEOUT`] (see `Shared::fetch_idle`).
pub(crate) const FAILURE_MEMORY: Duration = Duration::from_secs(2);
/// The wait for a fetch started just after another one of the same blob stalled.
pub(crate) const HURRIED_TIMEOUT: Duration = Duration::from_secs(1);
/// Default share of the filesystem the cache may fill it up to.
pub const DEFAULT_MAX_FS_FRACTION: f64 = 0.95;

/// How much of a blob must be verified before a read of it is answered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// Middle ranges are served as fetched (unverified until the blob is whole); a read
    /// that reaches the blob's end waits until the whole blob matched its digest.
    #[default]
    End,
    /// Every read waits until the whole blob is fetched and matched its digest.
    Complete,
}

#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// The cache directory (created when missing).
    pub dir: PathBuf,
    /// Budget for everything stored, in bytes.
    pub max_bytes: u64,
    /// Size of the aligned chunks partial blobs are fetched and stored in.
    pub chunk_size: u64,
    /// Largest read-ahead window for sequential reads.
    pub read_ahead_max: u64,
    /// Never store a byte that would take the filesystem past this share of its size.
    pub max_fs_fraction: f64,
    /// Longest wait for the fetcher's answer and for each piece of its body.
    pub fetch_timeout: Duration,
    /// Record this process's counters and budget in the directory (`DIR/stats.json`),
    /// this often and when the cache is dropped, for `scry cache status`. Mounts do;
    /// `None` (the default) records nothing.
    pub record_stats: Option<Duration>,
    /// Which reads wait for the whole blob's verification.
    pub verify: Verify,
}

impl CacheConfig {
    /// Defaults for everything but the directory.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        CacheConfig {
            dir: dir.into(),
            max_bytes: DEFAULT_MAX_BYTES,
            chunk_size: DEFAULT_CHUNK_SIZE,
            read_ahead_max: DEFAULT_READ_AHEAD_MAX,
            max_fs_fraction: DEFAULT_MAX_FS_FRACTION,
            fetch_timeout: Duration::from_secs(60),
            record_stats: None,
            verify: Verify::End,
        }
    }
}

/// `$XDG_CACHE_HOME/scry`, else `$HOME/.cache/scry`.
pub fn default_dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => PathBuf::from(std::env::var_os("HOME").filter(|v| !v.is_empty())?).join(".cache"),
    };
    Some(base.join("scry"))
}

/// A blob as its descriptor names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BlobKey {
    /// `sha256:` and 64 lowercase hex digits.
    pub digest: String,
    pub size: u64,
}

impl BlobKey {
    pub fn new(digest: impl Into<String>, size: u64) -> Self {
        BlobKey {
            digest: digest.into(),
            size,
        }
    }
}

/// Unverified blob bytes from a fetcher.
pub type FetchBody = Pin<Box<dyn AsyncRead + Send>>;

/// What a [`RangeFetcher`] answered: a body whose first byte is blob byte `offset`.
pub struct FetchedRange {
    pub offset: u64,
    pub body: FetchBody,
}

impl FetchedRange {
    pub fn new(offset: u64, body: FetchBody) -> Self {
        FetchedRange { offset, body }
    }

    pub fn from_bytes(offset: u64, bytes: Bytes) -> Self {
        FetchedRange {
            offset,
            body: Box::pin(io::Cursor::new(bytes)),
        }
    }
}

/// Where the cache gets bytes.
///
/// Contract: `fetch(key, range)` answers with a body starting at `offset <= range.start`
/// that covers at least `range` (up to the end of the blob): normally exactly `range`
/// (`offset == range.start`); when the server ignored Range, the whole blob from offset
/// 0. The cache stores every whole chunk the body passes through and reads past
/// `range.end` only while the body has more. An error, or a body that ends early, fails
/// the chunks not yet received. The bytes need not be verified: the cache verifies the
/// whole blob before it is complete.
#[async_trait]
pub trait RangeFetcher: Send + Sync {
    async fn fetch(&self, key: &BlobKey, range: Range<u64>) -> Result<FetchedRange>;
}

/// Counters and sizes, for `scry cache status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CacheStats {
    /// Entries in the index: complete + partial blobs + small objects.
    pub entries: u64,
    pub complete_blobs: u64,
    pub partial_blobs: u64,
    pub small_objects: u64,
    /// Bytes stored, as this process accounts them (rescanned now and then).
    pub bytes: u64,
    pub max_bytes: u64,
    /// Blobs this process holds open (pinned or being read).
    pub in_use: u64,
    /// Reads (and whole fetches) served without waiting for a fetch: since open, or
    /// with [`BlobCache::status`] of every process that recorded its counters.
    pub hits: u64,
    /// Reads (and whole fetches) that waited for a fetch (counted as `hits` is).
    pub misses: u64,
    /// Bytes received from fetchers (counted as `hits` is).
    pub bytes_fetched: u64,
}

/// What [`BlobCache::prune`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PruneReport {
    pub removed_entries: u64,
    pub removed_bytes: u64,
    /// Entries kept because a process uses them.
    pub kept_in_use: u64,
    pub remaining_bytes: u64,
}

/// Keeps a blob from being evicted, by this process or any other sharing the
/// directory, while it lives. Pin a blob for as long as a file handle shows it.
pub struct PinGuard {
    _state: Arc<BlobState>,
}

/// `(used, total)` bytes of the filesystem holding a path.
type UsageProbe = Arc<dyn Fn(&Path) -> io::Result<(u64, u64)> + Send + Sync>;

pub(crate) struct Shared {
    config: CacheConfig,
    layout: Layout,
    index: Mutex<Index>,
    states: Mutex<HashMap<String, Weak<BlobState>>>,
    hints: Mutex<lru::LruCache<String, Arc<state::Hints>>>,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes_fetched: AtomicU64,
    flight_seq: AtomicU64,
    tmp_seq: AtomicU64,
    /// Counters already added to `DIR/stats.json`.
    recorded: Mutex<stats::Counters>,
    /// How full the filesystem is (replaced in tests).
    fs_usage: Mutex<UsageProbe>,
    /// Scans of the directory merged into the index since open.
    scans: AtomicU64,
    /// Verification failures per hex digest since open.
    failures: Mutex<HashMap<String, u64>>,
    /// Tells subscribers the digest of each blob that failed verification.
    failed_tx: tokio::sync::broadcast::Sender<String>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        if self.config.record_stats.is_some() {
            if let Err(e) = self.record(false) {
                tracing::warn!(
                    "cache: recording counters in {}: {e}",
                    self.layout.root().display()
                );
            }
        }
    }
}

/// The cache. Cheap to share through the `Arc` [`BlobCache::open`] returns.
pub struct BlobCache {
    shared: Arc<Shared>,
}

/// Runs file I/O on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::other(format!("cache task failed: {e}")))?
}

/// A copy of a shared error, same kind and message, for each waiter of a flight.
fn replicate(e: &Error) -> Error {
    match e {
        Error::NotFound(m) => Error::NotFound(m.clone()),
        Error::ImageNotFound(m) => Error::ImageNotFound(m.clone()),
        Error::Unauthorized(m) => Error::Unauthorized(m.clone()),
        Error::DigestMismatch {
            what,
            expected,
            actual,
        } => Error::DigestMismatch {
            what: what.clone(),
            expected: expected.clone(),
            actual: actual.clone(),
        },
        Error::Unsupported(m) => Error::Unsupported(m.clone()),
        Error::InvalidInput(m) => Error::InvalidInput(m.clone()),
        Error::Network(m) => Error::Network(m.clone()),
        Error::Io(io) => Error::Io(match io.raw_os_error() {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(io.kind(), io.to_string()),
        }),
        Error::Other(m) => Error::Other(m.clone()),
        Error::Context { context, source } => Error::Context {
            context: context.clone(),
            source: Box::new(replicate(source)),
        },
    }
}

async fn wait(mut rx: Flight) -> Outcome {
    match rx.wait_for(|v| v.is_some()).await {
        Ok(v) => v.clone().expect("waited for a value"),
        Err(_) => Err(Arc::new(Error::other("a chunk fetch was abandoned"))),
    }
}

impl BlobCache {
    /// Opens (creating when needed) the cache directory and indexes what it holds.
    pub fn open(config: CacheConfig) -> Result<Arc<BlobCache>> {
        BlobCache::open_in(config, true)
    }

    /// Opens an existing cache directory without creating anything in it (for looking
    /// at it or pruning it); an error when the directory does not exist.
    pub fn open_existing(config: CacheConfig) -> Result<Arc<BlobCache>> {
        if !config.dir.is_dir() {
            return Err(Error::invalid(format!(
                "cache directory {} does not exist",
                config.dir.display()
            )));
        }
        BlobCache::open_in(config, false)
    }

    fn open_in(config: CacheConfig, create: bool) -> Result<Arc<BlobCache>> {
        if config.chunk_size < 4096 {
            return Err(Error::invalid(format!(
                "cache chunk size {} is too small (at least 4096 bytes)",
                config.chunk_size
            )));
        }
        let layout = Layout::new(&config.dir);
        let what = || format!("opening cache {}", config.dir.display());
        if create {
            layout
                .create()
                .map_err(|e| Error::from(e).context(what()))?;
            layout.clean_tmp(Duration::from_secs(24 * 3600));
        }
        let mut index = Index::new();
        index.merge(index::scan(&layout).map_err(|e| Error::from(e).context(what()))?);
        let record = config.record_stats;
        let cache = Arc::new(BlobCache {
            shared: Arc::new(Shared {
                config,
                layout,
                index: Mutex::new(index),
                states: Mutex::new(HashMap::new()),
                hints: Mutex::new(lru::LruCache::new(HINTS.try_into().expect("non-zero"))),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
                bytes_fetched: AtomicU64::new(0),
                flight_seq: AtomicU64::new(0),
                tmp_seq: AtomicU64::new(0),
                recorded: Mutex::new(stats::Counters::default()),
                fs_usage: Mutex::new(Arc::new(layout::fs_usage)),
                scans: AtomicU64::new(0),
                failures: Mutex::new(HashMap::new()),
                failed_tx: tokio::sync::broadcast::channel(64).0,
            }),
        });
        if let Some(every) = record {
            // The budget is noted at once; counters follow every `every`.
            cache.shared.record(true).map_err(|e| {
                Error::from(e).context(format!(
                    "opening cache {}: recording the budget",
                    cache.dir().display()
                ))
            })?;
            stats::start_recorder(&cache.shared, every);
        }
        Ok(cache)
    }

    /// Adds this process's counters not yet recorded to the directory's
    /// (`DIR/stats.json`); a no-op when nothing changed.
    pub fn record_stats(&self) -> Result<()> {
        self.shared.record(false).map_err(|e| {
            Error::from(e).context(format!(
                "recording cache counters in {}",
                self.dir().display()
            ))
        })
    }

    /// Like [`BlobCache::stats`], with the counters of every process that recorded
    /// them in the directory (plus this one's not yet recorded), and the budget the
    /// last of them used (this process's own when it records).
    pub fn status(&self) -> CacheStats {
        let mut s = self.stats();
        let rec = stats::read(&self.shared.layout);
        let all = self.shared.unrecorded();
        s.hits = rec.counters.hits + all.hits;
        s.misses = rec.counters.misses + all.misses;
        s.bytes_fetched = rec.counters.bytes_fetched + all.bytes_fetched;
        if self.shared.config.record_stats.is_none() {
            s.max_bytes = rec.max_bytes.unwrap_or(s.max_bytes);
        }
        s
    }

    pub fn config(&self) -> &CacheConfig {
        &self.shared.config
    }

    pub fn dir(&self) -> &Path {
        self.shared.layout.root()
    }

    async fn plan(&self, state: &Arc<BlobState>, key: &BlobKey, want: Want) -> Result<Plan> {
        let (sh, st, k) = (self.shared.clone(), state.clone(), key.clone());
        blocking(move || sh.plan(&st, &k, &want)).await
    }

    fn spawn(
        &self,
        state: &Arc<BlobState>,
        key: &BlobKey,
        plan: &mut Plan,
        f: &Arc<dyn RangeFetcher>,
    ) {
        for job in plan.jobs.drain(..) {
            let task = self
                .shared
                .clone()
                .fill(state.clone(), key.clone(), job, f.clone());
            tokio::spawn(task);
        }
    }

    /// Counts a first lookup as a hit (everything present) or a miss.
    fn count_lookup(&self, ready: bool) {
        let counter = if ready {
            &self.shared.hits
        } else {
            &self.shared.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Up to `len` bytes of the blob from `offset` (fewer at its end): from the complete
    /// file, or from partial chunks, fetching the missing ones (and reading ahead when
    /// reads are sequential). Bytes of a blob not yet complete are unverified, except
    /// that a read reaching the blob's end (and with [`Verify::Complete`] every read)
    /// is answered only once the whole blob matched its digest.
    pub async fn read(
        &self,
        key: &BlobKey,
        offset: u64,
        len: u32,
        fetcher: &Arc<dyn RangeFetcher>,
    ) -> Result<Bytes> {
        let hex = digest_hex(&key.digest)?;
        let range = offset..offset.saturating_add(len as u64).min(key.size);
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let state = self.shared.state(hex);
        let what = || {
            format!(
                "reading bytes {}-{} of blob {}",
                range.start, range.end, key.digest
            )
        };
        if range.end == key.size || self.shared.config.verify == Verify::Complete {
            return self
                .read_verified(&state, key, range.clone(), fetcher)
                .await
                .map_err(|e| e.context(what()));
        }
        let mut passed = Vec::new();
        for attempt in 0..4 {
            let want = Want::Read(range.clone(), attempt == 0);
            // Planning and, when everything is there, copying: one trip to the pool.
            let (sh, st, k, r) = (
                self.shared.clone(),
                state.clone(),
                key.clone(),
                range.clone(),
            );
            let (mut plan, hit) = blocking(move || {
                let plan = sh.plan(&st, &k, &want)?;
                let hit = match plan.ready {
                    true => sh.assemble(&st, &r, &[])?,
                    false => None,
                };
                Ok((plan, hit))
            })
            .await
            .map_err(|e| e.context(what()))?;
            self.spawn(&state, key, &mut plan, fetcher);
            if attempt == 0 {
                self.count_lookup(plan.ready);
            }
            if let Some(bytes) = hit {
                return Ok(bytes);
            }
            for rx in plan.waits {
                match wait(rx).await {
                    Ok(Arrived::Stored) => {}
                    Ok(Arrived::Passed { start, bytes }) => passed.push((start, bytes)),
                    Ok(Arrived::Skipped) => {}
                    Err(e) => return Err(replicate(&e)),
                }
            }
            let (sh, st, r, p) = (
                self.shared.clone(),
                state.clone(),
                range.clone(),
                passed.clone(),
            );
            let got = blocking(move || Ok(sh.assemble(&st, &r, &p)?)).await;
            if let Some(bytes) = got.map_err(|e| e.context(what()))? {
                return Ok(bytes);
            }
        }
        Err(Error::other(format!(
            "{}: the cached chunks kept changing",
            what()
        )))
    }

    /// Bytes `range` of the blob once all of it matched its digest: from the complete
    /// file, made complete first when needed; for a blob the cache has no room for,
    /// from one pass over the whole blob that is hashed as it streams.
    async fn read_verified(
        &self,
        state: &Arc<BlobState>,
        key: &BlobKey,
        range: Range<u64>,
        fetcher: &Arc<dyn RangeFetcher>,
    ) -> Result<Bytes> {
        for _ in 0..3 {
            if let Err(e) = self.fetch_whole(key, fetcher).await {
                if e.errno() == libc::ENOSPC {
                    tracing::debug!("{e}; verifying it as it streams instead");
                    return self.read_streamed(key, range, fetcher).await;
                }
                return Err(e);
            }
            let (st, r) = (state.clone(), range.clone());
            // `state` keeps the complete file open and locked: it cannot be evicted
            // between the fetch and this read.
            let got = blocking(move || {
                Ok(match st.current() {
                    Gen::Complete(f) => {
                        let mut out = vec![0u8; (r.end - r.start) as usize];
                        std::os::unix::fs::FileExt::read_exact_at(&*f, &mut out, r.start)?;
                        Some(Bytes::from(out))
                    }
                    _ => None,
                })
            })
            .await?;
            if let Some(b) = got {
                return Ok(b);
            }
        }
        Err(Error::other("the cached blob kept changing"))
    }

    /// Reads the whole blob from the fetcher, hashing it, and returns bytes `range` once
    /// it matched its digest. Stores nothing.
    async fn read_streamed(
        &self,
        key: &BlobKey,
        range: Range<u64>,
        fetcher: &Arc<dyn RangeFetcher>,
    ) -> Result<Bytes> {
        use sha2::Digest as _;
        use tokio::io::AsyncReadExt;
        let idle = self.shared.config.fetch_timeout;
        let fetched = tokio::time::timeout(idle, fetcher.fetch(key, 0..key.size))
            .await
            .map_err(|_| Error::Network(format!("no answer for {}s", idle.as_secs())))??;
        if fetched.offset != 0 {
            return Err(Error::other(format!(
                "the fetcher answered from offset {}, not from the start",
                fetched.offset
            )));
        }
        let mut body = fetched.body;
        let mut hasher = sha2::Sha256::new();
        let mut out = Vec::with_capacity((range.end - range.start) as usize);
        let mut buf = vec![0u8; 256 << 10];
        let mut pos = 0u64;
        while pos < key.size {
            let n = tokio::time::timeout(idle, body.read(&mut buf))
                .await
                .map_err(|_| Error::Network(format!("no data for {}s", idle.as_secs())))??;
            if n == 0 {
                break;
            }
            let n = n.min((key.size - pos) as usize);
            self.shared
                .bytes_fetched
                .fetch_add(n as u64, Ordering::Relaxed);
            let chunk = pos..pos + n as u64;
            let (a, b) = (chunk.start.max(range.start), chunk.end.min(range.end));
            if a < b {
                out.extend_from_slice(&buf[(a - pos) as usize..(b - pos) as usize]);
            }
            hasher.update(&buf[..n]);
            pos += n as u64;
        }
        if pos < key.size {
            return Err(Error::Network(format!(
                "the response ended after {pos} of {} bytes",
                key.size
            )));
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != key.digest {
            self.shared.note_failure(digest_hex(&key.digest)?);
            return Err(Error::DigestMismatch {
                what: format!("blob {}", key.digest),
                expected: key.digest.clone(),
                actual,
            });
        }
        Ok(Bytes::from(out))
    }

    /// How many times blob `digest` failed verification since the cache was opened.
    /// A reader that was served bytes of the blob before this number changed may have
    /// been served bytes that were wrong.
    pub fn failures(&self, digest: &str) -> u64 {
        let Ok(hex) = digest_hex(digest) else {
            return 0;
        };
        let f = self.shared.failures.lock().unwrap();
        f.get(hex).copied().unwrap_or(0)
    }

    /// The digest of every blob that fails verification from now on, as it happens.
    pub fn subscribe_failures(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.shared.failed_tx.subscribe()
    }

    /// Makes the blob complete and verified (fetching what is missing) and returns its
    /// path. Hold a [`PinGuard`] while using the path: an unpinned blob may be evicted.
    pub async fn fetch_whole(
        &self,
        key: &BlobKey,
        fetcher: &Arc<dyn RangeFetcher>,
    ) -> Result<PathBuf> {
        let hex = digest_hex(&key.digest)?;
        let what = || format!("caching blob {}", key.digest);
        if key.size > self.shared.config.max_bytes {
            return Err(
                Error::Io(io::Error::from_raw_os_error(libc::ENOSPC)).context(format!(
                    "{}: {} bytes do not fit the cache budget of {} bytes",
                    what(),
                    key.size,
                    self.shared.config.max_bytes
                )),
            );
        }
        let state = self.shared.state(hex);
        for attempt in 0..3 {
            let mut plan = self
                .plan(&state, key, Want::Whole)
                .await
                .map_err(|e| e.context(what()))?;
            self.spawn(&state, key, &mut plan, fetcher);
            if attempt == 0 {
                self.count_lookup(plan.ready);
            }
            let mut again = false;
            for rx in plan.waits {
                match wait(rx).await {
                    Ok(Arrived::Stored) => {}
                    Ok(Arrived::Passed { .. } | Arrived::Skipped) => again = true,
                    Err(e) => return Err(replicate(&e)),
                }
            }
            if again {
                continue;
            }
            self.shared.finish(&state).await?;
            let st = state.clone();
            if let Gen::Complete(_) = blocking(move || Ok(st.current())).await? {
                return Ok(self.shared.layout.blob(hex));
            }
        }
        Err(Error::other(format!(
            "{}: the cached chunks kept changing",
            what()
        )))
    }

    /// The complete blob's path when it is stored (and marks it recently used).
    pub fn complete_path(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest_hex(digest).ok()?;
        let path = self.shared.layout.blob(hex);
        if !path.is_file() {
            return None;
        }
        self.shared
            .index
            .lock()
            .unwrap()
            .touch(&Key::Blob(hex.to_string()));
        Some(path)
    }

    /// Keeps the blob from eviction while the guard lives. Opens the blob's files when
    /// present (a short blocking call).
    pub fn pin(&self, digest: &str) -> Result<PinGuard> {
        let hex = digest_hex(digest)?;
        let state = self.shared.state(hex);
        self.shared
            .load(&state)
            .map_err(|e| Error::from(e).context(format!("pinning cached blob {digest}")))?;
        Ok(PinGuard { _state: state })
    }

    pub fn stats(&self) -> CacheStats {
        let idx = self.shared.index.lock().unwrap();
        let (complete, partial, small) = idx.counts();
        let in_use = self
            .shared
            .states
            .lock()
            .unwrap()
            .values()
            .filter(|w| w.strong_count() > 0)
            .count();
        CacheStats {
            entries: idx.len() as u64,
            complete_blobs: complete,
            partial_blobs: partial,
            small_objects: small,
            bytes: idx.total(),
            max_bytes: self.shared.config.max_bytes,
            in_use: in_use as u64,
            hits: self.shared.hits.load(Ordering::Relaxed),
            misses: self.shared.misses.load(Ordering::Relaxed),
            bytes_fetched: self.shared.bytes_fetched.load(Ordering::Relaxed),
        }
    }

    /// Evicts least recently used entries nobody uses until at most `target_bytes`
    /// remain. Re-reads the directory first, so entries other processes stored count.
    pub fn prune(&self, target_bytes: u64) -> Result<PruneReport> {
        let sh = &self.shared;
        let scanned = index::scan(&sh.layout).map_err(|e| {
            Error::from(e).context(format!("pruning cache {}", sh.layout.root().display()))
        })?;
        let mut idx = sh.index.lock().unwrap();
        idx.merge(scanned);
        let mut report = PruneReport::default();
        for k in idx.lru_order() {
            if idx.total() <= target_bytes {
                break;
            }
            if let Key::Blob(hex) = &k {
                if sh.in_use(hex) {
                    report.kept_in_use += 1;
                    continue;
                }
            }
            match index::evict_files(&sh.layout, &k) {
                Ok(true) => {
                    if let Some(e) = idx.remove(&k) {
                        report.removed_entries += 1;
                        report.removed_bytes += e.bytes;
                    }
                }
                Ok(false) => report.kept_in_use += 1,
                Err(e) => {
                    return Err(Error::from(e).context(format!("pruning cache entry {k:?}")));
                }
            }
        }
        report.remaining_bytes = idx.total();
        Ok(report)
    }
}
