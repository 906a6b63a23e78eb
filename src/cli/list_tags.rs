//! `scry list-tags`.

use clap::Args;

use super::options::{GlobalOpts, ImageOpts, RetryOpts};
use super::output::write_stdout;
use crate::error::{Error, Result};
use crate::reference::ImageName;
use crate::transport::docker;

#[derive(Args, Debug)]
pub struct ListTagsArgs {
    #[command(flatten)]
    image: ImageOpts,
    #[command(flatten)]
    retry: RetryOpts,
    /// The repository, as docker://REPOSITORY (no tag or digest)
    #[arg(value_name = "SOURCE-IMAGE")]
    name: String,
}

#[derive(serde::Serialize)]
struct TagList {
    #[serde(rename = "Repository")]
    repository: String,
    #[serde(rename = "Tags")]
    tags: Vec<String>,
}

pub async fn run(global: &GlobalOpts, a: ListTagsArgs) -> Result<()> {
    let name = ImageName::parse(&a.name)
        .map_err(|e| e.context(format!("parsing image name {:?}", a.name)))?;
    let ImageName::Docker(reference) = name else {
        return Err(Error::Unsupported(format!(
            "listing tags of {} images is not implemented yet (only docker:// for now)",
            name.transport().name()
        )));
    };
    if reference.tag().is_some() || reference.digest().is_some() {
        return Err(Error::invalid("No tag or digest allowed in reference"));
    }
    let opts = a.image.docker_options(global, &a.retry)?;
    let client = docker::connect(&reference, &opts)?;
    let tags = client
        .list_tags(reference.repository())
        .await
        .map_err(|e| e.context(format!("listing repository tags of {}", reference.name())))?;
    let out = TagList {
        repository: reference.name(),
        tags,
    };
    let mut text = crate::manifest::to_go_json_indent(&out);
    text.push('\n');
    write_stdout(text.as_bytes())
}
