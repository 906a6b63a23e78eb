//! The mount's real [`Backend`]: registry clients (one per registry, shared connections
//! and tokens), blob bytes through the LRU disk cache with ranged fetches, and copy-to
//! jobs run by the copy engine, reading blobs from the cache when they are there.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use crate::cache::{BlobCache, BlobKey, FetchedRange, RangeFetcher};
use crate::copy::{self, CompressionFormat, CopyOptions, ManifestFormat, MultiArch, Progress};
use crate::error::{Error, ErrorKind, Result};
use crate::fs::{Backend, CopyProgress, CopyRequest, FetchedManifest, LocalBlob};
use crate::manifest::{self, PlatformChoice};
use crate::reference::{DockerReference, ImageName};
use crate::registry::Client;
use crate::transport::docker::{self, DockerOptions, DockerSource};
use crate::transport::{
    self, BlobInfo, BlobStream, DestContext, ImageDestination, ImageSource, RepoLocation,
};

/// Registry access for the mount.
pub struct RegistryBackend {
    opts: DockerOptions,
    cache: Arc<BlobCache>,
    platform: PlatformChoice,
    clients: Mutex<HashMap<String, Client>>,
    /// Registries looked up so far, listed at the mount root.
    used: Mutex<BTreeSet<String>>,
    /// Registries named on the command line (`--registry`), in registries.conf, or with
    /// stored credentials, listed from the start.
    configured: Vec<String>,
    /// The trust policy copy-to sources must satisfy.
    policy: Option<crate::policy::Policy>,
}

impl RegistryBackend {
    /// The parts of a copy-to request: its flags, the source pinned to its digest (the
    /// policy admitting it), and the destination, opened.
    /// `partial`: the request is still being written (see [`JobOptions::parse`]).
    async fn open_copy(
        &self,
        request: &CopyRequest,
        partial: bool,
    ) -> Result<(JobOptions, DockerReference, Box<dyn ImageDestination>)> {
        let src_ref = DockerReference::parse(&format!(
            "{}/{}@{}",
            request.source.registry, request.source.repository, request.source.digest
        ))?;
        let job = JobOptions::parse(&request.options, partial)?;
        if let Some(p) = &self.policy {
            p.check_source(&ImageName::Docker(src_ref.clone()))?;
        }
        let dest_name = ImageName::parse(&request.destination)
            .map_err(|e| e.context(format!("copy-to destination {:?}", request.destination)))?;
        let mut dest_docker = self.opts.clone();
        if let Some(v) = job.dest_tls_verify {
            dest_docker.tls_verify = Some(v);
        }
        let ctx = DestContext {
            docker: dest_docker,
            ..DestContext::default()
        };
        let dest = transport::open_destination(&dest_name, &ctx).await?;
        Ok((job, src_ref, dest))
    }

    pub fn new(
        opts: DockerOptions,
        cache: Arc<BlobCache>,
        platform: PlatformChoice,
        configured: Vec<String>,
    ) -> Self {
        RegistryBackend {
            opts,
            cache,
            platform,
            clients: Mutex::new(HashMap::new()),
            used: Mutex::new(BTreeSet::new()),
            configured,
            policy: None,
        }
    }

    /// Copy-to jobs check their source against `policy` first.
    pub fn with_policy(mut self, policy: Option<crate::policy::Policy>) -> Self {
        self.policy = policy;
        self
    }

    fn client(&self, registry: &str) -> Result<Client> {
        if let Some(c) = self.clients.lock().unwrap().get(registry) {
            return Ok(c.clone());
        }
        let api_host = if registry == crate::reference::DEFAULT_REGISTRY {
            crate::reference::DOCKER_HUB_API_HOST
        } else {
            registry
        };
        let client = docker::connect_with_key(registry, api_host, registry, &self.opts)?;
        Ok(self
            .clients
            .lock()
            .unwrap()
            .entry(registry.to_string())
            .or_insert(client)
            .clone())
    }

    /// Passes `result` on; a registry that answered (with data, "not found" or "not
    /// allowed") joins those listed at the mount root. One that never answered does
    /// not: a typo or a dead host leaves no entry behind.
    fn answered<T>(&self, registry: &str, result: Result<T>) -> Result<T> {
        let reached = match &result {
            Ok(_) => true,
            Err(e) => matches!(
                e.kind(),
                ErrorKind::NotFound | ErrorKind::Unauthorized | ErrorKind::Unsupported
            ),
        };
        if reached {
            self.used.lock().unwrap().insert(registry.to_string());
        }
        result
    }
}

/// Fetches byte ranges of one blob for the cache.
struct Fetcher {
    client: Client,
    repository: String,
}

#[async_trait]
impl RangeFetcher for Fetcher {
    async fn fetch(&self, key: &BlobKey, range: Range<u64>) -> Result<FetchedRange> {
        // A registry that ignores Range sends the whole blob from its start.
        let b = self
            .client
            .open_blob(
                &self.repository,
                &key.digest,
                Some(range.clone()),
                Some(key.size),
            )
            .await?;
        Ok(FetchedRange::new(b.offset, b.body))
    }
}

#[async_trait]
impl Backend for RegistryBackend {
    fn known_registries(&self) -> Vec<String> {
        let mut all: BTreeSet<String> = self.configured.iter().cloned().collect();
        all.extend(self.used.lock().unwrap().iter().cloned());
        all.into_iter().collect()
    }

    async fn catalog(&self, registry: &str) -> Result<Option<Vec<String>>> {
        let answer = self.client(registry)?.catalog().await;
        match self.answered(registry, answer) {
            Ok(repos) => Ok(Some(repos)),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::NotFound | ErrorKind::Unauthorized | ErrorKind::Unsupported
                ) =>
            {
                tracing::debug!("{registry} offers no catalog: {e}");
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    async fn tags(&self, registry: &str, repository: &str) -> Result<Vec<String>> {
        let answer = self.client(registry)?.list_tags(repository).await;
        self.answered(registry, answer)
    }

    async fn manifest(
        &self,
        registry: &str,
        repository: &str,
        reference: &str,
    ) -> Result<FetchedManifest> {
        // A manifest named by digest never changes: the cache's copy (checked against
        // the digest on the way out) serves it, also to a later mount with the
        // registry unreachable.
        if reference.starts_with("sha256:") {
            let (cache, digest) = (self.cache.clone(), reference.to_string());
            match crate::cache::blocking(move || cache.get_small(&digest)).await {
                Ok(Some(bytes)) => {
                    return Ok(FetchedManifest {
                        media_type: manifest::normalize_media_type(None, &bytes),
                        bytes,
                        digest: reference.to_string(),
                    })
                }
                Ok(None) => {}
                Err(e) => tracing::debug!("cache: manifest {reference}: {e}"),
            }
        }
        let answer = self
            .client(registry)?
            .get_manifest(repository, reference, manifest::MANIFEST_ACCEPT)
            .await;
        let fetched = self.answered(registry, answer)?;
        let media_type =
            manifest::normalize_media_type(fetched.content_type.as_deref(), &fetched.bytes);
        let digest = manifest::manifest_digest(&fetched.bytes)?;
        if reference.starts_with("sha256:") && reference != digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {reference} in {registry}/{repository}"),
                expected: reference.to_string(),
                actual: digest,
            });
        }
        // Kept for digest lookups (a signed schema 1 manifest, whose digest is not that
        // of its bytes, is refused by the cache and simply fetched again).
        if fetched.bytes.len() <= crate::cache::MAX_SMALL_BYTES {
            let (cache, d, b) = (self.cache.clone(), digest.clone(), fetched.bytes.clone());
            if let Err(e) = crate::cache::blocking(move || cache.put_small(&d, &b)).await {
                tracing::debug!("cache: keeping manifest {digest}: {e}");
            }
        }
        Ok(FetchedManifest {
            bytes: fetched.bytes,
            media_type,
            digest,
        })
    }

    async fn blob(
        &self,
        registry: &str,
        repository: &str,
        digest: &str,
        size: u64,
        offset: u64,
        len: u32,
    ) -> Result<Bytes> {
        let fetcher: Arc<dyn RangeFetcher> = Arc::new(Fetcher {
            client: self.client(registry)?,
            repository: repository.to_string(),
        });
        let key = BlobKey::new(digest, size);
        let bytes = self.cache.read(&key, offset, len, &fetcher).await?;
        let want = (size.saturating_sub(offset)).min(len as u64) as usize;
        if bytes.len() != want {
            return Err(Error::Network(format!(
                "blob {digest} of {registry}/{repository}: got {} bytes at {offset}, expected {want}",
                bytes.len()
            )));
        }
        Ok(bytes)
    }

    fn blob_failures(&self, digest: &str) -> u64 {
        self.cache.failures(digest)
    }

    async fn check_copy(&self, request: &CopyRequest, open_destination: bool) -> Result<()> {
        // A flag whose value is still to come (on the next line) is not an error yet.
        if !open_destination {
            JobOptions::parse(&request.options, true)?;
            return Ok(());
        }
        let (_, _, dest) = self.open_copy(request, true).await?;
        dest.check_writable().await
        // Dropped uncommitted: whatever opening staged is removed.
    }

    async fn copy(&self, request: CopyRequest, progress: Arc<CopyProgress>) -> Result<()> {
        let (job, src_ref, dest) = self.open_copy(&request, false).await?;
        let inner = DockerSource::with_client(src_ref, self.client(&request.source.registry)?);
        let source = CachedSource {
            inner,
            cache: self.cache.clone(),
        };
        // The total for the status file: the image's blobs as its manifest lists them.
        if let Ok(m) = self
            .manifest(
                &request.source.registry,
                &request.source.repository,
                &request.source.digest,
            )
            .await
        {
            if let Ok(parsed) = manifest::Manifest::parse(&m.bytes, &m.media_type) {
                let total: i64 = parsed
                    .layers()
                    .iter()
                    .chain(parsed.config().iter())
                    .map(|b| b.size.max(0))
                    .sum();
                progress.set_total(total as u64);
            }
        }
        let opts = CopyOptions {
            multi_arch: job.multi_arch,
            platform: self.platform.clone(),
            format: job.format,
            compression: job.compression,
            preserve_digests: job.preserve_digests,
            remove_signatures: job.remove_signatures,
            ..CopyOptions::default()
        };
        let p = progress.clone();
        let report = copy::copy_image(
            &source,
            dest,
            &opts,
            &Progress::counting(move |n| p.add_done(n)),
        )
        .await?;
        progress.set_total(progress.bytes_total().max(progress.bytes_done()));
        tracing::info!(
            "copy-to: {} → {} done ({} blobs copied, {} skipped)",
            request.source,
            request.destination,
            report.blobs_copied,
            report.blobs_skipped
        );
        Ok(())
    }

    async fn keep_blob(&self, digest: &str) -> Option<Box<dyn std::any::Any + Send + Sync>> {
        // Opens what the cache holds of the blob (a shared lock other processes see);
        // fetches nothing.
        let (cache, d) = (self.cache.clone(), digest.to_string());
        match crate::cache::blocking(move || cache.pin(&d)).await {
            Ok(pin) => Some(Box::new(pin)),
            Err(e) => {
                tracing::warn!("cache: keeping blob {digest} while it is open: {e}");
                None
            }
        }
    }

    fn local_blob(&self, digest: &str) -> Option<LocalBlob> {
        let (file, pin) = open_complete(&self.cache, digest)?;
        Some(LocalBlob {
            file,
            keep: Box::new(pin),
        })
    }

    fn has_complete_blob(&self, digest: &str) -> bool {
        self.cache.complete_path(digest).is_some()
    }

    fn stats(&self) -> serde_json::Value {
        serde_json::to_value(self.cache.stats()).unwrap_or(serde_json::Value::Null)
    }
}

/// The flags a copy-to job may carry on the lines after its destination.
#[derive(Debug, Default)]
struct JobOptions {
    multi_arch: MultiArch,
    format: Option<ManifestFormat>,
    compression: Option<CompressionFormat>,
    preserve_digests: bool,
    remove_signatures: bool,
    dest_tls_verify: Option<bool>,
}

impl JobOptions {
    /// The flags of a request; with `partial`, of one still being written: a last flag
    /// whose value has not come yet is left out rather than refused.
    fn parse(words: &[String], partial: bool) -> Result<JobOptions> {
        let mut o = JobOptions::default();
        let mut it = words.iter().peekable();
        while let Some(w) = it.next() {
            let (flag, inline) = match w.split_once('=') {
                Some((f, v)) => (f, Some(v.to_string())),
                None => (w.as_str(), None),
            };
            let last = it.peek().is_none();
            let mut value = |name: &str| -> Result<String> {
                inline
                    .clone()
                    .or_else(|| it.next().cloned())
                    .ok_or_else(|| Error::invalid(format!("copy-to option {name} needs a value")))
            };
            let pending = partial && last && inline.is_none();
            match flag {
                "--multi-arch" | "--format" | "-f" | "--dest-compress-format" if pending => {
                    return Ok(o)
                }
                "--all" | "-a" => o.multi_arch = MultiArch::All,
                "--multi-arch" => o.multi_arch = MultiArch::parse(&value(flag)?)?,
                "--format" | "-f" => o.format = Some(ManifestFormat::parse(&value(flag)?)?),
                "--dest-compress-format" => o.compression = Some(CompressionFormat::parse(&value(flag)?)?),
                "--preserve-digests" => o.preserve_digests = true,
                "--remove-signatures" => o.remove_signatures = true,
                "--dest-tls-verify" => {
                    o.dest_tls_verify = Some(match inline.as_deref() {
                        None => true,
                        Some(v) => crate::goparse::parse_go_bool(v).map_err(Error::invalid)?,
                    })
                }
                other => {
                    return Err(Error::invalid(format!(
                        "copy-to option {other:?} is not supported (use --all, --multi-arch, --format, --dest-compress-format, --preserve-digests, --remove-signatures, --dest-tls-verify)"
                    )))
                }
            }
        }
        Ok(o)
    }
}

/// A registry source whose blobs come from the cache when it has them whole.
struct CachedSource {
    inner: DockerSource,
    cache: Arc<BlobCache>,
}

#[async_trait]
impl ImageSource for CachedSource {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn manifest(&self, instance: Option<&str>) -> Result<(Bytes, String)> {
        self.inner.manifest(instance).await
    }

    async fn blob(&self, info: &BlobInfo) -> Result<(BlobStream, Option<u64>)> {
        if let Some((file, pin)) = open_complete(&self.cache, &info.digest) {
            let len = file.metadata().ok().map(|m| m.len());
            let file = tokio::fs::File::from_std(file);
            return Ok((Box::pin(Pinned { file, _pin: pin }), len));
        }
        self.inner.blob(info).await
    }

    fn registry_location(&self) -> Option<RepoLocation> {
        self.inner.registry_location()
    }
}

/// Blob `digest`'s file when it is complete in the cache, opened, with the pin that
/// keeps it there (taken before the open: the file cannot be evicted in between).
fn open_complete(
    cache: &BlobCache,
    digest: &str,
) -> Option<(std::fs::File, crate::cache::PinGuard)> {
    cache.complete_path(digest)?;
    let pin = cache.pin(digest).ok()?;
    let file = std::fs::File::open(cache.complete_path(digest)?).ok()?;
    Some((file, pin))
}

/// A cached blob file, kept from eviction while it is read.
struct Pinned {
    file: tokio::fs::File,
    _pin: crate::cache::PinGuard,
}

impl tokio::io::AsyncRead for Pinned {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.file).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn job_options() {
        let o =
            JobOptions::parse(&words("--format oci --all --dest-tls-verify=false"), false).unwrap();
        assert_eq!(o.format, Some(ManifestFormat::Oci));
        assert_eq!(o.multi_arch, MultiArch::All);
        assert_eq!(o.dest_tls_verify, Some(false));
        assert!(JobOptions::parse(&words("--format"), false).is_err());
        assert!(JobOptions::parse(&words("--sign-by x"), false).is_err());
        // Still being written: the value of a last flag may come on the next line.
        let o = JobOptions::parse(&words("--all --format"), true).unwrap();
        assert_eq!((o.multi_arch, o.format), (MultiArch::All, None));
        assert!(JobOptions::parse(&words("--format nope"), true).is_err());
        assert!(JobOptions::parse(&words("--sign-by"), true).is_err());
    }
}
