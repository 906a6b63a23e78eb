//! The upper tree: the root (registries), registry directories and namespace/repository
//! directories, including the `REPO:TAG`, `REPO@DIGEST` and `sha256:HEX` forms.
//!
//! A name is checked against the docker reference grammar before the backend hears of
//! it, so `ls` probing for `.git` or `Thumbs.db` costs no request.
//!
//! Namespaces: with a catalog, a namespace exists exactly when a repository lies under
//! it (or it is a repository with tags). Without one (most public registries), a valid
//! name under something that is not a repository is accepted as a namespace, since
//! there is no way to tell; below a repository, a name must be a tag or a repository
//! with tags.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::error::{FsError, FsErrorKind, FsResult};
use super::inode::Key;
use super::meta::TagProbe;
use super::node::{api_repo, LocKind, Locator, Node};
use super::types::{FileType, ROOT_INO};
use super::Fs;
use crate::manifest::validate_digest;
use crate::reference::DockerReference;

/// A registry name: `host[:port]` with a `.` or `:`, or `localhost`.
pub(crate) fn valid_registry(name: &str) -> bool {
    (name.contains(['.', ':']) || name == "localhost")
        && DockerReference::parse(&format!("{name}/x")).is_ok_and(|r| r.registry() == name)
}

/// The registry a colon-free alias names: `HOST_PORT` → `HOST:PORT` (host names
/// never hold `_`, so the alias is unambiguous). Tools that split `oci:PATH:TAG` at
/// the first `:` reach a registry with a port through it.
pub(crate) fn alias_target(name: &str) -> Option<String> {
    let (host, port) = name.rsplit_once('_')?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let target = format!("{host}:{port}");
    valid_registry(&target).then_some(target)
}

/// A tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub(crate) fn valid_tag(name: &str) -> bool {
    DockerReference::parse(&format!("localhost/x:{name}")).is_ok()
}

/// Whether `path` is a valid repository path on `registry` (components, length).
fn valid_repo_path(registry: &str, path: &str) -> bool {
    DockerReference::parse(&format!("{registry}/{path}"))
        .is_ok_and(|r| r.registry() == registry && r.repository() == api_repo(registry, path))
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}/{name}")
    }
}

fn not_found(registry: &str, path: &str) -> FsError {
    FsError::not_found(format!(
        "{registry}/{path}: no such repository, namespace or tag"
    ))
}

/// What the directory being looked in is, as far as its tag list tells.
enum Here {
    NotRepo,
    Repo,
    Denied(FsError),
}

/// The next path components under `path` of the catalog's repositories.
fn catalog_children(catalog: &[String], registry: &str, path: &str) -> BTreeSet<String> {
    let prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{}/", api_repo(registry, path))
    };
    catalog
        .iter()
        .filter_map(|r| r.strip_prefix(&prefix))
        .filter_map(|rest| rest.split('/').next())
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

impl Fs {
    pub(crate) fn lookup_root(&self, name: &str) -> FsResult<(Key, Node)> {
        let key = Key::Child(ROOT_INO, name.to_string());
        if name == ".scry" {
            return Ok((key, Node::Control));
        }
        if let Some(target) = alias_target(name) {
            // Not listed (the root stays one entry per registry), but always there.
            return Ok((
                key,
                Node::Symlink {
                    target,
                    mtime: self.mounted_at,
                },
            ));
        }
        if !valid_registry(name) {
            return Err(FsError::not_found(format!(
                "{name:?} is not a registry name"
            )));
        }
        Ok((
            key,
            Node::Registry {
                registry: name.to_string(),
            },
        ))
    }

    pub(crate) async fn list_root(&self) -> FsResult<Vec<(String, Key, FileType)>> {
        let mut names: BTreeSet<String> =
            self.meta.backend.known_registries().into_iter().collect();
        names.extend(
            self.used_registries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        let mut out = vec![(
            ".scry".to_string(),
            Key::Child(ROOT_INO, ".scry".into()),
            FileType::Directory,
        )];
        out.extend(
            names
                .into_iter()
                .filter(|n| valid_registry(n))
                .map(|n| (n.clone(), Key::Child(ROOT_INO, n), FileType::Directory)),
        );
        Ok(out)
    }

    fn image_node(&self, registry: &str, repo: String, kind: LocKind) -> Node {
        self.used_registries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(registry.to_string());
        Node::Image {
            loc: Arc::new(Locator {
                registry: registry.to_string(),
                repo,
                kind,
            }),
        }
    }

    /// Looks `name` up in the registry directory (`path` empty) or a namespace or
    /// repository directory.
    pub(crate) async fn lookup_repo(
        &self,
        parent: u64,
        registry: &str,
        path: &str,
        name: &str,
    ) -> FsResult<(Key, Node)> {
        let key = Key::Child(parent, name.to_string());
        // `sha256:HEX` under a repository (a malformed one is no `REPO:TAG`).
        let digest_form = ["sha256:", "sha384:", "sha512:"]
            .iter()
            .any(|p| name.starts_with(p));
        if !path.is_empty() && digest_form {
            if validate_digest(name).is_err() {
                return Err(not_found(registry, &join(path, name)));
            }
            let repo = api_repo(registry, path);
            self.meta.manifest(registry, &repo, name).await?;
            let node = self.image_node(registry, repo, LocKind::Digest(name.to_string()));
            return Ok((key, node));
        }
        // `REPO@DIGEST` and `REPO:TAG` beside the repository's own directory.
        if let Some((repo_name, digest)) = name.split_once('@') {
            let sub = join(path, repo_name);
            if !valid_repo_path(registry, &sub) || validate_digest(digest).is_err() {
                return Err(not_found(registry, &join(path, name)));
            }
            let repo = api_repo(registry, &sub);
            self.meta.manifest(registry, &repo, digest).await?;
            return Ok((
                key,
                self.image_node(registry, repo, LocKind::Digest(digest.into())),
            ));
        }
        if let Some((repo_name, tag)) = name.split_once(':') {
            let sub = join(path, repo_name);
            if !valid_repo_path(registry, &sub) || !valid_tag(tag) {
                return Err(not_found(registry, &join(path, name)));
            }
            let repo = api_repo(registry, &sub);
            return match self.meta.tags(registry, &repo).await? {
                TagProbe::Tags(t) if t.iter().any(|x| x == tag) => Ok((
                    key,
                    self.image_node(registry, repo, LocKind::Tag(tag.into())),
                )),
                TagProbe::Missing(e) if e.kind() == FsErrorKind::Access => Err(e),
                _ => Err(not_found(registry, &join(path, name))),
            };
        }

        let sub = join(path, name);
        let (tag_ok, sub_ok) = (valid_tag(name), valid_repo_path(registry, &sub));
        if !tag_ok && !sub_ok {
            return Err(not_found(registry, &sub));
        }
        // The catalog only saves round trips here: without it (a registry whose
        // catalog fails) names are looked up by asking for tags, as for registries
        // that offer none.
        let catalog = match self.meta.catalog(registry).await {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!("{registry}: looking up {sub} without the catalog: {e}");
                None
            }
        };
        let here = if path.is_empty() {
            Ok(Here::NotRepo)
        } else {
            let repo = api_repo(registry, path);
            let under = format!("{repo}/");
            let listed = catalog.as_ref().map(|l| l.contains(&repo));
            let parent_only = catalog
                .as_ref()
                .is_some_and(|l| l.iter().any(|r| r.starts_with(&under)));
            let cached = self.meta.cached_tags(registry, &repo);
            if listed == Some(false) && parent_only {
                // The catalog shows this path only as the namespace of others: asking
                // for its tags would cost a round trip for nothing. (A path it does not
                // show at all may be a repository pushed since: that one is asked.)
                Ok(Here::NotRepo)
            } else if listed == Some(true) && cached.is_none() && tag_ok {
                // Most names looked up in a repository are tags, and the first thing
                // read below a tag is its manifest: ask for that directly.
                match self.meta.resolve_tag(registry, &repo, name).await {
                    Ok(_) => {
                        return Ok((
                            key,
                            self.image_node(registry, repo, LocKind::Tag(name.into())),
                        ))
                    }
                    Err(e) if e.kind() == FsErrorKind::NotFound => {
                        self.tags_here(registry, &repo, name, key.clone()).await?
                    }
                    Err(e) => return Err(e),
                }
            } else {
                self.tags_here(registry, &repo, name, key.clone()).await?
            }
        };
        let here = match here {
            Ok(h) => h,
            Err(found) => return Ok(found),
        };
        if !sub_ok {
            return match here {
                Here::Denied(e) => Err(e),
                _ => Err(not_found(registry, &sub)),
            };
        }
        let namespace = || Node::Repo {
            registry: registry.to_string(),
            path: sub.clone(),
        };
        if let Some(list) = &catalog {
            let api = api_repo(registry, &sub);
            let under = format!("{api}/");
            if list.iter().any(|r| *r == api || r.starts_with(&under)) {
                return Ok((key, namespace()));
            }
        } else if matches!(here, Here::NotRepo) {
            return Ok((key, namespace()));
        }
        match self.meta.tags(registry, &api_repo(registry, &sub)).await? {
            TagProbe::Tags(t) if !t.is_empty() => Ok((key, namespace())),
            _ => match here {
                Here::Denied(e) => Err(e),
                _ => Err(not_found(registry, &sub)),
            },
        }
    }

    /// What the repository `repo` is for a lookup of `name` in it, from its tag list:
    /// `Err` with the image node when `name` is one of its tags.
    async fn tags_here(
        &self,
        registry: &str,
        repo: &str,
        name: &str,
        key: Key,
    ) -> FsResult<Result<Here, (Key, Node)>> {
        Ok(Ok(match self.meta.tags(registry, repo).await? {
            TagProbe::Tags(t) if t.iter().any(|x| x == name) => {
                let node = self.image_node(registry, repo.to_string(), LocKind::Tag(name.into()));
                return Ok(Err((key, node)));
            }
            TagProbe::Tags(t) if !t.is_empty() => Here::Repo,
            TagProbe::Tags(_) => Here::NotRepo,
            TagProbe::Missing(e) if e.kind() == FsErrorKind::Access => Here::Denied(e),
            TagProbe::Missing(_) => Here::NotRepo,
        }))
    }

    /// Tags of the repository `path` (if it is one) and the namespaces below it.
    pub(crate) async fn list_repo(
        &self,
        ino: u64,
        registry: &str,
        path: &str,
    ) -> FsResult<Vec<(String, Key, FileType)>> {
        let subs = match self.meta.catalog(registry).await? {
            Some(list) => catalog_children(&list, registry, path),
            None => BTreeSet::new(),
        };
        let mut names: Vec<String> = Vec::new();
        if !path.is_empty() {
            match self.meta.tags(registry, &api_repo(registry, path)).await? {
                TagProbe::Tags(t) => names.extend(t.iter().cloned()),
                TagProbe::Missing(e) if e.kind() == FsErrorKind::Access && subs.is_empty() => {
                    return Err(e)
                }
                TagProbe::Missing(_) => {}
            }
        }
        let mut seen: BTreeSet<String> = names.iter().cloned().collect();
        for s in subs {
            if valid_repo_path(registry, &join(path, &s)) && seen.insert(s.clone()) {
                names.push(s);
            }
        }
        Ok(names
            .into_iter()
            .map(|n| (n.clone(), Key::Child(ino, n), FileType::Directory))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_rules() {
        for ok in [
            "quay.io",
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "a.b.c",
        ] {
            assert!(valid_registry(ok), "{ok}");
        }
        for bad in ["quay", "", ".scry", "-x.io", "a..b", "foo.io:", "x.io:port"] {
            assert!(!valid_registry(bad), "{bad}");
        }
        for ok in ["latest", "v1.2.3", "_x", "A-b_c.d"] {
            assert!(valid_tag(ok), "{ok}");
        }
        for bad in ["", ".git", "-x", "a/b", "a:b", &"x".repeat(129)] {
            assert!(!valid_tag(bad), "{bad}");
        }
        assert!(valid_repo_path("quay.io", "a/b-c/d__e"));
        assert!(!valid_repo_path("quay.io", "a/B"));
        assert!(!valid_repo_path("quay.io", "a/.git"));
        assert!(valid_repo_path("docker.io", "alpine"));
        assert!(valid_repo_path("docker.io", "library/alpine"));
    }

    #[test]
    fn catalog_children_by_prefix() {
        let cat: Vec<String> = ["a/b", "a/c/d", "ab", "x"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let top: Vec<_> = catalog_children(&cat, "r.io", "").into_iter().collect();
        assert_eq!(top, ["a", "ab", "x"]);
        let under_a: Vec<_> = catalog_children(&cat, "r.io", "a").into_iter().collect();
        assert_eq!(under_a, ["b", "c"]);
        assert!(catalog_children(&cat, "r.io", "x").is_empty());
    }
}
