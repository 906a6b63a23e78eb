//! `registries.conf` (containers-registries.conf(5)): per-registry `insecure` and
//! `blocked`, chosen by the longest matching `prefix`, in the version 2 format
//! (`[[registry]]` tables) and the deprecated version 1 lists.
//!
//! Which files: `--registries-conf` or `$CONTAINERS_REGISTRIES_CONF` alone when given;
//! otherwise `$HOME/.config/containers/registries.conf` if it exists, else
//! `/etc/containers/registries.conf`, then the `*.conf` drop-ins of
//! `/etc/containers/registries.conf.d` and `$HOME/.config/containers/registries.conf.d`
//! in name order (a later table for the same prefix replaces an earlier one).
//!
//! Reading an image follows `location` remapping and `mirror`s (tried in order, then the
//! primary location; `mirror-by-digest-only` / `pull-from-mirror`), as skopeo does;
//! pushes go where the name says. Not applied: short-name aliases and search
//! registries (docker references are always fully qualified here, as skopeo's are).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The settings for names under one prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryEntry {
    pub prefix: String,
    pub insecure: bool,
    pub blocked: bool,
    /// The file it came from, for messages.
    pub file: PathBuf,
    /// Where names under `prefix` really are (`prefix` when not remapped).
    pub location: String,
    /// Tried before `location` when reading, in order.
    pub mirrors: Vec<MirrorEntry>,
    /// Which references may be read from mirrors.
    pub mirror_use: MirrorUse,
}

/// One `[[registry.mirror]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorEntry {
    pub location: String,
    pub insecure: bool,
}

/// `mirror-by-digest-only` / `pull-from-mirror`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum MirrorUse {
    #[default]
    All,
    DigestOnly,
    TagOnly,
}

/// The merged configuration.
#[derive(Clone, Debug, Default)]
pub struct RegistriesConf {
    entries: Vec<RegistryEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    #[serde(default)]
    registry: Vec<TableV2>,
    #[serde(default)]
    registries: Option<FileV1>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct TableV2 {
    prefix: Option<String>,
    location: Option<String>,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror: Vec<MirrorTable>,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct MirrorTable {
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct FileV1 {
    #[serde(default)]
    insecure: Option<ListV1>,
    #[serde(default)]
    block: Option<ListV1>,
}

#[derive(Debug, Default, Deserialize)]
struct ListV1 {
    #[serde(default)]
    registries: Vec<String>,
}

/// How much of `name` (`host[:port]/path[:tag|@digest]`) `prefix` matches: its length
/// when `name` is `prefix` or continues it at a separator; a `*.domain` prefix matches
/// hosts below that domain. `None` when it does not match.
fn matching(name: &str, prefix: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix("*.") {
        let host = name.split('/').next().unwrap_or(name);
        let host_only = host.split(':').next().unwrap_or(host);
        return host_only
            .strip_suffix(domain)
            .filter(|rest| rest.ends_with('.') && rest.len() > 1)
            .map(|_| host.len());
    }
    let rest = name.strip_prefix(prefix)?;
    match rest.chars().next() {
        None => Some(prefix.len()),
        Some('/' | ':' | '@') => Some(prefix.len()),
        Some(_) => None,
    }
}

/// The containers configuration file `name`: `$HOME/.config/containers/NAME` when it
/// exists, else `/etc/containers/NAME` (which may not exist either).
pub(crate) fn user_or_system_file(name: &str) -> PathBuf {
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".config/containers").join(name))
        .filter(|u| u.is_file())
        .unwrap_or_else(|| Path::new("/etc/containers").join(name))
}

impl RegistriesConf {
    /// Loads the files for `explicit` (`--registries-conf`); an empty configuration
    /// when none exists. A file that cannot be parsed is an error naming it.
    pub fn load(explicit: Option<&Path>) -> Result<RegistriesConf> {
        let env = std::env::var_os("CONTAINERS_REGISTRIES_CONF").map(PathBuf::from);
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let mut files = Vec::new();
        if let Some(p) = explicit.map(Path::to_path_buf).or(env) {
            files.push(p);
        } else {
            files.push(user_or_system_file("registries.conf"));
            let mut dirs = vec![PathBuf::from("/etc/containers/registries.conf.d")];
            if let Some(h) = &home {
                dirs.push(h.join(".config/containers/registries.conf.d"));
            }
            for d in dirs {
                let Ok(rd) = std::fs::read_dir(&d) else {
                    continue;
                };
                let mut drop_ins: Vec<PathBuf> = rd
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "conf"))
                    .collect();
                drop_ins.sort();
                files.extend(drop_ins);
            }
        }
        let mut conf = RegistriesConf::default();
        for f in files {
            let text = match std::fs::read_to_string(&f) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::from(e).context(format!("reading {}", f.display()))),
            };
            conf.add_file(&f, &text)?;
        }
        Ok(conf)
    }

    /// Adds the tables of one file (later tables for a prefix replace earlier ones).
    pub fn add_file(&mut self, file: &Path, text: &str) -> Result<()> {
        let parsed: FileV2 = toml::from_str(text)
            .map_err(|e| Error::invalid(format!("parsing {}: {e}", file.display())))?;
        let mut add = |e: RegistryEntry| {
            self.entries.retain(|old| old.prefix != e.prefix);
            self.entries.push(e);
        };
        for t in parsed.registry {
            let Some(prefix) = t.prefix.clone().or_else(|| t.location.clone()) else {
                return Err(Error::invalid(format!(
                    "{}: a [[registry]] table has neither prefix nor location",
                    file.display()
                )));
            };
            let location = t.location.clone().unwrap_or_else(|| prefix.clone());
            let mirror_use = match t.pull_from_mirror.as_deref() {
                _ if t.mirror_by_digest_only => MirrorUse::DigestOnly,
                None | Some("all") => MirrorUse::All,
                Some("digest-only") => MirrorUse::DigestOnly,
                Some("tag-only") => MirrorUse::TagOnly,
                Some(other) => {
                    return Err(Error::invalid(format!(
                    "{}: {prefix}: pull-from-mirror {other:?} is not all, digest-only or tag-only",
                    file.display()
                )))
                }
            };
            if t.mirror.iter().any(|m| m.pull_from_mirror.is_some()) {
                tracing::warn!(
                    "{}: {prefix}: pull-from-mirror on a single mirror is not applied (the table's is)",
                    file.display()
                );
            }
            add(RegistryEntry {
                location,
                mirrors: t
                    .mirror
                    .into_iter()
                    .map(|m| MirrorEntry {
                        location: m.location,
                        insecure: m.insecure,
                    })
                    .collect(),
                mirror_use,
                prefix,
                insecure: t.insecure,
                blocked: t.blocked,
                file: file.to_path_buf(),
            });
        }
        if let Some(v1) = parsed.registries {
            let insecure = v1.insecure.map(|l| l.registries).unwrap_or_default();
            let block = v1.block.map(|l| l.registries).unwrap_or_default();
            // A name in both lists gets one table (`add` replaces by prefix).
            for r in insecure.iter().chain(&block) {
                add(RegistryEntry {
                    prefix: r.clone(),
                    insecure: insecure.contains(r),
                    blocked: block.contains(r),
                    file: file.to_path_buf(),
                    location: r.clone(),
                    mirrors: Vec::new(),
                    mirror_use: MirrorUse::All,
                });
            }
        }
        Ok(())
    }

    /// Where to read image `name` (`host[:port]/repository`) from, in order: each
    /// mirror (unless the reference kind rules mirrors out), then the primary location,
    /// each with its `insecure`. Just `name` when no table remaps it.
    pub fn pull_locations(&self, name: &str, by_digest: bool) -> Vec<(String, bool)> {
        let Some(e) = self.find(name) else {
            return vec![(name.to_string(), false)];
        };
        if e.prefix.starts_with("*.") {
            return vec![(name.to_string(), e.insecure)];
        }
        let rest = &name[e.prefix.len()..];
        let use_mirrors = match e.mirror_use {
            MirrorUse::All => true,
            MirrorUse::DigestOnly => by_digest,
            MirrorUse::TagOnly => !by_digest,
        };
        let mut out: Vec<(String, bool)> = Vec::new();
        if use_mirrors {
            out.extend(
                e.mirrors
                    .iter()
                    .map(|m| (format!("{}{rest}", m.location), m.insecure)),
            );
        }
        out.push((format!("{}{rest}", e.location), e.insecure));
        out
    }

    /// The registry hosts the tables name (their prefixes and where they point), each
    /// once, sorted; wildcard prefixes (`*.domain`) and blocked tables left out. What
    /// the mount lists at its root as configured registries.
    pub fn registry_hosts(&self) -> Vec<String> {
        let host = |s: &str| s.split('/').next().unwrap_or_default().to_string();
        let mut out = std::collections::BTreeSet::new();
        for e in self.entries.iter().filter(|e| !e.blocked) {
            if !e.prefix.starts_with("*.") {
                out.insert(host(&e.prefix));
                out.insert(host(&e.location));
            }
        }
        out.remove("");
        out.into_iter().collect()
    }

    /// The table for image name `name` (`host[:port]/repository…`): the longest
    /// matching prefix.
    pub fn find(&self, name: &str) -> Option<&RegistryEntry> {
        self.entries
            .iter()
            .filter_map(|e| matching(name, &e.prefix).map(|n| (n, e)))
            .max_by_key(|(n, _)| *n)
            .map(|(_, e)| e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        let mut c = RegistriesConf::default();
        c.add_file(Path::new("test.conf"), text).unwrap();
        c
    }

    #[test]
    fn registry_hosts_for_the_mount_root() {
        let c = conf(
            r#"
[[registry]]
prefix = "example.com/team"
location = "mirror.example:5000/team"

[[registry]]
location = "plain.example"

[[registry]]
prefix = "*.wild.example"

[[registry]]
location = "blocked.example"
blocked = true
"#,
        );
        assert_eq!(
            c.registry_hosts(),
            ["example.com", "mirror.example:5000", "plain.example"]
        );
    }

    #[test]
    fn longest_prefix_at_a_separator_wins() {
        let c = conf(
            "[[registry]]\nlocation = \"reg.example:5000\"\ninsecure = true\n\n\
             [[registry]]\nprefix = \"reg.example:5000/secure\"\n\n\
             [[registry]]\nlocation = \"*.corp.example\"\nblocked = true\n",
        );
        assert!(c.find("reg.example:5000/app").unwrap().insecure);
        assert!(!c.find("reg.example:5000/secure/app").unwrap().insecure);
        assert!(c.find("reg.example:50001/app").is_none());
        assert!(c.find("reg.example:5000").unwrap().insecure);
        assert!(c.find("a.corp.example/x").unwrap().blocked);
        assert!(c.find("a.b.corp.example:443/x").unwrap().blocked);
        assert!(c.find("corp.example/x").is_none());
        assert!(c.find("xcorp.example/x").is_none());
    }

    #[test]
    fn version_1_lists_and_replacement_by_later_tables() {
        let mut c = conf(
            "[registries.insecure]\nregistries = ['a.example']\n\
             [registries.block]\nregistries = ['b.example']\n",
        );
        assert!(c.find("a.example/x").unwrap().insecure);
        assert!(c.find("b.example/x").unwrap().blocked);
        c.add_file(
            Path::new("drop-in.conf"),
            "[[registry]]\nlocation = \"a.example\"\n",
        )
        .unwrap();
        let e = c.find("a.example/x").unwrap();
        assert!(!e.insecure);
        assert_eq!(e.file, Path::new("drop-in.conf"));
    }

    #[test]
    fn mirrors_then_the_remapped_location() {
        let c = conf(
            "[[registry]]\nprefix = \"example.com/foo\"\nlocation = \"internal.example/bar\"\n\n\
             [[registry.mirror]]\nlocation = \"mirror-0.local/for-foo\"\n\n\
             [[registry.mirror]]\nlocation = \"mirror-1.local/foo\"\ninsecure = true\n\n\
             [[registry]]\nprefix = \"example.com/digests\"\nmirror-by-digest-only = true\n\n\
             [[registry.mirror]]\nlocation = \"mirror-2.local\"\n",
        );
        assert_eq!(
            c.pull_locations("example.com/foo/image", false),
            [
                ("mirror-0.local/for-foo/image".to_string(), false),
                ("mirror-1.local/foo/image".to_string(), true),
                ("internal.example/bar/image".to_string(), false),
            ]
        );
        assert_eq!(
            c.pull_locations("example.com/digests/x", false),
            [("example.com/digests/x".to_string(), false)]
        );
        assert_eq!(
            c.pull_locations("example.com/digests/x", true)[0].0,
            "mirror-2.local/x"
        );
        assert_eq!(
            c.pull_locations("other.example/x", true),
            [("other.example/x".to_string(), false)]
        );
    }

    #[test]
    fn bad_files_are_named() {
        let mut c = RegistriesConf::default();
        let e = c
            .add_file(Path::new("/etc/x.conf"), "[[registry]]\ninsecure = true\n")
            .unwrap_err();
        assert!(e.to_string().contains("/etc/x.conf"), "{e}");
        let e = c
            .add_file(Path::new("/etc/y.conf"), "[[registry]\n")
            .unwrap_err();
        assert!(e.to_string().contains("/etc/y.conf"), "{e}");
    }
}
