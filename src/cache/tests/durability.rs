//! Cache tests about what is on disk: restarts, crashes, the budget, pins, prune,
//! sharing one directory between caches (as processes do), small objects.

use std::fs;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;

use super::{blob, config, eventually, Mock, MIB};
use crate::cache::*;
use crate::error::ErrorKind;

/// Bytes the cache's files occupy: complete files by length, partial data as allocated.
pub(super) fn disk_bytes(dir: &Path) -> u64 {
    let mut n = 0;
    for sub in ["blobs/sha256", "small/sha256"] {
        // Files may go while counted (eviction runs beside the counting).
        for e in fs::read_dir(dir.join(sub)).unwrap().flatten() {
            n += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    for e in fs::read_dir(dir.join("partial/sha256")).unwrap().flatten() {
        if e.file_name().to_string_lossy().ends_with(".data") {
            n += e.metadata().map(|m| m.blocks() * 512).unwrap_or(0);
        }
    }
    n
}

fn hex(key: &BlobKey) -> &str {
    &key.digest[7..]
}

/// Waits until the chunk map of `key` in `dir` marks `chunks` present on disk: a
/// cache writes map bytes when it lets go of a blob, which may be just after the read
/// that fetched them returned.
async fn map_bytes_written(dir: &Path, key: &BlobKey, chunks: &[u64]) {
    // The map starts at byte 48: a 32-byte header, then the 16-byte users record.
    let map = dir.join(format!("partial/sha256/{}.chunks", hex(key)));
    eventually("chunk map bytes on disk", || {
        fs::read(&map).is_ok_and(|m| chunks.iter().all(|&c| m.get(48 + c as usize) == Some(&1)))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_complete_blobs_and_partial_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (dx, kx) = blob(3 * MIB, 20);
    let (dy, ky) = blob(6 * MIB, 21);
    let (mx, my) = (Mock::new(&dx), Mock::new(&dy));
    {
        let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
        cache.fetch_whole(&kx, &mx.dyn_()).await.unwrap();
        cache.read(&ky, 2 * MIB + 5, 100, &my.dyn_()).await.unwrap();
        cache.read(&ky, 4 * MIB + 5, 100, &my.dyn_()).await.unwrap();
    }
    map_bytes_written(dir.path(), &ky, &[2, 4]).await;
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let s = cache.stats();
    assert_eq!((s.complete_blobs, s.partial_blobs), (1, 1));
    assert!(s.bytes >= 5 * MIB, "{s:?}");
    let (nx, ny) = (mx.request_count(), my.request_count());
    let got = cache.read(&kx, 100, 1000, &mx.dyn_()).await.unwrap();
    assert_eq!(&got[..], &dx[100..1100]);
    let got = cache
        .read(&ky, 2 * MIB, MIB as u32, &my.dyn_())
        .await
        .unwrap();
    assert_eq!(&got[..], &dy[2 * MIB as usize..3 * MIB as usize]);
    let got = cache.read(&ky, 4 * MIB + 7, 10, &my.dyn_()).await.unwrap();
    assert_eq!(
        &got[..],
        &dy[(4 * MIB + 7) as usize..(4 * MIB + 17) as usize]
    );
    assert_eq!((mx.request_count(), my.request_count()), (nx, ny));
    // A missing chunk is fetched, and finishing the rest completes the blob.
    cache.fetch_whole(&ky, &my.dyn_()).await.unwrap();
    let mut asked: Vec<_> = my.requests()[ny..].to_vec();
    asked.sort_by_key(|r| r.start);
    assert_eq!(asked, vec![0..2 * MIB, 3 * MIB..4 * MIB, 5 * MIB..6 * MIB]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_without_its_map_byte_is_refetched_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let (data, key) = blob(4 * MIB, 22);
    let mock = Mock::new(&data);
    {
        let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
        cache.read(&key, MIB + 1, 10, &mock.dyn_()).await.unwrap();
        cache
            .read(&key, 3 * MIB + 1, 10, &mock.dyn_())
            .await
            .unwrap();
    }
    map_bytes_written(dir.path(), &key, &[1, 3]).await;
    let pdir = dir.path().join("partial/sha256");
    let data_file = fs::OpenOptions::new()
        .write(true)
        .open(pdir.join(format!("{}.data", hex(&key))))
        .unwrap();
    let map = fs::OpenOptions::new()
        .write(true)
        .open(pdir.join(format!("{}.chunks", hex(&key))))
        .unwrap();
    // A crash after chunk 2's data was written but before its map byte: garbage there.
    data_file
        .write_all_at(&vec![0xAA; MIB as usize], 2 * MIB)
        .unwrap();
    // A lost map byte for chunk 1 (its data is really there) and garbage in it too.
    // (The map starts at byte 48: a 32-byte header, then the 16-byte users record.)
    map.write_all_at(&[0], 48 + 1).unwrap();
    data_file.write_all_at(b"garbage", MIB + 1).unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let before = mock.request_count();
    for off in [MIB + 1, 2 * MIB + 1] {
        let got = cache.read(&key, off, 10, &mock.dyn_()).await.unwrap();
        assert_eq!(&got[..], &data[off as usize..off as usize + 10]);
    }
    assert_eq!(mock.request_count(), before + 2);
    // Chunk 3 kept its byte: served without a fetch.
    let got = cache
        .read(&key, 3 * MIB + 100, 10, &mock.dyn_())
        .await
        .unwrap();
    assert_eq!(
        &got[..],
        &data[(3 * MIB + 100) as usize..(3 * MIB + 110) as usize]
    );
    assert_eq!(mock.request_count(), before + 2);
    drop(cache);

    // A torn header invalidates the whole map: everything is fetched again.
    map.write_all_at(b"XX", 3).unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let path = cache.fetch_whole(&key, &mock.dyn_()).await.unwrap();
    assert_eq!(fs::read(path).unwrap(), &data[..]);
    assert_eq!(mock.requests().last().unwrap(), &(0..4 * MIB));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_evicts_least_recently_used_and_never_a_pinned_blob() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        max_bytes: 12 * MIB,
        ..config(dir.path(), MIB)
    })
    .unwrap();
    let blobs: Vec<_> = (0..6)
        .map(|i| blob(if i == 5 { 6 * MIB } else { 4 * MIB }, 30 + i))
        .collect();
    let mocks: Vec<_> = blobs.iter().map(|(d, _)| Mock::new(d)).collect();
    let present = |i: usize| cache.complete_path(&blobs[i].1.digest).is_some();
    let check = || {
        let s = cache.stats();
        assert!(s.bytes <= 12 * MIB, "{s:?}");
        assert!(disk_bytes(dir.path()) <= 12 * MIB);
    };
    let pin = cache.pin(&blobs[0].1.digest).unwrap();
    for i in 0..3 {
        cache
            .fetch_whole(&blobs[i].1, &mocks[i].dyn_())
            .await
            .unwrap();
        check();
    }
    cache
        .fetch_whole(&blobs[3].1, &mocks[3].dyn_())
        .await
        .unwrap();
    check();
    assert!(present(0) && !present(1) && present(2) && present(3));
    // Touch 2: now 3 is the least recently used unpinned blob.
    cache
        .read(&blobs[2].1, 0, 10, &mocks[2].dyn_())
        .await
        .unwrap();
    // Fill tasks let go of 3 (and 2) just after the calls return; only the pin stays.
    eventually("only the pinned blob in use", || cache.stats().in_use == 1).await;
    cache
        .fetch_whole(&blobs[4].1, &mocks[4].dyn_())
        .await
        .unwrap();
    check();
    assert!(present(0) && present(2) && !present(3) && present(4));
    // Partial blobs count and are evicted too; a read larger than what is left passes
    // through without being stored once nothing else can go.
    drop(pin);
    let got = cache
        .read(&blobs[5].1, MIB, 10, &mocks[5].dyn_())
        .await
        .unwrap();
    assert_eq!(&got[..], &blobs[5].0[MIB as usize..MIB as usize + 10]);
    check();
    assert!(!present(0), "unpinned, least recently used");
    let _p2 = cache.pin(&blobs[2].1.digest).unwrap();
    let _p4 = cache.pin(&blobs[4].1.digest).unwrap();
    let _p5 = cache.pin(&blobs[5].1.digest).unwrap();
    // 2 and 4 are pinned, 5 is being read: the fifth chunk of 5 finds no room.
    for c in [0, 2, 3, 4, 5] {
        let got = cache
            .read(&blobs[5].1, c * MIB, 10, &mocks[5].dyn_())
            .await
            .unwrap();
        assert_eq!(
            &got[..],
            &blobs[5].0[(c * MIB) as usize..(c * MIB) as usize + 10]
        );
        check();
    }
    assert!(present(2) && present(4));
    let e = cache
        .fetch_whole(&blobs[5].1, &mocks[5].dyn_())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.to_string().contains("no room"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_filesystem_stores_nothing_but_reads_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(CacheConfig {
        max_fs_fraction: 0.0,
        ..config(dir.path(), MIB)
    })
    .unwrap();
    let (data, key) = blob(2 * MIB, 40);
    let mock = Mock::new(&data);
    let got = cache.read(&key, 5, 100, &mock.dyn_()).await.unwrap();
    assert_eq!(&got[..], &data[5..105]);
    assert_eq!(cache.stats().bytes, 0);
    assert_eq!(disk_bytes(dir.path()), 0);
    assert!(cache.fetch_whole(&key, &mock.dyn_()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_removes_oldest_first_and_keeps_what_is_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let blobs: Vec<_> = (0..4).map(|i| blob(2 * MIB, 50 + i)).collect();
    for (d, k) in &blobs {
        cache.fetch_whole(k, &Mock::new(d).dyn_()).await.unwrap();
    }
    assert!(
        cache.put_small(&blobs[0].1.digest, b"x").is_err(),
        "bytes must match"
    );
    let pin = cache.pin(&blobs[0].1.digest).unwrap();
    // Fill tasks let go of the blobs just after the calls return; only the pin stays.
    eventually("only the pinned blob in use", || cache.stats().in_use == 1).await;
    let r = cache.prune(4 * MIB).unwrap();
    assert_eq!(r.removed_entries, 2);
    assert_eq!(r.removed_bytes, 4 * MIB);
    assert_eq!(r.kept_in_use, 1);
    assert_eq!(r.remaining_bytes, 4 * MIB);
    let present: Vec<bool> = blobs
        .iter()
        .map(|(_, k)| cache.complete_path(&k.digest).is_some())
        .collect();
    assert_eq!(present, vec![true, false, false, true]);
    drop(pin);
    let r = cache.prune(0).unwrap();
    assert_eq!((r.removed_entries, r.remaining_bytes), (2, 0));
    assert_eq!(cache.stats().entries, 0);
    assert_eq!(disk_bytes(dir.path()), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caches_sharing_a_directory_share_chunks_and_respect_each_others_pins() {
    let dir = tempfile::tempdir().unwrap();
    // Two instances stand for two processes: separate indexes, states and lock holders.
    let a = BlobCache::open(config(dir.path(), MIB)).unwrap();
    let b = BlobCache::open(CacheConfig {
        max_bytes: 4 * MIB,
        ..config(dir.path(), MIB)
    })
    .unwrap();
    let (dx, kx) = blob(3 * MIB, 60);
    let (dy, ky) = blob(4 * MIB, 61);
    let (mx, my) = (Mock::new(&dx), Mock::new(&dy));
    // b reads what a fetched without fetching it again, once a has written the chunk's
    // map byte (kept in memory while a still uses the blob: the read may return first).
    a.read(&kx, 10, 10, &mx.dyn_()).await.unwrap();
    map_bytes_written(dir.path(), &kx, &[0]).await;
    let got = b.read(&kx, 20, 10, &mx.dyn_()).await.unwrap();
    assert_eq!(&got[..], &dx[20..30]);
    assert_eq!(mx.request_count(), 1);
    // a pins x and completes it while b holds the partial files open; b then reads
    // from the complete blob without fetching.
    let b_pin = b.pin(&kx.digest).unwrap();
    let pin = a.pin(&kx.digest).unwrap();
    a.fetch_whole(&kx, &mx.dyn_()).await.unwrap();
    let fetched = mx.request_count();
    let got = b.read(&kx, MIB + 3, 10, &mx.dyn_()).await.unwrap();
    assert_eq!(&got[..], &dx[MIB as usize + 3..MIB as usize + 13]);
    assert_eq!(mx.request_count(), fetched);
    drop(b_pin);
    // b, short of room, may not evict what a pins.
    b.prune(0).unwrap();
    assert!(a.complete_path(&kx.digest).is_some());
    for c in 0..4 {
        let got = b.read(&ky, c * MIB, 10, &my.dyn_()).await.unwrap();
        assert_eq!(&got[..], &dy[(c * MIB) as usize..(c * MIB) as usize + 10]);
    }
    assert!(
        a.complete_path(&kx.digest).is_some(),
        "pinned in another cache"
    );
    let got = a.read(&kx, 2 * MIB, 10, &mx.dyn_()).await.unwrap();
    assert_eq!(&got[..], &dx[2 * MIB as usize..2 * MIB as usize + 10]);
    drop(pin);
    let r = b.prune(0).unwrap();
    assert!(r.removed_entries >= 1, "{r:?}");
    assert!(a.complete_path(&kx.digest).is_none());
    // a's index learns of the removal when it next looks, and refetches.
    let got = a.read(&kx, 5, 10, &mx.dyn_()).await.unwrap();
    assert_eq!(&got[..], &dx[5..15]);
    eventually("a refetched x", || mx.request_count() > 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_objects_are_verified_on_the_way_in_and_out() {
    let dir = tempfile::tempdir().unwrap();
    let body = br#"{"schemaVersion":2}"#;
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body))
    );
    {
        let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
        assert_eq!(cache.get_small(&digest).unwrap(), None);
        let other = format!("sha256:{}", "0".repeat(64));
        let e = cache.put_small(&other, body).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::DigestMismatch);
        assert!(cache.put_small(&digest, body).unwrap());
        assert_eq!(cache.get_small(&digest).unwrap().unwrap(), &body[..]);
        assert_eq!(cache.stats().small_objects, 1);
    }
    let cache = BlobCache::open(config(dir.path(), MIB)).unwrap();
    assert_eq!(cache.stats().small_objects, 1);
    assert_eq!(cache.get_small(&digest).unwrap().unwrap(), &body[..]);
    let path = dir.path().join("small/sha256").join(&digest[7..]);
    fs::write(&path, b"tampered").unwrap();
    assert_eq!(cache.get_small(&digest).unwrap(), None);
    assert!(!path.exists());
    assert_eq!(cache.stats().entries, 0);
}
