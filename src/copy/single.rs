//! Copying one single-image manifest: its config and layers (concurrently, verified,
//! recompressed where asked or needed), then the manifest itself, rewritten only when a
//! descriptor or the format changed.

use std::future::Future;

use futures_util::StreamExt;

use super::compress::{detect, recode};
use super::convert::{self, ManifestFormat};
use super::diff_id::{DiffIdReader, DiffIdSlot};
use super::progress::{Progress, Turns};
use super::{CompressionFormat, CopyOptions};
use crate::digest::{is_sha256, VerifyingReader};
use crate::error::{Error, Result};
use crate::manifest::media_types::{self as mt, Compression};
use crate::manifest::{self, BlobRef, Manifest};
use crate::transport::{BlobInfo, ImageDestination, ImageSource, LayerCompression};

pub(super) struct Engine<'a> {
    pub src: &'a dyn ImageSource,
    pub dest: &'a dyn ImageDestination,
    pub opts: &'a CopyOptions,
    pub progress: &'a Progress,
}

/// A manifest as written to the destination.
pub(super) struct Written {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
    /// Whether it differs from the source's bytes.
    pub changed: bool,
}

/// What happens to one blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Plan {
    /// The compression its media type announces (`None` for opaque blobs).
    pub from: Compression,
    /// The compression to store. The stream's real compression is checked when it
    /// arrives: a layer labelled gzip that is a plain tar is compressed to match.
    pub to: Compression,
    /// Not a layer (config, artifact blob): copied as is, never sniffed.
    pub opaque: bool,
}

impl Plan {
    pub(super) const OPAQUE: Plan = Plan {
        from: Compression::None,
        to: Compression::None,
        opaque: true,
    };
}

/// Runs `jobs` with at most `parallel` at once and returns their results in the order
/// of `jobs`. The first job to fail ends the run at once (the others are dropped,
/// which abandons what they were writing), even while earlier jobs are still running:
/// the error is that job's own.
pub(super) async fn run_ordered<T, F>(
    jobs: impl IntoIterator<Item = F>,
    parallel: usize,
) -> Result<Vec<T>>
where
    F: Future<Output = Result<T>>,
{
    use futures_util::stream::FuturesUnordered;
    let mut pending = jobs.into_iter().enumerate();
    let mut running = FuturesUnordered::new();
    let mut out: Vec<Option<T>> = Vec::new();
    loop {
        while running.len() < parallel.max(1) {
            let Some((i, job)) = pending.next() else {
                break;
            };
            out.push(None);
            running.push(async move { (i, job.await) });
        }
        match running.next().await {
            Some((i, result)) => out[i] = Some(result?),
            None => break,
        }
    }
    Ok(out.into_iter().flatten().collect())
}

impl Engine<'_> {
    /// Copies the blobs of one image and returns its manifest as it must be written.
    /// `signatures`: how many signatures are to be copied with it (a copy that would
    /// change the manifest is then refused before any blob moves).
    pub async fn copy_one(
        &self,
        bytes: &[u8],
        media_type: &str,
        signatures: usize,
    ) -> Result<Written> {
        let m = Manifest::parse(bytes, media_type)?;
        if m.is_index() {
            return Err(Error::Unsupported(format!(
                "{}: an index inside an index is not supported",
                self.src.describe()
            )));
        }
        if mt::is_schema1(media_type) {
            return self.copy_schema1(&m, bytes, media_type).await;
        }
        let format = self.output_format(media_type)?;
        let source_format = ManifestFormat::of(media_type);
        let config = m.config().ok_or_else(|| {
            Error::invalid(format!("manifest of {} has no config", self.src.describe()))
        })?;
        let layers = m.layers();
        let plans: Vec<Option<Plan>> = layers
            .iter()
            .map(|l| self.plan(l, format))
            .collect::<Result<_>>()?;
        let format_changes = source_format != Some(format);
        let recompresses = plans.iter().any(|p| matches!(p, Some(p) if p.from != p.to));
        let change = if format_changes {
            Some("format conversion")
        } else if recompresses {
            Some("layer recompression")
        } else {
            None
        };
        if let Some(change) = change {
            if self.opts.preserve_digests {
                return Err(Error::invalid(format!(
                    "--preserve-digests: copying {} would change its manifest ({change})",
                    self.src.describe(),
                )));
            }
            if signatures > 0 {
                return Err(Error::invalid(format!(
                    "copying {} would change its manifest ({change}) and invalidate its {signatures} signature(s); use --remove-signatures",
                    self.src.describe(),
                )));
            }
        }

        let turns = &Turns::new();
        let jobs = layers
            .iter()
            .cloned()
            .zip(plans)
            .enumerate()
            .map(|(i, (l, plan))| async move {
                let turn = Some((turns, i));
                let mut stored = match plan {
                    // Foreign layers (with URLs) are not copied; the descriptor is kept.
                    None => {
                        turns.wait(i).await;
                        turns.pass(i);
                        l.clone()
                    }
                    Some(p) => self.copy_blob(&l, p, "blob", turn).await?,
                };
                let compression = plan
                    .map(|p| p.to)
                    .or_else(|| convert::compression_of(&l.media_type))
                    .unwrap_or(Compression::Gzip);
                if convert::compression_of(&l.media_type).is_some() {
                    stored.media_type =
                        convert::layer_media_type(&l.media_type, format, compression)?;
                }
                Ok::<BlobRef, Error>(stored)
            });
        let new_layers = run_ordered(jobs, self.opts.parallel).await?;

        // The config follows the layers (as skopeo orders it). Schema 1 has no config
        // blob: the config goes into the manifest.
        let (mut new_config, config_bytes) = if format == ManifestFormat::DockerV2S1 {
            let bytes = crate::inspect::read_config(self.src, &m)
                .await?
                .ok_or_else(|| Error::invalid("converting to schema 1: the image has no config"))?;
            (config.clone(), Some(bytes))
        } else if format == ManifestFormat::Oci && source_format == Some(ManifestFormat::DockerV2S2)
        {
            (self.convert_config_to_oci(&m).await?, None)
        } else {
            (
                self.copy_blob(&config, Plan::OPAQUE, "config", None)
                    .await?,
                None,
            )
        };
        new_config.media_type = format.config_type().to_string();

        if let Some(config_bytes) = config_bytes {
            return self.finish_schema1(&config_bytes, &new_layers).await;
        }
        let same = !format_changes
            && new_config.digest == config.digest
            && new_layers.len() == layers.len()
            && new_layers.iter().zip(&layers).all(|(a, b)| {
                a.digest == b.digest && a.media_type == b.media_type && a.size == b.size
            });
        if same {
            return Ok(Written {
                bytes: bytes.to_vec(),
                media_type: media_type.to_string(),
                digest: manifest::sha256_digest(bytes),
                changed: false,
            });
        }
        let out = convert::write_manifest(format, &m, &new_config, &new_layers)?;
        Ok(Written {
            digest: manifest::sha256_digest(&out),
            bytes: out,
            media_type: format.manifest_type().to_string(),
            changed: true,
        })
    }

    /// Writes the schema 1 manifest of copied layers (and the empty layer it may use).
    async fn finish_schema1(&self, config: &[u8], layers: &[BlobRef]) -> Result<Written> {
        let (name, tag) = self.dest.repository_and_tag().unwrap_or_default();
        let (bytes, uses_empty) = super::schema1::write(&super::schema1::Schema1Input {
            name: &name,
            tag: &tag,
            config,
            layers,
        })?;
        if uses_empty {
            let info = BlobInfo {
                digest: super::schema1::EMPTY_LAYER_DIGEST.to_string(),
                size: super::schema1::EMPTY_LAYER.len() as i64,
                media_type: mt::DOCKER_LAYER_GZIP.to_string(),
                annotations: None,
                urls: None,
                empty_layer: true,
            };
            if self.dest.try_reuse_blob(&info, None).await?.is_none() {
                let stream: crate::transport::BlobStream =
                    Box::pin(std::io::Cursor::new(super::schema1::EMPTY_LAYER));
                self.dest.put_blob(stream, &info).await?;
            }
        }
        Ok(Written {
            digest: manifest::manifest_digest(&bytes)?,
            bytes,
            media_type: mt::DOCKER_V2S1_SIGNED.to_string(),
            changed: true,
        })
    }

    /// The format to write a manifest of `media_type` in: the asked one, else the
    /// source's when the destination stores it (or when digests must be kept: the
    /// destination then gets the source's manifest as it is, as skopeo does), else the
    /// destination's preference.
    pub(super) fn output_format(&self, media_type: &str) -> Result<ManifestFormat> {
        let asked = self.opts.wanted_format()?;
        if asked.is_none() && self.opts.preserve_digests {
            if let Some(f) = ManifestFormat::of(media_type) {
                return Ok(f);
            }
        }
        convert::choose_format(media_type, asked, &self.dest.supported_manifest_types())
    }

    /// Decides a layer's compression; `None` for a layer that is not copied.
    pub(super) fn plan(&self, l: &BlobRef, format: ManifestFormat) -> Result<Option<Plan>> {
        let nondist = mt::is_non_distributable_layer(&l.media_type);
        if nondist && l.urls.as_ref().is_some_and(|u| !u.is_empty()) {
            return Ok(None);
        }
        let Some(from) = convert::compression_of(&l.media_type) else {
            // Not a known layer type (an artifact's blob): copied as is.
            return Ok(Some(Plan::OPAQUE));
        };
        let to = match (self.opts.compression, self.dest.desired_layer_compression()) {
            // Digests kept: no compression change the destination merely prefers.
            (None, _) if self.opts.preserve_digests => from,
            (_, LayerCompression::Decompress) => Compression::None,
            (Some(CompressionFormat::Gzip), _) => Compression::Gzip,
            (Some(CompressionFormat::Zstd), _) => Compression::Zstd,
            (None, LayerCompression::Compress) if from == Compression::None => Compression::Gzip,
            _ => from,
        };
        // Schema 1 layers are gzip.
        let to = if format == ManifestFormat::DockerV2S1 {
            Compression::Gzip
        } else {
            to
        };
        Ok(Some(Plan {
            from,
            to,
            opaque: false,
        }))
    }

    /// Copies one blob, verified, storing it with `plan.to` compression; reuses it when
    /// the destination has it and nothing is to change.
    /// `turn`: this blob's place among blobs copied at once, for announcing them in order.
    pub(super) async fn copy_blob(
        &self,
        info: &BlobInfo,
        plan: Plan,
        kind: &str,
        turn: Option<(&Turns, usize)>,
    ) -> Result<BlobInfo> {
        self.copy_blob_with_diff_id(info, plan, kind, turn, None)
            .await
    }

    /// [`Engine::copy_blob`], also computing the layer's diff ID into `diff_id` when
    /// given (the blob is then always read, never reused unseen).
    pub(super) async fn copy_blob_with_diff_id(
        &self,
        info: &BlobInfo,
        plan: Plan,
        kind: &str,
        turn: Option<(&Turns, usize)>,
        diff_id: Option<&DiffIdSlot>,
    ) -> Result<BlobInfo> {
        if !is_sha256(&info.digest) {
            return Err(Error::Unsupported(format!(
                "blob {} uses a digest scry cannot verify (only sha256)",
                info.digest
            )));
        }
        let mut reused = None;
        if plan.from == plan.to && diff_id.is_none() {
            let from = self.src.registry_location();
            reused = self.dest.try_reuse_blob(info, from.as_ref()).await?;
        }
        if let Some((turns, i)) = turn {
            turns.wait(i).await;
        }
        match &reused {
            Some(_) => self.progress.blob_skipped(kind, &info.digest, info.size),
            None => self.progress.announce(kind, &info.digest),
        }
        if let Some((turns, i)) = turn {
            turns.pass(i);
        }
        if let Some(mut found) = reused {
            found.media_type = info.media_type.clone();
            return Ok(found);
        }
        let what = format!("{kind} {}", info.digest);
        let (stream, size) = self
            .src
            .blob(info)
            .await
            .map_err(|e| e.context(format!("reading {what}")))?;
        let expected = if info.size >= 0 {
            Some(info.size as u64)
        } else {
            size
        };
        let stream = self.progress.track(kind, &info.digest, expected, stream);
        let verify = |stream: crate::transport::BlobStream| -> crate::transport::BlobStream {
            Box::pin(VerifyingReader::new(
                stream,
                &info.digest,
                expected,
                what.clone(),
            ))
        };
        // A destination that checks what it stores gets the bytes as they come; the
        // source's digest is checked here only where the destination cannot (recoding).
        let dest_checks = self.dest.verifies_blobs();
        let stream = if dest_checks { stream } else { verify(stream) };
        let stored = if plan.opaque {
            self.dest.put_blob(stream, info).await
        } else {
            let (actual, stream) = detect(stream)
                .await
                .map_err(|e| Error::from(e).context(format!("reading {what}")))?;
            let stream = match diff_id {
                Some(slot) => {
                    let hashed: crate::transport::BlobStream =
                        Box::pin(DiffIdReader::new(stream, actual, slot.clone())?);
                    tokio::io::BufReader::with_capacity(super::compress::BUF, hashed)
                }
                None => stream,
            };
            // Digests kept: a layer whose bytes do not match its label is stored as is.
            if actual == plan.to || self.opts.preserve_digests {
                self.dest.put_blob(Box::pin(stream), info).await
            } else {
                let stream = match dest_checks {
                    true => tokio::io::BufReader::with_capacity(
                        super::compress::BUF,
                        verify(Box::pin(stream)),
                    ),
                    false => stream,
                };
                let recoded = recode(stream, actual, plan.to, self.opts.compression_level);
                let unknown = BlobInfo {
                    digest: String::new(),
                    size: -1,
                    media_type: info.media_type.clone(),
                    annotations: info.annotations.clone(),
                    urls: None,
                    empty_layer: false,
                };
                self.dest.put_blob(recoded, &unknown).await
            }
        }
        .map_err(|e| e.context(format!("copying {what} to {}", self.dest.describe())))?;
        self.progress.blob_done(stored.size.max(0) as u64);
        Ok(stored)
    }

    /// Whether the destination already holds exactly what copying `bytes` would write:
    /// its reference names a manifest with `existing` digest, equal to these bytes'
    /// digest, and the copy would change neither the format nor any layer. Then every
    /// blob is there too (a registry stores a manifest only with its blobs), so the
    /// copy is done; progress reports each blob as skipped, as when they are checked one
    /// by one. `signatures` to store rule this out (they are written as usual).
    pub async fn already_there(
        &self,
        existing: Option<&str>,
        bytes: &[u8],
        media_type: &str,
        signatures: usize,
    ) -> Result<bool> {
        let Some(existing) = existing else {
            return Ok(false);
        };
        if mt::is_schema1(media_type) || manifest::sha256_digest(bytes) != existing {
            return Ok(false);
        }
        let m = Manifest::parse(bytes, media_type)?;
        let Some(config) = m.config().filter(|_| !m.is_index()) else {
            return Ok(false);
        };
        let format = self.output_format(media_type)?;
        if ManifestFormat::of(media_type) != Some(format) {
            return Ok(false);
        }
        let layers = m.layers();
        for l in &layers {
            if matches!(self.plan(l, format)?, Some(p) if p.from != p.to) {
                return Ok(false);
            }
        }
        if signatures > 0 {
            return Ok(false);
        }
        for l in &layers {
            self.progress.blob_skipped("blob", &l.digest, l.size);
        }
        self.progress
            .blob_skipped("config", &config.digest, config.size);
        self.progress.line("Writing manifest to image destination");
        self.progress.line("Storing signatures");
        Ok(true)
    }

    /// The signatures to copy for the source's image `instance` (none with
    /// `--remove-signatures`). Refused before anything is written when the
    /// destination cannot store them.
    /// `list`: they are an index's own signatures.
    pub async fn signatures_to_copy(
        &self,
        instance: Option<&str>,
        list: bool,
    ) -> Result<Vec<Vec<u8>>> {
        if self.opts.remove_signatures {
            return Ok(Vec::new());
        }
        let sigs = self.src.signatures(instance).await?;
        if sigs.is_empty() {
            return Ok(sigs);
        }
        self.progress.line(if list {
            "Checking if image list destination supports signatures"
        } else {
            "Checking if image destination supports signatures"
        });
        if !self.dest.supports_signatures() {
            return Err(Error::Unsupported(format!(
                "{} cannot store signatures (use --remove-signatures)",
                self.dest.describe()
            )));
        }
        Ok(sigs)
    }

    /// Writes a manifest and the signatures `sigs` (from [`Engine::signatures_to_copy`])
    /// of the source's image: the top one (`instance` `None`), or a child of an index,
    /// written under its digest `instance`. `changed`: the bytes differ from the
    /// source's, which invalidates signatures.
    pub async fn write_manifest(
        &self,
        bytes: &[u8],
        media_type: &str,
        changed: bool,
        sigs: &[Vec<u8>],
        instance: Option<&str>,
    ) -> Result<()> {
        if changed && !sigs.is_empty() {
            return Err(Error::invalid(format!(
                "copying would change the manifest and invalidate its {} signature(s); use --remove-signatures",
                sigs.len()
            )));
        }
        let list = mt::is_index(media_type);
        self.progress.line(if list {
            "Writing manifest list to image destination"
        } else {
            "Writing manifest to image destination"
        });
        self.dest.put_manifest(bytes, media_type, instance).await?;
        self.progress.line(if list {
            "Storing list signatures"
        } else {
            "Storing signatures"
        });
        if !sigs.is_empty() {
            self.dest.put_signatures(sigs, instance).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::run_ordered;
    use crate::error::{Error, Result};

    #[tokio::test]
    async fn results_keep_the_order_of_the_jobs() {
        let jobs = (0..8u64).map(|i| async move {
            // Later jobs finish first.
            tokio::time::sleep(std::time::Duration::from_millis(40 - 5 * i)).await;
            Ok::<u64, Error>(i)
        });
        assert_eq!(
            run_ordered(jobs, 3).await.unwrap(),
            (0..8).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_failing_job_ends_the_run_while_an_earlier_one_is_pending() {
        let jobs: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = Result<u32>>>>> = vec![
            Box::pin(std::future::pending()),
            Box::pin(async { Err(Error::invalid("job 1 failed")) }),
            Box::pin(async { Ok(2) }),
        ];
        let err = run_ordered(jobs, 2).await.unwrap_err();
        assert!(err.to_string().contains("job 1 failed"), "{err}");
    }

    #[tokio::test]
    async fn at_most_parallel_jobs_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (now, most) = (&AtomicUsize::new(0), &AtomicUsize::new(0));
        let jobs = (0..10).map(|_| async move {
            let n = now.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(n, Ordering::SeqCst);
            tokio::task::yield_now().await;
            now.fetch_sub(1, Ordering::SeqCst);
            Ok::<(), Error>(())
        });
        run_ordered(jobs, 3).await.unwrap();
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
