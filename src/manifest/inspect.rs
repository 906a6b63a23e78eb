//! The JSON `skopeo inspect` prints (skopeo 1.9.3 as packaged by Debian): field
//! order, `null` / `[]` / omitted rules and value formats.
//!
//! Rules (checked against the real binary):
//! - Fields, in order: `Name` (omitted when empty, e.g. for `dir:`/`oci:` images),
//!   `Tag` (omitted when empty; only a schema 1 manifest's `tag` fills it — never the
//!   reference's tag), `Digest` (of the top-level manifest, before any platform
//!   choice), `RepoTags` (`[]` when not listed), `Created`, `DockerVersion`, `Labels`,
//!   `Architecture`, `Os`, `Layers` (`[]` when none), `Env`. No `Variant`, and no
//!   `LayersData` (upstream skopeo prints one; [`InspectOutput::with_layers_data`]
//!   adds it for that format).
//! - `Created`: OCI configs give `null` when absent; Docker schema 2 and schema 1 give
//!   `"0001-01-01T00:00:00Z"`. RFC 3339 with trimmed nanoseconds, original offset kept.
//! - `Labels` / `Env`: `null` when absent or null in the config, `{}` / `[]` when empty.
//! - Labels sorted by key; strings escaped as Go does (`<` → `\u003c`, …).

use std::collections::BTreeMap;

use serde::Serialize;

use super::config::ImageConfig;
use super::gotime::GoTime;
use super::Manifest;

/// One `LayersData` entry (upstream skopeo's format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InspectLayer {
    #[serde(rename = "MIMEType")]
    pub mime_type: String,
    #[serde(rename = "Digest")]
    pub digest: String,
    #[serde(rename = "Size")]
    pub size: i64,
    #[serde(rename = "Annotations")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// `skopeo inspect` output; serialize with [`super::to_go_json_indent`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InspectOutput {
    #[serde(rename = "Name", skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(rename = "Tag", skip_serializing_if = "String::is_empty")]
    pub tag: String,
    #[serde(rename = "Digest")]
    pub digest: String,
    #[serde(rename = "RepoTags")]
    pub repo_tags: Vec<String>,
    #[serde(rename = "Created")]
    pub created: Option<GoTime>,
    #[serde(rename = "DockerVersion")]
    pub docker_version: String,
    #[serde(rename = "Labels")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(rename = "Architecture")]
    pub architecture: String,
    #[serde(rename = "Os")]
    pub os: String,
    #[serde(rename = "Layers")]
    pub layers: Vec<String>,
    /// Not printed by the reference skopeo build; see [`InspectOutput::with_layers_data`].
    #[serde(rename = "LayersData", skip_serializing_if = "Option::is_none")]
    pub layers_data: Option<Vec<InspectLayer>>,
    #[serde(rename = "Env")]
    pub env: Option<Vec<String>>,
}

/// Builds the inspect output.
///
/// - `name`: the repository as skopeo names it (e.g. `docker.io/library/alpine`), ""
///   for transports without one.
/// - `digest`: digest of the top-level manifest (an index's own digest when the
///   reference named one).
/// - `manifest`: the single-image manifest (after choosing an instance of an index).
/// - `config`: from [`Manifest::image_config`].
/// - `repo_tags`: the repository's tags, `None` for `--no-tags` or when not listed.
pub fn build_inspect(
    name: &str,
    digest: &str,
    manifest: &Manifest,
    config: &ImageConfig,
    repo_tags: Option<Vec<String>>,
) -> InspectOutput {
    let created = match manifest {
        Manifest::Oci(_) => config.created,
        _ => Some(config.created.unwrap_or_else(GoTime::zero)),
    };
    let tag = match manifest {
        Manifest::Schema1(s) => s.tag.clone(),
        _ => String::new(),
    };
    InspectOutput {
        name: name.to_string(),
        tag,
        digest: digest.to_string(),
        repo_tags: repo_tags.unwrap_or_default(),
        created,
        docker_version: config.docker_version.clone(),
        labels: config.labels.clone(),
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        layers: manifest.layers().into_iter().map(|l| l.digest).collect(),
        layers_data: None,
        env: config.env.clone(),
    }
}

impl InspectOutput {
    /// Adds upstream skopeo's `LayersData` (media type, digest, size, annotations per
    /// layer; schema 1 layers have no media type and size -1).
    pub fn with_layers_data(mut self, manifest: &Manifest) -> InspectOutput {
        let schema1 = matches!(manifest, Manifest::Schema1(_));
        self.layers_data = Some(
            manifest
                .layers()
                .into_iter()
                .map(|l| InspectLayer {
                    mime_type: if schema1 { String::new() } else { l.media_type },
                    digest: l.digest,
                    size: l.size,
                    annotations: l.annotations,
                })
                .collect(),
        );
        self
    }
}

#[cfg(test)]
#[path = "inspect_tests.rs"]
mod tests;
