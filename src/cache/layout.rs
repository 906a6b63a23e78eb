//! The cache directory's layout and the filesystem helpers the cache needs.
//!
//! ```text
//! DIR/blobs/sha256/HEX            complete blobs, verified against their digest
//! DIR/partial/sha256/HEX.data     a blob being filled: sparse, chunks at their offsets
//! DIR/partial/sha256/HEX.chunks   header + one byte per chunk (1 = durably written)
//! DIR/small/sha256/HEX            small immutable objects (manifests, configs)
//! DIR/tmp/                        files being written before a rename into place
//! DIR/layers/index/HEX.vN         layer indexes of the mount's `rootfs/` (not the cache's)
//! DIR/layers/files/               unlinked files of layer files read (nothing named)
//! ```
//!
//! Everything under `blobs/` and `small/` is complete and verified: it only ever appears
//! there by an atomic rename after its digest was checked.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub(crate) struct Layout {
    root: PathBuf,
}

impl Layout {
    pub(crate) fn new(root: &Path) -> Self {
        Layout {
            root: root.to_path_buf(),
        }
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn create(&self) -> io::Result<()> {
        for d in [
            self.blobs_dir(),
            self.partial_dir(),
            self.small_dir(),
            self.tmp_dir(),
        ] {
            fs::create_dir_all(d)?;
        }
        Ok(())
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn partial_dir(&self) -> PathBuf {
        self.root.join("partial").join("sha256")
    }

    pub(crate) fn small_dir(&self) -> PathBuf {
        self.root.join("small").join("sha256")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn blob(&self, hex: &str) -> PathBuf {
        self.blobs_dir().join(hex)
    }

    pub(crate) fn partial_data(&self, hex: &str) -> PathBuf {
        self.partial_dir().join(format!("{hex}.data"))
    }

    pub(crate) fn partial_chunks(&self, hex: &str) -> PathBuf {
        self.partial_dir().join(format!("{hex}.chunks"))
    }

    pub(crate) fn small(&self, hex: &str) -> PathBuf {
        self.small_dir().join(hex)
    }

    /// Removes files left in `tmp/` by writers that died more than `age` ago.
    pub(crate) fn clean_tmp(&self, age: Duration) {
        let Ok(rd) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for e in rd.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|d| d > age);
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

/// The hex part of a `sha256:` digest; the only algorithm the cache stores.
pub(crate) fn digest_hex(digest: &str) -> Result<&str> {
    let Some((alg, hex)) = digest.split_once(':') else {
        return Err(Error::invalid(format!(
            "invalid digest {digest:?}: expected algorithm:hex"
        )));
    };
    if alg != "sha256" {
        return Err(Error::Unsupported(format!(
            "caching blob {digest}: only sha256 digests are supported"
        )));
    }
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(Error::invalid(format!(
            "invalid digest {digest:?}: sha256 needs 64 lowercase hex digits"
        )));
    }
    Ok(hex)
}

/// Whether `file` is still the file at `path` (not unlinked or replaced since it was opened).
pub(crate) fn is_at(file: &File, path: &Path) -> io::Result<bool> {
    let ours = file.metadata()?;
    if ours.nlink() == 0 {
        return Ok(false);
    }
    match fs::metadata(path) {
        Ok(m) => Ok(m.ino() == ours.ino() && m.dev() == ours.dev()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Makes directory entries (creations, renames, unlinks) in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Removes a file; a missing file is not an error.
pub(crate) fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// `(used, total)` bytes of the filesystem holding `path`, as non-root users see it.
pub(crate) fn fs_usage(path: &Path) -> io::Result<(u64, u64)> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: statvfs fills the zeroed struct; `c` is a valid NUL-terminated path.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let frsize = st.f_frsize as u64;
    // Space unavailable to unprivileged users counts as used, so 95% means 95% of what
    // can be filled.
    let total = (st.f_blocks as u64).saturating_mul(frsize);
    let avail = (st.f_bavail as u64).saturating_mul(frsize);
    Ok((total.saturating_sub(avail), total))
}

/// Bytes a file occupies on disk (sparse files count only what was written).
pub(crate) fn allocated(m: &fs::Metadata) -> u64 {
    m.blocks().saturating_mul(512)
}
