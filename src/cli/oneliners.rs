//! Commands beyond skopeo's, each a thin layer over the library: `digest`, `manifest`,
//! `config`, `blob`, `catalog`, `tag`, `validate` and `export`. They take the same image names
//! (any transport where it makes sense) and the same registry flags as `inspect`.

use clap::Args;
use tokio::io::AsyncReadExt;

use super::options::{GlobalOpts, ImageOpts, RetryOpts};
use super::output::write_stdout;
use crate::digest::VerifyingReader;
use crate::error::{Error, Result};
use crate::export;
use crate::inspect;
use crate::manifest::{self, BlobRef, Manifest};
use crate::reference::{DockerReference, ImageName};
use crate::transport::{self, docker, ImageSource, SourceContext};

/// An image and how to reach it.
#[derive(Args, Debug)]
pub struct RefArgs {
    #[command(flatten)]
    image: ImageOpts,
    #[command(flatten)]
    retry: RetryOpts,
    /// The image, as TRANSPORT:DETAILS (e.g. docker://registry.example/app:1)
    #[arg(value_name = "IMAGE-NAME")]
    name: String,
}

#[derive(Args, Debug)]
pub struct BlobArgs {
    #[command(flatten)]
    image: RefArgs,
    /// The blob's digest (sha256:…): a layer or the config of the image
    #[arg(value_name = "DIGEST")]
    digest: String,
}

#[derive(Args, Debug)]
pub struct TagArgs {
    #[command(flatten)]
    image: RefArgs,
    /// The new tag, in the same repository
    #[arg(value_name = "TAG")]
    tag: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    image: RefArgs,
    /// Write the tar to FILE (made whole or not at all) instead of standard output
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct CatalogArgs {
    #[command(flatten)]
    image: ImageOpts,
    #[command(flatten)]
    retry: RetryOpts,
    /// The registry, as HOST[:PORT] (a docker:// prefix is accepted)
    #[arg(value_name = "REGISTRY")]
    registry: String,
}

impl RefArgs {
    fn parsed(&self) -> Result<ImageName> {
        ImageName::parse(&self.name)
            .map_err(|e| e.context(format!("parsing image name {:?}", self.name)))
    }

    async fn open(&self, global: &GlobalOpts) -> Result<Box<dyn ImageSource>> {
        let ctx = SourceContext {
            docker: self.image.docker_options(global, &self.retry)?,
            shared_blob_dir: self.image.shared_blob_dir.clone(),
            tmpdir: global.tmpdir.clone(),
        };
        transport::open_source(&self.parsed()?, &ctx).await
    }
}

/// `scry digest`: the digest of the manifest the name points at.
pub async fn digest(global: &GlobalOpts, a: RefArgs) -> Result<()> {
    let src = a.open(global).await?;
    let top = inspect::top_manifest(src.as_ref()).await?;
    write_stdout(format!("{}\n", top.digest).as_bytes())
}

/// `scry manifest`: the manifest (or index) as stored, byte for byte.
pub async fn manifest(global: &GlobalOpts, a: RefArgs) -> Result<()> {
    let src = a.open(global).await?;
    let top = inspect::top_manifest(src.as_ref()).await?;
    write_stdout(&top.bytes)
}

/// `scry config`: the image's config blob as stored (the host's platform of an index,
/// or `--override-os`/`--override-arch`'s).
pub async fn config(global: &GlobalOpts, a: RefArgs) -> Result<()> {
    let src = a.open(global).await?;
    let data = inspect::gather(
        src.as_ref(),
        &global.platform(),
        None::<std::future::Ready<Result<Vec<String>>>>,
    )
    .await?;
    match data.config {
        Some(c) => write_stdout(&c),
        None => Err(Error::invalid(format!(
            "{} has no config blob (a schema 1 image)",
            a.name
        ))),
    }
}

/// The single-image manifests of `src`: the top one, or every instance of an index.
async fn images(src: &dyn ImageSource) -> Result<Vec<(String, Manifest)>> {
    let top = inspect::top_manifest(src).await?;
    let parsed = Manifest::parse(&top.bytes, &top.media_type)?;
    if !parsed.is_index() {
        return Ok(vec![(top.digest, parsed)]);
    }
    let mut out = Vec::new();
    for inst in parsed.instances() {
        let (bytes, mt) = src.manifest(Some(&inst.digest)).await?;
        let got = manifest::manifest_digest(&bytes)?;
        if got != inst.digest {
            return Err(Error::DigestMismatch {
                what: format!("manifest {}", inst.digest),
                expected: inst.digest.clone(),
                actual: got,
            });
        }
        out.push((inst.digest.clone(), Manifest::parse(&bytes, &mt)?));
    }
    Ok(out)
}

/// The blobs a manifest names: config first, then layers.
fn blobs_of(m: &Manifest) -> Vec<BlobRef> {
    m.config().into_iter().chain(m.layers()).collect()
}

/// Streams blob `b` of `src` through a digest check into `out` (its bytes count).
async fn stream_blob(
    src: &dyn ImageSource,
    b: &BlobRef,
    mut out: impl FnMut(&[u8]) -> Result<()>,
) -> Result<u64> {
    let (stream, _) = src.blob(b).await?;
    let size = u64::try_from(b.size).ok();
    let what = format!("blob {} of {}", b.digest, src.describe());
    let mut r = VerifyingReader::new(stream, &b.digest, size, what);
    let mut buf = vec![0u8; 256 << 10];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf).await?;
        if got == 0 {
            return Ok(n);
        }
        out(&buf[..got])?;
        n += got as u64;
    }
}

/// `scry blob`: one blob of the image to stdout, checked against its digest as it
/// streams (a mismatch fails the command, after the bytes before it were written).
pub async fn blob(global: &GlobalOpts, a: BlobArgs) -> Result<()> {
    manifest::validate_digest(&a.digest)
        .map_err(|e| e.context(format!("parsing digest {:?}", a.digest)))?;
    let src = a.image.open(global).await?;
    let found = images(src.as_ref())
        .await?
        .iter()
        .flat_map(|(_, m)| blobs_of(m))
        .find(|b| b.digest == a.digest)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "{} names no blob {} (not its config nor a layer)",
                a.image.name, a.digest
            ))
        })?;
    let mut stdout = std::io::stdout().lock();
    let res = stream_blob(src.as_ref(), &found, |bytes| {
        use std::io::Write;
        stdout
            .write_all(bytes)
            .map_err(|e| Error::Io(e).context("writing to standard output"))
    })
    .await;
    match res {
        Err(e) if !e.is_broken_pipe() => Err(e),
        _ => Ok(()),
    }
}

/// `scry validate`: every manifest and blob of the image is there and matches its
/// digest (every instance of an index). Prints one line per blob; the first bad one
/// ends the command with exit 1.
pub async fn validate(global: &GlobalOpts, a: RefArgs) -> Result<()> {
    let src = a.open(global).await?;
    let images = images(src.as_ref()).await?;
    let (mut blobs, mut bytes) = (0u64, 0u64);
    for (digest, m) in &images {
        for b in blobs_of(m) {
            let n = stream_blob(src.as_ref(), &b, |_| Ok(()))
                .await
                .map_err(|e| e.context(format!("validating {} (manifest {digest})", a.name)))?;
            write_stdout(format!("{} ok ({n} bytes)\n", b.digest).as_bytes())?;
            blobs += 1;
            bytes += n;
        }
    }
    write_stdout(
        format!(
            "{}: {} manifest(s), {blobs} blobs, {bytes} bytes verified\n",
            a.name,
            images.len()
        )
        .as_bytes(),
    )
}

/// `scry tag`: the image's manifest stored again under another tag of the same
/// repository (one manifest PUT; no blob moves).
pub async fn tag(global: &GlobalOpts, a: TagArgs) -> Result<()> {
    let ImageName::Docker(reference) = a.image.parsed()? else {
        return Err(Error::invalid(format!(
            "scry tag works on registry images (docker://…), not {}",
            a.image.name
        )));
    };
    let reference = reference.with_default_tag();
    let target = DockerReference::parse(&format!("{}:{}", reference.name(), a.tag))
        .map_err(|e| e.context(format!("the new tag {:?}", a.tag)))?;
    let opts = a.image.image.docker_options(global, &a.image.retry)?;
    let client = docker::connect(&reference, &opts)?;
    let repo = reference.repository();
    let m = client
        .get_manifest(
            repo,
            &reference.manifest_reference(),
            manifest::MANIFEST_ACCEPT,
        )
        .await?;
    // The media type the bytes declare (a registry's Content-Type may be generic).
    let declared = m.content_type.as_deref().unwrap_or_default();
    let media_type = Manifest::parse(&m.bytes, declared)?.media_type();
    client
        .put_manifest(
            repo,
            &target.manifest_reference(),
            media_type,
            m.bytes.clone(),
        )
        .await
        .map_err(|e| e.context(format!("tagging docker://{reference} as {}", a.tag)))?;
    write_stdout(format!("{}\n", manifest::manifest_digest(&m.bytes)?).as_bytes())
}

/// `scry catalog`: the repositories of a registry (`/v2/_catalog`, every page), as
/// JSON.
pub async fn catalog(global: &GlobalOpts, a: CatalogArgs) -> Result<()> {
    let host = a
        .registry
        .trim_start_matches("docker://")
        .trim_end_matches('/');
    if host.is_empty() || host.contains('/') {
        return Err(Error::invalid(format!(
            "{:?} is not a registry (expected HOST[:PORT])",
            a.registry
        )));
    }
    // Any repository name gives the client for the registry.
    let probe = DockerReference::parse(&format!("{host}/catalog"))
        .map_err(|e| e.context(format!("the registry {:?}", a.registry)))?;
    let opts = a.image.docker_options(global, &a.retry)?;
    let client = docker::connect(&probe, &opts)?;
    let repos = client
        .catalog()
        .await
        .map_err(|e| e.context(format!("listing the repositories of {host}")))?;
    let doc = serde_json::json!({"Registry": host, "Repositories": repos});
    write_stdout((manifest::to_go_json_indent(&doc) + "\n").as_bytes())
}

/// `scry export`: the image's merged root filesystem (layers applied in order,
/// whiteouts honoured) as one tar stream, to standard output or `--output`.
pub async fn export(global: &GlobalOpts, a: ExportArgs) -> Result<()> {
    use std::io::IsTerminal;
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(Error::invalid(
            "refusing to write a tar stream to a terminal: redirect standard output or give -o FILE",
        ));
    }
    let src = a.image.open(global).await?;
    let data = inspect::gather(
        src.as_ref(),
        &global.platform(),
        None::<std::future::Ready<Result<Vec<String>>>>,
    )
    .await?;
    let tmpdir = global.tmpdir.as_deref();
    let what = format!("exporting {}", a.image.name);
    let summary = match &a.output {
        None => {
            let res = export::export(src.as_ref(), &data.manifest, tmpdir, std::io::stdout()).await;
            match res {
                Err(e) if e.is_broken_pipe() => return Ok(()),
                r => r.map_err(|e| e.context(what))?,
            }
        }
        Some(path) => export_to_file(src.as_ref(), &data.manifest, tmpdir, path)
            .await
            .map_err(|e| e.context(what))?,
    };
    tracing::info!(
        "exported {} entries of {} layers ({} left out)",
        summary.entries,
        summary.layers,
        summary.dropped
    );
    Ok(())
}

/// Exports into a temporary file beside `path`, renamed to it once whole.
async fn export_to_file(
    src: &dyn ImageSource,
    m: &Manifest,
    tmpdir: Option<&std::path::Path>,
    path: &std::path::Path,
) -> Result<export::Summary> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid(format!("{} does not name a file", path.display())))?;
    let mut part_name = std::ffi::OsString::from(".");
    part_name.push(name);
    part_name.push(format!(".part-{}", std::process::id()));
    let part = path.with_file_name(part_name);
    let file = std::fs::File::create(&part)
        .map_err(|e| Error::from(e).context(format!("creating {}", part.display())))?;
    let res = match export::export(src, m, tmpdir, file).await {
        Ok(s) => std::fs::rename(&part, path).map(|_| s).map_err(|e| {
            Error::from(e).context(format!("renaming {} to {}", part.display(), path.display()))
        }),
        Err(e) => Err(e),
    };
    if res.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    res
}
