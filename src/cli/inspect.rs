//! `scry inspect`.

use clap::Args;

use super::options::{GlobalOpts, ImageOpts, RetryOpts};
use super::output::write_stdout;
use crate::error::{Error, Result};
use crate::inspect;
use crate::manifest;
use crate::reference::ImageName;
use crate::transport::docker::DockerImage;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    image: ImageOpts,
    #[command(flatten)]
    retry: RetryOpts,
    /// output raw manifest or configuration
    #[arg(long)]
    raw: bool,
    /// output configuration
    #[arg(long)]
    config: bool,
    /// Do not list the available tags from the repository in the output
    #[arg(short = 'n', long)]
    no_tags: bool,
    /// Format the output to a Go template
    #[arg(short = 'f', long, value_name = "TEMPLATE")]
    format: Option<String>,
    /// The image, as TRANSPORT:DETAILS (e.g. docker://quay.io/podman/stable:latest)
    #[arg(value_name = "IMAGE-NAME")]
    name: String,
}

pub async fn run(global: &GlobalOpts, a: InspectArgs) -> Result<()> {
    if a.raw && a.format.is_some() {
        return Err(Error::invalid("raw output does not support format option"));
    }
    let name = ImageName::parse(&a.name)
        .map_err(|e| e.context(format!("parsing image name {:?}", a.name)))?;
    name.require_supported()?;
    let ImageName::Docker(reference) = name else {
        return Err(Error::Unsupported(format!(
            "inspecting {} images is not implemented yet (only docker:// for now)",
            name.transport().name()
        )));
    };
    let opts = a.image.docker_options(global, &a.retry)?;
    let img = DockerImage::new(reference, &opts)?;
    let platform = global.platform();

    if a.raw && !a.config {
        let top = img.manifest(None).await?;
        return write_stdout(&top.bytes);
    }
    let want_tags = !a.no_tags && !a.config;
    let data = inspect::gather(&img, &platform, want_tags).await?;
    if a.config {
        if a.raw {
            // A schema1 image has no config blob: nothing is printed, as skopeo does.
            return write_stdout(data.config.as_deref().unwrap_or_default());
        }
        let mut s = data.manifest.inspect_config_json(data.config.as_deref())?;
        s.push('\n');
        return write_stdout(s.as_bytes());
    }
    let out = data.output(&img)?;
    let mut text = match &a.format {
        Some(t) => {
            let value = serde_json::to_value(&out).map_err(|e| Error::other(e.to_string()))?;
            render_template(t, &value)?
        }
        None => manifest::to_go_json_indent(&out),
    };
    text.push('\n');
    write_stdout(text.as_bytes())
}

fn render_template(t: &str, v: &serde_json::Value) -> Result<String> {
    let _ = (t, v);
    Err(Error::Unsupported("--format is not available yet".into()))
}
