//! Flags of local destinations and sources, checked against skopeo 1.9.3:
//! `--dest-shared-blob-dir` / `--src-shared-blob-dir` for `oci:` layouts, and
//! `--additional-tag` for `docker-archive:`.

use super::{assert_same_tree, scratch, scry_copy, skopeo_copy, skopeo_inspect};
use crate::harness::{run, scry, shared_registry, skopeo};

/// An `oci:` layout whose blobs live in a shared directory: scry writes the same
/// layout and blob directory as skopeo, and each tool reads what the other wrote.
#[test]
fn shared_blob_dirs_are_written_and_read_as_skopeo_does() {
    let (reg, fx) = shared_registry();
    let tmp = scratch();
    let src = reg.docker_ref("multilayer:latest");
    let path = |name: &str| tmp.path().join(name).display().to_string();
    for (name, copy) in [
        (
            "scry",
            scry_copy as fn(&[&str]) -> crate::harness::CmdOutput,
        ),
        ("skopeo", skopeo_copy),
    ] {
        let (layout, shared) = (
            path(&format!("{name}-layout")),
            path(&format!("{name}-blobs")),
        );
        copy(&[
            "--dest-shared-blob-dir",
            &shared,
            &src,
            &format!("oci:{layout}:v1"),
        ])
        .assert_success();
    }
    assert_same_tree(
        &tmp.path().join("scry-blobs"),
        &tmp.path().join("skopeo-blobs"),
    );
    // The layouts: the same index.json and oci-layout (skopeo also leaves an empty
    // blobs/ directory there; scry does not).
    for file in ["index.json", "oci-layout"] {
        let read = |name: &str| std::fs::read(tmp.path().join(name).join(file)).unwrap();
        assert!(
            read("scry-layout") == read("skopeo-layout"),
            "{file} differs from skopeo's"
        );
    }

    // skopeo reads scry's layout through the shared directory, and scry skopeo's.
    let seen = skopeo_inspect(
        &["--shared-blob-dir", &path("scry-blobs")],
        &format!("oci:{}:v1", path("scry-layout")),
    );
    assert_eq!(seen.json()["Digest"], fx.multilayer.digest.as_str());
    let out = path("from-skopeo");
    scry_copy(&[
        "--src-shared-blob-dir",
        &path("skopeo-blobs"),
        &format!("oci:{}:v1", path("skopeo-layout")),
        &format!("dir:{out}"),
    ])
    .assert_success();
    super::assert_dir_holds_image(&tmp.path().join("from-skopeo"), &fx.multilayer.image);
}

/// `--additional-tag` names the same image more than once in a `docker save` archive,
/// as skopeo writes it: both tools list the same tags, and every tag reads the image.
#[test]
fn additional_tags_name_the_image_in_a_docker_archive() {
    let (reg, fx) = shared_registry();
    let tmp = scratch();
    let src = reg.docker_ref("small:latest");
    let archive = |name: &str| tmp.path().join(name).display().to_string();
    let tags = [
        "--additional-tag",
        "team/app:2",
        "--additional-tag",
        "team/app:latest",
    ];
    for (name, copy) in [
        (
            "scry.tar",
            scry_copy as fn(&[&str]) -> crate::harness::CmdOutput,
        ),
        ("skopeo.tar", skopeo_copy),
    ] {
        let mut args = tags.to_vec();
        let dest = format!("docker-archive:{}:team/app:1", archive(name));
        args.extend([src.as_str(), dest.as_str()]);
        copy(&args).assert_success();
    }
    let list = |tool: std::process::Command, name: &str| {
        let mut cmd = tool;
        cmd.args(["list-tags", &format!("docker-archive:{}", archive(name))]);
        let out = run(&mut cmd);
        out.assert_success();
        out.json()
    };
    let mine = list(scry(), "scry.tar");
    assert_eq!(mine, list(skopeo(), "skopeo.tar"));
    assert_eq!(mine, list(skopeo(), "scry.tar"));
    let layers = |name: &str, tag: &str| {
        skopeo_inspect(&[], &format!("docker-archive:{}:{tag}", archive(name))).json()["Layers"]
            .clone()
    };
    let want = layers("skopeo.tar", "team/app:1");
    assert_eq!(
        want.as_array().map(Vec::len),
        Some(fx.small.image.layers.len())
    );
    for tag in ["team/app:1", "team/app:2", "team/app:latest"] {
        assert_eq!(layers("scry.tar", tag), want, "{tag}");
    }
}
