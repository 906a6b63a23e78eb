//! `scry sync`: copies every image a source names (a repository's tags, the images
//! below a directory, a YAML list) to a registry or a directory, one copy at a time.

use std::path::PathBuf;

use clap::Args;

use super::options::{DestImageOpts, GlobalOpts, RetryOpts, SrcImageOpts};
use crate::copy::{self, CopyOptions, ManifestFormat, MultiArch, Progress};
use crate::error::{Error, Result};
use crate::reference::ImageName;
use crate::sync::{self, Naming, SyncDest, SyncItem, SyncSource};
use crate::transport::{self, DestContext, LayerCompression, SourceContext};

#[derive(Args, Debug)]
pub struct SyncArgs {
    #[command(flatten)]
    retry: RetryOpts,
    /// path of the authentication file for both source and destination
    #[arg(long, value_name = "PATH")]
    authfile: Option<PathBuf>,
    /// SOURCE transport type (docker, dir or yaml)
    #[arg(short = 's', long = "src", value_name = "TRANSPORT")]
    src: String,
    /// DESTINATION transport type (docker or dir)
    #[arg(short = 'd', long = "dest", value_name = "TRANSPORT")]
    dest: String,
    /// Copy all images if SOURCE-IMAGE is a list
    #[arg(short = 'a', long)]
    all: bool,
    /// Run without actually copying data
    #[arg(long)]
    dry_run: bool,
    /// MANIFEST TYPE (oci, v2s1, or v2s2) to use when syncing image(s) to a destination (default is manifest type of source, with fallbacks)
    #[arg(short = 'f', long, value_name = "MANIFEST-TYPE")]
    format: Option<String>,
    /// Do not abort the sync if any image copy fails
    #[arg(long)]
    keep_going: bool,
    /// Preserve digests of images and lists
    #[arg(long)]
    preserve_digests: bool,
    /// Do not copy signatures from SOURCE images
    #[arg(long)]
    remove_signatures: bool,
    /// Images at DESTINATION are prefix using the full source image path as scope
    #[arg(long)]
    scoped: bool,
    /// String to append to destination tags
    #[arg(
        long,
        value_name = "SUFFIX",
        default_value = "",
        allow_hyphen_values = true
    )]
    append_suffix: String,
    /// Write the digest and reference of each image copied to this file
    #[arg(long, value_name = "PATH")]
    digestfile: Option<PathBuf>,
    /// Sign the image using a GPG key with the specified FINGERPRINT (not supported yet)
    #[arg(long, value_name = "FINGERPRINT")]
    sign_by: Option<String>,
    /// Sign the image using a sigstore private key at PATH (not supported yet)
    #[arg(long, value_name = "PATH")]
    sign_by_sigstore_private_key: Option<PathBuf>,
    /// File that contains a passphrase for the --sign-by key (not supported yet)
    #[arg(long, value_name = "PATH")]
    sign_passphrase_file: Option<PathBuf>,
    /// Suppress output information when copying images
    #[arg(short = 'q', long)]
    quiet: bool,
    /// SOURCE: a repository or image (docker), a directory (dir) or a YAML file (yaml)
    #[arg(value_name = "SOURCE")]
    source: String,
    /// DESTINATION: a registry with an optional namespace (docker) or a directory (dir)
    #[arg(value_name = "DESTINATION")]
    destination: String,
    // Last, so that their help headings do not carry over to the flags above.
    #[command(flatten)]
    src_opts: SrcImageOpts,
    #[command(flatten)]
    dest_opts: DestImageOpts,
}

impl SyncArgs {
    fn options(&self, global: &GlobalOpts) -> Result<CopyOptions> {
        if self.sign_by.is_some()
            || self.sign_by_sigstore_private_key.is_some()
            || self.sign_passphrase_file.is_some()
        {
            return Err(Error::Unsupported(
                "signing while syncing is not implemented yet".into(),
            ));
        }
        let format = self
            .format
            .as_deref()
            .map(ManifestFormat::parse)
            .transpose()?;
        if self.preserve_digests && format.is_some() {
            return Err(Error::invalid(
                "--preserve-digests cannot be combined with --format: the digests would change",
            ));
        }
        Ok(CopyOptions {
            multi_arch: if self.all {
                MultiArch::All
            } else {
                MultiArch::System
            },
            platform: global.platform(),
            format,
            preserve_digests: self.preserve_digests,
            remove_signatures: self.remove_signatures,
            ..CopyOptions::default()
        })
    }
}

/// One line of progress on stderr (stdout carries the copies' own lines).
fn say(line: &str) {
    eprintln!("{line}");
}

pub async fn run(global: &GlobalOpts, a: SyncArgs) -> Result<()> {
    let source = SyncSource::parse(&a.src, &a.source)?;
    let dest = SyncDest::parse(&a.dest, &a.destination)?;
    let opts = a.options(global)?;
    let src_opts = a.src_opts.unprefixed(a.authfile.as_ref());
    let dest_opts = a.dest_opts.unprefixed(a.authfile.as_ref());
    let src_docker = src_opts.docker_options(global, &a.retry)?;
    let dest_ctx = DestContext {
        docker: dest_opts.docker_options(global, &a.retry)?,
        shared_blob_dir: None,
        tmpdir: global.tmpdir.clone(),
        dir_compression: LayerCompression::Preserve,
        additional_tags: Vec::new(),
        oci_accept_uncompressed: false,
    };
    let naming = Naming {
        scoped: a.scoped,
        append_suffix: a.append_suffix.clone(),
    };
    let policy = global.policy()?;
    let (items, sources) = sync::plan(&source, &dest, &naming, &src_docker).await?;
    // Like the copies, a directory destination never replaces what is there: refuse
    // before anything is copied.
    for item in &items {
        if let ImageName::Dir(p) = &item.dest {
            if p.symlink_metadata().is_ok() {
                return Err(Error::invalid(format!(
                    "refusing to overwrite destination directory {}",
                    p.display()
                )));
            }
        }
    }
    let n = items.len();
    if a.dry_run {
        say("Running in dry-run mode: nothing is copied");
        for (i, item) in items.iter().enumerate() {
            say(&format!(
                "Would have copied image ref {}/{n} from {} to {}",
                i + 1,
                item.source,
                item.dest
            ));
        }
        say(&format!(
            "Would have synced {n} images from {sources} sources"
        ));
        return Ok(());
    }
    let progress = if a.quiet {
        Progress::quiet()
    } else {
        Progress::stdout()
    };
    let mut digests = String::new();
    let mut failed = 0usize;
    for (i, item) in items.iter().enumerate() {
        say(&format!(
            "Copying image ref {}/{n} from {} to {}",
            i + 1,
            item.source,
            item.dest
        ));
        let allowed = match &policy {
            Some(p) => p.check_source(&item.source),
            None => Ok(()),
        };
        let copied = match allowed {
            Ok(()) => copy_one(item, global, &dest_ctx, &opts, &progress).await,
            Err(e) => Err(e),
        };
        match copied {
            Ok(digest) => digests.push_str(&format!("{digest} {}\n", item.dest)),
            Err(e) if a.keep_going => {
                failed += 1;
                say(&format!(
                    "Error: copying {} to {}: {e}",
                    item.source, item.dest
                ));
            }
            Err(e) => return Err(e.context(format!("copying {} to {}", item.source, item.dest))),
        }
    }
    if let Some(path) = &a.digestfile {
        std::fs::write(path, digests.as_bytes()).map_err(|e| {
            Error::Io(e).context(format!("writing the digest file {}", path.display()))
        })?;
    }
    if failed > 0 {
        return Err(Error::other(format!(
            "sync failed for {failed} of {n} images (errors above)"
        )));
    }
    say(&format!("Synced {n} images from {sources} sources"));
    Ok(())
}

/// Copies one planned image; its manifest digest.
async fn copy_one(
    item: &SyncItem,
    global: &GlobalOpts,
    dest_ctx: &DestContext,
    opts: &CopyOptions,
    progress: &Progress,
) -> Result<String> {
    let src_ctx = SourceContext {
        docker: item.source_docker.clone(),
        shared_blob_dir: None,
        tmpdir: global.tmpdir.clone(),
    };
    if let ImageName::Dir(p) = &item.dest {
        if let Some(parent) = p.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::from(e).context(format!("creating {}", parent.display())))?;
        }
    }
    let src = transport::open_source(&item.source, &src_ctx).await?;
    let dest = transport::open_destination(&item.dest, dest_ctx).await?;
    let report = copy::copy_image(src.as_ref(), dest, opts, progress).await?;
    Ok(report.manifest_digest)
}
