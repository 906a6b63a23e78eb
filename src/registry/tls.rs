//! TLS trust for a registry: `--cert-dir` or the certs.d directories.
//!
//! In a certificate directory, `*.crt` files are extra trusted CAs and each `NAME.cert`
//! with a matching `NAME.key` is a client certificate. The key may be PKCS#8
//! (`BEGIN PRIVATE KEY`), PKCS#1 RSA (`BEGIN RSA PRIVATE KEY`) or SEC1 EC
//! (`BEGIN EC PRIVATE KEY`), as containers/image accepts; it is re-encoded as PKCS#8,
//! the only form the TLS backend takes.
//!
//! Without `--cert-dir`, the directory is `ROOT/HOST[:PORT]` under the FIRST root where
//! it exists (`~/.config/containers/certs.d`, `/etc/containers/certs.d`,
//! `/etc/docker/certs.d`), as containers/image does; HOST is the registry as the image
//! reference names it (`docker.io` for Docker Hub).

use std::path::{Path, PathBuf};

use super::ClientConfig;
use crate::error::{Error, Result};

/// certs.d roots in the order they are searched.
pub fn default_certs_d_roots() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(PathBuf::from(home).join(".config/containers/certs.d"));
    }
    roots.push(PathBuf::from("/etc/containers/certs.d"));
    roots.push(PathBuf::from("/etc/docker/certs.d"));
    roots
}

/// The certs.d directory for `host`: `ROOT/HOST` under the first root that has it.
pub fn certs_d_dir(host: &str, roots: &[PathBuf]) -> Option<PathBuf> {
    roots.iter().map(|r| r.join(host)).find(|d| d.is_dir())
}

/// Builds the HTTP client for `host` (`HOST[:PORT]` as the image reference names the
/// registry; it picks the certs.d directory).
pub fn build_http_client(host: &str, config: &ClientConfig) -> Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .user_agent(config.user_agent.clone())
        .connect_timeout(config.timeout)
        .read_timeout(config.timeout)
        .tcp_nodelay(true)
        .pool_idle_timeout(std::time::Duration::from_secs(60));
    if !config.tls_verify {
        b = b.danger_accept_invalid_certs(true);
    }
    let dir = match &config.cert_dir {
        Some(d) => Some(d.clone()),
        None => certs_d_dir(host, &config.certs_d_roots),
    };
    if let Some(dir) = &dir {
        let (cas, identity) = load_dir(dir)?;
        for ca in cas {
            b = b.add_root_certificate(ca);
        }
        if let Some(id) = identity {
            b = b.identity(id);
        }
    }
    b.build()
        .map_err(|e| Error::other(format!("setting up the HTTP client for {host}: {e}")))
}

fn load_dir(dir: &Path) -> Result<(Vec<reqwest::Certificate>, Option<reqwest::Identity>)> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => {
            return Err(
                Error::Io(e).context(format!("reading certificate directory {}", dir.display()))
            )
        }
    };
    let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    let mut cas = Vec::new();
    let mut identity = None;
    for p in names {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "crt" => {
                let pem = read(&p)?;
                let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                    Error::invalid(format!("reading CA certificate {}: {e}", p.display()))
                })?;
                cas.extend(certs);
            }
            "cert" => {
                let key = p.with_extension("key");
                if !key.exists() {
                    return Err(Error::invalid(format!(
                        "client certificate {} has no matching key {}",
                        p.display(),
                        key.display()
                    )));
                }
                identity = Some(client_identity(&p, &key)?);
            }
            "key" if !p.with_extension("cert").exists() => {
                return Err(Error::invalid(format!(
                    "client key {} has no matching certificate {}",
                    p.display(),
                    p.with_extension("cert").display()
                )));
            }
            _ => {}
        }
    }
    Ok((cas, identity))
}

/// The client certificate `cert` with its private key `key` (PKCS#8, PKCS#1 RSA or
/// SEC1 EC PEM).
fn client_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity> {
    let cert_pem = read(cert)?;
    openssl::x509::X509::stack_from_pem(&cert_pem)
        .ok()
        .filter(|certs| !certs.is_empty())
        .ok_or_else(|| {
            Error::invalid(format!(
                "reading client certificate {}: not a PEM certificate",
                cert.display()
            ))
        })?;
    let key_pem = read(key)?;
    let pkcs8 = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .and_then(|k| k.private_key_to_pem_pkcs8())
        .map_err(|e| {
            Error::invalid(format!(
                "reading client key {}: not a PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC): {e}",
                key.display()
            ))
        })?;
    reqwest::Identity::from_pkcs8_pem(&cert_pem, &pkcs8).map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|s| s.to_string())
            .unwrap_or_else(|| e.to_string());
        Error::invalid(format!(
            "reading client certificate {} with key {}: {cause}",
            cert.display(),
            key.display()
        ))
    })
}

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::Io(e).context(format!("reading {}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::{PKey, Private};
    use openssl::rsa::Rsa;

    fn self_signed(key: &PKey<Private>) -> Vec<u8> {
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "client").unwrap();
        let name = name.build();
        let mut b = openssl::x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
        b.build().to_pem().unwrap()
    }

    #[test]
    fn client_keys_load_in_every_pem_form() {
        let dir = tempfile::tempdir().unwrap();
        let rsa = Rsa::generate(2048).unwrap();
        let ec =
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
        let rsa_key = PKey::from_rsa(rsa.clone()).unwrap();
        let ec_key = PKey::from_ec_key(ec.clone()).unwrap();
        let cases = [
            (
                "pkcs8",
                &rsa_key,
                rsa_key.private_key_to_pem_pkcs8().unwrap(),
                "BEGIN PRIVATE KEY",
            ),
            (
                "pkcs1",
                &rsa_key,
                rsa.private_key_to_pem().unwrap(),
                "BEGIN RSA PRIVATE KEY",
            ),
            (
                "sec1",
                &ec_key,
                ec.private_key_to_pem().unwrap(),
                "BEGIN EC PRIVATE KEY",
            ),
        ];
        for (name, key, pem, header) in cases {
            assert!(String::from_utf8_lossy(&pem).contains(header), "{name}");
            let d = dir.path().join(name);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join("client.cert"), self_signed(key)).unwrap();
            std::fs::write(d.join("client.key"), &pem).unwrap();
            let (_, id) = load_dir(&d).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(id.is_some(), "{name}");
        }
        let bad = dir.path().join("bad");
        std::fs::create_dir(&bad).unwrap();
        std::fs::write(bad.join("client.cert"), self_signed(&rsa_key)).unwrap();
        std::fs::write(bad.join("client.key"), b"not a key").unwrap();
        let e = load_dir(&bad).unwrap_err().to_string();
        assert!(
            e.contains("client.key") && e.contains("not a PEM private key"),
            "{e}"
        );
    }

    #[test]
    fn first_existing_certs_d_directory_wins() {
        let dir = tempfile::tempdir().unwrap();
        let roots: Vec<PathBuf> = ["user", "etc-containers", "etc-docker"]
            .iter()
            .map(|r| dir.path().join(r))
            .collect();
        assert_eq!(certs_d_dir("reg:5000", &roots), None);
        std::fs::create_dir_all(roots[2].join("reg:5000")).unwrap();
        assert_eq!(
            certs_d_dir("reg:5000", &roots),
            Some(roots[2].join("reg:5000"))
        );
        std::fs::create_dir_all(roots[1].join("reg:5000")).unwrap();
        assert_eq!(
            certs_d_dir("reg:5000", &roots),
            Some(roots[1].join("reg:5000"))
        );
        // The port is part of the name: reg:5000 is not reg.
        assert_eq!(certs_d_dir("reg", &roots), None);
        std::fs::create_dir_all(roots[0].join("reg:5000")).unwrap();
        assert_eq!(
            certs_d_dir("reg:5000", &roots),
            Some(roots[0].join("reg:5000"))
        );
    }
}
