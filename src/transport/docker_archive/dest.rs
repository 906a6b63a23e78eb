//! Writing one image as a docker archive, the way skopeo does.
//!
//! Blobs are staged as files in a private directory beside the target (the tar format
//! needs each size before the bytes, and layers arrive decompressed with unknown size);
//! `commit` writes the archive to `PATH.tmp-XXXXXXXX` and renames it over `PATH`. A
//! target that exists and is not a regular file (a FIFO, `/dev/stdout`) is written in
//! place instead. Until `commit` succeeds nothing appears at `PATH`; dropping the
//! destination removes every staged file.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use super::files::{big_temp_dir, create_temp_dir, create_temp_file};
use super::writer::{write_archive, ArchivePlan, StagedBlob};
use crate::digest::{is_sha256, VerifyingReader};
use crate::error::{Error, Result, ResultExt};
use crate::manifest::media_types::DOCKER_V2S2;
use crate::manifest::{Manifest, MAX_CONFIG_SIZE};
use crate::reference::DockerReference;
use crate::transport::{BlobInfo, BlobStream, ImageDestination, LayerCompression, RepoLocation};

/// How the finished archive reaches the target path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Placement {
    /// Written beside it under a temporary name, then renamed over it.
    Rename,
    /// Written into the existing non-regular file (FIFO, character device).
    InPlace,
}

#[derive(Default)]
struct State {
    blobs: HashMap<String, StagedBlob>,
    next: u64,
    plan: Option<ArchivePlan>,
}

/// `docker-archive:PATH[:REFERENCE]` as a copy destination.
pub struct DockerArchiveDestination {
    describe: String,
    target: PathBuf,
    placement: Placement,
    repo_tags: Vec<(String, String)>,
    staging: PathBuf,
    state: Mutex<State>,
}

impl Drop for DockerArchiveDestination {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.staging);
    }
}

fn tag_pair(r: &DockerReference, what: &str) -> Result<(String, String)> {
    if r.digest().is_some() {
        return Err(Error::invalid(format!(
            "docker-archive doesn't support digest references: {r}"
        )));
    }
    let tag = r
        .tag()
        .ok_or_else(|| Error::invalid(format!("{what} {r} must be a tagged reference")))?;
    Ok((r.name(), tag.to_string()))
}

/// Whether `path` can receive a new archive, and how.
fn placement_for(path: &Path) -> Result<Placement> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Placement::Rename),
        Err(e) => {
            Err(Error::Io(e).context(format!("statting file {:?}", path.display().to_string())))
        }
        Ok(m) if m.is_file() && m.len() > 0 => Err(Error::invalid(
            "docker-archive doesn't support modifying existing images",
        )),
        Ok(m) if m.is_file() => Ok(Placement::Rename),
        Ok(m) if m.is_dir() => Err(Error::invalid(format!("{} is a directory", path.display()))),
        Ok(_) => Ok(Placement::InPlace),
    }
}

impl DockerArchiveDestination {
    /// Prepares to write an archive at `path` tagged `reference` (default tag `latest`)
    /// and `additional_tags` (each must carry a tag). Fails when `path` is a non-empty
    /// regular file, as skopeo does.
    pub fn new(
        path: &Path,
        reference: Option<DockerReference>,
        additional_tags: Vec<DockerReference>,
    ) -> Result<DockerArchiveDestination> {
        let mut describe = format!("docker-archive:{}", path.display());
        let reference = reference.map(DockerReference::with_default_tag);
        if let Some(r) = &reference {
            describe.push_str(&format!(":{r}"));
        }
        let fail = |e: Error| e.context(format!("initializing destination {describe}"));
        let mut repo_tags = Vec::new();
        if let Some(r) = &reference {
            repo_tags.push(tag_pair(r, "reference").map_err(fail)?);
        }
        for t in &additional_tags {
            repo_tags.push(tag_pair(t, "additional tag").map_err(fail)?);
        }
        let placement = placement_for(path).map_err(fail)?;
        let staging_base = match placement {
            Placement::Rename => format!("{}.tmp-blobs-", path.display()),
            Placement::InPlace => big_temp_dir(None)
                .join("docker-archive-blobs-")
                .to_string_lossy()
                .into_owned(),
        };
        let staging = create_temp_dir(&staging_base).map_err(fail)?;
        Ok(DockerArchiveDestination {
            describe,
            target: path.to_path_buf(),
            placement,
            repo_tags,
            staging,
            state: Mutex::new(State::default()),
        })
    }

    /// Streams `stream` into `path`, returning its digest and size; checks them against
    /// `info` where it names a sha256 digest or a size.
    async fn stage(
        &self,
        stream: BlobStream,
        path: &Path,
        info: &BlobInfo,
    ) -> Result<(String, u64)> {
        let mut file = crate::transport::localfs::create_new_now(path)?;
        let mut reader = VerifyingReader::digesting(stream);
        let tally = reader.tally();
        tokio::io::copy(&mut reader, &mut file).await?;
        file.flush().await?;
        drop(file);
        let (digest, size) = tally
            .get()
            .ok_or_else(|| Error::other("the blob stream ended early"))?;
        if is_sha256(&info.digest) && info.digest != digest {
            return Err(Error::DigestMismatch {
                what: format!("blob {}", info.digest),
                expected: info.digest.clone(),
                actual: digest,
            });
        }
        if info.size >= 0 && info.size as u64 != size {
            return Err(Error::invalid(format!(
                "blob {}: size mismatch (expected {} bytes, got {size})",
                info.digest, info.size
            )));
        }
        Ok((digest, size))
    }

    fn staged(&self, digest: &str, what: &str) -> Result<StagedBlob> {
        self.state
            .lock()
            .unwrap()
            .blobs
            .get(digest)
            .cloned()
            .ok_or_else(|| {
                Error::invalid(format!(
                    "{what} {digest} was not written to {}",
                    self.describe
                ))
            })
    }

    /// Writes the archive (blocking I/O).
    fn write_out(&self) -> Result<()> {
        let plan = self
            .state
            .lock()
            .unwrap()
            .plan
            .take()
            .ok_or_else(|| Error::invalid("no manifest was written"))?;
        match self.placement {
            Placement::InPlace => {
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.target)
                    .context(|| format!("opening file {:?}", self.target.display().to_string()))?;
                let mut out = write_archive(BufWriter::new(f), &plan)?;
                out.flush()?;
                Ok(())
            }
            Placement::Rename => {
                placement_for(&self.target)?;
                let base = format!("{}.tmp-", self.target.display());
                // 0644 as umask allows: what skopeo creates.
                let (file, temp) = create_temp_file(&base, 0o644)?;
                let written = (|| -> Result<()> {
                    let out = write_archive(BufWriter::new(file), &plan)?;
                    let file = out.into_inner().map_err(|e| Error::Io(e.into_error()))?;
                    file.sync_all()?;
                    std::fs::rename(&temp, &self.target)?;
                    Ok(())
                })();
                if written.is_err() {
                    let _ = std::fs::remove_file(&temp);
                }
                written
            }
        }
    }
}

#[async_trait]
impl ImageDestination for DockerArchiveDestination {
    fn verifies_blobs(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn supported_manifest_types(&self) -> Vec<String> {
        vec![DOCKER_V2S2.to_string()]
    }

    fn supports_index(&self) -> bool {
        false
    }

    fn desired_layer_compression(&self) -> LayerCompression {
        LayerCompression::Decompress
    }

    async fn try_reuse_blob(
        &self,
        info: &BlobInfo,
        _from: Option<&RepoLocation>,
    ) -> Result<Option<BlobInfo>> {
        let state = self.state.lock().unwrap();
        Ok(state.blobs.get(&info.digest).map(|b| {
            let mut found = info.clone();
            found.size = b.size as i64;
            found
        }))
    }

    async fn put_blob(&self, stream: BlobStream, info: &BlobInfo) -> Result<BlobInfo> {
        let path = {
            let mut state = self.state.lock().unwrap();
            state.next += 1;
            self.staging.join(format!("blob-{}", state.next))
        };
        let (digest, size) = match self.stage(stream, &path, info).await {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                return Err(e.context(format!("writing blob to {}", self.describe)));
            }
        };
        let duplicate = {
            let mut state = self.state.lock().unwrap();
            if state.blobs.contains_key(&digest) {
                true
            } else {
                let blob = StagedBlob {
                    digest: digest.clone(),
                    size,
                    path: path.clone(),
                };
                state.blobs.insert(digest.clone(), blob);
                false
            }
        };
        if duplicate {
            let _ = tokio::fs::remove_file(&path).await;
        }
        Ok(crate::transport::localfs::stored_as(info, digest, size))
    }

    async fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        instance: Option<&str>,
    ) -> Result<()> {
        if instance.is_some() {
            return Err(Error::Unsupported(
                "Manifest lists are not supported for docker tar files".into(),
            ));
        }
        let unsupported = || {
            Error::Unsupported("Unsupported manifest type, need a Docker schema 2 manifest".into())
        };
        if media_type != DOCKER_V2S2 {
            return Err(unsupported());
        }
        let Manifest::Docker2(m) = Manifest::parse(bytes, DOCKER_V2S2)? else {
            return Err(unsupported());
        };
        if m.schema_version != 2 || m.media_type.as_deref() != Some(DOCKER_V2S2) {
            return Err(unsupported());
        }
        let config = self.staged(&m.config.digest, "config")?;
        if config.size > MAX_CONFIG_SIZE as u64 {
            return Err(Error::invalid(format!(
                "reading Config file stream: exceeded maximum allowed size of {MAX_CONFIG_SIZE} bytes"
            )));
        }
        let config_bytes = tokio::fs::read(&config.path).await?;
        let layers = m
            .layers
            .iter()
            .map(|l| self.staged(&l.digest, "layer"))
            .collect::<Result<Vec<_>>>()?;
        let plan = ArchivePlan {
            layers,
            config,
            config_bytes,
            repo_tags: self.repo_tags.clone(),
        };
        // Fails now, not at commit, when the config is not a JSON object.
        let digests: Vec<String> = plan.layers.iter().map(|l| l.digest.clone()).collect();
        super::writer::legacy_layers(&digests, &plan.config_bytes)?;
        self.state.lock().unwrap().plan = Some(plan);
        Ok(())
    }

    async fn put_signatures(&self, signatures: &[Vec<u8>], instance: Option<&str>) -> Result<()> {
        if instance.is_some() {
            return Err(Error::Unsupported(
                "Manifest lists are not supported for docker tar files".into(),
            ));
        }
        if signatures.is_empty() {
            return Ok(());
        }
        Err(Error::Unsupported(
            "Storing signatures for docker tar files is not supported".into(),
        ))
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let describe = self.describe.clone();
        tokio::task::spawn_blocking(move || self.write_out())
            .await
            .map_err(|e| Error::other(format!("writing {describe}: {e}")))?
            .map_err(|e| e.context(format!("writing {describe}")))
    }
}
