//! Load on the mount, bounded in time: 32 readers over 5 images with a cache smaller
//! than their blobs, `ls -R` and `find` beside them — every read verifies, the budget
//! holds, no file descriptor leaks, and the daemon's peak memory is reported. And a
//! registry 200 ms away: listing what the mount already knows asks it nothing.
//!
//! `SCRY_STRESS_SECS` sets how long the readers run (default 8; `scripts/stress.sh`
//! runs it longer).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fakereg::RawImage;
use super::{hex_of, tool, Mount};
use crate::harness::faultproxy::{Fault, FaultProxy, Rule};
use crate::harness::{run, scry, Registry};

/// Open descriptors of process `pid`.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What the open descriptors of `pid` point at, counted by kind.
fn fd_kinds(pid: u32) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let t = std::fs::read_link(e.path())
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let kind = match t.split_once(':') {
            Some((k, _)) if !t.starts_with('/') => k.to_string(),
            _ => t,
        };
        *m.entry(kind).or_default() += 1;
    }
    m
}

/// A `/proc/PID/status` field in KiB (e.g. `VmHWM`, the peak resident size).
fn status_kib(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(b))
}

#[test]
fn thirty_two_readers_over_five_images_with_a_small_cache() {
    let secs: u64 = std::env::var("SCRY_STRESS_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let reg = Registry::plain();
    let images: Vec<RawImage> = (0..5)
        .map(|i| RawImage::new(&[3 << 20, (1 << 20) + i * 4097]))
        .collect();
    for (i, img) in images.iter().enumerate() {
        img.push(&reg.client(), &format!("load{i}"), "latest");
    }
    // Working set ~21 MiB, budget 8 MiB: blobs are evicted and fetched again.
    let budget: u64 = 8 << 20;
    let m = Mount::start(&[
        "--tls-verify=false",
        "--cache-size",
        "8M",
        "--timeout",
        "20s",
    ]);
    let host = reg.url();
    let blobs: Vec<std::path::PathBuf> = images
        .iter()
        .enumerate()
        .flat_map(|(i, img)| {
            let dir = m.path(&format!("{host}/load{i}/latest/blobs/sha256"));
            img.layer_digests
                .iter()
                .map(move |d| dir.join(hex_of(d)))
                .collect::<Vec<_>>()
        })
        .collect();
    // Warm up the metadata, then count the daemon's descriptors.
    for b in &blobs {
        assert!(std::fs::metadata(b).is_ok(), "{}", b.display());
    }
    let pid = m.pid();
    let fds_before = fds(pid);
    let kinds_before = fd_kinds(pid);

    let stop = Arc::new(AtomicBool::new(false));
    let (reads, bytes, bad) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(std::sync::Mutex::new(Vec::<String>::new())),
    );
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut threads = Vec::new();
    for r in 0..32usize {
        let (blobs, reads, bytes, bad) = (blobs.clone(), reads.clone(), bytes.clone(), bad.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = r;
            while Instant::now() < deadline {
                let b = &blobs[i % blobs.len()];
                i = i.wrapping_mul(7).wrapping_add(3);
                match std::fs::read(b) {
                    Ok(data) => {
                        let name = b.file_name().unwrap().to_string_lossy().into_owned();
                        if sha256_hex(&data) != name {
                            bad.lock().unwrap().push(format!("{name}: wrong bytes"));
                        }
                        reads.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    Err(e) => bad.lock().unwrap().push(format!("{}: {e}", b.display())),
                }
            }
        }));
    }
    // The walks list the layouts; the layers' file trees (`rootfs/`, `layers/N/`),
    // which index every layer, are left out here.
    let walkers: Vec<_> = [
        ("ls", vec!["-R", "-I", "rootfs", "-I", "[0-9]"]),
        ("find", vec![]),
    ]
    .into_iter()
    .map(|(prog, args)| {
        let (stop, root) = (stop.clone(), m.path(&host));
        std::thread::spawn(move || {
            let mut runs = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
                a.push(root.display().to_string());
                if prog == "find" {
                    a.extend(
                        ["-name", "rootfs", "-prune", "-o", "-path", "*/layers/[0-9]"]
                            .into_iter()
                            .chain(["-prune", "-o", "-print"])
                            .map(String::from),
                    );
                }
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                let out = tool(prog, &refs);
                assert!(out.success(), "{prog}: {out}");
                runs += 1;
            }
            runs
        })
    })
    .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let walks: i32 = walkers.into_iter().map(|w| w.join().unwrap()).sum();

    let bad = bad.lock().unwrap().clone();
    assert!(
        bad.is_empty(),
        "{} bad reads: {:?}\n{}",
        bad.len(),
        &bad[..bad.len().min(5)],
        m.log()
    );
    let reads = reads.load(Ordering::Relaxed);
    assert!(reads >= 32, "only {reads} reads");
    // Handles were all closed: the daemon holds no more descriptors than before.
    // Handles were all closed: no file stays open. Sockets are the connection pool
    // (idle connections kept for reuse), bounded by the readers there were.
    let files = |k: &std::collections::BTreeMap<String, usize>| {
        let mut k = k.clone();
        k.remove("socket");
        k
    };
    super::wait_until(Duration::from_secs(10), "files to be closed", || {
        files(&fd_kinds(pid)) == files(&kinds_before)
    });
    let sockets = fd_kinds(pid).get("socket").copied().unwrap_or(0);
    assert!(
        sockets <= 4 + 32 + 8,
        "{sockets} sockets: {:?}",
        fd_kinds(pid)
    );
    let peak_kib = status_kib(pid, "VmHWM");
    let status = run(scry().args([
        "cache",
        "status",
        "--cache-dir",
        &m.cache_dir().display().to_string(),
    ]));
    status.assert_success();
    let cached = status.json()["bytes"].as_u64().unwrap();
    assert!(
        cached <= budget,
        "cache holds {cached} bytes, budget {budget}"
    );
    eprintln!(
        "stress: {secs}s, 32 readers: {reads} whole-blob reads verified, {} MiB read, \
         {walks} ls -R/find walks, 0 errors; daemon peak RSS {} MiB; descriptors \
         {fds_before} before, {} after ({sockets} sockets)",
        bytes.load(Ordering::Relaxed) >> 20,
        peak_kib / 1024,
        fds(pid)
    );
    // A guard with room for a loaded machine; the target (64 MiB) and the figures
    // measured are in docs/reliability.md.
    assert!(peak_kib < 128 * 1024, "peak RSS {peak_kib} KiB");
    m.unmount();
}

#[test]
fn a_slow_registry_is_not_asked_again_for_what_the_mount_knows() {
    let reg = Registry::plain();
    let img = RawImage::new(&[1 << 20]);
    img.push(&reg.client(), "slow", "latest");
    let proxy = FaultProxy::start(&reg.url());
    // 200 ms before every answer.
    proxy.add(Rule::on(
        "/",
        Fault::StallHeaders(Duration::from_millis(200)),
    ));
    let m = Mount::start(&["--tls-verify=false", "--tag-ttl", "10m"]);
    let dir = m.path(&format!("{}/slow/latest", proxy.host()));
    // The layer is no tar: its trees (`rootfs/`, `layers/0/`) are left out of the walk.
    let walk = |dir: &std::path::Path| {
        let d = dir.display().to_string();
        tool("ls", &["-lR", "-I", "rootfs", "-I", "[0-9]", &d])
    };
    let first = walk(&dir);
    first.assert_success();
    let asked = proxy.requests().len();
    assert!(asked > 0);
    // Within the tag TTL the same listing (and stat of every file) asks nothing.
    for _ in 0..5 {
        let again = walk(&dir);
        again.assert_success();
        assert_eq!(again.stdout, first.stdout);
    }
    assert_eq!(
        proxy.requests().len(),
        asked,
        "{:?}",
        &proxy.requests()[asked..]
    );
    m.unmount();
}
