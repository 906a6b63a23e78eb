//! `scry list-tags` against skopeo: identical JSON for every fixture repository; references with a tag or digest, and unknown repositories, fail cleanly.

use super::{run_both, Mismatches};
use crate::harness::fixtures::MANY_TAGS;
use crate::harness::shared_registry;

#[test]
fn list_tags_matches_skopeo() {
    let (reg, f) = shared_registry();
    let mut m = Mismatches::default();
    for repo in [
        "small",
        "multilayer",
        "docker",
        "manytags",
        "multiarch",
        "dockerlist",
    ] {
        let (s, k) = run_both(&[], &["list-tags"], &reg.docker_ref(repo));
        m.same_stdout(&format!("list-tags {repo}"), &s, &k);
    }
    m.finish();

    // Independently of the oracle: every one of the 260 tags. docker-registry 2.8 sends
    // them in one page without a Link header; `faults::tag_list_follows_link_pagination`
    // covers paging.
    let (s, _) = run_both(&[], &["list-tags"], &reg.docker_ref("manytags"));
    let v = s.json();
    assert_eq!(v["Repository"], reg.reference("manytags"));
    let mut tags: Vec<String> = v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(tags.len(), MANY_TAGS);
    tags.sort();
    let mut want = f.manytags.tags.clone();
    want.sort();
    assert_eq!(tags, want);
}

#[test]
fn list_tags_refuses_tag_or_digest() {
    let (reg, f) = shared_registry();
    for image in [
        reg.docker_ref("small:latest"),
        format!("docker://{}", f.small.by_digest(reg)),
        reg.docker_ref(&format!("small:latest@{}", f.small.digest)),
    ] {
        let (s, k) = run_both(&[], &["list-tags"], &image);
        assert!(!k.success(), "{k}");
        assert_eq!(s.code, Some(1), "{s}");
        assert!(s.stdout.is_empty(), "{s}");
        let e = s.stderr.to_lowercase();
        assert!(
            e.contains("tag") && e.contains("digest"),
            "the message must say a tag or digest is not allowed: {s}"
        );
    }
}

#[test]
fn list_tags_of_unknown_repository_fails_naming_it() {
    let (reg, _) = shared_registry();
    let (s, k) = run_both(&[], &["list-tags"], &reg.docker_ref("no-such-repo"));
    assert!(!k.success(), "{k}");
    // skopeo (1.9.3 and later) exits 1 here: exit 2 is only for a manifest fetch.
    assert_eq!(k.code, Some(1), "{k}");
    assert_eq!(s.code, Some(1), "{s}");
    assert!(s.stdout.is_empty(), "{s}");
    assert!(s.stderr.contains("no-such-repo"), "{s}");
    assert!(!s.stderr.contains("panicked"), "{s}");
}

#[test]
fn list_tags_refuses_malformed_names() {
    let (reg, _) = shared_registry();
    for image in [
        reg.docker_ref("Small"),
        format!("docker:{}", reg.reference("small")),
        "foo:bar".to_string(),
    ] {
        let (s, k) = run_both(&[], &["list-tags"], &image);
        assert!(!k.success(), "{k}");
        assert_eq!(s.code, Some(1), "{s}");
        assert!(!s.stderr.contains("panicked"), "{s}");
    }
}
