//! Random access into a tar archive without extracting it: one pass records where each
//! entry's data lies; reads then seek straight to it. A compressed archive is first
//! decompressed into a temporary file (removed when the index is dropped).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::compress::{self, Compression};
use super::files::{big_temp_dir, clean_entry_name, create_temp_file, resolve_link};
use super::{MANIFEST_FILE, MAX_ARCHIVE_MANIFEST_SIZE};
use crate::error::{Error, Result, ResultExt};
use crate::transport::BlobStream;

/// How many links [`TarIndex::locate`] follows before giving up (loops).
const MAX_LINK_HOPS: usize = 8;

#[derive(Clone, Debug)]
enum Kind {
    File {
        offset: u64,
        size: u64,
    },
    /// Target already resolved to a clean entry name.
    Link(String),
    /// Directories, devices, FIFOs, sparse files: nothing a blob can be read from.
    Other,
}

/// Where the entries of one archive are.
#[derive(Debug)]
pub struct TarIndex {
    /// The file read: the user's archive, or a decompressed temporary copy.
    data_path: PathBuf,
    /// Whether `data_path` is a temporary copy this index owns.
    temporary: bool,
    entries: HashMap<String, Kind>,
}

impl Drop for TarIndex {
    fn drop(&mut self) {
        if self.temporary {
            let _ = std::fs::remove_file(&self.data_path);
        }
    }
}

/// Opens `path`; failing to is `Other`, not `NotFound`: skopeo exits 1, not 2, for a
/// missing archive.
fn open_file(path: &Path) -> Result<File> {
    File::open(path).map_err(|e| {
        Error::other(format!(
            "opening file {:?}: {e}",
            path.display().to_string()
        ))
    })
}

impl TarIndex {
    /// Indexes the archive at `path`. A gzip- or zstd-compressed archive is decompressed
    /// into a temporary file in `tmpdir` (default `$TMPDIR`, else `/var/tmp`) first.
    /// Entry names that are absolute, contain `..`, or link outside the archive fail.
    /// Blocking I/O.
    pub fn open(path: &Path, tmpdir: Option<&Path>) -> Result<TarIndex> {
        let mut file = open_file(path)?;
        let head = compress::read_head(&mut file, 6)?;
        let compression = Compression::detect(&head);
        if compression == Compression::None {
            file.seek(SeekFrom::Start(0))?;
            let entries = index_entries(&mut file)?;
            return Ok(TarIndex {
                data_path: path.to_path_buf(),
                temporary: false,
                entries,
            });
        }
        compression.check_supported(&format!("archive {}", path.display()))?;
        file.seek(SeekFrom::Start(0))?;
        let base = big_temp_dir(tmpdir).join("docker-tar-");
        let (mut temp, temp_path) = create_temp_file(&base.to_string_lossy(), 0o600)?;
        // From here on the temporary file belongs to `index`, which removes it on failure.
        let mut index = TarIndex {
            data_path: temp_path,
            temporary: true,
            entries: HashMap::new(),
        };
        let mut decoder = compress::blocking_decoder(compression, file)?;
        io::copy(&mut decoder, &mut temp).context(|| {
            format!(
                "decompressing {} ({}) into {}",
                path.display(),
                compression.name(),
                index.data_path.display()
            )
        })?;
        temp.seek(SeekFrom::Start(0))?;
        index.entries = index_entries(&mut temp)?;
        Ok(index)
    }

    /// The regular file `name` resolves to (links followed): its data's offset and size
    /// in [`TarIndex::data_path`].
    pub fn locate(&self, name: &str) -> Result<(u64, u64)> {
        let mut current = clean_entry_name(name)?;
        for _ in 0..=MAX_LINK_HOPS {
            match self.entries.get(&current) {
                None => {
                    return Err(Error::invalid(format!(
                        "loading tar component {name:?}: file does not exist"
                    )))
                }
                Some(Kind::File { offset, size }) => return Ok((*offset, *size)),
                Some(Kind::Link(target)) => current = target.clone(),
                Some(Kind::Other) => {
                    return Err(Error::invalid(format!(
                        "reading tar archive component {current:?}: not a regular file"
                    )))
                }
            }
        }
        Err(Error::invalid(format!(
            "reading tar archive component {name:?}: too many levels of links"
        )))
    }

    /// The whole content of `name`, refused when larger than `limit`. Blocking I/O.
    pub fn read_all(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let (offset, size) = self.locate(name)?;
        if size > limit {
            return Err(Error::invalid(format!(
                "loading tar component {name:?}: exceeded maximum allowed size of {limit} bytes"
            )));
        }
        let mut out = Vec::with_capacity(size as usize);
        self.blocking_range(offset, size)?.read_to_end(&mut out)?;
        if out.len() as u64 != size {
            return Err(Error::invalid(format!(
                "loading tar component {name:?}: archive truncated"
            )));
        }
        Ok(out)
    }

    /// A blocking reader of `len` bytes at `offset`.
    pub fn blocking_range(&self, offset: u64, len: u64) -> Result<impl Read + Send + Unpin> {
        let mut f = open_file(&self.data_path)?;
        f.seek(SeekFrom::Start(offset))?;
        Ok(f.take(len))
    }

    /// An async stream of `len` bytes at `offset`.
    pub async fn stream_range(&self, offset: u64, len: u64) -> Result<BlobStream> {
        let mut f = tokio::fs::File::open(&self.data_path).await.map_err(|e| {
            Error::other(format!(
                "opening file {:?}: {e}",
                self.data_path.display().to_string()
            ))
        })?;
        f.seek(SeekFrom::Start(offset)).await?;
        Ok(Box::pin(f.take(len)))
    }
}

/// One pass over the archive: every entry's clean name and where its data is. The first
/// entry of a name wins (as a sequential reader finds it).
fn index_entries(file: &mut File) -> Result<HashMap<String, Kind>> {
    let mut archive = tar::Archive::new(file);
    let mut entries = HashMap::new();
    let fail = |e: io::Error| Error::invalid(format!("reading the tar archive: {e}"));
    for entry in archive.entries_with_seek().map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let raw_name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = clean_entry_name(&raw_name)?;
        let link_target = || {
            entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        };
        let kind = match entry.header().entry_type() {
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File {
                offset: entry.raw_file_position(),
                size: entry.size(),
            },
            tar::EntryType::Symlink => Kind::Link(resolve_link(&name, &link_target())?),
            tar::EntryType::Link => Kind::Link(clean_entry_name(&link_target())?),
            _ => Kind::Other,
        };
        if name.is_empty() {
            continue;
        }
        entries.entry(name).or_insert(kind);
    }
    Ok(entries)
}

/// `manifest.json` of the archive at `path`, for listing: through the index for a plain
/// archive, by one sequential pass through the decoder for a compressed one (nothing is
/// written to disk). Blocking I/O.
pub fn read_manifest_sequentially(path: &Path) -> Result<Vec<u8>> {
    let mut file = open_file(path)?;
    let head = compress::read_head(&mut file, 6)?;
    let compression = Compression::detect(&head);
    if compression == Compression::None {
        return TarIndex::open(path, None)?.read_all(MANIFEST_FILE, MAX_ARCHIVE_MANIFEST_SIZE);
    }
    compression.check_supported(&format!("archive {}", path.display()))?;
    file.seek(SeekFrom::Start(0))?;
    let decoder = compress::blocking_decoder(compression, file)?;
    let mut archive = tar::Archive::new(decoder);
    let fail = |e: io::Error| Error::invalid(format!("reading the tar archive: {e}"));
    for entry in archive.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let name = clean_entry_name(&String::from_utf8_lossy(&entry.path_bytes()))?;
        if name != MANIFEST_FILE {
            continue;
        }
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            return Err(Error::invalid(format!(
                "reading tar archive component {MANIFEST_FILE:?}: not a regular file"
            )));
        }
        if entry.size() > MAX_ARCHIVE_MANIFEST_SIZE {
            return Err(Error::invalid(format!(
                "loading tar component {MANIFEST_FILE:?}: exceeded maximum allowed size of {MAX_ARCHIVE_MANIFEST_SIZE} bytes"
            )));
        }
        let mut out = Vec::new();
        entry.read_to_end(&mut out).map_err(fail)?;
        return Ok(out);
    }
    Err(Error::invalid(format!(
        "loading tar component {MANIFEST_FILE:?}: file does not exist"
    )))
}
