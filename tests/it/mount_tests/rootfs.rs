//! `TAG/rootfs/` on a real mount of real images, against `umoci unpack` of the same
//! images: a tree of this machine's own files (`/etc`, `/usr/sbin`, Python's library,
//! locales, time zones) in one gzip layer, and the same split into gzip, zstd and
//! multi-member gzip layers under a layer of edge cases (hard links within and across
//! layers, long names, xattrs, devices, fifos, whiteouts, an opaque directory). Every
//! name, type, mode, owner, size, content hash, link target, hard-link group, device
//! number and user xattr must agree. Also: an index survives the blob's eviction, and
//! a read after indexing fetches a small part of the layer.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use super::*;
use crate::harness::image::{gzip, Blob, Format, ImageSpec, Layer, OCI_LAYER_GZIP};
use crate::harness::push::sha256_digest;
use crate::harness::registry::Registry;

const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// The host directories the images hold (about 90 MB of tar on Debian 12).
const HOST_DIRS: &[&str] = &[
    "etc",
    "usr/sbin",
    "usr/lib/python3.11",
    "usr/share/i18n",
    "usr/share/zoneinfo",
];

/// A tar of host paths (those that exist), as GNU tar writes it.
fn host_tar(paths: &[&str]) -> Vec<u8> {
    let present: Vec<&str> = paths
        .iter()
        .copied()
        .filter(|p| Path::new("/").join(p).exists())
        .collect();
    let out = Command::new("tar")
        .args(["-C", "/", "--numeric-owner", "--ignore-failed-read"])
        .args(["--warning=no-file-changed", "--warning=no-file-ignored"])
        .args(["--exclude=etc/ssl/private", "-cf", "-"])
        .args(&present)
        .output()
        .expect("run tar");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "tar failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Hard links (within the layer and to a lower layer's file), long names, PAX xattrs,
/// devices, a fifo, whiteouts and an opaque directory.
fn edge_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(match kind {
            tar::EntryType::Directory => 0o750,
            _ => 0o640,
        });
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mtime(1_650_000_000);
        h.set_size(data.len() as u64);
        if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(8).unwrap();
            h.set_device_minor(17).unwrap();
        }
        match link {
            Some(l) => b.append_link(&mut h, path, l).unwrap(),
            None => b.append_data(&mut h, path, data).unwrap(),
        }
    };
    use tar::EntryType as T;
    add("edge/", T::Directory, b"", None);
    add("edge/data", T::Regular, b"shared by three names\n", None);
    add("edge/link1", T::Link, b"", Some("edge/data"));
    add("edge/link2", T::Link, b"", Some("edge/data"));
    add("edge/lower-link", T::Link, b"", Some("etc/debian_version"));
    let long = format!("edge/{}/{}", "d".repeat(120), "f".repeat(150));
    add(&long, T::Regular, b"a long name\n", None);
    add("edge/char", T::Char, b"", None);
    add("edge/block", T::Block, b"", None);
    add("edge/fifo", T::Fifo, b"", None);
    add("usr/sbin/.wh.nologin", T::Regular, b"", None);
    add("usr/share/i18n/.wh..wh..opq", T::Regular, b"", None);
    add(
        "usr/share/i18n/only-this",
        T::Regular,
        b"opaque below\n",
        None,
    );
    b.append_pax_extensions([("SCHILY.xattr.user.origin", &b"edge layer"[..])])
        .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_mode(0o600);
    h.set_mtime(1_650_000_000);
    h.set_size(6);
    b.append_data(&mut h, "edge/with-xattr", &b"xattr\n"[..])
        .unwrap();
    b.into_inner().unwrap()
}

fn layer(media_type: &str, blob: Vec<u8>, tar: Vec<u8>, what: &str) -> Layer {
    Layer {
        blob: Blob::new(media_type, blob),
        diff_id: sha256_digest(&tar),
        tar,
        entries: Vec::new(),
        created_by: what.into(),
    }
}

/// Two gzip members, split in the middle of the tar stream.
fn two_members(tar: &[u8]) -> Vec<u8> {
    let (a, b) = tar.split_at(tar.len() / 2);
    [gzip(a), gzip(b)].concat()
}

struct Images {
    reg: Registry,
    /// The single-layer tar (for offsets of its files).
    one_tar: Vec<u8>,
}

/// A registry with `rootfs/one:v1` (one gzip layer) and `rootfs/split:v1`.
fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let reg = Registry::plain();
        let client = reg.client();
        let one_tar = host_tar(HOST_DIRS);
        let spec = ImageSpec::new(Format::Oci);
        let one = spec.build_raw(vec![layer(
            OCI_LAYER_GZIP,
            gzip(&one_tar),
            one_tar.clone(),
            "host files",
        )]);
        one.push(&client, "rootfs/one", &["v1".to_string()]);
        let base = host_tar(&HOST_DIRS[..2]);
        let python = host_tar(&HOST_DIRS[2..3]);
        let share = host_tar(&HOST_DIRS[3..]);
        let edge = edge_tar();
        let split = |python_layer: Layer| {
            spec.build_raw(vec![
                layer(OCI_LAYER_GZIP, gzip(&base), base.clone(), "etc, sbin"),
                python_layer,
                layer(OCI_LAYER_GZIP, two_members(&share), share.clone(), "share"),
                layer(OCI_LAYER_GZIP, gzip(&edge), edge.clone(), "edge cases"),
            ])
        };
        let zstd_layer = zstd::encode_all(&python[..], 3).unwrap();
        let zstd_layer = layer(OCI_LAYER_ZSTD, zstd_layer, python.clone(), "python");
        split(zstd_layer).push(&client, "rootfs/split", &["v1".to_string()]);
        // The same tree with the zstd layer in gzip, for an unpacker without zstd.
        let gzip_layer = layer(OCI_LAYER_GZIP, gzip(&python), python, "python");
        split(gzip_layer).push(&client, "rootfs/split-gz", &["v1".to_string()]);
        Images { reg, one_tar }
    })
}

/// What the comparison looks at for one path.
#[derive(Debug, PartialEq, Eq)]
struct Meta {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    /// Regular files: size and SHA-256; symlinks: the target; devices: the number.
    what: String,
    /// Regular files with more than one name: the first name of the group.
    group: Option<String>,
    user_xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The value of xattr `name` of `path`, if it has one.
fn user_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let name = CString::new(name).unwrap();
    let mut v = vec![0u8; 64 * 1024];
    // SAFETY: valid buffers for their lengths, NUL-terminated strings.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), name.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
    (n >= 0).then(|| {
        v.truncate(n as usize);
        v
    })
}

fn user_xattrs(path: &Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let c = CString::new(path.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: the buffers are valid for their lengths; the path is NUL-terminated.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n <= 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for name in names[..n as usize].split(|b| *b == 0) {
        if !name.starts_with(b"user.") || name.starts_with(b"user.scry.") {
            continue;
        }
        let value = user_xattr(path, &String::from_utf8_lossy(name))
            .unwrap_or_else(|| panic!("getxattr {name:?} of {}", path.display()));
        out.push((name.to_vec(), value));
    }
    out.sort();
    out
}

/// Every path below `root` with its [`Meta`], in path order.
fn snapshot(root: &Path) -> BTreeMap<String, Meta> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, std::fs::Metadata)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            let md = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            out.push((rel, md.clone()));
            if md.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut all = Vec::new();
    walk(root, root, &mut all);
    let mut groups: BTreeMap<u64, String> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for (rel, md) in all {
        let p = root.join(&rel);
        let ft = md.file_type();
        let (kind, what) = if ft.is_symlink() {
            let target = std::fs::read_link(&p).unwrap();
            ('l', target.to_string_lossy().into_owned())
        } else if ft.is_dir() {
            ('d', String::new())
        } else if ft.is_file() {
            let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            let hash = hex::encode(Sha256::digest(&data));
            ('f', format!("{} {hash}", data.len()))
        } else if ft.is_char_device() || ft.is_block_device() {
            let dev = md.rdev();
            let c = if ft.is_char_device() { 'c' } else { 'b' };
            (c, format!("{}:{}", libc::major(dev), libc::minor(dev)))
        } else if ft.is_fifo() {
            ('p', String::new())
        } else {
            ('?', String::new())
        };
        let group = (kind == 'f' && md.nlink() > 1).then(|| {
            groups
                .entry(md.ino())
                .or_insert_with(|| rel.clone())
                .clone()
        });
        out.insert(
            rel,
            Meta {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                what,
                group,
                user_xattrs: user_xattrs(&p),
            },
        );
    }
    out
}

/// The differences between two snapshots, one line each.
fn differences(got: &BTreeMap<String, Meta>, want: &BTreeMap<String, Meta>) -> Vec<String> {
    let mut out = Vec::new();
    for (p, w) in want {
        match got.get(p) {
            None => out.push(format!("missing in the mount: {p} {w:?}")),
            Some(g) if g != w => out.push(format!("{p}: mount {g:?}, unpacked {w:?}")),
            _ => {}
        }
    }
    for p in got.keys().filter(|p| !want.contains_key(*p)) {
        out.push(format!("only in the mount: {p}"));
    }
    out
}

fn is_root() -> bool {
    // SAFETY: no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `skopeo copy` of `reference` to an OCI layout, then `umoci unpack` of it.
fn unpacked(reg: &Registry, repo: &str, dir: &Path) -> std::path::PathBuf {
    let layout = dir.join(format!("{}-layout", repo.replace('/', "-")));
    let out = tool(
        "skopeo",
        &[
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/{repo}:v1", reg.url()),
            &format!("oci:{}:v1", layout.display()),
        ],
    );
    out.assert_success();
    let bundle = dir.join(format!("{}-bundle", repo.replace('/', "-")));
    let image = format!("{}:v1", layout.display());
    let mut args = vec!["unpack"];
    if !is_root() {
        args.push("--rootless");
    }
    args.extend(["--image", &image]);
    let out = tool_on("umoci", &args, &[&bundle]);
    assert!(out.success(), "umoci unpack failed: {out}");
    bundle.join("rootfs")
}

#[test]
fn rootfs_matches_umoci_unpack_for_one_layer_and_split_layers() {
    if !is_root() {
        eprintln!("not root: owners and devices cannot be unpacked; skipping");
        return;
    }
    let im = images();
    let m = Mount::start(&["--tls-verify=false"]);
    for (repo, twin) in [
        ("rootfs/one", "rootfs/one"),
        ("rootfs/split", "rootfs/split-gz"),
    ] {
        let want = snapshot(&unpacked(&im.reg, twin, &m.scratch()));
        let root = m.path(&format!("{}/{repo}/v1/rootfs", im.reg.url()));
        let got = snapshot(&root);
        let diff = differences(&got, &want);
        assert!(
            diff.is_empty(),
            "{repo}: {} differences, first ones:\n{}\n{}",
            diff.len(),
            diff[..diff.len().min(30)].join("\n"),
            m.log()
        );
        assert!(want.len() > 1000, "{repo}: only {} paths", want.len());
    }
    // The edge cases are there, as the tests above compared them; and each entry
    // names the layer it came from.
    let split = format!("{}/rootfs/split/v1", im.reg.url());
    let data = m.path(&format!("{split}/rootfs/edge/data"));
    assert_eq!(std::fs::metadata(&data).unwrap().nlink(), 3);
    let layer = user_xattr(&data, "user.scry.layer").expect("user.scry.layer");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path(&format!("{split}/manifest.json"))).unwrap())
            .unwrap();
    assert_eq!(
        layer,
        manifest["layers"][3]["digest"].as_str().unwrap().as_bytes()
    );
    // Each layer's own tree shows its whiteouts.
    let own = tool_on(
        "ls",
        &["-1A"],
        &[&m.path(&format!("{split}/layers/3/usr/share/i18n"))],
    );
    assert!(own.success(), "{own}");
    assert_eq!(own.stdout, ".wh..wh..opq\nonly-this\n");
    m.unmount();
}

/// Reads the backend's fetched-byte count from the mount's stats.
fn fetched(m: &Mount) -> u64 {
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path(".scry/stats.json")).unwrap()).unwrap();
    stats["backend"]["bytes_fetched"]
        .as_u64()
        .expect("bytes_fetched")
}

#[test]
fn an_index_outlives_the_blob_and_a_later_read_fetches_a_small_part() {
    let im = images();
    let cache = scratch("rootfs-cache-");
    let one = format!("{}/rootfs/one/v1/rootfs", im.reg.url());
    // A small file from the middle of the layer's tar.
    let mut archive = tar::Archive::new(&im.one_tar[..]);
    let mut files = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let size = e.header().size().unwrap();
        if e.header().entry_type() == tar::EntryType::Regular && (1000..8192).contains(&size) {
            let path = e.path().unwrap().to_string_lossy().into_owned();
            files.push((e.raw_file_position(), path, size));
        }
    }
    let middle = im.one_tar.len() as u64 / 2;
    let (_, path, size) = files
        .iter()
        .min_by_key(|(at, _, _)| at.abs_diff(middle))
        .cloned()
        .expect("a small file");
    let want = std::fs::read(Path::new("/").join(&path)).ok();

    let m = Mount::with_cache(&["--tls-verify=false"], cache.path());
    let listed = tool_on("find", &[], &[&m.path(&one)]);
    assert!(listed.success(), "{listed}");
    assert!(listed.stdout.lines().count() > 1000, "{listed}");
    m.unmount();
    // The blob goes; the index stays.
    for d in ["blobs", "partial"] {
        let _ = std::fs::remove_dir_all(cache.path().join(d));
    }
    let m = Mount::with_cache(&["--tls-verify=false"], cache.path());
    let file = m.path(&format!("{one}/{path}"));
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size);
    let before = fetched(&m);
    let got = std::fs::read(&file).unwrap();
    assert_eq!(got.len() as u64, size);
    if let Some(w) = want {
        assert!(got == w, "{path} differs from the host's file");
    }
    let cost = fetched(&m) - before;
    let layer = gzip(&im.one_tar).len() as u64;
    assert!(
        cost <= 2 * (4 << 20) && cost < layer / 2,
        "reading {path} ({size} bytes) fetched {cost} of the layer's {layer} bytes"
    );
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path(".scry/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["layers"]["indexes_loaded"], 1, "{stats}");
    assert_eq!(stats["layers"]["indexes_built"], 0, "{stats}");
    m.unmount();
}

#[test]
fn listing_and_stat_of_an_image_directory_reads_no_layer() {
    let im = images();
    let m = Mount::start(&["--tls-verify=false"]);
    let dir = m.path(&format!("{}/rootfs/split/v1", im.reg.url()));
    let out = tool_on("ls", &["-la"], &[&dir, &dir.join("layers")]);
    assert!(out.success(), "{out}");
    assert!(out.stdout.contains("rootfs"), "{out}");
    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(m.path(".scry/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["layers"]["indexes_built"], 0, "{stats}");
    // And a file below rootfs/ is an ordinary file to cat, sha256sum and cp -a.
    let release = dir.join("rootfs/etc/debian_version");
    if Path::new("/etc/debian_version").exists() {
        let out = tool_on("cat", &[], &[&release]);
        assert!(out.success(), "{out}");
        assert_eq!(
            out.stdout,
            std::fs::read_to_string("/etc/debian_version").unwrap()
        );
        let copy = m.scratch().join("edge-copy");
        let out = tool_on("cp", &["-a"], &[&dir.join("rootfs/edge"), &copy]);
        assert!(out.success(), "{out}");
        assert_eq!(
            std::fs::read(copy.join("link1")).unwrap(),
            b"shared by three names\n"
        );
    }
    m.unmount();
}

/// A `kill -9` of the mount while it indexes, then a remount on the same cache: the
/// tree comes back whole, and no half-written index is used.
#[test]
fn kill_9_during_indexing_then_the_tree_comes_back_right() {
    let im = images();
    let cache = scratch("rootfs-kill-");
    let root = format!("{}/rootfs/split/v1/rootfs", im.reg.url());
    let m = Mount::with_cache(&["--tls-verify=false"], cache.path());
    // The walk starts the indexing of every layer; the kill comes in the middle of it.
    let walk = Command::new("ls")
        .arg("-R")
        .arg(m.path(&root))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    m.kill9();
    let mut walk = walk;
    let _ = walk.kill();
    let _ = walk.wait();
    // Whatever the killed mount left, what the next one shows is the whole tree.
    let m = Mount::with_cache(&["--tls-verify=false"], cache.path());
    let got = snapshot(&m.path(&root));
    let fresh = Mount::start(&["--tls-verify=false"]);
    let want = snapshot(&fresh.path(&root));
    let diff = differences(&got, &want);
    assert!(
        diff.is_empty(),
        "after kill -9: {}",
        diff[..diff.len().min(20)].join("\n")
    );
    // Nothing but sound, complete index files is in the index directory.
    for f in std::fs::read_dir(cache.path().join("layers/index")).unwrap() {
        let name = f.unwrap().file_name().to_string_lossy().into_owned();
        assert!(name.ends_with(".v1") && !name.starts_with('.'), "{name}");
    }
    fresh.unmount();
    m.unmount();
}
