//! `rootfs/` and `layers/N/`: the merged tree and each layer's own, with their
//! metadata, hard links, devices, xattrs, verified reads, indexes kept across mounts,
//! and broken layers failing alone.

use std::io::Write;

use super::*;
use crate::layer::index::tests::sample_tar;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Whiteouts of `dev-fifo` and the opaque `deep/`, a new file, a replaced file.
fn upper_tar() -> Vec<u8> {
    let mut b = ::tar::Builder::new(Vec::new());
    for (path, data) in [
        (".wh.dev-fifo", &b""[..]),
        ("deep/.wh..wh..opq", b""),
        ("deep/fresh", b"new here"),
        ("etc/alias", b"now a file"),
    ] {
        let mut h = ::tar::Header::new_gnu();
        h.set_mode(0o600);
        h.set_uid(0);
        h.set_mtime(1_800_000_000);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }
    b.into_inner().unwrap()
}

struct R {
    t: T,
    lower: String,
    upper: String,
    big: Vec<u8>,
    dir: tempfile::TempDir,
}

impl R {
    /// Backend reads of the image's layers.
    fn layer_reads(&self) -> Vec<String> {
        let layers = [&self.lower, &self.upper];
        let mut calls = self.t.blob_calls();
        calls.retain(|c| layers.iter().any(|l| c.contains(l.as_str())));
        calls
    }
}

const IMG: &str = "registry.test:5000/files/app/v1";

fn fs_with_dir(t: &T, dir: &std::path::Path) -> Arc<Fs> {
    let config = FsConfig {
        layer_dir: Some(dir.to_path_buf()),
        clock: t.clock.clone(),
        ..FsConfig::default()
    };
    Arc::new(Fs::new(t.mock.clone(), config))
}

fn with_image() -> R {
    let mut t = setup();
    let (lower, big) = sample_tar(3 << 20);
    let (lower, upper) = (gzip(&lower), gzip(&upper_tar()));
    let img = t.mock.push_image(
        REG,
        "files/app",
        Some("v1"),
        &config_json("2024-01-02T03:04:05Z", "amd64"),
        &[&lower, &upper],
    );
    let dir = tempfile::tempdir().unwrap();
    t.fs = fs_with_dir(&t, dir.path());
    R {
        lower: img.layers[0].clone(),
        upper: img.layers[1].clone(),
        t,
        big,
        dir,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rootfs_shows_the_merged_tree_with_its_metadata() {
    let r = with_image();
    let t = &r.t;
    // Listing and stat-ing the image directory reads no layer.
    let names = t.ls(IMG).await.unwrap();
    assert!(names.contains(&"rootfs".to_string()), "{names:?}");
    t.walk(&format!("{IMG}/rootfs")).await.unwrap();
    assert!(r.layer_reads().is_empty(), "{:?}", r.layer_reads());

    let root = format!("{IMG}/rootfs");
    assert_eq!(
        t.ls(&root).await.unwrap(),
        ["big.bin", "deep", "etc", "null"]
    );
    assert_eq!(t.ls(&format!("{root}/deep")).await.unwrap(), ["fresh"]);
    assert_eq!(
        t.ls(&format!("{root}/etc")).await.unwrap(),
        ["alias", "hard", "os-release"]
    );
    assert_eq!(
        t.walk(&format!("{root}/dev-fifo"))
            .await
            .unwrap_err()
            .errno(),
        libc::ENOENT
    );

    let os_release = t.walk(&format!("{root}/etc/os-release")).await.unwrap();
    assert_eq!(os_release.kind, FileType::RegularFile);
    assert_eq!(
        (os_release.perm, os_release.uid, os_release.gid),
        (0o4750, 1000, 100)
    );
    assert_eq!(os_release.size, 8);
    assert_eq!(
        os_release.mtime,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    );
    // A hard link is the same inode, counted twice.
    let hard = t.walk(&format!("{root}/etc/hard")).await.unwrap();
    assert_eq!((hard.ino, hard.nlink), (os_release.ino, 2));
    assert_eq!(
        &t.cat(&format!("{root}/etc/hard")).await.unwrap()[..],
        b"ID=test\n"
    );
    // Replaced in the upper layer: a file now, with the upper layer's metadata.
    let alias = t.walk(&format!("{root}/etc/alias")).await.unwrap();
    assert_eq!(
        (alias.kind, alias.perm, alias.uid),
        (FileType::RegularFile, 0o600, 0)
    );
    assert_eq!(
        &t.cat(&format!("{root}/etc/alias")).await.unwrap()[..],
        b"now a file"
    );

    let null = t.walk(&format!("{root}/null")).await.unwrap();
    assert_eq!(null.kind, FileType::CharDevice);
    assert_eq!(null.rdev, libc::makedev(1, 3) as u32);
    let etc = t.walk(&format!("{root}/etc")).await.unwrap();
    assert_eq!(
        (etc.kind, etc.perm, etc.nlink),
        (FileType::Directory, 0o755, 2)
    );

    // Big files are read across checkpoints and come back whole.
    let big = t.cat(&format!("{root}/big.bin")).await.unwrap();
    assert!(big[..] == r.big[..], "big.bin differs");
    // The PAX uid, beyond what the header's octal field holds.
    assert_eq!(
        t.walk(&format!("{root}/big.bin")).await.unwrap().uid,
        3_000_000_000
    );

    // Extended attributes: the entry's own and the layer it came from.
    let ino = t.ino(&format!("{root}/big.bin")).await;
    assert_eq!(t.fs.getxattr(ino, os("user.note")).await.unwrap(), b"hello");
    assert_eq!(
        t.fs.getxattr(ino, os("user.scry.layer")).await.unwrap(),
        r.lower.as_bytes()
    );
    let names = t.fs.listxattr(ino).await.unwrap();
    assert_eq!(names, b"user.note\0user.scry.layer\0");
    let fresh = t.ino(&format!("{root}/deep/fresh")).await;
    assert_eq!(
        t.fs.getxattr(fresh, os("user.scry.layer")).await.unwrap(),
        r.upper.as_bytes()
    );
    let e = t.fs.getxattr(fresh, os("user.none")).await.unwrap_err();
    assert_eq!(e.errno(), libc::ENODATA);
    // Outside the trees, files have none.
    let manifest = t.ino(&format!("{IMG}/manifest.json")).await;
    assert!(t.fs.listxattr(manifest).await.unwrap().is_empty());

    // Read-only, like everything outside copy-to/.
    let e = t.fs.open(ino, libc::O_WRONLY, false).await.unwrap_err();
    assert_eq!(e.errno(), libc::EROFS);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_layer_shows_its_own_tree_with_whiteouts() {
    let r = with_image();
    let t = &r.t;
    let layers = t.ls(&format!("{IMG}/layers")).await.unwrap();
    assert_eq!(layers, ["0", "0.tar.gz", "1", "1.tar.gz"]);
    assert_eq!(
        t.ls(&format!("{IMG}/layers/1")).await.unwrap(),
        [".wh.dev-fifo", "deep", "etc"]
    );
    assert_eq!(
        t.ls(&format!("{IMG}/layers/1/deep")).await.unwrap(),
        [".wh..wh..opq", "fresh"]
    );
    let lower = t.ls(&format!("{IMG}/layers/0/etc")).await.unwrap();
    assert_eq!(lower, [".wh.gone", "alias", "hard", "os-release"]);
    let alias = t.walk(&format!("{IMG}/layers/0/etc/alias")).await.unwrap();
    assert_eq!(alias.kind, FileType::Symlink);
    assert_eq!(t.fs.readlink(alias.ino).await.unwrap(), "os-release");
    let fifo = t.walk(&format!("{IMG}/layers/0/dev-fifo")).await.unwrap();
    assert_eq!(fifo.kind, FileType::NamedPipe);
    assert_eq!(
        &t.cat(&format!("{IMG}/layers/0/etc/os-release"))
            .await
            .unwrap()[..],
        b"ID=test\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn indexes_are_kept_for_the_next_mount_and_files_once_read() {
    let r = with_image();
    let t = &r.t;
    let path = format!("{IMG}/rootfs/etc/os-release");
    assert_eq!(&t.cat(&path).await.unwrap()[..], b"ID=test\n");
    let stats = |fs: &Fs| serde_json::from_slice::<serde_json::Value>(&fs.stats_json()).unwrap();
    let s = stats(&t.fs);
    assert_eq!(s["layers"]["indexes_built"], 2, "{s}");
    assert_eq!(s["layers"]["files_read"], 1, "{s}");
    // Read again: from what was kept, without the backend.
    t.mock.clear_calls();
    assert_eq!(&t.cat(&path).await.unwrap()[..], b"ID=test\n");
    assert!(r.layer_reads().is_empty(), "{:?}", r.layer_reads());

    // A new mount with the same directory loads the indexes instead of reading the
    // layers again: listing the tree reads no layer byte.
    let fs2 = fs_with_dir(t, r.dir.path());
    let t2 = T {
        fs: fs2.clone(),
        mock: t.mock.clone(),
        clock: t.clock.clone(),
        a: t.a.clone(),
        b: t.b.clone(),
        amd: t.amd.clone(),
        arm: t.arm.clone(),
        index: t.index.clone(),
    };
    t.mock.clear_calls();
    assert_eq!(
        t2.ls(&format!("{IMG}/rootfs/deep")).await.unwrap(),
        ["fresh"]
    );
    assert!(r.layer_reads().is_empty(), "{:?}", r.layer_reads());
    let s = stats(&fs2);
    assert_eq!(
        (
            &s["layers"]["indexes_built"],
            &s["layers"]["indexes_loaded"]
        ),
        (&serde_json::json!(0), &serde_json::json!(2)),
        "{s}"
    );
    // A damaged index file is dropped and the layer indexed again.
    let index_dir = r.dir.path().join("index");
    for f in std::fs::read_dir(&index_dir).unwrap() {
        let p = f.unwrap().path();
        let mut data = std::fs::read(&p).unwrap();
        let n = data.len();
        data[n / 2] ^= 0xff;
        std::fs::write(&p, data).unwrap();
    }
    let fs3 = fs_with_dir(t, r.dir.path());
    let t3 = T {
        fs: fs3.clone(),
        ..t2
    };
    assert_eq!(
        t3.ls(&format!("{IMG}/rootfs/deep")).await.unwrap(),
        ["fresh"]
    );
    assert_eq!(stats(&fs3)["layers"]["indexes_built"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_layer_fails_its_trees_with_eio_and_nothing_else() {
    let mut t = setup();
    let good = gzip(&upper_tar());
    let mut cut = gzip(&sample_tar(1 << 20).0);
    cut.truncate(cut.len() / 2);
    let img = t.mock.push_image(
        REG,
        "files/broken",
        Some("v1"),
        &config_json("2024-01-02T03:04:05Z", "amd64"),
        &[&cut, &good],
    );
    let dir = tempfile::tempdir().unwrap();
    t.fs = fs_with_dir(&t, dir.path());
    let base = format!("{REG}/files/broken/v1");
    let e = t.ls(&format!("{base}/rootfs")).await.unwrap_err();
    assert_eq!(e.errno(), libc::EIO);
    assert!(e.message().contains(&img.layers[0]), "{e}");
    let e = t.ls(&format!("{base}/layers/0")).await.unwrap_err();
    assert_eq!(e.errno(), libc::EIO);
    // The other layer, and the image's other files, still work.
    assert_eq!(
        t.ls(&format!("{base}/layers/1/deep")).await.unwrap(),
        [".wh..wh..opq", "fresh"]
    );
    t.json(&format!("{base}/manifest.json")).await;
    // Nothing of the broken layer was kept.
    let kept = std::fs::read_dir(dir.path().join("index")).unwrap().count();
    assert_eq!(kept, 1);
}
