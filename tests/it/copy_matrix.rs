//! `scry copy` across every transport pair, with skopeo 1.9.3 and umoci as oracles:
//! the transport matrix (both directions of interop), round trips through a registry,
//! unpacked trees, format and compression changes, bad input, progress output and
//! `scry delete` on local layouts.
//!
//! This file holds the shared vocabulary: transports, scratch places, running the
//! two tools, and reading what they wrote (directory trees, layer contents).

mod bad_input;
mod conversions;
mod formats;
mod local_flags;
mod matrix;
mod output;
mod roundtrip;
mod signatures;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::harness::command::scratch_root;
use crate::harness::image::{Image, Rootfs};
use crate::harness::push::sha256_digest;
use crate::harness::{run, scry, skopeo, CmdOutput, Registry};

/// The transports of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Docker,
    Dir,
    Oci,
    OciArchive,
    DockerArchive,
}

impl Transport {
    pub const ALL: [Transport; 5] = [
        Transport::Docker,
        Transport::Dir,
        Transport::Oci,
        Transport::OciArchive,
        Transport::DockerArchive,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Docker => "docker",
            Transport::Dir => "dir",
            Transport::Oci => "oci",
            Transport::OciArchive => "oci-archive",
            Transport::DockerArchive => "docker-archive",
        }
    }

    /// Whether the transport can store a multi-image index (with `--all`).
    pub fn holds_index(self) -> bool {
        self != Transport::DockerArchive
    }
}

/// A scratch directory plus a writable registry: where one test puts its images.
pub struct Place {
    dir: tempfile::TempDir,
    pub reg: Registry,
}

impl Place {
    pub fn new() -> Place {
        Place {
            dir: scratch(),
            reg: Registry::plain(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The image name for `name` in transport `t` (every name gets its own
    /// directory, layout, archive or repository).
    pub fn image(&self, t: Transport, name: &str) -> String {
        if t == Transport::Docker {
            return self.reg.docker_ref(&format!("matrix/{name}:t"));
        }
        let p = self.local_path(t, name);
        let p = p.display();
        match t {
            Transport::Docker | Transport::Dir => format!("dir:{p}"),
            Transport::Oci => format!("oci:{p}:t"),
            Transport::OciArchive => format!("oci-archive:{p}:t"),
            Transport::DockerArchive => format!("docker-archive:{p}:matrix/{name}:t"),
        }
    }

    /// Where [`Place::image`] puts `name` for a local transport.
    pub fn local_path(&self, t: Transport, name: &str) -> PathBuf {
        let ext = match t {
            Transport::Docker => panic!("docker images have no local path"),
            Transport::Dir => "dir",
            Transport::Oci => "oci",
            Transport::OciArchive => "oar",
            Transport::DockerArchive => "dar",
        };
        self.path().join(format!("{name}.{ext}"))
    }

    /// `dir:` of a fresh path named `name` and that path.
    pub fn dir(&self, name: &str) -> (String, PathBuf) {
        let p = self.path().join(format!("{name}.dir"));
        (format!("dir:{}", p.display()), p)
    }
}

/// A fresh directory under the test process's scratch root.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("copy-matrix-")
        .tempdir_in(scratch_root())
        .expect("create scratch directory")
}

/// `scry copy` with TLS verification off on both sides (test registries are plain HTTP).
#[track_caller]
pub fn scry_copy(args: &[&str]) -> CmdOutput {
    let mut full = vec!["copy", "--src-tls-verify=false", "--dest-tls-verify=false"];
    full.extend_from_slice(args);
    run(scry().args(&full))
}

/// `skopeo copy` with TLS verification off on both sides.
#[track_caller]
pub fn skopeo_copy(args: &[&str]) -> CmdOutput {
    let mut full = vec![
        "copy",
        "-q",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
    ];
    full.extend_from_slice(args);
    run(skopeo().args(&full))
}

/// `skopeo inspect` with extra `args` before the image name; must succeed.
#[track_caller]
pub fn skopeo_inspect(args: &[&str], image: &str) -> CmdOutput {
    let mut full = vec!["inspect", "--tls-verify=false"];
    full.extend_from_slice(args);
    full.push(image);
    let out = run(skopeo().args(&full));
    out.assert_success();
    out
}

/// One node of a directory tree as read from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Node {
    Dir,
    File(Vec<u8>),
    Symlink(String),
}

/// Every entry below `root`, keyed by path relative to it.
pub fn read_tree(root: &Path) -> BTreeMap<String, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Node>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("reading directory {}: {e}", dir.display()));
        for e in entries {
            let e = e.unwrap();
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let ft = e.file_type().unwrap();
            if ft.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.insert(rel, Node::Symlink(target.to_string_lossy().into_owned()));
            } else if ft.is_dir() {
                out.insert(rel, Node::Dir);
                walk(root, &path, out);
            } else {
                out.insert(rel, Node::File(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Asserts two directory trees are identical (`diff -r`), naming the first difference.
#[track_caller]
pub fn assert_same_tree(a: &Path, b: &Path) {
    let (ta, tb) = (read_tree(a), read_tree(b));
    let names_a: Vec<&String> = ta.keys().collect();
    let names_b: Vec<&String> = tb.keys().collect();
    assert_eq!(
        names_a,
        names_b,
        "different entries in {} and {}",
        a.display(),
        b.display()
    );
    for (name, node) in &ta {
        assert!(
            node == &tb[name],
            "{name} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

/// The contents of a (possibly gzip-compressed) layer: gzip is inflated, anything
/// else is returned as is. zstd is refused (nothing here can inflate it).
pub fn layer_tar(bytes: &[u8]) -> Vec<u8> {
    assert!(
        !bytes.starts_with(&ZSTD_MAGIC),
        "layer_tar cannot read zstd layers"
    );
    if bytes.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("inflate gzip layer");
        out
    } else {
        bytes.to_vec()
    }
}

pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// `manifest.json` of a `dir:` directory, parsed.
pub fn dir_manifest(dir: &Path) -> serde_json::Value {
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// A blob of a `dir:` directory by digest.
pub fn dir_blob(dir: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let path = dir.join(hex);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Asserts that the `dir:` directory `dir` holds `image`'s config (same bytes) and
/// layers whose contents are the image's layer tars (compressed or not), and that
/// every blob matches its digest.
#[track_caller]
pub fn assert_dir_holds_image(dir: &Path, image: &Image) {
    let m = dir_manifest(dir);
    assert_eq!(
        m["config"]["digest"],
        image.config.digest.as_str(),
        "config digest in {}",
        dir.display()
    );
    assert_eq!(dir_blob(dir, &image.config.digest), image.config.data);
    let layers = m["layers"].as_array().expect("layers");
    assert_eq!(
        layers.len(),
        image.layers.len(),
        "layer count in {}",
        dir.display()
    );
    for (got, want) in layers.iter().zip(&image.layers) {
        let digest = got["digest"].as_str().unwrap();
        let bytes = dir_blob(dir, digest);
        assert_eq!(
            sha256_digest(&bytes),
            digest,
            "blob {digest} in {}",
            dir.display()
        );
        assert_eq!(got["size"].as_u64(), Some(bytes.len() as u64));
        assert!(
            layer_tar(&bytes) == want.tar,
            "layer {digest} in {} does not hold the tar of {}",
            dir.display(),
            want.diff_id
        );
    }
}

/// What an unpacked tree looks like, in the fixture's terms: directories and files
/// with their permission bits, symlink targets.
pub fn unpacked_rootfs(root: &Path) -> Rootfs {
    use crate::harness::image::Node as R;
    use std::os::unix::fs::PermissionsExt;
    let mut rootfs = Rootfs::default();
    for (rel, node) in read_tree(root) {
        let mode = std::fs::symlink_metadata(root.join(&rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777;
        let n = match node {
            Node::Dir => R::Dir { mode },
            Node::File(data) => R::File { mode, data },
            Node::Symlink(target) => R::Symlink { target },
        };
        rootfs.nodes.insert(rel, n);
    }
    rootfs
}

/// Asserts `got` equals `want`: same paths, contents, symlink targets and modes.
#[track_caller]
pub fn assert_same_rootfs(got: &Rootfs, want: &Rootfs, what: &str) {
    assert_eq!(got.paths(), want.paths(), "{what}: file list");
    for (path, node) in &want.nodes {
        assert!(
            &got.nodes[path] == node,
            "{what}: {path} is {:?}, expected {:?}",
            short(&got.nodes[path]),
            short(node)
        );
    }
}

fn short(n: &crate::harness::image::Node) -> String {
    use crate::harness::image::Node as R;
    match n {
        R::File { mode, data } => format!("file {mode:o}, {} bytes", data.len()),
        other => format!("{other:?}"),
    }
}

/// `index.json` of an OCI layout, parsed (panics if it is missing).
pub fn oci_index(layout: &Path) -> serde_json::Value {
    let path = layout.join("index.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap()
}

/// A blob of an OCI layout by digest.
pub fn oci_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
    let path = layout.join("blobs/sha256").join(hex);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The `org.opencontainers.image.ref.name` of every entry of a layout's index.
pub fn oci_ref_names(layout: &Path) -> Vec<String> {
    oci_index(layout)["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .filter_map(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str())
        .map(str::to_string)
        .collect()
}

/// The manifest tagged `tag` in an OCI layout, parsed.
pub fn oci_manifest(layout: &Path, tag: &str) -> serde_json::Value {
    let index = oci_index(layout);
    let entry = index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag:?} in {}: {index}", layout.display()));
    let bytes = oci_blob(layout, entry["digest"].as_str().unwrap());
    assert_eq!(sha256_digest(&bytes), entry["digest"].as_str().unwrap());
    serde_json::from_slice(&bytes).unwrap()
}
