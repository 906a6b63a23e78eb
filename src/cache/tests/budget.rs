//! Cache tests about limits and records shared by every process using one directory:
//! one byte budget for all of them (with rare rescans), the filesystem cap at a
//! realistic fraction, and counters recorded for `scry cache status`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::durability::disk_bytes;
use super::{blob, config, eventually, Mock, MIB};
use crate::cache::*;

/// Waits until `cache` holds nothing open (fill tasks let go just after a fetch returns).
async fn idle(cache: &BlobCache) {
    eventually("the cache to let go of its blobs", || {
        cache.stats().in_use == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_sharing_a_directory_hold_one_budget() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 12 * MIB;
    // Two instances stand for two processes; both open the directory while it is empty.
    let open = || {
        BlobCache::open(CacheConfig {
            max_bytes: budget,
            ..config(dir.path(), MIB)
        })
        .unwrap()
    };
    let (a, b) = (open(), open());
    let (dx, kx) = blob(8 * MIB, 70);
    let (dy, ky) = blob(8 * MIB, 71);
    let (mx, my) = (Mock::new(&dx), Mock::new(&dy));
    a.fetch_whole(&kx, &mx.dyn_()).await.unwrap();
    idle(&a).await;
    // b alone would count 8 MiB: it has to see a's blob to keep both within 12 MiB.
    b.fetch_whole(&ky, &my.dyn_()).await.unwrap();
    let on_disk = disk_bytes(dir.path());
    assert!(
        on_disk <= budget,
        "two caches on one directory hold {on_disk} bytes, budget {budget}"
    );
    assert!(b.complete_path(&ky.digest).is_some());
    assert!(
        a.complete_path(&kx.digest).is_none(),
        "the least recently used blob, which nobody used, stays"
    );
    assert!(b.stats().bytes <= budget, "{:?}", b.stats());
    // a learns of the eviction and reads x again, still within the budget.
    idle(&b).await;
    let got = a.read(&kx, 5, 10, &mx.dyn_()).await.unwrap();
    assert_eq!(&got[..], &dx[5..15]);
    a.fetch_whole(&kx, &mx.dyn_()).await.unwrap();
    assert!(disk_bytes(dir.path()) <= budget);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_budget_rescans_rarely() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        max_bytes: 1 << 30,
        ..config(dir.path(), MIB)
    })
    .unwrap();
    // 1 GiB budget: a rescan every 32 MiB stored, not one per chunk.
    assert_eq!(index::rescan_every(1 << 30), 32 * MIB);
    for i in 0..5 {
        let (d, k) = blob(8 * MIB, 80 + i);
        cache.fetch_whole(&k, &Mock::new(&d).dyn_()).await.unwrap();
    }
    let scans = cache.shared.scans.load(Ordering::Relaxed);
    assert_eq!(scans, 1, "40 chunks of 1 MiB stored with {scans} rescans");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filesystem_cap_holds_at_95_percent() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        max_fs_fraction: 0.95,
        ..config(dir.path(), MIB)
    })
    .unwrap();
    // A 100 MiB filesystem with 90 MiB used by others: the cache may fill 5 MiB of it,
    // far below its own budget.
    let root = dir.path().to_path_buf();
    *cache.shared.fs_usage.lock().unwrap() =
        Arc::new(move |_: &std::path::Path| Ok((90 * MIB + disk_bytes(&root), 100 * MIB)));
    let blobs: Vec<_> = (0..4).map(|i| blob(2 * MIB, 90 + i)).collect();
    for (d, k) in &blobs {
        cache.fetch_whole(k, &Mock::new(d).dyn_()).await.unwrap();
        let on_disk = disk_bytes(dir.path());
        assert!(
            on_disk <= 5 * MIB,
            "{on_disk} bytes stored, 5 MiB free to 95%"
        );
        assert!(cache.complete_path(&k.digest).is_some());
        idle(&cache).await;
    }
    let present: Vec<bool> = blobs
        .iter()
        .map(|(_, k)| cache.complete_path(&k.digest).is_some())
        .collect();
    assert_eq!(present, vec![false, false, true, true]);
    // A blob larger than the room left is read through, never stored whole.
    let (d, k) = blob(6 * MIB, 95);
    let m = Mock::new(&d);
    for c in 0..6 {
        let got = cache.read(&k, c * MIB, 10, &m.dyn_()).await.unwrap();
        assert_eq!(&got[..], &d[(c * MIB) as usize..(c * MIB) as usize + 10]);
        assert!(disk_bytes(dir.path()) <= 5 * MIB);
    }
    assert!(cache.fetch_whole(&k, &m.dyn_()).await.is_err());
    assert!(disk_bytes(dir.path()) <= 5 * MIB);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_recorded_and_add_up_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (d, k) = blob(3 * MIB, 100);
    let m = Mock::new(&d);
    let recording = |max_bytes| CacheConfig {
        max_bytes,
        // Long enough that only the end of each cache records.
        record_stats: Some(Duration::from_secs(3600)),
        ..config(dir.path(), MIB)
    };
    let a = BlobCache::open(recording(64 * MIB)).unwrap();
    a.read(&k, 0, 100, &m.dyn_()).await.unwrap();
    a.read(&k, 0, 100, &m.dyn_()).await.unwrap();
    let first = a.stats();
    assert!(first.hits >= 1 && first.misses >= 1, "{first:?}");
    assert!(first.bytes_fetched >= MIB, "{first:?}");
    // Seen by another process before a records: only the budget a noted at open.
    let status = || {
        BlobCache::open_existing(CacheConfig::new(dir.path()))
            .unwrap()
            .status()
    };
    let early = status();
    assert_eq!(
        (early.hits, early.misses, early.max_bytes),
        (0, 0, 64 * MIB)
    );
    idle(&a).await;
    drop(a);
    eventually("the first cache's counters recorded when it ends", || {
        let s = status();
        (s.hits, s.misses, s.bytes_fetched) == (first.hits, first.misses, first.bytes_fetched)
    })
    .await;

    let b = BlobCache::open(recording(7 * MIB)).unwrap();
    b.read(&k, MIB, 100, &m.dyn_()).await.unwrap();
    let second = b.stats();
    // b's own view counts b alone; its status counts both.
    assert_eq!(second.hits + second.misses, 1, "{second:?}");
    assert_eq!(b.status().misses, first.misses + second.misses);
    b.record_stats().unwrap();
    b.record_stats().unwrap(); // nothing new: nothing counted twice
    let s = status();
    assert_eq!(s.hits, first.hits + second.hits, "{s:?}");
    assert_eq!(s.misses, first.misses + second.misses, "{s:?}");
    assert_eq!(s.bytes_fetched, first.bytes_fetched + second.bytes_fetched);
    assert_eq!(s.max_bytes, 7 * MIB, "the budget of the last recorder");
    assert!(s.bytes >= MIB && s.partial_blobs == 1, "{s:?}");
}

#[test]
fn looking_at_a_missing_directory_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("typo");
    let e = BlobCache::open_existing(CacheConfig::new(&typo))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("cache directory {} does not exist", typo.display())
    );
    assert!(!typo.exists());
    // An existing directory that is not (yet) a cache is looked at, not filled.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let c = BlobCache::open_existing(CacheConfig::new(&empty)).unwrap();
    assert_eq!(c.status().entries, 0);
    assert_eq!(c.prune(0).unwrap().removed_entries, 0);
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_parallel_readers_never_take_the_cache_past_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 12 * MIB;
    let cache = BlobCache::open(CacheConfig {
        max_bytes: budget,
        // Rescans often, as a small budget makes them: each one must keep counting
        // the chunks still being written.
        ..config(dir.path(), MIB)
    })
    .unwrap();
    let blobs: Vec<_> = (0..6).map(|i| blob(6 * MIB + 3, 80 + i)).collect();
    let mocks: Vec<_> = blobs.iter().map(|(d, _)| Mock::new(d)).collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let peak = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let watcher = {
        let (stop, peak, path) = (stop.clone(), peak.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            while !stop.load(Ordering::SeqCst) {
                peak.fetch_max(disk_bytes(&path), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let mut readers = Vec::new();
    for r in 0..16u64 {
        let cache = cache.clone();
        let work: Vec<_> = blobs
            .iter()
            .zip(&mocks)
            .map(|((d, k), m)| (d.clone(), k.clone(), m.dyn_()))
            .collect();
        readers.push(tokio::spawn(async move {
            let mut x = r.wrapping_mul(0x9E37_79B9) | 1;
            for _ in 0..40 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let (data, key, f) = &work[(x % work.len() as u64) as usize];
                // Middle ranges only: a read that reaches the end waits for the whole
                // blob, which would serialise the readers.
                let off = (x >> 8) % (key.size - 2 * MIB);
                let got = cache.read(key, off, 256 << 10, f).await.unwrap();
                assert_eq!(&got[..], &data[off as usize..off as usize + got.len()]);
            }
        }));
    }
    for r in readers {
        r.await.unwrap();
    }
    stop.store(true, Ordering::SeqCst);
    watcher.await.unwrap();
    let peak = peak.load(Ordering::SeqCst);
    assert!(
        peak <= budget,
        "16 readers took the cache to {peak} bytes, budget {budget}"
    );
    assert!(cache.stats().bytes <= budget, "{:?}", cache.stats());
}
