//! Test helpers: hand-built archives (any entry names, links), layers, configs,
//! compression, and reading blobs back.

use std::io::Write;

use tokio::io::AsyncReadExt;

use super::writer::TarWriter;
use crate::manifest::sha256_digest;
use crate::transport::{BlobInfo, ImageSource};

pub fn sha(b: &[u8]) -> String {
    sha256_digest(b)
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub async fn zstd(data: &[u8]) -> Vec<u8> {
    let mut e = async_compression::tokio::write::ZstdEncoder::new(Vec::new());
    tokio::io::AsyncWriteExt::write_all(&mut e, data)
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::shutdown(&mut e).await.unwrap();
    e.into_inner()
}

/// A layer: a small tar of `files`, different for different inputs.
pub fn layer_tar(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// An image config with these diff IDs.
pub fn config_json(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Env": ["A=<b>&c"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap()
}

/// An archive built entry by entry, names taken verbatim.
pub struct ArchiveBuilder {
    tar: TarWriter<Vec<u8>>,
}

impl ArchiveBuilder {
    pub fn new() -> Self {
        ArchiveBuilder {
            tar: TarWriter::new(Vec::new()),
        }
    }

    pub fn file(mut self, name: &str, data: &[u8]) -> Self {
        self.tar.bytes(name, data).unwrap();
        self
    }

    pub fn symlink(mut self, name: &str, target: &str) -> Self {
        self.tar.symlink(name, target).unwrap();
        self
    }

    pub fn finish(self) -> Vec<u8> {
        self.tar.finish().unwrap()
    }
}

/// `manifest.json` for images given as (config path, tags, layer paths).
pub fn manifest_json(images: &[(&str, &[&str], &[&str])]) -> Vec<u8> {
    let list: Vec<serde_json::Value> = images
        .iter()
        .map(|(c, t, l)| serde_json::json!({"Config": c, "RepoTags": t, "Layers": l}))
        .collect();
    serde_json::to_vec(&list).unwrap()
}

pub fn blob_info(digest: &str) -> BlobInfo {
    BlobInfo {
        digest: digest.to_string(),
        size: -1,
        media_type: String::new(),
        annotations: None,
        urls: None,
        empty_layer: false,
    }
}

pub async fn read_blob(src: &dyn ImageSource, digest: &str) -> Vec<u8> {
    let (mut s, size) = src.blob(&blob_info(digest)).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    assert_eq!(size, Some(out.len() as u64), "announced size of {digest}");
    out
}

pub async fn read_range(src: &dyn ImageSource, digest: &str, r: std::ops::Range<u64>) -> Vec<u8> {
    let mut s = src.blob_range(&blob_info(digest), r).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    out
}

/// The archive's entries as (name, type flag, link target, data).
pub fn entries(archive: &[u8]) -> Vec<(String, u8, String, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let kind = e.header().entry_type().as_byte();
            let link = e
                .link_name()
                .unwrap()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (name, kind, link, data)
        })
        .collect()
}

/// A `blobs/sha256` archive whose three layers are stored plain, gzip- and
/// zstd-compressed; `extra` entries (name, bytes) come first.
pub struct CompressedLayersArchive {
    pub bytes: Vec<u8>,
    /// The uncompressed layer tars, in order.
    pub layers: [Vec<u8>; 3],
    pub config: Vec<u8>,
}

pub async fn compressed_layers_archive(extra: &[(&str, &[u8])]) -> CompressedLayersArchive {
    let plain = layer_tar(&[("a", b"plain".as_slice())]);
    let gz_src = layer_tar(&[("b", b"gzipped content ".repeat(4000).as_slice())]);
    let zst_src = layer_tar(&[("c", b"zstd content ".repeat(3000).as_slice())]);
    let gz = gzip(&gz_src);
    let zst = zstd(&zst_src).await;
    let config = config_json(&[sha(&plain), sha(&gz_src), sha(&zst_src)]);
    let blob = |b: &[u8]| format!("blobs/sha256/{}", &sha(b)[7..]);
    let manifest = manifest_json(&[(
        &blob(&config),
        &["example.com/app:v1"],
        &[&blob(&plain), &blob(&gz), &blob(&zst)],
    )]);
    let mut builder = ArchiveBuilder::new();
    for (name, data) in extra {
        builder = builder.file(name, data);
    }
    let bytes = builder
        .file(&blob(&plain), &plain)
        .file(&blob(&gz), &gz)
        .file(&blob(&zst), &zst)
        .file(&blob(&config), &config)
        .file("manifest.json", &manifest)
        .finish();
    CompressedLayersArchive {
        bytes,
        layers: [plain, gz_src, zst_src],
        config,
    }
}
