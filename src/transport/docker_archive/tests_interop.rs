//! The installed skopeo (Debian's 1.9.3) as an oracle: it reads archives scry writes,
//! agrees on the manifest scry synthesises, and copies them on. (The other direction,
//! scry reading skopeo's output, is covered by the `skopeo-umoci.tar` fixture.)

use std::path::Path;
use std::process::Command;

use super::testutil::*;
use super::{list_tags, DockerArchiveDestination, DockerArchiveSource};
use crate::reference::DockerReference;
use crate::transport::{BlobStream, ImageDestination, ImageSource};

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("running skopeo (install the Debian package `skopeo`)");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

async fn write_image(target: &Path) -> (Vec<Vec<u8>>, Vec<u8>) {
    let l1 = layer_tar(&[("etc/hello", b"hello from scry\n".as_slice())]);
    let l2 = layer_tar(&[("usr/share/data", b"0123456789".repeat(3000).as_slice())]);
    let config = config_json(&[sha(&l1), sha(&l2)]);
    let dest = DockerArchiveDestination::new(
        target,
        Some(DockerReference::parse("localhost:5000/scry/test:v1").unwrap()),
        vec![DockerReference::parse("busybox:extra").unwrap()],
    )
    .unwrap();
    for b in [&l1, &l2, &config] {
        let s: BlobStream = Box::pin(std::io::Cursor::new(b.clone()));
        dest.put_blob(s, &blob_info("")).await.unwrap();
    }
    let d = |b: &[u8], mt: &str| serde_json::json!({"mediaType": mt, "size": b.len(), "digest": sha(b)});
    let layer_mt = "application/vnd.docker.image.rootfs.diff.tar";
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": d(&config, "application/vnd.docker.container.image.v1+json"),
        "layers": [d(&l1, layer_mt), d(&l2, layer_mt)],
    }))
    .unwrap();
    dest.put_manifest(
        &manifest,
        "application/vnd.docker.distribution.manifest.v2+json",
        None,
    )
    .await
    .unwrap();
    Box::new(dest).commit().await.unwrap();
    (vec![l1, l2], config)
}

#[tokio::test]
async fn skopeo_reads_what_scry_writes() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("scry.tar");
    let (layers, config) = write_image(&target).await;
    let archive = format!("docker-archive:{}", target.display());

    let ours = DockerArchiveSource::new(&target, None, None, None).unwrap();
    let (our_manifest, _) = ours.manifest(None).await.unwrap();
    let raw = skopeo(&["inspect", "--raw", &archive]);
    assert_eq!(raw, our_manifest, "skopeo synthesises the same manifest");

    let tagged = format!("{archive}:busybox:extra");
    let inspect: serde_json::Value =
        serde_json::from_slice(&skopeo(&["inspect", &tagged])).unwrap();
    assert_eq!(inspect["Digest"], sha(&our_manifest));
    assert_eq!(inspect["Name"], "docker.io/library/busybox");
    assert_eq!(
        inspect["Layers"],
        serde_json::json!([sha(&layers[0]), sha(&layers[1])])
    );

    let tags: serde_json::Value =
        serde_json::from_slice(&skopeo(&["list-tags", &archive])).unwrap();
    assert_eq!(
        tags,
        serde_json::json!({"Tags": list_tags(&target).unwrap()})
    );
    assert_eq!(
        tags["Tags"],
        serde_json::json!([
            "localhost:5000/scry/test:v1",
            "docker.io/library/busybox:extra"
        ])
    );

    // skopeo copies the archive on (compressing the layers for OCI); the copy holds
    // our layer contents and diff IDs.
    let oci = dir.path().join("oci");
    skopeo(&[
        "copy",
        &format!("{archive}:localhost:5000/scry/test:v1"),
        &format!("oci:{}:x", oci.display()),
    ]);
    let blob = |d: &str| std::fs::read(oci.join("blobs/sha256").join(&d[7..])).unwrap();
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&blob(index["manifests"][0]["digest"].as_str().unwrap())).unwrap();
    let cfg: serde_json::Value =
        serde_json::from_slice(&blob(m["config"]["digest"].as_str().unwrap())).unwrap();
    let ours: serde_json::Value = serde_json::from_slice(&config).unwrap();
    assert_eq!(cfg["rootfs"], ours["rootfs"]);
    assert_eq!(m["layers"].as_array().unwrap().len(), layers.len());
    for (l, want) in m["layers"].as_array().unwrap().iter().zip(&layers) {
        let packed = blob(l["digest"].as_str().unwrap());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut plain)
            .unwrap();
        assert!(plain == *want, "layer {} content", l["digest"]);
    }
}

/// Layers stored compressed (docker's newer `blobs/sha256` layout allows it): skopeo and
/// scry announce the same diff IDs and uncompressed sizes, also through a zstd-compressed
/// archive (skopeo 1.9.3 cannot open gzip-compressed archives, so only zstd is compared).
#[tokio::test]
async fn skopeo_agrees_on_compressed_layers() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = compressed_layers_archive(&[]).await.bytes;
    for (name, data) in [
        ("new.tar", bytes.clone()),
        ("new.tar.zst", zstd(&bytes).await),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, data).unwrap();
        let ours = DockerArchiveSource::new(&path, None, None, Some(dir.path()))
            .unwrap()
            .manifest(None)
            .await
            .unwrap()
            .0;
        let theirs = skopeo(&[
            "inspect",
            "--raw",
            &format!("docker-archive:{}", path.display()),
        ]);
        assert_eq!(theirs, ours, "{name}");
    }
}
