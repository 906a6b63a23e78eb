//! Gathering what `inspect` reports about a `docker://` image: manifest, the platform's
//! instance, config and tags, fetched with as few round trips as possible (config and tag
//! list concurrently).

use bytes::Bytes;

use crate::error::{ErrorKind, Result};
use crate::manifest::{self, InspectOutput, Manifest, PlatformChoice};
use crate::transport::docker::{DockerImage, RawManifest};

/// Everything `inspect` may print.
pub struct Inspected {
    /// The manifest the reference names (maybe an index).
    pub top: RawManifest,
    /// The single-image manifest for the chosen platform.
    pub image: RawManifest,
    pub manifest: Manifest,
    pub config: Option<Bytes>,
    /// `None` when not asked for or when the registry refuses the list.
    pub tags: Option<Vec<String>>,
}

/// Fetches what inspect needs. `want_config` is false for `--raw` without `--config`.
pub async fn gather(
    img: &DockerImage,
    platform: &PlatformChoice,
    want_tags: bool,
) -> Result<Inspected> {
    let top = img.manifest(None).await?;
    let image = img.resolve_platform(&top, platform).await?;
    let manifest = image.parse()?;
    let (config, tags) = tokio::join!(img.config(&manifest), async {
        if want_tags {
            Some(img.tags().await)
        } else {
            None
        }
    });
    let config = config?;
    let tags = match tags {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) if matches!(e.kind(), ErrorKind::Unauthorized | ErrorKind::NotFound) => {
            tracing::warn!("registry disallows tag list retrieval; skipping: {e}");
            None
        }
        Some(Err(e)) => return Err(e.context("determining repository tags")),
    };
    Ok(Inspected {
        top,
        image,
        manifest,
        config,
        tags,
    })
}

impl Inspected {
    /// The default `inspect` document (current skopeo's fields, `LayersData` included).
    pub fn output(&self, img: &DockerImage) -> Result<InspectOutput> {
        let config = self.manifest.image_config(self.config.as_deref())?;
        Ok(manifest::build_inspect(
            &img.reference.name(),
            &self.top.digest,
            &self.manifest,
            &config,
            self.tags.clone(),
        )
        .with_layers_data(&self.manifest))
    }
}
