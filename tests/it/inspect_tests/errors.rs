//! Failures of `inspect`: missing images (exit 2), malformed references and impossible
//! requests (exit 1 with a message naming the problem, never a panic).

use super::run_both;
use crate::harness::{run, scry, shared_registry, CmdOutput};

/// A clean failure: exit `code`, nothing on stdout, an error on stderr, no panic.
#[track_caller]
fn assert_clean_failure(out: &CmdOutput, code: i32) {
    assert_eq!(out.code, Some(code), "wrong exit code: {out}");
    assert!(
        out.stdout.is_empty(),
        "stdout must be empty on failure: {out}"
    );
    assert!(!out.stderr.trim().is_empty(), "no error message: {out}");
    assert!(
        !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
        "scry panicked: {out}"
    );
}

#[test]
fn missing_images_exit_2() {
    let (reg, f) = shared_registry();
    let zero = format!("sha256:{}", "0".repeat(64));
    let cases = [
        (
            "unknown tag",
            reg.docker_ref("small:no-such-tag"),
            "no-such-tag",
        ),
        (
            "unknown repo",
            reg.docker_ref("no-such-repo:latest"),
            "no-such-repo",
        ),
        (
            "unknown digest",
            reg.docker_ref(&format!("small@{zero}")),
            zero.as_str(),
        ),
        (
            "digest of another repo",
            reg.docker_ref(&format!("multilayer@{}", f.small.digest)),
            "multilayer",
        ),
    ];
    for (what, image, named) in &cases {
        for flags in [&[][..], &["--raw"], &["--config"], &["--no-tags"]] {
            let mut sub = vec!["inspect"];
            sub.extend_from_slice(flags);
            let (s, k) = run_both(&[], &sub, image);
            // The oracle agrees that the image is not there. skopeo 1.9.3 wraps the
            // registry error with %v, so its not-found check never matches and it exits
            // 1; later skopeo releases exit 2 for "manifest unknown", as scry must.
            assert!(!k.success(), "{what}: skopeo found it: {k}");
            assert!(k.stderr.contains("manifest unknown"), "{what}: {k}");
            assert_clean_failure(&s, 2);
            assert!(
                s.stderr.contains(named),
                "{what} {flags:?}: the message must name {named:?}: {s}"
            );
        }
    }
}

#[test]
fn malformed_references_exit_1_with_a_reason() {
    let (reg, _) = shared_registry();
    let host = reg.url();
    // (reference, words the message must contain, case-insensitive)
    let cases: Vec<(String, Vec<&str>)> = vec![
        (format!("docker://{host}/Small:latest"), vec!["lowercase"]),
        (format!("docker://{host}/UPPER"), vec!["lowercase"]),
        (format!("docker:{host}/small:latest"), vec!["//"]),
        ("foo:bar".into(), vec!["transport", "foo"]),
        (format!("{host}/small:latest"), vec!["transport"]),
        ("small".into(), vec!["transport"]),
        (String::new(), vec!["transport"]),
        ("docker://".into(), vec!["docker://"]),
        (format!("docker://{host}/small@sha256:abc"), vec!["digest"]),
        (
            format!("docker://{host}/small@md5:{}", "0".repeat(32)),
            vec!["digest"],
        ),
        (
            format!("docker://{host}/small@sha256:{}", "g".repeat(64)),
            vec!["digest"],
        ),
        (format!("docker://{host}/small:bad tag"), vec!["reference"]),
        (
            format!("docker://{host}/small:{}", "t".repeat(129)),
            vec!["reference"],
        ),
        (format!("docker://{host}/sm@ll:latest"), vec!["reference"]),
    ];
    let mut bad = Vec::new();
    for (image, words) in &cases {
        let (s, k) = run_both(&[], &["inspect"], image);
        assert!(!k.success(), "the oracle accepted {image:?}: {k}");
        if s.code != Some(1)
            || !s.stdout.is_empty()
            || s.stderr.contains("panicked")
            || s.stderr.trim().is_empty()
        {
            bad.push(format!("{image:?}: not a clean exit-1 failure: {s}"));
            continue;
        }
        let lower = s.stderr.to_lowercase();
        let missing: Vec<&&str> = words.iter().filter(|w| !lower.contains(*w)).collect();
        if !missing.is_empty() {
            bad.push(format!(
                "{image:?}: message lacks {missing:?}\n  scry:   {}  skopeo: {}",
                s.stderr, k.stderr
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn no_instance_for_the_platform_is_an_error_naming_it() {
    let (reg, _) = shared_registry();
    for repo in ["multiarch", "dockerlist"] {
        for global in [
            &["--override-arch", "s390x"][..],
            &["--override-os", "windows"],
            &["--override-arch", "arm", "--override-variant", "v5"],
        ] {
            let (s, k) = run_both(
                global,
                &["inspect"],
                &reg.docker_ref(&format!("{repo}:latest")),
            );
            assert!(
                !k.success(),
                "{repo} {global:?}: skopeo found an instance: {k}"
            );
            assert_clean_failure(&s, 1);
            let named = global[1];
            assert!(s.stderr.contains(named), "{repo} {global:?}: {s}");
        }
        // --raw does not choose a platform: it prints the index whatever the override.
        let (s, k) = run_both(
            &["--override-arch", "s390x"],
            &["inspect", "--raw"],
            &reg.docker_ref(&format!("{repo}:latest")),
        );
        k.assert_success();
        assert_eq!(s.assert_success().stdout_bytes, k.stdout_bytes);
    }
}

#[test]
fn raw_and_format_together_are_refused() {
    let (reg, _) = shared_registry();
    let (s, k) = run_both(
        &[],
        &["inspect", "--raw", "--format", "{{.Name}}"],
        &reg.docker_ref("small:latest"),
    );
    assert!(!k.success(), "{k}");
    assert_clean_failure(&s, 1);
    assert!(s.stderr.contains("format"), "{s}");
}

#[test]
fn broken_templates_are_errors_not_panics() {
    let (reg, _) = shared_registry();
    let image = reg.docker_ref("small:latest");
    let mut bad = Vec::new();
    // Parse errors, and execution errors on the inspect document (a struct in skopeo:
    // an unknown field is an error, not Go's "<no value>" of a map).
    for t in [
        "{{.Name",
        "{{end}}",
        "{{.NoSuchField}}",
        "{{range .Name}}{{end}}",
        "{{index .Labels 1}}",
        "{{nosuchfunc .Name}}",
    ] {
        let (s, k) = run_both(&[], &["inspect", "--format", t], &image);
        assert!(!k.success(), "skopeo accepted {t:?}: {k}");
        if s.code != Some(1)
            || !s.stdout.is_empty()
            || s.stderr.contains("panicked")
            || s.stderr.trim().is_empty()
        {
            bad.push(format!(
                "{t:?}: skopeo says {:?}\nscry: {s}",
                k.stderr.trim()
            ));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n\n"));
}

#[test]
fn unreachable_registry_is_exit_1_not_2() {
    // A port nothing listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(scry()
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://127.0.0.1:{port}/small:latest")));
    assert_clean_failure(&out, 1);
    assert!(out.stderr.contains(&port.to_string()), "{out}");
}

/// Logs and errors on a pipe are plain text, as skopeo's are: no terminal colour codes.
#[test]
fn debug_log_on_a_pipe_has_no_colour_codes() {
    let (reg, _) = shared_registry();
    let out = run(scry()
        .args(["--debug", "inspect", "--tls-verify=false"])
        .arg(reg.docker_ref("small:latest")));
    out.assert_success();
    assert!(
        out.stderr.contains("/v2/small/"),
        "--debug must log requests: {out}"
    );
    assert!(
        !out.stderr.contains('\u{1b}'),
        "ANSI escapes on a pipe: {:?}",
        out.stderr
    );
    let out = run(scry()
        .args(["--debug", "inspect", "--tls-verify=false"])
        .arg(reg.docker_ref("small:no-such-tag")));
    assert!(
        !out.stderr.contains('\u{1b}'),
        "ANSI escapes on a pipe: {:?}",
        out.stderr
    );
}
