//! `scry inspect`.

mod config_format;

use clap::Args;

use super::options::{GlobalOpts, ImageOpts, RetryOpts};
use super::output::write_stdout;
use crate::error::{Error, Result};
use crate::inspect;
use crate::manifest;
use crate::reference::ImageName;
use crate::registry::Client;
use crate::transport::docker::DockerSource;
use crate::transport::{self, ImageSource, SourceContext};

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
    let ctx = SourceContext {
        docker: a.image.docker_options(global, &a.retry)?,
        shared_blob_dir: a.image.shared_blob_dir.clone(),
        tmpdir: global.tmpdir.clone(),
    };
    // A registry image: one client for the image and its tag list (one connection pool,
    // one token cache).
    // The repository whose tags are listed: where the image is read from.
    let mut repo = String::new();
    let (src, client): (Box<dyn ImageSource>, Option<Client>) = match &name {
        ImageName::Docker(r) => {
            let ds = DockerSource::open(r.clone(), &ctx.docker).await?;
            let client = ds.client().clone();
            repo = ds.reference().repository().to_string();
            (Box::new(ds), Some(client))
        }
        _ => (transport::open_source(&name, &ctx).await?, None),
    };

    if a.raw && !a.config {
        let top = inspect::top_manifest(src.as_ref()).await?;
        return write_stdout(&top.bytes);
    }
    // Tags are listed for registry images only, and not for --config.
    let tag_lister = match (&name, client) {
        (ImageName::Docker(_), Some(client)) if !a.no_tags && !a.config => {
            Some(async move { client.list_tags(&repo).await })
        }
        _ => None,
    };
    let data = inspect::gather(src.as_ref(), &global.platform(), tag_lister).await?;
    if a.config {
        if a.raw {
            // A schema1 image has no config blob: nothing is printed, as skopeo does.
            return write_stdout(data.config.as_deref().unwrap_or_default());
        }
        let mut s = data.manifest.inspect_config_json(data.config.as_deref())?;
        if let Some(t) = &a.format {
            let config: serde_json::Value =
                serde_json::from_str(&s).map_err(|e| Error::other(e.to_string()))?;
            let text = render_escaped(t, &config_format::config_value(&config))?;
            return write_stdout(text.as_bytes());
        }
        s.push('\n');
        return write_stdout(s.as_bytes());
    }
    // skopeo prints the image's Docker reference name when the name has one: always
    // for docker://, and for docker-archive: when a reference was given.
    let repo_name = match &name {
        ImageName::Docker(r) => r.name(),
        ImageName::DockerArchive {
            reference: Some(r), ..
        } => r.name(),
        _ => String::new(),
    };
    let out = data.output(&repo_name)?;
    let text = match &a.format {
        Some(t) => {
            let value = serde_json::to_value(&out).map_err(|e| Error::other(e.to_string()))?;
            render_template(t, &value)?
        }
        None => manifest::to_go_json_indent(&out) + "\n",
    };
    write_stdout(text.as_bytes())
}

/// Renders `--format` over the inspect document the way skopeo's Go structs print:
/// `\t`/`\n` typed literally become tab/newline, `Created` is a Go time (`<nil>` when
/// absent; its methods may be called), and absent maps and lists print as empty ones.
fn render_template(t: &str, v: &serde_json::Value) -> Result<String> {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        let created = match obj.get("Created") {
            Some(serde_json::Value::String(c)) => crate::template::go_time(c),
            _ => crate::template::go_nil("*time.Time"),
        };
        obj.insert("Created".into(), created);
        for (k, empty) in [
            ("Labels", serde_json::json!({})),
            ("Env", serde_json::json!([])),
            ("RepoTags", serde_json::json!([])),
            ("Layers", serde_json::json!([])),
        ] {
            if obj.get(k).is_none_or(|x| x.is_null()) {
                obj.insert(k.into(), empty);
            }
        }
    }
    render_escaped(t, &v)
}

/// Renders `t` over `v` as skopeo does: `\t`/`\n` typed literally become tab/newline,
/// and a newline ends the output unless the template ends with one.
fn render_escaped(t: &str, v: &serde_json::Value) -> Result<String> {
    let t = t.replace("\\t", "\t").replace("\\n", "\n");
    let mut out = crate::template::Template::parse(&t)?.render_struct(v)?;
    // skopeo ends the template with a newline unless it already does.
    if !t.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_sees_empty_maps_and_escapes() {
        let v = serde_json::json!({"Name": "x", "Labels": null, "Created": "2024-01-02T03:04:05Z"});
        assert_eq!(
            render_template("{{.Name}}\\t{{.Labels}}", &v).unwrap(),
            "x\tmap[]\n"
        );
        assert_eq!(
            render_template("{{.Created}}\n", &v).unwrap(),
            "2024-01-02 03:04:05 +0000 UTC\n"
        );
        assert!(render_template("{{.Nope}}", &v).is_err());
        assert_eq!(
            render_template("{{.Labels.nope}}", &v).unwrap(),
            "<no value>\n"
        );
    }
}
