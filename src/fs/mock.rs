//! An in-memory [`Backend`] for tests of the filesystem core and of the mount adapter:
//! registries, repositories, tags, manifests and blobs held in maps, a log of every
//! call, injectable failures, and copies that succeed, fail or wait on request.
//!
//! Copies: a destination starting with `refuse:` fails its check (and its copy), one
//! starting with `fail:` fails its copy only, one starting with `hold:` waits until
//! [`MockBackend::release_copies`]; any other succeeds after reporting the image's
//! manifest size as progress.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use serde_json::json;

use super::backend::{Backend, CopyProgress, CopyRequest, FetchedManifest};
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::media_types::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST};
use crate::manifest::{manifest_digest, sha256_digest, to_go_json_indent};

#[derive(Default)]
struct Repo {
    tags: BTreeMap<String, String>,
    manifests: HashMap<String, (Bytes, String)>,
    blobs: HashMap<String, Bytes>,
}

#[derive(Default)]
struct State {
    known: Vec<String>,
    catalogs: BTreeSet<String>,
    deny_unknown: BTreeSet<String>,
    repos: BTreeMap<(String, String), Repo>,
    failures: HashMap<String, ErrorKind>,
    copies: Vec<CopyRequest>,
    /// How many copy checks opened the destination.
    checks: usize,
    /// Verification failures per blob digest.
    blob_failures: HashMap<String, u64>,
}

/// See the module documentation.
pub struct MockBackend {
    state: Mutex<State>,
    calls: Mutex<Vec<String>>,
    gate: tokio::sync::Semaphore,
}

/// Digests of an image pushed with [`MockBackend::push_image`].
#[derive(Debug, Clone)]
pub struct PushedImage {
    pub digest: String,
    pub manifest: Bytes,
    pub config: String,
    pub config_bytes: Bytes,
    pub layers: Vec<String>,
}

fn error(kind: ErrorKind, what: String) -> Error {
    match kind {
        ErrorKind::NotFound => Error::NotFound(what),
        ErrorKind::Unauthorized => Error::Unauthorized(what),
        ErrorKind::Network => Error::Network(what),
        _ => Error::Other(what),
    }
}

impl Default for MockBackend {
    fn default() -> Self {
        MockBackend {
            state: Mutex::default(),
            calls: Mutex::default(),
            gate: tokio::sync::Semaphore::new(0),
        }
    }
}

impl MockBackend {
    pub fn new() -> Arc<MockBackend> {
        Arc::new(MockBackend::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, call: String) {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
    }

    /// Every call so far, e.g. `tags quay.io a/b`, `blob quay.io a/b sha256:… 0 10`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn clear_calls(&self) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// Copy requests received so far.
    pub fn copies(&self) -> Vec<CopyRequest> {
        self.lock().copies.clone()
    }

    /// How many copy checks opened their destination so far.
    pub fn destination_checks(&self) -> usize {
        self.lock().checks
    }

    pub fn add_known_registry(&self, registry: &str) {
        self.lock().known.push(registry.to_string());
    }

    /// Makes `registry` answer catalog requests.
    pub fn enable_catalog(&self, registry: &str) {
        self.lock().catalogs.insert(registry.to_string());
    }

    /// Makes `registry` answer "unauthorized" for unknown repositories (as Docker Hub).
    pub fn deny_unknown_repos(&self, registry: &str) {
        self.lock().deny_unknown.insert(registry.to_string());
    }

    /// Every call for `registry` fails with `kind` (`None`: stop failing).
    pub fn fail_registry(&self, registry: &str, kind: Option<ErrorKind>) {
        let mut st = self.lock();
        match kind {
            Some(k) => st.failures.insert(registry.to_string(), k),
            None => st.failures.remove(registry),
        };
    }

    /// Lets every `hold:` copy (waiting or future) finish.
    /// Counts a verification failure of blob `digest` (as the cache would).
    pub fn fail_verification(&self, digest: &str) {
        *self
            .lock()
            .blob_failures
            .entry(digest.to_string())
            .or_default() += 1;
    }

    pub fn release_copies(&self) {
        self.gate.add_permits(1 << 20);
    }

    fn repo<'a>(st: &'a mut State, registry: &str, repo: &str) -> &'a mut Repo {
        st.repos
            .entry((registry.to_string(), repo.to_string()))
            .or_default()
    }

    pub fn add_blob(&self, registry: &str, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256_digest(bytes);
        Self::repo(&mut self.lock(), registry, repo)
            .blobs
            .insert(digest.clone(), Bytes::copy_from_slice(bytes));
        digest
    }

    /// Stores a manifest under the digest a registry gives it (for signed schema 1,
    /// that of the JWS payload).
    pub fn add_manifest(
        &self,
        registry: &str,
        repo: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> String {
        let digest = manifest_digest(bytes).unwrap_or_else(|_| sha256_digest(bytes));
        Self::repo(&mut self.lock(), registry, repo)
            .manifests
            .insert(
                digest.clone(),
                (Bytes::copy_from_slice(bytes), media_type.to_string()),
            );
        digest
    }

    pub fn set_tag(&self, registry: &str, repo: &str, tag: &str, digest: &str) {
        Self::repo(&mut self.lock(), registry, repo)
            .tags
            .insert(tag.to_string(), digest.to_string());
    }

    pub fn remove_tag(&self, registry: &str, repo: &str, tag: &str) {
        Self::repo(&mut self.lock(), registry, repo)
            .tags
            .remove(tag);
    }

    /// Stores an OCI image (config `config_json`, gzip-typed layers) and tags it.
    pub fn push_image(
        &self,
        registry: &str,
        repo: &str,
        tag: Option<&str>,
        config_json: &str,
        layers: &[&[u8]],
    ) -> PushedImage {
        let config = self.add_blob(registry, repo, config_json.as_bytes());
        let layer_digests: Vec<String> = layers
            .iter()
            .map(|l| self.add_blob(registry, repo, l))
            .collect();
        let doc = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config, "size": config_json.len()},
            "layers": layers.iter().zip(&layer_digests).map(|(l, d)| json!({
                "mediaType": OCI_LAYER_GZIP, "digest": d, "size": l.len(),
            })).collect::<Vec<_>>(),
        });
        let manifest = Bytes::from(to_go_json_indent(&doc));
        let digest = self.add_manifest(registry, repo, &manifest, OCI_MANIFEST);
        if let Some(t) = tag {
            self.set_tag(registry, repo, t, &digest);
        }
        PushedImage {
            digest,
            manifest,
            config,
            config_bytes: Bytes::copy_from_slice(config_json.as_bytes()),
            layers: layer_digests,
        }
    }

    /// Stores an OCI index of `children` (image, os, architecture, variant) and tags it.
    pub fn push_index(
        &self,
        registry: &str,
        repo: &str,
        tag: Option<&str>,
        children: &[(&PushedImage, &str, &str, &str)],
    ) -> (String, Bytes) {
        let manifests: Vec<_> = children
            .iter()
            .map(|(img, os, arch, variant)| {
                let mut platform = json!({"architecture": arch, "os": os});
                if !variant.is_empty() {
                    platform["variant"] = json!(variant);
                }
                json!({
                    "mediaType": OCI_MANIFEST,
                    "digest": img.digest,
                    "size": img.manifest.len(),
                    "platform": platform,
                })
            })
            .collect();
        let doc = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        let bytes = Bytes::from(to_go_json_indent(&doc));
        let digest = self.add_manifest(registry, repo, &bytes, OCI_INDEX);
        if let Some(t) = tag {
            self.set_tag(registry, repo, t, &digest);
        }
        (digest, bytes)
    }

    fn check(&self, registry: &str, call: String) -> Result<()> {
        self.log(call.clone());
        match self.lock().failures.get(registry) {
            Some(kind) => Err(error(*kind, format!("{call}: injected failure"))),
            None => Ok(()),
        }
    }

    fn unknown_repo(&self, st: &State, registry: &str, repo: &str) -> Error {
        let what = format!("repository {registry}/{repo} not known");
        if st.deny_unknown.contains(registry) {
            Error::Unauthorized(what)
        } else {
            Error::NotFound(what)
        }
    }
}

#[async_trait]
impl Backend for MockBackend {
    fn known_registries(&self) -> Vec<String> {
        self.lock().known.clone()
    }

    async fn catalog(&self, registry: &str) -> Result<Option<Vec<String>>> {
        self.check(registry, format!("catalog {registry}"))?;
        let st = self.lock();
        if !st.catalogs.contains(registry) {
            return Ok(None);
        }
        Ok(Some(
            st.repos
                .keys()
                .filter(|(r, _)| r == registry)
                .map(|(_, repo)| repo.clone())
                .collect(),
        ))
    }

    async fn tags(&self, registry: &str, repo: &str) -> Result<Vec<String>> {
        self.check(registry, format!("tags {registry} {repo}"))?;
        let st = self.lock();
        match st.repos.get(&(registry.to_string(), repo.to_string())) {
            Some(r) => Ok(r.tags.keys().cloned().collect()),
            None => Err(self.unknown_repo(&st, registry, repo)),
        }
    }

    async fn manifest(
        &self,
        registry: &str,
        repo: &str,
        reference: &str,
    ) -> Result<FetchedManifest> {
        self.check(registry, format!("manifest {registry} {repo} {reference}"))?;
        let st = self.lock();
        let Some(r) = st.repos.get(&(registry.to_string(), repo.to_string())) else {
            return Err(self.unknown_repo(&st, registry, repo));
        };
        let digest = r.tags.get(reference).map_or(reference, String::as_str);
        match r.manifests.get(digest) {
            Some((bytes, mt)) => Ok(FetchedManifest {
                bytes: bytes.clone(),
                media_type: mt.clone(),
                digest: digest.to_string(),
            }),
            None => Err(Error::NotFound(format!("manifest unknown: {reference}"))),
        }
    }

    async fn blob(
        &self,
        registry: &str,
        repo: &str,
        digest: &str,
        size: u64,
        offset: u64,
        len: u32,
    ) -> Result<Bytes> {
        self.check(
            registry,
            format!("blob {registry} {repo} {digest} {offset} {len}"),
        )?;
        let st = self.lock();
        let blob = st
            .repos
            .get(&(registry.to_string(), repo.to_string()))
            .and_then(|r| r.blobs.get(digest))
            .ok_or_else(|| Error::NotFound(format!("blob unknown: {digest}")))?;
        if blob.len() as u64 != size || offset + u64::from(len) > size {
            return Err(Error::other(format!(
                "bad range {offset}+{len} of {digest}"
            )));
        }
        Ok(blob.slice(offset as usize..(offset + u64::from(len)) as usize))
    }

    fn blob_failures(&self, digest: &str) -> u64 {
        self.lock().blob_failures.get(digest).copied().unwrap_or(0)
    }

    async fn check_copy(&self, request: &CopyRequest, open_destination: bool) -> Result<()> {
        self.lock().checks += usize::from(open_destination);
        if open_destination && request.destination.starts_with("refuse:") {
            return Err(Error::other(format!(
                "destination {} cannot be written",
                request.destination
            )));
        }
        Ok(())
    }

    async fn copy(&self, request: CopyRequest, progress: Arc<CopyProgress>) -> Result<()> {
        let registry = request.source.registry.clone();
        self.check(
            &registry,
            format!("copy {} {}", request.source, request.destination),
        )?;
        let size = {
            let st = self.lock();
            st.repos
                .get(&(registry.clone(), request.source.repository.clone()))
                .and_then(|r| r.manifests.get(&request.source.digest))
                .map_or(0, |(b, _)| b.len() as u64)
        };
        progress.set_total(size);
        let destination = request.destination.clone();
        self.lock().copies.push(request);
        if destination.starts_with("hold:") {
            let permit = self.gate.acquire().await;
            drop(permit);
        }
        if destination.starts_with("fail:") || destination.starts_with("refuse:") {
            return Err(Error::other(format!(
                "destination {destination} refused the image"
            )));
        }
        progress.add_done(size);
        Ok(())
    }

    fn stats(&self) -> serde_json::Value {
        json!({"calls": self.calls.lock().unwrap_or_else(|e| e.into_inner()).len()})
    }
}
