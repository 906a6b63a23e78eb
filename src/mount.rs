//! `scry mount`: wires the filesystem core, the FUSE adapter, the registry backend and
//! the blob cache together, and runs the mount until a signal or an unmount ends it.
//! With `background`, the process starts itself again detached and returns once the
//! mount is ready.

mod backend;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::{BlobCache, CacheConfig};
use crate::error::{Error, Result};
use crate::fs::{Fs, FsConfig};
use crate::fuse::FuseAdapter;
use crate::transport::docker::DockerOptions;

pub use backend::RegistryBackend;

/// Environment variable naming the file a detached mount creates once it is ready.
const READY_ENV: &str = "SCRY_MOUNT_READY_FILE";

/// Everything a mount needs.
pub struct MountConfig {
    pub mountpoint: PathBuf,
    pub cache: CacheConfig,
    pub fs: FsConfig,
    pub docker: DockerOptions,
    pub allow_other: bool,
    /// Hand complete cached blobs to the kernel (FUSE passthrough) where it can.
    pub passthrough: bool,
    /// The trust policy for copy-to sources.
    pub policy: Option<crate::policy::Policy>,
    /// Registries listed at the root from the start.
    pub registries: Vec<String>,
}

/// Mounts and serves until SIGINT/SIGTERM or an external unmount.
pub fn run_foreground(cfg: MountConfig) -> Result<()> {
    check_mountpoint(&cfg.mountpoint)?;
    limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("scry-mount")
        .build()
        .map_err(|e| Error::other(format!("starting the async runtime: {e}")))?;
    let cache = BlobCache::open(cfg.cache.clone())
        .map_err(|e| e.context(format!("opening the cache in {}", cfg.cache.dir.display())))?;
    let timeout = cfg.docker.timeout;
    let platform = cfg.fs.platform.clone();
    let backend = Arc::new(
        RegistryBackend::new(cfg.docker, cache.clone(), platform, cfg.registries)
            .with_policy(cfg.policy),
    );
    let mut fs_config = cfg.fs;
    fs_config.layer_dir = Some(cfg.cache.dir.join("layers"));
    let fs = Arc::new(Fs::new(backend, fs_config));
    // A request may wait on one network answer plus cache work: a little over the timeout.
    let adapter = FuseAdapter::new(
        fs.clone(),
        rt.handle().clone(),
        timeout + Duration::from_secs(5),
        cfg.passthrough,
    );
    let pt = adapter.passthrough();
    let stats_pt = pt.clone();
    fs.add_stats_section("passthrough", Box::new(move || stats_pt.stats()));
    let options = vec![
        fuser::MountOption::FSName("scry".into()),
        fuser::MountOption::Subtype("scry".into()),
        fuser::MountOption::DefaultPermissions,
        fuser::MountOption::NoAtime,
        // Images hold device nodes and set-id programs: shown, never honoured.
        fuser::MountOption::NoDev,
        fuser::MountOption::NoSuid,
        fuser::MountOption::RW,
    ];
    let mut fuse_config = fuser::Config::default();
    fuse_config.mount_options = options;
    if cfg.allow_other {
        fuse_config.acl = fuser::SessionACL::All;
    }
    let session = fuser::spawn_mount(adapter, &cfg.mountpoint, &fuse_config)
        .map_err(|e| Error::Io(e).context(format!("mounting on {}", cfg.mountpoint.display())))?;
    pt.set_notifier(session.notifier());
    // A blob that failed verification may have been served in part: drop the pages the
    // kernel holds of every file showing it, so nothing wrong is read from memory.
    let mut failed = cache.subscribe_failures();
    let (inval_fs, inval_pt) = (fs.clone(), pt.clone());
    rt.spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let inodes = match failed.recv().await {
                Ok(digest) => inval_fs.inodes_of_blob(&digest),
                Err(RecvError::Lagged(_)) => inval_fs.inodes_of_all_blobs(),
                Err(RecvError::Closed) => break,
            };
            for ino in inodes {
                inval_pt.invalidate(ino);
            }
        }
    });
    tracing::info!("mounted on {}", cfg.mountpoint.display());
    raise_readahead(&cfg.mountpoint);
    if let Some(ready) = std::env::var_os(READY_ENV) {
        let _ = std::fs::write(ready, b"ready\n");
    } else {
        eprintln!(
            "scry: mounted on {} (Ctrl-C or `scry unmount {}` to stop)",
            cfg.mountpoint.display(),
            cfg.mountpoint.display()
        );
    }
    let mut unmounted = false;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).map_err(Error::Io)?;
        let mut int = signal(SignalKind::interrupt()).map_err(Error::Io)?;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = tick.tick() => {
                    if session.guard.is_finished() {
                        tracing::info!("{} was unmounted", cfg.mountpoint.display());
                        unmounted = true;
                        break;
                    }
                }
            }
        }
        Ok::<(), Error>(())
    })?;
    if unmounted {
        // Unmounted from outside: dropping the session would unmount the mount point
        // again, by path — by then possibly a new mount someone made there.
        std::mem::forget(session);
    } else {
        // Dropping the session unmounts and ends the loop.
        drop(session);
    }
    rt.shutdown_timeout(Duration::from_secs(2));
    // The last counters for `scry cache status` (the session may never be dropped).
    if let Err(e) = cache.record_stats() {
        tracing::warn!("{e}");
    }
    Ok(())
}

/// A long-lived daemon with dozens of threads: glibc gives each thread that allocates
/// under contention an arena of its own and keeps what it freed there, which tripled
/// the mount's peak RSS under 32 readers (83 MiB against 31 MiB with two arenas).
/// Called before the runtime starts its threads.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; no other thread allocates yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Kernel read-ahead for the mount, in KiB. The FUSE handshake caps it at 128 KiB, so
/// a sequential reader would ask for 128 KiB at a time; 1 MiB makes requests 8× fewer
/// (larger windows only add waiting on chunks still in flight).
const READAHEAD_KIB: u32 = 1024;

/// Raises the mount's read-ahead through its backing device info in sysfs (root
/// only; otherwise the kernel's default stays and reads are only smaller).
fn raise_readahead(mountpoint: &Path) {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(mountpoint) else {
        return;
    };
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    let knob = format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb");
    if let Err(e) = std::fs::write(&knob, format!("{READAHEAD_KIB}\n")) {
        tracing::debug!("read-ahead left at the kernel's default ({knob}: {e})");
    }
}

/// Starts `scry` again with `args` (the same command line without `--background`),
/// detached, and returns once its mount is ready or it failed.
pub fn run_background(args: &[std::ffi::OsString], mountpoint: &Path, log: &Path) -> Result<()> {
    check_mountpoint(mountpoint)?;
    let exe =
        std::env::current_exe().map_err(|e| Error::Io(e).context("finding the scry executable"))?;
    let ready = std::env::temp_dir().join(format!(
        "scry-mount-ready-{}-{}",
        std::process::id(),
        nanos()
    ));
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Io(e).context(format!("creating {}", dir.display())))?;
    }
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::Io(e).context(format!("opening the log {}", log.display())))?;
    let log_start = log_file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = std::process::Command::new(exe);
    crate::sysroots::restore_for_child(&mut cmd);
    cmd.args(args)
        .env(READY_ENV, &ready)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log_file);
    // SAFETY: setsid in the child before exec detaches it from the terminal's session.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Io(e).context("starting the mount process"))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready.exists() {
            let _ = std::fs::remove_file(&ready);
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            let why = match child_error(log, log_start) {
                Some(e) => format!(": {e}"),
                None => String::new(),
            };
            return Err(Error::other(format!(
                "the mount process exited ({status}) before the mount was ready{why} (log: {})",
                log.display()
            )));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err(Error::other(format!(
                "the mount was not ready within 30 s; see {}",
                log.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a mount process that failed to start said: its `Error:` line (or its last
/// line) in what it wrote to `log` from `from` on.
fn child_error(log: &Path, from: u64) -> Option<String> {
    use std::io::{Read, Seek};
    let mut f = std::fs::File::open(log).ok()?;
    f.seek(std::io::SeekFrom::Start(from)).ok()?;
    let mut text = String::new();
    f.take(1 << 20).read_to_string(&mut text).ok()?;
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let pick = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("Error: "))
        .or(lines.last().copied())?;
    Some(pick.to_string())
}

/// Unmounts the scry mount at `mountpoint`; with `lazy`, detaches it at once even while
/// files in it are open (the kernel finishes when they close). Refuses paths that are
/// not mount points or are another filesystem's, and names the processes that keep a
/// busy mount in use.
pub fn unmount(mountpoint: &Path, lazy: bool) -> Result<()> {
    let path = std::fs::canonicalize(mountpoint)
        .map_err(|e| Error::Io(e).context(format!("unmounting {}", mountpoint.display())))?;
    match mount_type(&path) {
        None => {
            return Err(Error::invalid(format!(
                "{} is not a mount point",
                path.display()
            )))
        }
        Some((t, source)) if !(t == "fuse.scry" || t.starts_with("fuse") && source == "scry") => {
            return Err(Error::invalid(format!(
                "{} is not a scry mount (it is {t})",
                path.display()
            )))
        }
        Some(_) => {}
    }
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::invalid("the mount point contains a NUL byte"))?;
    let flags = if lazy { libc::MNT_DETACH } else { 0 };
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), flags) } == 0 {
        return Ok(());
    }
    let os_err = std::io::Error::last_os_error();
    if os_err.raw_os_error() == Some(libc::EBUSY) {
        let users = users_of(&path);
        let who = if users.is_empty() {
            String::new()
        } else {
            format!(": in use by {}", users.join(", "))
        };
        return Err(Error::other(format!(
            "{} is busy{who}; close what uses it, or `scry unmount --lazy {}` to detach it \
             now and finish when the last file closes",
            path.display(),
            path.display()
        )));
    }
    // Without the privilege to unmount, the setuid helper can.
    for helper in ["fusermount3", "fusermount"] {
        let mut cmd = std::process::Command::new(helper);
        cmd.arg("-u");
        if lazy {
            cmd.arg("-z");
        }
        let ok = cmd
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|st| st.success());
        if ok {
            return Ok(());
        }
    }
    Err(Error::Io(os_err).context(format!("unmounting {}", path.display())))
}

/// The filesystem type and source of the mount exactly at `path`. scry's mounts show as
/// type `fuse` (or `fuse.scry`) with source `scry`.
fn mount_type(path: &Path) -> Option<(String, String)> {
    let want = path.as_os_str().as_encoded_bytes();
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    // The last mount at a path is the one that shows there.
    info.lines().rev().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let at = pre.split(' ').nth(4)?;
        if unescape_mountinfo(at) != want {
            return None;
        }
        let mut f = post.split(' ');
        let fstype = f.next().unwrap_or("").to_string();
        let source = unescape_mountinfo(f.next().unwrap_or(""));
        Some((fstype, String::from_utf8_lossy(&source).into_owned()))
    })
}

/// `/proc/self/mountinfo` writes spaces, tabs, newlines and backslashes as octal.
fn unescape_mountinfo(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Processes whose working directory or open files lie under `path`, as `PID (NAME)`.
fn users_of(path: &Path) -> Vec<String> {
    let inside = |p: &Path| p.starts_with(path);
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in procs.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let dir = e.path();
        let mut uses = std::fs::read_link(dir.join("cwd")).is_ok_and(|p| inside(&p));
        if !uses {
            uses = std::fs::read_dir(dir.join("fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|p| inside(&p)));
        }
        if uses {
            let name = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
            out.push(format!("{pid} ({})", name.trim()));
        }
    }
    out
}

fn check_mountpoint(p: &Path) -> Result<()> {
    let md = std::fs::metadata(p)
        .map_err(|e| Error::Io(e).context(format!("mount point {}", p.display())))?;
    if !md.is_dir() {
        return Err(Error::invalid(format!(
            "mount point {} is not a directory",
            p.display()
        )));
    }
    Ok(())
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
