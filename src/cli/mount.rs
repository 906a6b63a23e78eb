//! `scry mount`, `scry unmount` and `scry cache`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::options::{parse_go_bool, parse_go_duration, GlobalOpts, ImageOpts, RetryOpts};
use super::output::write_stdout;
use crate::cache::{self, BlobCache, CacheConfig};
use crate::error::{Error, Result};
use crate::fs::FsConfig;
use crate::mount::{self, MountConfig};

#[derive(Args, Debug)]
pub struct MountArgs {
    #[command(flatten)]
    image: ImageOpts,
    #[command(flatten)]
    retry: RetryOpts,
    /// Blob cache directory, shared by all mounts that name it [default: ~/.cache/scry]
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Largest size of the blob cache (e.g. 10G, 512M), held across all mounts sharing
    /// the directory; `scry cache status` shows the last one used [default: 10G, never
    /// past 95% of the disk]
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    cache_size: Option<u64>,
    /// How long tag lists and tag → digest answers are reused
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration, default_value = "60s")]
    tag_ttl: Duration,
    /// Deadline for every registry request; past it, the file operation fails with EIO
    #[arg(long, value_name = "DURATION", value_parser = parse_go_duration, default_value = "30s")]
    timeout: Duration,
    /// Let other users see the mount (needs user_allow_other in /etc/fuse.conf unless root)
    #[arg(long)]
    allow_other: bool,
    /// Return once the mount is ready and keep serving in the background (the log then
    /// goes to CACHE_DIR/mount.log)
    #[arg(long)]
    background: bool,
    /// Let the kernel read blobs complete in the cache straight from their cache files
    /// (FUSE passthrough; needs root and Linux 6.9+, otherwise reads go through scry)
    #[arg(long, num_args = 0..=1, require_equals = true, default_value = "true",
          default_missing_value = "true", value_parser = parse_go_bool, value_name = "BOOL")]
    passthrough: bool,
    /// Which blob reads wait for the whole blob to match its digest: `end` (a read that
    /// reaches a blob's last byte never succeeds unless all of it matched; bytes in the
    /// middle of a blob being fetched are served unverified, as they arrive) or
    /// `complete` (every read waits until the whole blob is fetched and verified)
    #[arg(long, value_name = "WHEN", default_value = "end", value_parser = parse_verify)]
    verify: cache::Verify,
    /// A registry to list at the top of the mount; repeatable (those registries.conf names
    /// or with stored credentials are listed too, others once they have answered)
    #[arg(long = "registry", value_name = "HOST[:PORT]")]
    registries: Vec<String>,
    /// Where the mount is shown
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: PathBuf,
}

#[derive(Args, Debug)]
pub struct UnmountArgs {
    /// Detach the mount now even while files in it are open; the kernel finishes the
    /// unmount when the last one closes
    #[arg(short = 'l', long)]
    lazy: bool,
    /// The mount point to unmount
    #[arg(value_name = "MOUNTPOINT")]
    mountpoint: PathBuf,
}

#[derive(Args, Debug)]
pub struct CacheArgs {
    #[command(subcommand)]
    action: CacheAction,
}

#[derive(Subcommand, Debug)]
enum CacheAction {
    /// Sizes, entries and counters of the blob cache, as JSON.
    ///
    /// `bytes` and `entries` are what the directory holds now; `hits`, `misses` and
    /// `bytes_fetched` add up every mount that used the directory (mounts record them
    /// every few seconds and when they end; one mount's own counters are in
    /// MOUNT/.scry/stats.json); `max_bytes` is the --cache-size of the last mount that
    /// used it (10G when none did).
    Status {
        /// Blob cache directory [default: ~/.cache/scry]
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Remove least recently used blobs until the cache holds at most SIZE
    Prune {
        /// Blob cache directory [default: ~/.cache/scry]
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// What may remain (e.g. 1G); 0 empties the cache of everything not in use
        #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "0")]
        to: u64,
    },
}

/// Sizes like `10G`, `512M`, `1.5GiB`, `4096`.
pub fn parse_size(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?} (examples: 10G, 512M, 4096)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(format!("invalid size unit in {s:?} (use K, M, G or T)")),
    };
    Ok((n * mult as f64) as u64)
}

fn parse_verify(s: &str) -> std::result::Result<cache::Verify, String> {
    match s {
        "end" => Ok(cache::Verify::End),
        "complete" => Ok(cache::Verify::Complete),
        _ => Err(format!("invalid value {s:?} (use end or complete)")),
    }
}

fn cache_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    flag.or_else(cache::default_dir)
        .ok_or_else(|| Error::invalid("no cache directory: pass --cache-dir (HOME is not set)"))
}

/// How often a mount records its cache counters for `scry cache status`.
const STATS_EVERY: Duration = Duration::from_secs(2);

pub fn mount(global: &GlobalOpts, a: MountArgs) -> Result<()> {
    let dir = cache_dir(a.cache_dir.clone())?;
    if a.background {
        // The same command line, without --background, detached.
        let args: Vec<std::ffi::OsString> = std::env::args_os()
            .skip(1)
            .filter(|x| x != "--background")
            .collect();
        mount::run_background(&args, &a.mountpoint, &dir.join("mount.log"))?;
        return write_stdout(format!("mounted on {}\n", a.mountpoint.display()).as_bytes());
    }
    let mut cache = CacheConfig::new(dir);
    if let Some(size) = a.cache_size {
        cache.max_bytes = size;
    }
    cache.fetch_timeout = a.timeout;
    cache.verify = a.verify;
    cache.record_stats = Some(STATS_EVERY);
    let mut docker = a.image.docker_options(global, &a.retry)?;
    docker.timeout = a.timeout;
    let fs = FsConfig {
        tag_ttl: a.tag_ttl,
        platform: global.platform(),
        ..FsConfig::default()
    };
    mount::run_foreground(MountConfig {
        mountpoint: a.mountpoint,
        cache,
        fs,
        docker,
        allow_other: a.allow_other,
        passthrough: a.passthrough,
        policy: global.policy()?,
        registries: {
            // Listed at the root from the start: those given, those registries.conf
            // names, and those the auth files hold credentials for.
            let env = crate::auth::AuthEnv::from_process();
            let mut all =
                crate::auth::registries_with_credentials(&env, a.image.authfile.as_deref());
            all.extend(global.registries()?.registry_hosts());
            all.extend(a.registries);
            all
        },
    })
}

pub fn unmount(a: UnmountArgs) -> Result<()> {
    mount::unmount(&a.mountpoint, a.lazy)
}

pub fn cache(a: CacheArgs) -> Result<()> {
    match a.action {
        CacheAction::Status { cache_dir: d } => {
            let c = BlobCache::open_existing(CacheConfig::new(cache_dir(d)?))?;
            let text = crate::manifest::to_go_json_indent(&c.status()) + "\n";
            write_stdout(text.as_bytes())
        }
        CacheAction::Prune { cache_dir: d, to } => {
            let c = BlobCache::open_existing(CacheConfig::new(cache_dir(d)?))?;
            let r = c.prune(to)?;
            let text = crate::manifest::to_go_json_indent(&r) + "\n";
            write_stdout(text.as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("10G"), Ok(10 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("ten").is_err());
        assert!(parse_size("3X").is_err());
    }
}
