use super::*;
use crate::error::ErrorKind;
use crate::transport::testutil::*;

/// The entry names as GNU tar lists them (directories end in `/`).
fn archive_names(path: &Path) -> Vec<String> {
    let out = std::process::Command::new("tar")
        .arg("-tf")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

async fn dest(path: &Path, name: Option<&str>, staging: &Path) -> Box<dyn ImageDestination> {
    Box::new(
        OciArchiveDestination::new(path, name.map(str::to_string), Some(staging))
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn round_trip_through_a_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let out = tmp.path().join("image.tar");
    let img = image("a");
    write_image(dest(&out, Some("v1"), staging.path()).await, &img).await;
    assert!(names(staging.path()).is_empty(), "staging left behind");
    assert_eq!(names(tmp.path()), ["image.tar"]);

    let mut want = vec![
        "blobs/".to_string(),
        "blobs/sha256/".into(),
        "index.json".into(),
        "oci-layout".into(),
    ];
    let mut blobs: Vec<String> = img
        .blobs()
        .map(|b| format!("blobs/sha256/{}", &b.info.digest[7..]))
        .chain([format!("blobs/sha256/{}", &img.digest[7..])])
        .collect();
    blobs.sort();
    want.splice(2..2, blobs);
    assert_eq!(archive_names(&out), want);

    for (name, index) in [(Some("v1"), None), (None, None), (None, Some(0))] {
        let src = OciArchiveSource::open(&out, name, index, Some(staging.path()))
            .await
            .unwrap();
        check_image(&src, &img, None).await;
        assert!(!names(staging.path()).is_empty());
        drop(src);
        assert!(names(staging.path()).is_empty(), "extraction left behind");
    }
    let src = OciArchiveSource::open(&out, Some("v1"), None, Some(staging.path()))
        .await
        .unwrap();
    assert_eq!(src.describe(), format!("oci-archive:{}:v1", out.display()));

    let e = OciArchiveSource::open(&out, Some("v2"), None, Some(staging.path()))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "opening oci-archive:{p}:v2: no image named \"v2\" in {p}",
            p = out.display()
        )
    );
}

#[tokio::test]
async fn index_round_trip_and_replacing_an_archive() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let out = tmp.path().join("multi.tar");
    write_image(dest(&out, None, staging.path()).await, &image("old")).await;
    let idx = index("i");
    write_index(dest(&out, None, staging.path()).await, &idx).await;
    let src = OciArchiveSource::open(&out, None, None, Some(staging.path()))
        .await
        .unwrap();
    let (top, _) = src.manifest(None).await.unwrap();
    assert_eq!(&top[..], &idx.manifest[..]);
    for img in &idx.images {
        check_image(&src, img, Some(&img.digest)).await;
    }
}

#[tokio::test]
async fn dropped_or_failed_destination_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let staging = tempfile::tempdir().unwrap();
    let out = tmp.path().join("image.tar");
    let img = image("d");
    let d = dest(&out, Some("x"), staging.path()).await;
    let layer = &img.layers[0];
    assert!(d.put_blob(corrupted(layer), &layer.info).await.is_err());
    put_image(d.as_ref(), &img, None).await;
    drop(d);
    assert!(names(tmp.path()).is_empty());
    assert!(names(staging.path()).is_empty());
}

/// Name, type, link target, content.
type RawEntry<'a> = (&'a str, tar::EntryType, &'a str, &'a [u8]);

/// A tar with entries written byte for byte (the tar crate refuses to build these).
fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, content) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        h.as_old_mut().linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o644);
        h.set_size(content.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(content);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

#[tokio::test]
async fn hostile_archives_are_refused_without_writing_outside() {
    use tar::EntryType::*;
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[RawEntry], &str)] = &[
        (
            "parent",
            &[("../x", Regular, "", b"evil")],
            "points outside",
        ),
        (
            "nested-parent",
            &[("blobs/../../x", Regular, "", b"evil")],
            "points outside",
        ),
        ("absolute", &[("/tmp/x", Regular, "", b"evil")], "absolute"),
        (
            "symlink",
            &[
                ("blobs", Symlink, "/etc", b""),
                ("blobs/x", Regular, "", b"e"),
            ],
            "unsupported type",
        ),
        (
            "hardlink-out",
            &[("x", Link, "../../etc/passwd", b"")],
            "points outside",
        ),
        (
            "hardlink-missing",
            &[("x", Link, "nothing-here", b"")],
            "not a file extracted before it",
        ),
        ("device", &[("dev", Char, "", b"")], "unsupported type"),
        ("fifo", &[("pipe", Fifo, "", b"")], "unsupported type"),
    ];
    for (label, entries, expect) in cases {
        let staging = tmp.path().join(format!("staging-{label}"));
        fs::create_dir(&staging).unwrap();
        let archive = tmp.path().join(format!("{label}.tar"));
        fs::write(&archive, raw_tar(entries)).unwrap();
        let e = OciArchiveSource::open(&archive, None, None, Some(&staging))
            .await
            .err()
            .unwrap_or_else(|| panic!("{label}: accepted"));
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{label}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(expect), "{label}: {msg}");
        assert!(
            msg.starts_with(&format!("opening oci-archive:{}", archive.display())),
            "{label}: {msg}"
        );
        assert!(names(&staging).is_empty(), "{label}: {:?}", names(&staging));
    }
    assert!(!tmp.path().join("x").exists());
}

#[tokio::test]
async fn accepts_gnu_tar_of_a_layout_with_dot_prefixes_and_hard_links() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let img = image("g");
    write_image(
        Box::new(
            crate::transport::oci::OciDestination::new(&layout, Some("g".into()), None)
                .await
                .unwrap(),
        ),
        &img,
    )
    .await;
    // A duplicate of a blob as a hard link: extraction copies it.
    fs::hard_link(layout.join("oci-layout"), layout.join("extra")).unwrap();
    let archive = tmp.path().join("g.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    assert!(archive_names(&archive).iter().all(|n| n.starts_with("./")));
    let src = OciArchiveSource::open(&archive, Some("g"), None, Some(tmp.path()))
        .await
        .unwrap();
    check_image(&src, &img, None).await;
}

#[tokio::test]
async fn destination_in_a_missing_directory_fails_early() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("no/such/x.tar");
    let e = OciArchiveDestination::new(&path, None, Some(tmp.path()))
        .await
        .err()
        .unwrap();
    assert!(e.to_string().contains("no/such"), "{e}");
    assert!(names(tmp.path()).is_empty());
}

#[tokio::test]
async fn missing_archive_is_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let e = OciArchiveSource::open(&tmp.path().join("no.tar"), None, None, Some(tmp.path()))
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(names(tmp.path()).is_empty());
}

#[tokio::test]
async fn skopeo_reads_what_oci_archive_writes_and_the_reverse() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("ours.tar");
    let img = image("k");
    write_image(dest(&out, Some("k"), tmp.path()).await, &img).await;
    let dir = tmp.path().join("dir");
    skopeo(&[
        "copy",
        "-q",
        &format!("oci-archive:{}:k", out.display()),
        &format!("dir:{}", dir.display()),
    ]);
    let files = tree(&dir);
    assert_eq!(files["manifest.json"], img.manifest);
    for b in img.blobs() {
        assert_eq!(files[&b.info.digest[7..]], b.bytes);
    }
    let theirs = tmp.path().join("theirs.tar");
    skopeo(&[
        "copy",
        "-q",
        "--dest-oci-accept-uncompressed-layers",
        &format!("dir:{}", dir.display()),
        &format!("oci-archive:{}:t", theirs.display()),
    ]);
    let src = OciArchiveSource::open(&theirs, Some("t"), None, Some(tmp.path()))
        .await
        .unwrap();
    check_image(&src, &img, None).await;
}
