//! A registry that requires client certificates (`http.tls.clientcas`): scry presents
//! `NAME.cert` + `NAME.key` from `--cert-dir` or certs.d with the key in PKCS#8, PKCS#1
//! RSA or SEC1 EC PEM (as skopeo does), and fails clearly without one.

use std::path::Path;

use crate::harness::tls::{ec_key, rsa_key, write_private, KeyPair};
use crate::harness::{run, scry, skopeo, Fixtures, Home, Registry, Tls};

/// The key of `pair` in one PEM form, and the header that form starts with.
fn key_pem(pair: &KeyPair, form: &str) -> (Vec<u8>, &'static str) {
    match form {
        "pkcs8" => (
            pair.key.private_key_to_pem_pkcs8().unwrap(),
            "BEGIN PRIVATE KEY",
        ),
        "pkcs1" => (
            pair.key.rsa().unwrap().private_key_to_pem().unwrap(),
            "BEGIN RSA PRIVATE KEY",
        ),
        "sec1" => (
            pair.key.ec_key().unwrap().private_key_to_pem().unwrap(),
            "BEGIN EC PRIVATE KEY",
        ),
        other => panic!("unknown key form {other}"),
    }
}

/// Writes `ca.crt` (the registry's CA) and, with a client pair, `client.cert` and
/// `client.key` in `form` to `dir`.
fn fill_cert_dir(dir: &Path, reg: &Registry, client: Option<(&KeyPair, &str)>) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::copy(reg.ca_cert_path(), dir.join("ca.crt")).unwrap();
    if let Some((pair, form)) = client {
        let (pem, header) = key_pem(pair, form);
        assert!(String::from_utf8_lossy(&pem).contains(header), "{form}");
        std::fs::write(dir.join("client.cert"), pair.cert_pem()).unwrap();
        write_private(&dir.join("client.key"), &pem);
    }
}

fn mtls_registry() -> Registry {
    let reg = Registry::builder()
        .tls(Tls::CaSigned)
        .require_client_certs()
        .start();
    // Seed it with skopeo (the oracle), presenting a PKCS#8 client certificate.
    let scratch = tempfile::tempdir_in(crate::harness::command::scratch_root()).unwrap();
    let seed = scratch.path().join("seed");
    fill_cert_dir(&seed, &reg, Some((&reg.client_cert(rsa_key()), "pkcs8")));
    let (shared, _) = crate::harness::shared_registry();
    run(skopeo().args([
        "--insecure-policy",
        "copy",
        "--src-tls-verify=false",
        &shared.docker_ref("small:latest"),
        "--dest-cert-dir",
        &seed.display().to_string(),
        &reg.docker_ref("small:latest"),
    ]))
    .assert_success();
    reg
}

#[test]
fn client_certificate_keys_in_every_pem_form() {
    let reg = mtls_registry();
    let fx = Fixtures::get();
    let image = reg.docker_ref("small:latest");
    let scratch = tempfile::tempdir_in(crate::harness::command::scratch_root()).unwrap();
    for (form, key) in [
        ("pkcs8", rsa_key()),
        ("pkcs1", rsa_key()),
        ("sec1", ec_key()),
    ] {
        let pair = reg.client_cert(key);
        let dir = scratch.path().join(form);
        fill_cert_dir(&dir, &reg, Some((&pair, form)));
        let d = dir.display().to_string();
        let k = run(skopeo().args(["inspect", "--raw", "--cert-dir", &d, &image]));
        k.assert_success();
        let s = run(scry().args(["inspect", "--raw", "--cert-dir", &d, &image]));
        s.assert_success();
        assert_eq!(s.stdout_bytes, fx.small.image.manifest, "{form}");
        assert_eq!(s.stdout_bytes, k.stdout_bytes, "{form}");
    }

    // The same through certs.d in the user's config, without --cert-dir.
    let home = Home::new();
    let pair = reg.client_cert(ec_key());
    fill_cert_dir(
        &home
            .path()
            .join(".config/containers/certs.d")
            .join(reg.url()),
        &reg,
        Some((&pair, "sec1")),
    );
    let mut cmd = scry();
    home.apply(&mut cmd);
    run(cmd.args(["inspect", "--raw", &image])).assert_success();
}

#[test]
fn no_client_certificate_fails_clearly() {
    let reg = mtls_registry();
    let image = reg.docker_ref("small:latest");
    let scratch = tempfile::tempdir_in(crate::harness::command::scratch_root()).unwrap();
    let dir = scratch.path().join("ca-only");
    fill_cert_dir(&dir, &reg, None);
    let d = dir.display().to_string();
    let k = run(skopeo().args(["inspect", "--raw", "--cert-dir", &d, &image]));
    assert_eq!(k.code, Some(1), "{k}");
    let s = run(scry().args(["inspect", "--raw", "--cert-dir", &d, &image]));
    assert_eq!(s.code, Some(1), "{s}");
    assert!(s.stdout.is_empty(), "{s}");
    assert!(
        s.stderr.contains(&reg.url()),
        "the message names the registry: {s}"
    );
    let e = s.stderr.to_lowercase();
    assert!(
        e.contains("certificate") || e.contains("handshake") || e.contains("tls"),
        "the message must point at TLS: {s}"
    );

    // A key that is not a key: the message names the file.
    std::fs::write(
        dir.join("client.cert"),
        reg.client_cert(rsa_key()).cert_pem(),
    )
    .unwrap();
    std::fs::write(
        dir.join("client.key"),
        b"-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let s = run(scry().args(["inspect", "--raw", "--cert-dir", &d, &image]));
    assert_eq!(s.code, Some(1), "{s}");
    assert!(s.stderr.contains("client.key"), "{s}");
}
