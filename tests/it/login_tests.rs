//! `scry login` / `scry logout` and the auth file they share with skopeo: what one
//! tool writes the other uses, the file is private (0600), REGISTRY_AUTH_FILE and
//! `--authfile` are honoured, failed logins write nothing, and credentials never
//! reach stderr even with `--debug`.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

use base64::Engine;
use serde_json::Value;

use crate::harness::{run, scry, skopeo, CmdOutput, Fixtures, Home, Registry, Tls};

mod existing;
mod secrets;

/// TLS + htpasswd with `small`; read-only, shared by the tests of this module.
fn login_registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let reg = Registry::builder().tls(Tls::CaSigned).htpasswd().start();
        Fixtures::get().small.push(&reg);
        reg
    })
}

fn scry_in(home: &Home) -> Command {
    let mut c = scry();
    home.apply(&mut c);
    c
}

fn skopeo_in(home: &Home) -> Command {
    let mut c = skopeo();
    home.apply(&mut c);
    c
}

fn cert_dir(reg: &Registry) -> String {
    reg.certs_dir().display().to_string()
}

/// `login --cert-dir … -u USER -p PASSWORD [extra…] HOST:PORT`.
fn login(mut tool: Command, reg: &Registry, password: &str, extra: &[&str]) -> CmdOutput {
    run(tool
        .args([
            "login",
            "--cert-dir",
            &cert_dir(reg),
            "-u",
            reg.username(),
            "-p",
            password,
        ])
        .args(extra)
        .arg(reg.url()))
}

/// `inspect --cert-dir … [extra…] docker://HOST:PORT/small:latest`.
fn inspect(mut tool: Command, reg: &Registry, extra: &[&str]) -> CmdOutput {
    run(tool
        .args(["inspect", "--no-tags", "--cert-dir", &cert_dir(reg)])
        .args(extra)
        .arg(reg.docker_ref("small:latest")))
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e})", path.display()))
}

#[track_caller]
fn assert_private(path: &Path) {
    let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
}

/// The `auth` entry the file holds for `key`, if any.
fn entry(path: &Path, key: &str) -> Option<String> {
    read_json(path)["auths"][key]["auth"]
        .as_str()
        .map(str::to_string)
}

/// Runs `cmd` with `input` on stdin (the harness runner closes stdin).
fn run_with_stdin(cmd: &mut Command, input: &[u8]) -> CmdOutput {
    let command = format!("{cmd:?}");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let pid = child.id();
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("wait"),
        Err(_) => {
            // SAFETY: signalling the child this function started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("`{command}` did not finish within 120s");
        }
    };
    CmdOutput {
        command,
        code: out.status.code(),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stdout_bytes: out.stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn scry_login_is_used_by_skopeo() {
    let reg = login_registry();
    let home = Home::new();
    // Sanity: without a login, skopeo cannot read the image.
    assert!(!inspect(skopeo_in(&home), reg, &[]).success());

    let out = login(scry_in(&home), reg, reg.password(), &[]);
    assert_eq!(out.assert_success().stdout, "Login Succeeded!\n");
    let file = home.auth_file();
    assert_private(&file);
    assert_eq!(entry(&file, &reg.url()), Some(b64(&reg.creds())));

    assert_inspect_matches(&home, reg, &[]);

    // The same login by skopeo writes an equivalent file.
    let other = Home::new();
    login(skopeo_in(&other), reg, reg.password(), &[]).assert_success();
    assert_eq!(read_json(&file), read_json(&other.auth_file()));
}

/// scry and skopeo, with the credentials of `home` (and `extra` flags), print the same
/// inspect output (but for `LayersData`, which skopeo 1.9.3 lacks).
#[track_caller]
fn assert_inspect_matches(home: &Home, reg: &Registry, extra: &[&str]) {
    let k = inspect(skopeo_in(home), reg, extra);
    let s = inspect(scry_in(home), reg, extra);
    let (s_text, _) =
        crate::inspect_tests::strip_top_level_field(&s.assert_success().stdout, "LayersData");
    assert_eq!(s_text, k.assert_success().stdout);
}

#[test]
fn skopeo_login_is_used_by_scry() {
    let reg = login_registry();
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("skopeo-auth.json");
    let authfile = path.display().to_string();
    login(
        skopeo_in(&home),
        reg,
        reg.password(),
        &["--authfile", &authfile],
    )
    .assert_success();

    assert!(
        !inspect(scry_in(&home), reg, &[]).success(),
        "default file must be empty"
    );
    assert_inspect_matches(&home, reg, &["--authfile", &authfile]);
    let out = run(scry_in(&home)
        .args(["login", "--get-login", "--authfile", &authfile])
        .arg(reg.url()));
    assert_eq!(out.assert_success().stdout, format!("{}\n", reg.username()));
}

#[test]
fn authfile_flag_writes_only_there() {
    let reg = login_registry();
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub/auth.json");
    let authfile = path.display().to_string();
    login(
        scry_in(&home),
        reg,
        reg.password(),
        &["--authfile", &authfile],
    )
    .assert_success();
    assert_private(&path);
    assert!(
        !home.auth_file().exists(),
        "the default file was written too"
    );
    inspect(skopeo_in(&home), reg, &["--authfile", &authfile]).assert_success();

    // Logging in again (another user entry kept) leaves other entries alone.
    let mut v = read_json(&path);
    v["auths"]["example.invalid:5000"] = serde_json::json!({"auth": b64("x:y")});
    std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
    login(
        scry_in(&home),
        reg,
        reg.password(),
        &["--authfile", &authfile],
    )
    .assert_success();
    assert_eq!(entry(&path, "example.invalid:5000"), Some(b64("x:y")));
    assert_eq!(entry(&path, &reg.url()), Some(b64(&reg.creds())));
}

#[test]
fn registry_auth_file_env_is_honoured() {
    let reg = login_registry();
    let home = Home::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env-auth.json");
    let with_env = |mut c: Command| {
        c.env("REGISTRY_AUTH_FILE", &path);
        c
    };
    login(with_env(scry_in(&home)), reg, reg.password(), &[]).assert_success();
    assert_private(&path);
    assert!(!home.auth_file().exists(), "the default file was written");
    assert_eq!(entry(&path, &reg.url()), Some(b64(&reg.creds())));

    inspect(with_env(skopeo_in(&home)), reg, &[]).assert_success();
    inspect(with_env(scry_in(&home)), reg, &[]).assert_success();
    assert!(
        !inspect(scry_in(&home), reg, &[]).success(),
        "env ignored: used another file"
    );
    let out = run(with_env(scry_in(&home))
        .args(["login", "--get-login"])
        .arg(reg.url()));
    assert_eq!(out.assert_success().stdout, format!("{}\n", reg.username()));

    // A file skopeo wrote through the variable is read by scry through it.
    let path2 = dir.path().join("env-auth-2.json");
    let mut k = skopeo_in(&home);
    k.env("REGISTRY_AUTH_FILE", &path2);
    login(k, reg, reg.password(), &[]).assert_success();
    let mut s = scry_in(&home);
    s.env("REGISTRY_AUTH_FILE", &path2);
    inspect(s, reg, &[]).assert_success();

    let mut c = with_env(scry_in(&home));
    run(c.arg("logout").arg(reg.url())).assert_success();
    assert_eq!(entry(&path, &reg.url()), None);
}

#[test]
fn password_stdin() {
    let reg = login_registry();
    let home = Home::new();
    let args = |c: &mut Command| {
        c.args([
            "login",
            "--cert-dir",
            &cert_dir(reg),
            "--password-stdin",
            "-u",
            reg.username(),
        ])
        .arg(reg.url());
    };
    let mut c = scry_in(&home);
    args(&mut c);
    let out = run_with_stdin(&mut c, b"wrong-password\n");
    assert_eq!(out.code, Some(1), "{out}");
    assert!(!home.auth_file().exists());

    let mut c = scry_in(&home);
    args(&mut c);
    let out = run_with_stdin(&mut c, format!("{}\n", reg.password()).as_bytes());
    assert_eq!(out.assert_success().stdout, "Login Succeeded!\n");
    assert_eq!(
        entry(&home.auth_file(), &reg.url()),
        Some(b64(&reg.creds()))
    );
    inspect(skopeo_in(&home), reg, &[]).assert_success();

    // Without a user name there is nothing to pair the password with.
    for tool in [scry_in(&home), skopeo_in(&home)] {
        let mut tool = tool;
        tool.args(["login", "--cert-dir", &cert_dir(reg), "--password-stdin"])
            .arg(reg.url());
        let out = run_with_stdin(&mut tool, format!("{}\n", reg.password()).as_bytes());
        assert_eq!(out.code, Some(1), "{out}");
    }
}

#[test]
fn get_login_prints_the_user_like_skopeo() {
    let reg = login_registry();
    let home = Home::new();
    let get = |tool: Command| {
        let mut tool = tool;
        run(tool.args(["login", "--get-login"]).arg(reg.url()))
    };
    // Not logged in: both fail, scry naming the registry.
    assert!(!get(skopeo_in(&home)).success());
    let out = get(scry_in(&home));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("not logged in"), "{out}");
    assert!(out.stderr.contains(&reg.url()), "{out}");

    login(scry_in(&home), reg, reg.password(), &[]).assert_success();
    let s = get(scry_in(&home));
    let k = get(skopeo_in(&home));
    assert_eq!(s.assert_success().stdout, format!("{}\n", reg.username()));
    assert_eq!(s.stdout, k.assert_success().stdout);
}

#[test]
fn verbose_login_names_the_file_like_skopeo() {
    let reg = login_registry();
    let (a, b) = (Home::new(), Home::new());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json").display().to_string();
    let k = login(
        skopeo_in(&a),
        reg,
        reg.password(),
        &["-v", "--authfile", &path],
    );
    let s = login(
        scry_in(&b),
        reg,
        reg.password(),
        &["-v", "--authfile", &path],
    );
    assert_eq!(s.assert_success().stdout, k.assert_success().stdout);
}

#[test]
fn failed_login_writes_nothing() {
    let reg = login_registry();
    let home = Home::new();
    // Wrong password, unknown user.
    for (user, password) in [
        (reg.username(), "wrong-password"),
        ("nobody", reg.password()),
    ] {
        let out = run(scry_in(&home)
            .args([
                "login",
                "--cert-dir",
                &cert_dir(reg),
                "-u",
                user,
                "-p",
                password,
            ])
            .arg(reg.url()));
        assert_eq!(out.code, Some(1), "{out}");
        assert!(out.stdout.is_empty(), "{out}");
        let e = out.stderr.to_lowercase();
        assert!(
            e.contains("invalid username/password") || e.contains("unauthorized"),
            "{out}"
        );
        assert!(
            !home.auth_file().exists(),
            "a failed login wrote the auth file"
        );
    }
    let k = login(skopeo_in(&home), reg, "wrong-password", &[]);
    assert_eq!(k.code, Some(1), "{k}");

    // Untrusted certificate: the login cannot even be checked.
    let out = run(scry_in(&home)
        .args(["login", "-u", reg.username(), "-p", reg.password()])
        .arg(reg.url()));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(!home.auth_file().exists());

    // An existing file is left byte-for-byte as it was.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    let before = format!(
        "{{\"auths\":{{\"example.invalid:5000\":{{\"auth\":\"{}\"}}}}}}\n",
        b64("x:y")
    );
    std::fs::write(&path, &before).unwrap();
    let out = login(
        scry_in(&home),
        reg,
        "wrong-password",
        &["--authfile", &path.display().to_string()],
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

#[test]
fn logout_removes_credentials() {
    let reg = login_registry();
    let home = Home::new();
    login(scry_in(&home), reg, reg.password(), &[]).assert_success();
    inspect(skopeo_in(&home), reg, &[]).assert_success();

    let removed = run(scry_in(&home).arg("logout").arg(reg.url()));
    assert_eq!(
        removed.assert_success().stdout,
        format!("Removed login credentials for {}\n", reg.url())
    );
    assert_eq!(entry(&home.auth_file(), &reg.url()), None);
    assert!(
        !inspect(skopeo_in(&home), reg, &[]).success(),
        "skopeo still logged in"
    );
    assert!(
        !inspect(scry_in(&home), reg, &[]).success(),
        "scry still logged in"
    );

    // Again: not logged in, like skopeo.
    let s = run(scry_in(&home).arg("logout").arg(reg.url()));
    let k = run(skopeo_in(&home).arg("logout").arg(reg.url()));
    assert!(!k.success());
    assert_eq!(s.code, Some(1), "{s}");
    assert!(s.stderr.contains("not logged in"), "{s}");

    // Same stdout as skopeo for a successful logout.
    let other = Home::new();
    login(skopeo_in(&other), reg, reg.password(), &[]).assert_success();
    let k = run(skopeo_in(&other).arg("logout").arg(reg.url()));
    assert_eq!(removed.stdout, k.assert_success().stdout);
}

#[test]
fn logout_all() {
    let reg = login_registry();
    let home = Home::new();
    login(scry_in(&home), reg, reg.password(), &[]).assert_success();
    // A second key: the repository namespace (both tools accept HOST/REPO).
    let ns = reg.reference("small");
    run(scry_in(&home)
        .args([
            "login",
            "--cert-dir",
            &cert_dir(reg),
            "-u",
            reg.username(),
            "-p",
            reg.password(),
        ])
        .arg(&ns))
    .assert_success();
    assert_eq!(entry(&home.auth_file(), &ns), Some(b64(&reg.creds())));

    // --all takes no registry.
    let out = run(scry_in(&home).args(["logout", "--all"]).arg(reg.url()));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(entry(&home.auth_file(), &reg.url()).is_some());

    let s = run(scry_in(&home).args(["logout", "--all"]));
    assert_eq!(
        s.assert_success().stdout,
        "Removed login credentials for all registries\n"
    );
    let file = home.auth_file();
    if file.exists() {
        let v = read_json(&file);
        assert!(
            v["auths"].as_object().is_none_or(|m| m.is_empty()),
            "entries left: {v}"
        );
    }
    assert!(
        !inspect(skopeo_in(&home), reg, &[]).success(),
        "skopeo still logged in"
    );
    // Without a registry and without --all: an error.
    let out = run(scry_in(&home).arg("logout"));
    assert_eq!(out.code, Some(1), "{out}");
}

/// A token-auth registry accepts `scry login` (the check goes through the token server)
/// and skopeo then pulls with the stored credentials.
#[test]
fn login_to_token_registry() {
    let reg = Registry::builder().token().start();
    Fixtures::get().small.push(&reg);
    let home = Home::new();
    let out = run(scry_in(&home)
        .args([
            "login",
            "--tls-verify=false",
            "-u",
            reg.username(),
            "-p",
            reg.password(),
        ])
        .arg(reg.url()));
    out.assert_success();
    assert_eq!(
        entry(&home.auth_file(), &reg.url()),
        Some(b64(&reg.creds()))
    );
    run(skopeo_in(&home)
        .args(["inspect", "--tls-verify=false"])
        .arg(reg.docker_ref("small:latest")))
    .assert_success();
    let out = run(scry_in(&home)
        .args([
            "login",
            "--tls-verify=false",
            "-u",
            reg.username(),
            "-p",
            "wrong",
        ])
        .arg(reg.url()));
    assert_eq!(out.code, Some(1), "{out}");
}
