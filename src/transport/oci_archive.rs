//! `oci-archive:PATH[:NAME|:@N]` — a tar of an OCI image layout.
//!
//! The source extracts the archive into a private temporary directory and reads it
//! as an `oci:` layout; the extraction refuses anything that could write or point
//! outside that directory (absolute names, `..`, symbolic links, hard links to
//! non-extracted files, device nodes and the like). The destination writes an `oci:`
//! layout in a temporary directory and, on commit, tars it next to PATH and renames
//! the tar into place. Both remove their temporary directory when dropped.

use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::localfs::{self, TempDir};
use super::oci::{describe_name, OciDestination, OciSource};
use crate::error::{Error, Result, ResultExt};
use crate::transport::{
    BlobInfo, BlobStream, ImageDestination, ImageSource, LayerCompression, RepoLocation,
};

/// `oci-archive:` as a copy source.
pub struct OciArchiveSource {
    // Field order: the layout reader goes before its directory is removed.
    inner: OciSource,
    _dir: TempDir,
}

impl OciArchiveSource {
    /// Extracts `path` under `tmpdir` (default: the system temporary directory) and
    /// opens the image `reference` or `index` names, or the only one.
    pub async fn open(
        path: &Path,
        reference: Option<&str>,
        index: Option<usize>,
        tmpdir: Option<&Path>,
    ) -> Result<OciArchiveSource> {
        let describe = describe_name("oci-archive", path, reference, index);
        let dir = TempDir::create(tmpdir, "scry-oci-archive-")
            .await
            .map_err(|e| e.context(format!("opening {describe}")))?;
        let (archive, into) = (path.to_path_buf(), dir.path().to_path_buf());
        localfs::blocking(move || extract(&archive, &into))
            .await
            .map_err(|e| e.context(format!("opening {describe}")))?;
        let inner = OciSource::open_labeled(
            dir.path(),
            reference,
            index,
            None,
            describe,
            path.display().to_string(),
        )
        .await?;
        Ok(OciArchiveSource { inner, _dir: dir })
    }
}

#[async_trait]
impl ImageSource for OciArchiveSource {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn manifest(&self, instance: Option<&str>) -> Result<(Bytes, String)> {
        self.inner.manifest(instance).await
    }

    async fn blob(&self, info: &BlobInfo) -> Result<(BlobStream, Option<u64>)> {
        self.inner.blob(info).await
    }

    fn supports_blob_range(&self) -> bool {
        true
    }

    async fn blob_range(&self, info: &BlobInfo, range: Range<u64>) -> Result<BlobStream> {
        self.inner.blob_range(info, range).await
    }
}

/// The name of a tar entry as a path below the extraction root, or an error for one
/// that is absolute or climbs out. `.` components are dropped; an empty result is the
/// root itself.
fn safe_relative(name: &Path) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::invalid(format!(
                    "archive entry {:?} has an absolute path",
                    name.display().to_string()
                )))
            }
            Component::ParentDir => {
                return Err(Error::invalid(format!(
                    "archive entry {:?} points outside the archive",
                    name.display().to_string()
                )))
            }
        }
    }
    Ok(out)
}

/// Unpacks the tar at `archive` into the empty directory `into`: only directories,
/// regular files, and hard links to files extracted earlier.
fn extract(archive: &Path, into: &Path) -> Result<()> {
    let f = fs::File::open(archive).context(|| archive.display().to_string())?;
    let mut ar = tar::Archive::new(io::BufReader::new(f));
    let bad = |e: io::Error| Error::invalid(format!("reading {}: {e}", archive.display()));
    for entry in ar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path().map_err(bad)?.into_owned();
        let rel = safe_relative(&raw)?;
        let dest = into.join(&rel);
        let kind = entry.header().entry_type();
        let described = || format!("archive entry {:?}", raw.display().to_string());
        match kind {
            tar::EntryType::Directory => {
                fs::create_dir_all(&dest).context(|| format!("extracting {}", described()))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if rel.as_os_str().is_empty() {
                    return Err(Error::invalid(format!("{} is not a file", described())));
                }
                prepare_file(&dest)?;
                let mut out =
                    fs::File::create(&dest).context(|| format!("extracting {}", described()))?;
                io::copy(&mut entry, &mut out).map_err(bad)?;
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(bad)?
                    .ok_or_else(|| Error::invalid(format!("{} links to nothing", described())))?
                    .into_owned();
                let target_rel = safe_relative(&target)
                    .map_err(|e| e.context(format!("hard link {}", described())))?;
                let source = into.join(&target_rel);
                if target_rel.as_os_str().is_empty()
                    || !fs::symlink_metadata(&source)
                        .map(|m| m.is_file())
                        .unwrap_or(false)
                {
                    return Err(Error::invalid(format!(
                        "{} is a hard link to {:?}, which is not a file extracted before it",
                        described(),
                        target.display().to_string()
                    )));
                }
                prepare_file(&dest)?;
                fs::copy(&source, &dest).context(|| format!("extracting {}", described()))?;
            }
            tar::EntryType::XGlobalHeader => {}
            other => {
                return Err(Error::invalid(format!(
                    "{} has unsupported type {other:?} (only directories and files are allowed)",
                    described()
                )))
            }
        }
    }
    Ok(())
}

/// Makes `dest`'s parent exist and removes a previous entry of the same name (later
/// entries win, as with tar). No symbolic link is ever created, so no parent can lead
/// outside the root.
fn prepare_file(dest: &Path) -> Result<()> {
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).context(|| format!("creating {}", parent.display()))?;
    }
    match fs::remove_file(dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::from(e).context(format!("replacing {}", dest.display()))),
    }
}

/// `oci-archive:` as a copy destination.
pub struct OciArchiveDestination {
    path: PathBuf,
    describe: String,
    inner: Option<OciDestination>,
    dir: TempDir,
}

impl OciArchiveDestination {
    /// Prepares to write the archive `path` holding one image named `reference`,
    /// staging the layout under `tmpdir` (default: the system temporary directory).
    pub async fn new(
        path: &Path,
        reference: Option<String>,
        tmpdir: Option<&Path>,
    ) -> Result<OciArchiveDestination> {
        let describe = describe_name("oci-archive", path, reference.as_deref(), None);
        if let Ok(m) = tokio::fs::metadata(path).await {
            if m.is_dir() {
                return Err(Error::invalid(format!(
                    "opening {describe}: {} is a directory",
                    path.display()
                )));
            }
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        match tokio::fs::metadata(parent).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::invalid(format!(
                    "opening {describe}: {} is not a directory",
                    parent.display()
                )))
            }
            Err(e) => {
                return Err(Error::from(e)
                    .context(parent.display().to_string())
                    .context(format!("opening {describe}")))
            }
        }
        let dir = TempDir::create(tmpdir, "scry-oci-archive-")
            .await
            .map_err(|e| e.context(format!("opening {describe}")))?;
        let inner =
            OciDestination::new_labeled(dir.path(), reference, None, describe.clone()).await?;
        Ok(OciArchiveDestination {
            path: path.to_path_buf(),
            describe,
            inner: Some(inner),
            dir,
        })
    }

    /// As [`OciDestination::with_layer_compression`] (default: compress).
    pub fn with_layer_compression(mut self, compression: LayerCompression) -> Self {
        let inner = self.inner.take().expect("present until commit");
        self.inner = Some(inner.with_layer_compression(compression));
        self
    }

    fn inner(&self) -> &OciDestination {
        self.inner.as_ref().expect("present until commit")
    }
}

#[async_trait]
impl ImageDestination for OciArchiveDestination {
    fn verifies_blobs(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn supported_manifest_types(&self) -> Vec<String> {
        self.inner().supported_manifest_types()
    }

    fn desired_layer_compression(&self) -> LayerCompression {
        self.inner().desired_layer_compression()
    }

    async fn try_reuse_blob(
        &self,
        info: &BlobInfo,
        from: Option<&RepoLocation>,
    ) -> Result<Option<BlobInfo>> {
        self.inner().try_reuse_blob(info, from).await
    }

    async fn put_blob(&self, stream: BlobStream, info: &BlobInfo) -> Result<BlobInfo> {
        self.inner().put_blob(stream, info).await
    }

    async fn put_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        instance: Option<&str>,
    ) -> Result<()> {
        self.inner().put_manifest(bytes, media_type, instance).await
    }

    async fn put_signatures(&self, signatures: &[Vec<u8>], instance: Option<&str>) -> Result<()> {
        self.inner().put_signatures(signatures, instance).await
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        let inner = self.inner.take().expect("present until commit");
        Box::new(inner).commit().await?;
        let (layout, path) = (self.dir.path().to_path_buf(), self.path.clone());
        localfs::blocking(move || write_archive(&layout, &path))
            .await
            .map_err(|e| e.context(format!("committing {}", self.describe)))
    }
}

/// Tars the layout at `layout` into `PATH.tmp-XXXX` beside `path`, then renames it to
/// `path`.
fn write_archive(layout: &Path, path: &Path) -> Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} is not a file name", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temp = parent.join(format!(
        "{}.tmp-{}",
        name.to_string_lossy(),
        localfs::unique_suffix()
    ));
    let res = (|| -> Result<()> {
        let f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            .context(|| format!("creating {}", temp.display()))?;
        let mut b = tar::Builder::new(io::BufWriter::new(f));
        b.mode(tar::HeaderMode::Deterministic);
        append_tree(&mut b, layout, Path::new(""))?;
        let f = b
            .into_inner()
            .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
            .context(|| format!("writing {}", temp.display()))?;
        f.sync_all()
            .context(|| format!("writing {}", temp.display()))?;
        drop(f);
        fs::rename(&temp, path).context(|| format!("renaming to {}", path.display()))?;
        localfs::sync_dir(&parent).context(|| parent.display().to_string())
    })();
    if res.is_err() {
        let _ = fs::remove_file(&temp);
    }
    res
}

/// Appends the directory `root/rel` (entries sorted by name) to the tar, skipping
/// leftover temporary files.
fn append_tree<W: io::Write>(b: &mut tar::Builder<W>, root: &Path, rel: &Path) -> Result<()> {
    let dir = root.join(rel);
    let mut names: Vec<_> = fs::read_dir(&dir)
        .context(|| dir.display().to_string())?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .context(|| dir.display().to_string())?;
    names.sort();
    for name in names {
        if name.to_string_lossy().starts_with(".scry-tmp-") {
            continue;
        }
        let child_rel = rel.join(&name);
        let full = root.join(&child_rel);
        let md = fs::symlink_metadata(&full).context(|| full.display().to_string())?;
        if md.is_dir() {
            append_dir_entry(b, &child_rel).context(|| format!("archiving {}", full.display()))?;
            append_tree(b, root, &child_rel)?;
        } else if md.is_file() {
            b.append_path_with_name(&full, &child_rel)
                .context(|| format!("archiving {}", full.display()))?;
        }
    }
    Ok(())
}

/// A directory entry named `rel/` (with the trailing slash other tar writers use).
fn append_dir_entry<W: io::Write>(b: &mut tar::Builder<W>, rel: &Path) -> io::Result<()> {
    let name = format!("{}/", rel.display());
    let mut h = tar::Header::new_ustar();
    if name.len() > h.as_old().name.len() {
        return Err(io::Error::other(format!(
            "directory name {name:?} is too long"
        )));
    }
    h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    // The same fixed time the deterministic file entries carry.
    h.set_mtime(DETERMINISTIC_MTIME);
    h.set_cksum();
    b.append(&h, io::empty())
}

/// What `tar::HeaderMode::Deterministic` writes as every file's mtime.
const DETERMINISTIC_MTIME: u64 = 1153704088;

impl Drop for OciArchiveDestination {
    fn drop(&mut self) {
        // The layout writer goes first; `dir` then removes the staged layout.
        self.inner.take();
    }
}

#[cfg(test)]
#[path = "oci_archive/tests.rs"]
mod tests;
