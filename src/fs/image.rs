//! Image directories (tag, digest and platform directories): the OCI image layout
//! (`oci-layout`, `index.json`, `blobs/`), `manifest.json`, `config.json`,
//! `inspect.json`, `layers/`, one directory per platform of an index, and `copy-to/`.
//!
//! What each directory holds:
//! - image manifest (OCI or Docker schema 2): all of the above but platform dirs;
//! - index or manifest list: `oci-layout`, `index.json`, `manifest.json` (the index),
//!   `inspect.json` (for the configured platform, as `inspect` chooses),
//!   `blobs/` (the index, every child manifest and their blobs), `copy-to/` and
//!   `OS-ARCH[-VARIANT]/`;
//! - schema 1: `manifest.json`, `inspect.json` and `copy-to/` (it has no OCI layout).
//!
//! Files are named by content (their inode is shared wherever the same bytes appear);
//! the directories are resolved again on each operation, so a tag that moved shows
//! its new image once the tag TTL has passed.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::json;

use super::error::{FsError, FsErrorKind, FsResult};
use super::inode::Key;
use super::layout::LayoutManifest;
use super::meta::ManifestEntry;
use super::node::{Content, FileNode, LocKind, Locator, Node, Sub};
use super::types::FileType;
use super::Fs;
use crate::manifest::media_types::{self, is_non_distributable_layer};
use crate::manifest::{
    build_inspect, choose_instance, to_go_json_indent, BlobRef, Instance, Manifest, Platform,
};

/// Content of every `oci-layout` file.
pub(crate) const OCI_LAYOUT: &str = "{\"imageLayoutVersion\": \"1.0.0\"}\n";
/// The annotation naming an image in an OCI layout's index.
pub(crate) const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// How deep indexes inside indexes are followed.
pub(crate) const MAX_INDEX_DEPTH: usize = 4;

/// One entry of an image directory or of its subdirectories, before it is made a node.
pub(crate) struct Child {
    pub name: String,
    pub key: Key,
    pub kind: FileType,
    pub make: Make,
}

pub(crate) enum Make {
    Dir(Node),
    Symlink(String),
    Inline(Bytes),
    /// A manifest (the image's own or an index child's), by digest.
    Manifest(String),
    Config(BlobRef),
    Layer(BlobRef),
    /// `inspect.json`, with the repository's tags (as fresh as the tag list) as
    /// `RepoTags`: keyed by path and made again at each lookup.
    Inspect,
    /// `index.json`, naming the image by this tag (when it has one).
    LayoutIndex(Option<String>),
    /// A non-directory of a tree (see [`super::rootfs`]).
    Tar(Arc<crate::layer::tree::Tree>, crate::layer::tree::Id),
}

/// `os-arch[-variant]` for an index entry; `None` when a part is missing or has
/// characters unfit for a file name.
fn platform_name(p: &Platform) -> Option<String> {
    let fit = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if !fit(&p.os) || !fit(&p.architecture) {
        return None;
    }
    let mut name = format!("{}-{}", p.os, p.architecture);
    if !p.variant.is_empty() {
        if !fit(&p.variant) {
            return None;
        }
        name = format!("{name}-{}", p.variant);
    }
    Some(name)
}

/// The platform directories of an index, in index order; a repeated platform gets
/// `-2`, `-3`, … appended. Entries without a platform have no directory.
pub(crate) fn platform_dirs(m: &Manifest) -> Vec<(String, Instance)> {
    let mut used = BTreeSet::new();
    let mut out = Vec::new();
    for inst in m.instances() {
        let Some(base) = inst.platform.as_ref().and_then(platform_name) else {
            continue;
        };
        let mut name = base.clone();
        let mut n = 1;
        while !used.insert(name.clone()) {
            n += 1;
            name = format!("{base}-{n}");
        }
        out.push((name, inst));
    }
    out
}

/// File name suffix of `layers/N…` for a layer media type.
pub(crate) fn layer_suffix(media_type: &str) -> &'static str {
    use media_types::*;
    match media_type {
        OCI_LAYER_GZIP | OCI_LAYER_NONDIST_GZIP | DOCKER_LAYER_GZIP | DOCKER_FOREIGN_LAYER => {
            ".tar.gz"
        }
        OCI_LAYER_ZSTD | OCI_LAYER_NONDIST_ZSTD | DOCKER_LAYER_ZSTD => ".tar.zst",
        OCI_LAYER_TAR | OCI_LAYER_NONDIST_TAR => ".tar",
        _ => ".bin",
    }
}

/// Whether a layer is in `blobs/`: it has a size, and it is not a non-distributable
/// layer that names where to fetch it instead (an OCI layout may omit those).
fn listed_layer(b: &BlobRef) -> bool {
    b.size >= 0
        && !(is_non_distributable_layer(&b.media_type)
            && b.urls.as_ref().is_some_and(|u| !u.is_empty()))
}

/// The `index.json` of an image directory: one entry, the directory's manifest in
/// its OCI form (see [`super::layout`]).
pub(crate) fn index_json(m: &LayoutManifest, ref_name: Option<&str>) -> Bytes {
    let mut desc = json!({
        "mediaType": m.media_type,
        "digest": m.digest,
        "size": m.bytes.len(),
    });
    if let Some(r) = ref_name {
        desc["annotations"] = json!({ REF_NAME: r });
    }
    let doc = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": [desc],
    });
    Bytes::from(to_go_json_indent(&doc) + "\n")
}

fn file(name: &str, key: Key, make: Make) -> Child {
    Child {
        name: name.to_string(),
        key,
        kind: FileType::RegularFile,
        make,
    }
}

impl Fs {
    fn content_key(loc: &Locator, digest: &str, name: &str) -> Key {
        Key::Content {
            registry: loc.registry.clone(),
            repo: loc.repo.clone(),
            digest: digest.to_string(),
            name: name.to_string(),
        }
    }

    fn blob_key(loc: &Locator, digest: &str) -> Key {
        Fs::content_key(loc, digest, "blob")
    }

    fn sub_dir(ino: u64, loc: &Arc<Locator>, name: &str, sub: Sub) -> Child {
        Child {
            name: name.to_string(),
            key: Key::Child(ino, name.to_string()),
            kind: FileType::Directory,
            make: Make::Dir(Node::ImageSub {
                loc: loc.clone(),
                sub,
            }),
        }
    }

    /// The entries of image directory `ino` (`sub` `None`) or of its subdirectory
    /// `sub` (not `copy-to/`), with the manifest they were computed from.
    pub(crate) async fn image_children(
        &self,
        ino: u64,
        loc: &Arc<Locator>,
        sub: Option<&Sub>,
    ) -> FsResult<(Arc<ManifestEntry>, Vec<Child>)> {
        if let Some(Sub::Tree { view, path }) = sub {
            return self.tree_children(ino, loc, *view, path).await;
        }
        let entry = self.meta.resolve(loc).await?;
        let children = match sub {
            Some(Sub::Tree { .. }) => Vec::new(),
            None => self.top_children(ino, loc, &entry),
            Some(Sub::Blobs) => {
                let algorithms: BTreeSet<String> = self
                    .collect_blobs(loc, &entry)
                    .await?
                    .iter()
                    .filter_map(|(d, _)| d.split_once(':').map(|(a, _)| a.to_string()))
                    .collect();
                algorithms
                    .into_iter()
                    .map(|a| Fs::sub_dir(ino, loc, &a.clone(), Sub::BlobAlg(a)))
                    .collect()
            }
            Some(Sub::BlobAlg(alg)) => self
                .collect_blobs(loc, &entry)
                .await?
                .into_iter()
                .filter_map(|(digest, make)| {
                    let (a, hex) = digest.split_once(':')?;
                    (a == alg).then(|| file(hex, Fs::blob_key(loc, &digest), make))
                })
                .collect(),
            Some(Sub::Layers) => self.layer_links(ino, loc, &entry),
            Some(Sub::CopyTo) => Vec::new(),
        };
        Ok((entry, children))
    }

    /// The repository's tags for `inspect.json` (as fresh as the tag list; none when
    /// the list cannot be had, which does not fail the directory).
    async fn repo_tags(&self, loc: &Locator) -> Arc<Vec<String>> {
        match self.meta.tags(&loc.registry, &loc.repo).await {
            Ok(super::meta::TagProbe::Tags(t)) => t,
            _ => Arc::new(Vec::new()),
        }
    }

    fn top_children(&self, ino: u64, loc: &Arc<Locator>, entry: &ManifestEntry) -> Vec<Child> {
        let m = &entry.manifest;
        let mut out = Vec::new();
        let layout = !matches!(m, Manifest::Schema1(_));
        if layout {
            let global = Key::Content {
                registry: String::new(),
                repo: String::new(),
                digest: String::new(),
                name: "oci-layout".into(),
            };
            out.push(file(
                "oci-layout",
                global,
                Make::Inline(Bytes::from(OCI_LAYOUT)),
            ));
            let ref_name = loc.ref_name();
            let role = format!("index.json:{}", ref_name.unwrap_or(""));
            out.push(file(
                "index.json",
                Fs::content_key(loc, &entry.digest, &role),
                Make::LayoutIndex(ref_name.map(str::to_string)),
            ));
        }
        out.push(file(
            "manifest.json",
            Fs::blob_key(loc, &entry.digest),
            Make::Manifest(entry.digest.clone()),
        ));
        if let Some(config) = m.config() {
            out.push(file(
                "config.json",
                Fs::blob_key(loc, &config.digest),
                Make::Config(config),
            ));
        }
        let inspectable = match m {
            Manifest::OciIndex(_) | Manifest::DockerList(_) => {
                choose_instance(m, &self.config.platform).is_ok()
            }
            _ => m.artifact_type().is_none(),
        };
        if inspectable {
            // By path: the tags it lists change while the image does not.
            out.push(file(
                "inspect.json",
                Key::Child(ino, "inspect.json".into()),
                Make::Inspect,
            ));
        }
        if layout {
            out.push(Fs::sub_dir(ino, loc, "blobs", Sub::Blobs));
        }
        if matches!(m, Manifest::Oci(_) | Manifest::Docker2(_)) {
            out.push(Fs::sub_dir(ino, loc, "layers", Sub::Layers));
            if m.artifact_type().is_none() {
                let root = Sub::Tree {
                    view: None,
                    path: Vec::new(),
                };
                out.push(Fs::sub_dir(ino, loc, "rootfs", root));
            }
        }
        out.push(Fs::sub_dir(ino, loc, "copy-to", Sub::CopyTo));
        for (name, _) in platform_dirs(m) {
            out.push(Child {
                name: name.clone(),
                key: Key::Child(ino, name.clone()),
                kind: FileType::Directory,
                make: Make::Dir(Node::Image {
                    loc: Arc::new(Locator {
                        registry: loc.registry.clone(),
                        repo: loc.repo.clone(),
                        kind: LocKind::Platform {
                            parent: loc.clone(),
                            name,
                        },
                    }),
                }),
            });
        }
        out
    }

    fn layer_links(&self, ino: u64, loc: &Arc<Locator>, entry: &ManifestEntry) -> Vec<Child> {
        let mut out = Vec::new();
        for (i, layer) in entry.manifest.layers().into_iter().enumerate() {
            let Some((alg, hex)) = layer.digest.split_once(':') else {
                continue;
            };
            if !listed_layer(&layer) {
                continue;
            }
            let suffix = layer_suffix(&layer.media_type);
            if suffix != ".bin" {
                let tree = Sub::Tree {
                    view: Some(i),
                    path: Vec::new(),
                };
                out.push(Fs::sub_dir(ino, loc, &i.to_string(), tree));
            }
            let name = format!("{i}{suffix}");
            out.push(Child {
                key: Fs::content_key(loc, &entry.digest, &format!("layers/{name}")),
                name,
                kind: FileType::Symlink,
                make: Make::Symlink(format!("../blobs/{alg}/{hex}")),
            });
        }
        out
    }

    /// Every blob of the layout, each once, in a stable order: the manifest, then its
    /// config and layers, or for an index each child's (children the registry does
    /// not have are left out, as in a sparse copy).
    async fn collect_blobs(
        &self,
        loc: &Locator,
        entry: &Arc<ManifestEntry>,
    ) -> FsResult<Vec<(String, Make)>> {
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        self.collect_into(loc, entry, 0, &mut out, &mut seen)
            .await?;
        Ok(out)
    }

    async fn collect_into(
        &self,
        loc: &Locator,
        entry: &Arc<ManifestEntry>,
        depth: usize,
        out: &mut Vec<(String, Make)>,
        seen: &mut BTreeSet<String>,
    ) -> FsResult<()> {
        let mut push = |digest: &str, make: Make| {
            if crate::manifest::validate_digest(digest).is_ok() && seen.insert(digest.to_string()) {
                out.push((digest.to_string(), make));
            }
        };
        push(&entry.digest, Make::Manifest(entry.digest.clone()));
        if matches!(
            entry.manifest,
            Manifest::Docker2(_) | Manifest::DockerList(_)
        ) {
            let form = self.layout_manifest(loc, entry).await?;
            push(&form.digest, Make::Inline(form.bytes));
        }
        let m = &entry.manifest;
        match m {
            Manifest::Oci(_) | Manifest::Docker2(_) => {
                if let Some(c) = m.config().filter(|c| c.size >= 0) {
                    push(&c.digest.clone(), Make::Config(c));
                }
                for l in m.layers().into_iter().filter(listed_layer) {
                    push(&l.digest.clone(), Make::Layer(l));
                }
            }
            Manifest::OciIndex(_) | Manifest::DockerList(_) if depth < MAX_INDEX_DEPTH => {
                let fetches = m.instances().into_iter().map(|i| async move {
                    self.meta
                        .manifest(&loc.registry, &loc.repo, &i.digest)
                        .await
                });
                let children = join_all(fetches).await;
                for child in children {
                    match child {
                        Ok(c) => Box::pin(self.collect_into(loc, &c, depth + 1, out, seen)).await?,
                        Err(e) if e.kind() == FsErrorKind::NotFound => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Makes the node for `make`, fetching what its attributes need (the config, for
    /// the mtime; small files' bytes). Layer bytes are not fetched.
    pub(crate) async fn materialize(
        &self,
        loc: &Locator,
        entry: &ManifestEntry,
        make: Make,
    ) -> FsResult<Node> {
        let (reg, repo) = (&loc.registry, &loc.repo);
        let make = match make {
            Make::Dir(node) => return Ok(node),
            Make::Tar(tree, id) => {
                return Ok(Node::Tar(Arc::new(super::rootfs::TarNode {
                    tree,
                    id,
                    registry: reg.clone(),
                    repo: repo.clone(),
                })))
            }
            other => other,
        };
        let mtime = self.meta.mtime(reg, repo, entry).await?;
        let refreshed = matches!(make, Make::Inspect);
        let inline = |b: Bytes| (b.len() as u64, Content::Inline(b));
        let (size, content) = match make {
            Make::Dir(node) => return Ok(node),
            Make::Tar(..) => return Err(FsError::io("a tree entry made twice")),
            Make::Symlink(target) => return Ok(Node::Symlink { target, mtime }),
            Make::Inline(b) => inline(b),
            Make::Manifest(d) => inline(self.meta.manifest(reg, repo, &d).await?.bytes.clone()),
            Make::Config(c) => inline(self.meta.config(reg, repo, &c).await?.bytes.clone()),
            Make::Inspect => {
                let tags = self.repo_tags(loc).await;
                inline(self.inspect_json(loc, entry, &tags).await?)
            }
            Make::LayoutIndex(ref_name) => {
                let form = self.layout_manifest(loc, entry).await?;
                inline(index_json(&form, ref_name.as_deref()))
            }
            Make::Layer(l) => (
                u64::try_from(l.size)
                    .map_err(|_| FsError::io(format!("layer {} has no size", l.digest)))?,
                Content::Blob {
                    registry: reg.clone(),
                    repo: repo.clone(),
                    digest: l.digest.clone(),
                },
            ),
        };
        Ok(Node::File(Arc::new(FileNode {
            content,
            size,
            mtime,
            refreshed,
        })))
    }

    /// What `scry inspect docker://…` prints for this image (for an index, for the
    /// configured platform), `RepoTags` listing the repository's `tags`.
    async fn inspect_json(
        &self,
        loc: &Locator,
        top: &ManifestEntry,
        tags: &[String],
    ) -> FsResult<Bytes> {
        let (reg, repo) = (&loc.registry, &loc.repo);
        let image = if top.manifest.is_index() {
            let digest = choose_instance(&top.manifest, &self.config.platform)
                .map_err(|e| FsError::not_found(e.to_string()))?;
            Some(self.meta.manifest(reg, repo, &digest).await?)
        } else {
            None
        };
        let m = image.as_deref().map_or(&top.manifest, |e| &e.manifest);
        let config = match m.config() {
            Some(c) => Some(self.meta.config(reg, repo, &c).await?.bytes.clone()),
            None => None,
        };
        let config = m
            .image_config(config.as_deref())
            .map_err(|e| FsError::io(format!("inspecting {reg}/{repo}@{}: {e}", top.digest)))?;
        let out = build_inspect(
            &format!("{reg}/{repo}"),
            &top.digest,
            m,
            &config,
            Some(tags.to_vec()),
        )
        .with_layers_data(m);
        Ok(Bytes::from(to_go_json_indent(&out) + "\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_and_platform_names() {
        assert_eq!(layer_suffix(media_types::DOCKER_LAYER_GZIP), ".tar.gz");
        assert_eq!(layer_suffix(media_types::OCI_LAYER_ZSTD), ".tar.zst");
        assert_eq!(layer_suffix(media_types::OCI_LAYER_TAR), ".tar");
        assert_eq!(layer_suffix("application/vnd.example+json"), ".bin");
        let p = |os: &str, arch: &str, variant: &str| Platform {
            os: os.into(),
            architecture: arch.into(),
            variant: variant.into(),
            ..Platform::default()
        };
        assert_eq!(
            platform_name(&p("linux", "arm", "v7")).unwrap(),
            "linux-arm-v7"
        );
        assert_eq!(
            platform_name(&p("linux", "amd64", "")).unwrap(),
            "linux-amd64"
        );
        assert_eq!(platform_name(&p("linux", "", "")), None);
        assert_eq!(platform_name(&p("linux", "../x", "")), None);
        assert_eq!(platform_name(&p("linux", "amd64", "a/b")), None);
    }
}
