//! Bad input and impossible destinations: a corrupt blob in a `dir:` source, archives
//! whose entries point outside, destinations that cannot be written, and
//! `--preserve-digests` with a format change. Each fails with exit 1 and a clear
//! message, and leaves no trace where the image would have gone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{oci_ref_names, read_tree, scratch, scry_copy, skopeo_copy, Place, Transport};
use crate::fake::{Action, FakeServer};
use crate::harness::{run, run_with_timeout, scry, shared_registry, skopeo, CmdOutput};

/// Every path below `root` whose name marks an unfinished write.
fn leftovers(root: &Path) -> Vec<String> {
    read_tree(root)
        .into_keys()
        .filter(|p| {
            let name = p.rsplit('/').next().unwrap();
            name.starts_with(".scry-tmp") || name.starts_with(".tmp") || name.contains("partial")
        })
        .collect()
}

#[track_caller]
fn assert_failed_naming(out: &CmdOutput, what: &str) {
    out.assert_code(1);
    assert!(
        out.stderr.contains(what),
        "stderr does not name {what}: {out}"
    );
    assert!(!out.stderr.contains("panicked"), "{out}");
}

#[test]
fn corrupt_blob_in_a_dir_source_fails_and_leaves_destinations_untouched() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let (src, src_path) = place.dir("corrupt-src");
    skopeo_copy(&[&shared.docker_ref("multilayer:latest"), &src]).assert_success();
    // Same length, different bytes in the middle of the second layer.
    let bad = &fx.multilayer.image.layers[1].blob.digest;
    let blob_path = src_path.join(bad.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&blob_path).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0x5a;
    }
    std::fs::write(&blob_path, &bytes).unwrap();

    // An existing layout with another image: its index must not change.
    let keep_layout = place.local_path(Transport::Oci, "existing");
    let keep = format!("oci:{}:keep", keep_layout.display());
    skopeo_copy(&[&shared.docker_ref("small:latest"), &keep]).assert_success();
    let keep_index = std::fs::read(keep_layout.join("index.json")).unwrap();

    let tmp = place.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let fresh = |t: Transport| place.image(t, &format!("fresh-{}", t.name()));
    let existing = format!("oci:{}:t", keep_layout.display());
    let dests = [
        fresh(Transport::Dir),
        fresh(Transport::Oci),
        fresh(Transport::OciArchive),
        fresh(Transport::DockerArchive),
        fresh(Transport::Docker),
        existing.clone(),
    ];
    // Several rounds: blobs are copied concurrently, so what is in flight when the
    // corrupt one fails varies from run to run.
    for round in 0..3 {
        for dst in &dests {
            let out = run(scry().args([
                "--tmpdir",
                tmp.to_str().unwrap(),
                "copy",
                "--dest-tls-verify=false",
                &src,
                dst,
            ]));
            assert_failed_naming(&out, bad);
            assert!(
                // scry's verifier, the gzip trailer check (archives store plain
                // layers) or the registry's own check, whichever sees the end first.
                ["digest mismatch", "does not match", "digest invalid"]
                    .iter()
                    .any(|m| out.stderr.contains(m)),
                "round {round}: {out}"
            );
            for t in [
                Transport::Dir,
                Transport::OciArchive,
                Transport::DockerArchive,
            ] {
                let p = place.local_path(t, &format!("fresh-{}", t.name()));
                assert!(!p.exists(), "round {round}: {dst} left {}", p.display());
            }
            let fresh_layout = place.local_path(Transport::Oci, "fresh-oci");
            if fresh_layout.join("index.json").exists() {
                assert!(
                    oci_ref_names(&fresh_layout).is_empty(),
                    "round {round}: {dst} tagged an image in {}",
                    fresh_layout.display()
                );
            }
            assert_eq!(
                std::fs::read(keep_layout.join("index.json")).unwrap(),
                keep_index,
                "round {round}: {dst} changed the existing layout's index"
            );
            assert!(
                place
                    .reg
                    .client()
                    .get_manifest("matrix/fresh-docker", "t")
                    .is_none(),
                "round {round}: {dst} tagged the image in the registry"
            );
            // When one blob fails, writes of its siblings are abandoned mid-way: their
            // temporary files must go too.
            let left = leftovers(place.path());
            assert!(
                left.is_empty(),
                "round {round}: {dst} left unfinished files: {left:?}"
            );
            assert!(
                read_tree(&tmp).is_empty(),
                "round {round}: {dst} left temporary files in --tmpdir: {:?}",
                read_tree(&tmp).keys().collect::<Vec<_>>()
            );
        }
    }
}

/// A copy of skopeo's archive at `good` with one more entry appended: `name` (raw
/// header bytes, unchecked) as a regular file, or as a symlink to `link` followed by
/// a file below it.
fn evil_archive(good: &Path, out: &Path, name: &str, link: Option<&str>) {
    let mut b = tar::Builder::new(std::fs::File::create(out).unwrap());
    let mut src = tar::Archive::new(std::fs::File::open(good).unwrap());
    for e in src.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header().clone();
        b.append(&h, e).unwrap();
    }
    let raw_header = |name: &str, kind: tar::EntryType, size: u64| {
        let mut h = tar::Header::new_gnu();
        let field = &mut h.as_old_mut().name;
        assert!(name.len() < field.len());
        field.fill(0);
        field[..name.len()].copy_from_slice(name.as_bytes());
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(size);
        h.set_mtime(1_600_000_000);
        h.set_cksum();
        h
    };
    let data = b"written outside\n";
    match link {
        None => {
            let h = raw_header(name, tar::EntryType::Regular, data.len() as u64);
            b.append(&h, &data[..]).unwrap();
        }
        Some(target) => {
            let mut h = raw_header(name, tar::EntryType::Symlink, 0);
            h.set_link_name(target).unwrap();
            h.set_cksum();
            b.append(&h, std::io::empty()).unwrap();
            let inner = format!("{name}/evil");
            let h = raw_header(&inner, tar::EntryType::Regular, data.len() as u64);
            b.append(&h, &data[..]).unwrap();
        }
    }
    b.into_inner().unwrap();
}

#[test]
fn archive_entries_pointing_outside_are_rejected() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    // The archives are read below --tmpdir (tmp/a/b), so "../" escapes would land in
    // tmp/a; the absolute target and the symlink target are under `outside`.
    let tmp = place.path().join("tmp");
    let inner_tmp = tmp.join("a/b");
    std::fs::create_dir_all(&inner_tmp).unwrap();
    let outside = place.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    let abs = outside.join("abs-evil").display().to_string();
    for archive_t in [Transport::OciArchive, Transport::DockerArchive] {
        let good_name = place.image(archive_t, "good");
        let good = place.local_path(archive_t, "good");
        skopeo_copy(&[&shared.docker_ref("small:latest"), &good_name]).assert_success();
        let mut cases: Vec<(&str, String, Option<String>)> = vec![
            ("dotdot", "../evil".into(), None),
            ("nested-dotdot", "blobs/../../../evil".into(), None),
            ("absolute", abs.clone(), None),
        ];
        if archive_t == Transport::OciArchive {
            // docker-archive legitimately holds symlinks; an OCI layout does not.
            cases.push((
                "symlinked-parent",
                "blobs/link".into(),
                Some(outside.display().to_string()),
            ));
        }
        for (label, name, link) in cases {
            let archive = place
                .path()
                .join(format!("{}-{label}.tar", archive_t.name()));
            evil_archive(&good, &archive, &name, link.as_deref());
            let src = format!("{}:{}", archive_t.name(), archive.display());
            let (dst, dst_path) = place.dir(&format!("{}-{label}-out", archive_t.name()));
            let out =
                run(scry().args(["--tmpdir", inner_tmp.to_str().unwrap(), "copy", &src, &dst]));
            assert_failed_naming(&out, &name);
            assert!(!dst_path.exists(), "{src}: {dst} was written");
            let escaped: Vec<PathBuf> = read_tree(&tmp)
                .into_keys()
                .filter(|p| p != "a" && p != "a/b")
                .map(|p| tmp.join(p))
                .collect();
            assert!(escaped.is_empty(), "{src}: left {escaped:?}");
            assert!(
                read_tree(&outside).is_empty(),
                "{src}: wrote {:?} outside the archive",
                read_tree(&outside).keys().collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn unwritable_destinations_fail_with_a_clear_error() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    let (src, _) = place.dir("src");
    skopeo_copy(&[&shared.docker_ref("small:latest"), &src]).assert_success();
    // Tests run as root, so permission bits do not stop writes: use paths whose
    // parent is not a directory, and a regular file where a directory is expected.
    for dst in [
        "dir:/dev/null/x",
        "oci:/dev/null/x:t",
        "oci-archive:/dev/null/x.tar:t",
        "docker-archive:/dev/null/x.tar:a/b:c",
    ] {
        let out = scry_copy(&[&src, dst]);
        assert_failed_naming(&out, "/dev/null");
        assert!(
            out.stderr.to_lowercase().contains("not a directory"),
            "{out}"
        );
    }
    let file = place.path().join("a-file");
    std::fs::write(&file, b"keep me").unwrap();
    for dst in [
        format!("dir:{}", file.display()),
        format!("oci:{}:t", file.display()),
    ] {
        let out = scry_copy(&[&src, &dst]);
        assert_failed_naming(&out, &file.display().to_string());
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me", "{dst}");
    }
}

#[test]
fn preserve_digests_with_a_format_change_is_refused_before_writing() {
    let (shared, _) = shared_registry();
    let dir = scratch();
    let src = shared.docker_ref("small:latest");
    for (flags, dst) in [
        (
            &["--format", "v2s2"][..],
            format!("dir:{}/d", dir.path().display()),
        ),
        (
            &["--format", "v2s2"][..],
            format!("oci:{}/o:t", dir.path().display()),
        ),
        (
            &["--dest-compress-format", "zstd"][..],
            format!("oci-archive:{}/a.tar:t", dir.path().display()),
        ),
    ] {
        let mut args = vec!["--preserve-digests"];
        args.extend_from_slice(flags);
        args.extend([src.as_str(), dst.as_str()]);
        let out = scry_copy(&args);
        assert_failed_naming(&out, "--preserve-digests");
        assert!(
            read_tree(dir.path()).is_empty(),
            "{dst}: wrote {:?}",
            read_tree(dir.path()).keys().collect::<Vec<_>>()
        );
    }
    // Refused only once the source's index was read (after the destination was
    // opened): a sparse copy of a list changes the list's digest.
    let list = shared.docker_ref("multiarch:latest");
    for dst in [
        format!("oci:{}/sparse:t", dir.path().display()),
        format!("dir:{}/sparse-dir", dir.path().display()),
    ] {
        let out = scry_copy(&[
            "--preserve-digests",
            "--multi-arch",
            "linux/amd64,linux/arm64",
            &list,
            &dst,
        ]);
        assert_failed_naming(&out, "--preserve-digests");
        assert!(
            read_tree(dir.path()).is_empty(),
            "{dst}: wrote {:?}\n{out}",
            read_tree(dir.path()).keys().collect::<Vec<_>>()
        );
    }
}

/// Files of an OCI layout that are not part of a finished layout: anything but
/// `oci-layout`, `index.json` and `blobs/sha256/<64 hex>`.
fn unfinished_in_layout(layout: &Path) -> Vec<String> {
    if !layout.exists() {
        return Vec::new();
    }
    read_tree(layout)
        .into_iter()
        .filter(|(_, node)| !matches!(node, super::Node::Dir))
        .map(|(p, _)| p)
        .filter(|p| {
            let blob = p
                .strip_prefix("blobs/sha256/")
                .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
            !(blob || p == "oci-layout" || p == "index.json")
        })
        .collect()
}

/// One layer fails its digest while another is still arriving (the source stalls
/// half-way through it): the copy fails at once, naming the bad blob, and removes
/// the unfinished file of the stalled one as well.
#[test]
fn failed_copy_to_oci_removes_blobs_still_in_flight() {
    let img = crate::harness::Fixtures::get().multilayer.image.clone();
    let dir = scratch();
    let layout = dir.path().join("layout");
    let tmp = dir.path().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let stalled = img.layers[2].blob.clone();
    let corrupt = img.layers[0].blob.clone();
    let blobs: Vec<_> = img.blobs().into_iter().cloned().collect();
    let (manifest, mt) = (img.manifest.clone(), img.media_type.clone());
    let watched = layout.clone();
    let srv = FakeServer::start(move |r, _| {
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        if r.path.contains("/manifests/") {
            return Action::with(200, &[("Content-Type", &mt)], manifest.clone());
        }
        if r.method == "GET" && r.path.ends_with(&stalled.digest) {
            return Action::Hang {
                status: 200,
                headers: Vec::new(),
                body: stalled.data.clone(),
                send: stalled.data.len() / 2,
            };
        }
        if r.method == "GET" && r.path.ends_with(&corrupt.digest) {
            // Answer once the stalled blob is being written (or after a while, in
            // case scry does not stage it in the layout at all).
            let deadline = Instant::now() + Duration::from_secs(20);
            while unfinished_in_layout(&watched).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Action::with(200, &[], vec![b'x'; corrupt.data.len()]);
        }
        match blobs.iter().find(|b| r.path.ends_with(&b.digest)) {
            Some(b) => Action::with(200, &[], b.data.clone()),
            None => Action::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#),
        }
    });
    let dst = format!("oci:{}:t", layout.display());
    let out = run_with_timeout(
        scry().args([
            "--tmpdir",
            tmp.to_str().unwrap(),
            "copy",
            "--src-tls-verify=false",
            "--image-parallel-copies",
            "4",
            &format!("docker://{}/multilayer:latest", srv.host()),
            &dst,
        ]),
        Duration::from_secs(60),
    );
    assert_failed_naming(&out, &img.layers[0].blob.digest);
    assert!(
        srv.count(&img.layers[2].blob.digest) > 0,
        "premise: the stalled blob was requested"
    );
    if layout.join("index.json").exists() {
        assert!(oci_ref_names(&layout).is_empty(), "{dst} tagged an image");
    }
    let left = unfinished_in_layout(&layout);
    assert!(left.is_empty(), "{dst}: unfinished files left: {left:?}");
    assert!(
        read_tree(&tmp).is_empty(),
        "temporary files left in --tmpdir"
    );
}

/// A later layer fails while an earlier one is still arriving (its body stalls and
/// never ends while scry is connected): the copy fails at once and names the layer
/// that failed, not the one it was still waiting for.
#[test]
fn a_failing_blob_ends_the_copy_while_an_earlier_one_stalls() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let img = crate::harness::Fixtures::get().multilayer.image.clone();
    let dir = scratch();
    let stalled = img.layers[0].blob.clone();
    let corrupt = img.layers[1].blob.clone();
    let blobs: Vec<_> = img.blobs().into_iter().cloned().collect();
    let (manifest, mt) = (img.manifest.clone(), img.media_type.clone());
    let stalling = Arc::new(AtomicBool::new(false));
    let seen_stall = stalling.clone();
    let srv = FakeServer::start(move |r, _| {
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        if r.path.contains("/manifests/") {
            return Action::with(200, &[("Content-Type", &mt)], manifest.clone());
        }
        if r.method == "GET" && r.path.ends_with(&stalled.digest) {
            seen_stall.store(true, Ordering::SeqCst);
            return Action::Hang {
                status: 200,
                headers: Vec::new(),
                body: stalled.data.clone(),
                send: stalled.data.len() / 2,
            };
        }
        if r.method == "GET" && r.path.ends_with(&corrupt.digest) {
            // Fail only once the earlier layer is stalled.
            let deadline = Instant::now() + Duration::from_secs(20);
            while !seen_stall.load(Ordering::SeqCst) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            return Action::with(200, &[], vec![b'x'; corrupt.data.len()]);
        }
        match blobs.iter().find(|b| r.path.ends_with(&b.digest)) {
            Some(b) => Action::with(200, &[], b.data.clone()),
            None => Action::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#),
        }
    });
    let (dst, dst_path) = (
        format!("dir:{}/out", dir.path().display()),
        dir.path().join("out"),
    );
    // The bound only keeps a hanging copy from hanging the suite.
    let out = run_with_timeout(
        scry().args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/multilayer:latest", srv.host()),
            &dst,
        ]),
        Duration::from_secs(120),
    );
    assert!(
        stalling.load(Ordering::SeqCst),
        "premise: layer 0 was requested"
    );
    assert_failed_naming(&out, &img.layers[1].blob.digest);
    assert!(
        !out.stderr.contains(&img.layers[0].blob.digest),
        "the error names the stalled layer, not the failed one: {out}"
    );
    assert!(out.stderr.contains("digest mismatch"), "{out}");
    assert!(!dst_path.exists(), "{dst} was written");
    drop(srv);
}

/// A `dir:` image whose last layer is corrupt (same length, other bytes), copied from
/// `shared`'s multilayer image; returns its name and the corrupt layer's digest.
fn corrupt_dir_source(place: &Place) -> (String, String) {
    let (shared, fx) = shared_registry();
    let (src, src_path) = place.dir("corrupt-last");
    skopeo_copy(&[&shared.docker_ref("multilayer:latest"), &src]).assert_success();
    let bad = fx
        .multilayer
        .image
        .layers
        .last()
        .unwrap()
        .blob
        .digest
        .clone();
    let blob_path = src_path.join(bad.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&blob_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&blob_path, &bytes).unwrap();
    (src, bad)
}

/// Every path below `root` with the sha256 of each file: what "as it was" means.
fn tree_listing(root: &Path) -> Vec<(String, Option<String>)> {
    read_tree(root)
        .into_iter()
        .map(|(p, node)| match node {
            super::Node::File(data) => (p, Some(crate::harness::push::sha256_digest(&data))),
            other => (p, Some(format!("{other:?}"))),
        })
        .collect()
}

/// A failed copy into an existing OCI layout that holds another image leaves the
/// layout exactly as it was: no blob the copy wrote before the failure stays (the
/// layers before the corrupt one are written completely: one blob at a time).
#[test]
fn failed_copy_leaves_an_existing_oci_layout_as_it_was() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let (src, bad) = corrupt_dir_source(&place);
    let layout = place.local_path(Transport::Oci, "existing");
    skopeo_copy(&[
        &shared.docker_ref("small:latest"),
        &format!("oci:{}:keep", layout.display()),
    ])
    .assert_success();
    let before = tree_listing(&layout);
    for parallel in ["1", "6"] {
        let out = scry_copy(&[
            "--image-parallel-copies",
            parallel,
            &src,
            &format!("oci:{}:new", layout.display()),
        ]);
        assert_failed_naming(&out, &bad);
        assert_eq!(
            tree_listing(&layout),
            before,
            "--image-parallel-copies {parallel}: the layout changed"
        );
    }
    // Premise: the layers before the corrupt one are new to the layout.
    let blobs = read_tree(&layout.join("blobs/sha256"));
    for l in &fx.multilayer.image.layers[..fx.multilayer.image.layers.len() - 1] {
        assert!(!blobs.contains_key(l.blob.digest.strip_prefix("sha256:").unwrap()));
    }
    run(skopeo().args(["inspect", &format!("oci:{}:keep", layout.display())])).assert_success();
}

/// A failed copy to a path that did not exist leaves nothing there, whatever the
/// local transport (a missing parent directory too).
#[test]
fn failed_copy_to_a_fresh_path_leaves_nothing() {
    let place = Place::new();
    let (src, bad) = corrupt_dir_source(&place);
    let fresh = place.path().join("fresh");
    let dests = [
        format!("oci:{}:t", fresh.join("layout").display()),
        format!("oci:{}:t", fresh.join("parent/layout").display()),
        format!("oci-archive:{}:t", fresh.join("a.tar").display()),
        format!("dir:{}", fresh.join("d").display()),
        format!("docker-archive:{}:a/b:t", fresh.join("d.tar").display()),
    ];
    std::fs::create_dir(&fresh).unwrap();
    for dst in &dests {
        for parallel in ["1", "6"] {
            let out = scry_copy(&["--image-parallel-copies", parallel, &src, dst]);
            assert_failed_naming(&out, &bad);
            assert!(
                read_tree(&fresh).is_empty(),
                "{dst}: left {:?}",
                read_tree(&fresh).keys().collect::<Vec<_>>()
            );
        }
    }
}

/// A compression level the format does not have is refused before anything is read
/// or written.
#[test]
fn out_of_range_compression_levels_are_refused_before_writing() {
    let place = Place::new();
    let (src, _) = place.dir("never-read");
    let out_dir = place.path().join("out");
    for (flags, what) in [
        (
            &[
                "--dest-compress-format",
                "gzip",
                "--dest-compress-level",
                "99",
            ][..],
            "gzip",
        ),
        (&["--dest-compress-level", "10"][..], "gzip"),
        (
            &[
                "--dest-compress-format",
                "zstd",
                "--dest-compress-level",
                "23",
            ][..],
            "zstd",
        ),
        (
            &["--dest-compress-format", "zstd", "--dest-compress-level=-5"][..],
            "zstd",
        ),
    ] {
        let mut args = flags.to_vec();
        let dst = format!("oci:{}:t", out_dir.display());
        args.extend([src.as_str(), dst.as_str()]);
        let out = scry_copy(&args);
        assert_failed_naming(&out, "--dest-compress-level");
        assert!(out.stderr.contains(what), "{out}");
        assert!(!out_dir.exists(), "{flags:?}: wrote {}", out_dir.display());
    }
    // The ends of each range are accepted (here: refused only because the source
    // does not exist).
    for (format, level) in [("gzip", "0"), ("gzip", "9"), ("zstd", "1"), ("zstd", "22")] {
        let dst = format!("oci:{}:t", out_dir.display());
        let out = scry_copy(&[
            "--dest-compress-format",
            format,
            "--dest-compress-level",
            level,
            &src,
            &dst,
        ]);
        assert!(!out.stderr.contains("--dest-compress-level"), "{out}");
    }
}

/// `dir:` and `oci:` sources whose manifest or index names a digest that is a path
/// (`sha256:../../…`) or of an algorithm scry does not store: the copy fails naming the
/// digest, nothing is written outside the source and the destination.
#[test]
fn digests_that_are_paths_or_unknown_algorithms_are_refused() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    let (good, good_path) = place.dir("good");
    skopeo_copy(&[&shared.docker_ref("small:latest"), &good]).assert_success();
    let manifest = std::fs::read_to_string(good_path.join("manifest.json")).unwrap();
    let m: serde_json::Value = serde_json::from_str(&manifest).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let bait = place.path().join("bait");
    std::fs::write(&bait, b"outside").unwrap();
    for evil in [
        "sha256:../../bait".to_string(),
        format!("sha256:../{}", &layer[9..]),
        format!("md5:{}", "0".repeat(32)),
        format!("sha512:{}", "0".repeat(128)),
    ] {
        // dir: source
        let (src, src_path) = place.dir(&format!("evil-{}", evil.len()));
        let _ = std::fs::remove_dir_all(&src_path);
        skopeo_copy(&[&shared.docker_ref("small:latest"), &src]).assert_success();
        std::fs::write(
            src_path.join("manifest.json"),
            manifest.replace(&layer, &evil),
        )
        .unwrap();
        let (dest, dest_path) = place.dir(&format!("out-{}", evil.len()));
        let out = run(scry().args(["copy", &src, &dest]));
        assert_failed_naming(&out, &evil);
        assert!(!dest_path.join("manifest.json").exists(), "{evil}");
        assert_eq!(std::fs::read(&bait).unwrap(), b"outside");

        // oci: source whose index names the evil digest as its manifest
        let layout = place.path().join(format!("layout-{}", evil.len()));
        let _ = std::fs::remove_dir_all(&layout);
        run(scry().args(["copy", &good, &format!("oci:{}:t", layout.display())])).assert_success();
        let index = std::fs::read_to_string(layout.join("index.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&index).unwrap();
        let md = v["manifests"][0]["digest"].as_str().unwrap().to_string();
        std::fs::write(layout.join("index.json"), index.replace(&md, &evil)).unwrap();
        let (dest, dest_path) = place.dir(&format!("out2-{}", evil.len()));
        let out = run(scry().args(["copy", &format!("oci:{}:t", layout.display()), &dest]));
        assert_failed_naming(&out, &evil);
        assert!(!dest_path.join("manifest.json").exists(), "{evil}");
        assert_eq!(std::fs::read(&bait).unwrap(), b"outside");
    }
}
