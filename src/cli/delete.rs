//! `scry delete`.

use clap::Args;

use super::options::{GlobalOpts, ImageOpts, RetryOpts};
use crate::error::{Error, Result};
use crate::manifest;
use crate::reference::ImageName;
use crate::transport::docker;

#[derive(Args, Debug)]
pub struct DeleteArgs {
    #[command(flatten)]
    image: ImageOpts,
    #[command(flatten)]
    retry: RetryOpts,
    /// The image to delete, as TRANSPORT:DETAILS
    #[arg(value_name = "IMAGE-NAME")]
    name: String,
}

pub async fn run(global: &GlobalOpts, a: DeleteArgs) -> Result<()> {
    let name = ImageName::parse(&a.name)
        .map_err(|e| e.context(format!("parsing image name {:?}", a.name)))?;
    match name {
        ImageName::Docker(reference) => {
            let reference = reference.with_default_tag();
            let opts = a.image.docker_options(global, &a.retry)?;
            let client = docker::connect(&reference, &opts)?;
            let repo = reference.repository();
            // Registries delete by digest: resolve a tag first.
            let digest = match reference.digest() {
                Some(d) => d.to_string(),
                None => {
                    let head = client
                        .head_manifest(
                            repo,
                            &reference.manifest_reference(),
                            manifest::MANIFEST_ACCEPT,
                        )
                        .await?;
                    match head.digest {
                        Some(d) => d,
                        None => {
                            let m = client
                                .get_manifest(
                                    repo,
                                    &reference.manifest_reference(),
                                    manifest::MANIFEST_ACCEPT,
                                )
                                .await?;
                            manifest::manifest_digest(&m.bytes)?
                        }
                    }
                }
            };
            client
                .delete_manifest(repo, &digest)
                .await
                .map_err(|e| e.context(format!("deleting docker://{reference}")))
        }
        ImageName::Oci {
            path,
            reference,
            index,
        } => {
            crate::transport::oci::delete(
                &path,
                reference.as_deref(),
                index,
                a.image.shared_blob_dir.as_deref(),
            )
            .await
        }
        other => {
            other.require_supported()?;
            Err(Error::Unsupported(format!(
                "deleting {} images is not supported",
                other.transport().name()
            )))
        }
    }
}
