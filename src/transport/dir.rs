//! `dir:PATH` — skopeo's directory layout: a `version` file, `manifest.json` (the top
//! manifest as stored), blobs named by the hex of their digest, `HEX.manifest.json` for
//! the children of an index, and `signature-N` / `HEX.signature-N` signatures.
//!
//! The destination writes into a hidden sibling directory and swaps it into place on
//! commit, so an unfinished copy never looks like an image; it refuses to replace a
//! non-empty directory that is not a `dir:` image (as skopeo does).

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use bytes::Bytes;

use super::localfs::{self, digest_hex};
use crate::error::{Error, Result, ResultExt};
use crate::manifest::{self, MAX_MANIFEST_SIZE};
use crate::transport::{
    BlobInfo, BlobStream, ImageDestination, ImageSource, LayerCompression, RepoLocation,
};

/// Contents of the `version` file skopeo writes (and scry writes).
pub const VERSION_CONTENT: &str = "Directory Transport Version: 1.1\n";

fn manifest_name(instance: Option<&str>) -> Result<String> {
    Ok(match instance {
        None => "manifest.json".to_string(),
        Some(d) => format!("{}.manifest.json", digest_hex(d)?),
    })
}

fn signature_name(instance: Option<&str>, n: usize) -> Result<String> {
    Ok(match instance {
        None => format!("signature-{n}"),
        Some(d) => format!("{}.signature-{n}", digest_hex(d)?),
    })
}

/// `dir:PATH` as a copy source.
pub struct DirSource {
    path: PathBuf,
}

impl DirSource {
    /// Opens `path`; fails (NotFound) when it holds no `manifest.json`.
    pub async fn open(path: &Path) -> Result<DirSource> {
        let src = DirSource {
            path: path.to_path_buf(),
        };
        let m = path.join("manifest.json");
        let problem = match tokio::fs::metadata(&m).await {
            Ok(md) if md.is_file() => return Ok(src),
            Ok(_) => Error::invalid(format!("{} is not a file", m.display())),
            Err(e) => Error::from(e).context(m.display().to_string()),
        };
        Err(problem.context(format!("opening {}", src.describe())))
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.path.join(digest_hex(digest)?))
    }
}

#[async_trait]
impl ImageSource for DirSource {
    fn describe(&self) -> String {
        format!("dir:{}", self.path.display())
    }

    async fn manifest(&self, instance: Option<&str>) -> Result<(Bytes, String)> {
        let p = self.path.join(manifest_name(instance)?);
        let bytes = localfs::read_limited(&p, MAX_MANIFEST_SIZE)
            .await
            .map_err(|e| e.context(format!("reading manifest of {}", self.describe())))?;
        if let Some(d) = instance {
            let actual = manifest::manifest_digest(&bytes)?;
            if actual != d {
                return Err(Error::DigestMismatch {
                    what: format!("manifest {}", p.display()),
                    expected: d.to_string(),
                    actual,
                });
            }
        }
        let media_type = manifest::normalize_media_type(None, &bytes);
        Ok((bytes, media_type))
    }

    async fn blob(&self, info: &BlobInfo) -> Result<(BlobStream, Option<u64>)> {
        let p = self.blob_path(&info.digest)?;
        localfs::open_blob(&p).await.map_err(|e| {
            e.context(format!(
                "reading blob {} from {}",
                info.digest,
                self.describe()
            ))
        })
    }

    fn supports_blob_range(&self) -> bool {
        true
    }

    async fn blob_range(&self, info: &BlobInfo, range: Range<u64>) -> Result<BlobStream> {
        let p = self.blob_path(&info.digest)?;
        localfs::open_blob_range(&p, range).await.map_err(|e| {
            e.context(format!(
                "reading blob {} from {}",
                info.digest,
                self.describe()
            ))
        })
    }

    async fn signatures(&self, instance: Option<&str>) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        for n in 1.. {
            let p = self.path.join(signature_name(instance, n)?);
            match tokio::fs::read(&p).await {
                Ok(b) => out.push(b),
                Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                Err(e) => return Err(Error::from(e).context(format!("reading {}", p.display()))),
            }
        }
        Ok(out)
    }
}

/// What is at the destination path when the copy starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Missing,
    /// An empty directory or a previous `dir:` image: replaced on commit.
    Replaceable,
}

/// Whether `path` may be written as a `dir:` image.
async fn inspect_target(path: &Path) -> Result<Target> {
    let md = match tokio::fs::metadata(path).await {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Target::Missing),
        Err(e) => return Err(Error::from(e).context(path.display().to_string())),
    };
    if !md.is_dir() {
        return Err(Error::invalid(format!(
            "{} exists and is not a directory",
            path.display()
        )));
    }
    if localfs::file_size(&path.join("version")).await?.is_some() {
        return Ok(Target::Replaceable);
    }
    let mut rd = tokio::fs::read_dir(path)
        .await
        .context(|| path.display().to_string())?;
    if rd
        .next_entry()
        .await
        .context(|| path.display().to_string())?
        .is_none()
    {
        return Ok(Target::Replaceable);
    }
    Err(Error::invalid(format!(
        "{}: not a containers image directory, don't want to overwrite important data",
        path.display()
    )))
}

/// `dir:PATH` as a copy destination.
pub struct DirDestination {
    /// As the user wrote it (for messages).
    path: PathBuf,
    /// Where the image ends up (symlinks resolved when the path existed).
    target: PathBuf,
    /// The hidden sibling everything is written to until commit.
    staging: PathBuf,
    compression: LayerCompression,
    committed: AtomicBool,
}

impl DirDestination {
    /// Prepares to write `path`; refuses a non-empty directory that is not a `dir:`
    /// image, and a path that exists but is not a directory.
    pub async fn new(path: &Path, compression: LayerCompression) -> Result<DirDestination> {
        let describe = format!("dir:{}", path.display());
        Self::prepare(path, compression)
            .await
            .map_err(|e| e.context(format!("opening {describe}")))
    }

    async fn prepare(path: &Path, compression: LayerCompression) -> Result<DirDestination> {
        let target = match inspect_target(path).await? {
            Target::Missing => std::path::absolute(path)?,
            Target::Replaceable => tokio::fs::canonicalize(path)
                .await
                .context(|| path.display().to_string())?,
        };
        let (Some(parent), Some(name)) = (target.parent(), target.file_name()) else {
            return Err(Error::invalid(format!(
                "{} cannot be replaced by an image directory",
                path.display()
            )));
        };
        let prefix = format!(".{}.scry-", name.to_string_lossy());
        let staging = localfs::create_unique_dir(parent, &prefix).await?;
        let dest = DirDestination {
            path: path.to_path_buf(),
            target,
            staging,
            compression,
            committed: AtomicBool::new(false),
        };
        localfs::write_file_atomic(&dest.staging.join("version"), VERSION_CONTENT.as_bytes())
            .await?;
        Ok(dest)
    }

    async fn swap_into_place(&self) -> Result<()> {
        let target = self.target.clone();
        let staging = self.staging.clone();
        localfs::blocking(move || {
            match std::fs::symlink_metadata(&target) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return std::fs::rename(&staging, &target)
                        .context(|| format!("renaming {} into place", target.display()));
                }
                Err(e) => return Err(Error::from(e).context(target.display().to_string())),
                Ok(_) => {}
            }
            // Something is there: it must still be replaceable.
            let replaceable = target.join("version").is_file()
                || std::fs::read_dir(&target)
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(false);
            if !replaceable || !target.is_dir() {
                return Err(Error::invalid(format!(
                    "{}: not a containers image directory, don't want to overwrite important data",
                    target.display()
                )));
            }
            exchange(&staging, &target).context(|| format!("replacing {}", target.display()))?;
            // `staging` now holds the previous contents; the new image is in place.
            if let Err(e) = std::fs::remove_dir_all(&staging) {
                tracing::warn!("removing the previous {}: {e}", staging.display());
            }
            Ok(())
        })
        .await
    }
}

/// Atomically swaps two existing directories; where the kernel cannot, moves `b`
/// aside, moves `a` to `b`, and leaves the old `b` at `a`.
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes())?;
    let cb = CString::new(b.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them as given.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(err);
    }
    let aside = a.with_extension(format!("old-{}", localfs::unique_suffix()));
    std::fs::rename(b, &aside)?;
    if let Err(e) = std::fs::rename(a, b) {
        let _ = std::fs::rename(&aside, b);
        return Err(e);
    }
    std::fs::rename(&aside, a)
}

#[async_trait]
impl ImageDestination for DirDestination {
    fn verifies_blobs(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        format!("dir:{}", self.path.display())
    }

    fn desired_layer_compression(&self) -> LayerCompression {
        self.compression
    }

    async fn try_reuse_blob(
        &self,
        info: &BlobInfo,
        _from: Option<&RepoLocation>,
    ) -> Result<Option<BlobInfo>> {
        // A fresh directory: only blobs written earlier in this copy are present.
        if !crate::digest::is_sha256(&info.digest) {
            return Ok(None);
        }
        let p = self.staging.join(digest_hex(&info.digest)?);
        localfs::present_blob(&p, info).await
    }

    async fn put_blob(&self, stream: BlobStream, info: &BlobInfo) -> Result<BlobInfo> {
        localfs::store_blob(&self.staging, stream, info, &self.describe(), |d| {
            Ok(self.staging.join(digest_hex(d)?))
        })
        .await
    }

    async fn put_manifest(
        &self,
        bytes: &[u8],
        _media_type: &str,
        instance: Option<&str>,
    ) -> Result<()> {
        let p = self.staging.join(manifest_name(instance)?);
        localfs::write_file_atomic(&p, bytes)
            .await
            .map_err(|e| e.context(format!("writing manifest to {}", self.describe())))
    }

    fn supports_signatures(&self) -> bool {
        true
    }

    async fn put_signatures(&self, signatures: &[Vec<u8>], instance: Option<&str>) -> Result<()> {
        for (i, sig) in signatures.iter().enumerate() {
            let p = self.staging.join(signature_name(instance, i + 1)?);
            localfs::write_file_atomic(&p, sig)
                .await
                .map_err(|e| e.context(format!("writing signature to {}", self.describe())))?;
        }
        Ok(())
    }

    async fn commit(self: Box<Self>) -> Result<()> {
        if localfs::file_size(&self.staging.join("manifest.json"))
            .await?
            .is_none()
        {
            return Err(Error::other(format!(
                "committing {}: no manifest was written",
                self.describe()
            )));
        }
        self.swap_into_place()
            .await
            .map_err(|e| e.context(format!("committing {}", self.describe())))?;
        self.committed.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for DirDestination {
    fn drop(&mut self) {
        if self.committed.load(Ordering::SeqCst) {
            return;
        }
        let staging = self.staging.clone();
        localfs::cleanup_in_drop(move || {
            let _ = std::fs::remove_dir_all(&staging);
        });
    }
}

#[cfg(test)]
#[path = "dir/tests.rs"]
mod tests;
