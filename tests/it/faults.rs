//! Faults a real registry cannot produce, served by the scripted fake server: each must
//! give a clear error (or the right result after a retry), never a panic or a hang.

use sha2::{Digest, Sha256};

use crate::fake::{Action, FakeServer};
use crate::harness::{run, scry};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

/// A tiny valid image: (manifest bytes, config bytes).
pub fn image() -> (Vec<u8>, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux","created":"2024-01-02T03:04:05Z","config":{"Env":["A=1"]},"rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{}","size":{}}},"layers":[]}}"#,
        sha(&config),
        config.len()
    );
    (manifest.into_bytes(), config)
}

pub fn ping_ok(path: &str) -> Option<Action> {
    (path == "/v2/").then(|| Action::json(200, "{}"))
}

pub fn scry_inspect(host: &str, extra: &[&str]) -> (i32, String, String) {
    let target = format!("docker://{host}/app:1");
    let mut args = vec!["inspect", "--tls-verify=false"];
    args.extend_from_slice(extra);
    args.push(&target);
    let out = run(scry().args(&args));
    (out.code.unwrap_or(-1), out.stdout, out.stderr)
}

#[test]
fn server_error_then_success_is_retried() {
    let (m, c) = image();
    let cd = sha(&c);
    let srv = FakeServer::start(move |r, seen| {
        if let Some(a) = ping_ok(&r.path) {
            return a;
        }
        if r.path.ends_with("/manifests/1") {
            if seen == 0 {
                return Action::json(500, r#"{"errors":[{"code":"UNKNOWN","message":"boom"}]}"#);
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
    });
    let (code, out, err) = scry_inspect(
        &srv.host(),
        &["--no-tags", "--retry-times=2", "--retry-delay=10ms"],
    );
    assert_eq!(code, 0, "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(srv.count("/manifests/1"), 2);
}

#[test]
fn server_error_without_retry_fails_clearly() {
    let srv = FakeServer::start(|r, _| {
        ping_ok(&r.path).unwrap_or_else(|| {
            Action::json(
                503,
                r#"{"errors":[{"code":"UNAVAILABLE","message":"down for maintenance"}]}"#,
            )
        })
    });
    let (code, _, err) = scry_inspect(&srv.host(), &["--raw"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("down for maintenance") && err.contains("503"),
        "{err}"
    );
}

#[test]
fn endless_unauthorized_stops() {
    let host_cell = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let h = host_cell.clone();
    let srv = FakeServer::start(move |r, _| {
        let host = h.get().cloned().unwrap_or_default();
        match r.path.as_str() {
            "/token" => Action::json(200, r#"{"token":"abc","expires_in":300}"#),
            _ => Action::with(
                401,
                &[(
                    "WWW-Authenticate",
                    &format!(r#"Bearer realm="http://{host}/token",service="fake""#),
                )],
                br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#
                    .to_vec(),
            ),
        }
    });
    host_cell.set(srv.host()).unwrap();
    let (code, _, err) = scry_inspect(
        &srv.host(),
        &["--raw", "--retry-times=3", "--retry-delay=1ms"],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("unauthorized") || err.contains("authentication required"),
        "{err}"
    );
    // Unauthenticated, with a token, with one fresh token: then it stops.
    let tries = srv.count("/manifests/1");
    assert!((1..=3).contains(&tries), "manifest asked {tries} times");
    let reqs = srv.requests();
    let token_req = reqs
        .iter()
        .find(|r| r.path == "/token")
        .expect("a token request");
    assert!(
        token_req.query.contains("scope=repository%3Aapp%3Apull"),
        "{}",
        token_req.query
    );
    // After the first answer taught the challenge, every try carries the token.
    assert!(reqs
        .iter()
        .filter(|r| r.path.ends_with("/manifests/1"))
        .skip(1)
        .all(|r| r.headers.get("authorization").map(String::as_str) == Some("Bearer abc")));
}

#[test]
fn dropped_connection_is_an_error() {
    let srv = FakeServer::start(|r, _| ping_ok(&r.path).unwrap_or(Action::Close));
    let (code, _, err) = scry_inspect(&srv.host(), &["--raw"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("manifests/1") || err.contains("manifest"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn truncated_manifest_body_is_an_error() {
    let (m, _) = image();
    let srv = FakeServer::start(move |r, _| {
        ping_ok(&r.path).unwrap_or_else(|| Action::Truncate {
            status: 200,
            headers: vec![("Content-Type".into(), OCI_MANIFEST.into())],
            body: m.clone(),
            send: 20,
        })
    });
    let (code, out, err) = scry_inspect(&srv.host(), &["--raw"]);
    assert_eq!(code, 1, "stdout: {out}");
    assert!(out.is_empty());
    assert!(err.contains("manifest"), "{err}");
}

#[test]
fn oversized_manifest_is_refused() {
    // A 5 MiB manifest, announced by Content-Length and sent without it.
    for announced in [true, false] {
        let big = vec![b' '; 5 * 1024 * 1024];
        let srv = FakeServer::start(move |r, _| {
            ping_ok(&r.path).unwrap_or_else(|| match announced {
                true => Action::with(200, &[("Content-Type", OCI_MANIFEST)], big.clone()),
                false => Action::Unsized {
                    status: 200,
                    headers: vec![("Content-Type".into(), OCI_MANIFEST.into())],
                    body: big.clone(),
                },
            })
        });
        let (code, out, err) = scry_inspect(&srv.host(), &["--raw"]);
        assert_eq!(code, 1, "announced {announced}: {err}");
        assert!(out.is_empty());
        assert!(err.contains("limit"), "announced {announced}: {err}");
    }
}

#[test]
fn garbage_manifest_is_an_error() {
    let srv = FakeServer::start(|r, _| {
        ping_ok(&r.path).unwrap_or_else(|| {
            Action::with(
                200,
                &[("Content-Type", OCI_MANIFEST)],
                b"<html>not json</html>".to_vec(),
            )
        })
    });
    let (code, _, err) = scry_inspect(&srv.host(), &["--no-tags"]);
    assert_eq!(code, 1);
    assert!(err.to_lowercase().contains("manifest"), "{err}");
}

#[test]
fn config_with_wrong_digest_is_refused() {
    let (m, _) = image();
    let srv = FakeServer::start(move |r, _| {
        if let Some(a) = ping_ok(&r.path) {
            return a;
        }
        if r.path.contains("/manifests/") {
            return Action::with(200, &[("Content-Type", OCI_MANIFEST)], m.clone());
        }
        Action::with(
            200,
            &[],
            br#"{"architecture":"arm64","os":"linux"}"#.to_vec(),
        )
    });
    let (code, out, err) = scry_inspect(&srv.host(), &["--no-tags"]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("digest mismatch"), "{err}");
}

#[test]
fn missing_manifest_exits_2() {
    let srv = FakeServer::start(|r, _| {
        ping_ok(&r.path).unwrap_or_else(|| {
            Action::json(
                404,
                r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
            )
        })
    });
    let (code, _, err) = scry_inspect(&srv.host(), &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("manifest unknown"), "{err}");
}

/// A blob redirected to another host gets no credentials there.
#[test]
fn redirected_blob_gets_no_credentials() {
    let (m, c) = image();
    let cd = sha(&c);
    let cdn = {
        let c = c.clone();
        FakeServer::start(move |_, _| Action::with(200, &[], c.clone()))
    };
    let cdn_host = cdn.host();
    let srv = FakeServer::start(move |r, _| {
        if !r.headers.contains_key("authorization") {
            return Action::with(
                401,
                &[("WWW-Authenticate", r#"Basic realm="fake""#)],
                Vec::new(),
            );
        }
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        if r.path.ends_with("/manifests/1") {
            return Action::with(200, &[("Content-Type", OCI_MANIFEST)], m.clone());
        }
        if r.path.ends_with(&cd) {
            let to = format!("http://{cdn_host}/blob?sig=abc");
            return Action::with(307, &[("Location", &to)], Vec::new());
        }
        Action::json(404, "{}")
    });
    let (code, out, err) = scry_inspect(&srv.host(), &["--no-tags", "--creds", "alice:secret"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("amd64"));
    let at_cdn = cdn.requests();
    assert_eq!(at_cdn.len(), 1);
    assert!(
        !at_cdn[0].headers.contains_key("authorization"),
        "credentials leaked to the redirect target"
    );
    // The registry itself did get the credentials once it asked for them.
    let manifest_reqs: Vec<_> = srv
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/manifests/1"))
        .collect();
    assert!(manifest_reqs
        .last()
        .unwrap()
        .headers
        .contains_key("authorization"));
}

/// Tag lists follow `Link` pagination to the end.
#[test]
fn tag_list_follows_link_pagination() {
    let srv = FakeServer::start(|r, _| {
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        match r.query.as_str() {
            "" => Action::with(
                200,
                &[
                    ("Content-Type", "application/json"),
                    ("Link", r#"</v2/app/tags/list?last=b&n=2>; rel="next""#),
                ],
                br#"{"name":"app","tags":["a","b"]}"#.to_vec(),
            ),
            "last=b&n=2" => Action::with(
                200,
                &[
                    ("Content-Type", "application/json"),
                    (
                        "Link",
                        r#"<http://ignored.example/v2/app/tags/list?last=d&n=2>; rel="next""#,
                    ),
                ],
                br#"{"name":"app","tags":["c","d"]}"#.to_vec(),
            ),
            _ => Action::json(200, r#"{"name":"app","tags":["e"]}"#),
        }
    });
    let out = run(scry().args([
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/app", srv.host()),
    ]));
    out.assert_success();
    let v = out.json();
    assert_eq!(v["Tags"], serde_json::json!(["a", "b", "c", "d", "e"]));
    assert_eq!(srv.count("/tags/list"), 3);
}

/// A `Link` header that leads back to a page already read ends the listing with an
/// error, not a loop.
#[test]
fn tag_list_link_loops_are_refused() {
    let srv = FakeServer::start(|r, _| {
        if r.path == "/v2/" {
            return Action::json(200, "{}");
        }
        // Page 1 → page 2 → page 1 → …
        let next = if r.query.is_empty() {
            r#"</v2/app/tags/list?last=b&n=2>; rel="next""#
        } else {
            r#"</v2/app/tags/list>; rel="next""#
        };
        Action::with(
            200,
            &[("Content-Type", "application/json"), ("Link", next)],
            br#"{"name":"app","tags":["a","b"]}"#.to_vec(),
        )
    });
    let out = run(scry().args([
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/app", srv.host()),
    ]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains("leads back"), "{out}");
    assert_eq!(srv.count("/tags/list"), 2);
}

/// A registry that answers a manifest asked for by digest with other bytes: refused,
/// naming both digests.
#[test]
fn manifest_of_another_digest_is_refused() {
    let (m, c) = image();
    // The same JSON with one more space: another digest.
    let mut other = m.clone();
    other.push(b' ');
    let asked = sha(&m);
    let cd = sha(&c);
    let srv = FakeServer::start(move |r, _| {
        if let Some(a) = ping_ok(&r.path) {
            return a;
        }
        if r.path.contains("/manifests/") {
            return Action::with(200, &[("Content-Type", OCI_MANIFEST)], other.clone());
        }
        if r.path.ends_with(&cd) {
            return Action::with(200, &[], c.clone());
        }
        Action::json(
            404,
            r#"{"errors":[{"code":"NAME_UNKNOWN","message":"nope"}]}"#,
        )
    });
    let out = run(scry().args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{}/app@{asked}", srv.host()),
    ]));
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.stderr.contains(&asked), "{out}");
    assert!(out.stderr.to_lowercase().contains("digest"), "{out}");
}
