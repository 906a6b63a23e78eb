//! Image directories: layout files, sizes before fetching, layer links, inspect.json,
//! multi-platform indexes, tag refresh, concurrent reads, read-only refusals.

use super::*;
use crate::manifest::media_types::{OCI_INDEX, OCI_MANIFEST};

#[tokio::test]
async fn image_dir_lists_the_layout() {
    let t = setup();
    let dir = format!("{REG}/app/web/v1");
    assert_eq!(
        t.ls(&dir).await.unwrap(),
        [
            "oci-layout",
            "index.json",
            "manifest.json",
            "config.json",
            "inspect.json",
            "blobs",
            "layers",
            "rootfs",
            "copy-to"
        ]
    );
    assert_eq!(t.ls(&format!("{dir}/blobs")).await.unwrap(), ["sha256"]);
    let mut expected: Vec<String> = [&t.a.digest, &t.a.config]
        .into_iter()
        .chain(&t.a.layers)
        .map(|d| hex(d).to_string())
        .collect();
    assert_eq!(
        t.ls(&format!("{dir}/blobs/sha256")).await.unwrap(),
        expected
    );
    expected.sort();
    let copy_to = t.walk(&format!("{dir}/copy-to")).await.unwrap();
    assert_eq!(copy_to.perm, 0o755);
    assert!(t.ls(&format!("{dir}/copy-to")).await.unwrap().is_empty());
}

#[tokio::test]
async fn sizes_and_times_come_before_layer_bytes() {
    let t = setup();
    let dir = format!("{REG}/app/web/v1");
    let created =
        SystemTime::from(chrono::DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z").unwrap());
    let attr = t.walk(&dir).await.unwrap();
    assert_eq!(attr.mtime, created);
    assert_eq!(attr.ttl, Duration::from_secs(60));
    for (i, layer) in t.a.layers.iter().enumerate() {
        let a = t
            .walk(&format!("{dir}/blobs/sha256/{}", hex(layer)))
            .await
            .unwrap();
        let want = [15, 26][i];
        assert_eq!(
            (a.size, a.kind, a.perm),
            (want, FileType::RegularFile, 0o444)
        );
        assert_eq!(a.blocks, 1);
        assert_eq!(a.mtime, created);
        assert_eq!(a.ttl, Duration::from_secs(3600));
    }
    let m = t.walk(&format!("{dir}/manifest.json")).await.unwrap();
    assert_eq!(m.size, t.a.manifest.len() as u64);
    let c = t.walk(&format!("{dir}/config.json")).await.unwrap();
    assert_eq!(c.size, t.a.config_bytes.len() as u64);
    // Only the config was fetched as a blob, never a layer.
    let blobs = t.blob_calls();
    assert!(!blobs.is_empty());
    assert!(blobs.iter().all(|c| c.contains(&t.a.config)), "{blobs:?}");
    // Reading fetches exactly the range asked for.
    let ino = t
        .walk(&format!("{dir}/blobs/sha256/{}", hex(&t.a.layers[1])))
        .await
        .unwrap()
        .ino;
    let open = t.fs.open(ino, libc::O_RDONLY, false).await.unwrap();
    assert!(open.keep_cache && !open.direct_io);
    let part = t.fs.read(ino, open.fh, 6, 3).await.unwrap();
    assert_eq!(&part[..], b"two");
    assert!(t.fs.read(ino, open.fh, 26, 10).await.unwrap().is_empty());
    assert_eq!(
        &t.fs.read(ino, open.fh, 20, 100).await.unwrap()[..],
        b"longer"
    );
    let calls = t.blob_calls();
    assert!(
        calls
            .iter()
            .any(|c| c.ends_with(&format!("{} 6 3", t.a.layers[1]))),
        "{calls:?}"
    );
    assert!(
        calls
            .iter()
            .any(|c| c.ends_with(&format!("{} 20 6", t.a.layers[1]))),
        "{calls:?}"
    );
}

#[tokio::test]
async fn layout_files_are_a_valid_oci_layout() {
    let t = setup();
    let dir = format!("{REG}/app/web/v1");
    let layout = t.json(&format!("{dir}/oci-layout")).await;
    assert_eq!(layout, serde_json::json!({"imageLayoutVersion": "1.0.0"}));
    let index = t.json(&format!("{dir}/index.json")).await;
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["mediaType"], OCI_MANIFEST);
    assert_eq!(entries[0]["digest"], t.a.digest.as_str());
    assert_eq!(entries[0]["size"], t.a.manifest.len());
    assert_eq!(
        entries[0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    // Every descriptor reachable from index.json is a blob with matching bytes.
    let blob = |d: &str| format!("{dir}/blobs/sha256/{}", hex(d));
    assert_eq!(t.cat(&blob(&t.a.digest)).await.unwrap(), t.a.manifest);
    assert_eq!(t.cat(&blob(&t.a.config)).await.unwrap(), t.a.config_bytes);
    assert_eq!(
        t.cat(&format!("{dir}/config.json")).await.unwrap(),
        t.a.config_bytes
    );
    assert_eq!(
        &t.cat(&blob(&t.a.layers[0])).await.unwrap()[..],
        b"layer one bytes"
    );
    let m: serde_json::Value = serde_json::from_slice(&t.a.manifest).unwrap();
    for l in m["layers"].as_array().unwrap() {
        let a = t.walk(&blob(l["digest"].as_str().unwrap())).await.unwrap();
        assert_eq!(a.size, l["size"].as_u64().unwrap());
    }
    // Through a digest form there is no tag to name.
    let by_digest = t
        .json(&format!("{REG}/app/web@{}/index.json", t.a.digest))
        .await;
    assert!(by_digest["manifests"][0].get("annotations").is_none());
    // Names not in the layout.
    for missing in [
        "blobs/sha512",
        "blobs/sha256/abc",
        "blobs/sha256/XYZ",
        "nothing",
    ] {
        let e = t.walk(&format!("{dir}/{missing}")).await.unwrap_err();
        assert_eq!(e.kind(), FsErrorKind::NotFound, "{missing}");
    }
}

#[tokio::test]
async fn layers_are_symlinks_into_blobs() {
    let t = setup();
    let dir = format!("{REG}/app/web/v1");
    assert_eq!(
        t.ls(&format!("{dir}/layers")).await.unwrap(),
        ["0", "0.tar.gz", "1", "1.tar.gz"]
    );
    for (i, layer) in t.a.layers.iter().enumerate() {
        let a = t.walk(&format!("{dir}/layers/{i}.tar.gz")).await.unwrap();
        assert_eq!(a.kind, FileType::Symlink);
        let target = t.fs.readlink(a.ino).await.unwrap();
        assert_eq!(target, format!("../blobs/sha256/{}", hex(layer)));
        assert_eq!(a.size, target.len() as u64);
        // The target resolves from the layers directory.
        let resolved = format!("{dir}/layers/../{}", &target[3..]);
        let b = t.walk(&resolved.replace("layers/../", "")).await.unwrap();
        assert_eq!(b.kind, FileType::RegularFile);
    }
    let file = t.walk(&format!("{dir}/manifest.json")).await.unwrap().ino;
    assert_eq!(t.fs.readlink(file).await.unwrap_err().errno(), libc::EINVAL);
}

#[tokio::test]
async fn inspect_json_describes_the_image() {
    let t = setup();
    let text = t
        .cat(&format!("{REG}/app/web/v1/inspect.json"))
        .await
        .unwrap();
    assert!(text.ends_with(b"}\n"));
    assert!(text.starts_with(b"{\n    \"Name\": "), "4-space indent");
    let v: serde_json::Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(v["Name"], format!("{REG}/app/web"));
    assert_eq!(v["Digest"], t.a.digest.as_str());
    assert_eq!(v["Created"], "2024-01-02T03:04:05Z");
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Labels"]["k"], "v");
    assert_eq!(v["Env"], serde_json::json!(["PATH=/bin"]));
    assert_eq!(v["RepoTags"], serde_json::json!(["latest", "v1", "v2"]));
    assert_eq!(v["Layers"], serde_json::json!(t.a.layers));
    assert_eq!(v["LayersData"][1]["Size"], 26);
}

#[tokio::test]
async fn multi_arch_tag_has_platform_dirs_and_whole_index_layout() {
    let t = setup();
    let dir = format!("{REG}/tools/multi/1.0");
    assert_eq!(
        t.ls(&dir).await.unwrap(),
        [
            "oci-layout",
            "index.json",
            "manifest.json",
            "inspect.json",
            "blobs",
            "copy-to",
            "linux-amd64",
            "linux-arm64-v8"
        ]
    );
    let (index_digest, index_bytes) = &t.index;
    assert_eq!(
        &t.cat(&format!("{dir}/manifest.json")).await.unwrap(),
        index_bytes
    );
    let index = t.json(&format!("{dir}/index.json")).await;
    assert_eq!(index["manifests"][0]["mediaType"], OCI_INDEX);
    assert_eq!(index["manifests"][0]["digest"], index_digest.as_str());
    let mut all: Vec<String> = [index_digest]
        .into_iter()
        .chain([&t.amd.digest, &t.amd.config])
        .chain(&t.amd.layers)
        .chain([&t.arm.digest, &t.arm.config])
        .chain(&t.arm.layers)
        .map(|d| hex(d).to_string())
        .collect();
    assert_eq!(t.ls(&format!("{dir}/blobs/sha256")).await.unwrap(), all);
    all.sort();
    let child = t
        .cat(&format!("{dir}/blobs/sha256/{}", hex(&t.arm.digest)))
        .await
        .unwrap();
    assert_eq!(child, t.arm.manifest);
    // Each platform directory is a complete single-image layout named by the tag.
    let arm = format!("{dir}/linux-arm64-v8");
    assert_eq!(
        t.cat(&format!("{arm}/config.json")).await.unwrap(),
        t.arm.config_bytes
    );
    assert_eq!(
        t.cat(&format!("{arm}/manifest.json")).await.unwrap(),
        t.arm.manifest
    );
    let arm_index = t.json(&format!("{arm}/index.json")).await;
    assert_eq!(arm_index["manifests"][0]["digest"], t.arm.digest.as_str());
    assert_eq!(
        arm_index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "1.0"
    );
    assert_eq!(
        t.ls(&format!("{arm}/layers")).await.unwrap(),
        ["0", "0.tar.gz"]
    );
    let created =
        SystemTime::from(chrono::DateTime::parse_from_rfc3339("2023-02-01T00:00:00Z").unwrap());
    assert_eq!(t.walk(&arm).await.unwrap().mtime, created);
    // The index's inspect.json is the configured platform's image, under the index digest.
    let inspect = t.json(&format!("{dir}/inspect.json")).await;
    assert_eq!(inspect["Digest"], index_digest.as_str());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Layers"], serde_json::json!(t.amd.layers));
    for missing in ["config.json", "layers", "linux-s390x"] {
        let e = t.walk(&format!("{dir}/{missing}")).await.unwrap_err();
        assert_eq!(e.kind(), FsErrorKind::NotFound, "{missing}");
    }
}

#[tokio::test]
async fn tags_move_and_appear_after_the_ttl() {
    let t = setup();
    // The tag list as first read, kept for the TTL.
    assert_eq!(
        t.ls(&format!("{REG}/app/web")).await.unwrap(),
        ["latest", "v1", "v2"]
    );
    let dir = format!("{REG}/app/web/v1");
    let dir_ino = t.ino(&dir).await;
    let before = t.walk(&format!("{dir}/manifest.json")).await.unwrap();
    // The kernel must ask again for names below a tag once the tag TTL has passed.
    for name in [
        "manifest.json",
        "config.json",
        "inspect.json",
        "index.json",
        "layers/0.tar.gz",
    ] {
        let a = t.walk(&format!("{dir}/{name}")).await.unwrap();
        assert_eq!(a.ttl, Duration::from_secs(60), "{name}");
    }
    let by_digest = format!("{REG}/app/web@{}/manifest.json", t.a.digest);
    assert_eq!(
        t.walk(&by_digest).await.unwrap().ttl,
        Duration::from_secs(3600)
    );
    t.mock.set_tag(REG, "app/web", "v1", &t.b.digest);
    t.mock.set_tag(REG, "app/web", "v3", &t.b.digest);
    t.clock.advance(Duration::from_secs(59));
    assert_eq!(
        t.cat(&format!("{dir}/manifest.json")).await.unwrap(),
        t.a.manifest
    );
    assert_eq!(
        t.ls(&format!("{REG}/app/web")).await.unwrap(),
        ["latest", "v1", "v2"]
    );
    t.clock.advance(Duration::from_secs(1));
    assert_eq!(
        t.ls(&format!("{REG}/app/web")).await.unwrap(),
        ["latest", "v1", "v2", "v3"]
    );
    let after = t.walk(&format!("{dir}/manifest.json")).await.unwrap();
    assert_ne!(after.ino, before.ino, "new content, new inode");
    assert_eq!(
        t.cat(&format!("{dir}/manifest.json")).await.unwrap(),
        t.b.manifest
    );
    assert_eq!(
        t.ino(&dir).await,
        dir_ino,
        "the tag directory keeps its inode"
    );
    let created =
        SystemTime::from(chrono::DateTime::parse_from_rfc3339("2024-05-06T07:08:09Z").unwrap());
    assert_eq!(t.fs.getattr(dir_ino).await.unwrap().mtime, created);
    // A removed tag is gone once the TTL has passed.
    t.mock.remove_tag(REG, "app/web", "v3");
    t.clock.advance(Duration::from_secs(60));
    assert_eq!(
        t.fs.getattr(t.ino(&dir).await).await.unwrap().mtime,
        created
    );
    assert_eq!(
        t.walk(&format!("{REG}/app/web/v3"))
            .await
            .unwrap_err()
            .kind(),
        FsErrorKind::NotFound
    );
    // Digest-addressed content is fetched once, however often the TTL passes.
    let fetches = |d: &str| {
        t.mock
            .calls()
            .iter()
            .filter(|c| c.starts_with("manifest ") && c.ends_with(d))
            .count()
    };
    assert_eq!(fetches(&t.a.digest), 0, "tag answers fill the digest cache");
}

#[tokio::test]
async fn concurrent_readers_get_the_right_bytes() {
    let t = setup();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let img = t.mock.push_image(REG, "big/one", Some("1"), "{}", &[&big]);
    let path = format!("{REG}/big/one/1/blobs/sha256/{}", hex(&img.layers[0]));
    let ino = t.ino(&path).await;
    let mut tasks = Vec::new();
    for n in 0..16u64 {
        let fs = t.fs.clone();
        tasks.push(tokio::spawn(async move {
            let fh = fs.open(ino, libc::O_RDONLY, false).await.unwrap().fh;
            let mut out = Vec::new();
            let step = 4096 + n as u32 * 1000;
            loop {
                let chunk = fs.read(ino, fh, out.len() as u64, step).await.unwrap();
                if chunk.is_empty() {
                    break;
                }
                out.extend_from_slice(&chunk);
            }
            fs.release(ino, fh).await.unwrap();
            out
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap() == big);
    }
    // Concurrent first lookups of one tag share one manifest request.
    let t = setup();
    let web = t.ino(&format!("{REG}/app/web")).await;
    t.fs.readdir(web).await.unwrap();
    t.mock.clear_calls();
    let lookups: Vec<_> = (0..8)
        .map(|_| {
            let fs = t.fs.clone();
            tokio::spawn(async move { fs.lookup(web, os("v2")).await.unwrap().ino })
        })
        .collect();
    let mut inos = BTreeSet::new();
    for l in lookups {
        inos.insert(l.await.unwrap());
    }
    assert_eq!(inos.len(), 1);
    let manifest_calls = t
        .mock
        .calls()
        .iter()
        .filter(|c| c.starts_with("manifest"))
        .count();
    assert_eq!(manifest_calls, 1, "{:?}", t.mock.calls());
}

#[tokio::test]
async fn writes_outside_copy_to_are_refused() {
    let t = setup();
    let dir = t.ino(&format!("{REG}/app/web/v1")).await;
    let file = t.ino(&format!("{REG}/app/web/v1/manifest.json")).await;
    let copy_to = t.ino(&format!("{REG}/app/web/v1/copy-to")).await;
    assert_eq!(
        t.fs.open(file, libc::O_WRONLY, false)
            .await
            .unwrap_err()
            .errno(),
        libc::EROFS
    );
    assert_eq!(
        t.fs.open(file, libc::O_RDWR, false)
            .await
            .unwrap_err()
            .errno(),
        libc::EROFS
    );
    assert_eq!(
        t.fs.open(dir, libc::O_RDONLY, false)
            .await
            .unwrap_err()
            .errno(),
        libc::EISDIR
    );
    let e =
        t.fs.create(dir, os("new"), libc::O_WRONLY)
            .await
            .unwrap_err();
    assert_eq!(e.errno(), libc::EROFS);
    assert_eq!(
        t.fs.unlink(dir, os("manifest.json"))
            .await
            .unwrap_err()
            .errno(),
        libc::EROFS
    );
    assert_eq!(
        t.fs.setattr(file, Some(0)).await.unwrap_err().errno(),
        libc::EROFS
    );
    assert_eq!(t.fs.refusal(dir).errno(), libc::EROFS);
    assert_eq!(t.fs.refusal(ROOT_INO).errno(), libc::EROFS);
    assert_eq!(t.fs.refusal(copy_to).errno(), libc::EPERM);
    assert_eq!(
        t.fs.access(file, libc::W_OK).await.unwrap_err().errno(),
        libc::EROFS
    );
    assert!(t.fs.access(file, libc::R_OK).await.is_ok());
    assert!(t.fs.access(copy_to, libc::W_OK).await.is_ok());
    let fh = t.fs.open(file, libc::O_RDONLY, false).await.unwrap().fh;
    assert_eq!(
        t.fs.write(file, fh, 0, b"x").await.unwrap_err().errno(),
        libc::EROFS
    );
    assert_eq!(
        t.fs.read(file, 999, 0, 1).await.unwrap_err().errno(),
        libc::EBADF
    );
    assert_eq!(t.fs.readdir(file).await.unwrap_err().errno(), libc::ENOTDIR);
    assert_eq!(
        t.fs.lookup(file, os("x")).await.unwrap_err().errno(),
        libc::ENOTDIR
    );
    let s = t.fs.statfs();
    assert!(s.files >= 3 && s.namelen == 255);
}

#[tokio::test]
async fn docker_schema2_images_are_laid_out_in_their_oci_form() {
    use crate::manifest::media_types::{
        DOCKER_CONFIG, DOCKER_LAYER_GZIP, DOCKER_V2S2, OCI_CONFIG, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
        OCI_MANIFEST,
    };
    let t = setup();
    let config = config_json("2021-01-01T00:00:00Z", "amd64");
    let cd = t.mock.add_blob(REG, "legacy", config.as_bytes());
    let ld = t.mock.add_blob(REG, "legacy", b"tar bytes");
    let zd = t.mock.add_blob(REG, "legacy", b"zstd bytes");
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": DOCKER_V2S2,
        "config": {"mediaType": DOCKER_CONFIG, "digest": cd, "size": config.len()},
        "layers": [
            {"mediaType": DOCKER_LAYER_GZIP, "digest": ld, "size": 9},
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": zd, "size": 10},
        ],
    })
    .to_string();
    // The registry labels it generically; the content says what it is.
    let md = t
        .mock
        .add_manifest(REG, "legacy", manifest.as_bytes(), "application/json");
    t.mock.set_tag(REG, "legacy", "old", &md);
    let dir = format!("{REG}/legacy/old");
    // manifest.json is the registry's; index.json names the OCI form, kept in blobs/
    // beside it, with the same config and layer blobs.
    assert_eq!(
        t.cat(&format!("{dir}/manifest.json")).await.unwrap(),
        manifest.as_bytes()
    );
    let index = t.json(&format!("{dir}/index.json")).await;
    assert_eq!(index["manifests"][0]["mediaType"], OCI_MANIFEST);
    assert_eq!(
        index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "old"
    );
    let form_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(form_digest, md);
    let form_path = format!("{dir}/blobs/sha256/{}", &form_digest[7..]);
    let form = t.cat(&form_path).await.unwrap();
    assert_eq!(crate::manifest::sha256_digest(&form), form_digest);
    assert_eq!(index["manifests"][0]["size"], form.len());
    let form: serde_json::Value = serde_json::from_slice(&form).unwrap();
    assert_eq!(form["config"]["digest"], cd.as_str());
    assert_eq!(form["config"]["mediaType"], OCI_CONFIG);
    assert_eq!(form["layers"][0]["digest"], ld.as_str());
    assert_eq!(form["layers"][0]["mediaType"], OCI_LAYER_GZIP);
    assert_eq!(form["layers"][1]["mediaType"], OCI_LAYER_ZSTD);
    let blobs = t.ls(&format!("{dir}/blobs/sha256")).await.unwrap();
    for d in [&md, &form_digest, &cd, &ld, &zd] {
        assert!(blobs.contains(&d[7..].to_string()), "{d} not in {blobs:?}");
    }
    assert_eq!(
        t.ls(&format!("{dir}/layers")).await.unwrap(),
        ["0", "0.tar.gz", "1", "1.tar.zst"]
    );
    assert_eq!(
        t.json(&format!("{dir}/inspect.json")).await["Created"],
        "2021-01-01T00:00:00Z"
    );
}

use std::collections::BTreeSet;
use std::time::SystemTime;

#[tokio::test]
async fn a_config_time_go_refuses_is_an_error_not_a_panic() {
    let t = setup();
    // Go's RFC 3339 parser takes offsets up to 23:59; `+24:00` once panicked here.
    let bad = t.mock.push_image(
        REG,
        "app/odd",
        Some("1"),
        &config_json("2024-01-02T03:04:05+24:00", "amd64"),
        &[b"layer"],
    );
    let dir = format!("{REG}/app/odd/1");
    // The directory is there (its time is when it was first seen, not the config's).
    let attr = t.walk(&dir).await.unwrap();
    assert_ne!(
        attr.mtime,
        SystemTime::from(chrono::DateTime::parse_from_rfc3339("2024-01-02T03:04:05Z").unwrap())
    );
    assert!(t.walk(&format!("{dir}/config.json")).await.is_ok());
    assert!(t
        .walk(&format!("{dir}/blobs/sha256/{}", hex(&bad.layers[0])))
        .await
        .is_ok());
    // inspect.json, which needs the time, fails naming it.
    let err = t.walk(&format!("{dir}/inspect.json")).await.unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::Io);
    assert!(format!("{err:?}").contains("+24:00"), "{err:?}");
}

#[tokio::test]
async fn a_handle_open_when_its_blob_failed_verification_reads_eio() {
    let t = setup();
    let path = format!("{REG}/app/web/v1/blobs/sha256/{}", hex(&t.a.layers[1]));
    let ino = t.ino(&path).await;
    let before = t.fs.open(ino, libc::O_RDONLY, false).await.unwrap();
    assert_eq!(
        &t.fs.read(ino, before.fh, 0, 5).await.unwrap()[..],
        b"layer"
    );
    t.mock.fail_verification(&t.a.layers[1]);
    // What `before` was served may have come from the bad bytes: it reads EIO now.
    let err = t.fs.read(ino, before.fh, 5, 5).await.unwrap_err();
    assert_eq!(err.kind(), FsErrorKind::Io);
    assert!(err.message().contains("failed verification"), "{err:?}");
    // A handle opened afterwards reads again; other blobs were never affected.
    let after = t.fs.open(ino, libc::O_RDONLY, false).await.unwrap();
    assert_eq!(&t.fs.read(ino, after.fh, 0, 5).await.unwrap()[..], b"layer");
    assert_eq!(t.fs.inodes_of_blob(&t.a.layers[1]), vec![ino]);
    assert!(t.fs.inodes_of_all_blobs().contains(&ino));
}
