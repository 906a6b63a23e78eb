//! Writing an archive exactly as skopeo 1.9.3 does: the tar stream (USTAR headers as Go's
//! `archive/tar` writes them: mode 0444, uid/gid 0, time 0, no user names), the entry
//! order (layers `<hex>.tar`, config `<hex>.json`, one legacy directory per layer with a
//! `layer.tar` symlink, `VERSION` and `json`, then `manifest.json` and `repositories`),
//! and the legacy layer IDs (digests of the per-layer `json` documents).

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use super::{MANIFEST_FILE, REPOSITORIES_FILE};
use crate::error::{Error, Result};
use crate::manifest::jsonraw::{go_compact, object_members};
use crate::manifest::{sha256_digest, to_go_json_compact};

const BLOCK: usize = 512;

/// Attributes of the image config copied into the top layer's legacy `json`.
const LEGACY_ATTRIBUTES: [&str; 7] = [
    "architecture",
    "config",
    "container",
    "container_config",
    "created",
    "docker_version",
    "os",
];

/// Writes octal `value` into `field` as Go does: zero-padded, NUL-terminated.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = format!("{value:o}");
    let width = field.len() - 1;
    let padded = format!("{digits:0>width$}");
    field[..width].copy_from_slice(&padded.as_bytes()[padded.len() - width..]);
    field[width] = 0;
}

/// Writes a size: octal when it fits the 11 digits (below 8 GiB), else in the base-256
/// form GNU tar introduced and Go's and every other common reader accept.
fn put_size(field: &mut [u8], size: u64) {
    if size < 1 << 33 {
        put_octal(field, size);
        return;
    }
    field.fill(0);
    field[0] = 0x80;
    let n = field.len();
    field[n - 8..].copy_from_slice(&size.to_be_bytes());
}

/// A USTAR header: regular file (`b'0'`, mode 0444) or symlink (`b'2'`, mode 0).
fn ustar_header(name: &str, size: u64, typeflag: u8, linkname: &str) -> Result<[u8; BLOCK]> {
    if name.len() > 100 || linkname.len() > 100 {
        return Err(Error::other(format!(
            "tar entry name {name:?} or link {linkname:?} is longer than 100 bytes"
        )));
    }
    let mut h = [0u8; BLOCK];
    h[..name.len()].copy_from_slice(name.as_bytes());
    put_octal(&mut h[100..108], if typeflag == b'2' { 0 } else { 0o444 });
    put_octal(&mut h[108..116], 0); // uid
    put_octal(&mut h[116..124], 0); // gid
    put_size(&mut h[124..136], size);
    put_octal(&mut h[136..148], 0); // mtime
    h[156] = typeflag;
    h[157..157 + linkname.len()].copy_from_slice(linkname.as_bytes());
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    put_octal(&mut h[329..337], 0); // devmajor
    put_octal(&mut h[337..345], 0); // devminor
    h[148..156].fill(b' ');
    let sum: u64 = h.iter().map(|&b| b as u64).sum();
    put_octal(&mut h[148..155], sum);
    h[155] = b' ';
    Ok(h)
}

/// A tar stream in the making.
pub struct TarWriter<W: Write> {
    out: W,
}

impl<W: Write> TarWriter<W> {
    pub fn new(out: W) -> Self {
        TarWriter { out }
    }

    /// A regular file of exactly `size` bytes read from `data`.
    pub fn file(&mut self, name: &str, size: u64, data: &mut impl Read) -> Result<()> {
        self.out.write_all(&ustar_header(name, size, b'0', "")?)?;
        let copied = io::copy(&mut data.take(size), &mut self.out)?;
        if copied != size {
            return Err(Error::other(format!(
                "size mismatch when copying {name}: expected {size}, got {copied}"
            )));
        }
        self.pad(size)
    }

    pub fn bytes(&mut self, name: &str, data: &[u8]) -> Result<()> {
        self.file(name, data.len() as u64, &mut &data[..])
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> Result<()> {
        self.out.write_all(&ustar_header(name, 0, b'2', target)?)?;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (size % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    /// Writes the end-of-archive marker and returns the output.
    pub fn finish(mut self) -> Result<W> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        Ok(self.out)
    }
}

/// One layer directory of the legacy layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyLayer {
    pub id: String,
    /// Digest of the layer the directory's `layer.tar` links to.
    pub layer_digest: String,
    pub json: Vec<u8>,
}

/// A JSON object with members sorted by name (as Go writes maps); values are raw JSON.
fn sorted_object(members: &BTreeMap<&str, Vec<u8>>) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(to_go_json_compact(k).as_bytes());
        out.push(b':');
        out.extend_from_slice(v);
    }
    out.push(b'}');
    out
}

fn json_string(s: &str) -> Vec<u8> {
    to_go_json_compact(&s).into_bytes()
}

/// The legacy layer directories for `layer_digests` (base first): each layer's ID is the
/// digest of its `json` written with the layer's chain ID and without its own ID; the top
/// layer's `json` carries some of the image config's attributes.
pub fn legacy_layers(layer_digests: &[String], config: &[u8]) -> Result<Vec<LegacyLayer>> {
    let members =
        object_members(config).map_err(|e| Error::invalid(format!("unmarshaling config: {e}")))?;
    let mut out: Vec<LegacyLayer> = Vec::with_capacity(layer_digests.len());
    let mut chain_id = String::new();
    for (i, digest) in layer_digests.iter().enumerate() {
        let mut m: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
        if let Some(parent) = out.last() {
            m.insert("parent", json_string(&parent.id));
        }
        if i + 1 == layer_digests.len() {
            for attr in LEGACY_ATTRIBUTES {
                let raw = members
                    .iter()
                    .rev()
                    .find(|(k, _)| k == attr)
                    .map(|(_, v)| go_compact(v))
                    .unwrap_or_else(|| b"null".to_vec());
                m.insert(attr, raw);
            }
        }
        chain_id = if chain_id.is_empty() {
            digest.clone()
        } else {
            sha256_digest(format!("{chain_id} {digest}").as_bytes())
        };
        m.insert("layer_id", json_string(&chain_id));
        let id = sha256_digest(&sorted_object(&m))
            .trim_start_matches("sha256:")
            .to_string();
        m.remove("layer_id");
        m.insert("id", json_string(&id));
        out.push(LegacyLayer {
            id,
            layer_digest: digest.clone(),
            json: sorted_object(&m),
        });
    }
    Ok(out)
}

/// A staged blob: its digest and where its bytes are.
#[derive(Debug, Clone)]
pub struct StagedBlob {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// Everything one archive holds.
#[derive(Debug, Clone)]
pub struct ArchivePlan {
    /// Layers in manifest order (a digest may repeat).
    pub layers: Vec<StagedBlob>,
    pub config: StagedBlob,
    pub config_bytes: Vec<u8>,
    /// `(name, tag)` pairs, e.g. `("docker.io/library/busybox", "latest")`.
    pub repo_tags: Vec<(String, String)>,
}

fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

#[derive(serde::Serialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// Writes the whole archive for `plan` to `out`.
pub fn write_archive<W: Write>(out: W, plan: &ArchivePlan) -> Result<W> {
    let mut tar = TarWriter::new(out);
    let mut written = std::collections::HashSet::new();
    for layer in &plan.layers {
        if written.insert(layer.digest.clone()) {
            let mut f = std::fs::File::open(&layer.path)?;
            tar.file(
                &format!("{}.tar", hex_of(&layer.digest)),
                layer.size,
                &mut f,
            )?;
        }
    }
    let config_name = format!("{}.json", hex_of(&plan.config.digest));
    tar.bytes(&config_name, &plan.config_bytes)?;

    let digests: Vec<String> = plan.layers.iter().map(|l| l.digest.clone()).collect();
    let legacy = legacy_layers(&digests, &plan.config_bytes)?;
    let mut seen = std::collections::HashSet::new();
    for l in &legacy {
        if !seen.insert(l.id.clone()) {
            continue;
        }
        tar.symlink(
            &format!("{}/layer.tar", l.id),
            &format!("../{}.tar", hex_of(&l.layer_digest)),
        )?;
        tar.bytes(&format!("{}/VERSION", l.id), b"1.0")?;
        tar.bytes(&format!("{}/json", l.id), &l.json)?;
    }

    let mut repo_tags: Vec<String> = Vec::new();
    let mut repositories: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for (name, tag) in &plan.repo_tags {
        let s = format!("{name}:{tag}");
        if !repo_tags.contains(&s) {
            repo_tags.push(s);
        }
        if let Some(top) = legacy.last() {
            repositories
                .entry(name)
                .or_default()
                .insert(tag, top.id.as_str());
        }
    }
    let manifest = [ManifestEntry {
        config: config_name,
        repo_tags,
        layers: digests
            .iter()
            .map(|d| format!("{}.tar", hex_of(d)))
            .collect(),
    }];
    tar.bytes(MANIFEST_FILE, to_go_json_compact(&manifest).as_bytes())?;
    tar.bytes(
        REPOSITORIES_FILE,
        to_go_json_compact(&repositories).as_bytes(),
    )?;
    tar.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_match_go_archive_tar() {
        let h = ustar_header("manifest.json", 268, b'0', "").unwrap();
        assert_eq!(&h[100..108], b"0000444\0");
        assert_eq!(&h[124..136], b"00000000414\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        assert_eq!(&h[329..345], b"0000000\x000000000\0");
        assert_eq!(h[155], b' ');
        assert_eq!(h[154], 0);
        // The checksum is the byte sum with the checksum field read as spaces.
        let mut copy = h;
        copy[148..156].fill(b' ');
        let sum: u64 = copy.iter().map(|&b| b as u64).sum();
        let field = std::str::from_utf8(&h[148..154]).unwrap();
        assert_eq!(u64::from_str_radix(field, 8).unwrap(), sum);
        let s = ustar_header("a/layer.tar", 0, b'2', "../b.tar").unwrap();
        assert_eq!(&s[100..108], b"0000000\0");
        assert_eq!(&s[157..165], b"../b.tar");
        assert!(ustar_header(&"x".repeat(101), 0, b'0', "").is_err());
        let mut field = [0u8; 12];
        put_size(&mut field, (1 << 33) - 1);
        assert_eq!(&field, b"77777777777\0");
        let big = (1u64 << 33) + 5;
        put_size(&mut field, big);
        let mut h = tar::Header::new_ustar();
        h.as_old_mut().size = field;
        assert_eq!(h.size().unwrap(), big, "readers decode the base-256 size");
    }

    #[test]
    fn legacy_ids_chain_like_skopeo() {
        // Layer IDs skopeo 1.9.3 wrote for this image (see testdata/skopeo-umoci.tar).
        let l1 = "sha256:bc13d38b19adc709273da8ac42824674158d4bd5fd9b82f1c8d4c71273875d83";
        let l2 = "sha256:6c09eee1e8760ce2d9fc57b2486f273d50d7a16fc0163eee78e8ccfe48431633";
        let config = br#"{"created":"2026-11-22T12:00:45.504737264Z","architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let l = legacy_layers(&[l1.into(), l2.into()], config).unwrap();
        assert_eq!(
            l[0].id,
            "29dcef3be5dca4b2549f01e9cd03bc61377e58c5a1ca53cdb6aba40a70e29e2c"
        );
        assert_eq!(
            l[0].json,
            br#"{"id":"29dcef3be5dca4b2549f01e9cd03bc61377e58c5a1ca53cdb6aba40a70e29e2c"}"#
        );
        assert_eq!(
            l[1].id,
            "89cc159b9dbd3a577be95bac681ab0836ecd0b1fa8a242497b737fd5effeb237"
        );
        assert_eq!(
            String::from_utf8(l[1].json.clone()).unwrap(),
            r#"{"architecture":"amd64","config":{"Cmd":["/bin/sh"]},"container":null,"container_config":null,"created":"2026-11-22T12:00:45.504737264Z","docker_version":null,"id":"89cc159b9dbd3a577be95bac681ab0836ecd0b1fa8a242497b737fd5effeb237","os":"linux","parent":"29dcef3be5dca4b2549f01e9cd03bc61377e58c5a1ca53cdb6aba40a70e29e2c"}"#
        );
        assert!(legacy_layers(&[l1.into()], b"not json").is_err());
        assert!(legacy_layers(&[], b"{}").unwrap().is_empty());
    }
}
