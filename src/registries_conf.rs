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
//! Not applied yet: `location` remapping and `mirror`s (a table using them is named in a
//! warning), short-name aliases and search registries (docker references are always
//! fully qualified here, as skopeo's are).

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
    mirror: Vec<toml::Value>,
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
            let user = home
                .as_ref()
                .map(|h| h.join(".config/containers/registries.conf"));
            match user.filter(|u| u.is_file()) {
                Some(u) => files.push(u),
                None => files.push(PathBuf::from("/etc/containers/registries.conf")),
            }
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
            let remaps = t.location.as_deref().is_some_and(|l| l != prefix);
            if remaps || !t.mirror.is_empty() {
                tracing::warn!(
                    "{}: {prefix}: location remapping and mirrors are not applied yet; \
                     {prefix} is used as written",
                    file.display()
                );
            }
            add(RegistryEntry {
                prefix,
                insecure: t.insecure,
                blocked: t.blocked,
                file: file.to_path_buf(),
            });
        }
        if let Some(v1) = parsed.registries {
            let insecure = v1.insecure.map(|l| l.registries).unwrap_or_default();
            let block = v1.block.map(|l| l.registries).unwrap_or_default();
            let mut names: Vec<&String> = insecure.iter().chain(&block).collect();
            names.dedup();
            for r in names {
                add(RegistryEntry {
                    prefix: r.clone(),
                    insecure: insecure.contains(r),
                    blocked: block.contains(r),
                    file: file.to_path_buf(),
                });
            }
        }
        Ok(())
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
