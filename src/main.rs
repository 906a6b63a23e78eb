//! The `scry` binary: parse the command line, run it, map the outcome to an exit code
//! (0 ok, 1 error, 2 image not found).

use clap::Parser;
use scry::cli::{run, Cli};

fn main() {
    let cli = Cli::parse();
    let level = if cli.global.debug { "debug" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SCRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("scry={level}")));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    match run(cli) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("Error: {e}");
            std::process::exit(e.exit_code());
        }
    }
}
