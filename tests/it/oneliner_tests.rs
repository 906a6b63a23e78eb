//! The commands beyond skopeo's (`digest`, `manifest`, `config`, `blob`, `catalog`,
//! `tag`, `validate`, `export`) against the real registry, compared with skopeo where they
//! overlap.

use sha2::{Digest, Sha256};

use crate::harness::image::Rootfs;
use crate::harness::{run, scry, shared_registry, skopeo, Fixtures, Registry};

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn scry_out(args: &[&str]) -> crate::harness::CmdOutput {
    let out = run(scry().args(args));
    out.assert_success();
    out
}

#[test]
fn digest_manifest_and_config_agree_with_skopeo() {
    let (reg, fx) = shared_registry();
    for name in [
        fx.small.tagged(reg, "latest"),
        fx.docker.tagged(reg, "latest"),
        fx.multiarch.tagged(reg, "latest"),
    ] {
        let r = format!("docker://{name}");
        let raw = run(skopeo().args(["inspect", "--tls-verify=false", "--raw", &r]));
        raw.assert_success();
        let m = scry_out(&["manifest", "--tls-verify=false", &r]);
        assert_eq!(m.stdout_bytes, raw.stdout_bytes, "{r}");
        let d = scry_out(&["digest", "--tls-verify=false", &r]);
        assert_eq!(d.stdout.trim(), sha(&raw.stdout_bytes), "{r}");
        let c = scry_out(&["config", "--tls-verify=false", &r]);
        let want = run(skopeo().args(["inspect", "--tls-verify=false", "--config", "--raw", &r]));
        want.assert_success();
        assert_eq!(c.stdout_bytes, want.stdout_bytes, "{r}");
    }
}

#[test]
fn blob_writes_the_verified_bytes_of_a_layer_or_the_config() {
    let (reg, fx) = shared_registry();
    let r = format!("docker://{}", fx.multilayer.tagged(reg, "latest"));
    let raw = scry_out(&["manifest", "--tls-verify=false", &r]);
    let m: serde_json::Value = serde_json::from_slice(&raw.stdout_bytes).unwrap();
    let mut digests: Vec<String> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect();
    digests.push(m["config"]["digest"].as_str().unwrap().to_string());
    for d in &digests {
        let out = scry_out(&["blob", "--tls-verify=false", &r, d]);
        assert_eq!(&sha(&out.stdout_bytes), d);
    }
    // From a dir: copy too (any transport).
    let tmp = tempfile::tempdir().unwrap();
    let dir = format!("dir:{}", tmp.path().join("img").display());
    scry_out(&["copy", "--src-tls-verify=false", &r, &dir]);
    let out = scry_out(&["blob", &dir, &digests[0]]);
    assert_eq!(sha(&out.stdout_bytes), digests[0]);
    // A digest the image does not name, and one that is not a digest.
    let other = sha(b"nothing");
    let out = run(scry().args(["blob", "--tls-verify=false", &r, &other]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains(&other), "{out}");
    let out = run(scry().args(["blob", "--tls-verify=false", &r, "sha256:../x"]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("sha256:../x"), "{out}");
}

#[test]
fn validate_checks_every_blob_and_names_the_first_bad_one() {
    let (reg, fx) = shared_registry();
    for name in [
        fx.small.tagged(reg, "latest"),
        fx.multiarch.tagged(reg, "latest"),
    ] {
        let r = format!("docker://{name}");
        let out = scry_out(&["validate", "--tls-verify=false", &r]);
        assert!(out.stdout.contains("bytes verified"), "{out}");
        assert!(
            out.stdout.lines().filter(|l| l.contains(" ok (")).count() >= 2,
            "{out}"
        );
    }
    // A dir: image with one layer changed: exit 1 naming it.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("img");
    let dir = format!("dir:{}", path.display());
    let r = format!("docker://{}", fx.multilayer.tagged(reg, "latest"));
    scry_out(&["copy", "--src-tls-verify=false", &r, &dir]);
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path.join("manifest.json")).unwrap()).unwrap();
    let bad = m["layers"][1]["digest"].as_str().unwrap().to_string();
    let file = path.join(bad.strip_prefix("sha256:").unwrap());
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let out = run(scry().args(["validate", &dir]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains(&bad), "{out}");
}

#[test]
fn tag_and_catalog_on_a_registry_of_their_own() {
    let reg = Registry::plain();
    let fx = Fixtures::push_all(&reg);
    let src = format!("docker://{}", fx.small.tagged(&reg, "latest"));
    let out = scry_out(&["tag", "--tls-verify=false", &src, "retagged"]);
    let digest = out.stdout.trim().to_string();
    let new = format!("docker://{}", fx.small.tagged(&reg, "retagged"));
    let inspected = run(skopeo().args(["inspect", "--tls-verify=false", &new]));
    inspected.assert_success();
    assert_eq!(inspected.json()["Digest"], digest.as_str());
    let tags = scry_out(&[
        "list-tags",
        "--tls-verify=false",
        &src.replace(":latest", ""),
    ]);
    assert!(tags.stdout.contains("\"retagged\""), "{tags}");
    // Not a registry image: refused.
    let out = run(scry().args(["tag", "dir:/tmp/x", "t"]));
    assert_eq!(out.code, Some(1), "{out}");

    let cat = scry_out(&["catalog", "--tls-verify=false", &reg.url()]);
    let v = cat.json();
    let repos: Vec<&str> = v["Repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for want in fx.repos() {
        assert!(repos.contains(&want), "{want} missing from {repos:?}");
    }
    let out = run(scry().args(["catalog", "a/b"]));
    assert_eq!(out.code, Some(1), "{out}");
}

/// Unpacks the tar `data` with tar(1) and reads the tree back.
fn untar(data: &[u8]) -> Rootfs {
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("fs.tar");
    std::fs::write(&archive, data).unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    run(std::process::Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&root))
    .assert_success();
    Rootfs::read(&root)
}

#[test]
fn export_writes_the_merged_rootfs_of_a_registry_or_local_image() {
    let (reg, fx) = shared_registry();
    let r = format!("docker://{}", fx.multilayer.tagged(reg, "latest"));
    let out = scry_out(&["export", "--tls-verify=false", &r]);
    // Overwrites, whiteouts and symlinks applied: exactly the predicted tree, which
    // the harness checks against umoci's unpacking of the same image.
    assert_eq!(untar(&out.stdout_bytes), fx.multilayer.rootfs);
    let listing = String::from_utf8_lossy(&out.stdout_bytes).to_string();
    assert!(!listing.contains(".wh."), "a whiteout entry was written");

    // -o writes the same stream to a file; from an OCI layout too.
    let tmp = tempfile::tempdir().unwrap();
    let layout = format!("oci:{}:t", tmp.path().join("layout").display());
    scry_out(&["copy", "--src-tls-verify=false", &r, &layout]);
    let file = tmp.path().join("out.tar");
    scry_out(&["export", &layout, "-o", file.to_str().unwrap()]);
    assert_eq!(std::fs::read(&file).unwrap(), out.stdout_bytes);
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 2, "temporary files left: {left:?}");

    // An index: the --override-* platform's image.
    let idx = format!("docker://{}", fx.multiarch.tagged(reg, "latest"));
    for p in &fx.multiarch.children {
        let mut cmd = scry();
        cmd.args(["--override-arch", &p.platform.architecture]);
        if let Some(v) = &p.platform.variant {
            cmd.args(["--override-variant", v]);
        }
        let out = run(cmd.args(["export", "--tls-verify=false", &idx]));
        out.assert_success();
        assert_eq!(untar(&out.stdout_bytes), p.rootfs, "{:?}", p.platform);
    }
}

#[test]
fn export_failures_name_the_image_and_leave_no_file() {
    let (reg, _) = shared_registry();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("out.tar");
    let missing = format!("docker://{}", reg.reference("no/such:image"));
    let out = run(scry()
        .args(["export", "--tls-verify=false", &missing, "-o"])
        .arg(&file));
    out.assert_code(2);
    assert!(out.stderr.contains("no/such"), "{}", out.stderr);
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}
