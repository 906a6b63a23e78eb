//! Where credentials live: the process environment that decides it ([`AuthEnv`]) and the
//! ordered list of files searched ([`AuthEnv::search_paths`]).
//!
//! Everything that depends on `$HOME`, `$XDG_*`, `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG`,
//! `$PATH` or the uid is read once by [`AuthEnv::from_process`]; tests build the struct by
//! hand. Empty environment variables count as unset, as they do in containers/image.

use std::ffi::{CStr, OsString};
use std::path::{Path, PathBuf};

/// The environment that decides which credential files are read and written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthEnv {
    /// `$HOME` (or the passwd entry of the current user when `$HOME` is unset).
    pub home: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR`.
    pub xdg_runtime_dir: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`; `~/.config` when unset.
    pub xdg_config_home: Option<PathBuf>,
    /// `$REGISTRY_AUTH_FILE`: the default for `--authfile`.
    pub registry_auth_file: Option<PathBuf>,
    /// `$DOCKER_CONFIG`: a directory holding `config.json`.
    pub docker_config: Option<PathBuf>,
    /// `$PATH`, searched for `docker-credential-*` helpers.
    pub path: Option<OsString>,
    /// Real uid, for `/run/containers/$UID/auth.json`.
    pub uid: u32,
}

/// One credentials file in the search order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPath {
    pub path: PathBuf,
    /// `~/.dockercfg`: a top-level map of entries with no `"auths"` wrapper, keyed by host
    /// (namespaced keys are not looked up there).
    pub legacy: bool,
}

impl AuthPath {
    fn new(path: PathBuf) -> Self {
        AuthPath {
            path,
            legacy: false,
        }
    }
}

fn non_empty_var(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

impl AuthEnv {
    /// Reads the environment of this process.
    pub fn from_process() -> Self {
        // SAFETY: getuid has no preconditions and cannot fail.
        let uid = unsafe { libc::getuid() };
        AuthEnv {
            home: non_empty_var("HOME")
                .map(PathBuf::from)
                .or_else(|| passwd_home(uid)),
            xdg_runtime_dir: non_empty_var("XDG_RUNTIME_DIR").map(PathBuf::from),
            xdg_config_home: non_empty_var("XDG_CONFIG_HOME").map(PathBuf::from),
            registry_auth_file: non_empty_var("REGISTRY_AUTH_FILE").map(PathBuf::from),
            docker_config: non_empty_var("DOCKER_CONFIG").map(PathBuf::from),
            path: non_empty_var("PATH"),
            uid,
        }
    }

    /// The auth file chosen for image commands (copy, inspect, …): `--authfile`, else
    /// `$REGISTRY_AUTH_FILE`.
    pub fn image_authfile(&self, flag: Option<&Path>) -> Option<PathBuf> {
        flag.map(Path::to_path_buf)
            .or_else(|| self.registry_auth_file.clone())
    }

    /// The auth file chosen for `login`/`logout`: `--authfile`, else `$REGISTRY_AUTH_FILE`,
    /// else `$DOCKER_CONFIG/config.json`.
    pub fn login_authfile(&self, flag: Option<&Path>) -> Option<PathBuf> {
        self.image_authfile(flag)
            .or_else(|| self.docker_config.as_ref().map(|d| d.join("config.json")))
    }

    /// The per-user runtime file: `$XDG_RUNTIME_DIR/containers/auth.json`, or
    /// `/run/containers/$UID/auth.json` when `$XDG_RUNTIME_DIR` is unset.
    pub fn runtime_auth_file(&self) -> PathBuf {
        match &self.xdg_runtime_dir {
            Some(dir) => dir.join("containers").join("auth.json"),
            None => PathBuf::from(format!("/run/containers/{}/auth.json", self.uid)),
        }
    }

    /// `Some(dir)` when `$XDG_RUNTIME_DIR` is set to a directory that does not exist.
    pub(crate) fn missing_runtime_dir(&self) -> Option<&Path> {
        self.xdg_runtime_dir
            .as_deref()
            .filter(|dir| matches!(dir.try_exists(), Ok(false)))
    }

    /// The files searched for credentials, best first. `authfile` is the already-resolved
    /// auth file (see [`AuthEnv::image_authfile`] / [`AuthEnv::login_authfile`]); it takes the
    /// place of the runtime file and the others are still searched after it:
    ///
    /// 1. `authfile`, else `$XDG_RUNTIME_DIR/containers/auth.json` (skipped with a warning
    ///    when `$XDG_RUNTIME_DIR` names a missing directory), else
    ///    `/run/containers/$UID/auth.json`;
    /// 2. `$XDG_CONFIG_HOME/containers/auth.json` (default `~/.config/containers/auth.json`);
    /// 3. `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`;
    /// 4. `~/.dockercfg` (legacy format).
    pub fn search_paths(&self, authfile: Option<&Path>) -> Vec<AuthPath> {
        let mut paths = Vec::new();
        match authfile {
            Some(file) => paths.push(AuthPath::new(file.to_path_buf())),
            None => match self.missing_runtime_dir() {
                Some(dir) => tracing::warn!(
                    "{}: not reading credentials from it",
                    missing_runtime_dir_message(dir)
                ),
                None => paths.push(AuthPath::new(self.runtime_auth_file())),
            },
        }
        let config_home = self
            .xdg_config_home
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".config")));
        if let Some(config_home) = config_home {
            paths.push(AuthPath::new(
                config_home.join("containers").join("auth.json"),
            ));
        }
        match (&self.docker_config, &self.home) {
            (Some(dir), _) => paths.push(AuthPath::new(dir.join("config.json"))),
            (None, Some(home)) => {
                paths.push(AuthPath::new(home.join(".docker").join("config.json")))
            }
            (None, None) => {}
        }
        if let Some(home) = &self.home {
            paths.push(AuthPath {
                path: home.join(".dockercfg"),
                legacy: true,
            });
        }
        paths
    }
}

/// The error text for a `$XDG_RUNTIME_DIR` that names a missing directory.
pub(crate) fn missing_runtime_dir_message(dir: &Path) -> String {
    format!(
        "{:?} directory set by $XDG_RUNTIME_DIR does not exist. Either create the directory or unset $XDG_RUNTIME_DIR.",
        dir.display().to_string()
    )
}

/// Home directory of `uid` from the user database, for processes started without `$HOME`.
fn passwd_home(uid: u32) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut buf = vec![0u8; 4096];
    loop {
        // SAFETY: an all-zero passwd is a valid value for a plain C struct of pointers and
        // integers; getpwuid_r fills it and points its strings into `buf`, which outlives
        // every read below.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = unsafe {
            libc::getpwuid_r(
                uid,
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: pw_dir is a NUL-terminated string inside `buf` (checked non-null above).
        let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
        let dir = std::ffi::OsStr::from_bytes(dir.to_bytes());
        return (!dir.is_empty()).then(|| PathBuf::from(dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(home: &str) -> AuthEnv {
        AuthEnv {
            home: Some(home.into()),
            uid: 1234,
            ..Default::default()
        }
    }

    fn paths(e: &AuthEnv, authfile: Option<&Path>) -> Vec<(String, bool)> {
        e.search_paths(authfile)
            .into_iter()
            .map(|p| (p.path.display().to_string(), p.legacy))
            .collect()
    }

    #[test]
    fn default_order_without_runtime_dir_uses_per_uid_path() {
        let e = env("/h");
        assert_eq!(
            paths(&e, None),
            vec![
                ("/run/containers/1234/auth.json".into(), false),
                ("/h/.config/containers/auth.json".into(), false),
                ("/h/.docker/config.json".into(), false),
                ("/h/.dockercfg".into(), true),
            ]
        );
    }

    #[test]
    fn overrides_replace_their_own_entries_only() {
        let tmp = tempfile::tempdir().unwrap();
        let mut e = env("/h");
        e.xdg_runtime_dir = Some(tmp.path().to_path_buf());
        e.xdg_config_home = Some("/cfg".into());
        e.docker_config = Some("/dc".into());
        let runtime = tmp.path().join("containers/auth.json");
        assert_eq!(
            paths(&e, None),
            vec![
                (runtime.display().to_string(), false),
                ("/cfg/containers/auth.json".into(), false),
                ("/dc/config.json".into(), false),
                ("/h/.dockercfg".into(), true),
            ]
        );
        // An explicit auth file takes the runtime file's place; the rest are still searched.
        let p = paths(&e, Some(Path::new("/a.json")));
        assert_eq!(p[0], ("/a.json".into(), false));
        assert_eq!(p.len(), 4);
        assert!(!p.iter().any(|(s, _)| s == &runtime.display().to_string()));
    }

    #[test]
    fn missing_runtime_dir_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let mut e = env("/h");
        e.xdg_runtime_dir = Some(tmp.path().join("nope"));
        let p = paths(&e, None);
        assert_eq!(p[0].0, "/h/.config/containers/auth.json");
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn authfile_resolution_for_images_and_login() {
        let mut e = env("/h");
        assert_eq!(e.image_authfile(None), None);
        assert_eq!(e.login_authfile(None), None);
        e.docker_config = Some("/dc".into());
        assert_eq!(e.image_authfile(None), None);
        assert_eq!(e.login_authfile(None), Some("/dc/config.json".into()));
        e.registry_auth_file = Some("/r.json".into());
        assert_eq!(e.image_authfile(None), Some("/r.json".into()));
        assert_eq!(e.login_authfile(None), Some("/r.json".into()));
        let flag = Path::new("/f.json");
        assert_eq!(e.image_authfile(Some(flag)), Some(flag.into()));
        assert_eq!(e.login_authfile(Some(flag)), Some(flag.into()));
    }

    #[test]
    fn passwd_lookup_finds_root_home() {
        // uid 0 exists in every user database this runs on.
        assert!(passwd_home(0).is_some());
    }
}
