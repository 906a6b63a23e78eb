//! The `oci:` destination. Blobs (and manifests, which are blobs too) go straight into
//! the layout's content-addressed store through a temporary file renamed after
//! verification; only `commit` makes the image visible, by adding its index.json entry.
//!
//! Abandoned (dropped without a successful commit), the destination removes what this
//! copy added and nothing else: the blob files it created (not ones that were there or
//! that another writer created first), unless an index.json entry refers to them by
//! then, and the directories it created, when they are empty again. A layout created
//! from nothing disappears; an existing one is left as it was.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::json;

use super::{describe_name, index, Layout, REF_NAME_ANNOTATION};
use crate::error::{Error, Result, ResultExt};
use crate::manifest::{self, media_types};
use crate::transport::localfs;
use crate::transport::{BlobInfo, BlobStream, ImageDestination, LayerCompression, RepoLocation};

#[derive(Default)]
struct State {
    /// Every blob and manifest this image needs, in the order they were stored.
    needed: Vec<String>,
    /// The top manifest: media type, digest, size.
    top: Option<(String, String, i64)>,
    /// Blob files this destination created (digests), removed when it is abandoned.
    created_blobs: Vec<String>,
    /// Directories it created, parents first, removed (when empty) when abandoned.
    created_dirs: Vec<PathBuf>,
}

/// `oci:PATH[:NAME]` as a copy destination.
pub struct OciDestination {
    layout: Layout,
    reference: Option<String>,
    describe: String,
    compression: LayerCompression,
    state: Mutex<State>,
    committed: AtomicBool,
}

impl OciDestination {
    /// Prepares to write into the layout at `path` (created when missing), naming
    /// the image `reference`; without one the index.json entry has no name.
    pub async fn new(
        path: &Path,
        reference: Option<String>,
        shared_blob_dir: Option<PathBuf>,
    ) -> Result<OciDestination> {
        let describe = describe_name("oci", path, reference.as_deref(), None);
        Self::new_labeled(path, reference, shared_blob_dir, describe).await
    }

    /// As [`OciDestination::new`], with the name messages use for the destination.
    pub(crate) async fn new_labeled(
        path: &Path,
        reference: Option<String>,
        shared_blob_dir: Option<PathBuf>,
        describe: String,
    ) -> Result<OciDestination> {
        if let Some(r) = &reference {
            if !valid_ref_name(r) {
                return Err(Error::invalid(format!(
                    "opening {describe}: invalid image name {r:?}"
                )));
            }
        }
        let layout = Layout::new(path, shared_blob_dir.as_deref());
        let dest = OciDestination {
            layout,
            reference,
            describe,
            compression: LayerCompression::Compress,
            state: Mutex::new(State::default()),
            committed: AtomicBool::new(false),
        };
        dest.prepare()
            .await
            .map_err(|e| e.context(format!("opening {}", dest.describe)))?;
        Ok(dest)
    }

    /// Layers are compressed by default, as skopeo does for OCI layouts;
    /// `Preserve` is skopeo's `--dest-oci-accept-uncompressed-layers`.
    pub fn with_layer_compression(mut self, compression: LayerCompression) -> Self {
        self.compression = compression;
        self
    }

    async fn prepare(&self) -> Result<()> {
        let dir = &self.layout.dir;
        match tokio::fs::metadata(dir).await {
            Ok(m) if !m.is_dir() => {
                return Err(Error::invalid(format!(
                    "{} exists and is not a directory",
                    dir.display()
                )))
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::from(e).context(dir.display().to_string())),
        }
        let sha_dir = self.layout.blob_dir.join("sha256");
        for d in [dir, &sha_dir] {
            create_dirs_tracked(d, &mut self.state.lock().unwrap().created_dirs)
                .context(|| format!("creating {}", d.display()))?;
        }
        Ok(())
    }

    fn note_created(&self, digest: &str) {
        self.state
            .lock()
            .unwrap()
            .created_blobs
            .push(digest.to_string());
    }

    fn note_needed(&self, digest: &str) {
        let mut st = self.state.lock().unwrap();
        if !st.needed.iter().any(|d| d == digest) {
            st.needed.push(digest.to_string());
        }
    }

    /// Stores bytes produced here (manifests) under their digest.
    async fn store_bytes(&self, bytes: &[u8]) -> Result<String> {
        let digest = manifest::sha256_digest(bytes);
        let dest = self.layout.blob_path(&digest)?;
        if localfs::file_size(&dest).await? != Some(bytes.len() as u64)
            && localfs::write_new_file(&dest, bytes).await?
        {
            self.note_created(&digest);
        }
        self.note_needed(&digest);
        Ok(digest)
    }
}

#[async_trait]
impl ImageDestination for OciDestination {
    fn verifies_blobs(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn supported_manifest_types(&self) -> Vec<String> {
        vec![
            media_types::OCI_MANIFEST.to_string(),
            media_types::OCI_INDEX.to_string(),
        ]
    }

    fn desired_layer_compression(&self) -> LayerCompression {
        self.compression
    }

    async fn try_reuse_blob(
        &self,
        info: &BlobInfo,
        _from: Option<&RepoLocation>,
    ) -> Result<Option<BlobInfo>> {
        if !crate::digest::is_sha256(&info.digest) {
            return Ok(None);
        }
        let p = self.layout.blob_path(&info.digest)?;
        let found = localfs::present_blob(&p, info).await?;
        if found.is_some() {
            self.note_needed(&info.digest);
        }
        Ok(found)
    }

    async fn put_blob(&self, stream: BlobStream, info: &BlobInfo) -> Result<BlobInfo> {
        let sha_dir = self.layout.blob_dir.join("sha256");
        let (stored, created) =
            localfs::store_blob_tracked(&sha_dir, stream, info, &self.describe, |d| {
                self.layout.blob_path(d)
            })
            .await?;
        if created {
            self.note_created(&stored.digest);
        }
        self.note_needed(&stored.digest);
        Ok(stored)
    }

    async fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        instance: Option<&str>,
    ) -> Result<()> {
        let digest = self
            .store_bytes(bytes)
            .await
            .map_err(|e| e.context(format!("writing manifest to {}", self.describe)))?;
        match instance {
            Some(d) if d != digest => Err(Error::DigestMismatch {
                what: format!("manifest written to {}", self.describe),
                expected: d.to_string(),
                actual: digest,
            }),
            Some(_) => Ok(()),
            None => {
                let mt = super::media_type_of(media_type, bytes);
                self.state.lock().unwrap().top = Some((mt, digest, bytes.len() as i64));
                Ok(())
            }
        }
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        let (entry, needed) = {
            let st = self.state.lock().unwrap();
            let Some((mt, digest, size)) = st.top.clone() else {
                return Err(Error::other(format!(
                    "committing {}: no manifest was written",
                    self.describe
                )));
            };
            let mut entry = json!({"mediaType": mt, "digest": digest, "size": size});
            if let Some(r) = &self.reference {
                entry["annotations"] = json!({ REF_NAME_ANNOTATION: r });
            }
            (entry, st.needed.clone())
        };
        let layout = self.layout.clone();
        let describe = self.describe.clone();
        localfs::blocking(move || index::commit_entry(&layout, entry, &needed, &describe))
            .await
            .map_err(|e| e.context(format!("committing {}", self.describe)))?;
        self.committed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for OciDestination {
    fn drop(&mut self) {
        if self.committed.load(Ordering::SeqCst) {
            return;
        }
        let st = std::mem::take(&mut *self.state.lock().unwrap());
        if st.created_blobs.is_empty() && st.created_dirs.is_empty() {
            return;
        }
        let layout = self.layout.clone();
        localfs::cleanup_in_drop(move || {
            index::abandon(&layout, &st.created_blobs, &st.created_dirs);
        });
    }
}

/// Creates `path` and its missing parents, appending the ones created here to
/// `created` (parents first). A directory another writer creates at the same moment
/// is not counted.
fn create_dirs_tracked(path: &Path, created: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut missing = Vec::new();
    let mut p = path;
    loop {
        match std::fs::symlink_metadata(p) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(p.to_path_buf()),
            Err(e) => return Err(e),
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(&d) {
            Ok(()) => created.push(d),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && d.is_dir() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Whether `r` is a valid `org.opencontainers.image.ref.name` (the grammar image
/// names are parsed with).
fn valid_ref_name(r: &str) -> bool {
    use crate::reference::ImageName;
    matches!(
        ImageName::parse(&format!("oci:x:{r}")),
        Ok(ImageName::Oci { reference: Some(ref got), .. }) if got == r
    )
}
