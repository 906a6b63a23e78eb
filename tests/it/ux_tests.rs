//! What a user meets first on the command line: progress on a terminal (bars that
//! leave a `done` line per blob) and off one (skopeo's lines, plus a line with bytes
//! and rate for a blob still moving), `-q`, and hints for the common mistakes.

use std::time::Duration;

use crate::harness::faultproxy::{Fault, Rule};
use crate::harness::{run, scry, shared_registry};
use crate::proxy_faults::{behind_proxy, LAYER};

/// Without a terminal: `Copying blob sha256:…` as skopeo prints it, then, for a blob
/// that takes longer than the interval, lines with bytes so far, the size and a rate.
#[test]
fn a_slow_blob_gets_progress_lines_without_a_terminal() {
    let (_reg, proxy, image) = behind_proxy();
    let layer = &image.layer_digests[0];
    proxy.add(
        Rule::on(
            layer,
            Fault::StallBody {
                after: LAYER / 2,
                stall: Duration::from_millis(1500),
            },
        )
        .method("GET")
        .times(1),
    );
    let tmp = tempfile::tempdir().unwrap();
    let out = run(scry().env("SCRY_PROGRESS_INTERVAL", "0.5").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/big:latest", proxy.host()),
        &format!("dir:{}", tmp.path().join("img").display()),
    ]));
    out.assert_success();
    assert!(
        out.stdout
            .lines()
            .any(|l| l == format!("Copying blob {layer}")),
        "{out}"
    );
    let moving: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with(&format!("Copying blob {layer}: ")))
        .collect();
    assert!(
        !moving.is_empty(),
        "no progress line for the slow blob: {out}"
    );
    for l in &moving {
        assert!(l.contains(" of 6.0 MiB (") && l.ends_with("/s)"), "{l}");
    }
    assert!(out.stdout.contains("Writing manifest to image destination"));
    // No terminal, no escape sequences.
    assert!(!out.stdout.contains('\x1b'), "{out}");

    // -q: nothing at all.
    proxy.clear();
    let quiet = run(scry().env("SCRY_PROGRESS_INTERVAL", "0.01").args([
        "copy",
        "-q",
        "--src-tls-verify=false",
        &format!("docker://{}/big:latest", proxy.host()),
        &format!("dir:{}", tmp.path().join("quiet").display()),
    ]));
    quiet.assert_success();
    assert_eq!(quiet.stdout, "", "{quiet}");
}

/// On a terminal (through `script`, a pty): bars while blobs move, and one
/// `Copying blob HEX12 done SIZE` line per blob left when they are complete.
#[test]
fn on_a_terminal_every_blob_leaves_a_done_line() {
    let (reg, _) = shared_registry();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("img");
    let cmd = format!(
        "{} copy --src-tls-verify=false docker://{}/multilayer:latest dir:{}",
        env!("CARGO_BIN_EXE_scry"),
        reg.url(),
        dest.display()
    );
    let out = run(std::process::Command::new("script").args(["-qec", &cmd, "/dev/null"]));
    out.assert_success();
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dest.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert!(layers.len() >= 2, "{manifest}");
    for l in layers.iter().chain([&manifest["config"]]) {
        let digest = l["digest"].as_str().unwrap();
        let hex12 = &digest["sha256:".len().."sha256:".len() + 12];
        let kind = if l == &manifest["config"] {
            "config"
        } else {
            "blob"
        };
        let done = format!("Copying {kind} {hex12} done");
        assert!(
            out.stdout.contains(&done),
            "no {done:?} in:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains("Copied "), "{out}");
}

/// The mistakes people make first get a suggestion with the fix.
#[test]
fn common_mistakes_get_a_hint() {
    let out = run(scry().args(["inspect", "dokcer://127.0.0.1:1/a/b"]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("unknown transport \"dokcer\"; did you mean docker://127.0.0.1:1/a/b?"),
        "{out}"
    );
    let out = run(scry().args(["inspect", "alpine:3"]));
    assert!(
        out.stderr.contains("did you mean docker://alpine:3?"),
        "{out}"
    );
    let out = run(scry().args(["copy", "oic:/tmp/a", "dir:/tmp/b"]));
    assert!(out.stderr.contains("did you mean oci:/tmp/a?"), "{out}");

    let out = run(scry().args(["inspect", "--tls-verify", "false", "docker://127.0.0.1:1/a"]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr
            .contains("write --tls-verify=false, not --tls-verify false"),
        "{out}"
    );

    // A plain-HTTP registry asked over TLS: named, with the flag that fixes it.
    let (reg, _) = shared_registry();
    let out = run(scry().args(["inspect", &format!("docker://{}/small:latest", reg.url())]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains(&format!("registry {}", reg.url()))
            && out.stderr.contains("use --tls-verify=false"),
        "{out}"
    );
}

/// The flags of `scry ARGS --help`, by section heading (`Options`, `Global options`, …).
fn help_sections(args: &[&str]) -> std::collections::BTreeMap<String, Vec<String>> {
    let out = run(scry().args(args).arg("--help"));
    out.assert_success();
    let mut sections = std::collections::BTreeMap::new();
    let mut current = String::new();
    for line in out.stdout.lines() {
        if let Some(h) = line.strip_suffix(':').filter(|h| !h.starts_with(' ')) {
            current = h.to_string();
        } else if let Some(flag) = line
            .split_whitespace()
            .map(|w| w.trim_end_matches(','))
            .find(|w| w.starts_with("--"))
        {
            let flag = flag.split(['[', '=', '<']).next().unwrap().to_string();
            sections
                .entry(current.clone())
                .or_insert_with(Vec::new)
                .push(flag);
        }
    }
    sections
}

#[test]
fn help_lists_the_flags_of_each_command_and_global_ones_apart() {
    let copy = help_sections(&["copy"]);
    let own = &copy["Options"];
    assert!(own.contains(&"--all".to_string()), "{copy:?}");
    for f in ["--src-creds", "--dest-creds", "--policy", "--debug"] {
        assert!(!own.contains(&f.to_string()), "{f} among copy's own flags");
    }
    assert!(copy["Source options"].contains(&"--src-creds".to_string()));
    assert!(copy["Destination options"].contains(&"--dest-tls-verify".to_string()));
    assert!(copy["Global options"].contains(&"--policy".to_string()));

    let mount: Vec<String> = help_sections(&["mount"]).into_values().flatten().collect();
    for f in ["--shared-blob-dir", "--daemon-host"] {
        assert!(!mount.contains(&f.to_string()), "mount --help lists {f}");
    }
    assert!(mount.contains(&"--tls-verify".to_string()));

    for cmd in [
        &["unmount"][..],
        &["cache"],
        &["cache", "prune"],
        &["cache", "status"],
    ] {
        let all: Vec<String> = help_sections(cmd).into_values().flatten().collect();
        for f in [
            "--policy",
            "--override-arch",
            "--tmpdir",
            "--registries-conf",
        ] {
            assert!(!all.contains(&f.to_string()), "{cmd:?} --help lists {f}");
        }
        assert!(all.contains(&"--debug".to_string()), "{cmd:?}: {all:?}");
    }
    // Not listed, still accepted where scripts pass them everywhere.
    let tmp = tempfile::tempdir().unwrap();
    let out = run(scry()
        .args(["--policy", "/nonexistent", "unmount"])
        .arg(tmp.path()));
    out.assert_failure();
    assert!(
        out.stderr.contains("is not a mount point"),
        "{}",
        out.stderr
    );
}
