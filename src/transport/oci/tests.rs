use super::*;
use crate::error::ErrorKind;
use crate::manifest::media_types;
use crate::transport::testutil::*;
use crate::transport::{ImageDestination, LayerCompression};

async fn dest(path: &Path, name: Option<&str>) -> Box<dyn ImageDestination> {
    Box::new(
        OciDestination::new(path, name.map(str::to_string), None)
            .await
            .unwrap(),
    )
}

async fn source(path: &Path, name: Option<&str>, index: Option<usize>) -> Result<OciSource> {
    OciSource::open(path, name, index, None).await
}

fn index_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path.join("index.json")).unwrap()).unwrap()
}

fn blob_names(path: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(path.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

fn hexes<'a>(digests: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let mut v: Vec<String> = digests.into_iter().map(|d| d[7..].to_string()).collect();
    v.sort();
    v.dedup();
    v
}

#[tokio::test]
async fn round_trip_named_image() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let img = image("a");
    write_image(dest(&path, Some("v1.0")).await, &img).await;

    assert_eq!(
        std::fs::read_to_string(path.join("oci-layout")).unwrap(),
        r#"{"imageLayoutVersion": "1.0.0"}"#
    );
    let want = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"v1.0"}}}}]}}"#,
        media_types::OCI_MANIFEST,
        img.digest,
        img.manifest.len()
    );
    assert_eq!(
        std::fs::read_to_string(path.join("index.json")).unwrap(),
        want
    );
    let mut all: Vec<&String> = img.blobs().map(|b| &b.info.digest).collect();
    all.push(&img.digest);
    assert_eq!(blob_names(&path), hexes(all));

    for (name, index) in [(Some("v1.0"), None), (None, Some(0)), (None, None)] {
        let src = source(&path, name, index).await.unwrap();
        assert_eq!(src.manifest_digest(), img.digest);
        check_image(&src, &img, None).await;
    }
    let src = source(&path, Some("v1.0"), None).await.unwrap();
    assert_eq!(src.describe(), format!("oci:{}:v1.0", path.display()));
}

#[tokio::test]
async fn index_gets_one_entry_and_children_are_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let idx = index("m");
    write_index(dest(&path, Some("multi")).await, &idx).await;
    let doc = index_json(&path);
    let entries = doc["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["mediaType"], media_types::OCI_INDEX);
    assert_eq!(entries[0]["digest"], idx.digest);

    let src = source(&path, Some("multi"), None).await.unwrap();
    let (top, mt) = src.manifest(None).await.unwrap();
    assert_eq!(&top[..], &idx.manifest[..]);
    assert_eq!(mt, media_types::OCI_INDEX);
    for img in &idx.images {
        check_image(&src, img, Some(&img.digest)).await;
    }
}

#[tokio::test]
async fn choosing_among_several_images() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let (a, b, c) = (image("a"), image("b"), image("c"));
    write_image(dest(&path, Some("a")).await, &a).await;
    write_image(dest(&path, Some("b")).await, &b).await;
    write_image(dest(&path, None).await, &c).await;

    let e = source(&path, None, None).await.err().unwrap();
    let msg = e.to_string();
    assert!(msg.contains("more than one image"), "{msg}");
    assert!(msg.contains(r#""a", "b", @2"#), "{msg}");

    let e = source(&path, Some("nope"), None).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(
        e.to_string(),
        format!(
            "opening oci:{p}:nope: no image named \"nope\" in {p}/index.json",
            p = path.display()
        )
    );
    let e = source(&path, None, Some(3)).await.err().unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("@3"), "{e}");

    assert_eq!(
        source(&path, Some("b"), None)
            .await
            .unwrap()
            .manifest_digest(),
        b.digest
    );
    assert_eq!(
        source(&path, None, Some(2))
            .await
            .unwrap()
            .manifest_digest(),
        c.digest
    );

    let e = source(&tmp.path().join("none"), Some("x"), None)
        .await
        .err()
        .unwrap();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("index.json"), "{e}");
}

#[tokio::test]
async fn same_name_replaces_and_collects_unused_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let (old, new) = (image("old"), image("new"));
    write_image(dest(&path, Some("latest")).await, &old).await;
    write_image(dest(&path, Some("latest")).await, &new).await;
    let doc = index_json(&path);
    let entries = doc["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["digest"], new.digest);
    // The old manifest, config and own layer are gone; the shared layer stays.
    let mut want: Vec<&String> = new.blobs().map(|b| &b.info.digest).collect();
    want.push(&new.digest);
    assert_eq!(blob_names(&path), hexes(want));

    // An unnamed image written twice is one entry.
    write_image(dest(&path, None).await, &old).await;
    write_image(dest(&path, None).await, &old).await;
    assert_eq!(index_json(&path)["manifests"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn failed_blob_and_uncommitted_image_leave_nothing_visible() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let img = image("f");
    let d = dest(&path, Some("x")).await;
    let layer = &img.layers[1];
    let e = d.put_blob(failing(layer), &layer.info).await.unwrap_err();
    assert!(e.to_string().contains("connection reset"), "{e}");
    let e = d.put_blob(corrupted(layer), &layer.info).await.unwrap_err();
    assert!(e.to_string().contains("digest mismatch"), "{e}");
    assert!(blob_names(&path).is_empty());
    assert!(d.try_reuse_blob(&layer.info, None).await.unwrap().is_none());

    put_image(d.as_ref(), &img, None).await;
    drop(d);
    assert!(!path.join("index.json").exists());
    assert!(source(&path, Some("x"), None).await.is_err());

    // With an existing image, an abandoned copy leaves index.json as it was.
    write_image(dest(&path, Some("kept")).await, &img).await;
    let before = std::fs::read(path.join("index.json")).unwrap();
    let d = dest(&path, Some("other")).await;
    put_image(d.as_ref(), &image("g"), None).await;
    drop(d);
    assert_eq!(std::fs::read(path.join("index.json")).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_keep_every_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let mut tasks = Vec::new();
    for i in 0..12 {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let img = image(&format!("w{i}"));
            let d = dest(&path, Some(&format!("w{i}"))).await;
            put_image(d.as_ref(), &img, None).await;
            d.commit().await.unwrap();
            img.digest
        }));
    }
    let mut digests = Vec::new();
    for t in tasks {
        digests.push(t.await.unwrap());
    }
    let doc = index_json(&path);
    let entries = doc["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 12);
    for (i, d) in digests.iter().enumerate() {
        let src = source(&path, Some(&format!("w{i}")), None).await.unwrap();
        assert_eq!(src.manifest_digest(), d);
    }
}

#[tokio::test]
async fn delete_removes_the_entry_and_its_unshared_blobs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let (a, b) = (image("a"), image("b"));
    let idx = index("i");
    write_image(dest(&path, Some("a")).await, &a).await;
    write_image(dest(&path, Some("b")).await, &b).await;
    write_index(dest(&path, Some("multi")).await, &idx).await;

    delete(&path, Some("a"), None, None).await.unwrap();
    let mut want: Vec<&String> = b.blobs().map(|x| &x.info.digest).collect();
    want.push(&b.digest);
    want.push(&idx.digest);
    for img in &idx.images {
        want.extend(img.blobs().map(|x| &x.info.digest));
        want.push(&img.digest);
    }
    assert_eq!(blob_names(&path), hexes(want.clone()));
    assert!(source(&path, Some("a"), None).await.is_err());

    delete(&path, Some("multi"), None, None).await.unwrap();
    let mut want: Vec<&String> = b.blobs().map(|x| &x.info.digest).collect();
    want.push(&b.digest);
    assert_eq!(blob_names(&path), hexes(want));
    check_image(&source(&path, None, None).await.unwrap(), &b, None).await;

    let e = delete(&path, Some("multi"), None, None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = delete(&tmp.path().join("nowhere"), Some("x"), None, None)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);

    delete(&path, None, None, None).await.unwrap();
    assert!(blob_names(&path).is_empty());
    assert_eq!(index_json(&path)["manifests"], serde_json::json!([]));
}

#[tokio::test]
async fn shared_blob_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let shared = tmp.path().join("shared");
    let img = image("s");
    let d = OciDestination::new(&path, Some("s".into()), Some(shared.clone()))
        .await
        .unwrap();
    write_image(Box::new(d), &img).await;
    assert!(!path.join("blobs").exists());
    let shared_count = || std::fs::read_dir(shared.join("sha256")).unwrap().count();
    assert_eq!(shared_count(), 4);
    let src = OciSource::open(&path, Some("s"), None, Some(&shared))
        .await
        .unwrap();
    check_image(&src, &img, None).await;
    // Without the shared directory the blobs are not there.
    let plain = source(&path, Some("s"), None).await.unwrap();
    assert_eq!(
        plain.manifest(None).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    // Deleting keeps shared blobs (other layouts may use them).
    delete(&path, Some("s"), None, Some(&shared)).await.unwrap();
    assert_eq!(shared_count(), 4);
}

#[tokio::test]
async fn child_manifest_digest_must_match() {
    let tmp = tempfile::tempdir().unwrap();
    let d = dest(&tmp.path().join("l"), None).await;
    let img = image("x");
    let wrong = image("y").digest;
    let e = d
        .put_manifest(&img.manifest, media_types::OCI_MANIFEST, Some(&wrong))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::DigestMismatch);
    let e = d.commit().await.unwrap_err();
    assert!(e.to_string().contains("no manifest"), "{e}");
}

#[tokio::test]
async fn layers_are_compressed_unless_uncompressed_ones_are_accepted() {
    let tmp = tempfile::tempdir().unwrap();
    let d = OciDestination::new(tmp.path(), None, None).await.unwrap();
    assert_eq!(d.desired_layer_compression(), LayerCompression::Compress);
    let d = d.with_layer_compression(LayerCompression::Preserve);
    assert_eq!(d.desired_layer_compression(), LayerCompression::Preserve);
}

#[tokio::test]
async fn skopeo_reads_what_oci_writes_and_the_reverse() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let idx = index("k");
    write_index(dest(&path, Some("multi")).await, &idx).await;
    let dir = tmp.path().join("dir");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        &format!("oci:{}:multi", path.display()),
        &format!("dir:{}", dir.display()),
    ]);
    let files = tree(&dir);
    assert_eq!(files["manifest.json"], idx.manifest);
    for img in &idx.images {
        assert_eq!(
            files[&format!("{}.manifest.json", &img.digest[7..])],
            img.manifest
        );
        for b in img.blobs() {
            assert_eq!(files[&b.info.digest[7..]], b.bytes);
        }
    }
    // And scry reads the layout skopeo writes.
    let out = tmp.path().join("out");
    skopeo(&[
        "copy",
        "-q",
        "--all",
        "--dest-oci-accept-uncompressed-layers",
        &format!("dir:{}", dir.display()),
        &format!("oci:{}:copied", out.display()),
    ]);
    let src = source(&out, Some("copied"), None).await.unwrap();
    let (top, _) = src.manifest(None).await.unwrap();
    assert_eq!(&top[..], &idx.manifest[..]);
    for img in &idx.images {
        check_image(&src, img, Some(&img.digest)).await;
    }
}

#[tokio::test]
async fn abandoned_destination_removes_only_what_it_created() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("layout");
    let a = image("kept");
    write_image(dest(&path, Some("a")).await, &a).await;
    let before = tree(&path);

    // Another image, plus a's blobs written again (not reused): only the new ones go.
    let b = image("abandoned");
    let d = dest(&path, Some("b")).await;
    put_image(d.as_ref(), &b, None).await;
    for blob in a.blobs() {
        d.put_blob(verified(blob), &blob.info).await.unwrap();
    }
    assert_ne!(tree(&path), before, "premise: b's blobs were written");
    drop(d);
    assert_eq!(tree(&path), before);
    check_image(&source(&path, Some("a"), None).await.unwrap(), &a, None).await;

    // A blob created by one writer and committed by another stays when the first
    // gives up.
    let c = image("shared");
    let first = dest(&path, Some("first")).await;
    put_image(first.as_ref(), &c, None).await;
    let second = dest(&path, Some("second")).await;
    put_image(second.as_ref(), &c, None).await;
    second.commit().await.unwrap();
    drop(first);
    check_image(
        &source(&path, Some("second"), None).await.unwrap(),
        &c,
        None,
    )
    .await;
}

#[tokio::test]
async fn abandoned_destination_in_a_new_directory_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("new/parent/layout");
    let d = dest(&path, Some("t")).await;
    put_image(d.as_ref(), &image("gone"), None).await;
    assert!(path.join("blobs/sha256").is_dir());
    drop(d);
    assert!(!tmp.path().join("new").exists(), "{:?}", names(tmp.path()));
}
