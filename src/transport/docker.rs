//! `docker://` images: connecting to a registry with the user's options and credentials,
//! and reading manifests, configs and tags of one image.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::auth::{self, Auth, AuthEnv, Credentials};
use crate::error::{Error, Result};
use crate::manifest::{self, Manifest, PlatformChoice};
use crate::reference::DockerReference;
use crate::registry::{self, Client, ClientConfig, Credential};

/// Which identity to use, as chosen by flags.
#[derive(Clone, Debug, Default)]
pub enum CredentialChoice {
    /// Look the registry up in the auth files (optionally a given `--authfile`).
    #[default]
    Lookup,
    /// `--creds` / `--username` + `--password`.
    Given(Credentials),
    /// `--no-creds`.
    Anonymous,
    /// `--registry-token`.
    Token(String),
}

/// Options for reaching a registry, as the CLI collects them.
#[derive(Clone, Debug)]
pub struct DockerOptions {
    /// `None` means the default: verify.
    pub tls_verify: Option<bool>,
    pub cert_dir: Option<PathBuf>,
    pub authfile: Option<PathBuf>,
    pub credentials: CredentialChoice,
    pub retry_times: u32,
    pub retry_delay: Option<Duration>,
    pub user_agent_prefix: Option<String>,
    pub timeout: Duration,
}

impl Default for DockerOptions {
    fn default() -> Self {
        DockerOptions {
            tls_verify: None,
            cert_dir: None,
            authfile: None,
            credentials: CredentialChoice::Lookup,
            retry_times: 0,
            retry_delay: None,
            user_agent_prefix: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// Resolves credentials and builds a client for `reference`'s registry.
pub fn connect(reference: &DockerReference, opts: &DockerOptions) -> Result<Client> {
    let credential = match &opts.credentials {
        CredentialChoice::Anonymous => Credential::Anonymous,
        CredentialChoice::Token(t) => Credential::BearerToken(t.clone()),
        CredentialChoice::Given(c) => Credential::Basic {
            username: c.username.clone(),
            password: c.password.clone(),
        },
        CredentialChoice::Lookup => {
            let key = format!("{}/{}", reference.registry(), reference.repository());
            match auth::lookup(&AuthEnv::from_process(), opts.authfile.as_deref(), &key)? {
                Auth::Anonymous => Credential::Anonymous,
                Auth::Basic(c) => Credential::Basic {
                    username: c.username,
                    password: c.password,
                },
                Auth::IdentityToken { username, token } => {
                    Credential::IdentityToken { username, token }
                }
            }
        }
    };
    let mut config = ClientConfig {
        tls_verify: opts.tls_verify.unwrap_or(true),
        cert_dir: opts.cert_dir.clone(),
        credential,
        retry_times: opts.retry_times,
        retry_delay: opts.retry_delay,
        timeout: opts.timeout,
        ..ClientConfig::default()
    };
    if let Some(p) = &opts.user_agent_prefix {
        config.user_agent = format!("{p} {}", config.user_agent);
    }
    Client::new(reference.registry(), reference.api_host(), config)
}

/// One image in a registry, read through a client.
pub struct DockerImage {
    pub client: Client,
    pub reference: DockerReference,
}

/// A manifest with its digest and media type.
#[derive(Clone, Debug)]
pub struct RawManifest {
    pub bytes: Bytes,
    pub media_type: String,
    pub digest: String,
}

impl RawManifest {
    pub fn parse(&self) -> Result<Manifest> {
        Manifest::parse(&self.bytes, &self.media_type)
    }
}

impl DockerImage {
    pub fn new(reference: DockerReference, opts: &DockerOptions) -> Result<DockerImage> {
        let reference = reference.with_default_tag();
        let client = connect(&reference, opts)?;
        Ok(DockerImage { client, reference })
    }

    fn what(&self) -> String {
        format!("docker://{}", self.reference)
    }

    /// The manifest the reference names (`instance` = None), or a child of it by digest.
    /// A manifest fetched by digest is checked against that digest.
    pub async fn manifest(&self, instance: Option<&str>) -> Result<RawManifest> {
        let wanted = instance
            .map(str::to_string)
            .or_else(|| self.reference.digest().map(str::to_string));
        let r = match instance {
            Some(d) => d.to_string(),
            None => self.reference.manifest_reference(),
        };
        let fetched = self
            .client
            .get_manifest(self.reference.repository(), &r, manifest::MANIFEST_ACCEPT)
            .await?;
        let media_type =
            manifest::normalize_media_type(fetched.content_type.as_deref(), &fetched.bytes);
        let digest = manifest::manifest_digest(&fetched.bytes)?;
        if let Some(w) = wanted {
            if w != digest {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {w} of {}", self.what()),
                    expected: w,
                    actual: digest,
                });
            }
        }
        Ok(RawManifest {
            bytes: fetched.bytes,
            media_type,
            digest,
        })
    }

    /// For an index, the child manifest matching `platform`; otherwise `top` itself.
    pub async fn resolve_platform(
        &self,
        top: &RawManifest,
        platform: &PlatformChoice,
    ) -> Result<RawManifest> {
        let parsed = top.parse()?;
        if !parsed.is_index() {
            return Ok(top.clone());
        }
        let digest = manifest::choose_instance(&parsed, platform)?;
        self.manifest(Some(&digest)).await
    }

    /// The config blob of a (non-index) manifest, verified against its digest.
    pub async fn config(&self, m: &Manifest) -> Result<Option<Bytes>> {
        let Some(cfg) = m.config() else {
            return Ok(None);
        };
        let bytes = self
            .client
            .get_blob_bytes(
                self.reference.repository(),
                &cfg.digest,
                registry::MAX_CONFIG_BYTES,
            )
            .await?;
        let actual = manifest::sha256_digest(&bytes);
        if actual != cfg.digest {
            return Err(Error::DigestMismatch {
                what: format!("config {} of {}", cfg.digest, self.what()),
                expected: cfg.digest.clone(),
                actual,
            });
        }
        Ok(Some(bytes))
    }

    pub async fn tags(&self) -> Result<Vec<String>> {
        self.client.list_tags(self.reference.repository()).await
    }
}
