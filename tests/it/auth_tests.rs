//! Reaching registries that need trust or credentials: TLS with a CA or a self-signed
//! `CA:TRUE` certificate through `--cert-dir`, htpasswd Basic auth over TLS, and token
//! auth (scoped tokens, `--registry-token`). scry must succeed exactly where skopeo does,
//! print the same bytes, and fail with exit 1 (auth) or 2 (missing image) otherwise.

use std::collections::BTreeSet;

use crate::harness::registry::TOKEN_SERVICE;
use crate::harness::{run, scry, skopeo, CmdOutput, Fixtures, Registry, Tls};

/// `inspect FLAGS… IMAGE` with a tool.
fn inspect(mut tool: std::process::Command, flags: &[String], image: &str) -> CmdOutput {
    run(tool.arg("inspect").args(flags).arg(image))
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// scry and skopeo both succeed with identical output (`--raw` and default JSON).
#[track_caller]
fn assert_same_as_skopeo(flags: &[String], image: &str) {
    for extra in [&["--raw"][..], &["--no-tags"], &[]] {
        let mut f = flags.to_vec();
        f.extend(strings(extra));
        let k = inspect(skopeo(), &f, image);
        let s = inspect(scry(), &f, image);
        k.assert_success();
        s.assert_success();
        if extra != ["--raw"] {
            // JSON documents: compare after removing LayersData, which skopeo 1.9.3
            // lacks (see inspect_tests::compare_default_json).
            let (a, _) = crate::inspect_tests::strip_top_level_field(&s.stdout, "LayersData");
            assert_eq!(a, k.stdout, "inspect {f:?} {image}");
        } else {
            assert_eq!(s.stdout, k.stdout, "inspect {f:?} {image}");
        }
    }
}

#[track_caller]
fn assert_auth_failure(out: &CmdOutput) {
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stdout.is_empty(), "{out}");
    let e = out.stderr.to_lowercase();
    // Registries say "unauthorized: authentication required"; a token server's
    // refusal is reported as skopeo does, "invalid username/password".
    assert!(
        e.contains("unauthorized")
            || e.contains("authentication required")
            || e.contains("invalid username/password"),
        "the message must say authentication failed: {out}"
    );
    assert!(!e.contains("panicked"), "{out}");
}

/// Refused credentials are named, with the command that stores others.
#[track_caller]
fn assert_names_refused_user(out: &CmdOutput, user: &str, registry: &str) {
    let hint = format!("the credentials for {user} were refused: run `scry login {registry}`");
    assert!(out.stderr.contains(&hint), "no {hint:?}: {out}");
}

fn tls_registry_needs_its_cert_dir(tls: Tls) {
    let reg = Registry::builder().tls(tls).start();
    let f = Fixtures::get();
    f.small.push(&reg);
    let image = reg.docker_ref("small:latest");
    let certs = reg.certs_dir().display().to_string();

    assert_same_as_skopeo(&strings(&["--cert-dir", &certs]), &image);
    // A bare --tls-verify means true; --cert-dir still supplies the trust.
    assert_same_as_skopeo(&strings(&["--tls-verify", "--cert-dir", &certs]), &image);
    // Verification off: no trust needed.
    assert_same_as_skopeo(&strings(&["--tls-verify=false"]), &image);

    for flags in [vec![], strings(&["--tls-verify=true"])] {
        let k = inspect(skopeo(), &flags, &image);
        assert!(!k.success(), "{k}");
        let s = inspect(scry(), &flags, &image);
        assert_eq!(s.code, Some(1), "untrusted certificate must fail: {s}");
        let e = s.stderr.to_lowercase();
        assert!(
            e.contains("certificate") || e.contains("x509") || e.contains("tls"),
            "the message must name the certificate problem: {s}"
        );
    }

    // A cert dir with some other CA is not enough.
    let other = Registry::builder().tls(Tls::CaSigned).start();
    let flags = strings(&["--cert-dir", &other.certs_dir().display().to_string()]);
    assert!(!inspect(skopeo(), &flags, &image).success());
    assert_eq!(inspect(scry(), &flags, &image).code, Some(1));
}

#[test]
fn tls_ca_signed_with_cert_dir() {
    tls_registry_needs_its_cert_dir(Tls::CaSigned);
}

#[test]
fn tls_self_signed_ca_true_with_cert_dir() {
    tls_registry_needs_its_cert_dir(Tls::SelfSigned);
}

#[test]
fn plain_http_registry_needs_tls_verify_false() {
    let (reg, _) = crate::harness::shared_registry();
    let image = reg.docker_ref("small:latest");
    let k = inspect(skopeo(), &[], &image);
    assert!(!k.success(), "{k}");
    let s = inspect(scry(), &[], &image);
    assert_eq!(s.code, Some(1), "{s}");
}

#[test]
fn htpasswd_over_tls() {
    let reg = Registry::builder().tls(Tls::CaSigned).htpasswd().start();
    let f = Fixtures::get();
    f.small.push(&reg);
    f.manytags.push(&reg);
    let image = reg.docker_ref("small:latest");
    let certs = reg.certs_dir().display().to_string();
    let cert = strings(&["--cert-dir", &certs]);
    let with = |more: &[&str]| -> Vec<String> {
        let mut v = cert.clone();
        v.extend(strings(more));
        v
    };

    // Good credentials, both spellings.
    assert_same_as_skopeo(&with(&["--creds", &reg.creds()]), &image);
    assert_same_as_skopeo(
        &with(&["--username", reg.username(), "--password", reg.password()]),
        &image,
    );

    // list-tags with credentials.
    let tags = |tool: std::process::Command| {
        let mut tool = tool;
        run(tool
            .arg("list-tags")
            .args(with(&["--creds", &reg.creds()]))
            .arg(reg.docker_ref("manytags")))
    };
    let k = tags(skopeo());
    assert_eq!(
        tags(scry()).assert_success().stdout,
        k.assert_success().stdout
    );

    // Wrong password, both spellings; the oracle fails too.
    let wrong = format!("{}:not-the-password", reg.username());
    for flags in [
        with(&["--creds", &wrong]),
        with(&[
            "--username",
            reg.username(),
            "--password",
            "not-the-password",
        ]),
    ] {
        assert!(!inspect(skopeo(), &flags, &image).success());
        let out = inspect(scry(), &flags, &image);
        assert_auth_failure(&out);
        assert_names_refused_user(&out, reg.username(), &reg.url());
    }
    // Unknown user.
    assert_auth_failure(&inspect(scry(), &with(&["--creds", "nobody:x"]), &image));

    // Anonymous: no credentials at all, or explicitly --no-creds.
    for flags in [cert.clone(), with(&["--no-creds"])] {
        assert!(!inspect(skopeo(), &flags, &image).success());
        assert_auth_failure(&inspect(scry(), &flags, &image));
    }

    // Good credentials, missing image: exit 2 (skopeo 1.9.3 exits 1, see
    // inspect_tests::errors::missing_images_exit_2).
    for missing in ["small:no-such-tag", "no-such-repo:latest"] {
        let out = inspect(
            scry(),
            &with(&["--creds", &reg.creds()]),
            &reg.docker_ref(missing),
        );
        assert_eq!(out.code, Some(2), "{out}");
    }
}

#[test]
fn token_auth_requests_pull_scope_as_the_user() {
    let reg = Registry::builder().token().start();
    let f = Fixtures::get();
    f.small.push(&reg);
    f.docker.push(&reg);
    let server = reg.token_server().unwrap();
    let image = reg.docker_ref("small:latest");
    let creds = strings(&["--tls-verify=false", "--creds", &reg.creds()]);

    server.clear_requests();
    let s = inspect(scry(), &creds, &image);
    s.assert_success();
    let seen = server.requests();
    assert!(!seen.is_empty(), "scry never asked the token server");
    for r in &seen {
        assert_eq!(r.status, 200, "a token request failed: {r:?}");
        assert_eq!(r.user.as_deref(), Some(reg.username()), "{r:?}");
        assert_eq!(r.service.as_deref(), Some(TOKEN_SERVICE), "{r:?}");
    }
    let scopes: BTreeSet<&str> = seen
        .iter()
        .flat_map(|r| r.scopes.iter().map(String::as_str))
        .collect();
    assert!(scopes.contains("repository:small:pull"), "{seen:?}");
    // Inspect only reads: no scope may ask for more than pull.
    assert!(
        scopes
            .iter()
            .all(|s| !s.contains("push") && !s.contains('*')),
        "{scopes:?}"
    );
    // Token reuse: one inspect (manifest, config, tags of one repo) needs one token.
    assert!(seen.len() <= 2, "a token per request? {seen:?}");

    assert_same_as_skopeo(&creds, &image);
    assert_same_as_skopeo(&creds, &reg.docker_ref("docker:latest"));

    // list-tags asks for the same repository scope.
    server.clear_requests();
    let out = run(scry()
        .arg("list-tags")
        .args(&creds)
        .arg(reg.docker_ref("small")));
    out.assert_success();
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.scopes.iter().any(|s| s == "repository:small:pull")),
        "{:?}",
        server.requests()
    );

    // Missing image with good credentials: exit 2.
    let out = inspect(scry(), &creds, &reg.docker_ref("small:no-such-tag"));
    assert_eq!(out.code, Some(2), "{out}");
}

#[test]
fn token_auth_failures() {
    let reg = Registry::builder().token().start();
    Fixtures::get().small.push(&reg);
    let server = reg.token_server().unwrap();
    let image = reg.docker_ref("small:latest");

    server.clear_requests();
    let flags = strings(&[
        "--tls-verify=false",
        "--creds",
        &format!("{}:wrong", reg.username()),
    ]);
    assert!(!inspect(skopeo(), &flags, &image).success());
    server.clear_requests();
    let out = inspect(scry(), &flags, &image);
    assert_auth_failure(&out);
    assert_names_refused_user(&out, reg.username(), &reg.url());
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.presented_credentials && r.status == 401),
        "scry must have presented the (wrong) credentials: {:?}",
        server.requests()
    );
    // Bounded: a refused token is not retried forever.
    assert!(server.requests().len() <= 4, "{:?}", server.requests());

    for flags in [
        strings(&["--tls-verify=false"]),
        strings(&["--tls-verify=false", "--no-creds"]),
    ] {
        assert!(!inspect(skopeo(), &flags, &image).success());
        let out = inspect(scry(), &flags, &image);
        assert_eq!(out.code, Some(1), "{out}");
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
}

#[test]
fn registry_token_flag_uses_the_given_token() {
    let reg = Registry::builder().token().start();
    let f = Fixtures::get();
    f.small.push(&reg);
    let server = reg.token_server().unwrap();
    let image = reg.docker_ref("small:latest");
    let token = server.mint(Some(reg.username()), &[("repository", "small", &["pull"])]);
    let flags = strings(&["--tls-verify=false", "--registry-token", &token]);

    server.clear_requests();
    let out = inspect(scry(), &flags, &image);
    assert_eq!(
        out.assert_success().json()["Digest"],
        f.small.digest.as_str()
    );
    assert!(
        server.requests().is_empty(),
        "with --registry-token scry must not fetch its own token: {:?}",
        server.requests()
    );
    assert_same_as_skopeo(&flags, &image);

    // A token for another repository does not open this one.
    let other = server.mint(Some(reg.username()), &[("repository", "other", &["pull"])]);
    let flags = strings(&["--tls-verify=false", "--registry-token", &other]);
    assert!(!inspect(skopeo(), &flags, &image).success());
    assert_auth_failure(&inspect(scry(), &flags, &image));

    // Garbage is refused by the registry, not by a panic.
    let flags = strings(&["--tls-verify=false", "--registry-token", "not.a.token"]);
    assert!(!inspect(skopeo(), &flags, &image).success());
    assert_auth_failure(&inspect(scry(), &flags, &image));
}

/// Credential flags that skopeo refuses together are refused by scry (exit 1), and
/// combinations skopeo accepts are accepted.
#[test]
fn credential_flag_combinations_follow_skopeo() {
    let (reg, _) = crate::harness::shared_registry();
    let image = reg.docker_ref("small:latest");
    for flags in [
        strings(&["--creds", "a:b", "--no-creds"]),
        strings(&["--creds", "a:b", "--username", "a", "--password", "b"]),
        strings(&["--username", "a"]),
        strings(&["--password", "b"]),
        // skopeo 1.9.3 accepts a token next to --creds (the token wins for Bearer).
        strings(&["--creds", "a:b", "--registry-token", "t"]),
        strings(&["--creds", "a:b"]),
    ] {
        let mut f = strings(&["--tls-verify=false"]);
        f.extend(flags.iter().cloned());
        let k = inspect(skopeo(), &f, &image);
        let s = inspect(scry(), &f, &image);
        if k.success() {
            assert!(s.success(), "skopeo accepts {flags:?}, scry does not: {s}");
        } else {
            assert_eq!(s.code, Some(1), "skopeo refuses {flags:?}: {k}\nscry: {s}");
        }
    }
}

#[test]
fn certs_d_in_the_user_config_is_used_without_cert_dir() {
    let reg = Registry::builder().tls(Tls::CaSigned).start();
    let fx = crate::harness::Fixtures::get();
    fx.small.push(&reg);
    let home = crate::harness::Home::new();
    let dir = home
        .path()
        .join(".config/containers/certs.d")
        .join(reg.url());
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(reg.ca_cert_path(), dir.join("ca.crt")).unwrap();
    let mut cmd = crate::harness::scry();
    home.apply(&mut cmd);
    let out = crate::harness::run(cmd.args(["inspect", "--raw", &reg.docker_ref("small:latest")]));
    out.assert_success();
    assert_eq!(out.stdout_bytes, fx.small.image.manifest);
    // Without it, the same command fails on the certificate.
    let mut bare = crate::harness::scry();
    crate::harness::Home::new().apply(&mut bare);
    crate::harness::run(bare.args(["inspect", "--raw", &reg.docker_ref("small:latest")]))
        .assert_code(1);
}
