//! Cache tests: a mock fetcher that records requests and can fail, ignore Range, serve
//! wrong bytes or hold answers back; read-path behaviour here, durability and budget in
//! `tests/durability.rs`.

mod budget;
mod durability;

use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use super::*;
use crate::error::ErrorKind;

const MIB: u64 = 1 << 20;

/// Deterministic pseudo-random bytes; `seed` makes blobs distinct.
pub(super) fn blob(len: u64, seed: u64) -> (Bytes, BlobKey) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len as usize);
    while (v.len() as u64) < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len as usize);
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&v)));
    (Bytes::from(v), BlobKey::new(digest, len))
}

pub(super) struct Mock {
    data: Bytes,
    pub requests: Mutex<Vec<Range<u64>>>,
    pub served: AtomicU64,
    pub fail: AtomicBool,
    pub ignore_range: AtomicBool,
    /// Flip the blob byte at this offset (u64::MAX: none).
    pub corrupt_at: AtomicU64,
    open: watch::Sender<bool>,
}

impl Mock {
    pub(super) fn new(data: &Bytes) -> Arc<Mock> {
        Arc::new(Mock {
            data: data.clone(),
            requests: Mutex::new(Vec::new()),
            served: AtomicU64::new(0),
            fail: AtomicBool::new(false),
            ignore_range: AtomicBool::new(false),
            corrupt_at: AtomicU64::new(u64::MAX),
            open: watch::channel(true).0,
        })
    }

    pub(super) fn dyn_(self: &Arc<Self>) -> Arc<dyn RangeFetcher> {
        self.clone()
    }

    /// Holds every answer until [`Mock::release`].
    pub(super) fn hold(&self) {
        self.open.send_replace(false);
    }

    pub(super) fn release(&self) {
        self.open.send_replace(true);
    }

    pub(super) fn requests(&self) -> Vec<Range<u64>> {
        self.requests.lock().unwrap().clone()
    }

    pub(super) fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

#[async_trait]
impl RangeFetcher for Mock {
    async fn fetch(&self, key: &BlobKey, range: Range<u64>) -> Result<FetchedRange> {
        assert_eq!(key.size, self.data.len() as u64);
        self.requests.lock().unwrap().push(range.clone());
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|o| *o).await;
        if self.fail.load(Ordering::SeqCst) {
            return Err(Error::Network("mock registry: connection refused".into()));
        }
        let (offset, span) = if self.ignore_range.load(Ordering::SeqCst) {
            (0, 0..self.data.len())
        } else {
            (range.start, range.start as usize..range.end as usize)
        };
        let mut bytes = self.data[span.clone()].to_vec();
        let bad = self.corrupt_at.load(Ordering::SeqCst) as usize;
        if span.contains(&bad) {
            bytes[bad - span.start] ^= 0xff;
        }
        self.served.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(FetchedRange::from_bytes(offset, Bytes::from(bytes)))
    }
}

pub(super) fn config(dir: &Path, chunk: u64) -> CacheConfig {
    CacheConfig {
        chunk_size: chunk,
        read_ahead_max: 8 * chunk,
        max_fs_fraction: 1.0,
        ..CacheConfig::new(dir)
    }
}

/// Polls `cond` until it holds or a generous deadline passes.
pub(super) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn slice(data: &Bytes, off: u64, len: u64) -> &[u8] {
    &data[off as usize..(off + len).min(data.len() as u64) as usize]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_read_in_the_middle_fetches_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        max_fs_fraction: 1.0,
        ..CacheConfig::new(dir.path())
    })
    .unwrap();
    let (data, key) = blob(40 * MIB, 1);
    let mock = Mock::new(&data);
    let off = 20 * MIB + 12345;
    let got = cache.read(&key, off, 4096, &mock.dyn_()).await.unwrap();
    assert_eq!(&got[..], slice(&data, off, 4096));
    assert_eq!(mock.requests(), vec![20 * MIB..24 * MIB]);
    assert_eq!(mock.served.load(Ordering::SeqCst), 4 * MIB);
    // Served from the stored chunk now (a read elsewhere in it: no read-ahead).
    let again = cache
        .read(&key, off - 8192, 4096, &mock.dyn_())
        .await
        .unwrap();
    assert_eq!(&again[..], slice(&data, off - 8192, 4096));
    assert_eq!(mock.request_count(), 1);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.bytes_fetched), (1, 1, 4 * MIB));
    assert_eq!(
        (s.partial_blobs, s.complete_blobs, s.bytes),
        (1, 0, 4 * MIB)
    );
    // A read across a chunk boundary fetches just the missing neighbour; reads are
    // clipped at the end of the blob.
    let got = cache
        .read(&key, 24 * MIB - 10, 20, &mock.dyn_())
        .await
        .unwrap();
    assert_eq!(&got[..], slice(&data, 24 * MIB - 10, 20));
    assert_eq!(mock.requests()[1], 24 * MIB..28 * MIB);
    let tail = cache
        .read(&key, 40 * MIB - 5, 4096, &mock.dyn_())
        .await
        .unwrap();
    assert_eq!(&tail[..], slice(&data, 40 * MIB - 5, 5));
    assert!(cache
        .read(&key, 40 * MIB, 10, &mock.dyn_())
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_reads_grow_read_ahead_and_random_reads_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(40 * MIB, 2);
    let mock = Mock::new(&data);
    let f = mock.dyn_();
    let step = 64 * 1024;
    let mut off = 0;
    while off < 4 * MIB {
        let got = cache.read(&key, off, step as u32, &f).await.unwrap();
        assert_eq!(&got[..], slice(&data, off, step));
        off += step;
    }
    // The window grew to its 8 MiB maximum: once it did, where it first lacks a chunk a
    // whole window is fetched at once. When exactly it grew depends on how fast the
    // first fetches end, so the ranges are checked for what must hold whatever the
    // timing: they tile the blob from 0 without a byte asked twice, none is larger than
    // the window, a full window was asked, and the read-ahead reaches at least a window
    // past the reader (at 4 MiB) and at most two.
    let max_end = || mock.requests().iter().map(|r| r.end).max().unwrap_or(0);
    eventually("read-ahead a window past the reader", || {
        max_end() >= 12 * MIB
    })
    .await;
    let mut reqs = mock.requests();
    reqs.sort_by_key(|r| r.start);
    let end = max_end();
    assert!((12 * MIB..=20 * MIB).contains(&end), "{reqs:?}");
    let mut at = 0;
    for r in &reqs {
        assert_eq!(r.start, at, "a gap or a byte asked twice: {reqs:?}");
        assert!(r.end - r.start <= 8 * MIB, "{reqs:?}");
        at = r.end;
    }
    assert!(reqs.iter().any(|r| r.end - r.start == 8 * MIB), "{reqs:?}");
    eventually("read-ahead stored", || cache.stats().bytes >= end).await;
    let hits = cache.stats().hits;
    while off < 8 * MIB {
        let got = cache.read(&key, off, step as u32, &f).await.unwrap();
        assert_eq!(&got[..], slice(&data, off, step));
        off += step;
    }
    assert_eq!(cache.stats().hits - hits, 64, "prefetched reads are hits");

    // Scattered reads on another blob fetch only what they touch.
    let (data2, key2) = blob(40 * MIB, 3);
    let mock2 = Mock::new(&data2);
    for off in [30 * MIB + 7, 2 * MIB, 17 * MIB + 100, 9 * MIB] {
        let got = cache.read(&key2, off, 65536, &mock2.dyn_()).await.unwrap();
        assert_eq!(&got[..], slice(&data2, off, 65536));
    }
    assert_eq!(mock2.served.load(Ordering::SeqCst), 4 * MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_of_a_chunk_share_one_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(8 * MIB, 4);
    let mock = Mock::new(&data);
    mock.hold();
    let mut tasks = Vec::new();
    for i in 0..8u64 {
        let (cache, key, f) = (cache.clone(), key.clone(), mock.dyn_());
        tasks.push(tokio::spawn(async move {
            let off = 3 * MIB + i * 1000;
            (off, cache.read(&key, off, 3000, &f).await)
        }));
    }
    eventually("every reader waiting", || cache.stats().misses == 8).await;
    mock.release();
    for t in tasks {
        let (off, got) = t.await.unwrap();
        assert_eq!(&got.unwrap()[..], slice(&data, off, 3000));
    }
    assert_eq!(mock.requests(), vec![3 * MIB..4 * MIB]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_blob_is_verified_and_moved_into_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(5 * MIB + 3, 5);
    let mock = Mock::new(&data);
    let hex = &key.digest[7..];
    let path = cache.fetch_whole(&key, &mock.dyn_()).await.unwrap();
    assert_eq!(path, dir.path().join("blobs/sha256").join(hex));
    assert_eq!(std::fs::read(&path).unwrap(), &data[..]);
    assert_eq!(
        mock.requests(),
        vec![0..5 * MIB + 3],
        "one request for the whole blob"
    );
    assert!(!dir
        .path()
        .join(format!("partial/sha256/{hex}.data"))
        .exists());
    assert!(!dir
        .path()
        .join(format!("partial/sha256/{hex}.chunks"))
        .exists());
    assert_eq!(cache.complete_path(&key.digest), Some(path.clone()));
    cache.fetch_whole(&key, &mock.dyn_()).await.unwrap();
    let got = cache.read(&key, MIB - 1, 2, &mock.dyn_()).await.unwrap();
    assert_eq!(&got[..], slice(&data, MIB - 1, 2));
    assert_eq!(mock.request_count(), 1);
    let s = cache.stats();
    assert_eq!(
        (s.complete_blobs, s.partial_blobs, s.bytes),
        (1, 0, 5 * MIB + 3)
    );

    // Reading every chunk also completes a blob: the last chunk verifies it.
    let (data2, key2) = blob(3 * MIB, 6);
    let mock2 = Mock::new(&data2);
    for c in [2, 0, 1] {
        let got = cache
            .read(&key2, c * MIB, MIB as u32, &mock2.dyn_())
            .await
            .unwrap();
        assert_eq!(&got[..], slice(&data2, c * MIB, MIB));
    }
    assert!(cache.complete_path(&key2.digest).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_are_a_digest_mismatch_and_nothing_is_served_after() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(4 * MIB, 7);
    let hex = &key.digest[7..];
    let mock = Mock::new(&data);
    mock.corrupt_at.store(MIB + 17, Ordering::SeqCst);
    let e = cache.fetch_whole(&key, &mock.dyn_()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    assert!(e.to_string().contains(&key.digest), "{e}");
    assert!(cache.complete_path(&key.digest).is_none());
    assert!(!dir
        .path()
        .join(format!("partial/sha256/{hex}.data"))
        .exists());
    assert_eq!(cache.stats().entries, 0);
    mock.fail.store(true, Ordering::SeqCst);
    let e = cache.read(&key, MIB, 100, &mock.dyn_()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network, "{e}");

    // Read chunk by chunk (never sequentially, so nothing is read ahead): middle
    // chunks are served as fetched; the read that reaches the end fetches the rest and
    // gets the mismatch.
    mock.fail.store(false, Ordering::SeqCst);
    let f = mock.dyn_();
    for c in [2, 0] {
        cache.read(&key, c * MIB, MIB as u32, &f).await.unwrap();
    }
    let e = cache.read(&key, 3 * MIB, MIB as u32, &f).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    assert_eq!(cache.failures(&key.digest), 2);
    let before = mock.request_count();
    mock.corrupt_at.store(u64::MAX, Ordering::SeqCst);
    let got = cache.read(&key, MIB + 1000, 10, &f).await.unwrap();
    assert_eq!(
        &got[..],
        slice(&data, MIB + 1000, 10),
        "refetched, not served from before"
    );
    assert_eq!(mock.request_count(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetcher_that_ignores_range_fills_every_chunk_once() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(10 * MIB + 5, 8);
    let mock = Mock::new(&data);
    mock.ignore_range.store(true, Ordering::SeqCst);
    let f = mock.dyn_();
    let got = cache.read(&key, 6 * MIB + 1, 4096, &f).await.unwrap();
    assert_eq!(&got[..], slice(&data, 6 * MIB + 1, 4096));
    eventually("the whole body stored and verified", || {
        cache.complete_path(&key.digest).is_some()
    })
    .await;
    assert_eq!(mock.request_count(), 1);
    assert_eq!(cache.stats().bytes_fetched, 10 * MIB + 5);
    for off in [0, 3 * MIB, 10 * MIB] {
        let got = cache.read(&key, off, 8192, &f).await.unwrap();
        assert_eq!(&got[..], slice(&data, off, 8192));
    }
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_errors_and_the_next_read_retries() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(2 * MIB, 9);
    let mock = Mock::new(&data);
    mock.fail.store(true, Ordering::SeqCst);
    let e = cache.read(&key, 10, 10, &mock.dyn_()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Network);
    assert!(e.to_string().contains("connection refused"), "{e}");
    mock.fail.store(false, Ordering::SeqCst);
    let got = cache.read(&key, 10, 10, &mock.dyn_()).await.unwrap();
    assert_eq!(&got[..], slice(&data, 10, 10));
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetch_right_after_a_stalled_one_waits_less() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        fetch_timeout: Duration::from_secs(3),
        ..config(dir.path(), MIB)
    })
    .unwrap();
    let (data, key) = blob(3 * MIB, 10);
    let mock = Mock::new(&data);
    let f = mock.dyn_();
    mock.hold();
    let e = cache.read(&key, 10, 10, &f).await.unwrap_err();
    assert!(e.to_string().contains("no answer for 3s"), "{e}");
    // The kernel reads the page again at once: that fetch waits 1 s, not 3 s again.
    let e = cache.read(&key, 20, 10, &f).await.unwrap_err();
    assert!(e.to_string().contains("no answer for 1s"), "{e}");
    // The registry answers again: the next read gets its bytes at once.
    mock.release();
    let got = cache.read(&key, 30, 10, &f).await.unwrap();
    assert_eq!(&got[..], slice(&data, 30, 10));
    // And after a success, fetches wait the configured time again.
    mock.hold();
    let e = cache.read(&key, 2 * MIB, 10, &f).await.unwrap_err();
    assert!(e.to_string().contains("no answer for 3s"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digests_are_checked_before_anything_touches_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, _) = blob(100, 10);
    let f = Mock::new(&data).dyn_();
    let md5 = BlobKey::new("md5:0123456789abcdef0123456789abcdef", 100);
    let e = cache.read(&md5, 0, 10, &f).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let bad = BlobKey::new(format!("sha256:../../{}", "a".repeat(58)), 100);
    let e = cache.read(&bad, 0, 10, &f).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(cache.pin("sha256:ABC").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_blob_completes_without_a_fetch() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(0, 11);
    let mock = Mock::new(&data);
    let path = cache.fetch_whole(&key, &mock.dyn_()).await.unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
    assert!(cache
        .read(&key, 0, 10, &mock.dyn_())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_reaches_the_end_waits_for_the_whole_blob_to_verify() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let (data, key) = blob(4 * MIB + 5, 21);
    let mock = Mock::new(&data);
    let f = mock.dyn_();
    let mut told = cache.subscribe_failures();
    // The last bytes alone: the whole blob is fetched and verified first.
    let got = cache.read(&key, 4 * MIB, 4096, &f).await.unwrap();
    assert_eq!(&got[..], slice(&data, 4 * MIB, 5));
    assert!(cache.complete_path(&key.digest).is_some());
    assert_eq!(mock.served.load(Ordering::SeqCst), 4 * MIB + 5);

    // A flipped byte in the middle: reads before the end are served (unverified, as
    // documented), the read that reaches the end fails, the failure is counted and
    // told, and nothing of that fetch stays.
    let (data, key) = blob(6 * MIB, 22);
    let mock = Mock::new(&data);
    mock.corrupt_at.store(2 * MIB + 3, Ordering::SeqCst);
    let f = mock.dyn_();
    let step = MIB / 2;
    let mut off = 0;
    let mut last = None;
    while off < 6 * MIB {
        match cache.read(&key, off, step as u32, &f).await {
            Ok(b) => assert_eq!(b.len() as u64, step),
            Err(e) => {
                last = Some((off, e));
                break;
            }
        }
        off += step;
    }
    // The read reaching the end fails at the latest (a read-ahead that completes the
    // blob first may hand the mismatch to a reader waiting on it earlier).
    let (at, e) = last.expect("a read reaching the end succeeded");
    assert!(
        at > 2 * MIB,
        "failed at {at}, before the flipped byte was fetched"
    );
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    // Counted at least once: a read-ahead already in flight when the blob failed may
    // fetch the wrong bytes again and fail (and count) a second time.
    let failures = cache.failures(&key.digest);
    assert!((1..=2).contains(&failures), "{failures} failures");
    assert_eq!(told.try_recv().unwrap(), key.digest);
    assert!(cache.complete_path(&key.digest).is_none());
    assert_eq!(cache.stats().partial_blobs, 0);
    // The registry serves the right bytes again: a new whole read verifies.
    mock.corrupt_at.store(u64::MAX, Ordering::SeqCst);
    let got = cache.read(&key, 0, 6 * MIB as u32, &f).await.unwrap();
    assert!(got == data);
    assert_eq!(cache.failures(&key.digest), failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_complete_serves_no_byte_before_the_whole_blob_matched() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        verify: Verify::Complete,
        ..config(dir.path(), MIB)
    })
    .unwrap();
    let (data, key) = blob(5 * MIB, 23);
    let mock = Mock::new(&data);
    mock.corrupt_at.store(4 * MIB + 1, Ordering::SeqCst);
    let f = mock.dyn_();
    // A small read at the start is refused: a byte far from it is wrong.
    let e = cache.read(&key, 0, 100, &f).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    mock.corrupt_at.store(u64::MAX, Ordering::SeqCst);
    let got = cache.read(&key, 100, 100, &f).await.unwrap();
    assert_eq!(&got[..], slice(&data, 100, 100));
    assert!(cache.complete_path(&key.digest).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_larger_than_the_budget_is_verified_as_it_streams() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        max_bytes: 2 * MIB,
        ..config(dir.path(), MIB)
    })
    .unwrap();
    let (data, key) = blob(5 * MIB + 7, 24);
    let mock = Mock::new(&data);
    let f = mock.dyn_();
    let got = cache.read(&key, 5 * MIB - 10, 4096, &f).await.unwrap();
    assert_eq!(&got[..], slice(&data, 5 * MIB - 10, 17));
    assert!(cache.complete_path(&key.digest).is_none());
    assert!(cache.stats().bytes <= 2 * MIB);
    mock.corrupt_at.store(7, Ordering::SeqCst);
    let e = cache.read(&key, 5 * MIB, 7, &f).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    assert_eq!(cache.failures(&key.digest), 1);
}
