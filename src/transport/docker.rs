//! `docker://` images: connecting to a registry with the user's options and credentials,
//! and reading manifests, configs and tags of one image.

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::auth::{self, Auth, AuthEnv, Credentials};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, Manifest};
use crate::reference::DockerReference;
use crate::registry::{self, Client, ClientConfig, Credential, UploadStart};
use crate::transport::{
    BlobInfo, BlobStream, ImageDestination, ImageSource, LayerCompression, RepoLocation,
};

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
    /// registries.conf: `insecure` where no TLS choice was given, and `blocked`.
    pub registries: Option<std::sync::Arc<crate::registries_conf::RegistriesConf>>,
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
            registries: None,
        }
    }
}

/// Resolves credentials and builds a client for `reference`'s registry.
pub fn connect(reference: &DockerReference, opts: &DockerOptions) -> Result<Client> {
    let key = format!("{}/{}", reference.registry(), reference.repository());
    connect_with_key(reference.registry(), reference.api_host(), &key, opts)
}

/// A client for `registry` (API at `api_host`), with the credentials stored for `key`
/// (`registry` or `registry/namespace/repo`) unless flags gave others.
pub fn connect_with_key(
    registry: &str,
    api_host: &str,
    key: &str,
    opts: &DockerOptions,
) -> Result<Client> {
    let credential = match &opts.credentials {
        CredentialChoice::Anonymous => Credential::Anonymous,
        CredentialChoice::Token(t) => Credential::BearerToken(t.clone()),
        CredentialChoice::Given(c) => Credential::Basic {
            username: c.username.clone(),
            password: c.password.clone(),
        },
        CredentialChoice::Lookup => {
            match auth::lookup(&AuthEnv::from_process(), opts.authfile.as_deref(), key)? {
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
    let entry = opts.registries.as_ref().and_then(|c| c.find(key));
    if let Some(e) = entry.filter(|e| e.blocked) {
        return Err(Error::invalid(format!(
            "registry {registry} is blocked in {} (prefix {:?})",
            e.file.display(),
            e.prefix
        )));
    }
    // A flag wins over registries.conf; `insecure` there allows HTTP and unverified TLS.
    let conf_insecure = entry.is_some_and(|e| e.insecure);
    let mut config = ClientConfig {
        tls_verify: opts.tls_verify.unwrap_or(!conf_insecure),
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
    Client::new(registry, api_host, config)
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

    pub fn what(&self) -> String {
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
}

/// `docker://` as a copy source.
pub struct DockerSource {
    image: DockerImage,
}

impl DockerSource {
    pub fn new(reference: DockerReference, opts: &DockerOptions) -> Result<DockerSource> {
        Ok(DockerSource {
            image: DockerImage::new(reference, opts)?,
        })
    }

    /// Opens `reference` for reading through registries.conf: its mirrors in order,
    /// then its (possibly remapped) location; the first that has the image is used
    /// (the last one is used unchecked, so that its error is the one reported).
    pub async fn open(reference: DockerReference, opts: &DockerOptions) -> Result<DockerSource> {
        let reference = reference.with_default_tag();
        let name = reference.name();
        let candidates = match &opts.registries {
            Some(conf) => conf.pull_locations(&name, reference.digest().is_some()),
            None => Vec::new(),
        };
        if candidates.len() <= 1 && candidates.first().is_none_or(|(l, _)| *l == name) {
            return DockerSource::new(reference, opts);
        }
        let full = reference.to_string();
        let suffix = &full[name.len()..];
        let last = candidates.len() - 1;
        for (i, (location, insecure)) in candidates.iter().enumerate() {
            let physical = DockerReference::parse(&format!("{location}{suffix}")).map_err(|e| {
                e.context(format!("{name} as registries.conf places it at {location}"))
            })?;
            let mut o = opts.clone();
            if *insecure && o.tls_verify.is_none() {
                o.tls_verify = Some(false);
            }
            let image = DockerImage::new(physical, &o)?;
            if i == last {
                return Ok(DockerSource { image });
            }
            let wanted = image.reference.manifest_reference();
            match image
                .client
                .head_manifest(
                    image.reference.repository(),
                    &wanted,
                    manifest::MANIFEST_ACCEPT,
                )
                .await
            {
                Ok(_) => {
                    tracing::debug!("reading {name} from {}", image.reference);
                    return Ok(DockerSource { image });
                }
                Err(e) => tracing::info!("{}: {e}; trying the next location", image.reference),
            }
        }
        unreachable!("the last candidate is returned above")
    }

    /// The client this source reads through.
    pub fn client(&self) -> &Client {
        &self.image.client
    }

    /// Where this source reads from (after registries.conf remapping).
    pub fn reference(&self) -> &DockerReference {
        &self.image.reference
    }

    /// A source reading through an existing client (sharing its connections and tokens).
    pub fn with_client(reference: DockerReference, client: Client) -> DockerSource {
        DockerSource {
            image: DockerImage {
                client,
                reference: reference.with_default_tag(),
            },
        }
    }
}

#[async_trait]
impl ImageSource for DockerSource {
    fn describe(&self) -> String {
        self.image.what()
    }

    async fn manifest(&self, instance: Option<&str>) -> Result<(Bytes, String)> {
        let m = self.image.manifest(instance).await?;
        Ok((m.bytes, m.media_type))
    }

    async fn blob(&self, info: &BlobInfo) -> Result<(BlobStream, Option<u64>)> {
        let b = self
            .image
            .client
            .open_blob(
                self.image.reference.repository(),
                &info.digest,
                None,
                u64::try_from(info.size).ok(),
            )
            .await?;
        Ok((b.body, b.size))
    }

    fn supports_blob_range(&self) -> bool {
        true
    }

    async fn blob_range(&self, info: &BlobInfo, range: Range<u64>) -> Result<BlobStream> {
        let b = self
            .image
            .client
            .open_blob(
                self.image.reference.repository(),
                &info.digest,
                Some(range.clone()),
                u64::try_from(info.size).ok(),
            )
            .await?;
        if b.partial {
            return Ok(b.body);
        }
        // The registry ignored Range: skip to the start and stop at the end.
        use tokio::io::AsyncReadExt;
        let mut s = b.body;
        let mut skip = (&mut s).take(range.start);
        tokio::io::copy(&mut skip, &mut tokio::io::sink()).await?;
        Ok(Box::pin(s.take(range.end - range.start)))
    }

    fn registry_location(&self) -> Option<RepoLocation> {
        Some(RepoLocation {
            registry: self.image.reference.registry().to_string(),
            repository: self.image.reference.repository().to_string(),
        })
    }
}

/// `docker://` as a copy destination: blobs are uploaded (or mounted, or found present),
/// manifests are PUT by digest for index children and by tag (or digest) for the top.
/// Nothing is tagged until the top manifest is written, which is the last step.
pub struct DockerDestination {
    client: Client,
    reference: DockerReference,
}

/// Size of each PATCH of a chunked upload (blobs whose digest is known only at the end).
const UPLOAD_CHUNK: usize = 16 << 20;

impl DockerDestination {
    pub fn new(reference: DockerReference, opts: &DockerOptions) -> Result<DockerDestination> {
        let reference = reference.with_default_tag();
        let client = connect(&reference, opts)?;
        Ok(DockerDestination { client, reference })
    }

    /// HEAD of the manifest the copy will write (its tag, or its digest when the
    /// reference has no tag), asking for push access at once: a copy that goes on
    /// writes with the same token.
    async fn head_written(&self) -> Result<registry::HeadInfo> {
        let reference = match self.reference.tag() {
            Some(t) => t.to_string(),
            None => self.reference.manifest_reference(),
        };
        self.client
            .head_manifest_as(
                self.repo(),
                &reference,
                manifest::MANIFEST_ACCEPT,
                registry::Access::PushPull,
            )
            .await
    }

    fn repo(&self) -> &str {
        self.reference.repository()
    }
}

#[async_trait]
impl ImageDestination for DockerDestination {
    fn describe(&self) -> String {
        format!("docker://{}", self.reference)
    }

    fn desired_layer_compression(&self) -> LayerCompression {
        LayerCompression::Compress
    }

    fn repository_and_tag(&self) -> Option<(String, String)> {
        Some((
            self.reference.repository().to_string(),
            self.reference.tag().unwrap_or("latest").to_string(),
        ))
    }

    async fn existing_manifest_digest(&self) -> Result<Option<String>> {
        match self.head_written().await {
            Ok(h) => Ok(h.digest),
            // Not there, or not to be known: the copy writes as usual (and reports what
            // really stops it).
            Err(e) => {
                tracing::debug!("{}: no current manifest: {e}", self.describe());
                Ok(None)
            }
        }
    }

    fn named_digest(&self) -> Option<String> {
        self.reference.digest().map(str::to_string)
    }

    async fn check_writable(&self) -> Result<()> {
        match self.head_written().await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.context(format!("checking {}", self.describe()))),
        }
    }

    async fn try_reuse_blob(
        &self,
        info: &BlobInfo,
        from: Option<&RepoLocation>,
    ) -> Result<Option<BlobInfo>> {
        if info.digest.is_empty() {
            return Ok(None);
        }
        if let Some(size) = self.client.blob_exists(self.repo(), &info.digest).await? {
            let mut found = info.clone();
            found.size = size as i64;
            return Ok(Some(found));
        }
        if let Some(from) = from {
            if from.registry == self.reference.registry() && from.repository != self.repo() {
                if let UploadStart::Mounted = self
                    .client
                    .start_upload(self.repo(), Some((&info.digest, &from.repository)))
                    .await?
                {
                    return Ok(Some(info.clone()));
                }
            }
        }
        Ok(None)
    }

    async fn put_blob(&self, stream: BlobStream, info: &BlobInfo) -> Result<BlobInfo> {
        let UploadStart::Location(loc) = self.client.start_upload(self.repo(), None).await? else {
            return Err(Error::other(
                "the registry mounted a blob that was not asked for",
            ));
        };
        let mut stored = info.clone();
        if crate::digest::is_sha256(&info.digest) && info.size >= 0 {
            let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
                stream,
                256 * 1024,
            ));
            self.client
                .upload_monolithic(self.repo(), &loc, &info.digest, info.size as u64, body)
                .await?;
        } else {
            let counted = crate::digest::VerifyingReader::digesting(stream);
            let tally = counted.tally();
            let t2 = tally.clone();
            let digest = self
                .client
                .upload_chunked(self.repo(), &loc, counted, UPLOAD_CHUNK, move || {
                    t2.get()
                        .map(|(d, _)| d)
                        .ok_or_else(|| Error::other("the blob stream ended early"))
                })
                .await?;
            stored.digest = digest;
            stored.size = tally.get().map(|(_, n)| n as i64).unwrap_or(-1);
        }
        Ok(stored)
    }

    async fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        instance: Option<&str>,
    ) -> Result<()> {
        let reference = match instance {
            Some(d) => d.to_string(),
            None => self.reference.manifest_reference(),
        };
        let put = self
            .client
            .put_manifest(
                self.repo(),
                &reference,
                media_type,
                Bytes::copy_from_slice(bytes),
            )
            .await;
        match put {
            Err(e) if crate::manifest::media_types::is_schema1(media_type) => Err(e.context(
                "the registry refused a Docker schema 1 manifest (many registries no longer accept them; use --format v2s2 or oci)",
            )),
            other => other,
        }
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        Ok(())
    }
}
