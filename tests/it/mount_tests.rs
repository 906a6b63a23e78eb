//! `scry mount` on a real kernel FUSE mount, checked with ordinary tools (`ls`, `cat`,
//! `sha256sum`, `jq`, `stat`, `dd`, `du`, `skopeo`, `umoci`) against real registries and
//! the scripted fake registry.
//!
//! [`Mount`] owns one mount: it starts `scry mount` (foreground under [`spawn_owned`],
//! or `--background`), polls `/proc/self/mountinfo` until the mount is live, and always
//! unmounts on drop (`scry unmount`, then `umount -l`), panicking test or not.
//!
//! Submodules: [`browse`] (the tree at every level), [`interop`] (skopeo and umoci
//! reading the mount), [`cache`] (ranged reads, offline reads, the budget, restarts,
//! kill -9), [`copyto`] (copy-to destinations and failures), [`errors`] (errno mapping
//! and timeouts), [`passthrough`] (complete blobs read by the kernel from the cache
//! file), [`fakereg`] (a Range-honouring fake registry that counts bytes).

mod browse;
mod cache;
mod copyto;
mod crash;
mod errors;
pub(crate) mod fakereg;
mod interop;
mod passthrough;
mod rootfs;
mod stress;
mod verify;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::command::scratch_root;
use crate::harness::{run_with_timeout, scry, spawn_owned, CmdOutput};

/// Limit for one tool run against the mount: a hung file operation fails the test.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

/// A fresh scratch directory under the test process's scratch root.
pub fn scratch(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch_root())
        .expect("create scratch directory")
}

/// Polls `cond` every 20 ms until it holds; panics with `what` after `limit`.
#[track_caller]
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a FUSE file system is mounted exactly at `path` (canonical).
pub fn is_mounted(path: &Path) -> bool {
    let want = path.to_string_lossy();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .any(|l| {
            let mut f = l.split(' ');
            f.nth(4) == Some(&want) && l.contains(" - fuse")
        })
}

/// One `scry mount`; see the module docs.
pub struct Mount {
    /// Scratch directory: `mnt/`, the mount log, anything a test puts beside the mount.
    dir: tempfile::TempDir,
    mnt: PathBuf,
    cache: PathBuf,
    /// The foreground mount process (`None` for `--background`).
    child: Option<Child>,
    log: PathBuf,
    background: bool,
}

impl Mount {
    /// `scry mount ARGS… --cache-dir CACHE MNT` in the foreground, with a fresh cache.
    #[track_caller]
    pub fn start(args: &[&str]) -> Mount {
        Mount::launch(args, None, false)
    }

    /// Like [`Mount::start`] with the cache in `cache` (kept by the caller across mounts).
    #[track_caller]
    pub fn with_cache(args: &[&str], cache: &Path) -> Mount {
        Mount::launch(args, Some(cache.to_path_buf()), false)
    }

    /// `scry mount --background …`: returns once the command has returned.
    #[track_caller]
    pub fn background(args: &[&str]) -> Mount {
        Mount::launch(args, None, true)
    }

    #[track_caller]
    fn launch(args: &[&str], cache: Option<PathBuf>, background: bool) -> Mount {
        let dir = scratch("mount-");
        let root = dir.path().canonicalize().unwrap();
        let mnt = root.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let cache = cache.unwrap_or_else(|| root.join("cache"));
        let log = if background {
            cache.join("mount.log")
        } else {
            root.join("mount.log")
        };
        let mut cmd = scry();
        cmd.arg("mount").arg("--cache-dir").arg(&cache).args(args);
        let mut m = Mount {
            dir,
            mnt: mnt.clone(),
            cache,
            child: None,
            log,
            background,
        };
        if background {
            cmd.arg("--background").arg(&mnt);
            let out = run_with_timeout(&mut cmd, TOOL_TIMEOUT);
            assert!(out.success(), "scry mount --background failed: {out}");
            assert!(
                is_mounted(&mnt),
                "scry mount --background returned before the mount was live: {out}"
            );
        } else {
            cmd.arg(&mnt)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(File::create(&m.log).unwrap());
            m.child = Some(spawn_owned(cmd).expect("start scry mount"));
            m.wait_live();
        }
        m
    }

    #[track_caller]
    fn wait_live(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if is_mounted(&self.mnt) && std::fs::read_dir(&self.mnt).is_ok() {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!(
                    "scry mount exited ({status}) before the mount was live\n{}",
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "the mount on {} was not live within 30 s\n{}",
                self.mnt.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The mount point.
    pub fn mnt(&self) -> &Path {
        &self.mnt
    }

    /// `MNT/rel`.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.mnt.join(rel)
    }

    /// The foreground mount process's id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a foreground mount").id()
    }

    /// The blob cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache
    }

    /// A scratch directory beside the mount (not inside it), for links and outputs.
    pub fn scratch(&self) -> PathBuf {
        self.dir.path().canonicalize().unwrap()
    }

    /// The mount process's stderr so far.
    pub fn log(&self) -> String {
        format!(
            "--- mount log {} ---\n{}",
            self.log.display(),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }

    /// `ln -s MNT/rel SCRATCH/name` and returns the link: a path without the `:` of
    /// `127.0.0.1:PORT`, which `oci:PATH:TAG` (skopeo, umoci) cannot parse.
    pub fn link(&self, rel: &str, name: &str) -> PathBuf {
        let link = self.scratch().join(name);
        std::os::unix::fs::symlink(self.path(rel), &link).unwrap();
        link
    }

    /// Unmounts with `scry unmount` and asserts that it worked: the mount is gone and
    /// the mount process exited.
    #[track_caller]
    pub fn unmount(mut self) {
        // EBUSY may be fleeting: a process another test forks holds this process's
        // descriptors (some into this mount) until it execs. A real leak outlasts this.
        let deadline = Instant::now() + Duration::from_secs(5);
        let out = loop {
            let out = run_with_timeout(
                scry().arg("unmount").arg(&self.mnt),
                Duration::from_secs(30),
            );
            if out.success() || !out.stderr.contains("busy") || Instant::now() > deadline {
                break out;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(out.success(), "scry unmount failed: {out}\n{}", self.log());
        assert!(
            !is_mounted(&self.mnt),
            "still mounted after scry unmount\n{}",
            self.log()
        );
        if let Some(child) = self.child.as_mut() {
            let deadline = Instant::now() + Duration::from_secs(15);
            while child.try_wait().unwrap().is_none() {
                assert!(
                    Instant::now() < deadline,
                    "the mount process did not exit after scry unmount\n{}",
                    self.log()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        } else {
            let mnt = self.mnt.clone();
            wait_until(
                Duration::from_secs(15),
                "the background mount process to exit after scry unmount",
                || mount_pids(&mnt).is_empty(),
            );
        }
        // Drop finds nothing left to do.
    }

    /// Sends `signal` to the foreground mount process and asserts that it unmounts
    /// and exits with success within 15 s.
    #[track_caller]
    pub fn stop_with(mut self, signal: libc::c_int) {
        let mut child = self.child.take().expect("a foreground mount");
        // SAFETY: a plain kill(2) of the process this mount started.
        unsafe { libc::kill(child.id() as i32, signal) };
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the mount process did not exit after signal {signal}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "exit after signal {signal}: {status}\n{}",
            self.log()
        );
        assert!(
            !is_mounted(&self.mnt),
            "still mounted after signal {signal}\n{}",
            self.log()
        );
    }

    /// `kill -9` of the mount process, then `umount -l` of its dead mount.
    pub fn kill9(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.cleanup();
    }

    fn cleanup(&mut self) {
        if is_mounted(&self.mnt) {
            let unmounted = Command::new(env!("CARGO_BIN_EXE_scry"))
                .arg("unmount")
                .arg(&self.mnt)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !unmounted || is_mounted(&self.mnt) {
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(&self.mnt)
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if self.background {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !mount_pids(&self.mnt).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            for pid in mount_pids(&self.mnt) {
                // SAFETY: a plain kill(2) of a process this mount started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Processes of this test binary's scry whose command line is `mount … MNT`.
fn mount_pids(mnt: &Path) -> Vec<i32> {
    let exe = env!("CARGO_BIN_EXE_scry");
    let mnt = mnt.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let zombie = std::fs::read_to_string(e.path().join("stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        });
        if args.first().is_some_and(|a| a == exe)
            && args.get(1).is_some_and(|a| a == "mount")
            && args.last() == Some(&mnt)
            && !zombie
        {
            out.push(pid);
        }
    }
    out
}

/// Runs a tool (stdin closed, output captured) with [`TOOL_TIMEOUT`].
#[track_caller]
pub fn tool(program: &str, args: &[&str]) -> CmdOutput {
    run_with_timeout(Command::new(program).args(args), TOOL_TIMEOUT)
}

/// Like [`tool`] with path arguments after `args`.
#[track_caller]
pub fn tool_on(program: &str, args: &[&str], paths: &[&Path]) -> CmdOutput {
    run_with_timeout(Command::new(program).args(args).args(paths), TOOL_TIMEOUT)
}

/// `ls -1 PATH`, which must succeed; the names, in `ls` order.
#[track_caller]
pub fn ls(path: &Path) -> Vec<String> {
    let out = tool_on("ls", &["-1"], &[path]);
    out.assert_success();
    out.stdout.lines().map(str::to_string).collect()
}

/// `sha256sum PATH` (follows symlinks), which must succeed: `sha256:HEX`.
#[track_caller]
pub fn sha256sum(path: &Path) -> String {
    let out = tool_on("sha256sum", &[], &[path]);
    out.assert_success();
    let hex = out.stdout.split_whitespace().next().unwrap_or_default();
    format!("sha256:{hex}")
}

/// `jq -r FILTER PATH`, which must succeed; trimmed output.
#[track_caller]
pub fn jq(filter: &str, path: &Path) -> String {
    let out = tool_on("jq", &["-r", filter], &[path]);
    out.assert_success();
    out.stdout.trim().to_string()
}

/// `stat -c %s PATH` (no dereference), which must succeed.
#[track_caller]
pub fn stat_size(path: &Path) -> u64 {
    let out = tool_on("stat", &["-c", "%s"], &[path]);
    out.assert_success();
    out.stdout.trim().parse().expect("a size")
}

/// The hex part of a `sha256:` digest.
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("a sha256 digest")
}
