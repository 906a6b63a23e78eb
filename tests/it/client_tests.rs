//! Registry-client behaviour seen from the command line, on scripted servers and real
//! registries: retries (429 and dropped connections), `--command-timeout`,
//! `--user-agent-prefix`, a token that expires mid-command, and anonymous tokens (a
//! manifest too large even without Content-Length: `faults`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::fake::{Action, FakeServer};
use crate::faults::{image, ping_ok, scry_inspect, sha, OCI_MANIFEST};
use crate::harness::{run, run_with_timeout, scry, skopeo, Fixtures, Registry};

/// A server for `image()` whose manifest answers `first` to the first request.
fn flaky_manifest(first: impl Fn() -> Action + Send + Sync + 'static) -> FakeServer {
    let (m, c) = image();
    let cd = sha(&c);
    FakeServer::start(move |r, seen| {
        if let Some(a) = ping_ok(&r.path) {
            return a;
        }
        if r.path.ends_with("/manifests/1") {
            if seen == 0 {
                return first();
            }
            return Action::with(200, &[("Content-Type", OCI_MANIFEST)], m.clone());
        }
        if r.path.ends_with(&cd) {
            return Action::with(200, &[], c.clone());
        }
        Action::json(
            404,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"nope"}]}"#,
        )
    })
}

/// A 429 answer with `Retry-After: after` (none when empty).
fn throttle(after: &'static str) -> impl Fn() -> Action + Send + Sync + 'static {
    move || {
        let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#.to_vec();
        let mut h = vec![("Content-Type", "application/json")];
        if !after.is_empty() {
            h.push(("Retry-After", after));
        }
        Action::with(429, &h, body)
    }
}

#[test]
fn too_many_requests_is_retried_as_retry_after_says_without_retry_times() {
    // Once, with Retry-After in seconds and as an HTTP date: retried out of the box.
    for after in ["1", "Wed, 21 Oct 2015 07:28:00 GMT"] {
        let srv = flaky_manifest(throttle(after));
        let (code, out, err) = scry_inspect(&srv.host(), &["--no-tags"]);
        assert_eq!(code, 0, "Retry-After {after}: {err}");
        assert!(out.contains("amd64"), "{out}");
        assert_eq!(srv.count("/manifests/1"), 2, "Retry-After {after}");
    }
    // With --retry-times as well.
    let srv = flaky_manifest(throttle("0"));
    let (code, _, err) = scry_inspect(
        &srv.host(),
        &["--no-tags", "--retry-times=2", "--retry-delay=10ms"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(srv.count("/manifests/1"), 2);
}

#[test]
fn a_registry_that_keeps_throttling_fails_after_five_attempts() {
    let srv = FakeServer::start(|r, _| {
        if let Some(a) = ping_ok(&r.path) {
            return a;
        }
        throttle("0")()
    });
    let (code, _, err) = scry_inspect(&srv.host(), &["--no-tags"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("429") && err.contains("slow down"), "{err}");
    assert_eq!(srv.count("/manifests/1"), 5, "{:?}", srv.requests());
    // --retry-times adds its attempts after those.
    let before = srv.count("/manifests/1");
    let (code, _, err) = scry_inspect(
        &srv.host(),
        &["--no-tags", "--retry-times=2", "--retry-delay=1ms"],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(srv.count("/manifests/1") - before, 7);
}

#[test]
fn dropped_connection_then_success_is_retried() {
    let srv = flaky_manifest(|| Action::Close);
    let (code, out, err) = scry_inspect(
        &srv.host(),
        &["--no-tags", "--retry-times=2", "--retry-delay=10ms"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("amd64"), "{out}");

    let srv = flaky_manifest(|| Action::Close);
    let (code, _, err) = scry_inspect(&srv.host(), &["--no-tags"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("manifest"), "{err}");
}

#[test]
fn command_timeout_stops_a_silent_server() {
    let srv = FakeServer::start(|_, _| {
        std::thread::sleep(Duration::from_secs(30));
        Action::Close
    });
    let started = Instant::now();
    let out = run_with_timeout(
        scry().args([
            "--command-timeout=1s",
            "inspect",
            "--tls-verify=false",
            &format!("docker://{}/app:1", srv.host()),
        ]),
        Duration::from_secs(25),
    );
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("timed out"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn user_agent_prefix_reaches_the_registry() {
    let srv = flaky_manifest(|| Action::json(500, "{}"));
    let out = run(scry().args([
        "--user-agent-prefix",
        "SCRYTEST/1.0",
        "inspect",
        "--tls-verify=false",
        "--no-tags",
        "--retry-times=1",
        "--retry-delay=1ms",
        &format!("docker://{}/app:1", srv.host()),
    ]));
    out.assert_success();
    let agents: Vec<String> = srv
        .requests()
        .iter()
        .map(|r| r.headers.get("user-agent").cloned().unwrap_or_default())
        .collect();
    assert!(agents.len() >= 3, "{agents:?}");
    for a in &agents {
        assert!(a.starts_with("SCRYTEST/1.0 scry/"), "{agents:?}");
    }
    // Without the flag: scry's own.
    let srv = flaky_manifest(|| Action::json(500, "{}"));
    let (code, _, err) = scry_inspect(&srv.host(), &["--no-tags"]);
    assert_eq!(code, 1, "{err}");
    assert!(srv.requests().iter().all(|r| r
        .headers
        .get("user-agent")
        .is_some_and(|a| a.starts_with("scry/"))));
}

/// Tokens live one second; the manifest answer takes two, so the next request's token
/// has expired and the registry refuses it: scry fetches a new one and carries on.
#[test]
fn expired_token_is_renewed() {
    let (m, c) = image();
    let cd = sha(&c);
    let host: Arc<OnceLock<String>> = Arc::default();
    let issued: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let (h, tokens, config_path) = (host.clone(), issued.clone(), cd.clone());
    let srv = FakeServer::start(move |r, _| {
        let challenge = format!(
            r#"Bearer realm="http://{}/token",service="fake",error="invalid_token""#,
            h.get().cloned().unwrap_or_default()
        );
        let refuse = || {
            Action::with(
                401,
                &[("WWW-Authenticate", challenge.as_str())],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}"#.to_vec(),
            )
        };
        if r.path == "/token" {
            let mut t = tokens.lock().unwrap();
            let name = format!("tok-{}", t.len() + 1);
            t.insert(name.clone(), Instant::now());
            return Action::json(200, &format!(r#"{{"token":"{name}","expires_in":1}}"#));
        }
        let fresh = r
            .headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| tokens.lock().unwrap().get(t).copied())
            .is_some_and(|at| at.elapsed() < Duration::from_millis(1500));
        if !fresh {
            return refuse();
        }
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        if r.path.ends_with("/manifests/1") {
            std::thread::sleep(Duration::from_secs(2));
            return Action::with(200, &[("Content-Type", OCI_MANIFEST)], m.clone());
        }
        if r.path.ends_with(&config_path) {
            return Action::with(200, &[], c.clone());
        }
        Action::json(404, "{}")
    });
    host.set(srv.host()).unwrap();
    let (code, out, err) = scry_inspect(&srv.host(), &["--no-tags"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("amd64"), "{out}");
    let n = issued.lock().unwrap().len();
    assert!(n >= 2, "only {n} token(s) issued");
    let config_auth: Vec<String> = srv
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&cd))
        .filter_map(|r| r.headers.get("authorization").cloned())
        .collect();
    assert_eq!(
        config_auth.last().map(String::as_str),
        Some(format!("Bearer tok-{n}").as_str()),
        "the config was read with the newest token"
    );
}

/// A token registry that gives anonymous clients pull tokens: scry reads without
/// credentials, as skopeo does.
#[test]
fn anonymous_token_auth() {
    let reg = Registry::builder()
        .tls(crate::harness::Tls::CaSigned)
        .token()
        .anonymous_pull(true)
        .start();
    Fixtures::get().small.push(&reg);
    let dir = reg.certs_dir().display().to_string();
    let image = reg.docker_ref("small:latest");
    let tokens = reg.token_server().unwrap();
    for args in [&["inspect", "--raw"][..], &["list-tags"]] {
        let target = if args[0] == "list-tags" {
            reg.docker_ref("small")
        } else {
            image.clone()
        };
        let k = run(skopeo().args(args).args(["--cert-dir", &dir]).arg(&target));
        k.assert_success();
        tokens.clear_requests();
        let s = run(scry().args(args).args(["--cert-dir", &dir]).arg(&target));
        s.assert_success();
        assert_eq!(s.stdout, k.stdout, "{args:?}");
        let asked = tokens.requests();
        assert!(!asked.is_empty(), "scry asked for no token");
        for t in &asked {
            assert!(!t.presented_credentials, "{t:?}");
            assert_eq!(t.status, 200, "{t:?}");
            assert!(t.granted.iter().any(|g| g.contains("pull")), "{t:?}");
        }
    }
}

/// The global `--tls-verify` (before the command) still works, as scripts written for
/// skopeo use it, with skopeo's deprecation warning.
#[test]
fn global_tls_verify_works_and_is_deprecated() {
    let (reg, fx) = crate::harness::shared_registry();
    let image = reg.docker_ref("small:latest");
    let out = run(scry().args(["--tls-verify=false", "inspect", "--raw", &image]));
    out.assert_success();
    assert_eq!(out.stdout_bytes, fx.small.image.manifest);
    assert!(out.stderr.contains("deprecated"), "{out}");
    // Without it the plain-HTTP registry is refused: the flag really is applied.
    let out = run(scry().args(["inspect", "--raw", &image]));
    assert!(!out.success(), "{out}");
}
