//! `docker-archive:` images: the tar files `docker save` writes and `docker load` reads.
//!
//! An archive holds `manifest.json` (a list of images, each naming its config file, its
//! `RepoTags` and its layer files), the config and layer files, and, in the legacy layout,
//! one directory per layer (`<id>/layer.tar`, `<id>/json`, `<id>/VERSION`) plus a
//! `repositories` file. Newer docker stores files as `blobs/sha256/<hex>`; both layouts
//! are read through `manifest.json`, so neither is special here.
//!
//! Compatibility target: containers/image as used by skopeo 1.9.3. Reading synthesises
//! the same Docker schema 2 manifest skopeo does (layer digests are the config's
//! `diff_ids`, compressed layers are served decompressed), so `Digest` agrees; writing
//! produces byte-for-byte the archive skopeo writes for the same image and tags.
//!
//! Untrusted input rules: the archive is never extracted; entry names that are absolute
//! or contain `..` are refused, as are links that resolve outside the archive's root;
//! `manifest.json` is read up to 1 MiB and configs up to 4 MiB.

mod compress;
mod dest;
mod files;
mod source;
mod tarindex;
mod writer;

#[cfg(test)]
mod tests_dest;
#[cfg(test)]
mod tests_interop;
#[cfg(test)]
mod tests_source;
#[cfg(test)]
mod testutil;

use std::path::Path;

pub use dest::DockerArchiveDestination;
pub use source::DockerArchiveSource;

use crate::error::{Error, Result};
use crate::reference::DockerReference;

/// Name of the image list inside an archive.
const MANIFEST_FILE: &str = "manifest.json";
/// Name of the legacy tag → top layer ID map.
const REPOSITORIES_FILE: &str = "repositories";
/// Largest `manifest.json` read (as containers/image).
pub const MAX_ARCHIVE_MANIFEST_SIZE: u64 = 1024 * 1024;

/// Layer media type of an uncompressed docker layer (what a destination stores).
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// One element of `manifest.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestItem {
    /// Path of the image config inside the archive.
    pub config: String,
    /// Tags as written (docker writes short names, skopeo fully qualified ones).
    pub repo_tags: Vec<String>,
    /// Paths of the layer files, base first.
    pub layers: Vec<String>,
}

/// Parses `manifest.json` the way Go's `encoding/json` fills `[]ManifestItem`: member
/// names match case-insensitively, `null` leaves the zero value, a later duplicate
/// member overrides an earlier one, unknown members are ignored.
fn parse_manifest_items(bytes: &[u8]) -> Result<Vec<ManifestItem>> {
    let fail = |e: String| Error::invalid(format!("decoding tar manifest.json: {e}"));
    let sanitized = crate::manifest::sanitize_input(bytes);
    let value: serde_json::Value =
        serde_json::from_slice(&sanitized).map_err(|e| fail(e.to_string()))?;
    let list = match value {
        serde_json::Value::Null => return Ok(Vec::new()),
        serde_json::Value::Array(a) => a,
        other => return Err(fail(format!("expected a list of images, got {other}"))),
    };
    let strings = |v: &serde_json::Value, what: &str| -> Result<Vec<String>> {
        match v {
            serde_json::Value::Null => Ok(Vec::new()),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| fail(format!("{what}: expected strings, got {s}")))
                })
                .collect(),
            other => Err(fail(format!("{what}: expected a list, got {other}"))),
        }
    };
    let mut items = Vec::with_capacity(list.len());
    for entry in &list {
        let mut item = ManifestItem::default();
        let obj = match entry {
            serde_json::Value::Null => {
                items.push(item);
                continue;
            }
            serde_json::Value::Object(o) => o,
            other => return Err(fail(format!("expected an image object, got {other}"))),
        };
        for (key, v) in obj {
            if key.eq_ignore_ascii_case("Config") {
                item.config = match v {
                    serde_json::Value::Null => String::new(),
                    serde_json::Value::String(s) => s.clone(),
                    other => return Err(fail(format!("Config: expected a string, got {other}"))),
                };
            } else if key.eq_ignore_ascii_case("RepoTags") {
                item.repo_tags = strings(v, "RepoTags")?;
            } else if key.eq_ignore_ascii_case("Layers") {
                item.layers = strings(v, "Layers")?;
            }
        }
        items.push(item);
    }
    Ok(items)
}

/// Picks the image `reference` or `index` names, or the only one when neither is given.
/// Failures are `InvalidInput` (skopeo exits 1 for them, not 2). Returns the item's position and, when chosen by tag, the position of the matching tag.
fn choose_item(
    items: &[ManifestItem],
    reference: Option<&DockerReference>,
    index: Option<usize>,
) -> Result<(usize, Option<usize>)> {
    match (reference, index) {
        (Some(r), Some(i)) => Err(Error::invalid(format!(
            "cannot choose an image by both reference {r} and index @{i}"
        ))),
        (Some(r), None) => {
            let wanted = r.to_string();
            for (i, item) in items.iter().enumerate() {
                for (t, tag) in item.repo_tags.iter().enumerate() {
                    let parsed = DockerReference::parse(tag).map_err(|e| {
                        Error::invalid(format!(
                            "Invalid tag {tag:?} in manifest.json item @{i}: {e}"
                        ))
                    })?;
                    if parsed.to_string() == wanted {
                        return Ok((i, Some(t)));
                    }
                }
            }
            Err(Error::invalid(format!("Tag {wanted:?} not found")))
        }
        (None, Some(i)) => {
            if i >= items.len() {
                return Err(Error::invalid(format!(
                    "Invalid source index @{i}, only {} manifest items available",
                    items.len()
                )));
            }
            Ok((i, None))
        }
        (None, None) => {
            if items.len() != 1 {
                return Err(Error::invalid(format!(
                    "Unexpected tar manifest.json: expected 1 item, got {}",
                    items.len()
                )));
            }
            Ok((0, None))
        }
    }
}

/// What `skopeo list-tags docker-archive:PATH` lists: for every image, each of its tags as
/// written in `manifest.json` (a tag that an earlier image also carries is reported as
/// that image spells it), or `@N` for an image without tags.
///
/// Reads the archive sequentially up to `manifest.json` (through gzip or zstd when the
/// archive is compressed); nothing is written. Blocking I/O.
pub fn list_tags(path: &Path) -> Result<Vec<String>> {
    let what = format!("docker-archive:{}", path.display());
    let bytes = tarindex::read_manifest_sequentially(path)
        .map_err(|e| e.context(format!("reading {what}")))?;
    let items = parse_manifest_items(&bytes).map_err(|e| e.context(format!("reading {what}")))?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        if item.repo_tags.is_empty() {
            out.push(format!("@{i}"));
            continue;
        }
        for tag in &item.repo_tags {
            let parsed = DockerReference::parse(tag).map_err(|e| {
                Error::invalid(format!("Invalid tag {tag:?} in manifest item @{i}: {e}"))
            })?;
            if parsed.tag().is_none() || parsed.digest().is_some() {
                return Err(Error::invalid(format!(
                    "Invalid tag {tag} ({parsed}): does not contain a tag"
                )));
            }
            let (j, t) = choose_item(&items, Some(&parsed), None)?;
            out.push(items[j].repo_tags[t.unwrap_or(0)].clone());
        }
    }
    Ok(out)
}
