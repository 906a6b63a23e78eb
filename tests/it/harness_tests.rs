//! Proves the harness against the skopeo oracle: every registry variant serves the
//! fixtures, authentication behaves as configured, fixtures unpack to the rootfs the
//! harness predicts, and the helpers (timeouts, pagination, stop) do what they say.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::harness::fixtures::{self, MANY_TAGS};
use crate::harness::image::{Node, Rootfs, DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX};
use crate::harness::{
    run, run_with_timeout, shared_registry, skopeo, Auth, Fixtures, Registry, Tls,
};

fn skopeo_inspect(reg: &Registry, name_ref: &str, extra: &[&str]) -> crate::harness::CmdOutput {
    run(skopeo()
        .arg("inspect")
        .args(reg.client_flags(""))
        .args(extra)
        .arg(reg.docker_ref(name_ref)))
}

#[test]
fn plain_registry_serves_small_to_skopeo() {
    let (reg, f) = shared_registry();
    let out = skopeo_inspect(reg, "small:latest", &[]);
    let v = out.assert_success().json();
    assert_eq!(v["Digest"], f.small.digest.as_str());
    assert_eq!(v["Architecture"], "amd64");
    assert_eq!(v["Os"], "linux");
    assert_eq!(v["Labels"]["com.example.scry.fixture"], "small");
    let env: Vec<&str> = v["Env"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e.as_str())
        .collect();
    assert!(env.contains(&"SCRY_FIXTURE=small"), "{env:?}");
    let layers: Vec<String> = v["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    assert_eq!(layers, f.small.layer_digests());
    let tags: BTreeSet<&str> = v["RepoTags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    assert_eq!(tags, BTreeSet::from(["1.0", "latest"]));

    let v = skopeo_inspect(reg, "small:1.0", &[])
        .assert_success()
        .json();
    assert_eq!(v["Digest"], f.small.digest.as_str());
}

#[test]
fn raw_manifests_are_byte_identical() {
    let (reg, f) = shared_registry();
    let out = skopeo_inspect(reg, "docker:latest", &["--raw"]);
    out.assert_success();
    assert_eq!(out.stdout_bytes, f.docker.manifest);
    assert_eq!(out.json()["mediaType"], DOCKER_MANIFEST);

    let out = skopeo_inspect(reg, &format!("small@{}", f.small.digest), &["--raw"]);
    assert_eq!(out.assert_success().stdout_bytes, f.small.manifest);
    let out = skopeo_inspect(reg, "small:latest", &["--config", "--raw"]);
    assert_eq!(out.assert_success().stdout_bytes, f.small.config.data);
}

#[test]
fn multiarch_is_an_index_of_three_distinct_images() {
    let (reg, f) = shared_registry();
    let out = skopeo_inspect(reg, "multiarch:latest", &["--raw"]);
    let v = out.assert_success().json();
    assert_eq!(v["mediaType"], OCI_INDEX);
    let manifests = v["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 3);
    let digests: BTreeSet<&str> = manifests
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests.len(), 3, "children must be distinct");
    for c in &f.multiarch.children {
        assert!(digests.contains(c.digest.as_str()), "{} missing", c.digest);
    }
    let arm = manifests
        .iter()
        .find(|m| m["platform"]["architecture"] == "arm")
        .unwrap();
    assert_eq!(arm["platform"]["variant"], "v7");

    // skopeo resolves the index to the requested platform's config.
    let v = skopeo_inspect(
        reg,
        "multiarch:latest",
        &[
            "--override-arch",
            "arm64",
            "--override-variant",
            "v8",
            "--config",
        ],
    )
    .assert_success()
    .json();
    assert_eq!(v["architecture"], "arm64");
    assert_eq!(v["variant"], "v8");
    assert_eq!(
        v["config"]["Labels"]["com.example.scry.platform"],
        "arm64/v8"
    );

    let v = skopeo_inspect(reg, "dockerlist:latest", &["--raw"])
        .assert_success()
        .json();
    assert_eq!(v["mediaType"], DOCKER_LIST);
    assert_eq!(v["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(v["manifests"][0]["mediaType"], DOCKER_MANIFEST);
}

#[test]
fn manytags_lists_every_tag() {
    let (reg, f) = shared_registry();
    let out = run(skopeo()
        .args(["list-tags", "--tls-verify=false"])
        .arg(reg.docker_ref("manytags")));
    let v = out.assert_success().json();
    let tags: BTreeSet<String> = v["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert_eq!(tags.len(), MANY_TAGS);
    assert_eq!(
        tags,
        f.manytags.tags.iter().cloned().collect::<BTreeSet<_>>()
    );

    // The harness client follows `Link` pagination (n=100 → three pages).
    let client_tags = reg.client().tags("manytags");
    assert_eq!(client_tags.len(), MANY_TAGS);
    let catalog: BTreeSet<String> = reg.client().catalog().into_iter().collect();
    for repo in f.repos() {
        assert!(catalog.contains(repo), "{repo} not in catalog {catalog:?}");
    }
}

/// Copies `name_ref` to an OCI layout with skopeo and unpacks it with umoci; the
/// result must be exactly the rootfs the harness predicts.
fn assert_unpacks_to(reg: &Registry, name_ref: &str, expected: &Rootfs) {
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let bundle = tmp.path().join("bundle");
    run(skopeo()
        .arg("copy")
        .args(reg.client_flags("src-"))
        .arg(reg.docker_ref(name_ref))
        .arg(format!("oci:{}:t", layout.display())))
    .assert_success();
    let mut umoci = Command::new("umoci");
    umoci.arg("unpack");
    if unsafe { libc::geteuid() } != 0 {
        umoci.arg("--rootless");
    }
    umoci
        .arg("--image")
        .arg(format!("{}:t", layout.display()))
        .arg(&bundle);
    run(&mut umoci).assert_success();
    let actual = Rootfs::read(&bundle.join("rootfs"));
    assert_eq!(
        actual.paths(),
        expected.paths(),
        "unpacked paths differ from the expected rootfs"
    );
    for (path, node) in &expected.nodes {
        assert_eq!(actual.nodes.get(path), Some(node), "{path}");
    }
}

#[test]
fn multilayer_unpacks_to_predicted_rootfs() {
    let (reg, f) = shared_registry();
    let rootfs = &f.multilayer.rootfs;
    // The prediction itself: overwrite, whiteouts and the symlink took effect.
    assert!(rootfs.get("etc/obsolete").is_none());
    assert!(rootfs.get("etc/removed.d/gone.conf").is_none());
    assert!(matches!(rootfs.get("etc/version"), Some(Node::File { data, .. }) if data == b"3\n"));
    assert_unpacks_to(reg, "multilayer:latest", rootfs);
}

#[test]
fn docker_fixture_unpacks_to_predicted_rootfs() {
    let (reg, f) = shared_registry();
    assert_unpacks_to(reg, "docker:latest", &f.docker.rootfs);
}

#[test]
fn fixtures_are_deterministic() {
    let a = fixtures::build();
    let b = Fixtures::get();
    assert_eq!(a.small.digest, b.small.digest);
    assert_eq!(a.multilayer.manifest, b.multilayer.manifest);
    assert_eq!(a.multiarch.digest, b.multiarch.digest);
    assert_eq!(a.dockerlist.digest, b.dockerlist.digest);
    // Every tar entry carries the fixed mtime and root ownership.
    let mut archive = tar::Archive::new(a.small.layers[0].tar.as_slice());
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().mtime().unwrap(), crate::harness::image::MTIME);
        assert_eq!(e.header().uid().unwrap(), 0);
    }
}

fn tls_registry_works_with_cert_dir(tls: Tls) {
    let reg = Registry::builder().tls(tls).start();
    assert!(reg.base_url().starts_with("https://"));
    let f = Fixtures::get();
    f.small.push(&reg);
    let certs = reg.certs_dir();
    assert!(certs.join("ca.crt").is_file());
    let out = run(skopeo()
        .args(["inspect", "--cert-dir"])
        .arg(&certs)
        .arg(reg.docker_ref("small:latest")));
    assert_eq!(
        out.assert_success().json()["Digest"],
        f.small.digest.as_str()
    );

    // Without the trust anchor, verification must fail.
    let out = run(skopeo().arg("inspect").arg(reg.docker_ref("small:latest")));
    out.assert_failure();
    assert!(
        out.stderr.contains("certificate") || out.stderr.contains("x509"),
        "{out}"
    );
}

#[test]
fn tls_ca_signed_registry_works_with_cert_dir() {
    tls_registry_works_with_cert_dir(Tls::CaSigned);
}

#[test]
fn tls_self_signed_registry_works_with_cert_dir() {
    tls_registry_works_with_cert_dir(Tls::SelfSigned);
}

#[test]
fn htpasswd_registry_checks_credentials() {
    let reg = Registry::builder().htpasswd().start();
    assert_eq!(reg.auth_mode(), Auth::Htpasswd);
    let f = Fixtures::get();
    f.small.push(&reg);
    let anon = reg.anonymous_client().raw(
        reqwest::Method::GET,
        "/v2/small/manifests/latest",
        "repository:small:pull",
    );
    assert_eq!(anon.status(), reqwest::StatusCode::UNAUTHORIZED);

    let ok = skopeo_inspect(&reg, "small:latest", &[]);
    assert_eq!(
        ok.assert_success().json()["Digest"],
        f.small.digest.as_str()
    );

    let wrong = run(skopeo()
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(format!("{}:wrong-password", reg.username()))
        .arg(reg.docker_ref("small:latest")));
    wrong.assert_failure();
    assert!(
        wrong.stderr.to_lowercase().contains("unauthorized") || wrong.stderr.contains("401"),
        "{wrong}"
    );

    let anonymous = run(skopeo()
        .args(["inspect", "--tls-verify=false"])
        .arg(reg.docker_ref("small:latest")));
    anonymous.assert_failure();
}

#[test]
fn token_registry_issues_scoped_tokens() {
    let reg = Registry::builder().token().start();
    let f = Fixtures::get();
    f.small.push(&reg);
    let server = reg.token_server().unwrap();
    assert!(
        server.requests().iter().any(|r| r.granted.iter().any(|g| {
            let actions: BTreeSet<&str> = g
                .strip_prefix("repository:small:")
                .map(|a| a.split(',').collect())
                .unwrap_or_default();
            actions == BTreeSet::from(["pull", "push"])
        })),
        "push went through the token dance: {:?}",
        server.requests()
    );
    server.clear_requests();

    let ok = skopeo_inspect(&reg, "small:latest", &[]);
    assert_eq!(
        ok.assert_success().json()["Digest"],
        f.small.digest.as_str()
    );
    let seen = server.requests();
    assert!(
        seen.iter().any(|r| r.status == 200
            && r.scopes.iter().any(|s| s == "repository:small:pull")
            && r.user.as_deref() == Some(reg.username())
            && r.service.as_deref() == Some(crate::harness::registry::TOKEN_SERVICE)),
        "{seen:?}"
    );

    server.clear_requests();
    let wrong = run(skopeo()
        .args(["inspect", "--tls-verify=false", "--creds"])
        .arg(format!("{}:nope", reg.username()))
        .arg(reg.docker_ref("small:latest")));
    wrong.assert_failure();
    assert!(server
        .requests()
        .iter()
        .any(|r| r.status == 401 && r.presented_credentials));

    // Anonymous pull is refused by default.
    let anonymous = run(skopeo()
        .args(["inspect", "--tls-verify=false"])
        .arg(reg.docker_ref("small:latest")));
    anonymous.assert_failure();
}

#[test]
fn token_registry_with_anonymous_pull() {
    let reg = Registry::builder().token().anonymous_pull(true).start();
    let f = Fixtures::get();
    f.small.push(&reg);
    let server = reg.token_server().unwrap();
    server.clear_requests();
    let out = run(skopeo()
        .args(["inspect", "--tls-verify=false"])
        .arg(reg.docker_ref("small:latest")));
    assert_eq!(
        out.assert_success().json()["Digest"],
        f.small.digest.as_str()
    );
    assert!(server
        .requests()
        .iter()
        .any(|r| r.user.is_none() && r.granted == ["repository:small:pull"]));

    // An anonymous push is refused: the token grants pull only.
    let anon = reg.anonymous_client();
    let resp = anon.raw(
        reqwest::Method::POST,
        "/v2/small/blobs/uploads/",
        "repository:small:pull,push",
    );
    assert_eq!(resp.status(), reqwest::StatusCode::UNAUTHORIZED);
}

#[test]
fn stopped_registry_refuses_connections() {
    let reg = Registry::plain();
    assert!(reg.is_running());
    let url = format!("{}/v2/", reg.base_url());
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    assert!(http.get(&url).send().unwrap().status().is_success());
    reg.stop();
    assert!(!reg.is_running());
    assert!(http.get(&url).send().is_err());
}

#[test]
fn run_with_timeout_kills_hung_commands() {
    let result = std::panic::catch_unwind(|| {
        run_with_timeout(Command::new("sleep").arg("30"), Duration::from_millis(200))
    });
    let msg = result.expect_err("must panic on timeout");
    let msg = msg.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("did not finish"), "{msg}");

    let out = run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]));
    assert_eq!(out.code, Some(3));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
}

#[test]
fn scry_helper_points_at_the_built_binary() {
    let cmd = crate::harness::scry();
    assert!(Path::new(cmd.get_program()).is_file());
    let envs: Vec<_> = cmd
        .get_envs()
        .map(|(k, _)| k.to_string_lossy().into_owned())
        .collect();
    assert!(envs.contains(&"HOME".to_string()));
}
