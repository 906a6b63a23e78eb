//! Manifest format and layer compression changes: `--format` both ways (accepted by
//! the registry and by skopeo), `--dest-compress-format zstd`, `--dest-decompress`,
//! `--dest-compress`, and how `oci:` stores uncompressed layers.

use serde_json::Value;

use super::{
    dir_blob, dir_manifest, layer_tar, oci_blob, oci_manifest, scry_copy, skopeo_copy,
    skopeo_inspect, Place, Transport, GZIP_MAGIC, ZSTD_MAGIC,
};
use crate::harness::image::{
    Image, DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_INDEX,
    OCI_LAYER_GZIP, OCI_MANIFEST,
};
use crate::harness::push::sha256_digest;
use crate::harness::shared_registry;

const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// The descriptor digests of a manifest: config first, then layers.
fn digests(m: &Value) -> Vec<String> {
    std::iter::once(&m["config"])
        .chain(m["layers"].as_array().unwrap())
        .map(|d| d["digest"].as_str().unwrap().to_string())
        .collect()
}

fn expected_digests(config: &[u8], image: &Image) -> Vec<String> {
    std::iter::once(sha256_digest(config))
        .chain(image.layer_digests())
        .collect()
}

/// Asserts `m` is a manifest of `image` in the given flavour, with the same layers and
/// the config `config`.
#[track_caller]
fn assert_flavour(
    m: &Value,
    image: &Image,
    config_bytes: &[u8],
    manifest: &str,
    config: &str,
    layer: &str,
) {
    assert_eq!(m["mediaType"], manifest, "{m}");
    assert_eq!(m["config"]["mediaType"], config, "{m}");
    for l in m["layers"].as_array().unwrap() {
        assert_eq!(l["mediaType"], layer, "{m}");
    }
    assert_eq!(
        digests(m),
        expected_digests(config_bytes, image),
        "blobs changed: {m}"
    );
}

#[test]
fn format_conversions_both_ways_are_accepted_by_registry_and_skopeo() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let client = place.reg.client();
    // OCI → v2s2 → OCI, and Docker → OCI → v2s2, each hop through a local transport
    // and the registry. OCI → Docker keeps the config blob; Docker → OCI re-encodes it
    // as an OCI image config, as skopeo does (its own conversion is the expectation).
    let hops = [
        (
            "multilayer",
            &fx.multilayer.image,
            Transport::Oci,
            "v2s2",
            "oci",
        ),
        ("docker", &fx.docker.image, Transport::Dir, "oci", "v2s2"),
    ];
    for (name, image, local_t, first, second) in hops {
        let local = place.image(local_t, &format!("{name}-local"));
        skopeo_copy(&[&shared.docker_ref(&format!("{name}:latest")), &local]).assert_success();
        let config = if first == "oci" {
            let (theirs, theirs_path) = place.dir(&format!("{name}-skopeo-oci"));
            skopeo_copy(&["--format", "oci", &local, &theirs]).assert_success();
            let m = dir_manifest(&theirs_path);
            let c = dir_blob(&theirs_path, m["config"]["digest"].as_str().unwrap());
            c
        } else {
            image.config.data.clone()
        };
        let there = place.reg.docker_ref(&format!("conv/{name}:{first}"));
        scry_copy(&["--format", first, &local, &there]).assert_success();
        let (back, back_path) = place.dir(&format!("{name}-back"));
        scry_copy(&["--format", second, &there, &back]).assert_success();

        let pushed = client
            .get_manifest(&format!("conv/{name}"), first)
            .expect("the registry accepted the converted manifest");
        let pushed: Value = serde_json::from_slice(&pushed.bytes).unwrap();
        let returned = dir_manifest(&back_path);
        let (docker_m, oci_m) = if first == "v2s2" {
            (&pushed, &returned)
        } else {
            (&returned, &pushed)
        };
        assert_flavour(
            docker_m,
            image,
            &config,
            DOCKER_MANIFEST,
            DOCKER_CONFIG,
            DOCKER_LAYER_GZIP,
        );
        assert_flavour(
            oci_m,
            image,
            &config,
            OCI_MANIFEST,
            OCI_CONFIG,
            OCI_LAYER_GZIP,
        );

        // skopeo reads both and copies them on.
        for img in [there.as_str(), back.as_str()] {
            let cfg = skopeo_inspect(&["--config", "--raw"], img);
            assert!(cfg.stdout_bytes == config, "config of {img}");
            let (onward, _) = place.dir(&format!(
                "{name}-onward-{}",
                &sha256_digest(img.as_bytes())[7..15]
            ));
            skopeo_copy(&[img, &onward]).assert_success();
        }
        // And the converted-back image goes to the registry again.
        let again = place.reg.docker_ref(&format!("conv/{name}:{second}"));
        scry_copy(&[&back, &again]).assert_success();
        assert!(client
            .get_manifest(&format!("conv/{name}"), second)
            .is_some());
    }
}

#[test]
fn zstd_output_has_zstd_magic_and_media_type_in_oci_and_dir() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    for (name, image) in [("small", &fx.small.image), ("docker", &fx.docker.image)] {
        let src = shared.docker_ref(&format!("{name}:latest"));
        // The config of the image as OCI: a Docker config is re-encoded as skopeo's
        // `--format oci` does.
        let (as_oci, as_oci_path) = place.dir(&format!("{name}-as-oci"));
        skopeo_copy(&["--format", "oci", &src, &as_oci]).assert_success();
        let config = dir_blob(
            &as_oci_path,
            dir_manifest(&as_oci_path)["config"]["digest"]
                .as_str()
                .unwrap(),
        );
        let oci = place.image(Transport::Oci, &format!("{name}-zstd"));
        let (dir, dir_path) = place.dir(&format!("{name}-zstd"));
        for dst in [&oci, &dir] {
            scry_copy(&["--dest-compress-format", "zstd", &src, dst]).assert_success();
        }
        let layout = place.local_path(Transport::Oci, &format!("{name}-zstd"));
        let from_oci = oci_manifest(&layout, "t");
        let from_dir = dir_manifest(&dir_path);
        for (m, blob_of) in [
            (
                &from_oci,
                &(|d: &str| oci_blob(&layout, d)) as &dyn Fn(&str) -> Vec<u8>,
            ),
            (&from_dir, &|d: &str| dir_blob(&dir_path, d)),
        ] {
            // zstd needs an OCI manifest, whatever the source's flavour.
            assert_eq!(m["mediaType"], OCI_MANIFEST, "{m}");
            assert_eq!(m["config"]["digest"], sha256_digest(&config).as_str());
            let layers = m["layers"].as_array().unwrap();
            assert_eq!(layers.len(), image.layers.len());
            for l in layers {
                assert_eq!(l["mediaType"], OCI_LAYER_ZSTD, "{m}");
                let d = l["digest"].as_str().unwrap();
                let blob = blob_of(d);
                assert_eq!(&blob[..4], &ZSTD_MAGIC, "layer {d} of {name}");
                assert_eq!(sha256_digest(&blob), d);
                assert_eq!(l["size"].as_u64(), Some(blob.len() as u64));
            }
        }
        for dst in [&oci, &dir] {
            let cfg = skopeo_inspect(&["--config", "--raw"], dst);
            assert!(cfg.stdout_bytes == config, "config of {dst}");
            let (onward, _) = place.dir(&format!(
                "{name}-zstd-onward-{}",
                &sha256_digest(dst.as_bytes())[7..15]
            ));
            skopeo_copy(&[dst, &onward]).assert_success();
        }
    }
}

#[test]
fn dest_decompress_writes_plain_tars_and_dest_compress_gzips_them() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    for (name, image, plain_type, gzip_type) in [
        (
            "multilayer",
            &fx.multilayer.image,
            OCI_LAYER_TAR,
            OCI_LAYER_GZIP,
        ),
        (
            "docker",
            &fx.docker.image,
            DOCKER_LAYER_TAR,
            DOCKER_LAYER_GZIP,
        ),
    ] {
        let (plain, plain_path) = place.dir(&format!("{name}-plain"));
        scry_copy(&[
            "--dest-decompress",
            &shared.docker_ref(&format!("{name}:latest")),
            &plain,
        ])
        .assert_success();
        let m = dir_manifest(&plain_path);
        let layers = m["layers"].as_array().unwrap();
        assert_eq!(layers.len(), image.layers.len());
        for (l, want) in layers.iter().zip(&image.layers) {
            assert_eq!(l["mediaType"], plain_type, "{m}");
            // The plain tar is the layer's diff: same digest, same bytes.
            assert_eq!(l["digest"], want.diff_id.as_str(), "{m}");
            assert!(dir_blob(&plain_path, &want.diff_id) == want.tar);
        }
        skopeo_inspect(&[], &plain);

        let (gz, gz_path) = place.dir(&format!("{name}-regzipped"));
        scry_copy(&["--dest-compress", &plain, &gz]).assert_success();
        let m = dir_manifest(&gz_path);
        for (l, want) in m["layers"].as_array().unwrap().iter().zip(&image.layers) {
            assert_eq!(l["mediaType"], gzip_type, "{m}");
            let blob = dir_blob(&gz_path, l["digest"].as_str().unwrap());
            assert_eq!(&blob[..2], &GZIP_MAGIC);
            assert!(layer_tar(&blob) == want.tar, "layer of {gz}");
        }
        skopeo_inspect(&[], &gz);
    }
}

#[test]
fn oci_destination_compresses_plain_layers_unless_told_to_accept_them() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let image = &fx.multilayer.image;
    let (plain, _) = place.dir("plain");
    scry_copy(&[
        "--dest-decompress",
        &shared.docker_ref("multilayer:latest"),
        &plain,
    ])
    .assert_success();
    for (name, flags, want_type) in [
        ("compressed", &[][..], OCI_LAYER_GZIP),
        (
            "accepted",
            &["--dest-oci-accept-uncompressed-layers"][..],
            OCI_LAYER_TAR,
        ),
    ] {
        let out = place.image(Transport::Oci, name);
        let mut args = flags.to_vec();
        args.extend([plain.as_str(), out.as_str()]);
        scry_copy(&args).assert_success();
        let layout = place.local_path(Transport::Oci, name);
        let m = oci_manifest(&layout, "t");
        for (l, want) in m["layers"].as_array().unwrap().iter().zip(&image.layers) {
            assert_eq!(l["mediaType"], want_type, "{name}: {m}");
            let blob = oci_blob(&layout, l["digest"].as_str().unwrap());
            assert_eq!(blob.starts_with(&GZIP_MAGIC), want_type == OCI_LAYER_GZIP);
            assert!(
                layer_tar(&blob) == want.tar,
                "{name}: layer {}",
                want.diff_id
            );
        }
        skopeo_inspect(&[], &out);
    }
}

#[test]
fn docker_list_copied_whole_into_oci_layouts_becomes_an_oci_index() {
    let (shared, fx) = shared_registry();
    let place = Place::new();
    let list = &fx.dockerlist.index;
    let src = shared.docker_ref("dockerlist:latest");
    // dir: holds any manifest type: no conversion, the same bytes.
    let (dir, dir_path) = place.dir("list");
    scry_copy(&["--all", &src, &dir]).assert_success();
    assert!(std::fs::read(dir_path.join("manifest.json")).unwrap() == list.manifest);

    // oci: and oci-archive: hold only OCI manifests: the list must become an index
    // (as skopeo does), with OCI children and the OCI index media type in index.json.
    let layout = place.local_path(Transport::Oci, "list");
    for dst in [
        place.image(Transport::Oci, "list"),
        place.image(Transport::OciArchive, "list"),
    ] {
        scry_copy(&["--all", &src, &dst]).assert_success();
        let raw = skopeo_inspect(&["--raw"], &dst);
        let index: Value = serde_json::from_slice(&raw.stdout_bytes).unwrap();
        assert_eq!(index["mediaType"], OCI_INDEX, "{dst}: {index}");
        let platforms: Vec<&Value> = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                assert_eq!(m["mediaType"], OCI_MANIFEST, "{dst}: {index}");
                &m["platform"]
            })
            .collect();
        let want: Vec<Value> = list.children.iter().map(|c| c.platform.to_json()).collect();
        assert_eq!(platforms, want.iter().collect::<Vec<_>>(), "{dst}");
        let (onward, _) = place.dir(&format!(
            "list-onward-{}",
            &sha256_digest(dst.as_bytes())[7..15]
        ));
        skopeo_copy(&["--all", &dst, &onward]).assert_success();
    }
    let entry = &super::oci_index(&layout)["manifests"][0];
    assert_eq!(entry["mediaType"], OCI_INDEX, "index.json entry: {entry}");
}

/// `--format v2s1` writes a signed Docker schema 1 manifest that skopeo reads, with the
/// same digest both tools compute; lists and registries that refuse schema 1 fail clearly.
#[test]
fn schema1_output_is_read_by_skopeo() {
    use crate::harness::{run, scry, skopeo, Registry};
    let (reg, fx) = shared_registry();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("v1");
    let copied = run(scry().args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--format",
        "v2s1",
        &reg.docker_ref("multilayer:latest"),
        &format!("dir:{}", out.display()),
    ]));
    copied.assert_success();
    let manifest_path = out.join("manifest.json");
    let m: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap()).unwrap();
    assert_eq!(m["schemaVersion"], 1);
    assert!(
        m["signatures"].as_array().is_some_and(|s| s.len() == 1),
        "{m}"
    );
    // skopeo reads it and finds every layer, and both tools agree on its digest.
    let inspected = run(skopeo().args(["inspect", &format!("dir:{}", out.display())]));
    inspected.assert_success();
    let layers: Vec<String> = serde_json::from_str::<Value>(&inspected.stdout).unwrap()["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    for l in &fx.multilayer.image.layers {
        assert!(
            layers.contains(&l.blob.digest),
            "{layers:?} lacks {}",
            l.blob.digest
        );
    }
    let path = manifest_path.to_str().unwrap();
    let ours = run(scry().args(["manifest-digest", path]));
    let theirs = run(skopeo().args(["manifest-digest", path]));
    assert_eq!(ours.assert_success().stdout, theirs.assert_success().stdout);
    run(skopeo().args([
        "copy",
        &format!("dir:{}", out.display()),
        &format!("dir:{}", dir.path().join("onward").display()),
    ]))
    .assert_success();

    // No lists in schema 1.
    let all = run(scry().args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--format",
        "v2s1",
        &reg.docker_ref("multiarch:latest"),
        &format!("dir:{}", dir.path().join("list").display()),
    ]));
    all.assert_code(1);
    assert!(all.stderr.contains("schema 1"), "{}", all.stderr);
    // This registry refuses schema 1 manifests: the error says so.
    let dst = Registry::plain();
    let pushed = run(scry().args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--format",
        "v2s1",
        &reg.docker_ref("small:latest"),
        &dst.docker_ref("v1/small:1"),
    ]));
    pushed.assert_code(1);
    assert!(pushed.stderr.contains("schema 1"), "{}", pushed.stderr);
}
