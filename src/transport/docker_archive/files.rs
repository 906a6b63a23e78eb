//! Names inside archives (normalised, never escaping the root) and temporary files
//! created with unguessable, exclusive names.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// Normalises an entry name as `path.Clean` would, relative to the archive root:
/// `./a//b/` is `a/b`, the root itself is `""`. Absolute names and names with a `..`
/// component are refused.
pub fn clean_entry_name(name: &str) -> Result<String> {
    if name.starts_with('/') {
        return Err(Error::invalid(format!(
            "invalid entry name {name:?} in archive: absolute path"
        )));
    }
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                return Err(Error::invalid(format!(
                    "invalid entry name {name:?} in archive: \"..\" component"
                )))
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

/// Where a symbolic link at `link` (a clean entry name) pointing to `target` leads,
/// as a clean entry name. Targets that are absolute or climb above the root are refused.
pub fn resolve_link(link: &str, target: &str) -> Result<String> {
    let bad = |why: &str| {
        Error::invalid(format!(
            "invalid link {link:?} -> {target:?} in archive: {why}"
        ))
    };
    if target.starts_with('/') {
        return Err(bad("absolute target"));
    }
    let mut parts: Vec<&str> = link.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(bad("target outside the archive"));
                }
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Eight hex characters unlikely to repeat across processes and calls.
fn random_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(std::process::id().to_le_bytes());
    h.update(nanos.to_le_bytes());
    h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
    let local = 0u8;
    h.update((&local as *const u8 as usize).to_le_bytes());
    hex::encode(&h.finalize()[..4])
}

/// Creates a new file `<base><random>` (never an existing one) with `mode` (as umask
/// allows).
pub fn create_temp_file(base: &str, mode: u32) -> Result<(File, PathBuf)> {
    for _ in 0..64 {
        let path = PathBuf::from(format!("{base}{}", random_suffix()));
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&path)
        {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(
                    Error::Io(e).context(format!("creating temporary file {}", path.display()))
                )
            }
        }
    }
    Err(Error::other(format!(
        "creating a temporary file named {base}…: every name tried exists"
    )))
}

/// Creates a new directory `<base><random>` (never an existing one).
pub fn create_temp_dir(base: &str) -> Result<PathBuf> {
    for _ in 0..64 {
        let path = PathBuf::from(format!("{base}{}", random_suffix()));
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::Io(e)
                    .context(format!("creating temporary directory {}", path.display())))
            }
        }
    }
    Err(Error::other(format!(
        "creating a temporary directory named {base}…: every name tried exists"
    )))
}

/// Directory for large temporary files: `dir` when given, else `$TMPDIR`, else
/// `/var/tmp` (as containers/image).
pub fn big_temp_dir(dir: Option<&Path>) -> PathBuf {
    if let Some(d) = dir {
        return d.to_path_buf();
    }
    match std::env::var_os("TMPDIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/var/tmp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_are_cleaned_and_escapes_refused() {
        for (input, want) in [
            ("manifest.json", "manifest.json"),
            ("./manifest.json", "manifest.json"),
            ("a//b/./c/", "a/b/c"),
            (".", ""),
            ("blobs/sha256/ab", "blobs/sha256/ab"),
        ] {
            assert_eq!(clean_entry_name(input).unwrap(), want, "{input}");
        }
        for bad in ["/etc/passwd", "../x", "a/../../x", "a/../b", "/"] {
            let e = clean_entry_name(bad).unwrap_err();
            assert!(e.to_string().contains("invalid entry name"), "{bad}: {e}");
        }
    }

    #[test]
    fn links_resolve_inside_the_root_only() {
        assert_eq!(
            resolve_link("id/layer.tar", "../abc.tar").unwrap(),
            "abc.tar"
        );
        assert_eq!(resolve_link("a/b/c", "../d/./e").unwrap(), "a/d/e");
        assert_eq!(resolve_link("top", "other").unwrap(), "other");
        assert!(resolve_link("id/layer.tar", "../../etc/passwd").is_err());
        assert!(resolve_link("top", "../x").is_err());
        assert!(resolve_link("a/b", "/etc/passwd").is_err());
    }

    #[test]
    fn temp_names_are_new_each_time() {
        let dir = tempfile::tempdir().unwrap();
        let base = format!("{}/x.tmp-", dir.path().display());
        let (_f1, p1) = create_temp_file(&base, 0o600).unwrap();
        let (_f2, p2) = create_temp_file(&base, 0o644).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&p1).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_ne!(p1, p2);
        let d = create_temp_dir(&base).unwrap();
        assert!(d.is_dir());
        assert!(p1.to_string_lossy().starts_with(&base));
    }
}
