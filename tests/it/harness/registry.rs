//! A real CNCF distribution registry (Debian's `/usr/bin/docker-registry`) for one
//! test: 127.0.0.1 on an ephemeral port, temp storage with deletes enabled, logs
//! (level warn plus the access log) in a file, killed and waited on drop.
//!
//! Variants (see [`RegistryBuilder`]): plain HTTP or TLS (a CA-signed server
//! certificate, or a self-signed `CA:TRUE` certificate used directly); no auth,
//! htpasswd (bcrypt via `htpasswd -Bbn`), or token auth backed by [`TokenServer`].
//!
//! Startup picks a free port by binding `:0` and releasing it, then waits until
//! `GET /v2/` answers *with this instance's id header* (so a port stolen by another
//! registry is never mistaken for ours); a lost bind race is retried on a new port.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::command::{scratch_root, spawn_owned};
use super::push::Client;
use super::tls;
use super::token::{TokenConfig, TokenServer};

const BINARY: &str = "/usr/bin/docker-registry";
const ID_HEADER: &str = "X-Scry-Test-Registry";
/// `service` name in token mode (the token `aud`).
pub const TOKEN_SERVICE: &str = "scry-test-registry";
/// `issuer` in token mode (the token `iss`).
pub const TOKEN_ISSUER: &str = "scry-test-token-issuer";
pub const DEFAULT_USER: &str = "scryuser";
pub const DEFAULT_PASSWORD: &str = "scry-secret-Pa55";

/// Transport security of a test registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    /// Plain HTTP.
    None,
    /// HTTPS; server certificate signed by a CA generated for this registry.
    CaSigned,
    /// HTTPS; a self-signed `CA:TRUE` certificate serves as the server certificate.
    SelfSigned,
}

/// Authentication mode of a test registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    None,
    /// `auth: htpasswd` with one bcrypt user.
    Htpasswd,
    /// `auth: token` with a harness token server as realm.
    Token,
}

/// Configures and starts a [`Registry`].
#[derive(Clone, Debug)]
pub struct RegistryBuilder {
    tls: Tls,
    auth: Auth,
    username: String,
    password: String,
    anonymous_pull: bool,
    token_expires_in: u64,
    client_certs: bool,
}

impl Default for RegistryBuilder {
    fn default() -> Self {
        RegistryBuilder {
            tls: Tls::None,
            auth: Auth::None,
            username: DEFAULT_USER.into(),
            password: DEFAULT_PASSWORD.into(),
            anonymous_pull: false,
            token_expires_in: 300,
            client_certs: false,
        }
    }
}

impl RegistryBuilder {
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    /// Shorthand for `.auth(Auth::Htpasswd)`.
    pub fn htpasswd(self) -> Self {
        self.auth(Auth::Htpasswd)
    }

    /// Shorthand for `.auth(Auth::Token)`.
    pub fn token(self) -> Self {
        self.auth(Auth::Token)
    }

    /// The one user of htpasswd / token modes.
    pub fn credentials(mut self, user: &str, password: &str) -> Self {
        self.username = user.into();
        self.password = password.into();
        self
    }

    /// Token mode: clients without credentials get pull-only tokens (default: refused).
    pub fn anonymous_pull(mut self, allow: bool) -> Self {
        self.anonymous_pull = allow;
        self
    }

    /// Token mode: lifetime of issued tokens in seconds (default 300).
    pub fn token_expires_in(mut self, secs: u64) -> Self {
        self.token_expires_in = secs;
        self
    }

    /// TLS only: the registry requires a client certificate signed by its client CA
    /// (`http.tls.clientcas`); see [`Registry::client_cert`].
    pub fn require_client_certs(mut self) -> Self {
        self.client_certs = true;
        self
    }

    pub fn start(self) -> Registry {
        Registry::start(self)
    }
}

/// A running registry; see the module docs.
pub struct Registry {
    dir: tempfile::TempDir,
    port: u16,
    id: String,
    cfg: RegistryBuilder,
    child: Mutex<Option<Child>>,
    token: Option<TokenServer>,
    trust_pem: Option<Vec<u8>>,
    client_ca: Option<tls::KeyPair>,
}

impl Registry {
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// Plain HTTP, no auth.
    pub fn plain() -> Registry {
        Registry::builder().start()
    }

    fn start(cfg: RegistryBuilder) -> Registry {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let id = format!(
            "{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::Builder::new()
            .prefix("registry-")
            .tempdir_in(scratch_root())
            .expect("create registry dir");
        let d = dir.path();
        fs::create_dir_all(d.join("storage")).unwrap();

        // TLS material.
        let server_tls = match cfg.tls {
            Tls::None => None,
            Tls::CaSigned => Some(tls::ca_signed(&format!("registry {id}"))),
            Tls::SelfSigned => Some(tls::self_signed_ca_server()),
        };
        let mut trust_pem = None;
        if let Some(t) = &server_tls {
            t.server
                .write_pem(&d.join("server.crt"), &d.join("server.key"));
            let pem = t.trust_anchor.to_pem().unwrap();
            fs::create_dir_all(d.join("certs")).unwrap();
            fs::write(d.join("certs/ca.crt"), &pem).unwrap();
            fs::write(d.join("ca.crt"), &pem).unwrap();
            trust_pem = Some(pem);
        }

        let client_ca = cfg.client_certs.then(|| {
            assert!(server_tls.is_some(), "client certificates need TLS");
            let ca = tls::client_ca();
            fs::write(d.join("clientca.crt"), ca.cert_pem()).unwrap();
            ca
        });

        // Auth.
        let mut token = None;
        let auth_yaml = match cfg.auth {
            Auth::None => String::new(),
            Auth::Htpasswd => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", &cfg.username, &cfg.password])
                    .output()
                    .expect("run htpasswd (apache2-utils)");
                assert!(out.status.success(), "htpasswd failed: {out:?}");
                fs::write(d.join("htpasswd"), &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: scry-test-realm\n    path: {}\n",
                    d.join("htpasswd").display()
                )
            }
            Auth::Token => {
                let signer = tls::token_signer();
                fs::write(d.join("token-roots.pem"), signer.cert_pem()).unwrap();
                let server = TokenServer::start(TokenConfig {
                    service: TOKEN_SERVICE.into(),
                    issuer: TOKEN_ISSUER.into(),
                    credentials: Some((cfg.username.clone(), cfg.password.clone())),
                    anonymous_pull: cfg.anonymous_pull,
                    expires_in: cfg.token_expires_in,
                    signer,
                });
                let yaml = format!(
                    "auth:\n  token:\n    realm: {}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                    server.realm(),
                    d.join("token-roots.pem").display()
                );
                token = Some(server);
                yaml
            }
        };

        let mut reg = Registry {
            dir,
            port: 0,
            id,
            cfg,
            child: Mutex::new(None),
            token,
            trust_pem,
            client_ca,
        };
        let mut last_log = String::new();
        for _attempt in 0..8 {
            let port = free_port();
            reg.port = port;
            reg.write_config(port, &auth_yaml);
            let child = reg.spawn();
            *reg.child.lock().unwrap() = Some(child);
            match reg.wait_ready() {
                Ok(()) => return reg,
                Err(log) => {
                    reg.stop();
                    if log.contains("address already in use") {
                        last_log = log;
                        continue;
                    }
                    panic!("registry failed to start:\n{log}");
                }
            }
        }
        panic!("registry could not find a free port:\n{last_log}");
    }

    fn write_config(&self, port: u16, auth_yaml: &str) {
        let d = self.dir.path();
        let tls = if self.cfg.tls == Tls::None {
            String::new()
        } else {
            let mut t = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                d.join("server.crt").display(),
                d.join("server.key").display()
            );
            if self.client_ca.is_some() {
                t += &format!(
                    "    clientcas:\n      - {}\n",
                    d.join("clientca.crt").display()
                );
            }
            t
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  formatter: text\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: scry-test-secret-{id}\n  headers:\n    {ID_HEADER}: [\"{id}\"]\n{tls}\
             {auth_yaml}",
            storage = d.join("storage").display(),
            id = self.id,
        );
        fs::write(d.join("config.yml"), config).unwrap();
    }

    fn spawn(&self) -> Child {
        let d = self.dir.path();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open registry log");
        let mut cmd = Command::new(BINARY);
        cmd.arg("serve")
            .arg(d.join("config.yml"))
            .current_dir(d)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("REGISTRY_") {
                cmd.env_remove(k);
            }
        }
        cmd.env_remove("OTEL_TRACES_EXPORTER");
        spawn_owned(cmd).unwrap_or_else(|e| panic!("cannot start {BINARY}: {e}"))
    }

    /// Polls `GET /v2/` until this instance answers; `Err(log)` if the process exits
    /// or the deadline passes.
    fn wait_ready(&self) -> Result<(), String> {
        let mut b = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(2));
        if let Some(pem) = &self.trust_pem {
            b = b.add_root_certificate(reqwest::Certificate::from_pem(pem).unwrap());
        }
        if self.client_ca.is_some() {
            let me = self.client_cert(tls::rsa_key());
            b = b.identity(
                reqwest::Identity::from_pkcs8_pem(&me.cert_pem(), &me.key_pem()).unwrap(),
            );
        }
        let http = b.build().unwrap();
        let url = format!("{}/v2/", self.base_url());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self
                .child
                .lock()
                .unwrap()
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(format!("exited with {status}\n{}", self.log()));
            }
            if let Ok(resp) = http.get(&url).send() {
                let ours = resp
                    .headers()
                    .get(ID_HEADER)
                    .is_some_and(|v| v.as_bytes() == self.id.as_bytes());
                if ours {
                    return Ok(());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no answer from {url} within 30s\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `127.0.0.1:PORT` — the registry part of image references.
    pub fn url(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Always `127.0.0.1`.
    pub fn host(&self) -> &'static str {
        "127.0.0.1"
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_tls(&self) -> bool {
        self.cfg.tls != Tls::None
    }

    pub fn tls_mode(&self) -> Tls {
        self.cfg.tls
    }

    pub fn auth_mode(&self) -> Auth {
        self.cfg.auth
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/<name_ref>`, e.g. `reference("small:latest")`.
    pub fn reference(&self, name_ref: &str) -> String {
        format!("{}/{name_ref}", self.url())
    }

    /// `docker://127.0.0.1:PORT/<name_ref>`.
    pub fn docker_ref(&self, name_ref: &str) -> String {
        format!("docker://{}", self.reference(name_ref))
    }

    /// PEM file of what clients must trust (CA, or the self-signed server cert).
    /// Panics for plain HTTP registries.
    pub fn ca_cert_path(&self) -> PathBuf {
        assert!(self.is_tls(), "ca_cert_path() on a plain HTTP registry");
        self.dir.path().join("ca.crt")
    }

    /// A directory holding only `ca.crt`, usable as `--cert-dir` (or certs.d/HOST:PORT).
    /// Panics for plain HTTP registries.
    pub fn certs_dir(&self) -> PathBuf {
        assert!(self.is_tls(), "certs_dir() on a plain HTTP registry");
        self.dir.path().join("certs")
    }

    /// PEM bytes of the trust anchor, `None` for plain HTTP.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.trust_pem.as_deref()
    }

    pub fn username(&self) -> &str {
        &self.cfg.username
    }

    pub fn password(&self) -> &str {
        &self.cfg.password
    }

    /// `user:password`, as for `--creds`.
    pub fn creds(&self) -> String {
        format!("{}:{}", self.cfg.username, self.cfg.password)
    }

    /// Whether clients need credentials (htpasswd or token mode).
    pub fn needs_auth(&self) -> bool {
        self.cfg.auth != Auth::None
    }

    /// A client certificate for `key` that this registry accepts (it must have been
    /// built with [`RegistryBuilder::require_client_certs`]).
    pub fn client_cert(&self, key: openssl::pkey::PKey<openssl::pkey::Private>) -> tls::KeyPair {
        let ca = self
            .client_ca
            .as_ref()
            .expect("client_cert() on a registry without client certificates");
        tls::client_cert(ca, key)
    }

    /// The token server (token mode only).
    pub fn token_server(&self) -> Option<&TokenServer> {
        self.token.as_ref()
    }

    /// Flags that let skopeo (and scry) reach this registry as an image source:
    /// `--tls-verify=false` or `--cert-dir DIR`, plus `--creds` when auth is on.
    /// `prefix` is "" for `inspect`, or `src-`/`dest-` for `copy`.
    pub fn client_flags(&self, prefix: &str) -> Vec<String> {
        let mut v = Vec::new();
        if self.is_tls() {
            v.push(format!("--{prefix}cert-dir"));
            v.push(self.certs_dir().display().to_string());
        } else {
            v.push(format!("--{prefix}tls-verify=false"));
        }
        if self.needs_auth() {
            v.push(format!("--{prefix}creds"));
            v.push(self.creds());
        }
        v
    }

    /// A Distribution API client with this registry's credentials and trust.
    pub fn client(&self) -> Client {
        let creds = self
            .needs_auth()
            .then(|| (self.cfg.username.clone(), self.cfg.password.clone()));
        Client::new(&self.base_url(), self.ca_pem(), creds)
    }

    /// A Distribution API client without credentials.
    pub fn anonymous_client(&self) -> Client {
        Client::new(&self.base_url(), self.ca_pem(), None)
    }

    /// Root of the registry's filesystem storage.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    /// Where the registry keeps a blob's bytes (for corrupting them on purpose).
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The registry's log so far (warnings and the access log).
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether the registry process is still running.
    pub fn is_running(&self) -> bool {
        self.child
            .lock()
            .unwrap()
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Kills the registry and waits for it; later requests get "connection refused"
    /// (the port stays unclaimed unless something else takes it).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
