//! What `scry copy` prints when stdout is not a terminal (and with `-q`), and
//! `scry delete` on local transports.

use super::{
    oci_blob, oci_index, oci_ref_names, read_tree, scry_copy, skopeo_copy, Place, Transport,
};
use crate::harness::{run, scry, shared_registry, skopeo};

#[test]
fn progress_lines_name_every_blob_and_end_with_a_summary() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let image = &fx.multilayer.image;
    for (i, dst_t) in [Transport::Dir, Transport::Oci, Transport::Docker]
        .into_iter()
        .enumerate()
    {
        let dst = place.image(dst_t, &format!("progress-{i}"));
        let out = scry_copy(&[&shared.docker_ref("multilayer:latest"), &dst]);
        out.assert_success();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines.first(),
            Some(&"Getting image source signatures"),
            "{out}"
        );
        assert!(
            out.stdout
                .contains(&format!("Copying config {}", image.config.digest)),
            "{out}"
        );
        for d in image.layer_digests() {
            assert_eq!(
                lines
                    .iter()
                    .filter(|l| l.starts_with(&format!("Copying blob {d}")))
                    .count(),
                1,
                "blob {d}: {out}"
            );
        }
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.starts_with("Copying blob sha256:"))
                .count(),
            image.layers.len(),
            "{out}"
        );
        let writing = lines
            .iter()
            .position(|l| *l == "Writing manifest to image destination")
            .unwrap_or_else(|| panic!("no manifest line: {out}"));
        // The summary follows, counting what was copied.
        let summary = lines[writing + 1..]
            .iter()
            .find(|l| l.starts_with("Copied "))
            .unwrap_or_else(|| panic!("no summary line: {out}"));
        assert!(
            summary.contains(&format!("{} blobs", image.blobs().len())),
            "{summary}"
        );
        // No terminal: no carriage returns or escape sequences.
        assert!(
            !out.stdout.contains('\r') && !out.stdout.contains('\x1b'),
            "{:?}",
            out.stdout
        );
    }
}

#[test]
fn quiet_copy_prints_nothing() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    for (i, flag) in ["-q", "--quiet"].into_iter().enumerate() {
        let dst = place.image(Transport::Oci, &format!("quiet-{i}"));
        let out = scry_copy(&[flag, &shared.docker_ref("small:latest"), &dst]);
        out.assert_success();
        assert_eq!(out.stdout, "", "{out}");
        assert_eq!(out.stderr, "", "{out}");
        assert_eq!(
            oci_ref_names(&place.local_path(Transport::Oci, &format!("quiet-{i}"))),
            ["t"]
        );
    }
}

#[test]
fn delete_from_an_oci_layout_drops_the_entry_and_unreferenced_blobs() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let layout = place.path().join("layout");
    let name = |tag: &str| format!("oci:{}:{tag}", layout.display());
    let multiarch = shared.docker_ref("multiarch:latest");
    // Two children of the multi-arch fixture: they share the base layer.
    for (arch, variant, tag) in [("amd64", None, "amd"), ("arm64", Some("v8"), "arm")] {
        let mut cmd = skopeo();
        cmd.args(["--override-arch", arch]);
        if let Some(v) = variant {
            cmd.args(["--override-variant", v]);
        }
        cmd.args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            &multiarch,
            &name(tag),
        ]);
        run(&mut cmd).assert_success();
    }
    let amd = fx.multiarch.child("amd64", None);
    let arm = fx.multiarch.child("arm64", Some("v8"));
    let shared_layer = &amd.layers[0].blob.digest;
    assert_eq!(shared_layer, &arm.layers[0].blob.digest, "fixture premise");

    let out = run(scry().args(["delete", &name("amd")]));
    out.assert_success();
    assert_eq!(oci_ref_names(&layout), ["arm"], "{}", oci_index(&layout));
    let blob_exists = |d: &str| {
        layout
            .join("blobs/sha256")
            .join(d.strip_prefix("sha256:").unwrap())
            .exists()
    };
    for gone in [&amd.digest, &amd.config.digest, &amd.layers[1].blob.digest] {
        assert!(!blob_exists(gone), "{gone} is still in the layout");
    }
    for kept in std::iter::once(&arm.digest).chain(arm.blobs().iter().map(|b| &b.digest)) {
        assert!(
            oci_blob(&layout, kept).len() as u64 > 0,
            "{kept} was removed"
        );
    }
    // The remaining image is intact for skopeo and scry.
    run(skopeo().args(["inspect", &name("arm")])).assert_success();
    let (dir, _) = place.dir("after-delete");
    scry_copy(&[&name("arm"), &dir]).assert_success();
    // The deleted one is gone: not found.
    run(scry().args(["inspect", &name("amd")])).assert_code(2);
}

#[test]
fn delete_from_a_dir_is_not_supported() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    let (dir, path) = place.dir("keep");
    skopeo_copy(&[&shared.docker_ref("small:latest"), &dir]).assert_success();
    let before = read_tree(&path);
    let out = run(scry().args(["delete", &dir]));
    out.assert_code(1);
    assert!(out.stderr.contains("not supported"), "{out}");
    assert!(out.stderr.contains("dir"), "{out}");
    assert!(read_tree(&path) == before, "{dir} changed");
}
