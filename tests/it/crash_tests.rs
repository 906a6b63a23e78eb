//! `kill -9` of `scry copy` half way through a layer (held there by the fault proxy's
//! stalled body), into every local destination: nothing at the destination looks
//! complete, earlier images of a shared OCI layout are intact, and the same copy run
//! again completes. And two copies into one OCI layout at once both end up in it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::faultproxy::{Fault, FaultProxy, Rule};
use crate::harness::{run, scry, skopeo, spawn_owned, Fixtures, Registry};
use crate::mount_tests::fakereg::RawImage;
use crate::mount_tests::wait_until;

/// `big:latest` (one 4 MiB layer) behind a proxy whose answers for that layer send
/// 1 MiB, then stall for a minute.
fn stalled_source() -> (Registry, FaultProxy, String) {
    let reg = Registry::plain();
    let image = RawImage::new(&[4 << 20]);
    image.push(&reg.client(), "big", "latest");
    let proxy = FaultProxy::start(&reg.url());
    let layer = image.layer_digests[0].clone();
    proxy.add(stall_rule(&layer));
    (reg, proxy, layer)
}

fn copy_args(proxy: &FaultProxy, dest: &str) -> Vec<String> {
    vec![
        "copy".into(),
        "--src-tls-verify=false".into(),
        format!("docker://{}/big:latest", proxy.host()),
        dest.into(),
    ]
}

/// Bytes in the files below `dir`.
fn bytes_under(dir: &Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match e.file_type() {
            Ok(t) if t.is_dir() => n += bytes_under(&e.path()),
            Ok(t) if t.is_file() => n += e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => {}
        }
    }
    n
}

/// Starts the copy, waits until it has written part of the stalled layer near the
/// destination (in `scratch`), and kills it with SIGKILL.
fn kill_mid_layer(proxy: &FaultProxy, scratch: &Path, dest: &str) {
    let before = proxy.faults().len();
    let written = bytes_under(scratch);
    // Staging outside the destination's directory (archives) happens here too.
    let tmpdir = scratch.join("tmpdir");
    std::fs::create_dir_all(&tmpdir).unwrap();
    let mut cmd = scry();
    cmd.env("TMPDIR", &tmpdir)
        .args(copy_args(proxy, dest))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = spawn_owned(cmd).expect("start scry copy");
    wait_until(
        Duration::from_secs(30),
        "the copy to reach the layer",
        || proxy.faults().len() > before,
    );
    // The proxy sends the first MiB before its stall: wait for some of it on disk.
    wait_until(Duration::from_secs(30), "part of the layer on disk", || {
        bytes_under(scratch) >= written + (256 << 10)
    });
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The rule that stalls the layer's answers.
fn stall_rule(layer: &str) -> Rule {
    Rule::on(
        layer,
        Fault::StallBody {
            after: 1 << 20,
            stall: Duration::from_secs(60),
        },
    )
    .method("GET")
}

/// Runs the same copy again, without faults: it completes and skopeo reads the result.
fn rerun_completes(proxy: &FaultProxy, dest: &str) {
    proxy.clear();
    run(scry().args(copy_args(proxy, dest))).assert_success();
    run(skopeo().args(["inspect", dest])).assert_success();
}

/// Names in `dir` (none when it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn kill_9_of_a_copy_to_dir_leaves_nothing_complete_and_a_rerun_completes() {
    let (_reg, proxy, _layer) = stalled_source();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img");
    let dest = format!("dir:{}", out.display());
    kill_mid_layer(&proxy, tmp.path(), &dest);
    assert!(
        !out.join("manifest.json").exists(),
        "a killed copy left a dir: image that looks complete: {:?}",
        names(&out)
    );
    rerun_completes(&proxy, &dest);
}

#[test]
fn kill_9_of_a_copy_into_a_shared_oci_layout_keeps_its_images() {
    let (reg, proxy, _layer) = stalled_source();
    let fx = Fixtures::push_all(&reg);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let first = format!("oci:{}:first", layout.display());
    run(scry().args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}", fx.small.tagged(&reg, "latest")),
        &first,
    ]))
    .assert_success();
    let index_before = std::fs::read(layout.join("index.json")).unwrap();
    let second = format!("oci:{}:second", layout.display());
    kill_mid_layer(&proxy, tmp.path(), &second);
    assert_eq!(
        std::fs::read(layout.join("index.json")).unwrap(),
        index_before,
        "a killed copy changed index.json"
    );
    run(skopeo().args(["inspect", &first])).assert_success();
    let dir = tmp.path().join("first-out");
    run(skopeo().args(["copy", &first, &format!("dir:{}", dir.display())])).assert_success();
    rerun_completes(&proxy, &second);
    run(skopeo().args(["inspect", &first])).assert_success();
}

#[test]
fn kill_9_of_a_copy_to_an_archive_leaves_no_archive_and_a_rerun_completes() {
    let (_reg, proxy, layer) = stalled_source();
    let tmp = tempfile::tempdir().unwrap();
    for (transport, name) in [("oci-archive", "img.tar"), ("docker-archive", "img-d.tar")] {
        let path = tmp.path().join(name);
        let tag = if transport == "docker-archive" {
            ":big:latest"
        } else {
            ""
        };
        let dest = format!("{transport}:{}{tag}", path.display());
        proxy.clear();
        proxy.add(stall_rule(&layer));
        kill_mid_layer(&proxy, tmp.path(), &dest);
        assert!(
            !path.exists(),
            "a killed copy left {transport} {}: {:?}",
            path.display(),
            names(tmp.path())
        );

        rerun_completes(&proxy, &dest);
    }
}

#[test]
fn two_copies_into_one_oci_layout_at_once_both_land() {
    let reg = Registry::plain();
    let fx = Fixtures::push_all(&reg);
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    for round in 0..3 {
        let pairs = [
            (fx.small.tagged(&reg, "latest"), format!("a{round}")),
            (fx.multilayer.tagged(&reg, "latest"), format!("b{round}")),
        ];
        let children: Vec<_> = pairs
            .iter()
            .map(|(src, tag)| {
                let mut cmd = scry();
                cmd.args([
                    "copy",
                    "--src-tls-verify=false",
                    &format!("docker://{src}"),
                    &format!("oci:{}:{tag}", layout.display()),
                ])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
                spawn_owned(cmd).expect("start scry copy")
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for (_, tag) in &pairs {
            let r = format!("oci:{}:{tag}", layout.display());
            run(skopeo().args(["inspect", &r])).assert_success();
        }
    }
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 6, "{index}");
}
