//! Layer indexes kept on disk, one file per layer digest, so every image sharing a
//! layer and every later mount reuses it. A file is written under a temporary name,
//! synced and renamed into place; one that does not decode, or that names another
//! blob, is removed and reported as absent, never used.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::index::{LayerIndex, FORMAT_VERSION};

/// The directory of layer index files.
#[derive(Clone, Debug)]
pub struct IndexStore {
    dir: PathBuf,
}

impl IndexStore {
    pub fn new(dir: &Path) -> IndexStore {
        IndexStore {
            dir: dir.to_path_buf(),
        }
    }

    /// Removes what writers that died left: temporary files of processes gone.
    pub fn sweep(&self) {
        let Ok(dir) = fs::read_dir(&self.dir) else {
            return;
        };
        for f in dir.flatten() {
            let name = f.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(".tmp-"))
                .and_then(|n| n.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = fs::remove_file(f.path());
            }
        }
    }

    /// The file of layer `digest` (`sha256:` and 64 hex digits).
    fn path(&self, digest: &str) -> io::Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{digest:?} is not a sha256 digest"),
                )
            })?;
        Ok(self.dir.join(format!("{hex}.v{FORMAT_VERSION}")))
    }

    /// The stored index of layer `digest`, when there is a sound one.
    pub fn load(&self, digest: &str) -> Option<LayerIndex> {
        let path = self.path(digest).ok()?;
        let data = fs::read(&path).ok()?;
        match LayerIndex::decode(&data) {
            Ok(ix) if ix.blob_digest == digest => Some(ix),
            Ok(ix) => {
                tracing::warn!(
                    "removing layer index {}: it describes {}",
                    path.display(),
                    ix.blob_digest
                );
                let _ = fs::remove_file(&path);
                None
            }
            Err(e) => {
                tracing::warn!("removing layer index {}: {e}", path.display());
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores the index of layer `digest`; refused unless it was built from that blob.
    pub fn save(&self, digest: &str, ix: &LayerIndex) -> io::Result<()> {
        if ix.blob_digest != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "not keeping the index of layer {digest}: the blob read was {}",
                    ix.blob_digest
                ),
            ));
        }
        let path = self.path(digest)?;
        fs::create_dir_all(&self.dir)?;
        let data = ix.encode()?;
        let tmp = self.dir.join(format!(
            ".tmp-{}-{}",
            std::process::id(),
            path.file_name().and_then(|n| n.to_str()).unwrap_or("index")
        ));
        let res = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&data)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            fs::File::open(&self.dir)?.sync_all()
        })();
        if res.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        res
    }
}

#[cfg(test)]
mod tests;
