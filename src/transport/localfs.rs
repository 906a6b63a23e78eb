//! File-system plumbing shared by the local transports (`dir:`, `oci:`, `oci-archive:`):
//! unique temporary names, streaming a blob into a temporary file while hashing it,
//! size-limited reads, ranged reads, and cleanup from `Drop`.
//!
//! Invariant: a file written here only gets its final (digest) name after the bytes
//! were hashed to that digest and flushed to disk; on any failure the temporary file
//! is removed before the error is returned.

use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::digest::VerifyingReader;
use crate::error::{Error, Result, ResultExt};
use crate::transport::{BlobInfo, BlobStream};

/// A name part that no other writer (thread or process) picks at the same time.
pub(crate) fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}-{n:x}-{nanos:x}", std::process::id())
}

/// Creates a new directory `parent/PREFIX-UNIQUE` (mode per umask) and returns it.
pub(crate) async fn create_unique_dir(parent: &Path, prefix: &str) -> Result<PathBuf> {
    for _ in 0..16 {
        let p = parent.join(format!("{prefix}{}", unique_suffix()));
        match tokio::fs::create_dir(&p).await {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::from(e).context(format!(
                    "creating a temporary directory in {}",
                    parent.display()
                )))
            }
        }
    }
    Err(Error::other(format!(
        "creating a temporary directory in {}: no free name",
        parent.display()
    )))
}

/// The hex part of a validated digest (`sha256:HEX` → `HEX`): safe as a file name.
pub(crate) fn digest_hex(digest: &str) -> Result<&str> {
    crate::manifest::validate_digest(digest)?;
    Ok(digest.split_once(':').map(|(_, h)| h).unwrap_or(digest))
}

/// A blob written to a temporary file, hashed, and flushed; not yet at its final name.
pub(crate) struct StagedBlob {
    pub temp: PathBuf,
    pub digest: String,
    pub size: u64,
}

impl StagedBlob {
    /// Moves the file to `dest` unless a file of the same size is already there (same
    /// digest, same bytes: the temporary file is dropped then). Returns whether this
    /// call created `dest` — when two writers store the same blob at once, exactly one
    /// of them did. A file of another size (damaged) is replaced, but not counted as
    /// created here. The rename is done in place, not on the blocking pool: were this
    /// future dropped while a pooled rename is pending, the blob could appear after
    /// the destination cleaned up its directory.
    pub async fn persist_new(self, dest: &Path) -> Result<bool> {
        let res = match rename_noreplace(&self.temp, dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match std::fs::metadata(dest) {
                Ok(m) if m.is_file() && m.len() == self.size => {
                    let _ = std::fs::remove_file(&self.temp);
                    return Ok(false);
                }
                _ => std::fs::rename(&self.temp, dest).map(|()| false),
            },
            Err(e) => Err(e),
        };
        res.map_err(|e| {
            let _ = std::fs::remove_file(&self.temp);
            Error::from(e).context(format!("storing {}", dest.display()))
        })
    }

    /// Removes the temporary file.
    pub async fn discard(self) {
        let _ = tokio::fs::remove_file(&self.temp).await;
    }
}

/// Renames `from` to `to`, failing with `AlreadyExists` when `to` exists. Where the
/// file system cannot do that atomically, the check and the rename are two steps.
pub(crate) fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cf = CString::new(from.as_os_str().as_bytes())?;
    let ct = CString::new(to.as_os_str().as_bytes())?;
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them as given.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            cf.as_ptr(),
            libc::AT_FDCWD,
            ct.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(err);
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::Error::from(io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

/// `info` as stored: with the digest and size the bytes really had.
pub(crate) fn stored_as(info: &BlobInfo, digest: String, size: u64) -> BlobInfo {
    let mut stored = info.clone();
    stored.digest = digest;
    stored.size = size as i64;
    stored
}

/// Stores a blob: streamed into a temporary file in `temp_dir` (verified as
/// [`stage_blob`] does), then renamed to `final_path(digest)`. `describe` names the
/// destination in errors. Nothing remains on failure.
pub(crate) async fn store_blob(
    temp_dir: &Path,
    stream: BlobStream,
    info: &BlobInfo,
    describe: &str,
    final_path: impl FnOnce(&str) -> Result<PathBuf>,
) -> Result<BlobInfo> {
    store_blob_tracked(temp_dir, stream, info, describe, final_path)
        .await
        .map(|(stored, _)| stored)
}

/// As [`store_blob`], also telling whether this call created the blob's file (it was
/// not there before; see [`StagedBlob::persist_new`]).
pub(crate) async fn store_blob_tracked(
    temp_dir: &Path,
    stream: BlobStream,
    info: &BlobInfo,
    describe: &str,
    final_path: impl FnOnce(&str) -> Result<PathBuf>,
) -> Result<(BlobInfo, bool)> {
    let what = if info.digest.is_empty() {
        "blob".to_string()
    } else {
        format!("blob {}", info.digest)
    };
    let staged = stage_blob(temp_dir, stream, info, &what)
        .await
        .map_err(|e| e.context(format!("writing {what} to {describe}")))?;
    let dest = match final_path(&staged.digest) {
        Ok(p) => p,
        Err(e) => {
            staged.discard().await;
            return Err(e);
        }
    };
    let (digest, size) = (staged.digest.clone(), staged.size);
    let created = staged.persist_new(&dest).await?;
    Ok((stored_as(info, digest, size), created))
}

/// Streams `stream` into a new temporary file in `dir`, hashing it. When `info.digest`
/// is a sha256 digest the bytes must match it (and `info.size` when not -1); otherwise
/// the digest is computed. `what` names the blob in errors. On failure nothing remains.
pub(crate) async fn stage_blob(
    dir: &Path,
    stream: BlobStream,
    info: &BlobInfo,
    what: &str,
) -> Result<StagedBlob> {
    let temp = dir.join(format!(".scry-tmp-{}", unique_suffix()));
    // Removes the temporary file unless the write completed — also when this future
    // is dropped half way (a sibling blob failed and the copy was abandoned).
    let mut guard = TempGuard(Some(temp.clone()));
    let (digest, size) = write_verified(&temp, stream, info, what).await?;
    guard.0 = None;
    Ok(StagedBlob { temp, digest, size })
}

struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

async fn write_verified(
    temp: &Path,
    stream: BlobStream,
    info: &BlobInfo,
    what: &str,
) -> Result<(String, u64)> {
    let size = u64::try_from(info.size).ok();
    let reader = if crate::digest::is_sha256(&info.digest) {
        VerifyingReader::new(stream, &info.digest, size, what)
    } else {
        VerifyingReader::digesting(stream)
    };
    let tally = reader.tally();
    let file = create_new_now(temp).context(|| format!("creating {}", temp.display()))?;
    // Large writes: each write of a tokio file is a trip through the blocking pool.
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut reader = tokio::io::BufReader::with_capacity(256 << 10, reader);
    if let Err(e) = tokio::io::copy_buf(&mut reader, &mut file).await {
        // Verification failures already name the blob; write failures name the file.
        return Err(if e.kind() == io::ErrorKind::InvalidData {
            Error::from(e)
        } else {
            Error::from(e).context(format!("writing {what} to {}", temp.display()))
        });
    }
    // No fsync per blob (as other image tools): the rename into place happens only after
    // the bytes were verified, and a crash leaves at worst a blob that fails its next
    // verification.
    file.flush()
        .await
        .context(|| format!("writing {}", temp.display()))?;
    drop(file);
    let (digest, written) = tally
        .get()
        .ok_or_else(|| Error::other(format!("writing {what}: the stream ended early")))?;
    Ok((digest, written))
}

/// The stored description of blob `info` when a file of its size is at `path` (a
/// file of another size is not the blob the caller means, or is damaged: write it again).
pub(crate) async fn present_blob(path: &Path, info: &BlobInfo) -> Result<Option<BlobInfo>> {
    let Some(size) = file_size(path).await? else {
        return Ok(None);
    };
    if info.size >= 0 && info.size as u64 != size {
        return Ok(None);
    }
    let mut found = info.clone();
    found.size = size as i64;
    Ok(Some(found))
}

/// Creates a new file at once, without a trip through the blocking pool. Cancel-safety:
/// a pooled create whose future is dropped still runs later, so the file could appear
/// after the caller's cleanup removed its name (a blob write abandoned because a
/// sibling blob failed). Created here, the file exists before the first await point
/// and a drop guard set up before the call covers it.
pub(crate) fn create_new_now(path: &Path) -> io::Result<tokio::fs::File> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    Ok(tokio::fs::File::from_std(f))
}

/// Writes `bytes` to a new temporary file beside `dest`, synced; cancel-safe like
/// [`stage_blob`] (a dropped call leaves no file behind).
async fn stage_bytes(dest: &Path, bytes: &[u8]) -> Result<StagedBlob> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".scry-tmp-{}", unique_suffix()));
    let mut guard = TempGuard(Some(temp.clone()));
    let res = async {
        let mut f = create_new_now(&temp)?;
        f.write_all(bytes).await?;
        f.sync_all().await
    }
    .await;
    if let Err(e) = res {
        return Err(Error::from(e).context(format!("writing {}", dest.display())));
    }
    guard.0 = None;
    Ok(StagedBlob {
        temp,
        digest: String::new(),
        size: bytes.len() as u64,
    })
}

/// Writes `bytes` to `dest` through a temporary file in the same directory, replacing
/// what is there; cancel-safe like [`stage_blob`].
pub(crate) async fn write_file_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let staged = stage_bytes(dest, bytes).await?;
    std::fs::rename(&staged.temp, dest).map_err(|e| {
        let _ = std::fs::remove_file(&staged.temp);
        Error::from(e).context(format!("writing {}", dest.display()))
    })
}

/// Writes `bytes` to `dest` like [`write_file_atomic`], unless a file of that size is
/// already there (content-addressed names: same name, same bytes). Returns whether
/// this call created `dest`.
pub(crate) async fn write_new_file(dest: &Path, bytes: &[u8]) -> Result<bool> {
    stage_bytes(dest, bytes).await?.persist_new(dest).await
}

/// Reads a whole file of at most `limit` bytes (manifests, index.json).
pub(crate) async fn read_limited(path: &Path, limit: usize) -> Result<Bytes> {
    let f = tokio::fs::File::open(path)
        .await
        .context(|| path.display().to_string())?;
    let mut buf = Vec::new();
    f.take(limit as u64 + 1)
        .read_to_end(&mut buf)
        .await
        .context(|| format!("reading {}", path.display()))?;
    if buf.len() > limit {
        return Err(Error::invalid(format!(
            "{}: exceeded maximum allowed size of {limit} bytes",
            path.display()
        )));
    }
    Ok(Bytes::from(buf))
}

/// Opens a blob file for streaming, with its length.
pub(crate) async fn open_blob(path: &Path) -> Result<(BlobStream, Option<u64>)> {
    let f = tokio::fs::File::open(path)
        .await
        .context(|| path.display().to_string())?;
    let len = f
        .metadata()
        .await
        .context(|| path.display().to_string())?
        .len();
    Ok((Box::pin(f), Some(len)))
}

/// Bytes `range` of a blob file; a range past the end is an error.
pub(crate) async fn open_blob_range(path: &Path, range: Range<u64>) -> Result<BlobStream> {
    let mut f = tokio::fs::File::open(path)
        .await
        .context(|| path.display().to_string())?;
    let len = f
        .metadata()
        .await
        .context(|| path.display().to_string())?
        .len();
    if range.start > range.end || range.end > len {
        return Err(Error::invalid(format!(
            "{}: range {}..{} outside the blob's {len} bytes",
            path.display(),
            range.start,
            range.end
        )));
    }
    f.seek(io::SeekFrom::Start(range.start))
        .await
        .context(|| path.display().to_string())?;
    Ok(Box::pin(f.take(range.end - range.start)))
}

/// Size of an existing regular file, `None` when it does not exist.
pub(crate) async fn file_size(path: &Path) -> Result<Option<u64>> {
    match tokio::fs::metadata(path).await {
        Ok(m) if m.is_file() => Ok(Some(m.len())),
        Ok(_) => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::from(e).context(path.display().to_string())),
    }
}

/// Runs blocking cleanup from a `Drop` impl: inside a multi-threaded runtime the
/// worker is handed off first; elsewhere it runs directly (it is short and must not be
/// skipped, which a task spawned during runtime shutdown could be).
pub(crate) fn cleanup_in_drop(f: impl FnOnce()) {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Runs `f` on the blocking pool; its error gets no extra context.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::other(format!("file operation aborted: {e}")))?
}

/// fsyncs a directory so renames inside it survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// A temporary directory removed (with its contents) when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// A new directory `PREFIX…` under `tmpdir` (default: the system temporary directory).
    pub(crate) async fn create(tmpdir: Option<&Path>, prefix: &str) -> Result<TempDir> {
        let base = tmpdir
            .map(Path::to_path_buf)
            .unwrap_or_else(std::env::temp_dir);
        create_unique_dir(&base, prefix).await.map(TempDir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let p = self.0.clone();
        cleanup_in_drop(move || {
            let _ = std::fs::remove_dir_all(&p);
        });
    }
}
