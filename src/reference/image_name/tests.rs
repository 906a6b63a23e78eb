//! Table-driven tests of `transport:details` parsing.

use super::*;
use crate::error::ErrorKind;

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn dref(s: &str) -> DockerReference {
    DockerReference::parse(s).unwrap()
}

#[test]
fn transport_names_round_trip() {
    for t in Transport::ALL {
        assert_eq!(Transport::from_name(t.name()), Some(t));
        assert_eq!(t.to_string(), t.name());
    }
    assert_eq!(Transport::from_name("Docker"), None);
    assert_eq!(Transport::from_name("registry"), None);
    assert_eq!(Transport::from_name(""), None);
    let supported: Vec<_> = Transport::ALL
        .into_iter()
        .filter(|t| t.is_supported())
        .collect();
    assert_eq!(
        supported,
        [
            Transport::Docker,
            Transport::Dir,
            Transport::Oci,
            Transport::OciArchive,
            Transport::DockerArchive
        ]
    );
}

/// (input, parsed value, Display form)
#[test]
fn parses_each_transport() {
    let da = format!("sha256:{}", "a".repeat(64));
    let cases: Vec<(String, ImageName, String)> = vec![
        (
            "docker://alpine".into(),
            ImageName::Docker(dref("alpine")),
            "docker://docker.io/library/alpine".into(),
        ),
        (
            "docker://quay.io/podman/stable:latest".into(),
            ImageName::Docker(dref("quay.io/podman/stable:latest")),
            "docker://quay.io/podman/stable:latest".into(),
        ),
        (
            format!("docker://127.0.0.1:5000/a/b@{da}"),
            ImageName::Docker(dref(&format!("127.0.0.1:5000/a/b@{da}"))),
            format!("docker://127.0.0.1:5000/a/b@{da}"),
        ),
        (
            "dir:/tmp/img".into(),
            ImageName::Dir(p("/tmp/img")),
            "dir:/tmp/img".into(),
        ),
        (
            "dir:rel/a:b".into(),
            ImageName::Dir(p("rel/a:b")),
            "dir:rel/a:b".into(),
        ),
        ("dir:".into(), ImageName::Dir(p("")), "dir:".into()),
        (
            "oci:/srv/layout".into(),
            ImageName::Oci {
                path: p("/srv/layout"),
                reference: None,
                index: None,
            },
            "oci:/srv/layout".into(),
        ),
        (
            "oci:/srv/layout:".into(),
            ImageName::Oci {
                path: p("/srv/layout"),
                reference: None,
                index: None,
            },
            "oci:/srv/layout".into(),
        ),
        (
            "oci:/srv/layout:v1.0".into(),
            ImageName::Oci {
                path: p("/srv/layout"),
                reference: Some("v1.0".into()),
                index: None,
            },
            "oci:/srv/layout:v1.0".into(),
        ),
        (
            // Only the first colon splits: the name may contain colons.
            "oci:layout:example.com/app:1.0".into(),
            ImageName::Oci {
                path: p("layout"),
                reference: Some("example.com/app:1.0".into()),
                index: None,
            },
            "oci:layout:example.com/app:1.0".into(),
        ),
        (
            "oci:/l:A--b+c@d".into(),
            ImageName::Oci {
                path: p("/l"),
                reference: Some("A--b+c@d".into()),
                index: None,
            },
            "oci:/l:A--b+c@d".into(),
        ),
        (
            "oci:/srv/layout:@0".into(),
            ImageName::Oci {
                path: p("/srv/layout"),
                reference: None,
                index: Some(0),
            },
            "oci:/srv/layout:@0".into(),
        ),
        (
            "oci-archive:/tmp/a.tar:@12".into(),
            ImageName::OciArchive {
                path: p("/tmp/a.tar"),
                reference: None,
                index: Some(12),
            },
            "oci-archive:/tmp/a.tar:@12".into(),
        ),
        (
            "oci-archive:a.tar:latest".into(),
            ImageName::OciArchive {
                path: p("a.tar"),
                reference: Some("latest".into()),
                index: None,
            },
            "oci-archive:a.tar:latest".into(),
        ),
        (
            "docker-archive:/tmp/a.tar".into(),
            ImageName::DockerArchive {
                path: p("/tmp/a.tar"),
                reference: None,
                index: None,
            },
            "docker-archive:/tmp/a.tar".into(),
        ),
        (
            "docker-archive:/tmp/a.tar:alpine".into(),
            ImageName::DockerArchive {
                path: p("/tmp/a.tar"),
                reference: Some(dref("alpine:latest")),
                index: None,
            },
            "docker-archive:/tmp/a.tar:docker.io/library/alpine:latest".into(),
        ),
        (
            "docker-archive:a.tar:localhost:5000/x:3".into(),
            ImageName::DockerArchive {
                path: p("a.tar"),
                reference: Some(dref("localhost:5000/x:3")),
                index: None,
            },
            "docker-archive:a.tar:localhost:5000/x:3".into(),
        ),
        (
            "docker-archive:a.tar:@1".into(),
            ImageName::DockerArchive {
                path: p("a.tar"),
                reference: None,
                index: Some(1),
            },
            "docker-archive:a.tar:@1".into(),
        ),
        (
            "docker-daemon:alpine:3".into(),
            ImageName::DockerDaemon("alpine:3".into()),
            "docker-daemon:alpine:3".into(),
        ),
        (
            format!("docker-daemon:{da}"),
            ImageName::DockerDaemon(da.clone()),
            format!("docker-daemon:{da}"),
        ),
        (
            format!("docker-daemon:busybox@{da}"),
            ImageName::DockerDaemon(format!("busybox@{da}")),
            format!("docker-daemon:busybox@{da}"),
        ),
        (
            "containers-storage:alpine".into(),
            ImageName::ContainersStorage("alpine".into()),
            "containers-storage:alpine".into(),
        ),
        (
            "containers-storage:[overlay@/var/lib/c+/run/c:opt=1]quay.io/a:1".into(),
            ImageName::ContainersStorage("[overlay@/var/lib/c+/run/c:opt=1]quay.io/a:1".into()),
            "containers-storage:[overlay@/var/lib/c+/run/c:opt=1]quay.io/a:1".into(),
        ),
        (
            format!("containers-storage:alpine@{}", "b".repeat(64)),
            ImageName::ContainersStorage(format!("alpine@{}", "b".repeat(64))),
            format!("containers-storage:alpine@{}", "b".repeat(64)),
        ),
        (
            "containers-storage:@abc123".into(),
            ImageName::ContainersStorage("@abc123".into()),
            "containers-storage:@abc123".into(),
        ),
        (
            "sif:/x/y.sif".into(),
            ImageName::Other {
                transport: Transport::Sif,
                details: "/x/y.sif".into(),
            },
            "sif:/x/y.sif".into(),
        ),
        (
            "tarball:/a:/b".into(),
            ImageName::Other {
                transport: Transport::Tarball,
                details: "/a:/b".into(),
            },
            "tarball:/a:/b".into(),
        ),
        (
            "ostree:busybox@/ostree/repo".into(),
            ImageName::Other {
                transport: Transport::Ostree,
                details: "busybox@/ostree/repo".into(),
            },
            "ostree:busybox@/ostree/repo".into(),
        ),
    ];
    for (input, want, display) in cases {
        let got = ImageName::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(got, want, "{input:?}");
        assert_eq!(got.to_string(), display, "display of {input:?}");
        // The display form parses back to the same value.
        let again: ImageName = display
            .parse()
            .unwrap_or_else(|e| panic!("{display:?}: {e}"));
        assert_eq!(again, got, "reparse of {display:?}");
    }
}

/// (input, exact error text or substring)
#[test]
fn rejects_bad_names() {
    let h64 = "a".repeat(64);
    let cases: Vec<(String, &str)> = vec![
        ("foo".into(), r#"Invalid image name "foo", expected colon-separated transport:reference"#),
        ("".into(), r#"Invalid image name "", expected colon-separated transport:reference"#),
        ("x:y".into(), r#"Invalid image name "x:y", unknown transport "x""#),
        ("alpine:latest".into(), r#"Invalid image name "alpine:latest", unknown transport "alpine""#),
        ("DOCKER://a".into(), r#"unknown transport "DOCKER""#),
        ("docker:alpine".into(), r#"docker: image reference "alpine" does not start with //"#),
        ("docker:/alpine".into(), "does not start with //"),
        ("docker://".into(), "reference is empty"),
        ("docker://Foo".into(), r#"invalid reference "Foo": repository name must be lowercase"#),
        (
            format!("docker://alpine:3@sha256:{h64}"),
            "Docker references with both a tag and digest are currently not supported",
        ),
        ("oci:/l:Bad Name".into(), r#"invalid oci reference "/l:Bad Name": invalid image name "Bad Name""#),
        ("oci:/l:a--".into(), "invalid image name"),
        ("oci:/l:a---b".into(), "invalid image name"),
        ("oci:/l:a//b".into(), "invalid image name"),
        ("oci:/l:/a".into(), "invalid image name"),
        ("oci:/l:@a".into(), r#"invalid oci reference "/l:@a": source index @a is not an integer"#),
        ("oci:/l:@".into(), "source index @ is not an integer"),
        ("oci:/l:@-1".into(), "source index @-1 must not be negative"),
        ("oci-archive:/l:@1.5".into(), r#"invalid oci-archive reference "/l:@1.5""#),
        ("docker-archive:".into(), "isn't of the form <path>[:<reference>]"),
        ("docker-archive:/a:".into(), "docker-archive parsing reference: invalid reference \"\""),
        ("docker-archive:/a:Foo".into(), "docker-archive parsing reference: invalid reference \"Foo\": repository name must be lowercase"),
        ("docker-archive:/a:a:b:c".into(), "docker-archive parsing reference"),
        ("docker-archive:/a:@x".into(), "source index @x is not an integer"),
        ("docker-archive:/a:@-1".into(), "must not be negative"),
        (format!("docker-archive:/a:alpine@sha256:{h64}"), "docker-archive doesn't support digest references"),
        (format!("docker-archive:/a:alpine:3@sha256:{h64}"), "docker-archive doesn't support digest references"),
        ("docker-daemon:alpine".into(), "reference has neither a tag nor a digest"),
        ("docker-daemon:sha256:abc".into(), "the sha256 repository name is reserved"),
        (format!("docker-daemon:sha512:{}", "a".repeat(128)), "only digest algorithm sha256 accepted"),
        (format!("docker-daemon:alpine:3@sha256:{h64}"), "both a tag and digest"),
        (format!("docker-daemon:{h64}"), "cannot specify 64-byte hexadecimal strings"),
        ("docker-daemon:Foo:1".into(), "repository name must be lowercase"),
        ("containers-storage:".into(), "no image named"),
        ("containers-storage:[vfs@/x]".into(), "no image named after the store specifier"),
        ("containers-storage:[foo".into(), "store specifier does not end with ']'"),
        ("containers-storage:alpine@".into(), "empty trailing digest or ID"),
        ("containers-storage:alpine@xyz".into(), r#""xyz" does not look like an image ID or digest"#),
        ("containers-storage:Foo".into(), "repository name must be lowercase"),
    ];
    for (input, want) in cases {
        let e = ImageName::parse(&input)
            .map(|n| panic!("{input:?} parsed as {n:?}"))
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{input:?}: {e}");
        let msg = e.to_string();
        assert!(msg.contains(want), "{input:?}: {msg:?} lacks {want:?}");
    }
}

#[test]
fn exact_messages_for_the_common_mistakes() {
    let e = ImageName::parse("foo").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"Invalid image name "foo", expected colon-separated transport:reference"#
    );
    let e = ImageName::parse("x:y").unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"Invalid image name "x:y", unknown transport "x"; did you mean docker://x:y?"#
    );
}

/// A transport one edit away, another case, or a bare `NAME:TAG` gets a suggestion;
/// paths and far-off names do not.
#[test]
fn unknown_transports_get_a_suggestion() {
    let hint = |s: &str| {
        let e = ImageName::parse(s).unwrap_err().to_string();
        e.split_once("; did you mean ")
            .map(|(_, h)| h.trim_end_matches('?').to_string())
    };
    assert_eq!(hint("dokcer://a/b").as_deref(), Some("docker://a/b"));
    assert_eq!(hint("dockr://a/b").as_deref(), Some("docker://a/b"));
    assert_eq!(hint("DOCKER://a").as_deref(), Some("docker://a"));
    assert_eq!(hint("oic:/tmp/x").as_deref(), Some("oci:/tmp/x"));
    assert_eq!(
        hint("oci-achive:/tmp/x.tar").as_deref(),
        Some("oci-archive:/tmp/x.tar")
    );
    assert_eq!(hint("dri:/tmp/x").as_deref(), Some("dir:/tmp/x"));
    assert_eq!(
        hint("alpine:latest").as_deref(),
        Some("docker://alpine:latest")
    );
    assert_eq!(
        hint("quay.io/a/b:1").as_deref(),
        Some("docker://quay.io/a/b:1")
    );
    assert_eq!(hint("docker:alpine").as_deref(), Some("docker://alpine"));
    assert_eq!(hint("/tmp/a:b"), None);
    assert_eq!(hint("zzz:/tmp/x"), None);
}

#[test]
fn supported_and_unsupported_transports() {
    for ok in [
        "docker://a",
        "dir:/x",
        "oci:/x",
        "oci-archive:/x",
        "docker-archive:/x",
    ] {
        ImageName::parse(ok).unwrap().require_supported().unwrap();
    }
    for (name, transport) in [
        ("docker-daemon:a:1", "docker-daemon"),
        ("containers-storage:a", "containers-storage"),
        ("sif:/x", "sif"),
        ("tarball:/x", "tarball"),
        ("ostree:a@/r", "ostree"),
    ] {
        let n = ImageName::parse(name).unwrap();
        assert_eq!(n.transport().name(), transport);
        let e = n.require_supported().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Unsupported);
        assert_eq!(
            e.to_string(),
            format!("transport {transport} is not supported yet")
        );
    }
}

#[test]
fn docker_names_keep_no_default_tag() {
    let ImageName::Docker(r) = ImageName::parse("docker://quay.io/a/b").unwrap() else {
        panic!("not docker")
    };
    assert!(r.is_name_only());
    assert_eq!(r.manifest_reference(), "latest");
}

#[test]
fn oci_ref_name_grammar() {
    for ok in [
        "a",
        "A1",
        "a.b",
        "a_b",
        "a-b",
        "a--b",
        "a:b",
        "a@b",
        "a+b",
        "a/b",
        "example.com/x:1.0",
        "v1.0",
    ] {
        assert!(is_oci_ref_name(ok), "{ok}");
    }
    for bad in [
        "", "-a", "a-", "a---b", "a..b", "a/", "/a", "a b", "a//b", "é", "a.-b",
    ] {
        assert!(!is_oci_ref_name(bad), "{bad}");
    }
}
