//! What failures look like to tools: unknown names are ENOENT, refused credentials
//! EACCES, a registry that stops or stalls EIO within `--timeout` — and the mount stays
//! usable afterwards.

use std::time::{Duration, Instant};

use super::fakereg::{FakeRegistry, Mode, RawImage};
use super::{hex_of, ls, sha256sum, tool, tool_on, Mount};
use crate::harness::{shared_registry, Registry, Tls};

/// Asserts that `out` failed and its stderr names `errno_text`.
#[track_caller]
fn assert_fails_with(out: &crate::harness::CmdOutput, errno_text: &str) {
    assert!(
        !out.success() && out.stderr.contains(errno_text),
        "expected a failure with {errno_text:?}: {out}"
    );
}

#[test]
fn unknown_names_are_enoent() {
    let (reg, fx) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false"]);
    let zeros = format!("sha256:{}", "0".repeat(64));
    for rel in [
        format!("{host}/small/nope"),
        format!("{host}/small:nope"),
        format!("{host}/no-such-repo"),
        format!("{host}/small@{zeros}"),
        format!("{host}/small/latest/blobs/sha256/{}", hex_of(&zeros)),
        format!("{host}/small/latest/layers/7.tar.gz"),
        format!("{host}/small/latest/linux-amd64"),
    ] {
        let out = tool_on("ls", &[], &[&m.path(&rel)]);
        assert_fails_with(&out, "No such file or directory");
        assert_eq!(out.code, Some(2), "ls exit code: {out}");
    }
    let out = tool_on(
        "cat",
        &[],
        &[&m.path(&format!("{host}/small/nope/manifest.json"))],
    );
    assert_fails_with(&out, "No such file or directory");
    // The misses did not disturb what exists.
    assert_eq!(
        sha256sum(&m.path(&format!("{host}/small/latest/manifest.json"))),
        fx.small.digest
    );
    m.unmount();
}

#[test]
fn refused_credentials_are_eacces() {
    let reg = Registry::builder().tls(Tls::CaSigned).htpasswd().start();
    let (_, fx) = shared_registry();
    fx.small.push(&reg);
    let host = reg.url();
    let certs = reg.certs_dir().display().to_string();
    let wrong = format!("{}:wrong-password", reg.username());

    let m = Mount::start(&["--cert-dir", &certs, "--creds", &wrong]);
    let out = tool_on("ls", &[], &[&m.path(&format!("{host}/small"))]);
    assert_fails_with(&out, "Permission denied");
    let out = tool_on(
        "cat",
        &[],
        &[&m.path(&format!("{host}/small/latest/manifest.json"))],
    );
    assert_fails_with(&out, "Permission denied");
    // `.scry/errors` says whose credentials were refused and what to do.
    let errors = std::fs::read_to_string(m.path(".scry/errors")).unwrap();
    assert!(
        errors.lines().any(|l| l.contains(" EACCES ")
            && l.contains(&format!("/{host}/small"))
            && l.contains(&format!(
                "the credentials for {} were refused: run `scry login {host}`",
                reg.username()
            ))),
        "{errors}"
    );
    m.unmount();

    // The same mount with the right password works: the refusal was the password's.
    let m = Mount::start(&["--cert-dir", &certs, "--creds", &reg.creds()]);
    assert_eq!(ls(&m.path(&format!("{host}/small"))), ["1.0", "latest"]);
    assert_eq!(
        sha256sum(&m.path(&format!("{host}/small/latest/manifest.json"))),
        fx.small.digest
    );
    m.unmount();

    // Credentials from an auth file work too; --debug logs each request, never the
    // password.
    use base64::Engine as _;
    let scratch = crate::mount_tests::scratch("authfile-");
    let authfile = scratch.path().join("auth.json");
    let auth = base64::engine::general_purpose::STANDARD.encode(reg.creds());
    std::fs::write(
        &authfile,
        serde_json::json!({"auths": {host.clone(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let authfile = authfile.display().to_string();
    let m = Mount::start(&["--cert-dir", &certs, "--authfile", &authfile, "--debug"]);
    // A registry with stored credentials is listed at the root from the start.
    assert_eq!(ls(m.mnt()), [host.as_str()]);
    assert_eq!(
        sha256sum(&m.path(&format!("{host}/small/latest/manifest.json"))),
        fx.small.digest
    );
    let log = m.log();
    assert!(
        log.contains("/v2/small/manifests/latest"),
        "--debug did not log the manifest request\n{log}"
    );
    let password = reg.creds().split_once(':').unwrap().1.to_string();
    assert!(
        !log.contains(&password),
        "the password is in the log\n{log}"
    );
    assert!(
        !log.contains(&auth),
        "the encoded credentials are in the log"
    );
    m.unmount();
}

/// `dd` of one 4 KiB block at `block` of `path`.
fn dd(path: &std::path::Path, block: u64) -> crate::harness::CmdOutput {
    tool(
        "dd",
        &[
            &format!("if={}", path.display()),
            "of=/dev/null",
            "bs=4096",
            &format!("skip={block}"),
            "count=1",
            "status=none",
        ],
    )
}

#[test]
fn a_registry_stopped_mid_read_gives_eio_and_the_mount_stays_usable() {
    let reg = Registry::plain();
    let image = RawImage::new(&[24 << 20]);
    image.push(&reg.client(), "big", "latest");
    let host = reg.url();
    let m = Mount::start(&["--tls-verify=false", "--timeout", "3s"]);
    let tag = m.path(&format!("{host}/big/latest"));
    let blob = tag
        .join("blobs/sha256")
        .join(hex_of(&image.layer_digests[0]));
    dd(&blob, 0).assert_success();

    reg.stop();
    // Far from what was read: not cached.
    let start = Instant::now();
    let out = dd(&blob, (20 << 20) / 4096);
    assert_fails_with(&out, "Input/output error");
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(20),
        "EIO took {took:?} with --timeout 3s"
    );
    // The mount still answers: the root, and what it already knows.
    assert_eq!(ls(m.mnt()), [host.as_str()]);
    assert_eq!(sha256sum(&tag.join("manifest.json")), image.manifest_digest);
    dd(&blob, 0).assert_success();
    m.unmount();
}

#[test]
fn a_stalled_registry_gives_eio_within_the_timeout_then_recovers() {
    let fake = FakeRegistry::start(&[8 << 20]);
    let m = Mount::start(&["--tls-verify=false", "--timeout", "3s"]);
    let blob = m.path(&format!(
        "{}/big/latest/blobs/sha256/{}",
        fake.host(),
        hex_of(&fake.layer_digests[0])
    ));
    // Metadata first, while the registry answers.
    assert_eq!(super::stat_size(&blob), 8 << 20);

    fake.set_mode(Mode::StallFrom(0));
    let start = Instant::now();
    let out = dd(&blob, 100);
    assert_fails_with(&out, "Input/output error");
    let took = start.elapsed();
    assert!(
        fake.stalled() > 0,
        "no request stalled: {:?}",
        fake.blob_hits()
    );
    assert!(
        took < Duration::from_secs(20),
        "EIO took {took:?} with --timeout 3s"
    );
    assert_eq!(ls(m.mnt()), [fake.host()]);

    fake.set_mode(Mode::Serve);
    assert_eq!(sha256sum(&blob), fake.layer_digests[0], "after the stall");
    m.unmount();
}

/// The mount is read-only outside `copy-to/`.
#[test]
fn changes_outside_copy_to_are_refused() {
    let (reg, _) = shared_registry();
    let m = Mount::start(&["--tls-verify=false"]);
    let tag = m.path(&format!("{}/small/latest", reg.url()));
    ls(&tag);
    for (program, args) in [
        ("touch", vec![tag.join("new-file")]),
        ("rm", vec![tag.join("manifest.json")]),
        ("mkdir", vec![tag.join("dir")]),
        ("mv", vec![tag.join("config.json"), tag.join("c.json")]),
    ] {
        let paths: Vec<&std::path::Path> = args.iter().map(|p| p.as_path()).collect();
        let out = tool_on(program, &[], &paths);
        assert_fails_with(&out, "Read-only file system");
    }
    let out = crate::harness::run(
        std::process::Command::new("bash")
            .args(["-c", "echo x >> \"$1\"", "bash"])
            .arg(tag.join("manifest.json")),
    );
    assert!(
        !out.success(),
        "appending to manifest.json succeeded: {out}"
    );
    assert_eq!(ls(&tag).len(), 9, "the refusals changed the directory");
    m.unmount();
}

/// `scry unmount` says what is wrong in one line: not a mount point, another
/// filesystem, a busy mount with the processes that keep it busy (and `--lazy` works
/// then).
#[test]
fn unmount_explains_plain_dirs_other_mounts_and_busy_mounts() {
    let plain = super::scratch("not-a-mount-");
    let out = crate::harness::run(crate::harness::scry().arg("unmount").arg(plain.path()));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("is not a mount point"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");

    let tmpfs = super::scratch("tmpfs-");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs"])
        .arg(tmpfs.path())
        .status()
        .unwrap();
    assert!(mounted.success());
    let out = crate::harness::run(crate::harness::scry().arg("unmount").arg(tmpfs.path()));
    let _ = std::process::Command::new("umount")
        .arg(tmpfs.path())
        .status();
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("is not a scry mount (it is tmpfs)"),
        "{out}"
    );

    let (reg, _) = shared_registry();
    let m = Mount::start(&["--tls-verify=false"]);
    let inside = m.path(&format!("{}/small/latest", reg.url()));
    let mut holder = std::process::Command::new("sleep")
        .arg("60")
        .current_dir(&inside)
        .spawn()
        .unwrap();
    let out = crate::harness::run(crate::harness::scry().arg("unmount").arg(m.mnt()));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("is busy"), "{out}");
    assert!(
        out.stderr.contains(&format!("{} (sleep)", holder.id())),
        "the process keeping it busy is not named: {out}"
    );
    assert!(out.stderr.contains("--lazy"), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    let out = crate::harness::run(
        crate::harness::scry()
            .args(["unmount", "--lazy"])
            .arg(m.mnt()),
    );
    out.assert_success();
    assert!(!super::is_mounted(m.mnt()));
    let _ = holder.kill();
    let _ = holder.wait();
    m.kill9();
}

/// The reasons behind an EIO are in `MOUNT/.scry/errors`, one line per failure with
/// the errno, the operation and path, and the cause: a plain-HTTP registry mounted
/// without `--tls-verify=false` says so, a registry that does not answer is named.
#[test]
fn dot_scry_errors_explains_eio_without_the_log() {
    let (reg, _) = shared_registry();
    let host = reg.url();
    let m = Mount::start(&["--timeout", "5s"]);
    assert_eq!(ls(&m.path(".scry")), ["errors", "stats.json"]);
    assert_eq!(std::fs::read_to_string(m.path(".scry/errors")).unwrap(), "");
    let out = tool_on("ls", &[], &[&m.path(&format!("{host}/small"))]);
    assert_fails_with(&out, "Input/output error");
    let out = tool_on("ls", &[], &[&m.path("127.0.0.1:1/nowhere")]);
    assert_fails_with(&out, "Input/output error");
    let errors = std::fs::read_to_string(m.path(".scry/errors")).unwrap();
    let line = |path: &str| {
        errors
            .lines()
            .find(|l| l.contains(" EIO ") && l.contains(path))
            .unwrap_or_else(|| panic!("no EIO line for {path}:\n{errors}"))
            .to_string()
    };
    assert!(
        line(&format!("/{host}/small")).contains("use --tls-verify=false"),
        "{errors}"
    );
    let refused = line("/127.0.0.1:1/nowhere");
    assert!(
        refused.contains("registry 127.0.0.1:1") && refused.contains("onnection refused"),
        "{errors}"
    );
    // A missing name is ENOENT and not worth a line.
    let out = tool_on("ls", &[], &[&m.path("not a registry")]);
    assert_fails_with(&out, "No such file or directory");
    let again = std::fs::read_to_string(m.path(".scry/errors")).unwrap();
    assert_eq!(again.lines().count(), errors.lines().count(), "{again}");
    let out = tool_on("touch", &[], &[&m.path(".scry/errors")]);
    assert!(!out.success(), "{out}");
    m.unmount();
}

/// `--background` returns only once the mount is up; when the mount process fails to
/// start, it exits 1 with that process's error, not just a pointer to the log.
#[test]
fn a_background_mount_that_cannot_start_says_why() {
    let dir = super::scratch("bg-fail-");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let out = crate::harness::run_with_timeout(
        crate::harness::scry()
            .args([
                "--policy",
                "/nonexistent/policy.json",
                "mount",
                "--background",
            ])
            .arg("--cache-dir")
            .arg(dir.path().join("cache"))
            .arg(&mnt),
        super::TOOL_TIMEOUT,
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("before the mount was ready")
            && out
                .stderr
                .contains("/nonexistent/policy.json: No such file or directory"),
        "{out}"
    );
    assert!(!super::is_mounted(&mnt));
}
