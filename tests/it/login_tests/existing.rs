//! `login` without `-u`/`-p` when the auth file already has credentials: they are
//! checked first, as skopeo 1.9.3 does ("Authenticating with existing credentials …",
//! then "Already logged in" and exit 0, or "Existing credentials are invalid" and a
//! prompt); an identity token is refused. And `login` builds its client as every
//! other command: `--user-agent-prefix` and registries.conf `insecure` apply.

use std::path::Path;

use super::{b64, cert_dir, login_registry, scry_in, skopeo_in};
use crate::fake::{Action, FakeServer};
use crate::harness::{run, CmdOutput, Home, Registry};

/// `login --cert-dir … --authfile FILE TARGET` with stdin closed.
fn login_stored(
    mut tool: std::process::Command,
    reg: &Registry,
    file: &Path,
    target: &str,
) -> CmdOutput {
    run(tool
        .args(["login", "--cert-dir", &cert_dir(reg), "--authfile"])
        .arg(file)
        .arg(target))
}

fn write_auth(file: &Path, key: &str, user_pass: &str, identity_token: Option<&str>) {
    let mut entry = serde_json::json!({ "auth": b64(user_pass) });
    if let Some(t) = identity_token {
        entry["identitytoken"] = t.into();
    }
    let doc = serde_json::json!({ "auths": { key: entry } });
    std::fs::write(file, serde_json::to_vec(&doc).unwrap()).unwrap();
}

#[test]
fn stored_valid_credentials_are_checked_and_kept() {
    let reg = login_registry();
    let home = Home::new();
    let file = home.path().join("auth.json");
    let url = reg.url();
    for (stored_key, target) in [
        (url.clone(), url.clone()),
        (url.clone(), format!("{url}/ns/repo")),
        (format!("{url}/ns"), format!("{url}/ns")),
    ] {
        let mut outs = Vec::new();
        for tool in [skopeo_in(&home), scry_in(&home)] {
            write_auth(&file, &stored_key, &reg.creds(), None);
            let before = std::fs::read(&file).unwrap();
            let out = login_stored(tool, reg, &file, &target);
            assert_eq!(out.code, Some(0), "{out}");
            assert_eq!(
                std::fs::read(&file).unwrap(),
                before,
                "the file must not change"
            );
            outs.push(out);
        }
        let want = format!(
            "Authenticating with existing credentials for {target}\n\
             Existing credentials are valid. Already logged in to {url}\n"
        );
        assert_eq!(outs[0].stdout, want, "the oracle changed: {}", outs[0]);
        assert_eq!(outs[1].stdout, want, "{}", outs[1]);
    }
}

#[test]
fn stored_invalid_credentials_ask_for_new_ones() {
    let reg = login_registry();
    let home = Home::new();
    let file = home.path().join("auth.json");
    let bad = format!("{}:wrong-password", reg.username());
    for tool in [skopeo_in(&home), scry_in(&home)] {
        write_auth(&file, &reg.url(), &bad, None);
        let out = login_stored(tool, reg, &file, &reg.url());
        // No terminal to ask on: the login fails and the file is left alone.
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            out.stdout.starts_with(&format!(
                "Authenticating with existing credentials for {}\n\
                 Existing credentials are invalid, please enter valid username and password\n",
                reg.url()
            )),
            "{out}"
        );
        assert_eq!(super::entry(&file, &reg.url()), Some(b64(&bad)));
    }
}

#[test]
fn stored_identity_token_is_refused() {
    let reg = login_registry();
    let home = Home::new();
    let file = home.path().join("auth.json");
    for tool in [skopeo_in(&home), scry_in(&home)] {
        write_auth(&file, &reg.url(), "x:", Some("refresh-token"));
        let out = login_stored(tool, reg, &file, &reg.url());
        assert_eq!(out.code, Some(1), "{out}");
        assert!(
            out.stderr
                .contains("currently logged in, auth file contains an Identity token"),
            "{out}"
        );
    }
}

#[test]
fn login_argument_count_errors_as_skopeo() {
    for (args, msg) in [
        (&["login"][..], "please provide a registry to login to"),
        (
            &["login", "a.example", "b.example"],
            "login accepts only one registry to login to",
        ),
        (&["logout"], "please provide a registry to logout from"),
        (
            &["logout", "a.example", "b.example"],
            "logout accepts only one registry to logout from",
        ),
    ] {
        let home = Home::new();
        for mut tool in [skopeo_in(&home), scry_in(&home)] {
            let out = run(tool.args(args));
            assert_eq!(out.code, Some(1), "{out}");
            assert!(out.stderr.contains(msg), "{out}");
        }
    }
}

/// A plain-HTTP registry that wants Basic auth and records every request.
fn basic_auth_server() -> FakeServer {
    FakeServer::start(|r, _| {
        if r.headers.contains_key("authorization") {
            Action::json(200, "{}")
        } else {
            Action::with(
                401,
                &[("WWW-Authenticate", r#"Basic realm="fake""#)],
                Vec::new(),
            )
        }
    })
}

#[test]
fn login_sends_the_user_agent_prefix_and_reads_registries_conf() {
    let home = Home::new();
    let conf = home.path().join("insecure.conf");
    for tool_is_scry in [false, true] {
        let srv = basic_auth_server();
        std::fs::write(
            &conf,
            format!(
                "[[registry]]\nlocation = \"{}\"\ninsecure = true\n",
                srv.host()
            ),
        )
        .unwrap();
        // skopeo 1.9.3 has no --user-agent-prefix (later releases do).
        let (mut tool, prefix): (_, &[&str]) = if tool_is_scry {
            (scry_in(&home), &["--user-agent-prefix", "LOGINPFX"])
        } else {
            (skopeo_in(&home), &[])
        };
        // No --tls-verify: registries.conf alone allows plain HTTP.
        let out = run(tool
            .arg("--registries-conf")
            .arg(&conf)
            .args(prefix)
            .args(["login", "--authfile"])
            .arg(home.path().join("auth.json"))
            .args(["-u", "someone", "-p", "secret", &srv.host()]));
        assert_eq!(out.code, Some(0), "{out}");
        assert_eq!(out.stdout, "Login Succeeded!\n", "{out}");
        let agents: Vec<String> = srv
            .requests()
            .iter()
            .filter_map(|r| r.headers.get("user-agent").cloned())
            .collect();
        assert!(!agents.is_empty(), "no request reached the server");
        if tool_is_scry {
            assert!(
                agents.iter().all(|a| a.starts_with("LOGINPFX scry/")),
                "{agents:?}"
            );
        }
    }
}
