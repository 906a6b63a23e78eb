//! Registry metadata as the tree needs it, cached: tag lists, catalogs and tag → digest
//! answers for the tag TTL; manifests and configs (addressed by digest) forever.
//! Also resolves an image directory's [`Locator`] to the manifest it shows now.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;

use super::backend::{Backend, FetchedManifest};
use super::clock::Clock;
use super::error::{FsError, FsErrorKind, FsResult};
use super::image::platform_dirs;
use super::memo::Memo;
use super::node::{LocKind, Locator};
use crate::error::{Error, ErrorKind};
use crate::manifest::{
    manifest_digest, normalize_media_type, parse_config, sha256_digest, validate_digest, BlobRef,
    Manifest, MAX_CONFIG_SIZE,
};

/// What a tag-list request said, kept for the tag TTL (misses included, so that
/// probing a name that is not a repository costs one request per TTL).
#[derive(Clone)]
pub(crate) enum TagProbe {
    Tags(Arc<Vec<String>>),
    /// The registry answered "unknown repository" (NotFound) or "denied" (Access).
    Missing(FsError),
}

/// A manifest fetched and parsed.
pub(crate) struct ManifestEntry {
    pub digest: String,
    pub media_type: String,
    pub bytes: Bytes,
    pub manifest: Manifest,
    /// When this process first saw it: the mtime of index directories.
    pub first_seen: SystemTime,
}

/// A config blob fetched whole.
pub(crate) struct ConfigEntry {
    pub bytes: Bytes,
    /// The image's `created`, when present and not Go's zero time.
    pub created: Option<SystemTime>,
}

type RepoKey = (String, String);
type DigestKey = (String, String, String);

pub(crate) struct Meta {
    pub backend: Arc<dyn Backend>,
    pub clock: Arc<dyn Clock>,
    tags: Memo<RepoKey, TagProbe>,
    catalogs: Memo<String, Option<Arc<Vec<String>>>>,
    tag_digests: Memo<DigestKey, String>,
    manifests: Memo<DigestKey, Arc<ManifestEntry>>,
    configs: Memo<DigestKey, Arc<ConfigEntry>>,
}

fn key3(a: &str, b: &str, c: &str) -> DigestKey {
    (a.to_string(), b.to_string(), c.to_string())
}

/// Whether `digest` (already validated) is the digest of `bytes`; only sha256 is
/// checked, other algorithms are trusted to the backend.
fn digest_matches(digest: &str, bytes: &[u8], is_manifest: bool) -> bool {
    if !digest.starts_with("sha256:") {
        return true;
    }
    sha256_digest(bytes) == digest
        || (is_manifest && manifest_digest(bytes).is_ok_and(|d| d == digest))
}

impl Meta {
    pub fn new(backend: Arc<dyn Backend>, clock: Arc<dyn Clock>, tag_ttl: Duration) -> Meta {
        Meta {
            backend,
            clock,
            tags: Memo::new(Some(tag_ttl)),
            catalogs: Memo::new(Some(tag_ttl)),
            tag_digests: Memo::new(Some(tag_ttl)),
            manifests: Memo::new(None),
            configs: Memo::new(None),
        }
    }

    /// The tags of `repo`, or why there are none.
    pub async fn tags(&self, registry: &str, repo: &str) -> FsResult<TagProbe> {
        let key = (registry.to_string(), repo.to_string());
        self.tags
            .get(&key, &*self.clock, || async {
                match self.backend.tags(registry, repo).await {
                    Ok(mut tags) => {
                        // A name the mount cannot show as a directory is left out.
                        let mut seen = std::collections::HashSet::new();
                        tags.retain(|t| super::namespace::valid_tag(t) && seen.insert(t.clone()));
                        Ok(TagProbe::Tags(Arc::new(tags)))
                    }
                    Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::Unauthorized) => {
                        Ok(TagProbe::Missing(
                            e.context(format!("listing tags of {registry}/{repo}"))
                                .into(),
                        ))
                    }
                    Err(e) => Err(e
                        .context(format!("listing tags of {registry}/{repo}"))
                        .into()),
                }
            })
            .await
    }

    /// The tag list of `repo` when one is cached and fresh; never asks the registry.
    pub fn cached_tags(&self, registry: &str, repo: &str) -> Option<TagProbe> {
        self.tags
            .peek(&(registry.to_string(), repo.to_string()), &*self.clock)
    }

    /// The registry's repositories, `None` when it offers no catalog (or refuses it).
    pub async fn catalog(&self, registry: &str) -> FsResult<Option<Arc<Vec<String>>>> {
        self.catalogs
            .get(&registry.to_string(), &*self.clock, || async {
                match self.backend.catalog(registry).await {
                    Ok(list) => Ok(list.map(Arc::new)),
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::NotFound | ErrorKind::Unauthorized | ErrorKind::Unsupported
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(FsError::from(
                        e.context(format!("listing the catalog of {registry}")),
                    )),
                }
            })
            .await
    }

    fn entry(&self, fetched: FetchedManifest, asked: Option<&str>) -> Result<ManifestEntry, Error> {
        let digest = match asked {
            Some(d) => d.to_string(),
            None if fetched.digest.is_empty() => manifest_digest(&fetched.bytes)?,
            None => fetched.digest.clone(),
        };
        validate_digest(&digest)?;
        if !digest_matches(&digest, &fetched.bytes, true) {
            return Err(Error::DigestMismatch {
                what: "manifest".into(),
                expected: digest,
                actual: sha256_digest(&fetched.bytes),
            });
        }
        let header = (!fetched.media_type.is_empty()).then_some(fetched.media_type.as_str());
        let media_type = normalize_media_type(header, &fetched.bytes);
        let manifest = Manifest::parse(&fetched.bytes, &media_type)?;
        Ok(ManifestEntry {
            digest,
            media_type,
            bytes: fetched.bytes,
            manifest,
            first_seen: SystemTime::now(),
        })
    }

    /// What `tag` points at now (asked again after the tag TTL).
    pub async fn resolve_tag(
        &self,
        registry: &str,
        repo: &str,
        tag: &str,
    ) -> FsResult<Arc<ManifestEntry>> {
        let what = || format!("reading {registry}/{repo}:{tag}");
        let digest = self
            .tag_digests
            .get(&key3(registry, repo, tag), &*self.clock, || async {
                let fetched = self
                    .backend
                    .manifest(registry, repo, tag)
                    .await
                    .map_err(|e| FsError::from(e.context(what())))?;
                let entry = self
                    .entry(fetched, None)
                    .map_err(|e| FsError::from(e.context(what())))?;
                let digest = entry.digest.clone();
                self.manifests.offer(
                    &key3(registry, repo, &digest),
                    Arc::new(entry),
                    &*self.clock,
                );
                Ok::<_, FsError>(digest)
            })
            .await?;
        self.manifest(registry, repo, &digest).await
    }

    /// The manifest with `digest` (fetched once).
    pub async fn manifest(
        &self,
        registry: &str,
        repo: &str,
        digest: &str,
    ) -> FsResult<Arc<ManifestEntry>> {
        let what = || format!("reading {registry}/{repo}@{digest}");
        validate_digest(digest).map_err(|e| FsError::io(e.context(what()).to_string()))?;
        self.manifests
            .get(&key3(registry, repo, digest), &*self.clock, || async {
                let fetched = self.backend.manifest(registry, repo, digest).await?;
                Ok(Arc::new(self.entry(fetched, Some(digest))?))
            })
            .await
            .map_err(|e: Error| e.context(what()).into())
    }

    /// The config blob `blob` (fetched whole, once).
    pub async fn config(
        &self,
        registry: &str,
        repo: &str,
        blob: &BlobRef,
    ) -> FsResult<Arc<ConfigEntry>> {
        let what = || format!("reading config {} of {registry}/{repo}", blob.digest);
        validate_digest(&blob.digest).map_err(|e| FsError::io(e.context(what()).to_string()))?;
        let size = u32::try_from(blob.size)
            .ok()
            .filter(|s| (*s as usize) <= MAX_CONFIG_SIZE)
            .ok_or_else(|| FsError::io(format!("{}: size {} is invalid", what(), blob.size)))?;
        self.configs
            .get(
                &key3(registry, repo, &blob.digest),
                &*self.clock,
                || async {
                    let bytes = if size == 0 {
                        Bytes::new()
                    } else {
                        self.backend
                            .blob(registry, repo, &blob.digest, size.into(), 0, size)
                            .await?
                    };
                    if bytes.len() != size as usize || !digest_matches(&blob.digest, &bytes, false)
                    {
                        return Err(Error::DigestMismatch {
                            what: "config".into(),
                            expected: blob.digest.clone(),
                            actual: sha256_digest(&bytes),
                        });
                    }
                    let created = parse_config(&bytes)
                        .ok()
                        .and_then(|c| c.created)
                        .filter(|t| !t.is_zero())
                        .map(|t| SystemTime::from(t.to_datetime()));
                    Ok(Arc::new(ConfigEntry { bytes, created }))
                },
            )
            .await
            .map_err(|e: Error| e.context(what()).into())
    }

    /// The image's `created` time, or when this process first saw the manifest (for
    /// indexes, artifacts and configs without one).
    pub async fn mtime(
        &self,
        registry: &str,
        repo: &str,
        m: &ManifestEntry,
    ) -> FsResult<SystemTime> {
        let created = match &m.manifest {
            Manifest::Oci(_) | Manifest::Docker2(_) => {
                let blob = m.manifest.config().expect("image manifests have a config");
                match self.config(registry, repo, &blob).await {
                    Ok(c) => c.created,
                    Err(e) if e.kind() == FsErrorKind::NotFound => None,
                    Err(e) => return Err(e),
                }
            }
            Manifest::Schema1(_) => m
                .manifest
                .image_config(None)
                .ok()
                .and_then(|c| c.created)
                .filter(|t| !t.is_zero())
                .map(|t| SystemTime::from(t.to_datetime())),
            Manifest::OciIndex(_) | Manifest::DockerList(_) => None,
        };
        Ok(created.unwrap_or(m.first_seen))
    }

    /// The manifest an image directory shows now.
    pub async fn resolve(&self, loc: &Locator) -> FsResult<Arc<ManifestEntry>> {
        match &loc.kind {
            LocKind::Tag(tag) => self.resolve_tag(&loc.registry, &loc.repo, tag).await,
            LocKind::Digest(d) => self.manifest(&loc.registry, &loc.repo, d).await,
            LocKind::Platform { parent, name } => {
                let index = Box::pin(self.resolve(parent)).await?;
                let digest = platform_dirs(&index.manifest)
                    .into_iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, inst)| inst.digest)
                    .ok_or_else(|| {
                        FsError::not_found(format!(
                            "{}/{}@{} has no entry for platform {name}",
                            loc.registry, loc.repo, index.digest
                        ))
                    })?;
                self.manifest(&loc.registry, &loc.repo, &digest).await
            }
        }
    }

    /// Cache sizes for `.scry/stats.json`.
    pub fn stats(&self) -> serde_json::Value {
        serde_json::json!({
            "manifests": self.manifests.len(),
            "configs": self.configs.len(),
            "tag_lists": self.tags.len(),
            "tag_digests": self.tag_digests.len(),
            "catalogs": self.catalogs.len(),
        })
    }
}
