//! `scry sync` against skopeo's on the same sources: the same destination names and
//! the same manifests, for registry → directory (scoped and not), YAML → registry, and
//! directory → registry; plus `--dry-run`, `--keep-going`, `--append-suffix`,
//! `--digestfile` and the refusals.

use std::collections::BTreeMap;
use std::path::Path;

use std::ffi::OsStr;

use crate::harness::{run, scry, skopeo, CmdOutput, Fixtures, Registry};

/// From a plain-HTTP registry into directories.
const REGISTRY_TO_DIR: &[&str] = &["--src-tls-verify=false", "--src", "docker", "--dest", "dir"];

/// `scry sync ARGS SOURCE DESTINATION`.
fn sync(args: &[&str], source: impl AsRef<OsStr>, dest: impl AsRef<OsStr>) -> CmdOutput {
    run(scry().arg("sync").args(args).arg(source).arg(dest))
}

/// Every image directory below `root` (relative path → manifest.json bytes).
fn images_below(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let m = dir.join("manifest.json");
        if m.is_file() {
            let rel = dir
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            out.insert(rel, std::fs::read(m).unwrap());
            return;
        }
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                walk(root, &e.path(), out);
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// A registry with `sync/app` tagged 1, 2 and latest (two images) and `other/tool:x`.
fn source_registry() -> (Registry, &'static Fixtures) {
    let reg = Registry::plain();
    let fx = Fixtures::get();
    let client = reg.client();
    fx.small
        .image
        .push(&client, "sync/app", &["1".into(), "latest".into()]);
    fx.docker.image.push(&client, "sync/app", &["2".into()]);
    fx.multilayer
        .image
        .push(&client, "other/tool", &["x".into()]);
    (reg, fx)
}

#[test]
fn registry_to_directory_names_and_bytes_match_skopeo() {
    let (reg, _) = source_registry();
    let work = tempfile::tempdir().unwrap();
    let src = reg.reference("sync/app");
    for scoped in [false, true] {
        let (ours, theirs) = (
            work.path().join(format!("scry-{scoped}")),
            work.path().join(format!("skopeo-{scoped}")),
        );
        let mut args = REGISTRY_TO_DIR.to_vec();
        if scoped {
            args.push("--scoped");
        }
        let out = sync(&args, &src, &ours);
        out.assert_success();
        assert!(
            out.stderr.contains("Synced 3 images from 1 sources"),
            "{out}"
        );
        run(skopeo().arg("sync").args(&args).arg(&src).arg(&theirs)).assert_success();
        let (a, b) = (images_below(&ours), images_below(&theirs));
        assert_eq!(a.len(), 3, "{a:?}");
        assert_eq!(a, b, "scoped={scoped}");
    }
    // One tag only, given in the source.
    let one = work.path().join("one");
    sync(REGISTRY_TO_DIR, reg.reference("sync/app:2"), &one).assert_success();
    assert_eq!(images_below(&one).keys().collect::<Vec<_>>(), ["app:2"]);
}

#[test]
fn yaml_to_registry_with_digests_regex_suffix_and_digestfile() {
    let (reg, fx) = source_registry();
    let dst = Registry::plain();
    let work = tempfile::tempdir().unwrap();
    let yaml = work.path().join("sync.yml");
    std::fs::write(
        &yaml,
        format!(
            "{host}:\n  tls-verify: false\n  images:\n    sync/app:\n      - \"1\"\n      - \"{digest}\"\n  images-by-tag-regex:\n    other/tool: ^x$\n",
            host = reg.url(),
            digest = fx.docker.image.digest,
        ),
    )
    .unwrap();
    let digests = work.path().join("digests");
    let digestfile = digests.to_str().unwrap();
    let args = [
        "--dest-tls-verify=false",
        "--src",
        "yaml",
        "--dest",
        "docker",
        "--digestfile",
        digestfile,
    ];
    let out = sync(&args, &yaml, dst.reference("mirror"));
    out.assert_success();
    assert!(
        out.stderr.contains("Synced 3 images from 1 sources"),
        "{out}"
    );
    let client = dst.client();
    let got = |repo: &str, r: &str| client.get_manifest(repo, r).map(|m| m.bytes);
    assert_eq!(
        got("mirror/app", "1"),
        Some(fx.small.image.manifest.clone())
    );
    assert_eq!(
        got("mirror/app", &fx.docker.image.digest),
        Some(fx.docker.image.manifest.clone())
    );
    assert_eq!(
        got("mirror/tool", "x"),
        Some(fx.multilayer.image.manifest.clone())
    );
    let text = std::fs::read_to_string(&digests).unwrap();
    for line in [
        format!(
            "{} docker://{}",
            fx.small.image.digest,
            dst.reference("mirror/app:1")
        ),
        format!(
            "{} docker://{}",
            fx.multilayer.image.digest,
            dst.reference("mirror/tool:x")
        ),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    // --append-suffix goes on the destination tag (and may start with a dash).
    let args = [
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--src",
        "docker",
        "--dest",
        "docker",
        "--append-suffix",
        "-m",
    ];
    sync(&args, reg.reference("sync/app:2"), dst.reference("mirror")).assert_success();
    assert_eq!(
        got("mirror/app", "2-m"),
        Some(fx.docker.image.manifest.clone())
    );
    // A bad YAML key is named.
    std::fs::write(&yaml, "quay.io:\n  imagez: {}\n").unwrap();
    let bad = sync(
        &["--src", "yaml", "--dest", "dir"],
        &yaml,
        work.path().join("n"),
    );
    bad.assert_code(1);
    assert!(bad.stderr.contains("imagez"), "{bad}");
}

#[test]
fn directory_to_registry_and_refusals() {
    let (reg, fx) = source_registry();
    let work = tempfile::tempdir().unwrap();
    let tree = work.path().join("tree");
    let scoped: Vec<&str> = REGISTRY_TO_DIR
        .iter()
        .copied()
        .chain(["--scoped"])
        .collect();
    sync(&scoped, reg.reference("sync/app"), &tree).assert_success();
    let dst = Registry::plain();
    let to_registry = [
        "--dest-tls-verify=false",
        "--src",
        "dir",
        "--dest",
        "docker",
    ];
    sync(&to_registry, &tree, dst.reference("from-dir")).assert_success();
    let pushed = dst
        .client()
        .get_manifest("from-dir/app", "2")
        .expect("app:2");
    assert_eq!(pushed.bytes, fx.docker.image.manifest);
    // Existing destination directories are refused before anything is copied.
    let again = sync(&scoped, reg.reference("sync/app"), &tree);
    again.assert_code(1);
    assert!(
        again
            .stderr
            .contains("refusing to overwrite destination directory"),
        "{again}"
    );
    // dir → dir, unknown transports and signing are refused with their reason.
    for (args, why) in [
        (vec!["--src", "dir", "--dest", "dir"], "dir to dir"),
        (
            vec!["--src", "oci-archive", "--dest", "dir"],
            "not a valid source transport",
        ),
        (
            vec!["--src", "docker", "--dest", "yaml"],
            "not a valid destination transport",
        ),
        (
            vec!["--src", "docker", "--dest", "dir", "--sign-by", "ABC"],
            "not implemented yet",
        ),
    ] {
        let out = sync(&args, &tree, work.path().join("x"));
        out.assert_code(1);
        assert!(out.stderr.contains(why), "{args:?}: {out}");
    }
}

#[test]
fn dry_run_writes_nothing_and_keep_going_finishes_the_rest() {
    let (reg, _) = source_registry();
    let work = tempfile::tempdir().unwrap();
    let out_dir = work.path().join("dry");
    let dry: Vec<&str> = REGISTRY_TO_DIR
        .iter()
        .copied()
        .chain(["--dry-run"])
        .collect();
    let out = sync(&dry, reg.reference("sync/app"), &out_dir);
    out.assert_success();
    assert_eq!(
        out.stderr.matches("Would have copied image ref").count(),
        3,
        "{out}"
    );
    assert!(!out_dir.exists(), "a dry run created {}", out_dir.display());

    // A tag that does not exist stops the sync (exit 2, as for a missing image)
    // unless --keep-going, which copies the others and still fails at the end.
    let yaml = work.path().join("sync.yml");
    std::fs::write(
        &yaml,
        format!(
            "{host}:\n  tls-verify: false\n  images:\n    sync/app:\n      - \"1\"\n      - nosuchtag\n      - \"2\"\n",
            host = reg.url(),
        ),
    )
    .unwrap();
    let stop = sync(
        &["--src", "yaml", "--dest", "dir"],
        &yaml,
        work.path().join("kept"),
    );
    stop.assert_code(2);
    assert!(stop.stderr.contains("nosuchtag"), "{stop}");
    let dest = work.path().join("kept2");
    let go = sync(
        &["--keep-going", "--src", "yaml", "--dest", "dir"],
        &yaml,
        &dest,
    );
    go.assert_code(1);
    assert!(go.stderr.contains("sync failed for 1 of 3 images"), "{go}");
    assert_eq!(
        images_below(&dest).keys().collect::<Vec<_>>(),
        ["app:1", "app:2"]
    );
}
