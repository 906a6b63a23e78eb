//! `scry manifest-digest` against skopeo: every fixture manifest and index, and a
//! signed schema1 manifest (whose digest excludes the signatures).

use sha2::{Digest, Sha256};

use crate::harness::{run, scry, shared_registry, skopeo, CmdOutput};

fn digest_of(tool: std::process::Command, file: &std::path::Path) -> CmdOutput {
    let mut tool = tool;
    run(tool.arg("manifest-digest").arg(file))
}

fn sha256(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

#[test]
fn manifest_digest_of_fixtures_matches_skopeo() {
    let (_, f) = shared_registry();
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<(&str, &[u8], &str)> = vec![
        ("small", &f.small.manifest, &f.small.digest),
        ("multilayer", &f.multilayer.manifest, &f.multilayer.digest),
        ("docker", &f.docker.manifest, &f.docker.digest),
        ("multiarch", &f.multiarch.manifest, &f.multiarch.digest),
        ("dockerlist", &f.dockerlist.manifest, &f.dockerlist.digest),
    ];
    for (name, bytes, digest) in all {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, bytes).unwrap();
        let s = digest_of(scry(), &path);
        let k = digest_of(skopeo(), &path);
        assert_eq!(k.assert_success().stdout, format!("{digest}\n"));
        assert_eq!(s.assert_success().stdout, k.stdout, "{name}");
    }
}

#[test]
fn manifest_digest_of_signed_schema1_matches_skopeo() {
    let (reg, _) = shared_registry();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("s1");
    run(skopeo()
        .args(["copy", "--format", "v2s1"])
        .args(reg.client_flags("src-"))
        .arg(reg.docker_ref("small:latest"))
        .arg(format!("dir:{}", dest.display())))
    .assert_success();
    let path = dest.join("manifest.json");
    let bytes = std::fs::read(&path).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["schemaVersion"], 1);
    assert!(
        v["signatures"].as_array().is_some_and(|s| !s.is_empty()),
        "not signed"
    );

    let k = digest_of(skopeo(), &path);
    k.assert_success();
    // The digest covers the payload without the signatures, so not the file's bytes.
    assert_ne!(k.stdout.trim(), sha256(&bytes));
    let s = digest_of(scry(), &path);
    assert_eq!(s.assert_success().stdout, k.stdout);
}

#[test]
fn manifest_digest_of_missing_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.json");
    let s = digest_of(scry(), &path);
    assert_eq!(s.code, Some(1), "{s}");
    assert!(s.stderr.contains("absent.json"), "{s}");
    assert!(!digest_of(skopeo(), &path).success());
}

/// skopeo digests bytes it cannot parse as a manifest as plain sha256 of the file.
#[test]
fn manifest_digest_of_non_manifest_json_matches_skopeo() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("object.json", &b"{\"hello\": \"world\"}\n"[..]),
        ("array.json", b"[1, 2, 3]"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let k = digest_of(skopeo(), &path);
        assert_eq!(k.assert_success().stdout, format!("{}\n", sha256(bytes)));
        let s = digest_of(scry(), &path);
        assert_eq!(s.assert_success().stdout, k.stdout, "{name}");
    }
}
