//! An image's merged root filesystem as one tar stream (`scry export`).
//!
//! Each layer is fetched once, checked against its digest, into a temporary directory.
//! A first pass lists every layer's entries and decides, from the top layer down, which
//! entry of each path survives: OCI whiteouts (`.wh.NAME`) and opaque directories
//! (`.wh..wh..opq`) hide what lower layers hold, a non-directory hides a lower
//! directory's contents, and a later entry of a layer wins over an earlier one of the
//! same path. A second pass writes the survivors in layer order, each directory where
//! its path first shows as one (with its topmost metadata), so a directory comes before
//! what it holds and a hard link's target before the link. A hard link whose target was
//! replaced or removed above it gets the target's data under its own name.
//!
//! Entries with `..` in their path or that would write the root itself are left out. A
//! layer that ends right after its last file's data (no padding, no end blocks) is
//! read whole; one that ends inside an entry's data is an error.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use crate::copy::compress::sniff;
use crate::digest::VerifyingReader;
use crate::error::{Error, Result};
use crate::layer::tar::{normalize, overlay_role, show, walk, Completed, Overlay};
use crate::manifest::media_types::Compression;
use crate::manifest::Manifest;
use crate::transport::{ImageSource, TempDir};

/// What an export wrote.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Layers read.
    pub layers: usize,
    /// Entries written.
    pub entries: u64,
    /// Entries of the layers left out: hidden, replaced, whiteouts.
    pub dropped: u64,
}

/// Writes the merged filesystem of the single-image manifest `m` of `src` to `out`
/// as a tar stream; layers are kept under `tmpdir` (default: the system temporary
/// directory) while it runs.
pub async fn export<W: Write + Send + 'static>(
    src: &dyn ImageSource,
    m: &Manifest,
    tmpdir: Option<&Path>,
    out: W,
) -> Result<Summary> {
    if m.is_index() {
        return Err(Error::invalid(format!(
            "{} is an index: choose one image of it to export",
            src.describe()
        )));
    }
    let spool = TempDir::create(tmpdir, "scry-export-").await?;
    let mut files = Vec::new();
    for (i, layer) in m.layers().iter().enumerate() {
        let path = spool.path().join(format!("layer-{i}"));
        let what = format!("layer {} of {}", layer.digest, src.describe());
        let (stream, _) = src.blob(layer).await?;
        let size = u64::try_from(layer.size).ok();
        let mut verified = VerifyingReader::new(stream, &layer.digest, size, what.clone());
        let mut file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| Error::from(e).context(format!("creating {}", path.display())))?;
        tokio::io::copy(&mut verified, &mut file)
            .await
            .map_err(|e| Error::from(e).context(format!("fetching {what}")))?;
        file.flush().await?;
        files.push(path);
    }
    let dir = spool.path().to_path_buf();
    let summary = tokio::task::spawn_blocking(move || merge(&files, &dir, out))
        .await
        .map_err(|e| Error::other(format!("export task failed: {e}")))??;
    drop(spool);
    Ok(summary)
}

/// Merges the layer tars in `layers` (bottom first; gzip, zstd or plain) into `out`;
/// `scratch` holds the data of hard-link targets that only lower layers have.
pub fn merge<W: Write>(layers: &[PathBuf], scratch: &Path, out: W) -> Result<Summary> {
    let mut listed = Vec::with_capacity(layers.len());
    for (i, path) in layers.iter().enumerate() {
        let mut items = Vec::new();
        let mut total = 0usize;
        each_entry(path, |index, entry| {
            total += 1;
            if let Some((path, kind)) = classify(entry)? {
                // A directory's metadata, for writing it where it first appears.
                let meta = match kind {
                    Kind::Dir => Some(Box::new(Meta {
                        header: entry.header().clone(),
                        pax: pax_records(entry)?,
                    })),
                    _ => None,
                };
                items.push(Item {
                    index,
                    path,
                    kind,
                    meta,
                });
            }
            Ok(())
        })
        .map_err(|e| Error::from(e).context(format!("reading layer {}", i + 1)))?;
        listed.push((items, total));
    }
    let plan = Plan::new(listed.iter().map(|(items, _)| items.as_slice()).collect());
    let mut b = tar::Builder::new(io::BufWriter::with_capacity(256 << 10, out));
    let mut stash: HashMap<usize, Stashed> = HashMap::new();
    let mut summary = Summary {
        layers: layers.len(),
        ..Summary::default()
    };
    for (l, path) in layers.iter().enumerate() {
        let actions = &plan.actions[l];
        each_entry(path, |index, entry| {
            let Some(action) = actions.get(&index) else {
                return Ok(());
            };
            let name = entry_path(entry).unwrap_or_default();
            match action {
                Action::Keep => append(&mut b, entry, &name, None)?,
                Action::Relink(target) => append(&mut b, entry, &name, Some(target))?,
                Action::DirFrom(l, i) => {
                    let meta = dir_meta(&listed[*l].0, *i).ok_or_else(|| {
                        io::Error::other(format!("directory {} lost its metadata", show(&name)))
                    })?;
                    append_pax(&mut b, &meta.pax)?;
                    let mut h = meta.header.clone();
                    b.append_data(&mut h, as_path(&name), io::empty())?;
                }
                Action::Stash(id) => {
                    let file = scratch.join(format!("stash-{id}"));
                    let pax = pax_records(entry)?;
                    let header = entry.header().clone();
                    io::copy(entry, &mut File::create(&file)?)?;
                    stash.insert(*id, Stashed { header, pax, file });
                    return Ok(());
                }
                Action::Carry(id) => {
                    let s = stash.remove(id).ok_or_else(|| {
                        io::Error::other(format!("hard link {} lost its data", show(&name)))
                    })?;
                    let mut h = s.header;
                    append_pax(&mut b, &s.pax)?;
                    b.append_data(&mut h, as_path(&name), File::open(&s.file)?)?;
                    let _ = std::fs::remove_file(&s.file);
                }
            }
            summary.entries += 1;
            Ok(())
        })
        .map_err(|e| Error::from(e).context(format!("writing layer {}", l + 1)))?;
    }
    let total: u64 = listed.iter().map(|(_, n)| *n as u64).sum();
    summary.dropped = total - summary.entries;
    b.into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::from(e).context("writing the tar stream"))?;
    Ok(summary)
}

/// Calls `f` with every entry of the layer tar at `path` and its position.
fn each_entry(
    path: &Path,
    f: impl FnMut(usize, &mut tar::Entry<'_, Completed<Box<dyn Read>>>) -> io::Result<()>,
) -> io::Result<()> {
    let mut file = File::open(path)?;
    let mut head = [0u8; 4];
    let n = file.read(&mut head)?;
    file.rewind()?;
    let file = BufReader::with_capacity(256 << 10, file);
    let decoded: Box<dyn Read> = match sniff(&head[..n]) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(file)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(file)?),
        Compression::None => Box::new(file),
    };
    walk(decoded, f)
}

/// What an entry is, for merging.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    /// A file, symlink, device or fifo.
    Other,
    /// A hard link to this path.
    HardLink(Vec<u8>),
    /// Hides this path of lower layers.
    Whiteout(Vec<u8>),
    /// Hides what lower layers hold under this directory.
    Opaque(Vec<u8>),
}

#[derive(Debug)]
struct Item {
    index: usize,
    path: Vec<u8>,
    kind: Kind,
    meta: Option<Box<Meta>>,
}

/// The header and PAX records of an entry without data.
#[derive(Debug)]
struct Meta {
    header: tar::Header,
    pax: Vec<(String, Vec<u8>)>,
}

/// What the second pass does with an entry (absent: leave it out).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Keep,
    /// A hard link, written with another target.
    Relink(Vec<u8>),
    /// A directory written with the metadata of its upper version (layer, position).
    DirFrom(usize, usize),
    /// Not written, but its data is kept for the hard link that carries it.
    Stash(usize),
    /// A hard link written as a file with the stashed data.
    Carry(usize),
}

struct Stashed {
    header: tar::Header,
    pax: Vec<(String, Vec<u8>)>,
    file: PathBuf,
}

fn entry_path(e: &tar::Entry<'_, impl Read>) -> Option<Vec<u8>> {
    normalize(&e.path_bytes())
}

/// The entry's normalized path and kind; `None` for entries left out.
fn classify(e: &tar::Entry<'_, impl Read>) -> io::Result<Option<(Vec<u8>, Kind)>> {
    use tar::EntryType as T;
    let t = e.header().entry_type();
    if matches!(
        t,
        T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink
    ) {
        return Ok(None);
    }
    let Some(path) = entry_path(e) else {
        tracing::warn!(
            "leaving out {:?}: its path climbs with ..",
            show(&e.path_bytes())
        );
        return Ok(None);
    };
    if path.is_empty() {
        return Ok(None);
    }
    match overlay_role(&path) {
        Some(Overlay::Empties(dir)) => return Ok(Some((path, Kind::Opaque(dir)))),
        Some(Overlay::Hides(target)) => return Ok(Some((path, Kind::Whiteout(target)))),
        None => {}
    }
    let kind = match t {
        T::Directory => Kind::Dir,
        T::Link => match e.link_name_bytes().and_then(|l| normalize(&l)) {
            Some(target) if !target.is_empty() => Kind::HardLink(target),
            _ => {
                tracing::warn!("leaving out hard link {}: no usable target", show(&path));
                return Ok(None);
            }
        },
        _ => Kind::Other,
    };
    Ok(Some((path, kind)))
}

/// The decisions of the first pass: per layer, entry position → action.
struct Plan {
    actions: Vec<HashMap<usize, Action>>,
}

impl Plan {
    fn new(layers: Vec<&[Item]>) -> Plan {
        let mut actions = vec![HashMap::new(); layers.len()];
        // Top layer down: what upper layers (and later entries) already decided.
        let mut seen: HashSet<&[u8]> = HashSet::new();
        let mut gone: HashSet<&[u8]> = HashSet::new();
        let mut emptied: HashSet<&[u8]> = HashSet::new();
        for (l, items) in layers.iter().enumerate().rev() {
            let (mut new_gone, mut new_emptied) = (Vec::new(), Vec::new());
            for it in items.iter().rev() {
                match &it.kind {
                    Kind::Whiteout(target) => new_gone.push(target.as_slice()),
                    Kind::Opaque(dir) => new_emptied.push(dir.as_slice()),
                    kind => {
                        if seen.contains(it.path.as_slice()) || hidden(&it.path, &gone, &emptied) {
                            continue;
                        }
                        seen.insert(&it.path);
                        if *kind != Kind::Dir {
                            new_emptied.push(&it.path);
                        }
                        actions[l].insert(it.index, Action::Keep);
                    }
                }
            }
            gone.extend(new_gone);
            emptied.extend(new_emptied);
        }
        let mut plan = Plan { actions };
        plan.hoist_dirs(&layers);
        plan.route_hard_links(&layers);
        plan
    }

    /// Writes each kept directory where its path first shows as a directory, so it
    /// comes before everything lower layers put in it; with the kept one's metadata.
    fn hoist_dirs(&mut self, layers: &[&[Item]]) {
        let mut first: HashMap<&[u8], (usize, usize)> = HashMap::new();
        for (l, layer) in layers.iter().enumerate() {
            for it in layer.iter() {
                if it.kind == Kind::Dir {
                    first.entry(&it.path).or_insert((l, it.index));
                }
            }
        }
        for (l, layer) in layers.iter().enumerate() {
            for it in layer.iter() {
                if it.kind != Kind::Dir || self.actions[l].get(&it.index) != Some(&Action::Keep) {
                    continue;
                }
                let (fl, fi) = first[it.path.as_slice()];
                if (fl, fi) != (l, it.index) {
                    self.actions[l].remove(&it.index);
                    self.actions[fl].insert(fi, Action::DirFrom(l, it.index));
                }
            }
        }
    }

    /// Gives every kept hard link a target written before it.
    fn route_hard_links(&mut self, layers: &[&[Item]]) {
        let mut versions: HashMap<&[u8], Vec<(usize, usize)>> = HashMap::new();
        let mut items: HashMap<(usize, usize), &Item> = HashMap::new();
        for (l, layer) in layers.iter().enumerate() {
            for it in layer.iter() {
                if matches!(it.kind, Kind::Whiteout(_) | Kind::Opaque(_)) {
                    continue;
                }
                versions.entry(&it.path).or_default().push((l, it.index));
                items.insert((l, it.index), it);
            }
        }
        let mut carrier: HashMap<(usize, usize), Vec<u8>> = HashMap::new();
        for (l, layer) in layers.iter().enumerate() {
            for it in layer.iter() {
                let Kind::HardLink(target) = &it.kind else {
                    continue;
                };
                if self.actions[l].get(&it.index) != Some(&Action::Keep) {
                    continue;
                }
                // A dangling link stays as it is.
                let Some(src) = resolve(&versions, &items, target, (l, it.index)) else {
                    continue;
                };
                let action = if self.actions[src.0].get(&src.1) == Some(&Action::Keep) {
                    let path = &items[&src].path;
                    if path == target {
                        continue;
                    }
                    Action::Relink(path.clone())
                } else if let Some(c) = carrier.get(&src) {
                    Action::Relink(c.clone())
                } else {
                    let id = carrier.len();
                    self.actions[src.0].insert(src.1, Action::Stash(id));
                    carrier.insert(src, it.path.clone());
                    Action::Carry(id)
                };
                self.actions[l].insert(it.index, action);
            }
        }
    }
}

/// The metadata of the directory entry at position `index` of `items`.
fn dir_meta(items: &[Item], index: usize) -> Option<&Meta> {
    let i = items.binary_search_by_key(&index, |it| it.index).ok()?;
    items[i].meta.as_deref()
}

/// Whether `path` is hidden: whited out itself or below a whited-out, opaque or
/// replaced path.
fn hidden(path: &[u8], gone: &HashSet<&[u8]>, emptied: &HashSet<&[u8]>) -> bool {
    if gone.contains(path) || emptied.contains(&b""[..]) {
        return true;
    }
    let mut end = path.len();
    while let Some(i) = path[..end].iter().rposition(|b| *b == b'/') {
        let up = &path[..i];
        if gone.contains(up) || emptied.contains(up) {
            return true;
        }
        end = i;
    }
    false
}

/// The entry holding the data that a hard link to `target`, at position `before`,
/// refers to: the latest version of `target` before it, through chains of links.
fn resolve(
    versions: &HashMap<&[u8], Vec<(usize, usize)>>,
    items: &HashMap<(usize, usize), &Item>,
    target: &[u8],
    before: (usize, usize),
) -> Option<(usize, usize)> {
    let (mut target, mut before) = (target, before);
    for _ in 0..64 {
        let v = *versions.get(target)?.iter().rev().find(|v| **v < before)?;
        match &items[&v].kind {
            Kind::HardLink(next) => (target, before) = (next.as_slice(), v),
            Kind::Dir => return None,
            _ => return Some(v),
        }
    }
    None
}

/// The entry's PAX records other than those the writer sets again (path, link, size).
fn pax_records(e: &mut tar::Entry<'_, impl Read>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = e.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            if !matches!(key, "path" | "linkpath" | "size") {
                out.push((key.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn append_pax<W: Write>(b: &mut tar::Builder<W>, pax: &[(String, Vec<u8>)]) -> io::Result<()> {
    if pax.is_empty() {
        return Ok(());
    }
    b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
}

/// Writes `e` as `path` (links to `link` when given).
fn append<W: Write>(
    b: &mut tar::Builder<W>,
    e: &mut tar::Entry<'_, impl Read>,
    path: &[u8],
    link: Option<&Vec<u8>>,
) -> io::Result<()> {
    use tar::EntryType as T;
    let pax = pax_records(e)?;
    append_pax(b, &pax)?;
    let mut h = e.header().clone();
    match h.entry_type() {
        T::Link => {
            let target = match link {
                Some(t) => t.clone(),
                None => e
                    .link_name_bytes()
                    .and_then(|l| normalize(&l))
                    .unwrap_or_default(),
            };
            b.append_link(&mut h, as_path(path), as_path(&target))
        }
        T::Symlink => {
            let target = e
                .link_name_bytes()
                .map(|l| l.into_owned())
                .unwrap_or_default();
            b.append_link(&mut h, as_path(path), as_path(&target))
        }
        t => {
            if t == T::GNUSparse {
                // The reader expands the holes: write a plain file of the full size.
                h.set_entry_type(T::Regular);
                h.set_size(e.size());
            }
            b.append_data(&mut h, as_path(path), e)
        }
    }
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

#[cfg(test)]
mod tests;
