//! The copy engine: the only code that moves an image. It reads through an
//! [`ImageSource`], writes through an [`ImageDestination`], and never names a transport.
//!
//! Invariants:
//! - every blob is verified against its digest while it streams (a mismatch fails the
//!   blob and the copy);
//! - without conversion or recompression, manifests are written byte-for-byte as read;
//! - blobs move concurrently, at most `parallel` at a time; ones the destination
//!   already has are skipped;
//! - the destination is committed only after everything was written.

pub(crate) mod compress;
pub(crate) mod convert;
mod convert_image;
mod diff_id;
mod progress;
mod schema1;
mod single;

use std::collections::HashSet;

use crate::error::{Error, Result};
use crate::manifest::{self, Manifest, PlatformChoice};
use crate::transport::{ImageDestination, ImageSource};

pub(crate) use convert::{
    compression_of, layer_media_type, write_index, write_manifest, IndexEntry,
};
pub use convert::{ManifestFormat, DOCKER_LAYER_TAR};
pub use progress::{human_bytes, Progress};

/// Which images of an index to copy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum MultiArch {
    /// The one image for the chosen platform (skopeo's default).
    #[default]
    System,
    /// Every image, and the index.
    All,
    /// Only the index itself.
    IndexOnly,
    /// These platforms (`os/arch[/variant]`), as a sparse index.
    Platforms(Vec<PlatformChoice>),
}

impl MultiArch {
    /// `--multi-arch` values: `system`, `all`, `index-only`, or a list like
    /// `linux/amd64,linux/arm64/v8`.
    pub fn parse(s: &str) -> Result<MultiArch> {
        match s {
            "system" => Ok(MultiArch::System),
            "all" => Ok(MultiArch::All),
            "index-only" => Ok(MultiArch::IndexOnly),
            list => list
                .split(',')
                .map(|p| {
                    let parts: Vec<&str> = p.trim().split('/').collect();
                    match parts.as_slice() {
                        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(PlatformChoice {
                            os: Some(os.to_string()),
                            arch: Some(arch.to_string()),
                            variant: None,
                        }),
                        [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                            Ok(PlatformChoice {
                                os: Some(os.to_string()),
                                arch: Some(arch.to_string()),
                                variant: Some(variant.to_string()),
                            })
                        }
                        _ => Err(Error::invalid(format!(
                            "invalid --multi-arch value {s:?}: use system, all, index-only or a list of OS/ARCH[/VARIANT]"
                        ))),
                    }
                })
                .collect::<Result<Vec<_>>>()
                .map(MultiArch::Platforms),
        }
    }
}

/// Layer compression to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionFormat {
    Gzip,
    Zstd,
}

impl CompressionFormat {
    pub fn parse(s: &str) -> Result<CompressionFormat> {
        match s {
            "gzip" => Ok(CompressionFormat::Gzip),
            "zstd" => Ok(CompressionFormat::Zstd),
            _ => Err(Error::invalid(format!(
                "unknown compression format {s:?} (use gzip or zstd)"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CompressionFormat::Gzip => "gzip",
            CompressionFormat::Zstd => "zstd",
        }
    }

    /// The compression levels this format has.
    pub fn levels(self) -> std::ops::RangeInclusive<i32> {
        match self {
            CompressionFormat::Gzip => 0..=9,
            CompressionFormat::Zstd => 1..=22,
        }
    }

    /// Refuses a level this format does not have (`--dest-compress-level`).
    pub fn check_level(self, level: i32) -> Result<()> {
        let levels = self.levels();
        if levels.contains(&level) {
            return Ok(());
        }
        Err(Error::invalid(format!(
            "invalid --dest-compress-level {level}: {} compression levels are {} to {}",
            self.name(),
            levels.start(),
            levels.end()
        )))
    }
}

/// How to copy.
#[derive(Debug)]
pub struct CopyOptions {
    pub multi_arch: MultiArch,
    /// Platform for [`MultiArch::System`].
    pub platform: PlatformChoice,
    pub format: Option<ManifestFormat>,
    pub compression: Option<CompressionFormat>,
    pub compression_level: Option<i32>,
    pub preserve_digests: bool,
    pub remove_signatures: bool,
    /// Blobs moved at once.
    pub parallel: usize,
}

impl Default for CopyOptions {
    fn default() -> Self {
        CopyOptions {
            multi_arch: MultiArch::System,
            platform: PlatformChoice::default(),
            format: None,
            compression: None,
            compression_level: None,
            preserve_digests: false,
            remove_signatures: false,
            parallel: 6,
        }
    }
}

impl CopyOptions {
    /// The asked format; zstd layers need OCI manifests (Docker's have no zstd type
    /// other tools accept), so asking for zstd alone means OCI.
    pub(crate) fn wanted_format(&self) -> Result<Option<ManifestFormat>> {
        match (self.format, self.compression) {
            (Some(f), Some(CompressionFormat::Zstd)) if f != ManifestFormat::Oci => {
                Err(Error::invalid(
                    "zstd-compressed layers need OCI manifests: use --format oci (or no --format)",
                ))
            }
            (None, Some(CompressionFormat::Zstd)) => Ok(Some(ManifestFormat::Oci)),
            (f, _) => Ok(f),
        }
    }
}

/// What a copy did.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// Digest of the top manifest written.
    pub manifest_digest: String,
    pub blobs_copied: u64,
    pub blobs_skipped: u64,
    pub bytes: u64,
}

/// Copies the image `src` names to `dest` and commits it.
pub async fn copy_image(
    src: &dyn ImageSource,
    dest: Box<dyn ImageDestination>,
    opts: &CopyOptions,
    progress: &Progress,
) -> Result<CopyReport> {
    let what = format!("copying {} to {}", src.describe(), dest.describe());
    match copy_inner(src, dest.as_ref(), opts, progress).await {
        Ok(digest) => {
            dest.commit().await.map_err(|e| e.context(what.clone()))?;
            let (blobs_copied, blobs_skipped, bytes) = progress.totals();
            Ok(CopyReport {
                manifest_digest: digest,
                blobs_copied,
                blobs_skipped,
                bytes,
            })
        }
        // `dest` is dropped uncommitted: the destination abandons what it wrote.
        Err(e) => Err(e.context(what)),
    }
}

async fn copy_inner(
    src: &dyn ImageSource,
    dest: &dyn ImageDestination,
    opts: &CopyOptions,
    progress: &Progress,
) -> Result<String> {
    // What the destination holds now is asked at the same time (one round trip for
    // both): a copy of an image that is already there ends here.
    let (top, existing) = tokio::join!(src.manifest(None), dest.existing_manifest_digest());
    let ((top_bytes, top_type), existing) = (top?, existing?);
    let top = Manifest::parse(&top_bytes, &top_type)?;
    refuse_new_digest_for_digest_reference(dest, opts, &top, &top_type)?;
    let engine = single::Engine {
        src,
        dest,
        opts,
        progress,
    };
    // Progress lines follow skopeo's: signatures are "got" before the blobs move
    // (unless removed) and "stored" after each manifest.
    let getting = |what: &str| {
        if !opts.remove_signatures {
            progress.line(&format!("Getting image {what} signatures"));
        }
    };

    // One image: the top manifest itself, or the one a list names for the platform.
    let single = if !top.is_index() {
        Some((None, top_bytes.clone(), top_type.clone()))
    } else if opts.multi_arch == MultiArch::System {
        let digest = manifest::choose_instance(&top, &opts.platform)
            .map_err(|e| e.context("choosing an image from the manifest list"))?;
        let (bytes, mt) = src.manifest(Some(&digest)).await?;
        Some((Some(digest), bytes, mt))
    } else {
        None
    };
    if let Some((instance, bytes, mt)) = single {
        getting("source");
        let sigs = engine
            .signatures_to_copy(instance.as_deref(), false)
            .await?;
        if engine
            .already_there(existing.as_deref(), &bytes, &mt, sigs.len())
            .await?
        {
            return Ok(manifest::sha256_digest(&bytes));
        }
        let out = engine.copy_one(&bytes, &mt, sigs.len()).await?;
        engine
            .write_manifest(&out.bytes, &out.media_type, out.changed, &sigs, None)
            .await?;
        return Ok(out.digest);
    }

    let instances = top.instances();
    let chosen: Vec<usize> = match &opts.multi_arch {
        // (`System` was copied as a single image above.)
        MultiArch::All | MultiArch::System => (0..instances.len()).collect(),
        MultiArch::IndexOnly => Vec::new(),
        MultiArch::Platforms(list) => {
            let mut keep = Vec::new();
            for p in list {
                let d = manifest::choose_instance(&top, p)?;
                if let Some(i) = instances.iter().position(|x| x.digest == d) {
                    if !keep.contains(&i) {
                        keep.push(i);
                    }
                }
            }
            keep.sort_unstable();
            keep
        }
    };
    if opts.wanted_format()? == Some(ManifestFormat::DockerV2S1) {
        return Err(Error::Unsupported(
            "Docker schema 1 has no manifest lists: copy one image (without --all / --multi-arch) with --format v2s1".into(),
        ));
    }
    if !dest.supports_index() {
        return Err(Error::Unsupported(format!(
            "{} cannot store a manifest list; copy one image (without --all / --multi-arch)",
            dest.describe()
        )));
    }
    getting("list");
    let list_sigs = engine.signatures_to_copy(None, true).await?;
    let index_only = opts.multi_arch == MultiArch::IndexOnly;
    let sparse = !index_only && chosen.len() != instances.len();
    if sparse && opts.preserve_digests {
        return Err(Error::invalid(
            "--preserve-digests: copying only some images of a list changes the list's digest",
        ));
    }
    progress.line(&format!(
        "Copying {} of {} images in list",
        chosen.len(),
        instances.len()
    ));
    let format = match opts.wanted_format()? {
        Some(f) => f,
        None => convert::ManifestFormat::of(&top_type)
            .ok_or_else(|| Error::Unsupported(format!("copying indexes of type {top_type:?}")))?,
    };
    let mut entries = Vec::new();
    let mut changed = sparse || convert::ManifestFormat::of(&top_type) != Some(format);
    let originals: Vec<serde_json::Value> = index_entries_json(&top_bytes)?;
    let mut seen = HashSet::new();
    for (n, &i) in chosen.iter().enumerate() {
        let inst = &instances[i];
        progress.line(&format!(
            "Copying image {} ({}/{})",
            inst.digest,
            n + 1,
            chosen.len()
        ));
        getting("source");
        let sigs = engine.signatures_to_copy(Some(&inst.digest), false).await?;
        let (bytes, mt) = src.manifest(Some(&inst.digest)).await?;
        let out = engine.copy_one(&bytes, &mt, sigs.len()).await?;
        if seen.insert(out.digest.clone()) {
            engine
                .write_manifest(
                    &out.bytes,
                    &out.media_type,
                    out.changed,
                    &sigs,
                    Some(&out.digest),
                )
                .await?;
        }
        changed |= out.changed;
        entries.push(convert::IndexEntry {
            original: originals.get(i).cloned().unwrap_or_default(),
            digest: out.digest,
            size: out.bytes.len() as i64,
            media_type: out.media_type,
        });
    }
    // Without an asked format the index follows its children: a destination that
    // made them OCI manifests gets an OCI index.
    let mut format = format;
    if opts.wanted_format()?.is_none() {
        let kinds: HashSet<ManifestFormat> = entries
            .iter()
            .filter_map(|e| ManifestFormat::of(&e.media_type))
            .collect();
        if kinds.len() == 1 {
            format = kinds.into_iter().next().unwrap_or(format);
            changed |= convert::ManifestFormat::of(&top_type) != Some(format);
        }
    }
    if index_only {
        changed = false;
    }
    let (bytes, media_type) = if changed {
        (
            convert::write_index(&top_bytes, format, &entries)?,
            format.index_type().to_string(),
        )
    } else {
        (top_bytes.to_vec(), top_type.clone())
    };
    let digest = manifest::sha256_digest(&bytes);
    engine
        .write_manifest(&bytes, &media_type, changed, &list_sigs, None)
        .await?;
    Ok(digest)
}

/// A destination named by digest can only take a manifest with that digest: a copy
/// that is asked to change the manifest (format, compression, a sparse list) is
/// refused before any blob moves, instead of failing at the manifest PUT.
fn refuse_new_digest_for_digest_reference(
    dest: &dyn ImageDestination,
    opts: &CopyOptions,
    top: &Manifest,
    top_type: &str,
) -> Result<()> {
    let Some(named) = dest.named_digest() else {
        return Ok(());
    };
    let why = if opts.compression.is_some() {
        Some("--dest-compress-format recompresses its layers")
    } else if opts
        .wanted_format()?
        .is_some_and(|f| ManifestFormat::of(top_type) != Some(f))
    {
        Some("--format converts it")
    } else if top.is_index() && matches!(opts.multi_arch, MultiArch::Platforms(_)) {
        Some("--multi-arch keeps only some of its images")
    } else {
        None
    };
    match why {
        Some(why) => Err(Error::invalid(format!(
            "{} names the manifest {named}, but this copy writes another manifest ({why}); copy to a tag instead",
            dest.describe()
        ))),
        None => Ok(()),
    }
}

fn index_entries_json(bytes: &[u8]) -> Result<Vec<serde_json::Value>> {
    let v: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("parsing index: {e}")))?;
    Ok(v.get("manifests")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default())
}
