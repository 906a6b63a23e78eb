//! `scry inspect` on local transports (`dir:`, `oci:`, `oci-archive:`,
//! `docker-archive:` with and without a reference, and a schema 1 `dir:`), compared
//! with skopeo 1.9.3 on images skopeo itself wrote from the shared registry.
//!
//! Intentional difference: scry prints `LayersData` (as current skopeo does), 1.9.3
//! does not; it is cut out of scry's text before comparing, every other byte must match.

use super::{run_both, strip_top_level_field, Mismatches};
use crate::harness::command::scratch_root;
use crate::harness::{run, shared_registry, skopeo};

#[test]
fn inspect_of_local_transports_matches_skopeo() {
    let (reg, _) = shared_registry();
    let dir = tempfile::Builder::new()
        .prefix("inspect-local-")
        .tempdir_in(scratch_root())
        .unwrap();
    let p = |name: &str| dir.path().join(name).display().to_string();
    let copy = |src: &str, dst: &str, flags: &[&str]| {
        run(skopeo()
            .args(["copy", "-q", "--src-tls-verify=false"])
            .args(flags)
            .args([src, dst]))
        .assert_success();
    };
    let docker = reg.docker_ref("docker:latest");
    let small = reg.docker_ref("small:latest");
    copy(&docker, &format!("dir:{}", p("d")), &[]);
    copy(&small, &format!("oci:{}:one", p("o")), &[]);
    copy(&docker, &format!("oci:{}:two", p("o")), &[]);
    copy(&small, &format!("oci-archive:{}:t", p("o.tar")), &[]);
    copy(
        &docker,
        &format!("docker-archive:{}:team/app:2", p("d.tar")),
        &[],
    );
    copy(&docker, &format!("dir:{}", p("s1")), &["--format", "v2s1"]);

    let images = [
        format!("dir:{}", p("d")),
        format!("oci:{}:one", p("o")),
        format!("oci:{}:two", p("o")),
        format!("oci-archive:{}:t", p("o.tar")),
        format!("oci-archive:{}", p("o.tar")),
        // skopeo names the image (`Name`) after the reference given, and only then.
        format!("docker-archive:{}:team/app:2", p("d.tar")),
        format!("docker-archive:{}", p("d.tar")),
        format!("docker-archive:{}:@0", p("d.tar")),
        format!("dir:{}", p("s1")),
    ];
    let mut m = Mismatches::default();
    for image in &images {
        let (s, k) = run_both(&[], &["inspect"], image);
        if m.both_ok(image, &s, &k) {
            let (theirs, had) = strip_top_level_field(&k.stdout, "LayersData");
            assert!(
                !had,
                "the oracle is expected to be skopeo 1.9.3 (no LayersData)"
            );
            let (ours, _) = strip_top_level_field(&s.stdout, "LayersData");
            m.same_bytes(image, ours.as_bytes(), theirs.as_bytes());
        }
        for flags in [
            &["--raw"][..],
            &["--config"][..],
            &["--config", "--raw"][..],
        ] {
            let mut sub = vec!["inspect"];
            sub.extend_from_slice(flags);
            let (s, k) = run_both(&[], &sub, image);
            m.same_stdout(&format!("{image} {flags:?}"), &s, &k);
        }
    }
    // The reference's name is what skopeo prints.
    let named = format!("docker-archive:{}:team/app:2", p("d.tar"));
    let (s, _) = run_both(&[], &["inspect"], &named);
    assert_eq!(s.json()["Name"], "docker.io/team/app", "{s}");
    m.finish();
}
