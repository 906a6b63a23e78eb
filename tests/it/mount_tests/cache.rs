//! The blob cache seen through the mount, against the fake registry (which counts the
//! bytes it serves): a read in the middle of a big layer fetches about one chunk; a
//! blob read once is served with the registry gone, by the same mount and by a new
//! mount on the same cache; the cache stays within `--cache-size`, also for two mounts
//! sharing it; a blob held open is never evicted; `scry cache status` counts what the
//! mounts did; and a mount killed with SIGKILL in the middle of a fill leaves nothing
//! that reads back wrong.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::fakereg::{FakeRegistry, Mode};
use super::{hex_of, scratch, sha256sum, stat_size, tool, tool_on, wait_until, Mount};
use crate::harness::{run_with_timeout, scry};

/// The cache's default chunk size.
const CHUNK: u64 = 4 << 20;
const MIB: usize = 1 << 20;

/// `MNT/REG/big/latest/blobs/sha256/HEX` of layer `i`.
fn layer_path(m: &Mount, fake: &FakeRegistry, i: usize) -> PathBuf {
    m.path(&format!(
        "{}/big/latest/blobs/sha256/{}",
        fake.host(),
        hex_of(&fake.layer_digests[i])
    ))
}

/// `dd if=PATH bs=4096 skip=BLOCK count=1`: the 4 KiB block's bytes.
#[track_caller]
fn dd_block(path: &Path, block: u64) -> Vec<u8> {
    let out = tool(
        "dd",
        &[
            &format!("if={}", path.display()),
            "bs=4096",
            &format!("skip={block}"),
            "count=1",
            "status=none",
        ],
    );
    out.assert_success();
    out.stdout_bytes
}

/// A registry that ignores `Range` and always sends whole blobs still gives the right
/// bytes at any offset, and the whole blob is then served from the cache.
#[test]
fn a_registry_that_ignores_range_still_serves_the_right_bytes() {
    let size = 12 * MIB;
    let fake = FakeRegistry::start(&[size]);
    fake.set_mode(Mode::IgnoreRange);
    let m = Mount::start(&["--tls-verify=false"]);
    let blob = layer_path(&m, &fake, 0);
    let block = (size as u64 * 2 / 3) / 4096;
    let got = dd_block(&blob, block);
    let at = (block * 4096) as usize;
    assert!(
        got == fake.layers[0][at..at + 4096],
        "dd read the wrong bytes at {at}"
    );
    assert_eq!(sha256sum(&blob), fake.layer_digests[0]);
    let fetched = fake.layer_bytes();
    fake.set_mode(Mode::Down);
    assert_eq!(sha256sum(&blob), fake.layer_digests[0]);
    assert_eq!(
        fake.layer_bytes(),
        fetched,
        "the second read went to the registry"
    );
    m.unmount();
}

#[test]
fn a_read_in_the_middle_of_a_big_layer_fetches_about_one_chunk() {
    let size = 32 * MIB;
    let fake = FakeRegistry::start(&[size]);
    let m = Mount::start(&["--tls-verify=false"]);
    let blob = layer_path(&m, &fake, 0);
    assert_eq!(stat_size(&blob), size as u64);
    assert_eq!(fake.layer_bytes(), 0, "stat fetched layer bytes");

    // One 4 KiB block a little past the middle.
    let block = (size as u64 / 2 + 12_345) / 4096;
    let got = dd_block(&blob, block);
    let at = (block * 4096) as usize;
    assert!(
        got == fake.layers[0][at..at + 4096],
        "dd read the wrong bytes at {at}"
    );
    let fetched = fake.layer_bytes();
    assert!(
        (4096..=2 * CHUNK).contains(&fetched),
        "a 4 KiB read fetched {fetched} bytes (at most two {CHUNK}-byte chunks expected); requests: {:?}",
        fake.blob_hits()
    );
    for hit in fake.blob_hits() {
        if hit.digest == fake.layer_digests[0] {
            assert!(
                hit.range.is_some(),
                "a layer request without Range: {hit:?}"
            );
        }
    }

    // The whole blob, then again with the registry gone: from the cache.
    assert_eq!(sha256sum(&blob), fake.layer_digests[0]);
    let after_whole = fake.layer_bytes();
    assert!(
        after_whole <= size as u64 + CHUNK,
        "reading the blob fetched {after_whole} bytes for {size}"
    );
    fake.set_mode(Mode::Down);
    assert_eq!(sha256sum(&blob), fake.layer_digests[0]);
    assert_eq!(fake.layer_bytes(), after_whole);
    m.unmount();
}

#[test]
fn a_new_mount_on_the_same_cache_reads_with_the_registry_gone() {
    let fake = FakeRegistry::start(&[6 * MIB]);
    let cache = scratch("cache-");
    let args = ["--tls-verify=false"];
    let m = Mount::with_cache(&args, cache.path());
    assert_eq!(sha256sum(&layer_path(&m, &fake, 0)), fake.layer_digests[0]);
    m.unmount();
    let fetched = fake.layer_bytes();

    fake.set_mode(Mode::Down);
    let m = Mount::with_cache(&args, cache.path());
    // A tag needs the registry to say what it points at; a digest does not.
    let by_digest = m.path(&format!(
        "{}/big@{}/blobs/sha256/{}",
        fake.host(),
        fake.manifest_digest,
        hex_of(&fake.layer_digests[0])
    ));
    let out = tool_on("sha256sum", &[], &[&by_digest]);
    assert!(
        out.success(),
        "reading a cached blob by digest with the registry gone failed: {out}\n{}",
        m.log()
    );
    assert_eq!(sha256sum(&by_digest), fake.layer_digests[0]);
    assert_eq!(fake.layer_bytes(), fetched);
    m.unmount();
}

/// `scry cache status --cache-dir DIR` as JSON.
#[track_caller]
fn cache_status(dir: &Path) -> serde_json::Value {
    let out = run_with_timeout(
        scry().args(["cache", "status", "--cache-dir"]).arg(dir),
        Duration::from_secs(60),
    );
    out.assert_success();
    out.json()
}

/// `find DIR -type f` with sizes, for failure messages.
fn listing(dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    tool(
        "find",
        &[&dir, "-type", "f", "-printf", "%s bytes, %b blocks: %P\\n"],
    )
    .stdout
}

/// `du -s -B1 DIR`: bytes allocated under `dir` (partial blobs are sparse files, so
/// their apparent size says nothing).
#[track_caller]
fn du_bytes(dir: &Path) -> u64 {
    let out = tool_on("du", &["-s", "-B1"], &[dir]);
    out.assert_success();
    out.stdout
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_cache_stays_within_its_budget() {
    let cap: u64 = 10 << 20;
    let fake = FakeRegistry::start(&[8 * MIB, 8 * MIB, 8 * MIB]);
    let m = Mount::start(&["--tls-verify=false", "--cache-size", "10M"]);
    for i in 0..3 {
        assert_eq!(sha256sum(&layer_path(&m, &fake, i)), fake.layer_digests[i]);
        let du = du_bytes(m.cache_dir());
        assert!(
            du <= cap + (1 << 20),
            "after blob {i}: the cache holds {du} bytes on disk, budget {cap}:\n{}",
            listing(m.cache_dir())
        );
    }
    assert!(
        fake.layer_bytes() >= 24 << 20,
        "the workload was not larger than the cap"
    );
    let status = cache_status(m.cache_dir());
    let bytes = status["bytes"].as_u64().expect("bytes in cache status");
    assert!(
        bytes <= cap,
        "scry cache status: {bytes} bytes, budget {cap}: {status}"
    );
    // An evicted blob is fetched again, correctly.
    assert_eq!(sha256sum(&layer_path(&m, &fake, 0)), fake.layer_digests[0]);
    assert!(du_bytes(m.cache_dir()) <= cap + (1 << 20));
    m.unmount();
}

#[test]
fn kill_9_during_a_fill_never_yields_wrong_bytes() {
    let fake = FakeRegistry::start(&[24 * MIB]);
    let cache = scratch("cache-");
    let args = ["--tls-verify=false"];
    // The first 8 MiB come whole; later ranges stall half-way.
    fake.set_mode(Mode::StallFrom(8 << 20));
    let m = Mount::with_cache(&args, cache.path());
    let blob = layer_path(&m, &fake, 0);
    let mut reader = Command::new("cat")
        .arg(&blob)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(Duration::from_secs(30), "a stalled layer request", || {
        if let Some(status) = reader.try_wait().unwrap() {
            panic!(
                "cat ended ({status}) before any request stalled: {:?}",
                fake.blob_hits()
            );
        }
        fake.stalled() > 0
    });
    m.kill9();
    let mut failed = None;
    wait_until(Duration::from_secs(30), "cat to end after the kill", || {
        failed = reader.try_wait().unwrap();
        failed.is_some()
    });
    assert!(
        !failed.unwrap().success(),
        "cat of a blob whose mount was killed succeeded"
    );

    fake.set_mode(Mode::Serve);
    let m = Mount::with_cache(&args, cache.path());
    let blob = layer_path(&m, &fake, 0);
    assert_eq!(
        sha256sum(&blob),
        fake.layer_digests[0],
        "after kill -9 and remount"
    );
    // Every block agrees with the source too (a torn chunk would show here first).
    for block in [0u64, 2047, 2048, 4095, 6143] {
        let at = (block * 4096) as usize;
        assert!(
            dd_block(&blob, block) == fake.layers[0][at..at + 4096],
            "block {block} reads wrong after kill -9"
        );
    }
    m.unmount();
}

/// Readers of one blob at the same time share the fetches: every reader gets the right
/// bytes and the registry serves the blob about once.
#[test]
fn concurrent_readers_share_one_fetch() {
    let size = 16 * MIB;
    let fake = FakeRegistry::start(&[size]);
    let m = Mount::start(&["--tls-verify=false"]);
    let blob = layer_path(&m, &fake, 0);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            Command::new("sha256sum")
                .arg(&blob)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for r in readers {
        let out = r.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hex = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            format!(
                "sha256:{}",
                hex.split_whitespace().next().unwrap_or_default()
            ),
            fake.layer_digests[0]
        );
    }
    let fetched = fake.layer_bytes();
    assert!(
        fetched <= size as u64 + 2 * CHUNK,
        "four concurrent readers made the registry serve {fetched} bytes of a {size}-byte blob"
    );
    m.unmount();
}

/// `scry cache prune --to 0` on an idle cache removes everything; a new mount then
/// fetches again.
#[test]
fn cache_prune_empties_an_idle_cache() {
    let fake = FakeRegistry::start(&[5 * MIB]);
    let cache = scratch("cache-");
    let args = ["--tls-verify=false"];
    let m = Mount::with_cache(&args, cache.path());
    assert_eq!(sha256sum(&layer_path(&m, &fake, 0)), fake.layer_digests[0]);
    m.unmount();
    let before = cache_status(cache.path());
    assert!(before["bytes"].as_u64().unwrap() >= 5 << 20, "{before}");
    assert!(before["complete_blobs"].as_u64().unwrap() >= 1, "{before}");

    let out = run_with_timeout(
        scry()
            .args(["cache", "prune", "--to", "0", "--cache-dir"])
            .arg(cache.path()),
        Duration::from_secs(60),
    );
    out.assert_success();
    assert!(
        out.json()["removed_bytes"].as_u64().unwrap() >= 5 << 20,
        "{out}"
    );
    let after = cache_status(cache.path());
    assert_eq!(after["bytes"].as_u64(), Some(0), "{after}");
    assert_eq!(after["entries"].as_u64(), Some(0), "{after}");

    let fetched = fake.layer_bytes();
    let m = Mount::with_cache(&args, cache.path());
    assert_eq!(sha256sum(&layer_path(&m, &fake, 0)), fake.layer_digests[0]);
    assert!(
        fake.layer_bytes() >= fetched + (5 << 20),
        "the pruned blob was not fetched again"
    );
    m.unmount();
}

/// `CACHE/blobs/sha256/HEX`: layer `i` complete in the cache.
fn cached_blob(cache: &Path, fake: &FakeRegistry, i: usize) -> PathBuf {
    cache
        .join("blobs/sha256")
        .join(hex_of(&fake.layer_digests[i]))
}

#[test]
fn two_mounts_on_one_cache_share_its_budget() {
    let cap: u64 = 50 << 20;
    let fake = FakeRegistry::start(&[40 * MIB, 30 * MIB]);
    let cache = scratch("cache-");
    let args = ["--tls-verify=false", "--cache-size", "50M"];
    let a = Mount::with_cache(&args, cache.path());
    let b = Mount::with_cache(&args, cache.path());
    assert_eq!(sha256sum(&layer_path(&a, &fake, 0)), fake.layer_digests[0]);
    assert_eq!(sha256sum(&layer_path(&b, &fake, 1)), fake.layer_digests[1]);
    let du = du_bytes(cache.path());
    assert!(
        du <= cap + (1 << 20),
        "two mounts with --cache-size 50M left {du} bytes in their cache:\n{}",
        listing(cache.path())
    );
    let status = cache_status(cache.path());
    let bytes = status["bytes"].as_u64().expect("bytes in cache status");
    assert!(bytes <= cap, "scry cache status: {bytes} bytes: {status}");
    // The most recent blob stayed; the other mount reads the evicted one again.
    // (A blob read to its end is verified and moved into blobs/ just after.)
    wait_until(
        Duration::from_secs(30),
        "the most recent blob complete in the cache",
        || cached_blob(cache.path(), &fake, 1).exists(),
    );
    assert_eq!(sha256sum(&layer_path(&a, &fake, 0)), fake.layer_digests[0]);
    assert!(du_bytes(cache.path()) <= cap + (1 << 20));
    a.unmount();
    b.unmount();
}

#[test]
fn a_blob_held_open_is_never_evicted() {
    let fake = FakeRegistry::start(&[40 * MIB, 30 * MIB]);
    // Without passthrough, the handle goes through scry alone.
    let m = Mount::start(&[
        "--tls-verify=false",
        "--passthrough=false",
        "--cache-size",
        "45M",
    ]);
    let held_path = layer_path(&m, &fake, 0);
    let mut held = std::fs::File::open(&held_path).unwrap();
    let mut bytes = Vec::new();
    held.read_to_end(&mut bytes).unwrap();
    assert!(bytes == fake.layers[0], "the held blob read wrong");
    let cached = cached_blob(m.cache_dir(), &fake, 0);
    wait_until(
        Duration::from_secs(30),
        "the held blob complete in the cache",
        || cached.exists(),
    );
    // A blob that fits only if the held one goes.
    assert_eq!(sha256sum(&layer_path(&m, &fake, 1)), fake.layer_digests[1]);
    assert!(
        cached.exists(),
        "a blob with an open handle was evicted:\n{}",
        listing(m.cache_dir())
    );
    assert!(du_bytes(m.cache_dir()) <= (45 << 20) + (1 << 20));
    let fetched = fake.layer_bytes();
    held.seek(SeekFrom::Start(0)).unwrap();
    bytes.clear();
    held.read_to_end(&mut bytes).unwrap();
    assert!(bytes == fake.layers[0], "the held blob read wrong again");
    assert_eq!(
        fake.layer_bytes(),
        fetched,
        "the held blob was fetched again"
    );
    // Released, it may go.
    drop(held);
    wait_until(
        Duration::from_secs(30),
        "a prune to evict the released blob",
        || {
            let out = run_with_timeout(
                scry()
                    .args(["cache", "prune", "--to", "0", "--cache-dir"])
                    .arg(m.cache_dir()),
                Duration::from_secs(60),
            );
            out.assert_success();
            !cached.exists()
        },
    );
    m.unmount();
}

#[test]
fn cache_status_counts_what_the_mounts_did() {
    let fake = FakeRegistry::start(&[6 * MIB]);
    let cache = scratch("cache-");
    let args = ["--tls-verify=false", "--cache-size", "64M"];
    let m = Mount::with_cache(&args, cache.path());
    assert_eq!(
        cache_status(cache.path())["max_bytes"].as_u64(),
        Some(64 << 20),
        "the budget the mount uses"
    );
    let blob = layer_path(&m, &fake, 0);
    assert_eq!(sha256sum(&blob), fake.layer_digests[0]);
    assert_eq!(sha256sum(&blob), fake.layer_digests[0]);
    let counted = |s: &serde_json::Value| {
        s["hits"].as_u64().unwrap() >= 1
            && s["misses"].as_u64().unwrap() >= 1
            && s["bytes_fetched"].as_u64().unwrap() >= 6 << 20
    };
    // Recorded while the mount runs, every few seconds.
    wait_until(
        Duration::from_secs(30),
        "the running mount's counters",
        || counted(&cache_status(cache.path())),
    );
    m.unmount();
    let after = cache_status(cache.path());
    assert!(counted(&after), "{after}");

    // A second mount adds to them.
    let m = Mount::with_cache(&args, cache.path());
    assert_eq!(sha256sum(&layer_path(&m, &fake, 0)), fake.layer_digests[0]);
    m.unmount();
    let total = cache_status(cache.path());
    let more = total["hits"].as_u64().unwrap() + total["misses"].as_u64().unwrap();
    let before = after["hits"].as_u64().unwrap() + after["misses"].as_u64().unwrap();
    assert!(
        more > before,
        "before {after}, after a second mount {total}"
    );

    let typo = cache.path().join("typo");
    let out = run_with_timeout(
        scry().args(["cache", "status", "--cache-dir"]).arg(&typo),
        Duration::from_secs(60),
    );
    assert!(!out.success(), "{out}");
    assert!(
        out.stderr.contains(&format!(
            "cache directory {} does not exist",
            typo.display()
        )),
        "{out}"
    );
    assert!(!typo.exists(), "cache status created {}", typo.display());
}
