//! The tree at every level, read with `ls`, `sha256sum`, `jq`, `stat` and `readlink`:
//! the root's registries, a registry's repositories, a repository's tags, and every
//! file of a tag directory (single images and indexes), in all three name forms.

use std::collections::BTreeSet;
use std::path::Path;

use super::{hex_of, jq, ls, sha256sum, stat_size, tool_on, Mount};
use crate::harness::image::{Format, Image, Index};
use crate::harness::{run, shared_registry, skopeo};

/// What the directory of a single image lists.
const IMAGE_FILES: [&str; 9] = [
    "blobs",
    "config.json",
    "copy-to",
    "index.json",
    "inspect.json",
    "layers",
    "manifest.json",
    "oci-layout",
    "rootfs",
];

fn sorted(v: impl IntoIterator<Item = String>) -> Vec<String> {
    v.into_iter().collect::<BTreeSet<_>>().into_iter().collect()
}

#[test]
fn root_lists_registries_once_used_or_given() {
    let (reg, _) = shared_registry();
    let host = reg.url();

    let m = Mount::start(&["--tls-verify=false"]);
    assert_eq!(
        ls(m.mnt()),
        Vec::<String>::new(),
        "a fresh mount lists no registry"
    );
    // Registries that never answer leave no entry behind.
    for dead in ["127.0.0.1:1", "nothere.invalid"] {
        let listed =
            std::fs::read_dir(m.path(dead)).and_then(|d| d.collect::<std::io::Result<Vec<_>>>());
        assert!(listed.is_err(), "listing {dead} worked: {listed:?}");
    }
    assert_eq!(
        ls(m.mnt()),
        Vec::<String>::new(),
        "registries that never answered are listed"
    );
    assert_eq!(ls(&m.path(&format!("{host}/small"))), ["1.0", "latest"]);
    assert_eq!(ls(m.mnt()), [host.as_str()], "the registry once used");

    // --background returns once the mount is live (Mount checks), and unmount() checks
    // that the detached process ends.
    let given = Mount::background(&["--tls-verify=false", "--registry", &host]);
    assert_eq!(
        ls(given.mnt()),
        [host.as_str()],
        "the registry given with --registry"
    );
    // A registry directory lists the catalog.
    let repos = ls(&given.path(&host));
    for r in [
        "docker",
        "dockerlist",
        "manytags",
        "multiarch",
        "multilayer",
        "small",
    ] {
        assert!(repos.iter().any(|x| x == r), "{r} missing from {repos:?}");
    }
    let tags = ls(&given.path(&format!("{host}/manytags")));
    assert_eq!(tags.len(), crate::harness::fixtures::MANY_TAGS, "{tags:?}");
    given.unmount();
    m.unmount();
}

/// Nested repositories: a namespace directory lists what is under it (from the
/// catalog), a repository lists its tags and its sub-repositories, and `blobs/` lists
/// the image's blobs.
#[test]
fn namespaces_and_sub_repositories_are_listed() {
    let (_, fx) = shared_registry();
    let reg = crate::harness::Registry::plain();
    let client = reg.client();
    let tags = ["1.0".to_string()];
    fx.small.image.push(&client, "team/app", &tags);
    fx.small.image.push(&client, "team/app/debug", &tags);
    fx.docker.image.push(&client, "team/tools/lint", &tags);
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    assert_eq!(ls(&m.path(&host)), ["team"]);
    assert_eq!(ls(&m.path(&format!("{host}/team"))), ["app", "tools"]);
    assert_eq!(ls(&m.path(&format!("{host}/team/app"))), ["1.0", "debug"]);
    assert_eq!(ls(&m.path(&format!("{host}/team/app/debug"))), ["1.0"]);
    assert_eq!(ls(&m.path(&format!("{host}/team/tools"))), ["lint"]);
    let image = m.path(&format!("{host}/team/tools/lint/1.0"));
    assert_eq!(sha256sum(&image.join("manifest.json")), fx.docker.digest);
    assert_eq!(ls(&image.join("blobs")), ["sha256"]);
    let blobs = ls(&image.join("blobs/sha256"));
    for b in fx
        .docker
        .layers
        .iter()
        .map(|l| &l.blob.digest)
        .chain([&fx.docker.digest])
    {
        assert!(
            blobs.contains(&hex_of(b).to_string()),
            "{b} missing: {blobs:?}"
        );
    }
    m.unmount();
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// The digest and size of the manifest `DIR/index.json` names, after checking that it
/// is an OCI type and that its bytes are in `blobs/` under that digest.
#[track_caller]
fn layout_manifest(dir: &Path, what: &str) -> (String, u64) {
    let index = dir.join("index.json");
    let digest = jq(".manifests[0].digest", &index);
    let size: u64 = jq(".manifests[0].size", &index).parse().unwrap();
    let media_type = jq(".manifests[0].mediaType", &index);
    assert!(
        media_type == OCI_MANIFEST || media_type == OCI_INDEX,
        "{what}/index.json names a {media_type}"
    );
    let blob = dir.join("blobs/sha256").join(hex_of(&digest));
    assert_eq!(
        sha256sum(&blob),
        digest,
        "{what}: the manifest index.json names"
    );
    assert_eq!(
        stat_size(&blob),
        size,
        "{what}: the manifest index.json names"
    );
    (digest, size)
}

/// Checks the files of an image directory `dir` against `image`.
#[track_caller]
fn check_image_dir(dir: &Path, image: &Image, repo: &str) {
    let what = dir.display().to_string();
    assert_eq!(ls(dir), IMAGE_FILES, "{what}");
    let manifest = dir.join("manifest.json");
    assert_eq!(sha256sum(&manifest), image.digest, "{what}/manifest.json");
    assert_eq!(stat_size(&manifest), image.manifest.len() as u64);
    assert_eq!(std::fs::read(&manifest).unwrap(), image.manifest);

    let config = dir.join("config.json");
    assert_eq!(
        sha256sum(&config),
        image.config.digest,
        "{what}/config.json"
    );
    assert_eq!(stat_size(&config), image.config.size);
    assert_eq!(jq(".architecture", &config), image.platform.architecture);
    assert_eq!(jq(".os", &config), "linux");
    assert_eq!(
        jq(".variant // \"\"", &config),
        image.platform.variant.clone().unwrap_or_default()
    );

    let inspect = dir.join("inspect.json");
    assert_eq!(jq(".Digest", &inspect), image.digest, "{what}/inspect.json");
    assert_eq!(jq(".Architecture", &inspect), image.platform.architecture);
    assert_eq!(jq(".Os", &inspect), "linux");
    assert_eq!(
        jq(".Labels[\"com.example.scry.fixture\"]", &inspect),
        repo,
        "{what}/inspect.json"
    );
    assert_eq!(
        jq(".Layers | join(\",\")", &inspect),
        image.layer_digests().join(",")
    );

    let index = dir.join("index.json");
    assert_eq!(jq(".manifests | length", &index), "1");
    let named = layout_manifest(dir, &what);
    match image.format {
        Format::Oci => {
            assert_eq!(named.0, image.digest, "{what}/index.json");
            assert_eq!(named.1, image.manifest.len() as u64);
        }
        Format::Docker => {
            // The OCI form: the same config and layers under OCI media types.
            let form: serde_json::Value = serde_json::from_slice(
                &std::fs::read(dir.join("blobs/sha256").join(hex_of(&named.0))).unwrap(),
            )
            .unwrap();
            assert_eq!(form["mediaType"], OCI_MANIFEST, "{what}");
            assert_eq!(form["config"]["digest"], image.config.digest.as_str());
            let layers: Vec<&str> = form["layers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["digest"].as_str().unwrap())
                .collect();
            assert_eq!(layers, image.layer_digests(), "{what}");
        }
    }
    assert_eq!(jq(".imageLayoutVersion", &dir.join("oci-layout")), "1.0.0");

    // blobs/sha256: the manifest (and its OCI form) and its blobs, each file named by
    // its content.
    let mut want: Vec<(String, u64)> = vec![(image.digest.clone(), image.manifest.len() as u64)];
    if named.0 != image.digest {
        want.push(named.clone());
    }
    want.extend(image.blobs().iter().map(|b| (b.digest.clone(), b.size)));
    let names = ls(&dir.join("blobs/sha256"));
    assert_eq!(
        names,
        sorted(want.iter().map(|(d, _)| hex_of(d).to_string())),
        "{what}/blobs/sha256"
    );
    for (digest, size) in &want {
        let blob = dir.join("blobs/sha256").join(hex_of(digest));
        assert_eq!(sha256sum(&blob), *digest, "{}", blob.display());
        assert_eq!(stat_size(&blob), *size, "{}", blob.display());
    }

    // layers/N.tar.gz → ../blobs/sha256/HEX, and the link resolves; layers/N/ beside.
    let layer_names =
        sorted((0..image.layers.len()).flat_map(|i| [i.to_string(), format!("{i}.tar.gz")]));
    assert_eq!(ls(&dir.join("layers")), layer_names, "{what}/layers");
    for (i, l) in image.layers.iter().enumerate() {
        let link = dir.join(format!("layers/{i}.tar.gz"));
        let target = std::fs::read_link(&link).unwrap();
        assert_eq!(
            target.to_string_lossy(),
            format!("../blobs/sha256/{}", hex_of(&l.blob.digest))
        );
        assert_eq!(sha256sum(&link), l.blob.digest, "{}", link.display());
        let out = tool_on("stat", &["-L", "-c", "%s"], &[&link]);
        out.assert_success();
        assert_eq!(out.stdout.trim(), l.blob.size.to_string());
    }
}

#[test]
fn tag_directories_show_the_image_files() {
    let (reg, fx) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    for f in [&fx.small, &fx.multilayer, &fx.docker] {
        let repo_dir = m.path(&format!("{host}/{}", f.repo));
        assert_eq!(ls(&repo_dir), sorted(f.tags.clone()), "tags of {}", f.repo);
        check_image_dir(&repo_dir.join("latest"), &f.image, &f.repo);
    }
    // The other name forms show the same image: REPO:TAG, REPO@DIGEST, REPO/sha256:HEX.
    let small = &fx.small;
    for rel in [
        format!("{host}/small:1.0"),
        format!("{host}/small@{}", small.digest),
        format!("{host}/small/{}", small.digest),
        format!("{host}/small/1.0"),
    ] {
        check_image_dir(&m.path(&rel), &small.image, "small");
    }
    m.unmount();
}

/// The files of an index directory and of each platform directory.
#[track_caller]
fn check_index_dir(dir: &Path, index: &Index, repo: &str, platforms: &[&str]) {
    let what = dir.display().to_string();
    let mut want: Vec<String> = [
        "blobs",
        "copy-to",
        "index.json",
        "inspect.json",
        "manifest.json",
        "oci-layout",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    want.extend(platforms.iter().map(|s| s.to_string()));
    assert_eq!(ls(dir), sorted(want), "{what}");
    assert_eq!(
        sha256sum(&dir.join("manifest.json")),
        index.digest,
        "{what}"
    );
    let named = layout_manifest(dir, &what);
    if index.format == Format::Oci {
        assert_eq!(named.0, index.digest, "{what}/index.json");
    }

    // blobs/: the index, every child manifest and every blob they name (and, for Docker
    // manifest lists, the OCI forms of the list and of each child).
    let mut blobs = BTreeSet::from([hex_of(&index.digest).to_string()]);
    blobs.insert(hex_of(&named.0).to_string());
    for (i, c) in index.children.iter().enumerate() {
        blobs.insert(hex_of(&c.digest).to_string());
        blobs.extend(c.blobs().iter().map(|b| hex_of(&b.digest).to_string()));
        if index.format == Format::Docker {
            let form = jq(
                &format!(".manifests[{i}].digest"),
                &dir.join("blobs/sha256").join(hex_of(&named.0)),
            );
            blobs.insert(hex_of(&form).to_string());
        }
    }
    assert_eq!(
        ls(&dir.join("blobs/sha256")),
        blobs.iter().cloned().collect::<Vec<_>>(),
        "{what}/blobs/sha256"
    );
    for hex in &blobs {
        let blob = dir.join("blobs/sha256").join(hex);
        assert_eq!(sha256sum(&blob), format!("sha256:{hex}"));
    }

    assert_eq!(platforms.len(), index.children.len());
    for (name, child) in platforms.iter().zip(&index.children) {
        let mut expected = format!("linux-{}", child.platform.architecture);
        if let Some(v) = &child.platform.variant {
            expected = format!("{expected}-{v}");
        }
        assert_eq!(*name, expected);
        check_image_dir(&dir.join(name), child, repo);
    }
}

#[test]
fn index_directories_have_one_directory_per_platform() {
    let (reg, fx) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    check_index_dir(
        &m.path(&format!("{host}/multiarch/latest")),
        &fx.multiarch,
        "multiarch",
        &["linux-amd64", "linux-arm64-v8", "linux-arm-v7"],
    );
    check_index_dir(
        &m.path(&format!("{host}/dockerlist/latest")),
        &fx.dockerlist,
        "dockerlist",
        &["linux-amd64", "linux-arm64-v8"],
    );
    m.unmount();
}

/// `inspect.json` agrees with `skopeo inspect` of the same image, tags included.
#[test]
fn inspect_json_agrees_with_skopeo_inspect() {
    let (reg, _) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    for repo in ["small", "docker", "multiarch"] {
        let out = run(skopeo().args([
            "inspect",
            "--tls-verify=false",
            "--override-arch",
            "amd64",
            &reg.docker_ref(&format!("{repo}:latest")),
        ]));
        out.assert_success();
        let want = out.json();
        let file = m.path(&format!("{host}/{repo}/latest/inspect.json"));
        let got: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap())
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        for field in [
            "Name",
            "Digest",
            "Created",
            "Labels",
            "Architecture",
            "Os",
            "Layers",
            "Env",
            "RepoTags",
        ] {
            assert_eq!(got[field], want[field], "{repo}: inspect.json {field}");
        }
    }
    m.unmount();
}

/// A tag that moves shows its new image once `--tag-ttl` has passed, and a new tag
/// appears in the listing; files of the old image stay readable under its digest.
#[test]
fn a_moved_tag_shows_the_new_image_after_the_tag_ttl() {
    let (_, fx) = shared_registry();
    let reg = crate::harness::Registry::plain();
    let client = reg.client();
    fx.small
        .image
        .push(&client, "moving", &["latest".to_string()]);
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false", "--tag-ttl", "1s"]);
    let repo = m.path(&format!("{host}/moving"));
    let manifest = repo.join("latest/manifest.json");
    assert_eq!(sha256sum(&manifest), fx.small.digest);
    assert_eq!(ls(&repo), ["latest"]);

    fx.docker.image.push(
        &client,
        "moving",
        &["latest".to_string(), "new".to_string()],
    );
    super::wait_until(
        std::time::Duration::from_secs(20),
        "the moved tag to show the new manifest",
        || sha256sum(&manifest) == fx.docker.digest,
    );
    assert_eq!(
        jq(
            ".Labels[\"com.example.scry.fixture\"]",
            &repo.join("latest/inspect.json")
        ),
        "docker"
    );
    super::wait_until(
        std::time::Duration::from_secs(20),
        "the new tag to be listed",
        || ls(&repo) == ["latest", "new"],
    );
    // inspect.json's RepoTags follow the tag list.
    super::wait_until(
        std::time::Duration::from_secs(20),
        "inspect.json to list the new tag",
        || jq(".RepoTags | join(\",\")", &repo.join("latest/inspect.json")) == "latest,new",
    );
    assert_eq!(
        sha256sum(&m.path(&format!("{host}/moving@{}/manifest.json", fx.small.digest))),
        fx.small.digest
    );
    m.unmount();
}

/// `MNT/.scry/stats.json` is JSON with the filesystem's and the cache's counters.
#[test]
fn stats_json_is_readable() {
    let (reg, fx) = shared_registry();
    let m = Mount::start(&["--tls-verify=false"]);
    let blob = m.path(&format!(
        "{}/small/latest/blobs/sha256/{}",
        reg.url(),
        hex_of(&fx.small.layers[0].blob.digest)
    ));
    assert_eq!(sha256sum(&blob), fx.small.layers[0].blob.digest);
    let stats = m.path(".scry/stats.json");
    let fetched: u64 = jq(".backend.bytes_fetched", &stats)
        .parse()
        .expect("a number");
    assert!(
        fetched >= fx.small.layers[0].blob.size,
        "stats.json counts {fetched} bytes fetched after reading a {}-byte layer",
        fx.small.layers[0].blob.size
    );
    assert!(jq(".fs.inodes_live", &stats).parse::<u64>().unwrap() > 0);
    m.unmount();
}

/// SIGINT and SIGTERM unmount cleanly: the process exits with success and the mount
/// point is free again.
#[test]
fn sigint_and_sigterm_unmount_cleanly() {
    let (reg, _) = shared_registry();
    for signal in [libc::SIGINT, libc::SIGTERM] {
        let m = Mount::start(&["--tls-verify=false"]);
        assert_eq!(
            ls(&m.path(&format!("{}/small", reg.url()))),
            ["1.0", "latest"]
        );
        m.stop_with(signal);
    }
}

/// `--override-arch/--override-variant` choose the platform `inspect.json` of an index
/// describes (as they do for `scry inspect`); file times are the image's `created`.
#[test]
fn overrides_choose_the_platform_and_times_are_the_image_created_time() {
    let (reg, fx) = shared_registry();
    let m = Mount::start(&[
        "--tls-verify=false",
        "--override-arch",
        "arm",
        "--override-variant",
        "v7",
    ]);
    let dir = m.path(&format!("{}/multiarch/latest", reg.url()));
    let inspect = dir.join("inspect.json");
    assert_eq!(jq(".Architecture", &inspect), "arm");
    let arm = fx.multiarch.child("arm", Some("v7"));
    assert_eq!(
        jq(".Layers | join(\",\")", &inspect),
        arm.layer_digests().join(",")
    );
    // mtime = the config's `created`, before any layer byte is read.
    let created = jq(".created", &dir.join("linux-arm-v7/config.json"));
    let want = tool_on("date", &["-u", "-d", &created, "+%s"], &[]);
    want.assert_success();
    for f in ["manifest.json", "config.json", "layers"] {
        let got = tool_on(
            "stat",
            &["-L", "-c", "%Y"],
            &[&dir.join("linux-arm-v7").join(f)],
        );
        got.assert_success();
        assert_eq!(got.stdout.trim(), want.stdout.trim(), "mtime of {f}");
    }
    m.unmount();
}

/// Registries that registries.conf names are listed at the root from the start (no
/// request is made for the listing), with those given by `--registry`.
#[test]
fn registries_conf_registries_are_listed_at_the_root() {
    let dir = crate::mount_tests::scratch("regconf-");
    let conf = dir.path().join("registries.conf");
    std::fs::write(
        &conf,
        "[[registry]]\nprefix = \"conf.example/team\"\nlocation = \"mirror.example:5000/team\"\n\n[[registry]]\nlocation = \"gone.example\"\nblocked = true\n",
    )
    .unwrap();
    let conf = conf.display().to_string();
    let m = Mount::start(&["--registries-conf", &conf, "--registry", "given.example"]);
    assert_eq!(
        ls(m.mnt()),
        ["conf.example", "given.example", "mirror.example:5000"]
    );
    m.unmount();
}
