//! Deterministic image construction in memory: layer tars from entry lists (fixed
//! mtime, uid/gid 0), gzip, OCI or Docker schema2 configs and manifests, OCI indexes
//! and Docker manifest lists — plus the expected root filesystem after applying the
//! layers (whiteouts included), which tests compare against unpacked output.
//!
//! Nothing here uses scry: this is the oracle side.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;

use serde_json::{json, Value};

use super::push::{sha256_digest, Client};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// mtime of every tar entry (2020-09-13T12:26:40Z).
pub const MTIME: u64 = 1_600_000_000;
/// `created` of every fixture config and history entry.
pub const CREATED: &str = "2024-01-02T03:04:05Z";

/// One entry of a layer tar. Paths are relative, without a leading `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
    /// Deletes `path` (and anything below it) from lower layers: a `.wh.` file.
    Whiteout {
        path: String,
    },
}

impl Entry {
    pub fn dir(path: &str) -> Entry {
        Entry::Dir {
            path: path.into(),
            mode: 0o755,
        }
    }
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.into(),
            mode: 0o644,
            data: data.into(),
        }
    }
    pub fn exec(path: &str, data: impl Into<Vec<u8>>) -> Entry {
        Entry::File {
            path: path.into(),
            mode: 0o755,
            data: data.into(),
        }
    }
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }
    pub fn whiteout(path: &str) -> Entry {
        Entry::Whiteout { path: path.into() }
    }
}

/// A node of an expected root filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir { mode: u32 },
    File { mode: u32, data: Vec<u8> },
    Symlink { target: String },
}

/// The root filesystem an image unpacks to, keyed by relative path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rootfs {
    pub nodes: BTreeMap<String, Node>,
}

impl Rootfs {
    /// Applies one layer on top (OCI layer semantics, whiteouts included).
    pub fn apply(&mut self, entries: &[Entry]) {
        for e in entries {
            match e {
                Entry::Whiteout { path } => {
                    let prefix = format!("{path}/");
                    self.nodes
                        .retain(|p, _| p != path && !p.starts_with(&prefix));
                }
                Entry::Dir { path, mode } => {
                    self.nodes.insert(path.clone(), Node::Dir { mode: *mode });
                }
                Entry::File { path, mode, data } => {
                    self.nodes.insert(
                        path.clone(),
                        Node::File {
                            mode: *mode,
                            data: data.clone(),
                        },
                    );
                }
                Entry::Symlink { path, target } => {
                    self.nodes.insert(
                        path.clone(),
                        Node::Symlink {
                            target: target.clone(),
                        },
                    );
                }
            }
        }
    }

    /// Every path, sorted.
    pub fn paths(&self) -> Vec<String> {
        self.nodes.keys().cloned().collect()
    }

    /// Regular files with their contents, sorted by path.
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        self.nodes
            .iter()
            .filter_map(|(p, n)| match n {
                Node::File { data, .. } => Some((p.clone(), data.clone())),
                _ => None,
            })
            .collect()
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path.trim_start_matches('/'))
    }

    /// The tree under `root` as it is on disk (modes, data, symlink targets).
    pub fn read(root: &std::path::Path) -> Rootfs {
        fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Rootfs) {
            for e in std::fs::read_dir(dir).unwrap() {
                let e = e.unwrap();
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                let md = std::fs::symlink_metadata(&p).unwrap();
                let mode = md.permissions().mode() & 0o7777;
                let node = if md.file_type().is_symlink() {
                    Node::Symlink {
                        target: std::fs::read_link(&p)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned(),
                    }
                } else if md.is_dir() {
                    walk(root, &p, out);
                    Node::Dir { mode }
                } else {
                    Node::File {
                        mode,
                        data: std::fs::read(&p).unwrap(),
                    }
                };
                out.nodes.insert(rel, node);
            }
        }
        let mut out = Rootfs::default();
        walk(root, root, &mut out);
        out
    }
}

/// A content-addressed blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    pub data: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.into(),
            digest: sha256_digest(&data),
            size: data.len() as u64,
            data,
        }
    }

    /// `{"mediaType", "digest", "size"}`.
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// A compressed layer with its uncompressed form.
#[derive(Clone, Debug)]
pub struct Layer {
    pub blob: Blob,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: String,
    pub tar: Vec<u8>,
    pub entries: Vec<Entry>,
    /// The history `created_by` of this layer.
    pub created_by: String,
}

/// Builds an uncompressed layer tar: ustar/GNU headers, mtime [`MTIME`], uid/gid 0.
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.mode(tar::HeaderMode::Deterministic);
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        match e {
            Entry::Dir { path, mode } => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .unwrap();
            }
            Entry::File { path, mode, data } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, data.as_slice()).unwrap();
            }
            Entry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target).unwrap();
            }
            Entry::Whiteout { path } => {
                let (dir, name) = match path.rsplit_once('/') {
                    Some((d, n)) => (format!("{d}/"), n),
                    None => (String::new(), path.as_str()),
                };
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(0o644);
                h.set_size(0);
                b.append_data(&mut h, format!("{dir}.wh.{name}"), std::io::empty())
                    .unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// gzip with a zero header mtime and fixed level, so output is reproducible.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::new(6));
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Deterministic incompressible bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Manifest flavour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Oci,
    Docker,
}

impl Format {
    pub fn manifest_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }
    pub fn index_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_LIST,
        }
    }
    pub fn config_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }
    pub fn layer_type(self) -> &'static str {
        match self {
            Format::Oci => OCI_LAYER_GZIP,
            Format::Docker => DOCKER_LAYER_GZIP,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn linux(architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: "linux".into(),
            architecture: architecture.into(),
            variant: variant.map(str::to_string),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut v = json!({"architecture": self.architecture, "os": self.os});
        if let Some(var) = &self.variant {
            v["variant"] = json!(var);
        }
        v
    }
}

/// What to build; see [`ImageSpec::build`].
#[derive(Clone, Debug)]
pub struct ImageSpec {
    pub format: Format,
    pub platform: Platform,
    pub labels: Vec<(String, String)>,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    /// `(created_by, entries)` per layer, bottom first.
    pub layers: Vec<(String, Vec<Entry>)>,
    /// Manifest annotations (OCI only).
    pub annotations: Vec<(String, String)>,
}

impl ImageSpec {
    pub fn new(format: Format) -> ImageSpec {
        ImageSpec {
            format,
            platform: Platform::linux("amd64", None),
            labels: Vec::new(),
            env: vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()],
            cmd: vec!["/bin/sh".into()],
            layers: Vec::new(),
            annotations: Vec::new(),
        }
    }
    pub fn platform(mut self, p: Platform) -> Self {
        self.platform = p;
        self
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.push((k.into(), v.into()));
        self
    }
    pub fn env(mut self, kv: &str) -> Self {
        self.env.push(kv.into());
        self
    }
    pub fn layer(mut self, created_by: &str, entries: Vec<Entry>) -> Self {
        self.layers.push((created_by.into(), entries));
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations.push((k.into(), v.into()));
        self
    }

    pub fn build(&self) -> Image {
        let layers: Vec<Layer> = self
            .layers
            .iter()
            .map(|(created_by, entries)| {
                let tar = layer_tar(entries);
                Layer {
                    blob: Blob::new(self.format.layer_type(), gzip(&tar)),
                    diff_id: sha256_digest(&tar),
                    tar,
                    entries: entries.clone(),
                    created_by: created_by.clone(),
                }
            })
            .collect();
        let mut rootfs = Rootfs::default();
        for l in &layers {
            rootfs.apply(&l.entries);
        }
        self.assemble(layers, rootfs)
    }

    /// Like [`ImageSpec::build`] with layers made elsewhere (any compression, any
    /// tar); the expected root filesystem is left empty.
    pub fn build_raw(&self, layers: Vec<Layer>) -> Image {
        self.assemble(layers, Rootfs::default())
    }

    fn assemble(&self, layers: Vec<Layer>, rootfs: Rootfs) -> Image {
        let labels: BTreeMap<String, String> = self.labels.iter().cloned().collect();

        let mut history: Vec<Value> = layers
            .iter()
            .map(|l| json!({"created": CREATED, "created_by": l.created_by}))
            .collect();
        if !self.env.is_empty() || !labels.is_empty() {
            history.push(json!({
                "created": CREATED,
                "created_by": "ENV and LABEL (metadata only)",
                "empty_layer": true,
            }));
        }
        let mut config = json!({
            "created": CREATED,
            "architecture": self.platform.architecture,
            "os": self.platform.os,
        });
        if let Some(v) = &self.platform.variant {
            config["variant"] = json!(v);
        }
        config["config"] = json!({
            "Env": self.env,
            "Cmd": self.cmd,
            "WorkingDir": "/",
            "Labels": labels,
        });
        config["rootfs"] = json!({
            "type": "layers",
            "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>(),
        });
        config["history"] = json!(history);
        let config = Blob::new(
            self.format.config_type(),
            serde_json::to_vec(&config).unwrap(),
        );

        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": self.format.manifest_type(),
            "config": config.descriptor(),
            "layers": layers.iter().map(|l| l.blob.descriptor()).collect::<Vec<_>>(),
        });
        if self.format == Format::Oci && !self.annotations.is_empty() {
            let a: BTreeMap<String, String> = self.annotations.iter().cloned().collect();
            manifest["annotations"] = json!(a);
        }
        let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
        Image {
            format: self.format,
            platform: self.platform.clone(),
            labels,
            env: self.env.clone(),
            digest: sha256_digest(&manifest),
            media_type: self.format.manifest_type().into(),
            manifest,
            config,
            layers,
            rootfs,
        }
    }
}

/// A built single-platform image.
#[derive(Clone, Debug)]
pub struct Image {
    pub format: Format,
    pub platform: Platform,
    pub labels: BTreeMap<String, String>,
    pub env: Vec<String>,
    pub config: Blob,
    pub layers: Vec<Layer>,
    /// Exact manifest bytes (their digest is `digest`).
    pub manifest: Vec<u8>,
    pub media_type: String,
    pub digest: String,
    /// Expected unpacked root filesystem.
    pub rootfs: Rootfs,
}

impl Image {
    /// Manifest descriptor (with `platform` when `with_platform`).
    pub fn descriptor(&self, with_platform: bool) -> Value {
        let mut d = json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.manifest.len(),
        });
        if with_platform {
            d["platform"] = self.platform.to_json();
        }
        d
    }

    /// Compressed layer digests, bottom first.
    pub fn layer_digests(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.blob.digest.clone()).collect()
    }

    /// Every blob (config first, then layers).
    pub fn blobs(&self) -> Vec<&Blob> {
        std::iter::once(&self.config)
            .chain(self.layers.iter().map(|l| &l.blob))
            .collect()
    }

    /// Pushes blobs, the manifest by digest, and then every tag.
    pub fn push(&self, client: &Client, repo: &str, tags: &[String]) {
        for b in self.blobs() {
            client.push_blob(repo, &b.data);
        }
        client.push_manifest(repo, &self.digest, &self.media_type, &self.manifest);
        for t in tags {
            client.push_manifest(repo, t, &self.media_type, &self.manifest);
        }
    }
}

/// A built multi-platform index (OCI index or Docker manifest list).
#[derive(Clone, Debug)]
pub struct Index {
    pub format: Format,
    pub manifest: Vec<u8>,
    pub media_type: String,
    pub digest: String,
    pub children: Vec<Image>,
}

impl Index {
    pub fn build(format: Format, children: Vec<Image>) -> Index {
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": format.index_type(),
            "manifests": children.iter().map(|c| c.descriptor(true)).collect::<Vec<_>>(),
        });
        let manifest = serde_json::to_vec_pretty(&manifest).unwrap();
        Index {
            format,
            digest: sha256_digest(&manifest),
            media_type: format.index_type().into(),
            manifest,
            children,
        }
    }

    /// The child for `architecture` (and `variant`, if given).
    pub fn child(&self, architecture: &str, variant: Option<&str>) -> &Image {
        self.children
            .iter()
            .find(|c| {
                c.platform.architecture == architecture
                    && (variant.is_none() || c.platform.variant.as_deref() == variant)
            })
            .unwrap_or_else(|| panic!("no {architecture}/{variant:?} child"))
    }

    /// Pushes every child by digest, then the index by digest and under every tag.
    pub fn push(&self, client: &Client, repo: &str, tags: &[String]) {
        for c in &self.children {
            c.push(client, repo, &[]);
        }
        client.push_manifest(repo, &self.digest, &self.media_type, &self.manifest);
        for t in tags {
            client.push_manifest(repo, t, &self.media_type, &self.manifest);
        }
    }
}
