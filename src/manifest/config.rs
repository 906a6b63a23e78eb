//! Image configuration (OCI `application/vnd.oci.image.config.v1+json`, Docker
//! `application/vnd.docker.container.image.v1+json`, and schema 1 `v1Compatibility`
//! entries): decoding with Go's leniency, and the OCI form `skopeo inspect --config`
//! prints.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::godecode::{parse_value, Obj};
use super::gojson::to_go_json_indent;
use super::gotime::GoTime;
use super::MAX_CONFIG_SIZE;
use crate::error::{Error, Result};

/// The fields of an image configuration that scry uses. Absent and `null` differ only
/// where skopeo's output differs (`None` prints `null` or is omitted, `Some(empty)`
/// prints `[]` / `{}`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageConfig {
    pub created: Option<GoTime>,
    pub author: String,
    pub architecture: String,
    pub variant: String,
    pub os: String,
    pub os_version: String,
    pub os_features: Option<Vec<String>>,
    /// `config.User` and the other `config.*` fields follow.
    pub user: String,
    pub exposed_ports: Option<BTreeSet<String>>,
    pub env: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub volumes: Option<BTreeSet<String>>,
    pub working_dir: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: String,
    pub args_escaped: bool,
    /// `rootfs.type` (normally "layers").
    pub rootfs_type: String,
    /// `rootfs.diff_ids`: uncompressed layer digests, base first.
    pub diff_ids: Option<Vec<String>>,
    pub history: Option<Vec<History>>,
    /// `docker_version`, a Docker-only field that skopeo reports for every format.
    pub docker_version: String,
}

/// One `history` entry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct History {
    pub created: Option<GoTime>,
    pub created_by: String,
    pub author: String,
    pub comment: String,
    pub empty_layer: bool,
}

/// Parses an image configuration blob (OCI or Docker; also a schema 1
/// `v1Compatibility` string). Fails on non-JSON, a non-object, a field of the wrong
/// type, a bad timestamp, or more than [`MAX_CONFIG_SIZE`] bytes.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    if bytes.len() > MAX_CONFIG_SIZE {
        return Err(Error::invalid(format!(
            "parsing image configuration: exceeded maximum allowed size of {MAX_CONFIG_SIZE} bytes"
        )));
    }
    let value = parse_value(bytes)
        .map_err(|e| Error::invalid(format!("parsing image configuration: {e}")))?;
    decode(&value).map_err(|e| e.context("parsing image configuration"))
}

fn decode(value: &serde_json::Value) -> Result<ImageConfig> {
    let root = Obj::root(value)?;
    let mut c = ImageConfig {
        created: root.time("created")?,
        author: root.string("author")?,
        architecture: root.string("architecture")?,
        variant: root.string("variant")?,
        os: root.string("os")?,
        os_version: root.string("os.version")?,
        os_features: root.strings("os.features")?,
        docker_version: root.string("docker_version")?,
        ..ImageConfig::default()
    };
    if let Some(cfg) = root.object("config")? {
        c.user = cfg.string("User")?;
        c.exposed_ports = cfg.key_set("ExposedPorts")?;
        c.env = cfg.strings("Env")?;
        c.entrypoint = cfg.strings("Entrypoint")?;
        c.cmd = cfg.strings("Cmd")?;
        c.volumes = cfg.key_set("Volumes")?;
        c.working_dir = cfg.string("WorkingDir")?;
        c.labels = cfg.string_map("Labels")?;
        c.stop_signal = cfg.string("StopSignal")?;
        c.args_escaped = cfg.boolean("ArgsEscaped")?;
    }
    if let Some(rootfs) = root.object("rootfs")? {
        c.rootfs_type = rootfs.string("type")?;
        c.diff_ids = rootfs.strings("diff_ids")?;
    }
    if let Some(entries) = root.objects("history")? {
        let mut history = Vec::with_capacity(entries.len());
        for entry in entries {
            let h = match entry {
                None => History::default(),
                Some(h) => History {
                    created: h.time("created")?,
                    created_by: h.string("created_by")?,
                    author: h.string("author")?,
                    comment: h.string("comment")?,
                    empty_layer: h.boolean("empty_layer")?,
                },
            };
            history.push(h);
        }
        c.history = Some(history);
    }
    Ok(c)
}

/// What `skopeo inspect --config` prints for an OCI or Docker schema 2 image: the
/// config decoded as an OCI image configuration (Docker-only fields dropped) and
/// re-encoded with 4-space indentation (no trailing newline).
pub fn inspect_config_json(config_bytes: &[u8]) -> Result<String> {
    Ok(parse_config(config_bytes)?.to_oci_json_indent())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn none_or_empty<T>(v: &Option<Vec<T>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

fn none_or_empty_set(v: &Option<BTreeSet<String>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

fn none_or_empty_map(v: &Option<BTreeMap<String, String>>) -> bool {
    v.as_ref().is_none_or(|v| v.is_empty())
}

/// Go's `map[string]struct{}` encoding: every key maps to `{}`.
fn as_empty_objects<S: serde::Serializer>(
    set: &Option<BTreeSet<String>>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let set = set.as_ref().expect("skipped when None");
    let mut map = serializer.serialize_map(Some(set.len()))?;
    for key in set {
        map.serialize_entry(key, &serde_json::Map::new())?;
    }
    map.end()
}

/// The OCI image-spec `Image` struct in Go's field order and `omitempty` rules.
#[derive(Serialize)]
struct OciImageOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<GoTime>,
    #[serde(skip_serializing_if = "str::is_empty")]
    author: &'a str,
    architecture: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    variant: &'a str,
    os: &'a str,
    #[serde(rename = "os.version", skip_serializing_if = "str::is_empty")]
    os_version: &'a str,
    #[serde(rename = "os.features", skip_serializing_if = "none_or_empty")]
    os_features: &'a Option<Vec<String>>,
    config: OciConfigOut<'a>,
    rootfs: RootFsOut<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<HistoryOut<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct OciConfigOut<'a> {
    #[serde(skip_serializing_if = "str::is_empty")]
    user: &'a str,
    #[serde(
        skip_serializing_if = "none_or_empty_set",
        serialize_with = "as_empty_objects"
    )]
    exposed_ports: &'a Option<BTreeSet<String>>,
    #[serde(skip_serializing_if = "none_or_empty")]
    env: &'a Option<Vec<String>>,
    #[serde(skip_serializing_if = "none_or_empty")]
    entrypoint: &'a Option<Vec<String>>,
    #[serde(skip_serializing_if = "none_or_empty")]
    cmd: &'a Option<Vec<String>>,
    #[serde(
        skip_serializing_if = "none_or_empty_set",
        serialize_with = "as_empty_objects"
    )]
    volumes: &'a Option<BTreeSet<String>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    working_dir: &'a str,
    #[serde(skip_serializing_if = "none_or_empty_map")]
    labels: &'a Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "str::is_empty")]
    stop_signal: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    args_escaped: bool,
}

#[derive(Serialize)]
struct RootFsOut<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    diff_ids: &'a Option<Vec<String>>,
}

#[derive(Serialize)]
struct HistoryOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    created: Option<GoTime>,
    #[serde(skip_serializing_if = "str::is_empty")]
    created_by: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    author: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    comment: &'a str,
    #[serde(skip_serializing_if = "is_false")]
    empty_layer: bool,
}

impl ImageConfig {
    fn oci_out(&self) -> OciImageOut<'_> {
        OciImageOut {
            created: self.created,
            author: &self.author,
            architecture: &self.architecture,
            variant: &self.variant,
            os: &self.os,
            os_version: &self.os_version,
            os_features: &self.os_features,
            config: OciConfigOut {
                user: &self.user,
                exposed_ports: &self.exposed_ports,
                env: &self.env,
                entrypoint: &self.entrypoint,
                cmd: &self.cmd,
                volumes: &self.volumes,
                working_dir: &self.working_dir,
                labels: &self.labels,
                stop_signal: &self.stop_signal,
                args_escaped: self.args_escaped,
            },
            rootfs: RootFsOut {
                kind: &self.rootfs_type,
                diff_ids: &self.diff_ids,
            },
            history: self
                .history
                .iter()
                .flatten()
                .map(|h| HistoryOut {
                    created: h.created,
                    created_by: &h.created_by,
                    author: &h.author,
                    comment: &h.comment,
                    empty_layer: h.empty_layer,
                })
                .collect(),
        }
    }

    /// This configuration as an OCI image configuration, indented as skopeo prints it
    /// for `inspect --config`.
    pub fn to_oci_json_indent(&self) -> String {
        to_go_json_indent(&self.oci_out())
    }

    /// This configuration as compact OCI image configuration JSON (Docker-only fields
    /// dropped), as containers/image writes a converted config.
    pub fn to_oci_json_compact(&self) -> String {
        super::gojson::to_go_json_compact(&self.oci_out())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_oci_fields_and_ignores_docker_ones() {
        let c = parse_config(
            br#"{"created":"2020-01-02T03:04:05Z","architecture":"arm","variant":"v7","os":"linux",
                "docker_version":"1.2","container_config":{"Hostname":"x"},
                "config":{"Env":["A=1"],"Labels":{"b":"2","a":"1"},"ExposedPorts":{"80/tcp":{}},
                          "Hostname":"h","ArgsEscaped":true},
                "rootfs":{"type":"layers","diff_ids":["sha256:aa"]},
                "history":[{"created_by":"x","empty_layer":true}]}"#,
        )
        .unwrap();
        assert_eq!(c.created.unwrap().to_rfc3339_nano(), "2020-01-02T03:04:05Z");
        assert_eq!((c.architecture.as_str(), c.variant.as_str()), ("arm", "v7"));
        assert_eq!(c.docker_version, "1.2");
        assert_eq!(c.env, Some(vec!["A=1".to_string()]));
        assert_eq!(
            c.labels.as_ref().unwrap().keys().collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(c.args_escaped);
        assert_eq!(c.diff_ids.as_deref(), Some(&["sha256:aa".to_string()][..]));
        let h = &c.history.as_ref().unwrap()[0];
        assert!(h.empty_layer && h.created.is_none());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_config(br#"{"architecture":5}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "parsing image configuration: field \"architecture\": expected a string, found a number"
        );
        let e = parse_config(br#"{"created":"yesterday"}"#).unwrap_err();
        assert!(e.to_string().contains("parsing time \"yesterday\""), "{e}");
        let e = parse_config(b"not json").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("parsing image configuration: expected"),
            "{e}"
        );
        assert_eq!(e.kind(), crate::error::ErrorKind::InvalidInput);
    }

    #[test]
    fn size_limit() {
        let mut big = b"{\"a\":\"".to_vec();
        big.resize(MAX_CONFIG_SIZE + 1, b'x');
        let e = parse_config(&big).unwrap_err();
        assert!(e
            .to_string()
            .contains("exceeded maximum allowed size of 4194304 bytes"));
    }

    #[test]
    fn oci_output_omits_empty_but_keeps_config_and_rootfs() {
        let c = parse_config(br#"{"architecture":"amd64","os":"linux","config":{"Env":[],"Labels":{}},"history":[]}"#)
            .unwrap();
        assert_eq!(
            c.to_oci_json_compact(),
            r#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"","diff_ids":null}}"#
        );
    }
}
