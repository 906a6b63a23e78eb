//! `kill -9` of the mount while its cache evicts under a small budget and while a
//! copy-to job is half way through a layer; a new mount on the same cache then serves
//! only verified bytes, `scry cache status` agrees with what the directory holds, and
//! the copy-to run again completes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::fakereg::{FakeRegistry, Mode};
use super::{hex_of, scratch, sha256sum, wait_until, Mount};
use crate::harness::{run, scry, skopeo};

/// The files under `dir`, recursively.
fn stored_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(stored_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `scry cache status --cache-dir DIR` as JSON.
fn status(dir: &Path) -> serde_json::Value {
    let out = run(scry().args(["cache", "status", "--cache-dir", &dir.display().to_string()]));
    out.assert_success();
    out.json()
}

#[track_caller]
fn assert_cache_adds_up(cache: &Path) {
    let s = status(cache);
    let blobs = std::fs::read_dir(cache.join("blobs/sha256"))
        .map(|d| d.count() as u64)
        .unwrap_or(0);
    assert_eq!(s["complete_blobs"].as_u64(), Some(blobs), "{s}");
    // Complete blobs are verified files named by their digest.
    for e in std::fs::read_dir(cache.join("blobs/sha256"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        use sha2::{Digest, Sha256};
        let got = hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()));
        assert_eq!(got, name, "a complete cache blob does not match its name");
    }
    // No temporary file is left to grow: the cache's own tmp/ is empty or nearly so.
    let tmp = stored_files(&cache.join("tmp")).len();
    assert!(tmp <= 2, "{tmp} temporary files in the cache");
}

#[test]
fn kill_9_while_the_cache_evicts_then_every_blob_verifies() {
    // Six 3 MiB layers read in a loop with a 7 MiB budget: evictions all the time.
    let fake = FakeRegistry::start(&[3 << 20; 6]);
    let cache = scratch("cache-");
    let args = ["--tls-verify=false", "--cache-size", "7M"];
    let m = Mount::with_cache(&args, cache.path());
    let paths: Vec<_> = fake
        .layer_digests
        .iter()
        .map(|d| {
            m.path(&format!(
                "{}/big/latest/blobs/sha256/{}",
                fake.host(),
                hex_of(d)
            ))
        })
        .collect();
    let script: String = paths
        .iter()
        .map(|p| format!("cat '{}' >/dev/null; ", p.display()))
        .collect();
    let mut readers: Vec<_> = (0..3)
        .map(|_| {
            Command::new("bash")
                .arg("-c")
                .arg(format!("while true; do {script} done"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Evictions have happened: more bytes served than the budget holds.
    wait_until(Duration::from_secs(60), "evictions under load", || {
        fake.layer_bytes() > 30 << 20
    });
    m.kill9();
    for r in &mut readers {
        let _ = r.kill();
        let _ = r.wait();
    }
    assert_cache_adds_up(cache.path());
    let m = Mount::with_cache(&args, cache.path());
    for (i, d) in fake.layer_digests.iter().enumerate() {
        let p = m.path(&format!(
            "{}/big/latest/blobs/sha256/{}",
            fake.host(),
            hex_of(d)
        ));
        assert_eq!(&sha256sum(&p), d, "layer {i} after kill -9 and remount");
    }
    assert_cache_adds_up(cache.path());
    let bytes = status(cache.path())["bytes"].as_u64().unwrap();
    assert!(bytes <= 7 << 20, "{bytes} bytes cached, budget 7 MiB");
    m.unmount();
}

#[test]
fn kill_9_during_a_copy_to_leaves_no_image_and_the_job_run_again_completes() {
    let fake = FakeRegistry::start(&[8 << 20]);
    let cache = scratch("cache-");
    let args = ["--tls-verify=false"];
    let m = Mount::with_cache(&args, cache.path());
    let tag = m.path(&format!("{}/big/latest", fake.host()));
    assert!(tag.join("manifest.json").exists());
    let keep = scratch("copy-to-out-");
    let out = keep.path().join("out");
    let dest = format!("oci:{}:copied", out.display());
    // The layer's answers stall half way: the copy hangs inside it.
    fake.set_mode(Mode::StallFrom(2 << 20));
    let job = tag.join("copy-to/job1");
    let mut writer = Command::new("bash")
        .arg("-c")
        .arg(format!("echo '{dest}' > '{}'", job.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the copy to stall in the layer",
        || fake.stalled() > 0,
    );
    m.kill9();
    let _ = writer.wait();
    let index = std::fs::read_to_string(out.join("index.json")).unwrap_or_default();
    assert!(
        !index.contains("copied"),
        "a killed copy-to left an image: {index}"
    );
    assert_cache_adds_up(cache.path());

    fake.set_mode(Mode::Serve);
    let m = Mount::with_cache(&args, cache.path());
    let tag = m.path(&format!("{}/big/latest", fake.host()));
    let w = run(Command::new("bash").arg("-c").arg(format!(
        "echo '{dest}' > '{}'",
        tag.join("copy-to/job2").display()
    )));
    w.assert_success();
    run(skopeo().args(["inspect", &dest])).assert_success();
    // Every blob in the layout matches its name (the killed copy's hidden temporary
    // file is all it left: docs/reliability.md).
    for p in stored_files(&out.join("blobs/sha256")) {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with(".scry-tmp-") {
            assert_eq!(sha256sum(&p), format!("sha256:{name}"));
        }
    }
    m.unmount();
}
