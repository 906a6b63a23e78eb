//! Root, registry, namespace and repository directories; name forms; inode identity;
//! error mapping.

use super::*;
use crate::error::ErrorKind;

#[tokio::test]
async fn root_lists_known_registries_then_used_ones() {
    let t = setup();
    assert_eq!(t.ls("/").await.unwrap(), [".scry", "quay.io"]);
    // Any valid registry name can be entered without asking the backend.
    let attr = t.walk(REG).await.unwrap();
    assert_eq!(attr.kind, FileType::Directory);
    assert_eq!(attr.perm, 0o555);
    assert_eq!((attr.uid, attr.gid), (1000, 1000));
    assert!(t.walk("localhost").await.is_ok());
    assert!(t.walk("localhost:5000").await.is_ok());
    assert!(t.mock.calls().is_empty(), "{:?}", t.mock.calls());
    // Only a registry where an image was found joins the listing.
    assert_eq!(t.ls("/").await.unwrap(), [".scry", "quay.io"]);
    t.walk(&format!("{REG}/app/web/v1")).await.unwrap();
    assert_eq!(t.ls("/").await.unwrap(), [".scry", "quay.io", REG]);
}

#[tokio::test]
async fn invalid_names_are_enoent_without_backend_calls() {
    let t = setup();
    let repo = t.walk(&format!("{REG}/app/web")).await.unwrap().ino;
    let ns = t.walk(&format!("{REG}/app")).await.unwrap().ino;
    t.mock.clear_calls();
    for (parent, name) in [
        (ROOT_INO, "notaregistry"),
        (ROOT_INO, ".git"),
        (ROOT_INO, "a..b"),
        (ROOT_INO, "-x.io"),
        (ns, ".git"),
        (ns, "Upper"),
        (ns, "a b"),
        (ns, "web:.bad"),
        (ns, "web@sha256:123"),
        (ns, "web@md5:abc"),
        (repo, ".git"),
        (repo, "-v1"),
        (repo, "sha256:XYZ"),
    ] {
        let e = t.fs.lookup(parent, os(name)).await.unwrap_err();
        assert_eq!(e.errno(), libc::ENOENT, "{name}: {e:?}");
    }
    assert!(t.mock.calls().is_empty(), "{:?}", t.mock.calls());
    let e =
        t.fs.lookup(ROOT_INO, OsStr::from_bytes(b"\xff.io"))
            .await
            .unwrap_err();
    assert_eq!(e.kind(), FsErrorKind::NotFound);
}

use std::os::unix::ffi::OsStrExt;

#[tokio::test]
async fn catalog_registry_is_listed_and_exact() {
    let t = setup();
    t.mock
        .push_image(REG, "app/web/debug", Some("1"), "{}", &[]);
    assert_eq!(t.ls(REG).await.unwrap(), ["app", "tools"]);
    assert_eq!(t.ls(&format!("{REG}/app")).await.unwrap(), ["web"]);
    // Tags first, then namespaces below the repository.
    assert_eq!(
        t.ls(&format!("{REG}/app/web")).await.unwrap(),
        ["latest", "v1", "v2", "debug"]
    );
    assert!(t.walk(&format!("{REG}/app/web/debug/1")).await.is_ok());
    for missing in ["nothere", "app/nothere", "app/web/v9", "tools/multi/2.0"] {
        let e = t.walk(&format!("{REG}/{missing}")).await.unwrap_err();
        assert_eq!(e.kind(), FsErrorKind::NotFound, "{missing}");
    }
    // A repository pushed after the catalog was read is found by asking for its tags.
    t.mock.push_image(REG, "fresh", Some("1"), "{}", &[]);
    assert!(t.walk(&format!("{REG}/fresh/1")).await.is_ok());
}

#[tokio::test]
async fn without_catalog_namespaces_are_entered_but_tags_are_exact() {
    let t = setup();
    assert!(t.ls(NOCAT).await.unwrap().is_empty());
    let attr = t.walk(&format!("{NOCAT}/org/team/app/1")).await.unwrap();
    assert_eq!(attr.kind, FileType::Directory);
    assert_eq!(t.ls(&format!("{NOCAT}/org/team/app")).await.unwrap(), ["1"]);
    // Below a repository, a name must be a tag or a repository.
    let e = t
        .walk(&format!("{NOCAT}/org/team/app/2"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), FsErrorKind::NotFound);
    // Inside a namespace that is no repository, any valid name may be a namespace.
    assert!(t.walk(&format!("{NOCAT}/org/other")).await.is_ok());
}

#[tokio::test]
async fn docker_hub_style_denials() {
    let t = setup();
    let hub = "hub.example";
    t.mock.deny_unknown_repos(hub);
    t.mock
        .push_image(hub, "bitnami/redis", Some("7"), "{}", &[]);
    t.mock.push_image(hub, "private/app", Some("1"), "{}", &[]);
    assert!(t.walk(&format!("{hub}/bitnami/redis/7")).await.is_ok());
    // The registry will not say whether `bitnami/nosuch` exists.
    let e = t.walk(&format!("{hub}/bitnami/nosuch")).await.unwrap_err();
    assert_eq!(e.errno(), libc::EACCES);
    // A repository we may not list: its tags are EACCES, not invented directories.
    t.mock.fail_registry(hub, Some(ErrorKind::Unauthorized));
    let e = t.walk(&format!("{hub}/secret/app/1")).await.unwrap_err();
    assert_eq!(e.errno(), libc::EACCES);
}

#[tokio::test]
async fn docker_io_short_names_are_official_images() {
    let t = setup();
    t.mock
        .push_image("docker.io", "library/alpine", Some("3"), "{}", &[]);
    let short = t.walk("docker.io/alpine/3").await.unwrap();
    let long = t.walk("docker.io/library/alpine/3").await.unwrap();
    assert_eq!(short.kind, FileType::Directory);
    assert_ne!(short.ino, long.ino);
    assert_eq!(t.ls("docker.io/alpine").await.unwrap(), ["3"]);
    let inspect = t.json("docker.io/alpine/3/inspect.json").await;
    assert_eq!(inspect["Name"], "docker.io/library/alpine");
}

#[tokio::test]
async fn tag_digest_and_colon_forms() {
    let t = setup();
    let d = &t.a.digest;
    let forms = [
        format!("{REG}/app/web/v1"),
        format!("{REG}/app/web:v1"),
        format!("{REG}/app/web@{d}"),
        format!("{REG}/app/web/{d}"),
    ];
    let mut dirs = Vec::new();
    let mut manifests = Vec::new();
    for f in &forms {
        dirs.push(t.walk(f).await.unwrap().ino);
        manifests.push(t.walk(&format!("{f}/manifest.json")).await.unwrap().ino);
        assert_eq!(
            t.cat(&format!("{f}/manifest.json")).await.unwrap(),
            t.a.manifest
        );
    }
    // Directories are never shared between paths; digest-named files are.
    let unique: BTreeSet<_> = dirs.iter().collect();
    assert_eq!(unique.len(), dirs.len());
    assert!(manifests.iter().all(|i| *i == manifests[0]));
    // The same path is the same inode, before and after the kernel forgets it.
    let again = t.walk(&forms[0]).await.unwrap().ino;
    assert_eq!(again, dirs[0]);
    t.fs.forget(again, 100);
    assert!(t.fs.getattr(again).await.is_err());
    assert_eq!(t.walk(&forms[0]).await.unwrap().ino, again);
    // readdir numbers agree with lookup.
    let web = t.walk(&format!("{REG}/app/web")).await.unwrap().ino;
    let entries = t.fs.readdir(web).await.unwrap();
    let v1 = entries.iter().find(|e| e.name == "v1").unwrap();
    assert_eq!(v1.ino, again);
    // Digest-named directories of other repositories or unknown digests do not exist.
    let zero = format!("sha256:{}", "0".repeat(64));
    for missing in [
        format!("{REG}/app/web:nosuch"),
        format!("{REG}/app/web@{zero}"),
        format!("{REG}/app/web/{zero}"),
        format!("{REG}/tools/multi/{d}"),
        format!("{REG}/app/nosuch:v1"),
    ] {
        let e = t.walk(&missing).await.unwrap_err();
        assert_eq!(e.kind(), FsErrorKind::NotFound, "{missing}");
    }
}

/// The errno of looking up a listed tag whose manifest request fails with `kind`.
async fn errno_for(kind: ErrorKind) -> i32 {
    let t = setup();
    let web = t.walk(&format!("{REG}/app/web")).await.unwrap().ino;
    t.fs.readdir(web).await.unwrap();
    t.mock.fail_registry(REG, Some(kind));
    let e = t.fs.lookup(web, os("v1")).await.unwrap_err();
    e.errno()
}

#[tokio::test]
async fn backend_errors_become_errno() {
    assert_eq!(errno_for(ErrorKind::Unauthorized).await, libc::EACCES);
    assert_eq!(errno_for(ErrorKind::Network).await, libc::EIO);
    assert_eq!(errno_for(ErrorKind::NotFound).await, libc::ENOENT);

    // A registry failing after the fact: cached digests still answer, tags refresh fails.
    let t = setup();
    let v1 = t.walk(&format!("{REG}/app/web/v1")).await.unwrap().ino;
    let layer = format!("{REG}/app/web/v1/blobs/sha256/{}", hex(&t.a.layers[0]));
    let layer_ino = t.walk(&layer).await.unwrap().ino;
    t.mock.fail_registry(REG, Some(ErrorKind::Network));
    t.clock.advance(Duration::from_secs(61));
    assert_eq!(t.fs.getattr(v1).await.unwrap_err().errno(), libc::EIO);
    let fh =
        t.fs.open(layer_ino, libc::O_RDONLY, false)
            .await
            .unwrap()
            .fh;
    assert_eq!(
        t.fs.read(layer_ino, fh, 0, 4).await.unwrap_err().errno(),
        libc::EIO
    );
    t.mock.fail_registry(REG, Some(ErrorKind::Unauthorized));
    assert_eq!(
        t.fs.read(layer_ino, fh, 0, 4).await.unwrap_err().errno(),
        libc::EACCES
    );
    // Bytes of a file that exists, gone from the registry or the cache: EIO, not ENOENT.
    t.mock.fail_registry(REG, Some(ErrorKind::NotFound));
    let e = t.fs.read(layer_ino, fh, 0, 4).await.unwrap_err();
    assert_eq!(e.errno(), libc::EIO, "{e:?}");
    assert!(e.message().contains("injected failure"), "{e:?}");
    t.mock.fail_registry(REG, None);
    assert_eq!(&t.fs.read(layer_ino, fh, 0, 4).await.unwrap()[..], b"laye");
}

#[tokio::test]
async fn scry_control_dir_reports_stats() {
    let t = setup();
    t.walk(&format!("{REG}/app/web/v1/inspect.json"))
        .await
        .unwrap();
    assert_eq!(t.ls(".scry").await.unwrap(), ["errors", "stats.json"]);
    assert_eq!(t.cat(".scry/errors").await.unwrap(), "");
    let stats = t.json(".scry/stats.json").await;
    assert!(stats["fs"]["cache"]["manifests"].as_u64().unwrap() >= 1);
    assert!(stats["backend"]["calls"].as_u64().unwrap() >= 2);
    let e = t.walk(".scry/nothing").await.unwrap_err();
    assert_eq!(e.kind(), FsErrorKind::NotFound);
}

#[tokio::test]
async fn an_open_directory_keeps_its_listing() {
    let t = setup();
    let web = t.ino(&format!("{REG}/app/web")).await;
    let fh = t.fs.opendir(web).await.unwrap();
    t.mock.set_tag(REG, "app/web", "v0", &t.a.digest);
    t.clock.advance(Duration::from_secs(61));
    let names = |v: &[DirEntry]| v.iter().map(|e| e.name.clone()).collect::<Vec<_>>();
    let snapshot = t.fs.dir_entries(fh).unwrap();
    assert_eq!(names(&snapshot), [".", "..", "latest", "v1", "v2"]);
    assert_eq!(
        names(&t.fs.readdir(web).await.unwrap())[2..],
        ["latest", "v0", "v1", "v2"]
    );
    t.fs.releasedir(fh);
    assert_eq!(t.fs.dir_entries(fh).unwrap_err().errno(), libc::EBADF);
    let file = t.ino(&format!("{REG}/app/web/v1/oci-layout")).await;
    assert_eq!(t.fs.opendir(file).await.unwrap_err().errno(), libc::ENOTDIR);
}

use std::collections::BTreeSet;

/// A cold `cat REG/NS/REPO/TAG/manifest.json` costs three requests in a catalog
/// registry: the catalog, the manifest, the config (for the file's mtime). A
/// namespace only the catalog shows is not probed for tags, and a tag-shaped name in a
/// listed repository is asked for as a manifest, which the next step needs anyway.
#[tokio::test]
async fn a_cold_manifest_read_costs_three_requests_with_a_catalog() {
    let t = setup();
    assert!(t
        .cat(&format!("{REG}/app/web/v1/manifest.json"))
        .await
        .is_ok());
    let calls = t.mock.calls();
    let kinds: Vec<&str> = calls
        .iter()
        .map(|c| c.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(kinds, ["catalog", "manifest", "blob"], "{calls:?}");
    // The tag list is still what `ls` shows, fetched when listed.
    assert_eq!(
        t.ls(&format!("{REG}/app/web")).await.unwrap(),
        ["latest", "v1", "v2"]
    );
    // A name in a listed repository that is no tag falls back to the tag list.
    let e = t.walk(&format!("{REG}/app/web/v9")).await.unwrap_err();
    assert_eq!(e.kind(), FsErrorKind::NotFound);
}

#[tokio::test]
async fn a_registry_with_a_port_has_a_colon_free_alias() {
    let t = setup();
    let mock_reg = "127.0.0.1:5000";
    t.mock.push_image(
        mock_reg,
        "app",
        Some("1"),
        &super::config_json("2024-01-02T03:04:05Z", "amd64"),
        &[b"l"],
    );
    let alias = t.walk("127.0.0.1_5000").await.unwrap();
    assert_eq!(alias.kind, FileType::Symlink);
    assert_eq!(t.fs.readlink(alias.ino).await.unwrap(), mock_reg);
    // Not listed: the root shows each registry once.
    assert!(!t.ls("").await.unwrap().iter().any(|n| n.contains('_')));
    // Names that only look like one are not registries.
    for bad in ["localhost_", "a_b", "x_12a", "_5000"] {
        assert!(t.walk(bad).await.is_err(), "{bad}");
    }
}
