//! The trust policy (containers-policy.json(5)) a copy's source must satisfy: the
//! requirements of the most specific scope that matches the image, all of which must
//! hold. `insecureAcceptAnything` and `reject` are decided here; signature
//! requirements (`signedBy`, `sigstoreSigned`) are refused with a message saying scry
//! does not verify signatures yet — never accepted unchecked.
//!
//! Which file: `--policy`, else `$HOME/.config/containers/policy.json`, else
//! `/etc/containers/policy.json`. Without any file every image is accepted (skopeo
//! refuses to run then; `--insecure-policy` skips the policy in both).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::reference::ImageName;

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    default: Vec<Requirement>,
    #[serde(default)]
    transports: BTreeMap<String, BTreeMap<String, Vec<Requirement>>>,
    /// Where it was read from, for messages.
    #[serde(skip)]
    file: PathBuf,
}

/// One requirement; signature requirements keep their fields unread.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "type")]
enum Requirement {
    #[serde(rename = "insecureAcceptAnything")]
    InsecureAcceptAnything,
    #[serde(rename = "reject")]
    Reject,
    #[serde(rename = "signedBy")]
    SignedBy {
        #[serde(flatten)]
        _rest: serde_json::Map<String, serde_json::Value>,
    },
    #[serde(rename = "sigstoreSigned")]
    SigstoreSigned {
        #[serde(flatten)]
        _rest: serde_json::Map<String, serde_json::Value>,
    },
}

impl Policy {
    /// Reads the policy `explicit` names (which must exist) or the default files
    /// (`None` when there is none).
    pub fn load(explicit: Option<&Path>) -> Result<Option<Policy>> {
        let file = match explicit {
            Some(p) => p.to_path_buf(),
            None => {
                let default = crate::registries_conf::user_or_system_file("policy.json");
                if !default.is_file() {
                    return Ok(None);
                }
                default
            }
        };
        // Not a missing image (exit 2): a missing policy file is a usage error.
        let text = std::fs::read(&file).map_err(|e| {
            Error::invalid(format!("reading the trust policy {}: {e}", file.display()))
        })?;
        Self::parse(&text, &file).map(Some)
    }

    pub fn parse(text: &[u8], file: &Path) -> Result<Policy> {
        let mut p: Policy = serde_json::from_slice(text)
            .map_err(|e| Error::invalid(format!("invalid trust policy {}: {e}", file.display())))?;
        p.file = file.to_path_buf();
        if p.default.is_empty() {
            return Err(Error::invalid(format!(
                "invalid trust policy {}: \"default\" has no requirements",
                file.display()
            )));
        }
        Ok(p)
    }

    /// The requirements for `image`: its transport's most specific matching scope,
    /// else the transport's `""`, else the global default.
    fn requirements(&self, image: &ImageName) -> (&[Requirement], String) {
        let transport = image.transport().name();
        if let Some(scopes) = self.transports.get(transport) {
            for scope in scopes_of(image) {
                if let Some(r) = scopes.get(&scope) {
                    return (r, format!("{transport} scope {scope:?}"));
                }
            }
            if let Some(r) = scopes.get("") {
                return (r, format!("{transport} default"));
            }
        }
        (&self.default, "default".to_string())
    }

    /// Whether copying from `image` is allowed; the error says why not.
    pub fn check_source(&self, image: &ImageName) -> Result<()> {
        let (reqs, which) = self.requirements(image);
        for r in reqs {
            match r {
                Requirement::InsecureAcceptAnything => {}
                Requirement::Reject => {
                    return Err(Error::invalid(format!(
                        "Source image rejected: Running image {image} is rejected by policy ({which} in {})",
                        self.file.display()
                    )))
                }
                Requirement::SignedBy { .. } | Requirement::SigstoreSigned { .. } => {
                    let kind = match r {
                        Requirement::SignedBy { .. } => "signedBy",
                        _ => "sigstoreSigned",
                    };
                    return Err(Error::Unsupported(format!(
                        "Source image {image} must be signed ({kind}, {which} in {}), and scry does not verify signatures yet; use --insecure-policy to copy it unverified",
                        self.file.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// Policy scopes of `image`, most specific first (the transport default `""` aside).
fn scopes_of(image: &ImageName) -> Vec<String> {
    match image {
        ImageName::Docker(r) => {
            let mut out = vec![r.to_string()];
            let name = r.name();
            let mut cut = name.as_str();
            out.push(cut.to_string());
            while let Some((head, _)) = cut.rsplit_once('/') {
                out.push(head.to_string());
                cut = head;
            }
            // `*.example.com` for every parent domain of the host.
            let host = r.registry().split(':').next().unwrap_or_default();
            let mut rest = host;
            while let Some((_, parent)) = rest.split_once('.') {
                out.push(format!("*.{parent}"));
                rest = parent;
            }
            out
        }
        ImageName::Dir(p) => path_scopes(p, None),
        ImageName::Oci {
            path, reference, ..
        } => path_scopes(path, reference.as_deref()),
        ImageName::OciArchive {
            path, reference, ..
        } => path_scopes(path, reference.as_deref()),
        ImageName::DockerArchive { path, .. } => path_scopes(path, None),
        _ => Vec::new(),
    }
}

/// `PATH:REF` (when named), then the absolute path and each parent but `/`.
fn path_scopes(path: &Path, reference: Option<&str>) -> Vec<String> {
    let abs = std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let mut out = Vec::new();
    if let Some(r) = reference {
        out.push(format!("{}:{r}", abs.display()));
    }
    let mut cur = Some(abs.as_path());
    while let Some(p) = cur {
        if p.parent().is_none() {
            break; // "/" is not a scope
        }
        out.push(p.display().to_string());
        cur = p.parent();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::parse(json.as_bytes(), Path::new("policy.json")).unwrap()
    }

    fn docker(s: &str) -> ImageName {
        ImageName::parse(&format!("docker://{s}")).unwrap()
    }

    #[test]
    fn the_most_specific_scope_decides() {
        let p = policy(
            r#"{"default":[{"type":"reject"}],
                "transports":{"docker":{
                    "reg.example:5000/team":[{"type":"insecureAcceptAnything"}],
                    "reg.example:5000/team/locked":[{"type":"reject"}],
                    "*.corp.example":[{"type":"insecureAcceptAnything"}],
                    "docker.io/library/busybox:1":[{"type":"insecureAcceptAnything"}]},
                 "dir":{"":[{"type":"insecureAcceptAnything"}]}}}"#,
        );
        assert!(p
            .check_source(&docker("reg.example:5000/team/app:1"))
            .is_ok());
        let e = p
            .check_source(&docker("reg.example:5000/team/locked:1"))
            .unwrap_err();
        assert!(e.to_string().contains("rejected by policy"), "{e}");
        assert!(p.check_source(&docker("reg.example:5000/other:1")).is_err());
        assert!(p.check_source(&docker("a.b.corp.example/x:1")).is_ok());
        assert!(p.check_source(&docker("busybox:1")).is_ok());
        assert!(p.check_source(&docker("busybox:2")).is_err());
        assert!(p
            .check_source(&ImageName::parse("dir:/tmp/x").unwrap())
            .is_ok());
        assert!(p
            .check_source(&ImageName::parse("oci:/tmp/x:1").unwrap())
            .is_err());
    }

    #[test]
    fn signature_requirements_are_refused_not_skipped() {
        let p = policy(
            r#"{"default":[{"type":"insecureAcceptAnything"}],
                "transports":{"docker":{"quay.io":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"/k.gpg"}]}}}"#,
        );
        let e = p.check_source(&docker("quay.io/a/b:1")).unwrap_err();
        assert!(e.to_string().contains("does not verify signatures"), "{e}");
        assert!(p.check_source(&docker("ghcr.io/a/b:1")).is_ok());
    }

    #[test]
    fn strict_parsing() {
        for bad in [
            r#"{"transports":{}}"#,
            r#"{"default":[]}"#,
            r#"{"default":[{"type":"acceptEverything"}]}"#,
            r#"{"default":[{"type":"reject"}],"extra":1}"#,
        ] {
            let e = Policy::parse(bad.as_bytes(), Path::new("/etc/p.json")).unwrap_err();
            assert!(e.to_string().contains("/etc/p.json"), "{bad}: {e}");
        }
    }
}
