//! The transport matrix: for each source transport, skopeo writes the fixtures into
//! it, scry reads them back (compared with skopeo's own reading), and scry copies
//! them into every destination transport, where skopeo must read the result and copy
//! it onward. Without a format change the manifests stay byte-identical.
//!
//! docker-archive stores uncompressed layers under a Docker schema2 manifest, so
//! whenever it is on either side only the config bytes and the layer contents are
//! compared, not manifest bytes or layer digests.

use super::{
    assert_dir_holds_image, assert_same_tree, dir_blob, scry_copy, skopeo_copy, skopeo_inspect,
    Place, Transport,
};
use crate::harness::image::{Image, Index, DOCKER_MANIFEST, OCI_MANIFEST};
use crate::harness::push::sha256_digest;
use crate::harness::{run, shared_registry, skopeo};

#[test]
fn from_docker_to_every_transport() {
    source_row(Transport::Docker);
}

#[test]
fn from_dir_to_every_transport() {
    source_row(Transport::Dir);
}

#[test]
fn from_oci_to_every_transport() {
    source_row(Transport::Oci);
}

#[test]
fn from_oci_archive_to_every_transport() {
    source_row(Transport::OciArchive);
}

#[test]
fn from_docker_archive_to_every_transport() {
    source_row(Transport::DockerArchive);
}

/// One row of the matrix: every image through `src_t` to every destination.
fn source_row(src_t: Transport) {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    for (label, image) in [
        ("small", &fx.small.image),
        ("multilayer", &fx.multilayer.image),
    ] {
        let src = place.image(src_t, &format!("{label}-src"));
        skopeo_copy(&[&shared.docker_ref(&format!("{label}:latest")), &src]).assert_success();
        scry_reads_skopeo_output(&place, src_t, &src, label, image);
        for dst_t in Transport::ALL {
            let dst = place.image(
                dst_t,
                &format!("{label}-{}-to-{}", src_t.name(), dst_t.name()),
            );
            scry_copy(&[&src, &dst]).assert_success();
            skopeo_reads_scry_output(&place, src_t, dst_t, &dst, image);
        }
    }
    if !src_t.holds_index() {
        return;
    }
    let index = &fx.multiarch.index;
    let src = place.image(src_t, "multiarch-src");
    skopeo_copy(&["--all", &shared.docker_ref("multiarch:latest"), &src]).assert_success();
    scry_reads_skopeo_index(&place, src_t, &src, index);
    for dst_t in Transport::ALL.into_iter().filter(|t| t.holds_index()) {
        let dst = place.image(
            dst_t,
            &format!("multiarch-{}-to-{}", src_t.name(), dst_t.name()),
        );
        scry_copy(&["--all", &src, &dst]).assert_success();
        skopeo_reads_scry_index(&place, dst_t, &dst, index);
    }
}

/// scry and skopeo both copy `src` (written by skopeo) to `dir:`; the trees match.
fn scry_reads_skopeo_output(
    place: &Place,
    src_t: Transport,
    src: &str,
    label: &str,
    image: &Image,
) {
    let (by_scry, scry_path) = place.dir(&format!("{label}-{}-read-by-scry", src_t.name()));
    let (by_skopeo, skopeo_path) = place.dir(&format!("{label}-{}-read-by-skopeo", src_t.name()));
    scry_copy(&[src, &by_scry]).assert_success();
    skopeo_copy(&[src, &by_skopeo]).assert_success();
    assert_dir_holds_image(&scry_path, image);
    if src_t == Transport::DockerArchive {
        // skopeo stores the archive's uncompressed layers as they are; scry compresses
        // them to match the gzip media type. Contents were compared above.
        return;
    }
    assert_same_tree(&scry_path, &skopeo_path);
    assert_eq!(
        std::fs::read(scry_path.join("manifest.json")).unwrap(),
        image.manifest,
        "{src} read by scry: manifest bytes changed"
    );
}

/// skopeo inspects `dst` (written by scry) and copies it onward to `dir:`.
fn skopeo_reads_scry_output(
    place: &Place,
    src_t: Transport,
    dst_t: Transport,
    dst: &str,
    image: &Image,
) {
    let archive_involved = src_t == Transport::DockerArchive || dst_t == Transport::DockerArchive;
    let raw = skopeo_inspect(&["--raw"], dst).stdout_bytes.clone();
    if archive_involved {
        let m: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let want = match dst_t {
            Transport::Oci | Transport::OciArchive => OCI_MANIFEST,
            _ => DOCKER_MANIFEST,
        };
        assert_eq!(m["mediaType"], want, "manifest type of {dst}");
    } else {
        assert!(
            raw == image.manifest,
            "manifest of {dst} is not byte-identical to the source's:\n{}",
            String::from_utf8_lossy(&raw)
        );
    }
    let config = skopeo_inspect(&["--config", "--raw"], dst);
    assert!(
        config.stdout_bytes == image.config.data,
        "config of {dst} changed: {}",
        config.stdout
    );
    let info = skopeo_inspect(&[], dst).json();
    assert_eq!(info["Digest"], sha256_digest(&raw), "Digest of {dst}");
    let layers: Vec<&str> = info["Layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no Layers for {dst}: {info}"))
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    if dst_t == Transport::DockerArchive {
        let diff_ids: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
        assert_eq!(layers, diff_ids, "Layers of {dst}");
    } else if src_t == Transport::DockerArchive {
        assert_eq!(layers.len(), image.layers.len(), "Layers of {dst}");
    } else {
        assert_eq!(layers, image.layer_digests(), "Layers of {dst}");
    }

    let name = format!("onward-{}", sha256_digest(dst.as_bytes())[7..19].to_owned());
    let (onward, onward_path) = place.dir(&name);
    skopeo_copy(&[dst, &onward]).assert_success();
    assert_dir_holds_image(&onward_path, image);
    if !archive_involved {
        assert_eq!(
            std::fs::read(onward_path.join("manifest.json")).unwrap(),
            image.manifest,
            "{dst} copied onward by skopeo"
        );
    }
}

/// scry and skopeo both copy the index at `src` (written by skopeo) with `--all`.
fn scry_reads_skopeo_index(place: &Place, src_t: Transport, src: &str, index: &Index) {
    let (by_scry, scry_path) = place.dir(&format!("multiarch-{}-read-by-scry", src_t.name()));
    let (by_skopeo, skopeo_path) = place.dir(&format!("multiarch-{}-read-by-skopeo", src_t.name()));
    scry_copy(&["--all", src, &by_scry]).assert_success();
    skopeo_copy(&["--all", src, &by_skopeo]).assert_success();
    assert_same_tree(&scry_path, &skopeo_path);
    assert_dir_holds_index(&scry_path, index);
}

/// skopeo reads the index scry wrote to `dst`, picks a child, and copies it all onward.
fn skopeo_reads_scry_index(place: &Place, dst_t: Transport, dst: &str, index: &Index) {
    let raw = skopeo_inspect(&["--raw"], dst).stdout_bytes.clone();
    assert!(
        raw == index.manifest,
        "index at {dst} is not byte-identical:\n{}",
        String::from_utf8_lossy(&raw)
    );
    let arm = index.child("arm64", Some("v8"));
    let out = run(skopeo().args([
        "--override-arch",
        "arm64",
        "--override-variant",
        "v8",
        "inspect",
        "--tls-verify=false",
        dst,
    ]));
    out.assert_success();
    let info = out.json();
    // (skopeo reports the index's digest for registries and the child's elsewhere,
    // so the child is recognised by its layers and labels.)
    assert_eq!(
        info["Labels"]["com.example.scry.platform"], "arm64/v8",
        "arm64 child of {dst}"
    );
    assert_eq!(
        info["Layers"],
        serde_json::json!(arm.layer_digests()),
        "arm64 child of {dst}"
    );
    let (onward, onward_path) = place.dir(&format!("multiarch-onward-{}", dst_t.name()));
    skopeo_copy(&["--all", dst, &onward]).assert_success();
    assert_dir_holds_index(&onward_path, index);
}

/// A `dir:` copy of a whole index: the index and every child manifest byte-identical,
/// every config and layer blob present with its bytes.
#[track_caller]
fn assert_dir_holds_index(dir: &std::path::Path, index: &Index) {
    assert_eq!(
        std::fs::read(dir.join("manifest.json")).unwrap(),
        index.manifest,
        "index in {}",
        dir.display()
    );
    for child in &index.children {
        let hex = child.digest.strip_prefix("sha256:").unwrap();
        let path = dir.join(format!("{hex}.manifest.json"));
        assert_eq!(
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
            child.manifest,
            "{}",
            path.display()
        );
        for blob in child.blobs() {
            assert!(
                dir_blob(dir, &blob.digest) == blob.data,
                "blob {} in {}",
                blob.digest,
                dir.display()
            );
        }
    }
}
