use super::*;
use crate::error::ErrorKind;
use crate::manifest::media_types;
use crate::transport::testutil::*;

async fn dest(path: &Path) -> Box<dyn ImageDestination> {
    Box::new(
        DirDestination::new(path, LayerCompression::Preserve)
            .await
            .unwrap(),
    )
}

#[tokio::test]
async fn round_trip_keeps_skopeo_layout_and_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("img");
    let img = image("a");
    let d = dest(&path).await;
    put_image(d.as_ref(), &img, None).await;
    d.put_signatures(&[b"sig one".to_vec(), b"sig two".to_vec()], None)
        .await
        .unwrap();
    d.commit().await.unwrap();

    let mut want = vec![
        "manifest.json".to_string(),
        "signature-1".into(),
        "signature-2".into(),
        "version".into(),
    ];
    want.extend(img.blobs().map(|b| b.info.digest[7..].to_string()));
    want.sort();
    assert_eq!(names(&path), want);
    let files = tree(&path);
    assert_eq!(files["version"], b"Directory Transport Version: 1.1\n");
    assert_eq!(files["manifest.json"], img.manifest);
    // Nothing else was left beside the image.
    assert_eq!(names(tmp.path()).len(), want.len() + 1);

    let src = DirSource::open(&path).await.unwrap();
    assert_eq!(src.describe(), format!("dir:{}", path.display()));
    check_image(&src, &img, None).await;
    assert_eq!(
        src.signatures(None).await.unwrap(),
        vec![b"sig one".to_vec(), b"sig two".to_vec()]
    );
}

#[tokio::test]
async fn index_children_and_their_signatures_use_hex_names() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("multi");
    let idx = index("m");
    let d = dest(&path).await;
    for img in &idx.images {
        put_image(d.as_ref(), img, Some(&img.digest)).await;
    }
    d.put_manifest(&idx.manifest, media_types::OCI_INDEX, None)
        .await
        .unwrap();
    let child = &idx.images[1].digest;
    d.put_signatures(&[b"child sig".to_vec()], Some(child))
        .await
        .unwrap();
    d.commit().await.unwrap();

    let files = tree(&path);
    for img in &idx.images {
        assert_eq!(
            files[&format!("{}.manifest.json", &img.digest[7..])],
            img.manifest
        );
    }
    assert!(files.contains_key(&format!("{}.signature-1", &child[7..])));
    let src = DirSource::open(&path).await.unwrap();
    let (top, mt) = src.manifest(None).await.unwrap();
    assert_eq!(&top[..], &idx.manifest[..]);
    assert_eq!(mt, media_types::OCI_INDEX);
    for img in &idx.images {
        check_image(&src, img, Some(&img.digest)).await;
    }
    assert_eq!(
        src.signatures(Some(child)).await.unwrap(),
        vec![b"child sig".to_vec()]
    );
    assert!(src.signatures(None).await.unwrap().is_empty());
}

/// Only the staging directory may exist beside `path`, holding no blob.
fn assert_no_blob_left(parent: &Path, path: &Path) {
    assert!(!path.exists());
    for (name, _) in tree(parent) {
        assert!(
            name.ends_with('/') || name.ends_with("/version"),
            "left behind: {name}"
        );
    }
}

#[tokio::test]
async fn failed_or_mismatched_blob_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("img");
    let img = image("b");
    let d = dest(&path).await;
    let layer = &img.layers[1];
    let e = d.put_blob(failing(layer), &layer.info).await.unwrap_err();
    assert!(e.to_string().contains("connection reset"), "{e}");
    assert_no_blob_left(tmp.path(), &path);
    let e = d.put_blob(corrupted(layer), &layer.info).await.unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert_no_blob_left(tmp.path(), &path);
    // The destination checks by itself too, without the engine's reader.
    let raw: BlobStream = Box::pin(std::io::Cursor::new(b"not the layer".to_vec()));
    let e = d.put_blob(raw, &layer.info).await.unwrap_err();
    assert!(e.to_string().contains("mismatch"), "{e}");
    assert_no_blob_left(tmp.path(), &path);
    drop(d);
    assert!(names(tmp.path()).is_empty());
}

#[tokio::test]
async fn unknown_digest_is_computed_and_names_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("img");
    let img = image("c");
    let d = dest(&path).await;
    let layer = &img.layers[0];
    let mut info = layer.info.clone();
    info.digest.clear();
    info.size = -1;
    let raw: BlobStream = Box::pin(std::io::Cursor::new(layer.bytes.clone()));
    let stored = d.put_blob(raw, &info).await.unwrap();
    assert_eq!(stored.digest, layer.info.digest);
    assert_eq!(stored.size, layer.info.size);
    assert_eq!(
        d.try_reuse_blob(&layer.info, None)
            .await
            .unwrap()
            .unwrap()
            .size,
        layer.info.size
    );
}

#[tokio::test]
async fn dropped_without_commit_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("img");
    let img = image("d");
    let d = dest(&path).await;
    put_image(d.as_ref(), &img, None).await;
    drop(d);
    assert!(names(tmp.path()).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_in_a_multi_threaded_runtime_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dest(&tmp.path().join("img")).await;
    put_image(d.as_ref(), &image("e"), None).await;
    drop(d);
    assert!(names(tmp.path()).is_empty());
}

#[tokio::test]
async fn refuses_an_unrelated_non_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("home");
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("thesis.tex"), b"precious").unwrap();
    let e = DirDestination::new(&path, LayerCompression::Preserve)
        .await
        .err()
        .unwrap();
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("not a containers image directory"), "{msg}");
    assert_eq!(names(tmp.path()), ["home/", "home/thesis.tex"]);
    // A file is refused too.
    let file = tmp.path().join("home/thesis.tex");
    assert!(DirDestination::new(&file, LayerCompression::Preserve)
        .await
        .is_err());
}

#[tokio::test]
async fn replaces_an_empty_directory_or_a_previous_image() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("img");
    std::fs::create_dir(&path).unwrap();
    let first = image("f1");
    write_image(dest(&path).await, &first).await;
    assert_eq!(tree(&path)["manifest.json"], first.manifest);
    std::fs::write(path.join("signature-1"), b"stale").unwrap();

    let second = image("f2");
    write_image(dest(&path).await, &second).await;
    let files = tree(&path);
    assert_eq!(files["manifest.json"], second.manifest);
    assert!(!files.contains_key("signature-1"));
    assert!(!files.contains_key(&first.layers[1].info.digest[7..]));
    // Only the image directory remains in the parent.
    assert_eq!(
        std::fs::read_dir(tmp.path()).unwrap().count(),
        1,
        "{:?}",
        names(tmp.path())
    );
}

#[tokio::test]
async fn compression_choice_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let d = DirDestination::new(&tmp.path().join("x"), LayerCompression::Decompress)
        .await
        .unwrap();
    assert_eq!(d.desired_layer_compression(), LayerCompression::Decompress);
}

#[tokio::test]
async fn missing_source_is_not_found() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("nothing");
    let e = DirSource::open(&path).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(
        e.to_string()
            .starts_with(&format!("opening dir:{}: ", path.display())),
        "{e}"
    );
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("manifest.json"), b"{}").unwrap();
    let src = DirSource::open(&path).await.unwrap();
    let info = image("g").config.info;
    let e = src.blob(&info).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains(&info.digest), "{e}");
}

#[tokio::test]
async fn oversized_manifest_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("manifest.json"),
        vec![b' '; MAX_MANIFEST_SIZE + 1],
    )
    .unwrap();
    let src = DirSource::open(tmp.path()).await.unwrap();
    let e = src.manifest(None).await.unwrap_err();
    assert!(
        e.to_string().contains("exceeded maximum allowed size"),
        "{e}"
    );
}

#[tokio::test]
async fn skopeo_reads_what_dir_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let ours = tmp.path().join("ours");
    let idx = index("s");
    write_index(dest(&ours).await, &idx).await;
    let out = tmp.path().join("out");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        &format!("dir:{}", ours.display()),
        &format!("dir:{}", out.display()),
    ]);
    assert_eq!(tree(&out), tree(&ours));
}
