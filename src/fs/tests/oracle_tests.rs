//! The layout a tag directory shows, written out file by file as `cp -a` through the
//! mount would, is read by the real `skopeo` and `umoci` (skipped where they are not
//! installed).

use std::io::Write;
use std::path::Path;
use std::process::Command;

use super::*;
use crate::manifest::sha256_digest;

/// A gzip-compressed tar with one file, and its diff ID.
fn layer(name: &str, content: &[u8]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, content).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = sha256_digest(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Copies the tree under `path` into `dest` (files, symlinks, directories; not
/// `copy-to/`, `rootfs/` or the layers' trees).
async fn copy_out(t: &T, path: &str, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let ino = t.ino(path).await;
    for e in t.fs.readdir(ino).await.unwrap().into_iter().skip(2) {
        let child = format!("{path}/{}", e.name);
        let target = dest.join(&e.name);
        match e.kind {
            FileType::Directory
                if e.name == "copy-to"
                    || e.name == "rootfs"
                    || e.name.bytes().all(|b| b.is_ascii_digit()) => {}
            FileType::Directory => Box::pin(copy_out(t, &child, &target)).await,
            FileType::Symlink => {
                let link = t.fs.readlink(t.ino(&child).await).await.unwrap();
                std::os::unix::fs::symlink(link, &target).unwrap();
            }
            FileType::RegularFile => std::fs::write(&target, t.cat(&child).await.unwrap()).unwrap(),
            other => panic!("{child}: a {other:?} in an image layout"),
        }
    }
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn skopeo_and_umoci_read_the_layout() {
    if !have("skopeo") || !have("umoci") {
        eprintln!("skopeo or umoci not installed; skipping");
        return;
    }
    let t = setup();
    let (l1, d1) = layer("hello.txt", b"hello from the mount\n");
    let (l2, d2) = layer("etc/motd", b"second layer\n");
    let config = format!(
        r#"{{"created":"2024-03-04T05:06:07Z","architecture":"amd64","os":"linux","config":{{"Cmd":["/bin/sh"]}},"rootfs":{{"type":"layers","diff_ids":["{d1}","{d2}"]}}}}"#
    );
    let img = t
        .mock
        .push_image(REG, "real/app", Some("stable"), &config, &[&l1, &l2]);
    let (index_digest, _) = t.mock.push_index(
        REG,
        "real/app",
        Some("multi"),
        &[(&img, "linux", "amd64", "")],
    );

    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("stable");
    copy_out(&t, &format!("{REG}/real/app/stable"), &layout).await;
    let raw = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .arg(format!("oci:{}", layout.display())));
    assert_eq!(raw.as_bytes(), &img.manifest[..]);
    let inspect = run(Command::new("skopeo")
        .arg("inspect")
        .arg(format!("oci:{}:stable", layout.display())));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], img.digest.as_str());
    assert_eq!(v["Layers"], serde_json::json!(img.layers));
    let copied = tmp.path().join("copied");
    run(Command::new("skopeo")
        .arg("copy")
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("dir:{}", copied.display())));
    assert_eq!(std::fs::read(copied.join(hex(&img.layers[1]))).unwrap(), l2);

    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .arg("unpack")
        .arg("--rootless")
        .arg("--image")
        .arg(format!("{}:stable", layout.display()))
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    assert_eq!(
        std::fs::read(rootfs.join("hello.txt")).unwrap(),
        b"hello from the mount\n"
    );
    assert_eq!(
        std::fs::read(rootfs.join("etc/motd")).unwrap(),
        b"second layer\n"
    );

    // The whole index, and its platform directory.
    let multi = tmp.path().join("multi");
    copy_out(&t, &format!("{REG}/real/app/multi"), &multi).await;
    let raw = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .arg(format!("oci:{}", multi.display())));
    assert_eq!(sha256_digest(raw.as_bytes()), index_digest);
    let all = tmp.path().join("all");
    run(Command::new("skopeo")
        .arg("copy")
        .arg("--all")
        .arg(format!("oci:{}", multi.display()))
        .arg(format!("oci:{}:x", all.display())));
    let platform = multi.join("linux-amd64");
    let raw = run(Command::new("skopeo")
        .arg("inspect")
        .arg("--raw")
        .arg(format!("oci:{}", platform.display())));
    assert_eq!(raw.as_bytes(), &img.manifest[..]);
}
