//! A fake registry on the scripted server: one repository `big` with one tag `latest`
//! whose image has layers of incompressible bytes. Blob GETs honour `Range`; every
//! blob request and the body bytes served are recorded. Its [`Mode`] can be switched
//! while a mount uses it: serve, stall blob bodies part-way from some offset, or drop
//! every connection (a registry that is gone).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::fake::{Action, FakeServer};
use crate::harness::image::pseudo_random;
use crate::harness::push::{sha256_digest, Client};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// What the fake does with requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Serve,
    /// Layer answers that reach past the offset send the bytes before it and half of
    /// the rest, then nothing until the client goes away.
    StallFrom(u64),
    /// Every connection is closed without an answer.
    Down,
    /// `Range` headers are ignored: every blob answer is the whole blob, status 200.
    IgnoreRange,
}

/// One blob request as the fake saw it.
#[derive(Clone, Debug)]
pub struct BlobHit {
    pub digest: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
    /// Whether the answer stalled.
    pub stalled: bool,
}

struct State {
    mode: Mutex<Mode>,
    layer_bytes: AtomicU64,
    hits: Mutex<Vec<BlobHit>>,
}

pub struct FakeRegistry {
    server: FakeServer,
    state: Arc<State>,
    pub layers: Arc<Vec<Vec<u8>>>,
    pub layer_digests: Vec<String>,
    pub manifest_digest: String,
}

/// `bytes=a-b` (inclusive) → `a..b+1` clipped to `size`; `bytes=a-` → `a..size`.
fn parse_range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let start: u64 = a.trim().parse().ok()?;
    let end = match b.trim() {
        "" => size,
        e => (e.parse::<u64>().ok()? + 1).min(size),
    };
    (start < end).then_some((start, end))
}

/// An OCI image whose layers are incompressible bytes (not tars: nothing unpacks them).
pub struct RawImage {
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub layers: Vec<Vec<u8>>,
    pub layer_digests: Vec<String>,
}

impl RawImage {
    /// Layers of `sizes` bytes, seeded by position (the same sizes, the same image).
    pub fn new(sizes: &[usize]) -> RawImage {
        let layers: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, n)| pseudo_random(*n, 1000 + i as u64))
            .collect();
        let layer_digests: Vec<String> = layers.iter().map(|l| sha256_digest(l)).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-02T03:04:05Z",
            "config": {"Env": ["FAKE=1"]},
            "rootfs": {"type": "layers", "diff_ids": layer_digests},
        }))
        .unwrap();
        let config_digest = sha256_digest(&config);
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config.len()},
            "layers": layers.iter().zip(&layer_digests).map(|(l, d)| serde_json::json!({
                "mediaType": OCI_LAYER, "digest": d, "size": l.len(),
            })).collect::<Vec<_>>(),
        }))
        .unwrap();
        RawImage {
            manifest_digest: sha256_digest(&manifest),
            manifest,
            config,
            config_digest,
            layers,
            layer_digests,
        }
    }

    /// Pushes the blobs and the manifest as `repo:tag` to a real registry.
    pub fn push(&self, client: &Client, repo: &str, tag: &str) {
        client.push_blob(repo, &self.config);
        for l in &self.layers {
            client.push_blob(repo, l);
        }
        client.push_manifest(repo, tag, OCI_MANIFEST, &self.manifest);
    }
}

impl FakeRegistry {
    /// Serves the [`RawImage`] of `sizes` as `big:latest`.
    pub fn start(sizes: &[usize]) -> FakeRegistry {
        let RawImage {
            manifest,
            manifest_digest,
            config,
            config_digest,
            layers,
            layer_digests,
        } = RawImage::new(sizes);
        let layers = Arc::new(layers);
        let state = Arc::new(State {
            mode: Mutex::new(Mode::Serve),
            layer_bytes: AtomicU64::new(0),
            hits: Mutex::new(Vec::new()),
        });
        let (st, ls, ld) = (state.clone(), layers.clone(), layer_digests.clone());
        let (md, cd) = (manifest_digest.clone(), config_digest.clone());
        let server = FakeServer::start(move |r, _| {
            let mode = *st.mode.lock().unwrap();
            if mode == Mode::Down {
                return Action::Close;
            }
            let p = r.path.as_str();
            if p == "/v2/" {
                return Action::json(200, "{}");
            }
            if p == "/v2/_catalog" {
                return Action::json(200, r#"{"repositories":["big"]}"#);
            }
            if p == "/v2/big/tags/list" {
                return Action::json(200, r#"{"name":"big","tags":["latest"]}"#);
            }
            if p == "/v2/big/manifests/latest" || p == format!("/v2/big/manifests/{md}") {
                return Action::with(
                    200,
                    &[
                        ("Content-Type", OCI_MANIFEST),
                        ("Docker-Content-Digest", &md),
                    ],
                    manifest.clone(),
                );
            }
            let Some(digest) = p.strip_prefix("/v2/big/blobs/") else {
                return Action::json(404, r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#);
            };
            let data: &[u8] = if digest == cd {
                &config
            } else if let Some(i) = ld.iter().position(|d| d == digest) {
                &ls[i]
            } else {
                return Action::json(404, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#);
            };
            let size = data.len() as u64;
            let range = r.headers.get("range").cloned();
            let honoured = range.as_deref().filter(|_| mode != Mode::IgnoreRange);
            let (start, end, status) = match honoured.and_then(|h| parse_range(h, size)) {
                Some((s, e)) => (s, e, 206),
                None => (0, size, 200),
            };
            let body = data[start as usize..end as usize].to_vec();
            let mut headers = vec![
                (
                    "Content-Type".to_string(),
                    "application/octet-stream".to_string(),
                ),
                ("Docker-Content-Digest".to_string(), digest.to_string()),
            ];
            if status == 206 {
                headers.push((
                    "Content-Range".into(),
                    format!("bytes {start}-{}/{size}", end - 1),
                ));
            }
            let is_layer = digest != cd;
            // A stalled answer sends what lies before the stall offset, then half of
            // the rest.
            let stall_send = match mode {
                Mode::StallFrom(o) if is_layer && end > o => {
                    let before = o.saturating_sub(start);
                    Some((before + (end - start - before) / 2) as usize)
                }
                _ => None,
            };
            let stall = stall_send.is_some();
            let sent = stall_send.unwrap_or(body.len()) as u64;
            if is_layer && r.method == "GET" {
                st.layer_bytes.fetch_add(sent, Ordering::SeqCst);
            }
            st.hits.lock().unwrap().push(BlobHit {
                digest: digest.to_string(),
                range,
                stalled: stall,
            });
            if stall {
                return Action::Hang {
                    status,
                    headers,
                    send: sent as usize,
                    body,
                };
            }
            Action::Respond {
                status,
                headers,
                body,
            }
        });
        FakeRegistry {
            server,
            state,
            layers,
            layer_digests,
            manifest_digest,
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        self.server.host()
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Layer body bytes sent so far.
    pub fn layer_bytes(&self) -> u64 {
        self.state.layer_bytes.load(Ordering::SeqCst)
    }

    /// Blob requests so far.
    pub fn blob_hits(&self) -> Vec<BlobHit> {
        self.state.hits.lock().unwrap().clone()
    }

    /// Stalled answers so far.
    pub fn stalled(&self) -> usize {
        self.blob_hits().iter().filter(|h| h.stalled).count()
    }
}
