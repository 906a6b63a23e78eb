//! `sync`: which images a source names (every tag of a repository, every image below a
//! directory, or the list in a YAML file) and where each one goes. The copies
//! themselves are the copy engine's; this module only plans them.
//!
//! Destination names follow the source's: without `scoped`, the last path element of
//! the source (`busybox:1.36` for `registry.example/lib/busybox:1.36`) joined to the
//! destination; with it, the whole source path (`registry.example/lib/busybox:1.36`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reference::{DockerReference, ImageName};
use crate::transport::docker::{self, CredentialChoice, DockerOptions};

/// Where images come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncSource {
    /// A repository (all its tags) or one image, as a docker reference without transport.
    Docker(String),
    /// A directory holding `dir:` images anywhere below it (or being one).
    Dir(PathBuf),
    /// A YAML file listing registries, repositories and tags.
    Yaml(PathBuf),
}

/// Where images go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncDest {
    /// A registry, optionally with a namespace: `registry.example:5000/mirror`.
    Docker(String),
    /// A directory; each image becomes a `dir:` directory below it.
    Dir(PathBuf),
}

impl SyncSource {
    /// `--src` and the SOURCE argument.
    pub fn parse(transport: &str, arg: &str) -> Result<SyncSource> {
        match transport {
            "docker" => Ok(SyncSource::Docker(arg.to_string())),
            "dir" => Ok(SyncSource::Dir(PathBuf::from(arg))),
            "yaml" => Ok(SyncSource::Yaml(PathBuf::from(arg))),
            other => Err(Error::invalid(format!(
                "{other:?} is not a valid source transport for sync (use docker, dir or yaml)"
            ))),
        }
    }
}

impl SyncDest {
    /// `--dest` and the DESTINATION argument.
    pub fn parse(transport: &str, arg: &str) -> Result<SyncDest> {
        match transport {
            "docker" => Ok(SyncDest::Docker(arg.to_string())),
            "dir" => Ok(SyncDest::Dir(PathBuf::from(arg))),
            other => Err(Error::invalid(format!(
                "{other:?} is not a valid destination transport for sync (use docker or dir)"
            ))),
        }
    }
}

/// One planned copy.
#[derive(Clone, Debug)]
pub struct SyncItem {
    pub source: ImageName,
    pub dest: ImageName,
    /// How to reach the source registry (per registry for YAML sources).
    pub source_docker: DockerOptions,
}

/// How names are formed.
#[derive(Clone, Debug, Default)]
pub struct Naming {
    pub scoped: bool,
    /// Appended to every destination name (to the tag, for registries).
    pub append_suffix: String,
}

/// An image to copy and the name its destination is formed from.
struct Found {
    source: ImageName,
    /// `registry/repo:tag` for registry images; the path below the source directory
    /// (or the directory's own name) for `dir:` images.
    suffix: String,
    docker: DockerOptions,
}

/// Lists what `source` names (asking registries for tags where needed) and pairs each
/// image with its destination. `docker` reaches source registries.
pub async fn plan(
    source: &SyncSource,
    dest: &SyncDest,
    naming: &Naming,
    docker: &DockerOptions,
) -> Result<(Vec<SyncItem>, usize)> {
    if matches!((source, dest), (SyncSource::Dir(_), SyncDest::Dir(_))) {
        return Err(Error::Unsupported(
            "sync from dir to dir is not supported: copy the directories instead".into(),
        ));
    }
    let (found, sources) = match source {
        SyncSource::Docker(arg) => {
            let r = DockerReference::parse(arg)
                .map_err(|e| e.context(format!("parsing the source {arg:?}")))?;
            (docker_images(&r, docker).await?, 1)
        }
        SyncSource::Dir(base) => (dir_images(base)?, 1),
        SyncSource::Yaml(file) => yaml_images(file, docker).await?,
    };
    let mut items = Vec::new();
    for f in found {
        let suffix = if naming.scoped {
            f.suffix.clone()
        } else {
            base_name(&f.suffix).to_string()
        };
        let dest = destination(dest, &suffix, &naming.append_suffix)?;
        items.push(SyncItem {
            source: f.source,
            dest,
            source_docker: f.docker,
        });
    }
    Ok((items, sources))
}

/// The destination image for `suffix` (already scoped or not).
fn destination(dest: &SyncDest, suffix: &str, append: &str) -> Result<ImageName> {
    match dest {
        SyncDest::Docker(base) => {
            let name = format!("{}{append}", join_clean(base, suffix));
            let r = DockerReference::parse(&name)
                .map_err(|e| e.context(format!("forming the destination {name:?}")))?;
            Ok(ImageName::Docker(r))
        }
        SyncDest::Dir(base) => {
            let name = format!("{}{append}", join_clean(&base.to_string_lossy(), suffix));
            Ok(ImageName::Dir(PathBuf::from(name)))
        }
    }
}

/// Every tag of `r`'s repository, or `r` itself when it names a tag or digest.
async fn docker_images(r: &DockerReference, opts: &DockerOptions) -> Result<Vec<Found>> {
    let one = |r: DockerReference| Found {
        suffix: r.to_string(),
        source: ImageName::Docker(r),
        docker: opts.clone(),
    };
    if r.tag().is_some() || r.digest().is_some() {
        return Ok(vec![one(r.clone())]);
    }
    let tags = repository_tags(r, opts).await?;
    tags.iter()
        .map(|t| Ok(one(r.clone().with_tag(t)?)))
        .collect()
}

async fn repository_tags(r: &DockerReference, opts: &DockerOptions) -> Result<Vec<String>> {
    let client = docker::connect(r, opts)?;
    client
        .list_tags(r.repository())
        .await
        .map_err(|e| e.context(format!("listing the tags of {}", r.name())))
}

/// Every `dir:` image below `base` (a directory holding `manifest.json`), or `base`
/// itself; sorted by path.
fn dir_images(base: &Path) -> Result<Vec<Found>> {
    let meta = std::fs::metadata(base)
        .map_err(|e| Error::from(e).context(format!("source directory {}", base.display())))?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "source {} is not a directory",
            base.display()
        )));
    }
    let mut dirs = Vec::new();
    walk(base, &mut dirs)?;
    dirs.sort();
    let base_str = base.to_string_lossy().trim_end_matches('/').to_string();
    Ok(dirs
        .into_iter()
        .map(|d| {
            let s = d.to_string_lossy().to_string();
            let below = s
                .strip_prefix(&base_str)
                .unwrap_or(&s)
                .trim_start_matches('/')
                .to_string();
            // A source that is itself an image keeps its own name.
            let suffix = if below.is_empty() {
                base_name(&base_str).to_string()
            } else {
                below
            };
            Found {
                source: ImageName::Dir(d),
                suffix,
                docker: DockerOptions::default(),
            }
        })
        .collect())
}

/// Collects directories holding a `manifest.json`; does not look inside those.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join("manifest.json").is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::from(e).context(format!("reading {}", dir.display())))?;
    for e in entries {
        let e = e.map_err(|e| Error::from(e).context(format!("reading {}", dir.display())))?;
        // Symlinks are not followed (no loops, nothing outside the source).
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(&e.path(), out)?;
        }
    }
    Ok(())
}

/// One registry's section of a sync YAML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct YamlRegistry {
    /// Repository → tags or digests; empty means every tag.
    #[serde(default)]
    images: BTreeMap<String, Vec<String>>,
    /// Repository → a regular expression the tags to copy match.
    #[serde(default)]
    images_by_tag_regex: BTreeMap<String, String>,
    #[serde(default)]
    images_by_semver: BTreeMap<String, String>,
    #[serde(default)]
    credentials: Option<YamlCredentials>,
    #[serde(default)]
    tls_verify: Option<bool>,
    #[serde(default)]
    cert_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct YamlCredentials {
    username: String,
    password: String,
}

/// Parses a sync YAML file: registry → its section, in file order of the keys sorted.
fn parse_yaml(text: &str, what: &str) -> Result<BTreeMap<String, YamlRegistry>> {
    let map: BTreeMap<String, Option<YamlRegistry>> =
        yaml_serde::from_str(text).map_err(|e| Error::invalid(format!("{what}: {e}")))?;
    Ok(map
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// The images a YAML file lists, and how many registries it names.
async fn yaml_images(file: &Path, base: &DockerOptions) -> Result<(Vec<Found>, usize)> {
    let what = file.display().to_string();
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::from(e).context(format!("reading {what}")))?;
    let registries = parse_yaml(&text, &what)?;
    let mut found = Vec::new();
    for (registry, section) in &registries {
        if !section.images_by_semver.is_empty() {
            return Err(Error::Unsupported(format!(
                "{what}: {registry}: images-by-semver is not supported yet"
            )));
        }
        let mut opts = base.clone();
        if let Some(v) = section.tls_verify {
            opts.tls_verify = Some(v);
        }
        if let Some(d) = &section.cert_dir {
            opts.cert_dir = Some(d.clone());
        }
        if let Some(c) = &section.credentials {
            opts.credentials = CredentialChoice::Given(crate::auth::Credentials {
                username: c.username.clone(),
                password: c.password.clone(),
            });
        }
        let repo_ref = |repo: &str| {
            DockerReference::parse(&format!("{registry}/{repo}"))
                .ok()
                .filter(|r| r.tag().is_none() && r.digest().is_none() && r.registry() == registry)
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "{what}: {registry}/{repo} is not a valid repository name"
                    ))
                })
        };
        for (repo, tags) in &section.images {
            let r = repo_ref(repo)?;
            if tags.is_empty() {
                found.extend(docker_images(&r, &opts).await?);
                continue;
            }
            for t in tags {
                let one = if t.contains(':') {
                    r.clone().with_digest(t)
                } else {
                    r.clone().with_tag(t)
                }
                .map_err(|e| e.context(format!("{what}: {registry}/{repo}: {t:?}")))?;
                found.push(Found {
                    suffix: one.to_string(),
                    source: ImageName::Docker(one),
                    docker: opts.clone(),
                });
            }
        }
        for (repo, pattern) in &section.images_by_tag_regex {
            let r = repo_ref(repo)?;
            let re = regex::Regex::new(pattern).map_err(|e| {
                Error::invalid(format!("{what}: {registry}/{repo}: bad tag regex: {e}"))
            })?;
            for t in repository_tags(&r, &opts).await? {
                if re.is_match(&t) {
                    let one = r.clone().with_tag(&t)?;
                    found.push(Found {
                        suffix: one.to_string(),
                        source: ImageName::Docker(one),
                        docker: opts.clone(),
                    });
                }
            }
        }
    }
    Ok((found, registries.len()))
}

/// The last `/`-separated element (`busybox:1` of `quay.io/lib/busybox:1`).
fn base_name(s: &str) -> &str {
    let t = s.trim_end_matches('/');
    t.rsplit('/').next().unwrap_or(t)
}

/// `a/b` with repeated, leading-dot and trailing slashes cleaned away (`..` is kept
/// out: it never comes from image names).
fn join_clean(a: &str, b: &str) -> String {
    let absolute = a.starts_with('/');
    let parts: Vec<&str> = a
        .split('/')
        .chain(b.split('/'))
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_join_like_paths() {
        assert_eq!(
            join_clean("my-registry.local.lan/test/", "busybox:1-glibc"),
            "my-registry.local.lan/test/busybox:1-glibc"
        );
        assert_eq!(
            join_clean("/media//usb/", "./busybox:latest"),
            "/media/usb/busybox:latest"
        );
        assert_eq!(base_name("registry.example.com/lib/busybox:1"), "busybox:1");
        assert_eq!(base_name("busybox:1"), "busybox:1");
    }

    #[test]
    fn destinations_scoped_and_not() {
        let d = SyncDest::Docker("mirror.example:5000/m".into());
        let got = destination(&d, "busybox:1", "-x").unwrap();
        assert_eq!(
            got.to_string(),
            "docker://mirror.example:5000/m/busybox:1-x"
        );
        let d = SyncDest::Dir("/srv/img".into());
        let got = destination(&d, "quay.io/a/b:2", "").unwrap();
        assert_eq!(got.to_string(), "dir:/srv/img/quay.io/a/b:2");
        // A name the registry grammar refuses is an error naming it.
        let d = SyncDest::Docker("mirror.example".into());
        let e = destination(&d, "Bad:1", "").unwrap_err();
        assert!(e.to_string().contains("mirror.example/Bad:1"), "{e}");
    }

    #[test]
    fn yaml_sections_parse_and_refuse_unknown_keys() {
        let text = "registry.example.com:\n  images:\n    busybox: []\n    redis:\n      - \"1.0\"\n      - \"sha256:0000000000000000000000000000000011111111111111111111111111111111\"\n  images-by-tag-regex:\n    nginx: ^1\\.13\\.[12]-alpine-perl$\n  credentials:\n    username: john\n    password: secret\n  tls-verify: true\n  cert-dir: /home/john/certs\nquay.io:\n  tls-verify: false\n  images:\n    coreos/etcd:\n      - latest\n";
        let m = parse_yaml(text, "sync.yml").unwrap();
        assert_eq!(m.len(), 2);
        let r = &m["registry.example.com"];
        assert_eq!(r.images["redis"].len(), 2);
        assert!(r.images["busybox"].is_empty());
        assert_eq!(
            r.images_by_tag_regex["nginx"],
            "^1\\.13\\.[12]-alpine-perl$"
        );
        assert_eq!(r.credentials.as_ref().unwrap().username, "john");
        assert_eq!(m["quay.io"].tls_verify, Some(false));
        let e = parse_yaml("quay.io:\n  imagez: {}\n", "sync.yml").unwrap_err();
        assert!(e.to_string().contains("sync.yml"), "{e}");
        assert!(e.to_string().contains("imagez"), "{e}");
    }
}
