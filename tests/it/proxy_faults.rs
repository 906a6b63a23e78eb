//! Commands through the fault proxy in front of the real registry: a body cut off is
//! resumed with a `Range` request from where it stopped; one cut off every time fails
//! naming the blob, how far it got and why; a flipped byte fails the copy and leaves
//! nothing that looks complete; a TLS probe of a plain-HTTP registry is not retried.

use crate::harness::faultproxy::{Fault, FaultProxy, Rule};
use crate::harness::{run, scry, Registry};
use crate::mount_tests::fakereg::RawImage;

pub(crate) const LAYER: usize = 6 << 20;

/// `big:latest` (one 6 MiB layer) on a real registry, and a proxy in front of it.
pub(crate) fn behind_proxy() -> (Registry, FaultProxy, RawImage) {
    let reg = Registry::plain();
    let image = RawImage::new(&[LAYER]);
    image.push(&reg.client(), "big", "latest");
    let proxy = FaultProxy::start(&reg.url());
    (reg, proxy, image)
}

fn copy_to_dir(proxy: &FaultProxy, out: &std::path::Path) -> crate::harness::CmdOutput {
    run(scry().args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/big:latest", proxy.host()),
        &format!("dir:{}", out.display()),
    ]))
}

fn sha256_file(p: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "sha256:{}",
        hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
    )
}

/// Every blob of the `dir:` image at `out` hashes to its name, and the manifest names
/// them. (The fake layers are not gzip, so the copy compresses them: their digests
/// differ from the registry's.)
#[track_caller]
fn assert_blobs_verify(out: &std::path::Path) {
    let manifest = std::fs::read_to_string(out.join("manifest.json")).unwrap();
    let mut blobs = 0;
    for e in std::fs::read_dir(out).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.len() == 64 {
            let digest = format!("sha256:{name}");
            assert_eq!(sha256_file(&out.join(&name)), digest);
            assert!(manifest.contains(&digest), "{manifest}");
            blobs += 1;
        }
    }
    assert_eq!(blobs, 2, "config and layer");
}

#[test]
fn a_body_cut_off_once_is_resumed_from_where_it_stopped() {
    let (_reg, proxy, image) = behind_proxy();
    let layer = &image.layer_digests[0];
    proxy.add(
        Rule::on(layer, Fault::CutAfter(1 << 20))
            .method("GET")
            .times(1),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img");
    let res = copy_to_dir(&proxy, &out);
    res.assert_success();
    assert_eq!(proxy.faults(), [Fault::CutAfter(1 << 20)]);
    let ranges: Vec<_> = proxy
        .requests()
        .into_iter()
        .filter(|r| r.path.contains(layer.as_str()))
        .map(|r| r.range)
        .collect();
    assert_eq!(
        ranges,
        [None, Some(format!("bytes={}-{}", 1 << 20, LAYER - 1))]
    );
    assert_blobs_verify(&out);
}

#[test]
fn a_body_cut_off_every_time_fails_naming_the_blob_and_how_far_it_got() {
    let (_reg, proxy, image) = behind_proxy();
    let layer = &image.layer_digests[0];
    proxy.add(Rule::on(layer, Fault::CutAfter(1000)).method("GET"));
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img");
    let res = copy_to_dir(&proxy, &out);
    assert_eq!(res.code, Some(1), "{res}");
    let err = &res.stderr;
    assert!(err.contains(layer.as_str()), "{err}");
    assert!(err.contains(&format!("of {LAYER} bytes")), "{err}");
    // The cause, not just "error decoding response body".
    assert!(
        err.contains("end of file") || err.contains("ended early") || err.contains("closed"),
        "{err}"
    );
    // Bounded: a fixed number of resumed requests, then the failure.
    let gets = proxy.count(layer);
    assert!((2..=40).contains(&gets), "{gets} requests");
    assert!(!out.join("manifest.json").exists(), "looks complete");
}

#[test]
fn a_flipped_byte_fails_the_copy_and_leaves_nothing_that_looks_complete() {
    let (_reg, proxy, image) = behind_proxy();
    let layer = &image.layer_digests[0];
    proxy.add(
        Rule::on(layer, Fault::FlipByte(4321))
            .method("GET")
            .times(1),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("img");
    let res = copy_to_dir(&proxy, &out);
    assert_eq!(res.code, Some(1), "{res}");
    assert!(res.stderr.contains("digest"), "{res}");
    assert!(res.stderr.contains(layer.as_str()), "{res}");
    assert!(!out.join("manifest.json").exists(), "looks complete");
    // Run again with the registry's bytes right: it completes.
    copy_to_dir(&proxy, &out).assert_success();
    assert_blobs_verify(&out);
}

#[test]
fn the_tls_probe_of_a_plain_http_registry_is_not_retried() {
    let (reg, proxy, _image) = behind_proxy();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    copy_to_dir(&proxy, &src).assert_success();
    let res = run(scry().args([
        "--debug",
        "copy",
        "--retry-times=3",
        "--dest-tls-verify=false",
        &format!("dir:{}", src.display()),
        &format!("docker://{}/pushed:1", reg.url()),
    ]));
    res.assert_success();
    assert!(
        !res.stderr.contains("retrying in"),
        "a TLS handshake answered in plain HTTP was retried: {}",
        res.stderr
    );
}

/// What a destination shows after a failed copy: whether it looks complete.
fn looks_complete(dest: &str, dir: &std::path::Path, reg: &Registry) -> bool {
    match dest.split_once(':').map(|(t, _)| t) {
        Some("oci") => std::fs::read_to_string(dir.join("layout/index.json"))
            .is_ok_and(|i| i.contains("\"t1\"")),
        Some("oci-archive") => dir.join("img.tar").exists(),
        Some("docker-archive") => dir.join("img-d.tar").exists(),
        Some("docker") => {
            let out = run(crate::harness::skopeo().args([
                "inspect",
                "--tls-verify=false",
                &format!("docker://{}/copied:t1", reg.url()),
            ]));
            out.success()
        }
        _ => unreachable!("{dest}"),
    }
}

#[test]
fn a_flipped_byte_reaches_no_destination_and_a_rerun_completes() {
    let (reg, proxy, image) = behind_proxy();
    let layer = &image.layer_digests[0];
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let dests = [
        format!("oci:{}:t1", d.join("layout").display()),
        format!("oci-archive:{}:t1", d.join("img.tar").display()),
        format!("docker-archive:{}:copied:t1", d.join("img-d.tar").display()),
        format!("docker://{}/copied:t1", reg.url()),
    ];
    for dest in &dests {
        let before = proxy.faults().len();
        proxy.clear();
        proxy.add(Rule::on(layer, Fault::FlipByte(777)).method("GET").times(1));
        let res = run(scry().args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{}/big:latest", proxy.host()),
            dest,
        ]));
        assert_eq!(res.code, Some(1), "{dest}: {res}");
        assert!(res.stderr.contains("digest"), "{dest}: {res}");
        assert_eq!(proxy.faults().len(), before + 1, "{dest}");
        assert!(
            !looks_complete(dest, d, &reg),
            "{dest} looks complete after a failure"
        );
        run(scry().args([
            "copy",
            "--src-tls-verify=false",
            "--dest-tls-verify=false",
            &format!("docker://{}/big:latest", proxy.host()),
            dest,
        ]))
        .assert_success();
        assert!(looks_complete(dest, d, &reg), "{dest}");
    }
}

#[test]
fn server_error_bursts_are_retried_with_retry_times_only() {
    let (_reg, proxy, image) = behind_proxy();
    let layer = &image.layer_digests[0];
    let tmp = tempfile::tempdir().unwrap();
    for (code, flags, ok) in [
        (503, vec!["--retry-times=3", "--retry-delay=10ms"], true),
        (502, vec!["--retry-times=3", "--retry-delay=10ms"], true),
        (500, vec![], false),
    ] {
        proxy.clear();
        proxy.add(Rule::on(layer, Fault::Status(code)).method("GET").times(2));
        let out = tmp.path().join(format!("img-{code}"));
        let mut args = vec!["copy".to_string(), "--src-tls-verify=false".to_string()];
        args.extend(flags.iter().map(|s| s.to_string()));
        args.push(format!("docker://{}/big:latest", proxy.host()));
        args.push(format!("dir:{}", out.display()));
        let res = run(scry().args(&args));
        assert_eq!(res.success(), ok, "{code} {flags:?}: {res}");
        if ok {
            assert_blobs_verify(&out);
        } else {
            assert!(res.stderr.contains(&code.to_string()), "{res}");
            assert!(!out.join("manifest.json").exists());
        }
    }
}

#[test]
fn inspect_and_sync_through_faults() {
    let (_reg, proxy, image) = behind_proxy();
    // A flipped config: inspect refuses it, naming the digest.
    let config = image.config_digest.clone();
    proxy.add(Rule::on(&config, Fault::FlipByte(3)).method("GET").times(1));
    let res = run(scry().args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/big:latest", proxy.host()),
    ]));
    assert_eq!(res.code, Some(1), "{res}");
    assert!(res.stderr.contains(&config), "{res}");
    // sync with a layer body cut off once: resumed, the image lands whole.
    let before = proxy.faults().len();
    proxy.clear();
    proxy.add(
        Rule::on(&image.layer_digests[0], Fault::CutAfter(100_000))
            .method("GET")
            .times(1),
    );
    let tmp = tempfile::tempdir().unwrap();
    let res = run(scry().args([
        "sync",
        "--src",
        "docker",
        "--dest",
        "dir",
        "--src-tls-verify=false",
        &format!("{}/big", proxy.host()),
        &tmp.path().display().to_string(),
    ]));
    res.assert_success();
    assert_eq!(proxy.faults().len(), before + 1);
    assert_blobs_verify(&tmp.path().join("big:latest"));
}

#[test]
fn a_wrong_content_length_never_yields_unverified_bytes() {
    let (_reg, proxy, image) = behind_proxy();
    let layer = &image.layer_digests[0];
    let tmp = tempfile::tempdir().unwrap();
    // Announcing 1000 bytes more than sent (the body ends early: resumed), and 1000
    // fewer (the body looks complete but is short: its digest fails).
    for (delta, ok) in [(1000i64, true), (-1000, false)] {
        proxy.clear();
        proxy.add(
            Rule::on(layer, Fault::WrongLength(delta))
                .method("GET")
                .times(1),
        );
        let out = tmp.path().join(format!("img{delta}"));
        let res = copy_to_dir(&proxy, &out);
        assert_eq!(res.success(), ok, "Content-Length off by {delta}: {res}");
        if ok {
            assert_blobs_verify(&out);
        } else {
            assert!(res.stderr.contains(layer.as_str()), "{res}");
            assert!(!out.join("manifest.json").exists());
        }
    }
}
