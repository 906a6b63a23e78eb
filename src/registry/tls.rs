//! TLS trust for a registry: `--cert-dir` or the certs.d directories.
//!
//! In a certificate directory, `*.crt` files are extra trusted CAs and each `NAME.cert`
//! with a matching `NAME.key` is a client certificate.

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

/// Builds the HTTP client for `host` (`HOST[:PORT]`).
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
    let dirs: Vec<PathBuf> = match &config.cert_dir {
        Some(d) => vec![d.clone()],
        None => config
            .certs_d_roots
            .iter()
            .map(|r| r.join(host))
            .filter(|d| d.is_dir())
            .collect(),
    };
    for dir in &dirs {
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
                let cert = read(&p)?;
                let key_pem = read(&key)?;
                let id = reqwest::Identity::from_pkcs8_pem(&cert, &key_pem).map_err(|e| {
                    Error::invalid(format!("reading client certificate {}: {e}", p.display()))
                })?;
                identity = Some(id);
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

fn read(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::Io(e).context(format!("reading {}", p.display())))
}
