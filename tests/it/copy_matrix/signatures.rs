//! Signatures are opaque blobs to a copy: `dir:` keeps `signature-N` for the top
//! manifest and `HEX.signature-N` for each image of a list, and `scry copy` carries
//! them as skopeo does (`--all` included), drops them with `--remove-signatures`, and
//! refuses, before writing, a destination that cannot store them.

use std::path::Path;

use super::{assert_same_tree, read_tree, scry_copy, skopeo_copy, Place, Transport};
use crate::harness::{run, shared_registry, skopeo};

/// The signature files of a `dir:` image, by name.
fn signature_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    read_tree(dir)
        .into_iter()
        .filter(|(name, _)| name.contains("signature-"))
        .map(|(name, node)| match node {
            super::Node::File(data) => (name, data),
            other => panic!("{name} is {other:?}"),
        })
        .collect()
}

/// Bytes skopeo takes for a simple-signing signature without looking inside: an
/// OpenPGP packet tag (high bit set) first.
fn opaque(text: &str) -> Vec<u8> {
    let mut v = vec![0x89u8];
    v.extend_from_slice(text.as_bytes());
    v
}

/// `dir:` copy of the multi-arch fixture (`--all`) with made-up signatures: two for
/// the list, one for each image in it.
fn signed_list(place: &Place) -> (String, std::path::PathBuf, Vec<String>) {
    let (shared, fx) = shared_registry();
    let (src, path) = place.dir("signed");
    skopeo_copy(&["--all", &shared.docker_ref("multiarch:latest"), &src]).assert_success();
    std::fs::write(path.join("signature-1"), opaque("list signature one")).unwrap();
    std::fs::write(path.join("signature-2"), opaque("list signature two")).unwrap();
    let children: Vec<String> = fx
        .multiarch
        .index
        .children
        .iter()
        .map(|c| c.digest.clone())
        .collect();
    for (i, d) in children.iter().enumerate() {
        let hex = d.strip_prefix("sha256:").unwrap();
        assert!(path.join(format!("{hex}.manifest.json")).is_file());
        std::fs::write(
            path.join(format!("{hex}.signature-1")),
            opaque(&format!("signature of image {i}")),
        )
        .unwrap();
    }
    (src, path, children)
}

#[test]
fn all_carries_the_signatures_of_every_image_in_the_list() {
    let place = Place::new();
    let (src, src_path, children) = signed_list(&place);
    let (scry_dst, scry_path) = place.dir("scry-all");
    let out = scry_copy(&["--all", &src, &scry_dst]);
    out.assert_success();
    // Everything, signatures included, arrives as skopeo copies it.
    let (skopeo_dst, skopeo_path) = place.dir("skopeo-all");
    let theirs = run(skopeo().args(["copy", "--all", &src, &skopeo_dst]));
    theirs.assert_success();
    assert_same_tree(&skopeo_path, &scry_path);
    // And it says so as skopeo does.
    assert_eq!(
        super::output::comparable(&out.stdout),
        super::output::comparable(&theirs.stdout),
        "--- scry ---\n{}--- skopeo ---\n{}",
        out.stdout,
        theirs.stdout
    );
    assert_eq!(signature_files(&scry_path), signature_files(&src_path));
    assert_eq!(signature_files(&scry_path).len(), 2 + children.len());
    // One "Storing signatures" per image and one for the list.
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| *l == "Storing signatures")
            .count(),
        children.len(),
        "{out}"
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| *l == "Storing list signatures")
            .count(),
        1,
        "{out}"
    );

    // --remove-signatures: the same image, without any signature.
    let (bare_dst, bare_path) = place.dir("scry-bare");
    let out = scry_copy(&["--all", "--remove-signatures", &src, &bare_dst]);
    out.assert_success();
    assert!(
        signature_files(&bare_path).is_empty(),
        "{:?}",
        signature_files(&bare_path)
    );
    assert!(!out.stdout.contains("Getting image"), "{out}");
    let (skopeo_bare, skopeo_bare_path) = place.dir("skopeo-bare");
    skopeo_copy(&["--all", "--remove-signatures", &src, &skopeo_bare]).assert_success();
    assert_same_tree(&skopeo_bare_path, &bare_path);
}

#[test]
fn one_image_of_a_signed_list_keeps_its_own_signatures() {
    let place = Place::new();
    let (src, _, _) = signed_list(&place);
    let (scry_dst, scry_path) = place.dir("scry-one");
    scry_copy(&[&src, &scry_dst]).assert_success();
    let (skopeo_dst, skopeo_path) = place.dir("skopeo-one");
    skopeo_copy(&[&src, &skopeo_dst]).assert_success();
    assert_same_tree(&skopeo_path, &scry_path);
    assert_eq!(
        signature_files(&scry_path),
        signature_files(&skopeo_path),
        "premise"
    );
}

#[test]
fn signatures_to_a_destination_without_them_are_refused_before_writing() {
    let place = Place::new();
    let (src, _, _) = signed_list(&place);
    for t in [Transport::Oci, Transport::OciArchive] {
        let dst = place.image(t, "unsigned");
        let out = scry_copy(&["--all", &src, &dst]);
        out.assert_code(1);
        assert!(out.stderr.contains("--remove-signatures"), "{out}");
        assert!(
            !out.stdout.contains("Copying blob"),
            "{dst}: blobs were copied: {out}"
        );
        let p = place.local_path(t, "unsigned");
        assert!(!p.exists(), "{dst}: {} was written", p.display());
        // skopeo refuses it too.
        let theirs = run(skopeo().args(["copy", "-q", "--all", &src, &dst]));
        assert!(!theirs.status.success(), "{theirs}");
        let _ = std::fs::remove_dir_all(&p);
        let _ = std::fs::remove_file(&p);
        // Without the signatures the copy goes through.
        scry_copy(&["--all", "--remove-signatures", &src, &dst]).assert_success();
    }
}

#[test]
fn a_copy_that_would_invalidate_signatures_is_refused_before_writing() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    let (src, path) = place.dir("signed-one");
    skopeo_copy(&[&shared.docker_ref("small:latest"), &src]).assert_success();
    std::fs::write(path.join("signature-1"), opaque("one image")).unwrap();
    for flags in [
        &["--format", "v2s2"][..],
        &["--dest-compress-format", "zstd"][..],
    ] {
        let (dst, dst_path) = place.dir("converted");
        let mut args = flags.to_vec();
        args.extend([src.as_str(), dst.as_str()]);
        let out = scry_copy(&args);
        out.assert_code(1);
        assert!(out.stderr.contains("--remove-signatures"), "{out}");
        assert!(
            !out.stdout.contains("Copying blob"),
            "{flags:?}: blobs were copied: {out}"
        );
        assert!(!dst_path.exists(), "{flags:?}: {dst} was written");
        // (skopeo 1.9.3 copies the image unchanged instead, ignoring the flag.)
        // Without the signature the conversion goes through.
        let mut args = vec!["--remove-signatures"];
        args.extend_from_slice(flags);
        args.extend([src.as_str(), dst.as_str()]);
        scry_copy(&args).assert_success();
        assert!(signature_files(&dst_path).is_empty());
        std::fs::remove_dir_all(&dst_path).unwrap();
    }
}
