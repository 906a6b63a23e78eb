//! `scry list-tags`.

use clap::Args;

use super::options::{GlobalOpts, ImageOpts, RetryOpts};
use super::output::write_stdout;
use crate::error::{Error, Result};
use crate::reference::ImageName;
use crate::transport::{docker, docker_archive};

#[derive(Args, Debug)]
pub struct ListTagsArgs {
    #[command(flatten)]
    image: ImageOpts,
    #[command(flatten)]
    retry: RetryOpts,
    /// The repository, as docker://REPOSITORY (no tag or digest), or docker-archive:PATH
    #[arg(value_name = "SOURCE-IMAGE")]
    name: String,
}

#[derive(serde::Serialize)]
struct TagList {
    /// Omitted for archives, as skopeo does.
    #[serde(rename = "Repository", skip_serializing_if = "String::is_empty")]
    repository: String,
    #[serde(rename = "Tags")]
    tags: Vec<String>,
}

pub async fn run(global: &GlobalOpts, a: ListTagsArgs) -> Result<()> {
    let name = ImageName::parse(&a.name)
        .map_err(|e| e.context(format!("parsing image name {:?}", a.name)))?;
    let out = match name {
        ImageName::Docker(reference) => {
            if reference.tag().is_some() || reference.digest().is_some() {
                return Err(Error::invalid("No tag or digest allowed in reference"));
            }
            let opts = a.image.docker_options(global, &a.retry)?;
            let client = docker::connect(&reference, &opts)?;
            let tags = client
                .list_tags(reference.repository())
                .await
                .map_err(|e| {
                    e.context(format!("listing repository tags of {}", reference.name()))
                })?;
            TagList {
                repository: reference.name(),
                tags,
            }
        }
        ImageName::DockerArchive {
            path,
            reference: None,
            index: None,
        } => {
            let tags = tokio::task::spawn_blocking(move || docker_archive::list_tags(&path))
                .await
                .map_err(|e| Error::other(format!("listing tags: {e}")))??;
            TagList {
                repository: String::new(),
                tags,
            }
        }
        ImageName::DockerArchive { .. } => {
            return Err(Error::invalid(
                "No tag or index allowed in a docker-archive reference for list-tags",
            ))
        }
        other => {
            return Err(Error::Unsupported(format!(
                "listing tags of {} images is not supported",
                other.transport().name()
            )))
        }
    };
    let mut text = crate::manifest::to_go_json_indent(&out);
    text.push('\n');
    write_stdout(text.as_bytes())
}
