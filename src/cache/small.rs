//! Small immutable objects by digest (manifests, configs): stored whole after their
//! digest was checked, checked again on every read, counted in the same budget.

use std::fs;
use std::io::{self, Write};
use std::sync::atomic::Ordering;

use bytes::Bytes;
use sha2::{Digest as _, Sha256};

use super::index::Key;
use super::layout::{digest_hex, remove_if_present, sync_dir};
use super::BlobCache;
use crate::error::{Error, Result};

/// Objects larger than this belong in the blob store.
pub const MAX_SMALL_BYTES: usize = 16 << 20;

impl BlobCache {
    /// Stores `bytes` under `digest` after checking they match it. Returns whether they
    /// were stored (`false` when the budget has no room for them).
    pub fn put_small(&self, digest: &str, bytes: &[u8]) -> Result<bool> {
        let hex = digest_hex(digest)?;
        if bytes.len() > MAX_SMALL_BYTES {
            return Err(Error::invalid(format!(
                "caching {digest}: {} bytes is too large for a small object (at most {MAX_SMALL_BYTES})",
                bytes.len()
            )));
        }
        let actual = hex::encode(Sha256::digest(bytes));
        if actual != hex {
            return Err(Error::DigestMismatch {
                what: format!("object {digest} given to the cache"),
                expected: digest.to_string(),
                actual: format!("sha256:{actual}"),
            });
        }
        let sh = &self.shared;
        let path = sh.layout.small(hex);
        let key = Key::Small(hex.to_string());
        if path.is_file() {
            sh.index.lock().unwrap().touch(&key);
            return Ok(true);
        }
        if !sh.reserve(&key, bytes.len() as u64) {
            return Ok(false);
        }
        let tmp = sh.layout.tmp_dir().join(format!(
            "small-{}-{}-{hex}",
            std::process::id(),
            sh.tmp_seq.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            sync_dir(&sh.layout.small_dir())
        };
        let res = write();
        sh.settle(&key, bytes.len() as u64, res.is_ok());
        if let Err(e) = res {
            let _ = remove_if_present(&tmp);
            return Err(Error::from(e).context(format!("caching {digest}")));
        }
        Ok(true)
    }

    /// The object stored under `digest`, checked against it; `None` when absent (an
    /// object that no longer matches is deleted and reported absent).
    pub fn get_small(&self, digest: &str) -> Result<Option<Bytes>> {
        let hex = digest_hex(digest)?;
        let sh = &self.shared;
        let path = sh.layout.small(hex);
        let key = Key::Small(hex.to_string());
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                sh.index.lock().unwrap().remove(&key);
                return Ok(None);
            }
            Err(e) => return Err(Error::from(e).context(format!("reading cached {digest}"))),
        };
        if hex::encode(Sha256::digest(&bytes)) != hex {
            tracing::warn!(
                "cache: {} does not match its digest; removed",
                path.display()
            );
            let _ = remove_if_present(&path);
            sh.index.lock().unwrap().remove(&key);
            return Ok(None);
        }
        sh.index.lock().unwrap().touch(&key);
        Ok(Some(Bytes::from(bytes)))
    }
}
