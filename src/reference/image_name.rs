//! skopeo image names, `transport:details`, for every transport skopeo knows.
//!
//! Split rules (as containers/image):
//! - the transport is everything before the first `:`;
//! - `docker:` details must start with `//`; a reference with both tag and digest is
//!   refused, as skopeo does; no default tag is added here (callers that fetch an image
//!   use [`DockerReference::with_default_tag`], `list-tags` wants the bare name);
//! - `oci:`/`oci-archive:` details split at their first `:` into a path and either an
//!   image name (`org.opencontainers.image.ref.name` grammar) or `@N`, a zero-based index
//!   into the layout's index.json; so a path cannot contain `:`;
//! - `docker-archive:` details split the same way into a path and either a docker
//!   reference (tagged `latest` if untagged; digests refused) or `@N`;
//! - `docker-daemon:` takes a tagged or digested reference, or an image ID `sha256:<hex>`;
//! - `containers-storage:` takes `[driver@root+runroot:options]` then an image ID, a
//!   reference, or `reference@ID`; the text is kept as written after a form check.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::digest::digest_problem;
use super::docker::DockerReference;
use crate::error::{Error, Result};

/// The transports skopeo knows. A closed set: scry matches on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Docker,
    Dir,
    Oci,
    OciArchive,
    DockerArchive,
    DockerDaemon,
    ContainersStorage,
    Sif,
    Tarball,
    Ostree,
}

impl Transport {
    pub const ALL: [Transport; 10] = [
        Transport::Docker,
        Transport::Dir,
        Transport::Oci,
        Transport::OciArchive,
        Transport::DockerArchive,
        Transport::DockerDaemon,
        Transport::ContainersStorage,
        Transport::Sif,
        Transport::Tarball,
        Transport::Ostree,
    ];

    /// The name written before the `:` of an image name.
    pub fn name(&self) -> &'static str {
        match self {
            Transport::Docker => "docker",
            Transport::Dir => "dir",
            Transport::Oci => "oci",
            Transport::OciArchive => "oci-archive",
            Transport::DockerArchive => "docker-archive",
            Transport::DockerDaemon => "docker-daemon",
            Transport::ContainersStorage => "containers-storage",
            Transport::Sif => "sif",
            Transport::Tarball => "tarball",
            Transport::Ostree => "ostree",
        }
    }

    /// Exact, case-sensitive lookup by name.
    pub fn from_name(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Whether scry can read or write images through this transport.
    pub fn is_supported(&self) -> bool {
        matches!(
            self,
            Transport::Docker
                | Transport::Dir
                | Transport::Oci
                | Transport::OciArchive
                | Transport::DockerArchive
        )
    }
}

/// "; did you mean …?" for an unknown transport: a known one a single edit away (a
/// letter added, dropped, changed or two swapped, or another case), or for a bare
/// `NAME:TAG` the same with `docker://` before it.
fn transport_hint(s: &str, name: &str, details: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some(t) = Transport::ALL
        .into_iter()
        .find(|t| t.name() == lower || edit_distance(t.name(), &lower) <= 1)
    {
        let sep = match t {
            Transport::Docker if !details.starts_with("//") => "://",
            _ => ":",
        };
        return format!("; did you mean {}{sep}{details}?", t.name());
    }
    let bare = !details.is_empty()
        && !name.starts_with(['/', '.', '~'])
        && !details.starts_with('/')
        && !s.contains(char::is_whitespace);
    if bare {
        return format!("; did you mean docker://{s}?");
    }
    String::new()
}

/// Edits (insertions, deletions, substitutions, swaps of neighbours) between two
/// short ASCII words.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, v) in d[0].iter_mut().enumerate() {
        *v = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed `transport:details` image name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageName {
    /// `docker://REFERENCE`
    Docker(DockerReference),
    /// `dir:PATH`
    Dir(PathBuf),
    /// `oci:PATH[:NAME|:@INDEX]`
    Oci {
        path: PathBuf,
        reference: Option<String>,
        index: Option<usize>,
    },
    /// `oci-archive:PATH[:NAME|:@INDEX]`
    OciArchive {
        path: PathBuf,
        reference: Option<String>,
        index: Option<usize>,
    },
    /// `docker-archive:PATH[:REFERENCE|:@INDEX]`; a reference always carries a tag.
    DockerArchive {
        path: PathBuf,
        reference: Option<DockerReference>,
        index: Option<usize>,
    },
    /// `docker-daemon:REFERENCE` or `docker-daemon:sha256:ID`, as written.
    DockerDaemon(String),
    /// `containers-storage:[SPECIFIER]REFERENCE`, as written.
    ContainersStorage(String),
    /// `sif:`, `tarball:` and `ostree:` names, details as written.
    Other {
        transport: Transport,
        details: String,
    },
}

impl ImageName {
    /// Parses `transport:details`.
    pub fn parse(s: &str) -> Result<ImageName> {
        let Some((transport_name, details)) = s.split_once(':') else {
            return Err(Error::InvalidInput(format!(
                "Invalid image name {s:?}, expected colon-separated transport:reference"
            )));
        };
        let Some(transport) = Transport::from_name(transport_name) else {
            return Err(Error::InvalidInput(format!(
                "Invalid image name {s:?}, unknown transport {transport_name:?}{}",
                transport_hint(s, transport_name, details)
            )));
        };
        match transport {
            Transport::Docker => parse_docker(details),
            Transport::Dir => Ok(ImageName::Dir(PathBuf::from(details))),
            Transport::Oci => {
                let (path, reference, index) = parse_oci_details(transport, details)?;
                Ok(ImageName::Oci {
                    path,
                    reference,
                    index,
                })
            }
            Transport::OciArchive => {
                let (path, reference, index) = parse_oci_details(transport, details)?;
                Ok(ImageName::OciArchive {
                    path,
                    reference,
                    index,
                })
            }
            Transport::DockerArchive => parse_docker_archive(details),
            Transport::DockerDaemon => {
                check_docker_daemon(details)?;
                Ok(ImageName::DockerDaemon(details.to_string()))
            }
            Transport::ContainersStorage => {
                check_containers_storage(details)?;
                Ok(ImageName::ContainersStorage(details.to_string()))
            }
            Transport::Sif | Transport::Tarball | Transport::Ostree => Ok(ImageName::Other {
                transport,
                details: details.to_string(),
            }),
        }
    }

    pub fn transport(&self) -> Transport {
        match self {
            ImageName::Docker(_) => Transport::Docker,
            ImageName::Dir(_) => Transport::Dir,
            ImageName::Oci { .. } => Transport::Oci,
            ImageName::OciArchive { .. } => Transport::OciArchive,
            ImageName::DockerArchive { .. } => Transport::DockerArchive,
            ImageName::DockerDaemon(_) => Transport::DockerDaemon,
            ImageName::ContainersStorage(_) => Transport::ContainersStorage,
            ImageName::Other { transport, .. } => *transport,
        }
    }

    /// `Error::Unsupported` for transports scry cannot use yet.
    pub fn require_supported(&self) -> Result<()> {
        let t = self.transport();
        if t.is_supported() {
            Ok(())
        } else {
            Err(Error::Unsupported(format!(
                "transport {t} is not supported yet"
            )))
        }
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.transport();
        match self {
            ImageName::Docker(r) => write!(f, "{t}://{r}"),
            ImageName::Dir(p) => write!(f, "{t}:{}", p.display()),
            ImageName::Oci {
                path,
                reference,
                index,
            }
            | ImageName::OciArchive {
                path,
                reference,
                index,
            } => {
                write!(f, "{t}:{}", path.display())?;
                write_suffix(f, reference.as_deref(), *index)
            }
            ImageName::DockerArchive {
                path,
                reference,
                index,
            } => {
                write!(f, "{t}:{}", path.display())?;
                write_suffix(
                    f,
                    reference.as_ref().map(|r| r.to_string()).as_deref(),
                    *index,
                )
            }
            ImageName::DockerDaemon(s) | ImageName::ContainersStorage(s) => write!(f, "{t}:{s}"),
            ImageName::Other { details, .. } => write!(f, "{t}:{details}"),
        }
    }
}

fn write_suffix(
    f: &mut fmt::Formatter<'_>,
    reference: Option<&str>,
    index: Option<usize>,
) -> fmt::Result {
    match (reference, index) {
        (Some(r), _) => write!(f, ":{r}"),
        (None, Some(i)) => write!(f, ":@{i}"),
        (None, None) => Ok(()),
    }
}

impl FromStr for ImageName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        ImageName::parse(s)
    }
}

fn parse_docker(details: &str) -> Result<ImageName> {
    let Some(rest) = details.strip_prefix("//") else {
        return Err(Error::InvalidInput(format!(
            "docker: image reference {details:?} does not start with //; did you mean docker://{}?",
            details.trim_start_matches('/')
        )));
    };
    let reference = DockerReference::parse(rest)?;
    if reference.tag().is_some() && reference.digest().is_some() {
        return Err(Error::InvalidInput(format!(
            "invalid reference {rest:?}: Docker references with both a tag and digest are currently not supported"
        )));
    }
    Ok(ImageName::Docker(reference))
}

/// The `N` of `@N` after a path: a non-negative source index. Errors name `details`.
fn parse_source_index(transport: Transport, details: &str, text: &str) -> Result<usize> {
    let fail = |reason: String| {
        Error::InvalidInput(format!(
            "invalid {transport} reference {details:?}: source index @{text} {reason}"
        ))
    };
    let n: i64 = text.parse().map_err(|_| fail("is not an integer".into()))?;
    if n < 0 {
        return Err(fail("must not be negative".into()));
    }
    usize::try_from(n).map_err(|_| fail("is too large".into()))
}

/// `PATH[:NAME|:@N]` for the OCI layout transports.
fn parse_oci_details(
    transport: Transport,
    details: &str,
) -> Result<(PathBuf, Option<String>, Option<usize>)> {
    let (path, image) = details.split_once(':').unwrap_or((details, ""));
    let path = PathBuf::from(path);
    if let Some(index) = image.strip_prefix('@') {
        let index = parse_source_index(transport, details, index)?;
        return Ok((path, None, Some(index)));
    }
    if image.is_empty() {
        return Ok((path, None, None));
    }
    if !is_oci_ref_name(image) {
        return Err(Error::InvalidInput(format!(
            "invalid {transport} reference {details:?}: invalid image name {image:?} (components of \
             letters and digits separated by one of - . _ : @ + or --, joined by /)"
        )));
    }
    Ok((path, Some(image.to_string()), None))
}

/// The `org.opencontainers.image.ref.name` grammar: `/`-joined components, each
/// `[A-Za-z0-9]+` runs separated by one of `-._:@+` or by `--`.
pub(crate) fn is_oci_ref_name(s: &str) -> bool {
    s.split('/').all(|component| {
        let b = component.as_bytes();
        let mut i = 0;
        loop {
            let start = i;
            while i < b.len() && b[i].is_ascii_alphanumeric() {
                i += 1;
            }
            if i == start {
                return false;
            }
            if i == b.len() {
                return true;
            }
            match b[i] {
                b'-' if b.get(i + 1) == Some(&b'-') => i += 2,
                b'-' | b'.' | b'_' | b':' | b'@' | b'+' => i += 1,
                _ => return false,
            }
        }
    })
}

fn parse_docker_archive(details: &str) -> Result<ImageName> {
    if details.is_empty() {
        return Err(Error::InvalidInput(
            "docker-archive reference \"\" isn't of the form <path>[:<reference>]".into(),
        ));
    }
    let Some((path, rest)) = details.split_once(':') else {
        return Ok(ImageName::DockerArchive {
            path: PathBuf::from(details),
            reference: None,
            index: None,
        });
    };
    let path = PathBuf::from(path);
    if let Some(index) = rest.strip_prefix('@') {
        let index = parse_source_index(Transport::DockerArchive, details, index)?;
        return Ok(ImageName::DockerArchive {
            path,
            reference: None,
            index: Some(index),
        });
    }
    let reference =
        DockerReference::parse(rest).map_err(|e| e.context("docker-archive parsing reference"))?;
    if reference.digest().is_some() {
        return Err(Error::InvalidInput(format!(
            "docker-archive doesn't support digest references: {reference}"
        )));
    }
    Ok(ImageName::DockerArchive {
        path,
        reference: Some(reference.with_default_tag()),
        index: None,
    })
}

/// docker-daemon accepts an image ID `sha256:<64 hex>` or a tagged or digested reference.
fn check_docker_daemon(details: &str) -> Result<()> {
    let fail = |reason: &str| {
        Error::InvalidInput(format!(
            "invalid docker-daemon reference {details:?}: {reason}"
        ))
    };
    if digest_problem(details).is_none() {
        return if details.starts_with("sha256:") {
            Ok(())
        } else {
            Err(fail("only digest algorithm sha256 accepted"))
        };
    }
    let reference = DockerReference::parse(details)?;
    if reference.familiar_name() == "sha256" {
        return Err(fail(
            "the sha256 repository name is reserved for (non-shortened) digest references",
        ));
    }
    match (reference.tag(), reference.digest()) {
        (None, None) => Err(fail("reference has neither a tag nor a digest")),
        (Some(_), Some(_)) => Err(fail(
            "references with both a tag and digest are currently not supported",
        )),
        _ => Ok(()),
    }
}

/// True for 3 or more lowercase hex characters: a possibly truncated image ID.
fn looks_like_id_prefix(s: &str) -> bool {
    s.len() >= 3 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Form check of `[[driver@]root[+runroot][:options]]{ID|REFERENCE[@ID]}`.
fn check_containers_storage(details: &str) -> Result<()> {
    let fail = |reason: String| {
        Error::InvalidInput(format!(
            "invalid containers-storage reference {details:?}: {reason}"
        ))
    };
    let mut rest = details;
    if let Some(spec) = rest.strip_prefix('[') {
        let Some((_, after)) = spec.split_once(']') else {
            return Err(fail("store specifier does not end with ']'".into()));
        };
        rest = after;
    }
    if rest.is_empty() {
        return Err(fail("no image named after the store specifier".into()));
    }
    let mut has_id = false;
    if let Some((before, id)) = rest.rsplit_once('@') {
        if id.is_empty() {
            return Err(fail("empty trailing digest or ID".into()));
        }
        // A digest stays part of the reference; anything else after '@' must be an ID.
        if digest_problem(id).is_some() {
            if !looks_like_id_prefix(id) {
                return Err(fail(format!(
                    "{id:?} does not look like an image ID or digest"
                )));
            }
            has_id = true;
            rest = before;
        }
    }
    if rest.is_empty() {
        return if has_id {
            Ok(())
        } else {
            Err(fail("empty reference".into()))
        };
    }
    if !has_id && looks_like_id_prefix(rest) {
        return Ok(());
    }
    DockerReference::parse(rest).map(|_| ())
}

#[cfg(test)]
mod tests;
