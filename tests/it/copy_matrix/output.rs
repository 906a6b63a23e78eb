//! What `scry copy` prints when stdout is not a terminal (and with `-q`), and
//! `scry delete` on local transports.

use super::{oci_ref_names, read_tree, scry_copy, skopeo_copy, Place, Transport};
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
        // skopeo's order: the layers, then the config, then the manifest and the
        // signatures (stored even when there are none).
        let config = lines
            .iter()
            .position(|l| l.starts_with("Copying config "))
            .unwrap();
        let last_blob = lines
            .iter()
            .rposition(|l| l.starts_with("Copying blob "))
            .unwrap();
        assert!(last_blob < config && config < writing, "{out}");
        assert_eq!(lines.get(writing + 1), Some(&"Storing signatures"), "{out}");
        // The summary ends it, counting what was copied.
        assert_eq!(lines.len(), writing + 3, "{out}");
        let summary = lines[writing + 2];
        assert!(summary.starts_with("Copied "), "{summary}");
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

/// Lines as compared with skopeo's: scry's summary line dropped, the "skipped"
/// note scry adds to a blob that is already there dropped, and each run of blob
/// lines sorted (skopeo may announce blobs copied at once in any order).
pub(super) fn comparable(stdout: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut run: Vec<String> = Vec::new();
    for l in stdout.lines().filter(|l| !l.starts_with("Copied ")) {
        if l.starts_with("Copying blob ") {
            run.push(l.trim_end_matches(" skipped: already exists").to_string());
            continue;
        }
        run.sort();
        out.append(&mut run);
        out.push(l.trim_end_matches(" skipped: already exists").to_string());
    }
    run.sort();
    out.append(&mut run);
    out
}

/// `scry copy` prints skopeo 1.9.3's lines, in its order, for one image and for a
/// whole list, to and from a registry.
#[test]
fn progress_lines_are_skopeos() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    let cases: Vec<(Vec<&str>, Transport, Transport)> = vec![
        (vec![], Transport::Docker, Transport::Dir),
        (vec![], Transport::Dir, Transport::Docker),
        (vec!["--all"], Transport::Docker, Transport::Dir),
        (vec!["--all"], Transport::Dir, Transport::Docker),
        (
            vec!["--multi-arch", "index-only"],
            Transport::Docker,
            Transport::Dir,
        ),
        (
            vec!["--remove-signatures"],
            Transport::Docker,
            Transport::Oci,
        ),
    ];
    // A dir: copy of the multi-arch image as a source.
    let (src_dir, _) = place.dir("source");
    skopeo_copy(&["--all", &shared.docker_ref("multiarch:latest"), &src_dir]).assert_success();
    for (i, (flags, from, to)) in cases.into_iter().enumerate() {
        let src = match from {
            Transport::Docker => shared.docker_ref("multiarch:latest"),
            _ => src_dir.clone(),
        };
        let out_for = |tool: &str| place.image(to, &format!("lines-{i}-{tool}"));
        let (ours, theirs) = (out_for("scry"), out_for("skopeo"));
        let mut args = flags.clone();
        args.extend([src.as_str(), theirs.as_str()]);
        let mut full = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
        full.extend_from_slice(&args);
        let skopeo_out = run(skopeo().args(&full));
        skopeo_out.assert_success();
        let mut args = flags.clone();
        args.extend([src.as_str(), ours.as_str()]);
        let scry_out = scry_copy(&args);
        scry_out.assert_success();
        assert_eq!(
            comparable(&scry_out.stdout),
            comparable(&skopeo_out.stdout),
            "{flags:?} {src} -> {to:?}\n--- scry ---\n{}--- skopeo ---\n{}",
            scry_out.stdout,
            skopeo_out.stdout
        );
        assert!(
            scry_out
                .stdout
                .lines()
                .last()
                .unwrap()
                .starts_with("Copied "),
            "{scry_out}"
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

/// The blob files of an OCI layout (digests), sorted.
fn layout_blobs(layout: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = read_tree(&layout.join("blobs/sha256"))
        .into_keys()
        .map(|hex| format!("sha256:{hex}"))
        .collect();
    v.sort();
    v
}

#[test]
fn delete_from_an_oci_layout_drops_the_entry_and_unreferenced_blobs() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let layout = place.path().join("layout");
    let name = |tag: &str| format!("oci:{}:{tag}", layout.display());
    let multiarch = shared.docker_ref("multiarch:latest");
    // The whole index, two of its children on their own (all children share the
    // base layer), and one image under two tags.
    skopeo_copy(&["--all", &multiarch, &name("all")]).assert_success();
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
    let small = shared.docker_ref("small:latest");
    for tag in ["s1", "s2"] {
        skopeo_copy(&[&small, &name(tag)]).assert_success();
    }
    let index = &fx.multiarch.index;
    let amd = index.child("amd64", None);
    let arm = index.child("arm64", Some("v8"));
    assert_eq!(
        amd.layers[0].blob.digest, arm.layers[0].blob.digest,
        "fixture premise: shared base layer"
    );
    let digests_of = |images: &[&crate::harness::Image]| -> Vec<String> {
        images
            .iter()
            .flat_map(|i| {
                std::iter::once(i.digest.clone())
                    .chain(i.blobs().iter().map(|b| b.digest.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let expect = |mut v: Vec<String>| {
        v.sort();
        v.dedup();
        v
    };

    // The premise: the layout holds exactly these images' blobs and the index.
    let mut before = digests_of(&index.children.iter().collect::<Vec<_>>());
    before.extend(digests_of(&[&fx.small.image]));
    before.push(index.digest.clone());
    assert_eq!(layout_blobs(&layout), expect(before), "before deleting");

    let delete = |tag: &str| {
        run(scry().args(["delete", &name(tag)]))
            .assert_success()
            .stdout
            .clone()
    };
    // The index goes with the child only it referenced (arm/v7); the others stay.
    delete("all");
    assert_eq!(oci_ref_names(&layout), ["amd", "arm", "s1", "s2"]);
    assert_eq!(
        layout_blobs(&layout),
        expect(digests_of(&[amd, arm, &fx.small.image])),
        "after deleting the index"
    );
    // A child: its manifest, config and own layer go; the shared base layer stays.
    delete("amd");
    assert_eq!(oci_ref_names(&layout), ["arm", "s1", "s2"]);
    assert_eq!(
        layout_blobs(&layout),
        expect(digests_of(&[arm, &fx.small.image])),
        "after deleting amd"
    );
    // One of two tags of the same image: only the entry goes.
    delete("s1");
    assert_eq!(oci_ref_names(&layout), ["arm", "s2"]);
    assert_eq!(
        layout_blobs(&layout),
        expect(digests_of(&[arm, &fx.small.image])),
        "after deleting s1"
    );
    // What remains is intact for skopeo and scry; the deleted names are not found.
    for tag in ["arm", "s2"] {
        run(skopeo().args(["inspect", &name(tag)])).assert_success();
        let (dir, _) = place.dir(&format!("after-delete-{tag}"));
        scry_copy(&[&name(tag), &dir]).assert_success();
    }
    for tag in ["all", "amd", "s1"] {
        run(scry().args(["inspect", &name(tag)])).assert_code(2);
    }
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
