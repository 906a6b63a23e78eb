//! Gathering what `inspect` reports about an image from any transport: manifest, the
//! platform's instance, config and (for registries) tags, with few round trips — the
//! tag list is fetched while the manifest is.

use std::future::Future;

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncReadExt;

use crate::digest::VerifyingReader;
use crate::error::{Error, ErrorKind, Result};
use crate::manifest::{self, InspectOutput, Manifest, PlatformChoice};
use crate::transport::ImageSource;

pub use crate::transport::docker::RawManifest;

/// Everything `inspect` may print.
pub struct Inspected {
    /// The manifest the reference names (maybe an index).
    pub top: RawManifest,
    /// The single-image manifest for the chosen platform.
    pub image: RawManifest,
    pub manifest: Manifest,
    pub config: Option<Bytes>,
    /// `None` when not asked for, not a registry, or refused by the registry.
    pub tags: Option<Vec<String>>,
}

/// The top manifest of `src`.
pub async fn top_manifest(src: &dyn ImageSource) -> Result<RawManifest> {
    let (bytes, media_type) = src.manifest(None).await?;
    let digest = manifest::manifest_digest(&bytes)?;
    Ok(RawManifest {
        bytes,
        media_type,
        digest,
    })
}

/// Fetches what inspect needs; `tags` lists the repository's tags (registries only).
pub async fn gather<F>(
    src: &dyn ImageSource,
    platform: &PlatformChoice,
    tags: Option<F>,
) -> Result<Inspected>
where
    F: Future<Output = Result<Vec<String>>>,
{
    // The tag list needs nothing from the manifest: ask for both at once.
    let tags_task = async {
        match tags {
            Some(f) => Some(f.await),
            None => None,
        }
    };
    let (top, tags) = tokio::join!(top_manifest(src), tags_task);
    let top = top?;
    let parsed = Manifest::parse(&top.bytes, &top.media_type)?;
    let image = if parsed.is_index() {
        let digest = manifest::choose_instance(&parsed, platform)
            .map_err(|e| e.context("Error parsing manifest for image: choosing image instance"))?;
        let (bytes, media_type) = src.manifest(Some(&digest)).await?;
        RawManifest {
            bytes,
            media_type,
            digest,
        }
    } else {
        top.clone()
    };
    let manifest = Manifest::parse(&image.bytes, &image.media_type)?;
    let config = read_config(src, &manifest).await?;
    let tags = match tags {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) if matches!(e.kind(), ErrorKind::Unauthorized | ErrorKind::NotFound) => {
            tracing::warn!("registry disallows tag list retrieval; skipping: {e}");
            None
        }
        Some(Err(e)) => return Err(e.context("Error determining repository tags")),
    };
    Ok(Inspected {
        top,
        image,
        manifest,
        config,
        tags,
    })
}

/// The config blob of a single-image manifest, verified, at most
/// [`manifest::MAX_CONFIG_SIZE`] bytes.
pub async fn read_config(src: &dyn ImageSource, m: &Manifest) -> Result<Option<Bytes>> {
    let Some(cfg) = m.config() else {
        return Ok(None);
    };
    if cfg.size > manifest::MAX_CONFIG_SIZE as i64 {
        return Err(Error::invalid(format!(
            "config {} is {} bytes, more than the limit of {}",
            cfg.digest,
            cfg.size,
            manifest::MAX_CONFIG_SIZE
        )));
    }
    let (stream, _) = src.blob(&cfg).await?;
    let expected = (cfg.size >= 0).then_some(cfg.size as u64);
    let what = format!("config {} of {}", cfg.digest, src.describe());
    let mut verified = VerifyingReader::new(stream, &cfg.digest, expected, what.clone())
        .take(manifest::MAX_CONFIG_SIZE as u64 + 1);
    let mut buf = Vec::new();
    verified
        .read_to_end(&mut buf)
        .await
        .map_err(|e| Error::from(e).context(format!("reading {what}")))?;
    if buf.len() > manifest::MAX_CONFIG_SIZE {
        return Err(Error::invalid(format!(
            "{what}: more than {} bytes",
            manifest::MAX_CONFIG_SIZE
        )));
    }
    Ok(Some(BytesMut::from(&buf[..]).freeze()))
}

impl Inspected {
    /// The default `inspect` document (current skopeo's fields, `LayersData` included).
    /// `name` is the repository for registry images, empty otherwise.
    pub fn output(&self, name: &str) -> Result<InspectOutput> {
        let config = self.manifest.image_config(self.config.as_deref())?;
        Ok(manifest::build_inspect(
            name,
            &self.top.digest,
            &self.manifest,
            &config,
            self.tags.clone(),
        )
        .with_layers_data(&self.manifest))
    }
}
