//! A layout's index.json: reading it, choosing an entry, rewriting it under an
//! exclusive lock, and removing blobs that no entry uses any more.
//!
//! Entries are kept as JSON values so that fields scry does not know survive a
//! rewrite. Writers serialise on `flock(LOCK_EX)` of the layout directory itself (no
//! extra file in the layout); index.json is replaced by rename, so readers never see
//! a partial file.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{media_type_of, Layout, TopDescriptor, LAYOUT_CONTENT, REF_NAME_ANNOTATION};
use crate::error::{Error, Result, ResultExt};
use crate::manifest::{self, Manifest, MAX_MANIFEST_SIZE};
use crate::transport::localfs;

/// Which index.json entry an image name means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Selector {
    /// No name: the only entry.
    Only,
    /// The entry annotated with this `org.opencontainers.image.ref.name`.
    Name(String),
    /// Entry N (zero-based).
    Index(usize),
}

/// The parsed index.json document.
pub(crate) struct IndexDoc {
    doc: Map<String, Value>,
}

fn field<'a>(entry: &'a Value, name: &str) -> &'a str {
    entry.get(name).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn ref_name(entry: &Value) -> Option<&str> {
    entry
        .get("annotations")
        .and_then(|a| a.get(REF_NAME_ANNOTATION))
        .and_then(Value::as_str)
}

impl IndexDoc {
    pub fn empty() -> IndexDoc {
        let mut doc = Map::new();
        doc.insert("schemaVersion".into(), Value::from(2));
        doc.insert("manifests".into(), Value::Array(Vec::new()));
        IndexDoc { doc }
    }

    pub fn parse(bytes: &[u8], label: &str) -> Result<IndexDoc> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(format!("parsing {label}: {e}")))?;
        let Value::Object(mut doc) = v else {
            return Err(Error::invalid(format!(
                "parsing {label}: not a JSON object"
            )));
        };
        match doc.get("manifests") {
            None | Some(Value::Null) => {
                doc.insert("manifests".into(), Value::Array(Vec::new()));
            }
            Some(Value::Array(items)) if items.iter().all(Value::is_object) => {}
            Some(_) => {
                return Err(Error::invalid(format!(
                    "parsing {label}: \"manifests\" is not a list of descriptors"
                )))
            }
        }
        Ok(IndexDoc { doc })
    }

    pub fn entries(&self) -> &Vec<Value> {
        match self.doc.get("manifests") {
            Some(Value::Array(a)) => a,
            _ => unreachable!("checked at parse"),
        }
    }

    fn entries_mut(&mut self) -> &mut Vec<Value> {
        match self.doc.get_mut("manifests") {
            Some(Value::Array(a)) => a,
            _ => unreachable!("checked at parse"),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.doc).expect("a JSON value serialises")
    }

    /// The entry `selector` picks. `label` names index.json in errors.
    pub fn select(&self, selector: &Selector, label: &str) -> Result<usize> {
        let entries = self.entries();
        match selector {
            Selector::Name(name) => entries
                .iter()
                .position(|e| {
                    ref_name(e) == Some(name.as_str())
                        && manifest::media_types::is_manifest(field(e, "mediaType"))
                })
                .ok_or_else(|| Error::ImageNotFound(format!("no image named {name:?} in {label}"))),
            Selector::Index(i) => {
                if *i < entries.len() {
                    Ok(*i)
                } else {
                    Err(Error::NotFound(format!(
                        "no image @{i} in {label}: it has {} entries",
                        entries.len()
                    )))
                }
            }
            Selector::Only => match entries.len() {
                1 => Ok(0),
                0 => Err(Error::NotFound(format!("no image in {label}"))),
                _ => {
                    let choices: Vec<String> = entries
                        .iter()
                        .enumerate()
                        .map(|(i, e)| match ref_name(e) {
                            Some(n) => format!("{n:?}"),
                            None => format!("@{i}"),
                        })
                        .collect();
                    Err(Error::invalid(format!(
                        "more than one image in oci, choose an image: {label} holds {}",
                        choices.join(", ")
                    )))
                }
            },
        }
    }

    /// Adds the entry for a newly written top manifest, as skopeo does, except that
    /// an entry already carrying the same name is replaced rather than kept unnamed.
    /// An unnamed entry for the same digest is replaced too. Returns the entries
    /// that were dropped.
    pub fn add(&mut self, entry: Value) -> Vec<Value> {
        let name = ref_name(&entry).map(str::to_string);
        let digest = field(&entry, "digest").to_string();
        let entries = self.entries_mut();
        let replaced = |e: &Value| match &name {
            Some(n) => {
                ref_name(e) == Some(n.as_str())
                    || (ref_name(e).is_none() && field(e, "digest") == digest)
            }
            None => ref_name(e).is_none() && field(e, "digest") == digest,
        };
        let first = entries.iter().position(replaced);
        let mut dropped = Vec::new();
        let mut kept = Vec::with_capacity(entries.len() + 1);
        for (i, e) in std::mem::take(entries).into_iter().enumerate() {
            if Some(i) == first {
                kept.push(entry.clone());
                dropped.push(e);
            } else if replaced(&e) {
                dropped.push(e);
            } else {
                kept.push(e);
            }
        }
        if first.is_none() {
            kept.push(entry);
        }
        *entries = kept;
        dropped
    }

    /// Removes the entries `selector` picks (for a name: every entry with it).
    pub fn remove(&mut self, selector: &Selector, label: &str) -> Result<Vec<Value>> {
        let i = self.select(selector, label)?;
        let entries = self.entries_mut();
        let removed: Vec<Value> = match selector {
            Selector::Name(name) => {
                let (gone, kept): (Vec<Value>, Vec<Value>) = std::mem::take(entries)
                    .into_iter()
                    .partition(|e| ref_name(e) == Some(name.as_str()));
                *entries = kept;
                gone
            }
            _ => vec![entries.remove(i)],
        };
        Ok(removed)
    }
}

/// Reads index.json; `Ok(None)` when it does not exist.
fn read_index_sync(layout: &Layout, label: &str) -> Result<Option<IndexDoc>> {
    let p = layout.index_path();
    let bytes = match read_limited_sync(&p, MAX_MANIFEST_SIZE) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::from(e).context(p.display().to_string())),
    };
    IndexDoc::parse(&bytes, label).map(Some)
}

fn read_limited_sync(p: &Path, limit: usize) -> io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(p)?
        .take(limit as u64 + 1)
        .read_to_end(&mut buf)?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("exceeded maximum allowed size of {limit} bytes"),
        ));
    }
    Ok(buf)
}

/// The manifest `selector` names in the layout.
pub(crate) async fn resolve(
    layout: &Layout,
    selector: &Selector,
    label: &str,
) -> Result<TopDescriptor> {
    let p = layout.index_path();
    let bytes = localfs::read_limited(&p, MAX_MANIFEST_SIZE).await?;
    let doc = IndexDoc::parse(&bytes, label)?;
    let entry = &doc.entries()[doc.select(selector, label)?];
    let digest = field(entry, "digest").to_string();
    manifest::validate_digest(&digest).map_err(|e| e.context(format!("entry of {label}")))?;
    Ok(TopDescriptor {
        digest,
        media_type: field(entry, "mediaType").to_string(),
    })
}

/// An exclusive lock on a layout, held until dropped.
pub(crate) struct LayoutLock {
    _dir: std::fs::File,
}

pub(crate) fn lock_layout(dir: &Path) -> Result<LayoutLock> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir).context(|| format!("locking {}", dir.display()))?;
    loop {
        // SAFETY: a valid open descriptor; flock has no memory effects.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(LayoutLock { _dir: f });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(Error::from(e).context(format!("locking {}", dir.display())));
        }
    }
}

/// Writes the `oci-layout` file when it is missing.
pub(crate) fn ensure_layout_file(layout: &Layout) -> Result<()> {
    let p = layout.layout_file();
    if p.is_file() {
        return Ok(());
    }
    write_atomic_sync(&p, LAYOUT_CONTENT.as_bytes())
}

pub(crate) fn write_atomic_sync(dest: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = dest.parent().unwrap_or(Path::new("."));
    let temp = dir.join(format!(".scry-tmp-{}", localfs::unique_suffix()));
    let res = (|| {
        let mut f = std::fs::File::create(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&temp, dest)?;
        localfs::sync_dir(dir)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::from(e).context(format!("writing {}", dest.display())));
    }
    Ok(())
}

/// Under the layout lock: checks that `needed` blobs are still present, adds `entry`
/// to index.json (creating the layout files if missing), and removes blobs only the
/// dropped entries used.
pub(crate) fn commit_entry(
    layout: &Layout,
    entry: Value,
    needed: &[String],
    what: &str,
) -> Result<()> {
    let _lock = lock_layout(&layout.dir)?;
    ensure_layout_file(layout)?;
    for d in needed {
        let p = layout.blob_path(d)?;
        if !p.is_file() {
            return Err(Error::NotFound(format!(
                "blob {d} of {what} is missing from {} (removed by another writer?)",
                p.display()
            )));
        }
    }
    let label = layout.index_path().display().to_string();
    let mut doc = read_index_sync(layout, &label)?.unwrap_or_else(IndexDoc::empty);
    let dropped = doc.add(entry);
    write_atomic_sync(&layout.index_path(), &doc.to_bytes())?;
    collect_garbage(layout, &doc, &dropped);
    Ok(())
}

/// Removes the image `reference` names from the layout at `path` (for `scry delete
/// oci:PATH:NAME`), then the blobs no remaining entry uses (manifests, their configs
/// and layers, an index's children). Blobs in a shared blob directory are kept: other
/// layouts may use them. A missing layout or name is `NotFound`.
pub async fn delete(
    path: &Path,
    reference: Option<&str>,
    index: Option<usize>,
    shared_blob_dir: Option<&Path>,
) -> Result<()> {
    let describe = super::describe_name("oci", path, reference, index);
    let layout = Layout::new(path, shared_blob_dir);
    let selector = match (reference, index) {
        (Some(r), _) => Selector::Name(r.to_string()),
        (None, Some(i)) => Selector::Index(i),
        (None, None) => Selector::Only,
    };
    localfs::blocking(move || {
        let label = layout.index_path().display().to_string();
        if !layout.dir.is_dir() {
            return Err(Error::NotFound(format!(
                "{}: no such directory",
                layout.dir.display()
            )));
        }
        let _lock = lock_layout(&layout.dir)?;
        let mut doc = read_index_sync(&layout, &label)?
            .ok_or_else(|| Error::NotFound(format!("{label}: no such file")))?;
        let removed = doc.remove(&selector, &label)?;
        write_atomic_sync(&layout.index_path(), &doc.to_bytes())?;
        collect_garbage(&layout, &doc, &removed);
        Ok(())
    })
    .await
    .map_err(|e| e.context(format!("deleting {describe}")))
}

/// Undoes what an abandoned destination added to `layout`: under the layout lock,
/// removes the blob files it created (`created_blobs`) that no index.json entry
/// reaches, then the directories it created (`created_dirs`, parents first) that are
/// empty again — with the `oci-layout` file when the layout directory is among them
/// and holds no index.json (no writer committed there). Blobs in a shared blob
/// directory are kept: other layouts may use them. Best effort: what cannot be
/// checked is kept.
pub(crate) fn abandon(layout: &Layout, created_blobs: &[String], created_dirs: &[PathBuf]) {
    if !layout.dir.is_dir() {
        return;
    }
    let Ok(_lock) = lock_layout(&layout.dir) else {
        return;
    };
    let label = layout.index_path().display().to_string();
    if !layout.shared_blobs && !created_blobs.is_empty() {
        let mut keep = HashSet::new();
        let used = match read_index_sync(layout, &label) {
            Ok(Some(doc)) => doc.entries().iter().try_for_each(|e| {
                walk(layout, field(e, "digest"), field(e, "mediaType"), &mut keep)
            }),
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        match used {
            Ok(()) => {
                for d in created_blobs.iter().filter(|d| !keep.contains(*d)) {
                    if let Ok(p) = layout.blob_path(d) {
                        let _ = std::fs::remove_file(p);
                    }
                }
            }
            Err(err) => tracing::warn!(
                "not removing the blobs an unfinished copy left in {}: {err}",
                layout.dir.display()
            ),
        }
    }
    if created_dirs.contains(&layout.dir) && !layout.index_path().exists() {
        let _ = std::fs::remove_file(layout.layout_file());
    }
    for d in created_dirs.iter().rev() {
        // Fails, and keeps the directory, when anything is in it.
        let _ = std::fs::remove_dir(d);
    }
}

/// Deletes blobs reachable from `dropped` but not from `doc`'s entries. Best effort:
/// when what the remaining entries use cannot be fully known, nothing is deleted.
fn collect_garbage(layout: &Layout, doc: &IndexDoc, dropped: &[Value]) {
    if dropped.is_empty() || layout.shared_blobs {
        return;
    }
    let mut keep = HashSet::new();
    for e in doc.entries() {
        if let Err(err) = walk(layout, field(e, "digest"), field(e, "mediaType"), &mut keep) {
            tracing::warn!(
                "not removing unused blobs of {}: {err}",
                layout.dir.display()
            );
            return;
        }
    }
    let mut gone = HashSet::new();
    for e in dropped {
        // What cannot be read is left in place.
        let _ = walk(layout, field(e, "digest"), field(e, "mediaType"), &mut gone);
    }
    for d in gone.difference(&keep) {
        if let Ok(p) = layout.blob_path(d) {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("removing {}: {e}", p.display()),
            }
        }
    }
}

/// Adds `digest` and every blob it refers to (transitively) to `seen`. A manifest that
/// is missing is fine (nothing more to add); one that cannot be parsed is an error.
fn walk(layout: &Layout, digest: &str, declared: &str, seen: &mut HashSet<String>) -> Result<()> {
    if !seen.insert(digest.to_string()) {
        return Ok(());
    }
    let p = layout.blob_path(digest)?;
    let bytes = match read_limited_sync(&p, MAX_MANIFEST_SIZE) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::from(e).context(p.display().to_string())),
    };
    let mt = media_type_of(declared, &bytes);
    let m = Manifest::parse(&bytes, &mt).map_err(|e| e.context(p.display().to_string()))?;
    for child in m.instances() {
        walk(layout, &child.digest, &child.media_type, seen)?;
    }
    for blob in m.config().into_iter().chain(m.layers()) {
        if manifest::validate_digest(&blob.digest).is_ok() {
            seen.insert(blob.digest);
        }
    }
    Ok(())
}
