//! Reading archives: skopeo's own output, hand-built legacy and `blobs/sha256` layouts,
//! compressed archives and layers, image choice, hostile entry names and size limits.

use std::path::{Path, PathBuf};

use super::testutil::*;
use super::{list_tags, DockerArchiveSource};
use crate::error::ErrorKind;
use crate::manifest::{Manifest, MAX_CONFIG_SIZE};
use crate::reference::DockerReference;
use crate::transport::ImageSource;

const FIXTURE_DIR: &str = "src/transport/docker_archive/testdata";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURE_DIR)
        .join(name)
}

fn r(s: &str) -> Option<DockerReference> {
    Some(DockerReference::parse(s).unwrap().with_default_tag())
}

fn open(
    path: &Path,
    reference: Option<DockerReference>,
    index: Option<usize>,
) -> crate::Result<DockerArchiveSource> {
    DockerArchiveSource::new(path, reference, index, None)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

async fn parsed_manifest(src: &DockerArchiveSource) -> Manifest {
    let (bytes, mt) = src.manifest(None).await.unwrap();
    Manifest::parse(&bytes, &mt).unwrap()
}

#[tokio::test]
async fn reads_skopeo_archive_with_skopeo_manifest_bytes() {
    let want = std::fs::read(fixture("skopeo-umoci.manifest.json")).unwrap();
    let path = fixture("skopeo-umoci.tar");
    for (reference, index) in [
        (r("a/b:c"), None),
        (r("foo:bar"), None),
        (r("quay.io/x/y:z"), None),
        (None, Some(0)),
        (None, None),
    ] {
        let src = open(&path, reference.clone(), index).unwrap();
        let (bytes, mt) = src.manifest(None).await.unwrap();
        assert_eq!(bytes, want, "{reference:?} {index:?}");
        assert_eq!(mt, "application/vnd.docker.distribution.manifest.v2+json");
        assert_eq!(src.reference(), reference.as_ref());
    }
    let src = open(&path, r("a/b:c"), None).unwrap();
    assert_eq!(
        src.describe(),
        format!("docker-archive:{}:docker.io/a/b:c", path.display())
    );
    let m = parsed_manifest(&src).await;
    let cfg = m.config().unwrap();
    assert_eq!(sha(&read_blob(&src, &cfg.digest).await), cfg.digest);
    for l in m.layers() {
        let bytes = read_blob(&src, &l.digest).await;
        assert_eq!(sha(&bytes), l.digest);
        assert_eq!(bytes.len() as i64, l.size);
    }
    let e = src.blob(&blob_info(&sha(b"nope"))).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(src.manifest(Some(&cfg.digest)).await.is_err());
}

#[test]
fn list_tags_matches_skopeo() {
    let want: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture("skopeo-umoci.list-tags.json")).unwrap())
            .unwrap();
    let got = list_tags(&fixture("skopeo-umoci.tar")).unwrap();
    assert_eq!(serde_json::json!({ "Tags": got }), want);
}

/// A legacy `docker save` archive: `<id>/layer.tar`, `<hex>.json`, a repeated layer
/// linked to the first copy, names with `./`.
struct Legacy {
    bytes: Vec<u8>,
    layers: Vec<Vec<u8>>,
    config: Vec<u8>,
}

fn legacy_archive() -> Legacy {
    let l1 = layer_tar(&[("etc/one", b"first layer")]);
    let l2 = layer_tar(&[("etc/two", b"second layer, longer".repeat(100).as_slice())]);
    let ids = vec![sha(&l1), sha(&l2), sha(&l1)];
    let config = config_json(&ids);
    let config_name = format!("{}.json", &sha(&config)[7..]);
    let (d1, d2, d3) = ("1".repeat(64), "2".repeat(64), "3".repeat(64));
    let manifest = manifest_json(&[(
        &config_name,
        &["busybox:latest"],
        &[
            &format!("{d1}/layer.tar"),
            &format!("{d2}/layer.tar"),
            &format!("{d3}/layer.tar"),
        ],
    )]);
    let bytes = ArchiveBuilder::new()
        .file(&format!("./{d1}/layer.tar"), &l1)
        .file(&format!("{d1}/VERSION"), b"1.0")
        .file(&format!("{d2}//layer.tar"), &l2)
        .symlink(&format!("{d3}/layer.tar"), &format!("../{d1}/layer.tar"))
        .file(&config_name, &config)
        .file("./manifest.json", &manifest)
        .file("repositories", b"{}")
        .finish();
    Legacy {
        bytes,
        layers: vec![l1, l2],
        config,
    }
}

async fn check_legacy(src: &DockerArchiveSource, legacy: &Legacy) {
    let (bytes, _) = src.manifest(None).await.unwrap();
    let m = Manifest::parse(
        &bytes,
        "application/vnd.docker.distribution.manifest.v2+json",
    )
    .unwrap();
    let cfg = m.config().unwrap();
    assert_eq!(cfg.digest, sha(&legacy.config));
    assert_eq!(cfg.size, legacy.config.len() as i64);
    assert_eq!(
        cfg.media_type,
        "application/vnd.docker.container.image.v1+json"
    );
    let layers = m.layers();
    assert_eq!(layers.len(), 3);
    for (l, want) in layers
        .iter()
        .zip([&legacy.layers[0], &legacy.layers[1], &legacy.layers[0]])
    {
        assert_eq!(l.digest, sha(want));
        assert_eq!(l.size, want.len() as i64);
        assert_eq!(
            l.media_type,
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
        assert_eq!(&read_blob(src, &l.digest).await, want);
    }
    assert_eq!(read_blob(src, &cfg.digest).await, legacy.config);
}

#[tokio::test]
async fn reads_legacy_layout() {
    let dir = tempfile::tempdir().unwrap();
    let legacy = legacy_archive();
    let path = write(dir.path(), "legacy.tar", &legacy.bytes);
    let src = open(&path, r("busybox"), None).unwrap();
    check_legacy(&src, &legacy).await;
    assert_eq!(src.manifest_item().repo_tags, vec!["busybox:latest"]);
    // Ranges: config and a plain layer are read in place.
    let l2 = &legacy.layers[1];
    assert_eq!(read_range(&src, &sha(l2), 10..700).await, l2[10..700]);
    assert_eq!(
        read_range(&src, &sha(l2), 1000..1_000_000).await,
        l2[1000..]
    );
    assert_eq!(
        read_range(&src, &sha(&legacy.config), 2..9).await,
        legacy.config[2..9]
    );
}

#[tokio::test]
async fn reads_blobs_layout_with_compressed_layers() {
    let dir = tempfile::tempdir().unwrap();
    let archive =
        compressed_layers_archive(&[("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)]).await;
    let (bytes, config) = (archive.bytes, archive.config);
    let [plain, gz_src, zst_src] = archive.layers;
    let path = write(dir.path(), "new.tar", &bytes);
    let src = open(&path, None, None).unwrap();
    let m = parsed_manifest(&src).await;
    let layers = m.layers();
    for (l, want) in layers.iter().zip([&plain, &gz_src, &zst_src]) {
        assert_eq!(l.digest, sha(want), "the diff ID, not the stored digest");
        assert_eq!(l.size, want.len() as i64, "the uncompressed size");
        assert_eq!(&read_blob(&src, &l.digest).await, want);
    }
    assert_eq!(
        read_range(&src, &sha(&gz_src), 5000..6000).await,
        gz_src[5000..6000]
    );
    assert_eq!(
        read_range(&src, &sha(&zst_src), 0..100).await,
        zst_src[..100]
    );
    assert_eq!(m.config().unwrap().digest, sha(&config));
}

#[tokio::test]
async fn reads_gzip_and_zstd_compressed_archives() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let legacy = legacy_archive();
    let plain = write(dir.path(), "plain.tar", &legacy.bytes);
    let want = open(&plain, None, None)
        .unwrap()
        .manifest(None)
        .await
        .unwrap();
    for (name, packed) in [
        ("a.tar.gz", gzip(&legacy.bytes)),
        ("a.tar.zst", zstd(&legacy.bytes).await),
    ] {
        let path = write(dir.path(), name, &packed);
        let src = DockerArchiveSource::new(&path, None, None, Some(tmp.path())).unwrap();
        assert_eq!(src.manifest(None).await.unwrap(), want, "{name}");
        check_legacy(&src, &legacy).await;
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            1,
            "{name}: one temp copy"
        );
        drop(src);
        assert_eq!(
            std::fs::read_dir(tmp.path()).unwrap().count(),
            0,
            "{name}: removed"
        );
        assert_eq!(list_tags(&path).unwrap(), vec!["busybox:latest"], "{name}");
    }
    let xz = write(dir.path(), "a.tar.xz", b"\xfd7zXZ\x00rest");
    let e = open(&xz, None, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unsupported, "{e}");
}

/// Two images: one tagged with short names, one untagged.
fn two_images() -> Vec<u8> {
    let l1 = layer_tar(&[("x", b"1".as_slice())]);
    let l2 = layer_tar(&[("y", b"2".as_slice())]);
    let c1 = config_json(&[sha(&l1)]);
    let c2 = config_json(&[sha(&l2)]);
    let manifest = manifest_json(&[
        ("c1.json", &["busybox:1", "quay.io/a/b:2"], &["l1.tar"]),
        ("c2.json", &[], &["l2.tar"]),
    ]);
    ArchiveBuilder::new()
        .file("l1.tar", &l1)
        .file("l2.tar", &l2)
        .file("c1.json", &c1)
        .file("c2.json", &c2)
        .file("manifest.json", &manifest)
        .finish()
}

#[tokio::test]
async fn chooses_image_by_tag_or_index() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "two.tar", &two_images());
    let e = open(&path, None, None).unwrap_err();
    assert!(
        e.to_string()
            .ends_with("Unexpected tar manifest.json: expected 1 item, got 2"),
        "{e}"
    );
    let by_tag = open(&path, r("docker.io/library/busybox:1"), None).unwrap();
    let by_index = open(&path, None, Some(0)).unwrap();
    assert_eq!(
        by_tag.manifest(None).await.unwrap(),
        by_index.manifest(None).await.unwrap()
    );
    let second = open(&path, None, Some(1)).unwrap();
    assert_ne!(
        second.manifest(None).await.unwrap(),
        by_index.manifest(None).await.unwrap()
    );
    assert!(open(&path, r("quay.io/a/b:2"), None).is_ok());
    let e = open(&path, r("busybox:2"), None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "skopeo exits 1");
    assert!(
        e.to_string()
            .contains(r#"Tag "docker.io/library/busybox:2" not found"#),
        "{e}"
    );
    let e = open(&path, None, Some(2)).unwrap_err();
    assert!(
        e.to_string()
            .contains("Invalid source index @2, only 2 manifest items available"),
        "{e}"
    );
    assert_eq!(
        list_tags(&path).unwrap(),
        vec!["busybox:1", "quay.io/a/b:2", "@1"]
    );
}

#[test]
fn hostile_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = layer_tar(&[("x", b"1".as_slice())]);
    let c = config_json(&[sha(&l)]);
    let good_manifest = manifest_json(&[("c.json", &[], &["l.tar"])]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "dot-dot entry",
            ArchiveBuilder::new()
                .file("../evil", b"x")
                .file("l.tar", &l)
                .file("c.json", &c)
                .file("manifest.json", &good_manifest)
                .finish(),
        ),
        (
            "absolute entry",
            ArchiveBuilder::new()
                .file("/etc/evil", b"x")
                .file("l.tar", &l)
                .file("c.json", &c)
                .file("manifest.json", &good_manifest)
                .finish(),
        ),
        (
            "escaping symlink",
            ArchiveBuilder::new()
                .symlink("l.tar", "../../etc/passwd")
                .file("c.json", &c)
                .file("manifest.json", &good_manifest)
                .finish(),
        ),
        (
            "layer path with ..",
            ArchiveBuilder::new()
                .file("l.tar", &l)
                .file("c.json", &c)
                .file(
                    "manifest.json",
                    &manifest_json(&[("c.json", &[], &["x/../../l.tar"])]),
                )
                .finish(),
        ),
        (
            "absolute config path",
            ArchiveBuilder::new()
                .file("l.tar", &l)
                .file("c.json", &c)
                .file(
                    "manifest.json",
                    &manifest_json(&[("/c.json", &[], &["l.tar"])]),
                )
                .finish(),
        ),
    ];
    for (what, bytes) in cases {
        let path = write(dir.path(), "evil.tar", &bytes);
        let e = open(&path, None, None).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
        assert!(e.to_string().contains("invalid"), "{what}: {e}");
    }
    // The same archive with honest names opens.
    let ok = ArchiveBuilder::new()
        .file("l.tar", &l)
        .file("c.json", &c)
        .file("manifest.json", &good_manifest)
        .finish();
    assert!(open(&write(dir.path(), "ok.tar", &ok), None, None).is_ok());
}

#[test]
fn malformed_archives_fail_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let l = layer_tar(&[("x", b"1".as_slice())]);
    let c = config_json(&[sha(&l)]);
    let check = |bytes: Vec<u8>, want: &str| {
        let path = write(dir.path(), "bad.tar", &bytes);
        let e = open(&path, None, None).unwrap_err();
        assert!(e.to_string().contains(want), "want {want:?}, got: {e}");
    };
    let mut big = b"[".to_vec();
    big.extend(std::iter::repeat_n(
        b' ',
        super::MAX_ARCHIVE_MANIFEST_SIZE as usize,
    ));
    big.push(b']');
    check(
        ArchiveBuilder::new().file("manifest.json", &big).finish(),
        "exceeded maximum allowed size of 1048576 bytes",
    );
    let mut huge_config = config_json(&[sha(&l)]);
    huge_config.truncate(huge_config.len() - 1);
    huge_config.extend(format!(",\"pad\":\"{}\"}}", "x".repeat(MAX_CONFIG_SIZE)).as_bytes());
    check(
        ArchiveBuilder::new()
            .file("l.tar", &l)
            .file("c.json", &huge_config)
            .file(
                "manifest.json",
                &manifest_json(&[("c.json", &[], &["l.tar"])]),
            )
            .finish(),
        "exceeded maximum allowed size of 4194304 bytes",
    );
    check(
        ArchiveBuilder::new()
            .file("c.json", &c)
            .file(
                "manifest.json",
                &manifest_json(&[("c.json", &[], &["l.tar"])]),
            )
            .finish(),
        "\"l.tar\": file does not exist",
    );
    check(
        ArchiveBuilder::new()
            .file("l.tar", &l)
            .file("c.json", &c)
            .file(
                "manifest.json",
                &manifest_json(&[("c.json", &[], &["l.tar", "l.tar"])]),
            )
            .finish(),
        "Inconsistent layer count: 2 in manifest, 1 in config",
    );
    check(
        ArchiveBuilder::new()
            .file("c.json", br#"{"architecture":"amd64"}"#)
            .file("manifest.json", &manifest_json(&[("c.json", &[], &[])]))
            .finish(),
        "Invalid image config (rootFS is not set)",
    );
    check(
        ArchiveBuilder::new().file("other", b"x").finish(),
        "\"manifest.json\": file does not exist",
    );
    check(
        b"definitely not a tar archive".repeat(40),
        "reading the tar archive",
    );
    let e = open(Path::new("/nonexistent/x.tar"), None, None).unwrap_err();
    assert_eq!(e.exit_code(), 1, "skopeo exits 1: {e}");
    assert!(
        e.to_string()
            .contains(r#"opening file "/nonexistent/x.tar""#),
        "{e}"
    );
}

#[tokio::test]
async fn odd_but_legal_archives_and_deep_json_do_not_break_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let l = layer_tar(&[("x", b"1".as_slice())]);
    let c = config_json(&[sha(&l)]);
    // 200,000 nested arrays: refused by the JSON parser's depth limit, not a crash.
    let deep = "[".repeat(200_000);
    let path = write(
        dir.path(),
        "deep.tar",
        &ArchiveBuilder::new()
            .file("manifest.json", deep.as_bytes())
            .finish(),
    );
    let e = open(&path, None, None).unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
    // A layer whose name holds a newline: read like any other name.
    let path = write(
        dir.path(),
        "newline.tar",
        &ArchiveBuilder::new()
            .file("la\nyer.tar", &l)
            .file("c.json", &c)
            .file(
                "manifest.json",
                &manifest_json(&[("c.json", &[], &["la\nyer.tar"])]),
            )
            .finish(),
    );
    let src = open(&path, None, None).unwrap();
    assert_eq!(parsed_manifest(&src).await.layers().len(), 1);
    // Two entries of one name: the archive is read, one way every time.
    let other = config_json(&[]);
    let path = write(
        dir.path(),
        "dup.tar",
        &ArchiveBuilder::new()
            .file("l.tar", &l)
            .file("c.json", &other)
            .file("c.json", &c)
            .file(
                "manifest.json",
                &manifest_json(&[("c.json", &[], &["l.tar"])]),
            )
            .finish(),
    );
    let first = open(&path, None, None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let again = open(&path, None, None)
        .map(|_| ())
        .map_err(|e| e.to_string());
    assert_eq!(first, again);
}
