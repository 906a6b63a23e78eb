//! `scry copy` between registries (and faults on the way), checked with skopeo and with
//! the registry's own answers.

use sha2::{Digest, Sha256};

use crate::fake::{Action, FakeServer};
use crate::harness::{run, scry, shared_registry, skopeo, Fixtures, Registry};

fn copy(args: &[&str]) -> crate::harness::CmdOutput {
    let mut full = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    full.extend_from_slice(args);
    run(scry().args(&full))
}

/// The raw manifest as skopeo reads it, with the registry's TLS and credential flags.
fn raw_manifest(reg: &Registry, name_ref: &str) -> Vec<u8> {
    let mut args: Vec<String> = vec!["inspect".into(), "--raw".into()];
    args.extend(reg.client_flags(""));
    args.push(reg.docker_ref(name_ref));
    run(skopeo().args(&args))
        .assert_success()
        .stdout_bytes
        .clone()
}

#[test]
fn registry_to_registry_keeps_manifest_bytes_and_skips_existing_blobs() {
    let (src, fx) = shared_registry();
    let dst = Registry::plain();
    let from = src.docker_ref("multilayer:latest");
    let to = dst.docker_ref("copied/multilayer:v1");
    let first = copy(&[&from, &to]);
    first.assert_success();
    assert!(
        first
            .stdout
            .contains("Writing manifest to image destination"),
        "{}",
        first.stdout
    );
    assert_eq!(
        raw_manifest(&dst, "copied/multilayer:v1"),
        fx.multilayer.image.manifest
    );
    // Every blob is in the destination with the right bytes.
    let client = dst.client();
    for l in &fx.multilayer.image.layers {
        let got = client
            .get_blob("copied/multilayer", &l.blob.digest)
            .expect("layer present");
        assert_eq!(
            format!("sha256:{}", hex::encode(Sha256::digest(&got))),
            l.blob.digest
        );
    }
    // Again: the destination's tag already names this manifest, so nothing is sent
    // and no blob is even asked about; progress still reports each blob skipped.
    let log_before = dst.log().len();
    let again = copy(&[&from, &to]);
    again.assert_success();
    assert_eq!(
        again.stdout.matches("skipped: already exists").count(),
        4,
        "{}",
        again.stdout
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let log = loop {
        let log = dst.log()[log_before..].to_string();
        // The access log line may trail the response a little.
        if log.contains("HEAD /v2/copied/multilayer/manifests/v1")
            || std::time::Instant::now() > deadline
        {
            break log;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        log.contains("HEAD /v2/copied/multilayer/manifests/v1"),
        "{log}"
    );
    // (Only scry's requests: the checks above read blobs too, and their lines may
    // land late.)
    assert!(
        !log.lines()
            .any(|l| l.contains("scry/") && (l.contains("/blobs/") || l.contains("\"PUT "))),
        "{log}"
    );
    // skopeo reads what scry wrote and copies it onward.
    let out = run(skopeo().args([
        "copy",
        "--src-tls-verify=false",
        &to,
        &format!("oci:{}/o:x", dst.dir().display()),
    ]));
    out.assert_success();
}

#[test]
fn digestfile_and_cross_repository_mount() {
    let (src, fx) = shared_registry();
    let dst = Registry::plain();
    fx.small.push(&dst);
    let file = dst.dir().join("digest.txt");
    let out = copy(&[
        "--digestfile",
        file.to_str().unwrap(),
        &dst.docker_ref("small:latest"),
        &dst.docker_ref("elsewhere/small:1"),
    ]);
    out.assert_success();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        fx.small.image.digest
    );
    // Same registry: layers are mounted, not sent again.
    assert!(out.stdout.contains("skipped"), "{}", out.stdout);
    let _ = src;
}

#[test]
fn all_images_of_an_index_and_a_sparse_selection() {
    let (src, fx) = shared_registry();
    let dst = Registry::plain();
    let from = src.docker_ref("multiarch:latest");
    copy(&["--all", &from, &dst.docker_ref("m/all:1")]).assert_success();
    assert_eq!(raw_manifest(&dst, "m/all:1"), fx.multiarch.index.manifest);
    for child in &fx.multiarch.index.children {
        assert_eq!(
            raw_manifest(&dst, &format!("m/all@{}", child.digest)),
            child.manifest
        );
    }

    copy(&[
        "--multi-arch",
        "linux/amd64,linux/arm64",
        &from,
        &dst.docker_ref("m/some:1"),
    ])
    .assert_success();
    let sparse: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&dst, "m/some:1")).unwrap();
    let archs: Vec<&str> = sparse["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(archs, ["amd64", "arm64"]);

    // Default: only this machine's image, stored as a plain manifest.
    copy(&[
        "--override-arch",
        "arm64",
        &from,
        &dst.docker_ref("m/one:1"),
    ])
    .assert_success();
    let one = raw_manifest(&dst, "m/one:1");
    let arm = fx
        .multiarch
        .index
        .children
        .iter()
        .find(|c| c.platform.architecture == "arm64")
        .unwrap();
    assert_eq!(one, arm.manifest);
}

#[test]
fn format_conversion_and_zstd_are_accepted_by_registry_and_skopeo() {
    let (src, _) = shared_registry();
    let dst = Registry::plain();
    copy(&[
        "--format",
        "v2s2",
        &src.docker_ref("small:latest"),
        &dst.docker_ref("conv/docker:1"),
    ])
    .assert_success();
    let m: serde_json::Value =
        serde_json::from_slice(&raw_manifest(&dst, "conv/docker:1")).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    copy(&[
        "--format",
        "oci",
        &dst.docker_ref("conv/docker:1"),
        &dst.docker_ref("conv/oci:1"),
    ])
    .assert_success();
    let o: serde_json::Value = serde_json::from_slice(&raw_manifest(&dst, "conv/oci:1")).unwrap();
    assert_eq!(o["mediaType"], "application/vnd.oci.image.manifest.v1+json");

    copy(&[
        "--dest-compress-format",
        "zstd",
        &src.docker_ref("small:latest"),
        &dst.docker_ref("conv/zstd:1"),
    ])
    .assert_success();
    let z: serde_json::Value = serde_json::from_slice(&raw_manifest(&dst, "conv/zstd:1")).unwrap();
    let layer = &z["layers"][0];
    assert_eq!(
        layer["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    let blob = dst
        .client()
        .get_blob("conv/zstd", layer["digest"].as_str().unwrap())
        .unwrap();
    assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    for name in ["conv/docker:1", "conv/oci:1", "conv/zstd:1"] {
        let out = run(skopeo().args([
            "copy",
            "--src-tls-verify=false",
            &dst.docker_ref(name),
            &format!(
                "dir:{}/{}",
                dst.dir().display(),
                name.replace([':', '/'], "_")
            ),
        ]));
        out.assert_success();
    }
}

#[test]
fn preserve_digests_with_conversion_is_refused_before_writing() {
    let (src, _) = shared_registry();
    let dst = Registry::plain();
    let out = copy(&[
        "--preserve-digests",
        "--format",
        "v2s2",
        &src.docker_ref("small:latest"),
        &dst.docker_ref("p/x:1"),
    ]);
    out.assert_code(1);
    assert!(out.stderr.contains("--preserve-digests"), "{}", out.stderr);
    assert!(dst.client().catalog().is_empty());
}

/// A destination named by digest takes only that manifest: a conversion is refused
/// before any blob is uploaded.
#[test]
fn a_digest_destination_refuses_a_changed_manifest_before_writing() {
    let (src, fx) = shared_registry();
    let dst = Registry::plain();
    let target = dst.docker_ref(&format!("d/x@{}", fx.small.digest));
    let source = src.docker_ref("small:latest");
    for flags in [
        &["--format", "v2s2"][..],
        &["--dest-compress-format", "zstd"][..],
    ] {
        let mut args = flags.to_vec();
        args.extend([source.as_str(), target.as_str()]);
        let out = copy(&args);
        out.assert_code(1);
        assert!(
            out.stderr.contains(&fx.small.digest) && out.stderr.contains("copy to a tag"),
            "{flags:?}: {}",
            out.stderr
        );
        assert!(
            dst.client().catalog().is_empty(),
            "{flags:?} wrote to the registry"
        );
    }
    // Unchanged, the copy by digest works.
    copy(&[&source, &target]).assert_success();
    assert_eq!(
        raw_manifest(&dst, &format!("d/x@{}", fx.small.digest)),
        fx.small.image.manifest
    );
}

#[test]
fn missing_source_exits_2_and_writes_nothing() {
    let (src, _) = shared_registry();
    let dst = Registry::plain();
    let out = copy(&[
        &src.docker_ref("small:no-such-tag"),
        &dst.docker_ref("x/y:1"),
    ]);
    out.assert_code(2);
    assert!(dst.client().catalog().is_empty());
}

/// A source registry whose layer bytes do not match the manifest's digest.
#[test]
fn corrupt_blob_from_a_registry_fails_naming_it_and_tags_nothing() {
    let fx = Fixtures::get();
    let img = fx.small.image.clone();
    let layer_digest = img.layers[0].blob.digest.clone();
    let (manifest, mt) = (img.manifest.clone(), img.media_type.clone());
    let config = img.config.clone();
    let srv = FakeServer::start(move |r, _| {
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        if r.path.contains("/manifests/") {
            return Action::with(200, &[("Content-Type", &mt)], manifest.clone());
        }
        if r.path.ends_with(&config.digest) {
            return Action::with(200, &[], config.data.clone());
        }
        // Right length, wrong bytes.
        let len = img.layers[0].blob.data.len();
        Action::with(200, &[], vec![b'x'; len])
    });
    let dst = Registry::plain();
    let out = copy(&[
        &format!("docker://{}/small:latest", srv.host()),
        &dst.docker_ref("bad/copy:1"),
    ]);
    out.assert_code(1);
    // scry's verifier or the registry's own check (whichever sees the end first) fails it.
    assert!(
        out.stderr.contains(&layer_digest)
            && (out.stderr.contains("digest mismatch") || out.stderr.contains("digest invalid")),
        "{}",
        out.stderr
    );
    assert!(dst.client().get_manifest("bad/copy", "1").is_none());
    assert!(!dst.client().blob_exists("bad/copy", &layer_digest));
}

#[test]
fn delete_removes_the_manifest() {
    let fx = Fixtures::get();
    let dst = Registry::plain();
    fx.small.push(&dst);
    let out = run(scry().args(["delete", "--tls-verify=false", &dst.docker_ref("small:1.0")]));
    out.assert_success();
    let after = run(scry().args([
        "inspect",
        "--tls-verify=false",
        &dst.docker_ref("small:1.0"),
    ]));
    after.assert_code(2);
    let missing = run(scry().args([
        "delete",
        "--tls-verify=false",
        &dst.docker_ref("small:nope"),
    ]));
    missing.assert_code(2);
}

/// With token auth, a copy inside one registry mounts blobs, asking for pull on the
/// source repository in the same token.
#[test]
fn token_registry_copy_mounts_with_both_scopes() {
    let reg = Registry::builder().token().start();
    let fx = Fixtures::get();
    fx.small.push(&reg);
    let ts = reg.token_server().expect("token server");
    ts.clear_requests();
    let mut args: Vec<String> = vec!["copy".into()];
    args.extend(reg.client_flags("src-"));
    args.extend(reg.client_flags("dest-"));
    args.push(reg.docker_ref("small:latest"));
    args.push(reg.docker_ref("team/small:1"));
    let out = run(scry().args(&args));
    out.assert_success();
    assert_eq!(
        out.stdout.matches("skipped: already exists").count(),
        2,
        "{}",
        out.stdout
    );
    let asked = ts.requests();
    assert!(
        asked
            .iter()
            .any(|r| r.scopes.iter().any(|s| s == "repository:small:pull")
                && r.scopes
                    .iter()
                    .any(|s| s.starts_with("repository:team/small:") && s.contains("push"))),
        "{:?}",
        asked.iter().map(|r| r.scopes.clone()).collect::<Vec<_>>()
    );
    assert_eq!(raw_manifest(&reg, "team/small:1"), fx.small.image.manifest);
}

/// `--policy` as skopeo applies it to a copy's source: a `reject` scope refuses the
/// copy (exit 1, nothing written), other images pass; `--insecure-policy` skips the
/// policy; a signature requirement is refused, not skipped; a missing file is named.
#[test]
fn trust_policy_rejects_as_skopeo_does() {
    let (src, _) = shared_registry();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, scope_reqs: &str| {
        let p = dir.path().join(name);
        let text = format!(
            r#"{{"default":[{{"type":"insecureAcceptAnything"}}],"transports":{{"docker":{{"{}/small":{scope_reqs}}}}}}}"#,
            src.url()
        );
        std::fs::write(&p, text).unwrap();
        p
    };
    let reject = write("reject.json", r#"[{"type":"reject"}]"#);
    let signed = write(
        "signed.json",
        r#"[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/nonexistent.gpg"}]"#,
    );
    let dest = |n: &str| format!("dir:{}", dir.path().join(n).display());
    for name in ["scry", "skopeo"] {
        let tool = || if name == "scry" { scry() } else { skopeo() };
        let copy_with = |policy: &std::path::Path, image: &str, to: &str| {
            run(tool()
                .arg("--policy")
                .arg(policy)
                .args(["copy", "--src-tls-verify=false"])
                .arg(src.docker_ref(image))
                .arg(dest(to)))
        };
        let out = copy_with(&reject, "small:latest", &format!("{name}-small"));
        out.assert_code(1);
        assert!(out.stderr.contains("rejected by policy"), "{name}: {out}");
        if name == "scry" {
            // (skopeo leaves the destination directory it made before asking.)
            assert!(!dir.path().join("scry-small").exists());
        }
        copy_with(&reject, "multilayer:latest", &format!("{name}-multi")).assert_success();
        run(tool()
            .args(["--insecure-policy", "--policy"])
            .arg(&reject)
            .args(["copy", "--src-tls-verify=false"])
            .arg(src.docker_ref("small:latest"))
            .arg(dest(&format!("{name}-insecure"))))
        .assert_success();
    }
    let out = run(scry()
        .arg("--policy")
        .arg(&signed)
        .args(["copy", "--src-tls-verify=false"])
        .arg(src.docker_ref("small:latest"))
        .arg(dest("signed")));
    out.assert_code(1);
    assert!(out.stderr.contains("does not verify signatures"), "{out}");
    let missing = dir.path().join("nope.json");
    let out = run(scry()
        .arg("--policy")
        .arg(&missing)
        .args(["copy", "--src-tls-verify=false"])
        .arg(src.docker_ref("small:latest"))
        .arg(dest("missing")));
    out.assert_code(1);
    assert!(out.stderr.contains("nope.json"), "{out}");
}

/// `scry copy` (no TLS or credential defaults) with `args`.
fn copy_plain(args: &[&str]) -> crate::harness::CmdOutput {
    let mut full = vec!["copy"];
    full.extend_from_slice(args);
    run(scry().args(&full))
}

/// Both sides' credential and TLS flags against an htpasswd registry behind a
/// self-signed certificate: each must be passed to its own side, and without them
/// the copy is refused.
#[test]
fn source_and_destination_credentials_and_tls_flags() {
    let reg = Registry::builder()
        .tls(crate::harness::Tls::SelfSigned)
        .htpasswd()
        .start();
    let fx = Fixtures::get();
    fx.small.push(&reg);
    let certs = reg.certs_dir().display().to_string();
    let creds = reg.creds();
    let (user, password) = (reg.username().to_string(), reg.password().to_string());
    let from = reg.docker_ref("small:latest");
    let dir = tempfile::tempdir().unwrap();
    let local = format!("dir:{}", dir.path().join("small").display());

    // Source side: --src-cert-dir + --src-creds.
    copy_plain(&[
        "--src-cert-dir",
        &certs,
        "--src-creds",
        &creds,
        &from,
        &local,
    ])
    .assert_success();
    assert_eq!(
        std::fs::read(dir.path().join("small/manifest.json")).unwrap(),
        fx.small.image.manifest
    );
    // Credentials given to the other side only do not help.
    let out = copy_plain(&[
        "--src-cert-dir",
        &certs,
        "--dest-creds",
        &creds,
        &from,
        &local,
    ]);
    out.assert_code(1);
    assert!(
        out.stderr.to_lowercase().contains("unauthorized") || out.stderr.contains("401"),
        "{out}"
    );
    // Without trust in the certificate: refused (verification is on by default).
    let out = copy_plain(&["--src-creds", &creds, &from, &local]);
    out.assert_code(1);
    assert!(out.stderr.to_lowercase().contains("certificate"), "{out}");
    // --src-tls-verify=false instead of the certificate; the short --screds alias.
    copy_plain(&["--src-tls-verify=false", "--screds", &creds, &from, &local]).assert_success();

    // Destination side, each way of giving credentials and trust.
    let cases: Vec<(&str, Vec<&str>)> = vec![
        (
            "d/creds",
            vec!["--dest-cert-dir", &certs, "--dest-creds", &creds],
        ),
        (
            "d/dcreds",
            vec!["--dest-tls-verify=false", "--dcreds", &creds],
        ),
        (
            "d/user",
            vec![
                "--dest-cert-dir",
                &certs,
                "--dest-username",
                &user,
                "--dest-password",
                &password,
            ],
        ),
    ];
    for (repo, flags) in cases {
        let to = reg.docker_ref(&format!("{repo}:t"));
        let mut args = flags.clone();
        args.extend([local.as_str(), to.as_str()]);
        copy_plain(&args).assert_success();
        assert_eq!(
            raw_manifest(&reg, &format!("{repo}:t")),
            fx.small.image.manifest,
            "{flags:?}"
        );
    }
    // Source credentials do not reach the destination.
    let to = reg.docker_ref("d/refused:t");
    let out = copy_plain(&[
        "--dest-cert-dir",
        &certs,
        "--src-creds",
        &creds,
        &local,
        &to,
    ]);
    out.assert_code(1);
    let out = copy_plain(&["--dest-cert-dir", &certs, "--dest-no-creds", &local, &to]);
    out.assert_code(1);
    assert!(reg.client().get_manifest("d/refused", "t").is_none());

    // Registry to itself, both sides' flags at once.
    copy_plain(&[
        "--src-cert-dir",
        &certs,
        "--src-creds",
        &creds,
        "--dest-cert-dir",
        &certs,
        "--dest-creds",
        &creds,
        &from,
        &reg.docker_ref("d/both:t"),
    ])
    .assert_success();
    assert_eq!(raw_manifest(&reg, "d/both:t"), fx.small.image.manifest);
}

/// `--multi-arch index-only` copies the index and none of its images: to `dir:` it
/// gives what skopeo gives; a registry refuses an index whose images are missing.
#[test]
fn multi_arch_index_only() {
    let (src, fx) = shared_registry();
    let from = src.docker_ref("multiarch:latest");
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("scry"), dir.path().join("skopeo"));
    copy(&[
        "--multi-arch",
        "index-only",
        &from,
        &format!("dir:{}", ours.display()),
    ])
    .assert_success();
    run(skopeo().args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--multi-arch",
        "index-only",
        &from,
        &format!("dir:{}", theirs.display()),
    ]))
    .assert_success();
    let names = |p: &std::path::Path| {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(&ours), ["manifest.json", "version"]);
    assert_eq!(names(&ours), names(&theirs));
    assert_eq!(
        std::fs::read(ours.join("manifest.json")).unwrap(),
        fx.multiarch.index.manifest
    );
    assert_eq!(
        std::fs::read(ours.join("manifest.json")).unwrap(),
        std::fs::read(theirs.join("manifest.json")).unwrap()
    );

    let dst = Registry::plain();
    let out = copy(&[
        "--multi-arch",
        "index-only",
        &from,
        &dst.docker_ref("m/index-only:1"),
    ]);
    out.assert_code(1);
    assert!(dst.client().get_manifest("m/index-only", "1").is_none());
}

/// Chunked uploads (PATCHes that name their ranges) against the real registry: a blob
/// sent in several chunks, an exact multiple of the chunk size, and an empty one, each
/// stored under the digest of its bytes.
#[test]
fn chunked_uploads_are_accepted_by_the_registry() {
    use scry::registry::UploadStart;
    use scry::transport::docker::{connect_with_key, DockerOptions};
    let reg = Registry::plain();
    let host = reg.url();
    let opts = DockerOptions {
        tls_verify: Some(false),
        ..DockerOptions::default()
    };
    let client = connect_with_key(&host, &host, &host, &opts).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for len in [3500usize, 3000, 0] {
        let data: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let want = format!("sha256:{}", hex::encode(Sha256::digest(&data)));
        let got = rt.block_on(async {
            let UploadStart::Location(loc) = client.start_upload("chunks/x", None).await.unwrap()
            else {
                panic!("no upload location")
            };
            let digest = want.clone();
            client
                .upload_chunked("chunks/x", &loc, &data[..], 1000, move || Ok(digest))
                .await
        });
        assert_eq!(got.unwrap(), want, "{len} bytes");
        let stored = rt
            .block_on(client.get_blob_bytes("chunks/x", &want, 1 << 20))
            .unwrap();
        assert!(stored[..] == data[..], "{len} bytes: stored bytes differ");
    }
}
