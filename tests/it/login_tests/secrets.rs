//! Secrets stay secret: with `--debug`, neither passwords, their base64 form, nor
//! bearer tokens reach scry's output, whatever way the credentials were given.

use super::{b64, cert_dir, inspect, scry_in};
use crate::harness::{run, scry, CmdOutput, Fixtures, Home, Registry, Tls};

/// Nothing that would let someone reuse the credentials may reach stderr.
#[track_caller]
fn assert_no_secrets(out: &CmdOutput, secrets: &[String]) {
    for s in secrets {
        assert!(
            !out.stderr.contains(s.as_str()),
            "stderr leaks {s:?}: {out}"
        );
        assert!(
            !out.stdout.contains(s.as_str()),
            "stdout leaks {s:?}: {out}"
        );
    }
    // Bearer tokens are JWTs: base64url of `{"…`.
    assert!(!out.stderr.contains("eyJ"), "stderr shows a token: {out}");
}

#[test]
fn debug_output_never_shows_credentials() {
    let secret = "Sup3r-Secret-Pa55-0xC0FFEE";
    let reg = Registry::builder()
        .tls(Tls::CaSigned)
        .htpasswd()
        .credentials("debuguser", secret)
        .start();
    Fixtures::get().small.push(&reg);
    let creds = format!("debuguser:{secret}");
    let secrets = vec![secret.to_string(), b64(&creds)];
    let home = Home::new();

    let out = run(scry_in(&home)
        .args([
            "--debug",
            "login",
            "--cert-dir",
            &cert_dir(&reg),
            "-u",
            "debuguser",
            "-p",
            secret,
        ])
        .arg(reg.url()));
    out.assert_success();
    assert!(
        out.stderr.contains("/v2/"),
        "--debug must log requests: {out}"
    );
    assert_no_secrets(&out, &secrets);

    // From the auth file, from --creds, from --username/--password; and failing.
    for extra in [
        vec![],
        vec!["--creds", creds.as_str()],
        vec!["--username", "debuguser", "--password", secret],
    ] {
        let mut c = scry_in(&home);
        c.arg("--debug");
        let out = inspect(c, &reg, &extra);
        out.assert_success();
        assert!(
            out.stderr.contains("/v2/small/"),
            "--debug must log requests: {out}"
        );
        assert_no_secrets(&out, &secrets);
    }
    let wrong = format!("debuguser:{secret}-wrong");
    let mut c = scry_in(&home);
    c.arg("--debug");
    let out = inspect(c, &reg, &["--creds", &wrong]);
    out.assert_failure();
    assert_no_secrets(&out, &[wrong.clone(), b64(&wrong)]);

    // Token auth: neither the password nor the tokens.
    let treg = Registry::builder()
        .token()
        .credentials("debuguser", secret)
        .start();
    Fixtures::get().small.push(&treg);
    let out = run(scry()
        .args([
            "--debug",
            "inspect",
            "--tls-verify=false",
            "--creds",
            &creds,
        ])
        .arg(treg.docker_ref("small:latest")));
    out.assert_success();
    assert_no_secrets(&out, &secrets);
    let token = treg
        .token_server()
        .unwrap()
        .mint(Some("debuguser"), &[("repository", "small", &["pull"])]);
    let out = run(scry()
        .args([
            "--debug",
            "inspect",
            "--tls-verify=false",
            "--registry-token",
            &token,
        ])
        .arg(treg.docker_ref("small:latest")));
    out.assert_success();
    assert_no_secrets(&out, std::slice::from_ref(&token));
}
