//! Docker image manifest schema 1 (read only): parsing with containers/image's
//! validation and layer de-duplication, its embedded configuration, and the schema 2
//! style configuration derived from it.

use serde::Deserialize;

use super::config::{parse_config, History, ImageConfig};
use super::godecode::{parse_value, Obj};
use super::gotime::GoTime;
use super::media_types::{DOCKER_LAYER_GZIP, DOCKER_V2S1, DOCKER_V2S1_SIGNED};
use super::BlobRef;
use crate::error::{Error, Result};

/// A parsed schema 1 manifest, after containers/image's `fixManifestLayers`: entries
/// whose v1 ID repeats the next (older) entry's ID are dropped, so `fs_layers`,
/// `history` and `compat` have equal lengths and are newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Schema1 {
    pub name: String,
    pub tag: String,
    pub architecture: String,
    /// Layer blob digests, newest first.
    pub fs_layers: Vec<String>,
    /// The raw `v1Compatibility` strings, newest first.
    pub history: Vec<String>,
    /// The decoded `v1Compatibility` fields that matter, newest first.
    pub compat: Vec<V1Compat>,
    /// Whether the document carries JWS signatures (`…+prettyjws`).
    pub signed: bool,
}

/// The fields of one `v1Compatibility` entry used for layers and history.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct V1Compat {
    pub id: String,
    pub parent: String,
    pub comment: String,
    /// Go's zero time when absent.
    pub created: GoTime,
    pub author: String,
    /// `container_config.Cmd`.
    pub created_by_cmd: Vec<String>,
    /// `throwaway`: the layer is empty.
    pub throwaway: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    fs_layers: Option<Vec<FsLayer>>,
    #[serde(default)]
    history: Option<Vec<HistoryEntry>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsLayer {
    #[serde(default)]
    blob_sum: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HistoryEntry {
    #[serde(default)]
    v1_compatibility: Option<String>,
}

fn is_v1_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn decode_compat(raw: &str, index: usize) -> Result<V1Compat> {
    let wrap = |e: Error| Error::invalid(format!("parsing v2s1 history entry {index}: {e}"));
    let value = parse_value(raw.as_bytes()).map_err(|e| wrap(Error::invalid(e.to_string())))?;
    let o = Obj::root(&value).map_err(wrap)?;
    let get = || -> Result<V1Compat> {
        Ok(V1Compat {
            id: o.string("id")?,
            parent: o.string("parent")?,
            comment: o.string("comment")?,
            created: o.time("created")?.unwrap_or_else(GoTime::zero),
            author: o.string("author")?,
            created_by_cmd: match o.object("container_config")? {
                Some(cc) => cc.strings("Cmd")?.unwrap_or_default(),
                None => Vec::new(),
            },
            throwaway: o.boolean("throwaway")?,
        })
    };
    get().map_err(wrap)
}

impl Schema1 {
    /// Parses and validates a schema 1 manifest (the `parsing manifest (…)` prefix is
    /// added by the caller).
    pub(crate) fn parse(bytes: &[u8], signed: bool) -> Result<Schema1> {
        let doc: Doc = serde_json::from_slice(&super::gojson::sanitize_input(bytes))
            .map_err(|e| Error::invalid(e.to_string()))?;
        let version = doc.schema_version.unwrap_or(0);
        if version != 1 {
            return Err(Error::invalid(format!(
                "unsupported schema version {version}"
            )));
        }
        let fs_layers: Vec<String> = doc
            .fs_layers
            .unwrap_or_default()
            .into_iter()
            .map(|l| l.blob_sum.unwrap_or_default())
            .collect();
        let history: Vec<String> = doc
            .history
            .unwrap_or_default()
            .into_iter()
            .map(|h| h.v1_compatibility.unwrap_or_default())
            .collect();
        if fs_layers.len() != history.len() {
            return Err(Error::invalid(
                "length of history not equal to number of layers",
            ));
        }
        if fs_layers.is_empty() {
            return Err(Error::invalid("no FSLayers in manifest"));
        }
        let compat = history
            .iter()
            .enumerate()
            .map(|(i, h)| decode_compat(h, i))
            .collect::<Result<Vec<_>>>()?;
        let mut s = Schema1 {
            name: doc.name.unwrap_or_default(),
            tag: doc.tag.unwrap_or_default(),
            architecture: doc.architecture.unwrap_or_default(),
            fs_layers,
            history,
            compat,
            signed,
        };
        s.fix_layers()?;
        Ok(s)
    }

    /// containers/image's `fixManifestLayers`: validates v1 IDs and the parent chain,
    /// and drops the newer of two adjacent entries with the same ID.
    fn fix_layers(&mut self) -> Result<()> {
        for c in &self.compat {
            if !is_v1_id(&c.id) {
                return Err(Error::invalid(format!("image ID {:?} is invalid", c.id)));
            }
        }
        if !self
            .compat
            .last()
            .map(|c| c.parent.is_empty())
            .unwrap_or(true)
        {
            return Err(Error::invalid(
                "Invalid parent ID in the base layer of the image",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut last: Option<&str> = None;
        for c in &self.compat {
            if last != Some(c.id.as_str()) && seen.contains(c.id.as_str()) {
                return Err(Error::invalid(format!(
                    "ID {} appears multiple times in manifest",
                    c.id
                )));
            }
            last = Some(&c.id);
            seen.insert(c.id.as_str());
        }
        for i in (0..self.compat.len().saturating_sub(1)).rev() {
            if self.compat[i].id == self.compat[i + 1].id {
                self.fs_layers.remove(i);
                self.history.remove(i);
                self.compat.remove(i);
            } else if self.compat[i].parent != self.compat[i + 1].id {
                return Err(Error::invalid(format!(
                    "Invalid parent ID. Expected {}, got {}",
                    self.compat[i + 1].id,
                    self.compat[i].parent
                )));
            }
        }
        Ok(())
    }

    pub fn media_type(&self) -> &'static str {
        if self.signed {
            DOCKER_V2S1_SIGNED
        } else {
            DOCKER_V2S1
        }
    }

    /// Layers base first, empty (throwaway) layers included and marked. Sizes are
    /// unknown (-1); schema 1 layers are always gzip-compressed tars.
    pub fn layers(&self) -> Vec<BlobRef> {
        self.fs_layers
            .iter()
            .zip(&self.compat)
            .rev()
            .map(|(digest, c)| BlobRef {
                digest: digest.clone(),
                size: -1,
                media_type: DOCKER_LAYER_GZIP.to_string(),
                annotations: None,
                urls: None,
                empty_layer: c.throwaway,
            })
            .collect()
    }

    /// The image configuration as skopeo's `inspect` reads it: the newest
    /// `v1Compatibility` entry decoded as a Docker config.
    pub fn image_config(&self) -> Result<ImageConfig> {
        parse_config(self.history[0].as_bytes())
    }

    /// The OCI configuration containers/image derives when converting to schema 2
    /// (what `skopeo inspect --config` prints): the newest `v1Compatibility` entry
    /// with `rootfs` (one empty diff ID per non-empty layer, as they are unknown
    /// without the layer data) and `history` (base first) rebuilt from all entries.
    pub fn oci_config(&self) -> Result<ImageConfig> {
        self.oci_config_with_diff_ids(None)
    }

    /// As [`Schema1::oci_config`] with known diff IDs for the non-empty layers, base
    /// first.
    pub fn oci_config_with_diff_ids(&self, diff_ids: Option<&[String]>) -> Result<ImageConfig> {
        let mut config = self.image_config()?;
        // Docker before 1.8.3 wrote configs missing fields that are not `omitempty`;
        // containers/image re-encodes them, which makes `created` always present.
        if !config.docker_version.is_empty()
            && docker_version_less(&config.docker_version, "1.8.3")
            && config.created.is_none()
        {
            config.created = Some(GoTime::zero());
        }
        let non_empty = self.compat.iter().filter(|c| !c.throwaway).count();
        let ids = match diff_ids {
            Some(ids) if ids.len() == non_empty => ids.to_vec(),
            Some(ids) => {
                return Err(Error::invalid(format!(
                    "schema 1 image has {non_empty} non-empty layers but {} diff IDs were given",
                    ids.len()
                )))
            }
            None => vec![String::new(); non_empty],
        };
        config.rootfs_type = "layers".to_string();
        config.diff_ids = Some(ids);
        config.history = Some(
            self.compat
                .iter()
                .rev()
                .map(|c| History {
                    created: Some(c.created),
                    created_by: c.created_by_cmd.join(" "),
                    author: c.author.clone(),
                    comment: c.comment.clone(),
                    empty_layer: c.throwaway,
                })
                .collect(),
        );
        Ok(config)
    }
}

/// One `history` entry as containers/image's schema 2 conversion writes it (Go field
/// order; `created` always present).
#[derive(serde::Serialize)]
struct Schema2History<'a> {
    created: GoTime,
    #[serde(skip_serializing_if = "str::is_empty")]
    author: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    created_by: String,
    #[serde(skip_serializing_if = "str::is_empty")]
    comment: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    empty_layer: bool,
}

impl Schema1 {
    /// The Docker schema 2 configuration blob containers/image builds when converting
    /// this image (`ToSchema2Config`): the newest `v1Compatibility` object without its
    /// v1 bookkeeping members (`id`, `parent`, `parent_id`, `layer_id`, `throwaway`,
    /// `Size`), plus `rootfs` (`diff_ids`: the uncompressed digests of the non-empty
    /// layers, base first) and `history` rebuilt from every entry; members sorted by
    /// name and values re-encoded compactly, as Go marshals a map of raw messages.
    ///
    /// Images written by Docker before 1.8.3 are re-encoded through Docker's full v1
    /// image struct by containers/image; scry keeps their members as they are, so such
    /// configs can differ from skopeo's in members that Docker left out.
    pub fn to_schema2_config(&self, diff_ids: &[String]) -> Result<Vec<u8>> {
        let non_empty = self.compat.iter().filter(|c| !c.throwaway).count();
        if diff_ids.len() != non_empty {
            return Err(Error::invalid(format!(
                "schema 1 image has {non_empty} non-empty layers but {} diff IDs were given",
                diff_ids.len()
            )));
        }
        let top = self
            .history
            .first()
            .ok_or_else(|| Error::invalid("image has no layers"))?;
        let mut members = std::collections::BTreeMap::new();
        for (k, v) in super::jsonraw::object_members(top.as_bytes())
            .map_err(|e| e.context("decoding configuration"))?
        {
            members.insert(k, super::jsonraw::go_compact(v));
        }
        for k in ["id", "parent", "parent_id", "layer_id", "throwaway", "Size"] {
            members.remove(k);
        }
        let mut rootfs = serde_json::Map::new();
        rootfs.insert("type".into(), "layers".into());
        if !diff_ids.is_empty() {
            rootfs.insert("diff_ids".into(), diff_ids.into());
        }
        members.insert(
            "rootfs".into(),
            super::to_go_json_compact(&rootfs).into_bytes(),
        );
        let history: Vec<Schema2History> = self
            .compat
            .iter()
            .rev()
            .map(|c| Schema2History {
                created: c.created,
                author: &c.author,
                created_by: c.created_by_cmd.join(" "),
                comment: &c.comment,
                empty_layer: c.throwaway,
            })
            .collect();
        members.insert(
            "history".into(),
            super::to_go_json_compact(&history).into_bytes(),
        );
        let mut out = b"{".to_vec();
        for (i, (k, v)) in members.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(super::to_go_json_compact(k).as_bytes());
            out.push(b':');
            out.extend_from_slice(v);
        }
        out.push(b'}');
        Ok(out)
    }
}

/// Docker's API version comparison: dot-separated fields compared numerically, a
/// missing or non-numeric field counting as 0.
fn docker_version_less(a: &str, b: &str) -> bool {
    let parse = |s: &str| -> Vec<i64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let (va, vb) = (parse(a), parse(b));
    for i in 0..va.len().max(vb.len()) {
        let (x, y) = (
            va.get(i).copied().unwrap_or(0),
            vb.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x < y;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(c: char) -> String {
        c.to_string().repeat(64)
    }

    fn manifest(entries: &[(String, serde_json::Value)]) -> Vec<u8> {
        let fs: Vec<_> = entries.iter().map(|(b, _)| json!({"blobSum": b})).collect();
        let hist: Vec<_> = entries
            .iter()
            .map(|(_, h)| json!({"v1Compatibility": h.to_string()}))
            .collect();
        serde_json::to_vec(&json!({"schemaVersion": 1, "name": "n", "tag": "t",
                                   "fsLayers": fs, "history": hist}))
        .unwrap()
    }

    #[test]
    fn adjacent_duplicate_ids_are_dropped_keeping_the_older() {
        let m = manifest(&[
            (
                "sha256:3".into(),
                json!({"id": id('c'), "parent": id('b'), "throwaway": true}),
            ),
            (
                "sha256:2".into(),
                json!({"id": id('b'), "parent": id('a'), "comment": "newer"}),
            ),
            (
                "sha256:1".into(),
                json!({"id": id('b'), "parent": id('a'), "comment": "older"}),
            ),
            ("sha256:1".into(), json!({"id": id('a')})),
        ]);
        let s = Schema1::parse(&m, false).unwrap();
        assert_eq!(s.fs_layers, ["sha256:3", "sha256:1", "sha256:1"]);
        assert_eq!(s.compat[1].comment, "older");
        let layers: Vec<_> = s
            .layers()
            .into_iter()
            .map(|l| (l.digest, l.empty_layer))
            .collect();
        assert_eq!(
            layers,
            [
                ("sha256:1".into(), false),
                ("sha256:1".into(), false),
                ("sha256:3".into(), true)
            ]
        );
        assert_eq!(s.tag, "t");
    }

    #[test]
    fn validation_errors() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                br#"{"schemaVersion":2}"#.to_vec(),
                "unsupported schema version 2",
            ),
            (
                br#"{"schemaVersion":1}"#.to_vec(),
                "no FSLayers in manifest",
            ),
            (
                br#"{"schemaVersion":1,"fsLayers":[{"blobSum":"x"}],"history":[]}"#.to_vec(),
                "length of history not equal to number of layers",
            ),
            (
                manifest(&[("x".into(), json!({"id": "short"}))]),
                "image ID \"short\" is invalid",
            ),
            (
                manifest(&[("x".into(), json!({"id": id('a'), "parent": id('b')}))]),
                "Invalid parent ID in the base layer of the image",
            ),
            (
                manifest(&[
                    ("x".into(), json!({"id": id('a'), "parent": id('b')})),
                    ("x".into(), json!({"id": id('b'), "parent": id('a')})),
                    ("x".into(), json!({"id": id('a')})),
                ]),
                "appears multiple times in manifest",
            ),
            (
                manifest(&[
                    ("x".into(), json!({"id": id('b'), "parent": id('c')})),
                    ("x".into(), json!({"id": id('a')})),
                ]),
                "Invalid parent ID. Expected aaaa",
            ),
            (
                manifest(&[("x".into(), json!({"id": id('a'), "created": 5}))]),
                "parsing v2s1 history entry 0: field \"created\"",
            ),
        ];
        for (bytes, want) in cases {
            let e = Schema1::parse(&bytes, false).unwrap_err();
            assert!(e.to_string().contains(want), "{e} !~ {want}");
        }
    }

    #[test]
    fn version_comparison() {
        assert!(docker_version_less("1.8.2", "1.8.3"));
        assert!(docker_version_less("1.8", "1.8.3"));
        assert!(!docker_version_less("1.10.0", "1.8.3"));
        assert!(!docker_version_less("1.8.3", "1.8.3"));
        assert!(docker_version_less("0.x", "1"));
    }

    #[test]
    fn derived_config_history_and_diff_ids() {
        let m = manifest(&[
            (
                "sha256:2".into(),
                json!({"id": id('b'), "parent": id('a'), "throwaway": true, "os": "linux",
                       "created": "2020-01-01T00:00:00Z", "container_config": {"Cmd": ["a", "b"]}}),
            ),
            ("sha256:1".into(), json!({"id": id('a'), "author": "me"})),
        ]);
        let s = Schema1::parse(&m, false).unwrap();
        let c = s.oci_config().unwrap();
        assert_eq!(c.diff_ids.as_deref().unwrap(), [String::new()]);
        let h = c.history.unwrap();
        assert_eq!(h[0].author, "me");
        assert!(h[0].created.unwrap().is_zero());
        assert_eq!(h[1].created_by, "a b");
        assert!(h[1].empty_layer);
        let with = s
            .oci_config_with_diff_ids(Some(&["sha256:d".to_string()]))
            .unwrap();
        assert_eq!(with.diff_ids.unwrap(), ["sha256:d"]);
        assert!(s.oci_config_with_diff_ids(Some(&[])).is_err());
    }

    #[test]
    fn schema2_config_is_byte_identical_to_skopeos() {
        let bytes = crate::manifest::testdata("convert", "schema1-manifest.json");
        let s = Schema1::parse(&bytes, true).unwrap();
        let want = crate::manifest::testdata("convert", "schema1-to-v2s2-config.json");
        let wanted: serde_json::Value = serde_json::from_slice(&want).unwrap();
        let ids: Vec<String> = wanted["rootfs"]["diff_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let got = s.to_schema2_config(&ids).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want)
        );
        // One diff ID per non-empty layer, no more, no less.
        assert!(s.to_schema2_config(&ids[..1]).is_err());
    }

    #[test]
    fn schema2_config_drops_v1_members_and_sorts_the_rest() {
        let m = manifest(&[(
            "sha256:1".into(),
            json!({"id": id('a'), "parent_id": "x", "layer_id": "y", "Size": 3,
                   "throwaway": false, "z": "<", "a": {"k": [1, 2]}}),
        )]);
        let s = Schema1::parse(&m, false).unwrap();
        let got = s.to_schema2_config(&["sha256:d".to_string()]).unwrap();
        assert_eq!(
            String::from_utf8(got).unwrap(),
            r#"{"a":{"k":[1,2]},"history":[{"created":"0001-01-01T00:00:00Z"}],"rootfs":{"type":"layers","diff_ids":["sha256:d"]},"z":"\u003c"}"#
        );
    }
}
