//! Tools reading the mount as an OCI image layout: `skopeo copy oci:…` gives what a
//! direct `skopeo copy docker://…` gives, and `umoci unpack` yields the fixture's root
//! filesystem — for tag directories and for the platform directories of an index, and
//! for Docker-format images, whose layout names their OCI form.
//!
//! The registry directory `127.0.0.1:PORT` has a `:`, which `oci:PATH:TAG` cannot
//! parse, so every layout is reached through a symlink beside the mount.

use std::path::Path;

use super::{tool_on, Mount};
use crate::copy_matrix::{assert_same_rootfs, unpacked_rootfs};
use crate::harness::image::Image;
use crate::harness::{run, shared_registry, skopeo};

/// `skopeo copy` (quiet) `from` `to`, which must succeed.
#[track_caller]
fn skopeo_copy(extra: &[&str], from: &str, to: &str) {
    let mut args = vec!["copy", "-q"];
    args.extend_from_slice(extra);
    args.extend([from, to]);
    run(skopeo().args(&args)).assert_success();
}

/// `diff -r a b` must find no difference.
#[track_caller]
fn assert_no_diff(a: &Path, b: &Path) {
    let out = tool_on("diff", &["-r"], &[a, b]);
    assert!(out.success(), "the trees differ: {out}");
}

#[test]
fn skopeo_copies_from_the_mount_what_it_copies_from_the_registry() {
    let (reg, _) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    let out = m.scratch();
    for repo in ["small", "multilayer"] {
        let link = m.link(&format!("{host}/{repo}/latest"), repo);
        let (a, b) = (
            out.join(format!("{repo}-mount")),
            out.join(format!("{repo}-reg")),
        );
        skopeo_copy(
            &[],
            &format!("oci:{}:latest", link.display()),
            &format!("dir:{}", a.display()),
        );
        skopeo_copy(
            &["--src-tls-verify=false"],
            &reg.docker_ref(&format!("{repo}:latest")),
            &format!("dir:{}", b.display()),
        );
        assert_no_diff(&a, &b);
    }
    // An index's tag directory is a layout of the whole index.
    let link = m.link(&format!("{host}/multiarch/latest"), "multiarch-all");
    let (a, b) = (out.join("all-mount"), out.join("all-reg"));
    skopeo_copy(
        &["--all"],
        &format!("oci:{}:latest", link.display()),
        &format!("dir:{}", a.display()),
    );
    skopeo_copy(
        &["--all", "--src-tls-verify=false"],
        &reg.docker_ref("multiarch:latest"),
        &format!("dir:{}", b.display()),
    );
    assert_no_diff(&a, &b);
    // A platform directory of an index is a layout of that platform's image.
    for (dir, arch, variant) in [
        ("linux-arm64-v8", "arm64", "v8"),
        ("linux-arm-v7", "arm", "v7"),
    ] {
        let link = m.link(&format!("{host}/multiarch/latest/{dir}"), dir);
        let (a, b) = (
            out.join(format!("{dir}-mount")),
            out.join(format!("{dir}-reg")),
        );
        skopeo_copy(
            &[],
            &format!("oci:{}", link.display()),
            &format!("dir:{}", a.display()),
        );
        skopeo_copy(
            &[
                "--src-tls-verify=false",
                "--override-arch",
                arch,
                "--override-variant",
                variant,
            ],
            &reg.docker_ref("multiarch:latest"),
            &format!("dir:{}", b.display()),
        );
        assert_no_diff(&a, &b);
    }
    m.unmount();
}

/// A Docker schema 2 image (a tag, and a platform of a Docker manifest list) read from
/// the mount by tag is its OCI form: skopeo copies it by tag, and the copy holds the
/// registry's config and layer blobs, byte for byte, under an OCI manifest naming them.
#[test]
fn skopeo_copies_docker_images_from_the_mount_in_their_oci_form() {
    let (reg, _) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    let out = m.scratch();
    let cases = [
        ("docker/latest", "docker:latest", vec![]),
        (
            "dockerlist/latest/linux-arm64-v8",
            "dockerlist:latest",
            vec!["--override-arch", "arm64", "--override-variant", "v8"],
        ),
    ];
    for (i, (rel, image, overrides)) in cases.into_iter().enumerate() {
        let link = m.link(&format!("{host}/{rel}"), &format!("docker-{i}"));
        let (a, b) = (
            out.join(format!("d{i}-mount")),
            out.join(format!("d{i}-reg")),
        );
        let tagged = if rel.starts_with("docker/") {
            format!("oci:{}:latest", link.display())
        } else {
            format!("oci:{}", link.display())
        };
        skopeo_copy(&[], &tagged, &format!("dir:{}", a.display()));
        let mut flags = vec!["--src-tls-verify=false"];
        flags.extend(overrides);
        skopeo_copy(
            &flags,
            &reg.docker_ref(image),
            &format!("dir:{}", b.display()),
        );
        let manifest = |d: &Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(d.join("manifest.json")).unwrap()).unwrap()
        };
        let (ma, mb) = (manifest(&a), manifest(&b));
        assert_eq!(
            ma["mediaType"], "application/vnd.oci.image.manifest.v1+json",
            "{rel}"
        );
        assert_eq!(ma["config"]["digest"], mb["config"]["digest"], "{rel}");
        let digests = |m: &serde_json::Value| -> Vec<String> {
            m["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(digests(&ma), digests(&mb), "{rel}");
        for d in digests(&mb)
            .iter()
            .chain([mb["config"]["digest"].as_str().unwrap().to_string()].iter())
        {
            let hex = d.trim_start_matches("sha256:");
            assert_eq!(
                std::fs::read(a.join(hex)).unwrap(),
                std::fs::read(b.join(hex)).unwrap(),
                "{rel}: blob {d}"
            );
        }
    }
    m.unmount();
}

/// `umoci unpack --rootless --image LAYOUT[:TAG] BUNDLE`, which must succeed, and the
/// unpacked tree.
#[track_caller]
fn umoci_unpack(image: &str, bundle: &Path) -> crate::harness::image::Rootfs {
    let out = tool_on(
        "umoci",
        &["unpack", "--rootless", "--image", image],
        &[bundle],
    );
    assert!(out.success(), "umoci unpack failed: {out}");
    unpacked_rootfs(&bundle.join("rootfs"))
}

#[test]
fn umoci_unpacks_the_mount_to_the_fixture_rootfs() {
    let (reg, fx) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    let out = m.scratch();
    let cases: [(&str, &str, &Image); 5] = [
        ("small/latest", "latest", &fx.small.image),
        ("multilayer/latest", "latest", &fx.multilayer.image),
        (
            "multiarch/latest/linux-arm64-v8",
            "",
            fx.multiarch.child("arm64", Some("v8")),
        ),
        // Docker schema 2, through its OCI form.
        ("docker/latest", "latest", &fx.docker.image),
        (
            "dockerlist/latest/linux-arm64-v8",
            "",
            fx.dockerlist.child("arm64", Some("v8")),
        ),
    ];
    for (i, (rel, tag, image)) in cases.into_iter().enumerate() {
        let link = m.link(&format!("{host}/{rel}"), &format!("layout-{i}"));
        let name = if tag.is_empty() {
            link.display().to_string()
        } else {
            format!("{}:{tag}", link.display())
        };
        let got = umoci_unpack(&name, &out.join(format!("bundle-{i}")));
        assert_same_rootfs(&got, &image.rootfs, &format!("umoci unpack of {rel}"));
    }
    m.unmount();
}

/// `cp -r` of a tag directory gives a self-contained OCI layout (the layer symlinks
/// are relative) that skopeo reads like the registry.
#[test]
fn a_tag_directory_copied_with_cp_is_a_usable_layout() {
    let (reg, fx) = shared_registry();
    let m = Mount::start(&["--tls-verify=false"]);
    let copy = m.scratch().join("copied");
    let out = tool_on(
        "cp",
        &["-r"],
        &[&m.path(&format!("{}/multilayer/latest", reg.url())), &copy],
    );
    assert!(out.success(), "cp -r failed: {out}");
    let got = run(skopeo().args(["inspect", &format!("oci:{}:latest", copy.display())]));
    got.assert_success();
    assert_eq!(got.json()["Digest"], fx.multilayer.digest.as_str());
    let bundle = m.scratch().join("bundle");
    let rootfs = umoci_unpack(&format!("{}:latest", copy.display()), &bundle);
    assert_same_rootfs(
        &rootfs,
        &fx.multilayer.rootfs,
        "umoci unpack of a cp -r copy",
    );
    m.unmount();
}

/// `HOST_PORT` at the root names `HOST:PORT`: skopeo and umoci reach a tag directory by
/// its absolute path in the mount, no symlink of one's own needed.
#[test]
fn the_colon_free_alias_gives_absolute_paths_skopeo_and_umoci_can_parse() {
    let (reg, fx) = shared_registry();
    let alias = reg.url().replace(':', "_");
    let m = Mount::start(&["--tls-verify=false"]);
    let out = m.scratch();
    let layout = m.path(&format!("{alias}/small/latest"));
    assert!(!layout.display().to_string().contains(':'));
    let (a, b) = (out.join("alias-mount"), out.join("alias-reg"));
    skopeo_copy(
        &[],
        &format!("oci:{}:latest", layout.display()),
        &format!("dir:{}", a.display()),
    );
    skopeo_copy(
        &["--src-tls-verify=false"],
        &reg.docker_ref("small:latest"),
        &format!("dir:{}", b.display()),
    );
    assert_no_diff(&a, &b);
    let got = umoci_unpack(
        &format!("{}:latest", layout.display()),
        &out.join("alias-bundle"),
    );
    assert_same_rootfs(
        &got,
        &fx.small.image.rootfs,
        "umoci unpack through the alias",
    );
    m.unmount();
}
