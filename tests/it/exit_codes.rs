//! Exit codes, with skopeo as the oracle: usage errors exit 1 (never clap's 2, which
//! scripts read as "image not found"), `--help` and `--version` exit 0, and 2 is only
//! for an image that is not there (registry MANIFEST_UNKNOWN / NAME_UNKNOWN on the
//! manifest, or a name missing from an existing OCI layout or OCI archive). A missing
//! path, a missing blob, a name missing from a docker-archive and an unknown repository
//! in `list-tags` all exit 1.

use crate::fake::{Action, FakeServer};
use crate::harness::command::scratch_root;
use crate::harness::{run, scry, shared_registry, skopeo, CmdOutput};

#[track_caller]
fn assert_no_panic(out: &CmdOutput) {
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
        "scry panicked: {out}"
    );
}

#[test]
fn usage_errors_exit_1_like_skopeo() {
    let cases: &[&[&str]] = &[
        &[],
        &["inspect"],
        &["login"],
        &["inspect", "docker://a/b", "docker://c/d"],
        &["--bogus", "inspect", "docker://a/b"],
        &["inspect", "--bogus", "docker://a/b"],
        &["inspect", "--tls-verify=maybe", "docker://a/b"],
        &["inspect", "--retry-times=many", "docker://a/b"],
        &["no-such-command"],
    ];
    for args in cases {
        let k = run(skopeo().args(*args));
        assert_eq!(k.code, Some(1), "the oracle disagrees: {k}");
        let s = run(scry().args(*args));
        assert_eq!(s.code, Some(1), "usage error must exit 1: {s}");
        assert!(s.stdout.is_empty(), "{s}");
        assert!(!s.stderr.trim().is_empty(), "no message: {s}");
        assert_no_panic(&s);
    }
}

#[test]
fn help_and_version_exit_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["inspect", "--help"],
        &["copy", "--help"],
        &["help"],
    ] {
        let k = run(skopeo().args(args));
        assert_eq!(k.code, Some(0), "the oracle disagrees: {k}");
        let s = run(scry().args(args));
        assert_eq!(s.code, Some(0), "{s}");
        assert!(s.stdout.contains("Usage"), "help goes to stdout: {s}");
    }
    let want = format!("scry version {}\n", env!("CARGO_PKG_VERSION"));
    for flag in ["-v", "--version"] {
        let k = run(skopeo().arg(flag));
        assert_eq!(k.code, Some(0), "{k}");
        assert!(k.stdout.starts_with("skopeo version "), "{k}");
        let s = run(scry().arg(flag));
        assert_eq!(s.code, Some(0), "{s}");
        assert_eq!(s.stdout, want, "{s}");
    }
}

/// Local transports: what is missing decides the code. skopeo 1.9.3 exits 1 for a name
/// missing from an OCI layout or archive (it wraps the error so its check never
/// matches); current skopeo exits 2 there, as scry does. Everywhere else 1.9.3 agrees.
#[test]
fn local_transports_exit_2_only_for_a_missing_image() {
    let (reg, _) = shared_registry();
    let dir = tempfile::tempdir_in(scratch_root()).unwrap();
    let d = dir.path().display().to_string();
    let src = reg.docker_ref("small:latest");
    for dest in [
        format!("oci:{d}/lay:t"),
        format!("oci-archive:{d}/o.tar:t"),
        format!("docker-archive:{d}/d.tar:a/b:c"),
        format!("dir:{d}/dir"),
    ] {
        run(skopeo().args([
            "--insecure-policy",
            "copy",
            "--src-tls-verify=false",
            &src,
            &dest,
        ]))
        .assert_success();
    }
    // (reference, scry's code, skopeo 1.9.3's code)
    let cases = [
        ("dir:/nonexistent".to_string(), 1, 1),
        ("oci:/nonexistent:tag".into(), 1, 1),
        ("oci-archive:/nonexistent.tar".into(), 1, 1),
        ("docker-archive:/nonexistent.tar".into(), 1, 1),
        (format!("oci:{d}/lay:nope"), 2, 1),
        (format!("oci-archive:{d}/o.tar:nope"), 2, 1),
        (format!("docker-archive:{d}/d.tar:a/b:nope"), 1, 1),
        (format!("oci:{d}/lay:t"), 0, 0),
        (format!("oci-archive:{d}/o.tar:t"), 0, 0),
        (format!("docker-archive:{d}/d.tar:a/b:c"), 0, 0),
        (format!("dir:{d}/dir"), 0, 0),
    ];
    let mut wrong = Vec::new();
    for (image, want, oracle) in &cases {
        let k = run(skopeo().args(["inspect", image]));
        assert_eq!(k.code, Some(*oracle), "the oracle changed: {k}");
        for sub in [&["inspect"][..], &["inspect", "--raw"]] {
            let s = run(scry().args(sub).arg(image));
            assert_no_panic(&s);
            if s.code != Some(*want) {
                wrong.push(format!("{sub:?} {image}: want {want}: {s}"));
            }
        }
        if *want == 2 {
            let s = run(scry().args(["copy", image, &format!("dir:{d}/out")]));
            if s.code != Some(2) {
                wrong.push(format!("copy {image}: want 2: {s}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

/// Registry: MANIFEST_UNKNOWN exits 2 for inspect, copy and delete.
#[test]
fn missing_manifest_exits_2_for_inspect_copy_and_delete() {
    let (reg, _) = shared_registry();
    let dir = tempfile::tempdir_in(scratch_root()).unwrap();
    let out = format!("dir:{}", dir.path().join("out").display());
    for image in [
        reg.docker_ref("small:no-such-tag"),
        reg.docker_ref("no-such-repo:latest"),
    ] {
        for args in [
            vec!["inspect", "--tls-verify=false", &image],
            vec!["copy", "--src-tls-verify=false", &image, &out],
            vec!["delete", "--tls-verify=false", &image],
        ] {
            let s = run(scry().args(&args));
            assert_eq!(s.code, Some(2), "{s}");
            assert_no_panic(&s);
        }
    }
}

/// A config or layer the registry does not have is a broken image, not a missing one.
#[test]
fn missing_blob_exits_1() {
    let config_digest = format!("sha256:{}", "1".repeat(64));
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":10}},"layers":[]}}"#
    );
    let srv = FakeServer::start(move |r, _| {
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        if r.path.ends_with("/manifests/1") {
            return Action::with(
                200,
                &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                manifest.clone().into_bytes(),
            );
        }
        Action::json(
            404,
            r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}"#,
        )
    });
    let image = format!("docker://{}/app:1", srv.host());
    for flags in [&["--config"][..], &["--no-tags"]] {
        let s = run(scry()
            .args(["inspect", "--tls-verify=false"])
            .args(flags)
            .arg(&image));
        assert_eq!(s.code, Some(1), "{s}");
        assert!(s.stderr.contains("blob unknown"), "{s}");
        assert_no_panic(&s);
    }
}
