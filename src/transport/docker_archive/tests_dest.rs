//! Writing archives: round trips through the source, byte-identity with skopeo's
//! output, and nothing left behind when a blob, the manifest or the commit fails.

use std::path::{Path, PathBuf};

use super::testutil::*;
use super::{DockerArchiveDestination, DockerArchiveSource};
use crate::digest::VerifyingReader;
use crate::error::ErrorKind;
use crate::manifest::Manifest;
use crate::reference::DockerReference;
use crate::transport::{BlobInfo, BlobStream, ImageDestination, ImageSource, LayerCompression};

const V2S2: &str = "application/vnd.docker.distribution.manifest.v2+json";

fn dref(s: &str) -> DockerReference {
    DockerReference::parse(s).unwrap()
}

fn stream(b: &[u8]) -> BlobStream {
    Box::pin(std::io::Cursor::new(b.to_vec()))
}

fn known(b: &[u8]) -> BlobInfo {
    let mut i = blob_info(&sha(b));
    i.size = b.len() as i64;
    i
}

fn unknown() -> BlobInfo {
    blob_info("")
}

fn manifest_for(config: &[u8], layers: &[&[u8]]) -> Vec<u8> {
    let d = |b: &[u8], mt: &str| serde_json::json!({"mediaType": mt, "size": b.len(), "digest": sha(b)});
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": V2S2,
        "config": d(config, "application/vnd.docker.container.image.v1+json"),
        "layers": layers.iter().map(|l| d(l, "application/vnd.docker.image.rootfs.diff.tar")).collect::<Vec<_>>(),
    }))
    .unwrap()
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn round_trip_through_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tar");
    let l1 = layer_tar(&[("etc/a", b"one".as_slice())]);
    let l2 = layer_tar(&[("etc/b", b"two".repeat(5000).as_slice())]);
    let config = config_json(&[sha(&l1), sha(&l2), sha(&l1)]);
    let dest = DockerArchiveDestination::new(
        &target,
        Some(dref("example.com/app")),
        vec![dref("busybox:1"), dref("example.com/app:latest")],
    )
    .unwrap();
    assert_eq!(dest.supported_manifest_types(), vec![V2S2]);
    assert!(!dest.supports_index());
    assert_eq!(
        dest.desired_layer_compression(),
        LayerCompression::Decompress
    );
    assert!(dest
        .try_reuse_blob(&known(&l1), None)
        .await
        .unwrap()
        .is_none());
    let stored = dest.put_blob(stream(&l1), &unknown()).await.unwrap();
    assert_eq!(
        (stored.digest.as_str(), stored.size),
        (sha(&l1).as_str(), l1.len() as i64)
    );
    let reused = dest
        .try_reuse_blob(&known(&l1), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reused.size, l1.len() as i64);
    dest.put_blob(stream(&l2), &known(&l2)).await.unwrap();
    dest.put_blob(stream(&l1), &unknown()).await.unwrap(); // a repeat is harmless
    dest.put_blob(stream(&config), &known(&config))
        .await
        .unwrap();
    dest.put_manifest(&manifest_for(&config, &[&l1, &l2, &l1]), V2S2, None)
        .await
        .unwrap();
    assert!(!target.exists(), "nothing visible before commit");
    Box::new(dest).commit().await.unwrap();
    assert_eq!(listing(dir.path()), vec!["out.tar"], "staging removed");

    let bytes = std::fs::read(&target).unwrap();
    let entries = entries(&bytes);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let h = |b: &[u8]| sha(b)[7..].to_string();
    assert_eq!(
        &names[..3],
        &[
            format!("{}.tar", h(&l1)),
            format!("{}.tar", h(&l2)),
            format!("{}.json", h(&config))
        ]
    );
    assert_eq!(names.len(), 3 + 3 * 3 + 2, "three legacy layer directories");
    assert_eq!(
        &names[names.len() - 2..],
        &["manifest.json", "repositories"]
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&entries[entries.len() - 2].3).unwrap();
    assert_eq!(
        manifest,
        serde_json::json!([{
            "Config": format!("{}.json", h(&config)),
            "RepoTags": ["example.com/app:latest", "docker.io/library/busybox:1"],
            "Layers": [format!("{}.tar", h(&l1)), format!("{}.tar", h(&l2)), format!("{}.tar", h(&l1))],
        }])
    );
    let repositories: serde_json::Value =
        serde_json::from_slice(&entries[entries.len() - 1].3).unwrap();
    let top = &names[names.len() - 3][..64];
    assert_eq!(
        repositories,
        serde_json::json!({"docker.io/library/busybox": {"1": top}, "example.com/app": {"latest": top}})
    );

    let src = DockerArchiveSource::new(&target, Some(dref("busybox:1")), None, None).unwrap();
    let (raw, mt) = src.manifest(None).await.unwrap();
    let m = Manifest::parse(&raw, &mt).unwrap();
    assert_eq!(m.config().unwrap().digest, sha(&config));
    let digests: Vec<String> = m.layers().iter().map(|l| l.digest.clone()).collect();
    assert_eq!(digests, vec![sha(&l1), sha(&l2), sha(&l1)]);
    assert_eq!(read_blob(&src, &sha(&l1)).await, l1);
    assert_eq!(read_blob(&src, &sha(&l2)).await, l2);
    assert_eq!(read_blob(&src, &sha(&config)).await, config);
}

/// Copies an archive skopeo wrote through scry's source and destination, the way the
/// copy engine would; the result must be the same bytes.
#[tokio::test]
async fn rewrites_skopeo_archive_byte_for_byte() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("src/transport/docker_archive/testdata/skopeo-umoci.tar");
    let src = DockerArchiveSource::new(&fixture, None, None, None).unwrap();
    let (raw, mt) = src.manifest(None).await.unwrap();
    let m = Manifest::parse(&raw, &mt).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("again.tar");
    let dest = DockerArchiveDestination::new(
        &target,
        Some(dref("a/b:c")),
        vec![dref("foo:bar"), dref("quay.io/x/y:z")],
    )
    .unwrap();
    for blob in m.layers().iter().chain([&m.config().unwrap()]) {
        let (s, _) = src.blob(blob).await.unwrap();
        let verified: BlobStream = Box::pin(VerifyingReader::new(s, &blob.digest, None, "blob"));
        dest.put_blob(verified, &unknown()).await.unwrap();
    }
    dest.put_manifest(&raw, &mt, None).await.unwrap();
    Box::new(dest).commit().await.unwrap();
    assert!(std::fs::read(&target).unwrap() == std::fs::read(&fixture).unwrap());
}

#[tokio::test]
async fn failed_blob_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.tar");
    let dest = DockerArchiveDestination::new(&target, None, vec![]).unwrap();
    let staging = listing(dir.path());
    assert_eq!(staging.len(), 1);
    assert!(staging[0].starts_with("out.tar.tmp-blobs-"), "{staging:?}");
    let staging = dir.path().join(&staging[0]);

    let layer = layer_tar(&[("a", b"payload".as_slice())]);
    // The stream fails only at its end: the digest check of the copy engine.
    let bad: BlobStream = Box::pin(VerifyingReader::new(
        std::io::Cursor::new(layer.clone()),
        &sha(b"something else"),
        None,
        "blob x",
    ));
    let e = dest.put_blob(bad, &unknown()).await.unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert!(listing(&staging).is_empty(), "no staged file left");
    assert!(dest
        .try_reuse_blob(&known(&layer), None)
        .await
        .unwrap()
        .is_none());
    // A stream whose bytes disagree with the announced digest is refused too.
    let e = dest
        .put_blob(stream(&layer), &known(b"other"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch, "{e}");
    assert!(listing(&staging).is_empty());

    dest.put_blob(stream(&layer), &unknown()).await.unwrap();
    assert_eq!(listing(&staging).len(), 1);
    drop(dest);
    assert!(
        listing(dir.path()).is_empty(),
        "abandoned destination removed its files"
    );
}

#[tokio::test]
async fn refusals_and_failed_commits_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("full.tar");
    std::fs::write(&existing, b"something").unwrap();
    let e = DockerArchiveDestination::new(&existing, None, vec![])
        .err()
        .unwrap();
    assert!(
        e.to_string()
            .ends_with("docker-archive doesn't support modifying existing images"),
        "{e}"
    );
    let e = DockerArchiveDestination::new(&dir.path().join("x"), None, vec![dref("busybox")])
        .err()
        .unwrap();
    assert!(e.to_string().contains("must be a tagged reference"), "{e}");
    std::fs::remove_file(&existing).unwrap();

    let target = dir.path().join("out.tar");
    let layer = layer_tar(&[("a", b"x".as_slice())]);
    let config = config_json(&[sha(&layer)]);
    let dest = DockerArchiveDestination::new(&target, Some(dref("a:b")), vec![]).unwrap();
    dest.put_blob(stream(&config), &unknown()).await.unwrap();
    let m = manifest_for(&config, &[&layer]);
    let e = dest.put_manifest(&m, V2S2, None).await.unwrap_err();
    assert!(e.to_string().contains("was not written"), "{e}");
    dest.put_blob(stream(&layer), &unknown()).await.unwrap();
    let e = dest
        .put_manifest(&m, "application/vnd.oci.image.manifest.v1+json", None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = dest
        .put_manifest(&m, V2S2, Some(&sha(&m)))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    let e = dest
        .put_signatures(&[b"sig".to_vec()], None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    dest.put_signatures(&[], None).await.unwrap();
    // Commit without a manifest fails and cleans up.
    let e = Box::new(dest).commit().await.unwrap_err();
    assert!(e.to_string().contains("no manifest was written"), "{e}");
    assert!(listing(dir.path()).is_empty(), "{:?}", listing(dir.path()));

    // An empty existing file is replaced, as skopeo allows.
    std::fs::write(&target, b"").unwrap();
    let dest = DockerArchiveDestination::new(&target, None, vec![]).unwrap();
    dest.put_blob(stream(&layer), &unknown()).await.unwrap();
    dest.put_blob(stream(&config), &unknown()).await.unwrap();
    dest.put_manifest(&m, V2S2, None).await.unwrap();
    Box::new(dest).commit().await.unwrap();
    assert_eq!(listing(dir.path()), vec!["out.tar"]);
    assert_eq!(super::list_tags(&target).unwrap(), vec!["@0"]);
}

#[tokio::test]
async fn writes_into_a_fifo_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let layer = layer_tar(&[("a", b"x".as_slice())]);
    let config = config_json(&[sha(&layer)]);
    let dest = DockerArchiveDestination::new(&fifo, Some(dref("a:b")), vec![]).unwrap();
    dest.put_blob(stream(&layer), &unknown()).await.unwrap();
    dest.put_blob(stream(&config), &unknown()).await.unwrap();
    dest.put_manifest(&manifest_for(&config, &[&layer]), V2S2, None)
        .await
        .unwrap();
    Box::new(dest).commit().await.unwrap();
    let bytes = reader.join().unwrap();
    let names: Vec<String> = entries(&bytes).into_iter().map(|e| e.0).collect();
    assert_eq!(names.last().unwrap(), "repositories");
    assert_eq!(listing(dir.path()), vec!["pipe"]);
}
