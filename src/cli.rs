//! The command line: skopeo-compatible commands and flags. Parsing lives here and in
//! `cli/`; every command turns its flags into library types and calls the library.

mod copy;
mod delete;
mod inspect;
mod list_tags;
mod login;
mod mount;
mod oneliners;
mod options;
mod output;
mod sign;
mod sync;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::error::{Error, Result};
use options::GlobalOpts;
pub use options::{parse_go_bool, parse_go_duration};

/// Inspect, copy and mount container images.
#[derive(Parser, Debug)]
#[command(
    name = "scry",
    version,
    disable_version_flag = true,
    about = "Inspect, copy and mount container images and registries",
    long_about = "scry works with container images in registries (docker://), directories (dir:), \
OCI layouts (oci:) and archives; its commands and flags follow skopeo's, so scripts written \
for one work with the other. `scry mount` shows registries as a filesystem."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOpts,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect image IMAGE-NAME
    Inspect(inspect::InspectArgs),
    /// List tags in the transport/repository specified by the SOURCE-IMAGE
    #[command(name = "list-tags")]
    ListTags(list_tags::ListTagsArgs),
    /// Compute a manifest digest of a file
    #[command(name = "manifest-digest")]
    ManifestDigest {
        /// The manifest file
        #[arg(value_name = "MANIFEST")]
        file: PathBuf,
    },
    /// Login to a container registry
    Login(login::LoginArgs),
    /// Logout of a container registry
    Logout(login::LogoutArgs),
    /// Copy an IMAGE-NAME from one location to another
    Copy(Box<copy::CopyArgs>),
    /// Delete image IMAGE-NAME
    Delete(delete::DeleteArgs),
    /// Synchronize one or more images from one location to another
    Sync(Box<sync::SyncArgs>),
    /// Create a signature using local files
    #[command(name = "standalone-sign")]
    StandaloneSign(sign::SignArgs),
    /// Verify a signature using local files
    #[command(name = "standalone-verify")]
    StandaloneVerify(sign::VerifyArgs),
    /// Show registries as a filesystem: MOUNT/REGISTRY/REPO/TAG/ holds the image's files
    Mount(Box<mount::MountArgs>),
    /// Unmount a `scry mount`
    Unmount(mount::UnmountArgs),
    /// Inspect or prune the mount's blob cache
    Cache(mount::CacheArgs),
    /// Print the digest of the manifest IMAGE-NAME points at
    Digest(oneliners::RefArgs),
    /// Print the manifest (or index) of IMAGE-NAME as stored, byte for byte
    Manifest(oneliners::RefArgs),
    /// Print the config blob of IMAGE-NAME as stored
    Config(oneliners::RefArgs),
    /// Write one blob (a layer or the config) of IMAGE-NAME to standard output, verified
    Blob(oneliners::BlobArgs),
    /// List the repositories of a registry, as JSON
    Catalog(oneliners::CatalogArgs),
    /// Tag a registry image again in its repository (a manifest PUT; no blob moves)
    Tag(oneliners::TagArgs),
    /// Check that every manifest and blob of IMAGE-NAME is there and matches its digest
    Validate(oneliners::RefArgs),
    /// Write the merged root filesystem of IMAGE-NAME (layers applied, whiteouts honoured) as a tar stream
    Export(oneliners::ExportArgs),
}

/// Parses the process's arguments, runs the command and returns the exit code
/// (0 ok, 1 error, 2 image not found). Errors are printed to stderr.
pub fn main() -> i32 {
    crate::sysroots::prefer_lazy_system_roots();
    let cli = match command()
        .try_get_matches()
        .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
    {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let level = if cli.global.debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("scry={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    match run(cli) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e}");
            e.exit_code()
        }
    }
}

/// The command line's definition: `mount --help` does not list the OCI-layout and
/// daemon flags it shares with the image commands but has no use for (accepted, not
/// listed). Global flags show in their own group in every command's help.
fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command().mut_subcommand("mount", |c| {
        c.mut_arg("shared_blob_dir", |a| a.hide(true))
            .mut_arg("daemon_host", |a| a.hide(true))
    });
    cmd.build();
    cmd.mut_subcommand("unmount", hide_image_flags)
        .mut_subcommand("cache", |c| {
            hide_image_flags(c)
                .mut_subcommand("status", hide_image_flags)
                .mut_subcommand("prune", hide_image_flags)
        })
}

/// The commands that reach no image accept the global image flags but do not list
/// them; `--debug` stays.
fn hide_image_flags(c: clap::Command) -> clap::Command {
    c.mut_args(|a| {
        if a.is_global_set() && a.get_id() != "debug" {
            a.hide(true)
        } else {
            a
        }
    })
}

/// Prints a clap error or the help/version text it stands for. Usage errors exit 1 as
/// in skopeo: clap's own code 2 would read as "image not found" to a script.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind as K;
    // print() writes help and version to stdout and errors to stderr.
    let _ = e.print();
    match e.kind() {
        K::DisplayHelp | K::DisplayVersion => 0,
        _ => {
            let args: Vec<String> = std::env::args().skip(1).collect();
            if let Some(hint) = spaced_bool_hint(&args) {
                eprintln!("{hint}");
            }
            1
        }
    }
}

/// For `--tls-verify false`: boolean flags take their value after `=`; with a space
/// the value is read as the next argument.
fn spaced_bool_hint(args: &[String]) -> Option<String> {
    args.windows(2).find_map(|w| {
        let flag = w[0].strip_prefix("--").filter(|f| !f.contains('='))?;
        let value = w[1].to_ascii_lowercase();
        (value == "true" || value == "false").then(|| {
            format!(
                "hint: a boolean flag takes its value after `=`: write --{flag}={value}, \
                 not --{flag} {value}"
            )
        })
    })
}

/// Runs a parsed command line.
fn run(cli: Cli) -> Result<()> {
    let global = cli.global;
    if global.version {
        output::write_stdout(format!("scry version {}\n", env!("CARGO_PKG_VERSION")).as_bytes())?;
        return Ok(());
    }
    if global.tls_verify.is_some() {
        // Still honoured (scripts use it), but said as skopeo says it.
        tracing::warn!(
            "--tls-verify before the command is deprecated: give it to the command instead (scry COMMAND --tls-verify=…)"
        );
    }
    let Some(command) = cli.command else {
        // As skopeo: no command is a usage error (exit 1), not a request for help.
        return Err(Error::invalid(
            "missing command 'scry COMMAND'\nTry 'scry --help' for more information",
        ));
    };
    // The mount makes its own runtime (and may start itself again detached).
    let command = match command {
        Command::Mount(a) => return mount::mount(&global, *a),
        Command::Unmount(a) => return mount::unmount(a),
        Command::Cache(a) => return mount::cache(a),
        other => other,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::other(format!("starting the async runtime: {e}")))?;
    let timeout = global.command_timeout;
    runtime.block_on(async move {
        let work = dispatch(&global, command);
        match timeout {
            Some(t) if !t.is_zero() => tokio::time::timeout(t, work)
                .await
                .map_err(|_| Error::Network(format!("command timed out after {t:?}")))?,
            _ => work.await,
        }
    })
}

async fn dispatch(global: &GlobalOpts, command: Command) -> Result<()> {
    match command {
        Command::Inspect(a) => inspect::run(global, a).await,
        Command::ListTags(a) => list_tags::run(global, a).await,
        Command::ManifestDigest { file } => {
            // A missing file is an error (exit 1), not a missing image.
            let bytes = std::fs::read(&file)
                .map_err(|e| Error::other(format!("reading manifest {}: {e}", file.display())))?;
            let digest = crate::manifest::manifest_digest(&bytes)
                .map_err(|e| e.context(format!("computing the digest of {}", file.display())))?;
            output::write_stdout(format!("{digest}\n").as_bytes())
        }
        Command::Login(a) => login::login(global, a).await,
        Command::Logout(a) => login::logout(global, a),
        Command::Copy(a) => copy::run(global, *a).await,
        Command::Delete(a) => delete::run(global, a).await,
        Command::Sync(a) => sync::run(global, *a).await,
        Command::StandaloneSign(a) => sign::sign(a),
        Command::StandaloneVerify(a) => sign::verify(a),
        Command::Digest(a) => oneliners::digest(global, a).await,
        Command::Manifest(a) => oneliners::manifest(global, a).await,
        Command::Config(a) => oneliners::config(global, a).await,
        Command::Blob(a) => oneliners::blob(global, a).await,
        Command::Catalog(a) => oneliners::catalog(global, a).await,
        Command::Tag(a) => oneliners::tag(global, a).await,
        Command::Validate(a) => oneliners::validate(global, a).await,
        Command::Export(a) => oneliners::export(global, a).await,
        Command::Mount(_) | Command::Unmount(_) | Command::Cache(_) => {
            unreachable!("handled before the runtime starts")
        }
    }
}

/// Default per-request deadline when `--command-timeout` is not given.
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spaced_boolean_value_gets_the_equals_form() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let h = spaced_bool_hint(&args(&["inspect", "--tls-verify", "false", "docker://a/b"]));
        assert!(h.unwrap().contains("--tls-verify=false"));
        assert!(
            spaced_bool_hint(&args(&["inspect", "--tls-verify=false", "docker://a/b"])).is_none()
        );
        assert!(spaced_bool_hint(&args(&["copy", "--quiet", "dir:true", "dir:b"])).is_none());
    }

    #[test]
    fn command_line_definition_is_consistent() {
        <Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn go_style_booleans_need_equals() {
        let c =
            Cli::try_parse_from(["scry", "inspect", "--tls-verify=false", "docker://a/b"]).unwrap();
        let Some(Command::Inspect(_)) = c.command else {
            panic!("not inspect")
        };
        assert!(Cli::try_parse_from([
            "scry",
            "copy",
            "--src-tls-verify=false",
            "--dcreds",
            "u:p",
            "a:b",
            "c:d"
        ])
        .is_ok());
    }
}
