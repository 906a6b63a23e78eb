//! Test helpers for the local transports: small hand-built images (real tar layers, a
//! matching OCI config), streams that fail, a driver that writes an image through a
//! destination in contract order, and directory listings to compare trees.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use crate::digest::VerifyingReader;
use crate::manifest::{media_types, sha256_digest};
use crate::transport::{BlobInfo, BlobStream, ImageDestination, ImageSource};

pub struct Blob {
    pub bytes: Vec<u8>,
    pub info: BlobInfo,
}

pub fn blob(bytes: Vec<u8>, media_type: &str) -> Blob {
    let info = BlobInfo {
        digest: sha256_digest(&bytes),
        size: bytes.len() as i64,
        media_type: media_type.to_string(),
        annotations: None,
        urls: None,
        empty_layer: false,
    };
    Blob { bytes, info }
}

pub struct TestImage {
    pub config: Blob,
    pub layers: Vec<Blob>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

impl TestImage {
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(&self.layers)
    }
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut h = tar::Header::new_ustar();
        h.set_size(content.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *content).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// An OCI image with two layers: `shared` (identical across seeds) and one made from
/// `seed`, gzip-compressed.
pub fn image(seed: &str) -> TestImage {
    image_for(seed, "amd64")
}

pub fn image_for(seed: &str, arch: &str) -> TestImage {
    let shared = tar_of(&[("etc/shared", b"same in every test image\n")]);
    let own_tar = tar_of(&[("hello", format!("hello from {seed}\n").as_bytes())]);
    let own = gzip(&own_tar);
    let diff_ids = [sha256_digest(&shared), sha256_digest(&own_tar)];
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Env": [format!("SEED={seed}")]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config = blob(config, media_types::OCI_CONFIG);
    let layers = vec![
        blob(shared, media_types::OCI_LAYER_TAR),
        blob(own, media_types::OCI_LAYER_GZIP),
    ];
    let desc = |b: &Blob| serde_json::json!({"mediaType": b.info.media_type, "digest": b.info.digest, "size": b.info.size});
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_MANIFEST,
        "config": desc(&config),
        "layers": layers.iter().map(desc).collect::<Vec<_>>(),
    }))
    .unwrap();
    let digest = sha256_digest(&manifest);
    TestImage {
        config,
        layers,
        manifest,
        digest,
    }
}

pub struct TestIndex {
    pub images: Vec<TestImage>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

/// An OCI index of two images (amd64, arm64).
pub fn index(seed: &str) -> TestIndex {
    let images = vec![
        image_for(&format!("{seed}-amd64"), "amd64"),
        image_for(&format!("{seed}-arm64"), "arm64"),
    ];
    let entries: Vec<_> = images
        .iter()
        .zip(["amd64", "arm64"])
        .map(|(i, arch)| {
            serde_json::json!({
                "mediaType": media_types::OCI_MANIFEST,
                "digest": i.digest,
                "size": i.manifest.len(),
                "platform": {"architecture": arch, "os": "linux"},
            })
        })
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": entries,
    }))
    .unwrap();
    let digest = sha256_digest(&manifest);
    TestIndex {
        images,
        manifest,
        digest,
    }
}

/// The bytes as a source would return them, checked as the copy engine does.
pub fn verified(b: &Blob) -> BlobStream {
    let r = std::io::Cursor::new(b.bytes.clone());
    Box::pin(VerifyingReader::new(
        r,
        &b.info.digest,
        Some(b.bytes.len() as u64),
        format!("blob {}", b.info.digest),
    ))
}

/// Bytes that claim to be `b` but differ in their last byte, checked as the copy
/// engine does: the stream fails at its end.
pub fn corrupted(b: &Blob) -> BlobStream {
    let mut bytes = b.bytes.clone();
    *bytes.last_mut().unwrap() ^= 0xff;
    Box::pin(VerifyingReader::new(
        std::io::Cursor::new(bytes),
        &b.info.digest,
        Some(b.bytes.len() as u64),
        format!("blob {}", b.info.digest),
    ))
}

/// Half of `b`, then a read error.
pub fn failing(b: &Blob) -> BlobStream {
    let half = Bytes::copy_from_slice(&b.bytes[..b.bytes.len() / 2]);
    let items: Vec<std::io::Result<Bytes>> = vec![
        Ok(half),
        Err(std::io::Error::other("connection reset by peer")),
    ];
    Box::pin(tokio_util::io::StreamReader::new(
        futures_util::stream::iter(items),
    ))
}

/// Writes `img`'s blobs (skipping those the destination already has) and its manifest
/// as `instance`.
pub async fn put_image(dest: &dyn ImageDestination, img: &TestImage, instance: Option<&str>) {
    for b in img.blobs() {
        if dest.try_reuse_blob(&b.info, None).await.unwrap().is_none() {
            let stored = dest.put_blob(verified(b), &b.info).await.unwrap();
            assert_eq!(stored.digest, b.info.digest);
            assert_eq!(stored.size, b.info.size);
        }
    }
    dest.put_manifest(&img.manifest, media_types::OCI_MANIFEST, instance)
        .await
        .unwrap();
}

/// Writes and commits one image.
pub async fn write_image(dest: Box<dyn ImageDestination>, img: &TestImage) {
    put_image(dest.as_ref(), img, None).await;
    dest.commit().await.unwrap();
}

/// Writes and commits an index with its images.
pub async fn write_index(dest: Box<dyn ImageDestination>, idx: &TestIndex) {
    for img in &idx.images {
        put_image(dest.as_ref(), img, Some(&img.digest)).await;
    }
    dest.put_manifest(&idx.manifest, media_types::OCI_INDEX, None)
        .await
        .unwrap();
    dest.commit().await.unwrap();
}

pub async fn read_blob(src: &dyn ImageSource, info: &BlobInfo) -> Vec<u8> {
    let (mut s, len) = src.blob(info).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert_eq!(len, Some(out.len() as u64));
    out
}

/// Checks that `src` returns `img` unchanged (top manifest when `instance` is None).
pub async fn check_image(src: &dyn ImageSource, img: &TestImage, instance: Option<&str>) {
    let (m, mt) = src.manifest(instance).await.unwrap();
    assert_eq!(&m[..], &img.manifest[..]);
    assert_eq!(mt, media_types::OCI_MANIFEST);
    for b in img.blobs() {
        assert_eq!(read_blob(src, &b.info).await, b.bytes, "{}", b.info.digest);
    }
    if src.supports_blob_range() {
        let b = &img.layers[1];
        let mut s = src.blob_range(&b.info, 3..10).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        assert_eq!(out, &b.bytes[3..10]);
    }
}

/// Every file and directory under `root` (relative names; directories end in `/`),
/// with file contents.
pub fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The names in `tree(root)`.
pub fn names(root: &Path) -> Vec<String> {
    tree(root).into_keys().collect()
}

/// Runs skopeo with `args`, panicking with its stderr when it fails.
pub fn skopeo(args: &[&str]) {
    let out = std::process::Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo is installed");
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
