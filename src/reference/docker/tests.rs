//! Table-driven tests of the docker reference grammar and normalisation.

use super::*;
use crate::error::ErrorKind;

fn d64(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

/// (input, registry, repository, tag, digest)
type Case = (
    String,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<String>,
);

#[test]
fn parses_and_normalises() {
    let da = d64('a');
    let cases: Vec<Case> = vec![
        ("alpine".into(), "docker.io", "library/alpine", None, None),
        (
            "alpine:3.19".into(),
            "docker.io",
            "library/alpine",
            Some("3.19"),
            None,
        ),
        (
            "library/alpine".into(),
            "docker.io",
            "library/alpine",
            None,
            None,
        ),
        (
            "docker.io/alpine".into(),
            "docker.io",
            "library/alpine",
            None,
            None,
        ),
        (
            "docker.io/library/alpine:latest".into(),
            "docker.io",
            "library/alpine",
            Some("latest"),
            None,
        ),
        (
            "index.docker.io/alpine".into(),
            "docker.io",
            "library/alpine",
            None,
            None,
        ),
        (
            "index.docker.io/user/app".into(),
            "docker.io",
            "user/app",
            None,
            None,
        ),
        ("user/app".into(), "docker.io", "user/app", None, None),
        ("a/b/c/d".into(), "docker.io", "a/b/c/d", None, None),
        (
            "quay.io/podman/stable:latest".into(),
            "quay.io",
            "podman/stable",
            Some("latest"),
            None,
        ),
        ("quay.io/app".into(), "quay.io", "app", None, None),
        ("Quay.IO/app".into(), "Quay.IO", "app", None, None),
        ("localhost/app".into(), "localhost", "app", None, None),
        (
            "localhost:5000/a/b:t".into(),
            "localhost:5000",
            "a/b",
            Some("t"),
            None,
        ),
        (
            format!("localhost:5000/a/b:t@{da}"),
            "localhost:5000",
            "a/b",
            Some("t"),
            Some(da.clone()),
        ),
        (
            format!("alpine@{da}"),
            "docker.io",
            "library/alpine",
            None,
            Some(da.clone()),
        ),
        ("127.0.0.1:5000/x".into(), "127.0.0.1:5000", "x", None, None),
        ("[::1]:5000/x:1".into(), "[::1]:5000", "x", Some("1"), None),
        ("[fe80::1]/x".into(), "[fe80::1]", "x", None, None),
        (
            "my-registry.example.com:443/team/app".into(),
            "my-registry.example.com:443",
            "team/app",
            None,
            None,
        ),
        // "localhost" alone and "name:port" without a slash are a repository and a tag.
        (
            "localhost".into(),
            "docker.io",
            "library/localhost",
            None,
            None,
        ),
        (
            "localhost:5000".into(),
            "docker.io",
            "library/localhost",
            Some("5000"),
            None,
        ),
        (
            "a:5000".into(),
            "docker.io",
            "library/a",
            Some("5000"),
            None,
        ),
        // Separators inside path components.
        (
            "a--b__c.d".into(),
            "docker.io",
            "library/a--b__c.d",
            None,
            None,
        ),
        ("a-----b".into(), "docker.io", "library/a-----b", None, None),
        ("a_b".into(), "docker.io", "library/a_b", None, None),
        ("0".into(), "docker.io", "library/0", None, None),
        ("quay.io".into(), "docker.io", "library/quay.io", None, None),
        // Tags.
        ("a:_x".into(), "docker.io", "library/a", Some("_x"), None),
        (
            "a:X.y-Z_1".into(),
            "docker.io",
            "library/a",
            Some("X.y-Z_1"),
            None,
        ),
    ];
    for (input, registry, repository, tag, digest) in cases {
        let r = DockerReference::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(r.registry(), registry, "registry of {input:?}");
        assert_eq!(r.repository(), repository, "repository of {input:?}");
        assert_eq!(r.tag(), tag, "tag of {input:?}");
        assert_eq!(r.digest(), digest.as_deref(), "digest of {input:?}");
        // Display re-parses to the same value.
        let again = DockerReference::parse(&r.to_string()).unwrap();
        assert_eq!(again, r, "round trip of {input:?}");
    }
    let long_tag = "t".repeat(128);
    let r = DockerReference::parse(&format!("a:{long_tag}")).unwrap();
    assert_eq!(r.tag(), Some(long_tag.as_str()));
}

/// (input, substring of the error)
#[test]
fn rejects_bad_references() {
    let h64 = "a".repeat(64);
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "reference is empty"),
        ("Foo".into(), "repository name must be lowercase"),
        ("Foo/bar".into(), "repository name must be lowercase"),
        ("foo/Bar".into(), "repository name must be lowercase"),
        ("docker.io/Foo".into(), "repository name must be lowercase"),
        (
            "quay.io/Org/app:t".into(),
            "repository name must be lowercase",
        ),
        (h64.clone(), "cannot specify 64-byte hexadecimal strings"),
        ("a:b:c".into(), "invalid tag \"b:c\""),
        (
            "alpine:-x".into(),
            "tag must start with a letter, digit or '_'",
        ),
        ("alpine:.x".into(), "tag must start"),
        ("alpine:".into(), "tag is empty"),
        ("alpine:a/b".into(), "invalid registry host \"alpine:a\""),
        ("alpine:a%b".into(), "tag may only contain"),
        ("alpine:a+b".into(), "tag may only contain"),
        (
            format!("alpine:{}", "x".repeat(129)),
            "tag is longer than 128 characters",
        ),
        ("alpine@sha256:abc".into(), "invalid checksum digest length"),
        (
            format!("alpine@sha256:{}", h64.to_uppercase()),
            "invalid checksum digest format",
        ),
        (format!("alpine@md5:{h64}"), "unsupported digest algorithm"),
        (
            format!("alpine@sha512:{h64}"),
            "invalid checksum digest length",
        ),
        ("alpine@".into(), "invalid checksum digest format"),
        (
            format!("alpine@sha256:{h64}@sha256:{h64}"),
            "invalid checksum digest",
        ),
        ("a___b".into(), "path component \"a___b\" is invalid"),
        ("a..b".into(), "is invalid"),
        ("a_.b".into(), "is invalid"),
        ("-a".into(), "is invalid"),
        ("a-".into(), "is invalid"),
        ("a.".into(), "is invalid"),
        ("a b".into(), "is invalid"),
        ("a/".into(), "empty component"),
        ("/a".into(), "empty component"),
        ("a//b".into(), "empty component"),
        ("quay.io/".into(), "empty component"),
        ("host:/a".into(), "invalid registry host \"host:\""),
        (":5000/a".into(), "invalid registry host"),
        ("host:50a/a".into(), "invalid registry host"),
        ("-host.com/a".into(), "invalid registry host"),
        (
            "local_host.com/a".into(),
            "invalid registry host \"local_host.com\"",
        ),
        ("a..com/x".into(), "invalid registry host"),
        ("[::1/x".into(), "invalid registry host"),
        ("[]:5000/x".into(), "invalid registry host"),
        ("[::g]/x".into(), "invalid registry host"),
        ("[::1]x/y".into(), "invalid registry host"),
        (
            format!("{}/bbbbbb", "a".repeat(250)),
            "must not be more than 255 characters",
        ),
        (
            format!("quay.io/{}", "a".repeat(248)),
            "must not be more than 255 characters",
        ),
    ];
    for (input, want) in cases {
        let e = DockerReference::parse(&input)
            .map(|r| panic!("{input:?} parsed as {r}"))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{input:?}");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("invalid reference {input:?}: ")),
            "{msg}"
        );
        assert!(msg.contains(want), "{input:?}: {msg:?} lacks {want:?}");
    }
    // "quay.io/" is 8 characters: 8 + 247 = 255 is exactly at the limit.
    assert!(DockerReference::parse(&format!("quay.io/{}", "a".repeat(247))).is_ok());
    assert!(DockerReference::parse(&format!("quay.io/{}", "a".repeat(248))).is_err());
}

#[test]
fn display_name_and_familiar_forms() {
    let da = d64('b');
    let full = format!("localhost:5000/a:t@{da}");
    let cases: Vec<(&str, &str, &str, &str)> = vec![
        // (input, to_string, name, familiar_string)
        (
            "alpine",
            "docker.io/library/alpine",
            "docker.io/library/alpine",
            "alpine",
        ),
        (
            "alpine:3",
            "docker.io/library/alpine:3",
            "docker.io/library/alpine",
            "alpine:3",
        ),
        (
            "user/app:v1",
            "docker.io/user/app:v1",
            "docker.io/user/app",
            "user/app:v1",
        ),
        (
            "library/a/b",
            "docker.io/library/a/b",
            "docker.io/library/a/b",
            "library/a/b",
        ),
        (
            "quay.io/library/x",
            "quay.io/library/x",
            "quay.io/library/x",
            "quay.io/library/x",
        ),
        (&full, &full, "localhost:5000/a", &full),
    ];
    for (input, display, name, familiar) in cases {
        let r: DockerReference = input.parse().unwrap();
        assert_eq!(r.to_string(), display, "{input:?}");
        assert_eq!(r.name(), name, "{input:?}");
        assert_eq!(r.familiar_string(), familiar, "{input:?}");
    }
}

#[test]
fn manifest_reference_and_api_host() {
    let da = d64('c');
    let cases: Vec<(String, &str, &str)> = vec![
        ("alpine".into(), "latest", "registry-1.docker.io"),
        ("alpine:3".into(), "3", "registry-1.docker.io"),
        (format!("quay.io/a:3@{da}"), &da, "quay.io"),
        (format!("127.0.0.1:5000/a@{da}"), &da, "127.0.0.1:5000"),
    ];
    for (input, manifest_ref, host) in cases {
        let r = DockerReference::parse(&input).unwrap();
        assert_eq!(r.manifest_reference(), manifest_ref, "{input:?}");
        assert_eq!(r.api_host(), host, "{input:?}");
    }
}

#[test]
fn with_methods() {
    let r = DockerReference::parse("alpine").unwrap();
    assert!(r.is_name_only());
    let tagged = r.clone().with_default_tag();
    assert_eq!(tagged.to_string(), "docker.io/library/alpine:latest");
    // Existing tag or digest: no default tag.
    let t3 = DockerReference::parse("alpine:3")
        .unwrap()
        .with_default_tag();
    assert_eq!(t3.tag(), Some("3"));
    let da = d64('d');
    let by_digest = r.clone().with_digest(&da).unwrap();
    assert_eq!(by_digest.clone().with_default_tag().tag(), None);
    assert_eq!(
        by_digest.to_string(),
        format!("docker.io/library/alpine@{da}")
    );

    let both = by_digest.with_tag("edge").unwrap();
    assert_eq!(
        both.to_string(),
        format!("docker.io/library/alpine:edge@{da}")
    );
    assert_eq!(both.manifest_reference(), da);
    let bare = both.without_tag_or_digest();
    assert_eq!(bare, r);

    let e = r.clone().with_tag("-bad").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(e.to_string().contains("\"-bad\""), "{e}");
    assert!(e.to_string().contains("docker.io/library/alpine"), "{e}");
    assert!(r.clone().with_tag(&"x".repeat(129)).is_err());
    let e = r.clone().with_digest("sha256:zz").unwrap_err();
    assert!(
        e.to_string().contains("invalid checksum digest length"),
        "{e}"
    );
}

#[test]
fn path_component_grammar() {
    for ok in [
        "a",
        "a0",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a---b",
        "a.b_c__d-e",
        "0-0",
    ] {
        assert!(is_path_component(ok), "{ok}");
    }
    for bad in [
        "", "A", "a.", ".a", "a..b", "a___b", "a._b", "a-.b", "a_", "-", "a:b", "é",
    ] {
        assert!(!is_path_component(bad), "{bad}");
    }
}

#[test]
fn registry_grammar() {
    for ok in [
        "docker.io",
        "a",
        "a-b.c",
        "A.B",
        "1.2.3.4:5000",
        "[::1]",
        "[::1]:1",
        "x:0",
        "localhost",
    ] {
        assert!(is_valid_registry(ok), "{ok}");
    }
    for bad in [
        "", "a-", "-a", "a..b", "a.", "a:", ":1", "a:b", "[::1]:", "[::1", "[]", "a_b.com",
    ] {
        assert!(!is_valid_registry(bad), "{bad}");
    }
}
