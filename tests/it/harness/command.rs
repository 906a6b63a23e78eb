//! Running the programs under test: `scry` (the built binary) and `skopeo` (the
//! oracle), with an isolated environment, captured output and a timeout; plus
//! `spawn_owned`, which starts long-lived helpers (registries, mounts) so that they
//! die with the test process even if it never runs their destructors.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Default limit for one command run by [`run`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Captured result of a finished command.
#[derive(Debug)]
pub struct CmdOutput {
    /// What was run, for messages.
    pub command: String,
    pub status: ExitStatus,
    /// Exit code; `None` if killed by a signal.
    pub code: Option<i32>,
    pub stdout_bytes: Vec<u8>,
    pub stdout: String,
    pub stderr: String,
}

impl CmdOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Panics (showing stdout and stderr) unless the command exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Self {
        assert!(self.success(), "command failed: {self}");
        self
    }

    /// Panics unless the command exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "unexpected exit code: {self}");
        self
    }

    /// Panics unless the command failed (non-zero exit).
    #[track_caller]
    pub fn assert_failure(&self) -> &Self {
        assert!(!self.success(), "command unexpectedly succeeded: {self}");
        self
    }

    /// stdout parsed as JSON (panics with the output if it is not).
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout_bytes)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self}"))
    }
}

impl std::fmt::Display for CmdOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.command,
            self.code,
            truncate(&self.stdout),
            truncate(&self.stderr)
        )
    }
}

fn truncate(s: &str) -> &str {
    const MAX: usize = 8000;
    if s.len() <= MAX {
        return s;
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A `Command` for the scry binary built by cargo (or the one `SCRY_TEST_BIN` names:
/// builds that share a target directory replace `target/debug/scry` under a running
/// test), with the isolated environment.
pub fn scry() -> Command {
    let bin = std::env::var_os("SCRY_TEST_BIN")
        .unwrap_or_else(|| std::ffi::OsString::from(env!("CARGO_BIN_EXE_scry")));
    let mut cmd = Command::new(bin);
    shared_home().apply(&mut cmd);
    cmd
}

/// A `Command` for Debian's skopeo, with the isolated environment.
pub fn skopeo() -> Command {
    let mut cmd = Command::new("skopeo");
    shared_home().apply(&mut cmd);
    cmd
}

/// Runs `cmd` to completion with [`DEFAULT_TIMEOUT`].
#[track_caller]
pub fn run(cmd: &mut Command) -> CmdOutput {
    run_with_timeout(cmd, DEFAULT_TIMEOUT)
}

/// Runs `cmd` with stdin closed, capturing stdout and stderr; kills it and panics if
/// it has not finished after `timeout`.
#[track_caller]
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> CmdOutput {
    let command = describe(cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!(
                "`{command}` did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                truncate(&stdout),
                truncate(&stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stdout_bytes = out.join().unwrap_or_default();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    CmdOutput {
        command,
        code: status.code(),
        status,
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr,
    }
}

fn reader(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// An isolated HOME for the programs under test: no user credentials, no proxies,
/// no registry mirrors. Tests that write credentials (login, auth files) make their
/// own with [`Home::new`] instead of using the shared one.
pub struct Home {
    dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl Home {
    pub fn new() -> Home {
        let temp = tempfile::Builder::new()
            .prefix("home-")
            .tempdir_in(scratch_root())
            .expect("create test home");
        let dir = temp.path().to_path_buf();
        Home::populate(&dir);
        Home {
            dir,
            _temp: Some(temp),
        }
    }

    fn populate(dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        for sub in [".config", "run", "containers"] {
            std::fs::create_dir_all(dir.join(sub)).expect("create test home");
        }
        std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
        // No unqualified-search registries and no mirrors: only what a test names.
        std::fs::write(
            dir.join("containers/registries.conf"),
            "unqualified-search-registries = []\n",
        )
        .unwrap();
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where containers tools look for credentials under this home.
    pub fn auth_file(&self) -> PathBuf {
        self.dir.join("run/containers/auth.json")
    }

    /// Points `cmd` at this home and strips variables that would leak the host's
    /// configuration or route traffic anywhere but 127.0.0.1.
    pub fn apply(&self, cmd: &mut Command) {
        cmd.env("HOME", &self.dir)
            .env("XDG_CONFIG_HOME", self.dir.join(".config"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.dir.join("containers/registries.conf"),
            )
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost");
        for var in [
            "REGISTRY_AUTH_FILE",
            "DOCKER_CONFIG",
            "HTTP_PROXY",
            "HTTPS_PROXY",
            "ALL_PROXY",
            "http_proxy",
            "https_proxy",
            "all_proxy",
        ] {
            cmd.env_remove(var);
        }
    }
}

impl Default for Home {
    fn default() -> Self {
        Home::new()
    }
}

/// The home used by [`scry`] and [`skopeo`]; nothing may write credentials into it.
pub fn shared_home() -> &'static Home {
    static HOME: OnceLock<Home> = OnceLock::new();
    HOME.get_or_init(|| {
        let dir = scratch_root().join("shared-home");
        Home::populate(&dir);
        Home { dir, _temp: None }
    })
}

/// `$CARGO_TARGET_TMPDIR/it/run-PID`: parent of every scratch directory of this test
/// process (homes, registry storage). Run directories of earlier processes that are
/// gone are removed the first time this is called.
pub fn scratch_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("it");
        std::fs::create_dir_all(&base).expect("create scratch root");
        let me = std::process::id();
        if let Ok(entries) = std::fs::read_dir(&base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(pid) = name
                    .strip_prefix("run-")
                    .and_then(|p| p.parse::<u32>().ok())
                else {
                    continue;
                };
                if pid != me && !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let root = base.join(format!("run-{me}"));
        std::fs::create_dir_all(&root).expect("create scratch root");
        root
    })
    .clone()
}

type SpawnJob = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `cmd` so that the kernel kills it (SIGKILL) when this test process exits.
///
/// The child is forked from one long-lived thread because the parent-death signal
/// fires when the *thread* that forked exits, and test threads end with their test.
/// The caller still owns the `Child` and must kill and wait it when done.
pub fn spawn_owned(cmd: Command) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("owned-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(spawn_with_parent_death(&mut cmd));
                }
            })
            .expect("spawn spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.lock()
        .unwrap()
        .send((cmd, reply_tx))
        .expect("spawner thread gone");
    reply_rx.recv().expect("spawner thread gone")
}

fn spawn_with_parent_death(cmd: &mut Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: only async-signal-safe calls (prctl, getppid, _exit) between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    cmd.spawn()
}
