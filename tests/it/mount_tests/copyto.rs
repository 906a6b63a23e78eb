//! `copy-to/`: `echo DEST > copy-to/NAME` copies the directory's image when the file
//! is closed, to `oci:`, `dir:` and `docker://` destinations (checked with skopeo);
//! flags may follow on later lines, however the shell writes them; a bad destination
//! makes the write fail and `NAME.status` say why.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{jq, ls, Mount, TOOL_TIMEOUT};
use crate::copy_matrix::assert_dir_holds_image;
use crate::harness::{run, run_with_timeout, shared_registry, skopeo, CmdOutput, Registry};

/// `echo LINE > FILE` in bash: one write ending in a newline, which fails when the
/// request is refused; the copy runs when bash closes the file.
#[track_caller]
fn echo_request(file: &Path, line: &str) -> CmdOutput {
    run_with_timeout(
        Command::new("bash")
            .args(["-c", "echo \"$1\" > \"$2\"", "bash", line])
            .arg(file),
        TOOL_TIMEOUT,
    )
}

/// A multi-line request in one write: coreutils `printf` buffers its output and writes
/// it once at exit (bash's builtin `printf` and `echo` write line by line; see
/// [`flags_apply_however_a_shell_writes_them`]).
#[track_caller]
fn printf_request(file: &Path, lines: &[&str]) -> CmdOutput {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    run_with_timeout(
        Command::new("bash")
            .args(["-c", "/usr/bin/printf '%s' \"$1\" > \"$2\"", "bash", &text])
            .arg(file),
        TOOL_TIMEOUT,
    )
}

/// `copy-to/NAME.status`, parsed.
#[track_caller]
fn status(copy_to: &Path, name: &str) -> serde_json::Value {
    let path = copy_to.join(format!("{name}.status"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

#[track_caller]
fn assert_succeeded(copy_to: &Path, name: &str, destination: &str) {
    let st = status(copy_to, name);
    assert_eq!(st["state"], "succeeded", "{name}.status: {st}");
    assert_eq!(st["destination"], destination, "{name}.status: {st}");
    assert!(st["error"].is_null(), "{name}.status: {st}");
    let (done, total) = (st["bytes_done"].as_u64(), st["bytes_total"].as_u64());
    assert!(
        done.is_some_and(|d| d > 0) && done == total,
        "{name}.status: {st}"
    );
}

/// `skopeo inspect [--raw] IMAGE` (TLS verification off), which must succeed.
#[track_caller]
fn skopeo_inspect(raw: bool, image: &str) -> CmdOutput {
    let mut args = vec!["inspect", "--tls-verify=false"];
    if raw {
        args.push("--raw");
    }
    args.push(image);
    let out = run(skopeo().args(&args));
    out.assert_success();
    out
}

#[test]
fn copy_to_writes_oci_dir_and_registry_destinations() {
    let (reg, fx) = shared_registry();
    let dest_reg = Registry::plain();
    let m = Mount::start(&["--tls-verify=false"]);
    let out = m.scratch();
    let copy_to = m.path(&format!("{}/small/latest/copy-to", reg.url()));

    let oci = format!("oci:{}:v1", out.join("layout").display());
    echo_request(&copy_to.join("to-oci"), &oci).assert_success();
    assert_succeeded(&copy_to, "to-oci", &oci);
    let v = skopeo_inspect(false, &oci).json();
    assert_eq!(
        v["Digest"],
        fx.small.digest.as_str(),
        "skopeo inspect {oci}"
    );
    assert_eq!(v["Labels"]["com.example.scry.fixture"], "small");

    let dir = out.join("dir-copy");
    let dir_name = format!("dir:{}", dir.display());
    echo_request(&copy_to.join("to-dir"), &dir_name).assert_success();
    assert_succeeded(&copy_to, "to-dir", &dir_name);
    assert_dir_holds_image(&dir, &fx.small.image);

    // docker://, with the flag on the request's second line, and without it (the
    // mount's --tls-verify=false applies to destinations too).
    let pushed = dest_reg.docker_ref("copied/small:v1");
    printf_request(
        &copy_to.join("to-registry"),
        &[&pushed, "--dest-tls-verify=false"],
    )
    .assert_success();
    assert_succeeded(&copy_to, "to-registry", &pushed);
    let pushed2 = dest_reg.docker_ref("copied/again:v2");
    echo_request(&copy_to.join("to-registry-2"), &pushed2).assert_success();
    assert_succeeded(&copy_to, "to-registry-2", &pushed2);
    for image in [&pushed, &pushed2] {
        let raw = skopeo_inspect(true, image);
        assert!(
            raw.stdout_bytes == fx.small.manifest,
            "the manifest of {image} differs from the source's: {raw}"
        );
    }

    assert_eq!(
        ls(&copy_to),
        [
            "to-dir",
            "to-dir.status",
            "to-oci",
            "to-oci.status",
            "to-registry",
            "to-registry-2",
            "to-registry-2.status",
            "to-registry.status"
        ]
    );
    // The request file reads back as written.
    assert_eq!(
        std::fs::read_to_string(copy_to.join("to-oci")).unwrap(),
        format!("{oci}\n")
    );
    m.unmount();
}

#[test]
fn copy_to_of_an_index_with_all_copies_every_platform() {
    let (reg, fx) = shared_registry();
    let m = Mount::start(&["--tls-verify=false"]);
    let copy_to = m.path(&format!("{}/multiarch/latest/copy-to", reg.url()));
    let layout = m.scratch().join("all");
    let oci = format!("oci:{}:all", layout.display());
    printf_request(&copy_to.join("all"), &[&oci, "--all"]).assert_success();
    assert_succeeded(&copy_to, "all", &oci);
    let raw = skopeo_inspect(true, &oci);
    assert!(
        raw.stdout_bytes == fx.multiarch.manifest,
        "the copied index differs from the source's: {raw}"
    );
    for child in &fx.multiarch.children {
        let blob = layout
            .join("blobs/sha256")
            .join(super::hex_of(&child.digest));
        assert!(blob.is_file(), "{} missing", blob.display());
    }
    // The copied layout is what the platform directory shows.
    assert_eq!(
        jq(".manifests[0].digest", &layout.join("index.json")),
        fx.multiarch.digest
    );
    m.unmount();
}

#[test]
fn a_bad_destination_fails_the_write_and_the_status_says_why() {
    let (reg, _) = shared_registry();
    let m = Mount::start(&["--tls-verify=false", "--timeout", "5s"]);
    let copy_to = m.path(&format!("{}/small/latest/copy-to", reg.url()));
    let unreachable = "docker://127.0.0.1:1/nowhere/small:v1";
    let bad_flag = format!("dir:{}", m.scratch().join("x").display());
    // A request that does not parse is EINVAL; one that cannot be carried out, EIO.
    let cases: [(&str, Vec<&str>, &str, &str); 3] = [
        (
            "bad",
            vec!["/not/a/transport/name"],
            "transport",
            "Invalid argument",
        ),
        (
            "unreachable",
            vec![unreachable],
            "127.0.0.1:1",
            "Input/output error",
        ),
        (
            "bad-flag",
            vec![&bad_flag, "--no-such-flag"],
            "--no-such-flag",
            "Invalid argument",
        ),
    ];
    for (name, request, names, errno) in &cases {
        let out = if request.len() == 1 {
            echo_request(&copy_to.join(name), request[0])
        } else {
            printf_request(&copy_to.join(name), request)
        };
        assert!(
            !out.success() && out.stderr.contains(errno),
            "writing {request:?} to copy-to/{name} did not fail with {errno}: {out}"
        );
        // The reason is in the mount's error file too, with the job's path.
        let errors = std::fs::read_to_string(m.path(".scry/errors")).unwrap();
        assert!(
            errors
                .lines()
                .any(|l| l.contains(&format!("small/latest/copy-to/{name}")) && l.contains(names)),
            "{name}: .scry/errors does not explain it:\n{errors}"
        );
        let cat = run(Command::new("cat").arg(copy_to.join(format!("{name}.status"))));
        cat.assert_success();
        let st = cat.json();
        assert_eq!(st["state"], "failed", "{name}.status: {st}");
        assert_eq!(st["destination"], request[0], "{name}.status: {st}");
        let error = st["error"].as_str().unwrap_or_default();
        assert!(
            error.contains(names),
            "{name}.status: the error does not mention {names:?}: {st}"
        );
    }
    assert!(
        !m.scratch().join("x").exists(),
        "a refused request created its destination"
    );
    // A failed job can be written again: the next request replaces it.
    let fixed = format!("oci:{}:ok", m.scratch().join("retry").display());
    echo_request(&copy_to.join("bad"), &fixed).assert_success();
    assert_succeeded(&copy_to, "bad", &fixed);
    m.unmount();
}

/// Flags apply whether they share the destination's line or follow it, and however
/// the writer splits the text: bash's builtins write one line per write(2), and the
/// copy waits for the close.
#[test]
fn flags_apply_however_a_shell_writes_them() {
    let (reg, _) = shared_registry();
    let m = Mount::start(&["--tls-verify=false"]);
    let copy_to = m.path(&format!("{}/small/latest/copy-to", reg.url()));
    let scripts = [
        ("same-line", r#"echo "$1 --format v2s2" > "$2""#),
        ("printf", r#"printf '%s\n--format\nv2s2\n' "$1" > "$2""#),
        ("echo-group", r#"{ echo "$1"; echo --format v2s2; } > "$2""#),
    ];
    for (name, script) in scripts {
        let out_dir = m.scratch().join(name);
        let dest = format!("dir:{}", out_dir.display());
        let out = run_with_timeout(
            Command::new("bash")
                .args(["-c", script, "bash", &dest])
                .arg(copy_to.join(name)),
            TOOL_TIMEOUT,
        );
        let st = status(&copy_to, name);
        let media_type = std::fs::read(out_dir.join("manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .map(|v| v["mediaType"].clone());
        assert!(
            out.success()
                && media_type.as_ref().and_then(|v| v.as_str())
                    == Some("application/vnd.docker.distribution.manifest.v2+json"),
            "{name}: {out}\nstatus: {st}\nmanifest mediaType: {media_type:?}"
        );
        assert_eq!(st["destination"], dest);
        assert_eq!(st["state"], "succeeded");
    }
    m.unmount();
}

/// `NAME.status` shows bytes as they move, for every kind of destination: with the
/// source's layer stalled half way, a reader sees the job running with some bytes
/// done and not all; at the end done equals the total.
#[test]
fn status_shows_live_bytes_for_every_destination_kind() {
    use crate::harness::faultproxy::{Fault, Rule};
    let (reg, proxy, image) = crate::proxy_faults::behind_proxy();
    let layer = image.layer_digests[0].clone();
    let half = crate::proxy_faults::LAYER / 2;
    for (name, dest) in [
        ("dir", "dir:SCRATCH/d".to_string()),
        ("oci-archive", "oci-archive:SCRATCH/a.tar:x".to_string()),
        (
            "registry",
            format!("docker://{}/live/copy:1 --dest-tls-verify=false", reg.url()),
        ),
    ] {
        // A fresh mount each time: its cache must not hold the layer yet.
        let m = Mount::start(&["--tls-verify=false"]);
        let dest = dest.replace("SCRATCH", &m.scratch().display().to_string());
        proxy.clear();
        proxy.add(
            Rule::on(
                &layer,
                Fault::StallBody {
                    after: half,
                    stall: Duration::from_secs(3),
                },
            )
            .method("GET")
            .times(1),
        );
        let copy_to = m.path(&format!("{}/big/latest/copy-to", proxy.host()));
        let job = copy_to.join(name);
        let writer = {
            let (job, dest) = (job.clone(), dest.clone());
            std::thread::spawn(move || echo_request(&job, &dest))
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = None;
        while Instant::now() < deadline && !writer.is_finished() {
            if let Ok(bytes) = std::fs::read(copy_to.join(format!("{name}.status"))) {
                if let Ok(st) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                    let done = st["bytes_done"].as_u64().unwrap_or(0);
                    let total = st["bytes_total"].as_u64().unwrap_or(0);
                    if st["state"] == "running" && done >= half as u64 && done < total {
                        seen = Some((done, total));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        writer.join().unwrap().assert_success();
        let (done, total) =
            seen.unwrap_or_else(|| panic!("{name}: no live bytes while the layer stalled"));
        assert!(
            total > crate::proxy_faults::LAYER as u64,
            "{name}: {done} of {total}"
        );
        assert_succeeded(&copy_to, name, dest.split(' ').next().unwrap());
        m.unmount();
    }
}
