//! `scry copy`.

use std::path::PathBuf;

use clap::Args;

use super::options::{DestImageOpts, GlobalOpts, RetryOpts, SrcImageOpts};
use crate::copy::{self, CompressionFormat, CopyOptions, ManifestFormat, MultiArch, Progress};
use crate::error::{Error, Result};
use crate::reference::{DockerReference, ImageName};
use crate::transport::{self, DestContext, LayerCompression, SourceContext};

#[derive(Args, Debug)]
pub struct CopyArgs {
    #[command(flatten)]
    retry: RetryOpts,
    /// path of the authentication file for both source and destination
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// additional tags (supports docker-archive)
    #[arg(long = "additional-tag", value_name = "TAG")]
    additional_tags: Vec<String>,
    /// Copy all images if SOURCE-IMAGE is a list
    #[arg(short = 'a', long)]
    all: bool,
    /// How to handle multi-architecture images (system, all, index-only, or OS/ARCH[/VARIANT],…)
    #[arg(long, value_name = "MODE")]
    multi_arch: Option<String>,
    /// MANIFEST TYPE (oci, v2s1, or v2s2) to use in the destination (default is manifest type of source, with fallbacks)
    #[arg(short = 'f', long, value_name = "MANIFEST-TYPE")]
    format: Option<String>,
    /// Compress tarball image layers when saving to directory using the 'dir' transport
    #[arg(long)]
    dest_compress: bool,
    /// Decompress tarball image layers when saving to directory using the 'dir' transport
    #[arg(long)]
    dest_decompress: bool,
    /// FORMAT to use for the compression (gzip or zstd)
    #[arg(long, value_name = "FORMAT")]
    dest_compress_format: Option<String>,
    /// LEVEL to use for the compression
    #[arg(long, value_name = "LEVEL")]
    dest_compress_level: Option<i32>,
    /// Allow uncompressed image layers when saving to an OCI image using the 'oci' transport
    #[arg(long)]
    dest_oci_accept_uncompressed_layers: bool,
    /// Precompute digests to avoid uploading layers already on the registry (always done)
    #[arg(long)]
    dest_precompute_digests: bool,
    /// Write the digest of the pushed image to the specified file
    #[arg(long, value_name = "PATH")]
    digestfile: Option<PathBuf>,
    /// Preserve digests of images and lists
    #[arg(long)]
    preserve_digests: bool,
    /// Suppress output information when copying images
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Do not copy signatures from SOURCE-IMAGE
    #[arg(long)]
    remove_signatures: bool,
    /// Number of blobs copied at once
    #[arg(long, value_name = "N", default_value_t = 6)]
    image_parallel_copies: usize,
    /// Sign the image using a GPG key with the specified FINGERPRINT (not supported yet)
    #[arg(long, value_name = "FINGERPRINT")]
    sign_by: Option<String>,
    /// Sign the image using a sigstore private key at PATH (not supported yet)
    #[arg(long, value_name = "PATH")]
    sign_by_sigstore_private_key: Option<PathBuf>,
    /// *Experimental* key needed to decrypt the image (not supported)
    #[arg(long, value_name = "KEY")]
    decryption_key: Vec<String>,
    /// *Experimental* key to encrypt the image (not supported)
    #[arg(long, value_name = "KEY")]
    encryption_key: Vec<String>,
    /// SOURCE-IMAGE, as TRANSPORT:DETAILS
    #[arg(value_name = "SOURCE-IMAGE")]
    source: String,
    /// DESTINATION-IMAGE, as TRANSPORT:DETAILS
    #[arg(value_name = "DESTINATION-IMAGE")]
    destination: String,
    // Last, so that their help headings do not carry over to the flags above.
    #[command(flatten)]
    src: SrcImageOpts,
    #[command(flatten)]
    dest: DestImageOpts,
}

impl CopyArgs {
    /// Copy options from the flags, refusing unsupported or contradictory ones before
    /// anything is read or written.
    fn options(&self, global: &GlobalOpts) -> Result<CopyOptions> {
        if self.sign_by.is_some() || self.sign_by_sigstore_private_key.is_some() {
            return Err(Error::Unsupported(
                "signing while copying is not implemented yet".into(),
            ));
        }
        if !self.decryption_key.is_empty() || !self.encryption_key.is_empty() {
            return Err(Error::Unsupported(
                "image encryption is not supported".into(),
            ));
        }
        if self.dest_compress && self.dest_decompress {
            return Err(Error::invalid(
                "--dest-compress and --dest-decompress cannot be used together",
            ));
        }
        let multi_arch = match (&self.multi_arch, self.all) {
            (Some(_), true) => {
                return Err(Error::invalid("cannot use --all and --multi-arch together"))
            }
            (Some(m), false) => MultiArch::parse(m)?,
            (None, true) => MultiArch::All,
            (None, false) => MultiArch::System,
        };
        let format = self
            .format
            .as_deref()
            .map(ManifestFormat::parse)
            .transpose()?;
        let compression = self
            .dest_compress_format
            .as_deref()
            .map(CompressionFormat::parse)
            .transpose()?;
        if let Some(level) = self.dest_compress_level {
            // Without a format, layers that must be compressed are compressed with gzip.
            compression
                .unwrap_or(CompressionFormat::Gzip)
                .check_level(level)?;
        }
        if self.preserve_digests
            && (format.is_some() || compression.is_some() || self.dest_decompress)
        {
            return Err(Error::invalid(
                "--preserve-digests cannot be combined with --format, --dest-compress-format or --dest-decompress: the digests would change",
            ));
        }
        Ok(CopyOptions {
            multi_arch,
            platform: global.platform(),
            format,
            compression,
            compression_level: self.dest_compress_level,
            preserve_digests: self.preserve_digests,
            remove_signatures: self.remove_signatures,
            parallel: self.image_parallel_copies.max(1),
        })
    }
}

pub async fn run(global: &GlobalOpts, a: CopyArgs) -> Result<()> {
    let src_name = ImageName::parse(&a.source)
        .map_err(|e| e.context(format!("parsing image name {:?}", a.source)))?;
    let dest_name = ImageName::parse(&a.destination)
        .map_err(|e| e.context(format!("parsing image name {:?}", a.destination)))?;
    let opts = a.options(global)?;
    if let Some(policy) = global.policy()? {
        policy.check_source(&src_name)?;
    }
    let additional_tags = a
        .additional_tags
        .iter()
        .map(|t| DockerReference::parse(t).map_err(|e| e.context("parsing --additional-tag")))
        .collect::<Result<Vec<_>>>()?;
    let src_opts = a.src.unprefixed(a.authfile.as_ref());
    let dest_opts = a.dest.unprefixed(a.authfile.as_ref());
    let src_ctx = SourceContext {
        docker: src_opts.docker_options(global, &a.retry)?,
        shared_blob_dir: src_opts.shared_blob_dir.clone(),
        tmpdir: global.tmpdir.clone(),
    };
    let dest_ctx = DestContext {
        docker: dest_opts.docker_options(global, &a.retry)?,
        shared_blob_dir: dest_opts.shared_blob_dir.clone(),
        tmpdir: global.tmpdir.clone(),
        dir_compression: if a.dest_compress {
            LayerCompression::Compress
        } else if a.dest_decompress {
            LayerCompression::Decompress
        } else {
            LayerCompression::Preserve
        },
        additional_tags,
        oci_accept_uncompressed: a.dest_oci_accept_uncompressed_layers,
    };
    let src = transport::open_source(&src_name, &src_ctx).await?;
    let dest = transport::open_destination(&dest_name, &dest_ctx).await?;
    let progress = if a.quiet {
        Progress::quiet()
    } else {
        Progress::stdout()
    };
    let report = copy::copy_image(src.as_ref(), dest, &opts, &progress).await?;
    progress.summary();
    if let Some(path) = &a.digestfile {
        std::fs::write(path, report.manifest_digest.as_bytes()).map_err(|e| {
            Error::Io(e).context(format!("writing the digest file {}", path.display()))
        })?;
    }
    Ok(())
}
