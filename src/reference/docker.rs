//! Docker references: `[registry/]repository[:tag][@digest]`, normalised the way docker
//! and skopeo do it (`alpine` is `docker.io/library/alpine`).
//!
//! Grammar (docker's, restated):
//! - registry: `host[:port]`, host a dot-separated DNS-like name (`[A-Za-z0-9]` at both
//!   ends of each label, `-` inside), an IPv4 address, or `[ipv6]`. The first `/`-segment
//!   is a registry only if it contains `.` or `:`, or is `localhost`; `index.docker.io`
//!   becomes `docker.io`.
//! - repository: `/`-separated components of lowercase letters and digits joined by one
//!   `.`, one or two `_`, or any number of `-`; on docker.io a single component gets the
//!   `library/` prefix. Registry plus `/` plus repository is at most 255 characters.
//! - tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
//! - digest: see [`super::digest`].
//!
//! Invariant: every `DockerReference` value satisfies this grammar; the constructors and
//! `with_*` methods validate.

use std::fmt;
use std::str::FromStr;

use super::digest::digest_problem;
use crate::error::{Error, Result};

/// Registry used when a name has none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The Docker Hub registry's legacy name, normalised to [`DEFAULT_REGISTRY`].
const LEGACY_DEFAULT_REGISTRY: &str = "index.docker.io";
/// Host that serves the registry API for `docker.io`.
pub const DOCKER_HUB_API_HOST: &str = "registry-1.docker.io";
/// Tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// A normalised, validated docker reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DockerReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl DockerReference {
    /// Parses a reference in docker's familiar or full form. No default tag is added.
    pub fn parse(input: &str) -> Result<Self> {
        let fail =
            |reason: String| Error::InvalidInput(format!("invalid reference {input:?}: {reason}"));
        if input.is_empty() {
            return Err(fail("reference is empty".into()));
        }
        if input.len() == 64
            && input
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(fail(
                "cannot specify 64-byte hexadecimal strings (that is an image ID, not a repository)".into(),
            ));
        }
        let (registry, remainder) = split_registry(input);

        let (name_and_tag, digest) = match remainder.split_once('@') {
            Some((n, d)) => (n, Some(d)),
            None => (remainder, None),
        };
        let (path, tag) = match name_and_tag.split_once(':') {
            Some((p, t)) => (p, Some(t)),
            None => (name_and_tag, None),
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(fail("repository name must be lowercase".into()));
        }
        if !is_valid_registry(registry) {
            return Err(fail(format!("invalid registry host {registry:?}")));
        }
        let repository = if registry == DEFAULT_REGISTRY && !path.contains('/') {
            format!("{OFFICIAL_PREFIX}{path}")
        } else {
            path.to_string()
        };
        if let Some(reason) = repository_problem(&repository) {
            return Err(fail(reason));
        }
        if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(fail(format!(
                "repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
            )));
        }
        if let Some(t) = tag {
            if let Some(reason) = tag_problem(t) {
                return Err(fail(reason));
            }
        }
        if let Some(d) = digest {
            if let Some(reason) = digest_problem(d) {
                return Err(fail(format!("digest {d:?}: {reason}")));
            }
        }
        Ok(DockerReference {
            registry: registry.to_string(),
            repository,
            tag: tag.map(str::to_string),
            digest: digest.map(str::to_string),
        })
    }

    /// Registry host\[:port\], e.g. `docker.io`, `quay.io`, `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Repository path within the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// `algorithm:hex`, e.g. `sha256:…`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// True when there is neither a tag nor a digest.
    pub fn is_name_only(&self) -> bool {
        self.tag.is_none() && self.digest.is_none()
    }

    /// `registry/repository`, e.g. `docker.io/library/alpine`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short name docker shows: `alpine` for `docker.io/library/alpine`,
    /// `user/app` for `docker.io/user/app`, the full name for other registries.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            match self.repository.strip_prefix(OFFICIAL_PREFIX) {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.repository.clone(),
            }
        } else {
            self.name()
        }
    }

    /// [`Self::familiar_name`] with `:tag` and `@digest` as present, e.g. `alpine:3.19`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_and_digest(&mut s);
        s
    }

    /// Adds the `latest` tag when there is neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.is_name_only() {
            self.tag = Some(DEFAULT_TAG.to_string());
        }
        self
    }

    /// Replaces the tag (a digest, if any, is kept).
    pub fn with_tag(mut self, tag: &str) -> Result<Self> {
        if let Some(reason) = tag_problem(tag) {
            return Err(Error::InvalidInput(format!(
                "invalid tag {tag:?} for {}: {reason}",
                self.name()
            )));
        }
        self.tag = Some(tag.to_string());
        Ok(self)
    }

    /// Replaces the digest (a tag, if any, is kept).
    pub fn with_digest(mut self, digest: &str) -> Result<Self> {
        if let Some(reason) = digest_problem(digest) {
            return Err(Error::InvalidInput(format!(
                "invalid digest {digest:?} for {}: {reason}",
                self.name()
            )));
        }
        self.digest = Some(digest.to_string());
        Ok(self)
    }

    pub fn without_tag_or_digest(mut self) -> Self {
        self.tag = None;
        self.digest = None;
        self
    }

    /// The `<reference>` of `/v2/<repository>/manifests/<reference>`: the digest when
    /// present, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> String {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or(DEFAULT_TAG)
            .to_string()
    }

    /// Host\[:port\] to send registry API requests to (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DOCKER_HUB_API_HOST
        } else {
            &self.registry
        }
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
    }
}

impl fmt::Display for DockerReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl FromStr for DockerReference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DockerReference::parse(s)
    }
}

/// Splits off the registry, defaulting to docker.io (not yet validated).
fn split_registry(input: &str) -> (&str, &str) {
    let (registry, remainder) = match input.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DEFAULT_REGISTRY, input),
    };
    if registry == LEGACY_DEFAULT_REGISTRY {
        (DEFAULT_REGISTRY, remainder)
    } else {
        (registry, remainder)
    }
}

/// `host[:port]` where host is a DNS-like name, an IPv4 address or `[ipv6]`.
fn is_valid_registry(s: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((inner, after)) = rest.split_once(']') else {
            return false;
        };
        let ok = !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        match after {
            "" => (ok, None),
            _ => match after.strip_prefix(':') {
                Some(p) => (ok, Some(p)),
                None => return false,
            },
        }
    } else {
        let (host, port) = match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        };
        (host.split('.').all(is_domain_label), port)
    };
    let port_ok = match port {
        None => true,
        Some(p) => !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()),
    };
    host_ok && port_ok
}

/// `[A-Za-z0-9]` or `[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]`.
fn is_domain_label(label: &str) -> bool {
    let b = label.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        }
        _ => false,
    }
}

fn repository_problem(repository: &str) -> Option<String> {
    for component in repository.split('/') {
        if component.is_empty() {
            return Some("repository path has an empty component".into());
        }
        if !is_path_component(component) {
            return Some(format!(
                "repository path component {component:?} is invalid (use lowercase letters and \
                 digits, separated by '.', '_', '__' or dashes)"
            ));
        }
    }
    None
}

/// `[a-z0-9]+` runs joined by exactly one `.`, one or two `_`, or one or more `-`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        let sep_start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        debug_assert!(i > sep_start);
    }
}

/// Why `tag` is not a valid tag, or `None`.
pub(crate) fn tag_problem(tag: &str) -> Option<String> {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = tag.as_bytes();
    let reason = if b.is_empty() {
        "tag is empty"
    } else if b.len() > TAG_LENGTH_MAX {
        "tag is longer than 128 characters"
    } else if !word(b[0]) {
        "tag must start with a letter, digit or '_'"
    } else if !b.iter().all(|&c| word(c) || c == b'.' || c == b'-') {
        "tag may only contain letters, digits, '_', '.' and '-'"
    } else {
        return None;
    };
    Some(format!("invalid tag {tag:?}: {reason}"))
}

#[cfg(test)]
mod tests;
