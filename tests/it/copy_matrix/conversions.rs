//! Conversions that rewrite the config, checked byte for byte against skopeo 1.9.3
//! doing the same copy: Docker schema 2 → OCI (the config re-encoded as an OCI image
//! config, explicitly and implicitly for OCI destinations), `--preserve-digests` into
//! an OCI layout (the Docker manifest kept as it is), and Docker schema 1 sources
//! (signed and unsigned) → schema 2 / OCI, whose configs need the layers' diff IDs.

use std::path::Path;

use serde_json::{json, Value};

use super::{
    assert_same_tree, dir_blob, dir_manifest, oci_index, scry_copy, skopeo_copy, skopeo_inspect,
    Place, Transport,
};
use crate::harness::image::{DOCKER_MANIFEST, OCI_MANIFEST};
use crate::harness::push::sha256_digest;
use crate::harness::shared_registry;

/// Writes `bytes` as a blob of the `dir:` image at `dir`; returns its digest.
fn put_dir_blob(dir: &Path, bytes: &[u8]) -> String {
    let d = sha256_digest(bytes);
    std::fs::write(dir.join(&d[7..]), bytes).unwrap();
    d
}

/// A `dir:` copy of the `docker` fixture whose config carries what Docker writes and
/// the OCI image config has no place for (`container`, `container_config`,
/// `docker_version`, `config.Hostname`…), characters Go escapes, and a trailing
/// newline: a conversion that only relabels the config keeps all of it.
fn docker_image_with_docker_fields(place: &Place) -> String {
    let (shared, _) = shared_registry();
    let (dir, path) = place.dir("dockerish");
    skopeo_copy(&[&shared.docker_ref("docker:latest"), &dir]).assert_success();
    let mut m = dir_manifest(&path);
    let old = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: Value = serde_json::from_slice(&dir_blob(&path, &old)).unwrap();
    let c = cfg.as_object_mut().unwrap();
    c.insert("container".into(), json!("0123abcd"));
    c.insert(
        "container_config".into(),
        json!({"Hostname": "0123abcd", "Cmd": ["/bin/sh", "-c", "#(nop) ADD x"]}),
    );
    c.insert("docker_version".into(), json!("20.10.7"));
    let inner = c["config"].as_object_mut().unwrap();
    inner.insert("Hostname".into(), json!("0123abcd"));
    inner.insert(
        "ExposedPorts".into(),
        json!({"8080/tcp": {}, "443/tcp": {}}),
    );
    inner.insert("Env".into(), json!(["A=<b> & c", "PATH=/bin"]));
    let mut bytes = serde_json::to_vec_pretty(&cfg).unwrap();
    bytes.push(b'\n');
    std::fs::remove_file(path.join(&old[7..])).unwrap();
    let digest = put_dir_blob(&path, &bytes);
    m["config"]["digest"] = json!(digest);
    m["config"]["size"] = json!(bytes.len());
    std::fs::write(
        path.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    dir
}

/// Runs the same copy with both tools, into `NAME-scry` and `NAME-skopeo` of
/// transport `t`, and returns both destination names.
fn both(place: &Place, flags: &[&str], src: &str, t: Transport, name: &str) -> (String, String) {
    let scry_dst = place.image(t, &format!("{name}-scry"));
    let skopeo_dst = place.image(t, &format!("{name}-skopeo"));
    let mut args = flags.to_vec();
    args.extend([src, scry_dst.as_str()]);
    scry_copy(&args).assert_success();
    let mut args = flags.to_vec();
    args.extend([src, skopeo_dst.as_str()]);
    skopeo_copy(&args).assert_success();
    (scry_dst, skopeo_dst)
}

/// Asserts the two local images are the same files (dir:, oci:), or for archives the
/// same manifest and config as skopeo reads them.
#[track_caller]
fn assert_same_output(place: &Place, t: Transport, name: &str, scry_dst: &str, skopeo_dst: &str) {
    match t {
        Transport::Dir | Transport::Oci => assert_same_tree(
            &place.local_path(t, &format!("{name}-scry")),
            &place.local_path(t, &format!("{name}-skopeo")),
        ),
        _ => {
            for flags in [&["--raw"][..], &["--config", "--raw"][..]] {
                let a = skopeo_inspect(flags, scry_dst);
                let b = skopeo_inspect(flags, skopeo_dst);
                assert!(
                    a.stdout_bytes == b.stdout_bytes,
                    "{name}: skopeo inspect {flags:?} differs:\nscry's:   {}\nskopeo's: {}",
                    a.stdout,
                    b.stdout
                );
            }
        }
    }
}

#[test]
fn docker_to_oci_conversion_gives_skopeos_config_and_manifest_digests() {
    let place = Place::new();
    let src = docker_image_with_docker_fields(&place);
    // Asked for, and implied by destinations that hold only OCI manifests.
    let cases: [(&str, &[&str], Transport); 4] = [
        ("asked", &["--format", "oci"], Transport::Dir),
        ("layout", &[], Transport::Oci),
        ("archive", &[], Transport::OciArchive),
        // Digests kept: no conversion, the Docker manifest goes into the layout as is.
        ("kept", &["--preserve-digests"], Transport::Oci),
    ];
    for (name, flags, t) in cases {
        let (ours, theirs) = both(&place, flags, &src, t, name);
        assert_same_output(&place, t, name, &ours, &theirs);
        if name == "kept" {
            // (skopeo 1.9.3 writes such a layout but cannot read it back: its `oci:`
            // source looks only at OCI manifest entries.)
            let index = oci_index(&place.local_path(t, &format!("{name}-scry")));
            assert_eq!(
                index["manifests"][0]["mediaType"], DOCKER_MANIFEST,
                "{index}"
            );
            continue;
        }
        let m: Value =
            serde_json::from_slice(&skopeo_inspect(&["--raw"], &ours).stdout_bytes).unwrap();
        assert_eq!(m["mediaType"], OCI_MANIFEST, "{name}: {m}");
        let cfg = skopeo_inspect(&["--config", "--raw"], &ours).stdout;
        for gone in ["container_config", "docker_version", "Hostname"] {
            assert!(!cfg.contains(gone), "{name}: {gone} left in {cfg}");
        }
        assert!(cfg.contains(r#""A=\u003cb\u003e \u0026 c""#), "{cfg}");
    }
    // Back from OCI to Docker: the config blob stays as it is (as skopeo does).
    let oci = place.image(Transport::Dir, "asked-scry");
    let (ours, theirs) = both(&place, &["--format", "v2s2"], &oci, Transport::Dir, "back");
    assert_same_output(&place, Transport::Dir, "back", &ours, &theirs);
}

/// `--preserve-digests` without `--format`: the destination gets the source's manifest
/// and layers as they are, even where it would otherwise convert or decompress them
/// (skopeo "hopes for the best"); a destination that cannot store that manifest fails
/// and leaves nothing behind.
#[test]
fn preserve_digests_writes_the_source_as_it_is() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    let docker = docker_image_with_docker_fields(&place);
    // Both archives tagged alike (the tag is part of the archive).
    let (ours, theirs) = (
        place.path().join("kept-scry.tar"),
        place.path().join("kept-skopeo.tar"),
    );
    let name = |p: &Path| format!("docker-archive:{}:kept/image:1", p.display());
    scry_copy(&["--preserve-digests", &docker, &name(&ours)]).assert_success();
    skopeo_copy(&["--preserve-digests", &docker, &name(&theirs)]).assert_success();
    assert!(
        std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
        "{} and {} differ",
        ours.display(),
        theirs.display()
    );
    // OCI into docker-archive: no conversion allowed, so no manifest it can store.
    let oci = shared.docker_ref("small:latest");
    let dst = place.image(Transport::DockerArchive, "refused");
    let out = scry_copy(&["--preserve-digests", &oci, &dst]);
    out.assert_code(1);
    assert!(
        out.stderr.contains("need a Docker schema 2 manifest"),
        "{}",
        out.stderr
    );
    assert!(!place
        .local_path(Transport::DockerArchive, "refused")
        .exists());
}

#[test]
fn docker_list_into_an_oci_layout_matches_skopeo() {
    let (shared, _) = shared_registry();
    let place = Place::new();
    let src = shared.docker_ref("dockerlist:latest");
    let (ours, theirs) = both(&place, &["--all"], &src, Transport::Oci, "list");
    assert_same_output(&place, Transport::Oci, "list", &ours, &theirs);
}

/// The `docker` fixture as a signed schema 1 `dir:` image (written by skopeo), and the
/// same manifest without its signatures.
fn schema1_images(place: &Place) -> [(&'static str, String); 2] {
    let (shared, _) = shared_registry();
    let (signed, _) = place.dir("s1-signed");
    skopeo_copy(&[
        "--format",
        "v2s1",
        &shared.docker_ref("docker:latest"),
        &signed,
    ])
    .assert_success();
    let (unsigned, unsigned_path) = place.dir("s1-unsigned");
    skopeo_copy(&[&signed, &unsigned]).assert_success();
    let mut m = dir_manifest(&unsigned_path);
    assert_eq!(m["schemaVersion"], 1, "{m}");
    // The empty ENV/LABEL step is a `throwaway` entry the conversion must drop.
    assert!(
        m["history"].as_array().unwrap().len() > 2,
        "expected an empty-layer entry: {m}"
    );
    m.as_object_mut().unwrap().remove("signatures");
    std::fs::write(
        unsigned_path.join("manifest.json"),
        serde_json::to_vec_pretty(&m).unwrap(),
    )
    .unwrap();
    [("signed", signed), ("unsigned", unsigned)]
}

#[test]
fn schema1_sources_convert_as_skopeo_converts_them() {
    let (_, fx) = shared_registry();
    let image = &fx.docker.image;
    let place = Place::new();
    let diff_ids: Vec<&str> = image.layers.iter().map(|l| l.diff_id.as_str()).collect();
    for (kind, src) in schema1_images(&place) {
        let cases: [(&str, &[&str], Transport); 5] = [
            ("v2s2", &["--format", "v2s2"], Transport::Dir),
            ("oci", &["--format", "oci"], Transport::Dir),
            // Destinations that cannot hold schema 1 convert without being asked.
            ("layout", &[], Transport::Oci),
            ("archive", &[], Transport::OciArchive),
            ("docker-archive", &[], Transport::DockerArchive),
        ];
        for (case, flags, t) in cases {
            let name = format!("{kind}-{case}");
            let (ours, theirs) = both(&place, flags, &src, t, &name);
            let m: Value =
                serde_json::from_slice(&skopeo_inspect(&["--raw"], &ours).stdout_bytes).unwrap();
            assert_eq!(m["schemaVersion"], 2, "{name}: {m}");
            // Only the non-empty layers, with the fixture's contents.
            let cfg: Value =
                serde_json::from_slice(&skopeo_inspect(&["--config", "--raw"], &ours).stdout_bytes)
                    .unwrap();
            assert_eq!(cfg["rootfs"]["diff_ids"], json!(diff_ids), "{name}: {cfg}");
            if t == Transport::DockerArchive {
                // skopeo's archive also holds the empty layer as a loose file no image
                // refers to; scry writes only what the image uses. The manifest and
                // config, as skopeo reads them back, are the same.
                for flags in [&["--raw"][..], &["--config", "--raw"][..]] {
                    let a = skopeo_inspect(flags, &ours);
                    let b = skopeo_inspect(flags, &theirs);
                    assert!(a.stdout_bytes == b.stdout_bytes, "{name} {flags:?}");
                }
            } else {
                assert_eq!(m["layers"].as_array().unwrap().len(), diff_ids.len());
                assert_same_output(&place, t, &name, &ours, &theirs);
            }
        }
        // Converted on the way to a registry (which refuses schema 1): the registry
        // holds the manifest skopeo's conversion to `dir:` wrote above.
        for fmt in ["v2s2", "oci"] {
            let there = place.reg.docker_ref(&format!("s1/{kind}:{fmt}"));
            scry_copy(&["--format", fmt, &src, &there]).assert_success();
            let theirs = place.local_path(Transport::Dir, &format!("{kind}-{fmt}-skopeo"));
            let raw = skopeo_inspect(&["--raw"], &there).stdout_bytes;
            assert!(
                raw == std::fs::read(theirs.join("manifest.json")).unwrap(),
                "{there}: {}",
                String::from_utf8_lossy(&raw)
            );
        }
    }
}
